/*
 * journal.c - the journal writer: group commit on a thread of its own.
 *
 * The engine thread appends rows into the accumulating ("open") batch; the committer thread
 * takes a batch once it is flushed or full, and writes it as BEGIN; INSERT x n; COMMIT: one
 * fsync for the whole batch. While one batch is being committed the next accumulates, and
 * when the committer is done it takes everything that accumulated meanwhile: the batch size
 * follows the load by itself (natural group commit). Two batch buffers, allocated at open and
 * swapped, keep the hot path free of allocation.
 *
 * Locking: one mutex guards which batch is open and the flags; the engine copies a row into
 * the open batch under it (a few hundred bytes) and the committer holds it only to swap. The
 * committing batch belongs to the committer alone until it is reset. durable_seq is atomic
 * so replies can be released without the lock.
 *
 * Any SQLite error in the committer is fatal (WX_FATAL): nothing can be reported durable that
 * was not committed, and a restart replays from what is on disk.
 */
#include "journal/journal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "journal/checkpoint_int.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/limits.h"
#include "util/log.h"

/* One group commit's worth of rows, with their bodies packed in one buffer. */
struct batch {
    struct wx_journal_row *rows; /* WX_BATCH_ROWS_MAX slots; bodies point into `bytes` */
    uint8_t *bytes;              /* WX_BATCH_BYTES_MAX + WX_ROW_MAX: room for a last row */
    uint32_t n;                  /* rows in use */
    size_t used;                 /* bytes in use */
};

struct wx_journal {
    pthread_mutex_t mu;           /* guards open, ready, closing, batch_max and the open batch */
    pthread_cond_t work;          /* committer waits here for a ready batch or closing */
    pthread_cond_t done;          /* engine waits here for a taken batch or a commit */
    struct batch batches[2];      /* one accumulating, one committing (or empty) */
    unsigned open;                /* index of the accumulating batch */
    bool ready;                   /* the open batch is flushed or full: take it when idle */
    bool closing;                 /* close requested: take everything, then stop */
    unsigned batch_max;           /* rows per batch, 1..WX_BATCH_ROWS_MAX */
    unsigned gap_us;              /* least time between two commits' starts, unless full */
    _Atomic uint64_t last_seq;    /* last appended seq (written by the engine thread only) */
    _Atomic uint64_t durable;     /* last committed seq (written by the committer only) */
    _Atomic uint64_t commits;     /* stats, written by the committer only */
    _Atomic uint64_t rows;        /* ... */
    _Atomic uint64_t bytes;       /* ... */
    _Atomic uint64_t commit_us;   /* ... */
    int efd;                      /* eventfd written after each commit */
    sqlite3 *db;                  /* the committer's connection (used by no other thread) */
    sqlite3_stmt *ins;            /* INSERT INTO journal ... */
    sqlite3_stmt *begin;          /* BEGIN IMMEDIATE */
    sqlite3_stmt *commit;         /* COMMIT */
    pthread_t thread;             /* the committer */
    struct wx_checkpointer *ckpt; /* WAL checkpoints, off the committer */
    bool started;                 /* thread was created (for cleanup after a failed open) */
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool batch_full(const wx_journal_t *j, const struct batch *b)
{
    return b->n >= j->batch_max || b->used >= WX_BATCH_BYTES_MAX;
}

/* Steps a statement that returns no rows; any failure stops the process. */
static void step_or_die(wx_journal_t *j, sqlite3_stmt *st, uint64_t seq)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        WX_FATAL("journal: %s (seq %llu): %s", sqlite3_sql(st), (unsigned long long)seq,
                 sqlite3_errmsg(j->db));
    }
    sqlite3_reset(st);
}

/*
 * Writes batch b in one transaction, publishes its last seq as durable, signals the eventfd,
 * and empties b. Runs on the committer without the lock: b is not the open batch.
 */
static void commit_batch(wx_journal_t *j, struct batch *b)
{
    assert(b->n > 0);
    assert(b->rows[0].seq == atomic_load_explicit(&j->durable, memory_order_relaxed) + 1);
    uint64_t t0 = mono_us();
    step_or_die(j, j->begin, b->rows[0].seq);
    for (uint32_t i = 0; i < b->n; i++) {
        const struct wx_journal_row *r = &b->rows[i];
        sqlite3_bind_int64(j->ins, 1, (sqlite3_int64)r->seq);
        sqlite3_bind_int64(j->ins, 2, r->at_ms);
        sqlite3_bind_int(j->ins, 3, r->kind);
        sqlite3_bind_int64(j->ins, 4, r->account_id);
        sqlite3_bind_blob(j->ins, 5, r->body, (int)r->len, SQLITE_STATIC);
        step_or_die(j, j->ins, r->seq);
    }
    step_or_die(j, j->commit, b->rows[b->n - 1].seq);
    uint64_t t1 = mono_us();

    atomic_fetch_add_explicit(&j->commits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->rows, b->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->bytes, b->used, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->commit_us, t1 - t0, memory_order_relaxed);
    atomic_store_explicit(&j->durable, b->rows[b->n - 1].seq, memory_order_release);

    uint64_t one = 1;
    ssize_t w;
    do {
        w = write(j->efd, &one, sizeof one);
    } while (w < 0 && errno == EINTR);
    /* EAGAIN means the counter is saturated: the fd is readable anyway. */
    assert(w == (ssize_t)sizeof one || errno == EAGAIN);
    b->n = 0;
    b->used = 0;
}

