/*
 * cmd_iso.c - `wxbank pos` (one message as a terminal and its acquirer would send it, and the
 * decoded answer) and `wxbank iso decode` (the fields of a message given in hex or ASCII).
 *
 * Both are tools for bank staff and integrators: the PAN is masked in everything they print.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "iso8583/iso8583.h"
#include "util/crypto.h"
#include "util/money.h"
#include "util/pan.h"
#include "util/timeutil.h"

#define POS_TIMEOUT_MS 10000

/* ---- iso decode ---------------------------------------------------------------------- */

/* The message as hex, when every character (spaces aside) is a hex digit: -1 otherwise. */
static int read_hex(const char *text, uint8_t *out, size_t cap, size_t *len)
{
    char compact[2 * WX_ISO_MSG_MAX + 1];
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
            continue;
        }
        if (n >= sizeof compact - 1) {
            return -1;
        }
        compact[n++] = *p;
    }
    return n > 0 && wx_hex_decode(compact, n, out, cap, len) == 0 ? 0 : -1;
}

/* The message as ASCII, without a trailing newline: -1 when too long. */
static int read_ascii(const char *text, uint8_t *out, size_t cap, size_t *len)
{
    size_t raw = strlen(text);
    while (raw > 0 && (text[raw - 1] == '\n' || text[raw - 1] == '\r')) {
        raw--;
    }
    if (raw == 0 || raw > cap) {
        return -1;
    }
    memcpy(out, text, raw);
    *len = raw;
    return 0;
}

/* Decodes text as the ASCII wire image first and then as hex: an ascii87 message made of
 * digits only is valid hex too, so the form that decodes wins. */
static int decode_text(enum wx_iso_dialect dialect, const char *text, struct wx_iso_msg *m,
                       struct wx_iso_error *err)
{
    static uint8_t raw[WX_ISO_MSG_MAX];
    size_t len;
    int rc = -1;
    if (read_ascii(text, raw, sizeof raw, &len) == 0) {
        rc = wx_iso_unpack(dialect, raw, len, m, err);
    }
    struct wx_iso_error hex_err;
    if (rc != 0 && read_hex(text, raw, sizeof raw, &len) == 0 &&
        wx_iso_unpack(dialect, raw, len, m, &hex_err) == 0) {
        rc = 0;
    }
    return rc;
}

static int iso_decode(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dialect", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *usage = "usage: wxbank iso decode [--dialect ascii87|ascii87b|bcd87] "
                        "[MESSAGE in hex or ASCII; default: standard input]\n";
    enum wx_iso_dialect dialect = WX_ISO_ASCII87;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd' && wx_iso_dialect_parse(optarg, &dialect) == 0) {
            continue;
        }
        fprintf(c == 'h' ? stdout : stderr, "%s", usage);
        return c == 'h' ? WX_EXIT_OK : WX_EXIT_USAGE;
    }
    static char text[4 * WX_ISO_MSG_MAX + 2];
    if (optind < argc) {
        snprintf(text, sizeof text, "%s", argv[optind]);
    } else {
        size_t n = fread(text, 1, sizeof text - 1, stdin);
        text[n] = '\0';
    }
    static struct wx_iso_msg m;
    struct wx_iso_error err = {.why = "empty or too long"};
    if (decode_text(dialect, text, &m, &err) != 0) {
        fprintf(stderr, "wxbank iso decode: field %d: %s\n", err.field, err.why);
        return WX_EXIT_FAIL;
    }
    wx_iso_print(&m, stdout);
    return WX_EXIT_OK;
}

/* ---- pos ----------------------------------------------------------------------------- */

struct pos_args {
    const char *action, *pan, *expiry, *amount, *host, *merchant, *city, *orig_stan, *orig_time,
        *actual;
    enum wx_iso_dialect dialect;
    bool ascii_framing;
    unsigned mcc, currency;
};

