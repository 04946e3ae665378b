/* fleet.c - The processes saga-bench measures: a nats-server on a free port in
 * a temporary directory and the five participants (the real services or the
 * saga-ceiling roles), launched with the fleet launcher (tools/fleet) tied to
 * saga-bench, so that nothing is left running, also after Ctrl-C or a crash of
 * saga-bench; or those of a running fleet (--url), found by their stats. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "fleet.h"
#include "instances.h"

#ifndef BENCH_NATS_SERVER
#define BENCH_NATS_SERVER "/usr/sbin/nats-server"
#endif

#define SERVER_READY_MS 20000
#define SERVICE_READY_MS 60000
#define SERVICE_STOP_MS 30000
#define SERVER_STOP_MS 10000
#define ENV_MAX 32
/* The services must never cancel an order of a long run by deadline. */
#define ORDER_DEADLINE_ENV "ORDER_DEADLINE_MS=86400000"

const char *const bench_svc_names[BENCH_NSVC] = {"order", "payment", "inventory", "shipping",
                                                 "notification"};

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- launching, with the fleet launcher -------------------------------- */

static const char BROKER[] = "nats";
static const char CLUSTER[] = "saga-bench";

static int has_meta_leader(void *arg)
{
    char leader[64];
    return fleet_meta_leader(arg, leader, sizeof(leader)) == 0;
}

/* The file store may take most of the free disk: a long growth run keeps
 * every event (the stream's MaxAge is a week). */
static long long store_limit_mb(const char *dir, int nodes)
{
    struct statvfs vfs;
    long long mb = 4096;
    if (statvfs(dir, &vfs) == 0)
        mb = (long long)((double)vfs.f_bavail * (double)vfs.f_frsize * 0.8 / 1048576.0 / nodes);
    return mb < 1024 ? 1024 : mb;
}

/* One nats-server ("nats"), or a cluster of nodes ("nats-1".."nats-N", each routing
 * to the others, as deploy/fleet up --cluster N), all started before any is waited
 * for: a node answers JetStream only once a majority has elected a meta leader. */
static int start_servers(bench_fleet *f, int nodes, char *err, size_t errlen)
{
    char names[BENCH_NODES_MAX][BENCH_NAME_MAX];
    const char *routes[BENCH_NODES_MAX];
    int n = nodes > 0 ? nodes : 1;

    for (int i = 0; i < n; i++) {
        if (nodes > 0)
            snprintf(names[i], sizeof(names[i]), "%s-%d", BROKER, i + 1);
        else
            snprintf(names[i], sizeof(names[i]), "%s", BROKER);
    }
    for (int i = 0; i < n; i++) {
        fleet_broker_opts b = {.max_file_mb = store_limit_mb(f->dir, n)};
        int r = 0;
        if (nodes > 0) {
            for (int k = 0; k < n; k++)
                if (k != i)
                    routes[r++] = names[k];
            routes[r] = NULL;
            b.cluster_name = CLUSTER;
            b.routes = routes;
        }
        if (fleet_add_broker(f->fl, names[i], &b, err, errlen) != 0)
            return -1;
    }
    for (int i = 0; i < n; i++)
        if (fleet_start(f->fl, names[i], err, errlen) != 0)
            return -1;
    for (int i = 0; i < n; i++) {
        fleet_status st;
        bench_proc *p = &f->proc[f->nproc++];
        snprintf(p->name, sizeof(p->name), "%.*s", BENCH_NAME_MAX - 1,
                 nodes > 0 ? names[i] : "nats-server");
        p->owned = 1;
        p->pid = -1;
        if (fleet_wait_ready(f->fl, names[i], SERVER_READY_MS, err, errlen) != 0)
            return -1;
        if (fleet_get_status(f->fl, names[i], &st) == 0)
            p->pid = st.pid;
    }
    if (nodes > 0 && fleet_wait_until(has_meta_leader, f->fl, SERVER_READY_MS) != 0) {
        snprintf(err, errlen, "the cluster elected no JetStream meta leader");
        return -1;
    }
    f->nbrokers = n;
    fleet_urls(f->fl, f->url, sizeof(f->url));
    fleet_store_dir(f->fl, names[0], f->store, sizeof(f->store));
    return 0;
}

