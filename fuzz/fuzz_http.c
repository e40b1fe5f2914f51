/*
 * fuzz_http.c - libFuzzer target for the HTTP/1.1 request head parser (src/net/http_parse.c).
 *
 * The parser is the first code to see a client's bytes and writes into them in place, so the
 * input is copied into a heap buffer of exactly its size (AddressSanitizer then catches any
 * read or write past what was received). Whatever it accepts must describe a head that lies
 * inside the buffer: strings NUL-terminated within the head, the bytes after the head (body,
 * pipelined requests) untouched, the head less its last byte "need more", and the numbers
 * within their documented ranges. A violation aborts, whether or not NDEBUG is set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_parse.h"
#include "net/net.h"

#define HEAD_MAX 16384u /* the listener's WX_HTTP_HEADERS_MAX */
#define BODY_MAX 65536u

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct wx_http_head head, again;

/* True when s points into buf[0, len) and its NUL comes before len. */
static bool string_inside(const char *s, const char *buf, size_t len)
{
    if (s < buf || s >= buf + len) return false;
    return memchr(s, '\0', (size_t)(buf + len - s)) != NULL;
}

/* Only the statuses the header documents ever come back. */
static bool documented(int rc)
{
    switch (rc) {
    case 0:
    case 1:
    case 400:
    case 411:
    case 413:
    case 414:
    case 417:
    case 431:
    case 501:
    case 505:
        return true;
    default:
        return false;
    }
}

/* The accepted head h of buf[0, size), parsed from data. */
static void check_head(const struct wx_http_head *h, const char *buf, const uint8_t *data,
                       size_t size)
{
    size_t hl = h->head_len;
    CHECK(hl >= 4 && hl <= size && hl <= HEAD_MAX);
    CHECK(memcmp(data + hl - 4, "\r\n\r\n", 4) == 0);
    CHECK(hl == size || memcmp(buf + hl, data + hl, size - hl) == 0); /* body left alone */

    CHECK(h->method >= WX_HTTP_GET && h->method <= WX_HTTP_POST);
    CHECK(h->minor == 0 || h->minor == 1);
    CHECK(h->content_length <= BODY_MAX);
    CHECK(h->nfields <= WX_HTTP_FIELDS_MAX);
    CHECK(!h->keep_alive || h->minor == 1 || wx_http_head_field(h, "Connection") != NULL);

    CHECK(string_inside(h->path, buf, hl));
    CHECK(h->path[0] == '/');
    CHECK(h->query == NULL || string_inside(h->query, buf, hl));
    for (unsigned i = 0; i < h->nfields; i++) {
        const char *name = h->fields[i].name, *value = h->fields[i].value;
        CHECK(string_inside(name, buf, hl));
        CHECK(string_inside(value, buf, hl));
        CHECK(name[0] != '\0');
        CHECK(strchr(name, ':') == NULL && strchr(name, ' ') == NULL);
        CHECK(strchr(value, '\r') == NULL && strchr(value, '\n') == NULL);
        CHECK(wx_http_head_field(h, name) != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size > 0 ? size : 1);
    CHECK(buf != NULL);
    if (size > 0) memcpy(buf, data, size);

    int rc = wx_http_parse_head(buf, size, HEAD_MAX, BODY_MAX, &head);
    CHECK(documented(rc));
    if (rc == 0) CHECK(size < HEAD_MAX);
    if (rc == 1) {
        check_head(&head, buf, data, size);
        /* The head less its last byte is incomplete, and left unwritten. */
        size_t n = head.head_len - 1;
        char *prefix = malloc(n);
        CHECK(prefix != NULL);
        memcpy(prefix, data, n);
        CHECK(wx_http_parse_head(prefix, n, HEAD_MAX, BODY_MAX, &again) == 0);
        CHECK(memcmp(prefix, data, n) == 0);
        free(prefix);
    }
    free(buf);
    return 0;
}
