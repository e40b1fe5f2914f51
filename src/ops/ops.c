/*
 * ops.c - the ops HTTP API: a bearer token, then JSON over the alerts' outbox.
 *
 * The loop checks the token and the call, reads the dispatcher's live figures (which are the
 * loop's), and hands the call to a worker thread: the outbox's SQLite statements (a count
 * over every send kept, a write that may wait for the recorder's lock) never stall the loop
 * that answers the card switch. The worker answers the request itself. At most
 * CALLS_WAITING_MAX calls wait for it; more are refused with 503.
 */
#include "ops/ops.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"

#define TOKEN_MAX         256
#define CALLS_WAITING_MAX 16

enum call_kind { CALL_STATUS, CALL_SENDS, CALL_REPLAY };

/* A checked call for the worker. */
struct call {
    struct call *next;
    wx_http_req_t *req;
    enum call_kind kind;
    int state;     /* sends: -1 for any */
    uint64_t from; /* sends */
    size_t limit;  /* sends */
    uint64_t seq;  /* replay: 0 for every dead send */
    json_t *live;  /* status: the dispatcher's figures, or NULL */
};

struct wx_ops {
    char token[TOKEN_MAX + 1];
    size_t token_len;
    char db_path[4096];
    wx_notify_t *notify;

    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct call *head, *tail; /* waiting for the worker */
    unsigned waiting;
    bool stopping, stopped;
};

/* ---- answers ------------------------------------------------------------------------------ */

static void send_json(wx_http_req_t *req, int status, json_t *doc)
{
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        wx_http_error(req, 500, "out of memory");
        return;
    }
    wx_http_add_header(req, "Cache-Control", "no-store");
    wx_http_send(req, status, "application/json", text, strlen(text));
    free(text);
}

static void send_problem(wx_http_req_t *req, int status, const char *message)
{
    send_json(req, status, json_pack("{s:s}", "error", message));
}

/* "Authorization: Bearer <ops.token>", compared in constant time. */
static bool authorized(const struct wx_ops *o, const wx_http_req_t *req)
{
    const char *h = wx_http_header(req, "Authorization");
    if (h == NULL || strncmp(h, "Bearer ", 7) != 0) return false;
    const char *given = h + 7;
    size_t len = strnlen(given, TOKEN_MAX + 1);
    bool same_len = len == o->token_len;
    /* Compare against the token whatever the length, so the time says nothing of it. */
    char padded[TOKEN_MAX + 1] = {0};
    memcpy(padded, given, len <= TOKEN_MAX ? len : TOKEN_MAX);
    bool same = wx_ct_equal(padded, o->token, o->token_len);
    wx_wipe(padded, sizeof padded);
    return same_len && same;
}

/* ---- GET /api/v1/alerts -------------------------------------------------------------------- */

static json_t *live_figures(const wx_notify_t *n)
{
    struct wx_notify_stats st;
    wx_notify_stats(n, &st);
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I}", "alerts",
                     (json_int_t)st.alerts, "queued", (json_int_t)st.queued, "in_flight",
                     (json_int_t)st.in_flight, "sent_wechat", (json_int_t)st.sent_wechat,
                     "sent_sms", (json_int_t)st.sent_sms, "delivered", (json_int_t)st.delivered,
                     "failed", (json_int_t)st.failed, "dead", (json_int_t)st.dead, "sms_fallbacks",
                     (json_int_t)st.sms_fallbacks, "oldest_unsent_s", st.oldest_unsent_s,
                     "derived_seq", (json_int_t)st.derived_seq);
}

static void alerts_status(struct wx_ops *o, struct call *c)
{
    uint64_t counts[WX_SEND_STATES], watermark;
    char err[512];
    if (wx_outbox_counts(o->db_path, counts, &watermark, err, sizeof err) != 0) {
        WX_ERROR("ops: %s", err);
        send_problem(c->req, 500, "the outbox cannot be read");
        return;
    }
    json_t *sends = json_object();
    for (int s = 0; s < WX_SEND_STATES; s++) {
        json_object_set_new(sends, wx_send_state_name((uint8_t)s),
                            json_integer((json_int_t)counts[s]));
    }
    json_t *doc = json_pack("{s:I,s:o}", "watermark", (json_int_t)watermark, "sends", sends);
    if (c->live != NULL) {
        json_object_set_new(doc, "live", c->live);
        c->live = NULL;
    }
    send_json(c->req, 200, doc);
}

