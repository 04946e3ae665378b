/* test_store.c - The LMDB store: inbox pruning, outbox records, timers, parking, map growth. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "outbox.h"
#include "saga/fs.h"
#include "saga/handover.h"
#include "park.h"
#include "proc.h"
#include "service_internal.h"
#include "store.h"
#include "timers.h"

typedef struct fx {
    char *dir;
    saga__store st;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = tproc_mkdtemp();
    if (f->dir == NULL ||
        saga__store_open(&f->st, f->dir, (size_t)1 << 20, SAGA__SYNC_FULL) != SAGA_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    saga__store_close(&f->st);
    tproc_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A ULID whose time part is t (randomness fixed by i). */
static void ulid_at(char out[SAGA_ID_LEN + 1], int64_t t, unsigned i)
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t ts = (uint64_t)t;
    for (int k = 9; k >= 0; k--) {
        out[k] = b32[ts & 31];
        ts >>= 5;
    }
    for (int k = 25; k >= 10; k--) {
        out[k] = b32[i & 31];
        i >>= 5;
    }
    out[SAGA_ID_LEN] = '\0';
}

/* Pruning removes old ids in bounded steps and keeps every young one, so a
 * duplicate inside the retention is still caught. */
static void test_inbox_prune_bounded(void **state)
{
    fx *f = *state;
    MDB_txn *txn;
    int64_t now = now_ms(), cutoff = now - 60000;
    char id[SAGA_ID_LEN + 1];
    size_t removed = 0, total = 0;
    int seen;

    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    for (unsigned i = 0; i < 3000; i++) {
        ulid_at(id, cutoff - 1000 - i, i); /* old */
        assert_int_equal(saga__inbox_put(&f->st, txn, id, now), SAGA_OK);
    }
    for (unsigned i = 0; i < 500; i++) {
        ulid_at(id, now - i, i); /* young */
        assert_int_equal(saga__inbox_put(&f->st, txn, id, now), SAGA_OK);
    }
    assert_int_equal(saga__store_commit(&f->st, txn), SAGA_OK);

    do {
        assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
        assert_int_equal(saga__inbox_prune(&f->st, txn, cutoff, 1000, &removed), SAGA_OK);
        assert_true(removed <= 1000);
        assert_int_equal(saga__store_commit(&f->st, txn), SAGA_OK);
        total += removed;
    } while (removed > 0);
    assert_int_equal(total, 3000);

    assert_int_equal(saga__store_begin_read(&f->st, &txn), SAGA_OK);
    MDB_stat ms;
    mdb_stat(txn, f->st.inbox, &ms);
    assert_int_equal(ms.ms_entries, 500);
    ulid_at(id, now - 10, 10);
    assert_int_equal(saga__inbox_seen(&f->st, txn, id, &seen), SAGA_OK);
    assert_true(seen);
    ulid_at(id, cutoff - 1000, 0);
    assert_int_equal(saga__inbox_seen(&f->st, txn, id, &seen), SAGA_OK);
    assert_false(seen);
    mdb_txn_abort(txn);
}

static void test_outbox_round_trip(void **state)
{
    fx *f = *state;
    MDB_txn *txn;
    saga__outlist in, out;
    saga__outlist_init(&in);
    saga__outlist_init(&out);
    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    for (int i = 0; i < 3; i++) {
        saga__outmsg *m = saga__outlist_push(&in);
        snprintf(m->subject, sizeof(m->subject), "evt.a.b.o%d", i);
        snprintf(m->msg_id, sizeof(m->msg_id), "id%d", i);
        saga__outmsg_header(m, "Saga-Reason", "because");
        m->len = (size_t)i * 10;
        m->data = m->len ? malloc(m->len) : NULL;
        if (m->len)
            memset(m->data, 'x' + i, m->len);
        assert_int_equal(saga__outbox_put(&f->st, txn, m), SAGA_OK);
    }
    assert_int_equal(saga__outbox_del(&f->st, txn, in.v[1].key), SAGA_OK);
    assert_int_equal(saga__store_commit(&f->st, txn), SAGA_OK);

    assert_int_equal(saga__store_begin_read(&f->st, &txn), SAGA_OK);
    assert_int_equal(saga__outbox_load(&f->st, txn, &out), SAGA_OK);
    mdb_txn_abort(txn);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.v[0].subject, "evt.a.b.o0");
    assert_string_equal(out.v[1].msg_id, "id2");
    assert_int_equal(out.v[1].nhdr, 1);
    assert_string_equal(out.v[1].hdr[0].value, "because");
    assert_int_equal(out.v[1].len, 20);
    assert_memory_equal(out.v[1].data, in.v[2].data, 20);
    assert_true(out.v[0].key < out.v[1].key);
    saga__outlist_cleanup(&in);
    saga__outlist_cleanup(&out);
}

