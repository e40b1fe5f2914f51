/*
 * webhook.c - /wechat: where the WeChat platform delivers what followers send.
 *
 * GET is the platform's URL check (echostr back when the signature holds). POST carries one
 * message or event as XML, plain or in safe mode (AES inside a signed envelope); every
 * request is signed with the shared token, and a bad or missing signature gets 403 with
 * nothing processed. The platform gives up on an answer after 5 s and sends the same
 * message again (three more times), so each message is remembered for a while and a retry
 * gets the first answer. An answer that shows the ledger's state, or follows a command (an
 * unfollow unbinds), leaves only once that state is durable, as ISO 8583 answers do.
 */
#include "wechat/webhook_int.h"
#include "wechat/wechat.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "chat/chat.h"
#include "ledger/ledger.h"
#include "net/net.h"
#include "util/alloc.h"
#include "util/config.h"
#include "util/crypto.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "wechat/wechat.h"

#define WAITERS_MAX 4    /* one request and its three retries */
#define RANDOM_POOL 4096 /* random bytes drawn at once for the replies' prefixes */

/* The query parameters the platform signs with. */
struct query {
    char signature[48], msg_signature[48];
    char timestamp[24], nonce[72], encrypt_type[8];
    char openid[WX_OPENID_MAX + 1];
    char echostr[512];
};

/* An answer waiting for the ledger to make seq durable, with every copy of the request. */
struct job {
    struct wx_webhook *w;
    struct job *next;
    uint64_t seq;
    uint32_t slot; /* in the dedup memory */
    struct evhttp_request *reqs[WAITERS_MAX];
    unsigned nreqs;
    struct event *deadline; /* the platform stops waiting at 5 s: answer before it does */
    bool late;              /* the deadline passed: the answer goes as a customer-service
                               message once durable */
    char openid[WX_OPENID_MAX + 1];
    char *text; /* the reply's text, for that message; NULL when there is none */
    size_t len;
    char body[]; /* the HTTP body to answer */
};

struct wx_webhook {
    wx_hub_t *hub;
    wx_wechat_api_t *api; /* for answers that miss the platform's deadline; may be NULL */
    struct wx_webhook_options opt;
    struct wx_wechat_crypt crypt; /* safe mode; valid when has_crypt */
    bool has_crypt;
    wx_dedup_t *dedup;
    struct job *jobs, **jobs_tail; /* FIFO: seqs never decrease */
    unsigned njobs;
    struct wx_webhook_stats stats;
    wx_wechat_parser_t *parser; /* one expat parser for every body */
    /* random bytes for the encrypted replies, drawn RANDOM_POOL at a time (one RAND_bytes
     * call per reply was 3% of safe mode); the unused ones are wiped with the webhook */
    uint8_t random[RANDOM_POOL];
    size_t random_left; /* unused bytes at the end of random */
    /* scratch, one request at a time (the loop is single-threaded); msg and envelope are
     * only ever filled by wx_wechat_parser_parse, which clears what it wrote before */
    struct wx_wechat_msg msg, envelope;
    char why[200]; /* a refusal's reason, when it is built */
    char plain[WX_WECHAT_BODY_MAX + 64];
    char reply[WX_WECHAT_REPLY_MAX];
    char sealed[WX_WECHAT_REPLY_MAX * 2];
};

int wx_webhook_options_from_config(const struct wx_config *cfg, struct wx_webhook_options *opt,
                                   char *err, size_t errlen)
{
    memset(opt, 0, sizeof *opt);
    opt->token = wx_config_str(cfg, "wechat.token");
    opt->appid = wx_config_str(cfg, "wechat.appid");
    opt->aes_key = wx_config_str(cfg, "wechat.aes_key");
    opt->account = wx_config_str(cfg, "wechat.account");
    opt->timestamp_skew_s = (unsigned)wx_config_int(cfg, "wechat.timestamp_skew_s");
    opt->dedup_entries = (uint32_t)wx_config_int(cfg, "wechat.dedup_entries");
    opt->dedup_ttl_s = (unsigned)wx_config_int(cfg, "wechat.dedup_ttl_s");
    opt->reply_deadline_ms = (unsigned)wx_config_int(cfg, "wechat.reply_deadline_ms");
    opt->encrypted_only = strcmp(wx_config_str(cfg, "wechat.mode"), "plain") != 0;
    if (opt->encrypted_only && opt->aes_key[0] == '\0') {
        snprintf(err, errlen, "wechat.mode: %s mode needs wechat.aes_key",
                 wx_config_str(cfg, "wechat.mode"));
        return -1;
    }
    if (opt->aes_key[0] != '\0' && opt->appid[0] == '\0') {
        snprintf(err, errlen, "wechat.appid: required with wechat.aes_key (safe mode)");
        return -1;
    }
    return 0;
}

