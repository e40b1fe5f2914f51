/*
 * test_cli.c - the real `wxbank` binary as bank staff use it: init, customers, card issue
 * and its one-time personalization output, masked display, status changes, accounts, WeChat
 * followers (bind, unbind, list), seed, verify, the demo, and configuration errors (exit 2
 * naming the key).
 *
 * Each test runs in a fresh temporary directory with WXBANK_DB_URL pointing into it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/serve_util.h"
#include "util/pan.h"
#include "web/web.h"

struct run {
    int status;      /* exit code, or -1 if it did not exit */
    char out[65536]; /* stdout and stderr together */
};

static char workdir[PATH_MAX];

/* Runs `wxbank <args>` in the work directory with extra environment settings. */
static void wxbank(struct run *r, const char *args)
{
    const char *bin = getenv("WXBANK_BIN");
    assert_non_null(bin);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && WXBANK_DB_URL=sqlite:bank.db '%s' %s 2>&1", workdir, bin,
             args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(r->out, 1, sizeof r->out - 1, p);
    r->out[n] = '\0';
    int st = pclose(p);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/wxbank-cli-XXXXXX");
    return mkdtemp(workdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return serve_finish("test_cli", workdir, false);
}

/* Finds "label <value>" in out and copies value (up to a newline). */
static void field(const char *out, const char *label, char *value, size_t cap)
{
    const char *p = strstr(out, label);
    assert_non_null(p);
    p += strlen(label);
    while (*p == ' ') {
        p++;
    }
    size_t n = strcspn(p, "\n");
    assert_true(n < cap);
    memcpy(value, p, n);
    value[n] = '\0';
}

static void test_issue_show_and_lifecycle(void **state)
{
    (void)state;
    struct run r;
    wxbank(&r, "init");
    assert_int_equal(r.status, 0);
    wxbank(&r, "customer add --name '张伟' --id-doc 110101199003074512 --mobile 13800138000");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "customer 1"));
    /* The same person again is the same customer. */
    wxbank(&r, "customer add --name '张伟' --id-doc 110101199003074512 --mobile 13800138000");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "already known"));

    wxbank(&r, "card issue --customer 1 --limit 20000.00 --statement-day 8");
    assert_int_equal(r.status, 0);
    char pan[64], cvv[8];
    field(r.out, "PAN", pan, sizeof pan);
    field(r.out, "CVV2", cvv, sizeof cvv);
    assert_int_equal(strlen(pan), 16);
    assert_true(wx_luhn_valid(pan, strlen(pan)));
    assert_memory_equal(pan, "622588", 6);
    assert_int_equal(strlen(cvv), 3);

    /* Shown masked, found by PAN, never printed in clear again. */
    char args[256];
    snprintf(args, sizeof args, "card show --pan %s", pan);
    wxbank(&r, args);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, pan));
    char masked[32];
    snprintf(masked, sizeof masked, "622588******%.4s", pan + 12);
    assert_non_null(strstr(r.out, masked));
    assert_non_null(strstr(r.out, "not-activated"));
    assert_non_null(strstr(r.out, "20,000.00"));

    wxbank(&r, "card lock 1"); /* not active yet: refused, nothing changes */
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "status change not allowed"));
    wxbank(&r, "card activate 1");
    assert_int_equal(r.status, 0);
    wxbank(&r, "card lock 1 --key ops:lock:1");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "locked"));
    wxbank(&r, "card lock 1 --key ops:lock:1"); /* a retry of the same request */
    assert_int_equal(r.status, 0);
    wxbank(&r, "card unlock 1");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "active"));

    wxbank(&r, "account repay 1 --amount 25000.00");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "45,000.00")); /* the overpayment stays as credit */
    wxbank(&r, "account temp-limit 1 --amount 5000 --days 30");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "50,000.00"));

    wxbank(&r, "verify");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "verify: ok"));
}

/* Staff bind and unbind WeChat followers; every refusal exits 1 with a message saying why,
 * bad arguments exit 2; the journal replays to the same state. */
