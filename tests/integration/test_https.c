/*
 * test_https.c - `wxbank serve`'s HTTPS listener from outside, as a browser and the openssl
 * command see it.
 *
 * The real binary in a fresh temporary directory: `wxbank init` (which makes the self-signed
 * pair bank.db.tls.crt and bank.db.tls.key beside the database), then `wxbank serve` with
 * http.listen, https.listen and iso8583.listen on port 0 (the bound addresses are read from
 * its "... listening on ADDR" lines), http.idle_seconds 2 (so that the limit on the
 * handshake's time is quick to see) and log level debug.
 *
 * Covered: the pair `wxbank init` made (the key file 0600, the certificate for CN=localhost,
 * DNS:localhost and IP:127.0.0.1 with an EC P-256 key for one year, and not made again by a
 * second init); `openssl s_client` (run with popen under `timeout`) fails to shake hands with
 * -tls1 and -tls1_1, at security level 0 so that the client offers them and the server's
 * protocol_version alert is what ends it, and succeeds with -tls1_2 and -tls1_3, verifying
 * the certificate for localhost; GET /healthz over HTTPS with libcurl trusting only the
 * generated certificate, by IP and by name, answers 200 with Strict-Transport-Security, and
 * over HTTP without it; plain HTTP sent to the HTTPS port gets no HTTP back and is closed,
 * with one debug line in the log; a client that connects and says nothing is closed once
 * the time for a request head is up; a missing or wrong certificate or key stops `wxbank
 * serve` at start with exit 2 and a message naming https.cert or https.key. Every server
 * must stop cleanly on SIGTERM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/serve_util.h"

#define WAIT_MS      15000 /* longest wait for the server to start, answer or stop */
#define IDLE_S       2     /* http.idle_seconds: also the time a handshake may take */
#define SWEEP_MS     500   /* the listener checks deadlines this often */
#define OPENSSL_WAIT 10    /* seconds an openssl s_client run may take */
#define OUT_MAX      16384 /* what is kept of a command's output */

static char workdir[PATH_MAX];
static pid_t server_pid = -1;
static char http_addr[64], https_addr[64];

/* ======================================================================================
 * The binary
 * ====================================================================================== */

