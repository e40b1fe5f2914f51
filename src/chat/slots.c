/*
 * slots.c - the details a message gives: amounts, installment periods, dates and ranges,
 * card last 4, yes/no/cancel, limit kinds, merchants, categories and language.
 *
 * Numbers are read first, Arabic (1,234.56) or Chinese (一千二百三十四), and each is given to
 * the slot its neighbours say: 尾号 before it makes a card's last 4, 期 or 个月 after it a
 * period count, 月/号 a date, 天 after 最近 a range, 笔 a count (no slot), and anything
 * else with a unit or of at least 10 an amount. Words without numbers (今天, 上个月, last
 * week) name dates; lexicons name merchants and categories. All reads are of the normalized
 * text (norm.c), so full-width digits and 個/月 need nothing of their own.
 */
#include "chat/nlu_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/timeutil.h"

#define MILLI 1000 /* numbers are kept in thousandths: 1.234万 is exact */

struct scan {
    uint32_t cp[NLU_TEXT_MAX];      /* the normalized text's characters */
    uint16_t off[NLU_TEXT_MAX + 1]; /* each one's byte offset in text; off[n] = len */
    size_t n;
    const char *text; /* the normalized text (UTF-8, one space between words) */
    size_t len;
    int32_t today;
    int year, month, day; /* today's */
    struct wx_chat_slots *out;
};

/* ---- reading ------------------------------------------------------------------------------- */

/* Words are matched as bytes: the normalized text and the words are both valid UTF-8, so a
 * match that starts with a word's first byte starts on a character. */

static size_t chars_in(const char *lit, size_t bytes)
{
    size_t n = 0;
    for (size_t k = 0; k < bytes; k++)
        n += ((unsigned char)lit[k] & 0xC0) != 0x80;
    return n;
}

/* How many characters of lit match at character i; 0 when it does not. */
static size_t at(const struct scan *s, size_t i, const char *lit)
{
    size_t b = strlen(lit), o = i < s->n ? s->off[i] : s->len;
    if (b == 0 || o + b > s->len || memcmp(s->text + o, lit, b) != 0) return 0;
    return chars_in(lit, b);
}

/* True when lit ends just before character i, skipping one space. */
static bool before(const struct scan *s, size_t i, const char *lit)
{
    if (i > 0 && s->cp[i - 1] == ' ') i--;
    size_t b = strlen(lit), o = s->off[i];
    return o >= b && memcmp(s->text + o - b, lit, b) == 0;
}

/* Any of lits ends just before i. */
static bool before_any(const struct scan *s, size_t i, const char *const *lits)
{
    for (; *lits != NULL; lits++) {
        if (before(s, i, *lits)) return true;
    }
    return false;
}

/* The length of the first of lits at i (skipping one space), or 0; *which its index. */
static size_t after_any(const struct scan *s, size_t i, const char *const *lits, size_t *which)
{
    if (i < s->n && s->cp[i] == ' ') i++;
    for (size_t k = 0; lits[k] != NULL; k++) {
        size_t len = at(s, i, lits[k]);
        if (len > 0) {
            if (which != NULL) *which = k;
            return len;
        }
    }
    return 0;
}

static bool is_latin_byte(char c)
{
    return c >= 'a' && c <= 'z';
}

/* The first place word occurs in the text (an English word: as a whole word), or NULL. */
static const char *find_word(const struct scan *s, const char *word, bool english)
{
    size_t b = strlen(word);
    for (const char *p = strstr(s->text, word); p != NULL; p = strstr(p + 1, word)) {
        if (!english) return p;
        bool starts = p == s->text || !is_latin_byte(p[-1]);
        if (starts && !is_latin_byte(p[b])) return p;
    }
    return NULL;
}

static bool has(const struct scan *s, const char *lit)
{
    return find_word(s, lit, false) != NULL;
}

static bool has_word(const struct scan *s, const char *word)
{
    return find_word(s, word, true) != NULL;
}

/* ---- numbers ------------------------------------------------------------------------------- */

/* The character at *p of valid UTF-8 (the normalized text, or a literal here), advancing. */
static uint32_t decode(const char **p)
{
    return nlu_utf8_next(p);
}

static int cn_digit(uint32_t c)
{
    static const char *const DIGITS = "零一二三四五六七八九";
    const char *p = DIGITS;
    for (int d = 0; *p != '\0'; d++) {
        if (decode(&p) == c) return d;
    }
    return c == 0x4E24 /* 两 */ ? 2 : c == 0x4FE9 /* 俩 */ ? 2 : -1;
}

