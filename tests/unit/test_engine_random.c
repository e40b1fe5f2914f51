/*
 * test_engine_random.c - the card engine against a reference model, on 100,000 random
 * commands of every kind.
 *
 * A seeded PRNG (the seed is printed; WX_SEED=<n> replays one) sets up 200 customers and
 * their cards (main and supplementary, some never activated, some expiring during the run),
 * then sends a realistic mix: authorizations (purchase, cash, advice, authorize-and-capture,
 * balance inquiries, hotel/airline/car-rental MCCs), increments, captures (full, partial,
 * final, within and beyond the tolerance, force posts, after expiry), reversals (of holds and
 * postings, partial, before their original), refunds, repayments, fees, interest, limits,
 * status changes, new customers and cards, WeChat follower binds and unbinds (taken
 * OpenIDs, full customers, bound pairs again, wrong customers), ticks, exact repeats of old
 * keys, old keys with other content, and invalid commands; time advances irregularly and
 * some commands arrive late.
 *
 * The model below is written from the engine's contract, not from its code: per account the
 * limit, temporary limit, posted and held; per key the first answer and what it holds or
 * posted; the two retention queues and the hold expiries; per OpenID its customer.
 * Customers, cards and activations are not remembered by key: they are idempotent on the ID
 * document, the card number and the card's own state (follower binds are both). Before each command
 * the model predicts the whole answer (journaled or not, reason, ids, amount, available); the
 * engine must give exactly that. On top of that it asserts: repeats return the first answer (an
 * activation's, the card and the last seq), refusals change nothing (last seq always, the full
 * snapshot on every 50th; activation repeats the full snapshot always), no hold is captured beyond
 * total * (1 + tolerance), available = limit + temp - posted - held for every touched account, and
 * wx_engine_check every 1000 commands. At the end the journal is replayed into a fresh engine, and
 * a midpoint snapshot plus the rest of the journal is replayed into another: both must equal the
 * live engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <time.h>

#include "core/codec.h"
#include "core/engine.h"
#include "engine_cmds.h"
#include "util/limits.h"
#include "util/timeutil.h"

#define N_COMMANDS       100000
#define N_SETUP          200 /* customers, and as many cards */
#define MAX_KEYS         (N_COMMANDS + 20000)
#define RESERVED_KEYS    5000 /* the top key numbers: originals that never come */
#define MAX_CARDS        4096
#define RING             256  /* recent holds, postings and commands to refer back to */
#define CHECK_EVERY      1000 /* wx_engine_check and a full model comparison */
#define SNAPSHOT_EVERY   50   /* full before/after snapshot on every n-th refusal */
#define UNKNOWN_REF_SEED 900000000u
#define N_OPENIDS        300 /* WeChat followers the run binds and unbinds */
#define FOLLOWED         40  /* customers they bind to: few, so that the limit is reached */

/* ---- the model ---- */

enum m_kind { M_FREE, M_ANSWER, M_HOLD, M_POSTING, M_TOMB };

struct m_card {
    uint8_t ref[WX_REF_LEN];
    uint32_t account;
    uint8_t status;
    uint16_t expiry;
    uint64_t cvv;
    struct wx_cmd issue; /* the issuing command, to send again */
};

struct m_account {
    int64_t limit, temp, temp_exp, posted, held;
};

struct m_customer {
    struct wx_cmd add; /* the command that added the customer, to send again */
};

/* What the engine must remember under one key. */
struct m_rec {
    uint8_t kind;     /* enum m_kind */
    uint8_t cmd_kind; /* kind of the command that made it */
    bool closed, reversed, expired;
    uint64_t body;            /* hash of the command's content */
    int64_t at_ms;            /* retention counts from here */
    struct wx_result first;   /* the first answer */
    uint32_t account, card;   /* as the engine remembers them */
    int64_t total, open;      /* hold: authorized - reversed; posting: posted, reversible */
    int64_t settled, expires; /* hold only */
};

/* A WeChat follower: bound to a customer or not. */
struct m_follower {
    uint32_t customer; /* 0 when not bound */
    int64_t bound_at;
    uint8_t via;
    uint64_t order; /* binding order: a customer's followers are listed by it */
};

struct m_expiry {
    int64_t at;
    uint32_t key;
    uint64_t seq;
};

struct model {
    int64_t now;
    struct m_card cards[MAX_CARDS + 1]; /* 1-based, like the engine's ids */
    uint32_t n_cards;
    struct m_account accounts[MAX_CARDS + 1];
    uint32_t n_accounts;
    struct m_customer customers[MAX_CARDS + 1];
    uint32_t n_customers;
    struct m_rec recs[MAX_KEYS]; /* by key number: key "k<n>" */
    uint32_t short_q[MAX_KEYS], long_q[MAX_KEYS];
    size_t short_head, short_tail, long_head, long_tail;
    struct m_expiry exp[MAX_KEYS];
    size_t n_exp;
    struct m_follower followers[N_OPENIDS]; /* by OpenID number: see openid_of */
    uint64_t bind_order;
};

/* The answer the model expects. */
struct want {
    int rc;
    struct wx_result res;
};

/* One journaled row, kept for the replays. */
struct kept_row {
    uint64_t seq;
    size_t off, len;
};

struct ctx {
    struct wx_engine_config cfg;
    wx_engine_t *e;
    struct model *m;
    uint64_t seed, rng;
    int64_t clock;     /* the sources' clock: commands carry it, some late */
    uint32_t next_key; /* next fresh key number */
    long step;
    /* Rings of recent key numbers and commands, to refer back to. */
    uint32_t holds[RING], postings[RING];
    unsigned n_holds, n_postings;
    struct wx_cmd recent[RING];
    unsigned n_recent;
    /* Originals whose reversal was sent first. */
    struct wx_cmd pending[64];
    unsigned n_pending;
    /* The journal. */
    uint8_t *bytes;
    size_t n_bytes, cap_bytes;
    struct kept_row *rows;
    size_t n_rows, cap_rows;
    /* Midpoint snapshot. */
    struct membuf mid;
    uint64_t mid_seq;
    /* Counters for the report. */
    unsigned long n_refused, n_repeats, n_journaled, by_reason[WX_R_COUNT];
    unsigned long n_activation_repeats, n_activation_refused;
    unsigned long n_follower_repeats, n_binds, n_unbinds;
};

static uint64_t rnd(struct ctx *x)
{
    return splitmix64(&x->rng);
}

static uint64_t below(struct ctx *x, uint64_t n)
{
    return rnd(x) % n;
}

static bool chance(struct ctx *x, unsigned per_mille)
{
    return below(x, 1000) < per_mille;
}

/* A money amount between 1 and 20,000 yuan, spread over the decades. */
static int64_t some_amount(struct ctx *x)
{
    static const int64_t decades[] = {100, 1000, 10000, 100000, 1000000};
    int64_t d = decades[below(x, 5)];
    return d + (int64_t)below(x, (uint64_t)d * 2);
}

static uint32_t key_number(const char *key, size_t len)
{
    if (len < 2 || key[0] != 'k') {
        return UINT32_MAX;
    }
    uint32_t n = 0;
    for (size_t i = 1; i < len; i++) {
        assert_true(key[i] >= '0' && key[i] <= '9');
        n = n * 10 + (uint32_t)(key[i] - '0');
    }
    assert_true(n < MAX_KEYS);
    return n;
}

static struct m_rec *rec_of(struct model *m, const char *key, size_t len)
{
    uint32_t n = key_number(key, len);
    return n == UINT32_MAX ? NULL : &m->recs[n];
}

/* A command's content, as the engine compares it: its body bytes. */
static uint64_t body_hash(const struct wx_cmd *c)
{
    uint8_t buf[WX_ROW_MAX];
    size_t off, len;
    size_t n = wx_cmd_encode_head(c, buf, sizeof buf, &off, &len);
    assert_true(n > 0);
    uint64_t h = 1469598103934665603ull ^ c->kind;
    for (size_t i = off; i < off + len; i++) {
        h = (h ^ buf[i]) * 1099511628211ull;
    }
    return h;
}

static int64_t m_available(const struct model *m, uint32_t account, int64_t now)
{
    const struct m_account *a = &m->accounts[account];
    return a->limit + (now < a->temp_exp ? a->temp : 0) - a->posted - a->held;
}

static const struct m_card *m_card_by_ref(const struct model *m, const uint8_t ref[WX_REF_LEN],
                                          uint32_t *id)
{
    for (uint32_t i = 1; i <= m->n_cards; i++) {
        if (memcmp(m->cards[i].ref, ref, WX_REF_LEN) == 0) {
            *id = i;
            return &m->cards[i];
        }
    }
    return NULL;
}

static bool long_mcc(uint16_t mcc)
{
    return (mcc >= 3000 && mcc <= 3999) || mcc == 4511 || mcc == 7011 || mcc == 7512;
}

/* The decision in progress: the prediction, and (in the apply pass) the engine's answer. */
struct dec {
    struct ctx *x;
    const struct wx_cmd *c;
    int64_t now;                 /* engine time including this command */
    const struct wx_result *got; /* NULL while predicting */
    struct want *w;
};

static void refuse(struct dec *d, uint8_t reason)
{
    memset(&d->w->res, 0, sizeof d->w->res);
    d->w->rc = 0;
    d->w->res.reason = reason;
}

