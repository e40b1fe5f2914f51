/*
 * guard.c - lockouts after wrong passwords, and rate limits.
 *
 * Five wrong login passwords in a row lock the login for 30 minutes; three wrong transaction
 * passwords lock it until the next day (local midnight): a guesser gets a handful of tries a
 * day, a cardholder who mistyped waits. A right password starts the count again. Rate limits
 * count requests per key (an IP, a follower) in fixed windows.
 *
 * Both live in memory, in one bounded table of entries keyed by a SipHash (with a random
 * key) of the customer id or the text, kept in order of last touch so that the stalest goes
 * when the table is full. A restart forgets them; the passwords' hashes are what protect
 * the accounts, these only slow a guesser down.
 */
#include "web/web_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/siphash.h"

#define DAY_MS 86400000LL

enum entry_kind { E_LOGIN = WX_PW_LOGIN, E_TXN = WX_PW_TXN, E_RATE = 2 };

struct entry {
    uint64_t hash; /* of kind and key */
    uint8_t kind;  /* enum entry_kind */
    char key[WX_GUARD_KEY_MAX];
    size_t key_len;
    struct entry *next_bucket;
    struct web_age age; /* by last touch */
    unsigned count;     /* wrong passwords in a row, or requests in the window */
    int64_t since_ms;   /* the window's start (rate limits) */
    int64_t until_ms;   /* locked until (lockouts); 0 none */
};

struct wx_guard {
    uint8_t hash_key[16];
    int tz_offset_minutes;
    int64_t login_lock_ms;
    size_t max, count;
    struct entry **buckets;
    size_t nbuckets;
    struct web_ages ages;
};

wx_guard_t *wx_guard_new(size_t max, int tz_offset_minutes)
{
    assert(max > 0);
    struct wx_guard *g = wx_calloc(1, sizeof *g);
    wx_random_bytes(g->hash_key, sizeof g->hash_key);
    g->tz_offset_minutes = tz_offset_minutes;
    g->login_lock_ms = WX_LOGIN_LOCK_MS;
    g->max = max;
    g->nbuckets = web_buckets_for(max);
    g->buckets = wx_calloc(g->nbuckets, sizeof *g->buckets);
    return g;
}

static struct entry *oldest(const wx_guard_t *g)
{
    return WEB_ENTRY_OF(g->ages.oldest, struct entry, age);
}

static void drop(wx_guard_t *g, struct entry *e)
{
    struct entry **p = &g->buckets[e->hash & (g->nbuckets - 1)];
    while (*p != e)
        p = &(*p)->next_bucket;
    *p = e->next_bucket;
    web_age_remove(&g->ages, &e->age);
    g->count--;
    free(e);
}

void wx_guard_free(wx_guard_t *g)
{
    if (g == NULL) return;
    while (oldest(g) != NULL)
        drop(g, oldest(g));
    free(g->buckets);
    free(g);
}

void wx_guard_set_login_lock(wx_guard_t *g, int64_t lock_ms)
{
    assert(lock_ms > 0);
    g->login_lock_ms = lock_ms;
}

/* The entry of (kind, key), touched; created when `create`, else NULL when there is none. */
static struct entry *entry_of(wx_guard_t *g, uint8_t kind, const void *key, size_t len, bool create)
{
    if (len > WX_GUARD_KEY_MAX) len = WX_GUARD_KEY_MAX;
    uint8_t buf[1 + WX_GUARD_KEY_MAX];
    buf[0] = kind;
    memcpy(buf + 1, key, len);
    uint64_t h = wx_siphash64(g->hash_key, buf, len + 1);
    struct entry *e = g->buckets[h & (g->nbuckets - 1)];
    while (e != NULL &&
           !(e->hash == h && e->kind == kind && e->key_len == len && memcmp(e->key, key, len) == 0))
        e = e->next_bucket;
    if (e == NULL && !create) return NULL;
    if (e == NULL) {
        if (g->count == g->max) drop(g, oldest(g));
        e = wx_calloc(1, sizeof *e);
        e->hash = h;
        e->kind = kind;
        memcpy(e->key, key, len);
        e->key_len = len;
        struct entry **head = &g->buckets[h & (g->nbuckets - 1)];
        e->next_bucket = *head;
        *head = e;
        g->count++;
    } else {
        web_age_remove(&g->ages, &e->age);
    }
    web_age_add_newest(&g->ages, &e->age);
    return e;
}

int64_t wx_guard_locked_until(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind,
                              int64_t now_ms)
{
    struct entry *e = entry_of(g, (uint8_t)kind, &customer_id, sizeof customer_id, false);
    return e != NULL && e->until_ms > now_ms ? e->until_ms : 0;
}

/* The next local midnight after now. */
static int64_t tomorrow(const wx_guard_t *g, int64_t now_ms)
{
    int64_t shift = (int64_t)g->tz_offset_minutes * 60000;
    int64_t local = now_ms + shift;
    int64_t day = local >= 0 ? local / DAY_MS : (local - DAY_MS + 1) / DAY_MS;
    return (day + 1) * DAY_MS - shift;
}

int64_t wx_guard_failed(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind,
                        int64_t now_ms)
{
    struct entry *e = entry_of(g, (uint8_t)kind, &customer_id, sizeof customer_id, true);
    if (e->until_ms != 0 && e->until_ms <= now_ms) e->until_ms = 0, e->count = 0; /* served */
    e->count++;
    unsigned tries = kind == WX_PW_LOGIN ? WX_LOGIN_TRIES : WX_TXN_TRIES;
    if (e->count < tries || e->until_ms != 0) return 0;
    e->until_ms = kind == WX_PW_LOGIN ? now_ms + g->login_lock_ms : tomorrow(g, now_ms);
    return e->until_ms;
}

void wx_guard_restore(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind,
                      int64_t until_ms)
{
    struct entry *e = entry_of(g, (uint8_t)kind, &customer_id, sizeof customer_id, true);
    e->until_ms = until_ms;
    e->count = kind == WX_PW_LOGIN ? WX_LOGIN_TRIES : WX_TXN_TRIES;
}

void wx_guard_passed(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind)
{
    struct entry *e = entry_of(g, (uint8_t)kind, &customer_id, sizeof customer_id, false);
    if (e != NULL) e->count = 0;
}

void wx_guard_unlock(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind)
{
    struct entry *e = entry_of(g, (uint8_t)kind, &customer_id, sizeof customer_id, false);
    if (e != NULL) drop(g, e);
}

bool wx_guard_allow(wx_guard_t *g, const char *key, size_t len, unsigned limit, int64_t window_ms,
                    int64_t now_ms)
{
    struct entry *e = entry_of(g, E_RATE, key, len, true);
    if (e->count == 0 || now_ms - e->since_ms >= window_ms) {
        e->since_ms = now_ms;
        e->count = 0;
    }
    if (e->count >= limit) return false;
    e->count++;
    return true;
}
