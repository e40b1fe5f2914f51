/*
 * codec_msg.c - building and reading a decoded message (struct wx_iso_msg), and printing it
 * for people with card data masked.
 *
 * Values are appended to the message's data area and checked against the ISO 8583:1987
 * table when set, so a message built here always packs in every dialect (bar size).
 */
#include <assert.h>
#include <string.h>

#include "iso8583/codec_int.h"

void wx_iso_init(struct wx_iso_msg *m, uint16_t mti)
{
    m->mti = mti;
    memset(m->present, 0, sizeof m->present);
    m->used = 0;
}

int wx_iso_set(struct wx_iso_msg *m, int n, const void *value, size_t len)
{
    if (n < 2 || n > WX_ISO_FIELDS) return -1;
    if (!wx_iso_value_ok(&wx_iso_spec87[n], value, len)) return -1;
    uint16_t off = m->used;
    /* Reuse the old slot when the new value fits in it; otherwise append. */
    if (iso_bit(m->present, n) && len <= m->field[n].len) {
        off = m->field[n].off;
    } else if (len > (size_t)WX_ISO_DATA_MAX - m->used) {
        return -1;
    } else {
        m->used = (uint16_t)(m->used + len);
    }
    if (len > 0) memmove(m->data + off, value, len);
    m->field[n].off = off;
    m->field[n].len = (uint16_t)len;
    iso_bit_set(m->present, n);
    return 0;
}

int wx_iso_set_str(struct wx_iso_msg *m, int n, const char *value)
{
    return wx_iso_set(m, n, value, strlen(value));
}

bool wx_iso_has(const struct wx_iso_msg *m, int n)
{
    if (n < 1 || n > WX_ISO_FIELDS) return false;
    return iso_bit(m->present, n);
}

const uint8_t *wx_iso_get(const struct wx_iso_msg *m, int n, size_t *len)
{
    if (n < 2 || !wx_iso_has(m, n)) return NULL;
    *len = m->field[n].len;
    return m->data + m->field[n].off;
}

bool wx_iso_get_str(const struct wx_iso_msg *m, int n, char *out, size_t cap)
{
    size_t len;
    const uint8_t *v = wx_iso_get(m, n, &len);
    if (v == NULL || len >= cap) return false;
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

void wx_iso_unset(struct wx_iso_msg *m, int n)
{
    if (n < 2 || n > WX_ISO_FIELDS) return;
    iso_bit_clear(m->present, n);
}

/* Writes the PAN part of v masked: first 6 and last 4 digits shown when it is long enough. */
static void print_masked_pan(const uint8_t *v, size_t len, FILE *out)
{
    for (size_t i = 0; i < len; i++) {
        bool show = len >= 13 && (i < 6 || i >= len - 4);
        fputc(show ? v[i] : '*', out);
    }
}

/* Field 35: the PAN before '=' masked like field 2; everything after the separator hidden. */
static void print_track2(const uint8_t *v, size_t len, FILE *out)
{
    const uint8_t *sep = memchr(v, '=', len);
    size_t pan = sep != NULL ? (size_t)(sep - v) : len;
    print_masked_pan(v, pan, out);
    for (size_t i = pan; i < len; i++)
        fputc(i == pan ? '=' : '*', out);
}

void wx_iso_print(const struct wx_iso_msg *m, FILE *out)
{
    fprintf(out, "MTI %04u\n", (unsigned)m->mti);
    for (int n = 2; n <= WX_ISO_FIELDS; n++) {
        size_t len;
        const uint8_t *v = wx_iso_get(m, n, &len);
        if (v == NULL) continue;
        const struct iso_field_spec *s = &wx_iso_spec87[n];
        char label[16];
        wx_iso_spec_label(s, label, sizeof label);
        fprintf(out, "%3d  %-9s  ", n, label);
        if (n == 2) {
            print_masked_pan(v, len, out);
        } else if (n == 35) {
            print_track2(v, len, out);
        } else if (n == 52 || n == 55) {
            fprintf(out, "(%zu bytes)", len);
        } else if (s->type == ISO_B) {
            for (size_t i = 0; i < len; i++)
                fprintf(out, "%02X", v[i]);
        } else {
            fprintf(out, "%.*s", (int)len, (const char *)v);
        }
        fputc('\n', out);
    }
}
