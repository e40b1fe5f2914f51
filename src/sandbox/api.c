/*
 * api.c - the platform API calls that reach followers: customer-service messages, and the
 * temporary media they may show (upload, and download for the page); template messages are
 * template.c's, through the same check of the follower.
 *
 * Checks run in the platform's order: the fault and the access_token first, then the body,
 * then the follower (40003 unknown, 43004 not following, 43101 refuses messages, 45015
 * outside the 48-hour window for customer service), then the message itself. What passes
 * appears on the follower's phone at once, and the observer (wx_sandbox_set_observer) hears
 * of it before the caller has its answer.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/log.h"

#define CS_WINDOW_MS     (48 * 3600 * 1000LL) /* customer service: 48 h after the last action */
#define MEDIA_TTL_MS     (3 * 86400 * 1000LL) /* temporary media live three days */
#define THUMB_MAX        (64u << 10)          /* a thumb is a JPG of at most 64 KB */
#define ARTICLE_TEXT_MAX 1024                 /* bytes of a news title or description */

/* The built-in image: a 32x32 PNG, a white dot on WeChat green. */
static const uint8_t builtin_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x20, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfc, 0x18, 0xed,
    0xa3, 0x00, 0x00, 0x00, 0x72, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0xed, 0xd6, 0x31, 0x12, 0xc0,
    0x20, 0x08, 0x04, 0xc0, 0xeb, 0xfc, 0x66, 0xbe, 0x9a, 0x07, 0xf9, 0x06, 0xd2, 0xc7, 0x19, 0x40,
    0x81, 0x4b, 0x11, 0x6e, 0xac, 0x6f, 0x1b, 0x05, 0x31, 0x8b, 0x83, 0x06, 0xb2, 0x80, 0x71, 0x5f,
    0xaf, 0x93, 0x03, 0xac, 0xbd, 0xbb, 0x12, 0x82, 0xed, 0xa6, 0x81, 0x78, 0xbb, 0x6e, 0x20, 0xa5,
    0x5d, 0x31, 0xe0, 0x6c, 0x97, 0x25, 0x4e, 0x03, 0x67, 0xed, 0x7e, 0xc3, 0x06, 0x44, 0x4d, 0x14,
    0x10, 0x47, 0x36, 0x80, 0x83, 0x76, 0xd3, 0x68, 0xe0, 0x6f, 0x40, 0xf9, 0x35, 0xfd, 0xe0, 0xa1,
    0xe5, 0x8f, 0x8a, 0xf2, 0x61, 0xc7, 0x18, 0xd7, 0x8c, 0x85, 0xc3, 0x58, 0x99, 0x8c, 0xa5, 0xcf,
    0xf8, 0xb6, 0xf4, 0xd7, 0x91, 0x00, 0x3c, 0x7d, 0x4e, 0x64, 0x14, 0x49, 0x33, 0xa1, 0xd0, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

static const struct sb_media builtin_media = {
    .id = SB_BUILTIN_MEDIA_ID,
    .type = "image",
    .mime = "image/png",
    .data = (uint8_t *)builtin_png,
    .len = sizeof builtin_png,
};

/* ---- the follower a message is for ----------------------------------------------------------- */

struct sb_follower *sb_api_recipient(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep,
                                     const char *touser)
{
    struct sb_follower *f = touser != NULL ? sb_follower_find(sb, touser) : NULL;
    if (f == NULL) {
        sb_api_error(sb, req, ep, 40003, "invalid openid");
    } else if (!f->following) {
        sb_api_error(sb, req, ep, 43004, "require subscribe");
    } else if (f->refuses) {
        sb_api_error(sb, req, ep, 43101, "user refuse to accept the msg");
    } else if (ep == SB_EP_CUSTOM_SEND && sb_now_ms(sb) - f->active_ms > CS_WINDOW_MS) {
        sb_api_error(sb, req, ep, 45015, "response out of time limit or subscription is canceled");
    } else {
        return f;
    }
    return NULL;
}

/* A string member of at most max bytes of text; "" when absent. NULL when it is not one. */
static const char *text_member(const json_t *o, const char *key, size_t max)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL) return "";
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    return n <= max && strlen(s) == n && sb_is_text(s, n) ? s : NULL;
}

