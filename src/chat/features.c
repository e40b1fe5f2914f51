/*
 * features.c - what the classifier looks at in a normalized message.
 *
 * Tokens are single Chinese characters, English words, numbers (all alike: "#") and the
 * symbols ¥ and %. The features are token unigrams, bigrams and trigrams (Chinese has no
 * spaces, so character n-grams are its words), Chinese skip-bigrams (要还多少 and 要还款多少
 * share 还_多), the first and last token, and the letter trigrams of English words, which
 * let "balnce" share most of "balance". Each is hashed (FNV-1a, 64 bits) with its kind;
 * the model keeps only the hashes it saw in training.
 */
#include "chat/nlu_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/siphash.h"

enum feature_kind { F_UNI = 1, F_BI, F_TRI, F_SKIP, F_FIRST, F_LAST, F_LETTERS };

#define FNV_OFFSET WX_FNV1A64_START

static uint64_t mix(uint64_t h, const void *data, size_t len)
{
    return wx_fnv1a64(h, data, len);
}

static uint64_t mix_token(uint64_t h, const struct nlu_text *t, const struct nlu_token *k)
{
    h = mix(h, "\x1f", 1); /* a separator no token holds */
    if (k->kind == TOK_NUM) return mix(h, "#", 1);
    return mix(h, t->s + k->off, k->len);
}

static uint64_t gram(enum feature_kind kind, const struct nlu_text *t, const struct nlu_token *k,
                     size_t n, size_t step)
{
    unsigned char b = (unsigned char)kind;
    uint64_t h = mix(FNV_OFFSET, &b, 1);
    for (size_t i = 0; i < n; i++)
        h = mix_token(h, t, &k[i * step]);
    return h;
}

struct sink {
    uint64_t *v;
    size_t n, cap;
};

static void add(struct sink *s, uint64_t h)
{
    if (s->n < s->cap) s->v[s->n++] = h;
}

/* "<balance>" in threes: <ba bal ala lan anc nce ce> */
static void letters(struct sink *s, const struct nlu_text *t, const struct nlu_token *k)
{
    if (k->len < 4) return;
    char w[NLU_TEXT_MAX + 2];
    w[0] = '<';
    memcpy(w + 1, t->s + k->off, k->len);
    w[k->len + 1] = '>';
    unsigned char b = F_LETTERS;
    for (size_t i = 0; i + 3 <= (size_t)k->len + 2; i++)
        add(s, mix(mix(FNV_OFFSET, &b, 1), w + i, 3));
}

int nlu_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t nlu_features(const struct nlu_text *t, uint64_t *out, size_t cap)
{
    struct sink s = {.v = out, .cap = cap};
    const struct nlu_token *k = t->tok;
    size_t n = t->ntok;
    if (n == 0) return 0;
    add(&s, gram(F_FIRST, t, &k[0], 1, 1));
    add(&s, gram(F_LAST, t, &k[n - 1], 1, 1));
    for (size_t i = 0; i < n; i++) {
        add(&s, gram(F_UNI, t, &k[i], 1, 1));
        if (i + 1 < n) add(&s, gram(F_BI, t, &k[i], 2, 1));
        if (i + 2 < n) add(&s, gram(F_TRI, t, &k[i], 3, 1));
        if (i + 2 < n && k[i].kind == TOK_HAN && k[i + 2].kind == TOK_HAN) {
            add(&s, gram(F_SKIP, t, &k[i], 2, 2));
        }
        if (k[i].kind == TOK_WORD) letters(&s, t, &k[i]);
    }
    qsort(s.v, s.n, sizeof s.v[0], nlu_cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (m == 0 || s.v[m - 1] != s.v[i]) s.v[m++] = s.v[i];
    }
    return m;
}
