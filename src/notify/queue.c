/*
 * queue.c - where the dispatcher's sends wait: one queue per card and channel (a card's
 * WeChat messages go in order, and so do its SMS), the ready list (sends free to go as soon as a slot is), the retry heap (sends
 * waiting for their next try), and the watches on WeChat's delivery reports that decide
 * whether an SMS must follow.
 */
#include "notify/dispatch_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ---- per-card queues ---------------------------------------------------------------------- */

static size_t card_bucket(const struct wx_notify *n, uint32_t card_id, uint8_t lane)
{
    return (size_t)(((card_id * 2u + lane) * 0x9E3779B1u) & (n->nbuckets - 1));
}

static struct cardq **card_slot(struct wx_notify *n, uint32_t card_id, uint8_t lane)
{
    struct cardq **p = &n->buckets[card_bucket(n, card_id, lane)];
    while (*p != NULL && ((*p)->card_id != card_id || (*p)->lane != lane))
        p = &(*p)->next_bucket;
    return p;
}

static void cards_grow(struct wx_notify *n)
{
    size_t old = n->nbuckets;
    struct cardq **ob = n->buckets;
    n->nbuckets = old ? old * 2 : 1024;
    n->buckets = wx_calloc(n->nbuckets, sizeof *n->buckets);
    for (size_t i = 0; i < old; i++) {
        for (struct cardq *q = ob[i], *next; q != NULL; q = next) {
            next = q->next_bucket;
            struct cardq **slot = &n->buckets[card_bucket(n, q->card_id, q->lane)];
            q->next_bucket = *slot;
            *slot = q;
        }
    }
    free(ob);
}

/* A send joins the list of those ready to go. */
void disp_ready_push(struct wx_notify *n, struct send *s)
{
    s->next_ready = NULL;
    if (n->ready_tail != NULL) {
        n->ready_tail->next_ready = s;
    } else {
        n->ready_head = s;
    }
    n->ready_tail = s;
}

/* Starts a job's sends: they join the ready list. */
static void job_start(struct wx_notify *n, struct job *j)
{
    for (unsigned i = 0; i < j->nsends; i++) {
        struct send *s = &j->sends[i];
        if (s->settled) continue;
        disp_ready_push(n, s);
    }
}

/* A job joins its card's queue; it starts at once when the card has nothing in flight. */
void disp_card_enqueue(struct wx_notify *n, struct job *j)
{
    if (n->ncards >= n->nbuckets) cards_grow(n);
    struct cardq **slot = card_slot(n, j->a.card_id, j->lane);
    if (*slot == NULL) {
        struct cardq *q = wx_calloc(1, sizeof *q);
        q->card_id = j->a.card_id;
        q->lane = j->lane;
        *slot = q;
        n->ncards++;
    }
    struct cardq *q = *slot;
    j->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = j;
        q->tail = j;
        return;
    }
    q->head = q->tail = j;
    job_start(n, j);
}

/* The card's head job is done: the next one starts. */
void disp_card_advance(struct wx_notify *n, struct job *j)
{
    struct cardq **slot = card_slot(n, j->a.card_id, j->lane);
    struct cardq *q = *slot;
    assert(q != NULL && q->head == j);
    q->head = j->next;
    if (q->head == NULL) {
        *slot = q->next_bucket;
        free(q);
        n->ncards--;
        return;
    }
    job_start(n, q->head);
}

/* ---- the retry heap ------------------------------------------------------------------------ */

static void heap_swap(struct wx_notify *n, size_t a, size_t b)
{
    struct send *t = n->heap[a];
    n->heap[a] = n->heap[b];
    n->heap[b] = t;
    n->heap[a]->heap_ix = a;
    n->heap[b]->heap_ix = b;
}

static void heap_up(struct wx_notify *n, size_t i)
{
    while (i > 0 && n->heap[(i - 1) / 2]->due_ms > n->heap[i]->due_ms) {
        heap_swap(n, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct wx_notify *n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n->heap_n && n->heap[l]->due_ms < n->heap[m]->due_ms) m = l;
        if (r < n->heap_n && n->heap[r]->due_ms < n->heap[m]->due_ms) m = r;
        if (m == i) return;
        heap_swap(n, i, m);
        i = m;
    }
}

