/*
 * test_web.c - the secure pages (/m/ on the HTTPS listener) as a cardholder's phone meets
 * them: a one-time link from chat, WeChat's OAuth round trip, the login with its picture code,
 * and what a login opens (binding, unbinding, locking and unlocking a card, setting passwords
 * with a code sent by SMS).
 *
 * One `wxbank_test demo` serves the whole first group from a fresh temporary directory: the
 * demo's bank (four cardholders, three of them bound to WeChat followers, every one with the
 * login password LOGIN_PW and the transaction password TXN_PW) and its WeChat sandbox, which
 * plays the followers' chat, WeChat's OAuth page and the SMS gateway. wxbank_test is wxbank
 * with one test route, /m/test/captcha/<id>, that tells a picture code's answer (nobody else
 * can read the picture); the second group starts the production `wxbank demo` in the same
 * directory and checks that it has no such route. HTTP listens on a free port (the demo
 * builds the sandbox's URLs from it), HTTPS and ISO 8583 on port 0; the login lock, links and
 * picture codes live LOCK_S, LINK_S and CAPTCHA_S seconds so that their ends are quick to see.
 *
 * Requests go with libcurl, the session cookie kept here (struct browser) so that an old one
 * can be sent again. Each test uses followers of its own (added through the sandbox's API),
 * since the pages limit the forms one follower may post in a minute, and each request comes
 * from another loopback address (127.0.0.2 onwards), since they also limit the requests one
 * address may make: this suite makes more than any one phone would, and those limits are not
 * what it tests.
 *
 * Covered: plain HTTP gets 403 for every /m/ path; a whole binding (link, OAuth, picture
 * code, login, "绑定成功", the SMS to the cardholder, the balance in chat, the audit entry);
 * the session id rotated at login, the old one dead (fixation); forms without the session's
 * CSRF token refused with nothing done; picture codes single use, short-lived, drawn once;
 * links single use, short-lived, bound to the follower (OAuth) and to the browser that opened
 * them; the login lockout and its end; the transaction password's lockout until midnight and
 * its end by a reset with an SMS code; weak new passwords refused with the reason; hostile
 * values (SQL, script, 10 KiB, invalid UTF-8, NUL) in every field of every form refused with
 * a 4xx that says why, echoed escaped if at all, and stored nowhere (audit log, the bank's
 * files, the server's output); unbinding with the transaction password; and that production
 * wxbank has no test route.
 *
 * Every answer over HTTPS is checked as it arrives (check_secure): never a 5xx; HSTS on all;
 * the Content-Security-Policy and Cache-Control: no-store on every page, no-store on every
 * redirect; no script in any page; the session cookie always __Host-wxs with Path=/, Secure,
 * HttpOnly and SameSite=Strict, the OAuth state's __Host-wxo as on_set_cookie says. Every
 * page is saved to $WX_TEST_LOG_DIR as test_web-N.html
 * (its CSRF token and picture id blanked: random hex that may hold a digit run the log scan
 * would take for a card number), the servers' output is kept there too (serve_keep_logs), and
 * the passwords used are registered with serve_forbid for the scan that ends the suite. Both
 * servers must stop cleanly on SIGTERM (exit 0: under ASan, no leaks either).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/serve_util.h"

#define WAIT_MS     20000  /* longest wait for an answer, a chat reply, an SMS or a stop */
#define START_MS    120000 /* the demo's first start creates its bank and verifies it */
#define LOCK_S      3      /* web.login_lock_s */
#define LINK_S      4      /* web.link_life_s */
#define CAPTCHA_S   4      /* web.captcha_life_s */
#define SID_LEN     64     /* a session id, a CSRF token, a link token: 64 hex */
#define PICTURE_LEN 16     /* a picture code's id in its URL: 16 hex */
#define ANSWER_LEN  5      /* characters of a picture code */
#define FORM_MAX    16384
#define URL_MAX     2048
#define REPLY_MAX   4096

#define LOGIN_PW        "Demo-2026-pass"    /* every demo cardholder's login password */
#define TXN_PW          "730915"            /* and transaction password */
#define NEW_TXN_PW      "582047"            /* 李娜's after the reset by SMS code */
#define UNUSED_LOGIN_PW "Web-Hostile-2026q" /* the hostile test's good values beside a bad one */
#define UNUSED_TXN_PW   "396428"

/* The session cookie exactly as the pages set it, after its value; and the OAuth state's,
 * before its Max-Age. */
#define COOKIE_FLAGS "; Path=/; Secure; HttpOnly; SameSite=Strict"
#define STATE_FLAGS  "; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age="
#define CSP                                                                                        \
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "                   \
    "frame-ancestors 'none'; base-uri 'none'"

/* The demo's cardholders (src/cli/cmd_demo.c), with the follower bound to each. */
struct holder {
    const char *name, *id, *mobile, *openid;
};
static const struct holder ZHANG = {"张伟", "110101199003074512", "13800138000",
                                    "oWXB_demo_ZhangWei_00000001"};
static const struct holder LI = {"李娜", "310104198512120028", "13911112222",
                                 "oWXB_demo_LiNa_000000000002"};
static const struct holder WANG = {"王芳", "31010419880808002X", "13933334444",
                                   "oWXB_demo_WangFang_00000003"};
static const struct holder ALICE = {"Alice Chen", "K12345678", "+85291234567", NULL};
#define VISITOR "oWXB_demo_visitor_000000004" /* the demo's follower bound to nobody */

static char workdir[PATH_MAX];
static pid_t server_pid = -1;
static char http_addr[64], https_addr[64];
static bool test_hooks;          /* the server running is wxbank_test: answers can be read */
static unsigned pages_checked;   /* HTML pages check_secure passed */
static unsigned cookies_checked; /* session cookies it passed */
static unsigned pages_saved;

/* ======================================================================================
 * Time
 * ====================================================================================== */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ======================================================================================
 * HTTP: one request, its answer, the checks every secure answer must pass
 * ====================================================================================== */

struct resp {
    long status;
    char *body; /* NUL-terminated; owned: freed by the next request into this resp, or resp_free */
    size_t len, cap;
    char ctype[128], location[URL_MAX], csp[512], cache[128], hsts[128];
    char sid[SID_LEN + 1];   /* the session cookie this answer set; "" when none */
    char state[SID_LEN + 1]; /* the OAuth state cookie it set; "" when none */
    bool state_cleared;      /* it cleared that cookie */
    int cookies;             /* session cookies set */
    char bad_cookie[256];    /* the first Set-Cookie that is not as it must be; "" when none */
};

static void resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap != 0 ? r->cap : 16384;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL) return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* Whether s begins with exactly n lower-case hex digits (and no more). */
static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    }
    char next = s[n];
    return !((next >= '0' && next <= '9') || (next >= 'a' && next <= 'f'));
}

/* Whether v (vl bytes) is name=<64 hex> followed by exactly flags; the hex into out. */
static bool cookie_is(const char *v, size_t vl, const char *name, const char *flags,
                      char out[SID_LEN + 1])
{
    size_t nl = strlen(name), fl = strlen(flags);
    if (vl != nl + SID_LEN + fl || memcmp(v, name, nl) != 0 || !is_hex(v + nl, SID_LEN) ||
        memcmp(v + nl + SID_LEN, flags, fl) != 0) {
        return false;
    }
    memcpy(out, v + nl, SID_LEN);
    out[SID_LEN] = '\0';
    return true;
}

/*
 * A Set-Cookie. The pages set two: the session, "__Host-wxs=<64 hex>" + COOKIE_FLAGS (Strict:
 * it never comes with a request from another site); and, for the OAuth round trip, the state
 * the browser was sent off with, "__Host-wxo=<64 hex>" with STATE_FLAGS and a Max-Age of the
 * link's life (Lax, since it must come back on WeChat's redirect), cleared on the way back.
 * Anything else is noted in bad_cookie.
 */
static void on_set_cookie(struct resp *r, const char *v, size_t vl)
{
    static const char cleared[] = "__Host-wxo=" STATE_FLAGS "0";
    char max_age[64];
    snprintf(max_age, sizeof max_age, "%s%d", STATE_FLAGS, LINK_S);
    bool ok = true;
    if (cookie_is(v, vl, "__Host-wxs=", COOKIE_FLAGS, r->sid)) {
        ok = ++r->cookies == 1;
    } else if (cookie_is(v, vl, "__Host-wxo=", max_age, r->state)) {
        ok = !r->state_cleared;
    } else if (vl == sizeof cleared - 1 && memcmp(v, cleared, vl) == 0) {
        r->state_cleared = true;
        ok = r->state[0] == '\0';
    } else {
        ok = false;
    }
    if (!ok && r->bad_cookie[0] == '\0') {
        snprintf(r->bad_cookie, sizeof r->bad_cookie, "%.*s", (int)vl, v);
    }
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    static const struct {
        const char *name;
        size_t off, cap;
    } kept[] = {
        {"content-type:", offsetof(struct resp, ctype), sizeof((struct resp *)0)->ctype},
        {"location:", offsetof(struct resp, location), sizeof((struct resp *)0)->location},
        {"content-security-policy:", offsetof(struct resp, csp), sizeof((struct resp *)0)->csp},
        {"cache-control:", offsetof(struct resp, cache), sizeof((struct resp *)0)->cache},
        {"strict-transport-security:", offsetof(struct resp, hsts), sizeof((struct resp *)0)->hsts},
    };
    const char *colon = memchr(p, ':', len);
    if (colon == NULL) return len;
    const char *v = colon + 1;
    while (v < p + len && *v == ' ')
        v++;
    size_t vl = (size_t)(p + len - v);
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    size_t nl = (size_t)(colon - p) + 1;
    if (nl == sizeof "set-cookie:" - 1 && strncasecmp(p, "set-cookie:", nl) == 0) {
        on_set_cookie(r, v, vl);
        return len;
    }
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        if (strlen(kept[i].name) == nl && strncasecmp(p, kept[i].name, nl) == 0) {
            snprintf((char *)r + kept[i].off, kept[i].cap, "%.*s", (int)vl, v);
        }
    }
    return len;
}

