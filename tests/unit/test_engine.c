/*
 * test_engine.c - focused cases for every command kind of the card engine (src/core):
 * customers, cards (main and supplementary), activation and the status lifecycle,
 * authorization with each decline reason, balance inquiry, advice, authorize-and-capture,
 * increments, captures (partial, final, tolerance, force post, after expiry), reversals
 * (of holds and postings, partial, early, repeated), refunds, repayments, fees, interest,
 * limits and temporary limits, hold expiry by MCC, forgetting of idempotency records,
 * idempotency of every remembered kind, activation's idempotency on the card's own state,
 * WeChat followers (bind, rebind, taken, the per-customer limit, unbind, OpenID validation,
 * idempotency, snapshots), refusal of bad input with no state change, and the row codec
 * (round trip and rejection of damaged rows).
 *
 * Every test runs on a fixture that journals each decided row; teardown replays the rows into
 * a fresh engine and through a snapshot and requires both to equal the live state, so every
 * case below is also a replay-determinism case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/codec.h"
#include "core/engine.h"
#include "core/engine_int.h" /* the follower table's slots, to see them reused */
#include "engine_cmds.h"
#include "util/limits.h"

#define LIMIT_A 1000000 /* fen: the fixture account's limit, 10,000 yuan */

struct fx {
    struct wx_engine_config cfg;
    wx_engine_t *e;
    struct wx_row *rows; /* every journaled row, in order */
    size_t n_rows, cap_rows;
    int64_t now;             /* time of the next command */
    uint32_t next_ref;       /* seed of the next card reference */
    uint32_t acct;           /* the fixture's account (card A opened it) */
    uint32_t card_a, card_b; /* A: main card, B: supplementary on the same account */
    uint8_t ref_a[WX_REF_LEN], ref_b[WX_REF_LEN];
};

/* Applies a command; a journaled row is kept for the replay in teardown. */
static int run(struct fx *f, const struct wx_cmd *c, struct wx_result *res)
{
    struct wx_row row;
    int rc = wx_engine_apply(f->e, c, res, &row);
    if (rc == 1) {
        if (f->n_rows == f->cap_rows) {
            f->cap_rows = f->cap_rows ? f->cap_rows * 2 : 64;
            f->rows = realloc(f->rows, f->cap_rows * sizeof *f->rows);
            assert_non_null(f->rows);
        }
        assert_int_equal(row.seq, f->n_rows + 1);
        assert_int_equal(res->seq, row.seq);
        assert_int_equal(res->journaled, 1);
        f->rows[f->n_rows++] = row;
    } else {
        assert_int_equal(rc, 0);
    }
    return rc;
}

/* The command must be decided and journaled with this reason. */
static struct wx_result decided(struct fx *f, const struct wx_cmd *c, uint8_t reason)
{
    struct wx_result res;
    int rc = run(f, c, &res);
    if (rc != 1 || res.reason != reason) {
        fail_msg("%s: rc %d reason %s, want journaled %s", wx_cmd_kind_name(c->kind), rc,
                 wx_reason_name(res.reason), wx_reason_name(reason));
    }
    assert_int_equal(res.repeat, 0);
    return res;
}

/* The command must be refused with this reason and change nothing at all. */
static void refused(struct fx *f, const struct wx_cmd *c, uint8_t reason)
{
    struct membuf before, after;
    struct wx_result res;
    snap_mem(f->e, &before);
    int rc = run(f, c, &res);
    snap_mem(f->e, &after);
    if (rc != 0 || res.reason != reason) {
        fail_msg("%s: rc %d reason %s, want refused %s", wx_cmd_kind_name(c->kind), rc,
                 wx_reason_name(res.reason), wx_reason_name(reason));
    }
    assert_int_equal(res.repeat, 0);
    assert_int_equal(res.journaled, 0);
    assert_true(snap_same(&before, &after));
    free(before.p);
    free(after.p);
}

/* The command must be answered with `first` again, not journaled, and change nothing. */
static void repeated(struct fx *f, const struct wx_cmd *c, const struct wx_result *first)
{
    struct membuf before, after;
    struct wx_result res;
    snap_mem(f->e, &before);
    int rc = run(f, c, &res);
    snap_mem(f->e, &after);
    assert_int_equal(rc, 0);
    assert_int_equal(res.repeat, 1);
    assert_same_answer(&res, first);
    assert_true(snap_same(&before, &after));
    free(before.p);
    free(after.p);
}

static struct wx_account_view account(struct fx *f, uint32_t id)
{
    struct wx_account_view v;
    assert_int_equal(wx_engine_account(f->e, id, &v), 0);
    /* The formula every answer's `available` must follow. */
    assert_int_equal(v.available, v.credit_limit + v.temp_limit - v.posted - v.held);
    return v;
}

static void assert_balances(struct fx *f, int64_t posted, int64_t held)
{
    struct wx_account_view v = account(f, f->acct);
    assert_int_equal(v.posted, posted);
    assert_int_equal(v.held, held);
}

/* Issues (and optionally activates) a card: a main card when account is 0. */
static uint32_t new_card(struct fx *f, uint32_t customer, uint32_t account, int64_t limit,
                         bool activate, uint8_t ref[WX_REF_LEN])
{
    struct wx_cmd c;
    char key[32];
    ref_fill(ref, f->next_ref++);
    cmd_card(&c, "issue", f->now, customer, account, ref, limit);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    if (activate) {
        snprintf(key, sizeof key, "act-%u", r.id);
        cmd_status(&c, WX_CMD_CARD_ACTIVATE, key, f->now, r.id, 0);
        decided(f, &c, WX_APPROVED);
    }
    return r.id;
}

static int setup_with(void **state, const struct wx_engine_config *cfg)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->cfg = *cfg;
    f->e = wx_engine_new(&f->cfg);
    f->now = T0_MS;
    struct wx_cmd c;
    cmd_customer(&c, "cust-1", f->now, "Zhang San", "13800000001", 1);
    decided(f, &c, WX_APPROVED);
    cmd_customer(&c, "cust-2", f->now, "Zhang Xiaoming", "+8613800000002", 2);
    decided(f, &c, WX_APPROVED);
    f->card_a = new_card(f, 1, 0, LIMIT_A, true, f->ref_a);
    f->acct = 1;
    f->card_b = new_card(f, 2, f->acct, 0, true, f->ref_b);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    struct wx_engine_config cfg = test_engine_config();
    return setup_with(state, &cfg);
}

/* Shorter hold lives and retention than the defaults: the engine must follow its config. */
static int setup_short(void **state)
{
    struct wx_engine_config cfg = test_engine_config();
    cfg.hold_days = 2;
    cfg.hold_days_long = 5;
    cfg.reference_days = 6;
    cfg.idempotency_hours = 1;
    cfg.capture_tolerance_pct = 0;
    return setup_with(state, &cfg);
}

/* Replays the journal into a fresh engine and reloads a snapshot: both must equal the
 * live engine, and every invariant must hold. */
static int teardown(void **state)
{
    struct fx *f = *state;
    char diff[256], err[256];
    wx_engine_check(f->e);
    wx_engine_t *r = wx_engine_new(&f->cfg);
    for (size_t i = 0; i < f->n_rows; i++) {
        if (wx_engine_replay(r, f->rows[i].seq, f->rows[i].buf, f->rows[i].len, err, sizeof err) !=
            0) {
            fail_msg("replay: %s", err);
        }
    }
    if (wx_engine_compare(f->e, r, diff, sizeof diff) != 0) {
        fail_msg("replayed state differs: %s", diff);
    }
    wx_engine_t *s = engine_clone(f->e, &f->cfg);
    if (wx_engine_compare(f->e, s, diff, sizeof diff) != 0) {
        fail_msg("reloaded state differs: %s", diff);
    }
    wx_engine_check(s);
    wx_engine_free(s);
    wx_engine_free(r);
    wx_engine_free(f->e);
    free(f->rows);
    free(f);
    return 0;
}

/* ---- customers and cards ---- */

static void test_customer_add(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c, d;
    cmd_customer(&c, "cust-3", f->now, "Li Si", "13900000003", 3);
    struct wx_result first = decided(f, &c, WX_APPROVED);
    assert_int_equal(first.id, 3);
    struct wx_customer_view v;
    assert_int_equal(wx_engine_customer(f->e, 3, &v), 0);
    assert_string_equal(v.name, "Li Si");
    assert_string_equal(v.mobile, "13900000003");
    assert_string_equal(v.id_last4, "123X");

    /* The same ID document with the same details, under any key: the first answer. */
    d = c;
    cmd_init(&d, WX_CMD_CUSTOMER_ADD, "cust-3-again", f->now + 5000);
    d.customer = c.customer;
    struct membuf before, after;
    struct wx_result res;
    snap_mem(f->e, &before);
    assert_int_equal(run(f, &d, &res), 0);
    snap_mem(f->e, &after);
    assert_int_equal(res.repeat, 1);
    assert_int_equal(res.reason, WX_APPROVED);
    assert_int_equal(res.id, 3);
    assert_true(snap_same(&before, &after));
    free(before.p);
    free(after.p);

    /* The same ID document with other details belongs to someone already. */
    snprintf(d.customer.mobile, sizeof d.customer.mobile, "13900000009");
    refused(f, &d, WX_R_CUSTOMER_EXISTS);
    d = c;
    snprintf(d.customer.name, sizeof d.customer.name, "Li Si Jr");
    refused(f, &d, WX_R_CUSTOMER_EXISTS);

    /* Malformed details. */
    cmd_customer(&d, "bad", f->now, "", "13900000004", 4);
    refused(f, &d, WX_R_INVALID_FIELD);
    cmd_customer(&d, "bad", f->now, "Wang\tWu", "13900000004", 4);
    refused(f, &d, WX_R_INVALID_FIELD);
    cmd_customer(&d, "bad", f->now, "Wang Wu", "1390a000004", 4);
    refused(f, &d, WX_R_INVALID_FIELD);
    cmd_customer(&d, "bad", f->now, "Wang Wu", "+1234", 4);
    refused(f, &d, WX_R_INVALID_FIELD);
    cmd_customer(&d, "bad", f->now, "Wang Wu", "13900000004", 4);
    memcpy(d.customer.id_last4, "12", 3);
    refused(f, &d, WX_R_INVALID_FIELD);
    cmd_customer(&d, "bad", f->now, "Wang Wu", "13900000004", 4);
    memset(d.customer.id_hmac, 0, WX_REF_LEN);
    refused(f, &d, WX_R_INVALID_FIELD);
    /* A name that fills its buffer with no terminating NUL is malformed, not read past. */
    cmd_customer(&d, "bad", f->now, "Wang Wu", "13900000004", 4);
    memset(d.customer.name, 'a', sizeof d.customer.name);
    refused(f, &d, WX_R_INVALID_FIELD);
    /* Exactly WX_NAME_MAX bytes is fine. */
    memset(d.customer.name, 'a', WX_NAME_MAX);
    d.customer.name[WX_NAME_MAX] = '\0';
    assert_int_equal(decided(f, &d, WX_APPROVED).id, 4);
}

