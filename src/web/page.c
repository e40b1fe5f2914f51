/*
 * page.c - the pages' HTML: the frame every page shares, forms, the CAPTCHA and its picture.
 *
 * Pages are written server-side into a growing buffer, mobile-first, in Chinese or English.
 * Outside text (a login name typed back, a merchant's name) goes through page_text, which
 * escapes it; page_raw takes only the program's own markup. No script runs on any page, and
 * the stylesheet is our own file: the Content-Security-Policy allows nothing else.
 */
#include "web/web_int.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"

const char web_css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 -apple-system,'PingFang SC','Microsoft YaHei','WenQuanYi Micro "
    "Hei',sans-serif;background:#f2f3f5;color:#1d2129}"
    "header{background:#c8102e;color:#fff;padding:14px 16px;display:flex;align-items:center;"
    "justify-content:space-between}"
    "header .brand{font-weight:600;font-size:17px}header .brand small{font-weight:400;"
    "opacity:.85;margin-left:6px;font-size:13px}"
    "header a{color:#fff;font-size:13px;text-decoration:none;border:1px solid rgba(255,255,255,.6);"
    "border-radius:12px;padding:1px 9px}"
    "main{max-width:480px;margin:0 auto;padding:16px}"
    "h1{font-size:20px;margin:4px 0 14px}"
    ".panel{background:#fff;border-radius:10px;padding:16px;margin-bottom:14px;"
    "box-shadow:0 1px 2px rgba(0,0,0,.06)}"
    "label{display:block;font-size:14px;color:#4e5969;margin:12px 0 4px}"
    "input[type=text],input[type=password],input[type=tel]{width:100%;font-size:16px;"
    "padding:10px 12px;border:1px solid #c9cdd4;border-radius:6px;background:#fff}"
    "input:focus{outline:2px solid #f5a3ad;border-color:#c8102e}"
    ".captcha{display:flex;gap:8px;align-items:center}.captcha input{flex:1}"
    ".captcha img{width:120px;height:45px;border:1px solid #e5e6eb;border-radius:4px}"
    "button{width:100%;margin-top:18px;font-size:17px;padding:11px;border:0;border-radius:6px;"
    "background:#c8102e;color:#fff}"
    "button.plain{background:#fff;color:#c8102e;border:1px solid #c8102e}"
    "button.small{width:auto;margin:0;padding:4px 10px;font-size:13px}"
    ".notice{padding:12px;border-radius:6px;background:#e8f7ee;color:#1a7f37}"
    ".notice.bad,.error{background:#fdecee;color:#b42318;padding:10px 12px;border-radius:6px}"
    ".hint{font-size:13px;color:#86909c}"
    "table{width:100%;border-collapse:collapse;font-size:15px}"
    "td{padding:7px 0;border-bottom:1px solid #f2f3f5}td:last-child{text-align:right}"
    ".card{display:flex;justify-content:space-between;align-items:center;padding:10px 0;"
    "border-bottom:1px solid #f2f3f5}"
    ".links{font-size:14px;margin-top:14px}.links a{color:#c8102e}"
    "footer{text-align:center;font-size:12px;color:#86909c;padding:18px 16px 28px}";

/* ---- the buffer ---------------------------------------------------------------------------- */

static void grow(struct web_page *p, size_t more)
{
    if (p->len + more + 1 <= p->cap) return;
    size_t cap = p->cap != 0 ? p->cap : 4096;
    while (cap < p->len + more + 1)
        cap *= 2;
    p->buf = wx_realloc(p->buf, cap);
    p->cap = cap;
}

