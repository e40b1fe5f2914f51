/*
 * login.c - the login every sensitive page begins with, and binding, which is a login.
 *
 * The login name may be the ID-document number, a card number or the registered mobile; the
 * login password and a CAPTCHA go with it. The CAPTCHA is checked first and used up either
 * way, so no password is tried without a person reading a picture. Card and ID numbers are
 * found on the loop through the keys' HMACs (the engine never sees either); a mobile is found
 * in the store, on the worker, with the Argon2 check. An unknown name costs the same hash as
 * a known one, and says the same words: the page tells nobody which names exist.
 *
 * A login rotates the session id (an id planted before is worth nothing) and counts toward
 * the lockout: WX_LOGIN_TRIES wrong passwords lock the login for web.login_lock_s.
 */
#include "web/web_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/pan.h"
#include "util/timeutil.h"

#define LOGIN_MAX 32 /* characters of a login name: an ID, card or mobile number */

void login_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                const char *error_zh, const char *error_en, const char *login)
{
    struct web_page p;
    bool bind = s->action == WEB_GO_BIND;
    page_begin(&p, s->english, bind ? "绑定信用卡" : "登录", bind ? "Bind your card" : "Log in");
    if (bind) {
        page_raw(&p, "<p class=\"hint\">%s</p>",
                 PAGE_T(&p,
                        "绑定后，这个微信将收到您信用卡的每一笔交易提醒，并可查询额度、管理卡片。",
                        "Once bound, this WeChat receives an alert for every transaction on your "
                        "cards and can check your credit and manage your cards."));
    }
    page_error(&p, error_zh, error_en);
    page_form(&p, "/m/login", s);
    page_field(&p, "login", "text", "登录名（身份证号、卡号或预留手机号）",
               "Login name (ID number, card number or registered mobile)", login,
               "maxlength=\"32\" autocomplete=\"username\" required");
    page_field(&p, "password", "password", "登录密码", "Login password", NULL,
               "maxlength=\"64\" autocomplete=\"current-password\" required");
    page_captcha(w, &p, s, wx_now_ms());
    page_submit(&p, bind ? "验证并绑定" : "登录", bind ? "Verify and bind" : "Log in");
    page_captcha_refresh(&p);
    page_form_end(&p);
    page_raw(&p, "<p class=\"links\"><a href=\"/m/password\">%s</a></p>",
             PAGE_T(&p, "首次使用或忘记密码？通过预留手机设置密码",
                    "First time, or forgot your password? Set it through your registered mobile"));
    page_end(&p);
    web_send(w, req, error_zh != NULL ? 400 : 200, &p, sid);
}

/* ---- who the login name is ----------------------------------------------------------------- */

/* Digits and letters in upper case (ID documents other than a resident ID carry letters);
 * spaces and dashes people type are dropped, a leading + (a mobile) is kept. */
static bool clean_login(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '-') continue;
        char c = (char)toupper((unsigned char)*p);
        if (!isdigit((unsigned char)c) && !(c >= 'A' && c <= 'Z') && !(c == '+' && n == 0)) {
            return false;
        }
        if (n + 1 >= cap) return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return n > 0;
}

/* The customer a card or ID number names (on the loop); 0 when it names none. */
static uint32_t customer_of(wx_web_t *w, const char *login)
{
    const wx_engine_t *e = wx_hub_engine(w->hub);
    const wx_keys_t *keys = wx_hub_keys(w->hub);
    size_t n = strlen(login);
    if (n >= 13 && n <= 19 && wx_luhn_valid(login, n)) {
        uint8_t ref[WX_REF_LEN];
        struct wx_card_view card;
        wx_card_ref(keys, login, ref);
        wx_wipe(ref, 0);
        if (wx_engine_card_by_ref(e, ref, &card) == 0) return card.customer_id;
    }
    if (n >= 6 && login[0] != '+') { /* an ID document: 18 characters, or a passport's 9 */
        uint8_t id[WX_REF_LEN];
        struct wx_customer_view c;
        wx_id_hmac(keys, login, id);
        if (wx_engine_customer_by_id_hmac(e, id, &c) == 0) return c.id;
    }
    return 0;
}

