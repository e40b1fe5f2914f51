/*
 * statement.c - the answers that read the history projection: statements (bill), unbilled
 * spending, transactions, spending summaries and points.
 *
 * In three steps, because the projection is SQLite and the conversation runs on the loop
 * that answers the card switch: on the loop, the question is made precise from the engine
 * (which account, its statement day, which dates) and the slots (answer_history_ask); off
 * the loop, the projection is read (wx_chat_history_read); on the loop again, the words
 * (wx_chat_history_answer).
 *
 * A statement is cut at the end of the account's statement day: its balance is what the
 * account owed then (the sum of what every earlier item posted), due GRACE_DAYS later; the
 * minimum is MIN_PAY_PCT of it, at least MIN_PAY_FEN. Points are one per yuan of purchases,
 * less refunds, over the last three years.
 */
#include "chat/chat_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chat/nlu_int.h"
#include "notify/notify.h"
#include "util/money.h"
#include "util/timeutil.h"

#define GRACE_DAYS   20   /* statement day to due date */
#define MIN_PAY_PCT  10   /* of the statement balance */
#define MIN_PAY_FEN  5000 /* the least minimum payment, 50.00 */
#define POINTS_YEARS 3    /* points expire after this long */
#define LINES_SHOWN  10   /* transactions listed in one answer */
#define DAY_MS       86400000LL
#define PURCHASE_KINDS                                                                             \
    (1u << WX_CMD_AUTHORIZE | 1u << WX_CMD_CAPTURE | 1u << WX_CMD_REVERSAL | 1u << WX_CMD_REFUND)

/* ---- dates ---------------------------------------------------------------------------------- */

static int32_t local_day(int64_t ms, int tz_minutes)
{
    int64_t local = ms + (int64_t)tz_minutes * 60000;
    return (int32_t)(local >= 0 ? local / DAY_MS : (local - DAY_MS + 1) / DAY_MS);
}

/* UTC ms of the start of a local day. */
static int64_t day_start_ms(int32_t day, int tz_minutes)
{
    return (int64_t)day * DAY_MS - (int64_t)tz_minutes * 60000;
}

/* The statement dated in month (y, m): its statement day, clamped to the month. */
static int32_t statement_in(int y, int m, unsigned statement_day)
{
    return (int32_t)wx_days_from_civil(y, m, (int)statement_day);
}

/* The latest statement dated on or before day. */
static int32_t latest_statement(int32_t day, unsigned statement_day)
{
    int y, m, d;
    wx_civil_from_days(day, &y, &m, &d);
    if ((unsigned)d >= statement_day) return statement_in(y, m, statement_day);
    return m == 1 ? statement_in(y - 1, 12, statement_day) : statement_in(y, m - 1, statement_day);
}

static void say_day(struct turn *t, int32_t day)
{
    int y, m, d;
    wx_civil_from_days(day, &y, &m, &d);
    SAY(t, "%d年%d月%d日", "%04d-%02d-%02d", y, m, d);
}

/* ---- the question, on the loop --------------------------------------------------------------- */

/* Which statement a bill question means: the month named, or the latest one out. Returns
 * false (having said when it comes out) for a statement still to come. */
static bool bill_period(struct turn *t, struct wx_chat_history_ask *ask, unsigned sday,
                        int32_t today)
{
    int32_t stmt = latest_statement(today, sday);
    if (t->slots.date_from != INT32_MIN) {
        int y, m, d;
        wx_civil_from_days(t->slots.date_from, &y, &m, &d);
        stmt = statement_in(y, m, sday);
    }
    if (stmt > today) {
        SAY(t, "该期账单将于", "That statement comes out on ");
        say_day(t, stmt);
        SAY(t, "出账。回复“未出账单”查看目前尚未出账的消费。",
            ". Reply \"unbilled\" to see what is not on a statement yet.");
        return false;
    }
    ask->statement_day = stmt;
    ask->cut_ms = day_start_ms(stmt + 1, t->c->opt.tz_offset_minutes);
    ask->from_ms = ask->cut_ms;
    ask->to_ms = t->in->now_ms + 1;
    return true;
}

