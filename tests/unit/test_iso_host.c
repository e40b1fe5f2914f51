/*
 * test_iso_host.c - the issuer host's mapping (src/iso8583/host*.c) through the real engine:
 * every message kind and response code, repeats, duplicates, reversals (full, partial,
 * unknown original, repeated), the channel and currency rules, format errors, masking.
 *
 * Each request is packed and unpacked with the ascii87 codec first (so it is a message the
 * wire could carry), mapped, decided by an in-memory engine, answered, and the answer packed
 * and unpacked again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "unit/engine_cmds.h"

#include "iso8583/iso8583.h"
#include "keys/keys.h"

#define LIMIT      1000000 /* 10,000.00 CNY */
#define PAN_OK     "6225880000000018"
#define PAN_NOACT  "6225880000000026"
#define PAN_LOCKED "6225880000000034"
#define PAN_LOST   "6225880000000042"
#define PAN_STOLEN "6225880000000059"
#define PAN_CLOSED "6225880000000067"
#define PAN_EXPIRD "6225880000000075"
#define PAN_NONE   "6225889999999999"

static const uint8_t MASTER[32] = {7,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30};

struct fix {
    wx_keys_t *keys;
    wx_engine_t *e;
    struct wx_engine_config cfg;
    int64_t now;
    struct wx_cmd cmd; /* the last command mapped */
};

static struct fix *F;

static void must_apply(struct wx_cmd *c)
{
    struct wx_result res;
    struct wx_row row;
    wx_engine_apply(F->e, c, &res, &row);
    assert_int_equal(res.reason, WX_APPROVED);
}

/* Customer i with a main card (PAN, expiry) in status, 10,000.00 limit. */
static void add_card(uint32_t i, const char *pan, uint16_t expiry, uint8_t status)
{
    struct wx_cmd c;
    char key[32];
    uint8_t ref[WX_REF_LEN];
    snprintf(key, sizeof key, "c%u", i);
    cmd_customer(&c, key, T0_MS, "Holder", "13900000000", i);
    must_apply(&c);
    wx_card_ref(F->keys, pan, ref);
    snprintf(key, sizeof key, "k%u", i);
    cmd_card(&c, key, T0_MS, i, 0, ref, LIMIT);
    c.card.expiry = expiry;
    must_apply(&c);
    if (status == WX_CARD_NOT_ACTIVATED) return;
    snprintf(key, sizeof key, "a%u", i);
    cmd_status(&c, WX_CMD_CARD_ACTIVATE, key, T0_MS, i, 0);
    must_apply(&c);
    if (status == WX_CARD_ACTIVE) return;
    snprintf(key, sizeof key, "s%u", i);
    cmd_status(&c, WX_CMD_CARD_STATUS, key, T0_MS, i, status);
    must_apply(&c);
}

static int setup(void **state)
{
    (void)state;
    F = calloc(1, sizeof *F);
    F->keys = wx_keys_new(MASTER);
    F->cfg = test_engine_config();
    F->e = wx_engine_new(&F->cfg);
    F->now = T0_MS + HOUR_MS;
    add_card(1, PAN_OK, TEST_EXPIRY, WX_CARD_ACTIVE);
    add_card(2, PAN_NOACT, TEST_EXPIRY, WX_CARD_NOT_ACTIVATED);
    add_card(3, PAN_LOCKED, TEST_EXPIRY, WX_CARD_LOCKED);
    add_card(4, PAN_LOST, TEST_EXPIRY, WX_CARD_LOST);
    add_card(5, PAN_STOLEN, TEST_EXPIRY, WX_CARD_STOLEN);
    add_card(6, PAN_CLOSED, TEST_EXPIRY, WX_CARD_CLOSED);
    add_card(7, PAN_EXPIRD, 2512, WX_CARD_ACTIVE);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wx_engine_free(F->e);
    wx_keys_free(F->keys);
    free(F);
    return 0;
}