/* A journaled answer on an account. */
static void journal(struct dec *d, uint8_t reason, uint32_t card, uint32_t account, int64_t amount)
{
    d->w->rc = 1;
    d->w->res.reason = reason;
    d->w->res.id = card;
    d->w->res.account_id = account;
    d->w->res.amount = amount;
    d->w->res.available = account ? m_available(d->x->m, account, d->now) : 0;
}

/* Remembers the journaled answer under the command's key (apply pass only). */
static struct m_rec *remember(struct dec *d, uint8_t kind, uint32_t card)
{
    struct model *m = d->x->m;
    struct m_rec *r = rec_of(m, d->c->key, d->c->key_len);
    uint32_t n = key_number(d->c->key, d->c->key_len);
    if (r->kind == M_TOMB) {
        assert_int_equal(kind, M_ANSWER); /* the late original takes the tombstone's place */
    } else {
        assert_int_equal(r->kind, M_FREE);
        memset(r, 0, sizeof *r);
        r->at_ms = d->now;
        if (kind == M_ANSWER) {
            m->short_q[m->short_tail++] = n;
        } else {
            m->long_q[m->long_tail++] = n;
        }
    }
    r->kind = kind;
    r->closed = r->reversed = r->expired = false;
    r->cmd_kind = d->c->kind;
    r->body = body_hash(d->c);
    r->first = *d->got;
    r->account = d->got->account_id;
    r->card = card;
    return r;
}

static void hold_release(struct model *m, struct m_rec *h, int64_t amount)
{
    assert_true(amount >= 0 && amount <= h->open);
    m->accounts[h->account].held -= amount;
    h->open -= amount;
    if (h->open == 0) {
        h->closed = true;
    }
}

/* ---- the model's decisions, per kind ---- */

static void d_customer(struct dec *d)
{
    struct model *m = d->x->m;
    const struct wx_cmd *c = d->c;
    for (uint32_t i = 1; i <= m->n_customers; i++) {
        const struct wx_cmd *a = &m->customers[i].add;
        if (memcmp(a->customer.id_hmac, c->customer.id_hmac, WX_REF_LEN) != 0) {
            continue;
        }
        if (strcmp(a->customer.name, c->customer.name) != 0 ||
            strcmp(a->customer.mobile, c->customer.mobile) != 0) {
            refuse(d, WX_R_CUSTOMER_EXISTS);
            return;
        }
        refuse(d, WX_APPROVED);
        d->w->res.repeat = 1;
        d->w->res.id = i;
        d->w->res.seq = wx_engine_last_seq(d->x->e);
        return;
    }
    d->w->rc = 1;
    d->w->res.id = m->n_customers + 1;
    if (d->got != NULL) {
        m->customers[++m->n_customers].add = *c;
    }
}

static void d_card_issue(struct dec *d)
{
    struct model *m = d->x->m;
    const struct wx_cmd *c = d->c;
    if (c->card.customer_id < 1 || c->card.customer_id > m->n_customers) {
        refuse(d, WX_R_CUSTOMER_NOT_FOUND);
        return;
    }
    if (c->card.account_id > m->n_accounts) {
        refuse(d, WX_R_ACCOUNT_NOT_FOUND);
        return;
    }
    uint32_t id;
    const struct m_card *k = m_card_by_ref(m, c->card.ref, &id);
    if (k != NULL) {
        const struct wx_cmd *i = &k->issue;
        bool same = i->card.customer_id == c->card.customer_id &&
                    i->card.account_id == c->card.account_id && i->card.expiry == c->card.expiry &&
                    i->card.cvv_tag == c->card.cvv_tag;
        if (!same) {
            refuse(d, WX_R_DUPLICATE_MISMATCH);
            return;
        }
        refuse(d, WX_APPROVED);
        d->w->res.repeat = 1;
        d->w->res.id = id;
        d->w->res.account_id = k->account;
        d->w->res.seq = wx_engine_last_seq(d->x->e);
        return;
    }
    uint32_t account = c->card.account_id ? c->card.account_id : m->n_accounts + 1;
    d->w->rc = 1;
    d->w->res.id = m->n_cards + 1;
    d->w->res.account_id = account;
    d->w->res.available =
        c->card.account_id ? m_available(m, account, d->now) : c->card.credit_limit;
    if (d->got != NULL) {
        if (c->card.account_id == 0) {
            m->n_accounts++;
            memset(&m->accounts[account], 0, sizeof m->accounts[account]);
            m->accounts[account].limit = c->card.credit_limit;
        }
        struct m_card *n = &m->cards[++m->n_cards];
        memcpy(n->ref, c->card.ref, WX_REF_LEN);
        n->account = account;
        n->status = WX_CARD_NOT_ACTIVATED;
        n->expiry = c->card.expiry;
        n->cvv = c->card.cvv_tag;
        n->issue = *c;
    }
}

static bool status_allowed(uint8_t from, uint8_t to)
{
    switch (to) {
    case WX_CARD_LOCKED:
        return from == WX_CARD_ACTIVE;
    case WX_CARD_ACTIVE:
        return from == WX_CARD_LOCKED;
    case WX_CARD_LOST:
    case WX_CARD_STOLEN:
        return from <= WX_CARD_LOCKED;
    case WX_CARD_CLOSED:
        return from != WX_CARD_CLOSED;
    default:
        return false;
    }
}

static void d_card_status(struct dec *d)
{
    struct model *m = d->x->m;
    uint32_t id = d->c->card_status.card_id;
    if (id < 1 || id > m->n_cards) {
        refuse(d, WX_R_CARD_NOT_FOUND);
        return;
    }
    struct m_card *k = &m->cards[id];
    bool activate = d->c->kind == WX_CMD_CARD_ACTIVATE;
    if (activate && k->status == WX_CARD_ACTIVE) {
        /* Activating an active card: a repeat, whatever the key; nothing changes. */
        refuse(d, WX_APPROVED);
        d->w->res.repeat = 1;
        d->w->res.id = id;
        d->w->res.account_id = k->account;
        d->w->res.seq = wx_engine_last_seq(d->x->e);
        return;
    }
    uint8_t to = activate ? WX_CARD_ACTIVE : d->c->card_status.status;
    bool ok = activate ? k->status == WX_CARD_NOT_ACTIVATED : status_allowed(k->status, to);
    if (!ok) {
        refuse(d, WX_R_INVALID_STATUS);
        return;
    }
    journal(d, WX_APPROVED, id, k->account, 0);
    d->w->res.available = 0; /* status answers carry no balance */
    if (d->got != NULL) {
        k->status = to;
        if (!activate) {
            remember(d, M_ANSWER, 0);
        }
    }
}

static void d_limit(struct dec *d)
{
    struct model *m = d->x->m;
    const struct wx_cmd *c = d->c;
    uint32_t id = c->limit.account_id;
    if (id < 1 || id > m->n_accounts) {
        refuse(d, WX_R_ACCOUNT_NOT_FOUND);
        return;
    }
    if (c->limit.amount < 0 || c->limit.amount > WX_LIMIT_MAX) {
        refuse(d, WX_R_INVALID_AMOUNT);
        return;
    }
    bool temp = c->kind == WX_CMD_TEMP_LIMIT_SET;
    if (temp && c->limit.amount > 0 && c->limit.expires_ms <= c->time_ms) {
        refuse(d, WX_R_INVALID_FIELD);
        return;
    }
    struct m_account saved = m->accounts[id];
    struct m_account *a = &m->accounts[id];
    if (temp) {
        a->temp = c->limit.amount;
        a->temp_exp = c->limit.amount > 0 ? c->limit.expires_ms : 0;
    } else {
        a->limit = c->limit.amount;
    }
    journal(d, WX_APPROVED, 0, id, c->limit.amount);
    if (d->got == NULL) {
        *a = saved;
    } else {
        remember(d, M_ANSWER, 0);
    }
}

/* The authorization stages: status, presented expiry and CVV2, card expiry, credit. */
static uint8_t auth_stages(struct dec *d, const struct m_card *k, int64_t amount, bool full)
{
    static const uint8_t by_status[] = {WX_R_CARD_NOT_ACTIVATED, WX_APPROVED,
                                        WX_R_CARD_LOCKED,        WX_R_CARD_LOST,
                                        WX_R_CARD_STOLEN,        WX_R_CARD_CLOSED};
    if (by_status[k->status] != WX_APPROVED) {
        return by_status[k->status];
    }
    if (full) {
        const struct wx_cmd *c = d->c;
        if (c->auth.expiry != 0 && c->auth.expiry != k->expiry) {
            return WX_R_WRONG_EXPIRY;
        }
        if (c->auth.cvv_tag != 0 && c->auth.cvv_tag != k->cvv) {
            return WX_R_WRONG_CVV;
        }
        if (wx_yymm_of_ms(c->time_ms) > k->expiry) {
            return WX_R_CARD_EXPIRED;
        }
    }
    return amount <= m_available(d->x->m, k->account, d->now) ? WX_APPROVED
                                                              : WX_R_INSUFFICIENT_CREDIT;
}

static void push_ring(uint32_t *ring, unsigned *n, uint32_t key)
{
    ring[(*n)++ % RING] = key;
}

