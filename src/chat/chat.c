/*
 * chat.c - the conversation seam: help, the menu, balance and available credit.
 *
 * Understanding is deliberately small here (keywords in Chinese and English); the chat
 * assistant replaces wx_chat_respond's insides without changing its callers.
 */
#include "chat/chat.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/money.h"

#define CARDS_SHOWN 8 /* cards listed in one balance answer */

enum lang { LANG_ZH, LANG_EN };

enum intent { INTENT_UNKNOWN, INTENT_HELP, INTENT_BALANCE, INTENT_GREETING, INTENT_NOT_YET };

/* English when the text has Latin letters and no character outside ASCII. */
static enum lang language_of(const char *text)
{
    bool letters = false;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p >= 0x80) return LANG_ZH;
        if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') letters = true;
    }
    return letters ? LANG_EN : LANG_ZH;
}

static bool has_any(const char *text, const char *const *words)
{
    for (; *words != NULL; words++) {
        if (strcasestr(text, *words) != NULL) return true;
    }
    return false;
}

static enum intent intent_of(const struct wx_chat_input *in)
{
    static const char *const balance[] = {"余额",   "额度",      "欠款", "balance",
                                          "credit", "available", NULL};
    static const char *const help[] = {"帮助", "菜单", "help", "menu", "?", "？", NULL};
    static const char *const hello[] = {"你好", "您好", "hello", "good morning", NULL};
    if (in->kind == WX_CHAT_IN_MENU) {
        if (strcmp(in->text, WX_CHAT_KEY_BALANCE) == 0) return INTENT_BALANCE;
        if (strcmp(in->text, WX_CHAT_KEY_HELP) == 0) return INTENT_HELP;
        return INTENT_NOT_YET; /* a button of the menu whose service is not open yet */
    }
    if (has_any(in->text, balance)) return INTENT_BALANCE;
    if (has_any(in->text, help)) return INTENT_HELP;
    if (has_any(in->text, hello) || strcasecmp(in->text, "hi") == 0) return INTENT_GREETING;
    return INTENT_UNKNOWN;
}

/* Appends to out->text; a piece that would overflow it is left out whole. */
static void say(struct wx_chat_reply *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct wx_chat_reply *out, const char *fmt, ...)
{
    size_t used = strlen(out->text);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out->text + used, sizeof out->text - used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof out->text - used) out->text[used] = '\0';
    out->kind = WX_CHAT_REPLY_TEXT;
}

static void help(enum lang lang, struct wx_chat_reply *out)
{
    if (lang == LANG_EN) {
        say(out, "I can help with:\n"
                 "- \"balance\": available credit, credit limit and what you owe\n"
                 "- \"help\": this list\n"
                 "Card alerts arrive here for every transaction.");
    } else {
        say(out, "您可以这样问我：\n"
                 "· 回复“余额”：查询可用额度、信用额度和当前欠款\n"
                 "· 回复“帮助”：查看本说明\n"
                 "每一笔刷卡交易都会在这里实时提醒您。");
    }
}

static void not_bound(enum lang lang, struct wx_chat_reply *out)
{
    if (lang == LANG_EN) {
        say(out, "This WeChat account is not bound to a card yet. Bind it in the bank's secure "
                 "page (or at a branch) to see your balance and receive alerts here.");
    } else {
        say(out, "您的微信尚未绑定信用卡。请通过银行安全页面（或到网点）绑定后，"
                 "即可在这里查询额度、接收交易提醒。");
    }
}

/* One line per account: the main card's last 4, limit, available credit and balance. */
static void balance(const wx_engine_t *e, uint32_t customer_id, enum lang lang,
                    struct wx_chat_reply *out)
{
    out->reads_state = true;
    struct wx_card_view cards[CARDS_SHOWN];
    size_t n = wx_engine_customer_cards(e, customer_id, cards, CARDS_SHOWN);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        struct wx_account_view a;
        if (wx_engine_account(e, cards[i].account_id, &a) != 0) continue;
        /* A supplementary card spends its main card's account: show that account's credit. */
        const char *kind_zh = cards[i].supplementary ? "附属卡" : "信用卡";
        const char *kind_en = cards[i].supplementary ? "Supplementary card" : "Card";
        char limit[32], avail[32], owed[32];
        wx_amount_format(a.credit_limit + a.temp_limit, limit, sizeof limit);
        wx_amount_format(a.available, avail, sizeof avail);
        wx_amount_format(a.posted + a.held, owed, sizeof owed);
        if (lang == LANG_EN) {
            say(out, "%s%s ending %04u\nCredit limit: CNY %s\nAvailable: CNY %s\nOwed: CNY %s",
                shown > 0 ? "\n\n" : "", kind_en, (unsigned)cards[i].last4, limit, avail, owed);
        } else {
            say(out, "%s尾号%04u %s\n信用额度：¥%s\n可用额度：¥%s\n当前欠款：¥%s",
                shown > 0 ? "\n\n" : "", (unsigned)cards[i].last4, kind_zh, limit, avail, owed);
        }
        shown++;
    }
    if (shown == 0) {
        say(out, lang == LANG_EN ? "You have no credit card account with us yet."
                                 : "您名下暂无信用卡账户。");
    }
}

void wx_chat_respond(const wx_engine_t *e, const struct wx_chat_input *in,
                     struct wx_chat_reply *out)
{
    assert(in->text != NULL);
    memset(out, 0, sizeof *out);
    /* A menu key is ASCII but the menu is Chinese: its answers are too. */
    enum lang lang = in->kind == WX_CHAT_IN_MENU ? LANG_ZH : language_of(in->text);
    if (in->kind == WX_CHAT_IN_OTHER) return;
    if (in->kind == WX_CHAT_IN_FOLLOW) {
        say(out, "欢迎关注！这里是您的信用卡微信银行。\n\n");
        help(LANG_ZH, out);
        if (in->customer_id == 0) {
            say(out, "\n\n");
            not_bound(LANG_ZH, out);
        }
        return;
    }
    switch (intent_of(in)) {
    case INTENT_BALANCE:
        if (in->customer_id == 0) {
            not_bound(lang, out);
        } else {
            balance(e, in->customer_id, lang, out);
        }
        break;
    case INTENT_GREETING:
        say(out, lang == LANG_EN ? "Hello! " : "您好！");
        help(lang, out);
        break;
    case INTENT_HELP:
        help(lang, out);
        break;
    case INTENT_NOT_YET:
        say(out, "该服务即将开放，敬请期待。现在可回复“余额”查询额度；如需紧急挂失，"
                 "请致电银行客服热线。");
        break;
    case INTENT_UNKNOWN:
        say(out, lang == LANG_EN ? "Sorry, I did not understand that. Reply \"help\" to see "
                                   "what I can do."
                                 : "抱歉，我还没听懂。回复“帮助”看看我能做什么。");
        break;
    }
}
