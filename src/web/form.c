/*
 * form.c - what a browser posts to the secure pages, read strictly; HTML escaping; cookies.
 *
 * Every field a page takes is named, bounded and text: a form with a field twice, a name
 * that is not ours, a value past WX_FORM_VALUE_MAX, invalid UTF-8, a NUL or a control
 * character is refused whole, with a clear error, before any of it is looked at. Hostile
 * input then has nowhere to go: the values that pass are escaped wherever a page shows them
 * and bound as parameters wherever they are stored.
 */
#include "web/web_int.h"

#include <string.h>

#include "net/net.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool web_is_text(const char *s, size_t len, size_t *chars)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t count = 0;
    for (; p < end; count++) {
        unsigned c = *p;
        size_t n = c < 0x80                 ? 1
                   : c >= 0xC2 && c <= 0xDF ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
        if (n == 0 || (size_t)(end - p) < n || c < 0x20 || c == 0x7F) return false;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80) return false;
        }
        if (n == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))) return false;
        if (n == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))) return false;
        p += n;
    }
    if (chars != NULL) *chars = count;
    return true;
}

/* One name=value pair [p, end) into the form. */
static enum wx_form_error add_field(struct wx_form *out, const char *p, const char *end,
                                    size_t *used)
{
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (eq == NULL || eq == p || eq - p > WX_FORM_NAME_MAX) return WX_FORM_MALFORMED;
    for (const char *c = p; c < eq; c++) {
        if (!name_char(*c)) return WX_FORM_MALFORMED;
    }
    if (out->n == WX_FORM_FIELDS_MAX) return WX_FORM_TOO_MANY;
    struct wx_form_field *f = &out->f[out->n];
    memcpy(f->name, p, (size_t)(eq - p));
    f->name[eq - p] = '\0';
    if (wx_form_get(out, f->name) != NULL) return WX_FORM_DUPLICATE;
    size_t room = sizeof out->buf - *used;
    if (room > WX_FORM_VALUE_MAX + 1) room = WX_FORM_VALUE_MAX + 1;
    int n = wx_http_query_decode(eq + 1, end, out->buf + *used, room);
    if (n == -2 && (size_t)(end - eq - 1) >= room) return WX_FORM_TOO_LARGE;
    if (n < 0) return WX_FORM_MALFORMED; /* bad percent-encoding, or an encoded NUL */
    if (!web_is_text(out->buf + *used, (size_t)n, NULL)) return WX_FORM_NOT_TEXT;
    f->value = out->buf + *used;
    f->len = (size_t)n;
    *used += (size_t)n + 1;
    out->n++;
    return WX_FORM_OK;
}

enum wx_form_error wx_form_parse(const char *body, size_t len, struct wx_form *out)
{
    out->n = 0;
    if (len > WX_FORM_BODY_MAX) return WX_FORM_TOO_LARGE;
    if (memchr(body, '\0', len) != NULL) return WX_FORM_MALFORMED;
    size_t used = 0;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        enum wx_form_error e = add_field(out, p, stop, &used);
        if (e != WX_FORM_OK) {
            out->n = 0;
            return e;
        }
        p = amp != NULL ? amp + 1 : end;
    }
    return WX_FORM_OK;
}

const char *wx_form_get(const struct wx_form *form, const char *name)
{
    for (size_t i = 0; i < form->n; i++) {
        if (strcmp(form->f[i].name, name) == 0) return form->f[i].value;
    }
    return NULL;
}

const char *wx_form_error_text(enum wx_form_error e, bool english)
{
    static const char *const TEXT[][2] = {
        [WX_FORM_OK] = {"", ""},
        [WX_FORM_TOO_LARGE] = {"填写的内容过长", "something you entered is too long"},
        [WX_FORM_TOO_MANY] = {"表单格式不正确", "the form is not ours"},
        [WX_FORM_MALFORMED] = {"表单格式不正确", "the form is not ours"},
        [WX_FORM_DUPLICATE] = {"表单格式不正确", "the form is not ours"},
        [WX_FORM_NOT_TEXT] = {"填写的内容含有无效字符", "something you entered has characters "
                                                        "that cannot be used"},
    };
    if ((unsigned)e >= sizeof TEXT / sizeof TEXT[0]) e = WX_FORM_MALFORMED;
    return TEXT[e][english ? 1 : 0];
}

/* The length of the UTF-8 sequence a lead byte starts (1 for anything else). */
static size_t seq_len(unsigned char lead)
{
    return lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
}

size_t wx_html_escape(const char *in, char *out, size_t cap)
{
    size_t need = 0, used = 0;
    bool full = cap == 0;
    for (const char *p = in; *p != '\0'; p++) {
        char one[2] = {*p, '\0'};
        const char *rep = *p == '&'    ? "&amp;"
                          : *p == '<'  ? "&lt;"
                          : *p == '>'  ? "&gt;"
                          : *p == '"'  ? "&quot;"
                          : *p == '\'' ? "&#39;"
                                       : one;
        size_t n = strlen(rep);
        if (!full && used + n < cap) {
            memcpy(out + used, rep, n);
            used += n;
        } else {
            full = true;
        }
        need += n;
    }
    if (full && used > 0) { /* cut only between characters */
        size_t lead = used;
        while (lead > 0 && ((unsigned char)out[lead - 1] & 0xC0) == 0x80)
            lead--;
        if (lead > 0 && used - (lead - 1) < seq_len((unsigned char)out[lead - 1])) used = lead - 1;
    }
    if (cap > 0) out[used] = '\0';
    return need;
}

int wx_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
    if (header == NULL) return 0;
    size_t nlen = strlen(name);
    for (const char *p = header; *p != '\0';) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        if (end == NULL) end = p + strlen(p);
        if ((size_t)(end - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t len = (size_t)(end - v);
            if (len == 0 || len + 1 > cap) return 0;
            for (size_t i = 0; i < len; i++) {
                char c = v[i];
                bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-';
                if (!ok) return 0;
            }
            memcpy(out, v, len);
            out[len] = '\0';
            return 1;
        }
        p = end;
    }
    return 0;
}
