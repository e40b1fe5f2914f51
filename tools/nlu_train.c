/*
 * nlu_train.c - learns the intent classifier's weights from labelled utterances and writes
 * them as C (the build compiles the result into wxbank).
 *
 *   nlu_train data/nlu/train.tsv build/generated/nlu_model.c
 *
 * Multinomial logistic regression on the features of src/chat/features.c (binary), trained
 * with AdaGrad and a little L2 for EPOCHS passes in an order shuffled by a fixed seed: the
 * same file always gives the same model. Weights are then scaled to int8; those that round
 * to zero are left out. A line with an unknown intent or no tab stops the build with its
 * line number, as does one with nothing to learn from (but for `unknown`: emoji alone).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/nlu_int.h"
#include "utterances.h"

#define EPOCHS 40
#define RATE   0.5
#define L2     1e-5

#define NAME(id, name) name,
static const char *const INTENT_NAMES[NLU_INTENT_COUNT] = {WX_CHAT_INTENTS(NAME)};
#undef NAME

struct example {
    int intent;
    uint32_t *feat; /* indexes into the dictionary */
    size_t n;
};

struct dict {
    uint64_t *hash;
    uint32_t *slot; /* index + 1 */
    size_t n, cap, nslots;
};

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL && n > 0) {
        fprintf(stderr, "nlu_train: out of memory\n");
        exit(1);
    }
    return p;
}

static void dict_rehash(struct dict *d)
{
    d->nslots = d->nslots ? d->nslots * 2 : 1u << 14;
    free(d->slot);
    d->slot = calloc(d->nslots, sizeof *d->slot);
    if (d->slot == NULL) exit(1);
    for (size_t i = 0; i < d->n; i++) {
        size_t j = (size_t)(d->hash[i] >> 32) & (d->nslots - 1);
        while (d->slot[j] != 0)
            j = (j + 1) & (d->nslots - 1);
        d->slot[j] = (uint32_t)i + 1;
    }
}

static uint32_t dict_id(struct dict *d, uint64_t h)
{
    if (2 * (d->n + 1) > d->nslots) dict_rehash(d);
    size_t j = (size_t)(h >> 32) & (d->nslots - 1);
    for (; d->slot[j] != 0; j = (j + 1) & (d->nslots - 1)) {
        if (d->hash[d->slot[j] - 1] == h) return d->slot[j] - 1;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4096;
        d->hash = xrealloc(d->hash, d->cap * sizeof *d->hash);
    }
    d->hash[d->n] = h;
    d->slot[j] = (uint32_t)d->n + 1;
    return (uint32_t)d->n++;
}

