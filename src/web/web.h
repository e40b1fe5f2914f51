/*
 * web.h - the secure back end's pieces: passwords and graphic CAPTCHAs (the HTTPS pages,
 * sessions and one-time links that use them come with the pages).
 *
 * Anything that touches a cardholder's private information happens on these pages, never in
 * chat: a login name and password, a graphic CAPTCHA so that a script cannot guess, and a
 * second, six-digit transaction password for every sensitive action.
 */
#ifndef WX_WEB_WEB_H
#define WX_WEB_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

/* ============================================================================================
 * Passwords (password.c): Argon2id hashes, and the rules a new password must meet
 * ========================================================================================= */

#define WX_PASSWORD_MIN      8   /* characters of a login password */
#define WX_PASSWORD_MAX      64  /* bytes of a login password: more is refused, not cut */
#define WX_TXN_PASSWORD_LEN  6   /* digits of a transaction password */
#define WX_PASSWORD_HASH_MAX 128 /* an encoded hash ("$argon2id$v=19$m=...") with its NUL */

/* Argon2id's cost. The defaults were measured on the machine wxbank is built for (see
 * password.c); a bank sets its own after measuring its servers. */
struct wx_password_cost {
    uint32_t memory_kib; /* m */
    uint32_t iterations; /* t */
    uint32_t lanes;      /* p */
};

/* The default cost: m = 64 MiB, t = 2, p = 1, about 0.12 s of one core per hash here. */
void wx_password_cost_default(struct wx_password_cost *cost);

/*
 * Hashes password (len bytes) with a fresh random salt into out, in the encoded form that
 * carries its parameters ("$argon2id$v=19$m=65536,t=2,p=1$salt$hash"). Returns 0, or -1 when
 * the library fails (out of memory).
 */
int wx_password_hash(const struct wx_password_cost *cost, const char *password, size_t len,
                     char out[WX_PASSWORD_HASH_MAX]);

/* Whether password matches an encoded hash (in constant time for a given hash). */
bool wx_password_verify(const char *encoded, const char *password, size_t len);

/* Why a new password is refused: 0 when it is fine. */
enum wx_password_flaw {
    WX_PW_OK = 0,
    WX_PW_TOO_SHORT,    /* login: under WX_PASSWORD_MIN characters */
    WX_PW_TOO_LONG,     /* login: over WX_PASSWORD_MAX bytes */
    WX_PW_NOT_TEXT,     /* invalid UTF-8, a control character or a NUL */
    WX_PW_TOO_SIMPLE,   /* login: fewer than 3 of lower case, upper case, digits, others */
    WX_PW_HAS_IDENTITY, /* contains the login name, mobile or ID number */
    WX_PW_NOT_DIGITS,   /* transaction: not exactly WX_TXN_PASSWORD_LEN digits */
    WX_PW_WEAK_DIGITS,  /* transaction: repeated (111111), a run (123456, 654321), pairs... */
    WX_PW_BIRTH_DATE,   /* transaction: the birth date (YYMMDD, MMDD.., DDMMYY) */
};

/* What a password must not contain or be: the cardholder's own identifiers. */
struct wx_password_person {
    const char *login;      /* login name; may be NULL */
    const char *mobile;     /* registered mobile; may be NULL */
    const char *id_number;  /* ID-document number; may be NULL */
    const char *birth_date; /* YYYYMMDD; may be NULL */
};

enum wx_password_flaw wx_password_check_login(const char *password, size_t len,
                                              const struct wx_password_person *who);
enum wx_password_flaw wx_password_check_txn(const char *password, size_t len,
                                            const struct wx_password_person *who);

/* The flaw in words for the page, zh or en. */
const char *wx_password_flaw_text(enum wx_password_flaw flaw, bool english);

/* ============================================================================================
 * Graphic CAPTCHA (captcha.c): a PNG a person reads and a script does not
 * ========================================================================================= */

