/*
 * config_schema.c - the schema of every configuration key, and the rules for its values.
 *
 * This is the single table that lists what wxbank can be configured with: name, type,
 * range, default and description. Adding a key means adding one line here. Each value is
 * parsed and validated by its type (config.c says where it came from when it is wrong).
 * Values of SECRET keys may live in files ("@/path"); those are read here, bounded by
 * WX_CONFIG_SECRET_MAX.
 */
#include "util/config_int.h"

#include "util/config.h"

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_bin(const char *v, char *why, size_t whylen);
static int check_tz(const char *v, char *why, size_t whylen);
static int check_url(const char *v, char *why, size_t whylen);
static int check_url_or_empty(const char *v, char *why, size_t whylen);
static int check_aes_key(const char *v, char *why, size_t whylen);
static int check_pan_key(const char *v, char *why, size_t whylen);
static int check_gh_id(const char *v, char *why, size_t whylen);
static int check_listen_or_empty(const char *v, char *why, size_t whylen);

static const char *const dialects[] = {"ascii87", "ascii87b", "bcd87", NULL};
static const char *const framings[] = {"len2", "ascii4", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const sandbox_modes[] = {"plain", "compat", "safe", NULL};
static const char *const wechat_modes[] = {"plain", "compat", "safe", NULL};
static const char *const languages[] = {"zh", "en", NULL};

#define STR(n, d, s)                                                                               \
    {                                                                                              \
        .name = n, .type = CFG_STRING, .def = d, .desc = s                                         \
    }
#define CHECKED(n, d, fn, s)                                                                       \
    {                                                                                              \
        .name = n, .type = CFG_STRING, .check = fn, .def = d, .desc = s                            \
    }
#define INT(n, d, lo, hi, s)                                                                       \
    {                                                                                              \
        .name = n, .type = CFG_INT, .min = lo, .max = hi, .def = d, .desc = s                      \
    }
#define BOOL(n, d, s)                                                                              \
    {                                                                                              \
        .name = n, .type = CFG_BOOL, .def = d, .desc = s                                           \
    }
#define LISTEN(n, d, s)                                                                            \
    {                                                                                              \
        .name = n, .type = CFG_LISTEN, .def = d, .desc = s                                         \
    }
#define SECRET(n, fn, s)                                                                           \
    {                                                                                              \
        .name = n, .type = CFG_SECRET, .check = fn, .def = "", .desc = s                           \
    }
#define ENUM(n, d, list, s)                                                                        \
    {                                                                                              \
        .name = n, .type = CFG_ENUM, .choices = list, .def = d, .desc = s                          \
    }

const struct cfg_key wx_cfg_schema[] = {
    {.name = "db.url",
     .type = CFG_DB_URL,
     .def = "sqlite:wxbank.db",
     .desc = "database: sqlite:PATH (embedded) or postgres://... (libpq URI)"},
    LISTEN("http.listen", "127.0.0.1:8080", "HTTP listener: webhook, ops API, metrics, sandbox"),
    INT("http.body_max", "1048576", 1024, WX_HTTP_BODY_MAX,
        "largest HTTP request body, bytes (the webhook takes at most 64 KiB)"),
    INT("http.idle_seconds", "60", 1, 3600, "an HTTP connection silent this long is closed"),
    INT("http.max_connections", "1024", 1, 65536,
        "HTTP connections open at once; more wait in the kernel's backlog"),
    INT("http.threads", "1", 0, 15,
        "HTTP I/O threads besides the hub's loop: they read, parse and write, and the webhook "
        "checks and decrypts there"),
    CHECKED("https.listen", "", check_listen_or_empty,
            "HTTPS listener for the secure pages (/m/...), with http.listen's routes too "
            "(e.g. 127.0.0.1:8443); empty: none"),
    STR("https.cert", "",
        "PEM certificate chain file for https.listen; empty: <db>.tls.crt, the self-signed "
        "one wxbank init makes"),
    STR("https.key", "",
        "PEM private key file (unencrypted) of https.cert; empty: <db>.tls.key, from wxbank "
        "init"),
    STR("web.public_url", "",
        "how cardholders reach the secure pages, https://host[:port]; empty: https.listen's "
        "address (loopback use)"),
    BOOL("web.oauth", "true",
         "ask WeChat (OAuth2 snsapi_base) who opens a one-time link; needs wechat.secret"),
    CHECKED("web.oauth_url", "https://open.weixin.qq.com/connect/oauth2/authorize", check_url,
            "WeChat's OAuth2 authorize page"),
    INT("web.link_life_s", "300", 1, 3600, "a one-time link from chat works this long, once"),
    INT("web.captcha_life_s", "120", 1, 600, "a picture code works this long, once"),
    INT("web.sms_code_life_s", "300", 1, 900, "an SMS one-time code works this long"),
    INT("web.session_idle_s", "600", 1, 3600, "a secure-page session unused this long ends"),
    INT("web.session_max_s", "1800", 1, 86400,
        "a secure-page session ends at this age, used or not"),
    INT("web.login_lock_s", "1800", 1, 86400, "5 wrong login passwords lock the login this long"),
    INT("web.ip_requests_per_min", "600", 1, 1000000,
        "secure-page requests one IP address may make per minute (more: 429)"),
    INT("web.ip_posts_per_min", "60", 1, 1000000, "forms one IP address may post per minute"),
    INT("web.follower_posts_per_min", "30", 1, 1000000,
        "forms one WeChat follower's sessions may post per minute"),
    INT("web.password_memory_kib", "65536", 8192, 1048576,
        "Argon2id memory per password hash, KiB (m)"),
    INT("web.password_iterations", "2", 1, 10, "Argon2id passes per password hash (t)"),
    LISTEN("iso8583.listen", "127.0.0.1:8583", "ISO 8583 listener for the card switch"),
    ENUM("iso8583.dialect", "ascii87", dialects, "ISO 8583:1987 wire dialect"),
    ENUM("iso8583.framing", "len2", framings,
         "TCP framing: len2 (2-byte big-endian length) or ascii4 (4 ASCII digits)"),
    INT("iso8583.frame_max", "4096", WX_ISO_FRAME_MIN, WX_ISO_FRAME_MAX,
        "largest message body; a longer frame closes the connection"),
    INT("iso8583.max_connections", "1024", 1, WX_ISO_CONNECTIONS_MAX,
        "switch connections at once; more are closed on accept"),
    INT("iso8583.idle_seconds", "300", 1, WX_ISO_IDLE_MAX_S,
        "a connection silent this long is closed"),
    STR("wechat.appid", "", "WeChat Official Account AppID"),
    SECRET("wechat.secret", NULL, "WeChat AppSecret (secret; @FILE reads a file)"),
    SECRET("wechat.token", NULL, "WeChat webhook signature token (secret; @FILE reads a file)"),
    SECRET("wechat.aes_key", check_aes_key, "WeChat EncodingAESKey, 43 characters (secret)"),
    ENUM("wechat.mode", "plain", wechat_modes,
         "the account's message mode: plain takes plain and encrypted messages; compat and "
         "safe refuse plain ones (403)"),
    STR("wechat.account", "",
        "the account's original id (gh_...); when set, messages to another account get 400"),
    INT("wechat.timestamp_skew_s", "300", 1, 600,
        "webhook requests signed further than this from now get 403"),
    INT("wechat.dedup_entries", "262144", 16, WX_WECHAT_DEDUP_MAX,
        "webhook messages remembered so that the platform's retries get the first answer"),
    STR("wechat.menu", "",
        "JSON file of the account's menu (as menu/create takes it), "
        "pushed at start; empty: leave the menu alone"),
    INT("wechat.dedup_ttl_s", "60", 20, 3600, "how long a webhook message is remembered"),
    INT("wechat.reply_deadline_ms", "4500", 100, 4900,
        "an answer not ready by then is \"success\" and follows as a customer-service message"),
    CHECKED("wechat.api_base", "https://api.weixin.qq.com", check_url,
            "WeChat platform API base URL (the sandbox's URL in demos)"),
    LISTEN("sandbox.listen", "127.0.0.1:8090", "listener of a standalone sandbox (wxbank sandbox)"),
    CHECKED("sandbox.webhook_url", "http://127.0.0.1:8080/wechat", check_url,
            "the bank's webhook, where the sandbox's followers' messages go"),
    ENUM("sandbox.mode", "safe", sandbox_modes,
         "the sandbox account's message mode: plain, compat (both) or safe (AES)"),
    CHECKED("sandbox.account", "gh_5b0a1d7e2c9f", check_gh_id,
            "the sandbox account's original id (gh_...): ToUserName of every message"),
    STR("sandbox.name", "微信银行 WX Bank", "the account's name at the top of the sandbox phone"),
    INT("sandbox.webhook_timeout_ms", "5000", 50, 60000,
        "the sandbox re-sends a message unanswered this long (the platform: 5000)"),
    BOOL("alerts.enabled", "true", "send every card transaction's alert (WeChat, SMS by policy)"),
    ENUM("alerts.lang", "zh", languages, "language of alerts: zh or en"),
    CHECKED("alerts.details_url", "", check_url_or_empty,
            "base of the transaction-details link in alerts (<url>/m/txn/<seq>); empty: none"),
    STR("alerts.template_id", "",
        "WeChat template id of alerts; empty: customer-service text messages instead"),
#define TEMPLATE_KEY(kind)                                                                         \
    STR("alerts.template_id." kind, "", "template id of " kind " alerts; empty: alerts.template_id")
    TEMPLATE_KEY("purchase"),
    TEMPLATE_KEY("cash"),
    TEMPLATE_KEY("declined"),
    TEMPLATE_KEY("increment"),
    TEMPLATE_KEY("capture"),
    TEMPLATE_KEY("reversal"),
    TEMPLATE_KEY("refund"),
    TEMPLATE_KEY("repayment"),
    TEMPLATE_KEY("limit"),
    TEMPLATE_KEY("temp_limit"),
    TEMPLATE_KEY("card_status"),
#undef TEMPLATE_KEY
    STR("alerts.template_fields",
        "keyword1:kind,keyword2:card,keyword3:amount,keyword4:merchant,keyword5:time,"
        "keyword6:available,keyword7:remark",
        "the template's data keys and what fills them (title, card, kind, amount, merchant, "
        "time, available, remark)"),
    INT("alerts.sms_quiet_below", "30000", 0, 100000000,
        "fen: domestic POS and quick-pay purchases below this go by WeChat alone (0: none do)"),
    BOOL("alerts.sms_quiet_pos", "true", "domestic card-present purchases may skip the SMS"),
    BOOL("alerts.sms_quiet_cnp", "true",
         "domestic quick-pay (card-not-present) purchases may "
         "skip the SMS"),
    INT("alerts.sms_fallback_s", "60", 1, 3600,
        "an SMS follows when WeChat has not reported the holder's alert delivered by then"),
    INT("alerts.max_age_s", "3600", 10, 7 * 86400,
        "a send still failing after this long goes to the dead-letter list"),
    INT("alerts.max_inflight", "256", 1, 4096, "alert sends in flight at once"),
    INT("alerts.queue_max", "100000", 16, 10000000,
        "alerts held in memory; past it new ones are read back from the journal later"),
    SECRET("ops.token", NULL,
           "bearer token of the ops HTTP API under /api/v1, 16 characters or more (secret; "
           "@FILE reads a file); empty: no ops API"),
    INT("chat.idle_s", "300", 60, 3600,
        "a follower's dialogue (choices, confirmations, context) is forgotten after this "
        "long without a message"),
    INT("chat.clarify_below", "55", 0, 100,
        "below this confidence (percent) the assistant asks a clarifying question"),
    STR("chat.installment_rates", "3:0.75,6:0.70,12:0.66,24:0.65",
        "installment period counts offered, each with its fee per period in percent of the "
        "principal"),
    CHECKED("sms.url", "", check_url_or_empty, "SMS gateway URL (empty: no SMS)"),
    SECRET("sms.auth_header", NULL,
           "header sent to the SMS gateway, \"Name: value\" (secret; @FILE reads a file)"),
    STR("sms.body", "{\"mobile\":\"{mobile}\",\"text\":\"{text}\",\"ref\":\"{ref}\"}",
        "JSON body template of an SMS: {mobile}, {text}, {ref} inside strings"),
    INT("sms.timeout_ms", "5000", 100, 60000, "an SMS gateway call gives up after this long"),
    SECRET("crypto.pan_key", check_pan_key,
           "AES-256 key for card numbers at rest, 64 hex (secret; empty: @<sqlite path>.key)"),
    CHECKED("tz", "Asia/Shanghai", check_tz,
            "time zone for display: UTC, Asia/Shanghai, Asia/Tokyo, ... or +HH:MM"),
    ENUM("log.level", "info", log_levels, "minimum level of log lines"),
    CHECKED("card.bin", "622588", check_bin, "BIN (first 6-8 digits) of issued card numbers"),
    INT("card.pan_length", "16", 13, 19, "digits in issued card numbers"),
    INT("card.validity_years", "5", 1, 10, "years a new card is valid"),
    INT("engine.hold_days", "7", 1, 30, "days an authorization hold lasts"),
    INT("engine.hold_days_long", "30", 1, 60, "hold days for hotel, car-rental, airline MCCs"),
    INT("engine.capture_tolerance_pct", "20", 0, 100, "percent a capture may exceed its auth"),
    INT("engine.idempotency_hours", "72", 1, 8760, "hours a repeated request gets the 1st answer"),
    INT("engine.reference_days", "45", 2, 400,
        "days references are kept; must exceed engine.hold_days_long"),
    INT("journal.batch_max", "8192", 1, WX_BATCH_ROWS_MAX, "most decisions in one group commit"),
    INT("journal.commit_gap_us", "500", 0, 100000,
        "least time between two group commits' starts, us (a full batch never waits)"),
    INT("journal.snapshot_every", "1000000", 0, 1000000000, "events between snapshots (0: never)"),
};

const size_t wx_cfg_key_count = sizeof wx_cfg_schema / sizeof wx_cfg_schema[0];

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int wx_cfg_key_index(const char *name)
{
    assert(name != NULL);
    for (size_t i = 0; i < wx_cfg_key_count; i++) {
        if (strcmp(wx_cfg_schema[i].name, name) == 0) return (int)i;
    }
    return -1;
}

/* ---- value rules ---------------------------------------------------------------------- */

static bool all_digits(const char *s, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
    }
    return true;
}

