/*
 * http.c - the HTTP listener: libevent's evhttp on the hub's loop, with a small router.
 *
 * evhttp already enforces what a hostile client could push against: header and body sizes
 * (431/413 before a handler runs), a read/write timeout per connection, and HTTP/1.1
 * keep-alive. The router adds exact and prefix routes and the headers every answer carries.
 */
#include "net/net.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "util/alloc.h"
#include "util/config.h"
#include "util/limits.h"
#include "util/log.h"

#define ROUTES_MAX     32
#define LISTEN_BACKLOG 512

struct route {
    char path[64];
    size_t len;
    bool prefix;
    wx_http_handler fn;
    void *arg;
};

struct wx_http {
    wx_hub_t *hub;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    char address[64];
    struct route routes[ROUTES_MAX];
    unsigned nroutes;
};

void wx_http_options_from_config(const struct wx_config *cfg, struct wx_http_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->listen = wx_config_str(cfg, "http.listen");
    opt->body_max = (size_t)wx_config_int(cfg, "http.body_max");
    opt->timeout_s = (unsigned)wx_config_int(cfg, "http.idle_seconds");
}

const char *wx_http_path(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    return uri != NULL ? evhttp_uri_get_path(uri) : NULL;
}

static const struct route *find_route(const struct wx_http *s, const char *path)
{
    size_t len = strlen(path);
    for (unsigned i = 0; i < s->nroutes; i++) {
        const struct route *r = &s->routes[i];
        if (r->prefix ? strncmp(path, r->path, r->len) == 0
                      : len == r->len && memcmp(path, r->path, len) == 0) {
            return r;
        }
    }
    return NULL;
}

static void dispatch(struct evhttp_request *req, void *arg)
{
    struct wx_http *s = arg;
    const char *path = wx_http_path(req);
    if (path == NULL) {
        wx_http_error(req, HTTP_BADREQUEST, "bad request URI");
        return;
    }
    const struct route *r = find_route(s, path[0] != '\0' ? path : "/");
    if (r == NULL) {
        wx_http_error(req, HTTP_NOTFOUND, "not found");
        return;
    }
    r->fn(req, r->arg);
}

static void healthz(struct evhttp_request *req, void *arg)
{
    struct wx_http *s = arg;
    const char *body = wx_hub_stopping(s->hub) ? "stopping\n" : "ok\n";
    wx_http_send(req, wx_hub_stopping(s->hub) ? 503 : HTTP_OK, "text/plain; charset=utf-8", body,
                 strlen(body));
}

/* Shutdown: stop accepting; answers already owed are the routes' business. */
static void on_stop(void *arg)
{
    struct wx_http *s = arg;
    if (s->sock != NULL) {
        evhttp_del_accept_socket(s->http, s->sock);
        s->sock = NULL;
    }
}

wx_http_t *wx_http_start(wx_hub_t *hub, const struct wx_http_options *opt, char *err, size_t errlen)
{
    assert(opt->body_max > 0 && opt->body_max <= WX_HTTP_BODY_MAX);
    struct wx_http *s = wx_calloc(1, sizeof *s);
    s->hub = hub;
    s->http = evhttp_new(wx_hub_base(hub));
    if (s->http == NULL) WX_FATAL("libevent: cannot create the HTTP server");
    evhttp_set_max_headers_size(s->http, WX_HTTP_HEADERS_MAX);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)opt->body_max);
    evhttp_set_timeout(s->http, (int)opt->timeout_s);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_default_content_type(s->http, "text/plain; charset=utf-8");
    evhttp_set_gencb(s->http, dispatch, s);

    struct sockaddr_storage ss;
    unsigned sslen = 0;
    if (wx_net_resolve(opt->listen, &ss, &sslen, err, errlen) != 0) goto fail;
    struct evconnlistener *l =
        evconnlistener_new_bind(wx_hub_base(hub), NULL, NULL,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sslen);
    s->sock = l != NULL ? evhttp_bind_listener(s->http, l) : NULL;
    if (s->sock == NULL) {
        if (l != NULL) evconnlistener_free(l);
        snprintf(err, errlen, "http.listen = %s: cannot listen: %s", opt->listen, strerror(errno));
        goto fail;
    }
    wx_net_local_address(evhttp_bound_socket_get_fd(s->sock), s->address, sizeof s->address);
    wx_http_route(s, "/healthz", false, healthz, s);
    struct wx_hub_adapter a = {.name = "http", .stop = on_stop, .arg = s};
    wx_hub_attach(hub, &a);
    printf("http listening on %s\n", s->address);
    fflush(stdout);
    WX_INFO("http: serving %s", s->address);
    return s;
fail:
    evhttp_free(s->http);
    free(s);
    return NULL;
}

void wx_http_free(wx_http_t *s)
{
    if (s == NULL) return;
    evhttp_free(s->http);
    free(s);
}

const char *wx_http_address(const wx_http_t *s)
{
    return s->address;
}

void wx_http_route(wx_http_t *s, const char *path, bool prefix, wx_http_handler fn, void *arg)
{
    assert(s->nroutes < ROUTES_MAX && strlen(path) < sizeof s->routes[0].path);
    struct route *r = &s->routes[s->nroutes++];
    snprintf(r->path, sizeof r->path, "%s", path);
    r->len = strlen(path);
    r->prefix = prefix;
    r->fn = fn;
    r->arg = arg;
}

void wx_http_send(struct evhttp_request *req, int status, const char *content_type,
                  const void *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    /* The body goes straight into the request's own output buffer, which evhttp_send_reply
     * sends as it would a buffer handed to it (that one it would copy in first). */
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    if (len > 0 && evbuffer_add(out, body, len) != 0) WX_FATAL("libevent: out of memory");
    evhttp_send_reply(req, status, NULL, NULL);
}

void wx_http_error(struct evhttp_request *req, int status, const char *message)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%s\n", message);
    wx_http_send(req, status, "text/plain; charset=utf-8", body,
                 n < (int)sizeof body ? (size_t)n : sizeof body - 1);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [p, end) into out ('+' is a space, as forms send it). */
static int decode(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    for (; p < end; p++) {
        char c = *p;
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (end - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0) return -2;
            c = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        }
        if (c == '\0' || n + 1 >= cap) return -2;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

int wx_http_query_param(const char *query, const char *name, char *out, size_t cap)
{
    assert(cap > 0);
    if (query == NULL) return -1;
    size_t nl = strlen(name);
    const char *p = query;
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp != NULL ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq != NULL && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            return decode(eq + 1, end, out, cap);
        }
        p = amp != NULL ? amp + 1 : end;
    }
    return -1;
}

const uint8_t *wx_http_body(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    if (*len == 0) return NULL;
    return evbuffer_pullup(in, -1);
}
