/*
 * sms.c - the SMS gateway the bank's alerts go to, and the cardholder's phone that shows
 * what arrived.
 *
 * POST /sandbox/sms/send takes the bank's default body, {"mobile", "text", "ref"}, under any
 * Authorization: a gateway's credentials are not the sandbox's to check, so it only notes
 * whether some came. It answers {"code":0,"message":"ok","id":"N"}, or a 400 (413 for a body
 * over WX_SANDBOX_SMS_BODY_MAX) with {"code":STATUS,"message":WHY} that changes nothing.
 *
 * The ref is the sender's idempotency reference. A real gateway does not deduplicate: a ref
 * sent twice reaches the phone twice. So the sandbox shows it twice too, and counts it
 * (sms_duplicates), which is what tells a retrying dispatcher from a careful one. Refs are
 * remembered in a hash table that forgets the oldest past WX_SANDBOX_SMS_REFS_MAX; the page
 * gets the newest WX_SANDBOX_SMS_MAX messages through the events long poll.
 *
 * The page only ever sees a number masked (138****8000), which cannot tell two cardholders
 * apart; a test that must read the one-time code one cardholder was sent asks instead:
 *
 *   GET /sandbox/api/sms?mobile=13800138000&after=SEQ
 *   200 {"seq": N, "sms": [{"seq", "id", "mobile", "text", "time"}, ...]}
 *
 * mobile is required and compared in full (a leading + is sent as %2B; a bare + reads as a
 * space and is taken for it); after (default 0) keeps only SMS with a larger seq. The list
 * holds at most SB_SMS_READ_MAX, the newest of those kept, oldest first; "seq" is the newest
 * SMS's seq to anyone, the after of the next call. time is in Unix milliseconds, id is the
 * gateway's answer's. A bad parameter gets 400 {"error": ...}.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/siphash.h"
#include "util/timeutil.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

_Static_assert((SB_SMS_BUCKETS & (SB_SMS_BUCKETS - 1)) == 0, "buckets: a power of two");
_Static_assert(SB_SMS_BUCKETS >= WX_SANDBOX_SMS_REFS_MAX, "chains stay short");
_Static_assert(WX_SANDBOX_SMS_REFS_MAX < UINT32_MAX, "slot + 1 fits a link");
_Static_assert(WX_SANDBOX_SMS_BODY_MAX <= WX_SANDBOX_API_BODY_MAX, "a body fits sb->scratch");

/* What a refused field must be (the 400's message). */
static const char MOBILE_RULE[] = "mobile: " STR(WX_SANDBOX_MOBILE_MIN) " to " STR(
    WX_SANDBOX_MOBILE_MAX) " characters, digits with an optional leading +";
static const char TEXT_RULE[] = "text: 1 to " STR(
    WX_SANDBOX_SMS_TEXT_MAX) " bytes of UTF-8, no control characters but tab and line breaks";
static const char REF_RULE[] =
    "ref: 1 to " STR(WX_SANDBOX_SMS_REF_MAX) " printable ASCII characters";

void sb_sms_init(struct wx_sandbox *sb)
{
    sb->sms = wx_calloc(1, sizeof *sb->sms);
    sb->sms->next_id = 1;
    wx_random_bytes(sb->sms->hash_key, sizeof sb->sms->hash_key);
}

void sb_sms_free(struct wx_sandbox *sb)
{
    struct sb_sms *sms = sb->sms;
    if (sms == NULL) return;
    for (unsigned k = 0; k < sms->count; k++) {
        unsigned slot = (sms->first + k) % WX_SANDBOX_SMS_MAX;
        free(sms->ring[slot].json);
        free(sms->reads[slot].text);
    }
    free(sms);
    sb->sms = NULL;
}

/* ---- the body -------------------------------------------------------------------------------- */

/* 5..20 characters: digits, with an optional leading '+'. */
static bool mobile_ok(const char *s)
{
    size_t n = strlen(s), plus = s[0] == '+';
    return n >= WX_SANDBOX_MOBILE_MIN && n <= WX_SANDBOX_MOBILE_MAX &&
           strspn(s + plus, "0123456789") == n - plus;
}

/* 1..WX_SANDBOX_SMS_REF_MAX characters of printable ASCII (space included). */
static bool ref_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WX_SANDBOX_SMS_REF_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

