/*
 * journal.h - the journal is the truth: an append-only table of decision rows, written in
 * group commits by a thread of its own, read back in seq order at start-up and by tools,
 * and snapshots of the engine state written off the hot path.
 *
 * Rows are opaque here: the engine encodes and decodes them. The journal guarantees three
 * things: seqs are strictly consecutive from 1, a row is reported durable only after the
 * COMMIT that holds it has returned (synchronous=FULL: fsync'd), and any storage error stops
 * the process (fail-stop; a restart replays from the last snapshot).
 *
 * Threads: one thread (the engine's) calls append/flush/wait/set_batch_max/close; the
 * committer thread runs inside; durable_seq, last_seq, stats and notify_fd may be read from
 * any thread.
 */
#ifndef WX_JOURNAL_JOURNAL_H
#define WX_JOURNAL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Error codes: 0 is success; these are the failures. Callbacks' own non-zero values are
 * passed through unchanged, so callbacks should stop with positive values. */
#define WX_JOURNAL_EIO      (-1) /* the database or a file could not be read or written */
#define WX_JOURNAL_ECORRUPT (-2) /* a gap in seqs, a malformed row, a bad snapshot */
#define WX_JOURNAL_ESHORT   (-3) /* the journal ends before the requested last seq */

/* One journal row. body (len bytes) belongs to whoever passes the row; the journal copies. */
struct wx_journal_row {
    uint64_t seq;        /* 1, 2, 3, ... with no gaps */
    int64_t at_ms;       /* decision time, UTC epoch ms */
    uint32_t account_id; /* the account touched (0 if none); partition key for PostgreSQL */
    uint8_t kind;        /* row kind, as the engine defines it */
    uint32_t len;        /* body length, at most WX_ROW_MAX */
    const uint8_t *body; /* the encoded decision */
};

/* Counters since open, for metrics and benchmarks. */
struct wx_journal_stats {
    uint64_t commits;         /* group commits that returned */
    uint64_t rows;            /* rows in them */
    uint64_t bytes;           /* body bytes in them */
    uint64_t commit_us_total; /* wall time spent from BEGIN to the end of COMMIT */
};

typedef struct wx_journal wx_journal_t;

/* ---- Writer ---------------------------------------------------------------------------- */

/*
 * Opens (creating and migrating if needed) the database at db_path and starts the committer
 * thread. Returns the journal, or NULL with a message in err. The caller owns the journal and
 * releases it with wx_journal_close.
 */
wx_journal_t *wx_journal_open(const char *db_path, char *err, size_t errlen);

/* The last seq in the journal: present at open, plus appended since (durable or not). */
uint64_t wx_journal_last_seq(const wx_journal_t *j);

/*
 * Copies row into the accumulating batch. row->seq must be last_seq + 1 and row->len at most
 * WX_ROW_MAX (asserted: the engine produced them). Blocks while the accumulating batch is
 * full (batch_max rows or WX_BATCH_BYTES_MAX bytes) until the committer takes it.
 */
void wx_journal_append(wx_journal_t *j, const struct wx_journal_row *row);

/* Marks the accumulating batch ready: the committer takes it as soon as it is idle, together
 * with whatever is appended before it does. Never blocks. */
void wx_journal_flush(wx_journal_t *j);

/* Sets the most rows a batch holds, 1 to WX_BATCH_ROWS_MAX (asserted). Default: the max. */
void wx_journal_set_batch_max(wx_journal_t *j, unsigned rows);

/*
 * Sets the least time between the starts of two group commits, 0 (the default) to commit
 * whenever the committer is idle. Under moderate load a short gap lets several loop turns
 * share one fsync, which costs far more CPU in the kernel than the rows do; a full batch
 * never waits. At most WX_COMMIT_GAP_MAX_US (asserted).
 */
void wx_journal_set_commit_gap(wx_journal_t *j, unsigned us);

/* The highest seq whose COMMIT has returned. Never more than is on disk. */
uint64_t wx_journal_durable_seq(const wx_journal_t *j);

/* Blocks until durable_seq >= seq, flushing first if seq is still accumulating. seq must not
 * exceed last_seq (asserted: nobody would ever make it durable). */
void wx_journal_wait(wx_journal_t *j, uint64_t seq);

/* An eventfd (non-blocking) that becomes readable after each commit, for an event loop that
 * releases replies waiting for durability. wx_journal_notify_drain resets it. */
int wx_journal_notify_fd(const wx_journal_t *j);
void wx_journal_notify_drain(wx_journal_t *j);

/* Copies the counters. */
void wx_journal_stats(const wx_journal_t *j, struct wx_journal_stats *out);

/* Flushes, waits until everything appended is durable, stops the committer, closes the
 * database and frees j. NULL is ignored. */
void wx_journal_close(wx_journal_t *j);

