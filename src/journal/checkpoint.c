/*
 * checkpoint.c - WAL checkpoints on a thread of their own (see checkpoint_int.h for why).
 *
 * The writer's WAL hook, called after each commit with the WAL's size in pages, only sets a
 * flag and signals; the checkpointer copies WAL frames into the database and fsyncs it with
 * SQLITE_CHECKPOINT_PASSIVE, which never blocks the writer: commits go on appending to the
 * WAL meanwhile, and the writer starts the WAL over at its next transaction once a
 * checkpoint has copied all of it. The thread runs at a lower priority so that on a small
 * machine it yields to the engine and the committer.
 */
#include "journal/checkpoint_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "store/store.h"
#include "util/alloc.h"
#include "util/log.h"

/* Checkpoint once the WAL holds this many pages (4 MiB of 16 KiB pages): small, frequent
 * checkpoints keep each fsync of the database short, which measured best for the tail. */
#define CHECKPOINT_PAGES 256
/* Past this many WAL pages (64 MiB) the writer finishes the copy itself (see wal_hook). */
#define WAL_RESTART_PAGES 4096
#define WAL_LIMIT_BYTES   "67108864" /* the same, in bytes, for PRAGMA journal_size_limit */
/* How much nicer than the rest of the process the checkpointer runs. */
#define CHECKPOINT_NICE 10

struct wx_checkpointer {
    pthread_mutex_t mu;  /* guards due and stopping */
    pthread_cond_t wake; /* the thread waits here */
    bool due;            /* the WAL passed the threshold */
    bool stopping;       /* stop after one last checkpoint */
    sqlite3 *db;         /* the checkpointer's own connection */
    pthread_t thread;
};

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)name;
    struct wx_checkpointer *c = arg;
    if (pages >= WAL_RESTART_PAGES) {
        /* Rare: the background could not keep up. Finish the copy here, between two commits
         * (most is copied already), so that the next transaction starts the WAL over. */
        (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&c->mu);
        c->due = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

/*
 * A passive checkpoint copies what the WAL held when it started, without blocking the
 * writer. Under steady load the writer has always appended more by the time it finishes, so
 * the WAL is never wholly copied and never starts over; the writer's hook finishes the copy
 * itself past WAL_RESTART_PAGES (see wal_hook).
 */
static void checkpoint(struct wx_checkpointer *c)
{
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        /* Not a durability problem (the WAL holds everything), but the WAL will grow. */
        WX_WARN("journal: checkpoint failed: %s", sqlite3_errmsg(c->db));
    }
}

static void *checkpointer_main(void *arg)
{
    struct wx_checkpointer *c = arg;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CHECKPOINT_NICE);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->due && !c->stopping) {
            pthread_cond_wait(&c->wake, &c->mu);
        }
        bool last = c->stopping;
        c->due = false;
        pthread_mutex_unlock(&c->mu);
        checkpoint(c);
        pthread_mutex_lock(&c->mu);
        if (last) {
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

struct wx_checkpointer *wx_checkpointer_start(const char *db_path, sqlite3 *writer, char *err,
                                              size_t errlen)
{
    struct wx_checkpointer *c = wx_calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (wx_store_open(db_path, false, &c->db, err, errlen) != 0) {
        goto fail;
    }
    /* When the WAL starts over, its file is cut back to the restart threshold, so a burst
     * that outran the checkpoints does not keep its disk space. */
    if (sqlite3_wal_autocheckpoint(writer, 0) != SQLITE_OK ||
        sqlite3_exec(writer, "PRAGMA journal_size_limit = " WAL_LIMIT_BYTES, NULL, NULL, NULL) !=
            SQLITE_OK) {
        snprintf(err, errlen, "journal: %s", sqlite3_errmsg(writer));
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, checkpointer_main, c) != 0) {
        snprintf(err, errlen, "journal: cannot start the checkpointer");
        goto fail;
    }
    sqlite3_wal_hook(writer, wal_hook, c);
    return c;
fail:
    sqlite3_wal_autocheckpoint(writer, 1000);
    wx_store_close(c->db);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return NULL;
}

void wx_checkpointer_stop(struct wx_checkpointer *c)
{
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    wx_store_close(c->db);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