static void test_followers(void **state)
{
    (void)state;
    struct run r;
    wxbank(&r, "init");
    assert_int_equal(r.status, 0);
    wxbank(&r, "customer add --name '张伟' --id-doc 110101199003074512 --mobile 13800138000");
    assert_int_equal(r.status, 0);
    wxbank(&r, "customer add --name 'Li Si' --id-doc 110101199003074513 --mobile 13800138001");
    assert_int_equal(r.status, 0);

    wxbank(&r, "bind oWx-7_abcDEF --customer 1");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "oWx-7_abcDEF bound to customer 1 (张伟)"));
    /* The same staff command again: an idempotent success. */
    wxbank(&r, "bind oWx-7_abcDEF --customer 1");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "already bound"));
    /* Bound to someone else. */
    wxbank(&r, "bind oWx-7_abcDEF --customer 2");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "already bound to customer 1"));
    /* The limit: five per customer. */
    for (int i = 1; i <= 5; i++) {
        char args[64];
        snprintf(args, sizeof args, "bind oLi%d --customer 2", i);
        wxbank(&r, args);
        assert_int_equal(r.status, 0);
    }
    wxbank(&r, "bind oLi6 --customer 2");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "customer 2 already has 5 WeChat followers bound"));
    /* Unknown customers, bad OpenIDs, missing arguments. */
    wxbank(&r, "bind oLi6 --customer 3");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "customer 3 does not exist"));
    wxbank(&r, "bind 'o Li' --customer 2");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "OPENID"));
    wxbank(&r, "bind o0123456789012345678901234567890123456789012345678901234567890123 "
               "--customer 2"); /* 65 characters */
    assert_int_equal(r.status, 2);
    wxbank(&r, "bind oLi6");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--customer"));
    wxbank(&r, "bind oLi6 --customer x");
    assert_int_equal(r.status, 2);
    wxbank(&r, "bind --customer 2");
    assert_int_equal(r.status, 2);
    wxbank(&r, "unbind");
    assert_int_equal(r.status, 2);

    /* The listing: everyone, or one customer, with names, times and who bound them. */
    wxbank(&r, "followers");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "6 WeChat followers bound"));
    assert_non_null(strstr(r.out, "oWx-7_abcDEF"));
    assert_non_null(strstr(r.out, "张伟"));
    assert_non_null(strstr(r.out, "staff"));
    wxbank(&r, "followers --customer 2");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "customer 2: 5 of 5 WeChat followers bound"));
    assert_null(strstr(r.out, "oWx-7_abcDEF"));
    assert_non_null(strstr(r.out, "oLi1"));
    assert_non_null(strstr(r.out, "oLi5"));
    assert_true(strstr(r.out, "oLi1") < strstr(r.out, "oLi5")); /* oldest binding first */
    wxbank(&r, "followers --customer 3");
    assert_int_equal(r.status, 1);
    wxbank(&r, "followers --customer 0");
    assert_int_equal(r.status, 2);

    /* Unbind: from the wrong customer, then from whichever, then once too often. */
    wxbank(&r, "unbind oLi3 --customer 1");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "not bound to customer 1"));
    wxbank(&r, "unbind oLi3 --key ops:unbind:1");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "oLi3 unbound from customer 2 (Li Si)"));
    wxbank(&r, "unbind oLi3");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "not bound to any customer"));
    wxbank(&r, "unbind oNeverSeen");
    assert_int_equal(r.status, 1);
    /* A retry of the same request (its key) gets the first answer. */
    wxbank(&r, "unbind oLi3 --key ops:unbind:1");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "done before"));
    /* The freed place takes the sixth. */
    wxbank(&r, "bind oLi6 --customer 2");
    assert_int_equal(r.status, 0);
    wxbank(&r, "followers --customer 2");
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "oLi3"));
    assert_non_null(strstr(r.out, "oLi6"));
    assert_true(strstr(r.out, "oLi5") < strstr(r.out, "oLi6"));

    wxbank(&r, "verify");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "verify: ok"));
}

static void test_bad_input_exits_2_naming_it(void **state)
{
    (void)state;
    struct run r;
    char args[PATH_MAX + 64];
    snprintf(args, sizeof args, "init --config %s/missing.conf", workdir);
    wxbank(&r, args);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "missing.conf"));

    char conf[PATH_MAX + 16];
    snprintf(conf, sizeof conf, "%s/bad.conf", workdir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs("[engine]\nhold_days = 0\n", f);
    fclose(f);
    snprintf(args, sizeof args, "init --config %s", conf);
    wxbank(&r, args);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "engine.hold_days"));

    f = fopen(conf, "w");
    assert_non_null(f);
    fputs("[engine]\nno_such_key = 1\n", f);
    fclose(f);
    wxbank(&r, args);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "no_such_key"));

    wxbank(&r, "seed --cards 0");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--cards"));
    wxbank(&r, "card issue --customer 1 --limit lots");
    assert_int_equal(r.status, 2);
    wxbank(&r, "no-such-command");
    assert_int_equal(r.status, 2);
}

/* `wxbank alerts` reads <db>.notify beside a server; with none yet it has nothing to show. */
static void test_alerts_commands(void **state)
{
    (void)state;
    struct run r;
    wxbank(&r, "alerts status");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "up to 0"));
    assert_non_null(strstr(r.out, "dead         0"));
    wxbank(&r, "alerts dead");
    assert_int_equal(r.status, 0);
    wxbank(&r, "alerts replay --all");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "0 dead sends queued again"));
    wxbank(&r, "alerts list --state lost");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--state"));
    wxbank(&r, "alerts list --limit 0");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--limit"));
    wxbank(&r, "alerts replay");
    assert_int_equal(r.status, 2);
    wxbank(&r, "alerts replay 12x");
    assert_int_equal(r.status, 2);
    wxbank(&r, "alerts frobnicate");
    assert_int_equal(r.status, 2);
    wxbank(&r, "alerts lang oABCDEFGHIJKLMNOPQRSTUVWXYZ1 en");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "English"));
    wxbank(&r, "alerts status"); /* a preference alone sets no watermark */
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "up to 0"));
    wxbank(&r, "alerts lang 'not an openid' en");
    assert_int_equal(r.status, 2);
    wxbank(&r, "alerts lang oABCDEFGHIJKLMNOPQRSTUVWXYZ1 fr");
    assert_int_equal(r.status, 2);
}

