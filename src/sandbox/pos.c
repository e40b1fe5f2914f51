/*
 * pos.c - the POS page: a card purchase (or authorization, or balance inquiry) sent to the
 * bank's ISO 8583 listener as a terminal's acquirer sends it, so a visitor sees the loop
 * from the card to the WeChat alert.
 *
 * The message is built the way `wxbank pos` builds it (src/cli/cmd_iso.c): the same fields,
 * packed by the same codec in the configured dialect and framing. A cross-border purchase
 * is priced in US dollars with the CNY billing amount (fields 6, 10, 51) and the acquirer's
 * country (19) as a foreign acquirer sends it. The exchange runs on the loop (a bufferevent
 * with a 10 s limit); the page's request waits for it. The card number exists only in the
 * sandbox's memory and in the message on the wire: the page and the log see it masked.
 */
#include "sandbox/sandbox_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/money.h"

#define POS_TIMEOUT_S   10
#define USD_RATE_TENTHS 71 /* the sandbox's demo rate: 7.1 CNY per USD */
#define MERCHANT_MAX    23 /* field 43 name part */
#define CITY_MAX        13 /* field 43 city part */

enum pos_kind { POS_PURCHASE, POS_AUTH, POS_BALANCE };

/* One exchange with the bank, from the page's request to its answer. */
struct sb_pos {
    struct wx_sandbox *sb;
    struct sb_pos *prev, *next;
    wx_http_req_t *req; /* the page's call, answered at the end */
    struct bufferevent *bev;
    const struct sb_card *card;
    enum pos_kind kind;
    char stan[7];
    char amount_text[WX_AMOUNT_TEXT_MAX]; /* as shown: "12.34" */
    const char *currency;                 /* "CNY" or "USD" */
    size_t frame_len;                     /* bytes of the answer's body, once its head is read */
    struct wx_iso_msg msg;                /* the request, then the answer */
};

/* The meaning of a response code (field 39), in Chinese and English. */
static const char *code_meaning(const char *code)
{
    static const struct {
        const char *code, *meaning;
    } table[] = {
        {"00", "交易成功 · approved"},
        {"05", "持卡人认证失败 · do not honour (verification failed)"},
        {"12", "无效交易 · invalid transaction"},
        {"13", "无效金额 · invalid amount"},
        {"14", "无效卡号 · no such card"},
        {"25", "找不到原始交易 · original not found"},
        {"30", "报文格式错误 · format error"},
        {"41", "挂失卡 · lost card"},
        {"43", "被窃卡 · stolen card"},
        {"51", "可用额度不足 · insufficient credit"},
        {"54", "过期卡 · expired card"},
        {"57", "持卡人已锁卡 · not permitted to cardholder (card locked)"},
        {"59", "有欺诈嫌疑 · suspected fraud"},
        {"61", "超出金额限制 · exceeds amount limit"},
        {"62", "受限制的卡 · restricted card"},
        {"65", "超出次数限制 · exceeds frequency limit"},
        {"91", "发卡行不能操作 · issuer unavailable"},
        {"94", "重复交易 · duplicate transmission"},
        {"96", "系统故障 · system malfunction"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(code, table[i].code) == 0) return table[i].meaning;
    }
    return "未知应答码 · unknown response code";
}

/* ---- the message ----------------------------------------------------------------------------- */

/* What the page asked for, checked. */
struct pos_order {
    const struct sb_card *card;
    enum pos_kind kind;
    int64_t amount; /* minor units of the transaction currency */
    bool cross_border;
    unsigned mcc;
    char merchant[MERCHANT_MAX + 1], city[CITY_MAX + 1];
};

static void put(struct wx_iso_msg *m, int n, const char *v)
{
    /* Every value here was formatted for its field: a refusal is our bug. */
    int rc = wx_iso_set_str(m, n, v);
    assert(rc == 0);
    (void)rc;
}

/* The amounts: CNY in field 4, or USD in 4 with the CNY billing amount in 6. */
static void amount_fields(struct wx_iso_msg *m, const struct pos_order *o)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%012lld", (long long)o->amount);
    put(m, 4, buf);
    if (!o->cross_border) {
        put(m, 49, "156");
        return;
    }
    int64_t cny = (o->amount * USD_RATE_TENTHS + 5) / 10;
    snprintf(buf, sizeof buf, "%012lld", (long long)cny);
    put(m, 6, buf);
    put(m, 10, "10000071"); /* 1 decimal place: 7.1 */
    put(m, 19, "840");
    put(m, 49, "840");
    put(m, 51, "156");
}

static void build(const struct pos_order *o, const char *stan, struct wx_iso_msg *m)
{
    wx_iso_init(m, o->kind == POS_PURCHASE ? 200 : 100);
    char when[11];
    wx_iso_set_terminal_fields(m, time(NULL), (unsigned)strtoul(stan, NULL, 10), "WXSBX001",
                               "WXSANDBOXSHOP01", when);
    put(m, 2, o->card->pan);
    if (o->card->expiry[0] != '\0') put(m, 14, o->card->expiry);
    put(m, 3, o->kind == POS_BALANCE ? "310000" : "000000");
    if (o->kind == POS_BALANCE) {
        put(m, 4, "000000000000");
        put(m, 49, "156");
    } else {
        amount_fields(m, o);
    }
    char buf[48];
    snprintf(buf, sizeof buf, "%04u", o->mcc);
    put(m, 18, buf);
    put(m, 22, "051");
    put(m, 25, "00");
    snprintf(buf, sizeof buf, "%-23.23s%-13.13s  %s", o->merchant, o->city,
             o->cross_border ? "US" : "CN");
    put(m, 43, buf);
}

