/*
 * http.c - the HTTP/1.1 listener on the hub's loop, with a small router.
 *
 * Why not libevent's evhttp: the webhook is the platform's hottest path, and evhttp spent
 * three quarters of each request on itself (a dozen allocations, header queues, five
 * syscalls), capping a do-nothing server near 55k requests/s here. This server does one
 * read and one write per request and allocates only per connection: a connection owns an
 * input buffer the request is parsed in place from (http_parse.c) and an output buffer the
 * answer is built in. Requests on a connection are answered in order, one at a time.
 *
 * Threads: the hub's loop accepts and deals connections out to itself and http.threads
 * more I/O threads, each with a loop of its own ("workers"; the hub's loop is worker 0). A
 * worker reads, parses, writes, and hands each request to the hub's loop (wx_hub_post),
 * where its handler runs with the engine; a threaded route (the webhook) runs its handler
 * on the worker instead. An answer given on another thread is built into the connection's
 * output buffer there (a worker leaves a connection's buffers alone while a handler holds
 * its request) and posted back. On the hub's own connections nothing is handed over: what
 * is posted to the current thread runs at once, as a single-threaded server would.
 *
 * What a hostile client could push against has a limit: the head (431), the body (413),
 * the time one request may take to arrive and a connection may sit idle (http.idle_seconds,
 * then 408 or a quiet close), and the number of connections (http.max_connections; beyond
 * it the listener stops accepting until one closes). An answer that ends a connection
 * half-closes it and drains what the client still sends, so the client reads the answer
 * instead of a reset.
 *
 * HTTPS: with a TLS context the listener also listens on https.listen, and a connection
 * accepted there is plain but for how its bytes move. Its events call on_tls_read and
 * on_tls_write instead of on_read and on_write (chosen once, when the I/O thread takes the
 * connection), and flush_out tests c->ssl once per answer: the plain path runs the code it
 * ran before TLS existed. First a non-blocking handshake (SSL_do_handshake on every read or
 * write event) that must finish within the time a request head may take (http.idle_seconds;
 * the sweep closes it otherwise); then SSL_read into the input buffer and SSL_write from the
 * output buffer, so that parsing, routing, threads and answers are shared with plain HTTP.
 * OpenSSL may need the other direction: a read that must write (a TLS 1.3 key update, an
 * alert) stops reading and waits for the socket to be writable (tls_read_wants_write); a
 * write never needs to read once the handshake is done, as renegotiation is refused. OpenSSL
 * also holds records it has read but we have not taken (read-ahead, a record larger than
 * the room in the input buffer), which the socket's readiness does not show: whenever that
 * is so after a read, or when reading resumes, the read event is made active by hand. A
 * handshake or I/O error closes the connection without an answer and with one debug line.
 * Every answer on HTTPS carries Strict-Transport-Security; an answer that ends the
 * connection sends close_notify before the half-close.
 */
#include "net/net.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/http_parse.h"
#include "net/inbox.h"
#include "net/tls_int.h"
#include "util/alloc.h"
#include "util/config.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/timeutil.h"

#define ROUTES_MAX     32
#define LISTEN_BACKLOG 1024
#define IN_START       4096        /* a connection's input buffer to begin with */
#define OUT_START      2048        /* and its output buffer */
#define KEEP_MAX       (16u << 10) /* larger buffers shrink back when the connection idles */
#define EXTRA_MAX      2048        /* headers a handler adds to one answer */
#define LINGER_MS      2000        /* draining a connection we are closing */
#define SWEEP_MS       500         /* how often deadlines are checked */
#define EXIT_GRACE_MS  100         /* answers still being written when the threads stop */
#define THREADS_MAX    16
#define ENDPOINTS_MAX  2 /* http.listen and https.listen */
#define HSTS           "Strict-Transport-Security: max-age=31536000\r\n"

struct route {
    char path[64];
    size_t len;
    bool prefix;
    bool threaded; /* fn runs on the I/O thread */
    bool secure;   /* served over HTTPS only */
    wx_http_handler fn;
    void *arg;
};

struct conn;
struct worker;

struct wx_http_req {
    struct conn *c;
    struct wx_http_head head;
    const uint8_t *body;
    size_t body_len;
    bool keep_alive;
    size_t extra_len;
    char extra[EXTRA_MAX]; /* "Name: value\r\n" lines added by the handler */
};

enum conn_state {
    C_READING,   /* waiting for (the rest of) a request */
    C_HANDLING,  /* a handler holds the request */
    C_LINGERING, /* answered for the last time: draining until the client closes */
    C_DEAD,      /* the socket is closed; the handler still holds the request */
};

struct conn {
    struct wx_http *s;
    struct worker *w; /* the I/O thread that owns the socket */
    struct conn *prev, *next;
    struct wx_hub_task task; /* to the worker (new, answered) or the hub (a request) */
    const struct route *route;
    int fd;
    char peer_ip[64]; /* the client's address, numeric; "?" when unknown */
    enum conn_state state;
    SSL_CTX *tls;              /* the endpoint's context; NULL for plain HTTP */
    SSL *ssl;                  /* made on the I/O thread; NULL for plain HTTP */
    bool tls_handshaking;      /* no HTTP until the handshake is done */
    bool tls_read_wants_write; /* OpenSSL must write before it reads on: ev_read is off */
    bool head_done;            /* req.head describes in[0, head_len) */
    bool continued;            /* "100 Continue" sent for this request */
    bool read_paused;          /* the input buffer is full while a handler works */
    bool write_pending;        /* ev_write is armed */
    bool close_after;          /* close once the output drains */
    bool peer_eof;             /* the client half-closed: answer what it sent, then close */
    bool processing;           /* process() is on the stack: it frees the connection if doomed */
    bool doomed;
    int64_t deadline_ms;
    struct event ev_read, ev_write;
    struct event ev_next; /* goes on with the next request, from the loop's own turn */
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    struct wx_http_req req;
};

