/*
 * chat.h - the conversation with a cardholder: what the bank understands of a message, and
 * what it says back.
 *
 * Understanding (wx_chat_parse) is pure: text in, an intent with its confidence and the
 * slots (amounts, periods, dates, ...) out. The conversation (wx_chat_respond) keeps a
 * dialogue per follower, for five idle minutes: numbered choices, confirmations, cancel at
 * any step, context carried from one question to the next.
 *
 * Adapters (the WeChat webhook, `wxbank chat say`) turn what a follower sent into a
 * wx_chat_input and send back the wx_chat_reply in the channel's own format. The
 * conversation reads the engine and changes nothing: what changes card state (a lock, after
 * the cardholder confirms) is a command in the reply that the adapter submits; what changes
 * money, limits or controls is handed to the secure web pages, with a one-time link where
 * the page is open (wx_chat_set_links).
 */
#ifndef WX_CHAT_CHAT_H
#define WX_CHAT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "history/history.h"
#include "util/config.h"

/* ============================================================================================
 * Understanding (nlu.c): what a message asks for, and the details it gives
 * ========================================================================================= */

/* The intents, X(ID, "name"); the names are what `wxbank chat parse` prints. */
#define WX_CHAT_INTENTS(X)                                                                         \
    X(UNKNOWN, "unknown")                                                                          \
    X(GREETING, "greeting")                                                                        \
    X(HELP, "help")                                                                                \
    X(BIND, "bind")                                                                                \
    X(UNBIND, "unbind")                                                                            \
    X(BALANCE, "balance")                                                                          \
    X(BILL, "bill")                                                                                \
    X(UNBILLED, "unbilled")                                                                        \
    X(TRANSACTIONS, "transactions")                                                                \
    X(SPENDING_SUMMARY, "spending_summary")                                                        \
    X(POINTS, "points")                                                                            \
    X(REPAYMENT, "repayment")                                                                      \
    X(INSTALLMENT, "installment")                                                                  \
    X(LIMIT_INCREASE, "limit_increase")                                                            \
    X(CARD_LOCK, "card_lock")                                                                      \
    X(CARD_UNLOCK, "card_unlock")                                                                  \
    X(REPORT_LOST, "report_lost")                                                                  \
    X(CARD_ACTIVATE, "card_activate")                                                              \
    X(SECURITY_GUARD, "security_guard")                                                            \
    X(ALERT_SETTINGS, "alert_settings")                                                            \
    X(FAQ, "faq")                                                                                  \
    X(HUMAN_AGENT, "human_agent")                                                                  \
    X(COMPLAINT, "complaint")                                                                      \
    X(THANKS, "thanks")                                                                            \
    X(GOODBYE, "goodbye")

#define WX_CHAT_INTENT_ENUM(id, name) WX_INTENT_##id,
enum wx_chat_intent { WX_CHAT_INTENTS(WX_CHAT_INTENT_ENUM) WX_INTENT_COUNT };
#undef WX_CHAT_INTENT_ENUM

enum wx_chat_answer { WX_ANSWER_NONE = 0, WX_ANSWER_YES, WX_ANSWER_NO, WX_ANSWER_CANCEL };
enum wx_chat_limit_kind { WX_LIMIT_NONE = 0, WX_LIMIT_TEMPORARY, WX_LIMIT_PERMANENT };
enum wx_chat_lang { WX_CHAT_ZH = 0, WX_CHAT_EN = 1 };

#define WX_CHAT_SLOT_TEXT_MAX 31 /* a merchant's or category's name */

/* What a message gives. Absent: amount_fen -1, periods 0, dates INT32_MIN, last4 -1. */
struct wx_chat_slots {
    int64_t amount_fen; /* ¥1,234.56, 1234.56元, 一千二百三十四块五, 1.2万, 3k */
    int periods;        /* 12期, 十二期, 分6个月, 12 months */
    int32_t date_from, date_to; /* days since 1970-01-01, local dates, both included */
    int card_last4;             /* 尾号1234, ending 1234 */
    enum wx_chat_answer answer; /* the whole message is yes, no or cancel */
    enum wx_chat_limit_kind limit_kind;
    int choice; /* the whole message picks a numbered choice: 1..9; 0 */
    char merchant[WX_CHAT_SLOT_TEXT_MAX + 1]; /* canonical: 星巴克 for starbucks too */
    char category[WX_CHAT_SLOT_TEXT_MAX + 1]; /* dining, groceries, fuel, online, travel, ... */
    enum wx_chat_lang lang;                   /* the message's own language */
    int lang_named; /* a language asked for (英文, chinese): wx_chat_lang; -1 */
};

