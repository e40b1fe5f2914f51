/*
 * test_alert.c - the notify module (src/notify): which journal rows alert, who receives them,
 * when an SMS goes too (the policy table: transactions x bindings x expected outcomes, and the
 * fallback after WeChat's outcome), and the words in Chinese and English.
 *
 * Every alert here comes from a real row: the fixture applies commands to an engine, takes
 * the journaled row's bytes and decodes them with wx_row_decode, exactly as the journal's
 * reader will, before wx_alert_from_row sees them. Rendering edge cases (largest fields,
 * buffers one byte short) use alerts built by hand.
 *
 * The fixture: customer 1 (two followers) holds main card A (last 4: 1234) of account 1;
 * customer 2 (one follower) holds supplementary card B (5678) on account 1; customer 3 (no
 * follower) holds main card C (9012) of account 2; customer 4 (no follower) holds
 * supplementary card D (3456) on account 1. Limits are 100,000.00 and nothing is spent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/engine.h"
#include "engine_cmds.h"
#include "notify/notify.h"
#include "util/limits.h"

#define LIMIT      10000000 /* fen: every fixture account's limit, 100,000.00 */
#define BASE_URL   "https://bank.example"
#define SHANGHAI   480 /* minutes east of UTC */
#define FIRST6     "622202"
#define N_CARDS    4
#define SETUP_ROWS 15 /* rows the fixture journals before a test starts */

enum { CARD_A, CARD_B, CARD_C, CARD_D };

struct fx {
    struct wx_engine_config cfg;
    wx_engine_t *e;
    int64_t now;       /* time of every command: T0 (08:00 in Shanghai) */
    unsigned next_key; /* idempotency keys are "<tag>-<n>" */
    uint32_t next_ref; /* seed of the next card reference */
    uint32_t card[N_CARDS], account[N_CARDS];
    uint8_t ref[N_CARDS][WX_REF_LEN];
};

/* A journaled row as the journal's reader sees it. */
struct jrow {
    struct wx_cmd cmd;
    struct wx_result res;
    uint64_t seq;
    int64_t at_ms;
};

static void mkkey(struct fx *f, char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "%s-%u", tag, f->next_key++);
}

/* Applies a command that must be journaled, and decodes its row. */
static void journal(struct fx *f, const struct wx_cmd *c, struct jrow *j)
{
    struct wx_row row;
    struct wx_result res;
    int rc = wx_engine_apply(f->e, c, &res, &row);
    if (rc != 1) {
        fail_msg("%s not journaled: %s", wx_cmd_kind_name(c->kind), wx_reason_name(res.reason));
    }
    assert_int_equal(wx_row_decode(row.buf, row.len, &j->cmd, &j->res), 0);
    j->seq = row.seq;
    j->at_ms = row.at_ms;
}

/* Journals a command and asks whether its row alerts. */
static int alert_of(struct fx *f, const struct wx_cmd *c, int64_t hold, struct wx_alert *a)
{
    struct jrow j;
    journal(f, c, &j);
    return wx_alert_from_row(f->e, &j.cmd, &j.res, j.seq, j.at_ms, hold, a);
}

/* Journals a command whose row must alert. */
static struct wx_alert alert_must(struct fx *f, const struct wx_cmd *c, int64_t hold)
{
    struct wx_alert a;
    memset(&a, 0xAB, sizeof a);
    int rc = alert_of(f, c, hold, &a);
    if (rc != 1) {
        fail_msg("%s: wx_alert_from_row %d, want 1", wx_cmd_kind_name(c->kind), rc);
    }
    return a;
}

/* Journals a command whose row must not alert; the alert is left untouched. */
static void alert_none(struct fx *f, const struct wx_cmd *c, int64_t hold)
{
    struct wx_alert a, before;
    memset(&a, 0x5A, sizeof a);
    before = a;
    int rc = alert_of(f, c, hold, &a);
    if (rc != 0) {
        fail_msg("%s: wx_alert_from_row %d, want 0", wx_cmd_kind_name(c->kind), rc);
    }
    assert_memory_equal(&a, &before, sizeof a);
}

static void run_cmd(struct fx *f, const struct wx_cmd *c)
{
    struct jrow j;
    journal(f, c, &j);
}

static uint32_t new_customer(struct fx *f, const char *name, uint64_t seed)
{
    struct wx_cmd c;
    char key[32], mobile[16];
    mkkey(f, key, sizeof key, "cust");
    snprintf(mobile, sizeof mobile, "1380000%04u", (unsigned)seed);
    cmd_customer(&c, key, f->now, name, mobile, seed);
    struct jrow j;
    journal(f, &c, &j);
    return j.res.id;
}

/* Issues a card (a main card when account is 0) with the given last 4 and expiry. */
static uint32_t new_card(struct fx *f, uint32_t customer, uint32_t account, uint16_t last4,
                         uint16_t expiry, bool activate, uint8_t ref[WX_REF_LEN])
{
    struct wx_cmd c;
    char key[32];
    ref_fill(ref, f->next_ref++);
    mkkey(f, key, sizeof key, "issue");
    cmd_card(&c, key, f->now, customer, account, ref, LIMIT);
    c.card.last4 = last4;
    c.card.expiry = expiry;
    struct jrow j;
    journal(f, &c, &j);
    if (activate) {
        mkkey(f, key, sizeof key, "act");
        cmd_status(&c, WX_CMD_CARD_ACTIVATE, key, f->now, j.res.id, 0);
        run_cmd(f, &c);
    }
    return j.res.id;
}

static void bind(struct fx *f, const char *openid, uint32_t customer)
{
    struct wx_cmd c;
    char key[32];
    mkkey(f, key, sizeof key, "bind");
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, key, f->now, openid, customer, WX_BIND_CARDHOLDER);
    run_cmd(f, &c);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->cfg = test_engine_config();
    f->e = wx_engine_new(&f->cfg);
    f->now = T0_MS;
    uint32_t zhang = new_customer(f, "Zhang San", 1);
    uint32_t xiao = new_customer(f, "Zhang Xiaoming", 2);
    uint32_t li = new_customer(f, "Li Si", 3);
    uint32_t wang = new_customer(f, "Wang Wu", 4);
    f->card[CARD_A] = new_card(f, zhang, 0, 1234, TEST_EXPIRY, true, f->ref[CARD_A]);
    f->card[CARD_B] = new_card(f, xiao, 1, 5678, TEST_EXPIRY, true, f->ref[CARD_B]);
    f->card[CARD_C] = new_card(f, li, 0, 9012, TEST_EXPIRY, true, f->ref[CARD_C]);
    f->card[CARD_D] = new_card(f, wang, 1, 3456, TEST_EXPIRY, true, f->ref[CARD_D]);
    f->account[CARD_A] = f->account[CARD_B] = f->account[CARD_D] = 1;
    f->account[CARD_C] = 2;
    bind(f, "oZhang1", zhang);
    bind(f, "oZhang2", zhang);
    bind(f, "oXiao1", xiao);
    assert_int_equal(wx_engine_last_seq(f->e), SETUP_ROWS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    wx_engine_check(f->e);
    wx_engine_free(f->e);
    free(f);
    return 0;
}

/* ---- command builders ---- */

/* A domestic purchase authorization at a POS terminal; callers adjust the merchant. */
static void purchase(struct fx *f, struct wx_cmd *c, int card, int64_t amount, char *key,
                     size_t key_cap)
{
    mkkey(f, key, key_cap, "auth");
    cmd_auth(c, key, f->now, f->ref[card], amount);
    c->auth.merchant.txn_amount = amount;
    c->auth.merchant.txn_currency = WX_CURRENCY_CNY;
}

