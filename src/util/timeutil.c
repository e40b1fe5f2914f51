/*
 * timeutil.c - clock reads, Howard Hinnant's days-to-civil algorithm, fixed-offset zones.
 */
#include "util/timeutil.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY      86400000LL
#define TZ_OFFSET_MAX_M (14 * 60)

int64_t wx_now_ms(void)
{
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    assert(rc == 0);
    (void)rc;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wx_mono_us(void)
{
    struct timespec ts;
    int rc = clock_gettime(CLOCK_MONOTONIC, &ts);
    assert(rc == 0);
    (void)rc;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* From http://howardhinnant.github.io/date_algorithms.html#days_from_civil. */
int64_t wx_days_from_civil(int y, int m, int d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* From http://howardhinnant.github.io/date_algorithms.html#civil_from_days. */
void wx_civil_from_days(int64_t days, int *y, int *m, int *d)
{
    assert(y != NULL && m != NULL && d != NULL);
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Floor division, so that instants before 1970 fall on the right day. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int wx_yymm_of_ms(int64_t ms)
{
    int y, m, d;
    wx_civil_from_days(floor_div(ms, MS_PER_DAY), &y, &m, &d);
    int yy = y % 100;
    if (yy < 0) yy += 100;
    return yy * 100 + m;
}

size_t wx_time_format(int64_t ms, int tz_offset_minutes, char *out, size_t cap)
{
    assert(out != NULL || cap == 0);
    assert(tz_offset_minutes >= -TZ_OFFSET_MAX_M && tz_offset_minutes <= TZ_OFFSET_MAX_M);
    int64_t local = ms + (int64_t)tz_offset_minutes * 60000;
    int64_t days = floor_div(local, MS_PER_DAY);
    int64_t sec_of_day = (local - days * MS_PER_DAY) / 1000;
    int y, m, d;
    wx_civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, (int)(sec_of_day / 3600),
                     (int)(sec_of_day / 60 % 60), (int)(sec_of_day % 60));
    assert(n > 0);
    return (size_t)n;
}

static bool two_digits(const char *p, int *out)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return false;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return true;
}

/* "+HH:MM" or "-HH:MM", at most 14:00 either way. */
static int parse_numeric_offset(const char *tz)
{
    int hh, mm;
    if (tz[0] != '+' && tz[0] != '-') return WX_TZ_INVALID;
    if (!two_digits(tz + 1, &hh) || tz[3] != ':' || !two_digits(tz + 4, &mm) || tz[6] != '\0') {
        return WX_TZ_INVALID;
    }
    int minutes = hh * 60 + mm;
    if (mm > 59 || minutes > TZ_OFFSET_MAX_M) return WX_TZ_INVALID;
    return tz[0] == '-' ? -minutes : minutes;
}

int wx_tz_offset_minutes(const char *tz)
{
    static const struct {
        const char *name;
        int minutes;
    } zones[] = {
        {"UTC", 0},           {"Asia/Shanghai", 480}, {"Asia/Hong_Kong", 480},
        {"Asia/Taipei", 480}, {"Asia/Tokyo", 540},
    };
    assert(tz != NULL);
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        if (strcmp(tz, zones[i].name) == 0) return zones[i].minutes;
    }
    return parse_numeric_offset(tz);
}
