/*
 * render.c - from an alert to the words a cardholder reads.
 *
 * Pure: renders a struct wx_alert (made by wx_alert_from_row in alert.c) as a sentence
 * (WeChat text, SMS) or as named fields (WeChat template messages), in Chinese or English,
 * with the amount, local time and details link formatted here. Also the plain words for a
 * decline reason and the stable name of an alert kind.
 *
 * Merchant names and cities come from the card network, that is from outside: alert.c copies
 * them as received and they are cleaned only here, when rendered, so that history keeps the
 * bytes and no control, bidi or invalid UTF-8 character reaches a phone. Only the card's last
 * four digits are ever written.
 */
#include "notify/notify.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/money.h"
#include "util/timeutil.h"

#define TZ_OFFSET_MAX_MIN (14 * 60) /* what wx_time_format accepts, either way */

/* ---- words ---- */

/* Per kind: its configuration name, template title and transaction type, in zh and en. */
struct kind_words {
    const char *name;
    const char *title[2];
    const char *type[2];
};

static const struct kind_words kind_words[WX_ALERT_KIND_COUNT] = {
    [WX_ALERT_PURCHASE] = {"purchase", {"消费提醒", "Purchase alert"}, {"消费", "Purchase"}},
    [WX_ALERT_CASH] = {"cash", {"取现提醒", "Cash withdrawal alert"}, {"取现", "Cash withdrawal"}},
    [WX_ALERT_DECLINED] = {"declined",
                           {"交易失败提醒", "Declined transaction"},
                           {"消费未成功", "Purchase declined"}},
    [WX_ALERT_INCREMENT] = {"increment",
                            {"追加授权提醒", "Authorization increase"},
                            {"追加授权", "Authorization increase"}},
    [WX_ALERT_CAPTURE] = {"capture", {"入账提醒", "Posting alert"}, {"消费入账", "Posting"}},
    [WX_ALERT_REVERSAL] = {"reversal", {"撤销提醒", "Reversal alert"}, {"撤销", "Reversal"}},
    [WX_ALERT_REFUND] = {"refund", {"退货提醒", "Refund alert"}, {"退货", "Refund"}},
    [WX_ALERT_REPAYMENT] = {"repayment",
                            {"还款到账提醒", "Repayment received"},
                            {"还款", "Repayment"}},
    [WX_ALERT_LIMIT] = {"limit",
                        {"额度调整提醒", "Credit limit changed"},
                        {"信用额度调整", "Credit limit"}},
    [WX_ALERT_TEMP_LIMIT] = {"temp_limit",
                             {"临时额度提醒", "Temporary limit"},
                             {"临时额度调整", "Temporary limit"}},
    [WX_ALERT_CARD_STATUS] = {"card_status",
                              {"卡片状态提醒", "Card status changed"},
                              {"卡片状态变更", "Card status"}},
};

/* Why a decline happened, in the cardholder's words. Every reason an authorization or an
 * increment can be journaled with has its own entry; the rest fall back to generic words. */
static const char *const reason_words[WX_R_COUNT][2] = {
    [WX_APPROVED] = {"交易成功", "approved"},
    [WX_R_INSUFFICIENT_CREDIT] = {"额度不足", "insufficient credit"},
    [WX_R_CARD_NOT_FOUND] = {"卡片无法识别", "card not recognized"},
    [WX_R_CARD_NOT_ACTIVATED] = {"卡片未激活", "card not activated"},
    [WX_R_CARD_LOCKED] = {"卡片已锁定", "card locked"},
    [WX_R_CARD_LOST] = {"卡片已挂失", "card reported lost"},
    [WX_R_CARD_STOLEN] = {"卡片已挂失（被盗）", "card reported stolen"},
    [WX_R_CARD_CLOSED] = {"卡片已注销", "card closed"},
    [WX_R_CARD_EXPIRED] = {"卡片已过期", "card expired"},
    [WX_R_WRONG_EXPIRY] = {"卡片信息有误", "incorrect card details"},
    [WX_R_WRONG_CVV] = {"卡片信息有误", "incorrect card details"},
    [WX_R_INVALID_AMOUNT] = {"交易金额有误", "invalid amount"},
    [WX_R_INVALID_CURRENCY] = {"交易币种不支持", "currency not supported"},
    [WX_R_ORIGINAL_NOT_FOUND] = {"原交易不存在", "original transaction not found"},
    [WX_R_ALREADY_REVERSED] = {"原交易已撤销", "original transaction already reversed"},
    [WX_R_HOLD_CLOSED] = {"原授权已完成或已失效", "original authorization completed or expired"},
    [WX_R_EXCEEDS_ORIGINAL] = {"金额超过原交易", "amount exceeds the original transaction"},
    [WX_R_BALANCE_OVERFLOW] = {"交易金额超限", "amount too large"},
};
static const char *const reason_generic[2] = {"交易未成功，如有疑问请联系客服",
                                              "declined, please contact us"};