/* What a failure message shows of a page: its heading and what follows, or the start. */
static const char *gist(const struct resp *r)
{
    static char out[600];
    const char *b = r->body != NULL ? r->body : "";
    const char *h = strstr(b, "<h1>");
    snprintf(out, sizeof out, "%.500s", h != NULL ? h : b);
    return out;
}

/* Blanks what follows each occurrence of mark in s, n characters of hex, with 'x'. */
static void blank_after(char *s, const char *mark, size_t n)
{
    for (char *p = strstr(s, mark); p != NULL; p = strstr(p + 1, mark)) {
        char *v = p + strlen(mark);
        if (is_hex(v, n)) memset(v, 'x', n);
    }
}

/* Saves an HTML page to $WX_TEST_LOG_DIR/test_web-N.html, for the scan that ends the suite:
 * the pages a cardholder's phone receives must hold no card number nor password either. */
static void save_page(const struct resp *r)
{
    const char *keep = getenv("WX_TEST_LOG_DIR");
    if (keep == NULL || keep[0] == '\0' || r->body == NULL) return;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/test_web-%u.html", keep, ++pages_saved);
    char *copy = strdup(r->body);
    assert_non_null(copy);
    blank_after(copy, "name=\"csrf\" value=\"", SID_LEN);
    blank_after(copy, "/m/captcha/", PICTURE_LEN);
    FILE *f = serve_mkdirs(keep) == 0 ? fopen(path, "w") : NULL;
    if (f == NULL) fail_msg("cannot save a page as %s: %s", path, strerror(errno));
    size_t w = fwrite(copy, 1, strlen(copy), f);
    bool ok = fclose(f) == 0 && w == strlen(copy);
    free(copy);
    if (!ok) fail_msg("cannot save a page as %s", path);
}

/* What every answer over HTTPS must be; fails the test naming url otherwise. */
static void check_secure(const char *url, const struct resp *r)
{
    bool html = strncmp(r->ctype, "text/html", 9) == 0;
    if (r->status >= 500) fail_msg("GET/POST %s: %ld: %s", url, r->status, gist(r));
    if (strcmp(r->hsts, "max-age=31536000") != 0) {
        fail_msg("%s: Strict-Transport-Security \"%s\"", url, r->hsts);
    }
    if (html && (strcmp(r->csp, CSP) != 0 || strcmp(r->cache, "no-store") != 0)) {
        fail_msg("%s: page with CSP \"%s\", Cache-Control \"%s\"", url, r->csp, r->cache);
    }
    if ((r->status == 302 || r->status == 303) && strcmp(r->cache, "no-store") != 0) {
        fail_msg("%s: redirect with Cache-Control \"%s\"", url, r->cache);
    }
    if (html && r->body != NULL && strstr(r->body, "<script") != NULL) {
        fail_msg("%s: a script in the page: %s", url, gist(r));
    }
    if (r->bad_cookie[0] != '\0') fail_msg("%s: Set-Cookie: %s", url, r->bad_cookie);
    pages_checked += html;
    cookies_checked += r->sid[0] != '\0';
    if (html) save_page(r);
}

/*
 * One request: a GET when body is NULL, else a POST of body (len bytes) as ctype. cookies: the
 * Cookie header's value, or NULL. The answer (never followed when it redirects) goes to r; an
 * answer over HTTPS must pass check_secure. Fails the test when no answer comes.
 */
static void http(const char *url, const char *cookies, const char *ctype, const char *body,
                 size_t len, struct resp *r)
{
    static unsigned next_ip;
    free(r->body);
    memset(r, 0, sizeof *r);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    char from[32], cookie_hdr[256], type_hdr[128];
    snprintf(from, sizeof from, "host!127.0.0.%u", 2 + next_ip++ % 250);
    struct curl_slist *hdrs = NULL;
    if (cookies != NULL && cookies[0] != '\0') {
        snprintf(cookie_hdr, sizeof cookie_hdr, "Cookie: %s", cookies);
        hdrs = curl_slist_append(hdrs, cookie_hdr);
    }
    if (body != NULL) {
        snprintf(type_hdr, sizeof type_hdr, "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, type_hdr);
        hdrs = curl_slist_append(hdrs, "Expect:"); /* the whole form at once, as browsers do */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_INTERFACE, from);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L); /* the demo's certificate is self-signed */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) fail_msg("%s: %s (%s)", url, curl_easy_strerror(rc), errbuf);
    if (r->body == NULL) on_body("", 1, 0, r);
    if (strncmp(url, "https://", 8) == 0) check_secure(url, r);
}

static void http_get(const char *url, const char *cookies, struct resp *r)
{
    http(url, cookies, NULL, NULL, 0, r);
}

/* "__Host-wxs=" sid: the Cookie header of a session id alone. */
static const char *session_cookie(const char *sid)
{
    static char buf[96];
    snprintf(buf, sizeof buf, "__Host-wxs=%s", sid);
    return buf;
}

/* "https://HTTPS_ADDR" path, in one of four buffers used in turn. */
static const char *secure_url(const char *path)
{
    static char buf[4][URL_MAX];
    static unsigned turn;
    char *u = buf[turn++ % 4];
    snprintf(u, URL_MAX, "https://%s%s", https_addr, path);
    return u;
}

/* r must have status and, when text is not NULL, contain it. */
static void expect(const struct resp *r, long status, const char *text)
{
    if (r->status == status && (text == NULL || strstr(r->body, text) != NULL)) return;
    fail_msg("expected %ld with \"%s\", got %ld: %s", status, text != NULL ? text : "", r->status,
             gist(r));
}

/* A refusal keeps the session as it was: its cookie, when the page sends it again, is the
 * same id (a new one is only ever the login's). */
static void expect_same_session(const struct resp *r, const char *sid)
{
    if (r->sid[0] != '\0' && strcmp(r->sid, sid) != 0) fail_msg("the session id changed");
}

/* ======================================================================================
 * Forms: application/x-www-form-urlencoded, built a field at a time
 * ====================================================================================== */

struct form {
    char s[FORM_MAX];
    size_t len;
};

/* Appends name=value, value already encoded (or deliberately broken). */
static void form_put_encoded(struct form *f, const char *name, const char *value)
{
    int n = snprintf(f->s + f->len, sizeof f->s - f->len, "%s%s=%s", f->len > 0 ? "&" : "", name,
                     value);
    assert_true(n > 0 && (size_t)n < sizeof f->s - f->len);
    f->len += (size_t)n;
}

/* Appends name=value, value percent-encoded. */
static void form_put(struct form *f, const char *name, const char *value)
{
    static const char HEX[] = "0123456789ABCDEF";
    char enc[3 * 1024 + 1];
    size_t o = 0;
    assert_true(strlen(value) <= 1024);
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p) != NULL) {
            enc[o++] = (char)*p;
        } else {
            enc[o++] = '%';
            enc[o++] = HEX[*p >> 4];
            enc[o++] = HEX[*p & 15];
        }
    }
    enc[o] = '\0';
    form_put_encoded(f, name, enc);
}

/* ======================================================================================
 * A browser: one follower's phone, its cookie, and what the last page asked for
 * ====================================================================================== */

struct browser {
    char openid[65];
    char sid[SID_LEN + 1];         /* the session cookie; "" before the first */
    char state[SID_LEN + 1];       /* the OAuth state cookie; "" when none */
    char csrf[SID_LEN + 1];        /* the token of the last form shown */
    char picture[PICTURE_LEN + 1]; /* the id of the last picture code shown */
    char answer[ANSWER_LEN + 1];   /* its answer (wxbank_test tells it); "" unknown */
    char oauth_back[URL_MAX];      /* where WeChat's OAuth page sent it last */
};

static void browser_for(struct browser *b, const char *openid)
{
    memset(b, 0, sizeof *b);
    snprintf(b->openid, sizeof b->openid, "%s", openid);
}

/* Copies the n hex digits that follow mark in s into out; false when there are none. */
static bool hex_after(const char *s, const char *mark, size_t n, char *out)
{
    const char *p = s != NULL ? strstr(s, mark) : NULL;
    if (p == NULL || !is_hex(p + strlen(mark), n)) return false;
    memcpy(out, p + strlen(mark), n);
    out[n] = '\0';
    return true;
}

/* The answer to picture code id, from wxbank_test's test route (which tells it once). */
static void read_answer(const char *id, char answer[ANSWER_LEN + 1])
{
    struct resp r = {0};
    char path[64];
    snprintf(path, sizeof path, "/m/test/captcha/%s", id);
    http_get(secure_url(path), NULL, &r);
    if (r.status != 200 || r.len != ANSWER_LEN || strncmp(r.ctype, "text/plain", 10) != 0) {
        fail_msg("the test route did not tell picture %s: %ld %s", id, r.status, gist(&r));
    }
    memcpy(answer, r.body, ANSWER_LEN + 1);
    resp_free(&r);
}

