/* test_install.c - A participant built outside the tree against the installed
 * runtime (tests/install/run.sh builds it and passes its path) joins the
 * fleet: it receives order.placed and its probe.cleared is in the stream,
 * caused by that order.placed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "saga/saga.h"
#include "tfleet.h"

#define DEADLINE_MS 60000

static const char *probe_bin;
static tfleet F;

static int group_setup(void **state)
{
    *state = &F;
    if (tfleet_start(&F, SAGA_BUILD_DIR, NULL) != 0)
        return -1;
    return tfleet_start_bin(&F, "probe", probe_bin, NULL) > 0 ? 0 : -1;
}

typedef struct found {
    const char *type, *order;
    tjs_msg msg;
} found;

/* 1 once an event of f->type for f->order is in the event stream; keeps the first. */
static int in_stream(void *arg)
{
    found *f = arg;
    tjs_msg *v = NULL;
    size_t n = 0;
    int ok = tjs_collect_events(&F.t, f->type, f->order, &v, &n) == 0 && n > 0;
    if (ok)
        f->msg = v[0];
    free(v);
    return ok;
}

static int log_has(void *arg)
{
    char path[600], line[4096];
    int hit = 0;
    snprintf(path, sizeof(path), "%s/logs/probe.log", tsrv_dir(F.srv));
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    while (!hit && fgets(line, sizeof(line), fp) != NULL)
        hit = strstr(line, arg) != NULL;
    fclose(fp);
    return hit;
}

/* The counters are updated once the whole batch is done, a moment after its
 * events are published: wait for them too. */
static int probe_processed(void *arg)
{
    (void)arg;
    return tjs_stat(&F.t, "probe", "processed") >= 1;
}

static void test_installed_participant_clears_placed_orders(void **state)
{
    char key[SAGA_ID_LEN + 1], order_id[64];
    char needle[128];
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "WIDGET", 10), 0);
    saga_ulid_new(key);
    tfleet_item it[] = {{"WIDGET", 1, 1500}};
    Saga__V1__PlaceOrderReply *r = tfleet_place(&F, key, "alice", it, 1, "DE", "EUR", 0);
    assert_non_null(r);
    if (!r->ok)
        fail_msg("place refused: %s", r->error);
    snprintf(order_id, sizeof(order_id), "%s", r->order_id);
    saga__v1__place_order_reply__free_unpacked(r, NULL);

    found placed, cleared;
    memset(&placed, 0, sizeof(placed));
    memset(&cleared, 0, sizeof(cleared));
    placed.type = "order.placed";
    placed.order = order_id;
    cleared.type = "probe.cleared";
    cleared.order = order_id;
    assert_int_equal(tproc_wait_until(in_stream, &placed, DEADLINE_MS), 0);
    if (tproc_wait_until(in_stream, &cleared, DEADLINE_MS) != 0)
        fail_msg("no probe.cleared for %s in %s", order_id, SAGA_STREAM_EVENTS);

    /* The participant's event is a real envelope: its producer, caused by the order. */
    assert_true(cleared.msg.decoded);
    assert_string_equal(cleared.msg.ev.producer, "probe");
    assert_string_equal(cleared.msg.ev.order_id, order_id);
    assert_true(placed.msg.decoded);
    assert_string_equal(cleared.msg.ev.causation_id, placed.msg.ev.event_id);

    /* It received the event through the runtime: handled, and logged. */
    assert_int_equal(tproc_wait_until(probe_processed, NULL, DEADLINE_MS), 0);
    snprintf(needle, sizeof(needle), "order=%s", order_id);
    assert_int_equal(tproc_wait_until(log_has, needle, DEADLINE_MS), 0);
    assert_int_equal(tproc_wait_until(log_has, "event=order_seen", DEADLINE_MS), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_installed_participant_clears_placed_orders),
    };
    if (argc != 2) {
        fprintf(stderr, "usage: %s PARTICIPANT (see tests/install/run.sh)\n", argv[0]);
        return 2;
    }
    probe_bin = argv[1];
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