/* A string member and its length, or NULL. A NUL would cut the text short: bodies are loaded
 * without JSON_ALLOW_NUL, which refuses "\u0000", and this checks it again. */
static const char *plain_member(const struct sb_doc *d, const char *key, size_t *len)
{
    const struct sb_jnode *v = sb_doc_get(d, &d->nodes[0], key);
    if (v == NULL || v->kind != SB_J_STRING) return NULL;
    *len = v->len;
    return strlen(v->str) == v->len ? v->str : NULL;
}

/* Reads the three members; NULL, or what is wrong (the first problem found). */
static const char *sms_check(const struct sb_doc *d, const char **mobile, const char **text,
                             const char **ref)
{
    size_t mlen = 0, tlen = 0, rlen = 0;
    *mobile = plain_member(d, "mobile", &mlen);
    *text = plain_member(d, "text", &tlen);
    *ref = plain_member(d, "ref", &rlen);
    if (*mobile == NULL || !mobile_ok(*mobile)) return MOBILE_RULE;
    if (*text == NULL || tlen == 0 || tlen > WX_SANDBOX_SMS_TEXT_MAX || !sb_is_text(*text, tlen)) {
        return TEXT_RULE;
    }
    if (*ref == NULL || !ref_ok(*ref)) return REF_RULE;
    return NULL;
}

/* 138****8000: the first 3 and the last 4 characters of a number of 9 or more, only the last
 * 2 of a shorter one; the length stays, as phones show it. */
static void mask_mobile(const char *mobile, char out[WX_SANDBOX_MOBILE_MAX + 1])
{
    size_t n = strlen(mobile);
    assert(n <= WX_SANDBOX_MOBILE_MAX);
    size_t head = n >= 9 ? 3 : 0, tail = n >= 9 ? 4 : 2;
    for (size_t i = 0; i < n; i++) {
        out[i] = i < head || i >= n - tail ? mobile[i] : '*';
    }
    out[n] = '\0';
}

/* ---- refs seen ------------------------------------------------------------------------------- */

static uint32_t *bucket_of(struct sb_sms *sms, const char *ref)
{
    uint64_t h = wx_siphash64(sms->hash_key, ref, strlen(ref));
    return &sms->buckets[h & (SB_SMS_BUCKETS - 1)];
}

/* Takes the ref in slot out of its chain and empties the slot. */
static void ref_forget(struct sb_sms *sms, unsigned slot)
{
    struct sb_sms_ref *r = &sms->refs[slot];
    uint32_t *link = bucket_of(sms, r->ref);
    while (*link != slot + 1) {
        assert(*link != 0); /* every ref kept is in its bucket's chain */
        link = &sms->refs[*link - 1].next;
    }
    *link = r->next;
    memset(r, 0, sizeof *r);
}

/* True when ref was seen before; otherwise remembers it (forgetting the oldest when full). */
static bool ref_seen(struct sb_sms *sms, const char *ref)
{
    uint32_t *head = bucket_of(sms, ref);
    for (uint32_t i = *head; i != 0; i = sms->refs[i - 1].next) {
        if (strcmp(sms->refs[i - 1].ref, ref) == 0) return true;
    }
    unsigned slot = sms->next_ref;
    sms->next_ref = (slot + 1) % WX_SANDBOX_SMS_REFS_MAX;
    if (sms->refs[slot].ref[0] != '\0') ref_forget(sms, slot);
    struct sb_sms_ref *r = &sms->refs[slot];
    assert(strlen(ref) <= WX_SANDBOX_SMS_REF_MAX);
    memcpy(r->ref, ref, strlen(ref) + 1);
    r->next = *head; /* read now: forgetting the slot's old ref may have changed it */
    *head = slot + 1;
    return false;
}

/* ---- the phone ------------------------------------------------------------------------------- */

/* Keeps line (the object without its closing brace; ,"seq":N,"time":T} is added, where
 * jansson put them before) for the page, and the full number with the text and id for
 * GET /sandbox/api/sms, then wakes the page's long polls. The oldest SMS goes when
 * WX_SANDBOX_SMS_MAX are kept. */
