/*
 * test_webhook.c - `wxbank serve`'s /wechat as the WeChat platform sees it: signed HTTP
 * requests carrying XML, plain, compatible and safe (AES) mode.
 *
 * Each test runs the real binary in a fresh temporary directory: `wxbank init`, `wxbank seed
 * --cards 3 --pans pans.tsv` (customers 1..3, their card numbers and limits in pans.tsv),
 * `wxbank bind BOUND --customer 1` (the CLI takes the database lock, so before serving), then
 * `wxbank serve` on free loopback ports (http.listen and iso8583.listen on port 0; the bound
 * addresses are read from its "... listening on ADDR" lines) with the webhook's token, AppID,
 * EncodingAESKey and account id in WXBANK_* variables. Requests are built with src/wechat's
 * own signature and crypto functions (the ones the shared vectors test) and OpenSSL for the
 * deliberately broken ciphertexts, and sent with libcurl.
 *
 * Covered: the URL check (echostr back exactly; bad or missing signature 403); a text message
 * and its passive reply (To/From swapped); safe mode (an encrypted reply whose MsgSignature
 * verifies and which decrypts for our AppID) and compatible mode (the encrypted copy wins);
 * balance for a bound follower (compared with the limit in pans.tsv) and the bind prompt for
 * an unbound one; every message kind and every event; every refusal (signature, stale
 * timestamp, msg_signature, AppID, tampered ciphertext, bad padding, oversized and malformed
 * XML, DOCTYPE tricks, openid mismatch, unknown encrypt_type, other methods) with its status
 * and nothing done (each refused request is an unfollow of the bound follower, who must still
 * be bound afterwards); a retried message answered byte for byte and processed once, proven
 * across a card purchase through the ISO 8583 door that changes the balance; an unfollow sent
 * twice, processed once; two followers unfollowing in the same second, both unbound. Every
 * server must stop cleanly on SIGTERM, and `wxbank verify` must pass after it.
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
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/serve_util.h"
#include "util/money.h"
#include "wechat/wechat.h"

#define TOKEN   "wxbankHookToken7"
#define APPID   "wx5823bf96d3bd56c7"
#define AES_KEY "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define ACCOUNT "gh_7f083739789a"
#define BOUND   "oBoundFollower0000000000001" /* bound to customer 1 before serving */
#define UNBOUND "oUnboundFollower00000000001" /* never bound */

#define WAIT_MS      15000 /* longest wait for the server to start, answer or stop */
#define RESP_MAX     (1u << 20)
#define XML_MAX      (WX_WECHAT_BODY_MAX + 1024)
#define PURCHASE_FEN 12345 /* 123.45, the card purchase of the retry test */

/* What the bank says (src/chat/answer.c). */
#define ZH_AVAILABLE "可用额度：¥"
#define EN_AVAILABLE "Available: CNY "
#define ZH_NOT_BOUND "您的微信尚未绑定信用卡"
#define EN_NOT_BOUND "This WeChat is not bound to a card yet"
#define ZH_WELCOME   "欢迎关注"
#define ZH_HELP      "您可以直接用文字问我"
#define EN_HELP      "Just ask in your own words"
#define ZH_SORRY     "抱歉，我没太听懂"

static char workdir[PATH_MAX];
static pid_t server_pid = -1;
static char http_addr[64], iso_addr[64];
static char card_pan[32], card_expiry[8];
static long long card_limit; /* fen */
static unsigned long long next_msg_id = 6000000000000000001ULL;
static long long next_create_time;
static unsigned next_nonce = 1;
static struct wx_wechat_crypt account_crypt; /* the account's: TOKEN, AES_KEY, APPID */

/* ======================================================================================
 * The binary
 * ====================================================================================== */

/* Runs `wxbank <args>` in the work directory, output to cli.log; returns its exit code. */
static int wxbank(const char *args)
{
    char cmd[PATH_MAX + 1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && WXBANK_DB_URL=sqlite:bank.db '%s' %s >>cli.log 2>&1",
             workdir, getenv("WXBANK_BIN"), args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void read_card(void)
{
    char path[PATH_MAX + 16], line[256];
    snprintf(path, sizeof path, "%s/pans.tsv", workdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f)); /* customer 1's card */
    fclose(f);
    char *t1 = strchr(line, '\t');
    assert_non_null(t1);
    char *t2 = strchr(t1 + 1, '\t');
    assert_non_null(t2);
    *t1 = *t2 = '\0';
    assert_true(strlen(line) < sizeof card_pan && strlen(t1 + 1) < sizeof card_expiry);
    memcpy(card_pan, line, strlen(line) + 1);
    memcpy(card_expiry, t1 + 1, strlen(t1 + 1) + 1);
    card_limit = strtoll(t2 + 1, NULL, 10);
    assert_true(card_limit > PURCHASE_FEN);
}

/* Copies what follows prefix in text up to the end of its line into out. */
static bool line_value(const char *text, const char *prefix, char *out, size_t cap)
{
    const char *p = strstr(text, prefix);
    if (p == NULL) return false;
    p += strlen(prefix);
    size_t n = strcspn(p, "\r\n");
    if (p[n] == '\0' || n == 0 || n >= cap) return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Starts `wxbank serve` and reads the addresses it bound from its stdout. */
static void start_server(void)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    server_pid = fork();
    assert_true(server_pid >= 0);
    if (server_pid == 0) {
        close(out[0]);
        dup2(out[1], 1);
        if (chdir(workdir) != 0) _exit(127);
        int log = open("server.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log < 0) _exit(127);
        dup2(log, 2);
        setenv("WXBANK_DB_URL", "sqlite:bank.db", 1);
        setenv("WXBANK_HTTP_LISTEN", "127.0.0.1:0", 1);
        setenv("WXBANK_ISO8583_LISTEN", "127.0.0.1:0", 1);
        setenv("WXBANK_LOG_LEVEL", "info", 1);
        setenv("WXBANK_WECHAT_TOKEN", TOKEN, 1);
        setenv("WXBANK_WECHAT_APPID", APPID, 1);
        setenv("WXBANK_WECHAT_AES_KEY", AES_KEY, 1);
        setenv("WXBANK_WECHAT_ACCOUNT", ACCOUNT, 1);
        execl(getenv("WXBANK_BIN"), "wxbank", "serve", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char text[1024] = "";
    size_t len = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!(line_value(text, "http listening on ", http_addr, sizeof http_addr) &&
             line_value(text, "iso8583 listening on ", iso_addr, sizeof iso_addr))) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, WAIT_MS) != 1) fail_msg("wxbank serve printed no addresses");
        ssize_t n = read(out[0], text + len, sizeof text - 1 - len);
        if (n <= 0) fail_msg("wxbank serve ended before listening: %s", text);
        len += (size_t)n;
        text[len] = '\0';
    }
    close(out[0]);
}

/* SIGTERM, then waits; the server must exit 0 within WAIT_MS. Returns 0 when it did. */
static int stop_server(void)
{
    return serve_stop(&server_pid, WAIT_MS);
}

/* How many lines of server.log contain what. */
static int log_count(const char *what)
{
    char path[PATH_MAX + 16], line[4096];
    snprintf(path, sizeof path, "%s/server.log", workdir);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

/* A fresh bank: three cardholders, BOUND bound to customer 1, and the binds in extra
 * ("OPENID --customer N" each, NULL-terminated); then the server. */
static int setup_with(const char *const *extra)
{
    snprintf(workdir, sizeof workdir, "/tmp/wxbank-webhook-XXXXXX");
    if (mkdtemp(workdir) == NULL) return -1;
    if (wxbank("init") != 0) return -1;
    if (wxbank("seed --cards 3 --pans pans.tsv") != 0) return -1;
    if (wxbank("bind " BOUND " --customer 1") != 0) return -1;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        char args[256];
        snprintf(args, sizeof args, "bind %s", extra[i]);
        if (wxbank(args) != 0) return -1;
    }
    read_card();
    start_server();
    next_create_time = (long long)time(NULL);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_with(NULL);
}

