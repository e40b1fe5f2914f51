/*
 * snapshot.c - snapshots of the engine state, written off the hot path by a forked child
 * (copy-on-write gives it a frozen, consistent view for free, as Redis BGSAVE does), found and
 * verified at start-up, and pruned.
 *
 * File: <db_path>.snap-<seq, 20 digits>
 *   "WXSNAP01" | u64 seq | u64 payload length | payload | SHA-256(payload)   (u64 little-endian)
 * The writer streams the payload through a FILE whose sink hashes and writes (fopencookie), so
 * a snapshot of any size needs no memory for itself. It writes under a temporary name
 * (<final>.tmp-<pid>), fsyncs, renames and fsyncs the directory: a file with a final name is
 * always complete, and a crash leaves at most a temporary file that nothing reads.
 *
 * The digest is streamed with OpenSSL's EVP interface directly because util/crypto.h's
 * wx_sha256 is one-shot and a snapshot can be larger than memory we want to spend on it.
 * The digest covers the payload; the header is checked against the file size and file name.
 */
#include "journal/journal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "journal/snapshot_int.h"
#include "util/alloc.h"
#include "util/limits.h"
#include "util/log.h"

#define SNAP_BUF_LEN (1u << 20) /* the payload FILE's buffer: few, large writes */

/* Where the payload FILE sends its bytes: hashed, then written to fd. */
struct sink {
    int fd;         /* the temporary file */
    EVP_MD_CTX *md; /* SHA-256 of the payload so far */
    uint64_t len;   /* payload bytes so far */
    bool failed;    /* a write or hash failed: the snapshot is abandoned */
};

/* What a writer needs, set up before fork so the child allocates and initialises little. */
struct writer {
    EVP_MD_CTX *md; /* initialised for SHA-256 */
    char *buf;      /* SNAP_BUF_LEN bytes for the payload FILE */
};

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t wx_snap_get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Writes all n bytes, retrying short writes. 0 or -1 (errno set). */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t sink_write(void *cookie, const char *buf, size_t n)
{
    struct sink *s = cookie;
    if (s->failed) return -1;
    if (EVP_DigestUpdate(s->md, buf, n) != 1 || write_all(s->fd, buf, n) != 0) {
        s->failed = true;
        return -1;
    }
    s->len += n;
    return (ssize_t)n;
}

/* Splits db_path into its directory (into dir) and returns its last component. */
const char *wx_snap_split_path(const char *db_path, char *dir, size_t cap)
{
    const char *slash = strrchr(db_path, '/');
    if (slash == NULL) {
        snprintf(dir, cap, ".");
        return db_path;
    }
    size_t n = (size_t)(slash - db_path);
    snprintf(dir, cap, "%.*s", (int)(n == 0 ? 1 : n), db_path);
    return slash + 1;
}