/* Timers come out in due order, only when due; replacing and cancelling work
 * (the index entries they leave behind are dropped as they come due). */
static void test_timers_due_order(void **state)
{
    fx *f = *state;
    MDB_txn *txn;
    saga__timer t;
    int64_t due;
    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    assert_int_equal(saga__timer_set(&f->st, txn, "o1", "deadline", 300, "a", 1), SAGA_OK);
    assert_int_equal(saga__timer_set(&f->st, txn, "o2", "deadline", 100, NULL, 0), SAGA_OK);
    assert_int_equal(saga__timer_set(&f->st, txn, "o3", "deadline", 200, NULL, 0), SAGA_OK);
    assert_int_equal(saga__timer_set(&f->st, txn, "o1", "deadline", 150, "b", 1), SAGA_OK);
    assert_int_equal(saga__timer_cancel(&f->st, txn, "o3", "deadline"), SAGA_OK);
    assert_int_equal(saga__timer_earliest(&f->st, txn, &due), SAGA_OK);
    assert_int_equal(due, 100);
    assert_int_equal(saga__timer_take_due(&f->st, txn, 50, &t), SAGA_ENOTFOUND);
    assert_int_equal(saga__timer_take_due(&f->st, txn, 1000, &t), SAGA_OK);
    assert_string_equal(t.order_id, "o2");
    saga__timer_cleanup(&t);
    assert_int_equal(saga__timer_take_due(&f->st, txn, 1000, &t), SAGA_OK);
    assert_string_equal(t.order_id, "o1");
    assert_int_equal(t.len, 1);
    assert_memory_equal(t.data, "b", 1);
    saga__timer_cleanup(&t);
    assert_int_equal(saga__timer_take_due(&f->st, txn, 1000, &t), SAGA_ENOTFOUND);
    assert_int_equal(saga__timer_earliest(&f->st, txn, &due), SAGA_ENOTFOUND);
    mdb_txn_abort(txn);
}

/* Takes the next due timer and checks it: order's "deadline", due at due, one byte of data. */
static void take_one(fx *f, MDB_txn *txn, int64_t now, const char *order, int64_t due,
                     const char *data)
{
    saga__timer t;
    assert_int_equal(saga__timer_take_due(&f->st, txn, now, &t), SAGA_OK);
    assert_string_equal(t.order_id, order);
    assert_string_equal(t.name, "deadline");
    assert_int_equal(t.due_ms, due);
    assert_int_equal(t.len, 1);
    assert_memory_equal(t.data, data, 1);
    saga__timer_cleanup(&t);
}

static void assert_entries(MDB_txn *txn, MDB_dbi dbi, size_t n)
{
    MDB_stat ms;
    assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
    assert_int_equal(ms.ms_entries, n);
}

/* A cancelled timer never fires, nor a replaced one at its old time; their
 * index entries go when due, also more than one take_due drops at a time. */