/* Two followers with OpenIDs of the platform's length (28) that differ only in their last
 * character, bound to customers 2 and 3. */
#define TWIN_A "oTwinFollowerAAAAAAAAAAAAAA1"
#define TWIN_B "oTwinFollowerAAAAAAAAAAAAAA2"

static int setup_twins(void **state)
{
    (void)state;
    static const char *const binds[] = {TWIN_A " --customer 2", TWIN_B " --customer 3", NULL};
    return setup_with(binds);
}

static int teardown(void **state)
{
    (void)state;
    int rc = stop_server();
    if (rc == 0 && wxbank("verify") != 0) {
        fprintf(stderr, "wxbank verify failed after serving\n");
        rc = -1;
    }
    return serve_finish("test_webhook", workdir, rc != 0) != 0 ? -1 : rc;
}

static int group_setup(void **state)
{
    (void)state;
    if (getenv("WXBANK_BIN") == NULL) return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return -1;
    return wx_wechat_crypt_init(&account_crypt, TOKEN, AES_KEY, APPID) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    wx_wechat_crypt_clear(&account_crypt);
    curl_global_cleanup();
    return 0;
}

/* ======================================================================================
 * HTTP, as the platform sends it
 * ====================================================================================== */

struct resp {
    long status;
    size_t len;
    char body[RESP_MAX];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    if (r->len + len >= sizeof r->body) return 0;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* One request to /wechat?query with body (NULL: none); the answer in r. */
static void http(const char *method, const char *query, const void *body, size_t len,
                 struct resp *r)
{
    char url[4096];
    snprintf(url, sizeof url, "http://%s/wechat%s%s", http_addr, query[0] ? "?" : "", query);
    r->status = 0;
    r->len = 0;
    r->body[0] = '\0';
    CURL *h = curl_easy_init();
    assert_non_null(h);
    struct curl_slist *hdr = curl_slist_append(NULL, "Expect:");
    hdr = curl_slist_append(hdr, "Content-Type: text/xml");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
}

/* The URL parameters of one request: timestamp, nonce and what they sign. */
struct params {
    char timestamp[24];
    char nonce[24];
    char signature[WX_WECHAT_SIGNATURE_LEN + 1];
};

static void sign_params(struct params *p, long long timestamp)
{
    snprintf(p->timestamp, sizeof p->timestamp, "%lld", timestamp);
    snprintf(p->nonce, sizeof p->nonce, "%u%06u", 17 + next_nonce, next_nonce);
    next_nonce++;
    const char *parts[] = {TOKEN, p->timestamp, p->nonce};
    wx_wechat_signature(parts, 3, p->signature);
}

static void fresh_params(struct params *p)
{
    sign_params(p, (long long)time(NULL));
}

/* The plain-mode query: signature, timestamp, nonce, openid (NULL: none). */
static void plain_query(char *q, size_t cap, const struct params *p, const char *openid)
{
    snprintf(q, cap, "signature=%s&timestamp=%s&nonce=%s%s%s", p->signature, p->timestamp, p->nonce,
             openid != NULL ? "&openid=" : "", openid != NULL ? openid : "");
}

/* The safe-mode query: the plain one plus encrypt_type=aes&msg_signature over encrypt. */
static void aes_query(char *q, size_t cap, const struct params *p, const char *openid,
                      const char *encrypt)
{
    const char *parts[] = {TOKEN, p->timestamp, p->nonce, encrypt};
    char msig[WX_WECHAT_SIGNATURE_LEN + 1];
    wx_wechat_signature(parts, 4, msig);
    char plain[512];
    plain_query(plain, sizeof plain, p, openid);
    snprintf(q, cap, "%s&encrypt_type=aes&msg_signature=%s", plain, msig);
}

/* ---- message XML ---------------------------------------------------------------------- */

/* A message from `from` of MsgType type with the type's fields (already XML). */
static void message(char *out, size_t cap, const char *from, const char *type, const char *fields)
{
    int n = snprintf(out, cap,
                     "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName>\n"
                     "<FromUserName><![CDATA[%s]]></FromUserName>\n"
                     "<CreateTime>%lld</CreateTime>\n"
                     "<MsgType><![CDATA[%s]]></MsgType>\n%s</xml>",
                     from, next_create_time++, type, fields);
    assert_true(n > 0 && (size_t)n < cap);
}

/* A text message with a fresh MsgId. */
static void text_message(char *out, size_t cap, const char *from, const char *content)
{
    char fields[4096];
    snprintf(fields, sizeof fields, "<Content><![CDATA[%s]]></Content>\n<MsgId>%llu</MsgId>\n",
             content, next_msg_id++);
    message(out, cap, from, "text", fields);
}

/* An event; key and extra (more fields) may be NULL. */
static void event_message(char *out, size_t cap, const char *from, const char *event,
                          const char *key, const char *extra)
{
    char fields[4096];
    snprintf(fields, sizeof fields, "<Event><![CDATA[%s]]></Event>\n%s%s%s%s", event,
             key != NULL ? "<EventKey><![CDATA[" : "", key != NULL ? key : "",
             key != NULL ? "]]></EventKey>\n" : "", extra != NULL ? extra : "");
    message(out, cap, from, "event", fields);
}

/* POSTs xml in plain mode from openid, signed now. */
static void post_plain(const char *openid, const char *xml, struct resp *r)
{
    struct params p;
    char q[512];
    fresh_params(&p);
    plain_query(q, sizeof q, &p, openid);
    http("POST", q, xml, strlen(xml), r);
}

/* ---- safe mode ------------------------------------------------------------------------ */

static void random16(uint8_t r[WX_WECHAT_RANDOM_LEN])
{
    for (int i = 0; i < WX_WECHAT_RANDOM_LEN; i++)
        r[i] = (uint8_t)(next_nonce * 31 + (unsigned)i * 7);
}

/* The Encrypt text of msg made with c (the account's crypto, or another AppID's). */
static void encrypt_with(const struct wx_wechat_crypt *c, const char *msg, char *out, size_t cap)
{
    uint8_t r[WX_WECHAT_RANDOM_LEN];
    random16(r);
    size_t n = 0;
    assert_true(wx_wechat_encrypt_cap(c, strlen(msg)) <= cap);
    assert_int_equal(wx_wechat_encrypt(c, msg, strlen(msg), r, out, cap, &n), 0);
}

/* The safe-mode envelope around encrypt; plain_fields (compatible mode) may be "". */
static void envelope(char *out, size_t cap, const char *plain_fields, const char *encrypt)
{
    int n = snprintf(out, cap,
                     "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName>\n%s"
                     "<Encrypt><![CDATA[%s]]></Encrypt>\n</xml>",
                     plain_fields, encrypt);
    assert_true(n > 0 && (size_t)n < cap);
}

/* POSTs an envelope around encrypt, signed (msg_signature too) now. */
static void post_encrypted(const char *openid, const char *encrypt, const char *plain_fields,
                           struct params *p, struct resp *r)
{
    static char body[XML_MAX * 2];
    char q[1024];
    fresh_params(p);
    aes_query(q, sizeof q, p, openid, encrypt);
    envelope(body, sizeof body, plain_fields, encrypt);
    http("POST", q, body, strlen(body), r);
}

/* Posts msg (XML) in safe mode, encrypted for our AppID. */
static void post_safe(const char *openid, const char *msg, struct params *p, struct resp *r)
{
    static char enc[XML_MAX * 2];
    encrypt_with(&account_crypt, msg, enc, sizeof enc);
    post_encrypted(openid, enc, "", p, r);
}

/* Base64 of len bytes, as Encrypt carries it. */
static void base64(const uint8_t *in, size_t len, char *out, size_t cap)
{
    assert_true(4 * ((len + 2) / 3) + 1 <= cap);
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Decodes base64 text; returns the byte count. */
static size_t unbase64(const char *in, uint8_t *out, size_t cap)
{
    size_t n = strlen(in);
    assert_true(n % 4 == 0 && n / 4 * 3 <= cap);
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    assert_true(got >= 0);
    size_t pad = (n > 0 && in[n - 1] == '=') + (n > 1 && in[n - 2] == '=');
    return (size_t)got - pad;
}

/* AES-256-CBC with the account's key (IV = its first 16 bytes), no OpenSSL padding: len
 * must be whole blocks. */
static void aes_encrypt_raw(const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t key[32];
    assert_int_equal(wx_wechat_aes_key_parse(AES_KEY, key), 0);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_non_null(ctx);
    int n = 0, m = 0;
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, key), 1);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    assert_int_equal(EVP_EncryptUpdate(ctx, out, &n, in, (int)len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, out + n, &m), 1);
    assert_int_equal((size_t)(n + m), len);
    EVP_CIPHER_CTX_free(ctx);
}

