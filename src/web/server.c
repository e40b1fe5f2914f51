/*
 * server.c - the secure pages' server: /m/... on the HTTPS listener, sessions by cookie,
 * limits per client, the headers every page carries, answers that wait for the journal.
 *
 * Everything here runs on the hub's loop, which owns the engine: a page reads the cardholder's
 * cards and submits bindings and card changes like any adapter. What is slow goes to the
 * worker thread (worker.c): Argon2 takes a tenth of a second and 64 MiB by design, and the
 * loop also answers the card switch. One path prefix is routed here; the path picks the page.
 *
 *   /m/go/<token>          a one-time link from chat          entry.c
 *   /m/oauth               back from WeChat's OAuth page      entry.c
 *   /m/txn/<seq>           a transaction's details (alerts)   entry.c, actions.c
 *   /m/bind, /m/unbind, /m/cards, /m/login                    login.c, actions.c
 *   /m/card/lock, /m/card/unlock                              actions.c
 *   /m/password, /m/password/code                             reset.c
 *   /m/captcha/<id>.png    the CAPTCHA of the form shown      page.c
 *   /m/static/app.css      the stylesheet
 */
#include "web/web_int.h"

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/config.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

#define LINKS_MAX    65536 /* one-time links and OAuth states held at once */
#define SESSIONS_MAX 65536
#define GUARD_MAX    262144 /* lockouts and rate-limit windows */

#define LIMIT_WINDOW 60000 /* the rate limits count requests per minute */

/* Every page: nothing from elsewhere, no framing, no caching, no referrer. */
static const char CSP[] = "default-src 'none'; style-src 'self'; img-src 'self'; "
                          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

static const struct {
    enum web_action action;
    const char *name, *path;
} ACTIONS[] = {
    {WEB_GO_BIND, "bind", "/m/bind"},     {WEB_GO_UNBIND, "unbind", "/m/unbind"},
    {WEB_GO_CARDS, "unlock", "/m/cards"}, {WEB_GO_CARDS, "cards", "/m/cards"},
    {WEB_GO_TXN, "txn", "/m/cards"},      {WEB_GO_PASSWORD, "password", "/m/password"},
};

const char *web_action_path(enum web_action a)
{
    for (size_t i = 0; i < sizeof ACTIONS / sizeof ACTIONS[0]; i++) {
        if (ACTIONS[i].action == a) return ACTIONS[i].path;
    }
    return NULL;
}

enum web_action web_action_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof ACTIONS / sizeof ACTIONS[0]; i++) {
        if (strcmp(ACTIONS[i].name, name) == 0) return ACTIONS[i].action;
    }
    return WEB_GO_NONE;
}

/* ---- options ---------------------------------------------------------------------------- */

int wx_web_options_from_config(const struct wx_config *cfg, const char *db_path,
                               struct wx_web_options *opt, char *err, size_t errlen)
{
    memset(opt, 0, sizeof *opt);
    opt->db_path = db_path;
    opt->public_url = wx_config_str(cfg, "web.public_url");
    opt->appid = wx_config_str(cfg, "wechat.appid");
    opt->oauth_url = wx_config_str(cfg, "web.oauth_url");
    opt->oauth = wx_config_bool(cfg, "web.oauth");
    opt->tz_offset_minutes = wx_tz_offset_minutes(wx_config_str(cfg, "tz"));
    opt->link_life_ms = wx_config_int(cfg, "web.link_life_s") * 1000;
    opt->captcha_life_ms = wx_config_int(cfg, "web.captcha_life_s") * 1000;
    opt->code_life_ms = wx_config_int(cfg, "web.sms_code_life_s") * 1000;
    opt->session_idle_ms = wx_config_int(cfg, "web.session_idle_s") * 1000;
    opt->session_max_ms = wx_config_int(cfg, "web.session_max_s") * 1000;
    opt->login_lock_ms = wx_config_int(cfg, "web.login_lock_s") * 1000;
    opt->ip_requests_per_min = (unsigned)wx_config_int(cfg, "web.ip_requests_per_min");
    opt->ip_posts_per_min = (unsigned)wx_config_int(cfg, "web.ip_posts_per_min");
    opt->follower_posts_per_min = (unsigned)wx_config_int(cfg, "web.follower_posts_per_min");
    opt->cost.memory_kib = (uint32_t)wx_config_int(cfg, "web.password_memory_kib");
    opt->cost.iterations = (uint32_t)wx_config_int(cfg, "web.password_iterations");
    opt->cost.lanes = 1;
    opt->sms_url = wx_config_str(cfg, "sms.url");
    opt->sms_auth_header = wx_config_str(cfg, "sms.auth_header");
    opt->sms_body = wx_config_str(cfg, "sms.body");
    opt->sms_timeout_ms = (unsigned)wx_config_int(cfg, "sms.timeout_ms");
    if (opt->tz_offset_minutes == WX_TZ_INVALID) {
        snprintf(err, errlen, "tz: not a time zone wxbank knows");
        return -1;
    }
    if (opt->session_max_ms < opt->session_idle_ms) {
        snprintf(err, errlen, "web.session_max_s: at least web.session_idle_s");
        return -1;
    }
    if (strlen(opt->public_url) >= WX_WEB_URL_MAX - 80 ||
        strlen(opt->oauth_url) >= WX_WEB_URL_MAX) {
        snprintf(err, errlen, "web.public_url: at most %d bytes", WX_WEB_URL_MAX - 80);
        return -1;
    }
    return 0;
}

