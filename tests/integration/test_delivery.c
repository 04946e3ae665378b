/* test_delivery.c - The runtime's delivery guarantees, against a real nats-server.
 *
 * Each test starts its own nats-server with JetStream and runs saga-testsvc
 * (tests/support/testsvc.c) as a real child process with its own LMDB. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <fcntl.h>
#include <lmdb.h>

#include "natsrv.h"
#include "proc.h"
#include "saga/wire.h"
#include "tjs.h"

#define DEADLINE_MS 60000
#ifndef SAGA_NATS_SERVER
#define SAGA_NATS_SERVER "/usr/sbin/nats-server"
#endif

typedef struct fixture {
    tsrv *srv;
    tjs t;
    char data_dir[512];
    char log_path[512];
    pid_t svc;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || tsrv_start(&f->srv) != 0)
        return -1;
    snprintf(f->data_dir, sizeof(f->data_dir), "%s/testsvc", tsrv_dir(f->srv));
    snprintf(f->log_path, sizeof(f->log_path), "%s/testsvc.log", tsrv_dir(f->srv));
    if (tjs_connect(&f->t, tsrv_url(f->srv)) != 0 || tjs_ensure_streams(&f->t) != 0)
        return -1;
    f->svc = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->svc > 0)
        tproc_kill(f->svc);
    tjs_close(&f->t);
    tsrv_destroy(f->srv);
    free(f);
    return 0;
}

/* Starts saga-testsvc with the test's settings plus extra "K=V" entries. */
static pid_t start_svc(fixture *f, const char *extra1, const char *extra2)
{
    char url[128], dir[600];
    snprintf(url, sizeof(url), "SAGA_NATS_URL=%s", tsrv_url(f->srv));
    snprintf(dir, sizeof(dir), "SAGA_DATA_DIR=%s", f->data_dir);
    const char *env[] = {url, dir, "SAGA_ACK_WAIT_MS=1000", "SAGA_RETRY_BASE_MS=50",
                         "SAGA_MAX_DELIVER=3", "SAGA_LOG_LEVEL=info",
                         /* The stricter path: a commit is released after the next flush. */
                         "SAGA_SHARED_FLUSH=1", extra1, extra2, NULL};
    const char *argv[] = {SAGA_TESTSVC, NULL};
    f->svc = tproc_spawn(argv, env, f->log_path);
    assert_true(f->svc > 0);
    return f->svc;
}

static void stop_svc(fixture *f)
{
    int rc = tproc_term(f->svc, 30000);
    f->svc = -1;
    if (rc != 0) { /* not a clean exit on SIGTERM: show why */
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "tail -n 60 %s >&2", f->log_path);
        if (system(cmd) != 0)
            fprintf(stderr, "(no service log)\n");
    }
    assert_int_equal(rc, 0);
}

/* ---- conditions ---- */

/* What to count: messages of a stream on a subject filter (stream set), or
 * events of SAGA_EVENTS of a type and order (NULL: any), as
 * tjs_collect_events picks them. */
typedef struct count_cond {
    fixture *f;
    const char *stream, *filter;
    const char *type, *order;
    size_t want;
} count_cond;

static size_t count_of(const count_cond *c)
{
    tjs_msg *v = NULL;
    size_t n = 0;
    int rc = c->stream != NULL ? tjs_collect(&c->f->t, c->stream, c->filter, &v, &n)
                               : tjs_collect_events(&c->f->t, c->type, c->order, &v, &n);
    free(v);
    return rc == 0 ? n : 0;
}

static size_t count_msgs(fixture *f, const char *stream, const char *filter)
{
    count_cond c = {f, stream, filter, NULL, NULL, 0};
    return count_of(&c);
}

static size_t count_events(fixture *f, const char *type, const char *order)
{
    count_cond c = {f, NULL, NULL, type, order, 0};
    return count_of(&c);
}

static int has_count(void *arg)
{
    return count_of(arg) >= ((count_cond *)arg)->want;
}

static void wait_count(fixture *f, const char *stream, const char *filter, size_t want)
{
    count_cond c = {f, stream, filter, NULL, NULL, want};
    assert_int_equal(tproc_wait_until(has_count, &c, DEADLINE_MS), 0);
}

static void wait_events(fixture *f, const char *type, const char *order, size_t want)
{
    count_cond c = {f, NULL, NULL, type, order, want};
    assert_int_equal(tproc_wait_until(has_count, &c, DEADLINE_MS), 0);
}

typedef struct stat_cond {
    fixture *f;
    const char *field;
    long long want;
} stat_cond;

static int has_stat(void *arg)
{
    stat_cond *c = arg;
    return tjs_stat(&c->f->t, "testsvc", c->field) >= c->want;
}

static void wait_stat(fixture *f, const char *field, long long want)
{
    stat_cond c = {f, field, want};
    assert_int_equal(tproc_wait_until(has_stat, &c, DEADLINE_MS), 0);
}

