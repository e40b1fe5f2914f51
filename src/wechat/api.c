/*
 * api.c - the WeChat platform API client: the access token, and the calls the bank makes
 * (template and customer-service messages, the menu, media upload, OAuth code → OpenID).
 *
 * Every call runs on the loop through the fetcher. The access token is fetched once and
 * shared: one refresh at a time however many calls wait for it (each fetch supersedes the
 * previous token, which dies 5 minutes later, so refreshers would knock each other out), a refresh
 * ahead of expiry, and one refresh-and-retry when the platform says a call's token is no longer
 * valid (40001, 40014, 42001) — only if no other call has refreshed it meanwhile.
 *
 * Failures are classed for the caller. Retryable: the platform is busy (-1), the quota is
 * spent (45009, retried later with a longer back-off), HTTP 5xx, no connection, a timeout.
 * Permanent: everything else the platform refuses (43004 not a follower, 43101 refused, 40003
 * bad OpenID, ...). Retryable failures are retried here with exponential back-off and
 * jitter, up to max_attempts and max_time_ms; a call that may have reached the platform
 * (a timeout) is retried only when retrying cannot send twice (a template message carries
 * client_msg_id; a customer-service message carries nothing, so its timeout is returned).
 */
#include "wechat/wechat.h"

#include "wechat/api_int.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>

#include "util/alloc.h"
#include "util/config.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

#define TOKEN_EARLY_MS         (300 * 1000) /* refresh this long before the token expires */
#define TOKEN_MIN_TTL_MS       (60 * 1000)  /* a token that lives less is refreshed at half life */
#define BACKOFF_BASE_MS        200
#define BACKOFF_MAX_MS         5000
#define QUOTA_BACKOFF_MS       2000        /* 45009: the quota does not come back in milliseconds */
#define TOKEN_REFUSED_PAUSE_MS (60 * 1000) /* after the platform refused our credentials */
#define PATH_MAX_LEN           512
#define SCRATCH_MAX            16384 /* room for a message body (bigger ones get a buffer) */

enum call_kind { CALL_TOKEN, CALL_JSON, CALL_UPLOAD, CALL_OAUTH };

/* One call, from the caller's request to its callback, with its body in the same block. */
struct call {
    struct wx_wechat_api *api;
    struct call *prev_live, *next_live; /* every call not yet finished */
    struct call *next;                  /* in the list of calls waiting for a token */
    enum call_kind kind;
    char path[PATH_MAX_LEN];   /* "/cgi-bin/message/custom/send", with any fixed query */
    char *body;                /* JSON, after the struct; or NULL */
    size_t body_len;           /* bytes of body before its NUL */
    struct wx_fetch_part part; /* CALL_UPLOAD: data owned, names below */
    char filename[128], content_type[64];
    bool safe_to_repeat; /* a retry after a timeout cannot act twice */
    bool token_retried;  /* one refresh-and-retry per call */
    uint64_t token_gen;  /* the token this attempt used */
    unsigned attempts;
    int64_t started_ms;
    struct event timer; /* back-off */
    wx_wechat_api_cb cb;
    void *arg;
};

struct wx_wechat_api {
    struct event_base *base;
    wx_fetch_t *fetch;
    struct wx_wechat_api_options opt;
    char base_url[WX_FETCH_URL_MAX / 2];
    char appid[WX_WECHAT_APPID_MAX + 1];
    char secret[128];
    char token[WX_WECHAT_ACCESS_TOKEN_MAX + 1];
    int64_t token_expires_ms; /* 0: no token */
    uint64_t token_gen;       /* bumped at each new token */
    bool refreshing;
    unsigned token_failures;     /* token fetches failed in a row */
    int64_t token_not_before_ms; /* no token fetch before this (back-off) */
    bool token_refused;          /* the last fetch was refused for good (bad secret, IP) */
    long token_errcode;          /* and its errcode */
    bool closing;                /* wx_wechat_api_free is running: no new calls */
    struct event *token_retry;   /* the one shared retry of a failed token fetch */
    struct call *waiting;        /* calls waiting for the refresh, in order */
    struct call *live;           /* every call not yet finished */
    struct event *refresh_timer;
    struct wx_wechat_api_stats stats;
    char scratch[SCRATCH_MAX]; /* where message bodies are written before their call exists */
};

static void attempt(struct call *c);
static void fetch_token(struct wx_wechat_api *api);

