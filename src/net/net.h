/*
 * net.h - the serving process: one libevent loop that the protocol adapters share.
 *
 * The hub owns the loop, the ledger's durability notifications, the once-per-turn flush of
 * the group commit and the clean shutdown on SIGINT/SIGTERM. Adapters (the ISO 8583 host,
 * the HTTP listener and what hangs off it: webhook, sandbox, metrics) attach to it, submit
 * commands through it and hear from it when decisions become durable, so that no adapter
 * answers before its decision is on disk.
 *
 * Everything here runs on the loop's thread.
 */
#ifndef WX_NET_NET_H
#define WX_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "keys/keys.h"

struct event_base;
struct wx_ledger;
struct wx_config;

/* ======================================================================================
 * Hub
 * ====================================================================================== */

typedef struct wx_hub wx_hub_t;

#define WX_HUB_ADAPTERS_MAX 8

/* What an adapter tells the hub about itself. Every callback may be NULL. */
struct wx_hub_adapter {
    const char *name;                         /* for logs: "iso8583", "http" */
    void (*durable)(void *arg, uint64_t seq); /* after each group commit: seq is on disk */
    /* after wx_hub_submit journaled a new decision (not a repeat), at once: what the row at
     * res->seq holds. It is not durable yet: act on it only once `durable` says so. */
    void (*decided)(void *arg, const struct wx_cmd *cmd, const struct wx_result *res);
    void (*stop)(void *arg); /* shutdown began: take no new work */
    bool (*busy)(void *arg); /* still owes answers (shutdown waits) */
    void *arg;
};

/*
 * Creates the loop. ledger and keys may be NULL for a process that decides nothing (the
 * standalone WeChat sandbox); wx_hub_submit then must not be called. NULL with a message in
 * err on failure. The hub borrows ledger and keys; the caller closes them after wx_hub_free.
 */
wx_hub_t *wx_hub_new(struct wx_ledger *ledger, const wx_keys_t *keys, char *err, size_t errlen);
void wx_hub_free(wx_hub_t *h);

/* Registers an adapter (at most WX_HUB_ADAPTERS_MAX); the struct is copied. */
void wx_hub_attach(wx_hub_t *h, const struct wx_hub_adapter *a);

struct event_base *wx_hub_base(const wx_hub_t *h);
struct wx_ledger *wx_hub_ledger(const wx_hub_t *h);
const wx_keys_t *wx_hub_keys(const wx_hub_t *h);
const wx_engine_t *wx_hub_engine(const wx_hub_t *h);

/*
 * Decides cmd now and returns the journal seq that must be durable before anything derived
 * from the answer leaves the process: the decision's own row, or for an answer that changed
 * nothing (a refusal, a repeat, a query) everything decided before it. The turn's rows go to
 * the committer in one flush at the end of the loop turn.
 */
uint64_t wx_hub_submit(wx_hub_t *h, const struct wx_cmd *cmd, struct wx_result *res);

/* The seq that must be durable before showing the current state (a read-only answer). */
uint64_t wx_hub_read_seq(const wx_hub_t *h);

/* True when seq is durable. */
bool wx_hub_is_durable(const wx_hub_t *h, uint64_t seq);

/*
 * Work for the loop's thread from another thread (the HTTP listener's I/O threads hand
 * requests over this way). run is called on the loop's thread, in posting order; with
 * cancelled set when the loop has ended, when it must only release what it holds.
 */
struct wx_hub_task {
    struct wx_hub_task *next;
    void (*run)(struct wx_hub_task *t, bool cancelled);
};

/* Any thread; t stays the caller's memory until run. Posted on the loop's own thread while
 * it runs, t runs at once. */
void wx_hub_post(wx_hub_t *h, struct wx_hub_task *t);

/* As wx_hub_post, but from another loop's thread the wake-up is not deferred to the end of
 * that loop's turn (see wx_wake_batch): for a caller that waits for t before it returns. */
void wx_hub_post_now(wx_hub_t *h, struct wx_hub_task *t);

/* True on the thread that runs the loop, while it runs. */
bool wx_hub_in_loop(const wx_hub_t *h);

/* After wx_hub_run (or instead of it): runs every task still posted, cancelled. */
void wx_hub_discard_posted(wx_hub_t *h);

/* Runs the loop until wx_hub_stop or a signal, then until every adapter is idle (at most a
 * few seconds). Returns 0. */
int wx_hub_run(wx_hub_t *h);