/* ---- query -------------------------------------------------------------------------- */

/* Copies one parameter; false when it is there but too long or badly encoded. */
static bool param(const char *q, const char *name, char *out, size_t cap)
{
    int n = wx_http_query_param(q, name, out, cap);
    if (n == -1) out[0] = '\0';
    return n >= -1;
}

static int parse_query(struct evhttp_request *req, struct query *q)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *s = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    memset(q, 0, sizeof *q);
    if (s == NULL) return 0;
    if (strlen(s) > WX_WECHAT_QUERY_MAX) return -1;
    bool ok = param(s, "signature", q->signature, sizeof q->signature) &&
              param(s, "msg_signature", q->msg_signature, sizeof q->msg_signature) &&
              param(s, "timestamp", q->timestamp, sizeof q->timestamp) &&
              param(s, "nonce", q->nonce, sizeof q->nonce) &&
              param(s, "encrypt_type", q->encrypt_type, sizeof q->encrypt_type) &&
              param(s, "openid", q->openid, sizeof q->openid) &&
              param(s, "echostr", q->echostr, sizeof q->echostr);
    return ok ? 0 : -1;
}

/* The plain signature over token, timestamp and nonce, and the timestamp's freshness. */
static const char *check_signature(const struct wx_webhook *w, const struct query *q)
{
    if (q->signature[0] == '\0' || q->timestamp[0] == '\0' || q->nonce[0] == '\0') {
        return "missing signature";
    }
    const char *parts[] = {w->opt.token, q->timestamp, q->nonce};
    if (!wx_wechat_signature_ok(parts, 3, q->signature)) {
        return "bad signature";
    }
    if (w->opt.timestamp_skew_s > 0) {
        char *end = NULL;
        long long ts = strtoll(q->timestamp, &end, 10);
        long long now = wx_now_ms() / 1000;
        if (*end != '\0' || ts < now - (long long)w->opt.timestamp_skew_s ||
            ts > now + (long long)w->opt.timestamp_skew_s) {
            return "timestamp out of range";
        }
    }
    return NULL;
}

static void refuse(struct wx_webhook *w, struct evhttp_request *req, int status, const char *why)
{
    w->stats.refused++;
    WX_INFO("wechat: %d %s", status, why);
    wx_http_error(req, status, why);
}

/* GET: the platform checks the URL when it is saved; in every mode it signs plainly. */
static void verify_url(struct wx_webhook *w, struct evhttp_request *req, const struct query *q)
{
    const char *why = check_signature(w, q);
    if (why != NULL) {
        refuse(w, req, 403, why);
        return;
    }
    if (q->echostr[0] == '\0') {
        refuse(w, req, 400, "missing echostr");
        return;
    }
    wx_http_send(req, 200, "text/plain; charset=utf-8", q->echostr, strlen(q->echostr));
}

/* ---- decoding ----------------------------------------------------------------------- */

/* Fills w->msg from the body: plain XML, or in safe/compatible mode the signed envelope's
 * decrypted content (a compatible body's plain copy is not trusted). Returns NULL or why
 * not, with *status the HTTP status to answer. */
static const char *decode(struct wx_webhook *w, const struct query *q, const uint8_t *body,
                          size_t len, bool aes, int *status)
{
    struct wx_wechat_xml_error xe;
    *status = 400;
    if (!aes) {
        if (wx_wechat_parser_parse(w->parser, body, len, &w->msg, &xe) != 0) {
            snprintf(w->why, sizeof w->why, "%s", xe.why);
            return w->why;
        }
        return NULL;
    }
    if (!w->has_crypt) return "safe mode is not configured (wechat.aes_key)";
    if (wx_wechat_parser_parse(w->parser, body, len, &w->envelope, &xe) != 0) {
        snprintf(w->why, sizeof w->why, "%s", xe.why);
        return w->why;
    }
    if (!wx_wechat_msg_has(&w->envelope, "Encrypt")) return "no Encrypt element";
    if (q->msg_signature[0] == '\0') {
        *status = 403;
        return "missing msg_signature";
    }
    size_t plain_len = 0;
    int rc = wx_wechat_decrypt_msg(&w->crypt, q->msg_signature, q->timestamp, q->nonce,
                                   w->envelope.encrypt, w->plain, sizeof w->plain, &plain_len);
    if (rc == WX_WECHAT_EVALIDATE_SIGNATURE) *status = 403;
    if (rc != 0) return wx_wechat_strerror(rc);
    if (wx_wechat_parser_parse(w->parser, w->plain, plain_len, &w->msg, &xe) != 0) {
        snprintf(w->why, sizeof w->why, "inside Encrypt: %s", xe.why);
        return w->why;
    }
    return NULL;
}

