/*
 * webhook_bench.c - the WeChat webhook end to end: the platform's load of signed text
 * messages against a real `wxbank serve` on loopback, and the same load in the same run
 * against the node `wechat` package (node-webot, ../shared/peers/wechat-peer.js), to hold the
 * webhook to its targets: at least 8x the peer's requests/s in plain mode, 10x in safe mode,
 * and p99 at most 5 ms at an offered 5,000 requests/s.
 *
 * The load is what the platform sends: POST /wechat?signature&timestamp&nonce&openid (safe
 * mode adds encrypt_type=aes&msg_signature) with a text message as gen-wechat-requests.py
 * writes it, from 1,000 followers, every MsgId unique (wxbank answers a repeated MsgId from
 * memory, which would flatter it) and every timestamp current (wxbank refuses more than
 * 300 s of skew). Both servers get byte-identical requests but for the path (the peer serves
 * safe mode on /wechat-safe) and the port: one token, EncodingAESKey and appid.
 *
 * The load generator shares the machine's 2 cores with the server, so it is made cheap: one
 * thread on epoll, 32 keep-alive connections with one request in flight each (what
 * `wrk -t1 -c32` does), every request built before the clock starts. Plain requests are 1,000
 * templates whose MsgId digits are patched when a copy is sent (the plain signature does not
 * cover the body); safe requests are each encrypted and signed beforehand, as many as the
 * phase will send. Answers are read as HTTP/1.1 (Content-Length or chunked: the peer answers
 * chunked) and count only when they are a 200 with a passive reply (plain: "<xml>...";
 * safe: an envelope with <Encrypt> and <MsgSignature>) or "success"; every 256th is also
 * read through (safe: signature checked and decrypted) and must be addressed to the sender.
 *
 * Steps, in a temporary directory removed at the end:
 *   1. `wxbank init`, then `wxbank serve` as a child on a free port (both found next to this
 *      program; WXBANK_DB_URL, WXBANK_HTTP_LISTEN, WXBANK_WECHAT_TOKEN/APPID/AES_KEY,
 *      WXBANK_LOG_LEVEL=warn).
 *   2. Saturation, plain then safe: every connection sends its next request as soon as the
 *      answer to the last one is in; after a warm-up, the answers received in the measured
 *      window give webhook.plain_rps and webhook.safe_rps.
 *   3. Open loop in safe mode (what a bank runs) at a fixed offered rate: request i is due at
 *      t0 + i/rate on connection i mod C and leaves when due or, if that connection still
 *      waits for an answer, as soon as the answer is in; its latency runs from the due time
 *      to the end of its answer, so time spent queued behind a slow answer counts (no
 *      coordinated omission). webhook.p99_us_at_5k over the requests due in the window.
 *   4. wxbank stopped (SIGTERM, it must exit 0); the peer started (`node wechat-peer.js PORT`
 *      from WX_PEERS_DIR, else "peers" next to this program) and saturated the same way,
 *      plain on /wechat and safe on /wechat-safe; the ratios are wxbank / peer. Without node
 *      or the peer's node_modules the peer lines are skipped with a note, not failed.
 * --only plain|safe|open|peer (comma-separated) runs some phases; --host IP:PORT points the
 * plain, safe and open phases at a server already running (to compare with another HTTP
 * stack: its answers must be valid WeChat replies too); --help lists the rest.
 *
 * One file on purpose (CMake builds every bench/NAME_bench.c as a program of its own); its
 * sections follow the steps.
 *
 * Output: BENCH lines on stdout (README: "BENCH <name> <value> <unit>"); notes on stderr.
 * Exit 0, 1 on failure (including answers that are wrong more than once in a thousand), 2 on
 * bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "util/alloc.h"
#include "wechat/wechat.h"

#define DEF_CONNECTIONS 32
#define DEF_RATE        5000
#define DEF_SECONDS     5
#define DEF_WARMUP      1
#define DEF_OPENIDS     1000
#define CONN_MAX        256
#define RATE_MAX        200000
#define SECONDS_MAX     240 /* requests are stamped before a phase; wxbank allows 300 s */
#define WARMUP_MAX      30
#define OPENIDS_MAX     100000
#define OPENID_LEN      28          /* an OpenID today: "o" and 27 characters */
#define REQ_MAX         4096        /* bytes of one request */
#define MSG_MAX         1024        /* bytes of one message's XML */
#define IN_CAP          (64u << 10) /* unread answer bytes per connection */
#define SAFE_RATE_GUESS 60000       /* safe requests/s to build for when plain was not run */
#define PEER_RATE_GUESS 20000       /* the same for the peer */
#define SAFE_POOL_MAX   3000000     /* safe requests built for one phase */
#define POOL_MARGIN     1.25        /* safe pool: this much over the plain rate */
#define ERRORS_SHOWN    5           /* wrong answers described per phase */
#define CHECK_EVERY     256         /* every Nth valid answer is read through */
#define DRAIN_MS        10000       /* how long answers owed at the end of a phase are awaited */
#define START_MS        120000      /* how long `wxbank serve` may take to accept */
#define PEER_START_MS   30000       /* how long node may take to accept */
#define STOP_MS         30000       /* how long a child may take to stop after SIGTERM */
#define MSGID_BASE      6000000000000000000ull /* MsgIds are 19 digits from here */
#define MSGID_DIGITS    19
#define PLAIN_TARGET    8.0  /* x the peer's requests/s */
#define SAFE_TARGET     10.0 /* x the peer's requests/s */
#define P99_TARGET_US   5000

/* The peer's fixed settings (wechat-peer.js), given to wxbank too. */
#define TOKEN   "benchtoken"
#define AES_KEY "cGVlci1iZW5jaC1hZXMta2V5LTAxMjM0NTY3ODlhYmM"
#define APPID   "wx0123456789abcdef"
#define ACCOUNT "gh_0123456789ab" /* ToUserName: the official account */

/* What followers write: the balance question, help, a greeting (none binds a card here). */
static const char *const CONTENTS[] = {"balance", "余额", "help", "hello", "帮助", "hi"};
#define N_CONTENTS (sizeof CONTENTS / sizeof CONTENTS[0])

/* Requests of one phase, built before its clock starts. */
struct reqs {
    bool aes;           /* safe mode: each request its own; plain: templates, MsgId patched */
    const char *path;   /* "/wechat" or "/wechat-safe" */
    char host[32];      /* the Host header: "127.0.0.1:PORT" */
    uint8_t *arena;     /* the requests, back to back */
    size_t used, cap;   /* bytes of arena in use / allocated */
    size_t *off;        /* request i starts at arena + off[i] */
    uint32_t *len;      /* and is len[i] bytes */
    uint32_t *msgid_at; /* plain: offset of its MsgId digits */
    uint32_t *openid;   /* whose it is (index into bench.openids) */
    size_t n, cap_n;    /* requests built / slots allocated */
    size_t next;        /* the next one handed out */
    uint64_t late;      /* safe: built during the phase because the pool ran out */
};