static void d_authorize(struct dec *d, struct m_rec *tomb)
{
    struct model *m = d->x->m;
    const struct wx_cmd *c = d->c;
    bool inquiry = c->auth.type == WX_AUTH_BALANCE_INQUIRY;
    int64_t amount = c->auth.amount;
    if (c->auth.type > WX_AUTH_BALANCE_INQUIRY || c->auth.capture > 1 || c->auth.advice > 1) {
        refuse(d, WX_R_INVALID_FIELD);
        return;
    }
    if (inquiry ? amount != 0 : (amount <= 0 || amount > WX_AMOUNT_MAX)) {
        refuse(d, WX_R_INVALID_AMOUNT);
        return;
    }
    if (c->auth.currency != WX_CURRENCY_CNY) {
        refuse(d, WX_R_INVALID_CURRENCY);
        return;
    }
    uint32_t id;
    const struct m_card *k = m_card_by_ref(m, c->auth.ref, &id);
    if (k == NULL) {
        refuse(d, WX_R_CARD_NOT_FOUND);
        return;
    }
    if (tomb != NULL) {
        journal(d, WX_R_ALREADY_REVERSED, id, k->account, 0);
        if (d->got != NULL) {
            remember(d, M_ANSWER, 0);
        }
        return;
    }
    uint8_t reason = c->auth.advice ? WX_APPROVED : auth_stages(d, k, amount, true);
    if (inquiry) {
        journal(d, reason, id, k->account, 0);
        d->w->rc = 0;
        return;
    }
    struct m_account *a = &m->accounts[k->account];
    struct m_account saved = *a;
    if (reason == WX_APPROVED) {
        *(c->auth.capture ? &a->posted : &a->held) += amount;
    }
    journal(d, reason, id, k->account, amount);
    if (d->got == NULL) {
        *a = saved;
        return;
    }
    if (reason != WX_APPROVED) {
        remember(d, M_ANSWER, 0);
        return;
    }
    struct m_rec *r = remember(d, c->auth.capture ? M_POSTING : M_HOLD, id);
    r->total = r->open = amount;
    uint32_t n = key_number(c->key, c->key_len);
    if (c->auth.capture) {
        push_ring(d->x->postings, &d->x->n_postings, n);
        return;
    }
    int days = long_mcc(c->auth.merchant.mcc) ? d->x->cfg.hold_days_long : d->x->cfg.hold_days;
    r->expires = d->now + days * DAY_MS;
    m->exp[m->n_exp++] = (struct m_expiry){.at = r->expires, .key = n, .seq = d->got->seq};
    push_ring(d->x->holds, &d->x->n_holds, n);
}

/* The checks every follow-up starts with; true when the command is refused. */
static bool follow_refused(struct dec *d, bool amount_may_be_zero)
{
    const struct wx_cmd *c = d->c;
    bool self =
        c->follow.orig_len == c->key_len && memcmp(c->follow.orig_key, c->key, c->key_len) == 0;
    if (c->follow.orig_len > WX_KEY_MAX || c->follow.final > 1 || self) {
        refuse(d, WX_R_INVALID_FIELD);
        return true;
    }
    int64_t amount = c->follow.amount;
    if (!(amount_may_be_zero && amount == 0) && (amount <= 0 || amount > WX_AMOUNT_MAX)) {
        refuse(d, WX_R_INVALID_AMOUNT);
        return true;
    }
    if (c->follow.currency != WX_CURRENCY_CNY) {
        refuse(d, WX_R_INVALID_CURRENCY);
        return true;
    }
    return false;
}

static struct m_rec *m_original(struct dec *d)
{
    if (d->c->follow.orig_len == 0) {
        return NULL;
    }
    struct m_rec *r = rec_of(d->x->m, d->c->follow.orig_key, d->c->follow.orig_len);
    return r != NULL && r->kind != M_FREE ? r : NULL;
}

/* A follow-up on a known original that cannot be acted on. */
static void decline_on(struct dec *d, const struct m_rec *orig, uint8_t reason)
{
    if (orig->account == 0) {
        refuse(d, reason);
        return;
    }
    journal(d, reason, orig->card, orig->account, d->c->follow.amount);
    if (d->got != NULL) {
        remember(d, M_ANSWER, 0);
    }
}

static void d_increment(struct dec *d)
{
    if (follow_refused(d, false)) {
        return;
    }
    struct m_rec *h = m_original(d);
    int64_t amount = d->c->follow.amount;
    if (h == NULL) {
        refuse(d, WX_R_ORIGINAL_NOT_FOUND);
    } else if (h->kind != M_HOLD) {
        decline_on(d, h, WX_R_ORIGINAL_NOT_FOUND);
    } else if (h->closed) {
        decline_on(d, h, WX_R_HOLD_CLOSED);
    } else {
        struct m_account *a = &d->x->m->accounts[h->account];
        uint8_t reason = auth_stages(d, &d->x->m->cards[h->card], amount, false);
        struct m_account saved = *a;
        if (reason == WX_APPROVED) {
            a->held += amount;
        }
        journal(d, reason, h->card, h->account, amount);
        if (d->got == NULL) {
            *a = saved;
            return;
        }
        remember(d, M_ANSWER, 0);
        if (reason == WX_APPROVED) {
            h->total += amount;
            h->open += amount;
        }
    }
}

/* Posts a capture or force post and remembers it as a posting. */
static void post(struct dec *d, uint32_t card, uint32_t account, int64_t amount)
{
    struct m_account *a = &d->x->m->accounts[account];
    a->posted += amount;
    journal(d, WX_APPROVED, card, account, amount);
    if (d->got == NULL) {
        a->posted -= amount;
        return;
    }
    struct m_rec *r = remember(d, M_POSTING, card);
    r->total = r->open = amount;
    push_ring(d->x->postings, &d->x->n_postings, key_number(d->c->key, d->c->key_len));
}

static void capture_hold(struct dec *d, struct m_rec *h)
{
    struct ctx *x = d->x;
    int64_t amount = d->c->follow.amount;
    if (h->expired) {
        post(d, h->card, h->account, amount); /* clearing after the hold lapsed */
        return;
    }
    if (h->closed) {
        decline_on(d, h, h->reversed ? WX_R_ALREADY_REVERSED : WX_R_HOLD_CLOSED);
        return;
    }
    int64_t ceiling = h->total + h->total * x->cfg.capture_tolerance_pct / 100;
    if (amount > ceiling - h->settled) {
        decline_on(d, h, WX_R_EXCEEDS_ORIGINAL);
        return;
    }
    int64_t release = amount < h->open && !d->c->follow.final ? amount : h->open;
    struct m_account *a = &x->m->accounts[h->account];
    a->held -= release;
    post(d, h->card, h->account, amount);
    if (d->got == NULL) {
        a->held += release;
        return;
    }
    a->held += release; /* hold_release takes it off again, with the hold's own counters */
    hold_release(x->m, h, release);
    h->settled += amount;
    /* The property the tolerance exists for. */
    assert_true(h->settled <= h->total + h->total * x->cfg.capture_tolerance_pct / 100);
}

static void d_capture(struct dec *d)
{
    if (follow_refused(d, false)) {
        return;
    }
    struct m_rec *orig = m_original(d);
    if (orig != NULL && orig->kind == M_HOLD) {
        capture_hold(d, orig);
        return;
    }
    if (orig != NULL) {
        bool reversed = orig->kind == M_TOMB || (orig->cmd_kind == WX_CMD_AUTHORIZE &&
                                                 orig->first.reason == WX_R_ALREADY_REVERSED);
        decline_on(d, orig, reversed ? WX_R_ALREADY_REVERSED : WX_R_HOLD_CLOSED);
        return;
    }
    uint32_t id;
    const struct m_card *k = m_card_by_ref(d->x->m, d->c->follow.ref, &id);
    if (k == NULL) {
        refuse(d, d->c->follow.orig_len ? WX_R_ORIGINAL_NOT_FOUND : WX_R_CARD_NOT_FOUND);
        return;
    }
    post(d, id, k->account, d->c->follow.amount);
}

static void reverse(struct dec *d, struct m_rec *o)
{
    struct model *m = d->x->m;
    bool hold = o->kind == M_HOLD;
    if (hold && o->closed) {
        decline_on(d, o, o->reversed ? WX_R_ALREADY_REVERSED : WX_R_HOLD_CLOSED);
        return;
    }
    if (!hold && o->open == 0) {
        decline_on(d, o, WX_R_ALREADY_REVERSED);
        return;
    }
    int64_t amount = d->c->follow.amount ? d->c->follow.amount : o->open;
    if (amount > o->open) {
        decline_on(d, o, WX_R_EXCEEDS_ORIGINAL);
        return;
    }
    struct m_account *a = &m->accounts[o->account];
    struct m_account saved = *a;
    *(hold ? &a->held : &a->posted) -= amount;
    journal(d, WX_APPROVED, o->card, o->account, amount);
    *a = saved;
    if (d->got == NULL) {
        return;
    }
    remember(d, M_ANSWER, 0);
    if (hold) {
        bool whole = amount == o->open && o->settled == 0;
        hold_release(m, o, amount);
        o->total -= amount; /* what was given back is no longer authorized */
        o->reversed = whole;
    } else {
        a->posted -= amount;
        o->open -= amount;
    }
}