static int check_bin(const char *v, char *why, size_t whylen)
{
    size_t len = strlen(v);
    if (len >= WX_BIN_MIN && len <= WX_BIN_MAX && all_digits(v, len)) return 0;
    errf(why, whylen, "must be %d to %d digits", WX_BIN_MIN, WX_BIN_MAX);
    return -1;
}

static int check_tz(const char *v, char *why, size_t whylen)
{
    if (wx_tz_offset_minutes(v) != WX_TZ_INVALID) return 0;
    errf(why, whylen,
         "must be UTC, Asia/Shanghai, Asia/Hong_Kong, Asia/Taipei, Asia/Tokyo or +HH:MM/-HH:MM");
    return -1;
}

static int check_url(const char *v, char *why, size_t whylen)
{
    if ((strncmp(v, "http://", 7) == 0 && v[7] != '\0') ||
        (strncmp(v, "https://", 8) == 0 && v[8] != '\0')) {
        return 0;
    }
    errf(why, whylen, "must be a URL starting with http:// or https://");
    return -1;
}

static int check_url_or_empty(const char *v, char *why, size_t whylen)
{
    return v[0] == '\0' ? 0 : check_url(v, why, whylen);
}

static int check_aes_key(const char *v, char *why, size_t whylen)
{
    size_t len = strlen(v);
    if (len == 0) return 0;
    bool ok = len == 43;
    for (size_t i = 0; ok && i < len; i++) {
        char c = v[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '+' || c == '/';
    }
    if (ok) return 0;
    errf(why, whylen, "must be 43 characters of base64 (the EncodingAESKey), or empty");
    return -1;
}

static int check_pan_key(const char *v, char *why, size_t whylen)
{
    uint8_t key[WX_KEY_LEN];
    if (v[0] == '\0') return 0;
    int rc = wx_key_parse(v, key);
    wx_wipe(key, sizeof key);
    if (rc == 0) return 0;
    errf(why, whylen, "must be 64 hex characters (a 32-byte key), or empty");
    return -1;
}

/* An Official Account's original id: "gh_" and up to 29 letters, digits, '_' or '-'. */
static int check_gh_id(const char *v, char *why, size_t whylen)
{
    size_t len = strlen(v);
    bool ok = strncmp(v, "gh_", 3) == 0 && len > 3 && len <= 32;
    for (size_t i = 3; ok && i < len; i++) {
        char c = v[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    }
    if (ok) return 0;
    errf(why, whylen, "must be gh_ followed by 1 to 29 letters, digits, '_' or '-'");
    return -1;
}

/* Strict decimal int64: optional '-', 1-19 digits, nothing else. */
static int parse_int(const char *v, int64_t *out)
{
    bool neg = v[0] == '-';
    const char *p = v + (neg ? 1 : 0);
    size_t len = strlen(p);
    if (len == 0 || len > 19 || !all_digits(p, len)) return -1;
    uint64_t mag = 0;
    for (size_t i = 0; i < len; i++) {
        mag = mag * 10 + (uint64_t)(p[i] - '0'); /* 19 digits fit in uint64 */
    }
    if (mag > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) return -1;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

int wx_config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    assert(text != NULL && out != NULL);
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* RFC 1123 host name: dot-separated labels of 1-63 letters, digits, '-' (not at the ends);
 * the last label is not all digits (that would be a malformed IPv4 address). */
static bool valid_hostname(const char *h, size_t len)
{
    if (len == 0 || len > 253) return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && h[i] != '.') {
            char c = h[i];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-';
            if (!ok) return false;
            continue;
        }
        size_t label = i - start;
        if (label == 0 || label > 63 || h[start] == '-' || h[i - 1] == '-') return false;
        if (i == len && all_digits(h + start, label)) return false;
        start = i + 1;
    }
    return true;
}

/* Checks the host part of a listen address; ipv6 says it was written in brackets. */
static int check_host(const char *host, size_t len, bool ipv6, char *why, size_t whylen)
{
    char buf[256];
    unsigned char addr[16];
    if (len == 0) {
        errf(why, whylen, "host is empty (use 0.0.0.0 or [::] for all interfaces)");
        return -1;
    }
    if (len >= sizeof buf) {
        errf(why, whylen, "host name is longer than 253 characters");
        return -1;
    }
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (ipv6) {
        if (inet_pton(AF_INET6, buf, addr) == 1) return 0;
        errf(why, whylen, "not an IPv6 address inside [ ]");
        return -1;
    }
    if (memchr(buf, ':', len) != NULL) {
        errf(why, whylen, "an IPv6 address must be in brackets, e.g. [::1]:8080");
        return -1;
    }
    if (inet_pton(AF_INET, buf, addr) == 1 || valid_hostname(buf, len)) return 0;
    errf(why, whylen, "host is neither an IP address nor a valid host name");
    return -1;
}

static int check_listen(const char *v, char *why, size_t whylen)
{
    const char *host = v, *port;
    size_t hostlen;
    bool ipv6 = v[0] == '[';
    if (ipv6) {
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':') {
            errf(why, whylen, "must be HOST:PORT or [IPv6]:PORT");
            return -1;
        }
        host = v + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (colon == NULL) {
            errf(why, whylen, "must be HOST:PORT or [IPv6]:PORT");
            return -1;
        }
        hostlen = (size_t)(colon - v);
        port = colon + 1;
    }
    if (check_host(host, hostlen, ipv6, why, whylen) != 0) return -1;
    size_t plen = strlen(port);
    int64_t p = 0;
    if (plen == 0 || plen > 5 || !all_digits(port, plen) || parse_int(port, &p) != 0 || p < 0 ||
        p > 65535) {
        errf(why, whylen, "port must be a number from 0 (any free port) to 65535");
        return -1;
    }
    return 0;
}

