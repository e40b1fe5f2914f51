/*
 * entry.c - how a follower arrives: a one-time link from chat, then (with OAuth) WeChat says
 * who is opening it.
 *
 * A link names the follower it was sent to and what it is for. Taking it opens a session for
 * that follower; with web.oauth the pages first ask WeChat (snsapi_base: silent, the follower
 * sees nothing) which follower is really looking, and a link opened by another WeChat opens
 * nothing. The OAuth round trip carries a second one-time token as its state, because the
 * session cookie is SameSite=Strict and does not come back on WeChat's redirect.
 *
 * The session's cookie is set on a small page that moves on by itself (meta refresh) rather
 * than on a redirect: a browser following a redirect that began on another site would not send
 * a Strict cookie to the next page.
 */
#include "web/web_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

#define OAUTH_COOKIE "__Host-wxo" /* the OAuth state this browser was sent off with */

static void link_refused(wx_web_t *w, wx_http_req_t *req, bool english)
{
    web_audit(w, req, 0, "", "link_open", "invalid");
    web_notice(
        w, req, 410, english, "链接已失效", "Link no longer valid",
        "这个安全链接已使用过或已过期（链接只能使用一次，且几分钟后失效）。请回到微信公众号重新"
        "发送您要办理的业务，获取新的链接。",
        "This secure link has been used or has expired (a link works once, for a few "
        "minutes). Go back to the bank's WeChat account and ask again for a new one.");
}

/* Opens the session and moves on to the action's page. */
static void arrive(wx_web_t *w, wx_http_req_t *req, const char *openid, const struct web_link *l)
{
    char sid[WX_TOKEN_TEXT_LEN + 1];
    struct wx_session *s = web_session_open(w, openid, l, req, sid);
    const char *path = l->action == WEB_GO_TXN ? "/m/cards" : web_action_path(l->action);
    char target[48];
    if (l->action == WEB_GO_TXN) {
        snprintf(target, sizeof target, "/m/txn/%" PRIu64, l->arg);
        path = target;
    }
    struct web_page p;
    page_begin(&p, s->english, "正在打开安全页面", "Opening the secure page");
    /* the path is one of ours: no outside text in the markup */
    page_raw(&p, "<meta http-equiv=\"refresh\" content=\"0;url=%s\">", path);
    page_raw(&p, "<p class=\"panel\"><a href=\"%s\">%s</a></p>", path,
             PAGE_T(&p, "如未自动跳转，请点此继续", "Continue"));
    page_end(&p);
    web_send(w, req, 200, &p, sid);
}

/* ---- OAuth: which follower is opening the link -------------------------------------------- */

