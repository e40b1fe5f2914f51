/*
 * config.h - wxbank's configuration: an INI-style file, environment overrides, one schema.
 *
 * File syntax: `[section]` headers, `key = value` lines, whole-line comments starting with
 * '#' or ';', blank lines; whitespace around keys and values is trimmed and a value may be
 * wrapped in double quotes (to keep leading/trailing blanks or a '#'). There are no inline
 * comments. The full name of a key is "section.key" ("tz" lives before any section).
 *
 * Every key is declared once, in the schema table in config.c, with its type, range, default
 * and a description (printed by `wxbank help config`). Unknown keys and bad values are errors
 * whose text names the file and line (or the environment variable), the key, and the reason:
 *   config: wxbank.conf:12: engine.hold_days = 0: must be between 1 and 30
 * For every key, the environment variable WXBANK_SECTION_KEY (upper case, '.' -> '_') wins
 * over the file. Secrets may be given as `@/path/to/file`; the file's content (one trailing
 * newline stripped) is the secret. Secrets are wiped when the config is freed and are never
 * echoed in error messages.
 */
#ifndef WX_CONFIG_H
#define WX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct wx_config wx_config_t;

/*
 * Loads defaults, then the file at `path` (NULL: no file), then the environment, and checks
 * the keys against each other. A path that cannot be read is an error. Returns a config the
 * caller frees with wx_config_free, or NULL with a message in err.
 */
wx_config_t *wx_config_load(const char *path, char *err, size_t errlen);

/*
 * As wx_config_load, from len bytes of config text in memory (need not be NUL-terminated);
 * `name` stands for the file in error messages. For tests and fuzzing; wx_config_load reads
 * the file and calls this.
 */
wx_config_t *wx_config_load_buffer(const char *buf, size_t len, const char *name, char *err,
                                   size_t errlen);

/* Wipes secrets and frees; NULL is ignored. */
void wx_config_free(wx_config_t *cfg);

/*
 * The value of a key as text (for SECRET keys: the resolved secret, not "@path"). The key
 * must be in the schema (asserted). The pointer lives until the key is set again or the
 * config is freed.
 */
const char *wx_config_str(const wx_config_t *cfg, const char *key);

/* The value of an INT key (asserted). */
int64_t wx_config_int(const wx_config_t *cfg, const char *key);

/* The value of a BOOL key (asserted). */
bool wx_config_bool(const wx_config_t *cfg, const char *key);

/*
 * Sets a key as if from the file, with the same validation plus the cross-key checks (for
 * command-line flags and tests). Returns 0, or -1 with a message in err and cfg unchanged.
 */
int wx_config_set(wx_config_t *cfg, const char *key, const char *value, char *err, size_t errlen);

/* The PATH of a `sqlite:PATH` db.url, or NULL if the database is PostgreSQL. */
const char *wx_config_sqlite_path(const wx_config_t *cfg);

/* Writes one line per key: name, default, description (with range or choices). */
void wx_config_print_schema(FILE *out);

/*
 * Parses a boolean as the config does: true/yes/on/1 or false/no/off/0 (case-insensitive).
 * Returns 0, or -1 for anything else. For command-line flags.
 */
int wx_config_parse_bool(const char *text, bool *out);

#endif