/* Begins the shutdown, as SIGTERM does. */
void wx_hub_stop(wx_hub_t *h);
bool wx_hub_stopping(const wx_hub_t *h);

/* An adapter finished something while the hub is stopping: the loop ends when none is
 * busy any more. */
void wx_hub_settle(wx_hub_t *h);

/* Parses "HOST:PORT" or "[IPv6]:PORT" into a socket address. 0, or -1 with err. */
struct sockaddr_storage;
int wx_net_resolve(const char *listen, struct sockaddr_storage *ss, unsigned *len, char *err,
                   size_t errlen);

/* Formats the address a socket is bound to: "127.0.0.1:8080". */
void wx_net_local_address(int fd, char *out, size_t cap);

/* ======================================================================================
 * TLS: the HTTPS listener's certificate, key and policy (tls.c says which), and the
 * self-signed pair for loopback use that `wxbank init` makes.
 * ====================================================================================== */

typedef struct wx_tls wx_tls_t;

enum {
    WX_TLS_EXISTS = 1,    /* wx_tls_make_self_signed: both files were there; left alone */
    WX_TLS_BAD_CERT = -1, /* the certificate file is missing, unreadable or not PEM */
    WX_TLS_BAD_KEY = -2,  /* the key file is missing, unreadable, not PEM, or not the cert's */
};

#define WX_TLS_SELF_SIGNED_DAYS 365 /* how long the certificate `wxbank init` makes is valid */

/*
 * A server context from PEM files: cert_file holds the certificate chain (the server's own
 * first), key_file its unencrypted private key. Returns 0 with *out, or WX_TLS_BAD_CERT or
 * WX_TLS_BAD_KEY with the reason in err (without the file's name: the caller names the key
 * it came from). Logs a warning when the certificate has expired or the key file is readable
 * by other users. Free with wx_tls_free after every listener that uses it.
 */
int wx_tls_new(const char *cert_file, const char *key_file, wx_tls_t **out, char *err,
               size_t errlen);
void wx_tls_free(wx_tls_t *t); /* NULL is ignored */

/* The self-signed pair's places beside the database: "<db>.tls.crt" and "<db>.tls.key",
 * into buffers of cap bytes each. 0, or -1 when a name does not fit. */
int wx_tls_default_paths(const char *db_path, char *cert, char *key, size_t cap);

/*
 * Makes a self-signed certificate for loopback use: CN=localhost, subjectAltName
 * DNS:localhost and IP:127.0.0.1, a new EC P-256 key, valid from now for days. The key file
 * is created with mode 0600, the certificate 0644; neither may exist before. Returns 0,
 * WX_TLS_EXISTS when both files exist already (nothing is touched), or -1 with err (one of
 * them exists alone, or a file cannot be written; nothing half made is left behind).
 */
int wx_tls_make_self_signed(const char *cert_file, const char *key_file, unsigned days, char *err,
                            size_t errlen);

/* ======================================================================================
 * HTTP listener: HTTP/1.1 of our own on the hub's loop (see http.c for why), shared by the
 * webhook, the ops API, /metrics, /healthz and the sandbox. Routes are exact paths or path
 * prefixes; anything else is 404.
 *
 * It listens on http.listen and, when given a TLS context, also on https.listen: the same
 * routes, I/O threads and limits serve both, and every answer on an HTTPS connection carries
 * Strict-Transport-Security. (Routes that only HTTPS may serve come with the secure pages.)
 *
 * A request is answered exactly once, with wx_http_send or wx_http_error, from any thread,
 * either inside the handler or later (an answer that waits for the journal). It stays valid
 * until then even if the client has gone away; the answer is then dropped.
 * ====================================================================================== */

typedef struct wx_http wx_http_t;
typedef struct wx_http_req wx_http_req_t;
typedef void (*wx_http_handler)(wx_http_req_t *req, void *arg);

struct wx_http_options {
    const char *listen;       /* HOST:PORT (http.listen) */
    size_t body_max;          /* largest request body, <= WX_HTTP_BODY_MAX */
    unsigned timeout_s;       /* a connection silent this long is closed */
    unsigned max_connections; /* open at once; more wait in the kernel's backlog */
    unsigned threads;         /* I/O threads besides the hub's loop (http.threads) */
    const char *tls_listen;   /* HOST:PORT of the HTTPS listener (https.listen), with tls */
    const wx_tls_t *tls;      /* NULL: no HTTPS listener; borrowed, outlives the listener */
};

