/*
 * webhook_int.h - private to src/wechat: the webhook's memory of recent messages.
 */
#ifndef WX_WECHAT_WEBHOOK_INT_H
#define WX_WECHAT_WEBHOOK_INT_H

#include <stddef.h>
#include <stdint.h>

typedef struct wx_dedup wx_dedup_t;

enum wx_dedup_state {
    WX_DEDUP_NEW = 0,     /* first time: the caller processes it, then finishes or forgets */
    WX_DEDUP_PENDING = 1, /* the first copy is still being processed */
    WX_DEDUP_DONE = 2,    /* answered before: reply holds that answer */
    WX_DEDUP_FULL = 3,    /* no room (every entry still pending): answer 503 */
};

/* entries: how many messages are remembered; bytes_max: budget for their replies; a
 * message is remembered for ttl_s after it arrived. */
wx_dedup_t *wx_dedup_new(uint32_t entries, size_t bytes_max, unsigned ttl_s);
void wx_dedup_free(wx_dedup_t *d);

/*
 * Looks key up. NEW: remembered as pending in *slot. PENDING: *slot is the pending entry.
 * DONE: *reply / *reply_len are the stored answer (valid until the next wx_dedup_begin).
 */
enum wx_dedup_state wx_dedup_begin(wx_dedup_t *d, const void *key, size_t len, int64_t now_ms,
                                   uint32_t *slot, const uint8_t **reply, size_t *reply_len);
/* Stores the answer of a pending entry. */
void wx_dedup_finish(wx_dedup_t *d, uint32_t slot, const void *reply, size_t len);
/* Forgets a pending entry whose processing failed, so that a retry is processed. */
void wx_dedup_forget(wx_dedup_t *d, uint32_t slot);
size_t wx_dedup_count(const wx_dedup_t *d);

#endif
