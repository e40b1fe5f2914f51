/*
 * test_iso8583.c - the ISO 8583 codec: published vectors decode to exactly their fields and
 * re-encode byte-identical, messages built by the npm iso_8583 peer decode, round trips in
 * every dialect, each kind of malformed input rejected with the right field and mti_read,
 * and the limits just under and just over.
 *
 * The vectors are copied from shared/vectors/iso8583 (see its README for their sources) and
 * from `node iso8583-peer.js sample` (iso_8583@2.6.7), so the test needs neither at run time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iso8583/iso8583.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* This file's folder (tests/unit), to find tests/interop/ from the build directory. */
static char test_dir[512];
#define WX_TEST_DIR test_dir_get()
static const char *test_dir_get(void)
{
    if (test_dir[0] == '\0') {
        snprintf(test_dir, sizeof test_dir, "%s", __FILE__);
        char *slash = strrchr(test_dir, '/');
        if (slash != NULL) *slash = '\0';
    }
    return test_dir;
}

/* One expected field. */
struct fv {
    int n;         /* field number */
    const char *v; /* text value; for b fields, hex */
};

static struct wx_iso_msg msg, msg2; /* large: keep them off the stack */
static uint8_t buf[WX_ISO_MSG_MAX + 64], buf2[WX_ISO_MSG_MAX + 64];

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        char b[3] = {hex[2 * i], hex[2 * i + 1], 0};
        out[i] = (uint8_t)strtoul(b, NULL, 16);
    }
    return n;
}

static int count_fields(const struct wx_iso_msg *m)
{
    int c = 0;
    for (int n = 2; n <= WX_ISO_FIELDS; n++)
        c += wx_iso_has(m, n);
    return c;
}

static void expect_field(const struct wx_iso_msg *m, int n, const char *want)
{
    size_t len;
    const uint8_t *v = wx_iso_get(m, n, &len);
    if (v == NULL) fail_msg("field %d missing", n);
    if (len != strlen(want) || memcmp(v, want, len) != 0) {
        fail_msg("field %d is '%.*s', want '%s'", n, (int)len, (const char *)v, want);
    }
}

/* Decodes wire, checks MTI and exactly the fields listed, re-encodes byte-identical. */
static void check_vector(enum wx_iso_dialect d, const uint8_t *wire, size_t len, unsigned mti,
                         const struct fv *f, int nf)
{
    struct wx_iso_error err;
    if (wx_iso_unpack(d, wire, len, &msg, &err) != 0) {
        fail_msg("unpack failed at field %d: %s", err.field, err.why);
    }
    assert_int_equal(msg.mti, mti);
    assert_int_equal(count_fields(&msg), nf);
    for (int i = 0; i < nf; i++)
        expect_field(&msg, f[i].n, f[i].v);
    size_t out = 0;
    assert_int_equal(wx_iso_pack(d, &msg, buf2, sizeof buf2, &out), 0);
    assert_int_equal(out, len);
    assert_memory_equal(buf2, wire, len);
}

static void check_text_vector(enum wx_iso_dialect d, const char *wire, unsigned mti,
                              const struct fv *f, int nf)
{
    check_vector(d, (const uint8_t *)wire, strlen(wire), mti, f, nf);
}

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_vectors_ascii87(void **state)
{
    (void)state;
    static const struct fv basic[] = {{2, "4242424242424242"}, {3, "123456"}, {4, "000000000100"}};
    check_text_vector(WX_ISO_ASCII87, "01007000000000000000164242424242424242123456000000000100",
                      100, basic, NF(basic));

    static const struct fv net[] = {{7, "0420090613"}, {11, "900001"}, {12, "090613"},
                                    {13, "0420"},      {15, "0420"},   {70, "001"}};
    check_text_vector(WX_ISO_ASCII87,
                      "0800823A0000000000000400000000000000042009061390000109061304200420001", 800,
                      net, NF(net));
    assert_true(wx_iso_has(&msg, 1)); /* the secondary bitmap was on the wire */

    static const struct fv netr[] = {{7, "0420090613"}, {11, "900001"}, {12, "090613"},
                                     {13, "0420"},      {15, "0420"},   {39, "00"},
                                     {70, "001"},       {73, "031128"}};
    check_text_vector(
        WX_ISO_ASCII87,
        "0810823A000002000000048000000000000004200906139000010906130420042000001031128", 810, netr,
        NF(netr));

    static const struct fv fin[] = {{3, "380000"},
                                    {4, "000000000000"},
                                    {7, "0420050805"},
                                    {11, "011392"},
                                    {12, "120805"},
                                    {13, "0420"},
                                    {15, "0422"},
                                    {18, "5132"},
                                    {32, "2000001"},
                                    {37, "000000115604"},
                                    {42, "0800411        "},
                                    {48, "511463331563"},
                                    {49, "360"},
                                    {60, "99"}};
    check_text_vector(WX_ISO_ASCII87,
                      "0200323A40010841801038000000000000000004200508050113921208050420042251"
                      "320720000010000001156040800411        01251146333156336000299",
                      200, fin, NF(fin));

    static const struct fv small[] = {{3, "000010"},  {4, "000000001500"}, {7, "1206041200"},
                                      {11, "000001"}, {41, "12340001"},    {49, "840"}};
    check_text_vector(WX_ISO_ASCII87,
                      "02003220000000808000000010000000001500120604120000000112340001840", 200,
                      small, NF(small));
}

