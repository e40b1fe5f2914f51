/*
 * store.c - SQLite backend of the store: open, pragmas, numbered migrations, meta table.
 *
 * Migrations are an append-only list: a released migration is never edited, a schema change
 * is a new entry. Each one runs in its own BEGIN IMMEDIATE transaction together with the row
 * that records it, so a crash mid-migration leaves the database at the previous version and
 * two processes opening the same file at once cannot both apply the same step.
 */
#include "store/store.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/limits.h"
#include "util/log.h"

struct migration {
    int version;     /* the schema version this step produces */
    const char *sql; /* statements run inside the step's transaction */
};

/*
 * The journal has no secondary index on purpose: the hot path appends to it, and a random-key
 * index costs an order of magnitude in throughput (DESIGN.md, "The core"). Every hot-path
 * table carries account_id so a distributed PostgreSQL can partition by it.
 */
static const struct migration migrations[] = {
    {1, "CREATE TABLE journal("
        "  seq INTEGER PRIMARY KEY,"
        "  at_ms INTEGER NOT NULL,"
        "  kind INTEGER NOT NULL,"
        "  account_id INTEGER NOT NULL,"
        "  body BLOB NOT NULL);"
        "CREATE TABLE meta("
        "  key TEXT PRIMARY KEY,"
        "  value BLOB NOT NULL);"},
};

#define MIGRATIONS_N (sizeof(migrations) / sizeof(migrations[0]))

_Static_assert(MIGRATIONS_N == WX_STORE_SCHEMA_VERSION, "one migration per schema version");

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs SQL that returns no rows we need. 0 or WX_STORE_EIO with err set. */
static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "store: %s: %s", sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return WX_STORE_EIO;
    }
    return 0;
}

/*
 * Reads the current schema version into *version (0 when schema_migrations does not exist or
 * is empty). 0 or WX_STORE_EIO.
 */
static int schema_version(sqlite3 *db, int *version, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'schema_migrations'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) goto fail;
    bool exists = sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    st = NULL;
    *version = 0;
    if (!exists) return 0;

    rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1, &st,
                            NULL);
    if (rc != SQLITE_OK) goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) goto fail;
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
fail:
    set_err(err, errlen, "store: reading schema version: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return WX_STORE_EIO;
}

/* Applies migration m unless another process already did. 0 or WX_STORE_E*. */
static int migrate_one(sqlite3 *db, const struct migration *m, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc != 0) return rc;
    /* Re-read under the write lock: another process may have migrated meanwhile. */
    rc = schema_version(db, &version, err, errlen);
    if (rc != 0) goto out;
    if (version >= m->version) goto out;
    rc = exec(db, m->sql, err, errlen);
    if (rc != 0) goto out;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO schema_migrations(version, applied_at_ms) VALUES(?1, ?2)",
                           -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "store: migration %d: %s", m->version, sqlite3_errmsg(db));
        rc = WX_STORE_EIO;
        goto out;
    }
    sqlite3_bind_int(st, 1, m->version);
    sqlite3_bind_int64(st, 2, now_ms());
    if (sqlite3_step(st) != SQLITE_DONE) {
        set_err(err, errlen, "store: migration %d: %s", m->version, sqlite3_errmsg(db));
        rc = WX_STORE_EIO;
        goto out;
    }
out:
    sqlite3_finalize(st);
    if (rc == 0) return exec(db, "COMMIT", err, errlen);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Brings the schema to WX_STORE_SCHEMA_VERSION (or checks it when readonly). */
static int migrate(sqlite3 *db, bool readonly, char *err, size_t errlen)
{
    int version = 0;
    int rc = schema_version(db, &version, err, errlen);
    if (rc != 0) return rc;
    if (version > WX_STORE_SCHEMA_VERSION) {
        set_err(err, errlen, "store: database schema version %d is newer than this build (%d)",
                version, WX_STORE_SCHEMA_VERSION);
        return WX_STORE_ESCHEMA;
    }
    if (readonly) {
        if (version == WX_STORE_SCHEMA_VERSION) return 0;
        set_err(err, errlen,
                "store: database schema version %d, this build needs %d (open it "
                "read-write once to migrate)",
                version, WX_STORE_SCHEMA_VERSION);
        return WX_STORE_ESCHEMA;
    }
    rc = exec(db,
              "CREATE TABLE IF NOT EXISTS schema_migrations("
              "version INTEGER PRIMARY KEY, applied_at_ms INTEGER)",
              err, errlen);
    for (size_t i = 0; rc == 0 && i < MIGRATIONS_N; i++) {
        assert(migrations[i].version == (int)i + 1);
        if (migrations[i].version > version) rc = migrate_one(db, &migrations[i], err, errlen);
    }
    return rc;
}

