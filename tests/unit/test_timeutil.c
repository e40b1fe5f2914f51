/*
 * test_timeutil.c - civil dates, formatting of known instants, zones, clocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/timeutil.h"

#include <string.h>

/* 2026-11-27T03:20:30.123Z */
#define KNOWN_MS 1795749630123LL

static void test_civil_from_days(void **state)
{
    (void)state;
    int y, m, d;
    wx_civil_from_days(0, &y, &m, &d);
    assert_true(y == 1970 && m == 1 && d == 1);
    wx_civil_from_days(-1, &y, &m, &d);
    assert_true(y == 1969 && m == 12 && d == 31);
    wx_civil_from_days(11016, &y, &m, &d); /* 2000-02-29, a leap day of a 400-year */
    assert_true(y == 2000 && m == 2 && d == 29);
    wx_civil_from_days(20784, &y, &m, &d);
    assert_true(y == 2026 && m == 11 && d == 27);
    wx_civil_from_days(-719468, &y, &m, &d); /* 0000-03-01 */
    assert_true(y == 0 && m == 3 && d == 1);
    assert_int_equal(wx_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(wx_days_from_civil(2000, 2, 29), 11016);
    assert_int_equal(wx_days_from_civil(2026, 11, 27), 20784);
    assert_int_equal(wx_days_from_civil(0, 3, 1), -719468);
    for (int64_t days = -800000; days < 800000; days += 997) { /* the two agree */
        wx_civil_from_days(days, &y, &m, &d);
        assert_int_equal(wx_days_from_civil(y, m, d), days);
    }
}

static void test_time_format(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(wx_time_format(KNOWN_MS, 0, out, sizeof out), 19);
    assert_string_equal(out, "2026-11-27 03:20:30");
    wx_time_format(KNOWN_MS, 480, out, sizeof out);
    assert_string_equal(out, "2026-11-27 11:20:30");
    wx_time_format(0, 0, out, sizeof out);
    assert_string_equal(out, "1970-01-01 00:00:00");
    wx_time_format(-1, 0, out, sizeof out); /* one ms before the epoch */
    assert_string_equal(out, "1969-12-31 23:59:59");
    wx_time_format(1798761599000LL, 480, out, sizeof out); /* 2026-12-31 23:59:59Z, in +08 */
    assert_string_equal(out, "2027-01-01 07:59:59");
    wx_time_format(KNOWN_MS, -300, out, sizeof out);
    assert_string_equal(out, "2026-11-26 22:20:30");
    char small[11];
    assert_int_equal(wx_time_format(KNOWN_MS, 0, small, sizeof small), 19);
    assert_string_equal(small, "2026-11-27");
}

static void test_yymm(void **state)
{
    (void)state;
    assert_int_equal(wx_yymm_of_ms(KNOWN_MS), 2611);
    assert_int_equal(wx_yymm_of_ms(0), 7001);
    assert_int_equal(wx_yymm_of_ms(946684800000LL), 1);        /* 2000-01-01 */
    assert_int_equal(wx_yymm_of_ms(946684800000LL - 1), 9912); /* 1999-12-31 */
}

static void test_tz_offsets(void **state)
{
    (void)state;
    assert_int_equal(wx_tz_offset_minutes("UTC"), 0);
    assert_int_equal(wx_tz_offset_minutes("Asia/Shanghai"), 480);
    assert_int_equal(wx_tz_offset_minutes("Asia/Hong_Kong"), 480);
    assert_int_equal(wx_tz_offset_minutes("Asia/Taipei"), 480);
    assert_int_equal(wx_tz_offset_minutes("Asia/Tokyo"), 540);
    assert_int_equal(wx_tz_offset_minutes("+08:00"), 480);
    assert_int_equal(wx_tz_offset_minutes("-05:30"), -330);
    assert_int_equal(wx_tz_offset_minutes("+14:00"), 840);
    assert_int_equal(wx_tz_offset_minutes("-00:00"), 0);
    assert_int_equal(wx_tz_offset_minutes("+14:01"), WX_TZ_INVALID);
    assert_int_equal(wx_tz_offset_minutes("+08:60"), WX_TZ_INVALID);
    assert_int_equal(wx_tz_offset_minutes("+0800"), WX_TZ_INVALID);
    assert_int_equal(wx_tz_offset_minutes("+08:00 "), WX_TZ_INVALID);
    assert_int_equal(wx_tz_offset_minutes("08:00"), WX_TZ_INVALID);
    assert_int_equal(wx_tz_offset_minutes("+"), WX_TZ_INVALID);
    assert_int_equal(wx_tz_offset_minutes("Europe/London"), WX_TZ_INVALID);
    assert_int_equal(wx_tz_offset_minutes("utc"), WX_TZ_INVALID);
    assert_int_equal(wx_tz_offset_minutes(""), WX_TZ_INVALID);
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t now = wx_now_ms();
    assert_true(now > 1767225600000LL); /* after 2026-01-01 */
    int64_t a = wx_mono_us();
    int64_t b = wx_mono_us();
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil_from_days),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_yymm),
        cmocka_unit_test(test_tz_offsets),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
