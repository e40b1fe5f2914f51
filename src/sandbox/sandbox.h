/*
 * sandbox.h - the WeChat platform on loopback: the platform's API for the bank, a phone for
 * its followers, and a POS terminal for its cards.
 *
 * The real platform is out of reach in demos and tests, so the sandbox plays it faithfully
 * enough that the bank runs its production code path with only wechat.api_base and the
 * webhook URL changed:
 *
 *   - API: under <base>/sandbox it answers /cgi-bin/token, /cgi-bin/stable_token,
 *     /cgi-bin/message/template/send, /cgi-bin/message/custom/send, /cgi-bin/menu/create,
 *     /cgi-bin/media/upload, /sns/oauth2/access_token and /connect/oauth2/authorize with the
 *     platform's JSON shapes and error codes (tokens that supersede each other after the
 *     5-minute overlap, 43004 for a non-follower, 43101 for one who refuses messages, the
 *     menu limits, single-use OAuth codes, ...). Faults on demand (POST /sandbox/api/fault)
 *     make the next calls fail as the platform can fail: an expired or invalid token, the
 *     quota, "system busy", HTTP 500, a late answer, or no answer at all.
 *   - Followers: a phone-like page at /sandbox/ where a visitor picks or creates a follower,
 *     follows, chats and presses the menu. Each action reaches the bank's webhook as the
 *     platform sends it: signed, in plain, compatible or safe (AES) mode, re-sent up to three
 *     times in all when no answer comes within the timeout (5 s). Passive replies, template
 *     and customer-service messages appear on the phone as they happen (long polling).
 *   - POS: a card purchase from the page goes to the bank's ISO 8583 listener as a terminal
 *     sends it (`wxbank pos`), so a visitor sees the whole loop. Card numbers stay in memory;
 *     the page and the logs only ever see them masked (first 6 + last 4).
 *   - SMS: POST <base>/sandbox/sms/send plays the bank's SMS gateway, and the page's SMS tab
 *     plays the cardholder's phone. A repeated idempotency ref is sent again, as a real
 *     gateway would, and counted, as is a template client_msg_id the platform absorbed: the
 *     counters say how often the bank's alerts would have reached a customer twice. Tests
 *     read what one number received, unmasked, at GET <base>/sandbox/api/sms (sms.c).
 *
 * Everything runs on the hub's loop. State is in memory and bounded by the limits below.
 */
#ifndef WX_SANDBOX_SANDBOX_H
#define WX_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iso8583/iso8583.h"
#include "net/net.h"
#include "util/limits.h"

/* What a page visitor or an API caller can push against (each has a clear 4xx or errcode). */
#define WX_SANDBOX_FOLLOWERS_MAX      256         /* followers known to the sandbox */
#define WX_SANDBOX_MESSAGES_MAX       200         /* chat messages kept per follower */
#define WX_SANDBOX_CHAT_BYTES_MAX     (32u << 20) /* all chat history together */
#define WX_SANDBOX_TEMPLATE_ROWS_MAX  20          /* data keys of one template message */
#define WX_SANDBOX_TEMPLATE_VALUE_MAX 512         /* bytes of one template data value */
#define WX_SANDBOX_TEXT_MAX           2048        /* bytes of a message a follower types */
#define WX_SANDBOX_NICKNAME_MAX       WX_NAME_MAX /* bytes of a nickname */
#define WX_SANDBOX_CARDS_MAX          16          /* demo cards on the POS page */
#define WX_SANDBOX_LABEL_MAX          48          /* bytes of a demo card's label */
#define WX_SANDBOX_API_BODY_MAX       (64u << 10) /* a platform API call's JSON body */
#define WX_SANDBOX_PAGE_BODY_MAX      (16u << 10) /* a page API call's JSON body */
#define WX_SANDBOX_MEDIA_MAX          64          /* uploaded media kept (oldest dropped) */
#define WX_SANDBOX_MEDIA_BYTES_MAX    (1u << 20)  /* one uploaded file (platform: 2 MB images) */
#define WX_SANDBOX_MEDIA_TOTAL_MAX    (16u << 20) /* all uploaded files together */
#define WX_SANDBOX_WAITERS_MAX        64          /* page long polls waiting at once */
#define WX_SANDBOX_HELD_MAX           64          /* API calls held by the "timeout" fault */
#define WX_SANDBOX_DELIVERIES_MAX     64          /* webhook deliveries in flight */
#define WX_SANDBOX_POS_MAX            8           /* POS exchanges in flight */
#define WX_SANDBOX_OAUTH_CODES_MAX    256         /* OAuth codes remembered */
#define WX_SANDBOX_CLIENT_MSG_MAX     1024        /* template client_msg_id remembered */
#define WX_SANDBOX_FAULT_COUNT_MAX    1000        /* calls one fault request may spoil */
#define WX_SANDBOX_MENU_JSON_MAX      (16u << 10) /* a menu/create body */
#define WX_SANDBOX_SLOW_MS_MAX        60000       /* delay of the "slow" fault */
#define WX_SANDBOX_SMS_MAX            1000        /* SMS kept for the page (oldest dropped) */
#define WX_SANDBOX_SMS_REFS_MAX       8192        /* SMS refs remembered (oldest forgotten) */
#define WX_SANDBOX_SMS_BODY_MAX       (16u << 10) /* an SMS gateway call's JSON body */
#define WX_SANDBOX_SMS_TEXT_MAX       1024        /* bytes of an SMS text (UTF-8) */
#define WX_SANDBOX_SMS_REF_MAX        128         /* bytes of an SMS ref (printable ASCII) */
#define WX_SANDBOX_MOBILE_MIN         5           /* characters of a mobile number, '+' included */
#define WX_SANDBOX_MOBILE_MAX         20          /* likewise (E.164 numbers have at most 16) */
#define WX_SANDBOX_OPENID_LEN         28          /* "o" + 27 of [A-Za-z0-9_-], as the platform */
#define WX_SANDBOX_WEBHOOK_ATTEMPTS   3           /* the platform's "总共重试三次" */
#define WX_SANDBOX_WEBHOOK_TIMEOUT_MS 5000        /* per attempt, as the platform */

