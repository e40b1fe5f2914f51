/*
 * engine_cmds.h - command builders and state helpers shared by the engine's unit tests
 * (test_engine.c, test_engine_random.c).
 *
 * Include after <cmocka.h>. Everything is static inline so that a test file that uses only
 * some of the helpers still builds with -Werror.
 */
#ifndef WX_TESTS_ENGINE_CMDS_H
#define WX_TESTS_ENGINE_CMDS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"

#define T0_MS   1768435200000LL /* 2026-01-15 00:00:00 UTC */
#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL

#define TEST_EXPIRY 2912 /* YYMM of the test cards: far beyond the tests' dates */

/* The configuration's defaults (src/util/config_schema.c). */
static inline struct wx_engine_config test_engine_config(void)
{
    struct wx_engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.hold_days = 7;
    cfg.hold_days_long = 30;
    cfg.capture_tolerance_pct = 20;
    cfg.idempotency_hours = 72;
    cfg.reference_days = 45;
    for (int i = 0; i < 16; i++) {
        cfg.key_seed[i] = (uint8_t)(0xA0 + i);
    }
    return cfg;
}

/* SplitMix64: small, seedable, good enough to make card references and test data. */
static inline uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fills a 16-byte reference from a seed: distinct seeds give distinct, never-zero refs. */
static inline void ref_fill(uint8_t ref[WX_REF_LEN], uint64_t seed)
{
    uint64_t s = seed * 7919 + 17;
    uint64_t a = splitmix64(&s), b = splitmix64(&s);
    memcpy(ref, &a, 8);
    memcpy(ref + 8, &b, 8);
    ref[15] |= 1;
}

static inline uint64_t cvv_of(const uint8_t ref[WX_REF_LEN])
{
    uint64_t v;
    memcpy(&v, ref + 4, sizeof v);
    return v | 1; /* 0 means "no CVV2 presented" */
}

static inline void cmd_init(struct wx_cmd *c, uint8_t kind, const char *key, int64_t time_ms)
{
    memset(c, 0, sizeof *c);
    size_t n = strlen(key);
    assert_true(n <= WX_KEY_MAX);
    c->kind = kind;
    c->key_len = (uint8_t)n;
    memcpy(c->key, key, n);
    c->time_ms = time_ms;
}

static inline void cmd_customer(struct wx_cmd *c, const char *key, int64_t t, const char *name,
                                const char *mobile, uint64_t id_seed)
{
    cmd_init(c, WX_CMD_CUSTOMER_ADD, key, t);
    snprintf(c->customer.name, sizeof c->customer.name, "%s", name);
    snprintf(c->customer.mobile, sizeof c->customer.mobile, "%s", mobile);
    ref_fill(c->customer.id_hmac, id_seed + 1000000);
    memcpy(c->customer.id_last4, "123X", 5);
}

/* A card: account 0 opens an account with `limit`; otherwise a supplementary card. */
static inline void cmd_card(struct wx_cmd *c, const char *key, int64_t t, uint32_t customer,
                            uint32_t account, const uint8_t ref[WX_REF_LEN], int64_t limit)
{
    cmd_init(c, WX_CMD_CARD_ISSUE, key, t);
    c->card.customer_id = customer;
    c->card.account_id = account;
    memcpy(c->card.ref, ref, WX_REF_LEN);
    c->card.first6 = 622202;
    c->card.last4 = (uint16_t)(ref[0] * 39 % 10000);
    c->card.expiry = TEST_EXPIRY;
    c->card.cvv_tag = cvv_of(ref);
    c->card.credit_limit = account == 0 ? limit : 0;
    c->card.statement_day = account == 0 ? 5 : 0;
    c->card.pan_enc_len = 47;
    for (int i = 0; i < 47; i++) {
        c->card.pan_enc[i] = (uint8_t)(ref[i % 16] ^ i);
    }
}

/* Activation (kind WX_CMD_CARD_ACTIVATE) or a status change (WX_CMD_CARD_STATUS). */
static inline void cmd_status(struct wx_cmd *c, uint8_t kind, const char *key, int64_t t,
                              uint32_t card, uint8_t status)
{
    cmd_init(c, kind, key, t);
    c->card_status.card_id = card;
    c->card_status.status = status;
}

static inline void cmd_limit(struct wx_cmd *c, uint8_t kind, const char *key, int64_t t,
                             uint32_t account, int64_t amount, int64_t expires_ms)
{
    cmd_init(c, kind, key, t);
    c->limit.account_id = account;
    c->limit.amount = amount;
    c->limit.expires_ms = expires_ms;
}

