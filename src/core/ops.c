/*
 * ops.c - the bank's own commands: customers, cards and their accounts, limits, card status,
 * repayments, fees and interest.
 *
 * Customers and cards are idempotent on their natural keys (the ID document's HMAC, the
 * card number's HMAC): issuing the same card twice with the same details answers the first
 * issue again; with other details it is refused. Each handler validates everything first
 * and changes state only on its last lines.
 */
#include "core/engine_int.h"

#include <assert.h>
#include <string.h>

#include <stdlib.h>

#include "util/alloc.h"

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

/* Grows a table of `size`-byte items so that one more fits. */
void *wx_table_reserve(void *items, uint32_t n, uint32_t *cap, size_t size)
{
    if (n < *cap) {
        return items;
    }
    *cap = *cap ? *cap * 2 : 1024;
    items = wx_reallocarray(items, *cap, size);
    wx_advise_huge(items, (size_t)*cap * size);
    return items;
}

uint32_t wx_arena_add(struct wx_engine *e, const char *s, size_t len)
{
    assert(len < UINT32_MAX / 2);
    while ((uint64_t)e->arena_len + len + 1 > e->arena_cap) {
        assert(e->arena_cap < UINT32_MAX / 2);
        e->arena_cap = e->arena_cap ? e->arena_cap * 2 : 65536;
        e->arena = wx_realloc(e->arena, e->arena_cap);
    }
    uint32_t off = e->arena_len;
    memcpy(e->arena + off, s, len);
    e->arena[off + len] = '\0';
    e->arena_len += (uint32_t)len + 1;
    return off;
}

struct wx_card *wx_card_get(struct wx_engine *e, uint32_t card_id)
{
    return card_id >= 1 && card_id <= e->n_cards ? &e->cards[card_id - 1] : NULL;
}

struct wx_account *wx_account_get(struct wx_engine *e, uint32_t account_id)
{
    return account_id >= 1 && account_id <= e->n_accounts ? &e->accounts[account_id - 1] : NULL;
}

static bool mobile_valid(const char *m)
{
    size_t n = strlen(m);
    size_t i = m[0] == '+' ? 1 : 0;
    if (n - i < 5 || n > WX_MOBILE_MAX) {
        return false;
    }
    for (; i < n; i++) {
        if (m[i] < '0' || m[i] > '9') {
            return false;
        }
    }
    return true;
}

/* A name is 1..WX_NAME_MAX bytes with no control characters (UTF-8 is left as is). */
static bool name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WX_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

static bool last4_valid(const char *s)
{
    if (strlen(s) != 4) {
        return false;
    }
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == 'X' || c == 'x')) {
            return false;
        }
    }
    return true;
}

static bool customer_same(const struct wx_engine *e, const struct wx_customer *c,
                          const struct wx_cmd *cmd)
{
    return strcmp(e->arena + c->name_off, cmd->customer.name) == 0 &&
           strcmp(e->arena + c->mobile_off, cmd->customer.mobile) == 0 &&
           memcmp(c->id_last4, cmd->customer.id_last4, 4) == 0;
}

enum wx_outcome wx_do_customer_add(struct wx_decision *d)
{
    struct wx_engine *e = d->e;
    const struct wx_cmd *cmd = d->cmd;
    if (!name_valid(cmd->customer.name) || !mobile_valid(cmd->customer.mobile) ||
        !last4_valid(cmd->customer.id_last4) || all_zero(cmd->customer.id_hmac, WX_REF_LEN)) {
        return wx_refuse(d, WX_R_INVALID_FIELD);
    }
    uint32_t idx = wx_index_find(&e->customer_ix, cmd->customer.id_hmac);
    if (idx != UINT32_MAX) {
        if (!customer_same(e, &e->customers[idx], cmd)) {
            return wx_refuse(d, WX_R_CUSTOMER_EXISTS);
        }
        d->res->repeat = 1;
        d->res->id = idx + 1;
        d->res->seq = e->last_seq; /* conservatively: everything decided so far */
        return WX_ANSWERED;
    }
    if (e->n_customers >= WX_CUSTOMERS_MAX) {
        return wx_refuse(d, WX_R_CAPACITY);
    }
    e->customers =
        wx_table_reserve(e->customers, e->n_customers, &e->cap_customers, sizeof *e->customers);
    struct wx_customer *c = &e->customers[e->n_customers];
    memset(c, 0, sizeof *c);
    memcpy(c->id_hmac, cmd->customer.id_hmac, WX_REF_LEN);
    memcpy(c->id_last4, cmd->customer.id_last4, 4);
    c->name_off = wx_arena_add(e, cmd->customer.name, strlen(cmd->customer.name));
    c->mobile_off = wx_arena_add(e, cmd->customer.mobile, strlen(cmd->customer.mobile));
    wx_index_insert(&e->customer_ix, c->id_hmac, e->n_customers);
    e->n_customers++;
    d->res->id = e->n_customers;
    return WX_DECIDED;
}