static void arm_retry(struct wx_notify *n)
{
    if (n->heap_n == 0) {
        evtimer_del(n->retry_ev);
        return;
    }
    int64_t wait = n->heap[0]->due_ms - wx_now_ms();
    if (wait < 0) wait = 0;
    struct timeval tv = {.tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000};
    evtimer_add(n->retry_ev, &tv);
}

void disp_heap_push(struct wx_notify *n, struct send *s)
{
    if (n->heap_n == n->heap_cap) {
        n->heap_cap = n->heap_cap ? n->heap_cap * 2 : 256;
        n->heap = wx_reallocarray(n->heap, n->heap_cap, sizeof *n->heap);
    }
    s->heap_ix = n->heap_n;
    n->heap[n->heap_n++] = s;
    heap_up(n, s->heap_ix);
    if (s->heap_ix == 0) arm_retry(n);
}

static struct send *heap_pop(struct wx_notify *n)
{
    struct send *s = n->heap[0];
    n->heap_n--;
    if (n->heap_n > 0) {
        n->heap[0] = n->heap[n->heap_n];
        n->heap[0]->heap_ix = 0;
        heap_down(n, 0);
    }
    s->heap_ix = SIZE_MAX;
    return s;
}

void disp_on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wx_notify *n = arg;
    int64_t now = wx_now_ms();
    while (n->heap_n > 0 && n->heap[0]->due_ms <= now) {
        struct send *s = heap_pop(n);
        disp_ready_push(n, s);
    }
    arm_retry(n);
    disp_pump(n);
}

/* ---- delivery watches ---------------------------------------------------------------------- */

static size_t wref_bucket(const struct wx_notify *n, uint64_t msgid)
{
    return (size_t)((msgid * 0x9E3779B97F4A7C15ull) >> 20) & (n->nwbuckets - 1);
}

static void wrefs_grow(struct wx_notify *n)
{
    size_t old = n->nwbuckets;
    struct watch_ref **ob = n->wbuckets;
    n->nwbuckets = old ? old * 2 : 1024;
    n->wbuckets = wx_calloc(n->nwbuckets, sizeof *n->wbuckets);
    for (size_t i = 0; i < old; i++) {
        for (struct watch_ref *r = ob[i], *next; r != NULL; r = next) {
            next = r->next_bucket;
            struct watch_ref **slot = &n->wbuckets[wref_bucket(n, r->msgid)];
            r->next_bucket = *slot;
            *slot = r;
        }
    }
    free(ob);
}

static struct watch_ref **wref_slot(struct wx_notify *n, uint64_t msgid)
{
    struct watch_ref **p = &n->wbuckets[wref_bucket(n, msgid)];
    while (*p != NULL && (*p)->msgid != msgid)
        p = &(*p)->next_bucket;
    return p;
}

static void arm_watch(struct wx_notify *n)
{
    if (n->watch_head == NULL) {
        evtimer_del(n->watch_ev);
        return;
    }
    int64_t wait = n->watch_head->deadline_ms - wx_now_ms();
    if (wait < 0) wait = 0;
    struct timeval tv = {.tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000};
    evtimer_add(n->watch_ev, &tv);
}

/* Starts watching rows (the holder's accepted template messages of alert seq). */
void disp_watch_begin(struct wx_notify *n, uint64_t seq, const struct wx_send_row *rows,
                      unsigned count, int64_t since_ms)
{
    assert(count > 0 && count <= WX_FOLLOWERS_PER_CUSTOMER);
    struct watch *w = wx_calloc(1, sizeof *w + count * sizeof w->items[0]);
    w->seq = seq;
    w->deadline_ms = since_ms + n->opt.sms_fallback_ms;
    w->n = w->waiting = count;
    for (unsigned i = 0; i < count; i++) {
        if (n->nwatch_refs >= n->nwbuckets) wrefs_grow(n);
        struct watch_item *it = &w->items[i];
        it->ref = (struct watch_ref){.msgid = rows[i].msgid, .w = w, .ix = i};
        it->first_ms = rows[i].first_ms;
        it->attempts = rows[i].attempts;
        it->waiting = true;
        memcpy(it->to, rows[i].to, sizeof it->to);
        struct watch_ref **slot = &n->wbuckets[wref_bucket(n, it->ref.msgid)];
        it->ref.next_bucket = *slot;
        *slot = &it->ref;
        n->nwatch_refs++;
    }
    /* Deadlines mostly come in order; a restart's older ones go to the front. */
    struct watch *after = n->watch_tail;
    while (after != NULL && after->deadline_ms > w->deadline_ms)
        after = after->prev;
    w->prev = after;
    w->next = after != NULL ? after->next : n->watch_head;
    if (w->next != NULL) {
        w->next->prev = w;
    } else {
        n->watch_tail = w;
    }
    if (after != NULL) {
        after->next = w;
    } else {
        n->watch_head = w;
        arm_watch(n);
    }
}

