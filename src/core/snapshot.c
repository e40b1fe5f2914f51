/*
 * snapshot.c - the engine's state as one stream, field-by-field comparison, and the
 * invariant check.
 *
 * A snapshot is the flat tables written as they are (they hold no pointers: ids and
 * offsets only) behind a header that names the format version (in the magic) and this
 * build's struct sizes, so a snapshot from an incompatible build is refused rather than
 * misread. Hash indexes are rebuilt on load.
 *
 * Format versions: 001 the card tables; 002 adds WeChat followers (the follower table, and
 * each customer's first follower) and each customer's list of cards. A refused snapshot is not an error for the ledger: it
 * falls back to an older one or to replaying the journal from event 0.
 */
#include "core/engine_int.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include <stdlib.h>

#include "util/alloc.h"

static const char SNAP_MAGIC[8] = {'W', 'X', 'E', 'N', 'G', '0', '0', '2'};

#define SNAP_SIZES 7

struct snap_header {
    char magic[8];
    uint32_t sizes[SNAP_SIZES]; /* customer, account, card, record, expiry, engine config,
                                 * follower */
    struct wx_engine_config cfg;
    uint32_t n_customers, n_accounts, n_cards, arena_len;
    uint32_t n_records_used, free_head, n_heap, pad;
    uint32_t n_followers_used, follower_free, n_followers, pad2;
    uint64_t live_records, open_holds, last_seq;
    int64_t now_ms;
    uint64_t short_len, long_len;
};

static void fill_sizes(uint32_t sizes[SNAP_SIZES])
{
    sizes[0] = sizeof(struct wx_customer);
    sizes[1] = sizeof(struct wx_account);
    sizes[2] = sizeof(struct wx_card);
    sizes[3] = sizeof(struct wx_record);
    sizes[4] = sizeof(struct wx_expiry);
    sizes[5] = sizeof(struct wx_engine_config);
    sizes[6] = sizeof(struct wx_follower);
}

static int write_all(FILE *out, const void *p, size_t size, size_t n)
{
    return n == 0 || fwrite(p, size, n, out) == n ? 0 : -1;
}

static int write_fifo(FILE *out, const struct wx_fifo *f)
{
    for (uint64_t i = f->head; i < f->tail; i++) {
        if (fwrite(&f->items[i & (f->cap - 1)], sizeof(uint32_t), 1, out) != 1) {
            return -1;
        }
    }
    return 0;
}

int wx_engine_save(const wx_engine_t *e, FILE *out)
{
    struct snap_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SNAP_MAGIC, sizeof h.magic);
    fill_sizes(h.sizes);
    h.cfg = e->cfg;
    h.n_customers = e->n_customers;
    h.n_accounts = e->n_accounts;
    h.n_cards = e->n_cards;
    h.arena_len = e->arena_len;
    h.n_records_used = e->n_records_used;
    h.free_head = e->free_head;
    h.n_heap = e->n_heap;
    h.n_followers_used = e->n_followers_used;
    h.follower_free = e->follower_free;
    h.n_followers = e->n_followers;
    h.live_records = e->live_records;
    h.open_holds = e->open_holds;
    h.last_seq = e->last_seq;
    h.now_ms = e->now_ms;
    h.short_len = e->short_fifo.tail - e->short_fifo.head;
    h.long_len = e->long_fifo.tail - e->long_fifo.head;
    if (write_all(out, &h, sizeof h, 1) ||
        write_all(out, e->customers, sizeof *e->customers, e->n_customers) ||
        write_all(out, e->accounts, sizeof *e->accounts, e->n_accounts) ||
        write_all(out, e->cards, sizeof *e->cards, e->n_cards) ||
        write_all(out, e->followers, sizeof *e->followers, e->n_followers_used) ||
        write_all(out, e->arena, 1, e->arena_len) ||
        write_all(out, e->records, sizeof *e->records, e->n_records_used) ||
        write_all(out, e->heap, sizeof *e->heap, e->n_heap) || write_fifo(out, &e->short_fifo) ||
        write_fifo(out, &e->long_fifo)) {
        return -1;
    }
    return 0;
}

