/* handover.c - Moving partitions between two stopped instances' stores; see
 * saga/handover.h and docs/scaling.md. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "saga/config.h"
#include "saga/event.h"
#include "saga/handover.h"
#include "store.h"

#define MOVE_ATTEMPTS 8 /* map growths before giving up */

typedef struct mover {
    saga__store from, to;
    MDB_txn *ft, *tt;
    uint32_t moved;
    unsigned flags;
    int done; /* a repeat of a move that completed: nothing to do */
    saga_move_report rep;
    char *err;
    size_t errlen;
} mover;

/* The partition of the order id that starts key at off (up to a NUL or the
 * key's end); -1 when no order id is there. */
static int key_partition(const MDB_val *k, size_t off)
{
    char id[SAGA_ORDER_ID_MAX + 1];
    const char *s = (const char *)k->mv_data + off;
    size_t n = k->mv_size > off ? k->mv_size - off : 0;
    const char *nul = memchr(s, '\0', n);
    if (nul != NULL)
        n = (size_t)(nul - s);
    if (n == 0 || n > SAGA_ORDER_ID_MAX)
        return -1;
    memcpy(id, s, n);
    id[n] = '\0';
    return (int)saga_partition_of(id);
}

static saga_status fail(mover *m, saga_status rv, const char *detail)
{
    snprintf(m->err, m->errlen, "%s", detail);
    return rv;
}

/* Moves the records of from_dbi whose key holds an order id of a moved
 * partition at offset off into to_dbi under the same key; with off < 0,
 * every record, renumbered after the receiver's own (the outbox, whose keys
 * are a sequence of each store's own). *n counts them. */
static saga_status move_db(mover *m, MDB_dbi from_dbi, MDB_dbi to_dbi, int off, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t seq_key[8];
    int rc = mdb_cursor_open(m->ft, from_dbi, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(&m->from, rc, "cursor");
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
        MDB_val to_key = k;
        if (off >= 0) {
            int p = key_partition(&k, (size_t)off);
            if (p < 0 || !(m->moved & (1u << p))) {
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
                continue;
            }
        } else {
            uint64_t seq;
            saga_status rv = saga__meta_next(&m->to, m->tt, "outbox", &seq);
            if (rv != SAGA_OK) {
                mdb_cursor_close(cur);
                return rv;
            }
            saga__be64_put(seq_key, seq);
            to_key.mv_size = sizeof(seq_key);
            to_key.mv_data = seq_key;
        }
        rc = mdb_put(m->tt, to_dbi, &to_key, &v, 0);
        if (rc != MDB_SUCCESS) {
            mdb_cursor_close(cur);
            return saga__store_rc(&m->to, rc, "put");
        }
        rc = mdb_cursor_del(cur, 0);
        if (rc != MDB_SUCCESS)
            break;
        (*n)++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cur);
    /* After deleting the last record, the cursor has no current one. */
    if (rc != MDB_NOTFOUND && rc != EINVAL)
        return saga__store_rc(&m->from, rc, "move");
    return SAGA_OK;
}

/* Copies every processed event id: an id does not name its order. */
static saga_status copy_inbox(mover *m)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(m->ft, m->from.inbox, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(&m->from, rc, "inbox cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int put = mdb_put(m->tt, m->to.inbox, &k, &v, MDB_NOOVERWRITE);
        if (put != MDB_SUCCESS && put != MDB_KEYEXIST) {
            mdb_cursor_close(cur);
            return saga__store_rc(&m->to, put, "inbox put");
        }
        m->rep.inbox_ids += put == MDB_SUCCESS;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? SAGA_OK : saga__store_rc(&m->from, rc, "inbox read");
}

/* The partition set st records in *set: SAGA_OK, SAGA_ENOTFOUND when it
 * records none (a new store), SAGA_EINVAL for a malformed record. The only
 * instance's "all" is every partition, with *only set. */
static saga_status recorded_set(saga__store *st, MDB_txn *txn, uint32_t *set, int *only)
{
    char list[64];
    MDB_val k = {strlen(SAGA__META_PARTITIONS), SAGA__META_PARTITIONS}, v;
    int rc = mdb_get(txn, st->meta, &k, &v);
    *set = 0;
    *only = 0;
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "meta get partitions");
    snprintf(list, sizeof(list), "%.*s", (int)v.mv_size, (const char *)v.mv_data);
    if (strcmp(list, "-") == 0)
        return SAGA_OK; /* a giver that gave everything away */
    if (strcmp(list, SAGA__META_ONLY) == 0) {
        *set = SAGA_PARTITION_SET_ALL;
        *only = 1;
        return SAGA_OK;
    }
    return saga_partition_set(NULL, list, set, NULL, 0) == 0 ? SAGA_OK : SAGA_EINVAL;
}

