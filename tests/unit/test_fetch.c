/*
 * test_fetch.c - outbound HTTP(S) on the loop, against a small evhttp server on the same
 * event_base: GET/POST/PUT/DELETE round trips, status codes, multipart uploads, timeouts
 * (in flight and while queued), refused connections, the response size limit just under and
 * just over (with and without Content-Length), queueing at max_inflight, the queue limit,
 * retries from inside a callback, cancellation by wx_fetch_free, keep-alive reuse over 1,000
 * requests, TLS verification with and without a CA file, refused requests, and logs that
 * show neither query strings nor user names. What the fetcher keeps between requests: easy
 * handles reused without carrying a method, body, header, content type, timeout or error
 * from one request to the next (nor a cut response), cancellation of requests on reused
 * handles, URL bases checked once (the target the server sees, the refusals, more bases
 * than are remembered) and header lists per content type (more types than are kept).
 *
 * Every wait is bounded (run_until), so a bug fails a test instead of hanging it; the only
 * timing assertions are the timeout tests', with wide margins. Throughput is printed as a
 * BENCH line, not asserted: this machine is shared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "fetch/fetch.h"
#include "fetch/fetch_int.h" /* the count of easy handles made, to see them reused */
#include "util/log.h"

#define WAIT_MAX_S 30   /* no test waits longer for anything */
#define HELD_MAX   64   /* requests the server may hold unanswered */
#define TICK_MS    10   /* the server answers /slow requests on this tick */
#define BODY_KEEP  8192 /* bytes of a response body a result keeps */

/* ======================================================================================
 * The test server
 * ====================================================================================== */

/* A request the server answers after a while. */
struct delayed {
    struct evhttp_request *req; /* or NULL: a free slot */
    struct event *ev;
};

struct server {
    struct event_base *base;
    struct evhttp *http;
    SSL_CTX *tls;                          /* non-NULL: it speaks https */
    int port;                              /* where it listens on 127.0.0.1 */
    unsigned connections;                  /* accepted so far */
    unsigned requests;                     /* received so far */
    struct evhttp_request *hung[HELD_MAX]; /* /hang: never answered until teardown */
    unsigned nhung;
    struct evhttp_request *slow[HELD_MAX]; /* /slow: answered on the next tick */
    unsigned nslow, nslow_max;             /* held now, most held at once */
    struct delayed delayed[HELD_MAX];      /* /delay: answered after ?ms=N */
    struct event *tick;
};

/* Counts connections: evhttp asks for one bufferevent per accepted connection. */
static struct bufferevent *server_new_bev(struct event_base *base, void *arg)
{
    struct server *s = arg;
    s->connections++;
    if (s->tls == NULL) return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    return bufferevent_openssl_socket_new(base, -1, SSL_new(s->tls), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static long query_long(struct evhttp_request *req, const char *key, long dflt)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq kv;
    long v = dflt;
    if (q != NULL && evhttp_parse_query_str(q, &kv) == 0) {
        const char *s = evhttp_find_header(&kv, key);
        if (s != NULL) v = strtol(s, NULL, 10);
        evhttp_clear_headers(&kv);
    }
    return v;
}

static const char *method_of(struct evhttp_request *req)
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

/* Answers "method=M\nx-test=V\ncontent-type=T\nbody=" and the request body, with the
 * status the query asks for (?status=404). */
static void serve_echo(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *xt = evhttp_find_header(in, "X-Test");
    const char *ct = evhttp_find_header(in, "Content-Type");
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "method=%s\nx-test=%s\ncontent-type=%s\nbody=", method_of(req),
                        xt != NULL ? xt : "", ct != NULL ? ct : "");
    evbuffer_add_buffer(out, evhttp_request_get_input_buffer(req));
    evhttp_send_reply(req, (int)query_long(req, "status", 200), "Status", out);
    evbuffer_free(out);
}

/* ?n=N bytes of 'x', with a Content-Length (/big) or chunked without one (/chunked). */
static void serve_bytes(struct evhttp_request *req, bool chunked)
{
    long n = query_long(req, "n", 0);
    struct evbuffer *out = evbuffer_new();
    char block[1024];
    memset(block, 'x', sizeof block);
    if (!chunked) {
        for (long i = 0; i < n; i += (long)sizeof block)
            evbuffer_add(out, block, n - i < (long)sizeof block ? (size_t)(n - i) : sizeof block);
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
        return;
    }
    evhttp_send_reply_start(req, 200, "OK");
    for (long i = 0; i < n; i += (long)sizeof block) {
        evbuffer_add(out, block, n - i < (long)sizeof block ? (size_t)(n - i) : sizeof block);
        evhttp_send_reply_chunk(req, out);
    }
    evhttp_send_reply_end(req);
    evbuffer_free(out);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct delayed *d = arg;
    evhttp_send_reply(d->req, 200, "OK", NULL);
    event_free(d->ev);
    *d = (struct delayed){0};
}

/* /delay?ms=N: a 200 after N milliseconds. */
static void serve_delayed(struct server *s, struct evhttp_request *req)
{
    size_t i = 0;
    while (i < HELD_MAX && s->delayed[i].req != NULL)
        i++;
    assert_true(i < HELD_MAX);
    long ms = query_long(req, "ms", 0);
    struct delayed *d = &s->delayed[i];
    d->req = req;
    d->ev = evtimer_new(s->base, on_delay, d);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(d->ev, &tv);
}

