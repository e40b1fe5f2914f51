/*
 * request.c - one outbound request: checking and copying what the caller asked for, the
 * libcurl easy handle that carries it, and what came of it.
 *
 * Everything a caller passes is checked before anything is copied, so a refused request
 * leaves no trace but a log line (the URL is url.c's to check). A request is one block: the
 * request, its copies and room for a short answer. Easy handles go back to the fetcher after
 * each transfer and carry the next one: the options every transfer shares are set once, when
 * a handle is made, and every other option is set again for each transfer, so that nothing of
 * one request (method, body, headers, timeouts, where the answer goes) reaches the next.
 */
#include "fetch/fetch_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/log.h"

#define OCTET_STREAM "application/octet-stream"
#define RESP_CAP_MIN 1024 /* first response buffer out of the request's block; doubles on */

static const char *const method_names[] = {
    [FETCH_GET] = "GET", [FETCH_POST] = "POST", [FETCH_PUT] = "PUT", [FETCH_DELETE] = "DELETE"};

/* ======================================================================================
 * Checking the caller's request
 * ====================================================================================== */

static int method_parse(const char *name, enum fetch_method *out)
{
    for (size_t i = 0; i < sizeof method_names / sizeof method_names[0]; i++) {
        if (strcmp(name, method_names[i]) == 0) {
            *out = (enum fetch_method)i;
            return 0;
        }
    }
    return -1;
}

