/*
 * page.c - the sandbox's web page and the JSON API it calls (everything under /sandbox/ that
 * is neither the platform's API nor a test hook).
 *
 *   GET  /sandbox/                 the phone (index.html; app.css and app.js beside it)
 *   GET  /sandbox/api/state        account, followers, menu, demo cards, sequence numbers
 *   POST /sandbox/api/followers    {"nickname"?, "openid"?, "follow"?: true}  a new follower
 *   POST /sandbox/api/follow       {"openid", "follow": bool, "scene"?}   subscribe, unsubscribe
 *   POST /sandbox/api/refuse       {"openid", "refuses": bool}            "拒收消息" switch
 *   POST /sandbox/api/select       {"openid"}       the follower OAuth authorizes as
 *   POST /sandbox/api/send         {"openid", "type", ...}  a message or a menu press
 *
 * Calls take JSON (Content-Type application/json, at most WX_SANDBOX_PAGE_BODY_MAX bytes) and
 * answer JSON; a bad call gets a 4xx with {"error": "..."} and changes nothing. The page
 * itself is static, same-origin and script-only (a strict Content-Security-Policy), and puts
 * every text it shows in with textContent.
 */
#include "sandbox/sandbox_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sandbox/assets.h"

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data: http: https:; connect-src 'self'; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* ---- static files ---------------------------------------------------------------------------- */

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL) return "application/octet-stream";
    if (strcmp(dot, ".html") == 0) return "text/html; charset=utf-8";
    if (strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    if (strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".svg") == 0) return "image/svg+xml";
    if (strcmp(dot, ".png") == 0) return "image/png";
    return "application/octet-stream";
}

/* Serves /sandbox/NAME from the embedded files; false when there is no such file. */
static bool serve_asset(wx_http_req_t *req, const char *path)
{
    const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
    for (size_t i = 0; i < sb_asset_count; i++) {
        if (strcmp(name, sb_assets[i].name) != 0) continue;
        wx_http_add_header(req, "Content-Security-Policy", CSP);
        wx_http_add_header(req, "Referrer-Policy", "no-referrer");
        wx_http_add_header(req, "Cache-Control", "no-cache");
        wx_http_send(req, 200, content_type(name), sb_assets[i].data, sb_assets[i].len);
        return true;
    }
    return false;
}

/* ---- state ----------------------------------------------------------------------------------- */

static const char *mode_name(enum wx_sandbox_mode m)
{
    return m == WX_SANDBOX_SAFE ? "safe" : m == WX_SANDBOX_COMPAT ? "compat" : "plain";
}

static void state_handler(struct wx_sandbox *sb, wx_http_req_t *req)
{
    json_t *followers = json_array(), *cards = json_array();
    for (size_t i = 0; i < sb->nfollowers; i++) {
        json_array_append_new(followers, sb_follower_json(sb->followers[i]));
    }
    for (size_t i = 0; i < sb->ncards; i++) {
        const struct sb_card *c = &sb->cards[i];
        json_array_append_new(cards, json_pack("{s:i,s:s,s:s}", "index", (int)i, "label", c->label,
                                               "masked", c->masked));
    }
    json_t *o = json_pack(
        "{s:{s:s,s:s,s:s,s:s,s:s,s:s},s:o,s:s,s:O?,s:o,s:b,s:s,s:I,s:I,s:I}", "account", "name",
        sb->account_name, "id", sb->account, "mode", mode_name(sb->mode), "appid", sb->appid,
        "api_base", sb->api_base, "webhook_url", sb->webhook_url, "followers", followers,
        "selected", sb->selected, "menu", sb->menu, "cards", cards, "pos", sb->iso_address != NULL,
        "builtin_media_id", SB_BUILTIN_MEDIA_ID, "seq", (json_int_t)sb->seq, "followers_seq",
        (json_int_t)sb->followers_seq, "menu_seq", (json_int_t)sb->menu_seq);
    sb_reply_json(req, 200, o);
}

/* ---- followers ------------------------------------------------------------------------------- */

/* The follower named by the body's "openid"; NULL after answering 400/404. */
static struct sb_follower *body_follower(struct wx_sandbox *sb, wx_http_req_t *req, const json_t *o)
{
    const char *openid = sb_json_str(o, "openid");
    if (openid == NULL) {
        sb_page_error(req, 400, "openid is needed");
        return NULL;
    }
    struct sb_follower *f = sb_follower_find(sb, openid);
    if (f == NULL) sb_page_error(req, 404, "no such follower");
    return f;
}

/* Runs an action and answers 202 {"seq", "msg_id"} or the error. */
static void act_and_answer(struct wx_sandbox *sb, wx_http_req_t *req, struct sb_follower *f,
                           const struct sb_action *a, int ok_status, json_t *extra)
{
    char err[160], id[24] = "";
    int status = 400;
    uint64_t msg_id = 0;
    int64_t seq = sb_follower_act(sb, f, a, &msg_id, &status, err, sizeof err);
    if (seq < 0) {
        json_decref(extra);
        sb_page_error(req, status, err);
        return;
    }
    snprintf(sb->selected, sizeof sb->selected, "%s", f->openid);
    if (msg_id != 0) snprintf(id, sizeof id, "%llu", (unsigned long long)msg_id);
    json_t *o = json_pack("{s:I,s:s*}", "seq", (json_int_t)seq, "msg_id", id[0] ? id : NULL);
    if (extra != NULL) {
        json_object_update(o, extra);
        json_decref(extra);
    }
    sb_reply_json(req, ok_status, o);
}

