/*
 * crash_child.c - the process test_crash kills: a ledger under load that acknowledges only
 * what is durable.
 *
 * Usage: crash_child DB RUN CARDS
 *
 * On the first run (no DB.pans yet) it seeds CARDS cardholders and writes their PANs to
 * DB.pans (renamed into place once durable), then prints "READY". Every run prints
 * "START <journal last seq> <snapshot seq recovery started from>" once the ledger is open,
 * then submits a mix of authorizations, captures, reversals, repayments and a few exact
 * repeats forever, with keys "k<RUN>-<n>" that no other run uses. After each flush it
 * prints "ACK <key> <seq> <reason>" for every journaled answer whose seq is durable, and
 * never before: that is the promise the parent checks against the journal after SIGKILL.
 * Each line goes out with one write(2), so a kill never leaves half a line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/engine.h"
#include "issuing/issuing.h"
#include "keys/keys.h"
#include "ledger/ledger.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#define FLUSH_EVERY   64u    /* commands per loop turn */
#define PENDING_MAX   65536u /* answers waiting for durability */
#define RECENT_MAX    1024u  /* commands kept for exact repeats and follow-ups */
#define SNAPSHOT_ROWS 20000u /* rows between snapshots: several per test */

/* A journaled answer waiting for its seq to become durable. */
struct pending {
    char key[WX_KEY_MAX + 1];
    uint64_t seq;
    uint8_t reason;
};

/* The child's state. */
struct child {
    wx_ledger_t *ledger;
    unsigned run; /* this run's number: part of every key */
    uint32_t n_cards;
    uint8_t (*refs)[WX_REF_LEN];      /* card references, in PAN-file order */
    uint32_t *accounts;               /* account id of each card */
    uint64_t rng;                     /* xorshift64 */
    uint64_t counter;                 /* commands made in this run */
    struct wx_cmd recent[RECENT_MAX]; /* recent commands (for repeats) */
    bool approved_hold[RECENT_MAX];   /* recent[i] is an approved, not followed hold */
    struct pending pending[PENDING_MAX];
    uint32_t pending_head, pending_n;
};

static uint64_t rng_next(struct child *c)
{
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return x;
}

/* Writes one whole line to stdout with one write(2); exits if the pipe is gone. */
static void say(const char *line, size_t len)
{
    ssize_t w;
    do {
        w = write(STDOUT_FILENO, line, len);
    } while (w < 0 && errno == EINTR);
    if (w != (ssize_t)len) _exit(3);
}

static void options(const char *db, struct wx_ledger_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->db_path = db;
    opt->engine.hold_days = 7;
    opt->engine.hold_days_long = 30;
    opt->engine.capture_tolerance_pct = 20;
    opt->engine.idempotency_hours = 72;
    opt->engine.reference_days = 45;
    opt->batch_max = 8192;
    opt->snapshot_every = SNAPSHOT_ROWS;
}

static const uint8_t test_master[32] = {'w', 'x', 'b', 'a', 'n', 'k', '-', 'c', 'r', 'a', 's', 'h'};

/* First run: seeds the cards and publishes their PANs at DB.pans once they are durable. */
static int seed(struct child *c, const wx_keys_t *keys, const char *db, uint32_t n)
{
    char tmp[4096], final[4096], err[256];
    snprintf(tmp, sizeof tmp, "%s.pans.tmp", db);
    snprintf(final, sizeof final, "%s.pans", db);
    FILE *f = fopen(tmp, "we");
    if (f == NULL) return -1;
    int rc = wx_issuing_seed(c->ledger, keys, n, "622588", 16, f, err, sizeof err);
    if (rc != 0) fprintf(stderr, "crash_child: %s\n", err);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = -1;
    if (fclose(f) != 0) rc = -1;
    if (rc == 0 && rename(tmp, final) != 0) rc = -1;
    return rc;
}

