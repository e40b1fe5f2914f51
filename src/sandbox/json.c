/*
 * json.c - JSON on the sandbox's hot path: the bank's template sends and SMS, which come by
 * the thousand each second when its alerts drain a backlog.
 *
 * jansson builds a tree of allocated objects for every body, and again for every answer and
 * chat line, only to walk it once: a third of the sandbox's time per send went there. So a
 * body that is plain JSON (objects and strings, the short escapes, no repeated key, at most
 * SB_DOC_NODES values, objects at most SB_DOC_DEPTH deep) is read here in one pass into a
 * table of nodes whose strings are copied into the caller's scratch buffer. Anything else
 * (numbers, arrays, literals, \u escapes, a repeated key, invalid input) goes to json_loadb
 * with the caller's flags, and its tree is seen through the same table: the handlers have one
 * code path, and jansson keeps the last word on what is valid. What the fast reader accepts,
 * jansson accepts too, with the same members in the same order.
 *
 * The writer escapes strings as json_dumps(JSON_COMPACT) does, so the page and the bank get
 * the same bytes as when jansson wrote them.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* ---- the node table -------------------------------------------------------------------------- */

/* A new node of kind under the given key, or -1 when the fixed table is full and may not
 * grow (the fast reader then leaves the body to jansson). */
static int64_t node_add(struct sb_doc *d, enum sb_jkind kind, const char *key, bool may_grow)
{
    if (d->n == d->cap) {
        if (!may_grow) return -1;
        uint32_t cap = d->cap * 2;
        struct sb_jnode *nodes =
            wx_reallocarray(d->nodes == d->fixed ? NULL : d->nodes, cap, sizeof *nodes);
        if (d->nodes == d->fixed) memcpy(nodes, d->fixed, sizeof d->fixed);
        d->nodes = nodes;
        d->cap = cap;
    }
    struct sb_jnode *n = &d->nodes[d->n];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->key = key;
    return d->n++;
}

/* Links member m as the last member of object obj (last: its current last member, or 0). */
static void member_link(struct sb_doc *d, uint32_t obj, uint32_t *last, uint32_t m)
{
    if (*last == 0) {
        d->nodes[obj].first = m;
    } else {
        d->nodes[*last].next = m;
    }
    *last = m;
    d->nodes[obj].count++;
}

const struct sb_jnode *sb_doc_get(const struct sb_doc *d, const struct sb_jnode *obj,
                                  const char *key)
{
    if (obj == NULL || obj->kind != SB_J_OBJECT) return NULL;
    for (uint32_t i = obj->first; i != 0; i = d->nodes[i].next) {
        if (strcmp(d->nodes[i].key, key) == 0) return &d->nodes[i];
    }
    return NULL;
}

const struct sb_jnode *sb_doc_first(const struct sb_doc *d, const struct sb_jnode *obj)
{
    return obj->kind == SB_J_OBJECT && obj->first != 0 ? &d->nodes[obj->first] : NULL;
}

const struct sb_jnode *sb_doc_next(const struct sb_doc *d, const struct sb_jnode *member)
{
    return member->next != 0 ? &d->nodes[member->next] : NULL;
}

const char *sb_doc_str(const struct sb_doc *d, const struct sb_jnode *obj, const char *key)
{
    const struct sb_jnode *v = sb_doc_get(d, obj, key);
    return v != NULL && v->kind == SB_J_STRING ? v->str : NULL;
}

void sb_doc_free(struct sb_doc *d)
{
    if (d->nodes != d->fixed) free(d->nodes);
    json_decref(d->tree);
    d->nodes = d->fixed;
    d->tree = NULL;
    d->n = 0;
}

/* ---- the fast reader ------------------------------------------------------------------------- */

struct reader {
    struct sb_doc *d;
    const uint8_t *p, *end; /* what is left of the body */
    char *out;              /* where the next string is copied (the scratch buffer) */
};

static void skip_space(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) {
        r->p++;
    }
}

/* The escape after a backslash, decoded; 0 for \u and anything jansson should judge. */
static char short_escape(uint8_t c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '/':
        return '/';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return 0;
    }
}

/*
 * Reads the string whose opening quote is at r->p into r->out, NUL-ended. 0, or -1 for what
 * the fast reader leaves to jansson: a control character, \u or a bad escape, bytes that are
 * not UTF-8 (as strictly as jansson checks them), or no closing quote.
 */
static int read_string(struct reader *r, const char **s, size_t *len)
{
    char *o = r->out;
    r->p++;
    while (r->p < r->end) {
        uint8_t c = *r->p;
        if (c == '"') {
            r->p++;
            *o = '\0';
            *s = r->out;
            *len = (size_t)(o - r->out);
            r->out = o + 1;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c == '\\') {
            char e = r->end - r->p >= 2 ? short_escape(r->p[1]) : 0;
            if (e == 0) return -1;
            *o++ = e;
            r->p += 2;
        } else if (c < 0x80) {
            *o++ = (char)c;
            r->p++;
        } else {
            size_t n = sb_utf8_seq(r->p, (size_t)(r->end - r->p));
            if (n == 0) return -1;
            memcpy(o, r->p, n);
            o += n;
            r->p += n;
        }
    }
    return -1;
}

static int read_object(struct reader *r, uint32_t obj, unsigned depth);

/* Reads the value at r->p as the member key of obj. 0, or -1 (left to jansson). */
static int read_member_value(struct reader *r, uint32_t obj, uint32_t *last, const char *key,
                             unsigned depth)
{
    skip_space(r);
    if (r->p == r->end || (*r->p != '"' && *r->p != '{')) return -1;
    bool is_object = *r->p == '{';
    int64_t m = node_add(r->d, is_object ? SB_J_OBJECT : SB_J_STRING, key, false);
    if (m < 0) return -1;
    member_link(r->d, obj, last, (uint32_t)m);
    if (is_object) return read_object(r, (uint32_t)m, depth + 1);
    struct sb_jnode *n = &r->d->nodes[m];
    return read_string(r, &n->str, &n->len);
}

