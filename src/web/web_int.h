/*
 * web_int.h - what the secure back end's files share. Private to src/web.
 *
 *   tokens.c   one-time tokens; the text form of every random id (web_id_*)
 *   session.c  sessions and their CSRF tokens
 *   form.c     posted forms; what counts as text (web_is_text)
 *   table.c    what the bounded tables of tokens, sessions and guards share
 */
#ifndef WX_WEB_WEB_INT_H
#define WX_WEB_WEB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "web/web.h"

#define WEB_ID_BYTES 32 /* every token and session id: 256 random bits */

/* A fresh random id: its bytes' SHA-256 (what tables keep) and its hex text. */
void web_id_new(uint8_t digest[32], char text[WX_TOKEN_TEXT_LEN + 1]);

/* The SHA-256 of the id text names; false for text that is not exactly an id's encoding. */
bool web_id_digest(const char *text, uint8_t digest[32]);

/* Valid UTF-8 (no overlong form, surrogate or code point past U+10FFFF) without a control
 * character or NUL; *chars (when not NULL) the characters in it. */
bool web_is_text(const char *s, size_t len, size_t *chars);

/* ---- bounded tables (table.c) ------------------------------------------------------------ */

/* A link in a list by age (of issue or of last use), kept in each entry of a table so the
 * oldest can go when the table is full or its life has ended. */
struct web_age {
    struct web_age *older, *newer;
};

struct web_ages {
    struct web_age *oldest, *newest;
};

void web_age_remove(struct web_ages *l, struct web_age *a);
void web_age_add_newest(struct web_ages *l, struct web_age *a);

/* The entry of type holding the link a (NULL for NULL). */
#define WEB_ENTRY_OF(a, type, member)                                                              \
    ((a) != NULL ? (type *)(void *)((char *)(a)-offsetof(type, member)) : (type *)NULL)

/* Hash buckets for a table of at most max entries: a power of two, at least twice max. */
size_t web_buckets_for(size_t max);

/* ============================================================================================
 * The pages (server.c, page.c, worker.c, entry.c, login.c, actions.c, reset.c)
 * ========================================================================================= */

#include "net/net.h"
#include "notify/notify.h"
#include "wechat/wechat.h"

/* What a visit is for: a link from chat names one, the pages go on to it after the login. */
enum web_action {
    WEB_GO_NONE = 0,
    WEB_GO_BIND,     /* bind this WeChat to the cardholder who logs in */
    WEB_GO_UNBIND,   /* unbind it */
    WEB_GO_CARDS,    /* the cards: lock, and unlock with the transaction password */
    WEB_GO_TXN,      /* a transaction's details (the alerts' link) */
    WEB_GO_PASSWORD, /* set or reset the passwords through the registered mobile */
};

/* Where an action's page is ("/m/bind"), and its name in links ("bind"); NULL for none. */
const char *web_action_path(enum web_action a);
enum web_action web_action_by_name(const char *name);

/* What a one-time link (and the OAuth state after it) carries. */
struct web_link {
    uint8_t action;                 /* enum web_action */
    uint64_t arg;                   /* WEB_GO_TXN: the journal seq */
    char openid[WX_OPENID_MAX + 1]; /* who it was sent to; "" for anyone (a details link) */
};

#define WEB_COOKIE "__Host-wxs" /* the session cookie: Secure, Path=/, no Domain */

/* A page being written: HTML in a growing buffer. */
struct web_page {
    char *buf;
    size_t len, cap;
    bool english;
};

struct web_worker;
struct web_wait;
struct web_job;