/* Sets a field from a C string, asserting it fits its spec. */
static void put(struct wx_iso_msg *m, int n, const char *v)
{
    if (wx_iso_set_str(m, n, v) != 0) {
        fail_msg("field %d does not take '%s'", n, v);
    }
}

/* A card request as a domestic POS terminal sends it. */
static void card_msg(struct wx_iso_msg *m, uint16_t mti, const char *pan, const char *proc,
                     int64_t amount, unsigned stan)
{
    char buf[48];
    wx_iso_init(m, mti);
    if (pan != NULL) put(m, 2, pan);
    put(m, 3, proc);
    snprintf(buf, sizeof buf, "%012lld", (long long)amount);
    put(m, 4, buf);
    put(m, 7, "0115093000");
    snprintf(buf, sizeof buf, "%06u", stan);
    put(m, 11, buf);
    put(m, 12, "173000");
    put(m, 13, "0115");
    put(m, 18, "5411");
    put(m, 19, "156");
    put(m, 22, "051");
    put(m, 25, "00");
    put(m, 32, "48020000");
    snprintf(buf, sizeof buf, "%012u", stan);
    put(m, 37, buf);
    put(m, 41, "TERM0001");
    put(m, 42, "MERCHANT0000001");
    snprintf(buf, sizeof buf, "%-23s%-13s%-2s%-2s", "HUALIAN SUPERMARKET", "SHANGHAI", "SH", "CN");
    put(m, 43, buf);
    put(m, 49, "156");
}

/* Field 90 naming an original: MTI, STAN, field 7, acquirer (11, zero-padded), forwarder. */
static void name_original(struct wx_iso_msg *m, const char *mti, unsigned stan)
{
    char f90[64];
    snprintf(f90, sizeof f90, "%s%06u%s%011u%011u", mti, stan, "0115093000", 48020000u, 0u);
    assert_int_equal(strlen(f90), 42);
    put(m, 90, f90);
}

/* Packs and unpacks m with ascii87, as the wire would carry it. */
static void wire(struct wx_iso_msg *m)
{
    uint8_t buf[WX_ISO_MSG_MAX];
    size_t len = 0;
    struct wx_iso_error err;
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, m, buf, sizeof buf, &len), 0);
    assert_int_equal(wx_iso_unpack(WX_ISO_ASCII87, buf, len, m, &err), 0);
}

/* One exchange: wire, map, decide, answer, wire. Returns the action; fills *res. */
static int exchange(struct wx_iso_msg *req, struct wx_iso_msg *resp, struct wx_result *res)
{
    struct wx_row row;
    memset(res, 0, sizeof *res);
    wire(req);
    int act = wx_iso_host_request(F->keys, req, F->now, &F->cmd, resp);
    if (act == WX_ISO_HOST_SUBMIT) {
        wx_engine_apply(F->e, &F->cmd, res, &row);
        wx_iso_host_answer(req, &F->cmd, res, resp);
    }
    if (act != WX_ISO_HOST_DROP) {
        wire(resp);
        assert_int_equal(resp->mti, req->mti - req->mti % 10 + 10);
    }
    F->now += 1000;
    return act;
}

static void assert_field(const struct wx_iso_msg *m, int n, const char *want)
{
    char got[256];
    assert_true(wx_iso_get_str(m, n, got, sizeof got));
    assert_string_equal(got, want);
}

/* Sends req and checks field 39. */
static void expect(struct wx_iso_msg *req, const char *code)
{
    struct wx_iso_msg resp;
    struct wx_result res;
    exchange(req, &resp, &res);
    assert_field(&resp, 39, code);
}

static int64_t available(void)
{
    struct wx_account_view a;
    assert_int_equal(wx_engine_account(F->e, 1, &a), 0);
    return a.available;
}

