/*
 * reset.c - setting and resetting the passwords through the registered mobile.
 *
 * The first time, and whenever a password is forgotten or locked, the cardholder proves who
 * they are with the ID-document number and a one-time code sent by SMS to the mobile the bank
 * has on file (never one typed on the page), then chooses a new login password, a new
 * transaction password, or both. A new password ends its lockout.
 *
 * The page says the same for an ID the bank does not know ("a code was sent to the registered
 * mobile"), so it cannot be used to find out who is a customer. A code is six digits, kept
 * only as an HMAC, good for web.sms_code_life_s and three tries; one SMS a minute and five an
 * hour per customer.
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
#include "util/timeutil.h"

#define CODE_LEN      6
#define CODE_TRIES    3
#define SMS_GAP_MS    60000 /* between two codes to one customer */
#define SMS_PER_HOUR  5
#define HOUR_MS       3600000
#define ID_NUMBER_MAX 18

static void code_hash(const wx_web_t *w, uint32_t customer_id, const char *code, uint8_t out[32])
{
    char text[32];
    int n = snprintf(text, sizeof text, "code:%" PRIu32 ":%s", customer_id, code);
    wx_hmac_sha256(w->captcha_key, sizeof w->captcha_key, text, (size_t)n, out);
    wx_wipe(text, sizeof text);
}

/* Step 1: the ID number and a CAPTCHA. */
static void id_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                    const char *err_zh, const char *err_en)
{
    struct web_page p;
    page_begin(&p, s->english, "设置或重置密码", "Set or reset your passwords");
    page_raw(&p, "<p class=\"hint\">%s</p>",
             PAGE_T(&p, "我们将向您在银行预留的手机号发送短信验证码。",
                    "We will send a one-time code by SMS to the mobile number the bank has on "
                    "file for you."));
    page_error(&p, err_zh, err_en);
    page_form(&p, "/m/password/code", s);
    page_field(&p, "id_number", "text", "身份证号", "ID number", NULL,
               "maxlength=\"18\" autocomplete=\"off\" required");
    page_captcha(w, &p, s, wx_now_ms());
    page_submit(&p, "获取短信验证码", "Send me a code");
    page_captcha_refresh(&p);
    page_form_end(&p);
    page_end(&p);
    web_send(w, req, err_zh != NULL ? 400 : 200, &p, sid);
}

/* Step 2: the code and the new passwords. */
static void code_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                      const char *err_zh, const char *err_en)
{
    struct web_page p;
    page_begin(&p, s->english, "设置新密码", "Choose new passwords");
    page_raw(&p, "<p class=\"hint\">%s</p>",
             PAGE_T(&p, "如身份证号无误，验证码已发送至您的预留手机，请在短信所述时间内使用。",
                    "If the ID number is ours, a code went to your registered mobile; use it "
                    "within the time the SMS says."));
    page_error(&p, err_zh, err_en);
    page_form(&p, "/m/password", s);
    page_field(&p, "code", "text", "短信验证码", "Code from the SMS", NULL,
               "inputmode=\"numeric\" maxlength=\"6\" autocomplete=\"one-time-code\" required");
    page_field(&p, "login_password", "password",
               "新登录密码（8位以上，含大小写字母、数字或符号中的三种）",
               "New login password (8+ characters, three of: lower case, upper case, digits, "
               "symbols)",
               NULL, "maxlength=\"64\" autocomplete=\"new-password\"");
    page_field(&p, "login_password2", "password", "再次输入新登录密码", "Repeat it", NULL,
               "maxlength=\"64\" autocomplete=\"new-password\"");
    page_field(&p, "txn_password", "password", "新交易密码（6位数字）",
               "New transaction password (6 digits)", NULL,
               "inputmode=\"numeric\" maxlength=\"6\" autocomplete=\"off\"");
    page_field(&p, "txn_password2", "password", "再次输入新交易密码", "Repeat it", NULL,
               "inputmode=\"numeric\" maxlength=\"6\" autocomplete=\"off\"");
    page_raw(&p, "<p class=\"hint\">%s</p>",
             PAGE_T(&p, "只改其中一个时，另一个留空即可。",
                    "To change only one, leave the other empty."));
    page_submit(&p, "确认", "Confirm");
    page_form_end(&p);
    page_end(&p);
    web_send(w, req, err_zh != NULL ? 400 : 200, &p, sid);
}

void reset_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid)
{
    id_page(w, req, s, sid, NULL, NULL);
}

