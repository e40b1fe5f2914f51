/*
 * crypto.c - EVP-only implementations of the primitives in crypto.h.
 *
 * The keyed HMAC follows RFC 2104 by hand on top of EVP SHA-256 so that the two states after
 * absorbing key^ipad and key^opad can be kept and copied (EVP_MD_CTX_copy_ex) per message;
 * OpenSSL's own HMAC context would rehash the key or duplicate three digest contexts.
 */
#include "util/crypto.h"

#include "util/alloc.h"
#include "util/log.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define SHA256_BLOCK 64

struct wx_hmac_key {
    EVP_MD_CTX *inner; /* SHA-256 state after absorbing key ^ ipad */
    EVP_MD_CTX *outer; /* SHA-256 state after absorbing key ^ opad */
};

/* The SHA-256 implementation is fetched once, so no per-call provider look-up happens. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL) WX_FATAL("OpenSSL: cannot fetch SHA256");
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md;
}

/* Called where an EVP call that cannot fail on valid arguments failed: a library fault. */
static _Noreturn void evp_fatal(const char *what, int line)
{
    char msg[256];
    ERR_error_string_n(ERR_get_error(), msg, sizeof msg);
    wx_fatal_at(__FILE__, line, "OpenSSL %s failed: %s", what, msg);
}

const char *wx_crypto_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case WX_CRYPTO_ESPACE:
        return "buffer too small";
    case WX_CRYPTO_EAUTH:
        return "sealed data is truncated or was altered";
    case WX_CRYPTO_EFORMAT:
        return "not valid hex of the expected length";
    case WX_CRYPTO_EINTERNAL:
        return "OpenSSL failure";
    default:
        return "unknown crypto error";
    }
}

void wx_random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, n) != 1) evp_fatal("RAND_bytes", __LINE__);
        p += n;
        len -= (size_t)n;
    }
}

void wx_sha256(const void *msg, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(msg, len, out, &n, sha256(), NULL) != 1) evp_fatal("EVP_Digest", __LINE__);
    assert(n == WX_SHA256_LEN);
}

/* Starts ctx as SHA-256 and absorbs one block: the (hashed if long) key XOR pad. */
static void hmac_absorb_pad(EVP_MD_CTX *ctx, const uint8_t block[SHA256_BLOCK], uint8_t pad)
{
    uint8_t padded[SHA256_BLOCK];
    for (size_t i = 0; i < SHA256_BLOCK; i++) {
        padded[i] = block[i] ^ pad;
    }
    if (EVP_DigestInit_ex(ctx, sha256(), NULL) != 1) evp_fatal("DigestInit", __LINE__);
    if (EVP_DigestUpdate(ctx, padded, sizeof padded) != 1) evp_fatal("DigestUpdate", __LINE__);
    wx_wipe(padded, sizeof padded);
}

wx_hmac_key_t *wx_hmac_key_new(const uint8_t *key, size_t keylen)
{
    assert(key != NULL || keylen == 0);
    uint8_t block[SHA256_BLOCK] = {0};
    if (keylen > SHA256_BLOCK) {
        wx_sha256(key, keylen, block);
    } else if (keylen > 0) {
        memcpy(block, key, keylen);
    }
    wx_hmac_key_t *k = wx_malloc(sizeof *k);
    k->inner = EVP_MD_CTX_new();
    k->outer = EVP_MD_CTX_new();
    if (k->inner == NULL || k->outer == NULL) WX_FATAL("out of memory (EVP_MD_CTX_new)");
    hmac_absorb_pad(k->inner, block, 0x36);
    hmac_absorb_pad(k->outer, block, 0x5c);
    wx_wipe(block, sizeof block);
    return k;
}

void wx_hmac_key_free(wx_hmac_key_t *k)
{
    if (k == NULL) return;
    EVP_MD_CTX_free(k->inner); /* EVP_MD_CTX_free cleanses the digest state */
    EVP_MD_CTX_free(k->outer);
    free(k);
}

/*
 * Per-thread scratch context, so a digest costs two state copies and no EVP_MD_CTX_new.
 * The pthread key's destructor frees it when a thread ends.
 */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local EVP_MD_CTX *scratch_ctx;

static void scratch_free(void *p)
{
    EVP_MD_CTX_free(p);
}

static void scratch_init(void)
{
    if (pthread_key_create(&scratch_key, scratch_free) != 0) WX_FATAL("pthread_key_create");
}

static EVP_MD_CTX *scratch(void)
{
    if (scratch_ctx == NULL) {
        pthread_once(&scratch_once, scratch_init);
        scratch_ctx = EVP_MD_CTX_new();
        if (scratch_ctx == NULL) WX_FATAL("out of memory (EVP_MD_CTX_new)");
        pthread_setspecific(scratch_key, scratch_ctx);
    }
    return scratch_ctx;
}

void wx_hmac_key_digest(const wx_hmac_key_t *k, const void *msg, size_t len, uint8_t out[32])
{
    assert(k != NULL);
    assert(msg != NULL || len == 0);
    EVP_MD_CTX *c = scratch();
    uint8_t ih[WX_SHA256_LEN];
    unsigned int n = 0;

    if (EVP_MD_CTX_copy_ex(c, k->inner) != 1) evp_fatal("MD_CTX_copy", __LINE__);
    if (EVP_DigestUpdate(c, msg, len) != 1) evp_fatal("DigestUpdate", __LINE__);
    if (EVP_DigestFinal_ex(c, ih, &n) != 1) evp_fatal("DigestFinal", __LINE__);
    if (EVP_MD_CTX_copy_ex(c, k->outer) != 1) evp_fatal("MD_CTX_copy", __LINE__);
    if (EVP_DigestUpdate(c, ih, sizeof ih) != 1) evp_fatal("DigestUpdate", __LINE__);
    if (EVP_DigestFinal_ex(c, out, &n) != 1) evp_fatal("DigestFinal", __LINE__);
    assert(n == WX_SHA256_LEN);
}

