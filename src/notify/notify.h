/*
 * notify.h - the notify module: which journaled decisions a cardholder hears about on WeChat
 * (笔笔播报), who hears it, whether an SMS goes as well, and the words they read.
 *
 * Everything here is a pure function of a journal row and a read-only look at the engine: no
 * clock, no I/O, no state of its own. The dispatcher and the outbox (added later to this
 * header) call these after the row is durable, so an alert never announces a decision that a
 * crash could still undo (DESIGN.md: "no reply, alert or side effect leaves the process before
 * its events are durable").
 *
 * The flow is: wx_alert_from_row (row -> struct wx_alert, or "nothing to say"), then
 * wx_alert_recipients (which WeChat followers), wx_alert_sms_wanted (SMS at once?), and
 * wx_alert_text / wx_alert_fields (the words, per recipient language). Later,
 * wx_alert_sms_fallback decides on an SMS once WeChat's outcome is known.
 *
 * No card number is ever rendered: the engine has none in clear, and alerts carry only the
 * last four digits.
 */
#ifndef WX_NOTIFY_H
#define WX_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "net/net.h"
#include "util/limits.h"

/* What an alert announces. Stable numbers: outboxes and template configuration store them. */
enum wx_alert_kind {
    WX_ALERT_NONE = 0,         /* never in an alert: "this row says nothing to the holder" */
    WX_ALERT_PURCHASE = 1,     /* approved purchase (authorization or authorize-and-capture) */
    WX_ALERT_CASH = 2,         /* approved cash advance (ATM or counter) */
    WX_ALERT_DECLINED = 3,     /* declined authorization or increment; `reason` says why */
    WX_ALERT_INCREMENT = 4,    /* approved increment of a hold (hotel, car rental) */
    WX_ALERT_CAPTURE = 5,      /* a posting that differs from its hold, or has no known hold */
    WX_ALERT_REVERSAL = 6,     /* 撤销: a hold released or a posting reversed */
    WX_ALERT_REFUND = 7,       /* 退货: a merchant's credit */
    WX_ALERT_REPAYMENT = 8,    /* 还款到账 */
    WX_ALERT_LIMIT = 9,        /* permanent credit limit changed */
    WX_ALERT_TEMP_LIMIT = 10,  /* temporary extra limit granted or withdrawn */
    WX_ALERT_CARD_STATUS = 11, /* activation, lock, unlock, lost, stolen, closed */
    WX_ALERT_KIND_COUNT
};

/* One alert: everything the text, the template fields and the policy need, copied out of the
 * row and the engine so that it stays valid after both move on. */
struct wx_alert {
    uint64_t seq;              /* journal sequence of the row; the details page's id */
    int64_t at_ms;             /* when it happened (the row's time), UTC epoch ms */
    uint8_t kind;              /* enum wx_alert_kind, never WX_ALERT_NONE */
    uint8_t cmd_kind;          /* enum wx_cmd_kind of the row */
    uint32_t card_id;          /* the card; for account-level alerts the account's main card */
    uint16_t last4;            /* last four digits of that card's number */
    uint32_t customer_id;      /* the card's holder */
    uint32_t main_customer_id; /* the account's holder; equals customer_id for a main card */
    uint32_t account_id;       /* the account the row touched */
    bool supplementary;        /* the card is a supplementary card (附属卡) */
    int64_t amount;            /* fen, CNY: what the row applied (0 for status and limits) */
    int64_t txn_amount;        /* original amount in txn_currency's minor units; 0 if domestic */
    uint16_t txn_currency;     /* ISO 4217 numeric of txn_amount; 0 when the money was CNY */
    char merchant_name[WX_MERCHANT_NAME_MAX + 1]; /* as received: sanitized when rendered */
    char merchant_city[WX_MERCHANT_CITY_MAX + 1]; /* as received: sanitized when rendered */
    uint8_t channel;                              /* enum wx_channel; INTERNAL for the bank's */
    bool cross_border;                            /* acquired outside the card's country */
    uint16_t mcc;                                 /* ISO 18245 merchant category code */
    bool cash;                /* cash: cash authorization, ATM channel or a cash MCC */
    uint8_t reason;           /* enum wx_reason; WX_APPROVED except for WX_ALERT_DECLINED */
    int64_t available_after;  /* fen: available credit after the decision */
    uint8_t card_status;      /* WX_ALERT_CARD_STATUS: the new enum wx_card_status */
    bool activation;          /* WX_ALERT_CARD_STATUS: it was the card's activation */
    int64_t new_limit;        /* WX_ALERT_LIMIT / TEMP_LIMIT: the new limit in fen (0: none) */
    int64_t limit_expires_ms; /* WX_ALERT_TEMP_LIMIT: when the extra limit lapses, else 0 */
    int64_t hold_amount;      /* WX_ALERT_CAPTURE: the hold's amount in fen, -1 when unknown */
};

