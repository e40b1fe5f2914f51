/*
 * test_alerts.c - the alert dispatcher against the WeChat sandbox: who hears what, by which
 * channel, and what each of the platform's failures leads to.
 *
 * Two loops on two threads, as in production: the bank (ledger, hub, HTTP listener with the
 * webhook, platform API client, SMS gateway client, dispatcher) and the sandbox (the
 * platform's API, the SMS gateway, and the delivery reports it posts to the bank's webhook).
 * The test thread submits authorizations to the bank's loop and watches what reaches the
 * sandbox through its observer; faults are asked of the sandbox over its page API, as a
 * tester would.
 *
 * Cardholders: A has a follower (oA) who follows the account; B has none; C's follower (oC)
 * is bound at the bank but no longer follows the account, so the platform answers 43004.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/fetch.h"
#include "ledger/ledger.h"
#include "net/net.h"
#include "notify/notify.h"
#include "ops/ops.h"
#include "sandbox/sandbox.h"
#include "util/config.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "wechat/wechat.h"

#include "../unit/engine_cmds.h"
#include "integration/serve_util.h"

#define APPID    "wx5823bf96d3bd56c7"
#define SECRET   "sandbox-secret-7f2a"
#define TOKEN    "QDG6eK"
#define AES_KEY  "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define ACCOUNT  "gh_7f083739789a"
#define OA       "oALERTS_holder_A_00000000001"
#define OC       "oALERTS_holder_C_00000000003"
#define MOBILE_A "13800000001"
#define MOBILE_B "13800000002"
#define MOBILE_C "13800000003"

#define OPS_TOKEN   "ops-token-for-the-alerts-test"
#define WAIT_MS     8000
#define FALLBACK_MS 1000 /* alerts.sms_fallback_s at its least */
#define MSGS_MAX    4096

struct seen {
    enum wx_sandbox_msg_kind kind;
    char to[WX_OPENID_MAX + 1];
    char ref[64];
    char text[512];
    bool repeat;
    int64_t at_ms;
};

/* A hub on a thread of its own. */
struct loop {
    wx_hub_t *hub;
    pthread_t thread;
    bool running;
};

struct fixture {
    char dir[64], db[128];
    unsigned template_finish_ms;
    bool report_early; /* the bank hears each template's report before its answer */
    struct loop sbl, bank;
    wx_http_t *sb_http, *bank_http;
    wx_sandbox_t *sb;
    wx_ledger_t *ledger;
    wx_fetch_t *fetch;
    wx_wechat_api_t *api;
    wx_webhook_t *webhook;
    wx_notify_t *notify;
    wx_ops_t *ops;
    char api_base[128], sms_url[160], page_base[128];
    uint8_t ref_a[WX_REF_LEN], ref_b[WX_REF_LEN], ref_c[WX_REF_LEN];
    pthread_mutex_t mu;
    struct seen seen[MSGS_MAX];
    size_t nseen;
    unsigned next_key;
};

static struct fixture fx;

/* ---- the sandbox's side ------------------------------------------------------------------- */

/* A delivery report heard on the bank's loop, as its webhook would pass it on. */
struct report {
    const char *openid;
    uint64_t msgid;
};

static void on_bank(void (*fn)(void *arg), void *arg);
static void run_report(void *arg);

static void observe(const struct wx_sandbox_msg *m, void *arg)
{
    struct fixture *f = arg;
    pthread_mutex_lock(&f->mu);
    bool report_now = f->report_early && m->kind == WX_SANDBOX_MSG_TEMPLATE && !m->repeat;
    if (f->nseen < MSGS_MAX) {
        struct seen *s = &f->seen[f->nseen++];
        s->kind = m->kind;
        snprintf(s->to, sizeof s->to, "%s", m->to);
        snprintf(s->ref, sizeof s->ref, "%s", m->ref);
        snprintf(s->text, sizeof s->text, "%s", m->text);
        s->repeat = m->repeat;
        s->at_ms = m->at_ms;
    }
    pthread_mutex_unlock(&f->mu);
    if (report_now) {
        /* Heard by the bank before the platform's answer is even written. */
        struct report r = {.openid = m->to, .msgid = m->msgid};
        on_bank(run_report, &r);
    }
}

/* How many messages of kind with ref arrived (absorbed repeats not counted), and when the
 * first did. */
static int seen_count(const char *ref, enum wx_sandbox_msg_kind kind, int64_t *first_at)
{
    int n = 0;
    pthread_mutex_lock(&fx.mu);
    for (size_t i = 0; i < fx.nseen; i++) {
        if (fx.seen[i].kind == kind && !fx.seen[i].repeat && strcmp(fx.seen[i].ref, ref) == 0) {
            if (n++ == 0 && first_at != NULL) *first_at = fx.seen[i].at_ms;
        }
    }
    pthread_mutex_unlock(&fx.mu);
    return n;
}

