/*
 * send.c - an alert's job: its sends (a WeChat message to every recipient, the SMS by policy),
 * how they are made and sent, and what each answer leads to -- accepted, refused for good,
 * another try after a back-off, dead once too old, and the SMS that follows WeChat's failure.
 */
#include "notify/dispatch_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fetch/fetch.h"
#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ---- small helpers ------------------------------------------------------------------------ */

void disp_record(struct wx_notify *n, struct send *s)
{
    s->row.updated_ms = wx_now_ms();
    if (!s->recorded) {
        s->recorded = true;
        struct job *j = s->job;
        assert(j->unrecorded > 0);
        if (--j->unrecorded == 0) disp_open_unlink(n, j);
    }
    outbox_put(n->outbox, &s->row);
    n->pending_rows = true;
}

unsigned disp_jitter(unsigned ms)
{
    uint32_t r;
    wx_random_bytes(&r, sizeof r);
    return ms / 2 + r % (ms / 2 + 1);
}

static void make_ref(char *out, size_t cap, uint64_t seq, uint8_t channel)
{
    snprintf(out, cap, "%llu-%s", (unsigned long long)seq, wx_send_channel_name(channel));
}

static void observe_latency(struct wx_notify *n, int64_t ms)
{
    wx_histogram_observe(&n->stats.latency, (double)ms / 1000.0);
}

/* ---- jobs ---------------------------------------------------------------------------------- */

void disp_job_free(struct wx_notify *n, struct job *j)
{
    disp_open_unlink(n, j);
    free(j);
    /* The catch-up stops when too many alerts are held; it goes on once half are gone. */
    if (n->jobs-- == n->opt.queue_max / 2) disp_catch_up_kick(n);
}

/* The card holder's mobile, when an SMS can reach it. */
static bool sms_reachable(const struct wx_notify *n, const struct wx_alert *a, char *mobile)
{
    struct wx_customer_view c;
    mobile[0] = '\0';
    if (n->sms == NULL || wx_engine_customer(wx_hub_engine(n->hub), a->customer_id, &c) != 0) {
        return false;
    }
    snprintf(mobile, WX_MOBILE_MAX + 1, "%s", c.mobile);
    return mobile[0] != '\0';
}

static struct job *job_new(struct wx_notify *n, const struct wx_alert *a, unsigned nsends)
{
    struct job *j = wx_calloc(1, sizeof *j + (nsends + 1) * sizeof j->sends[0]);
    j->n = n;
    j->a = *a;
    j->nsends = j->unsettled = j->unrecorded = nsends;
    for (unsigned i = 0; i <= nsends; i++) {
        j->sends[i].job = j;
        j->sends[i].heap_ix = SIZE_MAX;
        j->sends[i].first = true;
        j->sends[i].row.seq = a->seq;
    }
    n->jobs++;
    return j;
}

static void send_init(struct send *s, uint8_t channel, const char *to, int64_t now)
{
    s->holder = false; /* the spare slot may hold a copy of a send dropped before */
    s->row.channel = channel;
    s->row.state = WX_SEND_PENDING;
    s->row.first_ms = now;
    size_t len = strnlen(to, sizeof s->row.to - 1);
    memcpy(s->row.to, to, len);
    s->row.to[len] = '\0';
}

/* Orders a send against an outbox row by (seq, channel, recipient), as the outbox sorts. */
static int row_cmp(const void *key, const void *elem)
{
    const struct wx_send_row *k = key, *r = elem;
    if (k->seq != r->seq) return k->seq < r->seq ? -1 : 1;
    if (k->channel != r->channel) return k->channel < r->channel ? -1 : 1;
    return strcmp(k->to, r->to);
}

/*
 * After a restart, a row past the watermark is derived again although some of its sends were
 * accepted (or refused) before the stop: those are taken out of the job, so they do not go
 * twice. NULL when none is left. (The catch-up drops the list once it is past it.)
 */
