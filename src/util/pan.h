/*
 * pan.h - card numbers (PANs): Luhn check digits, issuing, parsing what people type,
 * masking for display, and card expiry dates.
 *
 * A full PAN is never logged or shown (DESIGN.md): wx_pan_mask is the only display form.
 */
#ifndef WX_PAN_H
#define WX_PAN_H

#include "util/limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes of this module (0 is success). */
enum {
    WX_PAN_ECHAR = -1,      /* a character other than a digit, space or dash */
    WX_PAN_ESEPARATOR = -2, /* a space or dash at the start, the end, or next to another */
    WX_PAN_ELENGTH = -3,    /* not WX_PAN_MIN..WX_PAN_MAX digits (or text over WX_PAN_TEXT_MAX) */
    WX_PAN_ELUHN = -4,      /* the check digit is wrong */
    WX_PAN_EBIN = -5,       /* wx_pan_generate: BIN is not WX_BIN_MIN..WX_BIN_MAX digits */
    WX_PAN_ESPACE = -6,     /* output buffer too small */
    WX_PAN_EEXPIRY = -7,    /* expiry is not 4 digits YYMM with month 01..12 */
};

const char *wx_pan_strerror(int rc);

/*
 * The Luhn check digit (0..9) to append to the len digits in `digits`, or WX_PAN_ECHAR if a
 * character is not a digit.
 */
int wx_luhn_digit(const char *digits, size_t len);

/* True if the len characters are all digits, len >= 2, and the last one is the Luhn digit. */
bool wx_luhn_valid(const char *pan, size_t len);

/*
 * Issues a random PAN: `bin` (6-8 digits), then uniformly random digits from wx_random_bytes,
 * then the Luhn digit; `length` is WX_PAN_MIN..WX_PAN_MAX. out receives length digits and a
 * NUL (cap >= length + 1). Returns 0, WX_PAN_EBIN, WX_PAN_ELENGTH or WX_PAN_ESPACE.
 */
int wx_pan_generate(const char *bin, int length, char *out, size_t cap);

/*
 * Parses a PAN as typed: 13-19 digits, optionally in groups separated by single spaces or
 * dashes ("6225 8812 3456 7890"). No leading or trailing blanks. On success out holds the bare
 * digits and a NUL and 0 is returned; otherwise a WX_PAN_E* code and out is "".
 */
int wx_pan_parse(const char *text, char out[WX_PAN_MAX + 1]);

/*
 * The display form: first 6 digits, one '*' per hidden digit, last 4 (622588******1234).
 * A string shorter than WX_PAN_MIN is all stars. out is always NUL-terminated; a cap below
 * strlen(pan) + 1 cuts the result short (never revealing more).
 */
void wx_pan_mask(const char *pan, char *out, size_t cap);

/* Parses exactly 4 digits YYMM, month 01..12, into *out = YY * 100 + MM. */
int wx_expiry_parse(const char *yymm, uint16_t *out);

#endif
