/*
 * test_keys_history.c - the card secrets (keys) and the history projection (history), both
 * through the ledger as the CLI uses them.
 *
 * Keys: references are stable per master key and differ across keys and PANs; sealed PANs
 * open only with their key; ID documents are normalised before hashing.
 * History: a card's latest transactions come back newest first with their merchant, include
 * the account's repayments, exclude other cards, and stay exact as the journal grows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "engine_cmds.h"
#include "history/history.h"
#include "issuing/issuing.h"
#include "keys/keys.h"
#include "ledger/ledger.h"

static const uint8_t MASTER_A[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t MASTER_B[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11};

static void test_card_refs_and_sealing(void **state)
{
    (void)state;
    wx_keys_t *a = wx_keys_new(MASTER_A), *b = wx_keys_new(MASTER_B);
    uint8_t r1[WX_REF_LEN], r2[WX_REF_LEN], r3[WX_REF_LEN];
    wx_card_ref(a, "6225880000000001", r1);
    wx_card_ref(a, "6225880000000001", r2);
    assert_memory_equal(r1, r2, WX_REF_LEN);
    wx_card_ref(b, "6225880000000001", r3);
    assert_memory_not_equal(r1, r3, WX_REF_LEN);
    wx_card_ref(a, "6225880000000019", r3);
    assert_memory_not_equal(r1, r3, WX_REF_LEN);

    uint8_t sealed[WX_PAN_ENC_MAX];
    size_t len;
    char pan[WX_PAN_MAX + 1];
    assert_int_equal(wx_pan_seal(a, "6225880000000001", sealed, sizeof sealed, &len), 0);
    assert_null(memmem(sealed, len, "6225880000000001", 16));
    assert_int_equal(wx_pan_unseal(a, sealed, len, pan), 0);
    assert_string_equal(pan, "6225880000000001");
    assert_int_equal(wx_pan_unseal(b, sealed, len, pan), -1);
    sealed[len - 1] ^= 1;
    assert_int_equal(wx_pan_unseal(a, sealed, len, pan), -1);

    uint8_t id1[WX_REF_LEN], id2[WX_REF_LEN];
    wx_id_hmac(a, "31010419880808002x", id1);
    wx_id_hmac(a, "310104 19880808 002X", id2);
    assert_memory_equal(id1, id2, WX_REF_LEN);

    assert_int_not_equal(wx_cvv_tag(a, "6225880000000001", 3011, "123"),
                         wx_cvv_tag(a, "6225880000000001", 3011, "124"));
    wx_keys_free(a);
    wx_keys_free(b);
}

struct fixture {
    char dir[64];
    char db[128];
    wx_ledger_t *ledger;
    wx_keys_t *keys;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wx-history-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/bank.db", f->dir);
    struct wx_ledger_options opt = {.db_path = f->db,
                                    .engine = {.hold_days = 7,
                                               .hold_days_long = 30,
                                               .capture_tolerance_pct = 20,
                                               .idempotency_hours = 72,
                                               .reference_days = 45},
                                    .batch_max = 1024};
    char err[256];
    f->ledger = wx_ledger_open(&opt, err, sizeof err);
    f->keys = wx_keys_new(MASTER_A);
    *state = f;
    return f->ledger ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    wx_ledger_close(f->ledger);
    wx_keys_free(f->keys);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static struct wx_result buy(struct fixture *f, const char *pan, int n, int64_t fen,
                            const char *merchant)
{
    struct wx_cmd cmd = {.kind = WX_CMD_AUTHORIZE, .time_ms = 1790000000000LL + n * 1000LL};
    cmd.key_len = (uint8_t)snprintf(cmd.key, sizeof cmd.key, "test:auth:%d", n);
    wx_card_ref(f->keys, pan, cmd.auth.ref);
    cmd.auth.amount = fen;
    cmd.auth.currency = WX_CURRENCY_CNY;
    snprintf(cmd.auth.merchant.name, sizeof cmd.auth.merchant.name, "%s", merchant);
    struct wx_result res;
    wx_ledger_submit(f->ledger, &cmd, &res);
    return res;
}

static void test_recent_transactions(void **state)
{
    struct fixture *f = *state;
    char err[256];
    FILE *pans = tmpfile();
    assert_int_equal(wx_issuing_seed(f->ledger, f->keys, 2, "622588", 16, pans, err, sizeof err),
                     0);
    char pan[2][32];
    rewind(pans);
    for (int i = 0; i < 2; i++) {
        assert_non_null(fgets(pan[i], sizeof pan[i], pans));
        pan[i][16] = '\0';
    }
    fclose(pans);

    for (int i = 1; i <= 12; i++) {
        char m[32];
        snprintf(m, sizeof m, "shop %d", i);
        assert_int_equal(buy(f, pan[i % 2], i, 100 * i, m).reason, WX_APPROVED);
    }
    struct wx_cmd pay = {.kind = WX_CMD_REPAYMENT, .time_ms = 1790000100000LL};
    pay.key_len = (uint8_t)snprintf(pay.key, sizeof pay.key, "test:repay");
    pay.posting.account_id = 1;
    pay.posting.amount = 500;
    pay.posting.currency = WX_CURRENCY_CNY;
    struct wx_result res;
    wx_ledger_submit(f->ledger, &pay, &res);
    assert_int_equal(res.reason, WX_APPROVED);
    wx_ledger_sync(f->ledger, res.seq);

    struct wx_history_item items[5];
    size_t n;
    /* Card 1 (the first PAN) bought on even steps; its account also got the repayment. */
    assert_int_equal(wx_history_recent(f->db, 1, 1, items, 5, &n, err, sizeof err), 0);
    assert_int_equal(n, 5);
    assert_int_equal(items[0].kind, WX_CMD_REPAYMENT);
    assert_int_equal(items[0].card_id, 0);
    assert_string_equal(items[1].merchant, "shop 12");
    assert_int_equal(items[1].amount, 1200);
    assert_string_equal(items[2].merchant, "shop 10");
    for (size_t i = 1; i < n; i++) {
        assert_true(items[i].seq < items[i - 1].seq);
        assert_int_equal(items[i].card_id, 1);
    }

    /* The projection catches up incrementally: a new transaction shows at once. */
    res = buy(f, pan[0], 13, 1300, "shop 13");
    wx_ledger_sync(f->ledger, res.seq);
    assert_int_equal(wx_history_recent(f->db, 1, 1, items, 5, &n, err, sizeof err), 0);
    assert_string_equal(items[0].merchant, "shop 13");
    assert_int_equal(wx_history_recent(f->db, 2, 2, items, 5, &n, err, sizeof err), 0);
    assert_string_equal(items[0].merchant, "shop 11");
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(items[i].card_id, 2);
    }
}

