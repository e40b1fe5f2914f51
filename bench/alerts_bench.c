/*
 * alerts_bench.c - transaction alerts end to end (笔笔播报): from a swipe at the ISO 8583 door
 * of a real `wxbank serve` to the WeChat template message arriving at the platform, to hold the
 * alert dispatcher to its targets: p99 at most 200 ms from swipe to platform at a steady
 * 5,000 authorizations/s, and at least 20,000 messages/s when it has a backlog to send.
 *
 * The platform is the WeChat sandbox (src/sandbox), run inside this program on a hub of its
 * own on a thread, its HTTP listener on a free loopback port: the bank talks to it as to the
 * real platform (wechat.api_base), and the sandbox's observer tells this program, on the
 * sandbox's thread, of every template message it accepts. SMS would go to the sandbox's
 * gateway (sms.url); the default policy sends none for these purchases (domestic POS, under
 * 300.00, a holder with a bound follower).
 *
 * Correlation: request number i carries the merchant name "WXBENCH" + i in 10 digits in field
 * 43. The default alerts.template_fields puts the merchant in keyword4 ("NAME（CITY）") and the
 * observer gives the template's data as "key=value\n" lines, so each message names the swipe
 * it reports. A second message naming a number is counted as a duplicate, not as an arrival.
 *
 * Steps, in a temporary directory removed at the end:
 *   1. `wxbank seed --cards N --pans DIR/pans.tsv`, then `wxbank bind OPENID --customer K`
 *      for every cardholder K: one follower each. N is 256 by default because the sandbox
 *      holds at most WX_SANDBOX_FOLLOWERS_MAX followers and a follower is bound to one
 *      customer.
 *   2. The sandbox starts with those followers, all following; `wxbank serve` is pointed at it
 *      through WXBANK_* variables (API base, appid, secret, token, AES key, account, sms.url,
 *      alerts.template_id).
 *   3. Latency, run 1 (alerts on): request i is due at t0 + i/rate on connection i mod 4 and
 *      is sent then whatever came back before (open loop); its latency is the observer's
 *      arrival time minus the moment the request went to the socket. An alert that never
 *      arrives counts as the time waited for it. alerts.latency_p50_ms, alerts.latency_p99_ms.
 *      On stderr besides: the p99 of each second of swipes, of the alerts and of the ISO
 *      answers (which leave the host only once the decision is durable, so a stall in both
 *      series is the journal's, one in the alerts' alone the dispatcher's), and the bank's own
 *      alert counters (GET /metrics) and memory.
 *   4. Dispatch rate. Run 2, alerts.enabled = false: a burst of B authorizations as fast as
 *      the host takes them (8 connections x 64 in flight); the outbox's watermark stays where
 *      run 1 left it. Run 3, alerts on: the dispatcher catches up from the journal with B
 *      alerts to send. alerts.dispatch_msgs_per_s is the best 1-second window of template
 *      arrivals at the sandbox (sliding: the dispatcher's peak rate); the median of whole 1 s
 *      windows and the mean over the drain go to stderr.
 *
 * Settings of the bank, besides the sandbox's: alerts.max_inflight and alerts.queue_max from
 * the options (defaults below), and alerts.sms_fallback_s = 3600. The sandbox posts at most
 * WX_SANDBOX_DELIVERIES_MAX delivery reports at a time and drops the rest, so at these rates
 * few reports reach the bank; with the default 60 s every run-1 alert would turn into an SMS
 * fallback during run 3, and run 3 would measure that instead of the backlog. For the same
 * reason this program logs only errors: the sandbox warns of each dropped report.
 *
 * --perf DIR records each measured server with `perf record --call-graph dwarf -p PID`
 * (attached once it accepts) into DIR/alerts-<phase>.perf.data. --only latency|dispatch runs one
 * part; --help lists the rest. One file on purpose (CMake builds every bench/NAME_bench.c as a
 * program of its own); its sections follow the steps.
 *
 * Output: BENCH lines on stdout; notes on stderr. Exit 0, 1 on failure (an alert lost or
 * sent twice included), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "bench_util.h"
#include "iso8583/iso8583.h"
#include "net/net.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/pan.h"

#define DEF_RATE         5000
#define DEF_SECONDS      20
#define DEF_CARDS        WX_SANDBOX_FOLLOWERS_MAX
#define DEF_BURST        60000
#define DEF_MAX_INFLIGHT 256    /* alerts.max_inflight (the configuration's default) */
#define DEF_QUEUE_MAX    100000 /* alerts.queue_max (the configuration's default) */
#define DEF_SB_THREADS   1      /* I/O threads of the sandbox's listener */
#define RATE_MAX         100000
#define SECONDS_MAX      600
#define BURST_MAX        2000000
#define OPEN_CONNS       4         /* open loop: connections (terminals) */
#define BURST_CONNS      8         /* burst: connections ... */
#define BURST_DEPTH      64        /* ... with this many requests in flight each */
#define MARK             "WXBENCH" /* merchant name: MARK and the request number */
#define MARK_DIGITS      10
#define SETTLE_MS        15000 /* alerts still owed when sending ends are awaited this long */
#define STALL_MS         10000 /* the drain is given up after this long with no arrival */
#define ANSWER_MS        10000 /* ISO answers still owed when sending ends: this long */
#define START_MS         60000 /* how long `wxbank serve` may take to accept */
#define STOP_MS          30000 /* how long it may take to stop after SIGTERM */
#define PERF_ATTACH_MS   300   /* perf's time to attach before the load starts */
#define METRICS_MAX      (256u << 10) /* the bank's /metrics answer, at most */

/* The account the bank and the sandbox share, as the bank and the platform would. */
#define APPID       "wx5823bf96d3bd56c7"
#define SECRET      "bench-secret-5a1c"
#define TOKEN       "QDG6eK"
#define AES_KEY     "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define ACCOUNT     "gh_7f083739789a"
#define TEMPLATE_ID "bench_card_alert"