/* An I/O thread. Its loop, connections and sweep are its own; others reach it through
 * its inbox only. */
struct worker {
    struct wx_http *s;
    unsigned index;
    bool on_hub;      /* worker 0: the hub's own loop and thread */
    pthread_t thread; /* the thread its loop runs on (not worker 0's) */
    bool started;     /* a thread of its own was started */
    sem_t ready;
    struct event_base *base;
    struct event *sweep;
    struct wx_inbox inbox;
    struct conn *conns;
    struct wx_hub_task stop_task, exit_task;
    struct wx_wake_batch wakes;
};

/* A listening socket and what it speaks. */
struct endpoint {
    struct wx_http *s;
    struct evconnlistener *listener; /* on the hub's loop */
    SSL_CTX *tls;                    /* NULL: plain HTTP */
    char address[64];                /* where it is bound */
};

struct wx_http {
    wx_hub_t *hub;
    struct endpoint endpoints[ENDPOINTS_MAX]; /* [0] plain HTTP, [1] HTTPS if any */
    unsigned nendpoints;
    struct event *accept_retry; /* after an accept error */
    bool accepting;             /* hub thread only */
    atomic_bool stopping;
    atomic_bool resume_posted;
    struct wx_hub_task resume_task; /* a connection closed below max_connections */
    atomic_uint_fast64_t accepted, requests, refused;
    atomic_uint open;
    size_t body_max;
    unsigned timeout_s, max_connections;
    struct route routes[ROUTES_MAX];
    unsigned nroutes;
    struct worker workers[THREADS_MAX];
    unsigned nworkers, next_worker;
};

/* True on the thread that runs w's loop. */
static bool is_current(const struct worker *w)
{
    if (w->on_hub) return wx_hub_in_loop(w->s->hub);
    return pthread_equal(pthread_self(), w->thread) != 0;
}

/* Runs t on w's thread: now when this is it, else through its inbox. */
static void run_on(struct worker *w, struct wx_hub_task *t)
{
    if (is_current(w)) {
        t->next = NULL;
        t->run(t, false);
        return;
    }
    wx_inbox_post(&w->inbox, t);
}

static void process(struct conn *c);
static void flush_out(struct conn *c, bool may_continue);

void wx_http_options_from_config(const struct wx_config *cfg, struct wx_http_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->listen = wx_config_str(cfg, "http.listen");
    opt->body_max = (size_t)wx_config_int(cfg, "http.body_max");
    opt->timeout_s = (unsigned)wx_config_int(cfg, "http.idle_seconds");
    opt->max_connections = (unsigned)wx_config_int(cfg, "http.max_connections");
    opt->threads = (unsigned)wx_config_int(cfg, "http.threads");
    opt->tls_listen = wx_config_str(cfg, "https.listen");
}

/* ---- connections ----------------------------------------------------------------------- */

static void conn_close_socket(struct conn *c)
{
    event_del(&c->ev_read);
    event_del(&c->ev_write);
    close(c->fd);
    c->fd = -1;
}

static void conn_free(struct conn *c)
{
    struct wx_http *s = c->s;
    if (c->fd >= 0) conn_close_socket(c);
    event_del(&c->ev_next);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    SSL_free(c->ssl);
    free(c->in);
    free(c->out);
    free(c);
    /* Closing the one that hit the limit lets the hub's listener accept again. */
    if (atomic_fetch_sub(&s->open, 1) == s->max_connections && !atomic_load(&s->stopping) &&
        !atomic_exchange(&s->resume_posted, true)) {
        wx_hub_post(s->hub, &s->resume_task);
    }
}

/* The client is gone or misbehaved: drop the connection, or only its socket while a
 * handler still holds its request (the handler's answer then frees it) or process() is
 * still looking at it (it frees it on the way out). */
static void conn_drop(struct conn *c)
{
    if (c->state == C_HANDLING) {
        conn_close_socket(c);
        c->state = C_DEAD;
    } else if (c->processing) {
        if (c->fd >= 0) conn_close_socket(c);
        c->doomed = true;
    } else {
        conn_free(c);
    }
}

static void resume_read(struct conn *c)
{
    if (c->read_paused && c->fd >= 0 && !c->peer_eof) {
        event_add(&c->ev_read, NULL);
        c->read_paused = false;
        /* records OpenSSL holds do not make the socket readable */
        if (c->ssl != NULL && SSL_has_pending(c->ssl)) event_active(&c->ev_read, EV_READ, 1);
    }
}

/* Room in `in` for need bytes, exactly (a head's Content-Length may be large). The parsed
 * head points into the buffer, so a move rebases it. */
static void in_reserve(struct conn *c, size_t need)
{
    if (need <= c->in_cap) return;
    char *old = c->in;
    c->in = wx_realloc(c->in, need);
    c->in_cap = need;
    if (!c->head_done || c->in == old) return;
    struct wx_http_head *h = &c->req.head;
    h->path = c->in + (h->path - old);
    if (h->query != NULL) h->query = c->in + (h->query - old);
    for (unsigned i = 0; i < h->nfields; i++) {
        h->fields[i].name = c->in + (h->fields[i].name - old);
        h->fields[i].value = c->in + (h->fields[i].value - old);
    }
}

/* Shrinks buffers a large request grew, once the connection has nothing in them. */
static void conn_trim(struct conn *c)
{
    if (c->in_cap > KEEP_MAX && c->in_len == 0) {
        free(c->in);
        c->in = wx_malloc(IN_START);
        c->in_cap = IN_START;
    }
    if (c->out_cap > KEEP_MAX && c->out_len == 0) {
        free(c->out);
        c->out = wx_malloc(OUT_START);
        c->out_cap = OUT_START;
    }
}