/* ---- sessions ------------------------------------------------------------------------------ */

struct wx_session *web_session(wx_web_t *w, wx_http_req_t *req, char sid[WX_TOKEN_TEXT_LEN + 1])
{
    const char *cookie = wx_http_header(req, "Cookie");
    sid[0] = '\0';
    if (cookie == NULL || !wx_cookie_get(cookie, WEB_COOKIE, sid, WX_TOKEN_TEXT_LEN + 1)) {
        sid[0] = '\0';
        return NULL;
    }
    return wx_sessions_find(w->sessions, sid, wx_now_ms());
}

/* The page's language: what the session chose, else what the browser prefers. */
static bool wants_english(wx_http_req_t *req)
{
    const char *al = wx_http_header(req, "Accept-Language");
    return al != NULL && (al[0] == 'e' || al[0] == 'E') && (al[1] == 'n' || al[1] == 'N');
}

struct wx_session *web_session_open(wx_web_t *w, const char *openid, const struct web_link *l,
                                    wx_http_req_t *req, char sid[WX_TOKEN_TEXT_LEN + 1])
{
    struct wx_session *s = wx_sessions_open(w->sessions, openid, wx_now_ms(), sid);
    s->action = l->action;
    s->arg = l->arg;
    s->english = wants_english(req);
    return s;
}

/* ---- limits -------------------------------------------------------------------------------- */

/* What a client's limits count by: its IPv4 address, or its IPv6 /64 (one subscriber's
 * network holds as many addresses as it likes). */
static void client_net(const char *ip, char *out, size_t cap)
{
    snprintf(out, cap, "%s", ip);
    if (strchr(ip, ':') == NULL) return;
    struct in6_addr a;
    if (inet_pton(AF_INET6, ip, &a) != 1) return;
    memset(a.s6_addr + 8, 0, 8);
    inet_ntop(AF_INET6, &a, out, (socklen_t)cap);
}

bool web_allow(wx_web_t *w, wx_http_req_t *req, const struct wx_session *s, bool post)
{
    int64_t now = wx_now_ms();
    char key[WX_GUARD_KEY_MAX], ip[64];
    client_net(wx_http_peer_ip(req), ip, sizeof ip);
    int n = snprintf(key, sizeof key, "%s:%s", post ? "ip-post" : "ip", ip);
    bool ok = wx_guard_allow(w->guard, key, (size_t)n,
                             post ? w->opt.ip_posts_per_min : w->opt.ip_requests_per_min,
                             LIMIT_WINDOW, now);
    if (ok && post && s != NULL && s->openid[0] != '\0') {
        n = snprintf(key, sizeof key, "openid:%s", s->openid);
        ok = wx_guard_allow(w->guard, key, (size_t)n, w->opt.follower_posts_per_min, LIMIT_WINDOW,
                            now);
    }
    if (!ok) {
        wx_http_add_header(req, "Retry-After", "60");
        web_notice(w, req, 429, s != NULL ? s->english : wants_english(req), "请求过于频繁",
                   "Too many requests", "请一分钟后再试。", "Please try again in a minute.");
    }
    return ok;
}