/* Loads DB.pans: card references and their accounts. */
static int load_cards(struct child *c, const wx_keys_t *keys, const char *db)
{
    char path[4096], line[128];
    snprintf(path, sizeof path, "%s.pans", db);
    FILE *f = fopen(path, "re");
    if (f == NULL) return -1;
    while (c->n_cards < 100000 && fgets(line, sizeof line, f) != NULL) {
        char *tab = strchr(line, '\t');
        if (tab == NULL) break;
        *tab = '\0';
        c->refs = wx_reallocarray(c->refs, c->n_cards + 1, WX_REF_LEN);
        c->accounts = wx_reallocarray(c->accounts, c->n_cards + 1, sizeof *c->accounts);
        wx_card_ref(keys, line, c->refs[c->n_cards]);
        struct wx_card_view v;
        if (wx_engine_card_by_ref(wx_ledger_engine(c->ledger), c->refs[c->n_cards], &v) != 0) {
            break;
        }
        c->accounts[c->n_cards++] = v.account_id;
    }
    fclose(f);
    return c->n_cards > 0 ? 0 : -1;
}

static void set_key(struct child *c, struct wx_cmd *cmd)
{
    int n = snprintf(cmd->key, sizeof cmd->key, "k%u-%" PRIu64, c->run, c->counter);
    cmd->key_len = (uint8_t)n;
}

static void make_authorize(struct child *c, struct wx_cmd *cmd)
{
    uint64_t r = rng_next(c);
    cmd->kind = WX_CMD_AUTHORIZE;
    memcpy(cmd->auth.ref, c->refs[r % c->n_cards], WX_REF_LEN);
    cmd->auth.type = WX_AUTH_PURCHASE;
    cmd->auth.amount = 100 + (int64_t)((r >> 24) % 3000000); /* up to 30,000 yuan: some decline */
    cmd->auth.currency = WX_CURRENCY_CNY;
    cmd->auth.merchant.mcc = (r >> 8) % 10 == 0 ? 7011 : 5411;
    memcpy(cmd->auth.merchant.name, "CRASH TEST SHOP", 16);
}

/* A capture or reversal of a recent approved hold; false when the pick is not one. */
static bool make_follow(struct child *c, struct wx_cmd *cmd, uint8_t kind)
{
    uint32_t i = (uint32_t)(rng_next(c) % RECENT_MAX);
    if (!c->approved_hold[i]) return false;
    c->approved_hold[i] = false;
    const struct wx_cmd *orig = &c->recent[i];
    cmd->kind = kind;
    cmd->follow.orig_len = orig->key_len;
    memcpy(cmd->follow.orig_key, orig->key, orig->key_len);
    cmd->follow.amount = kind == WX_CMD_CAPTURE ? orig->auth.amount / 2 + 1 : 0;
    cmd->follow.final = (uint8_t)(rng_next(c) & 1);
    cmd->follow.currency = WX_CURRENCY_CNY;
    return true;
}

static void make_repayment(struct child *c, struct wx_cmd *cmd)
{
    uint64_t r = rng_next(c);
    cmd->kind = WX_CMD_REPAYMENT;
    cmd->posting.account_id = c->accounts[r % c->n_cards];
    cmd->posting.amount = 1000 + (int64_t)((r >> 20) % 1000000);
    cmd->posting.currency = WX_CURRENCY_CNY;
}

/* The next command: 5% exact repeats of a recent one (returns false), else a new key. */
static bool next_command(struct child *c, struct wx_cmd *cmd)
{
    unsigned pick = (unsigned)(rng_next(c) % 100);
    uint32_t slot = (uint32_t)(c->counter % RECENT_MAX);
    if (pick < 5 && c->counter > RECENT_MAX) {
        *cmd = c->recent[(slot + 1 + rng_next(c) % (RECENT_MAX - 1)) % RECENT_MAX];
        return false;
    }
    memset(cmd, 0, sizeof *cmd);
    c->counter++;
    set_key(c, cmd);
    cmd->time_ms = wx_now_ms();
    if (pick < 25 && make_follow(c, cmd, WX_CMD_CAPTURE)) return true;
    if (pick < 33 && make_follow(c, cmd, WX_CMD_REVERSAL)) return true;
    if (pick < 40) {
        make_repayment(c, cmd);
    } else {
        make_authorize(c, cmd);
    }
    return true;
}

