/*
 * config_int.h - private to config.c and config_schema.c: the schema types and value rules.
 *
 * Split this way so that the schema (what can be configured) reads as one table apart from
 * the loader (where values come from). Nothing outside src/util/config*.c includes this.
 */
#ifndef WX_CONFIG_INT_H
#define WX_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_type {
    CFG_STRING, /* any text, optionally checked by cfg_key.check */
    CFG_INT,    /* decimal int64 in [min, max] */
    CFG_BOOL,   /* true/false/yes/no/on/off/1/0 */
    CFG_LISTEN, /* HOST:PORT, [IPv6]:PORT */
    CFG_SECRET, /* text, or @FILE to read it from; checked after resolving */
    CFG_DB_URL, /* sqlite:PATH or postgres(ql)://... */
    CFG_ENUM,   /* one of cfg_key.choices */
};

/* An extra rule for a value; returns 0, or -1 with the reason in why. */
typedef int (*cfg_check_fn)(const char *value, char *why, size_t whylen);

struct cfg_key {
    const char *name;           /* full key, "section.key" */
    enum cfg_type type;         /* how the text is parsed */
    int64_t min, max;           /* CFG_INT bounds, inclusive */
    const char *const *choices; /* CFG_ENUM: allowed values, NULL-terminated */
    cfg_check_fn check;         /* optional rule for STRING and (resolved) SECRET values */
    const char *def;            /* default, as it would be written in the file */
    const char *desc;           /* one line for `wxbank help config` */
};

struct cfg_value {
    char *text;   /* value as given; for a SECRET the secret itself or "@path" */
    char *secret; /* CFG_SECRET: the resolved secret; NULL otherwise */
    int64_t num;  /* CFG_INT value, CFG_BOOL 0 or 1 */
    int line;     /* config-file line that set it, 0 if it did not come from the file */
};

extern const struct cfg_key wx_cfg_schema[];
extern const size_t wx_cfg_key_count;

/* Index of a key in wx_cfg_schema, or -1 if there is no such key. */
int wx_cfg_key_index(const char *name);

/*
 * Parses and validates text as the value of key idx into *out (which the caller clears with
 * wx_cfg_value_clear). Returns 0, or -1 with the reason in why and *out all empty.
 */
int wx_cfg_value_parse(size_t idx, const char *text, struct cfg_value *out, char *why,
                       size_t whylen);

/* Wipes (secrets) and frees what a value owns, leaving it all zero. */
void wx_cfg_value_clear(struct cfg_value *v);

/* True if the key's value must never appear in a message (a literal secret). */
bool wx_cfg_value_is_secret(size_t idx, const char *text);

#endif