/*
 * Turns one journal row (the command and its result, as wx_row_decode gives them) into an
 * alert. seq and at_ms are the row's. hold_amount is what the capture's hold authorized, in
 * fen, or -1 when unknown (a force post, or history not at hand); other kinds ignore it.
 *
 * Returns 1 and fills *out when the row deserves an alert; 0 when it does not (out untouched);
 * -1 when the row names a card or account that e does not know, or a card and an account that
 * do not belong together (out untouched). Rows that do not alert are answered 0 without a
 * look-up. Which rows alert (the rules, also in alert.c):
 *
 *   row                                          alert
 *   customer add, card issue, tick,              none: not card activity (fees and interest
 *   follower bind/unbind, fee, interest            show on the statement)
 *   authorize approved: purchase / cash          PURCHASE / CASH
 *   authorize or increment declined              DECLINED, except for the network's own
 *                                                  bookkeeping reasons: already reversed (a late
 *                                                  original after its reversal), original not
 *                                                  found, hold closed, exceeds original,
 *                                                  duplicate mismatch: none
 *   increment approved                           INCREMENT
 *   capture approved, hold_amount == amount      none: the authorization was alerted already
 *   capture approved, otherwise (or -1)          CAPTURE
 *   reversal / refund approved                   REVERSAL / REFUND
 *   capture / reversal / refund declined         none: no money moved (network bookkeeping)
 *   repayment                                    REPAYMENT (card: the account's main card)
 *   limit / temporary limit set                  LIMIT / TEMP_LIMIT (main card)
 *   activation / status change                   CARD_STATUS
 *   a repeat (res->repeat), balance inquiry      none: never a new event
 */
int wx_alert_from_row(const wx_engine_t *e, const struct wx_cmd *cmd, const struct wx_result *res,
                      uint64_t seq, int64_t at_ms, int64_t hold_amount, struct wx_alert *out);

/* Most WeChat recipients one alert can have: the holder's and the main holder's followers. */
#define WX_ALERT_RECIPIENTS_MAX (2 * WX_FOLLOWERS_PER_CUSTOMER)

/*
 * Who gets the alert on WeChat: the followers bound to the card's holder (oldest binding
 * first), then, for a supplementary card, those bound to the account's main holder; an OpenID
 * appears once. Writes at most cap of them to out (NULL when cap is 0) and returns how many it
 * wrote. Followers are read from e now, not at the row's time: whoever is bound when the alert
 * goes out receives it.
 */
size_t wx_alert_recipients(const wx_engine_t *e, const struct wx_alert *a,
                           struct wx_follower_view *out, size_t cap);

/* How many followers the card's own holder has bound: the `holder_followers` that the SMS
 * policy below wants (the main holder's followers do not count; the SMS is the holder's). */
size_t wx_alert_holder_followers(const wx_engine_t *e, const struct wx_alert *a);

