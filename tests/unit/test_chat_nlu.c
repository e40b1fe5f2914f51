/*
 * test_chat_nlu.c - the chat assistant's understanding (src/chat: norm.c, slots.c, nlu.c):
 * normalization, every slot example the product asks for, parsed exactly, the sharp rules,
 * and the JSON that `wxbank chat parse` prints.
 *
 * "Today" is 2026-11-27, a Friday, in Shanghai: 上个月 is October, last week 16-22 November,
 * 3月 this year's March (it has passed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "chat/chat.h"
#include "chat/nlu_int.h"
#include "util/timeutil.h"

#define NOW_MS   1795752000000ll /* 2026-11-27 12:00 in Shanghai */
#define SHANGHAI 480

static struct wx_chat_parse parse(const char *text)
{
    struct wx_chat_parse p;
    wx_chat_parse(text, strlen(text), NOW_MS, SHANGHAI, &p);
    return p;
}

static void normalizes(const char *in, const char *want)
{
    static struct nlu_text t;
    nlu_normalize(in, strlen(in), &t);
    if (strcmp(t.s, want) != 0) fail_msg("normalize(%s): \"%s\", not \"%s\"", in, t.s, want);
}

static void test_normalization(void **state)
{
    (void)state;
    normalizes("ｈｅｌｌｏ　ＷＯＲＬＤ１２３", "hello world123");
    normalizes("上個月在哪花了錢", "上个月在哪花了钱");
    normalizes("帳單", "账单");
    normalizes("謝謝謝謝謝謝", "谢谢");
    normalizes("在吗？？？😂😂", "在吗");
    normalizes("What's my   balance?!", "whats my balance");
    normalizes("¥1,234.56", "¥1,234.56");
    normalizes("￥１，２３４．５６元", "¥1,234.56元");
    normalizes("1000000", "1000000");
    normalizes("a.b, c", "a b c");
    normalizes("bad\xff\xfe utf8 \xe4\xbd", "bad utf8");
    normalizes("\xed\xa0\x80surrogate", "surrogate");
    normalizes("\xf9\x94\x81卡", "卡"); /* 0xF5..0xFF lead nothing */
    normalizes("", "");
}

static void amount_is(const char *text, int64_t fen)
{
    struct wx_chat_parse p = parse(text);
    if (p.slots.amount_fen != fen) {
        fail_msg("%s: amount_fen %lld, not %lld", text, (long long)p.slots.amount_fen,
                 (long long)fen);
    }
}

static void test_amounts(void **state)
{
    (void)state;
    amount_is("¥1,234.56", 123456);
    amount_is("1234.56元", 123456);
    amount_is("一千二百三十四块五", 123450);
    amount_is("1.2万", 1200000);
    amount_is("3k", 300000);
    amount_is("三千", 300000);
    amount_is("两千五", 250000);
    amount_is("五百块", 50000);
    amount_is("3000分6期每期多少", 300000);
    amount_is("i paid 500 yuan", 50000);
    amount_is("转了 ¥ 88", 8800);
    amount_is("20亿", 200000000000);
    amount_is("一千零五十元", 105000);
    amount_is("一百零八元", 10800);
    amount_is("十万零五百元", 10050000);
    amount_is("3块50", 350);
    amount_is("5块5毛", 550);
    amount_is("1万2", 1200000);
    amount_is("100块2笔", 10000);
    amount_is("一万一万一万一万一万亿", -1); /* no overflow, no amount */
    amount_is("99999999999999999亿", -1);    /* too large to be one */
    /* numbers that are not amounts */
    amount_is("12期", -1);
    amount_is("尾号1234", -1);
    amount_is("3月", -1);
    amount_is("最近7天", -1);
    amount_is("一共三笔", -1);
    amount_is("十分感谢", -1);
    amount_is("2", -1);
}

static void periods_are(const char *text, int periods)
{
    struct wx_chat_parse p = parse(text);
    if (p.slots.periods != periods)
        fail_msg("%s: periods %d, not %d", text, p.slots.periods, periods);
}

