/*
 * iso_bench.c - the ISO 8583 authorization host end to end: a card switch's load against a
 * real `wxbank serve` on loopback, to hold the host to issue 3's targets (at least 150,000
 * authorizations/s, p99 at most 5 ms at an offered 50,000/s).
 *
 * The load generator and the server share this machine's 2 cores, so the client is made as
 * cheap as it can be: one thread, non-blocking sockets on epoll, every request packed before
 * the clock starts (TEMPLATES frames of 0100s on random seeded cards with small amounts) and
 * only the STAN, RRN and terminal id patched in place when a copy is sent. Answers are decoded
 * with the library codec and checked (MTI 0110, the STAN of the oldest request in flight on
 * that connection: the host answers in request order).
 *
 * Keys never repeat: the host's idempotency key is MTI + STAN + field 7 + acquirer +
 * terminal, so every connection is a terminal of its own ("WB" + slot + generation), numbers
 * its STANs 1..999999 and moves to the next generation when they run out.
 *
 * Steps, in a temporary directory removed at the end:
 *   1. `wxbank seed --cards N --pans DIR/pans.tsv`, then `wxbank serve` as a child on a free
 *      port (WXBANK_DB_URL, WXBANK_ISO8583_LISTEN, WXBANK_ISO8583_DIALECT, WXBANK_LOG_LEVEL),
 *      both found next to this program.
 *   2. Saturation: C connections, each with D requests in flight, for a warm-up and then the
 *      measured seconds: `iso.auths_per_s` counts every valid answer received in the window.
 *   3. Open loop at a fixed offered rate: request i is due at t0 + i/rate on connection
 *      i mod C and is sent then whether or not earlier answers came back; its latency is
 *      answer time - due time (no coordinated omission). `iso.p50_us`, `iso.p99_us`,
 *      `iso.p999_us` over the requests due in the measured window; one never answered counts
 *      as the time waited for it.
 *   4. SIGTERM to the server, wait for it.
 * With --host HOST:PORT nothing is started: the load goes to a running host (e.g. the npm
 * iso_8583 peer with --dialect ascii87b), on cards from --pans FILE or made-up ones.
 * --only saturation|open runs one phase; --help lists the rest.
 *
 * One file on purpose (CMake builds every bench/NAME_bench.c as a program of its own); its
 * sections follow the steps.
 *
 * Output: BENCH lines on stdout (DESIGN.md format); notes on stderr. Exit 0, 1 on failure,
 * 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "iso8583/iso8583.h"
#include "util/alloc.h"
#include "util/limits.h"

#define DEF_CONNECTIONS 16
#define DEF_DEPTH       32
#define DEF_RATE        50000
#define DEF_SECONDS     5
#define DEF_WARMUP      1
#define DEF_CARDS       100000
#define CONN_MAX        256     /* connections per phase (terminal slots 0..2*CONN_MAX-1) */
#define DEPTH_MAX       4096    /* requests in flight per connection, saturation */
#define RATE_MAX        1000000 /* offered load, open loop */
#define SECONDS_MAX     600
#define TEMPLATES       65536 /* pre-packed requests; a power of two */
#define GEN_MAX         999
#define DRAIN_MS        10000  /* how long answers owed at the end of a phase are awaited */
#define START_MS        120000 /* how long `wxbank serve` may take to accept */
#define STOP_MS         30000  /* how long it may take to stop after SIGTERM */

static const char *const DIALECTS[] = {"ascii87", "ascii87b", "bcd87"};

/* Where the patched fields sit in a packed frame (offsets from the frame's first byte). */
struct layout {
    uint16_t stan, rrn, tid; /* fields 11, 37, 41 */
    bool known;              /* computed (per PAN length) */
};

/* The terminal a connection to the host is (io.c[k] is term[k]). Its requests in flight are
 * tagged with the time they were due (open loop) or sent (saturation); their STANs follow
 * from their order (stan_of). */
