/*
 * followers.c - the sandbox's WeChat users, the chat each has with the account, and the
 * page's long poll that shows new lines as they happen.
 *
 * Every change the page must see (a chat line, a follower added or changed, a new menu, an
 * SMS) takes the next value of one sandbox-wide sequence number. The page asks for "what
 * happened after SEQ" and either gets it at once or waits (up to SB_PAGE_WAIT_S) until
 * something does: simple, robust behind any proxy, and a missed answer only costs one round
 * trip.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/siphash.h"
#include "util/timeutil.h"

/* ---- the follower table ---------------------------------------------------------------------- */

_Static_assert((SB_FOLLOWER_SLOTS & (SB_FOLLOWER_SLOTS - 1)) == 0, "a power of two");
_Static_assert(SB_FOLLOWER_SLOTS > WX_SANDBOX_FOLLOWERS_MAX, "a free slot ends every probe");
_Static_assert(WX_SANDBOX_FOLLOWERS_MAX < UINT16_MAX, "index + 1 fits a slot");

/* Where openid's probe starts in the index (open addressing: followers are never removed). */
static size_t follower_home(const struct wx_sandbox *sb, const char *openid)
{
    return wx_siphash64(sb->hash_key, openid, strlen(openid)) & (SB_FOLLOWER_SLOTS - 1);
}

struct sb_follower *sb_follower_find(const struct wx_sandbox *sb, const char *openid)
{
    for (size_t i = follower_home(sb, openid);; i = (i + 1) & (SB_FOLLOWER_SLOTS - 1)) {
        uint16_t k = sb->follower_slots[i];
        if (k == 0) return NULL;
        if (strcmp(sb->followers[k - 1]->openid, openid) == 0) return sb->followers[k - 1];
    }
}

/* Adds f, not yet in the index, as sb->followers[sb->nfollowers]. */
static void follower_index(struct wx_sandbox *sb, struct sb_follower *f)
{
    assert(sb->nfollowers < WX_SANDBOX_FOLLOWERS_MAX);
    size_t i = follower_home(sb, f->openid);
    while (sb->follower_slots[i] != 0) {
        i = (i + 1) & (SB_FOLLOWER_SLOTS - 1);
    }
    sb->followers[sb->nfollowers++] = f;
    sb->follower_slots[i] = (uint16_t)sb->nfollowers;
}

int sb_follower_add(struct wx_sandbox *sb, const char *openid, const char *nickname, bool following,
                    struct sb_follower **out, char *err, size_t errlen)
{
    if (sb->nfollowers >= WX_SANDBOX_FOLLOWERS_MAX) {
        snprintf(err, errlen, "at most %d followers", WX_SANDBOX_FOLLOWERS_MAX);
        return -1;
    }
    if (openid != NULL && !sb_is_word(openid, WX_OPENID_MAX)) {
        snprintf(err, errlen, "openid: 1 to %d characters of [A-Za-z0-9_-]", WX_OPENID_MAX);
        return -1;
    }
    if (openid != NULL && sb_follower_find(sb, openid) != NULL) {
        snprintf(err, errlen, "openid %s exists already", openid);
        return -1;
    }
    size_t nick_len = nickname != NULL ? strlen(nickname) : 0;
    if (nick_len > WX_SANDBOX_NICKNAME_MAX || !sb_is_text(nickname ? nickname : "", nick_len) ||
        (nickname != NULL && strpbrk(nickname, "\t\r\n") != NULL)) {
        snprintf(err, errlen, "nickname: at most %d bytes of text on one line",
                 WX_SANDBOX_NICKNAME_MAX);
        return -1;
    }
    struct sb_follower *f = wx_calloc(1, sizeof *f);
    if (openid != NULL) {
        snprintf(f->openid, sizeof f->openid, "%s", openid);
    } else {
        do {
            sb_new_openid(f->openid);
        } while (sb_follower_find(sb, f->openid) != NULL);
    }
    if (nick_len > 0) {
        memcpy(f->nickname, nickname, nick_len + 1);
    } else {
        snprintf(f->nickname, sizeof f->nickname, "微信用户%zu", sb->nfollowers + 1);
    }
    f->following = following;
    f->active_ms = sb_now_ms(sb); /* as if they had just written: the 48 h window is open */
    follower_index(sb, f);
    sb_bump(sb, &sb->followers_seq);
    *out = f;
    return 0;
}

json_t *sb_follower_json(const struct sb_follower *f)
{
    return json_pack("{s:s,s:s,s:b,s:b,s:I}", "openid", f->openid, "nickname", f->nickname,
                     "following", f->following, "refuses", f->refuses, "last_seq",
                     (json_int_t)f->last_seq);
}

void sb_followers_free(struct wx_sandbox *sb)
{
    for (size_t i = 0; i < sb->nfollowers; i++) {
        struct sb_follower *f = sb->followers[i];
        for (unsigned k = 0; k < f->count; k++) {
            free(f->ring[(f->first + k) % WX_SANDBOX_MESSAGES_MAX].json);
        }
        free(f);
    }
    sb->nfollowers = 0;
    memset(sb->follower_slots, 0, sizeof sb->follower_slots);
}

