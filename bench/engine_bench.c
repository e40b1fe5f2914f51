/*
 * engine_bench.c - the authorization core end to end: memory per card, durable decisions per
 * second with their acknowledgement latency, and replay speed.
 *
 * It exists to hold the core to the figures DESIGN.md promises ("The core"): 1,000,000 cards
 * in at most 256 bytes each, at least 500,000 durable decisions/s on this 2-core machine and a
 * replay of at least 1,000,000 events/s, measured the way the ISO 8583 host will use the
 * ledger (submit, flush once per loop turn, act on an answer only once its seq is durable).
 *
 * Steps, all in a temporary directory removed at the end:
 *   1. wx_issuing_seed creates the cards through the ledger (real PANs, keys and journal
 *      rows); resident memory before and after gives bytes per card.
 *   2. A mix of 70% authorizations, 20% captures of earlier approved holds, 5% reversals and
 *      5% repayments runs for BENCH_SECONDS or BENCH_COMMANDS, whichever comes first. Each
 *      command's submit time is kept in a ring indexed by seq; when durable_seq moves, every
 *      seq it passed gets its latency (submit -> durability observed by the engine thread).
 *   3. The journal is replayed from event 0 (seeding included) into a fresh engine.
 *
 * Output: BENCH lines on stdout (DESIGN.md format); notes on stderr.
 * Environment: WX_BENCH_CARDS overrides the card count (for quick profiling runs);
 * WX_BENCH_KEEP=1 keeps the temporary directory (its path is printed) to profile replay.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/engine.h"
#include "issuing/issuing.h"
#include "journal/journal.h"
#include "keys/keys.h"
#include "ledger/ledger.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#define BENCH_CARDS      1000000u
#define BENCH_SECONDS    5
#define BENCH_COMMANDS   2000000u
#define FLUSH_EVERY      256u
#define SEQ_RING         (1u << 20) /* submit times by seq; more than two full batches */
#define FOLLOW_RING      (1u << 21) /* approved holds waiting for a capture or reversal */
#define BENCH_BIN        "622588"
#define BENCH_PAN_LENGTH 16

/* The whole benchmark's state. */
struct bench {
    char dir[256];  /* temporary directory */
    char db[320];   /* dir/bench.db */
    char pans[320]; /* dir/pans.tsv, written by the seeding */
    struct wx_ledger_options opt;
    wx_ledger_t *ledger;
    uint32_t n_cards;
    uint8_t (*refs)[WX_REF_LEN]; /* card references, card id - 1 */
    uint64_t rng;                /* xorshift64 state */
    int64_t *submit_us;          /* SEQ_RING submit times, indexed by seq */
    uint32_t *lat_us;            /* one latency per acknowledged decision */
    uint64_t n_lat;
    uint64_t *holds; /* FOLLOW_RING counters of approved, not yet followed holds */
    uint64_t holds_head, holds_tail;
    uint64_t counter;  /* commands made: the unique part of each key */
    uint64_t acked_to; /* highest seq whose latency was taken */
};

static uint64_t rng_next(struct bench *b)
{
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return x;
}

