/* test_auth.c - Least privilege, enforced by the broker: a fleet whose every
 * connection authenticates as one of its identities (tools/fleet/secure.c, as
 * `deploy/fleet up` writes them), each allowed to publish and subscribe only
 * where docs/security.md says; and the same fleet over TLS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "events.pb-c.h"
#include "proc.h"
#include "saga/client.h"
#include "saga/saga.h"
#include "tfleet.h"

#define DEADLINE_MS 60000
#define VIOLATION_WAIT_MS 10000
/* Events published for notification while it is down (AUTH_BACKLOG): more than the
 * budget, and than the 4,096 one consumer had before the budget was shared. The
 * sanitizer run takes fewer, still more than a consumer's share. */
#define BACKLOG 4500

static tfleet F;

/* A raw client of the fleet as identity (NULL: none), counting the permission
 * violations the broker reports on its connection. */
typedef struct peer {
    natsConnection *nc;
    int violations;
} peer;

static natsStatus peer_connect(peer *p, tfleet *f, const char *identity, int with_tls)
{
    natsOptions *o = NULL;
    natsStatus s;
    memset(p, 0, sizeof(*p));
    natsOptions_Create(&o);
    fleet_set_servers(o, tsrv_url(f->srv));
    if (with_tls)
        fleet_client_options(tsrv_fleet(f->srv), identity, o);
    else if (identity != NULL) {
        char creds[600];
        fleet_creds_path(tsrv_fleet(f->srv), identity, creds, sizeof(creds));
        assert_int_equal(saga_client_secure(o, creds, NULL, NULL, NULL, NULL, 0), NATS_OK);
    }
    natsOptions_SetAllowReconnect(o, false);
    natsOptions_SetTimeout(o, 5000);
    natsOptions_SetErrorHandler(o, tjs_count_violations, &p->violations);
    s = natsConnection_Connect(&p->nc, o);
    natsOptions_Destroy(o);
    return s;
}

static void peer_close(peer *p)
{
    natsConnection_Destroy(p->nc);
    p->nc = NULL;
}

static int violations_reach(void *arg)
{
    peer *p = arg;
    return __atomic_load_n(&p->violations, __ATOMIC_SEQ_CST) >= 1;
}

/* Publishes on subject and expects the broker to refuse it as a permissions
 * violation. */
static void expect_refused(peer *p, const char *subject)
{
    __atomic_store_n(&p->violations, 0, __ATOMIC_SEQ_CST);
    assert_int_equal(natsConnection_PublishString(p->nc, subject, "{}"), NATS_OK);
    natsConnection_FlushTimeout(p->nc, 5000);
    if (tproc_wait_until(violations_reach, p, VIOLATION_WAIT_MS) != 0)
        fail_msg("the broker let this identity publish on %s", subject);
}

static int group_setup(void **state)
{
    *state = &F;
    return tfleet_start_secure(&F, SAGA_BUILD_DIR, FLEET_AUTH);
}