static void linger(struct conn *c)
{
    if (c->ssl != NULL) {
        /* close_notify, best effort: the output just drained, so there is room for it */
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    shutdown(c->fd, SHUT_WR);
    c->state = C_LINGERING;
    c->in_len = 0;
    c->deadline_ms = wx_now_ms() + LINGER_MS;
    resume_read(c);
}

/* Waits for the socket to be writable (once: ev_write is not persistent). */
static void arm_write(struct conn *c)
{
    if (!c->write_pending) event_add(&c->ev_write, NULL);
    c->write_pending = true;
}

/* The output waits for a client reading a large answer slowly, which is not idle: the
 * deadline runs from its last progress. */
static void wait_writable(struct conn *c)
{
    c->deadline_ms = wx_now_ms() + (int64_t)c->s->timeout_s * 1000;
    arm_write(c);
}

/* The client's numeric address alone (rate limits and the audit log key on it). */
static void peer_ip(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, out, (socklen_t)cap, NULL, 0, NI_NUMERICHOST) !=
            0) {
        snprintf(out, cap, "?");
    }
}

/* Formats the client's address for a log line. */
static void peer_address(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[64], port[16]; /* numeric: an IPv6 address is at most 45 characters */
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, cap, "?");
        return;
    }
    snprintf(out, cap, "%s port %s", host, port);
}

/* A TLS handshake or I/O error (e from SSL_get_error, err_no the errno after the call):
 * one debug line, and the connection closes without an answer. */
static void tls_fail(struct conn *c, const char *what, int e, int err_no)
{
    if (wx_log_enabled(WX_LOG_DEBUG)) {
        char peer[96], why[160];
        unsigned long code = ERR_peek_last_error();
        const char *reason = code != 0 ? ERR_reason_error_string(code) : NULL;
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && err_no == 0)) {
            snprintf(why, sizeof why, "the client closed the connection");
        } else if (e == SSL_ERROR_SYSCALL) {
            snprintf(why, sizeof why, "%s", strerror(err_no));
        } else {
            snprintf(why, sizeof why, "%s", reason != NULL ? reason : "OpenSSL error");
        }
        peer_address(c->fd, peer, sizeof peer);
        WX_DEBUG("https: %s: TLS %s failed: %s; closed", peer, what, why);
    }
    ERR_clear_error();
    conn_drop(c);
}

/* OpenSSL must write before it can read on (a handshake message, a key update, an alert):
 * reading stops, or the read event would fire for as long as the socket is readable, until
 * on_tls_write finds the socket writable. */
static void read_wants_write(struct conn *c)
{
    event_del(&c->ev_read);
    c->tls_read_wants_write = true;
    arm_write(c);
}

/* flush_out's loop for TLS. True when the output is all written; false when it waits for
 * the socket or the connection was dropped. */
static bool tls_send_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        size_t left = c->out_len - c->out_off;
        ERR_clear_error();
        int n = SSL_write(c->ssl, c->out + c->out_off, left < INT_MAX ? (int)left : INT_MAX);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        int err_no = errno;
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE) {
            wait_writable(c);
            return false;
        }
        /* SSL_ERROR_WANT_READ cannot happen: the handshake is done and renegotiation off */
        tls_fail(c, "write", e, err_no);
        return false;
    }
    return true;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->write_pending = false;
    flush_out(c, true);
}

/* Writes what the output buffer holds; arms ev_write for the rest. Once it is out, goes on
 * with the requests that waited behind it: at once when that is safe (process() is on the
 * stack, or this is the loop's own callback), else from ev_next, so that no handler runs
 * inside the callback of whoever answered (a hub timer, another handler). */
static void flush_out(struct conn *c, bool may_continue)
{
    if (c->ssl != NULL) { /* the one test for TLS on the plain path */
        if (!tls_send_out(c)) return;
    }
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_writable(c);
            return;
        }
        conn_drop(c);
        return;
    }
    c->out_len = c->out_off = 0;
    if (c->in_len == 0) conn_trim(c);
    if (c->close_after) {
        linger(c);
        return;
    }
    if (c->state != C_READING) return;
    if (may_continue || c->processing) {
        process(c);
    } else {
        event_active(&c->ev_next, EV_TIMEOUT, 0);
    }
}

static void on_next(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->state == C_READING && c->out_len == 0) process(c);
}

/* Makes room in the input buffer for a read. The buffer grows to hold one head, or the
 * head and body of the request parsed, and never while a handler holds the request (its
 * body lives there). False when it is full: reading pauses until the answers drain. */
static bool read_room(struct conn *c)
{
    size_t limit =
        !c->head_done ? WX_HTTP_HEADERS_MAX : c->req.head.head_len + c->req.head.content_length;
    if (c->state == C_READING && c->in_len == c->in_cap && c->in_cap < limit) {
        in_reserve(c, c->in_cap * 2 < limit ? c->in_cap * 2 : limit);
    }
    if (c->in_len == c->in_cap && c->state != C_LINGERING) {
        /* the answers do not drain (a handler works, or the client does not read): wait */
        event_del(&c->ev_read);
        c->read_paused = true;
        return false;
    }
    return true;
}