/* The text of the first message of kind with ref ("" when none). */
static void seen_text(const char *ref, enum wx_sandbox_msg_kind kind, char *out, size_t cap)
{
    out[0] = '\0';
    pthread_mutex_lock(&fx.mu);
    for (size_t i = 0; i < fx.nseen; i++) {
        if (fx.seen[i].kind == kind && strcmp(fx.seen[i].ref, ref) == 0) {
            snprintf(out, cap, "%s", fx.seen[i].text);
            break;
        }
    }
    pthread_mutex_unlock(&fx.mu);
}

static bool wait_seen(const char *ref, enum wx_sandbox_msg_kind kind, int64_t *first_at)
{
    for (int64_t until = wx_now_ms() + WAIT_MS; wx_now_ms() < until; usleep(5000)) {
        if (seen_count(ref, kind, first_at) > 0) return true;
    }
    return false;
}

struct answer {
    char body[8192];
    size_t len;
};

static size_t keep_body(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t take = size * n;
    if (take > sizeof a->body - 1 - a->len) take = sizeof a->body - 1 - a->len;
    memcpy(a->body + a->len, p, take);
    a->len += take;
    a->body[a->len] = '\0';
    return size * n;
}

/* One HTTP call (a POST when json is not NULL); the status, and the body in *a. */
static long http_call(const char *url, const char *auth, const char *json, struct answer *a)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char bearer[160];
    if (auth != NULL) {
        snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", auth);
        h = curl_slist_append(h, bearer);
    }
    a->len = 0;
    a->body[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (json != NULL) curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* POSTs JSON to the sandbox's page API; the HTTP status. */
static long sandbox_post(const char *path, const char *json)
{
    char url[256];
    struct answer a;
    snprintf(url, sizeof url, "%s%s", fx.page_base, path);
    return http_call(url, NULL, json, &a);
}

/* Calls the bank's ops API. */
static long ops_call(const char *path, const char *auth, const char *json, struct answer *a)
{
    char url[256];
    snprintf(url, sizeof url, "http://%s%s", wx_http_address(fx.bank_http), path);
    return http_call(url, auth, json, a);
}

static void fault(const char *json)
{
    assert_int_equal(sandbox_post("/api/fault", json), 200);
}

/* ---- the loops ------------------------------------------------------------------------------ */

static void *loop_main(void *arg)
{
    wx_hub_run(((struct loop *)arg)->hub);
    return NULL;
}

static void loop_start(struct loop *l)
{
    assert_int_equal(pthread_create(&l->thread, NULL, loop_main, l), 0);
    l->running = true;
}

struct stop_task {
    struct wx_hub_task task;
    wx_hub_t *hub;
};

static void run_stop(struct wx_hub_task *t, bool cancelled)
{
    if (!cancelled) wx_hub_stop(((struct stop_task *)t)->hub);
}

static void loop_join(struct loop *l)
{
    if (!l->running) return;
    struct stop_task st = {.task.run = run_stop, .hub = l->hub};
    wx_hub_post(l->hub, &st.task);
    pthread_join(l->thread, NULL);
    wx_hub_discard_posted(l->hub);
    l->running = false;
}

/* Runs fn(arg) on the bank's loop and waits for it. */
struct bank_task {
    struct wx_hub_task task;
    void (*fn)(void *arg);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static void run_bank_task(struct wx_hub_task *t, bool cancelled)
{
    struct bank_task *b = (struct bank_task *)t;
    if (!cancelled) b->fn(b->arg);
    pthread_mutex_lock(&b->mu);
    b->done = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void on_bank(void (*fn)(void *arg), void *arg)
{
    struct bank_task b = {.task.run = run_bank_task, .fn = fn, .arg = arg};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    wx_hub_post_now(fx.bank.hub, &b.task); /* the sandbox's loop waits here too */
    pthread_mutex_lock(&b.mu);
    while (!b.done)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
}

/* A command decided on the bank's loop, as the ISO 8583 host would submit it. */
struct submission {
    const struct wx_cmd *cmd;
    struct wx_result res;
};

static void run_submit(void *arg)
{
    struct submission *s = arg;
    wx_hub_submit(fx.bank.hub, s->cmd, &s->res);
}

static struct wx_result submit(const struct wx_cmd *cmd)
{
    struct submission s = {.cmd = cmd};
    on_bank(run_submit, &s);
    return s.res;
}

static void run_report(void *arg)
{
    const struct report *r = arg;
    wx_notify_template_finished(fx.notify, r->openid, r->msgid, "success");
}

/* A POS purchase of `fen` on a card; returns the alert's journal seq. */
static uint64_t purchase(const uint8_t ref[WX_REF_LEN], int64_t fen)
{
    struct wx_cmd cmd;
    char key[32];
    snprintf(key, sizeof key, "alerts:auth:%u", fx.next_key++);
    cmd_auth(&cmd, key, wx_now_ms(), ref, fen);
    struct wx_result res = submit(&cmd);
    assert_int_equal(res.reason, WX_APPROVED);
    assert_true(res.journaled);
    return res.seq;
}

static void ref_of(char *out, size_t cap, uint64_t seq, const char *channel)
{
    snprintf(out, cap, "%llu-%s", (unsigned long long)seq, channel);
}

/* ---- fixture -------------------------------------------------------------------------------- */

static void on_report(void *arg, const char *openid, uint64_t msgid, const char *status)
{
    wx_notify_template_finished(arg, openid, msgid, status);
}

static void decide(const struct wx_cmd *cmd)
{
    struct wx_result res;
    wx_ledger_submit(fx.ledger, cmd, &res);
    assert_true(res.journaled && res.reason == WX_APPROVED);
    wx_ledger_sync(fx.ledger, res.seq);
}

/* Customer n (1..3) with an active card; followers bound as the header says. */
static void cardholder(unsigned n, const char *mobile, uint8_t ref[WX_REF_LEN], const char *openid)
{
    struct wx_cmd cmd;
    char key[32];
    snprintf(key, sizeof key, "setup:customer:%u", n);
    cmd_customer(&cmd, key, T0_MS, "Holder", mobile, n);
    decide(&cmd);
    ref_fill(ref, n);
    snprintf(key, sizeof key, "setup:card:%u", n);
    cmd_card(&cmd, key, T0_MS, n, 0, ref, 5000000);
    decide(&cmd);
    snprintf(key, sizeof key, "setup:activate:%u", n);
    cmd_status(&cmd, WX_CMD_CARD_ACTIVATE, key, T0_MS, n, WX_CARD_ACTIVE);
    decide(&cmd);
    if (openid != NULL) {
        snprintf(key, sizeof key, "setup:bind:%u", n);
        cmd_follower(&cmd, WX_CMD_FOLLOWER_BIND, key, T0_MS, openid, n, WX_BIND_STAFF);
        decide(&cmd);
    }
}

static void open_ledger(void)
{
    char text[256], err[256];
    int len = snprintf(text, sizeof text, "[db]\nurl = sqlite:%s\n", fx.db);
    wx_config_t *cfg = wx_config_load_buffer(text, (size_t)len, "test", err, sizeof err);
    assert_non_null(cfg);
    struct wx_ledger_options lo;
    wx_ledger_options_from_config(cfg, fx.db, &lo);
    fx.ledger = wx_ledger_open(&lo, err, sizeof err);
    wx_config_free(cfg);
    assert_non_null(fx.ledger);
}

static void sandbox_start(void)
{
    char err[256], hook[128];
    fx.sbl.hub = wx_hub_new(NULL, NULL, err, sizeof err);
    struct wx_http_options ho = {
        .listen = "127.0.0.1:0", .body_max = 1 << 20, .timeout_s = 60, .max_connections = 256};
    fx.sb_http = wx_http_start(fx.sbl.hub, &ho, err, sizeof err);
    assert_non_null(fx.sb_http);
    snprintf(hook, sizeof hook, "http://%s/wechat", wx_http_address(fx.bank_http));
    struct wx_sandbox_options so = {.appid = APPID,
                                    .secret = SECRET,
                                    .token = TOKEN,
                                    .aes_key = AES_KEY,
                                    .mode = WX_SANDBOX_PLAIN,
                                    .webhook_url = hook,
                                    .account = ACCOUNT,
                                    .template_finish_ms = fx.template_finish_ms};
    fx.sb = wx_sandbox_start(fx.sbl.hub, fx.sb_http, &so, err, sizeof err);
    assert_non_null(fx.sb);
    struct wx_sandbox_follower a = {.openid = OA, .nickname = "A", .following = true};
    struct wx_sandbox_follower c = {.openid = OC, .nickname = "C", .following = false};
    assert_int_equal(wx_sandbox_add_follower(fx.sb, &a, NULL, err, sizeof err), 0);
    assert_int_equal(wx_sandbox_add_follower(fx.sb, &c, NULL, err, sizeof err), 0);
    wx_sandbox_set_observer(fx.sb, observe, &fx);
    snprintf(fx.api_base, sizeof fx.api_base, "%s", wx_sandbox_api_base(fx.sb));
    snprintf(fx.sms_url, sizeof fx.sms_url, "%s/sms/send", fx.api_base);
    snprintf(fx.page_base, sizeof fx.page_base, "%s", fx.api_base);
    loop_start(&fx.sbl);
}

static void sandbox_stop(void)
{
    loop_join(&fx.sbl);
    wx_sandbox_free(fx.sb);
    wx_http_free(fx.sb_http);
    wx_hub_free(fx.sbl.hub);
}

/* The bank's parts, wired as src/cli/bank.c wires them. The listener must exist first: the
 * sandbox needs its address for the delivery reports. */
static void bank_listen(void)
{
    char err[256];
    fx.bank.hub = wx_hub_new(fx.ledger, NULL, err, sizeof err);
    assert_non_null(fx.bank.hub);
    struct wx_http_options ho = {
        .listen = "127.0.0.1:0", .body_max = 1 << 20, .timeout_s = 60, .max_connections = 256};
    fx.bank_http = wx_http_start(fx.bank.hub, &ho, err, sizeof err);
    assert_non_null(fx.bank_http);
}

static void bank_start(void)
{
    char err[256];
    fx.fetch = wx_fetch_new(wx_hub_base(fx.bank.hub), NULL);
    struct wx_wechat_api_options ao = {.base = fx.api_base,
                                       .appid = APPID,
                                       .secret = SECRET,
                                       .timeout_ms = 1000,
                                       .max_attempts = 2,
                                       .max_time_ms = 3000};
    fx.api = wx_wechat_api_new(wx_hub_base(fx.bank.hub), fx.fetch, &ao);
    struct wx_webhook_options wo = {.token = TOKEN,
                                    .appid = APPID,
                                    .aes_key = AES_KEY,
                                    .account = ACCOUNT,
                                    .timestamp_skew_s = 300,
                                    .dedup_entries = 1024,
                                    .dedup_ttl_s = 60,
                                    .reply_deadline_ms = 4500};
    fx.webhook = wx_webhook_start(fx.bank.hub, fx.bank_http, fx.api, &wo, err, sizeof err);
    assert_non_null(fx.webhook);
    struct wx_notify_options no = {
        .db_path = fx.db,
        .details_url = "https://bank.example",
        .tz_offset_minutes = 480,
        .lang = WX_LANG_ZH,
        .policy = WX_SMS_POLICY_DEFAULT,
        .sms_fallback_ms = FALLBACK_MS,
        .max_age_ms = 5000,
        .max_inflight = 64,
        .queue_max = 1000,
        .template_fields = "keyword1:kind,keyword2:card,keyword3:amount,keyword4:merchant",
        .sms = {.url = fx.sms_url,
                .body_template = "{\"mobile\":\"{mobile}\",\"text\":\"{text}\","
                                 "\"ref\":\"{ref}\"}",
                .timeout_ms = 1000},
    };
    for (int k = 0; k < WX_ALERT_KIND_COUNT; k++)
        no.template_ids[k] = "tmpl_card_alert";
    fx.notify = wx_notify_start(fx.bank.hub, fx.api, fx.fetch, &no, err, sizeof err);
    if (fx.notify == NULL) fail_msg("notify: %s", err);
    wx_webhook_on_report(fx.webhook, on_report, fx.notify);
    fx.ops = wx_ops_start(fx.bank_http, OPS_TOKEN, fx.db, fx.notify, err, sizeof err);
    assert_non_null(fx.ops);
    loop_start(&fx.bank);
}

static void bank_stop(void)
{
    loop_join(&fx.bank);
    wx_ops_stop(fx.ops);
    wx_http_free(fx.bank_http);
    wx_ops_free(fx.ops);
    wx_webhook_free(fx.webhook);
    wx_fetch_free(fx.fetch);
    wx_wechat_api_free(fx.api);
    wx_notify_free(fx.notify);
    wx_hub_free(fx.bank.hub);
}

static int setup(unsigned template_finish_ms)
{
    memset(&fx, 0, sizeof fx);
    wx_log_set_level(getenv("WX_TEST_LOG") ? WX_LOG_DEBUG : WX_LOG_ERROR);
    pthread_mutex_init(&fx.mu, NULL);
    fx.template_finish_ms = template_finish_ms;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/wx-alerts-XXXXXX");
    if (mkdtemp(fx.dir) == NULL) return -1;
    snprintf(fx.db, sizeof fx.db, "%s/bank.db", fx.dir);
    open_ledger();
    cardholder(1, MOBILE_A, fx.ref_a, OA);
    cardholder(2, MOBILE_B, fx.ref_b, NULL);
    cardholder(3, MOBILE_C, fx.ref_c, OC);
    bank_listen();
    sandbox_start();
    bank_start();
    return 0;
}

static int setup_reported(void **state)
{
    (void)state;
    return setup(100); /* delivery reports come 100 ms after a template message */
}

static int setup_unreported(void **state)
{
    (void)state;
    return setup(600000); /* no report within any test's time */
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    bank_stop();
    sandbox_stop();
    wx_ledger_close(fx.ledger);
    int rc = serve_keep_logs("test_alerts", fx.dir);
    nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    pthread_mutex_destroy(&fx.mu);
    return rc;
}

/* ---- the outbox as staff see it ------------------------------------------------------------- */

struct row_find {
    uint64_t seq;
    uint8_t channel;
    struct wx_send_row row;
    bool found;
};

static void keep_row(void *ctx, const struct wx_send_row *r)
{
    struct row_find *rf = ctx;
    if (r->seq == rf->seq && r->channel == rf->channel) {
        rf->row = *r;
        rf->found = true;
    }
}

/* Waits until the outbox records the send of seq on channel in `state`. */
static struct wx_send_row wait_state(uint64_t seq, uint8_t channel, uint8_t state)
{
    struct row_find rf = {.seq = seq, .channel = channel};
    char err[256];
    for (int64_t until = wx_now_ms() + WAIT_MS; wx_now_ms() < until; usleep(10000)) {
        rf.found = false;
        assert_int_equal(wx_outbox_list(fx.db, -1, seq, 20, keep_row, &rf, err, sizeof err), 0);
        if (rf.found && rf.row.state == state) return rf.row;
    }
    fail_msg("send %llu/%s: state %s, not %s", (unsigned long long)seq,
             wx_send_channel_name(channel), rf.found ? wx_send_state_name(rf.row.state) : "none",
             wx_send_state_name(state));
    return rf.row;
}

/* ---- policy --------------------------------------------------------------------------------- */

/* 88.00 at a POS with a follower: WeChat only, reported delivered, and no SMS after the
 * fallback delay either. */
static void test_small_purchase_wechat_only(void **state)
{
    (void)state;
    uint64_t seq = purchase(fx.ref_a, 8800);
    char wref[32], sref[32];
    ref_of(wref, sizeof wref, seq, "wechat");
    ref_of(sref, sizeof sref, seq, "sms");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, NULL));
    struct wx_send_row r = wait_state(seq, WX_SEND_WECHAT, WX_SEND_DELIVERED);
    assert_string_equal(r.to, OA);
    assert_false(r.watch);
    usleep((FALLBACK_MS + 300) * 1000);
    assert_int_equal(seen_count(sref, WX_SANDBOX_MSG_SMS, NULL), 0);
    assert_int_equal(seen_count(wref, WX_SANDBOX_MSG_TEMPLATE, NULL), 1);
}

/* 388.00: WeChat and SMS at once. */
static void test_large_purchase_both(void **state)
{
    (void)state;
    uint64_t seq = purchase(fx.ref_a, 38800);
    char wref[32], sref[32];
    ref_of(wref, sizeof wref, seq, "wechat");
    ref_of(sref, sizeof sref, seq, "sms");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, NULL));
    assert_true(wait_seen(sref, WX_SANDBOX_MSG_SMS, NULL));
    struct wx_send_row r = wait_state(seq, WX_SEND_SMS, WX_SEND_ACCEPTED);
    assert_string_equal(r.to, MOBILE_A);
}

