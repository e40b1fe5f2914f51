/*
 * cmd_demo.c - `wxbank demo` (what `make run` starts): a small bank in ./demo, then the bank
 * and the WeChat sandbox on loopback until Ctrl-C.
 *
 * The first run creates the bank: four cardholders, a day of card traffic shown step by step,
 * WeChat followers bound to three of them, and a verify. Every step goes through the
 * production path: commands built as the adapters build them (card numbers turned into card
 * references by the keys module), decided by the engine, made durable by the journal before
 * the answer is shown. Later runs reuse the bank (--fresh starts over; --once only tells the
 * story and exits). Then `wxbank serve` runs with the sandbox on the same HTTP listener, its
 * followers being the demo's bound cardholders and its POS page paying with their cards.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crypto.h"

#include "cli/bank.h"
#include "cli/cli.h"
#include "cli/show.h"
#include "issuing/issuing.h"
#include "sandbox/sandbox.h"
#include "util/config.h"
#include "util/money.h"
#include "util/timeutil.h"
#include "web/web.h"

#define DEMO_DIR       "demo"
#define DEMO_DB        DEMO_DIR "/wxbank.db"
#define DEMO_CARDS     DEMO_DIR "/cards.tsv" /* label, PAN, expiry: the POS page's cards */
#define DEMO_CARDS_MAX 4

struct demo {
    struct wx_cli cli;
    int64_t now;   /* demo clock: starts at the real time, moves per step */
    unsigned step; /* transactions shown so far */
    uint32_t stan; /* for the switch-style keys */
    struct wx_issued_card cards[4];
    const char *holders[4];
};

static void set_key(struct wx_cmd *cmd, const char *fmt, unsigned n)
{
    cmd->key_len = (uint8_t)snprintf(cmd->key, sizeof cmd->key, fmt, n);
}

static int submit(struct demo *d, struct wx_cmd *cmd, struct wx_result *res)
{
    d->now += 7 * 60 * 1000; /* each step seven minutes later */
    cmd->time_ms = d->now;
    wx_cli_submit(&d->cli, cmd, res);
    return res->reason == WX_APPROVED ? 0 : -1;
}

static void merchant(struct wx_merchant *m, uint16_t mcc, uint8_t channel, const char *name,
                     const char *city)
{
    memset(m, 0, sizeof *m);
    m->mcc = mcc;
    m->channel = channel;
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->city, sizeof m->city, "%s", city);
    snprintf(m->country, sizeof m->country, "CHN");
}

/* Terminal columns a UTF-8 string takes: CJK and full-width characters take two. */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) == 0x80) {
            continue; /* continuation byte */
        }
        w += *p >= 0xE3 && *p <= 0xEF ? 2 : 1; /* U+3000..U+FFFF: CJK, full-width forms */
    }
    return w;
}

/* Prints s left-aligned in a field of `cols` terminal columns. */
static void print_padded(const char *s, size_t cols)
{
    size_t w = display_width(s);
    printf("%s%*s", s, (int)(w < cols ? cols - w : 0), "");
}

/* One line of the transaction table. */
static void show_line(struct demo *d, int card, const char *what, int64_t amount,
                      const struct wx_result *res)
{
    char masked[20], amt[32], avail[32], decision[48];
    struct wx_card_view v = {.first6 = 0};
    wx_engine_card(wx_ledger_engine(d->cli.ledger), res->id ? res->id : d->cards[card].card_id, &v);
    wx_show_masked(&v, masked);
    wx_amount_format(amount, amt, sizeof amt);
    wx_amount_format(res->available, avail, sizeof avail);
    if (res->reason == WX_APPROVED && res->approval != 0) {
        snprintf(decision, sizeof decision, "approved %06u%s", res->approval,
                 res->repeat ? ", first answer again" : "");
    } else if (res->reason == WX_APPROVED) {
        snprintf(decision, sizeof decision, "done");
    } else {
        snprintf(decision, sizeof decision, "declined: %s", wx_reason_str(res->reason));
    }
    printf("  %2u  %s  ", ++d->step, masked);
    print_padded(what, 34);
    printf(" %10s  ", amt);
    print_padded(decision, 34);
    printf(" %10s\n", avail);
}