static void test_card_issue(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c, d;
    uint8_t ref[WX_REF_LEN], ref2[WX_REF_LEN];
    ref_fill(ref, 500);
    cmd_card(&c, "issue-x", f->now, 2, 0, ref, 500000);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.id, 3);
    assert_int_equal(r.account_id, 2); /* a main card opens an account */
    assert_int_equal(r.available, 500000);
    struct wx_card_view k;
    assert_int_equal(wx_engine_card_by_ref(f->e, ref, &k), 0);
    assert_int_equal(k.id, 3);
    assert_int_equal(k.status, WX_CARD_NOT_ACTIVATED);
    assert_int_equal(k.supplementary, 0);
    struct wx_account_view a = account(f, 2);
    assert_int_equal(a.credit_limit, 500000);
    assert_int_equal(a.customer_id, 2);
    assert_int_equal(a.main_card_id, 3);

    /* A supplementary card joins the account and opens none. */
    ref_fill(ref2, 501);
    cmd_card(&d, "issue-y", f->now, 1, 2, ref2, 0);
    r = decided(f, &d, WX_APPROVED);
    assert_int_equal(r.id, 4);
    assert_int_equal(r.account_id, 2);
    assert_int_equal(wx_engine_card(f->e, 4, &k), 0);
    assert_int_equal(k.supplementary, 1);
    assert_int_equal(k.customer_id, 1);
    struct wx_engine_stats st;
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.accounts, 2);
    assert_int_equal(st.cards, 4);

    /* The same card again: the first answer, whatever the key. */
    struct wx_result res;
    c.key[0] = 'I';
    assert_int_equal(run(f, &c, &res), 0);
    assert_int_equal(res.repeat, 1);
    assert_int_equal(res.id, 3);
    assert_int_equal(res.account_id, 2);

    /* The same card number with other details. */
    c.card.expiry = 2811;
    refused(f, &c, WX_R_DUPLICATE_MISMATCH);
    c.card.expiry = TEST_EXPIRY;
    c.card.customer_id = 1;
    refused(f, &c, WX_R_DUPLICATE_MISMATCH);

    ref_fill(ref, 502);
    cmd_card(&c, "issue-z", f->now, 99, 0, ref, 1000);
    refused(f, &c, WX_R_CUSTOMER_NOT_FOUND);
    cmd_card(&c, "issue-z", f->now, 1, 99, ref, 0);
    refused(f, &c, WX_R_ACCOUNT_NOT_FOUND);

    struct wx_cmd ok;
    cmd_card(&ok, "issue-z", f->now, 1, 0, ref, 1000);
    c = ok, c.card.statement_day = 0;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.card.statement_day = 29;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.card.credit_limit = -1;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.card.credit_limit = WX_LIMIT_MAX + 1;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.card.expiry = 2913;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.card.first6 = 12345;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.card.pan_enc_len = 0;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.card.pan_enc_len = WX_PAN_ENC_MAX + 1;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, memset(c.card.ref, 0, WX_REF_LEN);
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.card.credit_limit = WX_LIMIT_MAX;
    decided(f, &c, WX_APPROVED);
}

static void test_supplementary_shares_credit(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "a1", f->now, f->ref_a, 600000);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.id, f->card_a);
    assert_int_equal(r.available, LIMIT_A - 600000);
    cmd_auth(&c, "b1", f->now, f->ref_b, 400001);
    r = decided(f, &c, WX_R_INSUFFICIENT_CREDIT);
    assert_int_equal(r.id, f->card_b);
    assert_int_equal(r.account_id, f->acct);
    cmd_auth(&c, "b2", f->now, f->ref_b, 400000);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, 0);
    cmd_auth(&c, "a2", f->now, f->ref_a, 1);
    decided(f, &c, WX_R_INSUFFICIENT_CREDIT);
    assert_balances(f, 0, LIMIT_A);
}

/* Activating an active card: approved as a repeat on the card's own state, not journaled,
 * numbered with the engine's last seq, and nothing changes. */
static void activation_repeat(struct fx *f, const struct wx_cmd *c, uint32_t account)
{
    struct membuf before, after;
    struct wx_result res;
    struct wx_engine_stats st;
    wx_engine_stats(f->e, &st);
    snap_mem(f->e, &before);
    int rc = run(f, c, &res);
    snap_mem(f->e, &after);
    if (rc != 0 || res.reason != WX_APPROVED) {
        fail_msg("card-activate: rc %d reason %s, want an approved repeat", rc,
                 wx_reason_name(res.reason));
    }
    assert_int_equal(res.repeat, 1);
    assert_int_equal(res.journaled, 0);
    assert_int_equal(res.seq, st.last_seq);
    assert_int_equal(res.id, c->card_status.card_id);
    assert_int_equal(res.account_id, account);
    assert_int_equal(res.approval, 0);
    assert_int_equal(res.amount, 0);
    assert_int_equal(res.available, 0);
    assert_true(snap_same(&before, &after));
    free(before.p);
    free(after.p);
}

static void test_activation(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    uint8_t ref[WX_REF_LEN];
    uint32_t id = new_card(f, 1, f->acct, 0, false, ref);
    cmd_auth(&c, "a1", f->now, ref, 100);
    struct wx_result r = decided(f, &c, WX_R_CARD_NOT_ACTIVATED);
    assert_int_equal(r.approval, 0);
    assert_balances(f, 0, 0);
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "act", f->now, id, 0);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.id, id);
    assert_int_equal(r.account_id, f->acct);
    /* Activating the now active card again, under any key: a repeat, nothing changes. */
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "act2", f->now, id, 0);
    activation_repeat(f, &c, f->acct);
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "act3", f->now, 999, 0);
    refused(f, &c, WX_R_CARD_NOT_FOUND);
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "act3", f->now, 0, 0);
    refused(f, &c, WX_R_CARD_NOT_FOUND);
    cmd_auth(&c, "a2", f->now, ref, 100);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, 0, 100);
}

/* Brings a fresh card to `status` through the allowed path. */
static uint32_t card_in_status(struct fx *f, uint8_t status, uint8_t ref[WX_REF_LEN])
{
    uint32_t id = new_card(f, 1, f->acct, 0, status != WX_CARD_NOT_ACTIVATED, ref);
    struct wx_cmd c;
    char key[32];
    if (status == WX_CARD_LOCKED || status >= WX_CARD_LOST) {
        snprintf(key, sizeof key, "to-%u", id);
        cmd_status(&c, WX_CMD_CARD_STATUS, key, f->now, id, status);
        decided(f, &c, WX_APPROVED);
    }
    struct wx_card_view v;
    assert_int_equal(wx_engine_card(f->e, id, &v), 0);
    assert_int_equal(v.status, status);
    return id;
}

static void test_status_transitions(void **state)
{
    struct fx *f = *state;
    /* allowed[from][to]: lock/unlock, lost/stolen from any live state, close from any. */
    static const bool allowed[6][7] = {
        [WX_CARD_NOT_ACTIVATED] = {0, 0, 0, 1, 1, 1, 0}, [WX_CARD_ACTIVE] = {0, 0, 1, 1, 1, 1, 0},
        [WX_CARD_LOCKED] = {0, 1, 0, 1, 1, 1, 0},        [WX_CARD_LOST] = {0, 0, 0, 0, 0, 1, 0},
        [WX_CARD_STOLEN] = {0, 0, 0, 0, 0, 1, 0},        [WX_CARD_CLOSED] = {0, 0, 0, 0, 0, 0, 0},
    };
    for (uint8_t from = 0; from < 6; from++) {
        for (uint8_t to = 0; to < 7; to++) {
            uint8_t ref[WX_REF_LEN];
            uint32_t id = card_in_status(f, from, ref);
            struct wx_cmd c;
            char key[32];
            snprintf(key, sizeof key, "change-%u-%u", from, to);
            cmd_status(&c, WX_CMD_CARD_STATUS, key, f->now, id, to);
            if (allowed[from][to]) {
                struct wx_result r = decided(f, &c, WX_APPROVED);
                assert_int_equal(r.id, id);
            } else {
                refused(f, &c, WX_R_INVALID_STATUS);
            }
            struct wx_card_view v;
            assert_int_equal(wx_engine_card(f->e, id, &v), 0);
            assert_int_equal(v.status, allowed[from][to] ? to : from);
        }
    }
    struct wx_cmd c;
    cmd_status(&c, WX_CMD_CARD_STATUS, "nope", f->now, 12345, WX_CARD_LOCKED);
    refused(f, &c, WX_R_CARD_NOT_FOUND);

    /* Each status declines an authorization with its own reason. */
    static const struct {
        uint8_t status, reason;
    } declines[] = {
        {WX_CARD_NOT_ACTIVATED, WX_R_CARD_NOT_ACTIVATED},
        {WX_CARD_LOCKED, WX_R_CARD_LOCKED},
        {WX_CARD_LOST, WX_R_CARD_LOST},
        {WX_CARD_STOLEN, WX_R_CARD_STOLEN},
        {WX_CARD_CLOSED, WX_R_CARD_CLOSED},
    };
    for (size_t i = 0; i < sizeof declines / sizeof declines[0]; i++) {
        uint8_t ref[WX_REF_LEN];
        char key[16];
        card_in_status(f, declines[i].status, ref);
        snprintf(key, sizeof key, "auth-%zu", i);
        cmd_auth(&c, key, f->now, ref, 100);
        decided(f, &c, declines[i].reason);
    }
    assert_balances(f, 0, 0);

    /* Unlocking makes the card spend again. */
    cmd_status(&c, WX_CMD_CARD_STATUS, "lock-a", f->now, f->card_a, WX_CARD_LOCKED);
    decided(f, &c, WX_APPROVED);
    cmd_auth(&c, "locked", f->now, f->ref_a, 100);
    decided(f, &c, WX_R_CARD_LOCKED);
    cmd_status(&c, WX_CMD_CARD_STATUS, "unlock-a", f->now, f->card_a, WX_CARD_ACTIVE);
    decided(f, &c, WX_APPROVED);
    cmd_auth(&c, "unlocked", f->now, f->ref_a, 100);
    decided(f, &c, WX_APPROVED);
}

/* ---- authorization ---- */

static void test_authorize_hold(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "a1", f->now, f->ref_a, 12345);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_in_range(r.approval, 100000, 999999);
    assert_int_equal(r.id, f->card_a);
    assert_int_equal(r.account_id, f->acct);
    assert_int_equal(r.amount, 12345);
    assert_int_equal(r.available, LIMIT_A - 12345);
    assert_balances(f, 0, 12345);
    struct wx_engine_stats st;
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.open_holds, 1);
    /* Absent expiry and CVV2 are not checked; cash is held like a purchase. */
    cmd_auth(&c, "a2", f->now, f->ref_b, 655);
    c.auth.expiry = 0;
    c.auth.cvv_tag = 0;
    c.auth.type = WX_AUTH_CASH;
    c.auth.merchant.channel = WX_CHANNEL_ATM;
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, LIMIT_A - 13000);
    assert_balances(f, 0, 13000);
}

static void test_decline_reasons(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "d1", f->now, f->ref_a, LIMIT_A + 1);
    struct wx_result r = decided(f, &c, WX_R_INSUFFICIENT_CREDIT);
    assert_int_equal(r.approval, 0);
    assert_int_equal(r.available, LIMIT_A);
    cmd_auth(&c, "d2", f->now, f->ref_a, 100);
    c.auth.expiry = TEST_EXPIRY - 1;
    decided(f, &c, WX_R_WRONG_EXPIRY);
    cmd_auth(&c, "d3", f->now, f->ref_a, 100);
    c.auth.cvv_tag ^= 2;
    decided(f, &c, WX_R_WRONG_CVV);
    /* The card's own expiry is judged at the command's time. */
    uint8_t ref[WX_REF_LEN];
    struct wx_cmd k;
    ref_fill(ref, 900);
    cmd_card(&k, "iss", f->now, 1, f->acct, ref, 0);
    k.card.expiry = 2601; /* January 2026: the fixture starts on the 15th */
    uint32_t id = decided(f, &k, WX_APPROVED).id;
    cmd_status(&k, WX_CMD_CARD_ACTIVATE, "act", f->now, id, 0);
    decided(f, &k, WX_APPROVED);
    cmd_auth(&c, "d4", T0_MS + 16 * DAY_MS, ref, 100); /* 2026-01-31 */
    c.auth.expiry = 2601;
    decided(f, &c, WX_APPROVED);
    cmd_auth(&c, "d5", 1769904000000LL, ref, 100); /* 2026-02-01 00:00 UTC */
    c.auth.expiry = 2601;
    decided(f, &c, WX_R_CARD_EXPIRED);
    assert_balances(f, 0, 100);
    /* The full limit is available. */
    cmd_auth(&c, "d6", f->now, f->ref_a, LIMIT_A - 100);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, 0);
}

static void test_balance_inquiry(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "h", f->now, f->ref_a, 2500);
    decided(f, &c, WX_APPROVED);
    cmd_auth(&c, "q1", f->now, f->ref_b, 0);
    c.auth.type = WX_AUTH_BALANCE_INQUIRY;
    struct membuf before, after;
    struct wx_result r;
    snap_mem(f->e, &before);
    assert_int_equal(run(f, &c, &r), 0); /* answered, never journaled */
    snap_mem(f->e, &after);
    assert_true(snap_same(&before, &after));
    free(before.p);
    free(after.p);
    assert_int_equal(r.reason, WX_APPROVED);
    assert_int_equal(r.repeat, 0);
    assert_int_equal(r.journaled, 0);
    assert_int_equal(r.available, LIMIT_A - 2500);
    assert_int_equal(r.account_id, f->acct);
    /* Asked again under the same key, it is answered again (nothing was remembered). */
    assert_int_equal(run(f, &c, &r), 0);
    assert_int_equal(r.repeat, 0);
    c.auth.amount = 5;
    refused(f, &c, WX_R_INVALID_AMOUNT);
    /* A locked card's inquiry is answered with the decline, still without a row. */
    cmd_status(&c, WX_CMD_CARD_STATUS, "lock", f->now, f->card_b, WX_CARD_LOCKED);
    decided(f, &c, WX_APPROVED);
    cmd_auth(&c, "q2", f->now, f->ref_b, 0);
    c.auth.type = WX_AUTH_BALANCE_INQUIRY;
    refused(f, &c, WX_R_CARD_LOCKED);
}

