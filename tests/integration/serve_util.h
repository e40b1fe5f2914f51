/*
 * serve_util.h - what integration tests that run `wxbank serve` as a child share: stopping
 * it, and keeping the logs of a work directory for the scan that ends the suite.
 *
 * Work directories are deleted when their tests pass, and with them the only record of what
 * the server wrote. serve_keep_logs copies those logs to $WX_TEST_LOG_DIR first, where
 * tests/scan/pan_scan (ctest: scan/no_card_numbers) looks for full card numbers and the
 * secrets tests registered with serve_forbid, after every other test has run.
 */
#ifndef WX_TESTS_SERVE_UTIL_H
#define WX_TESTS_SERVE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* SIGTERM to *pid, then waits; the server must exit 0 within wait_ms (else SIGKILL). Sets
 * *pid to -1. Returns 0 when it exited 0 in time, -1 otherwise; a pid <= 0 is nothing to
 * stop. */
static inline int serve_stop(pid_t *pid, int wait_ms)
{
    if (*pid <= 0) return 0;
    kill(*pid, SIGTERM);
    int st = 0;
    for (int waited = 0; waited < wait_ms; waited += 10) {
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
            *pid = -1;
            return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
    *pid = -1;
    fprintf(stderr, "wxbank serve did not stop within %d ms of SIGTERM\n", wait_ms);
    return -1;
}

/* mkdir -p: 0, or -1 with errno. */
static inline int serve_mkdirs(const char *path)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Copies the file from to the new file to (replaced if there). 0, or -1 with errno. */
static inline int serve_copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -1;
            break;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                rc = -1;
                break;
            }
            done += w;
        }
        if (rc != 0) break;
    }
    int saved = errno;
    close(in);
    if (close(out) != 0 && rc == 0) {
        saved = errno;
        rc = -1;
    }
    errno = saved;
    return rc;
}

/* True for the names of what programs wrote to be read: *.log, *.out, *.err. Databases,
 * card files (pans.txt) and configurations are left behind on purpose: they hold card
 * numbers by design, and the scan is about what leaks into logs. */
static inline bool serve_is_log(const char *name)
{
    static const char *const ends[] = {".log", ".out", ".err"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        if (n > 4 && strcmp(name + n - 4, ends[i]) == 0) return true;
    }
    return false;
}

/*
 * Copies the logs (serve_is_log) directly in dir to $WX_TEST_LOG_DIR, which is created if
 * needed, as TEST-DIRNAME-NAME: test names one test program, and the work directory's own
 * (mkdtemp-unique) name keeps the copies of its setups apart. Does nothing and returns 0
 * when WX_TEST_LOG_DIR is unset or empty (a test run by hand). Returns 0, or -1 after
 * saying on stderr what could not be copied; a caller's teardown fails then, since a log
 * that is not kept is a log the scan cannot read. Call it before dir is removed.
 */
static inline int serve_keep_logs(const char *test, const char *dir)
{
    const char *keep = getenv("WX_TEST_LOG_DIR");
    if (keep == NULL || keep[0] == '\0') return 0;
    if (serve_mkdirs(keep) != 0) {
        fprintf(stderr, "%s: cannot make %s: %s\n", test, keep, strerror(errno));
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: cannot read %s: %s\n", test, dir, strerror(errno));
        return -1;
    }
    const char *base = strrchr(dir, '/') != NULL ? strrchr(dir, '/') + 1 : dir;
    int rc = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        char from[PATH_MAX], to[PATH_MAX];
        struct stat st;
        if (!serve_is_log(e->d_name)) continue;
        int nf = snprintf(from, sizeof from, "%s/%s", dir, e->d_name);
        if (nf < 0 || nf >= (int)sizeof from) {
            fprintf(stderr, "%s: cannot keep %s: name too long\n", test, e->d_name);
            rc = -1;
            continue;
        }
        if (lstat(from, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        int n = snprintf(to, sizeof to, "%s/%s-%s-%s", keep, test, base, e->d_name);
        if (n < 0 || n >= (int)sizeof to || serve_copy_file(from, to) != 0) {
            fprintf(stderr, "%s: cannot keep %s in %s: %s\n", test, e->d_name, keep,
                    n < 0 || n >= (int)sizeof to ? "name too long" : strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

/*
 * Registers a secret a test uses (a password, say) that must appear in no kept log: one line
 * appended to $WX_TEST_LOG_DIR/forbidden.txt, which the scan reads and never prints. Nothing
 * when WX_TEST_LOG_DIR is unset or empty. A secret with a line break cannot be registered.
 * Returns 0, or -1 after saying why on stderr (never the secret).
 */
static inline int serve_forbid(const char *secret)
{
    const char *keep = getenv("WX_TEST_LOG_DIR");
    if (keep == NULL || keep[0] == '\0') return 0;
    char path[PATH_MAX];
    size_t len = strlen(secret);
    if (len == 0 || strcspn(secret, "\r\n") != len || serve_mkdirs(keep) != 0 ||
        snprintf(path, sizeof path, "%s/forbidden.txt", keep) >= (int)sizeof path) {
        fprintf(stderr, "cannot register a secret in %s/forbidden.txt\n", keep);
        return -1;
    }
    /* One write of the whole line with O_APPEND: tests running side by side do not mix
     * their lines. */
    char *line = malloc(len + 2);
    if (line == NULL) return -1;
    memcpy(line, secret, len);
    line[len] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ssize_t w = fd >= 0 ? write(fd, line, len + 1) : -1;
    if (fd >= 0) close(fd);
    free(line);
    if (w != (ssize_t)(len + 1)) {
        fprintf(stderr, "cannot register a secret in %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * The end of a test's work directory: its logs kept for the scan (serve_keep_logs), then the
 * directory goes, unless the test failed or WX_KEEP_WORKDIR is set: then it stays, named on
 * stderr, for whoever looks into it. 0, or -1 when the logs or the directory could not be
 * handled.
 */
static inline int serve_finish(const char *test, const char *workdir, bool failed)
{
    int rc = serve_keep_logs(test, workdir);
    if (failed || rc != 0 || getenv("WX_KEEP_WORKDIR") != NULL) {
        fprintf(stderr, "work directory kept: %s\n", workdir);
        return rc;
    }
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", workdir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