/* /uri: the request's target as the server received it. */
static void serve_uri(struct evhttp_request *req)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "%s", evhttp_request_get_uri(req));
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void serve(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    s->requests++;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path == NULL) path = "/";
    if (strcmp(path, "/hang") == 0) {
        assert_true(s->nhung < HELD_MAX);
        s->hung[s->nhung++] = req;
    } else if (strcmp(path, "/slow") == 0) {
        assert_true(s->nslow < HELD_MAX);
        s->slow[s->nslow++] = req;
        if (s->nslow > s->nslow_max) s->nslow_max = s->nslow;
    } else if (strcmp(path, "/big") == 0) {
        serve_bytes(req, false);
    } else if (strcmp(path, "/chunked") == 0) {
        serve_bytes(req, true);
    } else if (strcmp(path, "/delay") == 0) {
        serve_delayed(s, req);
    } else if (strcmp(path, "/uri") == 0) {
        serve_uri(req);
    } else {
        serve_echo(req);
    }
}

static void server_answer_slow(struct server *s)
{
    for (unsigned i = 0; i < s->nslow; i++)
        evhttp_send_reply(s->slow[i], 200, "OK", NULL);
    s->nslow = 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_answer_slow(arg);
}

static void server_start(struct server *s, struct event_base *base, SSL_CTX *tls)
{
    memset(s, 0, sizeof *s);
    s->base = base;
    s->tls = tls;
    s->http = evhttp_new(base);
    assert_non_null(s->http);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE);
    evhttp_set_bevcb(s->http, server_new_bev, s);
    evhttp_set_gencb(s->http, serve, s);
    struct evhttp_bound_socket *h = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    assert_non_null(h);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&sin, &len), 0);
    s->port = ntohs(sin.sin_port);
    s->tick = event_new(base, -1, EV_PERSIST, on_tick, s);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(s->tick, &tv);
}

/* Answers what is still held (a request whose client left is freed by the answer), then
 * closes everything. */
static void server_stop(struct server *s)
{
    for (unsigned i = 0; i < s->nhung; i++)
        evhttp_send_reply(s->hung[i], 503, "Gone", NULL);
    s->nhung = 0;
    server_answer_slow(s);
    for (size_t i = 0; i < HELD_MAX; i++) {
        if (s->delayed[i].req != NULL) on_delay(-1, 0, &s->delayed[i]);
    }
    event_free(s->tick);
    evhttp_free(s->http);
}

/* ======================================================================================
 * Fixture, results, waiting
 * ====================================================================================== */

struct fx {
    struct event_base *base;
    struct server srv;
    wx_fetch_t *f;
    char url[64]; /* http://127.0.0.1:PORT */
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    fx->base = event_base_new();
    server_start(&fx->srv, fx->base, NULL);
    snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%d", fx->srv.port);
    fx->f = wx_fetch_new(fx->base, NULL);
    *state = fx;
    return fx->f != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    wx_fetch_free(fx->f);
    server_stop(&fx->srv);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

/* Replaces the fixture's fetcher with one made with opt. */
static void refetch(struct fx *fx, const struct wx_fetch_options *opt)
{
    wx_fetch_free(fx->f);
    fx->f = wx_fetch_new(fx->base, opt);
    assert_non_null(fx->f);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *count reaches want or WAIT_MAX_S pass; true if it got there. */
static bool run_until(struct event_base *base, const unsigned *count, unsigned want)
{
    /* A heartbeat, so that one loop turn never blocks longer than it. */
    struct event *guard = event_new(base, -1, EV_PERSIST, on_guard, NULL);
    struct timeval tv = {0, 20000};
    event_add(guard, &tv);
    double end = now_ms() + WAIT_MAX_S * 1000.0;
    while (*count < want && now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(guard);
    return *count >= want;
}

/* Runs the loop for about ms milliseconds. */
static void run_for(struct event_base *base, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

struct result {
    unsigned calls;
    enum wx_fetch_status status;
    long http_status;
    char body[BODY_KEEP + 1];
    size_t body_len;
    char error[256];
    double elapsed_ms;
    unsigned order; /* when it completed, counting from 1 */
};

static bool in_start;      /* set while wx_fetch_start runs: no callback may run then */
static unsigned done;      /* callbacks so far, for run_until */
static unsigned completed; /* the order counter */

static void on_result(const struct wx_fetch_response *r, void *arg)
{
    assert_false(in_start);
    struct result *res = arg;
    res->calls++;
    res->status = r->status;
    res->http_status = r->http_status;
    assert_non_null(r->body);
    assert_int_equal(r->body[r->body_len], '\0');
    res->body_len = r->body_len;
    memcpy(res->body, r->body, r->body_len < BODY_KEEP ? r->body_len + 1 : BODY_KEEP);
    res->body[BODY_KEEP] = '\0';
    if (r->status == WX_FETCH_OK) {
        assert_null(r->error);
    } else {
        assert_non_null(r->error);
        snprintf(res->error, sizeof res->error, "%s", r->error);
    }
    res->elapsed_ms = r->elapsed_ms;
    res->order = ++completed;
    done++;
}

static int start(wx_fetch_t *f, const struct wx_fetch_request *req, wx_fetch_cb cb, void *arg)
{
    in_start = true;
    int rc = wx_fetch_start(f, req, cb, arg);
    in_start = false;
    return rc;
}

/* Starts a GET of base + path into res. */
static void get(struct fx *fx, const char *path, unsigned timeout_ms, struct result *res)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", fx->url, path);
    struct wx_fetch_request req = {.method = "GET", .url = url, .timeout_ms = timeout_ms};
    assert_int_equal(start(fx->f, &req, on_result, res), 0);
}

static void check_counts(const wx_fetch_t *f)
{
    struct wx_fetch_stats st;
    wx_fetch_stats(f, &st);
    assert_int_equal(st.started, st.completed + st.failed + st.in_flight + st.queued);
}

static void reset_counters(void)
{
    done = 0;
    completed = 0;
}

/* ======================================================================================
 * Round trips
 * ====================================================================================== */

static void test_round_trips(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    char url[128];
    snprintf(url, sizeof url, "%s/echo?a=1", fx->url);
    const char *const headers[] = {"X-Test: hello there", NULL};
    static const char binary[] = {'a', 0, 'b', '\n', (char)0xff};
    struct result res[8] = {0};
    struct wx_fetch_request reqs[8] = {
        {.method = "GET", .url = url, .headers = headers},
        {.method = "POST",
         .url = url,
         .body = "{\"a\":1}",
         .body_len = 7,
         .content_type = "application/json"},
        {.method = "POST", .url = url, .body = binary, .body_len = sizeof binary},
        {.method = "PUT", .url = url, .body = "put", .body_len = 3, .content_type = "text/plain"},
        {.method = "DELETE", .url = url},
        {.method = "POST", .url = url}, /* empty body */
    };
    for (int i = 0; i < 6; i++)
        assert_int_equal(start(fx->f, &reqs[i], on_result, &res[i]), 0);
    get(fx, "/echo?status=404", 0, &res[6]);
    get(fx, "/echo?status=500", 0, &res[7]);
    assert_int_equal(done, 0); /* never from inside wx_fetch_start */
    assert_true(run_until(fx->base, &done, 8));
    for (int i = 0; i < 8; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].status, WX_FETCH_OK);
    }
    assert_int_equal(res[0].http_status, 200);
    assert_non_null(strstr(res[0].body, "method=GET\nx-test=hello there\n"));
    assert_non_null(strstr(res[1].body, "method=POST\n"));
    assert_non_null(strstr(res[1].body, "content-type=application/json\nbody={\"a\":1}"));
    assert_non_null(strstr(res[2].body, "content-type=application/octet-stream\nbody="));
    assert_true(res[2].body_len > sizeof binary);
    assert_memory_equal(res[2].body + res[2].body_len - sizeof binary, binary, sizeof binary);
    assert_non_null(strstr(res[3].body, "method=PUT\nx-test=\ncontent-type=text/plain\nbody=put"));
    assert_non_null(strstr(res[4].body, "method=DELETE\n"));
    assert_non_null(strstr(res[5].body, "method=POST\n"));
    assert_int_equal(res[6].http_status, 404);
    assert_int_equal(res[7].http_status, 500);
    assert_non_null(strstr(res[7].body, "method=GET"));
    assert_true(res[0].elapsed_ms >= 0);

    struct wx_fetch_stats st;
    wx_fetch_stats(fx->f, &st);
    assert_int_equal(st.started, 8);
    assert_int_equal(st.completed, 8);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.queued, 0);
}