static void test_vector_bcd87_jpos(void **state)
{
    (void)state;
    uint8_t wire[64];
    size_t len = unhex("080020200000008000000000000000013239313130303031", wire, sizeof wire);
    static const struct fv f[] = {{3, "000000"}, {11, "000001"}, {41, "29110001"}};
    check_vector(WX_ISO_BCD87, wire, len, 800, f, NF(f));
}

/* `node iso8583-peer.js sample` (iso_8583@2.6.7), the 2-byte length header removed. */
static const char PEER_0100[] =
    "30313030f23c448128e08000000000000000000031363437363137333930303130313031313930303030"
    "303030303030303030313233343531313237303231333030303030303031313031333030313132373238"
    "313235343131303531303030363432333933353334343736313733393030313031303131393d32383132"
    "323031313735383932383838393533333130323030303030315445524d303030314d45524348414e5430"
    "30303030303141434d452053544f524520202020202020202020202020205348414e4748414920202020"
    "2020434e313536";
static const char PEER_0110[] =
    "30313130f23800010ac08000000000000000000031363437363137333930303130313031313930303030"
    "303030303030303030313233343531313237303231333030303030303031313031333030313132373036"
    "34323339333535333331303230303030303130305445524d303030314d45524348414e54303030303030"
    "31313536";

static void test_vectors_npm_peer(void **state)
{
    (void)state;
    uint8_t wire[512];
    size_t len = unhex(PEER_0100, wire, sizeof wire);
    static const struct fv req[] = {
        {2, "4761739001010119"},
        {3, "000000"},
        {4, "000000012345"},
        {7, "1127021300"},
        {11, "000001"},
        {12, "101300"},
        {13, "1127"},
        {14, "2812"},
        {18, "5411"},
        {22, "051"},
        {25, "00"},
        {32, "423935"},
        {35, "4761739001010119=28122011758928889"},
        {37, "533102000001"},
        {41, "TERM0001"},
        {42, "MERCHANT0000001"},
        {43, "ACME STORE              SHANGHAI      CN"},
        {49, "156"},
    };
    check_vector(WX_ISO_ASCII87B, wire, len, 100, req, NF(req));
    len = unhex(PEER_0110, wire, sizeof wire);
    static const struct fv resp[] = {
        {2, "4761739001010119"},
        {3, "000000"},
        {4, "000000012345"},
        {7, "1127021300"},
        {11, "000001"},
        {12, "101300"},
        {13, "1127"},
        {32, "423935"},
        {37, "533102000001"},
        {39, "00"},
        {41, "TERM0001"},
        {42, "MERCHANT0000001"},
        {49, "156"},
    };
    check_vector(WX_ISO_ASCII87B, wire, len, 110, resp, NF(resp));
}

static const struct fv AUTH[] = {
    {2, "6225880123456789012"}, /* 19 digits: odd, so BCD pads it */
    {3, "000000"},
    {4, "000000012345"},
    {7, "1127021300"},
    {11, "000001"},
    {12, "101300"},
    {13, "1127"},
    {14, "2812"},
    {18, "5411"},
    {22, "051"},
    {25, "00"},
    {32, "423935"},
    {35, "6225880123456789012=28122011758"},
    {37, "533102000001"},
    {41, "TERM0001"},
    {42, "MERCHANT0000001"},
    {43, "ACME STORE              SHANGHAI      CN"},
    {49, "156"},
};