/*
 * Sets the connection pragmas; journal_mode only on a writable connection.
 * page_size only takes effect on a database that has no table yet (it is a file format
 * choice; later opens leave it alone). 16 KiB pages measured about 20% more journal rows/s
 * than the 4 KiB default on this machine (fewer b-tree pages per appended row), while a
 * random-key write elsewhere still logs only 16 KiB to the WAL.
 */
static int set_pragmas(sqlite3 *db, bool readonly, char *err, size_t errlen)
{
    int rc = exec(db, "PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;", err, errlen);
    if (rc != 0 || readonly) return rc;
    rc = exec(db, "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err,
              errlen);
    if (rc != 0) return rc;
    /* journal_mode is silently ignored on some files (in-memory, some VFSes): check it took. */
    sqlite3_stmt *st = NULL;
    rc = WX_STORE_EIO;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW &&
        strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0) {
        rc = 0;
    } else {
        set_err(err, errlen, "store: cannot switch the database to WAL mode");
    }
    sqlite3_finalize(st);
    return rc;
}

int wx_store_open(const char *path, bool readonly, sqlite3 **out, char *err, size_t errlen)
{
    assert(path != NULL);
    assert(out != NULL);
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    *out = NULL;
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "store: open %s: %s", path,
                db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        rc = WX_STORE_EIO;
        goto out;
    }
    sqlite3_extended_result_codes(db, 1);
    rc = set_pragmas(db, readonly, err, errlen);
    if (rc != 0) goto out;
    rc = migrate(db, readonly, err, errlen);
out:
    if (rc != 0) {
        sqlite3_close_v2(db);
        return rc;
    }
    *out = db;
    return 0;
}

int wx_store_meta_get(sqlite3 *db, const char *key, uint8_t *buf, size_t cap, size_t *len)
{
    assert(db != NULL);
    assert(key != NULL);
    sqlite3_stmt *st = NULL;
    int rc = WX_STORE_EIO;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if (step != SQLITE_ROW) goto out;
    const void *val = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    *len = n;
    if (n > cap) {
        rc = WX_STORE_ETOOBIG;
        goto out;
    }
    if (n > 0) memcpy(buf, val, n);
    rc = 1;
out:
    if (rc == WX_STORE_EIO) WX_ERROR("store: meta get %s: %s", key, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int wx_store_meta_put(sqlite3 *db, const char *key, const void *val, size_t len)
{
    assert(db != NULL);
    assert(key != NULL);
    if (strlen(key) > WX_META_KEY_MAX || len > WX_META_VALUE_MAX) return WX_STORE_EINVAL;
    sqlite3_stmt *st = NULL;
    int rc = WX_STORE_EIO;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    /* A zero-length blob with a NULL pointer would bind SQL NULL and break NOT NULL. */
    sqlite3_bind_blob(st, 2, len > 0 ? val : "", (int)len, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE) rc = 0;
out:
    if (rc == WX_STORE_EIO) WX_ERROR("store: meta put %s: %s", key, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

void wx_store_close(sqlite3 *db)
{
    if (db == NULL) return;
    int rc = sqlite3_close(db);
    /* SQLITE_BUSY here means a statement was left unfinalized: our bug. */
    assert(rc == SQLITE_OK);
    (void)rc;
}

const char *wx_store_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case WX_STORE_EIO:
        return "database error";
    case WX_STORE_ESCHEMA:
        return "database schema version mismatch";
    case WX_STORE_ETOOBIG:
        return "value larger than buffer";
    case WX_STORE_EINVAL:
        return "key or value over its limit";
    default:
        return "unknown store error";
    }
}
