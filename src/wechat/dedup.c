/*
 * dedup.c - the webhook's memory of recent messages, so that the platform's retries of one
 * message (three more within about 15 s when an answer is late) are answered with the first
 * answer and never processed twice.
 *
 * Entries live in a ring in arrival order and in a chained hash table. The oldest entry is
 * dropped when the ring is full or the reply bytes pass their budget, and expired entries
 * are dropped from the ring's head as new ones arrive; both cost O(1) per message. An entry
 * still being processed is never dropped: its waiters hold its slot.
 */
#include "wechat/webhook_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/siphash.h"

struct dedup_entry {
    uint64_t k0, k1; /* SipHash-128 of the key */
    int64_t at_ms;   /* arrival */
    uint8_t *reply;  /* the HTTP body answered (done entries) */
    uint32_t len;
    uint32_t next; /* hash chain: entry index + 1, 0 ends */
    uint8_t state; /* enum wx_dedup_state */
};

struct wx_dedup {
    struct dedup_entry *e; /* cap entries, a ring: e[head % cap] .. e[(tail-1) % cap] */
    uint32_t *bucket;      /* cap heads: entry index + 1 */
    uint32_t cap;          /* a power of two */
    uint64_t head, tail;
    size_t bytes, bytes_max; /* reply bytes held, and their budget */
    int64_t ttl_ms;
    uint8_t seed[16]; /* per process, so keys cannot be aimed at one chain */
};

wx_dedup_t *wx_dedup_new(uint32_t entries, size_t bytes_max, unsigned ttl_s)
{
    assert(entries >= 2 && bytes_max > 0 && ttl_s > 0);
    uint32_t cap = 2;
    while (cap < entries)
        cap <<= 1;
    struct wx_dedup *d = wx_calloc(1, sizeof *d);
    d->e = wx_calloc(cap, sizeof *d->e);
    d->bucket = wx_calloc(cap, sizeof *d->bucket);
    d->cap = cap;
    d->bytes_max = bytes_max;
    d->ttl_ms = (int64_t)ttl_s * 1000;
    wx_random_bytes(d->seed, sizeof d->seed);
    return d;
}

void wx_dedup_free(wx_dedup_t *d)
{
    if (d == NULL) return;
    for (uint64_t i = d->head; i < d->tail; i++)
        free(d->e[i % d->cap].reply);
    free(d->bucket);
    free(d->e);
    free(d);
}

static uint32_t bucket_of(const wx_dedup_t *d, uint64_t k0)
{
    return (uint32_t)k0 & (d->cap - 1);
}

/* Unlinks the ring's oldest entry from its chain and frees its reply. */
static void drop_oldest(wx_dedup_t *d)
{
    assert(d->head < d->tail);
    uint32_t idx = (uint32_t)(d->head % d->cap);
    struct dedup_entry *x = &d->e[idx];
    assert(x->state != WX_DEDUP_PENDING);
    uint32_t *link = &d->bucket[bucket_of(d, x->k0)];
    while (*link != idx + 1) {
        assert(*link != 0);
        link = &d->e[*link - 1].next;
    }
    *link = x->next;
    d->bytes -= x->len;
    free(x->reply);
    memset(x, 0, sizeof *x);
    d->head++;
}

/* Makes room for one entry; false when the oldest is still being processed. */
static bool make_room(wx_dedup_t *d, int64_t now_ms)
{
    while (d->head < d->tail) {
        const struct dedup_entry *old = &d->e[d->head % d->cap];
        bool full = d->tail - d->head >= d->cap || d->bytes > d->bytes_max;
        bool expired = now_ms - old->at_ms > d->ttl_ms;
        if (!full && !expired) break;
        if (old->state == WX_DEDUP_PENDING) return !full;
        drop_oldest(d);
    }
    return true;
}

enum wx_dedup_state wx_dedup_begin(wx_dedup_t *d, const void *key, size_t len, int64_t now_ms,
                                   uint32_t *slot, const uint8_t **reply, size_t *reply_len)
{
    uint8_t h[16];
    uint64_t k[2];
    wx_siphash128(d->seed, key, len, h);
    memcpy(k, h, sizeof k);
    for (uint32_t i = d->bucket[bucket_of(d, k[0])]; i != 0; i = d->e[i - 1].next) {
        const struct dedup_entry *x = &d->e[i - 1];
        if (x->k0 == k[0] && x->k1 == k[1] && now_ms - x->at_ms <= d->ttl_ms) {
            *slot = i - 1;
            *reply = x->reply;
            *reply_len = x->len;
            return (enum wx_dedup_state)x->state;
        }
    }
    if (!make_room(d, now_ms)) return WX_DEDUP_FULL;
    uint32_t idx = (uint32_t)(d->tail % d->cap);
    struct dedup_entry *x = &d->e[idx];
    *x = (struct dedup_entry){.k0 = k[0], .k1 = k[1], .at_ms = now_ms, .state = WX_DEDUP_PENDING};
    uint32_t *b = &d->bucket[bucket_of(d, k[0])];
    x->next = *b;
    *b = idx + 1;
    d->tail++;
    *slot = idx;
    return WX_DEDUP_NEW;
}

void wx_dedup_finish(wx_dedup_t *d, uint32_t slot, const void *reply, size_t len)
{
    struct dedup_entry *x = &d->e[slot];
    assert(x->state == WX_DEDUP_PENDING && len <= UINT32_MAX);
    x->reply = len > 0 ? wx_malloc(len) : NULL;
    if (len > 0) memcpy(x->reply, reply, len);
    x->len = (uint32_t)len;
    x->state = WX_DEDUP_DONE;
    d->bytes += len;
}

void wx_dedup_forget(wx_dedup_t *d, uint32_t slot)
{
    struct dedup_entry *x = &d->e[slot];
    assert(x->state == WX_DEDUP_PENDING);
    /* Keep the entry in the ring (it cannot leave out of order) but make it match nothing:
     * a retry is processed afresh. */
    x->k1 = ~x->k1; /* k0 picks the chain, so it stays: drop_oldest finds the entry there */
    x->state = WX_DEDUP_DONE;
}

size_t wx_dedup_count(const wx_dedup_t *d)
{
    return (size_t)(d->tail - d->head);
}