static int64_t cn_unit(uint32_t c)
{
    switch (c) {
    case 0x5341:
        return 10; /* 十 */
    case 0x767E:
        return 100; /* 百 */
    case 0x5343:
        return 1000; /* 千 */
    case 0x4E07:
        return 10000; /* 万 */
    case 0x4EBF:
        return 100000000; /* 亿 */
    default:
        return 0;
    }
}

struct number {
    size_t from, to; /* characters */
    int64_t milli;   /* the value in thousandths */
    bool arabic, integer;
    int digits; /* Arabic: digits before any point */
};

/* 1,234.56 at i. */
static bool arabic_at(const struct scan *s, size_t i, struct number *num)
{
    if (s->cp[i] < '0' || s->cp[i] > '9') return false;
    int64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    size_t j = i;
    for (; j < s->n && ((s->cp[j] >= '0' && s->cp[j] <= '9') || s->cp[j] == ','); j++) {
        if (s->cp[j] == ',') continue;
        if (digits < WX_CHAT_NUMBER_DIGITS) whole = whole * 10 + (s->cp[j] - '0');
        digits++;
    }
    if (j + 1 < s->n && s->cp[j] == '.' && s->cp[j + 1] >= '0' && s->cp[j + 1] <= '9') {
        for (j++; j < s->n && s->cp[j] >= '0' && s->cp[j] <= '9'; j++) {
            if (fdigits < 3) frac = frac * 10 + (s->cp[j] - '0');
            fdigits++;
        }
    }
    for (int k = fdigits < 3 ? fdigits : 3; k < 3; k++)
        frac *= 10;
    *num = (struct number){.from = i,
                           .to = j,
                           .milli = whole * MILLI + frac,
                           .arabic = true,
                           .integer = fdigits == 0,
                           .digits = digits};
    return true;
}

/* 一千二百三十四, 十二, 一千零五十, 两千五 (= 2500), 三万 at i. Starts with a digit or 十. */
static bool chinese_at(const struct scan *s, size_t i, struct number *num)
{
    if (cn_digit(s->cp[i]) < 0 && s->cp[i] != 0x5341) return false;
    int64_t total = 0, section = 0, digit = -1, last_unit = 0;
    bool zero = false; /* a 零 since the last unit: the digit after it is ones */
    size_t j = i;
    for (; j < s->n; j++) {
        int d = cn_digit(s->cp[j]);
        int64_t u = cn_unit(s->cp[j]);
        if (d >= 0 && digit >= 0) break; /* 一二: not one number */
        if (d == 0) {
            zero = true; /* 零 holds a place */
        } else if (d > 0) {
            digit = d;
        } else if (u >= 10000) {
            int64_t v = total + section + (digit > 0 ? digit : 0);
            if (v > WX_CHAT_NUMBER_MAX / u) return false;
            total = v * u;
            section = 0, digit = -1, last_unit = u, zero = false;
        } else if (u > 0) {
            section += (digit >= 0 ? digit : 1) * u;
            digit = -1, last_unit = u, zero = false;
        } else {
            break;
        }
    }
    /* A digit left after a unit is the next unit down: 两千五 = 2500, 一万二 = 12000; after a
     * 零 it is ones: 一千零五 = 1005. */
    if (digit > 0) section += !zero && last_unit >= 10 ? digit * (last_unit / 10) : digit;
    total += section;
    if (total > WX_CHAT_NUMBER_MAX) return false;
    *num = (struct number){.from = i, .to = j, .milli = total * MILLI, .integer = true};
    return j > i;
}

/* ---- dates ---------------------------------------------------------------------------------- */

static int days_in_month(int y, int m)
{
    return (int)(wx_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) -
                 wx_days_from_civil(y, m, 1));
}

static void set_range(struct scan *s, int64_t from, int64_t to)
{
    if (s->out->date_from != INT32_MIN) return; /* the first named wins */
    s->out->date_from = (int32_t)from;
    s->out->date_to = (int32_t)to;
}

/* Month m of year y (months before 1 or after 12 roll over). */
static void set_month(struct scan *s, int y, int m)
{
    while (m < 1)
        m += 12, y--;
    while (m > 12)
        m -= 12, y++;
    set_range(s, wx_days_from_civil(y, m, 1), wx_days_from_civil(y, m, days_in_month(y, m)));
}