/* True when obj has a member named key already (jansson would keep only the last). */
static bool has_member(const struct sb_doc *d, uint32_t obj, const char *key)
{
    for (uint32_t i = d->nodes[obj].first; i != 0; i = d->nodes[i].next) {
        if (strcmp(d->nodes[i].key, key) == 0) return true;
    }
    return false;
}

/* Reads the object whose '{' is at r->p into node obj. 0, or -1 (left to jansson). */
static int read_object(struct reader *r, uint32_t obj, unsigned depth)
{
    if (depth >= SB_DOC_DEPTH) return -1;
    uint32_t last = 0;
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return 0;
    }
    for (;;) {
        const char *key;
        size_t len;
        if (r->p == r->end || *r->p != '"' || read_string(r, &key, &len) != 0) return -1;
        if (has_member(r->d, obj, key)) return -1; /* keys hold no NUL: \u is jansson's */
        skip_space(r);
        if (r->p == r->end || *r->p != ':') return -1;
        r->p++;
        if (read_member_value(r, obj, &last, key, depth) != 0) return -1;
        skip_space(r);
        if (r->p == r->end) return -1;
        if (*r->p == '}') {
            r->p++;
            return 0;
        }
        if (*r->p != ',') return -1;
        r->p++;
        skip_space(r);
    }
}

/* The whole body as one object and nothing after it but white space. 0, or -1. */
static int read_plain(struct sb_doc *d, char *scratch, const uint8_t *body, size_t len)
{
    struct reader r = {.d = d, .p = body, .end = body + len, .out = scratch};
    skip_space(&r);
    if (r.p == r.end || *r.p != '{') return -1;
    int64_t root = node_add(d, SB_J_OBJECT, "", false);
    assert(root == 0);
    if (read_object(&r, (uint32_t)root, 0) != 0) return -1;
    skip_space(&r);
    return r.p == r.end ? 0 : -1;
}

/* ---- jansson's tree through the same table --------------------------------------------------- */

/* Adds v, the member key of its parent, at the given depth; returns its index. */
static uint32_t from_tree(struct sb_doc *d, const json_t *v, const char *key, unsigned depth)
{
    enum sb_jkind kind = json_is_object(v)   ? SB_J_OBJECT
                         : json_is_string(v) ? SB_J_STRING
                                             : SB_J_OTHER;
    uint32_t i = (uint32_t)node_add(d, kind, key, true);
    if (kind == SB_J_STRING) {
        d->nodes[i].str = json_string_value(v);
        d->nodes[i].len = json_string_length(v);
    } else if (kind == SB_J_OBJECT && depth >= SB_DOC_DEPTH) {
        d->nodes[i].count = (uint32_t)json_object_size(v); /* members not kept, as documented */
    } else if (kind == SB_J_OBJECT) {
        uint32_t last = 0;
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            uint32_t c = from_tree(d, m, k, depth + 1);
            member_link(d, i, &last, c);
        }
    }
    return i;
}

int sb_doc_load(struct sb_doc *d, char *scratch, size_t scratch_cap, const void *body, size_t len,
                size_t flags)
{
    d->nodes = d->fixed;
    d->cap = SB_DOC_NODES;
    d->n = 0;
    d->tree = NULL;
    /* Every string's bytes and its NUL fit in its source, quotes included. */
    if (len < scratch_cap && read_plain(d, scratch, body, len) == 0) return 0;
    d->n = 0;
    json_error_t jerr;
    d->tree = json_loadb(body, len, flags, &jerr);
    if (!json_is_object(d->tree)) {
        sb_doc_free(d);
        return -1;
    }
    from_tree(d, d->tree, "", 0);
    return 0;
}

/* ---- the writer ------------------------------------------------------------------------------ */

/* Room for n more bytes. */
static char *out_room(struct sb_out *o, size_t n)
{
    if (o->cap - o->len < n) {
        size_t cap = o->cap != 0 ? o->cap : 1024;
        while (cap - o->len < n)
            cap *= 2;
        o->p = wx_realloc(o->p, cap);
        o->cap = cap;
    }
    return o->p + o->len;
}

void sb_out_raw(struct sb_out *o, const char *s, size_t n)
{
    memcpy(out_room(o, n), s, n);
    o->len += n;
}

void sb_out_str(struct sb_out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *w = out_room(o, 2 + 6 * n), *start = w;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        char e = c == '"' || c == '\\' ? (char)c
                 : c == '\b'           ? 'b'
                 : c == '\f'           ? 'f'
                 : c == '\n'           ? 'n'
                 : c == '\r'           ? 'r'
                 : c == '\t'           ? 't'
                                       : 0;
        if (e != 0) {
            *w++ = '\\';
            *w++ = e;
        } else if (c < 0x20) {
            memcpy(w, "\\u00", 4);
            w[4] = hex[c >> 4];
            w[5] = hex[c & 15];
            w += 6;
        } else {
            *w++ = (char)c;
        }
    }
    *w++ = '"';
    o->len += (size_t)(w - start);
}

void sb_out_int(struct sb_out *o, int64_t v)
{
    char digits[24], *p = digits + sizeof digits;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) *--p = '-';
    sb_out_raw(o, p, (size_t)(digits + sizeof digits - p));
}

const char *sb_out_cstr(struct sb_out *o)
{
    *out_room(o, 1) = '\0';
    return o->p;
}

void sb_out_free(struct sb_out *o)
{
    free(o->p);
    memset(o, 0, sizeof *o);
}
