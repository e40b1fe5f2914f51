/*
 * test_web_store.c - the secure back end's store (src/web/store.c): password hashes by
 * customer and kind, the audit log newest first, and IP addresses hashed under a key the
 * file keeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "web/web.h"

struct fx {
    char dir[64], db[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wx-web-XXXXXX");
    if (mkdtemp(f->dir) == NULL) return -1;
    snprintf(f->db, sizeof f->db, "%s/bank.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void test_passwords(void **state)
{
    struct fx *f = *state;
    char err[256], out[WX_PASSWORD_HASH_MAX];
    wx_web_store_t *s = wx_web_store_open(f->db, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(wx_web_store_password(s, 1, WX_PW_LOGIN, out, err, sizeof err), 0);
    assert_int_equal(
        wx_web_store_set_password(s, 1, WX_PW_LOGIN, "$argon2id$a", 10, err, sizeof err), 0);
    assert_int_equal(wx_web_store_set_password(s, 1, WX_PW_TXN, "$argon2id$b", 10, err, sizeof err),
                     0);
    assert_int_equal(
        wx_web_store_set_password(s, 1, WX_PW_LOGIN, "$argon2id$c", 20, err, sizeof err),
        0); /* a reset replaces */
    assert_int_equal(wx_web_store_password(s, 1, WX_PW_LOGIN, out, err, sizeof err), 1);
    assert_string_equal(out, "$argon2id$c");
    assert_int_equal(wx_web_store_password(s, 1, WX_PW_TXN, out, err, sizeof err), 1);
    assert_string_equal(out, "$argon2id$b");
    assert_int_equal(wx_web_store_password(s, 2, WX_PW_TXN, out, err, sizeof err), 0);
    wx_web_store_close(s);
}

struct seen {
    struct wx_audit_entry e[8];
    size_t n;
};

static void keep(void *ctx, const struct wx_audit_entry *e)
{
    struct seen *s = ctx;
    if (s->n < 8) s->e[s->n++] = *e;
}

static void test_audit(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct seen seen = {0};
    assert_int_equal(wx_web_audit_list(f->db, 0, 10, keep, &seen, err, sizeof err), 0);
    assert_int_equal(seen.n, 0); /* no file yet: nothing */
    wx_web_store_t *s = wx_web_store_open(f->db, err, sizeof err);
    assert_non_null(s);
    struct wx_audit_entry e = {.at_ms = 1, .customer_id = 7};
    snprintf(e.openid, sizeof e.openid, "oFollower");
    wx_web_store_ip_hash(s, "203.0.113.9", e.ip_hash);
    snprintf(e.action, sizeof e.action, "login");
    snprintf(e.result, sizeof e.result, "wrong_password");
    assert_int_equal(wx_web_store_audit(s, &e, err, sizeof err), 0);
    e.at_ms = 2;
    snprintf(e.result, sizeof e.result, "ok");
    assert_int_equal(wx_web_store_audit(s, &e, err, sizeof err), 0);
    e.at_ms = 3;
    e.customer_id = 8;
    const char *hostile = "<script>alert(1)</script>'; DROP TABLE audit; --";
    memcpy(e.action, hostile, WX_AUDIT_WORD_MAX); /* a field filled to its end */
    e.action[WX_AUDIT_WORD_MAX] = '\0';
    assert_int_equal(wx_web_store_audit(s, &e, err, sizeof err), 0);
    assert_int_equal(wx_web_audit_list(f->db, 0, 10, keep, &seen, err, sizeof err), 0);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.e[0].at_ms, 3);                                     /* newest first */
    assert_string_equal(seen.e[0].action, "<script>alert(1)</script>'; DRO"); /* kept as text */
    assert_string_equal(seen.e[1].result, "ok");
    assert_string_equal(seen.e[2].result, "wrong_password");
    assert_string_equal(seen.e[2].ip_hash, e.ip_hash);
    assert_int_equal(strlen(e.ip_hash), WX_IP_HASH_LEN);
    assert_null(strstr(e.ip_hash, "203"));
    seen.n = 0;
    assert_int_equal(wx_web_audit_list(f->db, 7, 1, keep, &seen, err, sizeof err), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.e[0].at_ms, 2);
    wx_web_store_close(s);
}

