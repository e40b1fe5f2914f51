/*
 * keys.h - the bank's secrets for card numbers and identity documents.
 *
 * One master key (crypto.pan_key, 32 bytes) is the root; every use gets a key of its own,
 * derived by HMAC with a label, so that the card-reference index, the CVV2 check, the
 * ID-document index and the encryption of PANs at rest never share a key. Adapters call
 * these before a command reaches the engine, which therefore never sees a PAN.
 */
#ifndef WX_KEYS_KEYS_H
#define WX_KEYS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

typedef struct wx_keys wx_keys_t;
struct wx_config;

/* Derives the working keys from the master key. The master key is not kept. */
wx_keys_t *wx_keys_new(const uint8_t master[32]);
void wx_keys_free(wx_keys_t *k);

/*
 * Resolves crypto.pan_key: the configured value (64 hex characters, or @file holding them),
 * or by default the file <db_path>.key. With create, a missing default key file is made
 * (random, mode 0600). Returns 0 and the key, or -1 with a message naming the key or file.
 */
int wx_keys_load_master(const struct wx_config *cfg, const char *db_path, int create,
                        uint8_t master[32], char *err, size_t errlen);

/* A short public fingerprint of the master key, kept in the database so that starting with
 * the wrong key is refused instead of silently finding no cards. */
void wx_keys_check_value(const uint8_t master[32], uint8_t out[16]);

/* The card reference: the engine's index key for a PAN (digits only). */
void wx_card_ref(const wx_keys_t *k, const char *pan, uint8_t ref[WX_REF_LEN]);

/* The CVV2 tag stored on the card and presented by authorizations; never 0. */
uint64_t wx_cvv_tag(const wx_keys_t *k, const char *pan, uint16_t expiry, const char *cvv);

/* The ID-document index key: upper-cased, spaces removed, then HMAC. */
void wx_id_hmac(const wx_keys_t *k, const char *id_doc, uint8_t out[WX_REF_LEN]);

/* AES-256-GCM of the PAN, for the copy at rest. Returns 0, or -1 when out is too small. */
int wx_pan_seal(const wx_keys_t *k, const char *pan, uint8_t *out, size_t cap, size_t *len);

/* Decrypts a sealed PAN into pan[WX_PAN_MAX + 1]. Returns 0, or -1 (wrong key, tampered). */
int wx_pan_unseal(const wx_keys_t *k, const uint8_t *in, size_t len, char *pan);

#endif