static void test_purchase_approved_echoes_and_holds(void **state)
{
    (void)state;
    struct wx_iso_msg req, resp;
    struct wx_result res;
    card_msg(&req, 100, PAN_OK, "000000", 12345, 1);
    assert_int_equal(exchange(&req, &resp, &res), WX_ISO_HOST_SUBMIT);
    assert_int_equal(resp.mti, 110);
    assert_field(&resp, 39, "00");
    char f38[16];
    assert_true(wx_iso_get_str(&resp, 38, f38, sizeof f38));
    assert_int_equal(strlen(f38), 6);
    assert_int_equal(strtol(f38, NULL, 10), (long)res.approval);
    assert_field(&resp, 11, "000001");
    assert_field(&resp, 37, "000000000001");
    assert_field(&resp, 41, "TERM0001");
    assert_field(&resp, 4, "000000012345");
    assert_false(wx_iso_has(&resp, 2)); /* the PAN is not echoed */
    assert_int_equal(available(), LIMIT - 12345);
    /* The command: purchase, not captured, POS, domestic, merchant from 43. */
    assert_int_equal(F->cmd.kind, WX_CMD_AUTHORIZE);
    assert_int_equal(F->cmd.auth.type, WX_AUTH_PURCHASE);
    assert_int_equal(F->cmd.auth.capture, 0);
    assert_int_equal(F->cmd.auth.merchant.channel, WX_CHANNEL_POS);
    assert_int_equal(F->cmd.auth.merchant.cross_border, 0);
    assert_int_equal(F->cmd.auth.merchant.mcc, 5411);
    assert_string_equal(F->cmd.auth.merchant.name, "HUALIAN SUPERMARKET");
    assert_string_equal(F->cmd.auth.merchant.city, "SHANGHAI");
    assert_string_equal(F->cmd.auth.merchant.country, "CN");
    assert_string_equal(F->cmd.auth.merchant.terminal_id, "TERM0001");
    assert_string_equal(F->cmd.auth.merchant.merchant_id, "MERCHANT0000001");
    assert_int_equal(F->cmd.key_len, strlen("0100:000001:0115093000:48020000:TERM0001"));
    assert_memory_equal(F->cmd.key, "0100:000001:0115093000:48020000:TERM0001", F->cmd.key_len);
}

static void test_decline_codes(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    card_msg(&req, 100, PAN_OK, "000000", LIMIT + 1, 10);
    expect(&req, "51");
    card_msg(&req, 100, PAN_NONE, "000000", 100, 11);
    expect(&req, "14");
    card_msg(&req, 100, PAN_NOACT, "000000", 100, 12);
    expect(&req, "62");
    card_msg(&req, 100, PAN_LOCKED, "000000", 100, 13);
    expect(&req, "57");
    card_msg(&req, 100, PAN_LOST, "000000", 100, 14);
    expect(&req, "41");
    card_msg(&req, 100, PAN_STOLEN, "000000", 100, 15);
    expect(&req, "43");
    card_msg(&req, 100, PAN_CLOSED, "000000", 100, 16);
    expect(&req, "62");
    card_msg(&req, 100, PAN_EXPIRD, "000000", 100, 17);
    expect(&req, "54");
    card_msg(&req, 100, PAN_OK, "000000", 100, 18);
    put(&req, 14, "3001"); /* not the card's expiry */
    expect(&req, "54");
    card_msg(&req, 100, PAN_OK, "000000", 0, 19);
    expect(&req, "13");
    card_msg(&req, 100, PAN_OK, "400000", 100, 20); /* transfer: not offered */
    expect(&req, "12");
    assert_int_equal(available(), LIMIT);
    /* Codes only the engine's table can produce here. */
    assert_string_equal(wx_iso_response_code(100, WX_R_WRONG_CVV), "05");
    assert_string_equal(wx_iso_response_code(100, WX_R_CAPACITY), "91");
    assert_string_equal(wx_iso_response_code(100, WX_R_BALANCE_OVERFLOW), "61");
    assert_string_equal(wx_iso_response_code(100, WX_R_INVALID_FIELD), "30");
    assert_string_equal(wx_iso_response_code(100, WX_R_INVALID_CURRENCY), "12");
    assert_string_equal(wx_iso_response_code(100, WX_R_CUSTOMER_EXISTS), "96");
    assert_string_equal(wx_iso_response_code(100, 200), "96");
    assert_string_equal(wx_iso_response_code(400, WX_R_ALREADY_REVERSED), "00");
    assert_string_equal(wx_iso_response_code(100, WX_R_ALREADY_REVERSED), "12");
}

