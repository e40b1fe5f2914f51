/*
 * engine.h - the card engine: every account, card and hold in memory, and the one function
 * that decides a command.
 *
 * The engine is a deterministic state machine: wx_engine_apply(state, command) decides and
 * changes state, and nothing else happens inside it (no clock, no randomness, no I/O). Time
 * and idempotency keys come in with the command; ids come from counters in the state. That
 * is what makes the journal the truth: replaying the journaled commands from event 0 must
 * arrive at exactly the live state, and `wxbank verify` checks that it does.
 *
 * The engine never sees a card number. Adapters turn a PAN into its card reference (a keyed
 * HMAC, see wx_card_ref) before building a command, so no PAN can leak from here.
 */
#ifndef WX_CORE_ENGINE_H
#define WX_CORE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/limits.h"

#define WX_CURRENCY_CNY 156 /* the ledger books CNY; foreign amounts arrive converted */
#define WX_REF_LEN      16  /* card reference: truncated HMAC-SHA256 of the PAN */

/* Why a command was approved, declined or refused. Stable numbers: they are journaled. */
enum wx_reason {
    WX_APPROVED = 0,
    WX_R_INSUFFICIENT_CREDIT = 1,
    WX_R_CARD_NOT_FOUND = 2,
    WX_R_CARD_NOT_ACTIVATED = 3,
    WX_R_CARD_LOCKED = 4,
    WX_R_CARD_LOST = 5,
    WX_R_CARD_STOLEN = 6,
    WX_R_CARD_CLOSED = 7,
    WX_R_CARD_EXPIRED = 8,
    WX_R_WRONG_EXPIRY = 9,
    WX_R_WRONG_CVV = 10,
    WX_R_INVALID_AMOUNT = 11,
    WX_R_INVALID_CURRENCY = 12,
    WX_R_DUPLICATE_MISMATCH = 13, /* a known key with different content */
    WX_R_ORIGINAL_NOT_FOUND = 14, /* capture/reversal/increment of an unknown original */
    WX_R_ALREADY_REVERSED = 15,   /* the original was reversed (or its reversal came first) */
    WX_R_HOLD_CLOSED = 16,        /* the hold was fully captured, reversed or expired */
    WX_R_EXCEEDS_ORIGINAL = 17,   /* capture beyond tolerance, reversal beyond what is left */
    WX_R_ACCOUNT_NOT_FOUND = 18,
    WX_R_CUSTOMER_NOT_FOUND = 19,
    WX_R_CUSTOMER_EXISTS = 20,    /* same ID document already belongs to a customer */
    WX_R_INVALID_STATUS = 21,     /* a status change the card's lifecycle does not allow */
    WX_R_INVALID_FIELD = 22,      /* a malformed field: empty key, bad expiry, bad name... */
    WX_R_CAPACITY = 23,           /* a table reached its configured limit */
    WX_R_BALANCE_OVERFLOW = 24,   /* the arithmetic would leave the int64 range */
    WX_R_FOLLOWER_LIMIT = 25,     /* the customer has WX_FOLLOWERS_PER_CUSTOMER bound */
    WX_R_FOLLOWER_TAKEN = 26,     /* the OpenID is bound to another customer */
    WX_R_FOLLOWER_NOT_BOUND = 27, /* unbind of an OpenID not bound (to the customer named) */
    WX_R_COUNT
};

/* Card lifecycle. Lost, stolen and closed are terminal for spending. */
enum wx_card_status {
    WX_CARD_NOT_ACTIVATED = 0,
    WX_CARD_ACTIVE = 1,
    WX_CARD_LOCKED = 2,
    WX_CARD_LOST = 3,
    WX_CARD_STOLEN = 4,
    WX_CARD_CLOSED = 5,
};

enum wx_cmd_kind {
    WX_CMD_NONE = 0,
    WX_CMD_CUSTOMER_ADD = 1,
    WX_CMD_CARD_ISSUE = 2, /* a main card opens an account; a supplementary joins one */
    WX_CMD_CARD_ACTIVATE = 3,
    WX_CMD_CARD_STATUS = 4,
    WX_CMD_LIMIT_SET = 5,      /* permanent credit limit */
    WX_CMD_TEMP_LIMIT_SET = 6, /* temporary extra limit until an expiry */
    WX_CMD_AUTHORIZE = 7,      /* purchase / cash; balance inquiry answers without a row */
    WX_CMD_AUTH_INCREMENT = 8,
    WX_CMD_CAPTURE = 9, /* clearing of a hold; with no hold, a force post */
    WX_CMD_REVERSAL = 10,
    WX_CMD_REFUND = 11,
    WX_CMD_REPAYMENT = 12,
    WX_CMD_FEE = 13,
    WX_CMD_INTEREST = 14,
    WX_CMD_TICK = 15, /* time passes: holds expire, old idempotency records are forgotten */
    WX_CMD_FOLLOWER_BIND = 16,   /* a WeChat follower (OpenID) is bound to a customer */
    WX_CMD_FOLLOWER_UNBIND = 17, /* ... and unbound */
    WX_CMD_KIND_COUNT
};

