/*
 * test_chat_dialog.c - the conversation (src/chat: chat.c, answer.c, dialog.c, quote.c):
 * what each intent answers, numbered choices, confirmations, cancel at any step, context
 * carried from one question to the next, dialogues forgotten when idle or evicted, and the
 * installment quotes, and the one-time links to the secure pages.
 *
 * Every turn goes through wx_chat_respond against a real engine. There is no network and no
 * journal: the fixture applies commands to the engine directly, and a lock the conversation
 * asks for is applied the way the webhook would submit it, before wx_chat_command_done gives
 * its words. The follower's customer comes from the engine's binding, as in the webhook.
 *
 * The fixture: customer 1 holds one active main card (last 4: 1234, limit 50,000.00) and is
 * bound to HOLDER; customer 2 holds two active main cards, 1111 (limit 30,000.00) and 2222
 * (limit 20,000.00), and is bound to TWO_CARDS; UNBOUND follows the account without a
 * binding. "Now" is 2026-11-27 12:00 in Shanghai and stays there unless a test moves it.
 *
 * The file includes the private header chat_int.h for quote_make, which declares the
 * module's own say(): the helper that speaks for a follower is therefore say_to().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "chat/chat.h"
#include "chat/chat_int.h"
#include "util/timeutil.h"
#include "core/engine.h"
#include "engine_cmds.h"

#define NOW_MS    1795752000000ll /* 2026-11-27 12:00 in Shanghai */
#define SECOND_MS 1000ll

#define HOLDER    "oDLG_holder_000000000000001"
#define TWO_CARDS "oDLG_two_cards_00000000001"
#define UNBOUND   "oDLG_unbound_0000000000001"

/* Reply texts the tests look for, as the code says them now. */
#define HANDOFF_ZH  "安全页面"
#define ACK_ZH      "好的。还有什么可以帮您？"
#define CANCELLED   "已取消"
#define NOT_BOUND   "尚未绑定"
#define HISTORY_ZH  "暂时无法查询交易记录" /* the words until the history is read */
#define TOO_LONG_ZH "您的消息太长了"
#define CLARIFY_ZH  "您是想："

enum { CARD_1234, CARD_1111, CARD_2222, N_CARDS };

struct fx {
    struct wx_engine_config cfg;
    wx_engine_t *e;
    wx_chat_t *chat;
    struct wx_chat_options opt; /* the options chat was made with */
    int64_t now;                /* the clock of every turn and command */
    unsigned next_key;          /* fixture commands' keys are "<tag>-<n>" */
    uint32_t holder, two_cards; /* customer ids */
    uint32_t card[N_CARDS];     /* card ids */
};

/* ---- the engine ------------------------------------------------------------------------------ */

static void mkkey(struct fx *f, char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "%s-%u", tag, f->next_key++);
}

/* Applies a command the engine must accept (and journal). */
static struct wx_result run_cmd(struct fx *f, const struct wx_cmd *c)
{
    struct wx_row row;
    struct wx_result res;
    int rc = wx_engine_apply(f->e, c, &res, &row);
    if (rc != 1) {
        fail_msg("%s not journaled: %s", wx_cmd_kind_name(c->kind), wx_reason_name(res.reason));
    }
    return res;
}

static uint32_t new_customer(struct fx *f, const char *name, uint64_t seed)
{
    struct wx_cmd c;
    char key[32], mobile[16];
    mkkey(f, key, sizeof key, "cust");
    snprintf(mobile, sizeof mobile, "1390000%04u", (unsigned)seed);
    cmd_customer(&c, key, f->now, name, mobile, seed);
    return run_cmd(f, &c).id;
}

/* An activated main card (its own account) with the given last 4 and limit. */
static uint32_t new_card(struct fx *f, uint32_t customer, uint16_t last4, int64_t limit)
{
    struct wx_cmd c;
    char key[32];
    uint8_t ref[WX_REF_LEN];
    ref_fill(ref, f->next_key);
    mkkey(f, key, sizeof key, "issue");
    cmd_card(&c, key, f->now, customer, 0, ref, limit);
    c.card.last4 = last4;
    uint32_t id = run_cmd(f, &c).id;
    mkkey(f, key, sizeof key, "act");
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, key, f->now, id, 0);
    run_cmd(f, &c);
    return id;
}

static void bind(struct fx *f, const char *openid, uint32_t customer)
{
    struct wx_cmd c;
    char key[32];
    mkkey(f, key, sizeof key, "bind");
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, key, f->now, openid, customer, WX_BIND_CARDHOLDER);
    run_cmd(f, &c);
}

static uint8_t card_status(struct fx *f, uint32_t card_id)
{
    struct wx_card_view v;
    assert_int_equal(wx_engine_card(f->e, card_id, &v), 0);
    return v.status;
}

/* ---- the fixture ----------------------------------------------------------------------------- */

static void chat_open(struct fx *f, const struct wx_chat_options *opt)
{
    wx_chat_free(f->chat);
    f->opt = *opt;
    f->chat = wx_chat_new(opt);
    assert_non_null(f->chat);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->cfg = test_engine_config();
    f->e = wx_engine_new(&f->cfg);
    f->now = NOW_MS;
    f->holder = new_customer(f, "Zhang San", 1);
    f->two_cards = new_customer(f, "Li Si", 2);
    f->card[CARD_1234] = new_card(f, f->holder, 1234, 5000000);
    /* Cards are listed newest first: 2222 is issued first so that 1111 is choice 1. */
    f->card[CARD_2222] = new_card(f, f->two_cards, 2222, 2000000);
    f->card[CARD_1111] = new_card(f, f->two_cards, 1111, 3000000);
    bind(f, HOLDER, f->holder);
    bind(f, TWO_CARDS, f->two_cards);
    struct wx_chat_options opt;
    wx_chat_options_default(&opt);
    chat_open(f, &opt);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    wx_chat_free(f->chat);
    wx_engine_check(f->e);
    wx_engine_free(f->e);
    free(f);
    return 0;
}

/* ---- turns ----------------------------------------------------------------------------------- */

/* The customer an OpenID is bound to, as the webhook finds it; 0 when none. */
static uint32_t customer_of(struct fx *f, const char *openid)
{
    struct wx_follower_view v;
    if (openid == NULL || wx_engine_follower(f->e, openid, &v) != 0) return 0;
    return v.customer_id;
}

static struct wx_chat_input input(struct fx *f, enum wx_chat_input_kind kind, const char *openid,
                                  uint32_t customer, const char *text)
{
    struct wx_chat_input in = {
        .kind = kind, .text = text, .openid = openid, .customer_id = customer, .now_ms = f->now};
    return in;
}

/* One input of any kind, for a follower with an explicit customer. */
static struct wx_chat_reply turn(struct fx *f, enum wx_chat_input_kind kind, const char *openid,
                                 uint32_t customer, const char *text)
{
    struct wx_chat_input in = input(f, kind, openid, customer, text);
    struct wx_chat_reply r;
    memset(&r, 0x5A, sizeof r);
    wx_chat_respond(f->chat, f->e, &in, &r);
    return r;
}

/* The follower types text. */
static struct wx_chat_reply say_to(struct fx *f, const char *openid, const char *text)
{
    return turn(f, WX_CHAT_IN_TEXT, openid, customer_of(f, openid), text);
}

/* After the adapter applied r's command to the engine: what the cardholder is told. */
static struct wx_chat_reply done(struct fx *f, const char *openid, struct wx_chat_reply r,
                                 const struct wx_result *res)
{
    struct wx_chat_input in = input(f, WX_CHAT_IN_TEXT, openid, customer_of(f, openid), "");
    wx_chat_command_done(f->chat, f->e, &in, res, &r);
    return r;
}

