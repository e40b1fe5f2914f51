/*
 * log.h - one-line, leveled logging to stderr, and the fail-stop exit.
 *
 * Every line carries a UTC timestamp with milliseconds, the level and the file:line where the
 * event was born, so that an error is tagged at its origin (see STYLE.md). The level comes
 * from the WX_LOG_LEVEL environment variable (debug, info, warn, error) on first use, and can
 * be changed later with wx_log_set_level (e.g. from the log.level config key).
 *
 * WX_FATAL is the fail-stop: storage errors and out-of-memory end the process with exit
 * status 1 so that a restart replays the journal; nothing half-done leaves the process.
 */
#ifndef WX_LOG_H
#define WX_LOG_H

#include <stdbool.h>

enum wx_log_level {
    WX_LOG_DEBUG,
    WX_LOG_INFO,
    WX_LOG_WARN,
    WX_LOG_ERROR,
};

/* Sets the minimum level that is written. Thread-safe. */
void wx_log_set_level(enum wx_log_level level);

/* Returns the current minimum level (after reading WX_LOG_LEVEL on first use). */
enum wx_log_level wx_log_get_level(void);

/* True if a line at `level` would be written; the macros test it before formatting. */
bool wx_log_enabled(enum wx_log_level level);

/*
 * Parses "debug", "info", "warn" or "error" (case-insensitive) into *out.
 * Returns 0, or -1 (and leaves *out alone) for any other text.
 */
int wx_log_level_parse(const char *name, enum wx_log_level *out);

/* The fixed name of a level ("DEBUG", "INFO", "WARN", "ERROR"). */
const char *wx_log_level_name(enum wx_log_level level);

/*
 * Writes one line `2026-11-27T03:20:30.123Z INFO  file.c:42 message` to stderr if `level` is
 * enabled. `file` may be a path; only its last component is printed. The line is written
 * with a single stdio call, so lines from different threads never interleave. Messages longer
 * than WX_LOG_LINE_MAX are cut; a trailing newline in fmt is not needed (and is dropped).
 */
void wx_log_at(enum wx_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Logs at ERROR regardless of the level, flushes stderr and ends the process with _exit(1).
 * Safe to call from any thread: no atexit handlers or stdio flushes of other streams run, so
 * nothing half-written is flushed on the way out.
 */
_Noreturn void wx_fatal_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define WX_LOG_(level, ...)                                                                        \
    do {                                                                                           \
        if (wx_log_enabled(level)) wx_log_at((level), __FILE__, __LINE__, __VA_ARGS__);            \
    } while (0)

#define WX_DEBUG(...) WX_LOG_(WX_LOG_DEBUG, __VA_ARGS__)
#define WX_INFO(...)  WX_LOG_(WX_LOG_INFO, __VA_ARGS__)
#define WX_WARN(...)  WX_LOG_(WX_LOG_WARN, __VA_ARGS__)
#define WX_ERROR(...) WX_LOG_(WX_LOG_ERROR, __VA_ARGS__)
#define WX_FATAL(...) wx_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

#endif
