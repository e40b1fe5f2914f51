/*
 * history.c - the history projection: schema, catch-up from the journal, queries.
 *
 * Besides what the journal row says, each item records what it did to the account's
 * balance owed (posted): a purchase captured at once or a capture adds, a refund or a
 * repayment takes away, a hold adds nothing, and a reversal takes away only when what it
 * reverses had posted (found by the original's idempotency key). Statements are sums of it.
 * The schema has a version (user_version): a projection of an older one is dropped and
 * built again from the journal, which is always possible.
 */
#include "history/history.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "util/alloc.h"

#define HISTORY_BATCH   20000 /* rows per projection transaction */
#define HISTORY_VERSION 2     /* of the schema: 2 added posted and key */

static const char *const SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;" /* a projection lost in a crash is rebuilt from the journal */
    "CREATE TABLE IF NOT EXISTS watermark(id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER);"
    "INSERT OR IGNORE INTO watermark VALUES (1, 0);"
    "CREATE TABLE IF NOT EXISTS card_txn("
    " seq INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, card_id INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL, kind INTEGER NOT NULL, reason INTEGER NOT NULL,"
    " channel INTEGER NOT NULL, mcc INTEGER NOT NULL, amount INTEGER NOT NULL,"
    " available INTEGER NOT NULL, merchant TEXT NOT NULL, city TEXT NOT NULL,"
    " posted INTEGER NOT NULL, key TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS card_txn_card ON card_txn(card_id, seq);"
    "CREATE INDEX IF NOT EXISTS card_txn_account ON card_txn(account_id, card_id, seq);"
    "CREATE INDEX IF NOT EXISTS card_txn_key ON card_txn(key);";

/* A projection of an older schema is dropped: the journal builds it again. */
static const char *const DROP_OLD = "DROP TABLE IF EXISTS card_txn;"
                                    "DROP TABLE IF EXISTS watermark;";

struct projector {
    sqlite3 *db;
    sqlite3_stmt *insert, *original;
    uint64_t last;     /* last journal seq seen */
    unsigned in_batch; /* rows seen in the open transaction */
    char *err;
    size_t errlen;
};

static int schema_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* Creates the schema, dropping a projection of another version first. */
static int ensure_schema(sqlite3 *db)
{
    int v = schema_version(db);
    if (v < 0) return -1;
    if (v == HISTORY_VERSION) return sqlite3_exec(db, SCHEMA, NULL, NULL, NULL);
    char set[64];
    snprintf(set, sizeof set, "PRAGMA user_version = %d;", HISTORY_VERSION);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return -1;
    if (schema_version(db) != HISTORY_VERSION &&
        (sqlite3_exec(db, DROP_OLD, NULL, NULL, NULL) != SQLITE_OK ||
         sqlite3_exec(db, set, NULL, NULL, NULL) != SQLITE_OK)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) return -1;
    return sqlite3_exec(db, SCHEMA, NULL, NULL, NULL);
}

static int open_history(const char *db_path, sqlite3 **db, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.history", db_path);
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(*db, 5000) != SQLITE_OK || ensure_schema(*db) != SQLITE_OK) {
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

_Static_assert(WX_CMD_AUTHORIZE == 7 && WX_CMD_CAPTURE == 9, "the original's kinds below");

/* Whether the command that `key` names posted (a purchase captured at once, a capture). */
static bool original_posted(struct projector *p, const char *key, size_t len)
{
    sqlite3_stmt *st = p->original;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, key, (int)len, SQLITE_TRANSIENT);
    bool posted = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0;
    sqlite3_reset(st);
    return posted;
}

/* What the decision did to the account's balance owed. */
static int64_t posted_by(struct projector *p, const struct wx_cmd *cmd, const struct wx_result *res)
{
    if (res->reason != WX_APPROVED) return 0;
    switch (cmd->kind) {
    case WX_CMD_AUTHORIZE:
        return cmd->auth.capture ? res->amount : 0;
    case WX_CMD_CAPTURE:
    case WX_CMD_FEE:
    case WX_CMD_INTEREST:
        return res->amount;
    case WX_CMD_REFUND:
    case WX_CMD_REPAYMENT:
        return -res->amount;
    case WX_CMD_REVERSAL:
        return original_posted(p, cmd->follow.orig_key, cmd->follow.orig_len) ? -res->amount : 0;
    default:
        return 0;
    }
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
        sqlite3_bind_int64(st, 13, posted_by(p, &cmd, &res));
        sqlite3_bind_text(st, 14, cmd.key, cmd.key_len, SQLITE_TRANSIENT);
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
                           " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                           -1, &p.insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT posted FROM card_txn WHERE key = ?1 AND kind IN (7, 9)"
                           " ORDER BY seq DESC LIMIT 1",
                           -1, &p.original, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "history: %s", sqlite3_errmsg(db));
        sqlite3_finalize(p.insert);
        sqlite3_finalize(p.original);
        return -1;
    }
    int rc = wx_journal_scan(db_path, p.last, 0, project_row, &p, err, errlen);
    if (rc == 0 && commit_batch(&p) != 0) {
        snprintf(err, errlen, "history: %s", sqlite3_errmsg(db));
        rc = -1;
    }
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* ends the BEGIN after the last COMMIT */
    sqlite3_finalize(p.insert);
    sqlite3_finalize(p.original);
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

