/*
 * sandbox.c - the sandbox's life cycle and its router under /sandbox/, plus the helpers its
 * files share (the platform's clock, made-up ids, JSON bodies and answers).
 *
 * One prefix route on the HTTP listener leads here; the table below splits it into the
 * platform's API (answered the platform's way: JSON with errcode, 43001/43002 for a wrong
 * method), the SMS gateway (HTTP statuses with {"code", "message"}) and the page's own API
 * (plain HTTP statuses with {"error": ...}).
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/config.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/pan.h"
#include "util/timeutil.h"

/* ---- shared helpers -------------------------------------------------------------------------- */

int64_t sb_now_ms(const struct wx_sandbox *sb)
{
    return wx_now_ms() + sb->clock_offset_ms;
}

void sb_random_chars(char *out, size_t n, bool url_safe)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    unsigned range = url_safe ? 64 : 62;
    uint8_t r[256];
    assert(n < sizeof r);
    wx_random_bytes(r, n);
    for (size_t i = 0; i < n; i++) {
        out[i] = alphabet[r[i] % range]; /* 256 % 64 == 0; 62 leaves a bias no one cares about */
    }
    out[n] = '\0';
}

void sb_new_openid(char out[WX_SANDBOX_OPENID_LEN + 1])
{
    out[0] = 'o';
    sb_random_chars(out + 1, WX_SANDBOX_OPENID_LEN - 1, true);
}

bool sb_is_word(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

size_t sb_utf8_seq(const uint8_t *p, size_t left)
{
    uint8_t c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || n > left || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4)) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
    }
    if (n == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))) return 0;
    if (n == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))) return 0;
    return n;
}

