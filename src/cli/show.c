/*
 * show.c - printing results, cards and accounts for bank staff.
 */
#include "cli/show.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "history/history.h"
#include "util/money.h"
#include "util/timeutil.h"

int wx_show_result(const char *what, const struct wx_result *res)
{
    if (res->reason == WX_APPROVED) {
        return WX_EXIT_OK;
    }
    fprintf(stderr, "wxbank %s: refused: %s (%s)\n", what, wx_reason_str(res->reason),
            wx_reason_name(res->reason));
    return WX_EXIT_FAIL;
}

void wx_show_masked(const struct wx_card_view *card, char out[20])
{
    snprintf(out, 20, "%06u******%04u", card->first6, (unsigned)card->last4);
}

static void money(int64_t fen, char *out, size_t cap)
{
    wx_amount_format(fen, out, cap);
}

int wx_show_account(struct wx_cli *cli, uint32_t account_id)
{
    struct wx_account_view a;
    if (wx_engine_account(wx_ledger_engine(cli->ledger), account_id, &a) != 0) {
        fprintf(stderr, "wxbank: account %u does not exist\n", account_id);
        return WX_EXIT_FAIL;
    }
    char limit[32], temp[32], posted[32], held[32], avail[32];
    money(a.credit_limit, limit, sizeof limit);
    money(a.temp_limit, temp, sizeof temp);
    money(a.posted, posted, sizeof posted);
    money(a.held, held, sizeof held);
    money(a.available, avail, sizeof avail);
    printf("account %u  CNY  statement day %u\n"
           "  credit limit   %16s\n  temporary      %16s\n  posted balance %16s\n"
           "  open holds     %16s\n  available      %16s\n",
           a.id, a.statement_day, limit, temp, posted, held, avail);
    return WX_EXIT_OK;
}

static void show_history(struct wx_cli *cli, uint32_t card_id, uint32_t account_id)
{
    struct wx_history_item items[10];
    size_t n = 0;
    char err[256];
    if (wx_history_recent(cli->db_path, card_id, account_id, items, 10, &n, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank: history: %s\n", err);
        return;
    }
    printf("latest transactions (%zu):\n", n);
    int tz = wx_tz_offset_minutes(wx_config_str(cli->cfg, "tz"));
    for (size_t i = 0; i < n; i++) {
        char when[32], amount[32];
        wx_time_format(items[i].at_ms, tz, when, sizeof when);
        money(items[i].amount, amount, sizeof amount);
        printf("  %s  %-14s %14s  %-10s %s\n", when, wx_cmd_kind_name(items[i].kind), amount,
               items[i].reason == WX_APPROVED ? "approved" : wx_reason_name(items[i].reason),
               items[i].merchant);
    }
}

int wx_show_card(struct wx_cli *cli, uint32_t card_id)
{
    const wx_engine_t *e = wx_ledger_engine(cli->ledger);
    struct wx_card_view c;
    struct wx_customer_view who;
    if (wx_engine_card(e, card_id, &c) != 0 || wx_engine_customer(e, c.customer_id, &who) != 0) {
        fprintf(stderr, "wxbank: card %u does not exist\n", card_id);
        return WX_EXIT_FAIL;
    }
    char masked[20];
    wx_show_masked(&c, masked);
    size_t mlen = strlen(who.mobile);
    printf("card %u  %s  expiry %02u/%02u  %s  %s\n"
           "  holder %s (customer %u, ID ****%s, mobile ****%s)\n",
           c.id, masked, c.expiry % 100u, c.expiry / 100u, wx_card_status_name(c.status),
           c.supplementary ? "supplementary" : "main", who.name, who.id, who.id_last4,
           mlen >= 4 ? who.mobile + mlen - 4 : who.mobile);
    int rc = wx_show_account(cli, c.account_id);
    if (rc == WX_EXIT_OK) {
        show_history(cli, c.id, c.account_id);
    }
    return rc;
}
