/*
 * test_iso_server.c - `wxbank serve` as a card switch sees it: TCP, 2-byte length framing,
 * ascii87 messages built with our codec.
 *
 * One server runs for the whole group, on a free loopback port over a fresh database seeded
 * with 20 cardholders (`wxbank seed --pans` gives their card numbers). The tests speak to it
 * as the switch: network management, authorizations and their decline codes, repeats and
 * duplicates, financial messages, reversals (full, partial, unknown original then the late
 * original, repeated), balance inquiry, 50 pipelined requests, a client sending one byte at
 * a time, an oversized frame, a connection dropped mid-frame, a malformed message. At the
 * end the server must stop cleanly on SIGTERM (exit 0) and `wxbank verify` must pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/serve_util.h"
#include "iso8583/iso8583.h"

#define CARDS         20
#define IO_TIMEOUT    10000 /* ms for any one answer */
#define PIPELINED     50
#define ECHO_LEN_TEXT "55" /* bytes of an ascii87 0800 with fields 7, 11, 70 */

struct card {
    char pan[24];
    char expiry[5];
    long long limit;
};

static char workdir[PATH_MAX];
static struct card cards[CARDS];
static pid_t server_pid = -1;
static int port;
static unsigned next_stan = 1;

/* Runs `wxbank <args>` in the work directory, output to cli.log; returns its exit code. */
static int wxbank(const char *args)
{
    char cmd[PATH_MAX + 512];
    snprintf(cmd, sizeof cmd, "cd '%s' && WXBANK_DB_URL=sqlite:bank.db '%s' %s >>cli.log 2>&1",
             workdir, getenv("WXBANK_BIN"), args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts `wxbank serve` with extra NAME=VALUE settings (NULL-terminated) and waits for its
 * "listening" line. Its log goes to server.log in the work directory, kept for the scan. */
static void start_server(const char *const *extra_env)
{
    int out[2];
    char listen[64], line[256];
    port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    assert_int_equal(pipe(out), 0);
    server_pid = fork();
    assert_true(server_pid >= 0);
    if (server_pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        if (chdir(workdir) != 0) _exit(127);
        int log = open("server.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log < 0) _exit(127);
        dup2(log, 2);
        setenv("WXBANK_DB_URL", "sqlite:bank.db", 1);
        setenv("WXBANK_ISO8583_LISTEN", listen, 1);
        setenv("WXBANK_HTTP_LISTEN", "127.0.0.1:0", 1);
        setenv("WXBANK_LOG_LEVEL", "warn", 1);
        for (size_t i = 0; extra_env != NULL && extra_env[i] != NULL; i++) {
            putenv((char *)extra_env[i]);
        }
        execl(getenv("WXBANK_BIN"), "wxbank", "serve", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "iso8583 listening on"));
    assert_non_null(strstr(line, listen));
}

static void read_cards(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pans.txt", workdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    for (int i = 0; i < CARDS; i++) {
        char line[128];
        assert_non_null(fgets(line, sizeof line, f));
        char *tab1 = strchr(line, '\t');
        assert_non_null(tab1);
        *tab1 = '\0';
        assert_true(strlen(line) < sizeof cards[i].pan);
        memcpy(cards[i].pan, line, strlen(line) + 1);
        memcpy(cards[i].expiry, tab1 + 1, 4);
        cards[i].expiry[4] = '\0';
        cards[i].limit = strtoll(tab1 + 6, NULL, 10);
    }
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/wxbank-iso-XXXXXX");
    if (mkdtemp(workdir) == NULL) return -1;
    if (wxbank("init") != 0) return -1;
    if (wxbank("seed --cards 20 --pans pans.txt") != 0) return -1;
    read_cards();
    start_server(NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (server_pid > 0) {
        int st;
        kill(server_pid, SIGTERM);
        waitpid(server_pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "wxbank serve did not stop cleanly (status %d)\n", st);
            rc = -1;
        }
    }
    if (rc == 0 && wxbank("verify") != 0) {
        fprintf(stderr, "wxbank verify failed after serving\n");
        rc = -1;
    }
    return serve_finish("test_iso_server", workdir, rc != 0) != 0 ? -1 : rc;
}

/* ---- the switch's side -------------------------------------------------------------- */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void put(struct wx_iso_msg *m, int n, const char *v)
{
    if (wx_iso_set_str(m, n, v) != 0) fail_msg("field %d does not take '%s'", n, v);
}

/* Packs m with its 2-byte length into out; returns the frame's length. */
static size_t frame(const struct wx_iso_msg *m, uint8_t *out, size_t cap)
{
    size_t len = 0;
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, m, out + 2, cap - 2, &len), 0);
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    return len + 2;
}

