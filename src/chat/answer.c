/*
 * answer.c - what each intent answers: figures from the engine, quotes, the FAQ, and the
 * hand-offs to the secure pages.
 *
 * Every answer is in the language the cardholder wrote in. Those that show the ledger set
 * reads_state, so the webhook lets them leave only once what they show is durable. Steps
 * that change money, limits or controls (and unlocking) belong to the secure web pages:
 * binding, unbinding and unlocking get a one-time link to their page from the link maker
 * (wx_chat_set_links); the others, until their pages open, say so plainly and the dialogue
 * keeps the intent and its slots, ready for the hand-off.
 */
#include "chat/chat_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chat/nlu_int.h"
#include "util/crypto.h"
#include "util/money.h"
#include "util/timeutil.h"

#define GRACE_DAYS 20 /* from statement day to due date */
/* A one-time link's bytes, NUL included. Links are about 200 bytes; with the longest
 * explanation and the link's words the reply stays well within WX_CHAT_TEXT_MAX. */
#define LINK_URL_MAX       512

/* ---- words ---------------------------------------------------------------------------------- */

void say(struct wx_chat_reply *out, const char *fmt, ...)
{
    size_t used = strlen(out->text);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out->text + used, sizeof out->text - used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof out->text - used) out->text[used] = '\0'; /* whole or none */
    if (out->kind == WX_CHAT_REPLY_NONE) out->kind = WX_CHAT_REPLY_TEXT;
}

const char *intent_label(enum wx_chat_intent intent, enum wx_chat_lang lang)
{
    static const char *const ZH[WX_INTENT_COUNT] = {
        "其他问题", "打招呼",   "使用帮助", "绑定信用卡", "解除绑定", "查询额度", "查询账单",
        "未出账单", "交易明细", "消费统计", "查询积分",   "还款方式", "办理分期", "提升额度",
        "锁卡",     "解锁",     "挂失",     "激活新卡",   "安全卫士", "提醒设置", "业务咨询",
        "人工客服", "投诉建议", "致谢",     "再见"};
    static const char *const EN[WX_INTENT_COUNT] = {"something else",
                                                    "hello",
                                                    "help",
                                                    "bind a card",
                                                    "unbind",
                                                    "credit and limit",
                                                    "statement",
                                                    "unbilled spending",
                                                    "transactions",
                                                    "spending summary",
                                                    "points",
                                                    "how to repay",
                                                    "installments",
                                                    "a higher limit",
                                                    "lock a card",
                                                    "unlock a card",
                                                    "report a lost card",
                                                    "activate a card",
                                                    "card security switches",
                                                    "alert settings",
                                                    "a question about the card",
                                                    "a human agent",
                                                    "a complaint",
                                                    "thanks",
                                                    "goodbye"};
    if ((unsigned)intent >= WX_INTENT_COUNT) intent = WX_INTENT_UNKNOWN;
    return lang == WX_CHAT_EN ? EN[intent] : ZH[intent];
}

void answer_help(struct turn *t)
{
    SAY(t,
        "您可以直接用文字问我，例如：\n"
        "· 还剩多少额度\n"
        "· 3000元分12期每期还多少\n"
        "· 锁卡 / 钱包丢了\n"
        "· 怎么还款 / 年费怎么免\n"
        "· 转人工\n"
        "每一笔刷卡交易都会在这里实时提醒您。",
        "Just ask in your own words, for example:\n"
        "- how much credit do I have left\n"
        "- 3000 in 12 installments, how much each month\n"
        "- lock my card / I lost my wallet\n"
        "- how do I repay / is there an annual fee\n"
        "- talk to a human\n"
        "Every card transaction is reported here as it happens.");
}

static void not_bound(struct turn *t)
{
    SAY(t,
        "您的微信尚未绑定信用卡。回复“绑定”了解如何绑定，绑定后即可在这里查询额度、"
        "管理卡片。",
        "This WeChat is not bound to a card yet. Reply \"bind\" to see how; once bound you can "
        "check your credit and manage your cards here.");
}

/* What the secure pages will do, said plainly while they are not open; the dialogue keeps
 * the intent and its slots for the hand-off. */