static void test_multipart(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    char url[128];
    snprintf(url, sizeof url, "%s/echo?access_token=t&type=image", fx->url);
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)i;
    struct wx_fetch_part part = {.name = "media",
                                 .filename = "card.png",
                                 .content_type = "image/png",
                                 .data = data,
                                 .len = sizeof data};
    struct wx_fetch_request req = {.method = "POST", .url = url, .part = &part};
    struct result res = {0};
    assert_int_equal(start(fx->f, &req, on_result, &res), 0);
    memset(data, 0, sizeof data); /* the part was copied */
    assert_true(run_until(fx->base, &done, 1));
    assert_int_equal(res.status, WX_FETCH_OK);
    assert_int_equal(res.http_status, 200);
    assert_non_null(strstr(res.body, "content-type=multipart/form-data; boundary="));
    assert_non_null(strstr(res.body, "Content-Disposition: form-data; name=\"media\"; "
                                     "filename=\"card.png\"\r\nContent-Type: image/png\r\n\r\n"));
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)i;
    assert_non_null(memmem(res.body, res.body_len, data, sizeof data));
}

/* ======================================================================================
 * Failures
 * ====================================================================================== */

static void test_timeout(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    struct result res = {0};
    get(fx, "/hang", 200, &res);
    assert_true(run_until(fx->base, &done, 1));
    assert_int_equal(res.status, WX_FETCH_TIMEOUT);
    assert_int_equal(res.http_status, 0);
    assert_int_equal(res.body_len, 0);
    assert_true(res.elapsed_ms >= 150);
    assert_true(res.elapsed_ms < 5000);
    assert_true(strlen(res.error) > 0);
}

/* A request that waits in the queue past its timeout fails without being sent. */
static void test_timeout_while_queued(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 1});
    struct result hung = {0}, queued = {0};
    get(fx, "/hang", 20000, &hung);
    get(fx, "/echo", 200, &queued);
    assert_true(run_until(fx->base, &done, 1));
    assert_int_equal(queued.calls, 1);
    assert_int_equal(queued.status, WX_FETCH_TIMEOUT);
    assert_true(queued.elapsed_ms >= 150);
    assert_true(queued.elapsed_ms < 5000);
    assert_non_null(strstr(queued.error, "waiting"));
    assert_int_equal(hung.calls, 0);
    assert_true(fx->srv.requests <= 1); /* /echo never reached the server */
    struct wx_fetch_stats st;
    wx_fetch_stats(fx->f, &st);
    assert_int_equal(st.in_flight, 1);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.failed, 1);
}

static void test_connect_refused(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    /* Bound but not listening: a connection is refused, and no one else can take the port. */
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(sock, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(sock, (struct sockaddr *)&sin, &len), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(sin.sin_port));
    struct result res = {0};
    assert_int_equal(
        start(fx->f, &(struct wx_fetch_request){.method = "GET", .url = url}, on_result, &res), 0);
    assert_true(run_until(fx->base, &done, 1));
    close(sock);
    assert_int_equal(res.status, WX_FETCH_CONNECT);
    assert_int_equal(res.http_status, 0);
    assert_true(strlen(res.error) > 0);
}

