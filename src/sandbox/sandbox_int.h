/*
 * sandbox_int.h - private to src/sandbox: the sandbox's state and what its files share.
 *
 * One struct wx_sandbox holds everything: the copied options, the followers and their chat
 * history, the platform's tokens, media, OAuth codes and menu, the SMS gateway's messages, the
 * injected fault, the counters, and the HTTP requests it still owes an answer (long polls,
 * held and slowed calls, POS exchanges). Files:
 *   sandbox.c   start, free, the router under /sandbox/, shared helpers (clock, ids, JSON)
 *   followers.c the followers, their chat history and the page's long poll
 *   tokens.c    access tokens (/cgi-bin/token, stable_token), OAuth, faults, the stats
 *   template.c  template messages, and the client_msg_id memory that absorbs repeats
 *   api.c       customer-service messages, media upload and download
 *   menu.c      menu/create and its documented limits
 *   webhook.c   what a follower does, sent to the bank's webhook as the platform sends it
 *   reply.c     the webhook's answer: checked, decrypted, parsed and shown
 *   page.c      the page's JSON API and its embedded HTML/CSS/JS
 *   pos.c       the POS page's ISO 8583 exchange with the bank
 *   sms.c       the SMS gateway: /sandbox/sms/send, the SMS the page shows, repeated refs
 *   json.c      JSON on the hot path: plain bodies read without a jansson tree, and text
 *               written with jansson's escaping
 */
#ifndef WX_SANDBOX_SANDBOX_INT_H
#define WX_SANDBOX_SANDBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fetch/fetch.h"
#include "sandbox/sandbox.h"
#include "wechat/wechat.h"

struct event;
struct evbuffer;

#define SB_TOKEN_LEN          136 /* an access_token: the platform's are 136-157 characters */
#define SB_TOKENS_MAX         16  /* tokens remembered (older ones are simply unknown: 40001) */
#define SB_MEDIA_ID_LEN       64  /* a media_id, as the platform's */
#define SB_CODE_LEN           32  /* an OAuth code */
#define SB_CLIENT_MSG_MAX     64  /* bytes of a template client_msg_id */
#define SB_TEMPLATE_ID_MAX    128 /* bytes of a template_id (the platform's are 43) */
#define SB_URL_MAX            1024
#define SB_PAGE_WAIT_S        25    /* longest long poll */
#define SB_HOLD_S             60    /* a call held by the "timeout" fault is dropped after this */
#define SB_SLOW_DEFAULT_MS    1500  /* delay of the "slow" fault when none is given */
#define SB_EVENTS_SMS_MAX     100   /* SMS in one events answer (the newest): what the page lists */
#define SB_SMS_READ_MAX       50    /* SMS in one GET /sandbox/api/sms answer (the newest) */
#define SB_SMS_BUCKETS        16384 /* hash buckets of the SMS refs: 2 x WX_SANDBOX_SMS_REFS_MAX */
#define SB_CLIENT_MSG_BUCKETS 2048  /* client_msg_id buckets: 2 x WX_SANDBOX_CLIENT_MSG_MAX */
#define SB_FOLLOWER_SLOTS     512   /* follower index slots: 2 x WX_SANDBOX_FOLLOWERS_MAX */
#define SB_DOC_NODES          64 /* values the fast reader keeps; a larger body goes to jansson */
#define SB_DOC_DEPTH          3  /* object levels kept with their members (body, data, row) */

struct wx_sandbox;