static void send_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        b += n;
        len -= (size_t)n;
    }
}

static void send_msg(int fd, const struct wx_iso_msg *m)
{
    uint8_t buf[WX_ISO_MSG_MAX + 2];
    send_all(fd, buf, frame(m, buf, sizeof buf));
}

/* Reads exactly len bytes; returns false on EOF or a reset, fails on a timeout. */
static bool recv_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, IO_TIMEOUT) != 1) fail_msg("no answer within %d ms", IO_TIMEOUT);
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void recv_msg(int fd, struct wx_iso_msg *m)
{
    uint8_t h[2], body[WX_ISO_MSG_MAX];
    struct wx_iso_error err;
    assert_true(recv_all(fd, h, 2));
    size_t len = (size_t)h[0] << 8 | h[1];
    assert_true(len > 0 && len <= sizeof body);
    assert_true(recv_all(fd, body, len));
    assert_int_equal(wx_iso_unpack(WX_ISO_ASCII87, body, len, m, &err), 0);
}

/* True when the server closed fd (EOF or reset within the timeout). */
static bool closed_by_server(int fd)
{
    uint8_t b;
    return !recv_all(fd, &b, 1);
}

static void field(const struct wx_iso_msg *m, int n, char *out, size_t cap)
{
    if (!wx_iso_get_str(m, n, out, cap)) fail_msg("field %d missing", n);
}

static void assert_field(const struct wx_iso_msg *m, int n, const char *want)
{
    char got[256];
    field(m, n, got, sizeof got);
    assert_string_equal(got, want);
}

/* A POS request for card i (or the PAN given), processing code, amount, STAN. */
static void card_msg(struct wx_iso_msg *m, uint16_t mti, const char *pan, const char *proc,
                     long long amount, unsigned stan)
{
    char buf[48];
    wx_iso_init(m, mti);
    put(m, 2, pan);
    put(m, 3, proc);
    snprintf(buf, sizeof buf, "%012lld", amount);
    put(m, 4, buf);
    put(m, 7, "1127093000");
    snprintf(buf, sizeof buf, "%06u", stan);
    put(m, 11, buf);
    put(m, 18, "5411");
    put(m, 22, "051");
    put(m, 25, "00");
    put(m, 32, "48020000");
    snprintf(buf, sizeof buf, "%012u", stan);
    put(m, 37, buf);
    put(m, 41, "TERM0001");
    put(m, 42, "MERCHANT0000001");
    snprintf(buf, sizeof buf, "%-23s%-13s%-2s%-2s", "HUALIAN SUPERMARKET", "SHANGHAI", "SH", "CN");
    put(m, 43, buf);
    put(m, 49, "156");
}

static void name_original(struct wx_iso_msg *m, const char *mti, unsigned stan)
{
    char f90[64];
    snprintf(f90, sizeof f90, "%s%06u1127093000%011u%011u", mti, stan, 48020000u, 0u);
    put(m, 90, f90);
}

