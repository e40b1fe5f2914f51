/*
 * snapshot_read.c - finding, verifying, opening and pruning snapshot files.
 *
 * A snapshot is trusted only after its whole payload hashes to the trailer and its header
 * agrees with the file's size and name. Anything else (a torn copy, a flipped bit, a file
 * someone truncated) is skipped with a warning, and start-up falls back to an older snapshot
 * or to replaying the journal from seq 0: slower, never wrong.
 */
#include "journal/journal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "journal/snapshot_int.h"
#include "util/alloc.h"
#include "util/limits.h"
#include "util/log.h"

#define READ_CHUNK (256u << 10)

/* Hashes the next len bytes of f into digest. 0 or -1 (short file or read error). */
static int hash_stream(FILE *f, uint64_t len, uint8_t digest[WX_SNAP_DIGEST_LEN])
{
    int rc = -1;
    uint8_t *buf = wx_malloc(READ_CHUNK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) goto out;
    while (len > 0) {
        size_t want = len < READ_CHUNK ? (size_t)len : READ_CHUNK;
        if (fread(buf, 1, want, f) != want) goto out;
        if (EVP_DigestUpdate(md, buf, want) != 1) goto out;
        len -= want;
    }
    unsigned dlen = 0;
    if (EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == WX_SNAP_DIGEST_LEN) rc = 0;
out:
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

/* The seq in path's file name when it is a snapshot name, else -1. */
static int seq_from_name(const char *path, uint64_t *seq)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    const char *infix = NULL;
    for (const char *p = strstr(base, WX_SNAP_INFIX); p != NULL; p = strstr(p + 1, WX_SNAP_INFIX))
        infix = p;
    if (infix == NULL) return -1;
    return wx_snap_parse_seq(infix + strlen(WX_SNAP_INFIX), seq);
}

/*
 * Verifies the snapshot open as f (at offset 0). Returns 0 with *seq and *len, or
 * WX_JOURNAL_ECORRUPT / WX_JOURNAL_EIO with err set. Leaves f's position anywhere.
 */
static int verify(FILE *f, const char *path, uint64_t *seq, uint64_t *len, char *err, size_t errlen)
{
    struct stat st;
    uint8_t header[WX_SNAP_HEADER_LEN];
    uint8_t want[WX_SNAP_DIGEST_LEN], got[WX_SNAP_DIGEST_LEN];
    uint64_t name_seq;
    if (fstat(fileno(f), &st) != 0) {
        snprintf(err, errlen, "snapshot %s: %s", path, strerror(errno));
        return WX_JOURNAL_EIO;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < WX_SNAP_HEADER_LEN + WX_SNAP_DIGEST_LEN ||
        fread(header, 1, sizeof header, f) != sizeof header ||
        memcmp(header, WX_SNAP_MAGIC, 8) != 0) {
        snprintf(err, errlen, "snapshot %s: not a snapshot (bad header)", path);
        return WX_JOURNAL_ECORRUPT;
    }
    *seq = wx_snap_get_le64(header + 8);
    *len = wx_snap_get_le64(header + 16);
    if (*len != size - WX_SNAP_HEADER_LEN - WX_SNAP_DIGEST_LEN) {
        snprintf(err, errlen, "snapshot %s: payload length %llu does not match the file size", path,
                 (unsigned long long)*len);
        return WX_JOURNAL_ECORRUPT;
    }
    if (seq_from_name(path, &name_seq) == 0 && name_seq != *seq) {
        snprintf(err, errlen, "snapshot %s: header says seq %llu", path, (unsigned long long)*seq);
        return WX_JOURNAL_ECORRUPT;
    }
    if (hash_stream(f, *len, got) != 0 || fread(want, 1, sizeof want, f) != sizeof want) {
        snprintf(err, errlen, "snapshot %s: read failed", path);
        return WX_JOURNAL_EIO;
    }
    if (CRYPTO_memcmp(got, want, sizeof got) != 0) {
        snprintf(err, errlen, "snapshot %s: SHA-256 mismatch", path);
        return WX_JOURNAL_ECORRUPT;
    }
    return 0;
}

int wx_snapshot_open(const char *path, uint64_t *seq, uint64_t *len, FILE **payload, char *err,
                     size_t errlen)
{
    assert(path != NULL);
    assert(payload != NULL);
    *payload = NULL;
    FILE *f = fopen(path, "rbe");
    if (f == NULL) {
        snprintf(err, errlen, "snapshot %s: %s", path, strerror(errno));
        return WX_JOURNAL_EIO;
    }
    int rc = verify(f, path, seq, len, err, errlen);
    if (rc == 0 && fseeko(f, WX_SNAP_HEADER_LEN, SEEK_SET) != 0) {
        snprintf(err, errlen, "snapshot %s: seek: %s", path, strerror(errno));
        rc = WX_JOURNAL_EIO;
    }
    if (rc != 0) {
        fclose(f);
        return rc;
    }
    *payload = f;
    return 0;
}

