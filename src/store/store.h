/*
 * store.h - the one boundary to SQL: opening the database, its schema migrations, and a small
 * key/value table for settings that must live with the data.
 *
 * Today the backend is SQLite (one file, WAL mode, fsync on every commit). A later change adds
 * PostgreSQL through libpq behind the same functions, so the SQL written here and by callers
 * uses numbered parameters (?1, ?2, ...) that both engines understand, and the schema only
 * uses types both have.
 *
 * A connection belongs to one thread at a time: it is opened without SQLite's per-connection
 * mutex (the journal's hot path calls into it millions of times a second), so two threads
 * must never use the same connection at once.
 */
#ifndef WX_STORE_STORE_H
#define WX_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Error codes: 0 is success, these are the failures. */
#define WX_STORE_EIO     (-1) /* SQLite failed (I/O, locking, corrupt file); err says how */
#define WX_STORE_ESCHEMA (-2) /* the schema is missing (read-only open) or newer than this build   \
                               */
#define WX_STORE_ETOOBIG (-3) /* a meta value does not fit the caller's buffer */
#define WX_STORE_EINVAL  (-4) /* a key or value breaks a limit in util/limits.h */

/* The schema version this build migrates to. */
#define WX_STORE_SCHEMA_VERSION 1

/*
 * Opens (and when !readonly, creates) the database at `path` and brings its schema up to
 * WX_STORE_SCHEMA_VERSION, one migration per transaction, recorded in schema_migrations.
 * Pragmas: journal_mode=WAL, synchronous=FULL, busy_timeout=5000, foreign_keys=ON.
 * A read-only open migrates nothing: it fails with WX_STORE_ESCHEMA unless the database is
 * exactly at this build's version.
 * On success *out owns the connection (release with wx_store_close) and 0 is returned. On
 * failure *out is NULL, a negative WX_STORE_E* is returned and err holds a message.
 */
int wx_store_open(const char *path, bool readonly, sqlite3 **out, char *err, size_t errlen);

/*
 * Reads meta[key] into buf (cap bytes). Returns 1 and sets *len when found, 0 when absent,
 * WX_STORE_ETOOBIG (with *len set to the stored size) when buf is too small, WX_STORE_EIO.
 */
int wx_store_meta_get(sqlite3 *db, const char *key, uint8_t *buf, size_t cap, size_t *len);

/* Inserts or replaces meta[key] = val (len bytes) in its own statement. 0 or WX_STORE_E*. */
int wx_store_meta_put(sqlite3 *db, const char *key, const void *val, size_t len);

/* Closes a connection from wx_store_open; NULL is ignored. Finalizes nothing for the caller:
 * every statement prepared on db must already be finalized. */
void wx_store_close(sqlite3 *db);

/* A static description of a WX_STORE_E* code. */
const char *wx_store_strerror(int rc);

#endif