/* What an authorization is for (ISO 8583 processing code 00 / 01 / 31). */
enum wx_auth_type {
    WX_AUTH_PURCHASE = 0,
    WX_AUTH_CASH = 1,
    WX_AUTH_BALANCE_INQUIRY = 2,
};

/* How the card was used; alerts and risk need it. */
enum wx_channel {
    WX_CHANNEL_POS = 0,      /* card present at a terminal */
    WX_CHANNEL_CNP = 1,      /* card not present: e-commerce, quick pay (快捷支付) */
    WX_CHANNEL_ATM = 2,      /* cash at an ATM or counter */
    WX_CHANNEL_INTERNAL = 3, /* the bank's own postings */
};

/* Who bound or unbound a WeChat follower. Stable numbers: they are journaled. */
enum wx_bind_via {
    WX_BIND_STAFF = 0,        /* bank staff (CLI, ops API) */
    WX_BIND_CARDHOLDER = 1,   /* the cardholder, through the secure web flow */
    WX_BIND_UNSUBSCRIBED = 2, /* unbind only: the follower unfollowed the Official Account */
};

/* Where and how a transaction happened. Journaled for history and alerts; the engine
 * decides on mcc and channel only. Strings are NUL-terminated. */
struct wx_merchant {
    uint16_t mcc;                             /* ISO 18245 merchant category code */
    uint8_t channel;                          /* enum wx_channel */
    uint8_t cross_border;                     /* 1 when acquired outside the card's country */
    char country[4];                          /* ISO 3166 alpha-3 or numeric as sent */
    char name[WX_MERCHANT_NAME_MAX + 1];      /* merchant name as on the statement */
    char city[WX_MERCHANT_CITY_MAX + 1];      /* merchant city */
    char terminal_id[WX_TERMINAL_ID_MAX + 1]; /* acquirer's terminal id */
    char merchant_id[WX_MERCHANT_ID_MAX + 1]; /* acquirer's merchant id */
    int64_t txn_amount;                       /* amount in the transaction currency */
    uint16_t txn_currency;                    /* ISO 4217 numeric of txn_amount */
};

/* One command. `key` is the idempotency key from the source; `time_ms` the source's clock
 * (UTC epoch ms). Only the member of the union named by `kind` is meaningful. */
struct wx_cmd {
    uint8_t kind;         /* enum wx_cmd_kind */
    uint8_t key_len;      /* bytes used in key, 1..WX_KEY_MAX */
    char key[WX_KEY_MAX]; /* idempotency key, not NUL-terminated */
    int64_t time_ms;      /* when the source saw it */
    union {
        struct {
            char name[WX_NAME_MAX + 1];     /* UTF-8 */
            char mobile[WX_MOBILE_MAX + 1]; /* digits, optional '+' */
            uint8_t id_hmac[WX_REF_LEN];    /* keyed HMAC of the ID-document number */
            char id_last4[5];               /* last 4 characters of the ID document */
        } customer;
        struct {
            uint32_t customer_id;            /* holder of this card */
            uint32_t account_id;             /* 0: a main card opening a new account */
            uint8_t ref[WX_REF_LEN];         /* card reference (HMAC of the PAN) */
            uint32_t first6;                 /* the BIN's first 6 digits, for masking */
            uint16_t last4;                  /* last 4 digits of the PAN */
            uint16_t expiry;                 /* YYMM */
            uint64_t cvv_tag;                /* keyed hash of PAN, expiry and CVV2 */
            int64_t credit_limit;            /* new account only */
            uint8_t statement_day;           /* new account only, 1..28 */
            uint8_t pan_enc_len;             /* bytes in pan_enc */
            uint8_t pan_enc[WX_PAN_ENC_MAX]; /* AES-256-GCM of the PAN: the copy at rest */
        } card;
        struct {
            uint32_t card_id;
            uint8_t status; /* enum wx_card_status; activation uses WX_CMD_CARD_ACTIVATE */
        } card_status;
        struct {
            uint32_t account_id;
            int64_t amount;     /* new limit, or temporary extra limit */
            int64_t expires_ms; /* temporary limit only */
        } limit;
        struct {
            uint8_t ref[WX_REF_LEN];
            uint16_t expiry;   /* YYMM as presented; 0 when the message had none */
            uint64_t cvv_tag;  /* 0 when no CVV2 was presented */
            uint8_t type;      /* enum wx_auth_type */
            uint8_t capture;   /* 1: authorize and capture at once (0200) */
            uint8_t advice;    /* 1: decided elsewhere (0120/0220): never declined for credit */
            int64_t amount;    /* CNY billing amount */
            uint16_t currency; /* must be CNY */
            struct wx_merchant merchant;
        } auth;
        struct {
            uint8_t orig_len;            /* 0: none (a force post needs ref) */
            char orig_key[WX_KEY_MAX];   /* the original command's key */
            uint8_t ref[WX_REF_LEN];     /* card, for force posts and refunds */
            int64_t amount;              /* 0 on a reversal: everything left */
            uint16_t currency;           /* must be CNY */
            uint8_t final;               /* capture: release what the hold has left */
            uint8_t advice;              /* capture decided elsewhere (a clearing advice):
                                          * posted even beyond the capture tolerance */
            struct wx_merchant merchant; /* force posts and refunds describe the merchant */
        } follow;                        /* AUTH_INCREMENT, CAPTURE, REVERSAL, REFUND */
        struct {
            uint32_t account_id;
            int64_t amount;
            uint16_t currency;
            uint16_t code; /* fee or interest type, free for the bank to define */
        } posting;         /* REPAYMENT, FEE, INTEREST */
        struct {
            char openid[WX_OPENID_MAX + 1]; /* 1..WX_OPENID_MAX of [A-Za-z0-9_-] */
            uint32_t customer_id;           /* unbind: 0 means whichever customer */
            uint8_t via;                    /* enum wx_bind_via */
        } follower;                         /* FOLLOWER_BIND, FOLLOWER_UNBIND */
    };
};