/* Asks the service for an order's count through its command. */
static long long order_count(fixture *f, const char *order)
{
    natsMsg *reply = NULL;
    long long v = -1;
    if (natsConnection_Request(&reply, f->t.nc, "saga.cmd.testsvc.get", order, (int)strlen(order),
                               5000) != NATS_OK)
        return -1;
    v = strtoll(natsMsg_GetData(reply), NULL, 10);
    natsMsg_Destroy(reply);
    return v;
}

/* Every ponged event in the stream, checked for duplicates; returns how many. */
static size_t distinct_pongs(fixture *f, size_t *total)
{
    tjs_msg *v = NULL;
    size_t n = 0, distinct = 0;
    assert_int_equal(tjs_collect_events(&f->t, "testsvc.ponged", NULL, &v, &n), 0);
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(v[i].ev.event_id, v[j].ev.event_id) == 0 ||
                strcmp(v[i].ev.causation_id, v[j].ev.causation_id) == 0)
                dup = 1;
        distinct += !dup;
    }
    free(v);
    *total = n;
    return distinct;
}

/* ---- tests ---- */

/* The same event delivered twice (the broker cannot drop it: other message
 * id) has exactly one effect. */
static void test_duplicate_has_one_effect(void **state)
{
    fixture *f = *state;
    saga_event ev;
    uint8_t *buf;
    size_t len, total;
    memset(&ev, 0, sizeof(ev));
    saga_ulid_new(ev.event_id);
    snprintf(ev.type, sizeof(ev.type), "test.pinged");
    ev.schema_version = 1;
    snprintf(ev.order_id, sizeof(ev.order_id), "dup1");
    snprintf(ev.producer, sizeof(ev.producer), "test");
    ev.sequence = 1;
    ev.time_ms = 1700000000000LL;
    assert_int_equal(saga_event_encode(&ev, &buf, &len), SAGA_OK);
    start_svc(f, NULL, NULL);
    assert_int_equal(tjs_publish_raw(&f->t, tjs_subject("test.pinged", "dup1"), buf, len, "copy-1"),
                     0);
    assert_int_equal(tjs_publish_raw(&f->t, tjs_subject("test.pinged", "dup1"), buf, len, "copy-2"),
                     0);
    free(buf);
    wait_stat(f, "duplicates", 1);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "processed"), 1);
    assert_int_equal(order_count(f, "dup1"), 1);
    assert_int_equal(distinct_pongs(f, &total), 1);
    assert_int_equal(total, 1);
    stop_svc(f);
}

/* Publishes n test.pinged events, for orders <prefix>0 .. <prefix>n-1. */
static void publish_pings(fixture *f, const char *prefix, int n)
{
    char order[32];
    for (int i = 0; i < n; i++) {
        snprintf(order, sizeof(order), "%s%d", prefix, i);
        assert_int_equal(tjs_publish_event(&f->t, "test.pinged", order, "hi", NULL), 0);
    }
}

/* Runs the service in batches of four with the crash point crash ("SAGA_CRASH_AT=...")
 * until it kills itself. */
static void run_until_killed(fixture *f, const char *crash)
{
    int status = 0;
    start_svc(f, crash, "SAGA_BATCH_MAX=4");
    assert_int_equal(tproc_wait(f->svc, DEADLINE_MS, &status), 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    f->svc = -1;
}

/* The last transaction id of the store the killed process left, and its page size. */
static void store_txnid(fixture *f, unsigned long long *txnid, size_t *psize)
{
    MDB_env *env = NULL;
    MDB_envinfo info;
    MDB_stat st;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, f->data_dir, MDB_RDONLY, 0644), 0);
    mdb_env_info(env, &info);
    mdb_env_stat(env, &st);
    *txnid = (unsigned long long)info.me_last_txnid;
    *psize = st.ms_psize;
    mdb_env_close(env);
}

/* Takes away what a machine crash at the crash point could have undone. The
 * process's last words say how many of its commits were on the disk; when
 * its last commit was not (its meta page was written, not yet flushed),
 * the newer of LMDB's two meta pages gets the older one's contents, as a
 * power cut before that page reached the disk leaves the file. Returns 1
 * when a commit was taken away, 0 when every commit was durable. */
