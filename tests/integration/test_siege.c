/* test_siege.c - An authenticated fleet under attack while it works: 1,000 real
 * orders flow while an attacker holding the client identity, and one holding a
 * compromised service's (shipping's), send over 20,000 malformed, oversized, forged
 * and overflowing messages at every subject. Afterwards no process crashed or
 * grew without bound, every real order is CONFIRMED, `sagactl audit` is clean,
 * and every hostile message is accounted for: refused by the broker (a
 * permissions violation, or over max_payload), rejected with a reply, or
 * dead-lettered. The figures are printed (docs/security.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <pthread.h>

#include <cmocka.h>

#include "commands.pb-c.h"
#include "events.pb-c.h"
#include "proc.h"
#include "saga/client.h"
#include "saga/saga.h"
#include "tfleet.h"

#define ORDERS 1000
#define DENIED_CLIENT 6000   /* publishes the client identity may not make */
#define REQUESTS_CLIENT 9000 /* malformed requests on the subjects it may use */
#define DENIED_SERVICE 3000  /* shipping's publishes outside its rights */
#define STORED_SERVICE 2500  /* shipping's malformed events on its own subjects */
#define OVERSIZED 20         /* bodies over max_payload, each identity */
#define IN_FLIGHT 200        /* unanswered requests at a time */
#define PLACE_MS 60000       /* to place one real order, retries included */
#define WAIT_MS 30000
#define SKU "SIEGE-SKU"

static tfleet F;

typedef struct attacker {
    natsConnection *nc;
    jsCtx *js;
    int violations;    /* permissions violations the broker reported */
    int replies;       /* answers to its requests */
    int accepted;      /* answers that said yes to a hostile request */
    int too_big;       /* refused for max_payload before leaving */
    int stored;        /* hostile events the stream took */
    int sent_denied;   /* publishes outside its rights */
    int sent_requests; /* requests sent */
    int failed;        /* publishes that failed otherwise (must stay 0) */
} attacker;

/* A hostile place request must be refused: ok=false in a PlaceOrderReply; any
 * other reply (queries answer JSON) counts as an answer. */
static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    attacker *a = closure;
    (void)nc;
    (void)sub;
    if (strstr(natsMsg_GetSubject(m), ".place.") != NULL) {
        Saga__V1__PlaceOrderReply *r = saga__v1__place_order_reply__unpack(
            NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
        if (r == NULL || r->ok)
            __atomic_add_fetch(&a->accepted, 1, __ATOMIC_SEQ_CST);
        saga__v1__place_order_reply__free_unpacked(r, NULL);
    }
    __atomic_add_fetch(&a->replies, 1, __ATOMIC_SEQ_CST);
    natsMsg_Destroy(m);
}

static void connect_as(attacker *a, const char *identity, natsSubscription **replies)
{
    natsOptions *o = NULL;
    memset(a, 0, sizeof(*a));
    assert_int_equal(natsOptions_Create(&o), NATS_OK);
    fleet_set_servers(o, tsrv_url(F.srv));
    assert_int_equal(fleet_client_options(tsrv_fleet(F.srv), identity, o), NATS_OK);
    natsOptions_SetErrorHandler(o, tjs_count_violations, &a->violations);
    natsOptions_SetMaxPendingMsgs(o, 1000000);
    assert_int_equal(natsConnection_Connect(&a->nc, o), NATS_OK);
    natsOptions_Destroy(o);
    assert_int_equal(natsConnection_JetStream(&a->js, a->nc, NULL), NATS_OK);
    if (replies != NULL)
        assert_int_equal(natsConnection_Subscribe(replies, a->nc, "_INBOX.siege.>", on_reply, a),
                         NATS_OK);
}

static void disconnect(attacker *a)
{
    jsCtx_Destroy(a->js);
    natsConnection_Destroy(a->nc);
}

/* ---- what the attackers send ---------------------------------------------------- */

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

static size_t garbage(uint8_t *buf, size_t cap)
{
    size_t n = 1 + rnd() % (cap < 2000 ? cap : 2000);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)rnd();
    return n;
}

typedef struct blob {
    uint8_t *data;
    size_t len;
} blob;