/* The platform's dedup key: the sender with MsgId, or for events the sender, time, event
 * and key (two events of one second differ in Event or EventKey). */
static size_t dedup_key(const struct wx_wechat_msg *m, char *out, size_t cap)
{
    int n;
    if (m->msg_id_text[0] != '\0') {
        n = snprintf(out, cap, "%s\n%s", m->from_user, m->msg_id_text);
    } else {
        n = snprintf(out, cap, "%s\n%lld\n%d\n%s", m->from_user, (long long)m->create_time,
                     (int)m->event, m->event_key);
    }
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- answering ---------------------------------------------------------------------- */

/* Sends body to every waiting copy of a request. */
static void send_body(struct evhttp_request *const *reqs, unsigned n, const char *body, size_t len)
{
    for (unsigned i = 0; i < n; i++) {
        if (reqs[i] == NULL) continue; /* that copy's connection closed */
        if (len == 0) {
            wx_http_send(reqs[i], 200, "text/plain; charset=utf-8", "success", 7);
        } else {
            wx_http_send(reqs[i], 200, "application/xml; charset=utf-8", body, len);
        }
    }
}

static void add_waiter(struct job *j, struct evhttp_request *req)
{
    if (j->nreqs == WAITERS_MAX) {
        wx_http_error(req, 503, "busy");
        return;
    }
    /* A request whose connection closes meanwhile stays valid: libevent 2.1 does not read
     * a connection while its request waits, and frees the request once it is answered. */
    j->reqs[j->nreqs++] = req;
}

static void on_late_sent(const struct wx_wechat_api_result *r, void *arg)
{
    (void)arg;
    if (r->cls != WX_WECHAT_API_OK) {
        WX_WARN("wechat: a late answer was not delivered (%s: %s)",
                wx_wechat_api_class_name(r->cls), r->errmsg);
    }
}

/*
 * The platform gives up on an answer after 5 s (then shows the follower an error). An answer
 * still waiting for the disk close to that is given as "success" now, which the platform
 * takes as "nothing to say" without retrying, and goes later as a customer-service message.
 */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct job *j = arg;
    WX_WARN("wechat: an answer waits for the journal past %u ms; it will follow as a message",
            j->w->opt.reply_deadline_ms);
    send_body(j->reqs, j->nreqs, "", 0);
    memset(j->reqs, 0, sizeof j->reqs);
    wx_dedup_finish(j->w->dedup, j->slot, "", 0);
    j->late = true;
    j->w->stats.late++;
}

static void job_free(struct job *j)
{
    event_free(j->deadline);
    free(j->text);
    free(j);
}

/* After a group commit: answers whose state is durable leave, in order. */
static void on_durable(void *arg, uint64_t durable)
{
    struct wx_webhook *w = arg;
    while (w->jobs != NULL && w->jobs->seq <= durable) {
        struct job *j = w->jobs;
        w->jobs = j->next;
        if (w->jobs == NULL) w->jobs_tail = &w->jobs;
        w->njobs--;
        if (!j->late) {
            wx_dedup_finish(w->dedup, j->slot, j->body, j->len);
            send_body(j->reqs, j->nreqs, j->body, j->len);
        } else if (j->text != NULL) {
            if (w->api == NULL ||
                wx_wechat_api_custom_text(w->api, j->openid, j->text, on_late_sent, NULL) != 0) {
                WX_WARN("wechat: a late answer cannot be sent (no platform API: wechat.secret)");
            }
        }
        job_free(j);
    }
    if (w->jobs == NULL) wx_hub_settle(w->hub);
}