/* ---- replies -------------------------------------------------------------------------- */

static struct wx_wechat_msg reply_msg; /* ~40 KiB: not on the stack */

/* Parses a passive text reply (xml, len bytes) to openid; returns its Content. */
static const char *parse_text_reply(const char *xml, size_t len, const char *openid)
{
    struct wx_wechat_xml_error xe = {{0}};
    if (wx_wechat_msg_parse(xml, len, &reply_msg, &xe) != 0) {
        fail_msg("reply does not parse (%s): %.*s", xe.why, (int)len, xml);
    }
    assert_string_equal(reply_msg.to_user, openid);    /* the follower */
    assert_string_equal(reply_msg.from_user, ACCOUNT); /* the account */
    assert_int_equal(reply_msg.msg_type, WX_WECHAT_MSG_TEXT);
    int64_t now = (int64_t)time(NULL);
    assert_true(reply_msg.create_time > now - 60 && reply_msg.create_time <= now + 1);
    return reply_msg.content;
}

/* A 200 plain text reply to openid; returns its Content. */
static const char *text_reply(const struct resp *r, const char *openid)
{
    if (r->status != 200) fail_msg("HTTP %ld: %s", r->status, r->body);
    assert_null(strstr(r->body, "<Encrypt>"));
    return parse_text_reply(r->body, r->len, openid);
}

/* Extracts <tag>...</tag> (CDATA or bare) of a reply envelope into out. */
static void envelope_field(const char *xml, const char *tag, char *out, size_t cap)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *p = strstr(xml, open);
    if (p == NULL) fail_msg("reply has no %s: %s", tag, xml);
    p += strlen(open);
    const char *e = strstr(p, close);
    assert_non_null(e);
    if (strncmp(p, "<![CDATA[", 9) == 0) {
        p += 9;
        assert_true(e - p >= 3 && memcmp(e - 3, "]]>", 3) == 0);
        e -= 3;
    }
    assert_true((size_t)(e - p) < cap);
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
}

/* A 200 encrypted reply: its MsgSignature verifies, it
 * decrypts for our AppID, and it is a text reply to openid. Returns its Content. */
static const char *sealed_reply(const struct resp *r, const char *openid)
{
    static char enc[RESP_MAX], plain[RESP_MAX];
    char msig[64], ts[32], nonce[80];
    if (r->status != 200) fail_msg("HTTP %ld: %s", r->status, r->body);
    envelope_field(r->body, "Encrypt", enc, sizeof enc);
    envelope_field(r->body, "MsgSignature", msig, sizeof msig);
    envelope_field(r->body, "TimeStamp", ts, sizeof ts);
    envelope_field(r->body, "Nonce", nonce, sizeof nonce);
    /* The reply is signed with a timestamp near now and a nonce of its own choosing (the
     * request's, or another when that one cannot go into a reply). */
    assert_true(strlen(ts) > 0 && strspn(ts, "0123456789") == strlen(ts));
    long long sent = strtoll(ts, NULL, 10), now = (long long)time(NULL);
    assert_true(sent > now - 300 && sent <= now + 1);
    assert_true(strlen(nonce) > 0 && strlen(nonce) <= WX_WECHAT_NONCE_MAX);
    assert_null(strstr(r->body, "<Content>"));
    size_t len = 0;
    int rc = wx_wechat_decrypt_msg(&account_crypt, msig, ts, nonce, enc, plain, sizeof plain, &len);
    if (rc != 0) fail_msg("sealed reply: %s", wx_wechat_strerror(rc));
    return parse_text_reply(plain, len, openid);
}

static void assert_success(const struct resp *r)
{
    if (r->status != 200 || r->len != 7 || memcmp(r->body, "success", 7) != 0) {
        fail_msg("want 200 \"success\", got HTTP %ld: %s", r->status, r->body);
    }
}

static void assert_contains(const char *text, const char *want)
{
    if (strstr(text, want) == NULL) fail_msg("want \"%s\" in \"%s\"", want, text);
}

/* "可用额度：¥6,000.00" for fen; lang "zh" or "en". */
static void available_text(char *out, size_t cap, long long fen, bool en)
{
    char amount[64];
    wx_amount_format(fen, amount, sizeof amount);
    snprintf(out, cap, "%s%s", en ? EN_AVAILABLE : ZH_AVAILABLE, amount);
}

/* BOUND asks 余额 and gets the card's available credit: fen. */
static void assert_bound_balance(long long fen)
{
    static char xml[XML_MAX];
    char want[128];
    static struct resp aux; /* not the test's: the test may still read its own */
    struct resp *r = &aux;
    text_message(xml, sizeof xml, BOUND, "余额");
    post_plain(BOUND, xml, r);
    available_text(want, sizeof want, fen, false);
    assert_contains(text_reply(r, BOUND), want);
}

static void assert_still_bound(void)
{
    assert_bound_balance(card_limit);
}

static void assert_unbound(const char *openid)
{
    static char xml[XML_MAX];
    static struct resp aux; /* not the test's: the test may still read its own */
    struct resp *r = &aux;
    text_message(xml, sizeof xml, openid, "余额");
    post_plain(openid, xml, r);
    const char *text = text_reply(r, openid);
    if (strstr(text, ZH_NOT_BOUND) == NULL) {
        fail_msg("%s should not be bound any more, but 余额 shows: %s", openid, text);
    }
}

static struct resp test_resp; /* a test's answers (static: 1 MiB, and no leak on failure) */

static struct resp *resp_new(void)
{
    return &test_resp;
}

/* ======================================================================================
 * URL check
 * ====================================================================================== */

