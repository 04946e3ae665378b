/* store.c - The LMDB environment of one service: open, transactions, map growth. */
#include "store.h"
#include "timers.h"
#include "saga/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_DBS 16

saga_status saga__store_rc(saga__store *st, int rc, const char *what)
{
    if (rc == MDB_SUCCESS)
        return SAGA_OK;
    snprintf(st->err, sizeof(st->err), "%s: lmdb %d: %s", what, rc, mdb_strerror(rc));
    if (rc == MDB_MAP_FULL)
        return SAGA_EMAPFULL;
    if (rc == MDB_NOTFOUND)
        return SAGA_ENOTFOUND;
    if (rc == MDB_KEYEXIST)
        return SAGA_EEXIST;
    if (rc == MDB_BAD_VALSIZE)
        return SAGA_ETOOBIG;
    if (rc == ENOMEM)
        return SAGA_ENOMEM;
    return SAGA_ESTORE;
}

saga_status saga__store_open(saga__store *st, const char *dir, size_t map_size, int sync)
{
    static const struct {
        const char *name;
        size_t offset;
    } dbs[] = {
        {"inbox", offsetof(saga__store, inbox)},
        {"outbox", offsetof(saga__store, outbox)},
        {"parked", offsetof(saga__store, parked)},
        {"timers", offsetof(saga__store, timers)},
        {"timer_due", offsetof(saga__store, timer_due)},
        {"state", offsetof(saga__store, state)},
        {"saga", offsetof(saga__store, saga)},
        {"finished", offsetof(saga__store, finished)},
        {"meta", offsetof(saga__store, meta)},
    };
    MDB_txn *txn = NULL;
    saga_status rv;
    int rc;

    memset(st, 0, sizeof(*st));
    st->map_size = map_size;
    st->sync = sync;
    st->commit_flushes = sync == SAGA__SYNC_FULL ? 2 : sync == SAGA__SYNC_SHARED ? 1 : 0;
    rc = saga_mkdir_p(dir);
    if (rc != 0) {
        snprintf(st->err, sizeof(st->err), "mkdir %s: %s", dir, strerror(rc));
        return SAGA_EIO;
    }
    rc = mdb_env_create(&st->env);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "mdb_env_create");
    rc = mdb_env_set_maxdbs(st->env, MAX_DBS);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_mapsize(st->env, map_size);
    if (rc != MDB_SUCCESS) {
        rv = saga__store_rc(st, rc, "mdb_env_set");
        goto fail_env;
    }
    /* MDB_NOTLS: read transactions are not tied to a thread's TLS slot. */
    unsigned flags = sync == SAGA__SYNC_NONE     ? MDB_NOSYNC
                     : sync == SAGA__SYNC_SHARED ? MDB_NOMETASYNC
                                                 : 0;
    rc = mdb_env_open(st->env, dir, MDB_NOTLS | flags, 0644);
    /* A process that stopped or crashed may have left its last commit's meta
     * page in the page cache only: on the disk before anything reads it as
     * done (the leftover outbox is published right after the start). */
    if (rc == MDB_SUCCESS && sync == SAGA__SYNC_SHARED)
        rc = mdb_env_sync(st->env, 1);
    if (rc != MDB_SUCCESS) {
        rv = saga__store_rc(st, rc, "mdb_env_open");
        goto fail_env;
    }
    /* The file may already be larger than asked (it grew in an earlier run). */
    MDB_envinfo info;
    mdb_env_info(st->env, &info);
    if (info.me_mapsize > st->map_size)
        st->map_size = info.me_mapsize;

    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS) {
        rv = saga__store_rc(st, rc, "mdb_txn_begin");
        goto fail_env;
    }
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)st + dbs[i].offset);
        rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbi);
        if (rc != MDB_SUCCESS) {
            rv = saga__store_rc(st, rc, dbs[i].name);
            goto fail_txn;
        }
    }
    rv = saga__timers_migrate(st, txn);
    if (rv != SAGA_OK)
        goto fail_txn;
    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        rv = saga__store_rc(st, rc, "mdb_txn_commit");
        goto fail_env;
    }
    return SAGA_OK;

fail_txn:
    mdb_txn_abort(txn);
fail_env:
    mdb_env_close(st->env);
    st->env = NULL;
    return rv;
}

void saga__store_close(saga__store *st)
{
    if (st == NULL || st->env == NULL)
        return;
    mdb_env_close(st->env);
    st->env = NULL;
}

saga_status saga__store_begin(saga__store *st, MDB_txn *parent, MDB_txn **txn)
{
    saga_status rv = saga__store_rc(st, mdb_txn_begin(st->env, parent, 0, txn), "mdb_txn_begin");
    if (rv == SAGA_OK && parent == NULL)
        st->top = *txn;
    return rv;
}

saga_status saga__store_begin_read(saga__store *st, MDB_txn **txn)
{
    return saga__store_rc(st, mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn), "mdb_txn_begin");
}

saga_status saga__store_commit(saga__store *st, MDB_txn *txn)
{
    int top = txn == st->top;
    MDB_envinfo before, after;
    if (!top)
        return saga__store_rc(st, mdb_txn_commit(txn), "mdb_txn_commit");
    st->top = NULL;
    mdb_env_info(st->env, &before);
    int rc = mdb_txn_commit(txn);
    mdb_env_info(st->env, &after);
    /* LMDB skips a transaction that changed nothing: no flush, no meta page. */
    if (rc == MDB_SUCCESS && after.me_last_txnid != before.me_last_txnid) {
        /* A commit's flush carries the pages written before it, the previous
         * commit's meta page among them. */
        st->committed++;
        st->durable = st->sync == SAGA__SYNC_SHARED ? st->committed - 1 : st->committed;
    }
    return saga__store_rc(st, rc, "mdb_txn_commit");
}

saga_status saga__store_sync(saga__store *st, int *flushes)
{
    *flushes = 0;
    if (st->durable == st->committed)
        return SAGA_OK;
    int rc = mdb_env_sync(st->env, 1);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "mdb_env_sync");
    *flushes = 1;
    st->durable = st->committed;
    return SAGA_OK;
}

saga_status saga__store_grow(saga__store *st)
{
    size_t bigger = st->map_size * 2;
    int rc = mdb_env_set_mapsize(st->env, bigger);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "mdb_env_set_mapsize");
    st->map_size = bigger;
    return SAGA_OK;
}

size_t saga__key2(char *buf, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + 1 + lb > cap || la + 1 + lb > SAGA__KEY_MAX)
        return 0;
    memcpy(buf, a, la);
    buf[la] = '\0';
    memcpy(buf + la + 1, b, lb);
    return la + 1 + lb;
}

void saga__be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

uint64_t saga__be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

saga_status saga__meta_next(saga__store *st, MDB_txn *txn, const char *name, uint64_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    uint64_t cur = 0;
    int rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_SUCCESS && v.mv_size == sizeof(cur))
        memcpy(&cur, v.mv_data, sizeof(cur));
    else if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "meta get");
    cur++;
    v.mv_size = sizeof(cur);
    v.mv_data = &cur;
    rc = mdb_put(txn, st->meta, &k, &v, 0);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "meta put");
    *out = cur;
    return SAGA_OK;
}
