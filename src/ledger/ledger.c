/*
 * ledger.c - recovery (snapshot + replay), submission into group commit, snapshots, verify.
 *
 * Snapshots are forked from the live state, which may be ahead of what is durable. Two rules
 * keep such a snapshot from ever being trusted wrongly: the snapshot writer dies with the
 * ledger's process (so a crash cannot leave one being written behind it), and opening a
 * ledger deletes every snapshot beyond the journal's last row before any new row is written
 * (otherwise new, different rows would reach its seq and make a snapshot of a lost future
 * look valid).
 */
#include "ledger/ledger.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "journal/journal.h"
#include "ledger/replay_int.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/config.h"
#include "util/crypto.h"
#include "util/log.h"

#define SEED_META_KEY  "engine.key_seed"
#define SNAPSHOTS_KEPT 2
/* A finished snapshot writer is looked for once per this many rows, not on every row. */
#define SNAPSHOT_POLL_ROWS 1024u
/* How long opening waits for the lock: a crashed writer's snapshot child may hold it for a
 * moment after the writer died (it is being killed too). */
#define LOCK_WAIT_MS 3000
#define LOCK_POLL_MS 10

struct wx_ledger {
    struct wx_ledger_options opt;
    char *db_path;           /* owned copy of opt.db_path */
    wx_engine_t *engine;     /* the state; owned */
    wx_journal_t *journal;   /* the writer; owned */
    int lock_fd;             /* flock'd <db>.lock */
    pid_t snapshot_child;    /* running snapshot writer, or 0 */
    pid_t pid;               /* this process, as the snapshot writer's parent */
    uint64_t since_snapshot; /* rows appended since the last snapshot started */
    uint64_t recovered_from; /* seq of the snapshot recovery started from, 0 if none */
};

void wx_ledger_options_from_config(const struct wx_config *cfg, const char *db_path,
                                   struct wx_ledger_options *out)
{
    memset(out, 0, sizeof *out);
    out->db_path = db_path;
    out->engine.hold_days = (int)wx_config_int(cfg, "engine.hold_days");
    out->engine.hold_days_long = (int)wx_config_int(cfg, "engine.hold_days_long");
    out->engine.capture_tolerance_pct = (int)wx_config_int(cfg, "engine.capture_tolerance_pct");
    out->engine.idempotency_hours = (int)wx_config_int(cfg, "engine.idempotency_hours");
    out->engine.reference_days = (int)wx_config_int(cfg, "engine.reference_days");
    out->batch_max = (unsigned)wx_config_int(cfg, "journal.batch_max");
    out->snapshot_every = (uint64_t)wx_config_int(cfg, "journal.snapshot_every");
    out->commit_gap_us = (unsigned)wx_config_int(cfg, "journal.commit_gap_us");
}

/* Reads the database's key seed, creating it on first use. */
static int key_seed(const char *db_path, uint8_t seed[16], char *err, size_t errlen)
{
    sqlite3 *db;
    if (wx_store_open(db_path, false, &db, err, errlen) != 0) {
        return -1;
    }
    size_t len = 0;
    int rc = wx_store_meta_get(db, SEED_META_KEY, seed, 16, &len);
    if (rc == 0) {
        wx_random_bytes(seed, 16);
        rc = wx_store_meta_put(db, SEED_META_KEY, seed, 16) == 0 ? 1 : -1;
        len = 16;
    }
    wx_store_close(db);
    if (rc != 1 || len != 16) {
        snprintf(err, errlen, "%s: cannot read or create the engine key seed", db_path);
        return -1;
    }
    return 0;
}

static int no_op_row(void *ctx, const struct wx_journal_row *row)
{
    (void)ctx;
    (void)row;
    return 0;
}

/* Loads the snapshot at path (seq) into *e; false (with *e fresh) when it is unusable. */
static bool load_snapshot_file(wx_engine_t **e, const struct wx_engine_config *cfg,
                               const char *db_path, const char *path, uint64_t seq)
{
    char err[256];
    uint64_t got, len;
    FILE *f;
    if (seq == 0) {
        return false; /* a snapshot of the empty state saves nothing */
    }
    if (wx_journal_scan(db_path, seq - 1, seq, no_op_row, NULL, err, sizeof err) != 0) {
        WX_WARN("%s: the journal does not reach event %" PRIu64 "; not used", path, seq);
        return false;
    }
    if (wx_snapshot_open(path, &got, &len, &f, err, sizeof err) != 0) {
        WX_WARN("%s: %s; trying an older state", path, err);
        return false;
    }
    int rc = wx_engine_load(*e, f, err, sizeof err);
    fclose(f);
    if (rc != 0 || wx_engine_last_seq(*e) != seq) {
        WX_WARN("%s: %s; trying an older state", path, rc != 0 ? err : "seq mismatch");
        wx_engine_free(*e);
        *e = wx_engine_new(cfg);
        return false;
    }
    return true;
}