/* One request on its own connection; the answer in resp. */
static void ask(const struct wx_iso_msg *req, struct wx_iso_msg *resp)
{
    int fd = dial();
    send_msg(fd, req);
    recv_msg(fd, resp);
    close(fd);
    assert_int_equal(resp->mti, req->mti - req->mti % 10 + 10);
}

static void expect(const struct wx_iso_msg *req, const char *code)
{
    struct wx_iso_msg resp;
    ask(req, &resp);
    assert_field(&resp, 39, code);
}

/* Available credit of card i through a balance inquiry. */
static long long available(int i)
{
    struct wx_iso_msg req, resp;
    char f54[64];
    card_msg(&req, 100, cards[i].pan, "313000", 0, next_stan++);
    ask(&req, &resp);
    assert_field(&resp, 39, "00");
    field(&resp, 54, f54, sizeof f54);
    assert_int_equal(strlen(f54), 20);
    assert_memory_equal(f54, "3002156C", 8);
    return strtoll(f54 + 8, NULL, 10);
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_network_echo_sign_on_off(void **state)
{
    (void)state;
    static const char *const codes[] = {"001", "301", "002"};
    struct wx_iso_msg req, resp;
    for (int i = 0; i < 3; i++) {
        wx_iso_init(&req, 800);
        put(&req, 7, "1127093000");
        put(&req, 11, "900001");
        put(&req, 70, codes[i]);
        ask(&req, &resp);
        assert_int_equal(resp.mti, 810);
        assert_field(&resp, 39, "00");
        assert_field(&resp, 70, codes[i]);
        assert_field(&resp, 11, "900001");
    }
}

static void test_authorizations_and_declines(void **state)
{
    (void)state;
    struct wx_iso_msg req, resp;
    unsigned stan = next_stan++;
    card_msg(&req, 100, cards[0].pan, "000000", 12345, stan);
    ask(&req, &resp);
    assert_field(&resp, 39, "00");
    char f38[16];
    field(&resp, 38, f38, sizeof f38);
    assert_int_equal(strlen(f38), 6);
    assert_false(wx_iso_has(&resp, 2));
    assert_int_equal(available(0), cards[0].limit - 12345);
    /* 0101: the first answer again, byte for byte in 38 and 39, applied once. */
    card_msg(&req, 101, cards[0].pan, "000000", 12345, stan);
    struct wx_iso_msg again;
    ask(&req, &again);
    assert_field(&again, 38, f38);
    assert_field(&again, 39, "00");
    assert_int_equal(available(0), cards[0].limit - 12345);
    /* The same key as a new request: 94, with the same or other content. */
    card_msg(&req, 100, cards[0].pan, "000000", 12345, stan);
    expect(&req, "94");
    card_msg(&req, 100, cards[0].pan, "000000", 999, stan);
    expect(&req, "94");
    assert_int_equal(available(0), cards[0].limit - 12345);
    card_msg(&req, 100, cards[1].pan, "000000", cards[1].limit + 1, next_stan++);
    expect(&req, "51");
    card_msg(&req, 100, "6225889999999999", "000000", 100, next_stan++);
    expect(&req, "14");
    card_msg(&req, 100, cards[1].pan, "000000", 100, next_stan++);
    put(&req, 14, "2001");
    expect(&req, "54");
}

static void test_financial_and_reversals(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    const char *pan = cards[2].pan;
    long long limit = cards[2].limit;
    unsigned s_fin = next_stan++, s_auth = next_stan++, s_part = next_stan++;
    card_msg(&req, 200, pan, "000000", 5000, s_fin);
    expect(&req, "00");
    assert_int_equal(available(2), limit - 5000);
    /* Full reversal of the financial, then repeated (0401) and resent: applied once. */
    unsigned s_rev = next_stan++;
    card_msg(&req, 400, pan, "000000", 5000, s_rev);
    name_original(&req, "0200", s_fin);
    expect(&req, "00");
    assert_int_equal(available(2), limit);
    card_msg(&req, 401, pan, "000000", 5000, s_rev);
    name_original(&req, "0200", s_fin);
    expect(&req, "00");
    card_msg(&req, 420, pan, "000000", 5000, next_stan++);
    name_original(&req, "0200", s_fin);
    expect(&req, "00");
    assert_int_equal(available(2), limit);
    /* Partial: 100.00 authorized, 30.00 really spent. */
    card_msg(&req, 100, pan, "000000", 10000, s_auth);
    expect(&req, "00");
    card_msg(&req, 400, pan, "000000", 10000, s_part);
    name_original(&req, "0100", s_auth);
    put(&req, 95, "000000003000000000003000C00000000C00000000");
    expect(&req, "00");
    assert_int_equal(available(2), limit - 3000);
}

static void test_unknown_original_then_late_original(void **state)
{
    (void)state;
    struct wx_iso_msg req;
    const char *pan = cards[3].pan;
    unsigned s_orig = next_stan++, s_rev = next_stan++;
    card_msg(&req, 400, pan, "000000", 800, s_rev);
    name_original(&req, "0100", s_orig);
    expect(&req, "25");
    card_msg(&req, 100, pan, "000000", 800, s_orig);
    expect(&req, "12");
    assert_int_equal(available(3), cards[3].limit);
    card_msg(&req, 401, pan, "000000", 800, s_rev);
    name_original(&req, "0100", s_orig);
    expect(&req, "25");
}

static void test_pipelining_in_order(void **state)
{
    (void)state;
    static uint8_t buf[PIPELINED * (WX_ISO_MSG_MAX + 2)];
    struct wx_iso_msg req, resp;
    unsigned first = next_stan;
    size_t len = 0;
    for (int i = 0; i < PIPELINED; i++) {
        card_msg(&req, 100, cards[4].pan, "000000", 100, next_stan++);
        len += frame(&req, buf + len, sizeof buf - len);
    }
    int fd = dial();
    send_all(fd, buf, len);
    for (int i = 0; i < PIPELINED; i++) {
        char want[8];
        recv_msg(fd, &resp);
        snprintf(want, sizeof want, "%06u", first + (unsigned)i);
        assert_field(&resp, 11, want);
        assert_field(&resp, 39, "00");
    }
    close(fd);
    assert_int_equal(available(4), cards[4].limit - PIPELINED * 100);
}

static void test_slow_client_byte_by_byte(void **state)
{
    (void)state;
    uint8_t buf[WX_ISO_MSG_MAX + 2];
    struct wx_iso_msg req, resp;
    card_msg(&req, 100, cards[5].pan, "000000", 4200, next_stan++);
    size_t len = frame(&req, buf, sizeof buf);
    int fd = dial();
    for (size_t i = 0; i < len; i++) {
        send_all(fd, buf + i, 1);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 2000000};
        nanosleep(&ts, NULL);
    }
    recv_msg(fd, &resp);
    assert_field(&resp, 39, "00");
    close(fd);
    assert_int_equal(available(5), cards[5].limit - 4200);
}

