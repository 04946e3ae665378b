/* timers.c - Durable timers in LMDB, indexed by due time so firing is a cursor walk.
 *
 * Cancelling or replacing a timer deletes only its entry in `timers`; its
 * entry in the due-time index stays until it comes due, where the walk
 * finds it stale (no timer, or one due at another time) and drops it. The
 * index is sorted by due time and cancellations come in the order sagas
 * finish, not the order they set their timers: deleting the index entry
 * at once wrote a leaf page of its own for nearly every cancellation,
 * dropping it when due writes the leaves at the index's left edge, which
 * the walk writes anyway.
 *
 * A timer lives in its order's scope of the saga database, under the key
 * order_id \0 "~timer:" name, next to the state its handlers write: setting
 * or cancelling it writes a leaf they write anyway, where a database of its
 * own wrote one more leaf per timer (stores of an older runtime are moved
 * over by saga__timers_migrate). The index key is due (BE u64) followed by
 * that key. */
#include "timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void saga__timer_cleanup(saga__timer *t)
{
    free(t->data);
    t->data = NULL;
    t->len = 0;
}

#define TIMER_KEY_PREFIX "~timer:"
#define TIMER_KEY_PREFIX_LEN (sizeof(TIMER_KEY_PREFIX) - 1)

/* The timer's key in the saga database; 0 when it does not fit. */
static size_t timer_key(char *buf, size_t cap, const char *order_id, const char *name)
{
    char k[TIMER_KEY_PREFIX_LEN + SAGA__TIMER_NAME_MAX + 1];
    if (strlen(name) > SAGA__TIMER_NAME_MAX)
        return 0;
    snprintf(k, sizeof(k), TIMER_KEY_PREFIX "%s", name);
    return saga__key2(buf, cap, order_id, k);
}

/* Index key: due (BE u64) followed by the timer's key. */
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
    int rc = mdb_del(txn, st->saga, &k, NULL);
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
    size_t idlen = timer_key(id, sizeof(id), order_id, name);
    saga_status rv;
    if (idlen == 0)
        return SAGA_ETOOBIG;
    rv = remove_timer(st, txn, id, idlen);
    if (rv != SAGA_OK)
        return rv;
    MDB_val k = {idlen, id}, v = {sizeof(due_ms) + len, NULL};
    int rc = mdb_put(txn, st->saga, &k, &v, MDB_RESERVE);
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
    size_t idlen = timer_key(id, sizeof(id), order_id, name);
    if (idlen == 0)
        return SAGA_ETOOBIG;
    return remove_timer(st, txn, id, idlen);
}

saga_status saga__timer_cancel_order(saga__store *st, MDB_txn *txn, const char *order_id)
{
    char prefix[SAGA__KEY_MAX];
    size_t plen = timer_key(prefix, sizeof(prefix), order_id, ""); /* order_id \0 "~timer:" */
    saga_status rv = SAGA_OK;
    if (plen == 0 || strlen(order_id) > SAGA_ORDER_ID_MAX)
        return SAGA_ETOOBIG;
    for (;;) {
        MDB_cursor *cur;
        MDB_val k = {plen, prefix}, v;
        char id[SAGA__KEY_MAX];
        int rc = mdb_cursor_open(txn, st->saga, &cur);
        if (rc != MDB_SUCCESS)
            return saga__store_rc(st, rc, "timer cursor");
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        int match = rc == MDB_SUCCESS && k.mv_size > plen && k.mv_size <= sizeof(id) &&
                    memcmp(k.mv_data, prefix, plen) == 0;
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
        if (olen >= idlen || olen > SAGA_ORDER_ID_MAX)
            return SAGA_ESTORE;
        saga_status rv = drop_index(st, txn, due, id, idlen);
        if (rv != SAGA_OK)
            return rv;
        const char *key = id + olen + 1; /* "~timer:" name */
        size_t klen = idlen - olen - 1;
        if (klen < TIMER_KEY_PREFIX_LEN ||
            memcmp(key, TIMER_KEY_PREFIX, TIMER_KEY_PREFIX_LEN) != 0 ||
            klen - TIMER_KEY_PREFIX_LEN > SAGA__TIMER_NAME_MAX)
            continue; /* not a timer's key: an older runtime's entry, moved over since */
        MDB_val tk = {idlen, id};
        int64_t set_due;
        rc = mdb_get(txn, st->saga, &tk, &v);
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
        memcpy(t->name, key + TIMER_KEY_PREFIX_LEN, klen - TIMER_KEY_PREFIX_LEN);
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

saga_status saga__timers_migrate(saga__store *st, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat ms;
    saga_status rv = SAGA_OK;
    int rc = mdb_stat(txn, st->timers, &ms);
    if (rc != MDB_SUCCESS || ms.ms_entries == 0)
        return saga__store_rc(st, rc, "timer stat"); /* nothing to move: no write */
    rc = mdb_cursor_open(txn, st->timers, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "timer cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && rv == SAGA_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char order[SAGA__KEY_MAX], name[SAGA__KEY_MAX];
        size_t olen = strnlen(k.mv_data, k.mv_size);
        int64_t due;
        if (olen >= k.mv_size || k.mv_size >= sizeof(order) || v.mv_size < sizeof(due))
            continue; /* not a timer: left behind, the database is emptied below */
        memcpy(order, k.mv_data, olen);
        order[olen] = '\0';
        memcpy(name, (char *)k.mv_data + olen + 1, k.mv_size - olen - 1);
        name[k.mv_size - olen - 1] = '\0';
        memcpy(&due, v.mv_data, sizeof(due));
        rv = saga__timer_set(st, txn, order, name, due, (uint8_t *)v.mv_data + sizeof(due),
                             v.mv_size - sizeof(due));
    }
    mdb_cursor_close(cur);
    if (rv == SAGA_OK && rc != MDB_NOTFOUND)
        rv = saga__store_rc(st, rc, "timer migrate");
    /* Its index entries (without the prefix) go as stale when due. */
    if (rv == SAGA_OK)
        rv = saga__store_rc(st, mdb_drop(txn, st->timers, 0), "timer drop");
    return rv;
}