/* max_response exactly, and one byte over: with a Content-Length and chunked. */
static void test_too_large(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_response = 1000});
    struct result res[5] = {0};
    get(fx, "/big?n=1000", 0, &res[0]);
    get(fx, "/big?n=1001", 0, &res[1]);
    get(fx, "/chunked?n=1000", 0, &res[2]);
    get(fx, "/chunked?n=1001", 0, &res[3]);
    get(fx, "/chunked?n=200000", 0, &res[4]);
    assert_true(run_until(fx->base, &done, 5));
    for (int i = 0; i < 5; i++)
        assert_int_equal(res[i].calls, 1);
    assert_int_equal(res[0].status, WX_FETCH_OK);
    assert_int_equal(res[0].body_len, 1000);
    assert_int_equal(res[2].status, WX_FETCH_OK);
    assert_int_equal(res[2].body_len, 1000);
    assert_int_equal(res[0].body[999], 'x');
    static const int over[] = {1, 3, 4};
    for (int k = 0; k < 3; k++) {
        int i = over[k];
        assert_int_equal(res[i].status, WX_FETCH_TOO_LARGE);
        assert_int_equal(res[i].body_len, 0);
        assert_int_equal(res[i].http_status, 200);
        assert_non_null(strstr(res[i].error, "1000 bytes"));
    }
}

/* Requests the fetcher must refuse at once, never calling back. */
static void test_refused_requests(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    char ok[128];
    snprintf(ok, sizeof ok, "%s/echo", fx->url);
    const char *const crlf[] = {"X-A: b\r\nX-Evil: 1", NULL};
    const char *const no_colon[] = {"X-A b", NULL};
    const char *const bad_name[] = {"X A: b", NULL};
    const char *const framing[] = {"content-length: 5", NULL};
    const char *const ctype[] = {"Content-Type: text/plain", NULL};
    struct wx_fetch_part part = {.name = "media", .data = "x", .len = 1};
    struct wx_fetch_part unnamed = {.data = "x", .len = 1};
    struct wx_fetch_request bad[] = {
        {.method = "FOO", .url = ok},
        {.method = "get", .url = ok},
        {.method = NULL, .url = ok},
        {.method = "GET", .url = NULL},
        {.method = "GET", .url = "ftp://127.0.0.1/x"},
        {.method = "GET", .url = "file:///etc/passwd"},
        {.method = "GET", .url = "127.0.0.1/echo"},
        {.method = "GET", .url = "http://"},
        {.method = "GET", .url = "http://h/a b"},
        {.method = "GET", .url = "http://h/a\r\nX-Evil: 1"},
        {.method = "GET", .url = ok, .body = "x", .body_len = 1},
        {.method = "DELETE", .url = ok, .part = &part},
        {.method = "GET", .url = ok, .headers = crlf},
        {.method = "GET", .url = ok, .headers = no_colon},
        {.method = "GET", .url = ok, .headers = bad_name},
        {.method = "POST", .url = ok, .body = "x", .body_len = 1, .headers = framing},
        {.method = "POST", .url = ok, .body = "x", .body_len = 1, .part = &part},
        {.method = "POST", .url = ok, .part = &unnamed},
        {.method = "POST", .url = ok, .body = NULL, .body_len = 5},
        {.method = "POST", .url = ok, .body_len = WX_FETCH_BODY_MAX + 1, .body = ok},
        {.method = "POST", .url = ok, .body = "x", .body_len = 1, .content_type = "a\nb"},
        {.method = "POST",
         .url = ok,
         .body = "x",
         .body_len = 1,
         .content_type = "text/plain",
         .headers = ctype},
    };
    struct result res = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(start(fx->f, &bad[i], on_result, &res), WX_FETCH_EINVAL);
    run_for(fx->base, 50);
    assert_int_equal(res.calls, 0);
    struct wx_fetch_stats st;
    wx_fetch_stats(fx->f, &st);
    assert_int_equal(st.started, 0);
    assert_int_equal(fx->srv.requests, 0);
    assert_string_equal(wx_fetch_strerror(WX_FETCH_EINVAL), "invalid request");
    /* An unreadable CA file is refused when the fetcher is made. */
    assert_null(wx_fetch_new(fx->base, &(struct wx_fetch_options){.ca_file = "/nonexistent"}));
}

/* The URL and header limits: right at them is fine, one over is refused. */
static void test_request_limits(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    static char url[WX_FETCH_URL_MAX + 2];
    int prefix = snprintf(url, sizeof url, "%s/echo?pad=", fx->url);
    memset(url + prefix, 'a', WX_FETCH_URL_MAX + 1 - (size_t)prefix);
    url[WX_FETCH_URL_MAX + 1] = '\0';
    struct result res[3] = {0}, refused = {0};
    struct wx_fetch_request req = {.method = "GET", .url = url};
    assert_int_equal(start(fx->f, &req, on_result, &refused), WX_FETCH_EINVAL);
    url[WX_FETCH_URL_MAX] = '\0';
    assert_int_equal(start(fx->f, &req, on_result, &res[0]), 0);

    const char *many[WX_FETCH_HEADERS_MAX + 2];
    for (int i = 0; i < WX_FETCH_HEADERS_MAX + 1; i++)
        many[i] = "X-Many: 1";
    many[WX_FETCH_HEADERS_MAX + 1] = NULL;
    url[prefix] = '\0';
    req.headers = many;
    assert_int_equal(start(fx->f, &req, on_result, &refused), WX_FETCH_EINVAL);
    many[WX_FETCH_HEADERS_MAX] = NULL;
    assert_int_equal(start(fx->f, &req, on_result, &res[1]), 0);

    /* A Content-Type among the headers stands in for content_type. */
    const char *const ctype[] = {"content-type: text/plain", NULL};
    struct wx_fetch_request post = {
        .method = "POST", .url = url, .body = "x", .body_len = 1, .headers = ctype};
    assert_int_equal(start(fx->f, &post, on_result, &res[2]), 0);

    assert_true(run_until(fx->base, &done, 3));
    assert_int_equal(refused.calls, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i].status, WX_FETCH_OK);
        assert_int_equal(res[i].http_status, 200);
    }
    assert_non_null(strstr(res[2].body, "content-type=text/plain\nbody=x"));
    struct wx_fetch_stats st;
    wx_fetch_stats(fx->f, &st);
    assert_int_equal(st.started, 3);
}