/* What happened to a card, after "卡片" / "Card "; activation has its own words. */
static const char *const status_words[WX_CARD_CLOSED + 1][2] = {
    [WX_CARD_NOT_ACTIVATED] = {"状态变更为未激活", "set to not activated"},
    [WX_CARD_ACTIVE] = {"已解锁", "unlocked"},
    [WX_CARD_LOCKED] = {"已锁定", "locked"},
    [WX_CARD_LOST] = {"已挂失", "reported lost"},
    [WX_CARD_STOLEN] = {"已挂失（被盗）", "reported stolen"},
    [WX_CARD_CLOSED] = {"已注销", "closed"},
};
static const char *const status_activated[2] = {"已激活", "activated"};
static const char *const status_other[2] = {"状态已变更", "status changed"};

static int lang_ix(enum wx_lang lang)
{
    return lang == WX_LANG_EN ? 1 : 0;
}

const char *wx_alert_kind_name(uint8_t kind)
{
    if (kind == WX_ALERT_NONE || kind >= WX_ALERT_KIND_COUNT) {
        return "unknown";
    }
    return kind_words[kind].name;
}

const char *wx_alert_reason_text(uint8_t reason, enum wx_lang lang)
{
    int l = lang_ix(lang);
    if (reason < WX_R_COUNT && reason_words[reason][l] != NULL) {
        return reason_words[reason][l];
    }
    return reason_generic[l];
}

static const char *status_text(const struct wx_alert *a, int l)
{
    if (a->activation) {
        return status_activated[l];
    }
    return a->card_status <= WX_CARD_CLOSED ? status_words[a->card_status][l] : status_other[l];
}

/* ---- rendering: a bounded cursor ---- */

/* Appends into a fixed buffer; once something does not fit, `full` stays set and nothing more
 * is written, so a caller checks once at the end. */
struct cursor {
    char *p;    /* the buffer, always NUL-terminated when cap > 0 */
    size_t cap; /* bytes at p, NUL included */
    size_t len; /* bytes written, NUL excluded */
    bool full;  /* something did not fit */
};

static void cur_init(struct cursor *c, char *p, size_t cap)
{
    c->p = p;
    c->cap = cap;
    c->len = 0;
    c->full = cap == 0;
    if (cap > 0) {
        p[0] = '\0';
    }
}

static void put_n(struct cursor *c, const char *s, size_t n)
{
    if (c->full || n >= c->cap - c->len) {
        c->full = true;
        return;
    }
    memcpy(c->p + c->len, s, n);
    c->len += n;
    c->p[c->len] = '\0';
}

static void put(struct cursor *c, const char *s)
{
    put_n(c, s, strlen(s));
}

/* ---- rendering: outside text ---- */

/* Decodes one UTF-8 sequence of at most n bytes; returns its length, 0 when malformed
 * (overlong, surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t min;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, *cp = s[0] & 0x1Fu;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, *cp = s[0] & 0x0Fu;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, *cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        *cp = (*cp << 6) | (s[i] & 0x3Fu);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

/* Characters that must not reach a phone from outside: C0 and C1 controls, DEL, zero-width
 * and direction marks, line separators, bidi embeddings, overrides and isolates, BOM. */
