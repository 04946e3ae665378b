/* inbox.c - Ids of the events a service has processed, for deduplication.
 *
 * Keys are ULIDs, so the database is ordered by the events' creation time
 * and pruning walks from the front until it meets a young enough id. */
#include <string.h>

#include "saga/event.h"
#include "store.h"

saga_status saga__inbox_seen(saga__store *st, MDB_txn *txn, const char *event_id, int *seen)
{
    MDB_val k = {strlen(event_id), (void *)event_id}, v;
    int rc = mdb_get(txn, st->inbox, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *seen = 0;
        return SAGA_OK;
    }
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "inbox get");
    *seen = 1;
    return SAGA_OK;
}

saga_status saga__inbox_put(saga__store *st, MDB_txn *txn, const char *event_id, int64_t now_ms)
{
    MDB_val k = {strlen(event_id), (void *)event_id}, v = {sizeof(now_ms), &now_ms};
    return saga__store_rc(st, mdb_put(txn, st->inbox, &k, &v, 0), "inbox put");
}

saga_status saga__inbox_prune(saga__store *st, MDB_txn *txn, int64_t cutoff_ms, size_t max,
                              size_t *removed)
{
    MDB_cursor *cur;
    MDB_val k, v;
    saga_status rv = SAGA_OK;
    size_t n = 0;
    int rc = mdb_cursor_open(txn, st->inbox, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "inbox cursor");
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS && n < max) {
        char id[SAGA_ID_LEN + 1];
        if (k.mv_size != SAGA_ID_LEN)
            goto drop; /* not an id we wrote: never keep it forever */
        memcpy(id, k.mv_data, SAGA_ID_LEN);
        id[SAGA_ID_LEN] = '\0';
        if (saga_ulid_time_ms(id) >= cutoff_ms)
            break;
    drop:
        rc = mdb_cursor_del(cur, 0);
        if (rc != MDB_SUCCESS)
            break;
        n++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        rv = saga__store_rc(st, rc, "inbox prune");
    mdb_cursor_close(cur);
    *removed = n;
    return rv;
}
