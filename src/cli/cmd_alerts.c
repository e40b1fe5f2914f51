/*
 * cmd_alerts.c - `wxbank alerts ...`: what became of the alerts' sends, the dead-letter list,
 * and replaying it.
 *
 * Everything here reads and writes <db>.notify, not the journal, so it works beside a running
 * server: a replay flags the dead sends, and the server's dispatcher takes them within a
 * second or two (a stopped server at its next start).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "notify/notify.h"
#include "util/timeutil.h"

#define LIST_DEFAULT 50
#define LIST_MAX     100000

static const char USAGE[] = "wxbank alerts status | list [--state S] [--from SEQ] [--limit N] | "
                            "dead [--limit N] | replay SEQ|--all | lang OPENID zh|en "
                            "[--config FILE]";

struct alerts_args {
    const char *config, *state;
    uint64_t from;
    size_t limit;
    bool all;
};

static void print_row(void *ctx, const struct wx_send_row *r)
{
    int tz = *(const int *)ctx;
    char when[40], to[WX_OPENID_MAX + 8];
    wx_time_format(r->updated_ms, tz, when, sizeof when);
    wx_send_row_shown_to(r, to, sizeof to);
    printf("%-10llu %-6s %-11s %-30s %3u  %s", (unsigned long long)r->seq,
           wx_send_channel_name(r->channel), wx_send_state_name(r->state), to, r->attempts, when);
    if (r->error[0] != '\0') printf("  %d %s", r->errcode, r->error);
    printf("\n");
}

static int parse_state(const char *name)
{
    for (int s = 0; s < WX_SEND_STATES; s++) {
        if (strcmp(name, wx_send_state_name((uint8_t)s)) == 0) return s;
    }
    return -2;
}

static int parse_args(int argc, char **argv, struct alerts_args *a)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"state", required_argument, NULL, 's'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    memset(a, 0, sizeof *a);
    a->limit = LIST_DEFAULT;
    optind = 2; /* after "alerts VERB" */
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 's':
            a->state = optarg;
            break;
        case 'f':
            a->from = strtoull(optarg, &end, 10);
            if (*end != '\0' || optarg[0] == '-') goto bad;
            break;
        case 'l':
            a->limit = strtoul(optarg, &end, 10);
            if (*end != '\0' || optarg[0] == '-' || a->limit == 0 || a->limit > LIST_MAX) goto bad;
            break;
        case 'a':
            a->all = true;
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", USAGE);
            return c == 'h' ? -1 : WX_EXIT_USAGE;
        }
    }
    return WX_EXIT_OK;
bad:
    fprintf(stderr, "wxbank alerts: --%s: a number%s\n", c == 'f' ? "from" : "limit",
            c == 'l' ? " from 1 to 100000" : "");
    return WX_EXIT_USAGE;
}

static int status(const struct wx_cli *cli)
{
    uint64_t counts[WX_SEND_STATES], watermark;
    char err[512];
    if (wx_outbox_counts(cli->db_path, counts, &watermark, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank alerts: %s\n", err);
        return WX_EXIT_FAIL;
    }
    printf("journal rows looked at: up to %llu\n", (unsigned long long)watermark);
    for (int s = 0; s < WX_SEND_STATES; s++) {
        printf("%-12s %llu\n", wx_send_state_name((uint8_t)s), (unsigned long long)counts[s]);
    }
    return WX_EXIT_OK;
}

static int list(const struct wx_cli *cli, int state, const struct alerts_args *a)
{
    char err[512];
    int tz = wx_tz_offset_minutes(wx_config_str(cli->cfg, "tz"));
    printf("%-10s %-6s %-11s %-30s %3s  %s\n", "seq", "via", "state", "to", "try", "changed");
    if (wx_outbox_list(cli->db_path, state, a->from, a->limit, print_row, &tz, err, sizeof err) !=
        0) {
        fprintf(stderr, "wxbank alerts: %s\n", err);
        return WX_EXIT_FAIL;
    }
    return WX_EXIT_OK;
}

static int replay(const struct wx_cli *cli, int argc, char **argv, const struct alerts_args *a)
{
    uint64_t seq = 0;
    if (!a->all) {
        char *end;
        seq = optind < argc ? strtoull(argv[optind], &end, 10) : 0;
        if (seq == 0 || *end != '\0') {
            fprintf(stderr, "usage: %s\n", USAGE);
            return WX_EXIT_USAGE;
        }
    }
    char err[512];
    long n = wx_outbox_replay(cli->db_path, seq, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "wxbank alerts: %s\n", err);
        return WX_EXIT_FAIL;
    }
    printf("%ld dead send%s queued again\n", n, n == 1 ? "" : "s");
    return WX_EXIT_OK;
}

/* A follower's language for alerts: a running server takes it within a second or two. */
static int set_lang(const struct wx_cli *cli, int argc, char **argv)
{
    const char *openid = optind < argc ? argv[optind] : "";
    const char *lang = optind + 1 < argc ? argv[optind + 1] : "";
    if (!wx_openid_valid(openid) || (strcmp(lang, "zh") != 0 && strcmp(lang, "en") != 0)) {
        fprintf(stderr, "usage: wxbank alerts lang OPENID zh|en\n");
        return WX_EXIT_USAGE;
    }
    char err[512];
    enum wx_lang l = strcmp(lang, "en") == 0 ? WX_LANG_EN : WX_LANG_ZH;
    if (wx_outbox_set_lang(cli->db_path, openid, l, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank alerts: %s\n", err);
        return WX_EXIT_FAIL;
    }
    printf("%s reads alerts in %s\n", openid, l == WX_LANG_EN ? "English" : "Chinese");
    return WX_EXIT_OK;
}

int wx_cmd_alerts(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : "";
    struct alerts_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != WX_EXIT_OK) return rc < 0 ? WX_EXIT_OK : rc;
    int state = -1;
    if (a.state != NULL && (state = parse_state(a.state)) < -1) {
        fprintf(stderr, "wxbank alerts: --state: pending, accepted, delivered, failed, dead or "
                        "undelivered\n");
        return WX_EXIT_USAGE;
    }
    bool known = strcmp(verb, "status") == 0 || strcmp(verb, "list") == 0 ||
                 strcmp(verb, "dead") == 0 || strcmp(verb, "replay") == 0 ||
                 strcmp(verb, "lang") == 0;
    if (!known) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return WX_EXIT_USAGE;
    }
    struct wx_cli cli;
    rc = wx_cli_open(&cli, a.config, WX_CLI_CONFIG, false);
    if (rc != WX_EXIT_OK) return rc;
    if (strcmp(verb, "status") == 0) {
        rc = status(&cli);
    } else if (strcmp(verb, "list") == 0) {
        rc = list(&cli, state, &a);
    } else if (strcmp(verb, "dead") == 0) {
        rc = list(&cli, WX_SEND_DEAD, &a);
    } else if (strcmp(verb, "lang") == 0) {
        rc = set_lang(&cli, argc, argv);
    } else {
        rc = replay(&cli, argc, argv, &a);
    }
    wx_cli_close(&cli);
    return rc;
}
