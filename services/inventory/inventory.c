/* inventory.c - saga-inventory: holds stock for orders, all lines or none.
 *
 * order.placed reserves every line of the order or none of them;
 * order.confirmed commits the held lines; order.cancelled gives them back
 * through compensations/release.c (or leaves a tombstone when the order was
 * not reserved yet). Commands set and read the stock of a SKU; queries show
 * all stock and one order as JSON. The state layout is in inv_state.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.pb-c.h"
#include "compensations.h"
#include "events.pb-c.h"
#include "inv_state.h"
#include "saga/saga.h"
#include "svc.h"

#define SKUS_KEY "skus"
/* Bounds the "skus" list and the stock query's reply: 5000 entries of at
 * most ~140 bytes of JSON stay under NATS's default 1 MB payload limit. */
#define SKUS_MAX 5000
#define STOCK_QTY_MAX 1000000000LL
#define REASON_MAX 256

/* ---- order.placed ----------------------------------------------------- */

/* Checks what the order service promises (docs/saga.md) and sums the lines
 * per SKU into res, since an order may list a SKU twice. Returns 0 if the
 * payload breaks the contract. */
static int sum_lines(const Saga__V1__OrderPlaced *op, inv_res *res)
{
    memset(res, 0, sizeof(*res));
    if (op->n_items == 0 || op->n_items > INV_LINES_MAX || !saga_valid_order_id(op->customer_id))
        return 0;
    for (size_t i = 0; i < op->n_items; i++) {
        const Saga__V1__LineItem *li = op->items[i];
        if (li == NULL || !inv_valid_sku(li->sku) || li->quantity < 1)
            return 0;
        uint32_t j = 0;
        while (j < res->nlines && strcmp(res->lines[j].sku, li->sku) != 0)
            j++;
        if (j == res->nlines) {
            snprintf(res->lines[j].sku, sizeof(res->lines[j].sku), "%s", li->sku);
            res->nlines++;
        }
        res->lines[j].quantity += li->quantity;
        /* Events carry quantities as int32. */
        if (res->lines[j].quantity > INT32_MAX)
            return 0;
    }
    return 1;
}

/* reason says whether the shortage is real or the fault plan's. */
static saga_status emit_rejected(saga_ctx *ctx, const char *order_id, const inv_line *l,
                                 int64_t available, int injected)
{
    Saga__V1__InventoryRejected msg = SAGA__V1__INVENTORY_REJECTED__INIT;
    msg.sku = (char *)l->sku; /* only read by the packer */
    msg.asked = (int32_t)l->quantity;
    msg.available = available;
    msg.reason =
        injected ? "out of stock (" SAGA_FAULT_INJECTED ": stockout_rate)" : "out of stock";
    return svc_emit(ctx, "inventory.rejected", order_id, &msg.base);
}

static saga_status on_placed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderPlaced *op = NULL;
    Saga__V1__InventoryReserved msg = SAGA__V1__INVENTORY_RESERVED__INIT;
    Saga__V1__LineItem lines[INV_LINES_MAX], *linep[INV_LINES_MAX];
    inv_res res, old;
    inv_stock stock[INV_LINES_MAX];
    saga_status st;
    (void)udata;

    op = saga__v1__order_placed__unpack(NULL, ev->payload_len, ev->payload);
    if (op == NULL || !sum_lines(op, &res) || strlen(op->ship_to) != 2) {
        st = SAGA_EREJECT;
        goto out;
    }
    if (saga_ctx_has_tombstone(ctx, ev->order_id, INV_TOMBSTONE)) {
        st = SAGA_OK; /* cancelled first: never hold stock for it */
        goto out;
    }
    st = inv_res_load(ctx, ev->order_id, &old);
    if (st != SAGA_ENOTFOUND)
        goto out; /* SAGA_OK: already decided for this order; or a store error */

    /* The fault plan's stockout_rate makes the first line run out on purpose. */
    int stockout = saga_ctx_chance(ctx, "stockout_rate");
    /* All or none: look at every line before touching any. */
    for (uint32_t i = 0; i < res.nlines; i++) {
        st = inv_stock_load(ctx, res.lines[i].sku, &stock[i]);
        if (st != SAGA_OK && st != SAGA_ENOTFOUND)
            goto out;
        int short_of = stock[i].available < res.lines[i].quantity;
        if (short_of || (i == 0 && stockout)) {
            res.state = INV_RES_REJECTED;
            st = inv_res_store(ctx, ev->order_id, &res);
            if (st == SAGA_OK)
                st = emit_rejected(ctx, ev->order_id, &res.lines[i], stock[i].available, !short_of);
            if (st == SAGA_OK)
                st = saga_ctx_finish(ctx, ev->order_id);
            goto out;
        }
    }
    for (uint32_t i = 0; i < res.nlines; i++) {
        stock[i].available -= res.lines[i].quantity;
        stock[i].held += res.lines[i].quantity;
        st = inv_stock_store(ctx, res.lines[i].sku, &stock[i]);
        if (st != SAGA_OK)
            goto out;
    }
    res.state = INV_RES_RESERVED;
    st = inv_res_store(ctx, ev->order_id, &res);
    if (st != SAGA_OK)
        goto out;

    /* Fat event: shipping needs the destination, nobody calls back. The
     * lines are copied field by field: protobuf-c packs a received
     * message's unknown fields again, and version 1.4.1 writes a field of
     * tag 0 back as bytes it then refuses to unpack, so shipping would
     * dead-letter the event. Only what this service read goes out. */
    for (size_t i = 0; i < op->n_items; i++) {
        saga__v1__line_item__init(&lines[i]);
        lines[i].sku = op->items[i]->sku;
        lines[i].quantity = op->items[i]->quantity;
        lines[i].unit_cents = op->items[i]->unit_cents;
        linep[i] = &lines[i];
    }
    msg.n_items = op->n_items;
    msg.items = linep;
    msg.customer_id = op->customer_id;
    msg.ship_to = op->ship_to;
    st = svc_emit(ctx, "inventory.reserved", ev->order_id, &msg.base);