/* Fails (naming the caller's line) unless the reply's text contains / lacks sub. */
#define assert_says(r, sub)     says_at(&(r), (sub), true, __LINE__)
#define assert_not_says(r, sub) says_at(&(r), (sub), false, __LINE__)
static void says_at(const struct wx_chat_reply *r, const char *sub, bool want, int line)
{
    bool has = strstr(r->text, sub) != NULL;
    if (has != want) {
        fail_msg("line %d: the reply %s \"%s\":\n---\n%s\n---", line,
                 want ? "lacks" : "should not contain", sub, r->text);
    }
}

/* A text reply with no command. */
#define assert_text(r) text_at(&(r), __LINE__)
static void text_at(const struct wx_chat_reply *r, int line)
{
    if (r->kind != WX_CHAT_REPLY_TEXT || r->has_cmd || r->text[0] == '\0') {
        fail_msg("line %d: kind %d, has_cmd %d, text \"%s\": want a text reply, no command", line,
                 (int)r->kind, (int)r->has_cmd, r->text);
    }
}

/* The reply is the lock command for card_id. */
static void assert_lock_cmd(const struct wx_chat_reply *r, uint32_t card_id)
{
    assert_true(r->has_cmd);
    assert_int_equal(r->cmd.kind, WX_CMD_CARD_STATUS);
    assert_int_equal(r->cmd.card_status.card_id, card_id);
    assert_int_equal(r->cmd.card_status.status, WX_CARD_LOCKED);
    assert_true(r->cmd.key_len > 0);
    assert_true(r->cmd.key_len <= WX_KEY_MAX);
}

/* Leaves every dialogue behind: the next turn starts afresh. */
static void idle(struct fx *f)
{
    f->now += (int64_t)(f->opt.idle_s + 1) * SECOND_MS;
}

static struct wx_chat_parse parse(const char *text)
{
    struct wx_chat_parse p;
    wx_chat_parse(text, strlen(text), NOW_MS, 480, &p);
    return p;
}

/* ---- every intent -----------------------------------------------------------------------------
 */

struct intent_case {
    enum wx_chat_intent intent;
    const char *text; /* one representative message */
    const char *want; /* in the answer */
};

static const struct intent_case INTENT_CASES[] = {
    {WX_INTENT_UNKNOWN, "今天天气怎么样", "抱歉，我没太听懂"},
    {WX_INTENT_GREETING, "你好", "您好！"},
    {WX_INTENT_HELP, "帮助", "您可以直接用文字问我"},
    {WX_INTENT_BIND, "绑定", "已绑定信用卡"},
    {WX_INTENT_UNBIND, "解绑", HANDOFF_ZH},
    {WX_INTENT_BALANCE, "额度", "可用额度：¥50,000.00"},
    {WX_INTENT_BILL, "账单", HISTORY_ZH},
    {WX_INTENT_UNBILLED, "未出账单", HISTORY_ZH},
    {WX_INTENT_TRANSACTIONS, "交易明细", HISTORY_ZH},
    {WX_INTENT_SPENDING_SUMMARY, "消费统计", HISTORY_ZH},
    {WX_INTENT_POINTS, "积分", HISTORY_ZH},
    {WX_INTENT_REPAYMENT, "怎么还款", "您的账单日为每月5日"},
    {WX_INTENT_INSTALLMENT, "想分期", "请问您想分期的金额是多少"},
    {WX_INTENT_LIMIT_INCREASE, "提额", HANDOFF_ZH},
    {WX_INTENT_CARD_LOCK, "锁卡", "确认锁定尾号1234的信用卡吗"},
    {WX_INTENT_CARD_UNLOCK, "解锁", HANDOFF_ZH},
    {WX_INTENT_REPORT_LOST, "钱包连卡一起丢了", "建议先立即锁卡"},
    {WX_INTENT_CARD_ACTIVATE, "激活", HANDOFF_ZH},
    {WX_INTENT_SECURITY_GUARD, "安全卫士", HANDOFF_ZH},
    {WX_INTENT_ALERT_SETTINGS, "提醒设置", HANDOFF_ZH},
    {WX_INTENT_FAQ, "年费怎么免", "年费"},
    {WX_INTENT_HUMAN_AGENT, "转人工", "正在为您转接人工客服"},
    {WX_INTENT_COMPLAINT, "投诉", "非常抱歉"},
    {WX_INTENT_THANKS, "谢谢", "不客气"},
    {WX_INTENT_GOODBYE, "再见", "再见，祝您生活愉快"},
};

static void test_every_intent_answers_in_chinese(void **state)
{
    struct fx *f = *state;
    size_t n = sizeof INTENT_CASES / sizeof INTENT_CASES[0];
    assert_int_equal(n, WX_INTENT_COUNT); /* a new intent needs a row here */
    bool seen[WX_INTENT_COUNT] = {false};
    for (size_t i = 0; i < n; i++) {
        const struct intent_case *c = &INTENT_CASES[i];
        struct wx_chat_parse p = parse(c->text);
        if (p.intent != c->intent) {
            fail_msg("\"%s\" parses as %s, not %s: pick another message", c->text,
                     wx_chat_intent_name(p.intent), wx_chat_intent_name(c->intent));
        }
        assert_false(seen[c->intent]);
        seen[c->intent] = true;
        idle(f); /* each row starts a fresh dialogue */
        struct wx_chat_reply r = say_to(f, HOLDER, c->text);
        assert_false(r.has_cmd);
        assert_int_equal(r.kind, c->intent == WX_INTENT_HUMAN_AGENT ? WX_CHAT_REPLY_TRANSFER
                                                                    : WX_CHAT_REPLY_TEXT);
        /* Statements, transactions and points are read off the loop: the reply asks. */
        bool history = strcmp(c->want, HISTORY_ZH) == 0;
        assert_int_equal(r.needs_history, history);
        if (history) {
            assert_int_equal(r.ask.intent, c->intent);
            assert_int_equal(r.ask.account_id, 1);
        }
        if (strstr(r.text, c->want) == NULL) {
            fail_msg("%s (\"%s\"): the answer lacks \"%s\":\n%s", wx_chat_intent_name(c->intent),
                     c->text, c->want, r.text);
        }
        /* Chinese asked, Chinese answered: none of the English answers' words. */
        assert_null(strstr(r.text, "secure page"));
        assert_null(strstr(r.text, "Reply"));
        assert_null(strstr(r.text, "Sorry"));
    }
}

static void test_english_gets_english(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "what's my balance");
    assert_text(r);
    assert_says(r, "Card ending 1234 (main card)");
    assert_says(r, "Credit limit: CNY 50,000.00");
    assert_says(r, "Available: CNY 50,000.00");
    assert_not_says(r, "额度");

    r = say_to(f, HOLDER, "help");
    assert_text(r);
    assert_says(r, "Just ask in your own words");

    r = say_to(f, HOLDER, "lock my card");
    assert_text(r);
    assert_says(r, "Lock the card ending 1234?");
    r = say_to(f, HOLDER, "yes");
    assert_lock_cmd(&r, f->card[CARD_1234]);
    assert_says(r, "Locking the card");
    struct wx_result res = run_cmd(f, &r.cmd);
    r = done(f, HOLDER, r, &res);
    assert_says(r, "The card ending 1234 is locked");
    assert_false(r.has_cmd);
}

/* ---- not bound ------------------------------------------------------------------------------- */

static void test_unbound_follower(void **state)
{
    struct fx *f = *state;
    assert_int_equal(customer_of(f, UNBOUND), 0);
    struct wx_chat_reply r = say_to(f, UNBOUND, "额度");
    assert_text(r);
    assert_says(r, NOT_BOUND);
    assert_not_says(r, "50,000.00");
    assert_false(r.reads_state);

    r = say_to(f, UNBOUND, "锁卡");
    assert_text(r);
    assert_says(r, NOT_BOUND);
    r = say_to(f, UNBOUND, "确认"); /* no confirmation was asked */
    assert_text(r);
    assert_says(r, ACK_ZH);

    r = say_to(f, UNBOUND, "绑定");
    assert_text(r);
    assert_says(r, "绑定信用卡需要核实身份");
    assert_says(r, HANDOFF_ZH);
}

