/* store.h - The service's LMDB environment and the named databases in it.
 *
 * One environment per service process. Databases:
 *   inbox      event_id (ULID)              -> processed time (int64)
 *   outbox     sequence (big-endian u64)    -> outgoing message (outbox.c)
 *   parked     order_id \0 event_id         -> parked message (park.c)
 *   timers     (empty: an older runtime's timers, moved into saga at open)
 *   timer_due  due (BE u64) order_id \0 "~timer:" name -> "" (index for firing)
 *   state      key                          -> value (global service state)
 *   saga       order_id \0 key              -> value (order-scoped state; a
 *              timer is order_id \0 "~timer:" name -> due time + data, timers.c)
 *   finished   finish time (BE u64) order_id -> ""   (pruning queue)
 *   meta       name                         -> value (sequences; "stats": the
 *                                              service's counters, stats.c)
 * All writes happen in one write transaction per batch, on the service thread. */
#ifndef SAGA_STORE_H
#define SAGA_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "saga/stats.h"
#include "saga/status.h"

#define SAGA__KEY_MAX 480 /* LMDB's default maximum key size is 511 */
/* meta: the partition set the records belong to ("0-7", "all" for the only instance) */
#define SAGA__META_PARTITIONS "partitions"
#define SAGA__META_ONLY "all" /* its value for the only instance */

/* How commits reach the disk (saga__store_open). */
enum {
    SAGA__SYNC_NONE = 0,   /* MDB_NOSYNC: a machine crash may lose the last commits */
    SAGA__SYNC_FULL = 1,   /* two flushes per commit: the data, then the meta page (O_DSYNC) */
    SAGA__SYNC_SHARED = 2, /* MDB_NOMETASYNC: one flush per commit, the data; the meta page
                              written with it reaches the disk with the next flush */
};

typedef struct saga__store {
    MDB_env *env;
    MDB_dbi inbox, outbox, parked, timers, timer_due, state, saga, finished, meta;
    size_t map_size;
    int sync;           /* SAGA__SYNC_* */
    int commit_flushes; /* device flushes per write commit: 2, 1 or 0 as sync says */
    /* Top-level write commits since open, and how many of them are durable:
     * a machine crash cannot undo them. Only SAGA__SYNC_SHARED leaves the
     * last one behind, until the next commit's flush or saga__store_sync. */
    uint64_t committed, durable;
    MDB_txn *top;  /* the last top-level write transaction begun */
    char err[256]; /* detail of the last failure: the LMDB code and text */
} saga__store;

/* Opens (creating if needed) the environment in dir; sync is SAGA__SYNC_*. */
saga_status saga__store_open(saga__store *st, const char *dir, size_t map_size, int sync);
/* Closes the environment; safe on a store that failed to open or was closed. */
void saga__store_close(saga__store *st);

/* Begins a write transaction, nested in parent when parent != NULL. */
saga_status saga__store_begin(saga__store *st, MDB_txn *parent, MDB_txn **txn);
/* Begins a read-only transaction. */
saga_status saga__store_begin_read(saga__store *st, MDB_txn **txn);
/* Commits txn (freed also on error). SAGA_EMAPFULL when the map is full. */
saga_status saga__store_commit(saga__store *st, MDB_txn *txn);
/* Makes every commit durable (SAGA__SYNC_SHARED: one flush when the last
 * one is not yet); *flushes counts the flushes made (0 or 1). */
saga_status saga__store_sync(saga__store *st, int *flushes);
/* Doubles the map size. No transaction of this process may be open. */
saga_status saga__store_grow(saga__store *st);

/* Converts an LMDB return code into a status, recording the detail. */
saga_status saga__store_rc(saga__store *st, int rc, const char *what);

/* Composite keys: a \0 b, written into buf; returns the length or 0 if it does not fit. */
size_t saga__key2(char *buf, size_t cap, const char *a, const char *b);

/* Big-endian u64 keys sort numerically. */
void saga__be64_put(uint8_t out[8], uint64_t v);
uint64_t saga__be64_get(const uint8_t in[8]);

/* A u64 counter in meta, incremented in txn; returns the new value in *out. */
saga_status saga__meta_next(saga__store *st, MDB_txn *txn, const char *name, uint64_t *out);

/* stats.c: the counter kind of SAGA_STATS_MAP, kept across restarts.
 * Loads them into *out (zeros at the first start) and *since_ms, when they
 * started counting; the first start of a data directory writes its record
 * with since_ms = now_ms in a transaction of its own. */
saga_status saga__stats_load(saga__store *st, saga_stats *out, int64_t *since_ms, int64_t now_ms);
/* Writes the counters of s (gauges are left out) in txn: one put, so it
 * rides the batch's commit. */
saga_status saga__stats_save(saga__store *st, MDB_txn *txn, const saga_stats *s, int64_t since_ms);

/* inbox.c */
saga_status saga__inbox_seen(saga__store *st, MDB_txn *txn, const char *event_id, int *seen);
saga_status saga__inbox_put(saga__store *st, MDB_txn *txn, const char *event_id, int64_t now_ms);
/* Deletes up to max ids whose ULID time is older than cutoff_ms; *removed counts them. */
saga_status saga__inbox_prune(saga__store *st, MDB_txn *txn, int64_t cutoff_ms, size_t max,
                              size_t *removed);

#endif