static void hand_off(struct turn *t, const char *zh, const char *en)
{
    say(t->out, "%s", t->lang == WX_CHAT_EN ? en : zh);
    SAY(t,
        "\n为保护您的资金安全，这一步需在银行安全页面完成（登录密码+图形验证码），"
        "安全页面即将开放；开放后回复同样的话，即可收到一次性安全链接。",
        "\nTo keep your money safe this step happens on the bank's secure page (login "
        "password and picture code). The secure page opens soon; then send the same message "
        "and you will get a one-time secure link.");
}

/*
 * A step the secure page of action does (action NULL: a page not open yet): the explanation,
 * then a one-time link for this follower made now, or words saying the page is busy when
 * none can be made. Without a link maker, or without a follower to make the link for (a tool
 * that talks without an OpenID), the words of hand_off().
 */
static void secure_step(struct turn *t, const char *action, const char *zh, const char *en)
{
    const char *openid = t->in->openid;
    if (action == NULL || t->c->link == NULL || openid == NULL || openid[0] == '\0') {
        hand_off(t, zh, en);
        return;
    }
    say(t->out, "%s", t->lang == WX_CHAT_EN ? en : zh);
    char url[LINK_URL_MAX];
    url[0] = '\0';
    int minutes = t->c->link(t->c->link_arg, openid, action, t->in->now_ms, url, sizeof url);
    /* A link that is empty or fills the buffer unterminated is no link: never half of one. */
    if (minutes < 1 || url[0] == '\0' || memchr(url, '\0', sizeof url) == NULL) {
        SAY(t,
            "\n为保护您的资金安全，这一步需在银行安全页面完成。安全页面现在繁忙，"
            "请一分钟后再试。",
            "\nTo keep your money safe this step happens on the bank's secure page, which is "
            "busy right now. Please try again in a minute.");
        wx_wipe(url, sizeof url);
        return;
    }
    /* One say(): the words that point to the link never go without it. */
    SAY(t,
        "\n为保护您的资金安全，这一步需在银行安全页面完成。请点击下面的一次性安全链接完成"
        "（%d分钟内有效，仅限本人使用，请勿转发）：\n%s",
        "\nTo keep your money safe this step happens on the bank's secure page. Open the "
        "one-time secure link below to finish it (it works once, for %d minutes, and only for "
        "you: do not forward it):\n%s",
        minutes, url);
    wx_wipe(url, sizeof url); /* the link is a credential until used: no copy left behind */
}

/* ---- cards ---------------------------------------------------------------------------------- */

static const char *status_words(uint8_t status, enum wx_chat_lang lang)
{
    static const char *const ZH[] = {"未激活", "正常",           "已锁定",
                                     "已挂失", "已挂失（被盗）", "已销户"};
    static const char *const EN[] = {"not activated", "active",          "locked",
                                     "reported lost", "reported stolen", "closed"};
    if (status > WX_CARD_CLOSED) return "?";
    return lang == WX_CHAT_EN ? EN[status] : ZH[status];
}

/*
 * The card the turn is about, among the customer's cards in wanted states (a bit per status):
 * the one named by its last 4, the dialogue's, or the only one. With several and none named,
 * asks which (numbered) and returns 0; with none, says so and returns 0.
 */
