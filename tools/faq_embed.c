/*
 * faq_embed.c - compiles the FAQ knowledge base into C (the build links the result into
 * wxbank, so the running program reads no data file).
 *
 *   faq_embed data/faq/faq.tsv build/generated/faq_data.c
 *
 * One entry per line: id<TAB>questions separated by "|"<TAB>answer_zh<TAB>answer_en; lines
 * starting with # and empty lines are skipped. In answers, \n (backslash, n) becomes a line
 * break; nothing else is interpreted ({installment_rates} stays for the caller). A line that
 * is not valid UTF-8, does not have exactly 4 fields, has an empty or ill-formed or repeated
 * id, an empty question, no question or an empty answer stops the build with file:line, and
 * nothing is written. The output is written beside OUT first and renamed over it, so an
 * interrupted run never leaves half a file that make would take as up to date.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX 1024 /* bytes of an answer, in the file */

struct entry {
    char *id;
    char **questions; /* NUL-terminated pieces, trimmed */
    size_t nquestions;
    char *answer[2]; /* zh, en: \n already made a line break */
};

struct kb {
    struct entry *e;
    size_t n, cap;
};

static const char *tsv_path; /* for messages */

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL && n > 0) {
        fprintf(stderr, "faq_embed: out of memory\n");
        exit(1);
    }
    return p;
}

static void die_at(size_t lineno, const char *what)
{
    fprintf(stderr, "%s:%zu: %s\n", tsv_path, lineno, what);
    exit(1);
}

/* Whether s (len bytes) is well-formed UTF-8 without control characters but TAB. */
static bool utf8_ok(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
            i++;
            continue;
        }
        size_t n = c >= 0xC2 && c <= 0xDF   ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
        if (n == 0 || len - i < n) return false;
        unsigned cp = n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        static const unsigned least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n;
    }
    return true;
}

static bool id_ok(const char *id)
{
    if (id[0] == '\0') return false;
    for (const char *p = id; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    }
    return true;
}