/* A child process serving HTTP on loopback. */
struct child {
    const char *name;        /* for messages: "wxbank serve", "peer" */
    pid_t pid;               /* 0 when not running */
    int guard;               /* its bench_guard slot */
    struct sockaddr_in addr; /* where it listens */
    unsigned port;           /* addr's port */
};

/* A connection to the server, one request in flight at a time. */
struct conn {
    int fd;                  /* -1 when closed */
    unsigned idx;            /* open loop: request i goes to connection i mod C */
    bool busy;               /* a request is in flight (or queued in out) */
    int64_t t_ns;            /* when that request was sent (saturation) or due (open loop) */
    uint32_t openid;         /* whose request it is, for the read-through check */
    uint64_t next_i;         /* open loop: the next request index this connection sends */
    size_t out_len, out_off; /* bytes of out in use / already written */
    size_t in_len;           /* bytes of in in use */
    uint8_t out[REQ_MAX];    /* the request being sent */
    uint8_t in[IN_CAP];      /* answer bytes not yet taken */
};

/* Answers of one phase. */
struct tally {
    uint64_t sent, valid, invalid, lost; /* lost: the connection broke with a request in it */
    uint64_t checked;                    /* valid answers read through */
    uint64_t reconnects;                 /* connections opened again after a close */
    uint64_t window;                     /* valid answers counted for the phase's figure */
    int64_t win_start, win_end;          /* measured window, monotonic ns */
    bool by_due;                         /* open loop: window and latency by due time */
    uint32_t *lat_us;                    /* latencies of the answers in the window */
    size_t n_lat, cap_lat;               /* used / allocated */
};

/* The phase running. */
struct phase {
    const char *name;     /* "wxbank plain", "peer safe", ... */
    struct child *server; /* the server under load */
    struct reqs *src;     /* its requests */
    bool open;            /* open loop; else saturation */
    struct bench_rate r;  /* open loop: when request i is due */
    uint64_t total;       /* open loop: requests offered */
};

/* What the command line asks for (defaults: DEF_*). */
struct options {
    unsigned connections;         /* connections per phase */
    unsigned rate;                /* open loop: offered requests per second */
    unsigned seconds, warmup;     /* measured window of each phase; warm-up before it */
    unsigned openids;             /* distinct followers */
    const char *host;             /* --host: a running server instead of wxbank; NULL */
    bool keep;                    /* --keep: leave the temporary directory */
    bool plain, safe, open, peer; /* the phases to run (--only; default all) */
};

/* Figures measured (0 = not measured). */
struct figures {
    double plain, safe, peer_plain, peer_safe;
};

/* The whole benchmark's state. */
struct bench {
    struct options o;
    char dir[256];                   /* temporary directory ("" when none) */
    char wxbank[PATH_MAX];           /* the wxbank next to this program */
    char peer_js[PATH_MAX];          /* wechat-peer.js in the peers folder */
    struct child server, peer;       /* the two servers */
    struct wx_wechat_crypt crypt;    /* the shared safe-mode settings */
    char (*openids)[OPENID_LEN + 1]; /* the followers */
    uint64_t rng;                    /* xorshift64 state */
    uint64_t msg_no;                 /* MsgIds handed out so far, across phases */
    int ep;                          /* epoll */
    struct conn *conns;              /* the running phase's connections */
    unsigned n_conns;                /* how many are allocated */
    struct phase *ph;                /* the running phase */
    struct tally t;                  /* its answers */
    uint8_t *body;                   /* IN_CAP: a de-chunked answer body */
    char *scratch;                   /* IN_CAP: read-through check */
    char *plain_out;                 /* IN_CAP: read-through check, decrypted */
};

static uint64_t rng_next(struct bench *b)
{
    return xorshift64(&b->rng);
}

/* ---- options --------------------------------------------------------------------------- */

static const char USAGE[] =
    "usage: webhook_bench [--connections N (32)] [--rate R/s (5000)] [--seconds S (5)]\n"
    "                     [--warmup S (1)] [--openids N (1000)]\n"
    "                     [--only plain|safe|open|peer[,...]] [--host IP:PORT] [--keep]\n"
    "phases: plain, safe = wxbank saturated; open = wxbank safe mode at --rate;\n"
    "        peer = the node wechat peer saturated, plain and safe\n"
    "--host: plain, safe and open load a server already running there (POST /wechat)\n"
    "        instead of a wxbank started here\n";

