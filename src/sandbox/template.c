/*
 * template.c - /cgi-bin/message/template/send: the platform's template messages, the bank's
 * alerts, and the client_msg_id memory that absorbs a repeated send.
 *
 * Checks run in the platform's order (see api.c): the fault and the access_token, the body,
 * the follower, then template_id (40037), url (40039), a data value over
 * WX_SANDBOX_TEMPLATE_VALUE_MAX bytes (47003) and the data's shape (47001). What passes is
 * shown on the follower's phone, heard by the observer, and later reported to the webhook
 * (TEMPLATESENDJOBFINISH).
 *
 * This is the sandbox's busiest call: the bank sends one per alert, up to 20,000 a second.
 * So the body is read by json.c without a jansson tree when it is plain, the phone's line
 * and the answer are written as text, and the last WX_SANDBOX_CLIENT_MSG_MAX
 * (openid, client_msg_id) pairs are found through a hash table rather than a scan.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "util/siphash.h"

#define CLIENT_MSG_TTL_MS (10 * 60 * 1000LL) /* client_msg_id idempotency, as the platform */
#define ROW_KEY_MAX       64                 /* bytes of a data key */

_Static_assert((SB_CLIENT_MSG_BUCKETS & (SB_CLIENT_MSG_BUCKETS - 1)) == 0, "a power of two");
_Static_assert(SB_CLIENT_MSG_BUCKETS >= WX_SANDBOX_CLIENT_MSG_MAX, "chains stay short");

/* One row of the card the phone shows. */
struct row {
    const char *key, *value; /* NUL-ended, in the body's strings */
    size_t key_len, value_len;
};

/* A template send that passed every check. */
struct template_send {
    const char *tid, *url, *cmid; /* cmid "" when none */
    struct row rows[WX_SANDBOX_TEMPLATE_ROWS_MAX];
    size_t nrows;
};

/* ---- client_msg_id memory -------------------------------------------------------------------- */

/* The bucket of openid + id: a chain of the slots that may hold them. */
static uint32_t *client_msg_bucket(struct wx_sandbox *sb, const char *openid, const char *id)
{
    char key[WX_OPENID_MAX + 1 + SB_CLIENT_MSG_MAX];
    size_t olen = strlen(openid), ilen = strlen(id);
    assert(olen <= WX_OPENID_MAX);
    assert(ilen <= SB_CLIENT_MSG_MAX);
    memcpy(key, openid, olen);
    key[olen] = '\0'; /* neither holds a NUL: ("ab", "c") and ("a", "bc") differ */
    memcpy(key + olen + 1, id, ilen);
    uint64_t h = wx_siphash64(sb->hash_key, key, olen + 1 + ilen);
    return &sb->client_msg_buckets[h & (SB_CLIENT_MSG_BUCKETS - 1)];
}

/* The first answer to openid + client_msg_id in the last 10 minutes, or 0. */
static uint64_t client_msg_seen(struct wx_sandbox *sb, const char *openid, const char *id)
{
    int64_t now = sb_now_ms(sb);
    for (uint32_t i = *client_msg_bucket(sb, openid, id); i != 0; i = sb->client_msgs[i - 1].next) {
        const struct sb_client_msg *c = &sb->client_msgs[i - 1];
        if (now < c->expires_ms && strcmp(c->id, id) == 0 && strcmp(c->openid, openid) == 0) {
            return c->msgid;
        }
    }
    return 0;
}

/* Takes the pair in slot out of its chain. */
static void client_msg_unlink(struct wx_sandbox *sb, uint32_t slot)
{
    struct sb_client_msg *c = &sb->client_msgs[slot];
    uint32_t *link = client_msg_bucket(sb, c->openid, c->id);
    while (*link != slot + 1) {
        assert(*link != 0); /* every pair kept is in its bucket's chain */
        link = &sb->client_msgs[*link - 1].next;
    }
    *link = c->next;
}

