/*
 * test_journal.c - the journal writer (group commit, backpressure, durability), the reader
 * (order, ranges, gap detection, speed) and snapshots (write, find, verify, prune, fork).
 *
 * Throughput figures are printed as BENCH lines, not asserted: this machine is shared. Set
 * WX_JOURNAL_PERF=1 for the 1,000,000-row figure; the default run uses 100,000 rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/journal.h"
#include "store/store.h"
#include "util/limits.h"

struct fixture {
    char dir[64]; /* mkdtemp directory, removed with everything in it */
    char db[128]; /* dir/journal.db */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wxjournal-XXXXXX");
    if (mkdtemp(f->dir) == NULL) return -1;
    snprintf(f->db, sizeof f->db, "%s/journal.db", f->dir);
    *state = f;
    return 0;
}

static int count_files(const char *dir, const char *needle)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strstr(e->d_name, needle) != NULL) n++;
    if (d != NULL) closedir(d);
    return n;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char path[512];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
        unlink(path);
    }
    if (d != NULL) closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A row whose every field and byte is a function of seq, so a reader can check it. */
static void make_row(uint64_t seq, uint32_t len, uint8_t *buf, struct wx_journal_row *r)
{
    for (uint32_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 31 + i);
    r->seq = seq;
    r->at_ms = 1700000000000LL + (int64_t)seq;
    r->account_id = (uint32_t)(seq * 2654435761u);
    r->kind = (uint8_t)(seq % 7);
    r->len = len;
    r->body = buf;
}

/* Lengths cover 0, 1 and WX_ROW_MAX. */
static uint32_t len_for(uint64_t seq)
{
    return (uint32_t)((seq * 37) % (WX_ROW_MAX + 1));
}

static void append_n(wx_journal_t *j, uint64_t n, unsigned flush_every)
{
    uint8_t buf[WX_ROW_MAX];
    struct wx_journal_row r;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = wx_journal_last_seq(j) + 1;
        make_row(seq, len_for(seq), buf, &r);
        wx_journal_append(j, &r);
        if (flush_every != 0 && seq % flush_every == 0) wx_journal_flush(j);
    }
}

struct check {
    uint64_t next;  /* the seq expected next */
    uint64_t stop;  /* stop (returning 7) at this seq; 0: never */
    bool fixed_len; /* rows were made with len 80 */
};

static int check_row(void *ctx, const struct wx_journal_row *row)
{
    struct check *c = ctx;
    uint8_t buf[WX_ROW_MAX];
    struct wx_journal_row want;
    make_row(c->next, c->fixed_len ? 80 : len_for(c->next), buf, &want);
    assert_int_equal(row->seq, want.seq);
    assert_int_equal(row->at_ms, want.at_ms);
    assert_int_equal(row->account_id, want.account_id);
    assert_int_equal(row->kind, want.kind);
    assert_int_equal(row->len, want.len);
    if (want.len > 0) assert_memory_equal(row->body, want.body, want.len);
    c->next++;
    return row->seq == c->stop ? 7 : 0;
}

static void test_append_scan(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(wx_journal_last_seq(j), 0);
    append_n(j, 1500, 100);
    wx_journal_wait(j, 1500);
    assert_int_equal(wx_journal_durable_seq(j), 1500);
    wx_journal_close(j);

    struct check c = {.next = 1};
    assert_int_equal(wx_journal_scan(f->db, 0, 0, check_row, &c, err, sizeof err), 0);
    assert_int_equal(c.next, 1501);
    c = (struct check){.next = 501};
    assert_int_equal(wx_journal_scan(f->db, 500, 700, check_row, &c, err, sizeof err), 0);
    assert_int_equal(c.next, 701);
    c = (struct check){.next = 1, .stop = 42};
    assert_int_equal(wx_journal_scan(f->db, 0, 0, check_row, &c, err, sizeof err), 7);
    assert_int_equal(c.next, 43);
    c = (struct check){.next = 1001};
    assert_int_equal(wx_journal_scan(f->db, 1000, 1501, check_row, &c, err, sizeof err),
                     WX_JOURNAL_ESHORT);
    assert_non_null(strstr(err, "1500"));

    /* Reopen: the seq continues where it was. */
    j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(wx_journal_last_seq(j), 1500);
    assert_int_equal(wx_journal_durable_seq(j), 1500);
    append_n(j, 10, 0);
    wx_journal_close(j); /* close makes everything durable */
    c = (struct check){.next = 1};
    assert_int_equal(wx_journal_scan(f->db, 0, 0, check_row, &c, err, sizeof err), 0);
    assert_int_equal(c.next, 1511);
}

