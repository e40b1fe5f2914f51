/*
 * web_bench.c - the secure pages (/m/ over HTTPS) under load, and the card switch beside them:
 * how many login forms and CAPTCHA pictures the pages serve, what a login costs, and whether
 * hashing passwords (Argon2id, m = 64 MiB, t = 2: about 0.12 s of one core each, done on the
 * pages' worker thread) stalls the loop that answers ISO 8583 authorizations.
 *
 * The server is `wxbank_test demo` (wxbank with the test route /m/test/captcha/<id> that tells
 * a picture's answer, as tests/integration/test_web.c uses it): the demo's four cardholders
 * (login password LOGIN_PW) and its WeChat sandbox on the same HTTP listener, which plays the
 * followers' chat and WeChat's OAuth page. Pages are driven with libcurl, one easy handle per
 * simulated phone, kept alive between requests (certificate checks off: the demo's is
 * self-signed); the session and OAuth cookies are kept here, as test_web.c does.
 *
 * Settings besides the demo's, through WXBANK_* variables: the pages' rate limits
 * (web.ip_requests_per_min, web.ip_posts_per_min, web.follower_posts_per_min) raised to
 * 1,000,000, since every phone here comes from 127.0.0.1 and posts far more than a person
 * would; alerts.enabled = false, since the seeded cards have no follower and each swipe would
 * otherwise send an SMS through the sandbox on the same loop; fixed loopback ports.
 *
 * Steps, in a temporary directory removed at the end:
 *   1. `wxbank_test demo --once` creates the demo bank in DIR/demo; `wxbank seed --cards N`
 *      adds N cardholders to it for the card switch; `wxbank_test demo` serves it.
 *   2. Every phone (--clients, and one more for the bindings) is a new follower of the sandbox
 *      that sends "绑定" in chat and opens the one-time link through the sandbox's OAuth: a
 *      bind session, logged out. One wrong login warms the pages up (an unknown login name is
 *      checked against a decoy hash made at the first one).
 *   3. web.form_pages_per_s: the phones GET /m/bind (the login form, with a new CAPTCHA) as
 *      fast as they can. web.captcha_draws_per_s: GET form, then GET its picture (drawn once,
 *      on the worker thread), counting pictures.
 *   4. Logins: the form, its picture, the answer from the test route, POST /m/login. First
 *      every cardholder is bound to new followers up to the limit of WX_FOLLOWERS_PER_CUSTOMER
 *      (the right password, a bind session each: 17 bindings), then one phone logs in with
 *      a wrong password under a login name nobody has (a fresh 18-digit name each time: the
 *      same Argon2 check, no binding, and no name reaches the lockout of 5) for twice the phase
 *      length. web.login_p50_ms and web.login_p99_ms: the whole login, from the form's GET to
 *      the POST's answer, of both kinds, one login at a time. web.logins_per_s: all the phones
 *      logging in wrongly at once.
 *   5. ISO 8583 at a steady --rate (request i due at t0 + i/rate, sent then whatever came
 *      back: no coordinated omission; latency = answer - due) over ISO_CONNS connections,
 *      through four windows: a warm-up second; quiet; the control, a thread of this process
 *      hashing Argon2id at the pages' cost in a loop (what one busy core and 64 MiB of
 *      memory traffic do to the loop, without the pages); and while all the phones log in as
 *      fast as they can. iso.p99_ms_quiet, iso.p99_ms_control_hash,
 *      iso.p99_ms_during_logins, and web.logins_during_iso: the logins that completed in the
 *      last window. On stderr besides: p50, p99.9 and max of each window; the CPU of the
 *      server's loop thread, which would grow by ~0.12 s per login if the loop hashed (and
 *      the max would be above 120 ms); and the journal's group commits and their mean time
 *      (the demo's /metrics), since an answer leaves only once its decision is durable.
 *
 * Output: BENCH lines on stdout; notes on stderr. Exit 0, 1 on failure, 2 on bad usage.
 */
#include <curl/curl.h>
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
#include "util/alloc.h"
#include "util/limits.h"
#include "web/web.h"

#define DEF_SECONDS 5    /* each phase, and each ISO window */
#define DEF_CLIENTS 4    /* phones at once */
#define DEF_RATE    2000 /* ISO authorizations per second */
#define DEF_CARDS   1000 /* seeded cardholders the switch's requests use */
#define SECONDS_MAX 120
#define CLIENTS_MAX 16
#define RATE_MAX    20000
#define CARDS_MAX   100000
#define WARMUP_S    1          /* ISO load before the quiet window */
#define LAT_CAP     (1u << 16) /* latencies kept per phone and phase */
#define START_MS    60000      /* how long the demo may take to say it runs */
#define STOP_MS     30000      /* how long it may take to stop after SIGTERM */
#define WAIT_MS     20000      /* longest wait for an HTTP answer or a chat reply */
#define DRAIN_MS    5000       /* ISO answers still owed when sending ends */
#define ERRORS_MAX  20         /* a phone stops after this many failed operations */
#define URL_MAX     1024
#define BODY_MAX    (1u << 20) /* an answer's body, at most */
#define SID_LEN     64         /* a session id, a CSRF token, a link: 64 hex */
#define PICTURE_LEN 16         /* a picture's id in its URL: 16 hex */
#define ANSWER_LEN  5          /* characters of a picture's answer */
#define ISO_CONNS   4          /* connections (terminals) of the card switch */

#define LOGIN_PW "Demo-2026-pass"    /* every demo cardholder's login password */
#define WRONG_PW "Bench-Wrong-2026q" /* nobody's */

/* The demo's cardholders (src/cli/cmd_demo.c): their login names, and the followers the demo
 * itself binds to each. */
static const struct {
    const char *login;
    unsigned bound;
} HOLDERS[] = {
    {"110101199003074512", 1}, /* 张伟 */
    {"310104198512120028", 1}, /* 李娜 */
    {"31010419880808002X", 1}, /* 王芳 */
    {"K12345678", 0},          /* Alice Chen */
};

/* What the phones do in a phase. */
enum op {
    OP_FORM,  /* GET /m/bind: the login form and a new CAPTCHA */
    OP_DRAW,  /* GET the form, then its picture */
    OP_LOGIN, /* a whole login with a wrong password under a fresh name */
};

/* One answer, as much of it as the benchmark reads. */
struct resp {
    long status;
    char *body; /* NUL-terminated, BODY_MAX bytes at most */
    size_t len, cap;
    char location[URL_MAX];  /* the Location header; "" when none */
    char sid[SID_LEN + 1];   /* the session cookie (__Host-wxs) it set; "" when none */
    char state[SID_LEN + 1]; /* the OAuth state cookie (__Host-wxo) it set; "" when none */
    bool too_big;            /* the body went past BODY_MAX */
};