static void test_timers_stale_index(void **state)
{
    fx *f = *state;
    MDB_txn *txn;
    saga__timer t;
    int64_t due;
    char order[32];
    for (int i = 0; i < 3; i++) /* room for the stale entries' transaction */
        assert_int_equal(saga__store_grow(&f->st), SAGA_OK);
    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    for (int i = 0; i < SAGA__TIMER_STALE_MAX + 10; i++) {
        snprintf(order, sizeof(order), "c%d", i);
        assert_int_equal(saga__timer_set(&f->st, txn, order, "deadline", 50 + i % 7, NULL, 0),
                         SAGA_OK);
        assert_int_equal(saga__timer_cancel(&f->st, txn, order, "deadline"), SAGA_OK);
    }
    assert_int_equal(saga__timer_set(&f->st, txn, "x", "deadline", 100, NULL, 0), SAGA_OK);
    assert_int_equal(saga__timer_set(&f->st, txn, "x", "deadline", 500, "l", 1), SAGA_OK);
    assert_int_equal(saga__timer_earliest(&f->st, txn, &due), SAGA_OK);
    assert_int_equal(due, 50); /* a stale entry: the walk drops it when due */
    /* More stale entries than one call drops: the next call goes on. */
    assert_int_equal(saga__timer_take_due(&f->st, txn, 200, &t), SAGA_ENOTFOUND);
    assert_int_equal(saga__timer_take_due(&f->st, txn, 200, &t), SAGA_ENOTFOUND);
    assert_int_equal(saga__timer_earliest(&f->st, txn, &due), SAGA_OK);
    assert_int_equal(due, 500);
    take_one(f, txn, 600, "x", 500, "l");
    assert_entries(txn, f->st.timer_due, 0);
    mdb_txn_abort(txn);
}

/* A store of an older runtime, its timers in the database "timers" and
 * indexed without the "~timer:" prefix, opens with them moved into their
 * orders' scopes: the timer fires once, with its data. */
static void test_timers_migrate(void **state)
{
    fx *f = *state;
    MDB_txn *txn;
    saga__timer t;
    int64_t due = 100;
    uint8_t val[sizeof(due) + 1], ik[8 + 11];
    memcpy(val, &due, sizeof(due));
    val[sizeof(due)] = 'd';
    saga__be64_put(ik, (uint64_t)due);
    memcpy(ik + 8, "o9\0deadline", 11);
    MDB_val k = {11, "o9\0deadline"}, v = {sizeof(val), val}, ikv = {sizeof(ik), ik},
            empty = {0, NULL};
    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    assert_int_equal(mdb_put(txn, f->st.timers, &k, &v, 0), 0);
    assert_int_equal(mdb_put(txn, f->st.timer_due, &ikv, &empty, 0), 0);
    assert_int_equal(saga__store_commit(&f->st, txn), SAGA_OK);
    saga__store_close(&f->st);
    assert_int_equal(saga__store_open(&f->st, f->dir, (size_t)1 << 20, SAGA__SYNC_FULL), SAGA_OK);

    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    assert_entries(txn, f->st.timers, 0);
    take_one(f, txn, 1000, "o9", 100, "d");
    assert_int_equal(saga__timer_take_due(&f->st, txn, 1000, &t), SAGA_ENOTFOUND);
    assert_entries(txn, f->st.timer_due, 0);
    mdb_txn_abort(txn);
}

/* Parked events are listed per order, and one order's prefix never matches another's. */
static void test_park_by_order(void **state)
{
    fx *f = *state;
    MDB_txn *txn;
    saga__parked *v = NULL;
    size_t n = 0;
    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    assert_int_equal(saga__park_put(&f->st, txn, "A1", "E1", 1, (const uint8_t *)"xy", 2), SAGA_OK);
    assert_int_equal(saga__park_put(&f->st, txn, "A10", "E2", 2, (const uint8_t *)"z", 1), SAGA_OK);
    assert_true(saga__park_any(&f->st, txn, "A1"));
    assert_false(saga__park_any(&f->st, txn, "A"));
    assert_int_equal(saga__park_list(&f->st, txn, "A1", &v, &n), SAGA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].event_id, "E1");
    assert_int_equal(v[0].len, 2);
    saga__park_free(v, n);
    assert_int_equal(saga__park_del(&f->st, txn, "A1", "E1"), SAGA_OK);
    assert_false(saga__park_any(&f->st, txn, "A1"));
    assert_true(saga__park_any(&f->st, txn, "A10"));
    mdb_txn_abort(txn);
}