static void test_repeat_gets_first_answer_and_duplicate_94(void **state)
{
    (void)state;
    struct wx_iso_msg req, r1, r2;
    struct wx_result res1, res2;
    card_msg(&req, 100, PAN_OK, "000000", 5000, 30);
    exchange(&req, &r1, &res1);
    assert_field(&r1, 39, "00");
    card_msg(&req, 101, PAN_OK, "000000", 5000, 30);
    exchange(&req, &r2, &res2);
    assert_true(res2.repeat);
    size_t l1, l2;
    const uint8_t *a = wx_iso_get(&r1, 38, &l1), *b = wx_iso_get(&r2, 38, &l2);
    assert_non_null(b);
    assert_int_equal(l1, l2);
    assert_memory_equal(a, b, l1);
    assert_field(&r2, 39, "00");
    assert_int_equal(available(), LIMIT - 5000); /* applied once */
    /* The same key without the repeat digit: a duplicate, whatever the content. */
    card_msg(&req, 100, PAN_OK, "000000", 5000, 30);
    expect(&req, "94");
    card_msg(&req, 100, PAN_OK, "000000", 7000, 30);
    expect(&req, "94");
    assert_false(wx_iso_has(&r2, 54));
    assert_int_equal(available(), LIMIT - 5000);
    /* A repeat of a decline is declined the same way. */
    card_msg(&req, 100, PAN_OK, "000000", LIMIT, 31);
    expect(&req, "51");
    card_msg(&req, 101, PAN_OK, "000000", LIMIT, 31);
    expect(&req, "51");
}

static void test_financial_advice_and_clearing(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    struct wx_account_view a;
    card_msg(&req, 200, PAN_OK, "000000", 2000, 40);
    expect(&req, "00");
    assert_true(F->cmd.auth.capture);
    assert_int_equal(wx_engine_account(F->e, 1, &a), 0);
    assert_int_equal(a.posted, 2000);
    /* 0220 naming an earlier 0100 is its clearing: the hold becomes a posting. */
    card_msg(&req, 100, PAN_OK, "000000", 3000, 42);
    expect(&req, "00");
    card_msg(&req, 220, PAN_OK, "000000", 2500, 43);
    name_original(&req, "0100", 42);
    expect(&req, "00");
    assert_int_equal(F->cmd.kind, WX_CMD_CAPTURE);
    assert_int_equal(wx_engine_account(F->e, 1, &a), 0);
    assert_int_equal(a.posted, 2000 + 2500);
    assert_int_equal(a.held, 0);
    /* An advice is applied even beyond the credit left. */
    card_msg(&req, 120, PAN_OK, "000000", LIMIT, 41);
    expect(&req, "00");
    assert_true(F->cmd.auth.advice);
    assert_int_equal(available(), -4500);
    card_msg(&req, 121, PAN_OK, "000000", LIMIT, 41);
    expect(&req, "00");
    assert_int_equal(available(), -4500);
    /* A 0220 with no original is a stand-in: authorize and capture, as an advice. */
    card_msg(&req, 220, PAN_OK, "000000", 100, 44);
    expect(&req, "00");
    assert_int_equal(F->cmd.kind, WX_CMD_AUTHORIZE);
    assert_true(F->cmd.auth.advice && F->cmd.auth.capture);
    /* A refund (processing code 20) credits the card. */
    card_msg(&req, 200, PAN_OK, "200000", 100, 45);
    expect(&req, "00");
    assert_int_equal(F->cmd.kind, WX_CMD_REFUND);
    /* A clearing far beyond its authorization (and the capture tolerance) still posts: it
     * was decided elsewhere. */
    card_msg(&req, 120, PAN_OK, "000000", 1000, 46); /* an advice: no credit is left */
    expect(&req, "00");
    int64_t posted_before = (wx_engine_account(F->e, 1, &a), a.posted);
    card_msg(&req, 220, PAN_OK, "000000", 5000, 47);
    name_original(&req, "0120", 46);
    expect(&req, "00");
    assert_true(F->cmd.follow.advice);
    assert_int_equal(wx_engine_account(F->e, 1, &a), 0);
    assert_int_equal(a.posted, posted_before + 5000);
    wx_engine_check(F->e);
    /* A clearing whose original is unknown here posts against the card it names; without a
     * card there is nothing to post to, and that is a format error, not a decline. */
    card_msg(&req, 220, PAN_OK, "000000", 700, 48);
    name_original(&req, "0100", 9999);
    expect(&req, "00");
    assert_int_equal(wx_engine_account(F->e, 1, &a), 0);
    assert_int_equal(a.posted, posted_before + 5700);
    card_msg(&req, 220, NULL, "000000", 700, 49);
    name_original(&req, "0100", 9998);
    expect(&req, "30");
}

