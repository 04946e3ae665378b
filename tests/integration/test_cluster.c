/* test_cluster.c - The fleet on a 3-node JetStream cluster with R3 streams: orders
 * flow under injected duplicates and reordering while the node that leads SAGA_EVENTS
 * is SIGKILLed, and later another node; each comes back after a few seconds. Then
 * every order is final, the audit is clean, nothing is lost or done twice.
 *
 * Ends with one line of figures: orders, kills, the time until the event stream had a
 * new leader after each kill, the longest wait for one order to be accepted, lost and
 * duplicated (both must be 0). CLUSTER_ORDERS changes the number of orders.
 *
 * Also: a list of URLs whose first server is down reaches the next, and a service
 * asked for more copies of its streams than the cluster has nodes stops, saying so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proc.h"
#include "saga/wire.h"
#include "tfleet.h"

#define DEFAULT_ORDERS 1500
#define NODES 3
#define NSKU 16
#define DOWNTIME_MS 3000 /* deliberate: how long a killed node stays down */
#define LEADER_DEADLINE_MS 60000
#define FINAL_DEADLINE_MS 240000

static tfleet F;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- a URL list reaches the live server ------------------------------------------ */

/* A service given a list whose first server is down connects to the next: before
 * natsOptions_SetServers, a list passed to natsOptions_SetURL failed every connect. */
static void url_list_skips_a_dead_server(void **state)
{
    char list[512], data[600], err[4400], exe[600], tail[2048];
    tsrv *srv = NULL;
    (void)state;
    assert_int_equal(tsrv_start(&srv), 0);
    int dead = fleet_free_port();
    assert_true(dead > 0);
    snprintf(list, sizeof(list), "SAGA_NATS_URL=nats://127.0.0.1:%d,%s", dead, tsrv_url(srv));
    snprintf(data, sizeof(data), "SAGA_DATA_DIR=%s/data/payment", tsrv_dir(srv));
    snprintf(exe, sizeof(exe), "%s/services/saga-payment", SAGA_BUILD_DIR);
    const char *env[] = {list, data, NULL};
    fleet *fl = tsrv_fleet(srv);
    int rc = fleet_add_proc(fl, "payment", exe, NULL, env, err, sizeof(err));
    if (rc == 0)
        rc = fleet_start_ready(fl, "payment", 30000, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "cluster: %s\n%s\n", err,
                fleet_log_tail(fl, "payment", tail, sizeof(tail)));
    assert_int_equal(rc, 0);
    assert_int_equal(fleet_stop(fl, "payment", 20000), 0);
    tsrv_destroy(srv);
}

/* ---- more copies than nodes ------------------------------------------------------ */

typedef struct exit_wait {
    fleet *fl;
    const char *name;
} exit_wait;

static int exited(void *arg)
{
    exit_wait *w = arg;
    fleet_status st;
    return fleet_get_status(w->fl, w->name, &st) == 0 && !st.alive;
}

/* A service asked for more copies of its streams than the cluster has nodes waits a
 * while (a node of a new cluster may not have reported in yet: the cluster then
 * answers the same "no suitable peers"), then stops with an error that says so. */
static void more_copies_than_nodes_is_refused_clearly(void **state)
{
    char data[600], err[4400], exe[600], tail[4096], replicas[32], url[512], says[64];
    tsrv *srv = NULL;
    (void)state;
    assert_int_equal(tsrv_start_cluster(&srv, NODES), 0);
    snprintf(says, sizeof(says), "cannot place %d copies", NODES + 2);
    snprintf(data, sizeof(data), "SAGA_DATA_DIR=%s/data/payment", tsrv_dir(srv));
    snprintf(exe, sizeof(exe), "%s/services/saga-payment", SAGA_BUILD_DIR);
    snprintf(replicas, sizeof(replicas), "SAGA_REPLICAS=%d", NODES + 2);
    snprintf(url, sizeof(url), "SAGA_NATS_URL=%s", tsrv_url(srv));
    const char *env[] = {url, data, replicas, NULL};
    fleet *fl = tsrv_fleet(srv);
    assert_int_equal(fleet_add_proc(fl, "payment", exe, NULL, env, err, sizeof(err)), 0);
    assert_int_equal(fleet_start(fl, "payment", err, sizeof(err)), 0);
    exit_wait w = {fl, "payment"};
    int stopped = tproc_wait_until(exited, &w, 120000) == 0;
    fleet_log_tail(fl, "payment", tail, sizeof(tail));
    fleet_kill(fl, "payment"); /* whatever happened: nothing is left running */
    tsrv_destroy(srv);
    if (!stopped || strstr(tail, "jetstream_error=10005") == NULL || strstr(tail, says) == NULL)
        fail_msg("payment did not stop saying why (stopped: %d):\n%s", stopped, tail);
}

