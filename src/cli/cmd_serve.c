/*
 * cmd_serve.c - `wxbank serve`: the bank's listeners on one loop, until SIGINT or SIGTERM.
 *
 * Opens the ledger (recovering it) and the card-number keys the way every subcommand does,
 * then runs the bank (bank.c): the ISO 8583 host, the HTTP listener with the WeChat webhook
 * and the platform API client. The database must exist (`wxbank init`).
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/bank.h"

int wx_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch != 'c') {
            fprintf(stderr, "usage: wxbank serve [--config FILE]\n");
            return WX_EXIT_USAGE;
        }
        config = optarg;
    }
    struct wx_cli cli;
    int rc = wx_cli_open(&cli, config, WX_CLI_LEDGER, false);
    if (rc == WX_EXIT_OK) {
        struct wx_bank b;
        rc = wx_bank_start(&b, &cli);
        if (rc == WX_EXIT_OK) {
            wx_hub_run(b.hub);
            wx_bank_stop(&b);
        }
    }
    wx_cli_close(&cli);
    return rc;
}