/* ---- chat lines and the long poll ------------------------------------------------------------ */

static void answer_poll(struct sb_pending *p);

void sb_polls_wake(struct wx_sandbox *sb)
{
    struct sb_pending *p = sb->pending;
    while (p != NULL) {
        struct sb_pending *next = p->next;
        if (p->kind == SB_PENDING_POLL && p->after < sb->seq) answer_poll(p);
        p = next;
    }
}

void sb_bump(struct wx_sandbox *sb, uint64_t *which)
{
    *which = ++sb->seq;
    sb_polls_wake(sb);
}

/* Drops f's oldest chat line. */
static void chat_drop_oldest(struct wx_sandbox *sb, struct sb_follower *f)
{
    assert(f->count > 0);
    struct sb_msg *m = &f->ring[f->first];
    assert(f->bytes >= m->len && sb->chat_bytes >= m->len);
    f->bytes -= m->len;
    sb->chat_bytes -= m->len;
    free(m->json);
    memset(m, 0, sizeof *m);
    f->first = (f->first + 1) % WX_SANDBOX_MESSAGES_MAX;
    f->count--;
}

/* The follower whose history takes the most bytes. */
static struct sb_follower *largest_history(struct wx_sandbox *sb)
{
    struct sb_follower *big = NULL;
    for (size_t i = 0; i < sb->nfollowers; i++) {
        if (big == NULL || sb->followers[i]->bytes > big->bytes) big = sb->followers[i];
    }
    return big;
}

/* Keeps text (owned, len bytes), the line numbered seq, in f's chat and wakes the polls. */
static uint64_t chat_keep(struct wx_sandbox *sb, struct sb_follower *f, uint64_t seq, char *text,
                          size_t len)
{
    assert(len < WX_SANDBOX_CHAT_BYTES_MAX);
    if (f->count == WX_SANDBOX_MESSAGES_MAX) chat_drop_oldest(sb, f);
    while (sb->chat_bytes + len > WX_SANDBOX_CHAT_BYTES_MAX) {
        chat_drop_oldest(sb, largest_history(sb));
    }
    struct sb_msg *m = &f->ring[(f->first + f->count) % WX_SANDBOX_MESSAGES_MAX];
    m->seq = seq;
    m->json = text;
    m->len = len;
    f->count++;
    f->bytes += len;
    sb->chat_bytes += len;
    f->last_seq = seq;
    sb_polls_wake(sb);
    return seq;
}

uint64_t sb_chat_post(struct wx_sandbox *sb, struct sb_follower *f, json_t *msg)
{
    assert(json_is_object(msg));
    uint64_t seq = ++sb->seq;
    json_object_set_new(msg, "seq", json_integer((json_int_t)seq));
    json_object_set_new(msg, "time", json_integer(wx_now_ms()));
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (text == NULL) WX_FATAL("jansson: out of memory");
    return chat_keep(sb, f, seq, text, strlen(text));
}

uint64_t sb_chat_post_text(struct wx_sandbox *sb, struct sb_follower *f, struct sb_out *line)
{
    assert(line->len > 1);
    assert(line->p[0] == '{');
    uint64_t seq = ++sb->seq;
    SB_OUT_LIT(line, ",\"seq\":");
    sb_out_int(line, (int64_t)seq);
    SB_OUT_LIT(line, ",\"time\":");
    sb_out_int(line, wx_now_ms());
    SB_OUT_LIT(line, "}");
    /* The kept copy is exact: the chat's byte budget counts what is kept. */
    return chat_keep(sb, f, seq, wx_strndup(line->p, line->len), line->len);
}

/*
 * The events answer: {"seq":N,"followers_seq":F,"menu_seq":M,"sms_seq":S,"messages":[...],
 * "sms":[...]}, messages being the follower's chat lines after `after` (all of them kept when
 * after is 0) and sms the SMS after it (the newest SB_EVENTS_SMS_MAX).
 */
static void send_events(struct wx_sandbox *sb, wx_http_req_t *req, uint64_t after,
                        const char *openid)
{
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) WX_FATAL("libevent: out of memory");
    evbuffer_add_printf(out,
                        "{\"seq\":%llu,\"followers_seq\":%llu,\"menu_seq\":%llu,\"sms_seq\":%llu,"
                        "\"messages\":[",
                        (unsigned long long)sb->seq, (unsigned long long)sb->followers_seq,
                        (unsigned long long)sb->menu_seq, (unsigned long long)sb->sms_seq);
    const struct sb_follower *f = openid[0] != '\0' ? sb_follower_find(sb, openid) : NULL;
    bool first = true;
    for (unsigned k = 0; f != NULL && k < f->count; k++) {
        const struct sb_msg *m = &f->ring[(f->first + k) % WX_SANDBOX_MESSAGES_MAX];
        if (m->seq <= after) continue;
        if (!first) evbuffer_add(out, ",", 1);
        evbuffer_add(out, m->json, m->len);
        first = false;
    }
    evbuffer_add(out, "],\"sms\":", 8);
    sb_sms_events(sb, out, after);
    evbuffer_add(out, "}", 1);
    size_t len = evbuffer_get_length(out);
    wx_http_add_header(req, "Cache-Control", "no-store");
    wx_http_send(req, 200, "application/json; charset=utf-8", evbuffer_pullup(out, -1), len);
    evbuffer_free(out);
}