static bool invisible(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF;
}

/* Copies at most max bytes of s (NUL-terminated or not) into out without invisible
 * characters, with each malformed byte as '?', and without leading or trailing blanks. out
 * holds max + 1 bytes: the result is never longer than the input. Returns its length. */
static size_t clean_text(const char *s, size_t max, char *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strnlen(s, max), o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_decode(u + i, n - i, &cp);
        if (len == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (!invisible(cp)) {
            memcpy(out + o, u + i, len);
            o += len;
        }
        i += len;
    }
    size_t b = 0;
    while (b < o && out[b] == ' ') {
        b++;
    }
    while (o > b && out[o - 1] == ' ') {
        o--;
    }
    memmove(out, out + b, o - b);
    out[o - b] = '\0';
    return o - b;
}

/* "name（city）" in zh, "name, city" in en; either part may be missing. */
static void put_merchant(struct cursor *c, const struct wx_alert *a, int l)
{
    char name[WX_MERCHANT_NAME_MAX + 1], city[WX_MERCHANT_CITY_MAX + 1];
    size_t nn = clean_text(a->merchant_name, WX_MERCHANT_NAME_MAX, name);
    size_t nc = clean_text(a->merchant_city, WX_MERCHANT_CITY_MAX, city);
    put(c, name);
    if (nn > 0 && nc > 0) {
        put(c, l ? ", " : "（");
        put(c, city);
        put(c, l ? "" : "）");
    } else {
        put(c, city);
    }
}

/* ---- rendering: money, time, link ---- */

/* "88.00元" or "CNY 88.00". */
static void put_cny(struct cursor *c, int64_t fen, int l)
{
    char num[WX_AMOUNT_FMT_MAX];
    wx_amount_format(fen, num, sizeof num);
    put(c, l ? "CNY " : "");
    put(c, num);
    put(c, l ? "" : "元");
}

/* An amount in a currency's own minor units with thousands commas: "1,234" for JPY 1234. */
static void put_minor(struct cursor *c, int64_t v, unsigned minor)
{
    assert(minor <= 4);
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t scale = 1;
    for (unsigned i = 0; i < minor; i++) {
        scale *= 10;
    }
    char digits[24], frac[4];
    int nd = snprintf(digits, sizeof digits, "%" PRIu64, m / scale);
    assert(nd > 0 && (size_t)nd < sizeof digits);
    put(c, v < 0 ? "-" : "");
    for (int i = 0; i < nd; i++) {
        put(c, i > 0 && (nd - i) % 3 == 0 ? "," : "");
        put_n(c, &digits[i], 1);
    }
    uint64_t f = m % scale;
    for (unsigned i = minor; i-- > 0; f /= 10) {
        frac[i] = (char)('0' + f % 10);
    }
    put(c, minor > 0 ? "." : "");
    put_n(c, frac, minor);
}

/* The alert's amount: CNY, or the original currency first and CNY after it. A currency this
 * build cannot name is left out rather than shown as a bare number. */
static void put_amount(struct cursor *c, const struct wx_alert *a, int l)
{
    const struct wx_currency *cur =
        a->txn_currency != 0 ? wx_currency_by_numeric(a->txn_currency) : NULL;
    if (cur == NULL || a->txn_amount <= 0) {
        put_cny(c, a->amount, l);
        return;
    }
    put(c, cur->alpha);
    put(c, " ");
    put_minor(c, a->txn_amount, cur->minor);
    put(c, l ? " (" : "（折合人民币");
    put_cny(c, a->amount, l);
    put(c, l ? ")" : "）");
}

/* The local time of ms, "2026-02-14 08:00:00": a lapse is shown to the second, since a date
 * alone leaves open whether the day named is still covered. */
static void put_time(struct cursor *c, int64_t ms, int tz)
{
    char t[32];
    wx_time_format(ms, tz, t, sizeof t);
    put(c, t);
}