/* ======================================================================================
 * Queueing, re-entrancy, cancellation
 * ====================================================================================== */

static void test_max_inflight(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 2});
    struct result res[20] = {0};
    for (int i = 0; i < 20; i++)
        get(fx, "/slow", 0, &res[i]);
    struct wx_fetch_stats st;
    wx_fetch_stats(fx->f, &st);
    assert_int_equal(st.in_flight, 2);
    assert_int_equal(st.queued, 18);
    assert_true(run_until(fx->base, &done, 20));
    for (int i = 0; i < 20; i++) {
        assert_int_equal(res[i].status, WX_FETCH_OK);
        assert_int_equal(res[i].http_status, 200);
    }
    assert_true(fx->srv.nslow_max >= 1);
    assert_true(fx->srv.nslow_max <= 2);
    wx_fetch_stats(fx->f, &st);
    assert_int_equal(st.in_flight_max, 2);
    assert_int_equal(st.completed, 20);
    /* First come, first served: request i starts only once i - 1 requests are done. */
    for (unsigned i = 1; i < 20; i++)
        assert_true(res[i].order >= i);
}

static void test_queue_limit(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 1, .max_queued = 2});
    struct result res[4] = {0};
    for (int i = 0; i < 3; i++)
        get(fx, "/slow", 0, &res[i]);
    char url[128];
    snprintf(url, sizeof url, "%s/slow", fx->url);
    struct wx_fetch_request req = {.method = "GET", .url = url};
    assert_int_equal(start(fx->f, &req, on_result, &res[3]), WX_FETCH_EFULL);
    assert_true(run_until(fx->base, &done, 3));
    assert_int_equal(res[3].calls, 0);
    assert_int_equal(start(fx->f, &req, on_result, &res[3]), 0); /* room again */
    assert_true(run_until(fx->base, &done, 4));
    for (int i = 0; i < 4; i++)
        assert_int_equal(res[i].status, WX_FETCH_OK);
}

struct retry {
    struct fx *fx;
    struct result first, second;
};

/* The first answer is a 503: try again, from inside the callback. */
static void on_first(const struct wx_fetch_response *r, void *arg)
{
    struct retry *rt = arg;
    on_result(r, &rt->first);
    assert_int_equal(r->http_status, 503);
    get(rt->fx, "/echo?status=200", 0, &rt->second);
    assert_int_equal(rt->second.calls, 0);
}

static void test_retry_from_callback(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 1});
    struct retry rt = {.fx = fx};
    char url[128];
    snprintf(url, sizeof url, "%s/echo?status=503", fx->url);
    struct result other = {0};
    assert_int_equal(
        start(fx->f, &(struct wx_fetch_request){.method = "GET", .url = url}, on_first, &rt), 0);
    get(fx, "/echo?status=201", 0, &other); /* queued before the retry */
    assert_true(run_until(fx->base, &done, 3));
    assert_int_equal(rt.first.calls, 1);
    assert_int_equal(rt.second.calls, 1);
    assert_int_equal(rt.second.status, WX_FETCH_OK);
    assert_int_equal(rt.second.http_status, 200);
    assert_int_equal(other.http_status, 201);
    assert_int_equal(rt.first.order, 1);
    assert_int_equal(other.order, 2); /* the retry waited its turn */
    assert_int_equal(rt.second.order, 3);
    check_counts(fx->f);
}

struct cancel {
    wx_fetch_t *f;
    const char *url;
    unsigned calls;
    int restart_rc; /* what wx_fetch_start said from inside the callback */
};

static void on_cancelled(const struct wx_fetch_response *r, void *arg)
{
    struct cancel *c = arg;
    assert_int_equal(r->status, WX_FETCH_CANCELLED);
    assert_string_equal(r->error, "cancelled");
    c->calls++;
    c->restart_rc = wx_fetch_start(c->f, &(struct wx_fetch_request){.method = "GET", .url = c->url},
                                   on_cancelled, c);
}

static void test_free_cancels(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 3});
    char hang[128], echo[128];
    snprintf(hang, sizeof hang, "%s/hang", fx->url);
    snprintf(echo, sizeof echo, "%s/echo", fx->url);
    struct cancel c[7];
    for (int i = 0; i < 7; i++) {
        c[i] = (struct cancel){.f = fx->f, .url = echo};
        struct wx_fetch_request req = {.method = "GET", .url = i < 3 ? hang : echo};
        assert_int_equal(start(fx->f, &req, on_cancelled, &c[i]), 0);
    }
    assert_true(run_until(fx->base, &fx->srv.nhung, 3));
    for (int i = 0; i < 7; i++)
        assert_int_equal(c[i].calls, 0);
    wx_fetch_free(fx->f);
    fx->f = NULL;
    for (int i = 0; i < 7; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].restart_rc, WX_FETCH_ECLOSED);
    }
    run_for(fx->base, 50); /* the server sees its clients leave */
}

/* ======================================================================================
 * Keep-alive
 * ====================================================================================== */