static void put(struct web_page *p, const char *s, size_t n)
{
    grow(p, n);
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

void page_raw(struct web_page *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[512];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    assert(n >= 0);
    if ((size_t)n < sizeof small) {
        put(p, small, (size_t)n);
        return;
    }
    grow(p, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(p->buf + p->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    p->len += (size_t)n;
}

void page_text(struct web_page *p, const char *s)
{
    size_t need = wx_html_escape(s, NULL, 0);
    grow(p, need);
    wx_html_escape(s, p->buf + p->len, need + 1);
    p->len += need;
}

/* ---- the frame ------------------------------------------------------------------------------ */

void page_begin(struct web_page *p, bool english, const char *title_zh, const char *title_en)
{
    memset(p, 0, sizeof *p);
    p->english = english;
    const char *title = PAGE_T(p, title_zh, title_en);
    page_raw(p,
             "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
             "<title>",
             english ? "en" : "zh-CN");
    page_text(p, title);
    page_raw(p,
             " - %s</title><link rel=\"stylesheet\" href=\"/m/static/app.css\"></head><body>"
             "<header><span class=\"brand\">%s<small>%s</small></span>"
             "<a href=\"?lang=%s\">%s</a></header><main><h1>",
             PAGE_T(p, "微信银行", "WX Bank"), PAGE_T(p, "微信银行", "WX Bank"),
             PAGE_T(p, "信用卡安全中心", "Card security centre"), english ? "zh" : "en",
             english ? "中文" : "English");
    page_text(p, title);
    page_raw(p, "</h1>");
}

void page_end(struct web_page *p)
{
    page_raw(p, "</main><footer>%s</footer></body></html>",
             PAGE_T(p, "本页经加密传输。银行工作人员不会向您索要密码或验证码。客服热线 95555",
                    "This page is encrypted. The bank never asks for your passwords or codes. "
                    "Service line 95555"));
}

void page_error(struct web_page *p, const char *zh, const char *en)
{
    if (zh == NULL) return;
    page_raw(p, "<p class=\"error\" role=\"alert\">");
    page_text(p, PAGE_T(p, zh, en));
    page_raw(p, "</p>");
}

void page_form(struct web_page *p, const char *action, const struct wx_session *s)
{
    page_raw(p,
             "<form class=\"panel\" method=\"post\" action=\"%s\" autocomplete=\"off\">"
             "<input type=\"hidden\" name=\"csrf\" value=\"%s\">",
             action, s->csrf);
}

void page_field(struct web_page *p, const char *name, const char *type, const char *label_zh,
                const char *label_en, const char *value, const char *extra)
{
    page_raw(p, "<label for=\"%s\">", name);
    page_text(p, PAGE_T(p, label_zh, label_en));
    page_raw(p, "</label><input id=\"%s\" name=\"%s\" type=\"%s\"", name, name, type);
    if (value != NULL) {
        page_raw(p, " value=\"");
        page_text(p, value);
        page_raw(p, "\"");
    }
    page_raw(p, " %s>", extra != NULL ? extra : "");
}

void page_submit(struct web_page *p, const char *zh, const char *en)
{
    page_raw(p, "<button type=\"submit\">");
    page_text(p, PAGE_T(p, zh, en));
    page_raw(p, "</button>");
}

void page_form_end(struct web_page *p)
{
    page_raw(p, "</form>");
}

/* ---- the CAPTCHA ----------------------------------------------------------------------------- */

/*
 * A new challenge replaces the session's last: its answer is kept only as an HMAC, plus the
 * plain answer until the picture is drawn (the first fetch of its URL), so a picture is drawn
 * once and an answer read from memory later is already gone.
 */
void page_captcha(wx_web_t *w, struct web_page *p, struct wx_session *s, int64_t now_ms)
{
    uint8_t id[8];
    wx_random_bytes(id, sizeof id);
    wx_hex_encode(id, sizeof id, s->captcha.id, sizeof s->captcha.id);
    wx_captcha_new_answer(s->captcha.draw);
    wx_captcha_answer_hash(w->captcha_key, s->captcha.draw, WX_CAPTCHA_LEN, s->captcha.hash);
    s->captcha.expires_ms = now_ms + w->opt.captcha_life_ms;
    web_captcha_shown(s->captcha.id, s->captcha.draw);
    page_raw(p, "<label for=\"captcha\">%s</label><div class=\"captcha\">",
             PAGE_T(p, "图形验证码（不区分大小写）", "Picture code (any case)"));
    page_raw(p,
             "<input id=\"captcha\" name=\"captcha\" type=\"text\" inputmode=\"latin\" "
             "maxlength=\"%d\" autocapitalize=\"characters\" required>"
             "<img src=\"/m/captcha/%s.png\" alt=\"%s\" width=\"%d\" height=\"%d\"></div>",
             WX_CAPTCHA_LEN, s->captcha.id, PAGE_T(p, "验证码图片", "picture code"),
             WX_CAPTCHA_WIDTH * 3 / 4, WX_CAPTCHA_HEIGHT * 3 / 4);
}

/* After the form's own button: Enter in a field presses the first submit button of a form. */
void page_captcha_refresh(struct web_page *p)
{
    page_raw(p,
             "<button class=\"plain\" type=\"submit\" name=\"refresh\" value=\"1\" "
             "formnovalidate>%s</button>",
             PAGE_T(p, "看不清？换一张图", "Hard to read? New picture"));
}

bool captcha_check(wx_web_t *w, struct wx_session *s, const struct wx_form *form, int64_t now_ms)
{
    const char *typed = wx_form_get(form, "captcha");
    bool live = s->captcha.expires_ms != 0 && now_ms < s->captcha.expires_ms;
    uint8_t hash[32];
    bool ok = false;
    if (live && typed != NULL && strlen(typed) == WX_CAPTCHA_LEN) {
        wx_captcha_answer_hash(w->captcha_key, typed, WX_CAPTCHA_LEN, hash);
        ok = wx_ct_equal(hash, s->captcha.hash, sizeof hash);
    }
    /* used up, right or wrong: a replayed or guessed-again answer finds nothing */
    s->captcha.expires_ms = 0;
    wx_wipe(&s->captcha, sizeof s->captcha);
    return ok;
}

struct draw_job {
    struct web_job job;
    wx_http_req_t *req;
    char answer[WX_CAPTCHA_LEN + 1];
    struct wx_captcha_image img;
    int rc;
};

static void draw_work(struct web_job *j, wx_web_store_t *store)
{
    (void)store;
    struct draw_job *d = (struct draw_job *)j;
    uint64_t seed;
    wx_random_bytes(&seed, sizeof seed);
    d->rc = wx_captcha_render(d->answer, seed, &d->img);
    wx_wipe(d->answer, sizeof d->answer);
}

static void draw_done(struct web_job *j, bool gone)
{
    struct draw_job *d = (struct draw_job *)j;
    if (!gone) {
        if (d->rc == 0) {
            wx_http_add_header(d->req, "Cache-Control", "no-store");
            wx_http_send(d->req, 200, "image/png", d->img.png, d->img.len);
        } else {
            wx_http_error(d->req, 500, "the picture could not be drawn");
        }
    }
    wx_captcha_image_free(&d->img);
    free(d);
}

void captcha_picture(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *id)
{
    bool ours = s->captcha.draw[0] != '\0' && strcmp(id, s->captcha.id) == 0 &&
                wx_now_ms() < s->captcha.expires_ms;
    if (!ours) {
        wx_http_add_header(req, "Cache-Control", "no-store");
        wx_http_error(req, 404, "no such picture (it is drawn once: ask for a new one)");
        return;
    }
    struct draw_job *d = wx_calloc(1, sizeof *d);
    d->job.work = draw_work;
    d->job.done = draw_done;
    d->req = req;
    memcpy(d->answer, s->captcha.draw, sizeof d->answer);
    wx_wipe(s->captcha.draw, sizeof s->captcha.draw);
    if (!web_worker_post(w->drawer, &d->job)) {
        wx_wipe(d->answer, sizeof d->answer);
        free(d);
        wx_http_add_header(req, "Retry-After", "1");
        wx_http_error(req, 503, "busy");
    }
}