/* Places an order as the client identity and waits until it is CONFIRMED. */
static void place_and_confirm(tfleet *f, const char *sku)
{
    char key[SAGA_ID_LEN + 1], id[64], buf[8192];
    tfleet_item it[] = {{sku, 1, 1200}};
    assert_int_equal(tfleet_set_stock(f, sku, 5), 0);
    saga_ulid_new(key);
    Saga__V1__PlaceOrderReply *r = tfleet_place(f, key, "alice", it, 1, "DE", "EUR", 0);
    assert_non_null(r);
    assert_true(r->ok);
    snprintf(id, sizeof(id), "%s", r->order_id);
    saga__v1__place_order_reply__free_unpacked(r, NULL);
    int64_t deadline = tproc_now_ms() + DEADLINE_MS;
    while (strstr(tfleet_view(f, "order", id, buf, sizeof(buf)), "CONFIRMED") == NULL) {
        if (tproc_now_ms() > deadline)
            fail_msg("order %s not confirmed: %s", id, buf);
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
}

static void test_unauthenticated_clients_are_refused(void **state)
{
    peer p;
    char creds[600], wrong[700];
    (void)state;
    natsStatus s = peer_connect(&p, &F, NULL, 0);
    assert_int_not_equal(s, NATS_OK);
    /* A known user with a password of the wrong fleet. */
    snprintf(wrong, sizeof(wrong), "%s/wrong.creds", tsrv_dir(F.srv));
    FILE *fp = fopen(wrong, "w");
    assert_non_null(fp);
    fputs("operator:0123456789abcdef\n", fp);
    fclose(fp);
    assert_int_equal(chmod(wrong, 0600), 0);
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsOptions_Create(&o);
    fleet_set_servers(o, tsrv_url(F.srv));
    natsOptions_SetAllowReconnect(o, false);
    assert_int_equal(saga_client_secure(o, wrong, NULL, NULL, NULL, NULL, 0), NATS_OK);
    assert_int_not_equal(natsConnection_Connect(&nc, o), NATS_OK);
    natsOptions_Destroy(o);
    /* A credentials file others may read is refused before any connect. */
    fleet_creds_path(tsrv_fleet(F.srv), "client", creds, sizeof(creds));
    assert_int_equal(chmod(wrong, 0644), 0);
    char err[512] = "";
    natsOptions_Create(&o);
    assert_int_not_equal(saga_client_secure(o, wrong, NULL, NULL, NULL, err, sizeof(err)), NATS_OK);
    assert_non_null(strstr(err, "chmod 600"));
    natsOptions_Destroy(o);
}

/* What each identity may not publish: the client forges no event, changes no fault
 * plan and touches no stream; a service emits only its own event types. */
static const char *const CLIENT_REFUSED[] = {
    "evt.3.order.placed",
    "evt.3.payment.charged",
    "saga.ctl.payment.faults",
    "$JS.API.STREAM.DELETE.SAGA_EVENTS",
    "$JS.API.STREAM.PURGE.SAGA_DLQ",
    "$JS.API.CONSUMER.DELETE.SAGA_EVENTS.payment_order_placed",
    "saga.cmd.inventory.stock.set",
    "dlq.payment",
    NULL,
};
static const char *const PAYMENT_REFUSED[] = {
    "evt.3.order.placed",
    "evt.3.fraud.cleared",
    "saga.cmd.order.place",
    "saga.ctl.inventory.faults",
    "dlq.order",
    "$JS.API.STREAM.DELETE.SAGA_EVENTS",
    NULL,
};

/* Each subject on a connection of its own, as a fresh client of identity would. */
static void expect_all_refused(const char *identity, const char *const *subjects)
{
    for (size_t i = 0; subjects[i] != NULL; i++) {
        peer p;
        assert_int_equal(peer_connect(&p, &F, identity, 0), NATS_OK);
        expect_refused(&p, subjects[i]);
        peer_close(&p);
    }
}

static void test_identities_are_limited(void **state)
{
    (void)state;
    expect_all_refused("client", CLIENT_REFUSED);
    expect_all_refused("payment", PAYMENT_REFUSED);
}

/* identity asks on subject and is answered, with no permissions violation. */
static void expect_answered(const char *identity, const char *subject, const char *data)
{
    peer p;
    natsMsg *reply = NULL;
    assert_int_equal(peer_connect(&p, &F, identity, 0), NATS_OK);
    assert_int_equal(natsConnection_RequestString(&reply, p.nc, subject, data, 10000), NATS_OK);
    natsMsg_Destroy(reply);
    natsConnection_FlushTimeout(p.nc, 2000);
    assert_int_equal(__atomic_load_n(&p.violations, __ATOMIC_SEQ_CST), 0);
    peer_close(&p);
}

/* The client identity places orders and asks. */
static void test_client_identity_asks(void **state)
{
    (void)state;
    expect_answered("client", "saga.cmd.inventory.stock.get", "NOSUCH");
}

/* The operator may do what it needs: read and change a fault plan. */
static void test_operator_can(void **state)
{
    (void)state;
    expect_answered("operator", "saga.ctl.payment.faults", "");
}

/* Fails if the broker refused anything to a service (its connection is named after
 * it): the permissions must cover all the runtime does. */
static void assert_services_never_refused(tfleet *f)
{
    char path[600], line[4096];
    snprintf(path, sizeof(path), "%s/logs/nats.log", tsrv_dir(f->srv));
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, "Violation") == NULL)
            continue;
        for (int i = 0; i < TFLEET_NSVC; i++) {
            char conn[64];
            snprintf(conn, sizeof(conn), ":C:%s\"", tfleet_names[i]);
            if (strstr(line, conn) != NULL)
                fail_msg("the broker refused a service: %s", line);
        }
    }
    fclose(fp);
}

/* With all that in place, orders complete, the audit is clean and no service was
 * refused anything it does. */
static void test_orders_complete(void **state)
{
    (void)state;
    place_and_confirm(&F, "AU1");
    assert_int_equal(tfleet_audit(&F), 0);
    assert_services_never_refused(&F);
}

/* The most unacknowledged deliveries notification's consumers held at once, as
 * backlog_drained saw them. */
typedef struct backlog_watch {
    long long max_ack_pending; /* the most seen at once */
    int consumers;
} backlog_watch;