static void test_advice(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "adv", f->now, f->ref_a, 2 * LIMIT_A);
    c.auth.advice = 1;
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, -LIMIT_A);
    assert_balances(f, 0, 2 * LIMIT_A);
    /* Ordinary authorizations see the overdraft. */
    cmd_auth(&c, "next", f->now, f->ref_a, 1);
    decided(f, &c, WX_R_INSUFFICIENT_CREDIT);
    /* The advised hold is captured and released like any other. */
    cmd_follow(&c, WX_CMD_CAPTURE, "cap", f->now, "adv", NULL, 2 * LIMIT_A);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, 2 * LIMIT_A, 0);
}

static void test_authorize_and_capture(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "ac", f->now, f->ref_a, 5000);
    c.auth.capture = 1;
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, LIMIT_A - 5000);
    assert_balances(f, 5000, 0);
    struct wx_engine_stats st;
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.open_holds, 0);
    /* It is a posting: a capture finds no hold, a reversal credits it back. */
    cmd_follow(&c, WX_CMD_CAPTURE, "cap", f->now, "ac", NULL, 5000);
    decided(f, &c, WX_R_HOLD_CLOSED);
    cmd_follow(&c, WX_CMD_REVERSAL, "rev", f->now, "ac", NULL, 0);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.amount, 5000);
    assert_balances(f, 0, 0);
    /* Declined for credit like any authorization. */
    cmd_auth(&c, "ac2", f->now, f->ref_a, LIMIT_A + 1);
    c.auth.capture = 1;
    decided(f, &c, WX_R_INSUFFICIENT_CREDIT);
    assert_balances(f, 0, 0);
}

static void test_incremental_auth(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "h", f->now, f->ref_a, 10000);
    c.auth.merchant.mcc = 7011;
    decided(f, &c, WX_APPROVED);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "i1", f->now, "h", NULL, 5000);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_in_range(r.approval, 100000, 999999);
    assert_int_equal(r.id, f->card_a);
    assert_int_equal(r.available, LIMIT_A - 15000);
    assert_balances(f, 0, 15000);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "i2", f->now, "h", NULL, LIMIT_A);
    decided(f, &c, WX_R_INSUFFICIENT_CREDIT);
    assert_balances(f, 0, 15000);
    /* The tolerance applies to the total including increments: 15000 * 1.2. */
    cmd_follow(&c, WX_CMD_CAPTURE, "c1", f->now, "h", NULL, 18001);
    decided(f, &c, WX_R_EXCEEDS_ORIGINAL);
    cmd_follow(&c, WX_CMD_CAPTURE, "c2", f->now, "h", NULL, 18000);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, 18000, 0);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "i3", f->now, "h", NULL, 100);
    decided(f, &c, WX_R_HOLD_CLOSED);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "i4", f->now, "nothing", NULL, 100);
    refused(f, &c, WX_R_ORIGINAL_NOT_FOUND);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "i4", f->now, NULL, f->ref_a, 100);
    refused(f, &c, WX_R_ORIGINAL_NOT_FOUND);
    /* An increment on a posting has no hold to grow. */
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "i5", f->now, "c2", NULL, 100);
    decided(f, &c, WX_R_ORIGINAL_NOT_FOUND);
    /* A locked card gets no increment. */
    cmd_auth(&c, "h2", f->now, f->ref_b, 1000);
    decided(f, &c, WX_APPROVED);
    cmd_status(&c, WX_CMD_CARD_STATUS, "lock", f->now, f->card_b, WX_CARD_LOCKED);
    decided(f, &c, WX_APPROVED);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "i6", f->now, "h2", NULL, 100);
    decided(f, &c, WX_R_CARD_LOCKED);
    assert_balances(f, 18000, 1000);
}

/* ---- captures ---- */

static void auth_ok(struct fx *f, const char *key, int64_t amount)
{
    struct wx_cmd c;
    cmd_auth(&c, key, f->now, f->ref_a, amount);
    decided(f, &c, WX_APPROVED);
}

static struct wx_result capture(struct fx *f, const char *key, const char *orig, int64_t amount,
                                bool final, uint8_t reason)
{
    struct wx_cmd c;
    cmd_follow(&c, WX_CMD_CAPTURE, key, f->now, orig, NULL, amount);
    c.follow.final = final;
    return decided(f, &c, reason);
}

static void test_capture(void **state)
{
    struct fx *f = *state;
    /* Full. */
    auth_ok(f, "h1", 10000);
    struct wx_result r = capture(f, "c1", "h1", 10000, false, WX_APPROVED);
    assert_int_equal(r.amount, 10000);
    assert_int_equal(r.available, LIMIT_A - 10000);
    assert_balances(f, 10000, 0);
    capture(f, "c1b", "h1", 1, false, WX_R_HOLD_CLOSED);
    /* Several partials. */
    auth_ok(f, "h2", 10000);
    capture(f, "c2a", "h2", 3000, false, WX_APPROVED);
    assert_balances(f, 13000, 7000);
    capture(f, "c2b", "h2", 3000, false, WX_APPROVED);
    assert_balances(f, 16000, 4000);
    capture(f, "c2c", "h2", 4000, false, WX_APPROVED);
    assert_balances(f, 20000, 0);
    capture(f, "c2d", "h2", 1, false, WX_R_HOLD_CLOSED);
    /* A final partial releases the rest. */
    auth_ok(f, "h3", 10000);
    capture(f, "c3", "h3", 3000, true, WX_APPROVED);
    assert_balances(f, 23000, 0);
    capture(f, "c3b", "h3", 1, false, WX_R_HOLD_CLOSED);
    /* Above the hold, within the tolerance (20 %). */
    auth_ok(f, "h4", 10000);
    capture(f, "c4", "h4", 12000, false, WX_APPROVED);
    assert_balances(f, 35000, 0);
    /* Beyond it: declined, the hold stays. */
    auth_ok(f, "h5", 10000);
    r = capture(f, "c5", "h5", 12001, false, WX_R_EXCEEDS_ORIGINAL);
    assert_int_equal(r.account_id, f->acct);
    assert_balances(f, 35000, 10000);
    /* The tolerance is for the sum of partial captures. */
    capture(f, "c5a", "h5", 6000, false, WX_APPROVED);
    capture(f, "c5b", "h5", 6001, false, WX_R_EXCEEDS_ORIGINAL);
    assert_balances(f, 41000, 4000);
    capture(f, "c5c", "h5", 6000, false, WX_APPROVED);
    assert_balances(f, 47000, 0);
    /* Captures are not declined for card status: the goods were sold. */
    auth_ok(f, "h6", 1000);
    struct wx_cmd c;
    cmd_status(&c, WX_CMD_CARD_STATUS, "lost", f->now, f->card_a, WX_CARD_LOST);
    decided(f, &c, WX_APPROVED);
    capture(f, "c6", "h6", 1000, false, WX_APPROVED);
    assert_balances(f, 48000, 0);
}

static void test_force_post(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_follow(&c, WX_CMD_CAPTURE, "fp1", f->now, NULL, f->ref_b, 7000);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.id, f->card_b);
    assert_int_equal(r.account_id, f->acct);
    assert_balances(f, 7000, 0);
    /* A force post is not declined for credit either. */
    cmd_follow(&c, WX_CMD_CAPTURE, "fp2", f->now, NULL, f->ref_a, 2 * LIMIT_A);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, 7000 + 2 * LIMIT_A, 0);
    cmd_follow(&c, WX_CMD_CAPTURE, "fp3", f->now, NULL, NULL, 7000);
    refused(f, &c, WX_R_CARD_NOT_FOUND);
    cmd_follow(&c, WX_CMD_CAPTURE, "fp3", f->now, "unknown", NULL, 7000);
    refused(f, &c, WX_R_ORIGINAL_NOT_FOUND);
    /* An unknown original with the card named posts against the card. */
    cmd_follow(&c, WX_CMD_CAPTURE, "fp4", f->now, "unknown", f->ref_a, 500);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, 7500 + 2 * LIMIT_A, 0);
    /* A force post can be reversed like any posting. */
    cmd_follow(&c, WX_CMD_REVERSAL, "rv", f->now, "fp1", NULL, 0);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, 500 + 2 * LIMIT_A, 0);
}

static void tick(struct fx *f, const char *key, int64_t at, int want_rc)
{
    struct wx_cmd c;
    cmd_init(&c, WX_CMD_TICK, key, at);
    if (want_rc == 0) {
        refused(f, &c, WX_APPROVED); /* nothing due: no row, no change */
    } else {
        decided(f, &c, WX_APPROVED);
    }
}

static void test_capture_after_expiry(void **state)
{
    struct fx *f = *state;
    auth_ok(f, "h", 10000);
    auth_ok(f, "h2", 300);
    /* The fixture's activations left no records: nothing to forget, and no hold is due. */
    struct wx_engine_stats st;
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.records, 2);
    tick(f, "t0", T0_MS + 4 * DAY_MS, 0);
    tick(f, "t1", T0_MS + 7 * DAY_MS - 1, 0);
    assert_balances(f, 0, 10300);
    tick(f, "t2", T0_MS + 7 * DAY_MS, 1);
    assert_balances(f, 0, 0);
    f->now = T0_MS + 8 * DAY_MS;
    /* Clearing after the hold lapsed still posts, beyond the tolerance too. */
    struct wx_result r = capture(f, "c", "h", 13000, false, WX_APPROVED);
    assert_int_equal(r.available, LIMIT_A - 13000);
    assert_balances(f, 13000, 0);
    /* A lapsed hold has nothing left to reverse or to increment. */
    struct wx_cmd c;
    cmd_follow(&c, WX_CMD_REVERSAL, "rv", f->now, "h2", NULL, 0);
    decided(f, &c, WX_R_HOLD_CLOSED);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "inc", f->now, "h2", NULL, 10);
    decided(f, &c, WX_R_HOLD_CLOSED);
    assert_balances(f, 13000, 0);
}

/* ---- reversals ---- */

static struct wx_result reversal(struct fx *f, const char *key, const char *orig, int64_t amount,
                                 uint8_t reason)
{
    struct wx_cmd c;
    cmd_follow(&c, WX_CMD_REVERSAL, key, f->now, orig, NULL, amount);
    return decided(f, &c, reason);
}

static void test_reversal(void **state)
{
    struct fx *f = *state;
    /* Full reversal of a hold (amount 0: everything left). */
    auth_ok(f, "h1", 10000);
    struct wx_result r = reversal(f, "r1", "h1", 0, WX_APPROVED);
    assert_int_equal(r.amount, 10000);
    assert_int_equal(r.available, LIMIT_A);
    assert_balances(f, 0, 0);
    capture(f, "c1", "h1", 100, false, WX_R_ALREADY_REVERSED);
    reversal(f, "r1b", "h1", 0, WX_R_ALREADY_REVERSED);
    /* Partial reversal of a hold lowers what can be captured: 6000 * 1.2. */
    auth_ok(f, "h2", 10000);
    reversal(f, "r2", "h2", 4000, WX_APPROVED);
    assert_balances(f, 0, 6000);
    capture(f, "c2a", "h2", 7201, false, WX_R_EXCEEDS_ORIGINAL);
    capture(f, "c2b", "h2", 7200, false, WX_APPROVED);
    assert_balances(f, 7200, 0);
    /* Beyond what is left. */
    auth_ok(f, "h3", 10000);
    reversal(f, "r3", "h3", 10001, WX_R_EXCEEDS_ORIGINAL);
    capture(f, "c3", "h3", 4000, false, WX_APPROVED);
    reversal(f, "r3b", "h3", 6001, WX_R_EXCEEDS_ORIGINAL);
    reversal(f, "r3c", "h3", 0, WX_APPROVED);
    assert_balances(f, 11200, 0);
    /* A closed (captured) hold cannot be reversed. */
    reversal(f, "r3d", "h3", 0, WX_R_HOLD_CLOSED);
    /* Postings: partial, then the rest, then nothing is left. */
    reversal(f, "r4a", "c3", 1000, WX_APPROVED);
    assert_balances(f, 10200, 0);
    reversal(f, "r4b", "c3", 3001, WX_R_EXCEEDS_ORIGINAL);
    r = reversal(f, "r4c", "c3", 0, WX_APPROVED);
    assert_int_equal(r.amount, 3000);
    assert_balances(f, 7200, 0);
    reversal(f, "r4d", "c3", 0, WX_R_ALREADY_REVERSED);
    /* No original named. */
    struct wx_cmd c;
    cmd_follow(&c, WX_CMD_REVERSAL, "r5", f->now, NULL, f->ref_a, 0);
    refused(f, &c, WX_R_INVALID_FIELD);
    /* A repeated reversal key is applied once and answered the same. */
    auth_ok(f, "h6", 5000);
    cmd_follow(&c, WX_CMD_REVERSAL, "r6", f->now, "h6", NULL, 2000);
    struct wx_result first = decided(f, &c, WX_APPROVED);
    c.time_ms += 60000;
    repeated(f, &c, &first);
    repeated(f, &c, &first);
    assert_balances(f, 7200, 3000);
}