static void test_url_check(void **state)
{
    (void)state;
    struct resp *r = resp_new();
    struct params p;
    char q[512];
    fresh_params(&p);
    snprintf(q, sizeof q, "signature=%s&timestamp=%s&nonce=%s&echostr=1616140317555161061",
             p.signature, p.timestamp, p.nonce);
    http("GET", q, NULL, 0, r);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->len, 19);
    assert_memory_equal(r->body, "1616140317555161061", 19);

    /* Percent-encoded: the decoded value comes back, byte for byte. */
    snprintf(q, sizeof q, "signature=%s&timestamp=%s&nonce=%s&echostr=Ab%%2B%%2Fz%%3D%%3D",
             p.signature, p.timestamp, p.nonce);
    http("GET", q, NULL, 0, r);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->len, 7);
    assert_memory_equal(r->body, "Ab+/z==", 7);

    /* A signature of other parameters, one character off, or none at all. */
    struct params other;
    fresh_params(&other);
    snprintf(q, sizeof q, "signature=%s&timestamp=%s&nonce=%s&echostr=42", other.signature,
             p.timestamp, p.nonce);
    http("GET", q, NULL, 0, r);
    assert_int_equal(r->status, 403);
    assert_null(strstr(r->body, "42"));
    char bad[WX_WECHAT_SIGNATURE_LEN + 1];
    snprintf(bad, sizeof bad, "%s", p.signature);
    bad[0] = bad[0] == 'a' ? 'b' : 'a';
    snprintf(q, sizeof q, "signature=%s&timestamp=%s&nonce=%s&echostr=42", bad, p.timestamp,
             p.nonce);
    http("GET", q, NULL, 0, r);
    assert_int_equal(r->status, 403);
    snprintf(q, sizeof q, "timestamp=%s&nonce=%s&echostr=42", p.timestamp, p.nonce);
    http("GET", q, NULL, 0, r);
    assert_int_equal(r->status, 403);
    http("GET", "echostr=42", NULL, 0, r);
    assert_int_equal(r->status, 403);
    http("GET", "", NULL, 0, r);
    assert_int_equal(r->status, 403);
    /* Stale: signed properly, but 1000 s ago (wechat.timestamp_skew_s is 300). */
    struct params stale;
    sign_params(&stale, (long long)time(NULL) - 1000);
    snprintf(q, sizeof q, "signature=%s&timestamp=%s&nonce=%s&echostr=42", stale.signature,
             stale.timestamp, stale.nonce);
    http("GET", q, NULL, 0, r);
    assert_int_equal(r->status, 403);
}

/* ======================================================================================
 * Messages and replies
 * ====================================================================================== */

/* A text message gets a passive text reply with the addresses swapped; a bound follower's
 * 余额 / balance shows the card's available credit, an unbound one is asked to bind. */
static void test_text_balance_and_bind_prompt(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    struct resp *r = resp_new();
    char want[128];

    text_message(xml, sizeof xml, BOUND, "余额");
    post_plain(BOUND, xml, r);
    assert_int_equal(r->status, 200);
    assert_contains(r->body, "<ToUserName><![CDATA[" BOUND "]]></ToUserName>");
    assert_contains(r->body, "<FromUserName><![CDATA[" ACCOUNT "]]></FromUserName>");
    const char *text = text_reply(r, BOUND);
    available_text(want, sizeof want, card_limit, false);
    assert_contains(text, want);
    char last4[16];
    snprintf(last4, sizeof last4, "尾号%s", card_pan + strlen(card_pan) - 4);
    assert_contains(text, last4);
    assert_null(strstr(text, card_pan)); /* never the whole card number */

    text_message(xml, sizeof xml, BOUND, "What is my balance?");
    post_plain(BOUND, xml, r);
    available_text(want, sizeof want, card_limit, true);
    assert_contains(text_reply(r, BOUND), want);

    text_message(xml, sizeof xml, UNBOUND, "余额");
    post_plain(UNBOUND, xml, r);
    text = text_reply(r, UNBOUND);
    assert_contains(text, ZH_NOT_BOUND);
    assert_null(strstr(text, ZH_AVAILABLE));
    text_message(xml, sizeof xml, UNBOUND, "balance");
    post_plain(UNBOUND, xml, r);
    assert_contains(text_reply(r, UNBOUND), EN_NOT_BOUND);

    text_message(xml, sizeof xml, UNBOUND, "帮助");
    post_plain(UNBOUND, xml, r);
    assert_contains(text_reply(r, UNBOUND), ZH_HELP);
    text_message(xml, sizeof xml, UNBOUND, "看看天气");
    post_plain(UNBOUND, xml, r);
    assert_contains(text_reply(r, UNBOUND), ZH_SORRY);
}

/* Every other message kind: voice is understood through its Recognition; image, video,
 * shortvideo, location and link get exactly "success". */
static void test_every_message_kind(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    char fields[2048], want[128];
    struct resp *r = resp_new();

    snprintf(fields, sizeof fields,
             "<MediaId><![CDATA[voice_media_1]]></MediaId><Format><![CDATA[amr]]></Format>"
             "<Recognition><![CDATA[余额]]></Recognition><MsgId>%llu</MsgId>",
             next_msg_id++);
    message(xml, sizeof xml, BOUND, "voice", fields);
    post_plain(BOUND, xml, r);
    available_text(want, sizeof want, card_limit, false);
    assert_contains(text_reply(r, BOUND), want);

    static const struct {
        const char *type;
        const char *fields;
    } others[] = {
        {"image", "<PicUrl><![CDATA[http://mmbiz.qpic.cn/x.jpg]]></PicUrl>"
                  "<MediaId><![CDATA[image_media_1]]></MediaId>"},
        {"video", "<MediaId><![CDATA[video_media_1]]></MediaId>"
                  "<ThumbMediaId><![CDATA[thumb_1]]></ThumbMediaId>"},
        {"shortvideo", "<MediaId><![CDATA[short_media_1]]></MediaId>"
                       "<ThumbMediaId><![CDATA[thumb_2]]></ThumbMediaId>"},
        {"location", "<Location_X>31.230416</Location_X><Location_Y>121.473701</Location_Y>"
                     "<Scale>15</Scale><Label><![CDATA[上海市黄浦区人民大道]]></Label>"},
        {"link", "<Title><![CDATA[信用卡账单]]></Title>"
                 "<Description><![CDATA[本期账单]]></Description>"
                 "<Url><![CDATA[https://bank.example/bill]]></Url>"},
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        snprintf(fields, sizeof fields, "%s<MsgId>%llu</MsgId>", others[i].fields, next_msg_id++);
        message(xml, sizeof xml, BOUND, others[i].type, fields);
        post_plain(BOUND, xml, r);
        assert_success(r);
    }
}

/* Every event: subscribe (plain and from a parametric QR code) gets the welcome (with the
 * bind prompt only when unbound); the menu's BALANCE and HELP keys answer; SCAN, VIEW,
 * LOCATION and TEMPLATESENDJOBFINISH get exactly "success"; unsubscribe gets "success" and
 * the binding is gone afterwards. */