/* A finished saga's state, timers and parked events go after the retention. */
static void test_finished_saga_pruned(void **state)
{
    fx *f = *state;
    MDB_txn *txn;
    size_t removed;
    MDB_val k = {4, "A1\0x"}, v = {1, "1"}, k2 = {5, "A10\0x"};
    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    assert_int_equal(mdb_put(txn, f->st.saga, &k, &v, 0), 0);
    assert_int_equal(mdb_put(txn, f->st.saga, &k2, &v, 0), 0);
    assert_int_equal(saga__timer_set(&f->st, txn, "A1", "deadline", 99, NULL, 0), SAGA_OK);
    assert_int_equal(saga__state_finish(&f->st, txn, "A1", 1000), SAGA_OK);
    int64_t due;
    saga__timer t;
    /* The cancelled timer's index entry stays until due, and is dropped then. */
    assert_int_equal(saga__timer_take_due(&f->st, txn, 1000, &t), SAGA_ENOTFOUND);
    assert_int_equal(saga__timer_earliest(&f->st, txn, &due), SAGA_ENOTFOUND);
    assert_int_equal(saga__state_prune(&f->st, txn, 1000, 10, &removed), SAGA_OK);
    assert_int_equal(removed, 0); /* not older than the cutoff yet */
    assert_int_equal(saga__state_prune(&f->st, txn, 1001, 10, &removed), SAGA_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(mdb_get(txn, f->st.saga, &k, &v), MDB_NOTFOUND);
    assert_int_equal(mdb_get(txn, f->st.saga, &k2, &v), 0); /* another order's state stays */
    mdb_txn_abort(txn);
}

/* The store's directory and its parents are created; existing ones are fine. */
static void test_mkdir_p(void **state)
{
    fx *f = *state;
    char path[1024], file[1100], big[5000];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/a/b/c", f->dir);
    assert_int_equal(saga_mkdir_p(path), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(saga_mkdir_p(path), 0);
    snprintf(file, sizeof(file), "%s/a/file", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(file, sizeof(file), "%s/a/file/under", f->dir);
    assert_int_equal(saga_mkdir_p(file), ENOTDIR);
    memset(big, 'd', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(saga_mkdir_p(big), ENAMETOOLONG);
    assert_int_equal(saga_mkdir_p(""), ENAMETOOLONG);
}

/* A full map is reported as SAGA_EMAPFULL, and growing it lets the same writes succeed. */
static void test_map_grows(void **state)
{
    fx *f = *state;
    static char blob[64 * 1024];
    int grew = 0;
    memset(blob, 'b', sizeof(blob));
    for (int attempt = 0; attempt < 8; attempt++) {
        MDB_txn *txn;
        saga_status rv = saga__store_begin(&f->st, NULL, &txn);
        assert_int_equal(rv, SAGA_OK);
        for (int i = 0; i < 64 && rv == SAGA_OK; i++) {
            char key[16];
            snprintf(key, sizeof(key), "k%d", i);
            MDB_val k = {strlen(key), key}, v = {sizeof(blob), blob};
            rv = saga__store_rc(&f->st, mdb_put(txn, f->st.state, &k, &v, 0), "put");
        }
        if (rv == SAGA_OK)
            rv = saga__store_commit(&f->st, txn);
        else
            mdb_txn_abort(txn);
        if (rv == SAGA_OK)
            break;
        assert_int_equal(rv, SAGA_EMAPFULL);
        assert_int_equal(saga__store_grow(&f->st), SAGA_OK);
        grew++;
    }
    assert_true(grew > 0); /* 4 MiB does not fit in the 1 MiB we started with */
    MDB_txn *txn;
    MDB_val k = {3, "k63"}, v;
    assert_int_equal(saga__store_begin_read(&f->st, &txn), SAGA_OK);
    assert_int_equal(mdb_get(txn, f->st.state, &k, &v), 0);
    mdb_txn_abort(txn);
}

/* One write transaction that puts key, committed. */
static void put_one(saga__store *st, const char *key)
{
    MDB_txn *txn;
    assert_int_equal(saga__store_begin(st, NULL, &txn), SAGA_OK);
    assert_int_equal(saga__inbox_put(st, txn, key, 1), SAGA_OK);
    assert_int_equal(saga__store_commit(st, txn), SAGA_OK);
}

/* Which commits are on the disk: every one when each flushes its meta page;
 * with one flush per commit, all but the last, until the next commit or a
 * sync. A transaction that changes nothing is no commit (LMDB writes nothing). */
static void test_durable_commits(void **state)
{
    fx *f = *state;
    saga__store sh;
    MDB_txn *txn;
    int flushes = -1;
    put_one(&f->st, "a");
    assert_int_equal(f->st.commit_flushes, 2);
    assert_true(f->st.committed >= 1);
    assert_int_equal(f->st.durable, f->st.committed);

    char *dir = tproc_mkdtemp();
    assert_non_null(dir);
    assert_int_equal(saga__store_open(&sh, dir, (size_t)1 << 20, SAGA__SYNC_SHARED), SAGA_OK);
    assert_int_equal(sh.commit_flushes, 1);
    uint64_t c0 = sh.committed;
    put_one(&sh, "a");
    assert_int_equal(sh.committed, c0 + 1);
    assert_int_equal(sh.durable, c0); /* its meta page waits for the next flush */
    put_one(&sh, "b");
    assert_int_equal(sh.durable, c0 + 1); /* carried by the second commit's flush */
    assert_int_equal(saga__store_sync(&sh, &flushes), SAGA_OK);
    assert_int_equal(flushes, 1);
    assert_int_equal(sh.durable, sh.committed);
    assert_int_equal(saga__store_sync(&sh, &flushes), SAGA_OK);
    assert_int_equal(flushes, 0); /* nothing left to flush */
    assert_int_equal(saga__store_begin(&sh, NULL, &txn), SAGA_OK);
    assert_int_equal(saga__store_commit(&sh, txn), SAGA_OK);
    assert_int_equal(sh.committed, c0 + 2);
    assert_int_equal(sh.durable, sh.committed);
    saga__store_close(&sh);
    tproc_rmrf(dir);
    free(dir);
}

/* Puts key=val into dbi of st in a transaction of its own. */
static void put_raw(saga__store *st, MDB_dbi dbi, const void *key, size_t klen, const char *val)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v = {strlen(val), (void *)val};
    assert_int_equal(saga__store_begin(st, NULL, &txn), SAGA_OK);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), MDB_SUCCESS);
    assert_int_equal(saga__store_commit(st, txn), SAGA_OK);
}

static int has_raw(saga__store *st, MDB_dbi dbi, const void *key, size_t klen)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v;
    assert_int_equal(saga__store_begin_read(st, &txn), SAGA_OK);
    int rc = mdb_get(txn, dbi, &k, &v);
    mdb_txn_abort(txn);
    return rc == MDB_SUCCESS;
}

