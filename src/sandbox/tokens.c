/*
 * tokens.c - the platform's credentials: access tokens (/cgi-bin/token and the separate
 * stable_token lineage), OAuth2 web authorization codes, and what every API call goes
 * through first: its counter, the injected fault, the access_token check. The SMS gateway's
 * calls go through the same counter and faults (those a gateway can suffer).
 *
 * The rules are the documented ones (vectors/wechat/README.md §5.1, §5.5): a token lives
 * expires_in seconds; each /cgi-bin/token fetch makes the previous token invalid five minutes
 * later (both work during the overlap); stable_token returns the same token until five
 * minutes before it expires unless force_refresh (20 a day, 30 s apart) replaces it at once;
 * the two lineages never invalidate each other. OAuth codes are single-use and live five
 * minutes. Errors carry the platform's codes and messages, with a request id ("rid") as
 * the platform appends, so no client is tempted to match errmsg text.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crypto.h"
#include "util/log.h"

#define OVERLAP_MS          (5 * 60 * 1000LL) /* old token still valid after a refresh */
#define CODE_TTL_MS         (5 * 60 * 1000LL)
#define TOKEN_DAILY_MAX     2000 /* /cgi-bin/token per day */
#define STABLE_FORCE_DAILY  20
#define STABLE_FORCE_GAP_MS (30 * 1000LL)
#define DAY_MS              (86400 * 1000LL)
#define QUERY_VALUE_MAX     1100 /* a query parameter we read (a redirect_uri is the longest) */

static const char *const endpoint_names[SB_EP_COUNT] = {
    [SB_EP_TOKEN] = "token",
    [SB_EP_STABLE_TOKEN] = "stable_token",
    [SB_EP_TEMPLATE_SEND] = "template_send",
    [SB_EP_CUSTOM_SEND] = "custom_send",
    [SB_EP_MENU_CREATE] = "menu_create",
    [SB_EP_MEDIA_UPLOAD] = "media_upload",
    [SB_EP_OAUTH_TOKEN] = "oauth_access_token",
    [SB_EP_OAUTH_AUTHORIZE] = "oauth_authorize",
    [SB_EP_CALLBACK_IP] = "callback_ip",
    [SB_EP_SMS] = "sms",
};

struct fault_kind {
    const char *name;
    int errcode; /* 0: not an errcode answer */
    const char *errmsg;
    bool token_class; /* only spoils calls that carry an access_token */
    bool sms;         /* may name the SMS gateway (errcodes mean nothing there) */
};

static const struct fault_kind fault_kinds[SB_FAULT_KINDS] = {
    [SB_FAULT_NONE] = {"none", 0, NULL, false, true},
    [SB_FAULT_TOKEN_EXPIRED] = {"token_expired", 42001, "access_token expired", true, false},
    [SB_FAULT_INVALID_TOKEN] = {"invalid_token", 40001,
                                "invalid credential, access_token is invalid or not latest", true,
                                false},
    [SB_FAULT_BAD_TOKEN] = {"bad_token", 40014, "invalid access_token", true, false},
    [SB_FAULT_QUOTA] = {"quota", 45009, "reach max api daily quota limit", false, false},
    [SB_FAULT_BUSY] = {"busy", -1, "system error", false, false},
    [SB_FAULT_HTTP500] = {"http500", 0, NULL, false, true},
    [SB_FAULT_TIMEOUT] = {"timeout", 0, NULL, false, true},
    [SB_FAULT_GARBAGE] = {"garbage", 0, NULL, false, true},
    [SB_FAULT_SLOW] = {"slow", 0, NULL, false, true},
};

/* ---- answers --------------------------------------------------------------------------------- */

static void count_errcode(struct wx_sandbox *sb, int code)
{
    struct sb_stats *s = &sb->stats;
    for (unsigned i = 0; i < s->nerrcodes; i++) {
        if (s->errcodes[i].code == code) {
            s->errcodes[i].n++;
            return;
        }
    }
    if (s->nerrcodes < SB_ERRCODES_MAX) {
        s->errcodes[s->nerrcodes].code = code;
        s->errcodes[s->nerrcodes++].n = 1;
    }
}