/* ---- answers ------------------------------------------------------------------------------- */

static void security_headers(wx_http_req_t *req, const char *sid)
{
    wx_http_add_header(req, "Content-Security-Policy", CSP);
    wx_http_add_header(req, "Cache-Control", "no-store");
    wx_http_add_header(req, "Referrer-Policy", "no-referrer");
    if (sid != NULL) {
        char cookie[128];
        snprintf(cookie, sizeof cookie, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict",
                 WEB_COOKIE, sid);
        wx_http_add_header(req, "Set-Cookie", cookie);
    }
}

void web_send(wx_web_t *w, wx_http_req_t *req, int status, struct web_page *p, const char *sid)
{
    w->stats.pages++;
    if (status >= 400) w->stats.refused++;
    security_headers(req, sid);
    wx_http_send(req, status, "text/html; charset=utf-8", p->buf, p->len);
    free(p->buf);
    p->buf = NULL;
}

void web_notice(wx_web_t *w, wx_http_req_t *req, int status, bool english, const char *title_zh,
                const char *title_en, const char *text_zh, const char *text_en)
{
    web_notice_sid(w, req, NULL, status, english, title_zh, title_en, text_zh, text_en);
}

void web_notice_sid(wx_web_t *w, wx_http_req_t *req, const char *sid, int status, bool english,
                    const char *title_zh, const char *title_en, const char *text_zh,
                    const char *text_en)
{
    struct web_page p;
    page_begin(&p, english, title_zh, title_en);
    page_raw(&p, "<p class=\"%s\">", status >= 400 ? "notice bad" : "notice");
    page_text(&p, PAGE_T(&p, text_zh, text_en));
    page_raw(&p, "</p>");
    page_end(&p);
    web_send(w, req, status, &p, sid);
}

void web_redirect(wx_web_t *w, wx_http_req_t *req, const char *path, const char *sid)
{
    (void)w;
    security_headers(req, sid);
    wx_http_add_header(req, "Location", path);
    wx_http_send(req, 303, "text/plain; charset=utf-8", "", 0);
}

bool web_form(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, struct wx_form *form)
{
    size_t len = 0;
    const uint8_t *body = wx_http_body(req, &len);
    const char *type = wx_http_header(req, "Content-Type");
    enum wx_form_error e = WX_FORM_MALFORMED;
    if (type != NULL && strncmp(type, "application/x-www-form-urlencoded", 33) == 0) {
        e = len > WX_FORM_BODY_MAX ? WX_FORM_TOO_LARGE
                                   : wx_form_parse((const char *)body, len, form);
    }
    if (e != WX_FORM_OK) {
        web_notice(w, req, e == WX_FORM_TOO_LARGE ? 413 : 400, s->english, "无法处理的表单",
                   "Form refused", wx_form_error_text(e, false), wx_form_error_text(e, true));
        return false;
    }
    const char *csrf = wx_form_get(form, "csrf");
    if (csrf == NULL || !wx_session_csrf_ok(s, csrf)) {
        web_audit(w, req, s->customer_id, s->openid, "form", "bad_csrf");
        web_notice(w, req, 403, s->english, "页面已过期", "Page expired",
                   "表单已过期或来源不明，请返回重新打开页面。",
                   "This form has expired or did not come from this page. Go back and open the "
                   "page again.");
        return false;
    }
    return true;
}

bool web_post_job(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, struct web_job *j,
                  size_t size)
{
    if (web_worker_post(w->worker, j)) {
        s->busy = true;
        return true;
    }
    wx_wipe(j, size); /* it may hold a password */
    free(j);
    wx_http_add_header(req, "Retry-After", "2");
    web_notice(w, req, 503, s->english, "系统繁忙", "Busy", "请稍后再试。",
               "Please try again in a moment.");
    return false;
}

void web_session_gone(wx_web_t *w, wx_http_req_t *req)
{
    web_notice(w, req, 401, false, "会话已过期", "Session expired",
               "会话已过期，请回到微信重新获取链接。",
               "Your session has ended; ask for a new link in WeChat.");
}

/* ---- the audit log, through the worker ----------------------------------------------------- */