/* Remembers a new command for repeats and follow-ups. */
static void remember(struct child *c, const struct wx_cmd *cmd, const struct wx_result *res)
{
    uint32_t slot = (uint32_t)(c->counter % RECENT_MAX);
    c->recent[slot] = *cmd;
    c->approved_hold[slot] = cmd->kind == WX_CMD_AUTHORIZE && res->reason == WX_APPROVED;
}

static void ack_durable(struct child *c);

static void push_pending(struct child *c, const struct wx_cmd *cmd, const struct wx_result *res)
{
    if (c->pending_n == PENDING_MAX) { /* too much in flight: wait for the oldest */
        wx_ledger_sync(c->ledger, c->pending[c->pending_head].seq);
        ack_durable(c);
    }
    struct pending *p = &c->pending[(c->pending_head + c->pending_n++) % PENDING_MAX];
    memcpy(p->key, cmd->key, cmd->key_len);
    p->key[cmd->key_len] = '\0';
    p->seq = res->seq;
    p->reason = res->reason;
}

/* Prints ACK lines for the pending answers, in order, while their seq is durable. */
static void ack_durable(struct child *c)
{
    uint64_t durable = wx_ledger_durable_seq(c->ledger);
    char line[128];
    while (c->pending_n > 0) {
        struct pending *p = &c->pending[c->pending_head];
        if (p->seq > durable) break;
        int n = snprintf(line, sizeof line, "ACK %s %" PRIu64 " %u\n", p->key, p->seq,
                         (unsigned)p->reason);
        say(line, (size_t)n);
        c->pending_head = (c->pending_head + 1) % PENDING_MAX;
        c->pending_n--;
    }
}

static _Noreturn void load_loop(struct child *c)
{
    struct wx_cmd cmd;
    struct wx_result res;
    for (;;) {
        for (unsigned i = 0; i < FLUSH_EVERY; i++) {
            bool fresh = next_command(c, &cmd);
            wx_ledger_submit(c->ledger, &cmd, &res);
            if (fresh) remember(c, &cmd, &res);
            if (res.journaled) push_pending(c, &cmd, &res);
        }
        wx_ledger_flush(c->ledger);
        ack_durable(c);
    }
}

int main(int argc, char **argv)
{
    static struct child c;
    struct wx_ledger_options opt;
    char err[256], path[4096], line[128];
    if (argc != 4) {
        fprintf(stderr, "usage: crash_child DB RUN CARDS\n");
        return 2;
    }
    c.run = (unsigned)strtoul(argv[2], NULL, 10);
    c.rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)c.run << 32) ^ (uint64_t)getpid();
    options(argv[1], &opt);
    c.ledger = wx_ledger_open(&opt, err, sizeof err);
    if (c.ledger == NULL) {
        fprintf(stderr, "crash_child: %s\n", err);
        return 1;
    }
    wx_keys_t *keys = wx_keys_new(test_master);
    snprintf(path, sizeof path, "%s.pans", argv[1]);
    if (access(path, F_OK) != 0) {
        if (seed(&c, keys, argv[1], (uint32_t)strtoul(argv[3], NULL, 10)) != 0) return 1;
        say("READY\n", 6);
    }
    int n =
        snprintf(line, sizeof line, "START %" PRIu64 " %" PRIu64 "\n",
                 wx_engine_last_seq(wx_ledger_engine(c.ledger)), wx_ledger_snapshot_seq(c.ledger));
    say(line, (size_t)n);
    if (load_cards(&c, keys, argv[1]) != 0) {
        fprintf(stderr, "crash_child: cannot load the cards from %s\n", path);
        return 1;
    }
    load_loop(&c);
}
