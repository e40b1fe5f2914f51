/*
 * dispatch.c - the alert dispatcher: journal rows in, WeChat messages and SMS out.
 *
 * Where alerts come from. The dispatcher looks at every journal row once, in seq order, and
 * keeps `cursor`, the last row looked at. New decisions come straight from the hub as they are
 * made ("live"); they wait in `unsettled_head` until their group commit is durable, then join
 * their card's queue. Rows the live feed did not see -- at start-up (after the outbox's
 * watermark), after a gap, or while too many alerts were held -- are read back from the journal
 * in chunks ("catch-up") until the cursor meets the live feed again.
 *
 * How they go out. One queue per card and channel keeps a card's alerts in order: the head
 * alert's WeChat messages go out together (to every recipient), and the card's next WeChat
 * alert starts once all of them are settled (accepted, refused, or dead); its SMS go the same
 * way in a queue of their own, so a failing SMS gateway does not hold WeChat back. Across cards up
 * to max_inflight calls run at once. A retryable failure waits 1, 2, 4 ... 60 s (with jitter) and
 * tries again until the send is max_age old; then it is dead, listed for staff, replayable.
 *
 * SMS by policy. wx_alert_sms_wanted decides at once. When it says no, the holder's WeChat
 * sends are watched after they are accepted: a failure report or no "success" report within
 * sms_fallback_ms sends the SMS after all; so does a WeChat send refused or dead.
 *
 * Every state change is queued for the outbox (outbox.c) and written in batches. This file
 * feeds the card queues (queue.c) with jobs (send.c), records batches, starts and stops.
 */
#include "notify/dispatch_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Seconds, as Prometheus has it: from 5 ms (loopback) to a minute (a platform in trouble). */
static const double latency_bounds_s[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.2,
                                          0.5,   1,    2.5,   5,    10,  60};

/* ---- from the journal to the card queues ------------------------------------------------- */

/* A durable alert joins its card's queue, and the next batch records its sends. */
void disp_job_release(struct wx_notify *n, struct job *j)
{
    if (j->unrecorded > 0) {
        assert(n->open_tail == NULL || n->open_tail->a.seq <= j->a.seq);
        j->open = true;
        j->prev_open = n->open_tail;
        j->next_open = NULL;
        if (n->open_tail != NULL) {
            n->open_tail->next_open = j;
        } else {
            n->open_head = j;
        }
        n->open_tail = j;
    }
    disp_card_enqueue(n, j);
}

void disp_open_unlink(struct wx_notify *n, struct job *j)
{
    if (!j->open) return;
    if (j->prev_open != NULL) j->prev_open->next_open = j->next_open;
    if (j->next_open != NULL) j->next_open->prev_open = j->prev_open;
    if (n->open_head == j) n->open_head = j->next_open;
    if (n->open_tail == j) n->open_tail = j->prev_open;
    j->open = false;
}

static void release_durable(struct wx_notify *n)
{
    /* Past the cursor are alerts heard live while the catch-up still reads older rows:
     * they wait, or a card's alerts would overtake each other. */
    uint64_t upto = n->durable < n->cursor ? n->durable : n->cursor;
    while (n->unsettled_head != NULL && n->unsettled_head->a.seq <= upto) {
        struct job *j = n->unsettled_head;
        n->unsettled_head = j->next;
        if (n->unsettled_head == NULL) n->unsettled_tail = NULL;
        disp_job_release(n, j);
    }
}

static void append_unsettled(struct wx_notify *n, struct job *j)
{
    j->next = NULL;
    if (n->unsettled_tail != NULL) {
        n->unsettled_tail->next = j;
    } else {
        n->unsettled_head = j;
    }
    n->unsettled_tail = j;
}

/* Stops listening to new decisions; the catch-up reads them back from the journal later.
 * Alerts heard beyond the cursor are dropped (the catch-up makes them again). */
static void live_off(struct wx_notify *n)
{
    struct job **p = &n->unsettled_head;
    n->unsettled_tail = NULL;
    while (*p != NULL) {
        if ((*p)->a.seq > n->cursor) {
            struct job *j = *p;
            *p = j->next;
            disp_job_free(n, j);
        } else {
            n->unsettled_tail = *p;
            p = &(*p)->next;
        }
    }
    n->live_from = 0;
    event_active(n->catch_up_ev, EV_TIMEOUT, 0);
}

