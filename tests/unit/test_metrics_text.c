/* test_metrics_text.c - The Prometheus text a scraper reads: names, labels, kinds,
 * and histograms whose buckets are cumulative and agree with _count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_internal.h"
#include "metrics.h"
#include "texpo.h"

static char *render(const saga_stats *st, const saga__metrics *m)
{
    size_t len = 0;
    char *t = saga__metrics_text("payment", st, m, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    return t;
}

/* Every counter of SAGA_STATS_MAP is a _total counter, every gauge keeps its
 * name, each with its TYPE line and the service label. */
static void counters_and_gauges_follow_the_conventions(void **state)
{
    saga_stats st;
    saga__metrics m;
    (void)state;
    memset(&st, 0, sizeof(st));
    saga__metrics_init(&m);
    st.processed = 42;
    st.dead_lettered = 3;
    st.pending = 7;
    char *t = render(&st, &m);
    assert_true(texpo_value(t, "saga_processed_total{service=\"payment\"}") == 42);
    assert_true(texpo_value(t, "saga_dead_lettered_total{service=\"payment\"}") == 3);
    assert_true(texpo_value(t, "saga_pending{service=\"payment\"}") == 7);
    assert_true(texpo_value(t, "saga_pending_total{service=\"payment\"}") == -1);
    assert_non_null(strstr(t, "# TYPE saga_processed_total counter\n"));
    assert_non_null(strstr(t, "# TYPE saga_pending gauge\n"));
#define XX(name, kind, meaning)                                                                    \
    assert_non_null(strstr(t, (kind) == SAGA_STAT_COUNT ? "saga_" #name "_total{service="          \
                                                        : "\nsaga_" #name "{service="));
    SAGA_STATS_MAP(XX)
#undef XX
    free(t);
}

static void events_are_counted_by_type(void **state)
{
    saga_stats st;
    saga__metrics m, batch;
    (void)state;
    memset(&st, 0, sizeof(st));
    saga__metrics_init(&m);
    saga__metrics_init(&batch);
    saga__metrics_count_type(&batch, "order.placed", 2);
    saga__metrics_count_type(&batch, "order.cancelled", 1);
    saga__metrics_merge(&m, &batch);
    saga__metrics_merge(&m, &batch);
    char *t = render(&st, &m);
    assert_true(
        texpo_value(t, "saga_events_handled_total{service=\"payment\",type=\"order.placed\"}") ==
        4);
    assert_true(
        texpo_value(t, "saga_events_handled_total{service=\"payment\",type=\"order.cancelled\"}") ==
        2);
    free(t);
}

/* A flood of distinct types cannot grow the table: the rest is "other". */
static void types_beyond_the_table_are_other(void **state)
{
    saga__metrics m;
    char type[32];
    uint64_t sum = 0;
    (void)state;
    saga__metrics_init(&m);
    for (int i = 0; i < 3 * SAGA__METRICS_TYPES_MAX; i++) {
        snprintf(type, sizeof(type), "x.t%d", i);
        saga__metrics_count_type(&m, type, 1);
    }
    assert_int_equal(m.ntypes, SAGA__METRICS_TYPES_MAX);
    assert_string_equal(m.types[SAGA__METRICS_TYPES_MAX - 1].type, SAGA__METRICS_OTHER_TYPE);
    for (int i = 0; i < m.ntypes; i++)
        sum += m.types[i].n;
    assert_int_equal(sum, 3 * SAGA__METRICS_TYPES_MAX);
}

/* Buckets are cumulative, end with +Inf equal to _count, and _sum adds up. */
static void histograms_are_cumulative(void **state)
{
    saga_stats st;
    saga__metrics m;
    (void)state;
    memset(&st, 0, sizeof(st));
    saga__metrics_init(&m);
    saga__hist_observe(&m.commit_s, 0.0002); /* <= 0.00025 */
    saga__hist_observe(&m.commit_s, 0.003);  /* <= 0.005 */
    saga__hist_observe(&m.commit_s, 0.003);  /* <= 0.005 */
    saga__hist_observe(&m.commit_s, 1000);   /* +Inf only */
    saga__hist_observe(&m.commit_s, -1);     /* a clock step: counted as 0 */
    saga__hist_observe(&m.batch_size, 1);    /* le="1" includes 1 */
    saga__hist_observe(&m.batch_size, 100);
    char *t = render(&st, &m);
    const char *s = "saga_commit_seconds_bucket{service=\"payment\",le=";
    assert_true(texpo_value(t, "saga_commit_seconds_bucket{service=\"payment\",le=\"0.0001\"}") ==
                1);
    assert_true(texpo_value(t, "saga_commit_seconds_bucket{service=\"payment\",le=\"0.00025\"}") ==
                2);
    assert_true(texpo_value(t, "saga_commit_seconds_bucket{service=\"payment\",le=\"0.005\"}") ==
                4);
    assert_true(texpo_value(t, "saga_commit_seconds_bucket{service=\"payment\",le=\"60\"}") == 4);
    assert_true(texpo_value(t, "saga_commit_seconds_bucket{service=\"payment\",le=\"+Inf\"}") == 5);
    assert_true(texpo_value(t, "saga_commit_seconds_count{service=\"payment\"}") == 5);
    double sum = texpo_value(t, "saga_commit_seconds_sum{service=\"payment\"}");
    assert_true(sum > 1000.006 - 1e-9 && sum < 1000.0062 + 1e-9);
    assert_true(texpo_value(t, "saga_batch_size_bucket{service=\"payment\",le=\"1\"}") == 1);
    assert_true(texpo_value(t, "saga_batch_size_bucket{service=\"payment\",le=\"64\"}") == 1);
    assert_true(texpo_value(t, "saga_batch_size_bucket{service=\"payment\",le=\"128\"}") == 2);
    assert_non_null(strstr(t, "# TYPE saga_hop_latency_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE saga_publish_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE saga_handler_seconds histogram\n"));
    /* Every bucket line of a histogram is at least the one before. */
    double prev = -1;
    for (const char *p = strstr(t, s); p != NULL; p = strstr(p + 1, s)) {
        double v = strtod(strchr(p, '}') + 2, NULL);
        assert_true(v >= prev);
        prev = v;
    }
    free(t);
}

/* SAGA_METRICS_ADDR: ipv4:port, port 0 meaning any; nothing else. */
static void the_address_is_ipv4_and_port(void **state)
{
    char host[SAGA__METRICS_ADDR_MAX + 1];
    int port = -1;
    (void)state;
    assert_int_equal(saga__config_parse_addr("127.0.0.1:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 0);
    assert_int_equal(saga__config_parse_addr("0.0.0.0:9464", host, sizeof(host), &port), 0);
    assert_int_equal(port, 9464);
    assert_int_equal(saga__config_parse_addr("127.0.0.1", host, sizeof(host), &port), -1);
    assert_int_equal(saga__config_parse_addr("127.0.0.1:65536", host, sizeof(host), &port), -1);
    assert_int_equal(saga__config_parse_addr("127.0.0.1:-1", host, sizeof(host), &port), -1);
    assert_int_equal(saga__config_parse_addr("127.0.0.1:80x", host, sizeof(host), &port), -1);
    assert_int_equal(saga__config_parse_addr("localhost:80", host, sizeof(host), &port), -1);
    assert_int_equal(saga__config_parse_addr(":80", host, sizeof(host), &port), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_and_gauges_follow_the_conventions),
        cmocka_unit_test(events_are_counted_by_type),
        cmocka_unit_test(types_beyond_the_table_are_other),
        cmocka_unit_test(histograms_are_cumulative),
        cmocka_unit_test(the_address_is_ipv4_and_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
