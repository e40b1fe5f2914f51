/*
 * codec.h - private to the engine: the pieces of the row codec that deciding needs.
 * (wx_row_encode and wx_row_decode, in engine.h, are the public face of codec.c.)
 */
#ifndef WX_CORE_CODEC_H
#define WX_CORE_CODEC_H

#include "core/engine.h"

/*
 * Encodes version, kind, time, key and the command's body into out. Returns the bytes
 * written, or 0 when the command does not fit, has an unknown kind or has a string with no
 * NUL within its limit. *body_off and *body_len locate the body, over which the command's
 * fingerprint is taken.
 */
size_t wx_cmd_encode_head(const struct wx_cmd *cmd, uint8_t *out, size_t cap, size_t *body_off,
                          size_t *body_len);

/* Appends a decision. Returns bytes written, or 0 when it does not fit. */
size_t wx_result_encode(const struct wx_result *res, uint8_t *out, size_t cap);

#endif
