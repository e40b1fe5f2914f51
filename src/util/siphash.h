/*
 * siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012), 64- and 128-bit outputs.
 *
 * A fast keyed hash for in-memory hash tables fed by outside input (idempotency keys, card
 * look-ups): with a random per-process key, a peer cannot aim collisions at one bucket. It is
 * a PRF, not a MAC for data at rest; use HMAC-SHA256 (crypto.h) for that.
 */
#ifndef WX_SIPHASH_H
#define WX_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 with a 64-bit result; the reference's output bytes, read little-endian. */
uint64_t wx_siphash64(const uint8_t key[16], const void *msg, size_t len);

/* SipHash-2-4 with a 128-bit result, out as the reference implementation writes it. */
void wx_siphash128(const uint8_t key[16], const void *msg, size_t len, uint8_t out[16]);

/*
 * FNV-1a, 64 bits: unkeyed, so the same everywhere and at every build. For hashes that must
 * be stable (the chat classifier's features, learnt at build time and looked up at run time)
 * or that check rather than place (a follower's OpenID beside a report). Never for a table a
 * peer fills: use SipHash with a random key there. Chain calls with h = WX_FNV1A64_START.
 */
#define WX_FNV1A64_START 0xcbf29ce484222325ull
uint64_t wx_fnv1a64(uint64_t h, const void *data, size_t len);

#endif
