/*
 * history.c - the history projection: schema, catch-up from the journal, queries.
 */
#include "history/history.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "journal/journal.h"

#define HISTORY_BATCH 20000 /* rows per projection transaction */

static const char *const SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;" /* a projection lost in a crash is rebuilt from the journal */
    "CREATE TABLE IF NOT EXISTS watermark(id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER);"
    "INSERT OR IGNORE INTO watermark VALUES (1, 0);"
    "CREATE TABLE IF NOT EXISTS card_txn("
    " seq INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, card_id INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL, kind INTEGER NOT NULL, reason INTEGER NOT NULL,"
    " channel INTEGER NOT NULL, mcc INTEGER NOT NULL, amount INTEGER NOT NULL,"
    " available INTEGER NOT NULL, merchant TEXT NOT NULL, city TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS card_txn_card ON card_txn(card_id, seq);"
    "CREATE INDEX IF NOT EXISTS card_txn_account ON card_txn(account_id, card_id, seq);";

struct projector {
    sqlite3 *db;
    sqlite3_stmt *insert;
    uint64_t last;     /* last journal seq seen */
    unsigned in_batch; /* rows seen in the open transaction */
    char *err;
    size_t errlen;
};

static int open_history(const char *db_path, sqlite3 **db, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.history", db_path);
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(*db, 5000) != SQLITE_OK ||
        sqlite3_exec(*db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(*db));
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

static bool in_history(uint8_t kind)
{
    switch (kind) {
    case WX_CMD_AUTHORIZE:
    case WX_CMD_AUTH_INCREMENT:
    case WX_CMD_CAPTURE:
    case WX_CMD_REVERSAL:
    case WX_CMD_REFUND:
    case WX_CMD_REPAYMENT:
    case WX_CMD_FEE:
    case WX_CMD_INTEREST:
        return true;
    default:
        return false;
    }
}

static const struct wx_merchant *merchant_of(const struct wx_cmd *cmd)
{
    return cmd->kind == WX_CMD_AUTHORIZE ? &cmd->auth.merchant : &cmd->follow.merchant;
}

static int commit_batch(struct projector *p)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(p->db, "UPDATE watermark SET seq = ?1 WHERE id = 1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)p->last);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(st);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(p->db, "COMMIT; BEGIN", NULL, NULL, NULL);
    }
    p->in_batch = 0;
    return rc == SQLITE_OK ? 0 : -1;
}

static int project_row(void *ctx, const struct wx_journal_row *row)
{
    struct projector *p = ctx;
    struct wx_cmd cmd;
    struct wx_result res;
    p->last = row->seq;
    if (in_history(row->kind) && wx_row_decode(row->body, row->len, &cmd, &res) == 0 &&
        res.account_id != 0) {
        bool account_level =
            cmd.kind == WX_CMD_REPAYMENT || cmd.kind == WX_CMD_FEE || cmd.kind == WX_CMD_INTEREST;
        const struct wx_merchant *m = account_level ? NULL : merchant_of(&cmd);
        sqlite3_stmt *st = p->insert;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)row->seq);
        sqlite3_bind_int64(st, 2, res.account_id);
        sqlite3_bind_int64(st, 3, account_level ? 0 : res.id);
        sqlite3_bind_int64(st, 4, cmd.time_ms);
        sqlite3_bind_int(st, 5, cmd.kind);
        sqlite3_bind_int(st, 6, res.reason);
        sqlite3_bind_int(st, 7, m ? m->channel : WX_CHANNEL_INTERNAL);
        sqlite3_bind_int(st, 8, m ? m->mcc : 0);
        sqlite3_bind_int64(st, 9, res.amount);
        sqlite3_bind_int64(st, 10, res.available);
        sqlite3_bind_text(st, 11, m ? m->name : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 12, m ? m->city : "", -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            snprintf(p->err, p->errlen, "history: %s", sqlite3_errmsg(p->db));
            return 1;
        }
    }
    if (++p->in_batch >= HISTORY_BATCH && commit_batch(p) != 0) {
        snprintf(p->err, p->errlen, "history: %s", sqlite3_errmsg(p->db));
        return 1;
    }
    return 0;
}

