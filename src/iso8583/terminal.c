/*
 * terminal.c - what a terminal's acquirer puts in every message, for the tools that play a
 * terminal (`wxbank pos`, the sandbox's POS page).
 */
#include "iso8583/iso8583.h"

#include <assert.h>
#include <stdio.h>
#include <time.h>

/* Every value is formatted for its field here: a refusal is a bug. */
static void put(struct wx_iso_msg *m, int n, const char *v)
{
    int rc = wx_iso_set_str(m, n, v);
    assert(rc == 0);
    (void)rc;
}

void wx_iso_set_terminal_fields(struct wx_iso_msg *m, time_t now, unsigned stan,
                                const char *terminal_id, const char *merchant_id, char when[11])
{
    assert(stan >= 1 && stan <= 999999);
    struct tm g;
    char buf[32];
    gmtime_r(&now, &g);
    strftime(when, 11, "%m%d%H%M%S", &g);
    put(m, 7, when);
    snprintf(buf, sizeof buf, "%06u", stan);
    put(m, 11, buf);
    strftime(buf, sizeof buf, "%H%M%S", &g);
    put(m, 12, buf);
    strftime(buf, sizeof buf, "%m%d", &g);
    put(m, 13, buf);
    put(m, 32, "00000000001");
    size_t n = strftime(buf, sizeof buf, "%y%m%d", &g);
    snprintf(buf + n, sizeof buf - n, "%06u", stan); /* RRN: date and STAN, 12 characters */
    put(m, 37, buf);
    put(m, 41, terminal_id);
    put(m, 42, merchant_id);
}
