/*
 * dialog.c - the dialogue each follower is in: found by OpenID, kept newest last, forgotten
 * after chat.idle_s without a turn (or, past dialogues_max followers at once, oldest first).
 *
 * Each turn moves its dialogue to the newest end, so the oldest end holds the idle ones:
 * every lookup first drops those past the idle time, which keeps memory to the followers
 * who spoke in the last few minutes, with no timer.
 */
#include "chat/chat_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/siphash.h"

/* OpenIDs come from outside: a keyed hash, so none can be aimed at one bucket. */
static size_t bucket_of(const struct wx_chat *c, const char *openid)
{
    return (size_t)wx_siphash64(c->hash_key, openid, strlen(openid)) & (c->nbuckets - 1);
}

static struct dialog **slot_of(struct wx_chat *c, const char *openid)
{
    struct dialog **p = &c->buckets[bucket_of(c, openid)];
    while (*p != NULL && strcmp((*p)->openid, openid) != 0)
        p = &(*p)->next_bucket;
    return p;
}

static void unlink_age(struct wx_chat *c, struct dialog *d)
{
    if (d->older != NULL) d->older->newer = d->newer;
    if (d->newer != NULL) d->newer->older = d->older;
    if (c->oldest == d) c->oldest = d->newer;
    if (c->newest == d) c->newest = d->older;
    d->older = d->newer = NULL;
}

static void link_newest(struct wx_chat *c, struct dialog *d)
{
    d->older = c->newest;
    d->newer = NULL;
    if (c->newest != NULL) c->newest->newer = d;
    c->newest = d;
    if (c->oldest == NULL) c->oldest = d;
}

static void drop(struct wx_chat *c, struct dialog *d)
{
    struct dialog **p = slot_of(c, d->openid);
    assert(*p == d);
    *p = d->next_bucket;
    unlink_age(c, d);
    c->count--;
    free(d);
}

static void grow(struct wx_chat *c)
{
    size_t old = c->nbuckets;
    struct dialog **ob = c->buckets;
    c->nbuckets = old ? old * 2 : 256;
    c->buckets = wx_calloc(c->nbuckets, sizeof *c->buckets);
    for (size_t i = 0; i < old; i++) {
        for (struct dialog *d = ob[i], *next; d != NULL; d = next) {
            next = d->next_bucket;
            struct dialog **p = &c->buckets[bucket_of(c, d->openid)];
            d->next_bucket = *p;
            *p = d;
        }
    }
    free(ob);
}

void dialog_reset(struct dialog *d)
{
    d->intent = WX_INTENT_UNKNOWN;
    d->stage = STAGE_NONE;
    memset(&d->slots, 0, sizeof d->slots);
    d->slots.amount_fen = -1;
    d->slots.date_from = d->slots.date_to = INT32_MIN;
    d->slots.card_last4 = -1;
    d->slots.lang_named = -1;
    d->nchoices = d->ncards = 0;
    d->card_id = 0;
}

struct dialog *dialog_get(struct wx_chat *c, const char *openid, int64_t now_ms)
{
    int64_t idle_ms = (int64_t)c->opt.idle_s * 1000;
    while (c->oldest != NULL && now_ms - c->oldest->last_ms > idle_ms)
        drop(c, c->oldest);
    if (c->count >= c->nbuckets) grow(c);
    struct dialog **p = slot_of(c, openid);
    struct dialog *d = *p;
    if (d == NULL) {
        if (c->count >= c->opt.dialogues_max && c->oldest != NULL) {
            drop(c, c->oldest);
            p = slot_of(c, openid);
        }
        d = wx_calloc(1, sizeof *d);
        size_t len = strlen(openid);
        memcpy(d->openid, openid, len < WX_OPENID_MAX ? len : WX_OPENID_MAX);
        dialog_reset(d);
        *p = d;
        c->count++;
    } else {
        unlink_age(c, d);
    }
    d->last_ms = now_ms;
    link_newest(c, d);
    return d;
}

void dialogs_free(struct wx_chat *c)
{
    while (c->oldest != NULL)
        drop(c, c->oldest);
    free(c->buckets);
    c->buckets = NULL;
    c->nbuckets = 0;
}