struct bench;

/* One phone: a libcurl handle kept alive between requests, its follower and session. */
struct client {
    struct bench *b;
    CURL *h;
    struct resp r;                 /* the last answer */
    char openid[40];               /* the follower */
    char sid[SID_LEN + 1];         /* the session cookie */
    char csrf[SID_LEN + 1];        /* the token of the last form */
    char picture[PICTURE_LEN + 1]; /* the id of the last form's picture */
    long connects;                 /* connections libcurl opened (keep-alive: few) */
    uint64_t rng;                  /* xorshift64: login names */
    pthread_t thread;
    uint64_t ops, errors; /* operations done in the phase's window, and failed */
    uint32_t *lat_us;     /* LAT_CAP: the operations' latencies (a login: all of it) */
    uint32_t *post_us;    /* LAT_CAP: a login's POST alone */
    size_t n_lat, n_post; /* entries used */
};

/* Where threads wait until the main thread lets them go (without waking meanwhile: the
 * quiet window is measured while they wait). */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool open;
};

/* A phase of phones: they wait at the gate, then work until stop. The main thread sets the
 * times just before it opens the gate and raises stop. */
struct crowd {
    struct gate go;
    atomic_bool stop;
    enum op op;
    unsigned started; /* phones whose threads run: b->phones[0..started) */
    int64_t go_ns, stop_ns;
};

/* The control: Argon2id at the pages' cost, hashed in a loop by a thread of this process
 * rather than by the server, to tell what two busy cores do to the loop from what the pages
 * would. */
struct hog {
    struct gate go;
    atomic_bool stop;
    pthread_t thread;
    bool running;    /* thread was started */
    uint64_t hashes; /* done before stop */
};

/* The ISO load's windows, in order: each is --seconds long but the warm-up. */
enum window { W_WARM, W_QUIET, W_CONTROL, W_LOGINS, W_END };
static const char *const WINDOW_NAME[] = {"warm-up", "quiet", "beside the control hash",
                                          "during logins"};

/* What the demo and this process have used so far. */
struct usage {
    double self;     /* CPU seconds: this process, every thread */
    double server;   /* the demo, every thread */
    double loop;     /* its main thread: the hub's loop (pages, engine, ISO 8583) */
    double commits;  /* the journal's group commits (/metrics; -1 unknown) */
    double commit_s; /* and the seconds spent in them */
    int64_t at;      /* when taken, monotonic ns */
};

/* The ISO load's state and what came back. */
struct iso_load {
    struct bench_iso io;    /* ISO_CONNS connections; requests tagged with their numbers */
    struct wx_iso_msg *msg; /* request being packed, answer being decoded (8 KiB) */
    struct bench_rate r;    /* request i is due at r.t0 + i / rate */
    uint64_t total, sent;   /* requests of the run, and sent so far */
    uint32_t *lat_us;       /* by request number: answer - due; UINT32_MAX: none yet */
    uint64_t answers, approved, invalid;
    uint64_t codes[100];        /* answers by field 39 */
    uint64_t edge[W_END + 1];   /* the first request of each window; [W_END]: total */
    struct usage at[W_END + 1]; /* when each window began; [W_END]: when sending ended */
};

struct options {
    unsigned seconds; /* each phase */
    unsigned clients; /* phones at once */
    unsigned rate;    /* ISO authorizations per second */
    unsigned cards;   /* seeded cardholders */
    bool keep;        /* --keep: leave the temporary directory */
};

struct bench {
    struct options o;
    char dir[256];                  /* temporary directory ("" when none) */
    char wxbank[PATH_MAX];          /* the wxbank next to this program (seed) */
    char wxbank_test[PATH_MAX];     /* and wxbank_test (the demo with its test route) */
    unsigned http_port, https_port; /* the demo's listeners */
    unsigned iso_port;
    char http_base[64];       /* "http://127.0.0.1:PORT" */
    char https_base[64];      /* "https://127.0.0.1:PORT" */
    pid_t server;             /* the demo; 0 when not running */
    struct bench_card *cards; /* the seeded cards */
    uint32_t n_cards;
    uint64_t rng;            /* xorshift64 of the main thread: cards, amounts */
    struct bench_stamp when; /* fields 7, 12, 13 */
    struct client *phones;   /* o.clients + 1 (the last binds) */
    struct crowd crowd;      /* the running phase */
    struct hog hog;          /* the control of the ISO load */
    struct iso_load iso;
    int64_t started; /* the benchmark's start */
};

/* ---- options --------------------------------------------------------------------------- */

static const char USAGE[] =
    "usage: web_bench [--seconds S (5)] [--clients N (4)] [--rate R/s (2000)]\n"
    "                 [--cards N (1000)] [--keep]\n";

/* One option (bench_getopt's set): false for a bad value. */
static bool set_option(void *arg, int c)
{
    struct options *o = arg;
    bool ok = true;
    if (c == 's') ok = parse_uint(optarg, 1, SECONDS_MAX, &o->seconds);
    if (c == 'c') ok = parse_uint(optarg, 1, CLIENTS_MAX, &o->clients);
    if (c == 'r') ok = parse_uint(optarg, 1, RATE_MAX, &o->rate);
    if (c == 'n') ok = parse_uint(optarg, 1, CARDS_MAX, &o->cards);
    if (c == 'k') o->keep = true;
    return ok;
}

/* Returns 0, 1 after --help, or 2 on bad usage (with a message). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
                                         {"clients", required_argument, NULL, 'c'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"cards", required_argument, NULL, 'n'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    *o = (struct options){
        .seconds = DEF_SECONDS, .clients = DEF_CLIENTS, .rate = DEF_RATE, .cards = DEF_CARDS};
    return bench_getopt(argc, argv, opts, USAGE, set_option, o, "web_bench");
}

/* ---- the demo as a child process --------------------------------------------------------- */

/* The whole of a small file of the working directory into buf (cap bytes, NUL-terminated). */
static void read_small(const char *name, char *buf, size_t cap)
{
    FILE *f = fopen(name, "re");
    size_t n = f != NULL ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f != NULL) fclose(f);
}

/* Runs a command in the working directory (the temporary one) to its end, its output into the
 * files out and err there. 0 when it exited 0; else its stderr is shown. */
static int run_to_end(const char *path, char *const args[], const char *out, const char *err)
{
    if (bench_run(path, args, out, err, "web_bench") == 0) return 0;
    char text[2048];
    read_small(err, text, sizeof text);
    fprintf(stderr, "web_bench: %s %s failed: %s\n", path, args[1], text);
    return -1;
}