/* ---- balance --------------------------------------------------------------------------------- */

static void test_balance(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "还剩多少额度");
    assert_text(r);
    assert_true(r.reads_state);
    assert_says(r, "尾号1234 主卡");
    assert_says(r, "信用额度：¥50,000.00");
    assert_says(r, "可用额度：¥50,000.00");
    assert_says(r, "当前欠款：¥0.00");

    r = say_to(f, TWO_CARDS, "额度");
    assert_text(r);
    assert_says(r, "尾号1111 主卡\n信用额度：¥30,000.00");
    assert_says(r, "尾号2222 主卡\n信用额度：¥20,000.00");
    assert_not_says(r, "1234");

    r = say_to(f, TWO_CARDS, "尾号2222额度");
    assert_text(r);
    assert_says(r, "尾号2222 主卡\n信用额度：¥20,000.00");
    assert_not_says(r, "1111");
    assert_not_says(r, "30,000.00");

    r = say_to(f, TWO_CARDS, "尾号9999额度");
    assert_text(r);
    assert_says(r, "您名下没有尾号9999的信用卡");
}

/* ---- card lock ------------------------------------------------------------------------------- */

static void test_lock_one_card(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "锁卡");
    assert_text(r);
    assert_says(r, "确认锁定尾号1234的信用卡吗");
    assert_says(r, "回复“确认”锁卡");

    r = say_to(f, HOLDER, "确认");
    assert_int_equal(r.kind, WX_CHAT_REPLY_TEXT);
    assert_lock_cmd(&r, f->card[CARD_1234]);
    assert_true(r.reads_state);
    assert_says(r, "正在锁卡");
    assert_int_equal(r.cmd.time_ms, f->now);
    assert_int_equal(card_status(f, f->card[CARD_1234]), WX_CARD_ACTIVE); /* reads only */

    struct wx_result res = run_cmd(f, &r.cmd);
    assert_int_equal(res.reason, WX_APPROVED);
    assert_int_equal(card_status(f, f->card[CARD_1234]), WX_CARD_LOCKED);
    r = done(f, HOLDER, r, &res);
    assert_text(r);
    assert_says(r, "尾号1234的信用卡已锁定");
    assert_not_says(r, "正在锁卡");

    r = say_to(f, HOLDER, "锁卡");
    assert_text(r);
    assert_says(r, "您名下没有可锁定的卡片");
    r = say_to(f, HOLDER, "确认"); /* nothing to confirm */
    assert_text(r);
    assert_says(r, ACK_ZH);
}

static void test_lock_refused(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "锁卡");
    r = say_to(f, HOLDER, "确认");
    assert_lock_cmd(&r, f->card[CARD_1234]);

    /* The card is closed between the question and the command: the engine refuses. */
    struct wx_cmd close;
    char key[32];
    mkkey(f, key, sizeof key, "close");
    cmd_status(&close, WX_CMD_CARD_STATUS, key, f->now, f->card[CARD_1234], WX_CARD_CLOSED);
    run_cmd(f, &close);
    struct wx_result res;
    struct wx_row row;
    assert_int_equal(wx_engine_apply(f->e, &r.cmd, &res, &row), 0);
    assert_int_not_equal(res.reason, WX_APPROVED);
    struct wx_chat_reply d = done(f, HOLDER, r, &res);
    assert_text(d);
    assert_says(d, "尾号1234的信用卡未能锁定");
    assert_says(d, wx_reason_str(res.reason));
    assert_says(d, "转人工");
    assert_not_says(d, "已锁定");

    /* A refusal the adapter reports (say the engine's queue was full) reads the same. */
    struct wx_result refused = {.reason = WX_R_CARD_NOT_FOUND};
    d = done(f, HOLDER, r, &refused);
    assert_says(d, "未能锁定");
    assert_says(d, wx_reason_str(WX_R_CARD_NOT_FOUND));
}

static void test_lock_two_cards(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, TWO_CARDS, "锁卡");
    assert_text(r);
    assert_says(r, "您有多张卡，请回复数字选择：\n1. 尾号1111（正常）\n2. 尾号2222（正常）");

    r = say_to(f, TWO_CARDS, "2");
    assert_text(r);
    assert_says(r, "确认锁定尾号2222的信用卡吗");
    assert_not_says(r, "1111");

    r = say_to(f, TWO_CARDS, "取消");
    assert_text(r);
    assert_says(r, CANCELLED);
    r = say_to(f, TWO_CARDS, "确认"); /* the question is gone */
    assert_text(r);
    assert_says(r, ACK_ZH);

    /* Again, through to the command: the card chosen is the one locked. */
    r = say_to(f, TWO_CARDS, "锁卡");
    r = say_to(f, TWO_CARDS, "2");
    r = say_to(f, TWO_CARDS, "确认");
    assert_lock_cmd(&r, f->card[CARD_2222]);
    struct wx_result res = run_cmd(f, &r.cmd);
    r = done(f, TWO_CARDS, r, &res);
    assert_says(r, "尾号2222的信用卡已锁定");
    assert_int_equal(card_status(f, f->card[CARD_1111]), WX_CARD_ACTIVE);

    /* One lockable card left: no question which. */
    r = say_to(f, TWO_CARDS, "锁卡");
    assert_says(r, "确认锁定尾号1111的信用卡吗");
    assert_not_says(r, "多张卡");
}

static void test_lock_card_named_by_last4(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, TWO_CARDS, "尾号2222锁卡");
    assert_text(r);
    assert_says(r, "确认锁定尾号2222的信用卡吗");
    assert_not_says(r, "多张卡");
}

/* After choosing 1111 ("锁卡", "1"), "尾号2222锁卡" -- the cardholder changing their mind --
 * asks about 2222: the card named in the message wins over the one the dialogue remembers. */
static void test_lock_named_card_beats_remembered(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, TWO_CARDS, "锁卡");
    r = say_to(f, TWO_CARDS, "1");
    assert_says(r, "确认锁定尾号1111的信用卡吗");
    r = say_to(f, TWO_CARDS, "尾号2222锁卡");
    assert_text(r);
    assert_says(r, "确认锁定尾号2222的信用卡吗");
    r = say_to(f, TWO_CARDS, "确认");
    assert_lock_cmd(&r, f->card[CARD_2222]);
}

static void test_report_lost_offers_lock(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "钱包连卡一起丢了");
    assert_text(r);
    assert_says(r, "很抱歉听到这个消息");
    assert_says(r, "确认锁定尾号1234的信用卡吗");
    assert_says(r, "正式挂失与补卡");
    r = say_to(f, HOLDER, "确认");
    assert_lock_cmd(&r, f->card[CARD_1234]);
    struct wx_result res = run_cmd(f, &r.cmd);
    r = done(f, HOLDER, r, &res);
    assert_says(r, "已锁定");

    /* Lost again with the card locked: no lock to offer, the loss report is handed off. */
    r = say_to(f, HOLDER, "钱包连卡一起丢了");
    assert_text(r);
    assert_says(r, "您名下没有可锁定的卡片");
    assert_says(r, HANDOFF_ZH);
}

/* ---- installments ---------------------------------------------------------------------------- */

static void test_installment_quote(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "3000分12期");
    assert_text(r);
    assert_says(r, "¥3,000.00分12期试算");
    assert_says(r, "每期本金¥250.00，每期手续费¥19.80");
    assert_says(r, "首期应还¥269.80，以后每期¥269.80");
    assert_says(r, "总手续费¥237.60，总还款¥3,237.60");
    assert_says(r, "年化利率（IRR）约14.3");
    assert_says(r, "回复“确认”申请");

    r = say_to(f, HOLDER, "确认");
    assert_text(r);
    assert_says(r, HANDOFF_ZH);
    assert_says(r, "交易密码");
    r = say_to(f, HOLDER, "确认"); /* answered: nothing open any more */
    assert_says(r, ACK_ZH);
}

