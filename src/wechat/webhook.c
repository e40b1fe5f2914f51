/*
 * webhook.c - /wechat: where the WeChat platform delivers what followers send.
 *
 * GET is the platform's URL check (echostr back when the signature holds). POST carries one
 * message or event as XML, plain or in safe mode (AES inside a signed envelope); every
 * request is signed with the shared token, and a bad or missing signature gets 403 with
 * nothing processed.
 *
 * Two stages: checking the signatures, decrypting and parsing run on the HTTP I/O thread
 * that read the request (a stage of state per thread), so that this work spreads over the
 * cores; what the message means (dedup, the conversation, the ledger) runs on the hub's
 * loop, which the first stage hands an inbound message to. The platform gives up on an answer after
 * 5 s and sends the same message again (three more times), so each message is remembered for a
 * while and a retry gets the first answer. An answer that shows the ledger's state, or follows a
 * command (an unfollow unbinds), leaves only once that state is durable, as ISO 8583 answers do.
 */
#include "wechat/webhook_int.h"
#include "wechat/wechat.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

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
#define SPARE_MAX   64   /* inbound messages kept for reuse */

/* The query parameters the platform signs with. */
struct query {
    char signature[48], msg_signature[48];
    char timestamp[24], nonce[72], encrypt_type[8];
    char openid[WX_OPENID_MAX + 1];
    char echostr[512];
};

struct inbound;

/*
 * What, besides its text, makes an answer's bytes: a retry of the message is answered with
 * exactly the bytes of the first answer, rebuilt from this (kept with the text in the dedup
 * memory) on whichever I/O thread the retry arrived.
 */
struct reply_seed {
    int64_t create_time; /* the reply's CreateTime */
    bool aes;            /* sealed, as the first copy was */
    bool transfer;       /* hand over to the human agents (the text is then a note) */
    uint8_t random[WX_WECHAT_RANDOM_LEN];
    uint8_t nonce_random[8]; /* for a nonce of our own, when the request's cannot be used */
    char timestamp[24], nonce[72];
};

/* An answer waiting for the ledger to make seq durable, with every copy of the message. */
struct job {
    struct wx_webhook *w;
    struct job *next;
    uint64_t seq;
    uint32_t slot; /* in the dedup memory */
    struct inbound *waiters[WAITERS_MAX];
    unsigned nwaiters;
    struct event *deadline; /* the platform stops waiting at 5 s: answer before it does */
    bool late;              /* the deadline passed: the answer goes as a customer-service
                               message once durable */
    char openid[WX_OPENID_MAX + 1];
    struct reply_seed seed;
    size_t len;  /* of the reply's text; 0: nothing to say */
    char text[]; /* NUL-terminated */
};

/* What the I/O threads' stages need, one per thread. The envelope is only ever filled by
 * wx_wechat_parser_parse, which clears what it wrote before. */
struct stage {
    struct wx_wechat_crypt crypt; /* safe mode; valid when has_crypt */
    bool has_crypt;
    wx_wechat_parser_t *parser;
    struct wx_wechat_msg envelope;
    char why[200]; /* a refusal's reason, when it is built */
    char plain[WX_WECHAT_BODY_MAX + 64];
    char reply[WX_WECHAT_REPLY_MAX];
    char sealed[WX_WECHAT_REPLY_MAX * 2];
};

/*
 * One copy of a message, from its I/O thread to the hub's loop and back: checked, decrypted
 * and parsed there; decided here (reply text); turned into the HTTP answer there. Kept for
 * reuse: msg is only ever filled by wx_wechat_parser_parse (40 KiB that need no clearing).
 */
struct inbound {
    struct wx_hub_task task;
    struct inbound *next_spare;
    struct wx_webhook *w;
    wx_http_req_t *req;
    struct query q;
    bool aes;
    struct reply_seed seed;
    size_t reply_len; /* 0: nothing to say ("success") */
    char reply[WX_CHAT_TEXT_MAX];
    struct wx_wechat_msg msg;
};