static bool is_mobile(const char *s)
{
    if (strncmp(s, "+86", 3) == 0) s += 3;
    return strlen(s) == 11 && s[0] == '1' && strspn(s, "0123456789") == 11;
}

/*
 * Wrong passwords for a name nobody has count and lock like a customer's, under an id of the
 * name's own (the high bit set: customer ids are small), so that neither a lockout nor its
 * absence tells which names exist.
 */
static uint32_t name_lock_id(const wx_web_t *w, const char *login)
{
    uint8_t mac[32];
    char text[LOGIN_MAX + 8];
    int n = snprintf(text, sizeof text, "login:%s", login);
    wx_hmac_sha256(w->captcha_key, sizeof w->captcha_key, text, (size_t)n, mac);
    uint32_t id;
    memcpy(&id, mac, sizeof id);
    return id | 0x80000000u;
}

/* ---- the check, on the worker --------------------------------------------------------------- */

enum login_result { LOGIN_OK, LOGIN_WRONG, LOGIN_NO_PASSWORD, LOGIN_ERROR };

struct login_job {
    struct web_job job;
    wx_http_req_t *req;
    char sid[WX_TOKEN_TEXT_LEN + 1];
    uint32_t customer_id;           /* 0: find it by mobile */
    uint32_t lock_id;               /* whose wrong passwords these are */
    char mobile[WX_MOBILE_MAX + 4]; /* the login name when it is a mobile */
    char login[LOGIN_MAX + 1];      /* as typed, shown again on a failure */
    char password[WX_PASSWORD_MAX + 1];
    enum login_result result;
};

static void login_work(struct web_job *j, wx_web_store_t *store)
{
    struct login_job *l = (struct login_job *)j;
    char err[160], hash[WX_PASSWORD_HASH_MAX];
    const char *mobile = strncmp(l->mobile, "+86", 3) == 0 ? l->mobile + 3 : l->mobile;
    if (l->customer_id == 0 && mobile[0] != '\0' &&
        wx_web_store_customer_by_mobile(store, mobile, &l->customer_id, err, sizeof err) < 0) {
        WX_ERROR("web: %s", err);
    }
    int have = l->customer_id != 0 ? wx_web_store_password(store, l->customer_id, WX_PW_LOGIN, hash,
                                                           err, sizeof err)
                                   : 0;
    if (have < 0) {
        WX_ERROR("web: %s", err);
        l->result = LOGIN_ERROR;
    } else if (have == 0) {
        /* an unknown name, or no password yet: the same hash's time, the same words */
        wx_password_verify(j->w->decoy, l->password, strlen(l->password));
        l->result = l->customer_id != 0 ? LOGIN_NO_PASSWORD : LOGIN_WRONG;
    } else {
        l->result =
            wx_password_verify(hash, l->password, strlen(l->password)) ? LOGIN_OK : LOGIN_WRONG;
    }
    wx_wipe(l->password, sizeof l->password);
}

static void locked_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                        int64_t until)
{
    char when[32], zh[256], en[256];
    wx_time_format(until, w->opt.tz_offset_minutes, when, sizeof when);
    snprintf(zh, sizeof zh,
             "登录密码连续输错%d次，登录已锁定至 %s。可通过预留手机重置密码立即解锁。",
             WX_LOGIN_TRIES, when);
    snprintf(en, sizeof en,
             "%d wrong login passwords in a row: the login is locked until %s. Resetting the "
             "password through your registered mobile unlocks it now.",
             WX_LOGIN_TRIES, when);
    login_page(w, req, s, sid, zh, en, NULL);
}

