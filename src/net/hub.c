/*
 * hub.c - the serving loop: durability notifications, the once-per-turn flush, signals and
 * the shutdown every adapter takes part in.
 *
 * Durability drives the answers: the ledger's notify fd (an eventfd) becomes readable after
 * each group commit, and every adapter then releases what waited for it. Submitting marks the
 * loop turn; a zero-delay event activated then runs after the turn's other callbacks and
 * hands the turn's rows to the committer in one flush.
 */
#include "net/net.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "ledger/ledger.h"
#include "net/inbox.h"
#include "util/alloc.h"
#include "util/log.h"

#define SHUTDOWN_DRAIN_SEC 2   /* longest wait for adapters to hand out what they owe */
#define SHUTDOWN_FLUSH_MS  100 /* then for the last answers to be written */

struct wx_hub {
    struct event_base *base;
    struct wx_ledger *ledger; /* NULL: a process that decides nothing */
    const wx_keys_t *keys;
    struct event *notify_ev; /* the ledger's group-commit eventfd */
    struct event *flush_ev;  /* activated once per loop turn that submitted something */
    struct event *signal_ev[2];
    struct wx_inbox inbox; /* tasks from other threads */
    struct wx_wake_batch wakes;
    pthread_t thread;    /* the loop's, while running */
    atomic_bool running; /* in wx_hub_run */
    struct wx_hub_adapter adapters[WX_HUB_ADAPTERS_MAX];
    unsigned nadapters;
    bool flush_scheduled;
    bool stopping;
    bool done; /* wx_hub_run returned: adapters are being freed, nothing is settled */
};

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct wx_hub *h = arg;
    uint64_t n;
    /* Drain the eventfd before reading durable_seq, so no commit goes unnoticed. */
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN) {
        WX_WARN("hub: ledger notify fd: %s", strerror(errno));
    }
    uint64_t durable = wx_ledger_durable_seq(h->ledger);
    for (unsigned i = 0; i < h->nadapters; i++) {
        if (h->adapters[i].durable != NULL) h->adapters[i].durable(h->adapters[i].arg, durable);
    }
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wx_hub *h = arg;
    h->flush_scheduled = false;
    wx_ledger_flush(h->ledger);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    WX_INFO("signal %d: shutting down", (int)sig);
    wx_hub_stop(arg);
}

/*
 * The loop's event_base. With epoll, the changelist batches a turn's interest changes into
 * one epoll_ctl per descriptor when the turn ends: bufferevents (the ISO 8583 server) turn
 * reading and writing on and off several times per request, and most of those changes
 * cancel out within the turn (half the epoll_ctl calls of a request go). libevent's caveat for it
 * is descriptors cloned with dup(), which nothing here uses; a descriptor closed and reopened
 * within a turn is handled (libevent retries a MOD that fails with ENOENT as an ADD).
 */
static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    if (cfg == NULL) return NULL;
    struct event_base *base = NULL;
    if (event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0) {
        base = event_base_new_with_config(cfg);
    }
    event_config_free(cfg);
    return base;
}