static int lose_unflushed_commit(fixture *f)
{
    enum { META_TXNID = 16 + 128 }; /* page header, then MDB_meta's mm_txnid */
    char line[512], path[600];
    unsigned long long committed = 0, durable = 0, last, txnid[2];
    size_t psize;
    int found = 0;
    FILE *fp = fopen(f->log_path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        const char *p = strstr(line, "event=crash ");
        if (p != NULL && strstr(p, "committed=") != NULL &&
            sscanf(strstr(p, "committed="), "committed=%llu durable=%llu", &committed, &durable) ==
                2)
            found = 1;
    }
    fclose(fp);
    assert_true(found);
    assert_true(durable <= committed && committed - durable <= 1); /* only the last may wait */
    if (committed == durable)
        return 0;
    store_txnid(f, &last, &psize);
    snprintf(path, sizeof(path), "%s/data.mdb", f->data_dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t *page[2] = {malloc(psize), malloc(psize)};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pread(fd, page[i], psize, (off_t)(i * psize)), (ssize_t)psize);
        memcpy(&txnid[i], page[i] + META_TXNID, sizeof(txnid[i]));
    }
    int newer = txnid[1] > txnid[0];
    assert_int_equal(txnid[newer], last); /* the layout is read right */
    memcpy(page[newer] + 16, page[!newer] + 16, psize - 16);
    assert_int_equal(pwrite(fd, page[newer], psize, (off_t)(newer * psize)), (ssize_t)psize);
    close(fd);
    free(page[0]);
    free(page[1]);
    store_txnid(f, &last, &psize);
    assert_int_equal(last, txnid[!newer]);
    return 1;
}

/* SIGKILL at a crash point, restart: every event has exactly one effect and
 * downstream sees each emitted event once. With machine, the crash is the
 * machine's: the last commit is lost too when it was not on the disk.
 * Returns whether it was. */
static int crash_and_recover(fixture *f, const char *point, int machine)
{
    enum { N = 30 };
    char crash[64], order[32];
    size_t total;
    int lost = 0;
    snprintf(crash, sizeof(crash), "SAGA_CRASH_AT=%s:5", point);
    publish_pings(f, "o", N);
    run_until_killed(f, crash);
    if (machine)
        lost = lose_unflushed_commit(f);
    start_svc(f, "SAGA_BATCH_MAX=4", NULL);
    wait_events(f, "testsvc.ponged", NULL, N);
    for (int i = 0; i < N; i++) {
        snprintf(order, sizeof(order), "o%d", i);
        assert_int_equal(order_count(f, order), 1);
    }
    assert_int_equal(distinct_pongs(f, &total), N);
    assert_int_equal(total, N);
    stop_svc(f);
    return lost;
}

static void test_crash_in_handler(void **state)
{
    crash_and_recover(*state, "in_handler", 0);
}

static void test_crash_after_commit(void **state)
{
    crash_and_recover(*state, "after_commit", 0);
}

static void test_crash_after_publish(void **state)
{
    crash_and_recover(*state, "after_publish", 0);
}

/* A machine crash right after a commit, with one flush per commit
 * (SAGA_SHARED_FLUSH): that commit's meta page is not on the disk yet and
 * the commit is lost. Nothing of it was published or acknowledged, so the
 * redelivered events are handled again (their new events get new ids) and
 * each still has one effect downstream. */
static void test_machine_crash_after_commit(void **state)
{
    assert_int_equal(crash_and_recover(*state, "after_commit", 1), 1);
}

/* The same after a publish and after the acknowledgements: what was
 * published or acknowledged was durable, whatever the crash takes away. */
static void test_machine_crash_after_publish(void **state)
{
    crash_and_recover(*state, "after_publish", 1);
}

static void test_machine_crash_after_ack(void **state)
{
    crash_and_recover(*state, "after_ack", 1);
}

/* The stream sequence up to which the broker has the acknowledgements of the durable
 * consumer that reads type, or -1. */
static long long ack_floor(fixture *f, const char *type)
{
    jsConsumerInfoList *list = NULL;
    long long floor = -1;
    char filter[128];
    snprintf(filter, sizeof(filter), "%s*.%s", SAGA_SUBJ_EVENTS_PREFIX, type);
    if (js_Consumers(&list, f->t.js, SAGA_STREAM_EVENTS, NULL, NULL) != NATS_OK)
        return -1;
    for (int i = 0; i < list->Count; i++) {
        const jsConsumerInfo *ci = list->List[i];
        if (ci->Config != NULL && ci->Config->FilterSubject != NULL &&
            strcmp(ci->Config->FilterSubject, filter) == 0)
            floor = (long long)ci->AckFloor.Stream;
    }
    jsConsumerInfoList_Destroy(list);
    return floor;
}

/* Whether the service's store, opened read-only as the killed process left it, has
 * event_id in its inbox: the commit that holds the event's effects is written. */
static int in_store(fixture *f, const char *event_id)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k = {strlen(event_id), (void *)event_id}, v;
    int found = 0;
    if (mdb_env_create(&env) != 0)
        return -1;
    mdb_env_set_maxdbs(env, 32);
    if (mdb_env_open(env, f->data_dir, MDB_RDONLY, 0644) == 0 &&
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 && mdb_dbi_open(txn, "inbox", 0, &dbi) == 0)
        found = mdb_get(txn, dbi, &k, &v) == 0;
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return found;
}

/* No message is acknowledged before the commit holding its effects is on the
 * disk: SIGKILL right after the acknowledgements of a batch go out, take away
 * the last commit if it was not flushed yet (a machine crash), then every
 * event the broker counts as acknowledged is in the store left behind. */