static size_t read_examples(const char *path, struct dict *d, struct example **out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "nlu_train: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t n = 0, cap = 0;
    struct example *ex = NULL;
    static struct nlu_text t;
    uint64_t feat[NLU_FEATURES_MAX];
    struct utterance_reader r = {.f = f,
                                 .path = path,
                                 .fail_exit = 1,
                                 .intents = INTENT_NAMES,
                                 .nintents = NLU_INTENT_COUNT};
    int intent;
    for (const char *text; (text = utterance_next(&r, &intent)) != NULL;) {
        size_t lineno = r.lineno;
        nlu_normalize(text, strlen(text), &t);
        size_t nf = nlu_features(&t, feat, NLU_FEATURES_MAX);
        if (nf == 0 && intent == WX_INTENT_UNKNOWN) continue; /* emoji only: unknown by rule */
        if (nf == 0) {
            fprintf(stderr, "%s:%zu: nothing to learn from\n", path, lineno);
            exit(1);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            ex = xrealloc(ex, cap * sizeof *ex);
        }
        ex[n].intent = intent;
        ex[n].n = nf;
        ex[n].feat = xrealloc(NULL, nf * sizeof *ex[n].feat);
        for (size_t i = 0; i < nf; i++)
            ex[n].feat[i] = dict_id(d, feat[i]);
        n++;
    }
    fclose(f);
    *out = ex;
    return n;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct model {
    size_t nfeat;
    double *w, *g; /* nfeat x NLU_INTENT_COUNT: weights and AdaGrad's sums of squares */
    double bias[NLU_INTENT_COUNT], gbias[NLU_INTENT_COUNT];
};

static void scores(const struct model *m, const struct example *e, double p[NLU_INTENT_COUNT])
{
    double top = -INFINITY, total = 0;
    for (int c = 0; c < NLU_INTENT_COUNT; c++) {
        p[c] = m->bias[c];
        for (size_t i = 0; i < e->n; i++)
            p[c] += m->w[(size_t)e->feat[i] * NLU_INTENT_COUNT + c];
        if (p[c] > top) top = p[c];
    }
    for (int c = 0; c < NLU_INTENT_COUNT; c++) {
        p[c] = exp(p[c] - top);
        total += p[c];
    }
    for (int c = 0; c < NLU_INTENT_COUNT; c++)
        p[c] /= total;
}

static void step(struct model *m, const struct example *e)
{
    double p[NLU_INTENT_COUNT];
    scores(m, e, p);
    for (int c = 0; c < NLU_INTENT_COUNT; c++) {
        double grad = p[c] - (c == e->intent ? 1.0 : 0.0);
        m->gbias[c] += grad * grad;
        m->bias[c] -= RATE * grad / (sqrt(m->gbias[c]) + 1e-8);
        for (size_t i = 0; i < e->n; i++) {
            size_t k = (size_t)e->feat[i] * NLU_INTENT_COUNT + c;
            double gk = grad + L2 * m->w[k];
            m->g[k] += gk * gk;
            m->w[k] -= RATE * gk / (sqrt(m->g[k]) + 1e-8);
        }
    }
}

static void train(struct model *m, const struct example *ex, size_t n)
{
    size_t *order = xrealloc(NULL, n * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)(rng() % i);
            size_t tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
        for (size_t i = 0; i < n; i++)
            step(m, &ex[order[i]]);
    }
    free(order);
}

static size_t correct(const struct model *m, const struct example *ex, size_t n)
{
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        double p[NLU_INTENT_COUNT];
        scores(m, &ex[i], p);
        int best = 0;
        for (int c = 1; c < NLU_INTENT_COUNT; c++) {
            if (p[c] > p[best]) best = c;
        }
        right += best == ex[i].intent;
    }
    return right;
}