struct wx_webhook {
    wx_hub_t *hub;
    wx_wechat_api_t *api; /* for answers that miss the platform's deadline; may be NULL */
    struct wx_webhook_options opt;
    bool has_crypt;        /* safe mode is configured */
    struct stage **stages; /* one per I/O thread */
    unsigned nstages;
    pthread_mutex_t spare_lock;
    struct inbound *spare; /* inbound messages for reuse */
    unsigned nspare;
    atomic_uint_fast64_t refused; /* counted on any thread */
    /* the hub's loop only, from here */
    wx_dedup_t *dedup;             /* reply texts, for the platform's retries */
    struct job *jobs, **jobs_tail; /* FIFO: seqs never decrease */
    unsigned njobs;
    struct wx_webhook_stats stats;
    wx_chat_t *chat;               /* the conversation: a dialogue per follower */
    wx_history_service_t *history; /* reads statements and transactions; NULL: none */
    struct history_wait *waits;    /* answers waiting for it */
    unsigned nwaits;
    wx_webhook_report_fn on_report; /* TEMPLATESENDJOBFINISH goes here; may be NULL */
    void *report_arg;
    /* random bytes for the encrypted replies, drawn RANDOM_POOL at a time (one RAND_bytes
     * call per reply was 3% of safe mode); the unused ones are wiped with the webhook */
    uint8_t random[RANDOM_POOL];
    size_t random_left; /* unused bytes at the end of random */
    uint8_t record[sizeof(struct reply_seed) + WX_CHAT_TEXT_MAX]; /* for the dedup memory */
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
    return wx_chat_options_from_config(cfg, &opt->chat, err, errlen);
}

/* ---- query -------------------------------------------------------------------------- */

/* Reads the parameters the platform signs with, in one pass over the query; any other is
 * skipped. Returns 0, or -1 when one is too long or badly encoded. */
