/* test_scale.c - Several instances of every service under load (docs/scaling.md):
 * SCALE_ORDERS orders (default 2,000) over 2 order, 3 payment, 2 inventory, 2
 * shipping and 1 notification instances, with injected duplicates and reordering.
 * One instance each of payment, inventory and shipping is SIGKILLed mid-run and
 * restarted on its data directory a little later (counted in orders placed, not in
 * time): its partitions wait meanwhile, the others go on. Then every order is final,
 * the audit is clean (money per order, stock summed over the inventory instances, no
 * step done twice), nothing is lost and no retried place made a second order.
 *
 * Ends with one line of figures: orders, instances, victims, the longest wait for one
 * order to be accepted, lost and duplicated (both must be 0), seconds and sagas/s. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proc.h"
#include "tfleet.h"

#define DEFAULT_ORDERS 2000
#define NSKU 16
#define PLACE_TIMEOUT_MS 60000
#define FINAL_DEADLINE_MS 300000

static tfleet F;

/* Instances of order, payment, inventory, shipping, notification. */
static const int instances[TFLEET_NSVC] = {2, 3, 2, 2, 1};

/* One victim: instance k of a service, SIGKILLed when kill_at tenths of the orders
 * are placed and started again at back_at tenths. */
typedef struct victim {
    const char *svc;
    int k;
    int kill_at, back_at;
} victim;

static const victim victims[] = {
    {"payment", 2, 2, 3},
    {"inventory", 1, 4, 5},
    {"shipping", 2, 6, 7},
};
#define NVICTIMS ((int)(sizeof(victims) / sizeof(victims[0])))

/* Kills or restarts the victims whose moment is order n of orders. */
static void kill_and_restart(long n, long orders)
{
    char name[64];
    for (int v = 0; v < NVICTIMS; v++) {
        int i = tfleet_index(victims[v].svc);
        tfleet_instance_name(&F, i, victims[v].k, name, sizeof(name));
        if (n == orders * victims[v].kill_at / 10) {
            fprintf(stderr, "scale: SIGKILL %s at order %ld\n", name, n);
            assert_int_equal(tfleet_kill_instance(&F, i, victims[v].k), 0);
        }
        if (n == orders * victims[v].back_at / 10) {
            fprintf(stderr, "scale: restarting %s at order %ld\n", name, n);
            assert_int_equal(tfleet_start_instance(&F, i, victims[v].k), 0);
        }
    }
}

static void orders_survive_instance_kills(void **state)
{
    long orders = tproc_env_long("SCALE_ORDERS", DEFAULT_ORDERS);
    char id[64], key[64], customer[32], sku[16];
    int64_t max_place_ms = 0, took = 0;
    (void)state;
    assert_true(orders >= 10);

    for (int s = 0; s < NSKU; s++) {
        snprintf(sku, sizeof(sku), "SKU%d", s);
        assert_int_equal(tfleet_set_stock(&F, sku, orders * 3), 0);
    }
    int64_t t0 = tproc_now_ms();
    for (long n = 0; n < orders; n++) {
        kill_and_restart(n, orders);
        snprintf(key, sizeof(key), "scale-%ld", n);
        snprintf(customer, sizeof(customer), "c%ld", n % 50);
        snprintf(sku, sizeof(sku), "SKU%ld", n % NSKU);
        tfleet_item it[1] = {{sku, 1 + (int)(n % 3), 100 + (long long)(n % 997)}};
        if (tfleet_place_retrying(&F, key, customer, it, 1, PLACE_TIMEOUT_MS, id, sizeof(id),
                                  &took) != 0)
            fail_msg("order %ld could not be placed", n);
        if (took > max_place_ms)
            max_place_ms = took;
        if (n % 250 == 0)
            fprintf(stderr, "scale: placed %ld/%ld (%.1f s)\n", n, orders,
                    (double)(tproc_now_ms() - t0) / 1000.0);
    }
    double place_s = (double)(tproc_now_ms() - t0) / 1000.0;

    size_t placed_orders = 0, final_orders = 0;
    int done =
        tfleet_wait_final(&F, (size_t)orders, FINAL_DEADLINE_MS, &placed_orders, &final_orders);
    double seconds = (double)(tproc_now_ms() - t0) / 1000.0;
    int audit = tfleet_audit_shown(&F);
    long lost = orders - (long)final_orders;
    long duplicated = (long)placed_orders - orders; /* retries that made a second order */
    char names[256] = "", killed[256] = "", name[64];
    for (int i = 0; i < TFLEET_NSVC; i++)
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s:%d", i ? "," : "",
                 tfleet_names[i], F.instances[i]);
    for (int v = 0; v < NVICTIMS; v++)
        snprintf(killed + strlen(killed), sizeof(killed) - strlen(killed), "%s%s", v ? "," : "",
                 tfleet_instance_name(&F, tfleet_index(victims[v].svc), victims[v].k, name,
                                      sizeof(name)));
    printf("scale: orders=%ld instances=%s killed=%s max_place_ms=%lld place_s=%.1f "
           "lost=%ld duplicated=%ld seconds=%.1f sagas_per_s=%.1f audit=%s\n",
           orders, names, killed, (long long)max_place_ms, place_s, lost, duplicated, seconds,
           (double)orders / seconds, audit == 0 ? "pass" : "FAIL");
    assert_int_equal(done, 0);
    assert_int_equal(lost, 0);
    assert_int_equal(duplicated, 0);
    assert_int_equal(audit, 0);
}

/* The fleet of `instances`, in *state. */
static int setup(void **state)
{
    static const char *env[] = {
        "SAGA_FAULTS=seed=11,dup_rate=0.05,reorder_rate=0.05,reorder_delay_ms=300",
        "ORDER_DEADLINE_MS=120000", NULL};
    tfleet_init(&F, SAGA_BUILD_DIR, env);
    memcpy(F.instances, instances, sizeof(instances));
    *state = &F;
    return tfleet_launch(&F);
}

static int teardown(void **state)
{
    return tfleet_stop(*state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(orders_survive_instance_kills, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    int failed = cmocka_run_group_tests_name("scale", tests, NULL, NULL);
    nats_Close();
    return failed;
}