static void test_periods(void **state)
{
    (void)state;
    periods_are("12期", 12);
    periods_are("十二期", 12);
    periods_are("分6个月", 6);
    periods_are("想分个12期", 12);
    periods_are("split it into 24 months", 24);
    periods_are("6 installments", 6);
    periods_are("最近3个月", 0); /* a range, not periods */
}

static void dates_are(const char *text, const char *from, const char *to)
{
    struct wx_chat_parse p = parse(text);
    char got[2][16] = {"none", "none"};
    int32_t days[2] = {p.slots.date_from, p.slots.date_to};
    for (int i = 0; i < 2; i++) {
        if (days[i] == INT32_MIN) continue;
        int y, m, d;
        wx_civil_from_days(days[i], &y, &m, &d);
        snprintf(got[i], sizeof got[i], "%04d-%02d-%02d", y, m, d);
    }
    if (strcmp(got[0], from) != 0 || strcmp(got[1], to) != 0) {
        fail_msg("%s: %s..%s, not %s..%s", text, got[0], got[1], from, to);
    }
}

static void test_dates(void **state)
{
    (void)state;
    dates_are("今天", "2026-11-27", "2026-11-27");
    dates_are("昨天", "2026-11-26", "2026-11-26");
    dates_are("本月", "2026-11-01", "2026-11-27");
    dates_are("上个月", "2026-10-01", "2026-10-31");
    dates_are("3月", "2026-03-01", "2026-03-31");
    dates_are("最近7天", "2026-11-21", "2026-11-27");
    dates_are("last week", "2026-11-16", "2026-11-22");
    dates_are("this week", "2026-11-23", "2026-11-27");
    dates_are("12月的账单", "2025-12-01", "2025-12-31"); /* still to come: last year's */
    dates_are("2025年3月", "2025-03-01", "2025-03-31");
    dates_are("3月15号", "2026-03-15", "2026-03-15");
    dates_are("上上个月", "2026-09-01", "2026-09-30");
    dates_are("last 30 days", "2026-10-29", "2026-11-27");
    dates_are("in march", "2026-03-01", "2026-03-31");
    dates_are("may i ask", "none", "none");
    dates_are("前天", "2026-11-25", "2026-11-25");
}

static void test_card_last4(void **state)
{
    (void)state;
    assert_int_equal(parse("尾号1234").slots.card_last4, 1234);
    assert_int_equal(parse("尾号是0088的卡").slots.card_last4, 88);
    assert_int_equal(parse("card ending 5678").slots.card_last4, 5678);
    assert_int_equal(parse("the one ending in 0001").slots.card_last4, 1);
    assert_int_equal(parse("1234").slots.card_last4, -1);
}

static void answer_is(const char *text, enum wx_chat_answer want)
{
    struct wx_chat_parse p = parse(text);
    if (p.slots.answer != want) fail_msg("%s: answer %d, not %d", text, p.slots.answer, want);
}