static void test_oversized_frame_closes_only_that_connection(void **state)
{
    (void)state;
    struct wx_iso_msg req, resp;
    int other = dial();
    int fd = dial();
    uint8_t h[2] = {0x10, 0x01}; /* 4097 bytes: one over iso8583.frame_max */
    send_all(fd, h, 2);
    assert_true(closed_by_server(fd));
    close(fd);
    fd = dial();
    uint8_t zero[2] = {0, 0}; /* an empty frame is no message either */
    send_all(fd, zero, 2);
    assert_true(closed_by_server(fd));
    close(fd);
    wx_iso_init(&req, 800);
    put(&req, 7, "1127093000");
    put(&req, 11, "900002");
    put(&req, 70, "301");
    send_msg(other, &req);
    recv_msg(other, &resp);
    assert_field(&resp, 39, "00");
    close(other);
}

static void test_dropped_mid_frame_applies_nothing(void **state)
{
    (void)state;
    uint8_t buf[WX_ISO_MSG_MAX + 2];
    struct wx_iso_msg req;
    unsigned stan = next_stan++;
    card_msg(&req, 100, cards[6].pan, "000000", 7700, stan);
    size_t len = frame(&req, buf, sizeof buf);
    int fd = dial();
    send_all(fd, buf, len - 3);
    close(fd);
    assert_int_equal(available(6), cards[6].limit);
    /* Had it been applied, this would be a duplicate (94). */
    expect(&req, "00");
    assert_int_equal(available(6), cards[6].limit - 7700);
}