/* The SMS policy: which alerts may go by WeChat alone. Everything not quiet gets an SMS. */
struct wx_sms_policy {
    int64_t quiet_below_fen; /* purchases below this (fen, CNY) may skip SMS; 0: none may */
    bool quiet_pos;          /* domestic card-present purchases may skip SMS */
    bool quiet_cnp;          /* domestic card-not-present purchases (快捷支付) may skip SMS */
};

/* The default: domestic POS and quick-pay purchases under 300.00 CNY go by WeChat alone. */
#define WX_SMS_POLICY_DEFAULT                                                                      \
    {                                                                                              \
        .quiet_below_fen = 30000, .quiet_pos = true, .quiet_cnp = true                             \
    }

struct wx_sms_policy wx_sms_policy_default(void);

/*
 * Whether the alert goes by SMS as well as WeChat, decided when the alert is made. No SMS only
 * for an approved purchase (not cash) that is domestic (not cross-border, CNY), on a quiet
 * channel (POS / CNP as p says), for less than p->quiet_below_fen, when the holder has at least
 * one follower bound (holder_followers, see wx_alert_holder_followers). Everything else --
 * 300.00 and more, cross-border, cash, declines, increments, differing captures, reversals,
 * refunds, repayments, limits, card status -- and every alert of a holder with no follower
 * gets an SMS.
 */
bool wx_alert_sms_wanted(const struct wx_sms_policy *p, const struct wx_alert *a,
                         size_t holder_followers);

/* What became of the WeChat message to the holder's followers (delivered when any was). */
enum wx_alert_wechat_outcome {
    WX_ALERT_WECHAT_PENDING = 0,     /* sent, no final answer yet, the delay not yet over */
    WX_ALERT_WECHAT_DELIVERED = 1,   /* the platform accepted it for at least one follower */
    WX_ALERT_WECHAT_FAILED = 2,      /* failed permanently (blocked, unfollowed, bad template) */
    WX_ALERT_WECHAT_UNDELIVERED = 3, /* still not delivered when the fallback delay ran out */
};

/*
 * Whether an SMS must go now because of WeChat's outcome: true when WeChat failed permanently
 * or is still undelivered after the delay, and wx_alert_sms_wanted did not already send one
 * (so base + fallback never send two). False while pending and once delivered.
 */
bool wx_alert_sms_fallback(const struct wx_sms_policy *p, const struct wx_alert *a,
                           size_t holder_followers, enum wx_alert_wechat_outcome outcome);

/* The cardholder's language. */
enum wx_lang {
    WX_LANG_ZH = 0, /* the default */
    WX_LANG_EN = 1,
};

/* A buffer of this many bytes always holds wx_alert_text's output. */
#define WX_ALERT_TEXT_MAX 1024
/* Longest details link, NUL included; a longer base URL makes rendering fail. */
#define WX_ALERT_URL_MAX 256

/*
 * The alert as one or two sentences for a WeChat text message or an SMS, in lang, with times
 * shifted by tz_offset_minutes (480 for Asia/Shanghai; at most 14 hours either way) and a link
 * details_base_url + "/m/txn/<seq>" (no link when details_base_url is NULL or empty; trailing
 * slashes of the base are dropped). Merchant names and cities lose control, bidi and invalid
 * UTF-8 characters. Writes a NUL-terminated text to out and returns its length, or -1 when it
 * does not fit in cap (out then holds no partial text when cap > 0), the offset is out of
 * range, or the base URL contains a blank or control character.
 */
int wx_alert_text(const struct wx_alert *a, enum wx_lang lang, int tz_offset_minutes,
                  const char *details_base_url, char *out, size_t cap);

/* The alert as named fields, for template messages; a later step maps them to the keys of
 * the template configured for the kind (see wx_alert_kind_name). All NUL-terminated; a field
 * that does not apply is empty. */