static void test_answers(void **state)
{
    (void)state;
    const char *yes[] = {"是", "对", "确认", "好的", "ok", "OK!", "嗯嗯", "好的谢谢", "yes please"};
    const char *no[] = {"不是", "否", "no", "不用"};
    const char *cancel[] = {"算了", "取消", "算了吧", "cancel", "never mind", "不用了"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        answer_is(yes[i], WX_ANSWER_YES);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        answer_is(no[i], WX_ANSWER_NO);
    for (size_t i = 0; i < sizeof cancel / sizeof cancel[0]; i++)
        answer_is(cancel[i], WX_ANSWER_CANCEL);
    answer_is("我要取消分期", WX_ANSWER_NONE); /* a request, not an answer */
    answer_is("是不是要还款了", WX_ANSWER_NONE);
}

static void test_words(void **state)
{
    (void)state;
    struct wx_chat_parse p = parse("上周在星巴克花了多少");
    assert_string_equal(p.slots.merchant, "星巴克");
    assert_string_equal(p.slots.category, "");
    p = parse("how much did i spend at starbucks on food");
    assert_string_equal(p.slots.merchant, "星巴克");
    assert_string_equal(p.slots.category, "dining");
    assert_int_equal(parse("加油花了多少").slots.category[0], 'f');
    assert_int_equal(parse("临时提额").slots.limit_kind, WX_LIMIT_TEMPORARY);
    assert_int_equal(parse("永久额度能提吗").slots.limit_kind, WX_LIMIT_PERMANENT);
    assert_int_equal(parse("temporary limit increase").slots.limit_kind, WX_LIMIT_TEMPORARY);
    assert_int_equal(parse("提醒改成英文").slots.lang_named, WX_CHAT_EN);
    assert_int_equal(parse("switch to chinese").slots.lang_named, WX_CHAT_ZH);
    assert_int_equal(parse("余额").slots.lang, WX_CHAT_ZH);
    assert_int_equal(parse("balance").slots.lang, WX_CHAT_EN);
    assert_int_equal(parse("我的credit limit多少").slots.lang, WX_CHAT_ZH);
    assert_int_equal(parse("2").slots.choice, 2);
    assert_int_equal(parse("选3").slots.choice, 3);
    assert_int_equal(parse("第二个").slots.choice, 2);
    assert_int_equal(parse("12").slots.choice, 0);
}

static void intent_is(const char *text, enum wx_chat_intent want)
{
    struct wx_chat_parse p = parse(text);
    if (p.intent != want) {
        fail_msg("%s: %s (%.2f), not %s", text, wx_chat_intent_name(p.intent), (double)p.confidence,
                 wx_chat_intent_name(want));
    }
}

/* The product brief's own sentences, and the rules' sharp cases. */
static void test_intents(void **state)
{
    (void)state;
    intent_is("帮我查下这个月要还多少", WX_INTENT_BILL);
    intent_is("还差多少没还", WX_INTENT_BILL);
    intent_is("剩多少额度", WX_INTENT_BALANCE);
    intent_is("想分个12期", WX_INTENT_INSTALLMENT);
    intent_is("钱包连卡一起丢了", WX_INTENT_REPORT_LOST);
    intent_is("what's my minimum payment", WX_INTENT_BILL);
    intent_is("freeze my card please", WX_INTENT_CARD_LOCK);
    intent_is("转人工", WX_INTENT_HUMAN_AGENT);
    intent_is("我要解绑这个微信", WX_INTENT_UNBIND);
    intent_is("thanks", WX_INTENT_THANKS);
    intent_is("", WX_INTENT_UNKNOWN);
    intent_is("😂😂😂", WX_INTENT_UNKNOWN);
    struct wx_chat_parse p = parse("转人工");
    assert_true(p.confidence == 1.0f);
    assert_int_not_equal(p.runner_up[0], WX_INTENT_HUMAN_AGENT);
}

static void test_json(void **state)
{
    (void)state;
    struct wx_chat_parse p = parse("3000分6期 尾号1234 上个月 临时 星巴克 餐饮");
    char json[1024];
    int n = wx_chat_parse_json(&p, json, sizeof json);
    assert_true(n > 0);
    const char *want[] = {"\"amount_fen\":300000",        "\"periods\":6",
                          "\"date_from\":\"2026-10-01\"", "\"date_to\":\"2026-10-31\"",
                          "\"card_last4\":\"1234\"",      "\"limit_kind\":\"temporary\"",
                          "\"merchant\":\"星巴克\"",      "\"category\":\"dining\""};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(json, want[i]) == NULL) fail_msg("%s lacks %s", json, want[i]);
    }
    assert_int_equal(strncmp(json, "{\"intent\":\"", 11), 0);
    assert_int_equal(wx_chat_parse_json(&p, json, (size_t)n), -1); /* no room for the NUL */
    assert_int_equal(wx_chat_parse_json(&p, json, (size_t)n + 1), n);
    assert_string_equal(wx_chat_intent_name(WX_INTENT_COUNT), "unknown");
    assert_int_equal(wx_chat_intent_of("card_lock"), WX_INTENT_CARD_LOCK);
    assert_int_equal(wx_chat_intent_of("nope"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalization), cmocka_unit_test(test_amounts),
        cmocka_unit_test(test_periods),       cmocka_unit_test(test_dates),
        cmocka_unit_test(test_card_last4),    cmocka_unit_test(test_answers),
        cmocka_unit_test(test_words),         cmocka_unit_test(test_intents),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
