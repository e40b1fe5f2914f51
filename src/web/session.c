/*
 * session.c - sessions on the secure pages: random ids, idle and absolute expiry, rotation at
 * login, a CSRF token each.
 *
 * A session id is 256 random bits (the cookie's value: HttpOnly, Secure, SameSite=Strict,
 * set by the pages); the table keeps only its SHA-256, like one-time tokens. Sessions are
 * kept in order of last use, so the idle ones gather at the old end: each lookup first ends
 * those idle too long, and opening one past the table's size ends the least recently used.
 * A login rotates the id: one planted in a victim's browser before it is then worth nothing
 * (session fixation).
 */
#include "web/web_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"

struct entry {
    uint8_t digest[32]; /* SHA-256 of the id's bytes */
    struct entry *next_bucket;
    struct web_age age; /* by last use */
    struct wx_session s;
};

struct wx_sessions {
    size_t max, count;
    int64_t idle_ms, absolute_ms;
    struct entry **buckets; /* a power of two, at least 2 * max */
    size_t nbuckets;
    struct web_ages ages;
};

static size_t bucket_of(const wx_sessions_t *s, const uint8_t digest[32])
{
    uint64_t h;
    memcpy(&h, digest, sizeof h);
    return (size_t)h & (s->nbuckets - 1);
}

wx_sessions_t *wx_sessions_new(size_t max)
{
    assert(max > 0);
    struct wx_sessions *s = wx_calloc(1, sizeof *s);
    s->max = max;
    s->idle_ms = WX_SESSION_IDLE_MS;
    s->absolute_ms = WX_SESSION_ABSOLUTE_MS;
    s->nbuckets = web_buckets_for(max);
    s->buckets = wx_calloc(s->nbuckets, sizeof *s->buckets);
    return s;
}

static struct entry *oldest(const wx_sessions_t *s)
{
    return WEB_ENTRY_OF(s->ages.oldest, struct entry, age);
}

static void unlink_bucket(wx_sessions_t *s, struct entry *e)
{
    struct entry **p = &s->buckets[bucket_of(s, e->digest)];
    while (*p != e)
        p = &(*p)->next_bucket;
    *p = e->next_bucket;
}

static void link_bucket(wx_sessions_t *s, struct entry *e)
{
    struct entry **head = &s->buckets[bucket_of(s, e->digest)];
    e->next_bucket = *head;
    *head = e;
}

static void end(wx_sessions_t *s, struct entry *e)
{
    unlink_bucket(s, e);
    web_age_remove(&s->ages, &e->age);
    s->count--;
    wx_wipe(e, sizeof *e);
    free(e);
}

void wx_sessions_free(wx_sessions_t *s)
{
    if (s == NULL) return;
    while (oldest(s) != NULL)
        end(s, oldest(s));
    free(s->buckets);
    free(s);
}

void wx_sessions_set_life(wx_sessions_t *s, int64_t idle_ms, int64_t absolute_ms)
{
    assert(idle_ms > 0 && absolute_ms >= idle_ms);
    s->idle_ms = idle_ms;
    s->absolute_ms = absolute_ms;
}

static bool over(const wx_sessions_t *s, const struct wx_session *x, int64_t now_ms)
{
    return now_ms - x->last_ms >= s->idle_ms || now_ms - x->created_ms >= s->absolute_ms;
}

static void new_csrf(struct wx_session *x)
{
    uint8_t unused[32];
    web_id_new(unused, x->csrf);
}

struct wx_session *wx_sessions_open(wx_sessions_t *s, const char *openid, int64_t now_ms,
                                    char id[WX_TOKEN_TEXT_LEN + 1])
{
    if (s->count == s->max) end(s, oldest(s));
    struct entry *e = wx_calloc(1, sizeof *e);
    web_id_new(e->digest, id);
    size_t len = strnlen(openid, WX_OPENID_MAX);
    memcpy(e->s.openid, openid, len);
    e->s.created_ms = e->s.last_ms = now_ms;
    new_csrf(&e->s);
    link_bucket(s, e);
    web_age_add_newest(&s->ages, &e->age);
    s->count++;
    return &e->s;
}

static struct entry *lookup(wx_sessions_t *s, const char *id, int64_t now_ms)
{
    while (oldest(s) != NULL && now_ms - oldest(s)->s.last_ms >= s->idle_ms)
        end(s, oldest(s));
    uint8_t digest[32];
    if (!web_id_digest(id, digest)) return NULL;
    struct entry *e = s->buckets[bucket_of(s, digest)];
    while (e != NULL && memcmp(e->digest, digest, sizeof digest) != 0)
        e = e->next_bucket;
    if (e == NULL) return NULL;
    if (over(s, &e->s, now_ms)) {
        end(s, e);
        return NULL;
    }
    e->s.last_ms = now_ms;
    web_age_remove(&s->ages, &e->age);
    web_age_add_newest(&s->ages, &e->age);
    return e;
}

struct wx_session *wx_sessions_find(wx_sessions_t *s, const char *id, int64_t now_ms)
{
    struct entry *e = lookup(s, id, now_ms);
    return e != NULL ? &e->s : NULL;
}

struct wx_session *wx_sessions_rotate(wx_sessions_t *s, const char *old_id, int64_t now_ms,
                                      char id[WX_TOKEN_TEXT_LEN + 1])
{
    struct entry *e = lookup(s, old_id, now_ms);
    if (e == NULL) return NULL;
    unlink_bucket(s, e);
    web_id_new(e->digest, id);
    link_bucket(s, e);
    new_csrf(&e->s);
    return &e->s;
}

void wx_sessions_close(wx_sessions_t *s, const char *id)
{
    uint8_t digest[32];
    if (!web_id_digest(id, digest)) return;
    struct entry *e = s->buckets[bucket_of(s, digest)];
    while (e != NULL && memcmp(e->digest, digest, sizeof digest) != 0)
        e = e->next_bucket;
    if (e != NULL) end(s, e);
}

bool wx_session_csrf_ok(const struct wx_session *session, const char *given)
{
    if (strnlen(given, WX_TOKEN_TEXT_LEN + 1) != WX_TOKEN_TEXT_LEN) return false;
    return wx_ct_equal(session->csrf, given, WX_TOKEN_TEXT_LEN);
}

size_t wx_sessions_count(const wx_sessions_t *s)
{
    return s->count;
}
