/*
 * test_http.c - the HTTP/1.1 listener (src/net/http.c) from the wire, in-process.
 *
 * A hub with the listener on 127.0.0.1:0 runs on a thread of its own, as `wxbank serve` runs
 * it, with small limits (a 4 KiB body, a 1 s timeout). The test speaks raw HTTP over
 * blocking sockets, each with a receive timeout so that a server that hangs fails the test
 * instead of stalling it. Every test runs three times: with the hub's loop as the only I/O
 * thread, and with one and two I/O threads besides it.
 *
 * The routes cover every way a handler can answer: /echo on the hub's loop, at once;
 * /later on the hub's loop, 50 ms later from a timer; /now on the I/O thread, at once;
 * /via-hub on the I/O thread, handing the work to the hub, which answers; /roundtrip on the
 * I/O thread, to the hub and back to the same I/O thread, which answers. Each handler checks
 * that it runs on the thread the contract promises and answers 500 when it does not. /big
 * answers megabytes (to fill the socket) and /stop stops the hub from its own loop.
 *
 * Covered: keep-alive (HTTP/1.1, 1.0, 1.0 with keep-alive, Connection: close), pipelining
 * (in order, across delayed answers, with bodies larger than the input buffer, stopping at a
 * close or a refusal), requests in 1-byte writes and bodies in pieces, Expect: 100-continue,
 * HEAD, 404 and every refusal the listener gives (each then closes with a FIN, not a
 * reset), the limits just under and just over, 408 and idle close, half-closing clients,
 * max_connections, clients that leave before their answer (and the counters afterwards), a
 * client that reads too slowly for the socket, shutdown with work in flight, the headers
 * every answer carries, wx_hub_post from foreign threads (a lost wake-up stalls it), and
 * 50 connections x 200 requests from five client threads.
 *
 * Every listener also listens for HTTPS (a self-signed pair made in a temporary directory
 * with wx_tls_make_self_signed), and the client speaks TLS through OpenSSL over the same
 * blocking sockets, verifying the certificate for 127.0.0.1. Over TLS: a GET and a POST with
 * a body, every route on one connection, pipelining and a body larger than the input buffer
 * (OpenSSL then holds decrypted bytes the socket no longer shows), an answer of megabytes to
 * a client that reads slowly (the server's writes wait for the socket), a TLS 1.3 key update
 * (the server must write while it reads), the policy (TLS 1.0 and 1.1 refused by the server,
 * CBC suites refused, the server's suite order, renegotiation refused), a silent client, half
 * a handshake and plain HTTP closed without an answer, and a shutdown with TLS connections in
 * every state. Every answer on HTTPS must carry Strict-Transport-Security, and none on HTTP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/net.h"
#include "util/limits.h"
#include "util/log.h"

#define BODY_MAX       4096u  /* the listener's body_max in these tests */
#define TIMEOUT_S      1u     /* and its timeout_s */
#define CONNS_MAX      128u   /* and max_connections (the concurrency test needs 50) */
#define LATER_MS       50     /* /later answers this long after the request */
#define IO_TIMEOUT_MS  3000   /* longest a client waits for any one answer */
#define CLIENT_BUF     32768u /* a client's receive buffer */
#define ANSWER_BODY    20480u /* the largest answer body the tests read */
#define SWEEP_SLACK    700    /* the listener checks deadlines every 500 ms */
#define CLOSE_WAIT_MS  1000   /* a close the client expects now (not after a 2 s linger) */
#define IO_SLOTS       17     /* THREADS_MAX in http.c, plus one */
#define BIG_MAX_KIB    16384  /* /big answers at most 16 MiB */
#define STOP_ANSWER_MS 30     /* /stop answers this long after it stopped the hub */
#define HSTS_VALUE     "max-age=31536000"

/* The HTTPS listener's certificate and key, made once for the whole run, and the client's
 * context that trusts exactly that certificate. */
static char tls_dir[64], tls_cert[128], tls_key[128];
static SSL_CTX *client_tls;

/* ======================================================================================
 * The server: a hub and its listener on a thread of their own
 * ====================================================================================== */

struct server {
    wx_hub_t *hub;
    wx_http_t *http;
    struct event *tick; /* checks stop and stops the hub, on the hub's loop */
    pthread_t thread;   /* runs wx_hub_run */
    bool running;
    atomic_bool stop;
    unsigned threads;              /* I/O threads besides the hub's loop */
    wx_tls_t *tls;                 /* the HTTPS listener's certificate */
    struct sockaddr_in addr;       /* where the listener is bound */
    struct sockaddr_in tls_addr;   /* and where it listens for HTTPS */
    pthread_mutex_t io_lock;       /* guards io_thread and io_known */
    pthread_t io_thread[IO_SLOTS]; /* the thread seen running each I/O thread index */
    bool io_known[IO_SLOTS];
};

static struct server srv; /* the group's server */

/* True when the caller runs on the I/O thread that read req: the hub's loop for index 0,
 * the same thread every time, and never the hub's loop, for the others. */
static bool on_io_thread(struct server *sv, const wx_http_req_t *req)
{
    unsigned i = wx_http_thread(req);
    if (i >= wx_http_threads(sv->http) || i >= IO_SLOTS) return false;
    if (i == 0) return wx_hub_in_loop(sv->hub);
    if (wx_hub_in_loop(sv->hub)) return false;
    pthread_mutex_lock(&sv->io_lock);
    bool ok = true;
    if (!sv->io_known[i]) {
        sv->io_thread[i] = pthread_self();
        sv->io_known[i] = true;
    } else {
        ok = pthread_equal(sv->io_thread[i], pthread_self()) != 0;
    }
    pthread_mutex_unlock(&sv->io_lock);
    return ok;
}

/* Answers "<route> q=<query>\n" with X-Route: route, or 500 when the handler found itself
 * on the wrong thread. */
static void reply(wx_http_req_t *req, const char *route, bool right_thread)
{
    char body[256];
    wx_http_add_header(req, "X-Route", route);
    wx_http_add_header(req, "Cache-Control", "no-store");
    if (!right_thread) {
        snprintf(body, sizeof body, "%s: on the wrong thread", route);
        wx_http_error(req, 500, body);
        return;
    }
    const char *q = wx_http_query(req);
    int n = snprintf(body, sizeof body, "%s q=%s\n", route, q != NULL ? q : "-");
    wx_http_send(req, 200, "text/plain; charset=utf-8", body, (size_t)n);
}

static const char *method_name(enum wx_http_method m)
{
    switch (m) {
    case WX_HTTP_GET:
        return "GET";
    case WX_HTTP_HEAD:
        return "HEAD";
    case WX_HTTP_POST:
        return "POST";
    }
    return "?";
}

/* On the hub's loop, at once: "METHOD PATH q=QUERY x=X-TEST len=N\n" and the body. */
static void route_echo(wx_http_req_t *req, void *arg)
{
    struct server *sv = arg;
    if (!wx_hub_in_loop(sv->hub)) {
        reply(req, "echo", false);
        return;
    }
    size_t len = 0;
    const uint8_t *body = wx_http_body(req, &len);
    const char *q = wx_http_query(req);
    const char *x = wx_http_header(req, "x-test");
    const char *m = method_name(wx_http_method(req));
    const char *path = wx_http_path(req);
    const char *qv = q != NULL ? q : "-", *xv = x != NULL ? x : "-";
    int n = snprintf(NULL, 0, "%s %s q=%s x=%s len=%zu\n", m, path, qv, xv, len);
    char *out = malloc((size_t)n + 1 + len);
    if (out == NULL) abort(); /* not cmocka's assert: this is the server's thread */
    snprintf(out, (size_t)n + 1, "%s %s q=%s x=%s len=%zu\n", m, path, qv, xv, len);
    if (len > 0) memcpy(out + n, body, len);
    wx_http_add_header(req, "X-Route", "echo");
    wx_http_add_header(req, "Cache-Control", "no-store");
    wx_http_send(req, 200, "application/octet-stream", out, (size_t)n + len);
    free(out);
}

/* /later's timers find their server here: they run on the hub's thread that set it. */
static _Thread_local struct server *later_server;

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reply(arg, "later", wx_hub_in_loop(later_server->hub));
}

/* On the hub's loop, LATER_MS later, from a timer. */
static void route_later(wx_http_req_t *req, void *arg)
{
    struct server *sv = arg;
    later_server = sv;
    struct timeval tv = {.tv_sec = 0, .tv_usec = LATER_MS * 1000};
    if (!wx_hub_in_loop(sv->hub) ||
        event_base_once(wx_hub_base(sv->hub), -1, EV_TIMEOUT, on_later, req, &tv) != 0) {
        reply(req, "later", false);
    }
}

/* The byte at offset i of a /big answer. */
static char big_byte(size_t i)
{
    return (char)('!' + (i * 7 + i / 4093) % 90);
}

/* On the hub's loop: an answer of ?kib=N KiB (at most BIG_MAX_KIB), to fill the socket. */
static void route_big(wx_http_req_t *req, void *arg)
{
    (void)arg;
    char v[16];
    int n = wx_http_query_param(wx_http_query(req), "kib", v, sizeof v);
    long kib = n > 0 ? strtol(v, NULL, 10) : -1;
    if (kib < 0 || kib > BIG_MAX_KIB) {
        wx_http_error(req, 400, "kib: 0 to BIG_MAX_KIB");
        return;
    }
    size_t len = (size_t)kib << 10;
    char *body = malloc(len + 1);
    if (body == NULL) abort();
    for (size_t i = 0; i < len; i++)
        body[i] = big_byte(i);
    wx_http_add_header(req, "X-Route", "big");
    wx_http_send(req, 200, "application/octet-stream", body, len);
    free(body);
}

static void on_stop_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reply(arg, "stop", wx_hub_in_loop(later_server->hub));
}

/* On the hub's loop: begins the hub's shutdown, and answers STOP_ANSWER_MS later (before
 * the hub leaves its loop, 100 ms after the stop, when no adapter is busy). */
static void route_stop(wx_http_req_t *req, void *arg)
{
    struct server *sv = arg;
    later_server = sv;
    wx_hub_stop(sv->hub);
    struct timeval tv = {.tv_sec = 0, .tv_usec = STOP_ANSWER_MS * 1000};
    if (event_base_once(wx_hub_base(sv->hub), -1, EV_TIMEOUT, on_stop_later, req, &tv) != 0) {
        reply(req, "stop", false);
    }
}

/* On the I/O thread, at once. */
static void route_now(wx_http_req_t *req, void *arg)
{
    reply(req, "now", on_io_thread(arg, req));
}

/* Work a threaded route hands to the hub's loop (and, for /roundtrip, back). */
struct handoff {
    struct wx_hub_task task;
    struct server *sv;
    wx_http_req_t *req;
    bool ok;      /* every thread check so far held */
    pthread_t io; /* the I/O thread the handler ran on */
};

static void via_hub_run(struct wx_hub_task *t, bool cancelled)
{
    struct handoff *h = (struct handoff *)t;
    if (!cancelled) reply(h->req, "via-hub", h->ok && wx_hub_in_loop(h->sv->hub));
    free(h);
}

/* On the I/O thread; the hub answers. */
static void route_via_hub(wx_http_req_t *req, void *arg)
{
    struct handoff *h = calloc(1, sizeof *h);
    if (h == NULL) abort();
    h->sv = arg;
    h->req = req;
    h->ok = on_io_thread(arg, req);
    h->task.run = via_hub_run;
    wx_hub_post(h->sv->hub, &h->task);
}