/* Whether participant name gets setting kv of cfg->env. The history read model keeps
 * its default retention (a day) under --growth's short SAGA_RETENTION_MS, so that
 * every order of the run can still be traced at its end. */
static int gets_env(const char *name, const char *kv)
{
    return strcmp(name, BENCH_HISTORY) != 0 || strncmp(kv, "SAGA_RETENTION_MS=", 18) != 0;
}

/* Instance k of the n of participant svc (k = 1, n = 1: the only one), as a process. */
static int add_participant(bench_fleet *f, const bench_fleet_cfg *cfg, const char *svc, int k,
                           int n, char *err, size_t errlen)
{
    char url[sizeof(f->url) + 16], dir[BENCH_PATH_MAX + 32], spool[BENCH_PATH_MAX + 32];
    char exe[BENCH_PATH_MAX], replicas[32], inst[48];
    bench_proc *p = &f->proc[f->nproc++];
    const char *env[ENV_MAX];
    int e = 0, ceiling = cfg->ceiling_exe != NULL && strcmp(svc, BENCH_HISTORY) != 0;

    fleet_instance_name(p->name, sizeof(p->name), svc, k, n);
    p->owned = 1;
    p->pid = -1;
    snprintf(url, sizeof(url), "SAGA_NATS_URL=%s", f->url);
    /* Through a local: GCC sees f->dir and p->data_dir as one object. */
    char ddir[sizeof(p->data_dir)];
    snprintf(ddir, sizeof(ddir), "%s/data/%s", f->dir, p->name);
    memcpy(p->data_dir, ddir, sizeof(ddir));
    snprintf(dir, sizeof(dir), "SAGA_DATA_DIR=%s", p->data_dir);
    snprintf(spool, sizeof(spool), "NOTIF_SPOOL_DIR=%s", f->spool);
    env[e++] = url;
    env[e++] = dir;
    env[e++] = spool;
    env[e++] = ORDER_DEADLINE_ENV;
    if (cfg->cluster > 0) { /* the ceiling's roles read it too */
        snprintf(replicas, sizeof(replicas), "SAGA_REPLICAS=%d", cfg->cluster);
        env[e++] = replicas;
    }
    snprintf(inst, sizeof(inst), "SAGA_INSTANCE=%d/%d", k, n);
    if (n > 1)
        env[e++] = inst;
    for (int j = 0; cfg->env != NULL && cfg->env[j] != NULL && e < ENV_MAX - 1; j++)
        if (gets_env(svc, cfg->env[j]))
            env[e++] = cfg->env[j];
    env[e] = NULL;
    const char *ceil_args[] = {"--role", p->name, NULL};
    int rc;
    if (ceiling) {
        p->data_dir[0] = '\0'; /* no LMDB */
        rc = fleet_add_proc(f->fl, p->name, cfg->ceiling_exe, ceil_args, env, err, errlen);
    } else {
        snprintf(exe, sizeof(exe), "%s/services/saga-%s", cfg->build_dir, svc);
        rc = fleet_add_proc(f->fl, p->name, exe, NULL, env, err, errlen);
    }
    return rc != 0 ? -1 : fleet_start(f->fl, p->name, err, errlen);
}

