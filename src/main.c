/*
 * main.c - the `wxbank` command: dispatches to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/config.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
};

static const struct subcommand subcommands[] = {
    {"demo", wx_cmd_demo,
     "demo [--fresh] [--once]      a demo bank in ./demo, then it and the WeChat sandbox run"},
    {"init", wx_cmd_init,
     "init                         create the database and the card-number key"},
    {"customer", wx_cmd_customer, "customer add --name N --id-doc D --mobile M   add a customer"},
    {"card", wx_cmd_card, "card issue|show|activate|lock|unlock|lost|stolen|close ...   cards"},
    {"account", wx_cmd_account, "account show|limit|temp-limit|repay|fee ...   credit accounts"},
    {"bind", wx_cmd_bind, "bind OPENID --customer ID     bind a WeChat follower to a customer"},
    {"unbind", wx_cmd_unbind, "unbind OPENID [--customer ID] unbind a WeChat follower"},
    {"followers", wx_cmd_followers,
     "followers [--customer ID]    WeChat followers bound to customers"},
    {"alerts", wx_cmd_alerts,
     "alerts status|list|dead|replay|lang ...   alert sends, dead letters, languages"},
    {"chat", wx_cmd_chat,
     "chat parse TEXT | say --openid ID [TEXT...]   the chat assistant without WeChat"},
    {"audit", wx_cmd_audit,
     "audit [--customer ID] [--limit N]   the secure pages' sensitive actions, newest first"},
    {"seed", wx_cmd_seed, "seed --cards N [--pans FILE] synthetic cardholders"},
    {"serve", wx_cmd_serve,
     "serve                        the bank: ISO 8583 host, WeChat webhook, until SIGINT/SIGTERM"},
    {"pos", wx_cmd_pos,
     "pos auth|purchase|refund|balance|reversal|echo ...   one message as a terminal sends it"},
    {"iso", wx_cmd_iso, "iso decode [--dialect D] [MESSAGE]   the fields of a message, PAN masked"},
    {"sandbox", wx_cmd_sandbox,
     "sandbox [--cards FILE]       the WeChat platform emulator, until SIGINT/SIGTERM"},
    {"verify", wx_cmd_verify,
     "verify                       replay the journal from event 0 and compare"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: wxbank <command> [options] [--config FILE]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        fprintf(out, "  %s\n", subcommands[i].usage);
    }
    fprintf(out, "  help [config]                this text, or every configuration key\n\n"
                 "Every key can be set in the config file or as WXBANK_SECTION_KEY.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return WX_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc > 2 && strcmp(argv[2], "config") == 0) {
            wx_config_print_schema(stdout);
        } else {
            usage(stdout);
        }
        return WX_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        if (strcmp(name, subcommands[i].name) == 0) {
            return subcommands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "wxbank: unknown command '%s'\n\n", name);
    usage(stderr);
    return WX_EXIT_USAGE;
}
