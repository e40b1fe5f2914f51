/*
 * faq.c - which entries of the FAQ knowledge base answer a message: BM25 over the ways each
 * entry is asked (data/faq/faq.tsv, compiled in by tools/faq_embed.c).
 *
 * The classifier says a message is a general question (the `faq` intent); this finds which
 * one. An entry's questions, all of them together, are one document. Its terms come from
 * the text exactly as the classifier sees it (nlu_normalize), so traditional characters,
 * full-width letters and emoji cost nothing: Chinese character bigrams (Chinese has no
 * spaces, and two characters are most of its words: 年费, 挂失, 免息), single characters at
 * a lower weight (a one-character word such as 卡 or a bigram split by a typo still counts a
 * little), and English words cut to a crude stem (fees: fee, locking: lock). English stop
 * words, the commonest Chinese particles (as characters) and the bigrams of question words
 * (什么, 怎么, 多少) are not terms: they say nothing about which entry.
 *
 * The index (term -> postings) is built once, on first use (pthread_once), and only read
 * afterwards, so any thread may search. Each posting holds the term's whole BM25 contribution
 * to that entry (IDF times the saturated term frequency, length-normalized), so a search is
 * a hash lookup per term of the message and a sum, on the stack: no allocation, well under
 * the few microseconds a chat message may spend here.
 */
#include "chat/nlu_int.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chat/faq_data.h"
#include "util/alloc.h"
#include "util/siphash.h"

#define BM25_K1 1.2
#define BM25_B  0.75

/* A single Chinese character counts this much of a term: it matches far more often than a
 * bigram and means less (the 卡 of 信用卡 and of 附属卡). Tried against 0.15 and 0.5 on the
 * questions below: either narrows the gap the threshold sits in. */
#define FAQ_CHAR_WEIGHT 0.3

/*
 * The least score that answers, chosen by experiment: 120 questions rephrased from the
 * knowledge base (not copied), in both languages, against 65 messages that are not about the
 * card's rules. Chit-chat (今天天气怎么样, tell me a joke, 讲个笑话, what time is it) scores 0
 * to 1.9, and messages that share a word by chance (这个怎么用, what's the exchange rate today,
 * how do I open a savings account) up to 3.7. Of the 107 rephrased questions ranked right, all
 * but one (3.0) score 4.18 or more, most over 5: Chinese ones 5.2 and up, English ones lower,
 * a word being one term where a Chinese word is a bigram and two characters. So 4.0, in the
 * gap. Banking questions the knowledge base does not cover but shares words with (房贷利率多少
 * 13.1, 有没有人工客服 9.0) pass any threshold that keeps real questions: telling them apart is
 * the intent classifier's job, before this.
 */
#define FAQ_SCORE_MIN 4.0f

/* A message's terms: a bigram and a character per Chinese token, a word per English one. */
#define FAQ_QUERY_TERMS_MAX (2 * NLU_TOKENS_MAX)

enum term_kind { TERM_BIGRAM = 1, TERM_CHAR = 2, TERM_WORD = 3 };

struct posting {
    uint16_t entry; /* index into nlu_faq_entries */
    float weight;   /* the term's whole BM25 contribution to this entry */
};

/* The index: read-only once built. */
static struct {
    uint32_t nterms;
    uint32_t mask;        /* the slot table's size - 1 (a power of two, >= 2 nterms) */
    uint64_t *key;        /* nterms: each term's key (term_key) */
    uint32_t *slot;       /* by key: the term's index + 1; 0 empty */
    uint32_t *start;      /* nterms + 1: a term's postings in post */
    struct posting *post; /* by term, then by entry */
} faq;

static pthread_once_t faq_once = PTHREAD_ONCE_INIT;

/* ---- terms ---------------------------------------------------------------------------------- */

static const char *const STOP_WORDS[] = {
    "a",  "an",  "the", "is",   "are",   "do",   "does", "i",   "my",
    "me", "you", "to",  "of",   "for",   "what", "how",  "can", "it",
    "in", "on",  "be",  "will", "there", "with", "and",  "or",  "whats", /* what's, as normalized */
};

