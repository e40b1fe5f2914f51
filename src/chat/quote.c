/*
 * quote.c - what an installment plan costs: principal and fee per period, the total, and the
 * annualized rate that Chinese rules require banks to show beside every quote.
 *
 * The fee is a fixed share of the principal each period (the way card issuers price
 * installments); the principal is split evenly with the remainder in the first period. The
 * annualized rate is the internal rate of return of the plan -- the monthly rate at which the
 * payments' present value equals the principal -- times 12, found by bisection.
 */
#include "chat/chat_int.h"

#include <math.h>

static double present_value(const struct quote *q, double rate)
{
    double pv = 0, factor = 1;
    for (unsigned k = 1; k <= q->periods; k++) {
        factor /= 1 + rate;
        int64_t principal = k == 1 ? q->first_principal : q->principal_each;
        pv += (double)(principal + q->fee_each) * factor;
    }
    return pv;
}

int quote_make(int64_t principal, unsigned periods, unsigned fee_bp, struct quote *q)
{
    if (principal <= 0 || principal > WX_CHAT_QUOTE_MAX_FEN || periods < 2 ||
        periods > WX_CHAT_PERIODS_LIMIT) {
        return -1;
    }
    q->principal = principal;
    q->periods = periods;
    q->principal_each = principal / periods;
    q->first_principal = principal - q->principal_each * (periods - 1);
    q->fee_each = (principal * fee_bp + 5000) / 10000;
    q->total_fee = q->fee_each * periods;
    q->total = principal + q->total_fee;
    double lo = 0, hi = 1; /* monthly */
    for (int i = 0; i < 100; i++) {
        double mid = (lo + hi) / 2;
        if (present_value(q, mid) > (double)principal) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    q->apr = round((lo + hi) / 2 * 12 * 100 * 100) / 100;
    return 0;
}
