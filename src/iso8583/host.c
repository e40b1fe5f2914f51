/*
 * host.c - the issuer host's request side: one decoded ISO 8583 request becomes one engine
 * command (or an immediate answer when it cannot be one).
 *
 * Pure mapping, no I/O and no state: the same request always maps to the same command, which
 * is what lets a repeat (0101, 0401, ...) find its original's key, and a reversal find the
 * original it names in field 90. The key layout and the response-code table are documented
 * in iso8583.h; responses are built in host_resp.c.
 */
#include "iso8583/host_int.h"

#include <assert.h>
#include <string.h>

#include "util/limits.h"
#include "util/pan.h"

#define KEY_TERMINAL_MAX 8  /* field 41 is ans 8 */
#define KEY_ACQUIRER_MAX 11 /* field 32 is n..11 */
#define MCC_ATM          6011

/* Request-scoped reading state: the request and the code to answer when mapping fails. */
struct mapping {
    const wx_keys_t *keys;
    const struct wx_iso_msg *req;
    struct wx_cmd *cmd;
    const char *fail; /* response code when the request cannot become a command */
};

/* Records the first failure; later ones do not overwrite it. Returns false for chaining. */
static bool fail(struct mapping *m, const char *code)
{
    if (m->fail == NULL) m->fail = code;
    return false;
}

/*
 * Writes the idempotency key "MMMM:SSSSSS:DDDDDDDDDD:A:T" (iso8583.h) into out[WX_KEY_MAX].
 * acq may carry leading zeros (field 90 pads it); term trailing blanks. Returns its length,
 * or 0 when a part is malformed.
 */
static size_t make_key(uint16_t mti, const char stan[7], const char f7[11], const uint8_t *acq,
                       size_t acq_len, const uint8_t *term, size_t term_len, char *out)
{
    while (acq_len > 0 && acq[0] == '0') {
        acq++;
        acq_len--;
    }
    while (term_len > 0 && term[term_len - 1] == ' ') {
        term_len--;
    }
    if (acq_len > KEY_ACQUIRER_MAX || term_len > KEY_TERMINAL_MAX) return 0;
    for (size_t i = 0; i < acq_len; i++) {
        if (acq[i] < '0' || acq[i] > '9') return 0;
    }
    /* A reversal request (0400) and the advice an acquirer sends when it got no answer
     * (0420) are one reversal: they share a key, so it is applied once. */
    unsigned base = wx_iso_mti_base(mti);
    if (wx_iso_mti_class(mti) == 4) {
        base = 400;
    }
    char head[32];
    int n = snprintf(head, sizeof head, "%04u:%s:%s:", base, stan, f7);
    assert(n == 23);
    size_t len = (size_t)n;
    memcpy(out, head, len);
    if (acq_len > 0) {
        memcpy(out + len, acq, acq_len);
    }
    len += acq_len;
    out[len++] = ':';
    if (term_len > 0) {
        memcpy(out + len, term, term_len);
    }
    len += term_len;
    assert(len <= WX_KEY_MAX);
    return len;
}

/* The request's own key from fields 11, 7, 32 and 41. */
static bool own_key(struct mapping *m)
{
    char stan[7], f7[11];
    size_t acq_len = 0, term_len = 0;
    const uint8_t *acq = wx_iso_get(m->req, 32, &acq_len);
    const uint8_t *term = wx_iso_get(m->req, 41, &term_len);
    if (!wx_iso_field_digits(m->req, 11, 6, stan, sizeof stan) ||
        !wx_iso_field_digits(m->req, 7, 10, f7, sizeof f7)) {
        return fail(m, "30");
    }
    size_t len = make_key(m->req->mti, stan, f7, acq, acq_len, term, term_len, m->cmd->key);
    if (len == 0) return fail(m, "30");
    m->cmd->key_len = (uint8_t)len;
    return true;
}

/* The original's key from field 90 (MTI 4, STAN 6, field 7 10, acquirer 11, forwarder 11)
 * and the request's own terminal. *orig_mti receives the original's MTI. */
static bool original_key(struct mapping *m, char *out, uint8_t *out_len, uint16_t *orig_mti)
{
    char f90[43];
    if (!wx_iso_field_digits(m->req, 90, 42, f90, sizeof f90)) return fail(m, "30");
    int64_t mti;
    wx_iso_parse_digits((const uint8_t *)f90, 4, &mti);
    char stan[7], f7[11];
    memcpy(stan, f90 + 4, 6);
    stan[6] = '\0';
    memcpy(f7, f90 + 10, 10);
    f7[10] = '\0';
    size_t term_len = 0;
    const uint8_t *term = wx_iso_get(m->req, 41, &term_len);
    size_t len =
        make_key((uint16_t)mti, stan, f7, (const uint8_t *)f90 + 20, 11, term, term_len, out);
    if (len == 0) return fail(m, "30");
    *out_len = (uint8_t)len;
    *orig_mti = (uint16_t)mti;
    return true;
}