static struct job *drop_recorded(struct wx_notify *n, struct job *j)
{
    struct outbox_todo *b = &n->recorded_beyond;
    unsigned kept = 0;
    for (unsigned i = 0; i < j->nsends; i++) {
        struct send *s = &j->sends[i];
        if (bsearch(&s->row, b->rows, b->n, sizeof b->rows[0], row_cmp) != NULL) {
            j->holder_wechat -= s->holder;
            continue;
        }
        if (kept != i) j->sends[kept] = *s;
        kept++;
    }
    j->nsends = j->unsettled = j->unrecorded = kept;
    if (j->holder_wechat == 0) j->watch = false;
    if (kept > 0) return j;
    disp_job_free(n, j);
    return NULL;
}

/*
 * The jobs of a new alert, into out: a WeChat message to every recipient (one job, the
 * card's WeChat lane), and the SMS when the policy wants one at once (another job, its SMS
 * lane). Returns how many: 0 when there is nobody to tell.
 */
size_t disp_jobs_for_alert(struct wx_notify *n, const struct wx_alert *a, int64_t decided_ms,
                           struct job *out[2])
{
    const wx_engine_t *e = wx_hub_engine(n->hub);
    struct wx_follower_view f[WX_ALERT_RECIPIENTS_MAX];
    size_t nf = n->api != NULL ? wx_alert_recipients(e, a, f, WX_ALERT_RECIPIENTS_MAX) : 0;
    size_t holders = n->api != NULL ? wx_alert_holder_followers(e, a) : 0;
    char mobile[WX_MOBILE_MAX + 1];
    bool reachable = sms_reachable(n, a, mobile);
    bool sms_now = reachable && wx_alert_sms_wanted(&n->opt.policy, a, holders);
    int64_t now = wx_now_ms();
    size_t count = 0;
    n->stats.alerts++;
    if (nf > 0) {
        struct job *j = job_new(n, a, (unsigned)nf);
        j->lane = LANE_WECHAT;
        j->decided_ms = decided_ms;
        snprintf(j->mobile, sizeof j->mobile, "%s", mobile); /* for a fallback SMS */
        for (size_t i = 0; i < nf; i++) {
            send_init(&j->sends[i], WX_SEND_WECHAT, f[i].openid, now);
            j->sends[i].holder = f[i].customer_id == a->customer_id;
            j->holder_wechat += j->sends[i].holder;
        }
        j->watch = !sms_now && reachable && j->holder_wechat > 0;
        out[count++] = j;
    }
    if (sms_now) {
        struct job *j = job_new(n, a, 1);
        j->lane = LANE_SMS;
        j->decided_ms = decided_ms;
        j->sms_base = true;
        snprintf(j->mobile, sizeof j->mobile, "%s", mobile);
        send_init(&j->sends[0], WX_SEND_SMS, mobile, now);
        out[count++] = j;
    }
    if (n->recorded_beyond.n > 0) {
        size_t kept = 0;
        for (size_t i = 0; i < count; i++) {
            struct job *j = drop_recorded(n, out[i]);
            if (j != NULL) out[kept++] = j;
        }
        count = kept;
    }
    return count;
}

/* The alert of journal row (cmd, res) at seq, when it has one. */
int disp_alert_of_row(struct wx_notify *n, const struct wx_cmd *cmd, const struct wx_result *res,
                      uint64_t seq, int64_t at_ms, struct wx_alert *a)
{
    const wx_engine_t *e = wx_hub_engine(n->hub);
    int64_t hold = -1;
    if (cmd->kind == WX_CMD_CAPTURE && cmd->follow.orig_len > 0) {
        hold = wx_engine_hold_total(e, cmd->follow.orig_key, cmd->follow.orig_len);
    }
    int rc = wx_alert_from_row(e, cmd, res, seq, at_ms, hold, a);
    if (rc < 0) WX_WARN("notify: row %llu names an unknown card", (unsigned long long)seq);
    return rc;
}

