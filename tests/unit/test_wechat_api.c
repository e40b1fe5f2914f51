/*
 * test_wechat_api.c - the WeChat platform API client (src/wechat/api.c) against the WeChat
 * sandbox's platform API (src/sandbox), in-process.
 *
 * Two sandboxes (the second hands out tokens that live 4 s) run on a hub of their own, on a
 * thread of their own, behind HTTP listeners on 127.0.0.1:0: they are "the platform", a
 * separate party. The client under test runs on the test's own event_base with a fetcher,
 * as `wxbank serve` runs it. The test drives the platform the way an operator would, with
 * plain blocking libcurl calls to the sandbox's test hooks: faults (POST /sandbox/api/fault),
 * counters (GET /sandbox/api/stats), the platform's clock (POST /sandbox/api/clock: real token
 * expiry without waiting), a follower refusing messages, an OAuth authorization that yields a
 * code. Every platform-side claim ("one token fetch", "not retried") is checked on the
 * platform's own counters, not only on the client's.
 *
 * Covered: the token fetched once and reused; 50 concurrent calls without a token make one
 * fetch; a token that expires (42001), is superseded (40001) or is refused (40014) in the
 * middle of traffic costs exactly one refresh and every call succeeds; a second 40001 after
 * the refresh is permanent; -1, HTTP 500 and 45009 are retried (45009 after a longer back-off);
 * a timed-out template send with client_msg_id is retried, a timed-out customer-service send
 * is not (outcome unknown); 43004, 43101, 40003 are permanent and sent once; max_attempts and
 * max_time_ms bound every retry loop, the token's included; template msgid, customer-service
 * text, news and image, the menu from data/menu.json and a bad menu, media upload, OAuth code
 * to OpenID and the same code twice; a short-lived token refreshed ahead of its expiry.
 *
 * The bodies the client writes and the answers it reads are checked against jansson, which
 * the client once used for both, with a recorder of the test's own on the client's loop:
 * template and customer-service bodies byte for byte (every control character, quotes,
 * backslashes, text past ASCII, strings that are not UTF-8, repeated field names, and 300
 * random messages), and answers of every shape read to the same result.
 *
 * Every wait is bounded; the time-based parts use small timeouts and back-offs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fetch/fetch.h"
#include "net/net.h"
#include "sandbox/sandbox.h"
#include "util/log.h"
#include "wechat/wechat.h"

#define APPID    "wx5823bf96d3bd56c7"
#define SECRET   "api-test-secret-8c1d"
#define TOKEN    "apitesttoken"
#define ACCOUNT  "gh_5b0a1d7e2c9f"
#define FOLLOWER "oFollower000000000000000001" /* following: every send works */
#define STRANGER "oStranger000000000000000001" /* known, not following: 43004 */
#define REFUSER  "oRefuser0000000000000000001" /* following, refuses messages: 43101 */
#define UNKNOWN  "oUnknown0000000000000000001" /* not known to the platform: 40003 */

#define WAIT_MS      20000 /* no wait in this file is longer */
#define CONCURRENT   50    /* calls at once in the single-flight test */
#define MID_TRAFFIC  20    /* calls in flight when the token goes bad */
#define SHORT_TTL_S  4     /* expires_in of the second sandbox's tokens */
#define CTL_BODY_MAX 65536 /* bytes of a control answer kept */
#define TEMPLATE_ID  "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY"

/* ======================================================================================
 * Small helpers
 * ====================================================================================== */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A loopback port that was free a moment ago: nothing listens there. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ======================================================================================
 * The platform: two sandboxes on one hub, on a thread of their own
 * ====================================================================================== */

/* One sandbox on its own HTTP listener. */
struct platform {
    wx_http_t *http;
    wx_sandbox_t *sb;
    char base[128]; /* wechat.api_base for this sandbox */
};

static struct platform pf;       /* tokens live 7200 s */
static struct platform short_pf; /* tokens live SHORT_TTL_S */

static struct {
    wx_hub_t *hub;
    struct event *tick; /* checks stop and breaks the loop */
    pthread_t thread;
    bool running;
    atomic_bool stop;
} loop;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (atomic_load(&loop.stop)) wx_hub_stop(loop.hub);
}

static void *platform_main(void *arg)
{
    (void)arg;
    wx_hub_run(loop.hub);
    return NULL;
}

/* A sandbox whose access tokens live token_ttl_s (0: 7200), on a listener of its own. */
static int platform_add(struct platform *p, unsigned token_ttl_s)
{
    char err[256];
    struct wx_http_options ho = {.listen = "127.0.0.1:0",
                                 .body_max = 1u << 20,
                                 .timeout_s = 60,
                                 .max_connections = 256,
                                 .threads = 1};
    p->http = wx_http_start(loop.hub, &ho, err, sizeof err);
    if (p->http == NULL) return -1;
    static const struct wx_sandbox_follower followers[] = {
        {.openid = FOLLOWER, .nickname = "follower", .following = true},
        {.openid = STRANGER, .nickname = "stranger", .following = false},
        {.openid = REFUSER, .nickname = "refuser", .following = true},
    };
    struct wx_sandbox_options so = {
        .appid = APPID,
        .secret = SECRET,
        .token = TOKEN,
        .mode = WX_SANDBOX_PLAIN,
        .webhook_url = "http://127.0.0.1:9/wechat", /* never reached: no follower acts */
        .account = ACCOUNT,
        .token_ttl_s = token_ttl_s,
        .template_finish_ms = 600000, /* no TEMPLATESENDJOBFINISH during the test */
        .followers = followers,
        .nfollowers = sizeof followers / sizeof followers[0],
    };
    p->sb = wx_sandbox_start(loop.hub, p->http, &so, err, sizeof err);
    if (p->sb == NULL) {
        fprintf(stderr, "sandbox: %s\n", err);
        return -1;
    }
    snprintf(p->base, sizeof p->base, "%s", wx_sandbox_api_base(p->sb));
    return 0;
}

static int platform_start(void)
{
    char err[256];
    loop.hub = wx_hub_new(NULL, NULL, err, sizeof err);
    if (loop.hub == NULL) return -1;
    if (platform_add(&pf, 0) != 0 || platform_add(&short_pf, SHORT_TTL_S) != 0) return -1;
    loop.tick = event_new(wx_hub_base(loop.hub), -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 10000};
    if (loop.tick == NULL || event_add(loop.tick, &tv) != 0) return -1;
    atomic_store(&loop.stop, false);
    if (pthread_create(&loop.thread, NULL, platform_main, NULL) != 0) return -1;
    loop.running = true;
    return 0;
}

static void platform_stop(void)
{
    if (loop.running) {
        atomic_store(&loop.stop, true);
        pthread_join(loop.thread, NULL);
        loop.running = false;
    }
    if (loop.tick != NULL) event_free(loop.tick);
    struct platform *all[] = {&short_pf, &pf};
    for (size_t i = 0; i < 2; i++) {
        wx_sandbox_free(all[i]->sb); /* before its listener */
        if (all[i]->http != NULL) wx_http_free(all[i]->http);
        memset(all[i], 0, sizeof *all[i]);
    }
    wx_hub_free(loop.hub);
    memset(&loop, 0, sizeof loop);
}

/* ---- blocking control calls (the operator's side) -------------------------------------- */

struct ctl_result {
    long status;
    char body[CTL_BODY_MAX];
    size_t len;
    char location[1024]; /* a redirect's target, not followed */
};

static size_t on_ctl_body(char *p, size_t size, size_t n, void *arg)
{
    struct ctl_result *r = arg;
    size_t len = size * n;
    size_t room = sizeof r->body - 1 - r->len;
    size_t take = len < room ? len : room;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return len;
}

