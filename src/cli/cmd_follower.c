/*
 * cmd_follower.c - `wxbank bind`, `wxbank unbind` and `wxbank followers`: the staff side of
 * WeChat followers (OpenIDs) bound to customers. Cardholders bind themselves through the
 * secure web flow; staff bind and unbind at the counter or on the phone, and list who gets
 * a customer's transaction alerts.
 *
 * Idempotency: every invocation submits under a fresh key (or the one given with --key, to
 * retry one request exactly). A key derived from the command ("bind:OPENID:ID") would be
 * wrong here: the engine remembers a key's first answer for engine.idempotency_hours, so
 * bind, unbind, bind again within that time would get the first bind's answer back and bind
 * nothing. Running the same `wxbank bind` again is still an idempotent success, because
 * the engine approves a bind of a pair already bound (its natural key). Running the same
 * `wxbank unbind` again says the OpenID is not bound (exit 1): it cannot tell a repeat from
 * a mistyped OpenID, and quietly succeeding on a typo would leave someone else's WeChat
 * receiving a customer's alerts.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/show.h"
#include "util/timeutil.h"

struct follower_args {
    const char *config, *key, *customer_text;
    const char *openid;   /* the positional OPENID, NULL when none */
    uint32_t customer_id; /* --customer, 0 when not given */
};

/* Parses [OPENID] [--customer ID] [--key KEY] [--config FILE]. Returns WX_EXIT_OK, -1 after
 * --help (printed), or WX_EXIT_USAGE (printed). */
static int parse_args(int argc, char **argv, struct follower_args *a, bool want_openid,
                      const char *usage)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"customer", required_argument, NULL, 'u'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    memset(a, 0, sizeof *a);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c') {
            a->config = optarg;
        } else if (c == 'k' && want_openid) {
            a->key = optarg;
        } else if (c == 'u') {
            a->customer_text = optarg;
        } else {
            fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", usage);
            return c == 'h' ? -1 : WX_EXIT_USAGE;
        }
    }
    int positional = want_openid ? 1 : 0;
    if (argc - optind != positional) {
        fprintf(stderr, "usage: %s\n", usage);
        return WX_EXIT_USAGE;
    }
    if (a->customer_text != NULL &&
        !wx_cli_parse_id(a->customer_text, "--customer", &a->customer_id)) {
        return WX_EXIT_USAGE;
    }
    if (want_openid) {
        a->openid = argv[optind];
        if (!wx_openid_valid(a->openid)) {
            fprintf(stderr,
                    "wxbank: OPENID: expected 1 to %d characters of A-Z a-z 0-9 _ -, got '%.*s'\n",
                    WX_OPENID_MAX, WX_OPENID_MAX + 8, a->openid);
            return WX_EXIT_USAGE;
        }
    }
    return WX_EXIT_OK;
}

/* Submits a bind or unbind of a->openid by staff and returns the engine's answer. */
static void submit(struct wx_cli *cli, const struct follower_args *a, uint8_t kind,
                   const char *prefix, struct wx_result *res)
{
    struct wx_cmd cmd;
    char key[WX_KEY_MAX + 1];
    memset(&cmd, 0, sizeof cmd);
    cmd.kind = kind;
    cmd.time_ms = wx_now_ms();
    wx_cli_key(a->key, prefix, key);
    cmd.key_len = (uint8_t)strlen(key);
    memcpy(cmd.key, key, cmd.key_len);
    snprintf(cmd.follower.openid, sizeof cmd.follower.openid, "%s", a->openid);
    cmd.follower.customer_id = a->customer_id;
    cmd.follower.via = WX_BIND_STAFF;
    wx_cli_submit(cli, &cmd, res);
}

/* The customer's name, or "" when there is no such customer. */
static void customer_name(const wx_engine_t *e, uint32_t id, char out[WX_NAME_MAX + 1])
{
    struct wx_customer_view c;
    snprintf(out, WX_NAME_MAX + 1, "%s", wx_engine_customer(e, id, &c) == 0 ? c.name : "");
}