/* Reads n items into a fresh array of capacity at least n (and at least 1). */
static void *read_table(FILE *in, size_t size, uint64_t n, uint32_t *cap, int *err)
{
    uint64_t c = n ? n : 1;
    void *p = wx_reallocarray(NULL, c, size);
    wx_advise_huge(p, (size_t)c * size);
    if (cap != NULL) {
        *cap = (uint32_t)c;
    }
    if (n && fread(p, size, n, in) != n) {
        *err = -1;
    }
    return p;
}

static void read_fifo(FILE *in, struct wx_fifo *f, uint64_t n, int *err)
{
    uint64_t cap = 1024;
    while (cap < n) {
        cap *= 2;
    }
    free(f->items);
    f->items = wx_calloc(cap, sizeof *f->items);
    f->cap = cap;
    f->head = 0;
    f->tail = n;
    if (n && fread(f->items, sizeof *f->items, n, in) != n) {
        *err = -1;
    }
}

static void rebuild_indexes(struct wx_engine *e)
{
    for (uint32_t i = 0; i < e->n_cards; i++) {
        wx_index_insert(&e->card_ix, e->cards[i].ref, i);
    }
    for (uint32_t i = 0; i < e->n_customers; i++) {
        wx_index_insert(&e->customer_ix, e->customers[i].id_hmac, i);
    }
    for (uint32_t i = 0; i < e->n_records_used; i++) {
        if (e->records[i].kind != WX_REC_FREE) {
            wx_index_insert(&e->record_ix, e->records[i].key, i);
        }
    }
    for (uint32_t i = 0; i < e->n_followers_used; i++) {
        if (e->followers[i].customer != 0) {
            wx_index_insert(&e->follower_ix, e->followers[i].key, i);
        }
    }
}

int wx_engine_load(wx_engine_t *e, FILE *in, char *err, size_t errlen)
{
    struct snap_header h;
    uint32_t sizes[SNAP_SIZES];
    fill_sizes(sizes);
    assert(e->n_cards == 0 && e->n_customers == 0 && e->last_seq == 0);
    assert(e->followers == NULL); /* a fresh engine: nothing to free or to lose */
    if (fread(&h, sizeof h, 1, in) != 1 || memcmp(h.magic, SNAP_MAGIC, 8) != 0 ||
        memcmp(h.sizes, sizes, sizeof sizes) != 0) {
        snprintf(err, errlen, "snapshot: not an engine snapshot of this build");
        return -1;
    }
    if (memcmp(&h.cfg, &e->cfg, sizeof h.cfg) != 0) {
        snprintf(err, errlen,
                 "snapshot: engine settings differ from the configuration "
                 "(engine.* keys changed since it was written)");
        return -1;
    }
    int rc = 0;
    free(e->arena);
    e->customers = read_table(in, sizeof *e->customers, h.n_customers, &e->cap_customers, &rc);
    e->accounts = read_table(in, sizeof *e->accounts, h.n_accounts, &e->cap_accounts, &rc);
    e->cards = read_table(in, sizeof *e->cards, h.n_cards, &e->cap_cards, &rc);
    e->followers = read_table(in, sizeof *e->followers, h.n_followers_used, &e->cap_followers, &rc);
    e->arena = read_table(in, 1, h.arena_len, &e->arena_cap, &rc);
    e->records = read_table(in, sizeof *e->records, h.n_records_used, &e->cap_records, &rc);
    e->heap = read_table(in, sizeof *e->heap, h.n_heap, &e->cap_heap, &rc);
    read_fifo(in, &e->short_fifo, h.short_len, &rc);
    read_fifo(in, &e->long_fifo, h.long_len, &rc);
    e->n_customers = h.n_customers;
    e->n_accounts = h.n_accounts;
    e->n_cards = h.n_cards;
    e->arena_len = h.arena_len;
    e->n_records_used = h.n_records_used;
    e->free_head = h.free_head;
    e->n_heap = h.n_heap;
    e->n_followers_used = h.n_followers_used;
    e->follower_free = h.follower_free;
    e->n_followers = h.n_followers;
    e->live_records = h.live_records;
    e->open_holds = h.open_holds;
    e->last_seq = h.last_seq;
    e->now_ms = h.now_ms;
    if (rc != 0) {
        snprintf(err, errlen, "snapshot: truncated");
        return -1;
    }
    rebuild_indexes(e);
    return 0;
}

