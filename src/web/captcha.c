/*
 * captcha.c - graphic CAPTCHAs: fresh answers from the OS RNG, their pictures, and the keyed
 * hash under which an answer is stored.
 *
 * The login and sensitive-action pages show a CAPTCHA so that a script cannot guess passwords
 * at the speed of a loop. The picture is drawn with libgd and FreeType: each glyph of the
 * answer in its own dark colour, size, angle and height, packed so that neighbours touch,
 * over a light noisy gradient; the whole image is then warped by a sine wave, crossed by
 * lines in the same dark colours as the text, and speckled. Each step defeats a cheap attack
 * (fixed positions, colour thresholds, connected-component segmentation) while a person still
 * reads five characters drawn from an alphabet without look-alikes.
 *
 * Every random choice of the picture comes from a small PRNG seeded by the caller, so that a
 * seed draws byte-identical PNGs (for tests); production passes fresh random bits. The answer
 * itself always comes from the OS RNG.
 */
#include "web/web.h"

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gd.h>

/*
 * WenQuanYi Micro Hei (Debian package fonts-wqy-microhei, a dependency of wxbank): the font
 * the pages already use for Chinese, whose Latin capitals and digits are plain and legible.
 * Face 0 of the collection is the proportional one.
 */
#define CAPTCHA_FONT_PATH "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

#define ALPHABET_LEN ((int)sizeof WX_CAPTCHA_ALPHABET - 1)
static_assert(ALPHABET_LEN > 1 && ALPHABET_LEN <= 256, "the alphabet must fit a byte");
/* Random bytes at or above this would favour the first letters (256 is not a multiple). */
#define ANSWER_ACCEPT_BELOW (256 / ALPHABET_LEN * ALPHABET_LEN)

/* FreeType sizes are points; at 72 dpi a point is a pixel, so sizes below are pixels. */
#define FONT_DPI 72

/* The glyphs: size (em, pixels), turn, vertical jitter, and how much neighbours overlap. */
#define GLYPH_PX_MIN       28.0
#define GLYPH_PX_MAX       36.0
#define GLYPH_TURN_MAX_DEG 25.0
#define GLYPH_DY_MAX       5 /* pixels above or below the middle line */
#define GLYPH_OVERLAP_MIN  1 /* pixels each glyph slides under the previous one */
#define GLYPH_OVERLAP_MAX  3
#define GLYPH_BOLD_PX      1 /* each glyph is drawn twice this far apart: thin strokes break */
#define ROW_DX_MAX         4 /* pixels the whole row moves off the centre */
#define ROW_MARGIN         6 /* pixels kept clear at each side */
#define ROW_WIDTH_MAX      (WX_CAPTCHA_WIDTH - 2 * ROW_MARGIN - 2 * ROW_DX_MAX)
#define ROW_FIT_TRIES      3   /* measure-and-shrink rounds; the second nearly always fits */
#define INK_CHANNEL_MAX    110 /* text and lines: each of R, G, B at most this dark */

/* The background: a gradient between two light colours, plus per-pixel noise. */
#define PAPER_CHANNEL_MIN 205
#define PAPER_CHANNEL_MAX 250
#define PAPER_NOISE       10 /* +- per channel and pixel */

/* The wave: x moves with y (bends columns), y moves with x (bends the baseline). */
#define WAVE_X_AMP_MIN    2.0 /* pixels */
#define WAVE_X_AMP_MAX    3.5
#define WAVE_X_PERIOD_MIN 45.0 /* pixels of y per full wave */
#define WAVE_X_PERIOD_MAX 80.0
#define WAVE_Y_AMP_MIN    1.0
#define WAVE_Y_AMP_MAX    2.5
#define WAVE_Y_PERIOD_MIN 60.0
#define WAVE_Y_PERIOD_MAX 120.0

