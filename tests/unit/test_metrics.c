/*
 * test_metrics.c - GET /metrics (src/net/metrics.c) and the bank's collectors
 * (src/cli/bank_metrics.c), from the wire.
 *
 * A hub with the listener on 127.0.0.1:0 runs on a thread of its own, as `wxbank serve`
 * runs it; the test speaks raw HTTP over a blocking socket with a receive timeout, so a
 * server that hangs fails the test instead of stalling it.
 *
 * The registry's tests register collectors of their own and compare the whole answer with
 * the text it must be: HELP and TYPE once per family, labels and escapes, numbers, the
 * cumulative histogram buckets with a value at a bound in that bound's bucket. HEAD, POST
 * (refused), and the body cap just under and just over follow. Every answer also goes
 * through a checker of the exposition format written here, which is itself shown to
 * reject broken text. The bank's test starts the bank's parts on a fresh ledger with one
 * decision in it and checks that every family it expects is there, with the right values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/bank.h"
#include "ledger/ledger.h"
#include "net/net.h"
#include "unit/engine_cmds.h"
#include "util/config.h"
#include "util/log.h"

#define IO_TIMEOUT_S 5 /* longest a client waits for any one answer */
#define FAMILIES_MAX 128

/* ======================================================================================
 * An exposition-format checker: every line, and the rules on families
 * ====================================================================================== */

struct family_seen {
    char name[128];
    char type[16];
    bool help, sampled;
};

struct checker {
    struct family_seen fam[FAMILIES_MAX];
    size_t n;
    struct family_seen *cur; /* the family the samples now belong to */
    double bucket_last;      /* the last cumulative bucket value of a histogram */
    bool inf_seen;           /* its +Inf bucket came */
    double inf_value;
    char why[256];
};

static bool fail_why(struct checker *c, const char *line, const char *what)
{
    snprintf(c->why, sizeof c->why, "%s: %.120s", what, line);
    return false;
}

/* Reads a metric (label) name at *p: [a-zA-Z_:][a-zA-Z0-9_:]* (no ':' for labels). */
static bool read_name(const char **p, char *out, size_t cap, bool colon)
{
    const char *s = *p;
    size_t n = 0;
    while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
           (colon && *s == ':') || (n > 0 && *s >= '0' && *s <= '9')) {
        if (n + 1 >= cap) return false;
        out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    return n > 0;
}

/* A sample value or a bucket bound: a Go float, NaN or an infinity. */
static bool read_value(const char *s, size_t len, double *v)
{
    char text[64];
    if (len == 0 || len >= sizeof text) return false;
    memcpy(text, s, len);
    text[len] = '\0';
    if (strcmp(text, "NaN") == 0) {
        *v = NAN;
        return true;
    }
    if (strcmp(text, "+Inf") == 0 || strcmp(text, "-Inf") == 0) {
        *v = text[0] == '+' ? INFINITY : -INFINITY;
        return true;
    }
    char *end;
    if (strchr("+-0123456789.", text[0]) == NULL) return false;
    *v = strtod(text, &end);
    return *end == '\0' && !isinf(*v) && !isnan(*v);
}

static struct family_seen *family_find(struct checker *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->fam[i].name, name) == 0) return &c->fam[i];
    }
    return NULL;
}

/* "# HELP name text" or "# TYPE name type": each once, HELP first, before any sample. */
static bool check_comment(struct checker *c, const char *line)
{
    bool help = strncmp(line, "# HELP ", 7) == 0;
    if (!help && strncmp(line, "# TYPE ", 7) != 0) return fail_why(c, line, "stray comment");
    const char *p = line + 7;
    char name[128];
    if (!read_name(&p, name, sizeof name, true) || *p++ != ' ') {
        return fail_why(c, line, "bad family name");
    }
    struct family_seen *f = family_find(c, name);
    if (help) {
        if (f != NULL || c->n == FAMILIES_MAX) return fail_why(c, line, "HELP again");
        for (const char *q = p; *q != '\0'; q++) {
            if (*q == '\\' && q[1] != '\\' && q[1] != 'n') return fail_why(c, line, "escape");
            if (*q == '\\') q++;
        }
        f = &c->fam[c->n++];
        snprintf(f->name, sizeof f->name, "%s", name);
        f->help = true;
        c->cur = f;
        return *p != '\0' || fail_why(c, line, "empty HELP");
    }
    if (f == NULL || f != c->cur || f->type[0] != '\0' || f->sampled) {
        return fail_why(c, line, "TYPE not right after its HELP");
    }
    if (strcmp(p, "counter") != 0 && strcmp(p, "gauge") != 0 && strcmp(p, "histogram") != 0) {
        return fail_why(c, line, "unknown type");
    }
    snprintf(f->type, sizeof f->type, "%s", p);
    c->bucket_last = 0;
    c->inf_seen = false;
    return true;
}