/* What a page tells the browser: a new cookie, the form's token, a new picture code. */
static void b_learn(struct browser *b, const struct resp *r)
{
    char id[PICTURE_LEN + 1];
    if (r->sid[0] != '\0') memcpy(b->sid, r->sid, sizeof b->sid);
    if (r->state[0] != '\0') memcpy(b->state, r->state, sizeof b->state);
    if (r->state_cleared) b->state[0] = '\0';
    hex_after(r->body, "name=\"csrf\" value=\"", SID_LEN, b->csrf);
    if (hex_after(r->body, "/m/captcha/", PICTURE_LEN, id) && strcmp(id, b->picture) != 0) {
        memcpy(b->picture, id, sizeof id);
        b->answer[0] = '\0';
        if (test_hooks) read_answer(id, b->answer);
    }
}

/* The Cookie header b sends: the session only with a request from its own pages (same_site),
 * since it is SameSite=Strict; the OAuth state with any. */
static const char *b_cookies(const struct browser *b, bool same_site)
{
    static char buf[256];
    int n = 0;
    buf[0] = '\0';
    if (same_site && b->sid[0] != '\0') n = snprintf(buf, sizeof buf, "__Host-wxs=%s", b->sid);
    if (b->state[0] != '\0') {
        snprintf(buf + n, sizeof buf - (size_t)n, "%s__Host-wxo=%s", n > 0 ? "; " : "", b->state);
    }
    return buf;
}

/* GET of a path on the secure pages (or a whole URL) from one of them, with b's cookies. */
static void b_get(struct browser *b, const char *path, struct resp *r)
{
    http_get(path[0] == '/' ? secure_url(path) : path, b_cookies(b, true), r);
    b_learn(b, r);
}

static void b_post(struct browser *b, const char *path, const struct form *f, struct resp *r)
{
    http(secure_url(path), b_cookies(b, true), "application/x-www-form-urlencoded", f->s, f->len,
         r);
    b_learn(b, r);
}

/* A form that begins with the browser's CSRF token. */
static void form_start(struct form *f, const struct browser *b)
{
    f->len = 0;
    f->s[0] = '\0';
    form_put(f, "csrf", b->csrf);
}

/* Posts the login form with the picture code the last page showed. */
static void b_login(struct browser *b, const char *login, const char *password, struct resp *r)
{
    struct form f;
    form_start(&f, b);
    form_put(&f, "login", login);
    form_put(&f, "password", password);
    form_put(&f, "captcha", b->answer);
    b_post(b, "/m/login", &f, r);
}

/*
 * The first half of opening url (a one-time link, or an alert's /m/txn/SEQ) as follower `as`
 * does in WeChat: the page sends the phone to WeChat's OAuth page, which (as `as`, named by the
 * sandbox's test parameter &openid=) sends it back towards /m/oauth: that URL is kept in
 * b->oauth_back. A request from chat or WeChat comes from another site: only the Lax cookie
 * goes with it. False, with r the page's answer, when the page sends the phone nowhere.
 */
static bool b_authorize(struct browser *b, const char *url, const char *as, struct resp *r)
{
    char authorize[URL_MAX + 128], prefix[128];
    http_get(url, b_cookies(b, false), r);
    b_learn(b, r);
    if (r->status != 302) return false;
    snprintf(prefix, sizeof prefix, "http://%s/sandbox/connect/oauth2/authorize?", http_addr);
    if (strncmp(r->location, prefix, strlen(prefix)) != 0) {
        fail_msg("%s: 302 to %s, not WeChat's OAuth page", url, r->location);
    }
    int n = (int)strcspn(r->location, "#"); /* the fragment stays in the browser */
    snprintf(authorize, sizeof authorize, "%.*s&openid=%s", n, r->location, as);
    http_get(authorize, NULL, r);
    snprintf(prefix, sizeof prefix, "https://%s/m/oauth?", https_addr);
    if (r->status != 302 || strncmp(r->location, prefix, strlen(prefix)) != 0) {
        fail_msg("WeChat's OAuth page: %ld to \"%s\": %s", r->status, r->location, gist(r));
    }
    snprintf(b->oauth_back, sizeof b->oauth_back, "%s", r->location);
    return true;
}

/* The second half: WeChat's redirect back, followed by b. */
static void b_return(struct browser *b, struct resp *r)
{
    http_get(b->oauth_back, b_cookies(b, false), r);
    b_learn(b, r);
}

/* Opens url as follower `as` does in WeChat; r: the last answer. */
static void b_open(struct browser *b, const char *url, const char *as, struct resp *r)
{
    if (b_authorize(b, url, as, r)) b_return(b, r);
}

/* ======================================================================================
 * The sandbox: followers, chat, SMS
 * ====================================================================================== */

static void sandbox_post(const char *what, const char *json, struct resp *r)
{
    char url[256];
    snprintf(url, sizeof url, "http://%s/sandbox/api/%s", http_addr, what);
    http(url, NULL, "application/json", json, strlen(json), r);
}

static json_t *parse_json(const struct resp *r)
{
    json_error_t err;
    json_t *o = json_loadb(r->body, r->len, 0, &err);
    if (o == NULL) fail_msg("not JSON (%s): %.300s", err.text, r->body);
    return o;
}

/* The account's first text to openid after seq that came the way via says ("reply": the
 * answer to a message; NULL: any way), into out; false when none yet. */
static bool account_message(const struct resp *r, long long seq, const char *via, char *out,
                            size_t cap)
{
    json_t *o = parse_json(r);
    json_t *msgs = json_object_get(o, "messages");
    bool found = false;
    for (size_t i = 0; !found && i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        const char *from = json_string_value(json_object_get(m, "from"));
        const char *content = json_string_value(json_object_get(m, "content"));
        const char *how = json_string_value(json_object_get(m, "via"));
        if (json_integer_value(json_object_get(m, "seq")) > seq && from != NULL &&
            strcmp(from, "account") == 0 && content != NULL &&
            (via == NULL || (how != NULL && strcmp(how, via) == 0))) {
            snprintf(out, cap, "%s", content);
            found = true;
        }
    }
    json_decref(o);
    return found;
}

/* Waits for the account's first text to openid after seq that came as via says (NULL: any
 * way); its content into out. */
static void await_message(const char *openid, long long seq, const char *via, char *out, size_t cap)
{
    char url[256];
    struct resp r = {0};
    snprintf(url, sizeof url, "http://%s/sandbox/api/events?after=%lld&wait=1&openid=%s", http_addr,
             seq, openid);
    for (int64_t end = now_ms() + WAIT_MS;;) {
        http_get(url, NULL, &r);
        assert_int_equal(r.status, 200);
        if (account_message(&r, seq, via, out, cap)) break;
        if (now_ms() > end) fail_msg("no message from the account to %s after %lld", openid, seq);
        sleep_ms(50); /* other followers' news end the long poll at once */
    }
    resp_free(&r);
}

/* A new follower of the account (openid "oWebTest_" tag), and a browser for it. Following
 * brings a welcome that says it is not bound: it is waited for, so that it is never taken for
 * the answer to what the follower says next. */
static void new_follower(struct browser *b, const char *tag)
{
    char openid[65], json[256], welcome[REPLY_MAX];
    snprintf(openid, sizeof openid, "oWebTest_%s", tag);
    snprintf(json, sizeof json, "{\"openid\":\"%s\",\"nickname\":\"%s\"}", openid, tag);
    struct resp r = {0};
    sandbox_post("followers", json, &r);
    if (r.status != 201) fail_msg("new follower %s: %ld %s", openid, r.status, r.body);
    resp_free(&r);
    await_message(openid, 0, NULL, welcome, sizeof welcome);
    browser_for(b, openid);
}

/* Follower openid sends text; the account's answer to it goes to out (an alert pushed
 * meanwhile is not the answer). */
static void chat(const char *openid, const char *text, char *out, size_t cap)
{
    char json[512];
    struct resp r = {0};
    snprintf(json, sizeof json, "{\"openid\":\"%s\",\"type\":\"text\",\"content\":\"%s\"}", openid,
             text);
    sandbox_post("send", json, &r);
    if (r.status != 202) fail_msg("send %s: %ld %s", text, r.status, r.body);
    json_t *o = parse_json(&r);
    long long seq = json_integer_value(json_object_get(o, "seq"));
    json_decref(o);
    resp_free(&r);
    await_message(openid, seq, "reply", out, cap);
}

/* Sends text and takes the one-time link the answer carries. */
static void chat_link(const char *openid, const char *text, char link[URL_MAX])
{
    char reply[REPLY_MAX], prefix[128], token[SID_LEN + 1];
    chat(openid, text, reply, sizeof reply);
    snprintf(prefix, sizeof prefix, "https://%s/m/go/", https_addr);
    if (!hex_after(reply, prefix, SID_LEN, token)) {
        fail_msg("\"%s\": no link in the answer: %s", text, reply);
    }
    snprintf(link, URL_MAX, "%s%s", prefix, token);
}

/* Follower b sends text and opens the link of the answer (r: the page that sets the cookie). */
static void b_chat_open(struct browser *b, const char *text, struct resp *r)
{
    char link[URL_MAX];
    chat_link(b->openid, text, link);
    b_open(b, link, b->openid, r);
}

