/* test_metrics.c - With SAGA_METRICS_ADDR set, every service serves GET
 * /metrics on the port it logs and names in its discovery answer, and what
 * it serves agrees with its stats reply: a scraper sees the same counts an
 * operator's sagactl sees. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "commands.pb-c.h"
#include "proc.h"
#include "saga/wire.h"
#include "texpo.h"
#include "tfleet.h"
#include "thttp.h"

#define DEADLINE_MS 120000
#define ORDERS 20

static tfleet F;
static int ports[TFLEET_NSVC]; /* from discovery */

static int group_setup(void **state)
{
    static const char *const env[] = {"SAGA_METRICS_ADDR=127.0.0.1:0", NULL};
    *state = &F;
    return tfleet_start(&F, SAGA_BUILD_DIR, env);
}

/* Asks saga.discover and fills ports[] from each service's endpoint
 * http://127.0.0.1:PORT/metrics; 1 once every service has answered with one. */
static int discover_ports(void *arg)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    int found = 0;
    (void)arg;
    if (natsInbox_Create(&inbox) != NATS_OK ||
        natsConnection_SubscribeSync(&sub, F.t.nc, inbox) != NATS_OK ||
        natsConnection_PublishRequest(F.t.nc, SAGA_SUBJ_DISCOVER, inbox, "", 0) != NATS_OK)
        goto out;
    while (natsSubscription_NextMsg(&m, sub, 1000) == NATS_OK) {
        json_t *j = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
        const char *name = json_string_value(json_object_get(j, "name"));
        int i = name != NULL ? tfleet_index(name) : -1;
        json_t *e;
        size_t k;
        json_array_foreach(json_object_get(j, "endpoints"), k, e)
        {
            int port = 0;
            const char *s = json_string_value(e);
            if (i >= 0 && s != NULL && sscanf(s, "http://127.0.0.1:%d/metrics", &port) == 1)
                ports[i] = port;
        }
        json_decref(j);
        natsMsg_Destroy(m);
    }
    found = 1;
    for (int i = 0; i < TFLEET_NSVC; i++)
        found &= ports[i] > 0;
out:
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    return found;
}

static int fleet_idle(void *arg)
{
    (void)arg;
    return tjs_consumers_idle(&F.t, "SAGA_EVENTS");
}

/* processed from the stats reply, from /metrics, and from the stats reply
 * again: equal when the service was idle between the two replies. */
static int scrape_agrees(void *arg)
{
    int i = *(int *)arg;
    char series[128];
    long long before = tjs_stat(&F.t, tfleet_names[i], "processed");
    char *text = thttp_get(ports[i], "/metrics");
    long long after = tjs_stat(&F.t, tfleet_names[i], "processed");
    snprintf(series, sizeof(series), "saga_processed_total{service=\"%s\"}", tfleet_names[i]);
    int ok = text != NULL && before >= 0 && before == after &&
             texpo_value(text, series) == (double)before;
    free(text);
    return ok;
}

static void place_orders(void)
{
    for (int i = 0; i < ORDERS; i++) {
        char key[SAGA_ID_LEN + 1];
        tfleet_item it[] = {{"M1", 1, 500}};
        saga_ulid_new(key);
        Saga__V1__PlaceOrderReply *r = tfleet_place(&F, key, "mia", it, 1, "DE", "EUR", 0);
        assert_non_null(r);
        assert_true(r->ok);
        saga__v1__place_order_reply__free_unpacked(r, NULL);
    }
}

/* The port in the service's log line event=metrics_listening, 0 if none. */
static int logged_port(const char *name)
{
    char path[1024], line[2048];
    int port = 0;
    snprintf(path, sizeof(path), "%s/logs/%s.log", tsrv_dir(F.srv), name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, "event=metrics_listening addr=127.0.0.1:");
        if (p != NULL)
            port = (int)strtol(strchr(p, ':') + 1, NULL, 10);
    }
    fclose(f);
    return port;
}

static void every_service_serves_its_counters(void **state)
{
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "M1", 1000), 0);
    place_orders();
    assert_int_equal(tproc_wait_until(discover_ports, NULL, 30000), 0);
    assert_int_equal(tproc_wait_until(fleet_idle, NULL, DEADLINE_MS), 0);
    for (int i = 0; i < TFLEET_NSVC; i++) {
        assert_int_equal(logged_port(tfleet_names[i]), ports[i]);
        if (tproc_wait_until(scrape_agrees, &i, DEADLINE_MS) != 0)
            fail_msg("%s: saga_processed_total never matched its stats reply", tfleet_names[i]);
    }
}

static void payment_counts_order_placed(void **state)
{
    (void)state;
    char *text = thttp_get(ports[tfleet_index("payment")], "/metrics");
    assert_non_null(text);
    assert_int_equal(strncmp(text, "HTTP/1.", 7), 0);
    assert_int_equal(strncmp(text + 8, " 200 ", 5), 0);
    assert_non_null(strstr(text, "Content-Type: text/plain; version=0.0.4"));
    double n =
        texpo_value(text, "saga_events_handled_total{service=\"payment\",type=\"order.placed\"}");
    assert_true(n >= ORDERS);
    free(text);
}

/* Each histogram's buckets never decrease, +Inf equals _count, and the
 * service handled something, so the counts are not all zero. */
static void histograms_are_cumulative(void **state)
{
    static const char *const hists[] = {"saga_batch_size", "saga_commit_seconds",
                                        "saga_publish_seconds", "saga_handler_seconds",
                                        "saga_hop_latency_seconds"};
    (void)state;
    for (int i = 0; i < TFLEET_NSVC; i++) {
        char *text = thttp_get(ports[i], "/metrics");
        assert_non_null(text);
        for (size_t h = 0; h < sizeof(hists) / sizeof(hists[0]); h++) {
            char prefix[160], series[160];
            double prev = 0, inf = -1;
            int buckets = 0;
            snprintf(prefix, sizeof(prefix), "%s_bucket{service=\"%s\",le=\"", hists[h],
                     tfleet_names[i]);
            for (const char *p = strstr(text, prefix); p != NULL; p = strstr(p + 1, prefix)) {
                const char *v = strstr(p, "} ");
                assert_non_null(v);
                double x = strtod(v + 2, NULL);
                if (x < prev)
                    fail_msg("%s %s: bucket %.40s below the one before", tfleet_names[i], hists[h],
                             p);
                prev = x;
                buckets++;
                if (strncmp(p + strlen(prefix), "+Inf\"", 5) == 0)
                    inf = x;
            }
            snprintf(series, sizeof(series), "%s_count{service=\"%s\"}", hists[h], tfleet_names[i]);
            assert_true(buckets > 2);
            assert_true(inf > 0);
            assert_true(texpo_value(text, series) == inf);
        }
        free(text);
    }
}

/* Anything but /metrics is not found. */
static void other_paths_are_not_found(void **state)
{
    (void)state;
    char *text = thttp_get(ports[0], "/");
    assert_non_null(text);
    assert_non_null(strstr(text, " 404 "));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_service_serves_its_counters),
        cmocka_unit_test(payment_counts_order_placed),
        cmocka_unit_test(histograms_are_cumulative),
        cmocka_unit_test(other_paths_are_not_found),
    };
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