/* The period asked about, or the default: the last 30 days, this month for a summary. */
static void plain_period(struct turn *t, struct wx_chat_history_ask *ask, int32_t today,
                         unsigned sday)
{
    int tz = t->c->opt.tz_offset_minutes;
    int32_t from = today - 29, to = today;
    if (ask->intent == WX_INTENT_SPENDING_SUMMARY) {
        int y, m, d;
        wx_civil_from_days(today, &y, &m, &d);
        from = (int32_t)wx_days_from_civil(y, m, 1);
    } else if (ask->intent == WX_INTENT_UNBILLED) {
        from = latest_statement(today, sday) + 1;
    } else if (ask->intent == WX_INTENT_POINTS) {
        from = today - 365 * POINTS_YEARS;
    }
    if (t->slots.date_from != INT32_MIN && ask->intent != WX_INTENT_UNBILLED &&
        ask->intent != WX_INTENT_POINTS) {
        from = t->slots.date_from;
        to = t->slots.date_to < today ? t->slots.date_to : today;
    }
    ask->from_day = from;
    ask->to_day = to;
    ask->from_ms = day_start_ms(from, tz);
    ask->to_ms = day_start_ms(to + 1, tz);
}

void answer_history_ask(struct turn *t, enum wx_chat_intent intent, uint32_t card_id)
{
    struct wx_card_view card;
    struct wx_account_view a;
    if (!answer_card_of(t, card_id, &card) || wx_engine_account(t->e, card.account_id, &a) != 0) {
        SAY(t, "没有找到这张卡的账户。", "That card's account was not found.");
        return;
    }
    struct wx_chat_history_ask *ask = &t->out->ask;
    memset(ask, 0, sizeof *ask);
    ask->intent = intent;
    ask->account_id = card.account_id;
    ask->card_id = t->slots.card_last4 >= 0 ? card.id : 0;
    ask->last4 = card.last4;
    int32_t today = local_day(t->in->now_ms, t->c->opt.tz_offset_minutes);
    unsigned sday = a.statement_day >= 1 && a.statement_day <= 28 ? a.statement_day : 1;
    if (intent == WX_INTENT_BILL) {
        if (!bill_period(t, ask, sday, today)) return;
    } else {
        plain_period(t, ask, today, sday);
    }
    t->out->needs_history = true;
    t->out->reads_state = true;
    SAY(t, "暂时无法查询交易记录，请稍后再试。",
        "Your history cannot be read just now; please "
        "try again shortly.");
}

/* ---- the read, off the loop -------------------------------------------------------------------
 */

void wx_chat_history_read(wx_history_reader_t *r, const struct wx_chat_history_ask *ask,
                          struct wx_chat_history_found *found)
{
    char err[256];
    found->status = -1;
    found->n = 0;
    found->owed_cut = found->paid = 0;
    memset(&found->totals, 0, sizeof found->totals);
    if (r == NULL) return;
    struct wx_history_query q = {.account_id = ask->account_id,
                                 .card_id = ask->card_id,
                                 .from_ms = ask->from_ms,
                                 .to_ms = ask->to_ms};
    if (ask->intent == WX_INTENT_BILL) {
        if (wx_history_owed_before(r, ask->account_id, ask->cut_ms, &found->owed_cut, err,
                                   sizeof err) != 0) {
            return;
        }
        q.card_id = 0; /* a statement is the account's */
        q.kinds = 1u << WX_CMD_REPAYMENT;
        if (wx_history_list(r, &q, found->items, 0, &found->totals, &found->n, err, sizeof err) !=
            0) {
            return;
        }
        found->paid = -found->totals.posted;
        found->status = 0;
        return;
    }
    if (ask->intent == WX_INTENT_UNBILLED) q.posted_only = true;
    if (ask->intent == WX_INTENT_SPENDING_SUMMARY || ask->intent == WX_INTENT_POINTS) {
        q.kinds = PURCHASE_KINDS;
    }
    size_t cap = ask->intent == WX_INTENT_POINTS ? 0 : WX_CHAT_ITEMS_MAX;
    if (wx_history_list(r, &q, found->items, cap, &found->totals, &found->n, err, sizeof err) ==
        0) {
        found->status = 0;
    }
}

