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

#include <stdbool.h>
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
    int64_t posted;    /* what it added to the balance owed (a repayment: negative; a hold: 0) */
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

/* ---- queries through a reader that stays open ------------------------------------------- */

/*
 * A read connection to <db_path>.history (created if need be), for a caller that asks many
 * questions; it does not catch up (wx_history_catch_up, or a thread that does, keeps the
 * projection current). One thread at a time. NULL with a message in err.
 */
typedef struct wx_history_reader wx_history_reader_t;
wx_history_reader_t *wx_history_reader_open(const char *db_path, char *err, size_t errlen);
void wx_history_reader_close(wx_history_reader_t *r);

struct wx_history_query {
    uint32_t account_id;
    uint32_t card_id;        /* one card and the account's own postings; 0: the whole account */
    int64_t from_ms, to_ms;  /* [from_ms, to_ms), UTC epoch ms */
    const char *merchant;    /* a part of the merchant's name; NULL or "": any */
    uint16_t mcc_lo, mcc_hi; /* merchant category codes, both included; 0, 0: any */
    bool posted_only;        /* only items that changed the balance owed */
    uint32_t kinds;          /* a bit per enum wx_cmd_kind (1u << WX_CMD_REFUND); 0: any */
};

struct wx_history_totals {
    uint64_t count; /* items matching, all of them (not only those returned) */
    int64_t posted; /* the sum of their posted amounts */
};

/* The newest `cap` items matching q, newest first, and the totals of all that match.
 * Returns 0, or -1 with a message in err. */
int wx_history_list(wx_history_reader_t *r, const struct wx_history_query *q,
                    struct wx_history_item *out, size_t cap, struct wx_history_totals *totals,
                    size_t *n, char *err, size_t errlen);

/* The balance the account owed just before until_ms, as the projection knows it (a
 * statement's balance is this at the statement's cut-off). */
int wx_history_owed_before(wx_history_reader_t *r, uint32_t account_id, int64_t until_ms,
                           int64_t *owed, char *err, size_t errlen);

/* Brings the projection a reader reads up to the journal's last row (as
 * wx_history_catch_up, on the reader's connection). */
int wx_history_reader_catch_up(wx_history_reader_t *r, const char *db_path, char *err,
                               size_t errlen);

/* ---- a thread that follows the journal and answers questions (service.c) ---------------- */

/*
 * For a server: one thread keeps <db_path>.history caught up (every_ms, and before each
 * batch of questions, so an answer includes every decision made before it was asked) and
 * runs the questions its callers hand it, one at a time, so their SQLite reads never stall
 * the caller's loop.
 */
typedef struct wx_history_service wx_history_service_t;

struct wx_history_job {
    struct wx_history_job *next;
    /* On the service's thread: r reads the caught-up projection. cancelled (r NULL) when the
     * service stops before running it: run must then only release what it holds. The job
     * stays the caller's memory until run is called; run hands the result back itself (a hub
     * task). */
    void (*run)(wx_history_reader_t *r, struct wx_history_job *job, bool cancelled);
};

/* Starts the thread. NULL with a message in err when the projection cannot be opened. */
wx_history_service_t *wx_history_service_start(const char *db_path, unsigned every_ms, char *err,
                                               size_t errlen);
/* Any thread: queues job. */
void wx_history_service_ask(wx_history_service_t *s, struct wx_history_job *job);
/* Stops the thread; jobs not run yet are run cancelled. NULL is ignored. */
void wx_history_service_stop(wx_history_service_t *s);

#endif