static void test_every_event(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    char want[128];
    struct resp *r = resp_new();

    event_message(xml, sizeof xml, BOUND, "subscribe", NULL, NULL);
    post_plain(BOUND, xml, r);
    const char *text = text_reply(r, BOUND);
    assert_contains(text, ZH_WELCOME);
    assert_null(strstr(text, ZH_NOT_BOUND));
    event_message(xml, sizeof xml, UNBOUND, "subscribe", NULL, NULL);
    post_plain(UNBOUND, xml, r);
    text = text_reply(r, UNBOUND);
    assert_contains(text, ZH_WELCOME);
    assert_contains(text, ZH_NOT_BOUND);
    event_message(xml, sizeof xml, UNBOUND, "subscribe", "qrscene_123123",
                  "<Ticket><![CDATA[gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2tp]]>"
                  "</Ticket>");
    post_plain(UNBOUND, xml, r);
    assert_contains(text_reply(r, UNBOUND), ZH_WELCOME);

    /* The menu is Chinese but its keys are ASCII: either language is accepted here. */
    char want_en[128];
    event_message(xml, sizeof xml, BOUND, "CLICK", "BALANCE", NULL);
    post_plain(BOUND, xml, r);
    available_text(want, sizeof want, card_limit, false);
    available_text(want_en, sizeof want_en, card_limit, true);
    text = text_reply(r, BOUND);
    assert_true(strstr(text, want) != NULL || strstr(text, want_en) != NULL);
    event_message(xml, sizeof xml, UNBOUND, "CLICK", "BALANCE", NULL);
    post_plain(UNBOUND, xml, r);
    text = text_reply(r, UNBOUND);
    assert_true(strstr(text, ZH_NOT_BOUND) != NULL || strstr(text, EN_NOT_BOUND) != NULL);
    event_message(xml, sizeof xml, BOUND, "CLICK", "HELP", NULL);
    post_plain(BOUND, xml, r);
    text = text_reply(r, BOUND);
    assert_true(strstr(text, EN_HELP) != NULL || strstr(text, ZH_HELP) != NULL);

    static const struct {
        const char *event, *key, *extra;
    } quiet[] = {
        {"SCAN", "123123", "<Ticket><![CDATA[TICKET]]></Ticket>"},
        {"VIEW", "https://bank.example/h5/bind", "<MenuId>439342175</MenuId>"},
        {"LOCATION", NULL,
         "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude>"
         "<Precision>119.385040</Precision>"},
        {"TEMPLATESENDJOBFINISH", NULL,
         "<MsgID>200163836</MsgID><Status><![CDATA[failed:user block]]></Status>"},
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++) {
        event_message(xml, sizeof xml, BOUND, quiet[i].event, quiet[i].key, quiet[i].extra);
        post_plain(BOUND, xml, r);
        assert_success(r);
    }
    assert_still_bound();

    event_message(xml, sizeof xml, BOUND, "unsubscribe", NULL, NULL);
    post_plain(BOUND, xml, r);
    assert_success(r);
    assert_unbound(BOUND);
}

/* Safe mode: the message arrives encrypted, the reply is encrypted for our AppID, signed
 * with the request's timestamp and nonce; an unfollow in safe mode is answered "success"
 * (never encrypted) and unbinds. */
static void test_safe_mode(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    char want[128];
    struct resp *r = resp_new();
    struct params p;

    text_message(xml, sizeof xml, BOUND, "余额");
    post_safe(BOUND, xml, &p, r);
    available_text(want, sizeof want, card_limit, false);
    assert_contains(sealed_reply(r, BOUND), want);

    text_message(xml, sizeof xml, UNBOUND, "余额");
    post_safe(UNBOUND, xml, &p, r);
    assert_contains(sealed_reply(r, UNBOUND), ZH_NOT_BOUND);

    /* A nonce that cannot go back into a reply (the platform's are digits): the reply is
     * signed with a nonce of the bank's own, and still verifies. */
    static char enc[XML_MAX * 2], body[XML_MAX * 2];
    char q[1024];
    text_message(xml, sizeof xml, BOUND, "余额");
    encrypt_with(&account_crypt, xml, enc, sizeof enc);
    snprintf(p.timestamp, sizeof p.timestamp, "%lld", (long long)time(NULL));
    snprintf(p.nonce, sizeof p.nonce, "n-o_n.c");
    const char *parts[] = {TOKEN, p.timestamp, p.nonce};
    wx_wechat_signature(parts, 3, p.signature);
    aes_query(q, sizeof q, &p, BOUND, enc);
    envelope(body, sizeof body, "", enc);
    http("POST", q, body, strlen(body), r);
    assert_contains(sealed_reply(r, BOUND), want);

    event_message(xml, sizeof xml, BOUND, "SCAN", "scene_1", NULL);
    post_safe(BOUND, xml, &p, r);
    assert_success(r);

    event_message(xml, sizeof xml, BOUND, "unsubscribe", NULL, NULL);
    post_safe(BOUND, xml, &p, r);
    assert_success(r);
    assert_unbound(BOUND);
}

/* Compatible mode: the body carries the plain fields and Encrypt. The encrypted copy is the
 * one that counts: the plain copy says hello, the encrypted one asks for the balance. */
static void test_compatible_mode(void **state)
{
    (void)state;
    static char xml[XML_MAX], enc[XML_MAX * 2];
    char plain_fields[1024], want[128];
    struct resp *r = resp_new();
    struct params p;

    unsigned long long id = next_msg_id++;
    snprintf(xml, sizeof xml,
             "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName>\n"
             "<FromUserName><![CDATA[" BOUND "]]></FromUserName>\n"
             "<CreateTime>%lld</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
             "<Content><![CDATA[余额]]></Content>\n<MsgId>%llu</MsgId>\n</xml>",
             next_create_time++, id);
    snprintf(plain_fields, sizeof plain_fields,
             "<FromUserName><![CDATA[" BOUND "]]></FromUserName>\n"
             "<CreateTime>%lld</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
             "<Content><![CDATA[hello]]></Content>\n<MsgId>%llu</MsgId>\n",
             next_create_time - 1, id);
    encrypt_with(&account_crypt, xml, enc, sizeof enc);
    post_encrypted(BOUND, enc, plain_fields, &p, r);
    available_text(want, sizeof want, card_limit, false);
    const char *text = sealed_reply(r, BOUND);
    assert_contains(text, want);
    assert_null(strstr(text, "Hello"));

    /* The plain copy says unsubscribe, the encrypted one is an image: nothing unbinds. */
    message(xml, sizeof xml, BOUND, "image",
            "<PicUrl><![CDATA[http://mmbiz.qpic.cn/y.jpg]]></PicUrl>"
            "<MediaId><![CDATA[m2]]></MediaId><MsgId>6000000000000009999</MsgId>");
    snprintf(plain_fields, sizeof plain_fields,
             "<FromUserName><![CDATA[" BOUND "]]></FromUserName>\n"
             "<CreateTime>%lld</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n"
             "<Event><![CDATA[unsubscribe]]></Event>\n",
             next_create_time - 1);
    encrypt_with(&account_crypt, xml, enc, sizeof enc);
    post_encrypted(BOUND, enc, plain_fields, &p, r);
    assert_success(r);
    assert_still_bound();
}

/* ======================================================================================
 * Refusals: the right status, and nothing done
 * ====================================================================================== */

/* Each refused request below is BOUND unfollowing: afterwards BOUND must still be bound,
 * and the log must show no unfollow. */
static void unsubscribe_xml(char *xml, size_t cap)
{
    event_message(xml, cap, BOUND, "unsubscribe", NULL, NULL);
}

static void expect_status(const struct resp *r, long status, const char *what)
{
    if (r->status != status) {
        fail_msg("%s: want HTTP %ld, got %ld: %s", what, status, r->status, r->body);
    }
}