static void test_reversal_before_original(void **state)
{
    struct fx *f = *state;
    struct wx_cmd rv, late;
    cmd_follow(&rv, WX_CMD_REVERSAL, "rv-early", f->now, "late", NULL, 0);
    struct wx_result r = decided(f, &rv, WX_R_ORIGINAL_NOT_FOUND);
    assert_int_equal(r.account_id, 0);
    repeated(f, &rv, &r);
    /* A second reversal of the same absent original. */
    struct wx_cmd rv2;
    cmd_follow(&rv2, WX_CMD_REVERSAL, "rv-early2", f->now, "late", NULL, 0);
    refused(f, &rv2, WX_R_ALREADY_REVERSED);
    /* The late original is declined and holds nothing. */
    cmd_auth(&late, "late", f->now + 1000, f->ref_a, 5000);
    struct wx_result first = decided(f, &late, WX_R_ALREADY_REVERSED);
    assert_int_equal(first.approval, 0);
    assert_int_equal(first.account_id, f->acct);
    assert_balances(f, 0, 0);
    /* Its repeat is answered from memory, not decided (and journaled) again. */
    late.time_ms += 1000;
    repeated(f, &late, &first);
    struct wx_cmd other = late;
    other.auth.amount = 5001;
    refused(f, &other, WX_R_DUPLICATE_MISMATCH);
    capture(f, "cap", "late", 5000, false, WX_R_ALREADY_REVERSED);
    reversal(f, "rv-3", "late", 0, WX_R_ALREADY_REVERSED);
    cmd_follow(&rv2, WX_CMD_AUTH_INCREMENT, "inc", f->now, "late", NULL, 10);
    decided(f, &rv2, WX_R_ORIGINAL_NOT_FOUND);
    assert_balances(f, 0, 0);
    repeated(f, &rv, &r);
}

static void test_follow_up_naming_itself(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_follow(&c, WX_CMD_REVERSAL, "self", f->now, "self", NULL, 0);
    refused(f, &c, WX_R_INVALID_FIELD);
    cmd_follow(&c, WX_CMD_CAPTURE, "self", f->now, "self", f->ref_a, 10);
    refused(f, &c, WX_R_INVALID_FIELD);
    cmd_follow(&c, WX_CMD_REFUND, "self", f->now, "self", f->ref_a, 10);
    refused(f, &c, WX_R_INVALID_FIELD);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "self", f->now, "self", NULL, 10);
    refused(f, &c, WX_R_INVALID_FIELD);
}

/* ---- refunds and the bank's postings ---- */

static void test_refund(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "p1", f->now, f->ref_a, 10000);
    c.auth.capture = 1;
    decided(f, &c, WX_APPROVED);
    cmd_follow(&c, WX_CMD_REFUND, "f1", f->now, "p1", NULL, 4000);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.amount, 4000);
    assert_int_equal(r.available, LIMIT_A - 6000);
    assert_balances(f, 6000, 0);
    cmd_follow(&c, WX_CMD_REFUND, "f2", f->now, "p1", NULL, 6001);
    decided(f, &c, WX_R_EXCEEDS_ORIGINAL);
    reversal(f, "rv1", "p1", 6001, WX_R_EXCEEDS_ORIGINAL);
    cmd_follow(&c, WX_CMD_REFUND, "f3", f->now, "p1", NULL, 6000);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, 0, 0);
    reversal(f, "rv2", "p1", 0, WX_R_ALREADY_REVERSED);
    /* Unmatched: credit the card named. */
    cmd_follow(&c, WX_CMD_REFUND, "f4", f->now, NULL, f->ref_b, 500);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.id, f->card_b);
    assert_balances(f, -500, 0);
    cmd_follow(&c, WX_CMD_REFUND, "f5", f->now, "forgotten", f->ref_a, 500);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, -1000, 0);
    uint8_t nobody[WX_REF_LEN];
    ref_fill(nobody, 4242);
    cmd_follow(&c, WX_CMD_REFUND, "f6", f->now, NULL, nobody, 500);
    refused(f, &c, WX_R_CARD_NOT_FOUND);
    cmd_follow(&c, WX_CMD_REFUND, "f6", f->now, NULL, f->ref_a, 0);
    refused(f, &c, WX_R_INVALID_AMOUNT);
}

static void test_postings(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_posting(&c, WX_CMD_FEE, "fee", f->now, f->acct, 1000);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.account_id, f->acct);
    assert_int_equal(r.available, LIMIT_A - 1000);
    cmd_posting(&c, WX_CMD_INTEREST, "int", f->now, f->acct, 200);
    decided(f, &c, WX_APPROVED);
    assert_balances(f, 1200, 0);
    /* An overpayment leaves a credit balance: available above the limit. */
    cmd_posting(&c, WX_CMD_REPAYMENT, "pay", f->now, f->acct, 5000);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, LIMIT_A + 3800);
    assert_balances(f, -3800, 0);
    cmd_auth(&c, "spend", f->now, f->ref_a, LIMIT_A + 3800);
    decided(f, &c, WX_APPROVED);
    /* Postings are not declined for credit. */
    cmd_posting(&c, WX_CMD_FEE, "fee2", f->now, f->acct, 100);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, -100);
    cmd_posting(&c, WX_CMD_FEE, "bad", f->now, 99, 100);
    refused(f, &c, WX_R_ACCOUNT_NOT_FOUND);
    cmd_posting(&c, WX_CMD_REPAYMENT, "bad", f->now, f->acct, 100);
    c.posting.currency = 840;
    refused(f, &c, WX_R_INVALID_CURRENCY);
    cmd_posting(&c, WX_CMD_INTEREST, "bad", f->now, f->acct, 0);
    refused(f, &c, WX_R_INVALID_AMOUNT);
}

static void test_limits(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_limit(&c, WX_CMD_LIMIT_SET, "l1", f->now, f->acct, 2 * LIMIT_A, 0);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, 2 * LIMIT_A);
    assert_int_equal(account(f, f->acct).credit_limit, 2 * LIMIT_A);
    cmd_limit(&c, WX_CMD_LIMIT_SET, "l2", f->now, f->acct, -1, 0);
    refused(f, &c, WX_R_INVALID_AMOUNT);
    cmd_limit(&c, WX_CMD_LIMIT_SET, "l2", f->now, f->acct, WX_LIMIT_MAX + 1, 0);
    refused(f, &c, WX_R_INVALID_AMOUNT);
    cmd_limit(&c, WX_CMD_LIMIT_SET, "l2", f->now, 77, LIMIT_A, 0);
    refused(f, &c, WX_R_ACCOUNT_NOT_FOUND);
    cmd_limit(&c, WX_CMD_LIMIT_SET, "l3", f->now, f->acct, LIMIT_A, 0);
    decided(f, &c, WX_APPROVED);
    /* A limit below the balance leaves available negative; nothing is declined after. */
    auth_ok(f, "h", 800000);
    cmd_limit(&c, WX_CMD_LIMIT_SET, "l4", f->now, f->acct, 500000, 0);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, -300000);
    cmd_limit(&c, WX_CMD_LIMIT_SET, "l5", f->now, f->acct, LIMIT_A, 0);
    decided(f, &c, WX_APPROVED);
    reversal(f, "rv", "h", 0, WX_APPROVED);
}

static void test_temp_limit(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    int64_t until = T0_MS + DAY_MS;
    cmd_limit(&c, WX_CMD_TEMP_LIMIT_SET, "t1", f->now, f->acct, 500000, until);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, LIMIT_A + 500000);
    struct wx_account_view v = account(f, f->acct);
    assert_int_equal(v.temp_limit, 500000);
    assert_int_equal(v.temp_expires_ms, until);
    /* The temporary limit counts until just before its expiry... */
    cmd_auth(&c, "a1", until - 1, f->ref_a, LIMIT_A + 400000);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, 100000);
    /* ...and not from its expiry on (engine time comes from the commands). */
    cmd_auth(&c, "a2", until, f->ref_a, 1);
    r = decided(f, &c, WX_R_INSUFFICIENT_CREDIT);
    assert_int_equal(r.available, -400000);
    v = account(f, f->acct);
    assert_int_equal(v.temp_limit, 0);
    assert_int_equal(v.available, -400000);
    /* A late command does not take engine time back. */
    cmd_auth(&c, "a3", until - 10, f->ref_a, 1);
    decided(f, &c, WX_R_INSUFFICIENT_CREDIT);
    /* An expiry not after the command's time is malformed; amount 0 clears. */
    cmd_limit(&c, WX_CMD_TEMP_LIMIT_SET, "t2", until + 5, f->acct, 500000, until + 5);
    refused(f, &c, WX_R_INVALID_FIELD);
    cmd_limit(&c, WX_CMD_TEMP_LIMIT_SET, "t2", until + 5, f->acct, 500000, until + 6);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, 100000);
    cmd_limit(&c, WX_CMD_TEMP_LIMIT_SET, "t3", until + 5, f->acct, 0, 0);
    r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, -400000);
    assert_int_equal(account(f, f->acct).temp_expires_ms, 0);
    cmd_limit(&c, WX_CMD_TEMP_LIMIT_SET, "t4", until + 5, f->acct, -1, until + 60000);
    refused(f, &c, WX_R_INVALID_AMOUNT);
}

/* ---- time: hold expiry and forgetting ---- */

static void test_hold_expiry_by_mcc(void **state)
{
    struct fx *f = *state;
    static const struct {
        uint16_t mcc;
        bool lasts;
    } holds[] = {
        {5411, false}, {2999, false}, {4000, false}, {4510, false}, {7012, false}, {7011, true},
        {3000, true},  {3500, true},  {3999, true},  {7512, true},  {4511, true},
    };
    int64_t long_sum = 0, sum = 0;
    for (size_t i = 0; i < sizeof holds / sizeof holds[0]; i++) {
        struct wx_cmd c;
        char key[16];
        int64_t amount = 1000 + (int64_t)i;
        snprintf(key, sizeof key, "h%zu", i);
        cmd_auth(&c, key, f->now, f->ref_a, amount);
        c.auth.merchant.mcc = holds[i].mcc;
        decided(f, &c, WX_APPROVED);
        sum += amount;
        long_sum += holds[i].lasts ? amount : 0;
    }
    tick(f, "t-", T0_MS + 4 * DAY_MS, 0); /* the fixture's activations left no records */
    tick(f, "t0", T0_MS + 7 * DAY_MS - 1, 0);
    assert_balances(f, 0, sum);
    tick(f, "t1", T0_MS + 7 * DAY_MS, 1);
    assert_balances(f, 0, long_sum);
    tick(f, "t2", T0_MS + 30 * DAY_MS - 1, 0);
    assert_balances(f, 0, long_sum);
    tick(f, "t3", T0_MS + 30 * DAY_MS, 1);
    assert_balances(f, 0, 0);
    struct wx_engine_stats st;
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.open_holds, 0);
    capture(f, "c", "h5", 1, false, WX_APPROVED); /* lapsed: a force post */
    assert_balances(f, 1, 0);
}