/* An ID number as people type it: 15 or 18 characters, digits and a final X. */
static bool clean_id(const char *in, char out[ID_NUMBER_MAX + 1])
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ') continue;
        char c = (char)toupper((unsigned char)*p);
        if (n == ID_NUMBER_MAX || !(isdigit((unsigned char)c) || c == 'X')) return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return (n == 15 || n == 18) && strchr(out, 'X') == NULL
               ? true
               : (n == 15 || n == 18) && strchr(out, 'X') == out + n - 1;
}

static void on_code_sms(enum wx_sms_result r, int status, const char *error, void *arg)
{
    (void)status;
    (void)arg;
    if (r != WX_SMS_OK) WX_WARN("web: one-time code SMS not sent: %s", error);
}

/* Sends a fresh code to the customer's registered mobile; false when none can go now. */
static bool send_code(wx_web_t *w, struct wx_session *s, uint32_t customer_id)
{
    struct wx_customer_view c;
    if (w->sms == NULL || wx_engine_customer(wx_hub_engine(w->hub), customer_id, &c) != 0 ||
        c.mobile[0] == '\0') {
        return false;
    }
    char code[CODE_LEN + 1], text[200], ref[64];
    uint8_t r[8];
    wx_random_bytes(r, sizeof r);
    uint64_t v;
    memcpy(&v, r, sizeof v);
    snprintf(code, sizeof code, "%06u", (unsigned)(v % 1000000u));
    code_hash(w, customer_id, code, s->code.hash);
    snprintf(text, sizeof text,
             "【微信银行】验证码%s，用于设置信用卡密码，%d分钟内有效。银行不会向您索要验证码，请勿"
             "告诉任何人。",
             code, (int)((w->opt.code_life_ms + 59999) / 60000)); /* whole minutes, up */
    snprintf(ref, sizeof ref, "web:code:%" PRIu32 ":%" PRId64, customer_id, wx_now_ms());
    bool ok = wx_sms_client_send(w->sms, c.mobile, text, ref, on_code_sms, NULL) == 0;
    wx_wipe(code, sizeof code);
    wx_wipe(text, sizeof text);
    return ok;
}

void reset_post_code(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid)
{
    struct wx_form *form = &w->form; /* wiped once the request is handled (server.c) */
    if (!web_form(w, req, s, form)) return;
    if (wx_form_get(form, "refresh") != NULL) {
        id_page(w, req, s, sid, NULL, NULL);
        return;
    }
    int64_t now = wx_now_ms();
    if (!captcha_check(w, s, form, now)) {
        web_audit(w, req, 0, s->openid, "sms_code", "bad_captcha");
        id_page(w, req, s, sid, "图形验证码错误或已过期，请重新输入。",
                "The picture code is wrong or has expired; try the new one.");
        return;
    }
    char id[ID_NUMBER_MAX + 1];
    const char *typed = wx_form_get(form, "id_number");
    if (typed == NULL || !clean_id(typed, id)) {
        id_page(w, req, s, sid, "请输入15位或18位身份证号。",
                "Enter your 15- or 18-digit ID number.");
        return;
    }
    if (w->sms == NULL) {
        wx_wipe(id, sizeof id);
        web_notice(w, req, 503, s->english, "短信暂不可用", "SMS unavailable",
                   "暂时无法发送短信验证码，请稍后再试或致电95555。",
                   "The code cannot be sent by SMS now; try later or call 95555.");
        return;
    }
    uint8_t hmac[WX_REF_LEN];
    struct wx_customer_view c = {.id = 0};
    wx_id_hmac(wx_hub_keys(w->hub), id, hmac);
    wx_engine_customer_by_id_hmac(wx_hub_engine(w->hub), hmac, &c);
    /* one code a minute and five an hour per ID number, known or not: the limit must not
     * tell which numbers are customers' */
    char who[2 * WX_REF_LEN + 1], key[48], hour[48];
    wx_hex_encode(hmac, sizeof hmac, who, sizeof who); /* the number itself is not kept */
    int n = snprintf(key, sizeof key, "sms:%s", who);
    int h = snprintf(hour, sizeof hour, "smsh:%s", who);
    if (!wx_guard_allow(w->locks, key, (size_t)n, 1, SMS_GAP_MS, now) ||
        !wx_guard_allow(w->locks, hour, (size_t)h, SMS_PER_HOUR, HOUR_MS, now)) {
        wx_wipe(id, sizeof id);
        web_audit(w, req, c.id, s->openid, "sms_code", "too_often");
        id_page(w, req, s, sid, "验证码发送过于频繁，请稍后再试。",
                "A code was sent very recently; please wait a minute.");
        return;
    }
    memset(&s->code, 0, sizeof s->code); /* a new code replaces the last */
    s->code.customer_id = c.id;
    snprintf(s->code.id_number, sizeof s->code.id_number, "%s", id);
    s->code.expires_ms = now + w->opt.code_life_ms;
    wx_wipe(id, sizeof id);
    bool sent = c.id != 0 && send_code(w, s, c.id);
    web_audit(w, req, c.id, s->openid, "sms_code",
              c.id == 0 ? "unknown_id"
              : sent    ? "sent"
                        : "not_sent");
    code_page(w, req, s, sid, NULL, NULL);
}

