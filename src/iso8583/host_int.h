/*
 * host_int.h - what the host's request mapping (host.c) and its response building
 * (host_resp.c) share: the MTI classes and bounded readers of decoded fields.
 *
 * Private to src/iso8583; the public interface is the host section of iso8583.h.
 */
#ifndef WX_ISO8583_HOST_INT_H
#define WX_ISO8583_HOST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iso8583/iso8583.h"

#define WX_ISO_CNY_TEXT "156" /* field 49/51 value of the currency the ledger books */

/* MTI arithmetic on the decimal form (0100 -> 100). */
static inline unsigned wx_iso_mti_class(uint16_t mti)
{
    return (mti / 100u) % 10u; /* 1 authorization, 2 financial, 4 reversal, 8 network */
}
static inline unsigned wx_iso_mti_function(uint16_t mti)
{
    return (mti / 10u) % 10u; /* 0 request, 2 advice */
}
static inline bool wx_iso_mti_is_repeat(uint16_t mti)
{
    return mti % 10u == 1u;
}
static inline uint16_t wx_iso_mti_base(uint16_t mti)
{
    return (uint16_t)(mti - mti % 10u); /* 0101 -> 0100 */
}

/* True for the requests this host answers: 010x, 012x, 020x, 022x, 040x, 042x, 080x with
 * the last digit 0 or 1. */
bool wx_iso_host_is_request(uint16_t mti);

/* Starts resp for req: MTI + 10 (repeat digit cleared) and the echoed fields. */
void wx_iso_host_start_response(const struct wx_iso_msg *req, struct wx_iso_msg *resp);

/* Sets field 39. code is 2 characters. */
void wx_iso_host_set_code(struct wx_iso_msg *resp, const char *code);

/* Copies field n if it is exactly len characters, all digits, into out (NUL-terminated,
 * cap > len). False when absent, of another length, or not all digits. */
bool wx_iso_field_digits(const struct wx_iso_msg *m, int n, size_t len, char *out, size_t cap);

/* Reads an n 12 amount field into *out. False when absent or not 12 digits. */
bool wx_iso_field_amount(const struct wx_iso_msg *m, int n, int64_t *out);

/* Parses exactly len digits at p into *out (len <= 18). False on a non-digit. */
bool wx_iso_parse_digits(const uint8_t *p, size_t len, int64_t *out);

#endif
