/* shipping.c - saga-shipping: schedules a shipment once an order is paid for and its stock held.
 *
 * A join of payment.charged and inventory.reserved, which arrive in either
 * order: the first is recorded in LMDB and waits; the second schedules the
 * shipment (shipping.scheduled), or fails it when the destination is not
 * served (shipping.failed). order.cancelled calls a scheduled shipment off
 * through compensations/cancel_shipment.c, or leaves a tombstone so the join
 * never schedules. The state layout is in ship_state.h. */
#include <stdio.h>
#include <string.h>

#include "compensations.h"
#include "events.pb-c.h"
#include "saga/saga.h"
#include "ship_state.h"
#include "svc.h"

#define DEFAULT_UNSERVED "XX,ZZ"
#define REASON_MAX 256

/* SHIPPING_UNSERVED: read once by saga_app_main before any handler runs. */
static const char *unserved;

static const saga_app_setting settings[] = {
    {"SHIPPING_UNSERVED", "comma-separated destinations (ISO 3166 alpha-2) that always fail", 0, 0,
     0, NULL, &unserved, DEFAULT_UNSERVED},
    {NULL, NULL, 0, 0, 0, NULL, NULL, NULL}};

/* Whether ship_to is one of the comma-separated codes in the setting;
 * spaces around a code are ignored. */
static int is_unserved(const char *ship_to)
{
    size_t n = strlen(ship_to);
    const char *p = unserved != NULL ? unserved : DEFAULT_UNSERVED;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ',' && *p != ' ')
            p++;
        if ((size_t)(p - start) == n && n > 0 && memcmp(start, ship_to, n) == 0)
            return 1;
    }
    return 0;
}