static void sms_keep(struct wx_sandbox *sb, struct sb_out *line, const char *mobile,
                     const char *text, uint64_t id)
{
    struct sb_sms *sms = sb->sms;
    uint64_t seq = ++sb->seq;
    int64_t now = wx_now_ms();
    SB_OUT_LIT(line, ",\"seq\":");
    sb_out_int(line, (int64_t)seq);
    SB_OUT_LIT(line, ",\"time\":");
    sb_out_int(line, now);
    SB_OUT_LIT(line, "}");
    if (sms->count == WX_SANDBOX_SMS_MAX) {
        free(sms->ring[sms->first].json);
        free(sms->reads[sms->first].text);
        memset(&sms->ring[sms->first], 0, sizeof sms->ring[0]);
        memset(&sms->reads[sms->first], 0, sizeof sms->reads[0]);
        sms->first = (sms->first + 1) % WX_SANDBOX_SMS_MAX;
        sms->count--;
    }
    unsigned slot = (sms->first + sms->count) % WX_SANDBOX_SMS_MAX;
    struct sb_msg *m = &sms->ring[slot];
    m->seq = seq;
    m->json = wx_strndup(line->p, line->len);
    m->len = line->len;
    struct sb_sms_read *r = &sms->reads[slot];
    assert(strlen(mobile) <= WX_SANDBOX_MOBILE_MAX); /* checked by mobile_ok */
    memcpy(r->mobile, mobile, strlen(mobile) + 1);
    r->text = wx_strndup(text, strlen(text));
    r->id = id;
    r->time_ms = now;
    sms->count++;
    sb->sms_seq = seq;
    sb_polls_wake(sb);
}

void sb_sms_events(const struct wx_sandbox *sb, struct evbuffer *out, uint64_t after)
{
    const struct sb_sms *sms = sb->sms;
    unsigned from = sms->count > SB_EVENTS_SMS_MAX ? sms->count - SB_EVENTS_SMS_MAX : 0;
    bool first = true;
    evbuffer_add(out, "[", 1);
    for (unsigned k = from; k < sms->count; k++) {
        const struct sb_msg *m = &sms->ring[(sms->first + k) % WX_SANDBOX_SMS_MAX];
        if (m->seq <= after) continue;
        if (!first) evbuffer_add(out, ",", 1);
        evbuffer_add(out, m->json, m->len);
        first = false;
    }
    evbuffer_add(out, "]", 1);
}

/* ---- what one number received, for tests ----------------------------------------------------- */

/* A decimal query parameter within [0, INT64_MAX]; def when absent; -1 when bad. */
static int64_t query_seq(const char *query, const char *name, int64_t def)
{
    char text[24];
    int n = wx_http_query_param(query, name, text, sizeof text);
    if (n == -1) return def;
    if (n <= 0 || n > 19 || strspn(text, "0123456789") != (size_t)n) return -1;
    unsigned long long v = strtoull(text, NULL, 10);
    return v <= (unsigned long long)INT64_MAX ? (int64_t)v : -1;
}

void sb_sms_read_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    const struct sb_sms *sms = sb->sms;
    char mobile[WX_SANDBOX_MOBILE_MAX + 1];
    int n = wx_http_query_param(query, "mobile", mobile, sizeof mobile);
    if (n > 0 && mobile[0] == ' ') mobile[0] = '+'; /* an unencoded + came as a space */
    int64_t after = query_seq(query, "after", 0);
    if (n <= 0 || !mobile_ok(mobile) || after < 0) {
        sb_page_error(req, 400, "sms: mobile=NUMBER (5 to 20 digits, + as %2B), after=SEQ");
        return;
    }
    /* The newest SB_SMS_READ_MAX that match, found newest first and listed oldest first. */
    unsigned found[SB_SMS_READ_MAX], nfound = 0;
    for (unsigned k = sms->count; k > 0 && nfound < SB_SMS_READ_MAX; k--) {
        unsigned slot = (sms->first + k - 1) % WX_SANDBOX_SMS_MAX;
        if (sms->ring[slot].seq <= (uint64_t)after) break; /* seqs grow with k */
        if (strcmp(sms->reads[slot].mobile, mobile) == 0) found[nfound++] = slot;
    }
    json_t *list = json_array();
    while (nfound > 0) {
        unsigned slot = found[--nfound];
        const struct sb_sms_read *r = &sms->reads[slot];
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
        json_array_append_new(list, json_pack("{s:I,s:s,s:s,s:s,s:I}", "seq",
                                              (json_int_t)sms->ring[slot].seq, "id", id, "mobile",
                                              r->mobile, "text", r->text, "time",
                                              (json_int_t)r->time_ms));
    }
    sb_reply_json(req, 200, json_pack("{s:I,s:o}", "seq", (json_int_t)sb->sms_seq, "sms", list));
}

