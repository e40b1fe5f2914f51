/*
 * cmd_card.c - `wxbank customer add` and `wxbank card ...`: the staff side of customers and
 * cards. `card issue` is the card-personalization output: the only time the PAN and CVV2 are
 * printed in clear. Everything else shows the masked number.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/show.h"
#include "issuing/issuing.h"
#include "util/money.h"
#include "util/pan.h"
#include "util/timeutil.h"

/* Options shared by the staff commands: --config, --key (idempotency), --help. */
struct staff_args {
    const char *config, *key, *name, *id_doc, *mobile, *pan;
    const char *customer, *account, *limit, *statement_day;
};

static int parse_staff_args(int argc, char **argv, struct staff_args *a, const char *usage)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"key", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'n'},     {"id-doc", required_argument, NULL, 'i'},
        {"mobile", required_argument, NULL, 'm'},   {"pan", required_argument, NULL, 'p'},
        {"customer", required_argument, NULL, 'u'}, {"account", required_argument, NULL, 'a'},
        {"limit", required_argument, NULL, 'l'},    {"statement-day", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},           {0}};
    const char **slot[128] = {
        ['c'] = &a->config, ['k'] = &a->key,          ['n'] = &a->name,     ['i'] = &a->id_doc,
        ['m'] = &a->mobile, ['p'] = &a->pan,          ['u'] = &a->customer, ['a'] = &a->account,
        ['l'] = &a->limit,  ['s'] = &a->statement_day};
    memset(a, 0, sizeof *a);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c > 0 && c < 128 && slot[c] != NULL) {
            *slot[c] = optarg;
            continue;
        }
        fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", usage);
        return c == 'h' ? -1 : WX_EXIT_USAGE;
    }
    return WX_EXIT_OK;
}

static int customer_add(int argc, char **argv)
{
    const char *usage = "wxbank customer add --name NAME --id-doc NUMBER --mobile PHONE "
                        "[--key KEY] [--config FILE]";
    struct staff_args a;
    int rc = parse_staff_args(argc, argv, &a, usage);
    if (rc != WX_EXIT_OK) {
        return rc < 0 ? WX_EXIT_OK : rc;
    }
    if (a.name == NULL || a.id_doc == NULL || a.mobile == NULL) {
        fprintf(stderr, "usage: %s\n", usage);
        return WX_EXIT_USAGE;
    }
    struct wx_cli cli;
    rc = wx_cli_open(&cli, a.config, WX_CLI_LEDGER, true);
    if (rc == WX_EXIT_OK) {
        char key[WX_KEY_MAX + 1], err[256];
        struct wx_cmd cmd;
        struct wx_result res;
        wx_cli_key(a.key, "customer", key);
        if (wx_issuing_customer_cmd(cli.keys, a.name, a.id_doc, a.mobile, key, wx_now_ms(), &cmd,
                                    err, sizeof err) != 0) {
            fprintf(stderr, "wxbank customer add: %s\n", err);
            rc = WX_EXIT_USAGE;
        } else {
            wx_cli_submit(&cli, &cmd, &res);
            rc = wx_show_result("customer add", &res);
            if (rc == WX_EXIT_OK) {
                printf("customer %u%s\n", res.id, res.repeat ? " (already known)" : "");
            }
        }
    }
    wx_cli_close(&cli);
    return rc;
}

int wx_cmd_customer(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "add") == 0) {
        return customer_add(argc - 1, argv + 1);
    }
    fprintf(stderr, "usage: wxbank customer add --name NAME --id-doc NUMBER --mobile PHONE\n");
    return WX_EXIT_USAGE;
}

static int parse_limit(const char *text, int64_t *fen)
{
    if (text == NULL) {
        *fen = 5000000; /* 50,000.00 yuan */
        return 0;
    }
    if (wx_amount_parse(text, fen) != 0 || *fen > WX_LIMIT_MAX) {
        fprintf(stderr, "wxbank: --limit: expected an amount in yuan such as 50000.00\n");
        return -1;
    }
    return 0;
}

static int issue_request(const struct staff_args *a, const struct wx_cli *cli,
                         struct wx_card_request *req)
{
    memset(req, 0, sizeof *req);
    uint32_t day = 5;
    if (!wx_cli_parse_id(a->customer, "--customer", &req->customer_id) ||
        (a->account && !wx_cli_parse_id(a->account, "--account", &req->account_id)) ||
        (a->statement_day && !wx_cli_parse_id(a->statement_day, "--statement-day", &day)) ||
        parse_limit(a->limit, &req->credit_limit) != 0) {
        return WX_EXIT_USAGE;
    }
    if (day > 28) {
        fprintf(stderr, "wxbank: --statement-day: must be 1 to 28\n");
        return WX_EXIT_USAGE;
    }
    req->statement_day = (uint8_t)day;
    req->bin = wx_config_str(cli->cfg, "card.bin");
    req->pan_length = (int)wx_config_int(cli->cfg, "card.pan_length");
    req->validity_years = (int)wx_config_int(cli->cfg, "card.validity_years");
    return WX_EXIT_OK;
}

