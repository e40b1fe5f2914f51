/*
 * sign.c - the platform's request signatures: SHA-1 over the sorted, concatenated parts.
 *
 * WeChat proves a request comes from it by hashing the shared Token with the request's
 * timestamp and nonce (and, in safe mode, the Encrypt text); whoever knows the Token can
 * recompute it. The parts are sorted in byte order (strcmp) as every official sample does,
 * then hashed one after another, so no concatenation buffer is needed whatever their length.
 */
#include "wechat/wechat.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/crypto.h"
#include "util/log.h"

#define SHA1_LEN 20

/* SHA-1 is fetched once, so no per-call provider look-up happens. */
static EVP_MD *sha1_md;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;

static void sha1_fetch(void)
{
    sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
    if (sha1_md == NULL) WX_FATAL("OpenSSL: cannot fetch SHA1");
}

static const EVP_MD *sha1(void)
{
    pthread_once(&sha1_once, sha1_fetch);
    return sha1_md;
}

/*
 * One digest context per thread, kept for the thread's life (a context per call cost an
 * allocation and a free); the pthread key's destructor frees it when a thread ends.
 */
static _Thread_local EVP_MD_CTX *sha1_ctx;
static pthread_key_t sha1_ctx_key;
static pthread_once_t sha1_ctx_once = PTHREAD_ONCE_INIT;

static void sha1_ctx_free(void *p)
{
    EVP_MD_CTX_free(p);
}

static void sha1_ctx_key_init(void)
{
    if (pthread_key_create(&sha1_ctx_key, sha1_ctx_free) != 0) WX_FATAL("pthread_key_create");
}

static EVP_MD_CTX *sha1_ctx_get(void)
{
    if (sha1_ctx == NULL) {
        pthread_once(&sha1_ctx_once, sha1_ctx_key_init);
        sha1_ctx = EVP_MD_CTX_new();
        if (sha1_ctx == NULL) WX_FATAL("out of memory (EVP_MD_CTX_new)");
        pthread_setspecific(sha1_ctx_key, sha1_ctx);
    }
    return sha1_ctx;
}

/* Sorts the n part pointers in place by strcmp (n is at most 4: insertion sort). */
static void sort_parts(const char *p[], size_t n)
{
    for (size_t i = 1; i < n; i++) {
        const char *x = p[i];
        size_t j = i;
        while (j > 0 && strcmp(p[j - 1], x) > 0) {
            p[j] = p[j - 1];
            j--;
        }
        p[j] = x;
    }
}

void wx_wechat_signature(const char *const parts[], size_t n, char out[WX_WECHAT_SIGNATURE_LEN + 1])
{
    assert(parts != NULL && out != NULL);
    assert(n >= 1 && n <= WX_WECHAT_SIGN_PARTS_MAX);
    const char *sorted[WX_WECHAT_SIGN_PARTS_MAX];
    for (size_t i = 0; i < n; i++) {
        assert(parts[i] != NULL);
        sorted[i] = parts[i];
    }
    sort_parts(sorted, n);

    uint8_t digest[SHA1_LEN];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = sha1_ctx_get();
    /* SHA-1 over in-memory bytes cannot fail on valid arguments: a failure is a library fault. */
    if (EVP_DigestInit_ex(ctx, sha1(), NULL) != 1) WX_FATAL("OpenSSL SHA-1 init failed");
    for (size_t i = 0; i < n; i++) {
        if (EVP_DigestUpdate(ctx, sorted[i], strlen(sorted[i])) != 1) {
            WX_FATAL("OpenSSL SHA-1 update failed");
        }
    }
    if (EVP_DigestFinal_ex(ctx, digest, &dlen) != 1) WX_FATAL("OpenSSL SHA-1 final failed");
    assert(dlen == SHA1_LEN);
    size_t hex = wx_hex_encode(digest, SHA1_LEN, out, WX_WECHAT_SIGNATURE_LEN + 1);
    assert(hex == WX_WECHAT_SIGNATURE_LEN);
}

bool wx_wechat_signature_ok(const char *const parts[], size_t n, const char *signature)
{
    assert(signature != NULL);
    char want[WX_WECHAT_SIGNATURE_LEN + 1];
    /* strnlen bounds the read: a signature longer than 40 characters is wrong whatever it is. */
    if (strnlen(signature, WX_WECHAT_SIGNATURE_LEN + 1) != WX_WECHAT_SIGNATURE_LEN) return false;
    wx_wechat_signature(parts, n, want);
    return CRYPTO_memcmp(want, signature, WX_WECHAT_SIGNATURE_LEN) == 0;
}
