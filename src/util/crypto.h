/*
 * crypto.h - the few cryptographic primitives wxbank uses, all on OpenSSL 3's EVP API.
 *
 * Randomness (RAND_bytes), SHA-256, HMAC-SHA256 (one-shot and a precomputed-key context for
 * hot loops such as the PAN look-up index), key derivation by label, AES-256-GCM sealing of
 * small secrets (card numbers at rest), constant-time comparison, wiping, and hex. Keeping
 * them behind one header means the rest of the code never touches OpenSSL directly.
 */
#ifndef WX_CRYPTO_H
#define WX_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WX_SHA256_LEN    32
#define WX_KEY_LEN       32 /* AES-256 and HMAC keys */
#define WX_GCM_IV_LEN    12
#define WX_GCM_TAG_LEN   16
#define WX_SEAL_OVERHEAD (WX_GCM_IV_LEN + WX_GCM_TAG_LEN)

/* Error codes of this module (0 is success). */
enum {
    WX_CRYPTO_ESPACE = -1,    /* output buffer too small, or input too long */
    WX_CRYPTO_EAUTH = -2,     /* sealed data is truncated or its tag does not verify */
    WX_CRYPTO_EFORMAT = -3,   /* text is not the expected hex form */
    WX_CRYPTO_EINTERNAL = -4, /* OpenSSL refused an operation (logged where it happened) */
};

const char *wx_crypto_strerror(int rc);

/* Fills buf with len cryptographically strong random bytes; fatal if the RNG fails. */
void wx_random_bytes(void *buf, size_t len);

void wx_sha256(const void *msg, size_t len, uint8_t out[32]);

/* out = HMAC-SHA256(key, msg). For many messages under one key use wx_hmac_key_t. */
void wx_hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t len,
                    uint8_t out[32]);

/*
 * A keyed HMAC-SHA256 context: the inner and outer SHA-256 states after absorbing the padded
 * key are computed once, so each digest costs two compressions for a short message. The
 * context is immutable after creation and may be used from several threads at once.
 */
typedef struct wx_hmac_key wx_hmac_key_t;

/* Never returns NULL (fatal on out of memory or an OpenSSL failure). */
wx_hmac_key_t *wx_hmac_key_new(const uint8_t *key, size_t keylen);
/* Wipes and frees; NULL is ignored. */
void wx_hmac_key_free(wx_hmac_key_t *k);
void wx_hmac_key_digest(const wx_hmac_key_t *k, const void *msg, size_t len, uint8_t out[32]);

/* out = HMAC-SHA256(master, label): independent subkeys ("pan-index", "pan-seal", ...). */
void wx_kdf(const uint8_t master[32], const char *label, uint8_t out[32]);

/*
 * AES-256-GCM. wx_seal writes IV(12, random) | ciphertext(len) | tag(16) to out and sets
 * *outlen = len + WX_SEAL_OVERHEAD. Returns 0, or WX_CRYPTO_ESPACE if outcap is too small.
 */
int wx_seal(const uint8_t key[32], const void *plain, size_t len, uint8_t *out, size_t outcap,
            size_t *outlen);

/*
 * Reverses wx_seal. Returns 0 and sets *plainlen, WX_CRYPTO_EAUTH if the input is shorter
 * than WX_SEAL_OVERHEAD or was altered (plain is then zeroed), WX_CRYPTO_ESPACE if cap is too
 * small for inlen - WX_SEAL_OVERHEAD bytes.
 */
int wx_open(const uint8_t key[32], const uint8_t *in, size_t inlen, void *plain, size_t cap,
            size_t *plainlen);

/* Constant-time equality of two len-byte buffers. */
bool wx_ct_equal(const void *a, const void *b, size_t len);

/* Zeroes len bytes in a way the compiler cannot drop. */
void wx_wipe(void *p, size_t len);

/*
 * Lowercase hex of len bytes plus a NUL into out; outcap must be at least 2 * len + 1 (a
 * smaller buffer is a caller bug and asserts). Returns 2 * len.
 */
size_t wx_hex_encode(const uint8_t *in, size_t len, char *out, size_t outcap);

/*
 * Decodes textlen hex characters (either case) into out. Returns 0 and sets *outlen, or
 * WX_CRYPTO_EFORMAT (odd length, non-hex character) or WX_CRYPTO_ESPACE (outcap too small).
 */
int wx_hex_decode(const char *text, size_t textlen, uint8_t *out, size_t outcap, size_t *outlen);

/*
 * Parses a 32-byte key written as exactly 64 hex characters (the form `wxbank init` writes),
 * optionally followed by one newline. Returns 0, or WX_CRYPTO_EFORMAT (out is then zeroed).
 */
int wx_key_parse(const char *text, uint8_t out[32]);

#endif
