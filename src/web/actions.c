/*
 * actions.c - what a logged-in cardholder does: unbind this WeChat, lock and unlock a card,
 * read a transaction's details.
 *
 * Every action that gives something away (unbinding, unlocking) asks for the six-digit
 * transaction password, checked on the worker; WX_TXN_TRIES wrong ones lock it until the
 * next local midnight. Locking a card protects the cardholder and needs no more than the
 * login. Each change is a command to the engine, answered only once it is durable, and
 * written to the audit log.
 */
#include "web/web_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/money.h"
#include "util/timeutil.h"

#define CARDS_MAX 16 /* a customer's cards shown */

static void masked(const struct wx_card_view *c, char out[24])
{
    snprintf(out, 24, "%06" PRIu32 "******%04u", c->first6, (unsigned)c->last4);
}

static const char *status_text(uint8_t status, bool english)
{
    static const char *const ZH[] = {"未激活", "正常", "已锁定", "已挂失", "已挂失", "已销户"};
    static const char *const EN[] = {"not activated", "active",          "locked",
                                     "reported lost", "reported stolen", "closed"};
    if (status > WX_CARD_CLOSED) return "?";
    return english ? EN[status] : ZH[status];
}

/* The customer's card by id (false when it is not the customer's). */
static bool own_card(wx_web_t *w, uint32_t customer_id, const char *id_text,
                     struct wx_card_view *card)
{
    char *end = NULL;
    unsigned long id = id_text != NULL ? strtoul(id_text, &end, 10) : 0;
    return id != 0 && id <= UINT32_MAX && end != NULL && *end == '\0' &&
           wx_engine_card(wx_hub_engine(w->hub), (uint32_t)id, card) == 0 &&
           card->customer_id == customer_id;
}

/* ---- pages ---------------------------------------------------------------------------------- */

static void unbind_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                        const char *err_zh, const char *err_en)
{
    struct web_page p;
    page_begin(&p, s->english, "解除微信绑定", "Unbind this WeChat");
    page_raw(&p, "<p class=\"hint\">%s</p>",
             PAGE_T(&p, "解除后，这个微信将不再收到交易提醒，也不能查询您的卡片。",
                    "Once unbound, this WeChat no longer receives your alerts or sees your "
                    "cards."));
    page_error(&p, err_zh, err_en);
    page_form(&p, "/m/unbind", s);
    page_field(&p, "txn_password", "password", "交易密码（6位数字）",
               "Transaction password (6 digits)", NULL,
               "inputmode=\"numeric\" maxlength=\"6\" autocomplete=\"off\" required");
    page_submit(&p, "确认解除绑定", "Unbind");
    page_form_end(&p);
    page_end(&p);
    web_send(w, req, err_zh != NULL ? 400 : 200, &p, sid);
}

static void cards_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                       const char *err_zh, const char *err_en)
{
    struct wx_card_view cards[CARDS_MAX];
    size_t n = wx_engine_customer_cards(wx_hub_engine(w->hub), s->customer_id, cards, CARDS_MAX);
    struct web_page p;
    page_begin(&p, s->english, "我的卡片", "My cards");
    page_error(&p, err_zh, err_en);
    for (size_t i = 0; i < n; i++) {
        char m[24];
        masked(&cards[i], m);
        page_raw(&p, "<div class=\"panel\"><div class=\"card\"><span>%s</span><b>%s</b></div>", m,
                 status_text(cards[i].status, s->english));
        if (cards[i].status == WX_CARD_ACTIVE) {
            page_raw(&p,
                     "<form method=\"post\" action=\"/m/card/lock\"><input type=\"hidden\" "
                     "name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"card\" "
                     "value=\"%" PRIu32 "\">",
                     s->csrf, cards[i].id);
            page_submit(&p, "临时锁卡", "Lock this card");
            page_raw(&p, "</form>");
        } else if (cards[i].status == WX_CARD_LOCKED) {
            page_raw(&p,
                     "<form method=\"post\" action=\"/m/card/unlock\"><input type=\"hidden\" "
                     "name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"card\" "
                     "value=\"%" PRIu32 "\">",
                     s->csrf, cards[i].id);
            page_field(&p, "txn_password", "password", "交易密码（6位数字）",
                       "Transaction password (6 digits)", NULL,
                       "inputmode=\"numeric\" maxlength=\"6\" autocomplete=\"off\" required");
            page_submit(&p, "解锁", "Unlock");
            page_raw(&p, "</form>");
        }
        page_raw(&p, "</div>");
    }
    if (n == 0) {
        page_raw(&p, "<p class=\"panel\">%s</p>", PAGE_T(&p, "您名下暂无信用卡。", "No cards."));
    }
    page_end(&p);
    web_send(w, req, err_zh != NULL ? 400 : 200, &p, sid);
}