static void on_decided(void *arg, const struct wx_cmd *cmd, const struct wx_result *res)
{
    struct wx_notify *n = arg;
    if (n->live_from == 0 || res->seq < n->live_from) return;
    if (res->seq != n->live_last + 1) {
        live_off(n); /* a row we did not hear of */
        return;
    }
    n->live_last = res->seq;
    struct wx_alert a;
    struct job *jobs[2];
    size_t njobs = 0;
    /* With neither WeChat nor an SMS gateway there is nobody to tell: the hot path pays
     * nothing, and the watermark still moves on, so channels set up later do not announce
     * the past. */
    bool channels = n->api != NULL || n->sms != NULL;
    if (channels && disp_alert_of_row(n, cmd, res, res->seq, cmd->time_ms, &a) == 1) {
        njobs = disp_jobs_for_alert(n, &a, wx_now_ms(), jobs);
    }
    for (size_t i = 0; i < njobs; i++)
        append_unsettled(n, jobs[i]);
    if (n->cursor + 1 == res->seq) n->cursor = res->seq;
    if (n->jobs > n->opt.queue_max) live_off(n);
}

/* Where the catch-up must read to: up to the live feed's first row, never past durability. */
static uint64_t catch_up_target(const struct wx_notify *n)
{
    uint64_t target = n->live_from != 0 ? n->live_from - 1 : n->durable;
    return target < n->durable ? target : n->durable;
}

void disp_catch_up_kick(struct wx_notify *n)
{
    bool behind = n->cursor < catch_up_target(n) || (n->live_from == 0 && n->cursor == n->durable);
    if (behind && !n->closing && n->jobs < n->opt.queue_max) {
        event_active(n->catch_up_ev, EV_TIMEOUT, 0);
    }
}

static int catch_row(void *ctx, const struct wx_journal_row *row)
{
    struct wx_notify *n = ctx;
    struct wx_cmd cmd;
    struct wx_result res;
    struct wx_alert a;
    if (n->api == NULL && n->sms == NULL) {
        /* nobody to tell (see on_decided) */
    } else if (wx_row_decode(row->body, row->len, &cmd, &res) != 0) {
        WX_ERROR("notify: journal row %llu does not decode", (unsigned long long)row->seq);
    } else if (!res.repeat && disp_alert_of_row(n, &cmd, &res, row->seq, row->at_ms, &a) == 1) {
        struct job *jobs[2];
        size_t njobs = disp_jobs_for_alert(n, &a, row->at_ms, jobs);
        for (size_t i = 0; i < njobs; i++)
            disp_job_release(n, jobs[i]);
    }
    n->cursor = row->seq;
    return 0;
}

/* Reads rows the live feed did not hear of, a chunk per loop turn. */
static void on_catch_up(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wx_notify *n = arg;
    if (n->closing) return;
    uint64_t target = catch_up_target(n);
    if (n->cursor < target && n->jobs < n->opt.queue_max) {
        uint64_t to = target - n->cursor > CATCH_UP_CHUNK ? n->cursor + CATCH_UP_CHUNK : target;
        char err[256];
        if (wx_journal_reader_scan(n->reader, n->cursor, to, catch_row, n, err, sizeof err) != 0) {
            struct timeval again = {.tv_sec = 1};
            event_add(n->catch_up_ev, &again); /* logged by the reader; try again in a while */
            return;
        }
    }
    if (n->live_from != 0 && n->cursor == n->live_from - 1) {
        n->cursor = n->live_last; /* the catch-up met the live feed */
    }
    if (n->live_from == 0 && n->cursor == n->durable && n->jobs < n->opt.queue_max / 2) {
        /* Listen again: what was decided but is not durable yet is read back once it is. */
        uint64_t last = wx_hub_read_seq(n->hub);
        n->live_from = last + 1;
        n->live_last = last;
    }
    const struct outbox_todo *b = &n->recorded_beyond;
    if (b->n > 0 && n->cursor >= b->rows[b->n - 1].seq) outbox_todo_free(&n->recorded_beyond);
    release_durable(n);
    if (n->cursor < catch_up_target(n)) disp_catch_up_kick(n);
    disp_pump(n);
}

