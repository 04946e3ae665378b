/* test_saga.c - The order saga end to end: five real service processes, a real
 * nats-server, one test per outcome of SPEC.md, each checked in every service,
 * in the mail spool, and by `sagactl audit`. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "commands.pb-c.h"
#include "natsrv.h"
#include "proc.h"
#include "tjs.h"

#define DEADLINE_MS 60000
#define NSVC 5

static const char *const svc_names[NSVC] = {"order", "payment", "inventory", "shipping",
                                            "notification"};
static const char *const svc_bins[NSVC] = {SAGA_BIN_ORDER, SAGA_BIN_PAYMENT, SAGA_BIN_INVENTORY,
                                           SAGA_BIN_SHIPPING, SAGA_BIN_NOTIFICATION};

typedef struct fleet {
    tsrv *srv;
    tjs t;
    pid_t pid[NSVC];
    char mail[512];
} fleet;

static fleet F;

static int svc_index(const char *name)
{
    for (int i = 0; i < NSVC; i++)
        if (strcmp(svc_names[i], name) == 0)
            return i;
    return -1;
}

typedef struct ready_arg {
    const char *name;
} ready_arg;

static int is_ready(void *arg)
{
    return tjs_stat(&F.t, ((ready_arg *)arg)->name, "commits") >= 0;
}

static int start_one(int i)
{
    char url[128], dir[600], spool[600], log[600];
    snprintf(url, sizeof(url), "SAGA_NATS_URL=%s", tsrv_url(F.srv));
    snprintf(dir, sizeof(dir), "SAGA_DATA_DIR=%s/data/%s", tsrv_dir(F.srv), svc_names[i]);
    snprintf(spool, sizeof(spool), "NOTIF_SPOOL_DIR=%s", F.mail);
    snprintf(log, sizeof(log), "%s/%s.log", tsrv_dir(F.srv), svc_names[i]);
    const char *env[] = {url,
                         dir,
                         spool,
                         "SAGA_ACK_WAIT_MS=2000",
                         "SAGA_RETRY_BASE_MS=50",
                         "ORDER_DEADLINE_MS=30000",
                         NULL};
    const char *argv[] = {svc_bins[i], NULL};
    F.pid[i] = tproc_spawn(argv, env, log);
    if (F.pid[i] <= 0)
        return -1;
    ready_arg a = {svc_names[i]};
    return tproc_wait_until(is_ready, &a, DEADLINE_MS);
}

static int group_setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    if (tsrv_start(&F.srv) != 0)
        return -1;
    snprintf(F.mail, sizeof(F.mail), "%s/mail", tsrv_dir(F.srv));
    if (tjs_connect(&F.t, tsrv_url(F.srv)) != 0)
        return -1;
    for (int i = 0; i < NSVC; i++)
        if (start_one(i) != 0)
            return -1;
    return 0;
}

static int group_teardown(void **state)
{
    int clean = 1;
    (void)state;
    for (int i = 0; i < NSVC; i++)
        if (F.pid[i] > 0 && tproc_term(F.pid[i], 30000) != 0)
            clean = 0;
    tjs_close(&F.t);
    tsrv_destroy(F.srv);
    return clean ? 0 : -1; /* every service stops cleanly on SIGTERM */
}

/* ---- commands and queries ---- */

static natsMsg *request(const char *subject, const void *data, size_t len)
{
    natsMsg *reply = NULL;
    if (natsConnection_Request(&reply, F.t.nc, subject, data, (int)len, 10000) != NATS_OK)
        return NULL;
    return reply;
}

typedef struct item {
    const char *sku;
    int qty;
    long long unit_cents;
} item;

/* Places an order; returns the reply (caller frees) or NULL. */
static Saga__V1__PlaceOrderReply *place_full(const char *key, const char *customer,
                                             const item *items, int nitems, const char *ship_to,
                                             const char *currency, long long deadline_ms)
{
    Saga__V1__PlaceOrder req = SAGA__V1__PLACE_ORDER__INIT;
    Saga__V1__LineItem li[8], *lp[8];
    for (int i = 0; i < nitems; i++) {
        saga__v1__line_item__init(&li[i]);
        li[i].sku = (char *)items[i].sku;
        li[i].quantity = items[i].qty;
        li[i].unit_cents = items[i].unit_cents;
        lp[i] = &li[i];
    }
    req.idempotency_key = (char *)key;
    req.customer_id = (char *)customer;
    req.items = lp;
    req.n_items = (size_t)nitems;
    req.ship_to = (char *)ship_to;
    req.currency = (char *)currency;
    req.deadline_ms = deadline_ms;
    uint8_t buf[4096];
    size_t len = saga__v1__place_order__pack(&req, buf);
    natsMsg *m = request("saga.cmd.order.place", buf, len);
    if (m == NULL)
        return NULL;
    Saga__V1__PlaceOrderReply *r = saga__v1__place_order_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    return r;
}

