/* test_saga.c - The order saga end to end: five real service processes, a real
 * nats-server, one test per outcome of SPEC.md, each checked in every service,
 * in the mail spool, and by `sagactl audit`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <lmdb.h>

#include "proc.h"
#include "tfleet.h"

#define DEADLINE_MS 60000

static tfleet F;

typedef tfleet_item item;

static int group_setup(void **state)
{
    static const char *const env[] = {"ORDER_DEADLINE_MS=30000", NULL};
    *state = &F;
    return tfleet_start(&F, SAGA_BUILD_DIR, env);
}

static Saga__V1__PlaceOrderReply *place_full(const char *key, const char *customer,
                                             const item *items, int nitems, const char *ship_to,
                                             const char *currency, long long deadline_ms)
{
    return tfleet_place(&F, key, customer, items, nitems, ship_to, currency, deadline_ms);
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

static natsMsg *request(const char *subject, const void *data, size_t len)
{
    natsMsg *reply = NULL;
    if (natsConnection_Request(&reply, F.t.nc, subject, data, (int)len, 10000) != NATS_OK)
        return NULL;
    return reply;
}

static Saga__V1__CommandReply *cancel(const char *order_id)
{
    return tfleet_cancel(&F, order_id);
}

static void set_stock(const char *sku, long long qty)
{
    assert_int_equal(tfleet_set_stock(&F, sku, qty), 0);
}

/* Sets sku's stock to stock, then places one line of it for customer. */
static void stock_and_place(char id[64], const char *sku, long long stock, const char *customer,
                            long long qty, long long price_cents, const char *ship_to,
                            long long deadline_ms)
{
    set_stock(sku, stock);
    place(id, customer, (item[]){{sku, qty, price_cents}}, 1, ship_to, deadline_ms);
}

#define ANY_COMMITTED (-1)

/* sku's stock must read avail and held, and committed unless ANY_COMMITTED. */
static void expect_stock(const char *sku, long long avail, long long held, long long committed)
{
    long long a, h, c;
    assert_int_equal(tfleet_get_stock(&F, sku, &a, &h, &c), 0);
    assert_int_equal(a, avail);
    assert_int_equal(h, held);
    if (committed != ANY_COMMITTED)
        assert_int_equal(c, committed);
}

static const char *view(const char *svc, const char *order_id, char *buf, size_t cap)
{
    return tfleet_view(&F, svc, order_id, buf, cap);
}

/* Waits until the service's view shows needle, or alt when alt is not NULL. */
static void wait_view_any(const char *svc, const char *order_id, const char *needle,
                          const char *alt)
{
    assert_true(tfleet_wait_view(&F, svc, order_id, needle, alt, DEADLINE_MS));
}

static void wait_view(const char *svc, const char *order_id, const char *needle)
{
    wait_view_any(svc, order_id, needle, NULL);
}

static void expect_view(const char *svc, const char *order_id, const char *needle)
{
    assert_true(tfleet_view_shows(&F, svc, order_id, needle));
}

static int spool_has(const char *order_id, const char *kind)
{
    return tfleet_spool_has(&F, order_id, kind);
}

typedef struct spool_cond {
    const char *order_id;
    int want;
} spool_cond;

static int spool_reached(void *arg)
{
    spool_cond *c = arg;
    return tfleet_spool_count(&F, c->order_id) >= c->want;
}

static void wait_spool(const char *order_id, int want)
{
    spool_cond c = {order_id, want};
    assert_int_equal(tproc_wait_until(spool_reached, &c, DEADLINE_MS), 0);
}

/* Waits for one mail per kind named (a NULL-terminated list) and checks
 * that a mail of each kind is there. */
static void expect_mail(const char *order_id, const char *kind, ...)
{
    const char *kinds[8];
    int n = 0;
    va_list ap;
    va_start(ap, kind);
    for (const char *k = kind; k != NULL && n < 8; k = va_arg(ap, const char *))
        kinds[n++] = k;
    va_end(ap);
    wait_spool(order_id, n);
    for (int i = 0; i < n; i++)
        if (!spool_has(order_id, kinds[i]))
            fail_msg("no %s mail for %s", kinds[i], order_id);
}

