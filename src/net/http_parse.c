/*
 * http_parse.c - the HTTP/1.1 request head parser (RFC 9112), strict on purpose.
 */
#include "net/http_parse.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "net/net.h"

#define TARGET_MAX (8u << 10)

/* tchar of RFC 9110: the characters of a method or a header name. */
static bool is_tchar(unsigned char c)
{
    if (c >= 'a' && c <= 'z') return true;
    if (c >= 'A' && c <= 'Z') return true;
    if (c >= '0' && c <= '9') return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value may hold visible characters, spaces, tabs and obs-text; no controls. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* A request target: visible ASCII only (no spaces, controls or raw 8-bit bytes). */
static bool is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* True when the comma-separated list in value holds token (any case). */
static bool list_has(const char *value, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0) return true;
    }
    return false;
}

/* Parses a Content-Length value: digits only, at most body_max. */
static int parse_length(const char *v, size_t body_max, size_t *out)
{
    if (*v == '\0') return 400;
    uint64_t n = 0;
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9') return 400;
        n = n * 10 + (uint64_t)(*v - '0');
        if (n > body_max) return 413;
    }
    *out = (size_t)n;
    return 0;
}

/* "METHOD SP /target SP HTTP/1.x" at line[0, len), NUL-terminated by the caller. */
static int parse_request_line(char *line, size_t len, struct wx_http_head *h)
{
    char *sp1 = memchr(line, ' ', len);
    if (sp1 == NULL || sp1 == line) return 400;
    size_t mlen = (size_t)(sp1 - line);
    for (size_t i = 0; i < mlen; i++) {
        if (!is_tchar((unsigned char)line[i])) return 400;
    }
    if (mlen == 3 && memcmp(line, "GET", 3) == 0) {
        h->method = WX_HTTP_GET;
    } else if (mlen == 4 && memcmp(line, "POST", 4) == 0) {
        h->method = WX_HTTP_POST;
    } else if (mlen == 4 && memcmp(line, "HEAD", 4) == 0) {
        h->method = WX_HTTP_HEAD;
    } else {
        return 501; /* not a method of ours anywhere: 405 is for one route's refusal */
    }

    char *target = sp1 + 1;
    char *end = line + len;
    char *sp2 = memchr(target, ' ', (size_t)(end - target));
    if (sp2 == NULL || sp2 == target) return 400;
    if ((size_t)(sp2 - target) > TARGET_MAX) return 414;
    if (target[0] != '/') return 400; /* origin-form only: no absolute URIs, no "*" */
    for (char *p = target; p < sp2; p++) {
        if (!is_target_char((unsigned char)*p)) return 400;
    }

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT: malformed is 400, another version 505 */
    const char *version = sp2 + 1;
    if ((size_t)(end - version) != 8 || memcmp(version, "HTTP/", 5) != 0 ||
        !isdigit((unsigned char)version[5]) || version[6] != '.' ||
        !isdigit((unsigned char)version[7])) {
        return 400;
    }
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) return 505;
    h->minor = version[7] - '0';

    *sp2 = '\0';
    char *q = memchr(target, '?', (size_t)(sp2 - target));
    if (q != NULL) *q = '\0';
    h->path = target;
    h->query = q != NULL ? q + 1 : NULL;
    return 0;
}

/* "Name: value" at line[0, len); the value is trimmed of surrounding spaces and tabs. */
static int parse_field(char *line, size_t len, struct wx_http_head *h)
{
    char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line) return 400;
    for (char *p = line; p < colon; p++) {
        if (!is_tchar((unsigned char)*p)) return 400; /* also a space before the colon */
    }
    char *v = colon + 1, *end = line + len;
    for (char *p = v; p < end; p++) {
        if (!is_value_char((unsigned char)*p)) return 400;
    }
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (h->nfields == WX_HTTP_FIELDS_MAX) return 431;
    *colon = '\0';
    *end = '\0';
    h->fields[h->nfields++] = (struct wx_http_field){.name = line, .value = v};
    return 0;
}

/* The fields that frame the message and steer the connection. */
static int read_fields(struct wx_http_head *h, size_t body_max)
{
    bool has_length = false, close = false, keep = false;
    unsigned hosts = 0;
    for (unsigned i = 0; i < h->nfields; i++) {
        const char *n = h->fields[i].name, *v = h->fields[i].value;
        if (strcasecmp(n, "Content-Length") == 0) {
            size_t len = 0;
            int rc = parse_length(v, body_max, &len);
            if (rc != 0) return rc;
            if (has_length && len != h->content_length) return 400;
            has_length = true;
            h->content_length = len;
        } else if (strcasecmp(n, "Transfer-Encoding") == 0) {
            return 411; /* chunked bodies are not taken: say how long it is */
        } else if (strcasecmp(n, "Connection") == 0) {
            close = close || list_has(v, "close");
            keep = keep || list_has(v, "keep-alive");
        } else if (strcasecmp(n, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") != 0) return 417;
            h->expect_continue = h->minor == 1; /* a 1.0 client cannot take a 100 */
        } else if (strcasecmp(n, "Host") == 0) {
            hosts++;
        }
    }
    if (hosts > 1 || (h->minor == 1 && hosts == 0)) return 400; /* RFC 9112, 3.2 */
    h->keep_alive = !close && (h->minor == 1 || keep);
    return 0;
}

int wx_http_parse_head(char *buf, size_t len, size_t head_max, size_t body_max,
                       struct wx_http_head *h)
{
    /* Where the head ends decides everything else: look for it first, within head_max. */
    size_t scan = len < head_max ? len : head_max;
    const char *blank = NULL;
    for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + scan - p))) != NULL; p++) {
        if (p == buf || p[-1] != '\r') return 400; /* a bare LF */
        if (p - buf >= 3 && p[-2] == '\n' && p[-3] == '\r') {
            blank = p;
            break;
        }
    }
    if (blank == NULL) return len >= head_max ? 431 : 0;

    memset(h, 0, sizeof *h);
    h->head_len = (size_t)(blank - buf) + 1;
    char *line = buf;
    bool first = true;
    for (;;) {
        char *cr = memchr(line, '\r', (size_t)(buf + h->head_len - line));
        assert(cr != NULL);
        if (cr[1] != '\n') return 400; /* a CR inside a line */
        size_t n = (size_t)(cr - line);
        if (n == 0) {
            if (first) return 400; /* empty request line */
            break;
        }
        *cr = '\0';
        if (line[0] == ' ' || line[0] == '\t') return 400; /* obs-fold */
        int rc = first ? parse_request_line(line, n, h) : parse_field(line, n, h);
        if (rc != 0) return rc;
        first = false;
        line = cr + 2;
    }
    int rc = read_fields(h, body_max);
    return rc != 0 ? rc : 1;
}

const char *wx_http_head_field(const struct wx_http_head *h, const char *name)
{
    for (unsigned i = 0; i < h->nfields; i++) {
        if (strcasecmp(h->fields[i].name, name) == 0) return h->fields[i].value;
    }
    return NULL;
}