static void test_refused_signatures(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    struct resp *r = resp_new();
    struct params p;
    char q[1024];
    unsubscribe_xml(xml, sizeof xml);

    http("POST", "openid=" BOUND, xml, strlen(xml), r);
    expect_status(r, 403, "no signature");
    fresh_params(&p);
    snprintf(q, sizeof q, "timestamp=%s&nonce=%s&openid=" BOUND, p.timestamp, p.nonce);
    http("POST", q, xml, strlen(xml), r);
    expect_status(r, 403, "no signature, timestamp and nonce given");
    snprintf(q, sizeof q, "signature=%s&nonce=%s&openid=" BOUND, p.signature, p.nonce);
    http("POST", q, xml, strlen(xml), r);
    expect_status(r, 403, "no timestamp");

    p.signature[7] = p.signature[7] == '0' ? '1' : '0';
    plain_query(q, sizeof q, &p, BOUND);
    http("POST", q, xml, strlen(xml), r);
    expect_status(r, 403, "wrong signature");
    struct params other;
    fresh_params(&other);
    snprintf(q, sizeof q, "signature=%s&timestamp=%s&nonce=%s&openid=" BOUND, other.signature,
             other.timestamp, "12345");
    http("POST", q, xml, strlen(xml), r);
    expect_status(r, 403, "signature of another nonce");

    sign_params(&p, (long long)time(NULL) - 1000);
    plain_query(q, sizeof q, &p, BOUND);
    http("POST", q, xml, strlen(xml), r);
    expect_status(r, 403, "timestamp 1000 s old");
    sign_params(&p, (long long)time(NULL) + 1000);
    plain_query(q, sizeof q, &p, BOUND);
    http("POST", q, xml, strlen(xml), r);
    expect_status(r, 403, "timestamp 1000 s ahead");

    /* Safe mode: a good plain signature but a bad or missing msg_signature. */
    static char enc[XML_MAX * 2], body[XML_MAX * 2];
    encrypt_with(&account_crypt, xml, enc, sizeof enc);
    envelope(body, sizeof body, "", enc);
    fresh_params(&p);
    aes_query(q, sizeof q, &p, BOUND, enc);
    char *ms = strstr(q, "msg_signature=") + 14;
    ms[3] = ms[3] == 'a' ? 'b' : 'a';
    http("POST", q, body, strlen(body), r);
    expect_status(r, 403, "wrong msg_signature");
    plain_query(q, sizeof q, &p, BOUND);
    strcat(q, "&encrypt_type=aes");
    http("POST", q, body, strlen(body), r);
    expect_status(r, 403, "no msg_signature");
    /* msg_signature over another Encrypt. */
    fresh_params(&p);
    aes_query(q, sizeof q, &p, BOUND, "c29tZXRoaW5nIGVsc2U=");
    http("POST", q, body, strlen(body), r);
    expect_status(r, 403, "msg_signature of another Encrypt");

    assert_int_equal(log_count("follower unfollowed"), 0);
    assert_still_bound();
}

/* Ciphertexts that are signed properly but wrong inside: another AppID, a flipped byte, bad
 * PKCS#7 padding (hand-built), not base64, not whole blocks. All 400, nothing done. */
static void test_refused_ciphertexts(void **state)
{
    (void)state;
    static char xml[XML_MAX], enc[XML_MAX * 2];
    static uint8_t raw[XML_MAX * 2], sealed[XML_MAX * 2];
    struct resp *r = resp_new();
    struct params p;
    unsubscribe_xml(xml, sizeof xml);

    struct wx_wechat_crypt other;
    assert_int_equal(wx_wechat_crypt_init(&other, TOKEN, AES_KEY, "wx0000000000000000"), 0);
    encrypt_with(&other, xml, enc, sizeof enc);
    wx_wechat_crypt_clear(&other);
    post_encrypted(BOUND, enc, "", &p, r);
    expect_status(r, 400, "another AppID inside");

    /* Flipping a byte of the first block garbles the random prefix (ignored) and flips the
     * same byte of the second block: the message length. */
    encrypt_with(&account_crypt, xml, enc, sizeof enc);
    size_t n = unbase64(enc, raw, sizeof raw);
    assert_true(n % 32 == 0);
    raw[0] ^= 0x80;
    base64(raw, n, enc, sizeof enc);
    post_encrypted(BOUND, enc, "", &p, r);
    expect_status(r, 400, "tampered first block");
    /* A flipped byte in the second-to-last block: the padding changes. */
    encrypt_with(&account_crypt, xml, enc, sizeof enc);
    n = unbase64(enc, raw, sizeof raw);
    raw[n - 17] ^= 0x01;
    base64(raw, n, enc, sizeof enc);
    post_encrypted(BOUND, enc, "", &p, r);
    expect_status(r, 400, "tampered padding block");

    /* FullStr = random(16) | be32 len | msg | appid, padded by hand three wrong ways. */
    size_t msg_len = strlen(xml), appid_len = strlen(APPID);
    size_t body = 16 + 4 + msg_len + appid_len;
    size_t good_pad = 32 - body % 32; /* 1..32 bytes of that value */
    size_t pad = good_pad >= 2 ? good_pad : good_pad + 32;
    memset(raw, 0x5a, 16);
    raw[16] = (uint8_t)(msg_len >> 24);
    raw[17] = (uint8_t)(msg_len >> 16);
    raw[18] = (uint8_t)(msg_len >> 8);
    raw[19] = (uint8_t)msg_len;
    memcpy(raw + 20, xml, msg_len);
    memcpy(raw + 20 + msg_len, APPID, appid_len);
    for (int variant = 0; variant < 3; variant++) {
        uint8_t *padp = raw + body;
        if (variant == 0) {
            memset(padp, 0, pad); /* pad value 0 */
        } else if (variant == 1) {
            memset(padp, (int)pad, pad); /* the right value, one byte off */
            padp[pad - 2] = (uint8_t)(pad ^ 1);
        } else {
            memset(padp, 40, pad); /* a value over the block of 32 */
        }
        aes_encrypt_raw(raw, body + pad, sealed);
        base64(sealed, body + pad, enc, sizeof enc);
        post_encrypted(BOUND, enc, "", &p, r);
        expect_status(r, 400, "bad padding");
    }
    /* The same FullStr padded right: the control, used last. */
    memset(raw + body, (int)good_pad, good_pad);
    aes_encrypt_raw(raw, body + good_pad, sealed);
    static char good_enc[XML_MAX * 2];
    base64(sealed, body + good_pad, good_enc, sizeof good_enc);

    char garbage[] = "not*base64!";
    post_encrypted(BOUND, garbage, "", &p, r);
    expect_status(r, 400, "Encrypt not base64");
    post_encrypted(BOUND, "YWJj", "", &p, r);
    expect_status(r, 400, "Encrypt not whole blocks");

    assert_int_equal(log_count("follower unfollowed"), 0);
    assert_still_bound();

    /* The control: the hand-built, rightly padded one is a real unfollow. */
    post_encrypted(BOUND, good_enc, "", &p, r);
    assert_success(r);
    assert_unbound(BOUND);
}

/* A body of exactly 64 KiB is taken; one byte more is 413. Both are unfollows padded with
 * whitespace. */
static void test_body_size_limit(void **state)
{
    (void)state;
    static char xml[XML_MAX], big[WX_WECHAT_BODY_MAX + 2];
    struct resp *r = resp_new();
    unsubscribe_xml(xml, sizeof xml);
    const char *tail = strstr(xml, "</xml>");
    size_t head = (size_t)(tail - xml);

    size_t total = WX_WECHAT_BODY_MAX + 1;
    memcpy(big, xml, head);
    memset(big + head, ' ', total - head - 6);
    memcpy(big + total - 6, "</xml>", 6);
    struct params p;
    char q[512];
    fresh_params(&p);
    plain_query(q, sizeof q, &p, BOUND);
    http("POST", q, big, total, r);
    expect_status(r, 413, "64 KiB + 1");
    assert_still_bound();

    /* The same, one byte shorter: exactly at the limit. */
    total = WX_WECHAT_BODY_MAX;
    memcpy(big, xml, head);
    memset(big + head, ' ', total - head - 6);
    memcpy(big + total - 6, "</xml>", 6);
    fresh_params(&p);
    plain_query(q, sizeof q, &p, BOUND);
    http("POST", q, big, total, r);
    assert_success(r);
    assert_unbound(BOUND);
}