/* ---- results -------------------------------------------------------------------------- */

static void call_free(struct call *c)
{
    struct wx_wechat_api *api = c->api;
    if (c->prev_live != NULL) c->prev_live->next_live = c->next_live;
    if (c->next_live != NULL) c->next_live->prev_live = c->prev_live;
    if (api->live == c) api->live = c->next_live;
    event_del(&c->timer);
    free((void *)c->part.data);
    free(c);
}

static void finish(struct call *c, struct wx_wechat_api_result *r)
{
    r->attempts = c->attempts;
    struct wx_wechat_api *api = c->api;
    if (r->cls == WX_WECHAT_API_OK) {
        api->stats.ok++;
    } else if (r->cls == WX_WECHAT_API_RETRYABLE) {
        api->stats.retryable++;
    } else {
        api->stats.permanent++;
    }
    if (c->cb != NULL) c->cb(r, c->arg);
    call_free(c);
}

static void fail(struct call *c, enum wx_wechat_api_class cls, long errcode, const char *msg,
                 bool unknown)
{
    struct wx_wechat_api_result r = {.cls = cls, .errcode = errcode, .outcome_unknown = unknown};
    snprintf(r.errmsg, sizeof r.errmsg, "%s", msg);
    finish(c, &r);
}

/* Back-off before attempt number `n` + 1 (n >= 1 failures so far), with jitter: half to the
 * whole of BACKOFF_BASE_MS * 2^(n-1), at most BACKOFF_MAX_MS, at least floor_ms. */
static unsigned backoff_ms(unsigned n, unsigned floor_ms)
{
    unsigned shift = n > 0 ? (n - 1 < 8 ? n - 1 : 8) : 0;
    unsigned delay = BACKOFF_BASE_MS << shift;
    if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
    if (delay < floor_ms) delay = floor_ms;
    uint32_t r;
    wx_random_bytes(&r, sizeof r);
    return delay / 2 + r % (delay / 2 + 1);
}

/* Retryable failure: again after a back-off, unless attempts or time run out. */
static void retry_later(struct call *c, long errcode, const char *msg, unsigned floor_ms,
                        bool unknown)
{
    struct wx_wechat_api *api = c->api;
    unsigned delay = backoff_ms(c->attempts, floor_ms);
    int64_t spent = wx_now_ms() - c->started_ms;
    if (c->attempts >= api->opt.max_attempts || spent + delay > api->opt.max_time_ms) {
        fail(c, WX_WECHAT_API_RETRYABLE, errcode, msg, unknown);
        return;
    }
    api->stats.retries++;
    struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
    evtimer_add(&c->timer, &tv);
}

/* ---- token ------------------------------------------------------------------------------ */

static bool token_valid(const struct wx_wechat_api *api)
{
    return api->token_expires_ms != 0 && wx_now_ms() < api->token_expires_ms;
}

/*
 * Hands the new token to every waiting call, or the failure. A failed token fetch counts as
 * a failed attempt of each call waiting for it: a call out of attempts or time fails, and
 * the rest wait for one shared retry of the fetch (one timer, whatever waits), so an outage
 * costs one token request per back-off, not one per waiting call.
 */
static void release_waiting(struct wx_wechat_api *api, bool ok, long errcode, const char *msg)
{
    bool transient = errcode == 0 || errcode == -1 || errcode == 45009;
    struct call *keep = NULL, **keep_tail = &keep;
    struct call *c = api->waiting;
    api->waiting = NULL;
    while (c != NULL) {
        struct call *next = c->next;
        c->next = NULL;
        if (ok) {
            attempt(c);
        } else if (!transient) {
            fail(c, WX_WECHAT_API_PERMANENT, errcode, msg, false);
        } else if (++c->attempts >= api->opt.max_attempts ||
                   wx_now_ms() - c->started_ms >= (int64_t)api->opt.max_time_ms) {
            fail(c, WX_WECHAT_API_RETRYABLE, errcode, msg, false);
        } else {
            *keep_tail = c;
            keep_tail = &c->next;
        }
        c = next;
    }
    if (ok) {
        api->token_failures = 0;
        api->token_refused = false;
        api->token_not_before_ms = 0;
        return;
    }
    api->token_failures++;
    /* The next fetch waits, whoever asks for it: a back-off after a transient failure, a
     * minute after the credentials were refused. */
    unsigned delay = backoff_ms(api->token_failures, errcode == 45009 ? QUOTA_BACKOFF_MS : 0);
    if (!transient && delay < TOKEN_REFUSED_PAUSE_MS) delay = TOKEN_REFUSED_PAUSE_MS;
    api->token_not_before_ms = wx_now_ms() + delay;
    api->token_refused = !transient;
    api->token_errcode = errcode;
    if (keep == NULL) return;
    /* Callbacks above may have started calls that now wait too: they go after these. */
    *keep_tail = api->waiting;
    api->waiting = keep;
    if (api->refreshing || evtimer_pending(api->token_retry, NULL)) return;
    struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
    evtimer_add(api->token_retry, &tv);
}

