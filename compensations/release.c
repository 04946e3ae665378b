/* release.c - The compensation of inventory.reserved: give held stock back, once.
 *
 * The inventory service calls comp_release() when it handles order.cancelled.
 * Inventory acts on order.placed in parallel with payment, and the order
 * service may cancel at any moment before it confirms, so the cancellation
 * can meet the reservation in any state:
 *
 *  - Reserved: the held lines go back to available and the reservation
 *    becomes released in the same transaction that writes
 *    inventory.released to the outbox, so stock moves exactly when the
 *    release is announced.
 *  - Released already (a redelivery past the inbox, or a second
 *    order.cancelled): nothing happens.
 *  - Rejected: nothing was ever held; nothing to give back.
 *  - Committed: the order was confirmed, and a confirmed order is never
 *    cancelled (the order service refuses); the stock stays taken.
 *  - Never reserved (order.placed not handled yet): a tombstone is left in
 *    the order's scope; the inventory checks it before reserving, so a late
 *    order.placed never holds anything. Writing it again is harmless.
 *
 * Every case marks the saga finished for the inventory, so its order-scoped
 * state is pruned after the retention period. */
#include "compensations.h"

#include <string.h>

#include "events.pb-c.h"
#include "inv_state.h"
#include "comp_internal.h"

#define DEFAULT_REASON "cancelled"

static saga_status emit_released(saga_ctx *ctx, const char *order_id, const inv_res *res,
                                 const char *reason)
{
    Saga__V1__InventoryReleased msg = SAGA__V1__INVENTORY_RELEASED__INIT;
    Saga__V1__LineItem store[INV_LINES_MAX];
    Saga__V1__LineItem *items[INV_LINES_MAX];

    inv_res_items(res, store, items);
    msg.n_items = res->nlines;
    msg.items = items;
    /* The packer only reads the string; the cast drops const for its API. */
    msg.reason = (char *)reason;
    return comp_emit(ctx, "inventory.released", order_id, &msg.base);
}

saga_status comp_release(saga_ctx *ctx, const char *order_id, const char *reason)
{
    inv_res res;
    saga_status st;

    if (ctx == NULL || !saga_valid_order_id(order_id))
        return SAGA_EINVAL;
    if (reason == NULL || reason[0] == '\0')
        reason = DEFAULT_REASON;

    st = inv_res_load(ctx, order_id, &res);
    if (st == SAGA_ENOTFOUND) {
        st = saga_ctx_tombstone(ctx, order_id, INV_TOMBSTONE);
        goto finish;
    }
    if (st != SAGA_OK)
        goto out;
    if (res.state != INV_RES_RESERVED)
        goto out; /* released, rejected or committed: nothing is held for this order */

    st = inv_stock_unhold(ctx, &res, 0);
    if (st != SAGA_OK)
        goto out;
    res.state = INV_RES_RELEASED;
    st = inv_res_store(ctx, order_id, &res);
    if (st != SAGA_OK)
        goto out;
    st = emit_released(ctx, order_id, &res, reason);

finish:
    if (st == SAGA_OK)
        st = saga_ctx_finish(ctx, order_id);
out:
    return st;
}