static void login_done(struct web_job *j, bool gone)
{
    struct login_job *l = (struct login_job *)j;
    wx_web_t *w = j->w;
    struct wx_session *s = gone ? NULL : wx_sessions_find(w->sessions, l->sid, wx_now_ms());
    if (gone) goto out;
    if (s == NULL) {
        web_session_gone(w, l->req);
        goto out;
    }
    s->busy = false;
    int64_t now = wx_now_ms();
    if (l->customer_id != 0) l->lock_id = l->customer_id; /* a mobile found on the worker */
    int64_t until = wx_guard_locked_until(w->locks, l->lock_id, WX_PW_LOGIN, now);
    if (until != 0) {
        web_audit(w, l->req, l->customer_id, s->openid, "login", "locked");
        locked_page(w, l->req, s, l->sid, until);
    } else if (l->result == LOGIN_ERROR) {
        web_audit(w, l->req, l->customer_id, s->openid, "login", "error");
        web_notice(w, l->req, 500, s->english, "系统繁忙", "Service unavailable",
                   "系统暂时无法处理，请稍后再试。", "Please try again later.");
    } else if (l->result != LOGIN_OK) {
        /* an unknown name, no password set yet, or a wrong one: the same words and count */
        w->stats.logins_failed++;
        until = wx_guard_failed(w->locks, l->lock_id, WX_PW_LOGIN, now);
        if (until != 0) web_lock_changed(w, l->lock_id, WX_PW_LOGIN, until);
        web_audit(w, l->req, l->customer_id, s->openid, "login",
                  until != 0                       ? "locked"
                  : l->result == LOGIN_NO_PASSWORD ? "no_password"
                  : l->customer_id != 0            ? "wrong_password"
                                                   : "unknown_login");
        if (until != 0) {
            locked_page(w, l->req, s, l->sid, until);
        } else {
            login_page(w, l->req, s, l->sid,
                       "登录名或登录密码错误。首次使用请先通过预留手机设置密码。",
                       "Wrong login name or password. First time here? Set your password through "
                       "your registered mobile first.",
                       l->login);
        }
    } else {
        char sid[WX_TOKEN_TEXT_LEN + 1];
        struct wx_session *fresh = wx_sessions_rotate(w->sessions, l->sid, now, sid);
        if (fresh == NULL) { /* it ended between the two looks */
            web_session_gone(w, l->req);
            goto out;
        }
        w->stats.logins_ok++;
        wx_guard_passed(w->locks, l->customer_id, WX_PW_LOGIN);
        fresh->customer_id = l->customer_id;
        web_audit(w, l->req, l->customer_id, fresh->openid, "login", "ok");
        login_go_on(w, l->req, fresh, sid);
    }
out:
    wx_wipe(l, sizeof *l);
    free(l);
}

void login_post(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid)
{
    struct wx_form *form = &w->form; /* wiped once the request is handled (server.c) */
    if (!web_form(w, req, s, form)) return;
    const char *login = wx_form_get(form, "login");
    const char *password = wx_form_get(form, "password");
    char echo[LOGIN_MAX + 1] = ""; /* typed back on a failure: a mobile only, never a card
                                    * or ID number (no page shows one) */
    if (login != NULL && clean_login(login, echo, sizeof echo) && !is_mobile(echo)) echo[0] = '\0';
    if (wx_form_get(form, "refresh") != NULL) {
        login_page(w, req, s, sid, NULL, NULL, echo); /* a new picture, the name kept */
        return;
    }
    if (!captcha_check(w, s, form, wx_now_ms())) {
        web_audit(w, req, 0, s->openid, "login", "bad_captcha");
        login_page(w, req, s, sid, "图形验证码错误或已过期，请重新输入。",
                   "The picture code is wrong or has expired; try the new one.", echo);
        return;
    }
    struct login_job *l = wx_calloc(1, sizeof *l);
    if (login == NULL || password == NULL || !clean_login(login, l->login, sizeof l->login) ||
        strlen(password) > WX_PASSWORD_MAX || password[0] == '\0') {
        wx_wipe(l, sizeof *l);
        free(l);
        login_page(w, req, s, sid, "请填写登录名（身份证号、卡号或手机号）和登录密码。",
                   "Enter your login name (ID, card or mobile number) and login password.", echo);
        return;
    }
    l->customer_id = customer_of(w, l->login);
    l->lock_id = l->customer_id != 0 ? l->customer_id : name_lock_id(w, l->login);
    if (l->customer_id == 0 && is_mobile(l->login)) {
        memcpy(l->mobile, l->login, strlen(l->login) + 1); /* is_mobile: at most 14 */
    }
    snprintf(l->login, sizeof l->login, "%s", echo);
    int64_t until = wx_guard_locked_until(w->locks, l->lock_id, WX_PW_LOGIN, wx_now_ms());
    if (until != 0) { /* no hash is checked while locked: guessing goes nowhere */
        web_audit(w, req, l->customer_id, s->openid, "login", "locked");
        wx_wipe(l, sizeof *l);
        free(l);
        locked_page(w, req, s, sid, until);
        return;
    }
    memcpy(l->password, password, strlen(password) + 1);
    memcpy(l->sid, sid, sizeof l->sid);
    l->req = req;
    l->job.work = login_work;
    l->job.done = login_done;
    web_post_job(w, req, s, &l->job, sizeof *l);
}