/* GET (json NULL) or POST json to url; fails the test when no HTTP answer comes. */
static void ctl(const char *url, const char *json, struct ctl_result *r)
{
    memset(r, 0, sizeof *r);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_ctl_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (json != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) fail_msg("control call %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    char *loc = NULL;
    if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc != NULL) {
        snprintf(r->location, sizeof r->location, "%s", loc);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
}

/* Makes the next count calls (of endpoint, or any when NULL) fail as kind. */
static void fault_on(const struct platform *p, const char *kind, int count, const char *endpoint)
{
    char url[256], json[256];
    snprintf(url, sizeof url, "%s/api/fault", p->base);
    if (endpoint != NULL) {
        snprintf(json, sizeof json, "{\"kind\":\"%s\",\"count\":%d,\"endpoint\":\"%s\"}", kind,
                 count, endpoint);
    } else {
        snprintf(json, sizeof json, "{\"kind\":\"%s\",\"count\":%d}", kind, count);
    }
    struct ctl_result r;
    ctl(url, json, &r);
    if (r.status != 200) fail_msg("fault %s: HTTP %ld %s", json, r.status, r.body);
}

static void clock_advance(const struct platform *p, long seconds)
{
    char url[256], json[64];
    snprintf(url, sizeof url, "%s/api/clock", p->base);
    snprintf(json, sizeof json, "{\"advance_s\":%ld}", seconds);
    struct ctl_result r;
    ctl(url, json, &r);
    assert_int_equal(r.status, 200);
}

/* A counter of GET /sandbox/api/stats by its path: "tokens_issued", "calls.custom_send",
 * "errcodes.42001" (0 when that errcode was never answered). */
static long long counter(const struct platform *p, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "%s/api/stats", p->base);
    struct ctl_result r;
    ctl(url, NULL, &r);
    assert_int_equal(r.status, 200);
    json_error_t je;
    json_t *root = json_loads(r.body, 0, &je);
    assert_non_null(root);
    const json_t *v = root;
    char key[64];
    const char *s = path;
    while (v != NULL && *s != '\0') {
        size_t n = strcspn(s, ".");
        assert_true(n < sizeof key);
        memcpy(key, s, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        s += n + (s[n] == '.');
    }
    long long out = 0;
    if (v != NULL) {
        assert_true(json_is_integer(v));
        out = (long long)json_integer_value(v);
    } else if (strncmp(path, "errcodes.", 9) != 0) {
        fail_msg("stats: no %s in %s", path, r.body);
    }
    json_decref(root);
    return out;
}

/* ======================================================================================
 * The client under test
 * ====================================================================================== */

struct client {
    struct event_base *base;
    wx_fetch_t *fetch;
    wx_wechat_api_t *api;
};

struct outcome {
    int calls; /* times the callback ran: must end at 1 */
    int64_t at_ms;
    struct wx_wechat_api_result r;
};

static void on_result(const struct wx_wechat_api_result *r, void *arg)
{
    struct outcome *o = arg;
    o->calls++;
    o->at_ms = now_ms();
    o->r = *r;
}

/* The clients alive, so that teardown frees those a failed test left behind. */
#define CLIENTS_MAX 4
static struct client *live_clients[CLIENTS_MAX];

/* A client on base (the client's from then on, freed with it). */
static void client_on(struct client *c, struct event_base *base, const char *api_base,
                      unsigned timeout_ms, unsigned max_attempts, unsigned max_time_ms)
{
    size_t slot = 0;
    while (slot < CLIENTS_MAX && live_clients[slot] != NULL)
        slot++;
    assert_true(slot < CLIENTS_MAX);
    live_clients[slot] = c;
    c->base = base;
    assert_non_null(c->base);
    c->fetch = wx_fetch_new(c->base, NULL);
    assert_non_null(c->fetch);
    struct wx_wechat_api_options o = {.base = api_base,
                                      .appid = APPID,
                                      .secret = SECRET,
                                      .timeout_ms = timeout_ms,
                                      .max_attempts = max_attempts,
                                      .max_time_ms = max_time_ms};
    c->api = wx_wechat_api_new(c->base, c->fetch, &o);
    assert_non_null(c->api);
}

static void client_new(struct client *c, const char *api_base, unsigned timeout_ms,
                       unsigned max_attempts, unsigned max_time_ms)
{
    client_on(c, event_base_new(), api_base, timeout_ms, max_attempts, max_time_ms);
}

/* The defaults `wxbank serve` uses, with a shorter time budget. */
static void client_default(struct client *c, const struct platform *p)
{
    client_new(c, p->base, 5000, 4, 15000);
}

static void client_free(struct client *c)
{
    for (size_t i = 0; i < CLIENTS_MAX; i++) {
        if (live_clients[i] == c) live_clients[i] = NULL;
    }
    wx_fetch_free(c->fetch); /* cancels what is in flight: callbacks run now */
    wx_wechat_api_free(c->api);
    event_base_free(c->base);
    memset(c, 0, sizeof *c);
}

/* Runs the client's loop for about ms. */
static void run_for(struct client *c, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_base_loopexit(c->base, &tv);
    event_base_dispatch(c->base);
}

/* Runs the loop until every outcome has its callback; fails after WAIT_MS. Returns the
 * time it took. */
static int64_t run_until_done(struct client *c, struct outcome *o, size_t n)
{
    int64_t t0 = now_ms();
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += o[i].calls > 0;
        if (done == n) break;
        if (now_ms() - t0 > WAIT_MS) fail_msg("%zu of %zu calls unfinished", n - done, n);
        run_for(c, 10);
    }
    for (size_t i = 0; i < n; i++) {
        if (o[i].calls != 1) fail_msg("call %zu: callback ran %d times", i, o[i].calls);
    }
    return now_ms() - t0;
}

static struct wx_wechat_api_stats api_stats(const struct client *c)
{
    struct wx_wechat_api_stats s;
    wx_wechat_api_stats(c->api, &s);
    return s;
}

static void send_text(struct client *c, const char *openid, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    assert_int_equal(wx_wechat_api_custom_text(c->api, openid, "您的卡片已激活", on_result, o), 0);
}

static void send_template(struct client *c, const char *openid, const char *client_msg_id,
                          struct outcome *o)
{
    static const struct wx_wechat_template_field fields[] = {
        {"keyword1", "尾号1234"}, {"keyword2", "¥39.80"}, {"keyword3", "2024-05-01 12:00"}};
    struct wx_wechat_template t = {.openid = openid,
                                   .template_id = TEMPLATE_ID,
                                   .url = "https://bank.example/tx/1",
                                   .client_msg_id = client_msg_id,
                                   .fields = fields,
                                   .nfields = 3};
    memset(o, 0, sizeof *o);
    assert_int_equal(wx_wechat_api_template_send(c->api, &t, on_result, o), 0);
}

static void assert_ok(const struct outcome *o)
{
    if (o->r.cls != WX_WECHAT_API_OK) {
        fail_msg("call failed: %s %ld %s (attempts %u)", wx_wechat_api_class_name(o->r.cls),
                 o->r.errcode, o->r.errmsg, o->r.attempts);
    }
}

/* One call that fails as expected: class, errcode, attempts. */
static void assert_failed(const struct outcome *o, enum wx_wechat_api_class cls, long errcode,
                          unsigned attempts)
{
    if (o->r.cls != cls || o->r.errcode != errcode || o->r.attempts != attempts) {
        fail_msg("want %s %ld after %u attempts, got %s %ld (%s) after %u",
                 wx_wechat_api_class_name(cls), errcode, attempts,
                 wx_wechat_api_class_name(o->r.cls), o->r.errcode, o->r.errmsg, o->r.attempts);
    }
}

