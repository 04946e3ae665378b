/* test_fleet.c - the fleet launcher (tools/fleet): the library as the tests and the
 * benchmark use it (a broker and a service, tied to the test, killed, restarted, seen by
 * status, everything stopped after), and saga-fleet as an operator uses it: a
 * participant given by path, a gate as configuration, restart with the same settings,
 * down leaving nothing running; a participant given by path that no tool names shows
 * up in sagactl get, faults and stats. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <jansson.h>

#include "fleet.h"
#include "proc.h"
#include "thttp.h"
#include "tjs.h"

#define SAGA_FLEET SAGA_BUILD_DIR "/tools/saga-fleet"
#define SAGACTL SAGA_BUILD_DIR "/tools/sagactl"
#define PROMETHEUS_EXE "/usr/bin/prometheus"
#define SKIP_RETURN_CODE 77
#define SERVICE_EXE(name) SAGA_BUILD_DIR "/services/saga-" name
#define READY_MS 60000
#define STOP_MS 30000
#define RUN_MS 120000

static char OUT[1 << 16];

/* Reads at most cap - 1 bytes of path into buf, NUL-terminated; returns how many
 * (0 when it cannot be read). */
static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = fp != NULL ? fread(buf, 1, cap - 1, fp) : 0;

    if (fp != NULL)
        fclose(fp);
    buf[n] = '\0';
    return n;
}

/* Whether a process with this pid runs. A zombie does not: a stopped detached process
 * is the zombie of whoever adopted it until that one reaps it. */