/* A route's handler; the "slow" fault runs it again once the delay is over. */
typedef void (*sb_handler)(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

/* ---- JSON on the hot path (json.c) ----------------------------------------------------------- */

enum sb_jkind {
    SB_J_OTHER,  /* a number, array, true, false or null: only jansson's reader makes these */
    SB_J_OBJECT, /* its members follow from first */
    SB_J_STRING,
};

/* One value of a request body. */
struct sb_jnode {
    enum sb_jkind kind;
    uint32_t first;  /* object: index of its first member; 0 when it has none kept */
    uint32_t next;   /* index of the parent's next member; 0 after the last */
    uint32_t count;  /* object: its members, also when deeper than SB_DOC_DEPTH (none kept) */
    const char *key; /* this member's name, NUL-ended; "" for the body itself */
    const char *str; /* string: its bytes, NUL-ended (a jansson string may hold a NUL) */
    size_t len;      /* string: its length */
};

/* A request body as a table of nodes; nodes[0] is the body's object. */
struct sb_doc {
    struct sb_jnode *nodes;              /* fixed, or allocated for jansson's larger trees */
    uint32_t n, cap;                     /* nodes used and room */
    json_t *tree;                        /* jansson's, when it read the body; owns strings */
    struct sb_jnode fixed[SB_DOC_NODES]; /* the fast reader's table */
};

/* A growing buffer for JSON and other text; reused, so a send allocates nothing in it. */
struct sb_out {
    char *p;    /* owned */
    size_t len; /* bytes written */
    size_t cap; /* bytes allocated */
};

/* ---- followers and their chat ---------------------------------------------------------------- */

/* One line of a chat, kept as the JSON object the page receives. */
struct sb_msg {
    uint64_t seq; /* the sandbox-wide sequence number */
    char *json;   /* serialized object, owned */
    size_t len;   /* strlen(json) */
};

struct sb_follower {
    char openid[WX_OPENID_MAX + 1];
    char nickname[WX_SANDBOX_NICKNAME_MAX + 1];
    bool following;    /* subscribed to the account now */
    bool refuses;      /* "拒收消息": template and customer-service sends get 43101 */
    int64_t active_ms; /* last message or event from the follower: opens the 48 h window */
    uint64_t last_seq; /* seq of the newest chat line, for the page's unread marks */
    struct sb_msg ring[WX_SANDBOX_MESSAGES_MAX]; /* the chat, oldest at ring[first] */
    unsigned first, count;
    size_t bytes; /* of the JSON kept in ring */
};

/* ---- the platform's own state ---------------------------------------------------------------- */

struct sb_token {
    char value[SB_TOKEN_LEN + 1]; /* "" for an unused slot */
    bool stable;                  /* from /cgi-bin/stable_token (its own lineage) */
    int64_t issued_ms;
    int64_t expires_ms; /* issued + expires_in */
    int64_t valid_ms;   /* <= expires_ms: earlier once a newer token superseded it */
};

struct sb_media {
    char id[SB_MEDIA_ID_LEN + 1]; /* "" for an unused slot */
    char type[16];                /* image, voice, video, thumb */
    const char *mime;             /* from the file's magic bytes */
    uint8_t *data;                /* owned; len bytes */
    size_t len;
    int64_t created_ms;
};

struct sb_code {
    char code[SB_CODE_LEN + 1];
    char openid[WX_OPENID_MAX + 1];
    char scope[32];
    int64_t expires_ms; /* issued + 5 min */
    bool used;          /* single use: a second exchange gets 40163 */
};

struct sb_client_msg {
    char openid[WX_OPENID_MAX + 1];
    char id[SB_CLIENT_MSG_MAX + 1];
    uint64_t msgid;     /* the answer the first send got; 0 for an unused slot */
    int64_t expires_ms; /* first send + 10 min */
    uint32_t next;      /* next slot + 1 in the same bucket; 0 ends the chain */
};

struct sb_card {
    char label[WX_SANDBOX_LABEL_MAX + 1];
    char pan[WX_PAN_MAX + 1]; /* memory only: never logged, never on the page */
    char masked[WX_PAN_MAX + 1];
    char expiry[5]; /* "" when none */
};

/* The platform API endpoints, for counters and fault filters. */
enum sb_endpoint {
    SB_EP_TOKEN,
    SB_EP_STABLE_TOKEN,
    SB_EP_TEMPLATE_SEND,
    SB_EP_CUSTOM_SEND,
    SB_EP_MENU_CREATE,
    SB_EP_MEDIA_UPLOAD,
    SB_EP_OAUTH_TOKEN,
    SB_EP_OAUTH_AUTHORIZE,
    SB_EP_CALLBACK_IP,
    SB_EP_SMS, /* the SMS gateway: faulted only when a fault names it */
    SB_EP_COUNT
};

/* What the next API calls suffer (POST /sandbox/api/fault). */
enum sb_fault_kind {
    SB_FAULT_NONE,
    SB_FAULT_TOKEN_EXPIRED, /* 42001: only calls that carry an access_token */
    SB_FAULT_INVALID_TOKEN, /* 40001: likewise */
    SB_FAULT_BAD_TOKEN,     /* 40014: likewise */
    SB_FAULT_QUOTA,         /* 45009 */
    SB_FAULT_BUSY,          /* -1 system busy */
    SB_FAULT_HTTP500,       /* HTTP 500, HTML body */
    SB_FAULT_TIMEOUT,       /* no answer (the request is held) */
    SB_FAULT_GARBAGE,       /* HTTP 200 with a body that is not JSON */
    SB_FAULT_SLOW,          /* the normal answer, delay_ms late (the request is held) */
    SB_FAULT_KINDS
};

struct sb_fault {
    enum sb_fault_kind kind;
    unsigned count;    /* calls left to spoil */
    int endpoint;      /* an enum sb_endpoint, or -1 for any of the platform's */
    unsigned delay_ms; /* slow: how late the answers come */
};

#define SB_ERRCODES_MAX 48

struct sb_stats {
    uint64_t tokens_issued;        /* /cgi-bin/token answers with a token */
    uint64_t stable_tokens_issued; /* new stable tokens (not the same one again) */
    uint64_t calls[SB_EP_COUNT];
    uint64_t errors[SB_EP_COUNT]; /* answers with errcode != 0, HTTP 500, garbage, held */
    struct {
        int code;
        uint64_t n;
    } errcodes[SB_ERRCODES_MAX]; /* errcode -> times returned */
    unsigned nerrcodes;
    uint64_t faults_applied;
    uint64_t webhook_messages; /* messages and events sent to the webhook */
    uint64_t webhook_attempts; /* HTTP requests, retries included */
    uint64_t webhook_retries;
    uint64_t webhook_replies; /* non-empty passive replies shown */
    uint64_t webhook_invalid; /* replies that failed (the phone shows the notice) */
    uint64_t webhook_failed;  /* messages that got no answer in any attempt */
    uint64_t pos_sent, pos_approved, pos_declined, pos_failed;
    uint64_t template_repeats; /* template sends absorbed: (openid, client_msg_id) seen before */
    uint64_t sms_sent;         /* SMS accepted */
    uint64_t sms_duplicates;   /* SMS accepted with a ref seen before: the cardholder reads twice */
};

/* ---- the SMS gateway ------------------------------------------------------------------------- */

struct sb_sms_ref {
    char ref[WX_SANDBOX_SMS_REF_MAX + 1]; /* "" for an unused slot */
    uint32_t next;                        /* next slot + 1 in the same bucket; 0 ends the chain */
};

/* An SMS as GET /sandbox/api/sms gives it to a test: the page's line masks the number, and a
 * test that checks what one cardholder received must tell numbers apart. */
struct sb_sms_read {
    char mobile[WX_SANDBOX_MOBILE_MAX + 1]; /* in full, as the bank sent it */
    char *text;                             /* owned */
    uint64_t id;                            /* the gateway's answer's id */
    int64_t time_ms;                        /* the page line's "time" */
};

struct sb_sms {
    struct sb_msg ring[WX_SANDBOX_SMS_MAX]; /* the SMS as the page gets them, oldest at first */
    struct sb_sms_read reads[WX_SANDBOX_SMS_MAX]; /* the same SMS, same slots, for tests */
    unsigned first, count;
    uint64_t next_id;                                /* id of the next accepted SMS */
    struct sb_sms_ref refs[WX_SANDBOX_SMS_REFS_MAX]; /* a ring: a new ref takes the oldest slot */
    unsigned next_ref;                               /* the slot the next new ref takes */
    uint32_t buckets[SB_SMS_BUCKETS]; /* slot + 1 of the newest ref of each hash; 0 none */
    uint8_t hash_key[16];             /* SipHash key: refs come from outside */
};

/* A request the sandbox answers later. */
enum sb_pending_kind {
    SB_PENDING_POLL, /* GET /sandbox/api/events: answered on news or after the wait */
    SB_PENDING_HELD, /* an API call held by the "timeout" fault */
    SB_PENDING_SLOW, /* an API call held by the "slow" fault, handled when its timer fires */
};

struct sb_pending {
    struct wx_sandbox *sb;
    enum sb_pending_kind kind;
    wx_http_req_t *req;
    struct event *timer;
    uint64_t after;                 /* poll: answer when seq passes this */
    char openid[WX_OPENID_MAX + 1]; /* poll: whose chat lines to return ("" none) */
    sb_handler resume;              /* slow: the call's handler */
    struct sb_pending *prev, *next;
};

struct wx_sandbox {
    wx_hub_t *hub;
    struct event_base *base;
    wx_http_t *http;
    wx_fetch_t *fetch; /* webhook deliveries */

    /* Options, copied. */
    char *appid, *secret, *account, *account_name, *webhook_url, *iso_address;
    struct wx_wechat_crypt crypt; /* token, AES key, appid (AES key zero in plain mode) */
    enum wx_sandbox_mode mode;
    unsigned webhook_timeout_ms, webhook_attempts, token_ttl_s, template_finish_ms;
    enum wx_iso_dialect iso_dialect;
    enum wx_iso_framing iso_framing;
    char page_url[112]; /* http://ADDR/sandbox/ */
    char api_base[112]; /* http://ADDR/sandbox */
    char origin[80];    /* http://ADDR: prefix of the media URLs in messages */

    int64_t clock_offset_ms; /* POST /sandbox/api/clock moves the platform's clock */
    uint64_t seq;            /* last chat line, follower change or menu change */
    uint64_t followers_seq;  /* seq of the last change to the follower list */
    uint64_t menu_seq;       /* seq of the last menu/create */
    uint64_t sms_seq;        /* seq of the newest SMS */
    uint64_t next_msgid;     /* MsgId of the next follower message */
    uint64_t next_template_msgid;
    size_t chat_bytes; /* every follower's ring together, <= WX_SANDBOX_CHAT_BYTES_MAX */

    struct sb_follower *followers[WX_SANDBOX_FOLLOWERS_MAX];
    size_t nfollowers;
    char selected[WX_OPENID_MAX + 1]; /* the page's current follower, for OAuth */

    json_t *menu; /* the last valid menu/create body, or NULL */
    struct sb_card cards[WX_SANDBOX_CARDS_MAX];
    size_t ncards;
    struct sb_token tokens[SB_TOKENS_MAX];
    int64_t stable_forced_ms; /* last force_refresh of the stable token */
    int64_t quota_day;        /* day number the token counters count */
    unsigned tokens_today, stable_forced_today;
    struct sb_media media[WX_SANDBOX_MEDIA_MAX];
    size_t media_bytes;
    struct sb_code codes[WX_SANDBOX_OAUTH_CODES_MAX];
    unsigned next_code;
    struct sb_client_msg client_msgs[WX_SANDBOX_CLIENT_MSG_MAX]; /* a ring: a new id takes the
                                                                    oldest slot, expired or not */
    unsigned next_client_msg;                           /* the slot the next new id takes */
    uint32_t client_msg_buckets[SB_CLIENT_MSG_BUCKETS]; /* slot + 1 of the newest; 0 none */
    uint16_t follower_slots[SB_FOLLOWER_SLOTS];         /* index + 1 into followers; 0 free */
    uint8_t hash_key[16]; /* SipHash key of both: ids come from outside */
    char *scratch;        /* WX_SANDBOX_API_BODY_MAX + 1 bytes: a body's strings (json.c) */
    struct sb_out line;   /* a chat line or SMS being written */
    struct sb_out text;   /* what the observer reads of a template */
    struct sb_fault fault;
    struct sb_stats stats;
    struct sb_sms *sms;           /* the SMS gateway's state, owned */
    wx_sandbox_observer observer; /* hears of every accepted message; NULL: none */
    void *observer_arg;

    struct sb_pending *pending; /* polls, held and slowed calls */
    unsigned npolls, nheld;     /* nheld: held and slowed together, <= WX_SANDBOX_HELD_MAX */
    bool resuming;              /* a slowed call's handler runs now (sb_api_begin lets it pass) */
    struct sb_delivery *deliveries; /* webhook deliveries not finished */
    unsigned ndeliveries;           /* their number */
    unsigned npos;                  /* POS exchanges in flight */
    struct sb_pos *pos;             /* their list */
    bool stopping;
};

/* ---- sandbox.c: shared helpers --------------------------------------------------------------- */

/* The platform's bookkeeping clock: real time moved by POST /sandbox/api/clock, so tokens,
 * codes, media, idempotency keys and the 48-hour window expire without waiting. Messages
 * and chat lines carry the real time (the bank checks the webhook's timestamps). */
int64_t sb_now_ms(const struct wx_sandbox *sb);

/* Fills out with n random characters of [A-Za-z0-9] (and '_' '-' when url_safe), NUL-ended. */
void sb_random_chars(char *out, size_t n, bool url_safe);

/* A new platform-style OpenID: "o" + 27 of [A-Za-z0-9_-]. */
void sb_new_openid(char out[WX_SANDBOX_OPENID_LEN + 1]);

/* True when s is 1..max bytes of [A-Za-z0-9_-]. */
bool sb_is_word(const char *s, size_t max);

/* True when s is valid UTF-8 without control characters other than \t \n \r. */
bool sb_is_text(const char *s, size_t len);

/* Length of the UTF-8 sequence at p (1..4), or 0 when it is not well-formed (overlong forms,
 * surrogates and code points past U+10FFFF are not): jansson's rule. */
size_t sb_utf8_seq(const uint8_t *p, size_t left);

/* Replies with a JSON value (stolen) and the given status; no-store. */
void sb_reply_json(wx_http_req_t *req, int status, json_t *v);

/* The same with JSON text already written (len bytes). */
void sb_reply_text(wx_http_req_t *req, int status, const char *text, size_t len);

/* Replies to a page call with {"error": message} and a 4xx/5xx status. */
void sb_page_error(wx_http_req_t *req, int status, const char *message);

/* A page call's body as a JSON object, or NULL after replying 415 (not Content-Type
 * application/json), 413 (over WX_SANDBOX_PAGE_BODY_MAX) or 400 (not a JSON object). */
json_t *sb_page_body(wx_http_req_t *req);

/* A string member of o, or NULL when absent or not a string. */
const char *sb_json_str(const json_t *o, const char *key);

/* Tells the observer, if any, of an accepted message (see wx_sandbox_set_observer). */
void sb_observe(struct wx_sandbox *sb, enum wx_sandbox_msg_kind kind, const char *to,
                const char *ref, const char *text, bool repeat, uint64_t msgid);

/* ---- followers.c ----------------------------------------------------------------------------- */

struct sb_follower *sb_follower_find(const struct wx_sandbox *sb, const char *openid);

/* Adds a follower. 0, or -1 with a message. */
int sb_follower_add(struct wx_sandbox *sb, const char *openid, const char *nickname, bool following,
                    struct sb_follower **out, char *err, size_t errlen);

/* The follower as the page shows it. New reference. */
json_t *sb_follower_json(const struct sb_follower *f);

/* Appends a chat line to f (msg is stolen; "seq" and "time" are added) and wakes the page's
 * long polls. Returns the line's seq. The oldest line goes when f's ring is full, and the
 * oldest lines of the longest history go while all history passes its byte budget. */
uint64_t sb_chat_post(struct wx_sandbox *sb, struct sb_follower *f, json_t *msg);

/* The same for a line written as text: line holds the object without its closing brace
 * ("{\"from\":...") and gets ,"seq":N,"time":T} added, as sb_chat_post adds them. */
uint64_t sb_chat_post_text(struct wx_sandbox *sb, struct sb_follower *f, struct sb_out *line);

/* Something other than a chat line changed (followers, menu): a new seq, stored in *which
 * (sb->followers_seq or sb->menu_seq) before the page's polls are woken and answered. */
void sb_bump(struct wx_sandbox *sb, uint64_t *which);

/* Answers the polls waiting for something newer than sb->seq (after a change took it). */
void sb_polls_wake(struct wx_sandbox *sb);

/* GET /sandbox/api/events?after=SEQ&openid=X&wait=S */
void sb_events_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

/* Adds a pending request with a timer of wait_ms milliseconds. */
struct sb_pending *sb_pending_add(struct wx_sandbox *sb, enum sb_pending_kind kind,
                                  wx_http_req_t *req, unsigned wait_ms);

/* Answers and frees every pending request (shutdown). */
void sb_pending_release_all(struct wx_sandbox *sb);

void sb_followers_free(struct wx_sandbox *sb);

/* ---- tokens.c -------------------------------------------------------------------------------- */

/*
 * Counts a call; when a fault applies to it, answers (or holds) req and returns true. self is
 * the calling handler: the "slow" fault holds req and runs self again when the delay is over,
 * and that second call passes here uncounted (false), to be handled as usual.
 */
bool sb_api_begin(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep, bool takes_token,
                  sb_handler self);

/* Checks ?access_token=. On failure replies 41001/40014/40001/42001 and returns false. */
bool sb_api_token_ok(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep,
                     const char *query);

/* Replies {"errcode":code,"errmsg":"msg rid: ..."} and counts the error (against ep unless
 * it is SB_EP_COUNT: a call to no known endpoint). */
void sb_api_error(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep, int code,
                  const char *msg);

/* Replies {"errcode":0,"errmsg":"ok"} merged with extra (stolen; may be NULL). */
void sb_api_ok(wx_http_req_t *req, json_t *extra);

/* Replies with v (stolen) as it is: token and upload answers carry no errcode. */
void sb_api_reply(wx_http_req_t *req, json_t *v);

/* The same with the answer's JSON text already written (len bytes). */
void sb_api_reply_text(wx_http_req_t *req, const char *text, size_t len);

/* The body of a platform API call as a JSON object, or NULL after answering 44002 (empty),
 * 45002 (over max) or 47001 (not a JSON object), as the platform does. */
json_t *sb_api_body(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep, size_t max);

/* The same read into d (sb_doc_load, strings in sb->scratch): true, or false after the same
 * answers. Call sb_doc_free after true. */
bool sb_api_doc(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep, size_t max,
                struct sb_doc *d);

void sb_token_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);
void sb_stable_token_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);
void sb_oauth_authorize_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);
void sb_oauth_token_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);
/* GET /cgi-bin/getcallbackip: the platform's cheapest call, handy to check a token. */
void sb_callback_ip_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

