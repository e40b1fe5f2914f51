/*
 * test_web_session.c - sessions on the secure pages (src/web/session.c): idle and absolute
 * expiry at their exact limits, rotation at login (the old id dies: session fixation), the
 * CSRF token, and the table's bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "web/web.h"

#define T0     1795752000000ll
#define MINUTE 60000ll

static void test_idle_and_absolute(void **state)
{
    (void)state;
    wx_sessions_t *s = wx_sessions_new(8);
    char id[WX_TOKEN_TEXT_LEN + 1];
    struct wx_session *x = wx_sessions_open(s, "oFollower_1", T0, id);
    assert_string_equal(x->openid, "oFollower_1");
    assert_int_equal(x->customer_id, 0);
    /* Used every 9 minutes it stays open... */
    int64_t t = T0;
    for (int i = 1; i <= 3; i++) {
        t += 9 * MINUTE;
        assert_non_null(wx_sessions_find(s, id, t));
    }
    /* ...until 30 minutes after it opened, however often it is used. */
    assert_non_null(wx_sessions_find(s, id, T0 + WX_SESSION_ABSOLUTE_MS - 1));
    assert_null(wx_sessions_find(s, id, T0 + WX_SESSION_ABSOLUTE_MS));
    assert_int_equal(wx_sessions_count(s), 0);

    wx_sessions_open(s, "oFollower_2", T0, id);
    assert_non_null(wx_sessions_find(s, id, T0 + WX_SESSION_IDLE_MS - 1));
    assert_null(wx_sessions_find(s, id, T0 + 2 * WX_SESSION_IDLE_MS - 1)); /* idle 10 min */
    wx_sessions_free(s);
}

/* The lives are the bank's (web.session_idle_s, web.session_max_s). */
static void test_lives_set(void **state)
{
    (void)state;
    wx_sessions_t *s = wx_sessions_new(4);
    wx_sessions_set_life(s, 2000, 5000);
    char id[WX_TOKEN_TEXT_LEN + 1];
    wx_sessions_open(s, "oFollower", T0, id);
    assert_non_null(wx_sessions_find(s, id, T0 + 1999));
    assert_non_null(wx_sessions_find(s, id, T0 + 3998));
    assert_null(wx_sessions_find(s, id, T0 + 5998)); /* idle for 2000 ms: over */
    wx_sessions_open(s, "oFollower", T0, id);
    for (int64_t t = T0 + 1500; t < T0 + 5000; t += 1500)
        assert_non_null(wx_sessions_find(s, id, t));
    assert_null(wx_sessions_find(s, id, T0 + 5000)); /* used all along, but 5000 ms old */
    wx_sessions_free(s);
}

static void test_rotation_and_close(void **state)
{
    (void)state;
    wx_sessions_t *s = wx_sessions_new(8);
    char before[WX_TOKEN_TEXT_LEN + 1], after[WX_TOKEN_TEXT_LEN + 1];
    struct wx_session *x = wx_sessions_open(s, "oFollower_1", T0, before);
    char csrf[WX_TOKEN_TEXT_LEN + 1];
    memcpy(csrf, x->csrf, sizeof csrf);
    x = wx_sessions_rotate(s, before, T0 + MINUTE, after);
    assert_non_null(x);
    x->customer_id = 42; /* the login that made the rotation */
    assert_string_not_equal(before, after);
    assert_string_not_equal(csrf, x->csrf);                /* a new token with the new id */
    assert_null(wx_sessions_find(s, before, T0 + MINUTE)); /* the planted id is worth nothing */
    x = wx_sessions_find(s, after, T0 + 2 * MINUTE);
    assert_non_null(x);
    assert_int_equal(x->customer_id, 42);
    assert_int_equal(x->created_ms, T0); /* rotation does not extend the absolute life */
    assert_null(wx_sessions_rotate(s, before, T0 + 2 * MINUTE, before));
    wx_sessions_close(s, after);
    assert_null(wx_sessions_find(s, after, T0 + 2 * MINUTE));
    wx_sessions_close(s, "not an id"); /* harmless */
    wx_sessions_free(s);
}

static void test_csrf(void **state)
{
    (void)state;
    wx_sessions_t *s = wx_sessions_new(2);
    char id[WX_TOKEN_TEXT_LEN + 1], other_id[WX_TOKEN_TEXT_LEN + 1];
    struct wx_session *x = wx_sessions_open(s, "oA", T0, id);
    char mine[WX_TOKEN_TEXT_LEN + 1];
    memcpy(mine, x->csrf, sizeof mine);
    struct wx_session *y = wx_sessions_open(s, "oB", T0, other_id);
    x = wx_sessions_find(s, id, T0);
    assert_true(wx_session_csrf_ok(x, mine));
    assert_false(wx_session_csrf_ok(x, y->csrf)); /* another session's */
    assert_false(wx_session_csrf_ok(x, ""));
    char longer[WX_TOKEN_TEXT_LEN + 2];
    memcpy(longer, mine, WX_TOKEN_TEXT_LEN);
    longer[WX_TOKEN_TEXT_LEN] = 'A';
    longer[WX_TOKEN_TEXT_LEN + 1] = '\0';
    assert_false(wx_session_csrf_ok(x, longer));
    wx_sessions_free(s);
}

/* Full, the least recently used session ends; ids that are not ids find nothing. */
static void test_bounded(void **state)
{
    (void)state;
    wx_sessions_t *s = wx_sessions_new(2);
    char a[WX_TOKEN_TEXT_LEN + 1], b[WX_TOKEN_TEXT_LEN + 1], c[WX_TOKEN_TEXT_LEN + 1];
    wx_sessions_open(s, "oA", T0, a);
    wx_sessions_open(s, "oB", T0 + 1, b);
    assert_non_null(wx_sessions_find(s, a, T0 + 2)); /* a is now the most recent */
    wx_sessions_open(s, "oC", T0 + 3, c);
    assert_int_equal(wx_sessions_count(s), 2);
    assert_null(wx_sessions_find(s, b, T0 + 4));
    assert_non_null(wx_sessions_find(s, a, T0 + 4));
    assert_null(wx_sessions_find(s, "", T0 + 4));
    assert_null(wx_sessions_find(s, "a'; DROP TABLE sessions; --", T0 + 4));
    wx_sessions_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_and_absolute),
        cmocka_unit_test(test_lives_set),
        cmocka_unit_test(test_rotation_and_close),
        cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