#define WX_CAPTCHA_LEN 5 /* characters of an answer */
/* No character that looks like another: 0/O/D, 1/I/L/7, 2/Z, 5/S, 8/B, 6/G, U/V. */
#define WX_CAPTCHA_ALPHABET "ACEFHJKMNPRTWXY349"
#define WX_CAPTCHA_WIDTH    160
#define WX_CAPTCHA_HEIGHT   60

struct wx_captcha_image {
    uint8_t *png; /* the PNG's bytes, owned: wx_captcha_image_free */
    size_t len;
};

/* A fresh random answer of WX_CAPTCHA_LEN characters of the alphabet. */
void wx_captcha_new_answer(char out[WX_CAPTCHA_LEN + 1]);

/*
 * Draws answer as a WX_CAPTCHA_WIDTH x WX_CAPTCHA_HEIGHT PNG: each glyph turned, scaled and
 * placed a little at random, the whole warped by a wave, with crossing lines and speckle.
 * seed drives every random choice (the same seed draws the same picture: tests); production
 * passes fresh random bits. Returns 0, or -1 when the answer is not WX_CAPTCHA_LEN characters
 * of the alphabet, or libgd or the font fails.
 */
int wx_captcha_render(const char *answer, uint64_t seed, struct wx_captcha_image *out);
void wx_captcha_image_free(struct wx_captcha_image *img);

/*
 * The stored form of an answer: HMAC-SHA256 under key of the answer in upper case, so the
 * answer itself is never kept and a typed answer matches whatever its case.
 */
void wx_captcha_answer_hash(const uint8_t key[32], const char *answer, size_t len, uint8_t out[32]);

/* ============================================================================================
 * One-time tokens (tokens.c): links from chat, CAPTCHA challenges
 * ========================================================================================= */

#define WX_TOKEN_TEXT_LEN    64  /* a token as text: 32 random bytes in lower-case hex */
#define WX_TOKEN_PAYLOAD_MAX 192 /* what a token carries (a follower, an action, an answer) */

/*
 * Tokens that are good once and for a while: a link chat sends to the secure pages (bound to
 * the follower and the action it is for), the CAPTCHA a page shows. Each is 256 random bits;
 * only its SHA-256 is kept, so the table's memory gives no usable token. Taking a token
 * removes it, whether or not it is still within its life. At most `max` are kept; issuing
 * one more drops the oldest. One thread at a time.
 */
typedef struct wx_tokens wx_tokens_t;

wx_tokens_t *wx_tokens_new(size_t max);
void wx_tokens_free(wx_tokens_t *t);

/* A fresh token carrying payload (len <= WX_TOKEN_PAYLOAD_MAX bytes) until now + life_ms.
 * Writes its text (WX_TOKEN_TEXT_LEN characters and a NUL) to out. */
void wx_tokens_issue(wx_tokens_t *t, const void *payload, size_t len, int64_t now_ms,
                     int64_t life_ms, char out[WX_TOKEN_TEXT_LEN + 1]);

/*
 * Takes the token named by text: 1 with its payload copied to out (cap bytes at most; *len
 * its length) when it exists and its life has not ended; 0 when it is unknown, used or
 * expired (nothing copied). Either way it is gone afterwards.
 */
int wx_tokens_take(wx_tokens_t *t, const char *text, int64_t now_ms, void *out, size_t cap,
                   size_t *len);

/* Tokens held now (expired ones included until they are taken, pushed out or swept). */
size_t wx_tokens_count(const wx_tokens_t *t);

/* Drops the tokens whose life has ended. */
void wx_tokens_sweep(wx_tokens_t *t, int64_t now_ms);

/* ============================================================================================
 * Sessions (session.c): who is on the secure pages, for how long, with which CSRF token
 * ========================================================================================= */

#define WX_SESSION_IDLE_MS     (10 * 60 * 1000) /* a session unused this long is over */
#define WX_SESSION_ABSOLUTE_MS (30 * 60 * 1000) /* and any session this old */