static int start_participants(bench_fleet *f, const bench_fleet_cfg *cfg, char *err, size_t errlen)
{
    int first = f->nproc;
    /* The ceiling's roles are no saga services: one each. */
    int n = cfg->ceiling_exe == NULL && cfg->instances > 1 ? cfg->instances : 1;
    for (int i = 0; i < BENCH_NSVC; i++)
        for (int k = 1; k <= n; k++)
            if (add_participant(f, cfg, bench_svc_names[i], k, n, err, errlen) != 0)
                return -1;
    if (cfg->history && add_participant(f, cfg, BENCH_HISTORY, 1, 1, err, errlen) != 0)
        return -1;
    /* All start at once; then each must be ready (its consumers exist by then). */
    for (int i = first; i < f->nproc; i++) {
        fleet_status st;
        if (fleet_wait_ready(f->fl, f->proc[i].name, SERVICE_READY_MS, err, errlen) != 0)
            return -1;
        if (fleet_get_status(f->fl, f->proc[i].name, &st) == 0)
            f->proc[i].pid = st.pid;
    }
    return 0;
}

/* ---- participants ------------------------------------------------------ */

json_t *bench_ask_stats(natsConnection *nc, const char *name, int timeout_ms)
{
    char subject[96];
    natsMsg *m = NULL;
    snprintf(subject, sizeof(subject), "saga.ctl.%s.stats", name);
    if (natsConnection_RequestString(&m, nc, subject, "", timeout_ms) != NATS_OK)
        return NULL;
    json_t *reply = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    natsMsg_Destroy(m);
    return reply;
}

static void add_self(bench_fleet *f)
{
    bench_proc *p = &f->proc[f->nproc++];
    snprintf(p->name, sizeof(p->name), "saga-bench");
    p->pid = getpid();
    p->owned = 0;
    p->data_dir[0] = '\0';
}

/* The mail spool: <dir>/mail, or a new directory under under (--spool). */
static int make_spool(bench_fleet *f, const char *under, char *err, size_t errlen)
{
    if (under == NULL) {
        snprintf(f->spool, sizeof(f->spool), "%s/mail", f->dir);
        return 0;
    }
    int n = snprintf(f->spool, sizeof(f->spool), "%s/saga-bench-mail-XXXXXX", under);
    if (n < 0 || (size_t)n >= sizeof(f->spool) || mkdtemp(f->spool) == NULL) {
        snprintf(err, errlen, "--spool %s: cannot make a directory there: %s", under,
                 n < 0 || (size_t)n >= sizeof(f->spool) ? "path too long" : strerror(errno));
        f->spool[0] = '\0';
        return -1;
    }
    f->own_spool = 1;
    return 0;
}

int bench_fleet_start(bench_fleet *f, const bench_fleet_cfg *cfg, char *err, size_t errlen)
{
    /* Children get their own process group (a terminal's Ctrl-C reaches only
     * saga-bench, which stops them in order) and die with saga-bench. */
    fleet_opts o = {.temp_prefix = "saga-bench",
                    .flags = FLEET_TIED | FLEET_OWN_GROUP,
                    .nats_server = BENCH_NATS_SERVER,
                    .cancel = &bench_interrupted};
    memset(f, 0, sizeof(*f));
    f->keep = cfg->keep;
    if (fleet_create(&f->fl, &o, err, errlen) != 0)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s", fleet_home(f->fl));
    /* As deploy/fleet runs it: each participant its own identity and rights, all
     * made before the broker starts. One made when its process starts reaches the
     * running broker by a configuration reload, and a process that connects first
     * is refused (the services retry; the ceiling's roles do not). */
    int sec = cfg->auth ? fleet_secure(f->fl, FLEET_AUTH, NULL, err, errlen) : 0;
    for (int i = 0; cfg->auth && sec == 0 && i < BENCH_NSVC; i++)
        sec = fleet_identity(f->fl, bench_svc_names[i], err, errlen);
    if (cfg->auth && sec == 0 && cfg->history)
        sec = fleet_identity(f->fl, BENCH_HISTORY, err, errlen);
    if (sec != 0) {
        bench_fleet_stop(f);
        return -1;
    }
    bench_connect_home(cfg->auth ? f->dir : NULL);
    if (make_spool(f, cfg->spool, err, errlen) != 0) {
        bench_fleet_stop(f);
        return -1;
    }
    if (start_servers(f, cfg->cluster, err, errlen) != 0 ||
        start_participants(f, cfg, err, errlen) != 0) {
        f->keep = 1; /* the logs say why */
        fprintf(stderr, "saga-bench: logs kept in %s/logs\n", f->dir);
        bench_fleet_stop(f);
        return -1;
    }
    add_self(f);
    if (bench_connect(f->url, &f->nc) != NATS_OK)
        f->nc = NULL; /* the counters are then unknown, the rest is measured */
    return 0;
}