#define DIFF(...)                                                                                  \
    do {                                                                                           \
        snprintf(diff, cap, __VA_ARGS__);                                                          \
        return 1;                                                                                  \
    } while (0)

static int compare_scalars(const struct wx_engine *a, const struct wx_engine *b, char *diff,
                           size_t cap)
{
    if (a->last_seq != b->last_seq) {
        DIFF("last seq %" PRIu64 " vs %" PRIu64, a->last_seq, b->last_seq);
    }
    if (a->now_ms != b->now_ms) {
        DIFF("engine time %" PRId64 " vs %" PRId64, a->now_ms, b->now_ms);
    }
    if (a->n_customers != b->n_customers || a->n_accounts != b->n_accounts ||
        a->n_cards != b->n_cards) {
        DIFF("table sizes: customers %u/%u, accounts %u/%u, cards %u/%u", a->n_customers,
             b->n_customers, a->n_accounts, b->n_accounts, a->n_cards, b->n_cards);
    }
    if (a->n_records_used != b->n_records_used || a->live_records != b->live_records ||
        a->free_head != b->free_head || a->open_holds != b->open_holds) {
        DIFF("records: %" PRIu64 " live / %" PRIu64 " open holds vs %" PRIu64 " / %" PRIu64,
             a->live_records, a->open_holds, b->live_records, b->open_holds);
    }
    if (a->n_followers != b->n_followers || a->n_followers_used != b->n_followers_used ||
        a->follower_free != b->follower_free) {
        DIFF("followers: %u bound in %u slots vs %u in %u", a->n_followers, a->n_followers_used,
             b->n_followers, b->n_followers_used);
    }
    return 0;
}

static int compare_tables(const struct wx_engine *a, const struct wx_engine *b, char *diff,
                          size_t cap)
{
    for (uint32_t i = 0; i < a->n_customers; i++) {
        const struct wx_customer *x = &a->customers[i], *y = &b->customers[i];
        if (memcmp(x->id_hmac, y->id_hmac, WX_REF_LEN) != 0 ||
            memcmp(x->id_last4, y->id_last4, 4) != 0 ||
            strcmp(a->arena + x->name_off, b->arena + y->name_off) != 0 ||
            strcmp(a->arena + x->mobile_off, b->arena + y->mobile_off) != 0) {
            DIFF("customer %u differs", i + 1);
        }
        if (x->followers != y->followers) {
            DIFF("customer %u: first WeChat follower in slot %u vs %u", i + 1, x->followers,
                 y->followers);
        }
    }
    for (uint32_t i = 0; i < a->n_followers_used; i++) {
        const struct wx_follower *x = &a->followers[i], *y = &b->followers[i];
        if (memcmp(x, y, sizeof *x) != 0) {
            DIFF("follower slot %u differs: '%.*s' of customer %u vs '%.*s' of customer %u", i,
                 (int)x->openid_len, x->openid, x->customer, (int)y->openid_len, y->openid,
                 y->customer);
        }
    }
    for (uint32_t i = 0; i < a->n_accounts; i++) {
        const struct wx_account *x = &a->accounts[i], *y = &b->accounts[i];
        if (memcmp(x, y, sizeof *x) != 0) {
            DIFF("account %u differs: limit %" PRId64 "/%" PRId64 ", posted %" PRId64 "/%" PRId64
                 ", held %" PRId64 "/%" PRId64,
                 i + 1, x->credit_limit, y->credit_limit, x->posted, y->posted, x->held, y->held);
        }
    }
    for (uint32_t i = 0; i < a->n_cards; i++) {
        if (memcmp(&a->cards[i], &b->cards[i], sizeof a->cards[i]) != 0) {
            DIFF("card %u differs (status %s vs %s)", i + 1,
                 wx_card_status_name(a->cards[i].status), wx_card_status_name(b->cards[i].status));
        }
    }
    for (uint32_t i = 0; i < a->n_records_used; i++) {
        if (memcmp(&a->records[i], &b->records[i], sizeof a->records[i]) != 0) {
            DIFF("record slot %u differs (seq %" PRIu64 " vs %" PRIu64 ")", i, a->records[i].seq,
                 b->records[i].seq);
        }
    }
    return 0;
}

