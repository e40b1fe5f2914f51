/*
 * pan.c - Luhn arithmetic, PAN issuing and parsing, masking, expiry dates.
 */
#include "util/pan.h"

#include "util/crypto.h"

#include <assert.h>
#include <string.h>

const char *wx_pan_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case WX_PAN_ECHAR:
        return "card number may contain only digits, spaces and dashes";
    case WX_PAN_ESEPARATOR:
        return "misplaced space or dash in card number";
    case WX_PAN_ELENGTH:
        return "card number must have 13 to 19 digits";
    case WX_PAN_ELUHN:
        return "card number check digit is wrong";
    case WX_PAN_EBIN:
        return "BIN must be 6 to 8 digits";
    case WX_PAN_ESPACE:
        return "buffer too small";
    case WX_PAN_EEXPIRY:
        return "expiry must be YYMM with month 01 to 12";
    default:
        return "unknown card number error";
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Luhn sum of the digits, where `double_last` says whether the rightmost one is doubled. */
static int luhn_sum(const char *digits, size_t len, bool double_last)
{
    int sum = 0;
    bool dbl = double_last;
    for (size_t i = len; i-- > 0;) {
        if (!is_digit(digits[i])) return WX_PAN_ECHAR;
        int d = digits[i] - '0';
        if (dbl) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum;
}

int wx_luhn_digit(const char *digits, size_t len)
{
    assert(digits != NULL || len == 0);
    int sum = luhn_sum(digits, len, true);
    if (sum < 0) return sum;
    return (10 - sum % 10) % 10;
}

bool wx_luhn_valid(const char *pan, size_t len)
{
    assert(pan != NULL || len == 0);
    if (len < 2) return false;
    int sum = luhn_sum(pan, len, false);
    return sum >= 0 && sum % 10 == 0;
}

/* A uniformly random decimal digit: bytes 250..255 are redrawn so 0..9 are equally likely. */
static char random_digit(void)
{
    for (;;) {
        uint8_t b;
        wx_random_bytes(&b, 1);
        if (b < 250) return (char)('0' + b % 10);
    }
}

int wx_pan_generate(const char *bin, int length, char *out, size_t cap)
{
    assert(bin != NULL && out != NULL);
    size_t binlen = strnlen(bin, WX_BIN_MAX + 1);
    if (binlen < WX_BIN_MIN || binlen > WX_BIN_MAX) return WX_PAN_EBIN;
    for (size_t i = 0; i < binlen; i++) {
        if (!is_digit(bin[i])) return WX_PAN_EBIN;
    }
    if (length < WX_PAN_MIN || length > WX_PAN_MAX) return WX_PAN_ELENGTH;
    if (cap < (size_t)length + 1) return WX_PAN_ESPACE;

    memcpy(out, bin, binlen);
    for (size_t i = binlen; i < (size_t)length - 1; i++) {
        out[i] = random_digit();
    }
    int check = wx_luhn_digit(out, (size_t)length - 1);
    assert(check >= 0 && check <= 9);
    out[length - 1] = (char)('0' + check);
    out[length] = '\0';
    assert(wx_luhn_valid(out, (size_t)length));
    return 0;
}

int wx_pan_parse(const char *text, char out[WX_PAN_MAX + 1])
{
    assert(text != NULL && out != NULL);
    size_t n = 0;
    bool prev_digit = false;
    int rc = 0;
    if (strnlen(text, WX_PAN_TEXT_MAX + 1) > WX_PAN_TEXT_MAX) {
        rc = WX_PAN_ELENGTH;
        goto out;
    }
    for (const char *p = text; *p != '\0'; p++) {
        if (is_digit(*p)) {
            if (n == WX_PAN_MAX) {
                rc = WX_PAN_ELENGTH;
                goto out;
            }
            out[n++] = *p;
            prev_digit = true;
        } else if (*p == ' ' || *p == '-') {
            if (!prev_digit || !is_digit(p[1])) {
                rc = WX_PAN_ESEPARATOR;
                goto out;
            }
            prev_digit = false;
        } else {
            rc = WX_PAN_ECHAR;
            goto out;
        }
    }
    out[n] = '\0';
    if (n < WX_PAN_MIN) {
        rc = WX_PAN_ELENGTH;
    } else if (!wx_luhn_valid(out, n)) {
        rc = WX_PAN_ELUHN;
    }
out:
    if (rc != 0) {
        wx_wipe(out, WX_PAN_MAX + 1); /* no partial card number is left behind */
    }
    return rc;
}

void wx_pan_mask(const char *pan, char *out, size_t cap)
{
    assert(pan != NULL && out != NULL);
    if (cap == 0) return;
    size_t len = strnlen(pan, WX_PAN_MAX + 1);
    size_t i = 0;
    for (; i < len && i + 1 < cap; i++) {
        bool shown = len >= WX_PAN_MIN && (i < 6 || i >= len - 4);
        out[i] = shown ? pan[i] : '*';
    }
    out[i] = '\0';
}

int wx_expiry_parse(const char *yymm, uint16_t *out)
{
    assert(yymm != NULL && out != NULL);
    for (int i = 0; i < 4; i++) {
        if (!is_digit(yymm[i])) return WX_PAN_EEXPIRY;
    }
    if (yymm[4] != '\0') return WX_PAN_EEXPIRY;
    int yy = (yymm[0] - '0') * 10 + (yymm[1] - '0');
    int mm = (yymm[2] - '0') * 10 + (yymm[3] - '0');
    if (mm < 1 || mm > 12) return WX_PAN_EEXPIRY;
    *out = (uint16_t)(yy * 100 + mm);
    return 0;
}
