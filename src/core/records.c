/*
 * records.c - what the engine remembers per command key, and how it forgets.
 *
 * A record holds the first answer to a key (so a repeat gets it again) and, for approvals,
 * the hold or posting the command made (so captures and reversals can find it by the
 * original's key). Records live in a slab; two FIFOs in decision order forget them: plain
 * answers after idempotency_hours, holds and postings after reference_days. Holds also sit in
 * a min-heap by expiry. Engine time only moves forward, so FIFO order is time order, and
 * everything here is a pure function of the commands: replay forgets exactly the same.
 */
#include "core/engine_int.h"

#include <assert.h>
#include <string.h>

#include <stdlib.h>

#include "util/alloc.h"

#define MS_PER_HOUR 3600000LL
#define MS_PER_DAY  86400000LL

void wx_fifo_init(struct wx_fifo *f)
{
    f->cap = 1024;
    f->items = wx_calloc(f->cap, sizeof *f->items);
    f->head = f->tail = 0;
}

static void fifo_push(struct wx_fifo *f, uint32_t item)
{
    if (f->tail - f->head == f->cap) {
        uint32_t *items = wx_calloc(f->cap * 2, sizeof *items);
        for (uint64_t i = f->head; i < f->tail; i++) {
            items[i - f->head] = f->items[i & (f->cap - 1)];
        }
        free(f->items);
        f->items = items;
        f->tail -= f->head;
        f->head = 0;
        f->cap *= 2;
    }
    f->items[f->tail++ & (f->cap - 1)] = item;
}

static bool fifo_peek(const struct wx_fifo *f, uint32_t *item)
{
    if (f->head == f->tail) {
        return false;
    }
    *item = f->items[f->head & (f->cap - 1)];
    return true;
}

static bool expiry_before(const struct wx_expiry *a, const struct wx_expiry *b)
{
    return a->expires_ms < b->expires_ms || (a->expires_ms == b->expires_ms && a->seq < b->seq);
}

static void heap_push(struct wx_engine *e, struct wx_expiry x)
{
    if (e->n_heap == e->cap_heap) {
        e->cap_heap = e->cap_heap ? e->cap_heap * 2 : 1024;
        e->heap = wx_reallocarray(e->heap, e->cap_heap, sizeof *e->heap);
    }
    uint32_t i = e->n_heap++;
    while (i > 0 && expiry_before(&x, &e->heap[(i - 1) / 2])) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = x;
}

static void heap_pop(struct wx_engine *e)
{
    assert(e->n_heap > 0);
    struct wx_expiry last = e->heap[--e->n_heap];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= e->n_heap) {
            break;
        }
        if (c + 1 < e->n_heap && expiry_before(&e->heap[c + 1], &e->heap[c])) {
            c++;
        }
        if (!expiry_before(&e->heap[c], &last)) {
            break;
        }
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (e->n_heap > 0) {
        e->heap[i] = last;
    }
}

struct wx_record *wx_record_find(struct wx_engine *e, const uint8_t key[WX_REF_LEN])
{
    uint32_t idx = wx_index_find(&e->record_ix, key);
    return idx == UINT32_MAX ? NULL : &e->records[idx];
}

struct wx_record *wx_record_find_key(struct wx_engine *e, const char *key, size_t len)
{
    uint8_t h[WX_REF_LEN];
    wx_key_hash(e, key, len, h);
    return wx_record_find(e, h);
}

static uint32_t record_alloc(struct wx_engine *e)
{
    uint32_t idx;
    if (e->free_head != 0) {
        idx = e->free_head - 1;
        e->free_head = e->records[idx].next_free;
    } else {
        if (e->n_records_used == e->cap_records) {
            e->cap_records = e->cap_records ? e->cap_records * 2 : 4096;
            e->records = wx_reallocarray(e->records, e->cap_records, sizeof *e->records);
            wx_advise_huge(e->records, (size_t)e->cap_records * sizeof *e->records);
        }
        idx = e->n_records_used++;
    }
    memset(&e->records[idx], 0, sizeof e->records[idx]);
    e->live_records++;
    return idx;
}

static bool long_lived(uint8_t kind)
{
    return kind == WX_REC_HOLD || kind == WX_REC_POSTING || kind == WX_REC_TOMBSTONE;
}

static struct wx_record *record_insert(struct wx_engine *e, const uint8_t key[WX_REF_LEN],
                                       uint8_t kind)
{
    uint32_t idx = record_alloc(e);
    struct wx_record *r = &e->records[idx];
    memcpy(r->key, key, WX_REF_LEN);
    r->kind = kind;
    wx_index_insert(&e->record_ix, r->key, idx);
    fifo_push(long_lived(kind) ? &e->long_fifo : &e->short_fifo, idx);
    return r;
}

