/* callcost.c - libsaga-callcost.so: where a service's CPU goes, by library.
 *
 * Loaded with LD_PRELOAD into the services that saga-bench starts, it wraps
 * the LMDB and protobuf-c calls a service makes and, when the process exits,
 * writes one line per process into $SAGA_CALLCOST_DIR/<name>.<pid>: the
 * process's CPU (user + system), and for each wrapped call its count and the
 * time spent in it. For the commit of a top-level transaction that is the
 * thread's CPU time (the commit waits on the disk, and the wait is not CPU);
 * for the other calls, which do not block (a nested transaction's commit
 * writes nothing), the wall time on a monotonic clock, which is CPU time
 * unless the thread is preempted inside the call. The thread's CPU clock is
 * a system call, slow enough on a virtual machine to distort what it
 * measures if read around every call: it is read only around the few
 * top-level commits. docs/performance.md
 * ("Where the services' CPU goes") shows how to run it and read the lines.
 *
 * A measuring instrument, not part of the fleet: nothing links it, and it
 * changes nothing a service does. Each wrapped call costs two clock reads
 * (a few tens of nanoseconds). Counters are per process, updated by the
 * threads that make the calls without a lock: in the services, only the
 * service thread calls LMDB and protobuf-c. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum {
    C_GET,
    C_PUT,
    C_DEL,
    C_CURSOR,
    C_BEGIN,
    C_COMMIT,
    C_NESTED_COMMIT,
    C_ABORT,
    C_PACK,
    C_UNPACK,
    C_FREE,
    C_N
};

static const char *const names[C_N] = {"mdb_get",           "mdb_put",       "mdb_del",
                                       "mdb_cursor",        "mdb_txn_begin", "mdb_txn_commit_cpu",
                                       "mdb_nested_commit", "mdb_txn_abort", "pb_pack",
                                       "pb_unpack",         "pb_free"};

static struct {
    long n;
    double s;
} acc[C_N];

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The next definition of sym: the library's own. Looked up once; a missing
 * one is a broken installation, so the process stops with a message. */
static void *next(const char *sym)
{
    void *f = dlsym(RTLD_NEXT, sym);
    if (f == NULL) {
        fprintf(stderr, "libsaga-callcost: %s not found: %s\n", sym, dlerror());
        abort();
    }
    return f;
}

#define REAL(fn)                                                                                   \
    static __typeof__(fn) *real;                                                                   \
    if (real == NULL)                                                                              \
    real = (__typeof__(fn) *)next(#fn)

#define TIMED(k, expr)                                                                             \
    do {                                                                                           \
        double t0_ = mono();                                                                       \
        expr;                                                                                      \
        acc[k].s += mono() - t0_;                                                                  \
        acc[k].n++;                                                                                \
    } while (0)

int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    int rc;
    REAL(mdb_get);
    TIMED(C_GET, rc = real(txn, dbi, key, data));
    return rc;
}

int mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags)
{
    int rc;
    REAL(mdb_put);
    TIMED(C_PUT, rc = real(txn, dbi, key, data, flags));
    return rc;
}

int mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    int rc;
    REAL(mdb_del);
    TIMED(C_DEL, rc = real(txn, dbi, key, data));
    return rc;
}

int mdb_cursor_get(MDB_cursor *cur, MDB_val *key, MDB_val *data, MDB_cursor_op op)
{
    int rc;
    REAL(mdb_cursor_get);
    TIMED(C_CURSOR, rc = real(cur, key, data, op));
    return rc;
}

int mdb_cursor_put(MDB_cursor *cur, MDB_val *key, MDB_val *data, unsigned flags)
{
    int rc;
    REAL(mdb_cursor_put);
    TIMED(C_CURSOR, rc = real(cur, key, data, flags));
    return rc;
}

int mdb_cursor_del(MDB_cursor *cur, unsigned flags)
{
    int rc;
    REAL(mdb_cursor_del);
    TIMED(C_CURSOR, rc = real(cur, flags));
    return rc;
}