/* n bytes were read into the input buffer; 0: the client ended its side. */
static void read_done(struct conn *c, size_t n)
{
    if (n == 0 && c->state == C_LINGERING) {
        conn_drop(c);
        return;
    }
    if (n == 0) {
        /* A half-close (HTTP/1.0 clients, nc -N): what was sent still gets its answers,
         * then the connection closes (process() sees to that). */
        c->peer_eof = true;
        event_del(&c->ev_read);
        if (c->state == C_READING && c->out_len == 0) process(c);
        return;
    }
    if (c->state == C_LINGERING) {
        c->in_len = 0; /* drained and dropped */
        return;
    }
    c->in_len += n;
    if (c->state == C_READING && c->out_len == 0) process(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (!read_room(c)) return;
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) {
        conn_drop(c);
        return;
    }
    read_done(c, (size_t)n);
}

/* Drives the handshake from either direction's event. Once it is done the first request's
 * time starts, and reading begins at once: the request may have come with the client's
 * last handshake message and wait inside OpenSSL. */
static void tls_handshake(struct conn *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc != 1) {
        int err_no = errno;
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_READ) return; /* ev_read is on */
        if (e == SSL_ERROR_WANT_WRITE) {
            read_wants_write(c);
            return;
        }
        tls_fail(c, "handshake", e, err_no);
        return;
    }
    c->tls_handshaking = false;
    c->deadline_ms = wx_now_ms() + (int64_t)c->s->timeout_s * 1000;
    event_active(&c->ev_read, EV_READ, 1);
}

/* on_read for HTTPS: SSL_read into the input buffer, after the handshake. */
static void on_tls_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->tls_handshaking) {
        tls_handshake(c);
        return;
    }
    if (c->state == C_LINGERING) { /* after our close_notify: drained as raw bytes */
        on_read(fd, what, arg);
        return;
    }
    if (!read_room(c)) return;
    size_t room = c->in_cap - c->in_len;
    ERR_clear_error();
    int n = SSL_read(c->ssl, c->in + c->in_len, room < INT_MAX ? (int)room : INT_MAX);
    if (n <= 0) {
        int err_no = errno;
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) return;
        if (e == SSL_ERROR_WANT_WRITE) {
            read_wants_write(c);
        } else if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify, or the end of the stream */
            read_done(c, 0);
        } else {
            tls_fail(c, "read", e, err_no);
        }
        return;
    }
    /* more is decrypted or read ahead than there was room for: come back for it */
    if (SSL_has_pending(c->ssl)) event_active(&c->ev_read, EV_READ, 1);
    read_done(c, (size_t)n);
}

/* on_write for HTTPS: the socket is writable for a read or handshake that waited for it,
 * for the output, or both. */
static void on_tls_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->write_pending = false;
    if (c->tls_read_wants_write) {
        c->tls_read_wants_write = false;
        if (!c->read_paused && !c->peer_eof) event_add(&c->ev_read, NULL);
        event_active(&c->ev_read, EV_READ, 1);
    }
    if (c->out_off < c->out_len) flush_out(c, true);
}

/* ---- answers --------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* The Date header, formatted once a second on each thread. */
static const char *date_header(void)
{
    static _Thread_local char date[40];
    static _Thread_local time_t date_sec;
    time_t now = time(NULL);
    if (now != date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        date_sec = now;
    }
    return date;
}

static void out_reserve(struct conn *c, size_t more)
{
    size_t need = c->out_len + more;
    if (need <= c->out_cap) return;
    size_t cap = c->out_cap;
    while (cap < need)
        cap *= 2;
    c->out = wx_realloc(c->out, cap);
    c->out_cap = cap;
}

/* Appends the answer's head and body to the output buffer. */
/* Appends s[0, n) at *p. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* Appends v in decimal. */
static char *put_uint(char *p, size_t v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = digits[--n];
    return p;
}

/* Appends the answer's head and body to the output buffer. (Built by hand: snprintf was
 * a few per cent of a webhook request.) */
static void build_answer(struct conn *c, int status, const char *content_type, const void *body,
                         size_t len, bool with_body)
{
    const struct wx_http_req *req = &c->req;
    assert(status >= 100 && status <= 999);
    const char *why = reason(status), *date = date_header();
    size_t why_len = strlen(why), date_len = strlen(date), type_len = strlen(content_type);
    size_t head_max = 192 + sizeof HSTS + why_len + date_len + type_len + req->extra_len;
    out_reserve(c, head_max + (with_body ? len : 0));
    char *start = c->out + c->out_len, *p = start;
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put_uint(p, (size_t)status);
    *p++ = ' ';
    p = put(p, why, why_len);
    p = PUT_LIT(p, "\r\n");
    p = put(p, date, date_len);
    p = PUT_LIT(p, "Content-Type: ");
    p = put(p, content_type, type_len);
    p = PUT_LIT(p, "\r\nContent-Length: ");
    p = put_uint(p, len);
    p = PUT_LIT(p, "\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n");
    if (c->ssl != NULL) p = PUT_LIT(p, HSTS);
    if (!req->keep_alive) {
        p = PUT_LIT(p, "Connection: close\r\n");
    } else if (req->head.minor == 0) {
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    }
    p = put(p, req->extra, req->extra_len);
    p = PUT_LIT(p, "\r\n");
    assert((size_t)(p - start) <= head_max);
    if (with_body && len > 0) p = put(p, body, len);
    c->out_len += (size_t)(p - start);
}

/* The request at the head of the input is answered: make room for the next one. */
static void consume_request(struct conn *c)
{
    size_t used = c->req.head.head_len + c->req.head.content_length;
    assert(used <= c->in_len);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->head_done = false;
    c->continued = false;
    c->req.extra_len = 0;
}

/* On the connection's I/O thread: the answer is in the output buffer; write it and go on
 * with the connection (at once only when the caller is the loop itself: may_continue). */
