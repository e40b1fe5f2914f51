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

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
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

enum call_kind { CALL_TOKEN, CALL_JSON, CALL_UPLOAD, CALL_OAUTH };

struct call {
    struct wx_wechat_api *api;
    struct call *prev_live, *next_live; /* every call not yet finished */
    struct call *next;                  /* in the list of calls waiting for a token */
    enum call_kind kind;
    char path[PATH_MAX_LEN];   /* "/cgi-bin/message/custom/send", with any fixed query */
    char *body;                /* JSON (owned), or NULL */
    struct wx_fetch_part part; /* CALL_UPLOAD: data owned, names below */
    char filename[128], content_type[64];
    bool safe_to_repeat; /* a retry after a timeout cannot act twice */
    bool token_retried;  /* one refresh-and-retry per call */
    uint64_t token_gen;  /* the token this attempt used */
    unsigned attempts;
    int64_t started_ms;
    struct event *timer; /* back-off */
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
    if (c->timer != NULL) event_free(c->timer);
    free(c->body);
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
    evtimer_add(c->timer, &tv);
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

/* The platform's JSON answer to a call: class it, retry, or hand it to the caller. */
static void on_call(const struct wx_fetch_response *resp, void *arg)
{
    struct call *c = arg;
    struct wx_wechat_api *api = c->api;
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
    json_error_t je;
    json_t *j = json_loadb(resp->body, resp->body_len, 0, &je);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        fail(c, WX_WECHAT_API_PERMANENT, 47001, "answer is not a JSON object", false);
        return;
    }
    long errcode = (long)json_integer_value(json_object_get(j, "errcode"));
    const char *em = json_string_value(json_object_get(j, "errmsg"));
    char msg[128];
    snprintf(msg, sizeof msg, "%ld %s", errcode, em != NULL ? em : "");
    if (errcode == 40001 || errcode == 40014 || errcode == 42001) {
        json_decref(j);
        if (c->token_retried) {
            fail(c, WX_WECHAT_API_PERMANENT, errcode, msg, false);
            return;
        }
        c->token_retried = true;
        if (c->token_gen == api->token_gen) api->token_expires_ms = 0; /* nobody refreshed */
        attempt(c);
        return;
    }
    if (errcode == -1 || errcode == 45009) {
        json_decref(j);
        retry_later(c, errcode, msg, errcode == 45009 ? QUOTA_BACKOFF_MS : 0, false);
        return;
    }
    if (errcode != 0) {
        json_decref(j);
        fail(c, WX_WECHAT_API_PERMANENT, errcode, msg, false);
        return;
    }
    struct wx_wechat_api_result r = {.cls = WX_WECHAT_API_OK};
    snprintf(r.errmsg, sizeof r.errmsg, "ok");
    json_t *v = json_object_get(j, "msgid");
    if (json_is_integer(v)) r.msgid = (uint64_t)json_integer_value(v);
    const char *s = json_string_value(json_object_get(j, "media_id"));
    if (s != NULL) snprintf(r.media_id, sizeof r.media_id, "%s", s);
    s = json_string_value(json_object_get(j, "openid"));
    if (s != NULL) snprintf(r.openid, sizeof r.openid, "%s", s);
    json_decref(j);
    finish(c, &r);
}

