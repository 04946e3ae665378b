/* hops.c - Where an order's latency goes: the time between the saga's
 * events as the load generator sees them pass through the broker (request
 * -> order.placed -> payment.charged and inventory.reserved ->
 * shipping.scheduled -> order.confirmed), one sample per measured order. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum { T_PLACED, T_CHARGED, T_RESERVED, T_SCHEDULED, T_NTIMES };

static const char *const event_of_time[T_NTIMES] = {"order.placed", "payment.charged",
                                                    "inventory.reserved", "shipping.scheduled"};

const char *const bench_hop_names[BENCH_NHOPS] = {
    "request->order.placed",      "request->reply",           "placed->payment.charged",
    "placed->inventory.reserved", "both->shipping.scheduled", "scheduled->order.confirmed"};

typedef struct times {
    int64_t t[T_NTIMES];
} times;

int bench_hops_init(bench_hops *h, size_t cap)
{
    memset(h, 0, sizeof(*h));
    if (bench_map_init(&h->open) != 0)
        return -1;
    for (int i = 0; i < BENCH_NHOPS; i++) {
        h->v[i] = calloc(cap + 1, sizeof(*h->v[i]));
        if (h->v[i] == NULL)
            return -1;
    }
    h->cap = cap;
    return 0;
}

void bench_hops_cleanup(bench_hops *h)
{
    bench_map_cleanup(&h->open, free);
    for (int i = 0; i < BENCH_NHOPS; i++)
        free(h->v[i]);
    memset(h, 0, sizeof(*h));
}

void bench_hops_event(bench_hops *h, const char *type, const char *id, int64_t at)
{
    for (int k = 0; k < T_NTIMES; k++) {
        if (strcmp(type, event_of_time[k]) != 0)
            continue;
        times *t = bench_map_get(&h->open, id);
        if (t == NULL) {
            t = calloc(1, sizeof(*t));
            if (t == NULL || bench_map_put(&h->open, id, t, NULL) != 0) {
                free(t);
                return;
            }
        }
        if (t->t[k] == 0)
            t->t[k] = at; /* a redelivered copy does not move the first sighting */
        return;
    }
}

void bench_hops_done(bench_hops *h, const char *order_id, int64_t sent, int64_t reply,
                     int64_t confirmed, int measured)
{
    times *t = bench_map_take(&h->open, order_id);
    if (t == NULL)
        return;
    int64_t both = t->t[T_CHARGED] > t->t[T_RESERVED] ? t->t[T_CHARGED] : t->t[T_RESERVED];
    int64_t d[BENCH_NHOPS] = {t->t[T_PLACED] - sent,
                              reply - sent,
                              t->t[T_CHARGED] - t->t[T_PLACED],
                              t->t[T_RESERVED] - t->t[T_PLACED],
                              t->t[T_SCHEDULED] - both,
                              confirmed - t->t[T_SCHEDULED]};
    int complete = reply > 0;
    for (int k = 0; k < T_NTIMES; k++)
        complete = complete && t->t[k] > 0;
    if (measured && complete && h->n < h->cap) {
        for (int i = 0; i < BENCH_NHOPS; i++)
            h->v[i][h->n] = d[i] > 0 ? (uint64_t)d[i] : 0;
        h->n++;
    }
    free(t);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_hops_summary(bench_hops *h, bench_load_result *res)
{
    res->hop_samples = h->n;
    for (int i = 0; i < BENCH_NHOPS; i++) {
        qsort(h->v[i], h->n, sizeof(*h->v[i]), cmp_u64);
        res->hop_p50_ms[i] = bench_percentile_ms(h->v[i], h->n, 0.50);
        res->hop_p99_ms[i] = bench_percentile_ms(h->v[i], h->n, 0.99);
    }
}
