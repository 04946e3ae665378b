/* load.c - The load generator: places happy-path orders on saga.cmd.order.place
 * (many requests in flight, each with its own reply subject under one inbox
 * subscription), at a fixed rate or closed-loop, and times each from the
 * moment its request is sent to the moment its final event (order.confirmed
 * or order.cancelled, watched on core NATS) arrives. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench.h"
#include "fleet.h"
#include "commands.pb-c.h"
#include "ctl.h"
#include "map.h"
#include "saga/event.h"
#include "saga/wire.h"

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define WAIT_SLICE_MS 100        /* longest the main thread sleeps between checks */
#define RATE_MAX_INFLIGHT 200000 /* a fixed rate the fleet cannot follow stops growing here */
#define REQUEST_TIMEOUT_MS 10000
#define ITEM_CENTS 1999
#define LINES_MAX 16
#define STOCK_MAX 1000000000LL /* the inventory service's cap */

enum slot_state { SLOT_FREE, SLOT_SENT, SLOT_PLACED, SLOT_DONE };
enum final_kind { FINAL_CONFIRMED = 1, FINAL_CANCELLED = 2 };

typedef struct slot {
    int64_t sent_ns, reply_ns;
    uint8_t state;
} slot;

/* A final event that arrived before the reply that names its order. */
typedef struct early {
    int64_t at_ns;
    int kind;
} early;

typedef struct load {
    const bench_load_cfg *cfg;
    long long total;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *slots;
    bench_map ids;   /* order id -> slot index + 1 */
    bench_map early; /* order id -> early * */
    uint64_t *lat;
    int64_t *done; /* when each latency sample's order completed */
    size_t nlat;
    long long finished, inflight, confirmed, cancelled, rejected;
    long long tail_notification, tail_inventory; /* tail events seen */
    int64_t last_done_ns;
    int oom;
    char reject_text[160];
    char inbox[128];
    int hops_on;
    bench_hops hops;
    long long kept_seen; /* confirmed orders offered to the sample of ids */
    uint64_t kept_rng;   /* its random choices (xorshift64) */
} load;

double bench_percentile_ms(const uint64_t *sorted_ns, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)((double)n * q + 0.999999999); /* nearest rank, 1-based */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted_ns[rank - 1] / 1e6;
}

/* Completions per second of the measured window (for --plot), from its start. */
static void series(const load *L, int64_t start, bench_load_result *res)
{
    memset(res->per_s, 0, sizeof(res->per_s));
    res->nper_s = 0;
    for (size_t i = 0; start > 0 && i < L->nlat; i++) {
        int64_t sec = (L->done[i] - start) / NS_PER_S;
        if (sec < 0 || sec >= BENCH_SERIES_MAX)
            continue;
        res->per_s[sec]++;
        if ((size_t)sec + 1 > res->nper_s)
            res->nper_s = (size_t)sec + 1;
    }
}

/* Keeps order_id in cfg->ids, a uniform random sample of the confirmed orders
 * (reservoir sampling: the k-th one replaces a kept one with probability n/k). */
static void keep_id(load *L, const char *order_id)
{
    const bench_load_cfg *cfg = L->cfg;
    uint64_t x = L->kept_rng;
    size_t at = (size_t)L->kept_seen++;
    if (cfg->keep_ids == 0 || order_id == NULL)
        return;
    if (at >= cfg->keep_ids) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        L->kept_rng = x;
        at = (size_t)(x % (uint64_t)L->kept_seen);
        if (at >= cfg->keep_ids)
            return;
    }
    snprintf(cfg->ids[at], sizeof(cfg->ids[at]), "%s", order_id);
}