/* Records set, or the only instance's "all" when only. */
static saga_status record_set(saga__store *st, MDB_txn *txn, uint32_t set, int only)
{
    char list[64];
    if (only)
        snprintf(list, sizeof(list), "%s", SAGA__META_ONLY);
    else
        saga_partition_set_format(set, list, sizeof(list));
    MDB_val k = {strlen(SAGA__META_PARTITIONS), SAGA__META_PARTITIONS}, v = {strlen(list), list};
    return saga__store_rc(st, mdb_put(txn, st->meta, &k, &v, 0), "meta put partitions");
}

/* Checks both partition sets and that the giver has no global state (unless the
 * caller re-splits it). A repeat of a move that completed (the receiver owns
 * every moved partition, the giver none) sets m->done. */
static saga_status check(mover *m, uint32_t *from_set, uint32_t *to_set)
{
    MDB_stat ms;
    int only;
    /* The only instance's store may give: it becomes an instance's (its consumers
     * are made per partition by the caller, saga-fleet scale). */
    saga_status rv = recorded_set(&m->from, m->ft, from_set, &only);
    if (rv == SAGA_ENOTFOUND)
        return fail(m, SAGA_EINVAL, "the giver's data directory records no partitions");
    if (rv == SAGA_EINVAL)
        return fail(m, rv, "the giver's data directory records a malformed partition set");
    if (rv != SAGA_OK)
        return fail(m, rv, m->from.err);
    rv = recorded_set(&m->to, m->tt, to_set, &only);
    if (rv == SAGA_OK && only)
        return fail(m, SAGA_EINVAL, "the receiver is the only instance of its service");
    if (rv == SAGA_EINVAL)
        return fail(m, rv, "the receiver's data directory records a malformed partition set");
    if (rv != SAGA_OK && rv != SAGA_ENOTFOUND)
        return fail(m, rv, m->to.err);
    if ((*from_set & m->moved) == 0 && (*to_set & m->moved) == m->moved) {
        m->done = 1;
        return SAGA_OK;
    }
    if ((*from_set & m->moved) != m->moved)
        return fail(m, SAGA_EINVAL, "the giver does not own every partition to move");
    if (m->flags & SAGA_MOVE_KEEP_GLOBAL)
        return SAGA_OK;
    int rc = mdb_stat(m->ft, m->from.state, &ms);
    if (rc != MDB_SUCCESS)
        return fail(m, saga__store_rc(&m->from, rc, "state stat"), m->from.err);
    if (ms.ms_entries > 0)
        return fail(m, SAGA_EINVAL,
                    "the giver keeps global state (records of no order, such as a customer's "
                    "history), which belongs to no partition: its partitions cannot move");
    return SAGA_OK;
}

/* One attempt in two transactions; nothing is kept unless both commit. */
static saga_status move_once(mover *m)
{
    uint32_t from_set, to_set;
    saga_status rv = saga__store_begin(&m->from, NULL, &m->ft);
    if (rv != SAGA_OK)
        return fail(m, rv, m->from.err);
    rv = saga__store_begin(&m->to, NULL, &m->tt);
    if (rv != SAGA_OK) {
        mdb_txn_abort(m->ft);
        return fail(m, rv, m->to.err);
    }
    memset(&m->rep, 0, sizeof(m->rep));
    rv = check(m, &from_set, &to_set);
    if (rv == SAGA_OK && m->done) {
        mdb_txn_abort(m->tt);
        mdb_txn_abort(m->ft);
        return SAGA_OK;
    }
    if (rv == SAGA_OK)
        rv = move_db(m, m->from.saga, m->to.saga, 0, &m->rep.records);
    if (rv == SAGA_OK)
        rv = move_db(m, m->from.parked, m->to.parked, 0, &m->rep.records);
    if (rv == SAGA_OK)
        rv = move_db(m, m->from.timer_due, m->to.timer_due, 8, &m->rep.records);
    if (rv == SAGA_OK)
        rv = move_db(m, m->from.finished, m->to.finished, 8, &m->rep.records);
    if (rv == SAGA_OK)
        rv = copy_inbox(m);
    /* What the giver had not published (or had not yet deleted once published). */
    if (rv == SAGA_OK)
        rv = move_db(m, m->from.outbox, m->to.outbox, -1, &m->rep.outbox);
    if (rv == SAGA_OK)
        rv = record_set(&m->to, m->tt, to_set | m->moved, 0);
    if (rv == SAGA_OK)
        rv = record_set(&m->from, m->ft, from_set & ~m->moved, 0);
    if (rv != SAGA_OK) {
        mdb_txn_abort(m->tt);
        mdb_txn_abort(m->ft);
        if (m->err[0] == '\0')
            fail(m, rv, m->from.err[0] != '\0' ? m->from.err : m->to.err);
        return rv;
    }
    /* The receiver first: a giver that then fails still holds everything,
     * and the same move run again completes it. */
    rv = saga__store_commit(&m->to, m->tt);
    if (rv != SAGA_OK) {
        mdb_txn_abort(m->ft);
        return fail(m, rv, m->to.err);
    }
    rv = saga__store_commit(&m->from, m->ft);
    return rv == SAGA_OK ? SAGA_OK : fail(m, rv, m->from.err);
}