static void on_token_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wx_wechat_api *api = arg;
    if (api->waiting != NULL) fetch_token(api);
}

static void on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fetch_token(arg);
}

static void got_token(struct wx_wechat_api *api, const char *token, long expires_in)
{
    snprintf(api->token, sizeof api->token, "%s", token);
    int64_t ttl = (int64_t)expires_in * 1000;
    api->token_expires_ms = wx_now_ms() + ttl;
    api->token_gen++;
    api->stats.tokens++;
    int64_t early = ttl > TOKEN_EARLY_MS + TOKEN_MIN_TTL_MS ? ttl - TOKEN_EARLY_MS : ttl / 2;
    struct timeval tv = {.tv_sec = early / 1000, .tv_usec = (early % 1000) * 1000};
    evtimer_add(api->refresh_timer, &tv);
    WX_INFO("wechat api: new access token, valid %ld s", expires_in);
}

static void on_token(const struct wx_fetch_response *resp, void *arg)
{
    struct wx_wechat_api *api = arg;
    api->refreshing = false;
    json_error_t je;
    json_t *j = resp->status == WX_FETCH_OK ? json_loadb(resp->body, resp->body_len, 0, &je) : NULL;
    const char *token = j != NULL ? json_string_value(json_object_get(j, "access_token")) : NULL;
    json_int_t expires = j != NULL ? json_integer_value(json_object_get(j, "expires_in")) : 0;
    long errcode = j != NULL ? (long)json_integer_value(json_object_get(j, "errcode")) : 0;
    if (token != NULL && strlen(token) <= WX_WECHAT_ACCESS_TOKEN_MAX && expires > 0) {
        got_token(api, token, (long)expires);
        json_decref(j);
        release_waiting(api, true, 0, NULL);
        return;
    }
    char msg[128];
    if (resp->status != WX_FETCH_OK) {
        snprintf(msg, sizeof msg, "token: %s", resp->error);
    } else if (resp->http_status >= 500) {
        snprintf(msg, sizeof msg, "token: HTTP %ld", resp->http_status);
    } else {
        const char *em = j != NULL ? json_string_value(json_object_get(j, "errmsg")) : NULL;
        snprintf(msg, sizeof msg, "token: %ld %s", errcode, em != NULL ? em : "bad answer");
        if (errcode == 0) errcode = 47001; /* not the shape the platform answers with */
    }
    json_decref(j);
    WX_WARN("wechat api: %s", msg);
    release_waiting(api, false, errcode, msg);
}

static void fetch_token(struct wx_wechat_api *api)
{
    if (api->refreshing) return;
    char url[WX_FETCH_URL_MAX];
    snprintf(url, sizeof url, "%s/cgi-bin/token?grant_type=client_credential&appid=%s&secret=%s",
             api->base_url, api->appid, api->secret);
    struct wx_fetch_request req = {.method = "GET", .url = url, .timeout_ms = api->opt.timeout_ms};
    api->refreshing = true;
    if (wx_fetch_start(api->fetch, &req, on_token, api) != 0) {
        api->refreshing = false;
        release_waiting(api, false, 0, "token: cannot start the request");
    }
    wx_wipe(url, sizeof url);
}

/* ---- calls ------------------------------------------------------------------------------ */

