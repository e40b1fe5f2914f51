/*
 * outbox.c - what became of every alert send, in <db>.notify, recorded off the loop.
 *
 * The journal holds the alerts themselves (the rows they report); this file holds only their
 * sends' fates and a watermark, so the dispatcher can restart exactly where it stopped. The
 * loop queues rows; a thread of its own writes them in one transaction per batch, so a slow
 * disk never stalls the loop that also answers the card switch. synchronous=NORMAL: a
 * committed batch survives the process dying (the case that matters, a crash or a kill);
 * after a power loss the last batches may be lost, and their sends go again with the same
 * idempotency reference, which is the documented resend window, never a loss.
 *
 * Staff replay dead sends from another process (`wxbank alerts replay`) by flagging rows;
 * the thread looks for flags every second and hands them to the loop.
 */
#include "notify/notify_int.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "net/net.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

#define POLL_MS        1000                  /* replay flags are looked for this often */
#define PRUNE_EVERY_MS (3600 * 1000LL)       /* finished rows are pruned this often */
#define KEEP_MS        (30 * 86400 * 1000LL) /* finished rows are kept this long */
#define REPLAY_MAX     10000                 /* replays handed over at once, at most */
#define REPLAY_MIN     16   /* ... and at least, when any room is left (a row has <= 11 sends) */
#define RETRY_PAUSE_MS 1000 /* after a failed batch */
#define HANDED_WARN    (1u << 20) /* rows waiting: the disk is far behind */

static const char *const SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS watermark(id INTEGER PRIMARY KEY CHECK (id = 1),"
    " seq INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sends("
    " seq INTEGER NOT NULL, channel INTEGER NOT NULL, recipient TEXT NOT NULL,"
    " state INTEGER NOT NULL, watch INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " msgid INTEGER NOT NULL, first_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " errcode INTEGER NOT NULL, error TEXT NOT NULL, replay INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (seq, channel, recipient)) WITHOUT ROWID;"
    /* Small partial indexes: only the rows a restart, the watch or staff look for. */
    /* A follower's language for alerts, written by staff or the chat, read by the dispatcher. */
    "CREATE TABLE IF NOT EXISTS prefs(openid TEXT PRIMARY KEY, lang INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS prefs_updated ON prefs(updated_ms);"
    "CREATE INDEX IF NOT EXISTS sends_pending ON sends(seq) WHERE state = 0;"
    "CREATE INDEX IF NOT EXISTS sends_dead ON sends(seq) WHERE state = 4;"
    "CREATE INDEX IF NOT EXISTS sends_watch ON sends(seq) WHERE watch = 1;"
    "CREATE INDEX IF NOT EXISTS sends_replay ON sends(seq) WHERE replay = 1;";

#define COLUMNS                                                                                    \
    "seq, channel, recipient, state, watch, attempts, msgid, first_ms, updated_ms, errcode, error"

struct rowvec {
    struct wx_send_row *v;
    size_t n, cap;
};

struct outbox {
    sqlite3 *db; /* the thread's, once it runs */
    sqlite3_stmt *put, *mark;
    wx_hub_t *hub;
    struct outbox_hooks hooks;
    int64_t prefs_seen_ms; /* the thread's: preferences up to this time were handed over */
    struct rowvec cur;     /* the loop's: rows queued since the last commit */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rowvec handed; /* under mu: rows for the thread */
    uint64_t handed_mark; /* under mu: the watermark they complete; 0 none */
    bool stopping;        /* under mu */
    int64_t last_prune_ms;
    atomic_uint_least64_t recorded;
    atomic_size_t room; /* alerts the loop takes on: replays beyond wait flagged */
    char path[4096];
};

/* What one look found, carried to the loop. */
struct found_task {
    struct wx_hub_task task;
    outbox_t *o;
    struct outbox_todo todo;
    struct outbox_prefs prefs;
};

/* ---- rows --------------------------------------------------------------------------------- */

static void rowvec_push(struct rowvec *rv, const struct wx_send_row *r)
{
    if (rv->n == rv->cap) {
        rv->cap = rv->cap ? rv->cap * 2 : 1024;
        rv->v = wx_reallocarray(rv->v, rv->cap, sizeof *rv->v);
    }
    rv->v[rv->n++] = *r;
}

static void read_send(sqlite3_stmt *st, struct wx_send_row *r)
{
    memset(r, 0, sizeof *r);
    r->seq = (uint64_t)sqlite3_column_int64(st, 0);
    r->channel = (uint8_t)sqlite3_column_int(st, 1);
    snprintf(r->to, sizeof r->to, "%s", (const char *)sqlite3_column_text(st, 2));
    r->state = (uint8_t)sqlite3_column_int(st, 3);
    r->watch = sqlite3_column_int(st, 4) != 0;
    r->attempts = (uint16_t)sqlite3_column_int(st, 5);
    r->msgid = (uint64_t)sqlite3_column_int64(st, 6);
    r->first_ms = sqlite3_column_int64(st, 7);
    r->updated_ms = sqlite3_column_int64(st, 8);
    r->errcode = sqlite3_column_int(st, 9);
    snprintf(r->error, sizeof r->error, "%s", (const char *)sqlite3_column_text(st, 10));
}

/* Runs a SELECT of COLUMNS into a todo list. 0 or -1. */
static int select_rows(sqlite3 *db, const char *sql, struct outbox_todo *out)
{
    sqlite3_stmt *st;
    struct rowvec rv = {0};
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct wx_send_row r;
        read_send(st, &r);
        rowvec_push(&rv, &r);
    }
    sqlite3_finalize(st);
    out->rows = rv.v;
    out->n = rv.n;
    return step == SQLITE_DONE ? 0 : -1;
}

