/*
 * bank.c - the bank's serving process: every listener and client on one hub.
 *
 * `wxbank serve` runs exactly this; `wxbank demo` runs it with the WeChat sandbox added on
 * the same HTTP listener. The ISO 8583 host and the HTTP listener (with the WeChat webhook)
 * attach to the hub; the WeChat platform API client pushes the menu from wechat.menu at start.
 * With https.listen set the HTTP listener also serves HTTPS there, with the same routes, from
 * https.cert and https.key (by default the self-signed pair `wxbank init` made).
 */
#include "cli/bank.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"
#include "util/log.h"

#define MENU_FILE_MAX (16u << 10)

static void on_menu(const struct wx_wechat_api_result *r, void *arg)
{
    (void)arg;
    if (r->cls == WX_WECHAT_API_OK) {
        WX_INFO("wechat: menu created");
    } else {
        WX_WARN("wechat: menu not created (%s: %s)", wx_wechat_api_class_name(r->cls), r->errmsg);
    }
}

/* Pushes the menu in wechat.menu (a JSON file as menu/create takes it), when there is one. */
static int push_menu(struct wx_bank *b, const struct wx_config *cfg, char *err, size_t errlen)
{
    const char *path = wx_config_str(cfg, "wechat.menu");
    if (path[0] == '\0' || b->api == NULL) return 0;
    FILE *f = fopen(path, "r");
    char *json = calloc(1, MENU_FILE_MAX + 1);
    size_t n = f != NULL && json != NULL ? fread(json, 1, MENU_FILE_MAX + 1, f) : 0;
    int rc = 0;
    if (f == NULL || n == 0 || n > MENU_FILE_MAX) {
        snprintf(err, errlen, "wechat.menu = %s: cannot read it (or over %u bytes)", path,
                 MENU_FILE_MAX);
        rc = -1;
    } else if (wx_wechat_api_menu_create(b->api, json, on_menu, NULL) != 0) {
        snprintf(err, errlen, "wechat.menu = %s: not a menu (JSON with a \"button\" array)", path);
        rc = -1;
    }
    if (f != NULL) fclose(f);
    free(json);
    return rc;
}

static void on_report(void *arg, const char *openid, uint64_t msgid, const char *status)
{
    wx_notify_template_finished(arg, openid, msgid, status);
}

/* The alert dispatcher, unless alerts.enabled is false. */
static int start_alerts(struct wx_bank *b, const struct wx_config *cfg, char *err, size_t errlen)
{
    if (!wx_config_bool(cfg, "alerts.enabled")) return 0;
    struct wx_notify_options opt;
    if (wx_notify_options_from_config(cfg, wx_config_sqlite_path(cfg), &opt, err, errlen) != 0) {
        return -1;
    }
    b->notify = wx_notify_start(b->hub, b->api, b->fetch, &opt, err, errlen);
    if (b->notify == NULL) return -1;
    wx_webhook_on_report(b->webhook, on_report, b->notify);
    return 0;
}

/*
 * The HTTPS listener's certificate and key, when https.listen is set: https.cert and
 * https.key, or the pair `wxbank init` made beside the database when https.cert is empty.
 * 0, or -1 with err naming the key whose file is missing or bad (a configuration error).
 */
static int load_tls(struct wx_bank *b, const struct wx_cli *cli, char *err, size_t errlen)
{
    if (wx_config_str(cli->cfg, "https.listen")[0] == '\0') return 0;
    char cert_def[PATH_MAX], key_def[PATH_MAX], why[200];
    const char *cert = wx_config_str(cli->cfg, "https.cert");
    const char *key = wx_config_str(cli->cfg, "https.key");
    if (cert[0] == '\0' || key[0] == '\0') {
        if (wx_tls_default_paths(cli->db_path, cert_def, key_def, sizeof cert_def) != 0) {
            snprintf(err, errlen, "https.cert: the database's path is too long");
            return -1;
        }
        if (cert[0] == '\0') cert = cert_def;
        if (key[0] == '\0') key = key_def;
    }
    int rc = wx_tls_new(cert, key, &b->tls, why, sizeof why);
    if (rc == 0) return 0;
    bool bad_cert = rc == WX_TLS_BAD_CERT;
    bool made = bad_cert ? cert == cert_def : key == key_def; /* the pair `wxbank init` makes */
    snprintf(err, errlen, "%s = %.200s: %s%s", bad_cert ? "https.cert" : "https.key",
             bad_cert ? cert : key, why, made ? " (`wxbank init` makes a self-signed pair)" : "");
    return -1;
}

static int make_link(void *arg, const char *openid, const char *action, int64_t now_ms, char *url,
                     size_t cap)
{
    return wx_web_link(arg, openid, action, now_ms, url, cap);
}

