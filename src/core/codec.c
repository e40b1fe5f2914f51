/*
 * codec.c - the journal row format: a command and the decision taken on it.
 *
 * A row is compact (varints, length-prefixed strings) because the journal's throughput is
 * bounded by bytes written per decision. Layout:
 *
 *   u8 version | u8 kind | zigzag time_ms | u8 key_len | key | body (per kind) | result
 *
 * The body is also what a command's fingerprint is computed over: two commands with the same
 * key are "the same" exactly when their bodies are byte-identical. Decoding validates every
 * length against the limits in limits.h and rejects trailing bytes, so a damaged row is
 * reported as corrupt instead of being half-understood.
 */
#include "core/codec.h"

#include <string.h>

#define ROW_VERSION 1

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
};

struct rbuf {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
};

static void put_bytes(struct wbuf *w, const void *src, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u8(struct wbuf *w, uint8_t v)
{
    put_bytes(w, &v, 1);
}

static void put_varint(struct wbuf *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        tmp[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    put_bytes(w, tmp, n);
}

static void put_zz(struct wbuf *w, int64_t v)
{
    put_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_u64(struct wbuf *w, uint64_t v)
{
    put_bytes(w, &v, sizeof v);
}

/* Writes a NUL-terminated string of at most max bytes (its buffer holds max + 1). A string
 * with no NUL within max bytes is malformed: it fails the encoding rather than being cut,
 * so that it is refused and no handler reads past its buffer. */
static void put_str(struct wbuf *w, const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max) {
        w->overflow = true;
        return;
    }
    put_u8(w, (uint8_t)n);
    put_bytes(w, s, n);
}

static void get_bytes(struct rbuf *r, void *dst, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
}

static uint8_t get_u8(struct rbuf *r)
{
    uint8_t v;
    get_bytes(r, &v, 1);
    return v;
}

static uint64_t get_varint(struct rbuf *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b = get_u8(r);
        if (r->bad) {
            return 0;
        }
        if (shift == 63 && b > 1) {
            break;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0) {
                break; /* overlong: the format is canonical, one encoding per value */
            }
            return v;
        }
    }
    r->bad = true;
    return 0;
}