/* ---- a transaction's details, read from the journal on the worker --------------------------- */

struct txn_job {
    struct web_job job;
    wx_http_req_t *req;
    char sid[WX_TOKEN_TEXT_LEN + 1];
    uint64_t seq;
    bool found;
    int64_t at_ms;
    struct wx_cmd cmd;
    struct wx_result res;
};

static int on_row(void *ctx, const struct wx_journal_row *row)
{
    struct txn_job *t = ctx;
    if (row->seq != t->seq) return 0;
    t->found = wx_row_decode(row->body, row->len, &t->cmd, &t->res) == 0;
    t->at_ms = row->at_ms;
    return 1;
}

static void txn_work(struct web_job *j, wx_web_store_t *store)
{
    (void)store;
    struct txn_job *t = (struct txn_job *)j;
    char err[160];
    int rc = wx_journal_scan(j->w->opt.db_path, t->seq - 1, t->seq, on_row, t, err, sizeof err);
    if (rc < 0 && rc != WX_JOURNAL_ESHORT) WX_WARN("web: transaction %" PRIu64 ": %s", t->seq, err);
}

static const char *kind_text(const struct wx_cmd *c, bool english)
{
    switch (c->kind) {
    case WX_CMD_AUTHORIZE:
        if (c->auth.type == WX_AUTH_CASH) return english ? "Cash withdrawal" : "取现";
        return english ? "Purchase" : "消费";
    case WX_CMD_AUTH_INCREMENT:
        return english ? "Additional authorization" : "追加授权";
    case WX_CMD_CAPTURE:
        return english ? "Posted" : "入账";
    case WX_CMD_REVERSAL:
        return english ? "Reversal" : "撤销";
    case WX_CMD_REFUND:
        return english ? "Refund" : "退款";
    default:
        return NULL;
    }
}

static void row(struct web_page *p, const char *zh, const char *en, const char *value)
{
    page_raw(p, "<tr><td>%s</td><td>", PAGE_T(p, zh, en));
    page_text(p, value);
    page_raw(p, "</td></tr>");
}

static void txn_done(struct web_job *j, bool gone)
{
    struct txn_job *t = (struct txn_job *)j;
    wx_web_t *w = j->w;
    struct wx_session *s = gone ? NULL : wx_sessions_find(w->sessions, t->sid, wx_now_ms());
    struct wx_card_view card;
    const char *kind = t->found ? kind_text(&t->cmd, s != NULL && s->english) : NULL;
    if (gone) {
        free(t);
        return;
    }
    if (s != NULL) s->busy = false;
    if (s == NULL) {
        web_session_gone(w, t->req);
    } else if (kind == NULL || wx_engine_card(wx_hub_engine(w->hub), t->res.id, &card) != 0 ||
               card.customer_id != s->customer_id) {
        /* not a card transaction, or not this cardholder's: the same words either way */
        web_notice(w, t->req, 404, s->english, "交易不存在", "No such transaction",
                   "没有找到这笔交易。", "This transaction was not found.");
    } else {
        const struct wx_merchant *m =
            t->cmd.kind == WX_CMD_AUTHORIZE ? &t->cmd.auth.merchant : &t->cmd.follow.merchant;
        char m4[24], when[32], amount[WX_AMOUNT_FMT_MAX + 8], avail[WX_AMOUNT_FMT_MAX + 8];
        char result[96];
        masked(&card, m4);
        wx_time_format(t->at_ms, w->opt.tz_offset_minutes, when, sizeof when);
        wx_amount_format(t->res.amount, amount, sizeof amount);
        wx_amount_format(t->res.available, avail, sizeof avail);
        /* a decline in the cardholder's words, as the alert said it */
        snprintf(result, sizeof result, "%s",
                 t->res.reason == WX_APPROVED
                     ? (s->english ? "Approved" : "成功")
                     : wx_alert_reason_text(t->res.reason, s->english ? WX_LANG_EN : WX_LANG_ZH));
        struct web_page p;
        page_begin(&p, s->english, "交易详情", "Transaction details");
        page_raw(&p, "<div class=\"panel\"><table>");
        row(&p, "类型", "Type", kind);
        row(&p, "金额（人民币元）", "Amount (CNY)", amount);
        row(&p, "时间", "Time", when);
        row(&p, "卡号", "Card", m4);
        if (m->name[0] != '\0') row(&p, "商户", "Merchant", m->name);
        if (m->city[0] != '\0') row(&p, "城市", "City", m->city);
        row(&p, "结果", "Result", result);
        row(&p, "可用额度", "Available credit", avail);
        page_raw(&p, "</table></div><p class=\"links\"><a href=\"/m/cards\">%s</a></p>",
                 PAGE_T(&p, "不是本人交易？立即锁卡", "Not you? Lock the card now"));
        page_end(&p);
        web_audit(w, t->req, s->customer_id, s->openid, "txn_view", "ok");
        web_send(w, t->req, 200, &p, NULL);
    }
    free(t);
}