/* Fills opt from the http.* keys and https.listen; tls stays NULL (the caller loads it,
 * when tls_listen is not empty, from https.cert and https.key). */
void wx_http_options_from_config(const struct wx_config *cfg, struct wx_http_options *opt);

/* Binds and serves on the hub's loop; prints "http listening on ADDR" to stdout (and
 * "https listening on ADDR" with opt->tls). NULL with a message in err, naming http.listen
 * or https.listen, when it cannot bind. */
wx_http_t *wx_http_start(wx_hub_t *hub, const struct wx_http_options *opt, char *err,
                         size_t errlen);
/*
 * After wx_hub_run: stops the I/O threads (what they were writing gets 100 ms) and closes
 * every connection. A route owner may answer what it still holds before this (those answers
 * get the 100 ms), or be freed after it without answering: the requests are gone then. A
 * threaded route's owner must be freed after it (its handler runs on the threads).
 */
void wx_http_free(wx_http_t *s);

/* The bound address, "127.0.0.1:8080" (useful with port 0). */
const char *wx_http_address(const wx_http_t *s);

/* The HTTPS listener's bound address, or "" when there is none. */
const char *wx_http_tls_address(const wx_http_t *s);

/* Routes path (exact, or every path under it when prefix) to fn, which runs on the hub's
 * loop. At most 32 routes; all are set before wx_hub_run. */
void wx_http_route(wx_http_t *s, const char *path, bool prefix, wx_http_handler fn, void *arg);

/* The same, but served over HTTPS only: over plain HTTP the path answers 403 (the secure
 * pages, which must never be served in clear). */
void wx_http_route_secure(wx_http_t *s, const char *path, bool prefix, wx_http_handler fn,
                          void *arg);

/*
 * The same, but fn runs on the I/O thread that read the request, alongside the others: it
 * may only use what is safe from any thread (its own state per thread: wx_http_thread) and
 * hands what needs the loop to it with wx_hub_post. For the hottest route, the webhook,
 * whose checking, decryption and parsing then spread over the cores.
 */
void wx_http_route_threaded(wx_http_t *s, const char *path, bool prefix, wx_http_handler fn,
                            void *arg);

/* Runs t on the I/O thread that read req (cancelled once the threads have stopped): how a
 * threaded route's work comes back from the hub's loop to finish its answer there. */
void wx_http_post(wx_http_req_t *req, struct wx_hub_task *t);

/* How many I/O threads, and which one read req (0 .. wx_http_threads - 1). */
unsigned wx_http_threads(const wx_http_t *s);
unsigned wx_http_thread(const wx_http_req_t *req);

/* Counters since start, for /metrics and tests. */
struct wx_http_stats {
    uint64_t accepted, requests, refused; /* refused: answered 4xx/5xx by the listener */
    unsigned open;                        /* connections open now */
};
void wx_http_stats(const wx_http_t *s, struct wx_http_stats *out);

/* ---- the request --------------------------------------------------------------------- */

enum wx_http_method { WX_HTTP_GET = 1, WX_HTTP_HEAD, WX_HTTP_POST };

enum wx_http_method wx_http_method(const wx_http_req_t *req);

/* The request's path without the query, as sent ("/wechat"). */
const char *wx_http_path(const wx_http_req_t *req);

/* The client's IP address, numeric ("127.0.0.1", "::1"); "?" when it could not be read. */
const char *wx_http_peer_ip(const wx_http_req_t *req);

/* Whether the request came over HTTPS. */
bool wx_http_is_tls(const wx_http_req_t *req);

/* The raw query after '?', or NULL when there is none. */
const char *wx_http_query(const wx_http_req_t *req);

/* The value of request header name (any case), or NULL. */
const char *wx_http_header(const wx_http_req_t *req, const char *name);

/* The request body; NULL with *len 0 when there is none. */
const uint8_t *wx_http_body(const wx_http_req_t *req, size_t *len);

/* ---- the answer ---------------------------------------------------------------------- */

/* Adds a header to the answer (before wx_http_send); name and value are copied. At most a
 * few hundred bytes in all. */
void wx_http_add_header(wx_http_req_t *req, const char *name, const char *value);

/* Answers with a body and the headers every answer carries (nosniff, no framing); for HEAD
 * the body is left out. The request is gone afterwards. */
void wx_http_send(wx_http_req_t *req, int status, const char *content_type, const void *body,
                  size_t len);

/* Answers text/plain "message\n". */
void wx_http_error(wx_http_req_t *req, int status, const char *message);

