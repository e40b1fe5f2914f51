/*
 * table.c - what the secure back end's bounded tables share (one-time tokens, sessions,
 * guards): a list of their entries by age, and the size of their hash.
 */
#include "web/web_int.h"

void web_age_remove(struct web_ages *l, struct web_age *a)
{
    if (a->older != NULL) a->older->newer = a->newer;
    if (a->newer != NULL) a->newer->older = a->older;
    if (l->oldest == a) l->oldest = a->newer;
    if (l->newest == a) l->newest = a->older;
    a->older = a->newer = NULL;
}

void web_age_add_newest(struct web_ages *l, struct web_age *a)
{
    a->older = l->newest;
    a->newer = NULL;
    if (l->newest != NULL) l->newest->newer = a;
    l->newest = a;
    if (l->oldest == NULL) l->oldest = a;
}

size_t web_buckets_for(size_t max)
{
    size_t n = 16;
    while (n < 2 * max)
        n *= 2;
    return n;
}
