/*
 * test_sandbox.c - `wxbank sandbox` as the bank and a browser see it: the WeChat platform's
 * API with its response shapes and error codes, and its followers' messages arriving at a
 * webhook as the platform sends them.
 *
 * The test plays both neighbours of the sandbox. A fake webhook (a small blocking HTTP
 * server on a thread of its own) records every request, checks nothing itself, and answers
 * as told: a passive reply (plain or encrypted), "success", garbage, or no answer at all.
 * The tests then verify each recorded request with src/wechat's signature and crypto
 * functions (the ones the shared vectors test): plain, compat and safe mode, the three
 * attempts of one unanswered message (same bytes, same MsgId), and what the phone shows for
 * good and bad replies. On the API side they call every endpoint for its success shape and
 * each error on demand (fault injection, the sandbox's clock moved forward for expiries).
 * The SMS gateway is called as the bank's dispatcher calls it: accepted, refused field by
 * field, repeated refs and absorbed template repeats counted, faulted and slowed. The
 * client_msg_id memory is filled to its capacity and aged past its 10 minutes, and the lines
 * and answers the sandbox writes without jansson are checked to be the bytes jansson wrote.
 * The first group needs no sandbox: it reads thousands of bodies, edited at random, with the
 * sandbox's own reader and with jansson, which must agree. One group runs a sandbox inside
 * this process, as in-process tests and benchmarks do, to watch its observer hook. The last
 * group runs the bank (`wxbank serve`) beside the sandbox and pays at the POS page through
 * the real ISO 8583 door.
 *
 * Every sandbox must stop cleanly on SIGTERM (exit 0), and its log must never hold a full
 * card number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/serve_util.h"
#include "net/net.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_int.h" /* the hot path's JSON reader and writer, against jansson */
#include "wechat/wechat.h"

#define APPID   "wx5823bf96d3bd56c7"
#define SECRET  "sandbox-secret-7f2a"
#define TOKEN   "QDG6eK"
#define AES_KEY "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define ACCOUNT "gh_7f083739789a"

#define WAIT_MS       10000 /* longest wait for anything */
#define HOOK_MAX      512   /* requests the fake webhook records */
#define SHORT_TIMEOUT "400" /* sandbox.webhook_timeout_ms in the plain group */
#define UNAVAILABLE   "该公众号暂时无法提供服务，请稍后再试"
#define TWO_POW_53    9007199254740992ULL

static char workdir[PATH_MAX];

/* ======================================================================================
 * Small helpers
 * ====================================================================================== */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A query parameter of a recorded URL ("" when absent). */
static void qparam(const char *url, const char *name, char *out, size_t cap)
{
    const char *q = strchr(url, '?');
    if (wx_http_query_param(q != NULL ? q + 1 : "", name, out, cap) < 0) out[0] = '\0';
}

/* ======================================================================================
 * The fake webhook
 * ====================================================================================== */

struct hook_req {
    char *target; /* "/wechat?signature=..." */
    char *body;
    size_t body_len;
    int64_t at_ms; /* when it arrived */
};

enum reply_kind {
    R_TEXT,      /* "pong:<content>" (encrypted when hook.encrypt) */
    R_ENCRYPTED, /* the same, always encrypted */
    R_PLAIN,     /* the same, never encrypted */
    R_SUCCESS,   /* "success" */
    R_EMPTY,     /* an empty body */
    R_SWAPPED,   /* ToUserName and FromUserName swapped: invalid */
    R_JSON,      /* {"reply":"x"}: invalid */
    R_BADSIG,    /* encrypted with a wrong MsgSignature: invalid */
};

static struct {
    pthread_mutex_t mu;
    pthread_t thread;
    int fd, port;
    volatile int stop;
    struct hook_req reqs[HOOK_MAX];
    unsigned n;
    unsigned hold; /* the next requests left unanswered */
    enum reply_kind reply;
    bool encrypt; /* R_TEXT encrypts (safe mode) */
    struct wx_wechat_crypt crypt;
} hook = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Reads one HTTP request (headers and a Content-Length body). false on EOF or garbage. */
static bool read_request(int fd, char **target, char **body, size_t *body_len)
{
    size_t cap = 256 << 10, len = 0;
    char *buf = malloc(cap + 1);
    char *end = NULL;
    while (end == NULL) {
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) goto fail;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    size_t head = (size_t)(end - buf) + 4;
    while (len < head + want) {
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) goto fail;
        len += (size_t)r;
    }
    char *sp1 = strchr(buf, ' '), *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp2 == NULL) goto fail;
    *target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    *body = malloc(want + 1);
    memcpy(*body, buf + head, want);
    (*body)[want] = '\0';
    *body_len = want;
    free(buf);
    return true;
fail:
    free(buf);
    return false;
}

/* The plain message of a recorded request (decrypting when the query says aes), or NULL. */
static struct wx_wechat_msg *hook_message(const char *target, const char *body, size_t len)
{
    struct wx_wechat_msg *m = calloc(1, sizeof *m);
    char et[16], msig[64], ts[32], nonce[32];
    qparam(target, "encrypt_type", et, sizeof et);
    if (wx_wechat_msg_parse(body, len, m, NULL) != 0) goto fail;
    if (strcmp(et, "aes") == 0) {
        qparam(target, "msg_signature", msig, sizeof msig);
        qparam(target, "timestamp", ts, sizeof ts);
        qparam(target, "nonce", nonce, sizeof nonce);
        size_t cap = wx_wechat_decrypt_cap(strlen(m->encrypt)), plen;
        char *plain = malloc(cap);
        int rc = wx_wechat_decrypt_msg(&hook.crypt, msig, ts, nonce, m->encrypt, plain, cap, &plen);
        if (rc == 0) rc = wx_wechat_msg_parse(plain, plen, m, NULL);
        free(plain);
        if (rc != 0) goto fail;
    }
    return m;
fail:
    free(m);
    return NULL;
}

/* The answer to a recorded request, per hook.reply. */
static char *hook_answer(const char *target, const char *body, size_t len, enum reply_kind kind)
{
    if (kind == R_SUCCESS) return strdup("success");
    if (kind == R_EMPTY) return strdup("");
    if (kind == R_JSON) return strdup("{\"reply\":\"x\"}");
    struct wx_wechat_msg *m = hook_message(target, body, len);
    if (m == NULL) return strdup("not a message");
    if (m->event == WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH) {
        free(m);
        return strdup("success");
    }
    char text[9000], *out = malloc(64 << 10);
    snprintf(text, sizeof text, "pong:%s",
             m->msg_type == WX_WECHAT_MSG_EVENT ? m->event_text : m->content);
    if (kind == R_SWAPPED) {
        snprintf(out, 64 << 10,
                 "<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]>"
                 "</FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                 "<Content><![CDATA[x]]></Content></xml>",
                 m->to_user, m->from_user);
        free(m);
        return out;
    }
    int n = wx_wechat_reply_text(m, time(NULL), text, out, 64 << 10);
    bool enc = kind == R_ENCRYPTED || kind == R_BADSIG || (kind == R_TEXT && hook.encrypt);
    free(m);
    if (n < 0 || !enc) return out;
    size_t cap = wx_wechat_encrypt_reply_cap(&hook.crypt, (size_t)n), elen;
    char *enc_out = malloc(cap);
    uint8_t random[WX_WECHAT_RANDOM_LEN] = "0123456789abcdef";
    int rc = wx_wechat_encrypt_reply(&hook.crypt, out, (size_t)n, "1409659589", "263014780", random,
                                     enc_out, cap, &elen);
    free(out);
    if (rc != 0) return strdup("encrypt failed");
    if (kind == R_BADSIG) {
        char *sig = strstr(enc_out, "<MsgSignature><![CDATA[");
        if (sig != NULL) sig[23] = sig[23] == '0' ? '1' : '0';
    }
    return enc_out;
}

static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return;
        p += n;
        len -= (size_t)n;
    }
}

static void hook_serve(int fd)
{
    char *target, *body;
    size_t len;
    if (!read_request(fd, &target, &body, &len)) return;
    pthread_mutex_lock(&hook.mu);
    bool hold = hook.hold > 0;
    if (hold) hook.hold--;
    enum reply_kind kind = hook.reply;
    if (hook.n < HOOK_MAX) {
        hook.reqs[hook.n++] = (struct hook_req){target, body, len, now_ms()};
    }
    pthread_mutex_unlock(&hook.mu);
    if (hold) {
        /* No answer: wait for the sandbox to give up and close. */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;
        if (poll(&p, 1, WAIT_MS) == 1) (void)recv(fd, &c, 1, 0);
        return;
    }
    char *answer = hook_answer(target, body, len, kind);
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      strlen(answer));
    send_all(fd, head, (size_t)hl);
    send_all(fd, answer, strlen(answer));
    free(answer);
}

static void *hook_main(void *arg)
{
    (void)arg;
    while (!hook.stop) {
        struct pollfd p = {.fd = hook.fd, .events = POLLIN};
        if (poll(&p, 1, 100) != 1) continue;
        int c = accept(hook.fd, NULL, NULL);
        if (c < 0) continue;
        hook_serve(c);
        close(c);
    }
    return NULL;
}

static void hook_start(void)
{
    hook.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(hook.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(hook.fd, 64), 0);
    assert_int_equal(getsockname(hook.fd, (struct sockaddr *)&a, &len), 0);
    hook.port = ntohs(a.sin_port);
    assert_int_equal(wx_wechat_crypt_init(&hook.crypt, TOKEN, AES_KEY, APPID), 0);
    hook.stop = 0;
    assert_int_equal(pthread_create(&hook.thread, NULL, hook_main, NULL), 0);
}

static void hook_reset(enum reply_kind reply, unsigned hold)
{
    pthread_mutex_lock(&hook.mu);
    for (unsigned i = 0; i < hook.n; i++) {
        free(hook.reqs[i].target);
        free(hook.reqs[i].body);
    }
    hook.n = 0;
    hook.reply = reply;
    hook.hold = hold;
    pthread_mutex_unlock(&hook.mu);
}

static void hook_stop(void)
{
    hook.stop = 1;
    pthread_join(hook.thread, NULL);
    close(hook.fd);
    hook_reset(R_TEXT, 0);
}

static unsigned hook_count(void)
{
    pthread_mutex_lock(&hook.mu);
    unsigned n = hook.n;
    pthread_mutex_unlock(&hook.mu);
    return n;
}

/* Waits for the n-th request (1-based) and returns it. */
static const struct hook_req *hook_wait(unsigned n)
{
    int64_t end = now_ms() + WAIT_MS;
    while (hook_count() < n) {
        if (now_ms() > end) fail_msg("the webhook got %u requests, expected %u", hook_count(), n);
        sleep_ms(10);
    }
    return &hook.reqs[n - 1];
}

/*
 * Checks a recorded request as the bank must: `signature` over (token, timestamp, nonce);
 * outside plain mode encrypt_type=aes and msg_signature over (token, timestamp, nonce,
 * Encrypt), the body's shape for the mode (safe: only ToUserName and Encrypt; compat: the
 * plain fields too, equal to the decrypted ones); openid = FromUserName; ToUserName = the
 * account. Returns the plain message (free it).
 */
static struct wx_wechat_msg *verify_request(const struct hook_req *r, const char *mode)
{
    char sig[64], ts[32], nonce[32], openid[80], et[16], msig[64];
    qparam(r->target, "signature", sig, sizeof sig);
    qparam(r->target, "timestamp", ts, sizeof ts);
    qparam(r->target, "nonce", nonce, sizeof nonce);
    qparam(r->target, "openid", openid, sizeof openid);
    qparam(r->target, "encrypt_type", et, sizeof et);
    qparam(r->target, "msg_signature", msig, sizeof msig);
    const char *parts[] = {TOKEN, ts, nonce};
    assert_true(wx_wechat_signature_ok(parts, 3, sig));
    assert_true(strncmp(r->target, "/wechat?", 8) == 0);
    /* Real time, even when a test moved the platform's clock (the bank checks the skew). */
    assert_true(labs(strtol(ts, NULL, 10) - (long)time(NULL)) < 10);
    struct wx_wechat_msg *env = calloc(1, sizeof *env);
    assert_int_equal(wx_wechat_msg_parse(r->body, r->body_len, env, NULL), 0);
    assert_string_equal(env->to_user, ACCOUNT);
    struct wx_wechat_msg *m;
    if (strcmp(mode, "plain") == 0) {
        assert_string_equal(et, "");
        assert_string_equal(msig, "");
        assert_false(wx_wechat_msg_has(env, "Encrypt"));
        m = env;
    } else {
        assert_string_equal(et, "aes");
        const char *parts4[] = {TOKEN, ts, nonce, env->encrypt};
        assert_true(wx_wechat_signature_ok(parts4, 4, msig));
        m = hook_message(r->target, r->body, r->body_len);
        assert_non_null(m);
        bool compat = strcmp(mode, "compat") == 0;
        assert_int_equal(wx_wechat_msg_has(env, "FromUserName"), compat);
        assert_int_equal(wx_wechat_msg_has(env, "MsgType"), compat);
        if (compat) {
            assert_string_equal(env->from_user, m->from_user);
            assert_string_equal(env->msg_type_text, m->msg_type_text);
            assert_string_equal(env->content, m->content);
            assert_string_equal(env->msg_id_text, m->msg_id_text);
            assert_string_equal(env->event_text, m->event_text);
        }
        free(env);
    }
    assert_string_equal(m->to_user, ACCOUNT);
    assert_string_equal(m->from_user, openid);
    assert_int_equal(strlen(openid), 28);
    assert_int_equal(openid[0], 'o');
    return m;
}

/* ======================================================================================
 * HTTP to the sandbox (libcurl easy)
 * ====================================================================================== */

struct resp {
    long status;
    char *body;
    size_t len;
    char location[2048];
    char csp[512];
    char content_type[128];
    CURLcode rc;
};

static char origin[64]; /* http://127.0.0.1:PORT of the running sandbox */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    r->body = realloc(r->body, r->len + size * n + 1);
    memcpy(r->body + r->len, p, size * n);
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    if (len > 26 && strncasecmp(p, "Content-Security-Policy: ", 25) == 0) {
        snprintf(r->csp, sizeof r->csp, "%.*s", (int)(len - 27), p + 25);
    }
    return len;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request; body NULL for a GET. ctype NULL sends none; extra is one more header line
 * ("Name: value") or NULL. */
static void http_with(const char *method, const char *path, const char *ctype, const char *extra,
                      const char *body, size_t body_len, long timeout_ms, struct resp *r)
{
    memset(r, 0, sizeof *r);
    r->body = strdup("");
    CURL *c = curl_easy_init();
    char url[4096];
    snprintf(url, sizeof url, "%s%s", origin, path);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    char ct[160];
    if (ctype != NULL) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    } else {
        h = curl_slist_append(h, "Content-Type:");
    }
    if (extra != NULL) h = curl_slist_append(h, extra);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *loc = NULL, *type = NULL;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    if (loc != NULL) snprintf(r->location, sizeof r->location, "%s", loc);
    if (type != NULL) snprintf(r->content_type, sizeof r->content_type, "%s", type);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void http(const char *method, const char *path, const char *ctype, const char *body,
                 size_t body_len, long timeout_ms, struct resp *r)
{
    http_with(method, path, ctype, NULL, body, body_len, timeout_ms, r);
}

static json_t *parse_json(const struct resp *r)
{
    json_error_t e;
    json_t *v = json_loadb(r->body, r->len, 0, &e);
    if (v == NULL) fail_msg("not JSON (HTTP %ld): %.200s", r->status, r->body);
    return v;
}

/* GET of a platform or page path; asserts HTTP 200 and returns the JSON. */
static json_t *get_json(const char *path)
{
    struct resp r;
    http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
    if (r.status != 200) fail_msg("GET %s: HTTP %ld %.200s", path, r.status, r.body);
    json_t *v = parse_json(&r);
    resp_free(&r);
    return v;
}

/* POST of a platform API call (no Content-Type, as many SDKs send); asserts HTTP 200. */
static json_t *api_post(const char *path, const char *json)
{
    struct resp r;
    http("POST", path, NULL, json, strlen(json), WAIT_MS, &r);
    if (r.status != 200) fail_msg("POST %s: HTTP %ld %.200s", path, r.status, r.body);
    json_t *v = parse_json(&r);
    resp_free(&r);
    return v;
}

/* POST of a page call; returns the HTTP status and the JSON in *out (may be NULL). */
static long page_post(const char *path, const char *json, json_t **out)
{
    struct resp r;
    http("POST", path, "application/json", json, strlen(json), WAIT_MS, &r);
    long st = r.status;
    if (out != NULL) *out = parse_json(&r);
    resp_free(&r);
    return st;
}

/* The errcode of a platform answer (0 when absent, as in token answers). */
static int errcode(const json_t *v)
{
    return (int)json_integer_value(json_object_get(v, "errcode"));
}

static void assert_errcode(json_t *v, int code)
{
    if (errcode(v) != code) {
        char *t = json_dumps(v, 0);
        fail_msg("expected errcode %d, got %s", code, t);
    }
    if (code != 0) {
        /* The platform's shape: errcode and errmsg only, errmsg with a request id. */
        assert_int_equal(json_object_size(v), 2);
        assert_non_null(strstr(json_string_value(json_object_get(v, "errmsg")), " rid: "));
    } else {
        assert_string_equal(json_string_value(json_object_get(v, "errmsg")), "ok");
    }
    json_decref(v);
}

/* ======================================================================================
 * The sandbox process
 * ====================================================================================== */

static pid_t sandbox_pid = -1;

