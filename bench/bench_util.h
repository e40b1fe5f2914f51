/*
 * bench_util.h - what the end-to-end benchmarks (iso_bench, alerts_bench, web_bench,
 * webhook_bench) share, so that each of them says only what it measures:
 *   - clocks, a seeded generator, digits, sorting and quantiles, the command line;
 *   - the machine: a free loopback port, the wxbank program beside the benchmark, a temporary
 *     directory, the environment children inherit, and the CPU time of this process, of
 *     another, and of one of its threads;
 *   - child processes: starting one, running one to its end, waiting until one is ready or
 *     accepts connections, stopping one, and stopping them when the benchmark is interrupted;
 *   - sockets on epoll: connecting, sending, reading until the socket is empty, serving the
 *     ones that are ready;
 *   - the card switch: the cards of a `seed --pans` file, the date stamps and fields of a
 *     0100, framing, response codes, and connections to the host that keep requests in flight
 *     and send them at a steady offered rate.
 *
 * Header-only on purpose: CMake builds every bench/NAME_bench.c as one program of its own.
 * Functions that can fail say so on stderr after `who`, the benchmark's name.
 */
#ifndef WX_BENCH_UTIL_H
#define WX_BENCH_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iso8583/iso8583.h"
#include "util/alloc.h"
#include "util/limits.h"

extern char **environ;

#define NS 1000000000LL

/* ---- numbers ------------------------------------------------------------------------------ */

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

static inline int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    return a < c ? -1 : a > c;
}

/* The q-th 1000-quantile of n sorted latencies (q = 990: the p99); 0 when there are none. */
static inline uint32_t bench_quantile(const uint32_t *sorted, size_t n, unsigned q)
{
    return n > 0 ? sorted[(size_t)((uint64_t)n * q / 1000)] : 0;
}

/* The same of latencies in microseconds, in milliseconds. */
static inline double bench_quantile_ms(const uint32_t *sorted_us, size_t n, unsigned q)
{
    return bench_quantile(sorted_us, n, q) / 1000.0;
}

/*
 * The getopt_long loop of a benchmark's command line (long options only). Every option but
 * --help goes to set(o, c), c being what getopt_long returned and optarg its value; set says
 * whether the value is good. Returns 0, 1 after --help (usage on stdout), or 2 on bad usage
 * (said, with the usage).
 */
static inline int bench_getopt(int argc, char **argv, const struct option *opts, const char *usage,
                               bool (*set)(void *o, int c), void *o, const char *who)
{
    int c;
    bool ok = true;
    while (ok && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 1;
        }
        ok = c != '?' && set(o, c);
    }
    if (!ok || optind != argc) {
        fprintf(stderr, "%s: bad option or value\n%s", who, usage);
        return 2;
    }
    return 0;
}

/* ---- the machine -------------------------------------------------------------------------- */

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