/* A month named without a year: this year's, or last year's when it is still to come. */
static void set_named_month(struct scan *s, int m)
{
    set_month(s, m > s->month ? s->year - 1 : s->year, m);
}

static void set_last_days(struct scan *s, int64_t n)
{
    if (n >= 1 && n <= 3660) set_range(s, s->today - (n - 1), s->today);
}

static int64_t monday(const struct scan *s)
{
    int64_t dow = ((int64_t)s->today + 3) % 7; /* 1970-01-01 was a Thursday: Monday is 0 */
    if (dow < 0) dow += 7;
    return s->today - dow;
}

/* Dates named by words. */
static void date_words(struct scan *s)
{
    static const struct {
        const char *word;
        int kind; /* 0 day offset, 1 month offset, 2 week offset, 3 year offset */
        int offset;
        bool english;
    } WORDS[] = {
        {"上上个月", 1, -2, false}, {"上上月", 1, -2, false},   {"上个月", 1, -1, false},
        {"上一个月", 1, -1, false}, {"上月", 1, -1, false},     {"下个月", 1, 1, false},
        {"下月", 1, 1, false},      {"本月", 1, 0, false},      {"这个月", 1, 0, false},
        {"这月", 1, 0, false},      {"当月", 1, 0, false},      {"今天", 0, 0, false},
        {"今日", 0, 0, false},      {"昨天", 0, -1, false},     {"昨日", 0, -1, false},
        {"前天", 0, -2, false},     {"上周", 2, -1, false},     {"上个星期", 2, -1, false},
        {"上星期", 2, -1, false},   {"上个礼拜", 2, -1, false}, {"本周", 2, 0, false},
        {"这周", 2, 0, false},      {"这个星期", 2, 0, false},  {"这星期", 2, 0, false},
        {"今年", 3, 0, false},      {"去年", 3, -1, false},     {"last month", 1, -1, true},
        {"this month", 1, 0, true}, {"next month", 1, 1, true}, {"today", 0, 0, true},
        {"yesterday", 0, -1, true}, {"last week", 2, -1, true}, {"this week", 2, 0, true},
        {"this year", 3, 0, true},  {"last year", 3, -1, true},
    };
    /* The word that comes first in the message; at one place, the longest (listed first). */
    size_t best = SIZE_MAX;
    const char *first = NULL;
    for (size_t k = 0; k < sizeof WORDS / sizeof WORDS[0]; k++) {
        const char *p = find_word(s, WORDS[k].word, WORDS[k].english);
        if (p != NULL && (first == NULL || p < first)) first = p, best = k;
    }
    if (first == NULL) return;
    int off = WORDS[best].offset;
    if (WORDS[best].kind == 0) {
        set_range(s, s->today + off, s->today + off);
    } else if (WORDS[best].kind == 1) {
        if (off == 0) {
            set_range(s, wx_days_from_civil(s->year, s->month, 1), s->today);
        } else {
            set_month(s, s->year, s->month + off);
        }
    } else if (WORDS[best].kind == 2) {
        int64_t mon = monday(s) + 7 * off;
        set_range(s, mon, off == 0 ? s->today : mon + 6);
    } else {
        int y = s->year + off;
        set_range(s, wx_days_from_civil(y, 1, 1),
                  off == 0 ? s->today : wx_days_from_civil(y, 12, 31));
    }
}

/* january, feb, ... ("may" only after in/for/of: "may i" is no month). */
static void english_months(struct scan *s)
{
    static const char *const MONTHS[] = {"january",   "february", "march",    "april",
                                         "may",       "june",     "july",     "august",
                                         "september", "october",  "november", "december"};
    static const char *const SHORT[] = {"jan", "feb", "mar", "apr", "",    "jun",
                                        "jul", "aug", "sep", "oct", "nov", "dec"};
    static const char *const LEAD[] = {"in ", "for ", "of ", "during ", NULL};
    for (int m = 0; m < 12; m++) {
        const char *p = find_word(s, MONTHS[m], true);
        if (p == NULL && SHORT[m][0] != '\0') p = find_word(s, SHORT[m], true);
        if (p == NULL) continue;
        bool led = false;
        for (size_t k = 0; LEAD[k] != NULL && !led; k++) {
            size_t b = strlen(LEAD[k]);
            led = (size_t)(p - s->text) >= b && memcmp(p - b, LEAD[k], b) == 0;
        }
        if (m == 4 && !led) continue;
        set_named_month(s, m + 1);
        return;
    }
}