struct row_read {
    struct wx_cmd cmd;
    struct wx_result res;
    int64_t at_ms;
    bool found;
};

static int keep_row(void *ctx, const struct wx_journal_row *row)
{
    struct row_read *rr = ctx;
    rr->found = wx_row_decode(row->body, row->len, &rr->cmd, &rr->res) == 0;
    rr->res.seq = row->seq;
    rr->at_ms = row->at_ms;
    return 0;
}

/* Reads journal row seq back and makes its alert. 1; 0 or -1 when it has none now (see
 * disp_alert_of_row); -2 when the row cannot be read. */
static int alert_of_seq(struct wx_notify *n, uint64_t seq, struct wx_alert *a)
{
    struct row_read rr = {0};
    char err[256];
    if (wx_journal_reader_scan(n->reader, seq - 1, seq, keep_row, &rr, err, sizeof err) != 0 ||
        !rr.found) {
        WX_ERROR("notify: journal row %llu cannot be read back", (unsigned long long)seq);
        return -2;
    }
    return disp_alert_of_row(n, &rr.cmd, &rr.res, seq, rr.at_ms, a);
}

/* A job for sends the outbox already holds (pending at a restart, or replayed by staff), all
 * of one journal row and one channel. */
struct job *disp_job_for_rows(struct wx_notify *n, const struct wx_send_row *rows, size_t count)
{
    struct wx_alert a;
    int rc = alert_of_seq(n, rows[0].seq, &a);
    if (rc == -2) return NULL; /* left pending: the next start tries again */
    if (rc != 1) {
        for (size_t i = 0; i < count; i++) {
            struct wx_send_row r = rows[i];
            r.state = WX_SEND_FAILED;
            snprintf(r.error, sizeof r.error, "the alert cannot be made again from its row");
            r.updated_ms = wx_now_ms();
            outbox_put(n->outbox, &r);
            n->pending_rows = true;
        }
        return NULL;
    }
    const wx_engine_t *e = wx_hub_engine(n->hub);
    struct job *j = job_new(n, &a, (unsigned)count);
    j->lane = rows[0].channel == WX_SEND_SMS ? LANE_SMS : LANE_WECHAT;
    j->decided_ms = a.at_ms;
    j->unrecorded = 0; /* the outbox holds every one of them */
    bool reachable = sms_reachable(n, &a, j->mobile);
    for (size_t i = 0; i < count; i++) {
        struct send *s = &j->sends[i];
        s->row = rows[i];
        s->row.state = WX_SEND_PENDING;
        s->row.watch = false;
        s->recorded = true;
        s->first = false;
        struct wx_follower_view f;
        s->holder = s->row.channel == WX_SEND_WECHAT && wx_engine_follower(e, s->row.to, &f) == 0 &&
                    f.customer_id == a.customer_id;
        j->holder_wechat += s->holder;
        j->sms_base |= s->row.channel == WX_SEND_SMS;
    }
    size_t holders = n->api != NULL ? wx_alert_holder_followers(e, &a) : 0;
    j->watch = reachable && !j->sms_base && j->holder_wechat > 0 &&
               !wx_alert_sms_wanted(&n->opt.policy, &a, holders);
    return j;
}

/* An SMS because the holder's WeChat messages failed or stayed undelivered. */
void disp_sms_fallback(struct wx_notify *n, uint64_t seq, const char *why)
{
    struct wx_alert a;
    char mobile[WX_MOBILE_MAX + 1];
    if (alert_of_seq(n, seq, &a) != 1 || !sms_reachable(n, &a, mobile)) return;
    struct job *j = job_new(n, &a, 1);
    j->lane = LANE_SMS;
    j->decided_ms = wx_now_ms();
    j->sms_base = true;
    snprintf(j->mobile, sizeof j->mobile, "%s", mobile);
    send_init(&j->sends[0], WX_SEND_SMS, mobile, wx_now_ms());
    j->sends[0].first = false;
    /* Recorded at once: its row is older than the watermark, which would not wait for it. */
    disp_record(n, &j->sends[0]);
    n->stats.sms_fallbacks++;
    WX_INFO("notify: alert %llu goes by SMS as well: %s", (unsigned long long)seq, why);
    disp_job_release(n, j);
}

