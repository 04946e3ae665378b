/* test_hostile.c - The fleet and its audit against someone who can publish on
 * evt.>: garbage in the stream, line items with fields no schema knows, and
 * forged events (an order nobody placed, a charge payment never made, sums
 * that overflow). The services must not be fooled into a broken saga, and
 * `sagactl audit` must name every forged order instead of saying OK. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "events.pb-c.h"
#include "proc.h"
#include "tfleet.h"

#define SAGACTL SAGA_BUILD_DIR "/tools/sagactl"
#define WAIT_MS 60000
#define GARBAGE 300

static tfleet F;
static char OUT[1 << 18];

static int group_setup(void **state)
{
    *state = &F;
    return tfleet_start(&F, SAGA_BUILD_DIR, NULL);
}

/* Runs sagactl --url=URL ARGS... with stdout and stderr into OUT; returns
 * its exit status, -1 when it did not run in time. */
static int sagactl(const char *a1, const char *a2, const char *a3)
{
    char url[200], log[600];
    int status = 0;
    snprintf(url, sizeof(url), "--url=%s", tsrv_url(F.srv));
    snprintf(log, sizeof(log), "%s/sagactl.out", tsrv_dir(F.srv));
    remove(log);
    const char *argv[] = {SAGACTL, url, a1, a2, a3, NULL};
    pid_t pid = tproc_spawn(argv, NULL, log);
    if (pid <= 0 || tproc_wait(pid, 300000, &status) != 0)
        return -1;
    FILE *fp = fopen(log, "r");
    size_t n = fp != NULL ? fread(OUT, 1, sizeof(OUT) - 1, fp) : 0;
    OUT[n] = '\0';
    if (fp != NULL)
        fclose(fp);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Fails unless the last output has a line holding all of a, b and c. */
static void assert_line_has(const char *a, const char *b, const char *c)
{
    for (char *line = OUT; *line != '\0';) {
        char *nl = strchr(line, '\n');
        size_t n = nl != NULL ? (size_t)(nl - line) : strlen(line);
        char buf[2048];
        snprintf(buf, sizeof(buf), "%.*s", (int)n, line);
        if (strstr(buf, a) != NULL && strstr(buf, b) != NULL && (c == NULL || strstr(buf, c)))
            return;
        line += n + (nl != NULL);
    }
    fail_msg("no line with \"%s\", \"%s\" and \"%s\" in:\n%s", a, b, c ? c : "", OUT);
}

typedef struct seen_cond {
    const char *order_id;
    const char *type;
} seen_cond;

static int event_seen(void *arg)
{
    seen_cond *c = arg;
    tjs_msg *v = NULL;
    size_t n = 0;
    int found = 0;
    if (tjs_collect_events(&F.t, c->type, c->order_id, &v, &n) == 0)
        found = n > 0;
    free(v);
    return found;
}

static void wait_event(const char *order_id, const char *type)
{
    seen_cond c = {order_id, type};
    if (tproc_wait_until(event_seen, &c, WAIT_MS) != 0)
        fail_msg("no %s for order %s", type, order_id);
}

static int consumers_idle(void *arg)
{
    (void)arg;
    return tjs_consumers_idle(&F.t, "SAGA_EVENTS");
}

/* Places a real order through the order service and waits until it is final. */
static void place(const char *key, long long unit_cents, char *order_id, size_t cap,
                  const char *want_state)
{
    tfleet_item it = {"HOST-SKU", 1, unit_cents};
    Saga__V1__PlaceOrderReply *r = tfleet_place(&F, key, "cust-h", &it, 1, "DE", "EUR", 0);
    assert_non_null(r);
    assert_true(r->ok);
    snprintf(order_id, cap, "%s", r->order_id);
    saga__v1__place_order_reply__free_unpacked(r, NULL);
    wait_event(order_id,
               strcmp(want_state, "CONFIRMED") == 0 ? "order.confirmed" : "order.cancelled");
}

/* An OrderPlaced with one line of qty x unit, the given total, and extra
 * bytes appended to the line item (fields no schema defines). */
static size_t placed_bytes(uint8_t *out, size_t cap, int qty, long long unit, long long total,
                           const uint8_t *extra, size_t extra_len)
{
    Saga__V1__LineItem li = SAGA__V1__LINE_ITEM__INIT;
    Saga__V1__OrderPlaced op = SAGA__V1__ORDER_PLACED__INIT;
    uint8_t item[256];
    li.sku = "HOST-SKU";
    li.quantity = qty;
    li.unit_cents = unit;
    size_t ilen = saga__v1__line_item__pack(&li, item);
    if (extra_len > 0)
        memcpy(item + ilen, extra, extra_len);
    ilen += extra_len;
    op.customer_id = "cust-forged";
    op.total_cents = total;
    op.currency = "EUR";
    op.ship_to = "DE";
    op.deadline_unix_ms = tproc_now_ms() + 30000;
    size_t n = saga__v1__order_placed__get_packed_size(&op);
    assert_true(n + ilen + 2 < cap && ilen < 128);
    saga__v1__order_placed__pack(&op, out);
    out[n++] = 0x12; /* field 2 (items), length-delimited */
    out[n++] = (uint8_t)ilen;
    memcpy(out + n, item, ilen);
    return n + ilen;
}

/* Garbage on evt.> (bytes that are no envelope, envelopes on a subject that
 * is not theirs, order events whose payload is not their message) is counted
 * apart: no orders in stats, no per-order violations in the audit. */
static void test_1_garbage_is_counted_apart(void **state)
{
    char real[64], subject[128], id[SAGA_ID_LEN + 1];
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "HOST-SKU", 1000), 0);
    place("hostile-real-1", 1000, real, sizeof(real), "CONFIRMED");
    for (int i = 0; i < GARBAGE; i++) {
        char order[32];
        snprintf(order, sizeof(order), "junk%d", i);
        if (i % 3 == 0) {
            snprintf(subject, sizeof(subject), "%s", tjs_subject("order.placed", order));
            assert_int_equal(tjs_publish_raw(&F.t, subject, "\x01\x02garbage", 9, NULL), 0);
        } else if (i % 3 == 1) {
            /* An empty OrderPlaced: no lines, no customer. */
            assert_int_equal(tjs_publish_payload(&F.t, "order.placed", order, NULL, "", 0, id), 0);
        } else {
            uint8_t b[256];
            size_t n = placed_bytes(b, sizeof(b), 1, 100, 100, NULL, 0);
            char wrong[64];
            snprintf(wrong, sizeof(wrong), "evt.garbage.%s", order);
            /* A valid order.placed, on a subject that is not its own and
             * that no service consumes: stored, never acted on, and counted
             * apart by the audit. */
            saga_event ev;
            uint8_t *enc = NULL;
            size_t elen = 0;
            memset(&ev, 0, sizeof(ev));
            saga_ulid_new(ev.event_id);
            snprintf(ev.type, sizeof(ev.type), "order.placed");
            snprintf(ev.order_id, sizeof(ev.order_id), "%s", order);
            snprintf(ev.producer, sizeof(ev.producer), "order");
            ev.schema_version = 1;
            ev.sequence = 1;
            ev.time_ms = tproc_now_ms();
            ev.payload = b;
            ev.payload_len = n;
            assert_int_equal(saga_event_encode(&ev, &enc, &elen), SAGA_OK);
            assert_int_equal(tjs_publish_raw(&F.t, wrong, enc, elen, ev.event_id), 0);
            free(enc);
        }
    }
    assert_int_equal(tproc_wait_until(consumers_idle, NULL, WAIT_MS), 0);
    assert_int_equal(sagactl("stats", "--json", NULL), 0);
    if (strstr(OUT, "\"total\":1,") == NULL)
        fail_msg("stats counts garbage as orders:\n%s", OUT);
    char want[64];
    /* stats reads evt.order.> only: two thirds of the garbage. */
    snprintf(want, sizeof(want), "\"undecodable\":%d", GARBAGE / 3 * 2);
    if (strstr(OUT, want) == NULL)
        fail_msg("stats does not count the garbage apart (want %s):\n%s", want, OUT);
    snprintf(want, sizeof(want), "\"undecodable\":%d", GARBAGE);
    int rc = sagactl("audit", "--json", "--no-spool");
    if (rc != 0 || strstr(OUT, want) == NULL || strstr(OUT, "\"orders\":1,") == NULL)
        fail_msg("audit exited %d; want it to pass with %s:\n%s", rc, want, OUT);
}