/* The answer to a command. A repeat gets the first answer again, with `repeat` set. */
struct wx_result {
    uint8_t reason;      /* enum wx_reason; WX_APPROVED when it went through */
    uint8_t repeat;      /* 1 when this is the stored answer to an earlier command */
    uint8_t journaled;   /* 1 when the decision is (or will be) in the journal at `seq` */
    uint32_t approval;   /* 6-digit approval code of an approval, else 0 */
    uint32_t id;         /* created customer or card id; for card commands the card id */
    uint32_t account_id; /* account the command touched, 0 if none */
    int64_t amount;      /* amount applied (a partial reversal may apply less) */
    int64_t available;   /* available credit after the decision */
    uint64_t seq;        /* journal sequence that must be durable before replying */
};

/* Engine settings; all come from configuration and are the same at replay. */
struct wx_engine_config {
    int hold_days;             /* ordinary holds expire after this many days */
    int hold_days_long;        /* hotel, car rental and airline holds */
    int capture_tolerance_pct; /* a capture may exceed its hold by this much */
    int idempotency_hours;     /* how long a plain answer is remembered */
    int reference_days;        /* how long holds and postings can be referred to */
    uint8_t key_seed[16];      /* per-database secret for hashing idempotency keys */
};

typedef struct wx_engine wx_engine_t;

/* A journal row as the engine produces and consumes it. body points into `buf`. */
struct wx_row {
    uint64_t seq;
    int64_t at_ms;
    uint32_t account_id;
    uint8_t kind;
    uint32_t len;
    uint8_t buf[WX_ROW_MAX];
};

/* Read-only views for tools and adapters. */
struct wx_card_view {
    uint32_t id, account_id, customer_id;
    uint32_t first6;
    uint16_t last4, expiry;
    uint8_t status, supplementary;
};
struct wx_account_view {
    uint32_t id, customer_id, main_card_id;
    int64_t credit_limit, temp_limit, temp_expires_ms;
    int64_t posted; /* balance owed; negative is a credit balance */
    int64_t held;   /* open holds */
    int64_t available;
    uint16_t currency;
    uint8_t statement_day;
};
struct wx_customer_view {
    uint32_t id;
    char name[WX_NAME_MAX + 1];
    char mobile[WX_MOBILE_MAX + 1];
    char id_last4[5];
};
/* A WeChat follower bound to a customer. */
struct wx_follower_view {
    char openid[WX_OPENID_MAX + 1];
    uint32_t customer_id;
    int64_t bound_at_ms; /* engine time of the binding, UTC epoch ms */
    uint8_t via;         /* enum wx_bind_via of the binding */
};
struct wx_engine_stats {
    uint32_t customers, accounts, cards;
    uint32_t followers; /* WeChat followers bound */
    uint64_t records, open_holds;
    uint64_t last_seq;
    int64_t now_ms;
    size_t bytes; /* memory the engine's tables hold */
};

/* Creates an empty engine. cfg is copied. Never fails (allocation failure is fatal). */
wx_engine_t *wx_engine_new(const struct wx_engine_config *cfg);
void wx_engine_free(wx_engine_t *e);