/* The nested transactions open on this thread, innermost last. */
#define NESTED_MAX 16
static _Thread_local MDB_txn *nested[NESTED_MAX];
static _Thread_local int nnested;

/* Whether txn is a nested transaction; forgets it when it ends. */
static int nested_end(MDB_txn *txn)
{
    for (int i = nnested - 1; i >= 0; i--) {
        if (nested[i] == txn) {
            nnested = i; /* its own nested ones ended with it */
            return 1;
        }
    }
    return 0;
}

int mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn)
{
    int rc;
    REAL(mdb_txn_begin);
    TIMED(C_BEGIN, rc = real(env, parent, flags, txn));
    if (rc == MDB_SUCCESS && parent != NULL && nnested < NESTED_MAX)
        nested[nnested++] = *txn;
    return rc;
}

void mdb_txn_abort(MDB_txn *txn)
{
    REAL(mdb_txn_abort);
    nested_end(txn);
    TIMED(C_ABORT, real(txn));
}

int mdb_txn_commit(MDB_txn *txn)
{
    int rc;
    REAL(mdb_txn_commit);
    if (nested_end(txn)) {
        TIMED(C_NESTED_COMMIT, rc = real(txn));
        return rc;
    }
    double t0 = thread_cpu();
    rc = real(txn);
    acc[C_COMMIT].s += thread_cpu() - t0;
    acc[C_COMMIT].n++;
    return rc;
}

size_t protobuf_c_message_pack(const ProtobufCMessage *msg, uint8_t *out)
{
    size_t n;
    REAL(protobuf_c_message_pack);
    TIMED(C_PACK, n = real(msg, out));
    return n;
}

ProtobufCMessage *protobuf_c_message_unpack(const ProtobufCMessageDescriptor *desc,
                                            ProtobufCAllocator *allocator, size_t len,
                                            const uint8_t *data)
{
    ProtobufCMessage *m;
    REAL(protobuf_c_message_unpack);
    TIMED(C_UNPACK, m = real(desc, allocator, len, data));
    return m;
}

void protobuf_c_message_free_unpacked(ProtobufCMessage *msg, ProtobufCAllocator *allocator)
{
    REAL(protobuf_c_message_free_unpacked);
    TIMED(C_FREE, real(msg, allocator));
}

/* The process's name: its program's base name, and for saga-ceiling the
 * role it plays ("saga-ceiling-payment"), from /proc/self/cmdline. */
static void process_name(char *out, size_t cap)
{
    char buf[4096];
    size_t n = 0;
    FILE *f = fopen("/proc/self/cmdline", "r");
    snprintf(out, cap, "?");
    if (f == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *base = strrchr(buf, '/');
    base = base != NULL ? base + 1 : buf;
    size_t blen = strlen(base) < cap - 1 ? strlen(base) : cap - 1;
    memcpy(out, base, blen);
    out[blen] = '\0';
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
        size_t len = strlen(out);
        if (strcmp(buf + i, "--role") == 0 && i + 7 < n && len + 2 < cap) {
            const char *role = buf + i + 7;
            size_t rlen = strlen(role) < cap - len - 2 ? strlen(role) : cap - len - 2;
            out[len] = '-';
            memcpy(out + len + 1, role, rlen);
            out[len + 1 + rlen] = '\0';
            break;
        }
    }
}

__attribute__((destructor)) static void report(void)
{
    const char *dir = getenv("SAGA_CALLCOST_DIR");
    char name[128], path[4096];
    struct rusage ru;
    FILE *f;

    if (dir == NULL || getrusage(RUSAGE_SELF, &ru) != 0)
        return;
    process_name(name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s.%ld", dir, name, (long)getpid());
    f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, "process=%s cpu_s=%.6f", name,
            (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6);
    for (int k = 0; k < C_N; k++)
        fprintf(f, " %s=%ld/%.6f", names[k], acc[k].n, acc[k].s);
    fputc('\n', f);
    fclose(f);
}