/* Resident set size: the second field of /proc/self/statm, in pages. -1 on failure. */
static long rss_bytes(void)
{
    char buf[128];
    FILE *f = fopen("/proc/self/statm", "re");
    if (f == NULL) return -1;
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    if (line == NULL) return -1;
    char *end;
    strtoul(buf, &end, 10); /* total size */
    unsigned long resident = strtoul(end, &end, 10);
    return (long)resident * sysconf(_SC_PAGESIZE);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Writes "<prefix><n>" into key (no snprintf on the hot path); returns its length. */
static uint8_t make_key(char key[WX_KEY_MAX], char prefix, uint64_t n)
{
    char digits[24];
    int d = 0;
    do {
        digits[d++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    /* A realistic key length: ISO 8583 keys (STAN + terminal + date) are ~30 bytes. */
    static const char pad[] = "20261127-T0012345-";
    key[0] = prefix;
    memcpy(key + 1, pad, sizeof pad - 1);
    int len = 1 + (int)sizeof pad - 1;
    while (d > 0)
        key[len++] = digits[--d];
    return (uint8_t)len;
}

static void fill_merchant(struct wx_merchant *m)
{
    m->mcc = 5411;
    m->channel = WX_CHANNEL_POS;
    memcpy(m->country, "156", 4);
    memcpy(m->name, "WXBANK BENCH SUPERMARKET", 25);
    memcpy(m->city, "SHANGHAI", 9);
    memcpy(m->terminal_id, "T0012345", 9);
    memcpy(m->merchant_id, "M000000012345", 14);
}

/* Reads the PAN file the seeding wrote and turns each PAN into its card reference. */
static int load_refs(struct bench *b, const wx_keys_t *keys)
{
    FILE *f = fopen(b->pans, "re");
    char line[128];
    uint32_t n = 0;
    if (f == NULL) return -1;
    b->refs = wx_calloc(b->n_cards, WX_REF_LEN);
    while (n < b->n_cards && fgets(line, sizeof line, f) != NULL) {
        char *tab = strchr(line, '\t');
        if (tab == NULL) break;
        *tab = '\0';
        wx_card_ref(keys, line, b->refs[n++]);
    }
    fclose(f);
    return n == b->n_cards ? 0 : -1;
}

/* Step 1: cards through the ledger, resident memory around them. */
static int seed_cards(struct bench *b)
{
    static const uint8_t master[32] = {0x42, 0x17, 0x99};
    char err[256];
    wx_keys_t *keys = wx_keys_new(master);
    FILE *pans = fopen(b->pans, "we");
    int rc = -1;
    if (pans == NULL) goto out;
    long before = rss_bytes();
    int64_t t0 = wx_mono_us();
    if (wx_issuing_seed(b->ledger, keys, b->n_cards, BENCH_BIN, BENCH_PAN_LENGTH, pans, err,
                        sizeof err) != 0) {
        fprintf(stderr, "engine_bench: %s\n", err);
        goto out;
    }
    int64_t t1 = wx_mono_us();
    long after = rss_bytes();
    struct wx_engine_stats st;
    wx_engine_stats(wx_ledger_engine(b->ledger), &st);
    fprintf(stderr, "# seeded %u cards in %.1f s; engine tables %zu bytes (%.0f per card)\n",
            b->n_cards, (double)(t1 - t0) / 1e6, st.bytes, (double)st.bytes / b->n_cards);
    printf("BENCH engine.bytes_per_card %ld bytes\n", (after - before) / (long)b->n_cards);
    fflush(stdout);
    if (fclose(pans) != 0) {
        pans = NULL;
        goto out;
    }
    pans = NULL;
    rc = load_refs(b, keys);
out:
    if (pans != NULL) fclose(pans);
    wx_keys_free(keys);
    return rc;
}

static void make_authorize(struct bench *b, struct wx_cmd *cmd)
{
    uint64_t r = rng_next(b);
    cmd->kind = WX_CMD_AUTHORIZE;
    cmd->key_len = make_key(cmd->key, 'A', b->counter);
    memcpy(cmd->auth.ref, b->refs[r % b->n_cards], WX_REF_LEN);
    cmd->auth.type = WX_AUTH_PURCHASE;
    cmd->auth.amount = 100 + (int64_t)((r >> 32) % 50000); /* 1 to 500 yuan: most approve */
    cmd->auth.currency = WX_CURRENCY_CNY;
    fill_merchant(&cmd->auth.merchant);
    cmd->auth.merchant.txn_amount = cmd->auth.amount;
    cmd->auth.merchant.txn_currency = WX_CURRENCY_CNY;
}

/* A capture or reversal of the oldest approved hold not yet followed; false when none. */
static bool make_follow(struct bench *b, struct wx_cmd *cmd, uint8_t kind)
{
    if (b->holds_head == b->holds_tail) return false;
    uint64_t orig = b->holds[b->holds_head++ % FOLLOW_RING];
    cmd->kind = kind;
    cmd->key_len = make_key(cmd->key, kind == WX_CMD_CAPTURE ? 'C' : 'R', b->counter);
    cmd->follow.orig_len = make_key(cmd->follow.orig_key, 'A', orig);
    cmd->follow.amount = kind == WX_CMD_CAPTURE ? 100 : 0; /* reversal: everything left */
    cmd->follow.currency = WX_CURRENCY_CNY;
    cmd->follow.final = 1;
    return true;
}

static void make_repayment(struct bench *b, struct wx_cmd *cmd)
{
    uint64_t r = rng_next(b);
    cmd->kind = WX_CMD_REPAYMENT;
    cmd->key_len = make_key(cmd->key, 'P', b->counter);
    cmd->posting.account_id = 1 + (uint32_t)(r % b->n_cards); /* seeding: account i, card i */
    cmd->posting.amount = 10000;
    cmd->posting.currency = WX_CURRENCY_CNY;
}

/* Builds the next command of the mix. */
static void next_command(struct bench *b, struct wx_cmd *cmd, int64_t now_ms)
{
    memset(cmd, 0, sizeof *cmd);
    b->counter++;
    cmd->time_ms = now_ms;
    unsigned pick = (unsigned)(rng_next(b) % 100);
    if (pick >= 70 && pick < 90 && make_follow(b, cmd, WX_CMD_CAPTURE)) return;
    if (pick >= 90 && pick < 95 && make_follow(b, cmd, WX_CMD_REVERSAL)) return;
    if (pick >= 95) {
        make_repayment(b, cmd);
        return;
    }
    make_authorize(b, cmd);
}

/* Takes the latency of every seq that became durable since the last call. */
static void take_acks(struct bench *b)
{
    uint64_t durable = wx_ledger_durable_seq(b->ledger);
    if (durable <= b->acked_to) return;
    int64_t now = wx_mono_us();
    for (uint64_t s = b->acked_to + 1; s <= durable; s++) {
        int64_t t = b->submit_us[s % SEQ_RING];
        if (t != 0) b->lat_us[b->n_lat++] = (uint32_t)(now - t);
    }
    b->acked_to = durable;
}

/* Step 2: the durable mix. Returns the decisions journaled. */
static uint64_t run_mix(struct bench *b, double *seconds)
{
    struct wx_cmd cmd;
    struct wx_result res;
    uint64_t journaled = 0, refused = 0;
    b->acked_to = wx_ledger_durable_seq(b->ledger);
    int64_t t0 = wx_mono_us(), now_ms = wx_now_ms(), end = t0 + BENCH_SECONDS * 1000000LL;
    for (uint32_t i = 0; i < BENCH_COMMANDS; i++) {
        next_command(b, &cmd, now_ms);
        int64_t t = wx_mono_us();
        wx_ledger_submit(b->ledger, &cmd, &res);
        if (res.journaled && !res.repeat) {
            b->submit_us[res.seq % SEQ_RING] = t;
            journaled++;
        } else {
            refused++;
        }
        if (cmd.kind == WX_CMD_AUTHORIZE && res.reason == WX_APPROVED) {
            b->holds[b->holds_tail++ % FOLLOW_RING] = b->counter;
        }
        if (i % FLUSH_EVERY == FLUSH_EVERY - 1) {
            wx_ledger_flush(b->ledger);
            if (t > end) break;
            now_ms = wx_now_ms();
        }
        take_acks(b);
    }
    wx_ledger_flush(b->ledger);
    while (b->acked_to < wx_engine_last_seq(wx_ledger_engine(b->ledger)))
        take_acks(b);
    *seconds = (double)(wx_mono_us() - t0) / 1e6;
    if (refused > 0) fprintf(stderr, "# %" PRIu64 " commands were not journaled\n", refused);
    return journaled;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void report_mix(struct bench *b, uint64_t journaled, double seconds)
{
    qsort(b->lat_us, b->n_lat, sizeof b->lat_us[0], cmp_u32);
    uint32_t p50 = b->n_lat ? b->lat_us[b->n_lat / 2] : 0;
    uint32_t p99 = b->n_lat ? b->lat_us[b->n_lat * 99 / 100] : 0;
    struct wx_journal_stats js;
    wx_ledger_journal_stats(b->ledger, &js);
    fprintf(stderr, "# %" PRIu64 " durable decisions in %.2f s\n", journaled, seconds);
    fprintf(stderr,
            "# journal since open: %" PRIu64 " commits, %" PRIu64 " rows (%.0f bytes"
            " each), %.2f s committing\n",
            js.commits, js.rows, js.rows ? (double)js.bytes / (double)js.rows : 0.0,
            (double)js.commit_us_total / 1e6);
    printf("BENCH engine.decisions_per_s %.0f decisions/s\n", (double)journaled / seconds);
    printf("BENCH engine.ack_p50_us %u us\n", p50);
    printf("BENCH engine.ack_p99_us %u us\n", p99);
    fflush(stdout);
}

/* Step 3: replay everything from event 0. */
static int replay(struct bench *b)
{
    char err[256];
    int64_t t0 = wx_mono_us();
    wx_engine_t *e = wx_ledger_load(&b->opt, false, 0, err, sizeof err);
    int64_t t1 = wx_mono_us();
    if (e == NULL) {
        fprintf(stderr, "engine_bench: replay: %s\n", err);
        return -1;
    }
    uint64_t events = wx_engine_last_seq(e);
    wx_engine_free(e);
    double s = (double)(t1 - t0) / 1e6;
    fprintf(stderr, "# replayed %" PRIu64 " events in %.2f s\n", events, s);
    printf("BENCH engine.replay_events_per_s %.0f events/s\n", (double)events / s);
    fflush(stdout);
    return 0;
}

static void bench_init(struct bench *b)
{
    const char *tmp = getenv("TMPDIR");
    const char *cards = getenv("WX_BENCH_CARDS");
    memset(b, 0, sizeof *b);
    snprintf(b->dir, sizeof b->dir, "%s/wxbench-XXXXXX", tmp ? tmp : "/tmp");
    b->n_cards = cards ? (uint32_t)strtoul(cards, NULL, 10) : BENCH_CARDS;
    if (b->n_cards == 0) b->n_cards = BENCH_CARDS;
    b->rng = 0x9E3779B97F4A7C15ull;
    b->opt.engine = (struct wx_engine_config){.hold_days = 7,
                                              .hold_days_long = 30,
                                              .capture_tolerance_pct = 20,
                                              .idempotency_hours = 72,
                                              .reference_days = 45};
    b->opt.batch_max = WX_BATCH_ROWS_MAX;
    b->opt.snapshot_every = 0; /* snapshots are measured elsewhere: this is the hot path */
}

int main(void)
{
    struct bench b;
    char err[256];
    int rc = 1;
    bench_init(&b);
    if (mkdtemp(b.dir) == NULL) {
        fprintf(stderr, "engine_bench: mkdtemp %s: %s\n", b.dir, strerror(errno));
        return 1;
    }
    snprintf(b.db, sizeof b.db, "%s/bench.db", b.dir);
    snprintf(b.pans, sizeof b.pans, "%s/pans.tsv", b.dir);
    b.opt.db_path = b.db;
    b.ledger = wx_ledger_open(&b.opt, err, sizeof err);
    if (b.ledger == NULL) {
        fprintf(stderr, "engine_bench: %s\n", err);
        goto out;
    }
    if (seed_cards(&b) != 0) goto out;
    b.submit_us = wx_calloc(SEQ_RING, sizeof *b.submit_us);
    b.lat_us = wx_calloc(BENCH_COMMANDS, sizeof *b.lat_us);
    b.holds = wx_calloc(FOLLOW_RING, sizeof *b.holds);
    double seconds = 0;
    uint64_t journaled = run_mix(&b, &seconds);
    report_mix(&b, journaled, seconds);
    wx_ledger_close(b.ledger);
    b.ledger = NULL;
    rc = replay(&b) == 0 ? 0 : 1;
out:
    wx_ledger_close(b.ledger);
    free(b.refs);
    free(b.submit_us);
    free(b.lat_us);
    free(b.holds);
    const char *keep = getenv("WX_BENCH_KEEP");
    if (keep != NULL && strcmp(keep, "1") == 0) {
        fprintf(stderr, "# kept %s\n", b.dir);
    } else {
        nftw(b.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return rc;
}