/* 吗 呢 的 了 啊 吧 我 是 么 */
static const uint32_t PARTICLES[] = {0x5417, 0x5462, 0x7684, 0x4E86, 0x554A,
                                     0x5427, 0x6211, 0x662F, 0x4E48};

/* Question words: two characters that ask, not say what about (什么时候 is three bigrams). */
static const char *const STOP_BIGRAMS[] = {
    "什么", "么时", "时候", "怎么", "么办", "么样", "多少",
    "为什", "哪里", "哪些", "在哪", "到哪", "有什", "少钱",
};

static bool stop_bigram(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof STOP_BIGRAMS / sizeof STOP_BIGRAMS[0]; i++) {
        if (strlen(STOP_BIGRAMS[i]) == len && memcmp(STOP_BIGRAMS[i], s, len) == 0) return true;
    }
    return false;
}

static bool stop_word(const char *w, size_t len)
{
    for (size_t i = 0; i < sizeof STOP_WORDS / sizeof STOP_WORDS[0]; i++) {
        if (strlen(STOP_WORDS[i]) == len && memcmp(STOP_WORDS[i], w, len) == 0) return true;
    }
    return false;
}

static bool particle(uint32_t cp)
{
    for (size_t i = 0; i < sizeof PARTICLES / sizeof PARTICLES[0]; i++) {
        if (PARTICLES[i] == cp) return true;
    }
    return false;
}

static bool ends(const char *w, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(w + len - n, suffix, n) == 0;
}

/*
 * The length of w's stem: a plural s, then -ing or -ed, then a final e dropped, only from
 * words long enough to keep a stem (fees: fee; charges, charged, charge: charg; locking:
 * lock). Crude next to Porter's, but the same on both sides, which is all a match needs.
 */
static size_t stem(const char *w, size_t len)
{
    if (len > 3 && w[len - 1] == 's' && w[len - 2] != 's' && w[len - 2] != 'u') len--;
    if (len > 5 && ends(w, len, "ing")) {
        len -= 3;
    } else if (len > 4 && ends(w, len, "ed")) {
        len -= 2;
    }
    if (len > 4 && w[len - 1] == 'e') len--;
    return len;
}

/* A term's key: FNV-1a of its bytes, its kind in the top two bits. */
static uint64_t term_key(enum term_kind kind, const char *s, size_t len)
{
    uint64_t h = wx_fnv1a64(WX_FNV1A64_START, s, len);
    return (h & ~(3ull << 62)) | (uint64_t)kind << 62;
}

static enum term_kind key_kind(uint64_t key)
{
    return (enum term_kind)(key >> 62);
}

/*
 * The terms of t, in order, into out (at most cap; FAQ_QUERY_TERMS_MAX is always enough);
 * returns how many. Reads only within t->s[0 .. NLU_TEXT_MAX] and t->tok[0 .. NLU_TOKENS_MAX),
 * whatever t holds: a token outside the text is skipped.
 */
static size_t terms_of(const struct nlu_text *t, uint64_t *out, size_t cap)
{
    size_t ntok = t->ntok < NLU_TOKENS_MAX ? t->ntok : NLU_TOKENS_MAX;
    size_t len = t->len < NLU_TEXT_MAX ? t->len : NLU_TEXT_MAX;
    size_t n = 0;
    for (size_t i = 0; i < ntok && n < cap; i++) {
        const struct nlu_token *k = &t->tok[i];
        if (k->len == 0 || (size_t)k->off + k->len > len) continue;
        const char *s = t->s + k->off;
        if (k->kind == TOK_WORD) {
            size_t wlen = k->len;
            if (stop_word(s, wlen)) continue;
            out[n++] = term_key(TERM_WORD, s, stem(s, wlen));
        } else if (k->kind == TOK_HAN) {
            if (!particle(k->cp)) out[n++] = term_key(TERM_CHAR, s, k->len);
            const struct nlu_token *next = k + 1;
            if (i + 1 < ntok && n < cap && next->kind == TOK_HAN && next->off == k->off + k->len &&
                (size_t)next->off + next->len <= len &&
                !stop_bigram(s, (size_t)k->len + next->len)) {
                out[n++] = term_key(TERM_BIGRAM, s, (size_t)k->len + next->len);
            }
        }
    }
    return n;
}

