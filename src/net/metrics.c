/*
 * metrics.c - GET /metrics: a registry of collectors and the writers they use to put
 * together the Prometheus text exposition format, version 0.0.4.
 *
 * The bank exposes a few dozen numbers that its modules already count, so there is no
 * metric object to register and keep in step: a module registers one collector, and each
 * scrape asks every collector to write its numbers as they are now. That keeps the counters
 * where they live (plain fields, changed on their own thread) and costs nothing between
 * scrapes. A scrape runs on the hub's loop, where most of those counters change.
 *
 * The text is strict about families: a family's HELP and TYPE lines come once, before all
 * of its series, and no family comes twice. The writers remember the families written so
 * far in the scrape and add HELP and TYPE to the first series of each; a family that comes
 * back later is a bug in a collector and asserted, as are malformed names and labels.
 *
 * The body is built in one buffer kept between scrapes (a steady scraper costs no
 * allocation). It is capped at WX_METRICS_BODY_MAX: a scrape that would pass the cap is
 * answered 500 and logged, since a cut-off body would read as counters that went missing.
 */
#include "net/net.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"

#define CONTENT_TYPE    "text/plain; version=0.0.4; charset=utf-8"
#define BODY_START      4096 /* the body buffer to begin with */
#define FAMILIES_START  64   /* and the family table */
#define NAMES_START     2048 /* and the families' names */
#define DOUBLE_TEXT_MAX 32   /* "-1.2345678901234567e-308" and its NUL, with room */

enum family_type { FAMILY_COUNTER, FAMILY_GAUGE, FAMILY_HISTOGRAM };

static const char *const family_type_names[] = {"counter", "gauge", "histogram"};

/* A family written in this scrape. */
struct family {
    size_t name_off; /* its name in out->names */
    enum family_type type;
};

struct wx_metrics_out {
    char *buf;               /* the body so far */
    size_t len;              /* bytes in buf */
    size_t cap;              /* allocated, at most WX_METRICS_BODY_MAX */
    bool full;               /* a write did not fit under the cap: the scrape fails */
    size_t full_family;      /* how many families were begun when it did, for the log */
    struct family *families; /* written so far, in order */
    size_t nfamilies, families_cap;
    char *names; /* the families' names, each NUL-terminated */
    size_t names_len, names_cap;
};

struct collector {
    wx_metrics_collect fn;
    void *arg; /* borrowed */
};

struct wx_metrics {
    struct collector collectors[WX_METRICS_COLLECTORS_MAX];
    unsigned ncollectors;
    struct wx_metrics_out out; /* reused by every scrape */
};

/* ---- checks on the program's own text ------------------------------------------------ */