static uint32_t pick_card(struct turn *t, unsigned wanted, const char *none_zh, const char *none_en)
{
    struct wx_card_view cards[CARDS_SHOWN];
    size_t n = wx_engine_customer_cards(t->e, t->in->customer_id, cards, CARDS_SHOWN);
    struct wx_card_view fit[CARDS_SHOWN];
    size_t nfit = 0;
    for (size_t i = 0; i < n; i++) {
        if (wanted & 1u << cards[i].status) fit[nfit++] = cards[i];
    }
    for (size_t i = 0; i < nfit; i++) { /* the card named now wins */
        if (fit[i].last4 == t->slots.card_last4) return fit[i].id;
    }
    if (t->slots.card_last4 >= 0) { /* named, but not one that fits: never another card */
        for (size_t i = 0; i < n; i++) {
            if (cards[i].last4 != t->slots.card_last4) continue;
            SAY(t, "尾号%04d的卡目前%s，不能办理这项业务。",
                "The card ending %04d is %s: that cannot be done with it.", t->slots.card_last4,
                status_words(cards[i].status, t->lang));
            return 0;
        }
        SAY(t, "您名下没有尾号%04d的卡。", "You have no card ending %04d.", t->slots.card_last4);
        return 0;
    }
    for (size_t i = 0; i < nfit; i++) {
        if (fit[i].id == t->d->card_id) return fit[i].id;
    }
    if (nfit == 1) return fit[0].id;
    if (nfit == 0) {
        say(t->out, "%s", t->lang == WX_CHAT_EN ? none_en : none_zh);
        return 0;
    }
    SAY(t, "您有多张卡，请回复数字选择：", "Which card? Reply with its number:");
    t->d->ncards = 0;
    for (size_t i = 0; i < nfit; i++) {
        t->d->cards[t->d->ncards++] = fit[i].id;
        SAY(t, "\n%zu. 尾号%04u（%s）", "\n%zu. card ending %04u (%s)", i + 1,
            (unsigned)fit[i].last4, status_words(fit[i].status, t->lang));
    }
    t->d->stage = STAGE_CHOOSE_CARD;
    return 0;
}

bool answer_card_of(const struct turn *t, uint32_t card_id, struct wx_card_view *out)
{
    struct wx_card_view cards[CARDS_SHOWN];
    size_t n = wx_engine_customer_cards(t->e, t->in->customer_id, cards, CARDS_SHOWN);
    for (size_t i = 0; i < n; i++) {
        if (cards[i].id == card_id) {
            *out = cards[i];
            return true;
        }
    }
    return false;
}

/* ---- balance and repayment ------------------------------------------------------------------ */

/* One block per card: limit, available credit and what is owed now. */
static void balance(struct turn *t)
{
    t->out->reads_state = true;
    struct wx_card_view cards[CARDS_SHOWN];
    size_t n = wx_engine_customer_cards(t->e, t->in->customer_id, cards, CARDS_SHOWN);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        struct wx_account_view a;
        if (t->slots.card_last4 >= 0 && cards[i].last4 != t->slots.card_last4) continue;
        if (wx_engine_account(t->e, cards[i].account_id, &a) != 0) continue;
        char limit[32], avail[32], owed[32];
        wx_amount_format(a.credit_limit + a.temp_limit, limit, sizeof limit);
        wx_amount_format(a.available, avail, sizeof avail);
        wx_amount_format(a.posted + a.held, owed, sizeof owed);
        SAY(t, "%s尾号%04u %s\n信用额度：¥%s\n可用额度：¥%s\n当前欠款：¥%s",
            "%sCard ending %04u (%s)\nCredit limit: CNY %s\nAvailable: CNY %s\nOwed: CNY %s",
            shown > 0 ? "\n\n" : "", (unsigned)cards[i].last4,
            cards[i].supplementary ? (t->lang == WX_CHAT_EN ? "supplementary" : "附属卡")
                                   : (t->lang == WX_CHAT_EN ? "main card" : "主卡"),
            limit, avail, owed);
        shown++;
    }
    if (shown == 0 && t->slots.card_last4 >= 0) {
        SAY(t, "您名下没有尾号%04d的信用卡。", "You have no card ending %04d.",
            t->slots.card_last4);
    } else if (shown == 0) {
        SAY(t, "您名下暂无信用卡账户。", "You have no credit card account with us yet.");
    }
}

static void repayment(struct turn *t)
{
    struct wx_card_view cards[CARDS_SHOWN];
    size_t n = wx_engine_customer_cards(t->e, t->in->customer_id, cards, CARDS_SHOWN);
    struct wx_account_view a;
    SAY(t,
        "还款方式：微信“信用卡还款”、本行手机银行、借记卡自动还款、网点柜台，"
        "均免手续费。",
        "You can repay through WeChat's credit-card repayment, our mobile banking app, "
        "autopay from a debit card, or at a branch, all free of charge.");
    if (n > 0 && wx_engine_account(t->e, cards[0].account_id, &a) == 0) {
        t->out->reads_state = true;
        SAY(t,
            "\n您的账单日为每月%u日，到期还款日为账单日后%d天，请在到期日前还清账单金额"
            "（至少还最低还款额）。",
            "\nYour statement day is the %u of each month; payment is due %d days later. Pay "
            "the statement balance (at least the minimum) by then.",
            (unsigned)a.statement_day, GRACE_DAYS);
    }
}