static int8_t quantize(double w, double scale)
{
    long q = lround(w / scale);
    return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

/* The model as C: only features with a weight that survives quantization. */
static void write_model(const char *path, const struct model *m, const struct dict *d)
{
    double top = 0;
    for (size_t k = 0; k < m->nfeat * NLU_INTENT_COUNT; k++) {
        if (fabs(m->w[k]) > top) top = fabs(m->w[k]);
    }
    double scale = top > 0 ? top / 127 : 1;
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "nlu_train: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    uint32_t *keep = xrealloc(NULL, m->nfeat * sizeof *keep);
    size_t nkeep = 0, nentry = 0;
    for (size_t i = 0; i < m->nfeat; i++) {
        size_t count = 0;
        for (int c = 0; c < NLU_INTENT_COUNT; c++)
            count += quantize(m->w[i * NLU_INTENT_COUNT + c], scale) != 0;
        if (count > 0) keep[nkeep++] = (uint32_t)i;
        nentry += count;
    }
    size_t nslots = 1;
    while (nslots < 2 * nkeep)
        nslots *= 2;
    uint32_t *slot = calloc(nslots, sizeof *slot);
    for (size_t i = 0; i < nkeep; i++) {
        size_t j = (size_t)(d->hash[keep[i]] >> 32) & (nslots - 1);
        while (slot[j] != 0)
            j = (j + 1) & (nslots - 1);
        slot[j] = (uint32_t)i + 1;
    }
    fprintf(f, "/* Generated by tools/nlu_train.c from data/nlu/train.tsv: do not edit. */\n");
    fprintf(f, "#include \"chat/nlu_int.h\"\n\n");
    fprintf(f, "static const uint32_t slot[%zu] = {", nslots);
    for (size_t j = 0; j < nslots; j++)
        fprintf(f, "%s%u,", j % 16 == 0 ? "\n" : "", slot[j]);
    fprintf(f, "};\n\nstatic const uint64_t hash[%zu] = {", nkeep);
    for (size_t i = 0; i < nkeep; i++)
        fprintf(f, "%s0x%llxull,", i % 4 == 0 ? "\n" : "", (unsigned long long)d->hash[keep[i]]);
    fprintf(f, "};\n\nstatic const uint32_t start[%zu] = {", nkeep + 1);
    size_t at = 0;
    for (size_t i = 0; i <= nkeep; i++) {
        fprintf(f, "%s%zu,", i % 12 == 0 ? "\n" : "", at);
        if (i == nkeep) break;
        for (int c = 0; c < NLU_INTENT_COUNT; c++)
            at += quantize(m->w[keep[i] * NLU_INTENT_COUNT + c], scale) != 0;
    }
    fprintf(f, "};\n\nstatic const uint16_t entry[%zu] = {", nentry);
    size_t e = 0;
    for (size_t i = 0; i < nkeep; i++) {
        for (int c = 0; c < NLU_INTENT_COUNT; c++) {
            int8_t q = quantize(m->w[keep[i] * NLU_INTENT_COUNT + c], scale);
            if (q == 0) continue;
            fprintf(f, "%s%u,", e++ % 16 == 0 ? "\n" : "", (unsigned)(c << 8 | (uint8_t)q));
        }
    }
    fprintf(f, "};\n\nconst struct nlu_model nlu_model = {\n");
    fprintf(f, "    .nfeat = %zu, .nslots = %zu, .slot = slot, .hash = hash, .start = start,\n",
            nkeep, nslots);
    fprintf(f, "    .entry = entry, .scale = %.9gf,\n    .bias = {", scale);
    for (int c = 0; c < NLU_INTENT_COUNT; c++)
        fprintf(f, "%.6ff,", m->bias[c]);
    fprintf(f, "},\n};\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "nlu_train: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fprintf(stderr, "nlu_train: %zu features kept of %zu, %zu weights\n", nkeep, m->nfeat, nentry);
    free(slot);
    free(keep);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: nlu_train TRAIN.tsv OUT.c\n");
        return 2;
    }
    struct dict d = {0};
    struct example *ex;
    size_t n = read_examples(argv[1], &d, &ex);
    size_t per[NLU_INTENT_COUNT] = {0};
    for (size_t i = 0; i < n; i++)
        per[ex[i].intent]++;
    for (int c = 0; c < NLU_INTENT_COUNT; c++) {
        if (per[c] == 0) {
            fprintf(stderr, "nlu_train: %s: no utterance for intent %s\n", argv[1],
                    INTENT_NAMES[c]);
            return 1;
        }
    }
    struct model m = {.nfeat = d.n};
    m.w = calloc(d.n * NLU_INTENT_COUNT, sizeof *m.w);
    m.g = calloc(d.n * NLU_INTENT_COUNT, sizeof *m.g);
    if (m.w == NULL || m.g == NULL) return 1;
    train(&m, ex, n);
    fprintf(stderr, "nlu_train: %zu utterances, %zu features, %.1f%% right on them\n", n, d.n,
            100.0 * (double)correct(&m, ex, n) / (double)n);
    write_model(argv[2], &m, &d);
    for (size_t i = 0; i < n; i++)
        free(ex[i].feat);
    free(ex);
    free(m.w);
    free(m.g);
    free(d.hash);
    free(d.slot);
    return 0;
}