static int seq_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Lists the seqs of db_path's snapshot files (by name only), newest first, into *out (the
 * caller frees it). Returns the count, or WX_JOURNAL_EIO. A missing directory has none.
 */
static int list_snapshots(const char *db_path, uint64_t **out)
{
    char dir[PATH_MAX], prefix[NAME_MAX + 16];
    const char *base = wx_snap_split_path(db_path, dir, sizeof dir);
    int plen = snprintf(prefix, sizeof prefix, "%s" WX_SNAP_INFIX, base);
    *out = NULL;
    if (plen < 0 || (size_t)plen >= sizeof prefix) return WX_JOURNAL_EIO;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) return 0;
        WX_ERROR("snapshot: opendir %s: %s", dir, strerror(errno));
        return WX_JOURNAL_EIO;
    }
    uint64_t *seqs = wx_malloc(sizeof(uint64_t) * WX_SNAPSHOT_FILES_MAX);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;
        if (strncmp(e->d_name, prefix, (size_t)plen) != 0) continue;
        if (wx_snap_parse_seq(e->d_name + plen, &seq) != 0) continue; /* temporary, other */
        if (n == WX_SNAPSHOT_FILES_MAX) {
            WX_WARN("snapshot: more than %d snapshots of %s; prune them", WX_SNAPSHOT_FILES_MAX,
                    db_path);
            break;
        }
        seqs[n++] = seq;
    }
    closedir(d);
    qsort(seqs, (size_t)n, sizeof seqs[0], seq_desc);
    *out = seqs;
    return n;
}

/* Verifies the snapshot at path, logging why it is unusable. 0 or negative. */
static int check_path(const char *path)
{
    char err[PATH_MAX + 128];
    uint64_t seq, len;
    FILE *f = NULL;
    int rc = wx_snapshot_open(path, &seq, &len, &f, err, sizeof err);
    if (rc != 0) {
        WX_WARN("%s: skipped", err);
        return rc;
    }
    fclose(f);
    return 0;
}

int wx_snapshot_find(const char *db_path, uint64_t max_seq, char *path, size_t cap, uint64_t *seq)
{
    assert(db_path != NULL);
    assert(path != NULL);
    uint64_t *seqs = NULL;
    int n = list_snapshots(db_path, &seqs);
    int rc = n < 0 ? n : 0;
    for (int i = 0; i < n; i++) {
        if (seqs[i] > max_seq) continue;
        if (wx_snap_name(db_path, seqs[i], "", path, cap) != 0) {
            WX_ERROR("snapshot: path buffer too small for %s", db_path);
            rc = WX_JOURNAL_EIO;
            break;
        }
        if (check_path(path) == 0) {
            *seq = seqs[i];
            rc = 1;
            break;
        }
    }
    free(seqs);
    return rc;
}

void wx_snapshot_prune(const char *db_path, unsigned keep)
{
    assert(db_path != NULL);
    char path[PATH_MAX];
    uint64_t *seqs = NULL;
    int n = list_snapshots(db_path, &seqs);
    unsigned kept = 0;
    for (int i = 0; i < n; i++) {
        if (wx_snap_name(db_path, seqs[i], "", path, sizeof path) != 0) break;
        /* Only snapshots that verify count towards `keep`; a corrupt one is of no use. */
        if (kept < keep && check_path(path) == 0) {
            kept++;
            continue;
        }
        if (unlink(path) != 0) WX_WARN("snapshot: unlink %s: %s", path, strerror(errno));
    }
    free(seqs);
}

void wx_snapshot_remove_temporaries(const char *db_path)
{
    assert(db_path != NULL);
    char dir[PATH_MAX], prefix[NAME_MAX + 16], path[PATH_MAX + NAME_MAX + 2];
    const char *base = wx_snap_split_path(db_path, dir, sizeof dir);
    int plen = snprintf(prefix, sizeof prefix, "%s" WX_SNAP_INFIX, base);
    if (plen < 0 || (size_t)plen >= sizeof prefix) return;
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *rest = e->d_name + plen;
        if (strncmp(e->d_name, prefix, (size_t)plen) != 0 || strlen(rest) <= WX_SNAP_SEQ_DIGITS ||
            strncmp(rest + WX_SNAP_SEQ_DIGITS, ".tmp-", 5) != 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        WX_WARN("snapshot: removing %s, left by a writer that did not finish", path);
        if (unlink(path) != 0) WX_WARN("snapshot: unlink %s: %s", path, strerror(errno));
    }
    closedir(d);
}