/* Sets the phases named in a comma-separated list. False on an unknown name. */
static bool parse_only(const char *list, struct options *o)
{
    o->plain = o->safe = o->open = o->peer = false;
    char buf[64];
    if (strlen(list) >= sizeof buf) return false;
    memcpy(buf, list, strlen(list) + 1);
    char *save = NULL;
    for (char *p = strtok_r(buf, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
        bool *flag = strcmp(p, "plain") == 0  ? &o->plain
                     : strcmp(p, "safe") == 0 ? &o->safe
                     : strcmp(p, "open") == 0 ? &o->open
                     : strcmp(p, "peer") == 0 ? &o->peer
                                              : NULL;
        if (flag == NULL) return false;
        *flag = true;
    }
    return o->plain || o->safe || o->open || o->peer;
}

/* One option (bench_getopt's set): false for a bad value. */
static bool set_option(void *arg, int c)
{
    struct options *o = arg;
    bool ok = true;
    if (c == 'c') ok = parse_uint(optarg, 1, CONN_MAX, &o->connections);
    if (c == 'r') ok = parse_uint(optarg, 1, RATE_MAX, &o->rate);
    if (c == 's') ok = parse_uint(optarg, 1, SECONDS_MAX, &o->seconds);
    if (c == 'w') ok = parse_uint(optarg, 0, WARMUP_MAX, &o->warmup);
    if (c == 'n') ok = parse_uint(optarg, 1, OPENIDS_MAX, &o->openids);
    if (c == 'o') ok = parse_only(optarg, o);
    if (c == 'H') o->host = optarg;
    if (c == 'k') o->keep = true;
    return ok;
}

/* Returns 0, 1 after --help, or 2 on bad usage (with a message). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option opts[] = {{"connections", required_argument, NULL, 'c'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"warmup", required_argument, NULL, 'w'},
                                         {"openids", required_argument, NULL, 'n'},
                                         {"only", required_argument, NULL, 'o'},
                                         {"host", required_argument, NULL, 'H'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    *o = (struct options){.connections = DEF_CONNECTIONS,
                          .rate = DEF_RATE,
                          .seconds = DEF_SECONDS,
                          .warmup = DEF_WARMUP,
                          .openids = DEF_OPENIDS,
                          .plain = true,
                          .safe = true,
                          .open = true,
                          .peer = true};
    return bench_getopt(argc, argv, opts, USAGE, set_option, o, "webhook_bench");
}

/* ---- step 1: the servers as child processes --------------------------------------------- */

/* The peer: WX_PEERS_DIR, else "peers" beside this program. False when not installed. */
static bool find_peer(struct bench *b)
{
    char dir[PATH_MAX - 64], probe[PATH_MAX];
    const char *env = getenv("WX_PEERS_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(dir, sizeof dir, "%s", env);
    } else {
        char self[PATH_MAX - 128];
        if (!bench_self_dir(self, sizeof self)) return false;
        snprintf(dir, sizeof dir, "%s/peers", self);
    }
    snprintf(b->peer_js, sizeof b->peer_js, "%s/wechat-peer.js", dir);
    snprintf(probe, sizeof probe, "%s/node_modules/wechat/package.json", dir);
    if (access(b->peer_js, R_OK) != 0 || access(probe, R_OK) != 0) {
        fprintf(stderr,
                "# peer: %s or its node_modules/wechat is missing (set WX_PEERS_DIR, or run "
                "scripts/peers); skipping the peer figures\n",
                b->peer_js);
        return false;
    }
    return true;
}

/* Starts program (PATH searched) with args as child c, its stdout sent to our stderr (stdout
 * carries BENCH lines only), stopped too if the benchmark is interrupted. Returns 0, or -1
 * with a message. */
static int start_child(struct child *c, const char *program, char *const args[])
{
    if (bench_spawn(program, args, NULL, NULL, &c->pid, "webhook_bench") != 0) return -1;
    bench_guard(c->guard, c->pid, SIGTERM);
    return 0;
}

static void child_listen_on(struct child *c, const char *name, unsigned port)
{
    c->name = name;
    c->port = port;
    c->addr = bench_loopback(port);
}

/* Waits until c accepts connections, up to ms. Returns 0, or -1 when it exited or never did. */
static int wait_accepting(struct child *c, long ms)
{
    double took = bench_wait_accepting(&c->pid, (struct sockaddr *)&c->addr, sizeof c->addr, ms, 20,
                                       c->name, "webhook_bench");
    if (took < 0) return -1;
    fprintf(stderr, "# %s accepting on port %u after %.1f s\n", c->name, c->port, took);
    return 0;
}

/* SIGTERM, then waits (SIGKILL after STOP_MS). Returns 0 when it exited 0 (or never ran). */
static int stop_child(struct child *c)
{
    if (c->pid <= 0) return 0;
    int64_t t0 = now_ns();
    int rc = bench_stop(&c->pid, STOP_MS, c->name, "webhook_bench");
    bench_guard(c->guard, 0, 0);
    if (rc == 0) fprintf(stderr, "# %s stopped in %.2f s\n", c->name, (double)(now_ns() - t0) / NS);
    return rc;
}

/* The environment `wxbank init` and `wxbank serve` read their configuration from. */
static int set_environment(const struct bench *b, unsigned port)
{
    char db[400], listen[32];
    snprintf(db, sizeof db, "sqlite:%s/bench.db", b->dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    const char *const vars[][2] = {
        {"WXBANK_DB_URL", db},
        {"WXBANK_HTTP_LISTEN", listen},
        {"WXBANK_ISO8583_LISTEN", "127.0.0.1:0"},
        {"WXBANK_WECHAT_TOKEN", TOKEN},
        {"WXBANK_WECHAT_APPID", APPID},
        {"WXBANK_WECHAT_AES_KEY", AES_KEY},
        {"WXBANK_LOG_LEVEL", "warn"},
    };
    return bench_setenv(vars, sizeof vars / sizeof vars[0]);
}

/* --host IP:PORT: the server under load is already running (no process of ours). */
static int use_host(struct bench *b)
{
    char ip[64];
    unsigned port;
    const char *colon = strrchr(b->o.host, ':');
    struct in_addr a;
    if (colon == NULL || (size_t)(colon - b->o.host) >= sizeof ip ||
        !parse_uint(colon + 1, 1, 65535, &port)) {
        goto bad;
    }
    memcpy(ip, b->o.host, (size_t)(colon - b->o.host));
    ip[colon - b->o.host] = '\0';
    if (inet_pton(AF_INET, ip, &a) != 1) goto bad;
    child_listen_on(&b->server, b->o.host, port);
    b->server.addr.sin_addr = a;
    return 0;
bad:
    fprintf(stderr, "webhook_bench: --host %s: not IPv4:PORT\n", b->o.host);
    return -1;
}

/* `wxbank init` in a new temporary directory, then `wxbank serve` until it accepts. */
static int start_wxbank(struct bench *b)
{
    if (b->o.host != NULL) return use_host(b);
    if (bench_make_dir(b->dir, sizeof b->dir, "wxwebhookbench", "webhook_bench") != 0) return -1;
    unsigned port = free_port();
    if (bench_find_wxbank(b->wxbank, sizeof b->wxbank, "webhook_bench") != 0 || port == 0 ||
        set_environment(b, port) != 0)
        return -1;
    char *init[] = {b->wxbank, "init", NULL};
    if (bench_run(b->wxbank, init, NULL, NULL, "webhook_bench") != 0) {
        fprintf(stderr, "webhook_bench: wxbank init failed\n");
        return -1;
    }
    char *serve[] = {b->wxbank, "serve", NULL};
    child_listen_on(&b->server, "wxbank serve", port);
    if (start_child(&b->server, b->wxbank, serve) != 0) return -1;
    return wait_accepting(&b->server, START_MS);
}

/* `node wechat-peer.js PORT` until it accepts. -1 (with a note) when it cannot run. */
static int start_peer(struct bench *b)
{
    unsigned port = free_port();
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%u", port);
    char *args[] = {"node", b->peer_js, port_text, NULL};
    child_listen_on(&b->peer, "peer (node wechat-peer.js)", port);
    if (port == 0 || start_child(&b->peer, "node", args) != 0) return -1;
    if (wait_accepting(&b->peer, PEER_START_MS) != 0) {
        stop_child(&b->peer);
        return -1;
    }
    return 0;
}

/* ---- step 2: requests, built before the clock starts ------------------------------------ */

/* n followers: "o" and 27 characters of the OpenID alphabet, the last four the index. */
static void make_openids(struct bench *b)
{
    static const char ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    b->openids = wx_calloc(b->o.openids, sizeof *b->openids);
    for (unsigned i = 0; i < b->o.openids; i++) {
        char *p = b->openids[i];
        p[0] = 'o';
        for (int k = 1; k < OPENID_LEN - 4; k++)
            p[k] = ALPHA[rng_next(b) % 64];
        for (unsigned k = 0, v = i; k < 4; k++, v /= 64)
            p[OPENID_LEN - 1 - k] = ALPHA[v % 64];
        p[OPENID_LEN] = '\0';
    }
}

/* The text message follower k sends as message number no, as the platform writes it. */
static int format_message(const struct bench *b, uint32_t k, uint64_t no, int64_t now, char *out,
                          size_t cap)
{
    int n = snprintf(out, cap,
                     "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName>"
                     "<FromUserName><![CDATA[%s]]></FromUserName>"
                     "<CreateTime>%lld</CreateTime>"
                     "<MsgType><![CDATA[text]]></MsgType>"
                     "<Content><![CDATA[%s]]></Content>"
                     "<MsgId>%" PRIu64 "</MsgId></xml>",
                     b->openids[k], (long long)now, CONTENTS[(k + no / b->o.openids) % N_CONTENTS],
                     (uint64_t)(MSGID_BASE + no));
    return n > 0 && (size_t)n < cap ? n : -1;
}

/*
 * Writes request no (MsgId MSGID_BASE + no) of follower k into out: the POST with its
 * signed query, headers as the platform sends them, and the body (safe mode: the message
 * encrypted with 16 random bytes of our rng into a signed envelope). Returns its length and
 * sets *msgid_at to the offset of the MsgId digits (plain; 0 in safe mode), or -1.
 */
static int build_request(struct bench *b, const struct reqs *r, uint32_t k, uint64_t no,
                         uint8_t *out, size_t cap, uint32_t *msgid_at)
{
    char msg[MSG_MAX], body[2 * MSG_MAX + 256], enc[2 * MSG_MAX], ts[24], nonce[16];
    char sig[WX_WECHAT_SIGNATURE_LEN + 1], msig[WX_WECHAT_SIGNATURE_LEN + 1];
    int64_t now = (int64_t)time(NULL);
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    snprintf(nonce, sizeof nonce, "%u", (unsigned)(100000000 + rng_next(b) % 900000000));
    int mlen = format_message(b, k, no, now, msg, sizeof msg);
    if (mlen < 0) return -1;
    const char *parts[] = {TOKEN, ts, nonce, enc}; /* enc is filled before parts[3] is used */
    wx_wechat_signature(parts, 3, sig);
    int blen;
    if (!r->aes) {
        memcpy(body, msg, (size_t)mlen + 1);
        blen = mlen;
    } else {
        uint8_t random[WX_WECHAT_RANDOM_LEN];
        uint64_t x[2] = {rng_next(b), rng_next(b)};
        memcpy(random, x, sizeof random);
        size_t elen;
        if (wx_wechat_encrypt_cap(&b->crypt, (size_t)mlen) > sizeof enc ||
            wx_wechat_encrypt(&b->crypt, msg, (size_t)mlen, random, enc, sizeof enc, &elen) != 0) {
            return -1;
        }
        wx_wechat_signature(parts, 4, msig);
        blen = snprintf(body, sizeof body,
                        "<xml><ToUserName><![CDATA[" ACCOUNT "]]></ToUserName>"
                        "<Encrypt><![CDATA[%s]]></Encrypt></xml>",
                        enc);
        if (blen < 0 || (size_t)blen >= sizeof body) return -1;
    }
    int hlen = snprintf((char *)out, cap,
                        "POST %s?signature=%s&timestamp=%s&nonce=%s&openid=%s%s%s HTTP/1.1\r\n"
                        "Host: %s\r\nUser-Agent: Mozilla/4.0\r\nAccept: */*\r\n"
                        "Pragma: no-cache\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n",
                        r->path, sig, ts, nonce, b->openids[k],
                        r->aes ? "&encrypt_type=aes&msg_signature=" : "", r->aes ? msig : "",
                        r->host, blen);
    if (hlen < 0 || (size_t)hlen + (size_t)blen > cap) return -1;
    memcpy(out + hlen, body, (size_t)blen);
    const char *at = strstr(body, "<MsgId>");
    *msgid_at = r->aes || at == NULL ? 0 : (uint32_t)(hlen + (at - body) + 7);
    return hlen + blen;
}

/* Appends a request of follower k, number no, to r. Returns 0 or -1. */
static int reqs_add(struct bench *b, struct reqs *r, uint32_t k, uint64_t no)
{
    uint8_t tmp[REQ_MAX];
    uint32_t at;
    int len = build_request(b, r, k, no, tmp, sizeof tmp, &at);
    if (len < 0) {
        fprintf(stderr, "webhook_bench: a request does not fit in %d bytes\n", REQ_MAX);
        return -1;
    }
    if (r->n == r->cap_n) {
        r->cap_n = r->cap_n ? 2 * r->cap_n : 1024;
        r->off = wx_reallocarray(r->off, r->cap_n, sizeof *r->off);
        r->len = wx_reallocarray(r->len, r->cap_n, sizeof *r->len);
        r->msgid_at = wx_reallocarray(r->msgid_at, r->cap_n, sizeof *r->msgid_at);
        r->openid = wx_reallocarray(r->openid, r->cap_n, sizeof *r->openid);
    }
    while (r->used + (size_t)len > r->cap) {
        r->cap = r->cap ? 2 * r->cap : (1u << 20);
        r->arena = wx_realloc(r->arena, r->cap);
    }
    memcpy(r->arena + r->used, tmp, (size_t)len);
    r->off[r->n] = r->used;
    r->len[r->n] = (uint32_t)len;
    r->msgid_at[r->n] = at;
    r->openid[r->n] = k;
    r->used += (size_t)len;
    r->n++;
    return 0;
}

/*
 * Builds a phase's requests for server c on path: plain, one template per follower (the
 * MsgId is patched per copy); safe, n requests each with its own MsgId, encryption and
 * msg_signature. Returns 0 or -1.
 */
static int reqs_build(struct bench *b, struct reqs *r, const struct child *c, const char *path,
                      bool aes, size_t n)
{
    *r = (struct reqs){.aes = aes, .path = path};
    snprintf(r->host, sizeof r->host, "127.0.0.1:%u", c->port);
    int64_t t0 = now_ns();
    size_t count = aes ? n : b->o.openids;
    for (size_t i = 0; i < count; i++) {
        uint64_t no = aes ? ++b->msg_no : 0;
        uint32_t k = aes ? (uint32_t)(no % b->o.openids) : (uint32_t)i;
        if (reqs_add(b, r, k, no) != 0) return -1;
    }
    fprintf(stderr, "# %zu %s requests built in %.2f s (%u bytes each)\n", r->n,
            aes ? "safe-mode" : "plain template", (double)(now_ns() - t0) / NS, r->len[0]);
    return 0;
}

static void reqs_free(struct reqs *r)
{
    free(r->arena);
    free(r->off);
    free(r->len);
    free(r->msgid_at);
    free(r->openid);
    memset(r, 0, sizeof *r);
}

/*
 * Copies the next request into out (REQ_MAX bytes) and returns its length; *openid says
 * whose it is. Plain: the next template with a new MsgId. Safe: the next one built, or, when
 * the pool ran out, one built now on the client's time (which can only lower the figure).
 * Returns 0 when a request cannot be built.
 */
static size_t reqs_next(struct bench *b, struct reqs *r, uint8_t *out, uint32_t *openid)
{
    if (!r->aes || r->next < r->n) {
        size_t i = r->aes ? r->next++ : r->next++ % r->n;
        memcpy(out, r->arena + r->off[i], r->len[i]);
        if (!r->aes) put_digits(out + r->msgid_at[i], MSGID_DIGITS, MSGID_BASE + ++b->msg_no);
        *openid = r->openid[i];
        return r->len[i];
    }
    uint64_t no = ++b->msg_no;
    uint32_t k = (uint32_t)(no % b->o.openids), at;
    int len = build_request(b, r, k, no, out, REQ_MAX, &at);
    r->late++;
    *openid = k;
    return len > 0 ? (size_t)len : 0;
}

/* ---- step 3: answers -------------------------------------------------------------------- */

enum { PARSE_MALFORMED = -1, PARSE_INCOMPLETE = -2 };

/* One HTTP answer taken from a connection's bytes. */
struct answer {
    int status;          /* 200, 403, ... */
    const uint8_t *body; /* its body (de-chunked) */
    size_t body_len;     /* bytes of body */
    bool close;          /* Connection: close */
};

/* The first CRLF in [p, end), or NULL. */
static const uint8_t *find_crlf(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *q = end - p >= 2 ? memmem(p, (size_t)(end - p), "\r\n", 2) : NULL;
    return q;
}

/* The value of hex digit c, or -1. */
static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

/*
 * Decodes a chunked body starting at p (n bytes available) into out (cap bytes). Returns the
 * bytes of p it spans (chunks, last chunk, trailers), PARSE_INCOMPLETE or PARSE_MALFORMED.
 */
static long dechunk(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    const uint8_t *s = p, *end = p + n;
    *out_len = 0;
    for (;;) {
        const uint8_t *eol = find_crlf(s, end);
        if (eol == NULL) return PARSE_INCOMPLETE;
        size_t size = 0, digits = 0;
        for (; s < eol; s++) {
            int d = hex_digit(*s);
            if (d < 0) break;
            size = size * 16 + (size_t)d;
            if (++digits > 8) return PARSE_MALFORMED;
        }
        if (digits == 0 || (s < eol && *s != ';')) return PARSE_MALFORMED;
        s = eol + 2;
        if (size == 0) break;
        if (*out_len + size > cap) return PARSE_MALFORMED;
        if ((size_t)(end - s) < size + 2) return PARSE_INCOMPLETE;
        if (s[size] != '\r' || s[size + 1] != '\n') return PARSE_MALFORMED;
        memcpy(out + *out_len, s, size);
        *out_len += size;
        s += size + 2;
    }
    for (;;) { /* trailers, up to an empty line */
        const uint8_t *eol = find_crlf(s, end);
        if (eol == NULL) return PARSE_INCOMPLETE;
        bool empty = eol == s;
        s = eol + 2;
        if (empty) return (long)(s - p);
    }
}

/* True when header line [p, eol) is "name: ..." (any case); *value is then what follows. */
static bool header_is(const uint8_t *p, const uint8_t *eol, const char *name, const uint8_t **value)
{
    size_t nl = strlen(name);
    if ((size_t)(eol - p) <= nl || strncasecmp((const char *)p, name, nl) != 0 || p[nl] != ':') {
        return false;
    }
    for (p += nl + 1; p < eol && (*p == ' ' || *p == '\t'); p++) {
    }
    *value = p;
    return true;
}

/* True when [p, eol) holds word, in any case. */
static bool value_has(const uint8_t *p, const uint8_t *eol, const char *word)
{
    size_t wl = strlen(word);
    for (; (size_t)(eol - p) >= wl; p++) {
        if (strncasecmp((const char *)p, word, wl) == 0) return true;
    }
    return false;
}

/*
 * Parses one HTTP/1.1 answer from the n bytes at p: status line, headers, and a body framed
 * by Content-Length or chunked encoding (de-chunked into body, IN_CAP bytes). Returns the
 * bytes it spans, PARSE_INCOMPLETE or PARSE_MALFORMED (also for a body without a length).
 */
static long parse_answer(const uint8_t *p, size_t n, uint8_t *body, struct answer *a)
{
    const uint8_t *end = p + n;
    const uint8_t *head_end = memmem(p, n, "\r\n\r\n", 4);
    if (head_end == NULL) return PARSE_INCOMPLETE;
    if (n < 13 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || p[9] < '1' || p[9] > '5' ||
        hex_digit(p[10]) < 0 || hex_digit(p[10]) > 9 || hex_digit(p[11]) < 0 ||
        hex_digit(p[11]) > 9) {
        return PARSE_MALFORMED;
    }
    *a = (struct answer){.status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0')};
    long clen = -1;
    bool chunked = false;
    for (const uint8_t *s = find_crlf(p, end) + 2; s < head_end + 2;) {
        const uint8_t *eol = find_crlf(s, end), *v;
        if (header_is(s, eol, "content-length", &v)) {
            clen = 0;
            for (; v < eol && *v >= '0' && *v <= '9' && clen <= (long)IN_CAP; v++)
                clen = clen * 10 + (*v - '0');
            if (v != eol || clen > (long)IN_CAP) return PARSE_MALFORMED;
        } else if (header_is(s, eol, "transfer-encoding", &v)) {
            chunked = value_has(v, eol, "chunked");
        } else if (header_is(s, eol, "connection", &v)) {
            a->close = value_has(v, eol, "close");
        }
        s = eol + 2;
    }
    const uint8_t *b0 = head_end + 4;
    size_t avail = (size_t)(end - b0);
    if (chunked) {
        long used = dechunk(b0, avail, body, IN_CAP, &a->body_len);
        a->body = body;
        return used < 0 ? used : (long)(b0 - p) + used;
    }
    if (clen < 0) return PARSE_MALFORMED;
    if (avail < (size_t)clen) return PARSE_INCOMPLETE;
    a->body = b0;
    a->body_len = (size_t)clen;
    return (long)(b0 - p) + clen;
}

/* A passive reply as the mode wants it, or "success". */
static bool body_ok(bool aes, const struct answer *a)
{
    if (a->body_len == 7 && memcmp(a->body, "success", 7) == 0) return true;
    if (!aes) return a->body_len >= 5 && memcmp(a->body, "<xml>", 5) == 0;
    return memmem(a->body, a->body_len, "<Encrypt>", 9) != NULL &&
           memmem(a->body, a->body_len, "<MsgSignature>", 14) != NULL;
}

/* The text of element name in [p, p + n), CDATA unwrapped, NUL-terminated in out. */
static bool tag_text(const uint8_t *p, size_t n, const char *name, char *out, size_t cap)
{
    char open[32], close[32];
    int ol = snprintf(open, sizeof open, "<%s>", name);
    int cl = snprintf(close, sizeof close, "</%s>", name);
    const uint8_t *s = memmem(p, n, open, (size_t)ol);
    if (s == NULL) return false;
    s += ol;
    const uint8_t *e = memmem(s, (size_t)(p + n - s), close, (size_t)cl);
    if (e == NULL) return false;
    if (e - s >= 12 && memcmp(s, "<![CDATA[", 9) == 0 && memcmp(e - 3, "]]>", 3) == 0) {
        s += 9;
        e -= 3;
    }
    if ((size_t)(e - s) >= cap) return false;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return true;
}

/*
 * Reads a passive reply through: in safe mode MsgSignature must hold and Encrypt decrypt
 * for our appid; the (inner) XML must be addressed to follower k. NULL, or why not.
 */
static const char *read_through(struct bench *b, bool aes, const struct answer *a, uint32_t k)
{
    char want[OPENID_LEN + 40];
    snprintf(want, sizeof want, "<ToUserName><![CDATA[%s]]></ToUserName>", b->openids[k]);
    const char *xml = (const char *)a->body;
    size_t len = a->body_len;
    if (len == 7 && memcmp(xml, "success", 7) == 0) return NULL;
    if (aes) {
        char sig[64], ts[32], nonce[80];
        char *enc = b->scratch;
        if (!tag_text(a->body, len, "Encrypt", enc, IN_CAP) ||
            !tag_text(a->body, len, "MsgSignature", sig, sizeof sig) ||
            !tag_text(a->body, len, "TimeStamp", ts, sizeof ts) ||
            !tag_text(a->body, len, "Nonce", nonce, sizeof nonce)) {
            return "envelope without Encrypt, MsgSignature, TimeStamp or Nonce";
        }
        if (wx_wechat_decrypt_cap(strlen(enc)) > IN_CAP) return "Encrypt too long";
        int rc = wx_wechat_decrypt_msg(&b->crypt, sig, ts, nonce, enc, b->plain_out, IN_CAP, &len);
        if (rc != 0) return wx_wechat_strerror(rc);
        xml = b->plain_out;
    }
    if (len < 5 || memcmp(xml, "<xml>", 5) != 0) return "reply is not <xml>";
    if (memmem(xml, len, want, strlen(want)) == NULL) return "reply not addressed to the sender";
    return NULL;
}

/* Describes a wrong answer on stderr (the first few of a phase). */
static void show_error(struct bench *b, const char *why, const struct answer *a)
{
    struct tally *t = &b->t;
    if (t->invalid + t->lost > ERRORS_SHOWN) return;
    char snip[81] = "";
    size_t n = a == NULL ? 0 : a->body_len < 80 ? a->body_len : 80;
    for (size_t i = 0; i < n; i++)
        snip[i] = a->body[i] >= 0x20 && a->body[i] < 0x7f ? (char)a->body[i] : '.';
    snip[n] = '\0';
    fprintf(stderr, "# %s: wrong answer: %s (status %d, body \"%s\")\n", b->ph->name, why,
            a != NULL ? a->status : 0, snip);
}

/* Counts one answer to c's request, received at now. */
static void on_answer(struct bench *b, struct conn *c, const struct answer *a, int64_t now)
{
    struct tally *t = &b->t;
    bool aes = b->ph->src->aes;
    c->busy = false;
    if (a->status != 200 || !body_ok(aes, a)) {
        t->invalid++;
        show_error(b, a->status != 200 ? "not 200" : "not a passive reply", a);
        return;
    }
    if (t->valid++ % CHECK_EVERY == 0) {
        const char *why = read_through(b, aes, a, c->openid);
        t->checked++;
        if (why != NULL) {
            t->valid--;
            t->invalid++;
            show_error(b, why, a);
            return;
        }
    }
    int64_t when = t->by_due ? c->t_ns : now;
    if (when < t->win_start || when >= t->win_end) return;
    t->window++;
    if (t->n_lat < t->cap_lat) t->lat_us[t->n_lat++] = (uint32_t)((now - c->t_ns) / 1000);
}

/* ---- connections ------------------------------------------------------------------------ */

/* Connects c to the phase's server. Returns 0, or -1 with a message. */
static int conn_connect(struct bench *b, struct conn *c)
{
    const struct child *s = b->ph->server;
    c->fd = bench_connect(b->ep, (const struct sockaddr *)&s->addr, sizeof s->addr, c);
    if (c->fd < 0) {
        fprintf(stderr, "webhook_bench: connect to %s: %s\n", s->name, strerror(errno));
        return -1;
    }
    return 0;
}

/* Closes c and opens it again (the server closed it, or its stream broke). A request in
 * flight is lost. Returns 0 or -1. */
static int conn_reopen(struct bench *b, struct conn *c)
{
    close(c->fd);
    c->fd = -1;
    if (c->busy) b->t.lost++;
    c->busy = false;
    c->in_len = c->out_len = c->out_off = 0;
    b->t.reconnects++;
    return conn_connect(b, c);
}

/* Opens the phase's connections (all marked closed first, so that conns_close after a
 * failure closes only what was opened). Returns 0 or -1. */
static int conns_open(struct bench *b)
{
    for (unsigned i = 0; i < b->o.connections; i++)
        b->conns[i] = (struct conn){.fd = -1, .idx = i, .next_i = i};
    for (unsigned i = 0; i < b->o.connections; i++) {
        if (conn_connect(b, &b->conns[i]) != 0) return -1;
    }
    return 0;
}

static void conns_close(struct bench *b)
{
    for (unsigned i = 0; i < b->o.connections; i++) {
        if (b->conns[i].fd >= 0) close(b->conns[i].fd);
        b->conns[i].fd = -1;
    }
}

/* Writes what c has queued, until the socket takes no more. Returns 0, or -1 on an error. */
static int conn_flush(struct conn *c)
{
    return bench_send(c->fd, c->out, &c->out_off, c->out_len, "webhook_bench");
}

/* Sends the phase's next request on idle connection c; t_ns is when it was sent or due. */
static int conn_send(struct bench *b, struct conn *c, int64_t t_ns)
{
    c->out_len = reqs_next(b, b->ph->src, c->out, &c->openid);
    c->out_off = 0;
    if (c->out_len == 0) {
        fprintf(stderr, "webhook_bench: a request could not be built\n");
        return -1;
    }
    c->busy = true;
    c->t_ns = t_ns;
    b->t.sent++;
    return conn_flush(c);
}

/* c is idle: saturation sends its next request now; the open loop its next one if due. */
static int conn_next(struct bench *b, struct conn *c, int64_t now)
{
    const struct phase *ph = b->ph;
    if (!ph->open) return now < b->t.win_end ? conn_send(b, c, now) : 0;
    if (c->next_i >= ph->total) return 0;
    int64_t due = bench_due_ns(&ph->r, c->next_i);
    if (due > now) return 0;
    c->next_i += b->o.connections;
    return conn_send(b, c, due);
}

/* Takes the answers in c's input. Returns 0, or -1 when c could not be reopened. */
static int take_answers(struct bench *b, struct conn *c, int64_t now)
{
    struct answer a;
    long used = parse_answer(c->in, c->in_len, b->body, &a);
    if (used == PARSE_INCOMPLETE && c->in_len < IN_CAP) return 0;
    if (used < 0 || !c->busy || (size_t)used != c->in_len) {
        /* The stream cannot be followed any further: count it once and start afresh. */
        b->t.invalid++;
        c->busy = false;
        show_error(b,
                   used == PARSE_INCOMPLETE ? "answer longer than 64 KiB"
                   : used < 0               ? "not HTTP/1.1 with a length"
                                            : "bytes beyond the answer to the request",
                   NULL);
        return conn_reopen(b, c) == 0 ? conn_next(b, c, now) : -1;
    }
    on_answer(b, c, &a, now);
    c->in_len = 0;
    if (a.close && conn_reopen(b, c) != 0) return -1;
    return conn_next(b, c, now);
}

/* A connection being read, for took. */
struct reading {
    struct bench *b;
    struct conn *c;
};

/* Takes the answers read so far (bench_read's take). */
static int took(void *arg, int64_t now)
{
    const struct reading *r = arg;
    return take_answers(r->b, r->c, now);
}

/* Reads until the socket is empty and takes the answers; a connection the server closed is
 * opened again. Returns 0, or -1 on a lost server. */
static int conn_read(struct bench *b, struct conn *c)
{
    struct reading r = {b, c};
    int end = bench_read(&c->fd, c->in, IN_CAP, &c->in_len, took, &r);
    if (end == BENCH_READ_EMPTY || end == BENCH_READ_FAILED) return end;
    if (c->busy) {
        show_error(b, end == BENCH_READ_CLOSED ? "connection closed" : "connection reset", NULL);
    }
    return conn_reopen(b, c) == 0 ? conn_next(b, c, now_ns()) : -1;
}

/* Serves a connection epoll says is ready (bench_serve's serve). */
static int conn_ready(void *arg, void *ptr, uint32_t events)
{
    struct bench *b = arg;
    struct conn *c = ptr;
    if (c->fd < 0) return 0;
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(b, c) != 0) return -1;
    if ((events & EPOLLOUT) && c->fd >= 0 && conn_flush(c) != 0) return -1;
    return 0;
}

/* Waits up to timeout_ns for the sockets and serves them. Returns 0, or -1 on a lost one. */
static int wait_events(struct bench *b, int64_t timeout_ns)
{
    return bench_serve(b->ep, timeout_ns, conn_ready, b);
}

/* Requests still in flight. */
static uint64_t in_flight(const struct bench *b)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < b->o.connections; i++)
        n += b->conns[i].busy;
    return n;
}

