/*
 * notify_int.h - inside the notify module: the outbox's recorder and the SMS gateway client.
 * Private to src/notify.
 */
#ifndef WX_NOTIFY_INT_H
#define WX_NOTIFY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "notify/notify.h"

struct wx_hub;

/* ---- the outbox (outbox.c) ------------------------------------------------------------- */

/* What recording found at start, and later what staff asked to replay: sends to make. */
struct outbox_todo {
    struct wx_send_row *rows; /* by seq, then channel */
    size_t n;
};

/* Followers' languages for alerts. */
struct outbox_pref {
    char openid[WX_OPENID_MAX + 1];
    uint8_t lang; /* enum wx_lang */
};

struct outbox_prefs {
    struct outbox_pref *v;
    size_t n;
};

typedef struct outbox outbox_t;

/* What the recording thread finds for the loop: replays asked for by staff and languages set
 * since it last looked. Called on the loop; either may be empty. */
struct outbox_hooks {
    void (*replay)(void *arg, struct outbox_todo *todo);
    void (*prefs)(void *arg, const struct outbox_prefs *prefs);
    void *arg;
};

/*
 * Opens <db_path>.notify (creating it with its watermark at start_seq) and reads, before
 * anything runs: the watermark, the sends still pending up to it (in *pending, the caller
 * frees rows), the WeChat sends still watched for delivery (in *watched), the sends recorded
 * past the watermark in a final state (in *beyond, by seq, channel and recipient: their rows
 * are derived again, and these must not go twice) and every language preference (in *prefs,
 * freed with outbox_prefs_free). Then starts the recording thread, which hands what
 * it finds later to hooks on the hub's loop. NULL with a message in err.
 */
outbox_t *outbox_open(const char *db_path, struct wx_hub *hub, const struct outbox_hooks *hooks,
                      uint64_t start_seq, uint64_t *watermark, struct outbox_todo *pending,
                      struct outbox_todo *watched, struct outbox_todo *beyond,
                      struct outbox_prefs *prefs, char *err, size_t errlen);

void outbox_prefs_free(struct outbox_prefs *p);

/* Queues a send's state for the next batch (the loop's thread). */
void outbox_put(outbox_t *o, const struct wx_send_row *row);

/* How many more alerts the loop takes on now (any thread): replays are handed over no faster
 * than that. Until it is first set, none are. */
void outbox_set_room(outbox_t *o, size_t alerts);

/* Hands the queued rows, and the watermark they complete, to the recording thread. */
void outbox_commit(outbox_t *o, uint64_t watermark);

/* Rows written so far (any thread). */
uint64_t outbox_recorded(const outbox_t *o);

/* Commits what is queued, stops the thread, closes the database and frees o. */
void outbox_close(outbox_t *o);

void outbox_todo_free(struct outbox_todo *t);

/* ---- the SMS gateway (sms.c) ---------------------------------------------------------- */

/* The client itself (wx_sms_client_*) is in notify.h: the secure pages send by it too. */

/* Writes the body the template makes for these values into out (cap bytes). The length, or
 * -1 when it does not fit. Exposed for tests. */
int sms_body_render(const char *tmpl, const char *mobile, const char *text, const char *ref,
                    char *out, size_t cap);

#endif