/* Whether the demo said its listeners run (bench_wait_ready's ready). */
static bool demo_running(void *arg)
{
    char out[8192];
    (void)arg;
    read_small("demo.out", out, sizeof out);
    return strstr(out, "are running") != NULL;
}

/* Starts `wxbank_test demo` and waits until it says its listeners run. */
static int start_demo(struct bench *b)
{
    char *args[] = {b->wxbank_test, "demo", NULL}, err[8192];
    int status = 0;
    if (bench_spawn(b->wxbank_test, args, "demo.out", "demo.err", &b->server, "web_bench") != 0) {
        return -1;
    }
    bench_guard(BENCH_GUARD_SERVER, b->server, SIGTERM);
    int64_t took = bench_wait_ready(&b->server, START_MS, 20, demo_running, NULL, &status);
    if (took == -1) {
        read_small("demo.err", err, sizeof err);
        fprintf(stderr, "web_bench: the demo exited (status %d): %s\n", status, err);
    } else if (took == -2) {
        fprintf(stderr, "web_bench: the demo did not start within %d s\n", START_MS / 1000);
    } else {
        fprintf(stderr, "# wxbank_test demo (pid %d) running after %.2f s\n", (int)b->server,
                (double)took / NS);
    }
    return took < 0 ? -1 : 0;
}

/* SIGTERM, then waits (SIGKILL after STOP_MS). Returns 0 when it exited 0. */
static int stop_demo(struct bench *b)
{
    int rc = bench_stop(&b->server, STOP_MS, "the demo", "web_bench");
    bench_guard(BENCH_GUARD_SERVER, 0, 0);
    return rc;
}

/* The variables the demo reads (see the file's comment). */
static int set_environment(struct bench *b)
{
    char http[32], https[32], iso[32];
    snprintf(http, sizeof http, "127.0.0.1:%u", b->http_port);
    snprintf(https, sizeof https, "127.0.0.1:%u", b->https_port);
    snprintf(iso, sizeof iso, "127.0.0.1:%u", b->iso_port);
    const char *const vars[][2] = {
        {"WXBANK_DB_URL", "sqlite:demo/wxbank.db"}, /* for seed; the demo sets its own */
        {"WXBANK_LOG_LEVEL", "warn"},
        {"WXBANK_HTTP_LISTEN", http},
        {"WXBANK_HTTPS_LISTEN", https},
        {"WXBANK_ISO8583_LISTEN", iso},
        {"WXBANK_WEB_OAUTH", "true"},
        {"WXBANK_WEB_IP_REQUESTS_PER_MIN", "1000000"},
        {"WXBANK_WEB_IP_POSTS_PER_MIN", "1000000"},
        {"WXBANK_WEB_FOLLOWER_POSTS_PER_MIN", "1000000"},
        {"WXBANK_ALERTS_ENABLED", "false"},
    };
    if (bench_setenv(vars, sizeof vars / sizeof vars[0]) != 0) return -1;
    snprintf(b->http_base, sizeof b->http_base, "http://%s", http);
    snprintf(b->https_base, sizeof b->https_base, "https://%s", https);
    return 0;
}

/* The seeded cards, from pans.tsv. */
static int load_cards(struct bench *b)
{
    uint32_t bad;
    if (bench_load_cards("pans.tsv", b->o.cards, &b->cards, &b->n_cards, &bad, "web_bench") != 0) {
        return -1;
    }
    if (b->n_cards != b->o.cards) {
        fprintf(stderr, "web_bench: pans.tsv has %u cards, not %u\n", b->n_cards, b->o.cards);
        return -1;
    }
    return 0;
}

/* Step 1: the demo bank, N more cardholders in it, and the demo serving it. */
static int make_bank(struct bench *b)
{
    char count[16];
    snprintf(count, sizeof count, "%u", b->o.cards);
    char *create[] = {b->wxbank_test, "demo", "--once", NULL};
    char *seed[] = {b->wxbank, "seed", "--cards", count, "--pans", "pans.tsv", NULL};
    int64_t t0 = now_ns();
    if (run_to_end(b->wxbank_test, create, "create.out", "create.err") != 0 ||
        run_to_end(b->wxbank, seed, "seed.out", "seed.err") != 0 || load_cards(b) != 0) {
        return -1;
    }
    fprintf(stderr, "# demo bank made and %u cardholders seeded in %.1f s\n", b->o.cards,
            (double)(now_ns() - t0) / NS);
    return start_demo(b);
}

/* ---- HTTP: one phone's requests ---------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    if (r->len + len + 1 > BODY_MAX) {
        r->too_big = true;
        return 0;
    }
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap != 0 ? r->cap : 16384;
        while (cap < r->len + len + 1)
            cap *= 2;
        r->body = wx_realloc(r->body, cap);
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* Whether s begins with exactly n lower-case hex digits. */
static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    }
    return true;
}

/* Copies the n hex digits after mark in s into out (n + 1 bytes); false when there are none. */
static bool hex_after(const char *s, const char *mark, size_t n, char *out)
{
    const char *p = s != NULL ? strstr(s, mark) : NULL;
    if (p == NULL || !is_hex(p + strlen(mark), n)) return false;
    memcpy(out, p + strlen(mark), n);
    out[n] = '\0';
    return true;
}

/* Keeps what the benchmark needs of a header line: Location, and the two cookies. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    char line[URL_MAX + 64];
    size_t keep = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, p, keep);
    line[keep] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (strncasecmp(line, "location: ", 10) == 0) {
        snprintf(r->location, sizeof r->location, "%.*s", URL_MAX - 1, line + 10);
    } else if (strncasecmp(line, "set-cookie: ", 12) == 0) {
        hex_after(line, "__Host-wxs=", SID_LEN, r->sid);
        hex_after(line, "__Host-wxo=", SID_LEN, r->state);
    }
    return len;
}

static CURL *client_handle(struct client *c)
{
    CURL *h = curl_easy_init();
    if (h == NULL) return NULL;
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L); /* the demo's certificate is self-signed */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &c->r);
    return h;
}

/*
 * One request on c's handle (its connections kept alive between calls): a GET when body is
 * NULL, else a POST of body as ctype. cookie: the Cookie header's value, or NULL. The answer
 * goes to c->r (redirects are not followed). Returns 0, or -1 when no answer came (said).
 */
