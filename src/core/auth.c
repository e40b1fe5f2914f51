/*
 * auth.c - the card network's commands: authorize, increment, capture, reverse, refund.
 *
 * An authorization runs a fixed pipeline of checks, in DESIGN.md's order: card status and
 * expiry, then the cardholder's own controls and the risk rules (their stages join the
 * table below when those modules land), then available credit. An approval holds credit
 * (or posts at once for authorize-and-capture); captures turn holds into postings, within a
 * tolerance above the hold; reversals release holds or credit postings back; a reversal
 * that arrives before its original leaves a tombstone so the late original is declined.
 *
 * Follow-up commands (capture, reversal, refund) are never declined for credit or card
 * status: the money has already moved at the merchant.
 */
#include "core/engine_int.h"

#include <assert.h>
#include <string.h>

#include "util/timeutil.h"

#define MS_PER_DAY 86400000LL

/* What the authorization stages look at. */
struct auth_check {
    const struct wx_engine *e;
    const struct wx_cmd *cmd;
    const struct wx_card *card;
    const struct wx_account *account;
    int64_t amount; /* credit the command needs */
};

typedef uint8_t (*auth_stage_fn)(const struct auth_check *c);

static uint8_t stage_card_status(const struct auth_check *c)
{
    static const uint8_t by_status[] = {
        [WX_CARD_NOT_ACTIVATED] = WX_R_CARD_NOT_ACTIVATED,
        [WX_CARD_ACTIVE] = WX_APPROVED,
        [WX_CARD_LOCKED] = WX_R_CARD_LOCKED,
        [WX_CARD_LOST] = WX_R_CARD_LOST,
        [WX_CARD_STOLEN] = WX_R_CARD_STOLEN,
        [WX_CARD_CLOSED] = WX_R_CARD_CLOSED,
    };
    assert(c->card->status <= WX_CARD_CLOSED);
    return by_status[c->card->status];
}

/* Expiry and CVV2 as presented (absent fields are not checked), then the card's own end. */
static uint8_t stage_card_expiry(const struct auth_check *c)
{
    if (c->cmd->kind != WX_CMD_AUTHORIZE) {
        return WX_APPROVED;
    }
    if (c->cmd->auth.expiry != 0 && c->cmd->auth.expiry != c->card->expiry) {
        return WX_R_WRONG_EXPIRY;
    }
    if (c->cmd->auth.cvv_tag != 0 && c->cmd->auth.cvv_tag != c->card->cvv_tag) {
        return WX_R_WRONG_CVV;
    }
    if (wx_yymm_of_ms(c->cmd->time_ms) > c->card->expiry) {
        return WX_R_CARD_EXPIRED;
    }
    return WX_APPROVED;
}

static uint8_t stage_credit(const struct auth_check *c)
{
    return c->amount <= wx_available(c->e, c->account) ? WX_APPROVED : WX_R_INSUFFICIENT_CREDIT;
}

/* The pipeline. The cardholder's controls ("security guard") and the risk score go between
 * expiry and credit, each as one more stage with the same signature. */
static const auth_stage_fn auth_stages[] = {
    stage_card_status,
    stage_card_expiry,
    stage_credit,
};

static uint8_t run_stages(const struct auth_check *c)
{
    for (size_t i = 0; i < sizeof auth_stages / sizeof auth_stages[0]; i++) {
        uint8_t reason = auth_stages[i](c);
        if (reason != WX_APPROVED) {
            return reason;
        }
    }
    return WX_APPROVED;
}

/* Airlines, car rental and lodging authorize estimates and capture much later. */
static bool long_hold_mcc(uint16_t mcc)
{
    return (mcc >= 3000 && mcc <= 3999) || mcc == 4511 || mcc == 7011 || mcc == 7512;
}

