/* stats.c - The service's counters kept across restarts, in the meta database.
 *
 * The counter kind of SAGA_STATS_MAP (gauges are values of the moment) is
 * written as one JSON object under meta "stats", by one put in each batch's
 * write transaction: no commit and no sync of its own. So the figures an
 * audit reads (redeliveries, faults) cover every run of the data directory,
 * not only the process that answers. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define STATS_KEY "stats"
#define SINCE_KEY "since_ms"

static saga_status put_record(saga__store *st, MDB_txn *txn, const saga_stats *s, int64_t since)
{
    json_t *o = json_object();
    char *text = NULL;
    saga_status rv = SAGA_ENOMEM;
    int bad = o == NULL;
    if (!bad)
        bad |= json_object_set_new(o, SINCE_KEY, json_integer((json_int_t)since));
#define XX(name, kind, meaning)                                                                    \
    if (!bad && (kind) == SAGA_STAT_COUNT)                                                         \
        bad |= json_object_set_new(o, #name, json_integer((json_int_t)s->name));
    SAGA_STATS_MAP(XX)
#undef XX
    if (!bad)
        text = json_dumps(o, JSON_COMPACT);
    if (text != NULL) {
        MDB_val k = {strlen(STATS_KEY), STATS_KEY}, v = {strlen(text), text};
        int rc = mdb_put(txn, st->meta, &k, &v, 0);
        rv = rc == MDB_SUCCESS ? SAGA_OK : saga__store_rc(st, rc, "meta put stats");
    }
    free(text);
    json_decref(o);
    return rv;
}

/* A counter of the record, 0 when absent or not a count (a record of an
 * older or newer runtime with other counters still loads). */
static uint64_t counter(const json_t *o, const char *name)
{
    json_int_t v = json_integer_value(json_object_get(o, name));
    return v > 0 ? (uint64_t)v : 0;
}

saga_status saga__stats_load(saga__store *st, saga_stats *out, int64_t *since_ms, int64_t now_ms)
{
    MDB_txn *txn;
    MDB_val k = {strlen(STATS_KEY), STATS_KEY}, v;
    json_t *o = NULL;
    saga_status rv = saga__store_begin(st, NULL, &txn);
    if (rv != SAGA_OK)
        return rv;
    memset(out, 0, sizeof(*out));
    *since_ms = now_ms;
    int rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_SUCCESS)
        o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    else if (rc != MDB_NOTFOUND) {
        rv = saga__store_rc(st, rc, "meta get stats");
        goto fail;
    }
    if (o != NULL) {
        int64_t since = (int64_t)json_integer_value(json_object_get(o, SINCE_KEY));
        if (since > 0)
            *since_ms = since;
#define XX(name, kind, meaning)                                                                    \
    if ((kind) == SAGA_STAT_COUNT)                                                                 \
        out->name = counter(o, #name);
        SAGA_STATS_MAP(XX)
#undef XX
        json_decref(o);
        mdb_txn_abort(txn);
        return SAGA_OK;
    }
    /* The first start of this data directory (or a record no longer
     * readable): the counters start now, and say so from the first start on. */
    rv = put_record(st, txn, out, *since_ms);
    if (rv != SAGA_OK)
        goto fail;
    return saga__store_commit(st, txn);
fail:
    mdb_txn_abort(txn);
    return rv;
}

saga_status saga__stats_save(saga__store *st, MDB_txn *txn, const saga_stats *s, int64_t since_ms)
{
    return put_record(st, txn, s, since_ms);
}
