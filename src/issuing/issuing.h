/*
 * issuing.h - building the bank's own commands from what staff type: customers, card
 * issuance (the card-personalization output), and synthetic cardholders for demos, tests
 * and benchmarks.
 *
 * This is where a new PAN exists in clear: generated here, sealed and referenced through
 * the keys module, and handed once to the caller for personalization. Nothing here logs it.
 */
#ifndef WX_ISSUING_ISSUING_H
#define WX_ISSUING_ISSUING_H

#include <stdint.h>
#include <stdio.h>

#include "core/engine.h"
#include "keys/keys.h"
#include "ledger/ledger.h"

/* A freshly issued card, as printed once for personalization. */
struct wx_issued_card {
    uint32_t card_id, account_id;
    char pan[WX_PAN_MAX + 1];
    uint16_t expiry; /* YYMM */
    char cvv[4];
};

/* Fills a customer-add command. Returns 0, or -1 with a message naming the bad field. */
int wx_issuing_customer_cmd(const wx_keys_t *keys, const char *name, const char *id_doc,
                            const char *mobile, const char *key, int64_t now_ms, struct wx_cmd *cmd,
                            char *err, size_t errlen);

/* What a card issue needs beyond the keys. */
struct wx_card_request {
    uint32_t customer_id;
    uint32_t account_id;   /* 0: a main card opening an account */
    int64_t credit_limit;  /* new account only, fen */
    uint8_t statement_day; /* new account only */
    const char *bin;       /* card.bin */
    int pan_length;        /* card.pan_length */
    int validity_years;    /* card.validity_years */
};

/*
 * Generates a PAN, expiry and CVV2 and fills a card-issue command; out receives the clear
 * values. Returns 0, or -1 with a message (a bad BIN or length).
 */
int wx_issuing_card_cmd(const wx_keys_t *keys, const struct wx_card_request *req, int64_t now_ms,
                        struct wx_cmd *cmd, struct wx_issued_card *out, char *err, size_t errlen);

/*
 * Issues a card through the ledger (not yet durable: res->seq says when), drawing a new PAN
 * when the random one is already taken. Returns 0 with the card in *out (its ids set), or -1
 * with a message (a bad BIN, an unknown customer or account, ...).
 */
int wx_issuing_issue_card(wx_ledger_t *ledger, const wx_keys_t *keys,
                          const struct wx_card_request *req, int64_t now_ms, struct wx_result *res,
                          struct wx_issued_card *out, char *err, size_t errlen);

/*
 * Creates n synthetic cardholders (one customer, one account, one active card each) through
 * the ledger, durably. When pans is not NULL it receives one line per card:
 * PAN<TAB>expiry YYMM<TAB>credit limit in fen (DESIGN.md). Limits are spread between 5,000
 * and 100,000 yuan. Returns 0, or -1 with a message.
 */
int wx_issuing_seed(wx_ledger_t *ledger, const wx_keys_t *keys, uint32_t n, const char *bin,
                    int pan_length, FILE *pans, char *err, size_t errlen);

#endif