static const struct fv REVERSAL[] = {
    {2, "6225880123456789"},
    {3, "000000"},
    {4, "000000012345"},
    {7, "1127021400"},
    {11, "000002"},
    {32, "423935"},
    {37, "533102000001"},
    {41, "TERM0001"},
    {42, "MERCHANT0000001"},
    {49, "156"},
    {90, "010000000111270213000000042393500000000000"},
    {95, "000000005000000000000000000000000000000000"},
};

static void build(struct wx_iso_msg *m, unsigned mti, const struct fv *f, int nf)
{
    wx_iso_init(m, (uint16_t)mti);
    for (int i = 0; i < nf; i++) {
        if (wx_iso_set_str(m, f[i].n, f[i].v) != 0) fail_msg("set %d rejected", f[i].n);
    }
}

/* Builds (with b fields 52 and 55), packs, unpacks, compares all fields, packs again to the
 * same bytes, in dialect d. Returns the packed length (the message is left in buf). */
static size_t round_trip(enum wx_iso_dialect d, unsigned mti, const struct fv *f, int nf)
{
    static const uint8_t pin[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
    static const uint8_t emv[3] = {0x9F, 0x02, 0x00};
    build(&msg2, mti, f, nf);
    assert_int_equal(wx_iso_set(&msg2, 52, pin, sizeof pin), 0);
    assert_int_equal(wx_iso_set(&msg2, 55, emv, sizeof emv), 0);
    size_t len = 0, len2 = 0;
    assert_int_equal(wx_iso_pack(d, &msg2, buf, sizeof buf, &len), 0);
    struct wx_iso_error err;
    if (wx_iso_unpack(d, buf, len, &msg, &err) != 0) fail_msg("%d: %s", err.field, err.why);
    assert_int_equal(msg.mti, mti);
    assert_int_equal(count_fields(&msg), nf + 2);
    for (int i = 0; i < nf; i++)
        expect_field(&msg, f[i].n, f[i].v);
    size_t bl;
    const uint8_t *b = wx_iso_get(&msg, 52, &bl);
    assert_non_null(b);
    assert_int_equal(bl, 8);
    assert_memory_equal(b, pin, 8);
    b = wx_iso_get(&msg, 55, &bl);
    assert_non_null(b);
    assert_int_equal(bl, 3);
    assert_memory_equal(b, emv, 3);
    assert_int_equal(wx_iso_pack(d, &msg, buf2, sizeof buf2, &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(buf2, buf, len);
    return len;
}

static void test_round_trips(void **state)
{
    (void)state;
    for (int d = 0; d < 3; d++) {
        round_trip((enum wx_iso_dialect)d, 100, AUTH, NF(AUTH));
        round_trip((enum wx_iso_dialect)d, 400, REVERSAL, NF(REVERSAL));
        assert_true(wx_iso_has(&msg, 90));
        assert_true(wx_iso_has(&msg, 95));
    }
    /* ascii87: hex bitmaps, bit 1 set (secondary) for the 0400 only. */
    size_t len = round_trip(WX_ISO_ASCII87, 400, REVERSAL, NF(REVERSAL));
    assert_memory_equal(buf, "0400F", 5);
    assert_true(len > 36);
    len = round_trip(WX_ISO_ASCII87, 100, AUTH, NF(AUTH));
    assert_memory_equal(buf, "01007", 5); /* fields 2,3,4: no secondary bitmap */
    /* ascii87b always writes the secondary bitmap, as the npm package does. */
    round_trip(WX_ISO_ASCII87B, 100, AUTH, NF(AUTH));
    assert_memory_equal(buf, "0100\xF2", 5);
    static const uint8_t zero8[8] = {0};
    assert_memory_equal(buf + 12, zero8, 8);
    /* ascii87 b fields: 52 as 16 hex characters, 55 with an LLL prefix counting bytes. */
    len = round_trip(WX_ISO_ASCII87, 100, AUTH, NF(AUTH));
    assert_non_null(memmem(buf, len, "0123456789ABCDEF0039F0200", 25));
}

/* bcd87 details against jPOS ISO87BPackager: MTI, LLNUM right-padded, n3 left-padded. */
static void test_bcd87_layout(void **state)
{
    (void)state;
    static const struct fv f[] = {{2, "123"}, {22, "051"}, {35, "12=3"}, {41, "T1      "}};
    build(&msg2, 200, f, NF(f));
    size_t len = 0;
    assert_int_equal(wx_iso_pack(WX_ISO_BCD87, &msg2, buf, sizeof buf, &len), 0);
    uint8_t want[64];
    size_t wl = unhex("0200"
                      "4000040020800000"
                      "031230"
                      "0051"
                      "0412D3"
                      "5431202020202020",
                      want, sizeof want);
    assert_int_equal(len, wl);
    assert_memory_equal(buf, want, wl);
    /* A pad nibble of F is accepted on input; 0 is written back. */
    buf[12] = 0x3F;
    struct wx_iso_error err;
    assert_int_equal(wx_iso_unpack(WX_ISO_BCD87, buf, len, &msg, &err), 0);
    expect_field(&msg, 2, "123");
    expect_field(&msg, 35, "12=3");
}

/* Unpacks text in dialect d and expects failure at field with mti_read as given. */
static void reject(enum wx_iso_dialect d, const void *wire, size_t len, int field, bool mti_read,
                   const char *why)
{
    struct wx_iso_error err;
    if (wx_iso_unpack(d, wire, len, &msg, &err) == 0) fail_msg("accepted: %s", why);
    assert_non_null(err.why);
    if (err.field != field || err.mti_read != mti_read || strcmp(err.why, why) != 0) {
        fail_msg("got field %d mti_read %d '%s'; want %d %d '%s'", err.field, err.mti_read, err.why,
                 field, mti_read, why);
    }
}

static void reject_str(const char *wire, int field, bool mti_read, const char *why)
{
    reject(WX_ISO_ASCII87, wire, strlen(wire), field, mti_read, why);
}

static void test_malformed(void **state)
{
    (void)state;
    reject_str("", 0, false, "truncated MTI");
    reject_str("010", 0, false, "truncated MTI");
    reject_str("01A0", 0, false, "MTI not numeric");
    reject_str("01007000", 0, true, "truncated bitmap");
    reject_str("01007000000G00000000", 0, true, "bitmap not hex");
    reject_str("0100C000000000000000", 0, true, "truncated bitmap"); /* secondary missing */
    reject_str("010040000000000000001", 2, true, "truncated length prefix");
    reject_str("01004000000000000000A6", 2, true, "length prefix not numeric");
    reject_str("0100400000000000000020"
               "12345678901234567890",
               2, true, "length over the field's maximum");
    reject_str("010040000000000000001612345", 2, true, "truncated field");
    reject_str("0100200000000000000012345", 3, true, "truncated field");
    reject_str("010020000000000000001234A6", 3, true, "not numeric");
    reject_str("01000000000002000000"
               "0!",
               39, true, "character not allowed in field");
    reject_str("01000000000000800000"
               "TERM\t001",
               41, true, "character not allowed in field");
    reject_str("0100"
               "0000000020000000"
               "05"
               "12:45",
               35, true, "character not allowed in field");
    reject_str("01000000000000001000"
               "0123456789ABCDEZ",
               52, true, "binary field not hex");
    reject_str("01002000000000000000123456X", 0, true, "trailing bytes after the last field");
    reject_str("0100"
               "0000000000000000"
               "0000000000000000",
               0, true,
               "trailing bytes after the last field"); /* bit 1 clear: 16 extra characters */

    /* bcd87: bad digits in the MTI, a numeric field, a prefix; a bad pad nibble. */
    static const uint8_t mti[] = {0x01, 0xA0};
    reject(WX_ISO_BCD87, mti, sizeof mti, 0, false, "MTI not numeric");
    static const uint8_t n3[] = {0x01, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x3A, 0x56};
    reject(WX_ISO_BCD87, n3, sizeof n3, 3, true, "bad BCD digit");
    static const uint8_t pre[] = {0x01, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x1A, 0x12};
    reject(WX_ISO_BCD87, pre, sizeof pre, 2, true, "length prefix not numeric");
    static const uint8_t pad[] = {0x01, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x03, 0x12, 0x35};
    reject(WX_ISO_BCD87, pad, sizeof pad, 2, true, "bad BCD digit");
    static const uint8_t over[] = {0x01, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x20};
    reject(WX_ISO_BCD87, over, sizeof over, 2, true, "length over the field's maximum");
    /* ascii87b: a bitmap shorter than 8 bytes. */
    reject(WX_ISO_ASCII87B, "0100\x70\x00", 6, 0, true, "truncated bitmap");
}

/* A 0100 carrying field 48 (ans...999) with k characters, in ascii87: 4+16+3+k bytes. */
static size_t with_f48(size_t k, const char *prefix)
{
    memcpy(buf,
           "0100"
           "0000000000010000",
           20);
    memcpy(buf + 20, prefix, 3);
    memset(buf + 23, 'x', k);
    return 23 + k;
}

static void test_limits(void **state)
{
    (void)state;
    struct wx_iso_error err;
    /* LLL maximum: 999 accepted, and 54 (an...120): 120 accepted, 121 refused. */
    assert_int_equal(wx_iso_unpack(WX_ISO_ASCII87, buf, with_f48(999, "999"), &msg, &err), 0);
    char v[200];
    memset(v, '1', sizeof v);
    wx_iso_init(&msg2, 110);
    assert_int_equal(wx_iso_set(&msg2, 54, v, 120), 0);
    assert_int_equal(wx_iso_set(&msg2, 54, v, 121), -1);
    memcpy(buf,
           "0100"
           "0000000000000400"
           "121",
           23);
    memset(buf + 23, '1', 121);
    reject(WX_ISO_ASCII87, buf, 23 + 121, 54, true, "length over the field's maximum");
    /* LL maximum: PAN of 19 accepted (set and wire), 20 refused. */
    assert_int_equal(wx_iso_set(&msg2, 2, v, 19), 0);
    assert_int_equal(wx_iso_set(&msg2, 2, v, 20), -1);

    /* WX_ISO_MSG_MAX: a 4096-byte message decodes, one more byte is refused before parsing.
     * Fields 46, 47, 48, 60 (ans...999, full) and 61 make up the size. */
    wx_iso_init(&msg2, 100);
    memset(v, 'a', sizeof v);
    static char big[999];
    memset(big, 'b', sizeof big);
    size_t total = 4 + 32; /* MTI and both hex bitmaps (field 70 brings the secondary) */
    assert_int_equal(wx_iso_set_str(&msg2, 70, "301"), 0);
    total += 3;
    int fields[] = {46, 47, 48, 60};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(wx_iso_set(&msg2, fields[i], big, 999), 0);
        total += 3 + 999;
    }
    size_t rest = WX_ISO_MSG_MAX - total - 3;
    assert_int_equal(wx_iso_set(&msg2, 61, big, rest), 0);
    size_t len = 0;
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, &msg2, buf, sizeof buf, &len), 0);
    assert_int_equal(len, WX_ISO_MSG_MAX);
    assert_int_equal(wx_iso_unpack(WX_ISO_ASCII87, buf, len, &msg, &err), 0);
    assert_int_equal(wx_iso_set(&msg2, 61, big, rest + 1), 0);
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, &msg2, buf, sizeof buf, &len), -1);
    buf[WX_ISO_MSG_MAX] = 'x';
    reject(WX_ISO_ASCII87, buf, WX_ISO_MSG_MAX + 1, 0, false, "message over WX_ISO_MSG_MAX");
    /* Output buffer just big enough, and one byte short. */
    assert_int_equal(wx_iso_set(&msg2, 61, big, rest), 0);
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, &msg2, buf, WX_ISO_MSG_MAX, &len), 0);
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, &msg2, buf, WX_ISO_MSG_MAX - 1, &len), -1);
}