typedef struct wx_sandbox wx_sandbox_t;

/* How the account's messages travel (the MP console's 消息加解密方式). */
enum wx_sandbox_mode {
    WX_SANDBOX_PLAIN = 0,  /* 明文: plain XML */
    WX_SANDBOX_COMPAT = 1, /* 兼容: plain fields and <Encrypt> side by side */
    WX_SANDBOX_SAFE = 2,   /* 安全: only ToUserName and <Encrypt> */
};

/* Parses "plain", "compat" or "safe". 0, or -1 for anything else. */
int wx_sandbox_mode_parse(const char *name, enum wx_sandbox_mode *out);

/* A card the POS page can pay with. The PAN is copied and kept in memory only. */
struct wx_sandbox_card {
    const char *label;  /* "张三的白金卡"; NULL: "card N" */
    const char *pan;    /* 13-19 digits, Luhn-valid */
    const char *expiry; /* YYMM, or NULL to send no field 14 */
};

/* A WeChat user known from the start. */
struct wx_sandbox_follower {
    const char *openid;   /* NULL: a new platform-style one is made up */
    const char *nickname; /* shown on the page */
    bool following;       /* already following (no subscribe event is sent) */
};

struct wx_sandbox_options {
    const char *appid;           /* wechat.appid */
    const char *secret;          /* wechat.secret */
    const char *token;           /* wechat.token: signs every webhook request */
    const char *aes_key;         /* wechat.aes_key, 43 characters; needed unless plain */
    enum wx_sandbox_mode mode;   /* sandbox.mode */
    const char *webhook_url;     /* sandbox.webhook_url: the bank's webhook */
    const char *account;         /* sandbox.account: the gh_ original id */
    const char *account_name;    /* sandbox.name, on top of the phone; NULL: "WX Bank" */
    unsigned webhook_timeout_ms; /* per attempt; 0: WX_SANDBOX_WEBHOOK_TIMEOUT_MS */
    unsigned webhook_attempts;   /* 1..10; 0: WX_SANDBOX_WEBHOOK_ATTEMPTS */
    unsigned token_ttl_s;        /* expires_in of access tokens; 0: 7200 */
    unsigned template_finish_ms; /* delay of TEMPLATESENDJOBFINISH; 0: 1000 */
    const char *iso_address;     /* HOST:PORT of the bank's ISO 8583 listener; NULL: no POS */
    enum wx_iso_dialect iso_dialect;
    enum wx_iso_framing iso_framing;
    const struct wx_sandbox_card *cards; /* ncards demo cards for the POS page */
    size_t ncards;
    const struct wx_sandbox_follower *followers; /* nfollowers initial followers */
    size_t nfollowers;
};

struct wx_config;

