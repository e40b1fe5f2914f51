/*
 * inbox.c - tasks posted to a loop from other threads.
 */
#include "net/inbox.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/log.h"

/* Takes the whole list under the lock, and runs it outside. */
static struct wx_hub_task *take_all(struct wx_inbox *ib)
{
    pthread_mutex_lock(&ib->lock);
    struct wx_hub_task *t = ib->head;
    ib->head = NULL;
    ib->tail = &ib->head;
    pthread_mutex_unlock(&ib->lock);
    return t;
}

static void run_all(struct wx_hub_task *t, bool cancelled)
{
    while (t != NULL) {
        struct wx_hub_task *next = t->next; /* run may free t */
        t->next = NULL;
        t->run(t, cancelled);
        t = next;
    }
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct wx_inbox *ib = arg;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN) {
        WX_FATAL("inbox: eventfd read: %s", strerror(errno));
    }
    /* Cleared after the read (cleared before it, a write that the read then swallows would
     * leave the flag set with no wake-up coming: the next poster would wait forever) and
     * before the take: a poster that still finds it set posted before the take, and one
     * that finds it clear writes again. */
    atomic_store(&ib->signalled, false);
    run_all(take_all(ib), false);
}

int wx_inbox_init(struct wx_inbox *ib, struct event_base *base)
{
    ib->head = NULL;
    ib->tail = &ib->head;
    atomic_init(&ib->signalled, false);
    ib->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ib->efd < 0) return -1;
    pthread_mutex_init(&ib->lock, NULL);
    event_assign(&ib->ev, base, ib->efd, EV_READ | EV_PERSIST, on_ready, ib);
    if (event_add(&ib->ev, NULL) != 0) {
        close(ib->efd);
        pthread_mutex_destroy(&ib->lock);
        return -1;
    }
    ib->armed = true;
    return 0;
}

void wx_inbox_discard(struct wx_inbox *ib)
{
    if (ib->armed) run_all(take_all(ib), true);
}

void wx_inbox_close(struct wx_inbox *ib)
{
    if (!ib->armed) return;
    run_all(take_all(ib), true);
    event_del(&ib->ev);
    close(ib->efd);
    pthread_mutex_destroy(&ib->lock);
    ib->armed = false;
}

/* The batch of the loop running on this thread, if it defers its wake-ups. */
static _Thread_local struct wx_wake_batch *this_batch;

/* Writes the eventfd unless a write is already waiting for the loop to read it. */
static void wake(struct wx_inbox *ib)
{
    if (atomic_exchange(&ib->signalled, true)) return;
    uint64_t one = 1;
    while (write(ib->efd, &one, sizeof one) < 0) {
        if (errno != EINTR) WX_FATAL("inbox: eventfd write: %s", strerror(errno));
    }
}

static void wake_owed(struct wx_wake_batch *b)
{
    for (unsigned i = 0; i < b->n; i++)
        wake(b->owed[i]);
    b->n = 0;
}

static void on_batch_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wake_owed(arg);
}

void wx_wake_batch_begin(struct wx_wake_batch *b, struct event_base *base)
{
    assert(this_batch == NULL);
    b->n = 0;
    event_assign(&b->ev, base, -1, 0, on_batch_end, b);
    this_batch = b;
}

void wx_wake_batch_end(struct wx_wake_batch *b)
{
    assert(this_batch == b);
    event_del(&b->ev);
    wake_owed(b);
    this_batch = NULL;
}

/* An inbox with a new task needs a wake-up: now, or at the end of this loop's turn. (Only
 * an eventfd actually written excuses a poster: one merely owed by another thread could be
 * late by that thread's whole turn.) */
static void owe(struct wx_inbox *ib)
{
    struct wx_wake_batch *b = this_batch;
    if (b == NULL) {
        wake(ib);
        return;
    }
    for (unsigned i = 0; i < b->n; i++) {
        if (b->owed[i] == ib) return;
    }
    if (b->n == WX_WAKE_OWED_MAX) {
        wake(ib);
        return;
    }
    if (b->n == 0) event_active(&b->ev, EV_TIMEOUT, 0);
    b->owed[b->n++] = ib;
}

static void append(struct wx_inbox *ib, struct wx_hub_task *t)
{
    assert(ib->armed);
    t->next = NULL;
    pthread_mutex_lock(&ib->lock);
    *ib->tail = t;
    ib->tail = &t->next;
    pthread_mutex_unlock(&ib->lock);
}

void wx_inbox_post(struct wx_inbox *ib, struct wx_hub_task *t)
{
    append(ib, t);
    if (!atomic_load(&ib->signalled)) owe(ib);
}

void wx_inbox_post_now(struct wx_inbox *ib, struct wx_hub_task *t)
{
    append(ib, t);
    wake(ib);
}