/* Runs `ENV wxbank ARGS` in the work directory, output appended to cli.log; its exit code. */
static int wxbank_env(const char *env, const char *args)
{
    char cmd[PATH_MAX + 1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && WXBANK_DB_URL=sqlite:bank.db %s timeout %d '%s' %s >>cli.log 2>&1",
             workdir, env, WAIT_MS / 1000, getenv("WXBANK_BIN"), args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int wxbank(const char *args)
{
    return wxbank_env("", args);
}

/* The path of name in the work directory (in one of two buffers used in turn, so that a
 * call may take two). */
static const char *in_workdir(const char *name)
{
    static char path[2][PATH_MAX + 64];
    static unsigned turn;
    char *p = path[turn++ % 2];
    snprintf(p, sizeof path[0], "%s/%s", workdir, name);
    return p;
}

/* How many lines of file (in the work directory) contain what, and also and when it is
 * not NULL. */
static int count_lines_with(const char *file, const char *what, const char *and)
{
    char line[4096];
    FILE *f = fopen(in_workdir(file), "r");
    if (f == NULL) return 0;
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, what) != NULL && (and == NULL || strstr(line, and) != NULL);
    fclose(f);
    return n;
}

static int count_lines(const char *file, const char *what)
{
    return count_lines_with(file, what, NULL);
}

/* Copies what follows prefix in text up to the end of its line into out. */
static bool line_value(const char *text, const char *prefix, char *out, size_t cap)
{
    const char *p = strstr(text, prefix);
    if (p == NULL) return false;
    p += strlen(prefix);
    size_t n = strcspn(p, "\r\n");
    if (p[n] == '\0' || n == 0 || n >= cap) return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Starts `wxbank serve` with https.listen = https_listen and reads the addresses it bound
 * from its stdout (https_addr stays empty without an HTTPS listener). */
static void start_server_with(const char *https_listen)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    server_pid = fork();
    assert_true(server_pid >= 0);
    if (server_pid == 0) {
        close(out[0]);
        dup2(out[1], 1);
        if (chdir(workdir) != 0) _exit(127);
        int log = open("server.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log < 0) _exit(127);
        dup2(log, 2);
        char idle[16];
        snprintf(idle, sizeof idle, "%d", IDLE_S);
        setenv("WXBANK_DB_URL", "sqlite:bank.db", 1);
        setenv("WXBANK_HTTP_LISTEN", "127.0.0.1:0", 1);
        setenv("WXBANK_HTTPS_LISTEN", https_listen, 1);
        setenv("WXBANK_WEB_OAUTH", "false", 1); /* no WeChat here: the links alone */
        setenv("WXBANK_ISO8583_LISTEN", "127.0.0.1:0", 1);
        setenv("WXBANK_HTTP_IDLE_SECONDS", idle, 1);
        setenv("WXBANK_LOG_LEVEL", "debug", 1);
        execl(getenv("WXBANK_BIN"), "wxbank", "serve", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char text[1024] = "";
    size_t len = 0;
    bool tls = https_listen[0] != '\0';
    https_addr[0] = '\0';
    /* without HTTPS: until the output pauses, to see that no "https listening" follows */
    int wait_ms = WAIT_MS;
    while (!line_value(text, "http listening on ", http_addr, sizeof http_addr) ||
           (tls && !line_value(text, "https listening on ", https_addr, sizeof https_addr)) ||
           (!tls && wait_ms == WAIT_MS)) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, wait_ms) != 1) {
            if (!tls && wait_ms != WAIT_MS) break;
            fail_msg("wxbank serve printed no addresses: %s", text);
        }
        ssize_t n = read(out[0], text + len, sizeof text - 1 - len);
        if (n <= 0) fail_msg("wxbank serve ended before listening: %s", text);
        len += (size_t)n;
        text[len] = '\0';
        if (!tls && strstr(text, "http listening on ") != NULL) wait_ms = 300;
    }
    close(out[0]);
    if (!tls && strstr(text, "https listening") != NULL) fail_msg("HTTPS without https.listen");
}

static void start_server(void)
{
    start_server_with("127.0.0.1:0");
}

/* SIGTERM, then waits; the server must exit 0 within WAIT_MS. Returns 0 when it did. */
static int stop_server(void)
{
    return serve_stop(&server_pid, WAIT_MS);
}

/* A fresh directory with `wxbank init` done. */
static int setup_init(void **state)
{
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/wxbank-https-XXXXXX");
    if (mkdtemp(workdir) == NULL) return -1;
    return wxbank("init") == 0 ? 0 : -1;
}

/* And the server. */
static int setup(void **state)
{
    if (setup_init(state) != 0) return -1;
    start_server();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = stop_server();
    return serve_finish("test_https", workdir, rc != 0) != 0 ? -1 : rc;
}

static int group_setup(void **state)
{
    (void)state;
    if (getenv("WXBANK_BIN") == NULL) return -1;
    signal(SIGPIPE, SIG_IGN);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP connection to "127.0.0.1:PORT", with a receive timeout of WAIT_MS. */
static int connect_to(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    assert_non_null(colon);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10))};
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = WAIT_MS / 1000, .tv_usec = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Reads fd until the server ends the connection (a FIN or a reset) or WAIT_MS pass; what
 * came is in out (NUL-terminated). Returns the milliseconds it took, or -1 when it stayed
 * open. */
static int64_t read_to_end(int fd, char *out, size_t cap)
{
    int64_t t0 = now_ms();
    size_t len = 0;
    out[0] = '\0';
    for (;;) {
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n > 0 && len + (size_t)n < cap - 1) {
            len += (size_t)n;
            out[len] = '\0';
            continue;
        }
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return now_ms() - t0;
        if (n < 0 && errno == EINTR) continue;
        return -1; /* a timeout, or more than cap */
    }
}

/* ======================================================================================
 * Tests
 * ====================================================================================== */

/* The pair `wxbank init` made: the key for the owner alone, the certificate as asked. */
static void test_init_made_the_pair(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(in_workdir("bank.db.tls.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(in_workdir("bank.db.tls.crt"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(count_lines("cli.log", "tls cert  bank.db.tls.crt"), 1);

    FILE *f = fopen(in_workdir("bank.db.tls.crt"), "r");
    assert_non_null(f);
    X509 *crt = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(crt);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(crt), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "localhost");
    assert_int_equal(X509_check_host(crt, "localhost", 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL), 1);
    assert_int_equal(X509_check_ip_asc(crt, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_host(crt, "bank.example", 0, 0, NULL), 0);
    int days = 0, secs = 0;
    assert_int_equal(
        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(crt), X509_get0_notAfter(crt)), 1);
    assert_int_equal(days, 365);
    /* self-signed: its own issuer, and its signature verifies with its own key */
    EVP_PKEY *key = X509_get0_pubkey(crt);
    assert_non_null(key);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(crt), X509_get_subject_name(crt)), 0);
    assert_int_equal(X509_verify(crt, key), 1);
    assert_true(EVP_PKEY_is_a(key, "EC"));
    char group[32] = "";
    size_t glen = 0;
    assert_int_equal(EVP_PKEY_get_group_name(key, group, sizeof group, &glen), 1);
    assert_string_equal(group, "prime256v1");
    X509_free(crt);

    /* a second init leaves the pair alone */
    FILE *k = fopen(in_workdir("bank.db.tls.key"), "r");
    char before[512] = "", after[512] = "";
    assert_non_null(k);
    assert_true(fread(before, 1, sizeof before - 1, k) > 0);
    fclose(k);
    assert_int_equal(wxbank("init"), 0);
    k = fopen(in_workdir("bank.db.tls.key"), "r");
    assert_non_null(k);
    assert_true(fread(after, 1, sizeof after - 1, k) > 0);
    fclose(k);
    assert_string_equal(before, after);
    assert_int_equal(count_lines("cli.log", "tls cert  bank.db.tls.crt"), 1);
}

