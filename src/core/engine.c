/*
 * engine.c - the engine's life cycle and its one entry point, wx_engine_apply.
 *
 * wx_engine_apply frames every decision the same way: validate and encode the command,
 * answer repeats from the record of the first answer, run the command's handler, and when
 * the handler decided something, number it, remember its answer and hand back the journal
 * row. Handlers (ops.c for customers, cards and accounts; auth.c for the card network's
 * commands; records.c for time passing) check everything before they change anything, so a
 * refusal leaves the state exactly as it was.
 */
#include "core/engine_int.h"

#include <assert.h>
#include <string.h>

#include "core/codec.h"
#include <stdlib.h>

#include "util/alloc.h"
#include "util/siphash.h"

static const uint8_t *card_key(const void *owner, uint32_t idx)
{
    const struct wx_engine *e = owner;
    return e->cards[idx].ref;
}

static const uint8_t *customer_key(const void *owner, uint32_t idx)
{
    const struct wx_engine *e = owner;
    return e->customers[idx].id_hmac;
}

static const uint8_t *record_key(const void *owner, uint32_t idx)
{
    const struct wx_engine *e = owner;
    return e->records[idx].key;
}

static const uint8_t *follower_key(const void *owner, uint32_t idx)
{
    const struct wx_engine *e = owner;
    return e->followers[idx].key;
}

wx_engine_t *wx_engine_new(const struct wx_engine_config *cfg)
{
    assert(cfg->hold_days > 0 && cfg->hold_days_long >= cfg->hold_days);
    assert(cfg->reference_days > cfg->hold_days_long);
    assert(cfg->idempotency_hours > 0);
    struct wx_engine *e = wx_calloc(1, sizeof *e);
    e->cfg = *cfg;
    wx_index_init(&e->card_ix, card_key, e);
    wx_index_init(&e->customer_ix, customer_key, e);
    wx_index_init(&e->record_ix, record_key, e);
    wx_index_init(&e->follower_ix, follower_key, e);
    wx_fifo_init(&e->short_fifo);
    wx_fifo_init(&e->long_fifo);
    /* Offset 0 of the arena is the empty string, so a zeroed offset is always valid. */
    wx_arena_add(e, "", 0);
    return e;
}

void wx_engine_free(wx_engine_t *e)
{
    if (e == NULL) {
        return;
    }
    wx_index_free(&e->card_ix);
    wx_index_free(&e->customer_ix);
    wx_index_free(&e->record_ix);
    wx_index_free(&e->follower_ix);
    free(e->customers);
    free(e->accounts);
    free(e->cards);
    free(e->followers);
    free(e->arena);
    free(e->records);
    free(e->heap);
    free(e->short_fifo.items);
    free(e->long_fifo.items);
    free(e);
}

void wx_key_hash(const struct wx_engine *e, const char *key, size_t len, uint8_t out[WX_REF_LEN])
{
    wx_siphash128(e->cfg.key_seed, key, len, out);
}

/* Commands whose answers are remembered under their key. Customer creation, card issue and
 * card activation are idempotent on their natural keys (ID document, card number, the card's
 * own state) instead, which costs no memory per card; ticks are never repeated. Follower
 * binds and unbinds are both: a bind of a bound pair is approved again under any key, and
 * a key's first answer is remembered, so that a late retry of an old unbind cannot undo a
 * newer binding of the same OpenID. */
static bool kind_remembered(uint8_t kind)
{
    return kind != WX_CMD_CUSTOMER_ADD && kind != WX_CMD_CARD_ISSUE &&
           kind != WX_CMD_CARD_ACTIVATE && kind != WX_CMD_TICK;
}

static enum wx_outcome dispatch(struct wx_decision *d)
{
    switch (d->cmd->kind) {
    case WX_CMD_CUSTOMER_ADD:
        return wx_do_customer_add(d);
    case WX_CMD_CARD_ISSUE:
        return wx_do_card_issue(d);
    case WX_CMD_CARD_ACTIVATE:
        return wx_do_card_activate(d);
    case WX_CMD_CARD_STATUS:
        return wx_do_card_status(d);
    case WX_CMD_LIMIT_SET:
    case WX_CMD_TEMP_LIMIT_SET:
        return wx_do_limit(d);
    case WX_CMD_AUTHORIZE:
        return wx_do_authorize(d);
    case WX_CMD_AUTH_INCREMENT:
        return wx_do_increment(d);
    case WX_CMD_CAPTURE:
        return wx_do_capture(d);
    case WX_CMD_REVERSAL:
        return wx_do_reversal(d);
    case WX_CMD_REFUND:
        return wx_do_refund(d);
    case WX_CMD_REPAYMENT:
    case WX_CMD_FEE:
    case WX_CMD_INTEREST:
        return wx_do_posting(d);
    case WX_CMD_TICK:
        return wx_do_tick(d);
    case WX_CMD_FOLLOWER_BIND:
        return wx_do_follower_bind(d);
    case WX_CMD_FOLLOWER_UNBIND:
        return wx_do_follower_unbind(d);
    default:
        return wx_refuse(d, WX_R_INVALID_FIELD);
    }
}