static int parse_query(wx_http_req_t *req, struct query *q)
{
    const char *s = wx_http_query(req);
    memset(q, 0, sizeof *q);
    if (s == NULL) return 0;
    if (strlen(s) > WX_WECHAT_QUERY_MAX) return -1;
    const struct {
        const char *name;
        size_t len;
        char *out;
        size_t cap;
    } params[] = {
        {"signature", 9, q->signature, sizeof q->signature},
        {"msg_signature", 13, q->msg_signature, sizeof q->msg_signature},
        {"timestamp", 9, q->timestamp, sizeof q->timestamp},
        {"nonce", 5, q->nonce, sizeof q->nonce},
        {"encrypt_type", 12, q->encrypt_type, sizeof q->encrypt_type},
        {"openid", 6, q->openid, sizeof q->openid},
        {"echostr", 7, q->echostr, sizeof q->echostr},
    };
    unsigned seen = 0;
    for (const char *p = s; *p != '\0';) {
        const char *end = strchrnul(p, '&');
        const char *eq = memchr(p, '=', (size_t)(end - p));
        size_t nlen = eq != NULL ? (size_t)(eq - p) : 0;
        for (size_t i = 0; eq != NULL && i < sizeof params / sizeof params[0]; i++) {
            if (params[i].len != nlen || memcmp(p, params[i].name, nlen) != 0) continue;
            /* the first copy counts, as wx_http_query_param has it */
            if ((seen & 1u << i) == 0 &&
                wx_http_query_decode(eq + 1, end, params[i].out, params[i].cap) < 0) {
                return -1;
            }
            seen |= 1u << i;
            break;
        }
        p = *end == '&' ? end + 1 : end;
    }
    return 0;
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

/* Any thread. */
static void refuse(struct wx_webhook *w, wx_http_req_t *req, int status, const char *why)
{
    atomic_fetch_add_explicit(&w->refused, 1, memory_order_relaxed);
    WX_INFO("wechat: %d %s", status, why);
    wx_http_error(req, status, why);
}

/* GET: the platform checks the URL when it is saved; in every mode it signs plainly. */
static void verify_url(struct wx_webhook *w, wx_http_req_t *req, const struct query *q)
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

/* Fills m from the body: plain XML, or in safe/compatible mode the signed envelope's
 * decrypted content (a compatible body's plain copy is not trusted). Returns NULL or why
 * not, with *status the HTTP status to answer. On an I/O thread, with its stage. */
static const char *decode(struct stage *st, const struct query *q, const uint8_t *body, size_t len,
                          bool aes, struct wx_wechat_msg *m, int *status)
{
    struct wx_wechat_xml_error xe;
    *status = 400;
    if (!aes) {
        if (wx_wechat_parser_parse(st->parser, body, len, m, &xe) != 0) {
            snprintf(st->why, sizeof st->why, "%s", xe.why);
            return st->why;
        }
        return NULL;
    }
    if (!st->has_crypt) return "safe mode is not configured (wechat.aes_key)";
    if (wx_wechat_parser_parse(st->parser, body, len, &st->envelope, &xe) != 0) {
        snprintf(st->why, sizeof st->why, "%s", xe.why);
        return st->why;
    }
    if (!wx_wechat_msg_has(&st->envelope, "Encrypt")) return "no Encrypt element";
    if (q->msg_signature[0] == '\0') {
        *status = 403;
        return "missing msg_signature";
    }
    size_t plain_len = 0;
    int rc = wx_wechat_decrypt_msg(&st->crypt, q->msg_signature, q->timestamp, q->nonce,
                                   st->envelope.encrypt, st->plain, sizeof st->plain, &plain_len);
    if (rc == WX_WECHAT_EVALIDATE_SIGNATURE) *status = 403;
    if (rc != 0) return wx_wechat_strerror(rc);
    if (wx_wechat_parser_parse(st->parser, st->plain, plain_len, m, &xe) != 0) {
        snprintf(st->why, sizeof st->why, "inside Encrypt: %s", xe.why);
        return st->why;
    }
    return NULL;
}

/* ---- inbound messages --------------------------------------------------------------- */

static void on_inbound(struct wx_hub_task *t, bool cancelled);

/* Any thread. A spare one, or a new one (all zeros). */
static struct inbound *inbound_get(struct wx_webhook *w)
{
    pthread_mutex_lock(&w->spare_lock);
    struct inbound *in = w->spare;
    if (in != NULL) {
        w->spare = in->next_spare;
        w->nspare--;
    }
    pthread_mutex_unlock(&w->spare_lock);
    if (in == NULL) {
        in = wx_calloc(1, sizeof *in);
        in->w = w;
    }
    return in;
}

/* Any thread. Keeps it for reuse, up to SPARE_MAX. */
static void inbound_put(struct inbound *in)
{
    struct wx_webhook *w = in->w;
    pthread_mutex_lock(&w->spare_lock);
    bool keep = w->nspare < SPARE_MAX;
    if (keep) {
        in->next_spare = w->spare;
        w->spare = in;
        w->nspare++;
    }
    pthread_mutex_unlock(&w->spare_lock);
    if (!keep) free(in);
}

/* The platform's dedup key: the sender with MsgId, or for events the sender, time, event
 * and key (two events of one second differ in Event or EventKey). */
static size_t dedup_key(const struct wx_wechat_msg *m, char *out, size_t cap)
{
    int n;
    if (m->msg_id_text[0] != '\0') {
        n = snprintf(out, cap, "%s\n%s", m->from_user, m->msg_id_text);
    } else if (m->template_msg_id_text[0] != '\0') {
        /* Delivery reports: several can share a follower and a second. */
        n = snprintf(out, cap, "%s\nT%s", m->from_user, m->template_msg_id_text);
    } else {
        n = snprintf(out, cap, "%s\n%lld\n%d\n%s", m->from_user, (long long)m->create_time,
                     (int)m->event, m->event_key);
    }
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- answering (the hub's loop) --------------------------------------------------- */

static void on_reply(struct wx_hub_task *t, bool cancelled);

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

/* The answer's bytes besides its text, fixed by the first copy of a message. */
static void make_seed(struct wx_webhook *w, const struct inbound *in, struct reply_seed *seed)
{
    memset(seed, 0, sizeof *seed);
    seed->create_time = wx_now_ms() / 1000;
    seed->aes = in->aes;
    if (in->aes) {
        take_random(w, seed->random, sizeof seed->random);
        take_random(w, seed->nonce_random, sizeof seed->nonce_random);
    }
    snprintf(seed->timestamp, sizeof seed->timestamp, "%s", in->q.timestamp);
    snprintf(seed->nonce, sizeof seed->nonce, "%s", in->q.nonce);
}

/* Remembers the answer (seed and text) for the platform's retries. */
static void remember(struct wx_webhook *w, uint32_t slot, const struct reply_seed *seed,
                     const char *text, size_t len)
{
    assert(len <= WX_CHAT_TEXT_MAX);
    memcpy(w->record, seed, sizeof *seed);
    memcpy(w->record + sizeof *seed, text, len);
    wx_dedup_finish(w->dedup, slot, w->record, sizeof *seed + len);
}

/* Hands the reply back to the message's I/O thread, which builds the answer. */
static void send_reply(struct inbound *in, const struct reply_seed *seed, const char *text,
                       size_t len)
{
    assert(len < sizeof in->reply);
    in->seed = *seed;
    memcpy(in->reply, text, len);
    in->reply[len] = '\0';
    in->reply_len = len;
    in->task.run = on_reply;
    wx_http_post(in->req, &in->task);
}

static void refuse_inbound(struct wx_webhook *w, struct inbound *in, int status, const char *why)
{
    refuse(w, in->req, status, why);
    inbound_put(in);
}

static void add_waiter(struct job *j, struct inbound *in)
{
    if (j->nwaiters == WAITERS_MAX) {
        refuse_inbound(j->w, in, 503, "busy");
        return;
    }
    /* A request whose connection closes meanwhile stays valid until answered. */
    j->waiters[j->nwaiters++] = in;
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
    for (unsigned i = 0; i < j->nwaiters; i++)
        send_reply(j->waiters[i], &j->seed, "", 0);
    j->nwaiters = 0;
    remember(j->w, j->slot, &j->seed, "", 0);
    j->late = true;
    j->w->stats.late++;
}

static void job_free(struct job *j)
{
    for (unsigned i = 0; i < j->nwaiters; i++)
        inbound_put(j->waiters[i]);
    event_free(j->deadline);
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
            remember(w, j->slot, &j->seed, j->text, j->len);
            for (unsigned i = 0; i < j->nwaiters; i++) {
                send_reply(j->waiters[i], &j->seed, j->text, j->len);
            }
            j->nwaiters = 0;
        } else if (j->len > 0) {
            if (w->api == NULL ||
                wx_wechat_api_custom_text(w->api, j->openid, j->text, on_late_sent, NULL) != 0) {
                WX_WARN("wechat: a late answer cannot be sent (no platform API: wechat.secret)");
            }
        }
        job_free(j);
    }
    if (w->jobs == NULL) wx_hub_settle(w->hub);
}

/* Remembers the reply and sends it now, or once seq is durable. */
static void answer(struct wx_webhook *w, struct inbound *in, uint32_t slot, uint64_t seq,
                   const char *text, size_t len, bool transfer)
{
    struct reply_seed seed;
    make_seed(w, in, &seed);
    seed.transfer = transfer;
    if (wx_hub_is_durable(w->hub, seq)) {
        remember(w, slot, &seed, text, len);
        send_reply(in, &seed, text, len);
        return;
    }
    struct job *j = wx_calloc(1, sizeof *j + len + 1);
    j->w = w;
    j->seed = seed;
    j->seq = seq;
    j->slot = slot;
    j->len = len;
    memcpy(j->text, text, len);
    snprintf(j->openid, sizeof j->openid, "%s", in->msg.from_user);
    j->deadline = evtimer_new(wx_hub_base(w->hub), on_deadline, j);
    if (j->deadline == NULL) WX_FATAL("libevent: out of memory");
    struct timeval tv = {.tv_sec = w->opt.reply_deadline_ms / 1000,
                         .tv_usec = (w->opt.reply_deadline_ms % 1000) * 1000};
    evtimer_add(j->deadline, &tv);
    add_waiter(j, in);
    *w->jobs_tail = j;
    w->jobs_tail = &j->next;
    w->njobs++;
}

/* A retry of a message whose answer waits for the disk joins that answer. */
static void join_pending(struct wx_webhook *w, struct inbound *in, uint32_t slot)
{
    for (struct job *j = w->jobs; j != NULL; j = j->next) {
        if (j->slot == slot && !j->late) {
            add_waiter(j, in);
            return;
        }
    }
    /* The first copy's answer is being read from the history (milliseconds; the platform
     * retries only after 5 s): this copy may come again. */
    refuse_inbound(w, in, 503, "busy");
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
static uint64_t process(struct wx_webhook *w, const struct wx_wechat_msg *m,
                        struct wx_chat_reply *r)
{
    const wx_engine_t *e = wx_hub_engine(w->hub);
    struct wx_follower_view f;
    uint32_t customer = wx_engine_follower(e, m->from_user, &f) == 0 ? f.customer_id : 0;
    struct wx_chat_input in = {.kind = WX_CHAT_IN_TEXT,
                               .text = "",
                               .openid = m->from_user,
                               .msg_id = m->msg_id,
                               .customer_id = customer,
                               .now_ms = wx_now_ms()};
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
        } else if (m->event == WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH) {
            if (w->on_report != NULL) {
                w->on_report(w->report_arg, m->from_user, m->template_msg_id, m->status);
            }
            return 0;
        } else {
            return 0; /* SCAN, VIEW, LOCATION: nothing to say */
        }
        break;
    default:
        in.kind = WX_CHAT_IN_OTHER;
        break;
    }
    wx_chat_respond(w->chat, e, &in, r);
    if (r->has_cmd) {
        /* The cardholder confirmed a protective step (a card lock): the ledger decides it,
         * and the answer says what came of it once that is durable. */
        struct wx_result res;
        wx_hub_submit(w->hub, &r->cmd, &res);
        wx_chat_command_done(w->chat, e, &in, &res, r);
    }
    /* Every answer depends on ledger state: at least on whether the follower is bound. */
    return wx_hub_read_seq(w->hub);
}