/* Reads {name="value",...} at *p; the value of label `want` (if any) into le. */
static bool read_labels(struct checker *c, const char *line, const char **p, const char *want,
                        char *le, size_t lecap)
{
    const char *s = *p;
    if (*s != '{') return true;
    s++;
    for (;;) {
        char lname[64];
        if (!read_name(&s, lname, sizeof lname, false)) return fail_why(c, line, "label name");
        if (s[0] != '=' || s[1] != '"') return fail_why(c, line, "label without =\"");
        s += 2;
        const char *v = s;
        for (; *s != '"'; s++) {
            if (*s == '\0') return fail_why(c, line, "label value not closed");
            if (*s == '\\' && s[1] != '\\' && s[1] != '"' && s[1] != 'n') {
                return fail_why(c, line, "label value escape");
            }
            if (*s == '\\') s++;
        }
        if (want != NULL && strcmp(lname, want) == 0) {
            snprintf(le, lecap, "%.*s", (int)(s - v), v);
        }
        s++;
        if (*s == '}') break;
        if (*s++ != ',') return fail_why(c, line, "labels not comma-separated");
    }
    *p = s + 1;
    return true;
}

/* The family a sample named name belongs to: the current one, as itself or (histogram)
 * with a _bucket, _sum or _count suffix, whose kind goes into *suffix. */
static bool sample_family(struct checker *c, const char *line, const char *name,
                          const char **suffix)
{
    struct family_seen *f = c->cur;
    if (f == NULL || f->type[0] == '\0') return fail_why(c, line, "sample before TYPE");
    size_t fl = strlen(f->name);
    *suffix = "";
    if (strcmp(f->type, "histogram") == 0) {
        if (strncmp(name, f->name, fl) != 0) return fail_why(c, line, "not its family");
        *suffix = name + fl;
        if (strcmp(*suffix, "_bucket") != 0 && strcmp(*suffix, "_sum") != 0 &&
            strcmp(*suffix, "_count") != 0) {
            return fail_why(c, line, "not a histogram series");
        }
    } else if (strcmp(name, f->name) != 0) {
        return fail_why(c, line, "sample outside its family");
    }
    if (strcmp(f->type, "counter") == 0 && (fl < 6 || strcmp(f->name + fl - 6, "_total") != 0)) {
        return fail_why(c, line, "counter without _total");
    }
    f->sampled = true;
    return true;
}

/* The rules of a histogram's series: buckets cumulative with an le, +Inf last, then the
 * count equal to it. */
static bool check_histogram(struct checker *c, const char *line, const char *suffix, const char *le,
                            double v)
{
    if (strcmp(suffix, "_bucket") == 0) {
        double bound;
        if (c->inf_seen || !read_value(le, strlen(le), &bound)) {
            return fail_why(c, line, "bucket le");
        }
        if (v < c->bucket_last) return fail_why(c, line, "buckets not cumulative");
        c->bucket_last = v;
        c->inf_seen = isinf(bound) && bound > 0;
        c->inf_value = v;
    } else if (!c->inf_seen) {
        return fail_why(c, line, "no +Inf bucket");
    } else if (strcmp(suffix, "_count") == 0 && v != c->inf_value) {
        return fail_why(c, line, "count is not the +Inf bucket");
    }
    return true;
}

static bool check_sample(struct checker *c, const char *line)
{
    const char *p = line, *suffix;
    char name[160], le[64] = "";
    if (!read_name(&p, name, sizeof name, true)) return fail_why(c, line, "bad sample name");
    if (!sample_family(c, line, name, &suffix)) return false;
    if (!read_labels(c, line, &p, "le", le, sizeof le)) return false;
    if (*p++ != ' ') return fail_why(c, line, "no space before the value");
    double v;
    if (!read_value(p, strlen(p), &v)) return fail_why(c, line, "bad value");
    if (suffix[0] != '\0') return check_histogram(c, line, suffix, le, v);
    return true;
}

/* Checks body line by line. NULL when it is good text, else why not (static). */
static const char *exposition_bad(const char *body, size_t len)
{
    static struct checker c;
    memset(&c, 0, sizeof c);
    if (len > 0 && body[len - 1] != '\n') return "the body does not end with a newline";
    char *line = malloc(len + 1);
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(body + at, '\n', len - at);
        size_t ll = (size_t)(nl - (body + at));
        memcpy(line, body + at, ll);
        line[ll] = '\0';
        at += ll + 1;
        bool ok = memchr(line, '\0', ll) == NULL &&
                  (line[0] == '#' ? check_comment(&c, line) : check_sample(&c, line));
        if (!ok) {
            free(line);
            return c.why[0] != '\0' ? c.why : "bad line";
        }
    }
    free(line);
    for (size_t i = 0; i < c.n; i++) {
        if (c.fam[i].type[0] == '\0') return "a family without TYPE";
    }
    return NULL;
}

static void exposition_ok(const char *body, size_t len)
{
    const char *why = exposition_bad(body, len);
    if (why != NULL) fail_msg("not exposition format: %s", why);
}

/* ======================================================================================
 * The server: a hub and its listener on a thread of their own
 * ====================================================================================== */

