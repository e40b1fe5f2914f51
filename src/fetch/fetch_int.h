/*
 * fetch_int.h - the fetcher's shared state: the fetcher (fetch.c: libcurl's multi handle on
 * the libevent loop, the queue, completion and cancellation), one request (request.c:
 * checking and copying what the caller asked for, the easy handle, the outcome) and the URL
 * (url.c: checking it, and remembering the parts already checked).
 *
 * What a request costs on the loop matters (the alert dispatcher sends one request per
 * alert), so the fetcher keeps what requests have in common from one to the next: easy
 * handles with their fixed options, checked URL bases, and the header lists of requests
 * that bring no headers of their own.
 *
 * Private to src/fetch. Everything runs on one thread, the event loop's.
 */
#ifndef WX_FETCH_FETCH_INT_H
#define WX_FETCH_FETCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "fetch/fetch.h"

#if LIBCURL_VERSION_NUM < 0x075500
#error "src/fetch needs libcurl 7.85 or later (CURLOPT_PROTOCOLS_STR)"
#endif

enum fetch_method { FETCH_GET, FETCH_POST, FETCH_PUT, FETCH_DELETE };

#define FETCH_LOG_NAME_MAX 256 /* bytes of host[:port]/path shown in logs; longer ones are cut */
#define FETCH_BASES_MAX    16  /* URL bases (scheme://host[:port]/path) remembered as checked */
#define FETCH_CTYPES_MAX   8   /* content types whose header lists are kept for reuse */
#define FETCH_RESP_INLINE  512 /* bytes of an answer kept in the request's own block */

/* A doubly linked list of requests, oldest first. */
struct xfer_list {
    struct fetch_xfer *head, *tail;
};

/*
 * One request, from wx_fetch_start to its callback. It is in exactly one of the fetcher's
 * lists: the queue (easy == NULL, deadline armed) or in flight (easy != NULL). The copies
 * of the caller's strings and bytes, and room for a short answer, live in one block after the
 * struct, freed with it.
 */
struct fetch_xfer {
    struct wx_fetch *f;
    struct fetch_xfer *prev, *next; /* in f->queue or f->in_flight */
    uint64_t id;                    /* for logs: "fetch 7" */
    wx_fetch_cb cb;
    void *arg;
    enum fetch_method method;
    const char *method_name;      /* "GET", ...: static */
    const char *url;              /* normalized by libcurl's URL parser */
    const char *log_name;         /* host[:port]/path: what logs may show of the URL */
    struct curl_slist *headers;   /* the caller's, plus Expect: and Content-Type: */
    bool headers_owned;           /* headers are x's own, else the fetcher's shared ones */
    const char *body;             /* body_len bytes, or NULL */
    size_t body_len;              /* */
    struct wx_fetch_part part;    /* copied; part.name == NULL: no multipart upload */
    size_t part_pos;              /* read cursor into part.data while uploading */
    double start_ms;              /* monotonic, at wx_fetch_start */
    double deadline_ms;           /* start_ms + the request's timeout */
    unsigned connect_timeout_ms;  /* for a new connection */
    struct event *queue_deadline; /* while queued: fires at deadline_ms */
    CURL *easy;                   /* while in flight */
    curl_mime *mime;              /* while in flight, for a multipart upload */
    char *resp;                   /* the response body so far, NUL-terminated */
    size_t resp_len, resp_cap;    /* bytes in resp (before the NUL), bytes it has room for */
    bool resp_own;                /* resp outgrew its room in x's block: allocated */
    bool too_large;               /* the body passed max_response and was cut */
    char error[CURL_ERROR_SIZE];  /* libcurl's message, or ours */
};

struct fetch_sock;
struct fetch_base;

/* A header list kept for the requests without headers of their own that send one type. */
struct fetch_ctype {
    char *content_type;      /* or NULL: a free slot */
    struct curl_slist *list; /* "Expect:", "Content-Type: <content_type>" */
};

