/* refund.c - The compensation of payment.charged: pay the customer back, once.
 *
 * The payment service calls comp_refund() when it handles order.cancelled.
 * Payment and the cancellation race (payment and inventory act in parallel on
 * order.placed, and the order service may cancel at any time before it
 * confirms), so all three orders of events must end with charged - refunded
 * = 0 and at most one payment.refunded:
 *
 *  - Cancellation after the charge: the record says charged; it becomes
 *    refunded in the same transaction that writes payment.refunded to the
 *    outbox, so the refund is recorded exactly when it is announced.
 *  - Cancellation twice (a redelivery past the inbox, or a second
 *    order.cancelled): the record already says refunded; nothing happens.
 *  - Cancellation before the step (order.placed not handled yet) or after a
 *    decline: nothing was taken. A tombstone "cancelled" is left in the
 *    order's scope, and the payment service checks it before charging, so a
 *    late order.placed never charges. Writing the tombstone again is harmless.
 */
#include "compensations.h"

#include <string.h>

#include "events.pb-c.h"
#include "pay_state.h"
#include "comp_internal.h"

#define DEFAULT_REASON "cancelled"

/* Emits payment.refunded for the record ps. */
static saga_status emit_refunded(saga_ctx *ctx, const char *order_id, const pay_state *ps,
                                 const char *reason)
{
    Saga__V1__PaymentRefunded msg = SAGA__V1__PAYMENT_REFUNDED__INIT;

    /* The packer only reads these strings; the casts drop const for its API. */
    msg.customer_id = (char *)ps->customer_id;
    msg.amount_cents = ps->refunded_cents;
    msg.currency = (char *)ps->currency;
    msg.reason = (char *)reason;
    return comp_emit(ctx, "payment.refunded", order_id, &msg.base);
}

saga_status comp_refund(saga_ctx *ctx, const char *order_id, const char *reason)
{
    pay_state ps;
    saga_status st;

    if (ctx == NULL || order_id == NULL)
        return SAGA_EINVAL;
    if (reason == NULL || reason[0] == '\0')
        reason = DEFAULT_REASON;

    st = pay_state_load(ctx, order_id, &ps);
    if (st == SAGA_ENOTFOUND)
        return saga_ctx_tombstone(ctx, order_id, PAY_TOMBSTONE);
    if (st != SAGA_OK)
        return st;

    switch (ps.kind) {
    case PAY_CHARGED:
        ps.kind = PAY_REFUNDED;
        ps.refunded_cents = ps.charged_cents;
        ps.updated_ms = saga_ctx_now_ms(ctx);
        st = pay_state_store(ctx, order_id, &ps);
        if (st == SAGA_OK)
            st = emit_refunded(ctx, order_id, &ps, reason);
        return st;
    case PAY_REFUNDED:
        return SAGA_OK;
    default:
        /* Declined (or a record with nothing taken): the tombstone makes the
         * "never charge after a cancellation" rule hold in one place. */
        return saga_ctx_tombstone(ctx, order_id, PAY_TOMBSTONE);
    }
}