/*
 * Decides one command.
 * Returns 1 when the decision must be journaled: `row` holds it, with seq = last seq + 1,
 * and the caller must append it before deciding anything else. Returns 0 when nothing is to
 * be journaled: a refusal (bad input, unknown card, a key reused with other content) or a
 * repeat (res->seq then names the original's row, which may still be on its way to disk).
 * `row` may be NULL only for commands that are known not to be journaled (tests).
 */
int wx_engine_apply(wx_engine_t *e, const struct wx_cmd *cmd, struct wx_result *res,
                    struct wx_row *row);

/*
 * Replays one journaled row: decodes its command, applies it and checks the decision is
 * the one recorded. Returns 0, or -1 with a message in err (a corrupt row, a seq out of
 * order, or a different decision: the engine is not deterministic or the code changed).
 */
int wx_engine_replay(wx_engine_t *e, uint64_t seq, const uint8_t *body, size_t len, char *err,
                     size_t errlen);

/* Row codec: used by replay, history and tools. decode returns 0 or -1 on malformed input. */
int wx_row_decode(const uint8_t *body, size_t len, struct wx_cmd *cmd, struct wx_result *res);
size_t wx_row_encode(const struct wx_cmd *cmd, const struct wx_result *res, uint8_t *out,
                     size_t cap);

/* Snapshot: the whole state as one stream; load into a fresh engine made with the same cfg.
 * Both return 0 or -1 (I/O error or a stream that does not match this build). */
int wx_engine_save(const wx_engine_t *e, FILE *out);
int wx_engine_load(wx_engine_t *e, FILE *in, char *err, size_t errlen);

/* Compares two engines field by field. Returns 0 when equal, else 1 and the first
 * difference in `diff`. */
int wx_engine_compare(const wx_engine_t *a, const wx_engine_t *b, char *diff, size_t cap);

/* Checks every invariant over the whole state (asserts on failure; for tests and verify). */
void wx_engine_check(const wx_engine_t *e);

/* Look-ups. Return 0, or -1 when the id or reference is unknown. */
int wx_engine_card(const wx_engine_t *e, uint32_t card_id, struct wx_card_view *out);
int wx_engine_card_by_ref(const wx_engine_t *e, const uint8_t ref[WX_REF_LEN],
                          struct wx_card_view *out);
int wx_engine_account(const wx_engine_t *e, uint32_t account_id, struct wx_account_view *out);
int wx_engine_customer(const wx_engine_t *e, uint32_t customer_id, struct wx_customer_view *out);
/* The customer's cards, newest first: writes at most cap, returns how many were written
 * (0 for an unknown customer). */
size_t wx_engine_customer_cards(const wx_engine_t *e, uint32_t customer_id,
                                struct wx_card_view *out, size_t cap);
int wx_engine_customer_by_id_hmac(const wx_engine_t *e, const uint8_t id_hmac[WX_REF_LEN],
                                  struct wx_customer_view *out);

/* The customer an OpenID is bound to, in O(1). Returns 0, or -1 when the OpenID is not
 * bound (or is not a valid OpenID). */
int wx_engine_follower(const wx_engine_t *e, const char *openid, struct wx_follower_view *out);

/* The followers bound to a customer, oldest binding first. Writes the first min(n, cap) of
 * them to out (which may be NULL when cap is 0) and returns n, the number bound: at most
 * WX_FOLLOWERS_PER_CUSTOMER, 0 for an unknown customer. */
size_t wx_engine_customer_followers(const wx_engine_t *e, uint32_t customer_id,
                                    struct wx_follower_view *out, size_t cap);

/* What the hold made by the command with idempotency key `key` (len bytes) authorized in
 * all, increments included and partial reversals taken off, in fen; -1 when no hold with that
 * key is remembered. A capture equal to it tells the cardholder nothing new. */
int64_t wx_engine_hold_total(const wx_engine_t *e, const char *key, size_t len);

void wx_engine_stats(const wx_engine_t *e, struct wx_engine_stats *out);
uint64_t wx_engine_last_seq(const wx_engine_t *e);

const char *wx_reason_str(uint8_t reason);  /* "insufficient credit" */
const char *wx_reason_name(uint8_t reason); /* "INSUFFICIENT_CREDIT" */
const char *wx_cmd_kind_name(uint8_t kind); /* "authorize" */
const char *wx_card_status_name(uint8_t status);
const char *wx_bind_via_name(uint8_t via); /* "staff", "cardholder", "unsubscribed" */

/* An OpenID as the engine accepts it: 1..WX_OPENID_MAX bytes of [A-Za-z0-9_-], NUL within
 * WX_OPENID_MAX + 1 bytes. Adapters check with this before building a command. */
bool wx_openid_valid(const char *openid);

#endif