/*
 * Copies the percent-decoded value of query parameter `name` into out. Returns its length,
 * -1 when absent, -2 when longer than cap - 1 or badly encoded. The query is the raw string
 * after '?' (wx_http_query).
 */
int wx_http_query_param(const char *query, const char *name, char *out, size_t cap);

/* Percent-decodes one raw value [p, end) into out ('+' is a space); its length, or -2 when
 * longer than cap - 1 or badly encoded (a NUL is bad). */
int wx_http_query_decode(const char *p, const char *end, char *out, size_t cap);

/* ======================================================================================
 * Metrics: GET /metrics in the Prometheus text exposition format 0.0.4, from collectors
 * that modules register. A scrape runs every collector on the hub's loop, in registration
 * order, so a collector reads its module's counters on the thread that changes them.
 *
 * A metric family is one name with its HELP and TYPE lines and every series under it. A
 * collector writes all the series of a family one after another (several calls with the
 * same name and different labels); the HELP and TYPE lines then appear once, before the
 * first. A family that comes back after another one, or with another type, breaks the
 * format and is asserted: names and labels are the program's own text, never a peer's.
 * ====================================================================================== */

typedef struct wx_metrics wx_metrics_t;
struct wx_metrics_out; /* the scrape being written, handed to collectors */
typedef void (*wx_metrics_collect)(struct wx_metrics_out *o, void *arg);

#define WX_METRICS_COLLECTORS_MAX 32         /* collectors on one registry */
#define WX_METRICS_BODY_MAX       (1u << 20) /* a larger scrape is answered 500, and logged */
#define WX_HISTOGRAM_BUCKETS_MAX  32         /* bucket bounds of one histogram, +Inf aside */

/* Routes GET and HEAD /metrics on http to the collectors (other methods get 405). Call
 * before wx_hub_run. Never fails. Free with wx_metrics_free after wx_http_free: the route
 * cannot be taken back, and the listener's requests hold the registry until then. */
wx_metrics_t *wx_metrics_start(wx_http_t *http);

/* Registers fn(o, arg) for every scrape, before wx_hub_run or on the hub's loop; arg is
 * borrowed and must outlive the registry. At most WX_METRICS_COLLECTORS_MAX (asserted). */
void wx_metrics_add(wx_metrics_t *m, wx_metrics_collect fn, void *arg);

/* NULL is ignored. */
void wx_metrics_free(wx_metrics_t *m);

/*
 * Writers for collectors. name matches [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's ends in
 * "_total". help says what is counted; a backslash or a newline in it is escaped.
 * labels is NULL or pre-formatted `key="value",key2="v2"`, with a backslash, a double quote
 * and a newline in a value written as \\, \" and \n. All of it is asserted.
 */
void wx_metrics_counter(struct wx_metrics_out *o, const char *name, const char *help,
                        const char *labels, uint64_t v);
/* A counter that is not a whole number: seconds spent, say. v is finite and >= 0. */
void wx_metrics_counter_double(struct wx_metrics_out *o, const char *name, const char *help,
                               const char *labels, double v);
void wx_metrics_gauge(struct wx_metrics_out *o, const char *name, const char *help,
                      const char *labels, double v);

/* A histogram with fixed bucket upper bounds, recorded on the loop's thread and read by a
 * collector there. counts are per bucket (counts[n] holds what is above every bound); the
 * scrape adds them up into Prometheus's cumulative buckets. */
struct wx_histogram {
    const double *bounds;                          /* upper bounds, increasing; borrowed */
    size_t n;                                      /* how many, 1..WX_HISTOGRAM_BUCKETS_MAX */
    uint64_t counts[WX_HISTOGRAM_BUCKETS_MAX + 1]; /* observations per bucket, +Inf last */
    double sum;                                    /* of every observation */
    uint64_t count;                                /* observations */
};

/* Empties h over bounds[0, n), which must be finite and strictly increasing (asserted). */
void wx_histogram_init(struct wx_histogram *h, const double *bounds, size_t n);

/* Counts v in the first bucket whose bound is >= v: a value at a bound is in that bucket,
 * as Prometheus's "le" says. v is not NaN (asserted). */
void wx_histogram_observe(struct wx_histogram *h, double v);

/* Writes h as the family name: name_bucket{le="..."} for every bound and "+Inf", then
 * name_sum and name_count. */
void wx_metrics_histogram(struct wx_metrics_out *o, const char *name, const char *help,
                          const struct wx_histogram *h);

#endif
