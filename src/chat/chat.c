/*
 * chat.c - one turn of the conversation: the message understood, the follower's dialogue
 * continued or a new question taken.
 *
 * In order: a cancel ends whatever the dialogue waits for; a numbered choice, a yes or no, an
 * amount or a number of periods goes to the stage that asked for it; a follow-up that only
 * changes a detail ("那上个月呢", "what about march") keeps the last question with the new
 * detail; a message the classifier is unsure of gets a clarifying question with numbered
 * choices; anything else is answered as the intent it is.
 */
#include "chat/chat_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"

#define SHANGHAI_MINUTES 480

/* ---- options -------------------------------------------------------------------------------- */

static const char DEFAULT_RATES[] = "3:0.75,6:0.70,12:0.66,24:0.65";

/* "3:0.75,6:0.70": periods and per-period fee in percent (two decimals at most). */
static int parse_rates(const char *text, struct wx_chat_options *o)
{
    o->nperiods = 0;
    const char *p = text;
    while (*p != '\0') {
        char *end;
        long periods = strtol(p, &end, 10);
        if (end == p || *end != ':' || periods < 2 || periods > WX_CHAT_PERIODS_LIMIT) return -1;
        p = end + 1;
        long whole = strtol(p, &end, 10), cents = 0;
        if (end == p || whole < 0 || whole > 10) return -1;
        p = end;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9') return -1;
            cents = (*p++ - '0') * 10;
            if (*p >= '0' && *p <= '9') cents += *p++ - '0';
        }
        if (o->nperiods == WX_CHAT_PERIODS_MAX) return -1;
        for (unsigned i = 0; i < o->nperiods; i++) {
            if (o->periods[i] == (unsigned)periods) return -1;
        }
        o->periods[o->nperiods] = (unsigned)periods;
        o->fee_bp[o->nperiods++] = (unsigned)(whole * 100 + cents);
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return -1;
    }
    return o->nperiods > 0 ? 0 : -1;
}

void wx_chat_options_default(struct wx_chat_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->tz_offset_minutes = SHANGHAI_MINUTES;
    opt->idle_s = 300;
    opt->clarify_below = 0.55f;
    opt->dialogues_max = WX_CHAT_DIALOGUES_MAX;
    int rc = parse_rates(DEFAULT_RATES, opt);
    assert(rc == 0);
    (void)rc;
}

int wx_chat_options_from_config(const wx_config_t *cfg, struct wx_chat_options *opt, char *err,
                                size_t errlen)
{
    wx_chat_options_default(opt);
    opt->idle_s = (unsigned)wx_config_int(cfg, "chat.idle_s");
    opt->clarify_below = (float)wx_config_int(cfg, "chat.clarify_below") / 100;
    const char *rates = wx_config_str(cfg, "chat.installment_rates");
    if (parse_rates(rates, opt) != 0) {
        snprintf(err, errlen,
                 "chat.installment_rates = %s: want PERIODS:PERCENT pairs, e.g. %s (2 to 60 "
                 "periods, at most %d pairs)",
                 rates, DEFAULT_RATES, WX_CHAT_PERIODS_MAX);
        return -1;
    }
    return 0;
}

wx_chat_t *wx_chat_new(const struct wx_chat_options *opt)
{
    struct wx_chat *c = wx_calloc(1, sizeof *c);
    c->opt = *opt;
    wx_random_bytes(c->hash_key, sizeof c->hash_key);
    if (c->opt.dialogues_max == 0 || c->opt.dialogues_max > WX_CHAT_DIALOGUES_MAX) {
        c->opt.dialogues_max = WX_CHAT_DIALOGUES_MAX;
    }
    if (c->opt.idle_s == 0) c->opt.idle_s = 300;
    return c;
}

void wx_chat_free(wx_chat_t *c)
{
    if (c == NULL) return;
    dialogs_free(c);
    free(c);
}

void wx_chat_set_links(wx_chat_t *c, wx_chat_link_fn fn, void *arg)
{
    c->link = fn;
    c->link_arg = fn != NULL ? arg : NULL;
}

void wx_chat_stats(const wx_chat_t *c, struct wx_chat_stats *out)
{
    *out = c->stats;
    out->dialogues = c->count;
}

/* ---- stages ---------------------------------------------------------------------------------- */