static void test_set_get(void **state)
{
    (void)state;
    wx_iso_init(&msg2, 100);
    assert_int_equal(wx_iso_set_str(&msg2, 3, "00000"), -1);   /* fixed n6: too short */
    assert_int_equal(wx_iso_set_str(&msg2, 3, "0000000"), -1); /* too long */
    assert_int_equal(wx_iso_set_str(&msg2, 3, "00000A"), -1);  /* not numeric */
    assert_int_equal(wx_iso_set_str(&msg2, 39, "0!"), -1);     /* an */
    assert_int_equal(wx_iso_set_str(&msg2, 28, "X00000100"), -1);
    assert_int_equal(wx_iso_set_str(&msg2, 28, "C00000100"), 0);
    assert_int_equal(wx_iso_set_str(&msg2, 1, "x"), -1);
    assert_int_equal(wx_iso_set_str(&msg2, 129, "x"), -1);
    assert_int_equal(wx_iso_set_str(&msg2, 39, "00"), 0);
    assert_int_equal(wx_iso_set_str(&msg2, 39, "05"), 0); /* replaced in place */
    char out[8];
    assert_true(wx_iso_get_str(&msg2, 39, out, sizeof out));
    assert_string_equal(out, "05");
    assert_false(wx_iso_get_str(&msg2, 39, out, 2)); /* no room for the NUL */
    assert_false(wx_iso_get_str(&msg2, 38, out, sizeof out));
    wx_iso_unset(&msg2, 39);
    assert_false(wx_iso_has(&msg2, 39));
    enum wx_iso_dialect d;
    assert_int_equal(wx_iso_dialect_parse("bcd87", &d), 0);
    assert_int_equal(d, WX_ISO_BCD87);
    assert_int_equal(wx_iso_dialect_parse("ascii87b", &d), 0);
    assert_int_equal(d, WX_ISO_ASCII87B);
    assert_int_equal(wx_iso_dialect_parse("ascii87", &d), 0);
    assert_int_equal(d, WX_ISO_ASCII87);
    assert_int_equal(wx_iso_dialect_parse("ASCII87", &d), -1);
    assert_string_equal(wx_iso_dialect_name(WX_ISO_ASCII87B), "ascii87b");
}

