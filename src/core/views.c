/*
 * views.c - read-only access to the engine for tools and adapters, replay of journaled rows,
 * and the names of reasons, kinds and statuses.
 */
#include "core/engine_int.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

static void card_view(const struct wx_engine *e, uint32_t idx, struct wx_card_view *out)
{
    const struct wx_card *k = &e->cards[idx];
    out->id = idx + 1;
    out->account_id = k->account;
    out->customer_id = k->customer;
    out->first6 = k->first6;
    out->last4 = k->last4;
    out->expiry = k->expiry;
    out->status = k->status;
    out->supplementary = k->supplementary;
}

int wx_engine_card(const wx_engine_t *e, uint32_t card_id, struct wx_card_view *out)
{
    if (card_id < 1 || card_id > e->n_cards) {
        return -1;
    }
    card_view(e, card_id - 1, out);
    return 0;
}

int wx_engine_card_by_ref(const wx_engine_t *e, const uint8_t ref[WX_REF_LEN],
                          struct wx_card_view *out)
{
    uint32_t idx = wx_index_find(&e->card_ix, ref);
    if (idx == UINT32_MAX) {
        return -1;
    }
    card_view(e, idx, out);
    return 0;
}

int wx_engine_account(const wx_engine_t *e, uint32_t account_id, struct wx_account_view *out)
{
    if (account_id < 1 || account_id > e->n_accounts) {
        return -1;
    }
    const struct wx_account *a = &e->accounts[account_id - 1];
    out->id = account_id;
    out->customer_id = a->customer;
    out->main_card_id = a->main_card;
    out->credit_limit = a->credit_limit;
    out->temp_limit = e->now_ms < a->temp_expires_ms ? a->temp_limit : 0;
    out->temp_expires_ms = a->temp_expires_ms;
    out->posted = a->posted;
    out->held = a->held;
    out->available = wx_available(e, a);
    out->currency = a->currency;
    out->statement_day = a->statement_day;
    return 0;
}

static void customer_view(const struct wx_engine *e, uint32_t idx, struct wx_customer_view *out)
{
    const struct wx_customer *c = &e->customers[idx];
    out->id = idx + 1;
    snprintf(out->name, sizeof out->name, "%s", e->arena + c->name_off);
    snprintf(out->mobile, sizeof out->mobile, "%s", e->arena + c->mobile_off);
    memcpy(out->id_last4, c->id_last4, 4);
    out->id_last4[4] = '\0';
}

int wx_engine_customer(const wx_engine_t *e, uint32_t customer_id, struct wx_customer_view *out)
{
    if (customer_id < 1 || customer_id > e->n_customers) {
        return -1;
    }
    customer_view(e, customer_id - 1, out);
    return 0;
}

size_t wx_engine_customer_cards(const wx_engine_t *e, uint32_t customer_id,
                                struct wx_card_view *out, size_t cap)
{
    if (customer_id == 0 || customer_id > e->n_customers) return 0;
    size_t n = 0;
    for (uint32_t id = e->customers[customer_id - 1].cards; id != 0 && n < cap;
         id = e->cards[id - 1].next_of_holder) {
        if (wx_engine_card(e, id, &out[n]) == 0) n++;
    }
    return n;
}

int wx_engine_customer_by_id_hmac(const wx_engine_t *e, const uint8_t id_hmac[WX_REF_LEN],
                                  struct wx_customer_view *out)
{
    uint32_t idx = wx_index_find(&e->customer_ix, id_hmac);
    if (idx == UINT32_MAX) {
        return -1;
    }
    customer_view(e, idx, out);
    return 0;
}