/* Fills res with the first answer stored in rec. */
static void answer_from_record(const struct wx_record *rec, struct wx_result *res)
{
    res->reason = rec->reason;
    res->repeat = 1;
    res->journaled = 1;
    res->approval = rec->approval;
    res->id = rec->id;
    res->account_id = rec->account;
    res->amount = rec->amount;
    res->available = rec->available;
    res->seq = rec->seq;
}

/* Looks the key up. Returns true when the command is fully answered (a repeat or a key
 * reused with other content); otherwise leaves d->tombstone for the handler. */
static bool answer_repeat(struct wx_decision *d)
{
    struct wx_record *rec = wx_record_find(d->e, d->key_hash);
    if (rec == NULL) {
        return false;
    }
    if (rec->kind == WX_REC_TOMBSTONE && d->cmd->kind == WX_CMD_AUTHORIZE) {
        d->tombstone = rec;
        return false;
    }
    if (rec->kind != WX_REC_TOMBSTONE && rec->cmd_kind == d->cmd->kind &&
        rec->fingerprint == d->fingerprint) {
        answer_from_record(rec, d->res);
        return true;
    }
    d->res->reason = WX_R_DUPLICATE_MISMATCH;
    return true;
}

static bool header_valid(const struct wx_cmd *cmd)
{
    return cmd->kind > WX_CMD_NONE && cmd->kind < WX_CMD_KIND_COUNT && cmd->key_len > 0 &&
           cmd->key_len <= WX_KEY_MAX && cmd->time_ms >= 0;
}

/* Numbers the decision and records it; called once the handler has changed the state. */
static void finish_journaled(struct wx_decision *d, struct wx_row *row, size_t head_len)
{
    struct wx_engine *e = d->e;
    e->last_seq++;
    assert(e->last_seq == d->seq);
    d->res->seq = d->seq;
    d->res->journaled = 1;
    if (d->res->reason == WX_APPROVED && d->res->approval == 0 && d->wants_approval) {
        d->res->approval = wx_approval_code(d->seq);
    }
    if (kind_remembered(d->cmd->kind)) {
        wx_record_remember(d);
    }
    size_t m = wx_result_encode(d->res, row->buf + head_len, sizeof row->buf - head_len);
    assert(m > 0); /* WX_ROW_MAX leaves room for any head plus a result */
    row->seq = d->seq;
    row->at_ms = d->cmd->time_ms;
    row->account_id = d->res->account_id;
    row->kind = d->cmd->kind;
    row->len = (uint32_t)(head_len + m);
}

int wx_engine_apply(wx_engine_t *e, const struct wx_cmd *cmd, struct wx_result *res,
                    struct wx_row *row)
{
    struct wx_row scratch;
    struct wx_decision d = {.e = e, .cmd = cmd, .res = res, .seq = e->last_seq + 1};
    memset(res, 0, sizeof *res);
    if (row == NULL) {
        row = &scratch;
    }
    if (!header_valid(cmd)) {
        res->reason = WX_R_INVALID_FIELD;
        return 0;
    }
    size_t body_off, body_len;
    size_t head_len = wx_cmd_encode_head(cmd, row->buf, sizeof row->buf, &body_off, &body_len);
    if (head_len == 0 || head_len > WX_ROW_MAX - WX_RESULT_MAX) {
        res->reason = WX_R_INVALID_FIELD;
        return 0;
    }
    if (kind_remembered(cmd->kind)) {
        wx_key_hash(e, cmd->key, cmd->key_len, d.key_hash);
        d.fingerprint = wx_siphash64(e->cfg.key_seed, row->buf + body_off, body_len) ^
                        ((uint64_t)cmd->kind << 56);
        if (answer_repeat(&d)) {
            return 0;
        }
        if (e->live_records + 2 > WX_RECORDS_MAX) {
            res->reason = WX_R_CAPACITY;
            return 0;
        }
    }
    /* Engine time never goes back; a refusal restores it, so it changes nothing. */
    int64_t before = e->now_ms;
    d.now = cmd->time_ms > e->now_ms ? cmd->time_ms : e->now_ms;
    e->now_ms = d.now;
    if (dispatch(&d) == WX_ANSWERED) {
        assert(e->last_seq == d.seq - 1);
        e->now_ms = before;
        return 0;
    }
    finish_journaled(&d, row, head_len);
    return 1;
}

enum wx_outcome wx_refuse(struct wx_decision *d, uint8_t reason)
{
    assert(reason != WX_APPROVED);
    d->res->reason = reason;
    return WX_ANSWERED;
}

uint32_t wx_approval_code(uint64_t seq)
{
    /* Deterministic (replay gives the same code) and spread over 100000..999999. */
    uint64_t h = seq * 0x9E3779B97F4A7C15ull;
    return 100000u + (uint32_t)((h >> 32) % 900000u);
}

int64_t wx_available(const struct wx_engine *e, const struct wx_account *a)
{
    int64_t temp = e->now_ms < a->temp_expires_ms ? a->temp_limit : 0;
    /* Every term is bounded by WX_BALANCE_MAX, so this cannot overflow. */
    return a->credit_limit + temp - a->posted - a->held;
}

uint64_t wx_engine_last_seq(const wx_engine_t *e)
{
    return e->last_seq;
}