/* The IP key is the file's: the same after reopening, another for another bank. */
/* Mobiles as login names: one customer's is found; one two customers share finds nobody. */
static void test_mobiles(void **state)
{
    struct fx *f = *state;
    char err[256];
    wx_web_store_t *s = wx_web_store_open(f->db, err, sizeof err);
    assert_non_null(s);
    uint32_t id = 0;
    assert_int_equal(wx_web_store_customer_by_mobile(s, "13800138000", &id, err, sizeof err), 0);
    assert_int_equal(wx_web_store_set_mobile(s, 7, "13800138000", err, sizeof err), 0);
    assert_int_equal(wx_web_store_customer_by_mobile(s, "13800138000", &id, err, sizeof err), 1);
    assert_int_equal(id, 7);
    assert_int_equal(wx_web_store_set_mobile(s, 8, "13800138000", err, sizeof err), 0);
    assert_int_equal(wx_web_store_customer_by_mobile(s, "13800138000", &id, err, sizeof err), 0);
    wx_web_store_close(s);
}

struct locks_seen {
    unsigned n;
    uint32_t id[4];
    int64_t until[4];
};

static void on_lock(void *ctx, uint32_t id, enum wx_password_kind kind, int64_t until_ms)
{
    struct locks_seen *x = ctx;
    assert_int_equal(kind, id == 7 ? WX_PW_TXN : WX_PW_LOGIN);
    x->id[x->n] = id;
    x->until[x->n++] = until_ms;
}

/* Lockouts outlive the file's closing; the ones that ended or were lifted are gone. */
static void test_locks(void **state)
{
    struct fx *f = *state;
    char err[256];
    wx_web_store_t *s = wx_web_store_open(f->db, err, sizeof err);
    assert_int_equal(wx_web_store_set_lock(s, 7, WX_PW_TXN, 5000, err, sizeof err), 0);
    assert_int_equal(wx_web_store_set_lock(s, 8, WX_PW_LOGIN, 3000, err, sizeof err), 0);
    assert_int_equal(wx_web_store_set_lock(s, 9, WX_PW_LOGIN, 9000, err, sizeof err), 0);
    assert_int_equal(wx_web_store_set_lock(s, 9, WX_PW_LOGIN, 0, err, sizeof err), 0); /* lifted */
    wx_web_store_close(s);
    s = wx_web_store_open(f->db, err, sizeof err);
    struct locks_seen x = {0};
    assert_int_equal(wx_web_store_locks(s, 3000, on_lock, &x, err, sizeof err), 0);
    assert_int_equal(x.n, 1); /* 8's ended at 3000 */
    assert_int_equal(x.id[0], 7);
    assert_int_equal(x.until[0], 5000);
    wx_web_store_close(s);
}

static void test_ip_key(void **state)
{
    struct fx *f = *state;
    char err[256], a[WX_IP_HASH_LEN + 1], b[WX_IP_HASH_LEN + 1], c[WX_IP_HASH_LEN + 1];
    wx_web_store_t *s = wx_web_store_open(f->db, err, sizeof err);
    wx_web_store_ip_hash(s, "198.51.100.4", a);
    wx_web_store_close(s);
    s = wx_web_store_open(f->db, err, sizeof err);
    wx_web_store_ip_hash(s, "198.51.100.4", b);
    wx_web_store_close(s);
    assert_string_equal(a, b);
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    s = wx_web_store_open(other, err, sizeof err);
    wx_web_store_ip_hash(s, "198.51.100.4", c);
    wx_web_store_close(s);
    assert_string_not_equal(a, c);
    assert_null(wx_web_store_open("/nonexistent/dir/bank.db", err, sizeof err));
    assert_non_null(strstr(err, "web store"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passwords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mobiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ip_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
