/*
 * snapshot_int.h - private to src/journal: the snapshot file format and the naming helpers
 * shared by the writer (snapshot.c) and the reader (snapshot_read.c). Not part of the
 * module's interface; include journal/journal.h from outside.
 */
#ifndef WX_JOURNAL_SNAPSHOT_INT_H
#define WX_JOURNAL_SNAPSHOT_INT_H

#include <stddef.h>
#include <stdint.h>

#define WX_SNAP_MAGIC      "WXSNAP01"
#define WX_SNAP_HEADER_LEN 24u /* magic, u64 seq, u64 payload length (little-endian) */
#define WX_SNAP_DIGEST_LEN 32u /* SHA-256 of the payload */
#define WX_SNAP_SEQ_DIGITS 20  /* the seq in a file name: enough for any uint64_t */
#define WX_SNAP_INFIX      ".snap-"

/* Builds <db_path>.snap-<seq, 20 digits><suffix> into out. 0, or -1 if it does not fit. */
int wx_snap_name(const char *db_path, uint64_t seq, const char *suffix, char *out, size_t cap);

/* Parses a string that is exactly WX_SNAP_SEQ_DIGITS digits. 0, or -1 if it is not. */
int wx_snap_parse_seq(const char *s, uint64_t *seq);

/* Copies db_path's directory into dir ("." if none) and returns its last component. */
const char *wx_snap_split_path(const char *db_path, char *dir, size_t cap);

uint64_t wx_snap_get_le64(const uint8_t *p);

#endif