/* See snapshot_int.h. */
int wx_snap_parse_seq(const char *s, uint64_t *seq)
{
    uint64_t v = 0;
    for (int i = 0; i < WX_SNAP_SEQ_DIGITS; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (s[WX_SNAP_SEQ_DIGITS] != '\0') return -1;
    *seq = v;
    return 0;
}

/* Builds <db_path>.snap-<seq><suffix> into out. 0, or -1 if it does not fit. */
int wx_snap_name(const char *db_path, uint64_t seq, const char *suffix, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s" WX_SNAP_INFIX "%0*llu%s", db_path, WX_SNAP_SEQ_DIGITS,
                     (unsigned long long)seq, suffix);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int writer_init(struct writer *w)
{
    w->buf = wx_malloc(SNAP_BUF_LEN);
    w->md = EVP_MD_CTX_new();
    if (w->md == NULL || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(w->md);
        free(w->buf);
        WX_ERROR("snapshot: cannot set up SHA-256");
        return WX_JOURNAL_EIO;
    }
    return 0;
}

static void writer_free(struct writer *w)
{
    EVP_MD_CTX_free(w->md);
    free(w->buf);
}

/*
 * Streams fn's payload into fd (positioned after the header) through the hashing sink, then
 * appends the digest and fills in the header's length. 0 or -1 (logged).
 */
static int write_body(int fd, struct writer *w, wx_snapshot_write_fn fn, void *ctx)
{
    struct sink s = {.fd = fd, .md = w->md};
    cookie_io_functions_t io = {.write = sink_write};
    FILE *out = fopencookie(&s, "w", io);
    if (out == NULL) return -1;
    setvbuf(out, w->buf, _IOFBF, SNAP_BUF_LEN);
    int fn_rc = fn(ctx, out);
    int close_rc = fclose(out);
    if (fn_rc != 0 || close_rc != 0 || s.failed) {
        if (fn_rc != 0) errno = 0; /* the callback's failure, not the system's */
        return -1;
    }
    uint8_t digest[WX_SNAP_DIGEST_LEN];
    uint8_t len[8];
    unsigned dlen = 0;
    if (EVP_DigestFinal_ex(w->md, digest, &dlen) != 1 || dlen != WX_SNAP_DIGEST_LEN) return -1;
    put_le64(len, s.len);
    if (write_all(fd, digest, sizeof digest) != 0) return -1;
    if (pwrite(fd, len, sizeof len, 16) != (ssize_t)sizeof len) return -1;
    return 0;
}

/* Writes the whole snapshot file for seq: temp file, fsync, rename, directory fsync. */
static int write_snapshot(const char *db_path, uint64_t seq, wx_snapshot_write_fn fn, void *ctx,
                          struct writer *w)
{
    char tmp[PATH_MAX], final[PATH_MAX], dir[PATH_MAX], suffix[32];
    int fd = -1;
    errno = 0;
    snprintf(suffix, sizeof suffix, ".tmp-%ld", (long)getpid());
    wx_snap_split_path(db_path, dir, sizeof dir);
    if (wx_snap_name(db_path, seq, suffix, tmp, sizeof tmp) != 0 ||
        wx_snap_name(db_path, seq, "", final, sizeof final) != 0) {
        WX_ERROR("snapshot: path too long: %s", db_path);
        return WX_JOURNAL_EIO;
    }
    uint8_t header[WX_SNAP_HEADER_LEN];
    memcpy(header, WX_SNAP_MAGIC, 8);
    put_le64(header + 8, seq);
    put_le64(header + 16, 0); /* the length is filled in when known */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, header, sizeof header) != 0 || write_body(fd, w, fn, ctx) != 0 ||
        fsync(fd) != 0)
        goto fail;
    int rc = close(fd);
    fd = -1;
    if (rc != 0 || rename(tmp, final) != 0 || fsync_dir(dir) != 0) goto fail;
    return 0;
fail:
    WX_ERROR("snapshot: writing %s: %s", tmp,
             errno != 0 ? strerror(errno) : "the payload callback failed");
    if (fd >= 0) close(fd);
    unlink(tmp);
    return WX_JOURNAL_EIO;
}

int wx_snapshot_write_now(const char *db_path, uint64_t seq, wx_snapshot_write_fn fn, void *ctx)
{
    assert(db_path != NULL);
    assert(fn != NULL);
    struct writer w;
    int rc = writer_init(&w);
    if (rc != 0) return rc;
    rc = write_snapshot(db_path, seq, fn, ctx, &w);
    writer_free(&w);
    return rc;
}

/* In the snapshot child: closes the sockets inherited from the parent (the ISO 8583
 * listener and connections). Held open here, a connection the parent closes would send no
 * FIN until the snapshot is written, and the switch would wait on a dead session. Other
 * descriptors stay: the database lock among them, which keeps a new writer out while this
 * child might still put a snapshot in place. */
static void close_inherited_sockets(void)
{
    struct rlimit rl;
    rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    if (max > 65536) max = 65536;
    for (int fd = 3; fd < (int)max; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) close(fd);
    }
}

int wx_snapshot_start(const char *db_path, uint64_t seq, wx_snapshot_write_fn fn, void *ctx,
                      pid_t *child)
{
    assert(db_path != NULL);
    assert(fn != NULL);
    assert(child != NULL);
    struct writer w;
    int rc = writer_init(&w);
    if (rc != 0) return rc;
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: only this thread exists; it touches nothing the others may have locked
         * (no journal, no SQLite) and leaves with _exit so no atexit handler or inherited stdio
         * buffer runs twice. */
        close_inherited_sockets();
        _exit(write_snapshot(db_path, seq, fn, ctx, &w) == 0 ? 0 : 1);
    }
    writer_free(&w);
    if (pid < 0) {
        WX_ERROR("snapshot: fork: %s", strerror(errno));
        return WX_JOURNAL_EIO;
    }
    *child = pid;
    return 0;
}

int wx_snapshot_poll(pid_t child, bool wait)
{
    int status = 0;
    pid_t r;
    do {
        r = waitpid(child, &status, wait ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return 0;
    if (r < 0) {
        WX_ERROR("snapshot: waitpid %ld: %s", (long)child, strerror(errno));
        return WX_JOURNAL_EIO;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
    if (WIFSIGNALED(status)) {
        WX_ERROR("snapshot: child %ld killed by signal %d", (long)child, WTERMSIG(status));
    } else {
        WX_ERROR("snapshot: child %ld exited with %d", (long)child, WEXITSTATUS(status));
    }
    return WX_JOURNAL_EIO;
}