/* ---- answers that read the history (statements, transactions, points) ---------------- */

/* An answer waiting for the history service: the projection is read on its thread, the
 * words are made back on the loop. */
struct history_wait {
    struct wx_history_job job; /* on the service's thread */
    struct wx_hub_task done;   /* then back on the loop */
    struct wx_webhook *w;
    struct history_wait *prev, *next; /* w->waits */
    struct inbound *in;
    uint32_t slot;
    uint64_t seq; /* the state the answer shows */
    struct wx_chat_input input;
    struct wx_chat_reply reply;
    struct wx_chat_history_found found;
};

static void wait_unlink(struct wx_webhook *w, struct history_wait *hw)
{
    if (hw->prev != NULL) hw->prev->next = hw->next;
    if (hw->next != NULL) hw->next->prev = hw->prev;
    if (w->waits == hw) w->waits = hw->next;
    w->nwaits--;
}

/* Back on the loop (cancelled when the hub has stopped: the request is only let go). */
static void on_history_done(struct wx_hub_task *t, bool cancelled)
{
    struct history_wait *hw =
        (struct history_wait *)((char *)t - offsetof(struct history_wait, done));
    struct wx_webhook *w = hw->w;
    wait_unlink(w, hw);
    if (cancelled) {
        wx_dedup_forget(w->dedup, hw->slot);
        inbound_put(hw->in);
    } else {
        wx_chat_history_answer(w->chat, wx_hub_engine(w->hub), &hw->input, &hw->reply.ask,
                               &hw->found, &hw->reply);
        answer(w, hw->in, hw->slot, hw->seq, hw->reply.text, strlen(hw->reply.text), false);
    }
    free(hw);
}