/* A platform of the test's own: it hands out a token, keeps the body of the last message
 * call and answers it with whatever the test set, so that bodies can be compared byte for
 * byte with what jansson made of the same message (the client's way before it wrote them
 * itself) and answers read as jansson reads them. */
static struct recorder {
    struct evhttp *http;
    char base[128];    /* wechat.api_base */
    char body[65536];  /* the last message call's body */
    size_t body_len;   /* */
    unsigned calls;    /* message calls received */
    char answer[4096]; /* what they get */
} rec;

/* ======================================================================================
 * Fixtures
 * ====================================================================================== */

static int group_setup(void **state)
{
    (void)state;
    wx_log_set_level(WX_LOG_WARN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return -1;
    if (platform_start() != 0) return -1;
    /* The refuser switches "拒收消息" on, as a follower does on the phone. */
    char url[256];
    snprintf(url, sizeof url, "%s/api/refuse", pf.base);
    struct ctl_result r;
    ctl(url, "{\"openid\":\"" REFUSER "\",\"refuses\":true}", &r);
    return r.status == 200 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    platform_stop();
    curl_global_cleanup();
    return 0;
}

/* Each test leaves no fault behind for the next. */
static int teardown(void **state)
{
    (void)state;
    if (rec.http != NULL) evhttp_free(rec.http); /* on a client's loop: goes first */
    rec.http = NULL;
    for (size_t i = 0; i < CLIENTS_MAX; i++) {
        if (live_clients[i] != NULL) client_free(live_clients[i]);
    }
    fault_on(&pf, "none", 0, NULL);
    return 0;
}

/* ======================================================================================
 * Tokens
 * ====================================================================================== */

/* The first call fetches a token; the calls after it reuse it. */
static void test_token_fetched_once_and_reused(void **state)
{
    (void)state;
    long long tokens0 = counter(&pf, "tokens_issued");
    long long custom0 = counter(&pf, "calls.custom_send");
    long long template0 = counter(&pf, "calls.template_send");
    static struct client c; /* static: teardown frees it when the test fails */
    client_default(&c, &pf);
    struct outcome o[3];
    send_text(&c, FOLLOWER, &o[0]);
    run_until_done(&c, &o[0], 1);
    assert_ok(&o[0]);
    assert_int_equal(o[0].r.attempts, 1);
    send_template(&c, FOLLOWER, NULL, &o[1]);
    run_until_done(&c, &o[1], 1);
    assert_ok(&o[1]);
    send_text(&c, FOLLOWER, &o[2]);
    run_until_done(&c, &o[2], 1);
    assert_ok(&o[2]);
    struct wx_wechat_api_stats s = api_stats(&c);
    assert_int_equal(s.tokens, 1);
    assert_int_equal(s.calls, 3);
    assert_int_equal(s.ok, 3);
    assert_int_equal(s.retries, 0);
    assert_int_equal(counter(&pf, "tokens_issued") - tokens0, 1);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 2);
    assert_int_equal(counter(&pf, "calls.template_send") - template0, 1);
    client_free(&c);
}

/* 50 calls at once with no token: one token fetch, shared by all. */
static void test_single_flight_token(void **state)
{
    (void)state;
    long long tokens0 = counter(&pf, "tokens_issued");
    long long custom0 = counter(&pf, "calls.custom_send");
    static struct client c;
    client_default(&c, &pf);
    static struct outcome o[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++)
        send_text(&c, FOLLOWER, &o[i]);
    run_until_done(&c, o, CONCURRENT);
    for (int i = 0; i < CONCURRENT; i++) {
        assert_ok(&o[i]);
        assert_int_equal(o[i].r.attempts, 1);
    }
    assert_int_equal(api_stats(&c).tokens, 1);
    assert_int_equal(counter(&pf, "tokens_issued") - tokens0, 1);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, CONCURRENT);
    client_free(&c);
}

/* Warms a client up (its first token) and returns the platform's token count after it. */
static void warm_up(struct client *c)
{
    struct outcome o;
    send_text(c, FOLLOWER, &o);
    run_until_done(c, &o, 1);
    assert_ok(&o);
    assert_int_equal(api_stats(c).tokens, 1);
}

/* MID_TRAFFIC calls in flight whose token went bad (errcode): every one is answered
 * errcode once, one refresh follows, and every call succeeds on its second attempt. */
static void expect_one_refresh(struct client *c, const char *errcode_path, long long tokens0)
{
    long long bad0 = counter(&pf, errcode_path);
    long long custom0 = counter(&pf, "calls.custom_send");
    static struct outcome o[MID_TRAFFIC];
    for (int i = 0; i < MID_TRAFFIC; i++)
        send_text(c, FOLLOWER, &o[i]);
    run_until_done(c, o, MID_TRAFFIC);
    for (int i = 0; i < MID_TRAFFIC; i++) {
        assert_ok(&o[i]);
        assert_int_equal(o[i].r.attempts, 2);
    }
    assert_int_equal(api_stats(c).tokens, 2);
    assert_int_equal(counter(&pf, "tokens_issued") - tokens0, 1);
    assert_int_equal(counter(&pf, errcode_path) - bad0, MID_TRAFFIC);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 2 * MID_TRAFFIC);
}

/* The token really expires on the platform (its clock moves past expires_in) while the
 * client still believes in it: 42001 for every call in flight, one refresh. */
static void test_token_expired_mid_traffic(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    warm_up(&c);
    long long tokens0 = counter(&pf, "tokens_issued");
    clock_advance(&pf, 7200 + 1);
    expect_one_refresh(&c, "errcodes.42001", tokens0);
    client_free(&c);
}

/* Someone else fetched a token (the platform's "not latest"): once the 5-minute overlap is
 * over, the client's token gets 40001; one refresh, every call succeeds. */
static void test_token_superseded_mid_traffic(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    warm_up(&c);
    char url[512];
    snprintf(url, sizeof url,
             "%s/cgi-bin/token?grant_type=client_credential&appid=" APPID "&secret=" SECRET,
             pf.base);
    struct ctl_result r;
    ctl(url, NULL, &r);
    assert_non_null(strstr(r.body, "\"access_token\""));
    long long tokens0 = counter(&pf, "tokens_issued");
    clock_advance(&pf, 301);
    expect_one_refresh(&c, "errcodes.40001", tokens0);
    client_free(&c);
}

/* Each token errcode, injected once into one call: one refresh, then success. */
static void test_token_errcodes_refresh_once(void **state)
{
    (void)state;
    static const struct {
        const char *fault;
        const char *errcode;
    } kinds[] = {{"token_expired", "errcodes.42001"},
                 {"invalid_token", "errcodes.40001"},
                 {"bad_token", "errcodes.40014"}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        static struct client c;
        client_default(&c, &pf);
        warm_up(&c);
        long long tokens0 = counter(&pf, "tokens_issued");
        long long bad0 = counter(&pf, kinds[i].errcode);
        fault_on(&pf, kinds[i].fault, 1, "custom_send");
        struct outcome o;
        send_text(&c, FOLLOWER, &o);
        run_until_done(&c, &o, 1);
        assert_ok(&o);
        assert_int_equal(o.r.attempts, 2);
        assert_int_equal(api_stats(&c).tokens, 2);
        assert_int_equal(counter(&pf, "tokens_issued") - tokens0, 1);
        assert_int_equal(counter(&pf, kinds[i].errcode) - bad0, 1);
        client_free(&c);
    }
}

/* 40001 again right after the refresh: the credentials are wrong, not the token. One
 * refresh, then permanent. */