static void recorded_is(const char *dir, const char *want)
{
    saga__store st;
    MDB_txn *txn;
    MDB_val k = {strlen(SAGA__META_PARTITIONS), SAGA__META_PARTITIONS}, v;
    assert_int_equal(saga__store_open(&st, dir, (size_t)1 << 20, 1), SAGA_OK);
    assert_int_equal(saga__store_begin_read(&st, &txn), SAGA_OK);
    assert_int_equal(mdb_get(txn, st.meta, &k, &v), MDB_SUCCESS);
    char got[64];
    snprintf(got, sizeof(got), "%.*s", (int)v.mv_size, (const char *)v.mv_data);
    mdb_txn_abort(txn);
    saga__store_close(&st);
    assert_string_equal(got, want);
}

/* A hand-over moves every record of the moved partitions' orders, copies the
 * processed ids, hands over the outbox and rewrites both partition sets; the
 * records of the partitions that stay, stay. Global state refuses it. */
static void test_move_partitions(void **state)
{
    fx *f = *state;
    char a[SAGA_ORDER_ID_MAX + 1], b[SAGA_ORDER_ID_MAX + 1], key[128], kb[128], err[256];
    char to[600];
    MDB_txn *txn;
    saga_move_report rep;
    /* Two orders of the giver's partitions 0-7: a moves, b stays. */
    do
        saga_ulid_new(a);
    while (saga_partition_of(a) != 3);
    do
        saga_ulid_new(b);
    while (saga_partition_of(b) != 5);
    put_raw(&f->st, f->st.meta, SAGA__META_PARTITIONS, strlen(SAGA__META_PARTITIONS), "0-7");
    size_t klen = saga__key2(key, sizeof(key), a, "res");
    put_raw(&f->st, f->st.saga, key, klen, "held 2");
    size_t kblen = saga__key2(kb, sizeof(kb), b, "res");
    put_raw(&f->st, f->st.saga, kb, kblen, "held 1");
    put_raw(&f->st, f->st.inbox, "01EVENTID", 9, "t");
    assert_int_equal(saga__store_begin(&f->st, NULL, &txn), SAGA_OK);
    assert_int_equal(saga__timer_set(&f->st, txn, a, "deadline", now_ms() + 60000, "x", 1),
                     SAGA_OK);
    assert_int_equal(saga__state_finish(&f->st, txn, b, now_ms()), SAGA_OK);
    assert_int_equal(saga__store_commit(&f->st, txn), SAGA_OK);
    uint8_t ob[8];
    saga__be64_put(ob, 1);
    put_raw(&f->st, f->st.outbox, ob, sizeof(ob), "unpublished");
    saga__store_close(&f->st);

    snprintf(to, sizeof(to), "%s/to", f->dir);
    assert_int_equal(saga_store_move_partitions(f->dir, to, 1u << 3, 0, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.records, 3); /* a's state, its timer and the timer's index */
    assert_int_equal(rep.inbox_ids, 1);
    assert_int_equal(rep.outbox, 1);
    recorded_is(f->dir, "0-2,4-7");
    recorded_is(to, "3");

    saga__store dst;
    assert_int_equal(saga__store_open(&dst, to, (size_t)1 << 20, 1), SAGA_OK);
    assert_true(has_raw(&dst, dst.saga, key, klen));
    assert_true(has_raw(&dst, dst.inbox, "01EVENTID", 9));
    assert_true(has_raw(&dst, dst.outbox, ob, sizeof(ob)));
    saga__store_close(&dst);
    assert_int_equal(saga__store_open(&f->st, f->dir, (size_t)1 << 20, 1), SAGA_OK);
    assert_false(has_raw(&f->st, f->st.saga, key, klen));
    assert_true(has_raw(&f->st, f->st.saga, kb, kblen));
    assert_false(has_raw(&f->st, f->st.outbox, ob, sizeof(ob)));
    saga__store_close(&f->st);

    /* A repeat of the completed move does nothing; a partition neither owns is
     * refused; and global state belongs to no partition. */
    assert_int_equal(saga_store_move_partitions(f->dir, to, 1u << 3, 0, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.records + rep.inbox_ids + rep.outbox, 0);
    recorded_is(to, "3");
    assert_int_equal(saga_store_move_partitions(f->dir, to, 1u << 9, 0, &rep, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "does not own"));
    assert_int_equal(saga__store_open(&f->st, f->dir, (size_t)1 << 20, 1), SAGA_OK);
    put_raw(&f->st, f->st.state, "stock/A1", 8, "10");
    saga__store_close(&f->st);
    assert_int_equal(saga_store_move_partitions(f->dir, to, 1u << 5, 0, &rep, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "global state"));
    recorded_is(f->dir, "0-2,4-7");
    assert_int_equal(saga__store_open(&f->st, f->dir, (size_t)1 << 20, 1), SAGA_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inbox_prune_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_due_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_stale_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_by_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finished_saga_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_partitions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