static void test_installment_multi_turn(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "想分期");
    assert_text(r);
    assert_says(r, "请问您想分期的金额是多少");

    r = say_to(f, HOLDER, "5000");
    assert_text(r);
    assert_says(r, "请回复分期期数：\n· 3期（每期手续费率0.75%）\n· 6期（每期手续费率"
                   "0.70%）\n· 12期（每期手续费率0.66%）\n· 24期（每期手续费率0.65%）");

    r = say_to(f, HOLDER, "6"); /* the count itself, not an index */
    assert_text(r);
    assert_says(r, "¥5,000.00分6期试算");
    assert_says(r, "每期手续费¥35.00");
    assert_says(r, "总手续费¥210.00，总还款¥5,210.00");

    r = say_to(f, HOLDER, "确认");
    assert_text(r);
    assert_says(r, HANDOFF_ZH);
}

static void test_installment_periods_not_offered(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "3000分5期");
    assert_text(r);
    assert_says(r, "暂不支持5期");
    assert_says(r, "请回复分期期数");
    assert_says(r, "\n· 12期");
    assert_not_says(r, "试算");

    r = say_to(f, HOLDER, "12"); /* 12 periods (not 12.00), the amount kept */
    assert_text(r);
    assert_says(r, "¥3,000.00分12期试算");
    assert_says(r, "每期手续费¥19.80");

    /* An amount the quote refuses asks again for one. */
    r = say_to(f, HOLDER, "2000000000元分12期");
    assert_text(r);
    assert_says(r, "这个金额不能分期");
}

static void test_quote_make(void **state)
{
    (void)state;
    struct quote q;
    assert_int_equal(quote_make(100000, 3, 0, &q), 0);
    assert_int_equal(q.first_principal, 33334);
    assert_int_equal(q.principal_each, 33333);
    assert_int_equal(q.first_principal + 2 * q.principal_each, 100000);
    assert_int_equal(q.fee_each, 0);
    assert_int_equal(q.total, 100000);
    assert_true(q.apr >= 0 && q.apr < 0.01); /* no fee, no interest */

    assert_int_equal(quote_make(300000, 12, 66, &q), 0);
    assert_int_equal(q.principal, 300000);
    assert_int_equal(q.periods, 12);
    assert_int_equal(q.first_principal, 25000);
    assert_int_equal(q.principal_each, 25000);
    assert_int_equal(q.fee_each, 1980);
    assert_int_equal(q.total_fee, 23760);
    assert_int_equal(q.total, 323760);
    assert_true(q.apr > 10 && q.apr < 20);
    assert_true(q.apr >= 14.3 && q.apr < 14.4);

    /* A fee rounds to the fen, half up: 0.66% of 0.75 is 0.495 fen. */
    assert_int_equal(quote_make(75, 2, 66, &q), 0);
    assert_int_equal(q.fee_each, 0);
    assert_int_equal(quote_make(76, 2, 66, &q), 0);
    assert_int_equal(q.fee_each, 1);

    /* Limits, just inside and just outside. */
    assert_int_equal(quote_make(1, 2, 66, &q), 0);
    assert_int_equal(q.first_principal, 1);
    assert_int_equal(q.principal_each, 0);
    assert_int_equal(quote_make(0, 12, 66, &q), -1);
    assert_int_equal(quote_make(-300000, 12, 66, &q), -1);
    assert_int_equal(quote_make(300000, 1, 66, &q), -1);
    assert_int_equal(quote_make(300000, 0, 66, &q), -1);
    assert_int_equal(quote_make(300000, 60, 66, &q), 0);
    assert_int_equal(quote_make(300000, 61, 66, &q), -1);
    assert_int_equal(quote_make(100000000000ll, 24, 65, &q), 0);
    assert_int_equal(quote_make(100000000001ll, 24, 65, &q), -1);
}

/* ---- cancel and answers with nothing open -----------------------------------------------------
 */

struct stage_case {
    const char *openid;
    const char *steps[2]; /* what brings the dialogue to the stage; NULL ends */
    const char *asked;    /* in the question the last step gets */
};

static const struct stage_case STAGES[] = {
    {HOLDER, {"查一下", NULL}, CLARIFY_ZH},                 /* STAGE_CHOOSE_INTENT */
    {TWO_CARDS, {"锁卡", NULL}, "您有多张卡"},              /* STAGE_CHOOSE_CARD */
    {HOLDER, {"想分期", "5000"}, "请回复分期期数"},         /* STAGE_CHOOSE_PERIODS */
    {HOLDER, {"想分期", NULL}, "请问您想分期的金额是多少"}, /* STAGE_ASK_AMOUNT */
    {HOLDER, {"锁卡", NULL}, "确认锁定尾号1234"},           /* STAGE_CONFIRM_LOCK */
    {HOLDER, {"3000分12期", NULL}, "回复“确认”申请"},       /* STAGE_CONFIRM_INSTALLMENT */
};

static void test_cancel_at_every_stage(void **state)
{
    struct fx *f = *state;
    static const char *const CANCELS[] = {"算了", "取消", "cancel"};
    for (size_t s = 0; s < sizeof STAGES / sizeof STAGES[0]; s++) {
        for (size_t k = 0; k < sizeof CANCELS / sizeof CANCELS[0]; k++) {
            const struct stage_case *c = &STAGES[s];
            struct wx_chat_reply r = {0};
            for (size_t i = 0; i < 2 && c->steps[i] != NULL; i++) {
                r = say_to(f, c->openid, c->steps[i]);
            }
            if (strstr(r.text, c->asked) == NULL) {
                fail_msg("stage %zu: \"%s\" not asked:\n%s", s, c->asked, r.text);
            }
            r = say_to(f, c->openid, CANCELS[k]);
            assert_text(r);
            /* A bare "cancel" keeps the dialogue's language: Chinese here. */
            const char *want = "好的，已取消。";
            if (strstr(r.text, want) == NULL) {
                fail_msg("stage %zu, \"%s\": not cancelled:\n%s", s, CANCELS[k], r.text);
            }
            /* What the stage would have taken now finds nothing open: no quote, no lock, no
             * balance. (A bare number with nothing open gets a clarifying question of its
             * own, so the clarifying stage's check is on its answer, not its question.) */
            static const char *const AFTER[] = {"1", "2", "2", "5000", "确认", "确认"};
            r = say_to(f, c->openid, AFTER[s]);
            assert_false(r.has_cmd);
            if (s > 0) assert_not_says(r, c->asked);
            assert_not_says(r, "试算");
            assert_not_says(r, "确认锁定");
            assert_not_says(r, "可用额度");
        }
    }
}

static void test_answer_with_nothing_open(void **state)
{
    struct fx *f = *state;
    static const char *const ANSWERS[] = {"好的", "确认", "不", "算了", "取消"};
    for (size_t i = 0; i < sizeof ANSWERS / sizeof ANSWERS[0]; i++) {
        struct wx_chat_reply r = say_to(f, HOLDER, ANSWERS[i]);
        assert_text(r);
        if (strstr(r.text, ACK_ZH) == NULL || strstr(r.text, HANDOFF_ZH) != NULL) {
            fail_msg("\"%s\" with nothing open:\n%s", ANSWERS[i], r.text);
        }
    }
    struct wx_chat_reply r = say_to(f, HOLDER, "no"); /* a bare no keeps the language */
    assert_says(r, ACK_ZH);
    r = say_to(f, HOLDER, "what is my balance");
    r = say_to(f, HOLDER, "no");
    assert_says(r, "OK. Anything else I can help with?");
}