/* Waits for the answers still owed, up to DRAIN_MS. Returns how many never came. */
static uint64_t drain(struct bench *b)
{
    int64_t deadline = now_ns() + (int64_t)DRAIN_MS * 1000000;
    while (in_flight(b) > 0 && now_ns() < deadline) {
        if (wait_events(b, 10000000) != 0) break;
    }
    return in_flight(b);
}

/* ---- the phases ------------------------------------------------------------------------- */

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

/* Sums up a phase's answers on stderr. Returns 0, or -1 when more than one in a thousand
 * answers was wrong or missing (the figure would not be the server doing the work). */
static int report_answers(struct bench *b, uint64_t never)
{
    struct tally *t = &b->t;
    uint64_t bad = t->invalid + t->lost + never;
    fprintf(stderr,
            "# %s: %" PRIu64 " sent, %" PRIu64 " valid (%" PRIu64 " read through), %" PRIu64
            " wrong, %" PRIu64 " lost, %" PRIu64 " never answered, %" PRIu64 " reconnects",
            b->ph->name, t->sent, t->valid, t->checked, t->invalid, t->lost, never, t->reconnects);
    if (b->ph->src->late > 0) {
        fprintf(stderr, "; %" PRIu64 " requests built during the run", b->ph->src->late);
    }
    fputc('\n', stderr);
    if (bad * 1000 > t->sent || t->valid == 0) {
        fprintf(stderr, "webhook_bench: %s: too many wrong or missing answers\n", b->ph->name);
        return -1;
    }
    return 0;
}