struct wx_alert_fields {
    char title[64];  /* "消费提醒" / "Purchase alert" */
    char card[64];   /* "信用卡尾号1234" / "Card ending 1234" (附属卡 / Supplementary) */
    char kind[64];   /* "消费" / "Purchase" */
    char amount[96]; /* "88.00元" / "CNY 88.00" / "USD 12.34 (CNY 88.00)"; limits: new limit */
    char merchant[WX_MERCHANT_NAME_MAX + WX_MERCHANT_CITY_MAX + 16]; /* "name（city）" */
    char time[32];                                                   /* local time */
    char available[64];         /* available credit after, "9,912.00元" / "CNY 9,912.00" */
    char remark[160];           /* decline reason, authorized amount, expiry, new status */
    char url[WX_ALERT_URL_MAX]; /* details link */
};

/* Fills *out from the alert, with the arguments of wx_alert_text. Returns 0, or -1 for the
 * same reasons (a field that does not fit: only a base URL can be too long). */
int wx_alert_fields(const struct wx_alert *a, enum wx_lang lang, int tz_offset_minutes,
                    const char *details_base_url, struct wx_alert_fields *out);

/* The decline reason in plain words ("额度不足", "insufficient credit"); a generic phrase for a
 * reason no decline carries. Never NULL. */
const char *wx_alert_reason_text(uint8_t reason, enum wx_lang lang);

/* Stable lower-case name of an alert kind ("purchase", "temp_limit"): the configuration key of
 * its template. "unknown" for a number out of range. */
const char *wx_alert_kind_name(uint8_t kind);

/* ============================================================================================
 * The outbox and the dispatcher (outbox.c, dispatch.c, sms.c)
 *
 * The journal is the outbox: every alertable event is a journal row, written in the group
 * commit of the decision it reports, so no alert exists without its transaction and no
 * transaction without its alert. The dispatcher derives alerts from the rows in seq order once
 * they are durable, sends them (WeChat messages to every recipient, an SMS by policy) with many
 * in flight but in order per card, retries with exponential back-off and jitter up to a maximum
 * age, and then moves a send to the dead-letter list, which staff can list and replay.
 *
 * What was sent is kept in <db>.notify, a SQLite file of its own: one row per send, keyed by
 * (seq, channel, recipient), which is also the send's idempotency reference (the template
 * message's client_msg_id, the SMS gateway's ref), and a watermark: every row of the journal
 * up to it has had its sends recorded. Sends are recorded in batches every
 * WX_NOTIFY_RECORD_MS on a thread of their own. A crash can therefore resend exactly the sends
 * accepted by the platform or the gateway in the last batch interval before it (plus the
 * commit of that batch), and those in flight at the crash, which the platform may still act
 * on although no answer comes back: restarted, the dispatcher finds them unrecorded or
 * pending and sends them again with the same reference. WeChat drops a repeated client_msg_id for
 * 10 minutes; an SMS gateway that honours the reference drops it too. Nothing else is ever sent
 * twice, and nothing is lost: what was not recorded is derived again from the journal.
 * ========================================================================================= */

#define WX_NOTIFY_RECORD_MS 20 /* sends are recorded at least this often */

/* Where a send goes. Stable numbers: the outbox stores them. */
enum wx_send_channel {
    WX_SEND_WECHAT = 1, /* a template (or customer-service) message to one follower */
    WX_SEND_SMS = 2,    /* a text message to the card holder's mobile */
};

/* What became of a send. Stable numbers: the outbox stores them. */
enum wx_send_state {
    WX_SEND_PENDING = 0,     /* not accepted yet: queued, in flight or waiting to retry */
    WX_SEND_ACCEPTED = 1,    /* the platform or gateway took it */
    WX_SEND_DELIVERED = 2,   /* WeChat reported it delivered (TEMPLATESENDJOBFINISH) */
    WX_SEND_FAILED = 3,      /* refused for good (not a follower, blocked, bad number) */
    WX_SEND_DEAD = 4,        /* retries ran out (alerts.max_age_s): the dead-letter list */
    WX_SEND_UNDELIVERED = 5, /* accepted but not reported delivered in time: SMS went instead */
};
#define WX_SEND_STATES 6 /* how many states there are */

