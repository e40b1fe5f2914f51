/*
 * cmd_chat.c - `wxbank chat ...`: the chat assistant without WeChat.
 *
 *   wxbank chat parse [--today YYYY-MM-DD] "TEXT"   what it understands, as one JSON object
 *
 * parse needs no configuration and no database: it is the understanding alone, the same
 * code the webhook's conversation runs. Dates (今天, 上个月) are placed in Asia/Shanghai,
 * today unless --today says otherwise.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "chat/chat.h"
#include "cli/cli.h"
#include "util/timeutil.h"

#define SHANGHAI_MINUTES 480

static const char USAGE[] = "wxbank chat parse [--today YYYY-MM-DD] \"TEXT\"";

/* Noon of that day in Shanghai, as epoch ms; -1 when the date is malformed. */
static int64_t noon_of(const char *date)
{
    int y, m, d;
    char tail;
    if (sscanf(date, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 ||
        d > 31 || y < 1970 || y > 9999) {
        return -1;
    }
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

int wx_cmd_chat(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return WX_EXIT_USAGE;
    }
    if (strcmp(argv[1], "parse") == 0) return chat_parse(argc - 1, argv + 1);
    fprintf(stderr, "wxbank chat: unknown subcommand %s\nusage: %s\n", argv[1], USAGE);
    return WX_EXIT_USAGE;
}
