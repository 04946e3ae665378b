/* ceiling_roles.c - The five participants of the happy path with no-op
 * business logic: each unpacks what it needs to build the same payload the
 * real service emits (same fields, so the same bytes on the wire) and keeps
 * only what a join needs in memory; no validation, no stock, no LMDB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ceiling.h"
#include "commands.pb-c.h"
#include "events.pb-c.h"

#define DEFAULT_CURRENCY "EUR"
#define DEFAULT_SHIP_TO "DE"
#define SHIP_CARRIER "DHL" /* compensations/ship_state.h */
#define ITEMS_MAX 100

/* The order role remembers the packed OrderPlaced until the order confirms,
 * as the order service's record does; shipping remembers half a join. */
typedef struct blob {
    size_t len;
    uint8_t data[];
} blob;

typedef struct join_rec {
    int charged, reserved;
    char ship_to[8];
} join_rec;

void bench_ceil_free_state(void *val)
{
    free(val);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *str_or(const char *s, const char *def)
{
    return s != NULL && s[0] != '\0' ? s : def;
}

static int pack_reply(const ProtobufCMessage *msg, uint8_t **reply, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    *reply = malloc(*len ? *len : 1);
    if (*reply == NULL)
        return -1;
    protobuf_c_message_pack(msg, *reply);
    return 0;
}

/* ---- order ------------------------------------------------------------ */

static int order_place(bench_ceil *c, const uint8_t *data, size_t len, uint8_t **reply,
                       size_t *reply_len)
{
    Saga__V1__PlaceOrderReply rep = SAGA__V1__PLACE_ORDER_REPLY__INIT;
    Saga__V1__OrderPlaced placed = SAGA__V1__ORDER_PLACED__INIT;
    Saga__V1__LineItem lines[ITEMS_MAX], *linep[ITEMS_MAX];
    char order_id[SAGA_ID_LEN + 1];
    int64_t total = 0;
    int rc = -1;
    Saga__V1__PlaceOrder *req = saga__v1__place_order__unpack(NULL, len, data);
    if (req == NULL || req->n_items > ITEMS_MAX) {
        rep.error = "The request is not a PlaceOrder message.";
        rc = pack_reply(&rep.base, reply, reply_len);
        goto out;
    }
    saga_ulid_new(order_id);
    for (size_t i = 0; i < req->n_items; i++) {
        saga__v1__line_item__init(&lines[i]);
        lines[i].sku = req->items[i]->sku;
        lines[i].quantity = req->items[i]->quantity;
        lines[i].unit_cents = req->items[i]->unit_cents;
        total += (int64_t)lines[i].quantity * lines[i].unit_cents;
        linep[i] = &lines[i];
    }
    placed.customer_id = req->customer_id;
    placed.n_items = req->n_items;
    placed.items = linep;
    placed.total_cents = total;
    placed.currency = (char *)str_or(req->currency, DEFAULT_CURRENCY);
    placed.ship_to = (char *)str_or(req->ship_to, DEFAULT_SHIP_TO);
    placed.deadline_unix_ms =
        now_ms() + (req->deadline_ms != 0 ? req->deadline_ms : c->deadline_ms);

    size_t plen = saga__v1__order_placed__get_packed_size(&placed);
    blob *b = malloc(sizeof(*b) + plen);
    void *old = NULL;
    if (b == NULL)
        goto out;
    b->len = plen;
    saga__v1__order_placed__pack(&placed, b->data);
    if (bench_map_put(&c->orders, order_id, b, &old) != 0) {
        free(b);
        goto out;
    }
    free(old);
    if (bench_ceil_emit(c, "order.placed", order_id, &placed.base) != 0)
        goto out;
    rep.ok = 1;
    rep.order_id = order_id;
    rc = pack_reply(&rep.base, reply, reply_len);
out:
    saga__v1__place_order__free_unpacked(req, NULL);
    return rc;
}

static int order_scheduled(bench_ceil *c, const saga_event *ev)
{
    Saga__V1__OrderConfirmed m = SAGA__V1__ORDER_CONFIRMED__INIT;
    Saga__V1__ShipmentScheduled *ss =
        saga__v1__shipment_scheduled__unpack(NULL, ev->payload_len, ev->payload);
    blob *b = bench_map_get(&c->orders, ev->order_id);
    Saga__V1__OrderPlaced *op = NULL;
    int rc = 0;
    if (ss == NULL || b == NULL)
        goto out; /* not ours: the real service ignores it too */
    op = saga__v1__order_placed__unpack(NULL, b->len, b->data);
    if (op == NULL)
        goto out;
    m.customer_id = op->customer_id;
    m.n_items = op->n_items;
    m.items = op->items;
    m.total_cents = op->total_cents;
    m.currency = op->currency;
    m.shipment_id = ss->shipment_id;
    rc = bench_ceil_emit(c, "order.confirmed", ev->order_id, &m.base);
    if (rc == 0)
        free(bench_map_take(&c->orders, ev->order_id));
out:
    saga__v1__order_placed__free_unpacked(op, NULL);
    saga__v1__shipment_scheduled__free_unpacked(ss, NULL);
    return rc;
}

/* ---- payment, inventory ----------------------------------------------- */

static int payment_placed(bench_ceil *c, const saga_event *ev)
{
    Saga__V1__PaymentCharged m = SAGA__V1__PAYMENT_CHARGED__INIT;
    Saga__V1__OrderPlaced *op = saga__v1__order_placed__unpack(NULL, ev->payload_len, ev->payload);
    int rc = 0;
    if (op == NULL)
        return 0;
    m.customer_id = op->customer_id;
    m.amount_cents = op->total_cents;
    m.currency = op->currency;
    rc = bench_ceil_emit(c, "payment.charged", ev->order_id, &m.base);
    saga__v1__order_placed__free_unpacked(op, NULL);
    return rc;
}

static int inventory_placed(bench_ceil *c, const saga_event *ev)
{
    Saga__V1__InventoryReserved m = SAGA__V1__INVENTORY_RESERVED__INIT;
    Saga__V1__OrderPlaced *op = saga__v1__order_placed__unpack(NULL, ev->payload_len, ev->payload);
    int rc = 0;
    if (op == NULL)
        return 0;
    m.n_items = op->n_items;
    m.items = op->items;
    m.customer_id = op->customer_id;
    m.ship_to = op->ship_to;
    rc = bench_ceil_emit(c, "inventory.reserved", ev->order_id, &m.base);
    saga__v1__order_placed__free_unpacked(op, NULL);
    return rc;
}

/* The real service emits the reserved lines: SKU and quantity, no price. */
static int inventory_confirmed(bench_ceil *c, const saga_event *ev)
{
    Saga__V1__InventoryCommitted m = SAGA__V1__INVENTORY_COMMITTED__INIT;
    Saga__V1__LineItem lines[ITEMS_MAX], *linep[ITEMS_MAX];
    Saga__V1__OrderConfirmed *oc =
        saga__v1__order_confirmed__unpack(NULL, ev->payload_len, ev->payload);
    int rc = 0;
    if (oc == NULL)
        return 0;
    size_t n = oc->n_items < ITEMS_MAX ? oc->n_items : ITEMS_MAX;
    for (size_t i = 0; i < n; i++) {
        saga__v1__line_item__init(&lines[i]);
        lines[i].sku = oc->items[i]->sku;
        lines[i].quantity = oc->items[i]->quantity;
        linep[i] = &lines[i];
    }
    m.n_items = n;
    m.items = linep;
    rc = bench_ceil_emit(c, "inventory.committed", ev->order_id, &m.base);
    saga__v1__order_confirmed__free_unpacked(oc, NULL);
    return rc;
}

/* No stock to keep: answers as the inventory service would, so the load
 * generator sets stock the same way in both phases. */
static int inventory_stock_set(bench_ceil *c, const uint8_t *data, size_t len, uint8_t **reply,
                               size_t *reply_len)
{
    Saga__V1__StockReply rep = SAGA__V1__STOCK_REPLY__INIT;
    Saga__V1__SetStock *req = saga__v1__set_stock__unpack(NULL, len, data);
    (void)c;
    if (req != NULL) {
        rep.ok = 1;
        rep.sku = req->sku;
        rep.available = req->quantity;
    }
    int rc = pack_reply(&rep.base, reply, reply_len);
    saga__v1__set_stock__free_unpacked(req, NULL);
    return rc;
}

/* ---- shipping: the join ------------------------------------------------ */

static int join(bench_ceil *c, const char *order_id, int charged, const char *ship_to)
{
    Saga__V1__ShipmentScheduled m = SAGA__V1__SHIPMENT_SCHEDULED__INIT;
    char shipment_id[SAGA_ID_LEN + 1];
    join_rec *r = bench_map_get(&c->orders, order_id);
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL || bench_map_put(&c->orders, order_id, r, NULL) != 0) {
            free(r);
            return -1;
        }
    }
    if (charged)
        r->charged = 1;
    else {
        r->reserved = 1;
        snprintf(r->ship_to, sizeof(r->ship_to), "%s", ship_to);
    }
    if (!r->charged || !r->reserved)
        return 0;
    saga_ulid_new(shipment_id);
    m.shipment_id = shipment_id;
    m.ship_to = r->ship_to;
    m.carrier = SHIP_CARRIER;
    int rc = bench_ceil_emit(c, "shipping.scheduled", order_id, &m.base);
    if (rc == 0)
        free(bench_map_take(&c->orders, order_id));
    return rc;
}