/* What a session knows. The id is not here: only its digest is kept (session.c). */
struct wx_session {
    char openid[WX_OPENID_MAX + 1]; /* the follower who came (link or OAuth) */
    uint32_t customer_id;           /* 0 until the login succeeds */
    int64_t created_ms, last_ms;
    int64_t txn_ok_ms;                /* the transaction password last verified; 0 never */
    char csrf[WX_TOKEN_TEXT_LEN + 1]; /* every form of the session carries it */
    /* What the pages keep of the visit (server.c and the pages' files). */
    uint8_t action;       /* the page the follower came for (enum web_action) */
    uint64_t arg;         /* its argument: the transaction's journal seq for details */
    bool english;         /* pages in English */
    bool busy;            /* a request of this session waits for the worker or the journal */
    struct {              /* the CAPTCHA on the form shown last */
        uint8_t hash[32]; /* HMAC of its answer (wx_captcha_answer_hash) */
        char id[17];      /* in the picture's URL: hex of 8 random bytes */
        char draw[WX_CAPTCHA_LEN + 1]; /* the answer until the picture is drawn, then "" */
        int64_t expires_ms;            /* 0: none (used, or never shown) */
    } captcha;
    struct {                  /* the SMS one-time code of a password reset */
        uint8_t hash[32];     /* HMAC of the code */
        uint32_t customer_id; /* whose registered mobile it went to; 0: the ID was unknown */
        char id_number[20];   /* as typed: new passwords must not contain it */
        int64_t expires_ms, sent_ms;
        uint8_t tries; /* wrong codes entered */
    } code;
};

typedef struct wx_sessions wx_sessions_t;

/* At most max sessions at once; opening one more ends the least recently used. */
wx_sessions_t *wx_sessions_new(size_t max);
void wx_sessions_free(wx_sessions_t *s);

/* How long a session lives idle and at most (by default WX_SESSION_IDLE_MS and
 * WX_SESSION_ABSOLUTE_MS; shorter for tests of expiry). */
void wx_sessions_set_life(wx_sessions_t *s, int64_t idle_ms, int64_t absolute_ms);

/* A new session for the follower; its id (the cookie's value) is written to id. */
struct wx_session *wx_sessions_open(wx_sessions_t *s, const char *openid, int64_t now_ms,
                                    char id[WX_TOKEN_TEXT_LEN + 1]);

/*
 * The session the id names, its last use set to now; NULL when there is none or it has been
 * idle past WX_SESSION_IDLE_MS or lived past WX_SESSION_ABSOLUTE_MS (it is then ended). The
 * pointer is good until the next call on s.
 */
struct wx_session *wx_sessions_find(wx_sessions_t *s, const char *id, int64_t now_ms);

/* A new id for the session found by old_id (after a login, so an id planted before it is
 * worth nothing) and a new CSRF token; the old id is dead. NULL as wx_sessions_find. */
struct wx_session *wx_sessions_rotate(wx_sessions_t *s, const char *old_id, int64_t now_ms,
                                      char id[WX_TOKEN_TEXT_LEN + 1]);

/* Ends the session the id names, if any. */
void wx_sessions_close(wx_sessions_t *s, const char *id);

/* Whether a form's CSRF token is the session's (in constant time). */
bool wx_session_csrf_ok(const struct wx_session *session, const char *given);

size_t wx_sessions_count(const wx_sessions_t *s);

/* ============================================================================================
 * Guards (guard.c): lockouts after wrong passwords, rate limits per IP and per follower
 * ========================================================================================= */

#define WX_LOGIN_TRIES   5                /* wrong login passwords in a row... */
#define WX_LOGIN_LOCK_MS (30 * 60 * 1000) /* ...lock the login this long */
#define WX_TXN_TRIES     3  /* wrong transaction passwords in a row lock it until tomorrow */
#define WX_GUARD_KEY_MAX 64 /* bytes of a rate limit's key (an IP, an OpenID) */