bool sb_is_text(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < len;) {
        if (p[i] >= 0x20 && p[i] < 0x80) { /* most of it: no sequence to check */
            i++;
            continue;
        }
        if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') return false;
        size_t n = sb_utf8_seq(p + i, len - i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

void sb_reply_text(wx_http_req_t *req, int status, const char *text, size_t len)
{
    wx_http_add_header(req, "Cache-Control", "no-store");
    wx_http_send(req, status, "application/json; charset=utf-8", text, len);
}

void sb_reply_json(wx_http_req_t *req, int status, json_t *v)
{
    assert(v != NULL);
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (text == NULL) WX_FATAL("jansson: out of memory");
    sb_reply_text(req, status, text, strlen(text));
    free(text);
}

void sb_page_error(wx_http_req_t *req, int status, const char *message)
{
    sb_reply_json(req, status, json_pack("{s:s}", "error", message));
}

const char *sb_json_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void sb_observe(struct wx_sandbox *sb, enum wx_sandbox_msg_kind kind, const char *to,
                const char *ref, const char *text, bool repeat, uint64_t msgid)
{
    if (sb->observer == NULL) return;
    assert(to != NULL && ref != NULL && text != NULL);
    struct wx_sandbox_msg m = {.kind = kind,
                               .to = to,
                               .ref = ref,
                               .text = text,
                               .repeat = repeat,
                               .msgid = msgid,
                               .at_ms = wx_now_ms()};
    sb->observer(&m, sb->observer_arg);
}

/* True when the request says its body is JSON (page calls must: a form post from another
 * site cannot say so without a preflight, which this listener does not answer). */
static bool is_json_request(wx_http_req_t *req)
{
    const char *ct = wx_http_header(req, "Content-Type");
    return ct != NULL && strncasecmp(ct, "application/json", 16) == 0;
}

json_t *sb_page_body(wx_http_req_t *req)
{
    if (!is_json_request(req)) {
        sb_page_error(req, 415, "Content-Type must be application/json");
        return NULL;
    }
    size_t len;
    const uint8_t *body = wx_http_body(req, &len);
    if (len > WX_SANDBOX_PAGE_BODY_MAX) {
        sb_page_error(req, 413, "request body too large");
        return NULL;
    }
    json_error_t jerr;
    json_t *o =
        body != NULL ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        sb_page_error(req, 400, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

/* ---- the router ------------------------------------------------------------------------------ */

struct sb_route {
    const char *path; /* below /sandbox */
    bool post;        /* POST (else GET or HEAD) */
    bool platform;    /* a platform API: a wrong method gets 43001/43002 */
    sb_handler fn;
};

static void clock_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

static const struct sb_route routes[] = {
    {"/cgi-bin/token", false, true, sb_token_handler},
    {"/cgi-bin/stable_token", true, true, sb_stable_token_handler},
    {"/cgi-bin/getcallbackip", false, true, sb_callback_ip_handler},
    {"/cgi-bin/message/template/send", true, true, sb_template_send_handler},
    {"/cgi-bin/message/custom/send", true, true, sb_custom_send_handler},
    {"/cgi-bin/menu/create", true, true, sb_menu_create_handler},
    {"/cgi-bin/media/upload", true, true, sb_media_upload_handler},
    {"/sns/oauth2/access_token", false, true, sb_oauth_token_handler},
    {"/connect/oauth2/authorize", false, false, sb_oauth_authorize_handler},
    {"/api/events", false, false, sb_events_handler},
    {"/api/fault", true, false, sb_fault_handler},
    {"/api/stats", false, false, sb_stats_handler},
    {"/api/clock", true, false, clock_handler},
    {"/api/pos", true, false, sb_pos_handler},
    {"/api/sms", false, false, sb_sms_read_handler},
    {"/sms/send", true, false, sb_sms_send_handler},
};

/* POST /sandbox/api/clock {"advance_s": N}: moves the platform's clock forward (tokens,
 * codes and idempotency keys expire without waiting). */
static void clock_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    (void)query;
    json_t *o = sb_page_body(req);
    if (o == NULL) return;
    json_t *adv = json_object_get(o, "advance_s");
    if (!json_is_integer(adv) || json_integer_value(adv) < 0 ||
        json_integer_value(adv) > 366LL * 86400) {
        json_decref(o);
        sb_page_error(req, 400, "advance_s: 0 to 31622400 seconds");
        return;
    }
    sb->clock_offset_ms += json_integer_value(adv) * 1000;
    json_decref(o);
    sb_reply_json(req, 200,
                  json_pack("{s:I}", "offset_s", (json_int_t)(sb->clock_offset_ms / 1000)));
}

static void dispatch(wx_http_req_t *req, void *arg)
{
    struct wx_sandbox *sb = arg;
    const char *path = wx_http_path(req) + strlen("/sandbox");
    const char *query = wx_http_query(req);
    bool post = wx_http_method(req) == WX_HTTP_POST;
    if (sb->stopping) {
        wx_http_error(req, 503, "the sandbox is stopping");
        return;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct sb_route *r = &routes[i];
        if (strcmp(path, r->path) != 0) continue;
        if (post == r->post) {
            r->fn(sb, req, query);
        } else if (r->platform) {
            sb_api_error(sb, req, SB_EP_COUNT, r->post ? 43002 : 43001,
                         r->post ? "require POST method" : "require GET method");
        } else {
            wx_http_error(req, 405, r->post ? "use POST" : "use GET");
        }
        return;
    }
    if (strncmp(path, "/media/", 7) == 0 && !post) {
        sb_media_get_handler(sb, req, path + 7);
        return;
    }
    if (!sb_page_route(sb, req, path, query)) wx_http_error(req, 404, "not found");
}

static void redirect_to_page(wx_http_req_t *req, void *arg)
{
    (void)arg;
    wx_http_add_header(req, "Location", "/sandbox/");
    wx_http_send(req, 301, "text/plain; charset=utf-8", "/sandbox/\n", 10);
}

/* ---- life cycle ------------------------------------------------------------------------------ */

int wx_sandbox_mode_parse(const char *name, enum wx_sandbox_mode *out)
{
    static const char *const names[] = {"plain", "compat", "safe"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum wx_sandbox_mode)i;
            return 0;
        }
    }
    return -1;
}

int wx_sandbox_options_from_config(const struct wx_config *cfg, struct wx_sandbox_options *opt,
                                   char *err, size_t errlen)
{
    memset(opt, 0, sizeof *opt);
    opt->appid = wx_config_str(cfg, "wechat.appid");
    opt->secret = wx_config_str(cfg, "wechat.secret");
    opt->token = wx_config_str(cfg, "wechat.token");
    opt->aes_key = wx_config_str(cfg, "wechat.aes_key");
    opt->webhook_url = wx_config_str(cfg, "sandbox.webhook_url");
    opt->account = wx_config_str(cfg, "sandbox.account");
    opt->account_name = wx_config_str(cfg, "sandbox.name");
    opt->webhook_timeout_ms = (unsigned)wx_config_int(cfg, "sandbox.webhook_timeout_ms");
    opt->iso_address = wx_config_str(cfg, "iso8583.listen");
    const char *mode = wx_config_str(cfg, "sandbox.mode");
    const char *dialect = wx_config_str(cfg, "iso8583.dialect");
    if (wx_sandbox_mode_parse(mode, &opt->mode) != 0 ||
        wx_iso_dialect_parse(dialect, &opt->iso_dialect) != 0) {
        snprintf(err, errlen, "sandbox.mode or iso8583.dialect: unknown value");
        return -1;
    }
    opt->iso_framing = strcmp(wx_config_str(cfg, "iso8583.framing"), "ascii4") == 0
                           ? WX_ISO_FRAME_ASCII4
                           : WX_ISO_FRAME_LEN2;
    return 0;
}

int wx_sandbox_options_check(const struct wx_sandbox_options *o, char *err, size_t errlen)
{
    const char *missing =
        o->appid == NULL || o->appid[0] == '\0'                             ? "wechat.appid"
        : o->secret == NULL || o->secret[0] == '\0'                         ? "wechat.secret"
        : o->token == NULL || o->token[0] == '\0'                           ? "wechat.token"
        : o->account == NULL || strncmp(o->account, "gh_", 3) != 0          ? "sandbox.account"
        : o->webhook_url == NULL || strncmp(o->webhook_url, "http", 4) != 0 ? "sandbox.webhook_url"
                                                                            : NULL;
    if (missing != NULL) {
        snprintf(err, errlen, "%s is needed: the sandbox plays the platform of this account",
                 missing);
        return -1;
    }
    if (o->mode != WX_SANDBOX_PLAIN && (o->aes_key == NULL || o->aes_key[0] == '\0')) {
        snprintf(err, errlen, "wechat.aes_key is needed in sandbox.mode compat or safe");
        return -1;
    }
    if (o->webhook_attempts > 10 || o->webhook_timeout_ms > 600000 ||
        strlen(o->account) > WX_OPENID_MAX || strlen(o->webhook_url) > SB_URL_MAX) {
        snprintf(err, errlen, "sandbox: webhook attempts, timeout, account or URL out of range");
        return -1;
    }
    return 0;
}

static void on_stop(void *arg)
{
    struct wx_sandbox *sb = arg;
    sb->stopping = true;
    sb_pending_release_all(sb);
    sb_pos_cancel_all(sb);
}

/* Fills the URLs the page and the messages use, from the listener's bound address. */
static void set_urls(struct wx_sandbox *sb)
{
    const char *addr = wx_http_address(sb->http);
    char host[64]; /* wx_http_address is at most 63 characters */
    /* A wildcard listener is reached on loopback: say so in the URLs we print. */
    if (strncmp(addr, "0.0.0.0:", 8) == 0) {
        snprintf(host, sizeof host, "127.0.0.1%s", addr + 7);
    } else if (strncmp(addr, "[::]:", 5) == 0) {
        snprintf(host, sizeof host, "[::1]%s", addr + 4);
    } else {
        snprintf(host, sizeof host, "%s", addr);
    }
    snprintf(sb->origin, sizeof sb->origin, "http://%s", host);
    snprintf(sb->api_base, sizeof sb->api_base, "%s/sandbox", sb->origin);
    snprintf(sb->page_url, sizeof sb->page_url, "%s/sandbox/", sb->origin);
}

static int copy_options(struct wx_sandbox *sb, const struct wx_sandbox_options *o, char *err,
                        size_t errlen)
{
    int rc =
        wx_wechat_crypt_init(&sb->crypt, o->token,
                             o->mode == WX_SANDBOX_PLAIN && (o->aes_key == NULL || !o->aes_key[0])
                                 ? "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                 : o->aes_key,
                             o->appid);
    if (rc != 0) {
        snprintf(err, errlen, "wechat.token, wechat.aes_key or wechat.appid: %s",
                 wx_wechat_strerror(rc));
        return -1;
    }
    sb->appid = wx_strndup(o->appid, strlen(o->appid));
    sb->secret = wx_strndup(o->secret, strlen(o->secret));
    sb->account = wx_strndup(o->account, strlen(o->account));
    const char *name = o->account_name != NULL && o->account_name[0] ? o->account_name : "WX Bank";
    sb->account_name = wx_strndup(name, WX_SANDBOX_NICKNAME_MAX);
    sb->webhook_url = wx_strndup(o->webhook_url, strlen(o->webhook_url));
    sb->iso_address =
        o->iso_address != NULL && o->iso_address[0] ? wx_strndup(o->iso_address, 255) : NULL;
    sb->mode = o->mode;
    sb->webhook_timeout_ms =
        o->webhook_timeout_ms ? o->webhook_timeout_ms : WX_SANDBOX_WEBHOOK_TIMEOUT_MS;
    sb->webhook_attempts = o->webhook_attempts ? o->webhook_attempts : WX_SANDBOX_WEBHOOK_ATTEMPTS;
    sb->token_ttl_s = o->token_ttl_s ? o->token_ttl_s : 7200;
    sb->template_finish_ms = o->template_finish_ms ? o->template_finish_ms : 1000;
    sb->iso_dialect = o->iso_dialect;
    sb->iso_framing = o->iso_framing;
    return 0;
}

static int add_initial(struct wx_sandbox *sb, const struct wx_sandbox_options *o, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < o->ncards; i++) {
        if (wx_sandbox_add_card(sb, &o->cards[i], err, errlen) != 0) return -1;
    }
    for (size_t i = 0; i < o->nfollowers; i++) {
        if (wx_sandbox_add_follower(sb, &o->followers[i], NULL, err, errlen) != 0) return -1;
    }
    return 0;
}

