/*
 * issuing.c - customer and card commands from staff input, and synthetic cardholders.
 */
#include "issuing/issuing.h"

#include <stdlib.h>
#include <string.h>

#include "util/crypto.h"
#include "util/pan.h"
#include "util/timeutil.h"

/* Draws of a fresh PAN before seeding gives up (each collides with odds below 1 in 10). */
#define PAN_ATTEMPTS 8 /* draws of a fresh PAN before giving up */

static int copy_field(char *dst, size_t cap, const char *src, const char *what, char *err,
                      size_t errlen)
{
    size_t n = strlen(src);
    if (n == 0 || n >= cap) {
        snprintf(err, errlen, "%s: must be 1 to %zu bytes", what, cap - 1);
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

static int set_key(struct wx_cmd *cmd, const char *key, char *err, size_t errlen)
{
    size_t n = strlen(key);
    if (n == 0 || n > WX_KEY_MAX) {
        snprintf(err, errlen, "key: must be 1 to %d bytes", WX_KEY_MAX);
        return -1;
    }
    memcpy(cmd->key, key, n);
    cmd->key_len = (uint8_t)n;
    return 0;
}

int wx_issuing_customer_cmd(const wx_keys_t *keys, const char *name, const char *id_doc,
                            const char *mobile, const char *key, int64_t now_ms, struct wx_cmd *cmd,
                            char *err, size_t errlen)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->kind = WX_CMD_CUSTOMER_ADD;
    cmd->time_ms = now_ms;
    size_t id_len = strlen(id_doc);
    if (id_len < 4 || id_len > WX_ID_DOC_MAX) {
        snprintf(err, errlen, "--id-doc: must be 4 to %d characters", WX_ID_DOC_MAX);
        return -1;
    }
    if (copy_field(cmd->customer.name, sizeof cmd->customer.name, name, "--name", err, errlen) ||
        copy_field(cmd->customer.mobile, sizeof cmd->customer.mobile, mobile, "--mobile", err,
                   errlen) ||
        set_key(cmd, key, err, errlen)) {
        return -1;
    }
    memcpy(cmd->customer.id_last4, id_doc + id_len - 4, 4);
    wx_id_hmac(keys, id_doc, cmd->customer.id_hmac);
    return 0;
}

/* Expiry: the end of the month validity_years from now, as YYMM. */
static uint16_t expiry_from(int64_t now_ms, int validity_years)
{
    int yymm = wx_yymm_of_ms(now_ms);
    return (uint16_t)(((yymm / 100 + validity_years) % 100) * 100 + yymm % 100);
}

/* Three random digits without modulo bias. */
static void random_cvv(char cvv[4])
{
    uint16_t r;
    do {
        wx_random_bytes(&r, sizeof r);
    } while (r >= 64000);
    snprintf(cvv, 4, "%03u", (unsigned)(r % 1000));
}

int wx_issuing_card_cmd(const wx_keys_t *keys, const struct wx_card_request *req, int64_t now_ms,
                        struct wx_cmd *cmd, struct wx_issued_card *out, char *err, size_t errlen)
{
    memset(cmd, 0, sizeof *cmd);
    memset(out, 0, sizeof *out);
    if (wx_pan_generate(req->bin, req->pan_length, out->pan, sizeof out->pan) != 0) {
        snprintf(err, errlen, "card.bin / card.pan_length: cannot make a %d-digit PAN from %s",
                 req->pan_length, req->bin);
        return -1;
    }
    out->expiry = expiry_from(now_ms, req->validity_years);
    random_cvv(out->cvv);
    cmd->kind = WX_CMD_CARD_ISSUE;
    cmd->time_ms = now_ms;
    /* The card's own reference is its natural idempotency key; the command key says so. */
    int n = snprintf(cmd->key, sizeof cmd->key, "issue:%u:%.*s", req->customer_id, 4,
                     out->pan + strlen(out->pan) - 4);
    cmd->key_len = (uint8_t)(n < (int)sizeof cmd->key ? n : (int)sizeof cmd->key);
    cmd->card.customer_id = req->customer_id;
    cmd->card.account_id = req->account_id;
    wx_card_ref(keys, out->pan, cmd->card.ref);
    char first6[7];
    memcpy(first6, out->pan, 6);
    first6[6] = '\0';
    cmd->card.first6 = (uint32_t)strtoul(first6, NULL, 10);
    cmd->card.last4 = (uint16_t)strtoul(out->pan + strlen(out->pan) - 4, NULL, 10);
    cmd->card.expiry = out->expiry;
    cmd->card.cvv_tag = wx_cvv_tag(keys, out->pan, out->expiry, out->cvv);
    cmd->card.credit_limit = req->credit_limit;
    cmd->card.statement_day = req->statement_day;
    size_t sealed;
    if (wx_pan_seal(keys, out->pan, cmd->card.pan_enc, sizeof cmd->card.pan_enc, &sealed) != 0) {
        snprintf(err, errlen, "cannot seal the card number");
        return -1;
    }
    cmd->card.pan_enc_len = (uint8_t)sealed;
    return 0;
}

static int submit_ok(wx_ledger_t *l, const struct wx_cmd *cmd, struct wx_result *res,
                     const char *what, char *err, size_t errlen)
{
    wx_ledger_submit(l, cmd, res);
    if (res->reason != WX_APPROVED) {
        snprintf(err, errlen, "seed: %s refused: %s", what, wx_reason_str(res->reason));
        return -1;
    }
    return 0;
}

/* Random PANs collide (a 16-digit PAN on a 6-digit BIN leaves 10^9 numbers, so a million
 * cards expect hundreds of collisions), and the engine refuses a known card reference with
 * other details: draw again, a bounded number of times. */
int wx_issuing_issue_card(wx_ledger_t *l, const wx_keys_t *keys, const struct wx_card_request *req,
                          int64_t now, struct wx_result *res, struct wx_issued_card *out, char *err,
                          size_t errlen)
{
    struct wx_cmd cmdbuf, *cmd = &cmdbuf;
    for (int attempt = 0; attempt < PAN_ATTEMPTS; attempt++) {
        if (wx_issuing_card_cmd(keys, req, now, cmd, out, err, errlen) != 0) {
            return -1;
        }
        wx_ledger_submit(l, cmd, res);
        if (res->reason != WX_R_DUPLICATE_MISMATCH) {
            break;
        }
        wx_wipe(out, sizeof *out);
    }
    if (res->reason != WX_APPROVED) {
        snprintf(err, errlen, "card issue refused: %s", wx_reason_str(res->reason));
        return -1;
    }
    out->card_id = res->id;
    out->account_id = res->account_id;
    return 0;
}

/* One synthetic cardholder: customer, main card with its account, activation. */
static int seed_one(wx_ledger_t *l, const wx_keys_t *keys, uint32_t i, const char *bin,
                    int pan_length, int64_t now, FILE *pans, char *err, size_t errlen)
{
    struct wx_cmd cmd;
    struct wx_result res;
    char name[32], id_doc[24], mobile[16], key[WX_KEY_MAX + 1];
    snprintf(name, sizeof name, "Cardholder %u", i);
    snprintf(id_doc, sizeof id_doc, "SEED%014u", i);
    snprintf(mobile, sizeof mobile, "139%08u", i % 100000000u);
    snprintf(key, sizeof key, "seed:customer:%u", i);
    if (wx_issuing_customer_cmd(keys, name, id_doc, mobile, key, now, &cmd, err, errlen) ||
        submit_ok(l, &cmd, &res, "customer", err, errlen)) {
        return -1;
    }
    struct wx_card_request req = {.customer_id = res.id,
                                  .credit_limit = (5000 + i % 96 * 1000) * 100LL,
                                  .statement_day = (uint8_t)(1 + i % 28),
                                  .bin = bin,
                                  .pan_length = pan_length,
                                  .validity_years = 5};
    struct wx_issued_card card;
    if (wx_issuing_issue_card(l, keys, &req, now, &res, &card, err, errlen) != 0) {
        return -1;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.kind = WX_CMD_CARD_ACTIVATE;
    cmd.time_ms = now;
    cmd.key_len = (uint8_t)snprintf(cmd.key, sizeof cmd.key, "seed:activate:%u", res.id);
    cmd.card_status.card_id = res.id;
    if (submit_ok(l, &cmd, &res, "activation", err, errlen)) {
        return -1;
    }
    if (pans != NULL) {
        fprintf(pans, "%s\t%04u\t%lld\n", card.pan, (unsigned)card.expiry,
                (long long)req.credit_limit);
    }
    wx_wipe(&card, sizeof card);
    return 0;
}

int wx_issuing_seed(wx_ledger_t *ledger, const wx_keys_t *keys, uint32_t n, const char *bin,
                    int pan_length, FILE *pans, char *err, size_t errlen)
{
    int64_t now = wx_now_ms();
    struct wx_engine_stats st;
    wx_engine_stats(wx_ledger_engine(ledger), &st);
    for (uint32_t i = 0; i < n; i++) {
        if (seed_one(ledger, keys, st.customers + i + 1, bin, pan_length, now, pans, err, errlen) !=
            0) {
            return -1;
        }
        if (i % 4096 == 4095) {
            wx_ledger_flush(ledger);
        }
    }
    wx_ledger_sync(ledger, wx_engine_last_seq(wx_ledger_engine(ledger)));
    return pans != NULL && fflush(pans) != 0 ? -1 : 0;
}