/* A message that is wholly an answer, with nothing to answer, is acknowledged whatever the
 * classifier says ("cancel" alone classifies as card_unlock), in its own language when it is
 * the first message. */
static void test_cancel_with_nothing_open(void **state)
{
    struct fx *f = *state;
    struct wx_chat_parse p = parse("cancel");
    assert_int_equal(p.slots.answer, WX_ANSWER_CANCEL);
    struct wx_chat_reply r = say_to(f, HOLDER, "cancel");
    assert_text(r);
    assert_says(r, "OK. Anything else I can help with?");
    assert_not_says(r, "secure page");
}

/* A yes to a lock question, given as another confirmation word, and an off-topic message. */
static void test_confirmation_waits(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "锁卡");
    r = say_to(f, HOLDER, "查一下"); /* neither yes nor no, nor clearly new */
    assert_text(r);
    assert_says(r, "请回复“确认”继续，或回复“取消”放弃");
    r = say_to(f, HOLDER, "额度"); /* clearly new: the question is left */
    assert_says(r, "可用额度");
    r = say_to(f, HOLDER, "确认");
    assert_text(r);
    assert_says(r, ACK_ZH);

    r = say_to(f, HOLDER, "锁卡");
    r = say_to(f, HOLDER, "不");
    assert_text(r);
    assert_says(r, "好的，已取消。");
}

/* ---- clarifying questions -------------------------------------------------------------------- */

static void test_clarifying_question(void **state)
{
    struct fx *f = *state;
    struct wx_chat_parse p = parse("查一下");
    assert_true(p.confidence < f->opt.clarify_below);
    assert_int_not_equal(p.intent, WX_INTENT_UNKNOWN);

    struct wx_chat_stats st0, st1;
    wx_chat_stats(f->chat, &st0);
    struct wx_chat_reply r = say_to(f, HOLDER, "查一下");
    assert_text(r);
    wx_chat_stats(f->chat, &st1);
    assert_int_equal(st1.clarified, st0.clarified + 1);

    /* The choices: the likeliest intent, then the runners-up, numbered. */
    char want[256];
    snprintf(want, sizeof want, "%s\n1. %s\n2. %s", CLARIFY_ZH, intent_label(p.intent, 0),
             intent_label(p.runner_up[0], 0));
    assert_says(r, want);
    assert_says(r, "请回复数字");
    assert_int_equal(p.intent, WX_INTENT_BALANCE);

    r = say_to(f, HOLDER, "1");
    assert_text(r);
    assert_says(r, "可用额度：¥50,000.00");

    /* A choice not listed is not taken as one. */
    r = say_to(f, HOLDER, "查一下");
    r = say_to(f, HOLDER, "7");
    assert_not_says(r, "可用额度");
}

static void test_clarify_forced(void **state)
{
    struct fx *f = *state;
    struct wx_chat_options opt;
    wx_chat_options_default(&opt);
    opt.clarify_below = 0.99f;
    chat_open(f, &opt);
    struct wx_chat_parse p = parse("卡");
    assert_true(p.confidence < 0.99f);
    struct wx_chat_reply r = say_to(f, HOLDER, "卡");
    assert_says(r, CLARIFY_ZH);
    assert_says(r, "1. 锁卡");
    r = say_to(f, HOLDER, "1");
    assert_says(r, "确认锁定尾号1234的信用卡吗");
}

/* ---- context carried over -------------------------------------------------------------------- */

/* "那分6期呢" after a quote is the same question with one detail changed: the amount is
 * carried over. */
static void test_follow_up_installment(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "3000分12期");
    assert_says(r, "¥3,000.00分12期试算");
    r = say_to(f, HOLDER, "那分6期呢");
    assert_text(r);
    assert_says(r, "¥3,000.00分6期试算");
    assert_says(r, "每期手续费¥21.00");
}

static void test_follow_up_bill(void **state)
{
    struct fx *f = *state;
    struct wx_chat_parse p = parse("那上个月呢");
    assert_int_not_equal(p.intent, WX_INTENT_BILL); /* on its own it is something else */
    struct wx_chat_reply r = say_to(f, HOLDER, "账单");
    assert_true(r.needs_history);
    assert_int_equal(r.ask.intent, WX_INTENT_BILL);
    /* Today is 2026-11-27 and the statement day the 5th: the latest statement is Nov 5's. */
    assert_int_equal(r.ask.statement_day, wx_days_from_civil(2026, 11, 5));
    r = say_to(f, HOLDER, "那上个月呢");
    assert_true(r.needs_history);
    assert_int_equal(r.ask.intent, WX_INTENT_BILL);
    assert_int_equal(r.ask.statement_day, wx_days_from_civil(2026, 10, 5));
    assert_not_says(r, intent_label(p.intent, 0));

    /* The card carried into a balance question. */
    r = say_to(f, TWO_CARDS, "额度");
    r = say_to(f, TWO_CARDS, "那尾号1111呢");
    assert_text(r);
    assert_says(r, "尾号1111 主卡");
    assert_not_says(r, "2222");
}

/* ---- forgetting ------------------------------------------------------------------------------ */

static void test_expiry(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->opt.idle_s, 300);

    /* Idle exactly idle_s: still remembered. */
    struct wx_chat_reply r = say_to(f, HOLDER, "锁卡");
    f->now += 300 * SECOND_MS;
    r = say_to(f, HOLDER, "确认");
    assert_lock_cmd(&r, f->card[CARD_1234]);

    /* One second more: forgotten. */
    f->now += SECOND_MS;
    r = say_to(f, HOLDER, "锁卡");
    f->now += 301 * SECOND_MS;
    r = say_to(f, HOLDER, "确认");
    assert_text(r);
    assert_says(r, ACK_ZH);

    struct wx_chat_stats st;
    wx_chat_stats(f->chat, &st);
    assert_int_equal(st.dialogues, 1);
    f->now += 301 * SECOND_MS;
    r = say_to(f, TWO_CARDS, "你好"); /* HOLDER's dialogue goes as this one comes */
    wx_chat_stats(f->chat, &st);
    assert_int_equal(st.dialogues, 1);
}

static void test_dialogues_max(void **state)
{
    struct fx *f = *state;
    struct wx_chat_options opt;
    wx_chat_options_default(&opt);
    opt.dialogues_max = 2;
    chat_open(f, &opt);

    struct wx_chat_reply r = say_to(f, HOLDER, "锁卡");
    assert_says(r, "确认锁定尾号1234");
    f->now += SECOND_MS;
    r = say_to(f, TWO_CARDS, "锁卡");
    assert_says(r, "您有多张卡");
    f->now += SECOND_MS;
    r = say_to(f, UNBOUND, "你好"); /* the third: HOLDER, the oldest, goes */
    struct wx_chat_stats st;
    wx_chat_stats(f->chat, &st);
    assert_int_equal(st.dialogues, 2);

    f->now += SECOND_MS;
    r = say_to(f, TWO_CARDS, "2"); /* kept */
    assert_says(r, "确认锁定尾号2222");
    f->now += SECOND_MS;
    r = say_to(f, HOLDER, "确认"); /* evicted: its question is gone */
    assert_text(r);
    assert_says(r, ACK_ZH);
    wx_chat_stats(f->chat, &st);
    assert_true(st.dialogues <= 2);
}