/* True when text is 1..max_digits decimal digits with a value at most max. */
static bool parse_digits(const char *text, int max_digits, unsigned long max, unsigned *out)
{
    size_t n = strspn(text, "0123456789");
    if (n == 0 || n > (size_t)max_digits || text[n] != '\0') {
        return false;
    }
    unsigned long v = strtoul(text, NULL, 10);
    *out = (unsigned)v;
    return v <= max;
}

static int pos_parse(int argc, char **argv, struct pos_args *a)
{
    static const struct option opts[] = {{"pan", required_argument, NULL, 'p'},
                                         {"expiry", required_argument, NULL, 'e'},
                                         {"amount", required_argument, NULL, 'a'},
                                         {"host", required_argument, NULL, 'H'},
                                         {"merchant", required_argument, NULL, 'm'},
                                         {"city", required_argument, NULL, 'c'},
                                         {"mcc", required_argument, NULL, 'M'},
                                         {"currency", required_argument, NULL, 'C'},
                                         {"orig-stan", required_argument, NULL, 's'},
                                         {"orig-time", required_argument, NULL, 't'},
                                         {"actual", required_argument, NULL, 'A'},
                                         {"dialect", required_argument, NULL, 'd'},
                                         {"framing", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    memset(a, 0, sizeof *a);
    a->host = "127.0.0.1:8583";
    a->merchant = "WXBANK TEST MERCHANT";
    a->city = "SHANGHAI";
    a->mcc = 5411;
    a->currency = 156;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            a->pan = optarg;
            break;
        case 'e':
            a->expiry = optarg;
            break;
        case 'a':
            a->amount = optarg;
            break;
        case 'H':
            a->host = optarg;
            break;
        case 'm':
            a->merchant = optarg;
            break;
        case 'c':
            a->city = optarg;
            break;
        case 'M':
            if (!parse_digits(optarg, 4, 9999, &a->mcc)) {
                fprintf(stderr, "wxbank pos: --mcc: 4 digits\n");
                return WX_EXIT_USAGE;
            }
            break;
        case 'C':
            if (!parse_digits(optarg, 3, 999, &a->currency)) {
                fprintf(stderr, "wxbank pos: --currency: ISO 4217 numeric, e.g. 156\n");
                return WX_EXIT_USAGE;
            }
            break;
        case 's':
            a->orig_stan = optarg;
            break;
        case 't':
            a->orig_time = optarg;
            break;
        case 'A':
            a->actual = optarg;
            break;
        case 'd':
            if (wx_iso_dialect_parse(optarg, &a->dialect) != 0) {
                fprintf(stderr, "wxbank pos: --dialect: ascii87, ascii87b or bcd87\n");
                return WX_EXIT_USAGE;
            }
            break;
        case 'f':
            a->ascii_framing = strcmp(optarg, "ascii4") == 0;
            if (!a->ascii_framing && strcmp(optarg, "len2") != 0) {
                fprintf(stderr, "wxbank pos: --framing: len2 or ascii4\n");
                return WX_EXIT_USAGE;
            }
            break;
        default:
            return c == 'h' ? -1 : WX_EXIT_USAGE;
        }
    }
    a->action = optind < argc ? argv[optind] : NULL;
    return WX_EXIT_OK;
}

static const char POS_USAGE[] =
    "usage: wxbank pos auth|purchase|refund|balance|reversal|echo [options]\n"
    "  --pan PAN --expiry YYMM       the card (not for echo)\n"
    "  --amount YUAN                 auth, purchase, refund, reversal\n"
    "  --orig-stan N --orig-time MMDDhhmmss   reversal: the original 0100 (printed by auth)\n"
    "  --actual YUAN                 reversal: partial, the amount that stands\n"
    "  --merchant NAME --city CITY --mcc N --currency N\n"
    "  --host HOST:PORT (127.0.0.1:8583) --dialect ascii87 --framing len2|ascii4\n";

/* Formats a number as exactly `width` digits. */
static void digits(char *out, size_t cap, unsigned long long v, int width)
{
    snprintf(out, cap, "%0*llu", width, v);
}