/* Records the end of slot idx (order_id NULL when it was refused); with the lock held. */
static void finish(load *L, long long idx, int64_t at, int kind, const char *order_id)
{
    slot *s = &L->slots[idx];
    if (L->hops_on && order_id != NULL && s->state != SLOT_DONE)
        bench_hops_done(&L->hops, order_id, s->sent_ns, s->reply_ns, at,
                        idx >= L->cfg->warmup && kind == FINAL_CONFIRMED);
    if (s->state == SLOT_DONE)
        return;
    s->state = SLOT_DONE;
    L->finished++;
    L->inflight--;
    if (kind == FINAL_CONFIRMED) {
        L->confirmed++;
        keep_id(L, order_id);
    } else if (kind == FINAL_CANCELLED) {
        L->cancelled++;
    } else {
        L->rejected++;
    }
    if (kind != 0 && idx >= L->cfg->warmup) {
        L->done[L->nlat] = at;
        L->lat[L->nlat++] = (uint64_t)(at - s->sent_ns);
    }
    L->last_done_ns = at;
    pthread_cond_signal(&L->cv);
}

/* Reply to the request of slot <n>, on <inbox>.<n>: remember the order id. */
static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    load *L = closure;
    int64_t now = bench_now_ns();
    const char *subj = natsMsg_GetSubject(msg), *dot = strrchr(subj, '.');
    char *end = NULL;
    (void)nc;
    (void)sub;
    long long idx = dot != NULL ? strtoll(dot + 1, &end, 10) : -1;
    Saga__V1__PlaceOrderReply *r = saga__v1__place_order_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    pthread_mutex_lock(&L->mu);
    if (idx < 0 || idx >= L->total || end == NULL || *end != '\0' ||
        L->slots[idx].state != SLOT_SENT)
        goto out;
    if (r == NULL || !r->ok || r->order_id == NULL) {
        snprintf(L->reject_text, sizeof(L->reject_text), "%s",
                 r == NULL  ? "reply does not unpack"
                 : r->error ? r->error
                            : "no order id");
        finish(L, idx, now, 0, NULL);
        goto out;
    }
    L->slots[idx].state = SLOT_PLACED;
    L->slots[idx].reply_ns = now;
    early *e = bench_map_take(&L->early, r->order_id);
    if (e != NULL) {
        finish(L, idx, e->at_ns, e->kind, r->order_id);
        free(e);
    } else if (bench_map_put(&L->ids, r->order_id, (void *)(uintptr_t)(idx + 1), NULL) != 0) {
        L->oom = 1;
    }
out:
    pthread_mutex_unlock(&L->mu);
    saga__v1__place_order_reply__free_unpacked(r, NULL);
    natsMsg_Destroy(msg);
}

/* The event type of a subject evt.<partition>.<type> ("" if it is not one)
 * and the order id of its Saga-Order-Id header (NULL without one): read
 * without decoding the envelope, as the broker delivers it. */
static const char *type_of(natsMsg *msg, const char **order)
{
    const char *subj = natsMsg_GetSubject(msg), *dot = NULL;
    *order = NULL;
    if (natsMsgHeader_Get(msg, SAGA_HDR_ORDER_ID, order) != NATS_OK)
        *order = NULL;
    if (strncmp(subj, SAGA_SUBJ_EVENTS_PREFIX, 4) == 0)
        dot = strchr(subj + 4, '.');
    return dot != NULL ? dot + 1 : "";
}

/* order.confirmed or order.cancelled, from the broker's core delivery of
 * what JetStream stored; with the lock held. */
static void handle_final(load *L, const char *type, const char *id, int64_t now)
{
    int kind = strcmp(type, "order.confirmed") == 0 ? FINAL_CONFIRMED : FINAL_CANCELLED;
    if (id == NULL)
        return;
    uintptr_t v = (uintptr_t)bench_map_take(&L->ids, id);
    if (v != 0) {
        finish(L, (long long)v - 1, now, kind, id);
        return;
    }
    early *e = malloc(sizeof(*e));
    void *old = NULL;
    if (e == NULL || bench_map_put(&L->early, id, e, &old) != 0) {
        free(e);
        L->oom = 1;
        return;
    }
    e->at_ns = old != NULL ? ((early *)old)->at_ns : now; /* a copy: the first one counts */
    e->kind = kind;
    free(old);
}

/* notification.sent and inventory.committed: the last events of a
 * confirmed saga, after order.confirmed; only counted. With the lock held. */
static void handle_tail(load *L, const char *type)
{
    if (strncmp(type, "notification.", 13) == 0)
        L->tail_notification++;
    else
        L->tail_inventory++;
    pthread_cond_signal(&L->cv);
}