static void test_second_40001_is_permanent(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    warm_up(&c);
    long long tokens0 = counter(&pf, "tokens_issued");
    long long custom0 = counter(&pf, "calls.custom_send");
    fault_on(&pf, "invalid_token", 2, "custom_send");
    struct outcome o;
    send_text(&c, FOLLOWER, &o);
    run_until_done(&c, &o, 1);
    assert_failed(&o, WX_WECHAT_API_PERMANENT, 40001, 2);
    assert_false(o.r.outcome_unknown);
    assert_int_equal(api_stats(&c).tokens, 2);
    assert_int_equal(counter(&pf, "tokens_issued") - tokens0, 1);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 2);
    client_free(&c);
}

/* A token whose expires_in is short is refreshed at half life, before it expires, with no
 * call ever seeing it expire. */
static void test_token_refreshed_before_expiry(void **state)
{
    (void)state;
    long long tokens0 = counter(&short_pf, "tokens_issued");
    static struct client c;
    client_default(&c, &short_pf);
    int64_t t0 = now_ms();
    warm_up(&c);
    while (api_stats(&c).tokens < 2 && now_ms() - t0 < WAIT_MS)
        run_for(&c, 20);
    int64_t refreshed = now_ms() - t0;
    assert_int_equal(api_stats(&c).tokens, 2);
    /* Not before half its life (2 s), and before it expires (4 s). */
    assert_true(refreshed >= SHORT_TTL_S * 1000 / 2 - 100);
    assert_true(refreshed < SHORT_TTL_S * 1000);
    struct outcome o;
    send_text(&c, FOLLOWER, &o);
    run_until_done(&c, &o, 1);
    assert_ok(&o);
    assert_int_equal(o.r.attempts, 1);
    assert_int_equal(counter(&short_pf, "tokens_issued") - tokens0, 2);
    assert_int_equal(counter(&short_pf, "errcodes.42001"), 0);
    assert_int_equal(counter(&short_pf, "errcodes.40001"), 0);
    client_free(&c);
}

/* ======================================================================================
 * Retryable and permanent errors
 * ====================================================================================== */

/* -1 (system busy) twice, then HTTP 500 once: retried after a back-off, then success. */
static void test_busy_and_http500_retried(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    warm_up(&c);
    long long custom0 = counter(&pf, "calls.custom_send");
    fault_on(&pf, "busy", 2, "custom_send");
    struct outcome o;
    send_text(&c, FOLLOWER, &o);
    run_until_done(&c, &o, 1);
    assert_ok(&o);
    assert_int_equal(o.r.attempts, 3);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 3);
    fault_on(&pf, "http500", 1, "custom_send");
    send_text(&c, FOLLOWER, &o);
    run_until_done(&c, &o, 1);
    assert_ok(&o);
    assert_int_equal(o.r.attempts, 2);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 5);
    assert_int_equal(api_stats(&c).retries, 3);
    assert_int_equal(api_stats(&c).tokens, 1);
    client_free(&c);
}

/* 45009: retried, but only after the longer quota back-off (at least half of 2 s with the
 * jitter); with one attempt allowed it comes back retryable. */
static void test_quota_backoff(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    warm_up(&c);
    long long custom0 = counter(&pf, "calls.custom_send");
    fault_on(&pf, "quota", 1, "custom_send");
    struct outcome o;
    int64_t t0 = now_ms();
    send_text(&c, FOLLOWER, &o);
    run_until_done(&c, &o, 1);
    assert_ok(&o);
    assert_int_equal(o.r.attempts, 2);
    assert_true(o.at_ms - t0 >= 1000);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 2);
    client_free(&c);

    client_new(&c, pf.base, 5000, 1, 15000);
    warm_up(&c);
    custom0 = counter(&pf, "calls.custom_send");
    fault_on(&pf, "quota", 1, "custom_send");
    send_text(&c, FOLLOWER, &o);
    run_until_done(&c, &o, 1);
    assert_failed(&o, WX_WECHAT_API_RETRYABLE, 45009, 1);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 1);
    client_free(&c);
}

/* A template message that timed out is sent again: client_msg_id makes the platform send it
 * once. Without client_msg_id it is not retried, and the outcome is unknown. */
static void test_template_timeout_retried_with_client_msg_id(void **state)
{
    (void)state;
    static struct client c;
    client_new(&c, pf.base, 2000, 4, 15000);
    warm_up(&c);
    long long template0 = counter(&pf, "calls.template_send");
    fault_on(&pf, "timeout", 1, "template_send");
    struct outcome o;
    send_template(&c, FOLLOWER, "tx-000001", &o);
    run_until_done(&c, &o, 1);
    assert_ok(&o);
    assert_int_equal(o.r.attempts, 2);
    assert_true(o.r.msgid != 0);
    assert_int_equal(counter(&pf, "calls.template_send") - template0, 2);

    fault_on(&pf, "timeout", 1, "template_send");
    send_template(&c, FOLLOWER, NULL, &o);
    run_until_done(&c, &o, 1);
    assert_failed(&o, WX_WECHAT_API_RETRYABLE, 0, 1);
    assert_true(o.r.outcome_unknown);
    assert_int_equal(counter(&pf, "calls.template_send") - template0, 3);
    client_free(&c);
}

/* A customer-service message that timed out may have reached the follower: it is handed back
 * retryable with outcome_unknown, and not sent again (the platform saw it once). */
static void test_custom_timeout_not_retried(void **state)
{
    (void)state;
    static struct client c;
    client_new(&c, pf.base, 2000, 4, 15000);
    warm_up(&c);
    long long custom0 = counter(&pf, "calls.custom_send");
    fault_on(&pf, "timeout", 1, "custom_send");
    struct outcome o;
    send_text(&c, FOLLOWER, &o);
    run_until_done(&c, &o, 1);
    assert_failed(&o, WX_WECHAT_API_RETRYABLE, 0, 1);
    assert_true(o.r.outcome_unknown);
    run_for(&c, 600); /* longer than any back-off: nothing more goes out */
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 1);
    assert_int_equal(api_stats(&c).calls, 2); /* warm-up and this one */
    client_free(&c);
}

/* 43004 not a follower, 43101 refuses messages, 40003 unknown OpenID: permanent, sent once. */
static void test_permanent_errors_not_retried(void **state)
{
    (void)state;
    static const struct {
        const char *openid;
        long errcode;
    } cases[] = {{STRANGER, 43004}, {REFUSER, 43101}, {UNKNOWN, 40003}};
    static struct client c;
    client_default(&c, &pf);
    warm_up(&c);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long long custom0 = counter(&pf, "calls.custom_send");
        long long template0 = counter(&pf, "calls.template_send");
        struct outcome o[2];
        send_text(&c, cases[i].openid, &o[0]);
        send_template(&c, cases[i].openid, "tx-permanent", &o[1]);
        run_until_done(&c, o, 2);
        for (int k = 0; k < 2; k++) {
            assert_failed(&o[k], WX_WECHAT_API_PERMANENT, cases[i].errcode, 1);
            assert_false(o[k].r.outcome_unknown);
        }
        run_for(&c, 300);
        assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 1);
        assert_int_equal(counter(&pf, "calls.template_send") - template0, 1);
    }
    struct wx_wechat_api_stats s = api_stats(&c);
    assert_int_equal(s.retries, 0);
    assert_int_equal(s.permanent, 6);
    client_free(&c);
}

