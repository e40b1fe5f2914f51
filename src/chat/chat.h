/*
 * chat.h - the conversation with a cardholder: what the bank says back to a message.
 *
 * Adapters (the WeChat webhook today) turn what a follower sent into a wx_chat_input and
 * send back the wx_chat_reply, in the channel's own format. The conversation reads the
 * engine (balance, credit) and changes nothing: anything that changes money, limits or card
 * state is a command the adapter submits, or a hand-off to the secure web pages.
 *
 * This is the seam the chat assistant fills: today it understands help, the menu and, for a
 * follower bound to a customer, balance and available credit, in Chinese and English.
 */
#ifndef WX_CHAT_CHAT_H
#define WX_CHAT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

#define WX_CHAT_TEXT_MAX 2048 /* bytes of a reply; WeChat shows 2048 characters at most */

/* Menu keys the bank's menu (data/menu.json) sends with a CLICK. */
#define WX_CHAT_KEY_BALANCE "BALANCE"
#define WX_CHAT_KEY_HELP    "HELP"

enum wx_chat_input_kind {
    WX_CHAT_IN_TEXT = 0,   /* typed text, or a voice message's recognition */
    WX_CHAT_IN_MENU = 1,   /* a menu button: text is its key */
    WX_CHAT_IN_FOLLOW = 2, /* the follower just followed the account */
    WX_CHAT_IN_OTHER = 3,  /* an image, a location, a link: nothing to understand yet */
};

struct wx_chat_input {
    enum wx_chat_input_kind kind;
    const char *text;     /* UTF-8, NUL-terminated; may be empty */
    uint32_t customer_id; /* the customer the follower is bound to; 0 when not bound */
    int64_t now_ms;
};

enum wx_chat_reply_kind {
    WX_CHAT_REPLY_NONE = 0, /* nothing to say ("success" on WeChat) */
    WX_CHAT_REPLY_TEXT = 1,
};

struct wx_chat_reply {
    enum wx_chat_reply_kind kind;
    bool reads_state; /* shows the ledger's state: may leave only once that is durable */
    char text[WX_CHAT_TEXT_MAX];
};

/* Decides the reply to one input. Reads the engine; never changes it. */
void wx_chat_respond(const wx_engine_t *e, const struct wx_chat_input *in,
                     struct wx_chat_reply *out);

#endif
