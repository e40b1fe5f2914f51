/*
 * reply.c - the webhook's answer to a follower, judged as the platform judges it.
 *
 * "success" or an empty body means "nothing to say now" and the phone shows nothing. Anything
 * else must be a passive reply (vectors/wechat/README.md §2.3): addressed back to the
 * follower (ToUserName = the OpenID) from the account (FromUserName = the gh_ id), of a type
 * the client can show, and in safe mode encrypted and signed (§3.8; in compat mode either
 * form is accepted, in plain mode only the plain one). A reply that breaks a rule shows
 * "该公众号暂时无法提供服务，请稍后再试" on the phone, as the real client does; the reason
 * goes to the log and, for developers, into the notice's "detail".
 *
 * The parser is expat, with no DTD, entities or processing instructions, and caps on depth,
 * field sizes and article count. It is the sandbox's own, not the bank's (src/wechat), so the
 * two sides of the protocol are checked by different code.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "util/alloc.h"
#include "util/log.h"

#define UNAVAILABLE  "该公众号暂时无法提供服务，请稍后再试"
#define DEPTH_MAX    WX_WECHAT_XML_DEPTH_MAX
#define TEXT_MAX     (WX_WECHAT_BODY_MAX) /* one element's text (Encrypt is the longest) */
#define NAME_MAX_XML 32

enum field {
    F_TO,
    F_FROM,
    F_CREATE_TIME,
    F_MSG_TYPE,
    F_CONTENT,
    F_ENCRYPT,
    F_MSG_SIGNATURE,
    F_TIMESTAMP,
    F_NONCE,
    F_ARTICLE_COUNT,
    F_MEDIA_ID,
    F_COUNT
};

static const char *const top_names[F_COUNT] = {
    [F_TO] = "ToUserName",
    [F_FROM] = "FromUserName",
    [F_CREATE_TIME] = "CreateTime",
    [F_MSG_TYPE] = "MsgType",
    [F_CONTENT] = "Content",
    [F_ENCRYPT] = "Encrypt",
    [F_MSG_SIGNATURE] = "MsgSignature",
    [F_TIMESTAMP] = "TimeStamp",
    [F_NONCE] = "Nonce",
    [F_ARTICLE_COUNT] = "ArticleCount",
    [F_MEDIA_ID] = NULL, /* under <Image> */
};

enum article_field { A_TITLE, A_DESCRIPTION, A_PIC_URL, A_URL, A_COUNT };
static const char *const article_names[A_COUNT] = {"Title", "Description", "PicUrl", "Url"};

/* A parsed reply: every field a heap string or NULL. */
struct reply {
    char *f[F_COUNT];
    char *article[WX_WECHAT_NEWS_MAX][A_COUNT];
    unsigned narticles;
};

struct parser {
    XML_Parser xp;
    struct reply *r;
    unsigned depth;
    char path[DEPTH_MAX + 1][NAME_MAX_XML]; /* element names from the root */
    char *text;                             /* text of the innermost element */
    size_t len;
    const char *why; /* set on failure */
};

static void reply_clear(struct reply *r)
{
    for (int i = 0; i < F_COUNT; i++)
        free(r->f[i]);
    for (unsigned k = 0; k < WX_WECHAT_NEWS_MAX; k++) {
        for (int i = 0; i < A_COUNT; i++)
            free(r->article[k][i]);
    }
    memset(r, 0, sizeof *r);
}

static void stop(struct parser *p, const char *why)
{
    if (p->why == NULL) p->why = why;
    XML_StopParser(p->xp, XML_FALSE);
}

static void XMLCALL on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    struct parser *p = arg;
    if (p->depth >= DEPTH_MAX || strlen(name) >= NAME_MAX_XML) {
        stop(p, "elements nest too deep or a name is too long");
        return;
    }
    if (p->depth == 0 && strcmp(name, "xml") != 0) {
        stop(p, "the root element is not <xml>");
        return;
    }
    if (p->depth == 2 && strcmp(p->path[1], "Articles") == 0 && strcmp(name, "item") == 0) {
        if (p->r->narticles >= WX_WECHAT_NEWS_MAX) {
            stop(p, "more than 8 articles");
            return;
        }
        p->r->narticles++;
    }
    snprintf(p->path[p->depth++], NAME_MAX_XML, "%s", name);
    p->len = 0;
}

static void XMLCALL on_text(void *arg, const XML_Char *s, int len)
{
    struct parser *p = arg;
    if (p->len + (size_t)len > TEXT_MAX) {
        stop(p, "an element's text is too long");
        return;
    }
    p->text = wx_realloc(p->text, p->len + (size_t)len + 1);
    memcpy(p->text + p->len, s, (size_t)len);
    p->len += (size_t)len;
    p->text[p->len] = '\0';
}

