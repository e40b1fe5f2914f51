/*
 * classify.c - the intent classifier: multinomial logistic regression over the features of
 * features.c, its weights learned at build time (tools/nlu_train.c) from data/nlu/train.tsv.
 *
 * A linear model can be explained: each feature the message has adds its weight to each
 * intent, and the softmax of the sums is the confidence. The weights are kept as int8 with
 * one scale (a few hundred kilobytes), found through an open-addressing table of hashes.
 */
#include "chat/nlu_int.h"

#include <math.h>

static uint32_t find(const struct nlu_model *m, uint64_t h)
{
    uint32_t mask = m->nslots - 1;
    for (uint32_t i = (uint32_t)(h >> 32) & mask;; i = (i + 1) & mask) {
        uint32_t ix = m->slot[i];
        if (ix == 0) return UINT32_MAX;
        if (m->hash[ix - 1] == h) return ix - 1;
    }
}

void nlu_classify(const struct nlu_model *m, const uint64_t *f, size_t n, float p[NLU_INTENT_COUNT])
{
    int32_t sum[NLU_INTENT_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        uint32_t ix = m->nslots > 0 ? find(m, f[i]) : UINT32_MAX;
        if (ix == UINT32_MAX) continue;
        for (uint32_t e = m->start[ix]; e < m->start[ix + 1]; e++) {
            uint16_t v = m->entry[e];
            sum[v >> 8] += (int8_t)(uint8_t)(v & 0xFF);
        }
    }
    float top = -INFINITY, total = 0;
    for (int c = 0; c < NLU_INTENT_COUNT; c++) {
        p[c] = m->bias[c] + (float)sum[c] * m->scale;
        if (p[c] > top) top = p[c];
    }
    for (int c = 0; c < NLU_INTENT_COUNT; c++) {
        p[c] = expf(p[c] - top);
        total += p[c];
    }
    for (int c = 0; c < NLU_INTENT_COUNT; c++)
        p[c] /= total;
}