/* A cancelled order's mail: when payment's view shows it refunded, a refund
 * mail besides the cancellation; otherwise it was never charged, and the
 * cancellation comes alone. */
static void expect_cancel_mail(const char *order_id)
{
    char buf[4096];
    if (strstr(view("payment", order_id, buf, sizeof(buf)), "\"state\":\"refunded\"") != NULL) {
        expect_mail(order_id, "cancelled", "refund", NULL);
    } else {
        assert_non_null(strstr(buf, "\"charged_cents\":0"));
        expect_mail(order_id, "cancelled", NULL);
    }
}

/* Runs `sagactl audit` against the fleet; every invariant must hold. */
static void audit(void)
{
    assert_int_equal(tfleet_audit(&F), 0);
}

/* ---- outcomes ---- */

static void test_1_happy_path(void **state)
{
    char id[64];
    (void)state;
    stock_and_place(id, "HAPPY", 10, "alice", 2, 1500, "DE", 0);
    wait_view("order", id, "\"state\":\"CONFIRMED\"");
    wait_view("inventory", id, "\"state\":\"committed\"");
    expect_view("payment", id, "\"state\":\"charged\"");
    expect_view("payment", id, "\"charged_cents\":3000");
    expect_view("shipping", id, "\"state\":\"scheduled\"");
    expect_mail(id, "confirmed", NULL);
    expect_stock("HAPPY", 8, 0, 2);
    audit();
}

static void test_2_payment_declined(void **state)
{
    char id[64];
    (void)state;
    /* Over the 1,000.00 limit. */
    stock_and_place(id, "DECL", 10, "bob", 1, 150000, "DE", 0);
    wait_view("order", id, "\"reason\":\"payment_declined\"");
    expect_view("order", id, "\"state\":\"CANCELLED\"");
    expect_view("payment", id, "\"state\":\"declined\"");
    expect_mail(id, "cancelled", NULL);
    /* Inventory either never reserved (tombstone) or released: nothing held. */
    wait_view_any("inventory", id, "\"state\":\"released\"", "\"tombstone\":true");
    expect_stock("DECL", 10, 0, ANY_COMMITTED);
    expect_view("shipping", id, "\"state\":\"none\"");
    audit();
}

static void test_3_out_of_stock(void **state)
{
    char id[64];
    (void)state;
    stock_and_place(id, "SCARCE", 1, "carol", 5, 100, "DE", 0);
    wait_view("order", id, "\"reason\":\"out_of_stock\"");
    expect_view("inventory", id, "\"state\":\"rejected\"");
    /* Charged then refunded, or never charged. */
    wait_view_any("payment", id, "\"state\":\"refunded\"", "\"tombstone\":true");
    expect_cancel_mail(id);
    expect_stock("SCARCE", 1, 0, ANY_COMMITTED);
    audit();
}

static void test_4_shipping_fails(void **state)
{
    char id[64];
    (void)state;
    stock_and_place(id, "FARAWAY", 3, "dave", 1, 700, "ZZ", 0);
    wait_view("order", id, "\"reason\":\"shipping_failed\"");
    expect_view("shipping", id, "\"state\":\"failed\"");
    wait_view("payment", id, "\"state\":\"refunded\"");
    wait_view("inventory", id, "\"state\":\"released\"");
    expect_mail(id, "cancelled", "refund", NULL);
    expect_stock("FARAWAY", 3, 0, ANY_COMMITTED);
    audit();
}

