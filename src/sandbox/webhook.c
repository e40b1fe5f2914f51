/*
 * webhook.c - what a follower does on the phone, sent to the bank's webhook exactly as the
 * platform sends it.
 *
 * A message or event becomes the platform's XML (CDATA strings, ToUserName = the account's
 * gh_ id, FromUserName = the OpenID, CreateTime in seconds, a 64-bit MsgId for messages),
 * wrapped for the account's mode: plain; compat (the plain fields and <Encrypt>); safe (only
 * ToUserName and <Encrypt>). The query carries signature, timestamp, nonce and openid, plus
 * encrypt_type=aes and msg_signature outside plain mode (vectors/wechat/README.md §2-3).
 *
 * Delivery follows the platform's rule: an attempt unanswered within the timeout (5 s) is
 * dropped and the very same bytes go again, three attempts in all. After the last, the phone
 * shows "该公众号暂时无法提供服务，请稍后再试" as the real client does.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

#define RETRY_GAP_MS  1000 /* after a refused connection: the next attempt waits this long */
#define LABEL_MAX     256  /* bytes of a location's label */
#define EVENT_KEY_MAX 128  /* bytes of a menu key or a QR scene */

/* One message on its way to the webhook, with everything needed to send it again. */
struct sb_delivery {
    struct wx_sandbox *sb;
    struct sb_delivery *prev, *next;
    char openid[WX_OPENID_MAX + 1];
    uint64_t line_seq; /* the chat line it carries (status lines refer to it); 0: none */
    bool show_reply;   /* the phone shows the answer (not for unsubscribe, VIEW, job events) */
    bool in_fetch;     /* an attempt is with the fetcher */
    unsigned attempt;  /* attempts started */
    char *url;         /* webhook URL with the signed query */
    char *body;        /* the XML, as sent every time */
    size_t body_len;
    struct event *timer; /* the first attempt's delay, or the gap before a retry */
};

/* ---- the XML --------------------------------------------------------------------------------- */

/* Appends <![CDATA[s]]>, splitting any "]]>" inside s across two sections. */
static void cdata(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, "<![CDATA[", 9);
    const char *p;
    while ((p = strstr(s, "]]>")) != NULL) {
        evbuffer_add(b, s, (size_t)(p - s) + 2);
        evbuffer_add(b, "]]><![CDATA[", 12);
        s = p + 2;
    }
    evbuffer_add(b, s, strlen(s));
    evbuffer_add(b, "]]>", 3);
}

static void field_text(struct evbuffer *b, const char *name, const char *value)
{
    evbuffer_add_printf(b, "<%s>", name);
    cdata(b, value);
    evbuffer_add_printf(b, "</%s>\n", name);
}

/* The common head: ToUserName, FromUserName, CreateTime, MsgType. */
static void xml_head(struct evbuffer *b, const struct wx_sandbox *sb, const char *openid,
                     int64_t now_s, const char *msg_type)
{
    evbuffer_add(b, "<xml>", 5);
    field_text(b, "ToUserName", sb->account);
    field_text(b, "FromUserName", openid);
    evbuffer_add_printf(b, "<CreateTime>%lld</CreateTime>\n", (long long)now_s);
    field_text(b, "MsgType", msg_type);
}

/* Writes the message for an action (already checked) after the head. */
static void xml_action(struct evbuffer *b, const struct wx_sandbox *sb, const struct sb_action *a,
                       const char *event, const char *media_id, uint64_t msg_id)
{
    if (strcmp(a->type, "text") == 0) {
        field_text(b, "Content", a->content);
    } else if (strcmp(a->type, "image") == 0) {
        char url[256];
        snprintf(url, sizeof url, "%s/sandbox/media/%s", sb->origin, media_id);
        field_text(b, "PicUrl", url);
        field_text(b, "MediaId", media_id);
    } else if (strcmp(a->type, "location") == 0) {
        evbuffer_add_printf(b,
                            "<Location_X>%.6f</Location_X>\n<Location_Y>%.6f</Location_Y>\n"
                            "<Scale>15</Scale>\n",
                            a->lat, a->lng);
        field_text(b, "Label", a->label != NULL ? a->label : "");
    } else {
        field_text(b, "Event", event);
        if (strcmp(event, "subscribe") == 0 && a->key != NULL && a->key[0] != '\0') {
            char key[EVENT_KEY_MAX + 16];
            snprintf(key, sizeof key, "qrscene_%s", a->key);
            field_text(b, "EventKey", key);
            field_text(b, "Ticket",
                       "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2tIVVNBQUEAAA");
        } else if (strcmp(event, "SCAN") == 0) {
            field_text(b, "EventKey", a->key);
            field_text(b, "Ticket",
                       "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2tIVVNBQUEAAA");
        } else if (strcmp(event, "CLICK") == 0) {
            field_text(b, "EventKey", a->key);
        } else if (strcmp(event, "VIEW") == 0) {
            field_text(b, "EventKey", a->url);
            evbuffer_add_printf(b, "<MenuId>%u</MenuId>\n", 439342175u);
        }
    }
    if (msg_id != 0) evbuffer_add_printf(b, "<MsgId>%llu</MsgId>\n", (unsigned long long)msg_id);
    evbuffer_add(b, "</xml>", 6);
}