/* Remembers openid + id for 10 minutes in the oldest slot, whatever it held, as before. */
static void client_msg_remember(struct wx_sandbox *sb, const char *openid, const char *id,
                                uint64_t msgid)
{
    assert(msgid != 0);
    uint32_t slot = sb->next_client_msg++ % WX_SANDBOX_CLIENT_MSG_MAX;
    struct sb_client_msg *c = &sb->client_msgs[slot];
    if (c->msgid != 0) client_msg_unlink(sb, slot);
    uint32_t *head = client_msg_bucket(sb, openid, id);
    size_t olen = strlen(openid), ilen = strlen(id);
    assert(olen < sizeof c->openid);
    assert(ilen < sizeof c->id);
    memcpy(c->openid, openid, olen + 1);
    memcpy(c->id, id, ilen + 1);
    c->msgid = msgid;
    c->expires_ms = sb_now_ms(sb) + CLIENT_MSG_TTL_MS;
    c->next = *head;
    *head = slot + 1;
}

/* ---- the body -------------------------------------------------------------------------------- */

/* A string member of at most max bytes of text; "" when absent. NULL when it is not one. */
static const char *text_member(const struct sb_doc *d, const struct sb_jnode *o, const char *key,
                               size_t max)
{
    const struct sb_jnode *v = sb_doc_get(d, o, key);
    if (v == NULL) return "";
    if (v->kind != SB_J_STRING) return NULL;
    return v->len <= max && strlen(v->str) == v->len && sb_is_text(v->str, v->len) ? v->str : NULL;
}

/*
 * The card the phone shows: one row per data key, in the order sent. "first" and "remark"
 * are left out, as the platform has dropped them since May 2023. False when data is not an
 * object of at most WX_SANDBOX_TEMPLATE_ROWS_MAX {"value": text} objects; *too_long tells
 * whether the value looked at last passes WX_SANDBOX_TEMPLATE_VALUE_MAX bytes.
 */
static bool template_rows(const struct sb_doc *d, const struct sb_jnode *data,
                          struct template_send *t, bool *too_long)
{
    *too_long = false;
    t->nrows = 0;
    if (data == NULL || data->kind != SB_J_OBJECT || data->count > WX_SANDBOX_TEMPLATE_ROWS_MAX) {
        return false;
    }
    for (const struct sb_jnode *v = sb_doc_first(d, data); v != NULL; v = sb_doc_next(d, v)) {
        const struct sb_jnode *text = sb_doc_get(d, v, "value");
        const char *value =
            text != NULL ? text_member(d, v, "value", WX_SANDBOX_TEMPLATE_VALUE_MAX) : NULL;
        *too_long =
            text != NULL && text->kind == SB_J_STRING && text->len > WX_SANDBOX_TEMPLATE_VALUE_MAX;
        size_t key_len = strlen(v->key);
        if (value == NULL || key_len > ROW_KEY_MAX) return false;
        if (strcmp(v->key, "first") == 0 || strcmp(v->key, "remark") == 0) continue;
        assert(t->nrows < WX_SANDBOX_TEMPLATE_ROWS_MAX);
        t->rows[t->nrows++] = (struct row){v->key, value, key_len, text->len};
    }
    return true;
}

/* ---- what is shown and answered -------------------------------------------------------------- */

/* The phone's card: the line jansson wrote before, byte for byte (json_pack's key order). */
static void template_line(struct wx_sandbox *sb, struct sb_follower *f,
                          const struct template_send *t, uint64_t msgid)
{
    struct sb_out *o = &sb->line;
    o->len = 0;
    SB_OUT_LIT(o, "{\"from\":\"account\",\"type\":\"template\",\"template_id\":");
    sb_out_str(o, t->tid, strlen(t->tid));
    SB_OUT_LIT(o, ",\"url\":");
    sb_out_str(o, t->url, strlen(t->url));
    SB_OUT_LIT(o, ",\"rows\":[");
    for (size_t i = 0; i < t->nrows; i++) {
        SB_OUT_LIT(o, "{\"key\":");
        sb_out_str(o, t->rows[i].key, t->rows[i].key_len);
        SB_OUT_LIT(o, ",\"value\":");
        sb_out_str(o, t->rows[i].value, t->rows[i].value_len);
        SB_OUT_LIT(o, "}");
        if (i + 1 < t->nrows) SB_OUT_LIT(o, ",");
    }
    SB_OUT_LIT(o, "],\"msgid\":\"");
    assert(msgid <= INT64_MAX);    /* msgids start near 2e18 and count up by one */
    sb_out_int(o, (int64_t)msgid); /* a string: a double would round it (past 2^53) */
    SB_OUT_LIT(o, "\"");
    sb_chat_post_text(sb, f, o);
}

