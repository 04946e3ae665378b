/* state.c - Order-scoped state: finishing a saga and pruning finished ones. */
#include <errno.h>
#include <string.h>

#include "park.h"
#include "service_internal.h"
#include "timers.h"

saga_status saga__state_finish(saga__store *st, MDB_txn *txn, const char *order_id, int64_t now_ms)
{
    uint8_t key[8 + SAGA_ORDER_ID_MAX];
    size_t olen = strlen(order_id);
    if (olen > SAGA_ORDER_ID_MAX)
        return SAGA_ETOOBIG;
    saga_status rv = saga__timer_cancel_order(st, txn, order_id);
    if (rv != SAGA_OK)
        return rv;
    saga__be64_put(key, (uint64_t)now_ms);
    memcpy(key + 8, order_id, olen);
    MDB_val k = {8 + olen, key}, v = {0, NULL};
    return saga__store_rc(st, mdb_put(txn, st->finished, &k, &v, 0), "finished put");
}

/* Deletes every key of dbi that starts with prefix (plen bytes). */
static saga_status delete_prefix(saga__store *st, MDB_txn *txn, MDB_dbi dbi, const char *prefix,
                                 size_t plen)
{
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)prefix}, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "prune cursor");
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0) {
        rc = mdb_cursor_del(cur, 0);
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND && rc != EINVAL)
        return saga__store_rc(st, rc, "prune delete");
    return SAGA_OK;
}

saga_status saga__state_prune(saga__store *st, MDB_txn *txn, int64_t cutoff_ms, size_t max,
                              size_t *removed)
{
    size_t n = 0;
    saga_status rv = SAGA_OK;
    while (n < max) {
        MDB_cursor *cur;
        MDB_val k, v;
        char order[SAGA_ORDER_ID_MAX + 2];
        int rc = mdb_cursor_open(txn, st->finished, &cur);
        if (rc != MDB_SUCCESS)
            return saga__store_rc(st, rc, "finished cursor");
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc != MDB_SUCCESS || k.mv_size < 8 || k.mv_size > 8 + SAGA_ORDER_ID_MAX ||
            (int64_t)saga__be64_get(k.mv_data) >= cutoff_ms) {
            mdb_cursor_close(cur);
            break;
        }
        size_t olen = k.mv_size - 8;
        memcpy(order, (uint8_t *)k.mv_data + 8, olen);
        order[olen] = '\0';
        rc = mdb_cursor_del(cur, 0);
        mdb_cursor_close(cur);
        if (rc != MDB_SUCCESS)
            return saga__store_rc(st, rc, "finished del");
        /* order's \0 ends the prefix: "A1" must not take "A10"'s keys. */
        rv = delete_prefix(st, txn, st->saga, order, olen + 1);
        if (rv == SAGA_OK)
            rv = delete_prefix(st, txn, st->parked, order, olen + 1);
        if (rv == SAGA_OK)
            rv = saga__timer_cancel_order(st, txn, order);
        if (rv != SAGA_OK)
            break;
        n++;
    }
    *removed = n;
    return rv;
}