static void finish_answer(struct conn *c, bool may_continue)
{
    assert(is_current(c->w));
    if (c->state == C_DEAD) { /* the client left while the handler worked */
        conn_free(c);
        return;
    }
    consume_request(c);
    c->state = C_READING;
    c->close_after = !c->req.keep_alive;
    c->deadline_ms = wx_now_ms() + (int64_t)c->s->timeout_s * 1000;
    resume_read(c);
    if (!c->write_pending) flush_out(c, may_continue);
}

static void on_answered(struct wx_hub_task *t, bool cancelled)
{
    if (!cancelled) finish_answer((struct conn *)((char *)t - offsetof(struct conn, task)), true);
}

void wx_http_send(wx_http_req_t *req, int status, const char *content_type, const void *body,
                  size_t len)
{
    struct conn *c = req->c;
    bool here = is_current(c->w);
    assert(!here || c->state == C_HANDLING || c->state == C_DEAD);
    assert(c->out_len == 0);
    if (atomic_load_explicit(&c->s->stopping, memory_order_relaxed)) req->keep_alive = false;
    build_answer(c, status, content_type, body, len, req->head.method != WX_HTTP_HEAD);
    if (here) {
        finish_answer(c, false);
        return;
    }
    c->task.run = on_answered;
    wx_inbox_post(&c->w->inbox, &c->task);
}

void wx_http_error(wx_http_req_t *req, int status, const char *message)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%s\n", message);
    wx_http_send(req, status, "text/plain; charset=utf-8", body,
                 n < (int)sizeof body ? (size_t)n : sizeof body - 1);
}

void wx_http_add_header(wx_http_req_t *req, const char *name, const char *value)
{
    size_t room = sizeof req->extra - req->extra_len;
    int n = snprintf(req->extra + req->extra_len, room, "%s: %s\r\n", name, value);
    assert(n > 0 && (size_t)n < room); /* handlers add a few short headers */
    assert(strpbrk(value, "\r\n") == NULL);
    req->extra_len += (size_t)n;
}

/* The listener refuses a request it cannot parse, and closes the connection. */
static void refuse(struct conn *c, int status, const char *message)
{
    atomic_fetch_add_explicit(&c->s->refused, 1, memory_order_relaxed);
    c->state = C_HANDLING;
    c->req.keep_alive = false;
    c->req.head.method = WX_HTTP_GET;
    c->req.head.minor = 1;
    c->req.head.head_len = c->req.head.content_length = 0;
    wx_http_error(&c->req, status, message);
}

/* ---- requests -------------------------------------------------------------------------- */

static const struct route *find_route(const struct wx_http *s, const char *path)
{
    size_t len = strlen(path);
    for (unsigned i = 0; i < s->nroutes; i++) {
        const struct route *r = &s->routes[i];
        if (r->prefix ? strncmp(path, r->path, r->len) == 0
                      : len == r->len && memcmp(path, r->path, len) == 0) {
            return r;
        }
    }
    return NULL;
}

static const char *status_message(int status)
{
    switch (status) {
    case 501:
        return "method not implemented: GET, HEAD and POST only";
    case 411:
        return "send the body with a Content-Length";
    case 413:
        return "request body too large";
    case 414:
        return "request target too long";
    case 417:
        return "only Expect: 100-continue is understood";
    case 431:
        return "request headers too large";
    case 505:
        return "HTTP/1.0 and HTTP/1.1 only";
    default:
        return "malformed request";
    }
}

/* Parses the request at the start of the input. Returns true when one is complete and
 * ready for its handler; false when more bytes are needed or it was refused. */
static bool next_request(struct conn *c)
{
    struct wx_http *s = c->s;
    struct wx_http_req *req = &c->req;
    if (!c->head_done) {
        int rc = wx_http_parse_head(c->in, c->in_len, WX_HTTP_HEADERS_MAX, s->body_max, &req->head);
        if (rc == 0) return false;
        if (rc != 1) {
            refuse(c, rc, status_message(rc));
            return false;
        }
        c->head_done = true;
    }
    size_t need = req->head.head_len + req->head.content_length;
    if (c->in_len >= need) return true;
    in_reserve(c, need);
    if (req->head.expect_continue && !c->continued) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        out_reserve(c, sizeof cont - 1);
        memcpy(c->out, cont, sizeof cont - 1);
        c->out_len = sizeof cont - 1;
        c->continued = true;
        flush_out(c, true);
    }
    resume_read(c); /* the buffer may have grown for the body */
    return false;
}

/* On the hub's loop: a request for a route of the loop's. */
static void on_hub_request(struct wx_hub_task *t, bool cancelled)
{
    if (cancelled) return; /* the connections are closed by wx_http_free */
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, task));
    c->route->fn(&c->req, c->route->arg);
}

/* Hands the requests waiting in the input buffer to their handlers, one at a time: the
 * next only once the one before is answered and its answer written. */
static void process(struct conn *c)
{
    if (c->processing) return; /* an answer given inside a handler: the loop below goes on */
    struct wx_http *s = c->s;
    c->processing = true;
    while (!c->doomed && c->state == C_READING && c->out_len == 0 && c->in_len > 0 &&
           next_request(c)) {
        struct wx_http_req *req = &c->req;
        req->body =
            req->head.content_length > 0 ? (const uint8_t *)c->in + req->head.head_len : NULL;
        req->body_len = req->head.content_length;
        req->keep_alive = req->head.keep_alive && !atomic_load(&s->stopping);
        req->extra_len = 0;
        c->state = C_HANDLING;
        atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
        c->route = find_route(s, req->head.path);
        if (c->route == NULL) {
            wx_http_error(req, 404, "not found");
        } else if (c->route->secure && c->ssl == NULL) {
            /* Never a sensitive page in clear, not even a form: the answer says where. */
            wx_http_error(req, 403, "this page is served over HTTPS only");
        } else if (c->route->threaded) {
            c->route->fn(req, c->route->arg);
        } else {
            c->task.run = on_hub_request;
            wx_hub_post(s->hub, &c->task);
        }
    }
    /* A client that half-closed sends nothing more: once all it sent is answered, close. */
    if (c->peer_eof && !c->doomed && c->state == C_READING && c->out_len == 0) {
        if (c->fd >= 0) conn_close_socket(c);
        c->doomed = true;
    }
    c->processing = false;
    if (c->doomed) conn_free(c);
}

