/*
 * test_chat_faq.c - the FAQ's knowledge base and its search (src/chat/faq.c, its entries
 * compiled in from data/faq/faq.tsv by tools/faq_embed.c).
 *
 * The knowledge base is checked against its file (every entry there, ids unique, answers in
 * both languages, \n made a line break, placeholders kept); the search against questions
 * written in other words than the file's, in Chinese and English, and against messages that
 * are not about the card (they must find nothing), empty ones and emoji. The file is found
 * from this one's path (the test runs in the build directory), or from WX_SOURCE_DIR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/nlu_int.h"

static struct nlu_text text; /* large: off the stack */

/* The entries data/faq/faq.tsv holds: its lines but comments and empty ones. */
static size_t tsv_entries(void)
{
    char path[PATH_MAX];
    const char *src = getenv("WX_SOURCE_DIR");
    if (src != NULL) {
        snprintf(path, sizeof path, "%s/data/faq/faq.tsv", src);
    } else {
        const char *file = __FILE__;
        const char *cut = strstr(file, "tests/unit/");
        assert_non_null(cut);
        snprintf(path, sizeof path, "%.*sdata/faq/faq.tsv", (int)(cut - file), file);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) fail_msg("cannot open %s (set WX_SOURCE_DIR)", path);
    static char line[8192];
    size_t n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        assert_non_null(strchr(line, '\n')); /* no line longer than the buffer */
        if (line[0] != '#' && line[0] != '\n' && line[0] != '\r') n++;
    }
    fclose(f);
    return n;
}

static size_t search(const char *q, struct nlu_faq_hit *hits, size_t cap)
{
    nlu_normalize(q, strlen(q), &text);
    return nlu_faq_search(&text, hits, cap);
}

static unsigned entry_of(const char *id)
{
    for (unsigned e = 0; e < nlu_faq_count(); e++) {
        if (strcmp(nlu_faq_id(e), id) == 0) return e;
    }
    fail_msg("no entry %s", id);
    return 0;
}

static void test_entries(void **state)
{
    (void)state;
    size_t n = nlu_faq_count();
    assert_true(n > 0);
    assert_int_equal(n, tsv_entries());
    for (unsigned e = 0; e < n; e++) {
        const char *id = nlu_faq_id(e);
        assert_non_null(id);
        assert_true(id[0] != '\0');
        for (unsigned k = 0; k < e; k++) {
            if (strcmp(nlu_faq_id(k), id) == 0) fail_msg("id %s twice", id);
        }
        const char *zh = nlu_faq_answer(e, WX_CHAT_ZH), *en = nlu_faq_answer(e, WX_CHAT_EN);
        if (zh == NULL || zh[0] == '\0') fail_msg("%s: no Chinese answer", id);
        if (en == NULL || en[0] == '\0') fail_msg("%s: no English answer", id);
        assert_true(zh != en);
        if (strstr(zh, "\\n") != NULL || strstr(en, "\\n") != NULL) {
            fail_msg("%s: a \\n left as two characters", id);
        }
    }
}

static void test_answers_as_written(void **state)
{
    (void)state;
    unsigned e = entry_of("annual_fee");
    const char *zh = nlu_faq_answer(e, WX_CHAT_ZH);
    assert_non_null(strstr(zh, "首年免年费。\n每个卡片年度内"));
    assert_non_null(strstr(nlu_faq_answer(e, WX_CHAT_EN), "is free.\nMake 6 purchases"));
    e = entry_of("installment_fee");
    for (int lang = WX_CHAT_ZH; lang <= WX_CHAT_EN; lang++) {
        const char *a = nlu_faq_answer(e, (enum wx_chat_lang)lang);
        assert_non_null(strstr(a, "{installment_rates}"));
        assert_non_null(strchr(a, '\n'));
    }
    /* The file's quotes and question marks come through as they are. */
    assert_non_null(strstr(nlu_faq_answer(entry_of("due_date"), WX_CHAT_EN), "Send \"bill\""));
}

static void finds(const char *q, const char *id)
{
    struct nlu_faq_hit hits[3];
    size_t n = search(q, hits, 3);
    if (n == 0) fail_msg("%s: nothing, not %s", q, id);
    if (strcmp(nlu_faq_id(hits[0].entry), id) != 0) {
        fail_msg("%s: %s (%.2f), not %s", q, nlu_faq_id(hits[0].entry), (double)hits[0].score, id);
    }
    for (size_t i = 1; i < n; i++)
        assert_true(hits[i].score <= hits[i - 1].score);
}

