/*
 * alert.c - from a journal row to an alert: which rows say something to a cardholder, and
 * what the alert copies out of them.
 *
 * Pure: classify the row (does it say anything to the cardholder?) and copy what the alert
 * needs out of the row and the engine's read-only views, so that the alert stays valid after
 * both move on. Which rows alert, and why, is the table in notify.h above wx_alert_from_row;
 * each rule is one case of alert_kind_of below. The words are rendered in render.c;
 * recipients and the SMS policy live in policy.c.
 *
 * Merchant names and cities come from the card network, that is from outside: they are
 * copied here as received, bounded but not cleaned, so that history keeps the bytes; render.c
 * cleans them when it writes them.
 */
#include "notify/notify.h"

#include <assert.h>
#include <string.h>

#define MCC_CASH_MANUAL 6010 /* cash disbursed at a counter */
#define MCC_CASH_ATM    6011 /* cash at an ATM */

/* ---- which rows alert ---- */

/* Declines that the network causes by its own bookkeeping (a late original after its
 * reversal, a follow-up of something gone): the cardholder did nothing and nothing moved. */
static bool decline_alerts(uint8_t reason)
{
    switch (reason) {
    case WX_R_ALREADY_REVERSED:
    case WX_R_ORIGINAL_NOT_FOUND:
    case WX_R_HOLD_CLOSED:
    case WX_R_EXCEEDS_ORIGINAL:
    case WX_R_DUPLICATE_MISMATCH:
        return false;
    default:
        return true;
    }
}

/* The rules table of notify.h, one case per command kind. */
static uint8_t alert_kind_of(const struct wx_cmd *cmd, const struct wx_result *res,
                             int64_t hold_amount)
{
    bool ok = res->reason == WX_APPROVED;
    if (res->repeat) {
        return WX_ALERT_NONE;
    }
    switch (cmd->kind) {
    case WX_CMD_AUTHORIZE:
        if (cmd->auth.type == WX_AUTH_BALANCE_INQUIRY) {
            return WX_ALERT_NONE;
        }
        if (!ok) {
            return decline_alerts(res->reason) ? WX_ALERT_DECLINED : WX_ALERT_NONE;
        }
        return cmd->auth.type == WX_AUTH_CASH ? WX_ALERT_CASH : WX_ALERT_PURCHASE;
    case WX_CMD_AUTH_INCREMENT:
        if (!ok) {
            return decline_alerts(res->reason) ? WX_ALERT_DECLINED : WX_ALERT_NONE;
        }
        return WX_ALERT_INCREMENT;
    case WX_CMD_CAPTURE:
        if (!ok || (hold_amount >= 0 && hold_amount == res->amount)) {
            return WX_ALERT_NONE;
        }
        return WX_ALERT_CAPTURE;
    case WX_CMD_REVERSAL:
        return ok ? WX_ALERT_REVERSAL : WX_ALERT_NONE;
    case WX_CMD_REFUND:
        return ok ? WX_ALERT_REFUND : WX_ALERT_NONE;
    case WX_CMD_REPAYMENT:
        return ok ? WX_ALERT_REPAYMENT : WX_ALERT_NONE;
    case WX_CMD_LIMIT_SET:
        return ok ? WX_ALERT_LIMIT : WX_ALERT_NONE;
    case WX_CMD_TEMP_LIMIT_SET:
        return ok ? WX_ALERT_TEMP_LIMIT : WX_ALERT_NONE;
    case WX_CMD_CARD_ACTIVATE:
    case WX_CMD_CARD_STATUS:
        return ok ? WX_ALERT_CARD_STATUS : WX_ALERT_NONE;
    default:
        return WX_ALERT_NONE; /* customers, card issue, fees, interest, ticks, followers */
    }
}

/* Alerts about the account rather than one card: shown on the main card. */
static bool account_level(uint8_t kind)
{
    return kind == WX_ALERT_REPAYMENT || kind == WX_ALERT_LIMIT || kind == WX_ALERT_TEMP_LIMIT;
}

static void holder_fill(struct wx_alert *a, const struct wx_card_view *k,
                        const struct wx_account_view *acc)
{
    a->card_id = k->id;
    a->last4 = k->last4;
    a->customer_id = k->customer_id;
    a->main_customer_id = acc->customer_id;
    a->account_id = acc->id;
    a->supplementary = k->supplementary != 0;
}