static void test_acked_means_committed(void **state)
{
    enum { N = 30 };
    fixture *f = *state;
    tjs_msg *v = NULL;
    size_t n = 0, acked = 0;
    publish_pings(f, "a", N);
    run_until_killed(f, "SAGA_CRASH_AT=after_ack:3");
    lose_unflushed_commit(f);
    long long floor = ack_floor(f, "test.pinged");
    /* Three batches were acknowledged: the check has something to look at. */
    assert_true(floor >= 3);
    assert_int_equal(tjs_collect_events(&f->t, "test.pinged", NULL, &v, &n), 0);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) {
        if ((long long)v[i].seq > floor)
            continue;
        acked++;
        if (in_store(f, v[i].ev.event_id) != 1)
            fail_msg("event %s (stream sequence %llu) was acknowledged but is not in the store",
                     v[i].ev.event_id, (unsigned long long)v[i].seq);
    }
    free(v);
    assert_true(acked >= 3);
}

/* The counters survive a restart: before, every start began at 0, so an
 * audit's figures left out what the service did before its last crash.
 * Killed after the commit of its third batch and restarted, the service's
 * `processed` carries on, and counts each event once over both runs. */
static void test_counters_survive_a_crash(void **state)
{
    enum { N = 20 };
    fixture *f = *state;
    publish_pings(f, "c", N);
    run_until_killed(f, "SAGA_CRASH_AT=after_commit:3");

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* since_ms and started_ms are wall-clock times */
    long long restarted = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    start_svc(f, "SAGA_BATCH_MAX=4", NULL);
    wait_events(f, "testsvc.ponged", NULL, N);
    wait_stat(f, "processed", N);
    /* The first run committed at least its 3 batches: had the counters
     * started again at 0, the second run alone would count fewer. */
    long long received = tjs_stat(&f->t, "testsvc", "received");
    assert_int_equal(tjs_stat(&f->t, "testsvc", "processed"), N);
    assert_true(tjs_stat(&f->t, "testsvc", "commits") >= 4);
    /* One flush per commit (SAGA_SHARED_FLUSH), and one more for a batch
     * whose commit no later commit carried to the disk: fewer than two. */
    long long commits = tjs_stat(&f->t, "testsvc", "commits");
    long long flushes = tjs_stat(&f->t, "testsvc", "flushes");
    assert_true(flushes >= commits && flushes < 2 * commits);
    /* The batch committed but never acknowledged came again: a duplicate. */
    assert_true(tjs_stat(&f->t, "testsvc", "duplicates") >= 1);
    assert_true(received >= N + 1);
    long long since = tjs_stat(&f->t, "testsvc", "since_ms");
    long long started = tjs_stat(&f->t, "testsvc", "started_ms");
    assert_true(since > 0 && started > 0);
    assert_true(since < restarted);    /* the first run's start */
    assert_true(started >= restarted); /* this process */

    /* A clean stop and start: still no reset, and the start is kept. */
    stop_svc(f);
    start_svc(f, NULL, NULL);
    wait_stat(f, "processed", 0);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "processed"), N);
    assert_true(tjs_stat(&f->t, "testsvc", "received") >= received);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "since_ms"), since);
    stop_svc(f);
}

typedef struct log_cond {
    const char *path, *needle;
    int want;
} log_cond;

static int log_has(void *arg)
{
    log_cond *c = arg;
    char line[4096];
    int n = 0;
    FILE *fp = fopen(c->path, "r");
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL)
        n += strstr(line, c->needle) != NULL;
    fclose(fp);
    return n >= c->want;
}

/* Waits until the service's log has at least want lines containing needle. */
static void wait_log(fixture *f, const char *needle, int want)
{
    log_cond c = {f->log_path, needle, want};
    assert_int_equal(tproc_wait_until(log_has, &c, DEADLINE_MS), 0);
}

/* A pre-commit hook that fails abandons the whole batch: nothing it wrote or
 * emitted is kept, and the event runs again (once) when the hook succeeds. */
static void test_failing_precommit_abandons_the_batch(void **state)
{
    fixture *f = *state;
    char flag[600], env[640];
    size_t total;
    snprintf(flag, sizeof(flag), "%s/precommit.fail", tsrv_dir(f->srv));
    snprintf(env, sizeof(env), "TESTSVC_PRECOMMIT_FAIL=%s", flag);
    FILE *fp = fopen(flag, "w");
    assert_non_null(fp);
    fclose(fp);
    start_svc(f, env, NULL);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "pc1", "hi", NULL), 0);
    /* Two failed attempts: the first delivery, and one after the redelivery. */
    wait_log(f, "event=batch_failed messages=1", 2);
    assert_int_equal(count_events(f, "testsvc.ponged", NULL), 0);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "processed"), 0);
    assert_int_equal(unlink(flag), 0);
    wait_events(f, "testsvc.ponged", "pc1", 1);
    assert_int_equal(order_count(f, "pc1"), 1);
    assert_int_equal(distinct_pongs(f, &total), 1);
    assert_int_equal(total, 1);
    stop_svc(f);
}