/* Runs `openssl s_client` against the HTTPS listener with options, stdin empty; its output
 * (both streams) into out; its exit status. */
static int s_client(const char *options, char *out, size_t cap)
{
    char cmd[PATH_MAX + 512];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && timeout %d openssl s_client -connect %s %s </dev/null 2>&1; "
             "echo \"exit=$?\"",
             workdir, OPENSSL_WAIT, https_addr, options);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    pclose(p);
    const char *e = strstr(out, "exit=");
    assert_non_null(e);
    return (int)strtol(e + 5, NULL, 10);
}

static void test_protocol_versions(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    /* The client at security level 0 offers TLS 1.0 and 1.1: the server refuses them. */
    static const char *const old[] = {"-tls1", "-tls1_1"};
    for (size_t i = 0; i < 2; i++) {
        char opt[128];
        snprintf(opt, sizeof opt, "%s -cipher DEFAULT@SECLEVEL=0", old[i]);
        int rc = s_client(opt, out, sizeof out);
        if (rc == 0 || rc == 124 || strstr(out, "alert protocol version") == NULL) {
            fail_msg("%s: exit %d, and no protocol_version alert from the server:\n%s", old[i], rc,
                     out);
        }
    }
    /* TLS 1.2 and 1.3 succeed, and the certificate verifies for localhost. */
    static const char *const ok[] = {"-tls1_2", "-tls1_3"};
    static const char *const want[] = {"New, TLSv1.2, Cipher is ECDHE-ECDSA-",
                                       "New, TLSv1.3, Cipher is TLS_"};
    for (size_t i = 0; i < 2; i++) {
        char opt[256];
        snprintf(opt, sizeof opt,
                 "%s -servername localhost -verify_hostname localhost "
                 "-CAfile bank.db.tls.crt -verify_return_error",
                 ok[i]);
        int rc = s_client(opt, out, sizeof out);
        if (rc != 0 || strstr(out, want[i]) == NULL ||
            strstr(out, "Verify return code: 0 (ok)") == NULL) {
            fail_msg("%s: exit %d, expected \"%s\" and a verified certificate:\n%s", ok[i], rc,
                     want[i], out);
        }
    }
    /* a CBC suite under TLS 1.2 is refused */
    int rc = s_client("-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA", out,
                      sizeof out);
    if (rc == 0 || strstr(out, "alert handshake failure") == NULL) {
        fail_msg("CBC suite: exit %d:\n%s", rc, out);
    }
}

struct resp {
    long status;
    size_t len;
    char body[4096];
    char hsts[128]; /* the Strict-Transport-Security header's value, or "" */
    int hsts_count;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    if (r->len + len >= sizeof r->body) return 0;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    static const char name[] = "strict-transport-security:";
    if (len > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0) {
        const char *v = p + sizeof name - 1;
        while (*v == ' ')
            v++;
        size_t vl = strcspn(v, "\r\n");
        snprintf(r->hsts, sizeof r->hsts, "%.*s", (int)vl, v);
        r->hsts_count++;
    }
    return len;
}

/* GET url with libcurl, trusting only the generated certificate; resolve: "HOST:PORT:IP"
 * or NULL. */
static void get(const char *url, const char *resolve, struct resp *r)
{
    memset(r, 0, sizeof *r);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    char ca[PATH_MAX + 64];
    snprintf(ca, sizeof ca, "%s", in_workdir("bank.db.tls.crt"));
    struct curl_slist *res = resolve != NULL ? curl_slist_append(NULL, resolve) : NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_RESOLVE, res);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) fail_msg("GET %s: %s (%s)", url, curl_easy_strerror(rc), errbuf);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(res);
}