/* ---- signing and wrapping -------------------------------------------------------------------- */

/*
 * Turns the plain XML in `plain` into what goes on the wire for the account's mode, and the
 * signed URL. Returns 0, or -1 when encryption fails (logged).
 */
static int wrap(struct wx_sandbox *sb, struct sb_delivery *d, struct evbuffer *plain, int64_t now_s)
{
    size_t len = evbuffer_get_length(plain);
    const char *xml = (const char *)evbuffer_pullup(plain, -1);
    char ts[24], nonce[16], sig[WX_WECHAT_SIGNATURE_LEN + 1], msig[WX_WECHAT_SIGNATURE_LEN + 1];
    uint32_t r;
    wx_random_bytes(&r, sizeof r);
    snprintf(ts, sizeof ts, "%lld", (long long)now_s);
    snprintf(nonce, sizeof nonce, "%u", 1000000000u + r % 3000000000u);
    const char *parts[4] = {sb->crypt.token, ts, nonce, NULL};
    wx_wechat_signature(parts, 3, sig);
    char sep = strchr(sb->webhook_url, '?') != NULL ? '&' : '?';
    struct evbuffer *url = evbuffer_new(), *body = evbuffer_new();
    if (url == NULL || body == NULL) WX_FATAL("libevent: out of memory");
    evbuffer_add_printf(url, "%s%csignature=%s&timestamp=%s&nonce=%s&openid=%s", sb->webhook_url,
                        sep, sig, ts, nonce, d->openid);
    int rc = 0;
    if (sb->mode == WX_SANDBOX_PLAIN) {
        evbuffer_add(body, xml, len);
    } else {
        size_t cap = wx_wechat_encrypt_cap(&sb->crypt, len), elen;
        char *enc = wx_malloc(cap);
        uint8_t random[WX_WECHAT_RANDOM_LEN];
        wx_random_bytes(random, sizeof random);
        rc = wx_wechat_encrypt(&sb->crypt, xml, len, random, enc, cap, &elen);
        if (rc != 0) {
            WX_ERROR("sandbox: cannot encrypt a message: %s", wx_wechat_strerror(rc));
        } else {
            parts[3] = enc;
            wx_wechat_signature(parts, 4, msig);
            evbuffer_add_printf(url, "&encrypt_type=aes&msg_signature=%s", msig);
            if (sb->mode == WX_SANDBOX_COMPAT) {
                evbuffer_add(body, xml, len - strlen("</xml>"));
            } else {
                evbuffer_add(body, "<xml>", 5);
                field_text(body, "ToUserName", sb->account);
            }
            field_text(body, "Encrypt", enc);
            evbuffer_add(body, "</xml>", 6);
        }
        free(enc);
    }
    if (rc == 0) {
        d->url = wx_strndup((const char *)evbuffer_pullup(url, -1), evbuffer_get_length(url));
        d->body_len = evbuffer_get_length(body);
        d->body = wx_strndup((const char *)evbuffer_pullup(body, -1), d->body_len);
    }
    evbuffer_free(url);
    evbuffer_free(body);
    return rc == 0 ? 0 : -1;
}

/* ---- delivery -------------------------------------------------------------------------------- */

static void attempt(struct sb_delivery *d);

static void delivery_free(struct sb_delivery *d)
{
    struct wx_sandbox *sb = d->sb;
    assert(!d->in_fetch);
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else {
        sb->deliveries = d->next;
    }
    if (d->next != NULL) d->next->prev = d->prev;
    assert(sb->ndeliveries > 0);
    sb->ndeliveries--;
    if (d->timer != NULL) event_free(d->timer);
    free(d->url);
    free(d->body);
    free(d);
}

