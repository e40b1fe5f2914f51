/*
 * cmd_sandbox.c - `wxbank sandbox`: the WeChat platform emulator on its own listener
 * (sandbox.listen), until SIGINT or SIGTERM.
 *
 * It decides nothing and opens no database: a hub without a ledger, an HTTP listener, and
 * the sandbox on it. The bank (`wxbank serve`) is pointed at it with wechat.api_base =
 * http://SANDBOX/sandbox, and the sandbox at the bank with sandbox.webhook_url; both read the
 * same wechat.* keys, as the bank and the real platform share them. Demo cards for the POS
 * page come from a `wxbank seed --pans` file.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "net/net.h"
#include "sandbox/sandbox.h"
#include "util/crypto.h"

#define CARD_LINE_MAX 128

static const char USAGE[] =
    "usage: wxbank sandbox [--config FILE] [--cards PANS_FILE]\n"
    "  --cards FILE  demo cards for the POS page: lines of\n"
    "                PAN<TAB>YYMM[<TAB>...] as `wxbank seed --pans` writes\n";

/* Adds the cards of a `seed --pans` file (at most WX_SANDBOX_CARDS_MAX). */
static int add_cards(wx_sandbox_t *sb, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "wxbank sandbox: --cards: cannot open %s\n", path);
        return WX_EXIT_USAGE;
    }
    char line[CARD_LINE_MAX], err[160], label[32];
    int rc = WX_EXIT_OK;
    for (unsigned n = 1;
         rc == WX_EXIT_OK && n <= WX_SANDBOX_CARDS_MAX && fgets(line, sizeof line, f) != NULL;
         n++) {
        char *tab = strchr(line, '\t');
        if (tab != NULL) *tab = '\0';
        char *expiry = tab != NULL ? tab + 1 : NULL;
        if (expiry != NULL) expiry[strcspn(expiry, "\t\r\n")] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(label, sizeof label, "demo card %u", n);
        struct wx_sandbox_card c = {.label = label, .pan = line, .expiry = expiry};
        if (wx_sandbox_add_card(sb, &c, err, sizeof err) != 0) {
            fprintf(stderr, "wxbank sandbox: %s line %u: %s\n", path, n, err);
            rc = WX_EXIT_USAGE;
        }
        wx_wipe(line, sizeof line);
    }
    fclose(f);
    return rc;
}

/* Starts the listener and the sandbox on a ledger-less hub; runs until shutdown. */
static int run(struct wx_cli *cli, const char *cards)
{
    char err[512];
    struct wx_sandbox_options opt;
    if (wx_sandbox_options_from_config(cli->cfg, &opt, err, sizeof err) != 0 ||
        wx_sandbox_options_check(&opt, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank sandbox: %s\n", err);
        return WX_EXIT_USAGE;
    }
    struct wx_http_options http_opt;
    wx_http_options_from_config(cli->cfg, &http_opt);
    http_opt.listen = wx_config_str(cli->cfg, "sandbox.listen");
    wx_hub_t *hub = wx_hub_new(NULL, NULL, err, sizeof err);
    if (hub == NULL) {
        fprintf(stderr, "wxbank sandbox: %s\n", err);
        return WX_EXIT_FAIL;
    }
    int rc = WX_EXIT_FAIL;
    wx_sandbox_t *sb = NULL;
    wx_http_t *http = wx_http_start(hub, &http_opt, err, sizeof err);
    if (http == NULL) {
        fprintf(stderr, "wxbank sandbox: sandbox.listen: %s\n", err);
        goto out;
    }
    sb = wx_sandbox_start(hub, http, &opt, err, sizeof err);
    if (sb == NULL) {
        fprintf(stderr, "wxbank sandbox: %s\n", err);
        rc = WX_EXIT_USAGE;
        goto out;
    }
    rc = cards != NULL ? add_cards(sb, cards) : WX_EXIT_OK;
    if (rc != WX_EXIT_OK) goto out;
    printf("sandbox on %s\n", wx_sandbox_page_url(sb));
    printf("  wechat.api_base = %s\n", wx_sandbox_api_base(sb));
    fflush(stdout);
    wx_hub_run(hub);
out:
    wx_sandbox_free(sb);
    wx_http_free(http);
    wx_hub_free(hub);
    return rc;
}

int wx_cmd_sandbox(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"cards", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *cards = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'c') {
            config = optarg;
        } else if (ch == 'C') {
            cards = optarg;
        } else {
            fputs(USAGE, ch == 'h' ? stdout : stderr);
            return ch == 'h' ? WX_EXIT_OK : WX_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fputs(USAGE, stderr);
        return WX_EXIT_USAGE;
    }
    struct wx_cli cli;
    int rc = wx_cli_open(&cli, config, WX_CLI_CONFIG, false);
    if (rc == WX_EXIT_OK) rc = run(&cli, cards);
    wx_cli_close(&cli);
    return rc;
}