/* Crossing lines: from the left edge to the right edge through the text band. */
#define LINES_MIN       2
#define LINES_MAX       3
#define LINE_EDGE       12 /* pixels from the side where a line may start or end */
#define LINE_BAND       16 /* pixels from top and bottom that line ends keep out of */
#define LINE_SEGMENTS   24 /* straight pieces that approximate one curve */
#define LINE_THICK_PX   2  /* a thick line; the others are one pixel */
#define LINE_THICK_1    3  /* one line in this many is thick */
#define LINE_STRAIGHT_1 3  /* one line in this many is straight, the rest are curves */

/* Speckle: single pixels, dark or light, about 4 % of the picture. */
#define SPECKLE_DOTS 400

#define TWO_PI (2.0 * M_PI)
#define DEG    (M_PI / 180.0)

/* splitmix64 (Steele, Lea, Flood 2014): tiny, any seed is good, and it is not our secret. */
struct captcha_rng {
    uint64_t state; /* advanced by a fixed odd constant per draw */
};

static uint64_t rng_next(struct captcha_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A double in [lo, hi) from the top 53 bits of a draw. */
static double rng_between(struct captcha_rng *r, double lo, double hi)
{
    double unit = (double)(rng_next(r) >> 11) * 0x1.0p-53;
    return lo + (hi - lo) * unit;
}

/* An int in [lo, hi]; the bias of scaling a 53-bit fraction is far below what a picture shows. */
static int rng_int(struct captcha_rng *r, int lo, int hi)
{
    assert(lo <= hi);
    int v = lo + (int)rng_between(r, 0.0, (double)(hi - lo + 1));
    return v > hi ? hi : v;
}

static int rng_ink(struct captcha_rng *r)
{
    return gdTrueColor(rng_int(r, 0, INK_CHANNEL_MAX), rng_int(r, 0, INK_CHANNEL_MAX),
                       rng_int(r, 0, INK_CHANNEL_MAX));
}

static int clamp_channel(int v)
{
    return v < 0 ? 0 : v > UCHAR_MAX ? UCHAR_MAX : v;
}

void wx_captcha_new_answer(char out[WX_CAPTCHA_LEN + 1])
{
    assert(out != NULL);
    uint8_t pool[2 * WX_CAPTCHA_LEN]; /* a refill seldom happens: 4 bytes in 256 are refused */
    size_t used = sizeof pool;
    int n = 0;
    while (n < WX_CAPTCHA_LEN) {
        if (used == sizeof pool) {
            wx_random_bytes(pool, sizeof pool);
            used = 0;
        }
        uint8_t b = pool[used++];
        if (b < ANSWER_ACCEPT_BELOW) out[n++] = WX_CAPTCHA_ALPHABET[b % ALPHABET_LEN];
    }
    out[WX_CAPTCHA_LEN] = '\0';
    wx_wipe(pool, sizeof pool);
}

/* Whether answer is exactly WX_CAPTCHA_LEN characters of the (upper-case) alphabet. */
static bool answer_valid(const char *answer)
{
    if (strnlen(answer, WX_CAPTCHA_LEN + 1) != WX_CAPTCHA_LEN) return false;
    for (int i = 0; i < WX_CAPTCHA_LEN; i++) {
        if (memchr(WX_CAPTCHA_ALPHABET, answer[i], ALPHABET_LEN) == NULL) return false;
    }
    return true;
}

/* One glyph as planned before drawing. */
struct glyph {
    char text[2];  /* the character and a NUL, as FreeType drawing wants a string */
    double px;     /* em size in pixels */
    double turn;   /* radians, counter-clockwise */
    int ink;       /* truecolor */
    int overlap;   /* pixels this glyph slides under the one before (0 for the first) */
    int dy;        /* pixels below (or above) the middle line */
    int width;     /* the turned ink box's width, pixels: what the layout advances by */
    int centre_dx; /* from the drawing origin to the turned ink box's centre */
    int centre_dy;
    int x; /* the drawing origin chosen by the layout */
    int y;
};

/*
 * Measures g's turned ink box (libgd draws nothing when given no image) into its width and
 * centre. Returns 0, or -1 when FreeType or the font fails (logged here).
 */
static int glyph_measure(const char *font, struct glyph *g)
{
    gdFTStringExtra extra = {.flags = gdFTEX_RESOLUTION, .hdpi = FONT_DPI, .vdpi = FONT_DPI};
    int box[8]; /* corners: lower left, lower right, upper right, upper left (x, y) */
    char *err = gdImageStringFTEx(NULL, box, 0, font, g->px, g->turn, 0, 0, g->text, &extra);
    if (err != NULL) {
        WX_ERROR("captcha: font %s: %s", font, err);
        return -1;
    }
    int left = box[0], right = box[0];
    for (int k = 2; k < 8; k += 2) {
        left = box[k] < left ? box[k] : left;
        right = box[k] > right ? box[k] : right;
    }
    g->width = right - left;
    g->centre_dx = (box[0] + box[2] + box[4] + box[6]) / 4;
    g->centre_dy = (box[1] + box[3] + box[5] + box[7]) / 4;
    return 0;
}

/*
 * Measures every glyph and, while the row is wider than the picture allows (big, wide and
 * much turned glyphs together), shrinks them all in proportion. Returns the row's width, or
 * -1 if the font fails.
 */
static int glyphs_fit(const char *font, struct glyph g[WX_CAPTCHA_LEN])
{
    int row_width = 0;
    for (int tries = 0; tries < ROW_FIT_TRIES; tries++) {
        row_width = 0;
        for (int i = 0; i < WX_CAPTCHA_LEN; i++) {
            if (glyph_measure(font, &g[i]) != 0) return -1;
            row_width += g[i].width - g[i].overlap;
        }
        if (row_width <= ROW_WIDTH_MAX) break;
        double shrink = (double)ROW_WIDTH_MAX / row_width;
        for (int i = 0; i < WX_CAPTCHA_LEN; i++)
            g[i].px *= shrink;
    }
    return row_width;
}

/*
 * Chooses each glyph's size, turn, colour, overlap and height, fits the row to the picture,
 * and lays it out: centred with a little jitter, each glyph sliding a few pixels under the
 * one before so that the characters cannot be cut apart at empty columns. Returns 0, or -1
 * if the font fails.
 */
static int glyphs_plan(const char *font, const char *answer, struct captcha_rng *rng,
                       struct glyph g[WX_CAPTCHA_LEN])
{
    for (int i = 0; i < WX_CAPTCHA_LEN; i++) {
        g[i] = (struct glyph){.text = {answer[i], '\0'}};
        g[i].px = rng_between(rng, GLYPH_PX_MIN, GLYPH_PX_MAX);
        g[i].turn = rng_between(rng, -GLYPH_TURN_MAX_DEG, GLYPH_TURN_MAX_DEG) * DEG;
        g[i].ink = rng_ink(rng);
        g[i].overlap = i == 0 ? 0 : rng_int(rng, GLYPH_OVERLAP_MIN, GLYPH_OVERLAP_MAX);
        g[i].dy = rng_int(rng, -GLYPH_DY_MAX, GLYPH_DY_MAX);
    }
    int row_width = glyphs_fit(font, g);
    if (row_width < 0) return -1;
    int cursor = (WX_CAPTCHA_WIDTH - row_width) / 2 + rng_int(rng, -ROW_DX_MAX, ROW_DX_MAX);
    for (int i = 0; i < WX_CAPTCHA_LEN; i++) {
        cursor -= g[i].overlap;
        g[i].x = cursor + g[i].width / 2 - g[i].centre_dx;
        g[i].y = WX_CAPTCHA_HEIGHT / 2 + g[i].dy - g[i].centre_dy;
        cursor += g[i].width;
    }
    return 0;
}

/* Fills im with a gradient between two light colours along a random direction, plus noise. */
static void paint_paper(gdImagePtr im, struct captcha_rng *rng)
{
    int from[3], to[3];
    for (int c = 0; c < 3; c++) {
        from[c] = rng_int(rng, PAPER_CHANNEL_MIN, PAPER_CHANNEL_MAX);
        to[c] = rng_int(rng, PAPER_CHANNEL_MIN, PAPER_CHANNEL_MAX);
    }
    double dir = rng_between(rng, 0.0, TWO_PI);
    double ux = cos(dir), uy = sin(dir);
    /* Project every pixel on the direction; normalize by the extremes to span 0..1. */
    double span = fabs(ux) * (WX_CAPTCHA_WIDTH - 1) + fabs(uy) * (WX_CAPTCHA_HEIGHT - 1);
    double low = fmin(0.0, ux * (WX_CAPTCHA_WIDTH - 1)) + fmin(0.0, uy * (WX_CAPTCHA_HEIGHT - 1));
    for (int y = 0; y < WX_CAPTCHA_HEIGHT; y++) {
        for (int x = 0; x < WX_CAPTCHA_WIDTH; x++) {
            double t = (ux * x + uy * y - low) / span;
            int rgb[3];
            for (int c = 0; c < 3; c++) {
                int noise = rng_int(rng, -PAPER_NOISE, PAPER_NOISE);
                rgb[c] = clamp_channel((int)lround(from[c] + (to[c] - from[c]) * t) + noise);
            }
            im->tpixels[y][x] = gdTrueColor(rgb[0], rgb[1], rgb[2]);
        }
    }
}

/*
 * Draws the planned glyphs, anti-aliased and blended over the paper, each twice a pixel
 * apart: the font's regular weight is thin at this size, and its strokes would break under
 * the warp's resampling and the crossing lines. Returns 0, or -1 (logged).
 */
static int draw_glyphs(gdImagePtr im, const char *font, const struct glyph g[WX_CAPTCHA_LEN])
{
    gdFTStringExtra extra = {.flags = gdFTEX_RESOLUTION, .hdpi = FONT_DPI, .vdpi = FONT_DPI};
    int brect[8];
    for (int i = 0; i < WX_CAPTCHA_LEN; i++) {
        for (int dx = 0; dx <= GLYPH_BOLD_PX; dx += GLYPH_BOLD_PX) {
            char *err = gdImageStringFTEx(im, brect, g[i].ink, font, g[i].px, g[i].turn,
                                          g[i].x + dx, g[i].y, g[i].text, &extra);
            if (err != NULL) {
                WX_ERROR("captcha: font %s: %s", font, err);
                return -1;
            }
        }
    }
    return 0;
}

/* The colour of src at a fractional position, interpolated between its four neighbours. */
static int sample_bilinear(gdImagePtr src, double fx, double fy)
{
    fx = fmin(fmax(fx, 0.0), WX_CAPTCHA_WIDTH - 1);
    fy = fmin(fmax(fy, 0.0), WX_CAPTCHA_HEIGHT - 1);
    int x0 = (int)fx, y0 = (int)fy;
    int x1 = x0 + 1 < WX_CAPTCHA_WIDTH ? x0 + 1 : x0;
    int y1 = y0 + 1 < WX_CAPTCHA_HEIGHT ? y0 + 1 : y0;
    double ax = fx - x0, ay = fy - y0;
    int p00 = src->tpixels[y0][x0], p10 = src->tpixels[y0][x1];
    int p01 = src->tpixels[y1][x0], p11 = src->tpixels[y1][x1];
    int rgb[3];
    for (int c = 0; c < 3; c++) {
        int shift = 16 - 8 * c; /* red, green, blue */
        double top = ((p00 >> shift) & 0xff) * (1 - ax) + ((p10 >> shift) & 0xff) * ax;
        double bottom = ((p01 >> shift) & 0xff) * (1 - ax) + ((p11 >> shift) & 0xff) * ax;
        rgb[c] = clamp_channel((int)lround(top * (1 - ay) + bottom * ay));
    }
    return gdTrueColor(rgb[0], rgb[1], rgb[2]);
}

/* Resamples src into dst through a sine wave in x (by row) and a gentler one in y (by column). */
static void warp(gdImagePtr src, gdImagePtr dst, struct captcha_rng *rng)
{
    double ax = rng_between(rng, WAVE_X_AMP_MIN, WAVE_X_AMP_MAX);
    double fx = TWO_PI / rng_between(rng, WAVE_X_PERIOD_MIN, WAVE_X_PERIOD_MAX);
    double px = rng_between(rng, 0.0, TWO_PI);
    double ay = rng_between(rng, WAVE_Y_AMP_MIN, WAVE_Y_AMP_MAX);
    double fy = TWO_PI / rng_between(rng, WAVE_Y_PERIOD_MIN, WAVE_Y_PERIOD_MAX);
    double py = rng_between(rng, 0.0, TWO_PI);
    for (int y = 0; y < WX_CAPTCHA_HEIGHT; y++) {
        double dx = ax * sin(y * fx + px);
        for (int x = 0; x < WX_CAPTCHA_WIDTH; x++) {
            double dy = ay * sin(x * fy + py);
            dst->tpixels[y][x] = sample_bilinear(src, x + dx, y + dy);
        }
    }
}

/*
 * Crosses the text with lines from the left edge to the right, mostly cubic Bézier curves,
 * in text-like dark colours so that no colour threshold separates them from the glyphs.
 */
static void draw_lines(gdImagePtr im, struct captcha_rng *rng)
{
    int count = rng_int(rng, LINES_MIN, LINES_MAX);
    for (int l = 0; l < count; l++) {
        double px[4], py[4]; /* start, two controls, end */
        px[0] = rng_between(rng, 0, LINE_EDGE);
        px[3] = rng_between(rng, WX_CAPTCHA_WIDTH - LINE_EDGE, WX_CAPTCHA_WIDTH);
        py[0] = rng_between(rng, LINE_BAND, WX_CAPTCHA_HEIGHT - LINE_BAND);
        py[3] = rng_between(rng, LINE_BAND, WX_CAPTCHA_HEIGHT - LINE_BAND);
        bool straight = rng_int(rng, 1, LINE_STRAIGHT_1) == 1;
        for (int k = 1; k <= 2; k++) {
            double t = k / 3.0;
            px[k] =
                straight ? px[0] + (px[3] - px[0]) * t : rng_between(rng, 0.0, WX_CAPTCHA_WIDTH);
            py[k] =
                straight ? py[0] + (py[3] - py[0]) * t : rng_between(rng, 0.0, WX_CAPTCHA_HEIGHT);
        }
        gdImageSetThickness(im, rng_int(rng, 1, LINE_THICK_1) == 1 ? LINE_THICK_PX : 1);
        int ink = rng_ink(rng);
        int last_x = (int)lround(px[0]), last_y = (int)lround(py[0]);
        for (int s = 1; s <= LINE_SEGMENTS; s++) {
            double t = (double)s / LINE_SEGMENTS, u = 1 - t;
            double bx = u * u * u * px[0] + 3 * u * u * t * px[1] + 3 * u * t * t * px[2] +
                        t * t * t * px[3];
            double by = u * u * u * py[0] + 3 * u * u * t * py[1] + 3 * u * t * t * py[2] +
                        t * t * t * py[3];
            int x = (int)lround(bx), y = (int)lround(by);
            gdImageLine(im, last_x, last_y, x, y, ink);
            last_x = x;
            last_y = y;
        }
    }
    gdImageSetThickness(im, 1);
}

/* Scatters single pixels, half of them dark like ink and half light like paper. */
static void sprinkle_speckle(gdImagePtr im, struct captcha_rng *rng)
{
    for (int i = 0; i < SPECKLE_DOTS; i++) {
        int x = rng_int(rng, 0, WX_CAPTCHA_WIDTH - 1);
        int y = rng_int(rng, 0, WX_CAPTCHA_HEIGHT - 1);
        bool dark = rng_int(rng, 0, 1) == 0;
        int lo = dark ? 0 : PAPER_CHANNEL_MIN, hi = dark ? INK_CHANNEL_MAX : UCHAR_MAX;
        im->tpixels[y][x] =
            gdTrueColor(rng_int(rng, lo, hi), rng_int(rng, lo, hi), rng_int(rng, lo, hi));
    }
}

/* Encodes im as PNG into a buffer of ours (wx_malloc, freed with free). Returns 0 or -1. */
static int encode_png(gdImagePtr im, struct wx_captcha_image *out)
{
    int size = 0;
    void *png = gdImagePngPtr(im, &size);
    if (png == NULL || size <= 0) {
        WX_ERROR("captcha: libgd could not encode the PNG");
        gdFree(png);
        return -1;
    }
    out->png = wx_malloc((size_t)size);
    memcpy(out->png, png, (size_t)size);
    out->len = (size_t)size;
    gdFree(png);
    return 0;
}

/* libgd's font cache set up once, before any two threads could race to do it. */
static pthread_once_t font_cache_once = PTHREAD_ONCE_INIT;
static int font_cache_rc;

static void font_cache_setup(void)
{
    font_cache_rc = gdFontCacheSetup();
}

/* wx_captcha_render with the font as a parameter, so that a test can name a missing one. */
static int captcha_render_font(const char *font, const char *answer, uint64_t seed,
                               struct wx_captcha_image *out)
{
    assert(font != NULL);
    assert(out != NULL);
    *out = (struct wx_captcha_image){0};
    if (answer == NULL || !answer_valid(answer)) return -1;
    pthread_once(&font_cache_once, font_cache_setup);
    if (font_cache_rc != 0) {
        WX_ERROR("captcha: libgd could not set up FreeType");
        return -1;
    }
    struct captcha_rng rng = {.state = seed};
    struct glyph g[WX_CAPTCHA_LEN];
    if (glyphs_plan(font, answer, &rng, g) != 0) return -1;

    int rc = -1;
    gdImagePtr flat = gdImageCreateTrueColor(WX_CAPTCHA_WIDTH, WX_CAPTCHA_HEIGHT);
    gdImagePtr wavy = gdImageCreateTrueColor(WX_CAPTCHA_WIDTH, WX_CAPTCHA_HEIGHT);
    if (flat == NULL || wavy == NULL) {
        WX_ERROR("captcha: libgd could not allocate an image");
        goto out;
    }
    paint_paper(flat, &rng);
    if (draw_glyphs(flat, font, g) != 0) goto out;
    warp(flat, wavy, &rng);
    draw_lines(wavy, &rng);
    sprinkle_speckle(wavy, &rng);
    rc = encode_png(wavy, out);
out:
    if (wavy != NULL) gdImageDestroy(wavy);
    if (flat != NULL) gdImageDestroy(flat);
    return rc;
}

int wx_captcha_render(const char *answer, uint64_t seed, struct wx_captcha_image *out)
{
    return captcha_render_font(CAPTCHA_FONT_PATH, answer, seed, out);
}

void wx_captcha_image_free(struct wx_captcha_image *img)
{
    if (img == NULL) return;
    free(img->png);
    img->png = NULL;
    img->len = 0;
}

/* An answer's stored form, upper-cased in a stack buffer when it is this short (it is). */
#define HASH_STACK_LEN 64

void wx_captcha_answer_hash(const uint8_t key[32], const char *answer, size_t len, uint8_t out[32])
{
    assert(key != NULL);
    assert(answer != NULL || len == 0);
    /* Zeroed only for GCC, which cannot tell that nothing is read from it when len is 0. */
    uint8_t stack[HASH_STACK_LEN] = {0};
    /* A typed answer of any length gets its own hash; only the length is bounded upstream. */
    uint8_t *upper = len <= sizeof stack ? stack : wx_malloc(len);
    for (size_t i = 0; i < len; i++) {
        /* ASCII only, by hand: toupper(3) depends on the locale. */
        uint8_t c = (uint8_t)answer[i];
        upper[i] = c >= 'a' && c <= 'z' ? (uint8_t)(c - 'a' + 'A') : c;
    }
    wx_hmac_sha256(key, WX_KEY_LEN, upper, len, out);
    wx_wipe(upper, len);
    if (upper != stack) free(upper);
}
