/*
 * fetch.h - outbound HTTP(S) requests on the process's libevent loop.
 *
 * The WeChat platform API client, the SMS gateway dispatcher and the sandbox's webhook calls
 * all talk to other servers while the same loop serves the card switch, so no request may
 * block it. A wx_fetch_t drives libcurl's multi interface from libevent events (the
 * "hiperfifo" integration): libcurl tells us which sockets to watch and when to wake it, and
 * we hand each completed transfer to its callback. Up to max_inflight transfers run at once;
 * more wait in a first-in, first-out queue of bounded length.
 *
 * Transfers speak http and https only, follow no redirects, ignore proxy environment
 * variables, verify TLS peers and host names, and reuse keep-alive connections (and TLS
 * sessions) between requests to the same host. Logs name a request by host and path only:
 * query strings (?access_token=...), user names and bodies never reach a log, so callers
 * keep secrets and card numbers out of URL paths.
 *
 * Everything here runs on the loop's thread. Callbacks run on the loop, exactly once per
 * accepted request, and never from inside wx_fetch_start.
 */
#ifndef WX_FETCH_FETCH_H
#define WX_FETCH_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "util/limits.h" /* WX_FETCH_RESPONSE_MAX, WX_FETCH_INFLIGHT_MAX */

struct event_base;

/* What a caller may ask for; bigger requests are refused with WX_FETCH_EINVAL. */
#define WX_FETCH_URL_MAX     8192        /* bytes of one URL */
#define WX_FETCH_HEADERS_MAX 64          /* extra request headers */
#define WX_FETCH_HEADER_MAX  4096        /* bytes of one "Name: value" header */
#define WX_FETCH_BODY_MAX    (16u << 20) /* a request body or upload part (WeChat media: 10 MB) */
#define WX_FETCH_QUEUE_MAX   65536       /* requests waiting for a transfer slot */

/* Defaults for the zeros in the structs below. */
#define WX_FETCH_INFLIGHT_DEFAULT           64
#define WX_FETCH_TIMEOUT_DEFAULT_MS         10000
#define WX_FETCH_CONNECT_TIMEOUT_DEFAULT_MS 3000

typedef struct wx_fetch wx_fetch_t;

struct wx_fetch_options {
    unsigned max_inflight; /* transfers at once, <= WX_FETCH_INFLIGHT_MAX; 0: the default */
    unsigned max_queued;   /* waiting requests, <= WX_FETCH_QUEUE_MAX; 0: WX_FETCH_QUEUE_MAX */
    size_t max_response;   /* response body bytes, <= WX_FETCH_RESPONSE_MAX; 0: that maximum */
    const char *ca_file;   /* PEM CA certificates to trust (tests, the sandbox); NULL: the
                              system's. Copied. It replaces libcurl's CA bundle file, not its
                              CA directory: Debian's libcurl goes on trusting /etc/ssl/certs. */
};

/*
 * Creates a fetcher on base (which must outlive it). opt may be NULL for every default; out
 * of range options are a caller bug (assert). Returns NULL, with an error logged, when
 * ca_file cannot be read.
 */
wx_fetch_t *wx_fetch_new(struct event_base *base, const struct wx_fetch_options *opt);

/*
 * Cancels every queued and in-flight request, running each callback once, right here, with
 * WX_FETCH_CANCELLED (wx_fetch_start called from those callbacks returns WX_FETCH_ECLOSED),
 * then closes every connection and frees f. NULL is allowed. Must not be called from inside
 * one of f's callbacks (assert).
 */
void wx_fetch_free(wx_fetch_t *f);

enum wx_fetch_status {
    WX_FETCH_OK,        /* an HTTP response arrived, whatever its status code */
    WX_FETCH_TIMEOUT,   /* timeout_ms passed (waiting, connecting or transferring) */
    WX_FETCH_CONNECT,   /* no connection: refused, unreachable or the name did not resolve;
                           the server never saw the request */
    WX_FETCH_TOO_LARGE, /* the response body passed max_response; the transfer was cut */
    WX_FETCH_CANCELLED, /* wx_fetch_free ran first */
    WX_FETCH_ERROR,     /* anything else: TLS, a broken or closed connection, bad HTTP */
};

