/*
 * test_config.c - the config loader: defaults, file syntax, environment overrides, every value
 * type at its edges, the named limits just under and just over, secrets from files, and the
 * wording of errors (they must name the key, where it came from, and why).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/config.h"
#include "util/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[1024];

/* Writes len bytes to a new temporary file; returns its path (static buffer per slot). */
static const char *temp_file(int slot, const void *data, size_t len)
{
    static char paths[4][64];
    snprintf(paths[slot], sizeof paths[slot], "/tmp/wx_test_config_%d_%d", (int)getpid(), slot);
    FILE *f = fopen(paths[slot], "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return paths[slot];
}

static wx_config_t *load_text(const char *text)
{
    err[0] = '\0';
    return wx_config_load_buffer(text, strlen(text), "wxbank.conf", err, sizeof err);
}

/* Asserts that text fails to load and that the error contains `want`. */
static void expect_error(const char *text, const char *want)
{
    wx_config_t *cfg = load_text(text);
    if (cfg != NULL) {
        wx_config_free(cfg);
        fail_msg("loaded, but expected an error containing '%s':\n%s", want, text);
    }
    if (strstr(err, want) == NULL) fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_defaults(void **state)
{
    (void)state;
    wx_config_t *cfg = wx_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(wx_config_str(cfg, "db.url"), "sqlite:wxbank.db");
    assert_string_equal(wx_config_sqlite_path(cfg), "wxbank.db");
    assert_string_equal(wx_config_str(cfg, "http.listen"), "127.0.0.1:8080");
    assert_string_equal(wx_config_str(cfg, "https.listen"), ""); /* no HTTPS until set */
    assert_string_equal(wx_config_str(cfg, "iso8583.listen"), "127.0.0.1:8583");
    assert_string_equal(wx_config_str(cfg, "iso8583.dialect"), "ascii87");
    assert_string_equal(wx_config_str(cfg, "wechat.api_base"), "https://api.weixin.qq.com");
    assert_string_equal(wx_config_str(cfg, "wechat.secret"), "");
    assert_string_equal(wx_config_str(cfg, "crypto.pan_key"), "");
    assert_string_equal(wx_config_str(cfg, "tz"), "Asia/Shanghai");
    assert_string_equal(wx_config_str(cfg, "log.level"), "info");
    assert_string_equal(wx_config_str(cfg, "card.bin"), "622588");
    assert_int_equal(wx_config_int(cfg, "card.pan_length"), 16);
    assert_int_equal(wx_config_int(cfg, "card.validity_years"), 5);
    assert_int_equal(wx_config_int(cfg, "engine.hold_days"), 7);
    assert_int_equal(wx_config_int(cfg, "engine.hold_days_long"), 30);
    assert_int_equal(wx_config_int(cfg, "engine.capture_tolerance_pct"), 20);
    assert_int_equal(wx_config_int(cfg, "engine.idempotency_hours"), 72);
    assert_int_equal(wx_config_int(cfg, "engine.reference_days"), 45);
    assert_int_equal(wx_config_int(cfg, "journal.batch_max"), 8192);
    assert_int_equal(wx_config_int(cfg, "journal.commit_gap_us"), 500);
    assert_int_equal(wx_config_int(cfg, "journal.snapshot_every"), 1000000);
    wx_config_free(cfg);
}

static void test_file_syntax(void **state)
{
    (void)state;
    const char *text = "# a comment\n"
                       "; another comment\n"
                       "\n"
                       "tz = UTC\n"
                       "  [db]  \r\n"
                       "url=postgres://u@h/db\r\n"
                       "[ engine ]\n"
                       "\thold_days\t=  9  \n"
                       "[wechat]\n"
                       "appid = \"  wx123 # not a comment  \"\n"
                       "[iso8583]\n"
                       "dialect = bcd87";
    wx_config_t *cfg = load_text(text);
    if (cfg == NULL) fail_msg("%s", err);
    assert_string_equal(wx_config_str(cfg, "tz"), "UTC");
    assert_string_equal(wx_config_str(cfg, "db.url"), "postgres://u@h/db");
    assert_null(wx_config_sqlite_path(cfg));
    assert_int_equal(wx_config_int(cfg, "engine.hold_days"), 9);
    assert_string_equal(wx_config_str(cfg, "wechat.appid"), "  wx123 # not a comment  ");
    assert_string_equal(wx_config_str(cfg, "iso8583.dialect"), "bcd87");
    wx_config_free(cfg);

    /* A full key may also be written before any section. */
    cfg = load_text("engine.hold_days = 3\n");
    assert_non_null(cfg);
    assert_int_equal(wx_config_int(cfg, "engine.hold_days"), 3);
    wx_config_free(cfg);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("[engine]\nhold_days 7\n", "wxbank.conf:2: expected key = value");
    expect_error("[wechat]\nsecret hunter2\n", "wxbank.conf:2: expected key = value");
    assert_null(strstr(err, "hunter2")); /* a mistyped secret line is not echoed */
    expect_error("[engine\n", "wxbank.conf:1: expected [section]");
    expect_error("[Engine]\n", "bad section name");
    expect_error("[]\n", "bad section name");
    expect_error(" = 7\n", "missing key");
    expect_error("[wechat]\nappid = \"abc\n", "wxbank.conf:2: unbalanced double quote");
    expect_error("[wechat]\nappid = \"a\"b\"\n", "unbalanced double quote");
    expect_error("[engine]\nhold_days = 7\nhold_days = 8\n",
                 "wxbank.conf:3: key set twice (first on line 2): engine.hold_days");
    expect_error("[engine]\nhold_dayz = 7\n", "wxbank.conf:2: unknown key engine.hold_dayz");
    expect_error("bogus = 1\n", "unknown key bogus");
    expect_error("[x]\nk = 1\0\n", "unknown key x.k"); /* strlen stops at the NUL */
    const char nul[] = "# a\0b\n";
    assert_null(wx_config_load_buffer(nul, sizeof nul - 1, "wxbank.conf", err, sizeof err));
    assert_non_null(strstr(err, "wxbank.conf:1: NUL byte"));
}

static void test_error_wording(void **state)
{
    (void)state;
    /* The exact form promised to operators: file:line, key = value, and the reason. */
    const char *text = "\n\n\n\n\n\n\n\n\n\n\n[engine]\nhold_days = 0\n";
    assert_null(load_text(text));
    assert_string_equal(err, "config: wxbank.conf:13: engine.hold_days = 0: must be between 1 "
                             "and 30");
}

static void test_int_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int64_t min, max;
    } keys[] = {
        {"card.pan_length", 13, 19},           {"card.validity_years", 1, 10},
        {"engine.hold_days", 1, 30},           {"engine.capture_tolerance_pct", 0, 100},
        {"engine.idempotency_hours", 1, 8760}, {"journal.batch_max", 1, WX_BATCH_ROWS_MAX},
        {"journal.commit_gap_us", 0, 100000},  {"journal.snapshot_every", 0, 1000000000},
    };
    wx_config_t *cfg = wx_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)keys[i].min - 1);
        assert_int_equal(wx_config_set(cfg, keys[i].key, v, err, sizeof err), -1);
        assert_non_null(strstr(err, "must be between"));
        assert_non_null(strstr(err, keys[i].key));
        snprintf(v, sizeof v, "%lld", (long long)keys[i].max + 1);
        assert_int_equal(wx_config_set(cfg, keys[i].key, v, err, sizeof err), -1);
        snprintf(v, sizeof v, "%lld", (long long)keys[i].min);
        assert_int_equal(wx_config_set(cfg, keys[i].key, v, err, sizeof err), 0);
        assert_int_equal(wx_config_int(cfg, keys[i].key), keys[i].min);
        snprintf(v, sizeof v, "%lld", (long long)keys[i].max);
        assert_int_equal(wx_config_set(cfg, keys[i].key, v, err, sizeof err), 0);
        assert_int_equal(wx_config_int(cfg, keys[i].key), keys[i].max);
    }
    static const char *const not_ints[] = {"",    "7x",   " 7",  "+7",
                                           "1e3", "0x10", "--1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof not_ints / sizeof not_ints[0]; i++) {
        assert_int_equal(wx_config_set(cfg, "engine.hold_days", not_ints[i], err, sizeof err), -1);
        assert_non_null(strstr(err, "must be an integer"));
    }
    assert_int_equal(wx_config_int(cfg, "engine.hold_days"), 30); /* unchanged by failures */
    wx_config_free(cfg);
}

