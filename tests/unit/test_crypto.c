/*
 * test_crypto.c - HMAC against RFC 4231, the keyed HMAC context against the one-shot,
 * AES-256-GCM round trips and tamper detection, hex and key parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/crypto.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

static void hex_to(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    assert_int_equal(wx_hex_decode(hex, strlen(hex), out, cap, &n), 0);
    assert_int_equal(n, strlen(hex) / 2);
}

/* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". */
static void test_hmac_rfc4231_case2(void **state)
{
    (void)state;
    uint8_t want[32], got[32];
    hex_to("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
    const char *msg = "what do ya want for nothing?";
    wx_hmac_sha256((const uint8_t *)"Jefe", 4, msg, strlen(msg), got);
    assert_memory_equal(got, want, 32);

    wx_hmac_key_t *k = wx_hmac_key_new((const uint8_t *)"Jefe", 4);
    memset(got, 0, 32);
    wx_hmac_key_digest(k, msg, strlen(msg), got);
    assert_memory_equal(got, want, 32);
    /* The context is reusable: a second digest gives the same answer. */
    memset(got, 0, 32);
    wx_hmac_key_digest(k, msg, strlen(msg), got);
    assert_memory_equal(got, want, 32);
    wx_hmac_key_free(k);
}

/* RFC 4231 test case 6: a 131-byte key (longer than a block, so it is hashed first). */
static void test_hmac_rfc4231_case6_long_key(void **state)
{
    (void)state;
    uint8_t key[131], want[32], got[32];
    memset(key, 0xaa, sizeof key);
    hex_to("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", want, 32);
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    wx_hmac_sha256(key, sizeof key, msg, strlen(msg), got);
    assert_memory_equal(got, want, 32);
}

static void test_sha256_and_kdf(void **state)
{
    (void)state;
    uint8_t want[32], got[32], master[32] = {0}, a[32], b[32];
    hex_to("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
    wx_sha256("abc", 3, got);
    assert_memory_equal(got, want, 32);

    wx_kdf(master, "pan-index", a);
    wx_kdf(master, "pan-seal", b);
    assert_memory_not_equal(a, b, 32);
    wx_hmac_sha256(master, 32, "pan-index", 9, got);
    assert_memory_equal(a, got, 32);
}

static void test_hmac_key_speed(void **state)
{
    (void)state;
    uint8_t key[32], out[32], msg[16] = {0};
    wx_random_bytes(key, sizeof key);
    wx_hmac_key_t *k = wx_hmac_key_new(key, sizeof key);
    enum { N = 200000 };
    int64_t t0 = wx_mono_us();
    for (int i = 0; i < N; i++) {
        msg[0] = (uint8_t)i;
        wx_hmac_key_digest(k, msg, sizeof msg, out);
    }
    int64_t t1 = wx_mono_us();
    wx_hmac_key_free(k);
    /* Printed for the record, not asserted: timings depend on the machine and sanitizers. */
    printf("hmac_key_digest: %.0f ns per 16-byte message\n", (double)(t1 - t0) * 1000.0 / N);
}

static void test_seal_open_round_trip(void **state)
{
    (void)state;
    uint8_t key[32], sealed[64], plain[64];
    size_t slen = 0, plen = 0;
    const char *pan = "6225880123456789";
    wx_random_bytes(key, sizeof key);
    assert_int_equal(wx_seal(key, pan, 16, sealed, sizeof sealed, &slen), 0);
    assert_int_equal(slen, 16 + WX_SEAL_OVERHEAD);
    assert_int_equal(wx_open(key, sealed, slen, plain, sizeof plain, &plen), 0);
    assert_int_equal(plen, 16);
    assert_memory_equal(plain, pan, 16);

    /* A fresh IV each time: sealing the same text twice gives different bytes. */
    uint8_t again[64];
    size_t alen = 0;
    assert_int_equal(wx_seal(key, pan, 16, again, sizeof again, &alen), 0);
    assert_memory_not_equal(again, sealed, alen);

    /* Empty plaintext works too. */
    assert_int_equal(wx_seal(key, "", 0, sealed, sizeof sealed, &slen), 0);
    assert_int_equal(slen, WX_SEAL_OVERHEAD);
    assert_int_equal(wx_open(key, sealed, slen, plain, sizeof plain, &plen), 0);
    assert_int_equal(plen, 0);
}

static void test_open_detects_tampering(void **state)
{
    (void)state;
    uint8_t key[32], sealed[64], plain[64];
    size_t slen = 0, plen = 0;
    wx_random_bytes(key, sizeof key);
    assert_int_equal(wx_seal(key, "secret", 6, sealed, sizeof sealed, &slen), 0);
    /* Flip one bit in each byte in turn: IV, ciphertext and tag are all covered. */
    for (size_t i = 0; i < slen; i++) {
        sealed[i] ^= 0x01;
        assert_int_equal(wx_open(key, sealed, slen, plain, sizeof plain, &plen), WX_CRYPTO_EAUTH);
        sealed[i] ^= 0x01;
    }
    /* The wrong key fails; so does a truncated message. */
    uint8_t other[32];
    memcpy(other, key, 32);
    other[0] ^= 0x80;
    assert_int_equal(wx_open(other, sealed, slen, plain, sizeof plain, &plen), WX_CRYPTO_EAUTH);
    assert_int_equal(wx_open(key, sealed, WX_SEAL_OVERHEAD - 1, plain, sizeof plain, &plen),
                     WX_CRYPTO_EAUTH);
    assert_int_equal(wx_open(key, sealed, slen - 1, plain, sizeof plain, &plen), WX_CRYPTO_EAUTH);
    assert_int_equal(wx_open(key, sealed, slen, plain, sizeof plain, &plen), 0);
}

static void test_seal_buffer_limits(void **state)
{
    (void)state;
    uint8_t key[32] = {1}, sealed[64], plain[8];
    size_t slen = 0, plen = 0;
    /* Just fits, and one byte short. */
    assert_int_equal(wx_seal(key, "12345678", 8, sealed, 8 + WX_SEAL_OVERHEAD, &slen), 0);
    assert_int_equal(wx_seal(key, "12345678", 8, sealed, 8 + WX_SEAL_OVERHEAD - 1, &slen),
                     WX_CRYPTO_ESPACE);
    assert_int_equal(wx_open(key, sealed, slen, plain, 8, &plen), 0);
    assert_int_equal(wx_open(key, sealed, slen, plain, 7, &plen), WX_CRYPTO_ESPACE);
}

static void test_hex_and_keys(void **state)
{
    (void)state;
    uint8_t bytes[4] = {0x00, 0xab, 0x7f, 0xff}, back[4];
    char hex[9];
    size_t n = 0;
    assert_int_equal(wx_hex_encode(bytes, 4, hex, sizeof hex), 8);
    assert_string_equal(hex, "00ab7fff");
    assert_int_equal(wx_hex_decode("00AB7fFF", 8, back, sizeof back, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(back, bytes, 4);
    assert_int_equal(wx_hex_decode("abc", 3, back, sizeof back, &n), WX_CRYPTO_EFORMAT);
    assert_int_equal(wx_hex_decode("zz", 2, back, sizeof back, &n), WX_CRYPTO_EFORMAT);
    assert_int_equal(wx_hex_decode("0011223344", 10, back, sizeof back, &n), WX_CRYPTO_ESPACE);

    uint8_t key[32];
    char text[80];
    memset(text, 'a', 64);
    text[64] = '\0';
    assert_int_equal(wx_key_parse(text, key), 0);
    assert_int_equal(key[31], 0xaa);
    text[64] = '\n';
    text[65] = '\0';
    assert_int_equal(wx_key_parse(text, key), 0);
    text[63] = '\0'; /* 63 characters: one short */
    assert_int_equal(wx_key_parse(text, key), WX_CRYPTO_EFORMAT);
    memset(text, 'a', 65); /* 65 characters: one over */
    text[65] = '\0';
    assert_int_equal(wx_key_parse(text, key), WX_CRYPTO_EFORMAT);
    memset(text, 'a', 64);
    text[10] = 'g';
    text[64] = '\0';
    assert_int_equal(wx_key_parse(text, key), WX_CRYPTO_EFORMAT);
}

static void test_ct_equal_and_wipe(void **state)
{
    (void)state;
    uint8_t a[16] = {1, 2, 3}, b[16] = {1, 2, 3}, zero[16] = {0};
    assert_true(wx_ct_equal(a, b, 16));
    b[15] = 1;
    assert_false(wx_ct_equal(a, b, 16));
    wx_wipe(a, sizeof a);
    assert_memory_equal(a, zero, 16);
    uint8_t r1[32], r2[32];
    wx_random_bytes(r1, 32);
    wx_random_bytes(r2, 32);
    assert_memory_not_equal(r1, r2, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231_case2),
        cmocka_unit_test(test_hmac_rfc4231_case6_long_key),
        cmocka_unit_test(test_sha256_and_kdf),
        cmocka_unit_test(test_hmac_key_speed),
        cmocka_unit_test(test_seal_open_round_trip),
        cmocka_unit_test(test_open_detects_tampering),
        cmocka_unit_test(test_seal_buffer_limits),
        cmocka_unit_test(test_hex_and_keys),
        cmocka_unit_test(test_ct_equal_and_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
