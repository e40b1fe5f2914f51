/*
 * test_web_form.c - what a browser posts, read strictly (src/web/form.c): limits just under
 * and over, duplicates, bad encodings, NULs and invalid UTF-8 refused whole; hostile text
 * accepted as text and escaped when shown; cookies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "web/web.h"

static struct wx_form form;

static enum wx_form_error parse(const char *body)
{
    return wx_form_parse(body, strlen(body), &form);
}

static void test_fields(void **state)
{
    (void)state;
    assert_int_equal(parse("login=110101199003071234&password=Sunny%2Dday+42&csrf=abc_-"),
                     WX_FORM_OK);
    assert_int_equal(form.n, 3);
    assert_string_equal(wx_form_get(&form, "login"), "110101199003071234");
    assert_string_equal(wx_form_get(&form, "password"), "Sunny-day 42");
    assert_null(wx_form_get(&form, "captcha"));
    assert_int_equal(parse("name=%E5%BC%A0%E4%BC%9F&empty="), WX_FORM_OK);
    assert_string_equal(wx_form_get(&form, "name"), "张伟");
    assert_string_equal(wx_form_get(&form, "empty"), "");
    assert_int_equal(parse(""), WX_FORM_OK);
    assert_int_equal(form.n, 0);
}

static void test_refused(void **state)
{
    (void)state;
    assert_int_equal(parse("a=1&a=2"), WX_FORM_DUPLICATE);
    assert_int_equal(form.n, 0);                       /* nothing half-read */
    assert_int_equal(parse("A=1"), WX_FORM_MALFORMED); /* not one of our names */
    assert_int_equal(parse("=1"), WX_FORM_MALFORMED);
    assert_int_equal(parse("novalue"), WX_FORM_MALFORMED);
    assert_int_equal(parse("a=%G1"), WX_FORM_MALFORMED);
    assert_int_equal(parse("a=%0"), WX_FORM_MALFORMED);
    assert_int_equal(parse("a=x%00y"), WX_FORM_MALFORMED); /* an encoded NUL */
    assert_int_equal(wx_form_parse("a=x\0y", 5, &form), WX_FORM_MALFORMED);
    assert_int_equal(parse("a=%FF%FE"), WX_FORM_NOT_TEXT);
    assert_int_equal(parse("a=%ED%A0%80"), WX_FORM_NOT_TEXT); /* a surrogate */
    assert_int_equal(parse("a=line%0Abreak"), WX_FORM_NOT_TEXT);
    assert_int_equal(parse("a=tab%09"), WX_FORM_NOT_TEXT);
}

static void test_limits(void **state)
{
    (void)state;
    static char body[WX_FORM_BODY_MAX * 2];
    /* A value of exactly WX_FORM_VALUE_MAX bytes passes; one more does not. */
    memcpy(body, "v=", 2);
    memset(body + 2, 'x', WX_FORM_VALUE_MAX);
    body[2 + WX_FORM_VALUE_MAX] = '\0';
    assert_int_equal(parse(body), WX_FORM_OK);
    assert_int_equal(strlen(wx_form_get(&form, "v")), WX_FORM_VALUE_MAX);
    memset(body + 2, 'x', WX_FORM_VALUE_MAX + 1);
    body[3 + WX_FORM_VALUE_MAX] = '\0';
    assert_int_equal(parse(body), WX_FORM_TOO_LARGE);
    /* 10 KiB in one field: refused, not cut. */
    memset(body + 2, 'x', 10240);
    body[2 + 10240] = '\0';
    assert_int_equal(parse(body), WX_FORM_TOO_LARGE);
    /* WX_FORM_FIELDS_MAX fields pass; one more does not. */
    size_t n = 0;
    for (int i = 0; i <= WX_FORM_FIELDS_MAX; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%sf%d=1", i ? "&" : "", i);
    assert_int_equal(parse(body), WX_FORM_TOO_MANY);
    char *last = strrchr(body, '&');
    *last = '\0';
    assert_int_equal(parse(body), WX_FORM_OK);
    assert_int_equal(form.n, WX_FORM_FIELDS_MAX);
    /* A name of WX_FORM_NAME_MAX bytes passes; longer does not. */
    memset(body, 'n', WX_FORM_NAME_MAX + 1);
    memcpy(body + WX_FORM_NAME_MAX, "=1", 3);
    assert_int_equal(parse(body), WX_FORM_OK);
    memset(body, 'n', WX_FORM_NAME_MAX + 1);
    memcpy(body + WX_FORM_NAME_MAX + 1, "=1", 3);
    assert_int_equal(parse(body), WX_FORM_MALFORMED);
    assert_string_equal(wx_form_error_text(WX_FORM_TOO_LARGE, false), "填写的内容过长");
}

/* SQL and script injection strings are text like any other: kept as typed, escaped when
 * shown. */
static void test_hostile_text_escaped(void **state)
{
    (void)state;
    assert_int_equal(
        parse("name=%3Cscript%3Ealert(%27x%27)%3C%2Fscript%3E&q=1%27+OR+%271%27%3D%271"),
        WX_FORM_OK);
    assert_string_equal(wx_form_get(&form, "name"), "<script>alert('x')</script>");
    assert_string_equal(wx_form_get(&form, "q"), "1' OR '1'='1");
    char out[128];
    size_t need = wx_html_escape(wx_form_get(&form, "name"), out, sizeof out);
    assert_string_equal(out, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
    assert_int_equal(need, strlen(out));
    /* Cut to fit, never inside an entity or a character. */
    char small[8];
    wx_html_escape("ab<c", small, sizeof small);
    assert_string_equal(small, "ab&lt;c");
    wx_html_escape("ab<cd", small, 6);
    assert_string_equal(small, "ab");
    wx_html_escape("a张伟", small, 6); /* a + one 3-byte character fit, the second not */
    assert_string_equal(small, "a张");
    wx_html_escape("张伟", small, 5);
    assert_string_equal(small, "张");
    assert_int_equal(wx_html_escape("x", small, 0), 1);
}

static void test_cookies(void **state)
{
    (void)state;
    char v[64];
    assert_int_equal(wx_cookie_get("a=1; sid=Abc_-9; b=2", "sid", v, sizeof v), 1);
    assert_string_equal(v, "Abc_-9");
    assert_int_equal(wx_cookie_get("sidx=1; xsid=2", "sid", v, sizeof v), 0);
    assert_int_equal(wx_cookie_get("sid=a%20b", "sid", v, sizeof v), 0); /* not one of ours */
    assert_int_equal(wx_cookie_get("sid=0123456789", "sid", v, 5), 0);   /* too long */
    assert_int_equal(wx_cookie_get(NULL, "sid", v, sizeof v), 0);
    assert_int_equal(wx_cookie_get("sid=", "sid", v, sizeof v), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),  cmocka_unit_test(test_refused),
        cmocka_unit_test(test_limits),  cmocka_unit_test(test_hostile_text_escaped),
        cmocka_unit_test(test_cookies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
