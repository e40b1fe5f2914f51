/*
 * replay_int.h - private to src/ledger: replaying the journal into an engine with the reading
 * on a thread of its own.
 */
#ifndef WX_LEDGER_REPLAY_INT_H
#define WX_LEDGER_REPLAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

/*
 * Replays every journal row of db_path with from_seq < seq <= to_seq (to_seq 0: to the end)
 * into e. A reader thread walks the journal (SQLite) and hands rows over in chunks while the
 * calling thread applies them, so the two costs overlap on two cores. Returns 0, or -1 with a
 * message in err (a corrupt or short journal, or a row that replays differently); e is then
 * partly replayed and should be freed.
 */
int wx_ledger_replay(wx_engine_t *e, const char *db_path, uint64_t from_seq, uint64_t to_seq,
                     char *err, size_t errlen);

#endif