struct terminal {
    unsigned slot, gen; /* terminal id "WB" + slot (3 digits) + generation (3 digits) */
    char tid[8];        /* that id, as sent in field 41 */
    uint32_t stan;      /* last STAN sent */
};

/* Answers of one phase. */
struct tally {
    uint64_t sent, valid, approved, invalid, other_code;
    uint64_t codes[100];   /* valid answers by field 39 */
    uint64_t window;       /* valid answers counted for the phase's figure */
    int64_t win_start;     /* measured window, monotonic ns */
    int64_t win_end;       /* (open loop: of due times; saturation: of answer times) */
    bool by_due;           /* open loop: window and latency by due time */
    uint32_t *lat_us;      /* latencies of the answers in the window */
    size_t n_lat, cap_lat; /* used / allocated */
};

/* What the command line asks for (defaults: DEF_*). */
struct options {
    unsigned connections, depth; /* connections per phase; in flight per connection */
    unsigned rate;               /* open loop: offered requests per second */
    unsigned seconds, warmup;    /* measured window of each phase; warm-up before it */
    unsigned cards;              /* cards to seed (or to make up for --host) */
    enum wx_iso_dialect dialect; /* the wire format, for the server too */
    const char *host;            /* --host: a running host; NULL starts wxbank */
    const char *pans_file;       /* --pans: cards for --host */
    bool keep;                   /* --keep: leave the temporary directory */
    bool saturation, open;       /* the phases to run (--only saturation|open; default both) */
};

/* The whole benchmark's state. */
struct bench {
    struct options o;
    char dir[256];                            /* temporary directory ("" when none) */
    char pans[320];                           /* dir/pans.tsv */
    char wxbank[PATH_MAX];                    /* the wxbank next to this program */
    struct sockaddr_storage addr;             /* the host */
    socklen_t addr_len;                       /* its length */
    pid_t server;                             /* `wxbank serve`; 0 when not started */
    struct bench_card *cards;                 /* the cards requests are made on */
    uint32_t n_cards;                         /* how many */
    uint8_t *frames;                          /* TEMPLATES x BENCH_ISO_SLOT packed frames */
    uint16_t *frame_len;                      /* their lengths */
    struct layout *frame_at;                  /* their layouts */
    struct layout by_pan_len[WX_PAN_MAX + 1]; /* layouts worked out, by PAN length */
    bool stan_bcd;                            /* bcd87 packs the STAN as 3 BCD bytes */
    uint64_t rng;                             /* xorshift64 state */
    uint64_t rrn;                             /* last RRN sent */
    struct bench_iso io;                      /* the running phase's connections ... */
    struct terminal term[CONN_MAX];           /* ... and the terminals they are */
    struct tally t;                           /* the running phase's answers */
    struct wx_iso_msg *resp;                  /* decoded answer (8 KiB: not on the stack) */
};

static uint64_t rng_next(struct bench *b)
{
    return xorshift64(&b->rng);
}

/* Writes v as 2n digits packed BCD in n bytes. */
static void put_bcd(uint8_t *dst, size_t n, uint64_t v)
{
    for (size_t i = n; i > 0; i--) {
        uint8_t lo = (uint8_t)(v % 10);
        v /= 10;
        dst[i - 1] = (uint8_t)((v % 10) << 4 | lo);
        v /= 10;
    }
}

/* ---- options --------------------------------------------------------------------------- */

static const char USAGE[] =
    "usage: iso_bench [--connections N (16)] [--depth D (32)] [--rate R/s (50000)]\n"
    "                 [--seconds S (5)] [--warmup S (1)] [--cards N (100000)]\n"
    "                 [--dialect ascii87|ascii87b|bcd87] [--host HOST:PORT [--pans FILE]]\n"
    "                 [--only saturation|open] [--keep]\n";

