/*
 * http_parse.h - the HTTP/1.1 request head parser behind the HTTP listener (internal to
 * src/net; the fuzz target and the unit tests use it directly).
 *
 * It reads what a hostile client sends, so it is strict where leniency lets two parsers
 * disagree about where a request ends (request smuggling): one Content-Length at most, no
 * Transfer-Encoding, no space before a header's colon, no folded lines, CRLF line ends only,
 * origin-form targets only. Everything it refuses comes back as the HTTP status to answer.
 */
#ifndef WX_NET_HTTP_PARSE_H
#define WX_NET_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define WX_HTTP_FIELDS_MAX 64 /* header lines in one request */

struct wx_http_field {
    const char *name; /* NUL-terminated inside the parsed buffer */
    const char *value;
};

struct wx_http_head {
    int method;        /* enum wx_http_method */
    const char *path;  /* NUL-terminated, starts with '/' */
    const char *query; /* after '?', NUL-terminated; NULL when the target has none */
    int minor;         /* HTTP/1.minor: 0 or 1 */
    struct wx_http_field fields[WX_HTTP_FIELDS_MAX];
    unsigned nfields;
    size_t head_len;       /* bytes of the head, up to and including the blank line */
    size_t content_length; /* 0 when absent */
    bool keep_alive;       /* HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive */
    bool expect_continue;  /* "Expect: 100-continue" */
};

/*
 * Parses the request head at the start of buf[0, len). Returns 1 when the head is complete
 * (h filled; the parser wrote NULs into buf to end the strings it points at), 0 when more
 * bytes are needed, or the HTTP status to refuse with: 400 malformed, 501 a method other
 * than GET/HEAD/POST, 411 chunked or other transfer codings, 413 a body over body_max,
 * 414 a target over 8 KiB, 417 an Expect other than 100-continue, 431 a head over
 * head_max or more than WX_HTTP_FIELDS_MAX lines, 505 a version other than HTTP/1.0 and 1.1.
 * A complete head is parsed once: call again only on a fresh buffer.
 */
int wx_http_parse_head(char *buf, size_t len, size_t head_max, size_t body_max,
                       struct wx_http_head *h);

/* The value of the field called name (any case), or NULL. */
const char *wx_http_head_field(const struct wx_http_head *h, const char *name);

#endif