/* 1 once nothing is left for notification (every message delivered and
 * acknowledged); notes what its consumers hold unacknowledged meanwhile. */
static int backlog_drained(void *arg)
{
    backlog_watch *w = arg;
    jsConsumerInfoList *list = NULL;
    long long ack_pending = 0, left = 0;
    if (js_Consumers(&list, F.t.js, SAGA_STREAM_EVENTS, NULL, NULL) != NATS_OK)
        return 0;
    w->consumers = 0;
    for (int i = 0; i < list->Count; i++) {
        const jsConsumerInfo *ci = list->List[i];
        if (strncmp(ci->Name, "notification_", 13) != 0)
            continue;
        w->consumers++;
        ack_pending += (long long)ci->NumAckPending;
        left += (long long)ci->NumPending + (long long)ci->NumAckPending;
    }
    jsConsumerInfoList_Destroy(list);
    if (ack_pending > w->max_ack_pending)
        w->max_ack_pending = ack_pending;
    return w->consumers > 0 && left == 0;
}

/* A participant back from an outage with a backlog holds at most
 * SAGA_MAX_ACK_PENDING unacknowledged deliveries over all its consumers: past 4,096,
 * nats-server 2.9 walks all of them at every delivery to an identity with
 * allow_responses, which slowed a service's catch-up and cost the broker CPU
 * (docs/security.md has the figures). */
static void test_backlog_within_ack_budget(void **state)
{
    static Saga__V1__PaymentRefunded pr = SAGA__V1__PAYMENT_REFUNDED__INIT;
    uint8_t payload[128];
    backlog_watch w = {0, 0};
    int n = tfleet_index("notification");
    long backlog = tproc_env_long("AUTH_BACKLOG", BACKLOG);
    (void)state;

    /* payment.refunded: notification's alone among the fleet's consumers. */
    pr.customer_id = "backlog";
    pr.amount_cents = 100;
    pr.currency = "EUR";
    size_t len = saga__v1__payment_refunded__pack(&pr, payload);
    assert_int_equal(tfleet_kill_service(&F, n), 0);
    int64_t t0 = tproc_now_ms();
    for (long i = 0; i < backlog; i++) {
        char order[32];
        snprintf(order, sizeof(order), "backlog-%ld", i);
        assert_int_equal(
            tjs_publish_payload(&F.t, "payment.refunded", order, "payment", payload, len, NULL), 0);
    }
    /* The test fleet's ack wait (2 s) is shorter than a slow build takes to work
     * through a full window: redeliveries would multiply its work. */
    const char *const slow_ack[] = {"SAGA_ACK_WAIT_MS=120000", NULL};
    F.svc_env[n] = slow_ack;
    int started = tfleet_start_service(&F, n);
    F.svc_env[n] = NULL;
    assert_int_equal(started, 0);
    int64_t t1 = tproc_now_ms();
    assert_int_equal(tproc_wait_until(backlog_drained, &w, DEADLINE_MS * 3), 0);
    printf("notification: %d consumers, at most %lld unacknowledged deliveries while it caught up "
           "on %ld events (published in %.1f s, caught up in %.1f s)\n",
           w.consumers, w.max_ack_pending, backlog, (double)(t1 - t0) / 1000,
           (double)(tproc_now_ms() - t1) / 1000);
    assert_true(w.max_ack_pending > 0);
    assert_true(w.max_ack_pending <= SAGA_DEFAULT_MAX_ACK_PENDING);
    assert_services_never_refused(&F);
}

/* The same fleet over TLS: orders complete; a client that does not know the fleet's
 * CA cannot verify the server and gets nowhere. */
static void test_tls_fleet(void **state)
{
    tfleet T;
    peer p;
    (void)state;
    assert_int_equal(tfleet_start_secure(&T, SAGA_BUILD_DIR, FLEET_AUTH | FLEET_TLS), 0);
    assert_non_null(strstr(tsrv_url(T.srv), "tls://"));
    place_and_confirm(&T, "TL1");
    assert_services_never_refused(&T);
    assert_int_not_equal(peer_connect(&p, &T, "client", 0), NATS_OK); /* no CA */
    assert_int_equal(peer_connect(&p, &T, "client", 1), NATS_OK);
    peer_close(&p);
    assert_int_equal(tfleet_stop(&T), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unauthenticated_clients_are_refused),
        cmocka_unit_test(test_identities_are_limited),
        cmocka_unit_test(test_client_identity_asks),
        cmocka_unit_test(test_operator_can),
        cmocka_unit_test(test_orders_complete),
        cmocka_unit_test(test_backlog_within_ack_budget),
        cmocka_unit_test(test_tls_fleet),
    };
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