static bool expiry_valid(uint16_t yymm)
{
    return yymm % 100 >= 1 && yymm % 100 <= 12;
}

/* The card's own fields; who holds it and which account it joins are checked apart, so
 * that an unknown customer or account is refused with its own reason. */
static bool card_issue_valid(const struct wx_cmd *cmd)
{
    if (cmd->card.account_id == 0 &&
        (cmd->card.credit_limit < 0 || cmd->card.credit_limit > WX_LIMIT_MAX ||
         cmd->card.statement_day < 1 || cmd->card.statement_day > 28)) {
        return false;
    }
    return !all_zero(cmd->card.ref, WX_REF_LEN) && cmd->card.first6 >= 100000 &&
           cmd->card.first6 <= 999999 && cmd->card.last4 <= 9999 &&
           expiry_valid(cmd->card.expiry) && cmd->card.pan_enc_len > 0 &&
           cmd->card.pan_enc_len <= WX_PAN_ENC_MAX;
}

static bool card_same(const struct wx_card *k, const struct wx_cmd *cmd)
{
    return k->customer == cmd->card.customer_id &&
           (cmd->card.account_id == 0 || k->account == cmd->card.account_id) &&
           k->expiry == cmd->card.expiry && k->cvv_tag == cmd->card.cvv_tag &&
           k->supplementary == (cmd->card.account_id != 0);
}

static uint32_t account_open(struct wx_engine *e, const struct wx_cmd *cmd, uint32_t card_id)
{
    e->accounts =
        wx_table_reserve(e->accounts, e->n_accounts, &e->cap_accounts, sizeof *e->accounts);
    struct wx_account *a = &e->accounts[e->n_accounts++];
    memset(a, 0, sizeof *a);
    a->credit_limit = cmd->card.credit_limit;
    a->customer = cmd->card.customer_id;
    a->main_card = card_id;
    a->currency = WX_CURRENCY_CNY;
    a->statement_day = cmd->card.statement_day;
    return e->n_accounts;
}

enum wx_outcome wx_do_card_issue(struct wx_decision *d)
{
    struct wx_engine *e = d->e;
    const struct wx_cmd *cmd = d->cmd;
    if (!card_issue_valid(cmd)) {
        return wx_refuse(d, WX_R_INVALID_FIELD);
    }
    if (cmd->card.customer_id < 1 || cmd->card.customer_id > e->n_customers) {
        return wx_refuse(d, WX_R_CUSTOMER_NOT_FOUND);
    }
    if (cmd->card.account_id != 0 && wx_account_get(e, cmd->card.account_id) == NULL) {
        return wx_refuse(d, WX_R_ACCOUNT_NOT_FOUND);
    }
    uint32_t idx = wx_index_find(&e->card_ix, cmd->card.ref);
    if (idx != UINT32_MAX) {
        if (!card_same(&e->cards[idx], cmd)) {
            return wx_refuse(d, WX_R_DUPLICATE_MISMATCH);
        }
        d->res->repeat = 1;
        d->res->id = idx + 1;
        d->res->account_id = e->cards[idx].account;
        d->res->seq = e->last_seq;
        return WX_ANSWERED;
    }
    if (e->n_cards >= WX_CARDS_MAX) {
        return wx_refuse(d, WX_R_CAPACITY);
    }
    uint32_t card_id = e->n_cards + 1;
    uint32_t account_id = cmd->card.account_id;
    if (account_id == 0) {
        account_id = account_open(e, cmd, card_id);
    }
    e->cards = wx_table_reserve(e->cards, e->n_cards, &e->cap_cards, sizeof *e->cards);
    struct wx_card *k = &e->cards[e->n_cards];
    memset(k, 0, sizeof *k);
    memcpy(k->ref, cmd->card.ref, WX_REF_LEN);
    k->cvv_tag = cmd->card.cvv_tag;
    k->account = account_id;
    k->customer = cmd->card.customer_id;
    k->first6 = cmd->card.first6;
    k->last4 = cmd->card.last4;
    k->expiry = cmd->card.expiry;
    k->status = WX_CARD_NOT_ACTIVATED;
    k->supplementary = cmd->card.account_id != 0;
    /* The holder's cards, newest first: the conversation lists them without a scan. */
    struct wx_customer *holder = &e->customers[k->customer - 1];
    k->next_of_holder = holder->cards;
    holder->cards = card_id;
    wx_index_insert(&e->card_ix, k->ref, e->n_cards);
    e->n_cards++;
    d->res->id = card_id;
    d->res->account_id = account_id;
    d->res->available = wx_available(e, &e->accounts[account_id - 1]);
    return WX_DECIDED;
}