/* A letter or '_': what starts a label name, and a metric name besides ':'. */
static bool is_word_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* True when s matches [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool name_ok(const char *s)
{
    if (!is_word_start(s[0]) && s[0] != ':') return false;
    for (s++; *s != '\0'; s++) {
        if (!is_word_start(*s) && !is_digit(*s) && *s != ':') return false;
    }
    return true;
}

/* The end of the quoted label value that starts after the opening quote at p, or NULL
 * when it is not closed or has a raw newline or an escape other than \\, \" and \n. */
static const char *label_value_end(const char *p)
{
    for (; *p != '"'; p++) {
        if (*p == '\0' || *p == '\n') return NULL;
        if (*p == '\\') {
            p++;
            if (*p != '\\' && *p != '"' && *p != 'n') return NULL;
        }
    }
    return p;
}

/* True when s is `name="value"` pairs separated by commas, as the text format has them
 * between the braces. */
static bool labels_ok(const char *s)
{
    for (;;) {
        if (!is_word_start(*s)) return false;
        while (is_word_start(*s) || is_digit(*s))
            s++;
        if (s[0] != '=' || s[1] != '"') return false;
        s = label_value_end(s + 2);
        if (s == NULL) return false;
        s++;
        if (*s == '\0') return true;
        if (*s++ != ',') return false;
    }
}

/* ---- the body ------------------------------------------------------------------------ */

/* Makes room for more bytes; false (and the scrape failed) when they would pass the cap. */
static bool out_room(struct wx_metrics_out *o, size_t more)
{
    if (o->full) return false;
    if (more > WX_METRICS_BODY_MAX - o->len) {
        o->full = true;
        o->full_family = o->nfamilies;
        return false;
    }
    if (o->len + more <= o->cap) return true;
    size_t cap = o->cap > 0 ? o->cap : BODY_START;
    while (cap < o->len + more)
        cap *= 2;
    if (cap > WX_METRICS_BODY_MAX) cap = WX_METRICS_BODY_MAX;
    o->buf = wx_realloc(o->buf, cap);
    o->cap = cap;
    return true;
}

static void out_put(struct wx_metrics_out *o, const char *s, size_t n)
{
    if (!out_room(o, n)) return;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_str(struct wx_metrics_out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* Writes help with backslashes and newlines escaped, as HELP lines take it. */
static void out_help(struct wx_metrics_out *o, const char *help)
{
    for (const char *p = help; *p != '\0';) {
        size_t run = strcspn(p, "\\\n");
        out_put(o, p, run);
        p += run;
        if (*p == '\0') break;
        out_str(o, *p == '\\' ? "\\\\" : "\\n");
        p++;
    }
}

/* Formats v the way Prometheus reads it back exactly: the shorter of %.15g and %.17g that
 * round-trips (so 0.1 stays "0.1"), and NaN and the infinities by their names. */
static const char *format_double(double v, char out[DOUBLE_TEXT_MAX])
{
    if (isnan(v)) return "NaN";
    if (isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    snprintf(out, DOUBLE_TEXT_MAX, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, DOUBLE_TEXT_MAX, "%.17g", v);
    return out;
}

/* ---- families and series ------------------------------------------------------------- */

static const char *family_name(const struct wx_metrics_out *o, const struct family *f)
{
    return o->names + f->name_off;
}

/* Remembers family name for the rest of the scrape. */
static void family_add(struct wx_metrics_out *o, const char *name, enum family_type type)
{
    size_t len = strlen(name) + 1;
    if (o->names_len + len > o->names_cap) {
        o->names_cap = o->names_cap > 0 ? o->names_cap : NAMES_START;
        while (o->names_len + len > o->names_cap)
            o->names_cap *= 2;
        o->names = wx_realloc(o->names, o->names_cap);
    }
    if (o->nfamilies == o->families_cap) {
        o->families_cap = o->families_cap > 0 ? o->families_cap * 2 : FAMILIES_START;
        o->families = wx_reallocarray(o->families, o->families_cap, sizeof *o->families);
    }
    memcpy(o->names + o->names_len, name, len);
    o->families[o->nfamilies++] = (struct family){.name_off = o->names_len, .type = type};
    o->names_len += len;
}

/*
 * Before a series of family name: writes the family's HELP and TYPE lines when the series
 * is its first. Asserts what would make the text unreadable: a bad name, no help, a
 * family with two types, or one that comes back after another family.
 */
static void family_begin(struct wx_metrics_out *o, const char *name, const char *help,
                         enum family_type type)
{
    assert(name_ok(name));
    assert(help != NULL);
    assert(help[0] != '\0');
    if (o->nfamilies > 0) {
        const struct family *last = &o->families[o->nfamilies - 1];
        if (strcmp(family_name(o, last), name) == 0) {
            assert(last->type == type);
            return;
        }
    }
    for (size_t i = 0; i < o->nfamilies; i++) {
        assert(strcmp(family_name(o, &o->families[i]), name) != 0);
    }
    family_add(o, name, type);
    out_str(o, "# HELP ");
    out_str(o, name);
    out_str(o, " ");
    out_help(o, help);
    out_str(o, "\n# TYPE ");
    out_str(o, name);
    out_str(o, " ");
    out_str(o, family_type_names[type]);
    out_str(o, "\n");
}

/* Writes one sample line: name, suffix, {labels} when there are any, and the value. */
static void series(struct wx_metrics_out *o, const char *name, const char *suffix,
                   const char *labels, const char *value)
{
    out_str(o, name);
    out_str(o, suffix);
    if (labels != NULL && labels[0] != '\0') {
        assert(labels_ok(labels));
        out_str(o, "{");
        out_str(o, labels);
        out_str(o, "}");
    }
    out_str(o, " ");
    out_str(o, value);
    out_str(o, "\n");
}

static bool counter_name_ok(const char *name)
{
    size_t len = strlen(name);
    return len > 6 && strcmp(name + len - 6, "_total") == 0;
}

void wx_metrics_counter(struct wx_metrics_out *o, const char *name, const char *help,
                        const char *labels, uint64_t v)
{
    assert(counter_name_ok(name));
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    family_begin(o, name, help, FAMILY_COUNTER);
    series(o, name, "", labels, text);
}

void wx_metrics_counter_double(struct wx_metrics_out *o, const char *name, const char *help,
                               const char *labels, double v)
{
    assert(counter_name_ok(name));
    assert(isfinite(v));
    assert(v >= 0);
    char text[DOUBLE_TEXT_MAX];
    family_begin(o, name, help, FAMILY_COUNTER);
    series(o, name, "", labels, format_double(v, text));
}

void wx_metrics_gauge(struct wx_metrics_out *o, const char *name, const char *help,
                      const char *labels, double v)
{
    char text[DOUBLE_TEXT_MAX];
    family_begin(o, name, help, FAMILY_GAUGE);
    series(o, name, "", labels, format_double(v, text));
}

/* ---- histograms ---------------------------------------------------------------------- */

void wx_histogram_init(struct wx_histogram *h, const double *bounds, size_t n)
{
    assert(n >= 1);
    assert(n <= WX_HISTOGRAM_BUCKETS_MAX);
    for (size_t i = 0; i < n; i++) {
        assert(isfinite(bounds[i]));
        assert(i == 0 || bounds[i - 1] < bounds[i]);
    }
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n = n;
}

void wx_histogram_observe(struct wx_histogram *h, double v)
{
    assert(!isnan(v));
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void wx_metrics_histogram(struct wx_metrics_out *o, const char *name, const char *help,
                          const struct wx_histogram *h)
{
    assert(h->n >= 1);
    assert(h->n <= WX_HISTOGRAM_BUCKETS_MAX);
    family_begin(o, name, help, FAMILY_HISTOGRAM);
    char le[8 + DOUBLE_TEXT_MAX], num[DOUBLE_TEXT_MAX], count[24];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->n; i++) {
        cumulative += h->counts[i];
        if (i < h->n) {
            snprintf(le, sizeof le, "le=\"%s\"", format_double(h->bounds[i], num));
        } else {
            snprintf(le, sizeof le, "le=\"+Inf\"");
        }
        snprintf(count, sizeof count, "%" PRIu64, cumulative);
        series(o, name, "_bucket", le, count);
    }
    assert(cumulative == h->count);
    series(o, name, "_sum", NULL, format_double(h->sum, num));
    snprintf(count, sizeof count, "%" PRIu64, h->count);
    series(o, name, "_count", NULL, count);
}

/* ---- the route ----------------------------------------------------------------------- */

/* On the hub's loop: runs every collector into the reused buffers and answers with them
 * (for HEAD too, so that Content-Length is the body's). */
static void on_metrics(wx_http_req_t *req, void *arg)
{
    struct wx_metrics *m = arg;
    enum wx_http_method method = wx_http_method(req);
    if (method != WX_HTTP_GET && method != WX_HTTP_HEAD) {
        wx_http_add_header(req, "Allow", "GET, HEAD");
        wx_http_error(req, 405, "use GET or HEAD");
        return;
    }
    struct wx_metrics_out *o = &m->out;
    o->len = 0;
    o->full = false;
    o->nfamilies = 0;
    o->names_len = 0;
    for (unsigned i = 0; i < m->ncollectors; i++)
        m->collectors[i].fn(o, m->collectors[i].arg);
    if (o->full) {
        const char *at = o->full_family > 0 ? family_name(o, &o->families[o->full_family - 1]) : "";
        WX_ERROR("metrics: the scrape passed %u bytes, in family %zu (%s): answered 500",
                 WX_METRICS_BODY_MAX, o->full_family, at);
        wx_http_error(req, 500, "metrics: too large");
        return;
    }
    wx_http_send(req, 200, CONTENT_TYPE, o->buf, o->len);
}

wx_metrics_t *wx_metrics_start(wx_http_t *http)
{
    assert(http != NULL);
    struct wx_metrics *m = wx_calloc(1, sizeof *m);
    wx_http_route(http, "/metrics", false, on_metrics, m);
    return m;
}

void wx_metrics_add(wx_metrics_t *m, wx_metrics_collect fn, void *arg)
{
    assert(fn != NULL);
    assert(m->ncollectors < WX_METRICS_COLLECTORS_MAX);
    m->collectors[m->ncollectors++] = (struct collector){.fn = fn, .arg = arg};
}

void wx_metrics_free(wx_metrics_t *m)
{
    if (m == NULL) return;
    free(m->out.buf);
    free(m->out.families);
    free(m->out.names);
    free(m);
}