/* ---- customer-service messages --------------------------------------------------------------- */

/* The chat line for a customer-service body, or NULL with the errcode to answer. */
static json_t *custom_line(struct wx_sandbox *sb, const json_t *o, int *code, const char **msg)
{
    const char *type = sb_json_str(o, "msgtype");
    const json_t *part = type != NULL ? json_object_get(o, type) : NULL;
    *code = 47001;
    *msg = "data format error";
    if (type == NULL ||
        (strcmp(type, "text") != 0 && strcmp(type, "news") != 0 && strcmp(type, "image") != 0)) {
        *code = 40008;
        *msg = "invalid message type";
        return NULL;
    }
    if (!json_is_object(part)) return NULL;
    if (strcmp(type, "text") == 0) {
        const char *content = text_member(part, "content", WX_SANDBOX_TEXT_MAX);
        if (content == NULL || content[0] == '\0') {
            *code = content == NULL ? 45002 : 44004;
            *msg = content == NULL ? "content size out of limit" : "empty content";
            return NULL;
        }
        return json_pack("{s:s,s:s,s:s,s:s}", "from", "account", "type", "text", "content", content,
                         "via", "custom");
    }
    if (strcmp(type, "image") == 0) {
        const char *id = sb_json_str(part, "media_id");
        const struct sb_media *m = id != NULL ? sb_media_find(sb, id) : NULL;
        if (m == NULL || strcmp(m->type, "image") != 0) {
            *code = 40007;
            *msg = "invalid media_id";
            return NULL;
        }
        return json_pack("{s:s,s:s,s:s,s:s}", "from", "account", "type", "image", "media_id", m->id,
                         "via", "custom");
    }
    const json_t *arts = json_object_get(part, "articles");
    if (!json_is_array(arts)) return NULL;
    if (json_array_size(arts) != 1) {
        *code = json_array_size(arts) == 0 ? 44003 : 45008;
        *msg = json_array_size(arts) == 0 ? "empty news data" : "article size out of limit";
        return NULL;
    }
    const json_t *a = json_array_get(arts, 0);
    const char *title = json_is_object(a) ? text_member(a, "title", ARTICLE_TEXT_MAX) : NULL;
    const char *desc = json_is_object(a) ? text_member(a, "description", ARTICLE_TEXT_MAX) : NULL;
    const char *url = json_is_object(a) ? text_member(a, "url", SB_URL_MAX) : NULL;
    const char *pic = json_is_object(a) ? text_member(a, "picurl", SB_URL_MAX) : NULL;
    if (title == NULL || desc == NULL || url == NULL || pic == NULL) return NULL;
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "from", "account", "type", "news", "title",
                     title, "description", desc, "url", url, "pic_url", pic, "via", "custom");
}

/* What the observer reads of a valid customer-service body: the text, a news title, or "". */
static const char *custom_text(const json_t *o)
{
    const char *type = sb_json_str(o, "msgtype");
    const json_t *part = json_object_get(o, type);
    if (strcmp(type, "text") == 0) return sb_json_str(part, "content");
    if (strcmp(type, "news") == 0) {
        const char *title =
            sb_json_str(json_array_get(json_object_get(part, "articles"), 0), "title");
        return title != NULL ? title : "";
    }
    return "";
}

void sb_custom_send_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    const enum sb_endpoint ep = SB_EP_CUSTOM_SEND;
    if (sb_api_begin(sb, req, ep, true, sb_custom_send_handler) ||
        !sb_api_token_ok(sb, req, ep, query)) {
        return;
    }
    json_t *o = sb_api_body(sb, req, ep, WX_SANDBOX_API_BODY_MAX);
    if (o == NULL) return;
    struct sb_follower *f = sb_api_recipient(sb, req, ep, sb_json_str(o, "touser"));
    if (f != NULL) {
        int code;
        const char *msg;
        json_t *line = custom_line(sb, o, &code, &msg);
        if (line == NULL) {
            sb_api_error(sb, req, ep, code, msg);
        } else {
            sb_chat_post(sb, f, line);
            sb_observe(sb, WX_SANDBOX_MSG_CUSTOM, f->openid, "", custom_text(o), false, 0);
            sb_api_ok(req, NULL);
        }
    }
    json_decref(o);
}