/* base + "/m/txn/<seq>", trailing slashes of base dropped; nothing without a base. -1 when
 * base holds a blank or a control character. */
static int put_url(struct cursor *c, const char *base, uint64_t seq)
{
    if (base == NULL || base[0] == '\0') {
        return 0;
    }
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') {
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)base[i] <= ' ' || base[i] == 0x7f) {
            return -1;
        }
    }
    char tail[32];
    snprintf(tail, sizeof tail, "/m/txn/%" PRIu64, seq);
    put_n(c, base, n);
    put(c, tail);
    return 0;
}

/* ---- rendering: fields ---- */

/* The decline's transaction type: an increment, a cash withdrawal or a purchase. */
static const char *decline_type(const struct wx_alert *a, int l)
{
    static const char *const types[3][2] = {
        {"消费未成功", "Purchase declined"},
        {"取现未成功", "Cash withdrawal declined"},
        {"追加授权未成功", "Authorization increase declined"},
    };
    int t = a->cmd_kind == WX_CMD_AUTH_INCREMENT ? 2 : a->cash ? 1 : 0;
    return types[t][l];
}

/* The card's last four digits: the only part of its number that is ever shown. */
static void put_last4(struct cursor *c, const struct wx_alert *a)
{
    char digits[8];
    snprintf(digits, sizeof digits, "%04u", (unsigned)(a->last4 % 10000));
    put(c, digits);
}

/* "信用卡尾号1234" / "Supplementary card ending 1234". */
static void put_card(struct cursor *c, const struct wx_alert *a, int l)
{
    if (l) {
        put(c, a->supplementary ? "Supplementary card ending " : "Card ending ");
    } else {
        put(c, a->supplementary ? "附属卡尾号" : "信用卡尾号");
    }
    put_last4(c, a);
}

/* What the amount alone does not say: why declined, what was authorized, until when, the
 * card's new state. */
static void put_remark(struct cursor *c, const struct wx_alert *a, int l, int tz)
{
    switch (a->kind) {
    case WX_ALERT_DECLINED:
        put(c, l ? "Reason: " : "原因：");
        put(c, wx_alert_reason_text(a->reason, (enum wx_lang)l));
        break;
    case WX_ALERT_CAPTURE:
        if (a->hold_amount >= 0) {
            put(c, l ? "Authorized " : "授权金额");
            put_cny(c, a->hold_amount, l);
        }
        break;
    case WX_ALERT_TEMP_LIMIT:
        if (a->new_limit > 0) {
            put(c, l ? "Valid until " : "有效期至");
            put_time(c, a->limit_expires_ms, tz);
        } else {
            put(c, l ? "Temporary limit withdrawn" : "临时额度已取消");
        }
        break;
    case WX_ALERT_CARD_STATUS:
        put(c, l ? "Card " : "卡片");
        put(c, status_text(a, l));
        break;
    default:
        break;
    }
}

/* Fills the money fields: the amount (the new limit for limits) and the available credit
 * after; a status change moves no money and shows neither. */
static void put_money_fields(struct wx_alert_fields *out, const struct wx_alert *a, int l,
                             bool *full)
{
    struct cursor c;
    if (a->kind == WX_ALERT_CARD_STATUS) {
        return;
    }
    cur_init(&c, out->amount, sizeof out->amount);
    if (a->kind == WX_ALERT_LIMIT || a->kind == WX_ALERT_TEMP_LIMIT) {
        put_cny(&c, a->new_limit, l);
    } else {
        put_amount(&c, a, l);
    }
    *full |= c.full;
    cur_init(&c, out->available, sizeof out->available);
    put_cny(&c, a->available_after, l);
    *full |= c.full;
}

