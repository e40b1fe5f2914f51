/*
 * nlu.c - what a message asks for: rules for the sharp cases, then the classifier.
 *
 * Rules are few and exact: words that can mean one thing only (转人工, 挂失, 解绑, 投诉 ...)
 * and whole messages that are a courtesy (谢谢, bye). They win with confidence 1. Everything
 * else goes to the classifier, whose probability is the confidence; the dialogue asks a
 * clarifying question below its threshold. The slots are read whatever the intent.
 */
#include "chat/nlu_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/timeutil.h"

#define NAME(id, name) name,
static const char *const INTENT_NAMES[] = {WX_CHAT_INTENTS(NAME)};
#undef NAME

_Static_assert(sizeof INTENT_NAMES / sizeof INTENT_NAMES[0] == WX_INTENT_COUNT,
               "an intent without a name");

const char *wx_chat_intent_name(enum wx_chat_intent intent)
{
    return (unsigned)intent < WX_INTENT_COUNT ? INTENT_NAMES[intent] : "unknown";
}

int wx_chat_intent_of(const char *name)
{
    for (int i = 0; i < WX_INTENT_COUNT; i++) {
        if (strcmp(name, INTENT_NAMES[i]) == 0) return i;
    }
    return -1;
}

/* ---- rules ---------------------------------------------------------------------------------- */

struct rule {
    const char *text;
    enum wx_chat_intent intent;
};

/* Anywhere in the message: these say one thing only. Checked in order. */
static const struct rule CONTAINS[] = {
    {"转人工", WX_INTENT_HUMAN_AGENT},      {"人工客服", WX_INTENT_HUMAN_AGENT},
    {"人工服务", WX_INTENT_HUMAN_AGENT},    {"真人客服", WX_INTENT_HUMAN_AGENT},
    {"human agent", WX_INTENT_HUMAN_AGENT}, {"real person", WX_INTENT_HUMAN_AGENT},
    {"解除绑定", WX_INTENT_UNBIND},         {"解绑", WX_INTENT_UNBIND},
    {"取消绑定", WX_INTENT_UNBIND},         {"unbind", WX_INTENT_UNBIND},
    {"unlink", WX_INTENT_UNBIND},           {"我要投诉", WX_INTENT_COMPLAINT},
    {"安全卫士", WX_INTENT_SECURITY_GUARD}, {"未出账", WX_INTENT_UNBILLED},
    {"unbilled", WX_INTENT_UNBILLED},
};

/* The whole message (normalized). */
static const struct rule WHOLE[] = {
    {"谢谢", WX_INTENT_THANKS},      {"谢谢你", WX_INTENT_THANKS},
    {"谢谢啦", WX_INTENT_THANKS},    {"多谢", WX_INTENT_THANKS},
    {"感谢", WX_INTENT_THANKS},      {"thanks", WX_INTENT_THANKS},
    {"thank you", WX_INTENT_THANKS}, {"thx", WX_INTENT_THANKS},
    {"ty", WX_INTENT_THANKS},        {"再见", WX_INTENT_GOODBYE},
    {"拜拜", WX_INTENT_GOODBYE},     {"bye", WX_INTENT_GOODBYE},
    {"bye bye", WX_INTENT_GOODBYE},  {"goodbye", WX_INTENT_GOODBYE},
    {"你好", WX_INTENT_GREETING},    {"您好", WX_INTENT_GREETING},
    {"在吗", WX_INTENT_GREETING},    {"hi", WX_INTENT_GREETING},
    {"hello", WX_INTENT_GREETING},   {"hey", WX_INTENT_GREETING},
    {"帮助", WX_INTENT_HELP},        {"help", WX_INTENT_HELP},
    {"菜单", WX_INTENT_HELP},        {"menu", WX_INTENT_HELP},
    {"挂失", WX_INTENT_REPORT_LOST}, {"锁卡", WX_INTENT_CARD_LOCK},
    {"解锁", WX_INTENT_CARD_UNLOCK}, {"激活", WX_INTENT_CARD_ACTIVATE},
    {"积分", WX_INTENT_POINTS},      {"余额", WX_INTENT_BALANCE},
    {"额度", WX_INTENT_BALANCE},     {"账单", WX_INTENT_BILL},
    {"分期", WX_INTENT_INSTALLMENT}, {"提额", WX_INTENT_LIMIT_INCREASE},
    {"还款", WX_INTENT_REPAYMENT},   {"绑定", WX_INTENT_BIND},
    {"绑卡", WX_INTENT_BIND},        {"投诉", WX_INTENT_COMPLAINT},
};

/* "不要转人工", "don't unbind": a rule's words negated just before are not its intent. */
static bool negated(const struct nlu_text *t, const char *at)
{
    static const char *const NEGATIONS[] = {"不要",  "不用",    "不想",   "别", "不",
                                            "dont ", "do not ", "don t ", NULL};
    size_t before = (size_t)(at - t->s);
    if (before > 0 && at[-1] == ' ') before--;
    for (size_t k = 0; NEGATIONS[k] != NULL; k++) {
        size_t b = strlen(NEGATIONS[k]);
        if (before >= b && memcmp(t->s + before - b, NEGATIONS[k], b) == 0) return true;
    }
    return false;
}

static int rule_of(const struct nlu_text *t)
{
    for (size_t i = 0; i < sizeof WHOLE / sizeof WHOLE[0]; i++) {
        if (strcmp(t->s, WHOLE[i].text) == 0) return (int)WHOLE[i].intent;
    }
    for (size_t i = 0; i < sizeof CONTAINS / sizeof CONTAINS[0]; i++) {
        const char *at = strstr(t->s, CONTAINS[i].text);
        if (at != NULL && !negated(t, at)) return (int)CONTAINS[i].intent;
    }
    return -1;
}