static int request(struct client *c, const char *url, const char *cookie, const char *ctype,
                   const char *body)
{
    struct resp *r = &c->r;
    char hdr[URL_MAX];
    struct curl_slist *hdrs = NULL;
    r->status = 0;
    r->len = 0;
    r->too_big = false;
    r->location[0] = r->sid[0] = r->state[0] = '\0';
    if (r->body != NULL) r->body[0] = '\0';
    if (cookie != NULL) {
        snprintf(hdr, sizeof hdr, "Cookie: %s", cookie);
        hdrs = curl_slist_append(hdrs, hdr);
    }
    if (body != NULL) {
        snprintf(hdr, sizeof hdr, "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, hdr);
        hdrs = curl_slist_append(hdrs, "Expect:"); /* the whole form at once, as browsers do */
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(c->h);
    long connects = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c->h, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    c->connects += connects;
    if (r->body == NULL) on_body("", 1, 0, r);
    if (rc != CURLE_OK) {
        fprintf(stderr, "web_bench: %s: %s\n", url, curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* A path of the secure pages with the phone's session cookie. */
static int get_page(struct client *c, const char *path)
{
    char url[URL_MAX], cookie[96];
    snprintf(url, sizeof url, "%s%s", c->b->https_base, path);
    snprintf(cookie, sizeof cookie, "__Host-wxs=%s", c->sid);
    return request(c, url, cookie, NULL, NULL);
}

/* Fails (-1, said on stderr) unless the last answer has status and, when text is not NULL,
 * contains text. */
static int expect(const struct client *c, const char *what, long status, const char *text)
{
    if (c->r.status == status && (text == NULL || strstr(c->r.body, text) != NULL)) return 0;
    fprintf(stderr, "web_bench: %s: %ld, not %ld%s%s: %.200s\n", what, c->r.status, status,
            text != NULL ? " with " : "", text != NULL ? text : "", c->r.body);
    return -1;
}

/* ---- the sandbox: followers and chat ----------------------------------------------------- */

static int sandbox_post(struct client *c, const char *what, const char *json)
{
    char url[URL_MAX];
    snprintf(url, sizeof url, "%s/sandbox/api/%s", c->b->http_base, what);
    return request(c, url, NULL, "application/json", json);
}

/* A new follower of the account, c's from now on. */
static int new_follower(struct client *c, const char *openid)
{
    char json[256];
    snprintf(c->openid, sizeof c->openid, "%s", openid);
    snprintf(json, sizeof json, "{\"openid\":\"%s\",\"nickname\":\"%s\"}", openid, openid);
    if (sandbox_post(c, "followers", json) != 0) return -1;
    return expect(c, "new follower", 201, NULL);
}

/* c's follower says "绑定" in chat; the one-time link of the answer goes to link. */
static int chat_bind_link(struct client *c, char link[URL_MAX])
{
    char json[256], url[URL_MAX], prefix[128], token[SID_LEN + 1];
    snprintf(json, sizeof json, "{\"openid\":\"%s\",\"type\":\"text\",\"content\":\"绑定\"}",
             c->openid);
    if (sandbox_post(c, "send", json) != 0 || expect(c, "chat", 202, "\"seq\":") != 0) return -1;
    long long seq = strtoll(strstr(c->r.body, "\"seq\":") + 6, NULL, 10);
    snprintf(url, sizeof url, "%s/sandbox/api/events?after=%lld&wait=1&openid=%s", c->b->http_base,
             seq, c->openid);
    snprintf(prefix, sizeof prefix, "%s/m/go/", c->b->https_base);
    for (int64_t end = now_ns() + (int64_t)WAIT_MS * 1000000; now_ns() < end;) {
        if (request(c, url, NULL, NULL, NULL) != 0) return -1;
        if (hex_after(c->r.body, prefix, SID_LEN, token)) {
            snprintf(link, URL_MAX, "%s%s", prefix, token);
            return 0;
        }
        sleep_ms(20);
    }
    fprintf(stderr, "web_bench: no link in chat for %s\n", c->openid);
    return -1;
}

/*
 * Opens a one-time link as the phone's follower does in WeChat: the page sends it to WeChat's
 * OAuth page (the sandbox, told who is looking by its test parameter &openid=), which sends it
 * back to /m/oauth with the state cookie; that page sets the session cookie.
 */
static int open_link(struct client *c, const char *link)
{
    char url[URL_MAX + 64], state[SID_LEN + 1], cookie[96];
    if (request(c, link, NULL, NULL, NULL) != 0 || expect(c, "link", 302, NULL) != 0) return -1;
    memcpy(state, c->r.state, sizeof state);
    int n = (int)strcspn(c->r.location, "#"); /* the fragment stays in the browser */
    snprintf(url, sizeof url, "%.*s&openid=%s", n, c->r.location, c->openid);
    if (state[0] == '\0' || request(c, url, NULL, NULL, NULL) != 0 ||
        expect(c, "WeChat's OAuth page", 302, NULL) != 0) {
        return -1;
    }
    snprintf(url, sizeof url, "%s", c->r.location);
    snprintf(cookie, sizeof cookie, "__Host-wxo=%s", state);
    if (request(c, url, cookie, NULL, NULL) != 0 || expect(c, "back from OAuth", 200, NULL) != 0) {
        return -1;
    }
    if (c->r.sid[0] == '\0') {
        fprintf(stderr, "web_bench: no session cookie after OAuth\n");
        return -1;
    }
    memcpy(c->sid, c->r.sid, sizeof c->sid);
    return 0;
}

/* A new follower for c, and a bind session for it. */
static int bind_session(struct client *c, const char *openid)
{
    char link[URL_MAX];
    if (new_follower(c, openid) != 0 || chat_bind_link(c, link) != 0) return -1;
    return open_link(c, link);
}

/* ---- the login ------------------------------------------------------------------------------ */

/* GET /m/bind: a logged-out session gets the login form, with a new picture. */
static int get_form(struct client *c)
{
    if (get_page(c, "/m/bind") != 0 || expect(c, "the form", 200, "action=\"/m/login\"") != 0) {
        return -1;
    }
    if (!hex_after(c->r.body, "name=\"csrf\" value=\"", SID_LEN, c->csrf) ||
        !hex_after(c->r.body, "/m/captcha/", PICTURE_LEN, c->picture)) {
        fprintf(stderr, "web_bench: the form has no token or picture\n");
        return -1;
    }
    return 0;
}

/* The picture of the last form (drawn on the worker thread, once). */
static int get_picture(struct client *c)
{
    char path[64];
    snprintf(path, sizeof path, "/m/captcha/%s.png", c->picture);
    if (get_page(c, path) != 0 || expect(c, "the picture", 200, NULL) != 0) return -1;
    if (c->r.len < 8 || memcmp(c->r.body, "\x89PNG", 4) != 0) {
        fprintf(stderr, "web_bench: the picture is not a PNG\n");
        return -1;
    }
    return 0;
}

/*
 * A whole login: the form, its picture, the answer (wxbank_test's test route tells it), and
 * the POST. *post_ns: how long the POST alone took. The answer is left in c->r.
 */
static int login(struct client *c, const char *name, const char *password, int64_t *post_ns)
{
    char path[64], answer[ANSWER_LEN + 1], form[512];
    if (get_form(c) != 0 || get_picture(c) != 0) return -1;
    snprintf(path, sizeof path, "/m/test/captcha/%s", c->picture);
    if (get_page(c, path) != 0 || expect(c, "the test route", 200, NULL) != 0) return -1;
    if (c->r.len != ANSWER_LEN) return -1;
    memcpy(answer, c->r.body, sizeof answer);
    /* every value is letters, digits and '-': nothing to percent-encode */
    snprintf(form, sizeof form, "csrf=%s&login=%s&password=%s&captcha=%s", c->csrf, name, password,
             answer);
    char url[URL_MAX], cookie[96];
    snprintf(url, sizeof url, "%s/m/login", c->b->https_base);
    snprintf(cookie, sizeof cookie, "__Host-wxs=%s", c->sid);
    int64_t t0 = now_ns();
    int rc = request(c, url, cookie, "application/x-www-form-urlencoded", form);
    *post_ns = now_ns() - t0;
    return rc;
}

/* A login with a wrong password under a fresh 18-digit name nobody has: the same Argon2 check
 * as a customer's, no binding, and no name wrong more than once (the lockout is per name). */
static int wrong_login(struct client *c, int64_t *post_ns)
{
    char name[19];
    put_digits((uint8_t *)name, 18, xorshift64(&c->rng));
    name[0] = (char)('1' + c->rng % 9);
    name[18] = '\0';
    if (login(c, name, WRONG_PW, post_ns) != 0) return -1;
    return expect(c, "a wrong login", 400, "登录名或登录密码错误");
}

/* ---- phones at work ------------------------------------------------------------------------ */

static void record(uint32_t *lat, size_t *n, int64_t ns)
{
    if (*n < LAT_CAP) lat[(*n)++] = (uint32_t)(ns / 1000);
}

static void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = false;
}

static void gate_wait(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_set(struct gate *g, bool open)
{
    pthread_mutex_lock(&g->mu);
    g->open = open;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

/* One operation of the phase; its latency (a login: all of it) to *ns. */
static int run_op(struct client *c, enum op op, int64_t *ns, int64_t *post_ns)
{
    int64_t t0 = now_ns();
    int rc = -1;
    *post_ns = -1;
    if (op == OP_FORM) {
        rc = get_form(c);
    } else if (op == OP_DRAW && get_form(c) == 0) {
        t0 = now_ns(); /* the picture's own time */
        rc = get_picture(c);
    } else if (op == OP_LOGIN) {
        rc = wrong_login(c, post_ns);
    }
    *ns = now_ns() - t0;
    return rc;
}

/* A phone's thread: waits for go, then works until stop; what ends after stop is not
 * counted. */
static void *phone_main(void *arg)
{
    struct client *c = arg;
    struct crowd *k = &c->b->crowd;
    gate_wait(&k->go);
    while (!atomic_load(&k->stop) && c->errors < ERRORS_MAX) {
        int64_t ns, post_ns;
        int rc = run_op(c, k->op, &ns, &post_ns);
        if (atomic_load(&k->stop)) break;
        if (rc != 0) {
            c->errors++;
            continue;
        }
        c->ops++;
        record(c->lat_us, &c->n_lat, ns);
        if (post_ns >= 0) record(c->post_us, &c->n_post, post_ns);
    }
    return NULL;
}

/* Starts n phones on op; they wait for crowd_go. */
static int crowd_start(struct bench *b, enum op op, unsigned n)
{
    b->crowd.op = op;
    gate_set(&b->crowd.go, false);
    atomic_store(&b->crowd.stop, false);
    for (unsigned i = 0; i < n; i++) {
        struct client *c = &b->phones[i];
        c->ops = c->errors = 0;
        c->n_lat = c->n_post = 0;
        c->connects = 0;
        if (pthread_create(&c->thread, NULL, phone_main, c) != 0) {
            fprintf(stderr, "web_bench: cannot start a phone's thread\n");
            return -1; /* the ones started end at crowd_stop */
        }
        b->crowd.started = i + 1;
    }
    return 0;
}

static void crowd_go(struct bench *b)
{
    b->crowd.go_ns = now_ns();
    gate_set(&b->crowd.go, true);
}

/* Stops the phones (unless the ISO load did already) and waits for them. Returns the
 * operations done in the window. */
static uint64_t crowd_stop(struct bench *b, uint64_t *errors)
{
    if (!atomic_load(&b->crowd.stop)) {
        b->crowd.stop_ns = now_ns();
        atomic_store(&b->crowd.stop, true);
    }
    gate_set(&b->crowd.go, true); /* phones still waiting end at once */
    uint64_t ops = 0;
    *errors = 0;
    for (unsigned i = 0; i < b->crowd.started; i++) {
        pthread_join(b->phones[i].thread, NULL);
        ops += b->phones[i].ops;
        *errors += b->phones[i].errors;
    }
    b->crowd.started = 0;
    return ops;
}

/* The phones' latencies (post: the logins' POSTs alone) gathered into one sorted array;
 * *n its length. The caller frees it. */
static uint32_t *gather(const struct bench *b, unsigned phones, bool post, size_t *n)
{
    size_t total = 0;
    for (unsigned i = 0; i < phones; i++)
        total += post ? b->phones[i].n_post : b->phones[i].n_lat;
    uint32_t *all = wx_calloc(total + 1, sizeof *all);
    *n = 0;
    for (unsigned i = 0; i < phones; i++) {
        const struct client *c = &b->phones[i];
        size_t m = post ? c->n_post : c->n_lat;
        memcpy(all + *n, post ? c->post_us : c->lat_us, m * sizeof *all);
        *n += m;
    }
    qsort(all, *n, sizeof *all, cmp_u32);
    return all;
}

/* "p50 .. ms, p99 .. ms, max .. ms of N" on stderr, after what. */
static void print_latency(const struct bench *b, unsigned phones, bool post, const char *what)
{
    size_t n;
    uint32_t *us = gather(b, phones, post, &n);
    fprintf(stderr, "# %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %zu\n", what,
            bench_quantile_ms(us, n, 500), bench_quantile_ms(us, n, 990),
            n > 0 ? us[n - 1] / 1000.0 : 0.0, n);
    free(us);
}

/* n phones on op for seconds. Returns operations per second over the window; -1 when any
 * phone failed. */
static double timed_phase(struct bench *b, enum op op, unsigned n, unsigned seconds,
                          const char *name)
{
    uint64_t errors;
    if (crowd_start(b, op, n) != 0) {
        crowd_stop(b, &errors);
        return -1;
    }
    crowd_go(b);
    sleep_ms((long)seconds * 1000);
    uint64_t ops = crowd_stop(b, &errors);
    double s = (double)(b->crowd.stop_ns - b->crowd.go_ns) / NS;
    long connects = 0;
    for (unsigned i = 0; i < n; i++)
        connects += b->phones[i].connects;
    fprintf(stderr,
            "# %s: %" PRIu64 " in %.2f s by %u phones (%ld connections opened), %" PRIu64
            " failed\n",
            name, ops, s, n, connects, errors);
    return errors > 0 ? -1 : (double)ops / s;
}

/* ---- step 4: logins ------------------------------------------------------------------------- */

/* Binds every demo cardholder to new followers up to WX_FOLLOWERS_PER_CUSTOMER, a bind session
 * each, with the right password, by the last phone. Latencies into that phone's lat_us. */
static int bind_all(struct bench *b)
{
    struct client *c = &b->phones[b->o.clients];
    unsigned n = 0;
    c->n_lat = c->n_post = 0;
    for (size_t h = 0; h < sizeof HOLDERS / sizeof HOLDERS[0]; h++) {
        for (unsigned k = HOLDERS[h].bound; k < WX_FOLLOWERS_PER_CUSTOMER; k++) {
            char openid[40];
            int64_t post_ns;
            snprintf(openid, sizeof openid, "oWebBench_bind_%02u", n++);
            if (bind_session(c, openid) != 0) return -1;
            int64_t t0 = now_ns();
            if (login(c, HOLDERS[h].login, LOGIN_PW, &post_ns) != 0 ||
                expect(c, "a binding", 200, "绑定成功") != 0) {
                return -1;
            }
            record(c->lat_us, &c->n_lat, now_ns() - t0);
            record(c->post_us, &c->n_post, post_ns);
        }
    }
    return 0;
}

/* web.login_p50_ms, web.login_p99_ms: the bindings, then one phone's wrong logins, one login
 * at a time; then web.logins_per_s: every phone at once. */
static int login_phases(struct bench *b)
{
    struct client *binder = &b->phones[b->o.clients];
    if (bind_all(b) != 0) return -1;
    size_t nb = binder->n_lat;
    qsort(binder->lat_us, nb, sizeof *binder->lat_us, cmp_u32);
    fprintf(stderr, "# logins that bind (right password): p50 %.1f ms, max %.1f ms over %zu\n",
            bench_quantile_ms(binder->lat_us, nb, 500),
            nb > 0 ? binder->lat_us[nb - 1] / 1000.0 : 0, nb);
    if (timed_phase(b, OP_LOGIN, 1, 2 * b->o.seconds, "one phone's wrong logins") < 0) return -1;
    print_latency(b, 1, false, "wrong logins one at a time, whole login");
    print_latency(b, 1, true, "wrong logins one at a time, the POST alone");
    /* both kinds together: the binder's beside phone 0's */
    size_t n0 = b->phones[0].n_lat, n = n0 + nb;
    uint32_t *all = wx_calloc(n + 1, sizeof *all);
    memcpy(all, b->phones[0].lat_us, n0 * sizeof *all);
    memcpy(all + n0, binder->lat_us, nb * sizeof *all);
    qsort(all, n, sizeof *all, cmp_u32);
    printf("BENCH web.login_p50_ms %.1f ms\n", bench_quantile_ms(all, n, 500));
    printf("BENCH web.login_p99_ms %.1f ms\n", bench_quantile_ms(all, n, 990));
    fflush(stdout);
    free(all);
    double rate = timed_phase(b, OP_LOGIN, b->o.clients, b->o.seconds, "wrong logins, all phones");
    if (rate < 0) return -1;
    print_latency(b, b->o.clients, false, "wrong logins by all phones at once, whole login");
    print_latency(b, b->o.clients, true, "wrong logins by all phones at once, the POST alone");
    printf("BENCH web.logins_per_s %.2f logins/s\n", rate);
    fflush(stdout);
    return 0;
}

/* ---- where the two cores went ----------------------------------------------------------- */

/* The number after "\nNAME " in a /metrics text; -1 when it is not there. */
static double metric(const char *text, const char *name)
{
    char mark[96];
    snprintf(mark, sizeof mark, "\n%s ", name);
    const char *p = text != NULL ? strstr(text, mark) : NULL;
    return p != NULL ? strtod(p + strlen(mark), NULL) : -1;
}

/* Usage now; the journal's counters through the last phone's handle (idle meanwhile), on the
 * main thread only. */
static struct usage usage_now(struct bench *b)
{
    struct client *c = &b->phones[b->o.clients];
    char url[URL_MAX];
    struct usage u = {.self = bench_self_cpu(),
                      .server = bench_proc_cpu(b->server, 0),
                      .loop = bench_proc_cpu(b->server, b->server),
                      .commits = -1,
                      .commit_s = -1};
    snprintf(url, sizeof url, "%s/metrics", b->http_base);
    if (request(c, url, NULL, NULL, NULL) == 0 && c->r.status == 200) {
        u.commits = metric(c->r.body, "wxbank_journal_commits_total");
        u.commit_s = metric(c->r.body, "wxbank_journal_commit_seconds_total");
    }
    u.at = now_ns();
    return u;
}

/* ---- step 5: the card switch ------------------------------------------------------------- */

/* Appends request number i, a 0100 as `wxbank pos auth` builds it (bench_auth_numbered), to
 * connection i mod ISO_CONNS (bench_iso_offer's queue). False when there is no room (or it
 * does not pack: said). */
static bool iso_queue(void *arg, uint64_t i, int64_t due, int64_t now)
{
    struct bench *b = arg;
    struct iso_load *L = &b->iso;
    (void)due;
    (void)now;
    struct bench_iso_conn *c = &L->io.c[i % ISO_CONNS];
    uint8_t *out = bench_iso_slot(c);
    if (out == NULL) return false;
    int len = bench_auth_numbered(L->msg, b->cards, b->n_cards, &b->rng, &b->when, i,
                                  "WEB BENCH STORE") == 0
                  ? bench_frame(WX_ISO_ASCII87, L->msg, out, BENCH_ISO_SLOT)
                  : -1;
    if (len < 0) {
        fprintf(stderr, "web_bench: a 0100 does not pack\n");
        return false;
    }
    bench_iso_sent(c, (size_t)len, i);
    L->sent++;
    return true;
}

/* Counts the answer to request id (bench_iso_take_fn): its latency from when it was due, and
 * whether it is a 0110 with its STAN and a field 39. */
static void iso_answer(void *arg, uint64_t id, uint32_t nth, const uint8_t *body, size_t len,
                       int64_t now)
{
    struct bench *b = arg;
    struct iso_load *L = &b->iso;
    struct wx_iso_error err;
    size_t n11 = 0;
    const uint8_t *stan = NULL;
    char want[7] = "";
    int code = -1;
    (void)nth;
    int64_t lat = now - bench_due_ns(&L->r, id);
    L->lat_us[id] = lat > 0 ? (uint32_t)(lat / 1000) : 0;
    put_digits((uint8_t *)want, 6, id % BENCH_STAN_MAX + 1);
    if (wx_iso_unpack(WX_ISO_ASCII87, body, len, L->msg, &err) == 0 && L->msg->mti == 110) {
        stan = wx_iso_get(L->msg, 11, &n11);
        code = bench_code(L->msg);
    }
    if (stan == NULL || n11 != 6 || memcmp(stan, want, 6) != 0 || code < 0) {
        L->invalid++;
        return;
    }
    L->answers++;
    L->codes[code]++;
    L->approved += code == 0;
}

/* The control's thread: Argon2id at the pages' default cost, one hash after another, from
 * the gate until stop. */
static void *hog_main(void *arg)
{
    struct hog *h = arg;
    struct wx_password_cost cost;
    char out[WX_PASSWORD_HASH_MAX];
    wx_password_cost_default(&cost);
    gate_wait(&h->go);
    while (!atomic_load(&h->stop) && wx_password_hash(&cost, "control", 7, out) == 0) {
        if (!atomic_load(&h->stop)) h->hashes++;
    }
    return NULL;
}

/* What begins with window w (W_END: sending ends): the CPU is read, and the control or the
 * phones are let go or stopped. */
static void window_begins(struct bench *b, enum window w)
{
    b->iso.at[w] = usage_now(b);
    if (w == W_CONTROL) gate_set(&b->hog.go, true);
    if (w == W_LOGINS) {
        atomic_store(&b->hog.stop, true); /* its last hash ends in this window: ~0.12 s */
        crowd_go(b);
    }
    if (w == W_END) {
        b->crowd.stop_ns = now_ns();
        atomic_store(&b->crowd.stop, true);
    }
}

/* Sends every request when due, whatever came back before, window by window (the first
 * request due in a window is sent after window_begins), then waits for the answers still
 * owed. 0, or -1 on a lost connection. */
static int iso_send(struct bench *b)
{
    struct iso_load *L = &b->iso;
    uint64_t owed;
    int rc = 0;
    L->r = (struct bench_rate){.t0 = now_ns() + 1000000, .rate = b->o.rate};
    for (int w = W_WARM; rc == 0 && w < W_END; w++) {
        if (w != W_WARM) window_begins(b, (enum window)w);
        rc = bench_iso_offer(&L->io, &L->r, L->edge[w + 1], iso_queue, b);
    }
    window_begins(b, W_END);
    return rc == 0 ? bench_iso_drain(&L->io, DRAIN_MS, &owed) : rc;
}

/* p50, p99, p99.9 and max of window w's requests, and its CPU, on stderr; one never answered
 * counts as the time from when it was due to end. Returns the p99 in ms. */
static double iso_window(const struct bench *b, enum window w, int64_t end)
{
    const struct iso_load *L = &b->iso;
    size_t n = (size_t)(L->edge[w + 1] - L->edge[w]), missing = 0;
    uint32_t *us = wx_calloc(n + 1, sizeof *us);
    for (size_t k = 0; k < n; k++) {
        us[k] = L->lat_us[L->edge[w] + k];
        if (us[k] == UINT32_MAX) {
            missing++;
            us[k] = (uint32_t)((end - bench_due_ns(&L->r, L->edge[w] + k)) / 1000);
        }
    }
    qsort(us, n, sizeof *us, cmp_u32);
    double p99 = bench_quantile_ms(us, n, 990);
    const struct usage *from = &L->at[w], *to = &L->at[w + 1];
    double wall = (double)(to->at - from->at) / NS, loop = to->loop - from->loop;
    double commits = to->commits - from->commits;
    fprintf(stderr,
            "# iso %s: %zu due, %zu never answered; p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, "
            "max %.2f ms; CPU: the demo %.2f cores (its loop thread %.3f, the others %.2f), "
            "this process %.2f; the journal: %.0f group commits of %.2f ms on average\n",
            WINDOW_NAME[w], n, missing, bench_quantile_ms(us, n, 500), p99,
            bench_quantile_ms(us, n, 999), n > 0 ? us[n - 1] / 1000.0 : 0.0,
            (to->server - from->server) / wall, loop / wall,
            (to->server - from->server - loop) / wall, (to->self - from->self) / wall, commits,
            commits > 0 ? (to->commit_s - from->commit_s) * 1000.0 / commits : 0.0);
    free(us);
    return p99;
}

static void iso_report(struct bench *b, uint64_t logins, int64_t end)
{
    const struct iso_load *L = &b->iso;
    fprintf(stderr,
            "# iso: %" PRIu64 " sent at %u/s over %d connections, %" PRIu64 " answered (%" PRIu64
            " approved), %" PRIu64 " invalid, %" PRIu64 " turns blocked; codes:",
            L->sent, b->o.rate, ISO_CONNS, L->answers, L->approved, L->invalid, L->r.blocked);
    bench_print_codes(L->codes);
    fputc('\n', stderr);
    double quiet = iso_window(b, W_QUIET, end);
    double control = iso_window(b, W_CONTROL, end);
    double during = iso_window(b, W_LOGINS, end);
    double s = (double)(b->crowd.stop_ns - b->crowd.go_ns) / NS;
    double loop_q = L->at[W_CONTROL].loop - L->at[W_QUIET].loop;
    double loop_l = L->at[W_END].loop - L->at[W_LOGINS].loop;
    fprintf(stderr,
            "# iso: the control hashed %" PRIu64 " times in this process (%.1f/s); during logins "
            "%" PRIu64 " logins in %.2f s (%.2f/s) by %u phones, and the loop thread used %+.2f "
            "ms of CPU per login more than when quiet (hashing there would be ~120)\n",
            b->hog.hashes, (double)b->hog.hashes / b->o.seconds, logins, s, (double)logins / s,
            b->o.clients, logins > 0 ? (loop_l - loop_q) * 1000.0 / (double)logins : 0.0);
    printf("BENCH iso.p99_ms_quiet %.2f ms\n", quiet);
    printf("BENCH iso.p99_ms_control_hash %.2f ms\n", control);
    printf("BENCH iso.p99_ms_during_logins %.2f ms\n", during);
    printf("BENCH web.logins_during_iso %" PRIu64 " logins\n", logins);
    fflush(stdout);
}

/* Step 5. */
static int iso_phase(struct bench *b)
{
    struct iso_load *L = &b->iso;
    const uint64_t per_window = (uint64_t)b->o.rate * b->o.seconds;
    uint64_t errors = 0, logins = 0;
    L->edge[W_WARM] = 0;
    L->edge[W_QUIET] = (uint64_t)b->o.rate * WARMUP_S;
    for (int w = W_CONTROL; w <= W_END; w++)
        L->edge[w] = L->edge[w - 1] + per_window;
    L->total = L->edge[W_END];
    L->lat_us = wx_malloc(L->total * sizeof *L->lat_us);
    memset(L->lat_us, 0xff, L->total * sizeof *L->lat_us); /* UINT32_MAX: no answer */
    L->msg = wx_malloc(sizeof *L->msg);
    L->io = (struct bench_iso){.who = "web_bench", .take = iso_answer, .arg = b};
    bench_stamp_now(&b->when);
    struct sockaddr_in host = bench_loopback(b->iso_port);
    int rc = bench_iso_open(&L->io, ISO_CONNS, (struct sockaddr *)&host, sizeof host);
    if (rc == 0) rc = pthread_create(&b->hog.thread, NULL, hog_main, &b->hog) == 0 ? 0 : -1;
    b->hog.running = rc == 0;
    if (rc == 0) rc = crowd_start(b, OP_LOGIN, b->o.clients);
    if (rc == 0) rc = iso_send(b);
    int64_t end = now_ns();
    atomic_store(&b->hog.stop, true);
    gate_set(&b->hog.go, true);
    if (b->hog.running) pthread_join(b->hog.thread, NULL);
    logins = crowd_stop(b, &errors);
    bench_iso_close(&L->io);
    if (rc == 0 && errors > 0) {
        fprintf(stderr, "web_bench: %" PRIu64 " logins failed during the ISO load\n", errors);
        rc = -1;
    }
    if (rc == 0) iso_report(b, logins, end);
    free(L->lat_us);
    free(L->msg);
    return rc;
}

/* ---- steps 2 and 3 ---------------------------------------------------------------------- */

/* Step 2: a handle and a bind session per phone (the binder's sessions come one per binding),
 * and one wrong login to make the pages' decoy hash before anything is timed. */
static int phones_init(struct bench *b)
{
    unsigned n = b->o.clients + 1;
    b->phones = wx_calloc(n, sizeof *b->phones);
    for (unsigned i = 0; i < n; i++) {
        struct client *c = &b->phones[i];
        c->b = b;
        c->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        c->lat_us = wx_calloc(LAT_CAP, sizeof *c->lat_us);
        c->post_us = wx_calloc(LAT_CAP, sizeof *c->post_us);
        c->h = client_handle(c);
        if (c->h == NULL) return -1;
    }
    int64_t t0 = now_ns(), post_ns;
    for (unsigned i = 0; i < b->o.clients; i++) {
        char openid[40];
        snprintf(openid, sizeof openid, "oWebBench_phone_%02u", i);
        if (bind_session(&b->phones[i], openid) != 0) return -1;
    }
    if (wrong_login(&b->phones[0], &post_ns) != 0) return -1;
    fprintf(stderr, "# %u phones with a bind session each in %.2f s; first wrong login %.0f ms\n",
            b->o.clients, (double)(now_ns() - t0) / NS, (double)post_ns / 1e6);
    return 0;
}

static void phones_free(struct bench *b)
{
    for (unsigned i = 0; b->phones != NULL && i < b->o.clients + 1; i++) {
        struct client *c = &b->phones[i];
        if (c->h != NULL) curl_easy_cleanup(c->h);
        free(c->r.body);
        free(c->lat_us);
        free(c->post_us);
    }
    free(b->phones);
    b->phones = NULL;
}

/* Step 3: login forms, then pictures. */
static int page_phases(struct bench *b)
{
    double forms = timed_phase(b, OP_FORM, b->o.clients, b->o.seconds, "login forms");
    if (forms < 0) return -1;
    print_latency(b, b->o.clients, false, "GET /m/bind");
    printf("BENCH web.form_pages_per_s %.0f pages/s\n", forms);
    fflush(stdout);
    double draws = timed_phase(b, OP_DRAW, b->o.clients, b->o.seconds, "pictures (form, picture)");
    if (draws < 0) return -1;
    print_latency(b, b->o.clients, false, "GET of a picture");
    printf("BENCH web.captcha_draws_per_s %.0f pictures/s\n", draws);
    fflush(stdout);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

/* The temporary directory (the working directory from now on), the programs, the ports, the
 * bank, the phones. */
static int setup(struct bench *b)
{
    char self[PATH_MAX - 16];
    if (bench_make_dir(b->dir, sizeof b->dir, "wxwebbench", "web_bench") != 0) return -1;
    if (chdir(b->dir) != 0) {
        fprintf(stderr, "web_bench: %s: %s\n", b->dir, strerror(errno));
        return -1;
    }
    if (bench_find_wxbank(b->wxbank, sizeof b->wxbank, "web_bench") != 0 ||
        !bench_self_dir(self, sizeof self)) {
        return -1;
    }
    snprintf(b->wxbank_test, sizeof b->wxbank_test, "%s/wxbank_test", self);
    if (access(b->wxbank_test, X_OK) != 0) {
        fprintf(stderr, "web_bench: no wxbank_test next to this program (build it)\n");
        return -1;
    }
    b->http_port = free_port();
    b->https_port = free_port();
    b->iso_port = free_port();
    if (b->http_port == 0 || b->https_port == 0 || b->iso_port == 0 ||
        b->http_port == b->https_port || b->iso_port == b->http_port ||
        b->iso_port == b->https_port || set_environment(b) != 0) {
        fprintf(stderr, "web_bench: no free loopback ports\n");
        return -1;
    }
    return make_bank(b) == 0 ? phones_init(b) : -1;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int rc = parse_options(argc, argv, &b.o);
    if (rc != 0) return rc == 1 ? 0 : 2;
    rc = 1;
    b.started = now_ns();
    b.rng = 0x9E3779B97F4A7C15ull;
    gate_init(&b.crowd.go);
    gate_init(&b.hog.go);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) return 1;
    if (setup(&b) != 0 || page_phases(&b) != 0 || login_phases(&b) != 0 || iso_phase(&b) != 0) {
        goto out;
    }
    rc = 0;
out:
    if (stop_demo(&b) != 0) rc = 1;
    phones_free(&b);
    bench_end_dir(b.dir, b.o.keep);
    free(b.cards);
    curl_global_cleanup();
    fprintf(stderr, "# web_bench: %.1f s in all\n", (double)(now_ns() - b.started) / NS);
    return rc;
}