void outbox_todo_free(struct outbox_todo *t)
{
    free(t->rows);
    t->rows = NULL;
    t->n = 0;
}

enum open_mode {
    OPEN_RECORDER, /* create it, the watermark at start_seq */
    OPEN_EXISTING, /* tools reading or replaying: only an outbox that exists */
    OPEN_PREFS,    /* tools setting a preference: create it, but leave the watermark alone */
};

/*
 * Opens <db_path>.notify. The recorder creates it with the watermark at start_seq, so a bank
 * that turns alerts on does not announce its whole past; a preference written before the
 * first start must not set the watermark either. OPEN_EXISTING: 0 with *db NULL when there
 * is no outbox yet.
 */
static int open_db(const char *db_path, enum open_mode mode, uint64_t start_seq, sqlite3 **db,
                   char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.notify", db_path);
    int flags = SQLITE_OPEN_READWRITE | (mode != OPEN_EXISTING ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, db, flags, NULL);
    if (mode == OPEN_EXISTING && rc == SQLITE_CANTOPEN) {
        sqlite3_close(*db);
        *db = NULL;
        return 0;
    }
    char init[96];
    snprintf(init, sizeof init, "INSERT OR IGNORE INTO watermark VALUES (1, %llu)",
             (unsigned long long)start_seq);
    if (rc != SQLITE_OK || sqlite3_busy_timeout(*db, 5000) != SQLITE_OK ||
        sqlite3_exec(*db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
        (mode == OPEN_RECORDER && sqlite3_exec(*db, init, NULL, NULL, NULL) != SQLITE_OK)) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(*db));
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

/* ---- the recording thread --------------------------------------------------------------- */

static int write_rows(outbox_t *o, const struct rowvec *rv, uint64_t mark)
{
    if (sqlite3_exec(o->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return -1;
    for (size_t i = 0; i < rv->n; i++) {
        const struct wx_send_row *r = &rv->v[i];
        sqlite3_stmt *st = o->put;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
        sqlite3_bind_int(st, 2, r->channel);
        sqlite3_bind_text(st, 3, r->to, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, r->state);
        sqlite3_bind_int(st, 5, r->watch ? 1 : 0);
        sqlite3_bind_int(st, 6, r->attempts);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)r->msgid);
        sqlite3_bind_int64(st, 8, r->first_ms);
        sqlite3_bind_int64(st, 9, r->updated_ms);
        sqlite3_bind_int(st, 10, r->errcode);
        sqlite3_bind_text(st, 11, r->error, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) goto fail;
    }
    if (mark != 0) {
        sqlite3_bind_int64(o->mark, 1, (sqlite3_int64)mark);
        int rc = sqlite3_step(o->mark);
        sqlite3_reset(o->mark);
        if (rc != SQLITE_DONE) goto fail;
    }
    if (sqlite3_exec(o->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    atomic_fetch_add(&o->recorded, rv->n);
    return 0;
fail:
    WX_ERROR("notify: recording %zu sends in %s: %s", rv->n, o->path, sqlite3_errmsg(o->db));
    sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static void run_found(struct wx_hub_task *t, bool cancelled)
{
    struct found_task *ft = (struct found_task *)t;
    const struct outbox_hooks *h = &ft->o->hooks;
    if (!cancelled && ft->todo.n > 0) h->replay(h->arg, &ft->todo);
    if (!cancelled && ft->prefs.n > 0) h->prefs(h->arg, &ft->prefs);
    outbox_todo_free(&ft->todo);
    outbox_prefs_free(&ft->prefs);
    free(ft);
}

void outbox_prefs_free(struct outbox_prefs *p)
{
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

/* Preferences changed at or after since_ms (a change in the same millisecond as the last
 * look may have come after it: it is handed over again, harmlessly, once more at most). */
static int read_prefs(sqlite3 *db, int64_t since_ms, struct outbox_prefs *out, int64_t *latest)
{
    sqlite3_stmt *st;
    size_t cap = 0;
    memset(out, 0, sizeof *out);
    if (sqlite3_prepare_v2(db,
                           "SELECT openid, lang, updated_ms FROM prefs WHERE updated_ms >= ?1 "
                           "ORDER BY updated_ms",
                           -1, &st, NULL) != SQLITE_OK) {
        return -1;
    }
    sqlite3_bind_int64(st, 1, since_ms);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            out->v = wx_reallocarray(out->v, cap, sizeof *out->v);
        }
        struct outbox_pref *p = &out->v[out->n++];
        snprintf(p->openid, sizeof p->openid, "%s", (const char *)sqlite3_column_text(st, 0));
        p->lang = (uint8_t)sqlite3_column_int(st, 1);
        int64_t at = sqlite3_column_int64(st, 2);
        if (at > *latest) *latest = at;
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : -1;
}

/* Takes flagged rows (wxbank alerts replay) and clears their flags, in one transaction so
 * that a flag set meanwhile is neither lost nor handed over twice. */
static void poll_replays(outbox_t *o, struct outbox_todo *todo)
{
    memset(todo, 0, sizeof *todo);
    /* No more than the loop has room for: `replay --all` after a long outage must not swamp
     * it (the rest wait flagged for the next looks). */
    size_t room = atomic_load_explicit(&o->room, memory_order_relaxed);
    if (room == 0) return;
    size_t limit = room < REPLAY_MIN ? REPLAY_MIN : room > REPLAY_MAX ? REPLAY_MAX : room;
    char select[256];
    snprintf(select, sizeof select,
             "SELECT " COLUMNS " FROM sends WHERE replay = 1 ORDER BY seq, channel LIMIT %zu",
             limit);
    if (sqlite3_exec(o->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return;
    if (select_rows(o->db, select, todo) != 0) goto fail;
    /* A full batch may end inside a seq: that seq's rows wait for the next look (unless one
     * seq fills the whole batch, which cannot happen: a row has at most 11 sends). */
    if (todo->n == limit && todo->rows[todo->n - 1].seq != todo->rows[0].seq) {
        uint64_t last = todo->rows[todo->n - 1].seq;
        while (todo->rows[todo->n - 1].seq == last)
            todo->n--;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE sends SET replay = 0 WHERE replay = 1 AND seq <= %llu",
             (unsigned long long)(todo->n > 0 ? todo->rows[todo->n - 1].seq : 0));
    if (sqlite3_exec(o->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(o->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        goto fail;
    }
    if (todo->n > 0) WX_INFO("notify: %zu dead sends replayed", todo->n);
    return;
fail:
    WX_ERROR("notify: reading replays in %s: %s", o->path, sqlite3_errmsg(o->db));
    sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
    outbox_todo_free(todo);
}

void outbox_set_room(outbox_t *o, size_t alerts)
{
    atomic_store_explicit(&o->room, alerts, memory_order_relaxed);
}

/* Looks for what staff or the chat asked for since the last look; hands it to the loop. */
static void poll(outbox_t *o)
{
    struct found_task *ft = wx_calloc(1, sizeof *ft);
    ft->task.run = run_found;
    ft->o = o;
    poll_replays(o, &ft->todo);
    int64_t latest = o->prefs_seen_ms;
    if (read_prefs(o->db, o->prefs_seen_ms, &ft->prefs, &latest) != 0) {
        WX_ERROR("notify: reading preferences in %s: %s", o->path, sqlite3_errmsg(o->db));
    }
    /* Past the latest seen, once the clock is: a change in that same millisecond would have
     * been read already, and a later one has a later time. */
    o->prefs_seen_ms = latest < wx_now_ms() ? latest + 1 : latest;
    if (ft->todo.n == 0 && ft->prefs.n == 0) {
        free(ft);
        return;
    }
    wx_hub_post(o->hub, &ft->task);
}

static void prune(outbox_t *o)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "DELETE FROM sends WHERE updated_ms < %lld AND state IN (1, 2, 3, 5) AND watch = 0",
             (long long)(wx_now_ms() - KEEP_MS));
    if (sqlite3_exec(o->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        WX_WARN("notify: pruning %s: %s", o->path, sqlite3_errmsg(o->db));
    }
}

static void wait_for_work(outbox_t *o)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += POLL_MS / 1000;
    while (!o->stopping && o->handed.n == 0 && o->handed_mark == 0) {
        if (pthread_cond_timedwait(&o->cv, &o->mu, &until) == ETIMEDOUT) break;
    }
}

static void *recorder(void *arg)
{
    outbox_t *o = arg;
    struct rowvec batch = {0};
    int64_t last_poll = 0;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        wait_for_work(o);
        struct rowvec tmp = batch;
        batch = o->handed;
        o->handed = tmp;
        o->handed.n = 0;
        uint64_t mark = o->handed_mark;
        o->handed_mark = 0;
        bool stopping = o->stopping;
        pthread_mutex_unlock(&o->mu);
        while ((batch.n > 0 || mark != 0) && write_rows(o, &batch, mark) != 0 && !stopping) {
            struct timespec pause = {.tv_sec = RETRY_PAUSE_MS / 1000};
            nanosleep(&pause, NULL);
        }
        batch.n = 0;
        int64_t now = wx_now_ms();
        if (!stopping && now - last_poll >= POLL_MS) {
            last_poll = now;
            poll(o);
        }
        if (now - o->last_prune_ms >= PRUNE_EVERY_MS) {
            o->last_prune_ms = now;
            prune(o);
        }
        pthread_mutex_lock(&o->mu);
        if (o->stopping && o->handed.n == 0 && o->handed_mark == 0) break;
    }
    pthread_mutex_unlock(&o->mu);
    free(batch.v);
    return NULL;
}

/* ---- the loop's side ---------------------------------------------------------------------- */

static int read_start(sqlite3 *db, uint64_t *watermark, struct outbox_todo *pending,
                      struct outbox_todo *watched, struct outbox_todo *beyond,
                      struct outbox_prefs *prefs, int64_t *prefs_ms)
{
    sqlite3_stmt *st;
    /* One transaction: a replay flagged by a tool meanwhile is either read here or left
     * flagged for the first poll, never cleared unread. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM watermark WHERE id = 1", -1, &st, NULL) !=
        SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
    *watermark = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    char sql[3][256];
    /* Every pending send is reloaded (a fallback SMS or a replay could not be derived again
     * from its row); every send recorded past the watermark, pending or not, is left out when
     * its row is derived again. Replays flagged while no server ran are simply pending now. */
    snprintf(sql[0], sizeof sql[0], "%s",
             "SELECT " COLUMNS " FROM sends WHERE state = 0 ORDER BY seq, channel");
    snprintf(sql[1], sizeof sql[1],
             "SELECT " COLUMNS " FROM sends WHERE seq > %llu ORDER BY seq, channel, recipient",
             (unsigned long long)*watermark);
    snprintf(sql[2], sizeof sql[2], "%s",
             "SELECT " COLUMNS " FROM sends WHERE watch = 1 ORDER BY seq, channel");
    if (rc != 0 || select_rows(db, sql[0], pending) != 0 || select_rows(db, sql[1], beyond) != 0 ||
        sqlite3_exec(db, "UPDATE sends SET replay = 0 WHERE replay = 1", NULL, NULL, NULL) !=
            SQLITE_OK ||
        select_rows(db, sql[2], watched) != 0 || read_prefs(db, 0, prefs, prefs_ms) != 0 ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

outbox_t *outbox_open(const char *db_path, struct wx_hub *hub, const struct outbox_hooks *hooks,
                      uint64_t start_seq, uint64_t *watermark, struct outbox_todo *pending,
                      struct outbox_todo *watched, struct outbox_todo *beyond,
                      struct outbox_prefs *prefs, char *err, size_t errlen)
{
    memset(pending, 0, sizeof *pending);
    memset(watched, 0, sizeof *watched);
    memset(beyond, 0, sizeof *beyond);
    memset(prefs, 0, sizeof *prefs);
    outbox_t *o = wx_calloc(1, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s.notify", db_path);
    o->hub = hub;
    o->hooks = *hooks;
    o->last_prune_ms = wx_now_ms();
    if (open_db(db_path, OPEN_RECORDER, start_seq, &o->db, err, errlen) != 0) {
        free(o);
        return NULL;
    }
    if (read_start(o->db, watermark, pending, watched, beyond, prefs, &o->prefs_seen_ms) != 0 ||
        sqlite3_prepare_v2(o->db,
                           "INSERT OR REPLACE INTO sends (" COLUMNS ") VALUES "
                           "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                           -1, &o->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(o->db, "UPDATE watermark SET seq = ?1 WHERE id = 1 AND seq < ?1", -1,
                           &o->mark, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", o->path, sqlite3_errmsg(o->db));
        goto fail;
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    if (pthread_create(&o->thread, NULL, recorder, o) != 0) {
        snprintf(err, errlen, "notify: cannot start the recording thread");
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
        goto fail;
    }
    return o;
fail:
    outbox_todo_free(pending);
    outbox_todo_free(watched);
    outbox_todo_free(beyond);
    outbox_prefs_free(prefs);
    sqlite3_finalize(o->put);
    sqlite3_finalize(o->mark);
    sqlite3_close(o->db);
    free(o);
    return NULL;
}

void outbox_put(outbox_t *o, const struct wx_send_row *row)
{
    assert(row->channel == WX_SEND_WECHAT || row->channel == WX_SEND_SMS);
    rowvec_push(&o->cur, row);
}

void outbox_commit(outbox_t *o, uint64_t watermark)
{
    if (o->cur.n == 0 && watermark == 0) return;
    pthread_mutex_lock(&o->mu);
    if (o->handed.n == 0) {
        struct rowvec tmp = o->handed;
        o->handed = o->cur;
        o->cur = tmp;
    } else {
        for (size_t i = 0; i < o->cur.n; i++)
            rowvec_push(&o->handed, &o->cur.v[i]);
    }
    o->cur.n = 0;
    if (watermark > o->handed_mark) o->handed_mark = watermark;
    if (o->handed.n >= HANDED_WARN) {
        WX_WARN("notify: %zu send rows wait for %s: the disk is behind", o->handed.n, o->path);
    }
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

uint64_t outbox_recorded(const outbox_t *o)
{
    return atomic_load(&((outbox_t *)o)->recorded);
}

void outbox_close(outbox_t *o)
{
    if (o == NULL) return;
    outbox_commit(o, 0);
    pthread_mutex_lock(&o->mu);
    o->stopping = true;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
    sqlite3_finalize(o->put);
    sqlite3_finalize(o->mark);
    sqlite3_close(o->db);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o->cur.v);
    free(o->handed.v);
    free(o);
}

/* ---- tools ------------------------------------------------------------------------------- */

static const char *const STATE_NAMES[] = {"pending", "accepted", "delivered",
                                          "failed",  "dead",     "undelivered"};

const char *wx_send_state_name(uint8_t state)
{
    return state < sizeof STATE_NAMES / sizeof STATE_NAMES[0] ? STATE_NAMES[state] : "unknown";
}

const char *wx_send_channel_name(uint8_t channel)
{
    return channel == WX_SEND_WECHAT ? "wechat" : channel == WX_SEND_SMS ? "sms" : "unknown";
}

void wx_send_row_shown_to(const struct wx_send_row *r, char *out, size_t cap)
{
    size_t len = strlen(r->to);
    if (r->channel != WX_SEND_SMS || len < 8) {
        snprintf(out, cap, "%s", r->to);
        return;
    }
    snprintf(out, cap, "%.*s****%s", (int)(len - 8), r->to, r->to + len - 4);
}

int wx_outbox_list(const char *db_path, int state, uint64_t from_seq, size_t limit,
                   void (*fn)(void *ctx, const struct wx_send_row *row), void *ctx, char *err,
                   size_t errlen)
{
    sqlite3 *db;
    if (open_db(db_path, OPEN_EXISTING, 0, &db, err, errlen) != 0) return -1;
    if (db == NULL) return 0;
    sqlite3_stmt *st;
    int rc = -1;
    /* The state is written into the statement: only then may SQLite use the small partial
     * indexes on pending and dead sends instead of walking every send kept. */
    assert(state < WX_SEND_STATES);
    char sql[320], where[24] = "";
    if (state >= 0) snprintf(where, sizeof where, "state = %d AND", state);
    snprintf(sql, sizeof sql,
             "SELECT " COLUMNS " FROM sends WHERE %s seq >= ?2 ORDER BY seq, channel, recipient "
             "LIMIT ?3",
             where);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 2, (sqlite3_int64)from_seq);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)(limit > INT64_MAX ? INT64_MAX : limit));
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            struct wx_send_row r;
            read_send(st, &r);
            fn(ctx, &r);
        }
        rc = step == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    if (rc != 0) snprintf(err, errlen, "%s.notify: %s", db_path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

int wx_outbox_counts(const char *db_path, uint64_t counts[WX_SEND_STATES], uint64_t *watermark,
                     char *err, size_t errlen)
{
    sqlite3 *db;
    memset(counts, 0, WX_SEND_STATES * sizeof counts[0]);
    *watermark = 0;
    if (open_db(db_path, OPEN_EXISTING, 0, &db, err, errlen) != 0) return -1;
    if (db == NULL) return 0;
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT state, count(*) FROM sends GROUP BY state UNION ALL "
                           "SELECT -1, seq FROM watermark",
                           -1, &st, NULL) == SQLITE_OK) {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            int s = sqlite3_column_int(st, 0);
            uint64_t v = (uint64_t)sqlite3_column_int64(st, 1);
            if (s == -1) {
                *watermark = v;
            } else if (s >= 0 && s < WX_SEND_STATES) {
                counts[s] = v;
            }
        }
        rc = step == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    if (rc != 0) snprintf(err, errlen, "%s.notify: %s", db_path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

long wx_outbox_replay(const char *db_path, uint64_t seq, char *err, size_t errlen)
{
    sqlite3 *db;
    if (open_db(db_path, OPEN_EXISTING, 0, &db, err, errlen) != 0) return -1;
    if (db == NULL) return 0;
    sqlite3_stmt *st;
    long n = -1;
    /* A replay starts its sends' maximum age afresh. */
    if (sqlite3_prepare_v2(db,
                           "UPDATE sends SET state = 0, replay = 1, attempts = 0, first_ms = ?2,"
                           " updated_ms = ?2 WHERE state = 4 AND (?1 = 0 OR seq = ?1)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        sqlite3_bind_int64(st, 2, wx_now_ms());
        if (sqlite3_step(st) == SQLITE_DONE) n = sqlite3_changes(db);
        sqlite3_finalize(st);
    }
    if (n < 0) snprintf(err, errlen, "%s.notify: %s", db_path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return n;
}

int wx_outbox_set_lang(const char *db_path, const char *openid, enum wx_lang lang, char *err,
                       size_t errlen)
{
    sqlite3 *db;
    if (open_db(db_path, OPEN_PREFS, 0, &db, err, errlen) != 0) return -1;
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO prefs VALUES (?1, ?2, ?3)", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, openid, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, (int)lang);
        sqlite3_bind_int64(st, 3, wx_now_ms());
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    if (rc != 0) snprintf(err, errlen, "%s.notify: %s", db_path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}