/* Line items with fields no schema defines, one of them with tag 0 (bytes
 * 80 00): inventory used to pass them on into inventory.reserved, where
 * protobuf-c wrote tag 0 back as 00 00, which shipping could not read. */
static void test_2_unknown_fields_are_not_passed_on(void **state)
{
    static const uint8_t unknown[] = {0x48, 0x07, 0x80, 0x00, 0x05}; /* field 9; field 0 */
    uint8_t b[256];
    (void)state;
    size_t n = placed_bytes(b, sizeof(b), 2, 500, 1000, unknown, sizeof(unknown));
    assert_int_equal(tjs_publish_payload(&F.t, "order.placed", "hostile-unknown", NULL, b, n, NULL),
                     0);
    wait_event("hostile-unknown", "inventory.reserved");
    wait_event("hostile-unknown", "shipping.scheduled");
    tjs_msg *v = NULL;
    size_t nd = 0;
    assert_int_equal(tjs_collect(&F.t, "SAGA_DLQ", "dlq.>", &v, &nd), 0);
    for (size_t i = 0; i < nd; i++)
        if (v[i].decoded && strcmp(v[i].ev.order_id, "hostile-unknown") == 0)
            fail_msg("dead letter for the order: %s (%s)", v[i].ev.type, v[i].reason);
    free(v);
}