/* Malformed XML and DOCTYPE tricks (billion laughs, an external entity, a bare DOCTYPE,
 * a processing instruction, an undeclared entity): 400, nothing done. */
static void test_refused_xml(void **state)
{
    (void)state;
    static char xml[XML_MAX], body[XML_MAX * 2], enc[XML_MAX * 4];
    struct resp *r = resp_new();
    unsubscribe_xml(xml, sizeof xml);
    const char *inner = strstr(xml, "<ToUserName>");
    assert_non_null(inner);

    static const char *const prefixes[] = {
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n"
        "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
        "]>\n<xml><Lol>&lol3;</Lol>",
        "<?xml version=\"1.0\"?>\n<!DOCTYPE xml [\n<!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n"
        "]>\n<xml><Content>&xxe;</Content>",
        "<!DOCTYPE xml [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/evil.dtd\"> %p;]>\n<xml>",
        "<!DOCTYPE xml>\n<xml>",
        "<?xml-stylesheet href=\"http://127.0.0.1:9/x.xsl\"?>\n<xml>",
        "<xml><Label>&undeclared;</Label>",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(body, sizeof body, "%s%s", prefixes[i], inner);
        post_plain(BOUND, body, r);
        expect_status(r, 400, prefixes[i]);
        /* The same inside a safe-mode envelope, properly signed. */
        struct params p;
        encrypt_with(&account_crypt, body, enc, sizeof enc);
        post_encrypted(BOUND, enc, "", &p, r);
        expect_status(r, 400, prefixes[i]);
    }

    static const char *const malformed[] = {
        "",
        "not xml at all",
        "{\"ToUserName\":\"" ACCOUNT "\",\"MsgType\":\"event\",\"Event\":\"unsubscribe\"}",
        "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName><FromUserName><![CDATA[" BOUND
        "]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[unsubscribe]]></Event>", /* never closed */
        "<msg><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName><FromUserName><![CDATA[" BOUND
        "]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[unsubscribe]]></Event></msg>", /* another root */
        "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName><FromUserName><![CDATA[" BOUND
        "]]></FromUserName><CreateTime>1</CreateTime>"
        "<Event><![CDATA[unsubscribe]]></Event></xml>", /* no MsgType */
        "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName><FromUserName><![CDATA[" BOUND
        "]]></FromUserName><FromUserName><![CDATA[" UNBOUND "]]></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[unsubscribe]]></Event></xml>", /* a field twice */
        "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName><FromUserName><![CDATA[" BOUND
        "]]></FromUserName><CreateTime>12x</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[unsubscribe]]></Event></xml>", /* not a number */
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        struct params p;
        char q[512];
        fresh_params(&p);
        plain_query(q, sizeof q, &p, BOUND);
        http("POST", q, malformed[i], strlen(malformed[i]), r);
        expect_status(r, 400, malformed[i]);
    }

    assert_int_equal(log_count("follower unfollowed"), 0);
    assert_still_bound();
}

/* The request is signed and well formed but not acceptable: the openid parameter names
 * someone else, the message is for another account, encrypt_type is unknown, safe mode
 * without Encrypt; other HTTP methods. Nothing done. */
static void test_refused_requests(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    struct resp *r = resp_new();
    struct params p;
    char q[1024];
    unsubscribe_xml(xml, sizeof xml);

    post_plain(UNBOUND, xml, r);
    expect_status(r, 400, "openid is not FromUserName");
    static char enc[XML_MAX * 2];
    encrypt_with(&account_crypt, xml, enc, sizeof enc);
    post_encrypted(UNBOUND, enc, "", &p, r);
    expect_status(r, 400, "openid is not the decrypted FromUserName");

    static char other[XML_MAX];
    snprintf(other, sizeof other, "%s", xml);
    memcpy(strstr(other, ACCOUNT), "gh_000000000000", strlen(ACCOUNT));
    post_plain(BOUND, other, r);
    expect_status(r, 400, "another account's message");

    fresh_params(&p);
    plain_query(q, sizeof q, &p, BOUND);
    strcat(q, "&encrypt_type=des");
    http("POST", q, xml, strlen(xml), r);
    expect_status(r, 400, "encrypt_type=des");
    fresh_params(&p);
    aes_query(q, sizeof q, &p, BOUND, "x");
    http("POST", q, xml, strlen(xml), r);
    expect_status(r, 400, "encrypt_type=aes without Encrypt");

    /* The listener takes GET, POST and HEAD; other methods never reach the webhook. */
    static const struct {
        const char *method;
        long status;
    } methods[] = {{"PUT", 501}, {"DELETE", 501}, {"PATCH", 501}, {"HEAD", 405}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        fresh_params(&p);
        plain_query(q, sizeof q, &p, BOUND);
        bool head = strcmp(methods[i].method, "HEAD") == 0;
        http(methods[i].method, q, head ? NULL : xml, head ? 0 : strlen(xml), r);
        expect_status(r, methods[i].status, methods[i].method);
    }

    assert_int_equal(log_count("follower unfollowed"), 0);
    assert_still_bound();

    /* The raw mode name is plain mode: this one is a real unfollow. */
    fresh_params(&p);
    plain_query(q, sizeof q, &p, BOUND);
    strcat(q, "&encrypt_type=raw");
    http("POST", q, xml, strlen(xml), r);
    assert_success(r);
    assert_unbound(BOUND);
}

/* ======================================================================================
 * Retries
 * ====================================================================================== */

/* The platform re-sends a message it got no answer to: the same bytes get the same answer,
 * byte for byte, and the message is processed once. Proof: a card purchase through the ISO
 * 8583 door changes the available credit between the first copy and the retry; the retry
 * still shows the old amount, a new MsgId shows the new one. The same MsgId from another
 * follower is another message. Safe mode likewise. */
static void test_retry_processed_once(void **state)
{
    (void)state;
    static char xml[XML_MAX], plain_q[512], enc[XML_MAX * 2], safe_body[XML_MAX * 2];
    static char first[RESP_MAX], first_safe[RESP_MAX];
    char safe_q[1024], want[128];
    struct resp *r = resp_new();
    struct params p, sp;

    text_message(xml, sizeof xml, BOUND, "余额");
    fresh_params(&p);
    plain_query(plain_q, sizeof plain_q, &p, BOUND);
    http("POST", plain_q, xml, strlen(xml), r);
    available_text(want, sizeof want, card_limit, false);
    assert_contains(text_reply(r, BOUND), want);
    size_t first_len = r->len;
    memcpy(first, r->body, r->len);

    static char safe_xml[XML_MAX];
    text_message(safe_xml, sizeof safe_xml, BOUND, "余额");
    encrypt_with(&account_crypt, safe_xml, enc, sizeof enc);
    fresh_params(&sp);
    aes_query(safe_q, sizeof safe_q, &sp, BOUND, enc);
    envelope(safe_body, sizeof safe_body, "", enc);
    http("POST", safe_q, safe_body, strlen(safe_body), r);
    assert_contains(sealed_reply(r, BOUND), want);
    size_t first_safe_len = r->len;
    memcpy(first_safe, r->body, r->len);

    /* Another follower with the same MsgId is another message. */
    static char same_id[XML_MAX];
    snprintf(same_id, sizeof same_id, "%s", xml);
    memcpy(strstr(same_id, BOUND), UNBOUND, strlen(BOUND));
    post_plain(UNBOUND, same_id, r);
    assert_contains(text_reply(r, UNBOUND), ZH_NOT_BOUND);

    char args[256];
    snprintf(args, sizeof args, "pos purchase --pan %s --expiry %s --amount %lld.%02lld --host %s",
             card_pan, card_expiry, (long long)PURCHASE_FEN / 100, (long long)PURCHASE_FEN % 100,
             iso_addr);
    assert_int_equal(wxbank(args), 0);
    assert_bound_balance(card_limit - PURCHASE_FEN);

    for (int retry = 0; retry < 3; retry++) {
        http("POST", plain_q, xml, strlen(xml), r);
        assert_int_equal(r->status, 200);
        assert_int_equal(r->len, first_len);
        assert_memory_equal(r->body, first, first_len);
        http("POST", safe_q, safe_body, strlen(safe_body), r);
        assert_int_equal(r->status, 200);
        assert_int_equal(r->len, first_safe_len);
        assert_memory_equal(r->body, first_safe, first_safe_len);
    }
}