/* A status line on the follower's chat, for the bubble line_seq refers to. */
static void post_status(struct sb_delivery *d, const char *status)
{
    struct sb_follower *f = sb_follower_find(d->sb, d->openid);
    if (f == NULL || d->line_seq == 0) return;
    sb_chat_post(d->sb, f,
                 json_pack("{s:s,s:s,s:I,s:s,s:i,s:i}", "from", "system", "type", "status", "ref",
                           (json_int_t)d->line_seq, "status", status, "attempt", (int)d->attempt,
                           "attempts", (int)d->sb->webhook_attempts));
}

/* No answer came in any attempt: the phone says what the real client says. */
static void give_up(struct sb_delivery *d)
{
    struct wx_sandbox *sb = d->sb;
    sb->stats.webhook_failed++;
    WX_WARN("sandbox: webhook gave no answer in %u attempts", d->attempt);
    post_status(d, "failed");
    struct sb_follower *f = sb_follower_find(sb, d->openid);
    if (f != NULL && d->show_reply) sb_reply_unavailable(sb, f, "the webhook did not answer");
    delivery_free(d);
}

static void on_answer(const struct wx_fetch_response *resp, void *arg)
{
    struct sb_delivery *d = arg;
    struct wx_sandbox *sb = d->sb;
    d->in_fetch = false;
    if (resp->status == WX_FETCH_CANCELLED || sb->stopping) {
        delivery_free(d);
        return;
    }
    if (resp->status == WX_FETCH_OK || resp->status == WX_FETCH_TOO_LARGE) {
        struct sb_follower *f = sb_follower_find(sb, d->openid);
        if (f != NULL && d->show_reply && resp->status == WX_FETCH_OK && resp->http_status == 200) {
            sb_reply_show(sb, f, resp->body, resp->body_len);
        } else if (f != NULL && d->show_reply) {
            char why[64];
            snprintf(why, sizeof why, "the webhook answered HTTP %ld%s", resp->http_status,
                     resp->status == WX_FETCH_TOO_LARGE ? " with too large a body" : "");
            sb_reply_unavailable(sb, f, why);
        }
        if (d->attempt > 1) post_status(d, "delivered");
        delivery_free(d);
        return;
    }
    WX_INFO("sandbox: webhook attempt %u/%u: %s", d->attempt, sb->webhook_attempts,
            wx_fetch_status_name(resp->status));
    if (d->attempt >= sb->webhook_attempts) {
        give_up(d);
        return;
    }
    sb->stats.webhook_retries++;
    post_status(d, "retrying");
    if (resp->status == WX_FETCH_TIMEOUT) {
        attempt(d); /* the platform re-sends as soon as it stops waiting */
    } else {
        unsigned gap =
            sb->webhook_timeout_ms < RETRY_GAP_MS ? sb->webhook_timeout_ms : RETRY_GAP_MS;
        struct timeval tv = {.tv_sec = gap / 1000, .tv_usec = (gap % 1000) * 1000};
        evtimer_add(d->timer, &tv);
    }
}

static void attempt(struct sb_delivery *d)
{
    struct wx_sandbox *sb = d->sb;
    static const char *const headers[] = {"User-Agent: Mozilla/4.0", "Accept: */*", NULL};
    struct wx_fetch_request req = {
        .method = "POST",
        .url = d->url,
        .headers = headers,
        .body = d->body,
        .body_len = d->body_len,
        .content_type = "text/xml",
        .timeout_ms = sb->webhook_timeout_ms,
    };
    d->attempt++;
    sb->stats.webhook_attempts++;
    int rc = wx_fetch_start(sb->fetch, &req, on_answer, d);
    if (rc != 0) {
        WX_ERROR("sandbox: webhook request refused: %s", wx_fetch_strerror(rc));
        give_up(d);
        return;
    }
    d->in_fetch = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt(arg);
}

/* Starts delivering plain (the message XML) for follower openid after delay_ms. */
static int deliver(struct wx_sandbox *sb, const char *openid, struct evbuffer *plain,
                   uint64_t line_seq, bool show_reply, unsigned delay_ms)
{
    if (sb->ndeliveries >= WX_SANDBOX_DELIVERIES_MAX) return -1;
    struct sb_delivery *d = wx_calloc(1, sizeof *d);
    d->sb = sb;
    snprintf(d->openid, sizeof d->openid, "%s", openid);
    d->line_seq = line_seq;
    d->show_reply = show_reply;
    d->timer = evtimer_new(sb->base, on_timer, d);
    if (d->timer == NULL) WX_FATAL("libevent: out of memory");
    d->next = sb->deliveries;
    if (sb->deliveries != NULL) sb->deliveries->prev = d;
    sb->deliveries = d;
    sb->ndeliveries++;
    if (wrap(sb, d, plain, wx_now_ms() / 1000) != 0) {
        delivery_free(d);
        return -1;
    }
    sb->stats.webhook_messages++;
    if (delay_ms == 0) {
        attempt(d);
    } else {
        struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
        evtimer_add(d->timer, &tv);
    }
    return 0;
}

