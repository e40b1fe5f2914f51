/*
 * url.c - checking a request's URL, and remembering the URL bases already checked.
 *
 * A URL goes through libcurl's own parser, the one the transfer will use, so that what we
 * check is what gets fetched; the parse also gives the host and path, the only parts of a URL
 * that logs may show (WeChat puts the access token in the query string, and a path or query
 * could carry anything a caller put there).
 *
 * That parse cost more than all the other checks of a request together, and a fetcher's
 * requests go to a handful of endpoints, each time with another query (a new access token, a
 * new OAuth code). So the part before the query, the base, is parsed once and remembered with
 * its normalized form and its log name. A later URL with the same base and a query made only
 * of RFC 3986 query characters (no space, no control character, no '#', so nothing libcurl
 * refuses or rewrites) is, to libcurl as well, that normalized base followed by the query as
 * written: it skips the parse. Every other URL is parsed whole, as it always was. A base with
 * an '@' is never remembered: it may carry a user name and password.
 */
#include "fetch/fetch_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/log.h"

/* A base that parsed: scheme://host[:port]/path as callers write it and as libcurl does. */
struct fetch_base {
    size_t text_len;                       /* bytes of text, before its NUL */
    const char *norm;                      /* normalized: in the same block, after text */
    size_t norm_len;                       /* */
    char log_name[FETCH_LOG_NAME_MAX + 1]; /* host[:port]/path */
    char text[];                           /* as written, then norm */
};

/* Which parts of a parsed URL we keep: curl_free each. */
struct url_parts {
    char *url;    /* normalized, as the transfer will use it */
    char *scheme; /* lower case */
    char *host;   /* brackets kept around an IPv6 address */
    char *port;   /* NULL when the URL names none */
    char *path;   /* at least "/" */
};

static void url_parts_free(struct url_parts *u)
{
    curl_free(u->url);
    curl_free(u->scheme);
    curl_free(u->host);
    curl_free(u->port);
    curl_free(u->path);
}

/* Parses an absolute http(s) URL; NULL on success, else why not. */
static const char *url_parse(const char *text, struct url_parts *out)
{
    memset(out, 0, sizeof *out);
    CURLU *u = curl_url();
    if (u == NULL) WX_FATAL("out of memory parsing a URL");
    const char *why = NULL;
    if (curl_url_set(u, CURLUPART_URL, text, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &out->scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &out->host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &out->path, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &out->url, 0) != CURLUE_OK) {
        why = "malformed URL";
    } else if (strcasecmp(out->scheme, "http") != 0 && strcasecmp(out->scheme, "https") != 0) {
        why = "URL scheme is not http or https";
    } else {
        (void)curl_url_get(u, CURLUPART_PORT, &out->port, 0); /* none is fine */
    }
    curl_url_cleanup(u);
    if (why != NULL) url_parts_free(out);
    return why;
}

/* An RFC 3986 query character (unreserved, sub-delims, ":@/?", and '%' of an escape). */
static bool is_query_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=:@/?%", c) != NULL);
}

/* No query, or '?' and a query of query characters only: libcurl takes it as it is. */
static bool tail_plain(const char *tail, size_t len)
{
    if (len == 0) return true;
    if (tail[0] != '?' || len < 2) return false;
    for (size_t i = 1; i < len; i++) {
        if (!is_query_char(tail[i])) return false;
    }
    return true;
}

static const struct fetch_base *base_find(const struct wx_fetch *f, const char *text, size_t len)
{
    for (size_t i = 0; i < FETCH_BASES_MAX; i++) {
        const struct fetch_base *b = f->reuse.bases[i];
        if (b != NULL && b->text_len == len && memcmp(b->text, text, len) == 0) return b;
    }
    return NULL;
}

/* Remembers a base in the next slot, in turn: the oldest one goes. */
static const struct fetch_base *base_add(struct wx_fetch *f, const char *text, size_t len,
                                         const char *norm, size_t norm_len, const char *log_name)
{
    struct fetch_base *b = wx_malloc(sizeof *b + len + 1 + norm_len + 1);
    b->text_len = len;
    memcpy(b->text, text, len);
    b->text[len] = '\0';
    char *n = b->text + len + 1;
    memcpy(n, norm, norm_len);
    n[norm_len] = '\0';
    b->norm = n;
    b->norm_len = norm_len;
    snprintf(b->log_name, sizeof b->log_name, "%s", log_name);
    free(f->reuse.bases[f->reuse.bases_next]);
    f->reuse.bases[f->reuse.bases_next] = b;
    f->reuse.bases_next = (f->reuse.bases_next + 1) % FETCH_BASES_MAX;
    return b;
}

static void from_base(struct fetch_url *out, const struct fetch_base *b, const char *tail,
                      size_t tail_len)
{
    out->head = b->norm;
    out->head_len = b->norm_len;
    out->tail = tail;
    out->tail_len = tail_len;
    out->log_name = b->log_name;
}

const char *fetch_url_check(struct wx_fetch *f, const char *text, struct fetch_url *out)
{
    out->parsed = NULL;
    size_t len = strnlen(text, WX_FETCH_URL_MAX + 1);
    if (len > WX_FETCH_URL_MAX) return "URL too long";
    size_t base_len = strcspn(text, "?#");
    const char *tail = text + base_len;
    size_t tail_len = len - base_len;
    bool plain = tail_plain(tail, tail_len) && memchr(text, '@', base_len) == NULL;
    const struct fetch_base *b = plain ? base_find(f, text, base_len) : NULL;
    if (b != NULL) {
        from_base(out, b, tail, tail_len);
        return NULL;
    }
    struct url_parts u;
    const char *why = url_parse(text, &u);
    if (why != NULL) return why;
    snprintf(out->log_buf, sizeof out->log_buf, "%s%s%s%s", u.host, u.port != NULL ? ":" : "",
             u.port != NULL ? u.port : "", u.path);
    size_t url_len = strlen(u.url);
    if (plain && url_len >= tail_len && memcmp(u.url + url_len - tail_len, tail, tail_len) == 0) {
        b = base_add(f, text, base_len, u.url, url_len - tail_len, out->log_buf);
        from_base(out, b, tail, tail_len);
    } else {
        out->parsed = u.url; /* not remembered: this URL's own parse, whole */
        u.url = NULL;
        out->head = out->parsed;
        out->head_len = url_len;
        out->tail = "";
        out->tail_len = 0;
        out->log_name = out->log_buf;
    }
    url_parts_free(&u);
    return NULL;
}

void fetch_url_done(struct fetch_url *u)
{
    curl_free(u->parsed);
    u->parsed = NULL;
}

void fetch_urls_free(struct wx_fetch *f)
{
    for (size_t i = 0; i < FETCH_BASES_MAX; i++) {
        free(f->reuse.bases[i]);
        f->reuse.bases[i] = NULL;
    }
}