/* ---- the new passwords, hashed on the worker ------------------------------------------------ */

struct set_job {
    struct web_job job;
    wx_http_req_t *req;
    char sid[WX_TOKEN_TEXT_LEN + 1];
    uint32_t customer_id;
    char openid[WX_OPENID_MAX + 1];
    char mobile[WX_MOBILE_MAX + 1];
    char login_pw[WX_PASSWORD_MAX + 1], txn_pw[WX_TXN_PASSWORD_LEN + 1];
    bool set_login, set_txn; /* which of the two is new: only its lockout ends */
    bool ok;
};

static void set_work(struct web_job *j, wx_web_store_t *store)
{
    struct set_job *t = (struct set_job *)j;
    char hash[WX_PASSWORD_HASH_MAX], err[160] = "Argon2 failed (out of memory?)";
    int64_t now = wx_now_ms();
    t->ok = true;
    if (t->login_pw[0] != '\0') {
        t->ok = wx_password_hash(&j->w->opt.cost, t->login_pw, strlen(t->login_pw), hash) == 0 &&
                wx_web_store_set_password(store, t->customer_id, WX_PW_LOGIN, hash, now, err,
                                          sizeof err) == 0;
    }
    if (t->ok && t->txn_pw[0] != '\0') {
        t->ok = wx_password_hash(&j->w->opt.cost, t->txn_pw, strlen(t->txn_pw), hash) == 0 &&
                wx_web_store_set_password(store, t->customer_id, WX_PW_TXN, hash, now, err,
                                          sizeof err) == 0;
    }
    if (t->ok) {
        t->ok = wx_web_store_set_mobile(store, t->customer_id, t->mobile, err, sizeof err) == 0;
    }
    if (!t->ok) WX_ERROR("web: new passwords not stored: %s", err);
    wx_wipe(t->login_pw, sizeof t->login_pw);
    wx_wipe(t->txn_pw, sizeof t->txn_pw);
}

static void set_done(struct web_job *j, bool gone)
{
    struct set_job *t = (struct set_job *)j;
    wx_web_t *w = j->w;
    struct wx_session *s = gone ? NULL : wx_sessions_find(w->sessions, t->sid, wx_now_ms());
    if (!gone) {
        if (s != NULL) s->busy = false;
        bool english = s != NULL && s->english;
        web_audit(w, t->req, t->customer_id, t->openid, "password_set", t->ok ? "ok" : "error");
        if (!t->ok) {
            web_notice(w, t->req, 500, english, "系统繁忙", "Service unavailable",
                       "密码未能保存，请稍后再试。", "The passwords were not saved; try again.");
        } else {
            if (t->set_login) {
                wx_guard_unlock(w->locks, t->customer_id, WX_PW_LOGIN);
                web_lock_changed(w, t->customer_id, WX_PW_LOGIN, 0);
            }
            if (t->set_txn) {
                wx_guard_unlock(w->locks, t->customer_id, WX_PW_TXN);
                web_lock_changed(w, t->customer_id, WX_PW_TXN, 0);
            }
            web_sms_notice(w, t->customer_id, "password",
                           "【微信银行】您的信用卡密码已重新设置。如非本人操作，请立即致电95555。");
            const char *next = s != NULL && s->action != WEB_GO_PASSWORD && s->action != WEB_GO_NONE
                                   ? web_action_path((enum web_action)s->action)
                                   : NULL;
            struct web_page p;
            page_begin(&p, english, "密码已设置", "Passwords set");
            page_raw(&p, "<p class=\"notice\">%s</p>",
                     PAGE_T(&p, "新密码已生效，锁定已解除。",
                            "The new passwords work now; "
                            "any lockout is lifted."));
            if (next != NULL) {
                page_raw(&p, "<p class=\"links\"><a href=\"%s\">%s</a></p>", next,
                         PAGE_T(&p, "继续", "Continue"));
            }
            page_end(&p);
            web_send(w, t->req, 200, &p, NULL);
        }
    }
    wx_wipe(t, sizeof *t);
    free(t);
}

