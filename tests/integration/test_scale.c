/* test_scale.c - Several instances of every service under load (docs/scaling.md):
 * SCALE_ORDERS orders (default 2,000) over 2 order, 3 payment, 2 inventory, 2
 * shipping and 1 notification instances, with injected duplicates and reordering.
 * One instance each of payment, inventory and shipping is SIGKILLed mid-run and
 * restarted on its data directory a little later (counted in orders placed, not in
 * time): its partitions wait meanwhile, the others go on. Later payment is scaled from
 * 3 instances to 2 and inventory from 2 to 3 (stock re-split) while the orders placed
 * before are still in flight. Then every order is final,
 * the audit is clean (money per order, stock summed over the inventory instances, no
 * step done twice), nothing is lost and no retried place made a second order.
 *
 * Ends with one line of figures: orders, instances, victims, the longest wait for one
 * order to be accepted, the hand-overs' pauses, lost and duplicated (both must be 0), seconds and
 * sagas/s. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"
#include "saga/event.h"
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
/* Tenths of the orders placed when payment goes from 3 instances to 2 and inventory
 * from 2 to 3 (after every victim is back). */
#define RESCALE_AT 8

/* Places order n under the key "<prefix>-<n>", retrying the key; fails the test if it
 * cannot be placed. *took_ms: how long it took. */
static void place_one(const char *prefix, long n, int64_t *took_ms)
{
    char id[64], key[64], customer[32], sku[16];
    snprintf(key, sizeof(key), "%s-%ld", prefix, n);
    snprintf(customer, sizeof(customer), "c%ld", n % 50);
    snprintf(sku, sizeof(sku), "SKU%ld", n % NSKU);
    tfleet_item it[1] = {{sku, 1 + (int)(n % 3), 100 + (long long)(n % 997)}};
    if (tfleet_place_retrying(&F, key, customer, it, 1, PLACE_TIMEOUT_MS, id, sizeof(id),
                              took_ms) != 0)
        fail_msg("order %s could not be placed", key);
}

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
    char sku[16];
    int64_t max_place_ms = 0, took = 0, pause_pay = -1, pause_inv = -1;
    (void)state;
    assert_true(orders >= 10);

    for (int s = 0; s < NSKU; s++) {
        snprintf(sku, sizeof(sku), "SKU%d", s);
        assert_int_equal(tfleet_set_stock(&F, sku, orders * 3), 0);
    }
    int64_t t0 = tproc_now_ms();
    for (long n = 0; n < orders; n++) {
        kill_and_restart(n, orders);
        /* Every victim is back: hand-overs with the orders before still in flight. */
        if (n == orders * RESCALE_AT / 10) {
            fprintf(stderr, "scale: payment 3->2 and inventory 2->3 at order %ld\n", n);
            assert_int_equal(tfleet_rescale(&F, tfleet_index("payment"), 2, &pause_pay), 0);
            assert_int_equal(tfleet_rescale(&F, tfleet_index("inventory"), 3, &pause_inv), 0);
        }
        place_one("scale", n, &took);
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
    int audit = tfleet_audit(&F);
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
           "payment=3->2 pause_ms=%lld inventory=2->3 pause_ms=%lld "
           "lost=%ld duplicated=%ld seconds=%.1f sagas_per_s=%.1f audit=%s\n",
           orders, names, killed, (long long)max_place_ms, place_s, (long long)pause_pay,
           (long long)pause_inv, lost, duplicated, seconds, (double)orders / seconds,
           audit == 0 ? "pass" : "FAIL");
    assert_int_equal(done, 0);
    assert_int_equal(lost, 0);
    assert_int_equal(duplicated, 0);
    assert_int_equal(audit, 0);
}

/* Places orders first .. last - 1 (keys "flow-<n>"). */
static void place_flow(long first, long last)
{
    int64_t took;
    for (long n = first; n < last; n++)
        place_one("flow", n, &took);
}

/* Hand-over while orders are in flight: payment from 3 instances to 2 and order from 2
 * to 3. A place retried with the same idempotency key after its partition moved to
 * another order instance finds the first order; every order is final, the audit clean. */