void sb_api_reply_text(wx_http_req_t *req, const char *text, size_t len)
{
    /* The platform's own content type for API answers. */
    wx_http_add_header(req, "Cache-Control", "no-cache");
    wx_http_send(req, 200, "application/json; encoding=utf-8", text, len);
}

void sb_api_reply(wx_http_req_t *req, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (text == NULL) WX_FATAL("jansson: out of memory");
    sb_api_reply_text(req, text, strlen(text));
    free(text);
}

void sb_api_error(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep, int code,
                  const char *msg)
{
    uint32_t rid[3];
    char text[256];
    wx_random_bytes(rid, sizeof rid);
    snprintf(text, sizeof text, "%s rid: %08x-%08x-%08x", msg, rid[0], rid[1], rid[2]);
    if (ep < SB_EP_COUNT) sb->stats.errors[ep]++;
    count_errcode(sb, code);
    sb_api_reply(req, json_pack("{s:i,s:s}", "errcode", code, "errmsg", text));
}

void sb_api_ok(wx_http_req_t *req, json_t *extra)
{
    json_t *o = json_pack("{s:i,s:s}", "errcode", 0, "errmsg", "ok");
    if (extra != NULL) {
        json_object_update(o, extra);
        json_decref(extra);
    }
    sb_api_reply(req, o);
}

/* The body of a call, or NULL after answering 44002 (none) or 45002 (over max). */
static const uint8_t *api_body_bytes(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep,
                                     size_t max, size_t *len)
{
    const uint8_t *body = wx_http_body(req, len);
    if (body == NULL) {
        sb_api_error(sb, req, ep, 44002, "empty post data");
        return NULL;
    }
    if (*len > max) {
        sb_api_error(sb, req, ep, 45002, "content size out of limit");
        return NULL;
    }
    return body;
}

bool sb_api_doc(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep, size_t max,
                struct sb_doc *d)
{
    assert(max <= WX_SANDBOX_API_BODY_MAX); /* the scratch buffer's size */
    size_t len;
    const uint8_t *body = api_body_bytes(sb, req, ep, max, &len);
    if (body == NULL) return false;
    if (sb_doc_load(d, sb->scratch, WX_SANDBOX_API_BODY_MAX + 1, body, len, 0) != 0) {
        sb_api_error(sb, req, ep, 47001, "data format error");
        return false;
    }
    return true;
}

json_t *sb_api_body(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep, size_t max)
{
    size_t len;
    const uint8_t *body = api_body_bytes(sb, req, ep, max, &len);
    if (body == NULL) return NULL;
    json_error_t jerr;
    json_t *o = json_loadb((const char *)body, len, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        sb_api_error(sb, req, ep, 47001, "data format error");
        return NULL;
    }
    return o;
}

/* ---- every call ------------------------------------------------------------------------------ */

/* Takes one call from the fault when it applies to a call to ep: the kind to apply, or
 * SB_FAULT_NONE. */
static enum sb_fault_kind fault_take(struct wx_sandbox *sb, enum sb_endpoint ep, bool takes_token)
{
    struct sb_fault *f = &sb->fault;
    /* No endpoint means the platform's: the SMS gateway is another provider. */
    bool aimed = f->endpoint >= 0 ? f->endpoint == (int)ep : ep != SB_EP_SMS;
    if (f->count == 0 || !aimed) return SB_FAULT_NONE;
    const struct fault_kind *k = &fault_kinds[f->kind];
    if (k->token_class && !takes_token) return SB_FAULT_NONE;
    assert(ep != SB_EP_SMS || k->sms);
    f->count--;
    sb->stats.faults_applied++;
    WX_INFO("sandbox: fault %s on %s (%u left)", k->name, endpoint_names[ep], f->count);
    return f->kind;
}