/* A holder without a follower gets the SMS whatever the amount. */
static void test_no_follower_gets_sms(void **state)
{
    (void)state;
    uint64_t seq = purchase(fx.ref_b, 1200);
    char sref[32];
    ref_of(sref, sizeof sref, seq, "sms");
    assert_true(wait_seen(sref, WX_SANDBOX_MSG_SMS, NULL));
}

/* The platform refuses for good (43004: no longer a follower): the SMS follows at once. */
static void test_refused_falls_back_to_sms(void **state)
{
    (void)state;
    uint64_t seq = purchase(fx.ref_c, 1500);
    char sref[32];
    ref_of(sref, sizeof sref, seq, "sms");
    assert_true(wait_seen(sref, WX_SANDBOX_MSG_SMS, NULL));
    struct wx_send_row r = wait_state(seq, WX_SEND_WECHAT, WX_SEND_FAILED);
    assert_int_equal(r.errcode, 43004);
}

/* No delivery report in time: the SMS follows after the fallback delay. */
static void test_undelivered_falls_back_to_sms(void **state)
{
    (void)state;
    int64_t t0 = wx_now_ms(), wechat_at = 0, sms_at = 0;
    uint64_t seq = purchase(fx.ref_a, 2000);
    char wref[32], sref[32];
    ref_of(wref, sizeof wref, seq, "wechat");
    ref_of(sref, sizeof sref, seq, "sms");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, &wechat_at));
    assert_true(wait_seen(sref, WX_SANDBOX_MSG_SMS, &sms_at));
    assert_true(sms_at - wechat_at >= FALLBACK_MS - 50);
    assert_true(sms_at - t0 < FALLBACK_MS + 2000);
    wait_state(seq, WX_SEND_WECHAT, WX_SEND_UNDELIVERED);
}

