/*
 * test_dedup.c - the webhook's memory of recent messages (src/wechat/dedup.c), and the
 * query-string reader the webhook signs with (src/net/http.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "net/net.h"
#include "wechat/webhook_int.h"

static enum wx_dedup_state begin(wx_dedup_t *d, const char *key, int64_t now, uint32_t *slot,
                                 const char **reply)
{
    const uint8_t *r = NULL;
    size_t len = 0;
    enum wx_dedup_state st = wx_dedup_begin(d, key, strlen(key), now, slot, &r, &len);
    if (reply != NULL) *reply = st == WX_DEDUP_DONE && len > 0 ? (const char *)r : "";
    return st;
}

/* New, pending, then done with the first answer; another key is new. */
static void test_remembers_answers(void **state)
{
    (void)state;
    wx_dedup_t *d = wx_dedup_new(16, 1 << 20, 60);
    uint32_t slot, slot2;
    const char *reply;
    assert_int_equal(begin(d, "o1\n100", 0, &slot, NULL), WX_DEDUP_NEW);
    assert_int_equal(begin(d, "o1\n100", 10, &slot2, NULL), WX_DEDUP_PENDING);
    assert_int_equal(slot2, slot);
    wx_dedup_finish(d, slot, "answer A", 8);
    assert_int_equal(begin(d, "o1\n100", 20, &slot2, &reply), WX_DEDUP_DONE);
    assert_memory_equal(reply, "answer A", 8);
    assert_int_equal(begin(d, "o2\n100", 20, &slot2, NULL), WX_DEDUP_NEW);
    wx_dedup_free(d);
}

/* An entry is forgotten ttl after it arrived; the same key is then new. */
static void test_expiry(void **state)
{
    (void)state;
    wx_dedup_t *d = wx_dedup_new(16, 1 << 20, 20);
    uint32_t slot;
    assert_int_equal(begin(d, "k", 1000, &slot, NULL), WX_DEDUP_NEW);
    wx_dedup_finish(d, slot, "x", 1);
    assert_int_equal(begin(d, "k", 1000 + 20000, &slot, NULL), WX_DEDUP_DONE);
    assert_int_equal(begin(d, "k", 1000 + 20001, &slot, NULL), WX_DEDUP_NEW);
    wx_dedup_free(d);
}

/* A full ring drops its oldest done entries, never a pending one (then FULL), and the hash
 * chains stay intact through thousands of evictions. */
static void test_eviction_and_full(void **state)
{
    (void)state;
    wx_dedup_t *d = wx_dedup_new(8, 1 << 20, 3600);
    char key[32];
    uint32_t slot;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(begin(d, key, i, &slot, NULL), WX_DEDUP_NEW);
        wx_dedup_finish(d, slot, key, strlen(key));
        assert_true(wx_dedup_count(d) <= 8);
    }
    /* The last 8 are remembered with their answers, the one before is not. */
    const char *reply;
    for (int i = 5000 - 8; i < 5000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(begin(d, key, 5000, &slot, &reply), WX_DEDUP_DONE);
        assert_memory_equal(reply, key, strlen(key));
    }
    wx_dedup_free(d);

    d = wx_dedup_new(4, 1 << 20, 3600);
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "pending-%d", i);
        assert_int_equal(begin(d, key, 0, &slot, NULL), WX_DEDUP_NEW);
    }
    assert_int_equal(begin(d, "one more", 0, &slot, NULL), WX_DEDUP_FULL);
    wx_dedup_free(d);
}

/* The reply budget drops the oldest entries too. */
static void test_byte_budget(void **state)
{
    (void)state;
    static char big[4096];
    memset(big, 'r', sizeof big);
    wx_dedup_t *d = wx_dedup_new(1024, 3 * sizeof big, 3600);
    char key[32];
    uint32_t slot;
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(begin(d, key, i, &slot, NULL), WX_DEDUP_NEW);
        wx_dedup_finish(d, slot, big, sizeof big);
    }
    assert_true(wx_dedup_count(d) <= 5);
    assert_int_equal(begin(d, "k0", 10, &slot, NULL), WX_DEDUP_NEW);
    wx_dedup_free(d);
}

/* A forgotten entry (processing failed) matches nothing, and evicting it later keeps the
 * chain it hangs on intact. */
static void test_forget(void **state)
{
    (void)state;
    wx_dedup_t *d = wx_dedup_new(4, 1 << 20, 3600);
    uint32_t slot;
    assert_int_equal(begin(d, "m", 0, &slot, NULL), WX_DEDUP_NEW);
    wx_dedup_forget(d, slot);
    assert_int_equal(begin(d, "m", 1, &slot, NULL), WX_DEDUP_NEW);
    wx_dedup_finish(d, slot, "second", 6);
    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "f%d", i);
        assert_int_equal(begin(d, key, 2 + i, &slot, NULL), WX_DEDUP_NEW);
        wx_dedup_finish(d, slot, "y", 1);
    }
    assert_true(wx_dedup_count(d) <= 4);
    wx_dedup_free(d);
}

/* The first value of a parameter, percent-decoded; limits and bad encodings refused. */
static void test_query_param(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(wx_http_query_param("a=1&b=x%2By+z&c=", "b", out, sizeof out), 5);
    assert_string_equal(out, "x+y z");
    assert_int_equal(wx_http_query_param("a=1&b=2", "c", out, sizeof out), -1);
    assert_int_equal(wx_http_query_param("a=1&b=2", "c", out, sizeof out), -1);
    assert_int_equal(wx_http_query_param("a=&a=2", "a", out, sizeof out), 0);
    assert_int_equal(wx_http_query_param("sig=first&sig=second", "sig", out, sizeof out), 5);
    assert_string_equal(out, "first");
    assert_int_equal(wx_http_query_param("ab=1&b=2", "b", out, sizeof out), 1);
    assert_string_equal(out, "2");
    assert_int_equal(wx_http_query_param("a=%00", "a", out, sizeof out), -2);
    assert_int_equal(wx_http_query_param("a=%4", "a", out, sizeof out), -2);
    assert_int_equal(wx_http_query_param("a=%zz", "a", out, sizeof out), -2);
    assert_int_equal(wx_http_query_param("a=123456789012345", "a", out, sizeof out), 15);
    assert_int_equal(wx_http_query_param("a=1234567890123456", "a", out, sizeof out), -2);
    assert_int_equal(wx_http_query_param(NULL, "a", out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remembers_answers),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_eviction_and_full),
        cmocka_unit_test(test_byte_budget),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_query_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
