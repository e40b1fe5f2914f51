/*
 * ops.h - the ops HTTP API (/api/v1/...): what bank staff's tools call on a running server.
 *
 * JSON in and out, on the HTTP listener, behind a bearer token (ops.token; with none the API
 * is not served at all). For now it covers the alerts' outbox: counts, the sends in a state
 * (the dead-letter list), and replaying dead sends:
 *
 *   GET  /api/v1/alerts                     {"watermark": N, "sends": {"pending": n, ...},
 *                                            "live": {"queued": n, "in_flight": n, ...}}
 *   GET  /api/v1/alerts/sends?state=dead&from=SEQ&limit=N
 *                                           {"sends": [{"seq", "channel", "state", "to",
 *                                             "attempts", "errcode", "error", "updated_ms"}]}
 *   POST /api/v1/alerts/replay  {"seq": N} or {"all": true}      {"replayed": n}
 *
 * Mobile numbers are masked in answers (138****8000), as in `wxbank alerts`. The token and
 * the call are checked on the hub's loop; the outbox is read and written on a worker thread
 * of the API's own, which answers. At most 16 calls wait for it; more get 503.
 */
#ifndef WX_OPS_OPS_H
#define WX_OPS_OPS_H

#include "net/net.h"
#include "notify/notify.h"

#define WX_OPS_TOKEN_MIN 16   /* bytes of ops.token: a guessable token is refused */
#define WX_OPS_LIST_MAX  1000 /* sends in one answer */
#define WX_OPS_BODY_MAX  1024 /* a request body */

typedef struct wx_ops wx_ops_t;

/*
 * Routes /api/v1/ on http. token is ops.token (copied); db_path the journal's path (the
 * outbox is beside it); notify may be NULL (alerts off: the live figures are left out).
 * NULL with a message in err when the token is too short.
 */
wx_ops_t *wx_ops_start(wx_http_t *http, const char *token, const char *db_path, wx_notify_t *notify,
                       char *err, size_t errlen);

/* After wx_hub_run, before wx_http_free: the call in hand is finished, those waiting are
 * answered 503, and the worker stops. NULL is ignored. */
void wx_ops_stop(wx_ops_t *o);

/* After wx_http_free (the route is the listener's until then); stops first if need be. NULL
 * is ignored. */
void wx_ops_free(wx_ops_t *o);

#endif
