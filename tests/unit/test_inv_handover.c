/* test_inv_handover.c - Inventory's stock re-split in a hand-over
 * (services/inventory/inv_handover.h): the plan keeps every SKU's units, the held
 * units go with the reserved orders, and a plan applied to some stores only (a
 * failure half way) and then to all gives what applying it once does. And the
 * stored layouts of a reservation (compensations/inv_state.h), which it reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "inv_handover.h"
#include "inv_state.h"
#include "proc.h"
#include "saga/config.h"
#include "saga/event.h"
#include "saga/handover.h"
#include "store.h"

static void put(const char *dir, int scoped, const char *order, const char *key, const void *val,
                size_t len)
{
    saga__store st;
    MDB_txn *txn;
    char buf[SAGA__KEY_MAX];
    MDB_val k = {scoped ? saga__key2(buf, sizeof(buf), order, key) : strlen(key),
                 scoped ? (void *)buf : (void *)key},
            v = {len, (void *)val};
    assert_int_equal(saga__store_open(&st, dir, (size_t)1 << 20, 1), SAGA_OK);
    assert_int_equal(saga__store_begin(&st, NULL, &txn), SAGA_OK);
    assert_int_equal(mdb_put(txn,
                             scoped          ? st.saga
                             : order != NULL ? st.meta
                                             : st.state,
                             &k, &v, 0),
                     MDB_SUCCESS);
    assert_int_equal(saga__store_commit(&st, txn), SAGA_OK);
    saga__store_close(&st);
}

static void put_stock(const char *dir, const char *sku, int64_t a, int64_t h, int64_t c)
{
    char key[80];
    inv_stock s = {INV_STOCK_VERSION, a, h, c};
    snprintf(key, sizeof(key), INV_STOCK_PREFIX "%s", sku);
    put(dir, 0, NULL, key, &s, sizeof(s));
}

/* An order of partition p holding qty units of sku, in the first layout of a
 * reservation (the hand-over reads stores an older inventory wrote). */
static void put_reserved(const char *dir, unsigned p, const char *sku, int64_t qty)
{
    char id[SAGA_ID_LEN + 1];
    inv_res res = {.version = INV_RES_VERSION_V1, .state = INV_RES_RESERVED, .nlines = 1};
    do
        saga_ulid_new(id);
    while (saga_partition_of(id) != p);
    res.lines[0].quantity = qty;
    snprintf(res.lines[0].sku, sizeof(res.lines[0].sku), "%s", sku);
    put(dir, 1, id, INV_RES_KEY, &res, offsetof(inv_res, lines) + sizeof(inv_line));
}

typedef struct sums {
    long long fig[3];
    long long held_of[3];
    int skus_lists;
} sums;

static int add_up(const char *order_id, const char *key, const void *val, size_t len, void *udata)
{
    sums *s = udata;
    inv_stock st;
    if (order_id != NULL)
        return 0;
    if (strcmp(key, INV_SKUS_KEY) == 0) {
        s->skus_lists += len == strlen("S1\nS2\n") && memcmp(val, "S1\nS2\n", len) == 0;
        return 0;
    }
    assert_int_equal(len, sizeof(st));
    memcpy(&st, val, sizeof(st));
    if (strcmp(key, INV_STOCK_PREFIX "S1") == 0) {
        s->fig[0] += st.available;
        s->fig[1] += st.held;
        s->fig[2] += st.committed;
    }
    return 0;
}

