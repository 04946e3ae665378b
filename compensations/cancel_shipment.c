/* cancel_shipment.c - The compensation of shipping.scheduled: call a shipment off, once.
 *
 * The shipping service calls comp_cancel_shipment() when it handles
 * order.cancelled. Shipping joins payment.charged and inventory.reserved,
 * and the order service may cancel at any moment before it confirms, so
 * the cancellation can meet the join in any state:
 *
 *  - Scheduled: the shipment becomes cancelled in the same transaction that
 *    writes shipping.cancelled to the outbox, so it is called off exactly
 *    when that is announced. The order then has no live shipment.
 *  - Cancelled already (a redelivery past the inbox, or a second
 *    order.cancelled): nothing happens.
 *  - Nothing recorded, or one half of the join waiting: a tombstone is left
 *    in the order's scope; the join checks it before scheduling, so the
 *    other half arriving late never schedules a shipment.
 *  - Failed: there is no shipment; the tombstone is left too, which changes
 *    nothing but shows in the order's view that the cancellation was seen.
 *
 * Every case marks the saga finished for shipping, so its order-scoped state
 * is pruned after the retention period. */
#include "compensations.h"

#include <string.h>

#include "events.pb-c.h"
#include "ship_state.h"
#include "comp_internal.h"

#define DEFAULT_REASON "cancelled"

saga_status comp_cancel_shipment(saga_ctx *ctx, const char *order_id, const char *reason)
{
    Saga__V1__ShipmentCancelled msg = SAGA__V1__SHIPMENT_CANCELLED__INIT;
    ship_rec rec;
    saga_status st;

    if (ctx == NULL || !saga_valid_order_id(order_id))
        return SAGA_EINVAL;
    if (reason == NULL || reason[0] == '\0')
        reason = DEFAULT_REASON;

    st = ship_rec_load(ctx, order_id, &rec);
    if (st != SAGA_OK && st != SAGA_ENOTFOUND)
        goto out;
    if (rec.phase == SHIP_CANCELLED) {
        st = SAGA_OK;
        goto out;
    }
    if (rec.phase != SHIP_SCHEDULED) {
        st = saga_ctx_tombstone(ctx, order_id, SHIP_TOMBSTONE);
        goto finish;
    }

    rec.phase = SHIP_CANCELLED;
    st = ship_rec_store(ctx, order_id, &rec);
    if (st != SAGA_OK)
        goto out;
    /* The packer only reads these strings; the casts drop const for its API. */
    msg.shipment_id = rec.shipment_id;
    msg.reason = (char *)reason;
    st = comp_emit(ctx, "shipping.cancelled", order_id, &msg.base);

finish:
    if (st == SAGA_OK)
        st = saga_ctx_finish(ctx, order_id);
out:
    return st;
}
