/*
 * cmd_basic.c - `wxbank init`, `wxbank seed` and `wxbank verify`.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "issuing/issuing.h"
#include "net/net.h"
#include "util/timeutil.h"

/* Options every subcommand accepts. */
#define COMMON_OPTIONS                                                                             \
    {"config", required_argument, NULL, 'c'},                                                      \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/*
 * The HTTPS listener's self-signed pair beside the database (<db>.tls.crt, <db>.tls.key),
 * unless https.cert names a certificate of the bank's own or the pair is there already.
 * Returns an exit code, having printed why when it is not WX_EXIT_OK.
 */
int wx_cli_init_tls(const struct wx_cli *cli)
{
    if (wx_config_str(cli->cfg, "https.cert")[0] != '\0') return WX_EXIT_OK;
    char cert[PATH_MAX], key[PATH_MAX], err[PATH_MAX + 256];
    if (wx_tls_default_paths(cli->db_path, cert, key, sizeof cert) != 0) {
        fprintf(stderr, "wxbank init: https.cert: the database's path is too long\n");
        return WX_EXIT_FAIL;
    }
    int rc = wx_tls_make_self_signed(cert, key, WX_TLS_SELF_SIGNED_DAYS, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "wxbank init: https.cert: %s\n", err);
        return WX_EXIT_FAIL;
    }
    if (rc == 0) {
        printf("tls cert  %s and its key %s (self-signed for localhost and 127.0.0.1, %d "
               "days; give https.cert and https.key for a real one)\n",
               cert, key, WX_TLS_SELF_SIGNED_DAYS);
    }
    return WX_EXIT_OK;
}

int wx_cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTIONS, {0}};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            config = optarg;
        } else {
            fprintf(c == 'h' ? stdout : stderr, "usage: wxbank init [--config FILE]\n");
            return c == 'h' ? WX_EXIT_OK : WX_EXIT_USAGE;
        }
    }
    struct wx_cli cli;
    int rc = wx_cli_open(&cli, config, WX_CLI_LEDGER, true);
    if (rc == WX_EXIT_OK) {
        struct wx_engine_stats st;
        wx_engine_stats(wx_ledger_engine(cli.ledger), &st);
        printf("database  %s (%" PRIu64 " events, %u cards)\n", cli.db_path, st.last_seq, st.cards);
        const char *key = wx_config_str(cli.cfg, "crypto.pan_key");
        if (key == NULL || key[0] == '\0') {
            printf("card key  %s.key (keep it safe: card numbers at rest need it)\n", cli.db_path);
        }
        rc = wx_cli_init_tls(&cli);
    }
    wx_cli_close(&cli);
    return rc;
}

static bool parse_count(const char *text, uint32_t *out)
{
    return wx_cli_parse_id(text, "--cards", out) && *out <= WX_CARDS_MAX;
}

int wx_cmd_seed(int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTIONS,
                                         {"cards", required_argument, NULL, 'n'},
                                         {"pans", required_argument, NULL, 'p'},
                                         {0}};
    const char *config = NULL, *pans_path = NULL;
    uint32_t n = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:hn:p:", opts, NULL)) != -1) {
        if (c == 'c') {
            config = optarg;
        } else if (c == 'n') {
            if (!parse_count(optarg, &n)) {
                return WX_EXIT_USAGE;
            }
        } else if (c == 'p') {
            pans_path = optarg;
        } else {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: wxbank seed --cards N [--pans FILE] [--config FILE]\n");
            return c == 'h' ? WX_EXIT_OK : WX_EXIT_USAGE;
        }
    }
    if (n == 0) {
        fprintf(stderr, "wxbank seed: --cards N is required\n");
        return WX_EXIT_USAGE;
    }
    struct wx_cli cli;
    int rc = wx_cli_open(&cli, config, WX_CLI_LEDGER, true);
    FILE *pans = NULL;
    if (rc == WX_EXIT_OK && pans_path != NULL) {
        pans = fopen(pans_path, "we");
        if (pans == NULL) {
            fprintf(stderr, "wxbank seed: --pans %s: cannot create\n", pans_path);
            rc = WX_EXIT_USAGE;
        }
    }
    if (rc == WX_EXIT_OK) {
        char err[256];
        int64_t t0 = wx_mono_us();
        if (wx_issuing_seed(cli.ledger, cli.keys, n, wx_config_str(cli.cfg, "card.bin"),
                            (int)wx_config_int(cli.cfg, "card.pan_length"), pans, err,
                            sizeof err) != 0) {
            fprintf(stderr, "wxbank seed: %s\n", err);
            rc = WX_EXIT_FAIL;
        } else {
            printf("seeded %u cardholders in %.1f s%s%s\n", n, (wx_mono_us() - t0) / 1e6,
                   pans_path ? "; card numbers in " : "", pans_path ? pans_path : "");
        }
    }
    if (pans != NULL && fclose(pans) != 0 && rc == WX_EXIT_OK) {
        rc = WX_EXIT_FAIL;
    }
    wx_cli_close(&cli);
    return rc;
}

int wx_cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTIONS, {0}};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            config = optarg;
        } else {
            fprintf(c == 'h' ? stdout : stderr, "usage: wxbank verify [--config FILE]\n");
            return c == 'h' ? WX_EXIT_OK : WX_EXIT_USAGE;
        }
    }
    struct wx_cli cli;
    int rc = wx_cli_open(&cli, config, WX_CLI_CONFIG, false);
    if (rc != WX_EXIT_OK) {
        wx_cli_close(&cli);
        return rc;
    }
    struct wx_ledger_options opt;
    wx_ledger_options_from_config(cli.cfg, cli.db_path, &opt);
    char err[512];
    uint64_t events = 0;
    int64_t t0 = wx_mono_us();
    int v = wx_ledger_verify(&opt, &events, err, sizeof err);
    if (v == 0) {
        printf("verify: ok: %" PRIu64 " events replayed from event 0 match the live state "
               "(%.1f s)\n",
               events, (wx_mono_us() - t0) / 1e6);
    } else {
        fprintf(stderr, "verify: %s: %s\n", v > 0 ? "MISMATCH" : "error", err);
    }
    wx_cli_close(&cli);
    return v == 0 ? WX_EXIT_OK : WX_EXIT_FAIL;
}