/* ---- the I/O threads ------------------------------------------------------------------- */

/* Deadlines: a request that takes too long to arrive gets 408, an idle connection closes,
 * a lingering one stops draining. A connection whose handler works has none. */
static void sweep(struct worker *w)
{
    struct wx_http *s = w->s;
    bool stopping = atomic_load(&s->stopping);
    int64_t now = wx_now_ms();
    struct conn *next;
    for (struct conn *c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == C_HANDLING || c->state == C_DEAD) continue;
        bool idle = c->state == C_READING && c->in_len == 0 && c->out_len == 0;
        if (stopping && idle) {
            conn_drop(c);
        } else if (now >= c->deadline_ms) {
            if (c->state == C_READING && c->in_len > 0 && c->out_len == 0 && !c->processing) {
                refuse(c, 408, "request not received in time");
            } else {
                conn_drop(c);
            }
        }
    }
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sweep(arg);
}

/* A connection the hub accepted, now this thread's. */
static void on_new_conn(struct wx_hub_task *t, bool cancelled)
{
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, task));
    struct worker *w = c->w;
    if (cancelled) { /* the thread is gone: it never saw the connection */
        close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
        atomic_fetch_sub(&w->s->open, 1);
        return;
    }
    peer_ip(c->fd, c->peer_ip, sizeof c->peer_ip);
    /* a TLS handshake must end within the time a request head may take */
    c->deadline_ms = wx_now_ms() + (int64_t)w->s->timeout_s * 1000;
    bool tls = c->tls != NULL;
    event_assign(&c->ev_read, w->base, c->fd, EV_READ | EV_PERSIST, tls ? on_tls_read : on_read, c);
    event_assign(&c->ev_write, w->base, c->fd, EV_WRITE, tls ? on_tls_write : on_write, c);
    event_assign(&c->ev_next, w->base, -1, 0, on_next, c);
    c->next = w->conns;
    if (w->conns != NULL) w->conns->prev = c;
    w->conns = c;
    if (tls) {
        c->ssl = SSL_new(c->tls);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
            WX_WARN("https: cannot begin a TLS connection (out of memory?); closed");
            ERR_clear_error();
            conn_free(c);
            return;
        }
        SSL_set_accept_state(c->ssl);
        c->tls_handshaking = true;
    }
    event_add(&c->ev_read, NULL);
}

static void on_worker_stop(struct wx_hub_task *t, bool cancelled)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, stop_task));
    if (!cancelled) sweep(w); /* idle connections go now */
}

static void on_worker_exit(struct wx_hub_task *t, bool cancelled)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, exit_task));
    if (cancelled) return;
    struct timeval grace = {.tv_sec = 0, .tv_usec = EXIT_GRACE_MS * 1000};
    event_base_loopexit(w->base, &grace);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->thread = pthread_self();
    sem_post(&w->ready); /* from here on, is_current(w) holds on this thread */
    wx_wake_batch_begin(&w->wakes, w->base);
    event_base_dispatch(w->base);
    wx_wake_batch_end(&w->wakes);
    return NULL;
}

/* Worker 0 is the hub's loop, on this thread (the one that will run wx_hub_run); the
 * others get a loop and a thread of their own. */
static int worker_init(struct wx_http *s, struct worker *w, unsigned index)
{
    w->s = s;
    w->index = index;
    w->on_hub = index == 0;
    if (!w->on_hub) sem_init(&w->ready, 0, 0);
    w->base = w->on_hub ? wx_hub_base(s->hub) : event_base_new();
    if (w->base == NULL || wx_inbox_init(&w->inbox, w->base) != 0) return -1;
    w->sweep = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
    struct timeval tv = {.tv_sec = 0, .tv_usec = SWEEP_MS * 1000};
    if (w->sweep == NULL || event_add(w->sweep, &tv) != 0) return -1;
    w->stop_task.run = on_worker_stop;
    w->exit_task.run = on_worker_exit;
    if (w->on_hub) return 0;
    /* Signals are the hub's: its loop turns them into a clean shutdown. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t thread; /* w->thread is the thread's own to write (worker_main) */
    int rc = pthread_create(&thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) return -1;
    w->started = true;
    sem_wait(&w->ready); /* w->thread is the thread's own word from here */
    return 0;
}

/* Stops the threads, each after its grace period (which runs for all at once). */
static void workers_join(struct wx_http *s)
{
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started)
            wx_inbox_post_now(&s->workers[i].inbox, &s->workers[i].exit_task);
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        if (!w->started) continue;
        pthread_join(w->thread, NULL);
        w->started = false;
    }
}

/* Closes what a stopped thread still holds. */
static void worker_free(struct worker *w)
{
    assert(!w->started);
    wx_inbox_close(&w->inbox);
    while (w->conns != NULL)
        conn_free(w->conns);
    if (w->sweep != NULL) event_free(w->sweep);
    if (w->base != NULL && !w->on_hub) event_base_free(w->base);
    if (!w->on_hub) sem_destroy(&w->ready);
}

/* ---- the listener (on the hub's loop) ----------------------------------------------------- */

