/*
 * timeutil.h - clocks, civil dates and time zones for display.
 *
 * Inside wxbank times are UTC epoch milliseconds (DESIGN.md); a zone offset is applied only
 * when a time is shown to a person. The zones are fixed offsets: the ones wxbank serves have
 * no daylight saving time, so no tz database is needed.
 */
#ifndef WX_TIMEUTIL_H
#define WX_TIMEUTIL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Returned by wx_tz_offset_minutes for a zone it does not know (offsets can be negative). */
#define WX_TZ_INVALID INT_MIN

/* Wall-clock time, UTC epoch milliseconds (CLOCK_REALTIME). */
int64_t wx_now_ms(void);

/* Monotonic microseconds since an arbitrary start: for durations only. */
int64_t wx_mono_us(void);

/* Days since 1970-01-01 (negative before) to a proleptic Gregorian date (Hinnant). */
void wx_civil_from_days(int64_t days, int *y, int *m, int *d);

/* The reverse: days since 1970-01-01 of y-m-d (m 1..12, d 1..31). */
int64_t wx_days_from_civil(int y, int m, int d);

/* The UTC year % 100 * 100 + month of epoch ms: 2026-11-27 gives 2611 (card expiry form). */
int wx_yymm_of_ms(int64_t ms);

/*
 * Formats ms shifted by tz_offset_minutes as "2026-11-27 11:20:30" into out (snprintf-style:
 * always NUL-terminated, cut if cap is small). Returns the length of the full text (19 for
 * years 0..9999), like snprintf.
 */
size_t wx_time_format(int64_t ms, int tz_offset_minutes, char *out, size_t cap);

/*
 * The offset east of UTC in minutes of "UTC", "Asia/Shanghai", "Asia/Hong_Kong",
 * "Asia/Taipei" (all +480), "Asia/Tokyo" (+540), or "+HH:MM" / "-HH:MM" (at most 14:00).
 * Returns WX_TZ_INVALID for anything else.
 */
int wx_tz_offset_minutes(const char *tz);

#endif