static void test_reversal_full_repeated_and_partial(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    card_msg(&req, 100, PAN_OK, "000000", 10000, 50);
    expect(&req, "00");
    char orig_key[WX_KEY_MAX];
    memcpy(orig_key, F->cmd.key, F->cmd.key_len);
    uint8_t orig_len = F->cmd.key_len;
    card_msg(&req, 400, PAN_OK, "000000", 10000, 51);
    name_original(&req, "0100", 50);
    expect(&req, "00");
    /* The original's key is derived from field 90 exactly as from the original. */
    assert_int_equal(F->cmd.kind, WX_CMD_REVERSAL);
    assert_int_equal(F->cmd.follow.orig_len, orig_len);
    assert_memory_equal(F->cmd.follow.orig_key, orig_key, orig_len);
    assert_int_equal(available(), LIMIT);
    /* Repeated (0401), resent (0400 again) and a fresh reversal of it: 00, applied once. */
    card_msg(&req, 401, PAN_OK, "000000", 10000, 51);
    name_original(&req, "0100", 50);
    expect(&req, "00");
    card_msg(&req, 400, PAN_OK, "000000", 10000, 51);
    name_original(&req, "0100", 50);
    expect(&req, "00");
    card_msg(&req, 420, PAN_OK, "000000", 10000, 52);
    name_original(&req, "0100", 50);
    expect(&req, "00");
    assert_int_equal(available(), LIMIT);
    /* Partial: 100.00 authorized, 60.00 really spent (field 95): 40.00 given back. */
    card_msg(&req, 100, PAN_OK, "000000", 10000, 53);
    expect(&req, "00");
    card_msg(&req, 400, PAN_OK, "000000", 10000, 54);
    name_original(&req, "0100", 53);
    put(&req, 95, "000000006000000000006000C00000000C00000000");
    expect(&req, "00");
    assert_int_equal(F->cmd.follow.amount, 4000);
    assert_int_equal(available(), LIMIT - 6000);
    /* A replacement amount at or above the original is not a reversal amount. */
    card_msg(&req, 400, PAN_OK, "000000", 10000, 55);
    name_original(&req, "0100", 53);
    put(&req, 95, "000000010000000000010000C00000000C00000000");
    expect(&req, "13");
    /* A financial (posting) reversed. */
    card_msg(&req, 200, PAN_OK, "000000", 700, 56);
    expect(&req, "00");
    card_msg(&req, 420, PAN_OK, "000000", 700, 57);
    name_original(&req, "0200", 56);
    expect(&req, "00");
    assert_int_equal(available(), LIMIT - 6000);
}