/* ---- sending -------------------------------------------------------------------------------- */

static void job_done(struct wx_notify *n, struct job *j)
{
    if (j->watch && !j->fallback_added && j->holder_failed == j->holder_wechat) {
        /* Every WeChat message to the holder failed for good: the SMS goes now. */
        struct send *s = &j->sends[j->nsends++];
        send_init(s, WX_SEND_SMS, j->mobile, wx_now_ms());
        s->first = false;
        j->fallback_added = true;
        j->unsettled++;
        j->unrecorded++;
        disp_record(n, s); /* at once, as every fallback: the watermark may be past its row */
        n->stats.sms_fallbacks++;
        disp_ready_push(n, s);
        return;
    }
    if (j->watch && !j->fallback_added) {
        struct wx_send_row rows[WX_FOLLOWERS_PER_CUSTOMER];
        unsigned count = 0;
        for (unsigned i = 0; i < j->nsends && count < WX_FOLLOWERS_PER_CUSTOMER; i++) {
            if (j->sends[i].row.watch) rows[count++] = j->sends[i].row;
        }
        if (count > 0) disp_watch_begin(n, j->a.seq, rows, count, wx_now_ms());
    }
    disp_card_advance(n, j);
    disp_job_free(n, j);
}

static void settle(struct send *s)
{
    struct job *j = s->job;
    assert(!s->settled && j->unsettled > 0);
    s->settled = true;
    if (--j->unsettled == 0) job_done(j->n, j);
}

static void accepted(struct wx_notify *n, struct send *s, uint64_t msgid)
{
    struct job *j = s->job;
    s->row.state = WX_SEND_ACCEPTED;
    s->row.msgid = msgid;
    s->row.errcode = 0;
    s->row.error[0] = '\0';
    /* Only template messages are reported on; a customer-service message's acceptance is as
     * far as anyone can tell. */
    s->row.watch = j->watch && s->holder && msgid != 0;
    if (s->row.channel == WX_SEND_WECHAT) {
        n->stats.sent_wechat++;
    } else {
        n->stats.sent_sms++;
    }
    if (s->first) observe_latency(n, wx_now_ms() - j->decided_ms);
    disp_record(n, s);
    settle(s);
}

static void given_up(struct wx_notify *n, struct send *s, uint8_t state, int code, const char *why)
{
    struct job *j = s->job;
    s->row.state = state;
    s->row.errcode = code;
    snprintf(s->row.error, sizeof s->row.error, "%s", why);
    if (state == WX_SEND_DEAD) {
        n->stats.dead++;
        WX_WARN("notify: %s send of alert %llu is dead after %u attempts: %s",
                wx_send_channel_name(s->row.channel), (unsigned long long)s->row.seq,
                s->row.attempts, why);
    } else {
        n->stats.failed++;
    }
    if (s->holder) j->holder_failed++;
    disp_record(n, s);
    settle(s);
}

static void try_again(struct wx_notify *n, struct send *s, int code, const char *why)
{
    int64_t now = wx_now_ms();
    unsigned shift = s->row.attempts > 1 ? s->row.attempts - 1 : 0;
    unsigned wait = shift < 6 ? RETRY_BASE_MS << shift : RETRY_MAX_MS;
    if (wait > RETRY_MAX_MS) wait = RETRY_MAX_MS;
    wait = disp_jitter(wait);
    if (now + wait - s->row.first_ms > (int64_t)n->opt.max_age_ms) {
        given_up(n, s, WX_SEND_DEAD, code, why);
        return;
    }
    n->stats.retries++;
    s->row.errcode = code;
    snprintf(s->row.error, sizeof s->row.error, "%s", why);
    /* A send that waits is recorded pending: a restart then resumes it, with its attempts. */
    if (!s->recorded) disp_record(n, s);
    s->due_ms = now + wait;
    disp_heap_push(n, s);
    disp_card_hold(n, s->job);
}