static char *trimmed_copy(const char *s, size_t len)
{
    while (len > 0 && *s == ' ') {
        s++;
        len--;
    }
    while (len > 0 && s[len - 1] == ' ')
        len--;
    char *out = xrealloc(NULL, len + 1);
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* The questions of one line, split at '|' and trimmed; an empty one stops the build. */
static void split_questions(struct entry *e, const char *field, size_t lineno)
{
    size_t cap = 0;
    for (const char *p = field;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        char *q = trimmed_copy(p, len);
        if (q[0] == '\0') die_at(lineno, "an empty question (questions are separated by \" | \")");
        if (e->nquestions == cap) {
            cap = cap ? cap * 2 : 8;
            e->questions = xrealloc(e->questions, cap * sizeof *e->questions);
        }
        e->questions[e->nquestions++] = q;
        if (bar == NULL) break;
        p = bar + 1;
    }
    if (e->nquestions < 1) die_at(lineno, "no question");
}

/* An answer with each backslash-n made a line break. */
static char *answer_copy(const char *field)
{
    size_t len = strlen(field);
    char *out = xrealloc(NULL, len + 1), *o = out;
    for (const char *p = field; *p != '\0'; p++) {
        if (p[0] == '\\' && p[1] == 'n') {
            *o++ = '\n';
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static void parse_line(struct kb *kb, char *line, size_t lineno)
{
    if (!utf8_ok((const unsigned char *)line, strlen(line))) {
        die_at(lineno, "not UTF-8 text (or a control character other than TAB)");
    }
    char *field[4];
    size_t nfield = 0;
    for (char *p = line;; nfield++) {
        char *tab = strchr(p, '\t');
        if (nfield < 4) field[nfield] = p;
        if (tab == NULL) break;
        *tab = '\0';
        p = tab + 1;
    }
    nfield++;
    if (nfield != 4) {
        char msg[96];
        snprintf(msg, sizeof msg,
                 "want 4 TAB-separated fields (id, questions, answer_zh, "
                 "answer_en), found %zu",
                 nfield);
        die_at(lineno, msg);
    }
    if (field[0][0] == '\0') die_at(lineno, "an empty id");
    if (!id_ok(field[0])) die_at(lineno, "an id must be lowercase ASCII letters, digits and _");
    for (size_t i = 0; i < kb->n; i++) {
        if (strcmp(kb->e[i].id, field[0]) == 0) die_at(lineno, "a duplicate id");
    }
    if (field[2][0] == '\0' || field[3][0] == '\0') die_at(lineno, "an empty answer");
    /* A reply holds the answer whole or not at all (WX_CHAT_TEXT_MAX with room to spare). */
    if (strlen(field[2]) > ANSWER_MAX || strlen(field[3]) > ANSWER_MAX) {
        die_at(lineno, "an answer longer than 1,024 bytes");
    }
    if (kb->n == kb->cap) {
        kb->cap = kb->cap ? kb->cap * 2 : 64;
        kb->e = xrealloc(kb->e, kb->cap * sizeof *kb->e);
    }
    struct entry *e = &kb->e[kb->n];
    *e = (struct entry){.id = trimmed_copy(field[0], strlen(field[0]))};
    split_questions(e, field[1], lineno);
    e->answer[0] = answer_copy(field[2]);
    e->answer[1] = answer_copy(field[3]);
    kb->n++;
}

static void read_kb(const char *path, struct kb *kb)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "faq_embed: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (strlen(line) != (size_t)len) die_at(lineno, "a NUL byte");
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r') line[--len] = '\0'; /* CRLF */
        if (line[0] == '#' || line[0] == '\0') continue;
        parse_line(kb, line, lineno);
    }
    if (ferror(f)) {
        fprintf(stderr, "faq_embed: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    free(line);
    fclose(f);
    if (kb->n == 0) die_at(lineno, "no entries");
}

/* s as a C string literal; a line break ends one literal and starts the next (indented). */
static void put_literal(FILE *f, const char *s, const char *indent)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p == '?') {
            fputs("\\?", f); /* no trigraphs: -std=c17 would read ??) as ] */
        } else if (*p == '\n') {
            fputs("\\n", f);
            if (p[1] != '\0') fprintf(f, "\"\n%s\"", indent);
        } else if (*p < 0x20 || *p == 0x7F) {
            fprintf(f, "\\%03o", *p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void write_kb(FILE *f, const struct kb *kb)
{
    fprintf(f, "/* Generated by tools/faq_embed.c from data/faq/faq.tsv: do not edit. */\n");
    fprintf(f, "#include \"chat/faq_data.h\"\n\n");
    for (size_t i = 0; i < kb->n; i++) {
        fprintf(f, "static const char *const q%zu[] = {\n", i);
        for (size_t k = 0; k < kb->e[i].nquestions; k++) {
            fputs("    ", f);
            put_literal(f, kb->e[i].questions[k], "    ");
            fputs(",\n", f);
        }
        fprintf(f, "};\n\n");
    }
    fprintf(f, "const struct nlu_faq_entry nlu_faq_entries[] = {\n");
    for (size_t i = 0; i < kb->n; i++) {
        const struct entry *e = &kb->e[i];
        fprintf(f, "    {\n        .id = ");
        put_literal(f, e->id, "");
        fprintf(f, ",\n        .questions = q%zu,\n        .nquestions = %zu,\n", i, e->nquestions);
        fprintf(f, "        .answer_zh = ");
        put_literal(f, e->answer[0], "                     ");
        fprintf(f, ",\n        .answer_en = ");
        put_literal(f, e->answer[1], "                     ");
        fprintf(f, ",\n    },\n");
    }
    fprintf(f, "};\n\nconst size_t nlu_faq_nentries = %zu;\n\n", kb->n);
    fprintf(f, "_Static_assert(sizeof nlu_faq_entries / sizeof nlu_faq_entries[0] <= "
               "NLU_FAQ_ENTRIES_MAX,\n               \"more FAQ entries than "
               "NLU_FAQ_ENTRIES_MAX (src/chat/faq_data.h)\");\n");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: faq_embed FAQ.tsv OUT.c\n");
        return 2;
    }
    tsv_path = argv[1];
    struct kb kb = {0};
    read_kb(argv[1], &kb);

    size_t plen = strlen(argv[2]);
    char *tmp = xrealloc(NULL, plen + 5);
    memcpy(tmp, argv[2], plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "faq_embed: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    write_kb(f, &kb);
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, argv[2]) != 0) {
        fprintf(stderr, "faq_embed: %s: %s\n", argv[2], strerror(errno));
        remove(tmp);
        return 1;
    }
    fprintf(stderr, "faq_embed: %zu entries\n", kb.n);
    free(tmp);
    for (size_t i = 0; i < kb.n; i++) {
        for (size_t k = 0; k < kb.e[i].nquestions; k++)
            free(kb.e[i].questions[k]);
        free(kb.e[i].questions);
        free(kb.e[i].id);
        free(kb.e[i].answer[0]);
        free(kb.e[i].answer[1]);
    }
    free(kb.e);
    return 0;
}