/* The chat assistant's understanding, as one JSON object, with no configuration needed. */
static void test_chat_parse(void **state)
{
    (void)state;
    struct run r;
    wxbank(&r, "chat parse --today 2026-11-27 '帮我查下上个月要还多少'");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "{\"intent\":\"bill\""));
    assert_non_null(strstr(r.out, "\"date_from\":\"2026-10-01\",\"date_to\":\"2026-10-31\""));
    wxbank(&r, "chat parse '3000分12期'");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"amount_fen\":300000,\"periods\":12"));
    wxbank(&r, "chat parse --today 2026-13-01 hello");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--today"));
    wxbank(&r, "chat parse");
    assert_int_equal(r.status, 2);
    wxbank(&r, "chat parse \"$(head -c 700 /dev/zero | tr '\\0' a)\"");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "at most 600"));
    wxbank(&r, "chat frobnicate");
    assert_int_equal(r.status, 2);
}

/* The secure back end's audit log, newest first, by customer, beside whoever writes it. */
static void test_audit_log(void **state)
{
    (void)state;
    struct run r;
    wxbank(&r, "audit");
    assert_int_equal(r.status, 0); /* no log yet: a header only */
    assert_non_null(strstr(r.out, "ACTION"));
    char db[PATH_MAX + 16], err[256];
    snprintf(db, sizeof db, "%s/bank.db", workdir);
    wx_web_store_t *s = wx_web_store_open(db, err, sizeof err);
    assert_non_null(s);
    struct wx_audit_entry e = {.at_ms = 1795752000000ll, .customer_id = 3};
    snprintf(e.openid, sizeof e.openid, "oAudit_follower_0001");
    wx_web_store_ip_hash(s, "192.0.2.7", e.ip_hash);
    snprintf(e.action, sizeof e.action, "login");
    snprintf(e.result, sizeof e.result, "wrong_password");
    assert_int_equal(wx_web_store_audit(s, &e, err, sizeof err), 0);
    e.customer_id = 4;
    e.at_ms += 1000;
    snprintf(e.result, sizeof e.result, "ok");
    assert_int_equal(wx_web_store_audit(s, &e, err, sizeof err), 0);
    wx_web_store_close(s);
    wxbank(&r, "audit");
    assert_int_equal(r.status, 0);
    char *ok = strstr(r.out, " ok"), *wrong = strstr(r.out, "wrong_password");
    assert_true(ok != NULL && wrong != NULL && ok < wrong); /* newest first */
    assert_null(strstr(r.out, "192.0.2.7"));                /* the address is not kept */
    wxbank(&r, "audit --customer 3");
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, " ok"));
    assert_non_null(strstr(r.out, "wrong_password"));
    wxbank(&r, "audit --limit 0");
    assert_int_equal(r.status, 2);
    wxbank(&r, "audit --customer x");
    assert_int_equal(r.status, 2);
}

static void test_seed_pans_file(void **state)
{
    (void)state;
    struct run r;
    wxbank(&r, "seed --cards 300 --pans pans.tsv");
    assert_int_equal(r.status, 0);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pans.tsv", workdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[128];
    int lines = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *tab1 = strchr(line, '\t');
        assert_non_null(tab1);
        char *tab2 = strchr(tab1 + 1, '\t');
        assert_non_null(tab2);
        assert_true(wx_luhn_valid(line, (size_t)(tab1 - line)));
        assert_int_equal(tab2 - tab1 - 1, 4); /* YYMM */
        assert_true(strtoll(tab2 + 1, NULL, 10) >= 500000);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 300);
    wxbank(&r, "card show 300");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "active"));
    wxbank(&r, "verify");
    assert_int_equal(r.status, 0);
}

static void test_wrong_key_refused(void **state)
{
    (void)state;
    struct run r;
    wxbank(&r, "init");
    assert_int_equal(r.status, 0);
    setenv("WXBANK_CRYPTO_PAN_KEY",
           "00000000000000000000000000000000000000000000000000000000000000aa", 1);
    wxbank(&r, "card show 1");
    unsetenv("WXBANK_CRYPTO_PAN_KEY");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "crypto.pan_key"));
}

static void test_demo_runs_and_verifies(void **state)
{
    (void)state;
    struct run r;
    wxbank(&r, "demo --once");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "declined: insufficient credit"));
    assert_non_null(strstr(r.out, "oWXB_demo_ZhangWei_00000001"));
    assert_non_null(strstr(r.out, "first answer again"));
    assert_non_null(strstr(r.out, "verify: ok"));
    /* No full card number anywhere in the demo's output. */
    for (const char *p = r.out; *p; p++) {
        size_t digits = strspn(p, "0123456789");
        assert_true(digits < 13);
        p += digits ? digits - 1 : 0;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_issue_show_and_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_followers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_exits_2_naming_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_pans_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_runs_and_verifies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