/* The secure pages, when https.listen is set; chat's hand-offs then send links to them. */
static int start_web(struct wx_bank *b, const struct wx_cli *cli, char *err, size_t errlen)
{
    if (b->tls == NULL) return 0;
    struct wx_web_options opt;
    if (wx_web_options_from_config(cli->cfg, cli->db_path, &opt, err, errlen) != 0) return -1;
    b->web = wx_web_start(b->hub, b->http, b->api, b->fetch, &opt, err, errlen);
    if (b->web == NULL) return -1;
    wx_webhook_set_links(b->webhook, make_link, b->web);
    return 0;
}

/* The ops API, when ops.token is set. */
static int start_ops(struct wx_bank *b, const struct wx_config *cfg, char *err, size_t errlen)
{
    const char *token = wx_config_str(cfg, "ops.token");
    if (token[0] == '\0') return 0;
    b->ops = wx_ops_start(b->http, token, wx_config_sqlite_path(cfg), b->notify, err, errlen);
    return b->ops != NULL ? 0 : -1;
}

void wx_bank_stop(struct wx_bank *b)
{
    wx_ops_stop(b->ops);         /* its worker answers on the listener */
    wx_web_stop(b->web);         /* so does the pages' */
    wx_http_free(b->http);       /* first: the webhook's first stage runs on its threads */
    wx_metrics_free(b->metrics); /* its route was on the listener; it reads what follows */
    wx_ops_free(b->ops);
    wx_webhook_free(b->webhook);
    wx_fetch_free(b->fetch); /* cancels the API's calls in flight */
    wx_wechat_api_free(b->api);
    wx_notify_free(b->notify); /* after both: their last callbacks are the dispatcher's */
    wx_iso_server_free(b->iso);
    wx_hub_free(b->hub);
    wx_web_free(b->web); /* after the client (OAuth, SMS calls) and the hub (worker's tasks) */
    wx_tls_free(b->tls); /* after the listener, whose connections used it */
    memset(b, 0, sizeof *b);
}

int wx_bank_start(struct wx_bank *b, struct wx_cli *cli)
{
    char err[512];
    memset(b, 0, sizeof *b);
    struct wx_iso_server_options iso_opt;
    struct wx_http_options http_opt;
    struct wx_webhook_options wh_opt;
    struct wx_wechat_api_options api_opt;
    wx_http_options_from_config(cli->cfg, &http_opt);
    wx_wechat_api_options_from_config(cli->cfg, &api_opt);
    if (wx_iso_server_options_from_config(cli->cfg, &iso_opt, err, sizeof err) != 0 ||
        wx_webhook_options_from_config(cli->cfg, &wh_opt, err, sizeof err) != 0 ||
        load_tls(b, cli, err, sizeof err) != 0) {
        fprintf(stderr, "wxbank: %s\n", err);
        return WX_EXIT_USAGE;
    }
    http_opt.tls = b->tls;
    wh_opt.history_db = cli->db_path; /* the chat's statements and transactions */
    b->hub = wx_hub_new(cli->ledger, cli->keys, err, sizeof err);
    if (b->hub == NULL) goto fail;
    b->iso = wx_iso_server_start(b->hub, &iso_opt, err, sizeof err);
    if (b->iso == NULL) goto fail;
    b->http = wx_http_start(b->hub, &http_opt, err, sizeof err);
    if (b->http == NULL) goto fail;
    /* Alerts are most of the bank's outbound calls: as many transfers as they may have in
     * flight, or more wait inside the client and alerts.max_inflight means nothing. */
    struct wx_fetch_options fetch_opt = {
        .max_inflight = (unsigned)wx_config_int(cli->cfg, "alerts.max_inflight")};
    if (fetch_opt.max_inflight < WX_FETCH_INFLIGHT_DEFAULT) {
        fetch_opt.max_inflight = WX_FETCH_INFLIGHT_DEFAULT;
    }
    b->fetch = wx_fetch_new(wx_hub_base(b->hub), &fetch_opt);
    if (b->fetch == NULL) {
        snprintf(err, sizeof err, "cannot start the HTTP client");
        goto fail;
    }
    if (api_opt.secret[0] != '\0') {
        b->api = wx_wechat_api_new(wx_hub_base(b->hub), b->fetch, &api_opt);
    }
    b->webhook = wx_webhook_start(b->hub, b->http, b->api, &wh_opt, err, sizeof err);
    if (b->webhook == NULL || push_menu(b, cli->cfg, err, sizeof err) != 0 ||
        start_alerts(b, cli->cfg, err, sizeof err) != 0 ||
        start_web(b, cli, err, sizeof err) != 0 || start_ops(b, cli->cfg, err, sizeof err) != 0) {
        goto fail;
    }
    wx_bank_metrics_start(b);
    return WX_EXIT_OK;
fail:
    fprintf(stderr, "wxbank: %s\n", err);
    wx_bank_stop(b);
    return WX_EXIT_FAIL;
}