void disp_watch_end(struct wx_notify *n, struct watch *w)
{
    for (unsigned i = 0; i < w->n; i++) {
        struct watch_ref *ref = &w->items[i].ref;
        struct watch_ref **slot = wref_slot(n, ref->msgid);
        while (*slot != NULL && *slot != ref)
            slot = &(*slot)->next_bucket;
        if (*slot != NULL) {
            *slot = ref->next_bucket;
            n->nwatch_refs--;
        }
    }
    bool was_head = n->watch_head == w;
    if (w->prev != NULL) w->prev->next = w->next;
    if (w->next != NULL) w->next->prev = w->prev;
    if (n->watch_head == w) n->watch_head = w->next;
    if (n->watch_tail == w) n->watch_tail = w->prev;
    free(w);
    if (was_head) arm_watch(n);
}

/* A watched message's fate is known: its row is recorded as no longer watched. */
static void watch_row_done(struct wx_notify *n, struct watch *w, unsigned ix, uint8_t state,
                           const char *why)
{
    struct watch_item *it = &w->items[ix];
    if (!it->waiting) return;
    it->waiting = false;
    w->waiting--;
    struct wx_send_row r = {.seq = w->seq,
                            .channel = WX_SEND_WECHAT,
                            .state = state,
                            .attempts = it->attempts,
                            .msgid = it->ref.msgid,
                            .first_ms = it->first_ms,
                            .updated_ms = wx_now_ms()};
    snprintf(r.error, sizeof r.error, "%s", why);
    memcpy(r.to, it->to, sizeof r.to);
    outbox_put(n->outbox, &r);
    n->pending_rows = true;
}

void wx_notify_template_finished(wx_notify_t *n, const char *openid, uint64_t msgid,
                                 const char *status)
{
    bool ok = strcmp(status, "success") == 0;
    if (ok) n->stats.delivered++;
    if (n->nwbuckets == 0) return;
    struct watch_ref *ref = *wref_slot(n, msgid);
    if (ref == NULL || strcmp(ref->w->items[ref->ix].to, openid) != 0) return;
    struct watch *w = ref->w;
    watch_row_done(n, w, ref->ix, ok ? WX_SEND_DELIVERED : WX_SEND_FAILED, ok ? "" : status);
    if (ok) {
        /* Delivered to one of the holder's phones: the others need no SMS either. */
        for (unsigned i = 0; i < w->n; i++)
            watch_row_done(n, w, i, WX_SEND_ACCEPTED, "");
        disp_watch_end(n, w);
    } else if (w->waiting == 0) {
        uint64_t seq = w->seq;
        disp_watch_end(n, w);
        disp_sms_fallback(n, seq, status);
        disp_pump(n);
    }
}

void disp_on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wx_notify *n = arg;
    int64_t now = wx_now_ms();
    while (n->watch_head != NULL && n->watch_head->deadline_ms <= now) {
        struct watch *w = n->watch_head;
        for (unsigned i = 0; i < w->n; i++)
            watch_row_done(n, w, i, WX_SEND_UNDELIVERED, "no delivery report in time");
        uint64_t seq = w->seq;
        disp_watch_end(n, w);
        disp_sms_fallback(n, seq, "no delivery report in time");
    }
    arm_watch(n);
    disp_pump(n);
}