enum wx_password_kind { WX_PW_LOGIN = 0, WX_PW_TXN = 1 };

/*
 * Who is locked out, and who asks too often. Keyed by customer id (lockouts) or by any short
 * text (rate limits); both tables are bounded, the least recently touched entry going first.
 * One thread at a time. tz_offset_minutes places "tomorrow" for the transaction password.
 */
typedef struct wx_guard wx_guard_t;

wx_guard_t *wx_guard_new(size_t max, int tz_offset_minutes);
void wx_guard_free(wx_guard_t *g);

/* How long WX_LOGIN_TRIES wrong login passwords lock the login (default WX_LOGIN_LOCK_MS). */
void wx_guard_set_login_lock(wx_guard_t *g, int64_t lock_ms);

/* When the customer's password of this kind is locked until (epoch ms); 0 when it is not. */
int64_t wx_guard_locked_until(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind,
                              int64_t now_ms);

/* A wrong password: returns the lock's end when this one locks it, else 0. */
int64_t wx_guard_failed(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind,
                        int64_t now_ms);

/* Puts back a lock kept across a restart (the store's), in force until until_ms. */
void wx_guard_restore(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind,
                      int64_t until_ms);

/* A right password: the count of wrong ones starts again (a lock in force stays). */
void wx_guard_passed(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind);

/* Ends a lock (the password was reset through the registered mobile and ID number). */
void wx_guard_unlock(wx_guard_t *g, uint32_t customer_id, enum wx_password_kind kind);

/* One more request from key (len bytes; longer keys are cut to WX_GUARD_KEY_MAX): true while
 * it is within limit requests in the current window of window_ms, false past it. */
bool wx_guard_allow(wx_guard_t *g, const char *key, size_t len, unsigned limit, int64_t window_ms,
                    int64_t now_ms);

/* ============================================================================================
 * The store (store.c): password hashes and the audit log, in <db>.web
 * ========================================================================================= */

#define WX_AUDIT_WORD_MAX 31 /* an audit entry's action or result */
#define WX_IP_HASH_LEN    16 /* hex characters of a hashed IP address */

/*
 * <db_path>.web, a SQLite file of the secure back end's own: each customer's password
 * hashes, and an audit log of every sensitive action. Its writes never touch the journal's
 * lock. A random key made at the file's creation hashes IP addresses, so the log says which
 * requests came from one place without keeping any address. One thread at a time.
 */
typedef struct wx_web_store wx_web_store_t;

wx_web_store_t *wx_web_store_open(const char *db_path, char *err, size_t errlen);
void wx_web_store_close(wx_web_store_t *s);

/* Sets (or replaces) the customer's password hash of a kind. 0, or -1 with err. */
int wx_web_store_set_password(wx_web_store_t *s, uint32_t customer_id, enum wx_password_kind kind,
                              const char *encoded, int64_t now_ms, char *err, size_t errlen);
/* The hash: 1 with it in out, 0 when none is set, -1 with err. */
int wx_web_store_password(wx_web_store_t *s, uint32_t customer_id, enum wx_password_kind kind,
                          char out[WX_PASSWORD_HASH_MAX], char *err, size_t errlen);

/* A customer's registered mobile as a login name (set with the passwords: the mobile the
 * one-time code reached). 0, or -1 with err. */
int wx_web_store_set_mobile(wx_web_store_t *s, uint32_t customer_id, const char *mobile, char *err,
                            size_t errlen);
/* The customer whose login name mobile is: 1 with *customer_id, 0 when none or more than one
 * customer has it (the page then asks for the ID or card number), -1 with err. */
int wx_web_store_customer_by_mobile(wx_web_store_t *s, const char *mobile, uint32_t *customer_id,
                                    char *err, size_t errlen);