wx_hub_t *wx_hub_new(struct wx_ledger *ledger, const wx_keys_t *keys, char *err, size_t errlen)
{
    struct wx_hub *h = wx_calloc(1, sizeof *h);
    h->ledger = ledger;
    h->keys = keys;
    h->base = new_base();
    if (h->base == NULL) {
        snprintf(err, errlen, "libevent: cannot create the event loop");
        free(h);
        return NULL;
    }
    bool ok = true;
    if (ledger != NULL) {
        h->notify_ev =
            event_new(h->base, wx_ledger_notify_fd(ledger), EV_READ | EV_PERSIST, on_notify, h);
        h->flush_ev = event_new(h->base, -1, 0, on_flush, h);
        ok = h->notify_ev != NULL && h->flush_ev != NULL && event_add(h->notify_ev, NULL) == 0;
    }
    ok = ok && wx_inbox_init(&h->inbox, h->base) == 0;
    h->signal_ev[0] = evsignal_new(h->base, SIGINT, on_signal, h);
    h->signal_ev[1] = evsignal_new(h->base, SIGTERM, on_signal, h);
    ok = ok && h->signal_ev[0] != NULL && h->signal_ev[1] != NULL &&
         event_add(h->signal_ev[0], NULL) == 0 && event_add(h->signal_ev[1], NULL) == 0;
    if (!ok) {
        snprintf(err, errlen, "libevent: cannot register events");
        wx_hub_free(h);
        return NULL;
    }
    /* A peer that hangs up must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return h;
}

void wx_hub_free(wx_hub_t *h)
{
    if (h == NULL) return;
    wx_inbox_close(&h->inbox);
    for (int i = 0; i < 2; i++) {
        if (h->signal_ev[i] != NULL) event_free(h->signal_ev[i]);
    }
    if (h->flush_ev != NULL) event_free(h->flush_ev);
    if (h->notify_ev != NULL) event_free(h->notify_ev);
    event_base_free(h->base);
    free(h);
}

void wx_hub_attach(wx_hub_t *h, const struct wx_hub_adapter *a)
{
    assert(h->nadapters < WX_HUB_ADAPTERS_MAX);
    h->adapters[h->nadapters++] = *a;
}

struct event_base *wx_hub_base(const wx_hub_t *h)
{
    return h->base;
}
struct wx_ledger *wx_hub_ledger(const wx_hub_t *h)
{
    return h->ledger;
}
const wx_keys_t *wx_hub_keys(const wx_hub_t *h)
{
    return h->keys;
}

const wx_engine_t *wx_hub_engine(const wx_hub_t *h)
{
    return h->ledger != NULL ? wx_ledger_engine(h->ledger) : NULL;
}

uint64_t wx_hub_read_seq(const wx_hub_t *h)
{
    assert(h->ledger != NULL);
    return wx_engine_last_seq(wx_ledger_engine(h->ledger));
}

bool wx_hub_is_durable(const wx_hub_t *h, uint64_t seq)
{
    return h->ledger == NULL || seq <= wx_ledger_durable_seq(h->ledger);
}

uint64_t wx_hub_submit(wx_hub_t *h, const struct wx_cmd *cmd, struct wx_result *res)
{
    assert(h->ledger != NULL && !h->stopping);
    wx_ledger_submit(h->ledger, cmd, res);
    if (res->journaled && !res->repeat) {
        for (unsigned i = 0; i < h->nadapters; i++) {
            if (h->adapters[i].decided != NULL)
                h->adapters[i].decided(h->adapters[i].arg, cmd, res);
        }
    }
    uint64_t seq = res->journaled ? res->seq : wx_hub_read_seq(h);
    if (seq > wx_ledger_durable_seq(h->ledger) && !h->flush_scheduled) {
        h->flush_scheduled = true;
        event_active(h->flush_ev, EV_TIMEOUT, 0);
    }
    return seq;
}

void wx_hub_post(wx_hub_t *h, struct wx_hub_task *t)
{
    if (wx_hub_in_loop(h)) {
        t->next = NULL;
        t->run(t, false);
        return;
    }
    wx_inbox_post(&h->inbox, t);
}

void wx_hub_post_now(wx_hub_t *h, struct wx_hub_task *t)
{
    if (wx_hub_in_loop(h)) {
        t->next = NULL;
        t->run(t, false);
        return;
    }
    wx_inbox_post_now(&h->inbox, t);
}

bool wx_hub_in_loop(const wx_hub_t *h)
{
    return atomic_load(&h->running) && pthread_equal(pthread_self(), h->thread) != 0;
}

void wx_hub_discard_posted(wx_hub_t *h)
{
    wx_inbox_discard(&h->inbox);
}

static bool any_busy(const wx_hub_t *h)
{
    for (unsigned i = 0; i < h->nadapters; i++) {
        if (h->adapters[i].busy != NULL && h->adapters[i].busy(h->adapters[i].arg)) return true;
    }
    return false;
}

/* Leaves the loop once the answers just handed out are written: the listeners' writes are
 * queued in their buffers, and breaking the loop at once would drop them. */
static void leave_soon(wx_hub_t *h)
{
    struct timeval flush = {.tv_sec = 0, .tv_usec = SHUTDOWN_FLUSH_MS * 1000};
    event_base_loopexit(h->base, &flush);
}

void wx_hub_stop(wx_hub_t *h)
{
    if (h->stopping) return;
    h->stopping = true;
    for (unsigned i = 0; i < h->nadapters; i++) {
        if (h->adapters[i].stop != NULL) h->adapters[i].stop(h->adapters[i].arg);
    }
    if (h->ledger != NULL) {
        /* Make every decision durable now, so what the adapters owe can be handed out. */
        wx_ledger_sync(h->ledger, wx_hub_read_seq(h));
        uint64_t durable = wx_ledger_durable_seq(h->ledger);
        for (unsigned i = 0; i < h->nadapters; i++) {
            if (h->adapters[i].durable != NULL) h->adapters[i].durable(h->adapters[i].arg, durable);
        }
    }
    if (!any_busy(h)) {
        leave_soon(h);
        return;
    }
    struct timeval drain = {.tv_sec = SHUTDOWN_DRAIN_SEC, .tv_usec = 0};
    event_base_loopexit(h->base, &drain);
}

bool wx_hub_stopping(const wx_hub_t *h)
{
    return h->stopping;
}

void wx_hub_settle(wx_hub_t *h)
{
    if (h->stopping && !h->done && !any_busy(h)) leave_soon(h);
}

int wx_hub_run(wx_hub_t *h)
{
    h->thread = pthread_self();
    atomic_store(&h->running, true);
    wx_wake_batch_begin(&h->wakes, h->base);
    event_base_dispatch(h->base);
    wx_wake_batch_end(&h->wakes);
    atomic_store(&h->running, false);
    h->done = true;
    if (h->ledger != NULL) wx_ledger_flush(h->ledger);
    return 0;
}