static void details(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid)
{
    struct txn_job *t = wx_calloc(1, sizeof *t);
    t->job.work = txn_work;
    t->job.done = txn_done;
    t->req = req;
    t->seq = s->arg;
    snprintf(t->sid, sizeof t->sid, "%s", sid);
    if (t->seq == 0 || t->seq > wx_hub_read_seq(w->hub)) {
        free(t);
        web_notice(w, req, 404, s->english, "交易不存在", "No such transaction",
                   "没有找到这笔交易。", "This transaction was not found.");
    } else {
        web_post_job(w, req, s, &t->job, sizeof *t);
    }
}

void actions_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                  enum web_action a)
{
    if (a == WEB_GO_UNBIND) {
        unbind_page(w, req, s, sid, NULL, NULL);
    } else if (a == WEB_GO_TXN) {
        details(w, req, s, sid);
    } else {
        cards_page(w, req, s, sid, NULL, NULL);
    }
}

/* ---- changes: the transaction password first, on the worker -----------------------------------
 */

enum change { CHANGE_UNBIND, CHANGE_LOCK, CHANGE_UNLOCK };

struct change_job {
    struct web_job job;
    wx_http_req_t *req;
    char sid[WX_TOKEN_TEXT_LEN + 1];
    enum change what;
    uint32_t customer_id, card_id;
    char openid[WX_OPENID_MAX + 1];
    char password[WX_TXN_PASSWORD_LEN + 1];
    int have; /* 1: checked; 0: no transaction password set; -1: the store failed */
    bool ok;
    bool english;
};

static void check_work(struct web_job *j, wx_web_store_t *store)
{
    struct change_job *c = (struct change_job *)j;
    char hash[WX_PASSWORD_HASH_MAX], err[160];
    c->have = wx_web_store_password(store, c->customer_id, WX_PW_TXN, hash, err, sizeof err);
    if (c->have < 0) WX_ERROR("web: %s", err);
    c->ok = c->have == 1 && wx_password_verify(hash, c->password, strlen(c->password));
    wx_wipe(c->password, sizeof c->password);
}

static const char *const CHANGE_NAMES[] = {"unbind", "card_lock", "card_unlock"};

static void changed(void *arg, bool cancelled)
{
    struct change_job *c = arg;
    wx_web_t *w = c->job.w;
    if (cancelled) wx_http_error(c->req, 503, "the bank is restarting; try again shortly");
    if (!cancelled) {
        web_audit(w, c->req, c->customer_id, c->openid, CHANGE_NAMES[c->what], "ok");
        if (c->what == CHANGE_UNBIND) {
            web_sms_notice(
                w, c->customer_id, "unbind",
                "【微信银行】您的信用卡已解除与一个微信的绑定。如非本人操作，请致电95555。");
            web_notice(w, c->req, 200, c->english, "已解除绑定", "Unbound",
                       "这个微信已解除绑定，将不再收到您的交易提醒。",
                       "This WeChat is unbound and no longer receives your alerts.");
        } else if (c->what == CHANGE_LOCK) {
            web_notice(w, c->req, 200, c->english, "已锁卡", "Card locked",
                       "卡片已临时锁定，所有交易将被拒绝。需要时可在这里用交易密码解锁。",
                       "The card is locked: every transaction is declined. Unlock it here with "
                       "your transaction password when you need it.");
        } else {
            web_notice(w, c->req, 200, c->english, "已解锁", "Card unlocked",
                       "卡片已解锁，可以正常使用。", "The card is unlocked and works again.");
        }
    }
    wx_wipe(c, sizeof *c);
    free(c);
}