int wx_alert_fields(const struct wx_alert *a, enum wx_lang lang, int tz_offset_minutes,
                    const char *details_base_url, struct wx_alert_fields *out)
{
    assert(a != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if (a->kind == WX_ALERT_NONE || a->kind >= WX_ALERT_KIND_COUNT ||
        tz_offset_minutes < -TZ_OFFSET_MAX_MIN || tz_offset_minutes > TZ_OFFSET_MAX_MIN) {
        return -1;
    }
    int l = lang_ix(lang);
    bool full = false;
    struct cursor c;
    cur_init(&c, out->title, sizeof out->title);
    put(&c, kind_words[a->kind].title[l]);
    full |= c.full;
    cur_init(&c, out->card, sizeof out->card);
    put_card(&c, a, l);
    full |= c.full;
    cur_init(&c, out->kind, sizeof out->kind);
    put(&c, a->kind == WX_ALERT_DECLINED ? decline_type(a, l) : kind_words[a->kind].type[l]);
    full |= c.full;
    put_money_fields(out, a, l, &full);
    cur_init(&c, out->merchant, sizeof out->merchant);
    put_merchant(&c, a, l);
    full |= c.full;
    wx_time_format(a->at_ms, tz_offset_minutes, out->time, sizeof out->time);
    cur_init(&c, out->remark, sizeof out->remark);
    put_remark(&c, a, l, tz_offset_minutes);
    full |= c.full;
    cur_init(&c, out->url, sizeof out->url);
    int rc = put_url(&c, details_base_url, a->seq);
    full |= c.full;
    return rc != 0 || full ? -1 : 0;
}

/* ---- rendering: sentences ---- */

/* What happened, in Chinese, after "于<time>": "在<merchant>消费88.00元". */
static void what_zh(struct cursor *c, const struct wx_alert *a, const struct wx_alert_fields *f)
{
    if (f->merchant[0] != '\0' && a->kind != WX_ALERT_REFUND) {
        put(c, "在");
        put(c, f->merchant);
    }
    switch (a->kind) {
    case WX_ALERT_DECLINED:
        put(c, "的一笔");
        put(c, a->cmd_kind == WX_CMD_AUTH_INCREMENT ? "追加授权" : a->cash ? "取现" : "消费");
        put(c, f->amount);
        put(c, "未成功，原因：");
        put(c, wx_alert_reason_text(a->reason, WX_LANG_ZH));
        return;
    case WX_ALERT_CAPTURE:
        put(c, "的交易入账");
        put(c, f->amount);
        if (f->remark[0] != '\0') {
            put(c, "（");
            put(c, f->remark);
            put(c, "）");
        }
        return;
    case WX_ALERT_REFUND:
        put(c, "收到");
        put(c, f->merchant);
        put(c, "退货");
        break;
    case WX_ALERT_REVERSAL:
        put(c, "的交易已撤销");
        break;
    case WX_ALERT_REPAYMENT:
        put(c, "还款到账");
        break;
    case WX_ALERT_LIMIT:
        put(c, "信用额度调整为");
        break;
    case WX_ALERT_TEMP_LIMIT:
        if (a->new_limit <= 0) {
            put(c, "临时额度已取消");
            return;
        }
        put(c, "获得临时额度");
        break;
    case WX_ALERT_CARD_STATUS:
        put(c, status_text(a, 0));
        return;
    default:
        put(c, f->kind); /* 消费, 取现, 追加授权 */
        break;
    }
    put(c, f->amount);
}

/* 您尾号1234的信用卡于<time>在<merchant>消费88.00元，可用额度9,912.00元。详情：<url> */
static void text_zh(struct cursor *c, const struct wx_alert *a, const struct wx_alert_fields *f)
{
    put(c, "您尾号");
    put_last4(c, a);
    put(c, a->supplementary ? "的附属卡于" : "的信用卡于");
    put(c, f->time);
    what_zh(c, a, f);
    if (a->kind == WX_ALERT_TEMP_LIMIT && a->new_limit > 0) {
        put(c, "，");
        put(c, f->remark); /* 有效期至<date> */
    }
    if (f->available[0] != '\0') {
        put(c, "，可用额度");
        put(c, f->available);
    }
    put(c, "。");
    if (f->url[0] != '\0') {
        put(c, "详情：");
        put(c, f->url);
    }
}

/* What happened, in English, before " on <time>": "purchase of CNY 88.00 at Shop, City". */
static void what_en(struct cursor *c, const struct wx_alert *a, const struct wx_alert_fields *f)
{
    static const char *const lead[WX_ALERT_KIND_COUNT] = {
        [WX_ALERT_PURCHASE] = "purchase of ",
        [WX_ALERT_CASH] = "cash withdrawal of ",
        [WX_ALERT_INCREMENT] = "authorization increased by ",
        [WX_ALERT_REFUND] = "refund of ",
        [WX_ALERT_REPAYMENT] = "repayment of ",
        [WX_ALERT_LIMIT] = "credit limit changed to ",
        [WX_ALERT_TEMP_LIMIT] = "temporary extra limit of ",
    };
    static const char *const trail[WX_ALERT_KIND_COUNT] = {
        [WX_ALERT_CAPTURE] = " posted",
        [WX_ALERT_REVERSAL] = " reversed",
        [WX_ALERT_REPAYMENT] = " received",
    };
    if (a->kind == WX_ALERT_CARD_STATUS) {
        put(c, status_text(a, 1));
        return;
    }
    if (a->kind == WX_ALERT_TEMP_LIMIT && a->new_limit <= 0) {
        put(c, "temporary extra limit withdrawn");
        return;
    }
    if (a->kind == WX_ALERT_DECLINED) {
        put(c, a->cmd_kind == WX_CMD_AUTH_INCREMENT ? "authorization increase of "
               : a->cash                            ? "cash withdrawal of "
                                                    : "purchase of ");
    }
    put(c, lead[a->kind] != NULL ? lead[a->kind] : "");
    put(c, f->amount);
    put(c, trail[a->kind] != NULL ? trail[a->kind] : "");
    if (f->merchant[0] != '\0') {
        put(c, a->kind == WX_ALERT_REFUND ? " from " : " at ");
        put(c, f->merchant);
    }
}

/* Card ending 1234: purchase of CNY 88.00 at <merchant> on <time>. Available credit ... */
static void text_en(struct cursor *c, const struct wx_alert *a, const struct wx_alert_fields *f,
                    int tz)
{
    put(c, f->card);
    put(c, ": ");
    what_en(c, a, f);
    put(c, " on ");
    put(c, f->time);
    if (a->kind == WX_ALERT_DECLINED) {
        put(c, " declined: ");
        put(c, wx_alert_reason_text(a->reason, WX_LANG_EN));
    } else if (a->kind == WX_ALERT_CAPTURE && a->hold_amount >= 0) {
        put(c, " (authorized ");
        put_cny(c, a->hold_amount, 1);
        put(c, ")");
    } else if (a->kind == WX_ALERT_TEMP_LIMIT && a->new_limit > 0) {
        put(c, ", valid until ");
        put_time(c, a->limit_expires_ms, tz);
    }
    put(c, ".");
    if (f->available[0] != '\0') {
        put(c, " Available credit ");
        put(c, f->available);
        put(c, ".");
    }
    if (f->url[0] != '\0') {
        put(c, " Details: ");
        put(c, f->url);
    }
}

int wx_alert_text(const struct wx_alert *a, enum wx_lang lang, int tz_offset_minutes,
                  const char *details_base_url, char *out, size_t cap)
{
    assert(a != NULL);
    assert(out != NULL || cap == 0);
    struct wx_alert_fields f;
    struct cursor c;
    cur_init(&c, out, cap);
    if (wx_alert_fields(a, lang, tz_offset_minutes, details_base_url, &f) != 0) {
        return -1;
    }
    if (lang == WX_LANG_EN) {
        text_en(&c, a, &f, tz_offset_minutes);
    } else {
        text_zh(&c, a, &f);
    }
    if (c.full) {
        if (cap > 0) {
            out[0] = '\0'; /* no partial sentence that could be sent by mistake */
        }
        return -1;
    }
    assert(c.len < WX_ALERT_TEXT_MAX);
    return (int)c.len;
}