static int shipping_charged(bench_ceil *c, const saga_event *ev)
{
    Saga__V1__PaymentCharged *pc =
        saga__v1__payment_charged__unpack(NULL, ev->payload_len, ev->payload);
    if (pc == NULL)
        return 0;
    saga__v1__payment_charged__free_unpacked(pc, NULL);
    return join(c, ev->order_id, 1, NULL);
}

static int shipping_reserved(bench_ceil *c, const saga_event *ev)
{
    Saga__V1__InventoryReserved *ir =
        saga__v1__inventory_reserved__unpack(NULL, ev->payload_len, ev->payload);
    if (ir == NULL)
        return 0;
    int rc = join(c, ev->order_id, 0, ir->ship_to);
    saga__v1__inventory_reserved__free_unpacked(ir, NULL);
    return rc;
}

/* ---- notification ------------------------------------------------------ */

static int notification_confirmed(bench_ceil *c, const saga_event *ev)
{
    Saga__V1__NotificationSent m = SAGA__V1__NOTIFICATION_SENT__INIT;
    char name[SAGA_ORDER_ID_MAX + 32];
    Saga__V1__OrderConfirmed *oc =
        saga__v1__order_confirmed__unpack(NULL, ev->payload_len, ev->payload);
    if (oc == NULL)
        return 0;
    snprintf(name, sizeof(name), "%s.confirmed.txt", ev->order_id);
    m.kind = "confirmed";
    m.customer_id = oc->customer_id;
    m.spool_file = name;
    int rc = bench_ceil_emit(c, "notification.sent", ev->order_id, &m.base);
    saga__v1__order_confirmed__free_unpacked(oc, NULL);
    return rc;
}

