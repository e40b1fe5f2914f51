/*
 * dispatch_int.h - inside the alert dispatcher: its state and what its files share.
 * Private to src/notify.
 *
 *   dispatch.c  from the journal to the card queues (live feed, catch-up, durability), the
 *               outbox batches, start and stop
 *   send.c      alerts' jobs and their sends: what goes to whom, results, retries, fallback
 *   queue.c     where sends wait: per-card queues, the ready list, the retry heap
 *   report.c    WeChat's delivery reports: the watches that decide whether an SMS follows
 */
#ifndef WX_NOTIFY_DISPATCH_INT_H
#define WX_NOTIFY_DISPATCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "journal/journal.h"
#include "net/net.h"
#include "notify/notify.h"
#include "notify/notify_int.h"
#include "wechat/wechat.h"

#define CATCH_UP_CHUNK   2048  /* journal rows read per loop turn while catching up */
#define RETRY_BASE_MS    1000  /* first retry after this (half to all of it, disp_jitter) */
#define RETRY_MAX_MS     60000 /* longest wait between two tries */
#define TEMPLATE_MAX_MAP 16    /* data keys of the template */
#define REF_MAX          32    /* "<seq>-wechat" */
#define EARLY_BITS       16    /* delivery reports kept before their watch begins: 65,536 */

struct job;
struct lang_pref;

struct send {
    struct job *job;
    struct send *next_ready;
    struct wx_send_row row; /* what the outbox knows of it */
    size_t heap_ix;         /* in the retry heap; SIZE_MAX when not waiting */
    int64_t due_ms;         /* next try */
    bool holder;            /* WeChat to one of the card holder's own followers */
    bool in_flight;
    bool settled;  /* accepted, failed or dead: the card's next alert may go */
    bool recorded; /* queued for the outbox at least once */
    bool first;    /* no attempt made yet: its acceptance counts for the latency */
};

struct job {
    struct wx_notify *n;
    struct wx_alert a;
    uint8_t lane;                      /* enum lane: the card queue it waits in */
    struct job *next;                  /* waiting for durability, then in its card's queue */
    struct job *prev_open, *next_open; /* in the list of jobs with sends not yet recorded */
    bool open;
    unsigned unrecorded; /* sends never queued for the outbox */
    int64_t decided_ms;  /* wall clock when it was derived live, else the row's time */
    bool sms_base;       /* the policy wants an SMS at once */
    bool watch;          /* the holder's WeChat sends are watched (no SMS yet) */
    bool fallback_added; /* the SMS slot is taken */
    char mobile[WX_MOBILE_MAX + 1];
    unsigned nsends, unsettled;
    unsigned holder_wechat, holder_failed;
    struct send sends[]; /* nsends, plus one slot for a fallback SMS */
};

/* One lane of a card: its WeChat messages, or its SMS. Each goes in order on its own, so an
 * SMS retrying against a failing gateway does not hold the card's WeChat messages. */
enum lane { LANE_WECHAT = 0, LANE_SMS = 1 };

struct cardq {
    uint32_t card_id;
    uint8_t lane;
    struct cardq *next_bucket;
    struct job *head, *tail;
};

/* A holder's accepted WeChat messages, waiting for the platform's delivery report. Kept small:
 * at thousands of alerts a second, the fallback delay holds tens of thousands of them. */
struct watch_ref {
    uint64_t msgid;
    struct watch *w;
    unsigned ix;
    struct watch_ref *next_bucket;
};

struct watch_item {
    struct watch_ref ref;
    int64_t first_ms;
    uint16_t attempts;
    bool waiting; /* no report yet */
    char to[WX_OPENID_MAX + 1];
};

struct watch {
    struct watch *prev, *next; /* by deadline */
    uint64_t seq;
    int64_t deadline_ms;
    unsigned n, waiting;
    struct watch_item items[]; /* n */
};

/* A delivery report that came before its message was watched (report.c). */
struct early_report {
    uint64_t msgid;   /* 0: a free slot */
    uint64_t to_hash; /* of the follower's OpenID */
    int64_t at_ms;
    uint32_t next; /* in its bucket */
    char status[20];
};

