/*
 * test_web_password.c - the secure back end's passwords (src/web/password.c): Argon2id hashes
 * that verify and carry their cost, and the rules for a new login or transaction password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "web/web.h"

/* Hashing at the production cost takes a fifth of a second: the tests use a small one
 * where the cost is not the point. */
static const struct wx_password_cost CHEAP = {.memory_kib = 1024, .iterations = 1, .lanes = 1};

static void test_hash_and_verify(void **state)
{
    (void)state;
    char a[WX_PASSWORD_HASH_MAX], b[WX_PASSWORD_HASH_MAX];
    const char *pw = "Zhang.Wei-2026";
    assert_int_equal(wx_password_hash(&CHEAP, pw, strlen(pw), a), 0);
    assert_int_equal(wx_password_hash(&CHEAP, pw, strlen(pw), b), 0);
    assert_string_not_equal(a, b); /* a fresh salt each time */
    assert_true(wx_password_verify(a, pw, strlen(pw)));
    assert_true(wx_password_verify(b, pw, strlen(pw)));
    assert_false(wx_password_verify(a, "Zhang.Wei-2025", 14));
    assert_false(wx_password_verify(a, pw, strlen(pw) - 1));
    assert_false(wx_password_verify("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaA", pw,
                                    strlen(pw))); /* only Argon2id */
    assert_false(wx_password_verify("not a hash", pw, strlen(pw)));
    assert_false(wx_password_verify("", pw, strlen(pw)));
}

static void test_default_cost(void **state)
{
    (void)state;
    struct wx_password_cost cost;
    wx_password_cost_default(&cost);
    assert_int_equal(cost.memory_kib, 65536);
    assert_int_equal(cost.iterations, 2);
    assert_int_equal(cost.lanes, 1);
    char h[WX_PASSWORD_HASH_MAX];
    assert_int_equal(wx_password_hash(&cost, "123456", 6, h), 0);
    assert_non_null(strstr(h, "$argon2id$v=19$m=65536,t=2,p=1$")); /* the cost travels */
    assert_true(wx_password_verify(h, "123456", 6));
}

static const struct wx_password_person ZHANG = {.login = "zhangwei88",
                                                .mobile = "13800138000",
                                                .id_number = "11010119900307123X",
                                                .birth_date = "19900307"};

static void login_is(const char *pw, enum wx_password_flaw want)
{
    enum wx_password_flaw got = wx_password_check_login(pw, strlen(pw), &ZHANG);
    if (got != want) fail_msg("login password \"%s\": flaw %d, not %d", pw, got, want);
}

static void test_login_rules(void **state)
{
    (void)state;
    login_is("Sunny-day-42", WX_PW_OK);
    login_is("短密码Ab1!?", WX_PW_OK);       /* 8 characters, four kinds */
    login_is("短密码Ab1!", WX_PW_TOO_SHORT); /* 7 characters (in 13 bytes) */
    login_is("Ab1-xyz", WX_PW_TOO_SHORT);
    login_is("alllowercase1", WX_PW_TOO_SIMPLE);
    login_is("ALLUPPER123", WX_PW_TOO_SIMPLE);
    login_is("NoDigitsHere", WX_PW_TOO_SIMPLE);
    login_is("Pass.zhangwei88", WX_PW_HAS_IDENTITY);
    login_is("x13800138000Y!", WX_PW_HAS_IDENTITY);
    login_is("A!11010119900307123x", WX_PW_HAS_IDENTITY); /* case ignored */
    char longest[WX_PASSWORD_MAX + 2];
    memset(longest, 'a', sizeof longest);
    memcpy(longest, "A1!", 3);
    longest[WX_PASSWORD_MAX] = '\0';
    login_is(longest, WX_PW_OK); /* exactly the limit */
    longest[WX_PASSWORD_MAX] = 'a';
    longest[WX_PASSWORD_MAX + 1] = '\0';
    login_is(longest, WX_PW_TOO_LONG);
    assert_int_equal(wx_password_check_login("Abcdef1\n!", 9, NULL), WX_PW_NOT_TEXT);
    assert_int_equal(wx_password_check_login("Abcd\xff"
                                             "ef1!",
                                             9, NULL),
                     WX_PW_NOT_TEXT);
    assert_int_equal(wx_password_check_login("Abcd\0ef1!", 9, NULL), WX_PW_NOT_TEXT);
    assert_int_equal(wx_password_check_login("Sunny-day-42", 12, NULL), WX_PW_OK);
}

static void txn_is(const char *pw, enum wx_password_flaw want)
{
    enum wx_password_flaw got = wx_password_check_txn(pw, strlen(pw), &ZHANG);
    if (got != want) fail_msg("transaction password \"%s\": flaw %d, not %d", pw, got, want);
}

static void test_transaction_rules(void **state)
{
    (void)state;
    txn_is("385104", WX_PW_OK);
    txn_is("907316", WX_PW_OK);
    const char *weak[] = {"123456", "654321", "111111", "000000", "121212", "123123",
                          "112233", "111222", "987654", "135791", "147258", "520131"};
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
        txn_is(weak[i], WX_PW_WEAK_DIGITS);
    txn_is("900307", WX_PW_BIRTH_DATE);   /* YYMMDD */
    txn_is("030790", WX_PW_BIRTH_DATE);   /* MMDDYY */
    txn_is("070390", WX_PW_BIRTH_DATE);   /* DDMMYY */
    txn_is("138000", WX_PW_HAS_IDENTITY); /* the mobile's last six */
    txn_is("12345", WX_PW_NOT_DIGITS);
    txn_is("1234567", WX_PW_NOT_DIGITS);
    txn_is("12a456", WX_PW_NOT_DIGITS);
    txn_is("１２３４５６", WX_PW_NOT_DIGITS); /* full-width digits are not digits here */
    assert_int_equal(wx_password_check_txn("900307", 6, NULL), WX_PW_OK); /* no one to compare */
    assert_string_equal(wx_password_flaw_text(WX_PW_WEAK_DIGITS, false),
                        "交易密码过于简单（如123456、111111）");
    assert_string_equal(wx_password_flaw_text(WX_PW_BIRTH_DATE, true),
                        "it must not be your birth date");
    assert_string_equal(wx_password_flaw_text((enum wx_password_flaw)99, true),
                        "it holds characters that cannot be used");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_verify),
        cmocka_unit_test(test_default_cost),
        cmocka_unit_test(test_login_rules),
        cmocka_unit_test(test_transaction_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