/* A place request with nlines lines of qty x unit, customer and key as given. */
static blob place_req(int nlines, int64_t qty, int64_t unit, const char *customer, const char *key)
{
    blob b;
    Saga__V1__PlaceOrder req = SAGA__V1__PLACE_ORDER__INIT;
    Saga__V1__LineItem *li = calloc((size_t)nlines, sizeof(*li));
    Saga__V1__LineItem **lp = calloc((size_t)nlines, sizeof(*lp));
    for (int i = 0; i < nlines; i++) {
        saga__v1__line_item__init(&li[i]);
        li[i].sku = SKU;
        li[i].quantity = (int32_t)qty;
        li[i].unit_cents = unit;
        lp[i] = &li[i];
    }
    req.idempotency_key = (char *)key;
    req.customer_id = (char *)customer;
    req.items = lp;
    req.n_items = (size_t)nlines;
    b.len = saga__v1__place_order__get_packed_size(&req);
    b.data = malloc(b.len);
    saga__v1__place_order__pack(&req, b.data);
    free(li);
    free(lp);
    return b;
}

/* The fixed hostile bodies, built once: the place requests send_request sends in
 * the order of its k, then one over max_payload. */
enum {
    LINES10K,
    OVERFLOW,
    NEGATIVE,
    NON_UTF8,
    HUGE_STR,
    BAD_KEY,
    NPLACE,
    TOO_BIG = NPLACE,
    NBODIES
};
static blob B[NBODIES];

static void make_bodies(void)
{
    char key[SAGA_ID_LEN + 1];
    saga_ulid_new(key);
    B[LINES10K] = place_req(10000, 1, 100, "cust", key);
    B[OVERFLOW] = place_req(2, INT32_MAX, INT64_C(1) << 62, "cust", key);
    B[NEGATIVE] = place_req(1, -5, -100, "cust", key);
    B[NON_UTF8] = place_req(1, 1, 100, "\xff\xfe\xc0\x80 bad", key);
    char *big = malloc(100 * 1024 + 1);
    memset(big, 'A', 100 * 1024);
    big[100 * 1024] = '\0';
    B[HUGE_STR] = place_req(1, 1, 100, big, key);
    free(big);
    B[BAD_KEY] = place_req(1, 1, 100, "cust", "key.with*wild>cards and spaces");
    B[TOO_BIG].len = 1100 * 1024; /* over nats-server's 1 MB max_payload */
    B[TOO_BIG].data = calloc(1, B[TOO_BIG].len);
}

static void free_bodies(void)
{
    for (int i = 0; i < NBODIES; i++)
        free(B[i].data);
}

/* A forged but well-formed event of type by producer for order (order.placed for
 * an order nobody placed, a charge, a clearance, a veto). */
static size_t forged_event(uint8_t *out, size_t cap, const char *type, const char *producer,
                           const char *order, char *subject, size_t scap)
{
    uint8_t payload[64], *buf = NULL;
    size_t len = 0, n = garbage(payload, sizeof(payload));
    if (tjs_encode_event(type, order, producer, payload, n, 1, &buf, &len, subject, scap, NULL) !=
            0 ||
        len > cap)
        len = 0;
    else
        memcpy(out, buf, len);
    free(buf);
    return len;
}

/* Sends body on subject; a body over max_payload is refused before it leaves. */
static void hostile_send(attacker *a, const char *subject, const char *reply, const void *body,
                         size_t len)
{
    natsStatus s = reply != NULL
                       ? natsConnection_PublishRequest(a->nc, subject, reply, body, (int)len)
                       : natsConnection_Publish(a->nc, subject, body, (int)len);
    if (s == NATS_MAX_PAYLOAD)
        a->too_big++;
    else if (s != NATS_OK && a->failed++ == 0) /* on the attacking thread: checked later */
        fprintf(stderr, "siege: publish on %s: %s %s\n", subject, natsStatus_GetText(s),
                nats_GetLastError(NULL));
}

