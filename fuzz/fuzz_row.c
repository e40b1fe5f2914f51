/*
 * fuzz_row.c - libFuzzer target for the journal row decoder.
 *
 * Rows come back from disk at every start-up; a damaged file must be reported as corrupt,
 * never misread or crash. Every row that decodes must encode back to the same bytes: the
 * format is canonical, which replay relies on when it compares rows byte for byte.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "core/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wx_cmd cmd;
    struct wx_result res;
    if (size > WX_ROW_MAX || wx_row_decode(data, size, &cmd, &res) != 0) {
        return 0;
    }
    uint8_t again[WX_ROW_MAX];
    size_t n = wx_row_encode(&cmd, &res, again, sizeof again);
    assert(n == size);
    assert(memcmp(again, data, size) == 0);
    return 0;
}