/* Slots given now replace those the dialogue holds; the others carry over. */
static void merge_slots(struct wx_chat_slots *into, const struct wx_chat_slots *now)
{
    if (now->amount_fen >= 0) into->amount_fen = now->amount_fen;
    if (now->periods > 0) into->periods = now->periods;
    if (now->date_from != INT32_MIN) {
        into->date_from = now->date_from;
        into->date_to = now->date_to;
    }
    if (now->card_last4 >= 0) into->card_last4 = now->card_last4;
    if (now->limit_kind != WX_LIMIT_NONE) into->limit_kind = now->limit_kind;
    if (now->merchant[0] != '\0') memcpy(into->merchant, now->merchant, sizeof into->merchant);
    if (now->category[0] != '\0') memcpy(into->category, now->category, sizeof into->category);
    if (now->lang_named >= 0) into->lang_named = now->lang_named;
    into->answer = now->answer;
    into->choice = now->choice;
    into->lang = now->lang;
}

/* A message that clearly asks something new leaves the stage. */
static bool clearly_new(const struct turn *t)
{
    return t->p.intent != WX_INTENT_UNKNOWN && t->p.confidence >= t->c->opt.clarify_below &&
           t->p.slots.answer == WX_ANSWER_NONE && t->p.slots.choice == 0;
}

/* The whole message as a small number ("12"), or -1. */
static int bare_number(const char *text)
{
    while (*text == ' ')
        text++;
    int v = 0, digits = 0;
    for (; *text >= '0' && *text <= '9' && digits < 3; text++, digits++)
        v = v * 10 + (*text - '0');
    while (*text == ' ')
        text++;
    return digits > 0 && *text == '\0' ? v : -1;
}

/* Continues the stage the dialogue waits in; false when the message is not for it. */
static bool continue_stage(struct turn *t)
{
    struct dialog *d = t->d;
    const struct wx_chat_slots *s = &t->p.slots;
    enum stage stage = d->stage;
    t->slots = d->slots;
    merge_slots(&t->slots, s);
    switch (stage) {
    case STAGE_CHOOSE_INTENT:
        if (s->choice < 1 || (unsigned)s->choice > d->nchoices) return false;
        d->stage = STAGE_NONE;
        answer_intent(t, d->choices[s->choice - 1]);
        return true;
    case STAGE_CHOOSE_CARD:
        if (s->choice >= 1 && (unsigned)s->choice <= d->ncards) {
            d->card_id = d->cards[s->choice - 1];
        } else if (s->card_last4 < 0) {
            return false;
        }
        d->stage = STAGE_NONE;
        answer_continue(t);
        return true;
    case STAGE_CHOOSE_PERIODS: {
        /* The question asked for the count itself: "12" is 12 periods, not 12.00. */
        int n = s->periods > 0 ? s->periods : s->choice > 0 ? s->choice : bare_number(t->in->text);
        if (n <= 0) return false;
        t->slots.amount_fen = d->slots.amount_fen;
        t->slots.periods = n;
        d->stage = STAGE_NONE;
        answer_continue(t);
        return true;
    }
    case STAGE_ASK_AMOUNT:
        if (s->amount_fen <= 0) return false;
        d->stage = STAGE_NONE;
        answer_continue(t);
        return true;
    case STAGE_CONFIRM_LOCK:
    case STAGE_CONFIRM_INSTALLMENT:
        if (s->answer == WX_ANSWER_NONE) {
            if (clearly_new(t)) return false;
            SAY(t, "请回复“确认”继续，或回复“取消”放弃。",
                "Please reply \"yes\" to go on or \"cancel\" to stop.");
            return true;
        }
        d->stage = STAGE_NONE;
        if (s->answer != WX_ANSWER_YES) {
            d->card_id = 0; /* the next question chooses again */
            SAY(t, "好的，已取消。", "OK, cancelled.");
            return true;
        }
        if (stage == STAGE_CONFIRM_LOCK) {
            answer_lock_command(t);
        } else {
            SAY(t,
                "好的。分期申请需在银行安全页面输入交易密码确认，安全页面即将开放；开放后回复"
                "“分期”即可收到一次性链接，您的试算结果会为您保留。",
                "OK. An installment is confirmed with your transaction password on the bank's "
                "secure page, which opens soon; then reply \"installment\" for a one-time link. "
                "Your quote is kept for it.");
        }
        return true;
    case STAGE_NONE:
        break;
    }
    return false;
}

