/*
 * cmd_serve.c - `wxbank serve`: the bank's listeners on one loop, until SIGINT or SIGTERM.
 *
 * Opens the ledger (recovering it) and the card-number keys the way every subcommand does,
 * then attaches the ISO 8583 host and the HTTP listener to one hub. The database must exist
 * (`wxbank init`).
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>

#include "iso8583/iso8583.h"
#include "net/net.h"

/* Starts the listeners on hub and runs until shutdown. Returns an exit code. */
static int serve(struct wx_cli *cli)
{
    char err[512];
    struct wx_iso_server_options iso_opt;
    if (wx_iso_server_options_from_config(cli->cfg, &iso_opt, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank serve: %s\n", err);
        return WX_EXIT_USAGE;
    }
    struct wx_http_options http_opt;
    wx_http_options_from_config(cli->cfg, &http_opt);
    wx_hub_t *hub = wx_hub_new(cli->ledger, cli->keys, err, sizeof err);
    if (hub == NULL) {
        fprintf(stderr, "wxbank serve: %s\n", err);
        return WX_EXIT_FAIL;
    }
    int rc = WX_EXIT_FAIL;
    wx_iso_server_t *iso = wx_iso_server_start(hub, &iso_opt, err, sizeof err);
    wx_http_t *http = iso != NULL ? wx_http_start(hub, &http_opt, err, sizeof err) : NULL;
    if (http == NULL) {
        fprintf(stderr, "wxbank serve: %s\n", err);
    } else {
        wx_hub_run(hub);
        rc = WX_EXIT_OK;
    }
    wx_http_free(http);
    wx_iso_server_free(iso);
    wx_hub_free(hub);
    return rc;
}

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
    if (rc == WX_EXIT_OK) rc = serve(&cli);
    wx_cli_close(&cli);
    return rc;
}