struct wx_web {
    wx_hub_t *hub;
    wx_http_t *http;
    struct wx_wechat_api *api; /* OAuth; NULL: links alone */
    struct wx_sms_client *sms; /* NULL: no SMS gateway, so no reset by SMS */
    struct wx_web_options opt;
    char public_url[WX_WEB_URL_MAX]; /* "https://host:port", no trailing slash */
    char oauth_url[WX_WEB_URL_MAX];
    char appid[64];
    wx_tokens_t *links; /* one-time links and OAuth states */
    wx_sessions_t *sessions;
    wx_guard_t *guard;
    uint8_t captcha_key[32]; /* hashes CAPTCHA answers and SMS codes */
    /* a hash of nothing anybody knows, at the pages' cost: checked when a login name has no
     * password, so that it takes as long as a wrong one (made before the pages open) */
    char decoy[WX_PASSWORD_HASH_MAX];
    struct web_worker *worker; /* Argon2, the store, journal reads */
    struct web_worker *drawer; /* CAPTCHA pictures */
    struct web_wait *waits;    /* answers waiting for the journal */
    unsigned jobs_out;         /* jobs posted to the worker and not yet finished on the loop */
    unsigned oauth_out;        /* OAuth codes being exchanged with WeChat */
    bool stopped;              /* wx_web_stop ran: the listener's requests are gone */
    wx_guard_t *locks;         /* lockouts, apart from the rate limits: a flood of new keys
                                * there cannot push a lock in force out */
    struct wx_form form;       /* the form being handled (posted forms hold passwords: it is
                                * wiped after every request) */
    bool stopping;
    struct wx_web_stats stats;
};

/* ---- server.c: sessions, limits, answers ------------------------------------------------ */

/* The session the request's cookie names (NULL: none, or over); its id into sid. */
struct wx_session *web_session(wx_web_t *w, wx_http_req_t *req, char sid[WX_TOKEN_TEXT_LEN + 1]);

/* A new session for the follower, for action (the cookie goes with the next page). */
struct wx_session *web_session_open(wx_web_t *w, const char *openid, const struct web_link *l,
                                    wx_http_req_t *req, char sid[WX_TOKEN_TEXT_LEN + 1]);

/* Whether the client may go on: false once its IP (or the session's follower) asked too
 * often (the 429 page is then sent). */
bool web_allow(wx_web_t *w, wx_http_req_t *req, const struct wx_session *s, bool post);

/* The page as the answer, with the headers every page carries (CSP, no-store, ...) and the
 * session cookie when sid is not NULL. Frees the page's buffer. */
void web_send(wx_web_t *w, wx_http_req_t *req, int status, struct web_page *p, const char *sid);

/* A page that only says something (an error, a refusal, a result), with a way back. */
void web_notice(wx_web_t *w, wx_http_req_t *req, int status, bool english, const char *title_zh,
                const char *title_en, const char *text_zh, const char *text_en);

/* The same, with the session's cookie (its id was just rotated). */
void web_notice_sid(wx_web_t *w, wx_http_req_t *req, const char *sid, int status, bool english,
                    const char *title_zh, const char *title_en, const char *text_zh,
                    const char *text_en);

/* An SMS to the customer's registered mobile; what names it in logs ("bind"). Its failure is
 * logged, never shown: a notice is not part of the action. */
void web_sms_notice(wx_web_t *w, uint32_t customer_id, const char *what, const char *text);

/* 303 to path (on this site). */
void web_redirect(wx_web_t *w, wx_http_req_t *req, const char *path, const char *sid);

/* The posted form of a request (false: a notice was sent: not a form, or a bad CSRF). */
bool web_form(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, struct wx_form *form);

/* Hands j (size bytes, allocated) to the worker for the session's request and marks the
 * session busy until its page is made; false when the worker is full: j is wiped and freed
 * and 503 answered. */
bool web_post_job(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, struct web_job *j,
                  size_t size);

/* The page for a session that ended while its request was being worked on. */
void web_session_gone(wx_web_t *w, wx_http_req_t *req);

/* Writes an audit entry (on the worker: the store is its own). */
void web_audit(wx_web_t *w, wx_http_req_t *req, uint32_t customer_id, const char *openid,
               const char *action, const char *result);

/* A lockout began (until_ms) or ended (0) in w->locks: it is kept in the store, so that a
 * restart does not end it. */
void web_lock_changed(wx_web_t *w, uint32_t id, enum wx_password_kind kind, int64_t until_ms);