/* A session for b's follower as an alert's link opens one (/m/txn/1: any follower may): not
 * logged in, nothing to bind. */
static void b_session(struct browser *b, struct resp *r)
{
    b_open(b, secure_url("/m/txn/1"), b->openid, r);
    expect(r, 200, "url=/m/txn/1");
    assert_true(b->sid[0] != '\0');
}

/* A new follower's session as an alert's link opens one, at the login form (not logged in). */
static void b_login_form(struct browser *b, const char *tag, struct resp *r)
{
    new_follower(b, tag);
    b_session(b, r);
    b_get(b, "/m/login", r);
}

/* b's follower asks for 绑定 in chat and opens the link: the bind form, not logged in. */
static void b_bind_form(struct browser *b, struct resp *r)
{
    b_chat_open(b, "绑定", r);
    b_get(b, "/m/bind", r);
    expect(r, 200, "action=\"/m/login\"");
}

/* b's session logs in as h; the page it goes on to answers 303. */
static void b_login_as(struct browser *b, const struct holder *h, struct resp *r)
{
    b_get(b, "/m/login", r);
    expect(r, 200, "action=\"/m/login\"");
    b_login(b, h->id, LOGIN_PW, r);
    expect(r, 303, NULL);
}

/* Binds b's follower to h: 绑定 in chat, the link, the login, "绑定成功". */
static void b_bind(struct browser *b, const struct holder *h)
{
    struct resp r = {0};
    b_chat_open(b, "绑定", &r);
    expect(&r, 200, "url=/m/bind");
    b_get(b, "/m/bind", &r);
    b_login(b, h->id, LOGIN_PW, &r);
    expect(&r, 200, "绑定成功");
    resp_free(&r);
}

static void sms_url(const char *mobile, long long after, char *url, size_t cap)
{
    snprintf(url, cap, "http://%s/sandbox/api/sms?mobile=%s%s&after=%lld", http_addr,
             mobile[0] == '+' ? "%2B" : "", mobile + (mobile[0] == '+'), after);
}

/* The sandbox's newest SMS seq: what came after it is what the next step sent. */
static long long sms_mark(const char *mobile)
{
    char url[256];
    struct resp r = {0};
    sms_url(mobile, 0, url, sizeof url);
    http_get(url, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *o = parse_json(&r);
    long long seq = json_integer_value(json_object_get(o, "seq"));
    json_decref(o);
    resp_free(&r);
    return seq;
}

/* The SMS that reached mobile after seq `after`: how many, and (when what is not NULL) the
 * text of the first that contains what, into text; *found tells whether one did. */
static int sms_since(const char *mobile, long long after, const char *what, bool *found, char *text,
                     size_t cap)
{
    char url[256];
    struct resp r = {0};
    sms_url(mobile, after, url, sizeof url);
    http_get(url, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *o = parse_json(&r);
    json_t *list = json_object_get(o, "sms");
    int n = (int)json_array_size(list);
    *found = false;
    for (int i = 0; what != NULL && i < n && !*found; i++) {
        const char *t = json_string_value(json_object_get(json_array_get(list, (size_t)i), "text"));
        *found = t != NULL && strstr(t, what) != NULL;
        if (*found) snprintf(text, cap, "%s", t);
    }
    json_decref(o);
    resp_free(&r);
    return n;
}

/* Waits for an SMS to mobile after seq `after` that contains what; its text into text. */
static void sms_wait(const char *mobile, long long after, const char *what, char *text, size_t cap)
{
    bool found = false;
    for (int64_t end = now_ms() + WAIT_MS;;) {
        sms_since(mobile, after, what, &found, text, cap);
        if (found) return;
        if (now_ms() > end) fail_msg("no SMS with \"%s\" reached %s", what, mobile);
        sleep_ms(50);
    }
}

/* The six-digit code of a one-time code SMS. */
static void sms_code(const char *mobile, long long after, char code[7])
{
    char text[512];
    sms_wait(mobile, after, "验证码", text, sizeof text);
    const char *p = strstr(text, "验证码") + strlen("验证码");
    assert_true(strspn(p, "0123456789") >= 6);
    memcpy(code, p, 6);
    code[6] = '\0';
}

/* ======================================================================================
 * The audit log, read with `wxbank audit` beside the running server
 * ====================================================================================== */

static char audit_text[1 << 20];

static void audit_read(void)
{
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && WXBANK_DB_URL=sqlite:demo/wxbank.db timeout %d '%s' audit "
             "--limit 100000 2>&1",
             workdir, WAIT_MS / 1000, getenv("WXBANK_BIN"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = fread(audit_text, 1, sizeof audit_text - 1, p);
    audit_text[len] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("wxbank audit: %s", audit_text);
}

/* Whether the last audit_read has a line for openid with action and result (its columns:
 * date, time, customer, openid, hashed IP, action, result). */
static bool audit_has(const char *openid, const char *action, const char *result)
{
    for (const char *line = audit_text; *line != '\0';) {
        size_t len = strcspn(line, "\n");
        char words[7][64];
        int n = 0;
        for (const char *p = line; n < 7 && p < line + len;) {
            while (p < line + len && *p == ' ')
                p++;
            size_t w = strcspn(p, " \n");
            if (w == 0) break;
            snprintf(words[n++], sizeof words[0], "%.*s", (int)w, p);
            p += w;
        }
        if (n == 7 && strcmp(words[3], openid) == 0 && strcmp(words[5], action) == 0 &&
            strcmp(words[6], result) == 0) {
            return true;
        }
        line += len + (line[len] == '\n');
    }
    return false;
}

/* Waits until the audit log has the entry: entries are written off the loop, after the page
 * is answered. */
static void audit_wait(const char *openid, const char *action, const char *result)
{
    for (int64_t end = now_ms() + WAIT_MS;;) {
        audit_read();
        if (audit_has(openid, action, result)) return;
        if (now_ms() > end)
            fail_msg("no audit entry %s %s %s:\n%s", openid, action, result, audit_text);
        sleep_ms(100);
    }
}

/* ======================================================================================
 * The server
 * ====================================================================================== */

/* A free loopback port: the kernel picks it; a race lost shows as a failed start. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t alen = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) close(fd);
    return port;
}

/* The whole of a file in the work directory (NUL-terminated, malloc'd), or NULL. */
static char *read_file(const char *name, size_t *len)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", workdir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf != NULL && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (b == NULL) free(buf);
            buf = b;
        }
    }
    fclose(f);
    if (buf != NULL) buf[n] = '\0';
    if (len != NULL) *len = n;
    return buf;
}

/* Execs `bin demo` in the work directory (the child), output to NAME.out and NAME.err. */
static void exec_demo(const char *bin, const char *name, int port)
{
    char out[64], err[64], value[32];
    snprintf(out, sizeof out, "%s.out", name);
    snprintf(err, sizeof err, "%s.err", name);
    if (chdir(workdir) != 0) _exit(127);
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(127);
    snprintf(value, sizeof value, "127.0.0.1:%d", port);
    setenv("WXBANK_HTTP_LISTEN", value, 1);
    setenv("WXBANK_HTTPS_LISTEN", "127.0.0.1:0", 1);
    setenv("WXBANK_ISO8583_LISTEN", "127.0.0.1:0", 1);
    setenv("WXBANK_WEB_OAUTH", "true", 1);
    snprintf(value, sizeof value, "%d", LOCK_S);
    setenv("WXBANK_WEB_LOGIN_LOCK_S", value, 1);
    snprintf(value, sizeof value, "%d", LINK_S);
    setenv("WXBANK_WEB_LINK_LIFE_S", value, 1);
    snprintf(value, sizeof value, "%d", CAPTCHA_S);
    setenv("WXBANK_WEB_CAPTCHA_LIFE_S", value, 1);
    execl(bin, "wxbank", "demo", (char *)NULL);
    _exit(127);
}

/* Waits for the demo to say it runs and reads its HTTPS address: 0; 1 when it exited because
 * its port was taken; -1 otherwise (said on stderr). */
static int await_demo(const char *name)
{
    char out[64], err[64];
    snprintf(out, sizeof out, "%s.out", name);
    snprintf(err, sizeof err, "%s.err", name);
    for (int64_t end = now_ms() + START_MS; now_ms() < end; sleep_ms(50)) {
        int st;
        if (waitpid(server_pid, &st, WNOHANG) == server_pid) {
            server_pid = -1;
            char *e = read_file(err, NULL);
            int rc = e != NULL && strstr(e, "in use") != NULL ? 1 : -1;
            if (rc < 0) fprintf(stderr, "wxbank demo exited at start: %s\n", e ? e : "");
            free(e);
            return rc;
        }
        char *o = read_file(out, NULL);
        const char *at = o != NULL && strstr(o, "are running") != NULL
                             ? strstr(o, "secure pages    https://")
                             : NULL;
        if (at != NULL) {
            at += strlen("secure pages    https://");
            snprintf(https_addr, sizeof https_addr, "%.*s", (int)strcspn(at, "/"), at);
        }
        free(o);
        if (at != NULL) return 0;
    }
    fprintf(stderr, "wxbank demo did not say it was running within %d s\n", START_MS / 1000);
    serve_stop(&server_pid, WAIT_MS);
    return -1;
}