/* 127.0.0.1:port. */
static inline struct sockaddr_in bench_loopback(unsigned port)
{
    return (struct sockaddr_in){.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
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

/* A new directory $TMPDIR/NAME-XXXXXX (TMPDIR: /tmp when unset) into dir (cap bytes). 0, or
 * -1 (said; dir is then ""). */
static inline int bench_make_dir(char *dir, size_t cap, const char *name, const char *who)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/%s-XXXXXX", tmp ? tmp : "/tmp", name);
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "%s: mkdtemp %s: %s\n", who, dir, strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

static inline int bench_remove_entry(const char *path, const struct stat *sb, int flag,
                                     struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* At the end of a run: the directory dir ("" when none was made) is kept with a note when
 * keep (--keep, to look at what the run left), else removed with all it holds. */
static inline void bench_end_dir(const char *dir, bool keep)
{
    if (dir[0] != '\0' && keep) fprintf(stderr, "# kept %s\n", dir);
    if (dir[0] != '\0' && !keep) nftw(dir, bench_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Sets every {NAME, value} of vars (n of them) in the environment the children inherit: how
 * the benchmarks configure wxbank. 0, or -1. */
static inline int bench_setenv(const char *const vars[][2], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (setenv(vars[i][0], vars[i][1], 1) != 0) return -1;
    }
    return 0;
}

/* CPU seconds this process has used so far, every thread, user and system. */
static inline double bench_self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (utime + stime) process pid has used so far, every thread (tid 0) or thread tid
 * alone: fields 14 and 15 of /proc/PID/stat or /proc/PID/task/TID/stat, after the ")" of the
 * name. 0 when pid is not running. */
static inline double bench_proc_cpu(pid_t pid, pid_t tid)
{
    char path[64], buf[1024];
    if (tid == 0) {
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    } else {
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    }
    FILE *f = pid > 0 ? fopen(path, "re") : NULL;
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    for (int field = 2; p != NULL && field < 14; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL) return 0;
    char *end;
    unsigned long long ticks = strtoull(p + 1, &end, 10);
    ticks += strtoull(end, NULL, 10);
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds used so far by this process and by the server under load (0 when there is
 * none), to tell which of the machine's cores' users is the bottleneck. */
struct bench_cpu {
    double self, server;
    int64_t at; /* when taken, monotonic ns */
};

static inline struct bench_cpu bench_cpu_now(pid_t server)
{
    return (struct bench_cpu){bench_self_cpu(), bench_proc_cpu(server, 0), now_ns()};
}

/* "# PHASE: CPU over 5.0 s: client 0.52 cores, server 1.31 cores" since `since`, on stderr;
 * the server's share only when it is our child (server > 0). */
static inline void bench_print_cpu(const struct bench_cpu *since, pid_t server, const char *phase)
{
    struct bench_cpu now = bench_cpu_now(server);
    double wall = (double)(now.at - since->at) / NS;
    fprintf(stderr, "# %s: CPU over %.1f s: client %.2f cores", phase, wall,
            (now.self - since->self) / wall);
    if (server > 0) fprintf(stderr, ", server %.2f cores", (now.server - since->server) / wall);
    fputc('\n', stderr);
}

/* ---- child processes ---------------------------------------------------------------------- */

/*
 * Starts path (PATH searched when it has no '/') with args. Its stdout goes to the file out
 * (created or emptied), or to our stderr when out is NULL: our stdout carries BENCH lines
 * only. Its stderr goes to the file err, or stays ours when err is NULL. 0, or -1 (said).
 */
static inline int bench_spawn(const char *path, char *const args[], const char *out,
                              const char *err, pid_t *pid, const char *who)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out != NULL) {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out, O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
    } else {
        posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    }
    if (err != NULL) {
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err, O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
    }
    int rc = posix_spawnp(pid, path, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot start %s: %s\n", who, path, strerror(rc));
        return -1;
    }
    return 0;
}

/* Runs path with args (out and err as bench_spawn's) to its end. 0 when it exited 0, else -1
 * (said only when it could not start: what failed is the caller's to tell). */
static inline int bench_run(const char *path, char *const args[], const char *out, const char *err,
                            const char *who)
{
    pid_t pid;
    int status;
    if (bench_spawn(path, args, out, err, &pid, who) != 0) return -1;
    bool ok = waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return ok ? 0 : -1;
}

/* The children to stop if the benchmark itself is interrupted (Ctrl-C, SIGTERM), so that no
 * server is left running on its ports: one slot for the server under load, one for a second
 * child (a profiler, another server). */
enum { BENCH_GUARD_SERVER, BENCH_GUARD_AIDE, BENCH_GUARDS };

struct bench_guard {
    volatile sig_atomic_t pid; /* 0: none */
    volatile sig_atomic_t sig; /* what stops it */
};

/* The slots: a function's static, so that a program including this header that guards no
 * child does not hold an unused variable (-Werror). */
static inline struct bench_guard *bench_guards(void)
{
    static struct bench_guard guards[BENCH_GUARDS];
    return guards;
}

static inline void bench_on_interrupt(int sig)
{
    const struct bench_guard *g = bench_guards();
    for (int i = 0; i < BENCH_GUARDS; i++) {
        if (g[i].pid > 0) kill((pid_t)g[i].pid, g[i].sig);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Child pid (0: none any more) takes slot; an interrupted benchmark sends it sig. Installs
 * the handlers, after whatever else took the signals meanwhile (a hub's signal events). */
static inline void bench_guard(int slot, pid_t pid, int sig)
{
    bench_guards()[slot].sig = sig;
    bench_guards()[slot].pid = pid;
    signal(SIGINT, bench_on_interrupt);
    signal(SIGTERM, bench_on_interrupt);
}

/*
 * Waits up to ms, looking every step_ms, until ready(arg) is true of child *pid. Returns the
 * nanoseconds it took; -1 when the child exited first (*pid is then 0 and *status its wait
 * status); -2 when the time ran out. Saying so is the caller's.
 */
static inline int64_t bench_wait_ready(pid_t *pid, long ms, long step_ms, bool (*ready)(void *),
                                       void *arg, int *status)
{
    int64_t t0 = now_ns();
    for (long waited = 0; waited < ms; waited += step_ms) {
        if (waitpid(*pid, status, WNOHANG) == *pid) {
            *pid = 0;
            return -1;
        }
        if (ready(arg)) return now_ns() - t0;
        sleep_ms(step_ms);
    }
    return -2;
}

/* An address a child is to accept connections on. */
struct bench_probe {
    const struct sockaddr *addr;
    socklen_t len;
};

/* Whether something accepts a TCP connection at the bench_probe arg. */
static inline bool bench_accepts(void *arg)
{
    const struct bench_probe *p = arg;
    int fd = socket(p->addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : connect(fd, p->addr, p->len);
    if (fd >= 0) close(fd);
    return rc == 0;
}

/* Waits up to ms, trying every step_ms, until child *pid (name, in messages) accepts
 * connections at addr. Returns the seconds it took, or -1 when it exited first (*pid is then
 * 0) or never did (both said). */
static inline double bench_wait_accepting(pid_t *pid, const struct sockaddr *addr, socklen_t len,
                                          long ms, long step_ms, const char *name, const char *who)
{
    struct bench_probe probe = {addr, len};
    int status = 0;
    int64_t took = bench_wait_ready(pid, ms, step_ms, bench_accepts, &probe, &status);
    if (took == -1) fprintf(stderr, "%s: %s exited (status %d)\n", who, name, status);
    if (took == -2) fprintf(stderr, "%s: %s did not accept within %ld s\n", who, name, ms / 1000);
    return took < 0 ? -1 : (double)took / NS;
}

/* Stops child *pid (name, in messages): SIGTERM, then SIGKILL after ms. *pid is 0 after.
 * Returns 0 when it exited 0 or was not running, else -1 (said). */
static inline int bench_stop(pid_t *pid, long ms, const char *name, const char *who)
{
    if (*pid <= 0) return 0;
    int status = 0;
    kill(*pid, SIGTERM);
    int64_t t0 = now_ns();
    while (waitpid(*pid, &status, WNOHANG) == 0) {
        if (now_ns() - t0 > (int64_t)ms * 1000000) {
            fprintf(stderr, "%s: %s ignored SIGTERM; killing it\n", who, name);
            kill(*pid, SIGKILL);
            waitpid(*pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    *pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: %s ended with status %d\n", who, name, status);
        return -1;
    }
    return 0;
}

/* ---- sockets on epoll --------------------------------------------------------------------- */

#define BENCH_EVENTS 64 /* epoll events taken per wait */

/* A non-blocking TCP connection to addr, Nagle off (a request leaves at once), on epoll ep
 * (edge-triggered, in and out) with ptr as its data. The descriptor, or -1 with errno set and
 * nothing left open. */
static inline int bench_connect(int ep, const struct sockaddr *addr, socklen_t len, void *ptr)
{
    int one = 1, fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, addr, len) == 0) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = ptr};
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0) return fd;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* Writes buf[*off, len) to fd until the socket takes no more; *off moves on. 0, or -1 on an
 * error (said). */
static inline int bench_send(int fd, const uint8_t *buf, size_t *off, size_t len, const char *who)
{
    while (*off < len) {
        ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL);
        if (n > 0) {
            *off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return 0; /* EPOLLOUT (edge-triggered) says when to go on */
        } else {
            fprintf(stderr, "%s: send: %s\n", who, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* How bench_read ended. */
enum {
    BENCH_READ_EMPTY = 0,   /* the socket is empty: its next edge says when there is more */
    BENCH_READ_FAILED = -1, /* take gave up */
    BENCH_READ_CLOSED = -2, /* the peer closed the stream */
    BENCH_READ_RESET = -3   /* the stream broke (reset, or any other error of recv) */
};

/*
 * Reads socket *fd until it is empty (edge-triggered): each read appends to buf (cap bytes,
 * *len of them in use), then take(arg, now) takes what is whole (0, or -1 to give up). *fd
 * is read anew for every read: take may have connected again. A read shorter than the room
 * offered emptied the socket, and bytes arriving later raise a new edge, so the read that
 * would only say EAGAIN is skipped (one system call less per wake-up). Returns how it ended
 * (BENCH_READ_*); says nothing.
 */
static inline int bench_read(const int *fd, uint8_t *buf, size_t cap, size_t *len,
                             int (*take)(void *arg, int64_t now), void *arg)
{
    for (;;) {
        size_t room = cap - *len;
        ssize_t n = recv(*fd, buf + *len, room, 0);
        if (n > 0) {
            *len += (size_t)n;
            if (take(arg, now_ns()) != 0) return BENCH_READ_FAILED;
            if ((size_t)n < room) return BENCH_READ_EMPTY;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return BENCH_READ_EMPTY;
        return n == 0 ? BENCH_READ_CLOSED : BENCH_READ_RESET;
    }
}

/* Waits up to timeout_ns for the sockets on epoll ep and hands each one that is ready to
 * serve(arg, ptr, events), ptr being its data. 0, or -1 when epoll fails or serve gives up. */
static inline int bench_serve(int ep, int64_t timeout_ns,
                              int (*serve)(void *arg, void *ptr, uint32_t events), void *arg)
{
    struct epoll_event ev[BENCH_EVENTS];
    struct timespec ts = {timeout_ns / NS, timeout_ns % NS};
    int n = epoll_pwait2(ep, ev, BENCH_EVENTS, &ts, NULL);
    if (n < 0 && errno != EINTR) return -1;
    for (int i = 0; i < n; i++) {
        if (serve(arg, ev[i].data.ptr, ev[i].events) != 0) return -1;
    }
    return 0;
}

/* ---- the card switch: cards and 0100s ----------------------------------------------------- */

#define BENCH_STAN_MAX 999999 /* STANs run 1..999999 */

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

/* The first max cards of the `seed --pans` file path into a new array *cards (the caller
 * frees it), *n of them; *bad: the lines read that were not cards. 0, or -1 when the file
 * cannot be read (said). */
static inline int bench_load_cards(const char *path, uint32_t max, struct bench_card **cards,
                                   uint32_t *n, uint32_t *bad, const char *who)
{
    FILE *f = fopen(path, "re");
    char line[128];
    uint32_t cap = max < 1024 ? max : 1024;
    if (f == NULL) {
        fprintf(stderr, "%s: %s: %s\n", who, path, strerror(errno));
        return -1;
    }
    *cards = wx_reallocarray(NULL, cap, sizeof **cards);
    *n = *bad = 0;
    while (*n < max && fgets(line, sizeof line, f) != NULL) {
        if (*n == cap) {
            cap = cap <= max / 2 ? 2 * cap : max;
            *cards = wx_reallocarray(*cards, cap, sizeof **cards);
        }
        if (bench_parse_card_line(line, &(*cards)[*n])) {
            (*n)++;
        } else {
            (*bad)++;
        }
    }
    fclose(f);
    return 0;
}

/* The times every request of a run carries (fields 7, 12, 13): the run's start, GMT. */
struct bench_stamp {
    char f7[11]; /* MMDDhhmmss */
    char f12[7]; /* hhmmss */
    char f13[5]; /* MMDD */
};

static inline void bench_stamp_now(struct bench_stamp *s)
{
    time_t now = time(NULL);
    struct tm g;
    gmtime_r(&now, &g);
    strftime(s->f7, sizeof s->f7, "%m%d%H%M%S", &g);
    strftime(s->f12, sizeof s->f12, "%H%M%S", &g);
    strftime(s->f13, sizeof s->f13, "%m%d", &g);
}

/*
 * A 0100 into m as `wxbank pos auth` builds it: card c for fen at a domestic POS (merchant
 * WXBANKBENCH0001 of acquirer 00000000001, named name, in SHANGHAI, CN), stamped when, with
 * STAN stan (6 digits), RRN rrn (12) and terminal tid (8). 0, or -1 when a value breaks its
 * field's spec.
 */
static inline int bench_auth(struct wx_iso_msg *m, const struct bench_card *c, uint64_t fen,
                             const struct bench_stamp *when, const char *stan, const char *rrn,
                             const char *tid, const char *name)
{
    char amount[13] = "", f43[41];
    put_digits((uint8_t *)amount, 12, fen);
    snprintf(f43, sizeof f43, "%-23.23s%-13.13s  CN", name, "SHANGHAI");
    const struct {
        int n;
        const char *value;
    } fields[] = {
        {2, c->pan},     {3, "000000"},   {4, amount},
        {7, when->f7},   {11, stan},      {12, when->f12},
        {13, when->f13}, {14, c->expiry}, {18, "5411"},
        {22, "051"},     {25, "00"},      {32, "00000000001"},
        {37, rrn},       {41, tid},       {42, "WXBANKBENCH0001"},
        {43, f43},       {49, "156"},
    };
    wx_iso_init(m, 100);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (wx_iso_set_str(m, fields[i].n, fields[i].value) != 0) return -1;
    }
    return 0;
}

/*
 * The 0100 of request number id into m: a random card of cards[0..n) for 1.00 to 2.99 yuan
 * (rng draws the card, then the amount), merchant name. STAN, RRN and terminal come from id
 * (STAN id mod BENCH_STAN_MAX + 1, RRN id, terminal "WB" and id / BENCH_STAN_MAX), so no two
 * requests share the host's idempotency key (MTI + STAN + field 7 + acquirer + terminal).
 * 0, or -1 when a value breaks its field's spec.
 */
static inline int bench_auth_numbered(struct wx_iso_msg *m, const struct bench_card *cards,
                                      uint32_t n, uint64_t *rng, const struct bench_stamp *when,
                                      uint64_t id, const char *name)
{
    const struct bench_card *c = &cards[xorshift64(rng) % n];
    uint64_t fen = 100 + xorshift64(rng) % 200;
    char stan[7] = "", rrn[13] = "", tid[9] = "WB";
    put_digits((uint8_t *)stan, 6, id % BENCH_STAN_MAX + 1);
    put_digits((uint8_t *)rrn, 12, id);
    put_digits((uint8_t *)tid + 2, 6, id / BENCH_STAN_MAX);
    return bench_auth(m, c, fen, when, stan, rrn, tid, name);
}

/* m packed in dialect d after its 2-byte length (big-endian), the host's framing, into out
 * (cap bytes). The frame's length, or -1 when it does not fit or a field breaks its spec. */
static inline int bench_frame(enum wx_iso_dialect d, const struct wx_iso_msg *m, uint8_t *out,
                              size_t cap)
{
    size_t len;
    if (cap < 2 || wx_iso_pack(d, m, out + 2, cap - 2, &len) != 0) return -1;
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    return (int)len + 2;
}

/* Field 39 of answer m as a number 0..99; -1 when it is missing or not two digits. */
static inline int bench_code(const struct wx_iso_msg *m)
{
    size_t n = 0;
    const uint8_t *code = wx_iso_get(m, 39, &n);
    if (code == NULL || n != 2 || code[0] < '0' || code[0] > '9' || code[1] < '0' ||
        code[1] > '9') {
        return -1;
    }
    return (code[0] - '0') * 10 + (code[1] - '0');
}

/* " 00=9021 51=12": the response codes that came (codes[k]: answers with code k), on stderr. */
static inline void bench_print_codes(const uint64_t codes[100])
{
    for (int code = 0; code < 100; code++) {
        if (codes[code] > 0) fprintf(stderr, " %02d=%" PRIu64, code, codes[code]);
    }
}

/* ---- the card switch: connections to the host --------------------------------------------- */

#define BENCH_ISO_SLOT    256          /* bytes of one framed request, at most */
#define BENCH_ISO_RING    65536        /* requests in flight per connection; a power of two */
#define BENCH_ISO_OUT_CAP (256u << 10) /* unsent bytes per connection */
#define BENCH_ISO_IN_CAP  (64u << 10)  /* unread answer bytes per connection */
#define BENCH_BLOCKED_NS  100000       /* the wait when the host takes no more bytes */

/* One connection of the card switch (a terminal). The host answers a connection's requests
 * in order, so every answer is the oldest request's in flight. */
struct bench_iso_conn {
    int fd;             /* -1 when closed */
    uint8_t *out;       /* BENCH_ISO_OUT_CAP bytes: frames not yet written */
    size_t out_off;     /* bytes of out already written */
    size_t out_len;     /* bytes of out in use */
    uint8_t *in;        /* BENCH_ISO_IN_CAP bytes: answer bytes not yet decoded */
    size_t in_len;      /* bytes of in in use */
    uint64_t *ring;     /* BENCH_ISO_RING tags of the requests in flight, oldest at head */
    uint32_t head;      /* ring index of the oldest, free-running (mod BENCH_ISO_RING in use) */
    uint32_t in_flight; /* requests sent, not yet answered */
};

/* What a benchmark does with an answer: the frame's body (len bytes) answers the request it
 * tagged tag, the nth (from 0) answered on its connection; it was read at now. */
typedef void bench_iso_take_fn(void *arg, uint64_t tag, uint32_t nth, const uint8_t *body,
                               size_t len, int64_t now);

/* The card switch of a run: its connections to the host on one epoll, and what the
 * benchmark does with every answer. Set who, take and arg; the rest is bench_iso_open's. */
struct bench_iso {
    const char *who;          /* the benchmark, for messages */
    bench_iso_take_fn *take;  /* every answer, in order per connection */
    void *arg;                /* take's */
    int ep;                   /* epoll of the connections */
    struct bench_iso_conn *c; /* the connections (NULL when closed) ... */
    unsigned n;               /* ... of them opened */
};

/* Opens n connections to the host at addr. 0, or -1 (said); bench_iso_close closes what was
 * opened either way. */
static inline int bench_iso_open(struct bench_iso *io, unsigned n, const struct sockaddr *addr,
                                 socklen_t len)
{
    io->c = wx_calloc(n, sizeof *io->c);
    io->n = 0;
    io->ep = epoll_create1(EPOLL_CLOEXEC);
    if (io->ep < 0) {
        fprintf(stderr, "%s: epoll: %s\n", io->who, strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        struct bench_iso_conn *c = &io->c[i];
        *c = (struct bench_iso_conn){.fd = -1,
                                     .out = wx_malloc(BENCH_ISO_OUT_CAP),
                                     .in = wx_malloc(BENCH_ISO_IN_CAP),
                                     .ring = wx_malloc(BENCH_ISO_RING * sizeof *c->ring)};
        io->n = i + 1;
        c->fd = bench_connect(io->ep, addr, len, c);
        if (c->fd < 0) {
            fprintf(stderr, "%s: connect: %s\n", io->who, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static inline void bench_iso_close(struct bench_iso *io)
{
    if (io->c == NULL) return;
    for (unsigned i = 0; i < io->n; i++) {
        struct bench_iso_conn *c = &io->c[i];
        if (c->fd >= 0) close(c->fd);
        free(c->out);
        free(c->in);
        free(c->ring);
    }
    if (io->ep >= 0) close(io->ep);
    free(io->c);
    io->c = NULL;
    io->n = 0;
}

/* Where c's next request goes (BENCH_ISO_SLOT bytes), or NULL when c has no room for one or
 * no place in its ring. bench_iso_sent then commits it. */
static inline uint8_t *bench_iso_slot(struct bench_iso_conn *c)
{
    if (c->in_flight == BENCH_ISO_RING) return NULL;
    if (c->out_len + BENCH_ISO_SLOT > BENCH_ISO_OUT_CAP && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    return c->out_len + BENCH_ISO_SLOT > BENCH_ISO_OUT_CAP ? NULL : c->out + c->out_len;
}

/* The len bytes written at bench_iso_slot(c) are a request in flight, tagged tag. */
static inline void bench_iso_sent(struct bench_iso_conn *c, size_t len, uint64_t tag)
{
    c->out_len += len;
    c->ring[(c->head + c->in_flight++) % BENCH_ISO_RING] = tag;
}

/* Writes what c has queued until the socket takes no more. 0, or -1 on an error (said). */
static inline int bench_iso_flush(const struct bench_iso *io, struct bench_iso_conn *c)
{
    if (bench_send(c->fd, c->out, &c->out_off, c->out_len, io->who) != 0) return -1;
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
    return 0;
}

static inline int bench_iso_flush_all(const struct bench_iso *io)
{
    for (unsigned i = 0; i < io->n; i++) {
        if (bench_iso_flush(io, &io->c[i]) != 0) return -1;
    }
    return 0;
}

/* Requests sent and not yet answered, over every connection. */
static inline uint64_t bench_iso_in_flight(const struct bench_iso *io)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < io->n; i++)
        n += io->c[i].in_flight;
    return n;
}

/* A connection being read, for bench_iso_took. */
struct bench_iso_reading {
    const struct bench_iso *io;
    struct bench_iso_conn *c;
};

/* Hands every whole frame in the input of the connection being read (a bench_iso_reading) to
 * the benchmark, in order. 0, or -1 on a broken stream (said). */
static inline int bench_iso_took(void *arg, int64_t now)
{
    const struct bench_iso_reading *r = arg;
    struct bench_iso_conn *c = r->c;
    size_t off = 0;
    while (c->in_len - off >= 2) {
        size_t n = (size_t)c->in[off] << 8 | c->in[off + 1];
        if (n == 0 || n > WX_ISO_MSG_MAX) {
            fprintf(stderr, "%s: answer frame of %zu bytes\n", r->io->who, n);
            return -1;
        }
        if (c->in_len - off - 2 < n) break;
        if (c->in_flight == 0) {
            fprintf(stderr, "%s: an answer to no request\n", r->io->who);
            return -1;
        }
        uint32_t nth = c->head;
        uint64_t tag = c->ring[c->head++ % BENCH_ISO_RING];
        c->in_flight--;
        r->io->take(r->io->arg, tag, nth, c->in + off + 2, n, now);
        off += 2 + n;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

/* Serves a connection epoll says is ready (bench_serve's serve, arg the bench_iso): takes its
 * answers, writes what waits. 0, or -1 when it is lost or speaks nonsense (said). */
static inline int bench_iso_ready(void *arg, void *ptr, uint32_t events)
{
    struct bench_iso_reading r = {arg, ptr};
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        int end = bench_read(&r.c->fd, r.c->in, BENCH_ISO_IN_CAP, &r.c->in_len, bench_iso_took, &r);
        if (end == BENCH_READ_CLOSED || end == BENCH_READ_RESET) {
            fprintf(stderr, "%s: the host %s a connection\n", r.io->who,
                    end == BENCH_READ_CLOSED ? "closed" : "reset");
        }
        if (end != BENCH_READ_EMPTY) return -1;
    }
    return (events & EPOLLOUT) ? bench_iso_flush(r.io, r.c) : 0;
}

/* Waits up to timeout_ns for the connections and serves them. 0, or -1 on a lost one. */
static inline int bench_iso_wait(struct bench_iso *io, int64_t timeout_ns)
{
    return bench_serve(io->ep, timeout_ns, bench_iso_ready, io);
}

/* Serves the connections until no answer is owed or ms passed. *owed: the answers still
 * owed. 0, or -1 on a lost connection. */
static inline int bench_iso_drain(struct bench_iso *io, long ms, uint64_t *owed)
{
    int64_t deadline = now_ns() + (int64_t)ms * 1000000;
    int rc = 0;
    while (rc == 0 && bench_iso_in_flight(io) > 0 && now_ns() < deadline)
        rc = bench_iso_wait(io, 10000000);
    *owed = bench_iso_in_flight(io);
    return rc;
}

/* ---- the card switch: a steady offered rate ----------------------------------------------- */

/* An offered load: request i is due at t0 + i / rate and is sent then, whatever came back
 * before, its latency counted from then (so a slow answer cannot hide the requests queued
 * behind it: no coordinated omission). */
struct bench_rate {
    int64_t t0;         /* when request 0 is due, monotonic ns */
    unsigned rate;      /* requests per second */
    uint64_t next;      /* the next request to send */
    uint64_t blocked;   /* turns in which a connection had no room: the host was not reading */
    int64_t lag_max_ns; /* the longest a request waited after it was due to be queued */
};

/* When request i is due, monotonic ns. */
static inline int64_t bench_due_ns(const struct bench_rate *r, uint64_t i)
{
    return r->t0 + (int64_t)(i * (uint64_t)NS / r->rate);
}

/*
 * Sends requests r->next up to end (not included), each when due. queue(arg, i, due, now)
 * queues request i, due at due, on a connection of io: false when it has no room, and the
 * request is tried again after BENCH_BLOCKED_NS. The connections are served in between,
 * and once more after the last send, until the next request is due or something arrives.
 * 0, or -1 on a lost connection.
 */
static inline int bench_iso_offer(struct bench_iso *io, struct bench_rate *r, uint64_t end,
                                  bool (*queue)(void *arg, uint64_t i, int64_t due, int64_t now),
                                  void *arg)
{
    int rc = 0;
    while (rc == 0 && r->next < end) {
        int64_t now = now_ns();
        uint64_t due = now < r->t0 ? 0 : (uint64_t)(now - r->t0) * r->rate / NS + 1;
        bool blocked = false;
        for (due = due < end ? due : end; r->next < due && !blocked; r->next += !blocked) {
            int64_t t = bench_due_ns(r, r->next);
            blocked = !queue(arg, r->next, t, now);
            if (!blocked && now - t > r->lag_max_ns) r->lag_max_ns = now - t;
        }
        r->blocked += blocked;
        rc = bench_iso_flush_all(io);
        int64_t wait = blocked ? BENCH_BLOCKED_NS : bench_due_ns(r, r->next) - now_ns();
        if (rc == 0) rc = bench_iso_wait(io, wait > 0 ? wait : 0);
    }
    return rc;
}

#endif