/* A stopping hub waits for the calls in flight: the last one to return lets it go. */
static void call_returned(struct wx_notify *n)
{
    n->inflight--;
    if (n->closing && n->inflight == 0) wx_hub_settle(n->hub);
}

static void on_wechat(const struct wx_wechat_api_result *r, void *arg)
{
    struct send *s = arg;
    struct wx_notify *n = s->job->n;
    s->in_flight = false;
    call_returned(n);
    if (r->cls == WX_WECHAT_API_OK) {
        accepted(n, s, r->msgid);
    } else if (r->cls == WX_WECHAT_API_PERMANENT) {
        given_up(n, s, WX_SEND_FAILED, (int)r->errcode, r->errmsg);
    } else {
        try_again(n, s, (int)r->errcode, r->errmsg);
    }
    disp_pump(n);
}

static void on_sms(enum wx_sms_result r, int status, const char *error, void *arg)
{
    struct send *s = arg;
    struct wx_notify *n = s->job->n;
    s->in_flight = false;
    call_returned(n);
    if (r == WX_SMS_OK) {
        accepted(n, s, 0);
    } else if (r == WX_SMS_PERMANENT) {
        given_up(n, s, WX_SEND_FAILED, status, error);
    } else {
        try_again(n, s, status, error);
    }
    disp_pump(n);
}

/* ---- languages ------------------------------------------------------------------------------ */

struct lang_pref {
    struct lang_pref *next;
    uint8_t lang;
    char openid[];
};

static size_t lang_bucket(const struct wx_notify *n, const char *openid)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: OpenIDs are the platform's, not a peer's */
    for (const unsigned char *p = (const unsigned char *)openid; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ull;
    }
    return (size_t)h & (n->nlbuckets - 1);
}

static void langs_grow(struct wx_notify *n)
{
    size_t old = n->nlbuckets;
    struct lang_pref **ob = n->lbuckets;
    n->nlbuckets = old ? old * 2 : 256;
    n->lbuckets = wx_calloc(n->nlbuckets, sizeof *n->lbuckets);
    for (size_t i = 0; i < old; i++) {
        for (struct lang_pref *p = ob[i], *next; p != NULL; p = next) {
            next = p->next;
            struct lang_pref **slot = &n->lbuckets[lang_bucket(n, p->openid)];
            p->next = *slot;
            *slot = p;
        }
    }
    free(ob);
}

void disp_set_lang(struct wx_notify *n, const char *openid, uint8_t lang)
{
    if (n->nprefs >= n->nlbuckets) langs_grow(n);
    struct lang_pref **slot = &n->lbuckets[lang_bucket(n, openid)];
    for (struct lang_pref *p = *slot; p != NULL; p = p->next) {
        if (strcmp(p->openid, openid) == 0) {
            p->lang = lang;
            return;
        }
    }
    size_t len = strlen(openid);
    struct lang_pref *p = wx_calloc(1, sizeof *p + len + 1);
    memcpy(p->openid, openid, len + 1);
    p->lang = lang;
    p->next = *slot;
    *slot = p;
    n->nprefs++;
}

void disp_free_langs(struct wx_notify *n)
{
    for (size_t i = 0; i < n->nlbuckets; i++) {
        for (struct lang_pref *p = n->lbuckets[i], *next; p != NULL; p = next) {
            next = p->next;
            free(p);
        }
    }
    free(n->lbuckets);
}