static void test_without_memory(void **state)
{
    struct fx *f = *state;
    char long_id[WX_OPENID_MAX + 2];
    memset(long_id, 'o', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *const IDS[] = {NULL, "", long_id};
    for (size_t i = 0; i < sizeof IDS / sizeof IDS[0]; i++) {
        struct wx_chat_reply r = turn(f, WX_CHAT_IN_TEXT, IDS[i], f->holder, "额度");
        assert_text(r);
        assert_says(r, "可用额度：¥50,000.00");
        r = turn(f, WX_CHAT_IN_TEXT, IDS[i], f->holder, "锁卡");
        assert_says(r, "确认锁定尾号1234");
        r = turn(f, WX_CHAT_IN_TEXT, IDS[i], f->holder, "确认"); /* no memory of the question */
        assert_text(r);
        assert_says(r, ACK_ZH);
        r = turn(f, WX_CHAT_IN_FOLLOW, IDS[i], 0, "");
        assert_says(r, "欢迎关注");

        /* A command's outcome still gets its words, from the command itself. */
        struct wx_chat_reply cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.has_cmd = true;
        cmd.cmd.kind = WX_CMD_CARD_STATUS;
        cmd.cmd.card_status.card_id = f->card[CARD_1234];
        cmd.cmd.card_status.status = WX_CARD_LOCKED;
        struct wx_chat_input in = input(f, WX_CHAT_IN_TEXT, IDS[i], f->holder, "");
        struct wx_result res = {.reason = WX_APPROVED};
        wx_chat_command_done(f->chat, f->e, &in, &res, &cmd);
        assert_says(cmd, "尾号1234的信用卡已锁定");
        assert_false(cmd.has_cmd);
    }
    struct wx_chat_stats st;
    wx_chat_stats(f->chat, &st);
    assert_int_equal(st.dialogues, 0);
}

/* ---- inputs other than text ------------------------------------------------------------------ */

static void test_message_length_limit(void **state)
{
    struct fx *f = *state;
    char text[WX_CHAT_PARSE_MAX + 2];
    memset(text, ' ', sizeof text);
    memcpy(text, "额度", strlen("额度"));
    text[WX_CHAT_PARSE_MAX] = '\0'; /* just under: understood */
    struct wx_chat_reply r = say_to(f, HOLDER, text);
    assert_text(r);
    assert_says(r, "可用额度：¥50,000.00");

    text[WX_CHAT_PARSE_MAX] = ' ';
    text[WX_CHAT_PARSE_MAX + 1] = '\0'; /* just over */
    r = say_to(f, HOLDER, text);
    assert_text(r);
    assert_says(r, TOO_LONG_ZH);
    assert_not_says(r, "可用额度");
}

static void test_other_and_follow(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = turn(f, WX_CHAT_IN_OTHER, HOLDER, f->holder, "");
    assert_int_equal(r.kind, WX_CHAT_REPLY_NONE);
    assert_false(r.has_cmd);
    assert_string_equal(r.text, "");

    r = turn(f, WX_CHAT_IN_FOLLOW, HOLDER, f->holder, "");
    assert_text(r);
    assert_says(r, "欢迎关注");
    assert_says(r, "您可以直接用文字问我");
    assert_not_says(r, NOT_BOUND);

    r = turn(f, WX_CHAT_IN_FOLLOW, UNBOUND, 0, "");
    assert_text(r);
    assert_says(r, "欢迎关注");
    assert_says(r, NOT_BOUND);
    assert_says(r, "回复“绑定”");

    /* Following again ends what was open. */
    r = say_to(f, HOLDER, "锁卡");
    r = turn(f, WX_CHAT_IN_FOLLOW, HOLDER, f->holder, "");
    r = say_to(f, HOLDER, "确认");
    assert_says(r, ACK_ZH);
}

static void test_menu(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = turn(f, WX_CHAT_IN_MENU, HOLDER, f->holder, WX_CHAT_KEY_BALANCE);
    assert_text(r);
    assert_true(r.reads_state);
    assert_says(r, "可用额度：¥50,000.00");

    r = turn(f, WX_CHAT_IN_MENU, HOLDER, f->holder, WX_CHAT_KEY_HELP);
    assert_text(r);
    assert_says(r, "您可以直接用文字问我");

    r = turn(f, WX_CHAT_IN_MENU, HOLDER, f->holder, "NO_SUCH_KEY");
    assert_text(r);
    assert_says(r, "您可以直接用文字问我");

    r = turn(f, WX_CHAT_IN_MENU, UNBOUND, 0, WX_CHAT_KEY_BALANCE);
    assert_says(r, NOT_BOUND);

    /* A menu click leaves an open question. */
    r = say_to(f, HOLDER, "锁卡");
    r = turn(f, WX_CHAT_IN_MENU, HOLDER, f->holder, WX_CHAT_KEY_HELP);
    r = say_to(f, HOLDER, "确认");
    assert_says(r, ACK_ZH);
}

static void test_stats(void **state)
{
    struct fx *f = *state;
    struct wx_chat_stats st;
    wx_chat_stats(f->chat, &st);
    assert_int_equal(st.turns, 0);
    say_to(f, HOLDER, "额度");
    say_to(f, HOLDER, "今天天气怎么样");
    say_to(f, HOLDER, "查一下");
    turn(f, WX_CHAT_IN_OTHER, HOLDER, f->holder, "");
    wx_chat_stats(f->chat, &st);
    assert_int_equal(st.turns, 4);
    assert_int_equal(st.unknown, 1);
    assert_int_equal(st.clarified, 1);
    assert_int_equal(st.dialogues, 1);
}

/* ---- answers from the history (statement.c) --------------------------------------------- */

/* Words for what the history service found, as the webhook gets them. */
static struct wx_chat_reply history_answer(struct fx *f, const char *openid, const char *text,
                                           const struct wx_chat_history_found *found)
{
    struct wx_chat_reply r = say_to(f, openid, text);
    assert_true(r.needs_history);
    struct wx_chat_input in = {.kind = WX_CHAT_IN_TEXT,
                               .text = text,
                               .openid = openid,
                               .customer_id = customer_of(f, openid),
                               .now_ms = f->now};
    wx_chat_history_answer(f->chat, f->e, &in, &r.ask, found, &r);
    assert_false(r.needs_history);
    return r;
}

static struct wx_history_item purchase_item(uint64_t seq, int64_t fen, uint16_t mcc,
                                            const char *merchant)
{
    struct wx_history_item it = {.seq = seq,
                                 .at_ms = 1795752000000ll - (int64_t)seq * 3600000,
                                 .kind = WX_CMD_AUTHORIZE,
                                 .reason = WX_APPROVED,
                                 .channel = WX_CHANNEL_POS,
                                 .mcc = mcc,
                                 .card_id = 1,
                                 .amount = fen,
                                 .posted = fen};
    snprintf(it.merchant, sizeof it.merchant, "%s", merchant);
    return it;
}

/* A statement: its balance, the minimum (10 %, at least 50.00, at most the balance), the
 * due date 20 days after the statement day, and what is left after repayments. */
static void test_bill_words(void **state)
{
    struct fx *f = *state;
    static struct wx_chat_history_found found;
    memset(&found, 0, sizeof found);
    found.owed_cut = 1234567;
    found.paid = 200000;
    struct wx_chat_reply r = history_answer(f, HOLDER, "这个月账单多少", &found);
    assert_says(r, "2026年11月5日账单（尾号1234）");
    assert_says(r, "本期应还：¥12,345.67");
    assert_says(r, "最低还款：¥1,234.57");
    assert_says(r, "到期还款日：2026年11月25日");
    assert_says(r, "尚需还款：¥10,345.67");
    found.owed_cut = 30000;
    found.paid = 0;
    r = history_answer(f, HOLDER, "最低还款多少", &found);
    assert_says(r, "最低还款：¥50.00");
    found.owed_cut = 2000;
    r = history_answer(f, HOLDER, "what's my minimum payment", &found);
    assert_says(r, "Minimum payment: CNY 20.00");
    found.owed_cut = -500; /* a credit balance: nothing due */
    r = history_answer(f, HOLDER, "账单", &found);
    assert_says(r, "本期无需还款");
    found.status = -1;
    r = history_answer(f, HOLDER, "账单", &found);
    assert_says(r, HISTORY_ZH);
}

/* Transactions listed newest first, filtered by merchant under any of its names; a summary
 * by category; points a yuan each. */
static void test_history_words(void **state)
{
    struct fx *f = *state;
    static struct wx_chat_history_found found;
    memset(&found, 0, sizeof found);
    found.items[found.n++] = purchase_item(5, 3800, 5814, "STARBUCKS 静安店");
    found.items[found.n++] = purchase_item(4, 45600, 5411, "盒马鲜生");
    found.items[found.n++] = purchase_item(3, 2500, 5814, "星巴克咖啡");
    struct wx_history_item declined = purchase_item(2, 999900, 5732, "Apple Store");
    declined.reason = WX_R_INSUFFICIENT_CREDIT;
    declined.posted = 0;
    found.items[found.n++] = declined;
    found.totals.count = found.n;
    struct wx_chat_reply r = history_answer(f, HOLDER, "最近的交易", &found);
    assert_says(r, "STARBUCKS 静安店 ¥38.00");
    assert_says(r, "未成功 Apple Store ¥9,999.00（额度不足）");
    assert_says(r, "共4笔，入账消费¥519.00");
    r = history_answer(f, HOLDER, "上个月在星巴克的交易", &found);
    assert_says(r, "共2笔，入账消费¥63.00");
    assert_not_says(r, "盒马");
    r = history_answer(f, HOLDER, "这个月消费分析", &found);
    assert_says(r, "消费合计：¥519.00");
    assert_says(r, "· 超市 ¥456.00（87%）");
    assert_says(r, "· 餐饮 ¥63.00（12%）");
    found.totals.posted = 123456;
    r = history_answer(f, HOLDER, "我有多少积分", &found);
    assert_says(r, "1234分");
}

/* ---- what a review found --------------------------------------------------------------------- */

/* A card named by its last 4 that cannot be locked is said so; another card is never offered
 * in its place; a "no" forgets the card it was about. */
static void test_named_card_never_swapped(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, HOLDER, "锁定尾号9999的卡");
    assert_says(r, "您名下没有尾号9999的卡");
    assert_false(r.has_cmd);
    assert_not_says(r, "确认锁定");
    struct wx_cmd c;
    char key[32];
    mkkey(f, key, sizeof key, "lock");
    cmd_status(&c, WX_CMD_CARD_STATUS, key, f->now, f->card[CARD_2222], WX_CARD_LOCKED);
    run_cmd(f, &c);
    r = say_to(f, TWO_CARDS, "锁定尾号2222的卡");
    assert_says(r, "尾号2222的卡目前已锁定");
    assert_not_says(r, "1111");
    r = say_to(f, HOLDER, "锁卡");
    assert_says(r, "确认锁定尾号1234");
    r = say_to(f, HOLDER, "不");
    assert_says(r, "已取消");
}