/* Starts `wxbank sandbox` in mode with extra NAME=VALUE settings; waits for its URL. */
static void sandbox_start(const char *mode, const char *timeout_ms, const char *const *extra,
                          const char *cards)
{
    int out[2];
    char hook_url[64], line[512];
    snprintf(hook_url, sizeof hook_url, "http://127.0.0.1:%d/wechat", hook.port);
    assert_int_equal(pipe(out), 0);
    /* Everything the child needs is made before fork: the parent has threads (the fake
     * webhook), and a child that allocates can hang on a lock one of them held. */
    char log[PATH_MAX + 32], vars[12][512];
    snprintf(log, sizeof log, "%s/sandbox.log", workdir);
    const char *settings[][2] = {{"WXBANK_WECHAT_APPID", APPID},
                                 {"WXBANK_WECHAT_SECRET", SECRET},
                                 {"WXBANK_WECHAT_TOKEN", TOKEN},
                                 {"WXBANK_WECHAT_AES_KEY", AES_KEY},
                                 {"WXBANK_SANDBOX_ACCOUNT", ACCOUNT},
                                 {"WXBANK_SANDBOX_LISTEN", "127.0.0.1:0"},
                                 {"WXBANK_SANDBOX_WEBHOOK_URL", hook_url},
                                 {"WXBANK_SANDBOX_MODE", mode},
                                 {"WXBANK_SANDBOX_WEBHOOK_TIMEOUT_MS", timeout_ms},
                                 {"WXBANK_LOG_LEVEL", "info"},
                                 {"WXBANK_DB_URL", "sqlite:sandbox-unused.db"}};
    size_t nsettings = sizeof settings / sizeof settings[0];
    char *envp[256];
    size_t ne = 0;
    /* The first of a name counts: a test's extra settings come before the defaults. */
    for (size_t i = 0; extra != NULL && extra[i] != NULL && ne < 200; i++)
        envp[ne++] = (char *)extra[i];
    for (size_t i = 0; i < nsettings; i++) {
        snprintf(vars[i], sizeof vars[i], "%s=%s", settings[i][0], settings[i][1]);
        envp[ne++] = vars[i];
    }
    for (char **e = environ; *e != NULL && ne < 255; e++) {
        bool ours = strncmp(*e, "WXBANK_", 7) == 0 && strncmp(*e, "WXBANK_BIN=", 11) != 0;
        if (!ours) envp[ne++] = *e;
    }
    envp[ne] = NULL;
    const char *bin = getenv("WXBANK_BIN");
    char *const argv_cards[] = {"wxbank", "sandbox", "--cards", (char *)cards, NULL};
    char *const argv_plain[] = {"wxbank", "sandbox", NULL};
    sandbox_pid = fork();
    assert_true(sandbox_pid >= 0);
    if (sandbox_pid == 0) {
        int l = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (l < 0 || chdir(workdir) != 0) _exit(127);
        dup2(out[1], 1);
        dup2(l, 2);
        close(out[0]);
        execve(bin, cards != NULL ? argv_cards : argv_plain, envp);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    origin[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "sandbox on http://");
        if (p != NULL) {
            const char *end = strstr(p, "/sandbox/");
            assert_non_null(end);
            snprintf(origin, sizeof origin, "%.*s", (int)(end - (p + 11)), p + 11);
        }
        if (strstr(line, "wechat.api_base = ") != NULL) break;
    }
    fclose(f);
    if (origin[0] == '\0') fail_msg("wxbank sandbox did not start (see %s/sandbox.log)", workdir);
}

static int sandbox_stop(void)
{
    int st = 0;
    if (sandbox_pid <= 0) return 0;
    kill(sandbox_pid, SIGTERM);
    waitpid(sandbox_pid, &st, 0);
    sandbox_pid = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "wxbank sandbox did not stop cleanly (status %d)\n", st);
        return -1;
    }
    return 0;
}

static int make_workdir(void)
{
    snprintf(workdir, sizeof workdir, "/tmp/wxbank-sandbox-XXXXXX");
    return mkdtemp(workdir) != NULL ? 0 : -1;
}

/* Keeps the logs (sandbox.log, bank.log) for the suite's scan, then removes the directory. */
static int remove_workdir(void)
{
    return serve_finish("test_sandbox", workdir, false);
}

static int setup_mode(const char *mode, const char *timeout_ms)
{
    if (make_workdir() != 0) return -1;
    hook_start();
    hook.encrypt = strcmp(mode, "safe") == 0;
    hook_reset(R_TEXT, 0);
    sandbox_start(mode, timeout_ms, NULL, NULL);
    return 0;
}

static int teardown_mode(void **state)
{
    (void)state;
    int rc = sandbox_stop();
    hook_stop();
    return rc == 0 ? remove_workdir() : rc;
}

static int setup_plain(void **state)
{
    (void)state;
    return setup_mode("plain", SHORT_TIMEOUT);
}

static int setup_compat(void **state)
{
    (void)state;
    return setup_mode("compat", "3000");
}

static int setup_safe(void **state)
{
    (void)state;
    return setup_mode("safe", "3000");
}

/* ======================================================================================
 * Page helpers: followers and what their phones show
 * ====================================================================================== */

static char last_openid[80];

/* Creates a follower; with follow, waits for the webhook's subscribe request. */
static int64_t stat_int(const char *a, const char *b);

static const char *new_follower(const char *nickname, bool follow)
{
    char body[256];
    json_t *v;
    unsigned before = hook_count();
    snprintf(body, sizeof body, "{\"nickname\":\"%s\",\"follow\":%s}", nickname,
             follow ? "true" : "false");
    assert_int_equal(page_post("/sandbox/api/followers", body, &v), 201);
    const char *openid =
        json_string_value(json_object_get(json_object_get(v, "follower"), "openid"));
    assert_non_null(openid);
    snprintf(last_openid, sizeof last_openid, "%s", openid);
    json_decref(v);
    if (follow) {
        hook_wait(before + 1);
        /* The hook has the subscribe; wait until its answer is on the phone too, so a test
         * counting the lines after this point does not count the welcome. */
        int64_t end = now_ms() + WAIT_MS;
        while (stat_int("webhook", "in_flight") != 0 && now_ms() < end)
            sleep_ms(10);
    }
    return last_openid;
}

/* Sends a page action for openid; returns the HTTP status and the answer. */
static long act(const char *openid, const char *fields, json_t **out)
{
    char body[8192];
    snprintf(body, sizeof body, "{\"openid\":\"%s\",%s}", openid, fields);
    return page_post("/sandbox/api/send", body, out);
}

/* Sends a text and waits for the webhook's request; returns its index (1-based). */
static unsigned send_text(const char *openid, const char *text)
{
    char fields[4096];
    json_t *v;
    unsigned before = hook_count();
    json_t *s = json_string(text);
    char *quoted = json_dumps(s, JSON_ENCODE_ANY);
    snprintf(fields, sizeof fields, "\"type\":\"text\",\"content\":%s", quoted);
    free(quoted);
    json_decref(s);
    assert_int_equal(act(openid, fields, &v), 202);
    json_decref(v);
    hook_wait(before + 1);
    return before + 1;
}

/*
 * Waits until the follower's chat has a line newer than after_seq with from/type (and,
 * when content is not NULL, that content); returns it (a new reference).
 */
static json_t *wait_line(const char *openid, json_int_t after_seq, const char *from,
                         const char *type, const char *content)
{
    char path[256];
    int64_t end = now_ms() + WAIT_MS;
    while (now_ms() < end) {
        snprintf(path, sizeof path, "/sandbox/api/events?after=0&wait=0&openid=%s", openid);
        json_t *ev = get_json(path);
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(ev, "messages"), i, m)
        {
            const char *c = json_string_value(json_object_get(m, "content"));
            if (json_integer_value(json_object_get(m, "seq")) > after_seq &&
                strcmp(json_string_value(json_object_get(m, "from")), from) == 0 &&
                strcmp(json_string_value(json_object_get(m, "type")), type) == 0 &&
                (content == NULL || (c != NULL && strcmp(c, content) == 0))) {
                json_incref(m);
                json_decref(ev);
                return m;
            }
        }
        json_decref(ev);
        sleep_ms(30);
    }
    fail_msg("no %s %s line on %s's phone", from, type, openid);
    return NULL;
}

/* The follower's newest chat seq. */
static json_int_t chat_seq(const char *openid)
{
    char path[256];
    snprintf(path, sizeof path, "/sandbox/api/events?after=0&wait=0&openid=%s", openid);
    json_t *ev = get_json(path);
    json_t *msgs = json_object_get(ev, "messages");
    size_t n = json_array_size(msgs);
    json_int_t seq =
        n > 0 ? json_integer_value(json_object_get(json_array_get(msgs, n - 1), "seq")) : 0;
    json_decref(ev);
    return seq;
}

/* Counts the follower's lines newer than after_seq from `from`. */
static size_t count_lines(const char *openid, json_int_t after_seq, const char *from)
{
    char path[256];
    snprintf(path, sizeof path, "/sandbox/api/events?after=0&wait=0&openid=%s", openid);
    json_t *ev = get_json(path);
    size_t i, n = 0;
    json_t *m;
    json_array_foreach(json_object_get(ev, "messages"), i, m)
    {
        if (json_integer_value(json_object_get(m, "seq")) > after_seq &&
            strcmp(json_string_value(json_object_get(m, "from")), from) == 0) {
            n++;
        }
    }
    json_decref(ev);
    return n;
}

static void advance_clock(long seconds)
{
    char body[64];
    snprintf(body, sizeof body, "{\"advance_s\":%ld}", seconds);
    assert_int_equal(page_post("/sandbox/api/clock", body, NULL), 200);
}

static void set_fault(const char *json)
{
    assert_int_equal(page_post("/sandbox/api/fault", json, NULL), 200);
}

/* A fresh access token (kept in a static buffer). */
static const char *fresh_token(void)
{
    static char tok[600];
    json_t *v = get_json("/sandbox/cgi-bin/token?grant_type=client_credential&appid=" APPID
                         "&secret=" SECRET);
    const char *t = json_string_value(json_object_get(v, "access_token"));
    assert_non_null(t);
    snprintf(tok, sizeof tok, "%s", t);
    json_decref(v);
    return tok;
}

/* A platform call with the token: path is "/sandbox/cgi-bin/..." without the query. */
static json_t *call_with(const char *path, const char *token, const char *json)
{
    char full[1024];
    snprintf(full, sizeof full, "%s?access_token=%s", path, token);
    return json != NULL ? api_post(full, json) : get_json(full);
}

/* A string of n copies of c. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A getcallbackip success: {"ip_list":["127.0.0.1"]}. */
static void assert_ip_list(json_t *v)
{
    if (!json_is_array(json_object_get(v, "ip_list"))) {
        char *t = json_dumps(v, 0);
        fail_msg("expected an ip_list, got %s", t);
    }
    json_decref(v);
}

static int64_t stat_int(const char *a, const char *b)
{
    json_t *s = get_json("/sandbox/api/stats");
    json_t *v = json_object_get(s, a);
    if (b != NULL) v = json_object_get(v, b);
    int64_t n = json_integer_value(v);
    json_decref(s);
    return n;
}

/* ======================================================================================
 * The page and the webhook (plain mode, 400 ms per attempt)
 * ====================================================================================== */

static void test_page_served(void **state)
{
    (void)state;
    struct resp r;
    http("GET", "/sandbox/", NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "text/html"));
    assert_non_null(strstr(r.csp, "default-src 'none'"));
    assert_non_null(strstr(r.csp, "script-src 'self'"));
    static const char *const ids[] = {"follower-select", "new-follower",  "chat-input",
                                      "chat-send",       "chat-log",      "menu",
                                      "pos-card",        "pos-amount",    "pos-pay",
                                      "pos-result",      "refuse-switch", "follow-toggle",
                                      "tab-sms",         "sms-list"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "id=\"%s\"", ids[i]);
        if (strstr(r.body, want) == NULL) fail_msg("the page has no %s", want);
    }
    assert_null(strstr(r.body, "src=\"http")); /* nothing from elsewhere */
    assert_null(strstr(r.body, "href=\"http"));
    resp_free(&r);
    http("GET", "/sandbox/app.js", NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "javascript"));
    resp_free(&r);
    http("GET", "/sandbox/app.css", NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http("GET", "/sandbox", NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 301);
    assert_non_null(strstr(r.location, "/sandbox/"));
    resp_free(&r);
    http("GET", "/sandbox/nothing-here", NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
}

/* A follower's text arrives signed, as the platform's XML, and the passive reply shows. */
static void test_plain_text_signed(void **state)
{
    (void)state;
    hook_reset(R_TEXT, 0);
    const char *openid = new_follower("张三", true);
    struct wx_wechat_msg *m = verify_request(hook_wait(1), "plain");
    assert_int_equal(m->msg_type, WX_WECHAT_MSG_EVENT);
    assert_int_equal(m->event, WX_WECHAT_EVENT_SUBSCRIBE);
    assert_false(wx_wechat_msg_has(m, "MsgId"));
    free(m);
    json_decref(wait_line(openid, 0, "account", "text", "pong:subscribe"));

    json_int_t seq = chat_seq(openid);
    const char *text = "查余额 ]]> <b>&amp; 你好";
    unsigned idx = send_text(openid, text);
    const struct hook_req *r = hook_wait(idx);
    assert_non_null(strstr(r->body, "<Content><![CDATA[查余额 ]]]]><![CDATA[> <b>&amp; 你好]]>"));
    m = verify_request(r, "plain");
    assert_int_equal(m->msg_type, WX_WECHAT_MSG_TEXT);
    assert_string_equal(m->content, text);
    assert_true(m->msg_id > TWO_POW_53);
    assert_true(llabs(m->create_time - (long long)time(NULL)) < 5);
    char want[128];
    snprintf(want, sizeof want, "pong:%s", text);
    json_t *line = wait_line(openid, seq, "account", "text", want);
    assert_string_equal(json_string_value(json_object_get(line, "via")), "reply");
    json_decref(line);
    /* The user's own bubble carries the MsgId the webhook saw. */
    line = wait_line(openid, seq, "user", "text", text);
    assert_string_equal(json_string_value(json_object_get(line, "msg_id")), m->msg_id_text);
    json_decref(line);
    free(m);
}

/* Image, location, menu presses, unsubscribe, QR subscribe and SCAN. */
static void test_message_kinds(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    const char *openid = new_follower("李四", true);
    char id[80];
    snprintf(id, sizeof id, "%s", openid);
    json_t *v;

    assert_int_equal(act(id, "\"type\":\"image\"", &v), 202);
    json_decref(v);
    struct wx_wechat_msg *m = verify_request(hook_wait(2), "plain");
    assert_int_equal(m->msg_type, WX_WECHAT_MSG_IMAGE);
    assert_true(m->msg_id > TWO_POW_53);
    char path[512];
    snprintf(path, sizeof path, "/sandbox/media/%s", m->media_id);
    assert_non_null(strstr(m->pic_url, path));
    struct resp r;
    http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "image/png");
    assert_memory_equal(r.body, "\x89PNG", 4);
    resp_free(&r);
    free(m);

    assert_int_equal(act(id,
                         "\"type\":\"location\",\"lat\":31.2304,\"lng\":121.4737,"
                         "\"label\":\"人民广场\"",
                         &v),
                     202);
    json_decref(v);
    m = verify_request(hook_wait(3), "plain");
    assert_int_equal(m->msg_type, WX_WECHAT_MSG_LOCATION);
    assert_string_equal(m->location_x_text, "31.230400");
    assert_string_equal(m->location_y_text, "121.473700");
    assert_string_equal(m->label, "人民广场");
    free(m);

    assert_int_equal(act(id, "\"type\":\"click\",\"key\":\"V1001_BALANCE\"", &v), 202);
    json_decref(v);
    m = verify_request(hook_wait(4), "plain");
    assert_int_equal(m->event, WX_WECHAT_EVENT_CLICK);
    assert_string_equal(m->event_key, "V1001_BALANCE");
    free(m);

    assert_int_equal(act(id, "\"type\":\"view\",\"url\":\"http://bank.example/m/bills\"", &v), 202);
    json_decref(v);
    m = verify_request(hook_wait(5), "plain");
    assert_int_equal(m->event, WX_WECHAT_EVENT_VIEW);
    assert_string_equal(m->event_key, "http://bank.example/m/bills");
    assert_true(wx_wechat_msg_has(m, "MenuId"));
    free(m);

    char body[256];
    snprintf(body, sizeof body, "{\"openid\":\"%s\",\"follow\":false}", id);
    assert_int_equal(page_post("/sandbox/api/follow", body, NULL), 202);
    m = verify_request(hook_wait(6), "plain");
    assert_int_equal(m->event, WX_WECHAT_EVENT_UNSUBSCRIBE);
    free(m);
    assert_int_equal(act(id, "\"type\":\"text\",\"content\":\"hi\"", &v), 409);
    json_decref(v);
    assert_int_equal(page_post("/sandbox/api/follow", body, NULL), 409); /* not following */

    snprintf(body, sizeof body, "{\"openid\":\"%s\",\"follow\":true,\"scene\":\"123\"}", id);
    assert_int_equal(page_post("/sandbox/api/follow", body, NULL), 202);
    m = verify_request(hook_wait(7), "plain");
    assert_int_equal(m->event, WX_WECHAT_EVENT_SUBSCRIBE);
    assert_string_equal(m->event_key, "qrscene_123");
    assert_true(wx_wechat_msg_has(m, "Ticket"));
    free(m);
    snprintf(body, sizeof body, "{\"openid\":\"%s\",\"follow\":true,\"scene\":\"456\"}", id);
    assert_int_equal(page_post("/sandbox/api/follow", body, NULL), 202);
    m = verify_request(hook_wait(8), "plain");
    assert_int_equal(m->event, WX_WECHAT_EVENT_SCAN);
    assert_string_equal(m->event_key, "456");
    free(m);
    assert_int_equal(hook_count(), 8);
}

