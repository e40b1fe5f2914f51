/*
 * alloc.c - malloc wrappers that stop the process instead of returning NULL.
 */
#include "util/alloc.h"

#include "util/log.h"

#include <assert.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

void *wx_malloc(size_t size)
{
    void *p = malloc(size != 0 ? size : 1);
    if (p == NULL) WX_FATAL("out of memory allocating %zu bytes", size);
    return p;
}

void *wx_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        WX_FATAL("allocation size overflow: %zu * %zu bytes", n, size);
    }
    void *p = calloc(total != 0 ? n : 1, total != 0 ? size : 1);
    if (p == NULL) WX_FATAL("out of memory allocating %zu * %zu bytes", n, size);
    return p;
}

void *wx_realloc(void *p, size_t size)
{
    void *q = realloc(p, size != 0 ? size : 1);
    if (q == NULL) WX_FATAL("out of memory reallocating to %zu bytes", size);
    return q;
}

void *wx_reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        WX_FATAL("allocation size overflow: %zu * %zu bytes", n, size);
    }
    return wx_realloc(p, total);
}

char *wx_strndup(const char *s, size_t n)
{
    assert(s != NULL);
    size_t len = strnlen(s, n);
    char *copy = wx_malloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

void wx_advise_huge(void *p, size_t size)
{
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (p == NULL || size < 2 * huge) {
        return;
    }
    uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)p + size) & ~(huge - 1);
    if (end > start) {
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
    }
}