/* Holds req: "timeout" lets it go with a 504 after SB_HOLD_S, "slow" runs self on it after
 * the fault's delay. Both count against WX_SANDBOX_HELD_MAX; past it req gets a 503. */
static void hold(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep,
                 enum sb_fault_kind kind, sb_handler self)
{
    if (sb->nheld >= WX_SANDBOX_HELD_MAX) {
        sb->stats.errors[ep]++;
        wx_http_error(req, 503, "the sandbox holds too many calls already");
    } else if (kind == SB_FAULT_SLOW) {
        struct sb_pending *p = sb_pending_add(sb, SB_PENDING_SLOW, req, sb->fault.delay_ms);
        p->resume = self;
    } else {
        sb->stats.errors[ep]++;
        sb_pending_add(sb, SB_PENDING_HELD, req, SB_HOLD_S * 1000);
    }
}

bool sb_api_begin(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep, bool takes_token,
                  sb_handler self)
{
    assert(self != NULL);
    if (sb->resuming) {
        /* A slowed call back from its delay: it was counted and faulted when it came. */
        sb->resuming = false;
        return false;
    }
    sb->stats.calls[ep]++;
    enum sb_fault_kind kind = fault_take(sb, ep, takes_token);
    const struct fault_kind *k = &fault_kinds[kind];
    if (kind == SB_FAULT_NONE) return false;
    if (k->errcode != 0) {
        sb_api_error(sb, req, ep, k->errcode, k->errmsg);
    } else if (kind == SB_FAULT_HTTP500) {
        static const char page[] = "<html><head><title>500 Internal Server Error</title></head>"
                                   "<body><center><h1>500 Internal Server Error</h1></center>"
                                   "</body></html>\n";
        sb->stats.errors[ep]++;
        wx_http_send(req, 500, "text/html", page, sizeof page - 1);
    } else if (kind == SB_FAULT_GARBAGE) {
        static const char page[] = "<html><body>upstream busy</body></html>\n";
        sb->stats.errors[ep]++;
        wx_http_send(req, 200, "text/html", page, sizeof page - 1);
    } else {
        hold(sb, req, ep, kind, self);
    }
    return true;
}

/* The token's slot, or NULL. Compared in constant time: tokens are credentials. */
static struct sb_token *token_find(struct wx_sandbox *sb, const char *value, size_t len)
{
    for (size_t i = 0; i < SB_TOKENS_MAX; i++) {
        struct sb_token *t = &sb->tokens[i];
        if (t->value[0] != '\0' && len == SB_TOKEN_LEN && wx_ct_equal(t->value, value, len)) {
            return t;
        }
    }
    return NULL;
}

bool sb_api_token_ok(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep,
                     const char *query)
{
    char tok[SB_TOKEN_LEN + 64];
    int n = wx_http_query_param(query, "access_token", tok, sizeof tok);
    if (n <= 0 && n != -2) {
        sb_api_error(sb, req, ep, 41001, "access_token missing");
        return false;
    }
    struct sb_token *t = n > 0 ? token_find(sb, tok, (size_t)n) : NULL;
    int64_t now = sb_now_ms(sb);
    if (t != NULL && now < t->valid_ms) return true;
    if (t != NULL && t->valid_ms >= t->expires_ms) {
        sb_api_error(sb, req, ep, 42001, "access_token expired");
    } else if (t != NULL || (n == SB_TOKEN_LEN && sb_is_word(tok, SB_TOKEN_LEN))) {
        /* Superseded (or older than what we remember): "not latest". */
        sb_api_error(sb, req, ep, 40001,
                     "invalid credential, access_token is invalid or not latest");
    } else {
        sb_api_error(sb, req, ep, 40014, "invalid access_token");
    }
    return false;
}

/* ---- issuing tokens -------------------------------------------------------------------------- */