/* ---- what each item did to the balance owed ------------------------------------------- */

static struct wx_result submit(struct fixture *f, struct wx_cmd *cmd, unsigned *n)
{
    cmd->time_ms = 1790000000000LL + (int64_t)(*n) * 60000LL;
    cmd->key_len = (uint8_t)snprintf(cmd->key, sizeof cmd->key, "test:cmd:%u", (*n)++);
    struct wx_result res;
    wx_ledger_submit(f->ledger, cmd, &res);
    wx_ledger_sync(f->ledger, res.seq);
    return res;
}

static void follow_of(struct wx_cmd *cmd, uint8_t kind, const char *orig, int64_t fen)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->kind = kind;
    cmd->follow.orig_len = (uint8_t)strlen(orig);
    memcpy(cmd->follow.orig_key, orig, cmd->follow.orig_len);
    cmd->follow.amount = fen;
    cmd->follow.currency = WX_CURRENCY_CNY;
    cmd->follow.final = 1;
}

static int64_t engine_owed(struct fixture *f, uint32_t account)
{
    struct wx_account_view a;
    assert_int_equal(wx_engine_account(wx_ledger_engine(f->ledger), account, &a), 0);
    return a.posted;
}

static int64_t projected_owed(struct fixture *f, wx_history_reader_t *r, uint32_t account)
{
    char err[256];
    int64_t owed;
    assert_int_equal(wx_history_catch_up(f->db, NULL, err, sizeof err), 0);
    assert_int_equal(wx_history_owed_before(r, account, INT64_MAX, &owed, err, sizeof err), 0);
    return owed;
}

/*
 * Random purchases (captured at once or held), captures, reversals of both, refunds,
 * repayments and fees: after each, the sum of what the projection says each item posted
 * equals the balance the engine owes. The statements rest on that sum.
 */