/* ---- the fleet on a cluster ---------------------------------------------------- */

typedef struct placed {
    char id[64];
} placed;

static int64_t max_place_ms;

/* Places one order, retrying with the same idempotency key as a careful client
 * would: a request in flight when its node dies gets no answer. */
static int place_retrying(int n, placed *out)
{
    char key[64], customer[32], sku[16];
    int64_t took = 0;
    snprintf(key, sizeof(key), "cluster-%d", n);
    snprintf(customer, sizeof(customer), "c%d", n % 50);
    snprintf(sku, sizeof(sku), "SKU%d", n % NSKU);
    tfleet_item it[1] = {{sku, 1 + n % 3, 100 + (long long)(n % 997)}};
    if (tfleet_place_retrying(&F, key, customer, it, 1, 60000, out->id, sizeof(out->id), &took) !=
        0)
        return -1;
    if (took > max_place_ms)
        max_place_ms = took;
    return 0;
}

typedef struct leader_arg {
    int not ; /* the killed node */
    int got;
} leader_arg;

static int new_leader(void *arg)
{
    leader_arg *a = arg;
    a->got = tsrv_stream_leader(F.srv, SAGA_STREAM_EVENTS);
    return a->got >= 0 && a->got != a->not ;
}

/* Every node's copy of the event stream at the same last sequence. */
static int copies_agree(void *arg)
{
    char why[256];
    int diverged;
    (void)arg;
    return tsrv_copies_agree(F.srv, SAGA_STREAM_EVENTS, &diverged, why, sizeof(why));
}

/* Waits until the copies agree; fails naming them if they do not. */
static void wait_copies(const char *when)
{
    char why[256];
    int diverged;
    int rc = tproc_wait_until(copies_agree, NULL, LEADER_DEADLINE_MS);
    tsrv_copies_agree(F.srv, SAGA_STREAM_EVENTS, &diverged, why, sizeof(why));
    fprintf(stderr, "cluster: copies of %s %s: %s\n", SAGA_STREAM_EVENTS, when, why);
    if (rc != 0)
        fail_msg("the copies of %s never reached one last sequence", SAGA_STREAM_EVENTS);
}

/* Kills victim and measures how long until the event stream has another leader. */
static int64_t kill_node(int victim)
{
    leader_arg a = {victim, -1};
    int64_t t0 = tproc_now_ms();
    assert_int_equal(tsrv_kill_node(F.srv, victim), 0);
    assert_int_equal(tproc_wait_until(new_leader, &a, LEADER_DEADLINE_MS), 0);
    int64_t ms = tproc_now_ms() - t0;
    fprintf(stderr, "cluster: killed nats-%d; SAGA_EVENTS led by nats-%d after %lld ms\n",
            victim + 1, a.got + 1, (long long)ms);
    return ms;
}

