/*
 * queue.c - where the dispatcher's sends wait: one queue per card and channel (a card's
 * WeChat messages go in order, and so do its SMS), the ready list (sends free to go as soon as
 * a slot is), and the retry heap (sends waiting for their next try).
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

/* Records j's sends as pending: held behind a retrying job, it then no longer keeps the
 * outbox's watermark back (which would lengthen a restart's catch-up, and in a long outage
 * hold every card's alerts in memory). A restart reloads it with the other pending sends, in
 * order. Only while the platform fails: each such send is written twice. */
static void record_held(struct wx_notify *n, struct job *j)
{
    for (unsigned i = 0; i < j->nsends && j->unrecorded > 0; i++) {
        if (!j->sends[i].recorded) disp_record(n, &j->sends[i]);
    }
}

static bool waits_retry(const struct job *j)
{
    for (unsigned i = 0; i < j->nsends; i++) {
        if (j->sends[i].heap_ix != SIZE_MAX) return true;
    }
    return false;
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
        if (waits_retry(q->head)) record_held(n, j);
        return;
    }
    q->head = q->tail = j;
    job_start(n, j);
}

void disp_card_hold(struct wx_notify *n, struct job *j)
{
    struct cardq *q = *card_slot(n, j->a.card_id, j->lane);
    assert(q != NULL && q->head == j);
    for (struct job *h = j->next; h != NULL; h = h->next)
        record_held(n, h);
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