/* The index of the term with key, or UINT32_MAX. */
static uint32_t term_find(uint64_t key)
{
    for (uint32_t j = (uint32_t)key & faq.mask;; j = (j + 1) & faq.mask) {
        uint32_t ix = faq.slot[j];
        if (ix == 0) return UINT32_MAX;
        if (faq.key[ix - 1] == key) return ix - 1;
    }
}

/* ---- the index ----------------------------------------------------------------------------- */

/* A term in an entry, tf times. */
struct occurrence {
    uint64_t key;
    uint32_t entry, tf;
};

static int cmp_occurrence(const void *a, const void *b)
{
    const struct occurrence *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

struct occurrences {
    struct occurrence *v;
    size_t n, cap;
};

/*
 * Appends each distinct term of entry e's questions, with its count, to occ; returns the
 * entry's length in terms. terms is scratch of *cap keys, grown as needed.
 */
static size_t entry_terms(unsigned e, struct nlu_text *t, uint64_t **terms, size_t *cap,
                          struct occurrences *occ)
{
    const struct nlu_faq_entry *fe = &nlu_faq_entries[e];
    size_t m = 0;
    for (size_t q = 0; q < fe->nquestions; q++) {
        if (m + FAQ_QUERY_TERMS_MAX > *cap) {
            *cap = 2 * (m + FAQ_QUERY_TERMS_MAX);
            *terms = wx_reallocarray(*terms, *cap, sizeof **terms);
        }
        nlu_normalize(fe->questions[q], strlen(fe->questions[q]), t);
        m += terms_of(t, *terms + m, FAQ_QUERY_TERMS_MAX);
    }
    qsort(*terms, m, sizeof **terms, nlu_cmp_u64);
    for (size_t i = 0, j; i < m; i = j) {
        for (j = i + 1; j < m && (*terms)[j] == (*terms)[i]; j++)
            ;
        if (occ->n == occ->cap) {
            occ->cap = occ->cap ? 2 * occ->cap : 4096;
            occ->v = wx_reallocarray(occ->v, occ->cap, sizeof *occ->v);
        }
        occ->v[occ->n++] = (struct occurrence){(*terms)[i], e, (uint32_t)(j - i)};
    }
    return m;
}

/* The postings of the terms in occ (sorted by key, then entry), weighted by BM25. */
static void index_fill(const struct occurrences *occ, const size_t *length, double avg_length)
{
    double n = (double)nlu_faq_nentries;
    uint32_t term = 0;
    for (size_t i = 0, j; i < occ->n; i = j) {
        for (j = i + 1; j < occ->n && occ->v[j].key == occ->v[i].key; j++)
            ;
        double df = (double)(j - i);
        double idf = log(1 + (n - df + 0.5) / (df + 0.5));
        double kind = key_kind(occ->v[i].key) == TERM_CHAR ? FAQ_CHAR_WEIGHT : 1;
        faq.key[term] = occ->v[i].key;
        faq.start[term] = (uint32_t)i;
        for (size_t p = i; p < j; p++) {
            double tf = occ->v[p].tf;
            double norm = 1 - BM25_B + BM25_B * (double)length[occ->v[p].entry] / avg_length;
            faq.post[p].entry = (uint16_t)occ->v[p].entry;
            faq.post[p].weight = (float)(kind * idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * norm));
        }
        term++;
    }
    faq.start[term] = (uint32_t)occ->n;
    assert(term == faq.nterms);
    for (uint32_t k = 0; k < faq.nterms; k++) {
        uint32_t j = (uint32_t)faq.key[k] & faq.mask;
        while (faq.slot[j] != 0)
            j = (j + 1) & faq.mask;
        faq.slot[j] = k + 1;
    }
}