/* No answer within the timeout: the same bytes go again, three attempts in all. */
static void test_retry_same_bytes(void **state)
{
    (void)state;
    hook_reset(R_TEXT, 0);
    const char *openid = new_follower("王五", true);
    json_int_t seq = chat_seq(openid);
    hook_reset(R_TEXT, 2);
    int64_t t0 = now_ms();
    send_text(openid, "retry me");
    const struct hook_req *a = hook_wait(1), *b = hook_wait(2), *c = hook_wait(3);
    assert_string_equal(a->target, b->target);
    assert_string_equal(a->target, c->target);
    assert_int_equal(a->body_len, c->body_len);
    assert_memory_equal(a->body, b->body, a->body_len);
    assert_memory_equal(a->body, c->body, a->body_len);
    /* Each re-send waits for the timeout (400 ms) of the one before. */
    assert_true(b->at_ms - a->at_ms >= 350);
    assert_true(c->at_ms - b->at_ms >= 350);
    assert_true(c->at_ms - t0 < 3000);
    struct wx_wechat_msg *m = verify_request(c, "plain");
    assert_string_equal(m->content, "retry me");
    free(m);
    json_decref(wait_line(openid, seq, "account", "text", "pong:retry me"));
    sleep_ms(600);
    assert_int_equal(hook_count(), 3);
    assert_true(stat_int("webhook", "retries") >= 2);
}

/* Three unanswered attempts: the phone says the account cannot serve now. */
static void test_no_answer_notice(void **state)
{
    (void)state;
    hook_reset(R_TEXT, 0);
    const char *openid = new_follower("赵六", true);
    json_int_t seq = chat_seq(openid);
    hook_reset(R_TEXT, 3);
    send_text(openid, "anyone?");
    hook_wait(3);
    json_t *line = wait_line(openid, seq, "system", "notice", UNAVAILABLE);
    json_decref(line);
    assert_int_equal(count_lines(openid, seq, "account"), 0);
    sleep_ms(600);
    assert_int_equal(hook_count(), 3);
}

/* Replies the platform rejects, and the two ways to say nothing. */
static void test_invalid_replies(void **state)
{
    (void)state;
    hook_reset(R_TEXT, 0);
    const char *openid = new_follower("钱七", true);
    static const struct {
        enum reply_kind kind;
        const char *detail; /* a part of the notice's detail; NULL: nothing is shown */
    } cases[] = {
        {R_SWAPPED, "ToUserName"}, {R_JSON, ""},    {R_ENCRYPTED, "plain mode"},
        {R_SUCCESS, NULL},         {R_EMPTY, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_int_t seq = chat_seq(openid);
        hook_reset(cases[i].kind, 0);
        send_text(openid, "hello");
        if (cases[i].detail != NULL) {
            json_t *line = wait_line(openid, seq, "system", "notice", UNAVAILABLE);
            const char *d = json_string_value(json_object_get(line, "detail"));
            if (d == NULL || strstr(d, cases[i].detail) == NULL) {
                fail_msg("case %zu: detail '%s' lacks '%s'", i, d ? d : "", cases[i].detail);
            }
            json_decref(line);
        } else {
            sleep_ms(500);
            assert_int_equal(count_lines(openid, seq, "system"), 0);
            assert_int_equal(count_lines(openid, seq, "account"), 0);
        }
    }
}

/* While a page waits on the long poll, a new chat line answers it at once. */
struct poll_arg {
    char path[256];
    json_t *answer;
    int64_t took_ms;
};

static void *poll_thread(void *p)
{
    struct poll_arg *a = p;
    int64_t t0 = now_ms();
    a->answer = get_json(a->path);
    a->took_ms = now_ms() - t0;
    return NULL;
}

static void test_long_poll(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    const char *openid = new_follower("吴十", true);
    char id[80];
    snprintf(id, sizeof id, "%s", openid);
    json_t *ev = get_json("/sandbox/api/events?after=0&wait=0");
    json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
    json_decref(ev);

    /* Nothing new: the answer comes after the wait, empty. */
    char path[256];
    snprintf(path, sizeof path, "/sandbox/api/events?after=%lld&wait=1&openid=%s", (long long)seq,
             id);
    int64_t t0 = now_ms();
    ev = get_json(path);
    assert_true(now_ms() - t0 >= 900);
    assert_int_equal(json_array_size(json_object_get(ev, "messages")), 0);
    json_decref(ev);

    struct poll_arg a = {.answer = NULL};
    snprintf(a.path, sizeof a.path, "/sandbox/api/events?after=%lld&wait=20&openid=%s",
             (long long)seq, id);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, poll_thread, &a), 0);
    sleep_ms(300);
    json_t *v;
    assert_int_equal(act(id, "\"type\":\"text\",\"content\":\"wake up\"", &v), 202);
    json_decref(v);
    pthread_join(th, NULL);
    assert_true(a.took_ms < 5000);
    json_t *m = json_array_get(json_object_get(a.answer, "messages"), 0);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "content")), "wake up");
    assert_true(json_integer_value(json_object_get(a.answer, "seq")) > seq);
    seq = json_integer_value(json_object_get(a.answer, "seq"));
    json_decref(a.answer);

    /* A new follower wakes the poll too, and the answer already names the change. */
    snprintf(a.path, sizeof a.path, "/sandbox/api/events?after=%lld&wait=20", (long long)seq);
    assert_int_equal(pthread_create(&th, NULL, poll_thread, &a), 0);
    sleep_ms(300);
    assert_int_equal(page_post("/sandbox/api/followers", "{\"follow\":false}", NULL), 201);
    pthread_join(th, NULL);
    assert_true(a.took_ms < 5000);
    assert_int_equal(json_integer_value(json_object_get(a.answer, "followers_seq")),
                     json_integer_value(json_object_get(a.answer, "seq")));
    json_decref(a.answer);
}

/* ======================================================================================
 * The platform API
 * ====================================================================================== */

static void test_token(void **state)
{
    (void)state;
    json_t *v = get_json("/sandbox/cgi-bin/token?grant_type=client_credential&appid=" APPID
                         "&secret=" SECRET);
    assert_int_equal(json_object_size(v), 2);
    assert_int_equal(strlen(json_string_value(json_object_get(v, "access_token"))), 136);
    assert_int_equal(json_integer_value(json_object_get(v, "expires_in")), 7200);
    json_decref(v);
    static const struct {
        const char *query;
        int code;
    } bad[] = {
        {"grant_type=client_credential&appid=wx0000000000000000&secret=" SECRET, 40013},
        {"grant_type=client_credential&appid=" APPID "&secret=wrong", 40125},
        {"grant_type=password&appid=" APPID "&secret=" SECRET, 40002},
        {"grant_type=client_credential&secret=" SECRET, 41002},
        {"grant_type=client_credential&appid=" APPID, 41004},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "/sandbox/cgi-bin/token?%s", bad[i].query);
        assert_errcode(get_json(path), bad[i].code);
    }
    assert_errcode(api_post("/sandbox/cgi-bin/token", "{}"), 43001);
    assert_errcode(get_json("/sandbox/cgi-bin/message/template/send?access_token=x"), 43002);

    /* Each fetch supersedes the last one after a five-minute overlap. */
    int64_t issued = stat_int("tokens_issued", NULL);
    char t1[600], t2[600];
    snprintf(t1, sizeof t1, "%s", fresh_token());
    snprintf(t2, sizeof t2, "%s", fresh_token());
    assert_string_not_equal(t1, t2);
    assert_int_equal(stat_int("tokens_issued", NULL), issued + 2);
    const char *ip = "/sandbox/cgi-bin/getcallbackip";
    v = call_with(ip, t1, NULL);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "ip_list"), 0)),
                        "127.0.0.1");
    json_decref(v);
    advance_clock(299);
    assert_ip_list(call_with(ip, t1, NULL));
    advance_clock(2);
    assert_errcode(call_with(ip, t1, NULL), 40001);
    v = call_with(ip, t2, NULL);
    assert_int_equal(errcode(v), 0);
    json_decref(v);
    advance_clock(7200);
    assert_errcode(call_with(ip, t2, NULL), 42001);
    assert_errcode(call_with(ip, "not-a-token", NULL), 40014);
    assert_errcode(get_json("/sandbox/cgi-bin/getcallbackip"), 41001);
}

static void test_stable_token(void **state)
{
    (void)state;
    const char *body = "{\"grant_type\":\"client_credential\",\"appid\":\"" APPID
                       "\",\"secret\":\"" SECRET "\",\"force_refresh\":false}";
    const char *force = "{\"grant_type\":\"client_credential\",\"appid\":\"" APPID
                        "\",\"secret\":\"" SECRET "\",\"force_refresh\":true}";
    const char *path = "/sandbox/cgi-bin/stable_token";
    const char *ip = "/sandbox/cgi-bin/getcallbackip";
    char s1[600], s3[600];
    json_t *v = api_post(path, body);
    assert_int_equal(json_object_size(v), 2);
    json_int_t exp = json_integer_value(json_object_get(v, "expires_in"));
    assert_true(exp > 7000 && exp <= 7200);
    snprintf(s1, sizeof s1, "%s", json_string_value(json_object_get(v, "access_token")));
    json_decref(v);
    v = api_post(path, body); /* the same token again */
    assert_string_equal(json_string_value(json_object_get(v, "access_token")), s1);
    json_decref(v);
    /* /cgi-bin/token does not touch the stable lineage. */
    fresh_token();
    fresh_token();
    advance_clock(301);
    assert_ip_list(call_with(ip, s1, NULL));
    v = api_post(path, force);
    snprintf(s3, sizeof s3, "%s", json_string_value(json_object_get(v, "access_token")));
    json_decref(v);
    assert_string_not_equal(s1, s3);
    assert_errcode(call_with(ip, s1, NULL), 40001);
    v = call_with(ip, s3, NULL);
    assert_int_equal(errcode(v), 0);
    json_decref(v);
    assert_errcode(api_post(path, force), 45011); /* 30 s apart */
    assert_errcode(api_post(path, "{\"grant_type\":\"client_credential\",\"appid\":\"" APPID
                                  "\",\"secret\":\"nope\"}"),
                   40125);
    assert_errcode(api_post(path, "not json"), 47001);
    assert_errcode(api_post(path, ""), 44002);
}

static const char *TEMPLATE_BODY =
    "{\"touser\":\"%s\",\"template_id\":\"ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY\","
    "\"url\":\"http://bank.example/m/t/1\",\"client_msg_id\":\"%s\","
    "\"data\":{\"first\":{\"value\":\"您好\"},\"keyword1\":{\"value\":\"巧克力\"},"
    "\"keyword2\":{\"value\":\"39.8元\"},\"remark\":{\"value\":\"谢谢\"}}}";

static void test_template(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    const char *openid = new_follower("郑十一", true);
    char id[80], body[2048];
    snprintf(id, sizeof id, "%s", openid);
    const char *tok = fresh_token();
    const char *path = "/sandbox/cgi-bin/message/template/send";
    json_int_t seq = chat_seq(id);
    snprintf(body, sizeof body, TEMPLATE_BODY, id, "MSG_000001");
    json_t *v = call_with(path, tok, body);
    assert_int_equal(errcode(v), 0);
    assert_int_equal(json_object_size(v), 3);
    json_t *msgid = json_object_get(v, "msgid");
    assert_true(json_is_integer(msgid));
    uint64_t mid = (uint64_t)json_integer_value(msgid);
    assert_true(mid > TWO_POW_53);
    json_decref(v);

    json_t *line = wait_line(id, seq, "account", "template", NULL);
    json_t *rows = json_object_get(line, "rows");
    assert_int_equal(json_array_size(rows), 2); /* first and remark are not shown since 2023 */
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "key")),
                        "keyword1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "value")),
                        "39.8元");
    assert_string_equal(json_string_value(json_object_get(line, "url")),
                        "http://bank.example/m/t/1");
    json_decref(line);

    /* The delivery report reaches the webhook, as the platform sends it. */
    struct wx_wechat_msg *m = verify_request(hook_wait(2), "plain");
    assert_int_equal(m->event, WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH);
    assert_int_equal(m->template_msg_id, mid);
    assert_string_equal(m->status, "success");
    assert_false(wx_wechat_msg_has(m, "MsgId"));
    free(m);

    /* client_msg_id: the same send within 10 minutes is sent once. */
    v = call_with(path, tok, body);
    assert_int_equal((uint64_t)json_integer_value(json_object_get(v, "msgid")), mid);
    json_decref(v);
    sleep_ms(1500);
    assert_int_equal(hook_count(), 2);
    assert_int_equal(count_lines(id, seq, "account"), 1);

    snprintf(body, sizeof body, "{\"touser\":\"%s\",\"data\":{}}", id);
    assert_errcode(call_with(path, tok, body), 40037);

    /* Data: at most 20 keys, values of at most 512 bytes. */
    for (int keys = 20; keys <= 21; keys++) {
        json_t *data = json_object();
        for (int k = 0; k < keys; k++) {
            char name[24];
            snprintf(name, sizeof name, "thing%d", k);
            json_object_set_new(data, name, json_pack("{s:s}", "value", "x"));
        }
        json_t *o = json_pack("{s:s,s:s,s:o}", "touser", id, "template_id", "t1", "data", data);
        char *text = json_dumps(o, JSON_COMPACT);
        assert_errcode(call_with(path, tok, text), keys == 20 ? 0 : 47001);
        free(text);
        json_decref(o);
    }
    for (size_t len = 512; len <= 513; len++) {
        char *value = repeat('v', len);
        json_t *o = json_pack("{s:s,s:s,s:{s:{s:s}}}", "touser", id, "template_id", "t1", "data",
                              "keyword1", "value", value);
        char *text = json_dumps(o, JSON_COMPACT);
        json_t *v2 = call_with(path, tok, text);
        assert_int_equal(errcode(v2), len == 512 ? 0 : 47003);
        json_decref(v2);
        free(text);
        free(value);
        json_decref(o);
    }
    snprintf(body, sizeof body, "{\"touser\":\"%s\",\"template_id\":\"t1\",\"data\":[1]}", id);
    assert_errcode(call_with(path, tok, body), 47001);
    snprintf(body, sizeof body, TEMPLATE_BODY, "oUnknownUnknownUnknownUnknown", "x");
    assert_errcode(call_with(path, tok, body), 40003);
    assert_errcode(call_with(path, tok, "{\"touser\":"), 47001);
    assert_errcode(call_with(path, tok, ""), 44002);
    assert_errcode(call_with(path, "bad", "{}"), 40014);

    snprintf(body, sizeof body, "{\"openid\":\"%s\",\"refuses\":true}", id);
    assert_int_equal(page_post("/sandbox/api/refuse", body, NULL), 200);
    snprintf(body, sizeof body, TEMPLATE_BODY, id, "MSG_000002");
    assert_errcode(call_with(path, tok, body), 43101);
    snprintf(body, sizeof body, "{\"openid\":\"%s\",\"refuses\":false}", id);
    assert_int_equal(page_post("/sandbox/api/refuse", body, NULL), 200);
    snprintf(body, sizeof body, "{\"openid\":\"%s\",\"follow\":false}", id);
    assert_int_equal(page_post("/sandbox/api/follow", body, NULL), 202);
    snprintf(body, sizeof body, TEMPLATE_BODY, id, "MSG_000003");
    assert_errcode(call_with(path, tok, body), 43004);
}

/* Uploads data as the multipart part `part` (filename a.bin); returns the answer. */
static json_t *upload(const char *token, const char *type, const char *part, const void *data,
                      size_t len, const char *filename)
{
    struct resp r = {.body = strdup("")};
    char url[1024];
    snprintf(url, sizeof url, "%s/sandbox/cgi-bin/media/upload?access_token=%s&type=%s", origin,
             token, type);
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *p = curl_mime_addpart(mime);
    curl_mime_name(p, part);
    curl_mime_data(p, data, len);
    curl_mime_filename(p, filename);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    assert_int_equal(r.status, 200);
    json_t *v = parse_json(&r);
    resp_free(&r);
    return v;
}

static const uint8_t PNG[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                              'I',  'H', 'D', 'R', 0,    0,    0,    1,    0, 0, 0, 1};
static const uint8_t JPEG[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0};

static void test_media(void **state)
{
    (void)state;
    const char *tok = fresh_token();
    json_t *v = upload(tok, "image", "media", PNG, sizeof PNG, "a.png");
    assert_int_equal(json_object_size(v), 3);
    assert_string_equal(json_string_value(json_object_get(v, "type")), "image");
    const char *mid = json_string_value(json_object_get(v, "media_id"));
    assert_int_equal(strlen(mid), 64);
    assert_true(json_is_integer(json_object_get(v, "created_at")));
    char path[256];
    snprintf(path, sizeof path, "/sandbox/media/%s", mid);
    json_decref(v);
    struct resp r;
    http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, sizeof PNG);
    assert_memory_equal(r.body, PNG, sizeof PNG);
    resp_free(&r);
    assert_errcode(upload(tok, "file", "media", PNG, sizeof PNG, "a.png"), 40004);
    assert_errcode(upload(tok, "image", "media", "hello", 5, "a.txt"), 40005);
    assert_errcode(upload(tok, "image", "file", PNG, sizeof PNG, "a.png"), 41005);
    assert_errcode(upload(tok, "thumb", "media", PNG, sizeof PNG, "a.png"), 40005);
    v = upload(tok, "thumb", "media", JPEG, sizeof JPEG, "a.jpg");
    assert_string_equal(json_string_value(json_object_get(v, "type")), "thumb");
    json_decref(v);
    assert_errcode(upload("bad", "image", "media", PNG, sizeof PNG, "a.png"), 40014);
    http("GET", "/sandbox/media/nope", NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
}