/* Remembers the answer and sends it now, or once seq is durable. */
static void answer(struct wx_webhook *w, struct evhttp_request *req, uint32_t slot, uint64_t seq,
                   const struct wx_chat_reply *r, const char *body, size_t len)
{
    if (wx_hub_is_durable(w->hub, seq)) {
        wx_dedup_finish(w->dedup, slot, body, len);
        send_body(&req, 1, body, len);
        return;
    }
    struct job *j = wx_calloc(1, sizeof *j + len + 1);
    j->w = w;
    j->seq = seq;
    j->slot = slot;
    j->len = len;
    memcpy(j->body, body, len);
    snprintf(j->openid, sizeof j->openid, "%s", w->msg.from_user);
    if (r->kind == WX_CHAT_REPLY_TEXT) {
        size_t tl = strlen(r->text);
        j->text = wx_malloc(tl + 1);
        memcpy(j->text, r->text, tl + 1);
    }
    j->deadline = evtimer_new(wx_hub_base(w->hub), on_deadline, j);
    if (j->deadline == NULL) WX_FATAL("libevent: out of memory");
    struct timeval tv = {.tv_sec = w->opt.reply_deadline_ms / 1000,
                         .tv_usec = (w->opt.reply_deadline_ms % 1000) * 1000};
    evtimer_add(j->deadline, &tv);
    add_waiter(j, req);
    *w->jobs_tail = j;
    w->jobs_tail = &j->next;
    w->njobs++;
}

/* A retry of a message whose answer waits for the disk joins that answer. */
static void join_pending(struct wx_webhook *w, struct evhttp_request *req, uint32_t slot)
{
    for (struct job *j = w->jobs; j != NULL; j = j->next) {
        if (j->slot == slot && !j->late) {
            add_waiter(j, req);
            return;
        }
    }
    wx_http_error(req, 503, "busy"); /* cannot happen: a pending slot always has its job */
}

/* Takes n fresh random bytes from the pool (n <= RANDOM_POOL), refilling it when short;
 * the bytes handed out are wiped from the pool. */
static void take_random(struct wx_webhook *w, uint8_t *out, size_t n)
{
    assert(n <= RANDOM_POOL);
    if (w->random_left < n) {
        wx_random_bytes(w->random, sizeof w->random);
        w->random_left = sizeof w->random;
    }
    uint8_t *p = w->random + sizeof w->random - w->random_left;
    memcpy(out, p, n);
    wx_wipe(p, n);
    w->random_left -= n;
}

/* Turns the chat's reply into the passive reply XML, sealed when the request was. Returns
 * the body's length (0: "success"), or -1 when it cannot be built. */
static int build_reply(struct wx_webhook *w, const struct query *q, bool aes,
                       const struct wx_chat_reply *r, const char **body)
{
    *body = "";
    if (r->kind == WX_CHAT_REPLY_NONE) return 0;
    int n = wx_wechat_reply_text(&w->msg, wx_now_ms() / 1000, r->text, w->reply, sizeof w->reply);
    if (n < 0) return -1;
    if (!aes) {
        *body = w->reply;
        return n;
    }
    uint8_t random[WX_WECHAT_RANDOM_LEN];
    take_random(w, random, sizeof random);
    size_t m = 0;
    int rc = wx_wechat_encrypt_reply(&w->crypt, w->reply, (size_t)n, q->timestamp, q->nonce, random,
                                     w->sealed, sizeof w->sealed, &m);
    if (rc == WX_WECHAT_EGEN_RETURN_XML) {
        /* The request's nonce cannot go back in a reply: sign the reply with our own. */
        uint8_t nr[8];
        char nonce[2 * sizeof nr + 1], ts[24];
        take_random(w, nr, sizeof nr);
        wx_hex_encode(nr, sizeof nr, nonce, sizeof nonce);
        snprintf(ts, sizeof ts, "%lld", (long long)(wx_now_ms() / 1000));
        rc = wx_wechat_encrypt_reply(&w->crypt, w->reply, (size_t)n, ts, nonce, random, w->sealed,
                                     sizeof w->sealed, &m);
    }
    if (rc != 0) return -1;
    *body = w->sealed;
    return (int)m;
}

/* An unfollow: the platform's rules say the follower's data goes, so the binding goes.
 * Returns the seq of the decision. */