static void test_5_customer_cancels_before_confirmation(void **state)
{
    char id[64];
    int sh = tfleet_index("shipping");
    (void)state;
    assert_int_equal(tfleet_kill_service(&F, sh), 0); /* shipping is down: nothing confirms */
    stock_and_place(id, "CHANGE", 4, "erin", 1, 900, "DE", 0);
    wait_view("payment", id, "\"state\":\"charged\"");
    wait_view("inventory", id, "\"state\":\"reserved\"");
    Saga__V1__CommandReply *r = cancel(id);
    assert_non_null(r);
    assert_true(r->ok);
    saga__v1__command_reply__free_unpacked(r, NULL);
    assert_int_equal(tfleet_start_service(&F, sh), 0);
    wait_view("order", id, "\"reason\":\"customer\"");
    wait_view("payment", id, "\"state\":\"refunded\"");
    wait_view("inventory", id, "\"state\":\"released\"");
    expect_mail(id, "cancelled", "refund", NULL);
    /* Shipping saw both steps and the cancellation, in some order: either it
     * never scheduled (tombstone) or it scheduled and cancelled at once. */
    wait_view_any("shipping", id, "\"tombstone\":true", "\"state\":\"cancelled\"");
    expect_stock("CHANGE", 4, 0, ANY_COMMITTED);
    audit();
}

static void test_6_deadline_passes_while_payment_is_down(void **state)
{
    char id[64];
    int pay = tfleet_index("payment");
    (void)state;
    assert_int_equal(tfleet_kill_service(&F, pay), 0);
    stock_and_place(id, "SLOW", 2, "frank", 1, 500, "DE", 1500);
    wait_view("order", id, "\"reason\":\"timeout\"");
    wait_view("inventory", id, "\"state\":\"released\"");
    assert_int_equal(tfleet_start_service(&F, pay), 0);
    /* Back, payment either never charges (tombstone) or charges and refunds. */
    wait_view_any("payment", id, "\"tombstone\":true", "\"state\":\"refunded\"");
    expect_cancel_mail(id);
    expect_stock("SLOW", 2, 0, ANY_COMMITTED);
    expect_view("shipping", id, "\"state\":\"none\"");
    audit();
}

static void test_7_cancel_after_confirmation_is_refused(void **state)
{
    char id[64];
    (void)state;
    stock_and_place(id, "LATE", 5, "grace", 1, 100, "DE", 0);
    wait_view("order", id, "\"state\":\"CONFIRMED\"");
    Saga__V1__CommandReply *r = cancel(id);
    assert_non_null(r);
    assert_false(r->ok);
    assert_non_null(strstr(r->error, "confirmed"));
    saga__v1__command_reply__free_unpacked(r, NULL);
    expect_view("order", id, "\"state\":\"CONFIRMED\"");
    audit();
}

/* ---- stores of an older order service ---- */

/* The order record's first layout (version 1): its header written whole, padding and
 * all, then the packed OrderPlaced. The layout of today's records (version 2) is a
 * 32-byte head, the outcome's strings, then the same OrderPlaced. */
typedef struct v1_head {
    uint32_t version, state;
    int64_t placed_ms, final_ms;
    uint32_t placed_len;
    char reason[24], failed_step[65], shipment_id[65], detail[201];
} v1_head;

typedef struct v2_head {
    uint32_t version, state;
    int64_t placed_ms, final_ms;
    uint32_t placed_len;
    uint8_t len[4];
} v2_head;

/* The order service's store that holds order_id's record, opened (env and txn set);
 * 0 if one does. rdonly: a read-only transaction. */
static int open_order_store(const char *order_id, int rdonly, MDB_env **env, MDB_txn **txn,
                            MDB_dbi *dbi, MDB_val *key, MDB_val *val)
{
    static char k[80];
    int ord = tfleet_index("order"), n = F.instances[ord] > 0 ? F.instances[ord] : 1;

    key->mv_size = (size_t)snprintf(k, sizeof(k), "%s%corder", order_id, '\0'); /* no NUL after */
    key->mv_data = k;
    for (int i = 1; i <= n; i++) {
        char name[64], dir[1024];
        snprintf(dir, sizeof(dir), "%s/data/%s", tsrv_dir(F.srv),
                 tfleet_instance_name(&F, ord, i, name, sizeof(name)));
        assert_int_equal(mdb_env_create(env), 0);
        assert_int_equal(mdb_env_set_maxdbs(*env, 32), 0);
        assert_int_equal(mdb_env_set_mapsize(*env, 1LL << 30), 0);
        if (mdb_env_open(*env, dir, 0, 0644) == 0 &&
            mdb_txn_begin(*env, NULL, rdonly ? MDB_RDONLY : 0, txn) == 0) {
            if (mdb_dbi_open(*txn, "saga", 0, dbi) == 0 && mdb_get(*txn, *dbi, key, val) == 0)
                return 0;
            mdb_txn_abort(*txn);
        }
        mdb_env_close(*env);
    }
    return -1;
}

