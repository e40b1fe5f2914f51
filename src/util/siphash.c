/*
 * siphash.c - SipHash-2-4 after the reference implementation (github.com/veorq/SipHash):
 * little-endian words, two compression rounds per 8-byte block, four finalization rounds;
 * the 128-bit variant XORs 0xee into v1 at the start and v2 before finalization, and 0xdd
 * into v1 before the second half of the output.
 */
#include "util/siphash.h"

#include <assert.h>
#include <string.h>

struct sip_state {
    uint64_t v0, v1, v2, v3;
};

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void sip_round(struct sip_state *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static void sip_compress(struct sip_state *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

/* Initializes the state and absorbs the whole message, including the length-tagged tail. */
static void sip_absorb(struct sip_state *s, const uint8_t key[16], const uint8_t *in, size_t len,
                       int wide)
{
    uint64_t k0 = load_le64(key);
    uint64_t k1 = load_le64(key + 8);
    s->v0 = 0x736f6d6570736575ULL ^ k0;
    s->v1 = 0x646f72616e646f6dULL ^ k1;
    s->v2 = 0x6c7967656e657261ULL ^ k0;
    s->v3 = 0x7465646279746573ULL ^ k1;
    if (wide) s->v1 ^= 0xee;

    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        sip_compress(s, load_le64(in + i));
    }
    uint8_t tail[8] = {0};
    if (len % 8 != 0) memcpy(tail, in + full, len % 8);
    tail[7] = (uint8_t)len; /* the length mod 256 goes into the last byte */
    sip_compress(s, load_le64(tail));
}

static uint64_t sip_finalize(struct sip_state *s, uint8_t xor_v2)
{
    s->v2 ^= xor_v2;
    for (int i = 0; i < 4; i++) {
        sip_round(s);
    }
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

uint64_t wx_siphash64(const uint8_t key[16], const void *msg, size_t len)
{
    assert(key != NULL);
    assert(msg != NULL || len == 0);
    struct sip_state s;
    sip_absorb(&s, key, msg, len, 0);
    return sip_finalize(&s, 0xff);
}

void wx_siphash128(const uint8_t key[16], const void *msg, size_t len, uint8_t out[16])
{
    assert(key != NULL && out != NULL);
    assert(msg != NULL || len == 0);
    struct sip_state s;
    sip_absorb(&s, key, msg, len, 1);
    store_le64(out, sip_finalize(&s, 0xee));
    s.v1 ^= 0xdd;
    store_le64(out + 8, sip_finalize(&s, 0));
}

uint64_t wx_fnv1a64(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
