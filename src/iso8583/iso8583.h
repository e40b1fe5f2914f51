/*
 * iso8583.h - the card switch's door: the ISO 8583:1987 message codec, the issuer host that
 * maps messages to engine commands and decisions to responses, and the TCP server.
 *
 * Codec. A decoded message is dialect-free: every field is held as its text (n, an, ans, z:
 * the characters; b: the raw bytes), so the host never cares how the switch packs numbers.
 * Each dialect is one table of field specs plus its way of writing the MTI, the bitmaps and
 * the length prefixes (ascii87: ASCII everything and hex bitmaps; ascii87b: the same with
 * binary bitmaps; bcd87: BCD MTI, numerics and prefixes, binary bitmaps). Unpacking checks
 * every field against its spec and never reads past the input.
 */
#ifndef WX_ISO8583_ISO8583_H
#define WX_ISO8583_ISO8583_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>

#define WX_ISO_FIELDS   128  /* fields 1..128; field 1 is the secondary bitmap */
#define WX_ISO_MSG_MAX  4096 /* largest packed message (iso8583.frame_max may lower it) */
#define WX_ISO_DATA_MAX 8192 /* decoded field text of one message (BCD doubles digits) */

enum wx_iso_dialect {
    WX_ISO_ASCII87 = 0,  /* moov-io Spec87ASCII, jPOS ISO87APackager */
    WX_ISO_ASCII87B = 1, /* jPOS ISO87APackagerBBitmap, npm iso_8583 */
    WX_ISO_BCD87 = 2,    /* jPOS ISO87BPackager */
};

/* Parses "ascii87" / "ascii87b" / "bcd87". Returns 0, or -1 for an unknown name. */
int wx_iso_dialect_parse(const char *name, enum wx_iso_dialect *out);

/* The dialect's name as wx_iso_dialect_parse accepts it ("?" for an invalid value). */
const char *wx_iso_dialect_name(enum wx_iso_dialect d);

/*
 * A decoded message. Field values live in data[]; off/len locate them. Lengths count
 * characters for n/an/ans/z/x+n fields and bytes for b fields, whatever the dialect. Use
 * the functions below rather than the members; wx_iso_init is cheap (data[] is not cleared).
 */
struct wx_iso_msg {
    uint16_t mti; /* as a decimal number: 0100 -> 100 */
    /* The bitmap in wire order: field i is bit 0x80 >> ((i-1) % 8) of byte (i-1) / 8. Bit 1
     * (the secondary bitmap) is set by unpack when the message carried one, so a re-pack is
     * byte-identical; pack writes the secondary bitmap when bit 1 or a field > 64 is set. */
    uint8_t present[(WX_ISO_FIELDS + 1 + 7) / 8];
    struct {
        uint16_t off, len;
    } field[WX_ISO_FIELDS + 1]; /* index = field number; [0] and [1] unused */
    uint16_t used;              /* bytes of data[] in use */
    uint8_t data[WX_ISO_DATA_MAX];
};

/* Why unpacking failed. */
struct wx_iso_error {
    int field;       /* the field that failed (0: the MTI, a bitmap, size or trailing bytes) */
    const char *why; /* a static description: "length prefix not numeric", ... */
    bool mti_read;   /* true when the MTI was read before the failure (m->mti holds it) */
};

/* Empties m and sets its MTI. */
void wx_iso_init(struct wx_iso_msg *m, uint16_t mti);

/*
 * Sets field n (2..128) to len bytes of value, checked against the field's spec (type and
 * length; for fixed n fields a shorter value is NOT padded: callers format exactly).
 * Returns 0, or -1 when the value does not fit the spec or the message.
 */
int wx_iso_set(struct wx_iso_msg *m, int n, const void *value, size_t len);
int wx_iso_set_str(struct wx_iso_msg *m, int n, const char *value);

bool wx_iso_has(const struct wx_iso_msg *m, int n);

/* The value of field n and its length, or NULL when absent. Not NUL-terminated. */
const uint8_t *wx_iso_get(const struct wx_iso_msg *m, int n, size_t *len);

/* Copies field n into out as a NUL-terminated string; false when absent or too long. */
bool wx_iso_get_str(const struct wx_iso_msg *m, int n, char *out, size_t cap);

/* Removes field n. */
void wx_iso_unset(struct wx_iso_msg *m, int n);

/*
 * Decodes len bytes (one message, framing already removed) into *m. Returns 0, or -1 with
 * *err filled: a message over WX_ISO_MSG_MAX, a truncated MTI/bitmap/prefix/field, a
 * non-numeric MTI or prefix, a length over the field's maximum, a character the field's
 * type does not allow (n: digits; an: letters, digits, space; ans: printable ASCII; z:
 * digits and '='), bad hex or BCD, or bytes left after the last field. Never reads outside
 * in[0..len). On failure *m holds what was decoded so far (m->mti when err->mti_read).
 */