/* A dialogue over the webhook: transactions read from the history projection off the loop
 * (a purchase made a moment before is in them); a card lock the cardholder confirms is decided
 * by the ledger (a retry of the confirmation is answered from memory, not locked twice); a
 * request for a person is handed to the customer-service system. */
static void test_chat_lock_and_transfer(void **state)
{
    (void)state;
    static char xml[XML_MAX], confirm_q[512];
    static char first[RESP_MAX];
    struct resp *r = resp_new();
    char want[64], args[256];
    snprintf(args, sizeof args, "pos purchase --pan %s --expiry %s --amount 123.45 --host %s",
             card_pan, card_expiry, iso_addr);
    assert_int_equal(wxbank(args), 0);
    text_message(xml, sizeof xml, BOUND, "最近的交易");
    post_plain(BOUND, xml, r);
    const char *text = text_reply(r, BOUND);
    assert_contains(text, "消费");
    assert_contains(text, "¥123.45");
    assert_contains(text, "共1笔，入账消费¥123.45");
    snprintf(want, sizeof want, "确认锁定尾号%s", card_pan + strlen(card_pan) - 4);

    text_message(xml, sizeof xml, BOUND, "锁卡");
    post_plain(BOUND, xml, r);
    assert_contains(text_reply(r, BOUND), want);

    struct params p;
    text_message(xml, sizeof xml, BOUND, "确认");
    fresh_params(&p);
    plain_query(confirm_q, sizeof confirm_q, &p, BOUND);
    http("POST", confirm_q, xml, strlen(xml), r);
    assert_contains(text_reply(r, BOUND), "已锁定");
    size_t first_len = r->len;
    memcpy(first, r->body, r->len);
    http("POST", confirm_q, xml, strlen(xml), r); /* the platform's retry */
    assert_int_equal(r->len, first_len);
    assert_memory_equal(r->body, first, first_len);

    text_message(xml, sizeof xml, BOUND, "锁卡");
    post_plain(BOUND, xml, r);
    assert_contains(text_reply(r, BOUND), "没有可锁定的卡片");

    text_message(xml, sizeof xml, BOUND, "转人工");
    post_plain(BOUND, xml, r);
    assert_int_equal(r->status, 200);
    assert_contains(r->body, "<MsgType><![CDATA[transfer_customer_service]]></MsgType>");
    assert_contains(r->body, "<ToUserName><![CDATA[" BOUND "]]></ToUserName>");
}

/* An unfollow sent twice (a retry: the same bytes) is answered "success" twice and
 * processed once. A second processing would find BOUND unbound already and change nothing,
 * so "once" shows here only as one unfollow in the log; test_retry_processed_once is the
 * proof that a retry is never processed again. */
static void test_unsubscribe_retry_processed_once(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    struct resp *r = resp_new();
    struct params p;
    char q[512];
    unsubscribe_xml(xml, sizeof xml);
    fresh_params(&p);
    plain_query(q, sizeof q, &p, BOUND);
    http("POST", q, xml, strlen(xml), r);
    assert_success(r);
    http("POST", q, xml, strlen(xml), r);
    assert_success(r);
    assert_unbound(BOUND);
    assert_int_equal(log_count("follower unfollowed"), 1);
}

/* Two followers unfollow in the same second: each is unbound (each unfollow is its own
 * decision, whatever the length of the OpenIDs). */
static void test_two_unsubscribes_same_second(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    struct resp *r = resp_new();
    long long when = next_create_time++;
    static const char *const twins[] = {TWIN_A, TWIN_B};
    for (int i = 0; i < 2; i++) {
        snprintf(xml, sizeof xml,
                 "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName>\n"
                 "<FromUserName><![CDATA[%s]]></FromUserName>\n"
                 "<CreateTime>%lld</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n"
                 "<Event><![CDATA[unsubscribe]]></Event>\n</xml>",
                 twins[i], when);
        post_plain(twins[i], xml, r);
        assert_success(r);
    }
    assert_unbound(TWIN_A);
    assert_unbound(TWIN_B);
    assert_still_bound();
}

/* An account in safe mode (wechat.mode = safe): the platform encrypts every message, so a
 * plain one is forged (its URL signature does not cover the body) and gets 403. */
static int setup_safe_only(void **state)
{
    (void)state;
    setenv("WXBANK_WECHAT_MODE", "safe", 1);
    int rc = setup_with(NULL);
    unsetenv("WXBANK_WECHAT_MODE");
    return rc;
}

static void test_safe_mode_refuses_plain(void **state)
{
    (void)state;
    static char xml[XML_MAX];
    struct resp *r = resp_new();
    struct params p;
    text_message(xml, sizeof xml, BOUND, "余额");
    post_plain(BOUND, xml, r);
    expect_status(r, 403, "a plain message to a safe-mode account");
    event_message(xml, sizeof xml, BOUND, "unsubscribe", NULL, NULL);
    post_plain(BOUND, xml, r);
    expect_status(r, 403, "a plain unsubscribe to a safe-mode account");
    text_message(xml, sizeof xml, BOUND, "余额");
    post_safe(BOUND, xml, &p, r);
    assert_contains(sealed_reply(r, BOUND), "可用额度");
}

/* An idle switch connection does not hold up the shutdown (or outlive what it points to):
 * SIGTERM ends the server promptly and cleanly while the connection stays open. */
static void test_shutdown_with_idle_iso_connection(void **state)
{
    (void)state;
    char host[64];
    snprintf(host, sizeof host, "%s", iso_addr);
    char *colon = strrchr(host, ':');
    assert_non_null(colon);
    *colon = '\0';
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    assert_int_equal(inet_pton(AF_INET, host, &a.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(stop_server(), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 1500);
    close(fd);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_url_check),
        T(test_text_balance_and_bind_prompt),
        T(test_every_message_kind),
        T(test_every_event),
        T(test_safe_mode),
        T(test_compatible_mode),
        T(test_refused_signatures),
        T(test_refused_ciphertexts),
        T(test_body_size_limit),
        T(test_refused_xml),
        T(test_refused_requests),
        T(test_retry_processed_once),
        T(test_chat_lock_and_transfer),
        T(test_unsubscribe_retry_processed_once),
        cmocka_unit_test_setup_teardown(test_two_unsubscribes_same_second, setup_twins, teardown),
        cmocka_unit_test_setup_teardown(test_safe_mode_refuses_plain, setup_safe_only, teardown),
        T(test_shutdown_with_idle_iso_connection),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