static void test_malformed_message(void **state)
{
    (void)state;
    uint8_t buf[WX_ISO_MSG_MAX + 2];
    struct wx_iso_msg req, resp;
    unsigned stan = next_stan++;
    card_msg(&req, 100, cards[7].pan, "000000", 100, stan);
    wx_iso_unset(&req, 43);
    wx_iso_unset(&req, 49);
    size_t len = frame(&req, buf, sizeof buf);
    buf[len - 20] = 0x01; /* inside field 41 (ans 8): not a printable character */
    int fd = dial();
    send_all(fd, buf, len);
    recv_msg(fd, &resp);
    assert_int_equal(resp.mti, 110);
    assert_field(&resp, 39, "30");
    char want[8];
    snprintf(want, sizeof want, "%06u", stan);
    assert_field(&resp, 11, want);
    /* Garbage where the MTI should be: the connection is closed, nothing answered. */
    uint8_t junk[] = {0, 6, 'X', 'Y', 'Z', '!', '!', '!'};
    send_all(fd, junk, sizeof junk);
    assert_true(closed_by_server(fd));
    close(fd);
    assert_int_equal(available(7), cards[7].limit);
}

/* Reads whole frames from acc (len bytes) and checks each answer's STAN is the next one;
 * returns the bytes consumed. */
static size_t take_answers(const uint8_t *acc, size_t len, unsigned *next, unsigned n)
{
    size_t used = 0;
    while (len - used >= 2) {
        size_t flen = (size_t)acc[used] << 8 | acc[used + 1];
        if (len - used < 2 + flen) break;
        struct wx_iso_msg m;
        struct wx_iso_error err;
        char want[8];
        assert_int_equal(wx_iso_unpack(WX_ISO_ASCII87, acc + used + 2, flen, &m, &err), 0);
        snprintf(want, sizeof want, "%06u", *next % 1000000u);
        assert_field(&m, 11, want);
        assert_true(*next < n);
        (*next)++;
        used += 2 + flen;
    }
    return used;
}

/* A switch that stops reading: the server stops reading it too (our sends stall), and when
 * the switch reads again every answer comes, in order. */
static void test_backpressure_client_not_reading(void **state)
{
    (void)state;
    enum { N = 250000 };
    size_t cap = (size_t)N * 64, total = 0, sent = 0;
    uint8_t *out = malloc(cap), *acc = malloc(1u << 20);
    assert_non_null(out);
    assert_non_null(acc);
    struct wx_iso_msg req;
    for (unsigned i = 0; i < N; i++) {
        char stan[8];
        snprintf(stan, sizeof stan, "%06u", i % 1000000u);
        wx_iso_init(&req, 800);
        put(&req, 7, "1127093000");
        put(&req, 11, stan);
        put(&req, 70, "301");
        total += frame(&req, out + total, cap - total);
    }
    int fd = dial();
    bool stalled = false;
    while (sent < total && !stalled) {
        ssize_t n = send(fd, out + sent, total - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        stalled = poll(&pfd, 1, 500) == 0;
    }
    assert_true(stalled); /* the server stopped reading us */
    unsigned next = 0;
    size_t have = 0;
    while (next < N) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
        assert_int_equal(poll(&pfd, 1, IO_TIMEOUT), 1);
        if (pfd.revents & POLLOUT) {
            ssize_t n = send(fd, out + sent, total - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) sent += (size_t)n;
        }
        if (pfd.revents & POLLIN) {
            ssize_t n = recv(fd, acc + have, (1u << 20) - have, 0);
            assert_true(n > 0);
            have += (size_t)n;
            size_t used = take_answers(acc, have, &next, N);
            memmove(acc, acc + used, have - used);
            have -= used;
        }
    }
    close(fd);
    free(out);
    free(acc);
}