static void test_custom(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    const char *openid = new_follower("冯十二", true);
    char id[80], body[2048];
    snprintf(id, sizeof id, "%s", openid);
    const char *tok = fresh_token();
    const char *path = "/sandbox/cgi-bin/message/custom/send";
    json_int_t seq = chat_seq(id);
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"text\",\"text\":{\"content\":\"Hello World\"}}", id);
    assert_errcode(call_with(path, tok, body), 0);
    json_t *line = wait_line(id, seq, "account", "text", "Hello World");
    assert_string_equal(json_string_value(json_object_get(line, "via")), "custom");
    json_decref(line);
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"news\",\"news\":{\"articles\":[{\"title\":\"账单\","
             "\"description\":\"本期账单\",\"url\":\"http://bank.example/b\",\"picurl\":\"\"}]}}",
             id);
    assert_errcode(call_with(path, tok, body), 0);
    json_decref(wait_line(id, seq, "account", "news", NULL));
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"news\",\"news\":{\"articles\":[{\"title\":\"a\"},"
             "{\"title\":\"b\"}]}}",
             id);
    assert_errcode(call_with(path, tok, body), 45008);
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"news\",\"news\":{\"articles\":[]}}", id);
    assert_errcode(call_with(path, tok, body), 44003);
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"image\",\"image\":{\"media_id\":\"nope\"}}", id);
    assert_errcode(call_with(path, tok, body), 40007);
    json_t *up = upload(tok, "image", "media", PNG, sizeof PNG, "a.png");
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"image\",\"image\":{\"media_id\":\"%s\"}}", id,
             json_string_value(json_object_get(up, "media_id")));
    json_decref(up);
    assert_errcode(call_with(path, tok, body), 0);
    json_decref(wait_line(id, seq, "account", "image", NULL));
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"voice\",\"voice\":{\"media_id\":\"x\"}}", id);
    assert_errcode(call_with(path, tok, body), 40008);
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"text\",\"text\":{\"content\":\"\"}}", id);
    assert_errcode(call_with(path, tok, body), 44004);
    snprintf(body, sizeof body,
             "{\"touser\":\"oUnknownUnknownUnknownUnknown\",\"msgtype\":\"text\","
             "\"text\":{\"content\":\"x\"}}");
    assert_errcode(call_with(path, tok, body), 40003);

    /* 48 hours after the follower's last message, customer service may not write. */
    advance_clock(49 * 3600);
    tok = fresh_token();
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"text\",\"text\":{\"content\":\"late\"}}", id);
    assert_errcode(call_with(path, tok, body), 45015);
    send_text(id, "I am back");
    assert_errcode(call_with(path, tok, body), 0);
    char page[256];
    snprintf(page, sizeof page, "{\"openid\":\"%s\",\"refuses\":true}", id);
    assert_int_equal(page_post("/sandbox/api/refuse", page, NULL), 200);
    assert_errcode(call_with(path, tok, body), 43101);
    snprintf(page, sizeof page, "{\"openid\":\"%s\",\"refuses\":false}", id);
    assert_int_equal(page_post("/sandbox/api/refuse", page, NULL), 200);
    snprintf(page, sizeof page, "{\"openid\":\"%s\",\"follow\":false}", id);
    assert_int_equal(page_post("/sandbox/api/follow", page, NULL), 202);
    assert_errcode(call_with(path, tok, body), 43004);
}

/* A view URL of exactly n bytes. */
static char *url_of(size_t n)
{
    char *s = repeat('a', n);
    memcpy(s, "http://x/", 9);
    return s;
}

static json_t *leaf(const char *type, const char *name, const char *key_or_url)
{
    bool view = strcmp(type, "view") == 0;
    return json_pack("{s:s,s:s,s:s}", "type", type, "name", name, view ? "url" : "key", key_or_url);
}

/* menu/create with the given buttons (stolen); returns the errcode. */
static int menu_create(const char *tok, json_t *buttons)
{
    json_t *menu = json_pack("{s:o}", "button", buttons);
    char *text = json_dumps(menu, JSON_COMPACT);
    json_decref(menu);
    json_t *v = call_with("/sandbox/cgi-bin/menu/create", tok, text);
    free(text);
    int code = errcode(v);
    json_decref(v);
    return code;
}

static void test_menu_limits(void **state)
{
    (void)state;
    const char *tok = fresh_token();
    char *n16 = repeat('n', 16), *n17 = repeat('n', 17), *n60 = repeat('s', 60),
         *n61 = repeat('s', 61), *k128 = repeat('k', 128), *k129 = repeat('k', 129);
    char *u1024 = url_of(1024), *u1025 = url_of(1025);
    /* Just under every limit: accepted. */
    json_t *subs = json_array();
    for (int i = 0; i < 4; i++)
        json_array_append_new(subs, leaf("click", n60, k128));
    json_array_append_new(subs, leaf("view", "搜索", u1024));
    assert_int_equal(menu_create(tok, json_pack("[o,o,{s:s,s:o}]", leaf("click", n16, k128),
                                                leaf("click", "五个汉字!", "K"), "name", "菜单",
                                                "sub_button", subs)),
                     0);
    json_t *st = get_json("/sandbox/api/state");
    assert_int_equal(json_array_size(json_object_get(json_object_get(st, "menu"), "button")), 3);
    json_int_t menu_seq = json_integer_value(json_object_get(st, "menu_seq"));
    json_decref(st);
    assert_true(menu_seq > 0);

    /* Just over each one: the platform's code for it. */
    struct {
        json_t *buttons;
        int code;
    } cases[] = {
        {json_array(), 40016},
        {json_pack("[o,o,o,o]", leaf("click", "a", "k"), leaf("click", "b", "k"),
                   leaf("click", "c", "k"), leaf("click", "d", "k")),
         40016},
        {json_pack("[o]", leaf("click", n17, "k")), 40018},
        {json_pack("[o]", leaf("click", "六个汉字汉字", "k")), 40018},
        {json_pack("[o]", leaf("click", "", "k")), 40018},
        {json_pack("[o]", leaf("click", "a", k129)), 40019},
        {json_pack("[{s:s,s:s}]", "type", "click", "name", "a"), 40019},
        {json_pack("[o]", leaf("bogus", "a", "k")), 40017},
        {json_pack("[o]", leaf("view", "a", u1025)), 40020},
        {json_pack("[o]", leaf("view", "a", "ftp://x/")), 40055},
        {json_pack("[{s:s,s:[o,o,o,o,o,o]}]", "name", "m", "sub_button", leaf("click", "1", "k"),
                   leaf("click", "2", "k"), leaf("click", "3", "k"), leaf("click", "4", "k"),
                   leaf("click", "5", "k"), leaf("click", "6", "k")),
         40023},
        {json_pack("[{s:s,s:[o]}]", "name", "m", "sub_button", leaf("click", n61, "k")), 40025},
        {json_pack("[{s:s,s:[o]}]", "name", "m", "sub_button", leaf("click", "a", k129)), 40026},
        {json_pack("[{s:s,s:[o]}]", "name", "m", "sub_button", leaf("view", "a", u1025)), 40027},
        {json_pack("[{s:s,s:[o]}]", "name", "m", "sub_button", leaf("bogus", "a", "k")), 40024},
        {json_pack("[{s:s,s:[{s:s,s:[o]}]}]", "name", "m", "sub_button", "name", "n", "sub_button",
                   leaf("click", "a", "k")),
         40022},
        {json_pack("[o]", leaf("view", "a", "ftp://x/")), 40055},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code = menu_create(tok, cases[i].buttons);
        if (code != cases[i].code)
            fail_msg("case %zu: errcode %d, expected %d", i, code, cases[i].code);
    }
    assert_errcode(call_with("/sandbox/cgi-bin/menu/create", tok, "{\"button\":"), 47001);
    /* Refused menus changed nothing. */
    st = get_json("/sandbox/api/state");
    assert_int_equal(json_integer_value(json_object_get(st, "menu_seq")), menu_seq);
    json_decref(st);
    free(n16), free(n17), free(n60), free(n61), free(k128), free(k129), free(u1024), free(u1025);
}

/* Authorizes as openid (NULL: the page's selected follower); returns the code. */
static void authorize(const char *openid, const char *state_param, char *code, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path,
             "/sandbox/connect/oauth2/authorize?appid=" APPID
             "&redirect_uri=http%%3A%%2F%%2Fbank.example%%2Fm%%2Fbind%%3Fx%%3D1"
             "&response_type=code&scope=snsapi_base&state=%s%s%s",
             state_param, openid != NULL ? "&openid=" : "", openid != NULL ? openid : "");
    struct resp r;
    http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 302);
    const char *prefix = "http://bank.example/m/bind?x=1&code=";
    assert_true(strncmp(r.location, prefix, strlen(prefix)) == 0);
    const char *c = r.location + strlen(prefix);
    const char *amp = strchr(c, '&');
    assert_non_null(amp);
    assert_int_equal(amp - c, 32);
    snprintf(code, cap, "%.*s", (int)(amp - c), c);
    char want[160];
    snprintf(want, sizeof want, "&state=%s", state_param);
    assert_string_equal(amp, want);
    resp_free(&r);
}

static json_t *exchange(const char *code, const char *secret)
{
    char path[512];
    snprintf(path, sizeof path,
             "/sandbox/sns/oauth2/access_token?appid=" APPID
             "&secret=%s&code=%s&grant_type=authorization_code",
             secret, code);
    return get_json(path);
}

static void test_oauth(void **state)
{
    (void)state;
    const char *openid = new_follower("陈十三", false);
    char id[80], code[64];
    snprintf(id, sizeof id, "%s", openid);
    authorize(id, "STATE123", code, sizeof code);
    json_t *v = exchange(code, SECRET);
    assert_int_equal(json_object_size(v), 5);
    assert_string_equal(json_string_value(json_object_get(v, "openid")), id);
    assert_string_equal(json_string_value(json_object_get(v, "scope")), "snsapi_base");
    assert_int_equal(json_integer_value(json_object_get(v, "expires_in")), 7200);
    assert_non_null(json_string_value(json_object_get(v, "access_token")));
    assert_non_null(json_string_value(json_object_get(v, "refresh_token")));
    json_decref(v);
    assert_errcode(exchange(code, SECRET), 40163); /* single use */
    assert_errcode(exchange("0123456789abcdef0123456789abcdef", SECRET), 40029);
    authorize(id, "s", code, sizeof code);
    assert_errcode(exchange(code, "wrong"), 40125);
    advance_clock(301);
    assert_errcode(exchange(code, SECRET), 42003); /* five minutes */
    assert_errcode(get_json("/sandbox/sns/oauth2/access_token?appid=" APPID "&secret=" SECRET
                            "&grant_type=authorization_code"),
                   41008);

    /* Without &openid=, the follower selected on the page. */
    char body[128];
    snprintf(body, sizeof body, "{\"openid\":\"%s\"}", id);
    assert_int_equal(page_post("/sandbox/api/select", body, NULL), 200);
    authorize(NULL, "x", code, sizeof code);
    v = exchange(code, SECRET);
    assert_string_equal(json_string_value(json_object_get(v, "openid")), id);
    json_decref(v);

    static const char *const bad[] = {
        "appid=wx0&redirect_uri=http%3A%2F%2Fa&response_type=code&scope=snsapi_base&state=s",
        "appid=" APPID "&redirect_uri=ftp%3A%2F%2Fa&response_type=code&scope=snsapi_base&state=s",
        "appid=" APPID "&redirect_uri=http%3A%2F%2Fa&response_type=token&scope=snsapi_base",
        "appid=" APPID "&redirect_uri=http%3A%2F%2Fa&response_type=code&scope=snsapi_all",
        "appid=" APPID
        "&redirect_uri=http%3A%2F%2Fa&response_type=code&scope=snsapi_base&state=a+b",
        "appid=" APPID "&redirect_uri=http%3A%2F%2Fa&response_type=code&scope=snsapi_base"
        "&openid=oNobodyNobodyNobodyNobody123",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[512];
        struct resp r;
        snprintf(path, sizeof path, "/sandbox/connect/oauth2/authorize?%s", bad[i]);
        http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
        if (r.status != 400 && r.status != 409) fail_msg("case %zu: HTTP %ld", i, r.status);
        resp_free(&r);
    }
}

/* Every fault kind, on demand, for the next N calls. */
static void test_faults(void **state)
{
    (void)state;
    const char *tok = fresh_token();
    char t[600];
    snprintf(t, sizeof t, "%s", tok);
    const char *ip = "/sandbox/cgi-bin/getcallbackip";
    static const struct {
        const char *kind;
        int code;
    } errs[] = {{"token_expired", 42001},
                {"invalid_token", 40001},
                {"bad_token", 40014},
                {"quota", 45009},
                {"busy", -1}};
    int64_t applied = stat_int("faults_applied", NULL);
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"kind\":\"%s\",\"count\":1}", errs[i].kind);
        set_fault(body);
        assert_errcode(call_with(ip, t, NULL), errs[i].code);
        assert_ip_list(call_with(ip, t, NULL)); /* the next call is fine */
    }
    assert_int_equal(stat_int("faults_applied", NULL), applied + 5);

    struct resp r;
    char path[1024];
    snprintf(path, sizeof path, "%s?access_token=%s", ip, t);
    set_fault("{\"kind\":\"http500\"}");
    http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 500);
    resp_free(&r);
    set_fault("{\"kind\":\"garbage\"}");
    http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    assert_null(json_loadb(r.body, r.len, 0, NULL));
    resp_free(&r);
    set_fault("{\"kind\":\"timeout\"}");
    http("GET", path, NULL, NULL, 0, 800, &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    assert_int_equal(stat_int("held", NULL), 1);
    assert_ip_list(call_with(ip, t, NULL));

    /* count: the next two calls fail, the third works. */
    set_fault("{\"kind\":\"busy\",\"count\":2}");
    assert_errcode(call_with(ip, t, NULL), -1);
    assert_errcode(call_with(ip, t, NULL), -1);
    assert_ip_list(call_with(ip, t, NULL));

    /* A token fault waits for a call that carries a token: /cgi-bin/token is not one. */
    int64_t issued = stat_int("tokens_issued", NULL);
    set_fault("{\"kind\":\"token_expired\",\"count\":1}");
    snprintf(t, sizeof t, "%s", fresh_token());
    assert_int_equal(stat_int("tokens_issued", NULL), issued + 1);
    assert_errcode(call_with(ip, t, NULL), 42001);

    /* An endpoint filter. */
    set_fault("{\"kind\":\"quota\",\"count\":1,\"endpoint\":\"menu_create\"}");
    assert_ip_list(call_with(ip, t, NULL));
    assert_errcode(call_with("/sandbox/cgi-bin/menu/create", t, "{}"), 45009);
    assert_errcode(call_with("/sandbox/cgi-bin/menu/create", t, "{}"), 40016);

    /* "none" clears. */
    set_fault("{\"kind\":\"quota\",\"count\":5}");
    set_fault("{\"kind\":\"none\"}");
    assert_ip_list(call_with(ip, t, NULL));

    assert_int_equal(page_post("/sandbox/api/fault", "{\"kind\":\"nope\"}", NULL), 400);
    assert_int_equal(page_post("/sandbox/api/fault", "{\"kind\":\"quota\",\"count\":1001}", NULL),
                     400);
    assert_int_equal(
        page_post("/sandbox/api/fault", "{\"kind\":\"quota\",\"endpoint\":\"x\"}", NULL), 400);

    json_t *s = get_json("/sandbox/api/stats");
    json_t *codes = json_object_get(s, "errcodes");
    assert_true(json_integer_value(json_object_get(codes, "42001")) >= 2);
    assert_true(json_integer_value(json_object_get(codes, "45009")) >= 2);
    assert_true(json_integer_value(json_object_get(json_object_get(s, "calls"), "callback_ip")) >
                10);
    json_decref(s);
}