static uint64_t unbind(struct wx_webhook *w, const struct wx_wechat_msg *m)
{
    struct wx_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.kind = WX_CMD_FOLLOWER_UNBIND;
    cmd.time_ms = wx_now_ms();
    /* The platform's own key for an event is the sender and its time; the OpenID goes in as
     * a hash so that the key always fits WX_KEY_MAX whatever the OpenID's length. */
    uint8_t h[32];
    wx_sha256(m->from_user, strlen(m->from_user), h);
    int n = snprintf(cmd.key, sizeof cmd.key, "wx-unsub:%lld:%02x%02x%02x%02x%02x%02x%02x%02x",
                     (long long)m->create_time, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
    assert(n > 0 && n < (int)sizeof cmd.key);
    cmd.key_len = (uint8_t)n;
    snprintf(cmd.follower.openid, sizeof cmd.follower.openid, "%s", m->from_user);
    cmd.follower.via = WX_BIND_UNSUBSCRIBED;
    struct wx_result res;
    uint64_t seq = wx_hub_submit(w->hub, &cmd, &res);
    if (res.reason == WX_APPROVED) {
        WX_INFO("wechat: a follower unfollowed: unbound from customer %u", res.id);
    } else if (res.reason != WX_R_FOLLOWER_NOT_BOUND) {
        WX_ERROR("wechat: a follower unfollowed but stays bound: %s", wx_reason_str(res.reason));
    }
    return seq;
}

/* What the follower's message means for the ledger and the conversation. Returns the seq
 * the answer must wait for. */
static uint64_t process(struct wx_webhook *w, struct wx_chat_reply *r)
{
    const struct wx_wechat_msg *m = &w->msg;
    const wx_engine_t *e = wx_hub_engine(w->hub);
    struct wx_follower_view f;
    uint32_t customer = wx_engine_follower(e, m->from_user, &f) == 0 ? f.customer_id : 0;
    struct wx_chat_input in = {
        .kind = WX_CHAT_IN_TEXT, .text = "", .customer_id = customer, .now_ms = wx_now_ms()};
    memset(r, 0, sizeof *r);
    switch (m->msg_type) {
    case WX_WECHAT_MSG_TEXT:
        in.text = m->content;
        break;
    case WX_WECHAT_MSG_VOICE:
        in.text = m->recognition;
        break;
    case WX_WECHAT_MSG_EVENT:
        if (m->event == WX_WECHAT_EVENT_UNSUBSCRIBE) {
            return customer != 0 ? unbind(w, m) : 0;
        }
        if (m->event == WX_WECHAT_EVENT_SUBSCRIBE) {
            in.kind = WX_CHAT_IN_FOLLOW;
        } else if (m->event == WX_WECHAT_EVENT_CLICK) {
            in.kind = WX_CHAT_IN_MENU;
            in.text = m->event_key;
        } else {
            return 0; /* SCAN, VIEW, LOCATION, TEMPLATESENDJOBFINISH: nothing to say */
        }
        break;
    default:
        in.kind = WX_CHAT_IN_OTHER;
        break;
    }
    wx_chat_respond(e, &in, r);
    /* Every answer depends on ledger state: at least on whether the follower is bound. */
    return wx_hub_read_seq(w->hub);
}

/* POST: one message. */
static void on_post(struct wx_webhook *w, struct evhttp_request *req, const struct query *q)
{
    size_t len = 0;
    const uint8_t *body = wx_http_body(req, &len);
    const char *why = check_signature(w, q);
    if (why != NULL) {
        refuse(w, req, 403, why);
        return;
    }
    if (len > WX_WECHAT_BODY_MAX) {
        refuse(w, req, 413, "body too large");
        return;
    }
    bool aes = strcmp(q->encrypt_type, "aes") == 0;
    if (!aes && q->encrypt_type[0] != '\0' && strcmp(q->encrypt_type, "raw") != 0) {
        refuse(w, req, 400, "unknown encrypt_type");
        return;
    }
    /* In compatible and safe mode the platform encrypts every message: a plain one is
     * forged (the URL signature does not cover the body). */
    if (!aes && w->opt.encrypted_only) {
        refuse(w, req, 403, "messages must be encrypted (wechat.mode)");
        return;
    }
    int status;
    why = decode(w, q, body, len, aes, &status);
    if (why != NULL) {
        refuse(w, req, status, why);
        return;
    }
    const struct wx_wechat_msg *m = &w->msg;
    if (q->openid[0] != '\0' && strcmp(q->openid, m->from_user) != 0) {
        refuse(w, req, 400, "openid does not match FromUserName");
        return;
    }
    if (w->opt.account[0] != '\0' && strcmp(w->opt.account, m->to_user) != 0) {
        refuse(w, req, 400, "ToUserName is not this account");
        return;
    }
    char key[WX_OPENID_MAX + WX_WECHAT_FIELD_MAX + 64];
    size_t klen = dedup_key(m, key, sizeof key);
    uint32_t slot;
    const uint8_t *stored;
    size_t stored_len;
    /* A monotonic clock: a step of the wall clock must not expire every entry at once. */
    int64_t mono_ms = wx_mono_us() / 1000;
    switch (wx_dedup_begin(w->dedup, key, klen, mono_ms, &slot, &stored, &stored_len)) {
    case WX_DEDUP_DONE:
        w->stats.repeats++;
        send_body(&req, 1, (const char *)stored, stored_len);
        return;
    case WX_DEDUP_PENDING:
        w->stats.repeats++;
        join_pending(w, req, slot);
        return;
    case WX_DEDUP_FULL:
        refuse(w, req, 503, "too many messages in progress");
        return;
    case WX_DEDUP_NEW:
        break;
    }
    if (w->njobs >= WX_WECHAT_JOBS_MAX) {
        /* The journal is stalled and answers pile up: let the platform retry later. */
        wx_dedup_forget(w->dedup, slot);
        refuse(w, req, 503, "too many answers waiting for the journal");
        return;
    }
    struct wx_chat_reply r;
    uint64_t seq = process(w, &r);
    const char *out;
    int n = build_reply(w, q, aes, &r, &out);
    if (n < 0) {
        WX_ERROR("wechat: reply does not fit; answering success");
        n = 0;
        out = "";
    }
    w->stats.processed++;
    answer(w, req, slot, seq, &r, out, (size_t)n);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct wx_webhook *w = arg;
    struct query q;
    if (w->opt.token[0] == '\0') {
        refuse(w, req, 503, "wechat.token is not configured");
        return;
    }
    if (parse_query(req, &q) != 0) {
        refuse(w, req, 400, "bad query string");
        return;
    }
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
        verify_url(w, req, &q);
        return;
    case EVHTTP_REQ_POST:
        if (wx_hub_stopping(w->hub)) {
            refuse(w, req, 503, "shutting down");
            return;
        }
        on_post(w, req, &q);
        return;
    default:
        refuse(w, req, 405, "method not allowed");
        return;
    }
}