static const char *const DENIED_TO_ALL[] = {
    "saga.ctl.payment.faults",
    "saga.ctl.inventory.faults",
    "$JS.API.STREAM.DELETE.SAGA_EVENTS",
    "$JS.API.STREAM.PURGE.SAGA_DLQ",
    "$JS.API.CONSUMER.DELETE.SAGA_EVENTS.payment_order_placed",
    "$JS.API.STREAM.MSG.DELETE.SAGA_EVENTS",
    "saga.cmd.inventory.stock.set",
    "dlq.order",
    "_saga.dlv.order_shipping_scheduled",
    /* An acknowledgement of a message delivered to another participant. */
    "$JS.ACK.SAGA_EVENTS.inventory_order_placed.1.5.5.1700000000000000000.0",
};
#define NDENIED (sizeof(DENIED_TO_ALL) / sizeof(DENIED_TO_ALL[0]))

/* Publishes outside the identity's rights: forged events of other services' types,
 * control, stream deletion, dead letters, deliveries. */
static void send_denied(attacker *a, int i)
{
    static const char *const types[][2] = {
        {"order.placed", "order"},      {"order.confirmed", "order"},
        {"payment.charged", "payment"}, {"fraud.cleared", "fraud"},
        {"fraud.vetoed", "fraud"},      {"inventory.reserved", "inventory"}};
    uint8_t buf[4096];
    char subject[256], order[SAGA_ID_LEN + 1];
    size_t len;
    if (i % 2 == 0) {
        saga_ulid_new(order);
        int t = (i / 2) % 6;
        len = forged_event(buf, sizeof(buf), types[t][0], types[t][1], order, subject,
                           sizeof(subject));
        hostile_send(a, subject, NULL, buf, len);
    } else if (i % 7 == 1) {
        hostile_send(a, DENIED_TO_ALL[i % NDENIED], NULL, "decline_rate=1 crash=in_handler", 31);
    } else {
        len = garbage(buf, sizeof(buf));
        hostile_send(a, DENIED_TO_ALL[i % NDENIED], NULL, buf, len);
    }
    a->sent_denied++;
}

/* Malformed requests where the client may ask: each must be answered, never
 * accepted. */
static void send_request(attacker *a, int i)
{
    static const char *const queries[] = {SAGA_SUBJ_ORDER_CANCEL,     "saga.q.order.order",
                                          SAGA_SUBJ_STOCK_GET,        "saga.q.inventory.order",
                                          "saga.q.inventory.stock",   "saga.q.shipping.order",
                                          "saga.q.notification.order"};
    uint8_t buf[4096];
    char reply[64];
    const void *body = buf;
    size_t len;
    int k = i % 9;
    const char *subject = k < 7 ? SAGA_SUBJ_ORDER_PLACE : queries[(i / 9) % 7];
    snprintf(reply, sizeof(reply), "_INBOX.siege.%s.%d", k < 7 ? "place" : "q", i);
    if (k < NPLACE) {
        body = B[k].data;
        len = B[k].len;
    } else if (k == 7) {
        len = (size_t)snprintf((char *)buf, sizeof(buf), "id.with*wild> cards\xff");
    } else {
        len = garbage(buf, sizeof(buf));
    }
    hostile_send(a, subject, reply, body, len);
    a->sent_requests++;
}

/* Shipping's own subjects, hostile bodies: garbage, and envelopes whose producer,
 * type or partition disagree with the subject. Each reaches the stream (a JetStream
 * publish, acknowledged) and must come back as a dead letter. */
static void send_stored(attacker *a, int i)
{
    uint8_t buf[4096];
    char subject[256], order[SAGA_ID_LEN + 1];
    size_t len;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    const char *type = i % 2 ? "shipping.scheduled" : "shipping.failed";
    saga_ulid_new(order);
    switch (i % 3) {
    case 0:
        len = garbage(buf, sizeof(buf));
        snprintf(subject, sizeof(subject), "evt.%u.%s", (unsigned)(rnd() % SAGA_PARTITIONS), type);
        break;
    case 1: /* another producer's name on shipping's type */
        len = forged_event(buf, sizeof(buf), type, "order", order, subject, sizeof(subject));
        break;
    default: /* the right producer, on another partition than its order's */
        len = forged_event(buf, sizeof(buf), type, "shipping", order, subject, sizeof(subject));
        subject[4] = subject[4] == '9' ? '8' : '9';
        if (subject[5] != '.')
            memmove(subject + 5, subject + 6, strlen(subject + 5));
        break;
    }
    if (js_Publish(&pa, a->js, subject, buf, (int)len, NULL, &jerr) == NATS_OK)
        a->stored++;
    jsPubAck_Destroy(pa);
}