static int url_encode(const char *in, char *out, size_t cap)
{
    static const char HEX[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-_.~", *p) != NULL;
        if (o + 4 > cap) return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = HEX[*p >> 4];
            out[o++] = HEX[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

/* 302 to WeChat's authorize page; it comes back to /m/oauth with a code and our state. */
static void ask_wechat(wx_web_t *w, wx_http_req_t *req, const struct web_link *l)
{
    char state[WX_TOKEN_TEXT_LEN + 1], back[WX_WEB_URL_MAX + 16], back_enc[3 * sizeof back];
    char location[2 * WX_WEB_URL_MAX + sizeof back_enc + 128];
    wx_tokens_issue(w->links, l, sizeof *l, wx_now_ms(), w->opt.link_life_ms, state);
    snprintf(back, sizeof back, "%s/m/oauth", w->public_url);
    if (url_encode(back, back_enc, sizeof back_enc) != 0) {
        wx_http_error(req, 500, "web.public_url is too long");
        return;
    }
    snprintf(location, sizeof location,
             "%s?appid=%s&redirect_uri=%s&response_type=code&scope=snsapi_base&state=%s"
             "#wechat_redirect",
             w->oauth_url, w->appid, back_enc, state);
    /* The state is bound to this browser: a /m/oauth URL taken from another one (an
     * attacker's own, sent to a victim to have the victim's cards bound to the attacker's
     * WeChat) finds no such cookie. Lax: it must come back on WeChat's redirect. */
    char cookie[160];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=%lld",
             OAUTH_COOKIE, state, (long long)(w->opt.link_life_ms / 1000));
    wx_http_add_header(req, "Set-Cookie", cookie);
    wx_http_add_header(req, "Location", location);
    wx_http_add_header(req, "Cache-Control", "no-store");
    wx_http_add_header(req, "Referrer-Policy", "no-referrer");
    wx_http_send(req, 302, "text/plain; charset=utf-8", "", 0);
}

void entry_go(wx_web_t *w, wx_http_req_t *req, const char *token)
{
    struct web_link l;
    size_t len = 0;
    if (wx_tokens_take(w->links, token, wx_now_ms(), &l, sizeof l, &len) != 1 || len != sizeof l) {
        link_refused(w, req, false);
        return;
    }
    if (w->api != NULL) {
        ask_wechat(w, req, &l);
    } else {
        arrive(w, req, l.openid, &l); /* the link alone: whoever holds it was sent it */
    }
}

void entry_details(wx_web_t *w, wx_http_req_t *req, uint64_t seq)
{
    struct web_link l = {.action = WEB_GO_TXN, .arg = seq};
    if (w->api != NULL) {
        ask_wechat(w, req, &l); /* any follower may ask; the login decides what it sees */
    } else {
        arrive(w, req, "", &l);
    }
}

struct oauth_call {
    wx_web_t *w;
    wx_http_req_t *req;
    struct web_link link;
};

static void on_openid(const struct wx_wechat_api_result *r, void *arg)
{
    struct oauth_call *c = arg;
    wx_web_t *w = c->w;
    w->oauth_out--;
    if (w->stopped) { /* the listener is gone, and its requests with it */
        free(c);
        return;
    }
    wx_http_add_header(c->req, "Set-Cookie",
                       OAUTH_COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
    if (r->cls != WX_WECHAT_API_OK || r->openid[0] == '\0') {
        WX_WARN("web: OAuth code not exchanged (%s: %s)", wx_wechat_api_class_name(r->cls),
                r->errmsg);
        web_notice(w, c->req, 502, false, "暂时无法验证", "Cannot check who you are",
                   "暂时无法向微信确认您的身份，请稍后重新获取链接。",
                   "WeChat could not confirm who you are just now; ask for a new link later.");
    } else if (c->link.openid[0] != '\0' && strcmp(c->link.openid, r->openid) != 0) {
        web_audit(w, c->req, 0, r->openid, "link_open", "other_follower");
        web_notice(w, c->req, 403, false, "链接不属于您", "Not your link",
                   "这个安全链接是发给另一个微信的，不能在这里使用。请在您自己的微信里向公众号"
                   "发送您要办理的业务。",
                   "This secure link was sent to another WeChat and cannot be used here. Ask the "
                   "bank's account from your own WeChat.");
    } else {
        web_audit(w, c->req, 0, r->openid, "link_open", "ok");
        arrive(w, c->req, r->openid, &c->link);
    }
    free(c);
    if (w->stopping) wx_hub_settle(w->hub);
}

/* Whether the browser holds the cookie ask_wechat set for this state. */
static bool same_browser(wx_http_req_t *req, const char *state)
{
    char mine[WX_TOKEN_TEXT_LEN + 1];
    const char *cookie = wx_http_header(req, "Cookie");
    return cookie != NULL && wx_cookie_get(cookie, OAUTH_COOKIE, mine, sizeof mine) &&
           strlen(mine) == WX_TOKEN_TEXT_LEN && wx_ct_equal(mine, state, WX_TOKEN_TEXT_LEN);
}

void entry_oauth(wx_web_t *w, wx_http_req_t *req)
{
    char code[160], state[WX_TOKEN_TEXT_LEN + 2];
    const char *q = wx_http_query(req);
    struct oauth_call *c = wx_calloc(1, sizeof *c);
    size_t len = 0;
    if (w->api == NULL || q == NULL || wx_http_query_param(q, "code", code, sizeof code) <= 0 ||
        wx_http_query_param(q, "state", state, sizeof state) != WX_TOKEN_TEXT_LEN) {
        free(c);
        link_refused(w, req, false);
        return;
    }
    if (!same_browser(req, state)) {
        free(c);
        web_audit(w, req, 0, "", "link_open", "other_browser");
        web_notice(w, req, 403, false, "请在原浏览器中打开", "Open it where it began",
                   "这个页面只能在打开安全链接的同一浏览器中继续。请回到微信重新获取链接。",
                   "This page only continues in the browser that opened the secure link. Ask "
                   "for a new link in WeChat.");
        return;
    }
    if (wx_tokens_take(w->links, state, wx_now_ms(), &c->link, sizeof c->link, &len) != 1 ||
        len != sizeof c->link) {
        free(c);
        link_refused(w, req, false);
        return;
    }
    c->w = w;
    c->req = req;
    w->oauth_out++; /* before the call: its answer could come at once */
    if (wx_wechat_api_oauth_openid(w->api, code, on_openid, c) != 0) {
        w->oauth_out--;
        free(c);
        web_notice(w, req, 400, false, "链接无效", "Invalid link", "微信返回的授权码无效。",
                   "WeChat's code is not valid.");
    }
}