/* The card the row names and its account; -1 when either is unknown or they disagree. */
static int holder_of_card(const wx_engine_t *e, uint32_t card_id, uint32_t account_id,
                          struct wx_alert *a)
{
    struct wx_card_view k;
    struct wx_account_view acc;
    if (wx_engine_card(e, card_id, &k) != 0) {
        return -1;
    }
    if (account_id != 0 && account_id != k.account_id) {
        return -1;
    }
    if (wx_engine_account(e, k.account_id, &acc) != 0) {
        return -1;
    }
    holder_fill(a, &k, &acc);
    return 0;
}

static int holder_of_account(const wx_engine_t *e, uint32_t account_id, struct wx_alert *a)
{
    struct wx_card_view k;
    struct wx_account_view acc;
    if (wx_engine_account(e, account_id, &acc) != 0) {
        return -1;
    }
    if (wx_engine_card(e, acc.main_card_id, &k) != 0) {
        return -1;
    }
    holder_fill(a, &k, &acc);
    return 0;
}

/* Copies a bounded string that may lack its NUL (a command built in memory). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void merchant_copy(struct wx_alert *a, const struct wx_merchant *m)
{
    copy_str(a->merchant_name, sizeof a->merchant_name, m->name);
    copy_str(a->merchant_city, sizeof a->merchant_city, m->city);
    a->channel = m->channel;
    a->cross_border = m->cross_border != 0;
    a->mcc = m->mcc;
    a->cash = m->channel == WX_CHANNEL_ATM || m->mcc == MCC_CASH_MANUAL || m->mcc == MCC_CASH_ATM;
    if (m->txn_currency != 0 && m->txn_currency != WX_CURRENCY_CNY && m->txn_amount > 0) {
        a->txn_amount = m->txn_amount;
        a->txn_currency = m->txn_currency;
    }
}

/* What the kind of command tells beyond the holder: merchant, amounts, limits, status. */
static void details_fill(struct wx_alert *a, const struct wx_cmd *cmd, const struct wx_result *res,
                         int64_t hold_amount)
{
    a->channel = WX_CHANNEL_INTERNAL;
    a->amount = res->amount;
    switch (cmd->kind) {
    case WX_CMD_AUTHORIZE:
        merchant_copy(a, &cmd->auth.merchant);
        a->cash = a->cash || cmd->auth.type == WX_AUTH_CASH;
        break;
    case WX_CMD_AUTH_INCREMENT:
    case WX_CMD_CAPTURE:
    case WX_CMD_REVERSAL:
    case WX_CMD_REFUND:
        merchant_copy(a, &cmd->follow.merchant);
        break;
    case WX_CMD_LIMIT_SET:
    case WX_CMD_TEMP_LIMIT_SET:
        a->amount = 0;
        a->new_limit = cmd->limit.amount;
        if (cmd->kind == WX_CMD_TEMP_LIMIT_SET && cmd->limit.amount > 0) {
            a->limit_expires_ms = cmd->limit.expires_ms;
        }
        break;
    case WX_CMD_CARD_ACTIVATE:
    case WX_CMD_CARD_STATUS:
        a->amount = 0;
        a->activation = cmd->kind == WX_CMD_CARD_ACTIVATE;
        a->card_status = a->activation ? WX_CARD_ACTIVE : cmd->card_status.status;
        break;
    default:
        break; /* a repayment: the amount is all */
    }
    a->hold_amount = a->kind == WX_ALERT_CAPTURE && hold_amount >= 0 ? hold_amount : -1;
}

int wx_alert_from_row(const wx_engine_t *e, const struct wx_cmd *cmd, const struct wx_result *res,
                      uint64_t seq, int64_t at_ms, int64_t hold_amount, struct wx_alert *out)
{
    assert(e != NULL);
    assert(cmd != NULL && res != NULL && out != NULL);
    uint8_t kind = alert_kind_of(cmd, res, hold_amount);
    if (kind == WX_ALERT_NONE) {
        return 0;
    }
    struct wx_alert a;
    memset(&a, 0, sizeof a);
    a.seq = seq;
    a.at_ms = at_ms;
    a.kind = kind;
    a.cmd_kind = cmd->kind;
    a.reason = res->reason;
    a.available_after = res->available;
    int rc = account_level(kind) ? holder_of_account(e, res->account_id, &a)
                                 : holder_of_card(e, res->id, res->account_id, &a);
    if (rc != 0) {
        return -1;
    }
    details_fill(&a, cmd, res, hold_amount);
    *out = a;
    return 1;
}