static void test_plan_applied_twice(void **state)
{
    char *home = tproc_mkdtemp(), a[600], b[600], c[600], plan[600], err[512], id[32];
    const char *from[] = {a, b}, *to[] = {a, b, c};
    uint32_t sets[3];
    inv_handover_report rep;
    (void)state;
    snprintf(a, sizeof(a), "%s/inventory-1", home);
    snprintf(b, sizeof(b), "%s/inventory-2", home);
    snprintf(c, sizeof(c), "%s/inventory-3", home);
    snprintf(plan, sizeof(plan), "%s/handover-inventory.json", home);
    for (int j = 0; j < 3; j++) {
        char spec[8];
        snprintf(spec, sizeof(spec), "%d/3", j + 1);
        assert_int_equal(saga_partition_set(spec, NULL, &sets[j], NULL, 0), 0);
    }
    /* Two instances: 1 owns the even partitions, 2 the odd ones. S1: 41 units. */
    put(a, 0, NULL, INV_SKUS_KEY, "S1\nS2\n", 6);
    put(b, 0, NULL, INV_SKUS_KEY, "S1\nS2\n", 6);
    put_stock(a, "S1", 10, 5, 2);
    put_stock(b, "S1", 9, 4, 11);
    put_stock(a, "S2", 1, 0, 0);
    put_reserved(a, 4, "S1", 2); /* partition 4: instance 2 of 3 */
    put_reserved(a, 6, "S1", 3); /* partition 6: instance 1 of 3 */
    put_reserved(b, 5, "S1", 4); /* partition 5: instance 3 of 3 */

    assert_int_equal(inv_handover_plan(plan, from, 2, to, sets, 3, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.resumed, 0);
    assert_int_equal(rep.stores, 3);
    assert_int_equal(rep.available + rep.held + rep.committed, 41 + 1);
    /* A failure after the first store: the plan stays, found again (not computed
     * from the half-changed stores), and applied to every store. */
    assert_int_equal(inv_handover_apply(plan, 1, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.stores, 1);
    assert_int_equal(access(plan, F_OK), 0);
    assert_int_equal(inv_handover_plan(plan, from, 2, to, sets, 3, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.resumed, 1);
    assert_int_equal(inv_handover_apply(plan, -1, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.stores, 3);
    assert_int_not_equal(access(plan, F_OK), 0);

    sums all = {0};
    const int64_t held[3] = {3, 2, 4};
    for (int j = 0; j < 3; j++) {
        sums one = {0};
        assert_int_equal(saga_store_each_record(to[j], add_up, &one, err, sizeof(err)), 0);
        assert_int_equal(one.fig[0], saga_partition_share(19, sets, 3, (size_t)j));
        assert_int_equal(one.fig[1], held[j]);
        assert_int_equal(one.fig[2], saga_partition_share(13, sets, 3, (size_t)j));
        assert_int_equal(one.skus_lists, 1);
        for (int k = 0; k < 3; k++)
            all.fig[k] += one.fig[k];
        assert_int_equal(saga_store_handover_id(to[j], id, sizeof(id), err, sizeof(err)), 0);
        assert_string_equal(id, rep.id);
    }
    assert_int_equal(all.fig[0], 19);
    assert_int_equal(all.fig[1], 9);
    assert_int_equal(all.fig[2], 13);

    /* Held units that do not match the reserved orders are not re-split. */
    uint32_t two[2];
    assert_int_equal(saga_partition_set("1/2", NULL, &two[0], NULL, 0), 0);
    assert_int_equal(saga_partition_set("2/2", NULL, &two[1], NULL, 0), 0);
    put_stock(c, "S1", 0, 7, 0);
    assert_int_equal(inv_handover_plan(plan, to, 3, from, two, 2, &rep, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "held"));
    assert_int_not_equal(access(plan, F_OK), 0);
    tproc_rmrf(home);
    free(home);
}

/* A reservation of both layouts decodes to the same lines; a truncated,
 * overlong or unknown one is a store error, never misread. */
static void test_reservation_layouts(void **state)
{
    inv_res v1 = {.version = INV_RES_VERSION_V1, .state = INV_RES_COMMITTED, .nlines = 2}, out;
    uint8_t v2[64];
    size_t head = offsetof(inv_res, lines), n = head;
    const char *skus[] = {"S1", "LONGER-SKU"};
    (void)state;
    for (int i = 0; i < 2; i++) {
        int64_t q = 7 + i;
        v1.lines[i].quantity = q;
        snprintf(v1.lines[i].sku, sizeof(v1.lines[i].sku), "%s", skus[i]);
        memcpy(v2 + n, &q, sizeof(q));
        v2[n + 8] = (uint8_t)strlen(skus[i]);
        memcpy(v2 + n + 9, skus[i], strlen(skus[i]));
        n += 9 + strlen(skus[i]);
    }
    inv_res h = v1;
    h.version = INV_RES_VERSION;
    memcpy(v2, &h, head);
    assert_int_equal(n, head + 30); /* version 1: 2 x 80 bytes of lines */

    for (int layout = 1; layout <= 2; layout++) {
        if (layout == 1)
            assert_int_equal(inv_res_decode(&v1, head + 2 * sizeof(inv_line), &out), SAGA_OK);
        else
            assert_int_equal(inv_res_decode(v2, n, &out), SAGA_OK);
        assert_int_equal(out.state, INV_RES_COMMITTED);
        assert_int_equal(out.nlines, 2);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(out.lines[i].quantity, 7 + i);
            assert_string_equal(out.lines[i].sku, skus[i]);
        }
    }
    assert_int_equal(inv_res_decode(v2, n - 1, &out), SAGA_ESTORE); /* truncated */
    assert_int_equal(out.nlines, 0);
    assert_int_equal(inv_res_decode(v2, n + 1, &out), SAGA_ESTORE); /* trailing byte */
    h.version = 3;
    memcpy(v2, &h, head);
    assert_int_equal(inv_res_decode(v2, n, &out), SAGA_ESTORE); /* a later layout */

    /* One line whose SKU is as long as any may be, then one byte longer, then empty:
     * records whose lengths add up, so only the SKU's bound refuses them. */
    static const int lens[] = {INV_SKU_MAX, INV_SKU_MAX + 1, 0};
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        int slen = lens[k];
        uint8_t rec[256];
        int64_t q = 3;
        h.version = INV_RES_VERSION;
        h.nlines = 1;
        memcpy(rec, &h, head);
        memcpy(rec + head, &q, sizeof(q));
        rec[head + 8] = (uint8_t)slen;
        memset(rec + head + 9, 'S', (size_t)slen);
        saga_status want = slen >= 1 && slen <= INV_SKU_MAX ? SAGA_OK : SAGA_ESTORE;
        assert_int_equal(inv_res_decode(rec, head + 9 + (size_t)slen, &out), want);
        if (want == SAGA_OK)
            assert_int_equal(strlen(out.lines[0].sku), slen);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_applied_twice),
        cmocka_unit_test(test_reservation_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