static inline void merchant_fill(struct wx_merchant *m, uint16_t mcc)
{
    m->mcc = mcc;
    m->channel = WX_CHANNEL_POS;
    snprintf(m->country, sizeof m->country, "CHN");
    snprintf(m->name, sizeof m->name, "Test Shop %u", mcc);
    snprintf(m->city, sizeof m->city, "Shanghai");
    snprintf(m->terminal_id, sizeof m->terminal_id, "T0001");
    snprintf(m->merchant_id, sizeof m->merchant_id, "M000000001");
}

/* A purchase authorization presenting the card's expiry and CVV2 tag. */
static inline void cmd_auth(struct wx_cmd *c, const char *key, int64_t t,
                            const uint8_t ref[WX_REF_LEN], int64_t amount)
{
    cmd_init(c, WX_CMD_AUTHORIZE, key, t);
    memcpy(c->auth.ref, ref, WX_REF_LEN);
    c->auth.expiry = TEST_EXPIRY;
    c->auth.cvv_tag = cvv_of(ref);
    c->auth.type = WX_AUTH_PURCHASE;
    c->auth.amount = amount;
    c->auth.currency = WX_CURRENCY_CNY;
    merchant_fill(&c->auth.merchant, 5411);
}

/* Increment, capture, reversal or refund. orig and ref may be NULL. */
static inline void cmd_follow(struct wx_cmd *c, uint8_t kind, const char *key, int64_t t,
                              const char *orig, const uint8_t *ref, int64_t amount)
{
    cmd_init(c, kind, key, t);
    if (orig != NULL) {
        size_t n = strlen(orig);
        assert_true(n <= WX_KEY_MAX);
        c->follow.orig_len = (uint8_t)n;
        memcpy(c->follow.orig_key, orig, n);
    }
    if (ref != NULL) {
        memcpy(c->follow.ref, ref, WX_REF_LEN);
    }
    c->follow.amount = amount;
    c->follow.currency = WX_CURRENCY_CNY;
    merchant_fill(&c->follow.merchant, 5411);
}

/* Repayment, fee or interest. */
static inline void cmd_posting(struct wx_cmd *c, uint8_t kind, const char *key, int64_t t,
                               uint32_t account, int64_t amount)
{
    cmd_init(c, kind, key, t);
    c->posting.account_id = account;
    c->posting.amount = amount;
    c->posting.currency = WX_CURRENCY_CNY;
    c->posting.code = kind == WX_CMD_REPAYMENT ? 0 : 7;
}

/* A follower bind or unbind (kind WX_CMD_FOLLOWER_BIND / WX_CMD_FOLLOWER_UNBIND). */
static inline void cmd_follower(struct wx_cmd *c, uint8_t kind, const char *key, int64_t t,
                                const char *openid, uint32_t customer, uint8_t via)
{
    cmd_init(c, kind, key, t);
    assert_true(strlen(openid) <= WX_OPENID_MAX);
    snprintf(c->follower.openid, sizeof c->follower.openid, "%s", openid);
    c->follower.customer_id = customer;
    c->follower.via = via;
}

/* The whole engine state as bytes (a snapshot in memory). Free m->p. */
struct membuf {
    char *p;
    size_t n;
};

static inline void snap_mem(const wx_engine_t *e, struct membuf *m)
{
    FILE *f = open_memstream(&m->p, &m->n);
    assert_non_null(f);
    assert_int_equal(wx_engine_save(e, f), 0);
    assert_int_equal(fclose(f), 0);
}

static inline bool snap_same(const struct membuf *a, const struct membuf *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

/* A copy of e through a snapshot: the load path under test as well. */
static inline wx_engine_t *engine_clone(const wx_engine_t *e, const struct wx_engine_config *cfg)
{
    struct membuf m;
    snap_mem(e, &m);
    FILE *f = fmemopen(m.p, m.n, "rb");
    assert_non_null(f);
    wx_engine_t *copy = wx_engine_new(cfg);
    char err[256];
    int rc = wx_engine_load(copy, f, err, sizeof err);
    if (rc != 0) {
        fail_msg("snapshot load: %s", err);
    }
    fclose(f);
    free(m.p);
    return copy;
}

/* The fields of an answer a repeat must give back unchanged. */
static inline void assert_same_answer(const struct wx_result *got, const struct wx_result *first)
{
    assert_int_equal(got->reason, first->reason);
    assert_int_equal(got->approval, first->approval);
    assert_int_equal(got->id, first->id);
    assert_int_equal(got->account_id, first->account_id);
    assert_int_equal(got->amount, first->amount);
    assert_int_equal(got->available, first->available);
    assert_int_equal(got->seq, first->seq);
    assert_int_equal(got->journaled, first->journaled);
}

#endif