struct audit_job {
    struct web_job job;
    struct wx_audit_entry e;
    char ip[64];
};

static void audit_work(struct web_job *j, wx_web_store_t *store)
{
    struct audit_job *a = (struct audit_job *)j;
    char err[160];
    wx_web_store_ip_hash(store, a->ip, a->e.ip_hash);
    if (wx_web_store_audit(store, &a->e, err, sizeof err) != 0) {
        WX_ERROR("web: audit entry not written: %s", err);
    }
}

static void audit_done(struct web_job *j, bool gone)
{
    (void)gone;
    free(j);
}

void web_audit(wx_web_t *w, wx_http_req_t *req, uint32_t customer_id, const char *openid,
               const char *action, const char *result)
{
    struct audit_job *a = wx_calloc(1, sizeof *a);
    a->job.work = audit_work;
    a->job.done = audit_done;
    a->e.at_ms = wx_now_ms();
    a->e.customer_id = customer_id;
    snprintf(a->e.openid, sizeof a->e.openid, "%s", openid != NULL ? openid : "");
    snprintf(a->e.action, sizeof a->e.action, "%s", action);
    snprintf(a->e.result, sizeof a->e.result, "%s", result);
    snprintf(a->ip, sizeof a->ip, "%s", req != NULL ? wx_http_peer_ip(req) : "");
    WX_INFO("web: %s %s (customer %" PRIu32 ")", action, result, customer_id);
    if (!web_worker_post(w->worker, &a->job)) {
        /* the queue is full: an entry must never be lost silently */
        WX_ERROR("web: audit queue full; entry %s %s (customer %" PRIu32 ") written to the log "
                 "only",
                 action, result, customer_id);
        free(a);
    }
}

/* ---- lockouts kept across restarts ---------------------------------------------------------- */

struct lock_job {
    struct web_job job;
    uint32_t id;
    enum wx_password_kind kind;
    int64_t until_ms;
};

static void lock_work(struct web_job *j, wx_web_store_t *store)
{
    struct lock_job *l = (struct lock_job *)j;
    char err[160];
    if (wx_web_store_set_lock(store, l->id, l->kind, l->until_ms, err, sizeof err) != 0) {
        WX_ERROR("web: lockout not kept: %s", err);
    }
}

void web_lock_changed(wx_web_t *w, uint32_t id, enum wx_password_kind kind, int64_t until_ms)
{
    struct lock_job *l = wx_calloc(1, sizeof *l);
    l->job.work = lock_work;
    l->job.done = audit_done; /* nothing to answer: it only frees */
    l->id = id;
    l->kind = kind;
    l->until_ms = until_ms;
    if (!web_worker_post(w->worker, &l->job)) {
        WX_ERROR("web: worker full; a lockout of %" PRIu32 " holds until a restart only", id);
        free(l);
    }
}

/* ---- answers that wait for the journal ---------------------------------------------------- */

struct web_wait {
    struct web_wait *next;
    uint64_t seq;
    void (*fn)(void *arg, bool cancelled);
    void *arg;
};

void web_after_durable(wx_web_t *w, uint64_t seq, void (*fn)(void *arg, bool cancelled), void *arg)
{
    if (wx_hub_is_durable(w->hub, seq)) {
        fn(arg, false);
        return;
    }
    struct web_wait *x = wx_calloc(1, sizeof *x);
    x->seq = seq;
    x->fn = fn;
    x->arg = arg;
    x->next = w->waits;
    w->waits = x;
}

static void on_durable(void *arg, uint64_t seq)
{
    wx_web_t *w = arg;
    struct web_wait **p = &w->waits;
    while (*p != NULL) {
        struct web_wait *x = *p;
        if (x->seq > seq) {
            p = &x->next;
            continue;
        }
        *p = x->next;
        x->fn(x->arg, false);
        free(x);
    }
    if (w->stopping && w->waits == NULL) wx_hub_settle(w->hub);
}

static void cancel_waits(wx_web_t *w)
{
    while (w->waits != NULL) {
        struct web_wait *x = w->waits;
        w->waits = x->next;
        x->fn(x->arg, true);
        free(x);
    }
}

static void on_stop(void *arg)
{
    wx_web_t *w = arg;
    w->stopping = true;
}