/* Outside the happy path, or a delivery the service only records:
 * acknowledged, nothing else. */
static int idle(bench_ceil *c, const saga_event *ev)
{
    (void)c;
    (void)ev;
    return 0;
}

const bench_ceil_role bench_ceil_roles[] = {
    {"order",
     {{"shipping.scheduled", order_scheduled},
      {"payment.declined", idle},
      {"inventory.rejected", idle},
      {"shipping.failed", idle},
      {"*.vetoed", idle}},
     {{"saga.cmd.order.place", order_place}}},
    /* order.confirmed: the payment service only closes its record on it. */
    {"payment",
     {{"order.placed", payment_placed}, {"order.cancelled", idle}, {"order.confirmed", idle}},
     {{0}}},
    {"inventory",
     {{"order.placed", inventory_placed},
      {"order.confirmed", inventory_confirmed},
      {"order.cancelled", idle}},
     {{"saga.cmd.inventory.stock.set", inventory_stock_set}}},
    {"shipping",
     {{"payment.charged", shipping_charged},
      {"inventory.reserved", shipping_reserved},
      {"order.cancelled", idle}},
     {{0}}},
    {"notification",
     {{"order.confirmed", notification_confirmed},
      {"order.cancelled", idle},
      {"payment.refunded", idle}},
     {{0}}},
};
const size_t bench_ceil_nroles = sizeof(bench_ceil_roles) / sizeof(bench_ceil_roles[0]);
