/*
 * cli.h - the `wxbank` command's subcommands and what they share: configuration, the
 * database, the keys and the ledger, opened the same way by every subcommand.
 *
 * Exit codes (DESIGN.md): 0 ok, 1 runtime failure, 2 usage or configuration error with a
 * message naming the bad key or argument.
 */
#ifndef WX_CLI_CLI_H
#define WX_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "keys/keys.h"
#include "ledger/ledger.h"
#include "util/config.h"

enum { WX_EXIT_OK = 0, WX_EXIT_FAIL = 1, WX_EXIT_USAGE = 2 };

/* What a subcommand works with. */
struct wx_cli {
    wx_config_t *cfg;    /* loaded configuration */
    const char *db_path; /* the SQLite journal (from db.url) */
    wx_keys_t *keys;     /* derived from crypto.pan_key; NULL until opened */
    wx_ledger_t *ledger; /* NULL until opened */
};

/* How much of the environment a subcommand needs. */
enum wx_cli_need {
    WX_CLI_CONFIG = 0, /* configuration only */
    WX_CLI_KEYS = 1,   /* + the keys (creating the key file when `create`) */
    WX_CLI_LEDGER = 2, /* + the ledger, recovered */
};

/* Opens what `need` says. Returns WX_EXIT_OK or the exit code, having printed why. */
int wx_cli_open(struct wx_cli *cli, const char *config_path, enum wx_cli_need need, bool create);
void wx_cli_close(struct wx_cli *cli);

/* The HTTPS listener's self-signed pair beside the database, made unless https.cert names a
 * certificate or the pair exists (`wxbank init`, `wxbank demo`). Returns an exit code, having
 * printed why when it is not WX_EXIT_OK. */
int wx_cli_init_tls(const struct wx_cli *cli);

/* Parses a positive decimal id; false (and a message naming `what`) when it is not one. */
bool wx_cli_parse_id(const char *text, const char *what, uint32_t *out);

/* An idempotency key for a staff command: the one given with --key, or a fresh one. */
void wx_cli_key(const char *given, const char *prefix, char out[WX_KEY_MAX + 1]);

/* Submits a command, waits until it is durable, and returns its result. */
void wx_cli_submit(struct wx_cli *cli, const struct wx_cmd *cmd, struct wx_result *res);

/* Subcommands: argc/argv start at the subcommand's name. */
int wx_cmd_init(int argc, char **argv);
int wx_cmd_customer(int argc, char **argv);
int wx_cmd_card(int argc, char **argv);
int wx_cmd_seed(int argc, char **argv);
int wx_cmd_verify(int argc, char **argv);
int wx_cmd_demo(int argc, char **argv);
int wx_cmd_account(int argc, char **argv);
int wx_cmd_serve(int argc, char **argv);   /* the ISO 8583 host (cmd_serve.c) */
int wx_cmd_pos(int argc, char **argv);     /* one message as a terminal (cmd_iso.c) */
int wx_cmd_iso(int argc, char **argv);     /* iso decode (cmd_iso.c) */
int wx_cmd_sandbox(int argc, char **argv); /* the WeChat platform emulator (cmd_sandbox.c) */

/* WeChat followers bound to customers (cmd_follower.c). */
int wx_cmd_bind(int argc, char **argv);
int wx_cmd_unbind(int argc, char **argv);
int wx_cmd_followers(int argc, char **argv);

/* Alert sends, the dead-letter list and its replay (cmd_alerts.c). */
int wx_cmd_alerts(int argc, char **argv);

/* The chat assistant without WeChat (cmd_chat.c). */
int wx_cmd_chat(int argc, char **argv);

/* The secure back end's audit log (cmd_audit.c). */
int wx_cmd_audit(int argc, char **argv);

#endif
