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
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "iso8583/iso8583.h"
#include "util/alloc.h"
#include "util/limits.h"

extern char **environ;

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
#define TEMPLATES       65536        /* pre-packed requests; a power of two */
#define SLOT            256          /* bytes per pre-packed frame: 2-byte length + message */
#define RING            65536        /* requests in flight per connection; a power of two */
#define OUT_CAP         (256u << 10) /* unsent bytes per connection */
#define IN_CAP          (64u << 10)  /* unread answer bytes per connection */
#define STAN_MAX        999999
#define GEN_MAX         999
#define EVENTS          64
#define DRAIN_MS        10000  /* how long answers owed at the end of a phase are awaited */
#define START_MS        120000 /* how long `wxbank serve` may take to accept */
#define STOP_MS         30000  /* how long it may take to stop after SIGTERM */
#define BLOCKED_WAIT_NS 100000 /* open loop: wait when the host does not take more bytes */

static const char *const DIALECTS[] = {"ascii87", "ascii87b", "bcd87"};

/* One seeded card, as pans.tsv gives it. */
/* Where the patched fields sit in a packed frame (offsets from the frame's first byte). */
struct layout {
    uint16_t stan, rrn, tid; /* fields 11, 37, 41 */
    bool known;              /* computed (per PAN length) */
};

/* One request waiting for its answer. */
struct flight {
    int64_t t_ns;  /* when it was due (open loop) or sent (saturation) */
    uint32_t stan; /* its STAN: the answer must carry it */
};

/* A connection to the host: one terminal of the switch. */
struct conn {
    int fd;
    unsigned slot, gen;  /* terminal id "WB" + slot (3 digits) + generation (3 digits) */
    char tid[8];         /* that id, as sent in field 41 */
    uint32_t stan;       /* last STAN sent */
    uint8_t *out;        /* OUT_CAP bytes: frames not yet written */
    size_t out_off;      /* bytes of out already written */
    size_t out_len;      /* bytes of out in use */
    uint8_t *in;         /* IN_CAP bytes: answer bytes not yet decoded */
    size_t in_len;       /* bytes of in in use */
    struct flight *ring; /* RING requests in flight, oldest at head */
    uint32_t head, tail; /* ring indexes, free-running (mod RING when used) */
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
    int64_t lag_max_ns;    /* open loop: the longest a due request waited to be queued */
    uint64_t blocked;      /* open loop: turns when the host took no more bytes */
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
    uint8_t *frames;                          /* TEMPLATES x SLOT packed frames */
    uint16_t *frame_len;                      /* their lengths */
    struct layout *frame_at;                  /* their layouts */
    struct layout by_pan_len[WX_PAN_MAX + 1]; /* layouts worked out, by PAN length */
    bool stan_bcd;                            /* bcd87 packs the STAN as 3 BCD bytes */
    uint64_t rng;                             /* xorshift64 state */
    uint64_t rrn;                             /* last RRN sent */
    int ep;                                   /* epoll */
    struct conn conns[CONN_MAX];              /* the running phase's connections */
    unsigned n_conns;                         /* how many are open */
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
    int c;
    bool ok = true;
    while (ok && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
        if (c == 'h') {
            fputs(USAGE, stdout);
            return 1;
        }
        if (c == '?') ok = false;
    }
    if (!ok || optind != argc) {
        fprintf(stderr, "iso_bench: bad option or value\n%s", USAGE);
        return 2;
    }
    return 0;
}

/* ---- the server as a child process ------------------------------------------------------ */

/* Finds the wxbank program in the directory of this one. */
/* The server to stop if the benchmark itself is interrupted (Ctrl-C), so none is left
 * running on its port. */
static volatile sig_atomic_t interrupted_server;

