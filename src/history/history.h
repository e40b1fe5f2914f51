/*
 * history.h - per-card transaction history, a projection of the journal built off the hot
 * path.
 *
 * The authorization path only appends to the journal, which has no index but its seq: a
 * random-key secondary index there would cost the hot path most of its throughput
 * (DESIGN.md). History queries ("my last 10 transactions", statements) instead read a
 * projection in a database file of its own (<db>.history), so its writes never contend for
 * the journal's write lock. The projection keeps a watermark (the last journal seq it holds)
 * and catches up in large transactions by scanning the journal after it; a query first
 * catches up, so it is exact, and it costs the hot path nothing.
 */
#ifndef WX_HISTORY_HISTORY_H
#define WX_HISTORY_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

/* One line of a card's history. */
struct wx_history_item {
    uint64_t seq;    /* journal seq */
    int64_t at_ms;   /* when the source saw it, UTC epoch ms */
    uint8_t kind;    /* enum wx_cmd_kind */
    uint8_t reason;  /* enum wx_reason */
    uint8_t channel; /* enum wx_channel */
    uint16_t mcc;
    uint32_t card_id;  /* 0 for account-level postings (repayment, fee, interest) */
    int64_t amount;    /* fen */
    int64_t available; /* available credit after it */
    char merchant[WX_MERCHANT_NAME_MAX + 1];
    char city[WX_MERCHANT_CITY_MAX + 1];
};

/*
 * Brings <db_path>.history up to the journal's last row. Returns 0 (and the watermark in
 * *upto when not NULL), or -1 with a message in err.
 */
int wx_history_catch_up(const char *db_path, uint64_t *upto, char *err, size_t errlen);

/*
 * The newest `cap` items of a card, newest first, including its account's postings.
 * Catches up first. Returns 0 with *n items, or -1 with a message in err.
 */
int wx_history_recent(const char *db_path, uint32_t card_id, uint32_t account_id,
                      struct wx_history_item *out, size_t cap, size_t *n, char *err, size_t errlen);

#endif
