/*
 * test_money.c - strict amount parsing at its edges, formatting, the currency table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/limits.h"
#include "util/money.h"

#include <string.h>

static int64_t parse_ok(const char *text)
{
    int64_t fen = -1;
    int rc = wx_amount_parse(text, &fen);
    if (rc != 0) fail_msg("'%s' rejected: %s", text, wx_amount_strerror(rc));
    return fen;
}

static int parse_rc(const char *text)
{
    int64_t fen = -7;
    int rc = wx_amount_parse(text, &fen);
    if (rc != 0) assert_int_equal(fen, -7); /* untouched on error */
    return rc;
}

static void test_amount_parse_accepts(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("0"), 0);
    assert_int_equal(parse_ok("0.5"), 50);
    assert_int_equal(parse_ok("0.05"), 5);
    assert_int_equal(parse_ok("1234"), 123400);
    assert_int_equal(parse_ok("1234.5"), 123450);
    assert_int_equal(parse_ok("1234.56"), 123456);
    assert_int_equal(parse_ok("1,234.56"), 123456);
    assert_int_equal(parse_ok("999"), 99900);
    assert_int_equal(parse_ok("1,000,000"), 100000000);
    assert_int_equal(parse_ok("10,000,000,000.00"), WX_AMOUNT_MAX); /* the maximum */
    assert_int_equal(parse_ok("10000000000"), WX_AMOUNT_MAX);
    assert_int_equal(parse_ok("9999999999.99"), WX_AMOUNT_MAX - 1);
}

static void test_amount_parse_rejects(void **state)
{
    (void)state;
    assert_int_equal(parse_rc("0.001"), WX_AMOUNT_EPRECISION);
    assert_int_equal(parse_rc("1.500"), WX_AMOUNT_EPRECISION);
    assert_int_equal(parse_rc("12,34"), WX_AMOUNT_EGROUP);
    assert_int_equal(parse_rc("1,2345"), WX_AMOUNT_EGROUP);
    assert_int_equal(parse_rc("1234,567"), WX_AMOUNT_EGROUP);
    assert_int_equal(parse_rc("1,23,456"), WX_AMOUNT_EGROUP);
    assert_int_equal(parse_rc("1,,234"), WX_AMOUNT_EGROUP);
    assert_int_equal(parse_rc("1,234,"), WX_AMOUNT_EGROUP);
    assert_int_equal(parse_rc(",123"), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("10000000000.01"), WX_AMOUNT_ERANGE); /* max + 1 fen */
    assert_int_equal(parse_rc("10,000,000,001"), WX_AMOUNT_ERANGE);
    assert_int_equal(parse_rc("99999999999999999999"), WX_AMOUNT_ERANGE); /* would overflow */
    assert_int_equal(parse_rc(""), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("-1"), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("+1"), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc(" 1"), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("1 "), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("1."), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc(".5"), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("1.2.3"), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("01"), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("1e3"), WX_AMOUNT_ESYNTAX);
    assert_int_equal(parse_rc("1.5a"), WX_AMOUNT_ESYNTAX);
}

static void test_amount_text_limit(void **state)
{
    (void)state;
    char text[WX_AMOUNT_TEXT_MAX + 2];
    /* Exactly WX_AMOUNT_TEXT_MAX characters is parsed (and is out of range); one more is not. */
    memset(text, '9', WX_AMOUNT_TEXT_MAX);
    text[WX_AMOUNT_TEXT_MAX] = '\0';
    assert_int_equal(parse_rc(text), WX_AMOUNT_ERANGE);
    text[WX_AMOUNT_TEXT_MAX] = '9';
    text[WX_AMOUNT_TEXT_MAX + 1] = '\0';
    assert_int_equal(parse_rc(text), WX_AMOUNT_ETOOLONG);
}

static void test_amount_format(void **state)
{
    (void)state;
    char out[WX_AMOUNT_FMT_MAX];
    wx_amount_format(123456, out, sizeof out);
    assert_string_equal(out, "1,234.56");
    wx_amount_format(0, out, sizeof out);
    assert_string_equal(out, "0.00");
    wx_amount_format(5, out, sizeof out);
    assert_string_equal(out, "0.05");
    wx_amount_format(-5, out, sizeof out);
    assert_string_equal(out, "-0.05");
    wx_amount_format(-123456789, out, sizeof out);
    assert_string_equal(out, "-1,234,567.89");
    wx_amount_format(99999, out, sizeof out);
    assert_string_equal(out, "999.99");
    wx_amount_format(100000, out, sizeof out);
    assert_string_equal(out, "1,000.00");
    wx_amount_format(WX_AMOUNT_MAX, out, sizeof out);
    assert_string_equal(out, "10,000,000,000.00");
    wx_amount_format(INT64_MIN, out, sizeof out);
    assert_string_equal(out, "-92,233,720,368,547,758.08");
    wx_amount_format(INT64_MAX, out, sizeof out);
    assert_string_equal(out, "92,233,720,368,547,758.07");
    char small[5];
    wx_amount_format(123456, small, sizeof small);
    assert_string_equal(small, "1,23");

    /* Round trip through the parser. */
    int64_t back = 0;
    wx_amount_format(98765432101, out, sizeof out);
    assert_int_equal(wx_amount_parse(out, &back), 0);
    assert_int_equal(back, 98765432101);
}

static void test_currencies(void **state)
{
    (void)state;
    const struct wx_currency *c = wx_currency_by_numeric(156);
    assert_non_null(c);
    assert_string_equal(c->alpha, "CNY");
    assert_int_equal(c->minor, 2);
    c = wx_currency_by_alpha("JPY");
    assert_non_null(c);
    assert_int_equal(c->numeric, 392);
    assert_int_equal(c->minor, 0);
    assert_int_equal(wx_currency_by_alpha("krw")->minor, 0);
    assert_int_equal(wx_currency_by_numeric(36)->alpha[0], 'A');
    assert_ptr_equal(wx_currency_by_alpha("usd"), wx_currency_by_numeric(840));
    static const uint16_t all[] = {156, 840, 978, 344, 446, 901, 392, 410,
                                   826, 702, 36,  124, 756, 764, 554};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        c = wx_currency_by_numeric(all[i]);
        assert_non_null(c);
        assert_ptr_equal(wx_currency_by_alpha(c->alpha), c);
    }
    assert_null(wx_currency_by_numeric(999));
    assert_null(wx_currency_by_alpha("XXX"));
    assert_null(wx_currency_by_alpha("CN"));
    assert_null(wx_currency_by_alpha("CNYY"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amount_parse_accepts), cmocka_unit_test(test_amount_parse_rejects),
        cmocka_unit_test(test_amount_text_limit),    cmocka_unit_test(test_amount_format),
        cmocka_unit_test(test_currencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