/* Turns every endpoint's accepting on or off, together: they share max_connections. */
static void set_accepting(struct wx_http *s, bool on)
{
    for (unsigned i = 0; i < s->nendpoints; i++) {
        if (on) {
            evconnlistener_enable(s->endpoints[i].listener);
        } else {
            evconnlistener_disable(s->endpoints[i].listener);
        }
    }
    s->accepting = on;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct endpoint *ep = arg;
    struct wx_http *s = ep->s;
    if (evutil_make_socket_nonblocking(fd) != 0) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = wx_calloc(1, sizeof *c);
    c->s = s;
    c->w = &s->workers[s->next_worker++ % s->nworkers];
    c->fd = fd;
    c->tls = ep->tls;
    c->req.c = c;
    c->in = wx_malloc(IN_START);
    c->in_cap = IN_START;
    c->out = wx_malloc(OUT_START);
    c->out_cap = OUT_START;
    atomic_fetch_add_explicit(&s->accepted, 1, memory_order_relaxed);
    if (atomic_fetch_add(&s->open, 1) + 1 >= s->max_connections) set_accepting(s, false);
    c->task.run = on_new_conn;
    run_on(c->w, &c->task);
}

/* accept() failed for want of descriptors (EMFILE, ENFILE) or memory: libevent would call
 * it again at once, forever. Pause the listener for a second instead. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct wx_http *s = ((struct endpoint *)arg)->s;
    WX_WARN("http: cannot accept a connection: %s; pausing the listener for 1 s", strerror(errno));
    set_accepting(s, false);
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    event_add(s->accept_retry, &tv);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wx_http *s = arg;
    if (!s->accepting && !atomic_load(&s->stopping) && atomic_load(&s->open) < s->max_connections) {
        set_accepting(s, true);
    }
}

/* A connection closed below the limit: accept again. */
static void on_resume(struct wx_hub_task *t, bool cancelled)
{
    struct wx_http *s = (struct wx_http *)((char *)t - offsetof(struct wx_http, resume_task));
    atomic_store(&s->resume_posted, false);
    if (cancelled || s->accepting || atomic_load(&s->stopping)) return;
    if (atomic_load(&s->open) < s->max_connections) set_accepting(s, true);
}

static void healthz(wx_http_req_t *req, void *arg)
{
    struct wx_http *s = arg;
    const char *body = wx_hub_stopping(s->hub) ? "stopping\n" : "ok\n";
    wx_http_send(req, wx_hub_stopping(s->hub) ? 503 : 200, "text/plain; charset=utf-8", body,
                 strlen(body));
}

/* Shutdown: stop accepting, and let keep-alive connections go once idle. Answers already
 * owed are the routes' business. */
static void on_stop(void *arg)
{
    struct wx_http *s = arg;
    atomic_store(&s->stopping, true);
    if (s->accepting) set_accepting(s, false);
    for (unsigned i = 0; i < s->nworkers; i++)
        run_on(&s->workers[i], &s->workers[i].stop_task);
}

/* max_connections descriptors, and some for everything else (the journal, the ISO 8583
 * listener, eventfds): raises the soft limit toward the hard one when it must, and serves
 * fewer connections when even that is short. */
static unsigned fit_descriptors(unsigned want)
{
    enum { OTHERS = 128 };
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return want;
    rlim_t need = (rlim_t)want + OTHERS;
    if (rl.rlim_cur < need && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t raised = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        struct rlimit nrl = {.rlim_cur = raised, .rlim_max = rl.rlim_max};
        if (raised > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &nrl) == 0) rl.rlim_cur = raised;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return want;
    unsigned fit = rl.rlim_cur > 2 * OTHERS ? (unsigned)(rl.rlim_cur - OTHERS) : OTHERS;
    WX_WARN("http: %llu open files allowed (ulimit -n): serving %u connections, not %u",
            (unsigned long long)rl.rlim_cur, fit, want);
    return fit;
}

/* Binds the next endpoint to listen (the value of config key `key`, which errors name),
 * speaking TLS with tls unless it is NULL. 0, or -1 with err. */