out:
    if (op != NULL)
        saga__v1__order_placed__free_unpacked(op, NULL);
    return st;
}

/* ---- order.confirmed, order.cancelled --------------------------------- */

static saga_status on_confirmed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderConfirmed *oc = NULL;
    Saga__V1__InventoryCommitted msg = SAGA__V1__INVENTORY_COMMITTED__INIT;
    Saga__V1__LineItem store[INV_LINES_MAX];
    Saga__V1__LineItem *items[INV_LINES_MAX];
    inv_res res;
    saga_status st;
    (void)udata;

    oc = saga__v1__order_confirmed__unpack(NULL, ev->payload_len, ev->payload);
    if (oc == NULL) {
        st = SAGA_EREJECT;
        goto out;
    }
    st = inv_res_load(ctx, ev->order_id, &res);
    if (st == SAGA_ENOTFOUND || (st == SAGA_OK && res.state != INV_RES_RESERVED)) {
        /* Committed already (a redelivery), or nothing held: the order
         * service confirms only after inventory.reserved, so there is
         * nothing else this could be. */
        st = SAGA_OK;
        goto out;
    }
    if (st != SAGA_OK)
        goto out;
    st = inv_stock_unhold(ctx, &res, 1);
    if (st != SAGA_OK)
        goto out;
    res.state = INV_RES_COMMITTED;
    st = inv_res_store(ctx, ev->order_id, &res);
    if (st != SAGA_OK)
        goto out;
    inv_res_items(&res, store, items);
    msg.n_items = res.nlines;
    msg.items = items;
    st = svc_emit(ctx, "inventory.committed", ev->order_id, &msg.base);
    if (st == SAGA_OK)
        st = saga_ctx_finish(ctx, ev->order_id);
out:
    if (oc != NULL)
        saga__v1__order_confirmed__free_unpacked(oc, NULL);
    return st;
}

static saga_status on_cancelled(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderCancelled *oc = NULL;
    saga_status st;
    (void)udata;

    oc = saga__v1__order_cancelled__unpack(NULL, ev->payload_len, ev->payload);
    if (oc == NULL || strlen(oc->reason) > REASON_MAX) {
        st = SAGA_EREJECT;
        goto out;
    }
    st = comp_release(ctx, ev->order_id, oc->reason);
out:
    if (oc != NULL)
        saga__v1__order_cancelled__free_unpacked(oc, NULL);
    return st;
}

/* ---- stock commands --------------------------------------------------- */

static saga_status reply_stock(saga_ctx *ctx, const char *error, const char *sku,
                               const inv_stock *s)
{
    Saga__V1__StockReply r = SAGA__V1__STOCK_REPLY__INIT;
    r.ok = error == NULL;
    r.error = (char *)(error != NULL ? error : "");
    r.sku = (char *)(sku != NULL && inv_valid_sku(sku) ? sku : "");
    if (s != NULL) {
        r.available = s->available;
        r.held = s->held;
        r.committed = s->committed;
    }
    return svc_reply(ctx, &r.base);
}