/* A foreign merchant: USD 12.34 billed as the amount in CNY. */
static void merchant_abroad(struct wx_merchant *m, bool cross_border)
{
    m->cross_border = cross_border;
    snprintf(m->country, sizeof m->country, "USA");
    snprintf(m->name, sizeof m->name, "AMAZON");
    snprintf(m->city, sizeof m->city, "SEATTLE");
    m->txn_amount = 1234;
    m->txn_currency = 840;
}

static void follow(struct fx *f, struct wx_cmd *c, uint8_t kind, const char *orig, int card,
                   int64_t amount)
{
    char key[32];
    mkkey(f, key, sizeof key, "follow");
    cmd_follow(c, kind, key, f->now, orig, card >= 0 ? f->ref[card] : NULL, amount);
}

static void status(struct fx *f, struct wx_cmd *c, int card, uint8_t to)
{
    char key[32];
    mkkey(f, key, sizeof key, "status");
    cmd_status(c, WX_CMD_CARD_STATUS, key, f->now, f->card[card], to);
}

static void posting(struct fx *f, struct wx_cmd *c, uint8_t kind, uint32_t account, int64_t amt)
{
    char key[32];
    mkkey(f, key, sizeof key, "post");
    cmd_posting(c, kind, key, f->now, account, amt);
}

static void limit(struct fx *f, struct wx_cmd *c, uint8_t kind, uint32_t account, int64_t amt)
{
    char key[32];
    mkkey(f, key, sizeof key, "limit");
    cmd_limit(c, kind, key, f->now, account, amt,
              kind == WX_CMD_TEMP_LIMIT_SET ? f->now + 30 * DAY_MS : 0);
}

/* ---- the policy table ---- */

/* The transactions of the policy table. */
enum txn {
    TX_POS,         /* domestic card-present purchase */
    TX_CNP,         /* domestic quick pay (card not present) */
    TX_ATM,         /* cash at an ATM */
    TX_CASH_POS,    /* cash authorization at a counter terminal */
    TX_CASH_MCC,    /* a purchase typed at a cash MCC (quasi-cash) */
    TX_INTERNAL,    /* a purchase on a channel the policy does not know as quiet */
    TX_XBORDER,     /* acquired abroad */
    TX_FOREIGN_CCY, /* in USD, though not flagged cross-border */
    TX_DECLINE,     /* declined (wrong CVV2) */
    TX_INCREMENT,   /* approved increment of a 100.00 hold */
    TX_CAPTURE,     /* capture of a 100.00 hold for another amount */
    TX_REVERSAL,    /* full reversal of an authorization */
    TX_REFUND,      /* merchant credit */
    TX_REPAYMENT,   /* repayment received */
    TX_LIMIT,       /* permanent limit set */
    TX_TEMP_LIMIT,  /* temporary limit granted */
    TX_LOCK,        /* card locked */
    TX_UNLOCK,      /* card unlocked */
};

struct policy_case {
    const char *name;
    enum txn txn;
    int64_t amount;         /* fen */
    uint8_t kind;           /* the alert expected */
    bool sms_with_follower; /* SMS when the holder has a follower bound */
};

static const struct policy_case policy_cases[] = {
    {"domestic POS 88.00", TX_POS, 8800, WX_ALERT_PURCHASE, false},
    {"domestic POS 299.99", TX_POS, 29999, WX_ALERT_PURCHASE, false},
    {"domestic POS 300.00", TX_POS, 30000, WX_ALERT_PURCHASE, true},
    {"domestic POS 1,234.56", TX_POS, 123456, WX_ALERT_PURCHASE, true},
    {"quick pay 88.00", TX_CNP, 8800, WX_ALERT_PURCHASE, false},
    {"quick pay 299.99", TX_CNP, 29999, WX_ALERT_PURCHASE, false},
    {"quick pay 300.00", TX_CNP, 30000, WX_ALERT_PURCHASE, true},
    {"ATM cash 88.00", TX_ATM, 8800, WX_ALERT_CASH, true},
    {"counter cash 88.00", TX_CASH_POS, 8800, WX_ALERT_CASH, true},
    {"quasi-cash purchase 88.00", TX_CASH_MCC, 8800, WX_ALERT_PURCHASE, true},
    {"internal channel purchase 88.00", TX_INTERNAL, 8800, WX_ALERT_PURCHASE, true},
    {"cross-border 88.00", TX_XBORDER, 8800, WX_ALERT_PURCHASE, true},
    {"foreign currency 88.00", TX_FOREIGN_CCY, 8800, WX_ALERT_PURCHASE, true},
    {"decline 88.00", TX_DECLINE, 8800, WX_ALERT_DECLINED, true},
    {"increment 88.00", TX_INCREMENT, 8800, WX_ALERT_INCREMENT, true},
    {"capture 88.00 of a 100.00 hold", TX_CAPTURE, 8800, WX_ALERT_CAPTURE, true},
    {"reversal 88.00", TX_REVERSAL, 8800, WX_ALERT_REVERSAL, true},
    {"refund 88.00", TX_REFUND, 8800, WX_ALERT_REFUND, true},
    {"repayment 88.00", TX_REPAYMENT, 8800, WX_ALERT_REPAYMENT, true},
    {"limit change", TX_LIMIT, LIMIT, WX_ALERT_LIMIT, true},
    {"temporary limit", TX_TEMP_LIMIT, 500000, WX_ALERT_TEMP_LIMIT, true},
    {"card locked", TX_LOCK, 0, WX_ALERT_CARD_STATUS, true},
    {"card unlocked", TX_UNLOCK, 0, WX_ALERT_CARD_STATUS, true},
};

/* Who is bound: the card's own holder, and (for the recipients) the main holder. For alerts
 * about the account (repayment, limits) the card is the account's main card. */
struct binding {
    const char *name;
    int card;
    size_t holder_followers, recipients;           /* for the card's own alerts */
    size_t main_holder_followers, main_recipients; /* for the account's alerts */
    const char *recipient[3];                      /* the card's own alerts, in order */
    const char *last4, *main_last4;                /* of the card, of the main card */
};

static const struct binding bindings[] = {
    {"main card, holder bound", CARD_A, 2, 2, 2, 2, {"oZhang1", "oZhang2", NULL}, "1234", "1234"},
    {"supplementary, both bound",
     CARD_B,
     1,
     3,
     2,
     2,
     {"oXiao1", "oZhang1", "oZhang2"},
     "5678",
     "1234"},
    {"main card, no follower", CARD_C, 0, 0, 0, 0, {NULL, NULL, NULL}, "9012", "9012"},
    {"supplementary, only main bound",
     CARD_D,
     0,
     2,
     2,
     2,
     {"oZhang1", "oZhang2", NULL},
     "3456",
     "1234"},
};

/* Runs the case's transaction on the card; the row under test is the last. hold gets the
 * hold amount to give wx_alert_from_row. */
