/*
 * iso_codec_bench.c - ISO 8583 codec speed: pack + unpack of a typical 0100 authorization
 * request on one core, and the npm iso_8583 peer's figure for the same job from the same run.
 *
 * It holds the codec to the target (>= 2,000,000 messages/s) and keeps the
 * comparison with the peer like for like: the same 0100 (fields 2,3,4,7,11,12,13,14,18,22,
 * 25,32,35,37,41,42,43,49, STAN varying), the same wire format (ascii87b), pack then unpack
 * of every message. The peer runs after ours, so the two never share the cores.
 *
 * Output: BENCH iso.codec_msgs_per_s, and when the peer is installed (WX_PEERS_DIR, else
 * "peers" next to this program, i.e. build/peers after `npm ci` there)
 * BENCH iso.peer_codec_msgs_per_s and BENCH iso.codec_ratio. Notes go to stderr.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iso8583/iso8583.h"
#include "util/timeutil.h"

#define BENCH_SECONDS 3
#define BENCH_MSGS    64 /* distinct STANs, cycled */
#define PEER_SECONDS  "3"
#define PEER_RUNS     "3"
#define PEER_LINE_MAX 512

static const char *const FIELDS[][2] = {
    {"2", "4761739001010119"},
    {"3", "000000"},
    {"4", "000000012345"},
    {"7", "1127021300"},
    {"12", "101300"},
    {"13", "1127"},
    {"14", "2812"},
    {"18", "5411"},
    {"22", "051"},
    {"25", "00"},
    {"32", "423935"},
    {"35", "4761739001010119=28122011758928889"},
    {"41", "TERM0001"},
    {"42", "MERCHANT0000001"},
    {"43", "ACME STORE              SHANGHAI      CN"},
    {"49", "156"},
};

static struct wx_iso_msg msgs[BENCH_MSGS], back;

static void build(struct wx_iso_msg *m, unsigned stan)
{
    char s[7], rrn[13];
    snprintf(s, sizeof s, "%06u", stan % 1000000);
    snprintf(rrn, sizeof rrn, "533102%s", s);
    wx_iso_init(m, 100);
    int rc = 0;
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        rc |= wx_iso_set_str(m, (int)strtol(FIELDS[i][0], NULL, 10), FIELDS[i][1]);
    }
    rc |= wx_iso_set_str(m, 11, s);
    rc |= wx_iso_set_str(m, 37, rrn);
    if (rc != 0) {
        fprintf(stderr, "iso_codec_bench: building the sample failed\n");
        exit(1);
    }
}

/* Pack + unpack for BENCH_SECONDS; returns messages per second. */
static double run_ours(void)
{
    uint8_t wire[WX_ISO_MSG_MAX];
    struct wx_iso_error err;
    size_t len = 0;
    uint64_t n = 0, sink = 0;
    int64_t t0 = wx_mono_us(), t = t0;
    for (;;) {
        for (int k = 0; k < 1024; k++, n++) {
            if (wx_iso_pack(WX_ISO_ASCII87B, &msgs[n % BENCH_MSGS], wire, sizeof wire, &len) != 0 ||
                wx_iso_unpack(WX_ISO_ASCII87B, wire, len, &back, &err) != 0) {
                fprintf(stderr, "iso_codec_bench: round trip failed\n");
                exit(1);
            }
            sink += back.field[11].len;
        }
        t = wx_mono_us();
        if (t - t0 >= BENCH_SECONDS * 1000000LL) break;
    }
    fprintf(stderr, "ours: %llu msgs in %.3f s, %zu bytes each (sink %llu)\n",
            (unsigned long long)n, (double)(t - t0) / 1e6, len, (unsigned long long)(sink % 10));
    return (double)n * 1e6 / (double)(t - t0);
}

/* The peer's folder: WX_PEERS_DIR, else "peers" beside this program. False when absent. */
static bool peer_dir(char *out, size_t cap)
{
    const char *env = getenv("WX_PEERS_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, cap, "%s", env);
    } else {
        char exe[PATH_MAX - 16];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return false;
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash == NULL) return false;
        *slash = '\0';
        snprintf(out, cap, "%s/peers", exe);
    }
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/node_modules/iso_8583/package.json", out);
    return access(probe, R_OK) == 0;
}

/* Runs the peer's bench; returns its median pack+unpack msgs/s, or 0 when it failed. */
static double run_peer(const char *dir)
{
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && node iso8583-peer.js bench " PEER_SECONDS " " PEER_RUNS " 2>&1", dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL) return 0;
    static const char key[] = "MEDIAN pack+unpack ";
    char line[PEER_LINE_MAX];
    double rate = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        fprintf(stderr, "peer: %s", line);
        if (strncmp(line, key, sizeof key - 1) == 0) {
            char *end = NULL;
            long v = strtol(line + sizeof key - 1, &end, 10);
            if (end != line + sizeof key - 1 && v > 0) rate = (double)v;
        }
    }
    if (pclose(p) != 0) return 0;
    return rate;
}

int main(void)
{
    for (unsigned i = 0; i < BENCH_MSGS; i++)
        build(&msgs[i], i + 1);
    run_ours(); /* warm-up: page in, settle the clock */
    double ours = run_ours();
    printf("BENCH iso.codec_msgs_per_s %.0f msgs/s\n", ours);
    fflush(stdout);
    char dir[PATH_MAX];
    if (!peer_dir(dir, sizeof dir)) {
        fprintf(stderr, "peer: iso_8583 not installed (set WX_PEERS_DIR, or npm ci in "
                        "build/peers); skipping the peer figures\n");
        return 0;
    }
    double peer = run_peer(dir);
    if (peer <= 0) {
        fprintf(stderr, "peer: bench failed in %s; skipping the peer figures\n", dir);
        return 0;
    }
    printf("BENCH iso.peer_codec_msgs_per_s %.0f msgs/s\n", peer);
    printf("BENCH iso.codec_ratio %.1f x\n", ours / peer);
    return 0;
}