static void on_durable(void *arg, uint64_t seq)
{
    struct wx_notify *n = arg;
    n->durable = seq;
    release_durable(n);
    disp_catch_up_kick(n);
    disp_pump(n);
}

/* Sends found pending at start, or replayed by staff: one job per journal row and channel
 * (the rows come sorted by seq, then channel). */
static void on_replay(void *arg, struct outbox_todo *todo)
{
    struct wx_notify *n = arg;
    for (size_t i = 0; i < todo->n;) {
        size_t k = i + 1;
        while (k < todo->n && todo->rows[k].seq == todo->rows[i].seq &&
               todo->rows[k].channel == todo->rows[i].channel)
            k++;
        struct job *j = disp_job_for_rows(n, &todo->rows[i], k - i);
        if (j != NULL) disp_card_enqueue(n, j);
        i = k;
    }
    disp_pump(n);
}

/* ---- batches, start and stop ------------------------------------------------------------- */

/*
 * Hands the batch to the outbox with the watermark it completes: below every job with a send
 * never recorded (most are recorded once, when accepted), so a crash cannot skip one -- a
 * restart derives it again from the journal, and skips its sends that were recorded.
 */
static void record_batch(struct wx_notify *n)
{
    outbox_set_room(n->outbox, n->jobs < n->opt.queue_max ? n->opt.queue_max - n->jobs : 0);
    uint64_t mark = n->durable < n->cursor ? n->durable : n->cursor;
    if (n->open_head != NULL && n->open_head->a.seq - 1 < mark) mark = n->open_head->a.seq - 1;
    if (mark > n->committed_mark || n->pending_rows) {
        outbox_commit(n->outbox, mark > n->committed_mark ? mark : 0);
        n->committed_mark = mark > n->committed_mark ? mark : n->committed_mark;
        n->pending_rows = false;
    }
}

static void on_batch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    record_batch(arg);
}

static void on_stop(void *arg)
{
    struct wx_notify *n = arg;
    n->closing = true; /* no new sends; those in flight may finish while the hub drains */
}

static bool is_busy(void *arg)
{
    const struct wx_notify *n = arg;
    return n->inflight > 0;
}

static void free_jobs(struct wx_notify *n)
{
    while (n->unsettled_head != NULL) {
        struct job *j = n->unsettled_head;
        n->unsettled_head = j->next;
        disp_job_free(n, j);
    }
    for (size_t b = 0; b < n->nbuckets; b++) {
        for (struct cardq *q = n->buckets[b], *nq; q != NULL; q = nq) {
            nq = q->next_bucket;
            for (struct job *j = q->head, *nj; j != NULL; j = nj) {
                nj = j->next;
                disp_job_free(n, j);
            }
            free(q);
        }
    }
    while (n->watch_head != NULL)
        disp_watch_end(n, n->watch_head);
}

void wx_notify_free(wx_notify_t *n)
{
    if (n == NULL) return;
    n->closing = true;
    if (n->outbox != NULL) {
        record_batch(n);
        outbox_close(n->outbox);
    }
    free_jobs(n);
    struct event *evs[] = {n->batch_ev, n->retry_ev, n->watch_ev, n->catch_up_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        if (evs[i] != NULL) event_free(evs[i]);
    }
    wx_journal_reader_close(n->reader);
    wx_sms_client_free(n->sms);
    disp_free_langs(n);
    outbox_todo_free(&n->recorded_beyond);
    free(n->heap);
    free(n->buckets);
    free(n->wbuckets);
    free(n->early);
    free(n->early_buckets);
    free(n);
}

void wx_notify_stats(const wx_notify_t *n, struct wx_notify_stats *out)
{
    *out = n->stats;
    out->in_flight = n->inflight;
    out->recorded = outbox_recorded(n->outbox);
    out->derived_seq = n->cursor;
    int64_t oldest = 0;
    uint64_t queued = 0;
    for (size_t b = 0; b < n->nbuckets; b++) {
        for (const struct cardq *q = n->buckets[b]; q != NULL; q = q->next_bucket) {
            for (const struct job *j = q->head; j != NULL; j = j->next) {
                for (unsigned i = 0; i < j->nsends; i++) {
                    const struct send *s = &j->sends[i];
                    if (s->settled) continue;
                    queued++;
                    if (oldest == 0 || s->row.first_ms < oldest) oldest = s->row.first_ms;
                }
            }
        }
    }
    out->queued = queued;
    out->oldest_unsent_s = oldest != 0 ? (double)(wx_now_ms() - oldest) / 1000.0 : 0.0;
}