const char *wx_send_channel_name(uint8_t channel); /* "wechat", "sms" */
const char *wx_send_state_name(uint8_t state);     /* "pending", "accepted", ... */

/* A send as the outbox keeps it. */
struct wx_send_row {
    uint64_t seq;               /* the journal row the alert reports */
    uint8_t channel;            /* enum wx_send_channel */
    uint8_t state;              /* enum wx_send_state */
    bool watch;                 /* WeChat to the holder with no SMS yet: SMS if undelivered */
    uint16_t attempts;          /* calls made so far */
    uint64_t msgid;             /* the platform's msgid of an accepted template message */
    int64_t first_ms;           /* first attempt (or queued), UTC epoch ms */
    int64_t updated_ms;         /* last change, UTC epoch ms */
    int32_t errcode;            /* the last failure's platform errcode or HTTP status */
    char error[96];             /* the last failure in words; "" when none */
    char to[WX_OPENID_MAX + 1]; /* the OpenID, or the mobile number for SMS */
};

/* The recipient as staff see it: an OpenID as it is, a mobile number masked (138****8000). */
void wx_send_row_shown_to(const struct wx_send_row *r, char *out, size_t cap);

/* Reading and replaying the outbox from a tool, with or without a running server. */

/* Calls fn for the sends in `state` (or every state when state is -1) whose seq is at least
 * from_seq, oldest first, at most limit of them. 0, or -1 with a message in err. */
int wx_outbox_list(const char *db_path, int state, uint64_t from_seq, size_t limit,
                   void (*fn)(void *ctx, const struct wx_send_row *row), void *ctx, char *err,
                   size_t errlen);

/* Counts sends by state (counts has one slot per enum wx_send_state) and reads the watermark.
 * 0, or -1 with a message in err. */
int wx_outbox_counts(const char *db_path, uint64_t counts[WX_SEND_STATES], uint64_t *watermark,
                     char *err, size_t errlen);

/* Puts dead sends back in the queue: those of journal row seq, or every dead one when seq is
 * 0. A running server picks them up within a few seconds; a stopped one at its next start.
 * Returns how many, or -1 with a message in err. */
long wx_outbox_replay(const char *db_path, uint64_t seq, char *err, size_t errlen);

/* Sets the language a follower reads alerts in (`wxbank alerts lang`); a running server takes
 * it within a second or two. The OpenID must be valid (wx_openid_valid). 0, or -1 with a
 * message in err. */
int wx_outbox_set_lang(const char *db_path, const char *openid, enum wx_lang lang, char *err,
                       size_t errlen);

/* The SMS gateway: an HTTP POST of a JSON body made from a template. */
struct wx_sms_options {
    const char *url;           /* sms.url; "" or NULL: no SMS gateway */
    const char *auth_header;   /* sms.auth_header, "Authorization: Bearer ..."; "": none */
    const char *body_template; /* sms.body: JSON with {mobile}, {text} and {ref} in strings */
    unsigned timeout_ms;       /* per attempt */
};

struct wx_fetch;
typedef struct wx_sms_client wx_sms_client_t;

enum wx_sms_result {
    WX_SMS_OK = 0,        /* the gateway accepted it (2xx) */
    WX_SMS_RETRYABLE = 1, /* try again: 5xx, 429, 408, no connection, timeout */
    WX_SMS_PERMANENT = 2, /* the gateway refused it (other 4xx): retrying will not help */
};

typedef void (*wx_sms_cb)(enum wx_sms_result r, int status, const char *error, void *arg);

/* A client of the SMS gateway, on the hub's loop: the alerts' SMS, and the secure pages'
 * one-time codes and notices. NULL with a message in err when the options are bad (no {text}
 * in the body, ...). */
wx_sms_client_t *wx_sms_client_new(struct wx_fetch *fetch, const struct wx_sms_options *opt,
                                   char *err, size_t errlen);
void wx_sms_client_free(wx_sms_client_t *c);