/* The rows as "key=value\n" lines, for the observer (in sb->text, until the next send). */
static const char *rows_text(struct wx_sandbox *sb, const struct template_send *t)
{
    struct sb_out *o = &sb->text;
    o->len = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        sb_out_raw(o, t->rows[i].key, t->rows[i].key_len);
        SB_OUT_LIT(o, "=");
        sb_out_raw(o, t->rows[i].value, t->rows[i].value_len);
        SB_OUT_LIT(o, "\n");
    }
    return sb_out_cstr(o);
}

/*
 * Shows an accepted template message on f's phone and answers with its msgid. A repeat of
 * openid + client_msg_id within 10 minutes is absorbed, as the platform does: the first
 * answer again, nothing shown, and template_repeats counts it.
 */
static void template_accept(struct wx_sandbox *sb, wx_http_req_t *req, struct sb_follower *f,
                            const struct template_send *t)
{
    uint64_t msgid = t->cmid[0] != '\0' ? client_msg_seen(sb, f->openid, t->cmid) : 0;
    bool repeat = msgid != 0;
    if (repeat) {
        sb->stats.template_repeats++;
    } else {
        msgid = sb->next_template_msgid++;
        if (t->cmid[0] != '\0') client_msg_remember(sb, f->openid, t->cmid, msgid);
        template_line(sb, f, t, msgid);
        sb_template_finish_later(sb, f->openid, msgid);
    }
    if (sb->observer != NULL) {
        sb_observe(sb, WX_SANDBOX_MSG_TEMPLATE, f->openid, t->cmid, rows_text(sb, t), repeat,
                   msgid);
    }
    char answer[80];
    int n = snprintf(answer, sizeof answer, "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":%lld}",
                     (long long)msgid);
    assert(n > 0);
    assert((size_t)n < sizeof answer);
    sb_api_reply_text(req, answer, (size_t)n);
}

/* Checks the body after the follower (f, NULL when refused: answered already). */
static void template_check(struct wx_sandbox *sb, wx_http_req_t *req, struct sb_follower *f,
                           const struct sb_doc *d)
{
    const enum sb_endpoint ep = SB_EP_TEMPLATE_SEND;
    const struct sb_jnode *o = &d->nodes[0];
    struct template_send t = {
        .tid = sb_doc_str(d, o, "template_id"),
        .url = text_member(d, o, "url", SB_URL_MAX),
        .cmid = text_member(d, o, "client_msg_id", SB_CLIENT_MSG_MAX),
    };
    bool too_long = false;
    bool rows_ok = f != NULL && template_rows(d, sb_doc_get(d, o, "data"), &t, &too_long);
    if (f == NULL) {
        /* answered */
    } else if (t.tid == NULL || !sb_is_word(t.tid, SB_TEMPLATE_ID_MAX)) {
        sb_api_error(sb, req, ep, 40037, "invalid template_id");
    } else if (t.url == NULL) {
        sb_api_error(sb, req, ep, 40039, "invalid url size");
    } else if (too_long) {
        sb_api_error(sb, req, ep, 47003, "argument invalid! data.value is too long");
    } else if (!rows_ok || t.cmid == NULL) {
        sb_api_error(sb, req, ep, 47001, "data format error");
    } else {
        template_accept(sb, req, f, &t);
    }
}

void sb_template_send_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    const enum sb_endpoint ep = SB_EP_TEMPLATE_SEND;
    if (sb_api_begin(sb, req, ep, true, sb_template_send_handler) ||
        !sb_api_token_ok(sb, req, ep, query)) {
        return;
    }
    struct sb_doc d;
    if (!sb_api_doc(sb, req, ep, WX_SANDBOX_API_BODY_MAX, &d)) return;
    struct sb_follower *f = sb_api_recipient(sb, req, ep, sb_doc_str(&d, &d.nodes[0], "touser"));
    template_check(sb, req, f, &d);
    sb_doc_free(&d);
}
