/*
 * log.c - formats log lines into a stack buffer and hands each to stderr in one call.
 *
 * The level is an atomic int so the hot path's "is DEBUG on?" test is one load. The
 * WX_LOG_LEVEL environment variable is read exactly once (pthread_once), the first time the
 * level is asked for or set, so an explicit wx_log_set_level always wins over the environment.
 */
#include "util/log.h"

#include "util/limits.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = WX_LOG_INFO;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static void log_init_from_env(void)
{
    const char *env = getenv("WX_LOG_LEVEL");
    enum wx_log_level level;

    if (env == NULL || env[0] == '\0') return;
    if (wx_log_level_parse(env, &level) == 0) {
        atomic_store(&log_level, (int)level);
        return;
    }
    /* Not fatal: a bad log level should not stop a bank; say so once and keep INFO. */
    fprintf(stderr, "wxbank: WX_LOG_LEVEL=%.32s is not debug, info, warn or error; using info\n",
            env);
}

int wx_log_level_parse(const char *name, enum wx_log_level *out)
{
    assert(name != NULL);
    assert(out != NULL);
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, lower[i]) == 0) {
            *out = (enum wx_log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *wx_log_level_name(enum wx_log_level level)
{
    assert(level >= WX_LOG_DEBUG && level <= WX_LOG_ERROR);
    return level_names[level];
}

void wx_log_set_level(enum wx_log_level level)
{
    assert(level >= WX_LOG_DEBUG && level <= WX_LOG_ERROR);
    pthread_once(&log_once, log_init_from_env);
    atomic_store(&log_level, (int)level);
}

enum wx_log_level wx_log_get_level(void)
{
    pthread_once(&log_once, log_init_from_env);
    return (enum wx_log_level)atomic_load(&log_level);
}

bool wx_log_enabled(enum wx_log_level level)
{
    return (int)level >= (int)wx_log_get_level();
}

static const char *base_name(const char *file)
{
    const char *slash = strrchr(file, '/');
    return slash != NULL ? slash + 1 : file;
}

/*
 * Formats the whole line into buf (capacity WX_LOG_LINE_MAX) and returns its length,
 * newline included. Never fails: an over-long message is cut and still ends in '\n'.
 */
static size_t log_format(char *buf, enum wx_log_level level, const char *file, int line,
                         const char *fmt, va_list ap)
{
    struct timespec ts;
    struct tm tm;
    size_t cap = WX_LOG_LINE_MAX - 1; /* room for the newline */

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s:%d ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(ts.tv_nsec / 1000000), level_names[level], base_name(file), line);
    size_t len = n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
    int m = vsnprintf(buf + len, cap - len, fmt, ap);
    if (m > 0) len += (size_t)m >= cap - len ? cap - len - 1 : (size_t)m;
    while (len > 0 && buf[len - 1] == '\n') {
        len--;
    }
    buf[len++] = '\n';
    return len;
}

void wx_log_at(enum wx_log_level level, const char *file, int line, const char *fmt, ...)
{
    assert(level >= WX_LOG_DEBUG && level <= WX_LOG_ERROR);
    assert(file != NULL && fmt != NULL);
    if (!wx_log_enabled(level)) return;

    char buf[WX_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t len = log_format(buf, level, file, line, fmt, ap);
    va_end(ap);
    fwrite(buf, 1, len, stderr);
}

_Noreturn void wx_fatal_at(const char *file, int line, const char *fmt, ...)
{
    char buf[WX_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t len = log_format(buf, WX_LOG_ERROR, file, line, fmt, ap);
    va_end(ap);
    fflush(stderr);
    /* write(2) directly: another thread may hold the stderr lock forever. */
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(STDERR_FILENO, buf + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    _exit(1);
}