/* Runs under setup_short: holds of 2 and 5 days, answers kept 1 hour, no tolerance. */
static void test_hold_expiry_other_config(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_auth(&c, "short", f->now, f->ref_a, 1000);
    decided(f, &c, WX_APPROVED);
    cmd_auth(&c, "long", f->now, f->ref_a, 2000);
    c.auth.merchant.mcc = 3100;
    decided(f, &c, WX_APPROVED);
    cmd_auth(&c, "tol", f->now, f->ref_a, 3000);
    decided(f, &c, WX_APPROVED);
    capture(f, "over", "tol", 3001, false, WX_R_EXCEEDS_ORIGINAL);
    capture(f, "exact", "tol", 3000, false, WX_APPROVED);
    tick(f, "t0", T0_MS + HOUR_MS, 1); /* answers are forgotten after one hour */
    tick(f, "t1", T0_MS + 2 * DAY_MS - 1, 0);
    tick(f, "t2", T0_MS + 2 * DAY_MS, 1);
    assert_balances(f, 3000, 2000);
    tick(f, "t3", T0_MS + 5 * DAY_MS - 1, 0);
    tick(f, "t4", T0_MS + 5 * DAY_MS, 1);
    assert_balances(f, 3000, 0);
    tick(f, "t5", T0_MS + 6 * DAY_MS, 1); /* holds and postings forgotten */
    struct wx_engine_stats st;
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.records, 0);
}

static void test_forgetting(void **state)
{
    struct fx *f = *state;
    struct wx_cmd d, h;
    cmd_auth(&d, "declined", f->now, f->ref_a, LIMIT_A + 1);
    struct wx_result first = decided(f, &d, WX_R_INSUFFICIENT_CREDIT);
    cmd_auth(&h, "held", f->now, f->ref_a, 1000);
    struct wx_result held = decided(f, &h, WX_APPROVED);
    int64_t keep = (int64_t)f->cfg.idempotency_hours * HOUR_MS;
    d.time_ms = T0_MS + keep - 1;
    repeated(f, &d, &first);
    /* Nothing is forgotten until a tick says time has passed. */
    d.time_ms = T0_MS + keep;
    repeated(f, &d, &first);
    tick(f, "t1", T0_MS + keep - 1, 0);
    tick(f, "t2", T0_MS + keep, 1);
    /* Forgotten: the same key is decided anew. */
    struct wx_result again = decided(f, &d, WX_R_INSUFFICIENT_CREDIT);
    assert_true(again.seq > first.seq);
    /* A hold is referable (and its key remembered) for reference_days. */
    h.time_ms = T0_MS + keep;
    repeated(f, &h, &held);
    int64_t ref_keep = (int64_t)f->cfg.reference_days * DAY_MS;
    tick(f, "t3", T0_MS + ref_keep - 1, 1); /* the hold lapses; the answer "again" goes */
    h.time_ms = T0_MS + ref_keep - 1;
    repeated(f, &h, &held);
    tick(f, "t4", T0_MS + ref_keep, 1);
    struct wx_cmd c;
    cmd_follow(&c, WX_CMD_CAPTURE, "late-capture", f->now, "held", NULL, 1000);
    c.time_ms = T0_MS + ref_keep;
    refused(f, &c, WX_R_ORIGINAL_NOT_FOUND);
    h.time_ms = T0_MS + ref_keep;
    held = decided(f, &h, WX_APPROVED);
    assert_balances(f, 0, 1000);
}

/* ---- idempotency of every remembered kind ---- */

/* Changes one content field of a command, per kind. */
static void mutate(struct wx_cmd *c)
{
    switch (c->kind) {
    case WX_CMD_CARD_STATUS:
        c->card_status.card_id++;
        break;
    case WX_CMD_LIMIT_SET:
    case WX_CMD_TEMP_LIMIT_SET:
        c->limit.amount++;
        break;
    case WX_CMD_AUTHORIZE:
        c->auth.merchant.name[0] ^= 1; /* even a field the engine does not decide on */
        break;
    case WX_CMD_AUTH_INCREMENT:
    case WX_CMD_CAPTURE:
    case WX_CMD_REVERSAL:
    case WX_CMD_REFUND:
        c->follow.amount++;
        break;
    case WX_CMD_FOLLOWER_BIND:
    case WX_CMD_FOLLOWER_UNBIND:
        c->follower.via ^= 1;
        break;
    default:
        c->posting.code++;
        break;
    }
}

/* First answer, exact repeat (later time), same key with other content, other kind. */
static void idempotent(struct fx *f, struct wx_cmd *c, uint8_t reason)
{
    struct wx_result first = decided(f, c, reason);
    struct wx_cmd again = *c;
    again.time_ms += 3 * HOUR_MS;
    repeated(f, &again, &first);
    struct wx_cmd other = *c;
    mutate(&other);
    refused(f, &other, WX_R_DUPLICATE_MISMATCH);
    struct wx_cmd kind = *c;
    kind.kind = c->kind == WX_CMD_FEE ? WX_CMD_INTEREST : WX_CMD_FEE;
    kind.posting.account_id = f->acct;
    kind.posting.amount = 1;
    kind.posting.currency = WX_CURRENCY_CNY;
    refused(f, &kind, WX_R_DUPLICATE_MISMATCH);
    repeated(f, c, &first);
}

static void test_idempotency_every_kind(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    uint8_t ref[WX_REF_LEN];
    uint32_t id = new_card(f, 1, f->acct, 0, true, ref);
    cmd_status(&c, WX_CMD_CARD_STATUS, "k-lock", f->now, id, WX_CARD_LOCKED);
    idempotent(f, &c, WX_APPROVED);
    cmd_limit(&c, WX_CMD_LIMIT_SET, "k-limit", f->now, f->acct, LIMIT_A, 0);
    idempotent(f, &c, WX_APPROVED);
    cmd_limit(&c, WX_CMD_TEMP_LIMIT_SET, "k-temp", f->now, f->acct, 1000, f->now + DAY_MS);
    idempotent(f, &c, WX_APPROVED);
    cmd_auth(&c, "k-auth", f->now, f->ref_a, 10000);
    idempotent(f, &c, WX_APPROVED);
    cmd_auth(&c, "k-decline", f->now, f->ref_a, 10 * LIMIT_A);
    idempotent(f, &c, WX_R_INSUFFICIENT_CREDIT);
    cmd_follow(&c, WX_CMD_AUTH_INCREMENT, "k-inc", f->now, "k-auth", NULL, 100);
    idempotent(f, &c, WX_APPROVED);
    cmd_follow(&c, WX_CMD_CAPTURE, "k-cap", f->now, "k-auth", NULL, 4000);
    idempotent(f, &c, WX_APPROVED);
    cmd_follow(&c, WX_CMD_REVERSAL, "k-rev", f->now, "k-auth", NULL, 1000);
    idempotent(f, &c, WX_APPROVED);
    cmd_follow(&c, WX_CMD_REFUND, "k-ref", f->now, "k-cap", NULL, 1000);
    idempotent(f, &c, WX_APPROVED);
    cmd_posting(&c, WX_CMD_REPAYMENT, "k-pay", f->now, f->acct, 777);
    idempotent(f, &c, WX_APPROVED);
    cmd_posting(&c, WX_CMD_FEE, "k-fee", f->now, f->acct, 55);
    idempotent(f, &c, WX_APPROVED);
    cmd_posting(&c, WX_CMD_INTEREST, "k-int", f->now, f->acct, 66);
    idempotent(f, &c, WX_APPROVED);
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "k-bind", f->now, "oK", 1, WX_BIND_STAFF);
    idempotent(f, &c, WX_APPROVED);
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "k-unbind", f->now, "oK", 1, WX_BIND_STAFF);
    idempotent(f, &c, WX_APPROVED);
    struct wx_follower_view v;
    assert_int_equal(wx_engine_follower(f->e, "oK", &v), -1);
    /* Every effect applied once: held 10000 + 100 - 4000 - 1000; posted 4000 - 1000 ... */
    assert_balances(f, 4000 - 1000 - 777 + 55 + 66, 10100 - 4000 - 1000);
}

/* Activation is idempotent on the card's own state, not on its key: nothing is remembered. */
static void test_activation_natural_idempotency(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    struct wx_engine_stats st;
    uint8_t ref[WX_REF_LEN], ref2[WX_REF_LEN];
    cmd_auth(&c, "held", f->now, f->ref_a, 1000);
    struct wx_result held = decided(f, &c, WX_APPROVED);
    wx_engine_stats(f->e, &st);
    uint64_t records = st.records;
    uint32_t id = new_card(f, 1, f->acct, 0, false, ref);
    uint32_t id2 = new_card(f, 2, 0, LIMIT_A, false, ref2);
    struct wx_card_view v;
    assert_int_equal(wx_engine_card(f->e, id2, &v), 0);
    uint32_t acct2 = v.account_id;
    assert_true(acct2 != f->acct);
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "n-act", f->now, id, 0);
    struct wx_result first = decided(f, &c, WX_APPROVED);
    assert_int_equal(first.id, id);
    assert_int_equal(first.account_id, f->acct);
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.records, records); /* no idempotency record */

    /* The same activation again, later or under another key: a repeat. */
    c.time_ms = f->now + 3 * HOUR_MS;
    activation_repeat(f, &c, f->acct);
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "n-act-again", f->now, id, 0);
    activation_repeat(f, &c, f->acct);

    /* The key is not remembered: under it, another card is just another activation. */
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "n-act", f->now, id2, 0);
    struct wx_result other = decided(f, &c, WX_APPROVED);
    assert_int_equal(other.id, id2);
    assert_int_equal(other.account_id, acct2);
    assert_true(other.seq > first.seq);
    activation_repeat(f, &c, acct2); /* numbered with the last seq, not the first answer's */
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "n-act", f->now, id, 0);
    activation_repeat(f, &c, f->acct);
    /* Nor does an activation look at what another command's key holds. */
    struct wx_cmd again;
    cmd_auth(&again, "held", f->now, f->ref_a, 1000);
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "held", f->now, id, 0);
    activation_repeat(f, &c, f->acct);
    repeated(f, &again, &held);
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.records, records);

    /* The card's state is never forgotten: a tick past the retention has nothing to do. */
    int64_t keep = (int64_t)f->cfg.idempotency_hours * HOUR_MS;
    tick(f, "t1", T0_MS + keep, 0);
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "n-act", T0_MS + keep, id, 0);
    activation_repeat(f, &c, f->acct);

    /* Any other status is refused; unknown cards are not found. */
    for (uint8_t status = WX_CARD_LOCKED; status <= WX_CARD_CLOSED; status++) {
        uint32_t k = card_in_status(f, status, ref);
        cmd_status(&c, WX_CMD_CARD_ACTIVATE, "n-act", f->now, k, 0);
        refused(f, &c, WX_R_INVALID_STATUS);
    }
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, "n-act", f->now, f->card_b + 1000, 0);
    refused(f, &c, WX_R_CARD_NOT_FOUND);
    assert_balances(f, 0, 1000);
}

/* ---- WeChat followers ---- */

/* A follower as the engine shows it must be bound to `customer`. */
static struct wx_follower_view follower(struct fx *f, const char *openid, uint32_t customer)
{
    struct wx_follower_view v;
    if (wx_engine_follower(f->e, openid, &v) != 0) {
        fail_msg("follower '%s' is not bound", openid);
    }
    assert_string_equal(v.openid, openid);
    assert_int_equal(v.customer_id, customer);
    return v;
}

static void not_bound(struct fx *f, const char *openid)
{
    struct wx_follower_view v;
    assert_int_equal(wx_engine_follower(f->e, openid, &v), -1);
}

/* The customer's followers must be exactly `want`, oldest binding first. */
static void followers_are(struct fx *f, uint32_t customer, const char *const *want, size_t n)
{
    struct wx_follower_view v[WX_FOLLOWERS_PER_CUSTOMER + 1];
    size_t got = wx_engine_customer_followers(f->e, customer, v, WX_FOLLOWERS_PER_CUSTOMER + 1);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].openid, want[i]);
        assert_int_equal(v[i].customer_id, customer);
        assert_true(i == 0 || v[i].bound_at_ms >= v[i - 1].bound_at_ms);
    }
}

/* Binds and requires an approval that was journaled. */
static struct wx_result bind_ok(struct fx *f, const char *key, const char *openid,
                                uint32_t customer)
{
    struct wx_cmd c;
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, key, f->now, openid, customer, WX_BIND_STAFF);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.id, customer);
    assert_int_equal(r.account_id, 0);
    assert_int_equal(r.approval, 0);
    return r;
}

/* The command must be approved as a repeat on the follower's own state: not journaled,
 * numbered with the last seq, nothing changed. */