/* What the sandbox's observer saw. Written on the sandbox's thread only; the main thread reads
 * n with acquire and then the log entries below it. */
struct seen {
    _Atomic int64_t *arrive_ns;    /* by request number: first arrival, monotonic ns; 0: none */
    _Atomic int64_t *log_ns;       /* first arrivals in order of arrival, for rates */
    size_t cap;                    /* request numbers (entries of both arrays) */
    atomic_size_t n;               /* entries of log_ns written */
    atomic_uint_least64_t dups;    /* a second message for a request number */
    atomic_uint_least64_t repeats; /* client_msg_id repeats the sandbox absorbed */
    atomic_uint_least64_t strays;  /* template messages naming no request of ours */
    atomic_uint_least64_t others;  /* customer-service messages and SMS */
};

/* ISO answers of one phase. */
struct tally {
    uint64_t sent, answers, approved, invalid;
    uint64_t codes[100]; /* answers by field 39 */
};

/* What the command line asks for (defaults: DEF_*). */
struct options {
    unsigned rate, seconds; /* latency: offered authorizations/s, for this long */
    unsigned cards;         /* cardholders, one follower each */
    unsigned burst;         /* dispatch: the backlog */
    unsigned max_inflight;  /* alerts.max_inflight */
    unsigned queue_max;     /* alerts.queue_max */
    unsigned sb_threads;    /* I/O threads of the sandbox's listener */
    bool latency, dispatch; /* the parts to run (--only) */
    const char *perf_dir;   /* --perf: record the servers there; NULL: no */
    bool keep;              /* --keep: leave the temporary directory */
};

/* The whole benchmark's state. */
struct bench {
    struct options o;
    char dir[256];                /* temporary directory ("" when none) */
    char pans[320];               /* dir/pans.tsv */
    char wxbank[PATH_MAX];        /* the wxbank next to this program */
    struct bench_card *cards;     /* the seeded cards */
    uint32_t n_cards;             /* how many */
    unsigned iso_port, http_port; /* the bank's listeners */
    struct sockaddr_in iso_addr;  /* the bank's ISO 8583 listener */
    pid_t server;                 /* `wxbank serve`; 0 when not running */
    pid_t perf;                   /* perf recording it; 0 when not */
    wx_hub_t *sb_hub;             /* the sandbox's loop ... */
    wx_http_t *sb_http;           /* ... its listener ... */
    wx_sandbox_t *sb;             /* ... and the sandbox */
    pthread_t sb_thread;          /* runs sb_hub */
    bool sb_running;              /* sb_thread was started */
    char api_base[128];           /* wechat.api_base for the bank */
    struct seen seen;             /* what reached the sandbox */
    int64_t *sent_ns;             /* by request number: when it went to the socket */
    int64_t *answer_ns;           /* by request number: when its ISO answer came */
    uint64_t next_req;            /* the next request number */
    uint64_t rng;                 /* xorshift64 state: cards and amounts */
    struct bench_stamp when;      /* fields 7, 12, 13 */
    struct bench_iso io;          /* the running phase's connections, tagged request numbers */
    struct tally t;               /* the running phase's answers */
    struct wx_iso_msg *msg;       /* request being built, answer being decoded (8 KiB) */
};

/* ---- options --------------------------------------------------------------------------- */

static const char USAGE[] =
    "usage: alerts_bench [--rate R/s (5000)] [--seconds S (20)] [--cards N (256)]\n"
    "                    [--burst B (60000)] [--max-inflight N (256)] [--queue-max N (100000)]\n"
    "                    [--sandbox-threads N (1)] [--only latency|dispatch] [--perf DIR]\n"
    "                    [--keep]\n";

/* One option (bench_getopt's set): false for a bad value. */
static bool set_option(void *arg, int c)
{
    struct options *o = arg;
    bool ok = true;
    if (c == 'r') ok = parse_uint(optarg, 1, RATE_MAX, &o->rate);
    if (c == 's') ok = parse_uint(optarg, 1, SECONDS_MAX, &o->seconds);
    if (c == 'n') ok = parse_uint(optarg, 1, WX_SANDBOX_FOLLOWERS_MAX, &o->cards);
    if (c == 'b') ok = parse_uint(optarg, 1, BURST_MAX, &o->burst);
    if (c == 'i') ok = parse_uint(optarg, 1, 4096, &o->max_inflight);
    if (c == 'q') ok = parse_uint(optarg, 16, 10000000, &o->queue_max);
    if (c == 't') ok = parse_uint(optarg, 0, 15, &o->sb_threads);
    if (c == 'p') o->perf_dir = optarg;
    if (c == 'k') o->keep = true;
    if (c == 'o') {
        o->latency = strcmp(optarg, "latency") == 0;
        o->dispatch = strcmp(optarg, "dispatch") == 0;
        ok = o->latency || o->dispatch;
    }
    return ok;
}

/* Returns 0, 1 after --help, or 2 on bad usage (with a message). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option opts[] = {{"rate", required_argument, NULL, 'r'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"cards", required_argument, NULL, 'n'},
                                         {"burst", required_argument, NULL, 'b'},
                                         {"max-inflight", required_argument, NULL, 'i'},
                                         {"queue-max", required_argument, NULL, 'q'},
                                         {"sandbox-threads", required_argument, NULL, 't'},
                                         {"only", required_argument, NULL, 'o'},
                                         {"perf", required_argument, NULL, 'p'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    *o = (struct options){.rate = DEF_RATE,
                          .seconds = DEF_SECONDS,
                          .cards = DEF_CARDS,
                          .burst = DEF_BURST,
                          .max_inflight = DEF_MAX_INFLIGHT,
                          .queue_max = DEF_QUEUE_MAX,
                          .sb_threads = DEF_SB_THREADS,
                          .latency = true,
                          .dispatch = true};
    return bench_getopt(argc, argv, opts, USAGE, set_option, o, "alerts_bench");
}

/* ---- child processes -------------------------------------------------------------------- */

