/*
 * web_int.h - what the secure back end's files share. Private to src/web.
 *
 *   tokens.c   one-time tokens; the text form of every random id (web_id_*)
 *   session.c  sessions and their CSRF tokens
 *   form.c     posted forms; what counts as text (web_is_text)
 *   table.c    what the bounded tables of tokens, sessions and guards share
 */
#ifndef WX_WEB_WEB_INT_H
#define WX_WEB_WEB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "web/web.h"

#define WEB_ID_BYTES 32 /* every token and session id: 256 random bits */

/* A fresh random id: its bytes' SHA-256 (what tables keep) and its hex text. */
void web_id_new(uint8_t digest[32], char text[WX_TOKEN_TEXT_LEN + 1]);

/* The SHA-256 of the id text names; false for text that is not exactly an id's encoding. */
bool web_id_digest(const char *text, uint8_t digest[32]);

/* Valid UTF-8 (no overlong form, surrogate or code point past U+10FFFF) without a control
 * character or NUL; *chars (when not NULL) the characters in it. */
bool web_is_text(const char *s, size_t len, size_t *chars);

/* ---- bounded tables (table.c) ------------------------------------------------------------ */

/* A link in a list by age (of issue or of last use), kept in each entry of a table so the
 * oldest can go when the table is full or its life has ended. */
struct web_age {
    struct web_age *older, *newer;
};

struct web_ages {
    struct web_age *oldest, *newest;
};

void web_age_remove(struct web_ages *l, struct web_age *a);
void web_age_add_newest(struct web_ages *l, struct web_age *a);

/* The entry of type holding the link a (NULL for NULL). */
#define WEB_ENTRY_OF(a, type, member)                                                              \
    ((a) != NULL ? (type *)(void *)((char *)(a)-offsetof(type, member)) : (type *)NULL)

/* Hash buckets for a table of at most max entries: a power of two, at least twice max. */
size_t web_buckets_for(size_t max);

#endif