/* ---- binding ----------------------------------------------------------------------------------
 */

struct bind_wait {
    wx_web_t *w;
    wx_http_req_t *req;
    uint32_t customer_id;
    char openid[WX_OPENID_MAX + 1];
    char sid[WX_TOKEN_TEXT_LEN + 1]; /* the session's new id, when the login just rotated it */
    bool english;
};

static void on_sms(enum wx_sms_result r, int status, const char *error, void *arg)
{
    (void)status;
    const char *what = arg;
    if (r != WX_SMS_OK) WX_WARN("web: %s SMS not sent: %s", what, error);
}

/* An SMS to the customer's registered mobile (a notice; its failure is logged). */
void web_sms_notice(wx_web_t *w, uint32_t customer_id, const char *what, const char *text)
{
    struct wx_customer_view c;
    if (w->sms == NULL || wx_engine_customer(wx_hub_engine(w->hub), customer_id, &c) != 0 ||
        c.mobile[0] == '\0') {
        return;
    }
    char ref[64];
    snprintf(ref, sizeof ref, "web:%s:%" PRIu32 ":%" PRId64, what, customer_id, wx_now_ms());
    if (wx_sms_client_send(w->sms, c.mobile, text, ref, on_sms, (void *)what) != 0) {
        WX_WARN("web: %s SMS not sent (the gateway could not be called)", what);
    }
}

static void bound(void *arg, bool cancelled)
{
    struct bind_wait *b = arg;
    if (cancelled) wx_http_error(b->req, 503, "the bank is restarting; try again shortly");
    if (!cancelled) {
        wx_web_t *w = b->w;
        w->stats.binds++;
        char when[32], text[256];
        wx_time_format(wx_now_ms(), w->opt.tz_offset_minutes, when, sizeof when);
        snprintf(text, sizeof text,
                 "【微信银行】您的信用卡于%s绑定了一个新的微信。如非本人操作，请立即致电95555。",
                 when);
        web_sms_notice(w, b->customer_id, "bind", text);
        web_audit(w, b->req, b->customer_id, b->openid, "bind", "ok");
        web_notice_sid(w, b->req, b->sid[0] != '\0' ? b->sid : NULL, 200, b->english, "绑定成功",
                       "Card bound", "绑定成功！回到微信即可查询额度、账单，每笔交易都会提醒您。",
                       "Done! Go back to WeChat to check your credit and bills; every transaction "
                       "will be announced there.");
    }
    free(b);
}