static void d_reversal(struct dec *d)
{
    if (follow_refused(d, true)) {
        return;
    }
    if (d->c->follow.orig_len == 0) {
        refuse(d, WX_R_INVALID_FIELD);
        return;
    }
    struct m_rec *o = m_original(d);
    if (o == NULL) {
        journal(d, WX_R_ORIGINAL_NOT_FOUND, 0, 0, 0);
        if (d->got != NULL) {
            struct model *m = d->x->m;
            uint32_t n = key_number(d->c->follow.orig_key, d->c->follow.orig_len);
            struct m_rec *t = &m->recs[n % MAX_KEYS]; /* key_number checked the range */
            memset(t, 0, sizeof *t);
            t->kind = M_TOMB;
            t->at_ms = d->now;
            m->long_q[m->long_tail++] = n;
            remember(d, M_ANSWER, 0);
        }
        return;
    }
    if (o->kind == M_HOLD || o->kind == M_POSTING) {
        reverse(d, o);
    } else if (o->kind == M_TOMB) {
        refuse(d, WX_R_ALREADY_REVERSED);
    } else {
        decline_on(d, o, o->first.reason == WX_APPROVED ? WX_R_HOLD_CLOSED : WX_R_ALREADY_REVERSED);
    }
}

static void d_refund(struct dec *d)
{
    if (follow_refused(d, false)) {
        return;
    }
    struct model *m = d->x->m;
    int64_t amount = d->c->follow.amount;
    struct m_rec *o = m_original(d);
    uint32_t card, account;
    if (o != NULL && o->kind == M_POSTING) {
        if (amount > o->open) {
            decline_on(d, o, WX_R_EXCEEDS_ORIGINAL);
            return;
        }
        card = o->card;
        account = o->account;
    } else {
        const struct m_card *k = m_card_by_ref(m, d->c->follow.ref, &card);
        if (k == NULL) {
            refuse(d, WX_R_CARD_NOT_FOUND);
            return;
        }
        account = k->account;
        o = NULL;
    }
    m->accounts[account].posted -= amount;
    journal(d, WX_APPROVED, card, account, amount);
    if (d->got == NULL) {
        m->accounts[account].posted += amount;
        return;
    }
    remember(d, M_ANSWER, 0);
    if (o != NULL) {
        o->open -= amount;
    }
}

static void d_posting(struct dec *d)
{
    struct model *m = d->x->m;
    const struct wx_cmd *c = d->c;
    if (c->posting.amount <= 0 || c->posting.amount > WX_AMOUNT_MAX) {
        refuse(d, WX_R_INVALID_AMOUNT);
        return;
    }
    if (c->posting.currency != WX_CURRENCY_CNY) {
        refuse(d, WX_R_INVALID_CURRENCY);
        return;
    }
    uint32_t id = c->posting.account_id;
    if (id < 1 || id > m->n_accounts) {
        refuse(d, WX_R_ACCOUNT_NOT_FOUND);
        return;
    }
    int64_t delta = c->kind == WX_CMD_REPAYMENT ? -c->posting.amount : c->posting.amount;
    m->accounts[id].posted += delta;
    journal(d, WX_APPROVED, 0, id, c->posting.amount);
    if (d->got == NULL) {
        m->accounts[id].posted -= delta;
    } else {
        remember(d, M_ANSWER, 0);
    }
}

/* OpenID number n: 28 characters like WeChat's, every 7th the longest allowed. */
static void openid_of(uint32_t n, char out[WX_OPENID_MAX + 1])
{
    int len = snprintf(out, WX_OPENID_MAX + 1, "o%05u-AbCdEfGhIjKlMn_OpQrSt", n);
    assert_int_equal(len, 28);
    if (n % 7 == 0) {
        memset(out + len, 'z', WX_OPENID_MAX - (size_t)len);
        out[WX_OPENID_MAX] = '\0';
    }
}

/* The model's own reading of the contract: 1..WX_OPENID_MAX of [A-Za-z0-9_-]. */
static bool m_openid_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= WX_OPENID_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* The follower of a valid OpenID of the run; NULL for any other valid OpenID. */
static struct m_follower *m_follower_of(struct model *m, const char *openid)
{
    for (uint32_t n = 0; n < N_OPENIDS; n++) {
        char s[WX_OPENID_MAX + 1];
        openid_of(n, s);
        if (strcmp(s, openid) == 0) {
            return &m->followers[n];
        }
    }
    return NULL;
}

static uint32_t m_followers_of(const struct model *m, uint32_t customer)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < N_OPENIDS; i++) {
        n += m->followers[i].customer == customer;
    }
    return n;
}

static void d_follower(struct dec *d)
{
    struct model *m = d->x->m;
    const struct wx_cmd *c = d->c;
    bool bind = c->kind == WX_CMD_FOLLOWER_BIND;
    uint32_t customer = c->follower.customer_id;
    uint8_t via_max = bind ? WX_BIND_CARDHOLDER : WX_BIND_UNSUBSCRIBED;
    if (!m_openid_valid(c->follower.openid) || c->follower.via > via_max) {
        refuse(d, WX_R_INVALID_FIELD);
        return;
    }
    if ((bind && customer == 0) || customer > m->n_customers) {
        refuse(d, WX_R_CUSTOMER_NOT_FOUND);
        return;
    }
    struct m_follower *f = m_follower_of(m, c->follower.openid);
    uint32_t bound = f != NULL ? f->customer : 0;
    if (!bind) {
        if (bound == 0 || (customer != 0 && bound != customer)) {
            refuse(d, WX_R_FOLLOWER_NOT_BOUND);
            return;
        }
        journal(d, WX_APPROVED, bound, 0, 0);
        if (d->got != NULL) {
            memset(f, 0, sizeof *f);
            remember(d, M_ANSWER, 0);
        }
        return;
    }
    if (bound != 0 && bound != customer) {
        refuse(d, WX_R_FOLLOWER_TAKEN);
        return;
    }
    if (bound == customer) {
        refuse(d, WX_APPROVED); /* bound already: a repeat, whatever the key */
        d->w->res.repeat = 1;
        d->w->res.id = customer;
        d->w->res.seq = wx_engine_last_seq(d->x->e);
        return;
    }
    if (m_followers_of(m, customer) >= WX_FOLLOWERS_PER_CUSTOMER) {
        refuse(d, WX_R_FOLLOWER_LIMIT);
        return;
    }
    assert_non_null(f); /* the run binds its own OpenIDs only */
    journal(d, WX_APPROVED, customer, 0, 0);
    if (d->got != NULL) {
        f->customer = customer;
        f->bound_at = d->now;
        f->via = c->follower.via;
        f->order = ++m->bind_order;
        remember(d, M_ANSWER, 0);
    }
}

/* How many records a tick at `now` forgets from one queue (after expiring due holds). */
static size_t forget_count(const struct model *m, const uint32_t *q, size_t head, size_t tail,
                           int64_t keep, int64_t now)
{
    size_t n = 0;
    for (size_t i = head; i < tail; i++) {
        const struct m_rec *r = &m->recs[q[i]];
        bool open_hold = r->kind == M_HOLD && !r->closed && r->expires > now;
        if (open_hold || r->at_ms + keep > now) {
            break;
        }
        n++;
    }
    return n;
}

static void d_tick(struct dec *d)
{
    struct model *m = d->x->m;
    int64_t short_keep = d->x->cfg.idempotency_hours * HOUR_MS;
    int64_t long_keep = d->x->cfg.reference_days * DAY_MS;
    size_t due = 0;
    for (size_t i = 0; i < m->n_exp; i++) {
        due += m->exp[i].at <= d->now;
    }
    size_t n_short = forget_count(m, m->short_q, m->short_head, m->short_tail, short_keep, d->now);
    size_t n_long = forget_count(m, m->long_q, m->long_head, m->long_tail, long_keep, d->now);
    size_t work = due + n_short + n_long;
    if (work == 0) {
        refuse(d, WX_APPROVED); /* nothing due: not journaled */
        return;
    }
    assert_true(work < 65536); /* the engine's per-tick bound; the model does not split */
    journal(d, WX_APPROVED, 0, 0, (int64_t)work);
    if (d->got == NULL) {
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < m->n_exp; i++) {
        struct m_expiry x = m->exp[i];
        if (x.at > d->now) {
            m->exp[kept++] = x;
            continue;
        }
        struct m_rec *r = &m->recs[x.key];
        if (r->kind == M_HOLD && r->first.seq == x.seq && !r->closed) {
            r->expired = true;
            hold_release(m, r, r->open);
        }
    }
    m->n_exp = kept;
    for (size_t i = 0; i < n_short; i++) {
        memset(&m->recs[m->short_q[m->short_head++]], 0, sizeof(struct m_rec));
    }
    for (size_t i = 0; i < n_long; i++) {
        memset(&m->recs[m->long_q[m->long_head++]], 0, sizeof(struct m_rec));
    }
}

static bool remembered_kind(uint8_t kind)
{
    return kind != WX_CMD_CUSTOMER_ADD && kind != WX_CMD_CARD_ISSUE &&
           kind != WX_CMD_CARD_ACTIVATE && kind != WX_CMD_TICK;
}

