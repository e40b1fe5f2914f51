/*
 * cmd_chat.c - `wxbank chat ...`: the chat assistant without WeChat.
 *
 *   wxbank chat parse [--today YYYY-MM-DD] "TEXT"   what it understands, as one JSON object
 *   wxbank chat say --openid ID [TEXT...]          a dialogue's turns, one per TEXT (or per
 *                                                  line of standard input when none)
 *
 * parse needs no configuration and no database: it is the understanding alone, the same
 * code the webhook's conversation runs. Dates (今天, 上个月) are placed in Asia/Shanghai,
 * today unless --today says otherwise. say opens the bank's ledger as the server does and
 * answers as the follower ID (bound or not) would be answered on WeChat; a card lock the
 * follower confirms is submitted to the ledger, like `wxbank card lock`.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ledger/ledger.h"
#include "chat/chat.h"
#include "cli/cli.h"
#include "util/timeutil.h"

#define SHANGHAI_MINUTES 480

static const char USAGE[] = "wxbank chat parse [--today YYYY-MM-DD] \"TEXT\" | "
                            "say --openid ID [--config FILE] [TEXT...]";

static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Noon of YYYY-MM-DD in Shanghai, as epoch ms; -1 when the date is malformed. */
static int64_t noon_of(const char *date)
{
    if (strlen(date) != 10 || date[4] != '-' || date[7] != '-') return -1;
    int y = digits(date, 4), m = digits(date + 5, 2), d = digits(date + 8, 2);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) return -1;
    return wx_days_from_civil(y, m, d) * 86400000 + (12 * 60 - SHANGHAI_MINUTES) * 60000;
}

static int chat_parse(int argc, char **argv)
{
    static const struct option opts[] = {
        {"today", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {0}};
    int64_t now = wx_now_ms();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't' && (now = noon_of(optarg)) >= 0) continue;
        if (c == 't') fprintf(stderr, "wxbank chat parse: --today: want YYYY-MM-DD\n");
        fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", USAGE);
        return c == 'h' ? WX_EXIT_OK : WX_EXIT_USAGE;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return WX_EXIT_USAGE;
    }
    const char *text = argv[optind];
    size_t len = strlen(text);
    if (len > WX_CHAT_PARSE_MAX) {
        fprintf(stderr, "wxbank chat parse: the text is %zu bytes; at most %d are understood\n",
                len, WX_CHAT_PARSE_MAX);
        return WX_EXIT_USAGE;
    }
    struct wx_chat_parse p;
    wx_chat_parse(text, len, now, SHANGHAI_MINUTES, &p);
    char json[1024];
    if (wx_chat_parse_json(&p, json, sizeof json) < 0) {
        fprintf(stderr, "wxbank chat parse: the answer does not fit\n");
        return WX_EXIT_FAIL;
    }
    printf("%s\n", json);
    return WX_EXIT_OK;
}

/* The history projection, caught up, for an answer that reads it. */
static void read_history(struct wx_cli *cli, const struct wx_chat_history_ask *ask,
                         struct wx_chat_history_found *found)
{
    char err[512];
    wx_history_reader_t *r = wx_history_reader_open(cli->db_path, err, sizeof err);
    if (r != NULL && wx_history_reader_catch_up(r, cli->db_path, err, sizeof err) != 0) {
        wx_history_reader_close(r);
        r = NULL;
    }
    if (r == NULL) fprintf(stderr, "wxbank chat say: %s\n", err);
    wx_chat_history_read(r, ask, found); /* NULL: found says it could not be read */
    wx_history_reader_close(r);
}

/* One turn, printed; a confirmed card lock goes to the ledger. */
static void say_turn(struct wx_cli *cli, wx_chat_t *chat, const char *openid, const char *text)
{
    const wx_engine_t *e = wx_ledger_engine(cli->ledger);
    struct wx_follower_view f;
    struct wx_chat_input in = {.kind = WX_CHAT_IN_TEXT,
                               .text = text,
                               .openid = openid,
                               .customer_id =
                                   wx_engine_follower(e, openid, &f) == 0 ? f.customer_id : 0,
                               .now_ms = wx_now_ms()};
    static struct wx_chat_reply r;
    wx_chat_respond(chat, e, &in, &r);
    if (r.has_cmd) {
        struct wx_result res;
        wx_cli_submit(cli, &r.cmd, &res);
        wx_chat_command_done(chat, e, &in, &res, &r);
    }
    if (r.needs_history) {
        static struct wx_chat_history_found found; /* 200 KiB */
        read_history(cli, &r.ask, &found);
        wx_chat_history_answer(chat, e, &in, &r.ask, &found, &r);
    }
    printf("> %s\n", text);
    if (r.kind == WX_CHAT_REPLY_TRANSFER) printf("[handed to the human agents] ");
    printf("%s\n\n", r.kind == WX_CHAT_REPLY_NONE ? "(no answer)" : r.text);
    fflush(stdout);
}

static int chat_say(int argc, char **argv)
{
    static const struct option opts[] = {{"openid", required_argument, NULL, 'o'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *openid = NULL, *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'o') {
            openid = optarg;
        } else if (c == 'c') {
            config = optarg;
        } else {
            fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", USAGE);
            return c == 'h' ? WX_EXIT_OK : WX_EXIT_USAGE;
        }
    }
    if (openid == NULL || !wx_openid_valid(openid)) {
        fprintf(stderr, "wxbank chat say: --openid: 1 to %d of A-Z a-z 0-9 _ -\nusage: %s\n",
                WX_OPENID_MAX, USAGE);
        return WX_EXIT_USAGE;
    }
    struct wx_cli cli;
    int rc = wx_cli_open(&cli, config, WX_CLI_LEDGER, false);
    if (rc != WX_EXIT_OK) return rc;
    struct wx_chat_options opt;
    char err[512];
    if (wx_chat_options_from_config(cli.cfg, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank chat say: %s\n", err);
        wx_cli_close(&cli);
        return WX_EXIT_USAGE;
    }
    wx_chat_t *chat = wx_chat_new(&opt);
    if (optind < argc) {
        for (int i = optind; i < argc; i++)
            say_turn(&cli, chat, openid, argv[i]);
    } else {
        char line[4096];
        while (fgets(line, sizeof line, stdin) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] != '\0') say_turn(&cli, chat, openid, line);
        }
    }
    wx_chat_free(chat);
    wx_cli_close(&cli);
    return WX_EXIT_OK;
}

int wx_cmd_chat(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return WX_EXIT_USAGE;
    }
    if (strcmp(argv[1], "parse") == 0) return chat_parse(argc - 1, argv + 1);
    if (strcmp(argv[1], "say") == 0) return chat_say(argc - 1, argv + 1);
    fprintf(stderr, "wxbank chat: unknown subcommand %s\nusage: %s\n", argv[1], USAGE);
    return WX_EXIT_USAGE;
}