static int compare_queues(const struct wx_engine *a, const struct wx_engine *b, char *diff,
                          size_t cap)
{
    if (a->n_heap != b->n_heap ||
        (a->n_heap && memcmp(a->heap, b->heap, a->n_heap * sizeof *a->heap) != 0)) {
        DIFF("hold expiry queues differ (%u vs %u entries)", a->n_heap, b->n_heap);
    }
    const struct wx_fifo *fa[2] = {&a->short_fifo, &a->long_fifo};
    const struct wx_fifo *fb[2] = {&b->short_fifo, &b->long_fifo};
    for (int q = 0; q < 2; q++) {
        uint64_t na = fa[q]->tail - fa[q]->head, nb = fb[q]->tail - fb[q]->head;
        if (na != nb) {
            DIFF("retention queue %d: %" PRIu64 " vs %" PRIu64 " entries", q, na, nb);
        }
        for (uint64_t i = 0; i < na; i++) {
            if (fa[q]->items[(fa[q]->head + i) & (fa[q]->cap - 1)] !=
                fb[q]->items[(fb[q]->head + i) & (fb[q]->cap - 1)]) {
                DIFF("retention queue %d differs at position %" PRIu64, q, i);
            }
        }
    }
    return 0;
}

int wx_engine_compare(const wx_engine_t *a, const wx_engine_t *b, char *diff, size_t cap)
{
    if (compare_scalars(a, b, diff, cap) || compare_tables(a, b, diff, cap) ||
        compare_queues(a, b, diff, cap)) {
        return 1;
    }
    if (cap > 0) {
        diff[0] = '\0';
    }
    return 0;
}

static void check_record(const struct wx_engine *e, const struct wx_record *r, int64_t *held)
{
    if (r->kind == WX_REC_HOLD) {
        assert(r->open >= 0 && r->open <= r->total);
        assert(r->settled >= 0);
        assert(r->settled <= r->total + r->total * e->cfg.capture_tolerance_pct / 100 ||
               (r->flags & WX_REC_ADVISED));
        assert(((r->flags & WX_REC_CLOSED) != 0) == (r->open == 0));
        assert(r->account >= 1 && r->account <= e->n_accounts);
        held[r->account - 1] += r->open;
    } else if (r->kind == WX_REC_POSTING) {
        assert(r->open >= 0 && r->open <= r->total);
    }
}

/* A bound follower: its OpenID, its hash and the index agree, and its customer exists. */
static void check_follower(const struct wx_engine *e, uint32_t slot)
{
    const struct wx_follower *f = &e->followers[slot];
    char openid[WX_OPENID_MAX + 1];
    uint8_t key[WX_REF_LEN];
    assert(f->customer >= 1 && f->customer <= e->n_customers);
    assert(f->openid_len >= 1 && f->openid_len <= WX_OPENID_MAX);
    assert(f->via <= WX_BIND_CARDHOLDER);
    assert(f->bound_at_ms >= 0 && f->bound_at_ms <= e->now_ms);
    memcpy(openid, f->openid, f->openid_len);
    openid[f->openid_len] = '\0';
    assert(wx_openid_valid(openid));
    wx_follower_key(e, openid, f->openid_len, key);
    assert(memcmp(key, f->key, WX_REF_LEN) == 0);
    assert(wx_index_find(&e->follower_ix, f->key) == slot);
}