static int read_watermark(sqlite3 *db, uint64_t *seq)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM watermark WHERE id = 1", -1, &st, NULL) !=
        SQLITE_OK) {
        return -1;
    }
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
    *seq = rc == 0 ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc;
}

static int catch_up_db(sqlite3 *db, const char *db_path, uint64_t *upto, char *err, size_t errlen)
{
    struct projector p = {.db = db, .err = err, .errlen = errlen};
    if (read_watermark(db, &p.last) != 0 ||
        sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO card_txn VALUES"
                           " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                           -1, &p.insert, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "history: %s", sqlite3_errmsg(db));
        sqlite3_finalize(p.insert);
        return -1;
    }
    int rc = wx_journal_scan(db_path, p.last, 0, project_row, &p, err, errlen);
    if (rc == 0 && commit_batch(&p) != 0) {
        snprintf(err, errlen, "history: %s", sqlite3_errmsg(db));
        rc = -1;
    }
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* ends the BEGIN after the last COMMIT */
    sqlite3_finalize(p.insert);
    if (upto != NULL) {
        *upto = p.last;
    }
    return rc == 0 ? 0 : -1;
}

int wx_history_catch_up(const char *db_path, uint64_t *upto, char *err, size_t errlen)
{
    sqlite3 *db;
    if (open_history(db_path, &db, err, errlen) != 0) {
        return -1;
    }
    int rc = catch_up_db(db, db_path, upto, err, errlen);
    sqlite3_close(db);
    return rc;
}

static void read_item(sqlite3_stmt *st, struct wx_history_item *it)
{
    memset(it, 0, sizeof *it);
    it->seq = (uint64_t)sqlite3_column_int64(st, 0);
    it->card_id = (uint32_t)sqlite3_column_int64(st, 1);
    it->at_ms = sqlite3_column_int64(st, 2);
    it->kind = (uint8_t)sqlite3_column_int(st, 3);
    it->reason = (uint8_t)sqlite3_column_int(st, 4);
    it->channel = (uint8_t)sqlite3_column_int(st, 5);
    it->mcc = (uint16_t)sqlite3_column_int(st, 6);
    it->amount = sqlite3_column_int64(st, 7);
    it->available = sqlite3_column_int64(st, 8);
    const unsigned char *m = sqlite3_column_text(st, 9);
    const unsigned char *c = sqlite3_column_text(st, 10);
    snprintf(it->merchant, sizeof it->merchant, "%s", m ? (const char *)m : "");
    snprintf(it->city, sizeof it->city, "%s", c ? (const char *)c : "");
}

int wx_history_recent(const char *db_path, uint32_t card_id, uint32_t account_id,
                      struct wx_history_item *out, size_t cap, size_t *n, char *err, size_t errlen)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    *n = 0;
    if (open_history(db_path, &db, err, errlen) != 0) {
        return -1;
    }
    int rc = catch_up_db(db, db_path, NULL, err, errlen);
    const char *sql = "SELECT seq, card_id, at_ms, kind, reason, channel, mcc, amount,"
                      " available, merchant, city FROM card_txn"
                      " WHERE seq IN (SELECT seq FROM card_txn WHERE card_id = ?1"
                      "  UNION ALL SELECT seq FROM card_txn WHERE account_id = ?2 AND card_id = 0)"
                      " ORDER BY seq DESC LIMIT ?3";
    if (rc == 0 && sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "history: %s", sqlite3_errmsg(db));
        rc = -1;
    }
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, card_id);
        sqlite3_bind_int64(st, 2, account_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)cap);
        while (*n < cap && sqlite3_step(st) == SQLITE_ROW) {
            read_item(st, &out[(*n)++]);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
