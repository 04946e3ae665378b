/* natsrv.c - a real nats-server with JetStream on a free port in a temp directory, for
 * tests: a fleet of one broker (tools/fleet), tied to the test; or a JetStream cluster
 * of several (tsrv_start_cluster, or every tsrv_start when SAGA_TEST_CLUSTER is set). */
#include "natsrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

enum {
    READY_TIMEOUT_MS = 20000, /* Generous: a loaded CI machine may start slowly. */
    CLUSTER_READY_MS = 60000, /* a cluster also elects its meta leader */
    STOP_TIMEOUT_MS = 10000,  /* SIGTERM grace before SIGKILL. */
    STORE_MB = 2048,          /* JetStream file store of one test. */
    ERR_CAP = 4096 + 256,
    MAX_NODES = 5,
};

static const char BROKER[] = "nats";
static const char CLUSTER[] = "saga";

struct tsrv {
    fleet *f;
    int nodes; /* 0: the single broker "nats"; else nats-1..nats-nodes */
    char url[1024];
};

/* The fleet name of node i (0-based), or of the single broker. */
static const char *node(const tsrv *s, int i, char *buf, size_t cap)
{
    if (s->nodes == 0)
        snprintf(buf, cap, "%s", BROKER);
    else
        snprintf(buf, cap, "%s-%d", BROKER, i + 1);
    return buf;
}

static int count(const tsrv *s)
{
    return s->nodes > 0 ? s->nodes : 1;
}

/* Prints why the server failed and the end of its log, which holds the real reason. */
static void report(const tsrv *s, const char *name, const char *err)
{
    char tail[4096];

    fleet_log_tail(s->f, name, tail, sizeof tail);
    fprintf(stderr, "natsrv: %s; end of the log of %s:\n%s\n", err, name, tail);
}

/* Starts every node that does not run, then waits for each: a cluster member answers
 * JetStream only once a majority runs. */
static int launch(tsrv *s)
{
    char err[ERR_CAP], name[32];
    int ms = s->nodes > 0 ? CLUSTER_READY_MS : READY_TIMEOUT_MS;

    for (int i = 0; i < count(s); i++) {
        if (fleet_start(s->f, node(s, i, name, sizeof name), err, sizeof err) != 0) {
            report(s, name, err);
            return -1;
        }
    }
    for (int i = 0; i < count(s); i++) {
        if (fleet_wait_ready(s->f, node(s, i, name, sizeof name), ms, err, sizeof err) != 0) {
            report(s, name, err);
            for (int k = 0; k < count(s); k++)
                fleet_stop(s->f, node(s, k, name, sizeof name), STOP_TIMEOUT_MS);
            return -1;
        }
    }
    if (s->nodes > 0)
        fleet_urls(s->f, s->url, sizeof s->url);
    else
        fleet_url(s->f, BROKER, s->url, sizeof s->url);
    return 0;
}

/* Defines the brokers: one, or nodes cluster members routing to each other. Ports
 * given in ports (client, cluster, monitor per node; NULL: free ones) are kept. */