/* The card: PAN from field 2, else from track 2 (35, "PAN=YYMM..."); expiry from 14, else
 * from track 2, else 0 (not presented). The PAN never leaves this function. */
static bool card(struct mapping *m, uint8_t ref[WX_REF_LEN], uint16_t *expiry)
{
    char pan[WX_PAN_MAX + 1], yymm[5] = "";
    size_t len = 0;
    const uint8_t *p = wx_iso_get(m->req, 2, &len);
    if (p == NULL) {
        size_t t2len = 0;
        const uint8_t *t2 = wx_iso_get(m->req, 35, &t2len);
        if (t2 == NULL) return fail(m, "30");
        while (len < t2len && t2[len] != '=' && t2[len] != 'D') {
            len++;
        }
        if (len < t2len && t2len - len > 4) {
            memcpy(yymm, t2 + len + 1, 4);
            yymm[4] = '\0';
        }
        p = t2;
    }
    if (len < WX_PAN_MIN || len > WX_PAN_MAX) return fail(m, "30");
    memcpy(pan, p, len);
    pan[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (pan[i] < '0' || pan[i] > '9') return fail(m, "30");
    }
    wx_card_ref(m->keys, pan, ref);
    memset(pan, 0, sizeof pan);
    if (wx_iso_has(m->req, 14) && !wx_iso_field_digits(m->req, 14, 4, yymm, sizeof yymm)) {
        return fail(m, "30");
    }
    *expiry = 0;
    if (yymm[0] != '\0' && wx_expiry_parse(yymm, expiry) != 0) return fail(m, "30");
    return true;
}

/* The CNY amount the ledger books, and the transaction's own amount and currency: field 4
 * when 49 is 156 (or absent: a domestic switch), field 6 when the billing currency 51 is
 * 156; otherwise the host cannot book it (12). */
static bool amounts(struct mapping *m, int64_t *cny, struct wx_merchant *mer)
{
    char cur[4] = WX_ISO_CNY_TEXT, bill[4] = "";
    if (!wx_iso_field_amount(m->req, 4, &mer->txn_amount)) return fail(m, "30");
    if (wx_iso_has(m->req, 49) && !wx_iso_field_digits(m->req, 49, 3, cur, sizeof cur)) {
        return fail(m, "30");
    }
    int64_t c;
    wx_iso_parse_digits((const uint8_t *)cur, 3, &c);
    mer->txn_currency = (uint16_t)c;
    if (strcmp(cur, WX_ISO_CNY_TEXT) == 0) {
        *cny = mer->txn_amount;
        return true;
    }
    if (!wx_iso_field_digits(m->req, 51, 3, bill, sizeof bill) ||
        strcmp(bill, WX_ISO_CNY_TEXT) != 0) {
        return fail(m, "12");
    }
    if (!wx_iso_field_amount(m->req, 6, cny)) return fail(m, "30");
    return true;
}

/* Copies up to cap-1 characters of field 43 from [from, from+len), trimming blanks. */
static void field43_part(const uint8_t *f43, size_t f43_len, size_t from, size_t len, char *out,
                         size_t cap)
{
    out[0] = '\0';
    if (f43 == NULL || from >= f43_len) return;
    if (from + len > f43_len) len = f43_len - from;
    while (len > 0 && f43[from + len - 1] == ' ') {
        len--;
    }
    if (len > cap - 1) len = cap - 1;
    memcpy(out, f43 + from, len);
    out[len] = '\0';
}

/* Where and how: 43 (name 1-23, city 24-36, country 39-40), 18, 41, 42, and the channel
 * and cross-border flag derived from 3, 18, 19, 22, 25 and 49. */