/* A message that does not decode, and one whose handler keeps failing, land
 * in the dead-letter stream with their reasons; later messages still flow. */
static void test_poison_goes_to_dead_letters(void **state)
{
    fixture *f = *state;
    tjs_msg *v = NULL;
    size_t n = 0;
    start_svc(f, NULL, NULL);
    assert_int_equal(
        tjs_publish_raw(&f->t, tjs_subject("test.pinged", "p1"), "\x01garbage", 8, NULL), 0);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "p2", "fail", NULL), 0);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "p3", "reject", NULL), 0);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "p4", "fine", NULL), 0);
    wait_count(f, "SAGA_DLQ", "dlq.>", 3);
    wait_events(f, "testsvc.ponged", "p4", 1);
    assert_int_equal(tjs_collect(&f->t, "SAGA_DLQ", "dlq.>", &v, &n), 0);
    assert_int_equal(n, 3);
    int undecodable = 0, exhausted = 0, rejected = 0;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].subject, "dlq.testsvc");
        /* The machine-readable cause agrees with the prose reason. */
        undecodable += strstr(v[i].reason, "undecodable") != NULL &&
                       strcmp(v[i].cause, saga_dlq_cause_name(SAGA_DLQ_UNDECODABLE)) == 0;
        exhausted += strstr(v[i].reason, "failed 3 deliveries") != NULL &&
                     strcmp(v[i].cause, saga_dlq_cause_name(SAGA_DLQ_EXHAUSTED)) == 0;
        rejected += strstr(v[i].reason, "rejected") != NULL &&
                    strcmp(v[i].cause, saga_dlq_cause_name(SAGA_DLQ_REJECTED)) == 0;
        assert_string_equal(v[i].truncated, ""); /* small: kept whole */
    }
    free(v);
    assert_int_equal(undecodable, 1);
    assert_int_equal(exhausted, 1);
    assert_int_equal(rejected, 1);
    assert_int_equal(order_count(f, "p4"), 1);
    assert_int_equal(order_count(f, "p2"), 0);
    stop_svc(f);
}

/* The broker restarts while events flow: nothing lost, nothing doubled. */
static void test_broker_restart_midstream(void **state)
{
    fixture *f = *state;
    enum { N = 200 };
    char order[32];
    size_t total;
    start_svc(f, NULL, NULL);
    /* Midstream: subscribed before the broker goes away. (Under a sanitizer
     * the restart could otherwise hit the service's start, which then
     * exits: "subscribe ...: Timeout".) */
    wait_log(f, "event=ready", 1);
    for (int i = 0; i < N; i++) {
        if (i == N / 2) {
            assert_int_equal(tsrv_restart(f->srv), 0);
        }
        snprintf(order, sizeof(order), "r%d", i);
        assert_int_equal(tjs_publish_event(&f->t, "test.pinged", order, "hi", NULL), 0);
    }
    wait_events(f, "testsvc.ponged", NULL, N);
    for (int i = 0; i < N; i += 7) {
        snprintf(order, sizeof(order), "r%d", i);
        assert_int_equal(order_count(f, order), 1);
    }
    assert_int_equal(distinct_pongs(f, &total), N);
    assert_int_equal(total, N);
    stop_svc(f);
}

/* A service that starts while the broker has no JetStream (one coming up,
 * or restarting) keeps setting up its streams and consumers, and works
 * once JetStream is there, instead of exiting. */
static void test_start_waits_for_jetstream(void **state)
{
    fixture *f = *state;
    char port[16], log[700];
    assert_true(tsrv_stop(f->srv) >= 0);
    snprintf(port, sizeof(port), "%d", tsrv_port(f->srv));
    snprintf(log, sizeof(log), "%s/plain-nats.log", tsrv_dir(f->srv));
    const char *argv[] = {SAGA_NATS_SERVER, "-a", "127.0.0.1", "-p", port, NULL};
    pid_t plain = tproc_spawn(argv, NULL, log); /* the same port, no JetStream */
    assert_true(plain > 0);
    start_svc(f, NULL, NULL);
    wait_log(f, "event=nats_setup_retry", 1);
    tproc_term(plain, 10000); /* nats-server exits 1 on SIGTERM */
    assert_int_equal(tsrv_restart(f->srv), 0);
    wait_log(f, "event=ready", 1);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "js1", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "js1", 1);
    stop_svc(f);
}

/* The event stream a service creates keeps events as long as
 * SAGA_EVENTS_MAX_AGE_MS says: what bounds the broker's memory. */
static void test_events_max_age_is_set_on_the_stream(void **state)
{
    fixture *f = *state;
    jsStreamInfo *si = NULL;
    assert_int_equal(js_DeleteStream(f->t.js, "SAGA_EVENTS", NULL, NULL), NATS_OK);
    start_svc(f, "SAGA_EVENTS_MAX_AGE_MS=180000", NULL);
    wait_log(f, "event=ready", 1);
    assert_int_equal(js_GetStreamInfo(&si, f->t.js, "SAGA_EVENTS", NULL, NULL), NATS_OK);
    assert_int_equal(si->Config->MaxAge, 180000LL * 1000000LL);
    jsStreamInfo_Destroy(si);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "age1", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "age1", 1);
    stop_svc(f);
}