/* ---- media ----------------------------------------------------------------------------------- */

/* The MIME type of an image by its magic bytes, or NULL. */
static const char *image_mime(const uint8_t *d, size_t len)
{
    if (len >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "image/png";
    if (len >= 3 && memcmp(d, "\xff\xd8\xff", 3) == 0) return "image/jpeg";
    if (len >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0)) {
        return "image/gif";
    }
    if (len >= 2 && memcmp(d, "BM", 2) == 0) return "image/bmp";
    return NULL;
}

const struct sb_media *sb_media_find(const struct wx_sandbox *sb, const char *id)
{
    if (strcmp(id, SB_BUILTIN_MEDIA_ID) == 0) return &builtin_media;
    int64_t now = sb_now_ms(sb);
    for (size_t i = 0; i < WX_SANDBOX_MEDIA_MAX; i++) {
        const struct sb_media *m = &sb->media[i];
        if (m->id[0] != '\0' && strcmp(m->id, id) == 0 && now < m->created_ms + MEDIA_TTL_MS) {
            return m;
        }
    }
    return NULL;
}

static void media_drop(struct wx_sandbox *sb, struct sb_media *m)
{
    assert(sb->media_bytes >= m->len);
    sb->media_bytes -= m->len;
    free(m->data);
    memset(m, 0, sizeof *m);
}

/* The oldest item, to make room. */
static struct sb_media *media_oldest(struct wx_sandbox *sb)
{
    struct sb_media *old = NULL;
    for (size_t i = 0; i < WX_SANDBOX_MEDIA_MAX; i++) {
        struct sb_media *m = &sb->media[i];
        if (m->id[0] != '\0' && (old == NULL || m->created_ms < old->created_ms)) old = m;
    }
    return old;
}

/* Stores a copy of data as new media; returns it (the oldest goes when full). */
static const struct sb_media *media_add(struct wx_sandbox *sb, const char *type, const char *mime,
                                        const void *data, size_t len)
{
    assert(len <= WX_SANDBOX_MEDIA_BYTES_MAX);
    struct sb_media *slot = NULL;
    while (sb->media_bytes + len > WX_SANDBOX_MEDIA_TOTAL_MAX) {
        media_drop(sb, media_oldest(sb));
    }
    for (size_t i = 0; i < WX_SANDBOX_MEDIA_MAX && slot == NULL; i++) {
        if (sb->media[i].id[0] == '\0') slot = &sb->media[i];
    }
    if (slot == NULL) {
        slot = media_oldest(sb);
        media_drop(sb, slot);
    }
    sb_random_chars(slot->id, SB_MEDIA_ID_LEN, true);
    snprintf(slot->type, sizeof slot->type, "%s", type);
    slot->mime = mime;
    slot->data = wx_malloc(len);
    memcpy(slot->data, data, len);
    slot->len = len;
    slot->created_ms = sb_now_ms(sb);
    sb->media_bytes += len;
    return slot;
}

void sb_media_free(struct wx_sandbox *sb)
{
    for (size_t i = 0; i < WX_SANDBOX_MEDIA_MAX; i++) {
        if (sb->media[i].id[0] != '\0') media_drop(sb, &sb->media[i]);
    }
}

/* The multipart boundary from a Content-Type header, into out; false when there is none. */
static bool boundary_of(const char *ct, char *out, size_t cap)
{
    if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0) return false;
    const char *b = strcasestr(ct, "boundary=");
    if (b == NULL) return false;
    b += 9;
    bool quoted = *b == '"';
    b += quoted;
    size_t n = strcspn(b, quoted ? "\"" : "; \t");
    if (n == 0 || n + 1 > cap || n > 70) return false;
    memcpy(out, b, n);
    out[n] = '\0';
    return true;
}

/*
 * Finds the file part named "media" in a multipart body. Returns its bytes (*len) or NULL.
 * Each part is "--B\r\nheaders\r\n\r\ncontent\r\n"; the last delimiter is "--B--".
 */