static void bind_repeat(struct fx *f, const struct wx_cmd *c)
{
    struct membuf before, after;
    struct wx_result res;
    snap_mem(f->e, &before);
    uint64_t last = wx_engine_last_seq(f->e);
    assert_int_equal(run(f, c, &res), 0);
    snap_mem(f->e, &after);
    assert_int_equal(res.reason, WX_APPROVED);
    assert_int_equal(res.repeat, 1);
    assert_int_equal(res.journaled, 0);
    assert_int_equal(res.seq, last);
    assert_int_equal(res.id, c->follower.customer_id);
    assert_true(snap_same(&before, &after));
    free(before.p);
    free(after.p);
}

static void test_follower_bind(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    struct wx_engine_stats st;
    f->now += 1000;
    struct wx_result first = bind_ok(f, "bind-1", "oAbc_12-3", 1);
    struct wx_follower_view v = follower(f, "oAbc_12-3", 1);
    assert_int_equal(v.bound_at_ms, f->now);
    assert_int_equal(v.via, WX_BIND_STAFF);
    const char *one[] = {"oAbc_12-3"};
    followers_are(f, 1, one, 1);
    followers_are(f, 2, NULL, 0);
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.followers, 1);
    uint64_t records = st.records;

    /* Bound already to the same customer, under any key, by anyone: a repeat. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-1-again", f->now + HOUR_MS, "oAbc_12-3", 1,
                 WX_BIND_CARDHOLDER);
    bind_repeat(f, &c);
    assert_int_equal(follower(f, "oAbc_12-3", 1).via, WX_BIND_STAFF); /* the first binding */
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.records, records); /* nothing remembered for a repeat */
    /* The first key, sent again: its first answer. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-1", f->now + HOUR_MS, "oAbc_12-3", 1,
                 WX_BIND_STAFF);
    repeated(f, &c, &first);

    /* Bound to another customer. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-2", f->now, "oAbc_12-3", 2, WX_BIND_STAFF);
    refused(f, &c, WX_R_FOLLOWER_TAKEN);
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-2", f->now, "oAbc_12-3", 2, WX_BIND_CARDHOLDER);
    refused(f, &c, WX_R_FOLLOWER_TAKEN);
    /* Unknown customers. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-3", f->now, "oOther", 3, WX_BIND_STAFF);
    refused(f, &c, WX_R_CUSTOMER_NOT_FOUND);
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-3", f->now, "oOther", 0, WX_BIND_STAFF);
    refused(f, &c, WX_R_CUSTOMER_NOT_FOUND);
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-3", f->now, "oOther", UINT32_MAX, WX_BIND_STAFF);
    refused(f, &c, WX_R_CUSTOMER_NOT_FOUND);
    /* "Unsubscribed" is a reason to unbind, never to bind; other values are not ours. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-3", f->now, "oOther", 2, WX_BIND_UNSUBSCRIBED);
    refused(f, &c, WX_R_INVALID_FIELD);
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-3", f->now, "oOther", 2, 3);
    refused(f, &c, WX_R_INVALID_FIELD);
    not_bound(f, "oOther");
    /* By the cardholder. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bind-3", f->now, "oOther", 2, WX_BIND_CARDHOLDER);
    decided(f, &c, WX_APPROVED);
    assert_int_equal(follower(f, "oOther", 2).via, WX_BIND_CARDHOLDER);
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.followers, 2);
    /* Every reason and kind has a name. */
    for (int r = 0; r < WX_R_COUNT; r++) {
        assert_non_null(wx_reason_name((uint8_t)r));
        assert_non_null(wx_reason_str((uint8_t)r));
    }
    for (int k = 0; k < WX_CMD_KIND_COUNT; k++) {
        assert_non_null(wx_cmd_kind_name((uint8_t)k));
    }
    assert_string_equal(wx_reason_name(WX_R_FOLLOWER_NOT_BOUND), "FOLLOWER_NOT_BOUND");
    assert_string_equal(wx_cmd_kind_name(WX_CMD_FOLLOWER_UNBIND), "follower-unbind");
    assert_string_equal(wx_bind_via_name(WX_BIND_UNSUBSCRIBED), "unsubscribed");
    assert_string_equal(wx_bind_via_name(3), "unknown");
}

static void test_follower_limit(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    const char *ids[] = {"o1", "o2", "o3", "o4", "o5", "o6"};
    _Static_assert(WX_FOLLOWERS_PER_CUSTOMER == 5, "this test binds one more than 5");
    for (int i = 0; i < WX_FOLLOWERS_PER_CUSTOMER; i++) {
        char key[16];
        snprintf(key, sizeof key, "lim-%d", i);
        f->now += 1000;
        bind_ok(f, key, ids[i], 1);
    }
    followers_are(f, 1, ids, 5);
    /* The 6th is one too many, for this customer only. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "lim-5", f->now, "o6", 1, WX_BIND_STAFF);
    refused(f, &c, WX_R_FOLLOWER_LIMIT);
    not_bound(f, "o6");
    /* A repeat of a bound one is still a repeat, not over the limit. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "lim-again", f->now, "o3", 1, WX_BIND_STAFF);
    bind_repeat(f, &c);
    bind_ok(f, "lim-other", "o7", 2);

    /* The views: all of them, or the first `cap`. */
    struct wx_follower_view v[2];
    assert_int_equal(wx_engine_customer_followers(f->e, 1, v, 2), 5);
    assert_string_equal(v[0].openid, "o1");
    assert_string_equal(v[1].openid, "o2");
    assert_int_equal(wx_engine_customer_followers(f->e, 1, NULL, 0), 5);
    assert_int_equal(wx_engine_customer_followers(f->e, 0, v, 2), 0);
    assert_int_equal(wx_engine_customer_followers(f->e, 3, v, 2), 0);

    /* Unbinding one makes room; the newcomer goes last. */
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "lim-unbind", f->now, "o2", 1, WX_BIND_STAFF);
    decided(f, &c, WX_APPROVED);
    f->now += 1000;
    bind_ok(f, "lim-5b", "o6", 1);
    const char *now_bound[] = {"o1", "o3", "o4", "o5", "o6"};
    followers_are(f, 1, now_bound, 5);
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "lim-6", f->now, "o2", 1, WX_BIND_STAFF);
    refused(f, &c, WX_R_FOLLOWER_LIMIT);
    /* Unbinding the first and the last keeps the others in order. */
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "lim-u1", f->now, "o1", 0, WX_BIND_STAFF);
    decided(f, &c, WX_APPROVED);
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "lim-u6", f->now, "o6", 1, WX_BIND_UNSUBSCRIBED);
    decided(f, &c, WX_APPROVED);
    const char *middle[] = {"o3", "o4", "o5"};
    followers_are(f, 1, middle, 3);
    const char *other[] = {"o7"};
    followers_are(f, 2, other, 1);
}

static void test_follower_unbind(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    struct wx_engine_stats st;
    bind_ok(f, "u-a", "oA", 1);
    bind_ok(f, "u-b", "oB", 1);
    bind_ok(f, "u-c", "oC", 2);
    /* Named with the wrong customer, or one that does not exist. */
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u1", f->now, "oB", 2, WX_BIND_STAFF);
    refused(f, &c, WX_R_FOLLOWER_NOT_BOUND);
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u1", f->now, "oB", 99, WX_BIND_STAFF);
    refused(f, &c, WX_R_CUSTOMER_NOT_FOUND);
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u1", f->now, "oB", 0, 3);
    refused(f, &c, WX_R_INVALID_FIELD);
    /* Customer 0: whichever it is bound to. The answer names the customer. */
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u1", f->now, "oB", 0, WX_BIND_STAFF);
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.id, 1);
    assert_int_equal(r.account_id, 0);
    not_bound(f, "oB");
    /* Not bound any more, or never. */
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u2", f->now, "oB", 0, WX_BIND_STAFF);
    refused(f, &c, WX_R_FOLLOWER_NOT_BOUND);
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u2", f->now, "oB", 1, WX_BIND_STAFF);
    refused(f, &c, WX_R_FOLLOWER_NOT_BOUND);
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u2", f->now, "oNobody", 0, WX_BIND_UNSUBSCRIBED);
    refused(f, &c, WX_R_FOLLOWER_NOT_BOUND);
    /* The follower unfollowed the account; or the cardholder unbinds on the web. */
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u3", f->now, "oA", 1, WX_BIND_UNSUBSCRIBED);
    assert_int_equal(decided(f, &c, WX_APPROVED).id, 1);
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "u4", f->now, "oC", 2, WX_BIND_CARDHOLDER);
    assert_int_equal(decided(f, &c, WX_APPROVED).id, 2);
    followers_are(f, 1, NULL, 0);
    followers_are(f, 2, NULL, 0);
    wx_engine_stats(f->e, &st);
    assert_int_equal(st.followers, 0);
    /* An unbound OpenID is free for anyone; the freed slots are reused. */
    assert_int_equal(f->e->n_followers_used, 3);
    bind_ok(f, "u-b2", "oB", 2);
    bind_ok(f, "u-a2", "oA", 2);
    const char *two[] = {"oB", "oA"};
    followers_are(f, 2, two, 2);
    assert_int_equal(f->e->n_followers_used, 3);
    assert_int_equal(f->e->n_followers, 2);
}

static void test_follower_invalid_openid(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    char longest[WX_OPENID_MAX + 1];
    memset(longest, 'x', WX_OPENID_MAX);
    longest[WX_OPENID_MAX] = '\0';
    static const char *const bad[] = {"",     "o A", "o/A",          "o.A", "oA\n", "+oA",
                                      "o\tA", "oA=", "\xe4\xb8\xad", "o:A", "o%41"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(wx_openid_valid(bad[i]));
        for (uint8_t kind = WX_CMD_FOLLOWER_BIND; kind <= WX_CMD_FOLLOWER_UNBIND; kind++) {
            cmd_follower(&c, kind, "bad", f->now, bad[i], 1, WX_BIND_STAFF);
            refused(f, &c, WX_R_INVALID_FIELD);
        }
        not_bound(f, bad[i]);
    }
    /* Longer than WX_OPENID_MAX: the buffer holds no NUL, and it is not read past. */
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "bad", f->now, "o", 1, WX_BIND_STAFF);
    memset(c.follower.openid, 'x', sizeof c.follower.openid);
    refused(f, &c, WX_R_INVALID_FIELD);
    c.kind = WX_CMD_FOLLOWER_UNBIND;
    refused(f, &c, WX_R_INVALID_FIELD);
    assert_false(wx_openid_valid(c.follower.openid));
    /* Exactly WX_OPENID_MAX, and the shortest, are fine. */
    assert_true(wx_openid_valid(longest));
    assert_true(wx_openid_valid("o"));
    assert_true(wx_openid_valid("oAbCdEfGhIjKlMnOpQrStUvWxYz0_-"));
    bind_ok(f, "long", longest, 1);
    assert_int_equal(strlen(follower(f, longest, 1).openid), WX_OPENID_MAX);
    bind_ok(f, "short", "o", 1);
    /* OpenIDs are case-sensitive. */
    bind_ok(f, "upper", "O", 2);
    follower(f, "o", 1);
    follower(f, "O", 2);
}

/* A key's first answer comes back even after the state has moved on: a late retry of an old
 * unbind does not undo a newer binding. After idempotency_hours the key is forgotten. */
static void test_follower_idempotency(void **state)
{
    struct fx *f = *state;
    struct wx_cmd bind, unbind, c;
    cmd_follower(&bind, WX_CMD_FOLLOWER_BIND, "wx-bind", f->now, "oA", 1, WX_BIND_CARDHOLDER);
    struct wx_result first_bind = decided(f, &bind, WX_APPROVED);
    cmd_follower(&unbind, WX_CMD_FOLLOWER_UNBIND, "wx-unsub", f->now, "oA", 0,
                 WX_BIND_UNSUBSCRIBED);
    struct wx_result first_unbind = decided(f, &unbind, WX_APPROVED);
    assert_int_equal(first_unbind.id, 1);
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "wx-bind-2", f->now, "oA", 2, WX_BIND_CARDHOLDER);
    decided(f, &c, WX_APPROVED);
    /* Both old keys again: their first answers; oA stays with customer 2. */
    unbind.time_ms += HOUR_MS;
    repeated(f, &unbind, &first_unbind);
    bind.time_ms += HOUR_MS;
    repeated(f, &bind, &first_bind);
    follower(f, "oA", 2);
    /* A known key with other content. */
    c = bind;
    c.follower.customer_id = 2;
    refused(f, &c, WX_R_DUPLICATE_MISMATCH);
    c = unbind;
    c.kind = WX_CMD_FOLLOWER_BIND;
    refused(f, &c, WX_R_DUPLICATE_MISMATCH);
    /* Forgotten after idempotency_hours: decided anew on today's state. */
    int64_t keep = (int64_t)f->cfg.idempotency_hours * HOUR_MS;
    tick(f, "t1", T0_MS + keep, 1);
    bind.time_ms = T0_MS + keep;
    refused(f, &bind, WX_R_FOLLOWER_TAKEN);
    unbind.time_ms = T0_MS + keep;
    struct wx_result again = decided(f, &unbind, WX_APPROVED);
    assert_int_equal(again.id, 2);
    not_bound(f, "oA");
}