/* Field 43: name (23), city (13), state (2), country (2). */
static void merchant_field(struct wx_iso_msg *m, const struct pos_args *a)
{
    char f43[41];
    snprintf(f43, sizeof f43, "%-23.23s%-13.13s  CN", a->merchant, a->city);
    wx_iso_set_str(m, 43, f43);
}

static int card_fields(struct wx_iso_msg *m, const struct pos_args *a)
{
    char pan[WX_PAN_MAX + 1];
    uint16_t yymm;
    if (a->pan == NULL || wx_pan_parse(a->pan, pan) != 0) {
        fprintf(stderr, "wxbank pos: --pan: a valid card number is needed\n");
        return -1;
    }
    wx_iso_set_str(m, 2, pan);
    memset(pan, 0, sizeof pan);
    if (a->expiry != NULL) {
        if (wx_expiry_parse(a->expiry, &yymm) != 0) {
            fprintf(stderr, "wxbank pos: --expiry: YYMM\n");
            return -1;
        }
        wx_iso_set_str(m, 14, a->expiry);
    }
    return 0;
}

static int amount_field(struct wx_iso_msg *m, int n, const char *text)
{
    int64_t fen;
    char buf[16];
    if (text == NULL || wx_amount_parse(text, &fen) != 0) {
        fprintf(stderr, "wxbank pos: --amount: yuan such as 12.34\n");
        return -1;
    }
    digits(buf, sizeof buf, (unsigned long long)fen, 12);
    return wx_iso_set_str(m, n, buf);
}

/* Builds the message an action stands for. */
static int pos_build(const struct pos_args *a, struct wx_iso_msg *m, unsigned stan, char when[11])
{
    const char *act = a->action;
    bool echo = strcmp(act, "echo") == 0;
    bool reversal = strcmp(act, "reversal") == 0;
    uint16_t mti = echo                          ? 800
                   : reversal                    ? 400
                   : strcmp(act, "auth") == 0    ? 100
                   : strcmp(act, "balance") == 0 ? 100
                                                 : 200;
    wx_iso_init(m, mti);
    wx_iso_set_terminal_fields(m, time(NULL), stan, "WXPOS001", "WXBANKMERCH0001", when);
    if (echo) {
        wx_iso_set_str(m, 70, "301");
        return 0;
    }
    if (card_fields(m, a) != 0) {
        return -1;
    }
    const char *proc = strcmp(act, "balance") == 0  ? "310000"
                       : strcmp(act, "refund") == 0 ? "200000"
                                                    : "000000";
    wx_iso_set_str(m, 3, proc);
    if (strcmp(act, "balance") == 0) {
        wx_iso_set_str(m, 4, "000000000000");
    } else if (amount_field(m, 4, a->amount) != 0) {
        return -1;
    }
    char buf[48];
    digits(buf, sizeof buf, a->mcc, 4);
    wx_iso_set_str(m, 18, buf);
    wx_iso_set_str(m, 22, "051");
    wx_iso_set_str(m, 25, "00");
    digits(buf, sizeof buf, a->currency, 3);
    wx_iso_set_str(m, 49, buf);
    merchant_field(m, a);
    if (reversal) {
        unsigned orig_stan;
        if (a->orig_stan == NULL || a->orig_time == NULL ||
            !parse_digits(a->orig_stan, 6, 999999, &orig_stan) || strlen(a->orig_time) != 10 ||
            strspn(a->orig_time, "0123456789") != 10) {
            fprintf(stderr, "wxbank pos reversal: --orig-stan N (6 digits at most) and "
                            "--orig-time MMDDhhmmss are needed\n");
            return -1;
        }
        snprintf(buf, sizeof buf, "0100%06u%s%011d%011d", orig_stan, a->orig_time, 1, 0);
        wx_iso_set_str(m, 90, buf);
        if (a->actual != NULL) {
            int64_t fen;
            if (wx_amount_parse(a->actual, &fen) != 0) {
                fprintf(stderr, "wxbank pos: --actual: yuan such as 12.34\n");
                return -1;
            }
            snprintf(buf, sizeof buf, "%012lld%030d", (long long)fen, 0);
            wx_iso_set_str(m, 95, buf);
        }
    }
    return 0;
}