/* ---- Reader ---------------------------------------------------------------------------- */

/* Called once per row, in seq order. row->body is valid only during the call. Return 0 to go
 * on; any other value stops the scan and becomes its return value. */
typedef int (*wx_journal_row_fn)(void *ctx, const struct wx_journal_row *row);

/*
 * Calls fn for every row with from_seq < seq <= to_seq (to_seq 0: to the end), on a read-only
 * connection of its own, so it may run while a writer has the same database open (it sees
 * the journal as of its start). Returns 0 after the last row; fn's value if fn stopped it;
 * WX_JOURNAL_ECORRUPT on a gap or a malformed row (err names the seq); WX_JOURNAL_ESHORT when
 * the journal ends before a non-zero to_seq; WX_JOURNAL_EIO when the database cannot be read.
 */
int wx_journal_scan(const char *db_path, uint64_t from_seq, uint64_t to_seq, wx_journal_row_fn fn,
                    void *ctx, char *err, size_t errlen);

/* A reader that stays open between scans: one connection and one prepared statement. */
typedef struct wx_journal_reader wx_journal_reader_t;

/* NULL with a message in err when the database cannot be opened. */
wx_journal_reader_t *wx_journal_reader_open(const char *db_path, char *err, size_t errlen);

/* wx_journal_scan on r's connection: each call is a read transaction of its own and sees
 * every row committed before it began. */
int wx_journal_reader_scan(wx_journal_reader_t *r, uint64_t from_seq, uint64_t to_seq,
                           wx_journal_row_fn fn, void *ctx, char *err, size_t errlen);

/* NULL is ignored. */
void wx_journal_reader_close(wx_journal_reader_t *r);

/* ---- Snapshots ------------------------------------------------------------------------- */

/*
 * A snapshot is the engine state as of a seq, in a file next to the database:
 * <db_path>.snap-<seq, 20 digits>, laid out as "WXSNAP01", u64 seq, u64 payload length (both
 * little-endian), the payload, and the SHA-256 of the payload. It is written under a temporary
 * name, fsync'd, renamed into place and the directory fsync'd, so a file with the final name
 * is always complete; a torn or corrupt one is detected by the digest and skipped.
 */

/* Writes the payload to out; returns 0, or non-zero to abandon the snapshot. */
typedef int (*wx_snapshot_write_fn)(void *ctx, FILE *out);

/*
 * Forks; the child writes the snapshot for seq with fn and exits 0 (or 1 on any failure).
 * The parent returns at once with the child's pid in *child: 0, or WX_JOURNAL_EIO if fork
 * failed. The child sees the parent's memory as of the fork, which is what makes a consistent
 * snapshot cheap (copy-on-write, like Redis BGSAVE). Reap it with wx_snapshot_poll.
 */
int wx_snapshot_start(const char *db_path, uint64_t seq, wx_snapshot_write_fn fn, void *ctx,
                      pid_t *child);

/* Reaps a child from wx_snapshot_start: 1 done and the file is in place, 0 still running
 * (only when !wait), WX_JOURNAL_EIO when it failed. */
int wx_snapshot_poll(pid_t child, bool wait);

/* Same as wx_snapshot_start without the fork, in the calling thread: 0 or WX_JOURNAL_EIO
 * (fn's failure included; the error is logged). */
int wx_snapshot_write_now(const char *db_path, uint64_t seq, wx_snapshot_write_fn fn, void *ctx);

/*
 * Finds the newest snapshot of db_path whose seq <= max_seq and whose header and digest
 * verify; corrupt ones are skipped with a warning. Returns 1 with its path (cap bytes) and
 * *seq, 0 when there is none, WX_JOURNAL_EIO when the directory cannot be read.
 */
int wx_snapshot_find(const char *db_path, uint64_t max_seq, char *path, size_t cap, uint64_t *seq);

/*
 * Opens the snapshot at path and verifies it (reads it whole). Returns 0 with *seq, *len and
 * *payload, a FILE positioned at the payload's first byte (the caller reads *len bytes and
 * fcloses it), or WX_JOURNAL_EIO / WX_JOURNAL_ECORRUPT with a message in err.
 */
int wx_snapshot_open(const char *path, uint64_t *seq, uint64_t *len, FILE **payload, char *err,
                     size_t errlen);

/* Deletes all but the newest `keep` snapshots of db_path that verify; corrupt ones go too. */
void wx_snapshot_prune(const char *db_path, unsigned keep);

/* Deletes temporary files left by snapshot writers that died before renaming them. Call
 * only while no writer can be running (the ledger does at open, under its lock, which every
 * writer holds). */
void wx_snapshot_remove_temporaries(const char *db_path);

/* A static description of a WX_JOURNAL_E* code. */
const char *wx_journal_strerror(int rc);

#endif