/* Places a valid order and returns its id in out. */
static void place(char out[64], const char *customer, const item *items, int nitems,
                  const char *ship_to, long long deadline_ms)
{
    char key[64];
    saga_ulid_new(key);
    Saga__V1__PlaceOrderReply *r =
        place_full(key, customer, items, nitems, ship_to, "EUR", deadline_ms);
    assert_non_null(r);
    if (!r->ok)
        fail_msg("place refused: %s", r->error);
    snprintf(out, 64, "%s", r->order_id);
    saga__v1__place_order_reply__free_unpacked(r, NULL);
}

static Saga__V1__CommandReply *cancel(const char *order_id)
{
    Saga__V1__CancelOrder req = SAGA__V1__CANCEL_ORDER__INIT;
    uint8_t buf[512];
    req.order_id = (char *)order_id;
    size_t len = saga__v1__cancel_order__pack(&req, buf);
    natsMsg *m = request("saga.cmd.order.cancel", buf, len);
    if (m == NULL)
        return NULL;
    Saga__V1__CommandReply *r = saga__v1__command_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    return r;
}

static void set_stock(const char *sku, long long qty)
{
    Saga__V1__SetStock req = SAGA__V1__SET_STOCK__INIT;
    uint8_t buf[256];
    req.sku = (char *)sku;
    req.quantity = qty;
    size_t len = saga__v1__set_stock__pack(&req, buf);
    natsMsg *m = request("saga.cmd.inventory.stock.set", buf, len);
    assert_non_null(m);
    Saga__V1__StockReply *r = saga__v1__stock_reply__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                            (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    assert_non_null(r);
    assert_true(r->ok);
    saga__v1__stock_reply__free_unpacked(r, NULL);
}

static void get_stock(const char *sku, long long *avail, long long *held, long long *committed)
{
    Saga__V1__GetStock req = SAGA__V1__GET_STOCK__INIT;
    uint8_t buf[256];
    req.sku = (char *)sku;
    size_t len = saga__v1__get_stock__pack(&req, buf);
    natsMsg *m = request("saga.cmd.inventory.stock.get", buf, len);
    assert_non_null(m);
    Saga__V1__StockReply *r = saga__v1__stock_reply__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                            (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    assert_non_null(r);
    *avail = r->available;
    *held = r->held;
    *committed = r->committed;
    saga__v1__stock_reply__free_unpacked(r, NULL);
}

/* A service's JSON view of an order, into buf; "" when it does not answer. */
static const char *view(const char *svc, const char *order_id, char *buf, size_t cap)
{
    char subject[128];
    snprintf(subject, sizeof(subject), "saga.q.%s.order", svc);
    natsMsg *m = NULL;
    buf[0] = '\0';
    if (natsConnection_Request(&m, F.t.nc, subject, order_id, (int)strlen(order_id), 5000) ==
        NATS_OK) {
        snprintf(buf, cap, "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
        natsMsg_Destroy(m);
    }
    return buf;
}

typedef struct view_cond {
    const char *svc, *order_id, *needle, *alt;
} view_cond;

static int view_has(void *arg)
{
    view_cond *c = arg;
    char buf[8192];
    view(c->svc, c->order_id, buf, sizeof(buf));
    return strstr(buf, c->needle) != NULL || (c->alt != NULL && strstr(buf, c->alt) != NULL);
}

/* Waits until the service's view shows needle, or alt when alt is not NULL. */
static void wait_view_any(const char *svc, const char *order_id, const char *needle,
                          const char *alt)
{
    view_cond c = {svc, order_id, needle, alt};
    if (tproc_wait_until(view_has, &c, DEADLINE_MS) != 0) {
        char buf[8192];
        fail_msg("%s view of %s lacks %s: %s", svc, order_id, needle,
                 view(svc, order_id, buf, sizeof(buf)));
    }
}

static void wait_view(const char *svc, const char *order_id, const char *needle)
{
    wait_view_any(svc, order_id, needle, NULL);
}

static void expect_view(const char *svc, const char *order_id, const char *needle)
{
    char buf[8192];
    if (strstr(view(svc, order_id, buf, sizeof(buf)), needle) == NULL)
        fail_msg("%s view of %s lacks %s: %s", svc, order_id, needle, buf);
}

static int spool_has(const char *order_id, const char *kind)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.%s.txt", F.mail, order_id, kind);
    FILE *f = fopen(path, "r");
    if (f != NULL)
        fclose(f);
    return f != NULL;
}

/* Number of spool files of an order, whatever their kind. */
static int spool_count(const char *order_id)
{
    DIR *d = opendir(F.mail);
    int n = 0;
    size_t len = strlen(order_id);
    if (d == NULL)
        return 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        if (strncmp(e->d_name, order_id, len) == 0 && e->d_name[len] == '.')
            n++;
    closedir(d);
    return n;
}

typedef struct spool_cond {
    const char *order_id;
    int want;
} spool_cond;

static int spool_reached(void *arg)
{
    spool_cond *c = arg;
    return spool_count(c->order_id) >= c->want;
}

static void wait_spool(const char *order_id, int want)
{
    spool_cond c = {order_id, want};
    assert_int_equal(tproc_wait_until(spool_reached, &c, DEADLINE_MS), 0);
}

/* Runs `sagactl audit` against the fleet; every invariant must hold. */
static void audit(void)
{
    char url[160], spool[600], log[600];
    int status = 0;
    snprintf(url, sizeof(url), "--url=%s", tsrv_url(F.srv));
    snprintf(spool, sizeof(spool), "--spool=%s", F.mail);
    snprintf(log, sizeof(log), "%s/audit.log", tsrv_dir(F.srv));
    const char *argv[] = {SAGA_BIN_SAGACTL, url, "audit", spool, NULL};
    pid_t p = tproc_spawn(argv, NULL, log);
    assert_true(p > 0);
    assert_int_equal(tproc_wait(p, 120000, &status), 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "cat %s >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no audit log)\n");
        fail_msg("sagactl audit found violations");
    }
}

/* ---- outcomes ---- */

static void test_1_happy_path(void **state)
{
    char id[64];
    long long a, h, c;
    (void)state;
    set_stock("HAPPY", 10);
    place(id, "alice", (item[]){{"HAPPY", 2, 1500}}, 1, "DE", 0);
    wait_view("order", id, "\"state\":\"CONFIRMED\"");
    wait_view("inventory", id, "\"state\":\"committed\"");
    expect_view("payment", id, "\"state\":\"charged\"");
    expect_view("payment", id, "\"charged_cents\":3000");
    expect_view("shipping", id, "\"state\":\"scheduled\"");
    wait_spool(id, 1);
    assert_true(spool_has(id, "confirmed"));
    get_stock("HAPPY", &a, &h, &c);
    assert_int_equal(a, 8);
    assert_int_equal(h, 0);
    assert_int_equal(c, 2);
    audit();
}

static void test_2_payment_declined(void **state)
{
    char id[64];
    long long a, h, c;
    (void)state;
    set_stock("DECL", 10);
    place(id, "bob", (item[]){{"DECL", 1, 150000}}, 1, "DE", 0); /* over the 1,000.00 limit */
    wait_view("order", id, "\"reason\":\"payment_declined\"");
    expect_view("order", id, "\"state\":\"CANCELLED\"");
    expect_view("payment", id, "\"state\":\"declined\"");
    wait_spool(id, 1);
    assert_true(spool_has(id, "cancelled"));
    /* Inventory either never reserved (tombstone) or released: nothing held. */
    wait_view_any("inventory", id, "\"state\":\"released\"", "\"tombstone\":true");
    get_stock("DECL", &a, &h, &c);
    assert_int_equal(a, 10);
    assert_int_equal(h, 0);
    expect_view("shipping", id, "\"state\":\"none\"");
    audit();
}

static void test_3_out_of_stock(void **state)
{
    char id[64];
    long long a, h, c;
    (void)state;
    set_stock("SCARCE", 1);
    place(id, "carol", (item[]){{"SCARCE", 5, 100}}, 1, "DE", 0);
    wait_view("order", id, "\"reason\":\"out_of_stock\"");
    expect_view("inventory", id, "\"state\":\"rejected\"");
    /* Charged then refunded, or never charged. */
    wait_view_any("payment", id, "\"state\":\"refunded\"", "\"tombstone\":true");
    char buf[4096];
    view("payment", id, buf, sizeof(buf));
    if (strstr(buf, "\"state\":\"refunded\"") != NULL) {
        wait_spool(id, 2);
        assert_true(spool_has(id, "refund"));
    } else {
        assert_non_null(strstr(buf, "\"charged_cents\":0"));
        wait_spool(id, 1);
    }
    assert_true(spool_has(id, "cancelled"));
    get_stock("SCARCE", &a, &h, &c);
    assert_int_equal(a, 1);
    assert_int_equal(h, 0);
    audit();
}

static void test_4_shipping_fails(void **state)
{
    char id[64];
    long long a, h, c;
    (void)state;
    set_stock("FARAWAY", 3);
    place(id, "dave", (item[]){{"FARAWAY", 1, 700}}, 1, "ZZ", 0);
    wait_view("order", id, "\"reason\":\"shipping_failed\"");
    expect_view("shipping", id, "\"state\":\"failed\"");
    wait_view("payment", id, "\"state\":\"refunded\"");
    wait_view("inventory", id, "\"state\":\"released\"");
    wait_spool(id, 2);
    assert_true(spool_has(id, "cancelled"));
    assert_true(spool_has(id, "refund"));
    get_stock("FARAWAY", &a, &h, &c);
    assert_int_equal(a, 3);
    assert_int_equal(h, 0);
    audit();
}

static void test_5_customer_cancels_before_confirmation(void **state)
{
    char id[64];
    long long a, h, c;
    int sh = svc_index("shipping");
    (void)state;
    set_stock("CHANGE", 4);
    assert_int_equal(tproc_kill(F.pid[sh]), 0); /* shipping is down: nothing confirms */
    F.pid[sh] = -1;
    place(id, "erin", (item[]){{"CHANGE", 1, 900}}, 1, "DE", 0);
    wait_view("payment", id, "\"state\":\"charged\"");
    wait_view("inventory", id, "\"state\":\"reserved\"");
    Saga__V1__CommandReply *r = cancel(id);
    assert_non_null(r);
    assert_true(r->ok);
    saga__v1__command_reply__free_unpacked(r, NULL);
    assert_int_equal(start_one(sh), 0);
    wait_view("order", id, "\"reason\":\"customer\"");
    wait_view("payment", id, "\"state\":\"refunded\"");
    wait_view("inventory", id, "\"state\":\"released\"");
    wait_spool(id, 2);
    assert_true(spool_has(id, "cancelled"));
    assert_true(spool_has(id, "refund"));
    /* Shipping saw both steps and the cancellation, in some order: either it
     * never scheduled (tombstone) or it scheduled and cancelled at once. */
    wait_view_any("shipping", id, "\"tombstone\":true", "\"state\":\"cancelled\"");
    get_stock("CHANGE", &a, &h, &c);
    assert_int_equal(a, 4);
    assert_int_equal(h, 0);
    audit();
}

static void test_6_deadline_passes_while_payment_is_down(void **state)
{
    char id[64];
    long long a, h, c;
    int pay = svc_index("payment");
    (void)state;
    set_stock("SLOW", 2);
    assert_int_equal(tproc_kill(F.pid[pay]), 0);
    F.pid[pay] = -1;
    place(id, "frank", (item[]){{"SLOW", 1, 500}}, 1, "DE", 1500);
    wait_view("order", id, "\"reason\":\"timeout\"");
    wait_view("inventory", id, "\"state\":\"released\"");
    assert_int_equal(start_one(pay), 0);
    /* Back, payment either never charges (tombstone) or charges and refunds. */
    wait_view_any("payment", id, "\"tombstone\":true", "\"state\":\"refunded\"");
    char buf[4096];
    if (strstr(view("payment", id, buf, sizeof(buf)), "\"state\":\"refunded\"") != NULL) {
        wait_spool(id, 2);
        assert_true(spool_has(id, "refund"));
    }
    wait_spool(id, 1);
    assert_true(spool_has(id, "cancelled"));
    get_stock("SLOW", &a, &h, &c);
    assert_int_equal(a, 2);
    assert_int_equal(h, 0);
    expect_view("shipping", id, "\"state\":\"none\"");
    audit();
}

static void test_7_cancel_after_confirmation_is_refused(void **state)
{
    char id[64];
    (void)state;
    set_stock("LATE", 5);
    place(id, "grace", (item[]){{"LATE", 1, 100}}, 1, "DE", 0);
    wait_view("order", id, "\"state\":\"CONFIRMED\"");
    Saga__V1__CommandReply *r = cancel(id);
    assert_non_null(r);
    assert_false(r->ok);
    assert_non_null(strstr(r->error, "confirmed"));
    saga__v1__command_reply__free_unpacked(r, NULL);
    expect_view("order", id, "\"state\":\"CONFIRMED\"");
    audit();
}

static void test_idempotency_key_gives_one_order(void **state)
{
    (void)state;
    set_stock("IDEM", 10);
    item it[] = {{"IDEM", 1, 100}};
    Saga__V1__PlaceOrderReply *a = place_full("key-42", "heidi", it, 1, "DE", "EUR", 0);
    Saga__V1__PlaceOrderReply *b = place_full("key-42", "heidi", it, 1, "DE", "EUR", 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a->ok && b->ok);
    assert_string_equal(a->order_id, b->order_id);
    assert_false(a->duplicate);
    assert_true(b->duplicate);
    wait_view("order", a->order_id, "\"state\":\"CONFIRMED\"");
    long long av, h, c;
    get_stock("IDEM", &av, &h, &c);
    assert_int_equal(c, 1); /* one order, one unit */
    saga__v1__place_order_reply__free_unpacked(a, NULL);
    saga__v1__place_order_reply__free_unpacked(b, NULL);
}

static void expect_refused(const char *key, const item *items, int n, const char *ship_to,
                           const char *currency, const char *why)
{
    Saga__V1__PlaceOrderReply *r = place_full(key, "ivan", items, n, ship_to, currency, 0);
    assert_non_null(r);
    if (r->ok)
        fail_msg("accepted an order that should be refused (%s)", why);
    assert_true(r->error != NULL && strlen(r->error) > 0);
    assert_true(r->order_id == NULL || r->order_id[0] == '\0');
    saga__v1__place_order_reply__free_unpacked(r, NULL);
}

static void test_bad_commands_get_clear_errors_and_create_nothing(void **state)
{
    (void)state;
    size_t before = 0, after = 0;
    tjs_msg *v = NULL;
    assert_int_equal(tjs_collect(&F.t, "SAGA_EVENTS", "evt.order.placed.>", &v, &before), 0);
    free(v);
    expect_refused("bad-1", NULL, 0, "DE", "EUR", "no items");
    expect_refused("bad-2", (item[]){{"A", 0, 100}}, 1, "DE", "EUR", "quantity 0");
    expect_refused("bad-3", (item[]){{"A", -2, 100}}, 1, "DE", "EUR", "negative quantity");
    expect_refused("bad-4", (item[]){{"A", 1, 100}}, 1, "DE", "XYZ", "unknown currency");
    expect_refused("bad-5", (item[]){{"A b", 1, 100}}, 1, "DE", "EUR", "bad sku");
    /* Not a protobuf at all, and an oversized request. */
    natsMsg *m = request("saga.cmd.order.place", "\xff\xff\xff", 3);
    assert_non_null(m);
    natsMsg_Destroy(m);
    static char big[70000];
    memset(big, 'x', sizeof(big));
    m = request("saga.cmd.order.place", big, sizeof(big));
    assert_non_null(m);
    natsMsg_Destroy(m);
    Saga__V1__CommandReply *r = cancel("NOSUCHORDER");
    assert_non_null(r);
    assert_false(r->ok);
    saga__v1__command_reply__free_unpacked(r, NULL);
    assert_int_equal(tjs_collect(&F.t, "SAGA_EVENTS", "evt.order.placed.>", &v, &after), 0);
    free(v);
    assert_int_equal(before, after);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1_happy_path),
        cmocka_unit_test(test_2_payment_declined),
        cmocka_unit_test(test_3_out_of_stock),
        cmocka_unit_test(test_4_shipping_fails),
        cmocka_unit_test(test_5_customer_cancels_before_confirmation),
        cmocka_unit_test(test_6_deadline_passes_while_payment_is_down),
        cmocka_unit_test(test_7_cancel_after_confirmation_is_refused),
        cmocka_unit_test(test_idempotency_key_gives_one_order),
        cmocka_unit_test(test_bad_commands_get_clear_errors_and_create_nothing),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    nats_Close();
    return rc;
}