static void test_cross_key_check(void **state)
{
    (void)state;
    expect_error("[engine]\nreference_days = 30\nhold_days_long = 30\n",
                 "engine.reference_days = 30 must exceed engine.hold_days_long = 30");
    wx_config_t *cfg = load_text("[engine]\nreference_days = 31\nhold_days_long = 30\n");
    assert_non_null(cfg);
    /* set() keeps the config valid: a value that breaks the rule is refused and rolled back. */
    assert_int_equal(wx_config_set(cfg, "engine.hold_days_long", "31", err, sizeof err), -1);
    assert_non_null(strstr(err, "must exceed"));
    assert_int_equal(wx_config_int(cfg, "engine.hold_days_long"), 30);
    assert_int_equal(wx_config_set(cfg, "engine.reference_days", "400", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "engine.hold_days_long", "60", err, sizeof err), 0);
    /* Idempotency hours are independent of the reference window. */
    assert_int_equal(wx_config_set(cfg, "engine.idempotency_hours", "8760", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "no.such_key", "1", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown key no.such_key"));
    wx_config_free(cfg);
}

static void test_env_overrides_file(void **state)
{
    (void)state;
    const char *text = "[engine]\nhold_days = 5\n";
    const char *path = temp_file(0, text, strlen(text));
    setenv("WXBANK_ENGINE_HOLD_DAYS", "9", 1);
    setenv("WXBANK_TZ", "Asia/Tokyo", 1);
    wx_config_t *cfg = wx_config_load(path, err, sizeof err);
    if (cfg == NULL) fail_msg("%s", err);
    assert_int_equal(wx_config_int(cfg, "engine.hold_days"), 9);
    assert_string_equal(wx_config_str(cfg, "tz"), "Asia/Tokyo");
    wx_config_free(cfg);

    /* A bad environment value is an error that names the variable. */
    setenv("WXBANK_ENGINE_HOLD_DAYS", "0", 1);
    cfg = wx_config_load(path, err, sizeof err);
    assert_null(cfg);
    assert_string_equal(err, "config: WXBANK_ENGINE_HOLD_DAYS: engine.hold_days = 0: must be "
                             "between 1 and 30");
    unsetenv("WXBANK_ENGINE_HOLD_DAYS");
    unsetenv("WXBANK_TZ");
    cfg = wx_config_load(path, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(wx_config_int(cfg, "engine.hold_days"), 5);
    wx_config_free(cfg);
    unlink(path);
}

static void test_missing_file(void **state)
{
    (void)state;
    assert_null(wx_config_load("/nonexistent/wxbank.conf", err, sizeof err));
    assert_non_null(strstr(err, "config: /nonexistent/wxbank.conf: cannot open"));
    assert_null(wx_config_load("/tmp", err, sizeof err)); /* a directory cannot be read */
    assert_non_null(strstr(err, "config: /tmp: cannot"));
}

static void test_line_limit(void **state)
{
    (void)state;
    /* A comment line of exactly WX_CONFIG_LINE_MAX bytes is fine; one byte more is not. */
    size_t len = WX_CONFIG_LINE_MAX + 3;
    char *text = calloc(1, len + 1);
    assert_non_null(text);
    memset(text, 'x', WX_CONFIG_LINE_MAX);
    text[0] = '#';
    text[WX_CONFIG_LINE_MAX] = '\n';
    wx_config_t *cfg = load_text(text);
    assert_non_null(cfg);
    wx_config_free(cfg);
    text[WX_CONFIG_LINE_MAX] = 'x';
    text[WX_CONFIG_LINE_MAX + 1] = '\n';
    expect_error(text, "wxbank.conf:1: line longer than WX_CONFIG_LINE_MAX (4096 bytes)");
    free(text);
}

static void test_file_limit(void **state)
{
    (void)state;
    size_t len = WX_CONFIG_FILE_MAX + 1;
    char *text = malloc(len);
    assert_non_null(text);
    for (size_t i = 0; i < len; i += 64) {
        size_t n = len - i < 64 ? len - i : 64;
        memset(text + i, '#', n);
        text[i + n - 1] = '\n';
    }
    /* WX_CONFIG_FILE_MAX bytes of comments load, from a buffer and from a file. */
    wx_config_t *cfg = wx_config_load_buffer(text, WX_CONFIG_FILE_MAX, "big", err, sizeof err);
    if (cfg == NULL) fail_msg("%s", err);
    wx_config_free(cfg);
    const char *path = temp_file(1, text, WX_CONFIG_FILE_MAX);
    cfg = wx_config_load(path, err, sizeof err);
    assert_non_null(cfg);
    wx_config_free(cfg);
    /* One byte more is refused, naming the limit. */
    assert_null(wx_config_load_buffer(text, len, "big", err, sizeof err));
    assert_non_null(strstr(err, "WX_CONFIG_FILE_MAX"));
    path = temp_file(1, text, len);
    assert_null(wx_config_load(path, err, sizeof err));
    assert_non_null(strstr(err, "larger than WX_CONFIG_FILE_MAX"));
    unlink(path);
    free(text);
}

static void test_secret_files(void **state)
{
    (void)state;
    char text[256];
    const char *secret = temp_file(2, "s3cret-token\n", 13);
    snprintf(text, sizeof text, "[wechat]\ntoken = @%s\nsecret = inline-secret\n", secret);
    wx_config_t *cfg = load_text(text);
    if (cfg == NULL) fail_msg("%s", err);
    assert_string_equal(wx_config_str(cfg, "wechat.token"), "s3cret-token"); /* \n stripped */
    assert_string_equal(wx_config_str(cfg, "wechat.secret"), "inline-secret");
    wx_config_free(cfg);

    /* A missing file is an error naming the key and the path. */
    expect_error("[wechat]\ntoken = @/nonexistent/token\n",
                 "wxbank.conf:2: wechat.token = @/nonexistent/token: cannot open secret file "
                 "/nonexistent/token");
    expect_error("[wechat]\ntoken = @\n", "@ must be followed by a file path");
    expect_error("[wechat]\ntoken = @/tmp\n", "secret file /tmp is not a regular file");

    /* WX_CONFIG_SECRET_MAX bytes (plus a newline) are fine; one more byte is not. */
    char *big = malloc(WX_CONFIG_SECRET_MAX + 2);
    assert_non_null(big);
    memset(big, 'k', WX_CONFIG_SECRET_MAX + 1);
    big[WX_CONFIG_SECRET_MAX] = '\n';
    secret = temp_file(2, big, WX_CONFIG_SECRET_MAX + 1);
    cfg = load_text(text);
    if (cfg == NULL) fail_msg("%s", err);
    assert_int_equal(strlen(wx_config_str(cfg, "wechat.token")), WX_CONFIG_SECRET_MAX);
    wx_config_free(cfg);
    big[WX_CONFIG_SECRET_MAX] = 'k';
    secret = temp_file(2, big, WX_CONFIG_SECRET_MAX + 1);
    expect_error(text, "longer than WX_CONFIG_SECRET_MAX (4096 bytes)");
    free(big);
    unlink(secret);
}

static void test_secrets_not_echoed(void **state)
{
    (void)state;
    expect_error("[wechat]\naes_key = hunter2\n", "wechat.aes_key = (secret): must be 43");
    assert_null(strstr(err, "hunter2"));
    wx_config_t *cfg =
        load_text("[wechat]\naes_key = abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\n");
    if (cfg == NULL) fail_msg("%s", err);
    wx_config_free(cfg);
    char key[80];
    memset(key, 'a', 64);
    snprintf(key + 64, sizeof key - 64, "\n");
    cfg = wx_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(wx_config_set(cfg, "crypto.pan_key", "abcd", err, sizeof err), -1);
    assert_non_null(strstr(err, "crypto.pan_key = (secret): must be 64 hex"));
    key[64] = '\0';
    assert_int_equal(wx_config_set(cfg, "crypto.pan_key", key, err, sizeof err), 0);
    assert_string_equal(wx_config_str(cfg, "crypto.pan_key"), key);
    wx_config_free(cfg);
}

static void test_listen_values(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1:8080",       "0.0.0.0:1", "127.0.0.1:0",
                                       "[::1]:65535",          "[::]:80",   "localhost:443",
                                       "api.example-1.cn:8583"};
    static const struct {
        const char *value, *why;
    } bad[] = {
        {"127.0.0.1", "must be HOST:PORT"},  {"::1:8080", "must be in brackets"},
        {"[::1]8080", "must be HOST:PORT"},  {"[1.2.3.4]:80", "not an IPv6 address"},
        {":8080", "host is empty"},          {"127.0.0.1:-1", "port must be"},
        {"127.0.0.1:65536", "port must be"}, {"127.0.0.1:", "port must be"},
        {"127.0.0.1:80a", "port must be"},   {"1.2.3.999:80", "neither an IP address"},
        {"bad_host:80", "neither an IP"},    {"-bad.com:80", "neither an IP"},
    };
    wx_config_t *cfg = wx_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (wx_config_set(cfg, "http.listen", good[i], err, sizeof err) != 0) fail_msg("%s", err);
        assert_string_equal(wx_config_str(cfg, "http.listen"), good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(wx_config_set(cfg, "iso8583.listen", bad[i].value, err, sizeof err), -1);
        if (strstr(err, bad[i].why) == NULL) fail_msg("%s: %s", bad[i].value, err);
        assert_non_null(strstr(err, "iso8583.listen"));
    }
    /* Host name limits: a label of 63 characters and a name of 253 pass; 64 and 254 do not. */
    char host[300];
    memset(host, 'a', 63);
    snprintf(host + 63, sizeof host - 63, ".cn:80");
    assert_int_equal(wx_config_set(cfg, "http.listen", host, err, sizeof err), 0);
    memset(host, 'a', 64);
    snprintf(host + 64, sizeof host - 64, ".cn:80");
    assert_int_equal(wx_config_set(cfg, "http.listen", host, err, sizeof err), -1);
    for (size_t len = 253; len <= 254; len++) {
        memset(host, 'a', len);
        for (size_t i = 50; i < len; i += 51) {
            host[i] = '.'; /* labels of 50 characters */
        }
        snprintf(host + len, sizeof host - len, ":80");
        int want = len == 253 ? 0 : -1;
        assert_int_equal(wx_config_set(cfg, "http.listen", host, err, sizeof err), want);
    }
    wx_config_free(cfg);
}

static void test_other_types(void **state)
{
    (void)state;
    wx_config_t *cfg = wx_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(wx_config_set(cfg, "db.url", "sqlite:/var/lib/wx.db", err, sizeof err), 0);
    assert_string_equal(wx_config_sqlite_path(cfg), "/var/lib/wx.db");
    assert_int_equal(wx_config_set(cfg, "db.url", "postgresql://h/db", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "db.url", "sqlite:", err, sizeof err), -1);
    assert_int_equal(wx_config_set(cfg, "db.url", "mysql://h/db", err, sizeof err), -1);
    assert_non_null(strstr(err, "config: db.url = mysql://h/db: must be sqlite:PATH"));

    assert_int_equal(wx_config_set(cfg, "iso8583.dialect", "ascii87b", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "iso8583.dialect", "bcd88", err, sizeof err), -1);
    assert_non_null(strstr(err, "must be one of ascii87, ascii87b, bcd87"));
    assert_int_equal(wx_config_set(cfg, "log.level", "debug", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "log.level", "verbose", err, sizeof err), -1);

    assert_int_equal(wx_config_set(cfg, "card.bin", "62258", err, sizeof err), -1);
    assert_int_equal(wx_config_set(cfg, "card.bin", "622588", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "card.bin", "62258812", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "card.bin", "622588123", err, sizeof err), -1);
    assert_int_equal(wx_config_set(cfg, "card.bin", "62258a", err, sizeof err), -1);

    assert_int_equal(wx_config_set(cfg, "tz", "+05:30", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "tz", "Mars/Olympus", err, sizeof err), -1);
    assert_int_equal(wx_config_set(cfg, "sms.url", "", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "sms.url", "http://sms/send", err, sizeof err), 0);
    assert_int_equal(wx_config_set(cfg, "sms.url", "ftp://x", err, sizeof err), -1);
    assert_int_equal(wx_config_set(cfg, "wechat.api_base", "", err, sizeof err), -1);
    wx_config_free(cfg);

    bool b = false;
    assert_int_equal(wx_config_parse_bool("Yes", &b), 0);
    assert_true(b);
    assert_int_equal(wx_config_parse_bool("off", &b), 0);
    assert_false(b);
    assert_int_equal(wx_config_parse_bool("1", &b), 0);
    assert_true(b);
    assert_int_equal(wx_config_parse_bool("2", &b), -1);
    assert_int_equal(wx_config_parse_bool("", &b), -1);
}

static void test_print_schema(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    wx_config_print_schema(f);
    fclose(f);
    assert_non_null(strstr(text, "engine.hold_days "));
    assert_non_null(strstr(text, "[1..30]"));
    assert_non_null(strstr(text, "sqlite:wxbank.db"));
    assert_non_null(strstr(text, "[ascii87|ascii87b|bcd87]"));
    assert_non_null(strstr(text, "WXBANK_ENGINE_HOLD_DAYS"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),           cmocka_unit_test(test_file_syntax),
        cmocka_unit_test(test_syntax_errors),      cmocka_unit_test(test_error_wording),
        cmocka_unit_test(test_int_bounds),         cmocka_unit_test(test_cross_key_check),
        cmocka_unit_test(test_env_overrides_file), cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_line_limit),         cmocka_unit_test(test_file_limit),
        cmocka_unit_test(test_secret_files),       cmocka_unit_test(test_secrets_not_echoed),
        cmocka_unit_test(test_listen_values),      cmocka_unit_test(test_other_types),
        cmocka_unit_test(test_print_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
