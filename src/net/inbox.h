/*
 * inbox.h - work handed to a loop's thread from other threads (internal to src/net).
 *
 * A mutex-guarded FIFO of intrusive tasks and an eventfd on the receiving loop. Posting to
 * an empty inbox writes the eventfd once; the loop takes everything waiting in one go, so a
 * busy loop pays one wake-up per batch, not per task.
 */
#ifndef WX_NET_INBOX_H
#define WX_NET_INBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <event2/event_struct.h>

#include "net/net.h"

struct wx_inbox {
    pthread_mutex_t lock;
    struct wx_hub_task *head, **tail;
    int efd;
    atomic_bool signalled; /* efd was written and the loop has not yet read it */
    struct event ev;
    bool armed; /* ev is added */
};

/* Creates the eventfd and adds its event to base. 0, or -1 with errno. */
int wx_inbox_init(struct wx_inbox *ib, struct event_base *base);

/* Runs every waiting task with cancelled = true (nothing else may post any more), then
 * releases the eventfd. */
void wx_inbox_close(struct wx_inbox *ib);

/* Runs every waiting task with cancelled = true; the inbox stays open. */
void wx_inbox_discard(struct wx_inbox *ib);

/* Any thread. The wake-up may be deferred (below). */
void wx_inbox_post(struct wx_inbox *ib, struct wx_hub_task *t);

/* Any thread; wakes the receiver now. */
void wx_inbox_post_now(struct wx_inbox *ib, struct wx_hub_task *t);

/*
 * A loop thread that posts many tasks in one turn wakes each receiver once, at the end of
 * the turn, instead of once per task: between begin and end (on the loop's thread, around
 * its dispatch), wx_inbox_post from that thread defers its wake-ups to an event that runs
 * after the turn's other callbacks. Wake-ups are what the hand-over costs: a write and a
 * context switch each.
 */
#define WX_WAKE_OWED_MAX 20

struct wx_wake_batch {
    struct event ev;
    struct wx_inbox *owed[WX_WAKE_OWED_MAX];
    unsigned n;
};

void wx_wake_batch_begin(struct wx_wake_batch *b, struct event_base *base);
void wx_wake_batch_end(struct wx_wake_batch *b);

#endif