/* Sends one attempt of c now, or waits for a token first. */
static void attempt(struct call *c)
{
    struct wx_wechat_api *api = c->api;
    if (c->kind != CALL_OAUTH && !token_valid(api)) {
        int64_t now = wx_now_ms();
        if (api->token_refused && now < api->token_not_before_ms) {
            /* The platform refused our credentials a moment ago: do not spend the token
             * quota (2,000 a day) asking again for every call. */
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
        return;
    }
    char url[WX_FETCH_URL_MAX];
    if (c->kind == CALL_OAUTH) {
        snprintf(url, sizeof url, "%s%s&appid=%s&secret=%s", api->base_url, c->path, api->appid,
                 api->secret);
    } else {
        snprintf(url, sizeof url, "%s%s%caccess_token=%s", api->base_url, c->path,
                 strchr(c->path, '?') != NULL ? '&' : '?', api->token);
    }
    c->token_gen = api->token_gen;
    c->attempts++;
    api->stats.calls++;
    struct wx_fetch_request req = {
        .method = c->body != NULL || c->kind == CALL_UPLOAD ? "POST" : "GET",
        .url = url,
        .body = c->body,
        .body_len = c->body != NULL ? strlen(c->body) : 0,
        .content_type = c->body != NULL ? "application/json; charset=utf-8" : NULL,
        .part = c->kind == CALL_UPLOAD ? &c->part : NULL,
        .timeout_ms = api->opt.timeout_ms};
    int rc = wx_fetch_start(api->fetch, &req, on_call, c);
    wx_wipe(url, sizeof url);
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

static struct call *call_new(struct wx_wechat_api *api, enum call_kind kind, const char *path,
                             char *body, bool safe_to_repeat, wx_wechat_api_cb cb, void *arg)
{
    struct call *c = wx_calloc(1, sizeof *c);
    c->api = api;
    c->kind = kind;
    snprintf(c->path, sizeof c->path, "%s", path);
    c->body = body;
    c->safe_to_repeat = safe_to_repeat;
    c->started_ms = wx_now_ms();
    c->cb = cb;
    c->arg = arg;
    c->timer = evtimer_new(api->base, on_backoff, c);
    if (c->timer == NULL) WX_FATAL("libevent: out of memory");
    c->next_live = api->live;
    if (api->live != NULL) api->live->prev_live = c;
    api->live = c;
    return c;
}

/* Starts a JSON call; takes ownership of body (from json_dumps). */
static int start_json(struct wx_wechat_api *api, const char *path, json_t *doc, bool safe_to_repeat,
                      wx_wechat_api_cb cb, void *arg)
{
    char *body = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (body == NULL) return -1;
    attempt(call_new(api, CALL_JSON, path, body, safe_to_repeat, cb, arg));
    return 0;
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
        evtimer_del(api->live->timer);
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
    json_t *data = json_object();
    for (size_t i = 0; i < t->nfields; i++) {
        json_object_set_new(data, t->fields[i].name,
                            json_pack("{s:s}", "value", t->fields[i].value));
    }
    json_t *doc = json_pack("{s:s, s:s, s:o}", "touser", t->openid, "template_id", t->template_id,
                            "data", data);
    if (doc == NULL) return -1;
    if (t->url != NULL && t->url[0] != '\0') json_object_set_new(doc, "url", json_string(t->url));
    bool idempotent = t->client_msg_id != NULL && t->client_msg_id[0] != '\0';
    if (idempotent) json_object_set_new(doc, "client_msg_id", json_string(t->client_msg_id));
    return start_json(api, "/cgi-bin/message/template/send", doc, idempotent, cb, arg);
}

int wx_wechat_api_custom_text(wx_wechat_api_t *api, const char *openid, const char *text,
                              wx_wechat_api_cb cb, void *arg)
{
    if (api->closing) return -1;
    json_t *doc = json_pack("{s:s, s:s, s:{s:s}}", "touser", openid, "msgtype", "text", "text",
                            "content", text);
    if (doc == NULL) return -1;
    return start_json(api, "/cgi-bin/message/custom/send", doc, false, cb, arg);
}

int wx_wechat_api_custom_news(wx_wechat_api_t *api, const char *openid,
                              const struct wx_wechat_article *a, wx_wechat_api_cb cb, void *arg)
{
    if (api->closing) return -1;
    json_t *doc = json_pack("{s:s, s:s, s:{s:[{s:s, s:s, s:s, s:s}]}}", "touser", openid, "msgtype",
                            "news", "news", "articles", "title", a->title ? a->title : "",
                            "description", a->description ? a->description : "", "url",
                            a->url ? a->url : "", "picurl", a->pic_url ? a->pic_url : "");
    if (doc == NULL) return -1;
    return start_json(api, "/cgi-bin/message/custom/send", doc, false, cb, arg);
}

int wx_wechat_api_custom_image(wx_wechat_api_t *api, const char *openid, const char *media_id,
                               wx_wechat_api_cb cb, void *arg)
{
    if (api->closing) return -1;
    json_t *doc = json_pack("{s:s, s:s, s:{s:s}}", "touser", openid, "msgtype", "image", "image",
                            "media_id", media_id);
    if (doc == NULL) return -1;
    return start_json(api, "/cgi-bin/message/custom/send", doc, false, cb, arg);
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
        call_new(api, CALL_UPLOAD, "/cgi-bin/media/upload?type=image", NULL, true, cb, arg);
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
    attempt(call_new(api, CALL_OAUTH, path, NULL, false, cb, arg));
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