/* A card's SMS retrying against a failing gateway does not hold its next WeChat alert. */
static void test_sms_outage_does_not_hold_wechat(void **state)
{
    (void)state;
    fault("{\"kind\":\"http500\",\"count\":1000,\"endpoint\":\"sms\"}");
    uint64_t big = purchase(fx.ref_a, 45600);  /* WeChat and SMS */
    uint64_t small = purchase(fx.ref_a, 1300); /* WeChat only */
    char r1[32], r2[32], sref[32];
    ref_of(r1, sizeof r1, big, "wechat");
    ref_of(r2, sizeof r2, small, "wechat");
    ref_of(sref, sizeof sref, big, "sms");
    int64_t t0 = wx_now_ms(), at2 = 0;
    assert_true(wait_seen(r1, WX_SANDBOX_MSG_TEMPLATE, NULL));
    assert_true(wait_seen(r2, WX_SANDBOX_MSG_TEMPLATE, &at2));
    assert_true(at2 - t0 < 1000);
    assert_int_equal(seen_count(sref, WX_SANDBOX_MSG_SMS, NULL), 0);
    fault("{\"kind\":\"none\"}");
    assert_true(wait_seen(sref, WX_SANDBOX_MSG_SMS, NULL));
}

/* A follower who chose English reads English; staff set it beside the running server. */
static void test_follower_reads_english(void **state)
{
    (void)state;
    char err[256], wref[32], text[512];
    assert_int_equal(wx_outbox_set_lang(fx.db, OA, WX_LANG_EN, err, sizeof err), 0);
    usleep(1500 * 1000); /* the recording thread looks every second */
    uint64_t seq = purchase(fx.ref_a, 7700);
    ref_of(wref, sizeof wref, seq, "wechat");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, NULL));
    seen_text(wref, WX_SANDBOX_MSG_TEMPLATE, text, sizeof text);
    assert_non_null(strstr(text, "CNY 77.00"));
    assert_null(strstr(text, "元"));
    assert_int_equal(wx_outbox_set_lang(fx.db, OA, WX_LANG_ZH, err, sizeof err), 0);
    usleep(1500 * 1000);
    seq = purchase(fx.ref_a, 7800);
    ref_of(wref, sizeof wref, seq, "wechat");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, NULL));
    seen_text(wref, WX_SANDBOX_MSG_TEMPLATE, text, sizeof text);
    assert_non_null(strstr(text, "78.00元"));
}

