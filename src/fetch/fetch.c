/*
 * fetch.c - the fetcher: libcurl's multi interface driven by the libevent loop, a bounded
 * first-come-first-served queue in front of it, and the one place callbacks are called.
 *
 * libcurl tells us, through CURLMOPT_SOCKETFUNCTION, which sockets to watch and for what,
 * and through CURLMOPT_TIMERFUNCTION when it next wants to be woken; we turn both into
 * libevent events and call curl_multi_socket_action when one fires (libcurl's "hiperfifo"
 * and "multi-event" examples). libcurl is only ever entered from those event callbacks, so
 * a callback never runs inside wx_fetch_start, and a callback may start new requests: we
 * are not inside libcurl when we call it.
 *
 * Requests beyond max_inflight wait in the queue rather than inside libcurl, so that
 * queueing is ours to bound, to count and to time out: a request's timeout runs from
 * wx_fetch_start, and one that waits too long fails without ever being sent.
 */
#include "fetch/fetch_int.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event_struct.h>

#include "util/alloc.h"
#include "util/log.h"

/* A socket libcurl asked us to watch. libcurl stops watching a connection while it sits idle
 * in the cache between transfers, so these come and go often: the event is in the block. */
struct fetch_sock {
    struct wx_fetch *f;
    struct event ev;                /* persistent, for what libcurl wants (read and/or write) */
    struct fetch_sock *prev, *next; /* f->socks */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

/* curl_global_init is not thread-safe in every libcurl build; once per process. */
static void global_init(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) WX_FATAL("fetch: curl_global_init: %s", curl_easy_strerror(rc));
}

double fetch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct timeval ms_to_timeval(long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* ======================================================================================
 * Lists
 * ====================================================================================== */

static void list_push(struct xfer_list *l, struct fetch_xfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail != NULL) {
        l->tail->next = x;
    } else {
        l->head = x;
    }
    l->tail = x;
}

static void list_remove(struct xfer_list *l, struct fetch_xfer *x)
{
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        l->head = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    } else {
        l->tail = x->prev;
    }
    x->prev = x->next = NULL;
}

/* ======================================================================================
 * Calling back
 * ====================================================================================== */

static void check_counts(const struct wx_fetch *f)
{
    const struct wx_fetch_stats *s = &f->st;
    assert(s->started == s->completed + s->failed + s->in_flight + s->queued);
    assert(s->in_flight <= f->max_inflight);
}

/* Counts, logs and hands resp to x's callback, then frees x (which resp points into). */
static void deliver(struct wx_fetch *f, struct fetch_xfer *x, const struct wx_fetch_response *r)
{
    assert(x->easy == NULL);
    if (r->status == WX_FETCH_OK) {
        f->st.completed++;
        WX_DEBUG("fetch %llu: %s %s: HTTP %ld, %zu bytes, %.1f ms", (unsigned long long)x->id,
                 x->method_name, x->log_name, r->http_status, r->body_len, r->elapsed_ms);
    } else {
        f->st.failed++;
        if (r->status != WX_FETCH_CANCELLED) {
            WX_WARN("fetch %llu: %s %s: %s after %.0f ms: %s", (unsigned long long)x->id,
                    x->method_name, x->log_name, wx_fetch_status_name(r->status), r->elapsed_ms,
                    r->error);
        }
    }
    check_counts(f);
    f->in_callback++;
    x->cb(r, x->arg);
    f->in_callback--;
    fetch_xfer_free(x);
}

/* A request that ends without a response from libcurl: cancelled, or timed out queued. */
static void deliver_failure(struct wx_fetch *f, struct fetch_xfer *x, enum wx_fetch_status s,
                            const char *why)
{
    snprintf(x->error, sizeof x->error, "%s", why);
    struct wx_fetch_response r = {
        .status = s, .body = "", .error = x->error, .elapsed_ms = fetch_now_ms() - x->start_ms};
    deliver(f, x, &r);
}

/* ======================================================================================
 * The queue
 * ====================================================================================== */