static void test_keepalive_1000(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 8});
    enum { N = 1000 };
    struct result *res = calloc(N, sizeof *res);
    char url[128];
    snprintf(url, sizeof url, "%s/echo?access_token=secret", fx->url);
    const char *body = "{\"touser\":\"o1\",\"template_id\":\"t\"}";
    struct wx_fetch_request req = {.method = "POST",
                                   .url = url,
                                   .body = body,
                                   .body_len = strlen(body),
                                   .content_type = "application/json"};
    double t0 = now_ms();
    for (int i = 0; i < N; i++)
        assert_int_equal(start(fx->f, &req, on_result, &res[i]), 0);
    assert_true(run_until(fx->base, &done, N));
    double ms = now_ms() - t0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].status, WX_FETCH_OK);
    }
    printf("BENCH fetch_keepalive_rps %.0f req/s\n", N / (ms / 1000.0));
    printf("# %u requests over %u connections\n", fx->srv.requests, fx->srv.connections);
    assert_int_equal(fx->srv.requests, N);
    assert_true(fx->srv.connections <= 8);
    assert_true(fx->f->reuse.easy_made <= 8); /* one easy handle per slot, reused */
    free(res);
}

struct chain {
    struct fx *fx;
    unsigned left;
    struct result res;
};

/* Each answer starts the next request: one connection should carry them all. */
static void on_chain(const struct wx_fetch_response *r, void *arg)
{
    struct chain *c = arg;
    on_result(r, &c->res);
    assert_int_equal(r->status, WX_FETCH_OK);
    if (--c->left == 0) return;
    char url[128];
    snprintf(url, sizeof url, "%s/echo", c->fx->url);
    in_start = true;
    assert_int_equal(wx_fetch_start(c->fx->f,
                                    &(struct wx_fetch_request){.method = "GET", .url = url},
                                    on_chain, c),
                     0);
    in_start = false;
}

static void test_keepalive_chain(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    struct chain c = {.fx = fx, .left = 200};
    char url[128];
    snprintf(url, sizeof url, "%s/echo", fx->url);
    assert_int_equal(
        start(fx->f, &(struct wx_fetch_request){.method = "GET", .url = url}, on_chain, &c), 0);
    assert_true(run_until(fx->base, &done, 200));
    assert_int_equal(fx->srv.requests, 200);
    assert_int_equal(fx->srv.connections, 1);
}

/* ======================================================================================
 * Reuse: easy handles, URL bases, header lists
 * ====================================================================================== */

/* Starts req and runs the loop until its callback; the result is in *res. */
static void run_one(struct fx *fx, const struct wx_fetch_request *req, struct result *res)
{
    memset(res, 0, sizeof *res);
    unsigned want = done + 1;
    assert_int_equal(start(fx->f, req, on_result, res), 0);
    assert_true(run_until(fx->base, &done, want));
    assert_int_equal(res->calls, 1);
}

/* One echo through the fetcher's only easy handle; the server must see exactly `want`. */
static void echo_exactly(struct fx *fx, const struct wx_fetch_request *req, const char *want)
{
    struct result res;
    run_one(fx, req, &res);
    assert_int_equal(res.status, WX_FETCH_OK);
    assert_int_equal(res.http_status, 200);
    assert_string_equal(res.body, want);
}

/* With one slot, every request rides the same easy handle; each one's method, body, headers
 * and content type are its own, whatever the one before set. */
static void test_reused_handle_keeps_nothing(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 1});
    char url[128];
    snprintf(url, sizeof url, "%s/echo", fx->url);
    const char *const headers[] = {"X-Test: first", NULL};
    struct wx_fetch_part part = {.name = "media", .filename = "a.bin", .data = "PART", .len = 4};
    struct wx_fetch_request put = {.method = "PUT",
                                   .url = url,
                                   .headers = headers,
                                   .body = "put-body",
                                   .body_len = 8,
                                   .content_type = "text/plain"};
    echo_exactly(fx, &put, "method=PUT\nx-test=first\ncontent-type=text/plain\nbody=put-body");
    struct wx_fetch_request get = {.method = "GET", .url = url};
    echo_exactly(fx, &get, "method=GET\nx-test=\ncontent-type=\nbody=");
    struct result res;
    run_one(fx, &(struct wx_fetch_request){.method = "POST", .url = url, .part = &part}, &res);
    assert_non_null(strstr(res.body, "content-type=multipart/form-data; boundary="));
    assert_non_null(strstr(res.body, "PART"));
    struct wx_fetch_request post = {.method = "POST", .url = url, .body = "abc", .body_len = 3};
    echo_exactly(fx, &post,
                 "method=POST\nx-test=\ncontent-type=application/octet-stream\nbody=abc");
    struct wx_fetch_request del = {.method = "DELETE", .url = url};
    echo_exactly(fx, &del, "method=DELETE\nx-test=\ncontent-type=\nbody=");
    struct wx_fetch_request json = {
        .method = "POST", .url = url, .body = "xyz", .body_len = 3, .content_type = "app/json"};
    echo_exactly(fx, &json, "method=POST\nx-test=\ncontent-type=app/json\nbody=xyz");
    echo_exactly(fx, &get, "method=GET\nx-test=\ncontent-type=\nbody=");
    struct wx_fetch_request empty_put = {.method = "PUT", .url = url};
    echo_exactly(fx, &empty_put,
                 "method=PUT\nx-test=\ncontent-type=application/octet-stream\nbody=");
    echo_exactly(fx, &del, "method=DELETE\nx-test=\ncontent-type=\nbody=");
    echo_exactly(fx, &put, "method=PUT\nx-test=first\ncontent-type=text/plain\nbody=put-body");
    assert_int_equal(fx->f->reuse.easy_made, 1);
    check_counts(fx->f);
}

/* Each request's timeout is its own on a reused handle: a short one after a long one still
 * fires, and a long one after a short one lets a slow answer through. */