static void test_healthz_over_https(void **state)
{
    (void)state;
    char url[128], resolve[128];
    static struct resp r;
    snprintf(url, sizeof url, "https://%s/healthz", https_addr);
    get(url, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    assert_int_equal(r.hsts_count, 1);
    assert_string_equal(r.hsts, "max-age=31536000");

    /* by name: the certificate's DNS:localhost */
    const char *port = strrchr(https_addr, ':') + 1;
    snprintf(url, sizeof url, "https://localhost:%s/healthz", port);
    snprintf(resolve, sizeof resolve, "localhost:%s:127.0.0.1", port);
    get(url, resolve, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.hsts, "max-age=31536000");

    /* the same route over HTTP, and no HSTS there */
    snprintf(url, sizeof url, "http://%s/healthz", http_addr);
    get(url, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    assert_int_equal(r.hsts_count, 0);
}

static void test_plain_http_to_https_port(void **state)
{
    (void)state;
    int before = count_lines("server.log", "TLS handshake failed");
    int fd = connect_to(https_addr);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    char got[4096];
    int64_t took = read_to_end(fd, got, sizeof got);
    close(fd);
    if (took < 0) fail_msg("the connection stayed open");
    if (took >= 1000) fail_msg("closed after %lld ms, not at once", (long long)took);
    if (strstr(got, "HTTP/") != NULL) fail_msg("an HTTP answer: %s", got);
    /* the server still serves, and logged the failure once, at debug level */
    static struct resp r;
    char url[128];
    snprintf(url, sizeof url, "https://%s/healthz", https_addr);
    get(url, NULL, &r);
    assert_int_equal(r.status, 200);
    int lines = count_lines("server.log", "TLS handshake failed") - before;
    int debug = count_lines_with("server.log", "TLS handshake failed: http request", " DEBUG ");
    if (lines != 1 || debug != 1) {
        fail_msg("%d lines about the failed handshake, %d of them at debug level; "
                 "expected 1 (see %s)",
                 lines, debug, in_workdir("server.log"));
    }
}

static void test_silent_client_closed(void **state)
{
    (void)state;
    int fd = connect_to(https_addr);
    char got[256];
    int64_t took = read_to_end(fd, got, sizeof got);
    close(fd);
    if (took < IDLE_S * 1000 - 100 || took > IDLE_S * 1000 + SWEEP_MS + 1000) {
        fail_msg("closed after %lld ms, expected about %d", (long long)took, IDLE_S * 1000);
    }
    assert_string_equal(got, "");
}

/* A missing or wrong file is a configuration error at start, naming its key. */
static void test_bad_files_exit_2(void **state)
{
    (void)state;
    const char *listen = "WXBANK_HTTP_LISTEN=127.0.0.1:0 WXBANK_ISO8583_LISTEN=127.0.0.1:0 "
                         "WXBANK_HTTPS_LISTEN=127.0.0.1:0 WXBANK_WEB_OAUTH=false";
    struct {
        const char *env, *key;
    } cases[] = {
        {"WXBANK_HTTPS_CERT=missing.crt", "https.cert = missing.crt: cannot read it"},
        {"WXBANK_HTTPS_CERT=bank.db.tls.key", "https.cert = bank.db.tls.key: not a PEM"},
        {"WXBANK_HTTPS_KEY=bank.db.key", "https.key = bank.db.key: not an unencrypted PEM"},
        {"WXBANK_HTTPS_KEY=bank.db.tls.crt", "https.key = bank.db.tls.crt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char env[512];
        snprintf(env, sizeof env, "%s %s", listen, cases[i].env);
        int rc = wxbank_env(env, "serve");
        if (rc != 2) fail_msg("%s: exit %d, expected 2", cases[i].env, rc);
        if (count_lines("cli.log", cases[i].key) != 1) {
            fail_msg("%s: no line with \"%s\" in cli.log", cases[i].env, cases[i].key);
        }
    }
    /* the default pair gone: the message says where it should be and who makes it */
    assert_int_equal(rename(in_workdir("bank.db.tls.crt"), in_workdir("moved.crt")), 0);
    assert_int_equal(wxbank_env(listen, "serve"), 2);
    assert_int_equal(count_lines("cli.log", "https.cert = bank.db.tls.crt: cannot read it: No "
                                            "such file or directory (`wxbank init` makes"),
                     1);
    assert_int_equal(rename(in_workdir("moved.crt"), in_workdir("bank.db.tls.crt")), 0);
    /* and https.listen empty: no HTTPS listener, and no files needed */
    assert_int_equal(rename(in_workdir("bank.db.tls.key"), in_workdir("moved.key")), 0);
    start_server_with("");
    assert_string_equal(https_addr, "");
    static struct resp r;
    char url[128];
    snprintf(url, sizeof url, "http://%s/healthz", http_addr);
    get(url, NULL, &r);
    assert_int_equal(r.status, 200);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_made_the_pair, setup_init, teardown),
        T(test_protocol_versions),
        T(test_healthz_over_https),
        T(test_plain_http_to_https_port),
        T(test_silent_client_closed),
        cmocka_unit_test_setup_teardown(test_bad_files_exit_2, setup_init, teardown),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