/* ---- the exchange ---------------------------------------------------------------------------- */

static void pos_free(struct sb_pos *p)
{
    struct wx_sandbox *sb = p->sb;
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        sb->pos = p->next;
    }
    if (p->next != NULL) p->next->prev = p->prev;
    sb->npos--;
    if (p->bev != NULL) bufferevent_free(p->bev);
    wx_wipe(&p->msg, sizeof p->msg); /* it held the card number */
    free(p);
}

static void pos_fail(struct sb_pos *p, int status, const char *why)
{
    p->sb->stats.pos_failed++;
    WX_WARN("sandbox: POS %s (card %s, STAN %s): %s",
            p->kind == POS_BALANCE ? "inquiry" : "purchase", p->card->masked, p->stan, why);
    sb_page_error(p->req, status, why);
    pos_free(p);
}

/* Field 54 of a balance answer: "30" "02" "156" C|D and 12 digits: the available credit. */
static json_t *available_credit(const struct wx_iso_msg *m)
{
    char f54[64], text[32];
    if (!wx_iso_get_str(m, 54, f54, sizeof f54) || strlen(f54) < 20) return json_null();
    int64_t fen = strtoll(f54 + 8, NULL, 10);
    if (f54[7] == 'D') fen = -fen;
    wx_amount_format(fen, text, sizeof text);
    return json_string(text);
}

static void pos_done(struct sb_pos *p)
{
    struct wx_sandbox *sb = p->sb;
    char code[3] = "", approval[7] = "", rrn[13] = "";
    wx_iso_get_str(&p->msg, 39, code, sizeof code);
    wx_iso_get_str(&p->msg, 38, approval, sizeof approval);
    wx_iso_get_str(&p->msg, 37, rrn, sizeof rrn);
    bool approved = strcmp(code, "00") == 0;
    if (approved) {
        sb->stats.pos_approved++;
    } else {
        sb->stats.pos_declined++;
    }
    WX_INFO("sandbox: POS card %s amount %s %s: %s", p->card->masked, p->amount_text, p->currency,
            code);
    json_t *o = json_pack("{s:s,s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "code", code, "approved",
                          approved, "meaning", code_meaning(code), "approval", approval, "stan",
                          p->stan, "rrn", rrn, "card", p->card->masked, "amount", p->amount_text,
                          "currency", p->currency, "available", available_credit(&p->msg));
    sb_reply_json(p->req, 200, o);
    pos_free(p);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct sb_pos *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t head = wx_iso_frame_header_len(p->sb->iso_framing);
    if (p->frame_len == 0) {
        if (evbuffer_get_length(in) < head) return;
        uint8_t h[4];
        evbuffer_remove(in, h, head);
        size_t n = 0;
        if (wx_iso_frame_length(p->sb->iso_framing, h, &n) != 0 || n == 0 || n > WX_ISO_MSG_MAX) {
            pos_fail(p, 502, "the bank's answer has a bad length");
            return;
        }
        p->frame_len = n;
    }
    if (evbuffer_get_length(in) < p->frame_len) return;
    struct wx_iso_error err;
    const uint8_t *body = evbuffer_pullup(in, (ev_ssize_t)p->frame_len);
    if (wx_iso_unpack(p->sb->iso_dialect, body, p->frame_len, &p->msg, &err) != 0) {
        pos_fail(p, 502, "the bank's answer does not decode");
        return;
    }
    pos_done(p);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct sb_pos *p = arg;
    if (what & BEV_EVENT_CONNECTED) return;
    pos_fail(p, 502,
             what & BEV_EVENT_TIMEOUT ? "the bank did not answer within 10 s"
             : what & BEV_EVENT_EOF   ? "the bank closed the connection"
                                      : "cannot reach the bank's ISO 8583 listener");
}

/* Packs the request, frames it and starts the exchange. 0, or -1 (p is freed, answered). */
static int pos_send(struct sb_pos *p)
{
    struct wx_sandbox *sb = p->sb;
    uint8_t frame[WX_ISO_MSG_MAX + 4];
    size_t head = wx_iso_frame_header_len(sb->iso_framing), len;
    if (wx_iso_pack(sb->iso_dialect, &p->msg, frame + head, sizeof frame - head, &len) != 0) {
        pos_fail(p, 500, "the message does not pack");
        return -1;
    }
    wx_iso_frame_header(sb->iso_framing, len, frame);
    struct sockaddr_storage ss;
    unsigned sslen;
    char err[128];
    if (wx_net_resolve(sb->iso_address, &ss, &sslen, err, sizeof err) != 0) {
        pos_fail(p, 500, "the ISO 8583 address does not resolve");
        return -1;
    }
    p->bev = bufferevent_socket_new(sb->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (p->bev == NULL) WX_FATAL("libevent: out of memory");
    struct timeval tv = {.tv_sec = POS_TIMEOUT_S, .tv_usec = 0};
    bufferevent_setcb(p->bev, on_read, NULL, on_event, p);
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    bufferevent_write(p->bev, frame, head + len);
    wx_wipe(frame, sizeof frame);
    if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&ss, (int)sslen) != 0) {
        pos_fail(p, 502, "cannot reach the bank's ISO 8583 listener");
        return -1;
    }
    sb->stats.pos_sent++;
    return 0;
}

