/*
 * test_log.c - the line format, level filtering, WX_LOG_LEVEL, whole lines from many threads,
 * and WX_FATAL's exit status. stderr is pointed at a temporary file to read what was written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/alloc.h"
#include "util/limits.h"
#include "util/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char log_path[64];
static int saved_stderr = -1;

/* Sends stderr (fd 2) to a fresh temporary file. */
static void capture_begin(void)
{
    snprintf(log_path, sizeof log_path, "/tmp/wx_test_log_%d", (int)getpid());
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    assert_true(dup2(fd, 2) == 2);
    close(fd);
}

/* Restores stderr; returns what was written (caller frees). */
static char *capture_end(void)
{
    fflush(stderr);
    assert_true(dup2(saved_stderr, 2) == 2);
    close(saved_stderr);
    FILE *f = fopen(log_path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(log_path);
    return buf;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ " at the start of line. */
static void assert_timestamp(const char *line)
{
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; shape[i] != '\0'; i++) {
        if (shape[i] == 'd') {
            if (line[i] < '0' || line[i] > '9') fail_msg("bad timestamp in: %s", line);
        } else if (line[i] != shape[i]) {
            fail_msg("bad timestamp in: %s", line);
        }
    }
}

static void test_line_format_and_levels(void **state)
{
    (void)state;
    wx_log_set_level(WX_LOG_INFO);
    capture_begin();
    WX_DEBUG("hidden %d", 1);
    WX_INFO("card %s approved", "622588******1234");
    WX_WARN("two\n");
    wx_log_at(WX_LOG_ERROR, "/a/b/c/file.c", 42, "message");
    char *out = capture_end();

    assert_null(strstr(out, "hidden"));
    char *first = out;
    char *second = strchr(first, '\n') + 1;
    char *third = strchr(second, '\n') + 1;
    assert_timestamp(first);
    assert_timestamp(second);
    assert_timestamp(third);
    assert_true(strncmp(first + 25, "INFO  test_log.c:", 17) == 0);
    assert_non_null(strstr(first, " card 622588******1234 approved\n"));
    assert_true(strncmp(second + 25, "WARN  test_log.c:", 17) == 0);
    assert_non_null(strstr(second, " two\n")); /* the trailing newline is not doubled */
    assert_string_equal(third + 25, "ERROR file.c:42 message\n");
    free(out);

    /* Raising the level hides INFO and WARN. */
    wx_log_set_level(WX_LOG_ERROR);
    assert_false(wx_log_enabled(WX_LOG_WARN));
    assert_true(wx_log_enabled(WX_LOG_ERROR));
    capture_begin();
    WX_WARN("hidden");
    WX_ERROR("shown");
    out = capture_end();
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "shown"));
    free(out);
    wx_log_set_level(WX_LOG_INFO);
}

static void test_long_message_is_cut(void **state)
{
    (void)state;
    char *big = malloc(WX_LOG_LINE_MAX * 2);
    assert_non_null(big);
    memset(big, 'x', WX_LOG_LINE_MAX * 2 - 1);
    big[WX_LOG_LINE_MAX * 2 - 1] = '\0';
    capture_begin();
    WX_INFO("%s", big);
    char *out = capture_end();
    assert_int_equal(strlen(out), WX_LOG_LINE_MAX - 1);
    assert_int_equal(out[WX_LOG_LINE_MAX - 2], '\n');
    free(out);
    free(big);
}

static void test_level_parse(void **state)
{
    (void)state;
    enum wx_log_level l = WX_LOG_INFO;
    assert_int_equal(wx_log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, WX_LOG_DEBUG);
    assert_int_equal(wx_log_level_parse("warn", &l), 0);
    assert_int_equal(l, WX_LOG_WARN);
    assert_int_equal(wx_log_level_parse("warning", &l), -1);
    assert_int_equal(l, WX_LOG_WARN);
    assert_string_equal(wx_log_level_name(WX_LOG_ERROR), "ERROR");
}

/* Runs fn in a child process with stderr captured; returns the exit status. */
static int run_child(void (*fn)(void), char **out)
{
    capture_begin();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *out = capture_end();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A forked child inherits the parent's level (set to DEBUG before the fork). */
static void child_debug_line(void)
{
    WX_DEBUG("debug visible");
}

static void child_fatal(void)
{
    WX_FATAL("disk on fire: %d", 5);
}

static void child_oom(void)
{
    (void)wx_reallocarray(NULL, SIZE_MAX / 2, 4);
}

static void test_fatal_exits_1(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run_child(child_fatal, &out), 1);
    assert_non_null(strstr(out, "ERROR test_log.c:"));
    assert_non_null(strstr(out, "disk on fire: 5\n"));
    free(out);
    assert_int_equal(run_child(child_oom, &out), 1);
    assert_non_null(strstr(out, "allocation size overflow"));
    free(out);
    wx_log_set_level(WX_LOG_DEBUG);
    assert_int_equal(run_child(child_debug_line, &out), 0);
    assert_non_null(strstr(out, "DEBUG test_log.c:"));
    free(out);
    wx_log_set_level(WX_LOG_INFO);
}

enum { THREADS = 4, LINES = 500 };

static void *log_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES; i++) {
        WX_INFO("thread %d line %d %s", id, i, "padding-padding-padding-padding-padding");
    }
    return NULL;
}

static void test_threads_write_whole_lines(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    capture_begin();
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    char *out = capture_end();
    int lines = 0;
    for (char *line = out; *line != '\0'; line = strchr(line, '\n') + 1) {
        assert_timestamp(line);
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        assert_true(nl - line > 7 && strncmp(nl - 7, "padding", 7) == 0);
        lines++;
    }
    assert_int_equal(lines, THREADS * LINES);
    free(out);
}

/* WX_LOG_LEVEL is read once, on first use: checked in a fresh process image via exec. */
static void test_env_level(void **state)
{
    (void)state;
    const char *self = getenv("WX_TEST_LOG_SELF");
    if (self != NULL) return; /* we are the exec'd child; handled in main */
    capture_begin();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("WX_TEST_LOG_SELF", "1", 1);
        setenv("WX_LOG_LEVEL", "debug", 1);
        execl("/proc/self/exe", "test_log", (char *)NULL);
        _exit(99);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char *out = capture_end();
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(strstr(out, "DEBUG test_log.c:"));
    assert_non_null(strstr(out, "from the environment"));
    free(out);
}

int main(void)
{
    if (getenv("WX_TEST_LOG_SELF") != NULL) {
        WX_DEBUG("debug from the environment");
        return wx_log_get_level() == WX_LOG_DEBUG ? 0 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format_and_levels),
        cmocka_unit_test(test_long_message_is_cut),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_fatal_exits_1),
        cmocka_unit_test(test_threads_write_whole_lines),
        cmocka_unit_test(test_env_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