/* ---- the words, on the loop -------------------------------------------------------------------
 */

struct category {
    const char *id, *zh, *en;
};

static const struct category CATEGORIES[] = {
    {"dining", "餐饮", "dining"},       {"groceries", "超市", "groceries"},
    {"fuel", "加油", "fuel"},           {"travel", "旅行", "travel"},
    {"transport", "交通", "transport"}, {"entertainment", "娱乐", "entertainment"},
    {"medical", "医疗", "medical"},     {"education", "教育", "education"},
    {"shopping", "购物", "shopping"},   {"online", "网购", "online"},
    {"other", "其他", "other"},
};
#define NCATEGORIES (sizeof CATEGORIES / sizeof CATEGORIES[0])

/* The category of a purchase by its merchant category code (ISO 18245), or its channel. */
static size_t category_of(uint16_t mcc, uint8_t channel)
{
    static const struct {
        uint16_t lo, hi;
        size_t category;
    } RANGES[] = {{5811, 5814, 0}, {5411, 5411, 1}, {5422, 5499, 1}, {5541, 5542, 2},
                  {5983, 5983, 2}, {3000, 3999, 3}, {4411, 4411, 3}, {4511, 4511, 3},
                  {4722, 4722, 3}, {7011, 7012, 3}, {4111, 4131, 4}, {4784, 4789, 4},
                  {7832, 7841, 5}, {7911, 7999, 5}, {5912, 5912, 6}, {8011, 8099, 6},
                  {8211, 8299, 7}, {5300, 5399, 8}, {5600, 5699, 8}, {5732, 5732, 8},
                  {5940, 5949, 8}};
    for (size_t i = 0; i < sizeof RANGES / sizeof RANGES[0]; i++) {
        if (mcc >= RANGES[i].lo && mcc <= RANGES[i].hi) return RANGES[i].category;
    }
    return channel == WX_CHANNEL_CNP ? 9 : 10;
}

/* The slots' merchant and category, if any, allow this item. */
static bool item_wanted(const struct turn *t, const struct wx_history_item *it)
{
    if (t->slots.merchant[0] != '\0' && !nlu_merchant_matches(t->slots.merchant, it->merchant)) {
        return false;
    }
    if (t->slots.category[0] == '\0') return true;
    if (it->mcc == 0 && it->channel == WX_CHANNEL_INTERNAL) return false;
    return strcmp(CATEGORIES[category_of(it->mcc, it->channel)].id, t->slots.category) == 0;
}

static const char *item_words(const struct wx_history_item *it, enum wx_chat_lang lang)
{
    bool en = lang == WX_CHAT_EN;
    switch (it->kind) {
    case WX_CMD_AUTHORIZE:
        if (it->reason != WX_APPROVED) return en ? "declined" : "未成功";
        return it->posted != 0 ? (en ? "purchase" : "消费") : (en ? "pending" : "消费（待入账）");
    case WX_CMD_AUTH_INCREMENT:
        return en ? "added to a hold" : "追加授权";
    case WX_CMD_CAPTURE:
        return en ? "posted" : "入账";
    case WX_CMD_REVERSAL:
        return en ? "reversed" : "撤销";
    case WX_CMD_REFUND:
        return en ? "refund" : "退货";
    case WX_CMD_REPAYMENT:
        return en ? "repayment" : "还款";
    case WX_CMD_FEE:
        return en ? "fee" : "费用";
    case WX_CMD_INTEREST:
        return en ? "interest" : "利息";
    default:
        return "";
    }
}

