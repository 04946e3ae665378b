/* ship_state.h - The shipping service's LMDB layout: one join record per order.
 *
 * Shared by services/shipping/shipping.c and compensations/cancel_shipment.c;
 * it lives here because compensations depend on the runtime only.
 *
 * Order scope (saga_ctx_get(ctx, order_id, ...)):
 *   "ship:rec"     ship_rec: which halves of the join (payment.charged,
 *                  inventory.reserved) are in, where to ship, and the
 *                  shipment once there is one.
 *   tombstone SHIP_TOMBSTONE: the order was cancelled before a shipment was
 *                  scheduled, so the join never schedules one.
 *
 * The record is a host-order binary struct (a service's LMDB lives and dies
 * on one machine) with a version, so a layout change is caught as a store
 * error instead of being misread. */
#ifndef SHIP_STATE_H
#define SHIP_STATE_H

#include <stdint.h>
#include <string.h>

#include "saga/saga.h"

#define SHIP_REC_VERSION 1
#define SHIP_REC_KEY "ship:rec"
#define SHIP_TOMBSTONE "cancelled"
#define SHIP_TO_LEN 2 /* ISO 3166 alpha-2 */
#define SHIP_CARRIER "DHL"

typedef enum ship_phase {
    SHIP_NONE = 0,      /* nothing recorded */
    SHIP_WAITING = 1,   /* one half of the join is in */
    SHIP_SCHEDULED = 2, /* shipping.scheduled emitted: a live shipment */
    SHIP_FAILED = 3,    /* shipping.failed emitted: destination not served */
    SHIP_CANCELLED = 4  /* shipping.cancelled emitted (compensation) */
} ship_phase;

typedef struct ship_rec {
    uint32_t version;
    uint32_t phase;   /* ship_phase */
    uint8_t charged;  /* payment.charged was handled */
    uint8_t reserved; /* inventory.reserved was handled; ship_to is set */
    uint8_t unused[2];
    char ship_to[SHIP_TO_LEN + 1];
    char shipment_id[SAGA_ID_LEN + 1];
    char carrier[16];
} ship_rec;

static inline const char *ship_phase_name(uint32_t phase)
{
    switch (phase) {
    case SHIP_WAITING:
        return "waiting";
    case SHIP_SCHEDULED:
        return "scheduled";
    case SHIP_FAILED:
        return "failed";
    case SHIP_CANCELLED:
        return "cancelled";
    default:
        return "none";
    }
}

/* Reads the order's record into *out. Absent: a zeroed record (SHIP_NONE)
 * and SAGA_ENOTFOUND. A record of the wrong size or version: SAGA_ESTORE. */
static inline saga_status ship_rec_load(saga_ctx *ctx, const char *order_id, ship_rec *out)
{
    saga_status st = saga_ctx_get_record(ctx, order_id, SHIP_REC_KEY, out, sizeof(*out));
    if (st == SAGA_EVALIDATE ||
        (st == SAGA_OK && (out->version != SHIP_REC_VERSION || out->phase > SHIP_CANCELLED))) {
        memset(out, 0, sizeof(*out));
        return SAGA_ESTORE;
    }
    if (st != SAGA_OK)
        return st;
    /* Never trust a stored string to be terminated. */
    out->ship_to[SHIP_TO_LEN] = '\0';
    out->shipment_id[SAGA_ID_LEN] = '\0';
    out->carrier[sizeof(out->carrier) - 1] = '\0';
    return SAGA_OK;
}

static inline saga_status ship_rec_store(saga_ctx *ctx, const char *order_id, ship_rec *rec)
{
    rec->version = SHIP_REC_VERSION;
    return saga_ctx_put(ctx, order_id, SHIP_REC_KEY, rec, sizeof(*rec));
}

#endif