void sb_deliveries_free(struct wx_sandbox *sb)
{
    while (sb->deliveries != NULL) {
        delivery_free(sb->deliveries);
    }
}

void sb_template_finish_later(struct wx_sandbox *sb, const char *openid, uint64_t msgid)
{
    /* Checked before the XML is written too: at the bank's peak rate most reports go this way,
     * and deliver would refuse them only after the work. */
    if (sb->ndeliveries >= WX_SANDBOX_DELIVERIES_MAX) {
        WX_WARN("sandbox: TEMPLATESENDJOBFINISH dropped: too many deliveries in flight");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) WX_FATAL("libevent: out of memory");
    xml_head(b, sb, openid, wx_now_ms() / 1000 + sb->template_finish_ms / 1000, "event");
    field_text(b, "Event", "TEMPLATESENDJOBFINISH");
    evbuffer_add_printf(b, "<MsgID>%llu</MsgID>\n", (unsigned long long)msgid);
    field_text(b, "Status", "success");
    evbuffer_add(b, "</xml>", 6);
    if (deliver(sb, openid, b, 0, false, sb->template_finish_ms) != 0) {
        WX_WARN("sandbox: TEMPLATESENDJOBFINISH dropped: too many deliveries in flight");
    }
    evbuffer_free(b);
}

/* ---- a follower's action --------------------------------------------------------------------- */

struct act_plan {
    const char *msg_type; /* text, image, location, event */
    const char *event;    /* Event for events */
    const char *media_id; /* image */
    bool follows;         /* the action changes following to this... */
    bool changes_follow;  /* ...when set */
    bool show_reply;
    json_t *line; /* the chat line, or NULL */
};

static int reject(int *status, int code, char *err, size_t errlen, const char *why)
{
    *status = code;
    snprintf(err, errlen, "%s", why);
    return -1;
}

/* Checks a text field: 1..max bytes of text (0 allowed when optional). */
static bool text_ok(const char *s, size_t max, bool optional)
{
    if (s == NULL) return optional;
    size_t n = strlen(s);
    return (n > 0 || optional) && n <= max && sb_is_text(s, n);
}

/* Message kinds: text, image, location. */
static int plan_message(struct wx_sandbox *sb, const struct sb_action *a, struct act_plan *p,
                        int *status, char *err, size_t errlen)
{
    p->show_reply = true;
    p->msg_type = a->type;
    if (strcmp(a->type, "text") == 0) {
        if (!text_ok(a->content, WX_SANDBOX_TEXT_MAX, false)) {
            return reject(status, 400, err, errlen, "content: 1 to 2048 bytes of text");
        }
        p->line = json_pack("{s:s,s:s,s:s}", "from", "user", "type", "text", "content", a->content);
    } else if (strcmp(a->type, "image") == 0) {
        const char *id = a->media_id != NULL && a->media_id[0] ? a->media_id : SB_BUILTIN_MEDIA_ID;
        const struct sb_media *m = sb_is_word(id, SB_MEDIA_ID_LEN) ? sb_media_find(sb, id) : NULL;
        if (m == NULL || strcmp(m->type, "image") != 0) {
            return reject(status, 400, err, errlen, "media_id: not an image the sandbox holds");
        }
        p->media_id = m->id;
        p->line = json_pack("{s:s,s:s,s:s}", "from", "user", "type", "image", "media_id", m->id);
    } else {
        if (!isfinite(a->lat) || !isfinite(a->lng) || fabs(a->lat) > 90 || fabs(a->lng) > 180 ||
            !text_ok(a->label, LABEL_MAX, true)) {
            return reject(status, 400, err, errlen,
                          "location: lat -90..90, lng -180..180, label up to 256 bytes");
        }
        p->line = json_pack("{s:s,s:s,s:f,s:f,s:s}", "from", "user", "type", "location", "lat",
                            a->lat, "lng", a->lng, "label", a->label != NULL ? a->label : "");
    }
    return 0;
}

