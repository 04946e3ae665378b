/* test_history.c - The order history read model: services/history indexes
 * every event by order id with the same effectively-once guarantees as any
 * service, so an order's trace equals the stream's events of that order,
 * even when the history participant is SIGKILLed mid-run and restarted;
 * and every event of an order carries the order's W3C trace context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "commands.pb-c.h"
#include "proc.h"
#include "tfleet.h"

#define DEADLINE_MS 120000
#define ORDERS 300
#define KILL_AT 100

static tfleet F;
static pid_t history_pid = -1;

static int group_setup(void **state)
{
    static const char *const env[] = {"ORDER_DEADLINE_MS=60000", NULL};
    *state = &F;
    if (tfleet_start(&F, SAGA_BUILD_DIR, env) != 0)
        return -1;
    history_pid = tfleet_start_extra(&F, "history", NULL);
    return history_pid > 0 ? 0 : -1;
}

static void place(char out[64], int i)
{
    char key[SAGA_ID_LEN + 1];
    tfleet_item it[] = {{"H1", 1 + i % 3, 250}};
    saga_ulid_new(key);
    Saga__V1__PlaceOrderReply *r = tfleet_place(&F, key, "hanna", it, 1, "DE", "EUR", 0);
    assert_non_null(r);
    if (!r->ok)
        fail_msg("place refused: %s", r->error);
    snprintf(out, 64, "%s", r->order_id);
    saga__v1__place_order_reply__free_unpacked(r, NULL);
}

static int fleet_idle(void *arg)
{
    (void)arg;
    return tjs_consumers_idle(&F.t, "SAGA_EVENTS");
}

/* The history's answer for one order, NULL if it did not answer within the test's
 * deadline (a loaded machine, a sanitizer build: a single request may time out). */
static Saga__V1__OrderHistory *history_of(const char *order_id)
{
    natsMsg *m = NULL;
    natsStatus s = NATS_TIMEOUT;
    int64_t deadline = tproc_now_ms() + DEADLINE_MS;
    while (s == NATS_TIMEOUT && tproc_now_ms() < deadline)
        s = natsConnection_Request(&m, F.t.nc, "saga.q.history.events", order_id,
                                   (int)strlen(order_id), 5000);
    if (s != NATS_OK)
        return NULL;
    Saga__V1__OrderHistory *h = saga__v1__order_history__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    return h;
}

/* The stream's events of the order, in stream order, and the history's
 * answer: the same event ids in the same order, none twice. */
static void expect_same(const char *order_id)
{
    tjs_msg *v = NULL;
    size_t n = 0;
    assert_int_equal(tjs_collect_events(&F.t, NULL, order_id, &v, &n), 0);
    Saga__V1__OrderHistory *h = history_of(order_id);
    assert_non_null(h);
    assert_true(h->found);
    assert_false(h->truncated);
    if (h->n_events != n)
        fail_msg("order %s: the stream has %zu events, the history %zu", order_id, n, h->n_events);
    for (size_t i = 0; i < n; i++) {
        saga_event ev;
        void *owner = NULL;
        assert_int_equal(
            saga_event_decode(h->events[i].data, h->events[i].len, &ev, &owner, NULL, 0), SAGA_OK);
        if (strcmp(ev.event_id, v[i].ev.event_id) != 0)
            fail_msg("order %s, event %zu: stream %s (%s), history %s (%s)", order_id, i,
                     v[i].ev.event_id, v[i].ev.type, ev.event_id, ev.type);
        free(owner);
    }
    saga__v1__order_history__free_unpacked(h, NULL);
    free(v);
}

static void test_history_equals_stream_after_a_kill(void **state)
{
    static char ids[ORDERS][64];
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "H1", 100000), 0);
    for (int i = 0; i < ORDERS; i++) {
        if (i == KILL_AT) {
            /* Mid-run: whatever it had in hand is redelivered after the restart. */
            assert_int_equal(tproc_kill(history_pid), 0);
        }
        if (i == 2 * KILL_AT) {
            history_pid = tfleet_start_extra(&F, "history", NULL);
            assert_true(history_pid > 0);
        }
        place(ids[i], i);
    }
    assert_int_equal(tproc_wait_until(fleet_idle, NULL, DEADLINE_MS), 0);
    for (int i = 0; i < ORDERS; i++)
        expect_same(ids[i]);
    printf("history: orders=%d checked=%d history_killed_at=%d\n", ORDERS, ORDERS, KILL_AT);
}

