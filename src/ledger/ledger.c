/*
 * ledger.c - recovery (snapshot + replay), submission into group commit, snapshots, verify.
 */
#include "ledger/ledger.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "journal/journal.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/config.h"
#include "util/crypto.h"
#include "util/log.h"

#define SEED_META_KEY   "engine.key_seed"
#define SNAPSHOTS_KEPT  2

struct wx_ledger {
    struct wx_ledger_options opt;
    char *db_path;           /* owned copy of opt.db_path */
    wx_engine_t *engine;     /* the state; owned */
    wx_journal_t *journal;   /* the writer; owned */
    int lock_fd;             /* flock'd <db>.lock */
    pid_t snapshot_child;    /* running snapshot writer, or 0 */
    uint64_t since_snapshot; /* rows appended since the last snapshot started */
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

struct replay_ctx {
    wx_engine_t *engine;
    char *err;
    size_t errlen;
};

static int replay_row(void *ctx, const struct wx_journal_row *row)
{
    struct replay_ctx *r = ctx;
    return wx_engine_replay(r->engine, row->seq, row->body, row->len, r->err, r->errlen) == 0
               ? 0
               : 1;
}

static int no_op_row(void *ctx, const struct wx_journal_row *row)
{
    (void)ctx;
    (void)row;
    return 0;
}

/* Loads the newest snapshot at or below to_seq into e; false when there is none usable.
 * A snapshot can be ahead of the journal (written from rows that never committed before a
 * crash): it is used only if the journal reaches its seq. */
static bool load_snapshot(wx_engine_t **e, const struct wx_engine_config *cfg,
                          const char *db_path, uint64_t to_seq)
{
    char path[4096], err[256];
    uint64_t seq, len;
    FILE *f;
    if (wx_snapshot_find(db_path, to_seq, path, sizeof path, &seq) != 1) {
        return false;
    }
    if (wx_journal_scan(db_path, seq - 1, seq, no_op_row, NULL, err, sizeof err) != 0) {
        WX_WARN("%s: the journal does not reach event %" PRIu64 "; not used", path, seq);
        return false;
    }
    if (wx_snapshot_open(path, &seq, &len, &f, err, sizeof err) != 0) {
        WX_WARN("%s: %s; replaying from an older state", path, err);
        return false;
    }
    int rc = wx_engine_load(*e, f, err, sizeof err);
    fclose(f);
    if (rc != 0) {
        WX_WARN("%s: %s; replaying from event 0", path, err);
        wx_engine_free(*e);
        *e = wx_engine_new(cfg);
        return false;
    }
    return true;
}

wx_engine_t *wx_ledger_load(const struct wx_ledger_options *opt, bool from_snapshot,
                            uint64_t to_seq, char *err, size_t errlen)
{
    struct wx_engine_config cfg = opt->engine;
    if (key_seed(opt->db_path, cfg.key_seed, err, errlen) != 0) {
        return NULL;
    }
    wx_engine_t *e = wx_engine_new(&cfg);
    if (from_snapshot) {
        load_snapshot(&e, &cfg, opt->db_path, to_seq ? to_seq : UINT64_MAX);
    }
    struct replay_ctx ctx = {.engine = e, .err = err, .errlen = errlen};
    uint64_t from = wx_engine_last_seq(e);
    if (to_seq == 0 || from < to_seq) {
        int rc = wx_journal_scan(opt->db_path, from, to_seq, replay_row, &ctx, err, errlen);
        if (rc != 0) {
            wx_engine_free(e);
            return NULL;
        }
    }
    return e;
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
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s is in use by another wxbank process", db_path);
        close(fd);
        return -1;
    }
    return fd;
}

wx_ledger_t *wx_ledger_open(const struct wx_ledger_options *opt, char *err, size_t errlen)
{
    int fd = lock_database(opt->db_path, err, errlen);
    if (fd < 0) {
        return NULL;
    }
    struct wx_ledger *l = wx_calloc(1, sizeof *l);
    l->opt = *opt;
    l->db_path = wx_strndup(opt->db_path, strlen(opt->db_path));
    l->opt.db_path = l->db_path;
    l->lock_fd = fd;
    l->journal = wx_journal_open(l->db_path, err, errlen);
    if (l->journal == NULL) {
        goto fail;
    }
    wx_journal_set_batch_max(l->journal, opt->batch_max ? opt->batch_max : WX_BATCH_ROWS_MAX);
    uint64_t last = wx_journal_last_seq(l->journal);
    l->engine = wx_ledger_load(&l->opt, last > 0, last, err, errlen);
    if (l->engine == NULL) {
        goto fail;
    }
    assert(wx_engine_last_seq(l->engine) == last);
    WX_INFO("ledger %s: recovered at event %" PRIu64, l->db_path, last);
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
    struct wx_journal_row jr = {.seq = row.seq, .at_ms = row.at_ms, .account_id = row.account_id,
                                .kind = row.kind, .len = row.len, .body = row.buf};
    wx_journal_append(l->journal, &jr);
    if (l->opt.snapshot_every && ++l->since_snapshot >= l->opt.snapshot_every) {
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

static int save_engine(void *ctx, FILE *out)
{
    return wx_engine_save(ctx, out);
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
    if (wx_snapshot_start(l->db_path, seq, save_engine, l->engine, &l->snapshot_child) != 0) {
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