static struct wx_result authorize(struct demo *d, int card, int64_t fen, uint16_t mcc,
                                  uint8_t channel, const char *name, const char *city,
                                  uint16_t expiry)
{
    struct wx_cmd cmd = {.kind = WX_CMD_AUTHORIZE};
    struct wx_result res;
    set_key(&cmd, "demo:auth:%06u", ++d->stan);
    wx_card_ref(d->cli.keys, d->cards[card].pan, cmd.auth.ref);
    cmd.auth.expiry = expiry ? expiry : d->cards[card].expiry;
    cmd.auth.amount = fen;
    cmd.auth.currency = WX_CURRENCY_CNY;
    merchant(&cmd.auth.merchant, mcc, channel, name, city);
    submit(d, &cmd, &res);
    char what[96];
    snprintf(what, sizeof what, "%s, %s", name, city);
    show_line(d, card, what, fen, &res);
    return res;
}

static struct wx_result follow(struct demo *d, int card, uint8_t kind, uint32_t orig_stan,
                               int64_t fen, const char *what)
{
    struct wx_cmd cmd = {.kind = kind};
    struct wx_result res;
    set_key(&cmd, "demo:follow:%06u", ++d->stan);
    cmd.follow.orig_len = (uint8_t)snprintf(cmd.follow.orig_key, sizeof cmd.follow.orig_key,
                                            "demo:auth:%06u", orig_stan);
    wx_card_ref(d->cli.keys, d->cards[card].pan, cmd.follow.ref);
    cmd.follow.amount = fen;
    cmd.follow.currency = WX_CURRENCY_CNY;
    merchant(&cmd.follow.merchant, 0, WX_CHANNEL_POS, what, "");
    submit(d, &cmd, &res);
    show_line(d, card, what, fen, &res);
    return res;
}

static int add_cardholder(struct demo *d, int i, const char *name, const char *id_doc,
                          const char *mobile, int64_t limit, uint32_t account, bool activate)
{
    char err[256];
    struct wx_cmd cmd;
    struct wx_result res;
    if (wx_issuing_customer_cmd(d->cli.keys, name, id_doc, mobile, id_doc, d->now, &cmd, err,
                                sizeof err) != 0 ||
        submit(d, &cmd, &res) != 0) {
        fprintf(stderr, "demo: customer %s: %s\n", name, err);
        return -1;
    }
    struct wx_card_request req = {.customer_id = res.id,
                                  .account_id = account,
                                  .credit_limit = limit,
                                  .statement_day = 5,
                                  .bin = wx_config_str(d->cli.cfg, "card.bin"),
                                  .pan_length = (int)wx_config_int(d->cli.cfg, "card.pan_length"),
                                  .validity_years = 5};
    d->now += 7 * 60 * 1000;
    if (wx_issuing_issue_card(d->cli.ledger, d->cli.keys, &req, d->now, &res, &d->cards[i], err,
                              sizeof err) != 0) {
        fprintf(stderr, "demo: card for %s: %s\n", name, err);
        return -1;
    }
    d->holders[i] = name;
    if (activate) {
        struct wx_cmd act = {.kind = WX_CMD_CARD_ACTIVATE};
        set_key(&act, "demo:activate:%u", res.id);
        act.card_status.card_id = res.id;
        submit(d, &act, &res);
    }
    char masked[20], amt[32];
    struct wx_card_view v;
    wx_engine_card(wx_ledger_engine(d->cli.ledger), d->cards[i].card_id, &v);
    wx_show_masked(&v, masked);
    wx_amount_format(limit, amt, sizeof amt);
    printf("  ");
    print_padded(name, 12);
    printf(" %s  %s%s%s\n", masked, account ? "supplementary card" : "limit ", account ? "" : amt,
           activate ? "" : "  (not activated yet)");
    return 0;
}

static void set_status(struct demo *d, int card, uint8_t status, const char *what)
{
    struct wx_cmd cmd = {.kind = WX_CMD_CARD_STATUS};
    struct wx_result res;
    set_key(&cmd, "demo:status:%06u", ++d->stan);
    cmd.card_status.card_id = d->cards[card].card_id;
    cmd.card_status.status = status;
    submit(d, &cmd, &res);
    printf("      %s: %s\n", d->holders[card], what);
}