static void test_posted_matches_engine(void **state)
{
    struct fixture *f = *state;
    char err[256], pan[32], keys[400][24];
    FILE *pans = tmpfile();
    assert_int_equal(wx_issuing_seed(f->ledger, f->keys, 1, "622588", 16, pans, err, sizeof err),
                     0);
    rewind(pans);
    assert_non_null(fgets(pan, sizeof pan, pans));
    pan[16] = '\0';
    fclose(pans);
    wx_history_reader_t *r = wx_history_reader_open(f->db, err, sizeof err);
    assert_non_null(r);
    uint64_t rng = 42;
    unsigned n = 0, nkeys = 0;
    for (int step = 0; step < 300; step++) {
        struct wx_cmd cmd;
        unsigned pick = (unsigned)(splitmix64(&rng) % 10);
        int64_t fen = 100 + (int64_t)(splitmix64(&rng) % 50000);
        const char *orig = nkeys > 0 ? keys[splitmix64(&rng) % nkeys] : "none";
        if (pick < 4) {
            memset(&cmd, 0, sizeof cmd);
            cmd.kind = WX_CMD_AUTHORIZE;
            wx_card_ref(f->keys, pan, cmd.auth.ref);
            cmd.auth.amount = fen;
            cmd.auth.currency = WX_CURRENCY_CNY;
            cmd.auth.capture = pick < 2;
            snprintf(cmd.auth.merchant.name, sizeof cmd.auth.merchant.name, "shop %u", pick);
            snprintf(keys[nkeys++], sizeof keys[0], "test:cmd:%u", n);
        } else if (pick < 6) {
            follow_of(&cmd, WX_CMD_CAPTURE, orig, fen / 2);
            wx_card_ref(f->keys, pan, cmd.follow.ref);
        } else if (pick < 8) {
            follow_of(&cmd, WX_CMD_REVERSAL, orig, pick == 6 ? 0 : fen / 4);
        } else if (pick == 8) {
            follow_of(&cmd, WX_CMD_REFUND, orig, fen / 10);
            wx_card_ref(f->keys, pan, cmd.follow.ref);
        } else {
            memset(&cmd, 0, sizeof cmd);
            cmd.kind = (splitmix64(&rng) & 1) ? WX_CMD_REPAYMENT : WX_CMD_FEE;
            cmd.posting.account_id = 1;
            cmd.posting.amount = fen / 3;
            cmd.posting.currency = WX_CURRENCY_CNY;
        }
        submit(f, &cmd, &n);
        assert_true(nkeys < 400);
        if (step % 25 == 24) assert_int_equal(projected_owed(f, r, 1), engine_owed(f, 1));
    }
    assert_int_equal(projected_owed(f, r, 1), engine_owed(f, 1));

    /* Filters: a merchant, only what posted, a time range. */
    struct wx_history_item items[8];
    struct wx_history_totals all, shop0, posted, early;
    size_t got;
    struct wx_history_query q = {.account_id = 1, .from_ms = 0, .to_ms = INT64_MAX};
    assert_int_equal(wx_history_list(r, &q, items, 8, &all, &got, err, sizeof err), 0);
    assert_int_equal(got, 8);
    assert_int_equal(all.posted, engine_owed(f, 1));
    for (size_t i = 1; i < got; i++)
        assert_true(items[i].seq < items[i - 1].seq);
    q.merchant = "shop 0";
    assert_int_equal(wx_history_list(r, &q, items, 8, &shop0, &got, err, sizeof err), 0);
    assert_true(shop0.count > 0 && shop0.count < all.count);
    for (size_t i = 0; i < got; i++)
        assert_string_equal(items[i].merchant, "shop 0");
    q.merchant = NULL;
    q.posted_only = true;
    assert_int_equal(wx_history_list(r, &q, items, 8, &posted, &got, err, sizeof err), 0);
    assert_int_equal(posted.posted, all.posted);
    for (size_t i = 0; i < got; i++)
        assert_int_not_equal(items[i].posted, 0);
    q.posted_only = false;
    q.to_ms = 1790000000000LL + 100 * 60000LL; /* the first 100 commands' times */
    assert_int_equal(wx_history_list(r, &q, items, 8, &early, &got, err, sizeof err), 0);
    int64_t owed_then;
    assert_int_equal(wx_history_owed_before(r, 1, q.to_ms, &owed_then, err, sizeof err), 0);
    assert_int_equal(early.posted, owed_then);
    assert_true(early.count < all.count);
    wx_history_reader_close(r);
}

/* A projection of the first schema (no posted, no key) is dropped and built again. */
static void test_old_projection_rebuilt(void **state)
{
    struct fixture *f = *state;
    char err[256], path[160];
    snprintf(path, sizeof path, "%s.history", f->db);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE watermark(id INTEGER PRIMARY KEY, seq INTEGER);"
                                  "INSERT INTO watermark VALUES (1, 99);"
                                  "CREATE TABLE card_txn(seq INTEGER PRIMARY KEY, account_id, "
                                  "card_id, at_ms, kind, reason, channel, mcc, amount, "
                                  "available, merchant, city);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    FILE *pans = tmpfile();
    assert_int_equal(wx_issuing_seed(f->ledger, f->keys, 1, "622588", 16, pans, err, sizeof err),
                     0);
    fclose(pans);
    uint64_t upto = 0;
    assert_int_equal(wx_history_catch_up(f->db, &upto, err, sizeof err), 0);
    assert_true(upto > 0 && upto < 99); /* from the journal's start, not the old watermark */
    wx_history_reader_t *r = wx_history_reader_open(f->db, err, sizeof err);
    assert_non_null(r);
    int64_t owed;
    assert_int_equal(wx_history_owed_before(r, 1, INT64_MAX, &owed, err, sizeof err), 0);
    assert_int_equal(owed, 0);
    wx_history_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_card_refs_and_sealing),
        cmocka_unit_test_setup_teardown(test_recent_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_posted_matches_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_projection_rebuilt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
