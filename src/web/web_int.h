/*
 * web_int.h - what the secure back end's files share. Private to src/web.
 *
 *   tokens.c   one-time tokens; the text form of every random id (web_id_*)
 *   session.c  sessions and their CSRF tokens
 *   form.c     posted forms; what counts as text (web_is_text)
 */
#ifndef WX_WEB_WEB_INT_H
#define WX_WEB_WEB_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "web/web.h"

#define WEB_ID_BYTES 32 /* every token and session id: 256 random bits */

/* A fresh random id: its bytes' SHA-256 (what tables keep) and its base64url text. */
void web_id_new(uint8_t digest[32], char text[WX_TOKEN_TEXT_LEN + 1]);

/* The SHA-256 of the id text names; false for text that is not exactly an id's encoding. */
bool web_id_digest(const char *text, uint8_t digest[32]);

/* Valid UTF-8 (no overlong form, surrogate or code point past U+10FFFF) without a control
 * character or NUL; *chars (when not NULL) the characters in it. */
bool web_is_text(const char *s, size_t len, size_t *chars);

#endif
