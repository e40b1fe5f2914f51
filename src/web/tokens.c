/*
 * tokens.c - tokens good once and for a while: one-time links, CAPTCHA challenges.
 *
 * A token is 32 bytes from the OS's RNG, given out as 64 lower-case hex characters: safe
 * as they are in a URL, a cookie and the OAuth state WeChat passes back ([a-zA-Z0-9] only). The
 * table keeps only SHA-256 of it (a dump of this memory opens nothing), found through a hash table
 * by the digest's first bytes: the digest of a secret needs no keyed hash to be spread evenly, and
 * looking it up leaks nothing a guesser can use. Tokens are kept in order of issue, so the
 * oldest go first when the table is full and a sweep stops at the first still alive.
 */
#include "web/web_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"

#define TOKEN_BYTES 32

struct token {
    uint8_t digest[32];        /* SHA-256 of the token's bytes */
    struct token *next_bucket; /* in its hash bucket */
    struct web_age age;        /* by issue */
    int64_t expires_ms;
    size_t len;
    uint8_t payload[WX_TOKEN_PAYLOAD_MAX];
};

struct wx_tokens {
    size_t max, count;
    struct token **buckets; /* a power of two, at least 2 * max */
    size_t nbuckets;
    struct web_ages ages;
};

static void encode(const uint8_t in[TOKEN_BYTES], char out[WX_TOKEN_TEXT_LEN + 1])
{
    size_t n = wx_hex_encode(in, TOKEN_BYTES, out, WX_TOKEN_TEXT_LEN + 1);
    assert(n == WX_TOKEN_TEXT_LEN);
    (void)n;
}

/* The token's bytes from its text; false for anything that is not one. Only lower-case hex
 * is a token: one text per token, so no two spellings can name it. */
static bool decode(const char *text, uint8_t out[TOKEN_BYTES])
{
    if (strnlen(text, WX_TOKEN_TEXT_LEN + 1) != WX_TOKEN_TEXT_LEN) return false;
    if (strspn(text, "0123456789abcdef") != WX_TOKEN_TEXT_LEN) return false;
    size_t n = 0;
    return wx_hex_decode(text, WX_TOKEN_TEXT_LEN, out, TOKEN_BYTES, &n) == 0 && n == TOKEN_BYTES;
}

void web_id_new(uint8_t digest[32], char text[WX_TOKEN_TEXT_LEN + 1])
{
    uint8_t bytes[TOKEN_BYTES];
    wx_random_bytes(bytes, sizeof bytes);
    wx_sha256(bytes, sizeof bytes, digest);
    encode(bytes, text);
    wx_wipe(bytes, sizeof bytes);
}

bool web_id_digest(const char *text, uint8_t digest[32])
{
    uint8_t bytes[TOKEN_BYTES];
    bool ok = decode(text, bytes);
    if (ok) wx_sha256(bytes, sizeof bytes, digest);
    wx_wipe(bytes, sizeof bytes);
    return ok;
}

static struct token *oldest(const wx_tokens_t *t)
{
    return WEB_ENTRY_OF(t->ages.oldest, struct token, age);
}

static size_t bucket_of(const wx_tokens_t *t, const uint8_t digest[32])
{
    uint64_t h;
    memcpy(&h, digest, sizeof h);
    return (size_t)h & (t->nbuckets - 1);
}

wx_tokens_t *wx_tokens_new(size_t max)
{
    assert(max > 0);
    struct wx_tokens *t = wx_calloc(1, sizeof *t);
    t->max = max;
    t->nbuckets = web_buckets_for(max);
    t->buckets = wx_calloc(t->nbuckets, sizeof *t->buckets);
    return t;
}

static void drop(wx_tokens_t *t, struct token *k)
{
    struct token **p = &t->buckets[bucket_of(t, k->digest)];
    while (*p != k)
        p = &(*p)->next_bucket;
    *p = k->next_bucket;
    web_age_remove(&t->ages, &k->age);
    t->count--;
    wx_wipe(k, sizeof *k);
    free(k);
}

void wx_tokens_free(wx_tokens_t *t)
{
    if (t == NULL) return;
    while (oldest(t) != NULL)
        drop(t, oldest(t));
    free(t->buckets);
    free(t);
}

void wx_tokens_issue(wx_tokens_t *t, const void *payload, size_t len, int64_t now_ms,
                     int64_t life_ms, char out[WX_TOKEN_TEXT_LEN + 1])
{
    assert(len <= WX_TOKEN_PAYLOAD_MAX);
    if (t->count == t->max) drop(t, oldest(t));
    struct token *k = wx_calloc(1, sizeof *k);
    web_id_new(k->digest, out);
    k->expires_ms = now_ms + life_ms;
    k->len = len;
    memcpy(k->payload, payload, len);
    struct token **head = &t->buckets[bucket_of(t, k->digest)];
    k->next_bucket = *head;
    *head = k;
    web_age_add_newest(&t->ages, &k->age);
    t->count++;
}

int wx_tokens_take(wx_tokens_t *t, const char *text, int64_t now_ms, void *out, size_t cap,
                   size_t *len)
{
    uint8_t digest[32];
    *len = 0;
    if (!web_id_digest(text, digest)) return 0;
    struct token *k = t->buckets[bucket_of(t, digest)];
    while (k != NULL && memcmp(k->digest, digest, sizeof digest) != 0)
        k = k->next_bucket;
    if (k == NULL) return 0;
    int alive = now_ms < k->expires_ms;
    if (alive) {
        *len = k->len < cap ? k->len : cap;
        memcpy(out, k->payload, *len);
    }
    drop(t, k);
    return alive;
}

size_t wx_tokens_count(const wx_tokens_t *t)
{
    return t->count;
}

void wx_tokens_sweep(wx_tokens_t *t, int64_t now_ms)
{
    /* Issued in order with lives that differ: a long life may shield a short one behind it,
     * which the next sweep or its take then drops. */
    while (oldest(t) != NULL && oldest(t)->expires_ms <= now_ms)
        drop(t, oldest(t));
}
