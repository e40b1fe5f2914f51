/*
 * cmd_serve.c - `wxbank serve`: the ISO 8583 authorization host, until SIGINT or SIGTERM.
 *
 * Opens the ledger (recovering it) and the card-number keys the way every subcommand does,
 * then hands both to the ISO 8583 server. The database must exist (`wxbank init`).
 */
#include "cli/cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "iso8583/iso8583.h"

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
        char err[512];
        struct wx_iso_server_options opt;
        signal(SIGPIPE, SIG_IGN); /* a switch that hangs up must not kill the host */
        if (wx_iso_server_options_from_config(cli.cfg, &opt, err, sizeof err) != 0) {
            fprintf(stderr, "wxbank serve: %s\n", err);
            rc = WX_EXIT_USAGE;
        } else if (wx_iso_serve(&opt, cli.ledger, cli.keys, err, sizeof err) != 0) {
            fprintf(stderr, "wxbank serve: %s\n", err);
            rc = WX_EXIT_FAIL;
        }
    }
    wx_cli_close(&cli);
    return rc;
}