/* ---- what a number is ---------------------------------------------------------------------- */

static const char *const LAST4_LEAD[] = {
    "尾号是",      "尾号为",    "尾号",        "尾数是",    "尾数",          "末四位是",
    "末四位",      "后四位是",  "后四位",      "后4位",     "末4位",         "ending in",
    "ending with", "ending",    "ends in",     "ends with", "last 4 digits", "last four digits",
    "last 4",      "last four", "last digits", NULL};
static const char *const RECENT[] = {"最近", "近",       "过去",   "前", "last",
                                     "past", "previous", "recent", NULL};
/* After a number, words that make it a count or a time, not an amount: 3笔, 2025年. */
static const char *const COUNT[] = {"笔", "次", "张",   "条",   "个",    "年", "号",
                                    "日", "点", "分钟", "小时", "times", NULL};
static const char *const AMOUNT_UNIT[] = {"块钱", "元",    "块",     "rmb", "cny",
                                          "yuan", "bucks", "人民币", NULL};

/*
 * The small number that ends an amount after a unit, worth `step` thousandths a unit: 1万2
 * (step 1000 yuan), 两千五 is read by chinese_at; after 块, 5 or 五 is jiao (step 0.1) and
 * two digits are fen (块50). Advances *end past it (and a 毛 or 角); 0 when there is none.
 */
static int64_t small_after(const struct scan *s, size_t *end, int64_t step)
{
    size_t e = *end;
    struct number small;
    if (step == 0 || e >= s->n) return 0;
    bool arabic = s->cp[e] >= '1' && s->cp[e] <= '9';
    if (!arabic && cn_digit(s->cp[e]) <= 0) return 0;
    if (arabic ? !arabic_at(s, e, &small) : !chinese_at(s, e, &small)) return 0;
    if (!small.integer || (arabic && small.digits > 2) || (!arabic && small.to != e + 1)) return 0;
    if (small.to < s->n && cn_unit(s->cp[small.to]) != 0) return 0; /* 1万2千: its own unit */
    if (after_any(s, small.to, COUNT, NULL) > 0) return 0;          /* 100块 2笔 */
    int64_t v = small.milli / MILLI;
    if (arabic && small.digits == 2) {
        if (step != MILLI / 10) return 0; /* two digits are fen, after 块 only */
        *end = small.to;
        return v * (MILLI / 100);
    }
    *end = small.to;
    if (*end < s->n && (s->cp[*end] == 0x6BDB || s->cp[*end] == 0x89D2)) (*end)++; /* 毛 角 */
    return v * step;
}

#define RECENT_MONTHS_MAX 120    /* 最近N个月: at most ten years back */
#define YEAR_CHAR         0x5E74 /* 年 */

/* 12期, 分6个月, 12 months, 6 installments; 最近3个月 is a range. Returns the characters
 * used, or 0 when no period word follows. */
static size_t place_periods(struct scan *s, const struct number *num, int64_t whole)
{
    static const char *const PERIOD[] = {"期",           "个月",        "months",  "month",
                                         "installments", "instalments", "periods", "payments",
                                         "个月份",       NULL};
    size_t which, len = num->integer ? after_any(s, num->to, PERIOD, &which) : 0;
    if (len == 0) return 0;
    bool months = which == 1 || which == 2 || which == 3;
    if (months && before_any(s, num->from, RECENT)) {
        if (whole >= 1 && whole <= RECENT_MONTHS_MAX) {
            int m = s->month - (int)whole + 1, y = s->year;
            while (m < 1)
                m += 12, y--;
            set_range(s, wx_days_from_civil(y, m, 1), s->today);
        }
    } else if (whole >= 1 && whole <= WX_CHAT_PERIODS_LIMIT && s->out->periods == 0) {
        s->out->periods = (int)whole;
    }
    return num->to - num->from + len;
}

/* 最近7天, last 30 days, 近两周. Returns the characters used, or 0. */
static size_t place_days(struct scan *s, const struct number *num, int64_t whole)
{
    static const char *const DAYS[] = {"天",    "日",   "days", "day",    "周",
                                       "weeks", "week", "星期", "个星期", NULL};
    size_t which, len = num->integer ? after_any(s, num->to, DAYS, &which) : 0;
    if (len == 0 || !before_any(s, num->from, RECENT)) return 0;
    set_last_days(s, which >= 4 ? whole * 7 : whole);
    return num->to - num->from + len;
}

