/* gen_corpus.c - Writes the seed corpora of the fuzz targets: a few small,
 * valid inputs each, into <dir>/<target>/. Run by hand when a schema or a
 * harness's input format changes; its output is committed under
 * tests/fuzz/corpus/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.pb-c.h"
#include "events.pb-c.h"
#include "saga/event.h"

#define SEP "\n--\n"
#define PLACEHOLDER "ZZZZZZZZZZZZZZZZZZZZZZZZZZ" /* the order the input placed */
#define BUF_MAX 4096

static const char *root;

typedef struct seed {
    unsigned char data[BUF_MAX];
    size_t len;
} seed;

static void add(seed *s, const void *p, size_t n)
{
    if (s->len + n > sizeof(s->data)) {
        fprintf(stderr, "gen_corpus: seed too large\n");
        exit(1);
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
}

/* Appends one record: the selector byte (handler index, order slot) and a message. */
static void rec(seed *s, unsigned handler, unsigned slot, const ProtobufCMessage *m)
{
    unsigned char sel = (unsigned char)(handler | (slot << 6));
    uint8_t buf[BUF_MAX];
    if (s->len > 0)
        add(s, SEP, strlen(SEP));
    add(s, &sel, 1);
    if (m != NULL) {
        size_t n = protobuf_c_message_get_packed_size(m);
        if (n > sizeof(buf))
            exit(1);
        protobuf_c_message_pack(m, buf);
        add(s, buf, n);
    }
}

static void rec_text(seed *s, unsigned handler, unsigned slot, const char *text)
{
    unsigned char sel = (unsigned char)(handler | (slot << 6));
    if (s->len > 0)
        add(s, SEP, strlen(SEP));
    add(s, &sel, 1);
    add(s, text, strlen(text));
}

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_seed(const char *target, const char *name, seed *s)
{
    put(target, name, s->data, s->len);
    s->len = 0;
}

static void put_text(const char *target, const char *name, const char *text)
{
    put(target, name, text, strlen(text));
}

/* ---- messages --------------------------------------------------------- */

static Saga__V1__LineItem item1 = SAGA__V1__LINE_ITEM__INIT, item2 = SAGA__V1__LINE_ITEM__INIT;
static Saga__V1__LineItem *items[2] = {&item1, &item2};

static void init_items(void)
{
    item1.sku = "SKU-1";
    item1.quantity = 2;
    item1.unit_cents = 1250;
    item2.sku = "SKU-2";
    item2.quantity = 1;
    item2.unit_cents = 500;
}

static Saga__V1__OrderPlaced placed(void)
{
    Saga__V1__OrderPlaced m = SAGA__V1__ORDER_PLACED__INIT;
    m.customer_id = "c-1";
    m.n_items = 2;
    m.items = items;
    m.total_cents = 3000;
    m.currency = "EUR";
    m.ship_to = "DE";
    m.deadline_unix_ms = 1700000060000LL;
    return m;
}

static void envelope_seeds(void)
{
    saga_event ev;
    uint8_t *buf;
    size_t len;
    Saga__V1__OrderPlaced p = placed();
    uint8_t payload[BUF_MAX];
    size_t plen = protobuf_c_message_pack(&p.base, payload);
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.event_id, sizeof(ev.event_id), "01HF0000000000000000000001");
    snprintf(ev.type, sizeof(ev.type), "order.placed");
    ev.schema_version = 1;
    snprintf(ev.order_id, sizeof(ev.order_id), "01HF0000000000000000000000");
    snprintf(ev.producer, sizeof(ev.producer), "order");
    ev.sequence = 1;
    ev.time_ms = 1700000000000LL;
    snprintf(ev.trace, sizeof(ev.trace), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    ev.payload = payload;
    ev.payload_len = plen;
    if (saga_event_encode(&ev, &buf, &len) != SAGA_OK)
        exit(1);
    put("fuzz_envelope", "order_placed", buf, len);
    /* The same envelope as a dead letter, with the headers the runtime sets. */
    seed s = {.len = 0};
    const char *hdr = "Saga-Reason: rejected by the order.placed handler\nSaga-Service: payment\n"
                      "Saga-Deliveries: 1\nSaga-Subject: evt.order.placed.o-1\nSaga-Replays: 2\n\n";
    add(&s, hdr, strlen(hdr));
    add(&s, buf, len);
    put_seed("fuzz_sagactl_dlq", "rejected_event", &s);
    free(buf);

    memset(&ev, 0, sizeof(ev));
    snprintf(ev.event_id, sizeof(ev.event_id), "01HF0000000000000000000002");
    snprintf(ev.type, sizeof(ev.type), "payment.charged");
    ev.schema_version = 1;
    snprintf(ev.order_id, sizeof(ev.order_id), "o-1");
    snprintf(ev.causation_id, sizeof(ev.causation_id), "01HF0000000000000000000001");
    snprintf(ev.producer, sizeof(ev.producer), "payment");
    ev.sequence = 7;
    ev.time_ms = 1700000000100LL;
    if (saga_event_encode(&ev, &buf, &len) != SAGA_OK)
        exit(1);
    put("fuzz_envelope", "empty_payload", buf, len);
    free(buf);

    put_text("fuzz_sagactl_dlq", "undecodable",
             "Saga-Reason: undecodable: decode error: bad envelope\nSaga-Service: order\n"
             "Saga-Deliveries: 1\n\nnot an envelope");
    s.len = 0;
    add(&s, "\n\n\x00", 3);
    add(&s, payload, plen);
    put_seed("fuzz_sagactl_dlq", "placed_payload", &s);
}

/* Handler indexes follow each service's setup(): subscriptions first, then commands. */
static void order_seeds(void)
{
    seed s = {.len = 0};
    Saga__V1__PlaceOrder po = SAGA__V1__PLACE_ORDER__INIT;
    po.idempotency_key = "k-1";
    po.customer_id = "c-1";
    po.n_items = 2;
    po.items = items;
    po.currency = "EUR";
    po.ship_to = "DE";
    Saga__V1__CancelOrder co = SAGA__V1__CANCEL_ORDER__INIT;
    co.order_id = PLACEHOLDER;
    co.reason = "customer";
    Saga__V1__ShipmentScheduled sch = SAGA__V1__SHIPMENT_SCHEDULED__INIT;
    sch.shipment_id = "s-1";
    sch.ship_to = "DE";
    sch.carrier = "dhl";
    Saga__V1__PaymentDeclined dec = SAGA__V1__PAYMENT_DECLINED__INIT;
    dec.customer_id = "c-1";
    dec.amount_cents = 3000;
    dec.currency = "EUR";
    dec.reason = "limit";
    Saga__V1__InventoryRejected rej = SAGA__V1__INVENTORY_REJECTED__INIT;
    rej.sku = "SKU-1";
    rej.asked = 2;
    rej.available = 1;
    Saga__V1__ShipmentFailed sf = SAGA__V1__SHIPMENT_FAILED__INIT;
    sf.ship_to = "XX";
    sf.reason = "unserved";
    Saga__V1__ParticipantVetoed veto = SAGA__V1__PARTICIPANT_VETOED__INIT;
    veto.participant = "fraud";
    veto.reason = "velocity";

    rec(&s, 5, 0, &po.base);
    rec_text(&s, 7, 3, PLACEHOLDER);
    put_seed("fuzz_order", "place_query", &s);
    rec(&s, 5, 0, &po.base);
    rec(&s, 0, 3, &sch.base);
    rec_text(&s, 7, 3, PLACEHOLDER);
    put_seed("fuzz_order", "place_scheduled", &s);
    rec(&s, 5, 0, &po.base);
    rec(&s, 6, 3, &co.base);
    put_seed("fuzz_order", "place_cancel", &s);
    rec(&s, 5, 0, &po.base);
    rec(&s, 1, 3, &dec.base);
    rec(&s, 2, 3, &rej.base);
    put_seed("fuzz_order", "place_declined", &s);
    rec(&s, 5, 0, &po.base);
    rec(&s, 3, 3, &sf.base);
    rec(&s, 4, 3, &veto.base);
    put_seed("fuzz_order", "place_failed_vetoed", &s);
}

static void participant_seeds(const char *target, int placed_at, int cancelled_at, int confirmed_at,
                              int query_at)
{
    seed s = {.len = 0};
    Saga__V1__OrderPlaced p = placed();
    Saga__V1__OrderCancelled c = SAGA__V1__ORDER_CANCELLED__INIT;
    c.customer_id = "c-1";
    c.n_items = 2;
    c.items = items;
    c.total_cents = 3000;
    c.currency = "EUR";
    c.reason = "customer";
    c.failed_step = "order.cancel";
    c.detail = "asked by the customer";
    Saga__V1__OrderConfirmed k = SAGA__V1__ORDER_CONFIRMED__INIT;
    k.customer_id = "c-1";
    k.n_items = 2;
    k.items = items;
    k.total_cents = 3000;
    k.currency = "EUR";
    k.shipment_id = "s-1";

    if (placed_at >= 0) {
        rec(&s, (unsigned)placed_at, 0, &p.base);
        rec_text(&s, (unsigned)query_at, 0, "o-1\n");
        put_seed(target, "placed_query", &s);
    }
    if (cancelled_at >= 0) {
        if (placed_at >= 0)
            rec(&s, (unsigned)placed_at, 0, &p.base);
        rec(&s, (unsigned)cancelled_at, 0, &c.base);
        put_seed(target, "cancelled", &s);
    }
    if (confirmed_at >= 0) {
        if (placed_at >= 0)
            rec(&s, (unsigned)placed_at, 1, &p.base);
        rec(&s, (unsigned)confirmed_at, 1, &k.base);
        rec_text(&s, (unsigned)query_at, 1, "o-2");
        put_seed(target, "confirmed_query", &s);
    }
}

static void inventory_seeds(void)
{
    seed s = {.len = 0};
    Saga__V1__SetStock set = SAGA__V1__SET_STOCK__INIT;
    set.sku = "SKU-1";
    set.quantity = 10;
    Saga__V1__SetStock set2 = SAGA__V1__SET_STOCK__INIT;
    set2.sku = "SKU-2";
    set2.quantity = 1;
    Saga__V1__GetStock get = SAGA__V1__GET_STOCK__INIT;
    get.sku = "SKU-1";
    Saga__V1__OrderPlaced p = placed();
    rec(&s, 3, 0, &set.base);
    rec(&s, 3, 0, &set2.base);
    rec(&s, 0, 0, &p.base);
    rec(&s, 4, 0, &get.base);
    rec_text(&s, 6, 0, "o-1");
    rec_text(&s, 5, 0, "SKU-1");
    put_seed("fuzz_inventory", "set_place_get", &s);
}

static void shipping_seeds(void)
{
    seed s = {.len = 0};
    Saga__V1__PaymentCharged ch = SAGA__V1__PAYMENT_CHARGED__INIT;
    ch.customer_id = "c-1";
    ch.amount_cents = 3000;
    ch.currency = "EUR";
    Saga__V1__InventoryReserved res = SAGA__V1__INVENTORY_RESERVED__INIT;
    res.n_items = 2;
    res.items = items;
    res.customer_id = "c-1";
    res.ship_to = "DE";
    Saga__V1__OrderCancelled c = SAGA__V1__ORDER_CANCELLED__INIT;
    c.reason = "customer";
    rec(&s, 0, 0, &ch.base);
    rec(&s, 1, 0, &res.base);
    rec_text(&s, 3, 0, "o-1");
    put_seed("fuzz_shipping", "charged_reserved", &s);
    rec(&s, 1, 0, &res.base);
    rec(&s, 2, 0, &c.base);
    rec(&s, 0, 0, &ch.base);
    put_seed("fuzz_shipping", "reserved_cancelled", &s);
}

static void notification_seeds(void)
{
    seed s = {.len = 0};
    Saga__V1__PaymentRefunded r = SAGA__V1__PAYMENT_REFUNDED__INIT;
    r.customer_id = "c-1";
    r.amount_cents = 3000;
    r.currency = "EUR";
    r.reason = "order_cancelled";
    participant_seeds("fuzz_notification", -1, 1, 0, 3);
    rec(&s, 2, 0, &r.base);
    rec_text(&s, 3, 0, "o-1");
    put_seed("fuzz_notification", "refunded", &s);
}

static void text_seeds(void)
{
    put_text("fuzz_faults", "rates", "error_rate=0.1,dup_rate=0.05 reorder_rate=0.2");
    put_text("fuzz_faults", "business", "decline_rate=0.5 out_of_stock_rate=0.25 seed=42");
    put_text("fuzz_faults", "crash", "clear crash=after_commit:3 delay_ms=10");
    put_text("fuzz_config", "numbers",
             "payment\nSAGA_BATCH_MAX=64\nSAGA_ACK_WAIT_MS=5000\n"
             "SAGA_MAP_SIZE=128M\nSAGA_SYNC=no");
    put_text("fuzz_config", "strings",
             "order\nSAGA_NATS_URL=nats://127.0.0.1:4223\n"
             "SAGA_DATA_DIR=/tmp/x\nSAGA_LOG_LEVEL=debug\n"
             "SAGA_FAULTS=error_rate=0.1\nSAGA_GATES=fraud");
    put_text("fuzz_config", "bad", "inventory\nSAGA_MAX_DELIVER=0\nSAGA_RETENTION_MS=x");
    put_text("fuzz_sagactl_json", "order",
             "state\n{\"service\":\"order\",\"order_id\":\"o-1\",\"found\":true,"
             "\"state\":\"CONFIRMED\",\"total_cents\":3000}");
    put_text("fuzz_sagactl_json", "nested",
             "stats\n{\"svc\":\"payment\",\"stats\":{\"received\":3,\"processed\":2},"
             "\"faults\":{\"seed\":1,\"error_rate\":0},\"list\":[1,\"a\\\"b\",null]}");
    put_text("fuzz_sagactl_json", "escapes",
             "detail\n{\"detail\":\"line\\nnext \\u00e9 \\\\ end\",\"ok\":false,\"n\":-12}");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    init_items();
    envelope_seeds();
    order_seeds();
    /* payment: order.placed, order.cancelled, order.confirmed, query */
    participant_seeds("fuzz_payment", 0, 1, 2, 3);
    inventory_seeds();
    shipping_seeds();
    notification_seeds();
    /* fraud: order.placed, query */
    participant_seeds("fuzz_fraud", 0, -1, -1, 1);
    text_seeds();
    return 0;
}