/* Runs a wxbank command to its end; its stdout goes to /dev/null when quiet. 0 when it
 * exited 0. */
static int run_wxbank(struct bench *b, char *const args[], bool quiet)
{
    if (bench_run(b->wxbank, args, quiet ? "/dev/null" : NULL, NULL, "alerts_bench") == 0) return 0;
    fprintf(stderr, "alerts_bench: wxbank %s failed\n", args[1]);
    return -1;
}

/* The OpenID of cardholder i's follower. The number comes first: the sandbox looks followers
 * up with strcmp, and real OpenIDs differ early too. */
static void openid_of(unsigned i, char out[WX_SANDBOX_OPENID_LEN + 1])
{
    snprintf(out, WX_SANDBOX_OPENID_LEN + 1, "o%05u_alerts_bench_follower", i % 100000u);
}

/* Step 1: N cardholders, and one follower bound to each (customer ids 1..N: a fresh
 * database numbers them in order). */
static int seed_and_bind(struct bench *b)
{
    char count[16], openid[WX_SANDBOX_OPENID_LEN + 1], customer[16];
    snprintf(count, sizeof count, "%u", b->o.cards);
    char *seed[] = {b->wxbank, "seed", "--cards", count, "--pans", b->pans, NULL};
    int64_t t0 = now_ns();
    if (run_wxbank(b, seed, false) != 0) return -1;
    for (unsigned i = 0; i < b->o.cards; i++) {
        openid_of(i, openid);
        snprintf(customer, sizeof customer, "%u", i + 1);
        char *bind[] = {b->wxbank, "bind", openid, "--customer", customer, NULL};
        if (run_wxbank(b, bind, true) != 0) return -1;
    }
    fprintf(stderr, "# %u cardholders seeded and bound to a follower each in %.1f s\n", b->o.cards,
            (double)(now_ns() - t0) / NS);
    return 0;
}

/* perf attached to the server, when --perf asks for it. */
static void perf_start(struct bench *b, const char *phase)
{
    char out[PATH_MAX], pid[16];
    if (b->o.perf_dir == NULL) return;
    snprintf(out, sizeof out, "%s/alerts-%s.perf.data", b->o.perf_dir, phase);
    snprintf(pid, sizeof pid, "%d", (int)b->server);
    /* DWARF stacks: libc, libcurl and jansson keep no frame pointers, and most of the
     * dispatcher's time is spent in them. 499 Hz keeps a drain's file near 100 MB. */
    char *args[] = {"perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-q", "-o",
                    out,    "-p",     pid,  NULL};
    if (bench_spawn("perf", args, NULL, NULL, &b->perf, "alerts_bench") != 0) {
        b->perf = 0;
        return;
    }
    bench_guard(BENCH_GUARD_AIDE, b->perf, SIGINT);
    sleep_ms(PERF_ATTACH_MS);
    fprintf(stderr, "# perf recording wxbank serve (%s) into %s\n", phase, out);
}

static void perf_stop(struct bench *b)
{
    if (b->perf <= 0) return;
    kill(b->perf, SIGINT);
    waitpid(b->perf, NULL, 0);
    b->perf = 0;
    bench_guard(BENCH_GUARD_AIDE, 0, 0);
}

/* Starts `wxbank serve` and waits until its ISO 8583 port accepts. */
static int start_server(struct bench *b, const char *phase, bool record)
{
    char *args[] = {b->wxbank, "serve", NULL};
    if (bench_spawn(b->wxbank, args, NULL, NULL, &b->server, "alerts_bench") != 0) return -1;
    bench_guard(BENCH_GUARD_SERVER, b->server, SIGTERM);
    double took =
        bench_wait_accepting(&b->server, (struct sockaddr *)&b->iso_addr, sizeof b->iso_addr,
                             START_MS, 5, "wxbank serve", "alerts_bench");
    if (took < 0) return -1;
    fprintf(stderr, "# %s: wxbank serve (pid %d) accepting after %.2f s\n", phase, (int)b->server,
            took);
    if (record) perf_start(b, phase);
    return 0;
}

/* SIGTERM, then waits (SIGKILL after STOP_MS). Returns 0 when it exited 0. */
static int stop_server(struct bench *b)
{
    if (b->server <= 0) return 0;
    perf_stop(b);
    int rc = bench_stop(&b->server, STOP_MS, "wxbank serve", "alerts_bench");
    bench_guard(BENCH_GUARD_SERVER, 0, 0);
    return rc;
}

/* ---- cards ------------------------------------------------------------------------------ */

/* The seeded cards, from pans.tsv: one for each cardholder. */
static int load_cards(struct bench *b)
{
    uint32_t bad;
    if (bench_load_cards(b->pans, b->o.cards, &b->cards, &b->n_cards, &bad, "alerts_bench") != 0) {
        return -1;
    }
    if (b->n_cards != b->o.cards) {
        fprintf(stderr, "alerts_bench: %s has %u cards, not %u\n", b->pans, b->n_cards, b->o.cards);
        return -1;
    }
    char masked[WX_PAN_MAX + 8];
    wx_pan_mask(b->cards[0].pan, masked, sizeof masked);
    fprintf(stderr, "# cards %s ... (%u)\n", masked, b->n_cards);
    return 0;
}

/* ---- the sandbox, on a thread of its own ------------------------------------------------ */