/* Opens the store in dir, the reason in err on failure. */
static int open_store(saga__store *st, const char *dir, char *err, size_t errlen)
{
    if (saga__store_open(st, dir, SAGA_DEFAULT_MAP_SIZE, 1) == SAGA_OK)
        return 0;
    snprintf(err, errlen, "%s: %s", dir, st->err);
    return -1;
}

int saga_store_make_only(const char *dir, char *err, size_t errlen)
{
    saga__store st;
    MDB_txn *txn;
    uint32_t set;
    int only;
    memset(&st, 0, sizeof(st));
    if (open_store(&st, dir, err, errlen) != 0)
        return -1;
    saga_status rv = saga__store_begin(&st, NULL, &txn);
    if (rv == SAGA_OK) {
        rv = recorded_set(&st, txn, &set, &only);
        if (rv == SAGA_OK && set != SAGA_PARTITION_SET_ALL) {
            char list[64];
            saga_partition_set_format(set, list, sizeof(list));
            snprintf(st.err, sizeof(st.err), "it holds partitions %s, not all %d", list,
                     SAGA_PARTITIONS);
            rv = SAGA_EINVAL;
        }
        if (rv == SAGA_OK && !only)
            rv = record_set(&st, txn, set, 1);
        if (rv == SAGA_OK)
            rv = saga__store_commit(&st, txn);
        else
            mdb_txn_abort(txn);
    }
    if (rv != SAGA_OK)
        snprintf(err, errlen, "%s: %s", dir, st.err);
    saga__store_close(&st);
    return rv == SAGA_OK ? 0 : -1;
}

int saga_store_move_partitions(const char *from_dir, const char *to_dir, uint32_t moved,
                               unsigned flags, saga_move_report *report, char *err, size_t errlen)
{
    mover m;
    saga_status rv;
    memset(&m, 0, sizeof(m));
    m.moved = moved & SAGA_PARTITION_SET_ALL;
    m.flags = flags;
    m.err = err;
    m.errlen = errlen;
    err[0] = '\0';
    if (from_dir == NULL || to_dir == NULL || strcmp(from_dir, to_dir) == 0 || m.moved == 0) {
        snprintf(err, errlen, "want two different data directories and partitions to move");
        return -1;
    }
    if (open_store(&m.from, from_dir, err, errlen) != 0)
        return -1;
    if (open_store(&m.to, to_dir, err, errlen) != 0) {
        saga__store_close(&m.from);
        return -1;
    }
    for (int attempt = 0; attempt < MOVE_ATTEMPTS; attempt++) {
        err[0] = '\0';
        rv = move_once(&m);
        if (rv != SAGA_EMAPFULL)
            break;
        /* Copy-on-write needs room in both maps, even to delete. */
        if (saga__store_grow(&m.from) != SAGA_OK || saga__store_grow(&m.to) != SAGA_OK)
            break;
    }
    saga__store_close(&m.to);
    saga__store_close(&m.from);
    if (rv == SAGA_OK && report != NULL)
        *report = m.rep;
    return rv == SAGA_OK ? 0 : -1;
}

/* ---- global state, which a caller that knows its meaning re-splits ------------- */

#define META_HANDOVER "handover" /* meta: the id of the last saga_store_set_global */