/* ---- installments ---------------------------------------------------------------------------- */

static int rate_of(const struct wx_chat_options *o, unsigned periods)
{
    for (unsigned i = 0; i < o->nperiods; i++) {
        if (o->periods[i] == periods) return (int)o->fee_bp[i];
    }
    return -1;
}

/* Asks for the number of periods itself (not an index: "12" means 12 periods). */
static void offer_periods(struct turn *t)
{
    const struct wx_chat_options *o = &t->c->opt;
    SAY(t, "请回复分期期数：", "How many installments? Reply with one of:");
    for (unsigned i = 0; i < o->nperiods; i++) {
        SAY(t, "\n· %u期（每期手续费率%u.%02u%%）", "\n- %u (fee %u.%02u%% each)", o->periods[i],
            o->fee_bp[i] / 100, o->fee_bp[i] % 100);
    }
    t->d->stage = STAGE_CHOOSE_PERIODS;
}

static void installment(struct turn *t)
{
    const struct wx_chat_options *o = &t->c->opt;
    if (t->slots.amount_fen <= 0) {
        SAY(t, "请问您想分期的金额是多少？例如“3000元”。",
            "How much would you like to pay in installments? For example \"3000\".");
        t->d->stage = STAGE_ASK_AMOUNT;
        return;
    }
    int bp = t->slots.periods > 0 ? rate_of(o, (unsigned)t->slots.periods) : -1;
    if (bp < 0) {
        if (t->slots.periods > 0) {
            SAY(t, "暂不支持%d期。", "%d installments are not offered. ", t->slots.periods);
        }
        offer_periods(t);
        return;
    }
    struct quote q;
    if (quote_make(t->slots.amount_fen, (unsigned)t->slots.periods, (unsigned)bp, &q) != 0) {
        SAY(t, "这个金额不能分期，请换一个金额。", "That amount cannot be split; try another.");
        t->d->stage = STAGE_ASK_AMOUNT;
        return;
    }
    char p[32], first[32], each[32], fee[32], fees[32], total[32];
    wx_amount_format(q.principal, p, sizeof p);
    wx_amount_format(q.first_principal + q.fee_each, first, sizeof first);
    wx_amount_format(q.principal_each + q.fee_each, each, sizeof each);
    wx_amount_format(q.fee_each, fee, sizeof fee);
    wx_amount_format(q.total_fee, fees, sizeof fees);
    wx_amount_format(q.total, total, sizeof total);
    char principal_each[32];
    wx_amount_format(q.principal_each, principal_each, sizeof principal_each);
    SAY(t,
        "¥%s分%u期试算：\n每期本金¥%s，每期手续费¥%s\n首期应还¥%s，以后每期¥%s\n"
        "总手续费¥%s，总还款¥%s\n年化利率（IRR）约%.2f%%\n回复“确认”申请，回复“取消”放弃。",
        "CNY %s in %u installments:\nprincipal CNY %s and fee CNY %s each period\nfirst "
        "payment CNY %s, then CNY %s\ntotal fees CNY %s, total repaid CNY %s\nannualized rate "
        "(IRR) about %.2f%%\nReply \"yes\" to apply or \"cancel\".",
        p, q.periods, principal_each, fee, first, each, fees, total, q.apr);
    t->d->stage = STAGE_CONFIRM_INSTALLMENT;
}

/* ---- card lock and lost cards ---------------------------------------------------------------- */