static struct wx_alert txn_run(struct fx *f, enum txn t, int card, int64_t amount)
{
    struct wx_cmd c;
    char key[32];
    int64_t hold = -1;
    uint32_t account = f->account[card];
    switch (t) {
    case TX_POS:
    case TX_CNP:
    case TX_ATM:
    case TX_CASH_POS:
    case TX_CASH_MCC:
    case TX_INTERNAL:
    case TX_XBORDER:
    case TX_FOREIGN_CCY:
    case TX_DECLINE:
        purchase(f, &c, card, amount, key, sizeof key);
        c.auth.merchant.channel = t == TX_CNP        ? WX_CHANNEL_CNP
                                  : t == TX_ATM      ? WX_CHANNEL_ATM
                                  : t == TX_INTERNAL ? WX_CHANNEL_INTERNAL
                                                     : WX_CHANNEL_POS;
        if (t == TX_ATM || t == TX_CASH_POS) {
            c.auth.type = WX_AUTH_CASH;
            c.auth.merchant.mcc = t == TX_ATM ? 6011 : 6010;
        }
        if (t == TX_CASH_MCC) {
            c.auth.merchant.mcc = 6010;
        }
        if (t == TX_XBORDER || t == TX_FOREIGN_CCY) {
            merchant_abroad(&c.auth.merchant, t == TX_XBORDER);
        }
        if (t == TX_DECLINE) {
            c.auth.cvv_tag ^= 2;
        }
        break;
    case TX_INCREMENT:
    case TX_CAPTURE:
    case TX_REVERSAL:
        purchase(f, &c, card, t == TX_REVERSAL ? amount : 10000, key, sizeof key);
        run_cmd(f, &c);
        follow(f, &c,
               t == TX_INCREMENT ? WX_CMD_AUTH_INCREMENT
               : t == TX_CAPTURE ? WX_CMD_CAPTURE
                                 : WX_CMD_REVERSAL,
               key, -1, t == TX_REVERSAL ? 0 : amount);
        hold = t == TX_CAPTURE ? 10000 : -1;
        break;
    case TX_REFUND:
        follow(f, &c, WX_CMD_REFUND, NULL, card, amount);
        break;
    case TX_REPAYMENT:
        posting(f, &c, WX_CMD_REPAYMENT, account, amount);
        break;
    case TX_LIMIT:
    case TX_TEMP_LIMIT:
        limit(f, &c, t == TX_LIMIT ? WX_CMD_LIMIT_SET : WX_CMD_TEMP_LIMIT_SET, account, amount);
        break;
    case TX_LOCK:
    case TX_UNLOCK:
        status(f, &c, card, WX_CARD_LOCKED);
        if (t == TX_UNLOCK) {
            run_cmd(f, &c);
            status(f, &c, card, WX_CARD_ACTIVE);
        }
        break;
    }
    struct wx_alert a = alert_must(f, &c, hold);
    if (t == TX_LOCK) {
        status(f, &c, card, WX_CARD_ACTIVE); /* the next case wants an active card */
        run_cmd(f, &c);
    }
    return a;
}

static bool account_kind(uint8_t kind)
{
    return kind == WX_ALERT_REPAYMENT || kind == WX_ALERT_LIMIT || kind == WX_ALERT_TEMP_LIMIT;
}

/* Renders the alert both ways: the last 4 appear, the BIN never does, everything fits. */
static void assert_renders(const struct wx_alert *a, const char *last4)
{
    char text[WX_ALERT_TEXT_MAX];
    for (int lang = WX_LANG_ZH; lang <= WX_LANG_EN; lang++) {
        int n = wx_alert_text(a, (enum wx_lang)lang, SHANGHAI, BASE_URL, text, sizeof text);
        assert_true(n > 0);
        assert_int_equal((size_t)n, strlen(text));
        assert_non_null(strstr(text, last4));
        assert_null(strstr(text, FIRST6));
        assert_non_null(strstr(text, "/m/txn/"));
    }
}

static void check_policy_case(struct fx *f, const struct policy_case *pc, const struct binding *b)
{
    const struct wx_sms_policy p = WX_SMS_POLICY_DEFAULT;
    struct wx_alert a = txn_run(f, pc->txn, b->card, pc->amount);
    bool acct = account_kind(pc->kind);
    size_t want_followers = acct ? b->main_holder_followers : b->holder_followers;
    size_t want_recipients = acct ? b->main_recipients : b->recipients;
    bool want_sms = want_followers == 0 || pc->sms_with_follower;
    struct wx_follower_view to[WX_ALERT_RECIPIENTS_MAX];
    size_t n = wx_alert_recipients(f->e, &a, to, WX_ALERT_RECIPIENTS_MAX);
    size_t followers = wx_alert_holder_followers(f->e, &a);
    bool sms = wx_alert_sms_wanted(&p, &a, followers);
    if (a.kind != pc->kind || followers != want_followers || n != want_recipients ||
        sms != want_sms) {
        fail_msg("%s x %s: kind %s followers %zu recipients %zu sms %d; want %s %zu %zu %d",
                 pc->name, b->name, wx_alert_kind_name(a.kind), followers, n, sms,
                 wx_alert_kind_name(pc->kind), want_followers, want_recipients, want_sms);
    }
    for (size_t i = 0; !acct && i < n; i++) {
        assert_string_equal(to[i].openid, b->recipient[i]);
    }
    assert_renders(&a, acct ? b->main_last4 : b->last4);
}

/* Every transaction of the table on every binding. */
static void test_policy_table(void **state)
{
    struct fx *f = *state;
    for (size_t bi = 0; bi < sizeof bindings / sizeof bindings[0]; bi++) {
        for (size_t ci = 0; ci < sizeof policy_cases / sizeof policy_cases[0]; ci++) {
            check_policy_case(f, &policy_cases[ci], &bindings[bi]);
        }
    }
}

/* The fallback after WeChat's outcome: SMS only for what the first decision held back. */
static void test_policy_fallback(void **state)
{
    struct fx *f = *state;
    const struct wx_sms_policy p = WX_SMS_POLICY_DEFAULT;
    struct {
        const char *name;
        int card;
        enum txn txn;
        int64_t amount;
        bool fallback[4]; /* per enum wx_alert_wechat_outcome */
    } cases[] = {
        /* WeChat alone at first: a failure or a silence sends the SMS after all. */
        {"quiet purchase", CARD_A, TX_POS, 8800, {false, false, true, true}},
        /* The SMS went already with the alert: never a second one. */
        {"loud purchase", CARD_A, TX_POS, 30000, {false, false, false, false}},
        {"decline", CARD_A, TX_DECLINE, 8800, {false, false, false, false}},
        {"no follower", CARD_C, TX_POS, 8800, {false, false, false, false}},
    };
    static const enum wx_alert_wechat_outcome outcomes[] = {
        WX_ALERT_WECHAT_PENDING, WX_ALERT_WECHAT_DELIVERED, WX_ALERT_WECHAT_FAILED,
        WX_ALERT_WECHAT_UNDELIVERED};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wx_alert a = txn_run(f, cases[i].txn, cases[i].card, cases[i].amount);
        size_t followers = wx_alert_holder_followers(f->e, &a);
        for (size_t o = 0; o < 4; o++) {
            bool got = wx_alert_sms_fallback(&p, &a, followers, outcomes[o]);
            if (got != cases[i].fallback[o]) {
                fail_msg("%s, outcome %d: fallback %d", cases[i].name, (int)outcomes[o], got);
            }
            /* Base and fallback together send at most one SMS, and at least one once
             * WeChat has failed. */
            bool base = wx_alert_sms_wanted(&p, &a, followers);
            assert_false(base && got);
            if (outcomes[o] == WX_ALERT_WECHAT_FAILED) {
                assert_true(base || got);
            }
        }
    }
}

/* The policy follows its settings; the default function and initializer agree. */
static void test_policy_settings(void **state)
{
    struct fx *f = *state;
    struct wx_sms_policy d = wx_sms_policy_default();
    assert_int_equal(d.quiet_below_fen, 30000);
    assert_true(d.quiet_pos);
    assert_true(d.quiet_cnp);
    struct wx_alert pos = txn_run(f, TX_POS, CARD_A, 8800);
    struct wx_alert cnp = txn_run(f, TX_CNP, CARD_A, 8800);
    struct wx_alert big = txn_run(f, TX_POS, CARD_A, 99999);
    assert_false(wx_alert_sms_wanted(&d, &pos, 1));
    assert_true(wx_alert_sms_wanted(&d, &big, 1));

    struct wx_sms_policy p = d;
    p.quiet_pos = false;
    assert_true(wx_alert_sms_wanted(&p, &pos, 2));
    assert_false(wx_alert_sms_wanted(&p, &cnp, 2));
    p = d;
    p.quiet_cnp = false;
    assert_false(wx_alert_sms_wanted(&p, &pos, 2));
    assert_true(wx_alert_sms_wanted(&p, &cnp, 2));
    p = d;
    p.quiet_below_fen = 0; /* every purchase by SMS too */
    assert_true(wx_alert_sms_wanted(&p, &pos, 2));
    p.quiet_below_fen = 100000; /* 1,000.00 */
    assert_false(wx_alert_sms_wanted(&p, &big, 2));
    p.quiet_below_fen = 8800; /* just at the amount: not below it */
    assert_true(wx_alert_sms_wanted(&p, &pos, 2));
    p.quiet_below_fen = 8801;
    assert_false(wx_alert_sms_wanted(&p, &pos, 2));
    /* An outcome this build does not know: better one SMS too many. */
    assert_true(wx_alert_sms_fallback(&d, &pos, 2, (enum wx_alert_wechat_outcome)77));
}

