/*
 * store.c - the secure back end's own SQLite file, <db>.web: password hashes, the audit log,
 * each customer's registered mobile as a login name, and the key that hashes IP addresses.
 *
 * Separate from the journal: a login writes here at a person's pace, and must never wait
 * for (or hold) the journal's write lock. WAL with synchronous=FULL: a password change or an
 * audit entry the page has confirmed survives a power loss.
 */
#include "web/web_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"

static const char *const SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS passwords(customer_id INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " hash TEXT NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (customer_id, kind));"
    "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL,"
    " customer_id INTEGER NOT NULL, openid TEXT NOT NULL, ip_hash TEXT NOT NULL,"
    " action TEXT NOT NULL, result TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS audit_customer ON audit(customer_id, id);"
    "CREATE TABLE IF NOT EXISTS mobiles(customer_id INTEGER PRIMARY KEY, mobile TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS mobiles_mobile ON mobiles(mobile);"
    "CREATE TABLE IF NOT EXISTS locks(customer_id INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " until_ms INTEGER NOT NULL, PRIMARY KEY (customer_id, kind));";

struct wx_web_store {
    sqlite3 *db;
    uint8_t ip_key[32];
};

static int fail(sqlite3 *db, char *err, size_t errlen)
{
    snprintf(err, errlen, "web store: %s", db != NULL ? sqlite3_errmsg(db) : "cannot open");
    return -1;
}

/* The key that hashes IP addresses: made once, at the file's creation. */
static int load_ip_key(struct wx_web_store *s)
{
    uint8_t fresh[32];
    wx_random_bytes(fresh, sizeof fresh);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO meta VALUES ('ip_key', ?1)", -1, &st,
                           NULL) != SQLITE_OK) {
        return -1;
    }
    sqlite3_bind_blob(st, 1, fresh, sizeof fresh, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    wx_wipe(fresh, sizeof fresh);
    if (rc != 0 || sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE name = 'ip_key'", -1,
                                      &st, NULL) != SQLITE_OK) {
        return -1;
    }
    rc = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32 ? 0 : -1;
    if (rc == 0) memcpy(s->ip_key, sqlite3_column_blob(st, 0), 32);
    sqlite3_finalize(st);
    return rc;
}

wx_web_store_t *wx_web_store_open(const char *db_path, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.web", db_path);
    struct wx_web_store *s = wx_calloc(1, sizeof *s);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK ||
        sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK || load_ip_key(s) != 0) {
        fail(s->db, err, errlen);
        wx_web_store_close(s);
        return NULL;
    }
    return s;
}

void wx_web_store_close(wx_web_store_t *s)
{
    if (s == NULL) return;
    sqlite3_close(s->db);
    wx_wipe(s->ip_key, sizeof s->ip_key);
    free(s);
}

int wx_web_store_set_password(wx_web_store_t *s, uint32_t customer_id, enum wx_password_kind kind,
                              const char *encoded, int64_t now_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO passwords VALUES (?1, ?2, ?3, ?4)", -1,
                           &st, NULL) != SQLITE_OK) {
        return fail(s->db, err, errlen);
    }
    sqlite3_bind_int64(st, 1, customer_id);
    sqlite3_bind_int(st, 2, kind);
    sqlite3_bind_text(st, 3, encoded, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s->db, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

int wx_web_store_password(wx_web_store_t *s, uint32_t customer_id, enum wx_password_kind kind,
                          char out[WX_PASSWORD_HASH_MAX], char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT hash FROM passwords WHERE customer_id = ?1 AND kind = ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        return fail(s->db, err, errlen);
    }
    sqlite3_bind_int64(st, 1, customer_id);
    sqlite3_bind_int(st, 2, kind);
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW) {
        snprintf(out, WX_PASSWORD_HASH_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = fail(s->db, err, errlen);
    }
    sqlite3_finalize(st);
    return rc;
}

void wx_web_store_ip_hash(const wx_web_store_t *s, const char *ip, char out[WX_IP_HASH_LEN + 1])
{
    uint8_t mac[32];
    wx_hmac_sha256(s->ip_key, sizeof s->ip_key, ip, strlen(ip), mac);
    wx_hex_encode(mac, WX_IP_HASH_LEN / 2, out, WX_IP_HASH_LEN + 1);
}