static int64_t hold_expiry(const struct wx_decision *d, uint16_t mcc)
{
    int days = long_hold_mcc(mcc) ? d->e->cfg.hold_days_long : d->e->cfg.hold_days;
    return d->now + (int64_t)days * MS_PER_DAY;
}

static bool amount_valid(int64_t amount)
{
    return amount > 0 && amount <= WX_AMOUNT_MAX;
}

static bool balance_fits(const struct wx_account *a, int64_t posted_delta, int64_t held_delta)
{
    int64_t posted = a->posted + posted_delta;
    int64_t held = a->held + held_delta;
    return posted <= WX_BALANCE_MAX && posted >= -WX_BALANCE_MAX && held <= WX_BALANCE_MAX;
}

/* Fills the answer's account fields; available is taken after the change. */
static void answer(struct wx_decision *d, uint8_t reason, const struct wx_account *a,
                   uint32_t card_id, int64_t amount)
{
    d->res->reason = reason;
    d->res->id = card_id;
    d->res->account_id = (uint32_t)(a - d->e->accounts) + 1;
    d->res->amount = amount;
    d->res->available = wx_available(d->e, a);
}

static const struct wx_card *card_by_ref(struct wx_engine *e, const uint8_t ref[WX_REF_LEN])
{
    uint32_t idx = wx_index_find(&e->card_ix, ref);
    return idx == UINT32_MAX ? NULL : &e->cards[idx];
}

static uint32_t card_id_of(const struct wx_engine *e, const struct wx_card *k)
{
    return (uint32_t)(k - e->cards) + 1;
}

enum wx_outcome wx_do_authorize(struct wx_decision *d)
{
    struct wx_engine *e = d->e;
    const struct wx_cmd *cmd = d->cmd;
    bool inquiry = cmd->auth.type == WX_AUTH_BALANCE_INQUIRY;
    if (cmd->auth.type > WX_AUTH_BALANCE_INQUIRY || cmd->auth.capture > 1 || cmd->auth.advice > 1) {
        return wx_refuse(d, WX_R_INVALID_FIELD);
    }
    if (inquiry ? cmd->auth.amount != 0 : !amount_valid(cmd->auth.amount)) {
        return wx_refuse(d, WX_R_INVALID_AMOUNT);
    }
    if (cmd->auth.currency != WX_CURRENCY_CNY) {
        return wx_refuse(d, WX_R_INVALID_CURRENCY);
    }
    const struct wx_card *k = card_by_ref(e, cmd->auth.ref);
    if (k == NULL) {
        return wx_refuse(d, WX_R_CARD_NOT_FOUND);
    }
    struct wx_account *a = wx_account_get(e, k->account);
    assert(a != NULL);
    if (d->tombstone != NULL) {
        answer(d, WX_R_ALREADY_REVERSED, a, card_id_of(e, k), 0);
        return WX_DECIDED;
    }
    struct auth_check check = {
        .e = e, .cmd = cmd, .card = k, .account = a, .amount = cmd->auth.amount};
    uint8_t reason = cmd->auth.advice ? WX_APPROVED : run_stages(&check);
    if (inquiry) {
        answer(d, reason, a, card_id_of(e, k), 0);
        return WX_ANSWERED; /* a question changes nothing and is not journaled */
    }
    if (reason == WX_APPROVED && !balance_fits(a, cmd->auth.amount, cmd->auth.amount)) {
        reason = WX_R_BALANCE_OVERFLOW;
    }
    if (reason != WX_APPROVED) {
        answer(d, reason, a, card_id_of(e, k), cmd->auth.amount);
        return WX_DECIDED;
    }
    d->wants_approval = true;
    d->rec_card = card_id_of(e, k);
    d->rec_total = cmd->auth.amount;
    d->rec_mcc = cmd->auth.merchant.mcc;
    if (cmd->auth.capture) {
        a->posted += cmd->auth.amount;
        d->rec_kind = WX_REC_POSTING;
    } else {
        a->held += cmd->auth.amount;
        d->rec_kind = WX_REC_HOLD;
        d->rec_expires_ms = hold_expiry(d, cmd->auth.merchant.mcc);
    }
    answer(d, WX_APPROVED, a, d->rec_card, cmd->auth.amount);
    return WX_DECIDED;
}