/* An order.placed the order service never saw, 5 x 1,000.00 with a total of
 * one cent, then an order.confirmed: payment declines the mismatch, and the
 * audit names the order as forged. */
static void test_3_forged_order_is_declined_and_named(void **state)
{
    uint8_t b[256];
    char buf[4096];
    (void)state;
    size_t n = placed_bytes(b, sizeof(b), 5, 100000, 1, NULL, 0);
    assert_int_equal(tjs_publish_payload(&F.t, "order.placed", "hostile-forged", NULL, b, n, NULL),
                     0);
    wait_event("hostile-forged", "payment.declined");
    tfleet_view(&F, "payment", "hostile-forged", buf, sizeof(buf));
    if (strstr(buf, "\"declined\"") == NULL)
        fail_msg("payment charged a total that is not its lines' sum: %s", buf);
    Saga__V1__OrderConfirmed oc = SAGA__V1__ORDER_CONFIRMED__INIT;
    uint8_t cb[128];
    oc.customer_id = "cust-forged";
    oc.total_cents = 1;
    size_t cn = saga__v1__order_confirmed__pack(&oc, cb);
    assert_int_equal(
        tjs_publish_payload(&F.t, "order.confirmed", "hostile-forged", NULL, cb, cn, NULL), 0);
    assert_int_equal(tproc_wait_until(consumers_idle, NULL, WAIT_MS), 0);
    assert_int_equal(sagactl("audit", "--no-spool", NULL), 1);
    assert_line_has("hostile-forged", "forged", "order.placed");
    assert_line_has("hostile-unknown", "forged", "never placed");
}

/* A payment.charged for an order payment declined (over its limit). */
static void test_4_forged_charge_is_named(void **state)
{
    char order[64];
    (void)state;
    place("hostile-declined", 900000, order, sizeof(order), "CANCELLED");
    Saga__V1__PaymentCharged pc = SAGA__V1__PAYMENT_CHARGED__INIT;
    uint8_t b[128];
    pc.customer_id = "cust-h";
    pc.amount_cents = 900000;
    pc.currency = "EUR";
    size_t n = saga__v1__payment_charged__pack(&pc, b);
    assert_int_equal(tjs_publish_payload(&F.t, "payment.charged", order, NULL, b, n, NULL), 0);
    assert_int_equal(tproc_wait_until(consumers_idle, NULL, WAIT_MS), 0);
    assert_int_equal(sagactl("audit", "--no-spool", NULL), 1);
    assert_line_has(order, "forged", "payment.charged");
}

/* Two payment.charged of INT64_MAX cents for one order: the sum is a
 * finding, not signed overflow. */
static void test_5_overflowing_charges_are_a_violation(void **state)
{
    char order[64];
    (void)state;
    place("hostile-overflow", 1000, order, sizeof(order), "CONFIRMED");
    Saga__V1__PaymentCharged pc = SAGA__V1__PAYMENT_CHARGED__INIT;
    uint8_t b[128];
    pc.customer_id = "cust-h";
    pc.amount_cents = INT64_MAX;
    pc.currency = "EUR";
    size_t n = saga__v1__payment_charged__pack(&pc, b);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tjs_publish_payload(&F.t, "payment.charged", order, NULL, b, n, NULL), 0);
    assert_int_equal(tproc_wait_until(consumers_idle, NULL, WAIT_MS), 0);
    assert_int_equal(sagactl("audit", "--no-spool", NULL), 1);
    assert_line_has(order, "overflow", "64 bits");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1_garbage_is_counted_apart),
        cmocka_unit_test(test_2_unknown_fields_are_not_passed_on),
        cmocka_unit_test(test_3_forged_order_is_declined_and_named),
        cmocka_unit_test(test_4_forged_charge_is_named),
        cmocka_unit_test(test_5_overflowing_charges_are_a_violation),
    };
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
