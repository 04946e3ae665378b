/* test_chaos.c - Orders under random business and technical faults, service
 * kills and a broker restart, while they flow; then every invariant holds.
 *
 * Ends with one line of figures: orders, faults, kills, restarts, lost and
 * duplicated (both must be 0). Repeatable: CHAOS_SEED picks the faults and
 * the victims, CHAOS_ORDERS the number of orders. */
#include <setjmp.h>
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
#define FINAL_DEADLINE_MS 240000

static tfleet F;

/* xorshift64*: the victims and order shapes follow the seed. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static long long sum_faults(void)
{
    long long n = 0;
    for (int i = 0; i < TFLEET_NSVC; i++) {
        long long v = tjs_stat(&F.t, tfleet_names[i], "faults");
        n += v > 0 ? v : 0;
    }
    return n;
}

typedef struct placed {
    char id[64];
} placed;

/* Places one order, retrying with the same idempotency key through kills
 * and the broker restart, as a careful client would. */
static int place_retrying(int n, placed *out)
{
    char key[64], customer[32], sku[16], sku2[16];
    int k = (int)(rnd() % NSKU);
    snprintf(key, sizeof(key), "chaos-%d", n);
    snprintf(customer, sizeof(customer), "c%d", (int)(rnd() % 50));
    snprintf(sku, sizeof(sku), "SKU%d", k);
    snprintf(sku2, sizeof(sku2), "SKU%d", (k + 1) % NSKU);
    tfleet_item it[2] = {{sku, 1 + (int)(rnd() % 3), 100 + (long long)(rnd() % 5000)},
                         {sku2, 1, 250}};
    int nitems = rnd() % 4 == 0 ? 2 : 1;
    const char *ship_to = rnd() % 20 == 0 ? "ZZ" : "DE";
    int64_t deadline = tproc_now_ms() + 60000;
    while (tproc_now_ms() < deadline) {
        Saga__V1__PlaceOrderReply *r =
            tfleet_place(&F, key, customer, it, nitems, ship_to, "EUR", 0);
        if (r != NULL && r->ok) {
            snprintf(out->id, sizeof(out->id), "%s", r->order_id);
            saga__v1__place_order_reply__free_unpacked(r, NULL);
            return 0;
        }
        if (r != NULL) {
            fprintf(stderr, "chaos: order %d refused: %s\n", n, r->error);
            saga__v1__place_order_reply__free_unpacked(r, NULL);
            return -1;
        }
    }
    return -1;
}

typedef struct final_arg {
    size_t want, have;
} final_arg;

/* Counts orders with a final event (confirmed or cancelled) in the stream. */
static size_t count_final(size_t *placed_orders)
{
    tjs_msg *v = NULL;
    size_t n = 0, fin = 0, pl = 0;
    if (tjs_collect_events(&F.t, "order.*", NULL, &v, &n) != 0)
        return 0;
    /* Event ids may repeat (duplicate publishes); orders are counted once. */
    for (size_t i = 0; i < n; i++) {
        int is_final = strncmp(v[i].ev.type, "order.confirmed", 16) == 0 ||
                       strncmp(v[i].ev.type, "order.cancelled", 16) == 0;
        int is_placed = strcmp(v[i].ev.type, "order.placed") == 0;
        if (!is_final && !is_placed)
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(v[j].ev.order_id, v[i].ev.order_id) == 0 &&
                   strcmp(v[j].ev.type, v[i].ev.type) == 0;
        if (seen)
            continue;
        fin += is_final;
        pl += is_placed;
    }
    free(v);
    if (placed_orders != NULL)
        *placed_orders = pl;
    return fin;
}

static int all_final(void *arg)
{
    final_arg *a = arg;
    a->have = count_final(NULL);
    return a->have >= a->want;
}

static int fleet_idle(void *arg)
{
    (void)arg;
    return tjs_consumers_idle(&F.t, "SAGA_EVENTS");
}