static void on_interrupt(int sig)
{
    if (interrupted_server > 0) kill((pid_t)interrupted_server, SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts wxbank with args, its stdout sent to our stderr (stdout carries BENCH lines only). */
static int spawn_wxbank(struct bench *b, char *const args[], pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    int rc = posix_spawn(pid, b->wxbank, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "iso_bench: cannot start %s: %s\n", b->wxbank, strerror(rc));
        return -1;
    }
    interrupted_server = *pid;
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    return 0;
}

/* The environment both wxbank commands read their configuration from. */
static int set_environment(struct bench *b, unsigned port)
{
    char db[400], listen[32];
    snprintf(db, sizeof db, "sqlite:%s/bench.db", b->dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    if (setenv("WXBANK_DB_URL", db, 1) != 0 || setenv("WXBANK_ISO8583_LISTEN", listen, 1) != 0 ||
        setenv("WXBANK_HTTP_LISTEN", "127.0.0.1:0", 1) != 0 ||
        setenv("WXBANK_ISO8583_DIALECT", DIALECTS[b->o.dialect], 1) != 0 ||
        setenv("WXBANK_LOG_LEVEL", "warn", 1) != 0) {
        return -1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)&b->addr;
    *a = (struct sockaddr_in){.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    b->addr_len = sizeof *a;
    return 0;
}

/* `wxbank seed --cards N --pans DIR/pans.tsv`, waited for. */
static int seed(struct bench *b)
{
    char count[16];
    snprintf(count, sizeof count, "%u", b->o.cards);
    char *args[] = {b->wxbank, "seed", "--cards", count, "--pans", b->pans, NULL};
    pid_t pid;
    int status;
    int64_t t0 = now_ns();
    if (spawn_wxbank(b, args, &pid) != 0) return -1;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
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
    if (spawn_wxbank(b, args, &b->server) != 0) return -1;
    int64_t t0 = now_ns();
    for (long waited = 0; waited < START_MS; waited += 20) {
        int status;
        if (waitpid(b->server, &status, WNOHANG) == b->server) {
            fprintf(stderr, "iso_bench: wxbank serve exited (status %d)\n", status);
            b->server = 0;
            return -1;
        }
        int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&b->addr, b->addr_len);
        if (fd >= 0) close(fd);
        if (rc == 0) {
            fprintf(stderr, "# wxbank serve accepting after %.1f s\n",
                    (double)(now_ns() - t0) / NS);
            return 0;
        }
        sleep_ms(20);
    }
    fprintf(stderr, "iso_bench: wxbank serve did not accept within %d s\n", START_MS / 1000);
    return -1;
}

/* SIGTERM, then waits (SIGKILL after STOP_MS). Returns 0 when it exited 0. */
static int stop_server(struct bench *b)
{
    if (b->server <= 0) return 0;
    int status = 0;
    kill(b->server, SIGTERM);
    int64_t t0 = now_ns();
    while (waitpid(b->server, &status, WNOHANG) == 0) {
        if (now_ns() - t0 > (int64_t)STOP_MS * 1000000) {
            fprintf(stderr, "iso_bench: wxbank serve ignored SIGTERM; killing it\n");
            kill(b->server, SIGKILL);
            waitpid(b->server, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    b->server = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "iso_bench: wxbank serve ended with status %d\n", status);
        return -1;
    }
    fprintf(stderr, "# wxbank serve stopped in %.2f s\n", (double)(now_ns() - t0) / NS);
    return 0;
}

/* ---- cards ------------------------------------------------------------------------------ */

/* Parses "PAN<TAB>YYMM<TAB>limit" into c. False on anything else. */
static int load_cards(struct bench *b, const char *path)
{
    FILE *f = fopen(path, "re");
    char line[128];
    uint32_t cap = 1024, bad = 0;
    if (f == NULL) {
        fprintf(stderr, "iso_bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    b->cards = wx_reallocarray(NULL, cap, sizeof *b->cards);
    while (fgets(line, sizeof line, f) != NULL) {
        if (b->n_cards == cap) {
            cap *= 2;
            b->cards = wx_reallocarray(b->cards, cap, sizeof *b->cards);
        }
        if (bench_parse_card_line(line, &b->cards[b->n_cards])) {
            b->n_cards++;
        } else {
            bad++;
        }
    }
    fclose(f);
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

/* The times every request carries (fields 7, 12, 13): the benchmark's start, GMT. */
struct stamp {
    char f7[11]; /* MMDDhhmmss */
    char f12[7]; /* hhmmss */
    char f13[5]; /* MMDD */
};

/*
 * A 0100 as `wxbank pos auth` builds it, on card c for amount fen. STAN, RRN and terminal id
 * are placeholders that queue_request overwrites. Returns 0, or -1 when a value breaks its spec.
 */
static int build_request(struct wx_iso_msg *m, const struct bench_card *c, uint64_t fen,
                         const struct stamp *when)
{
    char amount[13] = "";
    put_digits((uint8_t *)amount, 12, fen);
    const struct {
        int n;
        const char *value;
    } fields[] = {
        {2, c->pan},
        {3, "000000"},
        {4, amount},
        {7, when->f7},
        {11, "000000"},
        {12, when->f12},
        {13, when->f13},
        {14, c->expiry},
        {18, "5411"},
        {22, "051"},
        {25, "00"},
        {32, "00000000001"},
        {37, "000000000000"},
        {41, "WB000000"},
        {42, "WXBANKBENCH0001"},
        {43, "WXBANK BENCH MART      "
             "SHANGHAI     "
             "  "
             "CN"},
        {49, "156"},
    };
    wx_iso_init(m, 100);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (wx_iso_set_str(m, fields[i].n, fields[i].value) != 0) return -1;
    }
    return 0;
}

/* Packs m with its 2-byte length header into out (SLOT bytes). Returns the length or -1. */
static int pack_frame(enum wx_iso_dialect d, const struct wx_iso_msg *m, uint8_t *out)
{
    size_t len;
    if (wx_iso_pack(d, m, out + 2, SLOT - 2, &len) != 0) return -1;
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    return (int)(len + 2);
}

/*
 * Finds where field n's value sits in base (packed from m) by packing m again with the
 * field set to alt: the bytes that differ must be one run of want bytes. Returns the offset
 * of the run, or -1. Restores the field to orig.
 */
static int locate(struct bench *b, struct wx_iso_msg *m, const uint8_t *base, int base_len, int n,
                  const char *orig, const char *alt, int want)
{
    uint8_t other[SLOT];
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
    struct stamp when;
    time_t now = time(NULL);
    struct tm g;
    gmtime_r(&now, &g);
    strftime(when.f7, sizeof when.f7, "%m%d%H%M%S", &g);
    strftime(when.f12, sizeof when.f12, "%H%M%S", &g);
    strftime(when.f13, sizeof when.f13, "%m%d", &g);
    b->stan_bcd = b->o.dialect == WX_ISO_BCD87;
    b->frames = wx_malloc((size_t)TEMPLATES * SLOT);
    b->frame_len = wx_calloc(TEMPLATES, sizeof *b->frame_len);
    b->frame_at = wx_calloc(TEMPLATES, sizeof *b->frame_at);
    struct wx_iso_msg *m = wx_malloc(sizeof *m);
    int rc = -1;
    for (uint32_t i = 0; i < TEMPLATES; i++) {
        uint64_t r = rng_next(b);
        const struct bench_card *c = &b->cards[r % b->n_cards];
        uint8_t *frame = b->frames + (size_t)i * SLOT;
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

static void set_terminal(struct conn *c)
{
    memcpy(c->tid, "WB", 2);
    put_digits((uint8_t *)c->tid + 2, 3, c->slot);
    put_digits((uint8_t *)c->tid + 5, 3, c->gen);
}

/* Opens the phase's connections, terminal slots first_slot.... */
static int conns_open(struct bench *b, unsigned first_slot)
{
    for (unsigned i = 0; i < b->o.connections; i++) {
        struct conn *c = &b->conns[i];
        *c = (struct conn){.fd = -1, .slot = first_slot + i};
        b->n_conns = i + 1;
        set_terminal(c);
        c->out = wx_malloc(OUT_CAP);
        c->in = wx_malloc(IN_CAP);
        c->ring = wx_malloc(RING * sizeof *c->ring);
        c->fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&b->addr, b->addr_len) != 0) {
            fprintf(stderr, "iso_bench: connect: %s\n", strerror(errno));
            return -1;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        if (epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) return -1;
    }
    return 0;
}

static void conns_close(struct bench *b)
{
    for (unsigned i = 0; i < b->n_conns; i++) {
        struct conn *c = &b->conns[i];
        if (c->fd >= 0) close(c->fd);
        free(c->out);
        free(c->in);
        free(c->ring);
    }
    b->n_conns = 0;
}

static uint32_t in_flight(const struct conn *c)
{
    return c->tail - c->head;
}

/* Appends one request due (or sent) at t_ns to c's output. False when c has no room. */
static bool queue_request(struct bench *b, struct conn *c, int64_t t_ns)
{
    if (in_flight(c) == RING) return false;
    if (c->out_len + SLOT > OUT_CAP && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + SLOT > OUT_CAP) return false;
    if (++c->stan > STAN_MAX) {
        c->stan = 1;
        c->gen = (c->gen + 1) % (GEN_MAX + 1);
        set_terminal(c);
    }
    uint32_t k = (uint32_t)rng_next(b) & (TEMPLATES - 1);
    const struct layout *l = &b->frame_at[k];
    uint8_t *dst = c->out + c->out_len;
    memcpy(dst, b->frames + (size_t)k * SLOT, b->frame_len[k]);
    if (b->stan_bcd) {
        put_bcd(dst + l->stan, 3, c->stan);
    } else {
        put_digits(dst + l->stan, 6, c->stan);
    }
    put_digits(dst + l->rrn, 12, ++b->rrn);
    memcpy(dst + l->tid, c->tid, sizeof c->tid);
    c->out_len += b->frame_len[k];
    c->ring[c->tail++ % RING] = (struct flight){t_ns, c->stan};
    b->t.sent++;
    return true;
}

/* Writes what c has queued, until the socket takes no more. Returns 0, or -1 on an error. */
static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return 0; /* EPOLLOUT (edge-triggered) says when to go on */
        } else {
            fprintf(stderr, "iso_bench: send: %s\n", strerror(errno));
            return -1;
        }
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* ---- answers ---------------------------------------------------------------------------- */

/* Checks one answer against the oldest request in flight on c and counts it. */
static void on_answer(struct bench *b, struct conn *c, const uint8_t *body, size_t len, int64_t now)
{
    struct tally *t = &b->t;
    struct flight f = c->ring[c->head++ % RING];
    struct wx_iso_error err;
    uint8_t stan[6];
    size_t n39 = 0, n11 = 0;
    put_digits(stan, 6, f.stan);
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
    if (code[0] >= '0' && code[0] <= '9' && code[1] >= '0' && code[1] <= '9') {
        t->codes[(code[0] - '0') * 10 + (code[1] - '0')]++;
    } else {
        t->other_code++;
    }
    t->approved += code[0] == '0' && code[1] == '0';
    int64_t when = t->by_due ? f.t_ns : now;
    if (when < t->win_start || when >= t->win_end) return;
    t->window++;
    if (t->n_lat < t->cap_lat) t->lat_us[t->n_lat++] = (uint32_t)((now - f.t_ns) / 1000);
}

/* Decodes every whole frame in c's input. Returns 0, or -1 on a broken stream. */
static int take_frames(struct bench *b, struct conn *c, int64_t now)
{
    size_t off = 0;
    while (c->in_len - off >= 2) {
        size_t n = (size_t)c->in[off] << 8 | c->in[off + 1];
        if (n == 0 || n > WX_ISO_MSG_MAX) {
            fprintf(stderr, "iso_bench: answer frame of %zu bytes\n", n);
            return -1;
        }
        if (c->in_len - off - 2 < n) break;
        if (in_flight(c) == 0) {
            fprintf(stderr, "iso_bench: an answer to no request\n");
            return -1;
        }
        on_answer(b, c, c->in + off + 2, n, now);
        off += 2 + n;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

/*
 * Reads until the socket is empty (edge-triggered). A read shorter than the room offered
 * emptied it: bytes arriving later raise a new edge, so the extra read that would only say
 * EAGAIN is skipped (one system call less per wake-up). Returns 0, or -1 when c is lost.
 */
static int conn_read(struct bench *b, struct conn *c)
{
    for (;;) {
        size_t room = IN_CAP - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (take_frames(b, c, now_ns()) != 0) return -1;
            if ((size_t)n < room) return 0;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
        fprintf(stderr, "iso_bench: the host %s a connection\n", n == 0 ? "closed" : "reset");
        return -1;
    }
}

/* Waits up to timeout_ns for the sockets and serves them. Returns 0, or -1 on a lost one. */
static int wait_events(struct bench *b, int64_t timeout_ns)
{
    struct epoll_event ev[EVENTS];
    struct timespec ts = {timeout_ns / NS, timeout_ns % NS};
    int n = epoll_pwait2(b->ep, ev, EVENTS, &ts, NULL);
    if (n < 0 && errno != EINTR) return -1;
    for (int i = 0; i < n; i++) {
        struct conn *c = ev[i].data.ptr;
        if ((ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(b, c) != 0) return -1;
        if ((ev[i].events & EPOLLOUT) && conn_flush(c) != 0) return -1;
    }
    return 0;
}

/* Waits for the answers still owed, up to DRAIN_MS. Returns how many never came. */
static uint64_t drain(struct bench *b)
{
    int64_t deadline = now_ns() + (int64_t)DRAIN_MS * 1000000;
    uint64_t owed = 1;
    while (owed > 0 && now_ns() < deadline) {
        if (wait_events(b, 10000000) != 0) break;
        owed = 0;
        for (unsigned i = 0; i < b->n_conns; i++)
            owed += in_flight(&b->conns[i]);
    }
    return owed;
}

/* ---- where the two cores went ----------------------------------------------------------- */

/* CPU seconds used so far by this process and by the server (0 when there is none). */
struct cpu {
    double self, server;
    int64_t at; /* when taken, monotonic ns */
};

/* The server's utime + stime: fields 14 and 15 of /proc/PID/stat, after the ")" of its name. */
static double server_cpu(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = pid > 0 ? fopen(path, "re") : NULL;
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    for (int field = 2; p != NULL && field < 14; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL) return 0;
    char *end;
    unsigned long long ticks = strtoull(p + 1, &end, 10);
    ticks += strtoull(end, NULL, 10);
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static struct cpu cpu_now(const struct bench *b)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (struct cpu){(double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                            (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
                        server_cpu(b->server), now_ns()};
}

/* "client 0.52 cores, server 1.31 cores" over a phase, on stderr. */
static void print_cpu(const struct bench *b, const struct cpu *since, const char *phase)
{
    struct cpu now = cpu_now(b);
    double wall = (double)(now.at - since->at) / NS;
    fprintf(stderr, "# %s: CPU over %.1f s: client %.2f cores", phase, wall,
            (now.self - since->self) / wall);
    if (b->server > 0) fprintf(stderr, ", server %.2f cores", (now.server - since->server) / wall);
    fputc('\n', stderr);
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
    return t->n_lat ? t->lat_us[(size_t)((uint64_t)t->n_lat * q / 1000)] : 0;
}

/* The share of approvals and the commonest other response codes, on stderr. */
static void print_codes(const struct tally *t, const char *phase)
{
    fprintf(stderr,
            "# %s: %" PRIu64 " sent, %" PRIu64 " valid answers (%.1f %% approved), %" PRIu64
            " invalid; codes:",
            phase, t->sent, t->valid,
            t->valid ? 100.0 * (double)t->approved / (double)t->valid : 0.0, t->invalid);
    for (int code = 0; code < 100; code++) {
        if (t->codes[code] > 0) fprintf(stderr, " %02d=%" PRIu64, code, t->codes[code]);
    }
    if (t->other_code > 0) fprintf(stderr, " other=%" PRIu64, t->other_code);
    fputc('\n', stderr);
}

/* Step 2: every connection keeps depth requests in flight. */
static int saturate(struct bench *b)
{
    const struct options *o = &b->o;
    struct cpu cpu = cpu_now(b);
    int rc = conns_open(b, 0);
    int64_t t0 = now_ns(), win = (int64_t)o->seconds * NS;
    tally_start(&b->t, t0 + (int64_t)o->warmup * NS, t0 + (int64_t)o->warmup * NS + win, false,
                (size_t)RATE_MAX * o->seconds);
    while (rc == 0 && now_ns() < b->t.win_end) {
        int64_t now = now_ns();
        for (unsigned i = 0; i < b->n_conns && rc == 0; i++) {
            struct conn *c = &b->conns[i];
            while (in_flight(c) < o->depth && queue_request(b, c, now)) {
            }
            rc = conn_flush(c);
        }
        if (rc == 0) rc = wait_events(b, 10000000);
    }
    uint64_t lost = rc == 0 ? drain(b) : 0;
    conns_close(b);
    if (rc != 0) return -1;
    struct tally *t = &b->t;
    qsort(t->lat_us, t->n_lat, sizeof *t->lat_us, cmp_u32);
    print_codes(t, "saturation");
    fprintf(stderr,
            "# saturation: %u connections x %u in flight; closed-loop latency p50 %u us,"
            " p99 %u us; %" PRIu64 " never answered\n",
            o->connections, o->depth, quantile(t, 500), quantile(t, 990), lost);
    print_cpu(b, &cpu, "saturation");
    printf("BENCH iso.auths_per_s %.0f auths/s\n", (double)t->window * NS / (double)win);
    fflush(stdout);
    return 0;
}

/* Due time of request i of the open loop. */
static int64_t due_ns(int64_t t0, uint64_t i, unsigned rate)
{
    return t0 + (int64_t)(i * (uint64_t)NS / rate);
}

/* Queues every request due by now, round robin over the connections. Returns the next i. */
static uint64_t send_due(struct bench *b, int64_t t0, uint64_t i, uint64_t total, int64_t now)
{
    unsigned rate = b->o.rate;
    uint64_t due = now < t0 ? 0 : (uint64_t)(now - t0) * rate / NS + 1;
    if (due > total) due = total;
    for (; i < due; i++) {
        int64_t t = due_ns(t0, i, rate);
        if (!queue_request(b, &b->conns[i % b->n_conns], t)) {
            b->t.blocked++;
            break;
        }
        if (now - t > b->t.lag_max_ns) b->t.lag_max_ns = now - t;
    }
    return i;
}

/* Requests due in the window that were never answered count as the time waited for them. */
static uint64_t count_unanswered(struct bench *b)
{
    struct tally *t = &b->t;
    int64_t now = now_ns();
    uint64_t n = 0;
    for (unsigned k = 0; k < b->n_conns; k++) {
        struct conn *c = &b->conns[k];
        for (uint32_t j = c->head; j != c->tail; j++) {
            int64_t due = c->ring[j % RING].t_ns;
            if (due < t->win_start || due >= t->win_end || t->n_lat == t->cap_lat) continue;
            t->lat_us[t->n_lat++] = (uint32_t)((now - due) / 1000);
            n++;
        }
    }
    return n;
}

static void report_open(struct bench *b, uint64_t unanswered, uint64_t owed_at_end)
{
    struct tally *t = &b->t;
    const struct options *o = &b->o;
    qsort(t->lat_us, t->n_lat, sizeof *t->lat_us, cmp_u32);
    print_codes(t, "open loop");
    uint32_t p99 = quantile(t, 990);
    fprintf(stderr,
            "# open loop: %u/s offered over %u connections; %zu requests due in the "
            "window; client lag max %" PRId64 " us; %" PRIu64 " in flight when sending ended\n",
            o->rate, o->connections, t->n_lat, t->lag_max_ns / 1000, owed_at_end);
    if (unanswered > 0 || owed_at_end > o->rate / 10 || t->blocked > 0) {
        fprintf(stderr,
                "# open loop: the host did NOT keep up with %u/s: %" PRIu64
                " never answered, %" PRIu64 " still owed when sending ended, %" PRIu64
                " turns blocked on a full socket; the percentiles include the waits\n",
                o->rate, unanswered, owed_at_end, t->blocked);
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
    uint64_t total = (uint64_t)o->rate * (o->warmup + o->seconds), i = 0;
    struct cpu cpu = cpu_now(b);
    int rc = conns_open(b, CONN_MAX);
    int64_t t0 = now_ns() + 1000000, win0 = t0 + (int64_t)o->warmup * NS;
    tally_start(&b->t, win0, win0 + (int64_t)o->seconds * NS, true,
                (size_t)o->rate * o->seconds + 1);
    while (rc == 0 && i < total) {
        uint64_t blocked = b->t.blocked;
        i = send_due(b, t0, i, total, now_ns());
        for (unsigned k = 0; k < b->n_conns && rc == 0; k++)
            rc = conn_flush(&b->conns[k]);
        int64_t wait = due_ns(t0, i, o->rate) - now_ns();
        if (wait < 0) wait = 0;
        if (b->t.blocked != blocked) wait = BLOCKED_WAIT_NS; /* the host is not reading */
        if (rc == 0) rc = wait_events(b, wait);
    }
    uint64_t owed = 0;
    for (unsigned k = 0; k < b->n_conns; k++)
        owed += in_flight(&b->conns[k]);
    if (rc == 0) drain(b);
    uint64_t unanswered = rc == 0 ? count_unanswered(b) : 0;
    conns_close(b);
    if (rc != 0) return -1;
    print_cpu(b, &cpu, "open loop");
    report_open(b, unanswered, owed);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Step 1: a seeded database and a server on it, or the cards for a running host. */
static int setup(struct bench *b)
{
    if (b->o.host != NULL && b->o.pans_file != NULL) return load_cards(b, b->o.pans_file);
    if (b->o.host != NULL) {
        synth_cards(b);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(b->dir, sizeof b->dir, "%s/wxisobench-XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(b->dir) == NULL) {
        fprintf(stderr, "iso_bench: mkdtemp %s: %s\n", b->dir, strerror(errno));
        b->dir[0] = '\0';
        return -1;
    }
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
    b.ep = epoll_create1(EPOLL_CLOEXEC);
    b.resp = wx_malloc(sizeof *b.resp);
    if (b.o.host != NULL && resolve_host(&b) != 0) {
        fprintf(stderr, "iso_bench: --host %s: not HOST:PORT\n", b.o.host);
        goto out;
    }
    if (b.ep < 0 || setup(&b) != 0 || build_templates(&b) != 0) goto out;
    /* The fixed load first: measured after saturation, it would measure the server working
     * off the overload (its checkpoint backlog), not its steady state at that load. */
    if ((b.o.open && open_loop(&b) != 0) || (b.o.saturation && saturate(&b) != 0)) goto out;
    rc = 0;
out:
    if (stop_server(&b) != 0) rc = 1;
    if (b.dir[0] != '\0' && b.o.keep) fprintf(stderr, "# kept %s\n", b.dir);
    if (b.dir[0] != '\0' && !b.o.keep) nftw(b.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (b.ep >= 0) close(b.ep);
    free(b.cards);
    free(b.frames);
    free(b.frame_len);
    free(b.frame_at);
    free(b.t.lat_us);
    free(b.resp);
    return rc;
}