/* ---- which rows alert ---- */

/* Rows that are not card activity the holder hears about. */
static void test_rows_without_alert(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    char key[32];
    mkkey(f, key, sizeof key, "cust");
    cmd_customer(&c, key, f->now, "Zhao Liu", "13900000005", 5);
    alert_none(f, &c, -1);
    uint8_t ref[WX_REF_LEN];
    ref_fill(ref, 999);
    mkkey(f, key, sizeof key, "issue");
    cmd_card(&c, key, f->now, 5, 0, ref, LIMIT);
    alert_none(f, &c, -1);
    mkkey(f, key, sizeof key, "bind");
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, key, f->now, "oZhao1", 5, WX_BIND_STAFF);
    alert_none(f, &c, -1);
    mkkey(f, key, sizeof key, "unbind");
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, key, f->now, "oZhao1", 5, WX_BIND_STAFF);
    alert_none(f, &c, -1);
    posting(f, &c, WX_CMD_FEE, 1, 5000);
    alert_none(f, &c, -1);
    posting(f, &c, WX_CMD_INTEREST, 1, 1234);
    alert_none(f, &c, -1);
    /* A tick is journaled when it has work: a hold to expire. The hold's lapse is not
     * announced; the capture that may still come is. */
    purchase(f, &c, CARD_A, 1000, key, sizeof key);
    run_cmd(f, &c);
    mkkey(f, key, sizeof key, "tick");
    cmd_init(&c, WX_CMD_TICK, key, f->now + 8 * DAY_MS);
    alert_none(f, &c, -1);
}

/* Captures: equal to the hold says nothing new; anything else does. */
static void test_rows_capture(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    char k1[32], k2[32], k3[32];
    purchase(f, &c, CARD_A, 10000, k1, sizeof k1);
    run_cmd(f, &c);
    follow(f, &c, WX_CMD_CAPTURE, k1, -1, 10000);
    alert_none(f, &c, 10000); /* the same as its hold */

    purchase(f, &c, CARD_A, 10000, k2, sizeof k2);
    run_cmd(f, &c);
    follow(f, &c, WX_CMD_CAPTURE, k2, -1, 11500); /* a tip: within the tolerance */
    struct wx_alert a = alert_must(f, &c, 10000);
    assert_int_equal(a.kind, WX_ALERT_CAPTURE);
    assert_int_equal(a.amount, 11500);
    assert_int_equal(a.hold_amount, 10000);

    purchase(f, &c, CARD_A, 10000, k3, sizeof k3);
    run_cmd(f, &c);
    follow(f, &c, WX_CMD_CAPTURE, k3, -1, 10000);
    a = alert_must(f, &c, -1); /* the hold is not known: say it */
    assert_int_equal(a.hold_amount, -1);

    follow(f, &c, WX_CMD_CAPTURE, NULL, CARD_A, 4200); /* a force post: no hold at all */
    a = alert_must(f, &c, -1);
    assert_int_equal(a.kind, WX_ALERT_CAPTURE);
    assert_int_equal(a.card_id, f->card[CARD_A]);

    /* Declined follow-ups moved nothing: beyond the tolerance, a hold already closed. */
    follow(f, &c, WX_CMD_CAPTURE, k1, -1, 500);
    alert_none(f, &c, 10000);
    purchase(f, &c, CARD_A, 10000, k1, sizeof k1);
    run_cmd(f, &c);
    follow(f, &c, WX_CMD_CAPTURE, k1, -1, 90000);
    alert_none(f, &c, 10000);
}

/* Reversals, refunds, increments and late originals: only what moved money alerts. */
static void test_rows_followups(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    char k1[32], late[32];
    purchase(f, &c, CARD_B, 20000, k1, sizeof k1);
    run_cmd(f, &c);
    follow(f, &c, WX_CMD_AUTH_INCREMENT, k1, -1, 5000);
    struct wx_alert a = alert_must(f, &c, -1);
    assert_int_equal(a.kind, WX_ALERT_INCREMENT);
    assert_int_equal(a.amount, 5000);
    follow(f, &c, WX_CMD_AUTH_INCREMENT, k1, -1, LIMIT); /* beyond the credit left */
    a = alert_must(f, &c, -1);
    assert_int_equal(a.kind, WX_ALERT_DECLINED);
    assert_int_equal(a.reason, WX_R_INSUFFICIENT_CREDIT);
    assert_int_equal(a.cmd_kind, WX_CMD_AUTH_INCREMENT);
    follow(f, &c, WX_CMD_REVERSAL, k1, -1, 0);
    a = alert_must(f, &c, -1);
    assert_int_equal(a.kind, WX_ALERT_REVERSAL);
    assert_int_equal(a.amount, 25000); /* the hold with its increment */
    assert_int_equal(a.card_id, f->card[CARD_B]);
    follow(f, &c, WX_CMD_REVERSAL, k1, -1, 0); /* again: already reversed */
    alert_none(f, &c, -1);
    follow(f, &c, WX_CMD_AUTH_INCREMENT, k1, -1, 100); /* on a closed hold */
    alert_none(f, &c, -1);

    /* A reversal that overtakes its original: the original arrives late and is declined
     * as already reversed; neither row names anything the holder did. */
    mkkey(f, late, sizeof late, "late");
    follow(f, &c, WX_CMD_REVERSAL, late, -1, 0);
    alert_none(f, &c, -1);
    cmd_auth(&c, late, f->now, f->ref[CARD_A], 7000);
    alert_none(f, &c, -1);

    /* A refund of more than its purchase is declined: nothing moved. */
    purchase(f, &c, CARD_A, 3000, k1, sizeof k1);
    c.auth.capture = 1;
    run_cmd(f, &c);
    follow(f, &c, WX_CMD_REFUND, k1, CARD_A, 3001);
    alert_none(f, &c, -1);
    follow(f, &c, WX_CMD_REFUND, k1, CARD_A, 3000);
    a = alert_must(f, &c, -1);
    assert_int_equal(a.kind, WX_ALERT_REFUND);
}

/* Card status, limits, repayments: the alert's fields. */
static void test_rows_account_and_card(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    char key[32];
    uint8_t ref[WX_REF_LEN];
    uint32_t card = new_card(f, 3, 2, 7777, TEST_EXPIRY, false, ref);
    mkkey(f, key, sizeof key, "act");
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, key, f->now, card, 0);
    struct wx_alert a = alert_must(f, &c, -1);
    assert_int_equal(a.kind, WX_ALERT_CARD_STATUS);
    assert_true(a.activation);
    assert_int_equal(a.card_status, WX_CARD_ACTIVE);
    assert_int_equal(a.last4, 7777);
    assert_true(a.supplementary);

    status(f, &c, CARD_C, WX_CARD_LOST);
    a = alert_must(f, &c, -1);
    assert_false(a.activation);
    assert_int_equal(a.card_status, WX_CARD_LOST);
    assert_int_equal(a.channel, WX_CHANNEL_INTERNAL);

    limit(f, &c, WX_CMD_TEMP_LIMIT_SET, 1, 200000);
    a = alert_must(f, &c, -1);
    assert_int_equal(a.kind, WX_ALERT_TEMP_LIMIT);
    assert_int_equal(a.new_limit, 200000);
    assert_int_equal(a.limit_expires_ms, f->now + 30 * DAY_MS);
    assert_int_equal(a.available_after, LIMIT + 200000);
    assert_int_equal(a.card_id, f->card[CARD_A]); /* the account's main card */
    assert_int_equal(a.last4, 1234);

    posting(f, &c, WX_CMD_REPAYMENT, 1, 12345);
    a = alert_must(f, &c, -1);
    assert_int_equal(a.kind, WX_ALERT_REPAYMENT);
    assert_int_equal(a.amount, 12345);
    assert_int_equal(a.customer_id, 1);
    assert_int_equal(a.main_customer_id, 1);
    assert_false(a.supplementary);
}