/*
 * Fills opt from the configuration: wechat.appid/secret/token/aes_key, sandbox.*, and the
 * ISO 8583 door from iso8583.listen/dialect/framing. Cards and followers are left empty.
 * The strings point into cfg. Returns 0, or -1 with a message naming the key in err.
 */
int wx_sandbox_options_from_config(const struct wx_config *cfg, struct wx_sandbox_options *opt,
                                   char *err, size_t errlen);

/*
 * Checks that opt names what every sandbox needs: appid, secret, token, a gh_ account and a
 * webhook URL, the AES key unless plain, and attempts and timeout in range. Returns 0, or -1
 * with a message naming the config key in err. wx_sandbox_start checks the same; call this
 * first to refuse bad settings before a listener is bound.
 */
int wx_sandbox_options_check(const struct wx_sandbox_options *opt, char *err, size_t errlen);

/*
 * Attaches the sandbox to an HTTP listener on the hub's loop: routes /sandbox and every path
 * under /sandbox/ (two of the listener's routes). opt is copied, strings included. The hub
 * may have no ledger. Returns NULL with a message in err when the options are incomplete
 * (appid, secret, token, account, webhook URL; the AES key unless plain) or a card or
 * follower is invalid.
 */
wx_sandbox_t *wx_sandbox_start(wx_hub_t *hub, wx_http_t *http, const struct wx_sandbox_options *opt,
                               char *err, size_t errlen);

/*
 * Answers every request the sandbox still holds, cancels its deliveries and POS exchanges
 * and frees it. Call before wx_http_free of its listener. NULL is ignored.
 */
void wx_sandbox_free(wx_sandbox_t *sb);

/* Adds a demo card for the POS page. 0, or -1 with a message (bad PAN or expiry, full). */
int wx_sandbox_add_card(wx_sandbox_t *sb, const struct wx_sandbox_card *card, char *err,
                        size_t errlen);

/*
 * Adds a follower (following or not; no event is sent). openid_out, when not NULL, receives
 * the follower's OpenID (WX_SANDBOX_OPENID_LEN + 1 bytes hold a generated one; a given one
 * is at most WX_OPENID_MAX). 0, or -1 with a message (bad OpenID or nickname, duplicate,
 * full).
 */
int wx_sandbox_add_follower(wx_sandbox_t *sb, const struct wx_sandbox_follower *f,
                            char openid_out[WX_OPENID_MAX + 1], char *err, size_t errlen);

/* What reached a follower's phone or a cardholder's phone. */
enum wx_sandbox_msg_kind {
    WX_SANDBOX_MSG_TEMPLATE, /* /cgi-bin/message/template/send */
    WX_SANDBOX_MSG_CUSTOM,   /* /cgi-bin/message/custom/send */
    WX_SANDBOX_MSG_SMS,      /* /sandbox/sms/send */
};

/* One accepted message, as the observer sees it. The strings live for the call only. */
struct wx_sandbox_msg {
    enum wx_sandbox_msg_kind kind;
    const char *to;   /* OpenID, or the mobile for SMS */
    const char *ref;  /* client_msg_id or SMS ref; "" when none */
    const char *text; /* custom text (a news title; "" for an image) or SMS text; for templates
                         the rows the phone shows joined as "key=value\n" (no first, remark) */
    bool repeat;      /* template: absorbed repeat of client_msg_id; SMS: ref seen before */
    uint64_t msgid;   /* template: the msgid answered (and reported on); else 0 */
    int64_t at_ms;    /* arrival, wx_now_ms() */
};

typedef void (*wx_sandbox_observer)(const struct wx_sandbox_msg *m, void *arg);

/*
 * Calls fn(m, arg) on the hub's loop for every template send, customer-service send and SMS
 * the sandbox accepts (absorbed template repeats included; refused and faulted calls not;
 * a call the "slow" fault holds when it is finally handled), before the sender gets its
 * answer. fn must not block the loop nor call back into the sandbox. NULL fn stops the
 * calls. Call it before wx_hub_run or on the loop.
 */
void wx_sandbox_set_observer(wx_sandbox_t *sb, wx_sandbox_observer fn, void *arg);

/* "http://127.0.0.1:8080/sandbox/": the page, on the listener's bound address. */
const char *wx_sandbox_page_url(const wx_sandbox_t *sb);

/* "http://127.0.0.1:8080/sandbox": what wechat.api_base should be for this sandbox. */
const char *wx_sandbox_api_base(const wx_sandbox_t *sb);

#endif