/* The page API refuses bad calls with 4xx and changes nothing. */
static void test_page_api_errors(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    const char *openid = new_follower("褚十四", true);
    char id[80], body[4096];
    snprintf(id, sizeof id, "%s", openid);
    struct resp r;
    snprintf(body, sizeof body, "{\"openid\":\"%s\",\"type\":\"text\",\"content\":\"x\"}", id);
    http("POST", "/sandbox/api/send", NULL, body, strlen(body), WAIT_MS, &r);
    assert_int_equal(r.status, 415);
    resp_free(&r);
    http("POST", "/sandbox/api/send", "text/plain", body, strlen(body), WAIT_MS, &r);
    assert_int_equal(r.status, 415);
    resp_free(&r);
    assert_int_equal(page_post("/sandbox/api/send", "{\"openid\":", NULL), 400);
    assert_int_equal(page_post("/sandbox/api/send", "[1]", NULL), 400);
    assert_int_equal(page_post("/sandbox/api/send", "{\"type\":\"text\"}", NULL), 400);
    assert_int_equal(
        act("oNobodyNobodyNobodyNobody123", "\"type\":\"text\",\"content\":\"x\"", NULL), 404);
    assert_int_equal(act(id, "\"type\":\"sticker\"", NULL), 400);
    assert_int_equal(act(id, "\"type\":\"text\",\"content\":\"\"", NULL), 400);
    assert_int_equal(act(id, "\"type\":\"location\",\"lat\":91,\"lng\":0", NULL), 400);
    assert_int_equal(act(id, "\"type\":\"view\",\"url\":\"javascript:x\"", NULL), 400);
    assert_int_equal(act(id, "\"type\":\"image\",\"media_id\":\"nope\"", NULL), 400);

    /* Text: 2048 bytes is the most. */
    char *text = repeat('t', 2048);
    snprintf(body, sizeof body, "\"type\":\"text\",\"content\":\"%s\"", text);
    assert_int_equal(act(id, body, NULL), 202);
    snprintf(body, sizeof body, "\"type\":\"text\",\"content\":\"%sx\"", text);
    assert_int_equal(act(id, body, NULL), 400);
    free(text);

    /* Nicknames: 64 bytes is the most; OpenIDs are checked and unique. */
    char *nick = repeat('n', 64);
    snprintf(body, sizeof body, "{\"nickname\":\"%s\",\"follow\":false}", nick);
    assert_int_equal(page_post("/sandbox/api/followers", body, NULL), 201);
    snprintf(body, sizeof body, "{\"nickname\":\"%sn\",\"follow\":false}", nick);
    assert_int_equal(page_post("/sandbox/api/followers", body, NULL), 400);
    free(nick);
    assert_int_equal(page_post("/sandbox/api/followers", "{\"openid\":\"o<script>\"}", NULL), 400);
    snprintf(body, sizeof body, "{\"openid\":\"%s\"}", id);
    assert_int_equal(page_post("/sandbox/api/followers", body, NULL), 400);
    assert_int_equal(page_post("/sandbox/api/followers", "{\"follow\":1}", NULL), 400);

    http("GET", "/sandbox/api/send", NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    http("POST", "/sandbox/api/state", "application/json", "{}", 2, WAIT_MS, &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    static const char *const polls[] = {"after=x", "after=1&wait=26", "openid=oNobody", "after=-1"};
    for (size_t i = 0; i < sizeof polls / sizeof polls[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/sandbox/api/events?%s", polls[i]);
        http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
        if (r.status != 400) fail_msg("%s: HTTP %ld", path, r.status);
        resp_free(&r);
    }
    char *big = repeat(' ', 17 << 10);
    memcpy(big, "{\"a\":1}", 7);
    assert_int_equal(page_post("/sandbox/api/send", big, NULL), 413);
    free(big);
    assert_int_equal(page_post("/sandbox/api/clock", "{\"advance_s\":-5}", NULL), 400);
    assert_int_equal(page_post("/sandbox/api/refuse", "{\"openid\":\"x\",\"refuses\":1}", NULL),
                     404);
    snprintf(body, sizeof body, "{\"openid\":\"%s\",\"refuses\":\"yes\"}", id);
    assert_int_equal(page_post("/sandbox/api/refuse", body, NULL), 400);
}

/* ======================================================================================
 * The SMS gateway, duplicates and the slow fault (plain mode)
 * ====================================================================================== */

#define SMS_PATH "/sandbox/sms/send"

/* POSTs a gateway call as the bank's dispatcher does; auth NULL sends no Authorization. */
static void sms_post(const char *json, const char *auth, long timeout_ms, struct resp *r)
{
    char h[256];
    if (auth != NULL) snprintf(h, sizeof h, "Authorization: %s", auth);
    http_with("POST", SMS_PATH, "application/json", auth != NULL ? h : NULL, json, strlen(json),
              timeout_ms, r);
}

/* Sends an SMS that must be accepted; returns its id. */
static long long sms_ok(const char *mobile, const char *text, const char *ref)
{
    json_t *b = json_pack("{s:s,s:s,s:s}", "mobile", mobile, "text", text, "ref", ref);
    char *body = json_dumps(b, JSON_COMPACT);
    struct resp r;
    sms_post(body, "Bearer gateway-key", WAIT_MS, &r);
    if (r.status != 200) fail_msg("SMS %s: HTTP %ld %.300s", ref, r.status, r.body);
    json_t *v = parse_json(&r);
    assert_int_equal(json_object_size(v), 3);
    assert_int_equal(json_integer_value(json_object_get(v, "code")), 0);
    assert_string_equal(json_string_value(json_object_get(v, "message")), "ok");
    const char *id = json_string_value(json_object_get(v, "id"));
    assert_non_null(id);
    assert_true(id[0] != '\0' && strspn(id, "0123456789") == strlen(id));
    long long n = strtoll(id, NULL, 10);
    json_decref(v);
    resp_free(&r);
    free(body);
    json_decref(b);
    return n;
}

/* The events answer's sms_seq: the newest SMS. */
static json_int_t sms_seq(void)
{
    json_t *ev = get_json("/sandbox/api/events?after=0&wait=0");
    json_int_t seq = json_integer_value(json_object_get(ev, "sms_seq"));
    json_decref(ev);
    return seq;
}

/* The SMS the page gets after seq, oldest first (a new reference). */
static json_t *sms_after(json_int_t after)
{
    char path[96];
    snprintf(path, sizeof path, "/sandbox/api/events?after=%lld&wait=0", (long long)after);
    json_t *ev = get_json(path);
    json_t *list = json_incref(json_object_get(ev, "sms"));
    json_decref(ev);
    assert_true(json_is_array(list));
    return list;
}

static const char *sms_field(const json_t *list, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(list, i), key));
}

/* An accepted SMS: the answer, the phone (events, long poll) and the counters. */
static void test_sms_accepted(void **state)
{
    (void)state;
    json_int_t seq = sms_seq();
    int64_t sent = stat_int("sms_sent", NULL), dups = stat_int("sms_duplicates", NULL);
    int64_t calls = stat_int("calls", "sms");
    const char *text = "【微信银行】您尾号8888的信用卡消费88.00元。\n回复TD退订";
    long long id = sms_ok("13800138000", text, "alert-0001-sms");
    json_t *list = sms_after(seq);
    assert_int_equal(json_array_size(list), 1);
    json_t *m = json_array_get(list, 0);
    assert_string_equal(sms_field(list, 0, "mobile"), "138****8000");
    assert_string_equal(sms_field(list, 0, "text"), text);
    assert_string_equal(sms_field(list, 0, "ref"), "alert-0001-sms");
    assert_int_equal(strtoll(sms_field(list, 0, "id"), NULL, 10), id);
    assert_true(json_is_false(json_object_get(m, "repeat")));
    assert_true(json_is_true(json_object_get(m, "auth")));
    assert_true(json_integer_value(json_object_get(m, "seq")) > seq);
    assert_true(json_integer_value(json_object_get(m, "time")) > 1700000000000LL);
    seq = json_integer_value(json_object_get(m, "seq"));
    assert_int_equal(sms_seq(), seq);
    json_decref(list);
    assert_int_equal(stat_int("sms_sent", NULL), sent + 1);
    assert_int_equal(stat_int("sms_duplicates", NULL), dups);
    assert_int_equal(stat_int("calls", "sms"), calls + 1);

    /* No Authorization is fine too (and noted); an international number; extra members. */
    struct resp r;
    sms_post("{\"mobile\":\"+8613900139000\",\"text\":\"x\",\"ref\":\"alert-0002-sms\","
             "\"sign\":\"WXBANK\"}",
             NULL, WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    list = sms_after(seq);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(sms_field(list, 0, "mobile"), "+86*******9000");
    assert_int_equal(strtoll(sms_field(list, 0, "id"), NULL, 10), id + 1);
    assert_true(json_is_false(json_object_get(json_array_get(list, 0), "auth")));
    seq = json_integer_value(json_object_get(json_array_get(list, 0), "seq"));
    json_decref(list);

    /* A waiting page hears of an SMS at once. */
    struct poll_arg a = {.answer = NULL};
    snprintf(a.path, sizeof a.path, "/sandbox/api/events?after=%lld&wait=20", (long long)seq);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, poll_thread, &a), 0);
    sleep_ms(300);
    sms_ok("13700137000", "wake up", "alert-0003-sms");
    pthread_join(th, NULL);
    assert_true(a.took_ms < 5000);
    json_t *got = json_object_get(a.answer, "sms");
    assert_int_equal(json_array_size(got), 1);
    assert_string_equal(sms_field(got, 0, "text"), "wake up");
    assert_string_equal(sms_field(got, 0, "mobile"), "137****7000");
    assert_int_equal(json_integer_value(json_object_get(a.answer, "sms_seq")),
                     json_integer_value(json_object_get(a.answer, "seq")));
    json_decref(a.answer);
    /* The full number is for the observer only: the page never gets it. */
    json_t *ev = get_json("/sandbox/api/events?after=0&wait=0");
    char *all = json_dumps(ev, 0);
    assert_null(strstr(all, "13800138000"));
    free(all);
    json_decref(ev);
}

/* GET /sandbox/api/sms for mobile (as it goes in the query) after seq; asserts HTTP 200. */
static json_t *sms_read(const char *mobile, json_int_t after)
{
    char path[160];
    snprintf(path, sizeof path, "/sandbox/api/sms?mobile=%s&after=%lld", mobile, (long long)after);
    return get_json(path);
}

/* The HTTP status of METHOD path; a refusal other than 405 must come as {"error": ...}. */
static long get_status(const char *method, const char *path)
{
    struct resp r;
    http(method, path, NULL, NULL, 0, WAIT_MS, &r);
    long st = r.status;
    if (st != 200 && st != 405) {
        json_t *v = parse_json(&r);
        assert_non_null(json_string_value(json_object_get(v, "error")));
        json_decref(v);
    }
    resp_free(&r);
    return st;
}

/* What one number received, unmasked, for tests that read one-time codes: other numbers
 * (one with the same last digits) left out, oldest first, after a seq, bounded. */
static void test_sms_read(void **state)
{
    (void)state;
    json_int_t seq = sms_seq();
    const char *code1 = "【微信银行】验证码 123456，5分钟内有效，请勿告诉他人。";
    const char *code2 = "【微信银行】验证码 654321，5分钟内有效，请勿告诉他人。";
    long long id1 = sms_ok("13800138000", code1, "otp-read-1");
    sms_ok("13900139000", "someone else", "otp-read-2");
    sms_ok("+8613800138000", "same last digits", "otp-read-3");
    long long id2 = sms_ok("13800138000", code2, "otp-read-4");

    json_t *v = sms_read("13800138000", seq);
    assert_int_equal(json_object_size(v), 2);
    assert_int_equal(json_integer_value(json_object_get(v, "seq")), sms_seq());
    json_t *list = json_object_get(v, "sms");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(sms_field(list, 0, "mobile"), "13800138000");
    assert_string_equal(sms_field(list, 0, "text"), code1);
    assert_int_equal(strtoll(sms_field(list, 0, "id"), NULL, 10), id1);
    assert_string_equal(sms_field(list, 1, "text"), code2);
    assert_int_equal(strtoll(sms_field(list, 1, "id"), NULL, 10), id2);
    json_t *first = json_array_get(list, 0), *second = json_array_get(list, 1);
    assert_int_equal(json_object_size(first), 5);
    json_int_t seq1 = json_integer_value(json_object_get(first, "seq"));
    json_int_t seq2 = json_integer_value(json_object_get(second, "seq"));
    assert_true(seq1 > seq && seq2 > seq1);
    assert_int_equal(seq2, sms_seq());
    assert_true(json_integer_value(json_object_get(first, "time")) > 1700000000000LL);
    json_decref(v);

    /* after: only what came later; the answer's seq is the next call's after. */
    v = sms_read("13800138000", seq1);
    list = json_object_get(v, "sms");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(sms_field(list, 0, "text"), code2);
    json_decref(v);
    v = sms_read("13800138000", seq2);
    assert_int_equal(json_array_size(json_object_get(v, "sms")), 0);
    json_decref(v);
    /* Without after: everything kept for the number, older tests' SMS included. */
    v = get_json("/sandbox/api/sms?mobile=13800138000");
    list = json_object_get(v, "sms");
    assert_true(json_array_size(list) >= 2);
    assert_string_equal(sms_field(list, json_array_size(list) - 1, "text"), code2);
    json_decref(v);

    /* A leading +, encoded or not (a bare + decodes as a space). */
    for (int i = 0; i < 2; i++) {
        v = sms_read(i == 0 ? "%2B8613800138000" : "+8613800138000", seq);
        list = json_object_get(v, "sms");
        assert_int_equal(json_array_size(list), 1);
        assert_string_equal(sms_field(list, 0, "mobile"), "+8613800138000");
        assert_string_equal(sms_field(list, 0, "text"), "same last digits");
        json_decref(v);
    }

    /* The bound: the newest SB_SMS_READ_MAX of more, still oldest first. */
    json_int_t before = sms_seq();
    char text[32], ref[32];
    for (int i = 0; i < SB_SMS_READ_MAX + 5; i++) {
        snprintf(text, sizeof text, "bulk %d", i);
        snprintf(ref, sizeof ref, "otp-bulk-%d", i);
        sms_ok("13700137001", text, ref);
    }
    v = sms_read("13700137001", before);
    list = json_object_get(v, "sms");
    assert_int_equal(json_array_size(list), SB_SMS_READ_MAX);
    assert_string_equal(sms_field(list, 0, "text"), "bulk 5");
    snprintf(text, sizeof text, "bulk %d", SB_SMS_READ_MAX + 4);
    assert_string_equal(sms_field(list, SB_SMS_READ_MAX - 1, "text"), text);
    json_decref(v);

    /* Refused: no number, a bad one, a bad after; the method is GET. */
    static const char *const bad[] = {
        "/sandbox/api/sms",
        "/sandbox/api/sms?after=0",
        "/sandbox/api/sms?mobile=",
        "/sandbox/api/sms?mobile=1380",
        "/sandbox/api/sms?mobile=138001380001380013800",
        "/sandbox/api/sms?mobile=1380013800x",
        "/sandbox/api/sms?mobile=%2B%2B13800138000",
        "/sandbox/api/sms?mobile=13800138000&after=x",
        "/sandbox/api/sms?mobile=13800138000&after=-1",
        "/sandbox/api/sms?mobile=13800138000&after=99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long st = get_status("GET", bad[i]);
        if (st != 400) fail_msg("GET %s: HTTP %ld, expected 400", bad[i], st);
    }
    assert_int_equal(get_status("POST", "/sandbox/api/sms?mobile=13800138000"), 405);

    /* The page's own feed still shows the numbers masked only. */
    json_t *ev = get_json("/sandbox/api/events?after=0&wait=0");
    char *all = json_dumps(ev, 0);
    assert_null(strstr(all, "13800138000"));
    assert_non_null(strstr(all, "123456"));
    free(all);
    json_decref(ev);
}

/* A JSON string of n bytes: n copies of c. */
static char *quoted(char c, size_t n)
{
    char *s = malloc(n + 3);
    s[0] = '"';
    memset(s + 1, c, n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}

/* Each malformed member gets a 400 that names it, and nothing is recorded. */
static void test_sms_refused(void **state)
{
    (void)state;
    char *t1025 = quoted('t', 1025), *r129 = quoted('r', 129);
    char big_text[1200], big_ref[200];
    snprintf(big_text, sizeof big_text, "{\"mobile\":\"13800138000\",\"text\":%s,\"ref\":\"a\"}",
             t1025);
    snprintf(big_ref, sizeof big_ref, "{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":%s}",
             r129);
    const struct {
        const char *body, *field;
    } bad[] = {
        {"", "body"},
        {"{\"mobile\":", "body"},
        {"[1]", "body"},
        {"{\"mobile\":\"13800138000\",\"text\":\"\xff\",\"ref\":\"a\"}", "body"},
        {"{\"mobile\":\"1\",\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":\"a\"}", "body"},
        {"{\"text\":\"x\",\"ref\":\"a\"}", "mobile"},
        {"{\"mobile\":13800138000,\"text\":\"x\",\"ref\":\"a\"}", "mobile"},
        {"{\"mobile\":\"1380\",\"text\":\"x\",\"ref\":\"a\"}", "mobile"},
        {"{\"mobile\":\"138001380001380013800\",\"text\":\"x\",\"ref\":\"a\"}", "mobile"},
        {"{\"mobile\":\"138-0013-8000\",\"text\":\"x\",\"ref\":\"a\"}", "mobile"},
        {"{\"mobile\":\"13800+138000\",\"text\":\"x\",\"ref\":\"a\"}", "mobile"},
        {"{\"mobile\":\"1380013800\\u0000\",\"text\":\"x\",\"ref\":\"a\"}", "body"},
        {"{\"mobile\":\"１３８００１３８０００\",\"text\":\"x\",\"ref\":\"a\"}", "mobile"},
        {"{\"mobile\":\"13800138000\",\"ref\":\"a\"}", "text"},
        {"{\"mobile\":\"13800138000\",\"text\":\"\",\"ref\":\"a\"}", "text"},
        {"{\"mobile\":\"13800138000\",\"text\":[\"x\"],\"ref\":\"a\"}", "text"},
        {big_text, "text"},
        {"{\"mobile\":\"13800138000\",\"text\":\"a\\u0000b\",\"ref\":\"a\"}", "body"},
        {"{\"mobile\":\"13800138000\",\"text\":\"a\\u0007b\",\"ref\":\"a\"}", "text"},
        {"{\"mobile\":\"13800138000\",\"text\":\"x\"}", "ref"},
        {"{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":\"\"}", "ref"},
        {"{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":7}", "ref"},
        {big_ref, "ref"},
        {"{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":\"参考\"}", "ref"},
        {"{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":\"a\\tb\"}", "ref"},
        {"{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":\"a\\u007f\"}", "ref"},
    };
    json_int_t seq = sms_seq();
    int64_t sent = stat_int("sms_sent", NULL), errors = stat_int("errors", "sms");
    const size_t nbad = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < nbad; i++) {
        struct resp r;
        sms_post(bad[i].body, "Bearer k", WAIT_MS, &r);
        if (r.status != 400) fail_msg("%.80s: HTTP %ld, expected 400", bad[i].body, r.status);
        json_t *v = parse_json(&r);
        assert_int_equal(json_object_size(v), 2);
        assert_int_equal(json_integer_value(json_object_get(v, "code")), 400);
        const char *why = json_string_value(json_object_get(v, "message"));
        assert_non_null(why);
        bool body_problem = strcmp(bad[i].field, "body") == 0;
        if (!body_problem && strncmp(why, bad[i].field, strlen(bad[i].field)) != 0) {
            fail_msg("%.80s: \"%s\" does not name %s", bad[i].body, why, bad[i].field);
        }
        json_decref(v);
        resp_free(&r);
    }
    struct resp r;
    http("GET", SMS_PATH, NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);

    /* Nothing of it reached the phone or the counters of accepted SMS. */
    assert_int_equal(sms_seq(), seq);
    json_t *list = sms_after(seq);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_int_equal(stat_int("sms_sent", NULL), sent);
    assert_int_equal(stat_int("errors", "sms"), errors + (int64_t)nbad);
    free(t1025);
    free(r129);
}