/* The request number in a template's rows: MARK followed by MARK_DIGITS digits. */
static bool request_number(const char *text, uint64_t *out)
{
    const char *p = strstr(text, MARK);
    if (p == NULL) return false;
    p += sizeof MARK - 1;
    uint64_t v = 0;
    for (int i = 0; i < MARK_DIGITS; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

/* The observer, on the sandbox's loop: notes the first arrival of each request's alert. The
 * clock is read here, as the platform's call is handled, before the bank has its answer. */
static void observe(const struct wx_sandbox_msg *m, void *arg)
{
    struct seen *s = arg;
    int64_t now = now_ns();
    uint64_t id;
    if (m->kind != WX_SANDBOX_MSG_TEMPLATE) {
        atomic_fetch_add_explicit(&s->others, 1, memory_order_relaxed);
    } else if (m->repeat) {
        atomic_fetch_add_explicit(&s->repeats, 1, memory_order_relaxed);
    } else if (!request_number(m->text, &id) || id >= s->cap) {
        atomic_fetch_add_explicit(&s->strays, 1, memory_order_relaxed);
    } else if (atomic_load_explicit(&s->arrive_ns[id], memory_order_relaxed) != 0) {
        atomic_fetch_add_explicit(&s->dups, 1, memory_order_relaxed);
    } else {
        atomic_store_explicit(&s->arrive_ns[id], now, memory_order_relaxed);
        size_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
        atomic_store_explicit(&s->log_ns[n], now, memory_order_relaxed);
        atomic_store_explicit(&s->n, n + 1, memory_order_release);
    }
}

static void *sandbox_main(void *arg)
{
    wx_hub_run(arg);
    return NULL;
}

struct stop_task {
    struct wx_hub_task task; /* first: the hub hands this back */
    wx_hub_t *hub;
};

static void run_stop(struct wx_hub_task *t, bool cancelled)
{
    if (!cancelled) wx_hub_stop(((struct stop_task *)t)->hub);
}

/* wx_http_start announces its address on stdout, which carries only BENCH lines here: the
 * announcement goes to stderr instead. */
static wx_http_t *http_start_quiet(wx_hub_t *hub, const struct wx_http_options *ho, char *err,
                                   size_t errlen)
{
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(STDERR_FILENO, STDOUT_FILENO);
    wx_http_t *http = wx_http_start(hub, ho, err, errlen);
    fflush(stdout);
    if (saved >= 0) {
        dup2(saved, STDOUT_FILENO);
        close(saved);
    }
    return http;
}

static int add_followers(struct bench *b, char *err, size_t errlen)
{
    char openid[WX_SANDBOX_OPENID_LEN + 1], nick[32];
    for (unsigned i = 0; i < b->o.cards; i++) {
        openid_of(i, openid);
        snprintf(nick, sizeof nick, "Cardholder %u", i + 1);
        struct wx_sandbox_follower f = {.openid = openid, .nickname = nick, .following = true};
        if (wx_sandbox_add_follower(b->sb, &f, NULL, err, errlen) != 0) return -1;
    }
    return 0;
}

/* Step 2: the sandbox on a free port, its followers, the observer, and its thread. */
static int sandbox_start(struct bench *b)
{
    char err[256] = "", hook[64];
    b->sb_hub = wx_hub_new(NULL, NULL, err, sizeof err);
    if (b->sb_hub == NULL) goto fail;
    struct wx_http_options ho = {.listen = "127.0.0.1:0",
                                 .body_max = 1u << 20,
                                 .timeout_s = 60,
                                 .max_connections = 1024,
                                 .threads = b->o.sb_threads};
    b->sb_http = http_start_quiet(b->sb_hub, &ho, err, sizeof err);
    if (b->sb_http == NULL) goto fail;
    snprintf(hook, sizeof hook, "http://127.0.0.1:%u/wechat", b->http_port);
    struct wx_sandbox_options so = {.appid = APPID,
                                    .secret = SECRET,
                                    .token = TOKEN,
                                    .aes_key = AES_KEY,
                                    .mode = WX_SANDBOX_SAFE,
                                    .webhook_url = hook,
                                    .account = ACCOUNT};
    b->sb = wx_sandbox_start(b->sb_hub, b->sb_http, &so, err, sizeof err);
    if (b->sb == NULL || add_followers(b, err, sizeof err) != 0) goto fail;
    wx_sandbox_set_observer(b->sb, observe, &b->seen);
    snprintf(b->api_base, sizeof b->api_base, "%s", wx_sandbox_api_base(b->sb));
    if (pthread_create(&b->sb_thread, NULL, sandbox_main, b->sb_hub) != 0) {
        snprintf(err, sizeof err, "cannot start its thread");
        goto fail;
    }
    b->sb_running = true;
    fprintf(stderr, "# sandbox at %s, %u followers, %u I/O threads\n", b->api_base, b->o.cards,
            b->o.sb_threads);
    return 0;
fail:
    fprintf(stderr, "alerts_bench: sandbox: %s\n", err);
    return -1;
}

/* Stops the sandbox's loop (from this thread, through a posted task) and frees it. */
static void sandbox_stop(struct bench *b)
{
    if (b->sb_running) {
        struct stop_task st = {.task.run = run_stop, .hub = b->sb_hub};
        wx_hub_post(b->sb_hub, &st.task);
        pthread_join(b->sb_thread, NULL);
        wx_hub_discard_posted(b->sb_hub);
        b->sb_running = false;
    }
    wx_sandbox_free(b->sb);
    wx_http_free(b->sb_http);
    if (b->sb_hub != NULL) wx_hub_free(b->sb_hub);
    b->sb = NULL;
    b->sb_http = NULL;
    b->sb_hub = NULL;
}

/* ---- the bank's configuration ----------------------------------------------------------- */

/* What every wxbank command reads: the database, and warnings only. */
static int set_base_environment(struct bench *b)
{
    char db[400];
    snprintf(db, sizeof db, "sqlite:%s/bench.db", b->dir);
    const char *const vars[][2] = {{"WXBANK_DB_URL", db}, {"WXBANK_LOG_LEVEL", "warn"}};
    return bench_setenv(vars, sizeof vars / sizeof vars[0]);
}

/* What `wxbank serve` reads besides: its listeners, the sandbox as the platform and the SMS
 * gateway, and the dispatcher's settings. */
static int set_bank_environment(struct bench *b)
{
    char iso[32], http[32], sms[160], inflight[16], queue[16];
    snprintf(iso, sizeof iso, "127.0.0.1:%u", b->iso_port);
    snprintf(http, sizeof http, "127.0.0.1:%u", b->http_port);
    snprintf(sms, sizeof sms, "%s/sms/send", b->api_base);
    snprintf(inflight, sizeof inflight, "%u", b->o.max_inflight);
    snprintf(queue, sizeof queue, "%u", b->o.queue_max);
    const char *const vars[][2] = {
        {"WXBANK_ISO8583_LISTEN", iso},
        {"WXBANK_HTTP_LISTEN", http},
        {"WXBANK_WECHAT_APPID", APPID},
        {"WXBANK_WECHAT_SECRET", SECRET},
        {"WXBANK_WECHAT_TOKEN", TOKEN},
        {"WXBANK_WECHAT_AES_KEY", AES_KEY},
        {"WXBANK_WECHAT_MODE", "safe"},
        {"WXBANK_WECHAT_ACCOUNT", ACCOUNT},
        {"WXBANK_WECHAT_API_BASE", b->api_base},
        {"WXBANK_SMS_URL", sms},
        {"WXBANK_ALERTS_TEMPLATE_ID", TEMPLATE_ID},
        {"WXBANK_ALERTS_MAX_INFLIGHT", inflight},
        {"WXBANK_ALERTS_QUEUE_MAX", queue},
        {"WXBANK_ALERTS_SMS_FALLBACK_S", "3600"},
        {"WXBANK_ALERTS_ENABLED", "true"},
    };
    b->iso_addr = bench_loopback(b->iso_port);
    return bench_setenv(vars, sizeof vars / sizeof vars[0]);
}

/* ---- requests --------------------------------------------------------------------------- */

/* Appends request number b->next_req to c's output: a 0100 as `wxbank pos auth` builds it
 * (bench_auth_numbered: a domestic POS, an alert by WeChat alone), merchant MARK + the
 * number. False when c has no room (or it does not pack, which cannot happen with seeded
 * cards: said). */
static bool queue_request(struct bench *b, struct bench_iso_conn *c)
{
    char name[24] = MARK;
    uint64_t id = b->next_req;
    uint8_t *out = bench_iso_slot(c);
    if (out == NULL || id >= b->seen.cap) return false;
    put_digits((uint8_t *)name + sizeof MARK - 1, MARK_DIGITS, id);
    int len = bench_auth_numbered(b->msg, b->cards, b->n_cards, &b->rng, &b->when, id, name) == 0
                  ? bench_frame(WX_ISO_ASCII87, b->msg, out, BENCH_ISO_SLOT)
                  : -1;
    if (len < 0) {
        fprintf(stderr, "alerts_bench: a 0100 does not pack\n");
        return false;
    }
    bench_iso_sent(c, (size_t)len, id);
    b->t.sent++;
    b->next_req++;
    return true;
}

/* ---- connections ------------------------------------------------------------------------ */

/* Opens n connections to the bank's ISO 8583 listener. 0, or -1 (said). */
static int conns_open(struct bench *b, unsigned n)
{
    return bench_iso_open(&b->io, n, (struct sockaddr *)&b->iso_addr, sizeof b->iso_addr);
}

/* Counts one answer (bench_iso_take_fn) by its field 39, the host answering in order
 * (iso_bench checks STANs), and notes when request number tag had it. */
static void on_answer(void *arg, uint64_t tag, uint32_t nth, const uint8_t *body, size_t len,
                      int64_t now)
{
    struct bench *b = arg;
    struct wx_iso_error err;
    int code = -1;
    (void)nth;
    if (wx_iso_unpack(WX_ISO_ASCII87, body, len, b->msg, &err) == 0 && b->msg->mti == 110) {
        code = bench_code(b->msg);
    }
    b->answer_ns[tag] = now;
    if (code < 0) {
        b->t.invalid++;
        return;
    }
    b->t.answers++;
    b->t.codes[code]++;
    b->t.approved += code == 0;
}

/* Waits for the answers still owed, up to ANSWER_MS. Returns 0, or -1 when some never came. */
static int await_answers(struct bench *b)
{
    uint64_t owed;
    if (bench_iso_drain(&b->io, ANSWER_MS, &owed) != 0) return -1;
    if (owed == 0) return 0;
    fprintf(stderr, "alerts_bench: %" PRIu64 " requests never answered\n", owed);
    return -1;
}

/* The share of approvals and the other response codes, on stderr. */
static void print_codes(const struct tally *t, const char *phase)
{
    fprintf(stderr,
            "# %s: %" PRIu64 " sent, %" PRIu64 " answered (%" PRIu64 " approved), %" PRIu64
            " invalid; codes:",
            phase, t->sent, t->answers, t->approved, t->invalid);
    bench_print_codes(t->codes);
    fputc('\n', stderr);
}

/* ---- where the two cores went ----------------------------------------------------------- */

struct cpu {
    double self;      /* this process: load generator and sandbox, every thread */
    double loop;      /* the sandbox's loop thread */
    double server;    /* `wxbank serve`, every thread */
    double bank_loop; /* its main thread: the hub's loop, where the dispatcher runs */
    int64_t at;       /* when taken, monotonic ns */
};

static struct cpu cpu_now(const struct bench *b)
{
    struct timespec ts = {0, 0};
    clockid_t cid;
    if (b->sb_running && pthread_getcpuclockid(b->sb_thread, &cid) == 0) {
        clock_gettime(cid, &ts);
    }
    return (struct cpu){.self = bench_self_cpu(),
                        .loop = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9,
                        .server = bench_proc_cpu(b->server, 0),
                        .bank_loop = bench_proc_cpu(b->server, b->server),
                        .at = now_ns()};
}

/* "wxbank serve 1.01 cores (its loop 0.80), sandbox loop 0.40, ..." over a phase, on stderr:
 * which of the two cores' users is the bottleneck. */
static void print_cpu(const struct bench *b, const struct cpu *since, const char *phase)
{
    struct cpu now = cpu_now(b);
    double wall = (double)(now.at - since->at) / NS;
    fprintf(stderr,
            "# %s: CPU over %.1f s: wxbank serve %.2f cores (its loop thread %.2f), sandbox loop "
            "%.2f, this process %.2f (load generator and sandbox)\n",
            phase, wall, (now.server - since->server) / wall,
            (now.bank_loop - since->bank_loop) / wall, (now.loop - since->loop) / wall,
            (now.self - since->self) / wall);
}

/* The server's resident memory in KiB (VmRSS), 0 when unknown. */
static long server_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = 0;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return kib;
}

/* GETs the bank's /metrics into buf (cap bytes, NUL-terminated). Its length; 0 on failure. */
static size_t get_metrics(const struct bench *b, char *buf, size_t cap)
{
    static const char req[] =
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    struct sockaddr_in a = bench_loopback(b->http_port);
    struct timeval tv = {2, 0};
    size_t len = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
              connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1);
    while (ok && len < cap - 1) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        ok = n > 0;
        len += ok ? (size_t)n : 0;
    }
    if (fd >= 0) close(fd);
    buf[len] = '\0';
    return len;
}