wx_sandbox_t *wx_sandbox_start(wx_hub_t *hub, wx_http_t *http, const struct wx_sandbox_options *opt,
                               char *err, size_t errlen)
{
    assert(hub != NULL && http != NULL && opt != NULL);
    if (wx_sandbox_options_check(opt, err, errlen) != 0) return NULL;
    struct wx_sandbox *sb = wx_calloc(1, sizeof *sb);
    sb->hub = hub;
    sb->base = wx_hub_base(hub);
    sb->http = http;
    sb->fault.endpoint = -1; /* no fault, and none aimed at an endpoint */
    uint64_t r;
    wx_random_bytes(&r, sizeof r);
    /* MsgIds look like the platform's (17 digits, past 2^53: a double would round them). */
    sb->next_msgid = 23000000000000000ULL + r % 1000000000000000ULL;
    sb->next_template_msgid = 2000000000000000000ULL + (r >> 8) % 1000000000000000000ULL;
    if (copy_options(sb, opt, err, errlen) != 0) {
        free(sb);
        return NULL;
    }
    set_urls(sb);
    wx_random_bytes(sb->hash_key, sizeof sb->hash_key);
    sb->scratch = wx_malloc(WX_SANDBOX_API_BODY_MAX + 1);
    sb_sms_init(sb);
    /* A passive reply is at most a webhook body: anything longer is invalid anyway. */
    struct wx_fetch_options fo = {.max_inflight = WX_SANDBOX_DELIVERIES_MAX,
                                  .max_queued = WX_SANDBOX_DELIVERIES_MAX,
                                  .max_response = WX_WECHAT_BODY_MAX};
    sb->fetch = wx_fetch_new(sb->base, &fo);
    if (sb->fetch == NULL) WX_FATAL("sandbox: cannot create the HTTP client");
    if (add_initial(sb, opt, err, errlen) != 0) {
        wx_sandbox_free(sb);
        return NULL;
    }
    wx_http_route(http, "/sandbox", false, redirect_to_page, sb);
    wx_http_route(http, "/sandbox/", true, dispatch, sb);
    struct wx_hub_adapter a = {.name = "sandbox", .stop = on_stop, .arg = sb};
    wx_hub_attach(hub, &a);
    WX_INFO("sandbox: %s, account %s, %s mode, webhook %s", sb->page_url, sb->account,
            sb->mode == WX_SANDBOX_SAFE     ? "safe"
            : sb->mode == WX_SANDBOX_COMPAT ? "compat"
                                            : "plain",
            sb->webhook_url);
    return sb;
}