/* 3月, 3月15号, 2025年3月. Returns the characters used, or 0. */
static size_t place_month(struct scan *s, const struct number *num, int64_t whole)
{
    size_t i = num->from, j = num->to;
    if (!num->integer || whole < 1 || whole > 12 || at(s, j, "月") == 0 || at(s, j, "月份") > 0) {
        return 0;
    }
    int y = s->year;
    bool year_given = false;
    struct number yr;
    if (i >= 2 && s->cp[i - 1] == YEAR_CHAR) {
        size_t k = i - 1;
        while (k > 0 && s->cp[k - 1] >= '0' && s->cp[k - 1] <= '9')
            k--;
        if (arabic_at(s, k, &yr) && yr.to == i - 1 && yr.digits == 4) {
            y = (int)(yr.milli / MILLI);
            year_given = true;
        }
    }
    struct number day;
    size_t k = j + 1;
    if (k < s->n && (arabic_at(s, k, &day) || chinese_at(s, k, &day)) && day.integer &&
        (at(s, day.to, "号") > 0 || at(s, day.to, "日") > 0)) {
        int m = (int)whole, d = (int)(day.milli / MILLI);
        if (!year_given && m > s->month) y--;
        if (d >= 1 && d <= days_in_month(y, m)) {
            int64_t when = wx_days_from_civil(y, m, d);
            set_range(s, when, when);
            return day.to + 1 - i;
        }
    }
    if (year_given) {
        set_month(s, y, (int)whole);
    } else {
        set_named_month(s, (int)whole);
    }
    return j + 1 - i;
}

/* ¥1,234.56, 1.2万, 3k, 一千二百三十四块五; a bare number from 10 up. Counts (3笔, 2025年)
 * fill no slot. Returns the characters used. */
static size_t place_amount(struct scan *s, const struct number *num, int64_t whole)
{
    static const char *const MULT[] = {"万", "w", "千", "k", "百", "亿", NULL};
    static const int64_t MULT_BY[] = {10000, 10000, 1000, 1000, 100, 100000000};
    size_t i = num->from, j = num->to, which = 0;
    size_t mlen = num->arabic ? after_any(s, j, MULT, &which) : 0;
    if (mlen > 0 && which <= 3 && which % 2 == 1 && j < s->n && s->cp[j] == ' ') mlen = 0;
    if (mlen == 0 && after_any(s, j, COUNT, NULL) > 0) return j - i;
    int64_t by = mlen > 0 ? MULT_BY[which] : 1;
    if (num->milli > INT64_MAX / by) return j - i; /* no amount is that large */
    int64_t milli = num->milli * by;
    size_t end = j + (mlen > 0 ? mlen + (s->cp[j] == ' ') : 0);
    milli += small_after(s, &end, mlen > 0 && by >= 1000 ? by / 10 * MILLI : 0);
    size_t ulen = after_any(s, end, AMOUNT_UNIT, NULL);
    bool yen =
        i > 0 && (s->cp[i - 1] == 0xA5 || (i > 1 && s->cp[i - 1] == ' ' && s->cp[i - 2] == 0xA5));
    bool unit = ulen > 0 || yen || mlen > 0 || before(s, i, "rmb") || before(s, i, "cny");
    if (ulen > 0) end += ulen + (end < s->n && s->cp[end] == ' ');
    if (ulen > 0) milli += small_after(s, &end, MILLI / 10); /* 块五, 块5: jiao; 块50: fen */
    /* A bare number is an amount from 10 up, or with a fraction; 十分 (very) is not one. */
    bool bare_ok = (num->arabic && (whole >= 10 || !num->integer)) ||
                   (!num->arabic && whole >= 100 && at(s, j, "分") == 0);
    if ((unit || bare_ok) && s->out->amount_fen < 0 && milli > 0 &&
        milli / MILLI <= WX_CHAT_AMOUNT_MAX_YUAN) {
        s->out->amount_fen = (milli + 5) / 10;
    }
    return end - i;
}

/* Gives a number to the slot its neighbours name; returns the characters used. */
static size_t place_number(struct scan *s, const struct number *num)
{
    int64_t whole = num->milli / MILLI;
    /* 尾号1234 */
    if (num->arabic && num->digits == 4 && num->integer && before_any(s, num->from, LAST4_LEAD)) {
        if (s->out->card_last4 < 0) s->out->card_last4 = (int)whole;
        return num->to - num->from;
    }
    size_t used = place_periods(s, num, whole);
    if (used == 0) used = place_days(s, num, whole);
    if (used == 0) used = place_month(s, num, whole);
    if (used == 0) used = place_amount(s, num, whole);
    return used;
}