/* An event that arrives before its predecessor waits, then runs; one whose
 * predecessor never comes expires into the dead-letter stream. */
static void test_park_then_release_or_expire(void **state)
{
    fixture *f = *state;
    tjs_msg *v = NULL;
    size_t n = 0;
    start_svc(f, "SAGA_PARK_TIMEOUT_MS=1500", NULL);
    assert_int_equal(tjs_publish_event(&f->t, "test.second", "k1", "", NULL), 0);
    assert_int_equal(tjs_publish_event(&f->t, "test.second", "k2", "", NULL), 0);
    wait_stat(f, "parked", 2);
    assert_int_equal(order_count(f, "k1"), 0);
    assert_int_equal(tjs_publish_event(&f->t, "test.first", "k1", "", NULL), 0);
    wait_events(f, "testsvc.ponged", "k1", 2);
    assert_int_equal(order_count(f, "k1"), 2);
    wait_count(f, "SAGA_DLQ", "dlq.>", 1);
    assert_int_equal(tjs_collect(&f->t, "SAGA_DLQ", "dlq.>", &v, &n), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0].reason, "expired"));
    assert_string_equal(v[0].cause, saga_dlq_cause_name(SAGA_DLQ_PARK_EXPIRED));
    assert_true(v[0].decoded);
    assert_string_equal(v[0].ev.order_id, "k2");
    free(v);
    assert_int_equal(order_count(f, "k2"), 0);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "unparked"), 1);
    stop_svc(f);
}

typedef struct past {
    int64_t at;
} past;

static int time_passed(void *arg)
{
    return tproc_now_ms() >= ((past *)arg)->at;
}

/* A timer set before a restart fires after it, once. */
static void test_timer_survives_restart(void **state)
{
    fixture *f = *state;
    past p;
    start_svc(f, NULL, NULL);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "t1", "timer:1500", NULL), 0);
    wait_events(f, "testsvc.ponged", "t1", 1);
    stop_svc(f);
    p.at = tproc_now_ms() + 2000; /* the timer is overdue while the service is down */
    assert_int_equal(tproc_wait_until(time_passed, &p, 10000), 0);
    assert_int_equal(count_events(f, "testsvc.fired", "t1"), 0);
    start_svc(f, NULL, NULL);
    wait_events(f, "testsvc.fired", "t1", 1);
    stop_svc(f);
    start_svc(f, NULL, NULL);
    wait_stat(f, "commits", 1);
    assert_int_equal(count_events(f, "testsvc.fired", "t1"), 1);
    stop_svc(f);
}

/* Sends a fault plan to the running service; returns its JSON answer's ok. */
static int inject(fixture *f, const char *plan)
{
    natsMsg *reply = NULL;
    int ok;
    if (natsConnection_Request(&reply, f->t.nc, "saga.ctl.testsvc.faults", plan, (int)strlen(plan),
                               5000) != NATS_OK)
        return 0;
    ok = strstr(natsMsg_GetData(reply), "\"ok\":true") != NULL;
    natsMsg_Destroy(reply);
    return ok;
}

/* Faults set at run time (handler errors, duplicate publishes, held-back
 * deliveries): every event still has exactly one effect. */
static void test_runtime_faults_keep_effects_once(void **state)
{
    fixture *f = *state;
    enum { N = 60 };
    char order[32];
    size_t total;
    start_svc(f, "SAGA_FAULTS=seed=3", NULL);
    wait_stat(f, "commits", 0);
    assert_false(inject(f, "error_rate=7"));
    assert_true(inject(f, "error_rate=0.3 dup_rate=0.5 reorder_rate=0.3 reorder_delay_ms=200"));
    for (int i = 0; i < N; i++) {
        snprintf(order, sizeof(order), "f%d", i);
        assert_int_equal(tjs_publish_event(&f->t, "test.pinged", order, "hi", NULL), 0);
    }
    wait_stat(f, "processed", N);
    /* Duplicated publishes make more messages than events; all are distinct events. */
    wait_events(f, "testsvc.ponged", NULL, N);
    assert_int_equal(distinct_pongs(f, &total), N);
    assert_true(total > N);
    assert_true(tjs_stat(&f->t, "testsvc", "faults") > 0);
    assert_true(tjs_stat(&f->t, "testsvc", "retried") > 0);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "dead_lettered"), 0);
    for (int i = 0; i < N; i++) {
        snprintf(order, sizeof(order), "f%d", i);
        assert_int_equal(order_count(f, order), 1);
    }
    assert_true(inject(f, "clear"));
    stop_svc(f);
}

/* The dead letters of stream in order; asserts the read works. */
static tjs_msg *dead_letters(fixture *f, size_t *n)
{
    tjs_msg *v = NULL;
    assert_int_equal(tjs_collect(&f->t, "SAGA_DLQ", "dlq.>", &v, n), 0);
    return v;
}

