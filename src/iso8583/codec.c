/*
 * codec.c - packs and unpacks ISO 8583:1987 messages in the three dialects, driven by the
 * field table and the dialect rows of codec_spec.c (no per-field code).
 *
 * Unpacking runs a bounded cursor over the input: every read is checked against the bytes
 * left, every field against its spec (character set, length, prefix), and leftover bytes
 * are an error, so a message either decodes completely or not at all. The decoded form is
 * dialect-free text (raw bytes for b fields) in m->data, which is what lets the host answer
 * in whatever dialect the switch speaks.
 *
 * BCD follows jPOS ISO87BPackager: fixed numerics are left-padded with a zero nibble when
 * their length is odd, variable ones (LLNUM) right-padded; track 2 writes '=' as nibble D;
 * prefixes are BCD (LL one byte, LLL two); a pad nibble of F is accepted on input, 0 written.
 */
#include <assert.h>
#include <string.h>

#include "iso8583/codec_int.h"

/* A bounded read cursor over the input. */
struct rd {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* one past the last byte */
};

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Records why unpacking failed; always returns -1. */
static int fail(struct wx_iso_error *err, int field, const char *why)
{
    err->field = field;
    err->why = why;
    return -1;
}

static const char HEX[16] = "0123456789ABCDEF";