static void roundtrip_back(struct wx_hub_task *t, bool cancelled)
{
    struct handoff *h = (struct handoff *)t;
    if (!cancelled) {
        bool same = pthread_equal(h->io, pthread_self()) != 0;
        reply(h->req, "roundtrip", h->ok && same && on_io_thread(h->sv, h->req));
    }
    free(h);
}

static void roundtrip_hub(struct wx_hub_task *t, bool cancelled)
{
    struct handoff *h = (struct handoff *)t;
    if (cancelled) {
        free(h);
        return;
    }
    h->ok = h->ok && wx_hub_in_loop(h->sv->hub);
    h->task.run = roundtrip_back;
    wx_http_post(h->req, &h->task);
}

/* On the I/O thread, to the hub's loop and back to the same I/O thread, which answers. */
static void route_roundtrip(wx_http_req_t *req, void *arg)
{
    struct handoff *h = calloc(1, sizeof *h);
    if (h == NULL) abort();
    h->sv = arg;
    h->req = req;
    h->ok = on_io_thread(arg, req);
    h->io = pthread_self();
    h->task.run = roundtrip_hub;
    wx_hub_post(h->sv->hub, &h->task);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *sv = arg;
    if (atomic_load(&sv->stop)) wx_hub_stop(sv->hub);
}

static void *server_main(void *arg)
{
    struct server *sv = arg;
    wx_hub_run(sv->hub);
    return NULL;
}

/* Parses "127.0.0.1:PORT" into sa. */
static int parse_address(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL) return -1;
    char host[64];
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof host) return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void server_stop(struct server *sv);

/* Starts a hub and a listener with these limits, and the hub's thread. 0, or -1. */
static int server_start(struct server *sv, unsigned threads, unsigned max_connections,
                        unsigned timeout_s)
{
    char err[256];
    memset(sv, 0, sizeof *sv);
    pthread_mutex_init(&sv->io_lock, NULL);
    sv->threads = threads;
    sv->hub = wx_hub_new(NULL, NULL, err, sizeof err);
    if (sv->hub == NULL) goto fail;
    if (wx_tls_new(tls_cert, tls_key, &sv->tls, err, sizeof err) != 0) goto fail;
    struct wx_http_options ho = {.listen = "127.0.0.1:0",
                                 .body_max = BODY_MAX,
                                 .timeout_s = timeout_s,
                                 .max_connections = max_connections,
                                 .threads = threads,
                                 .tls_listen = "127.0.0.1:0",
                                 .tls = sv->tls};
    sv->http = wx_http_start(sv->hub, &ho, err, sizeof err);
    if (sv->http == NULL) goto fail;
    wx_http_route(sv->http, "/echo", false, route_echo, sv);
    wx_http_route(sv->http, "/echo/", true, route_echo, sv);
    wx_http_route(sv->http, "/later", false, route_later, sv);
    wx_http_route(sv->http, "/big", false, route_big, sv);
    wx_http_route(sv->http, "/stop", false, route_stop, sv);
    wx_http_route_secure(sv->http, "/m/", true, route_echo, sv);
    wx_http_route_threaded(sv->http, "/now", false, route_now, sv);
    wx_http_route_threaded(sv->http, "/via-hub", false, route_via_hub, sv);
    wx_http_route_threaded(sv->http, "/roundtrip", false, route_roundtrip, sv);
    if (parse_address(wx_http_address(sv->http), &sv->addr) != 0 ||
        parse_address(wx_http_tls_address(sv->http), &sv->tls_addr) != 0) {
        snprintf(err, sizeof err, "bad address %s or %s", wx_http_address(sv->http),
                 wx_http_tls_address(sv->http));
        goto fail;
    }
    sv->tick = event_new(wx_hub_base(sv->hub), -1, EV_PERSIST, on_tick, sv);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 10000};
    if (sv->tick == NULL || event_add(sv->tick, &tv) != 0) goto fail;
    if (pthread_create(&sv->thread, NULL, server_main, sv) != 0) goto fail;
    sv->running = true;
    return 0;
fail:
    fprintf(stderr, "server: %s\n", err);
    server_stop(sv);
    return -1;
}

/* Stops the hub (from its own loop), then frees what the server holds. */
static void server_stop(struct server *sv)
{
    if (sv->running) {
        atomic_store(&sv->stop, true);
        pthread_join(sv->thread, NULL);
        sv->running = false;
    }
    if (sv->tick != NULL) event_free(sv->tick);
    if (sv->http != NULL) wx_http_free(sv->http);
    if (sv->hub != NULL) wx_hub_free(sv->hub);
    wx_tls_free(sv->tls);
    pthread_mutex_destroy(&sv->io_lock);
    memset(sv, 0, sizeof *sv);
}

static void stats(const struct server *sv, struct wx_http_stats *st)
{
    wx_http_stats(sv->http, st);
}

/* ======================================================================================
 * The client: blocking sockets with timeouts
 * ====================================================================================== */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

struct client {
    int fd;
    SSL *ssl;   /* NULL: plain HTTP */
    size_t len; /* bytes in buf not yet taken by read_answer */
    char buf[CLIENT_BUF];
};

struct answer {
    bool tls; /* it came over HTTPS */
    int status;
    char head[4096]; /* the status line and header lines, NUL-terminated */
    size_t head_len;
    long content_length; /* -1 when absent */
    char body[ANSWER_BODY + 1];
    size_t body_len;
    char error[160]; /* why read_answer failed */
};

/* Connects to addr with receive and send timeouts, and a receive buffer of rcvbuf bytes
 * unless it is 0. NULL on failure (errno). */
static struct client *dial_to(const struct sockaddr_in *addr, int rcvbuf)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (cl == NULL) return NULL;
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000, .tv_usec = 0};
    int one = 1;
    if (cl->fd < 0 || setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        (rcvbuf > 0 && setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) ||
        connect(cl->fd, (const struct sockaddr *)addr, sizeof *addr) != 0) {
        if (cl->fd >= 0) close(cl->fd);
        free(cl);
        return NULL;
    }
    return cl;
}

/* Connects to sv with receive and send timeouts. NULL on failure (errno). */
static struct client *dial(const struct server *sv)
{
    return dial_to(&sv->addr, 0);
}

static struct client *dial_ok(const struct server *sv)
{
    struct client *cl = dial(sv);
    if (cl == NULL) fail_msg("connect: %s", strerror(errno));
    return cl;
}

static void hang_up(struct client *cl)
{
    if (cl == NULL) return;
    SSL_free(cl->ssl);
    close(cl->fd);
    free(cl);
}

/* The reason of OpenSSL's last error on this thread, and the queue emptied. */
static const char *tls_reason(void)
{
    static _Thread_local char why[160];
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(why, sizeof why, "%s (errno: %s)", r != NULL ? r : "no OpenSSL error",
             strerror(errno));
    ERR_clear_error();
    return why;
}

/* Connects to sv's HTTPS listener and shakes hands with ctx (client_tls: verifying the
 * certificate for 127.0.0.1). NULL on failure, with the reason in why. */
static struct client *dial_tls_with(const struct server *sv, SSL_CTX *ctx, int rcvbuf,
                                    const char **why)
{
    *why = NULL;
    struct client *cl = dial_to(&sv->tls_addr, rcvbuf);
    if (cl == NULL) {
        *why = strerror(errno);
        return NULL;
    }
    ERR_clear_error();
    cl->ssl = SSL_new(ctx);
    if (cl->ssl == NULL || SSL_set_fd(cl->ssl, cl->fd) != 1 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cl->ssl), "127.0.0.1") != 1 ||
        SSL_connect(cl->ssl) != 1) {
        *why = tls_reason();
        hang_up(cl);
        return NULL;
    }
    return cl;
}

static struct client *dial_tls_ok(const struct server *sv)
{
    const char *why;
    struct client *cl = dial_tls_with(sv, client_tls, 0, &why);
    if (cl == NULL) fail_msg("TLS connect: %s", why);
    return cl;
}

/* Closes with a reset instead of a FIN. */
static void reset(struct client *cl)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    hang_up(cl);
}

/* Sends all n bytes. 0, or -1. */
static int send_all(struct client *cl, const void *p, size_t n)
{
    const char *s = p;
    while (cl->ssl != NULL && n > 0) {
        int k = SSL_write(cl->ssl, s, n < INT32_MAX ? (int)n : INT32_MAX);
        if (k <= 0) return -1;
        s += k;
        n -= (size_t)k;
    }
    while (n > 0) {
        ssize_t k = send(cl->fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static void send_ok(struct client *cl, const void *p, size_t n)
{
    if (send_all(cl, p, n) != 0) fail_msg("send: %s", strerror(errno));
}

static void send_str(struct client *cl, const char *s)
{
    send_ok(cl, s, strlen(s));
}

/* Reads more into cl->buf. >0 bytes read, 0 at EOF, -1 on timeout or error (errno). */
static ssize_t fill(struct client *cl)
{
    if (cl->len == sizeof cl->buf) {
        errno = ENOBUFS;
        return -1;
    }
    while (cl->ssl != NULL) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(cl->ssl, cl->buf + cl->len, (int)(sizeof cl->buf - cl->len));
        if (n > 0) {
            cl->len += (size_t)n;
            return n;
        }
        int e = SSL_get_error(cl->ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN) return 0; /* close_notify, or the end (client_tls) */
        if (e == SSL_ERROR_SYSCALL && errno == EINTR) continue;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) errno = EAGAIN;
        if (errno == 0) errno = EPROTO;
        ERR_clear_error();
        return -1;
    }
    for (;;) {
        ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0) cl->len += (size_t)n;
        return n;
    }
}

static int answer_fail(struct answer *a, const char *what)
{
    snprintf(a->error, sizeof a->error, "%s (errno: %s)", what, strerror(errno));
    return -1;
}