/* The version of order_id's record and its size. */
static uint32_t record_version(const char *order_id, size_t *size)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k, v;
    uint32_t version;

    assert_int_equal(open_order_store(order_id, 1, &env, &txn, &dbi, &k, &v), 0);
    memcpy(&version, v.mv_data, sizeof(version));
    *size = v.mv_size;
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return version;
}

/* Rewrites order_id's record (version 2) as an older order service wrote it. */
static void record_to_v1(const char *order_id)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k, v;
    v2_head h2;
    v1_head h1;
    uint8_t out[4096];
    const uint8_t *p;

    assert_int_equal(open_order_store(order_id, 0, &env, &txn, &dbi, &k, &v), 0);
    memcpy(&h2, v.mv_data, sizeof(h2));
    assert_int_equal(h2.version, 2);
    memset(&h1, 0, sizeof(h1));
    h1.version = 1;
    h1.state = h2.state;
    h1.placed_ms = h2.placed_ms;
    h1.final_ms = h2.final_ms;
    h1.placed_len = h2.placed_len;
    p = (const uint8_t *)v.mv_data + sizeof(h2);
    char *field[] = {h1.reason, h1.failed_step, h1.shipment_id, h1.detail};
    for (int i = 0; i < 4; i++) {
        memcpy(field[i], p, h2.len[i]);
        p += h2.len[i];
    }
    assert_true(sizeof(h1) + h2.placed_len <= sizeof(out));
    memcpy(out, &h1, sizeof(h1));
    memcpy(out + sizeof(h1), p, h2.placed_len);
    v.mv_size = sizeof(h1) + h2.placed_len;
    v.mv_data = out;
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Rewrites order id's record in the first layout while the order service is down,
 * and checks that the service, started again, shows the order as before. */
static void to_first_layout(const char *id)
{
    char before[4096], after[4096];
    size_t size;
    int ord = tfleet_index("order");
    view("order", id, before, sizeof(before));
    assert_int_equal(record_version(id, &size), 2);
    assert_int_equal(tfleet_kill_service(&F, ord), 0);
    record_to_v1(id);
    assert_int_equal(record_version(id, &size), 1);
    assert_true(size > sizeof(v1_head));
    assert_int_equal(tfleet_start_service(&F, ord), 0);
    assert_string_equal(view("order", id, after, sizeof(after)), before);
}

/* A store written by the order service's first record layout (version 1) keeps
 * working: a cancelled order reads back with its reason, failed step and detail; a
 * pending one is read, confirmed and then stored in today's layout, a third of the
 * size. */
