/*
 * test_http_parse.c - the strict HTTP/1.1 request head parser (src/net/http_parse.c).
 *
 * Every input is copied into a heap buffer of exactly its length before it is parsed, so a
 * sanitizer build catches any read past the bytes the client actually sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_parse.h"
#include "net/net.h"

#define HEAD_MAX   16384u /* the listener's WX_HTTP_HEADERS_MAX */
#define BODY_MAX   65536u
#define TARGET_MAX 8192u /* the parser's limit on a request target, before 414 */

static char *buf; /* the last parsed input, kept so the head's pointers stay valid */
static struct wx_http_head head;

/* Parses s[0, n) from a fresh heap copy of exactly n bytes; head and buf hold the result. */
static int parse_limits(const char *s, size_t n, size_t head_max, size_t body_max)
{
    free(buf);
    buf = malloc(n > 0 ? n : 1);
    assert_non_null(buf);
    if (n > 0) memcpy(buf, s, n);
    return wx_http_parse_head(buf, n, head_max, body_max, &head);
}

static int parse_n(const char *s, size_t n)
{
    return parse_limits(s, n, HEAD_MAX, BODY_MAX);
}

static int parse(const char *s)
{
    return parse_n(s, strlen(s));
}

/* Prints s with controls and 8-bit bytes escaped, for failure messages. */
static const char *escaped(const char *s, size_t n)
{
    static char out[512];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < sizeof out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            o += (size_t)snprintf(out + o, sizeof out - o, "\\r");
        } else if (c == '\n') {
            o += (size_t)snprintf(out + o, sizeof out - o, "\\n");
        } else if (c < 0x20 || c >= 0x7f || c == '\\') {
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

/* Fails with the input, the status wanted and the status got. */
static void check_status(const char *s, size_t n, int want, const char *file, int line)
{
    int got = parse_n(s, n);
    if (got != want) {
        print_error("%s:%d: \"%s\": got %d, want %d\n", file, line, escaped(s, n), got, want);
        _fail(file, line);
    }
}

/* CHECK takes a string literal (it may hold NULs); CHECK_STR any NUL-terminated string. */
#define CHECK(lit, want)   check_status((lit), sizeof(lit) - 1, (want), __FILE__, __LINE__)
#define CHECK_STR(s, want) check_status((s), strlen(s), (want), __FILE__, __LINE__)

static int teardown_group(void **state)
{
    (void)state;
    free(buf);
    buf = NULL;
    return 0;
}

/* ---- well-formed requests ----------------------------------------------------------------- */

static void test_get_simple(void **state)
{
    (void)state;
    const char req[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    assert_int_equal(parse(req), 1);
    assert_int_equal(head.method, WX_HTTP_GET);
    assert_string_equal(head.path, "/");
    assert_null(head.query);
    assert_int_equal(head.minor, 1);
    assert_int_equal(head.nfields, 1);
    assert_string_equal(head.fields[0].name, "Host");
    assert_string_equal(head.fields[0].value, "example.com");
    assert_int_equal(head.head_len, sizeof req - 1);
    assert_int_equal(head.content_length, 0);
    assert_true(head.keep_alive);
    assert_false(head.expect_continue);
}

/* The query is split off at the first '?', which may leave it empty. */
static void test_get_query(void **state)
{
    (void)state;
    assert_int_equal(parse("GET /wechat?signature=abc&nonce=1 HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_int_equal(head.method, WX_HTTP_GET);
    assert_string_equal(head.path, "/wechat");
    assert_string_equal(head.query, "signature=abc&nonce=1");

    assert_int_equal(parse("GET /p? HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_string_equal(head.path, "/p");
    assert_non_null(head.query);
    assert_string_equal(head.query, "");

    assert_int_equal(parse("GET /a?b?c=/d HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_string_equal(head.path, "/a");
    assert_string_equal(head.query, "b?c=/d");
}

static void test_post_with_length(void **state)
{
    (void)state;
    const char req[] = "POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(parse(req), 1);
    assert_int_equal(head.method, WX_HTTP_POST);
    assert_string_equal(head.path, "/api/x");
    assert_int_equal(head.content_length, 5);
    assert_int_equal(head.head_len, sizeof req - 1 - 5);
    assert_memory_equal(buf + head.head_len, "hello", 5);
    assert_string_equal(wx_http_head_field(&head, "Content-Length"), "5");
}

static void test_head_method(void **state)
{
    (void)state;
    assert_int_equal(parse("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_int_equal(head.method, WX_HTTP_HEAD);
    assert_string_equal(head.path, "/metrics");
    assert_int_equal(head.content_length, 0);
}

/* 1.0 closes unless asked to keep alive; 1.1 keeps alive unless asked to close; the
 * Connection field is a case-insensitive token list, matched by whole tokens. */
static void test_keep_alive(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        bool keep;
    } cases[] = {
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo ,\t close \t, bar\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: ,,close,,\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: xclose, clos\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection:\r\n\r\n", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_STR(cases[i].req, 1);
        if (head.keep_alive != cases[i].keep) {
            fail_msg("\"%s\": keep_alive %d, want %d", escaped(cases[i].req, strlen(cases[i].req)),
                     head.keep_alive, cases[i].keep);
        }
    }
}

/* Every proper prefix of a head is "need more" and leaves the bytes alone; from the blank
 * line on, the head is complete whether or not the body has arrived. */
static void test_every_prefix(void **state)
{
    (void)state;
    const char req[] = "POST /wechat?signature=s&timestamp=1&nonce=2 HTTP/1.1\r\n"
                       "Host: bank.example\r\n"
                       "Content-Type: text/xml\r\n"
                       "Content-Length: 10\r\n"
                       "Connection: keep-alive\r\n"
                       "\r\n"
                       "<xml></xml";
    size_t total = sizeof req - 1, head_len = total - 10;
    for (size_t n = 0; n < head_len; n++) {
        int rc = parse_n(req, n);
        if (rc != 0) fail_msg("prefix of %zu bytes: got %d, want 0", n, rc);
        if (n > 0) assert_memory_equal(buf, req, n);
    }
    for (size_t n = head_len; n <= total; n++) {
        int rc = parse_n(req, n);
        if (rc != 1) fail_msg("prefix of %zu bytes: got %d, want 1", n, rc);
        assert_int_equal(head.head_len, head_len);
        assert_int_equal(head.content_length, 10);
    }
}

/* ---- limits ------------------------------------------------------------------------------- */

/* Writes "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: aaa...\r\n\r\n" of exactly len bytes. */
static void padded_head(char *out, size_t len)
{
    const char *start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    size_t sl = strlen(start);
    assert_true(len > sl + 4);
    memcpy(out, start, sl);
    memset(out + sl, 'a', len - sl - 4);
    memcpy(out + len - 4, "\r\n\r\n", 4);
}

/* A head of exactly head_max bytes is taken; one byte more is 431, complete or not. */
static void test_head_max(void **state)
{
    (void)state;
    enum { MAX = 256 };
    char req[MAX + 1 + 5];

    padded_head(req, MAX);
    memcpy(req + MAX, "hello", 5); /* bytes after the head do not count against it */
    assert_int_equal(parse_limits(req, MAX, MAX, BODY_MAX), 1);
    assert_int_equal(head.head_len, MAX);
    assert_int_equal(parse_limits(req, MAX + 5, MAX, BODY_MAX), 1);
    assert_int_equal(head.head_len, MAX);
    assert_int_equal(parse_limits(req, MAX - 1, MAX, BODY_MAX), 0);

    padded_head(req, MAX + 1);
    assert_int_equal(parse_limits(req, MAX + 1, MAX, BODY_MAX), 431);
    assert_int_equal(parse_limits(req, MAX, MAX, BODY_MAX), 431); /* no end within head_max */
    assert_int_equal(parse_limits(req, MAX - 1, MAX, BODY_MAX), 0);
    assert_int_equal(parse_limits(req, MAX + 1, MAX + 1, BODY_MAX), 1);
}

/* Builds a 1.1 GET with Host and extra X-N fields (nfields = extra + 1). */
static size_t many_fields(char *out, size_t cap, unsigned extra)
{
    size_t n = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (unsigned i = 0; i < extra; i++) {
        n += (size_t)snprintf(out + n, cap - n, "X-%u: v%u\r\n", i, i);
        assert_true(n < cap);
    }
    n += (size_t)snprintf(out + n, cap - n, "\r\n");
    assert_true(n < cap);
    return n;
}

static void test_fields_max(void **state)
{
    (void)state;
    char req[4096];
    size_t n = many_fields(req, sizeof req, WX_HTTP_FIELDS_MAX - 1);
    assert_int_equal(parse_n(req, n), 1);
    assert_int_equal(head.nfields, WX_HTTP_FIELDS_MAX);
    assert_string_equal(head.fields[WX_HTTP_FIELDS_MAX - 1].name, "X-62");
    assert_string_equal(wx_http_head_field(&head, "x-62"), "v62");

    n = many_fields(req, sizeof req, WX_HTTP_FIELDS_MAX);
    assert_int_equal(parse_n(req, n), 431);
}

static void test_body_max(void **state)
{
    (void)state;
    char req[128];
    snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %u\r\n\r\n", BODY_MAX);
    CHECK_STR(req, 1);
    assert_int_equal(head.content_length, BODY_MAX);
    snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %u\r\n\r\n",
             BODY_MAX + 1);
    CHECK_STR(req, 413);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 413);
    assert_int_equal(
        parse_limits("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 47, HEAD_MAX, 0),
        1);
    assert_int_equal(
        parse_limits("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n", 47, HEAD_MAX, 0),
        413);
}

/* ---- framing ------------------------------------------------------------------------------ */

static void test_content_length(void **state)
{
    (void)state;
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12a\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  \t \r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", 400);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nContent-Length: 60\r\n\r\n", 400);

    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nCONTENT-LENGTH: 5\r\n\r\n", 1);
    assert_int_equal(head.content_length, 5);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 007\r\n\r\n", 1);
    assert_int_equal(head.content_length, 7);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t 42 \t\r\n\r\n", 1);
    assert_int_equal(head.content_length, 42);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 1);
    assert_int_equal(head.content_length, 0);
}

/* Any transfer coding is refused, with or beside a Content-Length. */
static void test_transfer_encoding(void **state)
{
    (void)state;
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 411);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: identity\r\n\r\n", 411);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
          411);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
          411);
    CHECK("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 411);
}

static void test_expect(void **state)
{
    (void)state;
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", 1);
    assert_true(head.expect_continue);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nexpect:  100-Continue \r\n\r\n", 1);
    assert_true(head.expect_continue);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n", 1);
    assert_false(head.expect_continue);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n", 417);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n", 417);
}

/* ---- the request line --------------------------------------------------------------------- */

/* A method we never serve is 501 (405 is left to a route refusing one of ours); a method
 * that is not a token at all is malformed. Methods are case-sensitive. */
static void test_methods(void **state)
{
    (void)state;
    CHECK("PUT / HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    CHECK("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    CHECK("OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    CHECK("PATCH / HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    CHECK("get / HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    CHECK("Post / HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    CHECK("GETS / HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    CHECK("GE / HTTP/1.1\r\nHost: a\r\n\r\n", 501);

    CHECK("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GE\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET\r\nHost: a\r\n\r\n", 400);
}

/* Origin form only: no absolute URIs, no asterisk, no authority, nothing empty. */
static void test_target_form(void **state)
{
    (void)state;
    CHECK("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET wechat HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET ?a=1 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400);
    CHECK("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /\r\nHost: a\r\n\r\n", 400);
}

/* A target of 8 KiB is taken; one byte more is 414 (the head itself fits head_max). */
static void test_target_max(void **state)
{
    (void)state;
    static char req[TARGET_MAX + 64];
    for (size_t t = TARGET_MAX - 1; t <= TARGET_MAX + 1; t++) {
        size_t n = 0;
        memcpy(req, "GET ", 4);
        n += 4;
        req[n++] = '/';
        memset(req + n, 'x', t - 1);
        n += t - 1;
        const char *rest = " HTTP/1.1\r\nHost: a\r\n\r\n";
        memcpy(req + n, rest, strlen(rest));
        n += strlen(rest);
        int rc = parse_n(req, n);
        if (rc != (t > TARGET_MAX ? 414 : 1)) fail_msg("target of %zu bytes: got %d", t, rc);
        if (rc == 1) assert_int_equal(strlen(head.path), t);
    }
    /* The whole target counts, the query too. */
    memcpy(req, "GET /?", 6);
    memset(req + 6, 'q', TARGET_MAX - 1);
    const char *rest = " HTTP/1.1\r\nHost: a\r\n\r\n";
    memcpy(req + 6 + TARGET_MAX - 1, rest, strlen(rest));
    assert_int_equal(parse_n(req, 6 + TARGET_MAX - 1 + strlen(rest)), 414);
}

static void test_target_chars(void **state)
{
    (void)state;
    CHECK("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /a?x=\x1b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET /a%20b?x=%00&y=~!$&'()*+,;=:@ HTTP/1.1\r\nHost: a\r\n\r\n", 1);
    assert_string_equal(head.path, "/a%20b");
    assert_string_equal(head.query, "x=%00&y=~!$&'()*+,;=:@");
}

static void test_versions(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.0\r\n\r\n", 1);
    assert_int_equal(head.minor, 0);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1);
    assert_int_equal(head.minor, 1);

    CHECK("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    CHECK("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505);
    CHECK("GET / HTTP/1.9\r\nHost: a\r\n\r\n", 505);
    CHECK("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505);
    CHECK("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505);

    CHECK("GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / http/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / FOO\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / \r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\0\r\nHost: a\r\n\r\n", 400);
}

/* HTTP-version is "HTTP/" DIGIT "." DIGIT (RFC 9112, 2.3); eight bytes that start with
 * "HTTP/" but are not that are a malformed request line (400), not a version (505). */
static void test_version_not_digits(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/a.b\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1_1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/\0\0\0\r\nHost: a\r\n\r\n", 400);
}

/* ---- lines -------------------------------------------------------------------------------- */

/* CRLF only: a bare LF anywhere in the head is refused, before the head is even complete. */
static void test_bare_lf(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.1\nHost: a\n\n", 400);
    CHECK("GET / HTTP/1.1\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\n\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\n", 400);
    CHECK("\n", 400);
    /* A bare LF after the blank line is body, not head. */
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n\n\n", 1);
}

static void test_cr_inside_line(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400);
    CHECK("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\r\n", 400);
}

static void test_empty_lines(void **state)
{
    (void)state;
    CHECK("\r\n\r\n", 400);
    CHECK("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

static void test_obs_fold(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);
}

static void test_field_syntax(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX\0A: b\r\n\r\n", 400);

    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n", 400);

    /* obs-text and a colon in the value are fine. */
    CHECK("GET / HTTP/1.1\r\nHost: a:8080\r\nX-A: caf\xc3\xa9\r\n\r\n", 1);
    assert_string_equal(wx_http_head_field(&head, "Host"), "a:8080");
    assert_string_equal(wx_http_head_field(&head, "X-A"), "caf\xc3\xa9");
    CHECK("GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: b\r\n\r\n", 1);
}

/* RFC 9112, 3.2: exactly one Host in 1.1, at most one in 1.0. */
static void test_host(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.1\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", 400);
    CHECK("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    CHECK("GET / HTTP/1.0\r\n\r\n", 1);
    assert_int_equal(head.nfields, 0);
    CHECK("GET / HTTP/1.0\r\nHost: a\r\n\r\n", 1);
    CHECK("GET / HTTP/1.1\r\nhost:\r\n\r\n", 1);
}

static void test_value_trim(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.1\r\n"
          "Host:a\r\n"
          "X-A: \t a \t b \t \r\n"
          "X-B:\r\n"
          "X-C: \t \r\n"
          "X-D:\tv\r\n"
          "\r\n",
          1);
    assert_int_equal(head.nfields, 5);
    assert_string_equal(head.fields[0].name, "Host");
    assert_string_equal(head.fields[0].value, "a");
    assert_string_equal(head.fields[1].name, "X-A");
    assert_string_equal(head.fields[1].value, "a \t b");
    assert_string_equal(head.fields[2].name, "X-B");
    assert_string_equal(head.fields[2].value, "");
    assert_string_equal(head.fields[3].name, "X-C");
    assert_string_equal(head.fields[3].value, "");
    assert_string_equal(head.fields[4].name, "X-D");
    assert_string_equal(head.fields[4].value, "v");
}

static void test_field_lookup(void **state)
{
    (void)state;
    CHECK("POST / HTTP/1.1\r\n"
          "Host: a\r\n"
          "Content-Type: text/xml\r\n"
          "X-Dup: first\r\n"
          "x-dup: second\r\n"
          "Content-Length: 0\r\n"
          "\r\n",
          1);
    assert_string_equal(wx_http_head_field(&head, "content-type"), "text/xml");
    assert_string_equal(wx_http_head_field(&head, "CONTENT-TYPE"), "text/xml");
    assert_string_equal(wx_http_head_field(&head, "hOsT"), "a");
    assert_string_equal(wx_http_head_field(&head, "X-DUP"), "first");
    assert_null(wx_http_head_field(&head, "Content"));
    assert_null(wx_http_head_field(&head, "Content-Type-X"));
    assert_null(wx_http_head_field(&head, ""));
}

/* head_len ends right after the blank line; the body and a pipelined request after it are
 * left byte for byte, and parse on their own. */
static void test_pipelined(void **state)
{
    (void)state;
    const char first[] = "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n";
    const char body[] = "a\r\n\r\nb\n";
    const char second[] = "GET /two?x=1 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
    char all[sizeof first + sizeof body + sizeof second];
    size_t fl = sizeof first - 1, bl = sizeof body - 1, sl = sizeof second - 1;
    memcpy(all, first, fl);
    memcpy(all + fl, body, bl);
    memcpy(all + fl + bl, second, sl);
    size_t total = fl + bl + sl;

    assert_int_equal(parse_n(all, total), 1);
    assert_int_equal(head.head_len, fl);
    assert_int_equal(head.content_length, bl);
    assert_string_equal(head.path, "/one");
    assert_true(head.keep_alive);
    assert_memory_equal(buf + fl, all + fl, bl + sl);

    /* The second request, parsed where the first one's body ends. */
    char *rest = buf + head.head_len + head.content_length;
    size_t rest_len = total - head.head_len - head.content_length;
    struct wx_http_head h2;
    assert_int_equal(wx_http_parse_head(rest, rest_len, HEAD_MAX, BODY_MAX, &h2), 1);
    assert_int_equal(h2.head_len, sl);
    assert_int_equal(h2.method, WX_HTTP_GET);
    assert_string_equal(h2.path, "/two");
    assert_string_equal(h2.query, "x=1");
    assert_false(h2.keep_alive);
    assert_string_equal(wx_http_head_field(&h2, "host"), "b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_simple),        cmocka_unit_test(test_get_query),
        cmocka_unit_test(test_post_with_length),  cmocka_unit_test(test_head_method),
        cmocka_unit_test(test_keep_alive),        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_head_max),          cmocka_unit_test(test_fields_max),
        cmocka_unit_test(test_body_max),          cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding), cmocka_unit_test(test_expect),
        cmocka_unit_test(test_methods),           cmocka_unit_test(test_target_form),
        cmocka_unit_test(test_target_max),        cmocka_unit_test(test_target_chars),
        cmocka_unit_test(test_versions),          cmocka_unit_test(test_version_not_digits),
        cmocka_unit_test(test_bare_lf),           cmocka_unit_test(test_cr_inside_line),
        cmocka_unit_test(test_empty_lines),       cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_field_syntax),      cmocka_unit_test(test_host),
        cmocka_unit_test(test_value_trim),        cmocka_unit_test(test_field_lookup),
        cmocka_unit_test(test_pipelined),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_group);
}
