/*
 * common.c - what every subcommand opens the same way: configuration, keys, ledger.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

#define KEY_CHECK_META "crypto.key_check"

/* Refuses a master key that is not the one the database was made with. */
static int check_master(const char *db_path, const uint8_t master[32])
{
    char err[256];
    sqlite3 *db;
    uint8_t want[16], have[16];
    size_t len = 0;
    if (wx_store_open(db_path, false, &db, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank: %s\n", err);
        return WX_EXIT_FAIL;
    }
    wx_keys_check_value(master, want);
    int rc = wx_store_meta_get(db, KEY_CHECK_META, have, sizeof have, &len);
    if (rc == 0) {
        rc = wx_store_meta_put(db, KEY_CHECK_META, want, sizeof want) == 0 ? 1 : -1;
        memcpy(have, want, sizeof have);
        len = sizeof have;
    }
    wx_store_close(db);
    if (rc != 1) {
        fprintf(stderr, "wxbank: %s: cannot read the key check value\n", db_path);
        return WX_EXIT_FAIL;
    }
    if (len != sizeof have || !wx_ct_equal(have, want, sizeof have)) {
        fprintf(stderr, "wxbank: crypto.pan_key does not match the key %s was created with\n",
                db_path);
        return WX_EXIT_USAGE;
    }
    return WX_EXIT_OK;
}

static int open_keys(struct wx_cli *cli, bool create)
{
    char err[256];
    uint8_t master[32];
    if (wx_keys_load_master(cli->cfg, cli->db_path, create, master, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank: %s\n", err);
        return WX_EXIT_USAGE;
    }
    int rc = check_master(cli->db_path, master);
    if (rc == WX_EXIT_OK) {
        cli->keys = wx_keys_new(master);
    }
    wx_wipe(master, sizeof master);
    return rc;
}

int wx_cli_open(struct wx_cli *cli, const char *config_path, enum wx_cli_need need, bool create)
{
    char err[512];
    memset(cli, 0, sizeof *cli);
    cli->cfg = wx_config_load(config_path, err, sizeof err);
    if (cli->cfg == NULL) {
        fprintf(stderr, "wxbank: %s\n", err);
        return WX_EXIT_USAGE;
    }
    enum wx_log_level level;
    if (wx_log_level_parse(wx_config_str(cli->cfg, "log.level"), &level) == 0) {
        wx_log_set_level(level);
    }
    cli->db_path = wx_config_sqlite_path(cli->cfg);
    if (cli->db_path == NULL) {
        fprintf(stderr, "wxbank: db.url: this build stores the journal in SQLite only "
                        "(use sqlite:PATH)\n");
        return WX_EXIT_USAGE;
    }
    if (need >= WX_CLI_KEYS) {
        int rc = open_keys(cli, create);
        if (rc != WX_EXIT_OK) {
            return rc;
        }
    }
    if (need >= WX_CLI_LEDGER) {
        struct wx_ledger_options opt;
        wx_ledger_options_from_config(cli->cfg, cli->db_path, &opt);
        cli->ledger = wx_ledger_open(&opt, err, sizeof err);
        if (cli->ledger == NULL) {
            fprintf(stderr, "wxbank: %s\n", err);
            return WX_EXIT_FAIL;
        }
    }
    return WX_EXIT_OK;
}

void wx_cli_close(struct wx_cli *cli)
{
    wx_ledger_close(cli->ledger);
    wx_keys_free(cli->keys);
    wx_config_free(cli->cfg);
    memset(cli, 0, sizeof *cli);
}

bool wx_cli_parse_id(const char *text, const char *what, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = text ? strtoul(text, &end, 10) : 0;
    if (text == NULL || text[0] < '1' || text[0] > '9' || *end != '\0' || errno != 0 ||
        v > UINT32_MAX) {
        fprintf(stderr, "wxbank: %s: expected a positive number, got '%s'\n", what,
                text ? text : "");
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

void wx_cli_key(const char *given, const char *prefix, char out[WX_KEY_MAX + 1])
{
    if (given != NULL) {
        snprintf(out, WX_KEY_MAX + 1, "%s", given);
        return;
    }
    uint8_t r[8];
    char hex[17];
    wx_random_bytes(r, sizeof r);
    wx_hex_encode(r, sizeof r, hex, sizeof hex);
    snprintf(out, WX_KEY_MAX + 1, "ops:%s:%s", prefix, hex);
}

void wx_cli_submit(struct wx_cli *cli, const struct wx_cmd *cmd, struct wx_result *res)
{
    wx_ledger_submit(cli->ledger, cmd, res);
    if (res->journaled) {
        wx_ledger_sync(cli->ledger, res->seq);
    }
}