static int valid_ship_to(const char *s)
{
    return strlen(s) == SHIP_TO_LEN && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

/* Runs when both halves of the join are in: schedules or fails, once. */
static saga_status schedule(saga_ctx *ctx, const char *order_id, ship_rec *rec)
{
    saga_status st;
    /* The fault plan's ship_fail_rate fails a share of shipments on purpose. */
    int unserved_dest = is_unserved(rec->ship_to);
    if (unserved_dest || saga_ctx_chance(ctx, "ship_fail_rate")) {
        Saga__V1__ShipmentFailed msg = SAGA__V1__SHIPMENT_FAILED__INIT;
        char reason[96];
        if (unserved_dest)
            snprintf(reason, sizeof(reason), "destination %s is not served", rec->ship_to);
        else
            snprintf(reason, sizeof(reason),
                     "carrier failure (" SAGA_FAULT_INJECTED ": ship_fail_rate)");
        rec->phase = SHIP_FAILED;
        st = ship_rec_store(ctx, order_id, rec);
        msg.ship_to = rec->ship_to;
        msg.reason = reason;
        if (st == SAGA_OK)
            st = svc_emit(ctx, "shipping.failed", order_id, &msg.base);
        /* The order will be cancelled; nothing is left to do here. */
        if (st == SAGA_OK)
            st = saga_ctx_finish(ctx, order_id);
        return st;
    }
    Saga__V1__ShipmentScheduled msg = SAGA__V1__SHIPMENT_SCHEDULED__INIT;
    saga_ulid_new(rec->shipment_id);
    snprintf(rec->carrier, sizeof(rec->carrier), "%s", SHIP_CARRIER);
    rec->phase = SHIP_SCHEDULED;
    st = ship_rec_store(ctx, order_id, rec);
    msg.shipment_id = rec->shipment_id;
    msg.ship_to = rec->ship_to;
    msg.carrier = rec->carrier;
    if (st == SAGA_OK)
        st = svc_emit(ctx, "shipping.scheduled", order_id, &msg.base);
    /* Shipping hears nothing more of a confirmed order, so this is its end
     * unless a cancellation is already under way; that one arrives within
     * the order's deadline, long before the retention period prunes. */
    if (st == SAGA_OK)
        st = saga_ctx_finish(ctx, order_id);
    return st;
}

/* Records one half of the join (charged, or reserved with its ship_to) and
 * schedules when both are in. */
static saga_status join(saga_ctx *ctx, const char *order_id, int charged, const char *ship_to)
{
    ship_rec rec;
    saga_status st = ship_rec_load(ctx, order_id, &rec);
    if (st != SAGA_OK && st != SAGA_ENOTFOUND)
        return st;
    if (charged) {
        if (rec.charged)
            return SAGA_OK; /* seen before: a redelivery past the inbox */
        rec.charged = 1;
    } else {
        if (rec.reserved)
            return SAGA_OK;
        rec.reserved = 1;
        snprintf(rec.ship_to, sizeof(rec.ship_to), "%s", ship_to);
    }
    if (rec.phase == SHIP_NONE)
        rec.phase = SHIP_WAITING;
    /* Cancelled first: remember what came, but never schedule. */
    if (rec.phase == SHIP_WAITING && rec.charged && rec.reserved &&
        !saga_ctx_has_tombstone(ctx, order_id, SHIP_TOMBSTONE)) {
        /* Extension gates (SAGA_GATES): wait for every clearance; the
         * clearance, or a cancellation, retries this event. */
        if (!saga_ctx_gates_open(ctx, order_id))
            return saga_ctx_park(ctx, 0);
        return schedule(ctx, order_id, &rec);
    }
    return ship_rec_store(ctx, order_id, &rec);
}

static saga_status on_charged(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__PaymentCharged *pc;
    saga_status st;
    (void)udata;

    pc = saga__v1__payment_charged__unpack(NULL, ev->payload_len, ev->payload);
    if (pc == NULL || pc->amount_cents <= 0) {
        st = SAGA_EREJECT;
        goto out;
    }
    st = join(ctx, ev->order_id, 1, NULL);
out:
    if (pc != NULL)
        saga__v1__payment_charged__free_unpacked(pc, NULL);
    return st;
}

static saga_status on_reserved(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__InventoryReserved *ir;
    saga_status st;
    (void)udata;

    ir = saga__v1__inventory_reserved__unpack(NULL, ev->payload_len, ev->payload);
    if (ir == NULL || !valid_ship_to(ir->ship_to)) {
        st = SAGA_EREJECT;
        goto out;
    }
    st = join(ctx, ev->order_id, 0, ir->ship_to);
out:
    if (ir != NULL)
        saga__v1__inventory_reserved__free_unpacked(ir, NULL);
    return st;
}

static saga_status on_cancelled(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderCancelled *oc;
    saga_status st;
    (void)udata;

    oc = saga__v1__order_cancelled__unpack(NULL, ev->payload_len, ev->payload);
    if (oc == NULL || strlen(oc->reason) > REASON_MAX) {
        st = SAGA_EREJECT;
        goto out;
    }
    st = comp_cancel_shipment(ctx, ev->order_id, oc->reason);
out:
    if (oc != NULL)
        saga__v1__order_cancelled__free_unpacked(oc, NULL);
    return st;
}

/* ---- query ------------------------------------------------------------ */

static saga_status q_order(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                           void *udata)
{
    char order[SAGA_ORDER_ID_MAX + 1];
    ship_rec rec;
    saga_status st;
    (void)subject;
    (void)udata;

    if (!svc_query_order_id(data, len, order))
        return svc_reply_not_order_id(ctx, "shipping");
    st = ship_rec_load(ctx, order, &rec);
    if (st != SAGA_OK && st != SAGA_ENOTFOUND) {
        svc_json_send(
            ctx, json_pack("{s:s, s:s}", "service", "shipping", "error", "store error, try again"));
        return st;
    }
    int tomb = saga_ctx_has_tombstone(ctx, order, SHIP_TOMBSTONE);
    /* After a cancellation nothing waits any more: no shipment is "none". */
    uint32_t phase = rec.phase == SHIP_WAITING && tomb ? SHIP_NONE : rec.phase;
    return svc_json_send(ctx,
                         json_pack("{s:s, s:s, s:b, s:s, s:b, s:b, s:s, s:s, s:b}", "service",
                                   "shipping", "order_id", order, "found", st == SAGA_OK || tomb,
                                   "state", ship_phase_name(phase), "charged", rec.charged != 0,
                                   "reserved", rec.reserved != 0, "shipment_id", rec.shipment_id,
                                   "ship_to", rec.ship_to, "tombstone", tomb));
}

/* ---- main ------------------------------------------------------------- */

/* Whether the setting is a list of alpha-2 codes, so a typo stops the
 * service at start instead of shipping where it should not. */
static int valid_unserved(const char *list)
{
    const char *p = list;
    while (*p != '\0') {
        char code[SHIP_TO_LEN + 2];
        size_t n = 0;
        while (*p == ' ' || *p == ',')
            p++;
        while (*p != '\0' && *p != ',' && *p != ' ') {
            if (n < sizeof(code) - 1)
                code[n++] = *p;
            p++;
        }
        code[n] = '\0';
        if (n > 0 && !valid_ship_to(code))
            return 0;
    }
    return 1;
}

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    (void)cfg;
    (void)udata;
    if (unserved == NULL || !valid_unserved(unserved)) {
        fprintf(stderr, "saga-shipping: SHIPPING_UNSERVED=\"%s\": want codes like \"XX,ZZ\"\n",
                unserved != NULL ? unserved : "");
        return SAGA_EINVAL;
    }
    static const char *const emits[] = {"shipping.scheduled", "shipping.failed",
                                        "shipping.cancelled", NULL};
    static const svc_sub subs[] = {{"payment.charged", on_charged},
                                   {"inventory.reserved", on_reserved},
                                   {"order.cancelled", on_cancelled},
                                   {NULL, NULL}};
    static const svc_cmd cmds[] = {{"saga.q.shipping.order", q_order}, {NULL, NULL}};
    return svc_wire(svc, &(svc_wiring){.emits = emits, .subs = subs, .cmds = cmds});
}

int main(int argc, char **argv)
{
    return saga_app_main("shipping",
                         "Schedules a shipment once an order is both paid for and its stock "
                         "reserved; cancels it when the order is cancelled.",
                         settings, argc, argv, setup, NULL);
}