/* A purchase alert carries what the row and the engine say, copied. */
static void test_alert_fields_of_purchase(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    char key[32];
    purchase(f, &c, CARD_B, 123456, key, sizeof key);
    c.auth.merchant.channel = WX_CHANNEL_CNP;
    struct jrow j;
    journal(f, &c, &j);
    struct wx_alert a;
    assert_int_equal(wx_alert_from_row(f->e, &j.cmd, &j.res, j.seq, j.at_ms, -1, &a), 1);
    assert_int_equal(a.seq, SETUP_ROWS + 1);
    assert_int_equal(a.at_ms, T0_MS);
    assert_int_equal(a.kind, WX_ALERT_PURCHASE);
    assert_int_equal(a.cmd_kind, WX_CMD_AUTHORIZE);
    assert_int_equal(a.card_id, f->card[CARD_B]);
    assert_int_equal(a.last4, 5678);
    assert_int_equal(a.customer_id, 2);
    assert_int_equal(a.main_customer_id, 1);
    assert_int_equal(a.account_id, 1);
    assert_true(a.supplementary);
    assert_int_equal(a.amount, 123456);
    assert_int_equal(a.txn_currency, 0); /* domestic */
    assert_string_equal(a.merchant_name, "Test Shop 5411");
    assert_string_equal(a.merchant_city, "Shanghai");
    assert_int_equal(a.channel, WX_CHANNEL_CNP);
    assert_false(a.cross_border);
    assert_int_equal(a.mcc, 5411);
    assert_false(a.cash);
    assert_int_equal(a.reason, WX_APPROVED);
    assert_int_equal(a.available_after, LIMIT - 123456);
    assert_int_equal(a.hold_amount, -1);
    /* A repeat's answer is never a new event. */
    j.res.repeat = 1;
    assert_int_equal(wx_alert_from_row(f->e, &j.cmd, &j.res, j.seq, j.at_ms, -1, &a), 0);
}

/* A row naming a card or account the engine does not know: -1, and out untouched. */
static void test_rows_unknown(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    char key[32];
    struct jrow j;
    struct wx_alert a, before;
    memset(&a, 0x33, sizeof a);
    before = a;
    purchase(f, &c, CARD_A, 5000, key, sizeof key);
    journal(f, &c, &j);
    wx_engine_t *empty = wx_engine_new(&f->cfg);
    assert_int_equal(wx_alert_from_row(empty, &j.cmd, &j.res, j.seq, j.at_ms, -1, &a), -1);
    struct jrow bad = j;
    bad.res.id = 999;
    assert_int_equal(wx_alert_from_row(f->e, &bad.cmd, &bad.res, j.seq, j.at_ms, -1, &a), -1);
    bad = j;
    bad.res.account_id = 2; /* card A is not on account 2 */
    assert_int_equal(wx_alert_from_row(f->e, &bad.cmd, &bad.res, j.seq, j.at_ms, -1, &a), -1);
    posting(f, &c, WX_CMD_REPAYMENT, 1, 100);
    journal(f, &c, &j);
    assert_int_equal(wx_alert_from_row(empty, &j.cmd, &j.res, j.seq, j.at_ms, -1, &a), -1);
    bad = j;
    bad.res.account_id = 99;
    assert_int_equal(wx_alert_from_row(f->e, &bad.cmd, &bad.res, j.seq, j.at_ms, -1, &a), -1);
    assert_memory_equal(&a, &before, sizeof a);
    /* A row that does not alert is answered without a look-up. */
    posting(f, &c, WX_CMD_FEE, 1, 100);
    journal(f, &c, &j);
    assert_int_equal(wx_alert_from_row(empty, &j.cmd, &j.res, j.seq, j.at_ms, -1, &a), 0);
    wx_engine_free(empty);
}

/* ---- recipients ---- */

static void test_recipients(void **state)
{
    struct fx *f = *state;
    struct wx_follower_view to[WX_ALERT_RECIPIENTS_MAX];
    struct wx_alert b = txn_run(f, TX_POS, CARD_B, 100);
    /* At most cap, in order: the holder's first. */
    assert_int_equal(wx_alert_recipients(f->e, &b, to, 2), 2);
    assert_string_equal(to[0].openid, "oXiao1");
    assert_string_equal(to[1].openid, "oZhang1");
    assert_int_equal(wx_alert_recipients(f->e, &b, NULL, 0), 0);

    /* A supplementary card the main holder holds himself: his followers once, not twice. */
    uint8_t ref[WX_REF_LEN];
    uint32_t self = new_card(f, 1, 1, 4321, TEST_EXPIRY, true, ref);
    struct wx_alert s = b;
    s.card_id = self;
    s.customer_id = 1;
    s.main_customer_id = 1;
    assert_int_equal(wx_alert_recipients(f->e, &s, to, WX_ALERT_RECIPIENTS_MAX), 2);
    assert_string_equal(to[0].openid, "oZhang1");
    assert_string_equal(to[1].openid, "oZhang2");

    /* Followers as bound now: an unbinding is seen at once, a full house fits. */
    struct wx_cmd c;
    char key[32];
    mkkey(f, key, sizeof key, "unbind");
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, key, f->now, "oZhang1", 1, WX_BIND_UNSUBSCRIBED);
    run_cmd(f, &c);
    assert_int_equal(wx_alert_recipients(f->e, &b, to, WX_ALERT_RECIPIENTS_MAX), 2);
    assert_string_equal(to[1].openid, "oZhang2");
    for (int i = 1; i < WX_FOLLOWERS_PER_CUSTOMER; i++) {
        char id[24];
        snprintf(id, sizeof id, "oMain%d", i);
        bind(f, id, 1);
        snprintf(id, sizeof id, "oSupp%d", i);
        bind(f, id, 2);
    }
    size_t n = wx_alert_recipients(f->e, &b, to, WX_ALERT_RECIPIENTS_MAX);
    assert_int_equal(n, WX_ALERT_RECIPIENTS_MAX);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = i + 1; k < n; k++) {
            assert_string_not_equal(to[i].openid, to[k].openid);
        }
    }
    assert_int_equal(wx_alert_holder_followers(f->e, &b), WX_FOLLOWERS_PER_CUSTOMER);
}

/* ---- rendering ---- */

static void assert_text(const struct wx_alert *a, enum wx_lang lang, const char *want)
{
    char text[WX_ALERT_TEXT_MAX];
    int n = wx_alert_text(a, lang, SHANGHAI, BASE_URL, text, sizeof text);
    if (n < 0 || strcmp(text, want) != 0) {
        fail_msg("rendered %d:\n  got  %s\n  want %s", n, text, want);
    }
    assert_int_equal((size_t)n, strlen(want));
}

