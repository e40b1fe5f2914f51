/*
 * followers.c - WeChat followers bound to customers: binding, unbinding and the views that
 * every chat message ("who is this OpenID?") and every transaction alert ("whom do I tell
 * about customer C?") ask.
 *
 * An OpenID is bound to at most one customer, a customer has at most
 * WX_FOLLOWERS_PER_CUSTOMER followers. Binding is idempotent on its natural key: binding an
 * OpenID to the customer it is already bound to is approved again and changes nothing (like
 * activating an active card), whatever the command's key. Like every command of the bank's
 * own (ops.c), a binding that cannot be made is refused: nothing changes and nothing is
 * journaled. Both commands are also remembered under their key for idempotency_hours, so a
 * late retry of an old unbind (say, a redelivered "unsubscribe" event) is answered from the
 * record instead of undoing a newer binding.
 *
 * Layout (see struct wx_follower): an OpenID's keyed hash indexes a slot table; each
 * customer heads a short list of its followers through the table, oldest binding first.
 */
#include "core/engine_int.h"

#include <assert.h>
#include <string.h>

/* The layout has no implicit padding, so snapshots and compares see no garbage bytes. */
_Static_assert(sizeof(struct wx_follower) == 104, "struct wx_follower has implicit padding");
_Static_assert(sizeof(struct wx_customer) == 36, "struct wx_customer has implicit padding");