struct wx_chat_parse {
    enum wx_chat_intent intent;
    float confidence;                 /* 0..1: 1 for a rule, else the classifier's probability */
    enum wx_chat_intent runner_up[2]; /* the next likeliest, for a clarifying question */
    struct wx_chat_slots slots;
};

/*
 * Understands text (len bytes of anything: invalid UTF-8 is read as spaces; past
 * WX_CHAT_PARSE_MAX bytes it is cut). now_ms and tz_offset_minutes place 今天, 上个月, ... on
 * the calendar. Pure: no state, no allocation.
 */
#define WX_CHAT_PARSE_MAX       600             /* bytes of a message understood */
#define WX_CHAT_NUMBER_MAX      1000000000000LL /* a number read (一万亿): more is no number */
#define WX_CHAT_NUMBER_DIGITS   13              /* digits of an Arabic number's whole part */
#define WX_CHAT_AMOUNT_MAX_YUAN 100000000000LL  /* the largest amount slot */
#define WX_CHAT_PERIODS_LIMIT   60              /* the most installment periods */
#define WX_CHAT_QUOTE_MAX_FEN   100000000000LL  /* the largest amount quoted: 1,000,000,000 */
void wx_chat_parse(const char *text, size_t len, int64_t now_ms, int tz_offset_minutes,
                   struct wx_chat_parse *out);

/* "balance", ...; "unknown" for anything out of range. */
const char *wx_chat_intent_name(enum wx_chat_intent intent);

/* The intent named name, or -1. */
int wx_chat_intent_of(const char *name);

/*
 * The parse as one JSON object: {"intent": ID, "confidence": 0.97, "slots": {...}} with the
 * slots present only (amount_fen, periods, date_from, date_to, card_last4, answer,
 * limit_kind, merchant, category, choice, lang, language). Returns its length, or -1 when it
 * does not fit in cap.
 */
int wx_chat_parse_json(const struct wx_chat_parse *p, char *out, size_t cap);

/* ============================================================================================
 * The conversation (chat.c, answer.c, dialog.c, quote.c)
 * ========================================================================================= */

#define WX_CHAT_TEXT_MAX      2048   /* bytes of a reply; WeChat shows 2048 characters at most */
#define WX_CHAT_PERIODS_MAX   8      /* installment period counts offered */
#define WX_CHAT_DIALOGUES_MAX 100000 /* followers in a dialogue at once; the oldest goes */

/* Menu keys the bank's menu (data/menu.json) sends with a CLICK. */
#define WX_CHAT_KEY_BALANCE "BALANCE"
#define WX_CHAT_KEY_HELP    "HELP"

typedef struct wx_chat wx_chat_t;

struct wx_chat_options {
    int tz_offset_minutes; /* dates: 今天, 上个月, due dates */
    unsigned idle_s;       /* chat.idle_s: a dialogue idle this long is forgotten */
    float clarify_below;   /* chat.clarify_below: a clarifying question under this confidence */
    size_t dialogues_max;  /* at once; <= WX_CHAT_DIALOGUES_MAX */
    unsigned nperiods;     /* chat.installment_rates: the period counts offered... */
    unsigned periods[WX_CHAT_PERIODS_MAX];
    unsigned fee_bp[WX_CHAT_PERIODS_MAX]; /* ...and each one's fee per period, basis points */
};

/* From chat.*; -1 with a message naming the key when one is malformed. */
int wx_chat_options_from_config(const wx_config_t *cfg, struct wx_chat_options *opt, char *err,
                                size_t errlen);
/* The defaults, as the configuration's. */
void wx_chat_options_default(struct wx_chat_options *opt);

wx_chat_t *wx_chat_new(const struct wx_chat_options *opt);
void wx_chat_free(wx_chat_t *c);

/*
 * Who makes the one-time links to the secure pages: fn writes into url (cap bytes) a link
 * for the follower to the page of action ("bind", "unbind" or "unlock"), good once and for
 * a few minutes; it returns how many (whole minutes, at least 1: the words tell the
 * cardholder), or -1 when no link can be made now. It runs on the thread of
 * wx_chat_respond. Until it is set (or with fn NULL) the hand-offs say the page opens soon.
 */
typedef int (*wx_chat_link_fn)(void *arg, const char *openid, const char *action, int64_t now_ms,
                               char *url, size_t cap);