static void orders_survive_node_kills(void **state)
{
    long orders = tproc_env_long("CLUSTER_ORDERS", DEFAULT_ORDERS);
    placed *ids = calloc((size_t)orders, sizeof(*ids));
    int down = -1, victims[2] = {-1, -1}, kills = 0;
    int64_t down_since = 0, recover_ms[2] = {0, 0};
    (void)state;
    assert_non_null(ids);
    assert_int_equal(tsrv_nodes(F.srv), NODES);

    for (int s = 0; s < NSKU; s++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "SKU%d", s);
        assert_int_equal(tfleet_set_stock(&F, sku, orders * 3), 0);
    }
    int64_t t0 = tproc_now_ms();
    for (long n = 0; n < orders; n++) {
        if (n == orders / 3) {
            /* The node that leads the event stream: its followers must elect another. */
            leader_arg a = {-1, -1};
            assert_int_equal(tproc_wait_until(new_leader, &a, LEADER_DEADLINE_MS), 0);
            victims[0] = a.got;
            recover_ms[0] = kill_node(victims[0]);
            down = victims[0];
            down_since = tproc_now_ms();
            kills++;
        }
        if (n == 2 * orders / 3) {
            /* Another node: the meta leader if it is not the first victim, else the next. */
            int meta = tsrv_meta_leader(F.srv);
            victims[1] = meta >= 0 && meta != victims[0] ? meta : (victims[0] + 1) % NODES;
            if (down >= 0) {
                assert_int_equal(tsrv_restart_node(F.srv, down), 0);
                down = -1;
            }
            /* As an operator would: the node that came back has caught up before the
             * next one goes, or two of the three copies of the newest events are gone. */
            wait_copies("before the second kill");
            int leader = tsrv_stream_leader(F.srv, SAGA_STREAM_EVENTS);
            recover_ms[1] = leader == victims[1] ? kill_node(victims[1]) : 0;
            if (leader != victims[1])
                assert_int_equal(tsrv_kill_node(F.srv, victims[1]), 0);
            down = victims[1];
            down_since = tproc_now_ms();
            kills++;
        }
        if (down >= 0 && tproc_now_ms() - down_since >= DOWNTIME_MS) {
            assert_int_equal(tsrv_restart_node(F.srv, down), 0);
            down = -1;
        }
        if (place_retrying((int)n, &ids[n]) != 0)
            fail_msg("order %ld could not be placed", n);
        if (n % 250 == 0)
            fprintf(stderr, "cluster: placed %ld/%ld (%.1f s)\n", n, orders,
                    (double)(tproc_now_ms() - t0) / 1000.0);
    }
    if (down >= 0) {
        int64_t left = DOWNTIME_MS - (tproc_now_ms() - down_since);
        if (left > 0)
            sleep_ms((int)left); /* the deliberate downtime, not a wait for a condition */
        assert_int_equal(tsrv_restart_node(F.srv, down), 0);
    }

    /* Every event handled and acknowledged, then count. */
    size_t placed_orders = 0, final_orders = 0;
    tfleet_wait_final(&F, (size_t)orders, FINAL_DEADLINE_MS, &placed_orders, &final_orders);

    /* The copies agree before the audit reads one of them; a copy with fewer messages
     * at the same last sequence lost some inside the broker. */
    char copies[256];
    int diverged = 0;
    wait_copies("before the audit");
    tsrv_copies_agree(F.srv, SAGA_STREAM_EVENTS, &diverged, copies, sizeof(copies));
    int audit = tfleet_audit(&F);
    long lost = orders - (long)final_orders;
    long duplicated = (long)placed_orders - orders; /* retries that made a second order */
    /* The second victim led the event stream only sometimes: "-" when it did not. */
    char second[32] = "-";
    if (recover_ms[1] > 0)
        snprintf(second, sizeof(second), "%lld", (long long)recover_ms[1]);
    printf("cluster: orders=%ld nodes=%d replicas=%d kills=%d killed=nats-%d,nats-%d "
           "new_leader_ms=%lld,%s max_place_ms=%lld lost=%ld duplicated=%ld seconds=%.1f "
           "audit=%s\n",
           orders, NODES, NODES, kills, victims[0] + 1, victims[1] + 1, (long long)recover_ms[0],
           second, (long long)max_place_ms, lost, duplicated,
           (double)(tproc_now_ms() - t0) / 1000.0, audit == 0 ? "pass" : "FAIL");
    free(ids);
    assert_int_equal(kills, 2);
    assert_int_not_equal(victims[0], victims[1]);
    assert_int_equal(lost, 0);
    assert_int_equal(duplicated, 0);
    if (diverged)
        fail_msg("the copies of %s differ: %s", SAGA_STREAM_EVENTS, copies);
    assert_int_equal(audit, 0);
}

static int setup(void **state)
{
    static const char *env[] = {
        "SAGA_FAULTS=seed=7,dup_rate=0.05,reorder_rate=0.05,reorder_delay_ms=300",
        "ORDER_DEADLINE_MS=60000", NULL};
    *state = &F;
    return tfleet_start_cluster(&F, SAGA_BUILD_DIR, env, NODES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_list_skips_a_dead_server),
        cmocka_unit_test(more_copies_than_nodes_is_refused_clearly),
        cmocka_unit_test_setup_teardown(orders_survive_node_kills, setup, tfleet_teardown),
    };
    return tfleet_run(tests, NULL, NULL);
}
