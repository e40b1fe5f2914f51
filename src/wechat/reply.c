/*
 * reply.c - passive reply XML: what the webhook answers a message with, in the body of the
 * HTTP 200 (README §2.3).
 *
 * The builders take the inbound message so the addresses cannot be swapped the wrong way (a
 * classic cause of "this account cannot provide service"): the reply goes to its sender and
 * comes from the account it was sent to. Text goes into CDATA, with "]]>" split over two
 * sections, so nothing a follower or our own templates write can end a section early. Output
 * is bounded twice: by the caller's buffer and by WX_WECHAT_REPLY_MAX.
 */
#include "wechat/wechat.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A bounded writer: once something does not fit (or cannot be written), it stays failed. */
struct out {
    char *buf;
    size_t len; /* bytes written */
    size_t max; /* bytes that may be written, the NUL excluded */
    bool bad;   /* something did not fit or was not representable */
};

static struct out out_init(char *buf, size_t cap)
{
    assert(buf != NULL && cap > 0);
    size_t max = cap - 1;
    if (max > WX_WECHAT_REPLY_MAX) max = WX_WECHAT_REPLY_MAX;
    return (struct out){.buf = buf, .max = max};
}

static void put_bytes(struct out *o, const char *s, size_t n)
{
    if (o->bad) return;
    if (n > o->max - o->len) {
        o->bad = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put(struct out *o, const char *s)
{
    put_bytes(o, s, strlen(s));
}

/* XML 1.0 allows no control character but tab, LF and CR, not even inside CDATA. */
static bool has_forbidden_control(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return true;
    }
    return false;
}

/* Writes s (NULL = empty) as CDATA: each "]]>" becomes "]]" "]]><![CDATA[" ">". */
static void put_cdata(struct out *o, const char *s)
{
    if (s == NULL) s = "";
    if (has_forbidden_control(s)) {
        o->bad = true;
        return;
    }
    put(o, "<![CDATA[");
    const char *end;
    while ((end = strstr(s, "]]>")) != NULL) {
        put_bytes(o, s, (size_t)(end - s) + 2); /* up to and including "]]" */
        put(o, "]]><![CDATA[");
        s = end + 2; /* the '>' starts the next section */
    }
    put(o, s);
    put(o, "]]>");
}

/* <tag><![CDATA[text]]></tag> and a newline. */
static void put_text_element(struct out *o, const char *tag, const char *text)
{
    put(o, "<");
    put(o, tag);
    put(o, ">");
    put_cdata(o, text);
    put(o, "</");
    put(o, tag);
    put(o, ">\n");
}

/* The part every reply shares, up to and including its MsgType line. */
static void put_head(struct out *o, const struct wx_wechat_msg *in, int64_t create_time,
                     const char *msg_type)
{
    assert(in != NULL);
    assert(create_time >= 0);
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, create_time);
    assert(n > 0 && (size_t)n < sizeof num);
    put(o, "<xml>\n");
    put_text_element(o, "ToUserName", in->from_user); /* back to the sender */
    put_text_element(o, "FromUserName", in->to_user); /* from our account */
    put(o, "<CreateTime>");
    put(o, num);
    put(o, "</CreateTime>\n");
    put_text_element(o, "MsgType", msg_type);
}

/* Ends the XML; returns its length, or -1 (with out emptied) if anything went wrong. */
static int finish(struct out *o)
{
    put(o, "</xml>");
    if (o->bad) {
        o->buf[0] = '\0';
        return -1;
    }
    assert(o->len <= WX_WECHAT_REPLY_MAX);
    o->buf[o->len] = '\0';
    return (int)o->len;
}

int wx_wechat_reply_text(const struct wx_wechat_msg *in, int64_t create_time, const char *content,
                         char *out, size_t cap)
{
    assert(content != NULL);
    struct out o = out_init(out, cap);
    put_head(&o, in, create_time, "text");
    put_text_element(&o, "Content", content);
    return finish(&o);
}

int wx_wechat_reply_news(const struct wx_wechat_msg *in, int64_t create_time,
                         const struct wx_wechat_article *articles, size_t n, char *out, size_t cap)
{
    assert(articles != NULL);
    assert(n >= 1 && n <= WX_WECHAT_NEWS_MAX);
    struct out o = out_init(out, cap);
    char count[8];
    snprintf(count, sizeof count, "%zu", n);
    put_head(&o, in, create_time, "news");
    put(&o, "<ArticleCount>");
    put(&o, count);
    put(&o, "</ArticleCount>\n<Articles>\n");
    for (size_t i = 0; i < n; i++) {
        put(&o, "<item>\n");
        put_text_element(&o, "Title", articles[i].title);
        put_text_element(&o, "Description", articles[i].description);
        put_text_element(&o, "PicUrl", articles[i].pic_url);
        put_text_element(&o, "Url", articles[i].url);
        put(&o, "</item>\n");
    }
    put(&o, "</Articles>\n");
    return finish(&o);
}

int wx_wechat_reply_image(const struct wx_wechat_msg *in, int64_t create_time, const char *media_id,
                          char *out, size_t cap)
{
    assert(media_id != NULL);
    struct out o = out_init(out, cap);
    put_head(&o, in, create_time, "image");
    put(&o, "<Image>\n"); /* nested: a flat MediaId is silently not shown */
    put_text_element(&o, "MediaId", media_id);
    put(&o, "</Image>\n");
    return finish(&o);
}

int wx_wechat_reply_transfer_customer_service(const struct wx_wechat_msg *in, int64_t create_time,
                                              char *out, size_t cap)
{
    struct out o = out_init(out, cap);
    put_head(&o, in, create_time, "transfer_customer_service");
    return finish(&o);
}