/* Step 2 (and 4 for the peer): every connection sends its next request as soon as it has
 * the answer to the last. Sets *rps to the valid answers per second in the window. */
static int saturate(struct bench *b, struct phase *ph, double *rps)
{
    const struct options *o = &b->o;
    b->ph = ph;
    struct bench_cpu cpu = bench_cpu_now(ph->server->pid);
    int64_t t0 = now_ns(), win = (int64_t)o->seconds * NS;
    tally_start(&b->t, t0 + (int64_t)o->warmup * NS, t0 + (int64_t)o->warmup * NS + win, false,
                (size_t)RATE_MAX * o->seconds);
    int rc = conns_open(b);
    for (unsigned i = 0; i < o->connections && rc == 0; i++)
        rc = conn_send(b, &b->conns[i], now_ns());
    while (rc == 0 && now_ns() < b->t.win_end)
        rc = wait_events(b, 10000000);
    uint64_t never = rc == 0 ? drain(b) : 0;
    conns_close(b);
    if (rc != 0 || report_answers(b, never) != 0) return -1;
    struct tally *t = &b->t;
    qsort(t->lat_us, t->n_lat, sizeof *t->lat_us, cmp_u32);
    fprintf(stderr,
            "# %s: %u connections x 1 in flight; closed-loop latency p50 %u us, p99 %u us\n",
            ph->name, o->connections, quantile(t, 500), quantile(t, 990));
    bench_print_cpu(&cpu, ph->server->pid, ph->name);
    *rps = (double)t->window * NS / (double)win;
    return 0;
}