/* Builds the index from the compiled-in entries (once: pthread_once). */
static void index_build(void)
{
    size_t n = nlu_faq_nentries;
    assert(n >= 1);
    assert(n <= NLU_FAQ_ENTRIES_MAX);
    struct nlu_text *t = wx_malloc(sizeof *t);
    uint64_t *terms = NULL;
    size_t terms_cap = 0, total = 0;
    size_t *length = wx_calloc(n, sizeof *length);
    struct occurrences occ = {0};
    for (unsigned e = 0; e < n; e++) {
        length[e] = entry_terms(e, t, &terms, &terms_cap, &occ);
        total += length[e];
    }
    if (occ.n > 0) qsort(occ.v, occ.n, sizeof *occ.v, cmp_occurrence);
    assert(occ.n < UINT32_MAX);
    uint32_t nterms = 0;
    for (size_t i = 0; i < occ.n; i++)
        nterms += i == 0 || occ.v[i].key != occ.v[i - 1].key;
    uint32_t nslots = 1;
    while (nslots < 2 * nterms + 2)
        nslots *= 2;
    faq.nterms = nterms;
    faq.mask = nslots - 1;
    faq.key = wx_calloc(nterms + 1, sizeof *faq.key);
    faq.slot = wx_calloc(nslots, sizeof *faq.slot);
    faq.start = wx_calloc(nterms + 1, sizeof *faq.start);
    faq.post = wx_calloc(occ.n + 1, sizeof *faq.post);
    index_fill(&occ, length, total > 0 ? (double)total / (double)n : 1);
    free(occ.v);
    free(length);
    free(terms);
    free(t);
}

/* ---- search --------------------------------------------------------------------------------- */

size_t nlu_faq_count(void)
{
    return nlu_faq_nentries;
}

/*
 * The distinct terms of the index among keys, as term indexes into ids (in first-seen
 * order); returns how many. A term said twice counts once, as BM25 without query weights.
 */
static size_t query_terms(const uint64_t *keys, size_t nkeys, uint32_t *ids)
{
    uint32_t seen[2 * FAQ_QUERY_TERMS_MAX]; /* term index + 1; 0 empty */
    uint32_t mask = 1;
    while (mask + 1 < 2 * nkeys)
        mask = 2 * mask + 1;
    memset(seen, 0, (mask + 1) * sizeof seen[0]);
    size_t n = 0;
    for (size_t i = 0; i < nkeys; i++) {
        uint32_t id = term_find(keys[i]);
        if (id == UINT32_MAX) continue;
        uint32_t j = (id * 0x9E3779B1u) & mask;
        while (seen[j] != 0 && seen[j] != id + 1)
            j = (j + 1) & mask;
        if (seen[j] != 0) continue;
        seen[j] = id + 1;
        ids[n++] = id;
    }
    return n;
}

size_t nlu_faq_search(const struct nlu_text *t, struct nlu_faq_hit *out, size_t cap)
{
    assert(t != NULL);
    pthread_once(&faq_once, index_build);
    if (cap == 0) return 0;
    uint64_t keys[FAQ_QUERY_TERMS_MAX];
    uint32_t ids[FAQ_QUERY_TERMS_MAX];
    size_t nids = query_terms(keys, terms_of(t, keys, FAQ_QUERY_TERMS_MAX), ids);
    if (nids == 0) return 0;

    float score[NLU_FAQ_ENTRIES_MAX];
    size_t n = nlu_faq_nentries;
    memset(score, 0, n * sizeof score[0]);
    for (size_t i = 0; i < nids; i++) {
        for (uint32_t p = faq.start[ids[i]]; p < faq.start[ids[i] + 1]; p++)
            score[faq.post[p].entry] += faq.post[p].weight;
    }
    /* The best cap entries over the threshold, kept sorted; ties to the earlier entry. */
    size_t nhit = 0;
    for (unsigned e = 0; e < n; e++) {
        float s = score[e];
        if (s < FAQ_SCORE_MIN || (nhit == cap && !(s > out[cap - 1].score))) continue;
        size_t at = nhit < cap ? nhit++ : cap - 1;
        for (; at > 0 && out[at - 1].score < s; at--)
            out[at] = out[at - 1];
        out[at] = (struct nlu_faq_hit){.entry = e, .score = s};
    }
    return nhit;
}

const char *nlu_faq_id(unsigned entry)
{
    assert(entry < nlu_faq_nentries);
    return nlu_faq_entries[entry].id;
}

const char *nlu_faq_answer(unsigned entry, enum wx_chat_lang lang)
{
    assert(entry < nlu_faq_nentries);
    const struct nlu_faq_entry *e = &nlu_faq_entries[entry];
    return lang == WX_CHAT_EN ? e->answer_en : e->answer_zh;
}