static bool merchant(struct mapping *m, unsigned proc, struct wx_merchant *mer)
{
    size_t len = 0;
    const uint8_t *f43 = wx_iso_get(m->req, 43, &len);
    field43_part(f43, len, 0, 23, mer->name, sizeof mer->name);
    field43_part(f43, len, 23, 13, mer->city, sizeof mer->city);
    field43_part(f43, len, 38, 2, mer->country, sizeof mer->country);
    const uint8_t *tid = wx_iso_get(m->req, 41, &len);
    field43_part(tid, len, 0, len, mer->terminal_id, sizeof mer->terminal_id);
    const uint8_t *mid = wx_iso_get(m->req, 42, &len);
    field43_part(mid, len, 0, len, mer->merchant_id, sizeof mer->merchant_id);
    char mcc[5] = "0000", entry[4] = "", cond[3] = "", acq_country[4] = WX_ISO_CNY_TEXT;
    if (wx_iso_has(m->req, 18) && !wx_iso_field_digits(m->req, 18, 4, mcc, sizeof mcc)) {
        return fail(m, "30");
    }
    int64_t v;
    wx_iso_parse_digits((const uint8_t *)mcc, 4, &v);
    mer->mcc = (uint16_t)v;
    wx_iso_field_digits(m->req, 22, 3, entry, sizeof entry);
    wx_iso_field_digits(m->req, 25, 2, cond, sizeof cond);
    wx_iso_field_digits(m->req, 19, 3, acq_country, sizeof acq_country);
    bool cnp =
        strncmp(entry, "01", 2) == 0 || strncmp(entry, "81", 2) == 0 || strcmp(cond, "59") == 0;
    if (proc == 1 || mer->mcc == MCC_ATM) {
        mer->channel = WX_CHANNEL_ATM;
    } else {
        mer->channel = cnp ? WX_CHANNEL_CNP : WX_CHANNEL_POS;
    }
    mer->cross_border =
        mer->txn_currency != WX_CURRENCY_CNY || strcmp(acq_country, WX_ISO_CNY_TEXT) != 0;
    return true;
}

/* 0100/0120/0200/0220 (no original): an authorization, captured at once for 02xx. */
static bool authorize(struct mapping *m, unsigned proc)
{
    struct wx_cmd *c = m->cmd;
    c->kind = WX_CMD_AUTHORIZE;
    bool inquiry = proc == 31;
    if (inquiry && wx_iso_mti_class(m->req->mti) != 1) return fail(m, "12");
    c->auth.type = proc == 0   ? WX_AUTH_PURCHASE
                   : proc == 1 ? WX_AUTH_CASH
                               : WX_AUTH_BALANCE_INQUIRY;
    c->auth.capture = wx_iso_mti_class(m->req->mti) == 2;
    c->auth.advice = wx_iso_mti_function(m->req->mti) == 2;
    c->auth.currency = WX_CURRENCY_CNY;
    if (!card(m, c->auth.ref, &c->auth.expiry)) return false;
    if (inquiry) {
        /* An inquiry moves no money; its field 4, if any, is zero and not booked. */
        c->auth.merchant.txn_currency = WX_CURRENCY_CNY;
        return merchant(m, proc, &c->auth.merchant);
    }
    return amounts(m, &c->auth.amount, &c->auth.merchant) && merchant(m, proc, &c->auth.merchant);
}

/* A follow-up's card (optional when it names an original), amount and merchant. */
static bool follow_common(struct mapping *m, unsigned proc, bool card_required)
{
    struct wx_cmd *c = m->cmd;
    uint16_t expiry;
    c->follow.currency = WX_CURRENCY_CNY;
    if ((card_required || wx_iso_has(m->req, 2) || wx_iso_has(m->req, 35)) &&
        !card(m, c->follow.ref, &expiry)) {
        return false;
    }
    return amounts(m, &c->follow.amount, &c->follow.merchant) &&
           merchant(m, proc, &c->follow.merchant);
}

/* b * num / den without overflow (amounts are at most WX_AMOUNT_MAX), rounded to nearest. */
static int64_t scale(int64_t b, int64_t num, int64_t den)
{
    __extension__ typedef unsigned __int128 u128;
    assert(b >= 0 && num >= 0 && den > 0);
    u128 p = (u128)(uint64_t)b * (uint64_t)num + (uint64_t)den / 2;
    return (int64_t)(p / (uint64_t)den);
}

/* Field 95's first 12 digits are the actual (replacement) amount in the transaction
 * currency: what is reversed is field 4 minus it, scaled to the CNY billing amount when the
 * transaction was foreign. No 95, or an actual amount of 0, reverses everything (amount 0). */
static bool reversal_amount(struct mapping *m)
{
    struct wx_cmd *c = m->cmd;
    int64_t txn = c->follow.merchant.txn_amount, cny = c->follow.amount, actual = 0;
    size_t len = 0;
    const uint8_t *f95 = wx_iso_get(m->req, 95, &len);
    c->follow.amount = 0;
    if (f95 == NULL) return true;
    if (len < 12 || !wx_iso_parse_digits(f95, 12, &actual)) return fail(m, "30");
    if (actual == 0) return true;
    if (actual >= txn) return fail(m, "13");
    int64_t reversed = txn - actual;
    if (c->follow.merchant.txn_currency != WX_CURRENCY_CNY) {
        reversed = scale(cny, reversed, txn);
    }
    if (reversed <= 0) return fail(m, "13");
    c->follow.amount = reversed;
    return true;
}