static void traffic(struct demo *d)
{
    printf("\nA day of card traffic, as the card switch sends it (amounts in CNY):\n"
           "   #  card              merchant / what                        amount  "
           "decision                            available\n");
    authorize(d, 0, 3800, 5814, WX_CHANNEL_POS, "星巴克咖啡", "上海", 0);
    uint32_t hotel = d->stan + 1;
    authorize(d, 0, 120000, 7011, WX_CHANNEL_POS, "和平饭店", "上海", 0);
    follow(d, 0, WX_CMD_CAPTURE, hotel, 138000, "hotel checkout: capture +15%");
    authorize(d, 0, 2500000, 5732, WX_CHANNEL_POS, "Apple Store", "上海", 0);
    uint32_t jd = d->stan + 1;
    authorize(d, 1, 299900, 5964, WX_CHANNEL_CNP, "京东商城 (快捷支付)", "北京", 0);
    authorize(d, 2, 50000, 5977, WX_CHANNEL_POS, "屈臣氏 (supplementary)", "北京", 0);
    set_status(d, 1, WX_CARD_LOCKED, "locks the card (安全锁卡)");
    authorize(d, 1, 8800, 5812, WX_CHANNEL_POS, "海底捞", "北京", 0);
    set_status(d, 1, WX_CARD_ACTIVE, "unlocks the card");
    follow(d, 1, WX_CMD_REVERSAL, jd, 99900, "京东: partial reversal");
    authorize(d, 3, 10000, 5411, WX_CHANNEL_POS, "全家便利店", "Shanghai", 0);
    authorize(d, 0, 1000, 5499, WX_CHANNEL_CNP, "wrong expiry date", "online", 1201);

    /* The switch did not hear the answer to the coffee and sends it again: same answer. */
    struct wx_cmd cmd = {.kind = WX_CMD_AUTHORIZE, .time_ms = d->now};
    struct wx_result res;
    set_key(&cmd, "demo:auth:%06u", 1);
    wx_card_ref(d->cli.keys, d->cards[0].pan, cmd.auth.ref);
    cmd.auth.expiry = d->cards[0].expiry;
    cmd.auth.amount = 3800;
    cmd.auth.currency = WX_CURRENCY_CNY;
    merchant(&cmd.auth.merchant, 5814, WX_CHANNEL_POS, "星巴克咖啡", "上海");
    wx_cli_submit(&d->cli, &cmd, &res);
    show_line(d, 0, "the switch repeats #1 (星巴克咖啡)", 3800, &res);

    struct wx_cmd pay = {.kind = WX_CMD_REPAYMENT};
    set_key(&pay, "demo:repay:%u", 1);
    pay.posting.account_id = d->cards[0].account_id;
    pay.posting.amount = 100000;
    pay.posting.currency = WX_CURRENCY_CNY;
    submit(d, &pay, &res);
    res.id = d->cards[0].card_id;
    show_line(d, 0, "repayment received (还款到账)", 100000, &res);
}

static int prepare_dir(void)
{
    static const char *const files[] = {
        DEMO_DB,           DEMO_DB "-wal",        DEMO_DB "-shm",         DEMO_DB ".key",
        DEMO_DB ".lock",   DEMO_DB ".history",    DEMO_DB ".history-wal", DEMO_DB ".history-shm",
        DEMO_DB ".notify", DEMO_DB ".notify-wal", DEMO_DB ".notify-shm",  DEMO_CARDS};
    if (access(DEMO_DIR, F_OK) != 0 && mkdir(DEMO_DIR, 0700) != 0) {
        perror("demo: mkdir " DEMO_DIR);
        return -1;
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        unlink(files[i]);
    }
    return 0;
}

/* The demo's WeChat followers: the platform's OpenIDs are 28 characters. */
static const struct {
    const char *openid, *nickname;
    int card; /* whose card's customer it is bound to; -1: not bound */
} followers[] = {
    {"oWXB_demo_ZhangWei_00000001", "张伟", 0},
    {"oWXB_demo_LiNa_000000000002", "李娜", 1},
    {"oWXB_demo_WangFang_00000003", "王芳", 2},
    {"oWXB_demo_visitor_000000004", "访客 Visitor", -1},
};

