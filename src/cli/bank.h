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
#include "notify/notify.h"
#include "ops/ops.h"
#include "web/web.h"
#include "wechat/wechat.h"

/* Everything the bank runs on its loop. */
struct wx_bank {
    wx_hub_t *hub;
    wx_iso_server_t *iso;
    wx_http_t *http; /* http.listen, and https.listen when it is set */
    wx_tls_t *tls;   /* https.cert and https.key; NULL without https.listen */
    wx_fetch_t *fetch;
    wx_wechat_api_t *api; /* NULL when wechat.secret is empty */
    wx_webhook_t *webhook;
    wx_notify_t *notify;   /* NULL when alerts.enabled is false */
    wx_metrics_t *metrics; /* GET /metrics on http */
    wx_ops_t *ops;         /* /api/v1 on http; NULL when ops.token is empty */
    wx_web_t *web;         /* the secure pages on https; NULL without https.listen */
};

/* Starts every listener from cli's configuration, ledger and keys. Returns an exit code;
 * on failure everything started is stopped again and the reason is on stderr. */
int wx_bank_start(struct wx_bank *b, struct wx_cli *cli);

/* Serves GET /metrics on b->http with the bank's collectors (bank_metrics.c), into
 * b->metrics. Call once every listener and client is started, before wx_hub_run. The
 * collectors borrow b's listener, hub and clients: b->metrics is freed right after
 * b->http and before everything else. */
void wx_bank_metrics_start(struct wx_bank *b);

/* Stops and frees everything (after wx_hub_run returned, or after a failed start). */
void wx_bank_stop(struct wx_bank *b);

#endif