static void test_open_fails_cleanly(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(wx_journal_open("/nonexistent-dir/x.db", err, sizeof err));
    assert_true(err[0] != '\0');
    struct check c = {.next = 1};
    assert_int_equal(wx_journal_scan("/nonexistent-dir/x.db", 0, 0, check_row, &c, err, sizeof err),
                     WX_JOURNAL_EIO);
}

/* A reader thread that checks durable_seq against what a separate connection sees. */
struct watcher {
    wx_journal_t *j;
    const char *db;
    atomic_bool stop;
    uint64_t checks;     /* comparisons made */
    uint64_t violations; /* durable_seq ahead of what the connection saw (cmocka asserts
                            belong on the main thread, so this thread only counts) */
};

static void *watch(void *arg)
{
    struct watcher *w = arg;
    sqlite3 *db = NULL;
    char err[256];
    sqlite3_stmt *st = NULL;
    if (wx_store_open(w->db, true, &db, err, sizeof err) != 0 ||
        sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM journal", -1, &st, NULL) !=
            SQLITE_OK) {
        w->violations++;
        atomic_store(&w->stop, true);
    }
    while (!atomic_load(&w->stop)) {
        uint64_t durable = wx_journal_durable_seq(w->j);
        if (sqlite3_step(st) != SQLITE_ROW) w->violations++;
        uint64_t seen = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (durable > seen) w->violations++;
        w->checks++;
    }
    sqlite3_finalize(st);
    wx_store_close(db);
    return NULL;
}

static void test_durable_never_ahead(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    struct watcher w = {.j = j, .db = f->db};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, watch, &w), 0);
    sqlite3 *db = NULL;
    assert_int_equal(wx_store_open(f->db, true, &db, err, sizeof err), 0);
    for (int round = 0; round < 50; round++) {
        append_n(j, 97, 13);
        wx_journal_wait(j, wx_journal_last_seq(j));
        /* Right after wait returns, a fresh read transaction must see every durable row. */
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT max(seq) FROM journal", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_true((uint64_t)sqlite3_column_int64(st, 0) >= wx_journal_durable_seq(j));
        sqlite3_finalize(st);
    }
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    assert_true(w.checks > 0);
    assert_int_equal(w.violations, 0);
    wx_store_close(db);
    wx_journal_close(j);
}