/* On the history service's thread. A cancelled wait is left to wx_webhook_free. */
static void on_history_job(wx_history_reader_t *r, struct wx_history_job *job, bool cancelled)
{
    struct history_wait *hw = (struct history_wait *)job;
    if (cancelled) return;
    wx_chat_history_read(r, &hw->reply.ask, &hw->found);
    hw->done.run = on_history_done;
    wx_hub_post(hw->w->hub, &hw->done);
}

/* Hands the reply's history question to the service; false when the webhook has none or
 * too many wait (the reply's own words, "try again shortly", then go as they are). */
static bool wait_for_history(struct wx_webhook *w, struct inbound *in, uint32_t slot, uint64_t seq,
                             const struct wx_chat_reply *r)
{
    if (w->history == NULL || w->nwaits >= WX_WECHAT_HISTORY_WAITS_MAX) return false;
    struct history_wait *hw = wx_calloc(1, sizeof *hw);
    hw->w = w;
    hw->in = in;
    hw->slot = slot;
    hw->seq = seq;
    hw->reply = *r;
    const struct wx_wechat_msg *m = &in->msg;
    hw->input = (struct wx_chat_input){.kind = WX_CHAT_IN_TEXT,
                                       .text = m->msg_type == WX_WECHAT_MSG_VOICE ? m->recognition
                                                                                  : m->content,
                                       .openid = m->from_user,
                                       .now_ms = wx_now_ms()};
    hw->next = w->waits;
    if (w->waits != NULL) w->waits->prev = hw;
    w->waits = hw;
    w->nwaits++;
    hw->job.run = on_history_job;
    wx_history_service_ask(w->history, &hw->job);
    return true;
}

