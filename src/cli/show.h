/*
 * show.h - how the CLI prints results, cards and accounts (card numbers always masked).
 */
#ifndef WX_CLI_SHOW_H
#define WX_CLI_SHOW_H

#include "cli/cli.h"

/* Prints a refusal or decline on stderr; returns WX_EXIT_OK for an approval, else
 * WX_EXIT_FAIL. */
int wx_show_result(const char *what, const struct wx_result *res);

/* Prints a card, its account and its latest transactions. */
int wx_show_card(struct wx_cli *cli, uint32_t card_id);

/* Prints an account. */
int wx_show_account(struct wx_cli *cli, uint32_t account_id);

/* "622588******1234" from the card's BIN digits and last 4. */
void wx_show_masked(const struct wx_card_view *card, char out[20]);

#endif