static int exists(pid_t pid)
{
    char path[64], buf[512];
    const char *rp;

    if (pid <= 0 || kill(pid, 0) != 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (slurp(path, buf, sizeof(buf)) == 0)
        return 0;
    rp = strrchr(buf, ')');
    return rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* The value of KEY in the environment of process pid, into buf; "" when absent. */
static const char *environ_of(pid_t pid, const char *key, char *buf, size_t cap)
{
    char path[64], data[1 << 16];
    size_t klen = strlen(key);
    ssize_t n;
    FILE *fp;

    buf[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return buf;
    n = (ssize_t)fread(data, 1, sizeof(data) - 1, fp);
    fclose(fp);
    data[n > 0 ? n : 0] = '\0';
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(data + i) + 1) {
        if (strncmp(data + i, key, klen) == 0 && data[i + (ssize_t)klen] == '=')
            snprintf(buf, cap, "%s", data + i + klen + 1);
    }
    return buf;
}

/* ---- the library ---------------------------------------------------------------- */

static void test_library_broker_and_service(void **state)
{
    fleet_opts o = {.temp_prefix = "saga-test", .flags = FLEET_TIED};
    fleet_broker_opts b = {.max_file_mb = 1024};
    char err[4400], url[128], url_env[160], data_env[4200], home[4096];
    fleet *f = NULL, *view = NULL;
    fleet_opts vo = {0};
    fleet_status st, nats;
    pid_t first, second, broker;
    struct stat sb;

    (void)state;
    assert_int_equal(fleet_create(&f, &o, err, sizeof(err)), 0);
    snprintf(home, sizeof(home), "%s", fleet_home(f));
    assert_int_equal(fleet_add_broker(f, "nats", &b, err, sizeof(err)), 0);
    if (fleet_start_ready(f, "nats", READY_MS, err, sizeof(err)) != 0)
        fail_msg("broker: %s", err);
    assert_non_null(fleet_url(f, NULL, url, sizeof(url)));
    snprintf(url_env, sizeof(url_env), "SAGA_NATS_URL=%s", url);
    snprintf(data_env, sizeof(data_env), "SAGA_DATA_DIR=%s/data/payment", home);
    const char *env[] = {url_env, data_env, NULL};
    assert_int_equal(
        fleet_add_proc(f, "payment", SERVICE_EXE("payment"), NULL, env, err, sizeof(err)), 0);
    if (fleet_start_ready(f, "payment", READY_MS, err, sizeof(err)) != 0)
        fail_msg("payment: %s", err);

    /* Status tells what runs, with its pid and the broker's port. */
    assert_int_equal(fleet_get_status(f, "nats", &nats), 0);
    assert_true(nats.alive);
    assert_true(nats.port > 0);
    assert_non_null(strstr(url, ":"));
    assert_int_equal(fleet_get_status(f, "payment", &st), 0);
    assert_true(st.alive);
    first = st.pid;
    assert_true(exists(first));
    broker = nats.pid;

    /* Another handle on the same home (as saga-fleet status is) sees the same. */
    vo.home = home;
    vo.flags = FLEET_DETACHED;
    assert_int_equal(fleet_create(&view, &vo, err, sizeof(err)), 0);
    assert_int_equal(fleet_count(view), 2);
    assert_string_equal(fleet_name(view, 0), "nats");
    assert_string_equal(fleet_name(view, 1), "payment");
    assert_int_equal(fleet_get_status(view, "payment", &st), 0);
    assert_true(st.alive);
    assert_int_equal(st.pid, first);

    /* A crash: gone, and status says so. */
    assert_int_equal(fleet_kill(f, "payment"), 0);
    assert_false(exists(first));
    assert_int_equal(fleet_get_status(f, "payment", &st), 0);
    assert_false(st.alive);
    assert_int_equal(fleet_get_status(view, "payment", &st), 0);
    assert_false(st.alive);

    /* Back with the same settings, a new process. */
    if (fleet_restart(f, "payment", STOP_MS, READY_MS, err, sizeof(err)) != 0)
        fail_msg("restart: %s", err);
    assert_int_equal(fleet_get_status(f, "payment", &st), 0);
    assert_true(st.alive);
    second = st.pid;
    assert_int_not_equal(second, first);
    environ_of(second, "SAGA_DATA_DIR", err, sizeof(err));
    assert_string_equal(err, data_env + strlen("SAGA_DATA_DIR="));
    fleet_destroy(view, 1); /* a detached view leaves the fleet running */
    view = NULL;
    assert_true(exists(second));

    /* Everything stops cleanly, and the temporary home goes. */
    assert_int_equal(fleet_stop_all(f, STOP_MS, STOP_MS), 0);
    assert_false(exists(second));
    assert_false(exists(broker));
    fleet_destroy(f, 0);
    assert_int_not_equal(stat(home, &sb), 0);
}

static void test_library_tied_and_detached_children(void **state)
{
    const char *argv[] = {"/bin/sleep", "60", NULL};
    pid_t tied, detached;

    (void)state;
    /* A tied child stays in the test's session; a detached one has its own. */
    tied = fleet_spawn(argv, NULL, NULL, FLEET_TIED);
    detached = fleet_spawn(argv, NULL, NULL, FLEET_DETACHED);
    assert_true(tied > 0);
    assert_true(detached > 0);
    assert_int_equal(getsid(tied), getsid(0));
    assert_int_equal(getsid(detached), detached);
    assert_int_equal(fleet_pid_kill(tied), 0);
    assert_int_equal(fleet_pid_kill(detached), 0);
}

/* Of two settings with the same name, the later one reaches the child: a test or a
 * launcher puts its own on top of the defaults. */
static void test_library_later_setting_wins(void **state)
{
    /* printenv reads it with getenv, which finds the first of two; a shell would take
     * the last by itself. */
    const char *argv[] = {"/usr/bin/printenv", "SAGA_X", NULL};
    const char *env[] = {"SAGA_X=first", "SAGA_X=second", NULL};
    char dir[64] = "/tmp/saga-test-XXXXXX", log[128], out[64];
    int status = -1;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(log, sizeof(log), "%s/out", dir);
    pid_t pid = fleet_spawn(argv, env, log, FLEET_TIED);
    assert_true(pid > 0);
    assert_int_equal(fleet_pid_wait(pid, READY_MS, &status), 0);
    slurp(log, out, sizeof(out));
    unlink(log);
    rmdir(dir);
    assert_string_equal(out, "second\n");
}

/* ---- saga-fleet ----------------------------------------------------------------- */

typedef struct cli {
    char *home;
    char url_env[96];
    char home_env[4200];
    const char *extra_env; /* one more "K=V" for the next run, or NULL */
    int no_url;            /* the next runs without SAGA_NATS_URL: as a user's shell */
} cli;

static cli C;

static int cli_setup(void **state)
{
    int port = fleet_free_port();

    (void)state;
    /* saga-fleet chooses the replicas itself; a test cluster's setting
     * (tsrv_start_cluster) must not reach its single server. */
    unsetenv("SAGA_REPLICAS");
    C.home = fleet_mkdtemp("saga-test");
    if (C.home == NULL || port < 0)
        return -1;
    snprintf(C.url_env, sizeof(C.url_env), "SAGA_NATS_URL=nats://127.0.0.1:%d", port);
    snprintf(C.home_env, sizeof(C.home_env), "SAGA_HOME=%s", C.home);
    return 0;
}

/* Runs bin (saga-fleet, sagactl) with ARGS, the test's home and URL; its stdout into
 * OUT, stderr to the test's. Returns its exit status, or -1. */
static int run(const char *bin, const char *const *args)
{
    char out_env[4200];
    const char *argv[24];
    int n = 0, status = 0;

    snprintf(out_env, sizeof(out_env), "OUT=%s/cli.out", C.home);
    argv[n++] = "/bin/sh";
    argv[n++] = "-c";
    argv[n++] = C.no_url ? "unset SAGA_NATS_URL; exec \"$@\" >\"$OUT\" </dev/null"
                         : "exec \"$@\" >\"$OUT\" </dev/null";
    argv[n++] = "sh";
    argv[n++] = bin;
    for (int i = 0; args[i] != NULL && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    /* The gateway on a free port: 8080 may be another fleet's. */
    const char *env[] = {C.url_env,   C.home_env, out_env, "SAGA_GATEWAY_ADDR=127.0.0.1:0",
                         C.extra_env, NULL};
    OUT[0] = '\0';
    pid_t pid = tproc_spawn(argv, env, NULL);
    if (pid <= 0)
        return -1;
    if (tproc_wait(pid, RUN_MS, &status) != 0) {
        tproc_kill(pid);
        return -1;
    }
    FILE *fp = fopen(out_env + 4, "r");
    size_t got = fp != NULL ? fread(OUT, 1, sizeof(OUT) - 1, fp) : 0;
    OUT[got] = '\0';
    if (fp != NULL)
        fclose(fp);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define RUN(...) run(SAGA_FLEET, (const char *const[]){__VA_ARGS__, NULL})
#define CTL(...) run(SAGACTL, (const char *const[]){__VA_ARGS__, NULL})

static int cli_teardown(void **state)
{
    (void)state;
    /* Whatever the test did, nothing stays running. */
    RUN("down");
    tproc_rmrf(C.home);
    free(C.home);
    return 0;
}

/* After a test that may fail midway: its fleet does not stay up for the next. */
static int cli_down(void **state)
{
    (void)state;
    RUN("down");
    return 0;
}

/* The pid of NAME in the last `status --json` output, or -1. */
static pid_t status_pid(const char *name)
{
    char pat[96];
    const char *p;

    snprintf(pat, sizeof(pat), "{\"name\":\"%s\",\"pid\":", name);
    p = strstr(OUT, pat);
    return p != NULL ? (pid_t)strtol(p + strlen(pat), NULL, 10) : -1;
}

static int status_up(const char *name)
{
    char pat[96];
    const char *p;

    snprintf(pat, sizeof(pat), "{\"name\":\"%s\",", name);
    p = strstr(OUT, pat);
    return p != NULL && strncmp(strstr(p, "\"state\":"), "\"state\":\"up\"", 12) == 0;
}

/* 1 once `status --json` lists the instance *arg of testsvc, which the fleet
 * did not start, as joined. */
static int outsider_joined(void *arg)
{
    char want[128];
    snprintf(want, sizeof(want), "{\"name\":\"testsvc\",\"pid\":%d,\"state\":\"joined\"",
             (int)*(pid_t *)arg);
    return RUN("status", "--json") == 0 && strstr(OUT, want) != NULL;
}

static void test_cli_participant_by_path_and_gate(void **state)
{
    char fraud_path[4096], buf[256];
    pid_t shipping, order, fraud, nats;

    (void)state;
    snprintf(fraud_path, sizeof(fraud_path), "%s", SERVICE_EXE("fraud"));
    /* A gate on a participant the fleet does not run is refused before anything starts. */
    assert_int_equal(RUN("up", "--gate", "shipping=fraud"), 2);
    assert_int_equal(RUN("status", "--json"), 1);
    assert_false(status_up("nats"));

    assert_int_equal(RUN("up", "--with", fraud_path, "--gate", "shipping=fraud"), 0);
    assert_int_equal(RUN("status", "--json"), 0);
    assert_true(status_up("fraud")); /* named after the file, without saga- */
    assert_true(status_up("shipping"));
    fraud = status_pid("fraud");
    shipping = status_pid("shipping");
    order = status_pid("order");
    nats = status_pid("nats");
    assert_true(exists(fraud));
    /* Every identity was made before the broker started: one made after reaches it by
     * a reload, and a process that connects before the reload is refused. */
    char log[4300], text[1 << 16];
    snprintf(log, sizeof(log), "%s/logs/nats.log", C.home);
    assert_true(slurp(log, text, sizeof(text)) > 0);
    assert_null(strstr(text, "Reloaded: authorization"));
    /* The gate is shipping's setting, and only shipping's. */
    assert_string_equal(environ_of(shipping, "SAGA_GATES", buf, sizeof(buf)), "fraud");
    assert_string_equal(environ_of(order, "SAGA_GATES", buf, sizeof(buf)), "");
    /* The order service hears vetoes from the participants of --with, no one else. */
    assert_string_equal(environ_of(order, "SAGA_VETOERS", buf, sizeof(buf)), "fraud");
    /* Each runs as its own identity, its credentials readable by the owner only. */
    assert_non_null(
        strstr(environ_of(fraud, "SAGA_NATS_CREDS", buf, sizeof(buf)), "/auth/fraud.creds"));
    struct stat st;
    assert_int_equal(stat(buf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A crash, then restart: the same settings, without rewriting anything by hand. */
    assert_int_equal(RUN("kill", "shipping"), 0);
    assert_false(exists(shipping));
    assert_int_equal(RUN("status", "--json"), 1);
    assert_false(status_up("shipping"));
    assert_int_equal(RUN("restart", "shipping"), 0);
    assert_int_equal(RUN("status", "--json"), 0);
    assert_int_not_equal(status_pid("shipping"), shipping);
    shipping = status_pid("shipping");
    assert_string_equal(environ_of(shipping, "SAGA_GATES", buf, sizeof(buf)), "fraud");

    /* A plain up after a crash starts what is missing with its own settings: the
     * gate stays. */
    assert_int_equal(RUN("kill", "shipping"), 0);
    assert_int_equal(RUN("up"), 0);
    assert_int_equal(RUN("status", "--json"), 0);
    shipping = status_pid("shipping");
    assert_string_equal(environ_of(shipping, "SAGA_GATES", buf, sizeof(buf)), "fraud");

    /* A participant the fleet did not start (another language, another
     * machine: here the delivery tests' small service) shows up in status as
     * soon as it answers discovery. */
    char data_env[4200], url_env[300], creds_env[4200];
    snprintf(data_env, sizeof(data_env), "SAGA_DATA_DIR=%s/data/outsider", C.home);
    snprintf(url_env, sizeof(url_env), "%s", C.url_env);
    /* The fleet authenticates: the outsider asks it for an identity of its own. */
    assert_int_equal(RUN("identity", "testsvc"), 0);
    snprintf(creds_env, sizeof(creds_env), "SAGA_NATS_CREDS=%.*s", (int)strcspn(OUT, "\n"), OUT);
    const char *oargv[] = {SAGA_TESTSVC, NULL};
    const char *oenv[] = {url_env, data_env, creds_env, NULL};
    char olog[4200];
    snprintf(olog, sizeof(olog), "%s/outsider.log", C.home);
    pid_t outsider = tproc_spawn(oargv, oenv, olog);
    assert_true(outsider > 0);
    assert_int_equal(tproc_wait_until(outsider_joined, &outsider, 60000), 0);
    assert_int_equal(tproc_term(outsider, 30000), 0);

    /* up on a running fleet leaves it alone. */
    assert_int_equal(RUN("up"), 0);
    assert_non_null(strstr(OUT, "already up"));

    /* down: nothing left running, the participant included. */
    assert_int_equal(RUN("down"), 0);
    assert_false(exists(shipping));
    assert_false(exists(fraud));
    assert_false(exists(order));
    assert_false(exists(nats));
    assert_int_equal(RUN("status", "--json"), 1);
    assert_false(status_up("nats"));
    assert_null(strstr(OUT, "\"fraud\""));
}

/* OUT, the last command's --json answer, parsed; fails the test when it is no JSON. */
static json_t *out_json(void)
{
    json_error_t err;
    json_t *v = json_loads(OUT, 0, &err);
    if (v == NULL)
        fail_msg("not JSON (%s): %s", err.text, OUT);
    return v;
}

/* 1 once `sagactl get ORDER --json` shows testsvc's view of the order with one ping. */
static int testsvc_saw_ping(void *order_id)
{
    const char *const args[] = {"get", order_id, "--json", NULL};
    if (run(SAGACTL, args) != 0)
        return 0;
    json_t *v = out_json();
    json_t *view = json_object_get(json_object_get(v, "services"), "testsvc");
    int saw = json_integer_value(json_object_get(view, "pings")) == 1 &&
              json_is_true(json_object_get(view, "found"));
    json_decref(v);
    return saw;
}

/* A participant started by path that no tool names in code (the delivery tests' small
 * service): sagactl finds it on saga.discover, so get shows its view of an order,
 * faults its plan and stats its counters, as for the saga's own. */
static void test_cli_participant_by_path_in_sagactl(void **state)
{
    char order_id[64];
    tjs t;

    (void)state;
    assert_int_equal(RUN("up", "--with", SAGA_TESTSVC), 0);
    assert_int_equal(RUN("status", "--json"), 0);
    assert_true(status_up("testsvc")); /* named after the file, without saga- */

    /* An order (stock or not: any order the saga knows), and one ping about it. */
    assert_int_equal(CTL("place", "--customer", "ada", "--item", "PATH:1:100", "--json"), 0);
    json_t *placed = out_json();
    snprintf(order_id, sizeof(order_id), "%s",
             json_string_value(json_object_get(placed, "order_id")));
    json_decref(placed);
    assert_true(saga_valid_order_id(order_id));
    assert_int_equal(tjs_connect_home(&t, C.url_env + strlen("SAGA_NATS_URL="), C.home), 0);
    assert_int_equal(tjs_publish_event(&t, "test.pinged", order_id, "ping", NULL), 0);
    tjs_close(&t);

    /* get: its view of the order, beside the saga's five. */
    assert_int_equal(tproc_wait_until(testsvc_saw_ping, order_id, READY_MS), 0);
    json_t *got = out_json();
    assert_non_null(json_object_get(json_object_get(got, "services"), "order"));
    json_decref(got);

    /* faults: its plan, changed by inject like any participant's. */
    assert_int_equal(CTL("faults", "--json"), 0);
    json_t *plans = out_json();
    assert_true(json_is_object(json_object_get(plans, "testsvc")));
    json_decref(plans);
    assert_int_equal(CTL("inject", "testsvc", "dup_rate=0.25"), 0);
    assert_int_equal(CTL("faults", "--json"), 0);
    plans = out_json();
    json_t *dup_rate = json_object_get(json_object_get(plans, "testsvc"), "dup_rate");
    assert_true(json_is_number(dup_rate) && json_number_value(dup_rate) == 0.25);
    json_decref(plans);

    /* stats: its counters, the ping among them. */
    assert_int_equal(CTL("stats", "--json"), 0);
    json_t *stats = out_json();
    json_t *mine = json_object_get(json_object_get(stats, "services"), "testsvc");
    assert_true(json_is_object(mine));
    assert_true(json_integer_value(json_object_get(mine, "processed")) >= 1);
    json_decref(stats);

    assert_int_equal(RUN("down"), 0);
    assert_int_equal(RUN("status", "--json"), 1);
    assert_null(strstr(OUT, "\"testsvc\""));
}

/* The leader of stream in the last `status --json` output into buf ("" when none). */
static const char *status_stream_leader(const char *stream, char *buf, size_t cap)
{
    char pat[96];
    const char *p;

    buf[0] = '\0';
    snprintf(pat, sizeof(pat), "{\"name\":\"%s\",\"leader\":\"", stream);
    p = strstr(OUT, pat);
    if (p != NULL)
        snprintf(buf, cap, "%.*s", (int)strcspn(p + strlen(pat), "\""), p + strlen(pat));
    return buf;
}

typedef struct leader_wait {
    const char * not ;
    char got[32];
} leader_wait;

/* status names a live leader of SAGA_EVENTS other than w->not. */
static int other_leader(void *arg)
{
    leader_wait *w = arg;

    RUN("status", "--json");
    status_stream_leader("SAGA_EVENTS", w->got, sizeof(w->got));
    return w->got[0] != '\0' && strcmp(w->got, w->not ) != 0;
}

static void test_cli_cluster(void **state)
{
    char buf[512], leader[32];
    pid_t order;

    (void)state;
    assert_int_equal(RUN("up", "--cluster", "2"), 2); /* no majority survives a loss */
    assert_int_equal(RUN("up", "--cluster", "3"), 0);
    assert_int_equal(RUN("status", "--json"), 0);
    assert_true(status_up("nats-1"));
    assert_true(status_up("nats-2"));
    assert_true(status_up("nats-3"));
    assert_false(status_up("nats"));
    assert_non_null(strstr(OUT, "\"meta_leader\":\"nats-"));
    assert_non_null(strstr(OUT, "\"replicas\":3"));
    /* Each node reports its own copy of each stream. */
    assert_non_null(strstr(OUT, "\"copies\":[{\"node\":\"nats-1\",\"messages\":"));
    /* The services know every node and keep three copies of the streams. */
    order = status_pid("order");
    environ_of(order, "SAGA_NATS_URL", buf, sizeof(buf));
    assert_non_null(strchr(strchr(buf, ',') + 1, ','));
    assert_string_equal(environ_of(order, "SAGA_REPLICAS", buf, sizeof(buf)), "3");

    /* The node leading the event stream crashes: another takes over, the services stay
     * up, and the node comes back. */
    status_stream_leader("SAGA_EVENTS", leader, sizeof(leader));
    assert_int_equal(strncmp(leader, "nats-", 5), 0);
    assert_int_equal(RUN("kill", leader), 0);
    leader_wait w = {leader, ""};
    assert_int_equal(tproc_wait_until(other_leader, &w, 60000), 0);
    assert_false(status_up(leader));
    assert_true(status_up("order"));
    assert_int_equal(RUN("restart", leader), 0);
    assert_int_equal(RUN("status", "--json"), 0);
    assert_true(status_up(leader));
    assert_int_equal(status_pid("order"), order);

    /* The nodes listen on free ports; sagactl, told only SAGA_HOME, finds them. */
    C.no_url = 1;
    assert_int_equal(CTL("stock", "set", "A1", "5"), 0);
    C.no_url = 0;
    assert_non_null(strstr(OUT, "A1: available=5"));

    /* A plain up keeps the cluster; down stops it all. */
    assert_int_equal(RUN("up"), 0);
    assert_non_null(strstr(OUT, "already up"));
    assert_int_equal(RUN("down"), 0);
    assert_false(exists(order));
}

/* ---- a hand-over that crashed, finished by up ------------------------------------ */

/* The sum of SKU's available, held and committed units (sagactl stock get, over the
 * instances), or -1. */
static long long stock_units(const char *sku)
{
    long long a = -1, h = -1, c = -1;
    const char *p;
    if (CTL("stock", "get", sku, "--json") != 0)
        return -1;
    if ((p = strstr(OUT, "\"available\":")) != NULL)
        a = strtoll(p + 12, NULL, 10);
    if ((p = strstr(OUT, "\"held\":")) != NULL)
        h = strtoll(p + 7, NULL, 10);
    if ((p = strstr(OUT, "\"committed\":")) != NULL)
        c = strtoll(p + 12, NULL, 10);
    return a < 0 || h < 0 || c < 0 ? -1 : a + h + c;
}

/* 1 once `sagactl get ORDER` (*arg) shows it CONFIRMED. */
static int order_confirmed(void *arg)
{
    return CTL("get", (const char *)arg, "--json") == 0 &&
           strstr(OUT, "\"state\":\"CONFIRMED\"") != NULL;
}

/* Places an order of one unit of sku and waits until it is confirmed. */
static void place_confirmed(const char *sku)
{
    char item[64], id[64];
    snprintf(item, sizeof(item), "%s:1:100", sku);
    assert_int_equal(CTL("place", "--customer", "hana", "--item", item), 0);
    snprintf(id, sizeof(id), "%.*s", (int)strcspn(OUT, "\n"), OUT);
    assert_int_equal(tproc_wait_until(order_confirmed, id, 60000), 0);
}

/* saga-fleet dies half way through inventory's hand-over from its only instance to
 * two (the records moved, the stock not re-split; SAGA_FLEET_CRASH_AT): the plan
 * stays. That hand-over changes the consumers too, so up finishes it once the broker
 * runs, then starts the rest: two instances, the stock conserved, orders confirmed. */
static void test_cli_handover_crash_finished_by_up(void **state)
{
    char plan[4300];
    (void)state;
    assert_int_equal(RUN("up"), 0);
    assert_int_equal(CTL("stock", "set", "HAND", "50"), 0);
    place_confirmed("HAND");
    assert_int_equal(stock_units("HAND"), 50);

    C.extra_env = "SAGA_FLEET_CRASH_AT=after_moves";
    int rc = RUN("scale", "inventory", "2");
    C.extra_env = NULL;
    assert_int_equal(rc, -1); /* killed */
    snprintf(plan, sizeof(plan), "%s/handover-inventory.json", C.home);
    assert_int_equal(access(plan, F_OK), 0);

    assert_int_equal(RUN("up"), 0);
    assert_non_null(strstr(OUT, "finishing it once the broker runs"));
    assert_non_null(strstr(OUT, "finished the unfinished hand-over"));
    assert_non_null(strstr(OUT, "inventory: 1 -> 2 instances"));
    assert_int_equal(access(plan, F_OK), -1);
    assert_int_equal(RUN("status", "--json"), 0);
    assert_true(status_up("inventory-1"));
    assert_true(status_up("inventory-2"));
    assert_false(status_up("inventory"));
    assert_int_equal(stock_units("HAND"), 50);
    place_confirmed("HAND");
    assert_int_equal(stock_units("HAND"), 50);
    assert_int_equal(RUN("down"), 0);
}

/* ---- saga-fleet up --with prometheus -------------------------------------------- */

static const char *const SCRAPED[] = {"order",    "payment",      "inventory",
                                      "shipping", "notification", "history"};
#define NSCRAPED (sizeof(SCRAPED) / sizeof(SCRAPED[0]))

/* The port of Prometheus's web UI in the last `status --json` output, or -1. */
static int status_prometheus_port(void)
{
    static const char pat[] = "\"prometheus\":{\"web\":\"http://127.0.0.1:";
    const char *p = strstr(OUT, pat);
    return p != NULL ? (int)strtol(p + strlen(pat), NULL, 10) : -1;
}

/* The metrics address of NAME in the last `status --json` output into buf ("" when none). */
static const char *status_metrics(const char *name, char *buf, size_t cap)
{
    char pat[96];
    const char *p, *m;

    buf[0] = '\0';
    snprintf(pat, sizeof(pat), "{\"name\":\"%s\",", name);
    p = strstr(OUT, pat);
    m = p != NULL ? strstr(p, "\"metrics\":\"") : NULL;
    if (m != NULL && m < strchr(p, '}'))
        snprintf(buf, cap, "%.*s", (int)strcspn(m + 11, "\""), m + 11);
    return buf;
}

/* 1 once Prometheus (its port at *arg) answers saga_events_handled_total with a series
 * of every service: it found them all in the fleet's targets and scraped them. */
static int every_service_scraped(void *arg)
{
    char *resp = thttp_get(*(int *)arg, "/api/v1/query?query=saga_events_handled_total");
    json_t *doc = json_loads(thttp_body(resp) != NULL ? thttp_body(resp) : "", 0, NULL);
    json_t *series;
    size_t i, found = 0;

    json_array_foreach(json_object_get(json_object_get(doc, "data"), "result"), i, series)
    {
        const char *svc =
            json_string_value(json_object_get(json_object_get(series, "metric"), "service"));
        for (size_t k = 0; svc != NULL && k < NSCRAPED; k++)
            found |= (size_t)(strcmp(svc, SCRAPED[k]) == 0) << k;
    }
    json_decref(doc);
    free(resp);
    return found == (1u << NSCRAPED) - 1;
}

/* Whether the targets file names addr (quoted: 127.0.0.1:3385 is no 127.0.0.1:33851). */
static int targets_name(const char *addr)
{
    char path[4200], buf[1 << 14];

    snprintf(path, sizeof(path), "%s/prometheus/targets.json", C.home);
    slurp(path, buf, sizeof(buf));
    snprintf(path, sizeof(path), "\"%s\"", addr);
    return strstr(buf, path) != NULL;
}

static void test_cli_prometheus(void **state)
{
    char buf[64], old[64];
    pid_t prom;
    int port;

    (void)state;
    assert_int_equal(RUN("up", "--with", "prometheus"), 0);
    assert_int_equal(RUN("status", "--json"), 0);
    assert_true(status_up("prometheus"));
    prom = status_pid("prometheus");
    port = status_prometheus_port();
    assert_true(port > 0);
    /* Every service serves metrics, on an address the targets file names. */
    for (size_t k = 0; k < NSCRAPED; k++) {
        if (status_metrics(SCRAPED[k], buf, sizeof(buf))[0] == '\0')
            fail_msg("status names no metrics address for %s:\n%s", SCRAPED[k], OUT);
        assert_true(targets_name(buf));
    }
    assert_int_equal(CTL("stock", "set", "PROM1", "1000"), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(CTL("place", "--customer", "prom", "--item", "PROM1:1:100"), 0);
    if (tproc_wait_until(every_service_scraped, &port, 120000) != 0)
        fail_msg("Prometheus at port %d did not report saga_events_handled_total of every "
                 "service within 120 s",
                 port);

    /* A restarted service listens on a new port: the targets follow. */
    status_metrics("payment", old, sizeof(old));
    assert_int_equal(RUN("restart", "payment"), 0);
    assert_int_equal(RUN("status", "--json"), 0);
    status_metrics("payment", buf, sizeof(buf));
    assert_string_not_equal(buf, "");
    assert_true(strcmp(buf, old) == 0 || !targets_name(old));
    assert_true(targets_name(buf));

    /* down stops Prometheus too. */
    assert_int_equal(RUN("down"), 0);
    assert_false(exists(prom));
}

static void test_cli_usage(void **state)
{
    (void)state;
    assert_int_equal(RUN("up", "--help"), 0);
    assert_non_null(strstr(OUT, "--gate SVC=PARTICIPANT"));
    assert_int_equal(RUN("status", "--bogus"), 2);
    assert_int_equal(RUN("kill", "nobody"), 2);
    assert_int_equal(RUN("up", "--with", "/nonexistent/saga-x"), 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest prometheus[] = {
        cmocka_unit_test(test_cli_prometheus),
    };
    /* test_prometheus: the same binary, with the real Prometheus server when it is
     * installed (deploy/setup installs it), skipped otherwise. */
    if (argc > 1 && strcmp(argv[1], "prometheus") == 0) {
        unsetenv("SAGA_GATES");
        unsetenv("SAGA_METRICS_ADDR");
        if (access(PROMETHEUS_EXE, X_OK) != 0) {
            printf("SKIP: no %s (the Debian package prometheus)\n", PROMETHEUS_EXE);
            return SKIP_RETURN_CODE;
        }
        return cmocka_run_group_tests_name("prometheus", prometheus, cli_setup, cli_teardown);
    }
    /* The gates are the test's: none comes from the environment of whoever runs it. */
    unsetenv("SAGA_GATES");
    const struct CMUnitTest lib[] = {
        cmocka_unit_test(test_library_broker_and_service),
        cmocka_unit_test(test_library_tied_and_detached_children),
        cmocka_unit_test(test_library_later_setting_wins),
    };
    const struct CMUnitTest cli_tests[] = {
        cmocka_unit_test(test_cli_usage),
        cmocka_unit_test(test_cli_participant_by_path_and_gate),
        cmocka_unit_test_teardown(test_cli_participant_by_path_in_sagactl, cli_down),
        cmocka_unit_test(test_cli_cluster),
        cmocka_unit_test(test_cli_handover_crash_finished_by_up),
    };
    int failed = cmocka_run_group_tests_name("library", lib, NULL, NULL);
    failed += cmocka_run_group_tests_name("saga-fleet", cli_tests, cli_setup, cli_teardown);
    return failed;
}