/* Appends sku to the list of known SKUs; SAGA_ETOOBIG once it is full. */
static saga_status add_known_sku(saga_ctx *ctx, const char *sku)
{
    const void *v = NULL;
    size_t len = 0, count = 0, slen = strlen(sku);
    char *list = NULL;
    saga_status st = saga_ctx_get(ctx, NULL, SKUS_KEY, &v, &len);
    if (st == SAGA_ENOTFOUND)
        len = 0;
    else if (st != SAGA_OK)
        goto out;
    for (size_t i = 0; i < len; i++)
        count += ((const char *)v)[i] == '\n';
    if (count >= SKUS_MAX) {
        st = SAGA_ETOOBIG;
        goto out;
    }
    list = malloc(len + slen + 1);
    if (list == NULL) {
        st = SAGA_ENOMEM;
        goto out;
    }
    if (len > 0)
        memcpy(list, v, len); /* v dies with the put below: copy first */
    memcpy(list + len, sku, slen);
    list[len + slen] = '\n';
    st = saga_ctx_put(ctx, NULL, SKUS_KEY, list, len + slen + 1);
out:
    free(list);
    return st;
}

static saga_status cmd_set(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                           void *udata)
{
    Saga__V1__SetStock *req = NULL;
    inv_stock s;
    saga_status st;
    (void)subject;
    (void)udata;

    req = saga__v1__set_stock__unpack(NULL, len, data);
    if (req == NULL) {
        st = reply_stock(ctx, "request does not decode as SetStock", NULL, NULL);
        goto out;
    }
    if (!inv_valid_sku(req->sku)) {
        st = reply_stock(ctx, "sku must be 1 to 64 of A-Z a-z 0-9 _ -", NULL, NULL);
        goto out;
    }
    if (req->quantity < 0 || req->quantity > STOCK_QTY_MAX) {
        st = reply_stock(ctx, "quantity must be 0 to 1000000000", req->sku, NULL);
        goto out;
    }
    st = inv_stock_load(ctx, req->sku, &s);
    if (st == SAGA_ENOTFOUND) {
        st = add_known_sku(ctx, req->sku);
        if (st == SAGA_ETOOBIG) {
            st =
                reply_stock(ctx, "too many SKUs: the inventory keeps at most 5000", req->sku, NULL);
            goto out;
        }
    }
    if (st == SAGA_OK) {
        /* Held and committed belong to orders; only the free amount is set. */
        s.available = req->quantity;
        st = inv_stock_store(ctx, req->sku, &s);
    }
    if (st != SAGA_OK) {
        /* The handler's writes are undone; the reply still goes out. */
        reply_stock(ctx, "store error, try again", req->sku, NULL);
        goto out;
    }
    st = reply_stock(ctx, NULL, req->sku, &s);
out:
    if (req != NULL)
        saga__v1__set_stock__free_unpacked(req, NULL);
    return st;
}

static saga_status cmd_get(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                           void *udata)
{
    Saga__V1__GetStock *req = NULL;
    inv_stock s;
    saga_status st;
    (void)subject;
    (void)udata;

    req = saga__v1__get_stock__unpack(NULL, len, data);
    if (req == NULL) {
        st = reply_stock(ctx, "request does not decode as GetStock", NULL, NULL);
        goto out;
    }
    if (!inv_valid_sku(req->sku)) {
        st = reply_stock(ctx, "sku must be 1 to 64 of A-Z a-z 0-9 _ -", NULL, NULL);
        goto out;
    }
    st = inv_stock_load(ctx, req->sku, &s);
    if (st == SAGA_OK || st == SAGA_ENOTFOUND)
        st = reply_stock(ctx, NULL, req->sku, &s); /* unknown: zeros, not an error */
    else
        reply_stock(ctx, "store error, try again", req->sku, NULL);
out:
    if (req != NULL)
        saga__v1__get_stock__free_unpacked(req, NULL);
    return st;
}

/* ---- queries ---------------------------------------------------------- */

/* The reply a query gets when the store failed; the client may ask again. */
static void reply_store_error(saga_ctx *ctx)
{
    svc_json_send(
        ctx, json_pack("{s:s, s:s}", "service", "inventory", "error", "store error, try again"));
}