/* Asked for the number of periods, "12" is 12 periods, never an amount of 12.00. */
static void test_periods_answer_is_not_an_amount(void **state)
{
    struct fx *f = *state;
    say_to(f, HOLDER, "3000元分期");
    struct wx_chat_reply r = say_to(f, HOLDER, "12");
    assert_says(r, "¥3,000.00分12期试算");
    say_to(f, HOLDER, "取消");
    say_to(f, HOLDER, "3000元分期");
    r = say_to(f, HOLDER, "24");
    assert_says(r, "¥3,000.00分24期试算");
}

/* A confident question of another kind is answered as itself, not as a follow-up. */
static void test_new_question_is_not_a_follow_up(void **state)
{
    struct fx *f = *state;
    say_to(f, HOLDER, "3000分12期");
    say_to(f, HOLDER, "取消");
    struct wx_chat_reply r = say_to(f, HOLDER,
                                    "show my balance and available credit on the card "
                                    "ending 1234");
    assert_says(r, "Available: CNY 50,000.00");
    assert_not_says(r, "installments");
}

/* A numbered choice or a yes keeps the language the dialogue is in. */
static void test_choice_keeps_the_language(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, TWO_CARDS, "lock my card");
    assert_says(r, "Which card?");
    r = say_to(f, TWO_CARDS, "2");
    assert_says(r, "Lock the card ending");
    r = say_to(f, TWO_CARDS, "好的");
    assert_true(r.has_cmd);
    assert_says(r, "Locking the card");
}

/* The lock's idempotency key comes from the channel's message id when there is one. */
static void test_lock_key_from_message_id(void **state)
{
    struct fx *f = *state;
    say_to(f, HOLDER, "锁卡");
    struct wx_chat_input in = input(f, WX_CHAT_IN_TEXT, HOLDER, customer_of(f, HOLDER), "确认");
    in.msg_id = 6054768590064713728ull;
    struct wx_chat_reply r;
    wx_chat_respond(f->chat, f->e, &in, &r);
    assert_true(r.has_cmd);
    char want[64];
    int n = snprintf(want, sizeof want, "chat:lock:%u:m6054768590064713728", f->card[CARD_1234]);
    assert_int_equal(r.cmd.key_len, n);
    assert_memory_equal(r.cmd.key, want, (size_t)n);
}

/* ---- one-time links to the secure pages ------------------------------------------------------ */

#define SOON_ZH     "安全页面即将开放"
#define LINK_ZH     "请点击下面的一次性安全链接完成（5分钟内有效，仅限本人使用，请勿转发）：\n"
#define LINK_EN     "one-time secure link below"
#define BUSY_ZH     "安全页面现在繁忙，请一分钟后再试"
#define BUSY_EN     "busy right now. Please try again in a minute"
#define LINK_PREFIX "https://bank.example/m/go/"

enum link_mode { LINK_OK, LINK_FAIL, LINK_UNTERMINATED, LINK_LONGEST };

/* The link maker's stand-in: what it was asked for, and the link it made. */
struct link_fake {
    enum link_mode mode;
    unsigned calls;
    char openid[WX_OPENID_MAX + 1]; /* of the last call */
    char action[16];                /* of the last call */
    char url[WX_CHAT_TEXT_MAX];     /* the last link made */
};

/* Writes LINK_PREFIX and 64 hex digits that differ from call to call, as the pages' tokens. */
static int fake_link(void *arg, const char *openid, const char *action, int64_t now_ms, char *url,
                     size_t cap)
{
    struct link_fake *k = arg;
    assert_non_null(openid);
    assert_non_null(action);
    assert_int_equal(now_ms, NOW_MS);
    k->calls++;
    snprintf(k->openid, sizeof k->openid, "%s", openid);
    snprintf(k->action, sizeof k->action, "%s", action);
    switch (k->mode) {
    case LINK_FAIL:
        return -1;
    case LINK_UNTERMINATED:
        memset(url, 'x', cap);
        return 5;
    case LINK_LONGEST:
        memset(url, 'a', cap - 1);
        memcpy(url, LINK_PREFIX, strlen(LINK_PREFIX));
        url[cap - 1] = '\0';
        break;
    case LINK_OK: {
        int n = snprintf(url, cap, LINK_PREFIX);
        for (int i = 0; i < 32; i++)
            n += snprintf(url + n, cap - (size_t)n, "%02x", (unsigned)(k->calls * 37 + i) & 0xff);
        break;
    }
    }
    snprintf(k->url, sizeof k->url, "%s", url);
    return 5; /* minutes: the pages' default life of a link */
}

/* The reply ends with the link made, on a line of its own. */
#define assert_link_last(r, k) link_last_at(&(r), (k), __LINE__)
static void link_last_at(const struct wx_chat_reply *r, const struct link_fake *k, int line)
{
    size_t len = strlen(r->text), ulen = strlen(k->url);
    if (ulen == 0 || len <= ulen || strcmp(r->text + len - ulen, k->url) != 0 ||
        r->text[len - ulen - 1] != '\n') {
        fail_msg("line %d: the reply does not end with the link \"%s\" on its own line:\n%s", line,
                 k->url, r->text);
    }
}

