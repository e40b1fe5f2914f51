/*
 * fuzz_chat_parse.c - libFuzzer target for the chat assistant's understanding: normalization,
 * slots and classification (src/chat/norm.c, slots.c, features.c, classify.c, nlu.c) on
 * arbitrary bytes, invalid UTF-8 included.
 *
 * Whatever the bytes: the parse ends, names a known intent with a confidence in [0, 1], its
 * slots are in range, the JSON of it fits a 1 KiB buffer and is valid JSON, and the same
 * bytes parse the same way again (no state carried between messages).
 */
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "chat/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS 1795752000000ll /* 2026-11-27 12:00 in Shanghai */

static void check_slots(const struct wx_chat_slots *s)
{
    assert(s->amount_fen >= -1);
    assert(s->periods >= 0 && s->periods <= 60);
    assert((s->date_from == INT32_MIN) == (s->date_to == INT32_MIN));
    assert(s->date_from == INT32_MIN || s->date_from <= s->date_to);
    assert(s->card_last4 >= -1 && s->card_last4 <= 9999);
    assert(s->choice >= 0 && s->choice <= 9);
    assert(memchr(s->merchant, '\0', sizeof s->merchant) != NULL);
    assert(memchr(s->category, '\0', sizeof s->category) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wx_chat_parse a, b;
    wx_chat_parse((const char *)data, size, NOW_MS, 480, &a);
    assert((unsigned)a.intent < WX_INTENT_COUNT);
    assert(a.confidence >= 0 && a.confidence <= 1 && !isnan(a.confidence));
    check_slots(&a.slots);
    char json[1024];
    int n = wx_chat_parse_json(&a, json, sizeof json);
    assert(n > 0);
    json_error_t err;
    json_t *doc = json_loadb(json, (size_t)n, 0, &err);
    assert(doc != NULL);
    json_decref(doc);
    wx_chat_parse((const char *)data, size, NOW_MS, 480, &b);
    assert(memcmp(&a, &b, sizeof a) == 0);
    return 0;
}