static void test_order_records_of_the_first_layout_still_read(void **state)
{
    char id[64], cancelled[64], buf[4096];
    size_t size;
    int sh = tfleet_index("shipping");
    (void)state;
    stock_and_place(cancelled, "OLDREC", 5, "olga", 1, 150000, "DE", 0); /* over the limit */
    wait_view("order", cancelled, "\"reason\":\"payment_declined\"");
    view("order", cancelled, buf, sizeof(buf));
    assert_null(strstr(buf, "\"detail\":\"\""));
    to_first_layout(cancelled);

    assert_int_equal(tfleet_kill_service(&F, sh), 0); /* the order stays PENDING */
    /* A deadline the restarts below cannot reach on a slow machine. */
    stock_and_place(id, "OLDREC", 5, "olga", 2, 1250, "DE", 600000);
    wait_view("payment", id, "\"state\":\"charged\"");
    wait_view("inventory", id, "\"state\":\"reserved\"");
    assert_int_equal(record_version(id, &size), 2);
    assert_true(size < 200);
    to_first_layout(id);
    expect_view("order", id, "\"state\":\"PENDING\"");

    assert_int_equal(tfleet_start_service(&F, sh), 0);
    wait_view("order", id, "\"state\":\"CONFIRMED\"");
    view("order", id, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"shipment_id\":\""));
    assert_null(strstr(buf, "\"shipment_id\":\"\""));
    assert_int_equal(record_version(id, &size), 2);
    expect_mail(id, "confirmed", NULL);
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
    assert_int_equal(tfleet_get_stock(&F, "IDEM", &av, &h, &c), 0);
    assert_int_equal(c, 1); /* one order, one unit */
    /* Still one order when the retry comes after the saga finished. */
    Saga__V1__PlaceOrderReply *late = place_full("key-42", "heidi", it, 1, "DE", "EUR", 0);
    assert_true(late != NULL && late->ok && late->duplicate);
    assert_string_equal(late->order_id, a->order_id);
    saga__v1__place_order_reply__free_unpacked(a, NULL);
    saga__v1__place_order_reply__free_unpacked(b, NULL);
    saga__v1__place_order_reply__free_unpacked(late, NULL);

    /* Keys that are no scope name (too long, other characters) are hashed;
     * two such keys still give two orders, each key one. */
    char k1[129], k2[129];
    memset(k1, 'x', 128);
    k1[128] = '\0';
    memcpy(k1, "tenant/7:order#", 15);
    memcpy(k2, k1, sizeof(k1));
    k2[127] = 'y';
    Saga__V1__PlaceOrderReply *h1 = place_full(k1, "heidi", it, 1, "DE", "EUR", 0);
    Saga__V1__PlaceOrderReply *h1b = place_full(k1, "heidi", it, 1, "DE", "EUR", 0);
    Saga__V1__PlaceOrderReply *h2 = place_full(k2, "heidi", it, 1, "DE", "EUR", 0);
    assert_true(h1 != NULL && h1b != NULL && h2 != NULL && h1->ok && h1b->ok && h2->ok);
    assert_string_equal(h1->order_id, h1b->order_id);
    assert_true(h1b->duplicate && !h2->duplicate);
    assert_string_not_equal(h1->order_id, h2->order_id);
    wait_view("order", h2->order_id, "\"state\":\"CONFIRMED\"");
    saga__v1__place_order_reply__free_unpacked(h1, NULL);
    saga__v1__place_order_reply__free_unpacked(h1b, NULL);
    saga__v1__place_order_reply__free_unpacked(h2, NULL);
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
    assert_int_equal(tjs_collect_events(&F.t, "order.placed", NULL, &v, &before), 0);
    free(v);
    expect_refused("bad-1", NULL, 0, "DE", "EUR", "no items");
    expect_refused("bad-2", (item[]){{"A", 0, 100}}, 1, "DE", "EUR", "quantity 0");
    expect_refused("bad-3", (item[]){{"A", -2, 100}}, 1, "DE", "EUR", "negative quantity");
    expect_refused("bad-4", (item[]){{"A", 1, 100}}, 1, "DE", "XYZ", "unknown currency");
    expect_refused("bad-5", (item[]){{"A b", 1, 100}}, 1, "DE", "EUR", "bad sku");
    /* Not a protobuf at all, and an oversized request; with several order
     * instances, routed to one of them (partition 0). */
    char place0[64];
    snprintf(place0, sizeof(place0), SAGA_SUBJ_ROUTED_FMT, SAGA_SUBJ_ORDER_PLACE, 0u);
    const char *place = F.instances[0] > 1 ? place0 : SAGA_SUBJ_ORDER_PLACE;
    natsMsg *m = request(place, "\xff\xff\xff", 3);
    assert_non_null(m);
    natsMsg_Destroy(m);
    static char big[70000];
    memset(big, 'x', sizeof(big));
    m = request(place, big, sizeof(big));
    assert_non_null(m);
    natsMsg_Destroy(m);
    Saga__V1__CommandReply *r = cancel("NOSUCHORDER");
    assert_non_null(r);
    assert_false(r->ok);
    saga__v1__command_reply__free_unpacked(r, NULL);
    assert_int_equal(tjs_collect_events(&F.t, "order.placed", NULL, &v, &after), 0);
    free(v);
    assert_int_equal(before, after);
}