/* Every follower is bound to an existing customer and on that customer's list, in binding
 * order; no list is longer than the limit; free slots are empty and all on the free list. */
static void check_followers(const struct wx_engine *e)
{
    static const struct wx_follower empty;
    uint32_t bound = 0, listed = 0, free_slots = 0;
    assert(e->n_followers_used <= e->cap_followers);
    for (uint32_t i = 0; i < e->n_followers_used; i++) {
        if (e->followers[i].customer != 0) {
            check_follower(e, i);
            bound++;
        }
    }
    for (uint32_t c = 1; c <= e->n_customers; c++) {
        uint32_t n = 0;
        int64_t last = INT64_MIN;
        for (uint32_t s = e->customers[c - 1].followers; s != 0; s = e->followers[s - 1].next) {
            assert(s <= e->n_followers_used);
            assert(e->followers[s - 1].customer == c);
            assert(e->followers[s - 1].bound_at_ms >= last);
            last = e->followers[s - 1].bound_at_ms;
            assert(++n <= WX_FOLLOWERS_PER_CUSTOMER); /* also stops a cycle */
        }
        listed += n;
    }
    for (uint32_t s = e->follower_free; s != 0; s = e->followers[s - 1].next) {
        assert(s <= e->n_followers_used);
        struct wx_follower f = e->followers[s - 1];
        f.next = 0;
        assert(memcmp(&f, &empty, sizeof f) == 0);
        assert(++free_slots <= e->n_followers_used); /* also stops a cycle */
    }
    assert(bound == e->n_followers);
    assert(listed == bound); /* with the above: every bound follower is on exactly its list */
    assert(bound + free_slots == e->n_followers_used);
    assert(e->follower_ix.count == bound);
}

/* Every card is on exactly its holder's list, newest first. */
static void check_holders(const struct wx_engine *e)
{
    uint32_t listed = 0;
    for (uint32_t c = 0; c < e->n_customers; c++) {
        uint32_t prev = UINT32_MAX;
        for (uint32_t id = e->customers[c].cards; id != 0; id = e->cards[id - 1].next_of_holder) {
            assert(id <= e->n_cards && id < prev);
            assert(e->cards[id - 1].customer == c + 1);
            prev = id;
            listed++;
        }
    }
    assert(listed == e->n_cards);
}

void wx_engine_check(const wx_engine_t *e)
{
    int64_t *held = wx_calloc(e->n_accounts ? e->n_accounts : 1, sizeof *held);
    uint64_t live = 0, open = 0;
    for (uint32_t i = 0; i < e->n_records_used; i++) {
        const struct wx_record *r = &e->records[i];
        if (r->kind == WX_REC_FREE) {
            continue;
        }
        live++;
        open += r->kind == WX_REC_HOLD && !(r->flags & WX_REC_CLOSED);
        check_record(e, r, held);
    }
    assert(live == e->live_records);
    assert(open == e->open_holds);
    assert(e->record_ix.count == live);
    assert(e->card_ix.count == e->n_cards);
    assert(e->customer_ix.count == e->n_customers);
    for (uint32_t i = 0; i < e->n_accounts; i++) {
        const struct wx_account *a = &e->accounts[i];
        assert(a->held == held[i]); /* held is exactly the sum of the open holds */
        assert(a->held >= 0 && a->held <= WX_BALANCE_MAX);
        assert(a->posted <= WX_BALANCE_MAX && a->posted >= -WX_BALANCE_MAX);
        assert(a->credit_limit >= 0 && a->credit_limit <= WX_LIMIT_MAX);
        assert(a->main_card >= 1 && a->main_card <= e->n_cards);
    }
    for (uint32_t i = 0; i < e->n_cards; i++) {
        assert(e->cards[i].account >= 1 && e->cards[i].account <= e->n_accounts);
        assert(e->cards[i].customer >= 1 && e->cards[i].customer <= e->n_customers);
        assert(e->cards[i].status <= WX_CARD_CLOSED);
    }
    check_holders(e);
    check_followers(e);
    free(held);
}
