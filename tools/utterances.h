/*
 * utterances.h - reading a file of labelled utterances (data/nlu/train.tsv, tests/nlu/
 * eval.tsv): one "intent<TAB>text" a line, '#' comments and empty lines skipped. Shared by
 * the build's trainer and the evaluation, which must read the files alike.
 */
#ifndef WX_TOOLS_UTTERANCES_H
#define WX_TOOLS_UTTERANCES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTTERANCE_LINE_MAX 4096

struct utterance_reader {
    FILE *f;
    const char *path;
    size_t lineno;
    int fail_exit;              /* the exit status of a malformed file */
    const char *const *intents; /* the known intents' names, in order */
    int nintents;
    char line[UTTERANCE_LINE_MAX];
};

/*
 * The next utterance: its text (in r->line, until the next call) and *intent. NULL at the
 * end. A line too long, without a tab or with an unknown intent stops the program with the
 * file and line.
 */
static inline const char *utterance_next(struct utterance_reader *r, int *intent)
{
    while (fgets(r->line, sizeof r->line, r->f) != NULL) {
        r->lineno++;
        if (strchr(r->line, '\n') == NULL && !feof(r->f)) {
            fprintf(stderr, "%s:%zu: a line longer than %d bytes\n", r->path, r->lineno,
                    UTTERANCE_LINE_MAX - 2);
            exit(r->fail_exit);
        }
        r->line[strcspn(r->line, "\r\n")] = '\0';
        if (r->line[0] == '#' || r->line[0] == '\0') continue;
        char *tab = strchr(r->line, '\t');
        *intent = -1;
        if (tab != NULL) {
            *tab = '\0';
            for (int i = 0; i < r->nintents; i++) {
                if (strcmp(r->line, r->intents[i]) == 0) *intent = i;
            }
        }
        if (*intent < 0) {
            fprintf(stderr, "%s:%zu: want INTENT<TAB>TEXT with a known intent\n", r->path,
                    r->lineno);
            exit(r->fail_exit);
        }
        return tab + 1;
    }
    return NULL;
}

#endif