/* POST /sandbox/api/fault and GET /sandbox/api/stats. */
void sb_fault_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);
void sb_stats_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

/* ---- api.c ----------------------------------------------------------------------------------- */

/* The follower touser (NULL: absent or not a string) if a message to it may go now; else
 * NULL after answering 40003, 43004, 43101 or (customer service) 45015. */
struct sb_follower *sb_api_recipient(struct wx_sandbox *sb, wx_http_req_t *req, enum sb_endpoint ep,
                                     const char *touser);

void sb_custom_send_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);
void sb_media_upload_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);
/* GET /sandbox/media/MEDIA_ID: the bytes, for the page. */
void sb_media_get_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *id);

/* A live (unexpired) media item, or NULL. */
const struct sb_media *sb_media_find(const struct wx_sandbox *sb, const char *id);

void sb_media_free(struct wx_sandbox *sb);

/* ---- template.c ------------------------------------------------------------------------------ */

/* POST /cgi-bin/message/template/send */
void sb_template_send_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

/* ---- menu.c ---------------------------------------------------------------------------------- */

void sb_menu_create_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

/* ---- webhook.c ------------------------------------------------------------------------------- */

/* What a follower does on the phone. */
struct sb_action {
    const char *type;     /* text, image, location, subscribe, unsubscribe, scan, click, view */
    const char *content;  /* text */
    const char *key;      /* click: EventKey; subscribe/scan: scene */
    const char *url;      /* view */
    const char *media_id; /* image: an uploaded image ("" : the built-in PNG) */
    const char *label;    /* location */
    double lat, lng;      /* location */
};