/* ---- the page's call ------------------------------------------------------------------------- */

/* Copies an ASCII field of the message (printable, as ans allows) or a default. */
static bool ascii_member(const json_t *o, const char *key, const char *def, char *out, size_t max)
{
    const char *s = sb_json_str(o, key);
    if (s == NULL || s[0] == '\0') s = def;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) return false;
    }
    if (n > max) return false;
    memcpy(out, s, n + 1);
    return true;
}

/* Reads and checks the page's order; NULL-free. Returns why not, or NULL. */
static const char *order_parse(const struct wx_sandbox *sb, const json_t *o, struct pos_order *ord)
{
    const json_t *card = json_object_get(o, "card");
    const char *kind = sb_json_str(o, "kind");
    const char *amount = sb_json_str(o, "amount");
    const char *mcc = sb_json_str(o, "mcc");
    memset(ord, 0, sizeof *ord);
    if (!json_is_integer(card) || json_integer_value(card) < 0 ||
        json_integer_value(card) >= (json_int_t)sb->ncards) {
        return "card: the index of a demo card";
    }
    ord->card = &sb->cards[json_integer_value(card)];
    ord->kind = kind == NULL || strcmp(kind, "purchase") == 0 ? POS_PURCHASE
                : strcmp(kind, "auth") == 0                   ? POS_AUTH
                : strcmp(kind, "balance") == 0                ? POS_BALANCE
                                                              : (enum pos_kind) - 1;
    if ((int)ord->kind < 0) return "kind: purchase, auth or balance";
    ord->cross_border = json_is_true(json_object_get(o, "cross_border"));
    if (ord->kind != POS_BALANCE &&
        (amount == NULL || strlen(amount) >= WX_AMOUNT_TEXT_MAX ||
         wx_amount_parse(amount, &ord->amount) != 0 || ord->amount <= 0)) {
        return "amount: a positive amount such as 12.34";
    }
    if (ord->amount > WX_AMOUNT_MAX / USD_RATE_TENTHS) return "amount: too large";
    ord->mcc = 5411;
    if (mcc != NULL && mcc[0] != '\0') {
        if (strlen(mcc) != 4 || strspn(mcc, "0123456789") != 4) return "mcc: 4 digits";
        ord->mcc = (unsigned)strtoul(mcc, NULL, 10);
    }
    if (!ascii_member(o, "merchant", "WXBANK SANDBOX SHOP", ord->merchant, MERCHANT_MAX)) {
        return "merchant: at most 23 printable ASCII characters (ISO 8583 field 43)";
    }
    if (!ascii_member(o, "city", ord->cross_border ? "NEW YORK" : "SHANGHAI", ord->city,
                      CITY_MAX)) {
        return "city: at most 13 printable ASCII characters (ISO 8583 field 43)";
    }
    return NULL;
}

void sb_pos_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    (void)query;
    if (sb->iso_address == NULL) {
        sb_page_error(req, 503, "no ISO 8583 address: the POS page is off");
        return;
    }
    if (sb->npos >= WX_SANDBOX_POS_MAX) {
        sb_page_error(req, 503, "too many payments in progress; retry");
        return;
    }
    json_t *o = sb_page_body(req);
    if (o == NULL) return;
    struct pos_order ord;
    const char *why = order_parse(sb, o, &ord);
    json_decref(o);
    if (why != NULL) {
        sb_page_error(req, 400, why);
        return;
    }
    struct sb_pos *p = wx_calloc(1, sizeof *p);
    p->sb = sb;
    p->req = req;
    p->card = ord.card;
    p->kind = ord.kind;
    p->currency = ord.cross_border && ord.kind != POS_BALANCE ? "USD" : "CNY";
    wx_amount_format(ord.amount, p->amount_text, sizeof p->amount_text);
    uint32_t r;
    wx_random_bytes(&r, sizeof r);
    snprintf(p->stan, sizeof p->stan, "%06u", 1 + r % 999999u);
    p->next = sb->pos;
    if (sb->pos != NULL) sb->pos->prev = p;
    sb->pos = p;
    sb->npos++;
    build(&ord, p->stan, &p->msg);
    pos_send(p);
}

void sb_pos_cancel_all(struct wx_sandbox *sb)
{
    while (sb->pos != NULL) {
        struct sb_pos *p = sb->pos;
        sb_page_error(p->req, 503, "the sandbox is stopping");
        pos_free(p);
    }
}