/* Followers survive a snapshot and a replay (as every test's teardown also checks), and a
 * snapshot of the previous format is refused. */
static void test_follower_snapshot(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    char diff[256], err[256];
    bind_ok(f, "s1", "oA", 1);
    bind_ok(f, "s2", "oB", 1);
    bind_ok(f, "s3", "oC", 2);
    f->now += 1000;
    bind_ok(f, "s4", "oD", 1);
    cmd_follower(&c, WX_CMD_FOLLOWER_UNBIND, "s5", f->now, "oB", 0, WX_BIND_STAFF);
    decided(f, &c, WX_APPROVED); /* leaves a free slot */
    wx_engine_t *copies[2];
    copies[0] = engine_clone(f->e, &f->cfg);
    copies[1] = wx_engine_new(&f->cfg);
    for (size_t i = 0; i < f->n_rows; i++) {
        assert_int_equal(wx_engine_replay(copies[1], f->rows[i].seq, f->rows[i].buf, f->rows[i].len,
                                          err, sizeof err),
                         0);
    }
    for (int k = 0; k < 2; k++) {
        wx_engine_t *e = copies[k];
        wx_engine_check(e);
        assert_int_equal(wx_engine_compare(f->e, e, diff, sizeof diff), 0);
        struct wx_follower_view a, b;
        assert_int_equal(wx_engine_follower(e, "oD", &a), 0);
        assert_int_equal(wx_engine_follower(f->e, "oD", &b), 0);
        assert_memory_equal(&a, &b, sizeof a);
        assert_int_equal(wx_engine_follower(e, "oB", &a), -1);
        struct wx_follower_view v[WX_FOLLOWERS_PER_CUSTOMER];
        assert_int_equal(wx_engine_customer_followers(e, 1, v, WX_FOLLOWERS_PER_CUSTOMER), 2);
        assert_string_equal(v[0].openid, "oA");
        assert_string_equal(v[1].openid, "oD");
        /* The copy decides the next binding as the live engine does: into the freed slot. */
        struct wx_result r1, r2;
        struct wx_row row1, row2;
        cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "s6", f->now, "oE", 2, WX_BIND_STAFF);
        assert_int_equal(wx_engine_apply(e, &c, &r1, &row1), 1);
        wx_engine_t *live = engine_clone(f->e, &f->cfg);
        assert_int_equal(wx_engine_apply(live, &c, &r2, &row2), 1);
        assert_int_equal(row1.len, row2.len);
        assert_memory_equal(row1.buf, row2.buf, row1.len);
        assert_int_equal(wx_engine_compare(live, e, diff, sizeof diff), 0);
        wx_engine_free(live);
        /* ... and compare sees a follower that differs, all else being equal. */
        live = engine_clone(f->e, &f->cfg);
        cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "s6", f->now, "oF", 2, WX_BIND_STAFF);
        assert_int_equal(wx_engine_apply(live, &c, &r2, &row2), 1);
        assert_int_equal(wx_engine_compare(live, e, diff, sizeof diff), 1);
        assert_non_null(strstr(diff, "follower slot"));
        wx_engine_free(live);
        wx_engine_free(e);
    }
    /* The previous format (magic WXENG001) is refused, not misread. */
    struct membuf m;
    snap_mem(f->e, &m);
    assert_memory_equal(m.p, "WXENG002", 8);
    m.p[7] = '1';
    wx_engine_t *e = wx_engine_new(&f->cfg);
    FILE *in = fmemopen(m.p, m.n, "rb");
    assert_int_equal(wx_engine_load(e, in, err, sizeof err), -1);
    assert_non_null(strstr(err, "snapshot"));
    fclose(in);
    wx_engine_free(e);
    free(m.p);
}

static void test_codec_follower_rejects(void **state)
{
    (void)state;
    struct wx_cmd c, got;
    struct wx_result res = {0}, got_res;
    uint8_t buf[WX_ROW_MAX], bad[WX_ROW_MAX + 8];
    size_t body_off, body_len;
    cmd_follower(&c, WX_CMD_FOLLOWER_BIND, "k", 1, "oAbc", 7, WX_BIND_STAFF);
    size_t head = wx_cmd_encode_head(&c, buf, sizeof buf, &body_off, &body_len);
    assert_true(head > 0);
    size_t len = wx_row_encode(&c, &res, buf, sizeof buf);
    assert_int_equal(buf[body_off], 4);
    assert_int_equal(wx_row_decode(buf, len, &got, &got_res), 0);
    assert_string_equal(got.follower.openid, "oAbc");
    assert_int_equal(got.follower.customer_id, 7);
    /* An OpenID longer than WX_OPENID_MAX. */
    size_t n = body_off;
    memcpy(bad, buf, body_off);
    bad[n++] = WX_OPENID_MAX + 1;
    memset(bad + n, 'o', WX_OPENID_MAX + 1);
    n += WX_OPENID_MAX + 1;
    memcpy(bad + n, buf + body_off + 5, len - body_off - 5);
    n += len - body_off - 5;
    assert_int_equal(wx_row_decode(bad, n, &got, &got_res), -1);
    /* Exactly WX_OPENID_MAX decodes. */
    n = body_off;
    bad[n++] = WX_OPENID_MAX;
    memset(bad + n, 'o', WX_OPENID_MAX);
    n += WX_OPENID_MAX;
    memcpy(bad + n, buf + body_off + 5, len - body_off - 5);
    n += len - body_off - 5;
    assert_int_equal(wx_row_decode(bad, n, &got, &got_res), 0);
    assert_int_equal(strlen(got.follower.openid), WX_OPENID_MAX);
    /* An embedded NUL. */
    memcpy(bad, buf, len);
    bad[body_off + 2] = 0;
    assert_int_equal(wx_row_decode(bad, len, &got, &got_res), -1);
    /* A customer id beyond 32 bits (varint of 2^32). */
    memcpy(bad, buf, body_off + 5);
    static const uint8_t big[] = {0x80, 0x80, 0x80, 0x80, 0x10};
    memcpy(bad + body_off + 5, big, sizeof big);
    memcpy(bad + body_off + 5 + sizeof big, buf + body_off + 6, len - body_off - 6);
    assert_int_equal(wx_row_decode(bad, len + sizeof big - 1, &got, &got_res), -1);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c, ok;
    uint8_t nobody[WX_REF_LEN];
    ref_fill(nobody, 31337);
    cmd_auth(&ok, "bad", f->now, f->ref_a, 100);
    c = ok, memcpy(c.auth.ref, nobody, WX_REF_LEN);
    refused(f, &c, WX_R_CARD_NOT_FOUND);
    static const int64_t bad_amounts[] = {0, -1, INT64_MIN, WX_AMOUNT_MAX + 1, INT64_MAX};
    for (size_t i = 0; i < sizeof bad_amounts / sizeof bad_amounts[0]; i++) {
        c = ok, c.auth.amount = bad_amounts[i];
        refused(f, &c, WX_R_INVALID_AMOUNT);
        cmd_follow(&c, WX_CMD_CAPTURE, "bad", f->now, NULL, f->ref_a, bad_amounts[i]);
        refused(f, &c, WX_R_INVALID_AMOUNT);
        cmd_follow(&c, WX_CMD_REFUND, "bad", f->now, NULL, f->ref_a, bad_amounts[i]);
        refused(f, &c, WX_R_INVALID_AMOUNT);
        cmd_posting(&c, WX_CMD_REPAYMENT, "bad", f->now, f->acct, bad_amounts[i]);
        refused(f, &c, WX_R_INVALID_AMOUNT);
        cmd_posting(&c, WX_CMD_FEE, "bad", f->now, f->acct, bad_amounts[i]);
        refused(f, &c, WX_R_INVALID_AMOUNT);
    }
    static const uint16_t bad_currencies[] = {0, 840, 999, 157};
    for (size_t i = 0; i < sizeof bad_currencies / sizeof bad_currencies[0]; i++) {
        c = ok, c.auth.currency = bad_currencies[i];
        refused(f, &c, WX_R_INVALID_CURRENCY);
        cmd_follow(&c, WX_CMD_CAPTURE, "bad", f->now, NULL, f->ref_a, 100);
        c.follow.currency = bad_currencies[i];
        refused(f, &c, WX_R_INVALID_CURRENCY);
    }
    /* The header: key length, kind, time. */
    c = ok, c.key_len = 0;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.key_len = WX_KEY_MAX + 1;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.key_len = 255;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.kind = WX_CMD_NONE;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.kind = WX_CMD_KIND_COUNT;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.time_ms = -1;
    refused(f, &c, WX_R_INVALID_FIELD);
    cmd_init(&c, WX_CMD_TICK, "", f->now + DAY_MS);
    refused(f, &c, WX_R_INVALID_FIELD);
    /* Flags and enumerations out of range. */
    c = ok, c.auth.type = 3;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.auth.capture = 2;
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, c.auth.advice = 7;
    refused(f, &c, WX_R_INVALID_FIELD);
    cmd_follow(&c, WX_CMD_CAPTURE, "bad", f->now, NULL, f->ref_a, 100);
    c.follow.final = 2;
    refused(f, &c, WX_R_INVALID_FIELD);
    cmd_follow(&c, WX_CMD_CAPTURE, "bad", f->now, NULL, f->ref_a, 100);
    c.follow.orig_len = WX_KEY_MAX + 1;
    refused(f, &c, WX_R_INVALID_FIELD);
    /* A string with no NUL in its buffer. */
    c = ok, memset(c.auth.merchant.name, 'M', sizeof c.auth.merchant.name);
    refused(f, &c, WX_R_INVALID_FIELD);
    c = ok, memset(c.auth.merchant.country, 'C', sizeof c.auth.merchant.country);
    refused(f, &c, WX_R_INVALID_FIELD);
    /* The largest amount is accepted where credit allows it. */
    struct wx_cmd l;
    cmd_limit(&l, WX_CMD_LIMIT_SET, "max", f->now, f->acct, WX_LIMIT_MAX, 0);
    decided(f, &l, WX_APPROVED);
    c = ok, c.auth.amount = WX_AMOUNT_MAX;
    struct wx_result r = decided(f, &c, WX_APPROVED);
    assert_int_equal(r.available, 0);
    /* A known key with other content. */
    c.auth.amount = WX_AMOUNT_MAX - 1;
    refused(f, &c, WX_R_DUPLICATE_MISMATCH);
    assert_balances(f, 0, WX_AMOUNT_MAX);
}

/* Balances stay within ±WX_BALANCE_MAX on every path that credits the account. */
static void test_balance_floor(void **state)
{
    struct fx *f = *state;
    struct wx_cmd c;
    cmd_limit(&c, WX_CMD_LIMIT_SET, "max", f->now, f->acct, WX_LIMIT_MAX, 0);
    decided(f, &c, WX_APPROVED);
    cmd_auth(&c, "big", f->now, f->ref_a, WX_AMOUNT_MAX);
    c.auth.capture = 1;
    decided(f, &c, WX_APPROVED);
    for (int i = 0; i < 1001; i++) {
        char key[16];
        snprintf(key, sizeof key, "pay%d", i);
        cmd_posting(&c, WX_CMD_REPAYMENT, key, f->now, f->acct, WX_AMOUNT_MAX);
        decided(f, &c, WX_APPROVED);
    }
    assert_balances(f, -1000000000000000LL, 0);
    cmd_posting(&c, WX_CMD_REPAYMENT, "one-more", f->now, f->acct, 1);
    refused(f, &c, WX_R_BALANCE_OVERFLOW);
    cmd_follow(&c, WX_CMD_REFUND, "refund", f->now, NULL, f->ref_a, 1);
    refused(f, &c, WX_R_BALANCE_OVERFLOW);
    cmd_follow(&c, WX_CMD_REFUND, "refund", f->now, "big", NULL, 1);
    refused(f, &c, WX_R_BALANCE_OVERFLOW);
    cmd_follow(&c, WX_CMD_REVERSAL, "reverse", f->now, "big", NULL, 0);
    refused(f, &c, WX_R_BALANCE_OVERFLOW);
    cmd_posting(&c, WX_CMD_FEE, "fee", f->now, f->acct, 1);
    decided(f, &c, WX_APPROVED);
    cmd_follow(&c, WX_CMD_REVERSAL, "reverse2", f->now, "big", NULL, 1);
    decided(f, &c, WX_APPROVED);
}

