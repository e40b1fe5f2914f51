/*
 * engine_int.h - the engine's private state and the contract between its files.
 *
 * Everything the authorization path touches is here, in flat arrays of small fixed-size
 * structs, so that 1,000,000 cards fit in about 200 bytes each and a decision costs a few
 * cache misses. Ids are array positions + 1 and are never reused. Records (idempotency
 * answers, holds, postings) live in a slab with a free list and are forgotten in time order.
 *
 * Only files of src/core include this header.
 */
#ifndef WX_CORE_ENGINE_INT_H
#define WX_CORE_ENGINE_INT_H

#include "core/engine.h"
#include "core/index.h"

/* A customer. Name and mobile live in the engine's string arena. */
struct wx_customer {
    uint8_t id_hmac[WX_REF_LEN]; /* keyed HMAC of the ID document: the natural key */
    uint32_t name_off;           /* offset of the NUL-terminated name in the arena */
    uint32_t mobile_off;         /* offset of the NUL-terminated mobile in the arena */
    char id_last4[4];            /* last 4 characters of the ID document, unterminated */
    uint32_t followers;          /* first bound WeChat follower (slot + 1), 0 when none */
    uint32_t cards;              /* newest card held (id), 0 when none; see next_of_holder */
};

/*
 * A WeChat follower (OpenID) bound to a customer. A customer's followers form a singly
 * linked list through `next`, oldest binding first: at most WX_FOLLOWERS_PER_CUSTOMER long,
 * so walking it is as cheap as reading an array, and it costs the customers without
 * followers (most of them) 4 bytes each instead of a fixed array. An unbound follower's slot
 * goes on a free list (linked through `next` as well) and is reused by the next binding, so
 * the table is as large as the most followers ever bound at once. The OpenID is kept inline
 * rather than in the append-only arena, so that binding and unbinding again and again grows
 * nothing.
 */
struct wx_follower {
    uint8_t key[WX_REF_LEN];    /* SipHash-128 of the OpenID: follower_ix looks up by this */
    int64_t bound_at_ms;        /* engine time of the binding */
    uint32_t customer;          /* the customer bound to; 0 while the slot is free */
    uint32_t next;              /* next follower of the customer, or next free slot (+ 1) */
    uint8_t via;                /* enum wx_bind_via of the binding */
    uint8_t openid_len;         /* bytes in openid, 1..WX_OPENID_MAX */
    char openid[WX_OPENID_MAX]; /* the OpenID, unterminated */
    uint8_t pad[6];             /* explicit padding: snapshots and compares see no garbage */
};

/* A credit account: the limit and the balance that its cards share. */
struct wx_account {
    int64_t credit_limit;    /* permanent limit, fen */
    int64_t temp_limit;      /* temporary extra limit, fen, while now < temp_expires_ms */
    int64_t temp_expires_ms; /* end of the temporary limit */
    int64_t posted;          /* posted balance owed, fen; negative is a credit balance */
    int64_t held;            /* sum of the open amounts of this account's holds */
    uint32_t customer;       /* the main cardholder */
    uint32_t main_card;      /* the card that opened the account */
    uint16_t currency;       /* ISO 4217 numeric; CNY */
    uint8_t statement_day;   /* day of month the statement is cut, 1..28 */
    uint8_t pad[5];          /* explicit padding: snapshots and compares see no garbage */
};

/* A card. The PAN itself is never in memory: `ref` is its keyed HMAC. */
struct wx_card {
    uint8_t ref[WX_REF_LEN]; /* card reference: look-ups go through this */
    uint64_t cvv_tag;        /* keyed hash over PAN, expiry and CVV2 */
    uint32_t account;        /* account id whose credit the card spends */
    uint32_t customer;       /* cardholder (differs from the account's for supplementary) */
    uint32_t first6;         /* first 6 digits, for the masked number */
    uint16_t last4;          /* last 4 digits */
    uint16_t expiry;         /* YYMM */
    uint8_t status;          /* enum wx_card_status */
    uint8_t supplementary;   /* 1 for a supplementary card */
    uint8_t pad[2];          /* explicit padding */
    uint32_t next_of_holder; /* the holder's previous card (id), 0 ends: newest first */
};