/* 0400/0420: reverse what field 90 names (all, or in part through field 95). */
static bool reversal(struct mapping *m, unsigned proc)
{
    struct wx_cmd *c = m->cmd;
    uint16_t orig_mti;
    c->kind = WX_CMD_REVERSAL;
    if (!original_key(m, c->follow.orig_key, &c->follow.orig_len, &orig_mti)) return false;
    unsigned cls = wx_iso_mti_class(orig_mti);
    if (cls != 1 && cls != 2) return fail(m, "12");
    return follow_common(m, proc, false) && reversal_amount(m);
}

/* 0220 naming an earlier 01xx in field 90: the clearing of that authorization. */
static bool clearing(struct mapping *m, unsigned proc)
{
    struct wx_cmd *c = m->cmd;
    uint16_t orig_mti;
    c->kind = WX_CMD_CAPTURE;
    c->follow.final = 1;  /* one clearing per authorization: release what is left */
    c->follow.advice = 1; /* decided elsewhere: posted even beyond the tolerance */
    if (!original_key(m, c->follow.orig_key, &c->follow.orig_len, &orig_mti)) return false;
    /* The card is required: when the original is unknown here, the clearing still posts
     * (a force post), which needs the card. */
    return follow_common(m, proc, true);
}

/* 0200/0220 with processing code 20: credit the card (matched to field 90 when given). */
static bool refund(struct mapping *m, unsigned proc)
{
    struct wx_cmd *c = m->cmd;
    uint16_t orig_mti;
    c->kind = WX_CMD_REFUND;
    if (wx_iso_has(m->req, 90) &&
        !original_key(m, c->follow.orig_key, &c->follow.orig_len, &orig_mti)) {
        return false;
    }
    return follow_common(m, proc, true);
}

/* Chooses the command for a 01xx/02xx/04xx request and fills it. */
static bool map_command(struct mapping *m)
{
    char f3[7];
    if (!own_key(m)) return false;
    if (!wx_iso_field_digits(m->req, 3, 6, f3, sizeof f3)) return fail(m, "30");
    unsigned proc = (unsigned)(f3[0] - '0') * 10u + (unsigned)(f3[1] - '0');
    unsigned cls = wx_iso_mti_class(m->req->mti);
    if (cls == 4) return reversal(m, proc);
    if (proc == 20 && cls == 2) return refund(m, proc);
    if (proc != 0 && proc != 1 && proc != 31) return fail(m, "12");
    if (cls == 2 && wx_iso_mti_function(m->req->mti) == 2 && wx_iso_has(m->req, 90)) {
        return clearing(m, proc);
    }
    return authorize(m, proc);
}

/* 0800: sign-on 001, sign-off 002, echo 301 are acknowledged; other codes are not ours. */
static int network(const struct wx_iso_msg *req, struct wx_iso_msg *resp)
{
    char f70[4];
    if (!wx_iso_field_digits(req, 70, 3, f70, sizeof f70)) {
        wx_iso_host_set_code(resp, "30");
    } else if (strcmp(f70, "001") == 0 || strcmp(f70, "002") == 0 || strcmp(f70, "301") == 0) {
        wx_iso_host_set_code(resp, "00");
    } else {
        wx_iso_host_set_code(resp, "12");
    }
    return WX_ISO_HOST_ANSWERED;
}

int wx_iso_host_request(const wx_keys_t *keys, const struct wx_iso_msg *req, int64_t now_ms,
                        struct wx_cmd *cmd, struct wx_iso_msg *resp)
{
    assert(keys != NULL && req != NULL);
    assert(cmd != NULL && resp != NULL);
    if (!wx_iso_host_is_request(req->mti)) return WX_ISO_HOST_DROP;
    wx_iso_host_start_response(req, resp);
    if (wx_iso_mti_class(req->mti) == 8) return network(req, resp);
    memset(cmd, 0, sizeof *cmd);
    cmd->time_ms = now_ms;
    struct mapping m = {.keys = keys, .req = req, .cmd = cmd, .fail = NULL};
    if (!map_command(&m)) {
        assert(m.fail != NULL);
        wx_iso_host_set_code(resp, m.fail);
        cmd->kind = WX_CMD_NONE;
        return WX_ISO_HOST_ANSWERED;
    }
    return WX_ISO_HOST_SUBMIT;
}