/* One option (bench_getopt's set): false for a bad value. */
static bool set_option(void *arg, int c)
{
    struct options *o = arg;
    bool ok = true;
    if (c == 'c') ok = parse_uint(optarg, 1, CONN_MAX, &o->connections);
    if (c == 'D') ok = parse_uint(optarg, 1, DEPTH_MAX, &o->depth);
    if (c == 'r') ok = parse_uint(optarg, 1, RATE_MAX, &o->rate);
    if (c == 's') ok = parse_uint(optarg, 1, SECONDS_MAX, &o->seconds);
    if (c == 'w') ok = parse_uint(optarg, 0, SECONDS_MAX, &o->warmup);
    if (c == 'n') ok = parse_uint(optarg, 1, WX_CARDS_MAX, &o->cards);
    if (c == 'd') ok = wx_iso_dialect_parse(optarg, &o->dialect) == 0;
    if (c == 'H') o->host = optarg;
    if (c == 'p') o->pans_file = optarg;
    if (c == 'k') o->keep = true;
    if (c == 'o') {
        o->saturation = strcmp(optarg, "saturation") == 0;
        o->open = strcmp(optarg, "open") == 0;
        ok = o->saturation || o->open;
    }
    return ok;
}

/* Returns 0, 1 after --help, or 2 on bad usage (with a message). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option opts[] = {{"connections", required_argument, NULL, 'c'},
                                         {"depth", required_argument, NULL, 'D'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"warmup", required_argument, NULL, 'w'},
                                         {"cards", required_argument, NULL, 'n'},
                                         {"dialect", required_argument, NULL, 'd'},
                                         {"host", required_argument, NULL, 'H'},
                                         {"pans", required_argument, NULL, 'p'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"only", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    *o = (struct options){.connections = DEF_CONNECTIONS,
                          .depth = DEF_DEPTH,
                          .rate = DEF_RATE,
                          .seconds = DEF_SECONDS,
                          .warmup = DEF_WARMUP,
                          .cards = DEF_CARDS,
                          .dialect = WX_ISO_ASCII87,
                          .saturation = true,
                          .open = true};
    return bench_getopt(argc, argv, opts, USAGE, set_option, o, "iso_bench");
}

/* ---- the server as a child process ------------------------------------------------------ */

