/*
 * report.c - WeChat's delivery reports (TEMPLATESENDJOBFINISH) and what they decide: whether
 * the SMS must follow a holder's template message.
 *
 * Once every WeChat send of an alert has settled, the holder's accepted template messages are
 * watched: a "success" report for any of them ends the watch with no SMS; failure reports for
 * all of them, or no success within alerts.sms_fallback_s, send the SMS.
 *
 * A report may come before its watch begins: before the platform's answer to the send has
 * been read, or while another of the alert's messages is still being tried. Such reports are
 * kept, up to EARLY_MAX of them and no longer than the fallback delay, and the watch reads
 * them when it begins. Beyond that bound an early report is forgotten, and the SMS goes:
 * needless, never missing.
 */
#include "notify/dispatch_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util/alloc.h"
#include "util/siphash.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ---- early reports ------------------------------------------------------------------------- */

#define EARLY_SIZE (1u << EARLY_BITS)
#define EARLY_NONE UINT32_MAX

static uint64_t openid_hash(const char *s)
{
    return wx_fnv1a64(WX_FNV1A64_START, s, strlen(s));
}

static uint32_t *early_head(struct wx_notify *n, uint64_t msgid)
{
    return &n->early_buckets[(msgid * 0x9E3779B97F4A7C15ull) >> (64 - EARLY_BITS)];
}

static void early_unlink(struct wx_notify *n, uint32_t ix)
{
    uint32_t *p = early_head(n, n->early[ix].msgid);
    while (*p != ix) {
        assert(*p != EARLY_NONE);
        p = &n->early[*p].next;
    }
    *p = n->early[ix].next;
    n->early[ix].msgid = 0;
}

/* Keeps a report no watch wants yet; the oldest kept makes room. */
static void early_keep(struct wx_notify *n, const char *openid, uint64_t msgid, const char *status)
{
    if (msgid == 0) return;
    if (n->early == NULL) {
        n->early = wx_calloc(EARLY_SIZE, sizeof *n->early);
        n->early_buckets = wx_malloc(EARLY_SIZE * sizeof *n->early_buckets);
        memset(n->early_buckets, 0xff, EARLY_SIZE * sizeof *n->early_buckets);
    }
    uint32_t ix = n->early_next++ & (EARLY_SIZE - 1);
    if (n->early[ix].msgid != 0) early_unlink(n, ix);
    struct early_report *e = &n->early[ix];
    e->msgid = msgid;
    e->to_hash = openid_hash(openid);
    e->at_ms = wx_now_ms();
    snprintf(e->status, sizeof e->status, "%s", status);
    uint32_t *head = early_head(n, msgid);
    e->next = *head;
    *head = ix;
}

/* Takes the report kept for msgid to `to`, if one came within the fallback delay. */
static bool early_take(struct wx_notify *n, uint64_t msgid, const char *to, char *status,
                       size_t cap)
{
    if (n->early == NULL) return false;
    for (uint32_t ix = *early_head(n, msgid); ix != EARLY_NONE; ix = n->early[ix].next) {
        struct early_report *e = &n->early[ix];
        if (e->msgid != msgid) continue;
        bool fresh = e->to_hash == openid_hash(to) &&
                     wx_now_ms() - e->at_ms <= (int64_t)n->opt.sms_fallback_ms;
        snprintf(status, cap, "%s", e->status);
        early_unlink(n, ix);
        return fresh;
    }
    return false;
}

static bool report_apply(struct wx_notify *n, const char *openid, uint64_t msgid,
                         const char *status);

/* A new watch hears the reports that came before it. Each may end it, so they are taken
 * first and heard after. */
static void apply_early(struct wx_notify *n, struct watch *w)
{
    if (n->early == NULL) return;
    struct {
        uint64_t msgid;
        char to[WX_OPENID_MAX + 1];
        char status[sizeof n->early[0].status];
    } got[WX_FOLLOWERS_PER_CUSTOMER];
    unsigned count = 0;
    for (unsigned i = 0; i < w->n; i++) {
        const struct watch_item *it = &w->items[i];
        if (early_take(n, it->ref.msgid, it->to, got[count].status, sizeof got[count].status)) {
            got[count].msgid = it->ref.msgid;
            memcpy(got[count].to, it->to, sizeof got[count].to);
            count++;
        }
    }
    for (unsigned i = 0; i < count; i++)
        report_apply(n, got[i].to, got[i].msgid, got[i].status);
}

/* ---- watches -------------------------------------------------------------------------------- */

static size_t wref_bucket(const struct wx_notify *n, uint64_t msgid)
{
    return (size_t)((msgid * 0x9E3779B97F4A7C15ull) >> 20) & (n->nwbuckets - 1);
}

static void wrefs_grow(struct wx_notify *n)
{
    size_t old = n->nwbuckets;
    struct watch_ref **ob = n->wbuckets;
    n->nwbuckets = old ? old * 2 : 1024;
    n->wbuckets = wx_calloc(n->nwbuckets, sizeof *n->wbuckets);
    for (size_t i = 0; i < old; i++) {
        for (struct watch_ref *r = ob[i], *next; r != NULL; r = next) {
            next = r->next_bucket;
            struct watch_ref **slot = &n->wbuckets[wref_bucket(n, r->msgid)];
            r->next_bucket = *slot;
            *slot = r;
        }
    }
    free(ob);
}

static struct watch_ref **wref_slot(struct wx_notify *n, uint64_t msgid)
{
    struct watch_ref **p = &n->wbuckets[wref_bucket(n, msgid)];
    while (*p != NULL && (*p)->msgid != msgid)
        p = &(*p)->next_bucket;
    return p;
}