static void test_reused_handle_timeouts(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 1});
    struct result res;
    char hang[128], delay[128];
    snprintf(hang, sizeof hang, "%s/hang", fx->url);
    snprintf(delay, sizeof delay, "%s/delay?ms=400", fx->url);
    run_one(fx, &(struct wx_fetch_request){.method = "GET", .url = hang, .timeout_ms = 150}, &res);
    assert_int_equal(res.status, WX_FETCH_TIMEOUT);
    run_one(fx, &(struct wx_fetch_request){.method = "GET", .url = delay, .timeout_ms = 5000},
            &res);
    assert_int_equal(res.status, WX_FETCH_OK);
    assert_true(res.elapsed_ms >= 350);
    run_one(fx, &(struct wx_fetch_request){.method = "GET", .url = hang, .timeout_ms = 300}, &res);
    assert_int_equal(res.status, WX_FETCH_TIMEOUT);
    assert_true(res.elapsed_ms >= 250);
    assert_true(res.elapsed_ms < 3000);
    run_one(fx, &(struct wx_fetch_request){.method = "GET", .url = delay}, &res); /* default */
    assert_int_equal(res.status, WX_FETCH_OK);
    assert_null(strstr(res.error, "timed out")); /* no error left over from before */
    assert_int_equal(fx->f->reuse.easy_made, 1);
}

/* A cut response leaves nothing behind: the next one on the handle is whole. Bodies around
 * the size of the request's inline buffer, and past it, arrive whole too. */
static void test_reused_handle_after_too_large(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 1, .max_response = 100000});
    static const int sizes[] = {0, 1, 510, 511, 512, 513, 1023, 1024, 1025, 100000, 100001, 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char url[128];
        snprintf(url, sizeof url, "%s/%s?n=%d", fx->url, i % 2 ? "chunked" : "big", sizes[i]);
        struct result res;
        run_one(fx, &(struct wx_fetch_request){.method = "GET", .url = url}, &res);
        if (sizes[i] > 100000) {
            assert_int_equal(res.status, WX_FETCH_TOO_LARGE);
            continue;
        }
        assert_int_equal(res.status, WX_FETCH_OK);
        assert_int_equal(res.body_len, sizes[i]);
        for (int k = 0; k < sizes[i] && k < BODY_KEEP; k++)
            assert_int_equal(res.body[k], 'x');
    }
    assert_int_equal(fx->f->reuse.easy_made, 1);
}

/* wx_fetch_free cancels requests on reused handles as on new ones, each once. */
static void test_free_cancels_pooled(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    refetch(fx, &(struct wx_fetch_options){.max_inflight = 3});
    struct result warm[6] = {0};
    for (int i = 0; i < 6; i++)
        get(fx, "/echo", 0, &warm[i]);
    assert_true(run_until(fx->base, &done, 6));
    assert_int_equal(fx->f->reuse.easy_made, 3);
    char hang[128], echo[128];
    snprintf(hang, sizeof hang, "%s/hang", fx->url);
    snprintf(echo, sizeof echo, "%s/echo", fx->url);
    struct cancel c[7];
    for (int i = 0; i < 7; i++) {
        c[i] = (struct cancel){.f = fx->f, .url = echo};
        struct wx_fetch_request req = {.method = "GET", .url = i < 3 ? hang : echo};
        assert_int_equal(start(fx->f, &req, on_cancelled, &c[i]), 0);
    }
    assert_true(run_until(fx->base, &fx->srv.nhung, 3));
    assert_int_equal(fx->f->reuse.easy_made, 3); /* the hung ones took the idle handles */
    wx_fetch_free(fx->f);
    fx->f = NULL;
    for (int i = 0; i < 7; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].restart_rc, WX_FETCH_ECLOSED);
    }
    run_for(fx->base, 50);
}

/* GETs url and returns what the server received as the target (/uri answers it). */
static void target_of(struct fx *fx, const char *path, char *out, size_t cap)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", fx->url, path);
    struct result res;
    run_one(fx, &(struct wx_fetch_request){.method = "GET", .url = url}, &res);
    assert_int_equal(res.status, WX_FETCH_OK);
    snprintf(out, cap, "%s", res.body);
}

/* The request target libcurl makes of url as the fetcher has always handed it over: the
 * URL as libcurl's parser normalizes it, parsed again for the transfer. */
static void target_by_libcurl(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *norm = NULL, *path = NULL, *query = NULL;
    assert_int_equal(curl_url_set(u, CURLUPART_URL, url, 0), CURLUE_OK);
    assert_int_equal(curl_url_get(u, CURLUPART_URL, &norm, 0), CURLUE_OK);
    assert_int_equal(curl_url_set(u, CURLUPART_URL, norm, 0), CURLUE_OK);
    assert_int_equal(curl_url_get(u, CURLUPART_PATH, &path, 0), CURLUE_OK);
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    snprintf(out, cap, "%s%s%s", path, query != NULL ? "?" : "", query != NULL ? query : "");
    curl_free(norm);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
}

/* A URL whose base was checked before is fetched as libcurl's parser makes it, with its own
 * query; the refusals hold for it; more bases than are remembered all work. */
