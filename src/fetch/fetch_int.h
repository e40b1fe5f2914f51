/*
 * fetch_int.h - the fetcher's shared state: the fetcher (fetch.c: libcurl's multi handle on
 * the libevent loop, the queue, completion and cancellation) and one request (request.c:
 * checking and copying what the caller asked for, the easy handle, the outcome).
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

/* A doubly linked list of requests, oldest first. */
struct xfer_list {
    struct fetch_xfer *head, *tail;
};

/*
 * One request, from wx_fetch_start to its callback. It is in exactly one of the fetcher's
 * lists: the queue (easy == NULL, deadline armed) or in flight (easy != NULL). The copies
 * of the caller's strings and bytes live in one block after the struct, freed with it.
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
    char *resp;                   /* the response body so far, NUL-terminated; or NULL */
    size_t resp_len, resp_cap;    /* bytes in resp (before the NUL), bytes allocated */
    bool too_large;               /* the body passed max_response and was cut */
    char error[CURL_ERROR_SIZE];  /* libcurl's message, or ours */
};

struct fetch_sock;

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
    struct wx_fetch_stats st; /* */
    uint64_t next_id;         /* */
    unsigned in_callback;     /* callbacks running now (for wx_fetch_free's assert) */
    bool closing;             /* wx_fetch_free is cancelling: refuse new requests */
};

/* Monotonic milliseconds. */
double fetch_now_ms(void);

/*
 * Checks req and copies it into a new request for f. Returns NULL, with the reason logged
 * (never the URL's query or the body), when req is invalid.
 */
struct fetch_xfer *fetch_xfer_new(struct wx_fetch *f, const struct wx_fetch_request *req);

/* Frees x and whatever it holds (the easy handle must be released already). */
void fetch_xfer_free(struct fetch_xfer *x);

/*
 * Makes x's easy handle with every option set, timing out timeout_ms from now. libcurl then
 * writes the response into x and finds x through CURLINFO_PRIVATE.
 */
void fetch_xfer_prepare(struct fetch_xfer *x, long timeout_ms);

/* Frees x's easy handle and upload (after it left the multi handle). */
void fetch_xfer_release(struct fetch_xfer *x);

/* Fills resp from libcurl's result for x; resp points into x until x is freed. */
void fetch_xfer_outcome(struct fetch_xfer *x, CURLcode rc, struct wx_fetch_response *resp);

#endif