/* The environment both wxbank commands read their configuration from. */
static int set_environment(struct bench *b, unsigned port)
{
    char db[400], listen[32];
    snprintf(db, sizeof db, "sqlite:%s/bench.db", b->dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    const char *const vars[][2] = {
        {"WXBANK_DB_URL", db},
        {"WXBANK_ISO8583_LISTEN", listen},
        {"WXBANK_HTTP_LISTEN", "127.0.0.1:0"},
        {"WXBANK_ISO8583_DIALECT", DIALECTS[b->o.dialect]},
        {"WXBANK_LOG_LEVEL", "warn"},
    };
    if (bench_setenv(vars, sizeof vars / sizeof vars[0]) != 0) return -1;
    struct sockaddr_in a = bench_loopback(port);
    memcpy(&b->addr, &a, sizeof a);
    b->addr_len = sizeof a;
    return 0;
}

/* `wxbank seed --cards N --pans DIR/pans.tsv`, waited for. */
static int seed(struct bench *b)
{
    char count[16];
    snprintf(count, sizeof count, "%u", b->o.cards);
    char *args[] = {b->wxbank, "seed", "--cards", count, "--pans", b->pans, NULL};
    int64_t t0 = now_ns();
    if (bench_run(b->wxbank, args, NULL, NULL, "iso_bench") != 0) {
        fprintf(stderr, "iso_bench: wxbank seed failed\n");
        return -1;
    }
    fprintf(stderr, "# seeded %u cards in %.1f s\n", b->o.cards, (double)(now_ns() - t0) / NS);
    return 0;
}

/* Starts `wxbank serve` and waits until its port accepts. */
static int start_server(struct bench *b)
{
    char *args[] = {b->wxbank, "serve", NULL};
    if (bench_spawn(b->wxbank, args, NULL, NULL, &b->server, "iso_bench") != 0) return -1;
    bench_guard(BENCH_GUARD_SERVER, b->server, SIGTERM);
    double took = bench_wait_accepting(&b->server, (struct sockaddr *)&b->addr, b->addr_len,
                                       START_MS, 20, "wxbank serve", "iso_bench");
    if (took < 0) return -1;
    fprintf(stderr, "# wxbank serve accepting after %.1f s\n", took);
    return 0;
}

/* SIGTERM, then waits (SIGKILL after STOP_MS). Returns 0 when it exited 0. */
static int stop_server(struct bench *b)
{
    if (b->server <= 0) return 0;
    int64_t t0 = now_ns();
    int rc = bench_stop(&b->server, STOP_MS, "wxbank serve", "iso_bench");
    bench_guard(BENCH_GUARD_SERVER, 0, 0);
    if (rc == 0) {
        fprintf(stderr, "# wxbank serve stopped in %.2f s\n", (double)(now_ns() - t0) / NS);
    }
    return rc;
}

/* ---- cards ------------------------------------------------------------------------------ */

/* The cards of a `seed --pans` file. */
static int load_cards(struct bench *b, const char *path)
{
    uint32_t bad;
    if (bench_load_cards(path, UINT32_MAX, &b->cards, &b->n_cards, &bad, "iso_bench") != 0) {
        return -1;
    }
    if (bad > 0) fprintf(stderr, "# %s: %u lines skipped\n", path, bad);
    return b->n_cards > 0 ? 0 : -1;
}

/* Made-up Luhn-valid cards for a host that does not know any (--host without --pans). */
static void synth_cards(struct bench *b)
{
    b->n_cards = b->o.cards;
    b->cards = wx_calloc(b->n_cards, sizeof *b->cards);
    for (uint32_t i = 0; i < b->n_cards; i++) {
        char *p = b->cards[i].pan;
        memcpy(p, "476173", 6);
        put_digits((uint8_t *)p + 6, 9, rng_next(b));
        unsigned sum = 0;
        for (int k = 14; k >= 0; k--) {
            unsigned d = (unsigned)(p[k] - '0') * ((14 - k) % 2 == 0 ? 2 : 1);
            sum += d > 9 ? d - 9 : d;
        }
        p[15] = (char)('0' + (10 - sum % 10) % 10);
        memcpy(b->cards[i].expiry, "2812", 5);
    }
}

/* ---- pre-packed requests ---------------------------------------------------------------- */

/* A 0100 on card c for amount fen. STAN, RRN and terminal id are placeholders that
 * queue_request overwrites. Returns 0, or -1 when a value breaks its spec. */
static int build_request(struct wx_iso_msg *m, const struct bench_card *c, uint64_t fen,
                         const struct bench_stamp *when)
{
    return bench_auth(m, c, fen, when, "000000", "000000000000", "WB000000", "WXBANK BENCH MART");
}

/* Packs m with its 2-byte length header into out (BENCH_ISO_SLOT bytes). The length or -1. */
static int pack_frame(enum wx_iso_dialect d, const struct wx_iso_msg *m, uint8_t *out)
{
    return bench_frame(d, m, out, BENCH_ISO_SLOT);
}

/*
 * Finds where field n's value sits in base (packed from m) by packing m again with the
 * field set to alt: the bytes that differ must be one run of want bytes. Returns the offset
 * of the run, or -1. Restores the field to orig.
 */
static int locate(struct bench *b, struct wx_iso_msg *m, const uint8_t *base, int base_len, int n,
                  const char *orig, const char *alt, int want)
{
    uint8_t other[BENCH_ISO_SLOT];
    int at = -1, end = -1;
    if (wx_iso_set_str(m, n, alt) != 0) return -1;
    int len = pack_frame(b->o.dialect, m, other);
    wx_iso_set_str(m, n, orig);
    if (len != base_len) return -1;
    for (int i = 0; i < len; i++) {
        if (other[i] == base[i]) continue;
        if (at < 0) at = i;
        end = i + 1;
    }
    return at >= 0 && end - at == want ? at : -1;
}

/* The offsets of fields 11, 37 and 41 in base, worked out once per PAN length. */
static int layout_of(struct bench *b, struct wx_iso_msg *m, const uint8_t *base, int len,
                     size_t pan_len, struct layout *out)
{
    struct layout *l = &b->by_pan_len[pan_len];
    if (!l->known) {
        int stan = locate(b, m, base, len, 11, "000000", "999999", b->stan_bcd ? 3 : 6);
        int rrn = locate(b, m, base, len, 37, "000000000000", "999999999999", 12);
        int tid = locate(b, m, base, len, 41, "WB000000", "WB999999", 6);
        if (stan < 0 || rrn < 0 || tid < 2) {
            fprintf(stderr, "iso_bench: cannot find fields 11/37/41 in a packed 0100\n");
            return -1;
        }
        *l = (struct layout){(uint16_t)stan, (uint16_t)rrn, (uint16_t)(tid - 2), true};
    }
    *out = *l;
    return 0;
}

/* Packs TEMPLATES requests on random cards for 1.00 to 100.00 yuan (most approve). */
static int build_templates(struct bench *b)
{
    struct bench_stamp when;
    bench_stamp_now(&when);
    b->stan_bcd = b->o.dialect == WX_ISO_BCD87;
    b->frames = wx_malloc((size_t)TEMPLATES * BENCH_ISO_SLOT);
    b->frame_len = wx_calloc(TEMPLATES, sizeof *b->frame_len);
    b->frame_at = wx_calloc(TEMPLATES, sizeof *b->frame_at);
    struct wx_iso_msg *m = wx_malloc(sizeof *m);
    int rc = -1;
    for (uint32_t i = 0; i < TEMPLATES; i++) {
        uint64_t r = rng_next(b);
        const struct bench_card *c = &b->cards[r % b->n_cards];
        uint8_t *frame = b->frames + (size_t)i * BENCH_ISO_SLOT;
        int len = build_request(m, c, 100 + (r >> 32) % 9901, &when) == 0
                      ? pack_frame(b->o.dialect, m, frame)
                      : -1;
        if (len < 0 || layout_of(b, m, frame, len, strlen(c->pan), &b->frame_at[i]) != 0) {
            fprintf(stderr, "iso_bench: a 0100 does not pack (dialect %s)\n",
                    DIALECTS[b->o.dialect]);
            goto out;
        }
        b->frame_len[i] = (uint16_t)len;
    }
    fprintf(stderr, "# %d requests packed (%s, %u bytes framed for a %zu-digit PAN)\n", TEMPLATES,
            DIALECTS[b->o.dialect], b->frame_len[0], strlen(b->cards[0].pan));
    rc = 0;
out:
    free(m);
    return rc;
}

/* ---- connections ------------------------------------------------------------------------ */

static void set_terminal(struct terminal *t)
{
    memcpy(t->tid, "WB", 2);
    put_digits((uint8_t *)t->tid + 2, 3, t->slot);
    put_digits((uint8_t *)t->tid + 5, 3, t->gen);
}

/* The STAN of the nth request (from 0) a terminal sends: 1..BENCH_STAN_MAX, then 1 again. */
static uint32_t stan_of(uint32_t nth)
{
    return nth % BENCH_STAN_MAX + 1;
}

/* Opens the phase's connections, terminal slots first_slot.... */
static int conns_open(struct bench *b, unsigned first_slot)
{
    for (unsigned i = 0; i < b->o.connections; i++) {
        b->term[i] = (struct terminal){.slot = first_slot + i};
        set_terminal(&b->term[i]);
    }
    return bench_iso_open(&b->io, b->o.connections, (struct sockaddr *)&b->addr, b->addr_len);
}

/* Appends one request due (or sent) at t_ns to connection k's output. False when it has no
 * room. */
static bool queue_request(struct bench *b, unsigned k, int64_t t_ns)
{
    struct terminal *term = &b->term[k];
    uint8_t *dst = bench_iso_slot(&b->io.c[k]);
    if (dst == NULL) return false;
    if (++term->stan > BENCH_STAN_MAX) {
        term->stan = 1;
        term->gen = (term->gen + 1) % (GEN_MAX + 1);
        set_terminal(term);
    }
    uint32_t i = (uint32_t)rng_next(b) & (TEMPLATES - 1);
    const struct layout *l = &b->frame_at[i];
    memcpy(dst, b->frames + (size_t)i * BENCH_ISO_SLOT, b->frame_len[i]);
    if (b->stan_bcd) {
        put_bcd(dst + l->stan, 3, term->stan);
    } else {
        put_digits(dst + l->stan, 6, term->stan);
    }
    put_digits(dst + l->rrn, 12, ++b->rrn);
    memcpy(dst + l->tid, term->tid, sizeof term->tid);
    bench_iso_sent(&b->io.c[k], b->frame_len[i], (uint64_t)t_ns);
    b->t.sent++;
    return true;
}

/* ---- answers ---------------------------------------------------------------------------- */

/* Checks one answer (bench_iso_take_fn): a 0110 with the STAN of the nth request of its
 * connection, due or sent at the time tag. Counts it. */
static void on_answer(void *arg, uint64_t tag, uint32_t nth, const uint8_t *body, size_t len,
                      int64_t now)
{
    struct bench *b = arg;
    struct tally *t = &b->t;
    int64_t t_ns = (int64_t)tag;
    struct wx_iso_error err;
    uint8_t stan[6];
    size_t n39 = 0, n11 = 0;
    put_digits(stan, 6, stan_of(nth));
    const uint8_t *code = NULL, *s = NULL;
    if (wx_iso_unpack(b->o.dialect, body, len, b->resp, &err) == 0) {
        code = wx_iso_get(b->resp, 39, &n39);
        s = wx_iso_get(b->resp, 11, &n11);
    }
    if (code == NULL || n39 != 2 || s == NULL || n11 != 6 || memcmp(s, stan, 6) != 0 ||
        b->resp->mti != 110) {
        if (t->invalid++ < 3) {
            fprintf(stderr, "# invalid answer (%s)\n",
                    code == NULL ? "does not decode or has no field 39" : "not this STAN's 0110");
        }
        return;
    }
    t->valid++;
    int k = bench_code(b->resp);
    if (k >= 0) {
        t->codes[k]++;
    } else {
        t->other_code++;
    }
    t->approved += k == 0;
    int64_t when = t->by_due ? t_ns : now;
    if (when < t->win_start || when >= t->win_end) return;
    t->window++;
    if (t->n_lat < t->cap_lat) t->lat_us[t->n_lat++] = (uint32_t)((now - t_ns) / 1000);
}

/* ---- the two phases --------------------------------------------------------------------- */

static void tally_start(struct tally *t, int64_t win_start, int64_t win_end, bool by_due,
                        size_t cap_lat)
{
    uint32_t *lat = t->lat_us;
    *t = (struct tally){.win_start = win_start, .win_end = win_end, .by_due = by_due};
    t->lat_us = wx_reallocarray(lat, cap_lat, sizeof *lat);
    t->cap_lat = cap_lat;
}

/* The q-th 1000-quantile of the sorted latencies. */
static uint32_t quantile(const struct tally *t, unsigned q)
{
    return bench_quantile(t->lat_us, t->n_lat, q);
}

/* The share of approvals and the commonest other response codes, on stderr. */
static void print_codes(const struct tally *t, const char *phase)
{
    fprintf(stderr,
            "# %s: %" PRIu64 " sent, %" PRIu64 " valid answers (%.1f %% approved), %" PRIu64
            " invalid; codes:",
            phase, t->sent, t->valid,
            t->valid ? 100.0 * (double)t->approved / (double)t->valid : 0.0, t->invalid);
    bench_print_codes(t->codes);
    if (t->other_code > 0) fprintf(stderr, " other=%" PRIu64, t->other_code);
    fputc('\n', stderr);
}

/* Step 2: every connection keeps depth requests in flight. */
static int saturate(struct bench *b)
{
    const struct options *o = &b->o;
    struct bench_cpu cpu = bench_cpu_now(b->server);
    int rc = conns_open(b, 0);
    int64_t t0 = now_ns(), win = (int64_t)o->seconds * NS;
    tally_start(&b->t, t0 + (int64_t)o->warmup * NS, t0 + (int64_t)o->warmup * NS + win, false,
                (size_t)RATE_MAX * o->seconds);
    while (rc == 0 && now_ns() < b->t.win_end) {
        int64_t now = now_ns();
        for (unsigned k = 0; k < b->io.n && rc == 0; k++) {
            while (b->io.c[k].in_flight < o->depth && queue_request(b, k, now)) {
            }
            rc = bench_iso_flush(&b->io, &b->io.c[k]);
        }
        if (rc == 0) rc = bench_iso_wait(&b->io, 10000000);
    }
    uint64_t lost = 0;
    if (rc == 0) bench_iso_drain(&b->io, DRAIN_MS, &lost);
    bench_iso_close(&b->io);
    if (rc != 0) return -1;
    struct tally *t = &b->t;
    qsort(t->lat_us, t->n_lat, sizeof *t->lat_us, cmp_u32);
    print_codes(t, "saturation");
    fprintf(stderr,
            "# saturation: %u connections x %u in flight; closed-loop latency p50 %u us,"
            " p99 %u us; %" PRIu64 " never answered\n",
            o->connections, o->depth, quantile(t, 500), quantile(t, 990), lost);
    bench_print_cpu(&cpu, b->server, "saturation");
    printf("BENCH iso.auths_per_s %.0f auths/s\n", (double)t->window * NS / (double)win);
    fflush(stdout);
    return 0;
}

/* Queues request i of the open loop, due at due, on connection i mod C (bench_iso_offer's
 * queue). */
static bool queue_due(void *arg, uint64_t i, int64_t due, int64_t now)
{
    struct bench *b = arg;
    (void)now;
    return queue_request(b, (unsigned)(i % b->io.n), due);
}

/* Requests due in the window that were never answered count as the time waited for them. */
static uint64_t count_unanswered(struct bench *b)
{
    struct tally *t = &b->t;
    int64_t now = now_ns();
    uint64_t n = 0;
    for (unsigned k = 0; k < b->io.n; k++) {
        const struct bench_iso_conn *c = &b->io.c[k];
        for (uint32_t j = 0; j < c->in_flight; j++) {
            int64_t due = (int64_t)c->ring[(c->head + j) % BENCH_ISO_RING];
            if (due < t->win_start || due >= t->win_end || t->n_lat == t->cap_lat) continue;
            t->lat_us[t->n_lat++] = (uint32_t)((now - due) / 1000);
            n++;
        }
    }
    return n;
}

static void report_open(struct bench *b, const struct bench_rate *r, uint64_t unanswered,
                        uint64_t owed_at_end)
{
    struct tally *t = &b->t;
    const struct options *o = &b->o;
    qsort(t->lat_us, t->n_lat, sizeof *t->lat_us, cmp_u32);
    print_codes(t, "open loop");
    uint32_t p99 = quantile(t, 990);
    fprintf(stderr,
            "# open loop: %u/s offered over %u connections; %zu requests due in the "
            "window; client lag max %" PRId64 " us; %" PRIu64 " in flight when sending ended\n",
            o->rate, o->connections, t->n_lat, r->lag_max_ns / 1000, owed_at_end);
    if (unanswered > 0 || owed_at_end > o->rate / 10 || r->blocked > 0) {
        fprintf(stderr,
                "# open loop: the host did NOT keep up with %u/s: %" PRIu64
                " never answered, %" PRIu64 " still owed when sending ended, %" PRIu64
                " turns blocked on a full socket; the percentiles include the waits\n",
                o->rate, unanswered, owed_at_end, r->blocked);
    } else if (p99 > 5000) {
        fprintf(stderr, "# open loop: p99 %u us is above the 5 ms target\n", p99);
    }
    printf("BENCH iso.p50_us %u us\n", quantile(t, 500));
    printf("BENCH iso.p99_us %u us\n", p99);
    printf("BENCH iso.p999_us %u us\n", quantile(t, 999));
    fflush(stdout);
}

/* Step 3: a fixed offered load, each request sent when due whatever came back before. */
static int open_loop(struct bench *b)
{
    const struct options *o = &b->o;
    uint64_t total = (uint64_t)o->rate * (o->warmup + o->seconds), left;
    struct bench_cpu cpu = bench_cpu_now(b->server);
    int rc = conns_open(b, CONN_MAX);
    struct bench_rate r = {.t0 = now_ns() + 1000000, .rate = o->rate};
    int64_t win0 = r.t0 + (int64_t)o->warmup * NS;
    tally_start(&b->t, win0, win0 + (int64_t)o->seconds * NS, true,
                (size_t)o->rate * o->seconds + 1);
    if (rc == 0) rc = bench_iso_offer(&b->io, &r, total, queue_due, b);
    uint64_t owed = bench_iso_in_flight(&b->io);
    if (rc == 0) bench_iso_drain(&b->io, DRAIN_MS, &left);
    uint64_t unanswered = rc == 0 ? count_unanswered(b) : 0;
    bench_iso_close(&b->io);
    if (rc != 0) return -1;
    bench_print_cpu(&cpu, b->server, "open loop");
    report_open(b, &r, unanswered, owed);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

/* Step 1: a seeded database and a server on it, or the cards for a running host. */
static int setup(struct bench *b)
{
    if (b->o.host != NULL && b->o.pans_file != NULL) return load_cards(b, b->o.pans_file);
    if (b->o.host != NULL) {
        synth_cards(b);
        return 0;
    }
    if (bench_make_dir(b->dir, sizeof b->dir, "wxisobench", "iso_bench") != 0) return -1;
    snprintf(b->pans, sizeof b->pans, "%s/pans.tsv", b->dir);
    unsigned port = free_port();
    if (bench_find_wxbank(b->wxbank, sizeof b->wxbank, "iso_bench") != 0 || port == 0 ||
        set_environment(b, port) != 0 || seed(b) != 0 || load_cards(b, b->pans) != 0) {
        return -1;
    }
    return start_server(b);
}

/* The address of a running host, "HOST:PORT". */
static int resolve_host(struct bench *b)
{
    char host[256];
    const char *colon = strrchr(b->o.host, ':');
    if (colon == NULL || (size_t)(colon - b->o.host) >= sizeof host) return -1;
    memcpy(host, b->o.host, (size_t)(colon - b->o.host));
    host[colon - b->o.host] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) return -1;
    memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
    b->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int rc = parse_options(argc, argv, &b.o);
    if (rc != 0) return rc == 1 ? 0 : 2;
    rc = 1;
    b.rng = 0x9E3779B97F4A7C15ull;
    b.io = (struct bench_iso){.who = "iso_bench", .take = on_answer, .arg = &b};
    b.resp = wx_malloc(sizeof *b.resp);
    if (b.o.host != NULL && resolve_host(&b) != 0) {
        fprintf(stderr, "iso_bench: --host %s: not HOST:PORT\n", b.o.host);
        goto out;
    }
    if (setup(&b) != 0 || build_templates(&b) != 0) goto out;
    /* The fixed load first: measured after saturation, it would measure the server working
     * off the overload (its checkpoint backlog), not its steady state at that load. */
    if ((b.o.open && open_loop(&b) != 0) || (b.o.saturation && saturate(&b) != 0)) goto out;
    rc = 0;
out:
    if (stop_server(&b) != 0) rc = 1;
    bench_end_dir(b.dir, b.o.keep);
    free(b.cards);
    free(b.frames);
    free(b.frame_len);
    free(b.frame_at);
    free(b.t.lat_us);
    free(b.resp);
    return rc;
}