static void ask_lock(struct turn *t, bool lost)
{
    uint32_t id = pick_card(t, 1u << WX_CARD_ACTIVE | 1u << WX_CARD_NOT_ACTIVATED,
                            "您名下没有可锁定的卡片（已锁定、挂失或销户的卡无需再锁）。",
                            "You have no card that can be locked (locked, lost or closed "
                            "cards need no lock).");
    if (id == 0 && lost && t->d->stage == STAGE_NONE) {
        hand_off(t, "\n正式挂失与补卡需要核实身份，也可致电客服热线办理。",
                 "\nThe formal loss report and a replacement card need your identity checked; "
                 "the customer-service hotline can take them too.");
    }
    if (id == 0) return;
    struct wx_card_view card;
    if (!answer_card_of(t, id, &card)) return;
    t->d->card_id = id;
    if (lost) {
        SAY(t, "很抱歉听到这个消息。为防止盗刷，建议先立即锁卡。\n",
            "Sorry to hear that. To stop anyone using it, lock the card now.\n");
    }
    SAY(t,
        "确认锁定尾号%04u的信用卡吗？锁定后该卡的交易都将被拒绝，解锁需在安全页面完成。"
        "\n回复“确认”锁卡，回复“取消”放弃。",
        "Lock the card ending %04u? While locked every transaction on it is declined; "
        "unlocking happens on the secure page.\nReply \"yes\" to lock it or \"cancel\".",
        (unsigned)card.last4);
    if (lost) {
        SAY(t, "\n正式挂失与补卡将在安全页面办理（即将开放），也可致电客服热线。",
            "\nThe formal loss report and a replacement card go through the secure page "
            "(opening soon) or the customer-service hotline.");
    }
    t->d->stage = STAGE_CONFIRM_LOCK;
}

/* The command the adapter submits once the cardholder said yes. */
void answer_lock_command(struct turn *t)
{
    struct wx_cmd *cmd = &t->out->cmd;
    memset(cmd, 0, sizeof *cmd);
    cmd->kind = WX_CMD_CARD_STATUS;
    /* The message's own id makes the key: a channel's retry of the confirmation is the same
     * command (the webhook also answers retries from memory). */
    char key[WX_KEY_MAX + 1];
    int n = t->in->msg_id != 0 ? snprintf(key, sizeof key, "chat:lock:%u:m%llu", t->d->card_id,
                                          (unsigned long long)t->in->msg_id)
                               : snprintf(key, sizeof key, "chat:lock:%u:t%lld", t->d->card_id,
                                          (long long)t->in->now_ms);
    cmd->key_len = (uint8_t)(n < WX_KEY_MAX ? n : WX_KEY_MAX);
    memcpy(cmd->key, key, cmd->key_len);
    cmd->time_ms = t->in->now_ms;
    cmd->card_status.card_id = t->d->card_id;
    cmd->card_status.status = WX_CARD_LOCKED;
    t->out->has_cmd = true;
    t->out->reads_state = true;
    SAY(t, "正在锁卡……", "Locking the card...");
}

/* ---- the FAQ ----------------------------------------------------------------------------------
 */

/* The configured rates in place of {installment_rates}. */
static void faq_answer(struct turn *t, const char *text)
{
    const char *mark = strstr(text, "{installment_rates}");
    if (mark == NULL) {
        say(t->out, "%s", text);
        return;
    }
    say(t->out, "%.*s", (int)(mark - text), text);
    const struct wx_chat_options *o = &t->c->opt;
    for (unsigned i = 0; i < o->nperiods; i++) {
        SAY(t, "%s%u期%u.%02u%%", "%s%u installments %u.%02u%%", i > 0 ? "，" : "", o->periods[i],
            o->fee_bp[i] / 100, o->fee_bp[i] % 100);
    }
    say(t->out, "%s", mark + strlen("{installment_rates}"));
}

static void faq(struct turn *t)
{
    static _Thread_local struct nlu_text norm;
    struct nlu_faq_hit hit;
    nlu_normalize(t->in->text, strlen(t->in->text), &norm);
    if (nlu_faq_search(&norm, &hit, 1) == 0) {
        SAY(t, "这个问题我暂时答不上来。回复“转人工”由客服专员为您解答。",
            "I do not have an answer to that yet. Reply \"human\" and an agent will help.");
        return;
    }
    faq_answer(t, nlu_faq_answer(hit.entry, t->lang));
}

/* ---- the intents ------------------------------------------------------------------------------
 */