/* Counts a request due at due and not answered by now as the time it waited. */
static uint64_t count_waited(struct tally *t, int64_t due, int64_t now)
{
    if (due < t->win_start || due >= t->win_end || t->n_lat == t->cap_lat) return 0;
    t->lat_us[t->n_lat++] = (uint32_t)((now - due) / 1000);
    return 1;
}

/* Requests due in the window that were never answered (in flight, or never sent because
 * their connection stayed busy) count as the time waited for them. Returns how many. */
static uint64_t count_unanswered(struct bench *b)
{
    const struct phase *ph = b->ph;
    int64_t now = now_ns();
    uint64_t n = 0;
    for (unsigned k = 0; k < b->o.connections; k++) {
        const struct conn *c = &b->conns[k];
        if (c->busy) n += count_waited(&b->t, c->t_ns, now);
        for (uint64_t i = c->next_i; i < ph->total; i += b->o.connections)
            n += count_waited(&b->t, bench_due_ns(&ph->r, i), now);
    }
    return n;
}

/* The open loop's main loop: sends what is due until every request has left (or the server
 * has stopped answering for DRAIN_MS past the end). */
static int offer(struct bench *b, struct phase *ph)
{
    int64_t hard_end = bench_due_ns(&ph->r, ph->total) + (int64_t)DRAIN_MS * 1000000;
    int rc = 0;
    for (;;) {
        int64_t now = now_ns(), next = now + 10000000;
        bool more = false;
        for (unsigned k = 0; k < b->o.connections && rc == 0; k++) {
            struct conn *c = &b->conns[k];
            if (c->next_i >= ph->total) continue;
            more = true;
            if (!c->busy) rc = conn_next(b, c, now);
            if (!c->busy && c->next_i < ph->total) {
                int64_t due = bench_due_ns(&ph->r, c->next_i);
                if (due < next) next = due;
            }
        }
        if (rc != 0 || !more || now > hard_end) return rc;
        rc = wait_events(b, next > now ? next - now : 0);
    }
}

