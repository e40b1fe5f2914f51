/*
 * serve.c - the ISO 8583 server on the hub's loop: the listener, durability releases and
 * its part of the shutdown. Connections themselves live in server.c.
 *
 * The hub tells the server after each group commit; every connection then releases the
 * answers whose seq is durable. On shutdown the server stops accepting and reading, and
 * the hub waits until every connection has written what it owes (or a few seconds).
 */
#include "iso8583/server_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/alloc.h"
#include "util/config.h"
#include "util/log.h"

#define LISTEN_BACKLOG 512

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

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    wx_iso_conn_accept(arg, fd);
}

/* After a group commit: every connection releases its durable answers (and may close). */
static void on_durable(void *arg, uint64_t durable)
{
    struct iso_server *srv = arg;
    struct iso_conn *c = srv->conns;
    while (c != NULL) {
        struct iso_conn *next = c->next; /* c may be freed */
        /* Even with nothing waiting: a closing connection closes once it owes nothing. */
        if (c->count > 0 || c->closing) wx_iso_conn_release(c, durable);
        c = next;
    }
}

/* Shutdown: stop accepting and reading; the hub then makes everything durable and calls
 * on_durable, and each connection closes once its answers are written. */
static void on_stop(void *arg)
{
    struct iso_server *srv = arg;
    WX_INFO("iso8583: shutting down (%u connections)", srv->nconns);
    srv->stopping = true;
    evconnlistener_disable(srv->listener);
    for (struct iso_conn *c = srv->conns; c != NULL; c = c->next) {
        c->closing = true;
        bufferevent_disable(c->bev, EV_READ);
    }
}

static bool is_busy(void *arg)
{
    const struct iso_server *srv = arg;
    return srv->nconns > 0;
}

struct iso_server *wx_iso_server_start(wx_hub_t *hub, const struct wx_iso_server_options *opt,
                                       char *err, size_t errlen)
{
    assert(opt->frame_max >= WX_ISO_FRAME_MIN && opt->frame_max <= WX_ISO_FRAME_MAX);
    assert(wx_hub_ledger(hub) != NULL && wx_hub_keys(hub) != NULL);
    struct sockaddr_storage ss;
    unsigned sslen = 0;
    if (wx_net_resolve(opt->listen, &ss, &sslen, err, errlen) != 0) return NULL;
    struct iso_server *srv = wx_calloc(1, sizeof *srv);
    srv->hub = hub;
    srv->base = wx_hub_base(hub);
    srv->ledger = wx_hub_ledger(hub);
    srv->keys = wx_hub_keys(hub);
    srv->opt = *opt;
    srv->listener =
        evconnlistener_new_bind(srv->base, on_accept, srv,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sslen);
    if (srv->listener == NULL) {
        snprintf(err, errlen, "iso8583.listen = %s: cannot listen: %s", opt->listen,
                 strerror(errno));
        free(srv);
        return NULL;
    }
    char addr[64];
    wx_net_local_address(evconnlistener_get_fd(srv->listener), addr, sizeof addr);
    printf("iso8583 listening on %s\n", addr);
    fflush(stdout);
    WX_INFO("iso8583: serving %s", addr);
    struct wx_hub_adapter a = {
        .name = "iso8583", .durable = on_durable, .stop = on_stop, .busy = is_busy, .arg = srv};
    wx_hub_attach(hub, &a);
    return srv;
}

void wx_iso_server_free(struct iso_server *srv)
{
    if (srv == NULL) return;
    while (srv->conns != NULL) {
        wx_iso_conn_free(srv->conns);
    }
    evconnlistener_free(srv->listener);
    free(srv);
}