/* A JSON answer to c that arrived: class it, retry, or hand it to the caller. */
static void on_answer(struct call *c, const struct wx_fetch_response *resp)
{
    struct wx_wechat_api *api = c->api;
    struct answer a;
    if (!api_answer_read(resp->body, resp->body_len, &a)) {
        fail(c, WX_WECHAT_API_PERMANENT, 47001, "answer is not a JSON object", false);
        return;
    }
    if (a.errcode == 0) {
        struct wx_wechat_api_result r = {.cls = WX_WECHAT_API_OK, .msgid = a.msgid};
        memcpy(r.errmsg, "ok", 3);
        memcpy(r.media_id, a.media_id, sizeof r.media_id);
        memcpy(r.openid, a.openid, sizeof r.openid);
        finish(c, &r);
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "%ld %.*s", a.errcode, a.errmsg_len, a.errmsg);
    if (a.errcode == 40001 || a.errcode == 40014 || a.errcode == 42001) {
        if (c->token_retried) {
            fail(c, WX_WECHAT_API_PERMANENT, a.errcode, msg, false);
            return;
        }
        c->token_retried = true;
        if (c->token_gen == api->token_gen) api->token_expires_ms = 0; /* nobody refreshed */
        attempt(c);
    } else if (a.errcode == -1 || a.errcode == 45009) {
        retry_later(c, a.errcode, msg, a.errcode == 45009 ? QUOTA_BACKOFF_MS : 0, false);
    } else {
        fail(c, WX_WECHAT_API_PERMANENT, a.errcode, msg, false);
    }
}

/* The outcome of an attempt: a transport failure, an HTTP error, or the platform's answer. */
static void on_call(const struct wx_fetch_response *resp, void *arg)
{
    struct call *c = arg;
    if (resp->status == WX_FETCH_CANCELLED) {
        fail(c, WX_WECHAT_API_RETRYABLE, 0, "cancelled", true);
        return;
    }
    if (resp->status == WX_FETCH_CONNECT) {
        retry_later(c, 0, resp->error, 0, false);
        return;
    }
    if (resp->status != WX_FETCH_OK) {
        bool unknown = true; /* the request may have reached the platform */
        if (c->safe_to_repeat) {
            retry_later(c, 0, resp->error, 0, unknown);
        } else {
            fail(c, WX_WECHAT_API_RETRYABLE, 0, resp->error, unknown);
        }
        return;
    }
    if (resp->http_status >= 500 && !c->safe_to_repeat && resp->http_status != 500 &&
        resp->http_status != 503) {
        /* A gateway's 502 or 504 may come after the platform acted: no blind repeat. */
        char msg[64];
        snprintf(msg, sizeof msg, "HTTP %ld", resp->http_status);
        fail(c, WX_WECHAT_API_RETRYABLE, 0, msg, true);
        return;
    }
    if (resp->http_status >= 500) {
        char msg[64];
        snprintf(msg, sizeof msg, "HTTP %ld", resp->http_status);
        retry_later(c, 0, msg, 0, false);
        return;
    }
    on_answer(c, resp);
}