void wx_engine_stats(const wx_engine_t *e, struct wx_engine_stats *out)
{
    memset(out, 0, sizeof *out);
    out->customers = e->n_customers;
    out->accounts = e->n_accounts;
    out->cards = e->n_cards;
    out->followers = e->n_followers;
    out->records = e->live_records;
    out->open_holds = e->open_holds;
    out->last_seq = e->last_seq;
    out->now_ms = e->now_ms;
    out->bytes =
        (size_t)e->cap_customers * sizeof *e->customers +
        (size_t)e->cap_accounts * sizeof *e->accounts + (size_t)e->cap_cards * sizeof *e->cards +
        e->arena_cap + (size_t)e->cap_records * sizeof *e->records +
        (size_t)e->cap_heap * sizeof *e->heap +
        (e->short_fifo.cap + e->long_fifo.cap) * sizeof(uint32_t) + wx_index_bytes(&e->card_ix) +
        wx_index_bytes(&e->customer_ix) + wx_index_bytes(&e->record_ix) +
        (size_t)e->cap_followers * sizeof *e->followers + wx_index_bytes(&e->follower_ix);
}

static bool results_equal(const struct wx_result *a, const struct wx_result *b)
{
    return a->reason == b->reason && a->approval == b->approval && a->id == b->id &&
           a->account_id == b->account_id && a->amount == b->amount && a->available == b->available;
}

int wx_engine_replay(wx_engine_t *e, uint64_t seq, const uint8_t *body, size_t len, char *err,
                     size_t errlen)
{
    struct wx_cmd cmd;
    struct wx_result want, got;
    struct wx_row row;
    if (wx_row_decode(body, len, &cmd, &want) != 0) {
        snprintf(err, errlen, "journal row %" PRIu64 " is corrupt", seq);
        return -1;
    }
    if (seq != e->last_seq + 1) {
        snprintf(err, errlen, "journal row %" PRIu64 " follows row %" PRIu64, seq, e->last_seq);
        return -1;
    }
    if (wx_engine_apply(e, &cmd, &got, &row) != 1) {
        snprintf(err, errlen, "journal row %" PRIu64 " (%s): replay decided nothing (%s)", seq,
                 wx_cmd_kind_name(cmd.kind), wx_reason_name(got.reason));
        return -1;
    }
    if (!results_equal(&want, &got) || row.len != len || memcmp(row.buf, body, len) != 0) {
        snprintf(err, errlen,
                 "journal row %" PRIu64 " (%s): recorded %s available %" PRId64
                 ", replay decided %s available %" PRId64,
                 seq, wx_cmd_kind_name(cmd.kind), wx_reason_name(want.reason), want.available,
                 wx_reason_name(got.reason), got.available);
        return -1;
    }
    return 0;
}

static const char *const reason_names[WX_R_COUNT][2] = {
    [WX_APPROVED] = {"APPROVED", "approved"},
    [WX_R_INSUFFICIENT_CREDIT] = {"INSUFFICIENT_CREDIT", "insufficient credit"},
    [WX_R_CARD_NOT_FOUND] = {"CARD_NOT_FOUND", "card not found"},
    [WX_R_CARD_NOT_ACTIVATED] = {"CARD_NOT_ACTIVATED", "card not activated"},
    [WX_R_CARD_LOCKED] = {"CARD_LOCKED", "card locked"},
    [WX_R_CARD_LOST] = {"CARD_LOST", "card reported lost"},
    [WX_R_CARD_STOLEN] = {"CARD_STOLEN", "card reported stolen"},
    [WX_R_CARD_CLOSED] = {"CARD_CLOSED", "card closed"},
    [WX_R_CARD_EXPIRED] = {"CARD_EXPIRED", "card expired"},
    [WX_R_WRONG_EXPIRY] = {"WRONG_EXPIRY", "wrong expiry date"},
    [WX_R_WRONG_CVV] = {"WRONG_CVV", "wrong CVV2"},
    [WX_R_INVALID_AMOUNT] = {"INVALID_AMOUNT", "amount must be between 0.01 and 10,000,000,000.00"},
    [WX_R_INVALID_CURRENCY] = {"INVALID_CURRENCY", "currency must be CNY (156)"},
    [WX_R_DUPLICATE_MISMATCH] = {"DUPLICATE_MISMATCH", "key already used with different content"},
    [WX_R_ORIGINAL_NOT_FOUND] = {"ORIGINAL_NOT_FOUND", "original transaction not found"},
    [WX_R_ALREADY_REVERSED] = {"ALREADY_REVERSED", "original transaction already reversed"},
    [WX_R_HOLD_CLOSED] = {"HOLD_CLOSED", "authorization already completed"},
    [WX_R_EXCEEDS_ORIGINAL] = {"EXCEEDS_ORIGINAL", "amount exceeds the original"},
    [WX_R_ACCOUNT_NOT_FOUND] = {"ACCOUNT_NOT_FOUND", "account not found"},
    [WX_R_CUSTOMER_NOT_FOUND] = {"CUSTOMER_NOT_FOUND", "customer not found"},
    [WX_R_CUSTOMER_EXISTS] = {"CUSTOMER_EXISTS", "a customer with this ID document exists"},
    [WX_R_INVALID_STATUS] = {"INVALID_STATUS", "status change not allowed"},
    [WX_R_INVALID_FIELD] = {"INVALID_FIELD", "malformed or missing field"},
    [WX_R_CAPACITY] = {"CAPACITY", "capacity limit reached"},
    [WX_R_BALANCE_OVERFLOW] = {"BALANCE_OVERFLOW", "balance would exceed its limit"},
    [WX_R_FOLLOWER_LIMIT] = {"FOLLOWER_LIMIT",
                             "customer already has the most WeChat followers bound"},
    [WX_R_FOLLOWER_TAKEN] = {"FOLLOWER_TAKEN", "WeChat follower bound to another customer"},
    [WX_R_FOLLOWER_NOT_BOUND] = {"FOLLOWER_NOT_BOUND", "WeChat follower not bound"},
};