/* A message just under the broker's max payload (1 MiB by default) that
 * does not decode: its dead letter, with headers, would not fit, so its
 * body is cut; the service goes on, and after a restart nothing is stuck. */
static void test_near_max_payload_garbage_is_cut_and_dead_lettered(void **state)
{
    fixture *f = *state;
    enum { BIG = 1048512 }; /* what a probe sent: under 1 MiB, not with headers */
    size_t n = 0;
    char want[32];
    uint8_t *junk = malloc(BIG);
    assert_non_null(junk);
    for (size_t i = 0; i < BIG; i++)
        junk[i] = (uint8_t)(i * 7 + 1);
    start_svc(f, NULL, NULL);
    wait_log(f, "event=ready", 1);
    assert_int_equal(tjs_publish_raw(&f->t, tjs_subject("test.pinged", "huge1"), junk, BIG, NULL),
                     0);
    free(junk);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "after1", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "after1", 1);
    wait_count(f, "SAGA_DLQ", "dlq.>", 1);
    tjs_msg *v = dead_letters(f, &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].cause, saga_dlq_cause_name(SAGA_DLQ_UNDECODABLE));
    snprintf(want, sizeof(want), "%d", BIG);
    assert_string_equal(v[0].truncated, want);
    assert_true(v[0].len > 0 && v[0].len < BIG);
    free(v);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "publish_stalled_ms"), 0);
    stop_svc(f);
    /* Nothing left behind in the outbox: a new event flows at once. */
    start_svc(f, NULL, NULL);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "after2", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "after2", 1);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "publish_retries"), 0);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "publish_stalled_ms"), 0);
    assert_int_equal(count_msgs(f, "SAGA_DLQ", "dlq.>"), 1);
    stop_svc(f);
}

/* An event the stream refuses for good (over its max message size): the
 * outbox does not block on it; it becomes an "unpublishable" dead letter
 * and the rest of the batch, and later events, are published. */
static void test_refused_publish_becomes_a_dead_letter(void **state)
{
    fixture *f = *state;
    jsStreamInfo *si = NULL;
    size_t n = 0;
    assert_int_equal(js_GetStreamInfo(&si, f->t.js, "SAGA_EVENTS", NULL, NULL), NATS_OK);
    si->Config->MaxMsgSize = 4096;
    jsStreamInfo *up = NULL;
    assert_int_equal(js_UpdateStream(&up, f->t.js, si->Config, NULL, NULL), NATS_OK);
    jsStreamInfo_Destroy(up);
    jsStreamInfo_Destroy(si);
    start_svc(f, NULL, NULL);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "u1", "big:8000", NULL), 0);
    wait_count(f, "SAGA_DLQ", "dlq.>", 1);
    /* The same handler's small ponged went out; the big one did not. */
    wait_events(f, "testsvc.ponged", "u1", 1);
    tjs_msg *v = dead_letters(f, &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].cause, saga_dlq_cause_name(SAGA_DLQ_UNPUBLISHABLE));
    assert_true(v[0].decoded);
    assert_string_equal(v[0].ev.type, "testsvc.ponged");
    assert_string_equal(v[0].ev.order_id, "u1");
    free(v);
    /* The counters are merged after the batch's publish: the dead letter may be seen first. */
    wait_stat(f, "unpublishable", 1);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "unpublishable"), 1);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "u2", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "u2", 1);
    stop_svc(f);
    start_svc(f, NULL, NULL);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "u3", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "u3", 1);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "publish_retries"), 0);
    assert_int_equal(count_msgs(f, "SAGA_DLQ", "dlq.>"), 1);
    stop_svc(f);
}

/* An emit that could not fit the broker's max payload is refused in the
 * handler (SAGA_ETOOBIG, logged): it never reaches the outbox. */
static void test_emit_over_max_payload_is_refused(void **state)
{
    fixture *f = *state;
    size_t n = 0;
    assert_int_equal(tsrv_restart_max_payload(f->srv, 65536), 0);
    start_svc(f, NULL, NULL);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "e1", "big:100000", NULL), 0);
    wait_log(f, "event=emit_refused", 1);
    /* The handler fails on every delivery, so the event is dead-lettered. */
    wait_count(f, "SAGA_DLQ", "dlq.>", 1);
    tjs_msg *v = dead_letters(f, &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].cause, saga_dlq_cause_name(SAGA_DLQ_EXHAUSTED));
    assert_non_null(strstr(v[0].reason, saga_strerror(SAGA_ETOOBIG)));
    free(v);
    assert_true(tjs_stat(&f->t, "testsvc", "too_big") >= 1);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "e2", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "e2", 1);
    assert_int_equal(count_events(f, "testsvc.ponged", "e1"), 0);
    assert_int_equal(tjs_stat(&f->t, "testsvc", "publish_retries"), 0);
    stop_svc(f);
}