int wx_iso_unpack(enum wx_iso_dialect d, const uint8_t *in, size_t len, struct wx_iso_msg *m,
                  struct wx_iso_error *err);

/*
 * Encodes m into out[0..cap). The secondary bitmap is written when a field above 64 (or
 * bit 1) is present, and always in ascii87b (the npm iso_8583 format). Returns 0 and *len,
 * or -1 when the message exceeds cap or WX_ISO_MSG_MAX, the MTI exceeds 9999 or a field's
 * length breaks its spec (characters are checked by wx_iso_set and wx_iso_unpack, the only
 * ways values get in). b fields go out as hex in the ASCII dialects (LL/LLL count bytes).
 */
int wx_iso_pack(enum wx_iso_dialect d, const struct wx_iso_msg *m, uint8_t *out, size_t cap,
                size_t *len);

/* Prints the MTI and each field, one per line ("  2  n..19  622588******1234"), with the
 * PAN (2) and track 2 (35) masked and PIN/EMV data (52, 55) shown only by length. */
void wx_iso_print(const struct wx_iso_msg *m, FILE *out);

/* ======================================================================================
 * Host: requests to engine commands, engine results to responses (src/iso8583/host.c).
 *
 * Pure mapping, no I/O: the adapter builds commands, the engine decides, the adapter turns
 * the result into the response. Everything the response needs is re-derived from the
 * request, so the caller keeps no state between the two calls.
 *
 * Idempotency key (both the request's own and the original's named by field 90):
 *     "MMMM:SSSSSS:DDDDDDDDDD:A:T"
 * MMMM the MTI with its repeat digit cleared (0101 -> 0100), S the STAN (11), D the
 * transmission date-time (7), A the acquirer id (32, leading zeros stripped: field 90 pads
 * it to 11 digits), T the terminal id (41, trailing blanks stripped). Field 90 carries the
 * original's MTI, STAN, field 7 and acquirer; the terminal is the reversal's own 41 (a
 * reversal comes from the terminal of its original). A repeat (last MTI digit 1) therefore
 * has its original's key, and the engine answers it with the first answer. RRN (37) is not
 * used: not every acquirer sets it, and field 90 does not carry it.
 *
 * Response codes (field 39) from engine reasons:
 *     00 approved; on reversals also ALREADY_REVERSED (a repeated reversal: applied once)
 *     05 WRONG_CVV (UnionPay: cardholder verification failed)
 *     12 ALREADY_REVERSED / HOLD_CLOSED on non-reversals (a late original after its
 *        reversal, a clearing of a closed hold), HOLD_CLOSED on reversals, INVALID_CURRENCY,
 *        a currency with no CNY billing amount (49 != 156 and 51 != 156), an unsupported
 *        processing code
 *     13 INVALID_AMOUNT, EXCEEDS_ORIGINAL
 *     14 CARD_NOT_FOUND
 *     25 ORIGINAL_NOT_FOUND (the reversal is remembered: a late original gets 12)
 *     30 INVALID_FIELD, and requests missing or garbling a field the mapping needs
 *     41 CARD_LOST        43 CARD_STOLEN
 *     51 INSUFFICIENT_CREDIT
 *     54 CARD_EXPIRED, WRONG_EXPIRY
 *     57 CARD_LOCKED (frozen by the cardholder: not permitted to cardholder)
 *     61 BALANCE_OVERFLOW (the amount would leave the account's range)
 *     62 CARD_NOT_ACTIVATED, CARD_CLOSED (restricted card)
 *     91 CAPACITY (a table is full: the switch may stand in)
 *     94 DUPLICATE_MISMATCH, and a non-repeat 01xx/02xx whose key was already answered
 *     96 any other reason (account/customer reasons cannot come from card messages)
 * 59 and 65 are reserved for the risk and cardholder-control stages, not yet in the engine.
 * ====================================================================================== */

#include "keys/keys.h"

/* What to do with a request after wx_iso_host_request. */
enum wx_iso_host_action {
    WX_ISO_HOST_SUBMIT = 0,   /* cmd is filled: decide it, then call wx_iso_host_answer */
    WX_ISO_HOST_ANSWERED = 1, /* resp is complete (0810, or 30/12/13 from mapping): send it */
    WX_ISO_HOST_DROP = 2,     /* not a request this host answers (a response, unknown MTI) */
};