/* ---- GET /api/v1/alerts/sends ---------------------------------------------------------------- */

static void add_send(void *ctx, const struct wx_send_row *r)
{
    char to[WX_OPENID_MAX + 8];
    wx_send_row_shown_to(r, to, sizeof to);
    json_array_append_new(
        ctx, json_pack("{s:I,s:s,s:s,s:s,s:i,s:i,s:s,s:I}", "seq", (json_int_t)r->seq, "channel",
                       wx_send_channel_name(r->channel), "state", wx_send_state_name(r->state),
                       "to", to, "attempts", (int)r->attempts, "errcode", (int)r->errcode, "error",
                       r->error, "updated_ms", (json_int_t)r->updated_ms));
}

/* A query number in [lo, hi], or def when absent; -1 when malformed. */
static long long query_number(const char *query, const char *name, long long def, long long lo,
                              long long hi)
{
    char text[24];
    int n = query != NULL ? wx_http_query_param(query, name, text, sizeof text) : -1;
    if (n == -1) return def;
    char *end;
    long long v = n > 0 ? strtoll(text, &end, 10) : -1;
    return n > 0 && *end == '\0' && v >= lo && v <= hi ? v : -1;
}

static int query_state(const char *query)
{
    char name[16];
    int n = query != NULL ? wx_http_query_param(query, "state", name, sizeof name) : -1;
    if (n == -1) return -1;
    for (int s = 0; n > 0 && s < WX_SEND_STATES; s++) {
        if (strcmp(name, wx_send_state_name((uint8_t)s)) == 0) return s;
    }
    return -2;
}

static bool check_sends(wx_http_req_t *req, struct call *c)
{
    const char *query = wx_http_query(req);
    int state = query_state(query);
    long long from = query_number(query, "from", 0, 0, INT64_MAX);
    long long limit = query_number(query, "limit", 100, 1, WX_OPS_LIST_MAX);
    if (state < -1 || from < 0 || limit < 0) {
        send_problem(req, 400,
                     "state: pending, accepted, delivered, failed, dead or undelivered; from: a "
                     "journal seq; limit: 1 to 1000");
        return false;
    }
    c->state = state;
    c->from = (uint64_t)from;
    c->limit = (size_t)limit;
    return true;
}

static void alerts_sends(struct wx_ops *o, struct call *c)
{
    json_t *list = json_array();
    char err[512];
    if (wx_outbox_list(o->db_path, c->state, c->from, c->limit, add_send, list, err, sizeof err) !=
        0) {
        WX_ERROR("ops: %s", err);
        json_decref(list);
        send_problem(c->req, 500, "the outbox cannot be read");
        return;
    }
    send_json(c->req, 200, json_pack("{s:o}", "sends", list));
}

/* ---- POST /api/v1/alerts/replay ------------------------------------------------------------- */

static bool check_replay(wx_http_req_t *req, struct call *c)
{
    size_t len;
    const uint8_t *body = wx_http_body(req, &len);
    json_error_t je;
    json_t *doc = body != NULL && len <= WX_OPS_BODY_MAX
                      ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je)
                      : NULL;
    const json_t *seq = json_object_get(doc, "seq");
    bool all = json_is_true(json_object_get(doc, "all"));
    bool ok = json_is_object(doc) && (all != (seq != NULL)) &&
              (seq == NULL || (json_is_integer(seq) && json_integer_value(seq) > 0));
    c->seq = ok && seq != NULL ? (uint64_t)json_integer_value(seq) : 0;
    json_decref(doc);
    if (!ok) send_problem(req, 400, "a JSON object: {\"seq\": N} or {\"all\": true}");
    return ok;
}

static void alerts_replay(struct wx_ops *o, struct call *c)
{
    char err[512];
    long n = wx_outbox_replay(o->db_path, c->seq, err, sizeof err);
    if (n < 0) {
        WX_ERROR("ops: %s", err);
        send_problem(c->req, 500, "the outbox cannot be written");
        return;
    }
    WX_INFO("ops: %ld dead alert sends replayed (%s)", n, c->seq == 0 ? "all" : "one row");
    send_json(c->req, 200, json_pack("{s:I}", "replayed", (json_int_t)n));
}

/* ---- the worker ------------------------------------------------------------------------------ */

static void call_free(struct call *c)
{
    json_decref(c->live);
    free(c);
}

