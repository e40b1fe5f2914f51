/*
 * fuzz_iso8583.c - libFuzzer target for the ISO 8583 codec.
 *
 * Every byte of a message comes from the card switch, so unpacking must never read past its
 * input, crash or accept a value its field spec forbids. The input is tried in each dialect;
 * whatever unpacks must pack again (the decoded form is complete), unpack again to the same
 * MTI and fields, and pack a second time to the same bytes (packing is canonical).
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "iso8583/iso8583.h"

static struct wx_iso_msg a, b;
static uint8_t out1[WX_ISO_MSG_MAX], out2[WX_ISO_MSG_MAX];

static void same_fields(const struct wx_iso_msg *x, const struct wx_iso_msg *y)
{
    assert(x->mti == y->mti);
    for (int n = 2; n <= WX_ISO_FIELDS; n++) {
        size_t lx = 0, ly = 0;
        const uint8_t *vx = wx_iso_get(x, n, &lx);
        const uint8_t *vy = wx_iso_get(y, n, &ly);
        assert((vx == NULL) == (vy == NULL));
        if (vx == NULL) continue;
        assert(lx == ly);
        assert(memcmp(vx, vy, lx) == 0);
    }
}

static void one(enum wx_iso_dialect d, const uint8_t *data, size_t size)
{
    struct wx_iso_error err;
    if (wx_iso_unpack(d, data, size, &a, &err) != 0) {
        assert(err.why != NULL);
        return;
    }
    size_t n1 = 0, n2 = 0;
    if (wx_iso_pack(d, &a, out1, sizeof out1, &n1) != 0) {
        /* Only ascii87b may grow (it always adds the secondary bitmap) past the maximum. */
        assert(d == WX_ISO_ASCII87B && size + 8 > WX_ISO_MSG_MAX);
        return;
    }
    assert(n1 == size || (d == WX_ISO_ASCII87B && n1 == size + 8));
    int rc = wx_iso_unpack(d, out1, n1, &b, &err);
    assert(rc == 0);
    same_fields(&a, &b);
    rc = wx_iso_pack(d, &b, out2, sizeof out2, &n2);
    assert(rc == 0);
    assert(n2 == n1);
    assert(memcmp(out1, out2, n1) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(WX_ISO_ASCII87, data, size);
    one(WX_ISO_ASCII87B, data, size);
    one(WX_ISO_BCD87, data, size);
    return 0;
}