/* Events: subscribe (or SCAN when following already), unsubscribe, CLICK, VIEW. */
static int plan_event(const struct sb_follower *f, const struct sb_action *a, struct act_plan *p,
                      int *status, char *err, size_t errlen)
{
    const char *t = a->type;
    p->msg_type = "event";
    p->show_reply = true;
    if (strcmp(t, "subscribe") == 0 || strcmp(t, "scan") == 0) {
        if (!text_ok(a->key, EVENT_KEY_MAX, true) || (a->key != NULL && strchr(a->key, ' '))) {
            return reject(status, 400, err, errlen, "scene: up to 128 bytes, no spaces");
        }
        bool scan = f->following;
        if (scan && (a->key == NULL || a->key[0] == '\0')) {
            return reject(status, 409, err, errlen, "already following");
        }
        p->event = scan ? "SCAN" : "subscribe";
        p->changes_follow = !scan;
        p->follows = true;
    } else if (strcmp(t, "unsubscribe") == 0) {
        if (!f->following) return reject(status, 409, err, errlen, "not following");
        p->event = "unsubscribe";
        p->changes_follow = true;
        p->show_reply = false; /* the platform drops answers to an unsubscribe */
    } else if (strcmp(t, "click") == 0) {
        if (!text_ok(a->key, EVENT_KEY_MAX, false)) {
            return reject(status, 400, err, errlen, "key: 1 to 128 bytes");
        }
        p->event = "CLICK";
    } else {
        if (!text_ok(a->url, SB_URL_MAX, false) || strncmp(a->url, "http", 4) != 0) {
            return reject(status, 400, err, errlen, "url: an http(s) URL of up to 1024 bytes");
        }
        p->event = "VIEW";
        p->show_reply = false; /* the phone opens the page; an answer is not shown */
    }
    p->line =
        json_pack("{s:s,s:s,s:s,s:s*,s:s*}", "from", "user", "type", "event", "event", p->event,
                  "key", a->key, "url", strcmp(p->event, "VIEW") == 0 ? a->url : NULL);
    return 0;
}

int64_t sb_follower_act(struct wx_sandbox *sb, struct sb_follower *f, const struct sb_action *a,
                        uint64_t *msg_id, int *status, char *err, size_t errlen)
{
    static const char *const messages[] = {"text", "image", "location"};
    static const char *const events[] = {"subscribe", "scan", "unsubscribe", "click", "view"};
    struct act_plan p = {0};
    bool is_msg = false, is_event = false;
    for (size_t i = 0; a->type != NULL && i < 3; i++)
        is_msg = is_msg || strcmp(a->type, messages[i]) == 0;
    for (size_t i = 0; a->type != NULL && i < 5; i++)
        is_event = is_event || strcmp(a->type, events[i]) == 0;
    if (!is_msg && !is_event) {
        return reject(status, 400, err, errlen,
                      "type: text, image, location, subscribe, scan, unsubscribe, click or view");
    }
    bool subscribing = strcmp(a->type, "subscribe") == 0 || strcmp(a->type, "scan") == 0;
    if (!f->following && !subscribing) {
        return reject(status, 409, err, errlen, "follow the account first (关注后才能发消息)");
    }
    int rc = is_msg ? plan_message(sb, a, &p, status, err, errlen)
                    : plan_event(f, a, &p, status, err, errlen);
    if (rc != 0) return -1;
    if (sb->ndeliveries >= WX_SANDBOX_DELIVERIES_MAX) {
        json_decref(p.line);
        return reject(status, 503, err, errlen, "too many messages on their way; retry");
    }
    *msg_id = is_msg ? sb->next_msgid++ : 0;
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) WX_FATAL("libevent: out of memory");
    xml_head(b, sb, f->openid, wx_now_ms() / 1000, p.msg_type);
    xml_action(b, sb, a, p.event, p.media_id, *msg_id);
    if (*msg_id != 0) {
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)*msg_id);
        json_object_set_new(p.line, "msg_id", json_string(id));
    }
    if (p.changes_follow) {
        f->following = p.follows;
        sb_bump(sb, &sb->followers_seq);
    }
    if (strcmp(a->type, "unsubscribe") != 0) f->active_ms = sb_now_ms(sb);
    uint64_t seq = sb_chat_post(sb, f, p.line);
    rc = deliver(sb, f->openid, b, seq, p.show_reply, 0);
    evbuffer_free(b);
    if (rc != 0) return reject(status, 500, err, errlen, "the message could not be encrypted");
    return (int64_t)seq;
}