/* max_attempts ends a retry loop; so does max_time_ms, before the attempts run out. */
static void test_retry_limits(void **state)
{
    (void)state;
    static struct client c;
    client_new(&c, pf.base, 5000, 3, 15000);
    warm_up(&c);
    long long custom0 = counter(&pf, "calls.custom_send");
    fault_on(&pf, "busy", 100, "custom_send");
    struct outcome o;
    send_text(&c, FOLLOWER, &o);
    run_until_done(&c, &o, 1);
    assert_failed(&o, WX_WECHAT_API_RETRYABLE, -1, 3);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 3);
    client_free(&c);

    fault_on(&pf, "none", 0, NULL);
    client_new(&c, pf.base, 5000, 50, 1000);
    warm_up(&c);
    custom0 = counter(&pf, "calls.custom_send");
    fault_on(&pf, "busy", 100, "custom_send");
    send_text(&c, FOLLOWER, &o);
    int64_t took = run_until_done(&c, &o, 1);
    assert_int_equal(o.r.cls, WX_WECHAT_API_RETRYABLE);
    assert_int_equal(o.r.errcode, -1);
    assert_true(o.r.attempts >= 2 && o.r.attempts < 50);
    assert_true(took < 1000 + 1500); /* the budget, plus one answer's time */
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, o.r.attempts);
    client_free(&c);
}

/* The platform cannot be reached at all (connection refused, so no token can be fetched):
 * calls come back retryable within max_time_ms, and the token fetches they wait on are
 * bounded by max_attempts too (one fetch at a time, shared by the waiting calls, with a
 * growing back-off), not one fetch per waiting call every couple of hundred milliseconds. */
static void test_unreachable_platform_bounded(void **state)
{
    (void)state;
    enum { WAITING = 5, MAX_ATTEMPTS = 3, MAX_TIME_MS = 3000 };
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/sandbox", closed_port());
    static struct client c;
    client_new(&c, base, 1000, MAX_ATTEMPTS, MAX_TIME_MS);
    struct outcome o[WAITING];
    for (int i = 0; i < WAITING; i++)
        send_text(&c, FOLLOWER, &o[i]);
    int64_t took = run_until_done(&c, o, WAITING);
    for (int i = 0; i < WAITING; i++) {
        assert_int_equal(o[i].r.cls, WX_WECHAT_API_RETRYABLE);
        assert_false(o[i].r.outcome_unknown);
    }
    assert_true(took < MAX_TIME_MS + 1500);
    struct wx_fetch_stats fs;
    wx_fetch_stats(c.fetch, &fs);
    if (fs.started > MAX_ATTEMPTS) {
        fail_msg("max_attempts %d, but %llu token requests went out for %d waiting calls in "
                 "%lld ms",
                 MAX_ATTEMPTS, (unsigned long long)fs.started, WAITING, (long long)took);
    }
    client_free(&c);
}

/* ======================================================================================
 * The calls
 * ====================================================================================== */

/* A template message returns the platform's msgid; the same client_msg_id again is the same
 * message (the platform sends it once). */
static void test_template_send_msgid(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    struct outcome o[2];
    send_template(&c, FOLLOWER, "tx-msgid-1", &o[0]);
    run_until_done(&c, &o[0], 1);
    assert_ok(&o[0]);
    assert_true(o[0].r.msgid > (1ULL << 53)); /* a 64-bit id, not rounded through a double */
    send_template(&c, FOLLOWER, "tx-msgid-1", &o[1]);
    run_until_done(&c, &o[1], 1);
    assert_ok(&o[1]);
    assert_true(o[1].r.msgid == o[0].r.msgid);
    client_free(&c);
}

/* A PNG signature and a little more: the platform checks the magic bytes. */
static const uint8_t tiny_png[] = {0x89, 'P',  'N',  'G',  '\r', '\n', 0x1a, '\n',
                                   0x00, 0x00, 0x00, 0x0d, 'I',  'H',  'D',  'R'};

static void upload(struct client *c, const void *data, size_t len, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    assert_int_equal(
        wx_wechat_api_media_upload(c->api, "card.png", "image/png", data, len, on_result, o), 0);
    run_until_done(c, o, 1);
}

/* Media upload returns a media_id; what is not an image is refused (permanent); an empty or
 * oversized file is refused before anything is sent. */
static void test_media_upload(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    struct outcome o;
    upload(&c, tiny_png, sizeof tiny_png, &o);
    assert_ok(&o);
    assert_true(strlen(o.r.media_id) > 0);
    upload(&c, "GIF? no: plain text", 19, &o);
    assert_failed(&o, WX_WECHAT_API_PERMANENT, 40005, 1);
    assert_int_equal(
        wx_wechat_api_media_upload(c.api, "x.png", "image/png", tiny_png, 0, on_result, &o), -1);
    assert_int_equal(wx_wechat_api_media_upload(c.api, "x.png", "image/png", tiny_png,
                                                WX_WECHAT_MEDIA_MAX + 1, on_result, &o),
                     -1);
    client_free(&c);
}

/* Customer-service text, news and image (an uploaded image); an image nobody uploaded is
 * refused (40007, permanent). */
static void test_custom_text_news_image(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    struct outcome o[4];
    upload(&c, tiny_png, sizeof tiny_png, &o[0]);
    assert_ok(&o[0]);
    char media_id[WX_WECHAT_MEDIA_ID_MAX + 1];
    snprintf(media_id, sizeof media_id, "%s", o[0].r.media_id);
    long long custom0 = counter(&pf, "calls.custom_send");

    send_text(&c, FOLLOWER, &o[0]);
    struct wx_wechat_article a = {.title = "本期账单",
                                  .description = "应还 ¥1,234.56，到期日 5 月 20 日",
                                  .pic_url = "https://bank.example/bill.png",
                                  .url = "https://bank.example/bill"};
    memset(&o[1], 0, sizeof o[1]);
    assert_int_equal(wx_wechat_api_custom_news(c.api, FOLLOWER, &a, on_result, &o[1]), 0);
    memset(&o[2], 0, sizeof o[2]);
    assert_int_equal(wx_wechat_api_custom_image(c.api, FOLLOWER, media_id, on_result, &o[2]), 0);
    memset(&o[3], 0, sizeof o[3]);
    assert_int_equal(wx_wechat_api_custom_image(c.api, FOLLOWER, "NoSuchMediaId0000000000000000",
                                                on_result, &o[3]),
                     0);
    run_until_done(&c, o, 4);
    assert_ok(&o[0]);
    assert_ok(&o[1]);
    assert_ok(&o[2]);
    assert_failed(&o[3], WX_WECHAT_API_PERMANENT, 40007, 1);
    assert_int_equal(counter(&pf, "calls.custom_send") - custom0, 4);
    client_free(&c);
}