/* A listener that may be left out: empty, or what check_listen accepts. */
static int check_listen_or_empty(const char *v, char *why, size_t whylen)
{
    return v[0] == '\0' ? 0 : check_listen(v, why, whylen);
}

static int check_db_url(const char *v, char *why, size_t whylen)
{
    if (strncmp(v, "sqlite:", 7) == 0 && v[7] != '\0') return 0;
    if (strncmp(v, "postgres://", 11) == 0 || strncmp(v, "postgresql://", 13) == 0) return 0;
    errf(why, whylen, "must be sqlite:PATH or postgres://... / postgresql://...");
    return -1;
}

/*
 * Reads a secret file: at most WX_CONFIG_SECRET_MAX bytes after one trailing "\n" or "\r\n"
 * is stripped, no NUL bytes. Returns a new string, or NULL with the reason in why.
 */
static char *read_secret_file(const char *path, char *why, size_t whylen)
{
    /* O_NONBLOCK and the regular-file rule: a FIFO or a device must not hang the start-up. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        errf(why, whylen, "cannot open secret file %.200s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        errf(why, whylen, "secret file %.200s is not a regular file", path);
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) WX_FATAL("fdopen: out of memory");
    size_t cap = WX_CONFIG_SECRET_MAX + 3; /* the limit, "\r\n", and one byte to see excess */
    char *buf = wx_malloc(cap);
    size_t n = fread(buf, 1, cap, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r') n--;
    }
    if (failed) {
        errf(why, whylen, "cannot read secret file %.200s", path);
    } else if (n > WX_CONFIG_SECRET_MAX) {
        errf(why, whylen, "secret file %.200s is longer than WX_CONFIG_SECRET_MAX (%d bytes)", path,
             WX_CONFIG_SECRET_MAX);
        failed = true;
    } else if (memchr(buf, '\0', n) != NULL) {
        errf(why, whylen, "secret file %.200s contains a NUL byte", path);
        failed = true;
    }
    if (failed) {
        wx_wipe(buf, cap);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Resolves a SECRET value: "@path" reads the file, anything else is the secret itself. */
static char *resolve_secret(const char *text, char *why, size_t whylen)
{
    if (text[0] != '@') {
        if (strlen(text) <= WX_CONFIG_SECRET_MAX) return wx_strndup(text, WX_CONFIG_SECRET_MAX);
        errf(why, whylen, "longer than WX_CONFIG_SECRET_MAX (%d bytes)", WX_CONFIG_SECRET_MAX);
        return NULL;
    }
    if (text[1] == '\0') {
        errf(why, whylen, "@ must be followed by a file path");
        return NULL;
    }
    return read_secret_file(text + 1, why, whylen);
}

/* ---- parsing a value by type --------------------------------------------------------- */

static int parse_enum(const struct cfg_key *k, const char *text, char *why, size_t whylen)
{
    char list[256];
    size_t n = 0;
    for (const char *const *c = k->choices; *c != NULL; c++) {
        if (strcmp(text, *c) == 0) return 0;
        int w = snprintf(list + n, sizeof list - n, "%s%s", n > 0 ? ", " : "", *c);
        if (w > 0 && (size_t)w < sizeof list - n) n += (size_t)w;
    }
    errf(why, whylen, "must be one of %s", list);
    return -1;
}

static int parse_typed(const struct cfg_key *k, const char *text, struct cfg_value *out, char *why,
                       size_t whylen)
{
    bool b = false;
    switch (k->type) {
    case CFG_INT:
        if (parse_int(text, &out->num) != 0) {
            errf(why, whylen, "must be an integer");
            return -1;
        }
        if (out->num < k->min || out->num > k->max) {
            errf(why, whylen, "must be between %lld and %lld", (long long)k->min,
                 (long long)k->max);
            return -1;
        }
        return 0;
    case CFG_BOOL:
        if (wx_config_parse_bool(text, &b) != 0) {
            errf(why, whylen, "must be true/false, yes/no, on/off or 1/0");
            return -1;
        }
        out->num = b;
        return 0;
    case CFG_LISTEN:
        return check_listen(text, why, whylen);
    case CFG_DB_URL:
        return check_db_url(text, why, whylen);
    case CFG_ENUM:
        return parse_enum(k, text, why, whylen);
    case CFG_SECRET:
        out->secret = resolve_secret(text, why, whylen);
        if (out->secret == NULL) return -1;
        return k->check != NULL ? k->check(out->secret, why, whylen) : 0;
    case CFG_STRING:
        return k->check != NULL ? k->check(text, why, whylen) : 0;
    }
    assert(!"unknown config type");
    return -1;
}

int wx_cfg_value_parse(size_t idx, const char *text, struct cfg_value *out, char *why,
                       size_t whylen)
{
    assert(idx < wx_cfg_key_count);
    assert(text != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if (parse_typed(&wx_cfg_schema[idx], text, out, why, whylen) != 0) {
        wx_cfg_value_clear(out);
        return -1;
    }
    out->text = wx_strndup(text, strlen(text));
    return 0;
}

void wx_cfg_value_clear(struct cfg_value *v)
{
    assert(v != NULL);
    if (v->text != NULL) {
        wx_wipe(v->text, strlen(v->text));
        free(v->text);
    }
    if (v->secret != NULL) {
        wx_wipe(v->secret, strlen(v->secret));
        free(v->secret);
    }
    memset(v, 0, sizeof *v);
}

bool wx_cfg_value_is_secret(size_t idx, const char *text)
{
    assert(idx < wx_cfg_key_count);
    return wx_cfg_schema[idx].type == CFG_SECRET && text[0] != '@';
}

/* The range or choices of a key, appended to its description in the schema listing. */
static void describe_values(const struct cfg_key *k, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    if (k->type == CFG_INT) {
        snprintf(out, cap, " [%lld..%lld]", (long long)k->min, (long long)k->max);
    } else if (k->type == CFG_ENUM) {
        for (const char *const *c = k->choices; *c != NULL && n < cap; c++) {
            int w = snprintf(out + n, cap - n, "%s%s", n == 0 ? " [" : "|", *c);
            if (w > 0) n += (size_t)w;
        }
        if (n + 1 < cap) memcpy(out + n, "]", 2);
    }
}

void wx_config_print_schema(FILE *out)
{
    assert(out != NULL);
    fprintf(out, "%-30s %-26s %s\n", "KEY", "DEFAULT", "DESCRIPTION");
    for (size_t i = 0; i < wx_cfg_key_count; i++) {
        const struct cfg_key *k = &wx_cfg_schema[i];
        char values[128];
        describe_values(k, values, sizeof values);
        fprintf(out, "%-30s %-26s %s%s\n", k->name, k->def[0] != '\0' ? k->def : "\"\"", k->desc,
                values);
    }
    fprintf(out, "\nEvery key can be set by the environment: WXBANK_SECTION_KEY, e.g. "
                 "WXBANK_ENGINE_HOLD_DAYS.\nSecret values may be given as @/path/to/file.\n");
}
