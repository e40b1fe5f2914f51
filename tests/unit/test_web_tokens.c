/*
 * test_web_tokens.c - one-time tokens (src/web/tokens.c): good once, for their life only,
 * unguessable in form, and the table bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include "web/web.h"

#define T0     1795752000000ll
#define FIVE_M (5 * 60 * 1000)

static void test_once_and_in_time(void **state)
{
    (void)state;
    wx_tokens_t *t = wx_tokens_new(8);
    char a[WX_TOKEN_TEXT_LEN + 1], b[WX_TOKEN_TEXT_LEN + 1], got[64];
    size_t len;
    wx_tokens_issue(t, "bind:oFollower", 14, T0, FIVE_M, a);
    wx_tokens_issue(t, "unlock:oFollower", 16, T0, FIVE_M, b);
    assert_int_equal(strlen(a), WX_TOKEN_TEXT_LEN);
    assert_string_not_equal(a, b);
    assert_int_equal(strspn(a, "0123456789abcdef"), WX_TOKEN_TEXT_LEN); /* safe anywhere */
    assert_int_equal(wx_tokens_take(t, a, T0 + FIVE_M - 1, got, sizeof got, &len), 1);
    assert_int_equal(len, 14);
    assert_memory_equal(got, "bind:oFollower", 14);
    assert_int_equal(wx_tokens_take(t, a, T0 + 1, got, sizeof got, &len), 0); /* used */
    assert_int_equal(len, 0);
    assert_int_equal(wx_tokens_take(t, b, T0 + FIVE_M, got, sizeof got, &len), 0); /* expired */
    assert_int_equal(wx_tokens_count(t), 0);                                       /* and gone */
    wx_tokens_free(t);
}

static void test_not_tokens(void **state)
{
    (void)state;
    wx_tokens_t *t = wx_tokens_new(4);
    char a[WX_TOKEN_TEXT_LEN + 1], bad[WX_TOKEN_TEXT_LEN + 2], got[8];
    size_t len;
    wx_tokens_issue(t, "x", 1, T0, FIVE_M, a);
    memcpy(bad, a, sizeof a);
    bad[0] = bad[0] == 'a' ? 'b' : 'a'; /* one character off */
    assert_int_equal(wx_tokens_take(t, bad, T0, got, sizeof got, &len), 0);
    memcpy(bad, a, sizeof a);
    size_t letter = strcspn(a, "abcdef"); /* 64 hex digits without a letter: p = 1e-13 */
    bad[letter] = (char)toupper((unsigned char)a[letter]); /* upper case: not a token */
    assert_int_equal(wx_tokens_take(t, bad, T0, got, sizeof got, &len), 0);
    memcpy(bad, a, sizeof a);
    bad[WX_TOKEN_TEXT_LEN - 1] = '\0'; /* short */
    assert_int_equal(wx_tokens_take(t, bad, T0, got, sizeof got, &len), 0);
    memcpy(bad, a, sizeof a);
    bad[WX_TOKEN_TEXT_LEN] = 'a'; /* long */
    bad[WX_TOKEN_TEXT_LEN + 1] = '\0';
    assert_int_equal(wx_tokens_take(t, bad, T0, got, sizeof got, &len), 0);
    assert_int_equal(wx_tokens_take(t, "", T0, got, sizeof got, &len), 0);
    assert_int_equal(wx_tokens_count(t), 1); /* the real one is still there */
    assert_int_equal(wx_tokens_take(t, a, T0, got, sizeof got, &len), 1);
    wx_tokens_free(t);
}

/* Full, the oldest goes; a sweep drops what has expired. */
static void test_bounded(void **state)
{
    (void)state;
    wx_tokens_t *t = wx_tokens_new(3);
    char tok[5][WX_TOKEN_TEXT_LEN + 1], got[8];
    size_t len;
    for (int i = 0; i < 5; i++)
        wx_tokens_issue(t, &i, sizeof i, T0 + i, 1000, tok[i]);
    assert_int_equal(wx_tokens_count(t), 3);
    assert_int_equal(wx_tokens_take(t, tok[0], T0, got, sizeof got, &len), 0);
    assert_int_equal(wx_tokens_take(t, tok[1], T0, got, sizeof got, &len), 0);
    assert_int_equal(wx_tokens_take(t, tok[2], T0, got, sizeof got, &len), 1);
    int i;
    memcpy(&i, got, sizeof i);
    assert_int_equal(i, 2);
    wx_tokens_sweep(t, T0 + 3 + 1000); /* token 3 has ended, token 4 not */
    assert_int_equal(wx_tokens_count(t), 1);
    assert_int_equal(wx_tokens_take(t, tok[4], T0 + 1003, got, sizeof got, &len), 1);
    wx_tokens_free(t);
}

/* The payload is cut to what the caller has room for, never overrun. */
static void test_payload_limits(void **state)
{
    (void)state;
    wx_tokens_t *t = wx_tokens_new(2);
    char tok[WX_TOKEN_TEXT_LEN + 1], big[WX_TOKEN_PAYLOAD_MAX], got[4];
    memset(big, 'p', sizeof big);
    size_t len;
    wx_tokens_issue(t, big, sizeof big, T0, 1000, tok);
    assert_int_equal(wx_tokens_take(t, tok, T0, got, sizeof got, &len), 1);
    assert_int_equal(len, sizeof got);
    wx_tokens_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_and_in_time),
        cmocka_unit_test(test_not_tokens),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_payload_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