static int card_issue(int argc, char **argv)
{
    const char *usage = "wxbank card issue --customer ID [--limit YUAN] [--statement-day D] "
                        "[--account ID (supplementary)] [--config FILE]";
    struct staff_args a;
    int rc = parse_staff_args(argc, argv, &a, usage);
    if (rc != WX_EXIT_OK) {
        return rc < 0 ? WX_EXIT_OK : rc;
    }
    struct wx_cli cli;
    rc = wx_cli_open(&cli, a.config, WX_CLI_LEDGER, true);
    struct wx_card_request req;
    if (rc == WX_EXIT_OK) {
        rc = issue_request(&a, &cli, &req);
    }
    if (rc == WX_EXIT_OK) {
        struct wx_result res;
        struct wx_issued_card card;
        char err[256];
        if (wx_issuing_issue_card(cli.ledger, cli.keys, &req, wx_now_ms(), &res, &card, err,
                                  sizeof err) != 0) {
            fprintf(stderr, "wxbank card issue: %s\n", err);
            rc = WX_EXIT_FAIL;
        } else {
            wx_ledger_sync(cli.ledger, res.seq);
        }
        if (rc == WX_EXIT_OK) {
            /* Card personalization output: printed once, never stored or logged in clear. */
            printf("card %u on account %u\nPAN     %s\nexpiry  %02u/%02u\nCVV2    %s\n"
                   "status  not-activated (activate with: wxbank card activate %u)\n",
                   res.id, res.account_id, card.pan, card.expiry % 100u, card.expiry / 100u,
                   card.cvv, res.id);
        }
        memset(&card, 0, sizeof card);
    }
    wx_cli_close(&cli);
    return rc;
}

/* Finds the card a staff member names: an id, or --pan. */
static int card_named(struct wx_cli *cli, const char *id_text, const char *pan_text,
                      struct wx_card_view *card)
{
    const wx_engine_t *e = wx_ledger_engine(cli->ledger);
    if (pan_text != NULL) {
        char pan[WX_PAN_MAX + 1];
        uint8_t ref[WX_REF_LEN];
        if (wx_pan_parse(pan_text, pan) != 0) {
            fprintf(stderr, "wxbank: --pan: not a valid card number\n");
            return WX_EXIT_USAGE;
        }
        wx_card_ref(cli->keys, pan, ref);
        memset(pan, 0, sizeof pan);
        if (wx_engine_card_by_ref(e, ref, card) != 0) {
            fprintf(stderr, "wxbank: no such card\n");
            return WX_EXIT_FAIL;
        }
        return WX_EXIT_OK;
    }
    uint32_t id;
    if (!wx_cli_parse_id(id_text, "card id", &id)) {
        return WX_EXIT_USAGE;
    }
    if (wx_engine_card(e, id, card) != 0) {
        fprintf(stderr, "wxbank: card %u does not exist\n", id);
        return WX_EXIT_FAIL;
    }
    return WX_EXIT_OK;
}

static const struct {
    const char *verb;
    uint8_t kind, status;
} status_verbs[] = {
    {"activate", WX_CMD_CARD_ACTIVATE, WX_CARD_ACTIVE},
    {"lock", WX_CMD_CARD_STATUS, WX_CARD_LOCKED},
    {"unlock", WX_CMD_CARD_STATUS, WX_CARD_ACTIVE},
    {"lost", WX_CMD_CARD_STATUS, WX_CARD_LOST},
    {"stolen", WX_CMD_CARD_STATUS, WX_CARD_STOLEN},
    {"close", WX_CMD_CARD_STATUS, WX_CARD_CLOSED},
};

static int card_verb(int argc, char **argv, const char *verb)
{
    struct staff_args a;
    const char *usage = "wxbank card show|activate|lock|unlock|lost|stolen|close (ID | --pan PAN) "
                        "[--key KEY] [--config FILE]";
    int rc = parse_staff_args(argc, argv, &a, usage);
    if (rc != WX_EXIT_OK) {
        return rc < 0 ? WX_EXIT_OK : rc;
    }
    const char *id_text = optind < argc ? argv[optind] : NULL;
    struct wx_cli cli;
    struct wx_card_view card;
    rc = wx_cli_open(&cli, a.config, WX_CLI_LEDGER, false);
    if (rc == WX_EXIT_OK) {
        rc = card_named(&cli, id_text, a.pan, &card);
    }
    if (rc == WX_EXIT_OK && strcmp(verb, "show") == 0) {
        rc = wx_show_card(&cli, card.id);
    } else if (rc == WX_EXIT_OK) {
        size_t i = 0;
        while (strcmp(status_verbs[i].verb, verb) != 0) {
            i++;
        }
        struct wx_cmd cmd = {.kind = status_verbs[i].kind, .time_ms = wx_now_ms()};
        char key[WX_KEY_MAX + 1];
        wx_cli_key(a.key, verb, key);
        cmd.key_len = (uint8_t)strlen(key);
        memcpy(cmd.key, key, cmd.key_len);
        cmd.card_status.card_id = card.id;
        cmd.card_status.status = status_verbs[i].status;
        struct wx_result res;
        wx_cli_submit(&cli, &cmd, &res);
        rc = wx_show_result(verb, &res);
        if (rc == WX_EXIT_OK) {
            rc = wx_show_card(&cli, card.id);
        }
    }
    wx_cli_close(&cli);
    return rc;
}

int wx_cmd_card(int argc, char **argv)
{
    const char *verb = argc >= 2 ? argv[1] : "";
    if (strcmp(verb, "issue") == 0) {
        return card_issue(argc - 1, argv + 1);
    }
    if (strcmp(verb, "show") == 0) {
        return card_verb(argc - 1, argv + 1, verb);
    }
    for (size_t i = 0; i < sizeof status_verbs / sizeof status_verbs[0]; i++) {
        if (strcmp(verb, status_verbs[i].verb) == 0) {
            return card_verb(argc - 1, argv + 1, verb);
        }
    }
    fprintf(stderr, "usage: wxbank card issue|show|activate|lock|unlock|lost|stolen|close ...\n");
    return WX_EXIT_USAGE;
}