/* POST, second stage (the hub's loop): what the message means. Takes in over. */
static void decide(struct wx_webhook *w, struct inbound *in)
{
    const struct wx_wechat_msg *m = &in->msg;
    if (wx_hub_stopping(w->hub)) {
        refuse_inbound(w, in, 503, "shutting down");
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
    case WX_DEDUP_DONE: {
        w->stats.repeats++;
        struct reply_seed seed;
        assert(stored_len >= sizeof seed);
        memcpy(&seed, stored, sizeof seed);
        send_reply(in, &seed, (const char *)stored + sizeof seed, stored_len - sizeof seed);
        return;
    }
    case WX_DEDUP_PENDING:
        w->stats.repeats++;
        join_pending(w, in, slot);
        return;
    case WX_DEDUP_FULL:
        refuse_inbound(w, in, 503, "too many messages in progress");
        return;
    case WX_DEDUP_NEW:
        break;
    }
    if (w->njobs >= WX_WECHAT_JOBS_MAX) {
        /* The journal is stalled and answers pile up: let the platform retry later. */
        wx_dedup_forget(w->dedup, slot);
        refuse_inbound(w, in, 503, "too many answers waiting for the journal");
        return;
    }
    static struct wx_chat_reply r; /* the loop's: 3 KiB */
    uint64_t seq = process(w, m, &r);
    const char *text = r.kind != WX_CHAT_REPLY_NONE ? r.text : "";
    w->stats.processed++;
    if (r.needs_history && wait_for_history(w, in, slot, seq, &r)) return;
    answer(w, in, slot, seq, text, strlen(text), r.kind == WX_CHAT_REPLY_TRANSFER);
}

/* POST, first stage (an I/O thread): one message, checked, decrypted and parsed. */
static void on_post(struct wx_webhook *w, wx_http_req_t *req, const struct query *q)
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
    struct inbound *in = inbound_get(w);
    int status;
    why = decode(w->stages[wx_http_thread(req)], q, body, len, aes, &in->msg, &status);
    const struct wx_wechat_msg *m = &in->msg;
    if (why == NULL && q->openid[0] != '\0' && strcmp(q->openid, m->from_user) != 0) {
        status = 400;
        why = "openid does not match FromUserName";
    }
    if (why == NULL && w->opt.account[0] != '\0' && strcmp(w->opt.account, m->to_user) != 0) {
        status = 400;
        why = "ToUserName is not this account";
    }
    if (why != NULL) {
        inbound_put(in);
        refuse(w, req, status, why);
        return;
    }
    in->req = req;
    in->q = *q;
    in->aes = aes;
    in->task.run = on_inbound;
    wx_hub_post(w->hub, &in->task);
}

