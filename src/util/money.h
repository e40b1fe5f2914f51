/*
 * money.h - amounts as int64 minor units (fen), their text forms, and ISO 4217 currencies.
 *
 * Money is never floating point (DESIGN.md). Text amounts typed by staff and cardholders are
 * parsed strictly: what is accepted is exactly what a person means, and everything else is an
 * error with a reason.
 */
#ifndef WX_MONEY_H
#define WX_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Error codes of wx_amount_parse (0 is success). */
enum {
    WX_AMOUNT_ESYNTAX = -1,    /* not digits[.d[d]]: empty, sign, letters, "1.", ".5", "01" */
    WX_AMOUNT_EPRECISION = -2, /* more than two decimals ("0.001") */
    WX_AMOUNT_EGROUP = -3,     /* thousands commas not in groups of three ("12,34") */
    WX_AMOUNT_ERANGE = -4,     /* above WX_AMOUNT_MAX fen */
    WX_AMOUNT_ETOOLONG = -5,   /* text longer than WX_AMOUNT_TEXT_MAX */
};

const char *wx_amount_strerror(int rc);

/*
 * Parses "1234", "1234.5", "1234.56", "1,234.56" (commas only between correct groups of
 * three), in yuan, into fen. No sign, no blanks, no leading zeros ("0.5" is fine), range
 * 0..WX_AMOUNT_MAX fen. Returns 0 and sets *fen, or a WX_AMOUNT_E* code (*fen untouched).
 */
int wx_amount_parse(const char *text, int64_t *fen);

/* Longest output of wx_amount_format, NUL included ("-92,233,720,368,547,758.08"). */
#define WX_AMOUNT_FMT_MAX 32

/*
 * Formats fen as yuan with thousands commas and two decimals: 123456 -> "1,234.56",
 * -5 -> "-0.05". Any int64 works. out is always NUL-terminated; cap < WX_AMOUNT_FMT_MAX may
 * cut the text (snprintf-style).
 */
void wx_amount_format(int64_t fen, char *out, size_t cap);

struct wx_currency {
    uint16_t numeric; /* ISO 4217 numeric code, e.g. 156 */
    char alpha[4];    /* ISO 4217 letters and NUL, e.g. "CNY" */
    uint8_t minor;    /* digits after the decimal point: 2 for CNY, 0 for JPY */
};

/* The table entry, or NULL for a code wxbank does not know. */
const struct wx_currency *wx_currency_by_numeric(uint16_t numeric);
/* Case-insensitive look-up of three letters ("cny" finds CNY); NULL if unknown. */
const struct wx_currency *wx_currency_by_alpha(const char *alpha);

#endif