int wx_web_store_audit(wx_web_store_t *s, const struct wx_audit_entry *e, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO audit(at_ms, customer_id, openid, ip_hash, action, result)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &st, NULL) != SQLITE_OK) {
        return fail(s->db, err, errlen);
    }
    sqlite3_bind_int64(st, 1, e->at_ms);
    sqlite3_bind_int64(st, 2, e->customer_id);
    sqlite3_bind_text(st, 3, e->openid, (int)strnlen(e->openid, WX_OPENID_MAX), SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->ip_hash, (int)strnlen(e->ip_hash, WX_IP_HASH_LEN), SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->action, (int)strnlen(e->action, WX_AUDIT_WORD_MAX), SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->result, (int)strnlen(e->result, WX_AUDIT_WORD_MAX), SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s->db, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

static void text_of(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
}

int wx_web_audit_list(const char *db_path, uint32_t customer_id, size_t limit,
                      void (*fn)(void *ctx, const struct wx_audit_entry *e), void *ctx, char *err,
                      size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.web", db_path);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0; /* no file: nothing audited yet */
    }
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT at_ms, customer_id, openid, ip_hash, action, result FROM audit"
                           " WHERE ?1 = 0 OR customer_id = ?1 ORDER BY id DESC LIMIT ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, customer_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            struct wx_audit_entry e = {.at_ms = sqlite3_column_int64(st, 0),
                                       .customer_id = (uint32_t)sqlite3_column_int64(st, 1)};
            text_of(st, 2, e.openid, sizeof e.openid);
            text_of(st, 3, e.ip_hash, sizeof e.ip_hash);
            text_of(st, 4, e.action, sizeof e.action);
            text_of(st, 5, e.result, sizeof e.result);
            fn(ctx, &e);
        }
        rc = step == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    if (rc != 0) fail(db, err, errlen);
    sqlite3_close(db);
    return rc;
}

int wx_web_store_set_mobile(wx_web_store_t *s, uint32_t customer_id, const char *mobile, char *err,
                            size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO mobiles VALUES (?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK) {
        return fail(s->db, err, errlen);
    }
    sqlite3_bind_int64(st, 1, customer_id);
    sqlite3_bind_text(st, 2, mobile, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s->db, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

int wx_web_store_customer_by_mobile(wx_web_store_t *s, const char *mobile, uint32_t *customer_id,
                                    char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT customer_id FROM mobiles WHERE mobile = ?1 LIMIT 2", -1,
                           &st, NULL) != SQLITE_OK) {
        return fail(s->db, err, errlen);
    }
    sqlite3_bind_text(st, 1, mobile, -1, SQLITE_STATIC);
    int found = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        *customer_id = (uint32_t)sqlite3_column_int64(st, 0);
        found++;
    }
    int rc = step != SQLITE_DONE ? fail(s->db, err, errlen) : found == 1 ? 1 : 0;
    sqlite3_finalize(st);
    return rc;
}

int wx_web_store_set_lock(wx_web_store_t *s, uint32_t customer_id, enum wx_password_kind kind,
                          int64_t until_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    const char *sql = until_ms != 0 ? "INSERT OR REPLACE INTO locks VALUES (?1, ?2, ?3)"
                                    : "DELETE FROM locks WHERE customer_id = ?1 AND kind = ?2";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return fail(s->db, err, errlen);
    }
    sqlite3_bind_int64(st, 1, customer_id);
    sqlite3_bind_int(st, 2, kind);
    if (until_ms != 0) sqlite3_bind_int64(st, 3, until_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s->db, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

int wx_web_store_locks(wx_web_store_t *s, int64_t now_ms,
                       void (*fn)(void *ctx, uint32_t customer_id, enum wx_password_kind kind,
                                  int64_t until_ms),
                       void *ctx, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    /* the ones that ended are forgotten first: the table holds only what is in force */
    if (sqlite3_prepare_v2(s->db, "DELETE FROM locks WHERE until_ms <= ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        return fail(s->db, err, errlen);
    }
    sqlite3_bind_int64(st, 1, now_ms);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE ||
        sqlite3_prepare_v2(s->db, "SELECT customer_id, kind, until_ms FROM locks", -1, &st, NULL) !=
            SQLITE_OK) {
        return fail(s->db, err, errlen);
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        fn(ctx, (uint32_t)sqlite3_column_int64(st, 0),
           (enum wx_password_kind)sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2));
    }
    int rc = step == SQLITE_DONE ? 0 : fail(s->db, err, errlen);
    sqlite3_finalize(st);
    return rc;
}
