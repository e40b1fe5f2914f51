/*
 * journal_read.c - reading the journal back in seq order: start-up replay, verify, tools.
 *
 * One prepared statement walks the rowid b-tree (seq is the rowid), so rows come out in order
 * without a sort and without any index the hot path would have to maintain. Bodies are handed
 * to the callback straight from SQLite's page buffer, without a copy.
 *
 * The connection is read-only and the whole scan is one read transaction, so it can run while
 * a writer appends (WAL readers do not block the writer) and it sees the journal as of its
 * start. A long scan keeps the WAL from being checkpointed past that point meanwhile.
 */
#include "journal/journal.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "store/store.h"
#include "util/limits.h"
#include "util/log.h"

/* Reading is sequential: let SQLite map up to 1 GiB of the file instead of copying pages
 * through its cache. */
#define SCAN_PRAGMAS "PRAGMA mmap_size=1073741824"

/*
 * Checks one result row and fills *row from it. `expect` is the seq it must have. Returns 0,
 * or WX_JOURNAL_ECORRUPT with err naming the seq.
 */
static int read_row(sqlite3_stmt *st, uint64_t expect, struct wx_journal_row *row, char *err,
                    size_t errlen)
{
    sqlite3_int64 seq = sqlite3_column_int64(st, 0);
    sqlite3_int64 kind = sqlite3_column_int64(st, 2);
    sqlite3_int64 account = sqlite3_column_int64(st, 3);
    if ((uint64_t)seq != expect) {
        snprintf(err, errlen, "journal: gap: expected seq %llu, found seq %lld",
                 (unsigned long long)expect, (long long)seq);
        return WX_JOURNAL_ECORRUPT;
    }
    const void *body = sqlite3_column_blob(st, 4);
    int len = sqlite3_column_bytes(st, 4);
    if (kind < 0 || kind > UINT8_MAX || account < 0 || account > UINT32_MAX || len < 0 ||
        len > WX_ROW_MAX || sqlite3_column_type(st, 4) != SQLITE_BLOB) {
        snprintf(err, errlen, "journal: malformed row at seq %lld", (long long)seq);
        return WX_JOURNAL_ECORRUPT;
    }
    row->seq = (uint64_t)seq;
    row->at_ms = sqlite3_column_int64(st, 1);
    row->kind = (uint8_t)kind;
    row->account_id = (uint32_t)account;
    row->len = (uint32_t)len;
    row->body = body;
    return 0;
}

/* A read-only connection with the scan statement prepared, kept by readers that come back
 * often (the alert dispatcher reads the rows of each new group commit). */
struct wx_journal_reader {
    sqlite3 *db;
    sqlite3_stmt *st;
    char path[1024];
};

wx_journal_reader_t *wx_journal_reader_open(const char *db_path, char *err, size_t errlen)
{
    assert(db_path != NULL);
    struct wx_journal_reader *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "journal: out of memory");
        return NULL;
    }
    snprintf(r->path, sizeof r->path, "%s", db_path);
    if (wx_store_open(db_path, true, &r->db, err, errlen) != 0) {
        free(r);
        return NULL;
    }
    sqlite3_exec(r->db, SCAN_PRAGMAS, NULL, NULL, NULL); /* only a speed-up: ignore failure */
    if (sqlite3_prepare_v2(r->db,
                           "SELECT seq, at_ms, kind, account_id, body FROM journal "
                           "WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
                           -1, &r->st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "journal: reading %s: %s", db_path, sqlite3_errmsg(r->db));
        wx_journal_reader_close(r);
        return NULL;
    }
    return r;
}

void wx_journal_reader_close(wx_journal_reader_t *r)
{
    if (r == NULL) return;
    sqlite3_finalize(r->st);
    wx_store_close(r->db);
    free(r);
}

int wx_journal_reader_scan(wx_journal_reader_t *r, uint64_t from_seq, uint64_t to_seq,
                           wx_journal_row_fn fn, void *ctx, char *err, size_t errlen)
{
    assert(r != NULL);
    assert(fn != NULL);
    assert(err != NULL);
    assert(errlen > 0);
    assert(from_seq < INT64_MAX);
    assert(to_seq == 0 || to_seq >= from_seq);
    sqlite3_stmt *st = r->st;
    uint64_t expect = from_seq + 1;
    int rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)from_seq);
    sqlite3_bind_int64(st, 2, to_seq == 0 ? INT64_MAX : (sqlite3_int64)to_seq);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct wx_journal_row row;
        rc = read_row(st, expect, &row, err, errlen);
        if (rc != 0) goto out;
        rc = fn(ctx, &row);
        if (rc != 0) goto stopped; /* the callback's value, passed through */
        expect++;
    }
    if (step != SQLITE_DONE) {
        snprintf(err, errlen, "journal: reading %s after seq %llu: %s", r->path,
                 (unsigned long long)(expect - 1), sqlite3_errmsg(r->db));
        rc = WX_JOURNAL_EIO;
        goto out;
    }
    rc = 0;
    if (to_seq != 0 && expect != to_seq + 1) {
        snprintf(err, errlen, "journal: ends at seq %llu, before the requested seq %llu",
                 (unsigned long long)(expect - 1), (unsigned long long)to_seq);
        rc = WX_JOURNAL_ESHORT;
    }
out:
    /* A journal shorter than asked is an answer (recovery asks whether it reaches a
     * snapshot), not a fault: only read errors and corruption are logged here. */
    if (rc != 0 && rc != WX_JOURNAL_ESHORT) WX_ERROR("%s", err);
stopped:
    /* Ends the read transaction: the next scan sees the rows committed since. */
    sqlite3_reset(st);
    return rc;
}

int wx_journal_scan(const char *db_path, uint64_t from_seq, uint64_t to_seq, wx_journal_row_fn fn,
                    void *ctx, char *err, size_t errlen)
{
    wx_journal_reader_t *r = wx_journal_reader_open(db_path, err, errlen);
    if (r == NULL) {
        WX_ERROR("%s", err);
        return WX_JOURNAL_EIO;
    }
    int rc = wx_journal_reader_scan(r, from_seq, to_seq, fn, ctx, err, errlen);
    wx_journal_reader_close(r);
    return rc;
}