/* Each limit: accepted right at it (the refusals just over it are in test_sms_refused). */
static void test_sms_limits(void **state)
{
    (void)state;
    json_int_t seq = sms_seq();
    int64_t sent = stat_int("sms_sent", NULL);
    /* A valid SMS padded with spaces to WX_SANDBOX_SMS_BODY_MAX (16 KB), then one byte more. */
    static const char small[] = "{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":\"pad\"}";
    char *huge = malloc((16 << 10) + 2);
    memset(huge, ' ', (16 << 10) + 1);
    huge[(16 << 10) + 1] = '\0';
    memcpy(huge, small, sizeof small - 1);
    struct resp r;
    sms_post(huge, NULL, WAIT_MS, &r);
    assert_int_equal(r.status, 413);
    json_t *v = parse_json(&r);
    assert_int_equal(json_integer_value(json_object_get(v, "code")), 413);
    json_decref(v);
    resp_free(&r);
    assert_int_equal(sms_seq(), seq);
    huge[16 << 10] = '\0';
    sms_post(huge, NULL, WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    free(huge);

    char text[1100] = "", ref[130];
    for (int i = 0; i < 341; i++)
        strcat(text, "中"); /* 1023 bytes */
    strcat(text, "a");
    memset(ref, '~', 128);
    ref[0] = ' ';
    ref[128] = '\0';
    sms_ok("10086", "min mobile", "limit-mobile-5");
    sms_ok("+1380013800013800138", "max mobile", "limit-mobile-20");
    sms_ok("13800138000", text, "limit-text-1024");
    sms_ok("13800138000", "max ref", ref);
    assert_int_equal(stat_int("sms_sent", NULL), sent + 5);
    json_t *list = sms_after(seq);
    assert_int_equal(json_array_size(list), 5);
    assert_string_equal(sms_field(list, 0, "ref"), "pad");
    assert_string_equal(sms_field(list, 1, "mobile"), "***86");
    assert_string_equal(sms_field(list, 2, "mobile"), "+13*************0138");
    assert_string_equal(sms_field(list, 3, "text"), text);
    assert_string_equal(sms_field(list, 4, "ref"), ref);
    json_decref(list);
}

/* A ref sent again is sent again (as a gateway does), marked and counted. */
static void test_sms_duplicate_ref(void **state)
{
    (void)state;
    json_int_t seq = sms_seq();
    int64_t sent = stat_int("sms_sent", NULL), dups = stat_int("sms_duplicates", NULL);
    long long a = sms_ok("13800138000", "消费 88.00 元", "dup-ref-1");
    long long b = sms_ok("13800138000", "消费 88.00 元", "dup-ref-1");
    long long c = sms_ok("13800138000", "消费 12.00 元", "dup-ref-2");
    long long d = sms_ok("13900139000", "another phone, same ref", "dup-ref-1");
    assert_true(a < b && b < c && c < d);
    assert_int_equal(stat_int("sms_sent", NULL), sent + 4);
    assert_int_equal(stat_int("sms_duplicates", NULL), dups + 2);
    json_t *list = sms_after(seq);
    assert_int_equal(json_array_size(list), 4);
    static const bool repeat[] = {false, true, false, true};
    for (size_t i = 0; i < 4; i++) {
        if (json_is_true(json_object_get(json_array_get(list, i), "repeat")) != repeat[i]) {
            fail_msg("SMS %zu: repeat should be %d", i, repeat[i]);
        }
    }
    json_decref(list);
}

/* Template sends absorbed by client_msg_id are counted; others are not. */
static void test_template_repeats(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    char a[80], b[80], body[2048];
    snprintf(a, sizeof a, "%s", new_follower("卫十五", true));
    snprintf(b, sizeof b, "%s", new_follower("蒋十六", true));
    const char *tok = fresh_token();
    const char *path = "/sandbox/cgi-bin/message/template/send";
    int64_t repeats = stat_int("template_repeats", NULL);
    snprintf(body, sizeof body, TEMPLATE_BODY, a, "REPEAT_1");
    json_t *v = call_with(path, tok, body);
    json_int_t mid = json_integer_value(json_object_get(v, "msgid"));
    json_decref(v);
    assert_int_equal(stat_int("template_repeats", NULL), repeats);
    for (int i = 1; i <= 2; i++) {
        v = call_with(path, tok, body);
        assert_int_equal(json_integer_value(json_object_get(v, "msgid")), mid);
        json_decref(v);
        assert_int_equal(stat_int("template_repeats", NULL), repeats + i);
    }
    /* The same id for another follower, or no id at all: new messages. */
    snprintf(body, sizeof body, TEMPLATE_BODY, b, "REPEAT_1");
    assert_errcode(call_with(path, tok, body), 0);
    json_t *o = json_pack("{s:s,s:s,s:{s:{s:s}}}", "touser", a, "template_id", "t1", "data",
                          "keyword1", "value", "x");
    char *text = json_dumps(o, JSON_COMPACT);
    assert_errcode(call_with(path, tok, text), 0);
    assert_errcode(call_with(path, tok, text), 0);
    free(text);
    json_decref(o);
    /* A refused send is no repeat either. */
    snprintf(body, sizeof body, "{\"touser\":\"%s\",\"client_msg_id\":\"REPEAT_1\",\"data\":{}}",
             a);
    assert_errcode(call_with(path, tok, body), 40037);
    assert_int_equal(stat_int("template_repeats", NULL), repeats + 2);
}

/* Times a call to getcallbackip; asserts it succeeded. */
static int64_t timed_ip(const char *tok)
{
    int64_t t0 = now_ms();
    assert_ip_list(call_with("/sandbox/cgi-bin/getcallbackip", tok, NULL));
    return now_ms() - t0;
}

/* "slow": the normal answer, late; the call is handled even when its caller gave up. */
static void test_slow_fault(void **state)
{
    (void)state;
    char t[600];
    snprintf(t, sizeof t, "%s", fresh_token());
    json_t *v;
    assert_int_equal(
        page_post("/sandbox/api/fault", "{\"kind\":\"slow\",\"count\":1,\"delay_ms\":700}", &v),
        200);
    assert_string_equal(json_string_value(json_object_get(v, "kind")), "slow");
    assert_int_equal(json_integer_value(json_object_get(v, "delay_ms")), 700);
    assert_true(json_is_null(json_object_get(v, "endpoint")));
    json_decref(v);
    int64_t took = timed_ip(t);
    assert_true(took >= 690 && took < 5000);
    assert_true(timed_ip(t) < 600); /* count 1: the next call is on time */
    assert_int_equal(page_post("/sandbox/api/fault", "{\"kind\":\"slow\"}", &v), 200);
    assert_int_equal(json_integer_value(json_object_get(v, "delay_ms")), 1500);
    json_decref(v);
    took = timed_ip(t);
    assert_true(took >= 1490 && took < 6000);

    /* On the SMS gateway: answered and recorded late. */
    int64_t sent = stat_int("sms_sent", NULL), dups = stat_int("sms_duplicates", NULL);
    set_fault("{\"kind\":\"slow\",\"endpoint\":\"sms\",\"delay_ms\":600}");
    assert_true(timed_ip(t) < 500); /* a fault aimed at sms leaves the platform alone */
    int64_t t0 = now_ms();
    sms_ok("13800138000", "late", "slow-ref-1");
    assert_true(now_ms() - t0 >= 590);
    assert_int_equal(stat_int("sms_sent", NULL), sent + 1);

    /* The dispatcher gives up first: the SMS goes anyway, and its retry is a duplicate. */
    set_fault("{\"kind\":\"slow\",\"endpoint\":\"sms\",\"delay_ms\":1200}");
    int64_t held = stat_int("held", NULL);
    struct resp r;
    sms_post("{\"mobile\":\"13800138000\",\"text\":\"twice\",\"ref\":\"slow-ref-2\"}", "k", 300,
             &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    assert_int_equal(stat_int("held", NULL), held + 1);
    assert_int_equal(stat_int("sms_sent", NULL), sent + 1);
    int64_t end = now_ms() + WAIT_MS;
    while (stat_int("sms_sent", NULL) == sent + 1 && now_ms() < end)
        sleep_ms(20);
    assert_int_equal(stat_int("sms_sent", NULL), sent + 2);
    assert_int_equal(stat_int("held", NULL), held);
    sms_ok("13800138000", "twice", "slow-ref-2");
    assert_int_equal(stat_int("sms_duplicates", NULL), dups + 1);

    /* A slowed template send is checked and shown when it is handled. */
    hook_reset(R_SUCCESS, 0);
    char id[80], body[2048];
    snprintf(id, sizeof id, "%s", new_follower("沈十七", true));
    json_int_t seq = chat_seq(id);
    set_fault("{\"kind\":\"slow\",\"endpoint\":\"template_send\",\"delay_ms\":300}");
    snprintf(body, sizeof body, TEMPLATE_BODY, id, "SLOW_1");
    t0 = now_ms();
    assert_errcode(call_with("/sandbox/cgi-bin/message/template/send", t, body), 0);
    assert_true(now_ms() - t0 >= 290);
    json_decref(wait_line(id, seq, "account", "template", NULL));

    static const char *const bad[] = {
        "{\"kind\":\"slow\",\"delay_ms\":60001}",
        "{\"kind\":\"slow\",\"delay_ms\":-1}",
        "{\"kind\":\"slow\",\"delay_ms\":\"1s\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (page_post("/sandbox/api/fault", bad[i], NULL) != 400) fail_msg("%s: not 400", bad[i]);
    }
    set_fault("{\"kind\":\"slow\",\"delay_ms\":60000}");
    set_fault("{\"kind\":\"none\"}");
    assert_true(timed_ip(t) < 500);
}

/* Faults aimed at the SMS gateway: what a gateway can do wrong. */
static void test_sms_faults(void **state)
{
    (void)state;
    const char *body = "{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":\"fault-ref\"}";
    json_int_t seq = sms_seq();
    int64_t sent = stat_int("sms_sent", NULL), applied = stat_int("faults_applied", NULL);
    int64_t errors = stat_int("errors", "sms"), held = stat_int("held", NULL);
    struct resp r;
    set_fault("{\"kind\":\"http500\",\"endpoint\":\"sms\"}");
    sms_post(body, "k", WAIT_MS, &r);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.content_type, "text/html"));
    resp_free(&r);
    set_fault("{\"kind\":\"timeout\",\"endpoint\":\"sms\"}");
    sms_post(body, "k", 800, &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    assert_int_equal(stat_int("held", NULL), held + 1);
    set_fault("{\"kind\":\"garbage\",\"endpoint\":\"sms\",\"count\":1}");
    sms_post(body, "k", WAIT_MS, &r);
    assert_int_equal(r.status, 200);
    assert_null(json_loadb(r.body, r.len, 0, NULL));
    resp_free(&r);
    assert_int_equal(stat_int("sms_sent", NULL), sent);
    assert_int_equal(sms_seq(), seq);
    assert_int_equal(stat_int("faults_applied", NULL), applied + 3);
    assert_int_equal(stat_int("errors", "sms"), errors + 3);

    /* A fault that names no endpoint is the platform's: the gateway works on. */
    const char *tok = fresh_token();
    char path[1024];
    snprintf(path, sizeof path, "/sandbox/cgi-bin/getcallbackip?access_token=%s", tok);
    set_fault("{\"kind\":\"http500\",\"count\":1}");
    sms_ok("13800138000", "x", "fault-ref-2");
    http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 500);
    resp_free(&r);

    /* Errcodes mean nothing to a gateway. */
    static const char *const kinds[] = {"quota", "busy", "token_expired", "invalid_token",
                                        "bad_token"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char f[128];
        json_t *v;
        snprintf(f, sizeof f, "{\"kind\":\"%s\",\"endpoint\":\"sms\"}", kinds[i]);
        assert_int_equal(page_post("/sandbox/api/fault", f, &v), 400);
        assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "sms"));
        json_decref(v);
    }
    json_t *s = get_json("/sandbox/api/stats");
    json_t *fault = json_object_get(s, "fault");
    assert_string_equal(json_string_value(json_object_get(fault, "kind")), "http500");
    assert_int_equal(json_integer_value(json_object_get(fault, "count")), 0);
    assert_true(json_is_null(json_object_get(fault, "endpoint")));
    json_decref(s);
    sms_ok("13800138000", "x", "fault-ref-3");
    assert_int_equal(stat_int("sms_sent", NULL), sent + 2);
}

/* ======================================================================================
 * What the bank's alerts meet most: client_msg_id memory, and the bytes of lines and answers
 * ====================================================================================== */

/* A template send for openid with client_msg_id; returns its msgid. */
static json_int_t template_msgid(const char *tok, const char *openid, const char *cmid)
{
    char body[2048];
    snprintf(body, sizeof body, TEMPLATE_BODY, openid, cmid);
    json_t *v = call_with("/sandbox/cgi-bin/message/template/send", tok, body);
    if (errcode(v) != 0) fail_msg("template send %s: errcode %d", cmid, errcode(v));
    json_int_t mid = json_integer_value(json_object_get(v, "msgid"));
    json_decref(v);
    assert_true(mid > 0);
    return mid;
}

/* Waits until no webhook delivery is in flight (the delivery reports of a test's sends). */
static void deliveries_settle(void)
{
    int64_t end = now_ms() + WAIT_MS;
    while (stat_int("webhook", "in_flight") != 0 && now_ms() < end)
        sleep_ms(20);
}

/*
 * WX_SANDBOX_CLIENT_MSG_MAX (1,024) ids are remembered, the oldest forgotten first, live or
 * not: an id is still found after 1,023 newer ones (repeats do not count), and forgotten
 * after one more.
 */
static void test_client_msg_capacity(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    char a[80], b[80], cmid[32];
    snprintf(a, sizeof a, "%s", new_follower("容量甲", true));
    snprintf(b, sizeof b, "%s", new_follower("容量乙", true));
    const char *tok = fresh_token();
    int64_t repeats = stat_int("template_repeats", NULL);
    json_int_t first = template_msgid(tok, a, "CAP_FIRST"), mid1 = 0, mid2 = 0;
    /* 1,022 ids, and CAP_FIRST again for b: another message, another id to remember. */
    for (int i = 1; i <= WX_SANDBOX_CLIENT_MSG_MAX - 2; i++) {
        snprintf(cmid, sizeof cmid, "CAP_%04d", i);
        json_int_t mid = template_msgid(tok, i % 2 ? b : a, cmid);
        assert_true(mid > first); /* a new message every time */
        if (i == 1) mid1 = mid;
        if (i == 2) mid2 = mid;
        if (i == 500) assert_true(template_msgid(tok, b, "CAP_FIRST") > first);
    }
    assert_int_equal(stat_int("template_repeats", NULL), repeats);
    json_int_t seq = chat_seq(a);
    assert_int_equal(template_msgid(tok, a, "CAP_FIRST"), first); /* the oldest kept */
    assert_int_equal(template_msgid(tok, a, "CAP_0002"), mid2);
    assert_int_equal(stat_int("template_repeats", NULL), repeats + 2);
    assert_int_equal(chat_seq(a), seq); /* an absorbed repeat shows nothing */
    /* One more id takes the oldest slot: CAP_FIRST is a new message now, remembered anew
     * (in CAP_0001's slot, the next oldest). */
    assert_true(template_msgid(tok, b, "CAP_LAST") > mid2);
    json_int_t again = template_msgid(tok, a, "CAP_FIRST");
    assert_true(again > first);
    assert_true(chat_seq(a) > seq);
    assert_int_equal(template_msgid(tok, a, "CAP_FIRST"), again);
    assert_int_equal(template_msgid(tok, a, "CAP_0002"), mid2); /* the oldest kept now */
    assert_true(template_msgid(tok, b, "CAP_0001") > mid1);     /* gone */
    assert_int_equal(stat_int("template_repeats", NULL), repeats + 4);
    deliveries_settle();
}

/* An id is remembered for 10 minutes of the platform's clock, then sent anew. */
static void test_client_msg_ttl(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    char a[80];
    snprintf(a, sizeof a, "%s", new_follower("时限", true));
    const char *tok = fresh_token();
    int64_t repeats = stat_int("template_repeats", NULL);
    json_int_t first = template_msgid(tok, a, "TTL_1");
    json_int_t other = template_msgid(tok, a, "TTL_2");
    advance_clock(599);
    assert_int_equal(template_msgid(tok, a, "TTL_1"), first);
    assert_int_equal(stat_int("template_repeats", NULL), repeats + 1);
    json_int_t seq = chat_seq(a);
    advance_clock(2);
    json_int_t fresh = template_msgid(tok, a, "TTL_1");
    assert_true(fresh != first);
    assert_true(chat_seq(a) > seq); /* shown again: the platform forgot it */
    assert_int_equal(template_msgid(tok, a, "TTL_1"), fresh);
    assert_true(template_msgid(tok, a, "TTL_2") != other);
    assert_int_equal(stat_int("template_repeats", NULL), repeats + 2);
    deliveries_settle();
}

/* Asserts that raw holds v exactly as jansson writes it (compact, members in their order). */
static void assert_as_jansson(const char *raw, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT);
    assert_non_null(t);
    if (strstr(raw, t) == NULL) fail_msg("not as jansson writes it: %s\nin: %.600s", t, raw);
    free(t);
}

/* A platform call's raw answer; asserts HTTP 200. The caller frees it. */
static char *raw_post(const char *path, const char *headers, const char *json)
{
    struct resp r;
    http_with("POST", path, "application/json", headers, json, strlen(json), WAIT_MS, &r);
    if (r.status != 200) fail_msg("POST %s: HTTP %ld %.200s", path, r.status, r.body);
    return r.body;
}

/* The chat lines, SMS and answers the sandbox writes itself are the bytes jansson wrote:
 * escapes, member order and numbers alike. */