static bool is_busy(void *arg)
{
    const wx_web_t *w = arg;
    return w->waits != NULL || w->jobs_out > 0 || w->oauth_out > 0;
}

/* ---- routing -------------------------------------------------------------------------------- */

static void static_css(wx_web_t *w, wx_http_req_t *req)
{
    (void)w;
    wx_http_add_header(req, "Cache-Control", "public, max-age=86400");
    wx_http_add_header(req, "Content-Security-Policy", CSP);
    wx_http_send(req, 200, "text/css; charset=utf-8", web_css, strlen(web_css));
}

/* "/m/txn/123" → 123; 0 for anything else. */
static uint64_t seq_of(const char *s)
{
    uint64_t v = 0;
    if (*s == '\0' || strlen(s) > 19) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    return v;
}

/* ?lang=en or ?lang=zh switches the session's language. */
static void language(wx_http_req_t *req, struct wx_session *s)
{
    char lang[4];
    const char *q = wx_http_query(req);
    if (s != NULL && q != NULL && wx_http_query_param(q, "lang", lang, sizeof lang) >= 0) {
        s->english = strcmp(lang, "en") == 0;
    }
}

/*
 * Whether the session may do a: a session does what its link was for (a transaction's
 * details lead on to the cards, to lock one), so a link for one thing opens no other.
 */
static bool came_for(wx_web_t *w, wx_http_req_t *req, const struct wx_session *s, enum web_action a)
{
    bool ok = s->action == a || (a == WEB_GO_CARDS && s->action == WEB_GO_TXN);
    if (!ok) {
        web_notice(w, req, 403, s->english, "请重新获取链接", "Ask for a new link",
                   "这个安全链接不能办理该业务。请回到微信，发送您要办理的业务获取新的链接。",
                   "This secure link is not for that. Go back to WeChat and ask for what you "
                   "want to do.");
    }
    return ok;
}

static void no_session(wx_web_t *w, wx_http_req_t *req)
{
    web_notice(
        w, req, 401, wants_english(req), "请从微信打开", "Open this from WeChat",
        "会话不存在或已过期。请回到微信公众号，发送“绑定”或您要办理的业务，获取新的安全链接。",
        "Your session has ended or never began. Go back to the bank's WeChat account and "
        "send what you want to do (e.g. \"bind\") to get a new secure link.");
}

/* The pages a logged-in session may GET (the login form stands in for them before). */
static bool page_known(const char *path)
{
    return strcmp(path, "/m/bind") == 0 || strcmp(path, "/m/login") == 0 ||
           strcmp(path, "/m/unbind") == 0 || strcmp(path, "/m/cards") == 0 ||
           (strncmp(path, "/m/txn/", 7) == 0 && seq_of(path + 7) != 0);
}

static void on_get(wx_web_t *w, wx_http_req_t *req, const char *path)
{
    char sid[WX_TOKEN_TEXT_LEN + 1];
    if (web_test_route(req, path)) return;
    if (strcmp(path, "/m/static/app.css") == 0) {
        static_css(w, req);
        return;
    }
    if (strncmp(path, "/m/go/", 6) == 0) {
        if (web_allow(w, req, NULL, false)) entry_go(w, req, path + 6);
        return;
    }
    if (strcmp(path, "/m/oauth") == 0) {
        if (web_allow(w, req, NULL, false)) entry_oauth(w, req);
        return;
    }
    struct wx_session *s = web_session(w, req, sid);
    if (!web_allow(w, req, s, false)) return;
    if (strncmp(path, "/m/txn/", 7) == 0 && seq_of(path + 7) != 0) {
        if (s == NULL) {
            entry_details(w, req, seq_of(path + 7));
            return;
        }
        s->action = WEB_GO_TXN;
        s->arg = seq_of(path + 7);
    }
    if (s == NULL) {
        no_session(w, req);
        return;
    }
    language(req, s);
    size_t len = strlen(path);
    if (strncmp(path, "/m/captcha/", 11) == 0 && len > 15 && strcmp(path + len - 4, ".png") == 0) {
        char id[sizeof s->captcha.id];
        size_t n = len - 15;
        if (n >= sizeof id) n = sizeof id - 1;
        memcpy(id, path + 11, n);
        id[n] = '\0';
        captcha_picture(w, req, s, id);
    } else if (strcmp(path, "/m/password") == 0) {
        reset_page(w, req, s, sid);
    } else if (!page_known(path)) {
        web_notice(w, req, 404, s->english, "页面不存在", "Not found", "没有这个页面。",
                   "There is no such page.");
    } else if (s->customer_id == 0) {
        login_page(w, req, s, sid, NULL, NULL, NULL);
    } else if (strcmp(path, "/m/bind") == 0 || strcmp(path, "/m/login") == 0) {
        bind_status(w, req, s);
    } else if (strcmp(path, "/m/unbind") == 0) {
        if (came_for(w, req, s, WEB_GO_UNBIND)) actions_page(w, req, s, sid, WEB_GO_UNBIND);
    } else if (strcmp(path, "/m/cards") == 0) {
        if (came_for(w, req, s, WEB_GO_CARDS)) actions_page(w, req, s, sid, WEB_GO_CARDS);
    } else { /* /m/txn/<seq>, the last of page_known's */
        actions_page(w, req, s, sid, WEB_GO_TXN);
    }
}

