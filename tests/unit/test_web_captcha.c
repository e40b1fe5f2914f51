/*
 * test_web_captcha.c - graphic CAPTCHAs (src/web/captcha.c): answers from the alphabet
 * without look-alikes and without modulo bias, pictures that are valid 160x60 PNGs with ink
 * on them and that a seed reproduces byte for byte, refusal of bad answers and of a missing
 * font, and the case-insensitive keyed hash.
 *
 * The .c is included (as h2o's unit tests do) to reach captcha_render_font and so test a
 * missing font without touching the system's fonts.
 *
 * With WX_CAPTCHA_SAMPLE set in the environment, one picture is also written to
 * /tmp/captcha-sample.png for a person to look at.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/captcha.c"

#define SAMPLE_PATH "/tmp/captcha-sample.png"
#define PNG_SIG_LEN 8
#define IHDR_AT     8 /* the first chunk: length(4) type(4) width(4) height(4) ... */

/* Draws of wx_captcha_new_answer for the uniformity test: 18 bins of 10,000 characters. */
#define UNIFORM_ANSWERS 36000
/*
 * Chi-square with 17 degrees of freedom exceeds 60 with probability about 1e-6 for a fair
 * draw; plain `byte % 18` (4 letters at 15/256, 14 at 14/256) scores about 150 here.
 */
#define CHI2_LIMIT 60.0

/* Dark pixels (every channel below this) in a picture: text, lines and speckle. */
#define DARK_BELOW     128
#define DARK_SHARE_MIN 0.05
#define DARK_SHARE_MAX 0.40