const char *wx_reason_name(uint8_t reason)
{
    return reason < WX_R_COUNT ? reason_names[reason][0] : "UNKNOWN";
}

const char *wx_reason_str(uint8_t reason)
{
    return reason < WX_R_COUNT ? reason_names[reason][1] : "unknown reason";
}

const char *wx_cmd_kind_name(uint8_t kind)
{
    static const char *const names[WX_CMD_KIND_COUNT] = {
        [WX_CMD_NONE] = "none",
        [WX_CMD_CUSTOMER_ADD] = "customer-add",
        [WX_CMD_CARD_ISSUE] = "card-issue",
        [WX_CMD_CARD_ACTIVATE] = "card-activate",
        [WX_CMD_CARD_STATUS] = "card-status",
        [WX_CMD_LIMIT_SET] = "limit-set",
        [WX_CMD_TEMP_LIMIT_SET] = "temp-limit-set",
        [WX_CMD_AUTHORIZE] = "authorize",
        [WX_CMD_AUTH_INCREMENT] = "auth-increment",
        [WX_CMD_CAPTURE] = "capture",
        [WX_CMD_REVERSAL] = "reversal",
        [WX_CMD_REFUND] = "refund",
        [WX_CMD_REPAYMENT] = "repayment",
        [WX_CMD_FEE] = "fee",
        [WX_CMD_INTEREST] = "interest",
        [WX_CMD_TICK] = "tick",
        [WX_CMD_FOLLOWER_BIND] = "follower-bind",
        [WX_CMD_FOLLOWER_UNBIND] = "follower-unbind",
    };
    return kind < WX_CMD_KIND_COUNT ? names[kind] : "unknown";
}

const char *wx_card_status_name(uint8_t status)
{
    static const char *const names[] = {"not-activated", "active", "locked",
                                        "lost",          "stolen", "closed"};
    return status < sizeof names / sizeof names[0] ? names[status] : "unknown";
}

const char *wx_bind_via_name(uint8_t via)
{
    static const char *const names[] = {
        [WX_BIND_STAFF] = "staff",
        [WX_BIND_CARDHOLDER] = "cardholder",
        [WX_BIND_UNSUBSCRIBED] = "unsubscribed",
    };
    return via < sizeof names / sizeof names[0] ? names[via] : "unknown";
}

int64_t wx_engine_hold_total(const wx_engine_t *e, const char *key, size_t len)
{
    assert(len > 0 && len <= WX_KEY_MAX);
    /* The look-up only reads; the index functions take a mutable engine for the decisions. */
    const struct wx_record *r = wx_record_find_key((struct wx_engine *)e, key, len);
    return r != NULL && r->kind == WX_REC_HOLD ? r->total : -1;
}