static void test_print_masks(void **state)
{
    (void)state;
    build(&msg2, 100, AUTH, NF(AUTH));
    static const uint8_t pin[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(wx_iso_set(&msg2, 52, pin, sizeof pin), 0);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    wx_iso_print(&msg2, f);
    fclose(f);
    assert_non_null(strstr(text, "MTI 0100\n"));
    assert_non_null(strstr(text, "  2  n..19      622588*********9012\n"));
    assert_non_null(strstr(text, " 35  z..37      622588*********9012=***********\n"));
    assert_non_null(strstr(text, " 52  b8         (8 bytes)\n"));
    assert_null(strstr(text, "6225880123456789012"));
    assert_null(strstr(text, "2812201"));
    free(text);
}

/* The installed peer: WX_PEERS_DIR, else "peers" beside this test program. */
static bool find_peer(char *dir, size_t cap)
{
    const char *env = getenv("WX_PEERS_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(dir, cap, "%s", env);
    } else {
        char exe[512];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return false;
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash == NULL) return false;
        *slash = '\0';
        snprintf(dir, cap, "%.500s/peers", exe);
    }
    char probe[700];
    snprintf(probe, sizeof probe, "%s/node_modules/iso_8583/package.json", dir);
    return access(probe, R_OK) == 0;
}