/* Counters that reset at the platform's midnight. */
static void roll_day(struct wx_sandbox *sb)
{
    int64_t day = sb_now_ms(sb) / DAY_MS;
    if (day != sb->quota_day) {
        sb->quota_day = day;
        sb->tokens_today = 0;
        sb->stable_forced_today = 0;
    }
}

/* A new token in the least useful slot (free, else the one that went invalid first). */
static struct sb_token *token_new(struct wx_sandbox *sb, bool stable)
{
    struct sb_token *slot = &sb->tokens[0];
    for (size_t i = 0; i < SB_TOKENS_MAX; i++) {
        struct sb_token *t = &sb->tokens[i];
        if (t->value[0] == '\0') {
            slot = t;
            break;
        }
        if (t->valid_ms < slot->valid_ms) slot = t;
    }
    int64_t now = sb_now_ms(sb);
    /* "NN_" like the platform's, then URL-safe characters. */
    uint8_t r;
    wx_random_bytes(&r, 1);
    snprintf(slot->value, 4, "%02u_", 10u + r % 90u);
    sb_random_chars(slot->value + 3, SB_TOKEN_LEN - 3, true);
    slot->stable = stable;
    slot->issued_ms = now;
    slot->expires_ms = now + (int64_t)sb->token_ttl_s * 1000;
    slot->valid_ms = slot->expires_ms;
    return slot;
}

/* Checks appid and secret as /cgi-bin/token does; replies and returns false when wrong. */
static bool credentials_ok(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep,
                           const char *grant_type, const char *want_grant, const char *appid,
                           const char *secret)
{
    size_t sl = secret != NULL ? strlen(secret) : 0;
    if (grant_type == NULL || strcmp(grant_type, want_grant) != 0) {
        sb_api_error(sb, req, ep, 40002, "invalid grant_type");
    } else if (appid == NULL || appid[0] == '\0') {
        sb_api_error(sb, req, ep, 41002, "appid missing");
    } else if (strcmp(appid, sb->appid) != 0) {
        sb_api_error(sb, req, ep, 40013, "invalid appid");
    } else if (sl == 0) {
        sb_api_error(sb, req, ep, 41004, "appsecret missing");
    } else if (sl != strlen(sb->secret) || !wx_ct_equal(secret, sb->secret, sl)) {
        sb_api_error(sb, req, ep, 40125, "invalid appsecret");
    } else {
        return true;
    }
    return false;
}

/* Reads a query parameter into out ("" when absent); NULL when too long or badly encoded. */
static const char *param(const char *query, const char *name, char *out, size_t cap)
{
    int n = wx_http_query_param(query, name, out, cap);
    if (n < 0) out[0] = '\0';
    return n == -2 ? NULL : out;
}

void sb_token_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    if (sb_api_begin(sb, req, SB_EP_TOKEN, false, sb_token_handler)) return;
    char grant[64], appid[64], secret[256];
    const char *g = param(query, "grant_type", grant, sizeof grant);
    const char *a = param(query, "appid", appid, sizeof appid);
    const char *s = param(query, "secret", secret, sizeof secret);
    bool ok = credentials_ok(sb, req, SB_EP_TOKEN, g, "client_credential", a, s);
    wx_wipe(secret, sizeof secret);
    if (!ok) return;
    roll_day(sb);
    if (sb->tokens_today >= TOKEN_DAILY_MAX) {
        sb_api_error(sb, req, SB_EP_TOKEN, 45009, "reach max api daily quota limit");
        return;
    }
    sb->tokens_today++;
    int64_t now = sb_now_ms(sb);
    for (size_t i = 0; i < SB_TOKENS_MAX; i++) {
        struct sb_token *t = &sb->tokens[i];
        if (t->value[0] != '\0' && !t->stable && t->valid_ms > now + OVERLAP_MS) {
            t->valid_ms = now + OVERLAP_MS;
        }
    }
    struct sb_token *t = token_new(sb, false);
    sb->stats.tokens_issued++;
    sb_api_reply(
        req, json_pack("{s:s,s:i}", "access_token", t->value, "expires_in", (int)sb->token_ttl_s));
}