struct tfield {
    char key[32];
    size_t offset; /* in struct wx_alert_fields */
};

struct wx_notify {
    wx_hub_t *hub;
    wx_wechat_api_t *api;
    wx_sms_client_t *sms;
    outbox_t *outbox;
    wx_journal_reader_t *reader;
    struct wx_notify_options opt;
    char details_url[WX_ALERT_URL_MAX];
    char template_ids[WX_ALERT_KIND_COUNT][64];
    struct tfield tfields[TEMPLATE_MAX_MAP];
    size_t ntfields;

    uint64_t cursor;         /* every row up to here has been looked at */
    uint64_t live_from;      /* the live feed derives rows from here; 0: off */
    uint64_t live_last;      /* the last row the live feed heard of */
    uint64_t durable;        /* the last durable seq heard of */
    uint64_t committed_mark; /* the watermark last handed to the outbox */
    bool pending_rows;       /* rows queued for the outbox since the last batch */
    struct job *unsettled_head, *unsettled_tail; /* live, waiting for durability */
    /* Jobs with sends never recorded, in seq order: the outbox's watermark stays below the
     * first, so a restart derives it again rather than losing it. */
    struct job *open_head, *open_tail;
    struct outbox_todo recorded_beyond; /* at start: sends recorded past the watermark, which
                                           the catch-up must not make again */
    size_t jobs;                        /* alive */

    struct cardq **buckets;
    size_t nbuckets, ncards;
    struct send *ready_head, *ready_tail;
    size_t inflight;
    struct send **heap;
    size_t heap_n, heap_cap;

    struct lang_pref **lbuckets; /* followers' languages (send.c) */
    size_t nlbuckets, nprefs;
    struct watch *watch_head, *watch_tail;
    struct watch_ref **wbuckets;
    size_t nwbuckets, nwatch_refs;
    struct early_report *early; /* a ring of 1 << EARLY_BITS, allocated at the first one */
    uint32_t *early_buckets;
    uint32_t early_next;

    struct event *batch_ev, *retry_ev, *watch_ev, *catch_up_ev;
    bool closing;
    struct wx_notify_stats stats;
};

/* send.c */
void disp_record(struct wx_notify *n, struct send *s);
unsigned disp_jitter(unsigned ms);
void disp_job_free(struct wx_notify *n, struct job *j);
size_t disp_jobs_for_alert(struct wx_notify *n, const struct wx_alert *a, int64_t decided_ms,
                           struct job *out[2]);
struct job *disp_job_for_rows(struct wx_notify *n, const struct wx_send_row *rows, size_t count);
int disp_alert_of_row(struct wx_notify *n, const struct wx_cmd *cmd, const struct wx_result *res,
                      uint64_t seq, int64_t at_ms, struct wx_alert *a);
void disp_sms_fallback(struct wx_notify *n, uint64_t seq, const char *why);
void disp_pump(struct wx_notify *n);
void disp_set_lang(struct wx_notify *n, const char *openid, uint8_t lang);
void disp_free_langs(struct wx_notify *n);

/* queue.c */
void disp_ready_push(struct wx_notify *n, struct send *s);
void disp_card_enqueue(struct wx_notify *n, struct job *j);
void disp_card_advance(struct wx_notify *n, struct job *j);
/* j, its card's head, has a send waiting for a retry: the jobs behind it are recorded. */
void disp_card_hold(struct wx_notify *n, struct job *j);
void disp_heap_push(struct wx_notify *n, struct send *s);
void disp_on_retry(evutil_socket_t fd, short what, void *arg);
void disp_watch_begin(struct wx_notify *n, uint64_t seq, const struct wx_send_row *rows,
                      unsigned count, int64_t since_ms);
void disp_watch_end(struct wx_notify *n, struct watch *w);
void disp_on_watch(evutil_socket_t fd, short what, void *arg);

/* dispatch.c */
void disp_job_release(struct wx_notify *n, struct job *j);
void disp_open_unlink(struct wx_notify *n, struct job *j);
void disp_catch_up_kick(struct wx_notify *n);

#endif
