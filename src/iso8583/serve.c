/*
 * serve.c - the ISO 8583 server's loop: listener, durability notifications, the once-per-turn
 * ledger flush, signals and a clean shutdown. Connections themselves live in server.c.
 *
 * Durability drives the answers: the ledger's notify fd (an eventfd) becomes readable after
 * each group commit, and every connection then releases the answers whose seq is durable.
 * Submitting marks the loop turn; a zero-delay event activated then runs after the turn's
 * other callbacks and hands the turn's rows to the committer in one flush.
 */
#include "iso8583/server_int.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdlib.h>

#include "util/alloc.h"
#include "util/config.h"
#include "util/log.h"

#define LISTEN_BACKLOG     512
#define SHUTDOWN_DRAIN_SEC 2 /* longest wait for clients to read what they are owed */

int wx_iso_server_options_from_config(const struct wx_config *cfg,
                                      struct wx_iso_server_options *opt, char *err, size_t errlen)
{
    memset(opt, 0, sizeof *opt);
    opt->listen = wx_config_str(cfg, "iso8583.listen");
    if (wx_iso_dialect_parse(wx_config_str(cfg, "iso8583.dialect"), &opt->dialect) != 0) {
        snprintf(err, errlen, "iso8583.dialect: unknown dialect");
        return -1;
    }
    opt->framing = strcmp(wx_config_str(cfg, "iso8583.framing"), "ascii4") == 0
                       ? WX_ISO_FRAME_ASCII4
                       : WX_ISO_FRAME_LEN2;
    opt->frame_max = (size_t)wx_config_int(cfg, "iso8583.frame_max");
    opt->max_connections = (unsigned)wx_config_int(cfg, "iso8583.max_connections");
    opt->idle_seconds = (unsigned)wx_config_int(cfg, "iso8583.idle_seconds");
    return 0;
}

/* Resolves "HOST:PORT" or "[IPv6]:PORT" (already validated by the config schema). */
static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char *err,
                   size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hl = colon != NULL ? (size_t)(colon - listen) : 0;
    const char *h = listen;
    if (hl >= 2 && listen[0] == '[') {
        h++;
        hl -= 2;
    }
    if (colon == NULL || hl >= sizeof host) {
        snprintf(err, errlen, "iso8583.listen = %s: not HOST:PORT", listen);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        snprintf(err, errlen, "iso8583.listen = %s: %s", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    wx_iso_conn_accept(arg, fd);
}

/* Releases every connection's durable answers. Connections may close while doing so. */
static void release_all(struct iso_server *srv)
{
    uint64_t durable = wx_ledger_durable_seq(srv->ledger);
    struct iso_conn *c = srv->conns;
    while (c != NULL) {
        struct iso_conn *next = c->next; /* c may be freed */
        if (c->count > 0) wx_iso_conn_release(c, durable);
        c = next;
    }
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    /* Drain the eventfd before reading durable_seq, so no commit goes unnoticed. */
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN) {
        WX_WARN("iso8583: ledger notify fd: %s", strerror(errno));
    }
    release_all(arg);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct iso_server *srv = arg;
    srv->flush_scheduled = false;
    wx_ledger_flush(srv->ledger);
}

/* SIGINT/SIGTERM: stop accepting and reading, make every decision durable, send what is
 * owed, and leave the loop when the connections are done (or after SHUTDOWN_DRAIN_SEC). */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct iso_server *srv = arg;
    if (srv->stopping) return;
    WX_INFO("iso8583: signal %d: shutting down", (int)sig);
    srv->stopping = true;
    evconnlistener_disable(srv->listener);
    wx_ledger_sync(srv->ledger, wx_engine_last_seq(wx_ledger_engine(srv->ledger)));
    struct iso_conn *c = srv->conns;
    while (c != NULL) {
        struct iso_conn *next = c->next;
        c->closing = true;
        bufferevent_disable(c->bev, EV_READ);
        wx_iso_conn_release(c, wx_ledger_durable_seq(srv->ledger));
        c = next;
    }
    if (srv->nconns == 0) {
        event_base_loopbreak(srv->base);
        return;
    }
    struct timeval drain = {.tv_sec = SHUTDOWN_DRAIN_SEC, .tv_usec = 0};
    event_base_loopexit(srv->base, &drain);
}

/* Prints the bound address: "iso8583 listening on 127.0.0.1:8583". */
static void print_address(struct evconnlistener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    evutil_socket_t fd = evconnlistener_get_fd(l);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        return;
    }
    bool v6 = ss.ss_family == AF_INET6;
    printf("iso8583 listening on %s%s%s:%s\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
    fflush(stdout);
}

/* Creates the loop's events. Returns 0, or -1 with a message in err. */
static int server_start(struct iso_server *srv, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (resolve(srv->opt.listen, &ss, &sslen, err, errlen) != 0) return -1;
    srv->base = event_base_new();
    if (srv->base == NULL) {
        snprintf(err, errlen, "libevent: cannot create the event loop");
        return -1;
    }
    srv->listener =
        evconnlistener_new_bind(srv->base, on_accept, srv,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sslen);
    if (srv->listener == NULL) {
        snprintf(err, errlen, "iso8583.listen = %s: cannot listen: %s", srv->opt.listen,
                 strerror(errno));
        return -1;
    }
    srv->notify_ev = event_new(srv->base, wx_ledger_notify_fd(srv->ledger), EV_READ | EV_PERSIST,
                               on_notify, srv);
    srv->flush_ev = event_new(srv->base, -1, 0, on_flush, srv);
    srv->signal_ev[0] = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->signal_ev[1] = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    if (srv->notify_ev == NULL || srv->flush_ev == NULL || srv->signal_ev[0] == NULL ||
        srv->signal_ev[1] == NULL || event_add(srv->notify_ev, NULL) != 0 ||
        event_add(srv->signal_ev[0], NULL) != 0 || event_add(srv->signal_ev[1], NULL) != 0) {
        snprintf(err, errlen, "libevent: cannot register events");
        return -1;
    }
    return 0;
}

static void server_stop(struct iso_server *srv)
{
    while (srv->conns != NULL) {
        wx_iso_conn_free(srv->conns);
    }
    for (int i = 0; i < 2; i++) {
        if (srv->signal_ev[i] != NULL) event_free(srv->signal_ev[i]);
    }
    if (srv->flush_ev != NULL) event_free(srv->flush_ev);
    if (srv->notify_ev != NULL) event_free(srv->notify_ev);
    if (srv->listener != NULL) evconnlistener_free(srv->listener);
    if (srv->base != NULL) event_base_free(srv->base);
}

int wx_iso_serve(const struct wx_iso_server_options *opt, struct wx_ledger *ledger,
                 const wx_keys_t *keys, char *err, size_t errlen)
{
    assert(opt != NULL && ledger != NULL && keys != NULL);
    assert(opt->frame_max >= WX_ISO_FRAME_MIN && opt->frame_max <= WX_ISO_FRAME_MAX);
    struct iso_server *srv = wx_calloc(1, sizeof *srv);
    srv->opt = *opt;
    srv->ledger = ledger;
    srv->keys = keys;
    int rc = server_start(srv, err, errlen);
    if (rc == 0) {
        print_address(srv->listener);
        WX_INFO("iso8583: serving %s", opt->listen);
        event_base_dispatch(srv->base);
        wx_ledger_flush(srv->ledger);
        WX_INFO("iso8583: stopped");
    }
    server_stop(srv);
    free(srv);
    return rc;
}