/* The current stable token, or NULL. */
static struct sb_token *stable_current(struct wx_sandbox *sb)
{
    struct sb_token *best = NULL;
    int64_t now = sb_now_ms(sb);
    for (size_t i = 0; i < SB_TOKENS_MAX; i++) {
        struct sb_token *t = &sb->tokens[i];
        if (t->value[0] != '\0' && t->stable && t->valid_ms > now &&
            (best == NULL || t->issued_ms > best->issued_ms)) {
            best = t;
        }
    }
    return best;
}

/* force_refresh: 20 a day, 30 s apart; the old token stops working at once. */
static bool stable_force(struct wx_sandbox *sb, wx_http_req_t *req, struct sb_token *cur)
{
    int64_t now = sb_now_ms(sb);
    roll_day(sb);
    if (sb->stable_forced_today >= STABLE_FORCE_DAILY) {
        sb_api_error(sb, req, SB_EP_STABLE_TOKEN, 45009, "reach max api daily quota limit");
        return false;
    }
    if (sb->stable_forced_ms != 0 && now - sb->stable_forced_ms < STABLE_FORCE_GAP_MS) {
        sb_api_error(sb, req, SB_EP_STABLE_TOKEN, 45011,
                     "api minute-quota reach limit  mustslower  retry next minute");
        return false;
    }
    sb->stable_forced_today++;
    sb->stable_forced_ms = now;
    if (cur != NULL) cur->valid_ms = now;
    return true;
}

void sb_stable_token_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    (void)query;
    if (sb_api_begin(sb, req, SB_EP_STABLE_TOKEN, false, sb_stable_token_handler)) return;
    json_t *o = sb_api_body(sb, req, SB_EP_STABLE_TOKEN, WX_SANDBOX_PAGE_BODY_MAX);
    if (o == NULL) return;
    json_t *force = json_object_get(o, "force_refresh");
    bool ok =
        credentials_ok(sb, req, SB_EP_STABLE_TOKEN, sb_json_str(o, "grant_type"),
                       "client_credential", sb_json_str(o, "appid"), sb_json_str(o, "secret"));
    bool forced = json_is_true(force);
    json_decref(o);
    if (!ok) return;
    int64_t now = sb_now_ms(sb);
    struct sb_token *cur = stable_current(sb);
    if (forced && !stable_force(sb, req, cur)) return;
    if (forced || cur == NULL || cur->expires_ms - now < OVERLAP_MS) {
        /* Pre-rotation: a token about to expire keeps working, a new one is handed out. */
        cur = token_new(sb, true);
        sb->stats.stable_tokens_issued++;
    }
    sb_api_reply(req, json_pack("{s:s,s:I}", "access_token", cur->value, "expires_in",
                                (json_int_t)((cur->expires_ms - now) / 1000)));
}

void sb_callback_ip_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    if (sb_api_begin(sb, req, SB_EP_CALLBACK_IP, true, sb_callback_ip_handler) ||
        !sb_api_token_ok(sb, req, SB_EP_CALLBACK_IP, query)) {
        return;
    }
    sb_api_reply(req, json_pack("{s:[s]}", "ip_list", "127.0.0.1"));
}

/* ---- OAuth2 web authorization ---------------------------------------------------------------- */

/* True when a state is at most 128 bytes of [a-zA-Z0-9] (the documented rule). */
static bool state_ok(const char *s)
{
    size_t n = strlen(s);
    return n <= 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n;
}