static void followers_add_handler(struct wx_sandbox *sb, wx_http_req_t *req, json_t *o)
{
    char err[160];
    struct sb_follower *f;
    const json_t *follow = json_object_get(o, "follow");
    if (follow != NULL && !json_is_boolean(follow)) {
        sb_page_error(req, 400, "follow: true or false");
        return;
    }
    if (sb_follower_add(sb, sb_json_str(o, "openid"), sb_json_str(o, "nickname"), false, &f, err,
                        sizeof err) != 0) {
        sb_page_error(req, sb->nfollowers >= WX_SANDBOX_FOLLOWERS_MAX ? 409 : 400, err);
        return;
    }
    snprintf(sb->selected, sizeof sb->selected, "%s", f->openid);
    if (follow != NULL && json_is_false(follow)) {
        sb_reply_json(req, 201, json_pack("{s:o}", "follower", sb_follower_json(f)));
        return;
    }
    /* A new WeChat user who follows the account: the bank hears "subscribe". */
    struct sb_action a = {.type = "subscribe", .key = sb_json_str(o, "scene")};
    act_and_answer(sb, req, f, &a, 201, json_pack("{s:o}", "follower", sb_follower_json(f)));
}

static void follow_handler(struct wx_sandbox *sb, wx_http_req_t *req, json_t *o)
{
    struct sb_follower *f = body_follower(sb, req, o);
    if (f == NULL) return;
    const json_t *follow = json_object_get(o, "follow");
    if (!json_is_boolean(follow)) {
        sb_page_error(req, 400, "follow: true or false");
        return;
    }
    struct sb_action a = {.type = json_is_true(follow) ? "subscribe" : "unsubscribe",
                          .key = sb_json_str(o, "scene")};
    act_and_answer(sb, req, f, &a, 202, NULL);
}

static void refuse_handler(struct wx_sandbox *sb, wx_http_req_t *req, json_t *o)
{
    struct sb_follower *f = body_follower(sb, req, o);
    if (f == NULL) return;
    const json_t *refuses = json_object_get(o, "refuses");
    if (!json_is_boolean(refuses)) {
        sb_page_error(req, 400, "refuses: true or false");
        return;
    }
    f->refuses = json_is_true(refuses);
    sb_bump(sb, &sb->followers_seq);
    sb_reply_json(req, 200, json_pack("{s:o}", "follower", sb_follower_json(f)));
}

static void select_handler(struct wx_sandbox *sb, wx_http_req_t *req, json_t *o)
{
    struct sb_follower *f = body_follower(sb, req, o);
    if (f == NULL) return;
    snprintf(sb->selected, sizeof sb->selected, "%s", f->openid);
    sb_reply_json(req, 200, json_pack("{s:s}", "selected", f->openid));
}

/* A number member within [-limit, limit], or NAN. */
static double number_member(const json_t *o, const char *key, double limit)
{
    const json_t *v = json_object_get(o, key);
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    return isfinite(d) && fabs(d) <= limit ? d : NAN;
}

static void send_handler(struct wx_sandbox *sb, wx_http_req_t *req, json_t *o)
{
    struct sb_follower *f = body_follower(sb, req, o);
    if (f == NULL) return;
    struct sb_action a = {
        .type = sb_json_str(o, "type"),
        .content = sb_json_str(o, "content"),
        .key = sb_json_str(o, "key"),
        .url = sb_json_str(o, "url"),
        .media_id = sb_json_str(o, "media_id"),
        .label = sb_json_str(o, "label"),
        .lat = number_member(o, "lat", 90),
        .lng = number_member(o, "lng", 180),
    };
    act_and_answer(sb, req, f, &a, 202, NULL);
}

/* ---- routing --------------------------------------------------------------------------------- */

typedef void (*body_handler)(struct wx_sandbox *sb, wx_http_req_t *req, json_t *o);

static const struct {
    const char *path;
    body_handler fn;
} posts[] = {
    {"/api/followers", followers_add_handler},
    {"/api/follow", follow_handler},
    {"/api/refuse", refuse_handler},
    {"/api/select", select_handler},
    {"/api/send", send_handler},
};

bool sb_page_route(struct wx_sandbox *sb, wx_http_req_t *req, const char *path, const char *query)
{
    (void)query;
    bool post = wx_http_method(req) == WX_HTTP_POST;
    if (!post && (strcmp(path, "/api/state") == 0 || strcmp(path, "/api/followers") == 0)) {
        state_handler(sb, req);
        return true;
    }
    for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++) {
        if (strcmp(path, posts[i].path) != 0) continue;
        if (!post) {
            wx_http_error(req, 405, "use POST");
            return true;
        }
        json_t *o = sb_page_body(req);
        if (o != NULL) {
            posts[i].fn(sb, req, o);
            json_decref(o);
        }
        return true;
    }
    if (strcmp(path, "/api/state") == 0) {
        wx_http_error(req, 405, "use GET");
        return true;
    }
    return !post && serve_asset(req, path);
}