static void on_post(wx_web_t *w, wx_http_req_t *req, const char *path)
{
    char sid[WX_TOKEN_TEXT_LEN + 1];
    struct wx_session *s = web_session(w, req, sid);
    if (!web_allow(w, req, s, true)) return;
    if (s == NULL) {
        no_session(w, req);
        return;
    }
    if (s->busy) {
        web_notice(w, req, 409, s->english, "请稍候", "One moment",
                   "上一个请求仍在处理中，请稍后再试。",
                   "Your previous request is still being handled; try again in a moment.");
        return;
    }
    if (strcmp(path, "/m/login") == 0) {
        login_post(w, req, s, sid);
    } else if (strcmp(path, "/m/password/code") == 0) {
        reset_post_code(w, req, s, sid);
    } else if (strcmp(path, "/m/password") == 0) {
        reset_post(w, req, s, sid);
    } else if (s->customer_id == 0) {
        login_page(w, req, s, sid, "请先登录。", "Please log in first.", NULL);
    } else if (strcmp(path, "/m/unbind") == 0) {
        if (came_for(w, req, s, WEB_GO_UNBIND)) actions_post(w, req, s, sid, path);
    } else if (strcmp(path, "/m/card/lock") == 0 || strcmp(path, "/m/card/unlock") == 0) {
        if (came_for(w, req, s, WEB_GO_CARDS)) actions_post(w, req, s, sid, path);
    } else {
        web_notice(w, req, 404, s->english, "页面不存在", "Not found", "没有这个页面。",
                   "There is no such page.");
    }
}

static void on_request(wx_http_req_t *req, void *arg)
{
    wx_web_t *w = arg;
    const char *path = wx_http_path(req);
    if (w->stopping) {
        wx_http_add_header(req, "Retry-After", "5");
        wx_http_error(req, 503, "the bank is restarting");
        return;
    }
    switch (wx_http_method(req)) {
    case WX_HTTP_GET:
    case WX_HTTP_HEAD:
        on_get(w, req, path);
        break;
    case WX_HTTP_POST:
        on_post(w, req, path);
        wx_wipe(&w->form, sizeof w->form); /* handlers copied what they keep */
        break;
    default:
        wx_http_add_header(req, "Allow", "GET, HEAD, POST");
        wx_http_error(req, 405, "method not allowed");
        break;
    }
}

/* ---- links ------------------------------------------------------------------------------------
 */

int wx_web_link(wx_web_t *w, const char *openid, const char *action, int64_t now_ms, char *url,
                size_t cap)
{
    struct web_link l = {.action = (uint8_t)web_action_by_name(action)};
    if (l.action == WEB_GO_NONE || !wx_openid_valid(openid)) return -1;
    snprintf(l.openid, sizeof l.openid, "%s", openid);
    char token[WX_TOKEN_TEXT_LEN + 1];
    wx_tokens_issue(w->links, &l, sizeof l, now_ms, w->opt.link_life_ms, token);
    int n = snprintf(url, cap, "%s/m/go/%s", w->public_url, token);
    if (n <= 0 || (size_t)n >= cap) return -1;
    return (int)((w->opt.link_life_ms + 59999) / 60000);
}

