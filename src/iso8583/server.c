/*
 * server.c - one card-switch connection: frames in, decisions, answers out in order.
 *
 * A connection reads frames (2-byte big-endian or 4-ASCII-digit length, then the body),
 * decodes each, lets the host map it to a command, submits it to the ledger, and queues the
 * packed answer. Answers leave strictly in request order, each only once its journal row is
 * durable: the queue (conn->ring + conn->pending) is released from its head by
 * wx_iso_conn_release when the ledger's group commit advances.
 *
 * Limits on what the peer controls: the frame size (iso8583.frame_max; a bigger or empty
 * frame closes the connection), the answers waiting for disk (WX_ISO_PIPELINE_MAX) and the
 * unread answers (WX_ISO_OUTBUF_MAX): at either limit the connection is not read from until
 * it drains (backpressure), so a switch that stops reading cannot grow our memory. A frame
 * cut off by a closed connection is dropped whole: nothing of it was applied.
 */
#include "iso8583/server_int.h"

#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

_Static_assert(WX_ISO_FRAME_MAX <= WX_ISO_MSG_MAX, "a frame must fit the codec's message");

enum frame_rc { FRAME_INCOMPLETE = 0, FRAME_READY = 1, FRAME_BAD = -1 };

/* Reads the next frame's length from the input without consuming it. */
static enum frame_rc frame_length(struct iso_conn *c, size_t *len)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t hl = wx_iso_frame_header_len(c->srv->opt.framing);
    uint8_t h[4];
    if (evbuffer_get_length(in) < hl) return FRAME_INCOMPLETE;
    evbuffer_copyout(in, h, hl);
    if (wx_iso_frame_length(c->srv->opt.framing, h, len) != 0) {
        WX_WARN("iso8583 conn %llu: ascii4 length is not 4 digits; closing",
                (unsigned long long)c->id);
        return FRAME_BAD;
    }
    if (*len == 0 || *len > c->srv->opt.frame_max) {
        WX_WARN("iso8583 conn %llu: frame of %zu bytes (iso8583.frame_max %zu); closing",
                (unsigned long long)c->id, *len, c->srv->opt.frame_max);
        return FRAME_BAD;
    }
    return evbuffer_get_length(in) >= hl + *len ? FRAME_READY : FRAME_INCOMPLETE;
}

/* Packs srv->resp as a frame (iso8583.frame_max bounds what the switch sends; answers are
 * bounded by WX_ISO_FRAME_MAX) and queues it behind c's waiting answers (or sends it at once
 * when nothing waits and seq is durable). Returns 0, or -1 when it does not pack. */
static int enqueue(struct iso_conn *c, uint64_t seq)
{
    struct iso_server *srv = c->srv;
    size_t hl = wx_iso_frame_header_len(srv->opt.framing), len = 0;
    if (wx_iso_pack(srv->opt.dialect, &srv->resp, srv->frame + hl, sizeof srv->frame - hl, &len) !=
        0) {
        WX_ERROR("iso8583 conn %llu: a %04u answer does not pack", (unsigned long long)c->id,
                 (unsigned)srv->resp.mti);
        return -1;
    }
    wx_iso_frame_header(srv->opt.framing, len, srv->frame);
    if (c->count == 0 && wx_hub_is_durable(srv->hub, seq)) {
        bufferevent_write(c->bev, srv->frame, hl + len);
        return 0;
    }
    assert(c->count < WX_ISO_PIPELINE_MAX);
    evbuffer_add(c->pending, srv->frame, hl + len);
    struct iso_waiting *w = &c->ring[(c->head + c->count) % WX_ISO_PIPELINE_MAX];
    w->seq = seq;
    w->len = (uint32_t)(hl + len);
    c->count++;
    return 0;
}

/* Decodes, maps, decides and queues the answer of one frame body. Returns 0, or -1 when
 * the connection must close (an unanswerable message). */
static int handle(struct iso_conn *c, const uint8_t *body, size_t len)
{
    struct iso_server *srv = c->srv;
    struct wx_iso_error err;
    if (wx_iso_unpack(srv->opt.dialect, body, len, &srv->req, &err) != 0) {
        WX_WARN("iso8583 conn %llu: undecodable message (field %d: %s)", (unsigned long long)c->id,
                err.field, err.why ? err.why : "?");
        if (wx_iso_host_format_error(&srv->req, &err, &srv->resp) != 0) return -1;
        return enqueue(c, 0);
    }
    int act = wx_iso_host_request(srv->keys, &srv->req, wx_now_ms(), &srv->cmd, &srv->resp);
    if (act == WX_ISO_HOST_DROP) {
        WX_WARN("iso8583 conn %llu: MTI %04u is not a request; ignored", (unsigned long long)c->id,
                (unsigned)srv->req.mti);
        return 0;
    }
    if (act == WX_ISO_HOST_ANSWERED) return enqueue(c, 0);
    struct wx_result res;
    /* An answer that changed nothing (a balance inquiry, a refusal) may still show state
     * decided before it: the hub makes it wait for everything decided so far. */
    uint64_t seq = wx_hub_submit(srv->hub, &srv->cmd, &res);
    wx_iso_host_answer(&srv->req, &srv->cmd, &res, &srv->resp);
    return enqueue(c, seq);
}