/* Explains a bind the engine refused; returns the exit code. */
static int bind_refused(const wx_engine_t *e, const struct follower_args *a,
                        const struct wx_result *res)
{
    struct wx_follower_view f;
    switch (res->reason) {
    case WX_R_CUSTOMER_NOT_FOUND:
        fprintf(stderr, "wxbank bind: customer %u does not exist\n", a->customer_id);
        return WX_EXIT_FAIL;
    case WX_R_FOLLOWER_LIMIT:
        fprintf(stderr,
                "wxbank bind: customer %u already has %d WeChat followers bound "
                "(see wxbank followers --customer %u; unbind one first)\n",
                a->customer_id, WX_FOLLOWERS_PER_CUSTOMER, a->customer_id);
        return WX_EXIT_FAIL;
    case WX_R_FOLLOWER_TAKEN:
        if (wx_engine_follower(e, a->openid, &f) == 0) {
            fprintf(stderr,
                    "wxbank bind: OpenID %s is already bound to customer %u (unbind it first)\n",
                    a->openid, f.customer_id);
            return WX_EXIT_FAIL;
        }
        break;
    default:
        break;
    }
    return wx_show_result("bind", res);
}

int wx_cmd_bind(int argc, char **argv)
{
    const char *usage = "wxbank bind OPENID --customer ID [--key KEY] [--config FILE]";
    struct follower_args a;
    int rc = parse_args(argc, argv, &a, true, usage);
    if (rc != WX_EXIT_OK) {
        return rc < 0 ? WX_EXIT_OK : rc;
    }
    if (a.customer_id == 0) {
        fprintf(stderr, "wxbank bind: --customer is required\nusage: %s\n", usage);
        return WX_EXIT_USAGE;
    }
    struct wx_cli cli;
    rc = wx_cli_open(&cli, a.config, WX_CLI_LEDGER, false);
    if (rc == WX_EXIT_OK) {
        const wx_engine_t *e = wx_ledger_engine(cli.ledger);
        struct wx_result res;
        submit(&cli, &a, WX_CMD_FOLLOWER_BIND, "bind", &res);
        if (res.reason != WX_APPROVED) {
            rc = bind_refused(e, &a, &res);
        } else {
            char name[WX_NAME_MAX + 1];
            customer_name(e, a.customer_id, name);
            /* A repeat not journaled now is a pair bound already; one that names a row is the
             * first answer to this --key. */
            printf("OpenID %s bound to customer %u (%s)%s\n", a.openid, a.customer_id, name,
                   !res.repeat      ? ""
                   : !res.journaled ? " (already bound)"
                                    : " (this request was done before)");
        }
    }
    wx_cli_close(&cli);
    return rc;
}

int wx_cmd_unbind(int argc, char **argv)
{
    const char *usage =
        "wxbank unbind OPENID [--customer ID (only from this customer)] [--key KEY] "
        "[--config FILE]";
    struct follower_args a;
    int rc = parse_args(argc, argv, &a, true, usage);
    if (rc != WX_EXIT_OK) {
        return rc < 0 ? WX_EXIT_OK : rc;
    }
    struct wx_cli cli;
    rc = wx_cli_open(&cli, a.config, WX_CLI_LEDGER, false);
    if (rc == WX_EXIT_OK) {
        const wx_engine_t *e = wx_ledger_engine(cli.ledger);
        struct wx_result res;
        struct wx_follower_view f;
        submit(&cli, &a, WX_CMD_FOLLOWER_UNBIND, "unbind", &res);
        if (res.reason == WX_APPROVED) {
            char name[WX_NAME_MAX + 1];
            customer_name(e, res.id, name);
            printf("OpenID %s unbound from customer %u (%s)%s\n", a.openid, res.id, name,
                   res.repeat ? " (this request was done before)" : "");
        } else if (res.reason == WX_R_FOLLOWER_NOT_BOUND) {
            if (a.customer_id != 0 && wx_engine_follower(e, a.openid, &f) == 0) {
                fprintf(stderr,
                        "wxbank unbind: OpenID %s is not bound to customer %u (it is bound to "
                        "customer %u)\n",
                        a.openid, a.customer_id, f.customer_id);
            } else {
                fprintf(stderr, "wxbank unbind: OpenID %s is not bound to any customer\n",
                        a.openid);
            }
            rc = WX_EXIT_FAIL;
        } else if (res.reason == WX_R_CUSTOMER_NOT_FOUND) {
            fprintf(stderr, "wxbank unbind: customer %u does not exist\n", a.customer_id);
            rc = WX_EXIT_FAIL;
        } else {
            rc = wx_show_result("unbind", &res);
        }
    }
    wx_cli_close(&cli);
    return rc;
}

