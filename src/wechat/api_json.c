/*
 * api_json.c - the platform API client's JSON: message bodies written straight into their
 * call, and the usual shape of an answer read in one pass (anything else goes to jansson).
 */
#include "wechat/api_int.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ---- JSON bodies ------------------------------------------------------------------------ */

void api_jw_raw(struct jw *w, const char *s, size_t n)
{
    assert(n <= w->cap - w->len);
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

/* Room enough for s as a JSON string: quotes, and at most six bytes for each byte of s
 * (a control character as \u00XX; a 4-byte sequence is 12). 0 for NULL. */
size_t api_jw_bound(const char *s)
{
    return s != NULL ? 2 + 6 * strlen(s) : 0;
}

/*
 * Decodes the UTF-8 sequence at s into *cp. Returns its length, or 0 where jansson's check
 * fails: a stray or missing continuation byte, an overlong form, a surrogate, past U+10FFFF.
 */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    size_t n;
    uint32_t v;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xc2 || s[0] > 0xf4) return 0;
    if (s[0] < 0xe0) {
        n = 2;
        v = s[0] & 0x1f;
    } else if (s[0] < 0xf0) {
        n = 3;
        v = s[0] & 0x0f;
    } else {
        n = 4;
        v = s[0] & 0x07;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* the terminating NUL stops here too */
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000)) return 0;
    *cp = v;
    return n;
}

bool api_utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t cp;
        size_t n = utf8_decode(p, &cp);
        if (n == 0) return false;
        p += n;
    }
    return true;
}

/* One UTF-16 code unit as \uXXXX, in upper case as jansson writes it. */
static void jw_unit(struct jw *w, uint32_t unit)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[6] = {'\\', 'u'};
    for (int i = 0; i < 4; i++)
        e[2 + i] = hex[(unit >> (12 - 4 * i)) & 15];
    api_jw_raw(w, e, sizeof e);
}

static void jw_escape(struct jw *w, uint32_t cp)
{
    switch (cp) {
    case '"':
        JW_LIT(w, "\\\"");
        return;
    case '\\':
        JW_LIT(w, "\\\\");
        return;
    case '\b':
        JW_LIT(w, "\\b");
        return;
    case '\f':
        JW_LIT(w, "\\f");
        return;
    case '\n':
        JW_LIT(w, "\\n");
        return;
    case '\r':
        JW_LIT(w, "\\r");
        return;
    case '\t':
        JW_LIT(w, "\\t");
        return;
    }
    if (cp < 0x10000) {
        jw_unit(w, cp);
        return;
    }
    cp -= 0x10000;
    jw_unit(w, 0xd800 | (cp >> 10));
    jw_unit(w, 0xdc00 | (cp & 0x3ff));
}

/* s as a JSON string. Runs of plain ASCII are copied whole. Sets w->bad and stops at what is
 * not UTF-8. */
void api_jw_str(struct jw *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    JW_LIT(w, "\"");
    for (;;) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        api_jw_raw(w, (const char *)run, (size_t)(p - run));
        if (*p == '\0') break;
        uint32_t cp;
        size_t n = utf8_decode(p, &cp);
        if (n == 0) {
            w->bad = true;
            return;
        }
        jw_escape(w, cp);
        p += n;
    }
    JW_LIT(w, "\"");
}

/* "key":"value" */
void api_jw_member(struct jw *w, const char *key, const char *value)
{
    api_jw_str(w, key);
    JW_LIT(w, ":");
    api_jw_str(w, value);
}

/* ---- reading answers -------------------------------------------------------------------- */

static bool scan_lit(const char **p, const char *end, const char *lit, size_t n)
{
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0) return false;
    *p += n;
    return true;
}

/* -?(0|[1-9][0-9]*) within ±LLONG_MAX: an integer jansson reads as the same long long. */
static bool scan_int(const char **p, const char *end, long long *out)
{
    const char *q = *p;
    bool neg = q < end && *q == '-';
    if (neg) q++;
    const char *digits = q;
    unsigned long long v = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - digits < 19) { /* 19 digits fit */
        v = v * 10 + (unsigned long long)(*q - '0');
        q++;
    }
    if (q == digits || (q < end && *q >= '0' && *q <= '9') || v > LLONG_MAX) return false;
    if (*digits == '0' && q - digits > 1) return false;
    *out = neg ? -(long long)v : (long long)v;
    *p = q;
    return true;
}

/* A string of printable ASCII without escapes, at most INT_MAX bytes: *s and *len. */
static bool scan_str(const char **p, const char *end, const char **s, int *len)
{
    const char *q = *p;
    if (q == end || *q++ != '"') return false;
    *s = q;
    while (q < end && *q >= 0x20 && *q < 0x7f && *q != '"' && *q != '\\' && q - *s < INT_MAX)
        q++;
    if (q == end || *q != '"') return false;
    *len = (int)(q - *s);
    *p = q + 1;
    return true;
}

/*
 * The platform's usual answer, {"errcode":0,"errmsg":"ok","msgid":200228332}, read without
 * jansson: errcode, errmsg and msgid, each at most once and in any order, with the values
 * scan_int and scan_str take, and no spaces. False for anything else, which answer_read then
 * gives to jansson, so that every answer reads as jansson reads it.
 */
static bool answer_scan(const char *p, const char *end, struct answer *a)
{
    if (p == end || *p++ != '{') return false;
    bool errcode = false, errmsg = false, msgid = false;
    for (;;) {
        long long v;
        if (!errcode && scan_lit(&p, end, "\"errcode\":", 10)) {
            if (!scan_int(&p, end, &v)) return false;
            a->errcode = (long)v;
            errcode = true;
        } else if (!errmsg && scan_lit(&p, end, "\"errmsg\":", 9)) {
            if (!scan_str(&p, end, &a->errmsg, &a->errmsg_len)) return false;
            errmsg = true;
        } else if (!msgid && scan_lit(&p, end, "\"msgid\":", 8)) {
            if (!scan_int(&p, end, &v)) return false;
            a->msgid = (uint64_t)v;
            msgid = true;
        } else {
            return false;
        }
        if (p == end) return false;
        if (*p == '}') return p + 1 == end;
        if (*p++ != ',') return false;
    }
}

/* Reads the answer into *a; false when it is not a JSON object. */
bool api_answer_read(const char *body, size_t len, struct answer *a)
{
    memset(a, 0, sizeof *a);
    a->errmsg = "";
    if (answer_scan(body, body + len, a)) return true;
    memset(a, 0, sizeof *a);
    a->errmsg = a->errmsg_buf;
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return false;
    }
    a->errcode = (long)json_integer_value(json_object_get(j, "errcode"));
    const char *s = json_string_value(json_object_get(j, "errmsg"));
    if (s != NULL) snprintf(a->errmsg_buf, sizeof a->errmsg_buf, "%s", s);
    a->errmsg_len = (int)strlen(a->errmsg_buf);
    json_t *v = json_object_get(j, "msgid");
    if (json_is_integer(v)) a->msgid = (uint64_t)json_integer_value(v);
    s = json_string_value(json_object_get(j, "media_id"));
    if (s != NULL) snprintf(a->media_id, sizeof a->media_id, "%s", s);
    s = json_string_value(json_object_get(j, "openid"));
    if (s != NULL) snprintf(a->openid, sizeof a->openid, "%s", s);
    json_decref(j);
    return true;
}