/* Step 3: a fixed offered load, each request sent when due (or when its connection frees). */
static int open_loop(struct bench *b, struct phase *ph, uint32_t *p99)
{
    const struct options *o = &b->o;
    b->ph = ph;
    ph->open = true;
    ph->total = (uint64_t)o->rate * (o->warmup + o->seconds);
    struct bench_cpu cpu = bench_cpu_now(ph->server->pid);
    int rc = conns_open(b);
    ph->r = (struct bench_rate){.t0 = now_ns() + 1000000, .rate = o->rate};
    int64_t win0 = ph->r.t0 + (int64_t)o->warmup * NS;
    tally_start(&b->t, win0, win0 + (int64_t)o->seconds * NS, true,
                (size_t)o->rate * o->seconds + 1);
    if (rc == 0) rc = offer(b, ph);
    if (rc == 0) drain(b);
    uint64_t never = rc == 0 ? count_unanswered(b) : 0;
    conns_close(b);
    if (rc != 0 || report_answers(b, never) != 0) return -1;
    struct tally *t = &b->t;
    qsort(t->lat_us, t->n_lat, sizeof *t->lat_us, cmp_u32);
    *p99 = quantile(t, 990);
    bench_print_cpu(&cpu, ph->server->pid, ph->name);
    fprintf(stderr,
            "# %s: %u/s offered over %u connections, %zu requests due in the window; "
            "p50 %u us, p99 %u us, p99.9 %u us, max %u us\n",
            ph->name, o->rate, o->connections, t->n_lat, quantile(t, 500), *p99, quantile(t, 999),
            t->n_lat ? t->lat_us[t->n_lat - 1] : 0);
    if (never > 0) {
        fprintf(stderr, "# %s: %" PRIu64 " requests never answered; counted as time waited\n",
                ph->name, never);
    }
    return 0;
}