/* Submits the change to the engine; the answer waits until it is durable. */
static void apply(wx_web_t *w, struct change_job *c)
{
    if (w->stopping) { /* the hub takes no new decisions while it drains */
        wx_http_add_header(c->req, "Retry-After", "5");
        web_notice(w, c->req, 503, c->english, "系统维护", "Restarting",
                   "系统正在重启，请稍后再试。", "The bank is restarting; try again shortly.");
        wx_wipe(c, sizeof *c);
        free(c);
        return;
    }
    struct wx_cmd cmd = {.time_ms = wx_now_ms()};
    uint8_t nonce[8];
    char hex[17];
    wx_random_bytes(nonce, sizeof nonce);
    wx_hex_encode(nonce, sizeof nonce, hex, sizeof hex);
    cmd.key_len =
        (uint8_t)snprintf(cmd.key, sizeof cmd.key, "web-%s:%s", CHANGE_NAMES[c->what], hex);
    if (c->what == CHANGE_UNBIND) {
        cmd.kind = WX_CMD_FOLLOWER_UNBIND;
        snprintf(cmd.follower.openid, sizeof cmd.follower.openid, "%s", c->openid);
        cmd.follower.customer_id = c->customer_id;
        cmd.follower.via = WX_BIND_CARDHOLDER;
    } else {
        cmd.kind = WX_CMD_CARD_STATUS;
        cmd.card_status.card_id = c->card_id;
        cmd.card_status.status = c->what == CHANGE_LOCK ? WX_CARD_LOCKED : WX_CARD_ACTIVE;
    }
    struct wx_result res;
    uint64_t seq = wx_hub_submit(w->hub, &cmd, &res);
    if (res.reason != WX_APPROVED) {
        web_audit(w, c->req, c->customer_id, c->openid, CHANGE_NAMES[c->what],
                  wx_reason_str(res.reason));
        web_notice(w, c->req, 409, c->english, "未能完成", "Not done",
                   c->what == CHANGE_UNBIND ? "这个微信未绑定您的信用卡。"
                                            : "卡片当前状态不允许这个操作。",
                   c->what == CHANGE_UNBIND ? "This WeChat is not bound to your cards."
                                            : "The card's status does not allow this.");
        wx_wipe(c, sizeof *c);
        free(c);
        return;
    }
    web_after_durable(w, seq, changed, c);
}

static void txn_locked(wx_web_t *w, struct change_job *c, struct wx_session *s, int64_t until)
{
    char when[32], zh[256], en[256];
    wx_time_format(until, w->opt.tz_offset_minutes, when, sizeof when);
    snprintf(zh, sizeof zh,
             "交易密码连续输错%d次，已锁定至 %s。可通过预留手机重置交易密码立即解锁。",
             WX_TXN_TRIES, when);
    snprintf(en, sizeof en,
             "%d wrong transaction passwords in a row: locked until %s. Resetting it through "
             "your registered mobile unlocks it now.",
             WX_TXN_TRIES, when);
    if (c->what == CHANGE_UNBIND) {
        unbind_page(w, c->req, s, c->sid, zh, en);
    } else {
        cards_page(w, c->req, s, c->sid, zh, en);
    }
}