static void test_answer_alphabet(void **state)
{
    (void)state;
    const char *lookalikes = "0OD1IL72Z5S8B6GUV";
    for (const char *c = lookalikes; *c != '\0'; c++) {
        if (strchr(WX_CAPTCHA_ALPHABET, *c) != NULL) fail_msg("'%c' is in the alphabet", *c);
    }
    for (const char *c = WX_CAPTCHA_ALPHABET; *c != '\0'; c++) {
        if (strchr(c + 1, *c) != NULL) fail_msg("'%c' twice in the alphabet", *c);
        assert_true((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'));
    }
}

static void test_answer_fresh(void **state)
{
    (void)state;
    char first[WX_CAPTCHA_LEN + 1];
    wx_captcha_new_answer(first);
    bool varied = false;
    for (int i = 0; i < 100; i++) {
        char a[WX_CAPTCHA_LEN + 1];
        memset(a, 'x', sizeof a);
        wx_captcha_new_answer(a);
        assert_int_equal(strlen(a), WX_CAPTCHA_LEN);
        assert_true(answer_valid(a));
        if (strcmp(a, first) != 0) varied = true;
    }
    assert_true(varied);
}

static void test_answer_uniform(void **state)
{
    (void)state;
    long count[ALPHABET_LEN] = {0};
    for (int i = 0; i < UNIFORM_ANSWERS; i++) {
        char a[WX_CAPTCHA_LEN + 1];
        wx_captcha_new_answer(a);
        for (int k = 0; k < WX_CAPTCHA_LEN; k++) {
            const char *at = strchr(WX_CAPTCHA_ALPHABET, a[k]);
            assert_non_null(at);
            count[at - WX_CAPTCHA_ALPHABET]++;
        }
    }
    double expected = (double)UNIFORM_ANSWERS * WX_CAPTCHA_LEN / ALPHABET_LEN;
    double chi2 = 0;
    for (int b = 0; b < ALPHABET_LEN; b++) {
        chi2 += (count[b] - expected) * (count[b] - expected) / expected;
    }
    if (chi2 > CHI2_LIMIT) fail_msg("chi-square %.1f over %d letters", chi2, ALPHABET_LEN);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the PNG signature and IHDR, then decodes it and checks there is ink but not only. */
static void assert_captcha_png(const struct wx_captcha_image *img)
{
    static const uint8_t sig[PNG_SIG_LEN] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_non_null(img->png);
    assert_true(img->len > IHDR_AT + 16);
    assert_memory_equal(img->png, sig, PNG_SIG_LEN);
    assert_memory_equal(img->png + IHDR_AT + 4, "IHDR", 4);
    assert_int_equal(be32(img->png + IHDR_AT + 8), WX_CAPTCHA_WIDTH);
    assert_int_equal(be32(img->png + IHDR_AT + 12), WX_CAPTCHA_HEIGHT);

    gdImagePtr im = gdImageCreateFromPngPtr((int)img->len, img->png);
    assert_non_null(im);
    int dark = 0;
    for (int y = 0; y < WX_CAPTCHA_HEIGHT; y++) {
        for (int x = 0; x < WX_CAPTCHA_WIDTH; x++) {
            int p = gdImageGetTrueColorPixel(im, x, y);
            if (gdTrueColorGetRed(p) < DARK_BELOW && gdTrueColorGetGreen(p) < DARK_BELOW &&
                gdTrueColorGetBlue(p) < DARK_BELOW) {
                dark++;
            }
        }
    }
    gdImageDestroy(im);
    double share = (double)dark / (WX_CAPTCHA_WIDTH * WX_CAPTCHA_HEIGHT);
    if (share < DARK_SHARE_MIN || share > DARK_SHARE_MAX) fail_msg("dark share %.3f", share);
}

static bool same_image(const struct wx_captcha_image *a, const struct wx_captcha_image *b)
{
    return a->len == b->len && memcmp(a->png, b->png, a->len) == 0;
}

static void test_render_png(void **state)
{
    (void)state;
    struct wx_captcha_image img;
    for (uint64_t seed = 0; seed < 20; seed++) {
        char answer[WX_CAPTCHA_LEN + 1];
        wx_captcha_new_answer(answer);
        assert_int_equal(wx_captcha_render(answer, seed * 0x9e3779b97f4a7c15u, &img), 0);
        assert_captcha_png(&img);
        wx_captcha_image_free(&img);
        assert_null(img.png);
        assert_int_equal(img.len, 0);
    }
    /* Every character of the alphabet draws (the font has them all). */
    assert_int_equal(wx_captcha_render("ACEFH", 1, &img), 0);
    assert_captcha_png(&img);
    wx_captcha_image_free(&img);
    assert_int_equal(wx_captcha_render("JKMNP", 2, &img), 0);
    wx_captcha_image_free(&img);
    assert_int_equal(wx_captcha_render("RTWXY", 3, &img), 0);
    wx_captcha_image_free(&img);
    assert_int_equal(wx_captcha_render("34949", 4, &img), 0);
    wx_captcha_image_free(&img);
    wx_captcha_image_free(NULL);

    const char *path = getenv("WX_CAPTCHA_SAMPLE") != NULL ? SAMPLE_PATH : NULL;
    if (path != NULL) {
        char answer[WX_CAPTCHA_LEN + 1];
        uint64_t seed;
        wx_captcha_new_answer(answer);
        wx_random_bytes(&seed, sizeof seed);
        assert_int_equal(wx_captcha_render(answer, seed, &img), 0);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(img.png, 1, img.len, f), img.len);
        assert_int_equal(fclose(f), 0);
        print_message("wrote %s: %s\n", path, answer);
        wx_captcha_image_free(&img);
    }
}

static void test_render_deterministic(void **state)
{
    (void)state;
    struct wx_captcha_image a, b, other_seed, other_answer;
    assert_int_equal(wx_captcha_render("ACE3K", 42, &a), 0);
    assert_int_equal(wx_captcha_render("ACE3K", 42, &b), 0);
    assert_int_equal(wx_captcha_render("ACE3K", 43, &other_seed), 0);
    assert_int_equal(wx_captcha_render("ACE3M", 42, &other_answer), 0);
    assert_true(same_image(&a, &b));
    assert_false(same_image(&a, &other_seed));
    assert_false(same_image(&a, &other_answer));
    wx_captcha_image_free(&a);
    wx_captcha_image_free(&b);
    wx_captcha_image_free(&other_seed);
    wx_captcha_image_free(&other_answer);
}

static void refused(const char *answer)
{
    struct wx_captcha_image img = {.png = (uint8_t *)"junk", .len = 4};
    if (wx_captcha_render(answer, 7, &img) != -1) fail_msg("\"%s\" was drawn", answer);
    assert_null(img.png);
    assert_int_equal(img.len, 0);
}

static void test_render_refuses(void **state)
{
    (void)state;
    refused(NULL);
    refused("");
    refused("ACE3");   /* one short */
    refused("ACE3KM"); /* one long */
    refused("ACE0K");  /* a look-alike */
    refused("ACEOK");
    refused("ACE K");
    refused("ace3k"); /* the renderer takes the canonical, upper-case answer */
    refused("ACE3k");
    refused("ACE3\xc3");
    char padded[] = "ACE3K\0\0";
    padded[5] = 'A';
    refused(padded);
}

static void test_render_missing_font(void **state)
{
    (void)state;
    struct wx_captcha_image img;
    assert_int_equal(captcha_render_font("/nonexistent/font.ttc", "ACE3K", 1, &img), -1);
    assert_null(img.png);
    assert_int_equal(captcha_render_font("/dev/null", "ACE3K", 1, &img), -1);
    assert_null(img.png);
    /* The real font still works afterwards. */
    assert_int_equal(wx_captcha_render("ACE3K", 1, &img), 0);
    wx_captcha_image_free(&img);
}

static void hash_of(const uint8_t key[32], const char *answer, uint8_t out[32])
{
    wx_captcha_answer_hash(key, answer, strlen(answer), out);
}

static void test_answer_hash(void **state)
{
    (void)state;
    uint8_t key[WX_KEY_LEN], key2[WX_KEY_LEN];
    memset(key, 0x11, sizeof key);
    memset(key2, 0x22, sizeof key2);
    uint8_t upper[32], lower[32], mixed[32], other[32], rekeyed[32], want[32];
    hash_of(key, "ACE3K", upper);
    hash_of(key, "ace3k", lower);
    hash_of(key, "aCe3K", mixed);
    hash_of(key, "ACE3M", other);
    hash_of(key2, "ACE3K", rekeyed);
    assert_memory_equal(upper, lower, 32);
    assert_memory_equal(upper, mixed, 32);
    assert_memory_not_equal(upper, other, 32);
    assert_memory_not_equal(upper, rekeyed, 32);
    wx_hmac_sha256(key, sizeof key, "ACE3K", 5, want); /* the stored form is exactly this */
    assert_memory_equal(upper, want, 32);

    /* Only ASCII is folded: é (C3 A9) and É (C3 89) stay apart; "" has a hash too. */
    hash_of(key, "\xc3\xa9", lower);
    hash_of(key, "\xc3\x89", upper);
    assert_memory_not_equal(upper, lower, 32);
    hash_of(key, "", upper);
    wx_hmac_sha256(key, sizeof key, "", 0, want);
    assert_memory_equal(upper, want, 32);

    /* Just under, at and over the stack buffer, and far over: the heap copy. */
    size_t lens[] = {HASH_STACK_LEN - 1, HASH_STACK_LEN, HASH_STACK_LEN + 1, 5000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *lo = wx_malloc(lens[i]), *up = wx_malloc(lens[i]);
        for (size_t k = 0; k < lens[i]; k++) {
            lo[k] = (char)('a' + k % 26);
            up[k] = (char)('A' + k % 26);
        }
        wx_captcha_answer_hash(key, lo, lens[i], lower);
        wx_hmac_sha256(key, sizeof key, up, lens[i], want);
        assert_memory_equal(lower, want, 32);
        free(lo);
        free(up);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_alphabet),      cmocka_unit_test(test_answer_fresh),
        cmocka_unit_test(test_answer_uniform),       cmocka_unit_test(test_render_png),
        cmocka_unit_test(test_render_deterministic), cmocka_unit_test(test_render_refuses),
        cmocka_unit_test(test_render_missing_font),  cmocka_unit_test(test_answer_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