/* ---- the gateway ----------------------------------------------------------------------------- */

/* Answers {"code": status, "message": why} and counts the refusal. */
static void sms_error(struct wx_sandbox *sb, wx_http_req_t *req, int status, const char *why)
{
    sb->stats.errors[SB_EP_SMS]++;
    sb_reply_json(req, status, json_pack("{s:i,s:s}", "code", status, "message", why));
}

/* The SMS as the page gets it, in sb->line without its closing brace: the members and their
 * order json_pack gave them. */
static struct sb_out *sms_line(struct wx_sandbox *sb, const char *id, const char *masked,
                               const char *text, const char *ref, bool repeat, bool auth)
{
    struct sb_out *o = &sb->line;
    o->len = 0;
    SB_OUT_LIT(o, "{\"id\":");
    sb_out_str(o, id, strlen(id));
    SB_OUT_LIT(o, ",\"mobile\":");
    sb_out_str(o, masked, strlen(masked));
    SB_OUT_LIT(o, ",\"text\":");
    sb_out_str(o, text, strlen(text));
    SB_OUT_LIT(o, ",\"ref\":");
    sb_out_str(o, ref, strlen(ref));
    if (repeat) {
        SB_OUT_LIT(o, ",\"repeat\":true");
    } else {
        SB_OUT_LIT(o, ",\"repeat\":false");
    }
    if (auth) {
        SB_OUT_LIT(o, ",\"auth\":true");
    } else {
        SB_OUT_LIT(o, ",\"auth\":false");
    }
    return o;
}

/* An SMS that passed the checks: shown, counted, observed, answered. */
static void sms_accept(struct wx_sandbox *sb, wx_http_req_t *req, const char *mobile,
                       const char *text, const char *ref)
{
    bool repeat = ref_seen(sb->sms, ref);
    bool auth = wx_http_header(req, "Authorization") != NULL;
    char id[24], masked[WX_SANDBOX_MOBILE_MAX + 1];
    uint64_t id_num = sb->sms->next_id++;
    snprintf(id, sizeof id, "%llu", (unsigned long long)id_num);
    mask_mobile(mobile, masked);
    sb->stats.sms_sent++;
    if (repeat) sb->stats.sms_duplicates++;
    sms_keep(sb, sms_line(sb, id, masked, text, ref, repeat, auth), mobile, text, id_num);
    sb_observe(sb, WX_SANDBOX_MSG_SMS, mobile, ref, text, repeat, 0);
    WX_DEBUG("sandbox: SMS %s to %s%s", id, masked, repeat ? ", a ref seen before" : "");
    char answer[64];
    int n = snprintf(answer, sizeof answer, "{\"code\":0,\"message\":\"ok\",\"id\":\"%s\"}", id);
    assert(n > 0);
    assert((size_t)n < sizeof answer);
    sb_reply_text(req, 200, answer, (size_t)n);
}

void sb_sms_send_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    (void)query;
    if (sb_api_begin(sb, req, SB_EP_SMS, false, sb_sms_send_handler)) return;
    size_t len;
    const uint8_t *body = wx_http_body(req, &len);
    if (len > WX_SANDBOX_SMS_BODY_MAX) {
        char why[64];
        snprintf(why, sizeof why, "the body is over %u bytes", WX_SANDBOX_SMS_BODY_MAX);
        sms_error(sb, req, 413, why);
        return;
    }
    struct sb_doc d;
    bool read = body != NULL && sb_doc_load(&d, sb->scratch, WX_SANDBOX_API_BODY_MAX + 1, body, len,
                                            JSON_REJECT_DUPLICATES) == 0;
    const char *mobile, *text, *ref;
    const char *why = read ? sms_check(&d, &mobile, &text, &ref) : "the body must be a JSON object";
    if (why != NULL) {
        sms_error(sb, req, 400, why);
    } else {
        sms_accept(sb, req, mobile, text, ref);
    }
    if (read) sb_doc_free(&d);
}