static void test_lines_as_jansson(void **state)
{
    (void)state;
    hook_reset(R_SUCCESS, 0);
    char a[80], path[1024];
    snprintf(a, sizeof a, "%s", new_follower("字节", true));
    const char *tok = fresh_token();
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s}}}", "touser", a,
                             "template_id", "tpl_bytes", "url", "http://bank.example/m/t?a=1&b=/",
                             "client_msg_id", "BYTES_1", "data", "first", "value", "不显示",
                             "keyword1", "value", "quote \" backslash \\ slash /", "key\tword2",
                             "value", "tab\tnew line\ncr\r 中文 😀 \x7f", "remark", "value", "x");
    char *text = json_dumps(body, JSON_COMPACT);
    snprintf(path, sizeof path, "/sandbox/cgi-bin/message/template/send?access_token=%s", tok);
    char *raw = raw_post(path, NULL, text);
    json_t *answer = json_loads(raw, 0, NULL);
    assert_int_equal(errcode(answer), 0);
    char *dumped = json_dumps(answer, JSON_COMPACT);
    assert_string_equal(raw, dumped); /* {"errcode":0,"errmsg":"ok","msgid":N} */
    free(dumped);
    free(raw);
    json_decref(answer);

    json_t *line = wait_line(a, 0, "account", "template", NULL);
    json_t *rows = json_object_get(line, "rows");
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "key")),
                        "key\tword2");
    snprintf(path, sizeof path, "/sandbox/api/events?after=0&wait=0&openid=%s", a);
    struct resp r;
    http("GET", path, NULL, NULL, 0, WAIT_MS, &r);
    assert_as_jansson(r.body, line);
    resp_free(&r);
    json_decref(line);

    json_int_t seq = sms_seq();
    raw = raw_post(SMS_PATH, "Authorization: Bearer k",
                   "{\"mobile\":\"13800138000\",\"text\":\"q\\\" b\\\\ s\\/ \\t 短信\","
                   "\"ref\":\"bytes-ref\"}");
    answer = json_loads(raw, 0, NULL);
    assert_non_null(answer);
    dumped = json_dumps(answer, JSON_COMPACT);
    assert_string_equal(raw, dumped); /* {"code":0,"message":"ok","id":"N"} */
    free(dumped);
    free(raw);
    json_decref(answer);
    json_t *list = sms_after(seq);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(sms_field(list, 0, "text"), "q\" b\\ s/ \t 短信");
    http("GET", "/sandbox/api/events?after=0&wait=0", NULL, NULL, 0, WAIT_MS, &r);
    assert_as_jansson(r.body, json_array_get(list, 0));
    resp_free(&r);
    json_decref(list);
    free(text);
    json_decref(body);
    deliveries_settle();
}

/* At most WX_SANDBOX_FOLLOWERS_MAX (256) followers. Runs last: it fills the table. */
static void test_followers_limit(void **state)
{
    (void)state;
    json_t *st = get_json("/sandbox/api/state");
    size_t n = json_array_size(json_object_get(st, "followers"));
    json_decref(st);
    assert_true(n < 256);
    for (; n < 256; n++) {
        assert_int_equal(page_post("/sandbox/api/followers", "{\"follow\":false}", NULL), 201);
    }
    assert_int_equal(page_post("/sandbox/api/followers", "{\"follow\":false}", NULL), 409);
    st = get_json("/sandbox/api/state");
    json_t *all = json_object_get(st, "followers");
    assert_int_equal(json_array_size(all), 256);
    /* Every one of them is found by its OpenID with the table full; an unknown one is not. */
    size_t i;
    json_t *f;
    char path[256];
    json_array_foreach(all, i, f)
    {
        snprintf(path, sizeof path, "/sandbox/api/events?after=0&wait=0&openid=%s",
                 json_string_value(json_object_get(f, "openid")));
        json_decref(get_json(path));
    }
    struct resp r;
    http("GET", "/sandbox/api/events?after=0&wait=0&openid=oUnknownUnknownUnknownUnknown", NULL,
         NULL, 0, WAIT_MS, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    json_decref(st);
}

/* ======================================================================================
 * Compatible and safe mode
 * ====================================================================================== */

static void test_compat_mode(void **state)
{
    (void)state;
    hook_reset(R_PLAIN, 0);
    const char *openid = new_follower("兼容", true);
    char id[80];
    snprintf(id, sizeof id, "%s", openid);
    struct wx_wechat_msg *m = verify_request(hook_wait(1), "compat");
    assert_int_equal(m->event, WX_WECHAT_EVENT_SUBSCRIBE);
    free(m);
    json_decref(wait_line(id, 0, "account", "text", "pong:subscribe")); /* plain reply: fine */

    json_int_t seq = chat_seq(id);
    hook_reset(R_ENCRYPTED, 0);
    send_text(id, "兼容模式 compat");
    m = verify_request(hook_wait(1), "compat");
    assert_string_equal(m->content, "兼容模式 compat");
    assert_true(m->msg_id > TWO_POW_53);
    free(m);
    json_decref(
        wait_line(id, seq, "account", "text", "pong:兼容模式 compat")); /* encrypted: fine */

    seq = chat_seq(id);
    hook_reset(R_BADSIG, 0);
    send_text(id, "bad signature");
    json_t *line = wait_line(id, seq, "system", "notice", UNAVAILABLE);
    assert_non_null(strstr(json_string_value(json_object_get(line, "detail")), "MsgSignature"));
    json_decref(line);
}

static void test_safe_mode(void **state)
{
    (void)state;
    hook_reset(R_TEXT, 0); /* encrypted replies */
    const char *openid = new_follower("安全", true);
    char id[80];
    snprintf(id, sizeof id, "%s", openid);
    struct wx_wechat_msg *m = verify_request(hook_wait(1), "safe");
    assert_int_equal(m->event, WX_WECHAT_EVENT_SUBSCRIBE);
    free(m);
    json_decref(wait_line(id, 0, "account", "text", "pong:subscribe"));

    json_int_t seq = chat_seq(id);
    send_text(id, "安全模式 safe ]]>");
    m = verify_request(hook_wait(2), "safe");
    assert_string_equal(m->content, "安全模式 safe ]]>");
    free(m);
    json_decref(wait_line(id, seq, "account", "text", "pong:安全模式 safe ]]>"));

    seq = chat_seq(id);
    hook_reset(R_PLAIN, 0);
    send_text(id, "plain reply please");
    json_t *line = wait_line(id, seq, "system", "notice", UNAVAILABLE);
    assert_non_null(strstr(json_string_value(json_object_get(line, "detail")), "safe mode"));
    json_decref(line);

    seq = chat_seq(id);
    hook_reset(R_BADSIG, 0);
    send_text(id, "bad signature");
    line = wait_line(id, seq, "system", "notice", UNAVAILABLE);
    assert_non_null(strstr(json_string_value(json_object_get(line, "detail")), "MsgSignature"));
    json_decref(line);

    /* The template delivery report is encrypted too. */
    hook_reset(R_TEXT, 0);
    char body[2048];
    snprintf(body, sizeof body, TEMPLATE_BODY, id, "SAFE_1");
    json_t *v = call_with("/sandbox/cgi-bin/message/template/send", fresh_token(), body);
    uint64_t mid = (uint64_t)json_integer_value(json_object_get(v, "msgid"));
    json_decref(v);
    m = verify_request(hook_wait(1), "safe");
    assert_int_equal(m->event, WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH);
    assert_int_equal(m->template_msg_id, mid);
    free(m);
}

/* ======================================================================================
 * The observer: a sandbox in this process, as in-process tests and benchmarks run it
 * ====================================================================================== */

#define OBS_OPENID "oObserverObserverObserver001"
#define OBS_MAX    16

struct seen_msg {
    enum wx_sandbox_msg_kind kind;
    char to[64], ref[160], text[2048];
    bool repeat;
    int64_t at_ms;
};

static struct {
    pthread_mutex_t mu;
    struct seen_msg msgs[OBS_MAX];
    unsigned n;
    unsigned off_loop; /* calls from a thread other than the loop's */
    void *arg;         /* the last arg the observer got */
} obs = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct {
    wx_hub_t *hub;
    wx_http_t *http;
    wx_sandbox_t *sb;
    pthread_t thread;
} inproc;

static void observe(const struct wx_sandbox_msg *m, void *arg)
{
    pthread_mutex_lock(&obs.mu);
    obs.arg = arg;
    if (!wx_hub_in_loop(inproc.hub)) obs.off_loop++;
    if (obs.n < OBS_MAX) {
        struct seen_msg *s = &obs.msgs[obs.n++];
        s->kind = m->kind;
        snprintf(s->to, sizeof s->to, "%s", m->to);
        snprintf(s->ref, sizeof s->ref, "%s", m->ref);
        snprintf(s->text, sizeof s->text, "%s", m->text);
        s->repeat = m->repeat;
        s->at_ms = m->at_ms;
    }
    pthread_mutex_unlock(&obs.mu);
}

/* A copy of what the observer saw so far; returns how many. */
static unsigned obs_copy(struct seen_msg out[OBS_MAX])
{
    pthread_mutex_lock(&obs.mu);
    unsigned n = obs.n;
    memcpy(out, obs.msgs, sizeof obs.msgs);
    pthread_mutex_unlock(&obs.mu);
    return n;
}

static void *hub_main(void *arg)
{
    wx_hub_run(arg);
    return NULL;
}

static void stop_hub(struct wx_hub_task *t, bool cancelled)
{
    (void)t;
    if (!cancelled) wx_hub_stop(inproc.hub);
}

/* Clears the observer on the loop, as wx_sandbox_set_observer wants it called. */
struct clear_task {
    struct wx_hub_task task; /* first: the hub hands this pointer back */
    pthread_mutex_t mu;
    bool done;
};

static void clear_observer(struct wx_hub_task *t, bool cancelled)
{
    struct clear_task *c = (struct clear_task *)t;
    if (!cancelled) wx_sandbox_set_observer(inproc.sb, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->done = true;
    pthread_mutex_unlock(&c->mu);
}

static int setup_inproc(void **state)
{
    (void)state;
    char err[256], hook_url[64];
    if (make_workdir() != 0) return -1;
    hook_start();
    hook_reset(R_SUCCESS, 0);
    snprintf(hook_url, sizeof hook_url, "http://127.0.0.1:%d/wechat", hook.port);
    inproc.hub = wx_hub_new(NULL, NULL, err, sizeof err);
    assert_non_null(inproc.hub);
    struct wx_http_options ho = {.listen = "127.0.0.1:0",
                                 .body_max = 1 << 20,
                                 .timeout_s = 60,
                                 .max_connections = 64,
                                 .threads = 1};
    inproc.http = wx_http_start(inproc.hub, &ho, err, sizeof err);
    if (inproc.http == NULL) fail_msg("http: %s", err);
    struct wx_sandbox_follower f = {.openid = OBS_OPENID, .nickname = "观察", .following = true};
    struct wx_sandbox_options so = {.appid = APPID,
                                    .secret = SECRET,
                                    .token = TOKEN,
                                    .mode = WX_SANDBOX_PLAIN,
                                    .webhook_url = hook_url,
                                    .account = ACCOUNT,
                                    .followers = &f,
                                    .nfollowers = 1};
    inproc.sb = wx_sandbox_start(inproc.hub, inproc.http, &so, err, sizeof err);
    if (inproc.sb == NULL) fail_msg("sandbox: %s", err);
    wx_sandbox_set_observer(inproc.sb, observe, &obs);
    snprintf(origin, sizeof origin, "http://%s", wx_http_address(inproc.http));
    return pthread_create(&inproc.thread, NULL, hub_main, inproc.hub) == 0 ? 0 : -1;
}

static int teardown_inproc(void **state)
{
    (void)state;
    struct wx_hub_task stop = {.run = stop_hub};
    wx_hub_post(inproc.hub, &stop);
    pthread_join(inproc.thread, NULL);
    wx_sandbox_free(inproc.sb);
    wx_http_free(inproc.http);
    wx_hub_free(inproc.hub);
    hook_stop();
    return remove_workdir();
}

/* Every accepted send reaches the observer, on the loop, before its answer; refused and
 * faulted ones do not. */
static void test_observer(void **state)
{
    (void)state;
    json_t *s = get_json("/sandbox/api/stats");
    json_t *fault = json_object_get(s, "fault");
    assert_string_equal(json_string_value(json_object_get(fault, "kind")), "none");
    assert_true(json_is_null(json_object_get(fault, "endpoint")));
    json_decref(s);
    const char *tok = fresh_token();
    char t[600], body[2048];
    snprintf(t, sizeof t, "%s", tok);
    const char *tpl = "/sandbox/cgi-bin/message/template/send";
    int64_t t0 = time(NULL) * 1000LL;
    snprintf(body, sizeof body, TEMPLATE_BODY, OBS_OPENID, "OBS_1");
    assert_errcode(call_with(tpl, t, body), 0);
    assert_errcode(call_with(tpl, t, body), 0); /* absorbed: seen as a repeat */
    snprintf(body, sizeof body,
             "{\"touser\":\"%s\",\"msgtype\":\"text\",\"text\":{\"content\":\"您好\"}}",
             OBS_OPENID);
    assert_errcode(call_with("/sandbox/cgi-bin/message/custom/send", t, body), 0);
    sms_ok("13800138000", "短信 SMS", "obs-ref");
    sms_ok("13800138000", "短信 SMS", "obs-ref");

    /* Refused or faulted: not seen. */
    struct resp r;
    sms_post("{\"mobile\":\"1\",\"text\":\"x\",\"ref\":\"r\"}", NULL, WAIT_MS, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    snprintf(body, sizeof body, TEMPLATE_BODY, "oUnknownUnknownUnknownUnknown", "x");
    assert_errcode(call_with(tpl, t, body), 40003);
    set_fault("{\"kind\":\"http500\",\"endpoint\":\"sms\"}");
    sms_post("{\"mobile\":\"13800138000\",\"text\":\"x\",\"ref\":\"r\"}", NULL, WAIT_MS, &r);
    assert_int_equal(r.status, 500);
    resp_free(&r);

    struct seen_msg m[OBS_MAX];
    assert_int_equal(obs_copy(m), 5);
    pthread_mutex_lock(&obs.mu);
    unsigned off_loop = obs.off_loop;
    void *arg = obs.arg;
    pthread_mutex_unlock(&obs.mu);
    assert_int_equal(off_loop, 0);
    assert_ptr_equal(arg, &obs);
    for (unsigned i = 0; i < 5; i++) {
        assert_true(m[i].at_ms >= t0 - 2000 && m[i].at_ms <= time(NULL) * 1000LL + 2000);
    }
    assert_int_equal(m[0].kind, WX_SANDBOX_MSG_TEMPLATE);
    assert_string_equal(m[0].to, OBS_OPENID);
    assert_string_equal(m[0].ref, "OBS_1");
    assert_string_equal(m[0].text, "keyword1=巧克力\nkeyword2=39.8元\n");
    assert_false(m[0].repeat);
    assert_int_equal(m[1].kind, WX_SANDBOX_MSG_TEMPLATE);
    assert_true(m[1].repeat);
    assert_int_equal(m[2].kind, WX_SANDBOX_MSG_CUSTOM);
    assert_string_equal(m[2].to, OBS_OPENID);
    assert_string_equal(m[2].ref, "");
    assert_string_equal(m[2].text, "您好");
    assert_false(m[2].repeat);
    assert_int_equal(m[3].kind, WX_SANDBOX_MSG_SMS);
    assert_string_equal(m[3].to, "13800138000");
    assert_string_equal(m[3].ref, "obs-ref");
    assert_string_equal(m[3].text, "短信 SMS");
    assert_false(m[3].repeat);
    assert_int_equal(m[4].kind, WX_SANDBOX_MSG_SMS);
    assert_true(m[4].repeat);
    assert_int_equal(stat_int("template_repeats", NULL), 1);
    assert_int_equal(stat_int("sms_sent", NULL), 2);
    assert_int_equal(stat_int("sms_duplicates", NULL), 1);

    /* A slowed SMS is seen when it is handled, still before its answer. */
    set_fault("{\"kind\":\"slow\",\"endpoint\":\"sms\",\"delay_ms\":200}");
    sms_ok("13800138000", "slow", "obs-ref-2");
    assert_int_equal(obs_copy(m), 6);
    assert_string_equal(m[5].ref, "obs-ref-2");

    /* NULL stops the calls. */
    struct clear_task c = {.task.run = clear_observer, .mu = PTHREAD_MUTEX_INITIALIZER};
    wx_hub_post(inproc.hub, &c.task);
    for (bool done = false; !done; sleep_ms(5)) {
        pthread_mutex_lock(&c.mu);
        done = c.done;
        pthread_mutex_unlock(&c.mu);
    }
    sms_ok("13800138000", "unseen", "obs-ref-3");
    assert_int_equal(obs_copy(m), 6);
}

/* ======================================================================================
 * POS: the sandbox pays at the bank's ISO 8583 door
 * ====================================================================================== */

static pid_t bank_pid = -1;
static char pans[3][24];

static int wxbank_run(const char *args)
{
    char cmd[PATH_MAX + 512];
    snprintf(cmd, sizeof cmd, "cd '%s' && WXBANK_DB_URL=sqlite:bank.db '%s' %s >>bank.log 2>&1",
             workdir, getenv("WXBANK_BIN"), args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int start_bank(int iso_port, int http_port, int sandbox_port)
{
    int out[2];
    char iso[64], httpl[64], api[96], line[256];
    snprintf(iso, sizeof iso, "WXBANK_ISO8583_LISTEN=127.0.0.1:%d", iso_port);
    snprintf(httpl, sizeof httpl, "WXBANK_HTTP_LISTEN=127.0.0.1:%d", http_port);
    snprintf(api, sizeof api, "WXBANK_WECHAT_API_BASE=http://127.0.0.1:%d/sandbox", sandbox_port);
    if (pipe(out) != 0) return -1;
    bank_pid = fork();
    if (bank_pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        if (chdir(workdir) != 0) _exit(127);
        char *env[] = {iso, httpl, api, NULL};
        for (int i = 0; env[i] != NULL; i++)
            putenv(env[i]);
        setenv("WXBANK_DB_URL", "sqlite:bank.db", 1);
        setenv("WXBANK_WECHAT_APPID", APPID, 1);
        setenv("WXBANK_WECHAT_SECRET", SECRET, 1);
        setenv("WXBANK_WECHAT_TOKEN", TOKEN, 1);
        setenv("WXBANK_WECHAT_AES_KEY", AES_KEY, 1);
        setenv("WXBANK_LOG_LEVEL", "warn", 1);
        int log = open("bank.log", O_WRONLY | O_APPEND | O_CREAT, 0600);
        if (log >= 0) dup2(log, 2);
        execl(getenv("WXBANK_BIN"), "wxbank", "serve", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    bool up = false;
    while (!up && fgets(line, sizeof line, f) != NULL)
        up = strstr(line, "iso8583 listening") != NULL;
    fclose(f);
    return up ? 0 : -1;
}

static int setup_pos(void **state)
{
    (void)state;
    if (make_workdir() != 0) return -1;
    if (wxbank_run("init") != 0 || wxbank_run("seed --cards 3 --pans pans.txt") != 0) return -1;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pans.txt", workdir);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    for (int i = 0; i < 3; i++) {
        char line[128];
        if (fgets(line, sizeof line, f) == NULL) return -1;
        snprintf(pans[i], sizeof pans[i], "%.*s", (int)strcspn(line, "\t"), line);
    }
    fclose(f);
    hook_start(); /* unused here, but sandbox_start points the webhook at it by default */
    int iso_port = free_port(), http_port = free_port(), sandbox_port = free_port();
    if (start_bank(iso_port, http_port, sandbox_port) != 0) return -1;
    static char iso_env[64], listen_env[64], hook_env[96];
    snprintf(iso_env, sizeof iso_env, "WXBANK_ISO8583_LISTEN=127.0.0.1:%d", iso_port);
    snprintf(listen_env, sizeof listen_env, "WXBANK_SANDBOX_LISTEN=127.0.0.1:%d", sandbox_port);
    snprintf(hook_env, sizeof hook_env, "WXBANK_SANDBOX_WEBHOOK_URL=http://127.0.0.1:%d/wechat",
             http_port);
    const char *extra[] = {iso_env, listen_env, hook_env, NULL};
    sandbox_start("safe", "5000", extra, "pans.txt");
    return 0;
}

static int teardown_pos(void **state)
{
    (void)state;
    int rc = sandbox_stop();
    if (bank_pid > 0) {
        int st;
        kill(bank_pid, SIGTERM);
        waitpid(bank_pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "wxbank serve did not stop cleanly (status %d)\n", st);
            rc = -1;
        }
    }
    hook_stop();
    if (rc == 0 && wxbank_run("verify") != 0) rc = -1;
    return rc == 0 ? remove_workdir() : rc;
}

static json_t *pos(const char *json, long *status)
{
    json_t *v = NULL;
    *status = page_post("/sandbox/api/pos", json, &v);
    return v;
}

/* "1,234.56" -> 123456 */
static long long fen_of(const char *text)
{
    long long v = 0;
    for (const char *p = text; *p; p++) {
        if (*p >= '0' && *p <= '9') v = v * 10 + (*p - '0');
    }
    return v;
}

static long long available(int card)
{
    char body[128];
    long st;
    snprintf(body, sizeof body, "{\"card\":%d,\"kind\":\"balance\"}", card);
    json_t *v = pos(body, &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(v, "code")), "00");
    const char *a = json_string_value(json_object_get(v, "available"));
    assert_non_null(a);
    long long fen = fen_of(a);
    json_decref(v);
    return fen;
}

static void test_pos_purchase(void **state)
{
    (void)state;
    json_t *st = get_json("/sandbox/api/state");
    char *text = json_dumps(st, 0);
    for (int i = 0; i < 3; i++)
        assert_null(strstr(text, pans[i]));
    free(text);
    json_t *cards = json_object_get(st, "cards");
    assert_int_equal(json_array_size(cards), 3);
    char masked[32];
    snprintf(masked, sizeof masked, "%s",
             json_string_value(json_object_get(json_array_get(cards, 0), "masked")));
    assert_int_equal(strncmp(masked, pans[0], 6), 0);
    assert_non_null(strstr(masked, "******"));
    assert_string_equal(masked + strlen(masked) - 4, pans[0] + strlen(pans[0]) - 4);
    json_decref(st);

    long long before = available(0);
    long status;
    json_t *v = pos("{\"card\":0,\"kind\":\"purchase\",\"amount\":\"12.34\","
                    "\"merchant\":\"SANDBOX COFFEE\",\"mcc\":\"5814\"}",
                    &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(v, "code")), "00");
    assert_true(json_is_true(json_object_get(v, "approved")));
    assert_int_equal(strlen(json_string_value(json_object_get(v, "approval"))), 6);
    assert_int_equal(strlen(json_string_value(json_object_get(v, "stan"))), 6);
    assert_string_equal(json_string_value(json_object_get(v, "card")), masked);
    assert_string_equal(json_string_value(json_object_get(v, "currency")), "CNY");
    json_decref(v);
    assert_int_equal(available(0), before - 1234);

    v = pos("{\"card\":1,\"amount\":\"9,999,999.00\"}", &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(v, "code")), "51");
    assert_false(json_is_true(json_object_get(v, "approved")));
    json_decref(v);

    v = pos("{\"card\":2,\"amount\":\"10.00\",\"cross_border\":true}", &status);
    assert_int_equal(status, 200);
    assert_int_equal(strlen(json_string_value(json_object_get(v, "code"))), 2);
    assert_string_equal(json_string_value(json_object_get(v, "currency")), "USD");
    json_decref(v);

    static const char *const bad[] = {
        "{\"card\":0,\"amount\":\"abc\"}",
        "{\"card\":7,\"amount\":\"1.00\"}",
        "{\"card\":0,\"amount\":\"0\"}",
        "{\"card\":0,\"amount\":\"1\",\"merchant\":\"咖啡\"}",
        "{\"card\":0,\"amount\":\"1\",\"mcc\":\"12\"}",
        "{\"card\":0,\"kind\":\"refund\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = pos(bad[i], &status);
        if (status != 400) fail_msg("%s: HTTP %ld", bad[i], status);
        json_decref(v);
    }
    assert_true(stat_int("pos", "sent") >= 5);

    /* No full card number in the sandbox's log. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/sandbox.log", workdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char log[1 << 20];
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    for (int i = 0; i < 3; i++)
        assert_null(strstr(log, pans[i]));
    if (strstr(log, masked) == NULL) fail_msg("the log does not show %s:\n%s", masked, log);
}

/* ======================================================================================
 * The hot path's JSON (src/sandbox/json.c) against jansson, in this process
 * ====================================================================================== */

/* True when d's node n shows what jansson's v holds: kinds, strings byte for byte, members
 * in jansson's order (objects past SB_DOC_DEPTH with their count only). */
static bool same_view(const struct sb_doc *d, const struct sb_jnode *n, const json_t *v,
                      unsigned depth)
{
    if (json_is_string(v)) {
        return n->kind == SB_J_STRING && n->len == json_string_length(v) &&
               memcmp(n->str, json_string_value(v), n->len) == 0 && n->str[n->len] == '\0';
    }
    if (!json_is_object(v)) return n->kind == SB_J_OTHER;
    if (n->kind != SB_J_OBJECT || n->count != json_object_size(v)) return false;
    if (depth >= SB_DOC_DEPTH) return sb_doc_first(d, n) == NULL;
    const struct sb_jnode *m = sb_doc_first(d, n);
    const char *key;
    json_t *mv;
    json_object_foreach((json_t *)v, key, mv)
    {
        if (m == NULL || strcmp(m->key, key) != 0 || sb_doc_get(d, n, key) != m ||
            !same_view(d, m, mv, depth + 1)) {
            return false;
        }
        m = sb_doc_next(d, m);
    }
    return m == NULL;
}

enum read_by { READ_NONE, READ_FAST, READ_JANSSON };

/* Reads text with sb_doc_load and with json_loadb; fails unless both take it or refuse it,
 * and unless what they read is the same. Says who read it. */
static enum read_by read_both(const char *text, size_t len, size_t flags)
{
    static char scratch[WX_SANDBOX_API_BODY_MAX + 1];
    json_error_t e;
    json_t *j = json_loadb(text, len, flags, &e);
    struct sb_doc d;
    int rc = sb_doc_load(&d, scratch, sizeof scratch, text, len, flags);
    if ((rc == 0) != json_is_object(j)) {
        fail_msg("sb_doc_load %d, jansson %s, for %.*s", rc, j ? "an object" : e.text, (int)len,
                 text);
    }
    enum read_by by = READ_NONE;
    if (rc == 0) {
        if (!same_view(&d, &d.nodes[0], j, 0))
            fail_msg("not jansson's view of %.*s", (int)len, text);
        by = d.tree == NULL ? READ_FAST : READ_JANSSON;
        sb_doc_free(&d);
    }
    json_decref(j);
    return by;
}

static void expect_read(const char *text, size_t flags, enum read_by want)
{
    enum read_by by = read_both(text, strlen(text), flags);
    if (by != want) fail_msg("%s: read by %d, expected %d", text, by, want);
}

static const char PLAIN_TEMPLATE[] =
    "{\"touser\":\"oBENCH0000000000000000000017\",\"template_id\":\"TPL_alert\",\"data\":{"
    "\"keyword1\":{\"value\":\"消费\"},\"keyword2\":{\"value\":\"尾号1234\",\"color\":\"#173177\"},"
    "\"keyword3\":{\"value\":\"人民币 2.35 "
    "元\"},\"keyword4\":{\"value\":\"WXBENCH0000000017（上海）\"}"
    "},\"url\":\"http://127.0.0.1:8080/m/t/abc\",\"client_msg_id\":\"17-wechat\"}";

/* The fast reader takes plain bodies, leaves the rest to jansson, and never differs from it. */
static void test_json_reader(void **state)
{
    (void)state;
    expect_read(PLAIN_TEMPLATE, 0, READ_FAST);
    expect_read(PLAIN_TEMPLATE, JSON_REJECT_DUPLICATES, READ_FAST);
    expect_read(" \t\r\n{ \"a\" : \"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\" , \"\\tk\":{}} \n", 0,
                READ_FAST);
    expect_read("{}", 0, READ_FAST);
    expect_read("{\"a\":\"\xf0\x9f\x98\x80 \x7f \xe4\xb8\xad\"}", 0, READ_FAST);
    expect_read("{\"a\":{\"b\":{\"c\":\"d\"}}}", 0, READ_FAST);
    /* Jansson's to read: numbers, literals, arrays, \u, deeper objects, repeated keys, size. */
    expect_read("{\"a\":1}", 0, READ_JANSSON);
    expect_read("{\"a\":[1,{\"b\":\"c\"}],\"d\":true,\"e\":null,\"f\":-1.5e3}", 0, READ_JANSSON);
    expect_read("{\"a\":\"\\u00e9\\ud83d\\ude00\"}", 0, READ_JANSSON);
    expect_read("{\"a\":{\"b\":{\"c\":{\"d\":\"e\"}}}}", 0, READ_JANSSON);
    expect_read("{\"a\":\"x\",\"b\":\"y\",\"a\":\"z\"}", 0, READ_JANSSON);
    expect_read("{\"d\":{\"k\":{\"value\":\"1\"},\"k\":{\"value\":\"2\"}}}", 0, READ_JANSSON);
    char many[2048] = "{";
    for (int i = 0; i < SB_DOC_NODES; i++) {
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"k%d\":\"v\"", i ? "," : "",
                 i);
    }
    strcat(many, "}");
    expect_read(many, 0, READ_JANSSON);
    /* Refused by both. */
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "[]",
        "\"s\"",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":\"b\",}",
        "{,}",
        "{\"a\":\"b\" \"c\":\"d\"}",
        "{'a':'b'}",
        "{\"a\":\"b\"}x",
        "{\"a\":\"b\"}{}",
        "{\"a\":\"b\"",
        "{\"a\":\"b}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\u0000\"}",
        "{\"\\u0000\":\"a\"}",
        "{\"a\":\"x\ty\"}",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"\xc0\x80\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf5\x80\x80\x80\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"a\":\"\xe4\xb8\"}",
        "{\"a\":\"\x80\"}",
        "{\"a\":\"b\"}\f",
        "{\v\"a\":\"b\"}",
        "{\"a\":1e400}",
        "{\"a\":99999999999999999999}",
        "{\"a\":tru}",
        "{\"a\":\"b\"}\xc3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_read(bad[i], 0, READ_NONE);
    }
    expect_read("{\"a\":\"x\",\"a\":\"y\"}", JSON_REJECT_DUPLICATES, READ_NONE);
    assert_int_equal(read_both("{\"a\":\"x\0y\"}", 11, 0), READ_NONE);
    assert_int_equal(read_both("{\"a\":\"x\"}\0", 10, 0), READ_NONE);
}

/* Not plain: jansson's to read, and edits of it mostly stay so. */
static const char MIXED_TEMPLATE[] =
    "{\"touser\":\"o\\u0041bc\",\"n\":[1,2.5,true,null],\"data\":{\"keyword1\":{\"value\":"
    "\"\\u6d88\\u8d39\"},\"keyword2\":{\"value\":\"x\",\"color\":7}},\"client_msg_id\":\"17\"}";

/* Random edits of two bodies: whatever comes out, the two readers agree. */
static void test_json_reader_mutations(void **state)
{
    (void)state;
    static const char pieces[] = "\"\\{}:, \n\tu0a/[]1-e\x80\xc3\xa9\xed\xff\xe4\xb8\xad\x01";
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    unsigned count[3] = {0, 0, 0};
    char text[sizeof PLAIN_TEMPLATE * 2];
    for (int round = 0; round < 20000; round++) {
        const char *base = round % 4 < 3 ? PLAIN_TEMPLATE : MIXED_TEMPLATE;
        size_t len = strlen(base);
        memcpy(text, base, len);
        for (int edits = 1 + round % 3; edits > 0; edits--) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64: the same edits every run */
            size_t at = (size_t)(x >> 8) % len, kind = (size_t)(x >> 40) % 4;
            char c = pieces[(x >> 20) % (sizeof pieces - 1)];
            if (kind == 0) {
                text[at] = c;
            } else if (kind == 1 && len > 1) {
                memmove(text + at, text + at + 1, len - at - 1);
                len--;
            } else if (kind == 2) {
                memmove(text + at + 1, text + at, len - at);
                text[at] = c;
                len++;
            } else { /* a copy of a stretch: repeated keys and members */
                size_t n = (size_t)(x >> 50) % 40;
                n = n < len - at ? n : len - at;
                if (len + n < sizeof text) {
                    memmove(text + at + n, text + at, len - at);
                    len += n;
                }
            }
        }
        count[read_both(text, len, round % 8 < 4 ? JSON_REJECT_DUPLICATES : 0)]++;
    }
    /* All three outcomes came up often: the test looked at each path. */
    print_message("mutations: %u refused, %u read fast, %u by jansson\n", count[READ_NONE],
                  count[READ_FAST], count[READ_JANSSON]);
    assert_true(count[READ_NONE] > 1000);
    assert_true(count[READ_FAST] > 1000);
    assert_true(count[READ_JANSSON] > 500);
}