static void test_chaos(void **state)
{
    long orders = tproc_env_long("CHAOS_ORDERS", DEFAULT_ORDERS);
    long seed = tproc_env_long("CHAOS_SEED", 42);
    int kills = 0, restarts = 0, down = -1;
    long long faults_before_kills = 0;
    placed *ids = calloc((size_t)orders, sizeof(*ids));
    (void)state;
    assert_non_null(ids);
    rng_state = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;

    for (int s = 0; s < NSKU; s++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "SKU%d", s);
        /* A few SKUs run out for real; the rest by the stock-out fault. */
        assert_int_equal(tfleet_set_stock(&F, sku, s < 2 ? orders / 4 : orders * 3), 0);
    }
    int64_t t0 = tproc_now_ms();
    for (long n = 0; n < orders; n++) {
        if (n > 0 && n % (orders / 7) == 0) {
            if (down >= 0) { /* bring the last victim back first */
                assert_int_equal(tfleet_start_service(&F, down), 0);
                down = -1;
            }
            int victim = (int)(rnd() % TFLEET_NSVC);
            faults_before_kills += tjs_stat(&F.t, tfleet_names[victim], "faults") > 0
                                       ? tjs_stat(&F.t, tfleet_names[victim], "faults")
                                       : 0;
            assert_int_equal(tfleet_kill_service(&F, victim), 0);
            kills++;
            if (victim == tfleet_index("order"))
                assert_int_equal(tfleet_start_service(&F, victim), 0); /* nobody can order */
            else
                down = victim;
        }
        if (n == orders / 2) {
            assert_int_equal(tsrv_restart(F.srv), 0);
            restarts++;
        }
        if (place_retrying((int)n, &ids[n]) != 0)
            fail_msg("order %ld could not be placed", n);
        if (n % 250 == 0)
            fprintf(stderr, "chaos: placed %ld/%ld (%.1f s)\n", n, orders,
                    (double)(tproc_now_ms() - t0) / 1000.0);
    }
    if (down >= 0)
        assert_int_equal(tfleet_start_service(&F, down), 0);

    final_arg fa = {(size_t)orders, 0};
    if (tproc_wait_until(all_final, &fa, FINAL_DEADLINE_MS) != 0)
        fprintf(stderr, "chaos: only %zu of %ld orders final\n", fa.have, (size_t)orders);
    /* Compensations and notifications follow the final event: let them settle. */
    assert_int_equal(tproc_wait_until(fleet_idle, NULL, FINAL_DEADLINE_MS), 0);
    size_t placed_orders = 0, final_orders = count_final(&placed_orders);
    long long faults = sum_faults() + faults_before_kills;

    int audit = tfleet_audit(&F);
    long lost = orders - (long)final_orders;
    long duplicated = (long)placed_orders - orders; /* retries that made a second order */
    printf("chaos: orders=%ld faults=%lld kills=%d restarts=%d lost=%ld duplicated=%ld "
           "seconds=%.1f audit=%s\n",
           orders, faults, kills, restarts, lost, duplicated,
           (double)(tproc_now_ms() - t0) / 1000.0, audit == 0 ? "pass" : "FAIL");
    free(ids);
    assert_int_equal(lost, 0);
    assert_int_equal(duplicated, 0);
    assert_true(kills >= 5);
    assert_true(faults > 0);
    assert_int_equal(audit, 0);
}

static int setup(void **state)
{
    static char plan[512];
    static const char *env[4];
    *state = &F;
    snprintf(plan, sizeof(plan),
             "SAGA_FAULTS=seed=%ld,error_rate=0.05,dup_rate=0.05,reorder_rate=0.05,"
             "reorder_delay_ms=300,decline_rate=0.1,stockout_rate=0.05,ship_fail_rate=0.05",
             tproc_env_long("CHAOS_SEED", 42));
    env[0] = plan;
    env[1] = "ORDER_DEADLINE_MS=60000";
    env[2] = "SAGA_MAX_DELIVER=6";
    env[3] = NULL;
    return tfleet_start(&F, SAGA_BUILD_DIR, env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chaos, setup, tfleet_teardown),
    };
    return tfleet_run(tests, NULL, NULL);
}
