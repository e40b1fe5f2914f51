/*
 * money.c - strict amount parsing, display formatting, and the ISO 4217 table.
 */
#include "util/money.h"

#include "util/limits.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The integer part of WX_AMOUNT_MAX in yuan (10,000,000,000) has 11 digits. */
#define AMOUNT_INT_DIGITS_MAX 11

const char *wx_amount_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case WX_AMOUNT_ESYNTAX:
        return "amount must look like 1234, 1234.5 or 1,234.56";
    case WX_AMOUNT_EPRECISION:
        return "amount has more than two decimals";
    case WX_AMOUNT_EGROUP:
        return "thousands separators must separate groups of three digits";
    case WX_AMOUNT_ERANGE:
        return "amount is too large";
    case WX_AMOUNT_ETOOLONG:
        return "amount text is too long";
    default:
        return "unknown amount error";
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Parses the integer part text[0..len) (digits and commas) into *yuan. Commas, if any, must
 * split it into a first group of 1-3 digits and then groups of exactly 3.
 */
static int parse_int_part(const char *text, size_t len, int64_t *yuan)
{
    if (len == 0 || !is_digit(text[0])) return WX_AMOUNT_ESYNTAX;
    bool grouped = memchr(text, ',', len) != NULL;
    size_t group = 0, ndigits = 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ',') {
            if (group == 0 || group > 3 || (ndigits > group && group != 3)) {
                return WX_AMOUNT_EGROUP;
            }
            group = 0;
            continue;
        }
        if (++ndigits > AMOUNT_INT_DIGITS_MAX) return WX_AMOUNT_ERANGE;
        group++;
        v = v * 10 + (text[i] - '0');
    }
    if (grouped && group != 3) return WX_AMOUNT_EGROUP;
    if (ndigits > 1 && text[0] == '0') return WX_AMOUNT_ESYNTAX; /* no leading zeros */
    *yuan = v;
    return 0;
}

/* Parses the fraction digits after '.' (1 or 2 of them) into *cents. */
static int parse_fraction(const char *text, size_t len, int64_t *cents)
{
    if (len == 0) return WX_AMOUNT_ESYNTAX;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(text[i])) return WX_AMOUNT_ESYNTAX;
    }
    if (len > 2) return WX_AMOUNT_EPRECISION;
    *cents = (text[0] - '0') * 10 + (len == 2 ? text[1] - '0' : 0);
    return 0;
}

int wx_amount_parse(const char *text, int64_t *fen)
{
    assert(text != NULL && fen != NULL);
    size_t len = strnlen(text, WX_AMOUNT_TEXT_MAX + 1);
    if (len > WX_AMOUNT_TEXT_MAX) return WX_AMOUNT_ETOOLONG;

    size_t int_len = 0;
    while (int_len < len && (is_digit(text[int_len]) || text[int_len] == ',')) {
        int_len++;
    }
    if (int_len < len && text[int_len] != '.') return WX_AMOUNT_ESYNTAX;

    int64_t yuan = 0, cents = 0;
    int rc = parse_int_part(text, int_len, &yuan);
    if (rc != 0) return rc;
    if (int_len < len) {
        rc = parse_fraction(text + int_len + 1, len - int_len - 1, &cents);
        if (rc != 0) return rc;
    }
    int64_t total = yuan * 100 + cents; /* yuan < 10^11, so no overflow */
    if (total > WX_AMOUNT_MAX) return WX_AMOUNT_ERANGE;
    *fen = total;
    return 0;
}

void wx_amount_format(int64_t fen, char *out, size_t cap)
{
    assert(out != NULL);
    if (cap == 0) return;
    uint64_t mag = fen < 0 ? (uint64_t)(-(fen + 1)) + 1 : (uint64_t)fen;
    uint64_t yuan = mag / 100;
    unsigned cents = (unsigned)(mag % 100);

    /* Digits of yuan with commas, built from the right. */
    char rev[WX_AMOUNT_FMT_MAX];
    size_t n = 0;
    int in_group = 0;
    do {
        if (in_group == 3) {
            rev[n++] = ',';
            in_group = 0;
        }
        rev[n++] = (char)('0' + yuan % 10);
        yuan /= 10;
        in_group++;
    } while (yuan > 0);
    assert(n < sizeof rev);

    char digits[WX_AMOUNT_FMT_MAX];
    for (size_t i = 0; i < n; i++) {
        digits[i] = rev[n - 1 - i];
    }
    digits[n] = '\0';
    snprintf(out, cap, "%s%s.%02u", fen < 0 ? "-" : "", digits, cents);
}

static const struct wx_currency currencies[] = {
    {156, "CNY", 2}, {840, "USD", 2}, {978, "EUR", 2}, {344, "HKD", 2}, {446, "MOP", 2},
    {901, "TWD", 2}, {392, "JPY", 0}, {410, "KRW", 0}, {826, "GBP", 2}, {702, "SGD", 2},
    {36, "AUD", 2},  {124, "CAD", 2}, {756, "CHF", 2}, {764, "THB", 2}, {554, "NZD", 2},
};

#define CURRENCY_COUNT (sizeof currencies / sizeof currencies[0])

const struct wx_currency *wx_currency_by_numeric(uint16_t numeric)
{
    for (size_t i = 0; i < CURRENCY_COUNT; i++) {
        if (currencies[i].numeric == numeric) return &currencies[i];
    }
    return NULL;
}

const struct wx_currency *wx_currency_by_alpha(const char *alpha)
{
    assert(alpha != NULL);
    if (strnlen(alpha, 4) != 3) return NULL;
    for (size_t i = 0; i < CURRENCY_COUNT; i++) {
        if (strncasecmp(currencies[i].alpha, alpha, 3) == 0) return &currencies[i];
    }
    return NULL;
}