/* Finds the original a follow-up names. NULL when the command names none or it is unknown. */
static struct wx_record *original(struct wx_decision *d)
{
    if (d->cmd->follow.orig_len == 0) {
        return NULL;
    }
    return wx_record_find_key(d->e, d->cmd->follow.orig_key, d->cmd->follow.orig_len);
}

/* Common checks of follow-up commands; 0 when they pass. */
static uint8_t follow_invalid(const struct wx_cmd *cmd, bool amount_may_be_zero)
{
    if (cmd->follow.orig_len > WX_KEY_MAX || cmd->follow.final > 1 || cmd->follow.advice > 1) {
        return WX_R_INVALID_FIELD;
    }
    /* A follow-up cannot be its own original: a reversal naming itself would leave a
     * tombstone under the very key its own answer is remembered by. */
    if (cmd->follow.orig_len == cmd->key_len &&
        memcmp(cmd->follow.orig_key, cmd->key, cmd->key_len) == 0) {
        return WX_R_INVALID_FIELD;
    }
    if (!(amount_may_be_zero && cmd->follow.amount == 0) && !amount_valid(cmd->follow.amount)) {
        return WX_R_INVALID_AMOUNT;
    }
    if (cmd->follow.currency != WX_CURRENCY_CNY) {
        return WX_R_INVALID_CURRENCY;
    }
    return 0;
}

/* A follow-up whose original is known but cannot be acted on: a journaled decline. */
static enum wx_outcome decline_on(struct wx_decision *d, const struct wx_record *orig,
                                  uint8_t reason)
{
    struct wx_account *a = wx_account_get(d->e, orig->account);
    if (a == NULL) {
        return wx_refuse(d, reason); /* a tombstone: there is no account to journal against */
    }
    answer(d, reason, a, orig->card, d->cmd->follow.amount);
    return WX_DECIDED;
}

enum wx_outcome wx_do_increment(struct wx_decision *d)
{
    uint8_t bad = follow_invalid(d->cmd, false);
    if (bad) {
        return wx_refuse(d, bad);
    }
    struct wx_record *hold = original(d);
    if (hold == NULL) {
        return wx_refuse(d, WX_R_ORIGINAL_NOT_FOUND);
    }
    if (hold->kind != WX_REC_HOLD) {
        return decline_on(d, hold, WX_R_ORIGINAL_NOT_FOUND);
    }
    if (hold->flags & WX_REC_CLOSED) {
        return decline_on(d, hold, WX_R_HOLD_CLOSED);
    }
    struct wx_account *a = wx_account_get(d->e, hold->account);
    const struct wx_card *k = wx_card_get(d->e, hold->card);
    int64_t amount = d->cmd->follow.amount;
    struct auth_check check = {.e = d->e, .cmd = d->cmd, .card = k, .account = a, .amount = amount};
    uint8_t reason = run_stages(&check);
    if (reason == WX_APPROVED && !balance_fits(a, 0, amount)) {
        reason = WX_R_BALANCE_OVERFLOW;
    }
    if (reason != WX_APPROVED) {
        answer(d, reason, a, hold->card, amount);
        return WX_DECIDED;
    }
    a->held += amount;
    hold->total += amount;
    hold->open += amount;
    d->wants_approval = true;
    answer(d, WX_APPROVED, a, hold->card, amount);
    return WX_DECIDED;
}

