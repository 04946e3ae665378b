/* pay_state.h - The payment service's record of one order. It lives here, with
 * the refund compensation (refund.c), because both must read and write the
 * same layout and compensations depend on the runtime only; the payment
 * service includes it from here.
 *
 * One fixed-size record per order, in that order's scope under PAY_STATE_KEY.
 * It is written raw: the LMDB file is local to this service and never leaves
 * the machine, and the version field lets a later layout refuse an older one
 * instead of misreading it. A cancellation that arrives before any charge
 * leaves the tombstone PAY_TOMBSTONE instead, so a late order.placed never
 * charges. */
#ifndef PAY_STATE_H
#define PAY_STATE_H

#include <stdint.h>

#include "saga/saga.h"

#define PAY_STATE_KEY "pay"
#define PAY_TOMBSTONE "cancelled"
#define PAY_STATE_VERSION 1u
#define PAY_CUSTOMER_MAX 64
#define PAY_CURRENCY_LEN 3

typedef enum pay_kind {
    PAY_NONE = 0,     /* no record: the order was never seen by order.placed */
    PAY_CHARGED = 1,  /* charged_cents taken from the customer */
    PAY_DECLINED = 2, /* refused: nothing taken */
    PAY_REFUNDED = 3  /* charged, then paid back in full by comp_refund */
} pay_kind;

typedef struct pay_state {
    uint32_t version;       /* PAY_STATE_VERSION */
    uint32_t kind;          /* pay_kind */
    int64_t amount_cents;   /* the order's total, charged or not */
    int64_t charged_cents;  /* 0 unless charged */
    int64_t refunded_cents; /* 0 unless refunded */
    int64_t updated_ms;     /* time of the last change */
    char customer_id[PAY_CUSTOMER_MAX + 1];
    char currency[PAY_CURRENCY_LEN + 1];
} pay_state;

static inline const char *pay_kind_name(uint32_t kind)
{
    switch (kind) {
    case PAY_CHARGED:
        return "charged";
    case PAY_DECLINED:
        return "declined";
    case PAY_REFUNDED:
        return "refunded";
    default:
        return "none";
    }
}

/* Reads the record of order_id into *out. Returns SAGA_ENOTFOUND if there is
 * none, SAGA_EVALIDATE if the stored bytes are not a record of this layout,
 * or the store's error. *out is filled only on SAGA_OK. */
static inline saga_status pay_state_load(saga_ctx *ctx, const char *order_id, pay_state *out)
{
    pay_state ps;
    saga_status st = saga_ctx_get_record(ctx, order_id, PAY_STATE_KEY, &ps, sizeof(ps));
    if (st != SAGA_OK)
        return st;
    if (ps.version != PAY_STATE_VERSION || ps.kind > PAY_REFUNDED)
        return SAGA_EVALIDATE;
    ps.customer_id[PAY_CUSTOMER_MAX] = '\0';
    ps.currency[PAY_CURRENCY_LEN] = '\0';
    *out = ps;
    return SAGA_OK;
}

/* Writes *ps as the record of order_id. The caller built *ps from a zeroed
 * struct (or from pay_state_load), so padding bytes are stable. */
static inline saga_status pay_state_store(saga_ctx *ctx, const char *order_id, const pay_state *ps)
{
    return saga_ctx_put(ctx, order_id, PAY_STATE_KEY, ps, sizeof(*ps));
}

#endif