/* ---- limits, on a server of their own --------------------------------------------- */

/* Runs `wxbank <args>` in the work directory and returns its exit code and output. */
static int wxbank_output(const char *args, char *out, size_t cap)
{
    char cmd[PATH_MAX + 512];
    snprintf(cmd, sizeof cmd, "cd '%s' && WXBANK_DB_URL=sqlite:bank.db '%s' %s 2>&1", workdir,
             getenv("WXBANK_BIN"), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The tools staff and integrators use: `wxbank pos` as a terminal, `wxbank iso decode`. */
static void test_pos_and_iso_decode_tools(void **state)
{
    (void)state;
    static char out[65536];
    char args[512], host[64];
    const struct card *c = &cards[7];
    snprintf(host, sizeof host, "--host 127.0.0.1:%d", port);
    snprintf(args, sizeof args, "pos auth --pan %s --expiry %s --amount 12.34 %s", c->pan,
             c->expiry, host);
    assert_int_equal(wxbank_output(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "MTI 0110"));
    assert_non_null(strstr(out, "an2        00"));
    assert_null(strstr(out, c->pan)); /* masked in what the tool prints */

    /* Reverse it in part, naming the original by the STAN and time the tool printed. */
    char stan[8], when[12];
    const char *p = strstr(out, "STAN ");
    assert_non_null(p);
    memcpy(stan, p + 5, 6);
    stan[6] = '\0';
    p = strstr(out, "time ");
    assert_non_null(p);
    memcpy(when, p + 5, 10);
    when[10] = '\0';
    snprintf(args, sizeof args,
             "pos reversal --pan %s --expiry %s --amount 12.34 --actual 10.00 --orig-stan %s "
             "--orig-time %s %s",
             c->pan, c->expiry, stan, when, host);
    assert_int_equal(wxbank_output(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "MTI 0410"));
    assert_int_equal(available(7), c->limit - 1000);

    snprintf(args, sizeof args, "pos balance --pan %s --expiry %s %s", c->pan, c->expiry, host);
    assert_int_equal(wxbank_output(args, out, sizeof out), 0);
    assert_non_null(strstr(out, " 54 "));
    snprintf(args, sizeof args, "pos echo %s", host);
    assert_int_equal(wxbank_output(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "MTI 0810"));
    snprintf(args, sizeof args, "pos auth --pan %s --expiry %s --amount 99999999 %s", c->pan,
             c->expiry, host);
    assert_int_equal(wxbank_output(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "an2        51"));

    /* A published vector, as ASCII and as hex, PAN masked. */
    assert_int_equal(
        wxbank_output("iso decode 01007000000000000000164242424242424242123456000000000100", out,
                      sizeof out),
        0);
    assert_non_null(strstr(out, "424242******4242"));
    assert_null(strstr(out, "4242424242424242"));
    assert_int_equal(wxbank_output("iso decode --dialect bcd87 "
                                   "080020200000008000000000000000013239313130303031",
                                   out, sizeof out),
                     0);
    assert_non_null(strstr(out, "29110001"));
    assert_int_equal(wxbank_output("iso decode 0100zz", out, sizeof out), 1);
}

static int limits_setup(void **state)
{
    (void)state;
    static const char *const env[] = {
        "WXBANK_ISO8583_MAX_CONNECTIONS=2", "WXBANK_ISO8583_IDLE_SECONDS=1",
        "WXBANK_ISO8583_FRAMING=ascii4", "WXBANK_ISO8583_FRAME_MAX=" ECHO_LEN_TEXT, NULL};
    snprintf(workdir, sizeof workdir, "/tmp/wxbank-iso-XXXXXX");
    if (mkdtemp(workdir) == NULL || wxbank("init") != 0) return -1;
    start_server(env);
    return 0;
}

/* An echo in ascii4 framing on fd; true when answered 00. */
static bool echo_ascii4(int fd)
{
    struct wx_iso_msg req, resp;
    struct wx_iso_error err;
    uint8_t buf[WX_ISO_MSG_MAX + 4], h[4];
    size_t len = 0;
    wx_iso_init(&req, 800);
    put(&req, 7, "1127093000");
    put(&req, 11, "900003");
    put(&req, 70, "301");
    assert_int_equal(wx_iso_pack(WX_ISO_ASCII87, &req, buf + 4, sizeof buf - 4, &len), 0);
    assert_int_equal(len, strtol(ECHO_LEN_TEXT, NULL, 10)); /* just at iso8583.frame_max */
    char head[8];
    snprintf(head, sizeof head, "%04zu", len);
    memcpy(buf, head, 4);
    send_all(fd, buf, len + 4);
    if (!recv_all(fd, h, 4)) return false;
    size_t n = (size_t)(h[0] - '0') * 1000 + (size_t)(h[1] - '0') * 100 +
               (size_t)(h[2] - '0') * 10 + (size_t)(h[3] - '0');
    assert_true(n > 0 && n <= WX_ISO_MSG_MAX);
    assert_true(recv_all(fd, buf, n));
    assert_int_equal(wx_iso_unpack(WX_ISO_ASCII87, buf, n, &resp, &err), 0);
    char code[4];
    return wx_iso_get_str(&resp, 39, code, sizeof code) && strcmp(code, "00") == 0;
}

static void test_connection_limit_idle_and_ascii4(void **state)
{
    (void)state;
    int a = dial(), b = dial();
    assert_true(echo_ascii4(a));
    assert_true(echo_ascii4(b));
    int d = dial(); /* one byte over iso8583.frame_max: that connection is closed */
    send_all(d, "0056", 4);
    assert_true(closed_by_server(d));
    close(d);
    int c = dial(); /* the third: over iso8583.max_connections */
    assert_true(closed_by_server(c));
    close(c);
    close(b);
    /* Once the server has seen b go, there is room again. */
    bool answered = false;
    for (int i = 0; i < 50 && !answered; i++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000000};
        nanosleep(&ts, NULL);
        c = dial();
        answered = echo_ascii4(c);
        if (!answered) close(c);
    }
    assert_true(answered);
    /* Silent for over iso8583.idle_seconds: closed. */
    assert_true(closed_by_server(a));
    assert_true(closed_by_server(c));
    close(a);
    close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network_echo_sign_on_off),
        cmocka_unit_test(test_authorizations_and_declines),
        cmocka_unit_test(test_financial_and_reversals),
        cmocka_unit_test(test_unknown_original_then_late_original),
        cmocka_unit_test(test_pipelining_in_order),
        cmocka_unit_test(test_slow_client_byte_by_byte),
        cmocka_unit_test(test_oversized_frame_closes_only_that_connection),
        cmocka_unit_test(test_dropped_mid_frame_applies_nothing),
        cmocka_unit_test(test_malformed_message),
        cmocka_unit_test(test_backpressure_client_not_reading),
        cmocka_unit_test(test_pos_and_iso_decode_tools),
    };
    const struct CMUnitTest limits[] = {
        cmocka_unit_test(test_connection_limit_idle_and_ascii4),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return failed + cmocka_run_group_tests(limits, limits_setup, group_teardown);
}