static void numbers(struct scan *s)
{
    for (size_t i = 0; i < s->n;) {
        struct number num;
        bool prev_digit = i > 0 && s->cp[i - 1] >= '0' && s->cp[i - 1] <= '9';
        if (!prev_digit && (arabic_at(s, i, &num) || chinese_at(s, i, &num))) {
            size_t used = place_number(s, &num);
            i += used > 0 ? used : 1;
        } else {
            i++;
        }
    }
}

/* ---- words ---------------------------------------------------------------------------------- */

struct alias {
    const char *word;
    const char *name;
    bool english; /* matched as a whole word */
};

static const struct alias MERCHANTS[] = {
    {"星巴克", "星巴克", false},     {"starbucks", "星巴克", true},   {"美团", "美团", false},
    {"meituan", "美团", true},       {"京东", "京东", false},         {"jd", "京东", true},
    {"淘宝", "淘宝", false},         {"taobao", "淘宝", true},        {"天猫", "天猫", false},
    {"tmall", "天猫", true},         {"拼多多", "拼多多", false},     {"pdd", "拼多多", true},
    {"滴滴", "滴滴", false},         {"didi", "滴滴", true},          {"携程", "携程", false},
    {"ctrip", "携程", true},         {"trip com", "携程", true},      {"饿了么", "饿了么", false},
    {"麦当劳", "麦当劳", false},     {"mcdonalds", "麦当劳", true},   {"肯德基", "肯德基", false},
    {"kfc", "肯德基", true},         {"盒马", "盒马", false},         {"沃尔玛", "沃尔玛", false},
    {"walmart", "沃尔玛", true},     {"家乐福", "家乐福", false},     {"山姆", "山姆", false},
    {"costco", "Costco", true},      {"开市客", "Costco", false},     {"苹果", "Apple", false},
    {"apple", "Apple", true},        {"亚马逊", "Amazon", false},     {"amazon", "Amazon", true},
    {"中石化", "中国石化", false},   {"中国石化", "中国石化", false}, {"中石油", "中国石油", false},
    {"中国石油", "中国石油", false}, {"优衣库", "优衣库", false},     {"uniqlo", "优衣库", true},
    {"宜家", "宜家", false},         {"ikea", "宜家", true},          {"瑞幸", "瑞幸咖啡", false},
    {"luckin", "瑞幸咖啡", true},    {"喜茶", "喜茶", false},         {"抖音", "抖音", false},
    {"uber", "Uber", true},          {"grab", "Grab", true},          {"万达", "万达", false},
    {"12306", "12306", false},       {"高德", "高德", false},         {"微信支付", "", false},
};

static const struct alias CATEGORIES[] = {
    {"餐饮", "dining", false},
    {"吃饭", "dining", false},
    {"外卖", "dining", false},
    {"餐厅", "dining", false},
    {"饭店", "dining", false},
    {"美食", "dining", false},
    {"吃喝", "dining", false},
    {"dining", "dining", true},
    {"food", "dining", true},
    {"restaurants", "dining", true},
    {"restaurant", "dining", true},
    {"eating out", "dining", true},
    {"超市", "groceries", false},
    {"买菜", "groceries", false},
    {"groceries", "groceries", true},
    {"grocery", "groceries", true},
    {"supermarket", "groceries", true},
    {"加油", "fuel", false},
    {"油费", "fuel", false},
    {"gas", "fuel", true},
    {"fuel", "fuel", true},
    {"petrol", "fuel", true},
    {"网购", "online", false},
    {"网上购物", "online", false},
    {"线上", "online", false},
    {"online shopping", "online", true},
    {"online", "online", true},
    {"旅游", "travel", false},
    {"旅行", "travel", false},
    {"机票", "travel", false},
    {"酒店", "travel", false},
    {"出差", "travel", false},
    {"travel", "travel", true},
    {"flights", "travel", true},
    {"flight", "travel", true},
    {"hotel", "travel", true},
    {"hotels", "travel", true},
    {"打车", "transport", false},
    {"交通", "transport", false},
    {"地铁", "transport", false},
    {"taxi", "transport", true},
    {"transport", "transport", true},
    {"娱乐", "entertainment", false},
    {"电影", "entertainment", false},
    {"游戏", "entertainment", false},
    {"entertainment", "entertainment", true},
    {"movies", "entertainment", true},
    {"医疗", "medical", false},
    {"医院", "medical", false},
    {"药店", "medical", false},
    {"medical", "medical", true},
    {"pharmacy", "medical", true},
    {"教育", "education", false},
    {"学费", "education", false},
    {"education", "education", true},
    {"购物", "shopping", false},
    {"衣服", "shopping", false},
    {"shopping", "shopping", true},
    {"clothes", "shopping", true},
};