static int answered(void *arg)
{
    attacker *a = arg;
    return __atomic_load_n(&a->replies, __ATOMIC_SEQ_CST) >= a->sent_requests;
}

static int violations_in(void *arg)
{
    attacker *a = arg;
    return __atomic_load_n(&a->violations, __ATOMIC_SEQ_CST) >= a->sent_denied;
}

typedef struct siege {
    attacker client, shipping;
    natsSubscription *replies;
} siege;

static void *attack(void *arg)
{
    siege *s = arg;
    for (int i = 0;
         i < REQUESTS_CLIENT || i < DENIED_CLIENT || i < DENIED_SERVICE || i < STORED_SERVICE;
         i++) {
        if (i < REQUESTS_CLIENT) {
            /* Flow control: at most IN_FLIGHT unanswered. */
            while (s->client.sent_requests - __atomic_load_n(&s->client.replies, __ATOMIC_SEQ_CST) >
                   IN_FLIGHT)
                nanosleep(&(struct timespec){0, 1000000L}, NULL);
            send_request(&s->client, i);
        }
        if (i < DENIED_CLIENT)
            send_denied(&s->client, i);
        if (i < DENIED_SERVICE)
            send_denied(&s->shipping, i);
        if (i < STORED_SERVICE)
            send_stored(&s->shipping, i);
        if (i < OVERSIZED) {
            hostile_send(&s->client, SAGA_SUBJ_ORDER_PLACE, NULL, B[TOO_BIG].data, B[TOO_BIG].len);
            hostile_send(&s->shipping, "evt.1.shipping.scheduled", NULL, B[TOO_BIG].data,
                         B[TOO_BIG].len);
        }
    }
    natsConnection_FlushTimeout(s->client.nc, 10000);
    natsConnection_FlushTimeout(s->shipping.nc, 10000);
    return NULL;
}

/* ---- the fleet's side ----------------------------------------------------------- */

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (fp != NULL)
        fclose(fp);
    return kb;
}

