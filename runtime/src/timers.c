/* timers.c - Durable timers in LMDB, indexed by due time so firing is a cursor walk. */
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

static saga_status remove_timer(saga__store *st, MDB_txn *txn, const char *id, size_t idlen)
{
    MDB_val k = {idlen, (void *)id}, v;
    uint8_t dk[8 + SAGA__KEY_MAX];
    int64_t due;
    int rc = mdb_get(txn, st->timers, &k, &v);
    if (rc == MDB_NOTFOUND)
        return SAGA_OK;
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "timer get");
    memcpy(&due, v.mv_data, sizeof(due));
    MDB_val ik = {due_key(dk, sizeof(dk), due, id, idlen), dk};
    rc = mdb_del(txn, st->timer_due, &ik, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return saga__store_rc(st, rc, "timer index del");
    rc = mdb_del(txn, st->timers, &k, NULL);
    return saga__store_rc(st, rc, "timer del");
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
    MDB_cursor *cur;
    MDB_val k, v;
    char id[SAGA__KEY_MAX];
    size_t idlen;
    int rc = mdb_cursor_open(txn, st->timer_due, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "timer cursor");
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc != MDB_SUCCESS) {
        mdb_cursor_close(cur);
        return saga__store_rc(st, rc, "timer first");
    }
    int64_t due = (int64_t)saga__be64_get(k.mv_data);
    idlen = k.mv_size - 8;
    if (due > now_ms || idlen > sizeof(id)) {
        mdb_cursor_close(cur);
        return SAGA_ENOTFOUND;
    }
    memcpy(id, (uint8_t *)k.mv_data + 8, idlen);
    mdb_cursor_close(cur);

    memset(t, 0, sizeof(*t));
    t->due_ms = due;
    size_t olen = strnlen(id, idlen);
    if (olen >= idlen || olen > SAGA_ORDER_ID_MAX || idlen - olen - 1 > SAGA__TIMER_NAME_MAX)
        return SAGA_ESTORE;
    memcpy(t->order_id, id, olen);
    memcpy(t->name, id + olen + 1, idlen - olen - 1);

    MDB_val tk = {idlen, id};
    rc = mdb_get(txn, st->timers, &tk, &v);
    if (rc == MDB_SUCCESS && v.mv_size > sizeof(int64_t)) {
        t->len = v.mv_size - sizeof(int64_t);
        t->data = malloc(t->len);
        if (t->data == NULL)
            return SAGA_ENOMEM;
        memcpy(t->data, (uint8_t *)v.mv_data + sizeof(int64_t), t->len);
    } else if (rc == MDB_NOTFOUND) {
        /* An index entry without its timer: drop the orphan, report nothing due. */
        MDB_val ik = {8 + idlen, NULL};
        uint8_t dk[8 + SAGA__KEY_MAX];
        ik.mv_size = due_key(dk, sizeof(dk), due, id, idlen);
        ik.mv_data = dk;
        mdb_del(txn, st->timer_due, &ik, NULL);
        return SAGA_ENOTFOUND;
    } else if (rc != MDB_SUCCESS) {
        return saga__store_rc(st, rc, "timer get");
    }
    saga_status rv = remove_timer(st, txn, id, idlen);
    if (rv != SAGA_OK)
        saga__timer_cleanup(t);
    return rv;
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