/* The bank's own alert counters and its memory, on stderr: retries, failures and delivery
 * reports, which the sandbox's view alone would not show. */
static void print_bank_state(const struct bench *b, const char *phase)
{
    char *buf = wx_malloc(METRICS_MAX);
    get_metrics(b, buf, METRICS_MAX);
    fprintf(stderr, "# %s: wxbank serve RSS %ld MiB; alerts:", phase,
            server_rss_kib(b->server) / 1024);
    for (char *p = buf, *nl; *p != '\0'; p = nl + 1) {
        nl = strchr(p, '\n');
        if (nl == NULL) break;
        *nl = '\0';
        if (strncmp(p, "wxbank_alerts_", 14) == 0 && strstr(p, "_bucket{") == NULL) {
            fprintf(stderr, " %s", p + 14);
        }
    }
    fputc('\n', stderr);
    free(buf);
}

/* ---- step 3: latency at a fixed rate ---------------------------------------------------- */

/* Queues request i of the open loop on connection i mod OPEN_CONNS (bench_iso_offer's queue).
 * Its swipe time is taken here; the flush that writes it follows within the same turn. */
static bool queue_swipe(void *arg, uint64_t i, int64_t due, int64_t now)
{
    struct bench *b = arg;
    uint64_t id = b->next_req;
    (void)due;
    if (!queue_request(b, &b->io.c[i % b->io.n])) return false;
    b->sent_ns[id] = now;
    return true;
}

