/*
 * cmd_audit.c - `wxbank audit`: the secure back end's audit log, newest first.
 *
 *   wxbank audit [--customer ID] [--limit N] [--config FILE]
 *
 * Every sensitive action on the secure pages (binding, logins, password changes, unlocking)
 * is logged in <db>.web with who (customer and follower), the requester's IP address hashed
 * under the file's own key, what and how it ended. Reads beside a running server.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/timeutil.h"
#include "web/web.h"

#define LIST_DEFAULT 50
#define LIST_MAX     100000

static const char USAGE[] = "wxbank audit [--customer ID] [--limit N] [--config FILE]";

static void print_entry(void *ctx, const struct wx_audit_entry *e)
{
    int tz = *(const int *)ctx;
    char when[40];
    wx_time_format(e->at_ms, tz, when, sizeof when);
    printf("%s  %8u  %-28s  %-16s  %-14s  %s\n", when, e->customer_id,
           e->openid[0] != '\0' ? e->openid : "-", e->ip_hash[0] != '\0' ? e->ip_hash : "-",
           e->action, e->result);
}

int wx_cmd_audit(int argc, char **argv)
{
    static const struct option opts[] = {{"customer", required_argument, NULL, 'u'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *config = NULL;
    uint32_t customer = 0;
    long limit = LIST_DEFAULT;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        if (c == 'c') {
            config = optarg;
        } else if (c == 'u') {
            if (!wx_cli_parse_id(optarg, "--customer", &customer)) return WX_EXIT_USAGE;
        } else if (c == 'l' && (limit = strtol(optarg, &end, 10)) >= 1 && limit <= LIST_MAX &&
                   *end == '\0') {
            continue;
        } else {
            if (c == 'l') fprintf(stderr, "wxbank audit: --limit: 1 to %d\n", LIST_MAX);
            fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", USAGE);
            return c == 'h' ? WX_EXIT_OK : WX_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return WX_EXIT_USAGE;
    }
    struct wx_cli cli;
    int rc = wx_cli_open(&cli, config, WX_CLI_CONFIG, false);
    if (rc != WX_EXIT_OK) return rc;
    int tz = wx_tz_offset_minutes(wx_config_str(cli.cfg, "tz"));
    char err[512];
    printf("%-19s  %8s  %-28s  %-16s  %-14s  %s\n", "WHEN", "CUSTOMER", "OPENID", "IP (HASHED)",
           "ACTION", "RESULT");
    if (wx_web_audit_list(cli.db_path, customer, (size_t)limit, print_entry, &tz, err,
                          sizeof err) != 0) {
        fprintf(stderr, "wxbank audit: %s\n", err);
        rc = WX_EXIT_FAIL;
    }
    wx_cli_close(&cli);
    return rc;
}
