/*
 * policy.c - who receives an alert on WeChat, and when it goes by SMS as well.
 *
 * Recipients: every follower bound to the card's holder and, for a supplementary card, every
 * follower bound to the account's main holder (who pays for what the supplementary card
 * spends), each OpenID once.
 *
 * The bank reports every card transaction on WeChat and keeps SMS where it matters: SMS costs
 * money per message, and a flood of them for every coffee teaches people to ignore the ones
 * that count. So only small, ordinary, domestic purchases of a holder who can read WeChat go
 * without one; everything unusual (large, abroad, cash, declined, money coming back, changes
 * to the card or its limits) gets both. The rules, in the order they are checked:
 *
 *   rule                                                       SMS
 *   the holder has no follower bound                           yes
 *   not an approved purchase (cash, decline, increment,        yes
 *     capture, reversal, refund, repayment, limit, status)
 *   cash (ATM channel or a cash MCC) even if typed purchase    yes
 *   cross-border, or the money was not CNY                     yes
 *   amount >= quiet_below_fen (300.00 by default)              yes
 *   channel POS and quiet_pos, or CNP and quiet_cnp            no
 *   any other channel                                          yes
 *
 * Later, once WeChat's outcome is known: a permanent failure, or no delivery within the delay,
 * sends the SMS the first decision held back.
 */
#include "notify/notify.h"

#include <assert.h>
#include <string.h>

/* ---- recipients ---- */

static bool openid_listed(const struct wx_follower_view *list, size_t n, const char *openid)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].openid, openid) == 0) {
            return true;
        }
    }
    return false;
}

size_t wx_alert_recipients(const wx_engine_t *e, const struct wx_alert *a,
                           struct wx_follower_view *out, size_t cap)
{
    assert(e != NULL && a != NULL);
    assert(out != NULL || cap == 0);
    uint32_t holders[2] = {a->customer_id, a->supplementary ? a->main_customer_id : 0};
    struct wx_follower_view got[WX_FOLLOWERS_PER_CUSTOMER];
    size_t n = 0;
    for (size_t h = 0; h < 2; h++) {
        if (holders[h] == 0 || (h == 1 && holders[1] == holders[0])) {
            continue;
        }
        size_t m = wx_engine_customer_followers(e, holders[h], got, WX_FOLLOWERS_PER_CUSTOMER);
        assert(m <= WX_FOLLOWERS_PER_CUSTOMER);
        for (size_t i = 0; i < m && n < cap; i++) {
            if (!openid_listed(out, n, got[i].openid)) {
                out[n++] = got[i];
            }
        }
    }
    assert(n <= WX_ALERT_RECIPIENTS_MAX);
    return n;
}

size_t wx_alert_holder_followers(const wx_engine_t *e, const struct wx_alert *a)
{
    assert(e != NULL && a != NULL);
    return wx_engine_customer_followers(e, a->customer_id, NULL, 0);
}

/* ---- SMS ---- */

struct wx_sms_policy wx_sms_policy_default(void)
{
    struct wx_sms_policy p = WX_SMS_POLICY_DEFAULT;
    return p;
}

/* Money that was not CNY, or acquired abroad: the holder must hear it on every channel. */
static bool foreign(const struct wx_alert *a)
{
    return a->cross_border || (a->txn_currency != 0 && a->txn_currency != WX_CURRENCY_CNY);
}

static bool channel_quiet(const struct wx_sms_policy *p, uint8_t channel)
{
    return (channel == WX_CHANNEL_POS && p->quiet_pos) ||
           (channel == WX_CHANNEL_CNP && p->quiet_cnp);
}

bool wx_alert_sms_wanted(const struct wx_sms_policy *p, const struct wx_alert *a,
                         size_t holder_followers)
{
    assert(p != NULL);
    assert(a != NULL);
    if (holder_followers == 0) {
        return true;
    }
    if (a->kind != WX_ALERT_PURCHASE || a->reason != WX_APPROVED || a->cash) {
        return true;
    }
    if (foreign(a)) {
        return true;
    }
    if (a->amount < 0 || a->amount >= p->quiet_below_fen) {
        return true;
    }
    return !channel_quiet(p, a->channel);
}

bool wx_alert_sms_fallback(const struct wx_sms_policy *p, const struct wx_alert *a,
                           size_t holder_followers, enum wx_alert_wechat_outcome outcome)
{
    assert(p != NULL);
    assert(a != NULL);
    switch (outcome) {
    case WX_ALERT_WECHAT_FAILED:
    case WX_ALERT_WECHAT_UNDELIVERED:
        /* The first decision's SMS, if there was one, already went. */
        return !wx_alert_sms_wanted(p, a, holder_followers);
    case WX_ALERT_WECHAT_PENDING:
    case WX_ALERT_WECHAT_DELIVERED:
        return false;
    }
    return true; /* an outcome this build does not know: better one SMS too many */
}
