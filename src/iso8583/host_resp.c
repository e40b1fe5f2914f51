/*
 * host_resp.c - the issuer host's response side: engine results become field 39 (and 38,
 * 54) on a response that echoes what the switch needs to match it to its request.
 *
 * The reason-to-response-code table lives here and is documented in iso8583.h. Nothing in
 * here reads a clock or keeps state: a repeat's result (the engine's stored first answer)
 * therefore gives byte-identical fields 38 and 39.
 */
#include "iso8583/host_int.h"

#include <assert.h>
#include <string.h>

/* Fields a switch matches a response with, echoed from the request when present. */
static const int echoed[] = {3, 4, 6, 7, 11, 12, 13, 32, 37, 41, 42, 49, 51, 70, 90, 95};

/* Response codes of engine reasons, for requests that are not reversals. */
static const char *const codes[WX_R_COUNT] = {
    [WX_APPROVED] = "00",
    [WX_R_INSUFFICIENT_CREDIT] = "51",
    [WX_R_CARD_NOT_FOUND] = "14",
    [WX_R_CARD_NOT_ACTIVATED] = "62",
    [WX_R_CARD_LOCKED] = "57",
    [WX_R_CARD_LOST] = "41",
    [WX_R_CARD_STOLEN] = "43",
    [WX_R_CARD_CLOSED] = "62",
    [WX_R_CARD_EXPIRED] = "54",
    [WX_R_WRONG_EXPIRY] = "54",
    [WX_R_WRONG_CVV] = "05",
    [WX_R_INVALID_AMOUNT] = "13",
    [WX_R_INVALID_CURRENCY] = "12",
    [WX_R_DUPLICATE_MISMATCH] = "94",
    [WX_R_ORIGINAL_NOT_FOUND] = "25",
    [WX_R_ALREADY_REVERSED] = "12",
    [WX_R_HOLD_CLOSED] = "12",
    [WX_R_EXCEEDS_ORIGINAL] = "13",
    [WX_R_INVALID_FIELD] = "30",
    [WX_R_CAPACITY] = "91",
    [WX_R_BALANCE_OVERFLOW] = "61",
};

bool wx_iso_host_is_request(uint16_t mti)
{
    if (mti % 10u > 1u) return false;
    switch (wx_iso_mti_base(mti)) {
    case 100:
    case 120:
    case 200:
    case 220:
    case 400:
    case 420:
    case 800:
        return true;
    default:
        return false;
    }
}

const char *wx_iso_response_code(uint16_t mti, uint8_t reason)
{
    if (wx_iso_mti_class(mti) == 4 && reason == WX_R_ALREADY_REVERSED) {
        return "00"; /* a reversal that was already applied: acknowledged, applied once */
    }
    if (reason >= WX_R_COUNT || codes[reason] == NULL) return "96";
    return codes[reason];
}

void wx_iso_host_start_response(const struct wx_iso_msg *req, struct wx_iso_msg *resp)
{
    wx_iso_init(resp, (uint16_t)(wx_iso_mti_base(req->mti) + 10u));
    for (size_t i = 0; i < sizeof echoed / sizeof echoed[0]; i++) {
        size_t len = 0;
        const uint8_t *v = wx_iso_get(req, echoed[i], &len);
        /* The request's field passed the same spec, so it fits the response. */
        if (v != NULL && wx_iso_set(resp, echoed[i], v, len) != 0) {
            assert(!"an echoed field did not fit the response");
        }
    }
}

void wx_iso_host_set_code(struct wx_iso_msg *resp, const char *code)
{
    assert(strlen(code) == 2);
    int rc = wx_iso_set(resp, 39, code, 2);
    assert(rc == 0);
    (void)rc;
}

/* Field 54, ISO additional amounts: account type 2 (from field 3), amount type "02"
 * (available), currency 3, sign C/D, amount 12. */
static void set_available(const struct wx_iso_msg *req, int64_t available, struct wx_iso_msg *resp)
{
    char account[3] = "30", f3[7], f54[24];
    if (wx_iso_field_digits(req, 3, 6, f3, sizeof f3) && memcmp(f3 + 2, "00", 2) != 0) {
        memcpy(account, f3 + 2, 2);
    }
    char sign = available >= 0 ? 'C' : 'D';
    long long mag = available >= 0 ? (long long)available : -(long long)available;
    if (mag > 999999999999LL) {
        mag = 999999999999LL; /* the field holds 12 digits; a larger balance shows its cap */
    }
    int n = snprintf(f54, sizeof f54, "%s02%s%c%012lld", account, WX_ISO_CNY_TEXT, sign, mag);
    assert(n == 20);
    int rc = wx_iso_set(resp, 54, f54, (size_t)n);
    assert(rc == 0);
    (void)rc;
}

void wx_iso_host_answer(const struct wx_iso_msg *req, const struct wx_cmd *cmd,
                        const struct wx_result *res, struct wx_iso_msg *resp)
{
    assert(req != NULL && cmd != NULL);
    assert(res != NULL && resp != NULL);
    const char *code = wx_iso_response_code(req->mti, res->reason);
    /* A key already answered, sent again without the repeat digit, is a duplicate
     * transmission (94). Reversals are the exception: an acquirer resends a reversal until
     * it is acknowledged, and the first answer is the right one. */
    if (res->repeat && !wx_iso_mti_is_repeat(req->mti) && wx_iso_mti_class(req->mti) != 4) {
        code = "94";
    }
    wx_iso_host_set_code(resp, code);
    if (strcmp(code, "00") == 0 && res->approval != 0) {
        char f38[8];
        int n = snprintf(f38, sizeof f38, "%06u", (unsigned)(res->approval % 1000000u));
        assert(n == 6);
        int rc = wx_iso_set(resp, 38, f38, 6);
        assert(rc == 0);
        (void)rc;
    }
    if (cmd->kind == WX_CMD_AUTHORIZE && cmd->auth.type == WX_AUTH_BALANCE_INQUIRY &&
        res->reason == WX_APPROVED) {
        set_available(req, res->available, resp);
    }
}

int wx_iso_host_format_error(const struct wx_iso_msg *partial, const struct wx_iso_error *err,
                             struct wx_iso_msg *resp)
{
    char stan[7];
    if (!err->mti_read || !wx_iso_host_is_request(partial->mti)) return -1;
    if (!wx_iso_field_digits(partial, 11, 6, stan, sizeof stan)) return -1;
    wx_iso_host_start_response(partial, resp);
    wx_iso_host_set_code(resp, "30");
    return 0;
}

/* ---- bounded field readers (host_int.h) ------------------------------------------------ */

bool wx_iso_parse_digits(const uint8_t *p, size_t len, int64_t *out)
{
    assert(len <= 18);
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

bool wx_iso_field_digits(const struct wx_iso_msg *m, int n, size_t len, char *out, size_t cap)
{
    size_t have = 0;
    const uint8_t *v = wx_iso_get(m, n, &have);
    assert(cap > len);
    if (v == NULL || have != len) return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return false;
    }
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

bool wx_iso_field_amount(const struct wx_iso_msg *m, int n, int64_t *out)
{
    size_t len = 0;
    const uint8_t *v = wx_iso_get(m, n, &len);
    return v != NULL && len == 12 && wx_iso_parse_digits(v, 12, out);
}
