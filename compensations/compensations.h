/* compensations.h - The compensating actions of the order saga: each undoes one
 * completed step, is idempotent, and runs inside the calling service's handler
 * (same LMDB transaction, same outbox), so it commits or rolls back with it.
 *
 * Dependencies run one way: the services include this header and the state
 * layouts next to it (pay_state.h, inv_state.h, ship_state.h); the
 * compensations include the runtime (saga/saga.h) and the generated schemas,
 * never anything under services/ (test_layering checks it). */
#ifndef SAGA_COMPENSATIONS_H
#define SAGA_COMPENSATIONS_H

#include "saga/saga.h"

/* ---- refund (payment): compensations/refund.c ------------------------- */

/* Undoes payment.charged for order_id, in the payment service's state
 * (compensations/pay_state.h). Charged and not yet refunded: marks the
 * record refunded and emits payment.refunded with reason (NULL or "" is
 * taken as "cancelled"). Already refunded: does nothing. Never charged
 * (no record, or declined): leaves the tombstone "cancelled" so a late
 * order.placed never charges. Returns SAGA_OK or the store's error (the
 * caller's handler should then ask for a retry). Borrows every argument. */
saga_status comp_refund(saga_ctx *ctx, const char *order_id, const char *reason);

/* ---- release (inventory): compensations/release.c -------------------- */

/* Undoes inventory.reserved for order_id, in the inventory's state
 * (compensations/inv_state.h). Reserved: the held lines go back to
 * available, the reservation becomes released and inventory.released is
 * emitted with reason (NULL or "" is taken as "cancelled"). Already released,
 * rejected (nothing was held) or committed (a confirmed order is never
 * undone): nothing changes. Never reserved: leaves the tombstone "cancelled"
 * so a late order.placed never reserves. Returns SAGA_OK or the store's
 * error (the caller's handler should then ask for a retry). Borrows every
 * argument. */
saga_status comp_release(saga_ctx *ctx, const char *order_id, const char *reason);

/* ---- cancel shipment (shipping): compensations/cancel_shipment.c ------ */

/* Undoes shipping.scheduled for order_id, in the shipping service's state
 * (compensations/ship_state.h). Scheduled: the shipment becomes
 * cancelled and shipping.cancelled is emitted with its id and reason (NULL or
 * "" is taken as "cancelled"). Already cancelled: nothing changes. Not
 * scheduled (nothing recorded, still waiting for the other half of the
 * join, or failed): leaves the tombstone "cancelled" so the join never
 * schedules. Returns SAGA_OK or the store's error. Borrows every argument. */
saga_status comp_cancel_shipment(saga_ctx *ctx, const char *order_id, const char *reason);

#endif