/* Where the element that just ended goes, or NULL (ignored). */
static char **slot_for(struct parser *p)
{
    const char *name = p->path[p->depth - 1];
    if (p->depth == 2) {
        for (int i = 0; i < F_COUNT; i++) {
            if (top_names[i] != NULL && strcmp(name, top_names[i]) == 0) return &p->r->f[i];
        }
    } else if (p->depth == 3 && strcmp(p->path[1], "Image") == 0 && strcmp(name, "MediaId") == 0) {
        return &p->r->f[F_MEDIA_ID];
    } else if (p->depth == 4 && strcmp(p->path[1], "Articles") == 0 &&
               strcmp(p->path[2], "item") == 0) {
        for (int i = 0; i < A_COUNT; i++) {
            if (strcmp(name, article_names[i]) == 0) {
                return &p->r->article[p->r->narticles - 1][i];
            }
        }
    }
    return NULL;
}

static void XMLCALL on_end(void *arg, const XML_Char *name)
{
    (void)name;
    struct parser *p = arg;
    assert(p->depth > 0);
    char **slot = slot_for(p);
    if (slot != NULL) {
        if (*slot != NULL) {
            stop(p, "a field appears twice");
            return;
        }
        *slot = wx_strndup(p->len > 0 ? p->text : "", p->len);
    }
    p->len = 0;
    p->depth--;
}

static void XMLCALL on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    stop(arg, "DOCTYPE is not allowed");
}

static void XMLCALL on_entity(void *arg, const XML_Char *name, int pe, const XML_Char *value,
                              int vlen, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    (void)name, (void)pe, (void)value, (void)vlen, (void)base, (void)sysid, (void)pubid,
        (void)notation;
    stop(arg, "entity declarations are not allowed");
}

static void XMLCALL on_pi(void *arg, const XML_Char *target, const XML_Char *data)
{
    (void)target;
    (void)data;
    stop(arg, "processing instructions are not allowed");
}

/* Parses body into r. 0, or -1 with the reason in *why. */
static int parse(const char *body, size_t len, struct reply *r, const char **why)
{
    struct parser p = {.r = r};
    memset(r, 0, sizeof *r);
    p.xp = XML_ParserCreate("UTF-8");
    if (p.xp == NULL) WX_FATAL("expat: out of memory");
    XML_SetUserData(p.xp, &p);
    XML_SetElementHandler(p.xp, on_start, on_end);
    XML_SetCharacterDataHandler(p.xp, on_text);
    XML_SetStartDoctypeDeclHandler(p.xp, on_doctype);
    XML_SetEntityDeclHandler(p.xp, on_entity);
    XML_SetProcessingInstructionHandler(p.xp, on_pi);
    int ok = XML_Parse(p.xp, body, (int)len, XML_TRUE) == XML_STATUS_OK;
    if (!ok && p.why == NULL) p.why = XML_ErrorString(XML_GetErrorCode(p.xp));
    XML_ParserFree(p.xp);
    free(p.text);
    *why = p.why;
    if (ok && p.why == NULL) return 0;
    reply_clear(r);
    return -1;
}

/* ---- judging and showing --------------------------------------------------------------------- */

void sb_reply_unavailable(struct wx_sandbox *sb, struct sb_follower *f, const char *why)
{
    sb->stats.webhook_invalid++;
    WX_WARN("sandbox: the phone shows \"service unavailable\": %s", why);
    sb_chat_post(sb, f,
                 json_pack("{s:s,s:s,s:s,s:s}", "from", "system", "type", "notice", "content",
                           UNAVAILABLE, "detail", why));
}

/* Decrypts an encrypted reply into *plain (heap). NULL on success, else why not. */
static const char *decrypt(struct wx_sandbox *sb, const struct reply *r, char **plain,
                           size_t *plain_len)
{
    if (sb->mode == WX_SANDBOX_PLAIN) return "an encrypted reply in plain mode";
    if (r->f[F_MSG_SIGNATURE] == NULL || r->f[F_TIMESTAMP] == NULL || r->f[F_NONCE] == NULL) {
        return "an encrypted reply without MsgSignature, TimeStamp or Nonce";
    }
    size_t cap = wx_wechat_decrypt_cap(strlen(r->f[F_ENCRYPT]));
    *plain = wx_malloc(cap);
    int rc = wx_wechat_decrypt_msg(&sb->crypt, r->f[F_MSG_SIGNATURE], r->f[F_TIMESTAMP],
                                   r->f[F_NONCE], r->f[F_ENCRYPT], *plain, cap, plain_len);
    if (rc == 0) return NULL;
    free(*plain);
    *plain = NULL;
    return rc == WX_WECHAT_EVALIDATE_SIGNATURE ? "MsgSignature does not match"
           : rc == WX_WECHAT_EVALIDATE_APPID   ? "encrypted for another appid"
                                               : "Encrypt does not decrypt with the account's key";
}