static void test_reversal_unknown_original_then_late_original(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    card_msg(&req, 400, PAN_OK, "000000", 900, 61);
    name_original(&req, "0100", 60);
    expect(&req, "25");
    card_msg(&req, 401, PAN_OK, "000000", 900, 61);
    name_original(&req, "0100", 60);
    expect(&req, "25");
    /* The original arrives late: declined, nothing held. */
    card_msg(&req, 100, PAN_OK, "000000", 900, 60);
    expect(&req, "12");
    assert_int_equal(available(), LIMIT);
    /* Another reversal of it is acknowledged, and changes nothing. */
    card_msg(&req, 400, PAN_OK, "000000", 900, 62);
    name_original(&req, "0100", 60);
    expect(&req, "00");
    assert_int_equal(available(), LIMIT);
    /* A reversal without field 90 cannot be matched. */
    card_msg(&req, 400, PAN_OK, "000000", 900, 63);
    expect(&req, "30");
}

static void test_balance_inquiry(void **state)
{
    (void)state;
    struct wx_iso_msg req, resp;
    struct wx_result res;
    card_msg(&req, 100, PAN_OK, "000000", 1500, 70);
    expect(&req, "00");
    card_msg(&req, 100, PAN_OK, "313000", 0, 71);
    exchange(&req, &resp, &res);
    assert_field(&resp, 39, "00");
    assert_false(wx_iso_has(&resp, 38));
    char want[32];
    snprintf(want, sizeof want, "3002156C%012lld", (long long)(LIMIT - 1500));
    assert_field(&resp, 54, want);
    assert_int_equal(res.journaled, 0);
    card_msg(&req, 100, PAN_NONE, "310000", 0, 72);
    expect(&req, "14");
}

static void test_network_management(void **state)
{
    (void)state;
    static const char *const codes[] = {"001", "002", "301"};
    struct wx_iso_msg req, resp;
    struct wx_result res;
    for (int i = 0; i < 3; i++) {
        wx_iso_init(&req, 800);
        put(&req, 7, "0115093000");
        put(&req, 11, "000777");
        put(&req, 70, codes[i]);
        assert_int_equal(exchange(&req, &resp, &res), WX_ISO_HOST_ANSWERED);
        assert_int_equal(resp.mti, 810);
        assert_field(&resp, 39, "00");
        assert_field(&resp, 70, codes[i]);
        assert_field(&resp, 11, "000777");
    }
    put(&req, 70, "999");
    expect(&req, "12");
    wx_iso_unset(&req, 70);
    expect(&req, "30");
    /* Responses and unknown MTIs are not answered. */
    wx_iso_init(&req, 110);
    put(&req, 11, "000001");
    assert_int_equal(exchange(&req, &resp, &res), WX_ISO_HOST_DROP);
    wx_iso_init(&req, 600);
    put(&req, 11, "000001");
    assert_int_equal(exchange(&req, &resp, &res), WX_ISO_HOST_DROP);
}