static void *worker_main(void *arg)
{
    struct wx_ops *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (o->head == NULL && !o->stopping)
            pthread_cond_wait(&o->cv, &o->mu);
        struct call *c = o->head;
        if (c == NULL) break; /* stopping, nothing waits */
        o->head = c->next;
        if (o->head == NULL) o->tail = NULL;
        o->waiting--;
        bool stopping = o->stopping;
        pthread_mutex_unlock(&o->mu);
        if (stopping) {
            send_problem(c->req, 503, "the server is stopping");
        } else if (c->kind == CALL_STATUS) {
            alerts_status(o, c);
        } else if (c->kind == CALL_SENDS) {
            alerts_sends(o, c);
        } else {
            alerts_replay(o, c);
        }
        call_free(c);
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* Queues a checked call for the worker, or refuses it when too many wait. */
static void hand_over(struct wx_ops *o, struct call *c)
{
    pthread_mutex_lock(&o->mu);
    bool room = o->waiting < CALLS_WAITING_MAX && !o->stopping;
    if (room) {
        if (o->tail != NULL) {
            o->tail->next = c;
        } else {
            o->head = c;
        }
        o->tail = c;
        o->waiting++;
        pthread_cond_signal(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
    if (!room) {
        wx_http_add_header(c->req, "Retry-After", "1");
        send_problem(c->req, 503, "too many ops calls at once; try again");
        call_free(c);
    }
}

/* ---- the router ------------------------------------------------------------------------------ */

static void on_request(wx_http_req_t *req, void *arg)
{
    struct wx_ops *o = arg;
    if (!authorized(o, req)) {
        wx_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"wxbank ops\"");
        send_problem(req, 401, "Authorization: Bearer <ops.token> required");
        return;
    }
    const char *path = wx_http_path(req);
    enum wx_http_method m = wx_http_method(req);
    bool get = m == WX_HTTP_GET || m == WX_HTTP_HEAD;
    struct call *c = wx_calloc(1, sizeof *c);
    c->req = req;
    bool ok = false;
    if (strcmp(path, "/api/v1/alerts") == 0 && get) {
        c->kind = CALL_STATUS;
        c->live = o->notify != NULL ? live_figures(o->notify) : NULL;
        ok = true;
    } else if (strcmp(path, "/api/v1/alerts/sends") == 0 && get) {
        c->kind = CALL_SENDS;
        ok = check_sends(req, c);
    } else if (strcmp(path, "/api/v1/alerts/replay") == 0 && m == WX_HTTP_POST) {
        c->kind = CALL_REPLAY;
        ok = check_replay(req, c);
    } else if (strcmp(path, "/api/v1/alerts") == 0 || strcmp(path, "/api/v1/alerts/sends") == 0 ||
               strcmp(path, "/api/v1/alerts/replay") == 0) {
        send_problem(req, 405, "method not allowed");
    } else {
        send_problem(req, 404, "no such ops call");
    }
    if (ok) {
        hand_over(o, c);
    } else {
        call_free(c);
    }
}

wx_ops_t *wx_ops_start(wx_http_t *http, const char *token, const char *db_path, wx_notify_t *notify,
                       char *err, size_t errlen)
{
    size_t len = strlen(token);
    if (len < WX_OPS_TOKEN_MIN || len > TOKEN_MAX) {
        snprintf(err, errlen, "ops.token: %d to %d characters (or empty: no ops API)",
                 WX_OPS_TOKEN_MIN, TOKEN_MAX);
        return NULL;
    }
    struct wx_ops *o = wx_calloc(1, sizeof *o);
    memcpy(o->token, token, len);
    o->token_len = len;
    snprintf(o->db_path, sizeof o->db_path, "%s", db_path);
    o->notify = notify;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    if (pthread_create(&o->worker, NULL, worker_main, o) != 0) WX_FATAL("ops: no worker thread");
    wx_http_route(http, "/api/v1", true, on_request, o);
    return o;
}

void wx_ops_stop(wx_ops_t *o)
{
    if (o == NULL || o->stopped) return;
    pthread_mutex_lock(&o->mu);
    o->stopping = true;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->worker, NULL);
    o->stopped = true;
}

void wx_ops_free(wx_ops_t *o)
{
    if (o == NULL) return;
    wx_ops_stop(o);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    wx_wipe(o->token, sizeof o->token);
    free(o);
}
