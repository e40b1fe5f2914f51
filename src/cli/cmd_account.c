/*
 * cmd_account.c - `wxbank account ...`: the staff side of credit accounts: show, permanent
 * and temporary limits, repayments received, fees.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/show.h"
#include "util/money.h"
#include "util/timeutil.h"

#define MS_PER_DAY 86400000LL

struct account_args {
    const char *config, *key, *amount, *days;
    uint32_t account_id;
};

static const char USAGE[] = "wxbank account show|limit|temp-limit|repay|fee ID [--amount YUAN] "
                            "[--days N (temp-limit)] [--key KEY] [--config FILE]";

static int parse_args(int argc, char **argv, struct account_args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"key", required_argument, NULL, 'k'},
        {"amount", required_argument, NULL, 'a'}, {"days", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},         {0}};
    memset(a, 0, sizeof *a);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'k':
            a->key = optarg;
            break;
        case 'a':
            a->amount = optarg;
            break;
        case 'd':
            a->days = optarg;
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", USAGE);
            return c == 'h' ? -1 : WX_EXIT_USAGE;
        }
    }
    if (optind >= argc || !wx_cli_parse_id(argv[optind], "account id", &a->account_id)) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return WX_EXIT_USAGE;
    }
    return WX_EXIT_OK;
}

/* Builds the command a verb stands for. */
static int build(const char *verb, const struct account_args *a, struct wx_cmd *cmd)
{
    int64_t amount = 0;
    uint32_t days = 0;
    if (a->amount == NULL || wx_amount_parse(a->amount, &amount) != 0) {
        fprintf(stderr, "wxbank account %s: --amount: expected yuan such as 1234.56\n", verb);
        return WX_EXIT_USAGE;
    }
    memset(cmd, 0, sizeof *cmd);
    cmd->time_ms = wx_now_ms();
    char key[WX_KEY_MAX + 1];
    wx_cli_key(a->key, verb, key);
    cmd->key_len = (uint8_t)strlen(key);
    memcpy(cmd->key, key, cmd->key_len);
    if (strcmp(verb, "limit") == 0 || strcmp(verb, "temp-limit") == 0) {
        bool temp = verb[0] == 't';
        if (temp && (a->days == NULL || !wx_cli_parse_id(a->days, "--days", &days) || days > 366)) {
            fprintf(stderr, "wxbank account temp-limit: --days: 1 to 366\n");
            return WX_EXIT_USAGE;
        }
        cmd->kind = temp ? WX_CMD_TEMP_LIMIT_SET : WX_CMD_LIMIT_SET;
        cmd->limit.account_id = a->account_id;
        cmd->limit.amount = amount;
        cmd->limit.expires_ms = temp ? cmd->time_ms + (int64_t)days * MS_PER_DAY : 0;
        return WX_EXIT_OK;
    }
    cmd->kind = strcmp(verb, "repay") == 0 ? WX_CMD_REPAYMENT : WX_CMD_FEE;
    cmd->posting.account_id = a->account_id;
    cmd->posting.amount = amount;
    cmd->posting.currency = WX_CURRENCY_CNY;
    return WX_EXIT_OK;
}

int wx_cmd_account(int argc, char **argv)
{
    static const char *const verbs[] = {"show", "limit", "temp-limit", "repay", "fee"};
    const char *verb = argc >= 2 ? argv[1] : "";
    size_t i = 0;
    while (i < sizeof verbs / sizeof verbs[0] && strcmp(verb, verbs[i]) != 0) {
        i++;
    }
    struct account_args a;
    int rc =
        i < sizeof verbs / sizeof verbs[0] ? parse_args(argc - 1, argv + 1, &a) : WX_EXIT_USAGE;
    if (rc != WX_EXIT_OK) {
        if (rc == WX_EXIT_USAGE && i == sizeof verbs / sizeof verbs[0]) {
            fprintf(stderr, "usage: %s\n", USAGE);
        }
        return rc < 0 ? WX_EXIT_OK : rc;
    }
    struct wx_cmd cmd;
    if (i > 0 && (rc = build(verb, &a, &cmd)) != WX_EXIT_OK) {
        return rc;
    }
    struct wx_cli cli;
    rc = wx_cli_open(&cli, a.config, WX_CLI_LEDGER, false);
    if (rc == WX_EXIT_OK && i > 0) {
        struct wx_result res;
        wx_cli_submit(&cli, &cmd, &res);
        rc = wx_show_result(verb, &res);
    }
    if (rc == WX_EXIT_OK) {
        rc = wx_show_account(&cli, a.account_id);
    }
    wx_cli_close(&cli);
    return rc;
}