/* ---- the platform's and the gateway's failures ----------------------------------------------- */

/* One purchase under a fault: the template message still arrives, exactly once. */
static void survives(const char *fault_json)
{
    fault(fault_json);
    uint64_t seq = purchase(fx.ref_a, 6600);
    char wref[32];
    ref_of(wref, sizeof wref, seq, "wechat");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, NULL));
    wait_state(seq, WX_SEND_WECHAT, WX_SEND_DELIVERED);
    assert_int_equal(seen_count(wref, WX_SANDBOX_MSG_TEMPLATE, NULL), 1);
    fault("{\"kind\":\"none\"}");
}

static void test_busy_is_retried(void **state)
{
    (void)state;
    survives("{\"kind\":\"busy\",\"count\":2,\"endpoint\":\"template_send\"}");
}

static void test_quota_is_retried(void **state)
{
    (void)state;
    survives("{\"kind\":\"quota\",\"count\":1,\"endpoint\":\"template_send\"}");
}

static void test_http500_is_retried(void **state)
{
    (void)state;
    survives("{\"kind\":\"http500\",\"count\":3,\"endpoint\":\"template_send\"}");
}

static void test_expired_token_is_refreshed(void **state)
{
    (void)state;
    survives("{\"kind\":\"token_expired\",\"count\":1,\"endpoint\":\"template_send\"}");
}