static void check_done(struct web_job *j, bool gone)
{
    struct change_job *c = (struct change_job *)j;
    wx_web_t *w = j->w;
    struct wx_session *s = gone ? NULL : wx_sessions_find(w->sessions, c->sid, wx_now_ms());
    if (s == NULL) {
        if (!gone) {
            web_session_gone(w, c->req);
        }
        wx_wipe(c, sizeof *c);
        free(c);
        return;
    }
    s->busy = false;
    int64_t now = wx_now_ms(), until = 0;
    if (c->have == 0) {
        web_notice(w, c->req, 409, s->english, "未设置交易密码", "No transaction password",
                   "您尚未设置交易密码，请先通过预留手机设置（登录页面的“设置密码”）。",
                   "You have not set a transaction password yet: set it through your registered "
                   "mobile first.");
    } else if (c->have < 0) {
        web_notice(w, c->req, 500, s->english, "系统繁忙", "Service unavailable",
                   "系统暂时无法处理，请稍后再试。", "Please try again later.");
    } else if (!c->ok) {
        until = wx_guard_failed(w->locks, c->customer_id, WX_PW_TXN, now);
        if (until != 0) web_lock_changed(w, c->customer_id, WX_PW_TXN, until);
        web_audit(w, c->req, c->customer_id, c->openid, CHANGE_NAMES[c->what],
                  until != 0 ? "txn_locked" : "wrong_txn_password");
        if (until != 0) {
            txn_locked(w, c, s, until);
        } else if (c->what == CHANGE_UNBIND) {
            unbind_page(w, c->req, s, c->sid, "交易密码错误。", "Wrong transaction password.");
        } else {
            cards_page(w, c->req, s, c->sid, "交易密码错误。", "Wrong transaction password.");
        }
    } else if ((until = wx_guard_locked_until(w->locks, c->customer_id, WX_PW_TXN, now)) != 0) {
        /* locked while this one was being checked (guesses posted at once from several
         * sessions): a right guess after the lock counts for nothing */
        web_audit(w, c->req, c->customer_id, c->openid, CHANGE_NAMES[c->what], "txn_locked");
        txn_locked(w, c, s, until);
    } else {
        wx_guard_passed(w->locks, c->customer_id, WX_PW_TXN);
        s->txn_ok_ms = now;
        apply(w, c);
        return;
    }
    wx_wipe(c, sizeof *c);
    free(c);
}

void actions_post(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                  const char *what)
{
    struct wx_form *form = &w->form; /* wiped once the request is handled (server.c) */
    if (!web_form(w, req, s, form)) return;
    struct change_job *c = wx_calloc(1, sizeof *c);
    c->job.w = w; /* a lock goes to the engine without the worker */
    c->job.work = check_work;
    c->job.done = check_done;
    c->req = req;
    c->customer_id = s->customer_id;
    c->english = s->english;
    snprintf(c->sid, sizeof c->sid, "%s", sid);
    snprintf(c->openid, sizeof c->openid, "%s", s->openid);
    struct wx_card_view card;
    c->what = strcmp(what, "/m/unbind") == 0      ? CHANGE_UNBIND
              : strcmp(what, "/m/card/lock") == 0 ? CHANGE_LOCK
                                                  : CHANGE_UNLOCK;
    if (c->what != CHANGE_UNBIND) {
        if (!own_card(w, s->customer_id, wx_form_get(form, "card"), &card)) {
            free(c);
            cards_page(w, req, s, sid, "没有这张卡。", "No such card.");
            return;
        }
        c->card_id = card.id;
    } else if (s->openid[0] == '\0') {
        free(c);
        web_notice(w, req, 400, s->english, "请从微信打开", "Open this from WeChat",
                   "解除绑定需要从微信公众号里打开链接。",
                   "Unbinding needs the link opened in WeChat.");
        return;
    }
    if (c->what == CHANGE_LOCK) { /* protective: the login is enough */
        apply(w, c);
        return;
    }
    const char *pw = wx_form_get(form, "txn_password");
    int64_t until = wx_guard_locked_until(w->locks, s->customer_id, WX_PW_TXN, wx_now_ms());
    if (until != 0) {
        web_audit(w, req, c->customer_id, c->openid, CHANGE_NAMES[c->what], "txn_locked");
        txn_locked(w, c, s, until);
        free(c);
        return;
    }
    if (pw == NULL || strlen(pw) != WX_TXN_PASSWORD_LEN) {
        if (c->what == CHANGE_UNBIND) {
            unbind_page(w, req, s, sid, "请输入6位数字交易密码。",
                        "Enter your 6-digit transaction password.");
        } else {
            cards_page(w, req, s, sid, "请输入6位数字交易密码。",
                       "Enter your 6-digit transaction password.");
        }
        free(c);
        return;
    }
    memcpy(c->password, pw, WX_TXN_PASSWORD_LEN + 1);
    web_post_job(w, req, s, &c->job, sizeof *c);
}