static void handover_keeps_orders_and_keys(void **state)
{
    long orders = tproc_env_long("SCALE_HANDOVER_ORDERS", 300);
    char key[64], first[64] = "", again[64] = "";
    int64_t took, pause_pay = 0, pause_order = 0;
    (void)state;
    for (int s = 0; s < NSKU; s++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "SKU%d", s);
        assert_int_equal(tfleet_set_stock(&F, sku, orders * 3 + 10), 0);
    }
    /* A key whose partition changes order instance from 2 to 3 instances. */
    for (int n = 0;; n++) {
        snprintf(key, sizeof(key), "handover-%d", n);
        unsigned p = saga_partition_of(key);
        if (p % 2 != p % 3)
            break;
    }
    tfleet_item it[1] = {{"SKU0", 1, 500}};
    assert_int_equal(
        tfleet_place_retrying(&F, key, "c1", it, 1, PLACE_TIMEOUT_MS, first, sizeof(first), &took),
        0);
    int64_t t0 = tproc_now_ms();
    place_flow(0, orders / 2);
    assert_int_equal(tfleet_rescale(&F, tfleet_index("payment"), 2, &pause_pay), 0);
    assert_int_equal(tfleet_rescale(&F, tfleet_index("order"), 3, &pause_order), 0);
    place_flow(orders / 2, orders);
    Saga__V1__PlaceOrderReply *r = tfleet_place(&F, key, "c1", it, 1, "DE", "EUR", 0);
    assert_non_null(r);
    assert_true(r->ok);
    snprintf(again, sizeof(again), "%s", r->order_id);
    int duplicate = r->duplicate;
    saga__v1__place_order_reply__free_unpacked(r, NULL);

    size_t placed_orders = 0, final_orders = 0;
    int done =
        tfleet_wait_final(&F, (size_t)orders + 1, FINAL_DEADLINE_MS, &placed_orders, &final_orders);
    int audit = tfleet_audit(&F);
    printf("handover: orders=%ld payment=3->2 pause_ms=%lld order=2->3 pause_ms=%lld "
           "key_retry=%s lost=%ld duplicated=%ld seconds=%.1f audit=%s\n",
           orders + 1, (long long)pause_pay, (long long)pause_order,
           strcmp(first, again) == 0 && duplicate ? "same-order" : "NEW-ORDER",
           orders + 1 - (long)final_orders, (long)placed_orders - orders - 1,
           (double)(tproc_now_ms() - t0) / 1000.0, audit == 0 ? "pass" : "FAIL");
    assert_string_equal(first, again);
    assert_true(duplicate);
    assert_int_equal(done, 0);
    assert_int_equal((long)placed_orders, orders + 1);
    assert_int_equal(audit, 0);
}

/* ---- saga-fleet scale while orders flow ----------------------------------------- */

/* Places orders "live-<n>" one after the other until told to stop. */
typedef struct placer {
    pthread_t thread;
    volatile int stop;
    volatile long placed;
    volatile int failed;
} placer;

static placer placer_of_test;

static void *place_until_stopped(void *arg)
{
    placer *pl = arg;
    char id[64], key[64], sku[16];
    int64_t took;
    for (long n = 0; !pl->stop; n++) {
        snprintf(key, sizeof(key), "live-%ld", n);
        snprintf(sku, sizeof(sku), "SKU%ld", n % NSKU);
        tfleet_item it[1] = {{sku, 1, 100 + (long long)(n % 997)}};
        if (tfleet_place_retrying(&F, key, "c1", it, 1, PLACE_TIMEOUT_MS, id, sizeof(id), &took) !=
            0) {
            pl->failed = 1;
            break;
        }
        pl->placed = n + 1;
    }
    return NULL;
}

static int placed_more(void *arg)
{
    const long *want = arg;
    return placer_of_test.placed >= *want || placer_of_test.failed;
}

/* "K=V" saga-fleet gets besides the fleet's home and URL, or NULL. */
static const char *fleet_env_extra;

/* Runs saga-fleet with args on the tests' fleet (its home), its output into out;
 * the tests' fleet then reads the processes it left. Returns its exit status, -1
 * if a signal ended it. */