/* The writer escapes as json_dumps does, and writes integers as jansson does. */
static void test_json_writer(void **state)
{
    (void)state;
    struct sb_out o = {0};
    char s[4];
    for (int c = 0; c < 0x80; c++) {
        s[0] = 'a', s[1] = (char)c, s[2] = 'b';
        o.len = 0;
        sb_out_str(&o, s, 3);
        json_t *js = json_stringn(s, 3);
        char *want = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT);
        if (o.len != strlen(want) || memcmp(o.p, want, o.len) != 0) {
            fail_msg("byte 0x%02x: %.*s, jansson %s", c, (int)o.len, o.p, want);
        }
        free(want);
        json_decref(js);
    }
    static const char *const texts[] = {"", "中文 😀", "a/b\\c\"d", "\xc2\x80\xe2\x80\xa8"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        o.len = 0;
        sb_out_str(&o, texts[i], strlen(texts[i]));
        json_t *js = json_string(texts[i]);
        char *want = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT);
        assert_int_equal(o.len, strlen(want));
        assert_memory_equal(o.p, want, o.len);
        free(want);
        json_decref(js);
    }
    static const int64_t numbers[] = {0,         1,        -1, 9, 10, -10, 2000000000000000001LL,
                                      INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char want[32];
        o.len = 0;
        sb_out_int(&o, numbers[i]);
        snprintf(want, sizeof want, "%lld", (long long)numbers[i]);
        assert_string_equal(sb_out_cstr(&o), want);
    }
    sb_out_free(&o);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_page_served),
        cmocka_unit_test(test_plain_text_signed),
        cmocka_unit_test(test_message_kinds),
        cmocka_unit_test(test_retry_same_bytes),
        cmocka_unit_test(test_no_answer_notice),
        cmocka_unit_test(test_invalid_replies),
        cmocka_unit_test(test_long_poll),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_stable_token),
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_media),
        cmocka_unit_test(test_custom),
        cmocka_unit_test(test_menu_limits),
        cmocka_unit_test(test_oauth),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_page_api_errors),
        cmocka_unit_test(test_sms_accepted),
        cmocka_unit_test(test_sms_read),
        cmocka_unit_test(test_sms_refused),
        cmocka_unit_test(test_sms_limits),
        cmocka_unit_test(test_sms_duplicate_ref),
        cmocka_unit_test(test_template_repeats),
        cmocka_unit_test(test_slow_fault),
        cmocka_unit_test(test_sms_faults),
        cmocka_unit_test(test_client_msg_capacity),
        cmocka_unit_test(test_client_msg_ttl),
        cmocka_unit_test(test_lines_as_jansson),
        cmocka_unit_test(test_followers_limit),
    };
    const struct CMUnitTest compat[] = {cmocka_unit_test(test_compat_mode)};
    const struct CMUnitTest safe[] = {cmocka_unit_test(test_safe_mode)};
    const struct CMUnitTest pos_tests[] = {cmocka_unit_test(test_pos_purchase)};
    const struct CMUnitTest inproc_tests[] = {cmocka_unit_test(test_observer)};
    const struct CMUnitTest json_tests[] = {cmocka_unit_test(test_json_reader),
                                            cmocka_unit_test(test_json_reader_mutations),
                                            cmocka_unit_test(test_json_writer)};
    int failed = cmocka_run_group_tests_name("sandbox json", json_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("sandbox plain", plain, setup_plain, teardown_mode);
    failed += cmocka_run_group_tests_name("sandbox compat", compat, setup_compat, teardown_mode);
    failed += cmocka_run_group_tests_name("sandbox safe", safe, setup_safe, teardown_mode);
    failed += cmocka_run_group_tests_name("sandbox observer", inproc_tests, setup_inproc,
                                          teardown_inproc);
    failed += cmocka_run_group_tests_name("sandbox pos", pos_tests, setup_pos, teardown_pos);
    curl_global_cleanup();
    return failed;
}