/* Printable text and tabs, at most max bytes: nothing that could end a header line. */
static bool text_ok(const char *s, size_t max)
{
    size_t len = strnlen(s, max + 1);
    if (len > max) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

/* An RFC 9110 token character, as header names are made of. */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* "Name: value" with a token name and a value that cannot smuggle in another line. */
static bool header_ok(const char *h)
{
    if (!text_ok(h, WX_FETCH_HEADER_MAX)) return false;
    const char *colon = strchr(h, ':');
    if (colon == NULL || colon == h) return false;
    for (const char *p = h; p < colon; p++) {
        if (!is_tchar(*p)) return false;
    }
    return true;
}

static bool header_is(const char *h, const char *name)
{
    size_t len = strlen(name);
    return strncasecmp(h, name, len) == 0 && h[len] == ':';
}

static bool is_content_type(const char *h)
{
    return header_is(h, "Content-Type");
}

/* Checks the headers; *has_ctype tells whether one of them sets the Content-Type. */
static const char *headers_problem(const char *const *headers, bool *has_ctype)
{
    *has_ctype = false;
    if (headers == NULL) return NULL;
    size_t n = 0;
    for (; headers[n] != NULL; n++) {
        if (n == WX_FETCH_HEADERS_MAX) return "more than WX_FETCH_HEADERS_MAX headers";
        if (!header_ok(headers[n])) return "a header is not a \"Name: value\" line";
        if (header_is(headers[n], "Content-Length") || header_is(headers[n], "Transfer-Encoding")) {
            return "body framing headers are libcurl's to write";
        }
        if (is_content_type(headers[n])) *has_ctype = true;
    }
    return NULL;
}

static const char *part_problem(const struct wx_fetch_part *p)
{
    if (p->name == NULL || p->name[0] == '\0') return "the upload part has no name";
    if (!text_ok(p->name, WX_FETCH_HEADER_MAX)) return "bad upload part name";
    if (p->filename != NULL && !text_ok(p->filename, WX_FETCH_HEADER_MAX)) {
        return "bad upload file name";
    }
    if (p->content_type != NULL && !text_ok(p->content_type, WX_FETCH_HEADER_MAX)) {
        return "bad upload content type";
    }
    if (p->len > WX_FETCH_BODY_MAX) return "upload part larger than WX_FETCH_BODY_MAX";
    if (p->len > 0 && p->data == NULL) return "upload part without data";
    return NULL;
}

/* Everything but the URL; NULL when req is fine. Sets *m. */
static const char *request_problem(const struct wx_fetch_request *req, enum fetch_method *m)
{
    if (req->method == NULL || method_parse(req->method, m) != 0) return "unsupported method";
    if (req->url == NULL) return "no URL";
    bool has_ctype;
    const char *why = headers_problem(req->headers, &has_ctype);
    if (why != NULL) return why;
    bool sends = *m == FETCH_POST || *m == FETCH_PUT;
    if (!sends && (req->body_len > 0 || req->part != NULL || req->content_type != NULL)) {
        return "GET and DELETE take no body";
    }
    if (req->body_len > WX_FETCH_BODY_MAX) return "body larger than WX_FETCH_BODY_MAX";
    if (req->body_len > 0 && req->body == NULL) return "body_len without body";
    if (req->part != NULL && (req->body_len > 0 || req->content_type != NULL)) {
        return "both a body and an upload part";
    }
    if (req->content_type != NULL && has_ctype) return "content_type and a Content-Type header";
    if (req->content_type != NULL && !text_ok(req->content_type, WX_FETCH_HEADER_MAX)) {
        return "bad content_type";
    }
    return req->part != NULL ? part_problem(req->part) : NULL;
}

/* ======================================================================================
 * Copying
 * ====================================================================================== */

/* A bump allocator over the block after a request, sized before anything is copied. */
struct arena {
    char *next, *end;
};

/* Copies len bytes of src (NULL if len is 0) and a NUL; NULL when src is NULL. */
static char *arena_copy(struct arena *a, const void *src, size_t len)
{
    if (src == NULL) return NULL;
    assert(len < (size_t)(a->end - a->next));
    char *dst = a->next;
    if (len > 0) memcpy(dst, src, len);
    dst[len] = '\0';
    a->next += len + 1;
    return dst;
}

/* Takes n bytes (n >= 1) to be written later; they hold "" until then. */
static char *arena_room(struct arena *a, size_t n)
{
    assert(n >= 1 && n <= (size_t)(a->end - a->next));
    char *dst = a->next;
    dst[0] = '\0';
    a->next += n;
    return dst;
}

static size_t str_size(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static size_t copies_size(const struct wx_fetch_request *req, const struct fetch_url *u)
{
    size_t n = u->head_len + u->tail_len + 1 + strlen(u->log_name) + 1 + FETCH_RESP_INLINE;
    if (req->body_len > 0) n += req->body_len + 1;
    const struct wx_fetch_part *p = req->part;
    if (p != NULL) {
        n += str_size(p->name) + str_size(p->filename) + str_size(p->content_type);
        n += p->len + 1;
    }
    return n;
}

static void copy_part(struct fetch_xfer *x, struct arena *a, const struct wx_fetch_part *p)
{
    x->part.name = arena_copy(a, p->name, strlen(p->name));
    if (p->filename != NULL) x->part.filename = arena_copy(a, p->filename, strlen(p->filename));
    if (p->content_type != NULL) {
        x->part.content_type = arena_copy(a, p->content_type, strlen(p->content_type));
    }
    x->part.data = arena_copy(a, p->len > 0 ? p->data : "", p->len);
    x->part.len = p->len;
}

/* The URL the transfer fetches: the checked head, then the query as the caller wrote it. */
static const char *copy_url(struct arena *a, const struct fetch_url *u)
{
    char *dst = arena_room(a, u->head_len + u->tail_len + 1);
    memcpy(dst, u->head, u->head_len);
    memcpy(dst + u->head_len, u->tail, u->tail_len);
    dst[u->head_len + u->tail_len] = '\0';
    return dst;
}

static struct curl_slist *slist_add(struct curl_slist *list, const char *line)
{
    struct curl_slist *grown = curl_slist_append(list, line);
    if (grown == NULL) WX_FATAL("out of memory building request headers");
    return grown;
}

static struct curl_slist *ctype_add(struct curl_slist *list, const char *content_type)
{
    char line[WX_FETCH_HEADER_MAX + 32];
    snprintf(line, sizeof line, "Content-Type: %s", content_type);
    return slist_add(list, line);
}

/*
 * The header list of a request that brings no headers of its own: "Expect:" and the
 * Content-Type it sends (ctype; NULL: none). The fetcher keeps one list per content type,
 * for FETCH_CTYPES_MAX types, until it is freed; NULL when every slot holds another type.
 */
static struct curl_slist *headers_shared(struct wx_fetch *f, const char *ctype)
{
    struct fetch_reuse *r = &f->reuse;
    if (ctype == NULL) {
        if (r->bare_headers == NULL) r->bare_headers = slist_add(NULL, "Expect:");
        return r->bare_headers;
    }
    for (size_t i = 0; i < FETCH_CTYPES_MAX; i++) {
        struct fetch_ctype *c = &r->ctypes[i];
        if (c->content_type == NULL) {
            c->content_type = wx_strndup(ctype, strlen(ctype));
            c->list = ctype_add(slist_add(NULL, "Expect:"), ctype);
            return c->list;
        }
        if (strcmp(c->content_type, ctype) == 0) return c->list;
    }
    return NULL;
}

/* The caller's headers, plus ours, into x->headers. "Expect:" keeps libcurl from waiting for
 * a 100 Continue before large bodies: our peers are APIs that answer at once. */
static void headers_build(struct fetch_xfer *x, const struct wx_fetch_request *req)
{
    bool has_ctype = false;
    bool own = req->headers != NULL && req->headers[0] != NULL;
    for (size_t i = 0; own && req->headers[i] != NULL; i++) {
        if (is_content_type(req->headers[i])) has_ctype = true;
    }
    const char *ctype = NULL;
    if ((x->method == FETCH_POST || x->method == FETCH_PUT) && req->part == NULL && !has_ctype) {
        ctype = req->content_type != NULL ? req->content_type : OCTET_STREAM;
    }
    x->headers = own ? NULL : headers_shared(x->f, ctype);
    if (x->headers != NULL) return;
    x->headers_owned = true;
    x->headers = slist_add(NULL, "Expect:");
    for (size_t i = 0; own && req->headers[i] != NULL; i++) {
        x->headers = slist_add(x->headers, req->headers[i]);
    }
    if (ctype != NULL) x->headers = ctype_add(x->headers, ctype);
}

struct fetch_xfer *fetch_xfer_new(struct wx_fetch *f, const struct wx_fetch_request *req)
{
    assert(f != NULL);
    assert(req != NULL);
    enum fetch_method m = FETCH_GET;
    struct fetch_url u;
    const char *why = request_problem(req, &m);
    if (why == NULL) why = fetch_url_check(f, req->url, &u);
    if (why != NULL) {
        WX_WARN("fetch: request refused: %s", why);
        return NULL;
    }
    size_t size = copies_size(req, &u);
    struct fetch_xfer *x = wx_calloc(1, sizeof *x + size);
    struct arena a = {.next = (char *)(x + 1), .end = (char *)(x + 1) + size};
    x->f = f;
    x->method = m;
    x->method_name = method_names[m];
    x->start_ms = fetch_now_ms();
    x->deadline_ms =
        x->start_ms + (req->timeout_ms != 0 ? req->timeout_ms : WX_FETCH_TIMEOUT_DEFAULT_MS);
    x->connect_timeout_ms = req->connect_timeout_ms != 0 ? req->connect_timeout_ms
                                                         : WX_FETCH_CONNECT_TIMEOUT_DEFAULT_MS;
    x->url = copy_url(&a, &u);
    x->log_name = arena_copy(&a, u.log_name, strlen(u.log_name));
    fetch_url_done(&u);
    if (req->body_len > 0) x->body = arena_copy(&a, req->body, req->body_len);
    x->body_len = req->body_len;
    if (req->part != NULL) copy_part(x, &a, req->part);
    headers_build(x, req);
    x->resp = arena_room(&a, FETCH_RESP_INLINE);
    x->resp_cap = FETCH_RESP_INLINE;
    return x;
}

void fetch_xfer_free(struct fetch_xfer *x)
{
    if (x == NULL) return;
    assert(x->easy == NULL);
    assert(x->queue_deadline == NULL);
    if (x->headers_owned) curl_slist_free_all(x->headers);
    if (x->resp_own) free(x->resp);
    free(x);
}

/* ======================================================================================
 * The easy handle
 * ====================================================================================== */

/* An option that cannot fail but for want of memory (or our bug): the fail-stop policy. */
static void setopt_done(CURLcode rc, const char *what)
{
    if (rc != CURLE_OK) WX_FATAL("fetch: setting %s: %s", what, curl_easy_strerror(rc));
}
#define SETOPT(e, opt, val) setopt_done(curl_easy_setopt((e), (opt), (val)), #opt)

/* Moves the response to a bigger buffer: out of x's block, or a doubled one. */
static void resp_grow(struct fetch_xfer *x, size_t need, size_t max)
{
    size_t cap = x->resp_cap < RESP_CAP_MIN ? RESP_CAP_MIN : x->resp_cap;
    while (cap < need)
        cap *= 2;
    if (cap > max + 1) cap = max + 1;
    if (!x->resp_own) {
        char *heap = wx_malloc(cap);
        memcpy(heap, x->resp, x->resp_len + 1);
        x->resp = heap;
        x->resp_own = true;
    } else {
        x->resp = wx_realloc(x->resp, cap);
    }
    x->resp_cap = cap;
}

/* libcurl's write callback: keep the body, up to max_response bytes. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct fetch_xfer *x = arg;
    assert(size == 1);
    size_t max = x->f->max_response;
    if (nmemb > max - x->resp_len) {
        x->too_large = true;
        return CURL_WRITEFUNC_ERROR;
    }
    size_t need = x->resp_len + nmemb + 1;
    if (need > x->resp_cap) resp_grow(x, need, max);
    memcpy(x->resp + x->resp_len, data, nmemb);
    x->resp_len += nmemb;
    x->resp[x->resp_len] = '\0';
    return nmemb;
}

/* The upload part is read from our copy rather than copied once more into libcurl. */
static size_t on_part_read(char *buf, size_t size, size_t nitems, void *arg)
{
    struct fetch_xfer *x = arg;
    size_t room = size * nitems;
    size_t left = x->part.len - x->part_pos;
    size_t n = left < room ? left : room;
    memcpy(buf, (const char *)x->part.data + x->part_pos, n);
    x->part_pos += n;
    return n;
}

/* libcurl rewinds when it sends the upload again (a reused connection that had closed). */
static int on_part_seek(void *arg, curl_off_t offset, int origin)
{
    struct fetch_xfer *x = arg;
    if (origin != SEEK_SET || offset < 0 || (curl_off_t)x->part.len < offset) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    x->part_pos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static curl_mime *mime_build(struct fetch_xfer *x)
{
    curl_mime *mime = curl_mime_init(x->easy);
    curl_mimepart *p = mime != NULL ? curl_mime_addpart(mime) : NULL;
    if (p == NULL || curl_mime_name(p, x->part.name) != CURLE_OK ||
        curl_mime_filename(p, x->part.filename) != CURLE_OK ||
        curl_mime_type(p, x->part.content_type != NULL ? x->part.content_type : OCTET_STREAM) !=
            CURLE_OK ||
        curl_mime_data_cb(p, (curl_off_t)x->part.len, on_part_read, on_part_seek, NULL, x) !=
            CURLE_OK) {
        WX_FATAL("fetch: out of memory building an upload");
    }
    return mime;
}

/* A new easy handle with the options that every transfer of f shares. */
static CURL *easy_new(struct wx_fetch *f)
{
    CURL *e = curl_easy_init();
    if (e == NULL) WX_FATAL("fetch: out of memory starting a transfer");
    f->reuse.easy_made++;
    SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(e, CURLOPT_PROXY, ""); /* no proxy, whatever http_proxy says */
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    SETOPT(e, CURLOPT_SHARE, f->share);
    SETOPT(e, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (f->ca_file != NULL) SETOPT(e, CURLOPT_CAINFO, f->ca_file);
    SETOPT(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->max_response);
    SETOPT(e, CURLOPT_WRITEFUNCTION, on_body);
    return e;
}

/*
 * The method and what it sends. Whatever the handle carried before: HTTPGET switches a POST,
 * a PUT or an upload off, POSTFIELDS and MIMEPOST each replace the other, and the custom
 * method is set, or cleared, every time.
 */
static void set_method(struct fetch_xfer *x)
{
    CURL *e = x->easy;
    if (x->method == FETCH_GET || x->method == FETCH_DELETE) {
        SETOPT(e, CURLOPT_HTTPGET, 1L);
    } else if (x->part.name != NULL) {
        x->part_pos = 0;
        x->mime = mime_build(x);
        SETOPT(e, CURLOPT_MIMEPOST, x->mime);
    } else {
        SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        SETOPT(e, CURLOPT_POSTFIELDS, x->body != NULL ? x->body : "");
    }
    const char *custom = NULL; /* GET or POST: libcurl's own */
    if (x->method == FETCH_PUT) custom = "PUT";
    if (x->method == FETCH_DELETE) custom = "DELETE";
    SETOPT(e, CURLOPT_CUSTOMREQUEST, custom);
}

void fetch_xfer_prepare(struct fetch_xfer *x, long timeout_ms)
{
    assert(x->easy == NULL);
    assert(timeout_ms > 0);
    struct wx_fetch *f = x->f;
    CURL *e = f->reuse.nidle > 0 ? f->reuse.idle[--f->reuse.nidle] : easy_new(f);
    x->easy = e;
    x->error[0] = '\0';
    SETOPT(e, CURLOPT_PRIVATE, x);
    SETOPT(e, CURLOPT_URL, x->url);
    SETOPT(e, CURLOPT_ERRORBUFFER, x->error);
    SETOPT(e, CURLOPT_WRITEDATA, x);
    SETOPT(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, (long)x->connect_timeout_ms);
    SETOPT(e, CURLOPT_HTTPHEADER, x->headers);
    set_method(x);
}

void fetch_xfer_release(struct fetch_xfer *x)
{
    struct wx_fetch *f = x->f;
    CURL *e = x->easy;
    x->easy = NULL;
    /* The idle handle points to nothing of x, which is about to go, and keeps no URL. */
    SETOPT(e, CURLOPT_PRIVATE, (void *)NULL);
    SETOPT(e, CURLOPT_URL, (char *)NULL);
    SETOPT(e, CURLOPT_ERRORBUFFER, (char *)NULL);
    SETOPT(e, CURLOPT_WRITEDATA, (void *)NULL);
    SETOPT(e, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    SETOPT(e, CURLOPT_POSTFIELDS, (void *)NULL);
    if (x->mime != NULL) {
        SETOPT(e, CURLOPT_MIMEPOST, (curl_mime *)NULL);
        curl_mime_free(x->mime);
        x->mime = NULL;
    }
    assert(f->reuse.nidle < f->max_inflight);
    f->reuse.idle[f->reuse.nidle++] = e;
}

void fetch_reuse_free(struct wx_fetch *f)
{
    struct fetch_reuse *r = &f->reuse;
    while (r->nidle > 0)
        curl_easy_cleanup(r->idle[--r->nidle]);
    free(r->idle);
    r->idle = NULL;
    curl_slist_free_all(r->bare_headers);
    r->bare_headers = NULL;
    for (size_t i = 0; i < FETCH_CTYPES_MAX; i++) {
        free(r->ctypes[i].content_type);
        curl_slist_free_all(r->ctypes[i].list);
        r->ctypes[i] = (struct fetch_ctype){0};
    }
}

/* ======================================================================================
 * The outcome
 * ====================================================================================== */

static enum wx_fetch_status status_of(CURLcode rc, bool too_large)
{
    switch (rc) {
    case CURLE_OK:
        return WX_FETCH_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return WX_FETCH_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return WX_FETCH_CONNECT;
    case CURLE_FILESIZE_EXCEEDED:
        return WX_FETCH_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return too_large ? WX_FETCH_TOO_LARGE : WX_FETCH_ERROR;
    default:
        return WX_FETCH_ERROR;
    }
}

void fetch_xfer_outcome(struct fetch_xfer *x, CURLcode rc, struct wx_fetch_response *resp)
{
    assert(x->easy != NULL);
    memset(resp, 0, sizeof *resp);
    resp->status = status_of(rc, x->too_large);
    (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp->http_status);
    resp->body = "";
    if (resp->status == WX_FETCH_OK && x->resp != NULL) {
        resp->body = x->resp;
        resp->body_len = x->resp_len;
    }
    if (resp->status == WX_FETCH_TOO_LARGE) {
        snprintf(x->error, sizeof x->error, "response body larger than %zu bytes",
                 x->f->max_response);
    } else if (resp->status != WX_FETCH_OK && x->error[0] == '\0') {
        snprintf(x->error, sizeof x->error, "%s", curl_easy_strerror(rc));
    }
    resp->error = resp->status != WX_FETCH_OK ? x->error : NULL;
}