/* Remembers the answer of a journaled decision under its key, with its hold or posting. */
void wx_record_remember(struct wx_decision *d)
{
    struct wx_engine *e = d->e;
    uint8_t kind = d->rec_kind ? d->rec_kind : WX_REC_ANSWER;
    struct wx_record *r;
    if (d->tombstone != NULL) {
        /* The late original, declined: its answer takes the tombstone's slot so that a repeat
         * is answered rather than decided (and journaled) again. The slot keeps its place and
         * time in the retention FIFO, which keeps forgetting in time order. */
        assert(kind == WX_REC_ANSWER);
        assert(d->res->reason == WX_R_ALREADY_REVERSED);
        r = d->tombstone;
        r->kind = kind;
        r->flags = 0;
    } else {
        r = record_insert(e, d->key_hash, kind);
        r->at_ms = d->now;
    }
    r->fingerprint = d->fingerprint;
    r->seq = d->seq;
    r->cmd_kind = d->cmd->kind;
    r->reason = d->res->reason;
    r->approval = d->res->approval;
    r->id = d->res->id;
    r->account = d->res->account_id;
    r->amount = d->res->amount;
    r->available = d->res->available;
    r->card = d->rec_card;
    r->mcc = d->rec_mcc;
    if (kind == WX_REC_HOLD || kind == WX_REC_POSTING) {
        assert(d->rec_total > 0);
        r->total = d->rec_total;
        r->open = d->rec_total;
    }
    if (kind == WX_REC_HOLD) {
        r->expires_ms = d->rec_expires_ms;
        e->open_holds++;
        heap_push(e, (struct wx_expiry){.expires_ms = r->expires_ms,
                                        .seq = r->seq,
                                        .rec = (uint32_t)(r - e->records)});
    }
}

/* Remembers that the command keyed `orig` was reversed before it arrived. */
struct wx_record *wx_record_tombstone(struct wx_decision *d, const char *orig, size_t len)
{
    uint8_t h[WX_REF_LEN];
    wx_key_hash(d->e, orig, len, h);
    assert(wx_record_find(d->e, h) == NULL);
    struct wx_record *r = record_insert(d->e, h, WX_REC_TOMBSTONE);
    r->seq = d->seq;
    r->at_ms = d->now;
    r->cmd_kind = d->cmd->kind;
    r->flags = WX_REC_CLOSED | WX_REC_REVERSED;
    return r;
}

/* Releases `amount` of an open hold; closes it when nothing is left. */
void wx_hold_release(struct wx_engine *e, struct wx_record *hold, int64_t amount)
{
    assert(hold->kind == WX_REC_HOLD);
    assert(!(hold->flags & WX_REC_CLOSED));
    assert(amount >= 0 && amount <= hold->open);
    struct wx_account *a = wx_account_get(e, hold->account);
    assert(a != NULL && a->held >= amount);
    a->held -= amount;
    hold->open -= amount;
    if (hold->open == 0) {
        hold->flags |= WX_REC_CLOSED;
        assert(e->open_holds > 0);
        e->open_holds--;
    }
}

static bool expiry_due(const struct wx_engine *e, int64_t now)
{
    return e->n_heap > 0 && e->heap[0].expires_ms <= now;
}

static bool forget_due(const struct wx_engine *e, const struct wx_fifo *f, int64_t keep_ms,
                       int64_t now)
{
    uint32_t idx;
    if (!fifo_peek(f, &idx)) {
        return false;
    }
    const struct wx_record *r = &e->records[idx];
    /* An open hold is never forgotten; it expires first (reference_days > hold days). */
    if (r->kind == WX_REC_HOLD && !(r->flags & WX_REC_CLOSED)) {
        return false;
    }
    return r->at_ms + keep_ms <= now;
}

static void expire_one(struct wx_engine *e)
{
    struct wx_expiry x = e->heap[0];
    heap_pop(e);
    struct wx_record *r = &e->records[x.rec];
    if (r->kind != WX_REC_HOLD || r->seq != x.seq || (r->flags & WX_REC_CLOSED)) {
        return; /* captured or reversed in full before it could lapse */
    }
    r->flags |= WX_REC_EXPIRED;
    wx_hold_release(e, r, r->open);
}

static void forget_one(struct wx_engine *e, struct wx_fifo *f)
{
    uint32_t idx = f->items[f->head++ & (f->cap - 1)];
    struct wx_record *r = &e->records[idx];
    wx_index_remove(&e->record_ix, r->key, idx);
    memset(r, 0, sizeof *r);
    r->kind = WX_REC_FREE;
    r->next_free = e->free_head;
    e->free_head = idx + 1;
    assert(e->live_records > 0);
    e->live_records--;
}

/* Time passes: lapse due holds, forget due records. A tick with nothing due changes
 * nothing and is not journaled, so idle ticks cost no journal rows. */
enum wx_outcome wx_do_tick(struct wx_decision *d)
{
    struct wx_engine *e = d->e;
    int64_t short_ms = (int64_t)e->cfg.idempotency_hours * MS_PER_HOUR;
    int64_t long_ms = (int64_t)e->cfg.reference_days * MS_PER_DAY;
    bool any = expiry_due(e, d->now) || forget_due(e, &e->short_fifo, short_ms, d->now) ||
               forget_due(e, &e->long_fifo, long_ms, d->now);
    if (!any) {
        d->res->reason = WX_APPROVED;
        return WX_ANSWERED;
    }
    uint32_t work = 0;
    for (; work < WX_TICK_WORK_MAX && expiry_due(e, d->now); work++) {
        expire_one(e);
    }
    for (; work < WX_TICK_WORK_MAX && forget_due(e, &e->short_fifo, short_ms, d->now); work++) {
        forget_one(e, &e->short_fifo);
    }
    for (; work < WX_TICK_WORK_MAX && forget_due(e, &e->long_fifo, long_ms, d->now); work++) {
        forget_one(e, &e->long_fifo);
    }
    d->res->reason = WX_APPROVED;
    d->res->amount = work;
    return WX_DECIDED;
}