#define ITEM_COLUMNS                                                                               \
    "seq, card_id, at_ms, kind, reason, channel, mcc, amount, available, merchant, city, posted"

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
    it->posted = sqlite3_column_int64(st, 11);
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
    const char *sql = "SELECT " ITEM_COLUMNS " FROM card_txn"
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

/* ---- a reader that stays open ------------------------------------------------------------ */

struct wx_history_reader {
    sqlite3 *db;
    sqlite3_stmt *list, *sum, *balance;
};

wx_history_reader_t *wx_history_reader_open(const char *db_path, char *err, size_t errlen)
{
    struct wx_history_reader *r = wx_calloc(1, sizeof *r);
    /* One filter for both statements: the account; one card and the account's own
     * postings, or every card; a time range; a part of the merchant's name; an MCC range. */
#define WHERE                                                                                      \
    " WHERE account_id = ?1 AND (?2 = 0 OR card_id = ?2 OR card_id = 0)"                           \
    " AND at_ms >= ?3 AND at_ms < ?4 AND (?5 = '' OR instr(merchant, ?5) > 0)"                     \
    " AND (?6 = 0 OR mcc BETWEEN ?6 AND ?7) AND (?8 = 0 OR posted <> 0)"                           \
    " AND (?10 = 0 OR ((1 << kind) & ?10) <> 0)"
    if (open_history(db_path, &r->db, err, errlen) != 0) {
        free(r);
        return NULL;
    }
    if (sqlite3_prepare_v3(
            r->db, "SELECT " ITEM_COLUMNS " FROM card_txn" WHERE " ORDER BY seq DESC LIMIT ?9", -1,
            SQLITE_PREPARE_PERSISTENT, &r->list, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(r->db, "SELECT count(*), coalesce(sum(posted), 0) FROM card_txn" WHERE,
                           -1, SQLITE_PREPARE_PERSISTENT, &r->sum, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(r->db,
                           "SELECT coalesce(sum(posted), 0) FROM card_txn"
                           " WHERE account_id = ?1 AND at_ms < ?2",
                           -1, SQLITE_PREPARE_PERSISTENT, &r->balance, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "history: %s", sqlite3_errmsg(r->db));
        wx_history_reader_close(r);
        return NULL;
    }
#undef WHERE
    return r;
}

void wx_history_reader_close(wx_history_reader_t *r)
{
    if (r == NULL) return;
    sqlite3_finalize(r->list);
    sqlite3_finalize(r->sum);
    sqlite3_finalize(r->balance);
    sqlite3_close(r->db);
    free(r);
}

static void bind_query(sqlite3_stmt *st, const struct wx_history_query *q)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, q->account_id);
    sqlite3_bind_int64(st, 2, q->card_id);
    sqlite3_bind_int64(st, 3, q->from_ms);
    sqlite3_bind_int64(st, 4, q->to_ms);
    sqlite3_bind_text(st, 5, q->merchant != NULL ? q->merchant : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 6, q->mcc_lo);
    sqlite3_bind_int(st, 7, q->mcc_hi);
    sqlite3_bind_int(st, 8, q->posted_only ? 1 : 0);
    sqlite3_bind_int64(st, 10, q->kinds);
}

int wx_history_list(wx_history_reader_t *r, const struct wx_history_query *q,
                    struct wx_history_item *out, size_t cap, struct wx_history_totals *totals,
                    size_t *n, char *err, size_t errlen)
{
    *n = 0;
    memset(totals, 0, sizeof *totals);
    bind_query(r->sum, q);
    int rc = sqlite3_step(r->sum);
    if (rc == SQLITE_ROW) {
        totals->count = (uint64_t)sqlite3_column_int64(r->sum, 0);
        totals->posted = sqlite3_column_int64(r->sum, 1);
    }
    sqlite3_reset(r->sum);
    if (rc != SQLITE_ROW) goto fail;
    bind_query(r->list, q);
    sqlite3_bind_int64(r->list, 9, (sqlite3_int64)cap);
    while (*n < cap && (rc = sqlite3_step(r->list)) == SQLITE_ROW)
        read_item(r->list, &out[(*n)++]);
    sqlite3_reset(r->list);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto fail;
    return 0;
fail:
    snprintf(err, errlen, "history: %s", sqlite3_errmsg(r->db));
    return -1;
}

int wx_history_owed_before(wx_history_reader_t *r, uint32_t account_id, int64_t until_ms,
                           int64_t *owed, char *err, size_t errlen)
{
    sqlite3_stmt *st = r->balance;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, until_ms);
    int rc = sqlite3_step(st);
    *owed = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    snprintf(err, errlen, "history: %s", sqlite3_errmsg(r->db));
    return -1;
}

int wx_history_reader_catch_up(wx_history_reader_t *r, const char *db_path, char *err,
                               size_t errlen)
{
    return catch_up_db(r->db, db_path, NULL, err, errlen);
}