/* Builds redirect_uri?code=C&state=S (before any #fragment) into out. */
static bool redirect_target(const char *uri, const char *code, const char *state, char *out,
                            size_t cap)
{
    const char *hash = strchr(uri, '#');
    size_t base = hash != NULL ? (size_t)(hash - uri) : strlen(uri);
    char sep = memchr(uri, '?', base) != NULL ? '&' : '?';
    int n = snprintf(out, cap, "%.*s%ccode=%s&state=%s%s", (int)base, uri, sep, code, state,
                     hash != NULL ? hash : "");
    return n > 0 && (size_t)n < cap;
}

/* True when a redirect_uri is an http(s) URL of visible ASCII (nothing that could end the
 * Location header early). */
static bool redirect_uri_ok(const char *u)
{
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) return false;
    for (const char *p = u; *p != '\0'; p++) {
        if (*p <= 0x20 || *p >= 0x7f) return false;
    }
    return true;
}

/* The parameters of an authorization request. */
struct authorize_params {
    char appid[64], uri[QUERY_VALUE_MAX], type[32], scope[32], state[160];
    char openid[WX_OPENID_MAX + 1];
};

/* Reads and checks them; returns why they are wrong (the page WeChat shows), or NULL. */
static const char *authorize_check(const char *query, struct authorize_params *p)
{
    if (param(query, "appid", p->appid, sizeof p->appid) == NULL ||
        param(query, "redirect_uri", p->uri, sizeof p->uri) == NULL ||
        param(query, "response_type", p->type, sizeof p->type) == NULL ||
        param(query, "scope", p->scope, sizeof p->scope) == NULL ||
        param(query, "state", p->state, sizeof p->state) == NULL ||
        param(query, "openid", p->openid, sizeof p->openid) == NULL) {
        return "参数错误 (a parameter is too long or badly encoded)";
    }
    if (!redirect_uri_ok(p->uri)) return "10003 redirect_uri 参数错误 (invalid redirect_uri)";
    if (strcmp(p->type, "code") != 0) return "response_type 参数错误 (must be code)";
    if (strcmp(p->scope, "snsapi_base") != 0 && strcmp(p->scope, "snsapi_userinfo") != 0) {
        return "10005 scope 参数错误或没有 scope 权限 (invalid scope)";
    }
    if (!state_ok(p->state)) return "state 参数错误 (at most 128 of [a-zA-Z0-9])";
    return NULL;
}

void sb_oauth_authorize_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    struct authorize_params p;
    sb->stats.calls[SB_EP_OAUTH_AUTHORIZE]++;
    const char *why = authorize_check(query, &p);
    if (why == NULL && strcmp(p.appid, sb->appid) != 0) why = "appid 参数错误 (invalid appid)";
    /* Who authorizes: &openid= (tests), else the follower selected on the page. */
    const char *who = p.openid[0] != '\0' ? p.openid : sb->selected;
    const struct sb_follower *f = who[0] != '\0' ? sb_follower_find(sb, who) : NULL;
    int status = 400;
    if (why == NULL && f == NULL) {
        why = "请先在沙箱页面选择一位关注者 (pick a follower on the sandbox page, or add &openid=)";
        status = 409;
    }
    char target[QUERY_VALUE_MAX + 256];
    struct sb_code *c = &sb->codes[sb->next_code % WX_SANDBOX_OAUTH_CODES_MAX];
    char code[SB_CODE_LEN + 1];
    sb_random_chars(code, SB_CODE_LEN, false);
    if (why == NULL && !redirect_target(p.uri, code, p.state, target, sizeof target)) {
        why = "10003 redirect_uri 过长 (redirect_uri too long)";
    }
    if (why != NULL) {
        sb->stats.errors[SB_EP_OAUTH_AUTHORIZE]++;
        wx_http_error(req, status, why);
        return;
    }
    sb->next_code++;
    memset(c, 0, sizeof *c);
    memcpy(c->code, code, sizeof code);
    snprintf(c->openid, sizeof c->openid, "%s", f->openid);
    snprintf(c->scope, sizeof c->scope, "%s", p.scope);
    c->expires_ms = sb_now_ms(sb) + CODE_TTL_MS;
    wx_http_add_header(req, "Location", target);
    wx_http_send(req, 302, "text/plain; charset=utf-8", "", 0);
}