static bool needs_binding(enum wx_chat_intent intent)
{
    switch (intent) {
    case WX_INTENT_UNBIND:
    case WX_INTENT_BALANCE:
    case WX_INTENT_BILL:
    case WX_INTENT_UNBILLED:
    case WX_INTENT_TRANSACTIONS:
    case WX_INTENT_SPENDING_SUMMARY:
    case WX_INTENT_POINTS:
    case WX_INTENT_CARD_LOCK:
    case WX_INTENT_CARD_UNLOCK:
    case WX_INTENT_REPORT_LOST:
    case WX_INTENT_CARD_ACTIVATE:
    case WX_INTENT_LIMIT_INCREASE:
    case WX_INTENT_SECURITY_GUARD:
    case WX_INTENT_ALERT_SETTINGS:
        return true;
    default:
        return false;
    }
}

/* Statements, transactions and points: which card's account, then the history's read. */
static void from_history(struct turn *t, enum wx_chat_intent intent)
{
    unsigned any = 1u << WX_CARD_NOT_ACTIVATED | 1u << WX_CARD_ACTIVE | 1u << WX_CARD_LOCKED |
                   1u << WX_CARD_LOST | 1u << WX_CARD_STOLEN | 1u << WX_CARD_CLOSED;
    uint32_t id =
        pick_card(t, any, "您名下暂无信用卡账户。", "You have no credit card account with us yet.");
    if (id != 0) answer_history_ask(t, intent, id);
}

/* Intents whose answer is words alone: a hand-off to the secure pages, or a courtesy. */
static const struct {
    enum wx_chat_intent intent;
    bool hand_off;    /* the secure pages' step, with secure_step()'s closing words */
    const char *page; /* the secure page's action, for its one-time link; NULL: not open */
    const char *zh, *en;
} WORDS_ONLY[] = {
    {WX_INTENT_UNBIND, true, "unbind", "解除绑定后，这个微信将不再收到交易提醒，也不能查询卡片。",
     "Once unbound, this WeChat no longer receives alerts or sees your cards."},
    {WX_INTENT_CARD_UNLOCK, true, "unlock", "解锁需要验证交易密码。",
     "Unlocking needs your transaction password."},
    {WX_INTENT_CARD_ACTIVATE, true, NULL, "激活新卡需要核实身份并设置密码。",
     "Activating a new card needs your identity checked and a password set."},
    {WX_INTENT_SECURITY_GUARD, true, NULL,
     "安全卫士可分别开关网上支付、境外交易、夜间交易，并设置单笔限额。",
     "The security switches turn online, overseas and night-time payments on or off and set a "
     "per-transaction limit."},
    {WX_INTENT_ALERT_SETTINGS, true, NULL, "提醒设置可选择短信提醒的范围和提醒语言（中文或英文）。",
     "Alert settings choose which transactions also go by SMS and the language (Chinese or "
     "English)."},
    {WX_INTENT_COMPLAINT, false, NULL,
     "非常抱歉给您带来不好的体验。请直接描述问题，或回复“转人工”，客服专员会尽快为您处理。",
     "We are sorry for the trouble. Tell us what happened, or reply \"human\" and an agent "
     "will take it up with you."},
    {WX_INTENT_THANKS, false, NULL, "不客气，随时为您服务！", "You're welcome!"},
    {WX_INTENT_GOODBYE, false, NULL, "再见，祝您生活愉快！", "Goodbye, have a nice day!"},
};

static bool words_only(struct turn *t, enum wx_chat_intent intent)
{
    for (size_t i = 0; i < sizeof WORDS_ONLY / sizeof WORDS_ONLY[0]; i++) {
        if (WORDS_ONLY[i].intent != intent) continue;
        if (WORDS_ONLY[i].hand_off) {
            secure_step(t, WORDS_ONLY[i].page, WORDS_ONLY[i].zh, WORDS_ONLY[i].en);
        } else {
            say(t->out, "%s", t->lang == WX_CHAT_EN ? WORDS_ONLY[i].en : WORDS_ONLY[i].zh);
        }
        return true;
    }
    return false;
}

static void bind(struct turn *t)
{
    if (t->in->customer_id != 0) {
        SAY(t, "您的微信已绑定信用卡，可直接查询额度、管理卡片。",
            "This WeChat is already bound to your cards.");
        return;
    }
    secure_step(
        t, "bind",
        "绑定信用卡需要核实身份：登录名（证件号、卡号或预留手机号）、登录密码和图形验证码。",
        "Binding a card needs your identity checked: login name (ID number, card number or "
        "registered mobile), login password and a picture code.");
}