static void test_group_commit_batches(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    const uint64_t n = 20000;
    append_n(j, n, 1); /* a burst, flushed after every row */
    wx_journal_wait(j, n);
    struct wx_journal_stats s;
    wx_journal_stats(j, &s);
    printf("group commit: %llu rows in %llu commits\n", (unsigned long long)s.rows,
           (unsigned long long)s.commits);
    assert_int_equal(s.rows, n);
    assert_true(s.commits < n / 2);
    assert_true(s.bytes > 0);
    wx_journal_close(j);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Checkpoints run off the committer while the journal is open: the database file grows as
 * the WAL is copied into it, and once copied the WAL starts over (and its file is cut back)
 * instead of holding the whole journal. A writer this fast outruns the low-priority
 * checkpointer during the burst; the test waits for it to catch up, as it does after any
 * burst, before the next write lets the WAL start over. */
static void test_checkpoints_while_open(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    const uint64_t n = 300000; /* ~60 MiB of rows: many checkpoint thresholds */
    append_n(j, n, 256);
    wx_journal_wait(j, n);
    long db = 0;
    /* The WAL starts over at the first write after a checkpoint has copied all of it: write
     * a row every 20 ms until it does (up to 20 s on a slow disk). */
    uint64_t extra = 0;
    for (int i = 0; i < 1000 && file_size(wal) > (64L << 20); i++) {
        usleep(20000);
        append_n(j, 1, 1);
        extra++;
        wx_journal_wait(j, n + extra);
    }
    db = file_size(f->db);
    printf("checkpoints: database %ld bytes, WAL %ld bytes\n", db, file_size(wal));
    assert_true(db >= (48L << 20));             /* the burst was copied into the database */
    assert_true(file_size(wal) <= (64L << 20)); /* it held > 80 MiB before starting over */
    /* Reads see every row, wherever it is. */
    struct check c = {.next = 1};
    assert_int_equal(wx_journal_scan(f->db, 0, 0, check_row, &c, err, sizeof err), 0);
    assert_int_equal(c.next, n + extra + 1);
    wx_journal_close(j);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* With a commit gap, rows flushed one by one over a while share a few commits; a full
 * batch does not wait for the gap. */
static void test_commit_gap(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    wx_journal_set_commit_gap(j, 20000); /* 20 ms */
    uint64_t t0 = now_us();
    while (now_us() - t0 < 100000) { /* 100 ms of rows, each flushed at once */
        append_n(j, 1, 1);
        usleep(200);
    }
    uint64_t n = wx_journal_last_seq(j);
    wx_journal_wait(j, n);
    struct wx_journal_stats st;
    wx_journal_stats(j, &st);
    printf("commit gap 20 ms: %llu rows in %llu commits over ~100 ms\n", (unsigned long long)n,
           (unsigned long long)st.commits);
    assert_true(n > 50);
    assert_true(st.commits <= 8);
    /* A full batch goes at once, gap or not. */
    wx_journal_set_commit_gap(j, WX_COMMIT_GAP_MAX_US);
    wx_journal_set_batch_max(j, 10);
    append_n(j, 1, 1); /* starts a commit now: the next may not start for 100 ms */
    wx_journal_wait(j, n + 1);
    t0 = now_us();
    append_n(j, 10, 0);
    wx_journal_wait(j, n + 11);
    assert_true(now_us() - t0 < 80000);
    wx_journal_close(j);
}

static void test_backpressure(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    const unsigned max = 4;
    wx_journal_set_batch_max(j, max);
    uint8_t buf[WX_ROW_MAX];
    struct wx_journal_row r;
    for (uint64_t seq = 1; seq <= 600; seq++) {
        make_row(seq, len_for(seq), buf, &r);
        wx_journal_append(j, &r); /* never flushed: only fullness moves batches */
        /* At most one open and one committing batch can be in flight. */
        assert_true(wx_journal_last_seq(j) - wx_journal_durable_seq(j) <= 2 * max);
    }
    wx_journal_wait(j, 600);
    struct wx_journal_stats s;
    wx_journal_stats(j, &s);
    assert_int_equal(s.rows, 600);
    assert_true(s.commits >= 600 / max);
    wx_journal_close(j);
}

static void test_wait_flushes_and_notifies(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    int fd = wx_journal_notify_fd(j);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    append_n(j, 3, 0); /* not flushed: wait must flush or it would hang */
    wx_journal_wait(j, 2);
    assert_true(wx_journal_durable_seq(j) >= 2);
    assert_int_equal(poll(&p, 1, 1000), 1);
    wx_journal_notify_drain(j);
    assert_int_equal(poll(&p, 1, 0), 0);
    wx_journal_notify_drain(j); /* nothing to drain: no block, no error */
    wx_journal_wait(j, 3);
    wx_journal_wait(j, 0);
    wx_journal_close(j);
}

static void test_scan_detects_gap(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    append_n(j, 10, 0);
    wx_journal_close(j);
    sqlite3 *db = NULL;
    assert_int_equal(wx_store_open(f->db, false, &db, err, sizeof err), 0);
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO journal VALUES(12, 0, 0, 0, x'00')", NULL, NULL, NULL),
        SQLITE_OK);
    wx_store_close(db);
    struct check c = {.next = 1};
    assert_int_equal(wx_journal_scan(f->db, 0, 0, check_row, &c, err, sizeof err),
                     WX_JOURNAL_ECORRUPT);
    assert_non_null(strstr(err, "expected seq 11"));
    assert_int_equal(c.next, 11); /* rows before the gap were delivered */
    c = (struct check){.next = 1};
    assert_int_equal(wx_journal_scan(f->db, 0, 10, check_row, &c, err, sizeof err), 0);
    /* A gap right at the start of the range counts too. */
    c = (struct check){.next = 12};
    assert_int_equal(wx_journal_scan(f->db, 10, 0, check_row, &c, err, sizeof err),
                     WX_JOURNAL_ECORRUPT);
}

static int count_row(void *ctx, const struct wx_journal_row *row)
{
    uint64_t *n = ctx;
    (*n)++;
    return row->seq == *n ? 0 : 1;
}

static void test_throughput(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    const char *perf = getenv("WX_JOURNAL_PERF");
    const uint64_t n = perf != NULL && perf[0] == '1' ? 1000000 : 100000;
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    uint8_t buf[80];
    struct wx_journal_row r;
    double t0 = now_s();
    for (uint64_t seq = 1; seq <= n; seq++) {
        make_row(seq, sizeof buf, buf, &r);
        wx_journal_append(j, &r);
        if (seq % 256 == 0) wx_journal_flush(j);
    }
    wx_journal_wait(j, n);
    double t1 = now_s();
    struct wx_journal_stats s;
    wx_journal_stats(j, &s);
    wx_journal_close(j);
    printf("BENCH journal_append_durable %.0f rows/s\n", (double)n / (t1 - t0));
    printf("  (%llu rows of 80 B, flush every 256: %llu commits, %.0f rows/commit, "
           "%.0f us/commit)\n",
           (unsigned long long)n, (unsigned long long)s.commits, (double)s.rows / (double)s.commits,
           (double)s.commit_us_total / (double)s.commits);

    uint64_t seen = 0;
    t0 = now_s();
    assert_int_equal(wx_journal_scan(f->db, 0, 0, count_row, &seen, err, sizeof err), 0);
    t1 = now_s();
    assert_int_equal(seen, n);
    printf("BENCH journal_scan %.0f rows/s\n", (double)n / (t1 - t0));
    struct check c = {.next = n - 999, .fixed_len = true};
    assert_int_equal(wx_journal_scan(f->db, n - 1000, 0, check_row, &c, err, sizeof err), 0);
}

/* ---- snapshots ---------------------------------------------------------------------- */

struct payload {
    uint64_t len; /* bytes to write */
    uint8_t salt; /* varies the content per snapshot */
    int fail;     /* return this instead of writing everything */
};

static uint8_t payload_byte(const struct payload *p, uint64_t i)
{
    return (uint8_t)((i * 131 + p->salt) ^ (i >> 9));
}

static int write_payload(void *ctx, FILE *out)
{
    const struct payload *p = ctx;
    for (uint64_t i = 0; i < p->len; i++) {
        if (p->fail != 0 && i == p->len / 2) return p->fail;
        if (fputc(payload_byte(p, i), out) == EOF) return -1;
    }
    return 0;
}

/* Opens path and checks it holds seq and p's payload. */
static void check_snapshot(const char *path, uint64_t seq, const struct payload *p)
{
    char err[256];
    uint64_t got_seq = 0, len = 0;
    FILE *in = NULL;
    assert_int_equal(wx_snapshot_open(path, &got_seq, &len, &in, err, sizeof err), 0);
    assert_int_equal(got_seq, seq);
    assert_int_equal(len, p->len);
    for (uint64_t i = 0; i < len; i++) {
        int ch = fgetc(in);
        assert_int_equal(ch, payload_byte(p, i));
    }
    fclose(in);
}

static void flip_byte(const char *path, long offset)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, offset, SEEK_SET), 0);
    int ch = fgetc(fp);
    assert_int_equal(fseek(fp, offset, SEEK_SET), 0);
    fputc(ch ^ 0x40, fp);
    fclose(fp);
}