static void say_item(struct turn *t, const struct wx_history_item *it)
{
    int tz = t->c->opt.tz_offset_minutes;
    char when[32], amount[32];
    wx_time_format(it->at_ms, tz, when, sizeof when);
    wx_amount_format(it->amount, amount, sizeof amount);
    SAY(t, "\n%.16s %s%s%s ¥%s", "\n%.16s %s%s%s CNY %s", when, item_words(it, t->lang),
        it->merchant[0] != '\0' ? " " : "", it->merchant, amount);
    if (it->kind == WX_CMD_AUTHORIZE && it->reason != WX_APPROVED) {
        SAY(t, "（%s）", " (%s)",
            wx_alert_reason_text(it->reason, t->lang == WX_CHAT_EN ? WX_LANG_EN : WX_LANG_ZH));
    }
}

static void say_card(struct turn *t, const struct wx_chat_history_ask *ask)
{
    if (ask->card_id != 0) SAY(t, "尾号%04u ", "Card ending %04u: ", ask->last4);
}

static void bill_words(struct turn *t, const struct wx_chat_history_ask *ask,
                       const struct wx_chat_history_found *f)
{
    char owed[32], min[32], paid[32], left[32];
    int64_t balance = f->owed_cut > 0 ? f->owed_cut : 0;
    int64_t minimum = (balance * MIN_PAY_PCT + 99) / 100; /* to the fen above */
    if (minimum < MIN_PAY_FEN) minimum = MIN_PAY_FEN;
    if (minimum > balance) minimum = balance;
    int64_t remaining = balance - f->paid > 0 ? balance - f->paid : 0;
    wx_amount_format(balance, owed, sizeof owed);
    wx_amount_format(minimum, min, sizeof min);
    wx_amount_format(f->paid > 0 ? f->paid : 0, paid, sizeof paid);
    wx_amount_format(remaining, left, sizeof left);
    say_day(t, ask->statement_day);
    SAY(t, "账单（尾号%04u）\n本期应还：¥%s\n最低还款：¥%s\n到期还款日：",
        " statement (card ending %04u)\nBalance due: CNY %s\nMinimum payment: CNY %s\nDue date: ",
        ask->last4, owed, min);
    say_day(t, ask->statement_day + GRACE_DAYS);
    if (balance == 0) {
        SAY(t, "\n本期无需还款。", "\nNothing to pay on this statement.");
        return;
    }
    SAY(t, "\n出账后已还：¥%s\n尚需还款：¥%s", "\nRepaid since: CNY %s\nStill to pay: CNY %s", paid,
        left);
}

static void list_words(struct turn *t, const struct wx_chat_history_ask *ask,
                       const struct wx_chat_history_found *f, bool unbilled)
{
    size_t shown = 0, matched = 0;
    int64_t spent = 0, repaid = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct wx_history_item *it = &f->items[i];
        if (!item_wanted(t, it)) continue;
        matched++;
        if (it->posted > 0) spent += it->posted;
        if (it->posted < 0) repaid -= it->posted;
        if (shown < LINES_SHOWN) {
            if (shown == 0) {
                say_card(t, ask);
                if (unbilled) {
                    SAY(t, "未出账单：", "Not on a statement yet:");
                } else {
                    say_day(t, ask->from_day);
                    SAY(t, "至", " to ");
                    say_day(t, ask->to_day);
                    SAY(t, "的交易：", ":");
                }
            }
            say_item(t, &f->items[i]);
            shown++;
        }
    }
    if (matched == 0) {
        SAY(t, "这段时间没有符合条件的交易。", "No transactions match in that period.");
        return;
    }
    char total[32], back[32];
    wx_amount_format(spent, total, sizeof total);
    wx_amount_format(repaid, back, sizeof back);
    SAY(t, "\n共%zu笔%s，入账消费¥%s", "\n%zu in all%s; CNY %s spent", matched,
        matched > shown ? (t->lang == WX_CHAT_EN ? " (newest shown)" : "（显示最近的）") : "",
        total);
    if (repaid > 0) SAY(t, "，还款及退货¥%s", ", CNY %s repaid or refunded", back);
    (void)unbilled;
}