/* The name of the alias that comes first in the message; at one place, the first listed. */
static const char *find_alias(const struct scan *s, const struct alias *list, size_t n)
{
    const char *first = NULL, *name = NULL;
    for (size_t k = 0; k < n; k++) {
        const char *p = find_word(s, list[k].word, list[k].english);
        if (p != NULL && (first == NULL || p < first)) first = p, name = list[k].name;
    }
    return name;
}

/* Whole messages that answer a question. */
static const struct {
    const char *word;
    enum wx_chat_answer answer;
} ANSWER_WORDS[] = {
    {"是", WX_ANSWER_YES},
    {"是的", WX_ANSWER_YES},
    {"对", WX_ANSWER_YES},
    {"对的", WX_ANSWER_YES},
    {"确认", WX_ANSWER_YES},
    {"确定", WX_ANSWER_YES},
    {"好", WX_ANSWER_YES},
    {"好的", WX_ANSWER_YES},
    {"好滴", WX_ANSWER_YES},
    {"可以", WX_ANSWER_YES},
    {"行", WX_ANSWER_YES},
    {"嗯", WX_ANSWER_YES},
    {"嗯嗯", WX_ANSWER_YES},
    {"没问题", WX_ANSWER_YES},
    {"同意", WX_ANSWER_YES},
    {"要", WX_ANSWER_YES},
    {"ok", WX_ANSWER_YES},
    {"okay", WX_ANSWER_YES},
    {"yes", WX_ANSWER_YES},
    {"y", WX_ANSWER_YES},
    {"yep", WX_ANSWER_YES},
    {"yeah", WX_ANSWER_YES},
    {"sure", WX_ANSWER_YES},
    {"confirm", WX_ANSWER_YES},
    {"不", WX_ANSWER_NO},
    {"不是", WX_ANSWER_NO},
    {"否", WX_ANSWER_NO},
    {"不要", WX_ANSWER_NO},
    {"不用", WX_ANSWER_NO},
    {"不对", WX_ANSWER_NO},
    {"不行", WX_ANSWER_NO},
    {"no", WX_ANSWER_NO},
    {"n", WX_ANSWER_NO},
    {"nope", WX_ANSWER_NO},
    {"nah", WX_ANSWER_NO},
    {"算了", WX_ANSWER_CANCEL},
    {"取消", WX_ANSWER_CANCEL},
    {"不用了", WX_ANSWER_CANCEL},
    {"不要了", WX_ANSWER_CANCEL},
    {"退出", WX_ANSWER_CANCEL},
    {"cancel", WX_ANSWER_CANCEL},
    {"stop", WX_ANSWER_CANCEL},
    {"never mind", WX_ANSWER_CANCEL},
    {"nevermind", WX_ANSWER_CANCEL},
    {"forget it", WX_ANSWER_CANCEL},
    {"quit", WX_ANSWER_CANCEL},
};

/* The whole message, less courtesy, against the yes/no/cancel words. */
static enum wx_chat_answer answer_of(const struct scan *s, const char *text)
{
    static const char *const LEAD[] = {"嗯 ", "嗯", "哦", "噢", "那", "oh ", "um ", NULL};
    static const char *const TAIL[] = {" 谢谢", "谢谢", " thanks", " thank you", " please",
                                       " pls",  "吧",   "啊",      "呀",         "了",
                                       "啦",    "哦",   "呢",      "哈",         NULL};
    (void)s;
    char w[64];
    size_t len = strlen(text);
    if (len >= sizeof w) return WX_ANSWER_NONE;
    memcpy(w, text, len + 1);
    char *p = w;
    for (size_t k = 0; LEAD[k] != NULL; k++) {
        size_t ll = strlen(LEAD[k]);
        if (strlen(p) > ll && strncmp(p, LEAD[k], ll) == 0) p += ll;
    }
    /* Courtesy comes off one piece at a time, the words tried after each: 算了 is a word. */
    for (int round = 0; round < 4; round++) {
        for (size_t k = 0; k < sizeof ANSWER_WORDS / sizeof ANSWER_WORDS[0]; k++) {
            if (strcmp(p, ANSWER_WORDS[k].word) == 0) return ANSWER_WORDS[k].answer;
        }
        size_t plen = strlen(p);
        for (size_t k = 0; TAIL[k] != NULL; k++) {
            size_t tl = strlen(TAIL[k]);
            if (plen > tl && memcmp(p + plen - tl, TAIL[k], tl) == 0) {
                p[plen - tl] = '\0';
                break;
            }
        }
    }
    return WX_ANSWER_NONE;
}