/* The value of header name in a (any case) copied into out, or NULL. */
static const char *header_value(const struct answer *a, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *line = strstr(a->head, "\r\n");
    while (line != NULL && line[2] != '\r' && line[2] != '\0') {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (end == NULL) return NULL;
        if ((size_t)(end - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(end - v);
            if (vl >= cap) vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        line = end;
    }
    return NULL;
}

/* How many header lines called name a has. */
static unsigned header_count(const struct answer *a, const char *name)
{
    size_t nl = strlen(name);
    unsigned n = 0;
    for (const char *p = strstr(a->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') n++;
    }
    return n;
}

/*
 * Reads one answer from cl into a: its head, and its body by Content-Length unless
 * no_body (the answer to HEAD) or it is a 1xx. 0, or -1 with the reason in a->error.
 * Bytes after the answer stay in cl for the next call.
 */
static int read_answer(struct client *cl, struct answer *a, bool no_body)
{
    memset(a, 0, offsetof(struct answer, body));
    a->tls = cl->ssl != NULL;
    a->body[0] = '\0';
    a->body_len = 0;
    a->error[0] = '\0';
    char *end;
    while ((end = memmem(cl->buf, cl->len, "\r\n\r\n", 4)) == NULL) {
        ssize_t n = fill(cl);
        if (n == 0) return answer_fail(a, "connection closed before an answer");
        if (n < 0) return answer_fail(a, "no answer in time");
    }
    size_t head_len = (size_t)(end + 4 - cl->buf);
    if (head_len >= sizeof a->head) return answer_fail(a, "answer head too large");
    memcpy(a->head, cl->buf, head_len);
    a->head[head_len] = '\0';
    a->head_len = head_len;
    if (head_len < 13 || memcmp(a->head, "HTTP/1.1 ", 9) != 0) {
        return answer_fail(a, "not an HTTP/1.1 status line");
    }
    a->status = (int)strtol(a->head + 9, NULL, 10);
    char v[32];
    a->content_length =
        header_value(a, "Content-Length", v, sizeof v) != NULL ? strtol(v, NULL, 10) : -1;
    size_t body_len = 0;
    if (!no_body && a->status >= 200 && a->content_length > 0) {
        body_len = (size_t)a->content_length;
    }
    if (body_len > ANSWER_BODY) return answer_fail(a, "answer body too large");
    while (cl->len < head_len + body_len) {
        ssize_t n = fill(cl);
        if (n == 0) return answer_fail(a, "connection closed inside the body");
        if (n < 0) return answer_fail(a, "body not complete in time");
    }
    memcpy(a->body, cl->buf + head_len, body_len);
    a->body[body_len] = '\0';
    a->body_len = body_len;
    memmove(cl->buf, cl->buf + head_len + body_len, cl->len - head_len - body_len);
    cl->len -= head_len + body_len;
    return 0;
}

static void answer_ok(struct client *cl, struct answer *a, bool no_body)
{
    if (read_answer(cl, a, no_body) != 0) {
        fail_msg("%s; got %zu bytes: %.*s", a->error, cl->len, (int)cl->len, cl->buf);
    }
}

/* NULL when the server closes the connection next, within CLOSE_WAIT_MS, with nothing
 * more to say, with a FIN and not a reset (a reset can destroy an answer the client has not
 * read yet); else what happened instead. */
static const char *close_missing(struct client *cl)
{
    static _Thread_local char why[160];
    struct pollfd p = {.fd = cl->fd, .events = POLLIN};
    bool held = cl->ssl != NULL && SSL_pending(cl->ssl) > 0; /* decrypted, not yet taken */
    if (cl->len == 0 && !held && poll(&p, 1, CLOSE_WAIT_MS) == 0) {
        snprintf(why, sizeof why, "no close within %d ms", CLOSE_WAIT_MS);
        return why;
    }
    ssize_t n = cl->len > 0 ? 1 : fill(cl);
    if (n == 0) return NULL;
    if (n > 0) {
        snprintf(why, sizeof why, "more bytes: %.*s", (int)(cl->len < 100 ? cl->len : 100),
                 cl->buf);
    } else {
        snprintf(why, sizeof why, "%s", strerror(errno));
    }
    return why;
}

static void closed_ok(struct client *cl)
{
    const char *why = close_missing(cl);
    if (why != NULL) fail_msg("expected the server to close; got %s", why);
}

/* True when nothing arrives within ms. */
static bool silent_for(struct client *cl, int ms)
{
    if (cl->len > 0 || (cl->ssl != NULL && SSL_pending(cl->ssl) > 0)) return false;
    struct pollfd p = {.fd = cl->fd, .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

/* Builds "METHOD TARGET HTTP/1.1" with Host, the extra header lines, and the body with its
 * Content-Length when body is not NULL. Returns the length. */
static size_t build_request(char *out, size_t cap, const char *method, const char *target,
                            const char *extra, const void *body, size_t body_len)
{
    int n = snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: test\r\n%s", method, target,
                     extra != NULL ? extra : "");
    if (n <= 0 || (size_t)n >= cap) abort(); /* also on the client threads: no cmocka */
    size_t len = (size_t)n;
    if (body != NULL) {
        n = snprintf(out + len, cap - len, "Content-Length: %zu\r\n", body_len);
        len += (size_t)n;
    }
    if (len + 2 + body_len >= cap) abort();
    memcpy(out + len, "\r\n", 2);
    len += 2;
    if (body != NULL && body_len > 0) memcpy(out + len, body, body_len);
    return len + (body != NULL ? body_len : 0);
}

/* The body /now, /via-hub, /later and /roundtrip answer. */
static void simple_body(char *out, size_t cap, const char *route, const char *query)
{
    snprintf(out, cap, "%s q=%s\n", route, query != NULL ? query : "-");
}

/* Asserts the headers every answer carries and that Content-Length is the body's. */
static void common_headers_ok(const struct answer *a, bool no_body)
{
    char v[128];
    assert_non_null(header_value(a, "Date", v, sizeof v));
    assert_int_equal(strlen(v), 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    assert_non_null(strstr(v, " GMT"));
    assert_non_null(header_value(a, "Content-Type", v, sizeof v));
    assert_true(a->content_length >= 0);
    if (!no_body) assert_int_equal(a->content_length, a->body_len);
    assert_string_equal(header_value(a, "X-Content-Type-Options", v, sizeof v), "nosniff");
    assert_string_equal(header_value(a, "X-Frame-Options", v, sizeof v), "DENY");
    assert_int_equal(header_count(a, "Content-Length"), 1);
    assert_int_equal(header_count(a, "Date"), 1);
    /* HSTS on every answer over HTTPS, and never over HTTP (RFC 6797 8.1) */
    assert_int_equal(header_count(a, "Strict-Transport-Security"), a->tls ? 1 : 0);
    if (a->tls) {
        assert_string_equal(header_value(a, "Strict-Transport-Security", v, sizeof v), HSTS_VALUE);
    }
}

/* Asserts a route's 200 with its added headers and the expected body. */
static void route_answer_ok(const struct answer *a, const char *route, const char *body)
{
    char v[64];
    if (a->status != 200) fail_msg("status %d, head:\n%s%s", a->status, a->head, a->body);
    common_headers_ok(a, false);
    assert_string_equal(header_value(a, "X-Route", v, sizeof v), route);
    assert_string_equal(header_value(a, "Cache-Control", v, sizeof v), "no-store");
    assert_string_equal(a->body, body);
}

/* Sends GET target on cl and asserts the answer of route with query q. */
static void get_simple_ok(struct client *cl, const char *route, const char *query)
{
    char req[512], target[256], want[256];
    struct answer a;
    snprintf(target, sizeof target, "/%s%s%s", route, query != NULL ? "?" : "",
             query != NULL ? query : "");
    send_ok(cl, req, build_request(req, sizeof req, "GET", target, NULL, NULL, 0));
    answer_ok(cl, &a, false);
    simple_body(want, sizeof want, route, query);
    route_answer_ok(&a, route, want);
    assert_null(header_value(&a, "Connection", want, sizeof want));
}

/* Waits up to 3 s for the listener to have no connection open. */
static void wait_all_closed(const struct server *sv)
{
    struct wx_http_stats st;
    int64_t until = now_ms() + 3000;
    do {
        stats(sv, &st);
        if (st.open == 0) return;
        sleep_ms(10);
    } while (now_ms() < until);
    fail_msg("%u connections still open", st.open);
}

/* ======================================================================================
 * Tests
 * ====================================================================================== */

static void test_echo_sees_the_request(void **state)
{
    struct server *sv = *state;
    assert_int_equal(wx_http_threads(sv->http), sv->threads + 1);
    struct client *cl = dial_ok(sv);
    struct answer a;
    char req[512];
    size_t n = build_request(req, sizeof req, "POST", "/echo?a=1&b=%20x", "X-Test: hello\r\n",
                             "0123456789", 10);
    send_ok(cl, req, n);
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "echo", "POST /echo q=a=1&b=%20x x=hello len=10\n0123456789");
    char v[64];
    assert_string_equal(header_value(&a, "Content-Type", v, sizeof v), "application/octet-stream");

    /* a prefix route sees the whole path; a GET has no body */
    n = build_request(req, sizeof req, "GET", "/echo/sub/path", NULL, NULL, 0);
    send_ok(cl, req, n);
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "echo", "GET /echo/sub/path q=- x=- len=0\n");

    /* the listener's own /healthz */
    send_str(cl, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n");
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 200);
    common_headers_ok(&a, false);
    assert_string_equal(a.body, "ok\n");
    hang_up(cl);
}

static void test_keep_alive_serves_every_route(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    static const char *routes[] = {"now", "later", "via-hub", "roundtrip", "echo"};
    for (unsigned i = 0; i < 20; i++) {
        char q[32];
        snprintf(q, sizeof q, "i=%u", i);
        if (i % 5 == 4) {
            char req[512], want[128];
            struct answer a;
            char target[64];
            snprintf(target, sizeof target, "/echo?%s", q);
            send_ok(cl, req, build_request(req, sizeof req, "GET", target, NULL, NULL, 0));
            answer_ok(cl, &a, false);
            snprintf(want, sizeof want, "GET /echo q=%s x=- len=0\n", q);
            route_answer_ok(&a, "echo", want);
        } else {
            get_simple_ok(cl, routes[i % 5], q);
        }
    }
    /* the largest body allowed, which outgrows the connection's first input buffer */
    static char body[BODY_MAX];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    static char req[BODY_MAX + 512];
    static struct answer a;
    size_t n =
        build_request(req, sizeof req, "POST", "/echo", "X-Test: big\r\n", body, sizeof body);
    send_ok(cl, req, n);
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 200);
    const char *line = "POST /echo q=- x=big len=4096\n";
    assert_int_equal(a.body_len, strlen(line) + sizeof body);
    assert_memory_equal(a.body, line, strlen(line));
    assert_memory_equal(a.body + strlen(line), body, sizeof body);
    get_simple_ok(cl, "now", "after=big");
    hang_up(cl);
}

static void test_http10_closes_by_default(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    struct answer a;
    char v[64];
    send_str(cl, "GET /echo?v=10 HTTP/1.0\r\n\r\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "echo", "GET /echo q=v=10 x=- len=0\n");
    assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
    closed_ok(cl);
    hang_up(cl);
}

static void test_http10_keep_alive_stays_open(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    struct answer a;
    char v[64];
    for (int i = 0; i < 3; i++) {
        send_str(cl, "GET /via-hub?v=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        answer_ok(cl, &a, false);
        route_answer_ok(&a, "via-hub", "via-hub q=v=10\n");
        assert_string_equal(header_value(&a, "Connection", v, sizeof v), "keep-alive");
    }
    /* and without it, the last one */
    send_str(cl, "GET /now HTTP/1.0\r\n\r\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "now", "now q=-\n");
    assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
    closed_ok(cl);
    hang_up(cl);
}

static void test_connection_close(void **state)
{
    struct server *sv = *state;
    static const char *routes[] = {"echo", "later", "now", "via-hub", "roundtrip"};
    for (unsigned i = 0; i < 5; i++) {
        struct client *cl = dial_ok(sv);
        struct answer a;
        char req[256], v[64];
        char target[64];
        snprintf(target, sizeof target, "/%s", routes[i]);
        get_simple_ok(cl, "now", NULL);
        send_ok(cl, req,
                build_request(req, sizeof req, "GET", target, "Connection: close\r\n", NULL, 0));
        answer_ok(cl, &a, false);
        assert_int_equal(a.status, 200);
        common_headers_ok(&a, false);
        assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
        closed_ok(cl);
        hang_up(cl);
    }

    /* pipelined behind a close: not answered */
    struct client *cl = dial_ok(sv);
    struct answer a;
    char v[64];
    send_str(cl, "GET /now?1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /later?2 HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n"
                 "GET /now?3 HTTP/1.1\r\nHost: t\r\n\r\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "now", "now q=1\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "later", "later q=2\n");
    assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
    closed_ok(cl);
    hang_up(cl);
}

static void test_pipelining_keeps_order(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    struct answer a;
    /* delayed first: the immediate ones must wait for it */
    send_str(cl, "GET /later?1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /echo?2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                 "GET /now?3 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /via-hub?4 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /later?5 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /roundtrip?6 HTTP/1.1\r\nHost: t\r\n\r\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "later", "later q=1\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "echo", "POST /echo q=2 x=- len=5\nhello");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "now", "now q=3\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "via-hub", "via-hub q=4\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "later", "later q=5\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "roundtrip", "roundtrip q=6\n");
    assert_true(silent_for(cl, 50));
    get_simple_ok(cl, "now", "7");
    hang_up(cl);
}

/* Three requests with 3000-byte bodies in one write: more than the input buffer holds,
 * so the listener reads them while handlers hold the earlier ones. */
static void test_pipelining_beyond_the_buffer(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    static char body[3][3000];
    static char reqs[3 * 3300];
    static const char *targets[] = {"/later?b=0", "/echo?b=1", "/echo?b=2"};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        memset(body[i], 'A' + i, sizeof body[i]);
        if (i == 0) {
            n += build_request(reqs + n, sizeof reqs - n, "GET", targets[i], NULL, NULL, 0);
        } else {
            n += build_request(reqs + n, sizeof reqs - n, "POST", targets[i], NULL, body[i],
                               sizeof body[i]);
        }
    }
    for (int round = 0; round < 2; round++) {
        send_ok(cl, reqs, n);
        static struct answer a;
        answer_ok(cl, &a, false);
        route_answer_ok(&a, "later", "later q=b=0\n");
        for (int i = 1; i < 3; i++) {
            answer_ok(cl, &a, false);
            assert_int_equal(a.status, 200);
            char line[64];
            int ll = snprintf(line, sizeof line, "POST /echo q=b=%d x=- len=3000\n", i);
            assert_int_equal(a.body_len, (size_t)ll + sizeof body[i]);
            assert_memory_equal(a.body, line, (size_t)ll);
            assert_memory_equal(a.body + ll, body[i], sizeof body[i]);
        }
    }
    hang_up(cl);
}

static void test_one_byte_writes(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    struct answer a;
    char body[64], req[512];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('0' + i % 10);
    size_t n = build_request(req, sizeof req, "POST", "/echo?split=1", "X-Test: bytes\r\n", body,
                             sizeof body);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++)
            send_ok(cl, req + i, 1);
        answer_ok(cl, &a, false);
        char want[256];
        snprintf(want, sizeof want, "POST /echo q=split=1 x=bytes len=64\n%.*s", 64, body);
        route_answer_ok(&a, "echo", want);
    }
    /* a threaded route, a byte at a time, with a pause in the middle */
    const char *get = "GET /roundtrip?split=2 HTTP/1.1\r\nHost: t\r\n\r\n";
    for (size_t i = 0; i < strlen(get); i++) {
        send_ok(cl, get + i, 1);
        if (i == 20) sleep_ms(30);
    }
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "roundtrip", "roundtrip q=split=2\n");
    hang_up(cl);
}

static void test_body_in_pieces(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    static char body[BODY_MAX];
    static char req[BODY_MAX + 512];
    static struct answer a;
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)(i * 7);
    size_t n = build_request(req, sizeof req, "POST", "/echo?pieces", "X-Test: pieces\r\n", body,
                             sizeof body);
    size_t head = n - sizeof body;
    /* the head alone, then the body in three pieces: nothing is answered before the end */
    send_ok(cl, req, head);
    assert_true(silent_for(cl, 20));
    send_ok(cl, req + head, 1000);
    assert_true(silent_for(cl, 20));
    send_ok(cl, req + head + 1000, 2000);
    assert_true(silent_for(cl, 20));
    send_ok(cl, req + head + 3000, sizeof body - 3000);
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 200);
    const char *line = "POST /echo q=pieces x=pieces len=4096\n";
    assert_int_equal(a.body_len, strlen(line) + sizeof body);
    assert_memory_equal(a.body, line, strlen(line));
    assert_memory_equal(a.body + strlen(line), body, sizeof body);

    /* the head split inside a header line, then head and body's start in one write */
    send_ok(cl, req, 20);
    sleep_ms(10);
    send_ok(cl, req + 20, head + 100 - 20);
    sleep_ms(10);
    send_ok(cl, req + head + 100, sizeof body - 100);
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 200);
    assert_memory_equal(a.body + strlen(line), body, sizeof body);
    hang_up(cl);
}