static struct sb_code *code_find(struct wx_sandbox *sb, const char *code)
{
    for (size_t i = 0; i < WX_SANDBOX_OAUTH_CODES_MAX; i++) {
        if (sb->codes[i].code[0] != '\0' && strcmp(sb->codes[i].code, code) == 0) {
            return &sb->codes[i];
        }
    }
    return NULL;
}

void sb_oauth_token_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    if (sb_api_begin(sb, req, SB_EP_OAUTH_TOKEN, false, sb_oauth_token_handler)) return;
    char grant[64], appid[64], secret[256], code[64];
    const char *g = param(query, "grant_type", grant, sizeof grant);
    const char *a = param(query, "appid", appid, sizeof appid);
    const char *s = param(query, "secret", secret, sizeof secret);
    const char *cd = param(query, "code", code, sizeof code);
    bool ok = credentials_ok(sb, req, SB_EP_OAUTH_TOKEN, g, "authorization_code", a, s);
    wx_wipe(secret, sizeof secret);
    if (!ok) return;
    struct sb_code *c = cd != NULL && cd[0] ? code_find(sb, cd) : NULL;
    if (cd == NULL || cd[0] == '\0') {
        sb_api_error(sb, req, SB_EP_OAUTH_TOKEN, 41008, "missing code");
    } else if (c == NULL) {
        sb_api_error(sb, req, SB_EP_OAUTH_TOKEN, 40029, "invalid code");
    } else if (c->used) {
        sb_api_error(sb, req, SB_EP_OAUTH_TOKEN, 40163, "code been used");
    } else if (sb_now_ms(sb) >= c->expires_ms) {
        sb_api_error(sb, req, SB_EP_OAUTH_TOKEN, 42003, "code expired");
    } else {
        char access[SB_TOKEN_LEN - 29], refresh[SB_TOKEN_LEN - 29];
        c->used = true;
        sb_random_chars(access, sizeof access - 1, true);
        sb_random_chars(refresh, sizeof refresh - 1, true);
        sb_api_reply(req,
                     json_pack("{s:s,s:i,s:s,s:s,s:s}", "access_token", access, "expires_in", 7200,
                               "refresh_token", refresh, "openid", c->openid, "scope", c->scope));
    }
}

/* ---- faults and counters (the page API's test hooks) ----------------------------------------- */

static int endpoint_parse(const char *name)
{
    for (int i = 0; i < SB_EP_COUNT; i++) {
        if (strcmp(name, endpoint_names[i]) == 0) return i;
    }
    return -2;
}

/* Reads a fault request into f; NULL, or what is wrong with it. */
static const char *fault_parse(const json_t *o, struct sb_fault *f)
{
    const char *kind = sb_json_str(o, "kind");
    const char *ep = sb_json_str(o, "endpoint");
    const json_t *count = json_object_get(o, "count");
    const json_t *delay = json_object_get(o, "delay_ms");
    int k = -1, e = ep != NULL ? endpoint_parse(ep) : -1;
    for (int i = 0; kind != NULL && i < SB_FAULT_KINDS; i++) {
        if (strcmp(kind, fault_kinds[i].name) == 0) k = i;
    }
    json_int_t n = count == NULL ? 1 : json_is_integer(count) ? json_integer_value(count) : -1;
    json_int_t d = delay == NULL            ? SB_SLOW_DEFAULT_MS
                   : json_is_integer(delay) ? json_integer_value(delay)
                                            : -1;
    if (k < 0 || e == -2 || n < 0 || n > WX_SANDBOX_FAULT_COUNT_MAX) {
        return "fault: {\"kind\": token_expired|invalid_token|bad_token|quota|busy|http500|"
               "timeout|garbage|slow|none, \"count\": 0..1000, \"endpoint\": token|stable_token|"
               "template_send|custom_send|menu_create|media_upload|oauth_access_token|"
               "callback_ip|sms, \"delay_ms\": 0..60000 (slow)}";
    }
    if (d < 0 || d > WX_SANDBOX_SLOW_MS_MAX) return "fault: delay_ms must be 0..60000";
    if (e == SB_EP_SMS && !fault_kinds[k].sms) {
        return "fault: the sms endpoint takes http500, timeout, slow, garbage or none";
    }
    f->kind = (enum sb_fault_kind)k;
    f->count = k == SB_FAULT_NONE ? 0 : (unsigned)n;
    f->endpoint = e;
    f->delay_ms = k == SB_FAULT_SLOW ? (unsigned)d : 0;
    return NULL;
}