/* "2", "选2", "第二个", "option 2": a numbered choice, 1..9. */
static int choice_of(const char *text)
{
    static const char *const LEAD[] = {"选择", "选", "第", "option ", "number ", "no ", NULL};
    static const char *const TAIL[] = {"个", "项", "条", "号", NULL};
    const char *p = text;
    for (size_t k = 0; LEAD[k] != NULL; k++) {
        size_t ll = strlen(LEAD[k]);
        if (strncmp(p, LEAD[k], ll) == 0) {
            p += ll;
            break;
        }
    }
    int v = -1;
    const char *q = p;
    if (*q >= '1' && *q <= '9') {
        v = *q++ - '0';
    } else if (*q != '\0') {
        uint32_t c = decode(&q);
        v = cn_digit(c);
    }
    if (v < 1 || v > 9) return 0;
    for (size_t k = 0; TAIL[k] != NULL; k++) {
        if (strcmp(q, TAIL[k]) == 0) return v;
    }
    return *q == '\0' ? v : 0;
}

void nlu_slots(const struct nlu_text *t, int32_t today, struct wx_chat_slots *out)
{
    static _Thread_local struct scan s;
    memset(out, 0, sizeof *out);
    out->amount_fen = -1;
    out->date_from = out->date_to = INT32_MIN;
    out->card_last4 = -1;
    out->lang_named = -1;
    s.n = 0;
    s.out = out;
    s.today = today;
    s.text = t->s;
    s.len = t->len;
    wx_civil_from_days(today, &s.year, &s.month, &s.day);
    for (const char *p = t->s; *p != '\0' && s.n < NLU_TEXT_MAX;) {
        s.off[s.n] = (uint16_t)(p - t->s);
        s.cp[s.n++] = decode(&p);
    }
    s.off[s.n] = (uint16_t)s.len;

    out->lang = t->han > 0 || t->latin == 0 ? WX_CHAT_ZH : WX_CHAT_EN;
    out->answer = answer_of(&s, t->s);
    out->choice = choice_of(t->s);
    if (out->choice > 0) return; /* "2" is a choice, not an amount */
    numbers(&s);
    date_words(&s);
    english_months(&s);
    if (has(&s, "临时") || has(&s, "临额") || has(&s, "短期") || has_word(&s, "temporary") ||
        has_word(&s, "temp") || has_word(&s, "temporarily")) {
        out->limit_kind = WX_LIMIT_TEMPORARY;
    } else if (has(&s, "永久") || has(&s, "固定额度") || has(&s, "长期") ||
               has_word(&s, "permanent") || has_word(&s, "permanently")) {
        out->limit_kind = WX_LIMIT_PERMANENT;
    }
    const char *m = find_alias(&s, MERCHANTS, sizeof MERCHANTS / sizeof MERCHANTS[0]);
    if (m != NULL) snprintf(out->merchant, sizeof out->merchant, "%s", m);
    const char *c = find_alias(&s, CATEGORIES, sizeof CATEGORIES / sizeof CATEGORIES[0]);
    if (c != NULL) snprintf(out->category, sizeof out->category, "%s", c);
    if (has(&s, "英文") || has(&s, "英语") || has_word(&s, "english")) {
        out->lang_named = WX_CHAT_EN;
    } else if (has(&s, "中文") || has(&s, "汉语") || has(&s, "普通话") || has_word(&s, "chinese")) {
        out->lang_named = WX_CHAT_ZH;
    }
}

bool nlu_merchant_matches(const char *canonical, const char *name)
{
    if (canonical[0] == '\0') return true;
    if (strcasestr(name, canonical) != NULL) return true;
    for (size_t k = 0; k < sizeof MERCHANTS / sizeof MERCHANTS[0]; k++) {
        if (strcmp(MERCHANTS[k].name, canonical) == 0 && strcasestr(name, MERCHANTS[k].word)) {
            return true;
        }
    }
    return false;
}