static void limit_increase(struct turn *t)
{
    bool temporary = t->slots.limit_kind == WX_LIMIT_TEMPORARY;
    hand_off(t,
             temporary ? "临时额度可在安全页面申请，有效期通常30至90天。"
                       : "调整信用额度（临时或永久）可在安全页面申请，审核结果会在这里通知您。",
             temporary
                 ? "A temporary limit (usually 30 to 90 days) is requested on the secure page."
                 : "A higher limit, temporary or permanent, is requested on the secure page; "
                   "the decision will be sent here.");
}

/* Answers intent with this turn's slots; the dialogue remembers both for what follows. */
void answer_intent(struct turn *t, enum wx_chat_intent intent)
{
    t->d->intent = intent;
    t->d->slots = t->slots;
    if (needs_binding(intent) && t->in->customer_id == 0) {
        not_bound(t);
        return;
    }
    if (words_only(t, intent)) return;
    switch (intent) {
    case WX_INTENT_GREETING:
        SAY(t, "您好！我是您的信用卡微信助手。\n", "Hello! I am your credit card assistant.\n");
        answer_help(t);
        break;
    case WX_INTENT_HELP:
        answer_help(t);
        break;
    case WX_INTENT_BIND:
        bind(t);
        break;
    case WX_INTENT_BALANCE:
        balance(t);
        break;
    case WX_INTENT_BILL:
    case WX_INTENT_UNBILLED:
    case WX_INTENT_TRANSACTIONS:
    case WX_INTENT_SPENDING_SUMMARY:
    case WX_INTENT_POINTS:
        from_history(t, intent);
        break;
    case WX_INTENT_REPAYMENT:
        repayment(t);
        break;
    case WX_INTENT_INSTALLMENT:
        installment(t);
        break;
    case WX_INTENT_LIMIT_INCREASE:
        limit_increase(t);
        break;
    case WX_INTENT_CARD_LOCK:
        ask_lock(t, false);
        break;
    case WX_INTENT_REPORT_LOST:
        ask_lock(t, true);
        break;
    case WX_INTENT_FAQ:
        faq(t);
        break;
    case WX_INTENT_HUMAN_AGENT:
        t->out->kind = WX_CHAT_REPLY_TRANSFER;
        SAY(t, "正在为您转接人工客服，请稍候。", "Connecting you to an agent, one moment.");
        break;
    default:
        t->c->stats.unknown++;
        SAY(t, "抱歉，我没太听懂。", "Sorry, I did not understand that. ");
        answer_help(t);
        break;
    }
}

/* A stage that waited got what it needed: the intent goes on with it. */
void answer_continue(struct turn *t)
{
    answer_intent(t, t->d->intent);
}

void answer_clarify(struct turn *t, const enum wx_chat_intent *choices, unsigned n)
{
    t->c->stats.clarified++;
    SAY(t, "您是想：", "Did you mean:");
    t->d->nchoices = 0;
    for (unsigned i = 0; i < n && i < CHOICES_MAX; i++) {
        t->d->choices[t->d->nchoices++] = choices[i];
        SAY(t, "\n%u. %s", "\n%u. %s", i + 1, intent_label(choices[i], t->lang));
    }
    SAY(t, "\n请回复数字。", "\nReply with the number.");
    t->d->stage = STAGE_CHOOSE_INTENT;
    t->d->slots = t->slots;
}

/* ---- after a command --------------------------------------------------------------------------
 */

void answer_lock_done(struct turn *t, const struct wx_result *res)
{
    struct wx_card_view card;
    unsigned last4 = answer_card_of(t, t->d->card_id, &card) ? card.last4 : 0;
    if (res->reason == WX_APPROVED) {
        SAY(t, "尾号%04u的信用卡已锁定，该卡的交易将被拒绝。解锁请在安全页面办理。",
            "The card ending %04u is locked: its transactions will be declined. Unlock it on "
            "the secure page.",
            last4);
    } else {
        SAY(t, "尾号%04u的信用卡未能锁定（%s）。如有疑问请回复“转人工”。",
            "The card ending %04u could not be locked (%s). Reply \"human\" for help.", last4,
            wx_reason_str(res->reason));
    }
}