static const uint8_t *media_part(const uint8_t *body, size_t len, const char *boundary,
                                 size_t *part_len)
{
    char delim[80];
    int dl = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    const uint8_t *end = body + len;
    /* The first delimiter may open the body without the CRLF before it. */
    const uint8_t *p = memmem(body, len, delim + 2, (size_t)dl - 2);
    while (p != NULL) {
        p += dl - 2;
        if (end - p < 2 || memcmp(p, "--", 2) == 0) return NULL;
        const uint8_t *hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hdr_end == NULL) return NULL;
        const uint8_t *content = hdr_end + 4;
        const uint8_t *next = memmem(content, (size_t)(end - content), delim, (size_t)dl);
        if (next == NULL) return NULL;
        /* Headers are small; look for name="media" among them (exactly that name). */
        size_t hl = (size_t)(hdr_end - p);
        if (hl < 512) {
            char h[512];
            memcpy(h, p, hl);
            h[hl] = '\0';
            if (strcasestr(h, "content-disposition:") != NULL &&
                strstr(h, "name=\"media\"") != NULL) {
                *part_len = (size_t)(next - content);
                return content;
            }
        }
        p = next + 2;
    }
    return NULL;
}

/* Checks an upload's bytes against its type; 0, or the errcode with *msg. */
static int media_check(const char *type, const uint8_t *d, size_t len, const char **mime,
                       const char **msg)
{
    *mime = "application/octet-stream";
    if (len == 0) {
        *msg = "media data missing";
        return 41005;
    }
    if (len > WX_SANDBOX_MEDIA_BYTES_MAX || (strcmp(type, "thumb") == 0 && len > THUMB_MAX)) {
        *msg = "invalid meida size"; /* sic: the platform's spelling */
        return 40006;
    }
    if (strcmp(type, "image") == 0 || strcmp(type, "thumb") == 0) {
        *mime = image_mime(d, len);
        bool ok = *mime != NULL && (strcmp(type, "image") == 0 || strcmp(*mime, "image/jpeg") == 0);
        if (!ok) {
            *msg = "invalid file type";
            return 40005;
        }
    }
    return 0;
}

void sb_media_upload_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    const enum sb_endpoint ep = SB_EP_MEDIA_UPLOAD;
    if (sb_api_begin(sb, req, ep, true, sb_media_upload_handler) ||
        !sb_api_token_ok(sb, req, ep, query)) {
        return;
    }
    char type[16], boundary[80];
    int n = wx_http_query_param(query, "type", type, sizeof type);
    if (n <= 0 || (strcmp(type, "image") != 0 && strcmp(type, "voice") != 0 &&
                   strcmp(type, "video") != 0 && strcmp(type, "thumb") != 0)) {
        sb_api_error(sb, req, ep, 40004, "invalid media type");
        return;
    }
    size_t len, part_len = 0;
    const uint8_t *body = wx_http_body(req, &len);
    const char *ct = wx_http_header(req, "Content-Type");
    const uint8_t *part = body != NULL && boundary_of(ct, boundary, sizeof boundary)
                              ? media_part(body, len, boundary, &part_len)
                              : NULL;
    const char *mime, *msg = "media data missing";
    int code = part != NULL ? media_check(type, part, part_len, &mime, &msg) : 41005;
    if (code != 0) {
        sb_api_error(sb, req, ep, code, msg);
        return;
    }
    const struct sb_media *m = media_add(sb, type, mime, part, part_len);
    sb_api_reply(req, json_pack("{s:s,s:s,s:I}", "type", m->type, "media_id", m->id, "created_at",
                                (json_int_t)(m->created_ms / 1000)));
}

void sb_media_get_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *id)
{
    const struct sb_media *m = sb_is_word(id, SB_MEDIA_ID_LEN) ? sb_media_find(sb, id) : NULL;
    if (m == NULL) {
        wx_http_error(req, 404, "no such media (unknown or older than three days)");
        return;
    }
    wx_http_add_header(req, "Cache-Control", "private, max-age=3600");
    wx_http_send(req, 200, m->mime, m->data, m->len);
}