static int endpoint_bind(struct wx_http *s, const char *key, const char *listen, SSL_CTX *tls,
                         char *err, size_t errlen)
{
    assert(s->nendpoints < ENDPOINTS_MAX);
    char why[256];
    struct sockaddr_storage ss;
    unsigned sslen = 0;
    if (wx_net_resolve(listen, &ss, &sslen, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", key, why);
        return -1;
    }
    struct endpoint *ep = &s->endpoints[s->nendpoints];
    ep->s = s;
    ep->tls = tls;
    ep->listener =
        evconnlistener_new_bind(wx_hub_base(s->hub), on_accept, ep,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sslen);
    if (ep->listener == NULL) {
        snprintf(err, errlen, "%s = %s: cannot listen: %s", key, listen, strerror(errno));
        return -1;
    }
    s->nendpoints++;
    evconnlistener_set_error_cb(ep->listener, on_accept_error);
    wx_net_local_address(evconnlistener_get_fd(ep->listener), ep->address, sizeof ep->address);
    return 0;
}

wx_http_t *wx_http_start(wx_hub_t *hub, const struct wx_http_options *opt, char *err, size_t errlen)
{
    assert(opt->body_max > 0 && opt->body_max <= WX_HTTP_BODY_MAX);
    assert(opt->timeout_s > 0 && opt->max_connections > 0);
    assert(opt->threads < THREADS_MAX);
    assert(opt->tls == NULL || (opt->tls_listen != NULL && opt->tls_listen[0] != '\0'));

    struct wx_http *s = wx_calloc(1, sizeof *s);
    s->hub = hub;
    s->body_max = opt->body_max;
    s->timeout_s = opt->timeout_s;
    s->max_connections = opt->max_connections;
    s->resume_task.run = on_resume;
    if (endpoint_bind(s, "http.listen", opt->listen, NULL, err, errlen) != 0 ||
        (opt->tls != NULL &&
         endpoint_bind(s, "https.listen", opt->tls_listen, opt->tls->ctx, err, errlen) != 0)) {
        for (unsigned i = 0; i < s->nendpoints; i++)
            evconnlistener_free(s->endpoints[i].listener);
        free(s);
        return NULL;
    }
    s->accepting = true;
    s->accept_retry = evtimer_new(wx_hub_base(hub), on_accept_retry, s);
    if (s->accept_retry == NULL) WX_FATAL("libevent: out of memory");
    s->max_connections = fit_descriptors(opt->max_connections);
    for (s->nworkers = 0; s->nworkers < 1 + opt->threads; s->nworkers++) {
        if (worker_init(s, &s->workers[s->nworkers], s->nworkers) != 0) {
            snprintf(err, errlen, "http: cannot start an I/O thread");
            s->nworkers++;
            wx_http_free(s);
            return NULL;
        }
    }
    wx_http_route(s, "/healthz", false, healthz, s);
    struct wx_hub_adapter a = {.name = "http", .stop = on_stop, .arg = s};
    wx_hub_attach(hub, &a);
    for (unsigned i = 0; i < s->nendpoints; i++) {
        const struct endpoint *ep = &s->endpoints[i];
        printf("%s listening on %s\n", ep->tls != NULL ? "https" : "http", ep->address);
    }
    fflush(stdout);
    WX_INFO("http: serving %s%s%s on the hub's loop and %u more I/O threads",
            s->endpoints[0].address, s->nendpoints > 1 ? " and https on " : "",
            s->nendpoints > 1 ? s->endpoints[1].address : "", s->nworkers - 1);
    return s;
}

void wx_http_free(wx_http_t *s)
{
    if (s == NULL) return;
    atomic_store(&s->stopping, true);
    if (s->accepting) set_accepting(s, false);
    workers_join(s);
    event_free(s->accept_retry);
    /* Requests handed to the hub's loop and never run point into the connections. */
    wx_hub_discard_posted(s->hub);
    for (unsigned i = 0; i < s->nworkers; i++)
        worker_free(&s->workers[i]);
    for (unsigned i = 0; i < s->nendpoints; i++)
        evconnlistener_free(s->endpoints[i].listener);
    free(s);
}

const char *wx_http_address(const wx_http_t *s)
{
    return s->endpoints[0].address;
}

const char *wx_http_tls_address(const wx_http_t *s)
{
    return s->nendpoints > 1 ? s->endpoints[1].address : "";
}

void wx_http_stats(const wx_http_t *s, struct wx_http_stats *out)
{
    out->accepted = atomic_load(&s->accepted);
    out->requests = atomic_load(&s->requests);
    out->refused = atomic_load(&s->refused);
    out->open = atomic_load(&s->open);
}

unsigned wx_http_threads(const wx_http_t *s)
{
    return s->nworkers;
}

void wx_http_post(wx_http_req_t *req, struct wx_hub_task *t)
{
    run_on(req->c->w, t);
}

unsigned wx_http_thread(const wx_http_req_t *req)
{
    return req->c->w->index;
}

static void add_route(wx_http_t *s, const char *path, bool prefix, bool threaded, bool secure,
                      wx_http_handler fn, void *arg)
{
    assert(s->nroutes < ROUTES_MAX && strlen(path) < sizeof s->routes[0].path);
    struct route *r = &s->routes[s->nroutes++];
    snprintf(r->path, sizeof r->path, "%s", path);
    r->len = strlen(path);
    r->prefix = prefix;
    r->threaded = threaded;
    r->secure = secure;
    r->fn = fn;
    r->arg = arg;
}

void wx_http_route(wx_http_t *s, const char *path, bool prefix, wx_http_handler fn, void *arg)
{
    add_route(s, path, prefix, false, false, fn, arg);
}

void wx_http_route_secure(wx_http_t *s, const char *path, bool prefix, wx_http_handler fn,
                          void *arg)
{
    add_route(s, path, prefix, false, true, fn, arg);
}

void wx_http_route_threaded(wx_http_t *s, const char *path, bool prefix, wx_http_handler fn,
                            void *arg)
{
    add_route(s, path, prefix, true, false, fn, arg);
}

/* ---- the request's parts --------------------------------------------------------------- */

enum wx_http_method wx_http_method(const wx_http_req_t *req)
{
    return (enum wx_http_method)req->head.method;
}

const char *wx_http_peer_ip(const wx_http_req_t *req)
{
    return req->c->peer_ip;
}

bool wx_http_is_tls(const wx_http_req_t *req)
{
    return req->c->tls != NULL;
}

const char *wx_http_path(const wx_http_req_t *req)
{
    return req->head.path;
}

const char *wx_http_query(const wx_http_req_t *req)
{
    return req->head.query;
}

const char *wx_http_header(const wx_http_req_t *req, const char *name)
{
    return wx_http_head_field(&req->head, name);
}

const uint8_t *wx_http_body(const wx_http_req_t *req, size_t *len)
{
    *len = req->body_len;
    return req->body;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int wx_http_query_decode(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    for (; p < end; p++) {
        char c = *p;
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (end - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0) return -2;
            c = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        }
        if (c == '\0' || n + 1 >= cap) return -2;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

int wx_http_query_param(const char *query, const char *name, char *out, size_t cap)
{
    assert(cap > 0);
    if (query == NULL) return -1;
    size_t nl = strlen(name);
    const char *p = query;
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp != NULL ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq != NULL && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            return wx_http_query_decode(eq + 1, end, out, cap);
        }
        p = amp != NULL ? amp + 1 : end;
    }
    return -1;
}