/* data/menu.json, found from this file's path (the test runs in the build directory). */
static char *read_menu_file(void)
{
    char path[PATH_MAX];
    const char *src = getenv("WX_SOURCE_DIR");
    if (src != NULL) {
        snprintf(path, sizeof path, "%s/data/menu.json", src);
    } else {
        const char *file = __FILE__;
        const char *cut = strstr(file, "tests/unit/");
        assert_non_null(cut);
        snprintf(path, sizeof path, "%.*sdata/menu.json", (int)(cut - file), file);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) fail_msg("cannot open %s (set WX_SOURCE_DIR)", path);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The bank's menu is created; a menu over the platform's limits is refused (permanent,
 * sent once); what is not a menu is refused before anything is sent. */
static void test_menu_create(void **state)
{
    (void)state;
    static struct client c;
    client_default(&c, &pf);
    long long menu0 = counter(&pf, "calls.menu_create");
    struct outcome o;
    memset(&o, 0, sizeof o);
    assert_int_equal(wx_wechat_api_menu_create(c.api, read_menu_file(), on_result, &o), 0);
    run_until_done(&c, &o, 1);
    assert_ok(&o);

    static const char four_buttons[] =
        "{\"button\":[{\"type\":\"click\",\"name\":\"a\",\"key\":\"A\"},"
        "{\"type\":\"click\",\"name\":\"b\",\"key\":\"B\"},"
        "{\"type\":\"click\",\"name\":\"c\",\"key\":\"C\"},"
        "{\"type\":\"click\",\"name\":\"d\",\"key\":\"D\"}]}";
    memset(&o, 0, sizeof o);
    assert_int_equal(wx_wechat_api_menu_create(c.api, four_buttons, on_result, &o), 0);
    run_until_done(&c, &o, 1);
    assert_failed(&o, WX_WECHAT_API_PERMANENT, 40016, 1);
    assert_int_equal(counter(&pf, "calls.menu_create") - menu0, 2);

    memset(&o, 0, sizeof o);
    assert_int_equal(wx_wechat_api_menu_create(c.api, "{\"button\": [", on_result, &o), -1);
    assert_int_equal(wx_wechat_api_menu_create(c.api, "{\"menu\": []}", on_result, &o), -1);
    run_for(&c, 50);
    assert_int_equal(o.calls, 0);
    assert_int_equal(counter(&pf, "calls.menu_create") - menu0, 2);
    client_free(&c);
}

/* Authorizes as the follower (the platform redirects with a code) and returns the code. */
static void oauth_code(char *code, size_t cap)
{
    char url[512];
    snprintf(url, sizeof url,
             "%s/connect/oauth2/authorize?appid=" APPID
             "&redirect_uri=https%%3A%%2F%%2Fbank.example%%2Fbind&response_type=code"
             "&scope=snsapi_base&state=s1&openid=" FOLLOWER,
             pf.base);
    struct ctl_result r;
    ctl(url, NULL, &r);
    assert_int_equal(r.status, 302);
    const char *p = strstr(r.location, "code=");
    assert_non_null(p);
    p += 5;
    size_t n = strcspn(p, "&#");
    assert_true(n > 0 && n < cap);
    memcpy(code, p, n);
    code[n] = '\0';
}

/* OAuth2 web authorization: the code gives the follower's OpenID, with no access token
 * involved; the same code again is 40163 (permanent, sent once); a code that is not one is
 * refused before anything is sent. */
static void test_oauth_code_to_openid(void **state)
{
    (void)state;
    char code[64];
    oauth_code(code, sizeof code);
    static struct client c;
    client_default(&c, &pf);
    long long oauth0 = counter(&pf, "calls.oauth_access_token");
    struct outcome o;
    memset(&o, 0, sizeof o);
    assert_int_equal(wx_wechat_api_oauth_openid(c.api, code, on_result, &o), 0);
    run_until_done(&c, &o, 1);
    assert_ok(&o);
    assert_string_equal(o.r.openid, FOLLOWER);
    assert_int_equal(api_stats(&c).tokens, 0);

    memset(&o, 0, sizeof o);
    assert_int_equal(wx_wechat_api_oauth_openid(c.api, code, on_result, &o), 0);
    run_until_done(&c, &o, 1);
    assert_failed(&o, WX_WECHAT_API_PERMANENT, 40163, 1);
    assert_string_equal(o.r.openid, "");
    assert_int_equal(counter(&pf, "calls.oauth_access_token") - oauth0, 2);

    assert_int_equal(wx_wechat_api_oauth_openid(c.api, "", on_result, &o), -1);
    assert_int_equal(wx_wechat_api_oauth_openid(c.api, "abc&appid=x", on_result, &o), -1);
    client_free(&c);
}

/* ======================================================================================
 * Bodies and answers, byte for byte, against a recorder on the client's own loop
 * ====================================================================================== */

static void rec_serve(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *out = evbuffer_new();
    if (path != NULL && strcmp(path, "/cgi-bin/token") == 0) {
        evbuffer_add_printf(out, "{\"access_token\":\"rectoken\",\"expires_in\":7200}");
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        assert_true(len < sizeof rec.body);
        evbuffer_remove(in, rec.body, len);
        rec.body[len] = '\0';
        rec.body_len = len;
        rec.calls++;
        evbuffer_add(out, rec.answer, strlen(rec.answer));
    }
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* A client (one attempt per call) of a recorder listening on its loop. */
static void rec_client_new(struct client *c)
{
    struct event_base *base = event_base_new();
    assert_non_null(base);
    memset(&rec, 0, sizeof rec);
    snprintf(rec.answer, sizeof rec.answer, "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":1}");
    rec.http = evhttp_new(base);
    evhttp_set_gencb(rec.http, rec_serve, NULL);
    struct evhttp_bound_socket *h = evhttp_bind_socket_with_handle(rec.http, "127.0.0.1", 0);
    assert_non_null(h);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&sin, &len), 0);
    snprintf(rec.base, sizeof rec.base, "http://127.0.0.1:%d", ntohs(sin.sin_port));
    client_on(c, base, rec.base, 5000, 1, 15000);
}

/* The recorder goes first: it lives on the client's loop. */
static void rec_client_free(struct client *c)
{
    evhttp_free(rec.http);
    rec.http = NULL;
    client_free(c);
}

/* The body the client once built with jansson for t; NULL where that refused t. */
static char *jansson_template(const struct wx_wechat_template *t)
{
    json_t *data = json_object();
    for (size_t i = 0; i < t->nfields; i++) {
        json_object_set_new(data, t->fields[i].name,
                            json_pack("{s:s}", "value", t->fields[i].value));
    }
    json_t *doc = json_pack("{s:s, s:s, s:o}", "touser", t->openid, "template_id", t->template_id,
                            "data", data);
    if (doc == NULL) return NULL;
    if (t->url != NULL && t->url[0] != '\0') json_object_set_new(doc, "url", json_string(t->url));
    if (t->client_msg_id != NULL && t->client_msg_id[0] != '\0') {
        json_object_set_new(doc, "client_msg_id", json_string(t->client_msg_id));
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    return text;
}

/* Runs one call that started with rc 0 to its end; fails when rc is not 0. */
static void rec_wait(struct client *c, int rc, struct outcome *o)
{
    assert_int_equal(rc, 0);
    run_until_done(c, o, 1);
}

/* Sends t and checks that the platform got jansson's body, or that both refused t. */
static void expect_template(struct client *c, const struct wx_wechat_template *t)
{
    char *want = jansson_template(t);
    unsigned calls = rec.calls;
    struct outcome o = {0};
    int rc = wx_wechat_api_template_send(c->api, t, on_result, &o);
    if (want == NULL) {
        assert_int_equal(rc, -1);
        run_for(c, 5);
        assert_int_equal(o.calls, 0);
        assert_int_equal(rec.calls, calls);
        return;
    }
    rec_wait(c, rc, &o);
    assert_ok(&o);
    assert_int_equal(rec.calls, calls + 1);
    assert_string_equal(rec.body, want);
    free(want);
}

/* Every control character, quote, backslash, slash, and text past ASCII up to U+10FFFF, in
 * names, values, the url and client_msg_id: the same bytes as jansson's, and read back the
 * same strings. */
static void test_template_json_escaping(void **state)
{
    (void)state;
    static struct client c;
    rec_client_new(&c);
    char ctl[40];
    for (int i = 1; i < 0x20; i++)
        ctl[i - 1] = (char)i;
    ctl[31] = 0x7f;
    ctl[32] = '\0';
    const struct wx_wechat_template_field fields[] = {
        {"ctl", ctl},
        {"quote", "say \"hi\" \\ back\\slash / slash \\u0041"},
        {"cjk", "尾号1234 消费 ¥39.80（上海）"},
        {"astral", "😀 𝄞 \xf4\x8f\xbf\xbf"},
        {"edges",
         "\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbd \xef\xbf\xbf \xe2\x80\xa8\xe2\x80\xa9"},
        {"名字\t\"k\"", "non-ASCII and escapes in a name"},
        {"", "an empty name"},
        {"empty", ""},
    };
    struct wx_wechat_template t = {.openid = "o\"pen\\id\n",
                                   .template_id = TEMPLATE_ID,
                                   .url = "https://bank.example/tx?id=1&q=\"x\"#\x01",
                                   .client_msg_id = "tx-\\1\x1f",
                                   .fields = fields,
                                   .nfields = sizeof fields / sizeof fields[0]};
    expect_template(&c, &t);
    json_error_t je;
    json_t *j = json_loadb(rec.body, rec.body_len, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "touser")), t.openid);
    assert_string_equal(json_string_value(json_object_get(j, "url")), t.url);
    assert_string_equal(json_string_value(json_object_get(j, "client_msg_id")), t.client_msg_id);
    json_t *data = json_object_get(j, "data");
    for (size_t i = 0; i < t.nfields; i++) {
        json_t *v = json_object_get(json_object_get(data, fields[i].name), "value");
        assert_string_equal(json_string_value(v), fields[i].value);
    }
    json_decref(j);
    for (const char *p = rec.body; *p != '\0'; p++)
        assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p <= 0x7f);
    rec_client_free(&c);
}

