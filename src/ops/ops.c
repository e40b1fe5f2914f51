/*
 * ops.c - the ops HTTP API: a bearer token, then JSON over the alerts' outbox.
 */
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"

#define TOKEN_MAX 256

struct wx_ops {
    char token[TOKEN_MAX + 1];
    size_t token_len;
    char db_path[4096];
    wx_notify_t *notify;
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

static void alerts_status(struct wx_ops *o, wx_http_req_t *req)
{
    uint64_t counts[WX_SEND_STATES], watermark;
    char err[512];
    if (wx_outbox_counts(o->db_path, counts, &watermark, err, sizeof err) != 0) {
        WX_ERROR("ops: %s", err);
        send_problem(req, 500, "the outbox cannot be read");
        return;
    }
    json_t *sends = json_object();
    for (int s = 0; s < WX_SEND_STATES; s++) {
        json_object_set_new(sends, wx_send_state_name((uint8_t)s),
                            json_integer((json_int_t)counts[s]));
    }
    json_t *doc = json_pack("{s:I,s:o}", "watermark", (json_int_t)watermark, "sends", sends);
    if (o->notify != NULL) json_object_set_new(doc, "live", live_figures(o->notify));
    send_json(req, 200, doc);
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

static void alerts_sends(struct wx_ops *o, wx_http_req_t *req)
{
    const char *query = wx_http_query(req);
    int state = query_state(query);
    long long from = query_number(query, "from", 0, 0, INT64_MAX);
    long long limit = query_number(query, "limit", 100, 1, WX_OPS_LIST_MAX);
    if (state < -1 || from < 0 || limit < 0) {
        send_problem(req, 400,
                     "state: pending, accepted, delivered, failed, dead or undelivered; from: a "
                     "journal seq; limit: 1 to 1000");
        return;
    }
    json_t *list = json_array();
    char err[512];
    if (wx_outbox_list(o->db_path, state, (uint64_t)from, (size_t)limit, add_send, list, err,
                       sizeof err) != 0) {
        WX_ERROR("ops: %s", err);
        json_decref(list);
        send_problem(req, 500, "the outbox cannot be read");
        return;
    }
    send_json(req, 200, json_pack("{s:o}", "sends", list));
}

/* ---- POST /api/v1/alerts/replay ------------------------------------------------------------- */

static void alerts_replay(struct wx_ops *o, wx_http_req_t *req)
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
    uint64_t which = ok && seq != NULL ? (uint64_t)json_integer_value(seq) : 0;
    json_decref(doc);
    if (!ok) {
        send_problem(req, 400, "a JSON object: {\"seq\": N} or {\"all\": true}");
        return;
    }
    char err[512];
    long n = wx_outbox_replay(o->db_path, which, err, sizeof err);
    if (n < 0) {
        WX_ERROR("ops: %s", err);
        send_problem(req, 500, "the outbox cannot be written");
        return;
    }
    WX_INFO("ops: %ld dead alert sends replayed (%s)", n, all ? "all" : "one row");
    send_json(req, 200, json_pack("{s:I}", "replayed", (json_int_t)n));
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
    if (strcmp(path, "/api/v1/alerts") == 0 && get) {
        alerts_status(o, req);
    } else if (strcmp(path, "/api/v1/alerts/sends") == 0 && get) {
        alerts_sends(o, req);
    } else if (strcmp(path, "/api/v1/alerts/replay") == 0 && m == WX_HTTP_POST) {
        alerts_replay(o, req);
    } else if (strcmp(path, "/api/v1/alerts") == 0 || strcmp(path, "/api/v1/alerts/sends") == 0 ||
               strcmp(path, "/api/v1/alerts/replay") == 0) {
        send_problem(req, 405, "method not allowed");
    } else {
        send_problem(req, 404, "no such ops call");
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
    wx_http_route(http, "/api/v1", true, on_request, o);
    return o;
}

void wx_ops_free(wx_ops_t *o)
{
    if (o == NULL) return;
    wx_wipe(o->token, sizeof o->token);
    free(o);
}