/* ---- snapshot ---- */

static void test_snapshot_refuses_other_settings(void **state)
{
    struct fx *f = *state;
    struct membuf m;
    snap_mem(f->e, &m);
    struct wx_engine_config other = f->cfg;
    other.hold_days = 8;
    wx_engine_t *e = wx_engine_new(&other);
    FILE *in = fmemopen(m.p, m.n, "rb");
    char err[256];
    assert_int_equal(wx_engine_load(e, in, err, sizeof err), -1);
    fclose(in);
    wx_engine_free(e);
    e = wx_engine_new(&f->cfg);
    in = fmemopen(m.p, m.n - 1, "rb");
    assert_int_equal(wx_engine_load(e, in, err, sizeof err), -1);
    fclose(in);
    wx_engine_free(e);
    free(m.p);
}

/* ---- codec ---- */

/* One command of every kind, with every field set. */
static int codec_cmds(struct wx_cmd *out)
{
    uint8_t ref[WX_REF_LEN];
    int n = 0;
    ref_fill(ref, 77);
    cmd_customer(&out[n++], "c", 1, "王小明", "+8613800000000", 5);
    cmd_card(&out[n++], "card", 2, 1, 0, ref, WX_LIMIT_MAX);
    out[n - 1].key_len = WX_KEY_MAX;
    memset(out[n - 1].key, 'K', WX_KEY_MAX);
    out[n - 1].card.pan_enc_len = WX_PAN_ENC_MAX;
    cmd_status(&out[n++], WX_CMD_CARD_ACTIVATE, "a", T0_MS, 4000000000u, 0);
    cmd_status(&out[n++], WX_CMD_CARD_STATUS, "s", T0_MS, 3, WX_CARD_STOLEN);
    cmd_limit(&out[n++], WX_CMD_LIMIT_SET, "l", T0_MS, 9, WX_LIMIT_MAX, 0);
    cmd_limit(&out[n++], WX_CMD_TEMP_LIMIT_SET, "t", T0_MS, 9, 5, INT64_MAX);
    cmd_auth(&out[n++], "au", INT64_MAX, ref, WX_AMOUNT_MAX);
    out[n - 1].auth.type = WX_AUTH_CASH;
    out[n - 1].auth.capture = out[n - 1].auth.advice = 1;
    out[n - 1].auth.merchant.txn_amount = -12345;
    out[n - 1].auth.merchant.txn_currency = 840;
    out[n - 1].auth.merchant.cross_border = 1;
    memset(out[n - 1].auth.merchant.name, 'N', WX_MERCHANT_NAME_MAX);
    uint8_t kinds[] = {WX_CMD_AUTH_INCREMENT, WX_CMD_CAPTURE, WX_CMD_REVERSAL, WX_CMD_REFUND};
    for (size_t i = 0; i < sizeof kinds; i++) {
        cmd_follow(&out[n++], kinds[i], "f", T0_MS, "orig-key", ref, (int64_t)i * 1000 + 1);
        out[n - 1].follow.final = 1;
    }
    cmd_posting(&out[n++], WX_CMD_REPAYMENT, "p", T0_MS, 1, 1);
    cmd_posting(&out[n++], WX_CMD_FEE, "p", T0_MS, UINT32_MAX, 2);
    cmd_posting(&out[n++], WX_CMD_INTEREST, "p", T0_MS, 1, 3);
    out[n - 1].posting.code = UINT16_MAX;
    cmd_init(&out[n++], WX_CMD_TICK, "tick", 0);
    char longest[WX_OPENID_MAX + 1];
    memset(longest, 'o', WX_OPENID_MAX);
    longest[WX_OPENID_MAX] = '\0';
    cmd_follower(&out[n++], WX_CMD_FOLLOWER_BIND, "fb", T0_MS, longest, UINT32_MAX,
                 WX_BIND_CARDHOLDER);
    cmd_follower(&out[n++], WX_CMD_FOLLOWER_UNBIND, "fu", T0_MS, "oA-_9", 0, WX_BIND_UNSUBSCRIBED);
    return n;
}

static void test_codec_round_trip(void **state)
{
    (void)state;
    struct wx_cmd cmds[24];
    int n = codec_cmds(cmds);
    uint8_t seen[WX_CMD_KIND_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        struct wx_result res = {.reason = WX_R_EXCEEDS_ORIGINAL,
                                .approval = 999999,
                                .id = UINT32_MAX,
                                .account_id = 7,
                                .amount = -WX_AMOUNT_MAX,
                                .available = INT64_MIN};
        uint8_t buf[WX_ROW_MAX], buf2[WX_ROW_MAX];
        size_t len = wx_row_encode(&cmds[i], &res, buf, sizeof buf);
        assert_true(len > 0);
        struct wx_cmd got;
        struct wx_result got_res;
        assert_int_equal(wx_row_decode(buf, len, &got, &got_res), 0);
        seen[got.kind] = 1;
        assert_int_equal(got.kind, cmds[i].kind);
        assert_int_equal(got.time_ms, cmds[i].time_ms);
        assert_int_equal(got.key_len, cmds[i].key_len);
        assert_memory_equal(got.key, cmds[i].key, got.key_len);
        assert_int_equal(got_res.reason, res.reason);
        assert_int_equal(got_res.approval, res.approval);
        assert_int_equal(got_res.id, res.id);
        assert_int_equal(got_res.account_id, res.account_id);
        assert_int_equal(got_res.amount, res.amount);
        assert_int_equal(got_res.available, res.available);
        /* Every body field survives: the decoded command encodes to the same bytes. */
        size_t len2 = wx_row_encode(&got, &got_res, buf2, sizeof buf2);
        assert_int_equal(len2, len);
        assert_memory_equal(buf, buf2, len);
        /* Damaged rows: every truncation, and a trailing byte. */
        for (size_t cut = 0; cut < len; cut++) {
            assert_int_equal(wx_row_decode(buf, cut, &got, &got_res), -1);
        }
        buf[len] = 0;
        assert_int_equal(wx_row_decode(buf, len + 1, &got, &got_res), -1);
        /* A row too small for its buffer does not encode. */
        assert_int_equal(wx_row_encode(&cmds[i], &res, buf, len - 1), 0);
    }
    for (int k = WX_CMD_CUSTOMER_ADD; k < WX_CMD_KIND_COUNT; k++) {
        assert_true(seen[k]);
    }
    assert_string_equal(cmds[0].customer.name, "王小明");
}

static void test_codec_rejects(void **state)
{
    (void)state;
    struct wx_cmd c, got;
    struct wx_result res = {0}, got_res;
    uint8_t buf[WX_ROW_MAX], bad[WX_ROW_MAX + 64];
    cmd_customer(&c, "k", 1, "abc", "13800000000", 1);
    size_t len = wx_row_encode(&c, &res, buf, sizeof buf);
    size_t body_off, body_len;
    assert_int_equal(wx_cmd_encode_head(&c, bad, sizeof bad, &body_off, &body_len) > 0, 1);
    assert_int_equal(buf[body_off], 3); /* the name's length prefix */

    /* A name longer than WX_NAME_MAX. */
    size_t n = 0;
    memcpy(bad, buf, body_off);
    n = body_off;
    bad[n++] = WX_NAME_MAX + 1;
    memset(bad + n, 'a', WX_NAME_MAX + 1);
    n += WX_NAME_MAX + 1;
    memcpy(bad + n, buf + body_off + 4, len - body_off - 4);
    n += len - body_off - 4;
    assert_int_equal(wx_row_decode(bad, n, &got, &got_res), -1);
    bad[body_off] = WX_NAME_MAX; /* same bytes read as a 64-byte name: the rest misparses */
    assert_int_equal(wx_row_decode(bad, n, &got, &got_res), -1);
    /* Exactly WX_NAME_MAX is fine. */
    memcpy(bad, buf, body_off);
    n = body_off;
    bad[n++] = WX_NAME_MAX;
    memset(bad + n, 'a', WX_NAME_MAX);
    n += WX_NAME_MAX;
    memcpy(bad + n, buf + body_off + 4, len - body_off - 4);
    n += len - body_off - 4;
    assert_int_equal(wx_row_decode(bad, n, &got, &got_res), 0);
    assert_int_equal(strlen(got.customer.name), WX_NAME_MAX);
    /* An embedded NUL. */
    memcpy(bad, buf, len);
    bad[body_off + 2] = 0;
    assert_int_equal(wx_row_decode(bad, len, &got, &got_res), -1);
    /* Version, kind, key length, reason. */
    memcpy(bad, buf, len);
    bad[0] = 2;
    assert_int_equal(wx_row_decode(bad, len, &got, &got_res), -1);
    memcpy(bad, buf, len);
    bad[1] = WX_CMD_KIND_COUNT;
    assert_int_equal(wx_row_decode(bad, len, &got, &got_res), -1);
    memcpy(bad, buf, len);
    bad[1] = WX_CMD_NONE;
    assert_int_equal(wx_row_decode(bad, len, &got, &got_res), -1);
    res.reason = WX_R_COUNT;
    len = wx_row_encode(&c, &res, buf, sizeof buf);
    assert_int_equal(wx_row_decode(buf, len, &got, &got_res), -1);
    /* A key longer than WX_KEY_MAX. */
    res.reason = 0;
    len = wx_row_encode(&c, &res, buf, sizeof buf);
    size_t key_at = body_off - 2; /* version, kind, 1-byte time (1 zigzags to 2), len, key */
    assert_int_equal(buf[key_at], 1);
    memcpy(bad, buf, key_at);
    bad[key_at] = WX_KEY_MAX + 1;
    memset(bad + key_at + 1, 'k', WX_KEY_MAX + 1);
    memcpy(bad + key_at + 2 + WX_KEY_MAX, buf + key_at + 2, len - key_at - 2);
    assert_int_equal(wx_row_decode(bad, len + WX_KEY_MAX, &got, &got_res), -1);
    /* An overlong varint (11 bytes) for the time. */
    memcpy(bad, buf, 2);
    memset(bad + 2, 0xff, 10);
    bad[12] = 0x01;
    memcpy(bad + 13, buf + 3, len - 3);
    assert_int_equal(wx_row_decode(bad, len + 10, &got, &got_res), -1);
    /* A pan_enc length beyond its limit. */
    uint8_t ref[WX_REF_LEN];
    ref_fill(ref, 1);
    cmd_card(&c, "k", 1, 1, 0, ref, 100);
    len = wx_row_encode(&c, &res, buf, sizeof buf);
    assert_true(len > 0);
    c.card.pan_enc_len = WX_PAN_ENC_MAX + 1;
    assert_int_equal(wx_row_encode(&c, &res, buf, sizeof buf) > 0, 1);
    assert_int_equal(wx_row_decode(buf, wx_row_encode(&c, &res, buf, sizeof buf), &got, &got_res),
                     -1);
    assert_int_equal(wx_row_decode(NULL, 0, &got, &got_res), -1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_customer_add),
        T(test_card_issue),
        T(test_supplementary_shares_credit),
        T(test_activation),
        T(test_status_transitions),
        T(test_authorize_hold),
        T(test_decline_reasons),
        T(test_balance_inquiry),
        T(test_advice),
        T(test_authorize_and_capture),
        T(test_incremental_auth),
        T(test_capture),
        T(test_force_post),
        T(test_capture_after_expiry),
        T(test_reversal),
        T(test_reversal_before_original),
        T(test_follow_up_naming_itself),
        T(test_refund),
        T(test_postings),
        T(test_limits),
        T(test_temp_limit),
        T(test_hold_expiry_by_mcc),
        cmocka_unit_test_setup_teardown(test_hold_expiry_other_config, setup_short, teardown),
        T(test_forgetting),
        T(test_idempotency_every_kind),
        T(test_activation_natural_idempotency),
        T(test_follower_bind),
        T(test_follower_limit),
        T(test_follower_unbind),
        T(test_follower_invalid_openid),
        T(test_follower_idempotency),
        T(test_follower_snapshot),
        T(test_bad_input),
        T(test_balance_floor),
        T(test_snapshot_refuses_other_settings),
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_rejects),
        cmocka_unit_test(test_codec_follower_rejects),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