static int idle(void *arg)
{
    (void)arg;
    return tjs_consumers_idle(&F.t, "SAGA_EVENTS");
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_siege(void **state)
{
    static char ids[ORDERS][64];
    siege s;
    pthread_t th;
    long before[TFLEET_NSVC + 1], after[TFLEET_NSVC + 1];
    (void)state;

    make_bodies();
    assert_int_equal(tfleet_set_stock(&F, SKU, 10 * ORDERS), 0);
    for (int i = 0; i < TFLEET_NSVC; i++)
        before[i] = rss_kb(F.pid[i]);
    before[TFLEET_NSVC] = rss_kb(tsrv_pid(F.srv));
    long long dead_before = tjs_stat(&F.t, "order", "dead_lettered");
    connect_as(&s.client, "client", &s.replies);
    connect_as(&s.shipping, "shipping", NULL);
    int64_t t0 = tproc_now_ms();
    assert_int_equal(pthread_create(&th, NULL, attack, &s), 0);

    /* The real orders, as a client would place them, meanwhile: a request that
     * times out under the siege goes again with the same key. */
    for (int i = 0; i < ORDERS; i++) {
        char key[SAGA_ID_LEN + 1];
        int64_t took = 0;
        tfleet_item it = {SKU, 1, 1000 + i};
        saga_ulid_new(key);
        if (tfleet_place_retrying(&F, key, "cust-siege", &it, 1, PLACE_MS, ids[i], sizeof(ids[i]),
                                  &took) != 0)
            fail_msg("order %d (key %s) not placed within %d ms", i, key, PLACE_MS);
    }
    int64_t t_orders = tproc_now_ms() - t0;
    assert_int_equal(pthread_join(th, NULL), 0);
    int64_t t_attack = tproc_now_ms() - t0;

    /* Every hostile message accounted for. */
    int waits = tproc_wait_until(answered, &s.client, WAIT_MS) |
                tproc_wait_until(violations_in, &s.client, WAIT_MS) |
                tproc_wait_until(violations_in, &s.shipping, WAIT_MS);
    printf("  client: %d/%d violations, %d/%d replies, %d too big, %d failed; shipping: %d/%d "
           "violations, %d stored, %d too big, %d failed\n",
           s.client.violations, s.client.sent_denied, s.client.replies, s.client.sent_requests,
           s.client.too_big, s.client.failed, s.shipping.violations, s.shipping.sent_denied,
           s.shipping.stored, s.shipping.too_big, s.shipping.failed);
    assert_int_equal(waits, 0);
    assert_int_equal(s.client.failed, 0);
    assert_int_equal(s.shipping.failed, 0);
    assert_int_equal(s.client.accepted, 0);
    assert_int_equal(s.client.violations, s.client.sent_denied);
    assert_int_equal(s.shipping.violations, s.shipping.sent_denied);
    assert_int_equal(s.client.too_big, OVERSIZED);
    assert_int_equal(s.shipping.too_big, OVERSIZED);
    assert_int_equal(s.shipping.stored, STORED_SERVICE);
    assert_int_equal(tproc_wait_until(idle, NULL, WAIT_MS), 0);
    /* Each stored one dead-lettered; one delivered again (its ack late on a loaded
     * machine) is dead-lettered again: a forged event has no id to know it by. */
    long long dead = tjs_stat(&F.t, "order", "dead_lettered") - dead_before;
    printf("  order dead-lettered %lld for %d stored\n", dead, s.shipping.stored);
    assert_true(dead >= s.shipping.stored);

    /* Every real order CONFIRMED: each has its order.confirmed, and only those. */
    tjs_msg *v = NULL;
    size_t n = 0;
    assert_int_equal(tjs_collect_events(&F.t, "order.confirmed", NULL, &v, &n), 0);
    assert_int_equal(n, ORDERS);
    qsort(ids, ORDERS, sizeof(ids[0]), cmp_id);
    for (size_t i = 0; i < n; i++)
        if (bsearch(v[i].ev.order_id, ids, ORDERS, sizeof(ids[0]), cmp_id) == NULL)
            fail_msg("order.confirmed for %s, which no client placed", v[i].ev.order_id);
    free(v);

    /* Nobody crashed; memory is where it was, give or take the caches. */
    int sent = s.client.sent_denied + s.client.sent_requests + s.shipping.sent_denied +
               s.shipping.stored + 2 * OVERSIZED;
    printf("siege: %d hostile messages and %d orders in %.1f s (orders placed in %.1f s)\n", sent,
           ORDERS, (double)t_attack / 1000, (double)t_orders / 1000);
    printf("  client identity:   %d refused by the broker (permissions), %d rejected with a "
           "reply (%d requests), %d over max_payload\n",
           s.client.violations, s.client.replies, s.client.sent_requests, s.client.too_big);
    printf("  shipping identity: %d refused by the broker (permissions), %d stored and "
           "dead-lettered by order, %d over max_payload\n",
           s.shipping.violations, s.shipping.stored, s.shipping.too_big);
    printf("  %-13s %10s %10s\n", "process", "RSS before", "RSS after");
    for (int i = 0; i <= TFLEET_NSVC; i++) {
        pid_t pid = i < TFLEET_NSVC ? F.pid[i] : tsrv_pid(F.srv);
        after[i] = rss_kb(pid);
        printf("  %-13s %7ld kB %7ld kB\n", i < TFLEET_NSVC ? tfleet_names[i] : "nats-server",
               before[i], after[i]);
        if (after[i] < 0)
            fail_msg("%s is gone", i < TFLEET_NSVC ? tfleet_names[i] : "nats-server");
        if (after[i] > 4 * before[i] + 256 * 1024)
            fail_msg("%s grew from %ld to %ld kB",
                     i < TFLEET_NSVC ? tfleet_names[i] : "nats-server", before[i], after[i]);
    }
    assert_true(sent >= 20000);

    /* A failed audit shows the ends of its log. */
    int rc = tfleet_audit(&F);
    if (rc != 0)
        fail_msg("sagactl audit exited %d", rc);
    natsSubscription_Destroy(s.replies);
    disconnect(&s.client);
    disconnect(&s.shipping);
    free_bodies();
}

static int group_setup(void **state)
{
    *state = &F;
    return tfleet_start_secure(&F, SAGA_BUILD_DIR, FLEET_AUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_siege)};
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