/* ---- the parse ------------------------------------------------------------------------------ */

static void rank(const float p[NLU_INTENT_COUNT], struct wx_chat_parse *out)
{
    int best[3] = {0, -1, -1};
    for (int c = 1; c < NLU_INTENT_COUNT; c++) {
        if (p[c] > p[best[0]]) {
            best[2] = best[1], best[1] = best[0], best[0] = c;
        } else if (best[1] < 0 || p[c] > p[best[1]]) {
            best[2] = best[1], best[1] = c;
        } else if (best[2] < 0 || p[c] > p[best[2]]) {
            best[2] = c;
        }
    }
    out->intent = (enum wx_chat_intent)best[0];
    out->confidence = p[best[0]];
    out->runner_up[0] = (enum wx_chat_intent)best[1];
    out->runner_up[1] = (enum wx_chat_intent)best[2];
}

void wx_chat_parse(const char *text, size_t len, int64_t now_ms, int tz_offset_minutes,
                   struct wx_chat_parse *out)
{
    static _Thread_local struct nlu_text t;
    static _Thread_local uint64_t feat[NLU_FEATURES_MAX];
    memset(out, 0, sizeof *out);
    nlu_normalize(text, len, &t);
    int64_t local = now_ms + (int64_t)tz_offset_minutes * 60000;
    int64_t today = local >= 0 ? local / 86400000 : (local - 86399999) / 86400000;
    nlu_slots(&t, (int32_t)today, &out->slots);
    out->runner_up[0] = out->runner_up[1] = WX_INTENT_UNKNOWN;
    size_t n = nlu_features(&t, feat, NLU_FEATURES_MAX);
    if (n == 0) {
        out->intent = WX_INTENT_UNKNOWN;
        out->confidence = 1;
        return;
    }
    float p[NLU_INTENT_COUNT];
    nlu_classify(&nlu_model, feat, n, p);
    rank(p, out);
    int rule = rule_of(&t);
    if (rule >= 0) {
        if (out->runner_up[0] == (enum wx_chat_intent)rule) out->runner_up[0] = out->intent;
        if (out->runner_up[1] == (enum wx_chat_intent)rule) out->runner_up[1] = out->intent;
        out->intent = (enum wx_chat_intent)rule;
        out->confidence = 1;
    }
}

/* ---- JSON ----------------------------------------------------------------------------------- */

struct jw {
    char *out;
    size_t cap, len;
    bool first;
};

static void jw_raw(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jw_raw(struct jw *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->len < w->cap ? w->out + w->len : NULL,
                      w->len < w->cap ? w->cap - w->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) w->len += (size_t)n;
}

static void jw_key(struct jw *w, const char *key)
{
    jw_raw(w, "%s\"%s\":", w->first ? "" : ",", key);
    w->first = false;
}

/* Slot text comes from the lexicons: no quote or control character to escape. */
static void jw_date(struct jw *w, const char *key, int32_t days)
{
    int y, m, d;
    wx_civil_from_days(days, &y, &m, &d);
    jw_key(w, key);
    jw_raw(w, "\"%04d-%02d-%02d\"", y, m, d);
}

int wx_chat_parse_json(const struct wx_chat_parse *p, char *out, size_t cap)
{
    static const char *const ANSWERS[] = {"", "yes", "no", "cancel"};
    static const char *const LIMITS[] = {"", "temporary", "permanent"};
    static const char *const LANGS[] = {"zh", "en"};
    const struct wx_chat_slots *s = &p->slots;
    struct jw w = {.out = out, .cap = cap, .first = true};
    jw_raw(&w, "{\"intent\":\"%s\",\"confidence\":%.3f,\"slots\":{", wx_chat_intent_name(p->intent),
           (double)p->confidence);
    if (s->amount_fen >= 0) {
        jw_key(&w, "amount_fen");
        jw_raw(&w, "%lld", (long long)s->amount_fen);
    }
    if (s->periods > 0) {
        jw_key(&w, "periods");
        jw_raw(&w, "%d", s->periods);
    }
    if (s->date_from != INT32_MIN) {
        jw_date(&w, "date_from", s->date_from);
        jw_date(&w, "date_to", s->date_to);
    }
    if (s->card_last4 >= 0) {
        jw_key(&w, "card_last4");
        jw_raw(&w, "\"%04d\"", s->card_last4);
    }
    if (s->answer != WX_ANSWER_NONE) {
        jw_key(&w, "answer");
        jw_raw(&w, "\"%s\"", ANSWERS[s->answer]);
    }
    if (s->limit_kind != WX_LIMIT_NONE) {
        jw_key(&w, "limit_kind");
        jw_raw(&w, "\"%s\"", LIMITS[s->limit_kind]);
    }
    if (s->merchant[0] != '\0') {
        jw_key(&w, "merchant");
        jw_raw(&w, "\"%s\"", s->merchant);
    }
    if (s->category[0] != '\0') {
        jw_key(&w, "category");
        jw_raw(&w, "\"%s\"", s->category);
    }
    if (s->choice > 0) {
        jw_key(&w, "choice");
        jw_raw(&w, "%d", s->choice);
    }
    jw_key(&w, "lang");
    jw_raw(&w, "\"%s\"", LANGS[s->lang]);
    if (s->lang_named >= 0) {
        jw_key(&w, "language");
        jw_raw(&w, "\"%s\"", LANGS[s->lang_named]);
    }
    jw_raw(&w, "}}");
    return w.len < cap ? (int)w.len : -1;
}
