/*
 * nlu_eval.c - how well the chat assistant understands held-out utterances.
 *
 *   nlu_eval tests/nlu/eval.tsv data/nlu/train.tsv [--show-errors] [--min 0.95]
 *
 * Prints the accuracy of the intent, each intent's precision and recall, and the commonest
 * confusions; with --show-errors every miss. Fails (exit 1) when an evaluation utterance is
 * also a training one once both are normalized (the score would flatter), or when the
 * accuracy is under --min (default 0.95). `make nlu-eval` runs it; so does the test suite.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/nlu_int.h"
#include "utterances.h"

#define ROWS_MAX 20000
#define NOW_MS   1795752000000ll /* 2026-11-27 12:00 in Shanghai: fixed, for dates */

struct row {
    int intent;
    char *text;
};

static size_t read_rows(const char *path, struct row *rows, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "nlu_eval: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    static const char *names[WX_INTENT_COUNT];
    for (int i = 0; i < WX_INTENT_COUNT; i++)
        names[i] = wx_chat_intent_name((enum wx_chat_intent)i);
    struct utterance_reader r = {
        .f = f, .path = path, .fail_exit = 2, .intents = names, .nintents = WX_INTENT_COUNT};
    size_t n = 0;
    int intent;
    for (const char *text; (text = utterance_next(&r, &intent)) != NULL; n++) {
        if (n == cap) {
            fprintf(stderr, "%s: more than %zu utterances\n", path, cap);
            exit(2);
        }
        rows[n].intent = intent;
        rows[n].text = strdup(text);
    }
    fclose(f);
    return n;
}

static char *normalized(const char *text)
{
    static struct nlu_text t;
    nlu_normalize(text, strlen(text), &t);
    return strdup(t.s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Evaluation utterances that are training ones too, once normalized. */
static size_t overlaps(const struct row *eval, size_t ne, const struct row *train, size_t nt)
{
    char **seen = malloc(nt * sizeof *seen);
    for (size_t i = 0; i < nt; i++)
        seen[i] = normalized(train[i].text);
    qsort(seen, nt, sizeof *seen, cmp_str);
    size_t found = 0;
    for (size_t i = 0; i < ne; i++) {
        char *key = normalized(eval[i].text);
        if (nt > 0 && bsearch(&key, seen, nt, sizeof *seen, cmp_str) != NULL) {
            fprintf(stderr, "nlu_eval: in both files: %s\n", eval[i].text);
            found++;
        }
        free(key);
    }
    for (size_t i = 0; i < nt; i++)
        free(seen[i]);
    free(seen);
    return found;
}

struct confusion {
    int want, got;
    unsigned n;
};

static int by_count(const void *a, const void *b)
{
    const struct confusion *x = a, *y = b;
    return x->n != y->n ? (x->n < y->n ? 1 : -1) : (x->want - y->want) * 64 + (x->got - y->got);
}

int main(int argc, char **argv)
{
    bool show = false;
    double min = 0.95;
    const char *paths[2] = {NULL, NULL};
    size_t npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--show-errors") == 0) {
            show = true;
        } else if (strcmp(argv[i], "--min") == 0 && i + 1 < argc) {
            min = strtod(argv[++i], NULL);
        } else if (npaths < 2) {
            paths[npaths++] = argv[i];
        } else {
            npaths = 3;
        }
    }
    if (npaths != 2) {
        fprintf(stderr, "usage: nlu_eval EVAL.tsv TRAIN.tsv [--show-errors] [--min 0.95]\n");
        return 2;
    }
    static struct row eval[ROWS_MAX], train[ROWS_MAX];
    size_t ne = read_rows(paths[0], eval, ROWS_MAX);
    size_t nt = read_rows(paths[1], train, ROWS_MAX);
    size_t both = overlaps(eval, ne, train, nt);

    static unsigned matrix[WX_INTENT_COUNT][WX_INTENT_COUNT];
    size_t right = 0;
    for (size_t i = 0; i < ne; i++) {
        struct wx_chat_parse p;
        wx_chat_parse(eval[i].text, strlen(eval[i].text), NOW_MS, 480, &p);
        matrix[eval[i].intent][p.intent]++;
        right += (int)p.intent == eval[i].intent;
        if (show && (int)p.intent != eval[i].intent) {
            printf("miss  %-16s got %-16s %.2f  %s\n", wx_chat_intent_name(eval[i].intent),
                   wx_chat_intent_name(p.intent), (double)p.confidence, eval[i].text);
        }
    }
    double accuracy = ne > 0 ? (double)right / (double)ne : 0;
    printf("utterances %zu, right %zu, accuracy %.1f%%\n\n", ne, right, 100 * accuracy);
    printf("%-18s %9s %9s %6s\n", "intent", "precision", "recall", "count");
    for (int c = 0; c < WX_INTENT_COUNT; c++) {
        unsigned tp = matrix[c][c], got = 0, want = 0;
        for (int k = 0; k < WX_INTENT_COUNT; k++) {
            got += matrix[k][c];
            want += matrix[c][k];
        }
        printf("%-18s %8.1f%% %8.1f%% %6u\n", wx_chat_intent_name(c),
               got ? 100.0 * tp / got : 100.0, want ? 100.0 * tp / want : 100.0, want);
    }
    struct confusion conf[WX_INTENT_COUNT * WX_INTENT_COUNT];
    size_t nc = 0;
    for (int w = 0; w < WX_INTENT_COUNT; w++) {
        for (int g = 0; g < WX_INTENT_COUNT; g++) {
            if (w != g && matrix[w][g] > 0) conf[nc++] = (struct confusion){w, g, matrix[w][g]};
        }
    }
    qsort(conf, nc, sizeof conf[0], by_count);
    printf("\ntop confusions (wanted -> got):\n");
    for (size_t i = 0; i < nc && i < 10; i++) {
        printf("  %-16s -> %-16s %u\n", wx_chat_intent_name(conf[i].want),
               wx_chat_intent_name(conf[i].got), conf[i].n);
    }
    for (size_t i = 0; i < ne; i++)
        free(eval[i].text);
    for (size_t i = 0; i < nt; i++)
        free(train[i].text);
    if (both > 0) {
        printf("\nFAIL: %zu evaluation utterances are training ones too\n", both);
        return 1;
    }
    if (accuracy < min) {
        printf("\nFAIL: accuracy %.1f%% is under %.1f%%\n", 100 * accuracy, 100 * min);
        return 1;
    }
    printf("\nok: accuracy %.1f%% (at least %.1f%%), no overlap with training\n", 100 * accuracy,
           100 * min);
    return 0;
}