static void bind(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid)
{
    const wx_engine_t *e = wx_hub_engine(w->hub);
    struct wx_follower_view f;
    if (s->openid[0] == '\0') {
        web_notice_sid(w, req, sid, 400, s->english, "请从微信打开", "Open this from WeChat",
                       "绑定需要从微信公众号里打开链接。",
                       "Binding needs the link opened in WeChat.");
        return;
    }
    if (wx_engine_follower(e, s->openid, &f) == 0 && f.customer_id == s->customer_id) {
        web_notice_sid(w, req, sid, 200, s->english, "已绑定", "Already bound",
                       "这个微信已绑定您的信用卡。", "This WeChat is already bound to your cards.");
        return;
    }
    if (w->stopping) { /* the hub takes no new decisions while it drains */
        wx_http_add_header(req, "Retry-After", "5");
        web_notice_sid(w, req, sid, 503, s->english, "系统维护", "Restarting",
                       "系统正在重启，请稍后再试。", "The bank is restarting; try again shortly.");
        return;
    }
    struct wx_cmd cmd = {.kind = WX_CMD_FOLLOWER_BIND, .time_ms = wx_now_ms()};
    snprintf(cmd.follower.openid, sizeof cmd.follower.openid, "%s", s->openid);
    cmd.follower.customer_id = s->customer_id;
    cmd.follower.via = WX_BIND_CARDHOLDER;
    uint8_t nonce[8];
    char hex[17];
    wx_random_bytes(nonce, sizeof nonce);
    wx_hex_encode(nonce, sizeof nonce, hex, sizeof hex);
    cmd.key_len = (uint8_t)snprintf(cmd.key, sizeof cmd.key, "web-bind:%s", hex);
    struct wx_result res;
    uint64_t seq = wx_hub_submit(w->hub, &cmd, &res);
    if (res.reason == WX_R_FOLLOWER_LIMIT) {
        web_audit(w, req, s->customer_id, s->openid, "bind", "limit");
        web_notice_sid(
            w, req, sid, 409, s->english, "绑定数量已满", "Too many WeChats",
            "您的信用卡已绑定的微信数量已达上限，请先在其中一个微信里解除绑定。",
            "Your cards are bound to as many WeChats as allowed; unbind one of them first.");
    } else if (res.reason == WX_R_FOLLOWER_TAKEN) {
        web_audit(w, req, s->customer_id, s->openid, "bind", "taken");
        web_notice_sid(w, req, sid, 409, s->english, "微信已被绑定", "WeChat bound to someone else",
                       "这个微信已绑定其他持卡人的信用卡，请先解除原有绑定。",
                       "This WeChat is bound to another cardholder's cards; unbind it first.");
    } else if (res.reason != WX_APPROVED) {
        web_audit(w, req, s->customer_id, s->openid, "bind", wx_reason_str(res.reason));
        web_notice_sid(w, req, sid, 500, s->english, "绑定失败", "Not bound",
                       "绑定未成功，请稍后再试。",
                       "The binding did not go through; please try again later.");
    } else {
        struct bind_wait *b = wx_calloc(1, sizeof *b);
        b->w = w;
        b->req = req;
        b->customer_id = s->customer_id;
        b->english = s->english;
        if (sid != NULL) snprintf(b->sid, sizeof b->sid, "%s", sid);
        snprintf(b->openid, sizeof b->openid, "%s", s->openid);
        web_after_durable(w, seq, bound, b); /* said done only once it is on disk */
    }
}

void login_go_on(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid)
{
    if (s->action == WEB_GO_BIND) {
        bind(w, req, s, sid);
        return;
    }
    if (s->action == WEB_GO_NONE || s->action == WEB_GO_PASSWORD) {
        web_notice_sid(w, req, sid, 200, s->english, "已登录", "Logged in",
                       "您已登录。请回到微信继续办理。", "You are logged in. Go back to WeChat.");
        return;
    }
    char path[48];
    if (s->action == WEB_GO_TXN) {
        snprintf(path, sizeof path, "/m/txn/%" PRIu64, s->arg);
    } else {
        snprintf(path, sizeof path, "%s", web_action_path((enum web_action)s->action));
    }
    web_redirect(w, req, path, sid);
}

void bind_status(wx_web_t *w, wx_http_req_t *req, struct wx_session *s)
{
    struct wx_follower_view f;
    bool mine = s->openid[0] != '\0' &&
                wx_engine_follower(wx_hub_engine(w->hub), s->openid, &f) == 0 &&
                f.customer_id == s->customer_id;
    if (mine) {
        web_notice(w, req, 200, s->english, "已绑定", "Bound", "这个微信已绑定您的信用卡。",
                   "This WeChat is bound to your cards.");
    } else {
        web_notice(w, req, 200, s->english, "未绑定", "Not bound",
                   "这个微信尚未绑定您的信用卡。请在微信公众号里发送“绑定”获取绑定链接。",
                   "This WeChat is not bound to your cards. Send \"bind\" to the bank's WeChat "
                   "account for a binding link.");
    }
}