struct server {
    wx_hub_t *hub;
    wx_http_t *http;
    wx_metrics_t *metrics;
    struct event *tick; /* checks stop and stops the hub, on the hub's loop */
    pthread_t thread;
    bool running;
    atomic_bool stop;
    struct sockaddr_in addr;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *sv = arg;
    if (atomic_load(&sv->stop)) wx_hub_stop(sv->hub);
}

static void *server_main(void *arg)
{
    struct server *sv = arg;
    wx_hub_run(sv->hub);
    return NULL;
}

/* Starts the hub's thread, for a hub and listener already made. 0, or -1. */
static int server_run(struct server *sv)
{
    const char *a = wx_http_address(sv->http), *colon = strrchr(a, ':');
    memset(&sv->addr, 0, sizeof sv->addr);
    sv->addr.sin_family = AF_INET;
    sv->addr.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    sv->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sv->tick = event_new(wx_hub_base(sv->hub), -1, EV_PERSIST, on_tick, sv);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 10000};
    if (sv->tick == NULL || event_add(sv->tick, &tv) != 0) return -1;
    if (pthread_create(&sv->thread, NULL, server_main, sv) != 0) return -1;
    sv->running = true;
    return 0;
}

/* Stops the hub from its own loop and waits for its thread. */
static void server_halt(struct server *sv)
{
    if (sv->running) {
        atomic_store(&sv->stop, true);
        pthread_join(sv->thread, NULL);
        sv->running = false;
    }
    if (sv->tick != NULL) event_free(sv->tick);
    sv->tick = NULL;
}

/* ======================================================================================
 * The client
 * ====================================================================================== */

struct answer {
    int status;
    char head[2048]; /* the status line and headers, NUL-terminated */
    long content_length;
    char *body; /* NUL-terminated, malloc'ed */
    size_t body_len;
};

static int dial(const struct server *sv)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S, .tv_usec = 0};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (const struct sockaddr *)&sv->addr, sizeof sv->addr) != 0) {
        fail_msg("connect: %s", strerror(errno));
    }
    return fd;
}

static void send_str(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0) fail_msg("send: %s", strerror(errno));
        s += k;
        n -= (size_t)k;
    }
}

/* Reads exactly n bytes. */
static void recv_all(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = recv(fd, p, n, 0);
        if (k <= 0) fail_msg("recv: %s", k == 0 ? "closed" : strerror(errno));
        p += k;
        n -= (size_t)k;
    }
}

/* Reads one answer, its body by Content-Length unless no_body (HEAD). A byte at a time up
 * to the blank line, so nothing of a next answer is taken. */
static void read_answer(int fd, struct answer *a, bool no_body)
{
    memset(a, 0, sizeof *a);
    size_t hl = 0;
    while (hl < 4 || memcmp(a->head + hl - 4, "\r\n\r\n", 4) != 0) {
        if (hl + 1 >= sizeof a->head) fail_msg("answer head too large");
        recv_all(fd, a->head + hl++, 1);
    }
    a->head[hl] = '\0';
    assert_memory_equal(a->head, "HTTP/1.1 ", 9);
    a->status = atoi(a->head + 9);
    const char *cl = strcasestr(a->head, "\r\nContent-Length: ");
    assert_non_null(cl);
    a->content_length = strtol(cl + 18, NULL, 10);
    a->body_len = no_body ? 0 : (size_t)a->content_length;
    a->body = malloc(a->body_len + 1);
    recv_all(fd, a->body, a->body_len);
    a->body[a->body_len] = '\0';
}

/* The value of header name, copied into out; NULL when absent. */
static const char *header(const struct answer *a, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strcasestr(a->head, key);
    if (p == NULL) return NULL;
    p += strlen(key);
    snprintf(out, cap, "%.*s", (int)(strstr(p, "\r\n") - p), p);
    return out;
}

/* Sends METHOD /metrics on fd (POST with a small body) and reads the answer. */
static void ask(int fd, const char *method, struct answer *a)
{
    char req[256];
    bool post = strcmp(method, "POST") == 0;
    snprintf(req, sizeof req, "%s /metrics HTTP/1.1\r\nHost: test\r\n%s", method,
             post ? "Content-Length: 2\r\n\r\nhi" : "\r\n");
    send_str(fd, req);
    read_answer(fd, a, strcmp(method, "HEAD") == 0);
}