/*
 * Maps one decoded request. now_ms is the host's clock (UTC ms), the command's time.
 * Always starts resp (MTI + 10 with the echoed fields 3, 4, 6, 7, 11, 12, 13, 32, 37, 41,
 * 42, 49, 51, 70, 90, 95 that the request carries). Returns an enum wx_iso_host_action.
 * Never fails otherwise: bad content becomes an ANSWERED response with 30 or 12.
 */
int wx_iso_host_request(const wx_keys_t *keys, const struct wx_iso_msg *req, int64_t now_ms,
                        struct wx_cmd *cmd, struct wx_iso_msg *resp);

/*
 * Completes resp for a SUBMIT request from the engine's result: 39 from the table above,
 * 38 (approval code, 6 digits) on approvals, 54 (available credit) on balance inquiries.
 */
void wx_iso_host_answer(const struct wx_iso_msg *req, const struct wx_cmd *cmd,
                        const struct wx_result *res, struct wx_iso_msg *resp);

/*
 * The answer to a message that failed to decode: 30 when its MTI is a request MTI and its
 * STAN (11) was read, built from whatever fields were decoded before the failure (this
 * relies on wx_iso_unpack leaving the fields it decoded in m when it fails, as it does).
 * Returns 0, or -1 when there is nothing to answer (the connection should be closed).
 */
int wx_iso_host_format_error(const struct wx_iso_msg *partial, const struct wx_iso_error *err,
                             struct wx_iso_msg *resp);

/* The response code for an engine reason on a request of MTI mti (see the table). */
const char *wx_iso_response_code(uint16_t mti, uint8_t reason);

/*
 * The fields a terminal's acquirer sends with every message, for tools that play a terminal:
 * transmission time (7, written to `when` as MMDDhhmmss too), STAN (11), local time and
 * date (12, 13), acquirer (32), RRN (37: date + STAN), terminal (41, 8 characters) and
 * merchant (42, 15 characters) ids. stan is 1..999999.
 */
void wx_iso_set_terminal_fields(struct wx_iso_msg *m, time_t now, unsigned stan,
                                const char *terminal_id, const char *merchant_id, char when[11]);

/* ======================================================================================
 * Server: the TCP door for the card switch (src/iso8583/server.c), on a libevent loop.
 *
 * Frames are read per connection (iso8583.framing), decoded, mapped and submitted to the
 * ledger; answers leave in request order, each only once its journal row is durable. A
 * connection that sends an oversized or broken frame is closed; one that stops reading its
 * answers is not read from until it drains them; others are unaffected.
 * ====================================================================================== */

enum wx_iso_framing {
    WX_ISO_FRAME_LEN2 = 0,   /* 2-byte big-endian body length */
    WX_ISO_FRAME_ASCII4 = 1, /* 4 ASCII decimal digits */
};

/* The header's size (2 or 4 bytes). */
size_t wx_iso_frame_header_len(enum wx_iso_framing f);
/* Writes the header of a frame of len body bytes (len < 10000 for ascii4, < 65536 for
 * len2: both above WX_ISO_FRAME_MAX); returns its size. */
size_t wx_iso_frame_header(enum wx_iso_framing f, size_t len, uint8_t out[4]);
/* Reads a header of wx_iso_frame_header_len bytes: 0 with *len, or -1 when an ascii4
 * header is not 4 digits. */
int wx_iso_frame_length(enum wx_iso_framing f, const uint8_t *head, size_t *len);

struct wx_iso_server_options {
    const char *listen;          /* HOST:PORT (iso8583.listen) */
    enum wx_iso_dialect dialect; /* iso8583.dialect */
    enum wx_iso_framing framing; /* iso8583.framing */
    size_t frame_max;            /* iso8583.frame_max, WX_ISO_FRAME_MIN..WX_ISO_FRAME_MAX */
    unsigned max_connections;    /* iso8583.max_connections */
    unsigned idle_seconds;       /* iso8583.idle_seconds */
};

struct wx_config;
struct wx_ledger;

/* Fills opt from the iso8583.* keys. Returns 0, or -1 with a message in err. */
int wx_iso_server_options_from_config(const struct wx_config *cfg,
                                      struct wx_iso_server_options *opt, char *err, size_t errlen);

typedef struct wx_hub wx_hub_t;
typedef struct iso_server wx_iso_server_t;

/*
 * Listens on opt->listen on the hub's loop and prints "iso8583 listening on ADDR" to stdout.
 * The hub drives it from then on: answers leave as their decisions become durable, and on
 * shutdown the server stops accepting and reading and hands out every answer it owes.
 * NULL with a message in err when it cannot listen (address in use, ...).
 */
wx_iso_server_t *wx_iso_server_start(wx_hub_t *hub, const struct wx_iso_server_options *opt,
                                     char *err, size_t errlen);
void wx_iso_server_free(wx_iso_server_t *srv);

#endif