/* Someone deletes the service's durable consumer while it runs: the
 * service notices, recreates it (loudly) and receives events again. */
static void test_deleted_consumer_is_recreated(void **state)
{
    fixture *f = *state;
    start_svc(f, NULL, NULL);
    wait_log(f, "event=ready", 1);
    assert_int_equal(js_DeleteConsumer(f->t.js, "SAGA_EVENTS", "testsvc_test_pinged", NULL, NULL),
                     NATS_OK);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "dc1", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "dc1", 1);
    wait_log(f, "event=consumer_recreated consumer=testsvc_test_pinged", 1);
    assert_true(tjs_stat(&f->t, "testsvc", "consumers_recreated") >= 1);
    assert_int_equal(order_count(f, "dc1"), 1);
    stop_svc(f);
}

/* Someone deletes the event stream while the service runs: its next emit
 * does not retry forever; the stream and the consumers come back. */
static void test_deleted_stream_is_recreated(void **state)
{
    fixture *f = *state;
    natsMsg *reply = NULL;
    start_svc(f, NULL, NULL);
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "ds0", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "ds0", 1);
    assert_int_equal(js_DeleteStream(f->t.js, "SAGA_EVENTS", NULL, NULL), NATS_OK);
    /* The reply comes after the emitted event is published. */
    assert_int_equal(
        natsConnection_Request(&reply, f->t.nc, "saga.cmd.testsvc.emit", "ds1", 3, DEADLINE_MS),
        NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(reply), 2);
    natsMsg_Destroy(reply);
    wait_events(f, "testsvc.ponged", "ds1", 1);
    wait_log(f, "event=stream_recreated stream=SAGA_EVENTS", 1);
    assert_true(tjs_stat(&f->t, "testsvc", "streams_recreated") >= 1);
    /* Its consumers went with the stream; they are back too. */
    assert_int_equal(tjs_publish_event(&f->t, "test.pinged", "ds2", "hi", NULL), 0);
    wait_events(f, "testsvc.ponged", "ds2", 1);
    assert_int_equal(order_count(f, "ds2"), 1);
    stop_svc(f);
}

/* Publishes test.pinged for order with the given producer on subject. */
static void publish_as(fixture *f, const char *producer, const char *subject, const char *order)
{
    saga_event ev;
    uint8_t *buf;
    size_t len;
    memset(&ev, 0, sizeof(ev));
    saga_ulid_new(ev.event_id);
    snprintf(ev.type, sizeof(ev.type), "test.pinged");
    ev.schema_version = 1;
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", order);
    snprintf(ev.producer, sizeof(ev.producer), "%s", producer);
    ev.sequence = 1;
    ev.time_ms = 1700000000000LL;
    assert_int_equal(saga_event_encode(&ev, &buf, &len), SAGA_OK);
    assert_int_equal(tjs_publish_raw(&f->t, subject, buf, len, ev.event_id), 0);
    free(buf);
}

/* An event whose producer is not the one its type names, or whose subject
 * disagrees with its envelope, is dead-lettered as forbidden, unhandled. */
static void test_forged_producer_or_subject_is_forbidden(void **state)
{
    fixture *f = *state;
    size_t n = 0;
    start_svc(f, NULL, NULL);
    publish_as(f, "mallory", tjs_subject("test.pinged", "fp1"), "fp1");
    /* Another order's subject: fp2's partition (11) is not fp3's (8). */
    assert_true(saga_partition_of("fp2") != saga_partition_of("fp3"));
    publish_as(f, "test", tjs_subject("test.pinged", "fp2"), "fp3");
    publish_as(f, "test", tjs_subject("test.pinged", "fp4"), "fp4");
    wait_events(f, "testsvc.ponged", "fp4", 1);
    wait_count(f, "SAGA_DLQ", "dlq.>", 2);
    tjs_msg *v = dead_letters(f, &n);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(v[i].cause, saga_dlq_cause_name(SAGA_DLQ_FORBIDDEN));
    assert_non_null(strstr(v[0].reason, "mallory"));
    assert_non_null(strstr(v[1].reason, tjs_subject("test.pinged", "fp2")));
    free(v);
    assert_int_equal(order_count(f, "fp1"), 0);
    assert_int_equal(order_count(f, "fp3"), 0);
    assert_int_equal(order_count(f, "fp4"), 1);
    stop_svc(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duplicate_has_one_effect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_in_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine_crash_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine_crash_after_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine_crash_after_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acked_means_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_survive_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_precommit_abandons_the_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_goes_to_dead_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_restart_midstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_waits_for_jetstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_max_age_is_set_on_the_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_then_release_or_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_faults_keep_effects_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_near_max_payload_garbage_is_cut_and_dead_lettered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_publish_becomes_a_dead_letter, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_emit_over_max_payload_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_consumer_is_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_stream_is_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_producer_or_subject_is_forbidden, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nats_CloseAndWait(TSRV_CLOSE_WAIT_MS);
    return rc;
}