/* "ok", "timeout", "connect", "too large", "cancelled", "error". */
const char *wx_fetch_status_name(enum wx_fetch_status s);

/* One multipart/form-data file part, e.g. the "media" of a WeChat media upload. */
struct wx_fetch_part {
    const char *name;         /* the form field name; required */
    const char *filename;     /* NULL: none */
    const char *content_type; /* NULL: application/octet-stream */
    const void *data;         /* len bytes; may be NULL when len is 0 */
    size_t len;               /* <= WX_FETCH_BODY_MAX */
};

struct wx_fetch_request {
    const char *method;               /* "GET", "POST", "PUT" or "DELETE" */
    const char *url;                  /* absolute http:// or https:// URL, <= WX_FETCH_URL_MAX */
    const char *const *headers;       /* "Name: value" strings, NULL-terminated; NULL: none;
                                         not Content-Length or Transfer-Encoding */
    const void *body;                 /* POST/PUT body (body_len bytes); NULL when body_len is 0 */
    size_t body_len;                  /* <= WX_FETCH_BODY_MAX */
    const char *content_type;         /* of body; NULL: application/octet-stream */
    const struct wx_fetch_part *part; /* a multipart upload instead of body (POST/PUT) */
    unsigned timeout_ms;              /* from wx_fetch_start to the callback, queueing included;
                                         0: WX_FETCH_TIMEOUT_DEFAULT_MS */
    unsigned connect_timeout_ms; /* for a new connection; 0: WX_FETCH_CONNECT_TIMEOUT_DEFAULT_MS */
};

/* What the callback gets. It and everything it points to live until the callback returns. */
struct wx_fetch_response {
    enum wx_fetch_status status;
    long http_status;  /* the response's status code; 0 if none arrived */
    const char *body;  /* NUL-terminated; "" unless status is WX_FETCH_OK */
    size_t body_len;   /* bytes before the NUL */
    const char *error; /* a message for people when status != OK (no URL in it); else NULL */
    double elapsed_ms; /* from wx_fetch_start to now, queueing included */
};

/* Called once per accepted request. It may call wx_fetch_start (a retry, say), but not
 * wx_fetch_free on the same fetcher. */
typedef void (*wx_fetch_cb)(const struct wx_fetch_response *resp, void *arg);

/* Why wx_fetch_start refused a request. The callback is then never called. */
enum {
    WX_FETCH_EINVAL = -1, /* a bad method, URL, header, size or combination */
    WX_FETCH_EFULL = -2,  /* max_queued requests are waiting already */
    WX_FETCH_ECLOSED = -3 /* wx_fetch_free is running */
};

/* A message for one of the codes above ("invalid request", ...). */
const char *wx_fetch_strerror(int rc);

/*
 * Starts a request: copies everything in req, then returns 0; the callback runs later on
 * the loop, exactly once, within about timeout_ms. Returns a negative WX_FETCH_E* code, with
 * nothing started and the callback never called, when the request is refused. A body and a
 * part are mutually exclusive, and GET and DELETE take neither.
 */
int wx_fetch_start(wx_fetch_t *f, const struct wx_fetch_request *req, wx_fetch_cb cb, void *arg);

struct wx_fetch_stats {
    uint64_t started;       /* requests accepted by wx_fetch_start */
    uint64_t completed;     /* callbacks with WX_FETCH_OK */
    uint64_t failed;        /* callbacks with any other status */
    unsigned in_flight;     /* transfers handed to libcurl, callback not yet run */
    unsigned queued;        /* requests waiting for a slot */
    unsigned in_flight_max; /* the most in flight at once so far */
};

/* started == completed + failed + in_flight + queued, outside callbacks and inside them. */
void wx_fetch_stats(const wx_fetch_t *f, struct wx_fetch_stats *out);

#endif
