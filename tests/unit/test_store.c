/*
 * test_store.c - the SQL boundary: pragmas, migrations (idempotent, refusing a newer schema),
 * read-only opens and the meta table, including the limits on keys and values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "util/limits.h"

struct fixture {
    char dir[64]; /* mkdtemp directory, removed with everything in it */
    char db[128]; /* dir/test.db */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wxstore-XXXXXX");
    if (mkdtemp(f->dir) == NULL) return -1;
    snprintf(f->db, sizeof f->db, "%s/test.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char path[512];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
        unlink(path);
    }
    if (d != NULL) closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs a one-value query and returns the integer it yields. */
static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_open_pragmas_and_schema(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    char err[256] = "";
    assert_int_equal(wx_store_open(f->db, false, &db, err, sizeof err), 0);
    assert_non_null(db);
    assert_int_equal(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(query_int(db, "PRAGMA busy_timeout"), 5000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(query_int(db, "SELECT max(version) FROM schema_migrations"),
                     WX_STORE_SCHEMA_VERSION);
    /* The journal must carry no secondary index: the hot path would maintain it. */
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type='index' AND "
                                   "tbl_name='journal'"),
                     0);
    assert_int_equal(query_int(db,
                               "SELECT count(*) FROM pragma_table_info('journal') WHERE name IN "
                               "('seq','at_ms','kind','account_id','body')"),
                     5);
    wx_store_close(db);
}

static void test_migrations_idempotent(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    char err[256] = "";
    assert_int_equal(wx_store_open(f->db, false, &db, err, sizeof err), 0);
    int64_t applied = query_int(db, "SELECT applied_at_ms FROM schema_migrations WHERE version=1");
    assert_true(applied > 0);
    wx_store_close(db);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(wx_store_open(f->db, false, &db, err, sizeof err), 0);
        assert_int_equal(query_int(db, "SELECT count(*) FROM schema_migrations"),
                         WX_STORE_SCHEMA_VERSION);
        assert_int_equal(
            query_int(db, "SELECT applied_at_ms FROM schema_migrations WHERE version=1"), applied);
        wx_store_close(db);
    }
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    char err[256] = "";
    assert_int_equal(wx_store_open(f->db, false, &db, err, sizeof err), 0);
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO schema_migrations VALUES(99, 0)", NULL, NULL, NULL),
        SQLITE_OK);
    wx_store_close(db);
    assert_int_equal(wx_store_open(f->db, false, &db, err, sizeof err), WX_STORE_ESCHEMA);
    assert_null(db);
    assert_non_null(strstr(err, "99"));
    assert_int_equal(wx_store_open(f->db, true, &db, err, sizeof err), WX_STORE_ESCHEMA);
}

static void test_readonly(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    char err[256] = "";
    /* Read-only never creates. */
    assert_int_equal(wx_store_open(f->db, true, &db, err, sizeof err), WX_STORE_EIO);
    assert_null(db);
    assert_int_not_equal(access(f->db, F_OK), 0);
    /* An empty, unmigrated file is refused read-only. */
    FILE *fp = fopen(f->db, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(wx_store_open(f->db, true, &db, err, sizeof err), WX_STORE_ESCHEMA);
    assert_int_equal(wx_store_open(f->db, false, &db, err, sizeof err), 0);
    wx_store_close(db);
    assert_int_equal(wx_store_open(f->db, true, &db, err, sizeof err), 0);
    assert_int_equal(wx_store_meta_put(db, "k", "v", 1), WX_STORE_EIO);
    wx_store_close(db);
}

static void test_meta(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    char err[256] = "";
    uint8_t buf[16];
    size_t len = 99;
    assert_int_equal(wx_store_open(f->db, false, &db, err, sizeof err), 0);
    assert_int_equal(wx_store_meta_get(db, "absent", buf, sizeof buf, &len), 0);
    assert_int_equal(wx_store_meta_put(db, "k", "hello", 5), 0);
    assert_int_equal(wx_store_meta_get(db, "k", buf, sizeof buf, &len), 1);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(wx_store_meta_put(db, "k", "0123456789abcdefX", 17), 0); /* replace */
    assert_int_equal(wx_store_meta_get(db, "k", buf, sizeof buf, &len), WX_STORE_ETOOBIG);
    assert_int_equal(len, 17);
    assert_int_equal(wx_store_meta_put(db, "empty", NULL, 0), 0);
    assert_int_equal(wx_store_meta_get(db, "empty", buf, sizeof buf, &len), 1);
    assert_int_equal(len, 0);

    /* Limits: just under and just over. */
    char key[WX_META_KEY_MAX + 2];
    memset(key, 'a', sizeof key);
    key[WX_META_KEY_MAX] = '\0';
    assert_int_equal(wx_store_meta_put(db, key, "x", 1), 0);
    key[WX_META_KEY_MAX] = 'a';
    key[WX_META_KEY_MAX + 1] = '\0';
    assert_int_equal(wx_store_meta_put(db, key, "x", 1), WX_STORE_EINVAL);
    uint8_t *big = calloc(1, WX_META_VALUE_MAX + 1);
    assert_int_equal(wx_store_meta_put(db, "big", big, WX_META_VALUE_MAX), 0);
    assert_int_equal(wx_store_meta_put(db, "big", big, WX_META_VALUE_MAX + 1), WX_STORE_EINVAL);
    free(big);
    wx_store_close(db);

    /* Survives a reopen. */
    assert_int_equal(wx_store_open(f->db, true, &db, err, sizeof err), 0);
    assert_int_equal(wx_store_meta_get(db, "k", buf, sizeof buf, &len), WX_STORE_ETOOBIG);
    wx_store_close(db);
    assert_string_equal(wx_store_strerror(WX_STORE_EINVAL), "key or value over its limit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_pragmas_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
