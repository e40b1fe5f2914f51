/*
 * serve_util.h - what integration tests that run `wxbank serve` as a child share.
 */
#ifndef WX_TESTS_SERVE_UTIL_H
#define WX_TESTS_SERVE_UTIL_H

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

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

#endif
