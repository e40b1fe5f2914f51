/*
 * framing.c - the length header in front of every message on TCP (iso8583.framing), for
 * the server and for the tools that play a terminal.
 */
#include "iso8583/iso8583.h"

size_t wx_iso_frame_header_len(enum wx_iso_framing f)
{
    return f == WX_ISO_FRAME_ASCII4 ? 4 : 2;
}

size_t wx_iso_frame_header(enum wx_iso_framing f, size_t len, uint8_t out[4])
{
    if (f == WX_ISO_FRAME_ASCII4) {
        for (int i = 3; i >= 0; i--) {
            out[i] = (uint8_t)('0' + len % 10);
            len /= 10;
        }
        return 4;
    }
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    return 2;
}

int wx_iso_frame_length(enum wx_iso_framing f, const uint8_t *head, size_t *len)
{
    *len = 0;
    if (f != WX_ISO_FRAME_ASCII4) {
        *len = (size_t)head[0] << 8 | head[1];
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        if (head[i] < '0' || head[i] > '9') return -1;
        *len = *len * 10 + (size_t)(head[i] - '0');
    }
    return 0;
}