/* Decides c in the model: predicts into w (got == NULL) or applies the journaled answer. */
static void decide(struct ctx *x, const struct wx_cmd *c, struct want *w,
                   const struct wx_result *got)
{
    memset(w, 0, sizeof *w);
    struct dec d = {.x = x, .c = c, .got = got, .w = w};
    d.now = c->time_ms > x->m->now ? c->time_ms : x->m->now;
    if (c->kind == WX_CMD_NONE || c->kind >= WX_CMD_KIND_COUNT || c->key_len == 0 ||
        c->key_len > WX_KEY_MAX || c->time_ms < 0) {
        refuse(&d, WX_R_INVALID_FIELD);
        return;
    }
    struct m_rec *tomb = NULL;
    if (remembered_kind(c->kind)) {
        struct m_rec *r = rec_of(x->m, c->key, c->key_len);
        if (r->kind == M_TOMB && c->kind == WX_CMD_AUTHORIZE) {
            tomb = r;
        } else if (r->kind != M_FREE) {
            if (r->kind != M_TOMB && r->cmd_kind == c->kind && r->body == body_hash(c)) {
                w->res = r->first;
                w->res.repeat = 1;
                return;
            }
            refuse(&d, WX_R_DUPLICATE_MISMATCH);
            return;
        }
    }
    switch (c->kind) {
    case WX_CMD_CUSTOMER_ADD:
        d_customer(&d);
        break;
    case WX_CMD_CARD_ISSUE:
        d_card_issue(&d);
        break;
    case WX_CMD_CARD_ACTIVATE:
    case WX_CMD_CARD_STATUS:
        d_card_status(&d);
        break;
    case WX_CMD_LIMIT_SET:
    case WX_CMD_TEMP_LIMIT_SET:
        d_limit(&d);
        break;
    case WX_CMD_AUTHORIZE:
        d_authorize(&d, tomb);
        break;
    case WX_CMD_AUTH_INCREMENT:
        d_increment(&d);
        break;
    case WX_CMD_CAPTURE:
        d_capture(&d);
        break;
    case WX_CMD_REVERSAL:
        d_reversal(&d);
        break;
    case WX_CMD_REFUND:
        d_refund(&d);
        break;
    case WX_CMD_TICK:
        d_tick(&d);
        break;
    case WX_CMD_FOLLOWER_BIND:
    case WX_CMD_FOLLOWER_UNBIND:
        d_follower(&d);
        break;
    default:
        d_posting(&d);
        break;
    }
    if (w->rc == 1) {
        w->res.journaled = 1;
        w->res.seq = wx_engine_last_seq(x->e) + 1;
        if (got != NULL) {
            x->m->now = d.now;
        }
    }
}

/* ---- running commands ---- */

static void report(struct ctx *x, const struct wx_cmd *c, const struct want *w, int rc,
                   const struct wx_result *r, const char *what)
{
    fail_msg("step %ld (seed WX_SEED=%" PRIu64 "): %s %.*s: %s\n"
             "  want rc %d %s repeat %u id %u account %u amount %" PRId64 " available %" PRId64
             " seq %" PRIu64 "\n"
             "  got  rc %d %s repeat %u id %u account %u amount %" PRId64 " available %" PRId64
             " seq %" PRIu64,
             x->step, x->seed, wx_cmd_kind_name(c->kind), c->key_len, c->key, what, w->rc,
             wx_reason_name(w->res.reason), w->res.repeat, w->res.id, w->res.account_id,
             w->res.amount, w->res.available, w->res.seq, rc, wx_reason_name(r->reason), r->repeat,
             r->id, r->account_id, r->amount, r->available, r->seq);
}

static void check_answer(struct ctx *x, const struct wx_cmd *c, const struct want *w, int rc,
                         const struct wx_result *r)
{
    const struct wx_result *e = &w->res;
    if (rc != w->rc || r->reason != e->reason || r->repeat != e->repeat || r->id != e->id ||
        r->account_id != e->account_id || r->amount != e->amount || r->available != e->available ||
        r->seq != e->seq || r->journaled != e->journaled) {
        report(x, c, w, rc, r, "answer differs from the model");
    }
    if (e->repeat) {
        if (r->approval != e->approval) {
            report(x, c, w, rc, r, "repeat with another approval code");
        }
        return;
    }
    bool approval = rc == 1 && r->reason == WX_APPROVED &&
                    (c->kind == WX_CMD_AUTHORIZE || c->kind == WX_CMD_AUTH_INCREMENT);
    if (approval ? r->approval < 100000 || r->approval > 999999 : r->approval != 0) {
        report(x, c, w, rc, r, "approval code");
    }
}

static void keep_row(struct ctx *x, const struct wx_row *row)
{
    if (x->n_rows == x->cap_rows) {
        x->cap_rows = x->cap_rows ? x->cap_rows * 2 : 4096;
        x->rows = realloc(x->rows, x->cap_rows * sizeof *x->rows);
        assert_non_null(x->rows);
    }
    if (x->n_bytes + row->len > x->cap_bytes) {
        x->cap_bytes = x->cap_bytes ? x->cap_bytes * 2 : 1 << 20;
        x->bytes = realloc(x->bytes, x->cap_bytes);
        assert_non_null(x->bytes);
    }
    memcpy(x->bytes + x->n_bytes, row->buf, row->len);
    x->rows[x->n_rows++] = (struct kept_row){.seq = row->seq, .off = x->n_bytes, .len = row->len};
    x->n_bytes += row->len;
}

/* The account as the engine shows it must be the model's, and follow the formula. */
static void check_account(struct ctx *x, uint32_t id)
{
    struct wx_account_view v;
    assert_int_equal(wx_engine_account(x->e, id, &v), 0);
    const struct m_account *a = &x->m->accounts[id];
    int64_t temp = x->m->now < a->temp_exp ? a->temp : 0;
    if (v.posted != a->posted || v.held != a->held || v.credit_limit != a->limit ||
        v.temp_limit != temp || v.available != v.credit_limit + v.temp_limit - v.posted - v.held ||
        v.available != m_available(x->m, id, x->m->now)) {
        fail_msg("step %ld (seed %" PRIu64 "): account %u: engine posted %" PRId64 " held %" PRId64
                 " limit %" PRId64 " temp %" PRId64 " available %" PRId64 "; model posted %" PRId64
                 " held %" PRId64 " limit %" PRId64 " temp %" PRId64,
                 x->step, x->seed, id, v.posted, v.held, v.credit_limit, v.temp_limit, v.available,
                 a->posted, a->held, a->limit, temp);
    }
}

/* Every OpenID's binding, and every followed customer's list in binding order. */
static void check_followers(struct ctx *x)
{
    const struct model *m = x->m;
    uint32_t bound = 0;
    for (uint32_t n = 0; n < N_OPENIDS; n++) {
        char openid[WX_OPENID_MAX + 1];
        struct wx_follower_view v;
        const struct m_follower *f = &m->followers[n];
        openid_of(n, openid);
        int rc = wx_engine_follower(x->e, openid, &v);
        if (f->customer == 0) {
            assert_int_equal(rc, -1);
            continue;
        }
        bound++;
        assert_int_equal(rc, 0);
        assert_string_equal(v.openid, openid);
        assert_int_equal(v.customer_id, f->customer);
        assert_int_equal(v.bound_at_ms, f->bound_at);
        assert_int_equal(v.via, f->via);
    }
    struct wx_engine_stats st;
    wx_engine_stats(x->e, &st);
    assert_int_equal(st.followers, bound);
    for (uint32_t c = 1; c <= FOLLOWED + 1 && c <= m->n_customers; c++) {
        struct wx_follower_view v[WX_FOLLOWERS_PER_CUSTOMER];
        size_t n = wx_engine_customer_followers(x->e, c, v, WX_FOLLOWERS_PER_CUSTOMER);
        assert_int_equal(n, m_followers_of(m, c));
        for (size_t i = 0; i < n; i++) {
            const struct m_follower *f = m_follower_of(x->m, v[i].openid);
            assert_non_null(f);
            assert_int_equal(f->customer, c);
            assert_true(i == 0 || f->order > m_follower_of(x->m, v[i - 1].openid)->order);
        }
    }
}

static void check_all(struct ctx *x)
{
    wx_engine_check(x->e);
    struct wx_engine_stats st;
    wx_engine_stats(x->e, &st);
    assert_int_equal(st.cards, x->m->n_cards);
    assert_int_equal(st.accounts, x->m->n_accounts);
    assert_int_equal(st.customers, x->m->n_customers);
    assert_int_equal(st.now_ms, x->m->now);
    for (uint32_t i = 1; i <= x->m->n_accounts; i++) {
        check_account(x, i);
    }
    for (uint32_t i = 1; i <= x->m->n_cards; i++) {
        struct wx_card_view v;
        assert_int_equal(wx_engine_card(x->e, i, &v), 0);
        assert_int_equal(v.status, x->m->cards[i].status);
        assert_int_equal(v.account_id, x->m->cards[i].account);
    }
    check_followers(x);
}