static void test_channels_currency_track2(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    card_msg(&req, 100, PAN_OK, "000000", 100, 80);
    put(&req, 22, "012"); /* manual key entry: card not present */
    expect(&req, "00");
    assert_int_equal(F->cmd.auth.merchant.channel, WX_CHANNEL_CNP);
    card_msg(&req, 100, PAN_OK, "000000", 100, 81);
    put(&req, 25, "59"); /* e-commerce */
    expect(&req, "00");
    assert_int_equal(F->cmd.auth.merchant.channel, WX_CHANNEL_CNP);
    card_msg(&req, 100, PAN_OK, "010000", 100, 82);
    expect(&req, "00");
    assert_int_equal(F->cmd.auth.type, WX_AUTH_CASH);
    assert_int_equal(F->cmd.auth.merchant.channel, WX_CHANNEL_ATM);
    card_msg(&req, 100, PAN_OK, "000000", 100, 83);
    put(&req, 18, "6011");
    expect(&req, "00");
    assert_int_equal(F->cmd.auth.merchant.channel, WX_CHANNEL_ATM);
    /* Foreign currency: the CNY billing amount (6/51) is booked. */
    int64_t before = available();
    card_msg(&req, 100, PAN_OK, "000000", 1000, 84); /* 10.00 USD */
    put(&req, 49, "840");
    put(&req, 51, "156");
    put(&req, 6, "000000007100");
    put(&req, 19, "840");
    expect(&req, "00");
    assert_int_equal(F->cmd.auth.amount, 7100);
    assert_int_equal(F->cmd.auth.merchant.txn_amount, 1000);
    assert_int_equal(F->cmd.auth.merchant.txn_currency, 840);
    assert_int_equal(F->cmd.auth.merchant.cross_border, 1);
    assert_int_equal(available(), before - 7100);
    /* Its partial reversal: 4.00 of 10.00 USD spent, so 6/10 of the CNY comes back. */
    card_msg(&req, 400, PAN_OK, "000000", 1000, 85);
    put(&req, 49, "840");
    put(&req, 51, "156");
    put(&req, 6, "000000007100");
    name_original(&req, "0100", 84);
    put(&req, 95, "000000000400000000000400C00000000C00000000");
    expect(&req, "00");
    assert_int_equal(F->cmd.follow.amount, 4260);
    assert_int_equal(available(), before - 2840);
    /* No CNY billing amount: cannot be booked. */
    card_msg(&req, 100, PAN_OK, "000000", 1000, 86);
    put(&req, 49, "840");
    expect(&req, "12");
    /* Domestic currency, foreign acquirer: cross-border. */
    card_msg(&req, 100, PAN_OK, "000000", 100, 87);
    put(&req, 19, "344");
    expect(&req, "00");
    assert_int_equal(F->cmd.auth.merchant.cross_border, 1);
    /* Track 2 in place of 2 and 14. */
    card_msg(&req, 100, NULL, "000000", 100, 88);
    put(&req, 35, PAN_OK "=29121010000000000");
    expect(&req, "00");
    assert_int_equal(F->cmd.auth.expiry, 2912);
    card_msg(&req, 100, NULL, "000000", 100, 89);
    put(&req, 35, PAN_OK "=30121010000000000");
    expect(&req, "54");
}

static void test_format_errors(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    card_msg(&req, 100, PAN_OK, "000000", 100, 90);
    wx_iso_unset(&req, 4);
    expect(&req, "30");
    card_msg(&req, 100, NULL, "000000", 100, 91);
    expect(&req, "30");
    card_msg(&req, 100, PAN_OK, "000000", 100, 92);
    wx_iso_unset(&req, 7);
    expect(&req, "30");
    card_msg(&req, 100, "123456789012", "000000", 100, 93); /* 12 digits: too short */
    expect(&req, "30");
    card_msg(&req, 100, PAN_OK, "000000", 100, 94);
    put(&req, 14, "2913"); /* month 13 */
    expect(&req, "30");
    assert_int_equal(available(), LIMIT);

    /* A message that fails to decode after its MTI and STAN: answered 30. */
    uint8_t buf[WX_ISO_MSG_MAX];
    size_t len = 0;
    struct wx_iso_msg got, resp;
    struct wx_iso_error err;
    card_msg(&req, 100, PAN_OK, "000000", 100, 95);
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, &req, buf, sizeof buf, &len), 0);
    assert_int_not_equal(wx_iso_unpack(WX_ISO_ASCII87, buf, len - 5, &got, &err), 0);
    assert_int_equal(wx_iso_host_format_error(&got, &err, &resp), 0);
    assert_int_equal(resp.mti, 110);
    assert_field(&resp, 39, "30");
    assert_field(&resp, 11, "000095");
    /* Nothing readable: no answer. */
    assert_int_not_equal(wx_iso_unpack(WX_ISO_ASCII87, buf, 3, &got, &err), 0);
    assert_int_equal(wx_iso_host_format_error(&got, &err, &resp), -1);
}

/* A message that fails to decode, in a message buffer that held another message before:
 * only what was decoded before the failure may be echoed, never stale fields (which could
 * carry another cardholder's data, or break the answer). */