/* What jansson refused: a field whose name or value is not UTF-8 (or NULL) is left out, as
 * are such a url and client_msg_id; such an OpenID or template fails the call. Repeated
 * names keep the first place and the last value jansson took. */
static void test_template_json_refusals(void **state)
{
    (void)state;
    static struct client c;
    rec_client_new(&c);
    static const char *const bad[] = {
        "\x80",
        "a\xbf",
        "\xc0\xaf",
        "\xc1\xbf",
        "\xe0\x80\xaf",
        "\xed\xa0\x80",
        "\xed\xbf\xbf",
        "\xf0\x8f\xbf\xbf",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xff",
        "\xe4\xb8",
        "\xc3"
        "A",
        "\xf0\x9f\x98",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const struct wx_wechat_template_field fields[] = {
            {"keyword1", "first"}, {bad[i], "bad name"}, {"keyword2", bad[i]},
            {NULL, "no name"},     {"keyword3", NULL},   {"keyword4", "last"}};
        struct wx_wechat_template t = {.openid = FOLLOWER,
                                       .template_id = TEMPLATE_ID,
                                       .url = bad[i],
                                       .client_msg_id = bad[i],
                                       .fields = fields,
                                       .nfields = sizeof fields / sizeof fields[0]};
        expect_template(&c, &t);
        t.openid = bad[i];
        expect_template(&c, &t);
        t.openid = FOLLOWER;
        t.template_id = bad[i];
        expect_template(&c, &t);
    }
    const struct wx_wechat_template_field dups[] = {
        {"a", "1"}, {"b", "2"},        {"a", "3"},  {"c", "\xff"}, {"c", "4"},
        {"d", "5"}, {"d", "\xc0\x80"}, {"a", "6"},  {"e", NULL},   {"e", "7"},
        {"f", "8"}, {"f", "9"},        {"b", "10"},
    };
    struct wx_wechat_template t = {.openid = FOLLOWER,
                                   .template_id = TEMPLATE_ID,
                                   .fields = dups,
                                   .nfields = sizeof dups / sizeof dups[0]};
    expect_template(&c, &t);
    t.nfields = 0;
    expect_template(&c, &t); /* "data":{} */
    t.openid = NULL;
    expect_template(&c, &t);
    t.openid = FOLLOWER;
    t.template_id = NULL;
    expect_template(&c, &t);
    rec_client_free(&c);
}

/* A byte generator for random text: mostly ASCII, with control characters, quotes and
 * backslashes, sequences of every length, and now and then one that is not UTF-8. */
static uint32_t rnd_state = 20261127;
static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

static void random_text(char *out, size_t cap)
{
    static const char *const pieces[] = {
        "a",
        "Z",
        "9",
        " ",
        "\"",
        "\\",
        "/",
        "\x01",
        "\n",
        "\x1f",
        "\x7f",
        "\xc3\xa9",
        "\xe4\xb8\xad",
        "\xf0\x9f\x98\x80",
        "{}",
        "\xef\xbb\xbf",
        "\xe2\x80\xa8",
        "\x80",
        "\xc0\x80",
        "\xed\xa0\x80",
        "\xe4\xb8",
    };
    size_t n = 0, len = rnd(12);
    for (size_t i = 0; i < len; i++) {
        size_t which = rnd(100) < 97 ? rnd(17) : 17 + rnd(4); /* 3 % of pieces are bad */
        const char *p = pieces[which];
        size_t plen = strlen(p);
        if (n + plen + 1 > cap) break;
        memcpy(out + n, p, plen);
        n += plen;
    }
    out[n] = '\0';
}

/* Random templates and customer-service texts: the same bytes as jansson's every time. */
static void test_json_random(void **state)
{
    (void)state;
    static struct client c;
    rec_client_new(&c);
    static const char *const names[] = {"first", "keyword1", "keyword2", "remark", "名"};
    for (int round = 0; round < 300; round++) {
        char text[8][64];
        struct wx_wechat_template_field fields[6];
        size_t n = rnd(7);
        for (size_t i = 0; i < n; i++) {
            random_text(text[i], sizeof text[i]);
            fields[i].name = rnd(4) == 0 ? text[i] : names[rnd(5)];
            fields[i].value = text[i];
        }
        random_text(text[6], sizeof text[6]);
        random_text(text[7], sizeof text[7]);
        struct wx_wechat_template t = {.openid = rnd(8) == 0 ? text[6] : FOLLOWER,
                                       .template_id = TEMPLATE_ID,
                                       .url = text[7],
                                       .client_msg_id = rnd(2) ? "tx-1" : NULL,
                                       .fields = fields,
                                       .nfields = n};
        expect_template(&c, &t);
    }
    rec_client_free(&c);
}

/* The customer-service bodies jansson made; NULL where it refused. */
static char *jansson_custom(int kind, const char *openid, const char *value,
                            const struct wx_wechat_article *a)
{
    json_t *doc;
    if (kind == 0) {
        doc = json_pack("{s:s, s:s, s:{s:s}}", "touser", openid, "msgtype", "text", "text",
                        "content", value);
    } else if (kind == 1) {
        doc = json_pack("{s:s, s:s, s:{s:s}}", "touser", openid, "msgtype", "image", "image",
                        "media_id", value);
    } else {
        doc = json_pack("{s:s, s:s, s:{s:[{s:s, s:s, s:s, s:s}]}}", "touser", openid, "msgtype",
                        "news", "news", "articles", "title", a->title ? a->title : "",
                        "description", a->description ? a->description : "", "url",
                        a->url ? a->url : "", "picurl", a->pic_url ? a->pic_url : "");
    }
    if (doc == NULL) return NULL;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    return text;
}

static void expect_custom(struct client *c, int kind, const char *openid, const char *value,
                          const struct wx_wechat_article *a)
{
    char *want = jansson_custom(kind, openid, value, a);
    unsigned calls = rec.calls;
    struct outcome o = {0};
    int rc = kind == 0   ? wx_wechat_api_custom_text(c->api, openid, value, on_result, &o)
             : kind == 1 ? wx_wechat_api_custom_image(c->api, openid, value, on_result, &o)
                         : wx_wechat_api_custom_news(c->api, openid, a, on_result, &o);
    if (want == NULL) {
        assert_int_equal(rc, -1);
        assert_int_equal(rec.calls, calls);
        return;
    }
    rec_wait(c, rc, &o);
    assert_ok(&o);
    assert_string_equal(rec.body, want);
    free(want);
}