/* Appends s to the text in buf (cap bytes with the NUL) at *len, cut as snprintf cuts. */
static void url_add(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (n > cap - 1 - *len) n = cap - 1 - *len;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

/* The URL of c's next attempt, with its credentials (the access token, or the app secret for
 * OAuth), into buf. Returns its length. */
static size_t call_url(const struct call *c, char *buf, size_t cap)
{
    const struct wx_wechat_api *api = c->api;
    size_t len = 0;
    buf[0] = '\0';
    url_add(buf, cap, &len, api->base_url);
    url_add(buf, cap, &len, c->path);
    if (c->kind == CALL_OAUTH) {
        url_add(buf, cap, &len, "&appid=");
        url_add(buf, cap, &len, api->appid);
        url_add(buf, cap, &len, "&secret=");
        url_add(buf, cap, &len, api->secret);
    } else {
        url_add(buf, cap, &len, strchr(c->path, '?') != NULL ? "&" : "?");
        url_add(buf, cap, &len, "access_token=");
        url_add(buf, cap, &len, api->token);
    }
    return len;
}

/* c waits for the token: in line behind the calls waiting already, with a fetch on its way
 * unless the platform refused our credentials a moment ago. */
static void wait_for_token(struct call *c)
{
    struct wx_wechat_api *api = c->api;
    int64_t now = wx_now_ms();
    if (api->token_refused && now < api->token_not_before_ms) {
        /* Do not spend the token quota (2,000 a day) asking again for every call. */
        fail(c, WX_WECHAT_API_PERMANENT, api->token_errcode, "token refused", false);
        return;
    }
    c->next = NULL;
    struct call **tail = &api->waiting;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = c;
    if (api->refreshing || evtimer_pending(api->token_retry, NULL)) return;
    if (now >= api->token_not_before_ms) {
        fetch_token(api);
    } else {
        int64_t wait = api->token_not_before_ms - now;
        struct timeval tv = {.tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000};
        evtimer_add(api->token_retry, &tv);
    }
}

/* Sends one attempt of c now, or waits for a token first. */
static void attempt(struct call *c)
{
    struct wx_wechat_api *api = c->api;
    if (c->kind != CALL_OAUTH && !token_valid(api)) {
        wait_for_token(c);
        return;
    }
    char url[WX_FETCH_URL_MAX];
    size_t url_len = call_url(c, url, sizeof url);
    c->token_gen = api->token_gen;
    c->attempts++;
    api->stats.calls++;
    struct wx_fetch_request req = {
        .method = c->body != NULL || c->kind == CALL_UPLOAD ? "POST" : "GET",
        .url = url,
        .body = c->body,
        .body_len = c->body_len,
        .content_type = c->body != NULL ? "application/json; charset=utf-8" : NULL,
        .part = c->kind == CALL_UPLOAD ? &c->part : NULL,
        .timeout_ms = api->opt.timeout_ms};
    int rc = wx_fetch_start(api->fetch, &req, on_call, c);
    wx_wipe(url, url_len); /* the rest of url was never written */
    if (rc == WX_FETCH_EFULL) {
        retry_later(c, 0, wx_fetch_strerror(rc), 0, false);
    } else if (rc == WX_FETCH_ECLOSED) {
        fail(c, WX_WECHAT_API_RETRYABLE, 0, wx_fetch_strerror(rc), false); /* shutting down */
    } else if (rc != 0) {
        fail(c, WX_WECHAT_API_PERMANENT, 0, wx_fetch_strerror(rc), false); /* a bug of ours */
    }
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt(arg);
}

/*
 * A new live call with room for a body of body_len bytes (and its NUL) after it, or none
 * when body_len is NO_BODY. The caller writes the body.
 */
#define NO_BODY SIZE_MAX
static struct call *call_new(struct wx_wechat_api *api, enum call_kind kind, const char *path,
                             size_t body_len, bool safe_to_repeat, wx_wechat_api_cb cb, void *arg)
{
    size_t room = body_len != NO_BODY ? body_len + 1 : 0;
    struct call *c = wx_calloc(1, sizeof *c + room);
    c->api = api;
    c->kind = kind;
    snprintf(c->path, sizeof c->path, "%s", path);
    if (body_len != NO_BODY) {
        c->body = (char *)(c + 1);
        c->body_len = body_len;
    }
    c->safe_to_repeat = safe_to_repeat;
    c->started_ms = wx_now_ms();
    c->cb = cb;
    c->arg = arg;
    evtimer_assign(&c->timer, api->base, on_backoff, c);
    c->next_live = api->live;
    if (api->live != NULL) api->live->prev_live = c;
    api->live = c;
    return c;
}

/* Starts a JSON call whose body jansson wrote (the menu); takes ownership of doc. */
static int start_json(struct wx_wechat_api *api, const char *path, json_t *doc, bool safe_to_repeat,
                      wx_wechat_api_cb cb, void *arg)
{
    char *body = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (body == NULL) return -1;
    size_t len = strlen(body);
    struct call *c = call_new(api, CALL_JSON, path, len, safe_to_repeat, cb, arg);
    memcpy(c->body, body, len + 1);
    free(body);
    attempt(c);
    return 0;
}

/* ---- message bodies --------------------------------------------------------------------- */

/* How one kind of message body is written: room enough for it first, then the text. write
 * returns -1 for a message jansson refused whole. */
struct body_kind {
    size_t (*bound)(const void *what);
    int (*write)(struct jw *w, const void *what);
};

/* ,"key":"value", unless value is NULL, "" or not UTF-8 (json_object_set_new left it out). */
static void jw_optional(struct jw *w, const char *key, const char *value)
{
    if (value == NULL || value[0] == '\0') return;
    size_t mark = w->len;
    JW_LIT(w, ",");
    api_jw_member(w, key, value);
    if (w->bad) {
        w->len = mark;
        w->bad = false;
    }
}

/* Whether b is a field of a's name that json_object_set_new took (both strings UTF-8). */
static bool field_same(const struct wx_wechat_template_field *a,
                       const struct wx_wechat_template_field *b)
{
    return b->name != NULL && b->value != NULL && strcmp(a->name, b->name) == 0 &&
           api_utf8_ok(b->name) && api_utf8_ok(b->value);
}

/*
 * Writes field i of t ("name":{"value":..}, after a comma unless first) as jansson had it:
 * a field whose name came before stands where that one did, with the value of the last one
 * of that name; a NULL or a string that is not UTF-8 leaves the field out. Returns whether
 * anything was written.
 */
static bool template_field(struct jw *w, const struct wx_wechat_template *t, size_t i, bool first)
{
    const struct wx_wechat_template_field *f = &t->fields[i];
    if (f->name == NULL || f->value == NULL) return false;
    for (size_t k = 0; k < i; k++) {
        if (field_same(f, &t->fields[k])) return false;
    }
    const char *value = f->value;
    for (size_t k = i + 1; k < t->nfields; k++) {
        if (field_same(f, &t->fields[k])) value = t->fields[k].value;
    }
    if (value != f->value && !api_utf8_ok(f->value)) return false;
    size_t mark = w->len;
    if (!first) JW_LIT(w, ",");
    api_jw_str(w, f->name);
    JW_LIT(w, ":{");
    api_jw_member(w, "value", value);
    JW_LIT(w, "}");
    if (!w->bad) return true;
    w->len = mark;
    w->bad = false;
    return false;
}

static size_t template_bound(const void *what)
{
    const struct wx_wechat_template *t = what;
    size_t n = 128 + api_jw_bound(t->openid) + api_jw_bound(t->template_id) + api_jw_bound(t->url) +
               api_jw_bound(t->client_msg_id);
    for (size_t i = 0; i < t->nfields; i++) {
        n += 32 + api_jw_bound(t->fields[i].name) + api_jw_bound(t->fields[i].value);
    }
    return n;
}

/* {"touser":..,"template_id":..,"data":{"keyword1":{"value":..},..},"url":..,
 *  "client_msg_id":..}; -1 without an OpenID and a template, both UTF-8. */
static int template_write(struct jw *w, const void *what)
{
    const struct wx_wechat_template *t = what;
    if (t->openid == NULL || t->template_id == NULL) return -1;
    JW_LIT(w, "{");
    api_jw_member(w, "touser", t->openid);
    JW_LIT(w, ",");
    api_jw_member(w, "template_id", t->template_id);
    if (w->bad) return -1;
    JW_LIT(w, ",\"data\":{");
    bool first = true;
    for (size_t i = 0; i < t->nfields; i++) {
        if (template_field(w, t, i, first)) first = false;
    }
    JW_LIT(w, "}");
    jw_optional(w, "url", t->url);
    jw_optional(w, "client_msg_id", t->client_msg_id);
    JW_LIT(w, "}");
    return 0;
}

static const struct body_kind template_body = {template_bound, template_write};

/* A customer-service message of one value: text (content) or image (media_id). */
struct custom_msg {
    const char *openid;
    const char *type;  /* "text", "image" */
    const char *key;   /* "content", "media_id" */
    const char *value; /* */
};

static size_t custom_bound(const void *what)
{
    const struct custom_msg *m = what;
    return 128 + api_jw_bound(m->openid) + 2 * api_jw_bound(m->type) + api_jw_bound(m->key) +
           api_jw_bound(m->value);
}

/* {"touser":..,"msgtype":TYPE,TYPE:{KEY:..}}; -1 unless openid and value are UTF-8. */
static int custom_write(struct jw *w, const void *what)
{
    const struct custom_msg *m = what;
    if (m->openid == NULL || m->value == NULL) return -1;
    JW_LIT(w, "{");
    api_jw_member(w, "touser", m->openid);
    JW_LIT(w, ",");
    api_jw_member(w, "msgtype", m->type);
    JW_LIT(w, ",");
    api_jw_str(w, m->type);
    JW_LIT(w, ":{");
    api_jw_member(w, m->key, m->value);
    JW_LIT(w, "}}");
    return w->bad ? -1 : 0;
}

static const struct body_kind custom_body = {custom_bound, custom_write};

/* A news message: one article, with "" for what it lacks. */
struct news_msg {
    const char *openid;
    const char *field[4]; /* title, description, url, picurl */
};

static const char *const news_keys[4] = {"title", "description", "url", "picurl"};

static size_t news_bound(const void *what)
{
    const struct news_msg *m = what;
    size_t n = 128 + api_jw_bound(m->openid);
    for (size_t i = 0; i < 4; i++) {
        n += 32 + api_jw_bound(m->field[i]);
    }
    return n;
}

/* {"touser":..,"msgtype":"news","news":{"articles":[{"title":..,"description":..,"url":..,
 *  "picurl":..}]}}; -1 unless every string is UTF-8. */
static int news_write(struct jw *w, const void *what)
{
    const struct news_msg *m = what;
    if (m->openid == NULL) return -1;
    JW_LIT(w, "{");
    api_jw_member(w, "touser", m->openid);
    JW_LIT(w, ",\"msgtype\":\"news\",\"news\":{\"articles\":[{");
    for (size_t i = 0; i < 4; i++) {
        if (i > 0) JW_LIT(w, ",");
        api_jw_member(w, news_keys[i], m->field[i]);
    }
    JW_LIT(w, "}]}}");
    return w->bad ? -1 : 0;
}

static const struct body_kind news_body = {news_bound, news_write};

/*
 * Starts a JSON call whose body kind k writes from what: into the scratch buffer (or, for
 * a big one, a buffer of its own), then copied into the call, which gets no more room than
 * it needs. -1, with nothing started, when k refuses what.
 */
static int start_written(struct wx_wechat_api *api, const char *path, const struct body_kind *k,
                         const void *what, bool safe_to_repeat, wx_wechat_api_cb cb, void *arg)
{
    size_t need = k->bound(what);
    struct jw w = {.out = need <= sizeof api->scratch ? api->scratch : wx_malloc(need),
                   .cap = need};
    int rc = k->write(&w, what);
    if (rc == 0) {
        struct call *c = call_new(api, CALL_JSON, path, w.len, safe_to_repeat, cb, arg);
        memcpy(c->body, w.out, w.len);
        c->body[w.len] = '\0';
        attempt(c);
    }
    if (w.out != api->scratch) free(w.out);
    return rc;
}

/* ---- public ----------------------------------------------------------------------------- */

void wx_wechat_api_options_from_config(const struct wx_config *cfg,
                                       struct wx_wechat_api_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->base = wx_config_str(cfg, "wechat.api_base");
    opt->appid = wx_config_str(cfg, "wechat.appid");
    opt->secret = wx_config_str(cfg, "wechat.secret");
    opt->timeout_ms = 5000;
    opt->max_attempts = 4;
    opt->max_time_ms = 30000;
}

wx_wechat_api_t *wx_wechat_api_new(struct event_base *base, wx_fetch_t *fetch,
                                   const struct wx_wechat_api_options *opt)
{
    assert(opt->max_attempts >= 1 && opt->timeout_ms > 0);
    struct wx_wechat_api *api = wx_calloc(1, sizeof *api);
    api->base = base;
    api->fetch = fetch;
    api->opt = *opt;
    snprintf(api->base_url, sizeof api->base_url, "%s", opt->base);
    size_t bl = strlen(api->base_url);
    while (bl > 0 && api->base_url[bl - 1] == '/')
        api->base_url[--bl] = '\0';
    snprintf(api->appid, sizeof api->appid, "%s", opt->appid);
    snprintf(api->secret, sizeof api->secret, "%s", opt->secret);
    api->opt.base = api->opt.appid = api->opt.secret = NULL; /* not kept: copied above */
    api->refresh_timer = evtimer_new(base, on_refresh_timer, api);
    api->token_retry = evtimer_new(base, on_token_retry, api);
    if (api->refresh_timer == NULL || api->token_retry == NULL) {
        WX_FATAL("libevent: out of memory");
    }
    return api;
}

void wx_wechat_api_free(wx_wechat_api_t *api)
{
    if (api == NULL) return;
    /* Calls in flight belong to the fetcher's callbacks: the fetcher is freed first, and
     * what is left waits for a token or a back-off. Callbacks may not start new calls. */
    api->closing = true;
    api->waiting = NULL;
    while (api->live != NULL) {
        evtimer_del(&api->live->timer);
        fail(api->live, WX_WECHAT_API_RETRYABLE, 0, "shutting down", false);
    }
    event_free(api->refresh_timer);
    event_free(api->token_retry);
    wx_wipe(api->secret, sizeof api->secret);
    wx_wipe(api->token, sizeof api->token);
    free(api);
}

int wx_wechat_api_template_send(wx_wechat_api_t *api, const struct wx_wechat_template *t,
                                wx_wechat_api_cb cb, void *arg)
{
    if (api->closing) return -1;
    bool idempotent = t->client_msg_id != NULL && t->client_msg_id[0] != '\0';
    return start_written(api, "/cgi-bin/message/template/send", &template_body, t, idempotent, cb,
                         arg);
}

int wx_wechat_api_custom_text(wx_wechat_api_t *api, const char *openid, const char *text,
                              wx_wechat_api_cb cb, void *arg)
{
    if (api->closing) return -1;
    struct custom_msg m = {.openid = openid, .type = "text", .key = "content", .value = text};
    return start_written(api, "/cgi-bin/message/custom/send", &custom_body, &m, false, cb, arg);
}

int wx_wechat_api_custom_news(wx_wechat_api_t *api, const char *openid,
                              const struct wx_wechat_article *a, wx_wechat_api_cb cb, void *arg)
{
    if (api->closing) return -1;
    struct news_msg m = {.openid = openid,
                         .field = {a->title ? a->title : "", a->description ? a->description : "",
                                   a->url ? a->url : "", a->pic_url ? a->pic_url : ""}};
    return start_written(api, "/cgi-bin/message/custom/send", &news_body, &m, false, cb, arg);
}

int wx_wechat_api_custom_image(wx_wechat_api_t *api, const char *openid, const char *media_id,
                               wx_wechat_api_cb cb, void *arg)
{
    if (api->closing) return -1;
    struct custom_msg m = {.openid = openid, .type = "image", .key = "media_id", .value = media_id};
    return start_written(api, "/cgi-bin/message/custom/send", &custom_body, &m, false, cb, arg);
}

int wx_wechat_api_menu_create(wx_wechat_api_t *api, const char *menu_json, wx_wechat_api_cb cb,
                              void *arg)
{
    if (api->closing) return -1;
    json_error_t je;
    json_t *doc = json_loads(menu_json, 0, &je);
    if (doc == NULL || !json_is_array(json_object_get(doc, "button"))) {
        json_decref(doc);
        return -1;
    }
    /* Creating the same menu twice is harmless: safe to repeat. */
    return start_json(api, "/cgi-bin/menu/create", doc, true, cb, arg);
}

int wx_wechat_api_media_upload(wx_wechat_api_t *api, const char *filename, const char *content_type,
                               const void *data, size_t len, wx_wechat_api_cb cb, void *arg)
{
    if (api->closing) return -1;
    if (len == 0 || len > WX_WECHAT_MEDIA_MAX) return -1;
    struct call *c =
        call_new(api, CALL_UPLOAD, "/cgi-bin/media/upload?type=image", NO_BODY, true, cb, arg);
    void *copy = wx_malloc(len);
    memcpy(copy, data, len);
    snprintf(c->filename, sizeof c->filename, "%s", filename);
    snprintf(c->content_type, sizeof c->content_type, "%s", content_type);
    c->part = (struct wx_fetch_part){.name = "media",
                                     .filename = c->filename,
                                     .content_type = c->content_type,
                                     .data = copy,
                                     .len = len};
    attempt(c);
    return 0;
}

int wx_wechat_api_oauth_openid(wx_wechat_api_t *api, const char *code, wx_wechat_api_cb cb,
                               void *arg)
{
    if (api->closing) return -1;
    char path[PATH_MAX_LEN];
    size_t n = strlen(code);
    if (n == 0 || n > 128 ||
        strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_-") != n) {
        return -1;
    }
    snprintf(path, sizeof path, "/sns/oauth2/access_token?grant_type=authorization_code&code=%s",
             code);
    /* A code works once: a retry after a timeout would only get 40163. */
    attempt(call_new(api, CALL_OAUTH, path, NO_BODY, false, cb, arg));
    return 0;
}

void wx_wechat_api_stats(const wx_wechat_api_t *api, struct wx_wechat_api_stats *out)
{
    *out = api->stats;
}

const char *wx_wechat_api_class_name(enum wx_wechat_api_class c)
{
    switch (c) {
    case WX_WECHAT_API_OK:
        return "ok";
    case WX_WECHAT_API_RETRYABLE:
        return "retryable";
    case WX_WECHAT_API_PERMANENT:
        return "permanent";
    }
    return "?";
}