/* Every demo cardholder's passwords for the secure pages (README: the tour). A real bank's
 * cardholders set their own, through the registered mobile (/m/password). */
#define DEMO_LOGIN_PASSWORD "Demo-2026-pass"
#define DEMO_TXN_PASSWORD   "730915"

static int set_passwords(struct demo *d)
{
    char err[256], hash[WX_PASSWORD_HASH_MAX];
    struct wx_password_cost cost;
    wx_password_cost_default(&cost);
    wx_web_store_t *store = wx_web_store_open(d->cli.db_path, err, sizeof err);
    int rc = store != NULL ? 0 : -1;
    for (int i = 0; rc == 0 && i < DEMO_CARDS_MAX; i++) {
        struct wx_card_view v;
        struct wx_customer_view c;
        const wx_engine_t *e = wx_ledger_engine(d->cli.ledger);
        if (wx_engine_card(e, d->cards[i].card_id, &v) != 0 ||
            wx_engine_customer(e, v.customer_id, &c) != 0) {
            continue;
        }
        rc = wx_password_hash(&cost, DEMO_LOGIN_PASSWORD, strlen(DEMO_LOGIN_PASSWORD), hash) ||
             wx_web_store_set_password(store, c.id, WX_PW_LOGIN, hash, d->now, err, sizeof err) ||
             wx_password_hash(&cost, DEMO_TXN_PASSWORD, strlen(DEMO_TXN_PASSWORD), hash) ||
             wx_web_store_set_password(store, c.id, WX_PW_TXN, hash, d->now, err, sizeof err) ||
             wx_web_store_set_mobile(store, c.id, c.mobile, err, sizeof err);
    }
    wx_web_store_close(store);
    if (rc != 0) {
        fprintf(stderr, "demo: passwords: %s\n", err);
        return -1;
    }
    printf("\nSecure-page passwords set for every cardholder (login and transaction: README).\n");
    return 0;
}

/* Binds the followers to the demo's customers, as bank staff would (`wxbank bind`). */
static int bind_followers(struct demo *d)
{
    printf("\nWeChat followers bound to cardholders (bank staff, `wxbank bind`):\n");
    for (size_t i = 0; i < sizeof followers / sizeof followers[0]; i++) {
        if (followers[i].card < 0) continue;
        struct wx_card_view v;
        wx_engine_card(wx_ledger_engine(d->cli.ledger), d->cards[followers[i].card].card_id, &v);
        struct wx_cmd cmd = {.kind = WX_CMD_FOLLOWER_BIND};
        struct wx_result res;
        set_key(&cmd, "demo:bind:%u", (unsigned)i);
        snprintf(cmd.follower.openid, sizeof cmd.follower.openid, "%s", followers[i].openid);
        cmd.follower.customer_id = v.customer_id;
        cmd.follower.via = WX_BIND_STAFF;
        if (submit(d, &cmd, &res) != 0) {
            fprintf(stderr, "demo: bind: %s\n", wx_reason_str(res.reason));
            return -1;
        }
        printf("  %-28s %s\n", followers[i].openid, d->holders[followers[i].card]);
    }
    return 0;
}

/* The POS page's cards, written once (0600): like `wxbank seed --pans`, the one place a
 * full card number is written out, for the demo's terminal. */