/* What a record stands for. */
enum wx_rec_kind {
    WX_REC_FREE = 0,      /* on the free list */
    WX_REC_ANSWER = 1,    /* only an answer to repeat (declines, reversals, limit changes...) */
    WX_REC_HOLD = 2,      /* an approved authorization holding credit */
    WX_REC_POSTING = 3,   /* a posted debit (capture, force post, authorize-and-capture) */
    WX_REC_TOMBSTONE = 4, /* a reversal came before its original: decline the original */
};

#define WX_REC_CLOSED   0x01 /* hold: no further capture (final capture, reversal, expiry) */
#define WX_REC_REVERSED 0x02 /* hold or posting: reversed in full */
#define WX_REC_EXPIRED  0x04 /* hold: released by expiry */
#define WX_REC_ADVISED  0x08 /* hold: a clearing advice captured beyond the tolerance */

/* One remembered command: the first answer to its key, and what it holds or posted. */
struct wx_record {
    uint8_t key[WX_REF_LEN]; /* SipHash-128 of the idempotency key */
    uint64_t fingerprint;    /* SipHash-64 of the command's content */
    uint64_t seq;            /* journal row of the decision */
    int64_t at_ms;           /* engine time of the decision; retention counts from here */
    int64_t amount;          /* the answer's amount */
    int64_t available;       /* the answer's available credit */
    int64_t total;           /* hold: authorized + increments - reversals; posting: posted */
    int64_t open;            /* hold: still held; posting: still reversible */
    int64_t settled;         /* hold: captured so far */
    int64_t expires_ms;      /* hold: when it lapses */
    uint32_t card;           /* card id (0 for tombstones) */
    uint32_t account;        /* account id (0 for tombstones) */
    uint32_t approval;       /* the answer's approval code */
    uint32_t id;             /* the answer's id */
    uint32_t next_free;      /* free-list link while kind == WX_REC_FREE */
    uint16_t mcc;            /* merchant category, for the hold's life */
    uint8_t kind;            /* enum wx_rec_kind */
    uint8_t reason;          /* the answer's reason */
    uint8_t cmd_kind;        /* the command that made it */
    uint8_t flags;           /* WX_REC_* */
    uint8_t pad[6];          /* explicit padding */
};

/* Pending hold expiry, in a binary min-heap ordered by (expires_ms, seq). */
struct wx_expiry {
    int64_t expires_ms;
    uint64_t seq; /* the hold's seq: a stale entry (slot reused) does not match */
    uint32_t rec;
    uint32_t pad;
};

/* A FIFO of record slots in the order they were made, for forgetting them in time order. */
struct wx_fifo {
    uint32_t *items;
    uint64_t head, tail; /* items[head % cap] .. items[(tail - 1) % cap] */
    uint64_t cap;        /* a power of two */
};

struct wx_engine {
    struct wx_engine_config cfg;

    struct wx_customer *customers; /* customers[id - 1] */
    uint32_t n_customers, cap_customers;
    struct wx_account *accounts; /* accounts[id - 1] */
    uint32_t n_accounts, cap_accounts;
    struct wx_card *cards; /* cards[id - 1] */
    uint32_t n_cards, cap_cards;

    char *arena; /* customers' strings */
    uint32_t arena_len, arena_cap;

    struct wx_record *records; /* slab */
    uint32_t n_records_used;   /* slots handed out so far (high-water mark) */
    uint32_t cap_records;
    uint32_t free_head; /* first free slot + 1; 0 when the free list is empty */
    uint64_t live_records;
    uint64_t open_holds;

    struct wx_follower *followers; /* slots; bound or on the free list */
    uint32_t n_followers_used;     /* slots handed out so far (high-water mark) */
    uint32_t cap_followers;
    uint32_t follower_free; /* first free slot + 1; 0 when the free list is empty */
    uint32_t n_followers;   /* followers bound */

    struct wx_index card_ix;     /* card ref -> card index */
    struct wx_index customer_ix; /* id_hmac -> customer index */
    struct wx_index record_ix;   /* key hash -> record slot */
    struct wx_index follower_ix; /* OpenID hash -> follower slot */

    struct wx_expiry *heap; /* pending hold expiries */
    uint32_t n_heap, cap_heap;
    struct wx_fifo short_fifo; /* answers: forgotten after idempotency_hours */
    struct wx_fifo long_fifo;  /* holds, postings, tombstones: after reference_days */