/* The exact words, in Asia/Shanghai time (T0 is midnight UTC: 08:00 local). */
static void test_text_exact(void **state)
{
    struct fx *f = *state;
    struct wx_alert a = txn_run(f, TX_POS, CARD_A, 8800);
    assert_int_equal(a.seq, SETUP_ROWS + 1);
    assert_text(&a, WX_LANG_ZH,
                "您尾号1234的信用卡于2026-01-15 08:00:00在Test Shop 5411（Shanghai）消费88.00元，"
                "可用额度99,912.00元。详情：https://bank.example/m/txn/16");
    assert_text(&a, WX_LANG_EN,
                "Card ending 1234: purchase of CNY 88.00 at Test Shop 5411, Shanghai on "
                "2026-01-15 08:00:00. Available credit CNY 99,912.00. Details: "
                "https://bank.example/m/txn/16");

    struct wx_alert d = txn_run(f, TX_POS, CARD_B, 20000000); /* beyond the 100,000.00 */
    assert_int_equal(d.kind, WX_ALERT_DECLINED);
    assert_text(&d, WX_LANG_ZH,
                "您尾号5678的附属卡于2026-01-15 08:00:00在Test Shop 5411（Shanghai）的一笔消费"
                "200,000.00元未成功，原因：额度不足，可用额度99,912.00元。详情："
                "https://bank.example/m/txn/17");
    assert_text(&d, WX_LANG_EN,
                "Supplementary card ending 5678: purchase of CNY 200,000.00 at Test Shop 5411, "
                "Shanghai on 2026-01-15 08:00:00 declined: insufficient credit. Available credit "
                "CNY 99,912.00. Details: https://bank.example/m/txn/17");

    struct wx_alert r = txn_run(f, TX_REPAYMENT, CARD_A, 123456);
    assert_text(&r, WX_LANG_ZH,
                "您尾号1234的信用卡于2026-01-15 08:00:00还款到账1,234.56元，可用额度101,146.56元。"
                "详情：https://bank.example/m/txn/18");
    assert_text(&r, WX_LANG_EN,
                "Card ending 1234: repayment of CNY 1,234.56 received on 2026-01-15 08:00:00. "
                "Available credit CNY 101,146.56. Details: https://bank.example/m/txn/18");

    struct wx_alert s = txn_run(f, TX_LOCK, CARD_C, 0);
    assert_text(
        &s, WX_LANG_ZH,
        "您尾号9012的信用卡于2026-01-15 08:00:00已锁定。详情：https://bank.example/m/txn/19");
    assert_text(&s, WX_LANG_EN,
                "Card ending 9012: locked on 2026-01-15 08:00:00. Details: "
                "https://bank.example/m/txn/19");

    /* Other zones; no link without a base URL. */
    char text[WX_ALERT_TEXT_MAX];
    assert_true(wx_alert_text(&a, WX_LANG_EN, 0, NULL, text, sizeof text) > 0);
    assert_string_equal(text, "Card ending 1234: purchase of CNY 88.00 at Test Shop 5411, "
                              "Shanghai on 2026-01-15 00:00:00. Available credit CNY 99,912.00.");
    assert_true(wx_alert_text(&a, WX_LANG_ZH, -300, "", text, sizeof text) > 0);
    assert_non_null(strstr(text, "于2026-01-14 19:00:00在"));
    assert_null(strstr(text, "详情"));
}

/* Every kind in both languages: its words, and the fields for templates. */
static void test_text_kinds(void **state)
{
    struct fx *f = *state;
    struct {
        enum txn txn;
        int card;
        int64_t amount;
        const char *zh, *en;
    } cases[] = {
        {TX_ATM, CARD_A, 50000, "在Test Shop 5411（Shanghai）取现500.00元，",
         "cash withdrawal of CNY 500.00 at"},
        {TX_INCREMENT, CARD_A, 2000, "追加授权20.00元，",
         "authorization increased by CNY 20.00 at"},
        {TX_CAPTURE, CARD_A, 11000, "的交易入账110.00元（授权金额100.00元），",
         "CNY 110.00 posted at Test Shop 5411, Shanghai on 2026-01-15 08:00:00 (authorized CNY "
         "100.00)."},
        {TX_REVERSAL, CARD_A, 3000, "的交易已撤销30.00元，", "CNY 30.00 reversed at"},
        {TX_REFUND, CARD_A, 4000,
         "于2026-01-15 08:00:00收到Test Shop 5411（Shanghai）退货40.00元，",
         "refund of CNY 40.00 from Test Shop 5411, Shanghai on"},
        {TX_LIMIT, CARD_B, 20000000,
         "尾号1234的信用卡于2026-01-15 08:00:00信用额度调整为200,000.00元，",
         "Card ending 1234: credit limit changed to CNY 200,000.00 on"},
        {TX_TEMP_LIMIT, CARD_A, 500000,
         "获得临时额度5,000.00元，有效期至2026-02-14 08:00:00，可用额度",
         "temporary extra limit of CNY 5,000.00 on 2026-01-15 08:00:00, valid until 2026-02-14 "
         "08:00:00."},
        {TX_TEMP_LIMIT, CARD_A, 0, "临时额度已取消，可用额度",
         "temporary extra limit withdrawn on"},
        {TX_UNLOCK, CARD_A, 0, "08:00:00已解锁。", ": unlocked on"},
        {TX_DECLINE, CARD_A, 8800, "原因：卡片信息有误", "declined: incorrect card details."},
    };
    char text[WX_ALERT_TEXT_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wx_alert a = txn_run(f, cases[i].txn, cases[i].card, cases[i].amount);
        assert_true(wx_alert_text(&a, WX_LANG_ZH, SHANGHAI, BASE_URL, text, sizeof text) > 0);
        if (strstr(text, cases[i].zh) == NULL) {
            fail_msg("case %zu zh: '%s' lacks '%s'", i, text, cases[i].zh);
        }
        assert_true(wx_alert_text(&a, WX_LANG_EN, SHANGHAI, BASE_URL, text, sizeof text) > 0);
        if (strstr(text, cases[i].en) == NULL) {
            fail_msg("case %zu en: '%s' lacks '%s'", i, text, cases[i].en);
        }
    }
}

static void test_fields(void **state)
{
    struct fx *f = *state;
    struct wx_alert_fields fl;
    struct wx_alert a = txn_run(f, TX_POS, CARD_B, 123456);
    assert_int_equal(wx_alert_fields(&a, WX_LANG_ZH, SHANGHAI, BASE_URL "/", &fl), 0);
    assert_string_equal(fl.title, "消费提醒");
    assert_string_equal(fl.card, "附属卡尾号5678");
    assert_string_equal(fl.kind, "消费");
    assert_string_equal(fl.amount, "1,234.56元");
    assert_string_equal(fl.merchant, "Test Shop 5411（Shanghai）");
    assert_string_equal(fl.time, "2026-01-15 08:00:00");
    assert_string_equal(fl.available, "98,765.44元");
    assert_string_equal(fl.remark, "");
    assert_string_equal(fl.url, "https://bank.example/m/txn/16");
    assert_int_equal(wx_alert_fields(&a, WX_LANG_EN, SHANGHAI, BASE_URL "///", &fl), 0);
    assert_string_equal(fl.title, "Purchase alert");
    assert_string_equal(fl.card, "Supplementary card ending 5678");
    assert_string_equal(fl.kind, "Purchase");
    assert_string_equal(fl.amount, "CNY 1,234.56");
    assert_string_equal(fl.merchant, "Test Shop 5411, Shanghai");
    assert_string_equal(fl.available, "CNY 98,765.44");
    assert_string_equal(fl.url, "https://bank.example/m/txn/16");

    struct wx_alert d = txn_run(f, TX_ATM, CARD_C, 20000000);
    assert_int_equal(d.kind, WX_ALERT_DECLINED);
    assert_int_equal(wx_alert_fields(&d, WX_LANG_ZH, SHANGHAI, NULL, &fl), 0);
    assert_string_equal(fl.title, "交易失败提醒");
    assert_string_equal(fl.kind, "取现未成功");
    assert_string_equal(fl.remark, "原因：额度不足");
    assert_string_equal(fl.url, "");
    assert_int_equal(wx_alert_fields(&d, WX_LANG_EN, SHANGHAI, NULL, &fl), 0);
    assert_string_equal(fl.kind, "Cash withdrawal declined");
    assert_string_equal(fl.remark, "Reason: insufficient credit");

    struct wx_alert s = txn_run(f, TX_LOCK, CARD_A, 0);
    assert_int_equal(wx_alert_fields(&s, WX_LANG_ZH, SHANGHAI, BASE_URL, &fl), 0);
    assert_string_equal(fl.remark, "卡片已锁定");
    assert_string_equal(fl.amount, "");
    assert_string_equal(fl.available, "");
    assert_string_equal(fl.merchant, "");
    assert_string_equal(wx_alert_kind_name(s.kind), "card_status");

    struct wx_alert t = txn_run(f, TX_TEMP_LIMIT, CARD_A, 500000);
    assert_int_equal(wx_alert_fields(&t, WX_LANG_EN, SHANGHAI, BASE_URL, &fl), 0);
    assert_string_equal(fl.amount, "CNY 5,000.00");
    assert_string_equal(fl.remark, "Valid until 2026-02-14 08:00:00");
}