static int write_cards(const struct demo *d)
{
    FILE *f = fopen(DEMO_CARDS, "w");
    if (f == NULL || chmod(DEMO_CARDS, 0600) != 0) {
        perror("demo: " DEMO_CARDS);
        if (f != NULL) fclose(f);
        return -1;
    }
    for (int i = 0; i < DEMO_CARDS_MAX; i++) {
        fprintf(f, "%s\t%s\t%02u%02u\n", d->holders[i], d->cards[i].pan,
                (unsigned)d->cards[i].expiry / 100, (unsigned)d->cards[i].expiry % 100);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Creates the demo bank in ./demo and tells its story. Returns an exit code. */
static int create_bank(void)
{
    if (prepare_dir() != 0) return WX_EXIT_FAIL;
    struct demo d = {.now = wx_now_ms() - 3 * 3600 * 1000};
    int rc = wx_cli_open(&d.cli, NULL, WX_CLI_LEDGER, true);
    if (rc != WX_EXIT_OK) {
        wx_cli_close(&d.cli);
        return rc;
    }
    printf("wxbank demo: a card issuer in ./%s (journal %s)\n\nCardholders:\n", DEMO_DIR, DEMO_DB);
    if (add_cardholder(&d, 0, "张伟", "110101199003074512", "13800138000", 2000000, 0, true) ||
        add_cardholder(&d, 1, "李娜", "310104198512120028", "13911112222", 5000000, 0, true) ||
        add_cardholder(&d, 2, "王芳", "31010419880808002X", "13933334444", 0, d.cards[1].account_id,
                       true) ||
        add_cardholder(&d, 3, "Alice Chen", "K12345678", "+85291234567", 1000000, 0, false) ||
        bind_followers(&d) != 0 || write_cards(&d) != 0 || set_passwords(&d) != 0) {
        wx_cli_close(&d.cli);
        return WX_EXIT_FAIL;
    }
    traffic(&d);
    printf("\n");
    wx_show_card(&d.cli, d.cards[0].card_id);
    wx_wipe(d.cards, sizeof d.cards);
    wx_cli_close(&d.cli);
    printf("\n");
    char *verify_argv[] = {"verify", NULL};
    return wx_cmd_verify(1, verify_argv);
}

/* Sets key to value unless the configuration already says something (or always, for the
 * settings that tie the bank and its sandbox together). */
static int default_to(wx_config_t *cfg, const char *key, const char *value, bool always)
{
    char err[256];
    if (!always && wx_config_str(cfg, key)[0] != '\0') return 0;
    if (wx_config_set(cfg, key, value, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank demo: %s\n", err);
        return -1;
    }
    return 0;
}

/* The demo account's settings: made-up credentials shared by the bank and its sandbox (as
 * the real platform and the bank share them), and each pointed at the other. */
static int demo_config(wx_config_t *cfg)
{
    char api[128], hook[128], sms[160], oauth[192];
    const char *listen = wx_config_str(cfg, "http.listen");
    snprintf(api, sizeof api, "http://%s/sandbox", listen);
    snprintf(hook, sizeof hook, "http://%s/wechat", listen);
    snprintf(sms, sizeof sms, "%s/sms/send", api);
    snprintf(oauth, sizeof oauth, "%s/connect/oauth2/authorize", api);
    if (default_to(cfg, "wechat.token", "wxbankdemotoken", false) ||
        default_to(cfg, "wechat.appid", "wxd3a0b1c2d3e4f5a6", false) ||
        default_to(cfg, "wechat.secret", "demo-secret-for-the-sandbox-only", false) ||
        default_to(cfg, "wechat.aes_key", "wxbankDemoEncodingAESKey0123456789abcdefghi", false) ||
        default_to(cfg, "wechat.account", wx_config_str(cfg, "sandbox.account"), false) ||
        default_to(cfg, "wechat.mode", wx_config_str(cfg, "sandbox.mode"), true) ||
        default_to(cfg, "wechat.api_base", api, true) ||
        default_to(cfg, "sandbox.webhook_url", hook, true) ||
        default_to(cfg, "alerts.template_id", "wxbank_card_alert", false) ||
        default_to(cfg, "sms.url", sms, false) ||
        default_to(cfg, "https.listen", "127.0.0.1:8443", false) ||
        default_to(cfg, "web.oauth_url", oauth, true)) {
        return -1;
    }
    char details[160];
    snprintf(details, sizeof details, "https://%s", wx_config_str(cfg, "https.listen"));
    if (default_to(cfg, "alerts.details_url", details, false)) return -1;
    if (access("data/menu.json", R_OK) == 0) {
        return default_to(cfg, "wechat.menu", "data/menu.json", false);
    }
    return 0;
}

/* Gives the sandbox the demo's followers and, from DEMO_CARDS, its cards. */
static int stock_sandbox(wx_sandbox_t *sb)
{
    char err[256];
    for (size_t i = 0; i < sizeof followers / sizeof followers[0]; i++) {
        struct wx_sandbox_follower f = {
            .openid = followers[i].openid, .nickname = followers[i].nickname, .following = true};
        if (wx_sandbox_add_follower(sb, &f, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "wxbank demo: follower: %s\n", err);
            return -1;
        }
    }
    FILE *f = fopen(DEMO_CARDS, "r");
    if (f == NULL) {
        perror("wxbank demo: " DEMO_CARDS " (run wxbank demo --fresh)");
        return -1;
    }
    char line[256];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        /* label TAB pan TAB expiry: written by write_cards above */
        char *label = line, *pan = strchr(label, '\t');
        char *expiry = pan != NULL ? strchr(pan + 1, '\t') : NULL;
        if (expiry == NULL) continue;
        *pan++ = '\0';
        *expiry++ = '\0';
        expiry[strcspn(expiry, "\r\n")] = '\0';
        struct wx_sandbox_card c = {.label = label, .pan = pan, .expiry = expiry};
        rc = wx_sandbox_add_card(sb, &c, err, sizeof err);
        if (rc != 0) fprintf(stderr, "wxbank demo: card: %s\n", err);
    }
    wx_wipe(line, sizeof line);
    fclose(f);
    return rc;
}

/* The bank and the sandbox on one loop, until Ctrl-C. Returns an exit code. */
static int serve_demo(const char *config)
{
    struct wx_cli cli;
    int rc = wx_cli_open(&cli, config, WX_CLI_LEDGER, false);
    if (rc == WX_EXIT_OK && demo_config(cli.cfg) != 0) rc = WX_EXIT_USAGE;
    if (rc == WX_EXIT_OK) rc = wx_cli_init_tls(&cli);
    struct wx_bank b;
    if (rc == WX_EXIT_OK) rc = wx_bank_start(&b, &cli);
    if (rc != WX_EXIT_OK) {
        wx_cli_close(&cli);
        return rc;
    }
    char err[256];
    struct wx_sandbox_options opt;
    wx_sandbox_t *sb = NULL;
    if (wx_sandbox_options_from_config(cli.cfg, &opt, err, sizeof err) != 0 ||
        (sb = wx_sandbox_start(b.hub, b.http, &opt, err, sizeof err)) == NULL) {
        fprintf(stderr, "wxbank demo: sandbox: %s\n", err);
        rc = WX_EXIT_FAIL;
    } else if (stock_sandbox(sb) != 0) {
        rc = WX_EXIT_FAIL;
    } else {
        printf("\nThe bank and its WeChat sandbox are running (Ctrl-C stops them):\n"
               "  open  %s      the followers' phone and a POS terminal\n"
               "  webhook         http://%s/wechat\n"
               "  secure pages    https://%s/m/ (self-signed certificate)\n"
               "  ISO 8583        %s (%s)\n\n",
               wx_sandbox_page_url(sb), wx_http_address(b.http), wx_http_tls_address(b.http),
               wx_config_str(cli.cfg, "iso8583.listen"), wx_config_str(cli.cfg, "iso8583.dialect"));
        fflush(stdout);
        wx_hub_run(b.hub);
    }
    wx_sandbox_free(sb);
    wx_bank_stop(&b);
    wx_cli_close(&cli);
    return rc;
}

int wx_cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {{"once", no_argument, NULL, 'o'},
                                         {"fresh", no_argument, NULL, 'f'},
                                         {"config", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    bool once = false, fresh = false;
    const char *config = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'o') {
            once = true;
        } else if (ch == 'f') {
            fresh = true;
        } else if (ch == 'c') {
            config = optarg;
        } else {
            fprintf(stderr, "usage: wxbank demo [--once] [--fresh] [--config FILE]\n");
            return WX_EXIT_USAGE;
        }
    }
    /* The demo's own database; routine start-up logging would only interleave the story. */
    if (setenv("WXBANK_DB_URL", "sqlite:" DEMO_DB, 1) != 0 ||
        setenv("WXBANK_LOG_LEVEL", "warn", 0) != 0) {
        return WX_EXIT_FAIL;
    }
    int rc = WX_EXIT_OK;
    if (once || fresh || access(DEMO_DB, F_OK) != 0) {
        rc = create_bank();
    } else {
        printf("wxbank demo: the demo bank in ./%s (--fresh starts it over)\n", DEMO_DIR);
    }
    if (rc != WX_EXIT_OK || once) return rc;
    return serve_demo(config);
}