/* The chat line for a valid plain reply, or NULL with *why. */
static json_t *reply_line(struct wx_sandbox *sb, const struct sb_follower *f, const struct reply *r,
                          const char **why)
{
    const char *type = r->f[F_MSG_TYPE];
    const char *content = r->f[F_CONTENT];
    if (r->f[F_TO] == NULL || strcmp(r->f[F_TO], f->openid) != 0) {
        *why = "ToUserName is not the follower's OpenID (swapped with FromUserName?)";
    } else if (r->f[F_FROM] == NULL || strcmp(r->f[F_FROM], sb->account) != 0) {
        *why = "FromUserName is not the account's original id";
    } else if (r->f[F_CREATE_TIME] == NULL || r->f[F_CREATE_TIME][0] == '\0' ||
               strspn(r->f[F_CREATE_TIME], "0123456789") != strlen(r->f[F_CREATE_TIME])) {
        *why = "CreateTime is missing or not a number";
    } else if (type == NULL) {
        *why = "MsgType is missing";
    } else if (strcmp(type, "text") == 0) {
        if (content != NULL && content[0] != '\0') {
            return json_pack("{s:s,s:s,s:s,s:s}", "from", "account", "type", "text", "content",
                             content, "via", "reply");
        }
        *why = "a text reply with no Content (reply \"success\" to say nothing)";
    } else if (strcmp(type, "image") == 0) {
        const char *id = r->f[F_MEDIA_ID];
        const struct sb_media *m = id != NULL ? sb_media_find(sb, id) : NULL;
        if (m != NULL && strcmp(m->type, "image") == 0) {
            return json_pack("{s:s,s:s,s:s,s:s}", "from", "account", "type", "image", "media_id",
                             m->id, "via", "reply");
        }
        *why = "an image reply whose <Image><MediaId> is not an uploaded image";
    } else if (strcmp(type, "news") == 0) {
        char count[4];
        snprintf(count, sizeof count, "%u", r->narticles);
        if (r->narticles > 0 && r->f[F_ARTICLE_COUNT] != NULL &&
            strcmp(r->f[F_ARTICLE_COUNT], count) == 0) {
            char *const *a = r->article[0]; /* the client shows one article since 2018 */
            return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "from", "account", "type", "news",
                             "title", a[A_TITLE] ? a[A_TITLE] : "", "description",
                             a[A_DESCRIPTION] ? a[A_DESCRIPTION] : "", "pic_url",
                             a[A_PIC_URL] ? a[A_PIC_URL] : "", "url", a[A_URL] ? a[A_URL] : "",
                             "via", "reply");
        }
        *why = "a news reply whose ArticleCount is not its number of <item>s (1 to 8)";
    } else if (strcmp(type, "transfer_customer_service") == 0) {
        return json_pack("{s:s,s:s,s:s}", "from", "system", "type", "transfer", "content",
                         "已转接人工客服 · transferred to customer service");
    } else {
        *why = "a MsgType the sandbox's phone does not show (text, image, news, "
               "transfer_customer_service)";
    }
    return NULL;
}

/* Judges a reply; shows it or the notice. */
static void judge(struct wx_sandbox *sb, struct sb_follower *f, const char *body, size_t len)
{
    struct reply r, inner;
    const char *why = NULL;
    char *plain = NULL;
    size_t plain_len = 0;
    if (parse(body, len, &r, &why) != 0) {
        sb_reply_unavailable(sb, f, why);
        return;
    }
    const struct reply *shown = &r;
    if (r.f[F_ENCRYPT] != NULL) {
        why = decrypt(sb, &r, &plain, &plain_len);
        if (why == NULL && parse(plain, plain_len, &inner, &why) == 0) {
            shown = &inner;
            if (inner.f[F_ENCRYPT] != NULL) why = "an encrypted reply inside an encrypted reply";
        }
    } else if (sb->mode == WX_SANDBOX_SAFE) {
        why = "a plain reply in safe mode (it must be encrypted)";
    }
    json_t *line = why == NULL ? reply_line(sb, f, shown, &why) : NULL;
    if (line != NULL) {
        sb->stats.webhook_replies++;
        sb_chat_post(sb, f, line);
    } else {
        sb_reply_unavailable(sb, f, why);
    }
    if (shown == &inner) reply_clear(&inner);
    reply_clear(&r);
    free(plain);
}

void sb_reply_show(struct wx_sandbox *sb, struct sb_follower *f, const char *body, size_t len)
{
    if (len == 0 || (len == 7 && memcmp(body, "success", 7) == 0)) return;
    if (len > WX_WECHAT_BODY_MAX || !sb_is_text(body, len)) {
        sb_reply_unavailable(sb, f, "the reply is not UTF-8 text of at most 64 KiB");
        return;
    }
    judge(sb, f, body, len);
}