/* Sends one command to the engine and the model, and checks the answer. */
static struct wx_result send(struct ctx *x, const struct wx_cmd *c)
{
    struct want w;
    struct wx_result r;
    struct wx_row row;
    struct membuf before = {0}, after = {0};
    decide(x, c, &w, NULL);
    /* Refusals are sampled; repeats of activations, answered from the card, and of binds of
     * a bound pair, always. */
    bool activation_repeat = w.res.repeat && c->kind == WX_CMD_CARD_ACTIVATE;
    bool follower_repeat = w.res.repeat && !w.res.journaled && c->kind == WX_CMD_FOLLOWER_BIND;
    bool sample = w.rc == 0 && (activation_repeat || follower_repeat ||
                                (!w.res.repeat && ++x->n_refused % SNAPSHOT_EVERY == 0));
    if (sample) {
        snap_mem(x->e, &before);
    }
    uint64_t seq = wx_engine_last_seq(x->e);
    int rc = wx_engine_apply(x->e, c, &r, &row);
    check_answer(x, c, &w, rc, &r);
    x->by_reason[r.reason < WX_R_COUNT ? r.reason : 0]++;
    if (rc == 1) {
        x->n_journaled++;
        x->n_binds += c->kind == WX_CMD_FOLLOWER_BIND;
        x->n_unbinds += c->kind == WX_CMD_FOLLOWER_UNBIND;
        assert_int_equal(row.seq, seq + 1);
        keep_row(x, &row);
        decide(x, c, &w, &r);
        if (r.account_id != 0) {
            check_account(x, r.account_id);
        }
    } else {
        assert_int_equal(wx_engine_last_seq(x->e), seq);
        x->n_repeats += r.repeat;
        x->n_activation_repeats += activation_repeat;
        x->n_follower_repeats += follower_repeat;
        x->n_activation_refused +=
            c->kind == WX_CMD_CARD_ACTIVATE && r.reason == WX_R_INVALID_STATUS;
    }
    if (sample) {
        snap_mem(x->e, &after);
        if (!snap_same(&before, &after)) {
            report(x, c, &w, rc, &r, "an answer without a row changed the state");
        }
        free(before.p);
        free(after.p);
    }
    /* Commands to send again under their key: the remembered kinds, and activations. */
    if (rc == 1 && (remembered_kind(c->kind) || c->kind == WX_CMD_CARD_ACTIVATE)) {
        x->recent[x->n_recent++ % RING] = *c;
    }
    return r;
}

/* ---- command generators ---- */

static void fresh_key(struct ctx *x, struct wx_cmd *c)
{
    char key[16];
    int n = snprintf(key, sizeof key, "k%u", x->next_key++);
    assert_true(x->next_key < MAX_KEYS - RESERVED_KEYS);
    c->key_len = (uint8_t)n;
    memcpy(c->key, key, (size_t)n);
}

/* The time a command carries: the sources' clock, now and then a little late. */
static int64_t cmd_time(struct ctx *x)
{
    if (chance(x, 50)) {
        int64_t late = x->clock - (int64_t)below(x, 600000);
        return late > 0 ? late : 0;
    }
    return x->clock;
}

static void advance_clock(struct ctx *x)
{
    x->clock += (int64_t)below(x, 60000);
    if (below(x, 10000) < 3) {
        x->clock += HOUR_MS + (int64_t)below(x, 47 * HOUR_MS);
    }
    if (below(x, 20000) == 0) {
        x->clock += 2 * DAY_MS + (int64_t)below(x, 6 * DAY_MS);
    }
}

static uint32_t some_card(struct ctx *x)
{
    return 1 + (uint32_t)below(x, x->m->n_cards);
}

static uint32_t some_account(struct ctx *x)
{
    return 1 + (uint32_t)below(x, x->m->n_accounts);
}

static const uint16_t mccs[] = {5411, 5812, 5999, 4111, 5541, 7011, 3000,
                                3512, 3999, 7512, 4511, 6011, 5311, 4814};

static void gen_authorize(struct ctx *x, struct wx_cmd *c)
{
    const struct m_card *k = &x->m->cards[some_card(x)];
    cmd_auth(c, "k", cmd_time(x), k->ref, some_amount(x));
    fresh_key(x, c);
    c->auth.merchant.mcc = mccs[below(x, sizeof mccs / sizeof mccs[0])];
    c->auth.merchant.txn_amount = c->auth.amount;
    c->auth.merchant.txn_currency = WX_CURRENCY_CNY;
    c->auth.expiry = chance(x, 300) ? 0 : k->expiry;
    c->auth.cvv_tag = chance(x, 500) ? 0 : k->cvv;
    if (chance(x, 15)) {
        c->auth.expiry = (uint16_t)(k->expiry - 1);
    }
    if (chance(x, 15)) {
        c->auth.cvv_tag ^= 4;
    }
    if (chance(x, 40)) {
        c->auth.type = WX_AUTH_CASH;
        c->auth.merchant.channel = WX_CHANNEL_ATM;
        c->auth.merchant.mcc = 6011;
    }
    c->auth.capture = chance(x, 60);
    c->auth.advice = chance(x, 20);
    if (chance(x, 40)) {
        c->auth.type = WX_AUTH_BALANCE_INQUIRY;
        c->auth.amount = 0;
        c->auth.capture = 0;
    }
}

static const struct m_rec *pick(struct ctx *x, const uint32_t *ring, unsigned n, uint32_t *key)
{
    if (n == 0) {
        return NULL;
    }
    unsigned span = n < RING ? n : RING;
    *key = ring[(n - 1 - below(x, span)) % RING];
    return &x->m->recs[*key];
}

/* A key number no command will ever be sent under. */
static uint32_t never_sent(struct ctx *x)
{
    return MAX_KEYS - 1 - (uint32_t)below(x, RESERVED_KEYS);
}

static void follow_to(struct ctx *x, struct wx_cmd *c, uint8_t kind, uint32_t orig,
                      const uint8_t *ref, int64_t amount)
{
    char key[16];
    snprintf(key, sizeof key, "k%u", orig);
    cmd_follow(c, kind, "k", cmd_time(x), orig == UINT32_MAX ? NULL : key, ref, amount);
    fresh_key(x, c);
}

static void gen_increment(struct ctx *x, struct wx_cmd *c)
{
    uint32_t key = UINT32_MAX;
    pick(x, x->holds, x->n_holds, &key);
    follow_to(x, c, WX_CMD_AUTH_INCREMENT, key, NULL, some_amount(x) / 4 + 1);
}

static void gen_capture(struct ctx *x, struct wx_cmd *c)
{
    uint32_t key = UINT32_MAX;
    const struct m_rec *h = pick(x, x->holds, x->n_holds, &key);
    if (h == NULL || chance(x, 60)) {
        /* A force post, sometimes naming an original the engine never saw. */
        const struct m_card *k = &x->m->cards[some_card(x)];
        follow_to(x, c, WX_CMD_CAPTURE, chance(x, 300) ? never_sent(x) : UINT32_MAX, k->ref,
                  some_amount(x));
        return;
    }
    int64_t total = h->kind == M_HOLD ? h->total : some_amount(x);
    int64_t left = total - (h->kind == M_HOLD ? h->settled : 0);
    int64_t amount;
    switch (below(x, 6)) {
    case 0:
        amount = left; /* the rest */
        break;
    case 1:
        amount = total + total * x->cfg.capture_tolerance_pct / 100 - (total - left); /* max */
        break;
    case 2:
        amount = left + total * (x->cfg.capture_tolerance_pct + 5) / 100 + 1; /* beyond */
        break;
    default:
        amount = left / 2 + (int64_t)below(x, (uint64_t)(left > 2 ? left / 2 : 1));
        break;
    }
    follow_to(x, c, WX_CMD_CAPTURE, key, NULL, amount > 0 ? amount : 1);
    c->follow.final = chance(x, 200);
}

static void gen_reversal(struct ctx *x, struct wx_cmd *c)
{
    uint32_t key = UINT32_MAX;
    unsigned r = (unsigned)below(x, 100);
    if (r < 8 && x->n_pending < 64) {
        /* The reversal overtakes its original, which follows a little later. */
        struct wx_cmd *o = &x->pending[x->n_pending++];
        gen_authorize(x, o);
        o->auth.type = WX_AUTH_PURCHASE;
        o->auth.amount = some_amount(x);
        follow_to(x, c, WX_CMD_REVERSAL, key_number(o->key, o->key_len), NULL, 0);
        return;
    }
    if (r < 10) {
        follow_to(x, c, WX_CMD_REVERSAL, never_sent(x), NULL, 0); /* never comes */
        return;
    }
    const struct m_rec *o =
        r < 70 ? pick(x, x->holds, x->n_holds, &key) : pick(x, x->postings, x->n_postings, &key);
    int64_t open = o != NULL && o->open > 0 ? o->open : some_amount(x);
    int64_t amount = chance(x, 500) ? 0 : 1 + (int64_t)below(x, (uint64_t)open + open / 10);
    follow_to(x, c, WX_CMD_REVERSAL, key, NULL, amount);
}

static void gen_refund(struct ctx *x, struct wx_cmd *c)
{
    uint32_t key = UINT32_MAX;
    const struct m_rec *p = pick(x, x->postings, x->n_postings, &key);
    if (p == NULL || chance(x, 300)) {
        follow_to(x, c, WX_CMD_REFUND, UINT32_MAX, x->m->cards[some_card(x)].ref, some_amount(x));
        return;
    }
    int64_t open = p->open > 0 ? p->open : 100;
    follow_to(x, c, WX_CMD_REFUND, key, NULL, 1 + (int64_t)below(x, (uint64_t)open + open / 8));
}

