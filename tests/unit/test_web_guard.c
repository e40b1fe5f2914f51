/*
 * test_web_guard.c - lockouts and rate limits (src/web/guard.c): five wrong login passwords
 * lock the login for 30 minutes, three wrong transaction passwords until the next local
 * midnight; a right one starts the count again; limits per key in fixed windows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "web/web.h"

#define T0       1795752000000ll /* 2026-11-27 12:00 in Shanghai */
#define SHANGHAI 480
#define MIDNIGHT 1795795200000ll /* 2026-11-28 00:00 in Shanghai */

static void test_login_lockout(void **state)
{
    (void)state;
    wx_guard_t *g = wx_guard_new(16, SHANGHAI);
    for (int i = 1; i < WX_LOGIN_TRIES; i++)
        assert_int_equal(wx_guard_failed(g, 7, WX_PW_LOGIN, T0 + i), 0);
    assert_int_equal(wx_guard_locked_until(g, 7, WX_PW_LOGIN, T0 + 10), 0);
    int64_t until = wx_guard_failed(g, 7, WX_PW_LOGIN, T0 + 10);
    assert_int_equal(until, T0 + 10 + WX_LOGIN_LOCK_MS);
    assert_int_equal(wx_guard_locked_until(g, 7, WX_PW_LOGIN, until - 1), until);
    assert_int_equal(wx_guard_locked_until(g, 7, WX_PW_LOGIN, until), 0);   /* it has ended */
    assert_int_equal(wx_guard_locked_until(g, 8, WX_PW_LOGIN, T0 + 10), 0); /* others free */
    assert_int_equal(wx_guard_locked_until(g, 7, WX_PW_TXN, T0 + 10), 0);   /* kinds apart */
    /* After the lock, the count starts from nothing: one more wrong is not a new lock. */
    assert_int_equal(wx_guard_failed(g, 7, WX_PW_LOGIN, until + 1), 0);
    wx_guard_free(g);
}

/* The lock's length is the bank's (web.login_lock_s); the transaction lock is not touched. */
static void test_login_lock_length_set(void **state)
{
    (void)state;
    wx_guard_t *g = wx_guard_new(16, SHANGHAI);
    wx_guard_set_login_lock(g, 3000);
    int64_t until = 0;
    for (int i = 1; i <= WX_LOGIN_TRIES; i++)
        until = wx_guard_failed(g, 7, WX_PW_LOGIN, T0 + i);
    assert_int_equal(until, T0 + WX_LOGIN_TRIES + 3000);
    for (int i = 1; i <= WX_TXN_TRIES; i++)
        until = wx_guard_failed(g, 7, WX_PW_TXN, T0 + i);
    assert_int_equal(until, MIDNIGHT);
    wx_guard_free(g);
}

/* A lock put back after a restart is in force until its end, and ends like any other. */
static void test_restored_lock(void **state)
{
    (void)state;
    wx_guard_t *g = wx_guard_new(16, SHANGHAI);
    wx_guard_restore(g, 7, WX_PW_TXN, MIDNIGHT);
    assert_int_equal(wx_guard_locked_until(g, 7, WX_PW_TXN, T0), MIDNIGHT);
    assert_int_equal(wx_guard_failed(g, 7, WX_PW_TXN, T0 + 1), 0); /* no new lock on top */
    assert_int_equal(wx_guard_locked_until(g, 7, WX_PW_TXN, MIDNIGHT), 0);
    wx_guard_restore(g, 8, WX_PW_LOGIN, T0 + 1000);
    wx_guard_unlock(g, 8, WX_PW_LOGIN);
    assert_int_equal(wx_guard_locked_until(g, 8, WX_PW_LOGIN, T0), 0);
    wx_guard_free(g);
}

static void test_right_password_resets(void **state)
{
    (void)state;
    wx_guard_t *g = wx_guard_new(16, SHANGHAI);
    for (int round = 0; round < 3; round++) {
        for (int i = 1; i < WX_LOGIN_TRIES; i++)
            assert_int_equal(wx_guard_failed(g, 7, WX_PW_LOGIN, T0), 0);
        wx_guard_passed(g, 7, WX_PW_LOGIN); /* four wrong, then right: never locked */
    }
    assert_int_equal(wx_guard_locked_until(g, 7, WX_PW_LOGIN, T0), 0);
    wx_guard_free(g);
}

static void test_transaction_lockout_until_tomorrow(void **state)
{
    (void)state;
    wx_guard_t *g = wx_guard_new(16, SHANGHAI);
    assert_int_equal(wx_guard_failed(g, 9, WX_PW_TXN, T0), 0);
    assert_int_equal(wx_guard_failed(g, 9, WX_PW_TXN, T0), 0);
    assert_int_equal(wx_guard_failed(g, 9, WX_PW_TXN, T0), MIDNIGHT);
    assert_int_equal(wx_guard_locked_until(g, 9, WX_PW_TXN, MIDNIGHT - 1), MIDNIGHT);
    assert_int_equal(wx_guard_locked_until(g, 9, WX_PW_TXN, MIDNIGHT), 0);
    /* Just before midnight, the lock still lasts to midnight (not 24 hours). */
    assert_int_equal(wx_guard_failed(g, 10, WX_PW_TXN, MIDNIGHT - 3), 0);
    assert_int_equal(wx_guard_failed(g, 10, WX_PW_TXN, MIDNIGHT - 2), 0);
    assert_int_equal(wx_guard_failed(g, 10, WX_PW_TXN, MIDNIGHT - 1), MIDNIGHT);
    wx_guard_unlock(g, 10, WX_PW_TXN); /* reset through the registered mobile */
    assert_int_equal(wx_guard_locked_until(g, 10, WX_PW_TXN, MIDNIGHT - 1), 0);
    wx_guard_free(g);
}

static void test_rate_limits(void **state)
{
    (void)state;
    wx_guard_t *g = wx_guard_new(4, SHANGHAI);
    for (int i = 0; i < 5; i++)
        assert_true(wx_guard_allow(g, "10.0.0.1", 8, 5, 60000, T0 + i));
    assert_false(wx_guard_allow(g, "10.0.0.1", 8, 5, 60000, T0 + 10));
    assert_true(wx_guard_allow(g, "10.0.0.2", 8, 5, 60000, T0 + 10));    /* another key */
    assert_true(wx_guard_allow(g, "10.0.0.1", 8, 5, 60000, T0 + 60000)); /* a new window */
    /* A key longer than the limit is cut, not refused; the table stays bounded. */
    char long_key[WX_GUARD_KEY_MAX * 2];
    memset(long_key, 'k', sizeof long_key);
    assert_true(wx_guard_allow(g, long_key, sizeof long_key, 1, 60000, T0));
    assert_false(wx_guard_allow(g, long_key, WX_GUARD_KEY_MAX, 1, 60000, T0));
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "ip%d", i);
        wx_guard_allow(g, k, strlen(k), 1, 60000, T0);
    }
    wx_guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_lockout),
        cmocka_unit_test(test_login_lock_length_set),
        cmocka_unit_test(test_restored_lock),
        cmocka_unit_test(test_right_password_resets),
        cmocka_unit_test(test_transaction_lockout_until_tomorrow),
        cmocka_unit_test(test_rate_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