static int define(tsrv *s, long long max_payload, const fleet_status *ports)
{
    char err[ERR_CAP], names[MAX_NODES][32];
    const char *routes[MAX_NODES];

    for (int i = 0; i < count(s); i++) {
        fleet_broker_opts b = {.max_file_mb = STORE_MB, .max_payload = max_payload};
        int n = 0;
        node(s, i, names[i], sizeof names[i]);
        if (ports != NULL) {
            b.port = ports[i].port;
            b.cluster_port = ports[i].cluster_port;
            b.monitor_port = ports[i].monitor_port;
        }
        if (s->nodes > 0) {
            for (int k = 0; k < s->nodes; k++) {
                if (k != i)
                    routes[n++] = node(s, k, names[k], sizeof names[k]);
            }
            routes[n] = NULL;
            b.cluster_name = CLUSTER;
            b.routes = routes;
        }
        if (fleet_add_broker(s->f, names[i], &b, err, sizeof err) != 0) {
            fprintf(stderr, "natsrv: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static int start(tsrv **out, int nodes, int security)
{
    fleet_opts o = {.temp_prefix = "saga-test", .flags = FLEET_TIED};
    char err[ERR_CAP];
    tsrv *s = NULL;

    if (out == NULL || nodes < 0 || nodes > MAX_NODES)
        return -1;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto fail;
    s->nodes = nodes;
    if (fleet_create(&s->f, &o, err, sizeof err) != 0) {
        fprintf(stderr, "natsrv: %s\n", err);
        goto fail;
    }
    if (security != 0 && fleet_secure(s->f, security, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "natsrv: %s\n", err);
        goto fail;
    }
    if (define(s, 0, NULL) != 0 || launch(s) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    tsrv_destroy(s);
    return -1;
}

int tsrv_start_cluster(tsrv **out, int nodes)
{
    char n[16];

    if (nodes < 2)
        return -1;
    /* The runtime creates its streams with SAGA_REPLICAS copies; every process the test
     * starts inherits it, and so do the test's own streams (tjs_ensure_streams). */
    snprintf(n, sizeof n, "%d", nodes);
    setenv("SAGA_REPLICAS", n, 0);
    return start(out, nodes, 0);
}

int tsrv_cluster_mode(void)
{
    const char *v = getenv("SAGA_TEST_CLUSTER");
    long n = v != NULL && v[0] != '\0' ? strtol(v, NULL, 10) : 0;

    return n >= 2 && n <= MAX_NODES ? (int)n : 0;
}

int tsrv_start(tsrv **out)
{
    int nodes = tsrv_cluster_mode();

    return nodes > 0 ? tsrv_start_cluster(out, nodes) : start(out, 0, 0);
}

int tsrv_start_secure(tsrv **out, int security)
{
    return start(out, 0, security);
}

int tsrv_restart_max_payload(tsrv *s, long long bytes)
{
    fleet_status ports[MAX_NODES];
    char name[32];

    if (s == NULL || tsrv_stop(s) < 0)
        return -1;
    /* Clients reconnect where the servers were; members find each other there. */
    for (int i = 0; i < count(s); i++)
        fleet_get_status(s->f, node(s, i, name, sizeof name), &ports[i]);
    if (define(s, bytes, ports) != 0)
        return -1;
    return launch(s);
}

int tsrv_stop(tsrv *s)
{
    char name[32];
    int rc = 0;

    if (s == NULL)
        return -1;
    for (int i = 0; i < count(s); i++) {
        int r = fleet_stop(s->f, node(s, i, name, sizeof name), STOP_TIMEOUT_MS);
        if (r < 0 || (r > rc && rc >= 0))
            rc = r;
    }
    return rc;
}

int tsrv_kill(tsrv *s)
{
    char name[32];
    int rc = 0;

    if (s == NULL)
        return -1;
    for (int i = 0; i < count(s); i++)
        rc |= fleet_kill(s->f, node(s, i, name, sizeof name));
    return rc != 0 ? -1 : 0;
}

int tsrv_restart(tsrv *s)
{
    if (s == NULL || tsrv_stop(s) < 0)
        return -1;
    return launch(s);
}

int tsrv_nodes(const tsrv *s)
{
    return s->nodes;
}

int tsrv_kill_node(tsrv *s, int i)
{
    char name[32];

    if (s == NULL || i < 0 || i >= count(s))
        return -1;
    return fleet_kill(s->f, node(s, i, name, sizeof name));
}

int tsrv_restart_node(tsrv *s, int i)
{
    char err[ERR_CAP], name[32];

    if (s == NULL || i < 0 || i >= count(s))
        return -1;
    if (fleet_restart(s->f, node(s, i, name, sizeof name), STOP_TIMEOUT_MS, CLUSTER_READY_MS, err,
                      sizeof err) != 0) {
        report(s, name, err);
        return -1;
    }
    return 0;
}

/* The index of the node named name, or -1. */
static int index_of(const tsrv *s, const char *name)
{
    char buf[32];

    for (int i = 0; i < count(s); i++) {
        if (strcmp(node(s, i, buf, sizeof buf), name) == 0)
            return i;
    }
    return -1;
}

int tsrv_stream_leader(tsrv *s, const char *stream)
{
    char leader[64];

    if (s == NULL || fleet_stream_leader(s->f, stream, leader, sizeof leader, NULL) != 0)
        return -1;
    return index_of(s, leader);
}

int tsrv_meta_leader(tsrv *s)
{
    char leader[64];

    if (s == NULL || s->nodes == 0 || fleet_meta_leader(s->f, leader, sizeof leader) != 0)
        return -1;
    return index_of(s, leader);
}

int tsrv_copies_agree(tsrv *s, const char *stream, int *diverged, char *why, size_t cap)
{
    fleet_stream_copy c[MAX_NODES];
    size_t len = 0;
    int n, agree = 1;

    *diverged = 0;
    if (cap > 0)
        why[0] = '\0';
    n = s != NULL ? fleet_stream_copies(s->f, stream, c, MAX_NODES) : -1;
    if (n <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        agree = agree && c[i].known && c[i].last_seq == c[0].last_seq;
        if (len < cap)
            len += (size_t)snprintf(why + len, cap - len, "%s%s %llu@%llu", i > 0 ? ", " : "",
                                    c[i].broker, (unsigned long long)c[i].messages,
                                    (unsigned long long)c[i].last_seq);
    }
    for (int i = 1; agree && i < n; i++)
        *diverged |= c[i].messages != c[0].messages;
    return agree;
}

pid_t tsrv_node_pid(const tsrv *s, int i)
{
    fleet_status st;
    char name[32];

    if (s == NULL || i < 0 || i >= count(s))
        return -1;
    return fleet_get_status(s->f, node(s, i, name, sizeof name), &st) == 0 && st.alive ? st.pid
                                                                                       : -1;
}

const char *tsrv_node_url(const tsrv *s, int i, char *buf, size_t cap)
{
    char name[32];

    if (s == NULL || i < 0 || i >= count(s))
        return NULL;
    return fleet_url(s->f, node(s, i, name, sizeof name), buf, cap);
}

void tsrv_destroy(tsrv *s)
{
    if (s == NULL)
        return;
    fleet_destroy(s->f, 0);
    free(s);
}

const char *tsrv_url(const tsrv *s)
{
    return s->url;
}

int tsrv_port(const tsrv *s)
{
    fleet_status st;
    char name[32];

    return fleet_get_status(s->f, node(s, 0, name, sizeof name), &st) == 0 ? st.port : -1;
}

const char *tsrv_dir(const tsrv *s)
{
    return fleet_home(s->f);
}

pid_t tsrv_pid(const tsrv *s)
{
    return tsrv_node_pid(s, 0);
}

fleet *tsrv_fleet(tsrv *s)
{
    return s->f;
}