static void gen_posting(struct ctx *x, struct wx_cmd *c, uint8_t kind)
{
    uint32_t id = some_account(x);
    int64_t amount = some_amount(x) / 10 + 1;
    if (kind == WX_CMD_REPAYMENT) {
        int64_t owed = x->m->accounts[id].posted;
        amount = owed > 100 ? owed / 2 + (int64_t)below(x, (uint64_t)owed) : some_amount(x);
    }
    cmd_posting(c, kind, "k", cmd_time(x), id, amount);
    fresh_key(x, c);
}

static void gen_limit(struct ctx *x, struct wx_cmd *c)
{
    uint32_t id = some_account(x);
    if (chance(x, 500)) {
        cmd_limit(c, WX_CMD_LIMIT_SET, "k", cmd_time(x), id, 500000 + some_amount(x) * 3, 0);
    } else {
        int64_t t = cmd_time(x);
        int64_t amount = chance(x, 150) ? 0 : some_amount(x);
        cmd_limit(c, WX_CMD_TEMP_LIMIT_SET, "k", t, id, amount,
                  t + HOUR_MS + (int64_t)below(x, 10 * DAY_MS));
    }
    fresh_key(x, c);
}

static void gen_status(struct ctx *x, struct wx_cmd *c)
{
    uint32_t id = some_card(x);
    /* Unlocks are looked for, so that locked cards stay a minority. */
    for (int tries = 0; tries < 8 && x->m->cards[id].status != WX_CARD_LOCKED; tries++) {
        id = some_card(x);
    }
    uint8_t st = x->m->cards[id].status;
    uint8_t to;
    if (st == WX_CARD_NOT_ACTIVATED && chance(x, 800)) {
        cmd_status(c, WX_CMD_CARD_ACTIVATE, "k", cmd_time(x), id, 0);
        fresh_key(x, c);
        return;
    }
    if (chance(x, 50)) {
        to = (uint8_t)(WX_CARD_LOST + below(x, 3)); /* lost, stolen, closed: rare */
    } else {
        to = chance(x, 100)         ? (uint8_t)below(x, 7)
             : st == WX_CARD_LOCKED ? WX_CARD_ACTIVE
                                    : WX_CARD_LOCKED;
    }
    cmd_status(c, WX_CMD_CARD_STATUS, "k", cmd_time(x), id, to);
    fresh_key(x, c);
}

static void gen_customer_and_card(struct ctx *x, struct wx_cmd *c, bool send_card)
{
    uint32_t n = x->m->n_customers + 1;
    char name[32], mobile[16];
    snprintf(name, sizeof name, "Customer %u", n);
    snprintf(mobile, sizeof mobile, "139%08u", n);
    cmd_customer(c, "k", cmd_time(x), name, mobile, n);
    fresh_key(x, c);
    uint32_t id = send(x, c).id;
    if (!send_card || x->m->n_cards >= MAX_CARDS - 1) {
        return;
    }
    uint8_t ref[WX_REF_LEN];
    ref_fill(ref, x->m->n_cards + 1);
    bool supplementary = x->m->n_accounts > 0 && chance(x, 250);
    cmd_card(c, "k", cmd_time(x), id, supplementary ? some_account(x) : 0, ref,
             500000 + some_amount(x) * 3);
    if (chance(x, 50)) {
        c->card.expiry = 2603; /* expires during the run */
    }
    fresh_key(x, c);
    send(x, c);
    if (chance(x, 900)) {
        cmd_status(c, WX_CMD_CARD_ACTIVATE, "k", cmd_time(x), x->m->n_cards, 0);
        fresh_key(x, c);
        send(x, c);
    }
}