/* Waits until `want` first arrivals beyond log entry n0 are in, or `ms` passed. Serves the
 * ISO connections meanwhile. Returns the arrivals counted. */
static size_t await_arrivals(struct bench *b, size_t n0, size_t want, long ms)
{
    int64_t deadline = now_ns() + (int64_t)ms * 1000000;
    size_t got = 0;
    while ((got = atomic_load_explicit(&b->seen.n, memory_order_acquire) - n0) < want &&
           now_ns() < deadline) {
        if (b->io.n > 0) {
            bench_iso_wait(&b->io, 5000000);
        } else {
            sleep_ms(5);
        }
    }
    return got;
}

/* us[k]: request first + k's latency in microseconds, to its alert's arrival at the sandbox,
 * or with iso to its ISO answer (which leaves the host once its decision is durable). One that
 * never came counts as the time from its swipe to `end`. Returns how many never came. */
static uint64_t latencies(const struct bench *b, uint64_t first, uint64_t total, int64_t end,
                          bool iso, uint32_t *us)
{
    uint64_t missing = 0;
    for (uint64_t k = 0, id = first; k < total; k++, id++) {
        int64_t at = iso ? b->answer_ns[id]
                         : atomic_load_explicit(&b->seen.arrive_ns[id], memory_order_relaxed);
        if (at == 0) {
            missing++;
            at = end;
        }
        int64_t d = at - b->sent_ns[id];
        us[k] = d > 0 ? (uint32_t)(d / 1000) : 0;
    }
    return missing;
}

/* The p99 of each second of swipes, on stderr: a tail that grows with the run (state that
 * piles up) looks different from one made by a few stalls, and the ISO answers' series says
 * whether a stall was the journal's (both) or the alerts' alone. Sorts us by slice. */
static void print_p99_by_second(uint32_t *us, uint64_t total, unsigned rate, const char *what)
{
    fprintf(stderr, "# latency: %s p99 by second of swipes (ms):", what);
    for (uint64_t from = 0; from < total; from += rate) {
        uint64_t n = total - from < rate ? total - from : rate;
        qsort(us + from, n, sizeof *us, cmp_u32);
        fprintf(stderr, " %.0f", bench_quantile_ms(us + from, n, 990));
    }
    fputc('\n', stderr);
}

/* p50, p99, p99.9 and max of request numbers [first, first + total), swipe to platform; the
 * ISO answers' for comparison. */