static int saga_fleet(const char *const *args, char *out, size_t cap)
{
    char home[700], log_path[700], url[1100];
    const char *argv[8] = {SAGA_BUILD_DIR "/tools/saga-fleet"};
    int n = 1, status = 0;
    for (int i = 0; args[i] != NULL && n < 7; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(home, sizeof(home), "SAGA_HOME=%s", tsrv_dir(F.srv));
    snprintf(log_path, sizeof(log_path), "%s/saga-fleet.out", tsrv_dir(F.srv));
    unlink(log_path);
    snprintf(url, sizeof(url), "SAGA_NATS_URL=%s", tsrv_url(F.srv));
    const char *env[] = {home, url, "SAGA_BUILD_DIR=" SAGA_BUILD_DIR, fleet_env_extra, NULL};
    pid_t pid = tproc_spawn(argv, env, log_path);
    if (pid <= 0 || tproc_wait(pid, 120000, &status) != 0)
        return -1;
    FILE *fp = fopen(log_path, "r");
    size_t got = fp != NULL ? fread(out, 1, cap - 1, fp) : 0;
    out[got] = '\0';
    if (fp != NULL)
        fclose(fp);
    fputs(out, stderr);
    if (tfleet_reload(&F) != 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Whether process name's object in the `status --json` output out holds the
 * member text, e.g. "\"state\":\"up\"". */
static int status_has(const char *out, const char *name, const char *member)
{
    char pat[96], obj[1024];
    snprintf(pat, sizeof(pat), "{\"name\":\"%s\",", name);
    const char *p = strstr(out, pat), *end = p != NULL ? strchr(p, '}') : NULL;
    if (end == NULL || (size_t)(end - p) >= sizeof(obj))
        return 0;
    memcpy(obj, p, (size_t)(end - p));
    obj[end - p] = '\0';
    return strstr(obj, member) != NULL;
}

/* Whether process name is up in the `status --json` output out. */
static int status_up_in(const char *out, const char *name)
{
    return status_has(out, name, "\"state\":\"up\"");
}

/* The pause saga-fleet scale printed ("paused N ms"), or -1. */
static long long printed_pause(const char *out)
{
    const char *p = strstr(out, "paused ");
    return p != NULL ? atoll(p + 7) : -1;
}

/* One `saga-fleet scale SVC N` of a run. */
typedef struct scale_step {
    const char *svc;
    int n;
} scale_step;

/* Starts the placer and stock for it. */
static void start_placing(void)
{
    for (int s = 0; s < NSKU; s++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "SKU%d", s);
        assert_int_equal(tfleet_set_stock(&F, sku, 100000), 0);
    }
    assert_int_equal(
        pthread_create(&placer_of_test.thread, NULL, place_until_stopped, &placer_of_test), 0);
}

/* Waits until the placer has placed 40 more orders. */
static void place_40_more(void)
{
    long want = placer_of_test.placed + 40;
    tproc_wait_until(placed_more, &want, PLACE_TIMEOUT_MS);
    assert_false(placer_of_test.failed);
}

/* Runs each step as `saga-fleet scale SVC N` with 40 orders placed before, between
 * and after; its pause into pause[k] and what it printed into out. */
static void scale_steps(const scale_step *steps, int nsteps, long long *pause, char *out,
                        size_t cap)
{
    for (int k = 0; k < nsteps; k++) {
        char n[8], said[64];
        int before = F.instances[tfleet_index(steps[k].svc)];
        snprintf(n, sizeof(n), "%d", steps[k].n);
        place_40_more();
        assert_int_equal(saga_fleet((const char *[]){"scale", steps[k].svc, n, NULL}, out, cap), 0);
        pause[k] = printed_pause(out);
        snprintf(said, sizeof(said), "%s: %d -> %d instance", steps[k].svc, before, steps[k].n);
        assert_non_null(strstr(out, said));
        assert_int_equal(F.instances[tfleet_index(steps[k].svc)], steps[k].n);
    }
}

/* Stops the placer after 40 more orders; then every order placed is final once, the
 * audit is clean (no step done twice), and a line of figures names the steps. */
static void finish_placing(const char *label, const scale_step *steps, int nsteps,
                           const long long *pause, int64_t t0)
{
    char figures[512] = "";
    place_40_more();
    placer_of_test.stop = 1;
    pthread_join(placer_of_test.thread, NULL);
    assert_false(placer_of_test.failed);

    long orders = placer_of_test.placed;
    size_t placed_orders = 0, final_orders = 0;
    int done =
        tfleet_wait_final(&F, (size_t)orders, FINAL_DEADLINE_MS, &placed_orders, &final_orders);
    int audit = tfleet_audit(&F);
    for (int k = 0; k < nsteps; k++)
        snprintf(figures + strlen(figures), sizeof(figures) - strlen(figures),
                 " %s->%d pause_ms=%lld", steps[k].svc, steps[k].n, pause[k]);
    printf("%s: orders=%ld%s lost=%ld duplicated=%ld seconds=%.1f audit=%s\n", label, orders,
           figures, orders - (long)final_orders, (long)placed_orders - orders,
           (double)(tproc_now_ms() - t0) / 1000.0, audit == 0 ? "pass" : "FAIL");
    assert_int_equal(done, 0);
    assert_int_equal((long)final_orders, orders);
    assert_int_equal((long)placed_orders, orders);
    assert_int_equal(audit, 0);
}

/* Places orders one after the other while each step runs; after step k, check(k,
 * what saga-fleet printed) when not NULL. Then every order final, audit clean. */
static void scale_while_placing(const char *label, const scale_step *steps, int nsteps,
                                void (*check)(int k, char *out, size_t cap))
{
    static char out[1 << 15];
    long long pause[8];
    int64_t t0 = tproc_now_ms();
    assert_true(nsteps <= 8);
    start_placing();
    for (int k = 0; k < nsteps; k++) {
        scale_steps(steps + k, 1, &pause[k], out, sizeof(out));
        if (check != NULL)
            check(k, out, sizeof(out));
    }
    finish_placing(label, steps, nsteps, pause, t0);
}

/* Every SKU's units, summed over the inventory instances, are the 100000 set. */
static void stock_conserved(void)
{
    for (int s = 0; s < NSKU; s++) {
        char sku[16];
        long long avail = 0, held = 0, committed = 0;
        snprintf(sku, sizeof(sku), "SKU%d", s);
        assert_int_equal(tfleet_get_stock(&F, sku, &avail, &held, &committed), 0);
        assert_int_equal(avail + held + committed, 100000);
    }
}

/* After payment 2 -> 3: the moves printed, status lists the new instance with its
 * partitions, waiting while it is killed; after 3 -> 2, the refusals; after inventory 2 -> 3 and
 * back, the stock re-split printed and every SKU's units conserved over the instances; the
 * way back first crashes half way, and the scale that follows finishes it. */
static void check_payment_scale(int k, char *out, size_t cap)
{
    if (k == 0) {
        assert_non_null(strstr(out, "moved partitions"));
        saga_fleet((const char *[]){"status", "--json", NULL}, out, cap);
        assert_true(status_up_in(out, "payment-3"));
        assert_non_null(strstr(out, "\"state\":\"up\",\"partitions\":\"2,5,8,11,14\""));
        /* A down instance's partitions are shown waiting until it is back. */
        assert_int_equal(saga_fleet((const char *[]){"kill", "payment-3", NULL}, out, cap), 0);
        saga_fleet((const char *[]){"status", "--json", NULL}, out, cap);
        assert_true(
            status_has(out, "payment-3", "\"state\":\"down\",\"partitions\":\"2,5,8,11,14\""));
        assert_true(status_has(out, "payment-3", "\"waiting\":true"));
        assert_false(status_has(out, "payment-2", "\"waiting\""));
        assert_int_equal(saga_fleet((const char *[]){"restart", "payment-3", NULL}, out, cap), 0);
        saga_fleet((const char *[]){"status", "--json", NULL}, out, cap);
        assert_true(status_up_in(out, "payment-3"));
        return;
    }
    if (k == 2) {
        char plan[700];
        assert_non_null(strstr(out, "stock re-split over 3 instances"));
        stock_conserved();
        /* saga-fleet crashes half way back to 2, the records moved and the stock not
         * yet re-split: the plan stays, the instances wait; the next step's scale
         * finishes it from the plan (check k == 3). */
        fleet_env_extra = "SAGA_FLEET_CRASH_AT=after_moves";
        assert_int_equal(saga_fleet((const char *[]){"scale", "inventory", "2", NULL}, out, cap),
                         -1);
        fleet_env_extra = NULL;
        assert_non_null(strstr(out, "crash at after_moves"));
        snprintf(plan, sizeof(plan), "%s/handover-inventory.json", tsrv_dir(F.srv));
        assert_int_equal(access(plan, F_OK), 0);
        saga_fleet((const char *[]){"status", "--json", NULL}, out, cap);
        assert_true(status_has(out, "inventory-1", "\"state\":\"down\""));
        return;
    }
    if (k == 3) {
        assert_non_null(strstr(out, "finished the unfinished hand-over"));
        assert_non_null(strstr(out, "stock re-split over 2 instances"));
        stock_conserved();
        return;
    }
    /* No such service, a bad count, the count it runs. */
    assert_int_equal(saga_fleet((const char *[]){"scale", "nobody", "2", NULL}, out, cap), 2);
    assert_int_equal(saga_fleet((const char *[]){"scale", "payment", "17", NULL}, out, cap), 2);
    assert_int_equal(saga_fleet((const char *[]){"scale", "payment", "2", NULL}, out, cap), 1);
}

/* `saga-fleet scale payment 3`, then `scale payment 2`, then inventory 2 -> 3 -> 2,
 * while a client places orders one after the other: the command's own hand-over (the
 * same code as tfleet_rescale), status shows the new instances, inventory's stock is
 * re-split and conserved, every order final, audit clean. */
static void fleet_scale_command_under_load(void **state)
{
    static const scale_step steps[] = {
        {"payment", 3}, {"payment", 2}, {"inventory", 3}, {"inventory", 2}};
    (void)state;
    scale_while_placing("fleet-scale", steps, 4, check_payment_scale);
}

/* After the first step from the only instance: its consumers were replaced. */
static void check_consumers_split(int k, char *out, size_t cap)
{
    (void)cap;
    if (k == 0)
        assert_non_null(strstr(out, "consumers: "));
}

/* From the only instance to two and back, for payment and for order (whose
 * idempotency records move with their keys), while orders flow: the only instance's
 * consumer per type becomes one per type and partition at its acknowledgement floor,
 * and back at the least floor; what comes again is dropped by the inboxes. */
static void one_to_two_and_back(void **state)
{
    static const scale_step steps[] = {{"payment", 2}, {"order", 2}, {"payment", 1}, {"order", 1}};
    (void)state;
    scale_while_placing("one-to-two", steps, 4, check_consumers_split);
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

/* The fleet with counts instances of each service, ORDER_DEADLINE_MS long enough
 * for any pause, and no placer running yet. */
static int launch_counts(void **state, const int counts[TFLEET_NSVC])
{
    static const char *env[] = {"ORDER_DEADLINE_MS=120000", NULL};
    tfleet_init(&F, SAGA_BUILD_DIR, env);
    memcpy(F.instances, counts, sizeof(F.instances));
    memset(&placer_of_test, 0, sizeof(placer_of_test));
    *state = &F;
    return tfleet_launch(&F);
}

/* Hand-over: order 2, payment 3, the others one each. */
static int setup_handover(void **state)
{
    return launch_counts(state, (const int[TFLEET_NSVC]){2, 3, 1, 1, 1});
}

/* saga-fleet scale: payment 2, inventory 2, the others one each. */
static int setup_cli(void **state)
{
    return launch_counts(state, (const int[TFLEET_NSVC]){1, 2, 2, 1, 1});
}

/* Every service one instance. */
static int setup_single(void **state)
{
    return launch_counts(state, (const int[TFLEET_NSVC]){1, 1, 1, 1, 1});
}

static int teardown(void **state)
{
    return tfleet_stop(*state);
}

/* test_scale [NAME]: only the test case NAME (a cmocka filter, * matches any). */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fleet_scale_command_under_load, setup_cli, teardown),
        cmocka_unit_test_setup_teardown(one_to_two_and_back, setup_single, teardown),
        cmocka_unit_test_setup_teardown(handover_keeps_orders_and_keys, setup_handover, teardown),
        cmocka_unit_test_setup_teardown(orders_survive_instance_kills, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    int failed = cmocka_run_group_tests_name("scale", tests, NULL, NULL);
    nats_CloseAndWait(TSRV_CLOSE_WAIT_MS);
    return failed;
}