static int hex_val(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes 2*n hex characters into n bytes; false on a non-hex character. */
static bool hex_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(in[2 * i]), lo = hex_val(in[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void hex_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = (uint8_t)HEX[in[i] >> 4];
        out[2 * i + 1] = (uint8_t)HEX[in[i] & 15];
    }
}

/* Nibble value to character: digits, and D for the track-2 separator when z is allowed. */
static int nib_char(unsigned nib, bool z)
{
    if (nib <= 9) return '0' + (int)nib;
    if (z && nib == 0xD) return '=';
    return -1;
}

/*
 * Decodes n digits from (n+1)/2 BCD bytes. left: an odd n has its pad nibble first (else
 * last). The pad nibble must be 0 or F. Returns false on a bad nibble.
 */
static bool bcd_decode(const uint8_t *in, size_t n, bool left, bool z, uint8_t *out)
{
    size_t skip = (left && (n & 1)) ? 1 : 0; /* nibble index of the first digit */
    size_t nibs = (n + 1) / 2 * 2;
    if (n & 1) {
        unsigned pad = left ? in[0] >> 4 : in[nibs / 2 - 1] & 15;
        if (pad != 0 && pad != 15) return false;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = i + skip;
        unsigned nib = (k & 1) ? in[k / 2] & 15 : in[k / 2] >> 4;
        int c = nib_char(nib, z);
        if (c < 0) return false;
        out[i] = (uint8_t)c;
    }
    return true;
}

/* Encodes n digits (or '=') of text into (n+1)/2 BCD bytes, padding with a zero nibble. */
static void bcd_encode(const uint8_t *text, size_t n, bool left, uint8_t *out)
{
    size_t skip = (left && (n & 1)) ? 1 : 0;
    memset(out, 0, (n + 1) / 2);
    for (size_t i = 0; i < n; i++) {
        size_t k = i + skip;
        unsigned nib = text[i] == '=' ? 0xD : (unsigned)(text[i] - '0') & 15;
        out[k / 2] |= (uint8_t)((k & 1) ? nib : nib << 4);
    }
}

/* Bytes a value of len units takes on the wire (prefix excluded). */
static size_t wire_len(const struct iso_dialect *d, const struct iso_field_spec *s, size_t len)
{
    switch (s->type) {
    case ISO_B:
        return d->bcd ? len : 2 * len;
    case ISO_N:
    case ISO_Z:
        return d->bcd ? (len + 1) / 2 : len;
    case ISO_XN:
        return d->bcd ? 1 + len / 2 : len; /* sign byte + (len-1) digits, len-1 even or padded */
    default:
        return len;
    }
}

/* Reads a length prefix of 2 or 3 digits; -1 when truncated, -2 when not numeric. */
static int read_prefix(const struct iso_dialect *d, struct rd *r, int digits)
{
    size_t bytes = d->bcd ? (size_t)(digits + 1) / 2 : (size_t)digits;
    if ((size_t)(r->end - r->p) < bytes) return -1;
    int v = 0;
    for (size_t i = 0; i < bytes; i++) {
        unsigned b = r->p[i];
        if (d->bcd) {
            if ((b >> 4) > 9 || (b & 15) > 9) return -2;
            v = v * 100 + (int)(b >> 4) * 10 + (int)(b & 15);
        } else {
            if (b < '0' || b > '9') return -2;
            v = v * 10 + (int)(b - '0');
        }
    }
    r->p += bytes;
    return v;
}

/* Decodes one value of len units at r->p (wire bytes already checked) into out. */
static const char *decode_value(const struct iso_dialect *d, const struct iso_field_spec *s,
                                const uint8_t *in, size_t len, uint8_t *out)
{
    bool left = s->var == ISO_FIXED;
    switch (s->type) {
    case ISO_B:
        if (d->bcd) {
            memcpy(out, in, len);
            return NULL;
        }
        return hex_decode(in, len, out) ? NULL : "binary field not hex";
    case ISO_N:
    case ISO_Z:
        if (d->bcd) {
            return bcd_decode(in, len, left, s->type == ISO_Z, out) ? NULL : "bad BCD digit";
        }
        break;
    case ISO_XN:
        if (d->bcd && len > 0) {
            out[0] = in[0];
            if (!bcd_decode(in + 1, len - 1, left, false, out + 1)) return "bad BCD digit";
            return wx_iso_value_ok(s, out, len) ? NULL : "bad amount sign";
        }
        break;
    default:
        break;
    }
    if (!wx_iso_value_ok(s, in, len)) {
        return s->type == ISO_N ? "not numeric" : "character not allowed in field";
    }
    memcpy(out, in, len);
    return NULL;
}

/* Unpacks field n at the cursor into m. */
static int unpack_field(const struct iso_dialect *d, int n, struct rd *r, struct wx_iso_msg *m,
                        struct wx_iso_error *err)
{
    const struct iso_field_spec *s = &d->fields[n];
    size_t len = s->max;
    if (s->var != ISO_FIXED) {
        int v = read_prefix(d, r, s->var == ISO_LL ? 2 : 3);
        if (v == -1) return fail(err, n, "truncated length prefix");
        if (v == -2) return fail(err, n, "length prefix not numeric");
        if ((size_t)v > s->max) return fail(err, n, "length over the field's maximum");
        len = (size_t)v;
    }
    size_t wl = wire_len(d, s, len);
    if ((size_t)(r->end - r->p) < wl) return fail(err, n, "truncated field");
    if (len > (size_t)WX_ISO_DATA_MAX - m->used) return fail(err, n, "message data too large");
    const char *why = decode_value(d, s, r->p, len, m->data + m->used);
    if (why != NULL) return fail(err, n, why);
    m->field[n].off = m->used;
    m->field[n].len = (uint16_t)len;
    m->used = (uint16_t)(m->used + len);
    r->p += wl;
    return 0;
}

/* Reads one 8-byte bitmap (raw or 16 hex characters) into out. */
static int read_bitmap(const struct iso_dialect *d, struct rd *r, uint8_t out[8],
                       struct wx_iso_error *err)
{
    size_t wl = d->bin_bitmap ? 8 : 16;
    if ((size_t)(r->end - r->p) < wl) return fail(err, 0, "truncated bitmap");
    if (d->bin_bitmap) {
        memcpy(out, r->p, 8);
    } else if (!hex_decode(r->p, 8, out)) {
        return fail(err, 0, "bitmap not hex");
    }
    r->p += wl;
    return 0;
}

/* Reads the MTI: 4 ASCII digits or 2 BCD bytes. */
static int read_mti(const struct iso_dialect *d, struct rd *r, struct wx_iso_msg *m,
                    struct wx_iso_error *err)
{
    uint8_t text[4];
    size_t wl = d->bcd ? 2 : 4;
    if ((size_t)(r->end - r->p) < wl) return fail(err, 0, "truncated MTI");
    if (d->bcd ? !bcd_decode(r->p, 4, true, false, text)
               : !wx_iso_value_ok(&d->fields[0], r->p, 4)) {
        return fail(err, 0, "MTI not numeric");
    }
    if (!d->bcd) memcpy(text, r->p, 4);
    m->mti = (uint16_t)((text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 +
                        (text[3] - '0'));
    r->p += wl;
    err->mti_read = true;
    return 0;
}

int wx_iso_unpack(enum wx_iso_dialect dialect, const uint8_t *in, size_t len, struct wx_iso_msg *m,
                  struct wx_iso_error *err)
{
    assert((unsigned)dialect < 3);
    const struct iso_dialect *d = &wx_iso_dialects[dialect];
    struct rd r = {in, in + len};
    err->field = 0;
    err->why = NULL;
    err->mti_read = false;
    wx_iso_init(m, 0);
    if (len > WX_ISO_MSG_MAX) return fail(err, 0, "message over WX_ISO_MSG_MAX");
    if (read_mti(d, &r, m, err) != 0) return -1;
    /* The wire's bitmaps say which fields follow; a field is marked present in m only once
     * it is decoded, so that after a failure m holds exactly the fields before it (the host
     * builds its 30 answer from them) and nothing left over from an earlier message. */
    uint8_t wire[16] = {0};
    if (read_bitmap(d, &r, wire, err) != 0) return -1;
    int words = 1;
    if (iso_bit(wire, 1)) {
        if (read_bitmap(d, &r, wire + 8, err) != 0) return -1;
        iso_bit_set(m->present, 1);
        words = 2;
    }
    for (int w = 0; w < words; w++) {
        uint64_t bits = load_be64(wire + 8 * w);
        if (w == 0) bits &= ~(1ull << 63); /* bit 1 is the secondary bitmap, not a field */
        while (bits != 0) {
            int n = 64 * w + __builtin_clzll(bits) + 1;
            bits &= ~(1ull << (64 * (w + 1) - n));
            if (unpack_field(d, n, &r, m, err) != 0) return -1;
            iso_bit_set(m->present, n);
        }
    }
    if (r.p != r.end) return fail(err, 0, "trailing bytes after the last field");
    return 0;
}

/* A bounded write cursor. */
struct wr {
    uint8_t *p;   /* next byte */
    uint8_t *end; /* one past the buffer */
};

/* Writes a length prefix of 2 or 3 digits. */
static void write_prefix(const struct iso_dialect *d, struct wr *w, int digits, size_t v)
{
    if (d->bcd) {
        if (digits == 3) *w->p++ = (uint8_t)(v / 100);
        v %= 100;
        *w->p++ = (uint8_t)((v / 10) << 4 | (v % 10));
        return;
    }
    if (digits == 3) *w->p++ = (uint8_t)('0' + v / 100);
    *w->p++ = (uint8_t)('0' + v / 10 % 10);
    *w->p++ = (uint8_t)('0' + v % 10);
}

/* Packs field n of m; -1 when it breaks its spec or does not fit. */
static int pack_field(const struct iso_dialect *d, int n, const struct wx_iso_msg *m, struct wr *w)
{
    const struct iso_field_spec *s = &d->fields[n];
    size_t len = m->field[n].len;
    if ((size_t)m->field[n].off + len > m->used) return -1;
    const uint8_t *v = m->data + m->field[n].off;
    /* Lengths are checked here; characters were checked by wx_iso_set or wx_iso_unpack. */
    if (s->var == ISO_FIXED ? len != s->max : len > s->max) return -1;
    if (s->type == ISO_XN && len == 0) return -1;
    int digits = s->var == ISO_LL ? 2 : s->var == ISO_LLL ? 3 : 0;
    size_t need = (size_t)(d->bcd ? (digits + 1) / 2 : digits) + wire_len(d, s, len);
    if ((size_t)(w->end - w->p) < need) return -1;
    if (digits != 0) write_prefix(d, w, digits, len);
    bool left = s->var == ISO_FIXED;
    if (s->type == ISO_B && !d->bcd) {
        hex_encode(v, len, w->p);
    } else if (d->bcd && (s->type == ISO_N || s->type == ISO_Z)) {
        bcd_encode(v, len, left, w->p);
    } else if (d->bcd && s->type == ISO_XN) {
        w->p[0] = v[0];
        bcd_encode(v + 1, len - 1, left, w->p + 1);
    } else {
        memcpy(w->p, v, len);
    }
    w->p += wire_len(d, s, len);
    return 0;
}

/* Writes the MTI and the bitmaps; returns how many bitmap words carry fields. */
static int pack_head(const struct iso_dialect *d, const struct wx_iso_msg *m, struct wr *w)
{
    uint8_t bm[16];
    memcpy(bm, m->present, 16);
    bool second = d->always_secondary || iso_bit(bm, 1);
    for (int i = 8; i < 16 && !second; i++)
        second = bm[i] != 0;
    if (second) iso_bit_set(bm, 1);
    size_t bml = (second ? 2u : 1u) * (d->bin_bitmap ? 8 : 16);
    if (m->mti > 9999 || (size_t)(w->end - w->p) < (d->bcd ? 2u : 4u) + bml) return -1;
    uint8_t mti[4] = {(uint8_t)('0' + m->mti / 1000), (uint8_t)('0' + m->mti / 100 % 10),
                      (uint8_t)('0' + m->mti / 10 % 10), (uint8_t)('0' + m->mti % 10)};
    if (d->bcd) {
        bcd_encode(mti, 4, true, w->p);
        w->p += 2;
    } else {
        memcpy(w->p, mti, 4);
        w->p += 4;
    }
    size_t bytes = second ? 16 : 8;
    if (d->bin_bitmap) {
        memcpy(w->p, bm, bytes);
        w->p += bytes;
    } else {
        hex_encode(bm, bytes, w->p);
        w->p += 2 * bytes;
    }
    return second ? 2 : 1;
}

int wx_iso_pack(enum wx_iso_dialect dialect, const struct wx_iso_msg *m, uint8_t *out, size_t cap,
                size_t *len)
{
    assert((unsigned)dialect < 3);
    const struct iso_dialect *d = &wx_iso_dialects[dialect];
    struct wr w = {out, out + (cap < WX_ISO_MSG_MAX ? cap : WX_ISO_MSG_MAX)};
    int words = pack_head(d, m, &w);
    if (words < 0) return -1;
    for (int wd = 0; wd < words; wd++) {
        uint64_t bits = load_be64(m->present + 8 * wd);
        if (wd == 0) bits &= ~(1ull << 63);
        while (bits != 0) {
            int n = 64 * wd + __builtin_clzll(bits) + 1;
            bits &= ~(1ull << (64 * (wd + 1) - n));
            if (pack_field(d, n, m, &w) != 0) return -1;
        }
    }
    *len = (size_t)(w.p - out);
    return 0;
}