static void test_links_bind(void **state)
{
    struct fx *f = *state;
    struct link_fake k = {.mode = LINK_OK};
    wx_chat_set_links(f->chat, fake_link, &k);

    struct wx_chat_reply r = say_to(f, UNBOUND, "绑定");
    assert_text(r);
    assert_int_equal(k.calls, 1);
    assert_string_equal(k.action, "bind");
    assert_string_equal(k.openid, UNBOUND);
    assert_int_equal(strlen(k.url), strlen(LINK_PREFIX) + 64);
    assert_says(r, "绑定信用卡需要核实身份"); /* the explanation stays */
    assert_says(r, LINK_ZH);
    assert_link_last(r, &k);
    assert_not_says(r, SOON_ZH);
    assert_not_says(r, "secure");

    r = say_to(f, UNBOUND, "bind my card");
    assert_text(r);
    assert_int_equal(k.calls, 2);
    assert_string_equal(k.action, "bind");
    assert_says(r, "Binding a card needs your identity checked");
    assert_says(r, LINK_EN);
    assert_says(r, "works once, for 5 minutes");
    assert_says(r, "do not forward it");
    assert_link_last(r, &k);
    assert_not_says(r, "opens soon");
    assert_not_says(r, "安全");

    /* Bound already: nothing to bind, no link made. */
    r = say_to(f, HOLDER, "绑定");
    assert_says(r, "已绑定信用卡");
    assert_not_says(r, LINK_PREFIX);
    assert_int_equal(k.calls, 2);
}

static void test_links_unbind_and_unlock(void **state)
{
    struct fx *f = *state;
    struct link_fake k = {.mode = LINK_OK};
    wx_chat_set_links(f->chat, fake_link, &k);

    struct wx_chat_reply r = say_to(f, HOLDER, "解绑");
    assert_text(r);
    assert_int_equal(k.calls, 1);
    assert_string_equal(k.action, "unbind");
    assert_string_equal(k.openid, HOLDER);
    assert_says(r, "解除绑定后");
    assert_says(r, LINK_ZH);
    assert_link_last(r, &k);

    /* Not bound: nothing to unbind or unlock, and no link. */
    r = say_to(f, UNBOUND, "解绑");
    assert_says(r, NOT_BOUND);
    assert_not_says(r, LINK_PREFIX);
    r = say_to(f, UNBOUND, "解锁");
    assert_says(r, NOT_BOUND);
    assert_not_says(r, LINK_PREFIX);
    assert_int_equal(k.calls, 1);

    r = say_to(f, HOLDER, "解锁");
    assert_int_equal(k.calls, 2);
    assert_string_equal(k.action, "unlock");
    assert_string_equal(k.openid, HOLDER);
    assert_says(r, "解锁需要验证交易密码");
    assert_says(r, LINK_ZH);
    assert_link_last(r, &k);

    r = say_to(f, TWO_CARDS, "unlock my card");
    assert_int_equal(k.calls, 3);
    assert_string_equal(k.action, "unlock");
    assert_string_equal(k.openid, TWO_CARDS);
    assert_says(r, "Unlocking needs your transaction password");
    assert_says(r, LINK_EN);
    assert_link_last(r, &k);
    assert_not_says(r, "解锁");
}

/* The pages not open yet keep their words, link maker or not. */
static void test_links_only_for_open_pages(void **state)
{
    struct fx *f = *state;
    struct link_fake k = {.mode = LINK_OK};
    wx_chat_set_links(f->chat, fake_link, &k);
    const char *const SOON[] = {"激活", "提额", "安全卫士", "提醒设置"};
    for (size_t i = 0; i < sizeof SOON / sizeof SOON[0]; i++) {
        idle(f);
        struct wx_chat_reply r = say_to(f, HOLDER, SOON[i]);
        assert_says(r, SOON_ZH);
        assert_not_says(r, LINK_PREFIX);
    }
    idle(f);
    struct wx_chat_reply r = say_to(f, HOLDER, "钱包连卡一起丢了");
    assert_says(r, "即将开放");
    assert_not_says(r, LINK_PREFIX);
    assert_int_equal(k.calls, 0);
}

static void test_links_busy(void **state)
{
    struct fx *f = *state;
    struct link_fake k = {.mode = LINK_FAIL};
    wx_chat_set_links(f->chat, fake_link, &k);
    struct wx_chat_reply r = say_to(f, UNBOUND, "绑定");
    assert_text(r);
    assert_int_equal(k.calls, 1);
    assert_says(r, "绑定信用卡需要核实身份");
    assert_says(r, BUSY_ZH);
    assert_not_says(r, "https://");
    assert_not_says(r, "链接");
    assert_not_says(r, SOON_ZH);

    r = say_to(f, HOLDER, "unlock my card");
    assert_int_equal(k.calls, 2);
    assert_says(r, BUSY_EN);
    assert_not_says(r, "https://");
    assert_not_says(r, "link");

    /* A link that fills the buffer with no end is no link either. */
    k.mode = LINK_UNTERMINATED;
    r = say_to(f, HOLDER, "解锁");
    assert_int_equal(k.calls, 3);
    assert_says(r, BUSY_ZH);
    assert_not_says(r, "xxxx");
}

/* The longest link the buffer takes still goes whole, after the longest explanation. */
static void test_links_longest(void **state)
{
    struct fx *f = *state;
    struct link_fake k = {.mode = LINK_LONGEST};
    wx_chat_set_links(f->chat, fake_link, &k);
    struct wx_chat_reply r = say_to(f, UNBOUND, "bind my card");
    assert_int_equal(k.calls, 1);
    assert_true(strlen(k.url) > 200);
    assert_says(r, LINK_EN);
    assert_link_last(r, &k);
    assert_true(strlen(r.text) < WX_CHAT_TEXT_MAX);
}

/* Without a link maker, and without a follower to make a link for, the words stay. */
static void test_links_not_set(void **state)
{
    struct fx *f = *state;
    struct wx_chat_reply r = say_to(f, UNBOUND, "绑定");
    assert_says(r, SOON_ZH);
    assert_not_says(r, "https://");
    r = say_to(f, HOLDER, "解锁");
    assert_says(r, SOON_ZH);

    struct link_fake k = {.mode = LINK_OK};
    wx_chat_set_links(f->chat, fake_link, &k);
    r = turn(f, WX_CHAT_IN_TEXT, NULL, 0, "绑定");
    assert_says(r, SOON_ZH);
    r = turn(f, WX_CHAT_IN_TEXT, "", f->holder, "解锁");
    assert_says(r, SOON_ZH);
    assert_int_equal(k.calls, 0);

    wx_chat_set_links(f->chat, NULL, &k);
    r = say_to(f, HOLDER, "解绑");
    assert_says(r, SOON_ZH);
    assert_not_says(r, "https://");
    assert_int_equal(k.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_links_bind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_unbind_and_unlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_only_for_open_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_longest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_not_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named_card_never_swapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periods_answer_is_not_an_amount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_question_is_not_a_follow_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_choice_keeps_the_language, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_key_from_message_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bill_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_intent_answers_in_chinese, setup, teardown),
        cmocka_unit_test_setup_teardown(test_english_gets_english, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbound_follower, setup, teardown),
        cmocka_unit_test_setup_teardown(test_balance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_one_card, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_two_cards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_card_named_by_last4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_named_card_beats_remembered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_lost_offers_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_installment_quote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_installment_multi_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_installment_periods_not_offered, setup, teardown),
        cmocka_unit_test(test_quote_make),
        cmocka_unit_test_setup_teardown(test_cancel_at_every_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_with_nothing_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_with_nothing_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirmation_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clarifying_question, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clarify_forced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_up_installment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_up_bill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dialogues_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_length_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_and_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_menu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