/*
 * Builds the message for action, shows it on f's chat and sends it to the webhook. Returns
 * the chat line's seq and the MsgId (0 for events) in *msg_id, or -1 with a message for the
 * page and its HTTP status in *status.
 */
int64_t sb_follower_act(struct wx_sandbox *sb, struct sb_follower *f, const struct sb_action *a,
                        uint64_t *msg_id, int *status, char *err, size_t errlen);

/* Cancels deliveries waiting for their first or next attempt (shutdown, after the fetcher
 * has cancelled those in flight). */
void sb_deliveries_free(struct wx_sandbox *sb);

/* Sends the TEMPLATESENDJOBFINISH event for msgid after the configured delay. */
void sb_template_finish_later(struct wx_sandbox *sb, const char *openid, uint64_t msgid);

/* The built-in tiny PNG: a media item that never expires, for followers' image messages
 * when nothing was uploaded. */
#define SB_BUILTIN_MEDIA_ID "SANDBOX_builtin_image_000000000000000000000000000000000000000000"

/* ---- reply.c --------------------------------------------------------------------------------- */

/*
 * Handles the webhook's answer to a follower's message: nothing for "success" or an empty
 * body; otherwise checks (and in safe mode decrypts) the reply, and shows it on f's chat, or
 * the platform's "该公众号暂时无法提供服务，请稍后再试" when it is invalid.
 */