/* A command sent again: as it was (a repeat), or with other content under the same key. */
static void gen_repeat(struct ctx *x, struct wx_cmd *c)
{
    if (chance(x, 100)) {
        /* Natural keys: a customer or a card issued again, same or other details, or a card
         * activated again (whatever its status now). */
        unsigned which = (unsigned)below(x, 3);
        if (which == 0) {
            *c = x->m->customers[1 + below(x, x->m->n_customers)].add;
            if (chance(x, 300)) {
                c->customer.mobile[4] ^= 1;
            }
        } else if (which == 1) {
            *c = x->m->cards[some_card(x)].issue;
            if (chance(x, 300)) {
                c->card.expiry = 2811;
            }
        } else {
            cmd_status(c, WX_CMD_CARD_ACTIVATE, "k", 0, some_card(x), 0);
        }
        fresh_key(x, c);
        c->time_ms = cmd_time(x);
        return;
    }
    assert_true(x->n_recent > 0); /* the setup's activations are in the ring */
    *c = x->recent[below(x, x->n_recent < RING ? x->n_recent : RING)];
    c->time_ms = cmd_time(x);
    if (chance(x, 300)) {
        switch (c->kind) {
        case WX_CMD_AUTHORIZE:
            c->auth.amount++;
            break;
        case WX_CMD_AUTH_INCREMENT:
        case WX_CMD_CAPTURE:
        case WX_CMD_REVERSAL:
        case WX_CMD_REFUND:
            c->follow.amount++;
            break;
        case WX_CMD_LIMIT_SET:
        case WX_CMD_TEMP_LIMIT_SET:
            c->limit.amount++;
            break;
        case WX_CMD_CARD_ACTIVATE:
            c->card_status.card_id = some_card(x); /* the key is not remembered: an activation */
            break;
        case WX_CMD_CARD_STATUS:
            c->card_status.status ^= 1;
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
}

static void gen_invalid(struct ctx *x, struct wx_cmd *c)
{
    static const int64_t bad_amounts[] = {0, -1, -100000, WX_AMOUNT_MAX + 1, INT64_MAX};
    int64_t bad = bad_amounts[below(x, 5)];
    uint8_t nobody[WX_REF_LEN];
    ref_fill(nobody, UNKNOWN_REF_SEED + below(x, 1000));
    switch (below(x, 10)) {
    case 0:
        gen_authorize(x, c);
        c->auth.type = WX_AUTH_PURCHASE;
        c->auth.amount = bad;
        break;
    case 1:
        gen_authorize(x, c);
        memcpy(c->auth.ref, nobody, WX_REF_LEN);
        break;
    case 2:
        gen_authorize(x, c);
        c->auth.currency = chance(x, 500) ? 840 : 999;
        break;
    case 3:
        follow_to(x, c, WX_CMD_CAPTURE, never_sent(x), NULL, some_amount(x));
        break;
    case 4:
        follow_to(x, c, WX_CMD_AUTH_INCREMENT, never_sent(x), NULL, some_amount(x));
        break;
    case 5:
        follow_to(x, c, WX_CMD_REFUND, UINT32_MAX, nobody, some_amount(x));
        break;
    case 6:
        gen_posting(x, c, WX_CMD_FEE);
        c->posting.amount = bad;
        break;
    case 7:
        gen_posting(x, c, WX_CMD_REPAYMENT);
        c->posting.account_id = x->m->n_accounts + 1 + (uint32_t)below(x, 10);
        break;
    case 8:
        gen_capture(x, c);
        c->follow.currency = 840;
        break;
    default:
        gen_posting(x, c, WX_CMD_INTEREST);
        c->key_len = chance(x, 500) ? 0 : WX_KEY_MAX + 1;
        break;
    }
}

/* Binds and unbinds of the run's OpenIDs to a few customers, so that OpenIDs are taken and
 * customers reach the limit; sometimes a bound pair again, a wrong or unknown customer, a
 * malformed OpenID or an out-of-range `via`. */
static void gen_follower(struct ctx *x, struct wx_cmd *c)
{
    static const char *const bad[] = {"", "o 1", "o.1", "o/1", "\xe5\xbe\xae"};
    uint32_t n = (uint32_t)below(x, N_OPENIDS);
    char openid[WX_OPENID_MAX + 1];
    openid_of(n, openid);
    const struct m_follower *f = &x->m->followers[n];
    uint32_t customer = 1 + (uint32_t)below(x, FOLLOWED);
    unsigned r = (unsigned)below(x, 100);
    if (r < 55) {
        if (r < 8 && f->customer != 0) {
            customer = f->customer; /* a bound pair again */
        }
        uint8_t via = chance(x, 150) ? WX_BIND_CARDHOLDER : WX_BIND_STAFF;
        cmd_follower(c, WX_CMD_FOLLOWER_BIND, "k", cmd_time(x), openid, customer, via);
    } else if (r < 95) {
        if (r < 80) {
            customer = 0; /* whichever */
        } else if (r < 88 && f->customer != 0) {
            customer = f->customer;
        }
        uint8_t via = (uint8_t)below(x, 3);
        cmd_follower(c, WX_CMD_FOLLOWER_UNBIND, "k", cmd_time(x), openid, customer, via);
    } else {
        uint8_t kind = chance(x, 500) ? WX_CMD_FOLLOWER_BIND : WX_CMD_FOLLOWER_UNBIND;
        cmd_follower(c, kind, "k", cmd_time(x), openid, customer, WX_BIND_STAFF);
        switch (below(x, 3)) {
        case 0:
            snprintf(c->follower.openid, sizeof c->follower.openid, "%s", bad[below(x, 5)]);
            break;
        case 1:
            c->follower.via = (uint8_t)(2 + below(x, 3));
            break;
        default:
            c->follower.customer_id = x->m->n_customers + 1 + (uint32_t)below(x, 10);
            break;
        }
    }
    fresh_key(x, c);
}

static void gen_tick(struct ctx *x, struct wx_cmd *c)
{
    if (chance(x, 5)) {
        x->clock += (int64_t)below(x, 3 * DAY_MS);
    }
    cmd_init(c, WX_CMD_TICK, "k", x->clock);
    fresh_key(x, c);
}

static void one_random_command(struct ctx *x)
{
    struct wx_cmd c;
    unsigned r = (unsigned)below(x, 1000);
    advance_clock(x);
    if (r >= 980 && x->n_pending > 0) {
        unsigned i = (unsigned)below(x, x->n_pending);
        c = x->pending[i];
        x->pending[i] = x->pending[--x->n_pending]; /* order does not matter */
        c.time_ms = cmd_time(x);
    } else if (r < 280 || r >= 980) {
        gen_authorize(x, &c);
    } else if (r < 300) {
        gen_follower(x, &c);
    } else if (r < 350) {
        gen_increment(x, &c);
    } else if (r < 550) {
        gen_capture(x, &c);
    } else if (r < 630) {
        gen_reversal(x, &c);
    } else if (r < 670) {
        gen_refund(x, &c);
    } else if (r < 760) {
        gen_posting(x, &c, WX_CMD_REPAYMENT);
    } else if (r < 780) {
        gen_posting(x, &c, WX_CMD_FEE);
    } else if (r < 790) {
        gen_posting(x, &c, WX_CMD_INTEREST);
    } else if (r < 810) {
        gen_limit(x, &c);
    } else if (r < 830) {
        gen_status(x, &c);
    } else if (r < 835) {
        gen_customer_and_card(x, &c, true);
        return;
    } else if (r < 890) {
        gen_repeat(x, &c);
    } else if (r < 950) {
        gen_invalid(x, &c);
    } else {
        gen_tick(x, &c);
    }
    send(x, &c);
}

static void setup_cards(struct ctx *x)
{
    for (uint32_t i = 0; i < N_SETUP; i++) {
        struct wx_cmd c;
        gen_customer_and_card(x, &c, false);
        uint8_t ref[WX_REF_LEN];
        ref_fill(ref, x->m->n_cards + 1);
        bool supplementary = i >= 20 && chance(x, 250);
        cmd_card(&c, "k", x->clock, i + 1, supplementary ? some_account(x) : 0, ref,
                 500000 + some_amount(x) * 3);
        if (chance(x, 50)) {
            c.card.expiry = 2603;
        }
        fresh_key(x, &c);
        send(x, &c);
        if (chance(x, 900)) {
            cmd_status(&c, WX_CMD_CARD_ACTIVATE, "k", x->clock, x->m->n_cards, 0);
            fresh_key(x, &c);
            send(x, &c);
        }
    }
}

/* ---- replay ---- */

static void replay_rows(struct ctx *x, wx_engine_t *e, uint64_t after_seq)
{
    char err[256];
    for (size_t i = 0; i < x->n_rows; i++) {
        if (x->rows[i].seq <= after_seq) {
            continue;
        }
        if (wx_engine_replay(e, x->rows[i].seq, x->bytes + x->rows[i].off, x->rows[i].len, err,
                             sizeof err) != 0) {
            fail_msg("replay (seed %" PRIu64 "): %s", x->seed, err);
        }
    }
}

static void check_replays(struct ctx *x)
{
    char diff[256], err[256];
    wx_engine_t *full = wx_engine_new(&x->cfg);
    replay_rows(x, full, 0);
    if (wx_engine_compare(x->e, full, diff, sizeof diff) != 0) {
        fail_msg("journal replay differs from the live engine: %s", diff);
    }
    wx_engine_check(full);
    wx_engine_free(full);

    wx_engine_t *half = wx_engine_new(&x->cfg);
    FILE *in = fmemopen(x->mid.p, x->mid.n, "rb");
    assert_non_null(in);
    if (wx_engine_load(half, in, err, sizeof err) != 0) {
        fail_msg("midpoint snapshot: %s", err);
    }
    fclose(in);
    assert_int_equal(wx_engine_last_seq(half), x->mid_seq);
    replay_rows(x, half, x->mid_seq);
    if (wx_engine_compare(x->e, half, diff, sizeof diff) != 0) {
        fail_msg("snapshot + replay differs from the live engine: %s", diff);
    }
    wx_engine_check(half);
    wx_engine_free(half);
}

static uint64_t choose_seed(void)
{
    const char *s = getenv("WX_SEED");
    if (s != NULL && *s != '\0') {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end == '\0') {
            return v;
        }
        fail_msg("WX_SEED must be a decimal number, not '%s'", s);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
}

static void test_engine_random(void **state)
{
    (void)state;
    struct ctx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->m = calloc(1, sizeof *x->m);
    assert_non_null(x->m);
    uint64_t seed = choose_seed();
    printf("test_engine_random: seed %" PRIu64 " (replay with WX_SEED=%" PRIu64 ")\n", seed, seed);
    fflush(stdout);
    x->rng = x->seed = seed;
    x->cfg = test_engine_config();
    x->cfg.capture_tolerance_pct = 15;
    x->e = wx_engine_new(&x->cfg);
    x->clock = T0_MS;
    x->m->now = 0;
    setup_cards(x);
    check_all(x);
    for (x->step = 0; x->step < N_COMMANDS; x->step++) {
        one_random_command(x);
        if (x->step % CHECK_EVERY == CHECK_EVERY - 1) {
            check_all(x);
        }
        if (x->step == N_COMMANDS / 2) {
            snap_mem(x->e, &x->mid);
            x->mid_seq = wx_engine_last_seq(x->e);
        }
    }
    check_all(x);
    check_replays(x);

    struct wx_engine_stats st;
    wx_engine_stats(x->e, &st);
    printf("test_engine_random: %lu journaled, %lu refused, %lu repeats; %u cards, %" PRIu64
           " records, %" PRIu64 " open holds, %.1f days\n",
           x->n_journaled, x->n_refused, x->n_repeats, st.cards, st.records, st.open_holds,
           (double)(x->m->now - T0_MS) / DAY_MS);
    printf("test_engine_random: activations: %lu repeats, %lu refused\n", x->n_activation_repeats,
           x->n_activation_refused);
    printf("test_engine_random: followers: %u bound; %lu binds, %lu unbinds, %lu repeats\n",
           st.followers, x->n_binds, x->n_unbinds, x->n_follower_repeats);
    printf("test_engine_random: answers by reason:");
    for (int i = 0; i < WX_R_COUNT; i++) {
        if (x->by_reason[i] != 0) {
            printf(" %s %lu", wx_reason_name((uint8_t)i), x->by_reason[i]);
        }
    }
    printf("\n");
    /* The mix must have reached the paths it is for. */
    static const uint8_t must[] = {
        WX_APPROVED,
        WX_R_INSUFFICIENT_CREDIT,
        WX_R_CARD_NOT_FOUND,
        WX_R_CARD_NOT_ACTIVATED,
        WX_R_CARD_LOCKED,
        WX_R_CARD_EXPIRED,
        WX_R_WRONG_EXPIRY,
        WX_R_WRONG_CVV,
        WX_R_INVALID_AMOUNT,
        WX_R_INVALID_CURRENCY,
        WX_R_DUPLICATE_MISMATCH,
        WX_R_ORIGINAL_NOT_FOUND,
        WX_R_ALREADY_REVERSED,
        WX_R_HOLD_CLOSED,
        WX_R_EXCEEDS_ORIGINAL,
        WX_R_ACCOUNT_NOT_FOUND,
        WX_R_CUSTOMER_EXISTS,
        WX_R_INVALID_STATUS,
        WX_R_INVALID_FIELD,
        WX_R_CUSTOMER_NOT_FOUND,
        WX_R_FOLLOWER_LIMIT,
        WX_R_FOLLOWER_TAKEN,
        WX_R_FOLLOWER_NOT_BOUND,
    };
    for (size_t i = 0; i < sizeof must; i++) {
        if (x->by_reason[must[i]] == 0) {
            fail_msg("seed %" PRIu64 ": no answer was %s", seed, wx_reason_name(must[i]));
        }
    }
    assert_true(x->n_repeats > 1000);
    if (x->n_follower_repeats == 0 || x->n_binds == 0 || x->n_unbinds == 0) {
        fail_msg("seed %" PRIu64 ": %lu binds, %lu unbinds, %lu bind repeats", seed, x->n_binds,
                 x->n_unbinds, x->n_follower_repeats);
    }
    if (x->n_activation_repeats == 0 || x->n_activation_refused == 0) {
        fail_msg("seed %" PRIu64 ": %lu activation repeats, %lu activations refused", seed,
                 x->n_activation_repeats, x->n_activation_refused);
    }

    wx_engine_free(x->e);
    free(x->mid.p);
    free(x->rows);
    free(x->bytes);
    free(x->m);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