void wx_chat_set_links(wx_chat_t *c, wx_chat_link_fn fn, void *arg);

enum wx_chat_input_kind {
    WX_CHAT_IN_TEXT = 0,   /* typed text, or a voice message's recognition */
    WX_CHAT_IN_MENU = 1,   /* a menu button: text is its key */
    WX_CHAT_IN_FOLLOW = 2, /* the follower just followed the account */
    WX_CHAT_IN_OTHER = 3,  /* an image, a location, a link: nothing to understand yet */
};

struct wx_chat_input {
    enum wx_chat_input_kind kind;
    const char *text;     /* UTF-8, NUL-terminated; may be empty */
    const char *openid;   /* the follower: whose dialogue it is */
    uint64_t msg_id;      /* the channel's id of the message (WeChat's MsgId); 0: none */
    uint32_t customer_id; /* the customer the follower is bound to; 0 when not bound */
    int64_t now_ms;
};

enum wx_chat_reply_kind {
    WX_CHAT_REPLY_NONE = 0,     /* nothing to say ("success" on WeChat) */
    WX_CHAT_REPLY_TEXT = 1,     /* text */
    WX_CHAT_REPLY_TRANSFER = 2, /* hand the conversation to the human agents; text is a note */
};

/* What an answer needs from the history projection (statements, transactions, points),
 * filled on the loop from the engine and the slots. */
struct wx_chat_history_ask {
    enum wx_chat_intent intent;   /* bill, unbilled, transactions, spending_summary, points */
    uint32_t account_id, card_id; /* card_id 0: the whole account */
    int64_t from_ms, to_ms;       /* the items to read */
    int64_t cut_ms;               /* bill: the statement's cut-off (end of statement day) */
    int32_t statement_day;        /* bill: the statement's date, days since 1970-01-01 */
    int32_t from_day, to_day;     /* the period as asked, local dates (shown) */
    unsigned last4;               /* the card's, when one card was asked about */
};

#define WX_CHAT_ITEMS_MAX 1000 /* history items read for one answer */

/* What the projection said (wx_chat_history_read). */
struct wx_chat_history_found {
    int status;                      /* 0, or -1: the projection could not be read */
    int64_t owed_cut;                /* bill: balance owed at the cut-off (the statement balance) */
    int64_t paid;                    /* bill: repaid since the cut-off */
    struct wx_history_totals totals; /* all the items of the period */
    size_t n;                        /* items read, newest first */
    struct wx_history_item items[WX_CHAT_ITEMS_MAX];
};

struct wx_chat_reply {
    enum wx_chat_reply_kind kind;
    bool reads_state;   /* shows the ledger's state: may leave only once that is durable */
    bool has_cmd;       /* cmd must be submitted, then wx_chat_command_done gives the words */
    bool needs_history; /* ask must be read (wx_chat_history_read, off the loop), then
                           wx_chat_history_answer gives the words */
    struct wx_cmd cmd;
    struct wx_chat_history_ask ask;
    char text[WX_CHAT_TEXT_MAX];
};

struct wx_chat_stats {
    uint64_t turns;
    uint64_t clarified; /* turns answered with a clarifying question */
    uint64_t unknown;   /* turns not understood */
    uint64_t dialogues; /* followers in a dialogue now */
};

/* Decides the reply to one input, continuing the follower's dialogue. Reads the engine,
 * never changes it. Runs on one thread at a time (the hub's loop). */
void wx_chat_respond(wx_chat_t *c, const wx_engine_t *e, const struct wx_chat_input *in,
                     struct wx_chat_reply *out);

/* After the adapter submitted out->cmd: out's text becomes what came of it. */
void wx_chat_command_done(wx_chat_t *c, const wx_engine_t *e, const struct wx_chat_input *in,
                          const struct wx_result *res, struct wx_chat_reply *out);

/* Any thread (the history service's in a server): reads what ask needs into found. */
void wx_chat_history_read(wx_history_reader_t *r, const struct wx_chat_history_ask *ask,
                          struct wx_chat_history_found *found);

/* After the read: out's text becomes the answer, in the dialogue's language. */
void wx_chat_history_answer(wx_chat_t *c, const wx_engine_t *e, const struct wx_chat_input *in,
                            const struct wx_chat_history_ask *ask,
                            const struct wx_chat_history_found *found, struct wx_chat_reply *out);

void wx_chat_stats(const wx_chat_t *c, struct wx_chat_stats *out);

#endif