/* Starts `bin demo` on a free HTTP port (a port taken meanwhile: another, three times). */
static int start_demo(const char *bin, const char *name)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = free_port();
        if (port <= 0) return -1;
        snprintf(http_addr, sizeof http_addr, "127.0.0.1:%d", port);
        server_pid = fork();
        if (server_pid < 0) return -1;
        if (server_pid == 0) exec_demo(bin, name, port);
        int rc = await_demo(name);
        if (rc <= 0) return rc;
    }
    return -1;
}

/* The test build: passwords registered for the scan, then wxbank_test. */
static int setup_test_build(void **state)
{
    (void)state;
    static const char *const secrets[] = {LOGIN_PW, TXN_PW, NEW_TXN_PW, UNUSED_LOGIN_PW,
                                          UNUSED_TXN_PW};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (serve_forbid(secrets[i]) != 0) return -1;
    }
    char bin[PATH_MAX];
    snprintf(bin, sizeof bin, "%s/wxbank_test", getenv("WX_BUILD_DIR"));
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "%s: %s\n", bin, strerror(errno));
        return -1;
    }
    test_hooks = true;
    return start_demo(bin, "demo");
}

/* The production build, on the bank the first group left. */
static int setup_production(void **state)
{
    (void)state;
    test_hooks = false;
    return start_demo(getenv("WXBANK_BIN"), "production");
}

/* SIGTERM: the server must exit 0 within WAIT_MS. */
static int teardown_server(void **state)
{
    (void)state;
    return serve_stop(&server_pid, WAIT_MS);
}

/* Makes sure every audit entry of what came before is written: a new follower's login with a
 * wrong picture code, waited for in the log. The one worker writes entries in order, and a
 * page's entry is queued before the page is answered. */
static void audit_fence(void)
{
    static unsigned n;
    char tag[32];
    struct browser b;
    struct resp r = {0};
    snprintf(tag, sizeof tag, "fence_%u", ++n);
    b_login_form(&b, tag, &r);
    snprintf(b.answer, sizeof b.answer, "%s", "00000"); /* never one: no 0 in the alphabet */
    b_login(&b, ALICE.id, LOGIN_PW, &r);
    expect(&r, 400, "图形验证码错误或已过期");
    audit_wait(b.openid, "login", "bad_captcha");
    resp_free(&r);
}

/* ======================================================================================
 * Tests
 * ====================================================================================== */

/* Over plain HTTP no secure page answers, not even a form: 403, no cookie. */
static void test_plain_http_refused(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/m/bind", "/m/login",
        "/m/go/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "/m/test/captcha/0123456789abcdef"};
    struct resp r = {0};
    char url[256];
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        snprintf(url, sizeof url, "http://%s%s", http_addr, paths[i]);
        http_get(url, NULL, &r);
        if (r.status != 403 || r.cookies != 0 || r.state[0] != '\0' || r.bad_cookie[0] != '\0') {
            fail_msg("%s: %ld, or a cookie", url, r.status);
        }
    }
    snprintf(url, sizeof url, "http://%s/m/login", http_addr);
    http(url, NULL, "application/x-www-form-urlencoded", "login=K12345678", 15, &r);
    assert_int_equal(r.status, 403);
    resp_free(&r);
}

/* The visitor binds Alice's cards: link, OAuth, picture code, login, "绑定成功"; the SMS about
 * a new WeChat reaches her; chat then answers her balance; the audit log has it. */
static void test_full_bind(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    char text[REPLY_MAX];
    browser_for(&b, VISITOR);
    b_chat_open(&b, "绑定", &r);
    expect(&r, 200, "url=/m/bind");
    b_get(&b, "/m/bind", &r);
    expect(&r, 200, "action=\"/m/login\"");
    assert_true(strstr(r.body, "name=\"captcha\"") != NULL && b.answer[0] != '\0');
    long long mark = sms_mark(ALICE.mobile);
    b_login(&b, ALICE.id, LOGIN_PW, &r);
    expect(&r, 200, "绑定成功");
    sms_wait(ALICE.mobile, mark, "绑定了一个新的微信", text, sizeof text);
    chat(VISITOR, "余额", text, sizeof text);
    if (strstr(text, "可用额度") == NULL) fail_msg("余额 after binding: %s", text);
    audit_wait(VISITOR, "login", "ok");
    audit_wait(VISITOR, "bind", "ok");
    resp_free(&r);
}

/* A login rotates the session id: the id from before (one an attacker could have planted) is
 * worth nothing after it, and the CSRF token changes with it. */
static void test_session_fixation(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    new_follower(&b, "fixation");
    b_bind_form(&b, &r);
    char before[SID_LEN + 1], csrf_before[SID_LEN + 1];
    memcpy(before, b.sid, sizeof before);
    memcpy(csrf_before, b.csrf, sizeof csrf_before);
    b_login(&b, WANG.id, LOGIN_PW, &r);
    expect(&r, 200, "绑定成功");
    assert_true(r.sid[0] != '\0');
    assert_string_not_equal(r.sid, before);
    /* the old id: no session, for a page and for a form */
    http_get(secure_url("/m/bind"), session_cookie(before), &r);
    expect(&r, 401, "请从微信打开");
    struct form f = {.len = 0};
    form_put(&f, "csrf", csrf_before);
    form_put(&f, "login", WANG.id);
    http(secure_url("/m/login"), session_cookie(before), "application/x-www-form-urlencoded", f.s,
         f.len, &r);
    expect(&r, 401, "请从微信打开");
    /* the new id: logged in, with a new CSRF token */
    b_get(&b, "/m/bind", &r);
    expect(&r, 200, "已绑定");
    b_get(&b, "/m/password", &r); /* a page with a form, open to any session */
    expect(&r, 200, "action=\"/m/password/code\"");
    assert_string_not_equal(b.csrf, csrf_before);
    resp_free(&r);
}

/* Posts the login form with csrf as given (NULL: none). */
static void login_with_csrf(struct browser *b, const char *csrf, const struct holder *h,
                            struct resp *r)
{
    struct form f = {.len = 0};
    if (csrf != NULL) form_put(&f, "csrf", csrf);
    form_put(&f, "login", h->id);
    form_put(&f, "password", LOGIN_PW);
    form_put(&f, "captcha", b->answer);
    b_post(b, "/m/login", &f, r);
}

/* Posts /m/card/lock for card with csrf as given (NULL: none). */
static void lock_with_csrf(struct browser *b, const char *csrf, unsigned card, struct resp *r)
{
    struct form f = {.len = 0};
    char id[16];
    snprintf(id, sizeof id, "%u", card);
    if (csrf != NULL) form_put(&f, "csrf", csrf);
    form_put(&f, "card", id);
    b_post(b, "/m/card/lock", &f, r);
}

/* The id of the first card on a cards page with a form posting to action; 0 when none. */
static unsigned card_in(const struct resp *r, const char *action)
{
    char mark[64];
    snprintf(mark, sizeof mark, "action=\"%s\"", action);
    const char *p = strstr(r->body, mark);
    p = p != NULL ? strstr(p, "name=\"card\" value=\"") : NULL;
    if (p == NULL) return 0;
    p += strlen("name=\"card\" value=\"");
    unsigned id = 0;
    for (; *p >= '0' && *p <= '9' && id < 100000000u; p++)
        id = id * 10 + (unsigned)(*p - '0');
    return *p == '"' ? id : 0;
}

/* A form without the session's CSRF token (none, a wrong one, another session's, the one from
 * before the login) is refused with 403 "页面已过期" and does nothing: no login, no binding,
 * no card locked. */
static void test_csrf(void **state)
{
    (void)state;
    struct browser b, other;
    struct resp r = {0};
    new_follower(&b, "csrf");
    new_follower(&other, "csrf_other");
    b_session(&other, &r);
    b_bind_form(&b, &r);
    char wrong[SID_LEN + 1];
    memcpy(wrong, b.csrf, sizeof wrong);
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    const char *const bad[] = {NULL, wrong, other.csrf, ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        login_with_csrf(&b, bad[i], &LI, &r);
        expect(&r, 403, "页面已过期");
        assert_true(r.sid[0] == '\0');
    }
    b_get(&b, "/m/bind", &r); /* still the form: nobody logged in, nothing bound */
    expect(&r, 200, "action=\"/m/login\"");
    b_login(&b, LI.id, LOGIN_PW, &r); /* the page's own token: all was well but the token */
    expect(&r, 200, "绑定成功");

    /* after a login, on the cards (a session from a transaction's link may lock a card) */
    struct browser c;
    new_follower(&c, "csrf_cards");
    b_session(&c, &r);
    b_get(&c, "/m/login", &r);
    char old_csrf[SID_LEN + 1];
    memcpy(old_csrf, c.csrf, sizeof old_csrf);
    b_login(&c, LI.id, LOGIN_PW, &r);
    expect(&r, 303, NULL);
    b_get(&c, "/m/cards", &r);
    unsigned card = card_in(&r, "/m/card/lock");
    assert_true(card != 0);
    memcpy(wrong, c.csrf, sizeof wrong);
    wrong[SID_LEN - 1] = wrong[SID_LEN - 1] == 'a' ? 'b' : 'a';
    const char *const bad_after[] = {NULL, wrong, old_csrf, other.csrf};
    for (size_t i = 0; i < sizeof bad_after / sizeof bad_after[0]; i++) {
        lock_with_csrf(&c, bad_after[i], card, &r);
        expect(&r, 403, "页面已过期");
    }
    b_get(&c, "/m/cards", &r);
    assert_int_equal(card_in(&r, "/m/card/lock"), card); /* still active: lockable */
    audit_fence();
    assert_false(audit_has(c.openid, "card_lock", "ok"));
    resp_free(&r);
}