/* Calls fn on each record of dbi; order-scoped keys (order \0 key) are split. */
static int each_in(MDB_txn *txn, MDB_dbi dbi, int scoped, saga_store_record_fn fn, void *udata)
{
    MDB_cursor *cur;
    MDB_val k, v;
    char key[SAGA__KEY_MAX + 1];
    int rc = mdb_cursor_open(txn, dbi, &cur), stop = 0;
    if (rc != MDB_SUCCESS)
        return -1;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && stop == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size > SAGA__KEY_MAX)
            continue; /* no key the runtime writes is longer */
        memcpy(key, k.mv_data, k.mv_size);
        key[k.mv_size] = '\0';
        size_t olen = scoped ? strlen(key) : 0;
        if (scoped && olen + 1 >= k.mv_size)
            continue; /* not order \0 key */
        stop = scoped ? fn(key, key + olen + 1, v.mv_data, v.mv_size, udata)
                      : fn(NULL, key, v.mv_data, v.mv_size, udata);
    }
    mdb_cursor_close(cur);
    return stop != 0 ? stop : (rc == MDB_NOTFOUND ? 0 : -1);
}

int saga_store_each_record(const char *dir, saga_store_record_fn fn, void *udata, char *err,
                           size_t errlen)
{
    saga__store st;
    MDB_txn *txn;
    memset(&st, 0, sizeof(st));
    if (open_store(&st, dir, err, errlen) != 0)
        return -1;
    int rc = saga__store_begin_read(&st, &txn) == SAGA_OK ? 0 : -1;
    if (rc == 0) {
        rc = each_in(txn, st.state, 0, fn, udata);
        if (rc == 0)
            rc = each_in(txn, st.saga, 1, fn, udata);
        mdb_txn_abort(txn);
    }
    if (rc == -1 && err[0] == '\0')
        snprintf(err, errlen, "%s: cannot read its records%s%s", dir, st.err[0] ? ": " : "",
                 st.err);
    saga__store_close(&st);
    return rc;
}

/* One attempt of saga_store_set_global. */
static saga_status set_global_once(saga__store *st, const char *id, const saga_global_record *recs,
                                   size_t n)
{
    MDB_txn *txn;
    saga_status rv = saga__store_begin(st, NULL, &txn);
    if (rv != SAGA_OK)
        return rv;
    rv = saga__store_rc(st, mdb_drop(txn, st->state, 0), "state drop");
    for (size_t i = 0; i < n && rv == SAGA_OK; i++) {
        MDB_val k = {strlen(recs[i].key), (void *)recs[i].key};
        MDB_val v = {recs[i].len, (void *)recs[i].val};
        rv = saga__store_rc(st, mdb_put(txn, st->state, &k, &v, 0), "state put");
    }
    if (rv == SAGA_OK) {
        MDB_val k = {strlen(META_HANDOVER), META_HANDOVER}, v = {strlen(id), (void *)id};
        rv = saga__store_rc(st, mdb_put(txn, st->meta, &k, &v, 0), "meta put handover");
    }
    if (rv != SAGA_OK) {
        mdb_txn_abort(txn);
        return rv;
    }
    return saga__store_commit(st, txn);
}

int saga_store_set_global(const char *dir, const char *id, const saga_global_record *recs, size_t n,
                          char *err, size_t errlen)
{
    saga__store st;
    saga_status rv = SAGA_EINVAL;
    memset(&st, 0, sizeof(st));
    err[0] = '\0';
    if (open_store(&st, dir, err, errlen) != 0)
        return -1;
    for (int attempt = 0; attempt < MOVE_ATTEMPTS; attempt++) {
        rv = set_global_once(&st, id, recs, n);
        if (rv != SAGA_EMAPFULL || saga__store_grow(&st) != SAGA_OK)
            break;
    }
    if (rv != SAGA_OK)
        snprintf(err, errlen, "%s: %s", dir, st.err);
    saga__store_close(&st);
    return rv == SAGA_OK ? 0 : -1;
}

int saga_store_handover_id(const char *dir, char *id, size_t cap, char *err, size_t errlen)
{
    saga__store st;
    MDB_txn *txn;
    MDB_val k = {strlen(META_HANDOVER), META_HANDOVER}, v;
    memset(&st, 0, sizeof(st));
    id[0] = '\0';
    if (open_store(&st, dir, err, errlen) != 0)
        return -1;
    int rc = saga__store_begin_read(&st, &txn) == SAGA_OK ? 0 : -1;
    if (rc == 0) {
        int got = mdb_get(txn, st.meta, &k, &v);
        if (got == MDB_SUCCESS)
            snprintf(id, cap, "%.*s", (int)v.mv_size, (const char *)v.mv_data);
        else if (got != MDB_NOTFOUND)
            rc = -1;
        mdb_txn_abort(txn);
    }
    if (rc != 0)
        snprintf(err, errlen, "%s: cannot read its hand-over id", dir);
    saga__store_close(&st);
    return rc;
}
