/*
 * bank.h - the bank's serving process, shared by `wxbank serve` and `wxbank demo`.
 *
 * Private to src/cli.
 */
#ifndef WX_CLI_BANK_H
#define WX_CLI_BANK_H

#include "cli/cli.h"
#include "fetch/fetch.h"
#include "iso8583/iso8583.h"
#include "net/net.h"
#include "wechat/wechat.h"

/* Everything the bank runs on its loop. */
struct wx_bank {
    wx_hub_t *hub;
    wx_iso_server_t *iso;
    wx_http_t *http;
    wx_fetch_t *fetch;
    wx_wechat_api_t *api; /* NULL when wechat.secret is empty */
    wx_webhook_t *webhook;
};

/* Starts every listener from cli's configuration, ledger and keys. Returns an exit code;
 * on failure everything started is stopped again and the reason is on stderr. */
int wx_bank_start(struct wx_bank *b, struct wx_cli *cli);

/* Stops and frees everything (after wx_hub_run returned, or after a failed start). */
void wx_bank_stop(struct wx_bank *b);

#endif
