/*
 * ledger.h - the engine over its journal: start-up, decisions, durability, snapshots.
 *
 * A ledger is what adapters (the ISO 8583 host, the CLI, tests, benchmarks) hold. Opening
 * one loads the latest usable snapshot and replays the journal after it, so the engine is
 * exactly where the last run left it. Submitting a command decides it at once and appends its
 * row to the journal's group commit; the answer may be used only once its seq is durable
 * (wx_ledger_durable_seq / wx_ledger_sync), which is how "nothing is acknowledged before its
 * commit" is kept without waiting for one fsync per decision.
 *
 * A ledger holds an exclusive lock on its database (a second writer would fork the truth).
 * All calls come from one thread, except wx_ledger_durable_seq and the notify fd.
 */
#ifndef WX_LEDGER_LEDGER_H
#define WX_LEDGER_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/engine.h"

struct wx_ledger_options {
    const char *db_path;            /* SQLite file of the journal */
    struct wx_engine_config engine; /* key_seed is filled from the database */
    unsigned batch_max;             /* rows per group commit, 1..WX_BATCH_ROWS_MAX */
    uint64_t snapshot_every;        /* start a snapshot after this many rows; 0 never */
    unsigned commit_gap_us;         /* least time between group commits (journal.h) */
};

typedef struct wx_ledger wx_ledger_t;

/* Fills the engine settings from the engine.* and journal.* configuration keys. */
struct wx_config;
void wx_ledger_options_from_config(const struct wx_config *cfg, const char *db_path,
                                   struct wx_ledger_options *out);

/*
 * Opens (creating if needed) and recovers: deletes snapshots beyond the journal (left by a
 * crash), loads the newest usable snapshot and replays the rows after it. Waits up to a few
 * seconds for the lock. NULL with a message in err on failure.
 */
wx_ledger_t *wx_ledger_open(const struct wx_ledger_options *opt, char *err, size_t errlen);

/* Decides cmd. res->seq (when res->journaled) must be durable before res is acted on. */
void wx_ledger_submit(wx_ledger_t *l, const struct wx_cmd *cmd, struct wx_result *res);

/* Hands the rows appended so far to the committer (end of a loop turn). */
void wx_ledger_flush(wx_ledger_t *l);

/* Blocks until seq is durable (flushing if needed). */
void wx_ledger_sync(wx_ledger_t *l, uint64_t seq);

uint64_t wx_ledger_durable_seq(const wx_ledger_t *l);
int wx_ledger_notify_fd(const wx_ledger_t *l);
const wx_engine_t *wx_ledger_engine(const wx_ledger_t *l);

/* Copies the journal's counters since open (group commits, rows, bytes, commit time), for
 * metrics and benchmarks. */
struct wx_journal_stats;
void wx_ledger_journal_stats(const wx_ledger_t *l, struct wx_journal_stats *out);

/* The seq of the snapshot that opening started from; 0 when it replayed from event 0. */
uint64_t wx_ledger_snapshot_seq(const wx_ledger_t *l);

/* Starts a snapshot in a child process unless one is running; reaps a finished one.
 * The child is killed if this process dies, since its state may not be durable yet. */
void wx_ledger_snapshot(wx_ledger_t *l);

/* Makes everything durable, waits for a running snapshot, releases the lock and frees l. */
void wx_ledger_close(wx_ledger_t *l);

/*
 * Loads the state the database holds without opening a writer: from the latest snapshot
 * when from_snapshot, else from event 0; in both cases up to the journal's last row at the
 * time of the call (to_seq 0) or up to to_seq. Returns the engine or NULL with a message in err.
 */
wx_engine_t *wx_ledger_load(const struct wx_ledger_options *opt, bool from_snapshot,
                            uint64_t to_seq, char *err, size_t errlen);

/*
 * `wxbank verify`: replays the journal from event 0 and compares the result with the state a
 * restart would start from (latest snapshot + replay), then checks every invariant. Returns 0
 * when identical, 1 with the first difference in err, -1 when the database cannot be read.
 */
int wx_ledger_verify(const struct wx_ledger_options *opt, uint64_t *events, char *err,
                     size_t errlen);

#endif