/* ---- a turn -----------------------------------------------------------------------------------
 */

static const char *const FOLLOW_UP_ZH[] = {"呢", "那", "还有", "换成", NULL};
static const char *const FOLLOW_UP_EN[] = {"what about", "how about", "instead", NULL};

static bool has_any(const char *text, const char *const *words)
{
    for (; *words != NULL; words++) {
        if (strstr(text, *words) != NULL) return true;
    }
    return false;
}

static bool carries(enum wx_chat_intent intent)
{
    return intent == WX_INTENT_BALANCE || intent == WX_INTENT_BILL ||
           intent == WX_INTENT_UNBILLED || intent == WX_INTENT_TRANSACTIONS ||
           intent == WX_INTENT_SPENDING_SUMMARY || intent == WX_INTENT_POINTS ||
           intent == WX_INTENT_INSTALLMENT;
}

/* "那上个月呢" after a bill question: the bill again, for last month. */
static bool follow_up(const struct turn *t)
{
    const struct wx_chat_slots *s = &t->p.slots;
    bool detail = s->date_from != INT32_MIN || s->card_last4 >= 0 || s->amount_fen >= 0 ||
                  s->periods > 0 || s->merchant[0] != '\0' || s->category[0] != '\0';
    if (!detail || !carries(t->d->intent)) return false;
    /* "那分6期呢" after a quote is the same question with one detail changed; "这个月消费
     * 分析" after "在星巴克花了多少" is a new question of the same kind. */
    if (t->p.intent == t->d->intent) {
        return has_any(t->in->text, FOLLOW_UP_ZH) || has_any(t->in->text, FOLLOW_UP_EN);
    }
    /* Another intent, confidently: a new question, whatever words it has. */
    return t->p.confidence < t->c->opt.clarify_below;
}

static void menu(struct turn *t)
{
    static const struct {
        const char *key;
        enum wx_chat_intent intent;
    } KEYS[] = {
        {WX_CHAT_KEY_BALANCE, WX_INTENT_BALANCE}, {"BILL", WX_INTENT_BILL},
        {"TRANSACTIONS", WX_INTENT_TRANSACTIONS}, {"CARD_LOCK", WX_INTENT_CARD_LOCK},
        {"REPORT_LOST", WX_INTENT_REPORT_LOST},   {"SECURITY_GUARD", WX_INTENT_SECURITY_GUARD},
        {WX_CHAT_KEY_HELP, WX_INTENT_HELP}};
    t->lang = WX_CHAT_ZH; /* the menu is Chinese: so are its answers */
    wx_chat_parse("", 0, t->in->now_ms, t->c->opt.tz_offset_minutes, &t->p);
    t->slots = t->p.slots;
    t->d->stage = STAGE_NONE;
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        if (strcmp(t->in->text, KEYS[i].key) == 0) {
            answer_intent(t, KEYS[i].intent);
            return;
        }
    }
    answer_intent(t, WX_INTENT_HELP);
}

/* A choice, a yes or a no, or digits say nothing of the language: the dialogue's stays. A
 * language asked for ("in English") is kept, but for alert settings, where it is the
 * alerts'. */
static enum wx_chat_lang reply_lang(const struct turn *t)
{
    const struct wx_chat_slots *s = &t->p.slots;
    if (s->lang_named >= 0 && t->p.intent != WX_INTENT_ALERT_SETTINGS) {
        return (enum wx_chat_lang)s->lang_named;
    }
    bool words = false;
    for (const unsigned char *p = (const unsigned char *)t->in->text; *p != '\0' && !words; p++)
        words = *p >= 0xE0 || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z');
    bool says_nothing = s->choice > 0 || s->answer != WX_ANSWER_NONE || !words;
    return says_nothing && t->d->turns > 0 ? t->d->lang : s->lang;
}