/* Calls fn(arg) on the loop once seq is durable (at once when it is). */
void web_after_durable(wx_web_t *w, uint64_t seq, void (*fn)(void *arg, bool cancelled), void *arg);

/* ---- worker.c: the thread for slow work (Argon2, drawing, the store) -------------------- */

struct web_job;
typedef void (*web_job_fn)(struct web_job *j, wx_web_store_t *store);
struct web_job {
    struct web_job *next;
    web_job_fn work;                            /* on the worker thread */
    void (*done)(struct web_job *j, bool gone); /* then on the loop; gone: shutting down */
    struct wx_hub_task task;
    wx_web_t *w;
};

/* A worker thread; with_store, it owns <db>.web (jobs get the store; otherwise NULL). */
struct web_worker *web_worker_start(wx_web_t *w, bool with_store, char *err, size_t errlen);
/* Queues j (false when WEB_JOBS_MAX wait already: the caller answers 503). */
bool web_worker_post(struct web_worker *k, struct web_job *j);
/* Stops the thread; what had not run is done with gone set. */
void web_worker_stop(struct web_worker *k);

#define WEB_JOBS_MAX 64

/* ---- page.c: HTML -------------------------------------------------------------------------- */

void page_begin(struct web_page *p, bool english, const char *title_zh, const char *title_en);
void page_end(struct web_page *p);
/* Markup of our own (never outside text: page_text escapes that). */
void page_raw(struct web_page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void page_text(struct web_page *p, const char *s);
/* zh or en, as the page's language */
#define PAGE_T(p, zh, en) ((p)->english ? (en) : (zh))
void page_error(struct web_page *p, const char *zh, const char *en);
void page_form(struct web_page *p, const char *action, const struct wx_session *s);
void page_field(struct web_page *p, const char *name, const char *type, const char *label_zh,
                const char *label_en, const char *value, const char *extra);
/* A fresh CAPTCHA for the session, and its picture and answer field in the form. */
void page_captcha(wx_web_t *w, struct web_page *p, struct wx_session *s, int64_t now_ms);
void page_submit(struct web_page *p, const char *zh, const char *en);
/* The button that asks for a new CAPTCHA picture (after page_submit). */
void page_captcha_refresh(struct web_page *p);
void page_form_end(struct web_page *p);

/* The stylesheet (/m/static/app.css). */
extern const char web_css[];

/* ---- the pages' handlers ------------------------------------------------------------------- */

void entry_go(wx_web_t *w, wx_http_req_t *req, const char *token); /* GET /m/go/<token> */
void entry_oauth(wx_web_t *w, wx_http_req_t *req);                 /* GET /m/oauth */
void entry_details(wx_web_t *w, wx_http_req_t *req, uint64_t seq); /* GET /m/txn/<seq> */
/* GET /m/captcha/<id>.png of the session's form */
void captcha_picture(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *id);
/* Whether the CAPTCHA answer in the form is right; it is used up either way. */
bool captcha_check(wx_web_t *w, struct wx_session *s, const struct wx_form *form, int64_t now_ms);

void login_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                const char *error_zh, const char *error_en, const char *login);
void login_post(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid);
/* After the login: on to the session's action (bind it, or show its page). */
void login_go_on(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid);
/* Whether the session's follower is bound to the one logged in (GET /m/bind after it). */
void bind_status(wx_web_t *w, wx_http_req_t *req, struct wx_session *s);

/* The test build's hooks (tests/support/web_test_hooks.c; no-ops in wxbank itself, hooks.c):
 * a CAPTCHA's answer as it is made, and the routes that give it back to tests. */
void web_captcha_shown(const char *id, const char *answer);
bool web_test_route(wx_http_req_t *req, const char *path);

void actions_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                  enum web_action a);
void actions_post(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid,
                  const char *what);

void reset_page(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid);
void reset_post_code(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid);
void reset_post(wx_web_t *w, wx_http_req_t *req, struct wx_session *s, const char *sid);

#endif
