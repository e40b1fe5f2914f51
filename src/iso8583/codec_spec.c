/*
 * codec_spec.c - the ISO 8583:1987 field table and the three dialects that write it.
 *
 * The field definitions follow jPOS ISO87APackager (which ISO87APackagerBBitmap shares), with
 * one deliberate change: field 55 is b...999 (EMV data as raw BER-TLV) rather than jPOS's
 * ans...999. Fields 49-51 are an3 as in jPOS (IF_CHAR), so bcd87 writes them in ASCII like
 * ISO87BPackager does. jPOS ISO87BPackager departs from the standard in two fields no issuer
 * uses (93 an6, 96 b16); bcd87 keeps the standard's 93 an5 and 96 b8, so all three dialects
 * share one table and a decoded message means the same in each. A dialect row says only how
 * types are written; a future dialect with different field definitions gets its own table.
 */
#include <stdio.h>
#include <string.h>

#include "iso8583/codec_int.h"

#define F(t, n)                                                                                    \
    {                                                                                              \
        ISO_##t, ISO_FIXED, n                                                                      \
    }
#define LL(t, n)                                                                                   \
    {                                                                                              \
        ISO_##t, ISO_LL, n                                                                         \
    }
#define LLL(t, n)                                                                                  \
    {                                                                                              \
        ISO_##t, ISO_LLL, n                                                                        \
    }
#define PRIV999   LLL(ANS, 999)
#define PRIV999x4 PRIV999, PRIV999, PRIV999, PRIV999
#define N10x4     F(N, 10), F(N, 10), F(N, 10), F(N, 10)

const struct iso_field_spec wx_iso_spec87[WX_ISO_FIELDS + 1] = {
    /*   0 */ F(N, 4), /* the MTI; not a field, listed for labels */
    /*   1 */ F(B, 8), /* the secondary bitmap; written by the codec, never set */
    /*   2 */ LL(N, 19),
    F(N, 6),
    F(N, 12),
    F(N, 12),
    F(N, 12),
    F(N, 10),
    F(N, 8),
    F(N, 8),
    /*  10 */ F(N, 8),
    F(N, 6),
    F(N, 6),
    F(N, 4),
    F(N, 4),
    F(N, 4),
    F(N, 4),
    F(N, 4),
    F(N, 4),
    /*  19 */ F(N, 3),
    F(N, 3),
    F(N, 3),
    F(N, 3),
    F(N, 3),
    F(N, 3),
    F(N, 2),
    F(N, 2),
    F(N, 1),
    /*  28 */ F(XN, 9),
    F(XN, 9),
    F(XN, 9),
    F(XN, 9),
    /*  32 */ LL(N, 11),
    LL(N, 11),
    LL(ANS, 28),
    LL(Z, 37),
    LLL(ANS, 104),
    /*  37 */ F(AN, 12),
    F(AN, 6),
    F(AN, 2),
    F(AN, 3),
    F(ANS, 8),
    F(ANS, 15),
    F(ANS, 40),
    /*  44 */ LL(ANS, 25),
    LL(ANS, 76),
    LLL(ANS, 999),
    LLL(ANS, 999),
    LLL(ANS, 999),
    /*  49 */ F(AN, 3),
    F(AN, 3),
    F(AN, 3),
    F(B, 8),
    F(N, 16),
    LLL(AN, 120),
    LLL(B, 999),
    /*  56 */ PRIV999x4,
    PRIV999x4,
    /*  64 */ F(B, 8),
    F(B, 1),
    F(N, 1),
    F(N, 2),
    F(N, 3),
    F(N, 3),
    F(N, 3),
    F(N, 4),
    F(N, 4),
    /*  73 */ F(N, 6),
    N10x4,
    N10x4,
    /*  82 */ F(N, 12),
    F(N, 12),
    F(N, 12),
    F(N, 12),
    F(N, 16),
    F(N, 16),
    F(N, 16),
    F(N, 16),
    /*  90 */ F(N, 42),
    F(AN, 1),
    F(AN, 2),
    F(AN, 5),
    F(AN, 7),
    F(AN, 42),
    F(B, 8),
    F(XN, 17),
    /*  98 */ F(ANS, 25),
    LL(N, 11),
    LL(N, 11),
    LL(ANS, 17),
    LL(ANS, 28),
    LL(ANS, 28),
    /* 104 */ LLL(ANS, 100),
    PRIV999x4,
    PRIV999x4,
    PRIV999x4,
    PRIV999x4,
    PRIV999x4,
    /* 125 */ PRIV999,
    PRIV999,
    PRIV999,
    F(B, 8),
};

const struct iso_dialect wx_iso_dialects[3] = {
    [WX_ISO_ASCII87] = {"ascii87", wx_iso_spec87, false, false, false},
    [WX_ISO_ASCII87B] = {"ascii87b", wx_iso_spec87, false, true, true},
    [WX_ISO_BCD87] = {"bcd87", wx_iso_spec87, true, true, false},
};

int wx_iso_dialect_parse(const char *name, enum wx_iso_dialect *out)
{
    for (int d = 0; d < 3; d++) {
        if (strcmp(name, wx_iso_dialects[d].name) == 0) {
            *out = (enum wx_iso_dialect)d;
            return 0;
        }
    }
    return -1;
}

const char *wx_iso_dialect_name(enum wx_iso_dialect d)
{
    if ((unsigned)d >= 3) return "?";
    return wx_iso_dialects[d].name;
}

/*
 * Character classes by byte: bit 1 << ISO_N (digit), 1 << ISO_AN (letter, digit, space),
 * 1 << ISO_ANS (printable ASCII), 1 << ISO_Z (digit or '='). A table, because checking every
 * character of every field is most of the codec's work.
 */
static const uint8_t char_class[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0x10 */
    6,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, 4, 4, 4,  4, 4, /* 0x20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 4, 4, 4, 12, 4, 4, /* 0x30 */
    4,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, 6, 6, 6,  6, 6, /* 0x40 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, 4, 4, 4,  4, 4, /* 0x50 */
    4,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, 6, 6, 6,  6, 6, /* 0x60 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, 4, 4, 4,  4, 0, /* 0x70 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0x80 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0x90 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0xa0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0xb0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0xc0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0xd0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0xe0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0,  0, 0, /* 0xf0 */
};

bool wx_iso_value_ok(const struct iso_field_spec *spec, const uint8_t *v, size_t len)
{
    if (spec->var == ISO_FIXED ? len != spec->max : len > spec->max) return false;
    if (spec->type == ISO_B) return true;
    size_t i = 0;
    uint8_t type = spec->type;
    if (type == ISO_XN) {
        if (len == 0 || (v[0] != 'C' && v[0] != 'D')) return false;
        i = 1;
        type = ISO_N;
    }
    /* Branch-free: AND the classes of all characters, test once (values are short). */
    uint8_t all = 0xff, all2 = 0xff;
    for (; i + 2 <= len; i += 2) {
        all &= char_class[v[i]];
        all2 &= char_class[v[i + 1]];
    }
    if (i < len) all &= char_class[v[i]];
    return (all & all2 & (1u << type)) != 0;
}

void wx_iso_spec_label(const struct iso_field_spec *spec, char *out, size_t cap)
{
    static const char *const types[] = {"n", "an", "ans", "z", "b", "x+n"};
    static const char *const dots[] = {"", "..", "..."};
    snprintf(out, cap, "%s%s%u", types[spec->type], dots[spec->var], (unsigned)spec->max);
}
