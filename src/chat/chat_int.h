/*
 * chat_int.h - inside the conversation: the dialogue each follower is in, and what the files
 * of the turn share. Private to src/chat.
 *
 *   chat.c     a turn: the input read, the dialogue's stage continued or a new intent taken
 *              (with clarifying questions, cancel and context carried over)
 *   answer.c   what each intent answers, from the engine, the FAQ and the quotes
 *   dialog.c   the dialogues by follower: a hash, oldest first, forgotten when idle
 *   quote.c    installment quotes: per-period principal and fee, total, annualized rate
 */
#ifndef WX_CHAT_CHAT_INT_H
#define WX_CHAT_CHAT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/chat.h"

#define CARDS_SHOWN 8 /* cards listed in one answer, or offered as numbered choices */
#define CHOICES_MAX 3 /* intents offered by a clarifying question */

/* Where a dialogue waits. */
enum stage {
    STAGE_NONE = 0,
    STAGE_CHOOSE_INTENT,      /* a clarifying question: 1..nchoices */
    STAGE_CHOOSE_CARD,        /* which card: 1..ncards */
    STAGE_CHOOSE_PERIODS,     /* installment: which number of periods */
    STAGE_ASK_AMOUNT,         /* installment: how much */
    STAGE_CONFIRM_LOCK,       /* lock card_id? yes / no */
    STAGE_CONFIRM_INSTALLMENT /* apply for the quoted installment? yes / no */
};

struct dialog {
    char openid[WX_OPENID_MAX + 1];
    struct dialog *next_bucket;   /* in its hash bucket */
    struct dialog *older, *newer; /* by last turn */
    int64_t last_ms;              /* the last turn */
    enum wx_chat_intent intent;   /* what it is about; UNKNOWN when nothing */
    enum stage stage;
    struct wx_chat_slots slots; /* given so far */
    enum wx_chat_intent choices[CHOICES_MAX];
    unsigned nchoices;
    uint32_t cards[CARDS_SHOWN]; /* numbered card choices */
    unsigned ncards;
    uint32_t card_id;       /* the card the dialogue is about; 0 none yet */
    enum wx_chat_lang lang; /* of the last message that said which */
    unsigned turns;         /* messages understood in it */
};

struct wx_chat {
    struct wx_chat_options opt;
    uint8_t hash_key[16];           /* of the dialogues' hash (random) */
    struct dialog **buckets;        /* dialogues by OpenID */
    size_t nbuckets, count;         /* buckets: a power of two, at least count */
    struct dialog *oldest, *newest; /* by last turn */
    struct wx_chat_stats stats;
    wx_chat_link_fn link; /* makes the secure pages' one-time links; NULL: not open yet */
    void *link_arg;       /* passed to link as it was given */
};

/* One turn's context. */
struct turn {
    struct wx_chat *c;
    const wx_engine_t *e;
    const struct wx_chat_input *in;
    struct dialog *d;
    struct wx_chat_parse p;
    struct wx_chat_slots slots; /* this turn's, with what the dialogue carried */
    enum wx_chat_lang lang;
    struct wx_chat_reply *out;
};

/* dialog.c */
struct dialog *dialog_get(struct wx_chat *c, const char *openid, int64_t now_ms);
void dialog_reset(struct dialog *d);
void dialogs_free(struct wx_chat *c);

/* answer.c */
void say(struct wx_chat_reply *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* zh or en text by the turn's language */
#define SAY(t, zh, en, ...) say((t)->out, (t)->lang == WX_CHAT_EN ? en : zh, ##__VA_ARGS__)
void answer_intent(struct turn *t, enum wx_chat_intent intent);
void answer_help(struct turn *t);
void answer_clarify(struct turn *t, const enum wx_chat_intent *choices, unsigned n);
void answer_continue(struct turn *t);     /* a stage that got what it waited for */
void answer_lock_command(struct turn *t); /* the cardholder said yes: the command */
bool answer_card_of(const struct turn *t, uint32_t card_id, struct wx_card_view *out);
/* Rebuilds a turn for the follower's dialogue, to word a result that came later. */
void answer_turn_resume(struct wx_chat *c, const wx_engine_t *e, const struct wx_chat_input *in,
                        struct wx_chat_reply *out, struct turn *t);

/* statement.c: a question for the history projection, from the engine and the slots */
void answer_history_ask(struct turn *t, enum wx_chat_intent intent, uint32_t card_id);
void answer_lock_done(struct turn *t, const struct wx_result *res);
const char *intent_label(enum wx_chat_intent intent, enum wx_chat_lang lang);

/* quote.c */
struct quote {
    int64_t principal; /* fen */
    unsigned periods;
    int64_t first_principal; /* the first period's share (the remainder goes there) */
    int64_t principal_each;  /* each later period's */
    int64_t fee_each;        /* fee per period */
    int64_t total_fee, total;
    double apr; /* annualized rate by IRR, percent: 12 x the monthly IRR */
};

/* The quote for principal fen over periods at fee_bp basis points of principal per period.
 * 0, or -1 when the input is out of range (principal <= 0, periods < 2). */
int quote_make(int64_t principal, unsigned periods, unsigned fee_bp, struct quote *q);

#endif