/* GET /metrics on a new connection: a 200 in exposition format. */
static void scrape_ok(const struct server *sv, struct answer *a)
{
    int fd = dial(sv);
    ask(fd, "GET", a);
    close(fd);
    if (a->status != 200) fail_msg("status %d: %s", a->status, a->body);
    char v[128];
    assert_string_equal(header(a, "Content-Type", v, sizeof v),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(a->content_length, a->body_len);
    exposition_ok(a->body, a->body_len);
}

/* ======================================================================================
 * The registry, with collectors of the test's own
 * ====================================================================================== */

#define PAD_FIXED 29u   /* bytes of a pad line besides its p="..." value */
#define PAD_K     1000u /* the value's length in all but the last lines */

static const double latency_bounds[] = {0.25, 0.5, 1, 2.5};
static const double size_bounds[] = {1, 2, 4};

struct registry {
    struct server sv;
    struct wx_histogram latency; /* 0.125, 0.25, 0.75, 1 and 4 observed */
    struct wx_histogram size;    /* empty, but for test_observe_on_the_loop */
    atomic_size_t pad_to;        /* nonzero: collect_pad alone writes this many bytes */
};

static struct registry reg;

static void collect_counters(struct wx_metrics_out *o, void *arg)
{
    struct registry *r = arg;
    if (atomic_load(&r->pad_to) != 0) return;
    static const char requests[] = "Requests seen, by code and method.";
    wx_metrics_counter(o, "test_requests_total", requests, "code=\"200\",method=\"get\"", 1027);
    wx_metrics_counter(o, "test_requests_total", requests, "code=\"500\",method=\"get\"", 3);
    wx_metrics_counter(o, "test_wrapped_total", "A counter at its largest.", NULL, UINT64_MAX);
    wx_metrics_counter_double(o, "test_busy_seconds_total", "Seconds spent busy.", NULL, 1.5);
}

static void collect_gauges(struct wx_metrics_out *o, void *arg)
{
    struct registry *r = arg;
    if (atomic_load(&r->pad_to) != 0) return;
    wx_metrics_gauge(o, "test_temperature_celsius", "A gauge without labels.", NULL, -3.5);
    static const char escapes[] = "Help with a backslash \\ and a\nnewline.";
    wx_metrics_gauge(o, "test_escapes", escapes, "path=\"a\\\"b\\\\c\\nd\"", 0.1);
    wx_metrics_gauge(o, "test_escapes", escapes, "path=\"plain\"", 1e21);
    static const char special[] = "Numbers that are hard to write.";
    wx_metrics_gauge(o, "test_special", special, "v=\"nan\"", NAN);
    wx_metrics_gauge(o, "test_special", special, "v=\"inf\"", INFINITY);
    wx_metrics_gauge(o, "test_special", special, "v=\"-inf\"", -INFINITY);
    wx_metrics_gauge(o, "test_special", special, "v=\"2^53\"", 9007199254740992.0);
    wx_metrics_gauge(o, "test_special", special, "v=\"third\"", 1.0 / 3);
    wx_metrics_gauge(o, "test:ratio", "A name with a colon, as recording rules have.", NULL, 0);
}

static void collect_nothing(struct wx_metrics_out *o, void *arg)
{
    (void)o;
    (void)arg;
}

static void collect_histograms(struct wx_metrics_out *o, void *arg)
{
    struct registry *r = arg;
    if (atomic_load(&r->pad_to) != 0) return;
    wx_metrics_histogram(o, "test_latency_seconds", "Request latency.", &r->latency);
    wx_metrics_histogram(o, "test_size_bytes", "Sizes, none yet.", &r->size);
}

/* Writes one family of exactly pad_to bytes: lines of PAD_FIXED + PAD_K bytes, the last
 * ones shorter so that none is under PAD_FIXED. */
static void collect_pad(struct wx_metrics_out *o, void *arg)
{
    struct registry *r = arg;
    size_t left = atomic_load(&r->pad_to);
    if (left == 0) return;
    static const char head[] = "# HELP test_pad Padding.\n# TYPE test_pad gauge\n";
    assert_true(left >= sizeof head - 1 + PAD_FIXED);
    left -= sizeof head - 1;
    char *xs = malloc(PAD_K + 1), labels[PAD_K + 64];
    memset(xs, 'x', PAD_K);
    for (unsigned i = 0; left > 0; i++) {
        size_t len = PAD_FIXED + PAD_K;
        if (left <= len) {
            len = left;
        } else if (left - len < PAD_FIXED) {
            len = left - PAD_FIXED;
        }
        snprintf(labels, sizeof labels, "i=\"%07u\",p=\"%.*s\"", i, (int)(len - PAD_FIXED), xs);
        wx_metrics_gauge(o, "test_pad", "Padding.", labels, 0);
        left -= len;
    }
    free(xs);
}

static const char expected_text[] =
    "# HELP test_requests_total Requests seen, by code and method.\n"
    "# TYPE test_requests_total counter\n"
    "test_requests_total{code=\"200\",method=\"get\"} 1027\n"
    "test_requests_total{code=\"500\",method=\"get\"} 3\n"
    "# HELP test_wrapped_total A counter at its largest.\n"
    "# TYPE test_wrapped_total counter\n"
    "test_wrapped_total 18446744073709551615\n"
    "# HELP test_busy_seconds_total Seconds spent busy.\n"
    "# TYPE test_busy_seconds_total counter\n"
    "test_busy_seconds_total 1.5\n"
    "# HELP test_temperature_celsius A gauge without labels.\n"
    "# TYPE test_temperature_celsius gauge\n"
    "test_temperature_celsius -3.5\n"
    "# HELP test_escapes Help with a backslash \\\\ and a\\nnewline.\n"
    "# TYPE test_escapes gauge\n"
    "test_escapes{path=\"a\\\"b\\\\c\\nd\"} 0.1\n"
    "test_escapes{path=\"plain\"} 1e+21\n"
    "# HELP test_special Numbers that are hard to write.\n"
    "# TYPE test_special gauge\n"
    "test_special{v=\"nan\"} NaN\n"
    "test_special{v=\"inf\"} +Inf\n"
    "test_special{v=\"-inf\"} -Inf\n"
    "test_special{v=\"2^53\"} 9007199254740992\n"
    "test_special{v=\"third\"} 0.33333333333333331\n"
    "# HELP test:ratio A name with a colon, as recording rules have.\n"
    "# TYPE test:ratio gauge\n"
    "test:ratio 0\n"
    "# HELP test_latency_seconds Request latency.\n"
    "# TYPE test_latency_seconds histogram\n"
    "test_latency_seconds_bucket{le=\"0.25\"} 2\n"
    "test_latency_seconds_bucket{le=\"0.5\"} 2\n"
    "test_latency_seconds_bucket{le=\"1\"} 4\n"
    "test_latency_seconds_bucket{le=\"2.5\"} 4\n"
    "test_latency_seconds_bucket{le=\"+Inf\"} 5\n"
    "test_latency_seconds_sum 6.125\n"
    "test_latency_seconds_count 5\n"
    "# HELP test_size_bytes Sizes, none yet.\n"
    "# TYPE test_size_bytes histogram\n"
    "test_size_bytes_bucket{le=\"1\"} 0\n"
    "test_size_bytes_bucket{le=\"2\"} 0\n"
    "test_size_bytes_bucket{le=\"4\"} 0\n"
    "test_size_bytes_bucket{le=\"+Inf\"} 0\n"
    "test_size_bytes_sum 0\n"
    "test_size_bytes_count 0\n";

static int registry_setup(void **state)
{
    char err[256];
    wx_log_set_level(WX_LOG_ERROR);
    memset(&reg, 0, sizeof reg);
    struct server *sv = &reg.sv;
    sv->hub = wx_hub_new(NULL, NULL, err, sizeof err);
    if (sv->hub == NULL) return -1;
    struct wx_http_options ho = {.listen = "127.0.0.1:0",
                                 .body_max = 4096,
                                 .timeout_s = 5,
                                 .max_connections = 16,
                                 .threads = 1};
    sv->http = wx_http_start(sv->hub, &ho, err, sizeof err);
    if (sv->http == NULL) return -1;
    sv->metrics = wx_metrics_start(sv->http);
    wx_metrics_add(sv->metrics, collect_counters, &reg);
    wx_metrics_add(sv->metrics, collect_nothing, NULL);
    wx_metrics_add(sv->metrics, collect_gauges, &reg);
    wx_metrics_add(sv->metrics, collect_histograms, &reg);
    wx_metrics_add(sv->metrics, collect_pad, &reg);
    /* Before the loop runs, this thread stands in for the loop's. */
    wx_histogram_init(&reg.latency, latency_bounds, 4);
    const double seen[] = {0.125, 0.25, 0.75, 1, 4};
    for (size_t i = 0; i < sizeof seen / sizeof seen[0]; i++)
        wx_histogram_observe(&reg.latency, seen[i]);
    wx_histogram_init(&reg.size, size_bounds, 3);
    *state = &reg;
    return server_run(sv);
}

static int registry_teardown(void **state)
{
    (void)state;
    struct server *sv = &reg.sv;
    server_halt(sv);
    wx_http_free(sv->http); /* first: the route and the requests it holds point at metrics */
    wx_metrics_free(sv->metrics);
    wx_hub_free(sv->hub);
    return 0;
}

static void answer_free(struct answer *a)
{
    free(a->body);
    a->body = NULL;
}

/* ---- the tests ------------------------------------------------------------------------ */

static void test_exact_text(void **state)
{
    (void)state;
    struct answer a;
    scrape_ok(&reg.sv, &a);
    assert_string_equal(a.body, expected_text);
    answer_free(&a);
    /* The buffers are reused: a second scrape says the same, HELP and TYPE still once. */
    scrape_ok(&reg.sv, &a);
    assert_string_equal(a.body, expected_text);
    answer_free(&a);
}

struct observe_task {
    struct wx_hub_task task;
    const double *values;
    size_t n;
    bool reset;
    atomic_bool done;
};

/* On the loop: observes the values into reg.size, or empties it first when reset. */
static void observe_run(struct wx_hub_task *t, bool cancelled)
{
    struct observe_task *ot = (struct observe_task *)t;
    if (!cancelled) {
        if (ot->reset) wx_histogram_init(&reg.size, size_bounds, 3);
        for (size_t i = 0; i < ot->n; i++)
            wx_histogram_observe(&reg.size, ot->values[i]);
    }
    atomic_store(&ot->done, true);
}

static void observe_on_loop(const double *values, size_t n, bool reset)
{
    struct observe_task ot = {.task.run = observe_run, .values = values, .n = n, .reset = reset};
    wx_hub_post(reg.sv.hub, &ot.task);
    while (!atomic_load(&ot.done))
        usleep(1000);
}

static void test_observe_on_the_loop(void **state)
{
    (void)state;
    /* At every bound, just over one, below the first and above the last. */
    static const double values[] = {1, 2, 4, 2.25, 0.5, 100, -1};
    observe_on_loop(values, sizeof values / sizeof values[0], true);
    struct answer a;
    scrape_ok(&reg.sv, &a);
    const char *h = strstr(a.body, "# HELP test_size_bytes");
    assert_non_null(h);
    assert_string_equal(h, "# HELP test_size_bytes Sizes, none yet.\n"
                           "# TYPE test_size_bytes histogram\n"
                           "test_size_bytes_bucket{le=\"1\"} 3\n"
                           "test_size_bytes_bucket{le=\"2\"} 4\n"
                           "test_size_bytes_bucket{le=\"4\"} 6\n"
                           "test_size_bytes_bucket{le=\"+Inf\"} 7\n"
                           "test_size_bytes_sum 108.75\n"
                           "test_size_bytes_count 7\n");
    answer_free(&a);
    observe_on_loop(NULL, 0, true);
    scrape_ok(&reg.sv, &a);
    assert_string_equal(a.body, expected_text);
    answer_free(&a);
}

static void test_head_then_get(void **state)
{
    (void)state;
    int fd = dial(&reg.sv);
    struct answer head, get;
    ask(fd, "HEAD", &head);
    assert_int_equal(head.status, 200);
    char v[128];
    assert_string_equal(header(&head, "Content-Type", v, sizeof v),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(head.content_length, strlen(expected_text));
    /* Had HEAD sent a body, this answer would start inside it. */
    ask(fd, "GET", &get);
    assert_int_equal(get.status, 200);
    assert_string_equal(get.body, expected_text);
    close(fd);
    answer_free(&head);
    answer_free(&get);
}

static void test_post_refused(void **state)
{
    (void)state;
    int fd = dial(&reg.sv);
    struct answer a;
    ask(fd, "POST", &a);
    assert_int_equal(a.status, 405);
    char v[128];
    assert_string_equal(header(&a, "Allow", v, sizeof v), "GET, HEAD");
    assert_string_equal(a.body, "use GET or HEAD\n");
    answer_free(&a);
    ask(fd, "GET", &a); /* the connection goes on */
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, expected_text);
    answer_free(&a);
    close(fd);
}

static void test_body_cap(void **state)
{
    (void)state;
    struct answer a;
    atomic_store(&reg.pad_to, (size_t)WX_METRICS_BODY_MAX);
    scrape_ok(&reg.sv, &a);
    assert_int_equal(a.body_len, WX_METRICS_BODY_MAX);
    assert_memory_equal(a.body, "# HELP test_pad Padding.\n", 25);
    answer_free(&a);

    atomic_store(&reg.pad_to, (size_t)WX_METRICS_BODY_MAX + 1);
    int fd = dial(&reg.sv);
    ask(fd, "GET", &a);
    close(fd);
    assert_int_equal(a.status, 500);
    assert_string_equal(a.body, "metrics: too large\n");
    answer_free(&a);

    atomic_store(&reg.pad_to, 0);
    scrape_ok(&reg.sv, &a);
    assert_string_equal(a.body, expected_text);
    answer_free(&a);
}

/* The checker the other tests lean on turns down what it must. */
static void test_checker_rejects(void **state)
{
    (void)state;
    static const char good[] = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n"
                               "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                               "h_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
    assert_null(exposition_bad(good, strlen(good)));
    assert_null(exposition_bad(expected_text, strlen(expected_text)));
    static const char *const bad[] = {
        "# HELP a A.\n# TYPE a gauge\na 1",                                /* no final newline */
        "# HELP a A.\n# TYPE a gauge\na 1\n# HELP a A.\n",                 /* HELP twice */
        "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n",              /* TYPE twice */
        "# TYPE a gauge\na 1\n",                                           /* no HELP */
        "# HELP a A.\na 1\n",                                              /* no TYPE */
        "# HELP a A.\n# TYPE a gauge\nb 1\n",                              /* outside its family */
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\n", /* family again */
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",                           /* bad name */
        "# HELP a A.\n# TYPE a gauge\na{x=\"\"\"} 1\n",                    /* unescaped quote */
        "# HELP a A.\n# TYPE a gauge\na{x=\"\\t\"} 1\n",                   /* unknown escape */
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",                         /* unquoted value */
        "# HELP a A.\n# TYPE a gauge\na one\n",                            /* not a number */
        "# HELP a A.\n# TYPE a gauge\na  1\n",                             /* two spaces */
        "# HELP a A.\n# TYPE a counter\na 1\n",                            /* counter, no _total */
        "# HELP a A.\n# TYPE a summary\na 1\n",                            /* not ours */
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
        "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n", /* not cumulative */
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* +Inf */
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "a comment without the hash\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (exposition_bad(bad[i], strlen(bad[i])) == NULL) fail_msg("accepted: %s", bad[i]);
    }
}

/* ======================================================================================
 * The bank's collectors, over a fresh ledger with one decision in it
 * ====================================================================================== */

struct bank_fixture {
    char dir[64];
    wx_config_t *cfg;
    wx_ledger_t *ledger;
    wx_keys_t *keys;
    struct wx_bank b;
    struct server sv;
};

static struct bank_fixture bank;

/* Opens the ledger in a new directory and decides one command in it. 0, or -1. */
static int bank_ledger(struct bank_fixture *f, char *err, size_t errlen)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/wx-metrics-XXXXXX");
    if (mkdtemp(f->dir) == NULL) return -1;
    char text[512];
    int n = snprintf(text, sizeof text,
                     "[db]\nurl = sqlite:%s/bank.db\n[http]\nlisten = 127.0.0.1:0\n"
                     "[wechat]\nappid = wx0123456789abcdef\nsecret = s3cret\ntoken = tok\n",
                     f->dir);
    f->cfg = wx_config_load_buffer(text, (size_t)n, "test", err, errlen);
    if (f->cfg == NULL) return -1;
    struct wx_ledger_options lo;
    wx_ledger_options_from_config(f->cfg, wx_config_sqlite_path(f->cfg), &lo);
    f->ledger = wx_ledger_open(&lo, err, errlen);
    if (f->ledger == NULL) return -1;
    struct wx_cmd cmd;
    struct wx_result res;
    cmd_customer(&cmd, "test:customer:1", T0_MS, "Li Lei", "13800138000", 1);
    wx_ledger_submit(f->ledger, &cmd, &res);
    if (!res.journaled) return -1;
    wx_ledger_sync(f->ledger, res.seq);
    return 0;
}

