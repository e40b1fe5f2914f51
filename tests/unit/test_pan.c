/*
 * test_pan.c - Luhn, PAN issuing, parsing as typed, masking, expiry dates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/pan.h"

#include <string.h>

static void test_luhn_known_numbers(void **state)
{
    (void)state;
    assert_true(wx_luhn_valid("4242424242424242", 16));
    assert_true(wx_luhn_valid("79927398713", 11));
    assert_true(wx_luhn_valid("5105105105105100", 16)); /* doubled 5s: 10 counts as 1 */
    assert_int_equal(wx_luhn_digit("5", 1), 9);
    assert_false(wx_luhn_valid("79927398710", 11));
    assert_false(wx_luhn_valid("4242424242424241", 16));
    assert_false(wx_luhn_valid("42424242424242a2", 16));
    assert_false(wx_luhn_valid("0", 1));
    assert_false(wx_luhn_valid("", 0));
    assert_int_equal(wx_luhn_digit("7992739871", 10), 3);
    assert_int_equal(wx_luhn_digit("424242424242424", 15), 2);
    assert_int_equal(wx_luhn_digit("12x4", 4), WX_PAN_ECHAR);
}

static void test_pan_generate(void **state)
{
    (void)state;
    char pan[WX_PAN_MAX + 1];
    int digit_seen[10] = {0};
    for (int i = 0; i < 200; i++) {
        assert_int_equal(wx_pan_generate("622588", 16, pan, sizeof pan), 0);
        assert_int_equal(strlen(pan), 16);
        assert_memory_equal(pan, "622588", 6);
        assert_true(wx_luhn_valid(pan, 16));
        digit_seen[pan[8] - '0']++;
    }
    for (int d = 0; d < 10; d++) {
        assert_true(digit_seen[d] > 0); /* 200 draws: every digit appears (p fail < 1e-8) */
    }
    assert_int_equal(wx_pan_generate("62258812", 19, pan, sizeof pan), 0);
    assert_memory_equal(pan, "62258812", 8);
    assert_true(wx_luhn_valid(pan, 19));
    assert_int_equal(wx_pan_generate("622588", 13, pan, sizeof pan), 0);
    assert_int_equal(strlen(pan), 13);

    assert_int_equal(wx_pan_generate("62258", 16, pan, sizeof pan), WX_PAN_EBIN);
    assert_int_equal(wx_pan_generate("622588123", 16, pan, sizeof pan), WX_PAN_EBIN);
    assert_int_equal(wx_pan_generate("62258a", 16, pan, sizeof pan), WX_PAN_EBIN);
    assert_int_equal(wx_pan_generate("622588", 12, pan, sizeof pan), WX_PAN_ELENGTH);
    assert_int_equal(wx_pan_generate("622588", 20, pan, sizeof pan), WX_PAN_ELENGTH);
    assert_int_equal(wx_pan_generate("622588", 16, pan, 16), WX_PAN_ESPACE);
    assert_int_equal(wx_pan_generate("622588", 16, pan, 17), 0);
}

static void test_pan_parse(void **state)
{
    (void)state;
    char out[WX_PAN_MAX + 1];
    assert_int_equal(wx_pan_parse("4242424242424242", out), 0);
    assert_string_equal(out, "4242424242424242");
    assert_int_equal(wx_pan_parse("4242 4242 4242 4242", out), 0);
    assert_string_equal(out, "4242424242424242");
    assert_int_equal(wx_pan_parse("4242-4242-4242-4242", out), 0);
    assert_string_equal(out, "4242424242424242");

    assert_int_equal(wx_pan_parse("4242424242424241", out), WX_PAN_ELUHN);
    assert_string_equal(out, "");
    assert_int_equal(wx_pan_parse(" 4242424242424242", out), WX_PAN_ESEPARATOR);
    assert_int_equal(wx_pan_parse("4242424242424242 ", out), WX_PAN_ESEPARATOR);
    assert_int_equal(wx_pan_parse("4242  4242424242424242", out), WX_PAN_ESEPARATOR);
    assert_int_equal(wx_pan_parse("4242 -4242424242424242", out), WX_PAN_ESEPARATOR);
    assert_int_equal(wx_pan_parse("4242x4242424242424242", out), WX_PAN_ECHAR);
    assert_int_equal(wx_pan_parse("", out), WX_PAN_ELENGTH);

    /* Lengths: 12 digits is one short, 13 and 19 are the bounds, 20 is one over. */
    char text[32];
    for (int len = 12; len <= 20; len++) {
        memset(text, '0', (size_t)len);
        text[len] = '\0'; /* all zeros: the Luhn sum is 0, so valid at any length */
        int want = (len >= WX_PAN_MIN && len <= WX_PAN_MAX) ? 0 : WX_PAN_ELENGTH;
        assert_int_equal(wx_pan_parse(text, out), want);
    }
    /* Text limit: 19 digits with 18 separators (37) passes; past WX_PAN_TEXT_MAX is refused. */
    assert_int_equal(wx_pan_parse("0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0", out), 0);
    char longtext[WX_PAN_TEXT_MAX + 2];
    memset(longtext, '0', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    assert_int_equal(wx_pan_parse(longtext, out), WX_PAN_ELENGTH);
    assert_string_not_equal(wx_pan_strerror(WX_PAN_ELUHN), "");
}

static void test_pan_mask(void **state)
{
    (void)state;
    char out[WX_PAN_MAX + 1];
    wx_pan_mask("6225881234561234", out, sizeof out);
    assert_string_equal(out, "622588******1234");
    wx_pan_mask("6225881234567890123", out, sizeof out);
    assert_string_equal(out, "622588*********0123");
    wx_pan_mask("6225881234561", out, sizeof out);
    assert_string_equal(out, "622588***4561");
    wx_pan_mask("123456789012", out, sizeof out); /* too short to be a PAN: hide it all */
    assert_string_equal(out, "************");
    char small[8];
    wx_pan_mask("6225881234561234", small, sizeof small);
    assert_string_equal(small, "622588*");
}

static void test_expiry_parse(void **state)
{
    (void)state;
    uint16_t e = 0;
    assert_int_equal(wx_expiry_parse("2611", &e), 0);
    assert_int_equal(e, 2611);
    assert_int_equal(wx_expiry_parse("0001", &e), 0);
    assert_int_equal(e, 1);
    assert_int_equal(wx_expiry_parse("9912", &e), 0);
    assert_int_equal(e, 9912);
    assert_int_equal(wx_expiry_parse("2600", &e), WX_PAN_EEXPIRY);
    assert_int_equal(wx_expiry_parse("2613", &e), WX_PAN_EEXPIRY);
    assert_int_equal(wx_expiry_parse("261", &e), WX_PAN_EEXPIRY);
    assert_int_equal(wx_expiry_parse("26111", &e), WX_PAN_EEXPIRY);
    assert_int_equal(wx_expiry_parse("26a1", &e), WX_PAN_EEXPIRY);
    assert_int_equal(wx_expiry_parse("", &e), WX_PAN_EEXPIRY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn_known_numbers), cmocka_unit_test(test_pan_generate),
        cmocka_unit_test(test_pan_parse),          cmocka_unit_test(test_pan_mask),
        cmocka_unit_test(test_expiry_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