static void test_slow_answer_is_waited_for(void **state)
{
    (void)state;
    survives("{\"kind\":\"slow\",\"count\":1,\"delay_ms\":600,\"endpoint\":\"template_send\"}");
}

/* No answer at all: the retry carries the same client_msg_id, so nothing arrives twice. */
static void test_no_answer_is_retried_once(void **state)
{
    (void)state;
    survives("{\"kind\":\"timeout\",\"count\":1,\"endpoint\":\"template_send\"}");
}

static void test_sms_gateway_errors_are_retried(void **state)
{
    (void)state;
    fault("{\"kind\":\"http500\",\"count\":2,\"endpoint\":\"sms\"}");
    uint64_t seq = purchase(fx.ref_b, 4200);
    char sref[32];
    ref_of(sref, sizeof sref, seq, "sms");
    assert_true(wait_seen(sref, WX_SANDBOX_MSG_SMS, NULL));
    struct wx_send_row r = wait_state(seq, WX_SEND_SMS, WX_SEND_ACCEPTED);
    assert_true(r.attempts >= 2);
    fault("{\"kind\":\"none\"}");
}

/* A card's alerts arrive in order: the second waits while the first is slow. */
static void test_card_order(void **state)
{
    (void)state;
    fault("{\"kind\":\"slow\",\"count\":1,\"delay_ms\":500,\"endpoint\":\"template_send\"}");
    uint64_t first = purchase(fx.ref_a, 1100);
    uint64_t second = purchase(fx.ref_a, 1200);
    char r1[32], r2[32];
    int64_t at1 = 0, at2 = 0;
    ref_of(r1, sizeof r1, first, "wechat");
    ref_of(r2, sizeof r2, second, "wechat");
    assert_true(wait_seen(r1, WX_SANDBOX_MSG_TEMPLATE, &at1));
    assert_true(wait_seen(r2, WX_SANDBOX_MSG_TEMPLATE, &at2));
    assert_true(at1 <= at2);
    fault("{\"kind\":\"none\"}");
}