/* POST, second stage (the hub's loop): what the message means, and the answer. */
static void on_inbound(struct wx_hub_task *t, bool cancelled)
{
    struct inbound *in = (struct inbound *)((char *)t - offsetof(struct inbound, task));
    if (cancelled) {
        inbound_put(in);
        return;
    }
    decide(in->w, in);
}

/* ---- the answer (an I/O thread) ------------------------------------------------------ */

/* Turns the reply's text into the passive reply XML, sealed when the first copy of the
 * message was. Returns the body's length (0: "success"), or -1 when it cannot be built. */
static int build_reply(struct stage *st, const struct inbound *in, const char **body)
{
    const struct reply_seed *seed = &in->seed;
    *body = "";
    if (in->reply_len == 0) return 0;
    int n = seed->transfer ? wx_wechat_reply_transfer_customer_service(&in->msg, seed->create_time,
                                                                       st->reply, sizeof st->reply)
                           : wx_wechat_reply_text(&in->msg, seed->create_time, in->reply, st->reply,
                                                  sizeof st->reply);
    if (n < 0) return -1;
    if (!seed->aes) {
        *body = st->reply;
        return n;
    }
    size_t m = 0;
    int rc = wx_wechat_encrypt_reply(&st->crypt, st->reply, (size_t)n, seed->timestamp, seed->nonce,
                                     seed->random, st->sealed, sizeof st->sealed, &m);
    if (rc == WX_WECHAT_EGEN_RETURN_XML) {
        /* The request's nonce cannot go back in a reply: sign the reply with our own. */
        char nonce[2 * sizeof seed->nonce_random + 1], ts[24];
        wx_hex_encode(seed->nonce_random, sizeof seed->nonce_random, nonce, sizeof nonce);
        snprintf(ts, sizeof ts, "%lld", (long long)seed->create_time);
        rc = wx_wechat_encrypt_reply(&st->crypt, st->reply, (size_t)n, ts, nonce, seed->random,
                                     st->sealed, sizeof st->sealed, &m);
    }
    if (rc != 0) return -1;
    *body = st->sealed;
    return (int)m;
}

static void on_reply(struct wx_hub_task *t, bool cancelled)
{
    struct inbound *in = (struct inbound *)((char *)t - offsetof(struct inbound, task));
    if (!cancelled) {
        const char *body;
        int n = build_reply(in->w->stages[wx_http_thread(in->req)], in, &body);
        if (n < 0) {
            WX_ERROR("wechat: reply does not fit; answering success");
            n = 0;
        }
        if (n == 0) {
            wx_http_send(in->req, 200, "text/plain; charset=utf-8", "success", 7);
        } else {
            wx_http_send(in->req, 200, "application/xml; charset=utf-8", body, (size_t)n);
        }
    }
    inbound_put(in);
}

static void on_request(wx_http_req_t *req, void *arg)
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
    switch (wx_http_method(req)) {
    case WX_HTTP_GET:
        verify_url(w, req, &q);
        return;
    case WX_HTTP_POST:
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
    return w->jobs != NULL || w->waits != NULL;
}

static struct stage *stage_new(const struct wx_webhook *w)
{
    struct stage *st = wx_calloc(1, sizeof *st);
    if (w->has_crypt) {
        int rc = wx_wechat_crypt_init(&st->crypt, w->opt.token, w->opt.aes_key, w->opt.appid);
        assert(rc == 0); /* the same key the webhook's own took */
        st->has_crypt = true;
    }
    /* A salt for expat's hash tables, drawn once: a parser drawing its own per body made a
     * getrandom call per message. */
    unsigned long salt = 0;
    while (salt == 0) { /* 0 would have expat draw its own again */
        wx_random_bytes(&salt, sizeof salt);
    }
    st->parser = wx_wechat_parser_new(salt);
    if (st->parser == NULL) WX_FATAL("out of memory (XML parser)");
    return st;
}

