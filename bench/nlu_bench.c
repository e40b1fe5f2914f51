/*
 * nlu_bench.c - how fast the chat assistant understands a message: normalization, slots and
 * classification (wx_chat_parse), one message at a time on one core, as the webhook's loop
 * calls it.
 *
 * The messages are every utterance of tests/nlu/eval.tsv and data/nlu/train.tsv (Chinese,
 * English, mixed; 2 to 100 bytes), parsed in a shuffled order for ROUNDS rounds after a warm-up
 * round. Each parse is timed alone (clock_gettime around it; about 20 ns of its own), which
 * gives the p50 and p99; the whole loop gives messages per second.
 *
 * Output: BENCH nlu.p50_us, nlu.p99_us, nlu.msgs_per_s (target: p99 <= 50 us).
 * WX_SOURCE_DIR (default: the source tree this was built from) finds the utterance files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/chat.h"
#include "util/alloc.h"

#define ROUNDS   200
#define MSGS_MAX 8192
#define NOW_MS   1795752000000ll /* 2026-11-27 12:00 in Shanghai */

static char *msgs[MSGS_MAX];
static size_t nmsgs;

static void load(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "nlu_bench: cannot open %s (set WX_SOURCE_DIR)\n", path);
        exit(1);
    }
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL && nmsgs < MSGS_MAX) {
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || tab == NULL) continue;
        msgs[nmsgs++] = wx_strndup(tab + 1, strlen(tab + 1));
    }
    fclose(f);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    const char *dir = getenv("WX_SOURCE_DIR");
    load(dir != NULL ? dir : WX_SOURCE_DIR, "tests/nlu/eval.tsv");
    load(dir != NULL ? dir : WX_SOURCE_DIR, "data/nlu/train.tsv");
    size_t *order = wx_calloc(nmsgs, sizeof *order);
    for (size_t i = 0; i < nmsgs; i++)
        order[i] = i;
    srand(7);
    for (size_t i = nmsgs; i > 1; i--) {
        size_t j = (size_t)rand() % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    size_t total = nmsgs * ROUNDS;
    float *lat = wx_calloc(total, sizeof *lat);
    struct wx_chat_parse p;
    unsigned sink = 0;
    for (size_t i = 0; i < nmsgs; i++) { /* warm-up */
        wx_chat_parse(msgs[i], strlen(msgs[i]), NOW_MS, 480, &p);
        sink += p.intent;
    }
    double start = now_us();
    for (size_t r = 0, k = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < nmsgs; i++, k++) {
            const char *m = msgs[order[i]];
            double t0 = now_us();
            wx_chat_parse(m, strlen(m), NOW_MS, 480, &p);
            lat[k] = (float)(now_us() - t0);
            sink += p.intent;
        }
    }
    double elapsed = now_us() - start;
    qsort(lat, total, sizeof *lat, cmp_float);
    fprintf(stderr, "nlu_bench: %zu messages x %d rounds in %.2f s (sink %u)\n", nmsgs, ROUNDS,
            elapsed / 1e6, sink);
    printf("BENCH nlu.p50_us %.1f us\n", (double)lat[total / 2]);
    printf("BENCH nlu.p99_us %.1f us\n", (double)lat[total * 99 / 100]);
    printf("BENCH nlu.msgs_per_s %.0f msgs/s\n", (double)total / (elapsed / 1e6));
    return 0;
}