/* Why the new passwords cannot be taken, in words (NULL: they can). */
static const char *refuse(struct wx_session *s, const struct wx_form *form,
                          const struct wx_customer_view *c, bool *english_out)
{
    (void)english_out;
    const char *lp = wx_form_get(form, "login_password");
    const char *lp2 = wx_form_get(form, "login_password2");
    const char *tp = wx_form_get(form, "txn_password");
    const char *tp2 = wx_form_get(form, "txn_password2");
    bool en = s->english;
    bool login = lp != NULL && lp[0] != '\0', txn = tp != NULL && tp[0] != '\0';
    if (!login && !txn) return en ? "Enter a new password." : "请至少设置一个新密码。";
    if (login && (lp2 == NULL || strcmp(lp, lp2) != 0)) {
        return en ? "The two login passwords differ." : "两次输入的登录密码不一致。";
    }
    if (txn && (tp2 == NULL || strcmp(tp, tp2) != 0)) {
        return en ? "The two transaction passwords differ." : "两次输入的交易密码不一致。";
    }
    char birth[9] = "";
    const char *id = s->code.id_number;
    if (strlen(id) == 18) {
        memcpy(birth, id + 6, 8); /* YYYYMMDD in an 18-character resident ID */
    }
    struct wx_password_person who = {
        .login = NULL, .mobile = c->mobile, .id_number = id, .birth_date = birth[0] ? birth : NULL};
    enum wx_password_flaw f = login ? wx_password_check_login(lp, strlen(lp), &who) : WX_PW_OK;
    if (f == WX_PW_OK && txn) f = wx_password_check_txn(tp, strlen(tp), &who);
    if (login && txn && strcmp(lp, tp) == 0) f = WX_PW_TOO_SIMPLE;
    return f != WX_PW_OK ? wx_password_flaw_text(f, en) : NULL;
}

void reset_post(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid)
{
    struct wx_form *form = &w->form; /* wiped once the request is handled (server.c) */
    if (!web_form(w, req, s, form)) return;
    int64_t now = wx_now_ms();
    const char *code = wx_form_get(form, "code");
    if (s->code.expires_ms == 0 || now >= s->code.expires_ms || s->code.tries >= CODE_TRIES) {
        memset(&s->code, 0, sizeof s->code);
        id_page(w, req, s, sid, "验证码已失效，请重新获取。",
                "The code has expired; ask for a new one.");
        return;
    }
    uint8_t hash[32];
    bool right = false;
    if (code != NULL && strlen(code) == CODE_LEN && strspn(code, "0123456789") == CODE_LEN &&
        s->code.customer_id != 0) {
        code_hash(w, s->code.customer_id, code, hash);
        right = wx_ct_equal(hash, s->code.hash, sizeof hash);
    }
    if (!right) {
        s->code.tries++;
        web_audit(w, req, s->code.customer_id, s->openid, "password_set", "wrong_code");
        if (s->code.tries >= CODE_TRIES) {
            memset(&s->code, 0, sizeof s->code);
            id_page(w, req, s, sid, "验证码错误次数过多，请重新获取。",
                    "Too many wrong codes; ask for a new one.");
        } else {
            code_page(w, req, s, sid, "短信验证码错误。", "Wrong code.");
        }
        return;
    }
    struct wx_customer_view c;
    if (wx_engine_customer(wx_hub_engine(w->hub), s->code.customer_id, &c) != 0) {
        memset(&s->code, 0, sizeof s->code);
        id_page(w, req, s, sid, "请重新获取验证码。", "Ask for a new code.");
        return;
    }
    const char *why = refuse(s, form, &c, NULL);
    if (why != NULL) { /* the code stays good for another try: the person is the same */
        web_audit(w, req, c.id, s->openid, "password_set", "refused_weak");
        code_page(w, req, s, sid, why, why);
        return;
    }
    struct set_job *t = wx_calloc(1, sizeof *t);
    t->job.work = set_work;
    t->job.done = set_done;
    t->req = req;
    t->customer_id = c.id;
    snprintf(t->sid, sizeof t->sid, "%s", sid);
    snprintf(t->openid, sizeof t->openid, "%s", s->openid);
    snprintf(t->mobile, sizeof t->mobile, "%s", c.mobile);
    const char *lp = wx_form_get(form, "login_password");
    const char *tp = wx_form_get(form, "txn_password");
    snprintf(t->login_pw, sizeof t->login_pw, "%s", lp != NULL ? lp : "");
    snprintf(t->txn_pw, sizeof t->txn_pw, "%s", tp != NULL ? tp : "");
    t->set_login = t->login_pw[0] != '\0';
    t->set_txn = t->txn_pw[0] != '\0';
    if (web_post_job(w, req, s, &t->job, sizeof *t)) {
        memset(&s->code, 0, sizeof s->code); /* the code is spent */
    }
}