static void test_url_bases(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    static const char *const paths[] = {
        "/uri?a=1",      "/uri?a=2&token=x-Y_z.~%20!$'()*+,;=:@/?",
        "/uri",          "/uri?",
        "/uri#frag",     "/uri?d=1#frag",
        "/x/../uri?b=1", "/x/../uri?b=2",
        "/x/./../uri",   "/uri?c=%zz",
        "/uri?f=\"q\"",
    };
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            char url[256], got[BODY_KEEP + 1], want[256];
            snprintf(url, sizeof url, "%s%s", fx->url, paths[i]);
            target_by_libcurl(url, want, sizeof want);
            target_of(fx, paths[i], got, sizeof got);
            assert_string_equal(got, want);
        }
    }
    char url[256];
    static const char *const bad[] = {"/uri?a b", "/uri?a\r\nX-Evil: 1", "/uri?\x01", "/uri?\x7f"};
    struct result res = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(url, sizeof url, "%s%s", fx->url, bad[i]);
        struct wx_fetch_request req = {.method = "GET", .url = url};
        assert_int_equal(start(fx->f, &req, on_result, &res), WX_FETCH_EINVAL);
    }
    /* Twice as many bases as are remembered, twice over. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 2 * FETCH_BASES_MAX; i++) {
            char path[64], want[64], got[BODY_KEEP + 1];
            snprintf(path, sizeof path, "/p%d/../uri?i=%d", i, i);
            snprintf(want, sizeof want, "/uri?i=%d", i);
            target_of(fx, path, got, sizeof got);
            assert_string_equal(got, want);
        }
    }
    assert_int_equal(res.calls, 0);
}

/* More content types than the fetcher keeps header lists for: each request sends its own. */
static void test_many_content_types(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    char url[128];
    snprintf(url, sizeof url, "%s/echo", fx->url);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < FETCH_CTYPES_MAX + 4; i++) {
            char ctype[32], want[128];
            snprintf(ctype, sizeof ctype, "text/x-%d", i);
            snprintf(want, sizeof want, "method=POST\nx-test=\ncontent-type=%s\nbody=%d", ctype, i);
            char body[8];
            int n = snprintf(body, sizeof body, "%d", i);
            struct wx_fetch_request req = {.method = "POST",
                                           .url = url,
                                           .body = body,
                                           .body_len = (size_t)n,
                                           .content_type = ctype};
            echo_exactly(fx, &req, want);
        }
    }
}

/* ======================================================================================
 * TLS
 * ====================================================================================== */

/* A self-signed certificate for IP 127.0.0.1, written to path as PEM. */
static SSL_CTX *tls_server_ctx(const char *path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *crt = X509_new();
    X509_set_version(crt, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
    X509_gmtime_adj(X509_getm_notBefore(crt), -3600);
    X509_gmtime_adj(X509_getm_notAfter(crt), 3600);
    X509_set_pubkey(crt, key);
    X509_NAME *name = X509_get_subject_name(crt);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"wxbank test", -1,
                               -1, 0);
    X509_set_issuer_name(crt, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, crt, crt, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    assert_non_null(san);
    X509_add_ext(crt, san, -1);
    X509_EXTENSION_free(san);
    assert_true(X509_sign(crt, key, EVP_sha256()) > 0);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    PEM_write_X509(fp, crt);
    fclose(fp);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(ctx, crt), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(crt);
    EVP_PKEY_free(key);
    return ctx;
}

static void test_tls(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    char ca[] = "/tmp/wxfetch-ca-XXXXXX";
    int fd = mkstemp(ca);
    assert_true(fd >= 0);
    close(fd);
    SSL_CTX *ctx = tls_server_ctx(ca);
    struct server tls;
    server_start(&tls, fx->base, ctx);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/echo", tls.port);
    struct wx_fetch_request req = {.method = "GET", .url = url};

    /* The system's CAs do not know our certificate: verification is on by default. */
    struct result untrusted = {0};
    assert_int_equal(start(fx->f, &req, on_result, &untrusted), 0);
    assert_true(run_until(fx->base, &done, 1));
    assert_int_equal(untrusted.status, WX_FETCH_ERROR);
    printf("# without ca_file: %s\n", untrusted.error);

    /* With the certificate as a CA: 40 requests over a few reused connections. */
    wx_fetch_t *trusting =
        wx_fetch_new(fx->base, &(struct wx_fetch_options){.max_inflight = 4, .ca_file = ca});
    assert_non_null(trusting);
    unsigned before = tls.connections;
    struct result res[40] = {0};
    for (int i = 0; i < 40; i++)
        assert_int_equal(start(trusting, &req, on_result, &res[i]), 0);
    assert_true(run_until(fx->base, &done, 41));
    for (int i = 0; i < 40; i++) {
        assert_int_equal(res[i].status, WX_FETCH_OK);
        assert_non_null(strstr(res[i].body, "method=GET"));
    }
    assert_true(tls.connections - before <= 4);
    wx_fetch_free(trusting);
    server_stop(&tls);
    SSL_CTX_free(ctx);
    unlink(ca);
}

/* ======================================================================================
 * Logs
 * ====================================================================================== */

/* Failures are logged by host and path: not the query (access tokens), not a user name. */
static void test_logs_hide_secrets(void **state)
{
    struct fx *fx = *state;
    reset_counters();
    char path[] = "/tmp/wxfetch-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    enum wx_log_level level = wx_log_get_level();
    wx_log_set_level(WX_LOG_DEBUG);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);

    char url[256];
    snprintf(url, sizeof url,
             "http://alice:pw6225881234567890@127.0.0.1:%d/hang?access_token=TOKEN6225881234567890",
             fx->srv.port);
    struct result hung = {0}, ok = {0};
    assert_int_equal(start(fx->f,
                           &(struct wx_fetch_request){.method = "POST",
                                                      .url = url,
                                                      .body = "pan=6225881234567890",
                                                      .body_len = 20,
                                                      .timeout_ms = 100},
                           on_result, &hung),
                     0);
    get(fx, "/echo?card=6225881234567890", 0, &ok);
    assert_true(run_until(fx->base, &done, 2));

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    wx_log_set_level(level);
    char text[8192] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    text[n] = '\0';
    printf("# logged:\n%s", text);
    assert_int_equal(hung.status, WX_FETCH_TIMEOUT);
    assert_int_equal(ok.status, WX_FETCH_OK);
    assert_non_null(strstr(text, "127.0.0.1"));
    assert_non_null(strstr(text, "/hang"));
    assert_null(strstr(text, "6225881234567890"));
    assert_null(strstr(text, "access_token"));
    assert_null(strstr(text, "alice"));
}

int main(void)
{
    /* The server writes on while a client that cut a response short is gone already. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_while_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_handle_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_handle_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_handle_after_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels_pooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_bases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_content_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_hide_secrets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