/* The npm iso_8583 decoder reads a 0110 we pack in ascii87b. Skipped without node or peer. */
static void test_interop_npm_decodes_ours(void **state)
{
    (void)state;
    char dir[600];
    if (!find_peer(dir, sizeof dir) || system("command -v node >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP interop: node or the iso_8583 peer is not installed (copy "
                        "shared/peers to <build>/peers and run npm ci there, or set "
                        "WX_PEERS_DIR)\n");
        skip();
    }
    static const struct fv resp[] = {
        {2, "4761739001010119"}, {3, "000000"},  {4, "000000012345"}, {7, "1127021300"},
        {11, "000042"},          {12, "101300"}, {13, "1127"},        {32, "423935"},
        {37, "533102000042"},    {38, "A1B2C3"}, {39, "51"},          {41, "TERM0001"},
        {42, "MERCHANT0000001"}, {49, "156"},
    };
    build(&msg2, 110, resp, NF(resp));
    size_t len = 0;
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87B, &msg2, buf, sizeof buf, &len), 0);
    static char cmd[WX_ISO_MSG_MAX * 2 + 1024];
    int at =
        snprintf(cmd, sizeof cmd, "node '%s/../interop/iso8583_unpack.js' '%s' ", WX_TEST_DIR, dir);
    for (size_t i = 0; i < len; i++)
        at += snprintf(cmd + at, sizeof cmd - (size_t)at, "%02x", buf[i]);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char line[4096];
    char *got = fgets(line, sizeof line, p);
    assert_int_equal(pclose(p), 0);
    assert_non_null(got);
    /* JSON objects list integer keys in ascending order, so the whole line is predictable. */
    char want[1024];
    at = snprintf(want, sizeof want, "{\"0\":\"0110\"");
    for (int i = 0; i < NF(resp); i++) {
        at += snprintf(want + at, sizeof want - (size_t)at, ",\"%d\":\"%s\"", resp[i].n, resp[i].v);
    }
    snprintf(want + at, sizeof want - (size_t)at, "}\n");
    assert_string_equal(line, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_ascii87),  cmocka_unit_test(test_vector_bcd87_jpos),
        cmocka_unit_test(test_vectors_npm_peer), cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_bcd87_layout),     cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),           cmocka_unit_test(test_set_get),
        cmocka_unit_test(test_print_masks),      cmocka_unit_test(test_interop_npm_decodes_ours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