/* Posts the ID form of a password reset: id_number and the picture code answer. */
static void post_id(struct browser *b, const char *id_number, const char *answer, struct resp *r)
{
    struct form f;
    form_start(&f, b);
    form_put(&f, "id_number", id_number);
    form_put(&f, "captcha", answer);
    b_post(b, "/m/password/code", &f, r);
}

/* A picture is drawn once; its code is good once and for CAPTCHA_S; a wrong, spent or old
 * answer is refused before any password is looked at, and logs nobody in. */
static void test_captcha(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    new_follower(&b, "captcha");
    b_bind_form(&b, &r);
    char sid[SID_LEN + 1], png[64], path[64];
    memcpy(sid, b.sid, sizeof sid);
    snprintf(png, sizeof png, "/m/captcha/%s.png", b.picture);
    b_get(&b, png, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "image/png");
    assert_true(r.len > 8 && memcmp(r.body, "\x89PNG\r\n\x1a\n", 8) == 0);
    b_get(&b, png, &r);
    assert_int_equal(r.status, 404);
    snprintf(path, sizeof path, "/m/test/captcha/%s", b.picture); /* it tells an answer once */
    http_get(secure_url(path), NULL, &r);
    assert_int_equal(r.status, 404);

    /* wrong, with the right login name and password */
    b.answer[0] = b.answer[0] == 'A' ? 'C' : 'A';
    b_login(&b, ZHANG.id, LOGIN_PW, &r);
    expect(&r, 400, "图形验证码错误或已过期");
    expect_same_session(&r, sid);
    audit_wait(b.openid, "login", "bad_captcha");

    /* spent: the reset's next page shows no new picture, and the same answer again is refused
     * (an ID number nobody has, so that no code is sent) */
    b_get(&b, "/m/password", &r);
    char spent[ANSWER_LEN + 1];
    memcpy(spent, b.answer, sizeof spent);
    post_id(&b, "110101200001010013", spent, &r);
    expect(&r, 200, "action=\"/m/password\"");
    post_id(&b, "110101200001010013", spent, &r);
    expect(&r, 400, "图形验证码错误或已过期");

    /* old: right, but past CAPTCHA_S */
    b_get(&b, "/m/bind", &r);
    sleep_ms(CAPTCHA_S * 1000 + 500);
    b_login(&b, ZHANG.id, LOGIN_PW, &r);
    expect(&r, 400, "图形验证码错误或已过期");
    expect_same_session(&r, sid);

    /* the session was fine all along: a fresh answer in time binds */
    b_login(&b, ZHANG.id, LOGIN_PW, &r);
    expect(&r, 200, "绑定成功");
    resp_free(&r);
}

/* A link works once and for LINK_S, and only for the follower it was sent to and in the
 * browser that opened it: used or old links answer 410; opened by another follower, 403 and
 * nobody bound; WeChat's answer carried to another browser, 403 (and it still works in the
 * first one); that answer replayed, 410. */
static void test_links(void **state)
{
    (void)state;
    struct browser b, other, thief;
    struct resp r = {0};
    char link[URL_MAX], reply[REPLY_MAX];
    new_follower(&b, "links");
    new_follower(&other, "links_other");
    browser_for(&thief, b.openid);

    chat_link(b.openid, "绑定", link);
    assert_true(b_authorize(&b, link, b.openid, &r));
    char sent_state[SID_LEN + 1];
    memcpy(sent_state, b.state, sizeof sent_state);
    assert_true(sent_state[0] != '\0');
    memcpy(thief.oauth_back, b.oauth_back, sizeof thief.oauth_back);
    b_return(&thief, &r);
    expect(&r, 403, "请在原浏览器中打开");
    assert_true(r.sid[0] == '\0');
    b_return(&b, &r);
    expect(&r, 200, "url=/m/bind");
    assert_true(b.sid[0] != '\0' && b.state[0] == '\0'); /* the state cookie is cleared */
    b_open(&b, link, b.openid, &r);
    expect(&r, 410, "链接已失效");
    memcpy(b.state, sent_state,
           sizeof sent_state); /* WeChat's answer again, with the cookie it needs */
    b_return(&b, &r);
    expect(&r, 410, "链接已失效");

    chat_link(b.openid, "绑定", link);
    b_open(&other, link, other.openid, &r);
    expect(&r, 403, "链接不属于您");
    assert_true(r.sid[0] == '\0');
    b_open(&b, link, b.openid, &r); /* and its owner cannot use it after that either */
    expect(&r, 410, "链接已失效");
    audit_wait(other.openid, "link_open", "other_follower");
    chat(b.openid, "余额", reply, sizeof reply);
    if (strstr(reply, "尚未绑定") == NULL) fail_msg("余额: %s", reply);

    chat_link(b.openid, "绑定", link);
    sleep_ms(LINK_S * 1000 + 500);
    b_open(&b, link, b.openid, &r);
    expect(&r, 410, "链接已失效");
    resp_free(&r);
}

/* Five wrong login passwords in a row lock the login for LOCK_S: the right password is then
 * refused too (by ID number and by mobile), without a new session; afterwards it works. */
static void test_login_lockout(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    b_login_form(&b, "lockout", &r);
    char before[SID_LEN + 1];
    memcpy(before, b.sid, sizeof before);
    for (int i = 1; i <= 4; i++) {
        char pw[32];
        snprintf(pw, sizeof pw, "Wrong-pass-%d", i);
        b_login(&b, ZHANG.id, pw, &r);
        expect(&r, 400, "登录名或登录密码错误");
    }
    b_login(&b, ZHANG.id, "Wrong-pass-5", &r);
    int64_t locked = now_ms();
    expect(&r, 400, "登录已锁定至");
    b_login(&b, ZHANG.id, LOGIN_PW, &r);
    expect(&r, 400, "登录已锁定至");
    expect_same_session(&r, before);
    b_login(&b, ZHANG.mobile, LOGIN_PW, &r);
    expect(&r, 400, "登录已锁定至");
    expect_same_session(&r, before);
    if (now_ms() - locked >= LOCK_S * 1000) fail_msg("too slow to see the lock; raise LOCK_S");
    sleep_ms(locked + LOCK_S * 1000 + 300 - now_ms());
    b_login(&b, ZHANG.id, LOGIN_PW, &r);
    expect(&r, 303, NULL);
    assert_string_equal(r.location, "/m/txn/1");
    assert_string_not_equal(r.sid, before);
    audit_wait(b.openid, "login", "ok"); /* the last entry: the ones before are written */
    assert_true(audit_has(b.openid, "login", "wrong_password"));
    assert_true(audit_has(b.openid, "login", "locked"));
    resp_free(&r);
}

/* Posts /m/card/unlock (or lock, when txn is NULL) for card; r: the answer. */
static void card_post(struct browser *b, const char *action, unsigned card, const char *txn,
                      struct resp *r)
{
    struct form f;
    char id[16];
    snprintf(id, sizeof id, "%u", card);
    form_start(&f, b);
    form_put(&f, "card", id);
    if (txn != NULL) form_put(&f, "txn_password", txn);
    b_post(b, action, &f, r);
}

/* Asks for a one-time code for h on b's session (which shows the ID form now); the code. */
static void request_code(struct browser *b, const struct holder *h, char code[7])
{
    struct resp r = {0};
    struct form f;
    b_get(b, "/m/password", &r);
    expect(&r, 200, "action=\"/m/password/code\"");
    long long mark = sms_mark(h->mobile);
    form_start(&f, b);
    form_put(&f, "id_number", h->id);
    form_put(&f, "captcha", b->answer);
    b_post(b, "/m/password/code", &f, &r);
    expect(&r, 200, "action=\"/m/password\"");
    sms_code(h->mobile, mark, code);
    resp_free(&r);
}

/* Posts the new passwords form: code, and login and transaction passwords, each twice. */
static void set_passwords(struct browser *b, const char *code, const char *login, const char *txn,
                          struct resp *r)
{
    struct form f;
    form_start(&f, b);
    form_put(&f, "code", code);
    form_put(&f, "login_password", login);
    form_put(&f, "login_password2", login);
    form_put(&f, "txn_password", txn);
    form_put(&f, "txn_password2", txn);
    b_post(b, "/m/password", &f, r);
}

/* Locking a card needs the login alone; unlocking, the transaction password, and three wrong
 * ones lock that until the next local midnight, the right one then refused too; a reset with
 * the ID number and a code sent to the registered mobile lifts it, and the unlock works. */
