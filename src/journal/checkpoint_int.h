/*
 * checkpoint_int.h - private to src/journal: WAL checkpoints on a thread of their own.
 */
#ifndef WX_JOURNAL_CHECKPOINT_INT_H
#define WX_JOURNAL_CHECKPOINT_INT_H

#include <sqlite3.h>
#include <stddef.h>

struct wx_checkpointer;

/*
 * Takes checkpoints off the committer: turns off SQLite's automatic checkpoint on the
 * writer connection (it runs inside COMMIT and stalled commits for tens of milliseconds
 * while it copied and fsync'd megabytes), and checkpoints from a connection and a thread of
 * its own whenever the WAL passes a threshold. Returns the checkpointer, or NULL with err.
 * Must be called before the writer's first commit; the writer's hook runs on its thread.
 */
struct wx_checkpointer *wx_checkpointer_start(const char *db_path, sqlite3 *writer, char *err,
                                              size_t errlen);

/* Stops the thread after a last checkpoint and closes its connection. NULL is ignored. */
void wx_checkpointer_stop(struct wx_checkpointer *c);

#endif