/* A lockout kept across restarts (until_ms 0: ended, the entry goes). 0, or -1 with err. */
int wx_web_store_set_lock(wx_web_store_t *s, uint32_t customer_id, enum wx_password_kind kind,
                          int64_t until_ms, char *err, size_t errlen);
/* Calls fn for every lock still in force at now_ms. 0, or -1 with err. */
int wx_web_store_locks(wx_web_store_t *s, int64_t now_ms,
                       void (*fn)(void *ctx, uint32_t customer_id, enum wx_password_kind kind,
                                  int64_t until_ms),
                       void *ctx, char *err, size_t errlen);

struct wx_audit_entry {
    int64_t at_ms;
    uint32_t customer_id;               /* 0: not known (a failed login by name) */
    char openid[WX_OPENID_MAX + 1];     /* the follower, "" when none */
    char ip_hash[WX_IP_HASH_LEN + 1];   /* wx_web_store_ip_hash */
    char action[WX_AUDIT_WORD_MAX + 1]; /* bind, login, unbind, card_unlock, ... */
    char result[WX_AUDIT_WORD_MAX + 1]; /* ok, wrong_password, locked, bad_captcha, ... */
};

/* The IP address's hash under the store's key, as hex. */
void wx_web_store_ip_hash(const wx_web_store_t *s, const char *ip, char out[WX_IP_HASH_LEN + 1]);

/* Appends an entry (at_ms and the texts as given; texts are cut to their fields). */
int wx_web_store_audit(wx_web_store_t *s, const struct wx_audit_entry *e, char *err, size_t errlen);

/* Calls fn for the newest `limit` entries, newest first, of one customer (0: everyone). For
 * tools beside a running server: opens the file itself (none yet: no entries). */
int wx_web_audit_list(const char *db_path, uint32_t customer_id, size_t limit,
                      void (*fn)(void *ctx, const struct wx_audit_entry *e), void *ctx, char *err,
                      size_t errlen);

/* ============================================================================================
 * Forms and pages (form.c): what a browser posts, and the headers and cookies every page sends
 * ========================================================================================= */

#define WX_FORM_BODY_MAX   8192 /* bytes of a posted form */
#define WX_FORM_FIELDS_MAX 16   /* fields in one */
#define WX_FORM_NAME_MAX   32   /* bytes of a field's name: [a-z0-9_] */
#define WX_FORM_VALUE_MAX  512  /* bytes of a field's value, decoded */

enum wx_form_error {
    WX_FORM_OK = 0,
    WX_FORM_TOO_LARGE, /* the body, or a value, past its limit */
    WX_FORM_TOO_MANY,  /* more than WX_FORM_FIELDS_MAX fields */
    WX_FORM_MALFORMED, /* not name=value&...; a bad name; bad percent-encoding */
    WX_FORM_DUPLICATE, /* a name twice (one meaning each, never "the first" or "the last") */
    WX_FORM_NOT_TEXT,  /* a value that is not UTF-8 text (a NUL, a control character) */
};

struct wx_form_field {
    char name[WX_FORM_NAME_MAX + 1];
    const char *value; /* decoded, NUL-terminated, in the form's buffer */
    size_t len;
};

struct wx_form {
    size_t n;
    struct wx_form_field f[WX_FORM_FIELDS_MAX];
    char buf[WX_FORM_BODY_MAX + WX_FORM_FIELDS_MAX]; /* decoded values, each with its NUL */
};

/* Parses an application/x-www-form-urlencoded body. Nothing in *out is to be used unless
 * WX_FORM_OK is returned. */
enum wx_form_error wx_form_parse(const char *body, size_t len, struct wx_form *out);

/* A field's value, or NULL when the form has none of that name. */
const char *wx_form_get(const struct wx_form *form, const char *name);

/* The error in words for the page, zh or en. */
const char *wx_form_error_text(enum wx_form_error e, bool english);

/* in with & < > " ' as HTML entities, into out (cut, whole characters only, to fit cap with
 * its NUL); returns the escaped length it needed. */