/*
 * Loads the newest usable snapshot at or below to_seq into *e and returns its seq, or 0
 * when there is none (then *e is still empty). A snapshot can be ahead of the journal
 * (written from rows that never committed before a crash): it is used only if the journal
 * reaches its seq; an unusable one makes the next older one the candidate.
 */
static uint64_t load_snapshot(wx_engine_t **e, const struct wx_engine_config *cfg,
                              const char *db_path, uint64_t to_seq)
{
    char path[4096];
    uint64_t max = to_seq, seq;
    while (max > 0 && wx_snapshot_find(db_path, max, path, sizeof path, &seq) == 1 && seq > 0) {
        assert(seq <= max);
        if (load_snapshot_file(e, cfg, db_path, path, seq)) {
            return seq;
        }
        max = seq - 1;
    }
    return 0;
}

/*
 * Deletes every snapshot newer than the journal's last row: they were forked from rows that
 * never became durable. Called at open, under the lock, before any row is appended.
 * Returns 0, or -1 with err set when one cannot be deleted (opening would be unsafe).
 */
static int discard_future_snapshots(const char *db_path, uint64_t last, char *err, size_t errlen)
{
    char path[4096];
    uint64_t seq;
    while (wx_snapshot_find(db_path, UINT64_MAX, path, sizeof path, &seq) == 1 && seq > last) {
        WX_WARN("%s: ahead of the journal (event %" PRIu64 "); deleted", path, last);
        if (unlink(path) != 0) {
            snprintf(err, errlen, "%s: %s (a snapshot ahead of the journal)", path,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

static wx_engine_t *load_engine(const struct wx_ledger_options *opt, bool from_snapshot,
                                uint64_t to_seq, uint64_t *snapshot_seq, char *err, size_t errlen)
{
    struct wx_engine_config cfg = opt->engine;
    if (key_seed(opt->db_path, cfg.key_seed, err, errlen) != 0) {
        return NULL;
    }
    wx_engine_t *e = wx_engine_new(&cfg);
    *snapshot_seq = 0;
    if (from_snapshot) {
        *snapshot_seq = load_snapshot(&e, &cfg, opt->db_path, to_seq ? to_seq : UINT64_MAX);
    }
    uint64_t from = wx_engine_last_seq(e);
    if (to_seq == 0 || from < to_seq) {
        int rc = wx_ledger_replay(e, opt->db_path, from, to_seq, err, errlen);
        if (rc != 0) {
            wx_engine_free(e);
            return NULL;
        }
    }
    return e;
}

wx_engine_t *wx_ledger_load(const struct wx_ledger_options *opt, bool from_snapshot,
                            uint64_t to_seq, char *err, size_t errlen)
{
    uint64_t snapshot_seq;
    return load_engine(opt, from_snapshot, to_seq, &snapshot_seq, err, errlen);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int lock_database(const char *db_path, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.lock", db_path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; waited += LOCK_POLL_MS) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errlen, "%s: flock: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (waited >= LOCK_WAIT_MS) {
            snprintf(err, errlen, "%s is in use by another wxbank process", db_path);
            close(fd);
            return -1;
        }
        sleep_ms(LOCK_POLL_MS);
    }
    return fd;
}

wx_ledger_t *wx_ledger_open(const struct wx_ledger_options *opt, char *err, size_t errlen)
{
    if (opt->batch_max > WX_BATCH_ROWS_MAX) {
        snprintf(err, errlen, "journal.batch_max: %u is over the limit %u", opt->batch_max,
                 (unsigned)WX_BATCH_ROWS_MAX);
        return NULL;
    }
    int fd = lock_database(opt->db_path, err, errlen);
    if (fd < 0) {
        return NULL;
    }
    struct wx_ledger *l = wx_calloc(1, sizeof *l);
    l->opt = *opt;
    l->db_path = wx_strndup(opt->db_path, strlen(opt->db_path));
    l->opt.db_path = l->db_path;
    l->lock_fd = fd;
    l->pid = getpid();
    l->journal = wx_journal_open(l->db_path, err, errlen);
    if (l->journal == NULL) {
        goto fail;
    }
    wx_journal_set_batch_max(l->journal, opt->batch_max ? opt->batch_max : WX_BATCH_ROWS_MAX);
    wx_journal_set_commit_gap(l->journal, opt->commit_gap_us);
    uint64_t last = wx_journal_last_seq(l->journal);
    if (discard_future_snapshots(l->db_path, last, err, errlen) != 0) {
        goto fail;
    }
    wx_snapshot_remove_temporaries(l->db_path);
    l->engine = load_engine(&l->opt, last > 0, last, &l->recovered_from, err, errlen);
    if (l->engine == NULL) {
        goto fail;
    }
    assert(wx_engine_last_seq(l->engine) == last);
    WX_INFO("ledger %s: recovered at event %" PRIu64 " (snapshot %" PRIu64 " + %" PRIu64
            " replayed)",
            l->db_path, last, l->recovered_from, last - l->recovered_from);
    return l;
fail:
    wx_journal_close(l->journal);
    close(fd);
    free(l->db_path);
    free(l);
    return NULL;
}

void wx_ledger_submit(wx_ledger_t *l, const struct wx_cmd *cmd, struct wx_result *res)
{
    struct wx_row row;
    if (wx_engine_apply(l->engine, cmd, res, &row) == 0) {
        return;
    }
    struct wx_journal_row jr = {.seq = row.seq,
                                .at_ms = row.at_ms,
                                .account_id = row.account_id,
                                .kind = row.kind,
                                .len = row.len,
                                .body = row.buf};
    wx_journal_append(l->journal, &jr);
    if (l->opt.snapshot_every == 0) {
        return;
    }
    l->since_snapshot++;
    if (l->since_snapshot >= l->opt.snapshot_every &&
        (l->snapshot_child == 0 || l->since_snapshot % SNAPSHOT_POLL_ROWS == 0)) {
        wx_ledger_snapshot(l);
    }
}

void wx_ledger_flush(wx_ledger_t *l)
{
    wx_journal_flush(l->journal);
}

void wx_ledger_sync(wx_ledger_t *l, uint64_t seq)
{
    if (seq > 0) {
        wx_journal_wait(l->journal, seq);
    }
}

uint64_t wx_ledger_durable_seq(const wx_ledger_t *l)
{
    return wx_journal_durable_seq(l->journal);
}

int wx_ledger_notify_fd(const wx_ledger_t *l)
{
    return wx_journal_notify_fd(l->journal);
}

const wx_engine_t *wx_ledger_engine(const wx_ledger_t *l)
{
    return l->engine;
}

void wx_ledger_journal_stats(const wx_ledger_t *l, struct wx_journal_stats *out)
{
    wx_journal_stats(l->journal, out);
}

uint64_t wx_ledger_snapshot_seq(const wx_ledger_t *l)
{
    return l->recovered_from;
}

/*
 * Runs in the snapshot child. The child must not outlive the ledger's process: its state may
 * be ahead of the journal, and after a crash only the restart may decide what to keep.
 */
static int save_engine(void *ctx, FILE *out)
{
    const struct wx_ledger *l = ctx;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != l->pid) {
        return -1; /* the parent is already gone */
    }
    return wx_engine_save(l->engine, out);
}

void wx_ledger_snapshot(wx_ledger_t *l)
{
    if (l->snapshot_child != 0) {
        int rc = wx_snapshot_poll(l->snapshot_child, false);
        if (rc == 0) {
            return; /* still writing the previous one */
        }
        l->snapshot_child = 0;
        if (rc == 1) {
            wx_snapshot_prune(l->db_path, SNAPSHOTS_KEPT);
        }
    }
    /* The snapshot may include rows not yet durable; start-up only uses a snapshot whose
     * seq the journal reaches, so a crash before they commit just skips it. */
    uint64_t seq = wx_engine_last_seq(l->engine);
    if (wx_snapshot_start(l->db_path, seq, save_engine, l, &l->snapshot_child) != 0) {
        WX_WARN("snapshot at %" PRIu64 " could not start", seq);
        l->snapshot_child = 0;
    }
    l->since_snapshot = 0;
}

void wx_ledger_close(wx_ledger_t *l)
{
    if (l == NULL) {
        return;
    }
    wx_journal_close(l->journal);
    if (l->snapshot_child != 0 && wx_snapshot_poll(l->snapshot_child, true) == 1) {
        wx_snapshot_prune(l->db_path, SNAPSHOTS_KEPT);
    }
    wx_engine_free(l->engine);
    close(l->lock_fd);
    free(l->db_path);
    free(l);
}

int wx_ledger_verify(const struct wx_ledger_options *opt, uint64_t *events, char *err,
                     size_t errlen)
{
    int fd = lock_database(opt->db_path, err, errlen);
    if (fd < 0) {
        return -1;
    }
    int rc = -1;
    wx_engine_t *live = wx_ledger_load(opt, true, 0, err, errlen);
    wx_engine_t *replayed = NULL;
    if (live == NULL) {
        goto out;
    }
    uint64_t last = wx_engine_last_seq(live);
    replayed = wx_ledger_load(opt, false, last, err, errlen);
    if (replayed == NULL) {
        goto out;
    }
    *events = last;
    wx_engine_check(live);
    wx_engine_check(replayed);
    rc = wx_engine_compare(replayed, live, err, errlen);
out:
    wx_engine_free(live);
    wx_engine_free(replayed);
    close(fd);
    return rc;
}