/* Questions in other words than the file's (but the brief's 卡丢了怎么办). */
static void test_rephrased(void **state)
{
    (void)state;
    finds("信用卡一年要交多少钱年费", "annual_fee");
    finds("年费能不能免掉", "annual_fee");
    finds("副卡一年收多少钱", "supplementary_card_fee");
    finds("能帮老婆办张副卡吗", "supplementary_card");
    finds("how long is the interest free period", "interest_free_period");
    finds("刷完卡多少天内还款不用付利息", "interest_free_period");
    finds("每个月几号必须还钱", "due_date");
    finds("我想改一下账单日", "statement_day_change");
    finds("how is the minimum amount calculated", "minimum_payment");
    finds("只还最低会怎么样", "minimum_payment_only");
    finds("what interest rate do you charge", "interest_rate");
    finds("晚还款几天会罚钱吗", "late_payment");
    finds("I missed my payment what happens", "late_payment");
    finds("逾期了会影响征信吗", "credit_report");
    finds("will it hurt my credit score", "credit_report");
    finds("how much are the installment fees", "installment_fee");
    finds("can I repay my installment early", "installment_early_payoff");
    finds("用信用卡取现金收多少手续费", "cash_advance");
    finds("how much does it cost to withdraw cash", "cash_advance");
    finds("境外刷卡收手续费吗", "foreign_transactions");
    finds("积分多久过期", "points_earn");
    finds("卡丢了怎么办", "report_lost");
    finds("有笔交易不是我刷的", "card_fraud_protection");
    finds("锁卡跟挂失哪个好", "card_lock_vs_lost");
    finds("闪付不用输密码的限额是多少", "contactless_quickpay");
    finds("I forgot my PIN", "pin_reset");
    finds("how to activate the card I received", "card_activation");
    finds("额度用完了还能刷吗", "over_limit");
    finds("可以用微信还信用卡吗", "repayment_channels");
    finds("还进去的钱先还利息还是本金", "repayment_order");
    finds("my card got declined", "declined_reasons");
    finds("卡片芯片坏了", "card_damaged");
    finds("我不想用这张卡了想注销", "cancel_card");
    finds("有人打电话问我要验证码", "scam_warning");
    /* As typed on a phone: traditional characters, full width, emoji. */
    finds("境外刷卡收手續費嗎？？😂", "foreign_transactions");
    finds("ＨＯＷ LONG is the interest-free period?", "interest_free_period");
}

static void finds_nothing(const char *q)
{
    struct nlu_faq_hit hits[3];
    size_t n = search(q, hits, 3);
    if (n != 0) {
        fail_msg("%s: %s (%.2f), not nothing", q, nlu_faq_id(hits[0].entry), (double)hits[0].score);
    }
}

static void test_off_topic(void **state)
{
    (void)state;
    finds_nothing("今天天气怎么样");
    finds_nothing("tell me a joke");
    finds_nothing("讲个笑话");
    finds_nothing("明天会下雨吗");
    finds_nothing("推荐一部电影");
    finds_nothing("帮我订一张机票");
    finds_nothing("附近有什么好吃的");
    finds_nothing("现在几点了");
    finds_nothing("你叫什么名字");
    finds_nothing("what is the weather like today");
    finds_nothing("book me a flight to beijing");
    finds_nothing("how are you");
    finds_nothing("你好");
    finds_nothing("谢谢");
    finds_nothing("怎么办");
    finds_nothing("多少");
    finds_nothing("");
    finds_nothing("😂😂😂");
    finds_nothing("？！。…… 🙏");
}

/* The index is the same whatever the order of searches, cap only cuts the list, and any
 * nlu_text (even one no normalization makes) is read only within its arrays. */
static void test_limits(void **state)
{
    (void)state;
    struct nlu_faq_hit hits[64], one;
    size_t n = search("年费多少 免年费 annual fee", hits, 64);
    assert_true(n >= 2);
    assert_string_equal(nlu_faq_id(hits[0].entry), "annual_fee");
    assert_int_equal(search("年费多少 免年费 annual fee", &one, 1), 1);
    assert_int_equal(one.entry, hits[0].entry);
    assert_true(one.score == hits[0].score);
    assert_int_equal(search("年费多少", NULL, 0), 0);

    /* The longest message: every token a term. */
    char big[NLU_TEXT_MAX + 64] = "";
    while (strlen(big) + strlen("年费") < sizeof big)
        strcat(big, "年费");
    n = search(big, hits, 64);
    assert_true(n >= 1);
    assert_string_equal(nlu_faq_id(hits[0].entry), "annual_fee");

    /* A text with more tokens than it may hold, and tokens past its end. */
    nlu_normalize("年费多少", strlen("年费多少"), &text);
    text.ntok = SIZE_MAX;
    text.len = SIZE_MAX;
    for (size_t i = 4; i < NLU_TOKENS_MAX; i++) {
        text.tok[i] = (struct nlu_token){
            .kind = (uint8_t)(i % 5), .off = (uint16_t)(i * 7), .len = (uint16_t)(i * 3)};
    }
    text.tok[NLU_TOKENS_MAX - 1].off = UINT16_MAX;
    text.tok[NLU_TOKENS_MAX - 1].len = UINT16_MAX;
    (void)nlu_faq_search(&text, hits, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),   cmocka_unit_test(test_answers_as_written),
        cmocka_unit_test(test_rephrased), cmocka_unit_test(test_off_topic),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