/* The "pid" of a stats reply, -1 if it has none. */
static pid_t pid_of_reply(const json_t *reply)
{
    json_int_t v = json_integer_value(json_object_get(reply, "pid"));
    return v > 0 && v == (pid_t)v ? (pid_t)v : -1;
}

/* SAGA_DATA_DIR from a local process's environment, when readable. */
static void data_dir_of(pid_t pid, char *out, size_t len)
{
    char path[64], buf[65536];
    out[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    for (ssize_t i = 0; i < n;) {
        const char *s = buf + i;
        size_t l = strnlen(s, (size_t)(n - i));
        if (strncmp(s, "SAGA_DATA_DIR=", 14) == 0)
            snprintf(out, len, "%.*s", (int)(l - 14), s + 14);
        i += (ssize_t)l + 1;
    }
}

int bench_fleet_attach(bench_fleet *f, const char *url, char *err, size_t errlen)
{
    natsConnection *nc = NULL;
    memset(f, 0, sizeof(*f));
    snprintf(f->url, sizeof(f->url), "%s", url);
    if (bench_connect(url, &nc) != NATS_OK) {
        snprintf(err, errlen, "cannot connect to %s", url);
        return -1;
    }
    for (int i = 0; i < BENCH_NSVC; i++) {
        bench_proc *p = &f->proc[f->nproc++];
        snprintf(p->name, sizeof(p->name), "%s", bench_svc_names[i]);
        p->owned = 0;
        p->pid = -1;
        json_t *reply = bench_ask_stats(nc, p->name, 2000);
        if (reply == NULL) {
            snprintf(err, errlen, "%s does not answer saga.ctl.%s.stats at %s", p->name, p->name,
                     url);
            natsConnection_Destroy(nc);
            return -1;
        }
        /* Only a process of this host with that pid can be sampled. */
        char comm[64], path[64];
        pid_t pid = pid_of_reply(reply);
        json_decref(reply);
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        FILE *fp = pid > 0 ? fopen(path, "r") : NULL;
        if (fp != NULL && fgets(comm, sizeof(comm), fp) != NULL && strncmp(comm, "saga-", 5) == 0) {
            p->pid = pid;
            data_dir_of(pid, p->data_dir, sizeof(p->data_dir));
        }
        if (fp != NULL)
            fclose(fp);
    }
    f->nc = nc;
    add_self(f);
    return 0;
}

int bench_fleet_stop(bench_fleet *f)
{
    int rc = 0;
    natsConnection_Destroy(f->nc); /* before the server goes: no reconnecting */
    f->nc = NULL;
    if (f->fl != NULL) {
        bench_connect_home(NULL);
        rc = fleet_stop_all(f->fl, SERVICE_STOP_MS, SERVER_STOP_MS);
        if (rc != 0)
            fprintf(stderr, "saga-bench: a process did not stop cleanly by itself\n");
        if (f->keep)
            fprintf(stderr, "saga-bench: kept %s\n", f->dir);
        else
            fprintf(stderr, "saga-bench: removing %s\n", f->dir); /* a million spool files */
        fleet_destroy(f->fl, f->keep);
        f->fl = NULL;
        f->dir[0] = '\0';
    }
    if (f->own_spool) {
        if (f->keep)
            fprintf(stderr, "saga-bench: kept %s\n", f->spool);
        else if (fleet_rmrf(f->spool) != 0)
            fprintf(stderr, "saga-bench: cannot remove %s: %s\n", f->spool, strerror(errno));
        f->own_spool = 0;
    }
    f->nproc = 0;
    return rc;
}