static void report_latency(struct bench *b, uint64_t first, uint64_t total, int64_t end)
{
    uint32_t *us = wx_calloc(total, sizeof *us);
    latencies(b, first, total, end, true, us);
    print_p99_by_second(us, total, b->o.rate, "ISO answer");
    qsort(us, total, sizeof *us, cmp_u32);
    fprintf(stderr, "# latency: swipe to ISO answer p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
            bench_quantile_ms(us, total, 500), bench_quantile_ms(us, total, 990),
            us[total - 1] / 1000.0);
    uint64_t missing = latencies(b, first, total, end, false, us);
    print_p99_by_second(us, total, b->o.rate, "alert");
    qsort(us, total, sizeof *us, cmp_u32);
    double p50 = bench_quantile_ms(us, total, 500), p99 = bench_quantile_ms(us, total, 990);
    fprintf(stderr,
            "# latency: %" PRIu64 " alerts, %" PRIu64 " never arrived; swipe to platform p50 "
            "%.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms\n",
            total, missing, p50, p99, bench_quantile_ms(us, total, 999), us[total - 1] / 1000.0);
    if (p99 > 200.0) fprintf(stderr, "# latency: p99 %.1f ms is above the 200 ms target\n", p99);
    printf("BENCH alerts.latency_p50_ms %.1f ms\n", p50);
    printf("BENCH alerts.latency_p99_ms %.1f ms\n", p99);
    fflush(stdout);
    free(us);
}

/* Run 1: alerts on, the fixed rate, every alert awaited. */
static int latency_phase(struct bench *b)
{
    uint64_t first = b->next_req, total = (uint64_t)b->o.rate * b->o.seconds;
    size_t n0 = atomic_load_explicit(&b->seen.n, memory_order_acquire);
    b->t = (struct tally){0};
    if (start_server(b, "latency", true) != 0 || conns_open(b, OPEN_CONNS) != 0) return -1;
    struct cpu cpu = cpu_now(b);
    struct bench_rate r = {.t0 = now_ns() + 1000000, .rate = b->o.rate};
    int rc = bench_iso_offer(&b->io, &r, total, queue_swipe, b);
    print_cpu(b, &cpu, "latency");
    if (rc == 0) rc = await_answers(b);
    size_t got = rc == 0 ? await_arrivals(b, n0, total, SETTLE_MS) : 0;
    int64_t end = now_ns();
    bench_iso_close(&b->io);
    print_bank_state(b, "latency");
    if (stop_server(b) != 0 || rc != 0) return -1;
    print_codes(&b->t, "latency");
    fprintf(stderr,
            "# latency: %u/s offered for %u s over %d connections; client lag max %.2f ms\n",
            b->o.rate, b->o.seconds, OPEN_CONNS, (double)r.lag_max_ns / 1e6);
    report_latency(b, first, total, end);
    return got == total ? 0 : -1;
}

/* ---- step 4: the dispatcher's peak rate ------------------------------------------------- */

/* Keeps BURST_DEPTH requests in flight on each of BURST_CONNS connections until `total` are
 * answered. Returns 0, or -1 on a lost connection. */
static int send_burst(struct bench *b, uint64_t total)
{
    int rc = conns_open(b, BURST_CONNS);
    int64_t t0 = now_ns();
    while (rc == 0 && b->t.answers + b->t.invalid < total) {
        for (unsigned i = 0; i < b->io.n && b->t.sent < total; i++) {
            struct bench_iso_conn *c = &b->io.c[i];
            while (c->in_flight < BURST_DEPTH && b->t.sent < total && queue_request(b, c)) {
            }
        }
        rc = bench_iso_flush_all(&b->io);
        if (rc == 0) rc = bench_iso_wait(&b->io, 10000000);
    }
    double s = (double)(now_ns() - t0) / NS;
    bench_iso_close(&b->io);
    if (rc == 0) {
        fprintf(stderr, "# burst: %" PRIu64 " authorizations in %.2f s (%.0f/s), alerts off\n",
                total, s, (double)total / s);
    }
    return rc;
}

