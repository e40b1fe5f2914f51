/*
 * alloc.h - the one allocation wrapper, with a deliberate out-of-memory policy.
 *
 * wxbank treats running out of memory like a storage error: it stops (WX_FATAL, exit 1) and a
 * restart replays the journal. So these functions never return NULL, and callers need no
 * out-of-memory branches. Sizes of zero are allowed and return a unique, freeable pointer.
 * Free with plain free().
 */
#ifndef WX_ALLOC_H
#define WX_ALLOC_H

#include <stddef.h>

void *wx_malloc(size_t size);

/* Zeroed n * size bytes; fatal on overflow of n * size or out of memory. */
void *wx_calloc(size_t n, size_t size);

/* Like realloc(3); p may be NULL. Never returns NULL. */
void *wx_realloc(void *p, size_t size);

/* realloc to n * size bytes, fatal if the product overflows (like reallocarray(3)). */
void *wx_reallocarray(void *p, size_t n, size_t size);

/*
 * Asks the kernel to back the 2 MiB-aligned interior of a large table with transparent huge
 * pages. The engine's tables are read at random (a card, its account, a record per
 * decision); with 4 KiB pages nearly every read also misses the TLB. A hint only: a kernel
 * that says no changes nothing. Blocks under 4 MiB are left alone.
 */
void wx_advise_huge(void *p, size_t size);

/* A NUL-terminated copy of at most n bytes of s (stops early at a NUL in s). */
char *wx_strndup(const char *s, size_t n);

#endif