/* The follower's own choice, or -1. */
static int lang_chosen(const struct wx_notify *n, const char *openid)
{
    if (n->nlbuckets == 0) return -1;
    for (const struct lang_pref *p = n->lbuckets[lang_bucket(n, openid)]; p != NULL; p = p->next) {
        if (strcmp(p->openid, openid) == 0) return p->lang;
    }
    return -1;
}

/* A WeChat message in its follower's language; an SMS in the language the holder's first
 * follower with a choice made (the phone is the holder's); the bank's default otherwise. */
static enum wx_lang send_lang(const struct wx_notify *n, const struct send *s)
{
    int lang = -1;
    if (s->row.channel == WX_SEND_WECHAT) {
        lang = lang_chosen(n, s->row.to);
    } else if (n->nprefs > 0) {
        struct wx_follower_view f[WX_FOLLOWERS_PER_CUSTOMER];
        size_t nf = wx_engine_customer_followers(wx_hub_engine(n->hub), s->job->a.customer_id, f,
                                                 WX_FOLLOWERS_PER_CUSTOMER);
        for (size_t i = 0; i < nf && lang < 0; i++)
            lang = lang_chosen(n, f[i].openid);
    }
    return lang == WX_LANG_EN ? WX_LANG_EN : lang == WX_LANG_ZH ? WX_LANG_ZH : n->opt.lang;
}

/* ---- the calls ----------------------------------------------------------------------------- */

/* The template's data: the configured keys filled from the alert's fields. */
static int send_template(struct wx_notify *n, struct send *s, const char *tid, const char *ref)
{
    struct wx_alert_fields af;
    if (wx_alert_fields(&s->job->a, send_lang(n, s), n->opt.tz_offset_minutes, n->details_url,
                        &af) != 0) {
        return -1;
    }
    struct wx_wechat_template_field fields[TEMPLATE_MAX_MAP];
    for (size_t i = 0; i < n->ntfields; i++) {
        fields[i].name = n->tfields[i].key;
        fields[i].value = (const char *)&af + n->tfields[i].offset;
    }
    struct wx_wechat_template t = {.openid = s->row.to,
                                   .template_id = tid,
                                   .url = af.url,
                                   .client_msg_id = ref,
                                   .fields = fields,
                                   .nfields = n->ntfields};
    return wx_wechat_api_template_send(n->api, &t, on_wechat, s);
}

static void send_start(struct wx_notify *n, struct send *s)
{
    struct job *j = s->job;
    char ref[REF_MAX];
    make_ref(ref, sizeof ref, s->row.seq, s->row.channel);
    s->in_flight = true;
    n->inflight++;
    s->row.attempts++;
    int rc = -1;
    if (s->row.channel == WX_SEND_WECHAT) {
        const char *tid = n->template_ids[j->a.kind];
        if (tid[0] != '\0') {
            rc = send_template(n, s, tid, ref);
        } else {
            char text[WX_ALERT_TEXT_MAX];
            if (wx_alert_text(&j->a, send_lang(n, s), n->opt.tz_offset_minutes, n->details_url,
                              text, sizeof text) >= 0) {
                rc = wx_wechat_api_custom_text(n->api, s->row.to, text, on_wechat, s);
            }
        }
    } else {
        char text[WX_ALERT_TEXT_MAX];
        if (wx_alert_text(&j->a, send_lang(n, s), n->opt.tz_offset_minutes, n->details_url, text,
                          sizeof text) >= 0) {
            rc = wx_sms_client_send(n->sms, s->row.to, text, ref, on_sms, s);
        }
    }
    if (rc != 0) {
        s->in_flight = false;
        n->inflight--;
        given_up(n, s, WX_SEND_FAILED, 0, "the message could not be made");
    }
}

void disp_pump(struct wx_notify *n)
{
    while (!n->closing && n->ready_head != NULL && n->inflight < n->opt.max_inflight) {
        struct send *s = n->ready_head;
        n->ready_head = s->next_ready;
        if (n->ready_head == NULL) n->ready_tail = NULL;
        send_start(n, s);
    }
}