/* Run 2: the backlog, journaled with the dispatcher off. */
static int burst_phase(struct bench *b)
{
    b->t = (struct tally){0};
    if (setenv("WXBANK_ALERTS_ENABLED", "false", 1) != 0) return -1;
    int rc = start_server(b, "burst", false);
    if (rc == 0) rc = send_burst(b, b->o.burst);
    if (stop_server(b) != 0) rc = -1;
    if (setenv("WXBANK_ALERTS_ENABLED", "true", 1) != 0) rc = -1;
    print_codes(&b->t, "burst");
    return rc;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

/*
 * The drain's rates from the arrival times ts[0..n): the best sliding 1 s window (what is
 * reported: the peak), the median of the whole 1 s windows from the first arrival, and the
 * mean. Returns the best window's count.
 */
static uint64_t drain_rates(const int64_t *ts, size_t n, int64_t started)
{
    size_t lo = 0, best = 0;
    for (size_t hi = 0; hi < n; hi++) {
        while (ts[hi] - ts[lo] >= NS)
            lo++;
        if (hi - lo + 1 > best) best = hi - lo + 1;
    }
    size_t windows = (size_t)((ts[n - 1] - ts[0]) / NS);
    uint64_t *per = wx_calloc(windows + 1, sizeof *per);
    for (size_t i = 0; i < n; i++) {
        size_t w = (size_t)((ts[i] - ts[0]) / NS);
        if (w < windows) per[w]++;
    }
    qsort(per, windows, sizeof *per, cmp_u64);
    double span = (double)(ts[n - 1] - ts[0]) / NS;
    fprintf(stderr,
            "# drain: first alert %.2f s after the server started, %zu in %.2f s: mean %.0f/s, "
            "median of %zu whole 1 s windows %" PRIu64 "/s, best 1 s window %zu/s\n",
            (double)(ts[0] - started) / NS, n, span, span > 0 ? (double)n / span : 0.0, windows,
            windows > 0 ? per[windows / 2] : 0, best);
    if (span < 2.0) fprintf(stderr, "# drain: shorter than 2 s: give a larger --burst\n");
    free(per);
    return best;
}

/* Run 3: alerts on, the dispatcher catches up with the burst from the journal. */
static int drain_phase(struct bench *b, uint64_t first)
{
    size_t n0 = atomic_load_explicit(&b->seen.n, memory_order_acquire);
    uint64_t dups0 = atomic_load(&b->seen.dups);
    int64_t started = now_ns();
    if (start_server(b, "drain", true) != 0) return -1;
    struct cpu cpu = cpu_now(b);
    size_t got = 0, last = SIZE_MAX;
    while (got < b->o.burst && got != last) {
        last = got;
        got = await_arrivals(b, n0, b->o.burst, STALL_MS);
    }
    print_cpu(b, &cpu, "drain");
    print_bank_state(b, "drain");
    int rc = stop_server(b);
    int64_t *ts = wx_calloc(got + 1, sizeof *ts);
    for (size_t i = 0; i < got; i++)
        ts[i] = atomic_load_explicit(&b->seen.log_ns[n0 + i], memory_order_relaxed);
    uint64_t dups = atomic_load(&b->seen.dups) - dups0;
    fprintf(stderr,
            "# drain: %zu of %u alerts arrived (requests %" PRIu64 "..), %" PRIu64 " sent twice\n",
            got, b->o.burst, first, dups);
    if (got > 0) {
        printf("BENCH alerts.dispatch_msgs_per_s %" PRIu64 " msgs/s\n",
               drain_rates(ts, got, started));
        fflush(stdout);
    }
    free(ts);
    return rc == 0 && got == b->o.burst ? 0 : -1;
}

/* Runs 2 and 3 (and before them a start with alerts on, when run 1 did not run: the outbox,
 * <db>.notify, is created at the journal's end by the first start with alerts on, and only
 * rows after its watermark are caught up). */
static int dispatch_phase(struct bench *b)
{
    if (!b->o.latency && (start_server(b, "outbox", false) != 0 || stop_server(b) != 0)) {
        return -1;
    }
    uint64_t first = b->next_req;
    if (burst_phase(b) != 0) return -1;
    return drain_phase(b, first);
}

/* ---- main ------------------------------------------------------------------------------- */

/* Numbers every request of the run and sizes what is kept per number. */
static void seen_init(struct bench *b)
{
    size_t cap =
        (b->o.latency ? (size_t)b->o.rate * b->o.seconds : 0) + (b->o.dispatch ? b->o.burst : 0);
    b->seen.cap = cap;
    b->seen.arrive_ns = wx_calloc(cap, sizeof *b->seen.arrive_ns);
    b->seen.log_ns = wx_calloc(cap, sizeof *b->seen.log_ns);
    b->sent_ns = wx_calloc(cap, sizeof *b->sent_ns);
    b->answer_ns = wx_calloc(cap, sizeof *b->answer_ns);
}

/* Steps 1 and 2. */
static int setup(struct bench *b)
{
    if (bench_make_dir(b->dir, sizeof b->dir, "wxalertsbench", "alerts_bench") != 0) return -1;
    snprintf(b->pans, sizeof b->pans, "%s/pans.tsv", b->dir);
    b->iso_port = free_port();
    b->http_port = free_port();
    if (bench_find_wxbank(b->wxbank, sizeof b->wxbank, "alerts_bench") != 0 || b->iso_port == 0 ||
        b->http_port == 0 || set_base_environment(b) != 0 || seed_and_bind(b) != 0 ||
        load_cards(b) != 0 || sandbox_start(b) != 0 || set_bank_environment(b) != 0) {
        return -1;
    }
    return 0;
}

/* Lost or doubled alerts, and messages nobody expected, on stderr. False when any was lost
 * or doubled. */
static bool check_seen(const struct bench *b)
{
    uint64_t dups = atomic_load(&b->seen.dups), strays = atomic_load(&b->seen.strays);
    fprintf(stderr,
            "# sandbox: %zu alerts of %zu requests, %" PRIu64 " sent twice, %" PRIu64
            " repeats absorbed, %" PRIu64 " template messages naming no request, %" PRIu64
            " other messages (SMS, customer service)\n",
            atomic_load(&b->seen.n), b->seen.cap, dups, atomic_load(&b->seen.repeats), strays,
            atomic_load(&b->seen.others));
    return dups == 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int rc = parse_options(argc, argv, &b.o);
    if (rc != 0) return rc == 1 ? 0 : 2;
    rc = 1;
    wx_log_set_level(WX_LOG_ERROR); /* the sandbox warns of every delivery report it drops */
    b.rng = 0x9E3779B97F4A7C15ull;
    b.io = (struct bench_iso){.who = "alerts_bench", .take = on_answer, .arg = &b};
    b.msg = wx_malloc(sizeof *b.msg);
    bench_stamp_now(&b.when);
    seen_init(&b);
    if (setup(&b) != 0) goto out;
    if (b.o.latency && latency_phase(&b) != 0) goto out;
    if (b.o.dispatch && dispatch_phase(&b) != 0) goto out;
    rc = 0;
out:
    if (stop_server(&b) != 0) rc = 1;
    sandbox_stop(&b);
    if (!check_seen(&b)) rc = 1;
    bench_end_dir(b.dir, b.o.keep);
    free(b.cards);
    free(b.msg);
    free(b.sent_ns);
    free(b.answer_ns);
    free((void *)b.seen.arrive_ns);
    free((void *)b.seen.log_ns);
    return rc;
}