static void test_format_error_echoes_nothing_stale(void **state)
{
    (void)state;
    uint8_t buf[WX_ISO_MSG_MAX];
    size_t len = 0;
    struct wx_iso_msg req, scratch, resp;
    struct wx_iso_error err;
    /* The scratch message first holds a full request with a PAN and field 90. */
    card_msg(&req, 400, PAN_OK, "000000", 100, 60);
    name_original(&req, "0100", 59);
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, &req, buf, sizeof buf, &len), 0);
    assert_int_equal(wx_iso_unpack(WX_ISO_ASCII87, buf, len, &scratch, &err), 0);
    /* Then a 0100 naming fields 2..90 in its bitmap whose field 14 is cut short. */
    static const char bad[] = "0100"
                              "7224000000000040" /* fields 2, 3, 4, 7, 11, 14, 19?, 58? */
                              "16622588000000001200000000000001000115093000000061"
                              "29";
    int rc = wx_iso_unpack(WX_ISO_ASCII87, (const uint8_t *)bad, sizeof bad - 1, &scratch, &err);
    assert_int_not_equal(rc, 0);
    assert_true(err.mti_read);
    for (int n = err.field; n <= WX_ISO_FIELDS; n++) {
        assert_false(wx_iso_has(&scratch, n));
    }
    assert_false(wx_iso_has(&scratch, 90));
    if (wx_iso_host_format_error(&scratch, &err, &resp) == 0) {
        assert_field(&resp, 39, "30");
        assert_false(wx_iso_has(&resp, 90));
        assert_false(wx_iso_has(&resp, 2));
    }
}

/* A reversal request (0400) and the reversal advice an acquirer sends when that went
 * unanswered (0420) are one reversal: a partial one is applied once. */
static void test_partial_reversal_then_advice_applied_once(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    card_msg(&req, 100, PAN_OK, "000000", 10000, 70);
    expect(&req, "00");
    card_msg(&req, 400, PAN_OK, "000000", 10000, 71);
    name_original(&req, "0100", 70);
    put(&req, 95, "000000006000000000006000C00000000C00000000");
    expect(&req, "00");
    assert_int_equal(available(), LIMIT - 6000);
    card_msg(&req, 420, PAN_OK, "000000", 10000, 71);
    name_original(&req, "0100", 70);
    put(&req, 95, "000000006000000000006000C00000000C00000000");
    expect(&req, "00");
    assert_int_equal(available(), LIMIT - 6000);
}

/* Fields 32 (acquirer) and 41 (terminal) are optional in many domestic networks. */
static void test_without_acquirer_and_terminal(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    card_msg(&req, 100, PAN_OK, "000000", 500, 80);
    wx_iso_unset(&req, 32);
    wx_iso_unset(&req, 41);
    expect(&req, "00");
    card_msg(&req, 400, PAN_OK, "000000", 500, 81);
    wx_iso_unset(&req, 32);
    wx_iso_unset(&req, 41);
    char f90[64];
    snprintf(f90, sizeof f90, "0100%06u%s%011u%011u", 80u, "0115093000", 0u, 0u);
    put(&req, 90, f90);
    expect(&req, "00");
    assert_int_equal(available(), LIMIT);
}

static void test_pan_never_printed(void **state)
{
    (void)state;
    struct wx_iso_msg req, resp;
    struct wx_result res;
    card_msg(&req, 100, PAN_OK, "000000", 100, 96);
    put(&req, 35, PAN_OK "=29121010000000000");
    exchange(&req, &resp, &res);
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    wx_iso_print(&req, f);
    wx_iso_print(&resp, f);
    fclose(f);
    assert_null(strstr(text, PAN_OK));
    assert_non_null(strstr(text, "622588******0018"));
    free(text);
    assert_null(memmem(F->cmd.key, F->cmd.key_len, "0018", 4) == NULL ? NULL : "pan in key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_purchase_approved_echoes_and_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decline_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_gets_first_answer_and_duplicate_94, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_financial_advice_and_clearing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reversal_full_repeated_and_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reversal_unknown_original_then_late_original, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_balance_inquiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_network_management, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channels_currency_track2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pan_never_printed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_error_echoes_nothing_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_reversal_then_advice_applied_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_without_acquirer_and_terminal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