static void on_final(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    load *L = closure;
    int64_t now = bench_now_ns();
    (void)nc;
    (void)sub;
    const char *order, *type = type_of(msg, &order);
    pthread_mutex_lock(&L->mu);
    handle_final(L, type, order, now);
    pthread_mutex_unlock(&L->mu);
    natsMsg_Destroy(msg);
}

static void on_tail(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    load *L = closure;
    (void)nc;
    (void)sub;
    const char *order, *type = type_of(msg, &order);
    pthread_mutex_lock(&L->mu);
    handle_tail(L, type);
    pthread_mutex_unlock(&L->mu);
    natsMsg_Destroy(msg);
}

/* With --hops, every event on one subscription: one subscription keeps them
 * in the order the broker stored them, so no hop is seen before its cause. */
static void on_any(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    load *L = closure;
    int64_t now = bench_now_ns();
    const char *order, *type = type_of(msg, &order);
    (void)nc;
    (void)sub;
    pthread_mutex_lock(&L->mu);
    if (strcmp(type, "order.confirmed") == 0 || strcmp(type, "order.cancelled") == 0)
        handle_final(L, type, order, now);
    else if (strcmp(type, "notification.sent") == 0 || strcmp(type, "inventory.committed") == 0)
        handle_tail(L, type);
    else if (order != NULL)
        bench_hops_event(&L->hops, type, order, now);
    pthread_mutex_unlock(&L->mu);
    natsMsg_Destroy(msg);
}