/* The distinct subjects SAGA_EVENTS holds (the broker keeps state per
 * subject); -1 if the stream cannot be read. */
static int stream_subjects(void)
{
    jsOptions o;
    jsStreamInfo *si = NULL;
    int n = -1;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = SAGA_SUBJ_EVENTS_ALL;
    if (js_GetStreamInfo(&si, F.t.js, SAGA_STREAM_EVENTS, &o, NULL) == NATS_OK)
        n = si->State.Subjects != NULL ? si->State.Subjects->Count : 0;
    jsStreamInfo_Destroy(si);
    return n;
}

typedef struct final_cond {
    char (*ids)[64];
    int n;
} final_cond;

static int all_final(void *arg)
{
    final_cond *c = arg;
    char buf[8192];
    for (int i = 0; i < c->n; i++) {
        tfleet_view(&F, "order", c->ids[i], buf, sizeof(buf));
        if (strstr(buf, "CONFIRMED") == NULL && strstr(buf, "CANCELLED") == NULL)
            return 0;
    }
    return 1;
}

/* Stored subjects name the order's partition and the event type, never the
 * order: placing five times as many orders adds no subject beyond the
 * partitions x event types, so the broker's per-subject state stays flat. */
static void test_stream_subjects_do_not_grow_with_orders(void **state)
{
    enum { FIRST = 40, MORE = 160, SAGA_TYPES = 14 };
    static char ids[FIRST + MORE][64];
    int before = 0;
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "SUBJ", 100000), 0);
    for (int i = 0; i < FIRST + MORE; i++) {
        if (i == FIRST) {
            final_cond c = {ids, FIRST};
            assert_int_equal(tproc_wait_until(all_final, &c, DEADLINE_MS), 0);
            before = stream_subjects();
        }
        place(ids[i], "sol", (item[]){{"SUBJ", 1, 100}}, 1, "DE", 0);
    }
    final_cond c = {ids, FIRST + MORE};
    assert_int_equal(tproc_wait_until(all_final, &c, DEADLINE_MS), 0);
    int after = stream_subjects();
    printf("subjects: orders=%d stream_subjects=%d then %d after %d more orders (bound %d)\n",
           FIRST + MORE, before, after, MORE, SAGA_PARTITIONS * SAGA_TYPES);
    assert_true(before > 0);
    /* At most partitions x the saga's event types, whatever the orders... */
    assert_true(after <= SAGA_PARTITIONS * SAGA_TYPES);
    /* ...and fewer new subjects than new orders: with a subject per order,
     * each order would add one per event type. */
    assert_true(after - before < MORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1_happy_path),
        cmocka_unit_test(test_2_payment_declined),
        cmocka_unit_test(test_3_out_of_stock),
        cmocka_unit_test(test_4_shipping_fails),
        cmocka_unit_test(test_5_customer_cancels_before_confirmation),
        cmocka_unit_test(test_6_deadline_passes_while_payment_is_down),
        cmocka_unit_test(test_7_cancel_after_confirmation_is_refused),
        cmocka_unit_test(test_order_records_of_the_first_layout_still_read),
        cmocka_unit_test(test_idempotency_key_gives_one_order),
        cmocka_unit_test(test_bad_commands_get_clear_errors_and_create_nothing),
        cmocka_unit_test(test_stream_subjects_do_not_grow_with_orders),
    };
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
