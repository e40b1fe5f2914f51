/*
 * customer_cards.c - the cards a customer holds, for the conversation's answers.
 */
#include "core/engine_int.h"

size_t wx_engine_customer_cards(const wx_engine_t *e, uint32_t customer_id,
                                struct wx_card_view *out, size_t cap)
{
    if (customer_id == 0 || customer_id > e->n_customers) return 0;
    size_t n = 0;
    for (uint32_t id = e->customers[customer_id - 1].cards; id != 0 && n < cap;
         id = e->cards[id - 1].next_of_holder) {
        if (wx_engine_card(e, id, &out[n]) == 0) n++;
    }
    return n;
}