/* Declines say why, in plain words, for each reason a journaled decline carries. */
static void test_decline_reasons(void **state)
{
    struct fx *f = *state;
    enum { NONE, WRONG_EXPIRY, WRONG_CVV, TOO_MUCH };
    struct {
        uint8_t reason;
        uint8_t status; /* the card's status before the authorization */
        bool activate;
        uint16_t expiry;
        int how;
        const char *zh, *en;
    } cases[] = {
        {WX_R_INSUFFICIENT_CREDIT, 0, true, TEST_EXPIRY, TOO_MUCH, "额度不足",
         "insufficient credit"},
        {WX_R_CARD_LOCKED, WX_CARD_LOCKED, true, TEST_EXPIRY, NONE, "卡片已锁定", "card locked"},
        {WX_R_CARD_LOST, WX_CARD_LOST, true, TEST_EXPIRY, NONE, "卡片已挂失", "card reported lost"},
        {WX_R_CARD_STOLEN, WX_CARD_STOLEN, true, TEST_EXPIRY, NONE, "卡片已挂失（被盗）",
         "card reported stolen"},
        {WX_R_CARD_CLOSED, WX_CARD_CLOSED, true, TEST_EXPIRY, NONE, "卡片已注销", "card closed"},
        {WX_R_CARD_EXPIRED, 0, true, 2512, NONE, "卡片已过期", "card expired"},
        {WX_R_WRONG_EXPIRY, 0, true, TEST_EXPIRY, WRONG_EXPIRY, "卡片信息有误",
         "incorrect card details"},
        {WX_R_WRONG_CVV, 0, true, TEST_EXPIRY, WRONG_CVV, "卡片信息有误", "incorrect card details"},
        {WX_R_CARD_NOT_ACTIVATED, 0, false, TEST_EXPIRY, NONE, "卡片未激活", "card not activated"},
    };
    char text[WX_ALERT_TEXT_MAX], key[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t ref[WX_REF_LEN];
        struct wx_cmd c;
        uint32_t card =
            new_card(f, 3, 0, (uint16_t)(1000 + i), cases[i].expiry, cases[i].activate, ref);
        if (cases[i].status != 0) {
            mkkey(f, key, sizeof key, "status");
            cmd_status(&c, WX_CMD_CARD_STATUS, key, f->now, card, cases[i].status);
            run_cmd(f, &c);
        }
        mkkey(f, key, sizeof key, "auth");
        cmd_auth(&c, key, f->now, ref, cases[i].how == TOO_MUCH ? LIMIT + 1 : 8800);
        c.auth.expiry = cases[i].how == WRONG_EXPIRY ? 2911 : cases[i].expiry;
        c.auth.cvv_tag ^= cases[i].how == WRONG_CVV ? 2 : 0;
        struct wx_alert a = alert_must(f, &c, -1);
        assert_int_equal(a.kind, WX_ALERT_DECLINED);
        assert_int_equal(a.reason, cases[i].reason);
        assert_string_equal(wx_alert_reason_text(a.reason, WX_LANG_ZH), cases[i].zh);
        assert_string_equal(wx_alert_reason_text(a.reason, WX_LANG_EN), cases[i].en);
        assert_true(wx_alert_text(&a, WX_LANG_ZH, SHANGHAI, BASE_URL, text, sizeof text) > 0);
        assert_non_null(strstr(text, cases[i].zh));
        assert_true(wx_alert_text(&a, WX_LANG_EN, SHANGHAI, BASE_URL, text, sizeof text) > 0);
        assert_non_null(strstr(text, cases[i].en));
    }
    /* Every reason has words; those no decline carries fall back to generic ones. */
    const char *generic = wx_alert_reason_text(250, WX_LANG_ZH);
    assert_string_equal(generic, "交易未成功，如有疑问请联系客服");
    assert_string_equal(wx_alert_reason_text(250, WX_LANG_EN), "declined, please contact us");
    for (uint8_t r = 0; r < WX_R_COUNT; r++) {
        assert_true(strlen(wx_alert_reason_text(r, WX_LANG_ZH)) > 0);
        assert_true(strlen(wx_alert_reason_text(r, WX_LANG_EN)) > 0);
    }
    assert_string_equal(wx_alert_reason_text(WX_R_BALANCE_OVERFLOW, WX_LANG_EN),
                        "amount too large");
}

/* Cross-border: the original currency first, CNY after; minor units as the currency has. */
static void test_text_cross_border(void **state)
{
    struct fx *f = *state;
    struct wx_alert a = txn_run(f, TX_XBORDER, CARD_A, 8800);
    assert_true(a.cross_border);
    assert_int_equal(a.txn_amount, 1234);
    assert_int_equal(a.txn_currency, 840);
    assert_text(&a, WX_LANG_EN,
                "Card ending 1234: purchase of USD 12.34 (CNY 88.00) at AMAZON, SEATTLE on "
                "2026-01-15 08:00:00. Available credit CNY 99,912.00. Details: "
                "https://bank.example/m/txn/16");
    assert_text(&a, WX_LANG_ZH,
                "您尾号1234的信用卡于2026-01-15 08:00:00在AMAZON（SEATTLE）消费USD 12.34"
                "（折合人民币88.00元），可用额度99,912.00元。详情：https://bank.example/m/txn/16");
    struct wx_alert_fields fl;
    a.txn_currency = 392; /* JPY has no minor unit */
    a.txn_amount = 1234567;
    assert_int_equal(wx_alert_fields(&a, WX_LANG_EN, SHANGHAI, BASE_URL, &fl), 0);
    assert_string_equal(fl.amount, "JPY 1,234,567 (CNY 88.00)");
    a.txn_currency = 999; /* a currency this build cannot name: CNY only */
    assert_int_equal(wx_alert_fields(&a, WX_LANG_EN, SHANGHAI, BASE_URL, &fl), 0);
    assert_string_equal(fl.amount, "CNY 88.00");
}

