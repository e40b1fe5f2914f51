/*
 * fuzz_web_form.c - libFuzzer target for what browsers send the secure pages: form bodies
 * (wx_form_parse), Cookie headers (wx_cookie_get) and HTML escaping (src/web/form.c).
 *
 * Whatever the bytes: a form is parsed whole or refused whole; a parsed one has at most
 * WX_FORM_FIELDS_MAX distinct names of [a-z0-9_], each value NUL-terminated text within
 * WX_FORM_VALUE_MAX with no control character; a cookie found is only [A-Za-z0-9_-]; an
 * escaped text holds no raw < > " ' and fits its buffer.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wx_form form;

static void check_form(void)
{
    assert(form.n <= WX_FORM_FIELDS_MAX);
    for (size_t i = 0; i < form.n; i++) {
        const struct wx_form_field *f = &form.f[i];
        assert(strlen(f->name) >= 1 && strlen(f->name) <= WX_FORM_NAME_MAX);
        assert(strspn(f->name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(f->name));
        assert(f->len <= WX_FORM_VALUE_MAX && strlen(f->value) == f->len);
        for (size_t k = 0; k < f->len; k++)
            assert((unsigned char)f->value[k] >= 0x20 && f->value[k] != 0x7F);
        for (size_t j = 0; j < i; j++)
            assert(strcmp(form.f[j].name, f->name) != 0);
        assert(wx_form_get(&form, f->name) == f->value);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (wx_form_parse((const char *)data, size, &form) == WX_FORM_OK) {
        check_form();
    } else {
        assert(form.n == 0);
    }
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char cookie[64];
    if (wx_cookie_get(text, "sid", cookie, sizeof cookie)) {
        assert(strlen(cookie) >= 1);
        assert(strspn(cookie, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
               strlen(cookie));
    }
    char out[97];
    size_t need = wx_html_escape(text, out, sizeof out);
    assert(strlen(out) < sizeof out && strlen(out) <= need);
    assert(strpbrk(out, "<>\"'") == NULL);
    free(text);
    return 0;
}