/* ---- start and stop ------------------------------------------------------------------------- */

wx_web_t *wx_web_start(wx_hub_t *hub, wx_http_t *http, wx_wechat_api_t *api, wx_fetch_t *fetch,
                       const struct wx_web_options *opt, char *err, size_t errlen)
{
    wx_web_t *w = wx_calloc(1, sizeof *w);
    w->hub = hub;
    w->http = http;
    w->opt = *opt;
    w->api = opt->oauth ? api : NULL;
    if (opt->oauth && api == NULL) {
        /* never fall back silently to links alone: they trust whoever holds one */
        snprintf(err, errlen,
                 "web.oauth: needs the WeChat API (wechat.secret); set web.oauth = "
                 "false to trust the one-time links alone");
        free(w);
        return NULL;
    }
    snprintf(w->appid, sizeof w->appid, "%s", opt->appid != NULL ? opt->appid : "");
    snprintf(w->oauth_url, sizeof w->oauth_url, "%s", opt->oauth_url != NULL ? opt->oauth_url : "");
    if (opt->public_url != NULL && opt->public_url[0] != '\0') {
        snprintf(w->public_url, sizeof w->public_url, "%s", opt->public_url);
    } else {
        snprintf(w->public_url, sizeof w->public_url, "https://%s", wx_http_tls_address(http));
    }
    size_t n = strlen(w->public_url);
    while (n > 0 && w->public_url[n - 1] == '/')
        w->public_url[--n] = '\0';
    if (opt->sms_url != NULL && opt->sms_url[0] != '\0') {
        struct wx_sms_options so = {.url = opt->sms_url,
                                    .auth_header = opt->sms_auth_header,
                                    .body_template = opt->sms_body,
                                    .timeout_ms = opt->sms_timeout_ms};
        w->sms = wx_sms_client_new(fetch, &so, err, errlen);
        if (w->sms == NULL) goto fail;
    }
    w->links = wx_tokens_new(LINKS_MAX);
    w->sessions = wx_sessions_new(SESSIONS_MAX);
    wx_sessions_set_life(w->sessions, opt->session_idle_ms, opt->session_max_ms);
    w->guard = wx_guard_new(GUARD_MAX, opt->tz_offset_minutes);
    w->locks = wx_guard_new(GUARD_MAX, opt->tz_offset_minutes);
    wx_guard_set_login_lock(w->locks, opt->login_lock_ms);
    wx_random_bytes(w->captcha_key, sizeof w->captcha_key);
    uint8_t junk[24];
    wx_random_bytes(junk, sizeof junk);
    if (wx_password_hash(&opt->cost, (const char *)junk, sizeof junk, w->decoy) != 0) {
        snprintf(err, errlen, "web.password_memory_kib: Argon2id cannot hash at this cost");
        goto fail;
    }
    w->worker = web_worker_start(w, true, err, errlen);
    if (w->worker == NULL) goto fail;
    w->drawer = web_worker_start(w, false, err, errlen);
    if (w->drawer == NULL) goto fail;
    struct wx_hub_adapter ad = {
        .name = "web", .durable = on_durable, .stop = on_stop, .busy = is_busy, .arg = w};
    wx_hub_attach(hub, &ad);
    wx_http_route_secure(http, "/m/", true, on_request, w);
    return w;
fail:
    wx_web_stop(w);
    wx_web_free(w);
    return NULL;
}

void wx_web_stop(wx_web_t *w)
{
    if (w == NULL) return;
    w->stopping = w->stopped = true;
    web_worker_stop(w->drawer);
    web_worker_stop(w->worker);
    w->drawer = w->worker = NULL;
    cancel_waits(w);
}

void wx_web_free(wx_web_t *w)
{
    if (w == NULL) return;
    wx_web_stop(w);
    wx_sms_client_free(w->sms);
    wx_tokens_free(w->links);
    wx_sessions_free(w->sessions);
    wx_guard_free(w->guard);
    wx_guard_free(w->locks);
    wx_wipe(w->captcha_key, sizeof w->captcha_key);
    free(w);
}

void wx_web_stats(const wx_web_t *w, struct wx_web_stats *out)
{
    *out = w->stats;
    out->sessions = (unsigned)wx_sessions_count(w->sessions);
}
