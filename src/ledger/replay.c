/*
 * replay.c - start-up replay with the journal read on a second thread.
 *
 * Replaying is reading rows out of SQLite (about a fifth of the time per row on this
 * machine) and applying them to the engine (the rest). Both are sequential and independent,
 * so a reader thread runs wx_journal_scan and copies rows into fixed chunks, and the calling
 * thread applies each full chunk while the next one fills. Chunks are allocated once and
 * recycled through a small ring, so memory stays bounded whatever the journal's size.
 *
 * The engine is only ever touched by the calling thread; the reader only touches the ring.
 */
#include "ledger/replay_int.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "util/alloc.h"
#include "util/limits.h"

#define CHUNK_ROWS  8192u      /* rows per chunk */
#define CHUNK_BYTES (1u << 20) /* body bytes per chunk (rows average ~100 bytes) */
#define CHUNKS      4u         /* chunks in the ring: the reader may run this far ahead */

/* One run of consecutive rows, bodies packed in `bytes`. */
struct chunk {
    uint32_t n;     /* rows in use */
    size_t used;    /* bytes in use */
    uint64_t *seq;  /* CHUNK_ROWS seqs */
    uint32_t *off;  /* CHUNK_ROWS body offsets into bytes */
    uint32_t *len;  /* CHUNK_ROWS body lengths */
    uint8_t *bytes; /* CHUNK_BYTES */
};

/* The ring between the reader (producer) and the applying thread (consumer). */
struct pipe {
    pthread_mutex_t mu;
    pthread_cond_t filled;  /* a chunk was published, or the reader finished */
    pthread_cond_t emptied; /* a chunk was handed back, or the consumer stopped */
    struct chunk chunks[CHUNKS];
    uint64_t head, tail;   /* chunks[head % CHUNKS] .. [(tail - 1) % CHUNKS] are full */
    bool done;             /* the reader has published its last chunk */
    bool stop;             /* the consumer failed: the reader must stop */
    struct chunk *filling; /* the reader's current chunk (not yet published) */
    const char *db_path;
    uint64_t from_seq, to_seq;
    int scan_rc;        /* wx_journal_scan's result */
    char scan_err[256]; /* its message */
};

/* Publishes the reader's chunk and waits for a free one. False when the consumer stopped. */
static bool publish(struct pipe *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->filling != NULL && p->filling->n > 0) {
        p->tail++;
        pthread_cond_signal(&p->filled);
    } else {
        p->filling = NULL;
    }
    while (p->tail - p->head == CHUNKS && !p->stop) {
        pthread_cond_wait(&p->emptied, &p->mu);
    }
    bool go_on = !p->stop;
    if (go_on) {
        p->filling = &p->chunks[p->tail % CHUNKS];
        p->filling->n = 0;
        p->filling->used = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return go_on;
}

/* wx_journal_scan's callback on the reader: copies the row into the filling chunk. */
static int copy_row(void *ctx, const struct wx_journal_row *row)
{
    struct pipe *p = ctx;
    struct chunk *c = p->filling;
    if (c->n == CHUNK_ROWS || c->used + row->len > CHUNK_BYTES) {
        if (!publish(p)) {
            return 1; /* stopped by the consumer; its error is the one reported */
        }
        c = p->filling;
    }
    c->seq[c->n] = row->seq;
    c->off[c->n] = (uint32_t)c->used;
    c->len[c->n] = row->len;
    memcpy(c->bytes + c->used, row->body, row->len);
    c->used += row->len;
    c->n++;
    return 0;
}

static void *reader_main(void *arg)
{
    struct pipe *p = arg;
    if (publish(p)) { /* takes the first chunk */
        p->scan_rc = wx_journal_scan(p->db_path, p->from_seq, p->to_seq, copy_row, p, p->scan_err,
                                     sizeof p->scan_err);
        if (p->scan_rc == 0) {
            publish(p);
        }
    }
    pthread_mutex_lock(&p->mu);
    p->done = true;
    pthread_cond_signal(&p->filled);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Waits for the next full chunk; NULL when the reader is done and everything was taken. */
static struct chunk *take(struct pipe *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->head == p->tail && !p->done) {
        pthread_cond_wait(&p->filled, &p->mu);
    }
    struct chunk *c = p->head == p->tail ? NULL : &p->chunks[p->head % CHUNKS];
    pthread_mutex_unlock(&p->mu);
    return c;
}

static void give_back(struct pipe *p, bool stop)
{
    pthread_mutex_lock(&p->mu);
    if (stop) {
        p->stop = true;
    } else {
        p->head++;
    }
    pthread_cond_signal(&p->emptied);
    pthread_mutex_unlock(&p->mu);
}

static int apply_chunk(wx_engine_t *e, const struct chunk *c, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < c->n; i++) {
        if (wx_engine_replay(e, c->seq[i], c->bytes + c->off[i], c->len[i], err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

static void pipe_init(struct pipe *p, const char *db_path, uint64_t from_seq, uint64_t to_seq)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->filled, NULL);
    pthread_cond_init(&p->emptied, NULL);
    for (unsigned i = 0; i < CHUNKS; i++) {
        p->chunks[i].seq = wx_calloc(CHUNK_ROWS, sizeof *p->chunks[i].seq);
        p->chunks[i].off = wx_calloc(CHUNK_ROWS, sizeof *p->chunks[i].off);
        p->chunks[i].len = wx_calloc(CHUNK_ROWS, sizeof *p->chunks[i].len);
        p->chunks[i].bytes = wx_malloc(CHUNK_BYTES);
    }
    p->db_path = db_path;
    p->from_seq = from_seq;
    p->to_seq = to_seq;
}

static void pipe_free(struct pipe *p)
{
    for (unsigned i = 0; i < CHUNKS; i++) {
        free(p->chunks[i].seq);
        free(p->chunks[i].off);
        free(p->chunks[i].len);
        free(p->chunks[i].bytes);
    }
    pthread_cond_destroy(&p->emptied);
    pthread_cond_destroy(&p->filled);
    pthread_mutex_destroy(&p->mu);
}

int wx_ledger_replay(wx_engine_t *e, const char *db_path, uint64_t from_seq, uint64_t to_seq,
                     char *err, size_t errlen)
{
    _Static_assert(WX_ROW_MAX <= CHUNK_BYTES, "a row fits in an empty chunk");
    struct pipe *p = wx_malloc(sizeof *p);
    pipe_init(p, db_path, from_seq, to_seq);
    pthread_t reader;
    int rc = pthread_create(&reader, NULL, reader_main, p);
    if (rc != 0) {
        snprintf(err, errlen, "replay: starting the reader: %s", strerror(rc));
        pipe_free(p);
        free(p);
        return -1;
    }
    struct chunk *c;
    rc = 0;
    while (rc == 0 && (c = take(p)) != NULL) {
        rc = apply_chunk(e, c, err, errlen);
        give_back(p, rc != 0);
    }
    pthread_join(reader, NULL);
    if (rc == 0 && p->scan_rc != 0) {
        snprintf(err, errlen, "%s", p->scan_err);
        rc = -1;
    }
    pipe_free(p);
    free(p);
    return rc;
}