/* Builds the body and posts it. cb runs once, later, on the loop. 0, or -1 when the request
 * could not be made (then cb never runs). */
int wx_sms_client_send(wx_sms_client_t *c, const char *mobile, const char *text, const char *ref,
                       wx_sms_cb cb, void *arg);

/* The dispatcher's settings (the alerts.* and sms.* keys). */
struct wx_notify_options {
    const char *db_path;         /* the journal; the outbox is <db_path>.notify */
    const char *details_url;     /* alerts.details_url: base of the link in alerts */
    int tz_offset_minutes;       /* tz */
    enum wx_lang lang;           /* alerts.lang */
    struct wx_sms_policy policy; /* alerts.sms_quiet_below, ... */
    unsigned sms_fallback_ms;    /* alerts.sms_fallback_s */
    unsigned max_age_ms;         /* alerts.max_age_s: a send older than this is dead */
    unsigned max_inflight;       /* alerts.max_inflight: sends in flight at once */
    unsigned queue_max;          /* alerts.queue_max: alerts held in memory */
    const char *template_ids[WX_ALERT_KIND_COUNT]; /* alerts.template_id[.<kind>]; "": text */
    const char *template_fields;                   /* alerts.template_fields: "key:field,..." */
    struct wx_sms_options sms;
};

struct wx_config;
/* Fills opt from the configuration (strings point into cfg). 0, or -1 with err naming the
 * key. db_path is the journal's path. */
int wx_notify_options_from_config(const struct wx_config *cfg, const char *db_path,
                                  struct wx_notify_options *opt, char *err, size_t errlen);

typedef struct wx_notify wx_notify_t;
struct wx_hub;
struct wx_wechat_api;
struct wx_fetch;

/*
 * Starts the dispatcher on the hub's loop: opens the outbox, reloads what was pending, and
 * attaches to the hub to hear of new decisions. api (NULL: no WeChat sends) and fetch (for
 * the SMS gateway) are borrowed; free them before the dispatcher (see wx_notify_free). NULL
 * with a message in err.
 */
wx_notify_t *wx_notify_start(struct wx_hub *hub, struct wx_wechat_api *api, struct wx_fetch *fetch,
                             const struct wx_notify_options *opt, char *err, size_t errlen);

/* Records what is known, stops the recording thread and frees n. Call after wx_fetch_free and
 * wx_wechat_api_free: they cancel the calls in flight, whose callbacks are the dispatcher's.
 * What was not accepted by then goes again at the next start. */
void wx_notify_free(wx_notify_t *n);

/* WeChat's report on a template message (TEMPLATESENDJOBFINISH): status "success", or a
 * failure ("failed:user block", "failed: system failed"). */
void wx_notify_template_finished(wx_notify_t *n, const char *openid, uint64_t msgid,
                                 const char *status);

/* Counters since start and the state now, for /metrics and tests. */
struct wx_notify_stats {
    uint64_t alerts;        /* alerts derived from the journal */
    uint64_t queued;        /* sends not yet accepted, failed or dead (now) */
    uint64_t in_flight;     /* calls waiting for an answer (now) */
    uint64_t sent_wechat;   /* accepted by the platform */
    uint64_t sent_sms;      /* accepted by the gateway */
    uint64_t delivered;     /* reported delivered by WeChat */
    uint64_t retries;       /* attempts after a retryable failure */
    uint64_t failed;        /* refused for good */
    uint64_t dead;          /* retries ran out */
    uint64_t sms_fallbacks; /* SMS sent because WeChat failed or stayed undelivered */
    uint64_t recorded;      /* send rows written to the outbox */
    uint64_t derived_seq;   /* journal rows up to here have been looked at */
    double oldest_unsent_s; /* age of the oldest send not yet accepted; 0 when none */
    /* seconds from the decision to the platform's or gateway's acceptance, first tries */
    struct wx_histogram latency;
};
void wx_notify_stats(const wx_notify_t *n, struct wx_notify_stats *out);

#endif
