/*
 * codec_int.h - the codec's private view: field specs, dialect descriptions and the value
 * checks shared by codec_spec.c, codec.c and codec_msg.c. Nothing outside src/iso8583/codec*
 * includes this; the public interface is iso8583.h.
 *
 * A field spec says what a field holds (type and length rule) in ISO 8583:1987 terms; a
 * dialect row says how each type is written on the wire. Together they drive packing and
 * unpacking with no per-field code.
 */
#ifndef WX_ISO8583_CODEC_INT_H
#define WX_ISO8583_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iso8583/iso8583.h"

/* What a field's value may contain (the decoded, dialect-free form). */
enum iso_type {
    ISO_N,   /* digits */
    ISO_AN,  /* letters, digits and space (space: RRNs and codes are space-padded in practice) */
    ISO_ANS, /* printable ASCII 0x20..0x7e */
    ISO_Z,   /* track 2: digits and the '=' separator */
    ISO_B,   /* raw bytes; lengths count bytes */
    ISO_XN,  /* amount with sign: 'C' or 'D' then digits (x+n) */
};

/* How a field's length is known. */
enum iso_var {
    ISO_FIXED, /* always exactly max */
    ISO_LL,    /* 2-digit length prefix, 0..max */
    ISO_LLL,   /* 3-digit length prefix, 0..max */
};

struct iso_field_spec {
    uint8_t type; /* enum iso_type */
    uint8_t var;  /* enum iso_var */
    uint16_t max; /* characters, or bytes for ISO_B */
};

/* How one dialect writes MTI, bitmaps, prefixes and values. */
struct iso_dialect {
    const char *name;                    /* as in iso8583.dialect */
    const struct iso_field_spec *fields; /* [0..128]; [0] and [1] unused */
    bool bcd;                            /* MTI, n/z values, xn digits and prefixes in BCD */
    bool bin_bitmap;                     /* bitmaps as 8 raw bytes (else 16 hex characters) */
    bool always_secondary;               /* write the secondary bitmap even when empty */
};

/* The ISO 8583:1987 field table (jPOS ISO87APackager definitions, 55 as b...999). */
extern const struct iso_field_spec wx_iso_spec87[WX_ISO_FIELDS + 1];

/* Indexed by enum wx_iso_dialect. */
extern const struct iso_dialect wx_iso_dialects[3];

/* True when len bytes of v are a valid value of spec (length rule and character set). */
bool wx_iso_value_ok(const struct iso_field_spec *spec, const uint8_t *v, size_t len);

/* Short printable form of a spec, e.g. "n..19", "ans40", "b...999". */
void wx_iso_spec_label(const struct iso_field_spec *spec, char *out, size_t cap);

/* Bit i (1..128) of the wire-order bitmap in m->present. */
static inline bool iso_bit(const uint8_t *present, int i)
{
    return (present[(i - 1) >> 3] >> (7 - ((i - 1) & 7))) & 1;
}

static inline void iso_bit_set(uint8_t *present, int i)
{
    present[(i - 1) >> 3] |= (uint8_t)(0x80u >> ((i - 1) & 7));
}

static inline void iso_bit_clear(uint8_t *present, int i)
{
    present[(i - 1) >> 3] &= (uint8_t) ~(0x80u >> ((i - 1) & 7));
}

#endif
