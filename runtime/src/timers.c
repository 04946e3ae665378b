/* timers.c - Durable timers in LMDB, indexed by due time so firing is a cursor walk.
 *
 * Cancelling or replacing a timer deletes only its entry in `timers`; its
 * entry in the due-time index stays until it comes due, where the walk
 * finds it stale (no timer, or one due at another time) and drops it. The
 * index is sorted by due time and cancellations come in the order sagas
 * finish, not the order they set their timers: deleting the index entry
 * at once wrote a leaf page of its own for nearly every cancellation,
 * dropping it when due writes the leaves at the index's left edge, which
 * the walk writes anyway. */
#include "timers.h"

#include <stdlib.h>
#include <string.h>

void saga__timer_cleanup(saga__timer *t)
{
    free(t->data);
    t->data = NULL;
    t->len = 0;
}

/* Index key: due (BE u64) followed by order_id \0 name. */
static size_t due_key(uint8_t *buf, size_t cap, int64_t due, const char *id, size_t idlen)
{
    if (8 + idlen > cap)
        return 0;
    saga__be64_put(buf, (uint64_t)due);
    memcpy(buf + 8, id, idlen);
    return 8 + idlen;
}

/* Deletes the timer; its index entry is left to go stale (see the top). */
static saga_status remove_timer(saga__store *st, MDB_txn *txn, const char *id, size_t idlen)
{
    MDB_val k = {idlen, (void *)id};
    int rc = mdb_del(txn, st->timers, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return SAGA_OK;
    return saga__store_rc(st, rc, "timer del");
}

static saga_status drop_index(saga__store *st, MDB_txn *txn, int64_t due, const char *id,
                              size_t idlen)
{
    uint8_t dk[8 + SAGA__KEY_MAX];
    MDB_val ik = {due_key(dk, sizeof(dk), due, id, idlen), dk};
    int rc = mdb_del(txn, st->timer_due, &ik, NULL);
    if (rc == MDB_NOTFOUND)
        return SAGA_OK;
    return saga__store_rc(st, rc, "timer index del");
}

saga_status saga__timer_set(saga__store *st, MDB_txn *txn, const char *order_id, const char *name,
                            int64_t due_ms, const void *data, size_t len)
{
    char id[SAGA__KEY_MAX];
    uint8_t dk[8 + SAGA__KEY_MAX];
    size_t idlen = saga__key2(id, sizeof(id), order_id, name);
    saga_status rv;
    if (idlen == 0 || strlen(name) > SAGA__TIMER_NAME_MAX)
        return SAGA_ETOOBIG;
    rv = remove_timer(st, txn, id, idlen);
    if (rv != SAGA_OK)
        return rv;
    MDB_val k = {idlen, id}, v = {sizeof(due_ms) + len, NULL};
    int rc = mdb_put(txn, st->timers, &k, &v, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "timer put");
    memcpy(v.mv_data, &due_ms, sizeof(due_ms));
    if (len > 0)
        memcpy((uint8_t *)v.mv_data + sizeof(due_ms), data, len);
    MDB_val ik = {due_key(dk, sizeof(dk), due_ms, id, idlen), dk}, empty = {0, NULL};
    rc = mdb_put(txn, st->timer_due, &ik, &empty, 0);
    return saga__store_rc(st, rc, "timer index put");
}

saga_status saga__timer_cancel(saga__store *st, MDB_txn *txn, const char *order_id,
                               const char *name)
{
    char id[SAGA__KEY_MAX];
    size_t idlen = saga__key2(id, sizeof(id), order_id, name);
    if (idlen == 0)
        return SAGA_ETOOBIG;
    return remove_timer(st, txn, id, idlen);
}

saga_status saga__timer_cancel_order(saga__store *st, MDB_txn *txn, const char *order_id)
{
    size_t olen = strlen(order_id);
    char prefix[SAGA_ORDER_ID_MAX + 2];
    saga_status rv = SAGA_OK;
    if (olen > SAGA_ORDER_ID_MAX)
        return SAGA_ETOOBIG;
    memcpy(prefix, order_id, olen + 1); /* includes the \0 separator */
    for (;;) {
        MDB_cursor *cur;
        MDB_val k = {olen + 1, prefix}, v;
        char id[SAGA__KEY_MAX];
        int rc = mdb_cursor_open(txn, st->timers, &cur);
        if (rc != MDB_SUCCESS)
            return saga__store_rc(st, rc, "timer cursor");
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        int match = rc == MDB_SUCCESS && k.mv_size > olen + 1 && k.mv_size <= sizeof(id) &&
                    memcmp(k.mv_data, prefix, olen + 1) == 0;
        size_t idlen = match ? k.mv_size : 0;
        if (match)
            memcpy(id, k.mv_data, idlen);
        mdb_cursor_close(cur);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
            return saga__store_rc(st, rc, "timer scan");
        if (!match)
            break;
        rv = remove_timer(st, txn, id, idlen);
        if (rv != SAGA_OK)
            break;
    }
    return rv;
}

saga_status saga__timer_take_due(saga__store *st, MDB_txn *txn, int64_t now_ms, saga__timer *t)
{
    for (int i = 0; i < SAGA__TIMER_STALE_MAX; i++) {
        MDB_cursor *cur;
        MDB_val k, v;
        char id[SAGA__KEY_MAX];
        int rc = mdb_cursor_open(txn, st->timer_due, &cur);
        if (rc != MDB_SUCCESS)
            return saga__store_rc(st, rc, "timer cursor");
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc != MDB_SUCCESS) {
            mdb_cursor_close(cur);
            return saga__store_rc(st, rc, "timer first");
        }
        int64_t due = (int64_t)saga__be64_get(k.mv_data);
        size_t idlen = k.mv_size - 8;
        if (due > now_ms || idlen > sizeof(id)) {
            mdb_cursor_close(cur);
            return SAGA_ENOTFOUND;
        }
        memcpy(id, (uint8_t *)k.mv_data + 8, idlen);
        mdb_cursor_close(cur);

        size_t olen = strnlen(id, idlen);
        if (olen >= idlen || olen > SAGA_ORDER_ID_MAX || idlen - olen - 1 > SAGA__TIMER_NAME_MAX)
            return SAGA_ESTORE;
        saga_status rv = drop_index(st, txn, due, id, idlen);
        if (rv != SAGA_OK)
            return rv;
        MDB_val tk = {idlen, id};
        int64_t set_due;
        rc = mdb_get(txn, st->timers, &tk, &v);
        if (rc == MDB_NOTFOUND)
            continue; /* cancelled: a stale index entry */
        if (rc != MDB_SUCCESS)
            return saga__store_rc(st, rc, "timer get");
        if (v.mv_size < sizeof(set_due))
            return SAGA_ESTORE;
        memcpy(&set_due, v.mv_data, sizeof(set_due));
        if (set_due != due)
            continue; /* set again for another time: that entry fires */

        memset(t, 0, sizeof(*t));
        t->due_ms = due;
        memcpy(t->order_id, id, olen);
        memcpy(t->name, id + olen + 1, idlen - olen - 1);
        if (v.mv_size > sizeof(int64_t)) {
            t->len = v.mv_size - sizeof(int64_t);
            t->data = malloc(t->len);
            if (t->data == NULL)
                return SAGA_ENOMEM;
            memcpy(t->data, (uint8_t *)v.mv_data + sizeof(int64_t), t->len);
        }
        rv = remove_timer(st, txn, id, idlen);
        if (rv != SAGA_OK)
            saga__timer_cleanup(t);
        return rv;
    }
    return SAGA_ENOTFOUND; /* more stale entries: the next batch goes on */
}

saga_status saga__timer_earliest(saga__store *st, MDB_txn *txn, int64_t *due_ms)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, st->timer_due, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "timer cursor");
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc == MDB_SUCCESS)
        *due_ms = (int64_t)saga__be64_get(k.mv_data);
    mdb_cursor_close(cur);
    return saga__store_rc(st, rc, "timer earliest");
}