void sb_reply_show(struct wx_sandbox *sb, struct sb_follower *f, const char *body, size_t len);

/* Shows the platform's notice on f's phone; why (for developers) goes to the log and into
 * the line's "detail". */
void sb_reply_unavailable(struct wx_sandbox *sb, struct sb_follower *f, const char *why);

/* ---- page.c ---------------------------------------------------------------------------------- */

/* Serves /sandbox/ and /sandbox/api/... other than events, fault, stats. True when handled. */
bool sb_page_route(struct wx_sandbox *sb, wx_http_req_t *req, const char *path, const char *query);

/* ---- sms.c ---------------------------------------------------------------------------------- */

/* Allocates the gateway's state (sb->sms); sb_sms_free releases it (NULL state ignored). */
void sb_sms_init(struct wx_sandbox *sb);
void sb_sms_free(struct wx_sandbox *sb);

/* POST /sandbox/sms/send {"mobile", "text", "ref"} */
void sb_sms_send_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

/* Appends the SMS newer than after (the newest SB_EVENTS_SMS_MAX, oldest first) to an events
 * answer as a JSON array. */
void sb_sms_events(const struct wx_sandbox *sb, struct evbuffer *out, uint64_t after);

/* GET /sandbox/api/sms?mobile=M&after=SEQ: the SMS sent to one number, unmasked (sms.c). */
void sb_sms_read_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);

