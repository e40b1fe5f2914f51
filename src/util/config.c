/*
 * config.c - loads a configuration: defaults, then the file, then the environment, then the
 * cross-key checks; and the getters the rest of wxbank reads it with.
 *
 * The file is read whole (bounded by WX_CONFIG_FILE_MAX) and parsed line by line (each
 * bounded by WX_CONFIG_LINE_MAX) with a cursor over the buffer; every error names where the
 * value came from: "file:line" or the environment variable. The buffer and any copies of
 * values are wiped after use, since they may hold secrets.
 */
#include "util/config.h"

#include "util/alloc.h"
#include "util/config_int.h"
#include "util/crypto.h"
#include "util/limits.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct wx_config {
    struct cfg_value *v; /* wx_cfg_key_count values, in schema order */
};

/* Where a value came from, for error messages. */
struct origin {
    const char *file; /* config file name, or NULL */
    int line;         /* line in file */
    const char *env;  /* environment variable name, or NULL */
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A printable, bounded copy of untrusted text for an error message (cap > 4). */
static void shown(const char *text, size_t len, char *out, size_t cap)
{
    assert(cap > 4);
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        unsigned char ch = (unsigned char)text[i];
        out[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (n + 1 == cap && len > n) memcpy(out + cap - 4, "...", 3);
    out[n] = '\0';
}

/* "config: wxbank.conf:12: " or "config: WXBANK_X: " or "config: ". */
static void origin_prefix(const struct origin *o, char *out, size_t cap)
{
    if (o->file != NULL) {
        snprintf(out, cap, "config: %.300s:%d: ", o->file, o->line);
    } else if (o->env != NULL) {
        snprintf(out, cap, "config: %s: ", o->env);
    } else {
        snprintf(out, cap, "config: ");
    }
}

/*
 * Parses text as key idx and, if valid, replaces the current value. On error writes
 * "config: ORIGIN: key = value: why" (a literal secret shown as "(secret)") and returns -1.
 */
static int config_assign(wx_config_t *c, size_t idx, const char *text, const struct origin *o,
                         char *err, size_t errlen)
{
    struct cfg_value nv;
    char why[512];
    if (wx_cfg_value_parse(idx, text, &nv, why, sizeof why) != 0) {
        char prefix[400], value[72];
        origin_prefix(o, prefix, sizeof prefix);
        if (wx_cfg_value_is_secret(idx, text)) {
            snprintf(value, sizeof value, "(secret)");
        } else {
            shown(text, strlen(text), value, sizeof value);
        }
        errf(err, errlen, "%s%s = %s: %s", prefix, wx_cfg_schema[idx].name, value, why);
        return -1;
    }
    nv.line = o->file != NULL ? o->line : 0;
    wx_cfg_value_clear(&c->v[idx]);
    c->v[idx] = nv;
    return 0;
}

static wx_config_t *config_new_defaults(void)
{
    wx_config_t *c = wx_malloc(sizeof *c);
    c->v = wx_calloc(wx_cfg_key_count, sizeof c->v[0]);
    struct origin o = {0};
    for (size_t i = 0; i < wx_cfg_key_count; i++) {
        char err[256];
        int rc = config_assign(c, i, wx_cfg_schema[i].def, &o, err, sizeof err);
        assert(rc == 0 && "a schema default fails its own rule");
        (void)rc;
    }
    return c;
}

void wx_config_free(wx_config_t *cfg)
{
    if (cfg == NULL) return;
    for (size_t i = 0; i < wx_cfg_key_count; i++) {
        wx_cfg_value_clear(&cfg->v[i]);
    }
    free(cfg->v);
    free(cfg);
}

static int cross_check(const wx_config_t *c, char *err, size_t errlen)
{
    int64_t ref_days = wx_config_int(c, "engine.reference_days");
    int64_t long_days = wx_config_int(c, "engine.hold_days_long");
    /* A capture may arrive until the longest hold expires; its reference must still exist. */
    if (ref_days * 24 <= long_days * 24) {
        errf(err, errlen,
             "config: engine.reference_days = %lld must exceed engine.hold_days_long = %lld",
             (long long)ref_days, (long long)long_days);
        return -1;
    }
    return 0;
}

/* ---- the file --------------------------------------------------------------------------- */

/* A bounded view of the current line, trimmed in place by moving its ends. */
struct span {
    const char *p; /* first byte */
    size_t len;    /* bytes */
};

static struct span trim(struct span s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

/* Section names: lower-case letters, digits, '_'. */
static bool valid_section(struct span s)
{
    if (s.len == 0 || s.len >= WX_CONFIG_KEY_MAX) return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

/* Line parser state across lines. */
struct file_state {
    wx_config_t *cfg;                   /* being filled */
    const char *name;                   /* file name for messages */
    int line;                           /* current line number, from 1 */
    char section[WX_CONFIG_KEY_MAX];    /* current [section], "" before the first */
    char value[WX_CONFIG_LINE_MAX + 1]; /* NUL-terminated copy of the current value */
};

static int line_error(const struct file_state *st, char *err, size_t errlen, const char *why,
                      struct span what)
{
    char text[72];
    shown(what.p, what.len, text, sizeof text);
    errf(err, errlen, "config: %.300s:%d: %s%s%s", st->name, st->line, why,
         what.len > 0 ? ": " : "", text);
    return -1;
}

/* Removes the double quotes around a value; a quote elsewhere is an error. */
static int unquote(struct span *v)
{
    bool quoted = v->len > 0 && v->p[0] == '"';
    if (quoted) {
        if (v->len < 2 || v->p[v->len - 1] != '"') return -1;
        v->p++;
        v->len -= 2;
    }
    return memchr(v->p, '"', v->len) != NULL && quoted ? -1 : 0;
}

static int parse_assignment(struct file_state *st, struct span line, char *err, size_t errlen)
{
    const char *eq = memchr(line.p, '=', line.len);
    struct span none = {line.p, 0}; /* the line may hold a mistyped secret: do not echo it */
    if (eq == NULL) return line_error(st, err, errlen, "expected key = value", none);
    struct span key = trim((struct span){line.p, (size_t)(eq - line.p)});
    struct span val = trim((struct span){eq + 1, line.len - (size_t)(eq - line.p) - 1});
    if (key.len == 0) return line_error(st, err, errlen, "missing key before '='", none);
    if (unquote(&val) != 0) return line_error(st, err, errlen, "unbalanced double quote", key);

    char full[WX_CONFIG_KEY_MAX];
    int n = snprintf(full, sizeof full, "%s%s%.*s", st->section, st->section[0] ? "." : "",
                     (int)key.len, key.p);
    int idx = (n > 0 && (size_t)n < sizeof full) ? wx_cfg_key_index(full) : -1;
    if (idx < 0) {
        char name[72];
        shown(full, strnlen(full, sizeof full), name, sizeof name);
        errf(err, errlen, "config: %.300s:%d: unknown key %s (see `wxbank help config`)", st->name,
             st->line, name);
        return -1;
    }
    struct cfg_value *cur = &st->cfg->v[idx];
    if (cur->line != 0) {
        char why[96];
        snprintf(why, sizeof why, "key set twice (first on line %d)", cur->line);
        return line_error(st, err, errlen, why, (struct span){full, strlen(full)});
    }
    assert(val.len <= WX_CONFIG_LINE_MAX);
    memcpy(st->value, val.p, val.len);
    st->value[val.len] = '\0';
    struct origin o = {.file = st->name, .line = st->line};
    int rc = config_assign(st->cfg, (size_t)idx, st->value, &o, err, errlen);
    wx_wipe(st->value, val.len);
    return rc;
}

static int parse_line(struct file_state *st, struct span line, char *err, size_t errlen)
{
    line = trim(line);
    if (line.len == 0 || line.p[0] == '#' || line.p[0] == ';') return 0;
    if (line.p[0] != '[') return parse_assignment(st, line, err, errlen);

    if (line.p[line.len - 1] != ']') return line_error(st, err, errlen, "expected [section]", line);
    struct span name = trim((struct span){line.p + 1, line.len - 2});
    if (!valid_section(name)) {
        return line_error(st, err, errlen, "bad section name (a-z, 0-9, _)", line);
    }
    memcpy(st->section, name.p, name.len);
    st->section[name.len] = '\0';
    return 0;
}

/* Parses every line of buf into cfg. Returns 0, or -1 with a message in err. */
static int parse_buffer(wx_config_t *cfg, const char *buf, size_t len, const char *name, char *err,
                        size_t errlen)
{
    struct file_state *st = wx_calloc(1, sizeof *st);
    st->cfg = cfg;
    st->name = name;
    int rc = 0;
    size_t pos = 0;
    while (rc == 0 && pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - buf) : len;
        struct span line = {buf + pos, end - pos};
        st->line++;
        if (line.len > 0 && line.p[line.len - 1] == '\r') line.len--;
        if (line.len > WX_CONFIG_LINE_MAX) {
            errf(err, errlen, "config: %.300s:%d: line longer than WX_CONFIG_LINE_MAX (%d bytes)",
                 name, st->line, WX_CONFIG_LINE_MAX);
            rc = -1;
        } else if (memchr(line.p, '\0', line.len) != NULL) {
            errf(err, errlen, "config: %.300s:%d: NUL byte in line", name, st->line);
            rc = -1;
        } else {
            rc = parse_line(st, line, err, errlen);
        }
        pos = end + 1;
    }
    wx_wipe(st, sizeof *st);
    free(st);
    return rc;
}

/* ---- the environment --------------------------------------------------------------------- */

/* "engine.hold_days" -> "WXBANK_ENGINE_HOLD_DAYS". */
static void env_name(const char *key, char *out, size_t cap)
{
    int n = snprintf(out, cap, "WXBANK_%s", key);
    assert(n > 0 && (size_t)n < cap);
    for (char *p = out; *p != '\0'; p++) {
        *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    }
}

static int apply_env(wx_config_t *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < wx_cfg_key_count; i++) {
        char name[WX_CONFIG_KEY_MAX + 8];
        env_name(wx_cfg_schema[i].name, name, sizeof name);
        const char *value = getenv(name);
        if (value == NULL) continue;
        struct origin o = {.env = name};
        if (config_assign(cfg, i, value, &o, err, errlen) != 0) return -1;
    }
    return 0;
}

/* ---- loading ----------------------------------------------------------------------------- */

wx_config_t *wx_config_load_buffer(const char *buf, size_t len, const char *name, char *err,
                                   size_t errlen)
{
    assert(buf != NULL || len == 0);
    if (name == NULL) name = "(buffer)";
    if (len > WX_CONFIG_FILE_MAX) {
        errf(err, errlen, "config: %.300s: larger than WX_CONFIG_FILE_MAX (%u bytes)", name,
             WX_CONFIG_FILE_MAX);
        return NULL;
    }
    wx_config_t *cfg = config_new_defaults();
    if (parse_buffer(cfg, buf, len, name, err, errlen) != 0 || apply_env(cfg, err, errlen) != 0 ||
        cross_check(cfg, err, errlen) != 0) {
        wx_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Reads a whole file of at most WX_CONFIG_FILE_MAX bytes into a new buffer. */
static char *read_config_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        errf(err, errlen, "config: %.300s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = (size_t)WX_CONFIG_FILE_MAX + 1; /* one byte more to notice an excess */
    char *buf = wx_malloc(cap);
    size_t n = fread(buf, 1, cap, f);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    if (read_errno != 0 || n > WX_CONFIG_FILE_MAX) {
        if (read_errno != 0) {
            errf(err, errlen, "config: %.300s: cannot read: %s", path, strerror(read_errno));
        } else {
            errf(err, errlen, "config: %.300s: larger than WX_CONFIG_FILE_MAX (%u bytes)", path,
                 WX_CONFIG_FILE_MAX);
        }
        wx_wipe(buf, n);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

wx_config_t *wx_config_load(const char *path, char *err, size_t errlen)
{
    if (path == NULL) return wx_config_load_buffer(NULL, 0, NULL, err, errlen);
    size_t len = 0;
    char *buf = read_config_file(path, &len, err, errlen);
    if (buf == NULL) return NULL;
    wx_config_t *cfg = wx_config_load_buffer(buf, len, path, err, errlen);
    wx_wipe(buf, len);
    free(buf);
    return cfg;
}

/* ---- reading and setting ----------------------------------------------------------------- */

static size_t known_key(const char *key)
{
    assert(key != NULL);
    int idx = wx_cfg_key_index(key);
    assert(idx >= 0 && "config key not in the schema");
    return (size_t)idx;
}

const char *wx_config_str(const wx_config_t *cfg, const char *key)
{
    assert(cfg != NULL);
    size_t i = known_key(key);
    return wx_cfg_schema[i].type == CFG_SECRET ? cfg->v[i].secret : cfg->v[i].text;
}

int64_t wx_config_int(const wx_config_t *cfg, const char *key)
{
    assert(cfg != NULL);
    size_t i = known_key(key);
    assert(wx_cfg_schema[i].type == CFG_INT);
    return cfg->v[i].num;
}

bool wx_config_bool(const wx_config_t *cfg, const char *key)
{
    assert(cfg != NULL);
    size_t i = known_key(key);
    assert(wx_cfg_schema[i].type == CFG_BOOL);
    return cfg->v[i].num != 0;
}

int wx_config_set(wx_config_t *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    assert(cfg != NULL && key != NULL && value != NULL);
    int idx = wx_cfg_key_index(key);
    if (idx < 0) {
        char name[72];
        shown(key, strlen(key), name, sizeof name);
        errf(err, errlen, "config: unknown key %s (see `wxbank help config`)", name);
        return -1;
    }
    struct cfg_value old = cfg->v[idx];
    cfg->v[idx] = (struct cfg_value){0}; /* so that assign does not free the old value */
    struct origin o = {0};
    if (config_assign(cfg, (size_t)idx, value, &o, err, errlen) != 0) {
        cfg->v[idx] = old;
        return -1;
    }
    if (cross_check(cfg, err, errlen) != 0) {
        wx_cfg_value_clear(&cfg->v[idx]);
        cfg->v[idx] = old;
        return -1;
    }
    wx_cfg_value_clear(&old);
    return 0;
}

const char *wx_config_sqlite_path(const wx_config_t *cfg)
{
    const char *url = wx_config_str(cfg, "db.url");
    return strncmp(url, "sqlite:", 7) == 0 ? url + 7 : NULL;
}