/* Hands x to libcurl with what is left of its time. */
static void launch(struct wx_fetch *f, struct fetch_xfer *x)
{
    double left = x->deadline_ms - fetch_now_ms();
    fetch_xfer_prepare(x, left >= 1 ? (long)left : 1);
    list_push(&f->in_flight, x);
    f->st.in_flight++;
    if (f->st.in_flight > f->st.in_flight_max) f->st.in_flight_max = f->st.in_flight;
    CURLMcode rc = curl_multi_add_handle(f->multi, x->easy);
    if (rc != CURLM_OK) WX_FATAL("fetch: curl_multi_add_handle: %s", curl_multi_strerror(rc));
}

static void on_queue_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch_xfer *x = arg;
    struct wx_fetch *f = x->f;
    list_remove(&f->queue, x);
    f->st.queued--;
    event_free(x->queue_deadline);
    x->queue_deadline = NULL;
    deliver_failure(f, x, WX_FETCH_TIMEOUT, "timed out waiting for a transfer slot");
}

static void enqueue(struct wx_fetch *f, struct fetch_xfer *x)
{
    x->queue_deadline = evtimer_new(f->base, on_queue_deadline, x);
    if (x->queue_deadline == NULL) WX_FATAL("fetch: out of memory queueing a request");
    double left = x->deadline_ms - fetch_now_ms();
    struct timeval tv = ms_to_timeval(left >= 1 ? (long)left : 1);
    evtimer_add(x->queue_deadline, &tv);
    list_push(&f->queue, x);
    f->st.queued++;
}

/* Moves waiting requests into free slots, oldest first. */
static void promote(struct wx_fetch *f)
{
    while (f->st.in_flight < f->max_inflight && f->queue.head != NULL) {
        struct fetch_xfer *x = f->queue.head;
        list_remove(&f->queue, x);
        f->st.queued--;
        event_free(x->queue_deadline);
        x->queue_deadline = NULL;
        launch(f, x);
    }
}

/* ======================================================================================
 * libcurl on the loop
 * ====================================================================================== */

/* Takes x out of flight, frees its slot for the next in line, and calls back. */
static void finish(struct wx_fetch *f, struct fetch_xfer *x, CURLcode rc)
{
    struct wx_fetch_response r;
    fetch_xfer_outcome(x, rc, &r);
    r.elapsed_ms = fetch_now_ms() - x->start_ms;
    CURLMcode mrc = curl_multi_remove_handle(f->multi, x->easy);
    assert(mrc == CURLM_OK);
    fetch_xfer_release(x);
    list_remove(&f->in_flight, x);
    f->st.in_flight--;
    promote(f);
    deliver(f, x, &r);
}

/* After libcurl ran: every finished transfer gets its callback. */
static void reap(struct wx_fetch *f)
{
    for (;;) {
        int left;
        CURLMsg *msg = curl_multi_info_read(f->multi, &left);
        if (msg == NULL) break;
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle; /* msg dies with the easy handle */
        CURLcode rc = msg->data.result;
        struct fetch_xfer *x = NULL;
        (void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        assert(x != NULL);
        assert(x->easy == easy);
        finish(f, x, rc);
    }
}

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    struct fetch_sock *s = arg;
    struct wx_fetch *f = s->f; /* s may be freed by libcurl's socket callback below */
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    CURLMcode rc = curl_multi_socket_action(f->multi, fd, action, &running);
    if (rc != CURLM_OK) WX_ERROR("fetch: curl_multi_socket_action: %s", curl_multi_strerror(rc));
    reap(f);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wx_fetch *f = arg;
    int running;
    CURLMcode rc = curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (rc != CURLM_OK) WX_ERROR("fetch: curl_multi_socket_action: %s", curl_multi_strerror(rc));
    reap(f);
}

static void sock_free(struct wx_fetch *f, struct fetch_sock *s)
{
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        f->socks = s->next;
    }
    if (s->next != NULL) s->next->prev = s->prev;
    event_del(&s->ev);
    free(s);
}