static void test_expect_continue(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    struct answer a;
    for (int round = 0; round < 2; round++) {
        send_str(cl, "POST /echo?c HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                     "Content-Length: 11\r\n\r\n");
        answer_ok(cl, &a, false);
        assert_int_equal(a.status, 100);
        assert_string_equal(a.head, "HTTP/1.1 100 Continue\r\n\r\n");
        assert_true(silent_for(cl, 30)); /* the final answer waits for the body */
        send_str(cl, "hello");
        assert_true(silent_for(cl, 20));
        send_str(cl, " world");
        answer_ok(cl, &a, false);
        route_answer_ok(&a, "echo", "POST /echo q=c x=- len=11\nhello world");
    }
    /* to a threaded route too */
    send_str(cl, "POST /via-hub HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: 3\r\n\r\n");
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 100);
    send_str(cl, "abc");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "via-hub", "via-hub q=-\n");
    /* HTTP/1.0 cannot take a 100 */
    send_str(cl, "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n"
                 "Content-Length: 2\r\n\r\n");
    assert_true(silent_for(cl, 50));
    send_str(cl, "hi");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "echo", "POST /echo q=- x=- len=2\nhi");
    hang_up(cl);

    /* a body too large is refused at once, without a 100 first */
    cl = dial_ok(sv);
    send_str(cl, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: 4097\r\n\r\n");
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 413);
    closed_ok(cl);
    hang_up(cl);
}

static void test_head_has_no_body(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    struct answer a;
    char v[64];
    static const char *routes[] = {"echo", "now", "later", "via-hub", "roundtrip"};
    for (unsigned i = 0; i < 5; i++) {
        char req[256], target[64];
        snprintf(target, sizeof target, "/%s?h", routes[i]);
        send_ok(cl, req, build_request(req, sizeof req, "HEAD", target, NULL, NULL, 0));
        answer_ok(cl, &a, true);
        assert_int_equal(a.status, 200);
        common_headers_ok(&a, true);
        assert_string_equal(header_value(&a, "X-Route", v, sizeof v), routes[i]);
        char want[128];
        if (i == 0) {
            snprintf(want, sizeof want, "HEAD /echo q=h x=- len=0\n");
        } else {
            simple_body(want, sizeof want, routes[i], "h");
        }
        assert_int_equal(a.content_length, strlen(want));
        assert_true(silent_for(cl, 10)); /* no body bytes follow */
    }
    /* the next answer starts right after the head */
    get_simple_ok(cl, "now", "after-head");
    hang_up(cl);
}

static void test_not_found(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    struct answer a;
    char v[64];
    static const char *paths[] = {"/nope", "/echoo", "/ech", "/echo/../nope", "/", "/NOW", "/now/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char req[256];
        send_ok(cl, req, build_request(req, sizeof req, "GET", paths[i], NULL, NULL, 0));
        answer_ok(cl, &a, false);
        if (i == 3) { /* under the /echo/ prefix: the listener does not normalise */
            assert_int_equal(a.status, 200);
            continue;
        }
        if (a.status != 404) fail_msg("%s: %d", paths[i], a.status);
        common_headers_ok(&a, false);
        assert_null(header_value(&a, "X-Route", v, sizeof v));
        assert_null(header_value(&a, "Connection", v, sizeof v)); /* the connection stays */
    }
    /* a 404 keeps the connection: the next request is served */
    get_simple_ok(cl, "now", "after-404");
    /* and one asked to close does */
    send_str(cl, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 404);
    assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
    closed_ok(cl);
    hang_up(cl);
}

/* Sends req on a new connection; asserts status with Connection: close, then a close. */
static void refused_ok(const struct server *sv, const char *what, const char *req, size_t len,
                       int status)
{
    struct client *cl = dial_ok(sv);
    static struct answer a;
    char v[64];
    send_ok(cl, req, len);
    if (read_answer(cl, &a, false) != 0) fail_msg("%s: %s", what, a.error);
    if (a.status != status) fail_msg("%s: expected %d, got:\n%s", what, status, a.head);
    common_headers_ok(&a, false);
    assert_string_equal(header_value(&a, "Content-Type", v, sizeof v), "text/plain; charset=utf-8");
    assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
    assert_true(a.body_len > 1 && a.body[a.body_len - 1] == '\n');
    const char *why = close_missing(cl);
    if (why != NULL) fail_msg("%s: no close after %d; got %s", what, status, why);
    hang_up(cl);
}