static void summary_words(struct turn *t, const struct wx_chat_history_ask *ask,
                          const struct wx_chat_history_found *f)
{
    int64_t by[NCATEGORIES] = {0}, total = 0;
    size_t pending = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct wx_history_item *it = &f->items[i];
        if (!item_wanted(t, it)) continue;
        pending += it->kind == WX_CMD_AUTHORIZE && it->reason == WX_APPROVED && it->posted == 0;
        by[category_of(it->mcc, it->channel)] += it->posted;
        total += it->posted;
    }
    char amount[32];
    wx_amount_format(total, amount, sizeof amount);
    say_card(t, ask);
    say_day(t, ask->from_day);
    SAY(t, "至", " to ");
    say_day(t, ask->to_day);
    const char *what = t->slots.merchant;
    for (size_t c = 0; c < NCATEGORIES && what[0] == '\0'; c++) {
        if (strcmp(t->slots.category, CATEGORIES[c].id) == 0) {
            what = t->lang == WX_CHAT_EN ? CATEGORIES[c].en : CATEGORIES[c].zh;
        }
    }
    SAY(t, "%s消费合计：¥%s", ", %s spending: CNY %s", what, amount);
    for (int round = 0; round < 5 && total > 0 && t->slots.category[0] == '\0'; round++) {
        size_t top = 0;
        for (size_t c = 1; c < NCATEGORIES; c++) {
            if (by[c] > by[top]) top = c;
        }
        if (by[top] <= 0) break;
        wx_amount_format(by[top], amount, sizeof amount);
        SAY(t, "\n· %s ¥%s（%lld%%）", "\n- %s CNY %s (%lld%%)",
            t->lang == WX_CHAT_EN ? CATEGORIES[top].en : CATEGORIES[top].zh, amount,
            (long long)(by[top] * 100 / total));
        by[top] = 0;
    }
    if (pending > 0) {
        SAY(t, "\n（%zu笔预授权尚未入账，未计入）",
            "\n(%zu authorizations not yet posted are not counted)", pending);
    }
}

void wx_chat_history_answer(wx_chat_t *c, const wx_engine_t *e, const struct wx_chat_input *in,
                            const struct wx_chat_history_ask *ask,
                            const struct wx_chat_history_found *found, struct wx_chat_reply *out)
{
    struct turn t;
    answer_turn_resume(c, e, in, out, &t);
    out->text[0] = '\0';
    out->needs_history = false;
    if (found->status != 0) {
        SAY(&t, "暂时无法查询交易记录，请稍后再试。",
            "Your history cannot be read just now; please try again shortly.");
        return;
    }
    switch (ask->intent) {
    case WX_INTENT_BILL:
        bill_words(&t, ask, found);
        break;
    case WX_INTENT_UNBILLED:
        list_words(&t, ask, found, true);
        break;
    case WX_INTENT_TRANSACTIONS:
        list_words(&t, ask, found, false);
        break;
    case WX_INTENT_SPENDING_SUMMARY:
        summary_words(&t, ask, found);
        break;
    case WX_INTENT_POINTS: {
        int64_t points = found->totals.posted > 0 ? found->totals.posted / 100 : 0;
        SAY(&t, "您的可用积分：%lld分（每消费1元积1分，有效期%d年）。",
            "Your points: %lld (one per yuan spent, valid %d years).", (long long)points,
            POINTS_YEARS);
        break;
    }
    default:
        break;
    }
}