static void understand(struct turn *t)
{
    struct dialog *d = t->d;
    size_t len = strlen(t->in->text);
    if (len > WX_CHAT_PARSE_MAX) {
        SAY(t, "您的消息太长了，请分成几句简短的话发给我。",
            "That message is too long for me; please send it in shorter parts.");
        return;
    }
    wx_chat_parse(t->in->text, len, t->in->now_ms, t->c->opt.tz_offset_minutes, &t->p);
    t->lang = reply_lang(t);
    d->lang = t->lang;
    d->turns++;
    if (t->p.slots.answer == WX_ANSWER_CANCEL && d->stage != STAGE_NONE) {
        dialog_reset(d);
        SAY(t, "好的，已取消。还有什么可以帮您？", "OK, cancelled. Anything else?");
        return;
    }
    if (d->stage != STAGE_NONE && continue_stage(t)) return;
    d->stage = STAGE_NONE;
    t->slots = t->p.slots;
    if (t->p.slots.answer != WX_ANSWER_NONE) {
        /* 好的, 取消, no: the whole message answers, and no question is open */
        SAY(t, "好的。还有什么可以帮您？", "OK. Anything else I can help with?");
        return;
    }
    if (t->p.slots.choice > 0) {
        /* "2" for a choice that has gone (or never was) */
        SAY(t, "这个选项已经失效了，请直接告诉我您想办理什么。",
            "That choice is no longer open; please tell me again what you need.");
        return;
    }
    if (follow_up(t)) {
        t->slots = d->slots;
        merge_slots(&t->slots, &t->p.slots);
        answer_intent(t, d->intent);
        return;
    }
    if (t->p.confidence < t->c->opt.clarify_below && t->p.intent != WX_INTENT_UNKNOWN) {
        enum wx_chat_intent choices[CHOICES_MAX] = {t->p.intent, t->p.runner_up[0],
                                                    t->p.runner_up[1]};
        unsigned n = 0;
        for (unsigned i = 0; i < CHOICES_MAX; i++) {
            if (choices[i] != WX_INTENT_UNKNOWN) choices[n++] = choices[i];
        }
        answer_clarify(t, choices, n);
        return;
    }
    answer_intent(t, t->p.intent);
}

/* A follower with a dialogue: one with an OpenID (a tool may talk without memory). */
static bool remembered_openid(const char *openid)
{
    return openid != NULL && openid[0] != '\0' && strlen(openid) <= WX_OPENID_MAX;
}

void wx_chat_respond(wx_chat_t *c, const wx_engine_t *e, const struct wx_chat_input *in,
                     struct wx_chat_reply *out)
{
    assert(in->text != NULL);
    memset(out, 0, sizeof *out);
    c->stats.turns++;
    if (in->kind == WX_CHAT_IN_OTHER) return;
    /* A follower without a usable OpenID (a tool) talks without memory. */
    struct dialog scratch;
    bool remembered = remembered_openid(in->openid);
    struct turn t = {.c = c, .e = e, .in = in, .out = out, .lang = WX_CHAT_ZH};
    if (remembered) {
        t.d = dialog_get(c, in->openid, in->now_ms);
    } else {
        memset(&scratch, 0, sizeof scratch);
        dialog_reset(&scratch);
        t.d = &scratch;
    }
    if (in->kind == WX_CHAT_IN_FOLLOW) {
        dialog_reset(t.d);
        say(out, "欢迎关注！这里是您的信用卡微信银行。\n\n");
        answer_help(&t);
        if (in->customer_id == 0) {
            say(out, "\n\n您的微信尚未绑定信用卡，回复“绑定”了解如何绑定。");
        }
        return;
    }
    if (in->kind == WX_CHAT_IN_MENU) {
        menu(&t);
        return;
    }
    understand(&t);
}

void answer_turn_resume(struct wx_chat *c, const wx_engine_t *e, const struct wx_chat_input *in,
                        struct wx_chat_reply *out, struct turn *t)
{
    static _Thread_local struct dialog scratch;
    memset(t, 0, sizeof *t);
    *t = (struct turn){.c = c, .e = e, .in = in, .out = out, .d = &scratch};
    memset(&scratch, 0, sizeof scratch);
    dialog_reset(&scratch);
    if (remembered_openid(in->openid)) t->d = dialog_get(c, in->openid, in->now_ms);
    t->lang = t->d->lang;
    t->slots = t->d->slots;
}

void wx_chat_command_done(wx_chat_t *c, const wx_engine_t *e, const struct wx_chat_input *in,
                          const struct wx_result *res, struct wx_chat_reply *out)
{
    struct turn t;
    answer_turn_resume(c, e, in, out, &t);
    if (out->cmd.kind == WX_CMD_CARD_STATUS) t.d->card_id = out->cmd.card_status.card_id;
    out->text[0] = '\0';
    out->has_cmd = false;
    answer_lock_done(&t, res);
}