/* Customer-service text, image and news: jansson's bytes, and its refusals. */
static void test_custom_json(void **state)
{
    (void)state;
    static struct client c;
    rec_client_new(&c);
    static const char *const values[] = {
        "您的卡片已激活", "line\nbreak\t\"q\" \\ \x01\x7f 😀", "", "\xff", "\xed\xa0\x80", NULL,
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        expect_custom(&c, 0, FOLLOWER, values[i], NULL);
        expect_custom(&c, 1, FOLLOWER, values[i], NULL);
        expect_custom(&c, 0, values[i], "text", NULL);
        struct wx_wechat_article a = {.title = values[i], .url = "https://bank.example/\"b\""};
        expect_custom(&c, 2, FOLLOWER, NULL, &a);
        a = (struct wx_wechat_article){.description = values[i], .pic_url = values[i]};
        expect_custom(&c, 2, FOLLOWER, NULL, &a);
    }
    struct wx_wechat_article none = {0};
    expect_custom(&c, 2, FOLLOWER, NULL, &none);
    expect_custom(&c, 2, NULL, NULL, &none);
    rec_client_free(&c);
}

/* What a call's result is for an answer, as jansson reads it (max_attempts 1; no token
 * errcodes among the answers). */
static void jansson_result(const char *body, struct wx_wechat_api_result *want)
{
    memset(want, 0, sizeof *want);
    json_error_t je;
    json_t *j = json_loadb(body, strlen(body), 0, &je);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        want->cls = WX_WECHAT_API_PERMANENT;
        want->errcode = 47001;
        snprintf(want->errmsg, sizeof want->errmsg, "answer is not a JSON object");
        return;
    }
    want->errcode = (long)json_integer_value(json_object_get(j, "errcode"));
    const char *em = json_string_value(json_object_get(j, "errmsg"));
    snprintf(want->errmsg, sizeof want->errmsg, "%ld %s", want->errcode, em != NULL ? em : "");
    if (want->errcode == -1 || want->errcode == 45009) {
        want->cls = WX_WECHAT_API_RETRYABLE;
    } else if (want->errcode != 0) {
        want->cls = WX_WECHAT_API_PERMANENT;
    } else {
        want->cls = WX_WECHAT_API_OK;
        snprintf(want->errmsg, sizeof want->errmsg, "ok");
        json_t *v = json_object_get(j, "msgid");
        if (json_is_integer(v)) want->msgid = (uint64_t)json_integer_value(v);
    }
    json_decref(j);
}

/* Answers in the platform's usual shape and in every other: each call ends as it would have
 * when jansson read every answer. */
static void test_answers_read_as_jansson(void **state)
{
    (void)state;
    static struct client c;
    rec_client_new(&c);
    char long_msg[400];
    snprintf(long_msg, sizeof long_msg, "{\"errcode\":43101,\"errmsg\":\"%0300d\"}", 7);
    const char *answers[] = {
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":1}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":2000000000000000123}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":9223372036854775807}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":9223372036854775808}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":-9223372036854775808}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":-5}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":01}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":1.5}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":1e3}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":\"7\"}",
        "{\"msgid\":8,\"errcode\":0}",
        "{ \"errcode\" : 0 , \"msgid\" : 9 }",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":10}\n",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":11}x",
        "{\"errcode\":0,\"errcode\":43004}",
        "{\"errcode\":0,\"msgid\":3,\"msgid\":4}",
        "{\"errcode\":43004,\"errmsg\":\"require subscribe hint: [xyz]\"}",
        "{\"errcode\":40003,\"errmsg\":\"invalid openid \\u0041\\u00e9\"}",
        long_msg,
        "{\"errcode\":\"0\",\"msgid\":5}",
        "{\"errcode\":-0,\"msgid\":12}",
        "{\"errcode\":-1,\"errmsg\":\"system busy\"}",
        "{\"errcode\":45009,\"errmsg\":\"reach max api daily quota limit\"}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":13,\"extra\":{\"a\":[1,2]}}",
        "{\"errcode\":0}",
        "{}",
        "[]",
        "",
        "{\"errcode\":0,\"errmsg\":\"o\\\"k\",\"msgid\":14}",
        "{\"errcode\":0,\"errmsg\":\"\xc3\xa9\",\"msgid\":15}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":16,}",
        "{\"errcode\":99999999999999999999}",
        "{\"errcode\":1,\"errmsg\":\"x\"}",
        "{\"errcode\":1,\"errmsg\":\"\\u0000\"}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":-}",
        "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":17",
    };
    static const struct wx_wechat_template_field fields[] = {{"keyword1", "x"}};
    struct wx_wechat_template t = {
        .openid = FOLLOWER, .template_id = TEMPLATE_ID, .fields = fields, .nfields = 1};
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        snprintf(rec.answer, sizeof rec.answer, "%s", answers[i]);
        struct wx_wechat_api_result want;
        jansson_result(answers[i], &want);
        struct outcome o = {0};
        rec_wait(&c, wx_wechat_api_template_send(c.api, &t, on_result, &o), &o);
        if (o.r.cls != want.cls || o.r.errcode != want.errcode || o.r.msgid != want.msgid ||
            strcmp(o.r.errmsg, want.errmsg) != 0) {
            fail_msg("answer %s: got %s %ld \"%s\" %llu, want %s %ld \"%s\" %llu", answers[i],
                     wx_wechat_api_class_name(o.r.cls), o.r.errcode, o.r.errmsg,
                     (unsigned long long)o.r.msgid, wx_wechat_api_class_name(want.cls),
                     want.errcode, want.errmsg, (unsigned long long)want.msgid);
        }
    }
    rec_client_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_token_fetched_once_and_reused, teardown),
        cmocka_unit_test_teardown(test_single_flight_token, teardown),
        cmocka_unit_test_teardown(test_token_expired_mid_traffic, teardown),
        cmocka_unit_test_teardown(test_token_superseded_mid_traffic, teardown),
        cmocka_unit_test_teardown(test_token_errcodes_refresh_once, teardown),
        cmocka_unit_test_teardown(test_second_40001_is_permanent, teardown),
        cmocka_unit_test_teardown(test_token_refreshed_before_expiry, teardown),
        cmocka_unit_test_teardown(test_busy_and_http500_retried, teardown),
        cmocka_unit_test_teardown(test_quota_backoff, teardown),
        cmocka_unit_test_teardown(test_template_timeout_retried_with_client_msg_id, teardown),
        cmocka_unit_test_teardown(test_custom_timeout_not_retried, teardown),
        cmocka_unit_test_teardown(test_permanent_errors_not_retried, teardown),
        cmocka_unit_test_teardown(test_retry_limits, teardown),
        cmocka_unit_test_teardown(test_unreachable_platform_bounded, teardown),
        cmocka_unit_test_teardown(test_template_send_msgid, teardown),
        cmocka_unit_test_teardown(test_media_upload, teardown),
        cmocka_unit_test_teardown(test_custom_text_news_image, teardown),
        cmocka_unit_test_teardown(test_menu_create, teardown),
        cmocka_unit_test_teardown(test_oauth_code_to_openid, teardown),
        cmocka_unit_test_teardown(test_template_json_escaping, teardown),
        cmocka_unit_test_teardown(test_template_json_refusals, teardown),
        cmocka_unit_test_teardown(test_json_random, teardown),
        cmocka_unit_test_teardown(test_custom_json, teardown),
        cmocka_unit_test_teardown(test_answers_read_as_jansson, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