static struct fetch_sock *sock_new(struct wx_fetch *f, curl_socket_t fd)
{
    struct fetch_sock *s = wx_calloc(1, sizeof *s);
    s->f = f;
    event_assign(&s->ev, f->base, fd, 0, on_socket_ready, s);
    s->next = f->socks;
    if (f->socks != NULL) f->socks->prev = s;
    f->socks = s;
    CURLMcode rc = curl_multi_assign(f->multi, fd, s);
    assert(rc == CURLM_OK);
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what libcurl wants, or stop watching it. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct wx_fetch *f = userp;
    struct fetch_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) sock_free(f, s);
        return 0;
    }
    if (s == NULL) s = sock_new(f, fd);
    short events = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                   ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    event_del(&s->ev);
    event_assign(&s->ev, f->base, fd, events, on_socket_ready, s);
    if (event_add(&s->ev, NULL) != 0) WX_ERROR("fetch: cannot watch socket %d", (int)fd);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake libcurl after timeout_ms (0: on the next loop turn, never
 * from inside this callback), or never (-1). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct wx_fetch *f = userp;
    if (timeout_ms < 0) {
        evtimer_del(f->timer);
        return 0;
    }
    struct timeval tv = ms_to_timeval(timeout_ms);
    return evtimer_add(f->timer, &tv) == 0 ? 0 : -1;
}

/* ======================================================================================
 * The interface
 * ====================================================================================== */

static void multi_setopt_done(CURLMcode rc, const char *what)
{
    if (rc != CURLM_OK) WX_FATAL("fetch: setting %s: %s", what, curl_multi_strerror(rc));
}
#define MULTI_SETOPT(m, opt, val) multi_setopt_done(curl_multi_setopt((m), (opt), (val)), #opt)

/*
 * Connections: as many per host as there are slots, so that libcurl never queues behind
 * ours, and a cache that keeps every one of them for reuse (a smaller cache would close
 * connections after each request and a benchmark would pay a handshake per request).
 */
static void multi_init(struct wx_fetch *f)
{
    f->multi = curl_multi_init();
    if (f->multi == NULL) WX_FATAL("fetch: out of memory creating the multi handle");
    MULTI_SETOPT(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    MULTI_SETOPT(f->multi, CURLMOPT_SOCKETDATA, f);
    MULTI_SETOPT(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    MULTI_SETOPT(f->multi, CURLMOPT_TIMERDATA, f);
    MULTI_SETOPT(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)f->max_inflight);
    MULTI_SETOPT(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)f->max_inflight);
    MULTI_SETOPT(f->multi, CURLMOPT_MAXCONNECTS, (long)f->max_inflight);
    f->share = curl_share_init();
    if (f->share == NULL ||
        curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        WX_FATAL("fetch: cannot create the TLS session cache");
    }
}

wx_fetch_t *wx_fetch_new(struct event_base *base, const struct wx_fetch_options *opt)
{
    assert(base != NULL);
    static const struct wx_fetch_options defaults;
    if (opt == NULL) opt = &defaults;
    assert(opt->max_inflight <= WX_FETCH_INFLIGHT_MAX);
    assert(opt->max_queued <= WX_FETCH_QUEUE_MAX);
    assert(opt->max_response <= WX_FETCH_RESPONSE_MAX);
    if (opt->ca_file != NULL && access(opt->ca_file, R_OK) != 0) {
        WX_ERROR("fetch: cannot read ca_file %s", opt->ca_file);
        return NULL;
    }
    pthread_once(&global_once, global_init);
    struct wx_fetch *f = wx_calloc(1, sizeof *f);
    f->base = base;
    f->max_inflight = opt->max_inflight != 0 ? opt->max_inflight : WX_FETCH_INFLIGHT_DEFAULT;
    f->max_queued = opt->max_queued != 0 ? opt->max_queued : WX_FETCH_QUEUE_MAX;
    f->max_response = opt->max_response != 0 ? opt->max_response : WX_FETCH_RESPONSE_MAX;
    if (opt->ca_file != NULL) f->ca_file = wx_strndup(opt->ca_file, strlen(opt->ca_file));
    f->reuse.idle = wx_calloc(f->max_inflight, sizeof *f->reuse.idle);
    f->timer = evtimer_new(base, on_timer, f);
    if (f->timer == NULL) WX_FATAL("fetch: out of memory creating a timer");
    multi_init(f);
    return f;
}