/* The committer: takes the open batch when it is ready (or on close) and commits it. */
/* Waits (lock held) until gap_us have passed since `since_us`, or the open batch is full,
 * or the journal closes: the pause that lets a moderate load share one fsync. */
static void pace(wx_journal_t *j, uint64_t since_us)
{
    while (j->gap_us > 0 && !j->closing && !batch_full(j, &j->batches[j->open])) {
        uint64_t now = mono_us();
        if (now >= since_us + j->gap_us) return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wait_ns = (since_us + j->gap_us - now) * 1000u + (uint64_t)ts.tv_nsec;
        ts.tv_sec += (time_t)(wait_ns / 1000000000u);
        ts.tv_nsec = (long)(wait_ns % 1000000000u);
        pthread_cond_timedwait(&j->work, &j->mu, &ts);
    }
}

static void *committer_main(void *arg)
{
    wx_journal_t *j = arg;
    uint64_t last_start = 0;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        struct batch *b = &j->batches[j->open];
        if (b->n > 0 && (j->ready || j->closing)) {
            pace(j, last_start);
            last_start = mono_us();
            j->open ^= 1u;
            j->ready = false;
            pthread_cond_broadcast(&j->done); /* an engine blocked on a full batch goes on */
            pthread_mutex_unlock(&j->mu);
            commit_batch(j, b);
            pthread_mutex_lock(&j->mu);
            pthread_cond_broadcast(&j->done); /* waiters for durability */
            continue;
        }
        if (j->closing) break;
        pthread_cond_wait(&j->work, &j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Prepares the committer's statements and reads the last seq. 0 or -1 with err set. */
static int prepare(wx_journal_t *j, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(j->db, "SELECT max(seq) FROM journal", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto out;
    sqlite3_int64 last = sqlite3_column_int64(st, 0); /* NULL (empty journal) reads as 0 */
    if (last < 0) {
        snprintf(err, errlen, "journal: negative seq %lld in the journal", (long long)last);
        goto out;
    }
    atomic_store(&j->last_seq, (uint64_t)last);
    atomic_store(&j->durable, (uint64_t)last);
    int flags = SQLITE_PREPARE_PERSISTENT;
    if (sqlite3_prepare_v3(j->db,
                           "INSERT INTO journal(seq, at_ms, kind, account_id, body) "
                           "VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, flags, &j->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(j->db, "BEGIN IMMEDIATE", -1, flags, &j->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(j->db, "COMMIT", -1, flags, &j->commit, NULL) != SQLITE_OK)
        goto out;
    rc = 0;
out:
    if (rc != 0 && err != NULL && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "journal: %s", sqlite3_errmsg(j->db));
    sqlite3_finalize(st);
    return rc;
}

/* Frees whatever a (possibly partial) open created. The thread must not be running. */
static void destroy(wx_journal_t *j)
{
    wx_checkpointer_stop(j->ckpt); /* before the writer closes: its hook points at it */
    sqlite3_finalize(j->ins);
    sqlite3_finalize(j->begin);
    sqlite3_finalize(j->commit);
    wx_store_close(j->db);
    if (j->efd >= 0) close(j->efd);
    for (int i = 0; i < 2; i++) {
        free(j->batches[i].rows);
        free(j->batches[i].bytes);
    }
    pthread_cond_destroy(&j->done);
    pthread_cond_destroy(&j->work);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

wx_journal_t *wx_journal_open(const char *db_path, char *err, size_t errlen)
{
    assert(db_path != NULL);
    if (err != NULL && errlen > 0) err[0] = '\0';
    wx_journal_t *j = wx_calloc(1, sizeof *j);
    j->efd = -1;
    j->batch_max = WX_BATCH_ROWS_MAX;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->work, NULL);
    pthread_cond_init(&j->done, NULL);
    for (int i = 0; i < 2; i++) {
        j->batches[i].rows = wx_calloc(WX_BATCH_ROWS_MAX, sizeof(struct wx_journal_row));
        j->batches[i].bytes = wx_malloc((size_t)WX_BATCH_BYTES_MAX + WX_ROW_MAX);
    }
    if (wx_store_open(db_path, false, &j->db, err, errlen) != 0) goto fail;
    if (prepare(j, err, errlen) != 0) goto fail;
    j->ckpt = wx_checkpointer_start(db_path, j->db, err, errlen);
    if (j->ckpt == NULL) goto fail;
    j->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (j->efd < 0) {
        snprintf(err, errlen, "journal: eventfd: %s", strerror(errno));
        goto fail;
    }
    int rc = pthread_create(&j->thread, NULL, committer_main, j);
    if (rc != 0) {
        snprintf(err, errlen, "journal: starting the committer: %s", strerror(rc));
        goto fail;
    }
    j->started = true;
    return j;
fail:
    destroy(j);
    return NULL;
}

uint64_t wx_journal_last_seq(const wx_journal_t *j)
{
    return atomic_load_explicit(&j->last_seq, memory_order_relaxed);
}

uint64_t wx_journal_durable_seq(const wx_journal_t *j)
{
    return atomic_load_explicit(&j->durable, memory_order_acquire);
}

void wx_journal_append(wx_journal_t *j, const struct wx_journal_row *row)
{
    uint64_t last = atomic_load_explicit(&j->last_seq, memory_order_relaxed);
    assert(row->seq == last + 1);
    assert(row->len <= WX_ROW_MAX);
    assert(row->len == 0 || row->body != NULL);
    pthread_mutex_lock(&j->mu);
    assert(!j->closing);
    struct batch *b = &j->batches[j->open];
    while (batch_full(j, b)) { /* backpressure: wait for the committer to take it */
        j->ready = true;
        pthread_cond_signal(&j->work);
        pthread_cond_wait(&j->done, &j->mu);
        b = &j->batches[j->open];
    }
    struct wx_journal_row *r = &b->rows[b->n++];
    *r = *row;
    r->body = b->bytes + b->used;
    if (row->len > 0) memcpy(b->bytes + b->used, row->body, row->len);
    b->used += row->len;
    if (batch_full(j, b)) { /* full now: let the committer take it as soon as it is idle */
        j->ready = true;
        pthread_cond_signal(&j->work);
    }
    /* Published under the lock, so no thread can see durable_seq pass last_seq. */
    atomic_store_explicit(&j->last_seq, row->seq, memory_order_relaxed);
    pthread_mutex_unlock(&j->mu);
}

/* Marks the open batch ready if it holds anything. Called with the lock held. */
static void flush_locked(wx_journal_t *j)
{
    if (j->batches[j->open].n > 0 && !j->ready) {
        j->ready = true;
        pthread_cond_signal(&j->work);
    }
}

void wx_journal_flush(wx_journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    flush_locked(j);
    pthread_mutex_unlock(&j->mu);
}

void wx_journal_set_commit_gap(wx_journal_t *j, unsigned us)
{
    assert(us <= WX_COMMIT_GAP_MAX_US);
    pthread_mutex_lock(&j->mu);
    j->gap_us = us;
    pthread_mutex_unlock(&j->mu);
}

void wx_journal_set_batch_max(wx_journal_t *j, unsigned rows)
{
    assert(rows >= 1);
    assert(rows <= WX_BATCH_ROWS_MAX);
    pthread_mutex_lock(&j->mu);
    j->batch_max = rows;
    if (batch_full(j, &j->batches[j->open])) flush_locked(j);
    pthread_mutex_unlock(&j->mu);
}

void wx_journal_wait(wx_journal_t *j, uint64_t seq)
{
    assert(seq <= wx_journal_last_seq(j));
    if (wx_journal_durable_seq(j) >= seq) return;
    pthread_mutex_lock(&j->mu);
    flush_locked(j); /* seq may still be accumulating: nobody else would flush it */
    while (wx_journal_durable_seq(j) < seq)
        pthread_cond_wait(&j->done, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

int wx_journal_notify_fd(const wx_journal_t *j)
{
    return j->efd;
}

void wx_journal_notify_drain(wx_journal_t *j)
{
    uint64_t count;
    ssize_t r;
    do {
        r = read(j->efd, &count, sizeof count);
    } while (r < 0 && errno == EINTR);
    /* EAGAIN: nothing to drain. One read resets an eventfd's counter to 0. */
    assert(r == (ssize_t)sizeof count || errno == EAGAIN);
}

void wx_journal_stats(const wx_journal_t *j, struct wx_journal_stats *out)
{
    out->commits = atomic_load_explicit(&j->commits, memory_order_relaxed);
    out->rows = atomic_load_explicit(&j->rows, memory_order_relaxed);
    out->bytes = atomic_load_explicit(&j->bytes, memory_order_relaxed);
    out->commit_us_total = atomic_load_explicit(&j->commit_us, memory_order_relaxed);
}

void wx_journal_close(wx_journal_t *j)
{
    if (j == NULL) return;
    assert(j->started);
    pthread_mutex_lock(&j->mu);
    j->closing = true;
    pthread_cond_signal(&j->work);
    pthread_mutex_unlock(&j->mu);
    int rc = pthread_join(j->thread, NULL);
    assert(rc == 0);
    (void)rc;
    assert(wx_journal_durable_seq(j) == wx_journal_last_seq(j));
    destroy(j);
}

const char *wx_journal_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case WX_JOURNAL_EIO:
        return "journal I/O error";
    case WX_JOURNAL_ECORRUPT:
        return "journal corrupt";
    case WX_JOURNAL_ESHORT:
        return "journal ends early";
    default:
        return "unknown journal error";
    }
}
