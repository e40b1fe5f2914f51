/*
 * faq_data.h - the FAQ's entries as the build compiles them in. Private to src/chat/faq.c.
 *
 * tools/faq_embed.c reads data/faq/faq.tsv and writes generated/faq_data.c, which defines
 * what this header declares; a malformed line stops the build with its file and line, so the
 * program never starts with a knowledge base it cannot read.
 */
#ifndef WX_CHAT_FAQ_DATA_H
#define WX_CHAT_FAQ_DATA_H

#include <stddef.h>

/* Entries the knowledge base may hold: the search keeps one score per entry on its stack
 * (the generated file checks this at compile time). */
#define NLU_FAQ_ENTRIES_MAX 256

struct nlu_faq_entry {
    const char *id;               /* unique: lowercase ASCII, digits and underscores */
    const char *const *questions; /* the ways to ask, as written (each non-empty) */
    size_t nquestions;            /* at least 1 */
    const char *answer_zh;        /* non-empty; "\n" in the file made a real line break */
    const char *answer_en;        /* the same, in English */
};

extern const struct nlu_faq_entry nlu_faq_entries[]; /* in the file's order */
extern const size_t nlu_faq_nentries;                /* 1 .. NLU_FAQ_ENTRIES_MAX */

#endif