/* What the fetcher keeps from one request to the next (request.c, url.c). */
struct fetch_reuse {
    CURL **idle;                                 /* easy handles between transfers, options set:
                                                    max_inflight slots */
    unsigned nidle;                              /* idle[0 .. nidle) hold one */
    uint64_t easy_made;                          /* easy handles made so far (tests) */
    struct fetch_base *bases[FETCH_BASES_MAX];   /* URL bases checked already, or NULL */
    unsigned bases_next;                         /* the slot the next new base takes */
    struct curl_slist *bare_headers;             /* "Expect:" alone */
    struct fetch_ctype ctypes[FETCH_CTYPES_MAX]; /* by content type */
};

struct wx_fetch {
    struct event_base *base;
    CURLM *multi;
    CURLSH *share;            /* TLS sessions, resumed across easy handles */
    struct event *timer;      /* libcurl's one timeout */
    struct fetch_sock *socks; /* every socket libcurl asked us to watch */
    struct xfer_list queue;   /* waiting for a slot, first come first served */
    struct xfer_list in_flight;
    unsigned max_inflight;    /* resolved options: no zeros */
    unsigned max_queued;      /* */
    size_t max_response;      /* */
    char *ca_file;            /* or NULL */
    struct fetch_reuse reuse; /* what requests have in common */
    struct wx_fetch_stats st; /* */
    uint64_t next_id;         /* */
    unsigned in_callback;     /* callbacks running now (for wx_fetch_free's assert) */
    bool closing;             /* wx_fetch_free is cancelling: refuse new requests */
};

/* Monotonic milliseconds. */
double fetch_now_ms(void);

/*
 * A checked URL. The transfer fetches head then tail: head is the normalized URL up to its
 * query (or all of it), tail the caller's query as it came (or ""). What it points to lives
 * until fetch_url_done or the next fetch_url_check on the same fetcher.
 */
struct fetch_url {
    const char *head;                     /* normalized by libcurl's parser */
    size_t head_len;                      /* */
    const char *tail;                     /* into the caller's text */
    size_t tail_len;                      /* */
    const char *log_name;                 /* host[:port]/path: what logs may show */
    char *parsed;                         /* libcurl's normalized URL when not remembered */
    char log_buf[FETCH_LOG_NAME_MAX + 1]; /* log_name when not remembered */
};

/*
 * Checks that text is an absolute http or https URL libcurl can fetch, as libcurl's own
 * parser sees it, and fills *out. A base (what comes before '?') seen before with a query of
 * plain URL characters is not parsed again. Returns NULL, or why the URL is refused.
 */
const char *fetch_url_check(struct wx_fetch *f, const char *text, struct fetch_url *out);

/* Releases what fetch_url_check left in u. */
void fetch_url_done(struct fetch_url *u);

/* Forgets every remembered base (wx_fetch_free). */
void fetch_urls_free(struct wx_fetch *f);

/*
 * Checks req and copies it into a new request for f. Returns NULL, with the reason logged
 * (never the URL's query or the body), when req is invalid.
 */
struct fetch_xfer *fetch_xfer_new(struct wx_fetch *f, const struct wx_fetch_request *req);

/* Frees x and whatever it holds (the easy handle must be released already). */
void fetch_xfer_free(struct fetch_xfer *x);

/*
 * Gives x an easy handle, an idle one when there is one, with every option of x set, timing
 * out timeout_ms from now. libcurl then writes the response into x and finds x through
 * CURLINFO_PRIVATE.
 */
void fetch_xfer_prepare(struct fetch_xfer *x, long timeout_ms);

/* Takes x's easy handle back for the next request, and frees x's upload (after the handle
 * left the multi handle). */
void fetch_xfer_release(struct fetch_xfer *x);

/* Frees the idle easy handles and the shared header lists (wx_fetch_free). */
void fetch_reuse_free(struct wx_fetch *f);

/* Fills resp from libcurl's result for x; resp points into x until x is freed. */
void fetch_xfer_outcome(struct fetch_xfer *x, CURLcode rc, struct wx_fetch_response *resp);

#endif