static void test_snapshot_write_find_open(void **state)
{
    struct fixture *f = *state;
    char path[512], err[256];
    uint64_t seq = 0;
    assert_int_equal(wx_snapshot_find(f->db, UINT64_MAX, path, sizeof path, &seq), 0);
    struct payload p10 = {.len = 3u << 20, .salt = 1}; /* larger than the 1 MiB stream buffer */
    struct payload p20 = {.len = 1000, .salt = 2};
    struct payload p30 = {.len = 0, .salt = 3};
    assert_int_equal(wx_snapshot_write_now(f->db, 10, write_payload, &p10), 0);
    assert_int_equal(wx_snapshot_write_now(f->db, 20, write_payload, &p20), 0);
    assert_int_equal(wx_snapshot_write_now(f->db, 30, write_payload, &p30), 0);
    assert_int_equal(count_files(f->dir, ".tmp"), 0);

    assert_int_equal(wx_snapshot_find(f->db, UINT64_MAX, path, sizeof path, &seq), 1);
    assert_int_equal(seq, 30);
    check_snapshot(path, 30, &p30);
    /* max_seq is respected. */
    assert_int_equal(wx_snapshot_find(f->db, 29, path, sizeof path, &seq), 1);
    assert_int_equal(seq, 20);
    check_snapshot(path, 20, &p20);
    assert_int_equal(wx_snapshot_find(f->db, 9, path, sizeof path, &seq), 0);

    /* A flipped payload byte: open refuses it, find skips to the older one. */
    flip_byte(path, 24 + 500);
    uint64_t s, len;
    FILE *in = NULL;
    assert_int_equal(wx_snapshot_open(path, &s, &len, &in, err, sizeof err), WX_JOURNAL_ECORRUPT);
    assert_null(in);
    assert_non_null(strstr(err, "SHA-256"));
    assert_int_equal(wx_snapshot_find(f->db, 29, path, sizeof path, &seq), 1);
    assert_int_equal(seq, 10);
    check_snapshot(path, 10, &p10);

    /* A torn temporary file and a torn final-name file are both ignored. */
    char torn[512];
    snprintf(torn, sizeof torn, "%s.snap-%020llu.tmp-999", f->db, 40ULL);
    FILE *fp = fopen(torn, "wb");
    fputs("WXSNAP01 torn", fp);
    fclose(fp);
    snprintf(torn, sizeof torn, "%s.snap-%020llu", f->db, 50ULL);
    fp = fopen(torn, "wb");
    fputs("WXSNAP01\x32\0\0\0\0\0\0\0", fp);
    fclose(fp);
    assert_int_equal(wx_snapshot_find(f->db, UINT64_MAX, path, sizeof path, &seq), 1);
    assert_int_equal(seq, 30);

    /* A header whose seq disagrees with the file name is refused. */
    snprintf(torn, sizeof torn, "%s.snap-%020llu", f->db, 60ULL);
    snprintf(path, sizeof path, "%s.snap-%020llu", f->db, 30ULL);
    assert_int_equal(link(path, torn), 0);
    assert_int_equal(wx_snapshot_open(torn, &s, &len, &in, err, sizeof err), WX_JOURNAL_ECORRUPT);
    assert_int_equal(wx_snapshot_find(f->db, UINT64_MAX, path, sizeof path, &seq), 1);
    assert_int_equal(seq, 30);
}