void wx_hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t len, uint8_t out[32])
{
    wx_hmac_key_t *k = wx_hmac_key_new(key, keylen);
    wx_hmac_key_digest(k, msg, len, out);
    wx_hmac_key_free(k);
}

void wx_kdf(const uint8_t master[32], const char *label, uint8_t out[32])
{
    assert(master != NULL);
    assert(label != NULL);
    wx_hmac_sha256(master, WX_KEY_LEN, label, strlen(label), out);
}

bool wx_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

void wx_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0) OPENSSL_cleanse(p, len);
}

static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (gcm_cipher == NULL) WX_FATAL("OpenSSL: cannot fetch AES-256-GCM");
}

static const EVP_CIPHER *aes256gcm(void)
{
    pthread_once(&gcm_once, gcm_fetch);
    return gcm_cipher;
}

int wx_seal(const uint8_t key[32], const void *plain, size_t len, uint8_t *out, size_t outcap,
            size_t *outlen)
{
    assert(key != NULL && out != NULL && outlen != NULL);
    assert(plain != NULL || len == 0);
    if (len > INT_MAX - WX_SEAL_OVERHEAD || outcap < len + WX_SEAL_OVERHEAD) {
        return WX_CRYPTO_ESPACE;
    }
    int rc = WX_CRYPTO_EINTERNAL;
    int n = 0, fin = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) WX_FATAL("out of memory (EVP_CIPHER_CTX_new)");

    wx_random_bytes(out, WX_GCM_IV_LEN);
    if (EVP_EncryptInit_ex(ctx, aes256gcm(), NULL, key, out) != 1) goto out;
    if (EVP_EncryptUpdate(ctx, out + WX_GCM_IV_LEN, &n, plain, (int)len) != 1) goto out;
    if (EVP_EncryptFinal_ex(ctx, out + WX_GCM_IV_LEN + n, &fin) != 1) goto out;
    assert((size_t)(n + fin) == len);
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, WX_GCM_TAG_LEN, out + WX_GCM_IV_LEN + len) !=
        1) {
        goto out;
    }
    *outlen = len + WX_SEAL_OVERHEAD;
    rc = 0;
out:
    if (rc != 0) WX_ERROR("AES-256-GCM seal failed: %s", ERR_reason_error_string(ERR_get_error()));
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int wx_open(const uint8_t key[32], const uint8_t *in, size_t inlen, void *plain, size_t cap,
            size_t *plainlen)
{
    assert(key != NULL && in != NULL && plainlen != NULL);
    if (inlen < WX_SEAL_OVERHEAD) return WX_CRYPTO_EAUTH;
    size_t len = inlen - WX_SEAL_OVERHEAD;
    if (len > INT_MAX || cap < len) return WX_CRYPTO_ESPACE;
    assert(plain != NULL || len == 0);

    int rc = WX_CRYPTO_EINTERNAL;
    int n = 0, fin = 0;
    uint8_t tag[WX_GCM_TAG_LEN];
    memcpy(tag, in + WX_GCM_IV_LEN + len, sizeof tag); /* ctrl takes a non-const pointer */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) WX_FATAL("out of memory (EVP_CIPHER_CTX_new)");

    if (EVP_DecryptInit_ex(ctx, aes256gcm(), NULL, key, in) != 1) goto out;
    if (EVP_DecryptUpdate(ctx, plain, &n, in + WX_GCM_IV_LEN, (int)len) != 1) goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WX_GCM_TAG_LEN, tag) != 1) goto out;
    if (EVP_DecryptFinal_ex(ctx, (uint8_t *)plain + n, &fin) != 1) {
        rc = WX_CRYPTO_EAUTH; /* the tag did not verify: altered data or the wrong key */
        ERR_clear_error();
        goto out;
    }
    assert((size_t)(n + fin) == len);
    *plainlen = len;
    rc = 0;
out:
    if (rc != 0) wx_wipe(plain, len);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

size_t wx_hex_encode(const uint8_t *in, size_t len, char *out, size_t outcap)
{
    static const char digits[] = "0123456789abcdef";
    assert(in != NULL || len == 0);
    assert(out != NULL);
    assert(len <= (SIZE_MAX - 1) / 2 && outcap >= 2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
    return 2 * len;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int wx_hex_decode(const char *text, size_t textlen, uint8_t *out, size_t outcap, size_t *outlen)
{
    assert(text != NULL || textlen == 0);
    assert(outlen != NULL);
    if (textlen % 2 != 0) return WX_CRYPTO_EFORMAT;
    if (outcap < textlen / 2) return WX_CRYPTO_ESPACE;
    for (size_t i = 0; i < textlen / 2; i++) {
        int hi = hex_value(text[2 * i]);
        int lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return WX_CRYPTO_EFORMAT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *outlen = textlen / 2;
    return 0;
}

int wx_key_parse(const char *text, uint8_t out[32])
{
    assert(text != NULL);
    assert(out != NULL);
    size_t len = strnlen(text, 2 * WX_KEY_LEN + 2);
    size_t got = 0;
    if (len == 2 * WX_KEY_LEN + 1 && text[len - 1] == '\n') len--;
    if (len != 2 * WX_KEY_LEN || wx_hex_decode(text, len, out, WX_KEY_LEN, &got) != 0) {
        wx_wipe(out, WX_KEY_LEN);
        return WX_CRYPTO_EFORMAT;
    }
    assert(got == WX_KEY_LEN);
    return 0;
}