static void test_refusals_close(void **state)
{
    struct server *sv = *state;
    struct wx_http_stats before, after;
    stats(sv, &before);
    static const struct {
        const char *what;
        const char *req;
        int status;
    } cases[] = {
        {"PUT", "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 501},
        {"DELETE", "DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n", 501},
        {"HTTP/2.0", "GET /echo HTTP/2.0\r\nHost: t\r\n\r\n", 505},
        {"HTTP/1.2", "GET /echo HTTP/1.2\r\nHost: t\r\n\r\n", 505},
        {"controls", "\x01\x02\x03\r\n\r\n", 400},
        {"bare LF", "GET /echo HTTP/1.1\nHost: t\n\n", 400},
        {"no Host", "GET /echo HTTP/1.1\r\n\r\n", 400},
        {"two Hosts", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"absolute URI", "GET http://t/echo HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"bad length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 400},
        {"two lengths",
         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
        {"413", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4097\r\n\r\n", 413},
        {"413 huge",
         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n", 413},
        {"chunked",
         "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
         "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         411},
        {"417", "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx",
         417},
    };
    size_t ncases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < ncases; i++) {
        refused_ok(sv, cases[i].what, cases[i].req, strlen(cases[i].req), cases[i].status);
    }

    /* 413 with the body actually sent: the listener drains it and closes with a FIN */
    static char big[BODY_MAX + 1 + 512];
    static char body[BODY_MAX + 1];
    memset(body, 'z', sizeof body);
    size_t n = build_request(big, sizeof big, "POST", "/echo", NULL, body, sizeof body);
    refused_ok(sv, "413 with body", big, n, 413);

    /* 431: a head just over WX_HTTP_HEADERS_MAX, and one with too many lines */
    static char huge[WX_HTTP_HEADERS_MAX + 512];
    const char *start = "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: ";
    size_t sl = strlen(start);
    memcpy(huge, start, sl);
    size_t total = WX_HTTP_HEADERS_MAX + 1; /* with the blank line at the end */
    memset(huge + sl, 'b', total - sl - 4);
    memcpy(huge + total - 4, "\r\n\r\n", 4);
    refused_ok(sv, "431 size", huge, total, 431);
    n = (size_t)snprintf(huge, sizeof huge, "GET /echo HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(huge + n, sizeof huge - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(huge + n, sizeof huge - n, "\r\n");
    refused_ok(sv, "431 lines", huge, n, 431);

    /* 414: a target over 8 KiB */
    n = (size_t)snprintf(huge, sizeof huge, "GET /echo?");
    memset(huge + n, 'q', 8200);
    n += 8200;
    n += (size_t)snprintf(huge + n, sizeof huge - n, " HTTP/1.1\r\nHost: t\r\n\r\n");
    refused_ok(sv, "414", huge, n, 414);

    stats(sv, &after);
    size_t refusals = ncases + 4;
    assert_int_equal(after.refused - before.refused, refusals);
    assert_int_equal(after.accepted - before.accepted, refusals);
    assert_int_equal(after.requests - before.requests, 0);

    /* a refusal behind an answered request: answered, refused, closed */
    struct client *cl = dial_ok(sv);
    struct answer a;
    send_str(cl, "GET /later?1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "PUT /echo HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /now?3 HTTP/1.1\r\nHost: t\r\n\r\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "later", "later q=1\n");
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 501);
    closed_ok(cl);
    hang_up(cl);
}

/* Each limit just under: accepted. */
static void test_limits_just_under(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_ok(sv);
    static struct answer a;
    /* a head of exactly WX_HTTP_HEADERS_MAX bytes */
    static char huge[WX_HTTP_HEADERS_MAX + 16];
    const char *start = "GET /echo HTTP/1.1\r\nHost: t\r\nX-Test: ";
    size_t sl = strlen(start);
    size_t total = WX_HTTP_HEADERS_MAX;
    memcpy(huge, start, sl);
    memset(huge + sl, 'b', total - sl - 4);
    memcpy(huge + total - 4, "\r\n\r\n", 4);
    send_ok(cl, huge, total);
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 200);
    size_t xlen = total - sl - 4;
    assert_int_equal(a.body_len, strlen("GET /echo q=- x= len=0\n") + xlen);
    assert_memory_equal(a.body, "GET /echo q=- x=", 16);
    for (size_t i = 0; i < xlen; i++)
        assert_int_equal(a.body[16 + i], 'b');
    assert_string_equal(a.body + 16 + xlen, " len=0\n");
    /* 64 header lines */
    size_t n = (size_t)snprintf(huge, sizeof huge, "GET /now?lines HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 63; i++)
        n += (size_t)snprintf(huge + n, sizeof huge - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(huge + n, sizeof huge - n, "\r\n");
    send_ok(cl, huge, n);
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "now", "now q=lines\n");
    /* a target of 8 KiB */
    n = (size_t)snprintf(huge, sizeof huge, "GET /echo?");
    memset(huge + n, 'q', 8192 - 6);
    n += 8192 - 6;
    n += (size_t)snprintf(huge + n, sizeof huge - n, " HTTP/1.1\r\nHost: t\r\n\r\n");
    send_ok(cl, huge, n);
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 200);
    /* the buffers shrank back: a small request still works */
    get_simple_ok(cl, "via-hub", "small");
    hang_up(cl);
}

/* Polls the clients until each is readable, recording when. */
static void wait_readable(struct client **cls, int64_t *at, unsigned n, int64_t until)
{
    struct pollfd p[8];
    assert_true(n <= 8);
    for (;;) {
        unsigned waiting = 0;
        for (unsigned i = 0; i < n; i++) {
            p[i].fd = at[i] == 0 ? cls[i]->fd : -1;
            p[i].events = POLLIN;
            p[i].revents = 0;
            waiting += at[i] == 0;
        }
        int64_t left = until - now_ms();
        if (waiting == 0 || left <= 0) return;
        int rc = poll(p, n, (int)left);
        for (unsigned i = 0; rc > 0 && i < n; i++) {
            if (p[i].revents != 0) at[i] = now_ms();
        }
    }
}

static void test_timeouts(void **state)
{
    struct server *sv = *state;
    struct wx_http_stats before, after;
    stats(sv, &before);
    /* 0: half a head, then nothing; 1: idle after an answer; 2: never says a word;
     * 3: a slow body; 4: one byte every 100 ms (the deadline is the request's, not a gap's) */
    struct client *cls[5];
    int64_t at[5] = {0}, sent[5];
    for (unsigned i = 0; i < 5; i++)
        cls[i] = dial_ok(sv);
    sent[0] = now_ms();
    send_str(cls[0], "GET /echo HTTP/1.1\r\nHost: t\r\n");
    get_simple_ok(cls[1], "now", "idle");
    sent[1] = now_ms();
    sent[2] = sent[0];
    send_str(cls[3], "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    sent[3] = sent[0];
    sent[4] = sent[0];
    const char *slow = "GET /now?slow HTTP/1.1\r\nHost: t\r\n\r\n";
    for (size_t i = 0; i < strlen(slow) && at[4] == 0; i++) {
        send_ok(cls[4], slow + i, 1);
        wait_readable(cls + 4, at + 4, 1, now_ms() + 100);
    }
    wait_readable(cls, at, 5, sent[0] + TIMEOUT_S * 1000 + SWEEP_SLACK + 1500);
    for (unsigned i = 0; i < 5; i++) {
        int64_t took = at[i] - sent[i];
        if (at[i] == 0 || took < TIMEOUT_S * 1000 - 100 ||
            took > TIMEOUT_S * 1000 + SWEEP_SLACK + 500) {
            fail_msg("connection %u: readable after %lld ms (never: %d)", i, (long long)took,
                     at[i] == 0);
        }
    }
    struct answer a;
    char v[64];
    for (unsigned i = 0; i < 5; i++) {
        if (i == 1 || i == 2) {
            closed_ok(cls[i]); /* an idle connection closes quietly */
        } else {
            answer_ok(cls[i], &a, false);
            if (a.status != 408) fail_msg("connection %u: %d", i, a.status);
            common_headers_ok(&a, false);
            assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
            const char *why = close_missing(cls[i]);
            if (why != NULL) fail_msg("connection %u: no close after 408; got %s", i, why);
        }
        hang_up(cls[i]);
    }
    stats(sv, &after);
    assert_int_equal(after.refused - before.refused, 3);
    assert_int_equal(after.requests - before.requests, 1);
    wait_all_closed(sv);
}

/* A client that half-closes after its requests (HTTP/1.0 clients, nc -N) still gets every
 * answer, in order, and then the server closes; half a request is not answered. */
static void test_half_close(void **state)
{
    struct server *sv = *state;
    struct answer a;
    struct client *cl = dial_ok(sv);
    send_str(cl, "GET /later?h1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /echo?h2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /roundtrip?h3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(shutdown(cl->fd, SHUT_WR), 0);
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "later", "later q=h1\n");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "echo", "POST /echo q=h2 x=- len=3\nabc");
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "roundtrip", "roundtrip q=h3\n");
    closed_ok(cl);
    hang_up(cl);

    /* the half-close arrives while the hub's handler holds the request */
    cl = dial_ok(sv);
    send_str(cl, "GET /via-hub?h4 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(shutdown(cl->fd, SHUT_WR), 0);
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "via-hub", "via-hub q=h4\n");
    closed_ok(cl);
    hang_up(cl);

    /* half a head: nothing to answer (or a 400), then the close */
    cl = dial_ok(sv);
    send_str(cl, "GET /now HTTP/1.1\r\nHost:");
    assert_int_equal(shutdown(cl->fd, SHUT_WR), 0);
    if (!silent_for(cl, CLOSE_WAIT_MS) && cl->len == 0 && fill(cl) > 0) {
        answer_ok(cl, &a, false);
        assert_int_equal(a.status, 400);
    }
    closed_ok(cl);
    hang_up(cl);
    wait_all_closed(sv);
}

static struct server small_srv; /* test_max_connections' own */

static int teardown_small(void **state)
{
    (void)state;
    server_stop(&small_srv);
    return 0;
}

static void test_max_connections(void **state)
{
    struct server *group = *state;
    struct server *sv = &small_srv;
    /* a long timeout: only a close may make room, not the idle sweep */
    assert_int_equal(server_start(sv, group->threads, 2, 5), 0);
    struct client *c1 = dial_ok(sv), *c2 = dial_ok(sv);
    get_simple_ok(c1, "now", "c1");
    get_simple_ok(c2, "via-hub", "c2");
    struct client *c3 = dial_ok(sv); /* the kernel's backlog takes it */
    send_str(c3, "GET /echo?c3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(silent_for(c3, 150));
    struct wx_http_stats st;
    stats(sv, &st);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.open, 2);
    get_simple_ok(c2, "later", "c2-again"); /* the two still served */

    int64_t closed_at = now_ms();
    hang_up(c1);
    struct answer a;
    answer_ok(c3, &a, false);
    route_answer_ok(&a, "echo", "GET /echo q=c3 x=- len=0\n");
    assert_true(now_ms() - closed_at < 1000);
    stats(sv, &st);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.open, 2);

    /* a fourth waits for the next close */
    struct client *c4 = dial_ok(sv);
    send_str(c4, "GET /now?c4 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(silent_for(c4, 100));
    send_str(c2, "GET /now HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    answer_ok(c2, &a, false);
    closed_ok(c2);
    hang_up(c2);
    get_simple_ok(c3, "roundtrip", "c3-again");
    answer_ok(c4, &a, false);
    route_answer_ok(&a, "now", "now q=c4\n");
    hang_up(c3);
    hang_up(c4);
    wait_all_closed(sv);
}

static void test_client_leaves_early(void **state)
{
    struct server *sv = *state;
    wait_all_closed(sv);
    struct wx_http_stats before, after;
    stats(sv, &before);
    /* closes (FIN) and resets (RST) while /later's timer holds the request */
    struct client *fin = dial_ok(sv), *rst = dial_ok(sv);
    send_str(fin, "GET /later?gone HTTP/1.1\r\nHost: t\r\n\r\n");
    send_str(rst, "GET /later?gone HTTP/1.1\r\nHost: t\r\n\r\n");
    /* a pipeline behind a delayed answer, and half a body */
    struct client *pipe = dial_ok(sv), *half = dial_ok(sv);
    send_str(pipe,
             "GET /later?1 HTTP/1.1\r\nHost: t\r\n\r\nGET /via-hub?2 HTTP/1.1\r\nHost: t\r\n\r\n");
    send_str(half, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
    sleep_ms(10);
    hang_up(fin);
    reset(rst);
    hang_up(pipe);
    reset(half);
    /* the answers are given to connections that are gone; the server goes on */
    sleep_ms(LATER_MS + 50);
    struct client *cl = dial_ok(sv);
    get_simple_ok(cl, "later", "still");
    get_simple_ok(cl, "roundtrip", "here");
    hang_up(cl);
    wait_all_closed(sv);
    stats(sv, &after);
    assert_int_equal(after.accepted - before.accepted, 5);
    /* fin's, pipe's first and cl's two; rst's unless the reset overtook it (the kernel
     * may drop unread data on a reset); pipe's second when its FIN reads as a half-close
     * and the first answer still went out before the client's reset came back; never
     * half's */
    uint64_t requests = after.requests - before.requests;
    if (requests < 4 || requests > 7) fail_msg("requests: %llu", (unsigned long long)requests);
    assert_int_equal(after.refused - before.refused, 0);
    assert_int_equal(after.open, 0);
}

/* ---- a client that reads slowly -------------------------------------------------------- */

#define BP_BIG_KIB  8192 /* more than the kernel buffers of both sides hold (tcp_wmem 4 MiB) */
#define BP_REQUESTS 50
#define BP_BODY     4000

struct bp_sender {
    struct client *cl;
    int rc; /* 0 when every request went out */
};

/* Sends /big, then BP_REQUESTS echo POSTs behind it: the listener stops reading them while
 * it cannot write, so this blocks until the client reads. */
static void *bp_send_main(void *arg)
{
    struct bp_sender *bs = arg;
    static char body[BP_BODY];
    char *req = malloc(BP_BODY + 512);
    if (req == NULL) abort();
    char target[32];
    snprintf(target, sizeof target, "/big?kib=%d", BP_BIG_KIB);
    size_t n = build_request(req, BP_BODY + 512, "GET", target, NULL, NULL, 0);
    bs->rc = send_all(bs->cl, req, n);
    for (unsigned i = 0; i < BP_REQUESTS && bs->rc == 0; i++) {
        memset(body, 'a' + (int)(i % 26), sizeof body);
        snprintf(target, sizeof target, "/echo?bp=%u", i);
        n = build_request(req, BP_BODY + 512, "POST", target, NULL, body, sizeof body);
        bs->rc = send_all(bs->cl, req, n);
    }
    free(req);
    return NULL;
}

/* Reads a /big answer's body of len bytes through cl's buffer, checking every byte. Returns
 * the offset of the first wrong or missing byte, or len. */
static size_t read_big_body(struct client *cl, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (cl->len == 0 && fill(cl) <= 0) return off;
        size_t take = cl->len < len - off ? cl->len : len - off;
        for (size_t i = 0; i < take; i++) {
            if (cl->buf[i] != big_byte(off + i)) return off + i;
        }
        memmove(cl->buf, cl->buf + take, cl->len - take);
        cl->len -= take;
        off += take;
    }
    return off;
}

/* An 8 MiB answer and 200 KB of pipelined requests behind it, to a client with a 4 KiB
 * receive buffer that starts reading late: the listener's writes stop (EAGAIN), it waits
 * for the socket, stops reading meanwhile, and goes on in order once the client reads. */
static void test_slow_reader(void **state)
{
    struct server *sv = *state;
    struct client *cl = calloc(1, sizeof *cl);
    assert_non_null(cl);
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(cl->fd >= 0);
    int small = 4096, one = 1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000, .tv_usec = 0};
    assert_int_equal(setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    assert_int_equal(connect(cl->fd, (const struct sockaddr *)&sv->addr, sizeof sv->addr), 0);
    struct bp_sender bs = {.cl = cl};
    pthread_t sender;
    assert_int_equal(pthread_create(&sender, NULL, bp_send_main, &bs), 0);
    sleep_ms(200); /* the listener fills what the kernel holds, and waits */

    /* the head, then the body streamed and checked byte by byte */
    static struct answer a;
    char *end;
    while ((end = memmem(cl->buf, cl->len, "\r\n\r\n", 4)) == NULL) {
        if (fill(cl) <= 0) break;
    }
    size_t got = 0;
    if (end != NULL) {
        size_t head_len = (size_t)(end + 4 - cl->buf);
        memcpy(a.head, cl->buf, head_len);
        a.head[head_len] = '\0';
        memmove(cl->buf, cl->buf + head_len, cl->len - head_len);
        cl->len -= head_len;
        got = read_big_body(cl, (size_t)BP_BIG_KIB << 10);
    }
    unsigned answered = 0;
    for (; got == (size_t)BP_BIG_KIB << 10 && answered < BP_REQUESTS; answered++) {
        if (read_answer(cl, &a, false) != 0) break;
        char line[64];
        int ll = snprintf(line, sizeof line, "POST /echo q=bp=%u x=- len=%d\n", answered, BP_BODY);
        char fillc = (char)('a' + (int)(answered % 26));
        if (a.status != 200 || a.body_len != (size_t)ll + BP_BODY ||
            memcmp(a.body, line, (size_t)ll) != 0 || a.body[ll] != fillc ||
            a.body[a.body_len - 1] != fillc) {
            break;
        }
    }
    pthread_join(sender, NULL);
    if (end == NULL) fail_msg("no head for /big: %s", strerror(errno));
    if (got != (size_t)BP_BIG_KIB << 10) {
        fail_msg("/big: byte %zu of %d KiB wrong or missing (%s)", got, BP_BIG_KIB,
                 strerror(errno));
    }
    if (answered < BP_REQUESTS) fail_msg("answer %u: %s %.*s", answered, a.error, 80, a.head);
    assert_int_equal(bs.rc, 0);
    get_simple_ok(cl, "now", "after");
    hang_up(cl);
}

/* ---- shutdown -------------------------------------------------------------------------- */

/* The hub stops (from a handler, as SIGTERM would from the loop) while a handler holds a
 * request, a request is half received, requests wait behind others and a connection idles:
 * the answers owed are given with Connection: close, nothing waiting behind them is served,
 * every connection closes, and nothing hangs, crashes or leaks (the sanitizer build checks
 * the last two). */
static void test_shutdown_with_work_in_flight(void **state)
{
    struct server *group = *state;
    struct server *sv = &small_srv;
    assert_int_equal(server_start(sv, group->threads, 16, 5), 0);
    struct client *idle = dial_ok(sv), *later = dial_ok(sv), *half = dial_ok(sv);
    struct client *stopper = dial_ok(sv);
    get_simple_ok(idle, "now", "idle");
    send_str(later, "GET /later?before HTTP/1.1\r\nHost: t\r\n\r\n"
                    "GET /now?behind HTTP/1.1\r\nHost: t\r\n\r\n");
    send_str(half, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab");
    sleep_ms(10); /* /later's handler has its timer before the stop */
    send_str(stopper, "GET /stop?now HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /now?behind HTTP/1.1\r\nHost: t\r\n\r\n");
    struct answer a;
    char v[64];
    /* answered during the shutdown: Connection: close, and then the close */
    answer_ok(stopper, &a, false);
    route_answer_ok(&a, "stop", "stop q=now\n");
    assert_non_null(header_value(&a, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    closed_ok(stopper);
    answer_ok(later, &a, false);
    route_answer_ok(&a, "later", "later q=before\n");
    assert_non_null(header_value(&a, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    closed_ok(later);
    /* the idle one goes at once; the half request gets nothing */
    closed_ok(idle);
    int64_t t0 = now_ms();
    server_stop(sv);
    assert_true(now_ms() - t0 < 3000);
    closed_ok(half);
    hang_up(idle);
    hang_up(later);
    hang_up(half);
    hang_up(stopper);
}

/* ---- hand-over to the hub --------------------------------------------------------------- */

#define HP_THREADS 4
#define HP_ROUNDS  12000

struct hp_task {
    struct wx_hub_task task;
    struct server *sv;
    sem_t done;
    atomic_uint ran;        /* times run on the loop */
    atomic_uint wrong_loop; /* times run elsewhere */
    unsigned posted;
    bool stuck;
};

static void hp_run(struct wx_hub_task *t, bool cancelled)
{
    struct hp_task *h = (struct hp_task *)t;
    if (!cancelled && !wx_hub_in_loop(h->sv->hub)) atomic_fetch_add(&h->wrong_loop, 1);
    atomic_fetch_add(&h->ran, 1);
    sem_post(&h->done);
}

/* Posts one task at a time to the hub and waits for it to run: every hand-over needs its
 * wake-up, so one that is lost stalls the thread. */
static void *hp_main(void *arg)
{
    struct hp_task *h = arg;
    for (h->posted = 0; h->posted < HP_ROUNDS; h->posted++) {
        h->task.run = hp_run;
        wx_hub_post(h->sv->hub, &h->task);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IO_TIMEOUT_MS / 1000;
        while (sem_timedwait(&h->done, &until) != 0) {
            if (errno == ETIMEDOUT) {
                h->stuck = true;
                return NULL;
            }
        }
    }
    return NULL;
}

/* wx_hub_post from threads that are no loop's: each task runs once, on the loop, and none
 * waits for a wake-up that never comes (the listener's I/O threads hand every hub route's
 * request over this way). */
static void test_hub_post_from_threads(void **state)
{
    struct server *sv = *state;
    static struct hp_task hp[HP_THREADS];
    pthread_t th[HP_THREADS];
    for (unsigned i = 0; i < HP_THREADS; i++) {
        memset(&hp[i], 0, sizeof hp[i]);
        hp[i].sv = sv;
        assert_int_equal(sem_init(&hp[i].done, 0, 0), 0);
        assert_int_equal(pthread_create(&th[i], NULL, hp_main, &hp[i]), 0);
    }
    for (unsigned i = 0; i < HP_THREADS; i++)
        pthread_join(th[i], NULL);
    /* a stuck task still belongs to the inbox: leave it to be run (cancelled) at teardown */
    for (unsigned i = 0; i < HP_THREADS; i++) {
        if (hp[i].stuck) {
            fail_msg("thread %u: task %u of %d posted and not run within %d ms", i, hp[i].posted,
                     HP_ROUNDS, IO_TIMEOUT_MS);
        }
        assert_int_equal(atomic_load(&hp[i].ran), HP_ROUNDS);
        assert_int_equal(atomic_load(&hp[i].wrong_loop), 0);
        sem_destroy(&hp[i].done);
    }
}

/* ---- concurrency ----------------------------------------------------------------------- */

#define CC_THREADS 5
#define CC_CONNS   10 /* per client thread */
#define CC_ROUNDS  200

struct cc_client {
    const struct server *sv;
    unsigned id;
    pthread_t thread;
    unsigned answered;
    char error[512]; /* the first failure, empty when none */
};

/* The request number r on connection k of client t, and the answer it must get. */
static size_t cc_request(unsigned t, unsigned k, unsigned r, char *req, size_t cap, char *want,
                         size_t wcap)
{
    static const char *routes[] = {"echo", "now", "via-hub", "roundtrip", "echo"};
    char query[64], target[96];
    snprintf(query, sizeof query, "id=%u-%u-%u", t, k, r);
    unsigned kind = (k + r) % 5;
    snprintf(target, sizeof target, "/%s?%s", routes[kind], query);
    if (kind == 0) {
        snprintf(want, wcap, "GET /echo q=%s x=- len=0\n", query);
        return build_request(req, cap, "GET", target, NULL, NULL, 0);
    }
    if (kind == 4) {
        char body[800];
        size_t len = (t * 131 + k * 17 + r * 7) % sizeof body;
        for (size_t i = 0; i < len; i++)
            body[i] = (char)('a' + (i + r) % 26);
        int n = snprintf(want, wcap, "POST /echo q=%s x=%u len=%zu\n", query, k, len);
        memcpy(want + n, body, len);
        want[(size_t)n + len] = '\0';
        char x[32];
        snprintf(x, sizeof x, "X-Test: %u\r\n", k);
        return build_request(req, cap, "POST", target, x, body, len);
    }
    simple_body(want, wcap, routes[kind], query);
    return build_request(req, cap, "GET", target, NULL, NULL, 0);
}

/* Checks an answer without cmocka (not on the test's thread). NULL when right. */
static const char *cc_check(const struct answer *a, const char *want)
{
    char v[64];
    if (a->status != 200) return "status";
    if (a->content_length != (long)a->body_len) return "Content-Length";
    if (strcmp(a->body, want) != 0) return "body";
    if (header_value(a, "Date", v, sizeof v) == NULL) return "Date";
    if (header_value(a, "X-Route", v, sizeof v) == NULL) return "X-Route";
    if (header_value(a, "X-Content-Type-Options", v, sizeof v) == NULL) return "nosniff";
    if (header_value(a, "X-Frame-Options", v, sizeof v) == NULL) return "X-Frame-Options";
    return NULL;
}

static void *cc_main(void *arg)
{
    struct cc_client *cc = arg;
    struct client *cls[CC_CONNS] = {0};
    struct answer *a = malloc(sizeof *a);
    char req[1200], want[CC_CONNS][1024];
    for (unsigned k = 0; k < CC_CONNS && a != NULL; k++) {
        cls[k] = dial(cc->sv);
        if (cls[k] == NULL) {
            snprintf(cc->error, sizeof cc->error, "connect: %s", strerror(errno));
            goto out;
        }
    }
    for (unsigned r = 0; r < CC_ROUNDS; r++) {
        for (unsigned k = 0; k < CC_CONNS; k++) {
            size_t n = cc_request(cc->id, k, r, req, sizeof req, want[k], sizeof want[k]);
            if (send_all(cls[k], req, n) != 0) {
                snprintf(cc->error, sizeof cc->error, "send %u/%u: %s", k, r, strerror(errno));
                goto out;
            }
        }
        for (unsigned k = 0; k < CC_CONNS; k++) {
            if (read_answer(cls[k], a, false) != 0) {
                struct wx_http_stats st;
                wx_http_stats(cc->sv->http, &st);
                snprintf(cc->error, sizeof cc->error,
                         "conn %u round %u (%.40s): %s; %zu bytes came; listener: accepted "
                         "%llu, requests %llu, open %u",
                         k, r, want[k], a->error, cls[k]->len, (unsigned long long)st.accepted,
                         (unsigned long long)st.requests, st.open);
                goto out;
            }
            const char *bad = cc_check(a, want[k]);
            if (bad != NULL) {
                snprintf(cc->error, sizeof cc->error, "conn %u round %u: wrong %s: %.200s%.100s", k,
                         r, bad, a->head, a->body);
                goto out;
            }
            cc->answered++;
        }
    }
out:
    for (unsigned k = 0; k < CC_CONNS; k++)
        hang_up(cls[k]);
    free(a);
    return NULL;
}

static void test_concurrency(void **state)
{
    struct server *sv = *state;
    wait_all_closed(sv);
    struct wx_http_stats before, after;
    stats(sv, &before);
    static struct cc_client cc[CC_THREADS];
    for (unsigned t = 0; t < CC_THREADS; t++) {
        memset(&cc[t], 0, sizeof cc[t]);
        cc[t].sv = sv;
        cc[t].id = t;
        assert_int_equal(pthread_create(&cc[t].thread, NULL, cc_main, &cc[t]), 0);
    }
    for (unsigned t = 0; t < CC_THREADS; t++)
        pthread_join(cc[t].thread, NULL);
    for (unsigned t = 0; t < CC_THREADS; t++) {
        if (cc[t].error[0] != '\0') fail_msg("client %u: %s", t, cc[t].error);
        assert_int_equal(cc[t].answered, CC_CONNS * CC_ROUNDS);
    }
    wait_all_closed(sv);
    stats(sv, &after);
    assert_int_equal(after.accepted - before.accepted, CC_THREADS * CC_CONNS);
    assert_int_equal(after.requests - before.requests, CC_THREADS * CC_CONNS * CC_ROUNDS);
    assert_int_equal(after.refused - before.refused, 0);
}

/* ---- HTTPS ------------------------------------------------------------------------------ */

#define TLS_BIG_KIB 8192 /* more than the kernel buffers of both sides hold */

/* The first flight of a TLS client (its ClientHello) as bytes, into out; its length. */
static size_t client_hello(char *out, size_t cap)
{
    SSL *ssl = SSL_new(client_tls);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    assert_non_null(ssl);
    assert_non_null(rb);
    assert_non_null(wb);
    SSL_set_bio(ssl, rb, wb);           /* ssl owns both */
    assert_true(SSL_connect(ssl) <= 0); /* it waits for the ServerHello */
    char *p = NULL;
    long n = BIO_get_mem_data(wb, &p);
    assert_true(n > 0 && (size_t)n <= cap);
    memcpy(out, p, (size_t)n);
    SSL_free(ssl);
    ERR_clear_error();
    return (size_t)n;
}

/* Reads until the server ends the connection (a FIN or a reset, within CLOSE_WAIT_MS) and
 * asserts that no HTTP came before it. */
static void ends_without_http(struct client *cl)
{
    int64_t until = now_ms() + CLOSE_WAIT_MS;
    for (;;) {
        struct pollfd p = {.fd = cl->fd, .events = POLLIN};
        int left = (int)(until - now_ms());
        if (left <= 0 || poll(&p, 1, left) != 1) fail_msg("still open after %d ms", CLOSE_WAIT_MS);
        ssize_t n = fill(cl);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) break;
        if (n < 0) fail_msg("recv: %s", strerror(errno));
    }
    if (memmem(cl->buf, cl->len, "HTTP/", 5) != NULL) {
        fail_msg("an HTTP answer: %.*s", (int)cl->len, cl->buf);
    }
}

/* The listener's own files: a second self-signed pair is not made over the first, and a
 * missing or wrong file is named as the certificate or the key. */
static void test_tls_files(void **state)
{
    (void)state;
    char err[256], other[160];
    wx_tls_t *t = NULL;
    assert_int_equal(wx_tls_make_self_signed(tls_cert, tls_key, 1, err, sizeof err), WX_TLS_EXISTS);
    assert_int_equal(wx_tls_new(tls_cert, tls_key, &t, err, sizeof err), 0);
    wx_tls_free(t);
    snprintf(other, sizeof other, "%s/missing.crt", tls_dir);
    assert_int_equal(wx_tls_new(other, tls_key, &t, err, sizeof err), WX_TLS_BAD_CERT);
    assert_null(t);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(wx_tls_new(tls_key, tls_key, &t, err, sizeof err), WX_TLS_BAD_CERT);
    assert_int_equal(wx_tls_new(tls_cert, tls_cert, &t, err, sizeof err), WX_TLS_BAD_KEY);
    assert_int_equal(wx_tls_new(tls_cert, other, &t, err, sizeof err), WX_TLS_BAD_KEY);
    /* a pair of its own: its key is not the first certificate's */
    char cert2[160], key2[160];
    snprintf(cert2, sizeof cert2, "%s/other.crt", tls_dir);
    snprintf(key2, sizeof key2, "%s/other.key", tls_dir);
    assert_int_equal(wx_tls_make_self_signed(cert2, key2, 1, err, sizeof err), 0);
    assert_int_equal(wx_tls_new(tls_cert, key2, &t, err, sizeof err), WX_TLS_BAD_KEY);
    assert_non_null(strstr(err, "not the certificate's key"));
    assert_int_equal(unlink(cert2), 0);
    /* the key alone: refused, and left as it was */
    assert_int_equal(wx_tls_make_self_signed(cert2, key2, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "exists without"));
    assert_int_equal(access(cert2, F_OK), -1);
    assert_int_equal(unlink(key2), 0);
    assert_null(t);
}

/* A GET and a POST with a body, then every route, on one TLS connection. */
static void test_tls_requests(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_tls_ok(sv);
    struct answer a;
    char req[512];
    send_ok(cl, req, build_request(req, sizeof req, "GET", "/healthz", NULL, NULL, 0));
    answer_ok(cl, &a, false);
    assert_true(a.tls);
    assert_int_equal(a.status, 200);
    common_headers_ok(&a, false);
    assert_string_equal(a.body, "ok\n");
    size_t n = build_request(req, sizeof req, "POST", "/echo?tls=1", "X-Test: secure\r\n",
                             "0123456789", 10);
    send_ok(cl, req, n);
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "echo", "POST /echo q=tls=1 x=secure len=10\n0123456789");
    static const char *routes[] = {"now", "later", "via-hub", "roundtrip"};
    for (unsigned i = 0; i < 12; i++) {
        char q[32];
        snprintf(q, sizeof q, "i=%u", i);
        get_simple_ok(cl, routes[i % 4], q);
    }
    send_ok(cl, req, build_request(req, sizeof req, "HEAD", "/now?head", NULL, NULL, 0));
    answer_ok(cl, &a, true);
    assert_int_equal(a.status, 200);
    common_headers_ok(&a, true);
    get_simple_ok(cl, "now", "after-head");
    hang_up(cl);
    wait_all_closed(sv);
}

/* A route served over HTTPS only answers there, and 403 over plain HTTP without its handler
 * ever seeing the request. */
static void test_secure_route(void **state)
{
    struct server *sv = *state;
    struct answer a;
    char req[512];
    struct client *cl = dial_ok(sv);
    send_ok(cl, req, build_request(req, sizeof req, "POST", "/m/bind", NULL, "pw=secret", 9));
    answer_ok(cl, &a, false);
    assert_int_equal(a.status, 403);
    assert_non_null(strstr(a.body, "HTTPS only"));
    assert_null(strstr(a.body, "secret"));
    hang_up(cl);
    cl = dial_tls_ok(sv);
    send_ok(cl, req, build_request(req, sizeof req, "POST", "/m/bind", NULL, "pw=secret", 9));
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "echo", "POST /m/bind q=- x=- len=9\npw=secret");
    hang_up(cl);
    wait_all_closed(sv);
}

/* Requests pipelined in one write are answered in order, a body larger than the input
 * buffer's first size among them (OpenSSL then holds the rest of a record the socket no
 * longer shows); the last asks for the close, which comes after close_notify. */
static void test_tls_pipelining(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_tls_ok(sv);
    SSL_clear_options(cl->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF); /* the close must be clean */
    static char req[BODY_MAX + 2048], body[BODY_MAX];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('A' + i % 26);
    size_t n = build_request(req, sizeof req, "GET", "/later?p=1", NULL, NULL, 0);
    n += build_request(req + n, sizeof req - n, "POST", "/echo?p=2", NULL, body, sizeof body);
    n +=
        build_request(req + n, sizeof req - n, "GET", "/now?p=3", "Connection: close\r\n", NULL, 0);
    send_ok(cl, req, n);
    static struct answer a;
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "later", "later q=p=1\n");
    answer_ok(cl, &a, false);
    const char *line = "POST /echo q=p=2 x=- len=4096\n";
    assert_int_equal(a.status, 200);
    common_headers_ok(&a, false);
    assert_int_equal(a.body_len, strlen(line) + sizeof body);
    assert_memory_equal(a.body, line, strlen(line));
    assert_memory_equal(a.body + strlen(line), body, sizeof body);
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "now", "now q=p=3\n");
    char v[32];
    assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
    closed_ok(cl); /* an end without close_notify would be an error: see above */
    hang_up(cl);
    wait_all_closed(sv);
}

/* An answer of megabytes to a client with a small receive buffer that waits before reading:
 * the server's SSL_write waits for the socket again and again, and every byte arrives in
 * order; the request pipelined behind it is answered after it. */
static void test_tls_large_answer(void **state)
{
    struct server *sv = *state;
    const char *why;
    struct client *cl = dial_tls_with(sv, client_tls, 4096, &why);
    if (cl == NULL) fail_msg("TLS connect: %s", why);
    char req[512], target[64];
    snprintf(target, sizeof target, "/big?kib=%d", TLS_BIG_KIB);
    size_t n = build_request(req, sizeof req, "GET", target, NULL, NULL, 0);
    n += build_request(req + n, sizeof req - n, "GET", "/now?after=big", NULL, NULL, 0);
    send_ok(cl, req, n);
    sleep_ms(200); /* the listener fills what the kernel holds, and waits */
    static struct answer a;
    char *end;
    while ((end = memmem(cl->buf, cl->len, "\r\n\r\n", 4)) == NULL) {
        if (fill(cl) <= 0) fail_msg("no head for /big: %s", strerror(errno));
    }
    size_t head_len = (size_t)(end + 4 - cl->buf);
    memcpy(a.head, cl->buf, head_len);
    a.head[head_len] = '\0';
    a.tls = true;
    memmove(cl->buf, cl->buf + head_len, cl->len - head_len);
    cl->len -= head_len;
    char v[64];
    assert_int_equal(strncmp(a.head, "HTTP/1.1 200 ", 13), 0);
    assert_string_equal(header_value(&a, "Strict-Transport-Security", v, sizeof v), HSTS_VALUE);
    assert_int_equal(strtol(header_value(&a, "Content-Length", v, sizeof v), NULL, 10),
                     (long)TLS_BIG_KIB << 10);
    size_t got = read_big_body(cl, (size_t)TLS_BIG_KIB << 10);
    if (got != (size_t)TLS_BIG_KIB << 10) {
        fail_msg("/big: byte %zu of %d KiB wrong or missing (%s)", got, TLS_BIG_KIB,
                 strerror(errno));
    }
    answer_ok(cl, &a, false);
    route_answer_ok(&a, "now", "now q=after=big\n");
    hang_up(cl);
    wait_all_closed(sv);
}

/* A TLS 1.3 key update that asks for the server's: the server writes while it reads, and
 * the connection goes on. */
static void test_tls_key_update(void **state)
{
    struct server *sv = *state;
    struct client *cl = dial_tls_ok(sv);
    assert_string_equal(SSL_get_version(cl->ssl), "TLSv1.3");
    get_simple_ok(cl, "now", "before");
    assert_int_equal(SSL_key_update(cl->ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    get_simple_ok(cl, "roundtrip", "after");
    get_simple_ok(cl, "later", "again");
    hang_up(cl);
    wait_all_closed(sv);
}

/* A client context of its own for the policy's tests: TLS 1.0 up to max_version, offering
 * ciphers (TLS 1.2 and older suites) at security level 0, which lets OpenSSL offer what its
 * defaults no longer do; the server's certificate is not checked. */
static SSL_CTX *policy_client(int max_version, const char *ciphers)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_security_level(ctx, 0);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

/* One handshake with policy_client(max_version, ciphers). Returns 0 with the suite agreed
 * in cipher, or OpenSSL's reason code for the failure. */
static int policy_try(const struct server *sv, int max_version, const char *ciphers, char *cipher,
                      size_t cap)
{
    SSL_CTX *ctx = policy_client(max_version, ciphers);
    struct client *cl = dial_to(&sv->tls_addr, 0);
    assert_non_null(cl);
    cl->ssl = SSL_new(ctx);
    assert_non_null(cl->ssl);
    assert_int_equal(SSL_set_fd(cl->ssl, cl->fd), 1);
    ERR_clear_error();
    int rc = 0;
    if (SSL_connect(cl->ssl) != 1) {
        rc = ERR_GET_REASON(ERR_peek_last_error());
        assert_true(rc != 0);
    } else {
        snprintf(cipher, cap, "%s", SSL_get_cipher_name(cl->ssl));
    }
    ERR_clear_error();
    hang_up(cl);
    SSL_CTX_free(ctx);
    return rc;
}

/* TLS 1.0 and 1.1 are refused by the server (its protocol_version alert, not the client
 * declining), so are CBC suites under 1.2; of AEAD suites the server's order wins, unless
 * the client puts ChaCha20 first; renegotiation is refused (OpenSSL 3 refuses a client's by
 * default too; SSL_OP_ALLOW_CLIENT_RENEGOTIATION would make this fail). */
static void test_tls_policy(void **state)
{
    struct server *sv = *state;
    char cipher[64] = "";
    const char *any = "DEFAULT:@SECLEVEL=0";
    assert_int_equal(policy_try(sv, TLS1_VERSION, any, cipher, sizeof cipher),
                     SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    assert_int_equal(policy_try(sv, TLS1_1_VERSION, any, cipher, sizeof cipher),
                     SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    assert_int_equal(policy_try(sv, TLS1_2_VERSION, any, cipher, sizeof cipher), 0);
    assert_string_equal(cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_int_equal(policy_try(sv, TLS1_2_VERSION,
                                "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:"
                                "ECDHE-ECDSA-AES128-SHA:AES128-GCM-SHA256",
                                cipher, sizeof cipher),
                     SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
    assert_int_equal(policy_try(sv, TLS1_2_VERSION,
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
                                cipher, sizeof cipher),
                     0);
    assert_string_equal(cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_int_equal(policy_try(sv, TLS1_2_VERSION,
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256",
                                cipher, sizeof cipher),
                     0);
    assert_string_equal(cipher, "ECDHE-ECDSA-CHACHA20-POLY1305");

    /* renegotiation: the server answers the new ClientHello with no_renegotiation */
    SSL_CTX *ctx = policy_client(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256");
    struct client *cl = dial_to(&sv->tls_addr, 0);
    assert_non_null(cl);
    cl->ssl = SSL_new(ctx);
    assert_int_equal(SSL_set_fd(cl->ssl, cl->fd), 1);
    assert_int_equal(SSL_connect(cl->ssl), 1);
    get_simple_ok(cl, "now", "before-renegotiation");
    assert_int_equal(SSL_renegotiate(cl->ssl), 1);
    ERR_clear_error();
    assert_true(SSL_do_handshake(cl->ssl) <= 0);
    assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), SSL_R_NO_RENEGOTIATION);
    ERR_clear_error();
    hang_up(cl);
    SSL_CTX_free(ctx);
    wait_all_closed(sv);
}

/* Before the handshake is done nothing is answered: a client that says nothing, and one
 * that sends half a ClientHello, are closed once the time for a request head is up; plain
 * HTTP gets no HTTP back and is closed at once. None of them counts as a request. */
static void test_tls_handshake_limits(void **state)
{
    struct server *sv = *state;
    wait_all_closed(sv);
    struct wx_http_stats before, after;
    stats(sv, &before);
    struct client *cls[2] = {dial_to(&sv->tls_addr, 0), dial_to(&sv->tls_addr, 0)};
    assert_non_null(cls[0]);
    assert_non_null(cls[1]);
    int64_t sent = now_ms();
    char hello[4096];
    size_t hn = client_hello(hello, sizeof hello);
    send_ok(cls[1], hello, hn / 2);

    struct client *plain = dial_to(&sv->tls_addr, 0);
    assert_non_null(plain);
    send_str(plain, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    ends_without_http(plain);
    hang_up(plain);

    int64_t at[2] = {0};
    wait_readable(cls, at, 2, sent + TIMEOUT_S * 1000 + SWEEP_SLACK + 1500);
    for (unsigned i = 0; i < 2; i++) {
        int64_t took = at[i] - sent;
        if (at[i] == 0 || took < TIMEOUT_S * 1000 - 100 ||
            took > TIMEOUT_S * 1000 + SWEEP_SLACK + 500) {
            fail_msg("connection %u: closed after %lld ms (never: %d)", i, (long long)took,
                     at[i] == 0);
        }
        ends_without_http(cls[i]);
        assert_int_equal(cls[i]->len, 0);
        hang_up(cls[i]);
    }
    wait_all_closed(sv);
    stats(sv, &after);
    assert_int_equal(after.accepted - before.accepted, 3);
    assert_int_equal(after.requests - before.requests, 0);
    assert_int_equal(after.refused - before.refused, 0);
}

/* The hub stops with TLS connections in every state: mid-handshake, idle, a handler at
 * work, half a request, and the one that asked for the stop. The answers owed are given,
 * every connection closes, nothing hangs or leaks (the sanitizer build checks the last). */
static void test_tls_shutdown(void **state)
{
    struct server *group = *state;
    struct server *sv = &small_srv;
    assert_int_equal(server_start(sv, group->threads, 16, 5), 0);
    struct client *shaking = dial_to(&sv->tls_addr, 0);
    assert_non_null(shaking);
    char hello[4096];
    size_t hn = client_hello(hello, sizeof hello);
    send_ok(shaking, hello, hn / 2);
    struct client *idle = dial_tls_ok(sv), *later = dial_tls_ok(sv), *half = dial_tls_ok(sv);
    struct client *stopper = dial_tls_ok(sv);
    get_simple_ok(idle, "now", "idle");
    send_str(later, "GET /later?before HTTP/1.1\r\nHost: t\r\n\r\n");
    send_str(half, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab");
    sleep_ms(10); /* /later's handler has its timer before the stop */
    send_str(stopper, "GET /stop?now HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /now?behind HTTP/1.1\r\nHost: t\r\n\r\n");
    struct answer a;
    char v[64];
    answer_ok(stopper, &a, false);
    route_answer_ok(&a, "stop", "stop q=now\n");
    assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
    closed_ok(stopper);
    answer_ok(later, &a, false);
    route_answer_ok(&a, "later", "later q=before\n");
    assert_string_equal(header_value(&a, "Connection", v, sizeof v), "close");
    closed_ok(later);
    closed_ok(idle);
    closed_ok(shaking);
    int64_t t0 = now_ms();
    server_stop(sv);
    assert_true(now_ms() - t0 < 3000);
    closed_ok(half);
    hang_up(shaking);
    hang_up(idle);
    hang_up(later);
    hang_up(half);
    hang_up(stopper);
}

/* ---- groups ---------------------------------------------------------------------------- */

static int setup_threads(void **state, unsigned threads)
{
    wx_log_set_level(WX_LOG_WARN);
    if (server_start(&srv, threads, CONNS_MAX, TIMEOUT_S) != 0) return -1;
    *state = &srv;
    return 0;
}

static int setup_0(void **state)
{
    return setup_threads(state, 0);
}

static int setup_1(void **state)
{
    return setup_threads(state, 1);
}

static int setup_2(void **state)
{
    return setup_threads(state, 2);
}

static int teardown(void **state)
{
    (void)state;
    server_stop(&srv);
    return 0;
}

/* The HTTPS listener's pair in a temporary directory, and the client's context trusting
 * it. 0, or -1. */
static int tls_setup(void)
{
    char err[256];
    snprintf(tls_dir, sizeof tls_dir, "/tmp/wxbank-http-tls-XXXXXX");
    if (mkdtemp(tls_dir) == NULL) return -1;
    snprintf(tls_cert, sizeof tls_cert, "%s/test.crt", tls_dir);
    snprintf(tls_key, sizeof tls_key, "%s/test.key", tls_dir);
    if (wx_tls_make_self_signed(tls_cert, tls_key, 1, err, sizeof err) != 0) {
        fprintf(stderr, "tls: %s\n", err);
        return -1;
    }
    client_tls = SSL_CTX_new(TLS_client_method());
    if (client_tls == NULL || SSL_CTX_load_verify_locations(client_tls, tls_cert, NULL) != 1) {
        return -1;
    }
    SSL_CTX_set_verify(client_tls, SSL_VERIFY_PEER, NULL);
    /* a server's close without close_notify (a dropped connection) reads as the end */
    SSL_CTX_set_options(client_tls, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return 0;
}

static void tls_cleanup(void)
{
    SSL_CTX_free(client_tls);
    unlink(tls_cert);
    unlink(tls_key);
    rmdir(tls_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_sees_the_request),
        cmocka_unit_test(test_keep_alive_serves_every_route),
        cmocka_unit_test(test_http10_closes_by_default),
        cmocka_unit_test(test_http10_keep_alive_stays_open),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_pipelining_keeps_order),
        cmocka_unit_test(test_pipelining_beyond_the_buffer),
        cmocka_unit_test(test_one_byte_writes),
        cmocka_unit_test(test_body_in_pieces),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_refusals_close),
        cmocka_unit_test(test_limits_just_under),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test_teardown(test_max_connections, teardown_small),
        cmocka_unit_test(test_client_leaves_early),
        cmocka_unit_test(test_slow_reader),
        cmocka_unit_test_teardown(test_shutdown_with_work_in_flight, teardown_small),
        cmocka_unit_test(test_hub_post_from_threads),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_tls_files),
        cmocka_unit_test(test_tls_requests),
        cmocka_unit_test(test_secure_route),
        cmocka_unit_test(test_tls_pipelining),
        cmocka_unit_test(test_tls_large_answer),
        cmocka_unit_test(test_tls_key_update),
        cmocka_unit_test(test_tls_policy),
        cmocka_unit_test(test_tls_handshake_limits),
        cmocka_unit_test_teardown(test_tls_shutdown, teardown_small),
    };
    if (tls_setup() != 0) {
        fprintf(stderr, "cannot make the HTTPS listener's certificate\n");
        return 1;
    }
    int failed = 0;
    failed += cmocka_run_group_tests_name("http, hub loop only", tests, setup_0, teardown);
    failed += cmocka_run_group_tests_name("http, 1 I/O thread", tests, setup_1, teardown);
    failed += cmocka_run_group_tests_name("http, 2 I/O threads", tests, setup_2, teardown);
    tls_cleanup();
    return failed;
}