enum wx_outcome wx_do_card_activate(struct wx_decision *d)
{
    struct wx_card *k = wx_card_get(d->e, d->cmd->card_status.card_id);
    if (k == NULL) {
        return wx_refuse(d, WX_R_CARD_NOT_FOUND);
    }
    d->res->id = d->cmd->card_status.card_id;
    d->res->account_id = k->account;
    if (k->status == WX_CARD_ACTIVE) {
        /* Activating an active card again is a repeat: the card's state is the memory. */
        d->res->repeat = 1;
        d->res->seq = d->e->last_seq;
        return WX_ANSWERED;
    }
    if (k->status != WX_CARD_NOT_ACTIVATED) {
        d->res->id = 0;
        d->res->account_id = 0;
        return wx_refuse(d, WX_R_INVALID_STATUS);
    }
    k->status = WX_CARD_ACTIVE;
    return WX_DECIDED;
}

/* The card lifecycle: lock and unlock; report lost or stolen; close. Activation is its own
 * command; lost, stolen and closed cards never spend again. */
static bool status_change_allowed(uint8_t from, uint8_t to)
{
    switch (to) {
    case WX_CARD_LOCKED:
        return from == WX_CARD_ACTIVE;
    case WX_CARD_ACTIVE:
        return from == WX_CARD_LOCKED;
    case WX_CARD_LOST:
    case WX_CARD_STOLEN:
        return from == WX_CARD_ACTIVE || from == WX_CARD_LOCKED || from == WX_CARD_NOT_ACTIVATED;
    case WX_CARD_CLOSED:
        return from != WX_CARD_CLOSED;
    default:
        return false;
    }
}

enum wx_outcome wx_do_card_status(struct wx_decision *d)
{
    struct wx_card *k = wx_card_get(d->e, d->cmd->card_status.card_id);
    if (k == NULL) {
        return wx_refuse(d, WX_R_CARD_NOT_FOUND);
    }
    if (!status_change_allowed(k->status, d->cmd->card_status.status)) {
        return wx_refuse(d, WX_R_INVALID_STATUS);
    }
    k->status = d->cmd->card_status.status;
    d->res->id = d->cmd->card_status.card_id;
    d->res->account_id = k->account;
    return WX_DECIDED;
}

enum wx_outcome wx_do_limit(struct wx_decision *d)
{
    const struct wx_cmd *cmd = d->cmd;
    struct wx_account *a = wx_account_get(d->e, cmd->limit.account_id);
    if (a == NULL) {
        return wx_refuse(d, WX_R_ACCOUNT_NOT_FOUND);
    }
    if (cmd->limit.amount < 0 || cmd->limit.amount > WX_LIMIT_MAX) {
        return wx_refuse(d, WX_R_INVALID_AMOUNT);
    }
    if (cmd->kind == WX_CMD_TEMP_LIMIT_SET && cmd->limit.amount > 0 &&
        cmd->limit.expires_ms <= cmd->time_ms) {
        return wx_refuse(d, WX_R_INVALID_FIELD);
    }
    if (cmd->kind == WX_CMD_LIMIT_SET) {
        a->credit_limit = cmd->limit.amount;
    } else {
        a->temp_limit = cmd->limit.amount;
        a->temp_expires_ms = cmd->limit.amount > 0 ? cmd->limit.expires_ms : 0;
    }
    d->res->account_id = cmd->limit.account_id;
    d->res->amount = cmd->limit.amount;
    d->res->available = wx_available(d->e, a);
    return WX_DECIDED;
}

/* Repayments credit the account (an overpayment stays as a credit balance); fees and
 * interest debit it. None is declined for credit: they are the bank's own postings. */
enum wx_outcome wx_do_posting(struct wx_decision *d)
{
    const struct wx_cmd *cmd = d->cmd;
    if (cmd->posting.amount <= 0 || cmd->posting.amount > WX_AMOUNT_MAX) {
        return wx_refuse(d, WX_R_INVALID_AMOUNT);
    }
    if (cmd->posting.currency != WX_CURRENCY_CNY) {
        return wx_refuse(d, WX_R_INVALID_CURRENCY);
    }
    struct wx_account *a = wx_account_get(d->e, cmd->posting.account_id);
    if (a == NULL) {
        return wx_refuse(d, WX_R_ACCOUNT_NOT_FOUND);
    }
    int64_t delta = cmd->kind == WX_CMD_REPAYMENT ? -cmd->posting.amount : cmd->posting.amount;
    if (a->posted + delta > WX_BALANCE_MAX || a->posted + delta < -WX_BALANCE_MAX) {
        return wx_refuse(d, WX_R_BALANCE_OVERFLOW);
    }
    a->posted += delta;
    d->res->account_id = cmd->posting.account_id;
    d->res->amount = cmd->posting.amount;
    d->res->available = wx_available(d->e, a);
    return WX_DECIDED;
}