/* Starts the parts of the bank the collectors read, the way bank.c does. */
static int bank_setup(void **state)
{
    char err[512] = "";
    struct bank_fixture *f = &bank;
    memset(f, 0, sizeof *f);
    wx_log_set_level(WX_LOG_ERROR);
    static const uint8_t master[32] = {1};
    struct wx_http_options ho;
    struct wx_wechat_api_options ao;
    struct wx_webhook_options wo;
    if (bank_ledger(f, err, sizeof err) != 0) goto fail;
    f->keys = wx_keys_new(master);
    wx_http_options_from_config(f->cfg, &ho);
    wx_wechat_api_options_from_config(f->cfg, &ao);
    if (wx_webhook_options_from_config(f->cfg, &wo, err, sizeof err) != 0) goto fail;
    struct wx_bank *b = &f->b;
    b->hub = wx_hub_new(f->ledger, f->keys, err, sizeof err);
    if (b->hub == NULL) goto fail;
    b->http = wx_http_start(b->hub, &ho, err, sizeof err);
    if (b->http == NULL) goto fail;
    b->fetch = wx_fetch_new(wx_hub_base(b->hub), NULL);
    b->api = wx_wechat_api_new(wx_hub_base(b->hub), b->fetch, &ao);
    b->webhook = wx_webhook_start(b->hub, b->http, b->api, &wo, err, sizeof err);
    if (b->fetch == NULL || b->webhook == NULL) goto fail;
    wx_bank_metrics_start(b);
    f->sv.hub = b->hub;
    f->sv.http = b->http;
    *state = f;
    return server_run(&f->sv);
fail:
    fprintf(stderr, "bank: %s\n", err);
    return -1;
}