bool wx_openid_valid(const char *openid)
{
    size_t n = strnlen(openid, WX_OPENID_MAX + 1);
    if (n == 0 || n > WX_OPENID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = openid[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

void wx_follower_key(const struct wx_engine *e, const char *openid, size_t len,
                     uint8_t out[WX_REF_LEN])
{
    wx_key_hash(e, openid, len, out);
}

/* The slot an OpenID is bound in, or NULL. */
static struct wx_follower *follower_find(struct wx_engine *e, const char *openid)
{
    uint8_t key[WX_REF_LEN];
    wx_follower_key(e, openid, strlen(openid), key);
    uint32_t slot = wx_index_find(&e->follower_ix, key);
    return slot == UINT32_MAX ? NULL : &e->followers[slot];
}

static uint32_t followers_of(const struct wx_engine *e, uint32_t customer_id)
{
    uint32_t n = 0;
    for (uint32_t s = e->customers[customer_id - 1].followers; s != 0;
         s = e->followers[s - 1].next) {
        n++;
    }
    return n;
}

/* Takes a slot from the free list, or a fresh one. */
static uint32_t slot_alloc(struct wx_engine *e)
{
    uint32_t slot;
    if (e->follower_free != 0) {
        slot = e->follower_free - 1;
        e->follower_free = e->followers[slot].next;
    } else {
        e->followers = wx_table_reserve(e->followers, e->n_followers_used, &e->cap_followers,
                                        sizeof *e->followers);
        slot = e->n_followers_used++;
    }
    memset(&e->followers[slot], 0, sizeof e->followers[slot]);
    return slot;
}

/* Appends slot to the end of its customer's list, which keeps the list in binding order. */
static void list_append(struct wx_engine *e, uint32_t customer_id, uint32_t slot)
{
    uint32_t *link = &e->customers[customer_id - 1].followers;
    while (*link != 0) {
        link = &e->followers[*link - 1].next;
    }
    *link = slot + 1;
}

static void list_remove(struct wx_engine *e, uint32_t customer_id, uint32_t slot)
{
    uint32_t *link = &e->customers[customer_id - 1].followers;
    while (*link != slot + 1) {
        assert(*link != 0); /* a bound follower is on its customer's list */
        link = &e->followers[*link - 1].next;
    }
    *link = e->followers[slot].next;
}

enum wx_outcome wx_do_follower_bind(struct wx_decision *d)
{
    struct wx_engine *e = d->e;
    const struct wx_cmd *cmd = d->cmd;
    uint32_t customer_id = cmd->follower.customer_id;
    if (!wx_openid_valid(cmd->follower.openid) || cmd->follower.via > WX_BIND_CARDHOLDER) {
        return wx_refuse(d, WX_R_INVALID_FIELD);
    }
    if (customer_id < 1 || customer_id > e->n_customers) {
        return wx_refuse(d, WX_R_CUSTOMER_NOT_FOUND);
    }
    const struct wx_follower *f = follower_find(e, cmd->follower.openid);
    if (f != NULL && f->customer != customer_id) {
        return wx_refuse(d, WX_R_FOLLOWER_TAKEN);
    }
    if (f != NULL) {
        /* Bound already to this customer: a repeat, whatever the key or who asks. */
        d->res->repeat = 1;
        d->res->id = customer_id;
        d->res->seq = e->last_seq; /* conservatively: everything decided so far */
        return WX_ANSWERED;
    }
    if (followers_of(e, customer_id) >= WX_FOLLOWERS_PER_CUSTOMER) {
        return wx_refuse(d, WX_R_FOLLOWER_LIMIT);
    }
    uint32_t slot = slot_alloc(e);
    struct wx_follower *n = &e->followers[slot];
    size_t len = strlen(cmd->follower.openid);
    wx_follower_key(e, cmd->follower.openid, len, n->key);
    n->bound_at_ms = d->now;
    n->customer = customer_id;
    n->via = cmd->follower.via;
    n->openid_len = (uint8_t)len;
    memcpy(n->openid, cmd->follower.openid, len);
    wx_index_insert(&e->follower_ix, n->key, slot);
    list_append(e, customer_id, slot);
    e->n_followers++;
    d->res->id = customer_id;
    return WX_DECIDED;
}

enum wx_outcome wx_do_follower_unbind(struct wx_decision *d)
{
    struct wx_engine *e = d->e;
    const struct wx_cmd *cmd = d->cmd;
    uint32_t customer_id = cmd->follower.customer_id;
    if (!wx_openid_valid(cmd->follower.openid) || cmd->follower.via > WX_BIND_UNSUBSCRIBED) {
        return wx_refuse(d, WX_R_INVALID_FIELD);
    }
    if (customer_id > e->n_customers) {
        return wx_refuse(d, WX_R_CUSTOMER_NOT_FOUND);
    }
    struct wx_follower *f = follower_find(e, cmd->follower.openid);
    if (f == NULL || (customer_id != 0 && f->customer != customer_id)) {
        return wx_refuse(d, WX_R_FOLLOWER_NOT_BOUND);
    }
    uint32_t slot = (uint32_t)(f - e->followers);
    d->res->id = f->customer;
    list_remove(e, f->customer, slot);
    wx_index_remove(&e->follower_ix, f->key, slot);
    memset(f, 0, sizeof *f);
    f->next = e->follower_free;
    e->follower_free = slot + 1;
    assert(e->n_followers > 0);
    e->n_followers--;
    return WX_DECIDED;
}

static void follower_view(const struct wx_follower *f, struct wx_follower_view *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->openid, f->openid, f->openid_len);
    out->customer_id = f->customer;
    out->bound_at_ms = f->bound_at_ms;
    out->via = f->via;
}

int wx_engine_follower(const wx_engine_t *e, const char *openid, struct wx_follower_view *out)
{
    if (!wx_openid_valid(openid)) {
        return -1;
    }
    uint8_t key[WX_REF_LEN];
    wx_follower_key(e, openid, strlen(openid), key);
    uint32_t slot = wx_index_find(&e->follower_ix, key);
    if (slot == UINT32_MAX) {
        return -1;
    }
    follower_view(&e->followers[slot], out);
    return 0;
}

size_t wx_engine_customer_followers(const wx_engine_t *e, uint32_t customer_id,
                                    struct wx_follower_view *out, size_t cap)
{
    if (customer_id < 1 || customer_id > e->n_customers) {
        return 0;
    }
    size_t n = 0;
    for (uint32_t s = e->customers[customer_id - 1].followers; s != 0;
         s = e->followers[s - 1].next) {
        if (n < cap) {
            follower_view(&e->followers[s - 1], &out[n]);
        }
        n++;
    }
    assert(n <= WX_FOLLOWERS_PER_CUSTOMER);
    return n;
}