static bool has_control(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

/* Merchant names come from outside: control, bidi and broken bytes never reach a phone. */
static void test_text_merchant_cleaned(void **state)
{
    struct fx *f = *state;
    static const char evil[] = "\x1b[31mEvil\xe2\x80\xaeShop\xc2\x9b\xff星巴克\r\n";
    struct wx_cmd c;
    char key[32];
    purchase(f, &c, CARD_A, 8800, key, sizeof key);
    snprintf(c.auth.merchant.name, sizeof c.auth.merchant.name, "%s", evil);
    snprintf(c.auth.merchant.city, sizeof c.auth.merchant.city, " \tSHANG\aHAI ");
    struct wx_alert a = alert_must(f, &c, -1);
    assert_string_equal(a.merchant_name, evil); /* kept as received */
    char text[WX_ALERT_TEXT_MAX];
    for (int lang = WX_LANG_ZH; lang <= WX_LANG_EN; lang++) {
        assert_true(wx_alert_text(&a, (enum wx_lang)lang, SHANGHAI, BASE_URL, text, sizeof text) >
                    0);
        assert_false(has_control(text));
        assert_null(strstr(text, "\xe2\x80\xae"));
        assert_null(strstr(text, "\xc2\x9b"));
        assert_null(strstr(text, "\xff"));
    }
    struct wx_alert_fields fl;
    assert_int_equal(wx_alert_fields(&a, WX_LANG_ZH, SHANGHAI, BASE_URL, &fl), 0);
    assert_string_equal(fl.merchant, "[31mEvilShop?星巴克（SHANGHAI）");
    /* Blanks only: no merchant at all. */
    memset(a.merchant_name, ' ', 10);
    a.merchant_name[10] = '\0';
    snprintf(a.merchant_city, sizeof a.merchant_city, "\r\n");
    assert_int_equal(wx_alert_fields(&a, WX_LANG_EN, SHANGHAI, BASE_URL, &fl), 0);
    assert_string_equal(fl.merchant, "");
    assert_true(wx_alert_text(&a, WX_LANG_EN, SHANGHAI, BASE_URL, text, sizeof text) > 0);
    assert_non_null(strstr(text, "purchase of CNY 88.00 on 2026"));
}

/* Buffers one byte short fail whole; bad arguments fail. */
static void test_text_limits(void **state)
{
    struct fx *f = *state;
    struct wx_alert a = txn_run(f, TX_XBORDER, CARD_B, 8800);
    char text[WX_ALERT_TEXT_MAX];
    for (int lang = WX_LANG_ZH; lang <= WX_LANG_EN; lang++) {
        int n = wx_alert_text(&a, (enum wx_lang)lang, SHANGHAI, BASE_URL, text, sizeof text);
        assert_true(n > 0);
        char small[WX_ALERT_TEXT_MAX];
        for (size_t cap = 0; cap <= (size_t)n; cap++) {
            memset(small, 'x', sizeof small);
            assert_int_equal(wx_alert_text(&a, (enum wx_lang)lang, SHANGHAI, BASE_URL, small, cap),
                             -1);
            if (cap > 0) {
                assert_int_equal(small[0], '\0'); /* nothing partial to send by mistake */
            }
        }
        assert_int_equal(
            wx_alert_text(&a, (enum wx_lang)lang, SHANGHAI, BASE_URL, small, (size_t)n + 1), n);
        assert_string_equal(small, text);
    }
    assert_int_equal(wx_alert_text(&a, WX_LANG_ZH, 14 * 60 + 1, BASE_URL, text, sizeof text), -1);
    assert_int_equal(wx_alert_text(&a, WX_LANG_ZH, -14 * 60 - 1, BASE_URL, text, sizeof text), -1);
    assert_true(wx_alert_text(&a, WX_LANG_ZH, -14 * 60, BASE_URL, text, sizeof text) > 0);
    assert_int_equal(wx_alert_text(&a, WX_LANG_ZH, SHANGHAI, "https://x y", text, sizeof text), -1);
    assert_int_equal(wx_alert_text(&a, WX_LANG_ZH, SHANGHAI, "https://x\n", text, sizeof text), -1);
    struct wx_alert none = a;
    none.kind = WX_ALERT_NONE;
    assert_int_equal(wx_alert_text(&none, WX_LANG_ZH, SHANGHAI, BASE_URL, text, sizeof text), -1);

    /* The link: base + "/m/txn/16" must fit WX_ALERT_URL_MAX with its NUL. */
    struct wx_alert_fields fl;
    char base[WX_ALERT_URL_MAX + 1];
    size_t tail = strlen("/m/txn/16");
    assert_int_equal(a.seq, 16);
    memset(base, 'b', sizeof base);
    base[WX_ALERT_URL_MAX - 1 - tail] = '\0';
    assert_int_equal(wx_alert_fields(&a, WX_LANG_EN, SHANGHAI, base, &fl), 0);
    assert_int_equal(strlen(fl.url), WX_ALERT_URL_MAX - 1);
    assert_true(wx_alert_text(&a, WX_LANG_EN, SHANGHAI, base, text, sizeof text) > 0);
    memset(base, 'b', sizeof base);
    base[WX_ALERT_URL_MAX - tail] = '\0';
    assert_int_equal(wx_alert_fields(&a, WX_LANG_EN, SHANGHAI, base, &fl), -1);
    assert_int_equal(wx_alert_text(&a, WX_LANG_EN, SHANGHAI, base, text, sizeof text), -1);
}

/* The largest alert of every kind fits WX_ALERT_TEXT_MAX, in both languages. */
static void test_text_max_fits(void **state)
{
    (void)state;
    struct wx_alert a;
    memset(&a, 0, sizeof a);
    a.seq = UINT64_MAX;
    a.at_ms = INT64_MAX / 2;
    a.last4 = 9999;
    a.supplementary = true;
    a.amount = INT64_MIN;
    a.txn_amount = INT64_MAX;
    a.txn_currency = 840;
    a.available_after = INT64_MIN;
    a.hold_amount = INT64_MAX;
    a.new_limit = INT64_MAX;
    a.limit_expires_ms = INT64_MAX / 2;
    a.reason = WX_R_HOLD_CLOSED; /* the longest words */
    a.cash = true;
    for (size_t i = 0; i + 3 <= WX_MERCHANT_NAME_MAX; i += 3) {
        memcpy(a.merchant_name + i, "星", 3);
    }
    for (size_t i = 0; i + 3 <= WX_MERCHANT_CITY_MAX; i += 3) {
        memcpy(a.merchant_city + i, "海", 3);
    }
    char base[WX_ALERT_URL_MAX];
    memset(base, 'b', sizeof base);
    base[WX_ALERT_URL_MAX - 1 - strlen("/m/txn/18446744073709551615")] = '\0';
    char text[WX_ALERT_TEXT_MAX];
    static const uint8_t statuses[] = {WX_CARD_STOLEN, 99}; /* 99: a status with no words */
    for (uint8_t kind = 1; kind < WX_ALERT_KIND_COUNT; kind++) {
        for (size_t st = 0; st < 2; st++) {
            a.kind = kind;
            a.card_status = statuses[st];
            for (int lang = WX_LANG_ZH; lang <= WX_LANG_EN; lang++) {
                int n = wx_alert_text(&a, (enum wx_lang)lang, -14 * 60, base, text, sizeof text);
                if (n <= 0) {
                    fail_msg("kind %s lang %d does not fit", wx_alert_kind_name(kind), lang);
                }
            }
        }
    }
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(wx_alert_kind_name(WX_ALERT_NONE), "unknown");
    assert_string_equal(wx_alert_kind_name(WX_ALERT_KIND_COUNT), "unknown");
    assert_string_equal(wx_alert_kind_name(WX_ALERT_PURCHASE), "purchase");
    assert_string_equal(wx_alert_kind_name(WX_ALERT_TEMP_LIMIT), "temp_limit");
    for (uint8_t k = 1; k < WX_ALERT_KIND_COUNT; k++) {
        assert_string_not_equal(wx_alert_kind_name(k), "unknown");
        for (uint8_t j = k + 1; j < WX_ALERT_KIND_COUNT; j++) {
            assert_string_not_equal(wx_alert_kind_name(k), wx_alert_kind_name(j));
        }
    }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_policy_table),
        T(test_policy_fallback),
        T(test_policy_settings),
        T(test_rows_without_alert),
        T(test_rows_capture),
        T(test_rows_followups),
        T(test_rows_account_and_card),
        T(test_alert_fields_of_purchase),
        T(test_rows_unknown),
        T(test_recipients),
        T(test_text_exact),
        T(test_text_kinds),
        T(test_fields),
        T(test_decline_reasons),
        T(test_text_cross_border),
        T(test_text_merchant_cleaned),
        T(test_text_limits),
        T(test_text_max_fits),
        T(test_kind_names),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