void wx_fetch_free(wx_fetch_t *f)
{
    if (f == NULL) return;
    assert(f->in_callback == 0); /* freeing from inside a callback is not supported */
    f->closing = true;
    unsigned cancelled = f->st.in_flight + f->st.queued;
    while (f->in_flight.head != NULL) {
        struct fetch_xfer *x = f->in_flight.head;
        CURLMcode rc = curl_multi_remove_handle(f->multi, x->easy);
        assert(rc == CURLM_OK);
        fetch_xfer_release(x);
        list_remove(&f->in_flight, x);
        f->st.in_flight--;
        deliver_failure(f, x, WX_FETCH_CANCELLED, "cancelled");
    }
    while (f->queue.head != NULL) {
        struct fetch_xfer *x = f->queue.head;
        list_remove(&f->queue, x);
        f->st.queued--;
        event_free(x->queue_deadline);
        x->queue_deadline = NULL;
        deliver_failure(f, x, WX_FETCH_CANCELLED, "cancelled");
    }
    if (cancelled > 0) WX_INFO("fetch: cancelled %u requests", cancelled);
    fetch_reuse_free(f); /* the easy handles first: they hold the share */
    fetch_urls_free(f);
    curl_multi_cleanup(f->multi); /* closes the cached connections */
    while (f->socks != NULL) {
        sock_free(f, f->socks);
    }
    if (curl_share_cleanup(f->share) != CURLSHE_OK) WX_ERROR("fetch: TLS session cache in use");
    event_free(f->timer);
    free(f->ca_file);
    free(f);
}

int wx_fetch_start(wx_fetch_t *f, const struct wx_fetch_request *req, wx_fetch_cb cb, void *arg)
{
    assert(f != NULL);
    assert(req != NULL);
    assert(cb != NULL);
    if (f->closing) return WX_FETCH_ECLOSED;
    bool slot_free = f->st.in_flight < f->max_inflight && f->queue.head == NULL;
    if (!slot_free && f->st.queued >= f->max_queued) {
        WX_WARN("fetch: request refused: %u requests queued already", f->st.queued);
        return WX_FETCH_EFULL;
    }
    struct fetch_xfer *x = fetch_xfer_new(f, req);
    if (x == NULL) return WX_FETCH_EINVAL;
    x->id = ++f->next_id;
    x->cb = cb;
    x->arg = arg;
    f->st.started++;
    if (slot_free) {
        launch(f, x); /* libcurl only arms its timer here; the transfer starts on the loop */
    } else {
        enqueue(f, x);
    }
    check_counts(f);
    return 0;
}

void wx_fetch_stats(const wx_fetch_t *f, struct wx_fetch_stats *out)
{
    assert(f != NULL);
    *out = f->st;
}

const char *wx_fetch_status_name(enum wx_fetch_status s)
{
    switch (s) {
    case WX_FETCH_OK:
        return "ok";
    case WX_FETCH_TIMEOUT:
        return "timeout";
    case WX_FETCH_CONNECT:
        return "connect";
    case WX_FETCH_TOO_LARGE:
        return "too large";
    case WX_FETCH_CANCELLED:
        return "cancelled";
    case WX_FETCH_ERROR:
        return "error";
    }
    return "?";
}

const char *wx_fetch_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case WX_FETCH_EINVAL:
        return "invalid request";
    case WX_FETCH_EFULL:
        return "too many requests queued";
    case WX_FETCH_ECLOSED:
        return "fetcher is closing";
    default:
        return "unknown error";
    }
}