static int connect_host(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (colon == NULL || (size_t)(colon - hostport) >= sizeof host) {
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Reads exactly n bytes within the timeout. */
static int read_exact(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, POS_TIMEOUT_MS) <= 0) {
            return -1;
        }
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* Sends one framed message and reads the framed answer into out. */
static int exchange(int fd, enum wx_iso_framing framing, const uint8_t *msg, size_t len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t head[4];
    size_t hl = wx_iso_frame_header(framing, len, head), n = 0;
    if (write(fd, head, hl) != (ssize_t)hl || write(fd, msg, len) != (ssize_t)len ||
        read_exact(fd, head, hl) != 0 || wx_iso_frame_length(framing, head, &n) != 0 || n == 0 ||
        n > cap) {
        return -1;
    }
    *out_len = n;
    return read_exact(fd, out, n);
}

static int pos(int argc, char **argv)
{
    struct pos_args a;
    int rc = pos_parse(argc, argv, &a);
    if (rc != WX_EXIT_OK || a.action == NULL) {
        fputs(POS_USAGE, rc < 0 ? stdout : stderr);
        return rc < 0 ? WX_EXIT_OK : WX_EXIT_USAGE;
    }
    static const char *const actions[] = {"auth",    "purchase", "refund",
                                          "balance", "reversal", "echo"};
    bool known = false;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        known = known || strcmp(a.action, actions[i]) == 0;
    }
    if (!known) {
        fputs(POS_USAGE, stderr);
        return WX_EXIT_USAGE;
    }
    static struct wx_iso_msg req, resp;
    uint32_t r;
    wx_random_bytes(&r, sizeof r);
    unsigned stan = 1 + r % 999999u;
    char when[11];
    if (pos_build(&a, &req, stan, when) != 0) {
        return WX_EXIT_USAGE;
    }
    static uint8_t out[WX_ISO_MSG_MAX], in[WX_ISO_MSG_MAX];
    size_t len, in_len;
    if (wx_iso_pack(a.dialect, &req, out, sizeof out, &len) != 0) {
        fprintf(stderr, "wxbank pos: the message does not pack\n");
        return WX_EXIT_USAGE;
    }
    int fd = connect_host(a.host);
    if (fd < 0) {
        fprintf(stderr, "wxbank pos: cannot connect to %s: %s\n", a.host, strerror(errno));
        return WX_EXIT_FAIL;
    }
    printf("request (STAN %06u, time %s):\n", stan, when);
    wx_iso_print(&req, stdout);
    struct wx_iso_error err;
    rc = exchange(fd, a.ascii_framing ? WX_ISO_FRAME_ASCII4 : WX_ISO_FRAME_LEN2, out, len, in,
                  sizeof in, &in_len);
    close(fd);
    if (rc != 0 || wx_iso_unpack(a.dialect, in, in_len, &resp, &err) != 0) {
        fprintf(stderr, "wxbank pos: no valid answer from %s\n", a.host);
        return WX_EXIT_FAIL;
    }
    printf("answer:\n");
    wx_iso_print(&resp, stdout);
    char code[3] = "";
    wx_iso_get_str(&resp, 39, code, sizeof code);
    return strcmp(code, "00") == 0 ? WX_EXIT_OK : WX_EXIT_FAIL;
}

int wx_cmd_pos(int argc, char **argv)
{
    return pos(argc, argv);
}

int wx_cmd_iso(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "decode") == 0) {
        return iso_decode(argc - 1, argv + 1);
    }
    fprintf(stderr, "usage: wxbank iso decode [--dialect D] [MESSAGE]\n");
    return WX_EXIT_USAGE;
}
