/*
 * index.c - the engine's hash index (see index.h for the layout and why).
 */
#include "core/index.h"

#include <assert.h>
#include <string.h>

#include <stdlib.h>

#include "util/alloc.h"

#define INDEX_MIN_CAPACITY 1024u

static uint32_t hash32(const uint8_t key[16])
{
    uint32_t h;
    memcpy(&h, key, sizeof h);
    return h;
}

static uint64_t make_slot(uint32_t h, uint32_t idx)
{
    assert(idx != UINT32_MAX);
    return ((uint64_t)h << 32) | (uint64_t)(idx + 1u);
}

static uint32_t slot_hash(uint64_t s)
{
    return (uint32_t)(s >> 32);
}

static uint32_t slot_idx(uint64_t s)
{
    return (uint32_t)s - 1u;
}

static void alloc_table(struct wx_index *ix, uint32_t capacity)
{
    assert((capacity & (capacity - 1)) == 0);
    ix->slots = wx_calloc(capacity, sizeof *ix->slots);
    wx_advise_huge(ix->slots, (size_t)capacity * sizeof *ix->slots);
    ix->mask = capacity - 1;
}

void wx_index_init(struct wx_index *ix, wx_index_key_fn key_of, const void *owner)
{
    memset(ix, 0, sizeof *ix);
    ix->key_of = key_of;
    ix->owner = owner;
    alloc_table(ix, INDEX_MIN_CAPACITY);
}

void wx_index_free(struct wx_index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
}

uint32_t wx_index_find(const struct wx_index *ix, const uint8_t key[16])
{
    uint32_t h = hash32(key);
    for (uint32_t pos = h & ix->mask;; pos = (pos + 1) & ix->mask) {
        uint64_t s = ix->slots[pos];
        if (s == 0) {
            return UINT32_MAX;
        }
        if (slot_hash(s) == h && memcmp(ix->key_of(ix->owner, slot_idx(s)), key, 16) == 0) {
            return slot_idx(s);
        }
    }
}

static void place(struct wx_index *ix, uint64_t s)
{
    uint32_t pos = slot_hash(s) & ix->mask;
    while (ix->slots[pos] != 0) {
        pos = (pos + 1) & ix->mask;
    }
    ix->slots[pos] = s;
}

static void grow(struct wx_index *ix)
{
    uint64_t *old = ix->slots;
    uint32_t old_capacity = ix->mask + 1;
    assert(old_capacity <= (1u << 31));
    alloc_table(ix, old_capacity * 2);
    for (uint32_t i = 0; i < old_capacity; i++) {
        if (old[i] != 0) {
            place(ix, old[i]);
        }
    }
    free(old);
}

void wx_index_insert(struct wx_index *ix, const uint8_t key[16], uint32_t idx)
{
    assert(wx_index_find(ix, key) == UINT32_MAX);
    if ((uint64_t)(ix->count + 1) * 10 > (uint64_t)(ix->mask + 1) * 7) {
        grow(ix);
    }
    place(ix, make_slot(hash32(key), idx));
    ix->count++;
}

/* Backward-shift deletion: after emptying a slot, move later entries of the same probe run
 * back so that every entry stays reachable from its home position. */
void wx_index_remove(struct wx_index *ix, const uint8_t key[16], uint32_t idx)
{
    uint64_t want = make_slot(hash32(key), idx);
    uint32_t pos = hash32(key) & ix->mask;
    while (ix->slots[pos] != want) {
        assert(ix->slots[pos] != 0);
        pos = (pos + 1) & ix->mask;
    }
    uint32_t hole = pos;
    for (uint32_t next = (hole + 1) & ix->mask; ix->slots[next] != 0;
         next = (next + 1) & ix->mask) {
        uint32_t home = slot_hash(ix->slots[next]) & ix->mask;
        /* The entry at next may move into the hole only if its home is not in (hole, next]. */
        uint32_t dist_next = (next - home) & ix->mask;
        uint32_t dist_hole = (next - hole) & ix->mask;
        if (dist_next >= dist_hole) {
            ix->slots[hole] = ix->slots[next];
            hole = next;
        }
    }
    ix->slots[hole] = 0;
    assert(ix->count > 0);
    ix->count--;
}

size_t wx_index_bytes(const struct wx_index *ix)
{
    return ((size_t)ix->mask + 1) * sizeof *ix->slots;
}