/* Prints one customer's followers, one line each; returns how many. */
static size_t print_customer(const wx_engine_t *e, uint32_t customer_id, int tz)
{
    struct wx_follower_view f[WX_FOLLOWERS_PER_CUSTOMER];
    size_t n = wx_engine_customer_followers(e, customer_id, f, WX_FOLLOWERS_PER_CUSTOMER);
    if (n == 0) {
        return 0;
    }
    char name[WX_NAME_MAX + 1];
    customer_name(e, customer_id, name);
    for (size_t i = 0; i < n && i < WX_FOLLOWERS_PER_CUSTOMER; i++) {
        char when[32];
        wx_time_format(f[i].bound_at_ms, tz, when, sizeof when);
        printf("%-28s %9u  %-19s  %-10s  %s\n", f[i].openid, customer_id, when,
               wx_bind_via_name(f[i].via), name);
    }
    return n;
}

int wx_cmd_followers(int argc, char **argv)
{
    const char *usage = "wxbank followers [--customer ID] [--config FILE]";
    struct follower_args a;
    int rc = parse_args(argc, argv, &a, false, usage);
    if (rc != WX_EXIT_OK) {
        return rc < 0 ? WX_EXIT_OK : rc;
    }
    struct wx_cli cli;
    rc = wx_cli_open(&cli, a.config, WX_CLI_LEDGER, false);
    if (rc == WX_EXIT_OK) {
        const wx_engine_t *e = wx_ledger_engine(cli.ledger);
        const char *tz_name = wx_config_str(cli.cfg, "tz");
        int tz = wx_tz_offset_minutes(tz_name);
        if (tz == WX_TZ_INVALID) {
            tz = 0;
            tz_name = "UTC";
        }
        struct wx_customer_view c;
        if (a.customer_id != 0 && wx_engine_customer(e, a.customer_id, &c) != 0) {
            fprintf(stderr, "wxbank followers: customer %u does not exist\n", a.customer_id);
            rc = WX_EXIT_FAIL;
        } else {
            printf("%-28s %9s  %-19s  %-10s  %s\n", "OPENID", "CUSTOMER", "BOUND AT", "VIA",
                   "NAME");
            size_t n = 0;
            struct wx_engine_stats st;
            wx_engine_stats(e, &st);
            uint32_t first = a.customer_id ? a.customer_id : 1;
            uint32_t last = a.customer_id ? a.customer_id : st.customers;
            for (uint32_t id = first; id <= last; id++) {
                n += print_customer(e, id, tz);
            }
            if (a.customer_id != 0) {
                printf("customer %u: %zu of %d WeChat followers bound (times in %s)\n",
                       a.customer_id, n, WX_FOLLOWERS_PER_CUSTOMER, tz_name);
            } else {
                printf("%zu WeChat followers bound (times in %s)\n", n, tz_name);
            }
        }
    }
    wx_cli_close(&cli);
    return rc;
}
