/*
 * index.h - open-addressing hash index from a 16-byte key to a 32-bit slot number.
 *
 * The engine's keys are already uniform (HMACs and SipHash outputs), so the index uses their
 * first bytes as the hash and stores only 8 bytes per table slot: the low 32 bits of the hash
 * (which both place the entry and filter comparisons) and the slot number + 1. The full key
 * lives in the owner's record and is compared through a callback. Linear probing with
 * backward-shift deletion keeps look-ups short and needs no tombstones.
 */
#ifndef WX_CORE_INDEX_H
#define WX_CORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* Returns the key stored for slot number `idx` in the owner's table. */
typedef const uint8_t *(*wx_index_key_fn)(const void *owner, uint32_t idx);

struct wx_index {
    uint64_t *slots;        /* (hash32 << 32) | (idx + 1); 0 marks an empty slot */
    uint32_t mask;          /* capacity - 1; capacity is a power of two */
    uint32_t count;         /* entries in use */
    wx_index_key_fn key_of; /* full key of an entry, for comparisons */
    const void *owner;      /* passed to key_of */
};

void wx_index_init(struct wx_index *ix, wx_index_key_fn key_of, const void *owner);
void wx_index_free(struct wx_index *ix);

/* Returns the slot number stored under key, or UINT32_MAX when absent. */
uint32_t wx_index_find(const struct wx_index *ix, const uint8_t key[16]);

/* Adds key -> idx. The key must be absent (asserted). Grows the table at 70 % load. */
void wx_index_insert(struct wx_index *ix, const uint8_t key[16], uint32_t idx);

/* Removes the entry key -> idx, which must be present (asserted). */
void wx_index_remove(struct wx_index *ix, const uint8_t key[16], uint32_t idx);

/* Bytes the table holds. */
size_t wx_index_bytes(const struct wx_index *ix);

#endif