size_t wx_html_escape(const char *in, char *out, size_t cap);

/* The value of cookie `name` in a Cookie header (NULL: none) into out; 1 when found and it
 * fits, else 0. Only [A-Za-z0-9_-] values are taken (every cookie of ours is one). */
int wx_cookie_get(const char *header, const char *name, char *out, size_t cap);

/* ============================================================================================
 * The secure pages (server.c): /m/... over HTTPS only
 * ========================================================================================= */

struct wx_hub;
struct wx_http;
struct wx_wechat_api;
struct wx_fetch;
struct wx_config;

#define WX_WEB_URL_MAX 256 /* a link to the pages, with its token */

/* The web.* keys and what the pages need from the rest of the configuration. */
struct wx_web_options {
    const char *db_path;     /* the journal; the pages' own file is <db_path>.web */
    const char *public_url;  /* web.public_url: "https://bank.example"; "": the listener's */
    const char *appid;       /* wechat.appid, for OAuth */
    const char *oauth_url;   /* web.oauth_url: WeChat's authorize page */
    bool oauth;              /* web.oauth: who opens a link is asked of WeChat (snsapi_base) */
    int tz_offset_minutes;   /* tz */
    int64_t link_life_ms;    /* web.link_life_s */
    int64_t captcha_life_ms; /* web.captcha_life_s */
    int64_t code_life_ms;    /* web.sms_code_life_s */
    int64_t session_idle_ms, session_max_ms; /* web.session_idle_s, web.session_max_s */
    int64_t login_lock_ms;                   /* web.login_lock_s */
    unsigned ip_requests_per_min;            /* web.ip_requests_per_min: any request */
    unsigned ip_posts_per_min;               /* web.ip_posts_per_min: forms posted */
    unsigned follower_posts_per_min;         /* web.follower_posts_per_min */
    struct wx_password_cost cost;            /* web.password_memory_kib, _iterations */
    const char *sms_url;                     /* sms.*: one-time codes and notices */
    const char *sms_auth_header, *sms_body;
    unsigned sms_timeout_ms;
};

/* Fills opt from the configuration (strings point into cfg). 0, or -1 with err naming the
 * key. */
int wx_web_options_from_config(const struct wx_config *cfg, const char *db_path,
                               struct wx_web_options *opt, char *err, size_t errlen);

typedef struct wx_web wx_web_t;

/*
 * Serves the secure pages on http's HTTPS listener (the routes answer 403 over plain HTTP):
 * opens <db>.web and starts the worker thread that hashes passwords, draws CAPTCHAs and
 * writes the audit log off the loop. api (NULL: no OAuth, links alone) and fetch (for the
 * SMS gateway) are borrowed. NULL with a message in err.
 */
wx_web_t *wx_web_start(struct wx_hub *hub, struct wx_http *http, struct wx_wechat_api *api,
                       struct wx_fetch *fetch, const struct wx_web_options *opt, char *err,
                       size_t errlen);

/* Stops the worker (what it holds is finished, its pages dropped) and answers 503 to what
 * waits for the journal: before wx_http_free. */
void wx_web_stop(wx_web_t *w);
/* After wx_http_free (and wx_fetch_free: its calls' callbacks are the pages'). */
void wx_web_free(wx_web_t *w);

/* A one-time link for the follower to the page for action ("bind", "unbind", "unlock"),
 * good for web.link_life_s. On the hub's loop. Returns that life in whole minutes (rounded
 * up: what chat promises), or -1 for an unknown action or a URL that does not fit. */
int wx_web_link(wx_web_t *w, const char *openid, const char *action, int64_t now_ms, char *url,
                size_t cap);

struct wx_web_stats {
    uint64_t pages, logins_ok, logins_failed, binds, refused; /* refused: 4xx pages */
    unsigned sessions;
};
void wx_web_stats(const wx_web_t *w, struct wx_web_stats *out);

#endif