static void arm_watch(struct wx_notify *n)
{
    if (n->watch_head == NULL) {
        evtimer_del(n->watch_ev);
        return;
    }
    int64_t wait = n->watch_head->deadline_ms - wx_now_ms();
    if (wait < 0) wait = 0;
    struct timeval tv = {.tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000};
    evtimer_add(n->watch_ev, &tv);
}

/* Starts watching rows (the holder's accepted template messages of alert seq). */
void disp_watch_begin(struct wx_notify *n, uint64_t seq, const struct wx_send_row *rows,
                      unsigned count, int64_t since_ms)
{
    assert(count > 0 && count <= WX_FOLLOWERS_PER_CUSTOMER);
    struct watch *w = wx_calloc(1, sizeof *w + count * sizeof w->items[0]);
    w->seq = seq;
    w->deadline_ms = since_ms + n->opt.sms_fallback_ms;
    w->n = w->waiting = count;
    for (unsigned i = 0; i < count; i++) {
        if (n->nwatch_refs >= n->nwbuckets) wrefs_grow(n);
        struct watch_item *it = &w->items[i];
        it->ref = (struct watch_ref){.msgid = rows[i].msgid, .w = w, .ix = i};
        it->first_ms = rows[i].first_ms;
        it->attempts = rows[i].attempts;
        it->waiting = true;
        memcpy(it->to, rows[i].to, sizeof it->to);
        struct watch_ref **slot = &n->wbuckets[wref_bucket(n, it->ref.msgid)];
        it->ref.next_bucket = *slot;
        *slot = &it->ref;
        n->nwatch_refs++;
    }
    /* Deadlines mostly come in order; a restart's older ones go to the front. */
    struct watch *after = n->watch_tail;
    while (after != NULL && after->deadline_ms > w->deadline_ms)
        after = after->prev;
    w->prev = after;
    w->next = after != NULL ? after->next : n->watch_head;
    if (w->next != NULL) {
        w->next->prev = w;
    } else {
        n->watch_tail = w;
    }
    if (after != NULL) {
        after->next = w;
    } else {
        n->watch_head = w;
        arm_watch(n);
    }
    apply_early(n, w);
}

void disp_watch_end(struct wx_notify *n, struct watch *w)
{
    for (unsigned i = 0; i < w->n; i++) {
        struct watch_ref *ref = &w->items[i].ref;
        struct watch_ref **slot = wref_slot(n, ref->msgid);
        while (*slot != NULL && *slot != ref)
            slot = &(*slot)->next_bucket;
        if (*slot != NULL) {
            *slot = ref->next_bucket;
            n->nwatch_refs--;
        }
    }
    bool was_head = n->watch_head == w;
    if (w->prev != NULL) w->prev->next = w->next;
    if (w->next != NULL) w->next->prev = w->prev;
    if (n->watch_head == w) n->watch_head = w->next;
    if (n->watch_tail == w) n->watch_tail = w->prev;
    free(w);
    if (was_head) arm_watch(n);
}

/* A watched message's fate is known: its row is recorded as no longer watched. */
static void watch_row_done(struct wx_notify *n, struct watch *w, unsigned ix, uint8_t state,
                           const char *why)
{
    struct watch_item *it = &w->items[ix];
    if (!it->waiting) return;
    it->waiting = false;
    w->waiting--;
    struct wx_send_row r = {.seq = w->seq,
                            .channel = WX_SEND_WECHAT,
                            .state = state,
                            .attempts = it->attempts,
                            .msgid = it->ref.msgid,
                            .first_ms = it->first_ms,
                            .updated_ms = wx_now_ms()};
    snprintf(r.error, sizeof r.error, "%s", why);
    memcpy(r.to, it->to, sizeof r.to);
    outbox_put(n->outbox, &r);
    n->pending_rows = true;
}

/* Hears a report on a watched message; false when no watch has it. */
static bool report_apply(struct wx_notify *n, const char *openid, uint64_t msgid,
                         const char *status)
{
    if (n->nwbuckets == 0) return false;
    struct watch_ref *ref = *wref_slot(n, msgid);
    if (ref == NULL) return false;
    if (strcmp(ref->w->items[ref->ix].to, openid) != 0) return true; /* not its follower */
    bool ok = strcmp(status, "success") == 0;
    struct watch *w = ref->w;
    watch_row_done(n, w, ref->ix, ok ? WX_SEND_DELIVERED : WX_SEND_FAILED, ok ? "" : status);
    if (ok) {
        /* Delivered to one of the holder's phones: the others need no SMS either. */
        for (unsigned i = 0; i < w->n; i++)
            watch_row_done(n, w, i, WX_SEND_ACCEPTED, "");
        disp_watch_end(n, w);
    } else if (w->waiting == 0) {
        uint64_t seq = w->seq;
        disp_watch_end(n, w);
        disp_sms_fallback(n, seq, status);
        disp_pump(n);
    }
    return true;
}

void wx_notify_template_finished(wx_notify_t *n, const char *openid, uint64_t msgid,
                                 const char *status)
{
    if (strcmp(status, "success") == 0) n->stats.delivered++;
    if (!report_apply(n, openid, msgid, status)) early_keep(n, openid, msgid, status);
}

void disp_on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wx_notify *n = arg;
    int64_t now = wx_now_ms();
    while (n->watch_head != NULL && n->watch_head->deadline_ms <= now) {
        struct watch *w = n->watch_head;
        for (unsigned i = 0; i < w->n; i++)
            watch_row_done(n, w, i, WX_SEND_UNDELIVERED, "no delivery report in time");
        uint64_t seq = w->seq;
        disp_watch_end(n, w);
        disp_sms_fallback(n, seq, "no delivery report in time");
    }
    arm_watch(n);
    disp_pump(n);
}