static int64_t get_zz(struct rbuf *r)
{
    uint64_t v = get_varint(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static uint32_t get_u32v(struct rbuf *r)
{
    uint64_t v = get_varint(r);
    if (v > UINT32_MAX) {
        r->bad = true;
    }
    return (uint32_t)v;
}

static uint16_t get_u16v(struct rbuf *r)
{
    uint64_t v = get_varint(r);
    if (v > UINT16_MAX) {
        r->bad = true;
    }
    return (uint16_t)v;
}

static uint64_t get_u64(struct rbuf *r)
{
    uint64_t v;
    get_bytes(r, &v, sizeof v);
    return v;
}

/* Reads a length-prefixed string of at most max bytes into dst[max + 1]. */
static void get_str(struct rbuf *r, char *dst, size_t max)
{
    size_t n = get_u8(r);
    if (n > max) {
        r->bad = true;
        n = 0;
    }
    get_bytes(r, dst, n);
    dst[n] = '\0';
    if (memchr(dst, '\0', n) != NULL) {
        r->bad = true; /* an embedded NUL would truncate silently */
    }
}

static void put_merchant(struct wbuf *w, const struct wx_merchant *m)
{
    put_varint(w, m->mcc);
    put_u8(w, m->channel);
    put_u8(w, m->cross_border);
    put_str(w, m->country, 3);
    put_str(w, m->name, WX_MERCHANT_NAME_MAX);
    put_str(w, m->city, WX_MERCHANT_CITY_MAX);
    put_str(w, m->terminal_id, WX_TERMINAL_ID_MAX);
    put_str(w, m->merchant_id, WX_MERCHANT_ID_MAX);
    put_zz(w, m->txn_amount);
    put_varint(w, m->txn_currency);
}

static void get_merchant(struct rbuf *r, struct wx_merchant *m)
{
    m->mcc = get_u16v(r);
    m->channel = get_u8(r);
    m->cross_border = get_u8(r);
    get_str(r, m->country, 3);
    get_str(r, m->name, WX_MERCHANT_NAME_MAX);
    get_str(r, m->city, WX_MERCHANT_CITY_MAX);
    get_str(r, m->terminal_id, WX_TERMINAL_ID_MAX);
    get_str(r, m->merchant_id, WX_MERCHANT_ID_MAX);
    m->txn_amount = get_zz(r);
    m->txn_currency = get_u16v(r);
}

static void put_body(struct wbuf *w, const struct wx_cmd *c)
{
    switch (c->kind) {
    case WX_CMD_CUSTOMER_ADD:
        put_str(w, c->customer.name, WX_NAME_MAX);
        put_str(w, c->customer.mobile, WX_MOBILE_MAX);
        put_bytes(w, c->customer.id_hmac, WX_REF_LEN);
        put_str(w, c->customer.id_last4, 4);
        break;
    case WX_CMD_CARD_ISSUE:
        put_varint(w, c->card.customer_id);
        put_varint(w, c->card.account_id);
        put_bytes(w, c->card.ref, WX_REF_LEN);
        put_varint(w, c->card.first6);
        put_varint(w, c->card.last4);
        put_varint(w, c->card.expiry);
        put_u64(w, c->card.cvv_tag);
        put_zz(w, c->card.credit_limit);
        put_u8(w, c->card.statement_day);
        put_u8(w, c->card.pan_enc_len);
        put_bytes(w, c->card.pan_enc,
                  c->card.pan_enc_len <= WX_PAN_ENC_MAX ? c->card.pan_enc_len : WX_PAN_ENC_MAX + 1);
        break;
    case WX_CMD_CARD_ACTIVATE:
    case WX_CMD_CARD_STATUS:
        put_varint(w, c->card_status.card_id);
        put_u8(w, c->card_status.status);
        break;
    case WX_CMD_LIMIT_SET:
    case WX_CMD_TEMP_LIMIT_SET:
        put_varint(w, c->limit.account_id);
        put_zz(w, c->limit.amount);
        put_zz(w, c->limit.expires_ms);
        break;
    case WX_CMD_AUTHORIZE:
        put_bytes(w, c->auth.ref, WX_REF_LEN);
        put_varint(w, c->auth.expiry);
        put_u64(w, c->auth.cvv_tag);
        put_u8(w, c->auth.type);
        put_u8(w, c->auth.capture);
        put_u8(w, c->auth.advice);
        put_zz(w, c->auth.amount);
        put_varint(w, c->auth.currency);
        put_merchant(w, &c->auth.merchant);
        break;
    case WX_CMD_AUTH_INCREMENT:
    case WX_CMD_CAPTURE:
    case WX_CMD_REVERSAL:
    case WX_CMD_REFUND:
        put_u8(w, c->follow.orig_len);
        put_bytes(w, c->follow.orig_key,
                  c->follow.orig_len <= WX_KEY_MAX ? c->follow.orig_len : WX_KEY_MAX + 1);
        put_bytes(w, c->follow.ref, WX_REF_LEN);
        put_zz(w, c->follow.amount);
        put_varint(w, c->follow.currency);
        put_u8(w, c->follow.final);
        put_u8(w, c->follow.advice);
        put_merchant(w, &c->follow.merchant);
        break;
    case WX_CMD_REPAYMENT:
    case WX_CMD_FEE:
    case WX_CMD_INTEREST:
        put_varint(w, c->posting.account_id);
        put_zz(w, c->posting.amount);
        put_varint(w, c->posting.currency);
        put_varint(w, c->posting.code);
        break;
    case WX_CMD_TICK:
        break;
    case WX_CMD_FOLLOWER_BIND:
    case WX_CMD_FOLLOWER_UNBIND:
        put_str(w, c->follower.openid, WX_OPENID_MAX);
        put_varint(w, c->follower.customer_id);
        put_u8(w, c->follower.via);
        break;
    default:
        w->overflow = true; /* an unknown kind cannot be encoded */
        break;
    }
}

static void get_body(struct rbuf *r, struct wx_cmd *c)
{
    switch (c->kind) {
    case WX_CMD_CUSTOMER_ADD:
        get_str(r, c->customer.name, WX_NAME_MAX);
        get_str(r, c->customer.mobile, WX_MOBILE_MAX);
        get_bytes(r, c->customer.id_hmac, WX_REF_LEN);
        get_str(r, c->customer.id_last4, 4);
        break;
    case WX_CMD_CARD_ISSUE:
        c->card.customer_id = get_u32v(r);
        c->card.account_id = get_u32v(r);
        get_bytes(r, c->card.ref, WX_REF_LEN);
        c->card.first6 = get_u32v(r);
        c->card.last4 = get_u16v(r);
        c->card.expiry = get_u16v(r);
        c->card.cvv_tag = get_u64(r);
        c->card.credit_limit = get_zz(r);
        c->card.statement_day = get_u8(r);
        c->card.pan_enc_len = get_u8(r);
        if (c->card.pan_enc_len > WX_PAN_ENC_MAX) {
            r->bad = true;
            break;
        }
        get_bytes(r, c->card.pan_enc, c->card.pan_enc_len);
        break;
    case WX_CMD_CARD_ACTIVATE:
    case WX_CMD_CARD_STATUS:
        c->card_status.card_id = get_u32v(r);
        c->card_status.status = get_u8(r);
        break;
    case WX_CMD_LIMIT_SET:
    case WX_CMD_TEMP_LIMIT_SET:
        c->limit.account_id = get_u32v(r);
        c->limit.amount = get_zz(r);
        c->limit.expires_ms = get_zz(r);
        break;
    case WX_CMD_AUTHORIZE:
        get_bytes(r, c->auth.ref, WX_REF_LEN);
        c->auth.expiry = get_u16v(r);
        c->auth.cvv_tag = get_u64(r);
        c->auth.type = get_u8(r);
        c->auth.capture = get_u8(r);
        c->auth.advice = get_u8(r);
        c->auth.amount = get_zz(r);
        c->auth.currency = get_u16v(r);
        get_merchant(r, &c->auth.merchant);
        break;
    case WX_CMD_AUTH_INCREMENT:
    case WX_CMD_CAPTURE:
    case WX_CMD_REVERSAL:
    case WX_CMD_REFUND:
        c->follow.orig_len = get_u8(r);
        if (c->follow.orig_len > WX_KEY_MAX) {
            r->bad = true;
            break;
        }
        get_bytes(r, c->follow.orig_key, c->follow.orig_len);
        get_bytes(r, c->follow.ref, WX_REF_LEN);
        c->follow.amount = get_zz(r);
        c->follow.currency = get_u16v(r);
        c->follow.final = get_u8(r);
        c->follow.advice = get_u8(r);
        get_merchant(r, &c->follow.merchant);
        break;
    case WX_CMD_REPAYMENT:
    case WX_CMD_FEE:
    case WX_CMD_INTEREST:
        c->posting.account_id = get_u32v(r);
        c->posting.amount = get_zz(r);
        c->posting.currency = get_u16v(r);
        c->posting.code = get_u16v(r);
        break;
    case WX_CMD_TICK:
        break;
    case WX_CMD_FOLLOWER_BIND:
    case WX_CMD_FOLLOWER_UNBIND:
        get_str(r, c->follower.openid, WX_OPENID_MAX);
        c->follower.customer_id = get_u32v(r);
        c->follower.via = get_u8(r);
        break;
    default:
        r->bad = true;
        break;
    }
}

size_t wx_cmd_encode_head(const struct wx_cmd *cmd, uint8_t *out, size_t cap, size_t *body_off,
                          size_t *body_len)
{
    struct wbuf w = {.p = out, .cap = cap};
    put_u8(&w, ROW_VERSION);
    put_u8(&w, cmd->kind);
    put_zz(&w, cmd->time_ms);
    put_u8(&w, cmd->key_len);
    put_bytes(&w, cmd->key, cmd->key_len <= WX_KEY_MAX ? cmd->key_len : WX_KEY_MAX + 1);
    *body_off = w.len;
    put_body(&w, cmd);
    *body_len = w.len - *body_off;
    return w.overflow ? 0 : w.len;
}

size_t wx_result_encode(const struct wx_result *res, uint8_t *out, size_t cap)
{
    struct wbuf w = {.p = out, .cap = cap};
    put_u8(&w, res->reason);
    put_varint(&w, res->approval);
    put_varint(&w, res->id);
    put_varint(&w, res->account_id);
    put_zz(&w, res->amount);
    put_zz(&w, res->available);
    return w.overflow ? 0 : w.len;
}

size_t wx_row_encode(const struct wx_cmd *cmd, const struct wx_result *res, uint8_t *out,
                     size_t cap)
{
    size_t body_off, body_len;
    size_t n = wx_cmd_encode_head(cmd, out, cap, &body_off, &body_len);
    if (n == 0) {
        return 0;
    }
    size_t m = wx_result_encode(res, out + n, cap - n);
    return m == 0 ? 0 : n + m;
}

int wx_row_decode(const uint8_t *body, size_t len, struct wx_cmd *cmd, struct wx_result *res)
{
    struct rbuf r = {.p = body, .len = len};
    memset(cmd, 0, sizeof *cmd);
    memset(res, 0, sizeof *res);
    if (get_u8(&r) != ROW_VERSION) {
        return -1;
    }
    cmd->kind = get_u8(&r);
    cmd->time_ms = get_zz(&r);
    cmd->key_len = get_u8(&r);
    if (cmd->key_len > WX_KEY_MAX) {
        return -1;
    }
    get_bytes(&r, cmd->key, cmd->key_len);
    get_body(&r, cmd);
    res->reason = get_u8(&r);
    res->approval = get_u32v(&r);
    res->id = get_u32v(&r);
    res->account_id = get_u32v(&r);
    res->amount = get_zz(&r);
    res->available = get_zz(&r);
    if (r.bad || r.pos != r.len || res->reason >= WX_R_COUNT) {
        return -1;
    }
    res->journaled = 1;
    return 0;
}