void wx_sandbox_free(wx_sandbox_t *sb)
{
    if (sb == NULL) return;
    sb->stopping = true;
    /* Deliveries first: their callbacks run now (cancelled) and still find everything. */
    wx_fetch_free(sb->fetch);
    sb_deliveries_free(sb);
    sb_pending_release_all(sb);
    sb_pos_cancel_all(sb);
    sb_followers_free(sb);
    sb_media_free(sb);
    sb_sms_free(sb);
    free(sb->scratch);
    sb_out_free(&sb->line);
    sb_out_free(&sb->text);
    json_decref(sb->menu);
    wx_wipe(sb->cards, sizeof sb->cards);
    wx_wipe(sb->tokens, sizeof sb->tokens);
    wx_wechat_crypt_clear(&sb->crypt);
    if (sb->secret != NULL) wx_wipe(sb->secret, strlen(sb->secret));
    free(sb->appid);
    free(sb->secret);
    free(sb->account);
    free(sb->account_name);
    free(sb->webhook_url);
    free(sb->iso_address);
    free(sb);
}

int wx_sandbox_add_card(wx_sandbox_t *sb, const struct wx_sandbox_card *card, char *err,
                        size_t errlen)
{
    if (sb->ncards >= WX_SANDBOX_CARDS_MAX) {
        snprintf(err, errlen, "sandbox: at most %d demo cards", WX_SANDBOX_CARDS_MAX);
        return -1;
    }
    struct sb_card *c = &sb->cards[sb->ncards];
    uint16_t yymm;
    if (card->pan == NULL || wx_pan_parse(card->pan, c->pan) != 0) {
        snprintf(err, errlen, "sandbox: demo card %zu: not a valid card number", sb->ncards + 1);
        return -1;
    }
    if (card->expiry != NULL && wx_expiry_parse(card->expiry, &yymm) != 0) {
        wx_wipe(c->pan, sizeof c->pan);
        snprintf(err, errlen, "sandbox: demo card %zu: expiry must be YYMM", sb->ncards + 1);
        return -1;
    }
    snprintf(c->expiry, sizeof c->expiry, "%s", card->expiry != NULL ? card->expiry : "");
    wx_pan_mask(c->pan, c->masked, sizeof c->masked);
    if (card->label != NULL && card->label[0] != '\0' &&
        sb_is_text(card->label, strlen(card->label))) {
        snprintf(c->label, sizeof c->label, "%.*s", WX_SANDBOX_LABEL_MAX, card->label);
    } else {
        snprintf(c->label, sizeof c->label, "card %zu", sb->ncards + 1);
    }
    sb->ncards++;
    return 0;
}

int wx_sandbox_add_follower(wx_sandbox_t *sb, const struct wx_sandbox_follower *f,
                            char openid_out[WX_OPENID_MAX + 1], char *err, size_t errlen)
{
    struct sb_follower *added;
    if (sb_follower_add(sb, f->openid, f->nickname, f->following, &added, err, errlen) != 0) {
        return -1;
    }
    if (openid_out != NULL) snprintf(openid_out, WX_OPENID_MAX + 1, "%s", added->openid);
    return 0;
}

void wx_sandbox_set_observer(wx_sandbox_t *sb, wx_sandbox_observer fn, void *arg)
{
    sb->observer = fn;
    sb->observer_arg = fn != NULL ? arg : NULL;
}

const char *wx_sandbox_page_url(const wx_sandbox_t *sb)
{
    return sb->page_url;
}

const char *wx_sandbox_api_base(const wx_sandbox_t *sb)
{
    return sb->api_base;
}