    uint64_t last_seq; /* last journaled row */
    int64_t now_ms;    /* engine time: the largest command time applied */
};

/* Balances beyond 10^15 fen are refused, so available-credit arithmetic stays in int64. */
#define WX_BALANCE_MAX 1000000000000000LL
/* The largest encoded result (reason, 3 varint32, 2 zigzag int64). */
#define WX_RESULT_MAX 40
/* A tick does at most this much work, so that time passing never stalls the engine. */
#define WX_TICK_WORK_MAX 65536

/* How a handler ended: answered without any change, or decided something to journal. */
enum wx_outcome { WX_ANSWERED = 0, WX_DECIDED = 1 };

/* One decision in progress: what the handlers read and fill. */
struct wx_decision {
    struct wx_engine *e;
    const struct wx_cmd *cmd;
    struct wx_result *res;
    uint64_t seq;                 /* the seq this decision gets if it is journaled */
    int64_t now;                  /* engine time including this command */
    uint8_t key_hash[WX_REF_LEN]; /* remembered kinds only */
    uint64_t fingerprint;         /* remembered kinds only */
    struct wx_record *tombstone;  /* an authorization whose reversal came first */
    bool wants_approval;          /* an approval of this kind carries an approval code */
    /* What to remember under the key, beyond the answer (set by the handler). */
    uint8_t rec_kind;  /* WX_REC_ANSWER unless the handler holds or posts */
    uint32_t rec_card; /* card of the hold or posting */
    int64_t rec_total; /* hold or posting amount */
    int64_t rec_expires_ms;
    uint16_t rec_mcc;
};

/* engine.c */
enum wx_outcome wx_refuse(struct wx_decision *d, uint8_t reason);
uint32_t wx_approval_code(uint64_t seq);
int64_t wx_available(const struct wx_engine *e, const struct wx_account *a);
void wx_key_hash(const struct wx_engine *e, const char *key, size_t len, uint8_t out[WX_REF_LEN]);

/* ops.c: customers, cards, accounts */
enum wx_outcome wx_do_customer_add(struct wx_decision *d);
enum wx_outcome wx_do_card_issue(struct wx_decision *d);
enum wx_outcome wx_do_card_activate(struct wx_decision *d);
enum wx_outcome wx_do_card_status(struct wx_decision *d);
enum wx_outcome wx_do_limit(struct wx_decision *d);
enum wx_outcome wx_do_posting(struct wx_decision *d);
uint32_t wx_arena_add(struct wx_engine *e, const char *s, size_t len);
/* Grows a table of n `size`-byte items (doubling *cap) so that one more fits; returns it. */
void *wx_table_reserve(void *items, uint32_t n, uint32_t *cap, size_t size);
struct wx_card *wx_card_get(struct wx_engine *e, uint32_t card_id);
struct wx_account *wx_account_get(struct wx_engine *e, uint32_t account_id);

/* followers.c: WeChat followers bound to customers */
enum wx_outcome wx_do_follower_bind(struct wx_decision *d);
enum wx_outcome wx_do_follower_unbind(struct wx_decision *d);
void wx_follower_key(const struct wx_engine *e, const char *openid, size_t len,
                     uint8_t out[WX_REF_LEN]);

/* auth.c: the card network's commands */
enum wx_outcome wx_do_authorize(struct wx_decision *d);
enum wx_outcome wx_do_increment(struct wx_decision *d);
enum wx_outcome wx_do_capture(struct wx_decision *d);
enum wx_outcome wx_do_reversal(struct wx_decision *d);
enum wx_outcome wx_do_refund(struct wx_decision *d);

/* records.c: remembered answers, holds, expiry and forgetting */
struct wx_record *wx_record_find(struct wx_engine *e, const uint8_t key[WX_REF_LEN]);
struct wx_record *wx_record_find_key(struct wx_engine *e, const char *key, size_t len);
void wx_record_remember(struct wx_decision *d);
struct wx_record *wx_record_tombstone(struct wx_decision *d, const char *orig, size_t len);
void wx_hold_release(struct wx_engine *e, struct wx_record *hold, int64_t amount);
enum wx_outcome wx_do_tick(struct wx_decision *d);
void wx_fifo_init(struct wx_fifo *f);

#endif