static void pending_unlink(struct sb_pending *p)
{
    struct wx_sandbox *sb = p->sb;
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        sb->pending = p->next;
    }
    if (p->next != NULL) p->next->prev = p->prev;
    if (p->kind == SB_PENDING_POLL) {
        sb->npolls--;
    } else {
        sb->nheld--;
    }
    event_free(p->timer);
    free(p);
}

static void answer_poll(struct sb_pending *p)
{
    send_events(p->sb, p->req, p->after, p->openid);
    pending_unlink(p);
}

/* A held call is let go: by now its caller has given up, as it would on the platform. A
 * slowed one is only let go this way at shutdown (its handler may not run any more). */
static void answer_held(struct sb_pending *p)
{
    if (p->kind == SB_PENDING_SLOW) {
        wx_http_error(p->req, 503, "the sandbox is stopping");
    } else {
        wx_http_error(p->req, 504, "held by the sandbox's timeout fault");
    }
    pending_unlink(p);
}

/* A slowed call's delay is over: it is handled now as if it had just come. */
static void resume_slow(struct sb_pending *p)
{
    struct wx_sandbox *sb = p->sb;
    wx_http_req_t *req = p->req;
    sb_handler fn = p->resume;
    pending_unlink(p);
    sb->resuming = true;
    fn(sb, req, wx_http_query(req));
    assert(!sb->resuming); /* the handler went through sb_api_begin */
}

static void on_pending_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sb_pending *p = arg;
    if (p->kind == SB_PENDING_POLL) {
        answer_poll(p);
    } else if (p->kind == SB_PENDING_SLOW) {
        resume_slow(p);
    } else {
        answer_held(p);
    }
}

struct sb_pending *sb_pending_add(struct wx_sandbox *sb, enum sb_pending_kind kind,
                                  wx_http_req_t *req, unsigned wait_ms)
{
    struct sb_pending *p = wx_calloc(1, sizeof *p);
    p->sb = sb;
    p->kind = kind;
    p->req = req;
    p->timer = evtimer_new(sb->base, on_pending_timer, p);
    struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
    if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) WX_FATAL("libevent: out of memory");
    p->next = sb->pending;
    if (sb->pending != NULL) sb->pending->prev = p;
    sb->pending = p;
    if (kind == SB_PENDING_POLL) {
        sb->npolls++;
    } else {
        sb->nheld++;
    }
    return p;
}

void sb_pending_release_all(struct wx_sandbox *sb)
{
    while (sb->pending != NULL) {
        struct sb_pending *p = sb->pending;
        if (p->kind == SB_PENDING_POLL) {
            answer_poll(p);
        } else {
            answer_held(p);
        }
    }
}

/* Parses a decimal query parameter within [0, max]; def when absent; -1 when bad. */
static int64_t query_number(const char *query, const char *name, int64_t def, int64_t max)
{
    char text[24];
    int n = wx_http_query_param(query, name, text, sizeof text);
    if (n == -1) return def;
    if (n <= 0 || n > 19 || strspn(text, "0123456789") != (size_t)n) return -1;
    unsigned long long v = strtoull(text, NULL, 10);
    return v <= (unsigned long long)max ? (int64_t)v : -1;
}

void sb_events_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    char openid[WX_OPENID_MAX + 1] = "";
    int64_t after = query_number(query, "after", 0, INT64_MAX);
    int64_t wait = query_number(query, "wait", SB_PAGE_WAIT_S, SB_PAGE_WAIT_S);
    int n = wx_http_query_param(query, "openid", openid, sizeof openid);
    if (after < 0 || wait < 0 || n == -2 || (n >= 0 && sb_follower_find(sb, openid) == NULL)) {
        sb_page_error(req, 400, "events: after=SEQ, wait=0..25 s, openid of a known follower");
        return;
    }
    if (n < 0) openid[0] = '\0';
    if ((uint64_t)after < sb->seq || wait == 0 || (uint64_t)after > sb->seq) {
        /* News, no wait asked, or a page from before a restart: answer at once. */
        send_events(sb, req, (uint64_t)after > sb->seq ? 0 : (uint64_t)after, openid);
        return;
    }
    if (sb->npolls >= WX_SANDBOX_WAITERS_MAX) {
        sb_page_error(req, 503, "too many pages waiting; retry");
        return;
    }
    struct sb_pending *p = sb_pending_add(sb, SB_PENDING_POLL, req, (unsigned)wait * 1000);
    p->after = (uint64_t)after;
    snprintf(p->openid, sizeof p->openid, "%s", openid);
}