static void stage_free(struct stage *st)
{
    wx_wechat_parser_free(st->parser);
    if (st->has_crypt) wx_wechat_crypt_clear(&st->crypt);
    wx_wipe(st->plain, sizeof st->plain);
    free(st);
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
        struct wx_wechat_crypt check;
        int rc = wx_wechat_crypt_init(&check, opt->token, opt->aes_key, opt->appid);
        if (rc != 0) {
            snprintf(err, errlen, "wechat.aes_key: %s", wx_wechat_strerror(rc));
            free(w);
            return NULL;
        }
        wx_wechat_crypt_clear(&check);
        w->has_crypt = true;
    }
    if (opt->token[0] == '\0') WX_WARN("wechat: wechat.token is empty: /wechat answers 503");
    w->nstages = wx_http_threads(http);
    w->stages = wx_calloc(w->nstages, sizeof *w->stages);
    for (unsigned i = 0; i < w->nstages; i++)
        w->stages[i] = stage_new(w);
    pthread_mutex_init(&w->spare_lock, NULL);
    w->dedup = wx_dedup_new(opt->dedup_entries, WX_WECHAT_DEDUP_BYTES, opt->dedup_ttl_s);
    struct wx_chat_options chat = opt->chat;
    if (chat.nperiods == 0) wx_chat_options_default(&chat);
    w->chat = wx_chat_new(&chat);
    w->jobs_tail = &w->jobs;
    if (opt->history_db != NULL && opt->history_db[0] != '\0') {
        w->history =
            wx_history_service_start(opt->history_db, WX_WECHAT_HISTORY_EVERY_MS, err, errlen);
        if (w->history == NULL) {
            wx_webhook_free(w);
            return NULL;
        }
    }
    wx_http_route_threaded(http, "/wechat", false, on_request, w);
    struct wx_hub_adapter a = {
        .name = "wechat", .durable = on_durable, .stop = on_stop, .busy = is_busy, .arg = w};
    wx_hub_attach(hub, &a);
    return w;
}

void wx_webhook_free(wx_webhook_t *w)
{
    if (w == NULL) return;
    /* The service's last answers may be posted to the stopped hub: they are let go now, while
     * what they point to still exists; those it cancelled are let go here. */
    wx_history_service_stop(w->history);
    wx_hub_discard_posted(w->hub);
    while (w->waits != NULL) {
        struct history_wait *hw = w->waits;
        wait_unlink(w, hw);
        inbound_put(hw->in);
        free(hw);
    }
    while (w->jobs != NULL) {
        struct job *j = w->jobs;
        w->jobs = j->next;
        job_free(j);
    }
    wx_dedup_free(w->dedup);
    wx_chat_free(w->chat);
    for (unsigned i = 0; i < w->nstages; i++)
        stage_free(w->stages[i]);
    free(w->stages);
    while (w->spare != NULL) {
        struct inbound *in = w->spare;
        w->spare = in->next_spare;
        free(in);
    }
    pthread_mutex_destroy(&w->spare_lock);
    wx_wipe(w->random, sizeof w->random);
    free(w);
}

void wx_webhook_stats(const wx_webhook_t *w, struct wx_webhook_stats *out)
{
    *out = w->stats;
    out->refused = atomic_load(&w->refused);
}

void wx_webhook_on_report(wx_webhook_t *w, wx_webhook_report_fn fn, void *arg)
{
    w->on_report = fn;
    w->report_arg = arg;
}

void wx_webhook_set_links(wx_webhook_t *w, wx_chat_link_fn fn, void *arg)
{
    wx_chat_set_links(w->chat, fn, arg);
}