/* ---- json.c ---------------------------------------------------------------------------------- */

/*
 * Reads body as json_loadb(body, len, flags) would, into d: 0, or -1 when that is no JSON
 * object. A plain body is read without jansson, its strings copied into scratch (scratch_cap
 * bytes; one more than len is enough); others by jansson, whose tree d then owns. The strings
 * live until sb_doc_free and the next use of scratch. Call sb_doc_free after a 0.
 */
int sb_doc_load(struct sb_doc *d, char *scratch, size_t scratch_cap, const void *body, size_t len,
                size_t flags);
void sb_doc_free(struct sb_doc *d);

/* The member key of obj, or NULL when there is none or obj is no object (json_object_get). */
const struct sb_jnode *sb_doc_get(const struct sb_doc *d, const struct sb_jnode *obj,
                                  const char *key);
/* A string member of obj, or NULL when absent or not a string (sb_json_str). */
const char *sb_doc_str(const struct sb_doc *d, const struct sb_jnode *obj, const char *key);
/* The members of obj in the body's order: the first (NULL when none), then each next. */
const struct sb_jnode *sb_doc_first(const struct sb_doc *d, const struct sb_jnode *obj);
const struct sb_jnode *sb_doc_next(const struct sb_doc *d, const struct sb_jnode *member);

/* Appends n bytes as they are; a JSON string of n bytes of UTF-8, quoted and escaped as
 * json_dumps does; a decimal integer. sb_out_cstr NUL-ends the text (not counted in len). */
void sb_out_raw(struct sb_out *o, const char *s, size_t n);
void sb_out_str(struct sb_out *o, const char *s, size_t n);
void sb_out_int(struct sb_out *o, int64_t v);
const char *sb_out_cstr(struct sb_out *o);
void sb_out_free(struct sb_out *o);
#define SB_OUT_LIT(o, lit) sb_out_raw((o), "" lit, sizeof(lit) - 1)

/* ---- pos.c ----------------------------------------------------------------------------------- */

struct sb_pos;
/* POST /sandbox/api/pos */
void sb_pos_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query);
/* Ends every exchange (its page call gets 503). */
void sb_pos_cancel_all(struct wx_sandbox *sb);

#endif