static void on_stop(void *arg)
{
    (void)arg;
}

static bool is_busy(void *arg)
{
    const struct wx_webhook *w = arg;
    return w->jobs != NULL;
}

wx_webhook_t *wx_webhook_start(wx_hub_t *hub, wx_http_t *http, wx_wechat_api_t *api,
                               const struct wx_webhook_options *opt, char *err, size_t errlen)
{
    assert(wx_hub_ledger(hub) != NULL && opt->reply_deadline_ms > 0);
    struct wx_webhook *w = wx_calloc(1, sizeof *w);
    w->hub = hub;
    w->api = api;
    w->opt = *opt;
    if (opt->aes_key[0] != '\0') {
        int rc = wx_wechat_crypt_init(&w->crypt, opt->token, opt->aes_key, opt->appid);
        if (rc != 0) {
            snprintf(err, errlen, "wechat.aes_key: %s", wx_wechat_strerror(rc));
            free(w);
            return NULL;
        }
        w->has_crypt = true;
    }
    if (opt->token[0] == '\0') WX_WARN("wechat: wechat.token is empty: /wechat answers 503");
    /* A salt for expat's hash tables, drawn once: a parser drawing its own per body made a
     * getrandom call per message. */
    unsigned long salt = 0;
    while (salt == 0) { /* 0 would have expat draw its own again */
        wx_random_bytes(&salt, sizeof salt);
    }
    w->parser = wx_wechat_parser_new(salt);
    if (w->parser == NULL) WX_FATAL("out of memory (XML parser)");
    w->dedup = wx_dedup_new(opt->dedup_entries, WX_WECHAT_DEDUP_BYTES, opt->dedup_ttl_s);
    w->jobs_tail = &w->jobs;
    wx_http_route(http, "/wechat", false, on_request, w);
    struct wx_hub_adapter a = {
        .name = "wechat", .durable = on_durable, .stop = on_stop, .busy = is_busy, .arg = w};
    wx_hub_attach(hub, &a);
    return w;
}

void wx_webhook_free(wx_webhook_t *w)
{
    if (w == NULL) return;
    while (w->jobs != NULL) {
        struct job *j = w->jobs;
        w->jobs = j->next;
        job_free(j);
    }
    wx_dedup_free(w->dedup);
    wx_wechat_parser_free(w->parser);
    wx_wechat_crypt_clear(&w->crypt);
    wx_wipe(w->random, sizeof w->random);
    free(w);
}

void wx_webhook_stats(const wx_webhook_t *w, struct wx_webhook_stats *out)
{
    *out = w->stats;
}
