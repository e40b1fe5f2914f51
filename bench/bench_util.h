/*
 * bench_util.h - the small pieces the end-to-end benchmarks share (iso_bench, webhook_bench,
 * alerts_bench): clocks, a seeded generator, digits, option numbers, a free loopback port,
 * sorting, the wxbank program beside the benchmark, and the lines of a `seed --pans` file.
 *
 * Header-only on purpose: CMake builds every bench/NAME_bench.c as one program of its own.
 */
#ifndef WX_BENCH_UTIL_H
#define WX_BENCH_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/limits.h"

#define NS 1000000000LL

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* xorshift64: cheap, seeded, the same sequence on every run. */
static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Writes v as exactly n decimal digits (the high ones dropped). */
static inline void put_digits(uint8_t *dst, size_t n, uint64_t v)
{
    for (size_t i = n; i > 0; i--) {
        dst[i - 1] = (uint8_t)('0' + v % 10);
        v /= 10;
    }
}

static inline bool parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
        return false;
    }
    *out = (unsigned)v;
    return true;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback port free right now (0 when none could be had). */
static inline unsigned free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    unsigned port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

static inline int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    return a < c ? -1 : a > c;
}

/* The directory of this program, into dir. False when /proc does not tell. */
static inline bool bench_self_dir(char *dir, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
    if (n <= 0) return false;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash == NULL) return false;
    *slash = '\0';
    return true;
}

/* The wxbank program in the benchmark's own directory (both are built into build/), into out
 * (cap bytes). 0, or -1 with a message naming `who`. */
static inline int bench_find_wxbank(char *out, size_t cap, const char *who)
{
    char self[PATH_MAX - 16];
    if (!bench_self_dir(self, sizeof self)) return -1;
    int len = snprintf(out, cap, "%s/wxbank", self);
    if (len < 0 || (size_t)len >= cap || access(out, X_OK) != 0) {
        fprintf(stderr, "%s: no wxbank program next to %s\n", who, self);
        return -1;
    }
    return 0;
}

/* A card from `wxbank seed --pans`: kept in memory, never printed unmasked. */
struct bench_card {
    char pan[WX_PAN_MAX + 1]; /* digits, NUL-terminated */
    char expiry[5];           /* YYMM */
};

/* Reads "PAN<TAB>YYMM<TAB>limit" into *c; false for anything else. */
static inline bool bench_parse_card_line(const char *line, struct bench_card *c)
{
    const char *tab = strchr(line, '\t');
    if (tab == NULL || tab - line < 12 || tab - line > WX_PAN_MAX) return false;
    size_t n = (size_t)(tab - line);
    for (size_t i = 0; i < n; i++) {
        if (line[i] < '0' || line[i] > '9') return false;
    }
    for (size_t i = 1; i <= 4; i++) {
        if (tab[i] < '0' || tab[i] > '9') return false;
    }
    if (tab[5] != '\t') return false;
    memcpy(c->pan, line, n);
    c->pan[n] = '\0';
    memcpy(c->expiry, tab + 1, 4);
    c->expiry[4] = '\0';
    return true;
}

#endif