/* The W3C trace context of one order's events: one trace id (the caller's
 * when it sent one), a span of its own for every event, the header equal to
 * the envelope's trace. Returns the trace id. */
static void expect_one_trace(const char *order_id, const char *trace_id, const char *client_span)
{
    tjs_msg *v = NULL;
    size_t n = 0;
    saga_traceparent first, tp, other;
    assert_int_equal(tjs_collect_events(&F.t, NULL, order_id, &v, &n), 0);
    /* placed, charged, reserved, scheduled, confirmed, committed, sent */
    if (n < 7)
        fail_msg("order %s: %zu events", order_id, n);
    assert_true(saga_traceparent_parse(v[0].ev.trace, &first));
    if (trace_id != NULL)
        assert_string_equal(first.trace_id, trace_id);
    for (size_t i = 0; i < n; i++) {
        if (!saga_traceparent_parse(v[i].ev.trace, &tp))
            fail_msg("order %s, %s: trace \"%s\" is no traceparent", order_id, v[i].ev.type,
                     v[i].ev.trace);
        if (strcmp(v[i].traceparent, v[i].ev.trace) != 0)
            fail_msg("order %s, %s: header \"%s\", envelope \"%s\"", order_id, v[i].ev.type,
                     v[i].traceparent, v[i].ev.trace);
        assert_string_equal(tp.trace_id, first.trace_id);
        if (client_span != NULL)
            assert_string_not_equal(tp.span_id, client_span);
        for (size_t j = 0; j < i; j++) {
            assert_true(saga_traceparent_parse(v[j].ev.trace, &other));
            if (strcmp(other.span_id, tp.span_id) == 0)
                fail_msg("order %s: %s and %s share span %s", order_id, v[j].ev.type, v[i].ev.type,
                         tp.span_id);
        }
    }
    free(v);
}

static void test_one_trace_per_order(void **state)
{
    static const char client_trace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
    static const char client_span[] = "00f067aa0ba902b7";
    char traceparent[SAGA_TRACEPARENT_LEN + 1], key[SAGA_ID_LEN + 1], traced[64], plain[2][64];
    tfleet_item it[] = {{"H1", 1, 250}};
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "H1", 100000), 0);
    snprintf(traceparent, sizeof(traceparent), "00-%s-%s-01", client_trace, client_span);
    saga_ulid_new(key);
    Saga__V1__PlaceOrderReply *r =
        tfleet_place_traced(&F, traceparent, key, "tracy", it, 1, "DE", "EUR", 0);
    assert_non_null(r);
    assert_true(r->ok);
    snprintf(traced, sizeof(traced), "%s", r->order_id);
    saga__v1__place_order_reply__free_unpacked(r, NULL);
    place(plain[0], 0);
    place(plain[1], 1);
    assert_int_equal(tproc_wait_until(fleet_idle, NULL, DEADLINE_MS), 0);
    expect_one_trace(traced, client_trace, client_span);
    expect_one_trace(plain[0], NULL, NULL);
    expect_one_trace(plain[1], NULL, NULL);
    /* Orders placed without a trace context each start their own. */
    tjs_msg *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    saga_traceparent ta, tb;
    assert_int_equal(tjs_collect_events(&F.t, "order.placed", plain[0], &a, &na), 0);
    assert_int_equal(tjs_collect_events(&F.t, "order.placed", plain[1], &b, &nb), 0);
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
    assert_true(saga_traceparent_parse(a[0].ev.trace, &ta));
    assert_true(saga_traceparent_parse(b[0].ev.trace, &tb));
    assert_string_not_equal(ta.trace_id, tb.trace_id);
    free(a);
    free(b);
}

static void test_unknown_order_is_not_found(void **state)
{
    (void)state;
    Saga__V1__OrderHistory *h = history_of("NOSUCHORDER");
    assert_non_null(h);
    assert_false(h->found);
    assert_int_equal(h->n_events, 0);
    saga__v1__order_history__free_unpacked(h, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_equals_stream_after_a_kill),
        cmocka_unit_test(test_one_trace_per_order),
        cmocka_unit_test(test_unknown_order_is_not_found),
    };
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