/* Stops in the order wx_bank_stop does, then closes the ledger and removes it. */
static int bank_teardown(void **state)
{
    (void)state;
    struct bank_fixture *f = &bank;
    struct wx_bank *b = &f->b;
    server_halt(&f->sv);
    wx_http_free(b->http);
    wx_metrics_free(b->metrics);
    wx_webhook_free(b->webhook);
    wx_fetch_free(b->fetch);
    wx_wechat_api_free(b->api);
    wx_hub_free(b->hub);
    wx_keys_free(f->keys);
    wx_ledger_close(f->ledger);
    wx_config_free(f->cfg);
    char cmd[sizeof f->dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%.*s'", (int)sizeof f->dir - 1, f->dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The value of the sample line that starts with `series ` (name and labels). */
static double sample_value(const char *body, const char *series)
{
    char key[160];
    snprintf(key, sizeof key, "\n%s ", series);
    const char *p = strstr(body, key);
    if (p == NULL) fail_msg("no sample %s", series);
    return strtod(p + strlen(key), NULL);
}

static void test_bank_families(void **state)
{
    (void)state;
    static const char *const families[] = {
        "wxbank_uptime_seconds",
        "wxbank_http_connections_accepted_total",
        "wxbank_http_connections_open",
        "wxbank_http_requests_total",
        "wxbank_http_refused_total",
        "wxbank_journal_commits_total",
        "wxbank_journal_rows_total",
        "wxbank_journal_bytes_total",
        "wxbank_journal_commit_seconds_total",
        "wxbank_journal_durable_seq",
        "wxbank_engine_customers",
        "wxbank_engine_accounts",
        "wxbank_engine_cards",
        "wxbank_engine_followers",
        "wxbank_engine_records",
        "wxbank_engine_open_holds",
        "wxbank_engine_last_seq",
        "wxbank_engine_time_seconds",
        "wxbank_engine_memory_bytes",
        "wxbank_fetch_started_total",
        "wxbank_fetch_finished_total",
        "wxbank_fetch_in_flight",
        "wxbank_fetch_queued",
        "wxbank_fetch_in_flight_max",
        "wxbank_wechat_api_tokens_total",
        "wxbank_wechat_api_attempts_total",
        "wxbank_wechat_api_retries_total",
        "wxbank_wechat_api_calls_total",
        "wxbank_webhook_messages_total",
        "wxbank_webhook_repeats_total",
        "wxbank_webhook_refused_total",
        "wxbank_webhook_late_total",
    };
    struct answer a;
    scrape_ok(&bank.sv, &a);
    /* Every family, in order, and no other. */
    size_t i = 0;
    for (const char *p = strstr(a.body, "# TYPE "); p != NULL; p = strstr(p + 1, "\n# TYPE ")) {
        p += p[0] == '\n' ? 8 : 7;
        if (i == sizeof families / sizeof families[0]) fail_msg("unexpected family at %.60s", p);
        size_t n = strlen(families[i]);
        if (strncmp(p, families[i], n) != 0 || p[n] != ' ') {
            fail_msg("expected %s, got %.60s", families[i], p);
        }
        i++;
    }
    assert_int_equal(i, sizeof families / sizeof families[0]);
    answer_free(&a);
}

static void test_bank_values(void **state)
{
    (void)state;
    struct answer a;
    scrape_ok(&bank.sv, &a);
    const char *body = a.body;
    double up = sample_value(body, "wxbank_uptime_seconds");
    assert_true(up > 0 && up < 600);
    assert_true(sample_value(body, "wxbank_http_connections_accepted_total") >= 1);
    assert_int_equal(sample_value(body, "wxbank_http_connections_open"), 1);
    assert_int_equal(sample_value(body, "wxbank_http_refused_total"), 0);
    assert_true(sample_value(body, "wxbank_journal_commits_total") >= 1);
    assert_int_equal(sample_value(body, "wxbank_journal_rows_total"), 1);
    assert_true(sample_value(body, "wxbank_journal_bytes_total") > 0);
    assert_true(sample_value(body, "wxbank_journal_commit_seconds_total") > 0);
    assert_int_equal(sample_value(body, "wxbank_journal_durable_seq"), 1);
    assert_int_equal(sample_value(body, "wxbank_engine_customers"), 1);
    assert_int_equal(sample_value(body, "wxbank_engine_cards"), 0);
    assert_int_equal(sample_value(body, "wxbank_engine_last_seq"), 1);
    assert_true(sample_value(body, "wxbank_engine_time_seconds") == T0_MS / 1000);
    assert_true(sample_value(body, "wxbank_engine_memory_bytes") > 0);
    assert_int_equal(sample_value(body, "wxbank_fetch_finished_total{result=\"ok\"}"), 0);
    assert_int_equal(sample_value(body, "wxbank_fetch_finished_total{result=\"failed\"}"), 0);
    assert_int_equal(sample_value(body, "wxbank_wechat_api_calls_total{result=\"permanent\"}"), 0);
    assert_int_equal(sample_value(body, "wxbank_webhook_messages_total"), 0);
    answer_free(&a);

    /* A request the listener refuses shows in the next scrape. */
    int fd = dial(&bank.sv);
    send_str(fd, "BREW /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    read_answer(fd, &a, false);
    close(fd);
    assert_int_equal(a.status, 501);
    answer_free(&a);
    scrape_ok(&bank.sv, &a);
    assert_int_equal(sample_value(a.body, "wxbank_http_refused_total"), 1);
    answer_free(&a);
}

int main(void)
{
    const struct CMUnitTest registry_tests[] = {
        cmocka_unit_test(test_checker_rejects),     /* first: the others lean on the checker */
        cmocka_unit_test(test_exact_text),          /* families, labels, numbers, buckets */
        cmocka_unit_test(test_observe_on_the_loop), /* values at and between the bounds */
        cmocka_unit_test(test_head_then_get),       /* HEAD: the length, and no body */
        cmocka_unit_test(test_post_refused),        /* 405 with Allow */
        cmocka_unit_test(test_body_cap),            /* just under and just over the cap */
    };
    const struct CMUnitTest bank_tests[] = {
        cmocka_unit_test(test_bank_families),
        cmocka_unit_test(test_bank_values),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("metrics registry", registry_tests, registry_setup,
                                          registry_teardown);
    failed += cmocka_run_group_tests_name("bank metrics", bank_tests, bank_setup, bank_teardown);
    return failed;
}
