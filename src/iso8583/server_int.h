/*
 * server_int.h - the ISO 8583 server's shared state: the server (serve.c: listener,
 * signals, durability notifications, shutdown) and its connections (server.c: framing,
 * decoding, answers in order once durable, backpressure).
 *
 * Private to src/iso8583. Everything runs on one thread, the event loop's.
 */
#ifndef WX_ISO8583_SERVER_INT_H
#define WX_ISO8583_SERVER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "iso8583/iso8583.h"
#include "ledger/ledger.h"
#include "net/net.h"
#include "util/limits.h"

/* An answer waiting for its decision to be durable. Its bytes are in conn->pending. */
struct iso_waiting {
    uint64_t seq; /* journal seq that must be durable; 0: none */
    uint32_t len; /* framed bytes in conn->pending */
};

struct iso_server;

/* One switch connection. */
struct iso_conn {
    struct iso_server *srv;
    struct bufferevent *bev;
    uint64_t id;                  /* for logs: "conn 7" */
    struct iso_conn *prev, *next; /* the server's list of connections */
    struct evbuffer *pending;     /* framed answers not yet released, in request order */
    struct iso_waiting *ring;     /* WX_ISO_PIPELINE_MAX entries, head..head+count */
    unsigned head, count;         /* the waiting answers in ring */
    bool paused;                  /* reading stopped by backpressure */
    bool closing;                 /* no more requests: close once the answers are written */
};

struct iso_server {
    wx_hub_t *hub;
    struct event_base *base; /* the hub's */
    struct evconnlistener *listener;
    wx_ledger_t *ledger;
    const wx_keys_t *keys;
    struct wx_iso_server_options opt;
    struct iso_conn *conns; /* every open connection */
    unsigned nconns;
    uint64_t next_id;
    bool stopping;                       /* shutdown: no accepting, no reading */
    struct wx_iso_msg req, resp;         /* scratch for the frame in hand */
    struct wx_cmd cmd;                   /* scratch */
    uint8_t frame[4 + WX_ISO_FRAME_MAX]; /* scratch: a frame in or out */
};

/* Takes an accepted socket (closing it when the connection limit is reached). */
void wx_iso_conn_accept(struct iso_server *srv, evutil_socket_t fd);

/* Releases, in order, the answers of c whose seq is durable (<= durable). */
void wx_iso_conn_release(struct iso_conn *c, uint64_t durable);

/* Stops reading c; it closes once its answers are written. */
void wx_iso_conn_finish(struct iso_conn *c);

/* Closes c at once: its answers not yet written are dropped (decisions stand). */
void wx_iso_conn_free(struct iso_conn *c);

#endif
