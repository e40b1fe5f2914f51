/*
 * fuzz_amount.c - libFuzzer target for the text parsers people type into: wx_amount_parse,
 * wx_pan_parse and wx_expiry_parse, on a NUL-terminated copy of the input.
 *
 * Besides "no crash", it checks round trips: an accepted amount is within range and formats
 * back to text that parses to the same fen; an accepted PAN passes Luhn and masks cleanly.
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc fuzz/fuzz_amount.c \
 *        (every .c file in src/util) -lcrypto
 */
#include "util/limits.h"
#include "util/money.h"
#include "util/pan.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    int64_t fen = -1;
    if (wx_amount_parse(text, &fen) == 0) {
        assert(fen >= 0 && fen <= WX_AMOUNT_MAX);
        char shown[WX_AMOUNT_FMT_MAX];
        int64_t back = -1;
        wx_amount_format(fen, shown, sizeof shown);
        assert(wx_amount_parse(shown, &back) == 0 && back == fen);
    }

    char pan[WX_PAN_MAX + 1];
    if (wx_pan_parse(text, pan) == 0) {
        size_t len = strlen(pan);
        assert(len >= WX_PAN_MIN && len <= WX_PAN_MAX);
        assert(wx_luhn_valid(pan, len));
        char masked[WX_PAN_MAX + 1];
        wx_pan_mask(pan, masked, sizeof masked);
        assert(strlen(masked) == len && memcmp(masked + 6, "***", 3) == 0);
    } else {
        assert(pan[0] == '\0');
    }

    uint16_t expiry = 0;
    if (wx_expiry_parse(text, &expiry) == 0) assert(expiry % 100 >= 1 && expiry % 100 <= 12);
    free(text);
    return 0;
}