/* Posts a debit with no hold behind it (clearing without authorization, or after expiry). */
static enum wx_outcome force_post(struct wx_decision *d, struct wx_account *a, uint32_t card_id)
{
    int64_t amount = d->cmd->follow.amount;
    if (!balance_fits(a, amount, 0)) {
        return wx_refuse(d, WX_R_BALANCE_OVERFLOW);
    }
    a->posted += amount;
    d->rec_kind = WX_REC_POSTING;
    d->rec_card = card_id;
    d->rec_total = amount;
    answer(d, WX_APPROVED, a, card_id, amount);
    return WX_DECIDED;
}

static enum wx_outcome capture_hold(struct wx_decision *d, struct wx_record *hold)
{
    struct wx_account *a = wx_account_get(d->e, hold->account);
    int64_t amount = d->cmd->follow.amount;
    if (hold->flags & WX_REC_EXPIRED) {
        return force_post(d, a, hold->card); /* clearing after the hold lapsed still posts */
    }
    if (hold->flags & WX_REC_CLOSED) {
        bool reversed = (hold->flags & WX_REC_REVERSED) != 0;
        return decline_on(d, hold, reversed ? WX_R_ALREADY_REVERSED : WX_R_HOLD_CLOSED);
    }
    int64_t ceiling = hold->total + hold->total * d->e->cfg.capture_tolerance_pct / 100;
    bool beyond = amount > ceiling - hold->settled;
    if (beyond && !d->cmd->follow.advice) {
        return decline_on(d, hold, WX_R_EXCEEDS_ORIGINAL);
    }
    if (!balance_fits(a, amount, 0)) {
        return wx_refuse(d, WX_R_BALANCE_OVERFLOW);
    }
    int64_t release = amount < hold->open && !d->cmd->follow.final ? amount : hold->open;
    a->posted += amount;
    hold->settled += amount;
    if (beyond) {
        hold->flags |= WX_REC_ADVISED; /* cleared beyond the tolerance by an advice */
    }
    wx_hold_release(d->e, hold, release);
    d->rec_kind = WX_REC_POSTING;
    d->rec_card = hold->card;
    d->rec_total = amount;
    answer(d, WX_APPROVED, a, hold->card, amount);
    return WX_DECIDED;
}

enum wx_outcome wx_do_capture(struct wx_decision *d)
{
    uint8_t bad = follow_invalid(d->cmd, false);
    if (bad) {
        return wx_refuse(d, bad);
    }
    struct wx_record *orig = original(d);
    if (orig != NULL && orig->kind == WX_REC_HOLD) {
        return capture_hold(d, orig);
    }
    if (orig != NULL) {
        /* A tombstone, or the declined late original that took its place. */
        bool reversed = orig->kind == WX_REC_TOMBSTONE || (orig->cmd_kind == WX_CMD_AUTHORIZE &&
                                                           orig->reason == WX_R_ALREADY_REVERSED);
        return decline_on(d, orig, reversed ? WX_R_ALREADY_REVERSED : WX_R_HOLD_CLOSED);
    }
    const struct wx_card *k = card_by_ref(d->e, d->cmd->follow.ref);
    if (k == NULL) {
        return wx_refuse(d,
                         d->cmd->follow.orig_len ? WX_R_ORIGINAL_NOT_FOUND : WX_R_CARD_NOT_FOUND);
    }
    return force_post(d, wx_account_get(d->e, k->account), card_id_of(d->e, k));
}