/* Tail events still missing; with the lock held. */
static long long lag(const load *L)
{
    long long a = L->confirmed - L->tail_notification, b = L->confirmed - L->tail_inventory;
    return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

static char conn_home[BENCH_PATH_MAX];

void bench_connect_home(const char *home)
{
    snprintf(conn_home, sizeof(conn_home), "%s", home != NULL ? home : "");
}

natsStatus bench_connect(const char *url, natsConnection **nc)
{
    natsOptions *o = NULL;
    char why[512] = "";
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = fleet_set_servers(o, url);
    /* An authenticated fleet: SAGA_NATS_CREDS and the TLS settings, as the services,
     * or the operator's identity of the fleet saga-bench launched. */
    const char *home = conn_home[0] != '\0' ? conn_home : NULL;
    if (s == NATS_OK && (s = fleet_client_env(o, home, home != NULL ? "operator" : NULL, why,
                                              sizeof why)) != NATS_OK)
        fprintf(stderr, "saga-bench: %s\n", why);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "saga-bench");
    /* Each request goes out at once: the flusher's 1 ms would be latency. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return s;
}

/* Every inventory instance its share of per_sku, as sagactl stock set gives it. */
static int set_stock_split(natsConnection *nc, const bench_load_cfg *cfg, long long per_sku,
                           char *err, size_t errlen)
{
    uint32_t sets[SAGA_PARTITIONS];
    size_t n = ctl_stock_sets(cfg->instances, sets);
    for (long long k = 0; k < cfg->skus; k++) {
        char sku[32];
        ctl_stock st;
        snprintf(sku, sizeof(sku), "BENCH-SKU-%lld", k);
        if (ctl_stock_request(nc, sets, n, sku, per_sku, REQUEST_TIMEOUT_MS, &st, err, errlen) !=
            CTL_EXIT_OK)
            return -1;
    }
    return 0;
}

static int set_stock(natsConnection *nc, const bench_load_cfg *cfg, long long per_sku, char *err,
                     size_t errlen)
{
    if (cfg->instances > 1)
        return set_stock_split(nc, cfg, per_sku, err, errlen);
    for (long long k = 0; k < cfg->skus; k++) {
        Saga__V1__SetStock req = SAGA__V1__SET_STOCK__INIT;
        uint8_t buf[128];
        char sku[32];
        natsMsg *m = NULL;
        snprintf(sku, sizeof(sku), "BENCH-SKU-%lld", k);
        req.sku = sku;
        req.quantity = per_sku;
        size_t len = saga__v1__set_stock__pack(&req, buf);
        if (natsConnection_Request(&m, nc, "saga.cmd.inventory.stock.set", buf, (int)len,
                                   REQUEST_TIMEOUT_MS) != NATS_OK) {
            snprintf(err, errlen, "no answer to saga.cmd.inventory.stock.set");
            return -1;
        }
        Saga__V1__StockReply *r = saga__v1__stock_reply__unpack(
            NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
        int ok = r != NULL && r->ok;
        if (!ok)
            snprintf(err, errlen, "setting stock refused: %s",
                     r != NULL && r->error ? r->error : "bad reply");
        saga__v1__stock_reply__free_unpacked(r, NULL);
        natsMsg_Destroy(m);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Packs order i: lines over the SKUs in turn, one unit each, a total far
 * under the payment limit; an idempotency key as a real client sends. */
/* Packs order i into buf and its place subject into subject: routed by its idempotency
 * key's partition with instances (docs/scaling.md), plain for the only instance and the
 * ceiling's roles. */
static size_t pack_order(const bench_load_cfg *cfg, const char *run_id, long long i, uint8_t *buf,
                         char *subject, size_t cap)
{
    Saga__V1__PlaceOrder req = SAGA__V1__PLACE_ORDER__INIT;
    Saga__V1__LineItem li[LINES_MAX], *lp[LINES_MAX];
    char key[64], cust[32], sku[LINES_MAX][32];
    for (long long j = 0; j < cfg->items; j++) {
        saga__v1__line_item__init(&li[j]);
        snprintf(sku[j], sizeof(sku[j]), "BENCH-SKU-%lld", (i + j) % cfg->skus);
        li[j].sku = sku[j];
        li[j].quantity = 1;
        li[j].unit_cents = ITEM_CENTS;
        lp[j] = &li[j];
    }
    snprintf(key, sizeof(key), "bench-%s-%lld", run_id, i);
    if (cfg->instances > 1)
        saga_routed_subject(SAGA_SUBJ_ORDER_PLACE, key, subject, cap);
    else
        snprintf(subject, cap, "%s", SAGA_SUBJ_ORDER_PLACE);
    snprintf(cust, sizeof(cust), "cust-%lld", i % 1000);
    req.idempotency_key = key;
    req.customer_id = cust;
    req.items = lp;
    req.n_items = (size_t)cfg->items;
    req.currency = "EUR";
    req.ship_to = "DE";
    return saga__v1__place_order__pack(&req, buf);
}

static void abs_after_ms(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += (long)((ms % 1000) * NS_PER_MS);
    ts->tv_sec += (time_t)(ms / 1000) + ts->tv_nsec / NS_PER_S;
    ts->tv_nsec %= NS_PER_S;
}

typedef struct ticker {
    int64_t t0, next_print, last_progress_ns;
    long long last_finished, prev_print_finished, next_mark;
} ticker;

/* Progress, marks and the stall check; with the lock held. Returns -1 on a stall. */
static int tick(load *L, ticker *t, long long placed, char *err, size_t errlen)
{
    const bench_load_cfg *cfg = L->cfg;
    int64_t now = bench_now_ns();
    if (L->finished != t->last_finished) {
        t->last_finished = L->finished;
        t->last_progress_ns = now;
    }
    if (cfg->progress && now >= t->next_print) {
        double dt = (double)(now - t->next_print + NS_PER_S) / 1e9;
        fprintf(stderr, "[%s] placed %lld completed %lld in-flight %lld rate %.0f/s\n", cfg->label,
                placed, L->finished, L->inflight,
                (double)(L->finished - t->prev_print_finished) / (dt > 0 ? dt : 1));
        t->prev_print_finished = L->finished;
        t->next_print = now + NS_PER_S;
    }
    while (cfg->mark_every > 0 && L->finished >= t->next_mark) {
        long long mark = t->next_mark;
        t->next_mark += cfg->mark_every;
        long long l = lag(L);
        pthread_mutex_unlock(&L->mu); /* sampling reads /proc: no lock needed */
        cfg->hook(cfg->hook_arg, BENCH_HOOK_MARK, mark, (double)(now - t->t0) / 1e9, l);
        pthread_mutex_lock(&L->mu);
    }
    if (L->inflight > 0 && now - t->last_progress_ns > cfg->stall_ms * NS_PER_MS) {
        snprintf(err, errlen, "no order completed for %lld ms (%lld in flight)", cfg->stall_ms,
                 L->inflight);
        return -1;
    }
    return 0;
}

static int drive(load *L, natsConnection *nc, const char *run_id, char *err, size_t errlen)
{
    const bench_load_cfg *cfg = L->cfg;
    uint8_t buf[4096];
    char reply[sizeof(L->inbox) + 24], subject[128];
    ticker t = {0};
    int rc = 0;
    t.t0 = t.last_progress_ns = bench_now_ns();
    t.next_print = t.t0 + NS_PER_S;
    t.next_mark = cfg->mark_every > 0 ? cfg->mark_every : 0;

    pthread_mutex_lock(&L->mu);
    for (long long i = 0; i < L->total && rc == 0; i++) {
        int64_t due = cfg->rate > 0 ? t.t0 + (int64_t)((double)i * 1e9 / (double)cfg->rate) : 0;
        for (;;) {
            if (bench_interrupted) {
                snprintf(err, errlen, "interrupted");
                rc = -1;
                break;
            }
            if (tick(L, &t, i, err, errlen) != 0) {
                rc = -1;
                break;
            }
            long long cap = cfg->rate > 0 ? RATE_MAX_INFLIGHT : cfg->concurrency;
            int64_t now = bench_now_ns();
            if (L->inflight < cap && now >= due)
                break;
            struct timespec ts;
            int64_t wait_ms = WAIT_SLICE_MS;
            if (L->inflight < cap && (due - now) / NS_PER_MS < wait_ms)
                wait_ms = (due - now) / NS_PER_MS;
            if (wait_ms <= 0) {
                /* Under a millisecond to go: sleep without the lock, precisely. */
                pthread_mutex_unlock(&L->mu);
                struct timespec d = {0, (long)(due - now)};
                nanosleep(&d, NULL);
                pthread_mutex_lock(&L->mu);
                continue;
            }
            abs_after_ms(&ts, wait_ms);
            pthread_cond_timedwait(&L->cv, &L->mu, &ts);
        }
        if (rc != 0)
            break;
        if (i == cfg->warmup && cfg->hook != NULL) {
            pthread_mutex_unlock(&L->mu);
            cfg->hook(cfg->hook_arg, BENCH_HOOK_MEASURE_START, L->finished, 0, 0);
            pthread_mutex_lock(&L->mu);
        }
        size_t len = pack_order(cfg, run_id, i, buf, subject, sizeof(subject));
        snprintf(reply, sizeof(reply), "%s.%lld", L->inbox, i);
        L->slots[i].state = SLOT_SENT;
        L->slots[i].sent_ns = bench_now_ns();
        L->inflight++;
        pthread_mutex_unlock(&L->mu);
        natsStatus s = natsConnection_PublishRequest(nc, subject, reply, buf, (int)len);
        pthread_mutex_lock(&L->mu);
        if (s != NATS_OK) {
            snprintf(err, errlen, "publish request: %s", natsStatus_GetText(s));
            rc = -1;
        }
    }
    /* Everything placed: wait for the last final events. */
    while (rc == 0 && L->finished < L->total) {
        struct timespec ts;
        if (bench_interrupted) {
            snprintf(err, errlen, "interrupted");
            rc = -1;
            break;
        }
        if (L->oom) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        if (tick(L, &t, L->total, err, errlen) != 0) {
            rc = -1;
            break;
        }
        abs_after_ms(&ts, WAIT_SLICE_MS);
        pthread_cond_timedwait(&L->cv, &L->mu, &ts);
    }
    if (rc == 0)
        tick(L, &t, L->total, err, errlen); /* the last marks */
    pthread_mutex_unlock(&L->mu);
    return rc;
}

/* After the last final event: waits for the tail events of every confirmed
 * order, up to settle_ms. Returns the seconds it took, or -1. */
static double settle(load *L)
{
    const bench_load_cfg *cfg = L->cfg;
    int64_t t0 = bench_now_ns(), next_print = t0 + NS_PER_S;
    double rv = -1;
    pthread_mutex_lock(&L->mu);
    while (!bench_interrupted) {
        int64_t now = bench_now_ns();
        if (lag(L) == 0) {
            rv = (double)(now - t0) / 1e9;
            break;
        }
        if (now - t0 > cfg->settle_ms * NS_PER_MS)
            break;
        if (cfg->progress && now >= next_print) {
            fprintf(stderr,
                    "[%s] draining: %lld notification.sent and %lld inventory.committed "
                    "still to come\n",
                    cfg->label, L->confirmed - L->tail_notification,
                    L->confirmed - L->tail_inventory);
            next_print = now + NS_PER_S;
        }
        struct timespec ts;
        abs_after_ms(&ts, WAIT_SLICE_MS);
        pthread_cond_timedwait(&L->cv, &L->mu, &ts);
    }
    pthread_mutex_unlock(&L->mu);
    return rv;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void load_free(load *L)
{
    if (L->hops_on)
        bench_hops_cleanup(&L->hops);
    free(L->slots);
    free(L->lat);
    free(L->done);
    bench_map_cleanup(&L->ids, NULL);
    bench_map_cleanup(&L->early, free);
    pthread_cond_destroy(&L->cv);
    pthread_mutex_destroy(&L->mu);
}

int bench_load_run(const bench_load_cfg *cfg, bench_load_result *res, char *err, size_t errlen)
{
    load L;
    natsConnection *nc = NULL;
    natsSubscription *sreply = NULL, *sev[4] = {NULL, NULL, NULL, NULL};
    natsInbox *inbox = NULL;
    pthread_condattr_t ca;
    char run_id[32], sub_subject[sizeof(L.inbox) + 4];
    int rc = -1;

    memset(res, 0, sizeof(*res));
    res->settle_s = -1;
    memset(&L, 0, sizeof(L));
    L.cfg = cfg;
    L.total = cfg->warmup + cfg->orders;
    pthread_mutex_init(&L.mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&L.cv, &ca);
    pthread_condattr_destroy(&ca);
    L.hops_on = cfg->hops;
    L.kept_rng = (uint64_t)bench_now_ns() | 1;
    if (L.hops_on && bench_hops_init(&L.hops, (size_t)cfg->orders) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    L.slots = calloc((size_t)L.total, sizeof(*L.slots));
    L.lat = calloc((size_t)cfg->orders + 1, sizeof(*L.lat));
    L.done = calloc((size_t)cfg->orders + 1, sizeof(*L.done));
    if (L.slots == NULL || L.lat == NULL || L.done == NULL || bench_map_init(&L.ids) != 0 ||
        bench_map_init(&L.early) != 0 || cfg->items < 1 || cfg->items > LINES_MAX) {
        snprintf(err, errlen, "out of memory or bad item count");
        goto out;
    }
    /* Keys unique across runs, for a long-lived fleet of --url. */
    snprintf(run_id, sizeof(run_id), "%lx%x", (long)time(NULL), (unsigned)getpid());

    natsStatus s = bench_connect(cfg->url, &nc);
    if (s == NATS_OK)
        s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(L.inbox, sizeof(L.inbox), "%s", (const char *)inbox);
        snprintf(sub_subject, sizeof(sub_subject), "%s.*", L.inbox);
        s = natsConnection_Subscribe(&sreply, nc, sub_subject, on_reply, &L);
    }
    if (s == NATS_OK && L.hops_on) {
        s = natsConnection_Subscribe(&sev[0], nc, "evt.>", on_any, &L);
    } else if (s == NATS_OK) {
        s = natsConnection_Subscribe(&sev[0], nc, "evt.*.order.confirmed", on_final, &L);
        if (s == NATS_OK)
            s = natsConnection_Subscribe(&sev[1], nc, "evt.*.order.cancelled", on_final, &L);
        if (s == NATS_OK)
            s = natsConnection_Subscribe(&sev[2], nc, "evt.*.notification.sent", on_tail, &L);
        if (s == NATS_OK)
            s = natsConnection_Subscribe(&sev[3], nc, "evt.*.inventory.committed", on_tail, &L);
    }
    /* A burst must never be dropped as a slow consumer: that would lose orders. */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sreply, -1, -1);
    for (int i = 0; s == NATS_OK && i < 4 && sev[i] != NULL; i++)
        s = natsSubscription_SetPendingLimits(sev[i], -1, -1);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, 5000);
    if (s != NATS_OK) {
        snprintf(err, errlen, "connect to %s: %s", cfg->url, natsStatus_GetText(s));
        goto out;
    }
    long long per_sku = (L.total * cfg->items) / cfg->skus + 1000;
    if (set_stock(nc, cfg, per_sku < STOCK_MAX ? per_sku : STOCK_MAX, err, errlen) != 0)
        goto out;
    if (cfg->warmup == 0 && cfg->orders == 0)
        goto out;
    int64_t first_measured = 0;
    rc = drive(&L, nc, run_id, err, errlen);
    pthread_mutex_lock(&L.mu);
    long long lag_end = lag(&L);
    res->lag_notification = L.confirmed - L.tail_notification;
    res->lag_inventory = L.confirmed - L.tail_inventory;
    pthread_mutex_unlock(&L.mu);
    if (cfg->hook != NULL)
        cfg->hook(cfg->hook_arg, BENCH_HOOK_MEASURE_END, L.finished, 0, lag_end);
    res->settle_s = rc == 0 ? settle(&L) : -1;
    if (cfg->orders > 0 && L.slots[cfg->warmup].state != SLOT_FREE)
        first_measured = L.slots[cfg->warmup].sent_ns;
    if (rc == 0 && (L.rejected > 0 || L.cancelled > 0)) {
        snprintf(err, errlen, "%lld orders rejected, %lld cancelled (last refusal: %s)", L.rejected,
                 L.cancelled, L.reject_text[0] ? L.reject_text : "none");
        rc = -1;
    }
    pthread_mutex_lock(&L.mu);
    res->placed = 0;
    for (long long i = 0; i < L.total; i++)
        res->placed += L.slots[i].state != SLOT_FREE;
    res->confirmed = L.confirmed;
    res->cancelled = L.cancelled;
    res->rejected = L.rejected;
    res->nids = L.kept_seen < (long long)cfg->keep_ids ? (size_t)L.kept_seen : cfg->keep_ids;
    res->nlat = L.nlat;
    if (first_measured > 0 && L.last_done_ns > first_measured) {
        res->window_s = (double)(L.last_done_ns - first_measured) / 1e9;
        res->sagas_per_s = (double)L.nlat / res->window_s;
    }
    series(&L, first_measured, res);
    qsort(L.lat, L.nlat, sizeof(*L.lat), cmp_u64);
    for (size_t i = 0; i < BENCH_CDF_POINTS; i++)
        res->cdf_ms[i] = bench_percentile_ms(L.lat, L.nlat, (double)i / (BENCH_CDF_POINTS - 1));
    double sum = 0;
    for (size_t i = 0; i < L.nlat; i++)
        sum += (double)L.lat[i];
    res->mean_ms = L.nlat ? sum / (double)L.nlat / 1e6 : 0;
    res->p50_ms = bench_percentile_ms(L.lat, L.nlat, 0.50);
    res->p90_ms = bench_percentile_ms(L.lat, L.nlat, 0.90);
    res->p99_ms = bench_percentile_ms(L.lat, L.nlat, 0.99);
    res->max_ms = L.nlat ? (double)L.lat[L.nlat - 1] / 1e6 : 0;
    if (L.hops_on)
        bench_hops_summary(&L.hops, res);
    pthread_mutex_unlock(&L.mu);
out:
    /* Close first: no callback may run once the state below is freed. */
    if (nc != NULL)
        natsConnection_Close(nc);
    natsSubscription_Destroy(sreply);
    for (int i = 0; i < 4; i++)
        natsSubscription_Destroy(sev[i]);
    natsConnection_Destroy(nc);
    natsInbox_Destroy(inbox);
    load_free(&L);
    return rc;
}