/* {"kind", "count", "endpoint": name or null, "delay_ms" (slow only)}. New reference. */
static json_t *fault_json(const struct sb_fault *f)
{
    return json_pack("{s:s,s:i,s:s?,s:o*}", "kind", fault_kinds[f->kind].name, "count",
                     (int)f->count, "endpoint",
                     f->endpoint >= 0 ? endpoint_names[f->endpoint] : NULL, "delay_ms",
                     f->kind == SB_FAULT_SLOW ? json_integer((json_int_t)f->delay_ms) : NULL);
}

void sb_fault_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    (void)query;
    json_t *o = sb_page_body(req);
    if (o == NULL) return;
    struct sb_fault f;
    const char *why = fault_parse(o, &f);
    json_decref(o);
    if (why != NULL) {
        sb_page_error(req, 400, why);
        return;
    }
    sb->fault = f;
    sb_reply_json(req, 200, fault_json(&sb->fault));
}

static json_t *per_endpoint(const uint64_t *v)
{
    json_t *o = json_object();
    for (int i = 0; i < SB_EP_COUNT; i++) {
        json_object_set_new(o, endpoint_names[i], json_integer((json_int_t)v[i]));
    }
    return o;
}

void sb_stats_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    (void)query;
    const struct sb_stats *s = &sb->stats;
    json_t *codes = json_object();
    for (unsigned i = 0; i < s->nerrcodes; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", s->errcodes[i].code);
        json_object_set_new(codes, key, json_integer((json_int_t)s->errcodes[i].n));
    }
    json_t *o = json_pack(
        "{s:I,s:I,s:I,s:o,s:o,s:o,s:o,"
        "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:i},s:{s:I,s:I,s:I,s:I},s:i,s:i,s:i}",
        "tokens_issued", (json_int_t)s->tokens_issued, "stable_tokens_issued",
        (json_int_t)s->stable_tokens_issued, "faults_applied", (json_int_t)s->faults_applied,
        "calls", per_endpoint(s->calls), "errors", per_endpoint(s->errors), "errcodes", codes,
        "fault", fault_json(&sb->fault), "webhook", "messages", (json_int_t)s->webhook_messages,
        "attempts", (json_int_t)s->webhook_attempts, "retries", (json_int_t)s->webhook_retries,
        "replies", (json_int_t)s->webhook_replies, "invalid", (json_int_t)s->webhook_invalid,
        "failed", (json_int_t)s->webhook_failed, "in_flight", (int)sb->ndeliveries, "pos", "sent",
        (json_int_t)s->pos_sent, "approved", (json_int_t)s->pos_approved, "declined",
        (json_int_t)s->pos_declined, "failed", (json_int_t)s->pos_failed, "followers",
        (int)sb->nfollowers, "held", (int)sb->nheld, "polls", (int)sb->npolls);
    json_object_set_new(o, "template_repeats", json_integer((json_int_t)s->template_repeats));
    json_object_set_new(o, "sms_sent", json_integer((json_int_t)s->sms_sent));
    json_object_set_new(o, "sms_duplicates", json_integer((json_int_t)s->sms_duplicates));
    sb_reply_json(req, 200, o);
}