/* Reverses what is left of a hold or a posting; amount 0 means everything left. */
static enum wx_outcome reverse_record(struct wx_decision *d, struct wx_record *orig)
{
    struct wx_account *a = wx_account_get(d->e, orig->account);
    int64_t want = d->cmd->follow.amount;
    bool is_hold = orig->kind == WX_REC_HOLD;
    if (is_hold && (orig->flags & WX_REC_CLOSED)) {
        bool reversed = (orig->flags & WX_REC_REVERSED) != 0;
        return decline_on(d, orig, reversed ? WX_R_ALREADY_REVERSED : WX_R_HOLD_CLOSED);
    }
    if (!is_hold && orig->open == 0) {
        return decline_on(d, orig, WX_R_ALREADY_REVERSED);
    }
    int64_t amount = want == 0 ? orig->open : want;
    if (amount > orig->open) {
        return decline_on(d, orig, WX_R_EXCEEDS_ORIGINAL);
    }
    if (!is_hold && !balance_fits(a, -amount, 0)) {
        return wx_refuse(d, WX_R_BALANCE_OVERFLOW);
    }
    if (is_hold) {
        bool whole = amount == orig->open && orig->settled == 0;
        wx_hold_release(d->e, orig, amount);
        /* A reversal lowers the authorized amount, and with it the capture ceiling: what
         * was given back cannot be captured again through the tolerance. */
        orig->total -= amount;
        if (whole) {
            orig->flags |= WX_REC_REVERSED;
        }
    } else {
        a->posted -= amount;
        orig->open -= amount;
        if (orig->open == 0) {
            orig->flags |= WX_REC_REVERSED;
        }
    }
    answer(d, WX_APPROVED, a, orig->card, amount);
    return WX_DECIDED;
}

enum wx_outcome wx_do_reversal(struct wx_decision *d)
{
    uint8_t bad = follow_invalid(d->cmd, true);
    if (bad) {
        return wx_refuse(d, bad);
    }
    if (d->cmd->follow.orig_len == 0) {
        return wx_refuse(d, WX_R_INVALID_FIELD);
    }
    struct wx_record *orig = original(d);
    if (orig == NULL) {
        /* The reversal overtook its original: remember it so the original is declined. */
        wx_record_tombstone(d, d->cmd->follow.orig_key, d->cmd->follow.orig_len);
        d->res->reason = WX_R_ORIGINAL_NOT_FOUND;
        return WX_DECIDED;
    }
    switch (orig->kind) {
    case WX_REC_HOLD:
    case WX_REC_POSTING:
        return reverse_record(d, orig);
    case WX_REC_TOMBSTONE:
        return wx_refuse(d, WX_R_ALREADY_REVERSED);
    default:
        /* The original was declined: nothing was held, so nothing is left to release. */
        if (orig->reason == WX_APPROVED) {
            return decline_on(d, orig, WX_R_HOLD_CLOSED);
        }
        return decline_on(d, orig, WX_R_ALREADY_REVERSED);
    }
}

enum wx_outcome wx_do_refund(struct wx_decision *d)
{
    uint8_t bad = follow_invalid(d->cmd, false);
    if (bad) {
        return wx_refuse(d, bad);
    }
    int64_t amount = d->cmd->follow.amount;
    struct wx_record *orig = original(d);
    if (orig != NULL && orig->kind == WX_REC_POSTING) {
        if (amount > orig->open) {
            return decline_on(d, orig, WX_R_EXCEEDS_ORIGINAL);
        }
        struct wx_account *a = wx_account_get(d->e, orig->account);
        if (!balance_fits(a, -amount, 0)) {
            return wx_refuse(d, WX_R_BALANCE_OVERFLOW);
        }
        orig->open -= amount; /* a refunded amount can no longer be reversed, nor refunded */
        a->posted -= amount;
        answer(d, WX_APPROVED, a, orig->card, amount);
        return WX_DECIDED;
    }
    /* Refunds often cannot be matched to their purchase: credit the card named. */
    const struct wx_card *k = card_by_ref(d->e, d->cmd->follow.ref);
    if (k == NULL) {
        return wx_refuse(d, WX_R_CARD_NOT_FOUND);
    }
    struct wx_account *a = wx_account_get(d->e, k->account);
    if (!balance_fits(a, -amount, 0)) {
        return wx_refuse(d, WX_R_BALANCE_OVERFLOW);
    }
    a->posted -= amount;
    answer(d, WX_APPROVED, a, card_id_of(d->e, k), amount);
    return WX_DECIDED;
}