/* Builds a phase's requests and saturates server s with them. Prints BENCH name. */
static int run_saturation(struct bench *b, struct child *s, const char *label, const char *path,
                          bool aes, double rate_guess, const char *bench, double *rps)
{
    struct reqs r;
    size_t n = aes ? (size_t)(rate_guess * (b->o.warmup + b->o.seconds)) + 10000 : 0;
    if (n > SAFE_POOL_MAX) n = SAFE_POOL_MAX;
    struct phase ph = {.name = label, .server = s, .src = &r};
    int rc = reqs_build(b, &r, s, path, aes, n) == 0 ? saturate(b, &ph, rps) : -1;
    reqs_free(&r);
    if (rc != 0) return -1;
    printf("BENCH %s %.0f req/s\n", bench, *rps);
    fflush(stdout);
    return 0;
}

/* Steps 2 and 3 against wxbank, which is started first and stopped after. */
static int run_wxbank(struct bench *b, struct figures *f)
{
    const struct options *o = &b->o;
    int rc = start_wxbank(b);
    if (rc == 0 && o->plain) {
        rc = run_saturation(b, &b->server, "wxbank plain", "/wechat", false, 0, "webhook.plain_rps",
                            &f->plain);
    }
    if (rc == 0 && o->safe) {
        double guess = f->plain > 0 ? f->plain * POOL_MARGIN : SAFE_RATE_GUESS;
        rc = run_saturation(b, &b->server, "wxbank safe", "/wechat", true, guess,
                            "webhook.safe_rps", &f->safe);
    }
    if (rc == 0 && o->open) {
        /* Safe mode: what a bank runs, and the dearer of the two. */
        struct reqs r;
        struct phase ph = {.name = "wxbank safe, open loop", .server = &b->server, .src = &r};
        uint32_t p99 = 0;
        size_t n = (size_t)o->rate * (o->warmup + o->seconds) + 64;
        rc = reqs_build(b, &r, &b->server, "/wechat", true, n) == 0 ? open_loop(b, &ph, &p99) : -1;
        reqs_free(&r);
        if (rc == 0) {
            if (p99 > P99_TARGET_US) {
                fprintf(stderr, "# p99 %u us at %u/s is above the %d us target\n", p99, o->rate,
                        P99_TARGET_US);
            }
            if (o->rate % 1000 == 0) {
                printf("BENCH webhook.p99_us_at_%uk %u us\n", o->rate / 1000, p99);
            } else {
                printf("BENCH webhook.p99_us_at_%u %u us\n", o->rate, p99);
            }
            fflush(stdout);
        }
    }
    if (stop_child(&b->server) != 0) rc = -1;
    return rc;
}

/* Step 4: the peer, plain on /wechat and safe on /wechat-safe. A peer that cannot start is
 * skipped with a note (returns 0 without figures). */
static int run_peer(struct bench *b, struct figures *f)
{
    if (!find_peer(b)) return 0;
    if (start_peer(b) != 0) {
        fprintf(stderr, "# peer: could not start node %s; skipping the peer figures\n", b->peer_js);
        return 0;
    }
    int rc = run_saturation(b, &b->peer, "peer plain", "/wechat", false, 0,
                            "webhook.peer_plain_rps", &f->peer_plain);
    if (rc == 0) {
        double guess = f->peer_plain > 0 ? f->peer_plain * POOL_MARGIN : PEER_RATE_GUESS;
        rc = run_saturation(b, &b->peer, "peer safe", "/wechat-safe", true, guess,
                            "webhook.peer_safe_rps", &f->peer_safe);
    }
    if (stop_child(&b->peer) != 0) rc = -1;
    return rc;
}

/* The ratios wxbank / peer, where both were measured, with a note when under target. */
static void print_ratios(const struct figures *f)
{
    const struct {
        double ours, peer, target;
        const char *name;
    } r[] = {{f->plain, f->peer_plain, PLAIN_TARGET, "webhook.plain_ratio"},
             {f->safe, f->peer_safe, SAFE_TARGET, "webhook.safe_ratio"}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        if (r[i].ours <= 0 || r[i].peer <= 0) continue;
        double x = r[i].ours / r[i].peer;
        if (x < r[i].target) {
            fprintf(stderr, "# %s %.1f x is below the %.0f x target\n", r[i].name, x, r[i].target);
        }
        printf("BENCH %s %.1f x\n", r[i].name, x);
    }
    fflush(stdout);
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static struct bench b;
    struct figures f = {0};
    int rc = parse_options(argc, argv, &b.o);
    if (rc != 0) return rc == 1 ? 0 : 2;
    rc = 1;
    b.rng = 0x9E3779B97F4A7C15ull;
    b.server.guard = BENCH_GUARD_SERVER;
    b.peer.guard = BENCH_GUARD_AIDE;
    b.ep = epoll_create1(EPOLL_CLOEXEC);
    b.conns = wx_calloc(b.o.connections, sizeof *b.conns);
    b.body = wx_malloc(IN_CAP);
    b.scratch = wx_malloc(IN_CAP);
    b.plain_out = wx_malloc(IN_CAP);
    make_openids(&b);
    if (b.ep < 0 || wx_wechat_crypt_init(&b.crypt, TOKEN, AES_KEY, APPID) != 0) goto out;
    if ((b.o.plain || b.o.safe || b.o.open) && run_wxbank(&b, &f) != 0) goto out;
    if (b.o.peer && run_peer(&b, &f) != 0) goto out;
    print_ratios(&f);
    rc = 0;
out:
    if (stop_child(&b.server) != 0 || stop_child(&b.peer) != 0) rc = 1;
    bench_end_dir(b.dir, b.o.keep);
    if (b.ep >= 0) close(b.ep);
    wx_wechat_crypt_clear(&b.crypt);
    free(b.conns);
    free(b.body);
    free(b.scratch);
    free(b.plain_out);
    free(b.openids);
    free(b.t.lat_us);
    return rc;
}