static void test_snapshot_failure_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    char path[512];
    uint64_t seq;
    struct payload bad = {.len = 4096, .fail = 5};
    assert_int_equal(wx_snapshot_write_now(f->db, 7, write_payload, &bad), WX_JOURNAL_EIO);
    assert_int_equal(count_files(f->dir, ".snap-"), 0);
    pid_t child = 0;
    assert_int_equal(wx_snapshot_start(f->db, 8, write_payload, &bad, &child), 0);
    assert_true(wx_snapshot_poll(child, true) < 0);
    assert_int_equal(count_files(f->dir, ".snap-"), 0);
    assert_int_equal(wx_snapshot_find(f->db, UINT64_MAX, path, sizeof path, &seq), 0);
}

static void test_snapshot_prune(void **state)
{
    struct fixture *f = *state;
    char path[512];
    uint64_t seq;
    struct payload p = {.len = 100};
    for (uint64_t s = 1; s <= 5; s++)
        assert_int_equal(wx_snapshot_write_now(f->db, s * 100, write_payload, &p), 0);
    /* The newest is corrupt: it must not count towards keep. */
    snprintf(path, sizeof path, "%s.snap-%020llu", f->db, 500ULL);
    flip_byte(path, 30);
    wx_snapshot_prune(f->db, 2);
    assert_int_equal(count_files(f->dir, ".snap-"), 2);
    assert_int_equal(wx_snapshot_find(f->db, UINT64_MAX, path, sizeof path, &seq), 1);
    assert_int_equal(seq, 400);
    assert_int_equal(wx_snapshot_find(f->db, 399, path, sizeof path, &seq), 1);
    assert_int_equal(seq, 300);
    assert_int_equal(wx_snapshot_find(f->db, 299, path, sizeof path, &seq), 0);
    wx_snapshot_prune(f->db, 0);
    assert_int_equal(count_files(f->dir, ".snap-"), 0);
}

static void test_snapshot_forked(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", path[512];
    uint64_t seq = 0;
    /* Fork with the committer thread running, as the server does. */
    wx_journal_t *j = wx_journal_open(f->db, err, sizeof err);
    assert_non_null(j);
    append_n(j, 100, 10);
    struct payload p = {.len = 2u << 20, .salt = 9};
    pid_t child = 0;
    assert_int_equal(wx_snapshot_start(f->db, wx_journal_last_seq(j), write_payload, &p, &child),
                     0);
    assert_true(child > 0);
    p.salt = 10; /* the child wrote its own copy-on-write view */
    append_n(j, 100, 10);
    int rc;
    while ((rc = wx_snapshot_poll(child, false)) == 0)
        usleep(1000);
    assert_int_equal(rc, 1);
    wx_journal_close(j);
    assert_int_equal(wx_snapshot_find(f->db, UINT64_MAX, path, sizeof path, &seq), 1);
    assert_int_equal(seq, 100);
    p.salt = 9;
    check_snapshot(path, 100, &p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_never_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_flushes_and_notifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_detects_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_write_find_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_forked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