/* Where a template field's text is in struct wx_alert_fields, by its name; -1 if none. */
static long field_offset(const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t offset;
    } names[] = {
        {"title", offsetof(struct wx_alert_fields, title)},
        {"card", offsetof(struct wx_alert_fields, card)},
        {"kind", offsetof(struct wx_alert_fields, kind)},
        {"amount", offsetof(struct wx_alert_fields, amount)},
        {"merchant", offsetof(struct wx_alert_fields, merchant)},
        {"time", offsetof(struct wx_alert_fields, time)},
        {"available", offsetof(struct wx_alert_fields, available)},
        {"remark", offsetof(struct wx_alert_fields, remark)},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == len && strncmp(names[i].name, name, len) == 0) {
            return (long)names[i].offset;
        }
    }
    return -1;
}

/* Parses "key:field,key:field" (alerts.template_fields) into n->tfields. */
static int parse_template_fields(struct wx_notify *n, const char *spec, char *err, size_t errlen)
{
    n->ntfields = 0;
    for (const char *p = spec; *p != '\0';) {
        const char *end = p + strcspn(p, ",");
        const char *colon = memchr(p, ':', (size_t)(end - p));
        size_t klen = colon != NULL ? (size_t)(colon - p) : 0;
        long offset = colon != NULL ? field_offset(colon + 1, (size_t)(end - colon - 1)) : -1;
        if (klen == 0 || klen >= sizeof n->tfields[0].key || offset < 0 ||
            n->ntfields >= TEMPLATE_MAX_MAP) {
            snprintf(err, errlen,
                     "alerts.template_fields: \"key:field,...\" with at most %d keys, fields "
                     "title, card, kind, amount, merchant, time, available or remark",
                     TEMPLATE_MAX_MAP);
            return -1;
        }
        struct tfield *t = &n->tfields[n->ntfields++];
        memcpy(t->key, p, klen);
        t->key[klen] = '\0';
        t->offset = (size_t)offset;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static int copy_options(struct wx_notify *n, const struct wx_notify_options *opt, char *err,
                        size_t errlen)
{
    n->opt = *opt;
    n->opt.details_url = NULL;
    n->opt.template_fields = NULL;
    memset(n->opt.template_ids, 0, sizeof n->opt.template_ids);
    memset(&n->opt.sms, 0, sizeof n->opt.sms);
    const char *url = opt->details_url != NULL ? opt->details_url : "";
    if (strlen(url) >= sizeof n->details_url - 32) {
        snprintf(err, errlen, "alerts.details_url: at most %zu bytes", sizeof n->details_url - 32);
        return -1;
    }
    snprintf(n->details_url, sizeof n->details_url, "%s", url);
    for (int k = 0; k < WX_ALERT_KIND_COUNT; k++) {
        const char *id = opt->template_ids[k] != NULL ? opt->template_ids[k] : "";
        if (strlen(id) >= sizeof n->template_ids[k]) {
            snprintf(err, errlen, "alerts.template_id: at most %zu characters",
                     sizeof n->template_ids[k] - 1);
            return -1;
        }
        snprintf(n->template_ids[k], sizeof n->template_ids[k], "%s", id);
    }
    if (n->opt.max_inflight == 0) n->opt.max_inflight = 1;
    if (n->opt.queue_max < 2) n->opt.queue_max = 2;
    return parse_template_fields(n, opt->template_fields != NULL ? opt->template_fields : "", err,
                                 errlen);
}

/* The holder's accepted messages still waiting for a report at the last stop. */
static void rewatch(struct wx_notify *n, const struct outbox_todo *watched)
{
    for (size_t i = 0; i < watched->n;) {
        size_t k = i + 1;
        while (k < watched->n && watched->rows[k].seq == watched->rows[i].seq)
            k++;
        unsigned count = (unsigned)(k - i);
        if (count > WX_FOLLOWERS_PER_CUSTOMER) count = WX_FOLLOWERS_PER_CUSTOMER;
        disp_watch_begin(n, watched->rows[i].seq, &watched->rows[i], count,
                         watched->rows[i].updated_ms);
        i = k;
    }
}

/* Languages chosen by followers, at start or since the last look. */
static void on_prefs(void *arg, const struct outbox_prefs *prefs)
{
    for (size_t i = 0; i < prefs->n; i++) {
        disp_set_lang(arg, prefs->v[i].openid, prefs->v[i].lang);
    }
}

static int open_outbox(struct wx_notify *n, char *err, size_t errlen)
{
    struct outbox_todo pending, watched;
    struct outbox_prefs prefs;
    uint64_t watermark;
    uint64_t last = wx_hub_read_seq(n->hub);
    struct outbox_hooks hooks = {.replay = on_replay, .prefs = on_prefs, .arg = n};
    n->outbox = outbox_open(n->opt.db_path, n->hub, &hooks, last, &watermark, &pending, &watched,
                            &n->recorded_beyond, &prefs, err, errlen);
    if (n->outbox == NULL) return -1;
    on_prefs(n, &prefs);
    outbox_prefs_free(&prefs);
    int rc = 0;
    if (watermark > last) {
        snprintf(err, errlen,
                 "%s.notify has alerts up to row %llu, past the journal's last row "
                 "%llu: it belongs to another database",
                 n->opt.db_path, (unsigned long long)watermark, (unsigned long long)last);
        rc = -1;
    } else {
        n->cursor = watermark;
        n->durable = last; /* everything on disk at start is durable */
        n->live_from = last + 1;
        n->live_last = last;
        on_replay(n, &pending);
        rewatch(n, &watched);
        if (pending.n > 0 || watched.n > 0 || watermark < last) {
            WX_INFO("notify: %zu sends pending, %zu watched, journal rows %llu..%llu to look at",
                    pending.n, watched.n, (unsigned long long)watermark + 1,
                    (unsigned long long)last);
        }
    }
    outbox_todo_free(&pending);
    outbox_todo_free(&watched);
    return rc;
}

wx_notify_t *wx_notify_start(struct wx_hub *hub, struct wx_wechat_api *api, struct wx_fetch *fetch,
                             const struct wx_notify_options *opt, char *err, size_t errlen)
{
    struct wx_notify *n = wx_calloc(1, sizeof *n);
    n->hub = hub;
    n->api = api;
    wx_histogram_init(&n->stats.latency, latency_bounds_s,
                      sizeof latency_bounds_s / sizeof latency_bounds_s[0]);
    struct event_base *base = wx_hub_base(hub);
    if (copy_options(n, opt, err, errlen) != 0) goto fail;
    if (opt->sms.url != NULL && opt->sms.url[0] != '\0' &&
        (n->sms = wx_sms_client_new(fetch, &opt->sms, err, errlen)) == NULL) {
        goto fail;
    }
    n->reader = wx_journal_reader_open(opt->db_path, err, errlen);
    if (n->reader == NULL) goto fail;
    n->batch_ev = event_new(base, -1, EV_PERSIST, on_batch, n);
    n->retry_ev = evtimer_new(base, disp_on_retry, n);
    n->watch_ev = evtimer_new(base, disp_on_watch, n);
    n->catch_up_ev = event_new(base, -1, 0, on_catch_up, n);
    struct timeval every = {.tv_sec = 0, .tv_usec = WX_NOTIFY_RECORD_MS * 1000};
    if (n->batch_ev == NULL || n->retry_ev == NULL || n->watch_ev == NULL ||
        n->catch_up_ev == NULL || event_add(n->batch_ev, &every) != 0) {
        snprintf(err, errlen, "libevent: cannot register the dispatcher's events");
        goto fail;
    }
    if (open_outbox(n, err, errlen) != 0) goto fail;
    wx_hub_attach(hub, &(struct wx_hub_adapter){.name = "notify",
                                                .durable = on_durable,
                                                .decided = on_decided,
                                                .stop = on_stop,
                                                .busy = is_busy,
                                                .arg = n});
    disp_catch_up_kick(n);
    return n;
fail:
    wx_notify_free(n);
    return NULL;
}