/* A delivery report heard before the platform's answer to its send is read: the watch that
 * begins with the answer still hears it, and no SMS follows. */
static void test_early_report_is_kept(void **state)
{
    (void)state;
    pthread_mutex_lock(&fx.mu);
    fx.report_early = true;
    pthread_mutex_unlock(&fx.mu);
    uint64_t seq = purchase(fx.ref_a, 2100);
    char wref[32], sref[32];
    ref_of(wref, sizeof wref, seq, "wechat");
    ref_of(sref, sizeof sref, seq, "sms");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, NULL));
    pthread_mutex_lock(&fx.mu);
    fx.report_early = false;
    pthread_mutex_unlock(&fx.mu);
    wait_state(seq, WX_SEND_WECHAT, WX_SEND_DELIVERED);
    usleep((FALLBACK_MS + 300) * 1000);
    assert_int_equal(seen_count(sref, WX_SANDBOX_MSG_SMS, NULL), 0);
}

/* Retries run out: the send is dead, listed, and a replay through the ops API sends it once
 * the platform is back. */
static void test_dead_letter_and_replay(void **state)
{
    (void)state;
    fault("{\"kind\":\"http500\",\"count\":1000,\"endpoint\":\"template_send\"}");
    uint64_t seq = purchase(fx.ref_a, 2300);
    struct wx_send_row r = wait_state(seq, WX_SEND_WECHAT, WX_SEND_DEAD);
    assert_true(r.attempts >= 2);
    assert_true(strstr(r.error, "500") != NULL);
    fault("{\"kind\":\"none\"}");
    struct answer a;
    char path[128], json[64], wref[32];
    snprintf(path, sizeof path, "/api/v1/alerts/sends?state=dead&from=%llu",
             (unsigned long long)seq);
    assert_int_equal(ops_call(path, OPS_TOKEN, NULL, &a), 200);
    assert_non_null(strstr(a.body, "\"state\":\"dead\""));
    assert_non_null(strstr(a.body, OA));
    snprintf(json, sizeof json, "{\"seq\":%llu}", (unsigned long long)seq);
    assert_int_equal(ops_call("/api/v1/alerts/replay", OPS_TOKEN, json, &a), 200);
    assert_string_equal(a.body, "{\"replayed\":1}");
    assert_int_equal(ops_call("/api/v1/alerts/replay", OPS_TOKEN, json, &a), 200);
    assert_string_equal(a.body, "{\"replayed\":0}"); /* no longer dead */
    ref_of(wref, sizeof wref, seq, "wechat");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, NULL));
    wait_state(seq, WX_SEND_WECHAT, WX_SEND_ACCEPTED);
}

/* The ops API wants its token, and says clearly what is wrong with a call. */
static void test_ops_api_refusals(void **state)
{
    (void)state;
    struct answer a;
    assert_int_equal(ops_call("/api/v1/alerts", NULL, NULL, &a), 401);
    assert_int_equal(ops_call("/api/v1/alerts", "ops-token-for-the-alerts-tesT", NULL, &a), 401);
    assert_int_equal(ops_call("/api/v1/alerts", "short", NULL, &a), 401);
    assert_int_equal(ops_call("/api/v1/alerts", OPS_TOKEN, NULL, &a), 200);
    assert_non_null(strstr(a.body, "\"sends\":{\"pending\":"));
    assert_non_null(strstr(a.body, "\"live\":{"));
    assert_int_equal(ops_call("/api/v1/alerts/sends?state=lost", OPS_TOKEN, NULL, &a), 400);
    assert_int_equal(ops_call("/api/v1/alerts/sends?limit=0", OPS_TOKEN, NULL, &a), 400);
    assert_int_equal(ops_call("/api/v1/alerts/sends?limit=1001", OPS_TOKEN, NULL, &a), 400);
    assert_int_equal(ops_call("/api/v1/alerts/sends?from=x", OPS_TOKEN, NULL, &a), 400);
    static const char *const bad[] = {"",
                                      "[]",
                                      "{}",
                                      "{\"seq\":0}",
                                      "{\"seq\":-3}",
                                      "{\"seq\":\"7\"}",
                                      "{\"all\":false}",
                                      "{\"seq\":1,\"all\":true}",
                                      "{\"seq\":1,\"seq\":2}",
                                      "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ops_call("/api/v1/alerts/replay", OPS_TOKEN, bad[i], &a), 400);
    }
    assert_int_equal(ops_call("/api/v1/alerts/replay", OPS_TOKEN, "{\"all\":true}", &a), 200);
    assert_int_equal(ops_call("/api/v1/alerts", OPS_TOKEN, "{}", &a), 405);
    assert_int_equal(ops_call("/api/v1/cards", OPS_TOKEN, NULL, &a), 404);
}