static void test_txn_password(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    browser_for(&b, LI.openid);
    b_chat_open(&b, "解锁", &r);
    expect(&r, 200, "url=/m/cards");
    b_get(&b, "/m/cards", &r);
    b_login(&b, LI.id, LOGIN_PW, &r);
    expect(&r, 303, NULL);
    assert_string_equal(r.location, "/m/cards");
    b_get(&b, "/m/cards", &r);
    unsigned card = card_in(&r, "/m/card/lock");
    assert_true(card != 0);
    card_post(&b, "/m/card/lock", card, NULL, &r);
    expect(&r, 200, "已锁卡");
    b_get(&b, "/m/cards", &r);
    assert_int_equal(card_in(&r, "/m/card/unlock"), card);

    card_post(&b, "/m/card/unlock", card, "246801", &r);
    expect(&r, 400, "交易密码错误");
    card_post(&b, "/m/card/unlock", card, "246802", &r);
    expect(&r, 400, "交易密码错误");
    card_post(&b, "/m/card/unlock", card, "246803", &r);
    expect(&r, 400, "交易密码连续输错3次");
    if (strstr(r.body, " 00:00:00") == NULL) fail_msg("not locked until midnight: %s", gist(&r));
    card_post(&b, "/m/card/unlock", card, TXN_PW, &r);
    expect(&r, 400, "交易密码连续输错3次");
    assert_int_equal(card_in(&r, "/m/card/unlock"), card); /* still locked */

    char code[7];
    request_code(&b, &LI, code);
    set_passwords(&b, code, "", NEW_TXN_PW, &r);
    expect(&r, 200, "密码已设置");
    card_post(&b, "/m/card/unlock", card, NEW_TXN_PW, &r);
    expect(&r, 200, "已解锁");
    b_get(&b, "/m/cards", &r);
    assert_int_equal(card_in(&r, "/m/card/lock"), card);
    audit_wait(LI.openid, "card_unlock", "ok"); /* the last entry: the ones before are written */
    assert_true(audit_has(LI.openid, "card_lock", "ok"));
    assert_true(audit_has(LI.openid, "card_unlock", "wrong_txn_password"));
    assert_true(audit_has(LI.openid, "card_unlock", "txn_locked"));
    assert_true(audit_has(LI.openid, "password_set", "ok"));
    resp_free(&r);
}

/* Weak new passwords are refused with the reason, and none is stored: afterwards the old login
 * password logs in and the old transaction password is still the right one. */
static void test_weak_passwords(void **state)
{
    (void)state;
    static const struct {
        const char *login, *txn, *why;
    } weak[] = {
        {"", "123456", "交易密码过于简单"},
        {"", "111111", "交易密码过于简单"},
        {"", "900307", "交易密码不能是您的生日"}, /* 张伟 was born on 1990-03-07 */
        {"password", "", "须包含大写字母、小写字母、数字、符号中的至少三种"},
        {"Ab-110101199003074512", "", "不能包含您的登录名、手机号或证件号"},
    };
    struct browser b;
    struct resp r = {0};
    char code[7];
    new_follower(&b, "weak");
    b_session(&b, &r);
    request_code(&b, &ZHANG, code);
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        set_passwords(&b, code, weak[i].login, weak[i].txn, &r);
        expect(&r, 400, weak[i].why);
        expect(&r, 400, "action=\"/m/password\""); /* the form again, the code still good */
    }
    b_login_as(&b, &ZHANG, &r);
    b_get(&b, "/m/cards", &r);
    unsigned card = card_in(&r, "/m/card/lock");
    assert_true(card != 0);
    card_post(&b, "/m/card/unlock", card, TXN_PW, &r);
    /* past the password check (a wrong one says so): the card is simply not locked */
    expect(&r, 409, "卡片当前状态不允许这个操作");
    audit_fence();
    assert_false(audit_has(b.openid, "password_set", "ok"));
    resp_free(&r);
}

/* ---- hostile input ------------------------------------------------------------------------ */

/* What goes into one field at a time: already encoded. Each holds a mark to look for in what
 * the bank stores. */
static char big_value[10 * 1024 + 1];
static const struct hostile {
    const char *label, *encoded, *mark;
    long status; /* the refusal's; 0: any 4xx (what a field's own check says) */
} HOSTILE[] = {
    {"SQL", "%27%20OR%201%3D1%20--", "' OR 1=1 --", 0},
    {"script", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "<script>alert(1)</script>", 0},
    {"10 KiB", big_value, "wx-hostile-wx-hostile-", 413},
    {"invalid UTF-8", "wx-bad-utf8%FF%FE", "wx-bad-utf8", 400},
    {"NUL", "wx-nul%00byte", "wx-nul", 400},
};
#define HOSTILE_N (sizeof HOSTILE / sizeof HOSTILE[0])

/* A form's field and the good value it has while another field is hostile (NULL: the
 * picture code the last page showed). */
struct field {
    const char *name, *value;
};

/* The refusal of hostile value h in field: a 4xx page that says what is wrong, the value
 * nowhere in it as it was sent. */
static void check_refused(const struct resp *r, size_t h, const char *path, const char *field)
{
    bool status = HOSTILE[h].status != 0 ? r->status == HOSTILE[h].status
                                         : r->status >= 400 && r->status < 500;
    bool said = strstr(r->body, "class=\"error\"") != NULL ||
                strstr(r->body, "class=\"notice bad\"") != NULL;
    if (!status || !said || strstr(r->body, HOSTILE[0].mark) != NULL ||
        strstr(r->body, HOSTILE[1].mark) != NULL) {
        fail_msg("%s, %s = %s: %ld: %s", path, field, HOSTILE[h].label, r->status, gist(r));
    }
}

/* Posts the form at path once for each hostile value in each field in turn, the other fields
 * good, and checks each refusal. */
static void post_hostile(struct browser *b, const char *path, const struct field *fields, size_t n)
{
    static struct form f;
    struct resp r = {0};
    for (size_t i = 0; i < n; i++) {
        for (size_t h = 0; h < HOSTILE_N; h++) {
            form_start(&f, b);
            for (size_t k = 0; k < n; k++) {
                if (k == i) {
                    form_put_encoded(&f, fields[k].name, HOSTILE[h].encoded);
                } else {
                    form_put(&f, fields[k].name,
                             fields[k].value != NULL ? fields[k].value : b->answer);
                }
            }
            b_post(b, path, &f, &r);
            check_refused(&r, h, path, fields[i].name);
        }
    }
    resp_free(&r);
}

/* The login form: a login name, a password and a picture code. */
static void test_hostile_login_form(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    b_login_form(&b, "hostile_login", &r);
    const struct field login[] = {{"login", ALICE.id}, {"password", LOGIN_PW}, {"captcha", NULL}};
    post_hostile(&b, "/m/login", login, 3);
    b_get(&b, "/m/login", &r); /* nobody logged in */
    expect(&r, 200, "action=\"/m/login\"");
    resp_free(&r);
}

/* The reset forms: the ID number and picture code, then the code and the new passwords. */
static void test_hostile_reset_forms(void **state)
{
    (void)state;
    struct browser b, c;
    struct resp r = {0};
    new_follower(&b, "hostile_id");
    b_session(&b, &r);
    b_get(&b, "/m/password", &r);
    long long mark = sms_mark(WANG.mobile);
    const struct field id[] = {{"id_number", WANG.id}, {"captcha", NULL}};
    post_hostile(&b, "/m/password/code", id, 2);
    bool found;
    assert_int_equal(sms_since(WANG.mobile, mark, NULL, &found, NULL, 0), 0); /* no code sent */

    new_follower(&c, "hostile_code");
    b_session(&c, &r);
    char code[7];
    request_code(&c, &WANG, code);
    /* each pair as good as the other: whichever field is bad, the pair differs; the code
     * last, since three wrong ones spend it */
    const struct field set[] = {{"login_password", UNUSED_LOGIN_PW},
                                {"login_password2", UNUSED_LOGIN_PW},
                                {"txn_password", UNUSED_TXN_PW},
                                {"txn_password2", UNUSED_TXN_PW},
                                {"code", code}};
    post_hostile(&c, "/m/password", set, 5);
    resp_free(&r);
}

/* The forms after a login: lock (card) and unlock (card and transaction password) on a
 * transaction link's session, then unbind (transaction password) on an unbind link's. The
 * logins show that 王芳's login password is unchanged after the reset forms. */
static void test_hostile_card_forms(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    new_follower(&b, "hostile_cards");
    b_session(&b, &r);
    b_login_as(&b, &WANG, &r);
    b_get(&b, "/m/cards", &r);
    unsigned card = card_in(&r, "/m/card/lock");
    assert_true(card != 0);
    char id[16];
    snprintf(id, sizeof id, "%u", card);
    const struct field lock[] = {{"card", id}};
    const struct field unlock[] = {{"card", id}, {"txn_password", TXN_PW}};
    post_hostile(&b, "/m/card/lock", lock, 1);
    post_hostile(&b, "/m/card/unlock", unlock, 2);
    b_get(&b, "/m/cards", &r);
    assert_int_equal(card_in(&r, "/m/card/lock"), card); /* the card as it was */

    struct browser u;
    new_follower(&u, "hostile_unbind");
    b_bind(&u, &WANG);
    b_chat_open(&u, "解绑", &r);
    expect(&r, 200, "url=/m/unbind");
    b_login_as(&u, &WANG, &r);
    b_get(&u, "/m/unbind", &r);
    expect(&r, 200, "name=\"txn_password\"");
    const struct field unbind[] = {{"txn_password", TXN_PW}};
    post_hostile(&u, "/m/unbind", unbind, 1);
    b_get(&u, "/m/bind", &r);
    expect(&r, 200, "已绑定"); /* still bound */
    resp_free(&r);
}

/* Whether the file holds any hostile mark; which one into *mark. */
static bool holds_mark(const char *name, const char **mark)
{
    size_t len = 0;
    char *data = read_file(name, &len);
    bool found = false;
    for (size_t h = 0; data != NULL && !found && h < HOSTILE_N; h++) {
        found = memmem(data, len, HOSTILE[h].mark, strlen(HOSTILE[h].mark)) != NULL;
        if (found) *mark = HOSTILE[h].mark;
    }
    free(data);
    return found;
}