static saga_status q_stock(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                           void *udata)
{
    const void *v = NULL;
    size_t vlen = 0;
    char *list = NULL;
    json_t *skus = NULL;
    int sent = 0; /* svc_json_send answered, also when it failed */
    saga_status st;
    (void)subject;
    (void)data;
    (void)len;
    (void)udata;

    st = saga_ctx_get(ctx, NULL, SKUS_KEY, &v, &vlen);
    if (st != SAGA_OK && st != SAGA_ENOTFOUND)
        goto out;
    /* A private, terminated copy: the stock reads below may move v. */
    list = malloc(vlen + 1);
    skus = json_array();
    if (list == NULL || skus == NULL) {
        st = SAGA_ENOMEM;
        goto out;
    }
    if (st == SAGA_OK && vlen > 0)
        memcpy(list, v, vlen);
    else
        vlen = 0;
    list[vlen] = '\0';

    for (char *line = list, *nl; *line != '\0'; line = nl + 1) {
        inv_stock s;
        nl = strchr(line, '\n');
        if (nl == NULL)
            break; /* every entry ends with a newline; a torn tail is ignored */
        *nl = '\0';
        st = inv_stock_load(ctx, line, &s);
        if (st == SAGA_EINVAL)
            continue;
        if (st != SAGA_OK && st != SAGA_ENOTFOUND)
            goto out;
        if (json_array_append_new(skus,
                                  json_pack("{s:s, s:I, s:I, s:I}", "sku", line, "available",
                                            (json_int_t)s.available, "held", (json_int_t)s.held,
                                            "committed", (json_int_t)s.committed)) != 0) {
            st = SAGA_ENOMEM;
            goto out;
        }
    }
    /* "o" steals skus, also when json_pack fails. */
    json_t *reply = json_pack("{s:s, s:o}", "service", "inventory", "skus", skus);
    skus = NULL;
    sent = 1;
    st = svc_json_send(ctx, reply);
out:
    if (!sent)
        reply_store_error(ctx);
    json_decref(skus);
    free(list);
    return st;
}

static saga_status q_order(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                           void *udata)
{
    char order[SAGA_ORDER_ID_MAX + 1];
    inv_res res;
    saga_status st;
    (void)subject;
    (void)udata;

    if (!svc_query_order_id(data, len, order))
        return svc_reply_not_order_id(ctx, "inventory");
    st = inv_res_load(ctx, order, &res);
    if (st != SAGA_OK && st != SAGA_ENOTFOUND) {
        reply_store_error(ctx);
        return st;
    }
    int tomb = saga_ctx_has_tombstone(ctx, order, INV_TOMBSTONE);
    json_t *items = json_array();
    for (uint32_t i = 0; items != NULL && i < res.nlines; i++) {
        if (json_array_append_new(items,
                                  json_pack("{s:s, s:I}", "sku", res.lines[i].sku, "quantity",
                                            (json_int_t)res.lines[i].quantity)) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    /* "o" steals items, also when json_pack fails; a NULL items fails it. */
    return svc_json_send(ctx, json_pack("{s:s, s:s, s:b, s:s, s:o, s:b}", "service", "inventory",
                                        "order_id", order, "found", st == SAGA_OK || tomb, "state",
                                        inv_res_state_name(res.state), "items", items, "tombstone",
                                        tomb));
}

/* ---- main ------------------------------------------------------------- */

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    static const char *const emits[] = {"inventory.reserved", "inventory.rejected",
                                        "inventory.committed", "inventory.released", NULL};
    static const svc_sub subs[] = {{"order.placed", on_placed},
                                   {"order.confirmed", on_confirmed},
                                   {"order.cancelled", on_cancelled},
                                   {NULL, NULL}};
    static const svc_cmd cmds[] = {{SAGA_SUBJ_STOCK_SET, cmd_set},
                                   {SAGA_SUBJ_STOCK_GET, cmd_get},
                                   {SAGA_SUBJ_STOCK_QUERY, q_stock},
                                   {"saga.q.inventory.order", q_order},
                                   {NULL, NULL}};
    (void)cfg;
    (void)udata;
    return svc_wire(svc, &(svc_wiring){.emits = emits, .subs = subs, .cmds = cmds});
}

int main(int argc, char **argv)
{
    return saga_app_main("inventory",
                         "Reserves stock for orders (all lines or none), commits it "
                         "when they are confirmed and releases it when they are "
                         "cancelled.",
                         NULL, argc, argv, setup, NULL);
}