/* A send in flight when the bank stops goes again at the next start, with the same reference. */
static void test_restart_resends_pending(void **state)
{
    (void)state;
    fault("{\"kind\":\"timeout\",\"count\":1000,\"endpoint\":\"template_send\"}");
    uint64_t seq = purchase(fx.ref_a, 3100);
    wait_state(seq, WX_SEND_WECHAT, WX_SEND_PENDING);
    bank_stop();
    fault("{\"kind\":\"none\"}");
    bank_listen();
    bank_start();
    char wref[32];
    ref_of(wref, sizeof wref, seq, "wechat");
    assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, NULL));
    wait_state(seq, WX_SEND_WECHAT, WX_SEND_ACCEPTED);
    assert_int_equal(seen_count(wref, WX_SANDBOX_MSG_TEMPLATE, NULL), 1);
}

static uint64_t watermark(void)
{
    uint64_t counts[WX_SEND_STATES], mark;
    char err[256];
    assert_int_equal(wx_outbox_counts(fx.db, counts, &mark, err, sizeof err), 0);
    return mark;
}

/* A card's alerts held behind its retrying send are recorded pending, so the outbox's
 * watermark passes them; after a restart each goes once, in order. */
static void test_held_alerts_pass_the_watermark(void **state)
{
    (void)state;
    fault("{\"kind\":\"timeout\",\"count\":1000,\"endpoint\":\"template_send\"}");
    uint64_t seq[3] = {purchase(fx.ref_a, 3200), purchase(fx.ref_a, 3300),
                       purchase(fx.ref_a, 3400)};
    wait_state(seq[0], WX_SEND_WECHAT, WX_SEND_PENDING);
    wait_state(seq[2], WX_SEND_WECHAT, WX_SEND_PENDING);
    int64_t until = wx_now_ms() + WAIT_MS;
    while (watermark() < seq[2] && wx_now_ms() < until)
        usleep(10000);
    assert_true(watermark() >= seq[2]);
    bank_stop();
    fault("{\"kind\":\"none\"}");
    bank_listen();
    bank_start();
    int64_t at[3];
    for (int i = 0; i < 3; i++) {
        char wref[32];
        ref_of(wref, sizeof wref, seq[i], "wechat");
        assert_true(wait_seen(wref, WX_SANDBOX_MSG_TEMPLATE, &at[i]));
        wait_state(seq[i], WX_SEND_WECHAT, WX_SEND_ACCEPTED);
        assert_int_equal(seen_count(wref, WX_SANDBOX_MSG_TEMPLATE, NULL), 1);
    }
    assert_true(at[0] <= at[1] && at[1] <= at[2]);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest reported[] = {
        cmocka_unit_test(test_small_purchase_wechat_only),
        cmocka_unit_test(test_large_purchase_both),
        cmocka_unit_test(test_no_follower_gets_sms),
        cmocka_unit_test(test_refused_falls_back_to_sms),
        cmocka_unit_test(test_busy_is_retried),
        cmocka_unit_test(test_quota_is_retried),
        cmocka_unit_test(test_http500_is_retried),
        cmocka_unit_test(test_expired_token_is_refreshed),
        cmocka_unit_test(test_slow_answer_is_waited_for),
        cmocka_unit_test(test_no_answer_is_retried_once),
        cmocka_unit_test(test_sms_gateway_errors_are_retried),
        cmocka_unit_test(test_card_order),
        cmocka_unit_test(test_sms_outage_does_not_hold_wechat),
        cmocka_unit_test(test_follower_reads_english),
    };
    const struct CMUnitTest unreported[] = {
        cmocka_unit_test(test_undelivered_falls_back_to_sms),
        cmocka_unit_test(test_early_report_is_kept),
        cmocka_unit_test(test_dead_letter_and_replay),
        cmocka_unit_test(test_ops_api_refusals),
        cmocka_unit_test(test_restart_resends_pending),
        cmocka_unit_test(test_held_alerts_pass_the_watermark),
    };
    int failed = cmocka_run_group_tests_name("reported", reported, setup_reported, teardown);
    failed += cmocka_run_group_tests_name("unreported", unreported, setup_unreported, teardown);
    curl_global_cleanup();
    return failed;
}