/* None of it was stored: not in the audit log, which has no success for those followers
 * either, nor in any file of the bank's (the pages' own database included), nor in the
 * servers' output. */
static void test_hostile_input_stored_nowhere(void **state)
{
    (void)state;
    static const char *const followers[] = {"oWebTest_hostile_login", "oWebTest_hostile_id",
                                            "oWebTest_hostile_code", "oWebTest_hostile_cards",
                                            "oWebTest_hostile_unbind"};
    static const char *const changes[] = {"unbind", "card_lock", "card_unlock", "password_set"};
    audit_fence();
    for (size_t h = 0; h < HOSTILE_N; h++)
        assert_null(strstr(audit_text, HOSTILE[h].mark));
    for (size_t i = 0; i < sizeof followers / sizeof followers[0]; i++) {
        for (size_t k = 0; k < sizeof changes / sizeof changes[0]; k++) {
            if (audit_has(followers[i], changes[k], "ok")) {
                fail_msg("%s: %s ok in the audit log", followers[i], changes[k]);
            }
        }
    }
    static const char *const dirs[] = {"demo", "."};
    for (size_t d = 0; d < 2; d++) {
        char path[PATH_MAX + 8];
        snprintf(path, sizeof path, "%s/%s", workdir, dirs[d]);
        DIR *dir = opendir(path);
        assert_non_null(dir);
        for (struct dirent *e; (e = readdir(dir)) != NULL;) {
            char name[PATH_MAX];
            const char *mark = NULL;
            snprintf(name, sizeof name, "%s/%s", dirs[d], e->d_name);
            if (e->d_name[0] == '.' || (d == 1 && !serve_is_log(e->d_name))) continue;
            if (holds_mark(name, &mark)) fail_msg("%s holds \"%.40s\"", name, mark);
        }
        closedir(dir);
    }
}

/* Every kind of answer the pages give carries the headers (check_secure checks each answer
 * of every test; here each kind is asked for once, and the count shows they were checked). */
static void test_security_headers(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    unsigned pages = pages_checked, cookies = cookies_checked;
    http_get(secure_url("/m/bind"), NULL, &r); /* no session */
    expect(&r, 401, NULL);
    http_get(secure_url("/m/go/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
             NULL, &r);
    expect(&r, 410, NULL);
    http_get(secure_url("/m/oauth"), NULL, &r);
    expect(&r, 410, NULL);
    new_follower(&b, "headers");
    b_session(&b, &r); /* the cookie that opens the session */
    assert_string_equal(r.sid, b.sid);
    b_get(&b, "/m/password", &r);
    expect(&r, 200, NULL);
    struct form f = {.len = 0};
    form_put(&f, "login", ALICE.id);
    b_post(&b, "/m/login", &f, &r); /* no CSRF token */
    expect(&r, 403, NULL);
    b_login_as(&b, &WANG, &r); /* the rotated cookie, on a redirect */
    assert_true(r.sid[0] != '\0');
    b_get(&b, "/m/cards", &r);
    expect(&r, 200, NULL);
    b_get(&b, "/m/no-such-page", &r);
    expect(&r, 404, NULL);
    b_get(&b, "/m/txn/999999999", &r);
    expect(&r, 404, NULL);
    assert_true(pages_checked - pages >= 9);
    assert_true(cookies_checked - cookies >= 2);
    resp_free(&r);
}

/* A bound follower unbinds with the transaction password: "已解除绑定", an SMS to the
 * cardholder, and chat then treats it as not bound. */
static void test_unbind(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    char text[REPLY_MAX];
    browser_for(&b, WANG.openid);
    chat(WANG.openid, "余额", text, sizeof text);
    if (strstr(text, "尚未绑定") != NULL) fail_msg("not bound before: %s", text);
    b_chat_open(&b, "解绑", &r);
    expect(&r, 200, "url=/m/unbind");
    b_get(&b, "/m/unbind", &r);
    b_login(&b, WANG.id, LOGIN_PW, &r);
    expect(&r, 303, NULL);
    assert_string_equal(r.location, "/m/unbind");
    b_get(&b, "/m/unbind", &r);
    expect(&r, 200, "name=\"txn_password\"");
    long long mark = sms_mark(WANG.mobile);
    struct form f;
    form_start(&f, &b);
    form_put(&f, "txn_password", TXN_PW);
    b_post(&b, "/m/unbind", &f, &r);
    expect(&r, 200, "已解除绑定");
    sms_wait(WANG.mobile, mark, "解除与一个微信的绑定", text, sizeof text);
    chat(WANG.openid, "余额", text, sizeof text);
    if (strstr(text, "尚未绑定") == NULL) fail_msg("余额 after unbinding: %s", text);
    audit_wait(WANG.openid, "unbind", "ok");
    resp_free(&r);
}

/* The production build has no way around the picture: /m/test/captcha/<id> of a picture it
 * just showed tells nothing (no session: 401; with it: 404, as for any page it does not
 * have), and the picture itself is drawn as ever. */
static void test_production_has_no_captcha_route(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    new_follower(&b, "production");
    b_bind_form(&b, &r);
    assert_true(b.picture[0] != '\0');
    char path[64];
    snprintf(path, sizeof path, "/m/test/captcha/%s", b.picture);
    http_get(secure_url(path), NULL, &r);
    expect(&r, 401, "请从微信打开");
    b_get(&b, path, &r);
    expect(&r, 404, "页面不存在");
    char png[64];
    snprintf(png, sizeof png, "/m/captcha/%s.png", b.picture); /* the picture is still there */
    b_get(&b, png, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "image/png");
    resp_free(&r);
}

/* A lockout is the bank's record, not the process's: 李娜's transaction password (the one
 * test_txn_password set), locked by three wrong ones, is still locked after the server
 * restarts (until midnight). */
static void test_lockout_outlives_restart(void **state)
{
    (void)state;
    struct browser b;
    struct resp r = {0};
    browser_for(&b, LI.openid);
    b_chat_open(&b, "解锁", &r);
    b_get(&b, "/m/cards", &r);
    b_login(&b, LI.id, LOGIN_PW, &r);
    expect(&r, 303, NULL);
    b_get(&b, "/m/cards", &r);
    unsigned card = card_in(&r, "/m/card/lock");
    assert_true(card != 0);
    card_post(&b, "/m/card/lock", card, NULL, &r);
    expect(&r, 200, "已锁卡");
    static const char *const wrong[] = {"246801", "246802", "246803"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        card_post(&b, "/m/card/unlock", card, wrong[i], &r);
    expect(&r, 400, "交易密码连续输错3次");

    char bin[PATH_MAX];
    snprintf(bin, sizeof bin, "%s/wxbank_test", getenv("WX_BUILD_DIR"));
    assert_int_equal(serve_stop(&server_pid, WAIT_MS), 0);
    assert_int_equal(start_demo(bin, "restarted"), 0);

    browser_for(&b, LI.openid);
    b_chat_open(&b, "解锁", &r);
    b_get(&b, "/m/cards", &r);
    b_login(&b, LI.id, LOGIN_PW, &r);
    expect(&r, 303, NULL);
    b_get(&b, "/m/cards", &r);
    assert_int_equal(card_in(&r, "/m/card/unlock"), card);
    card_post(&b, "/m/card/unlock", card, NEW_TXN_PW, &r); /* the right one, refused */
    expect(&r, 400, "交易密码连续输错3次");
    assert_int_equal(card_in(&r, "/m/card/unlock"), card);
    resp_free(&r);
}

/* ======================================================================================
 * main: one work directory for both groups; its logs kept, then it goes
 * ====================================================================================== */

static int finish(int failed)
{
    return serve_finish("test_web", workdir, failed != 0);
}

int main(void)
{
    if (getenv("WXBANK_BIN") == NULL || getenv("WX_BUILD_DIR") == NULL) {
        fprintf(stderr, "test_web: WXBANK_BIN and WX_BUILD_DIR must be set (ctest sets them)\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof big_value - 1; i++)
        big_value[i] = "wx-hostile-"[i % 11];
    snprintf(workdir, sizeof workdir, "/tmp/wxbank-web-XXXXXX");
    if (mkdtemp(workdir) == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_http_refused),
        cmocka_unit_test(test_full_bind),
        cmocka_unit_test(test_session_fixation),
        cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_captcha),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_login_lockout),
        cmocka_unit_test(test_txn_password),
        cmocka_unit_test(test_weak_passwords),
        cmocka_unit_test(test_hostile_login_form),
        cmocka_unit_test(test_hostile_reset_forms),
        cmocka_unit_test(test_hostile_card_forms),
        cmocka_unit_test(test_hostile_input_stored_nowhere),
        cmocka_unit_test(test_security_headers),
        cmocka_unit_test(test_unbind),
        cmocka_unit_test(test_lockout_outlives_restart),
    };
    const struct CMUnitTest production[] = {
        cmocka_unit_test(test_production_has_no_captcha_route),
    };
    int failed =
        cmocka_run_group_tests_name("wxbank_test demo", tests, setup_test_build, teardown_server);
    failed +=
        cmocka_run_group_tests_name("wxbank demo", production, setup_production, teardown_server);
    if (finish(failed) != 0) failed++;
    curl_global_cleanup();
    return failed;
}