/* True when c may take another request now. */
static bool may_read(const struct iso_conn *c)
{
    return !c->closing && c->count < WX_ISO_PIPELINE_MAX &&
           evbuffer_get_length(bufferevent_get_output(c->bev)) < WX_ISO_OUTBUF_MAX;
}

/* Handles every complete frame in c's input while backpressure allows; pauses reading
 * when it does not. May free c (a bad frame). */
static void process(struct iso_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t hl = wx_iso_frame_header_len(c->srv->opt.framing), len = 0;
    while (may_read(c)) {
        enum frame_rc rc = frame_length(c, &len);
        if (rc == FRAME_INCOMPLETE) break;
        if (rc == FRAME_BAD) {
            wx_iso_conn_finish(c);
            return;
        }
        evbuffer_drain(in, hl);
        evbuffer_remove(in, c->srv->frame, len);
        if (handle(c, c->srv->frame, len) != 0) {
            wx_iso_conn_finish(c);
            return;
        }
    }
    if (!c->closing && !may_read(c) && !c->paused) {
        c->paused = true;
        bufferevent_disable(c->bev, EV_READ);
    }
}

/* Resumes a paused connection once it is below its limits again. */
static void resume(struct iso_conn *c)
{
    if (c->paused && may_read(c)) {
        c->paused = false;
        bufferevent_enable(c->bev, EV_READ);
        process(c); /* frames already buffered get no new read event */
    }
}

/* Frees c when it is closing and everything it owes has been written. Returns true then. */
static bool close_if_done(struct iso_conn *c)
{
    if (!c->closing || c->count > 0) return false;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0); /* tell us when it is empty */
        return false;
    }
    wx_iso_conn_free(c);
    return true;
}

void wx_iso_conn_release(struct iso_conn *c, uint64_t durable)
{
    while (c->count > 0 && c->ring[c->head].seq <= durable) {
        struct iso_waiting *w = &c->ring[c->head];
        evbuffer_remove_buffer(c->pending, bufferevent_get_output(c->bev), w->len);
        c->head = (c->head + 1) % WX_ISO_PIPELINE_MAX;
        c->count--;
    }
    if (close_if_done(c)) return;
    resume(c);
}

void wx_iso_conn_finish(struct iso_conn *c)
{
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    close_if_done(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct iso_conn *c = arg;
    if (close_if_done(c)) return;
    resume(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct iso_conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        WX_INFO("iso8583 conn %llu: idle (or not reading) for %u s; closing",
                (unsigned long long)c->id, c->srv->opt.idle_seconds);
        wx_iso_conn_free(c);
    } else if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        /* The switch is done sending (or gone): every request already taken is answered.
         * Frames still held back by backpressure at that moment are dropped, unapplied:
         * the switch gets no answer for them and will repeat or reverse them. */
        WX_DEBUG("iso8583 conn %llu: end of input", (unsigned long long)c->id);
        wx_iso_conn_finish(c);
    } else {
        WX_INFO("iso8583 conn %llu: connection error; closing", (unsigned long long)c->id);
        wx_iso_conn_free(c);
    }
}

void wx_iso_conn_accept(struct iso_server *srv, evutil_socket_t fd)
{
    if (srv->stopping || srv->nconns >= srv->opt.max_connections) {
        if (srv->stopping) {
            WX_INFO("iso8583: connection refused (shutting down)");
        } else {
            WX_WARN("iso8583: connection refused (iso8583.max_connections %u reached)",
                    srv->opt.max_connections);
        }
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct iso_conn *c = wx_calloc(1, sizeof *c);
    c->srv = srv;
    c->id = ++srv->next_id;
    c->ring = wx_calloc(WX_ISO_PIPELINE_MAX, sizeof *c->ring);
    c->pending = evbuffer_new();
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->pending == NULL || c->bev == NULL) WX_FATAL("libevent: out of memory");
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, WX_ISO_INBUF_MAX);
    bufferevent_setwatermark(c->bev, EV_WRITE, WX_ISO_OUTBUF_MAX / 2, 0);
    struct timeval idle = {.tv_sec = srv->opt.idle_seconds, .tv_usec = 0};
    /* Idle: nothing read for that long, or answers that could not be written for that long
     * (a switch that stopped reading is not waited for forever). */
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = srv->conns;
    if (srv->conns != NULL) srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    WX_DEBUG("iso8583 conn %llu: open (%u connections)", (unsigned long long)c->id, srv->nconns);
}

void wx_iso_conn_free(struct iso_conn *c)
{
    struct iso_server *srv = c->srv;
    if (c->prev != NULL) c->prev->next = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    if (srv->conns == c) srv->conns = c->next;
    srv->nconns--;
    WX_DEBUG("iso8583 conn %llu: closed", (unsigned long long)c->id);
    bufferevent_free(c->bev);
    evbuffer_free(c->pending);
    free(c->ring);
    free(c);
    if (srv->stopping && srv->nconns == 0) wx_hub_settle(srv->hub);
}
