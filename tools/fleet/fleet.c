/* fleet.c - brokers and service processes under one home directory: their specs, pid
 * files, logs, nats-server configuration, start, readiness, stop and status. */
#include "fleet.h"
#include "secure.h"

#include "saga/config.h"
#include "saga/fs.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nats/nats.h>

/* The identity the launcher itself uses to probe and inspect the brokers. */
#define OPERATOR_IDENTITY "operator"

/* CMake passes the path it found at configure time. */
#ifndef SAGA_NATS_SERVER
#define SAGA_NATS_SERVER "/usr/sbin/nats-server"
#endif

enum {
    NAME_CAP = 33,           /* 32 characters: [a-z0-9_-] */
    PATH_CAP = 4096,         /* PATH_MAX on Linux */
    LINE_CAP = 65536,        /* longest line of a spec file (an environment entry) */
    POLL_MS = 20,            /* how often waits look again */
    PROBE_TIMEOUT_MS = 1000, /* one connect or JetStream request while probing */
    PORT_ATTEMPTS = 5,       /* fresh ports a broker tries before giving up */
    RESPAWN_PAUSE_MS = 50,   /* between attempts to bind a port still taken */
    KILL_WAIT_MS = 10000,    /* for the kernel to take a SIGKILLed process down */
    LOG_CHUNK = 4096,        /* read size when scanning a log */
    HTTP_CAP = 1 << 20,      /* largest monitoring answer read (/jsz is a few KB) */
    DEFAULT_FILE_STORE_MB = 16384,
};

/* What a process logs when it is ready: the runtime's consumer loop (and saga-ceiling)
 * once its subscriptions exist; nats-server 2.9 once it listens. A server that exits
 * logs LOG_PORT_TAKEN when another process holds its port. */
static const char LOG_SVC_READY[] = "event=ready";
static const char LOG_NATS_READY[] = "Server is ready";
static const char LOG_PORT_TAKEN[] = "address already in use";

/* A broker's server_name: a single server's fleet name and client port, unique on
 * the machine; a cluster member's cluster and fleet name, unique in the cluster and
 * independent of its ports, because the meta group stored in its JetStream directory
 * knows its peers by these names (new names on a later up with new ports would leave
 * it waiting for a quorum of peers that no longer exist). */
#define SERVER_NAME_FMT "saga-%s-%d"
#define MEMBER_NAME_FMT "%s-%s"

typedef struct entry {
    char name[NAME_CAP];
    int broker;
    char *exe;
    char **args; /* NULL-terminated */
    char **env;  /* NULL-terminated "K=V" */
    char *ready; /* a process: what its log says when it is ready; NULL: LOG_SVC_READY */
    /* Brokers. */
    char host[64];
    int port;      /* 0 until chosen */
    int auto_port; /* the port was chosen freely and may change until the first start */
    int attempts;  /* fresh ports tried */
    long long max_file_mb;
    long long max_payload;
    /* Cluster members ("" cluster: a single server). Ports chosen freely stay
     * changeable, as the client port, until the first start. */
    char cluster[64];
    char **routes; /* NULL-terminated names of the other members */
    int cluster_port;
    int auto_cluster_port;
    int monitor_port;
    int auto_monitor_port;
    /* The running process. */
    pid_t pid;     /* last known, -1 when none */
    off_t log_off; /* where the current run starts in the log */
    int child;     /* spawned by this handle: waitpid reaps it and tells its status */
} entry;

struct fleet {
    char *home;
    int temp;
    int flags;
    volatile const sig_atomic_t *cancel;
    char nats_server[PATH_CAP];
    entry *e;
    int n, cap;
};

/* ---- small helpers ------------------------------------------------------------- */

void fleet__set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int path_of(const fleet *f, char *buf, size_t cap, const char *fmt, const char *name)
{
    int n = snprintf(buf, cap, "%s/", f->home);
    int m;

    if (n < 0 || (size_t)n >= cap)
        return -1;
    m = snprintf(buf + n, cap - (size_t)n, fmt, name);
    return m < 0 || (size_t)m >= cap - (size_t)n ? -1 : 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static off_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Whether the file holds needle at or after offset off. Reads in chunks, keeping the
 * last strlen(needle)-1 bytes so that a match across chunks is found. */
static int file_contains(const char *path, off_t off, const char *needle)
{
    char buf[LOG_CHUNK + 1];
    size_t nlen = strlen(needle);
    size_t keep = 0;
    size_t len;
    ssize_t n;
    int found = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    if (lseek(fd, off, SEEK_SET) < 0)
        goto out;
    for (;;) {
        n = read(fd, buf + keep, LOG_CHUNK - keep);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len = keep + (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, needle) != NULL) {
            found = 1;
            break;
        }
        keep = nlen - 1 < len ? nlen - 1 : len;
        memmove(buf, buf + len - keep, keep);
    }
out:
    close(fd);
    return found;
}

static int valid_name(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;

    if (len == 0 || len >= NAME_CAP)
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

static char **strv_dup(const char *const *v)
{
    size_t n = 0;
    char **out;

    while (v != NULL && v[n] != NULL)
        n++;
    out = calloc(n + 1, sizeof *out);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (out[i] == NULL) {
            for (size_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* Appends s (taking it) to the NULL-terminated *v. */
static int strv_push(char ***v, char *s)
{
    size_t n = 0;
    char **nv;

    while (*v != NULL && (*v)[n] != NULL)
        n++;
    nv = realloc(*v, (n + 2) * sizeof *nv);
    if (nv == NULL)
        return -1;
    nv[n] = s;
    nv[n + 1] = NULL;
    *v = nv;
    return 0;
}

static entry *find(const fleet *f, const char *name)
{
    for (int i = 0; name != NULL && i < f->n; i++) {
        if (strcmp(f->e[i].name, name) == 0)
            return &f->e[i];
    }
    return NULL;
}

static void entry_cleanup(entry *e)
{
    free(e->exe);
    strv_free(e->args);
    strv_free(e->env);
    strv_free(e->routes);
    free(e->ready);
    e->ready = NULL;
    e->exe = NULL;
    e->args = NULL;
    e->env = NULL;
    e->routes = NULL;
    e->cluster[0] = '\0';
}

/* ---- the files below the home directory ---------------------------------------- */

static int write_order(const fleet *f)
{
    char path[PATH_CAP], tmp[PATH_CAP + 8];
    FILE *fp;
    int rc = -1;

    if (path_of(f, path, sizeof path, "run/%s", "procs") != 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.new", path);
    fp = fopen(tmp, "w");
    if (fp == NULL)
        return -1;
    for (int i = 0; i < f->n; i++)
        fprintf(fp, "%s\n", f->e[i].name);
    if (fclose(fp) == 0 && rename(tmp, path) == 0)
        rc = 0;
    return rc;
}

/* A spec holds one "key value" a line; values never hold a newline (refused when
 * added), so no quoting is needed. */
static int write_spec(const fleet *f, const entry *e)
{
    char path[PATH_CAP], tmp[PATH_CAP + 8];
    FILE *fp;
    int rc = -1;

    if (path_of(f, path, sizeof path, "run/%s.spec", e->name) != 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.new", path);
    fp = fopen(tmp, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "kind %s\nexe %s\n", e->broker ? "broker" : "process", e->exe);
    if (e->broker)
        fprintf(fp, "host %s\nport %d\nauto_port %d\nmax_file_mb %lld\nmax_payload %lld\n", e->host,
                e->port, e->auto_port, e->max_file_mb, e->max_payload);
    if (e->broker && e->cluster[0] != '\0') {
        fprintf(fp,
                "cluster %s\ncluster_port %d\nauto_cluster_port %d\nmonitor_port %d\n"
                "auto_monitor_port %d\n",
                e->cluster, e->cluster_port, e->auto_cluster_port, e->monitor_port,
                e->auto_monitor_port);
        for (size_t i = 0; e->routes != NULL && e->routes[i] != NULL; i++)
            fprintf(fp, "route %s\n", e->routes[i]);
    }
    if (e->ready != NULL)
        fprintf(fp, "ready %s\n", e->ready);
    for (size_t i = 0; e->args != NULL && e->args[i] != NULL; i++)
        fprintf(fp, "arg %s\n", e->args[i]);
    for (size_t i = 0; e->env != NULL && e->env[i] != NULL; i++)
        fprintf(fp, "env %s\n", e->env[i]);
    if (!ferror(fp) && fclose(fp) == 0)
        rc = rename(tmp, path) == 0 ? 0 : -1;
    else
        fclose(fp);
    return rc;
}

static pid_t read_pid(const fleet *f, const char *name)
{
    char path[PATH_CAP], buf[32];
    FILE *fp;
    long v = -1;
    char *end = NULL;

    if (path_of(f, path, sizeof path, "run/%s.pid", name) != 0)
        return -1;
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    if (fgets(buf, sizeof buf, fp) != NULL) {
        errno = 0;
        v = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || v <= 0 || v > 0x7fffffffL)
            v = -1;
    }
    fclose(fp);
    return (pid_t)v;
}

static int write_pid(const fleet *f, const entry *e)
{
    char path[PATH_CAP];
    FILE *fp;

    if (path_of(f, path, sizeof path, "run/%s.pid", e->name) != 0)
        return -1;
    fp = fopen(path, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "%d\n", (int)e->pid);
    return fclose(fp);
}

static void remove_pid(const fleet *f, const char *name)
{
    char path[PATH_CAP];

    if (path_of(f, path, sizeof path, "run/%s.pid", name) == 0)
        unlink(path);
}

static int load_spec(fleet *f, entry *e)
{
    char path[PATH_CAP];
    char *line = NULL;
    FILE *fp;
    int rc = -1;

    if (path_of(f, path, sizeof path, "run/%s.spec", e->name) != 0)
        return -1;
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    line = malloc(LINE_CAP);
    if (line == NULL)
        goto out;
    e->args = calloc(1, sizeof *e->args);
    e->env = calloc(1, sizeof *e->env);
    if (e->args == NULL || e->env == NULL)
        goto out;
    while (fgets(line, LINE_CAP, fp) != NULL) {
        char *val = strchr(line, ' ');
        line[strcspn(line, "\n")] = '\0';
        if (val == NULL)
            continue;
        *val++ = '\0';
        if (strcmp(line, "kind") == 0)
            e->broker = strcmp(val, "broker") == 0;
        else if (strcmp(line, "exe") == 0 && e->exe == NULL)
            e->exe = strdup(val);
        else if (strcmp(line, "ready") == 0 && e->ready == NULL)
            e->ready = strdup(val);
        else if (strcmp(line, "host") == 0)
            snprintf(e->host, sizeof e->host, "%s", val);
        else if (strcmp(line, "port") == 0)
            e->port = (int)strtol(val, NULL, 10);
        else if (strcmp(line, "auto_port") == 0)
            e->auto_port = (int)strtol(val, NULL, 10);
        else if (strcmp(line, "max_file_mb") == 0)
            e->max_file_mb = strtoll(val, NULL, 10);
        else if (strcmp(line, "max_payload") == 0)
            e->max_payload = strtoll(val, NULL, 10);
        else if (strcmp(line, "cluster") == 0)
            snprintf(e->cluster, sizeof e->cluster, "%s", val);
        else if (strcmp(line, "cluster_port") == 0)
            e->cluster_port = (int)strtol(val, NULL, 10);
        else if (strcmp(line, "auto_cluster_port") == 0)
            e->auto_cluster_port = (int)strtol(val, NULL, 10);
        else if (strcmp(line, "monitor_port") == 0)
            e->monitor_port = (int)strtol(val, NULL, 10);
        else if (strcmp(line, "auto_monitor_port") == 0)
            e->auto_monitor_port = (int)strtol(val, NULL, 10);
        else if (strcmp(line, "arg") == 0 || strcmp(line, "env") == 0 ||
                 strcmp(line, "route") == 0) {
            char *copy = strdup(val);
            char ***list = line[0] == 'a' ? &e->args : line[0] == 'e' ? &e->env : &e->routes;
            if (copy == NULL || strv_push(list, copy) != 0) {
                free(copy);
                goto out;
            }
        }
    }
    rc = e->exe != NULL ? 0 : -1;
out:
    free(line);
    fclose(fp);
    return rc;
}

static entry *new_entry(fleet *f, const char *name)
{
    entry *e;

    if (f->n == f->cap) {
        int cap = f->cap > 0 ? 2 * f->cap : 8;
        entry *ne = realloc(f->e, (size_t)cap * sizeof *ne);
        if (ne == NULL)
            return NULL;
        f->e = ne;
        f->cap = cap;
    }
    e = &f->e[f->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->pid = -1;
    return e;
}

/* Reads run/procs and each spec, so that a later command finds what up started. */
static int load(fleet *f)
{
    char path[PATH_CAP], name[128];
    FILE *fp;

    if (path_of(f, path, sizeof path, "run/%s", "procs") != 0)
        return -1;
    fp = fopen(path, "r");
    if (fp == NULL)
        return errno == ENOENT ? 0 : -1;
    while (fgets(name, sizeof name, fp) != NULL) {
        entry *e;
        name[strcspn(name, "\n")] = '\0';
        if (!valid_name(name) || find(f, name) != NULL)
            continue;
        e = new_entry(f, name);
        if (e == NULL)
            break;
        if (load_spec(f, e) != 0) {
            entry_cleanup(e);
            f->n--;
            continue;
        }
        e->pid = read_pid(f, name);
    }
    fclose(fp);
    return 0;
}

/* ---- liveness ------------------------------------------------------------------ */

/* Reads /proc/PID/WHAT into buf, NUL-terminated. Returns 0, or -1 when it is gone. */
static int read_proc(pid_t pid, const char *what, char *buf, size_t cap)
{
    char path[64];
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? 0 : -1;
}

/* Whether pid runs e->exe: a pid may be reused after a crash, so the command line must
 * match too; a zombie is dead. A child of this handle is reaped here when it exits. */
static int pid_runs(entry *e, int *status)
{
    char buf[PATH_CAP];
    const char *rp;
    pid_t r;
    int st = 0;

    if (e->pid <= 0)
        return 0;
    if (e->child) {
        do {
            r = waitpid(e->pid, &st, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == e->pid || (r < 0 && errno == ECHILD)) {
            if (r == e->pid && status != NULL)
                *status = st;
            e->child = 0;
            e->pid = -1;
            return 0;
        }
        return 1;
    }
    if (kill(e->pid, 0) != 0 && errno == ESRCH)
        return 0;
    if (read_proc(e->pid, "stat", buf, sizeof buf) != 0)
        return 0;
    /* The state follows the command name in parentheses, which may hold spaces. */
    rp = strrchr(buf, ')');
    if (rp == NULL || rp[1] == '\0' || rp[2] == 'Z' || rp[2] == 'X')
        return 0;
    if (read_proc(e->pid, "cmdline", buf, sizeof buf) != 0)
        return 0;
    return strcmp(buf, e->exe) == 0;
}

static int alive(entry *e)
{
    return pid_runs(e, NULL);
}

/* ---- the nats-server configuration --------------------------------------------- */

/* A free port that no broker of this fleet has been given either: the kernel may hand
 * out the same free port twice when nothing binds it in between. */
static int fresh_port(const fleet *f)
{
    for (int attempt = 0; attempt < 64; attempt++) {
        int port = fleet_free_port();
        int taken = 0;
        if (port < 0)
            return -1;
        for (int i = 0; i < f->n && !taken; i++) {
            const entry *o = &f->e[i];
            taken = o->broker &&
                    (o->port == port || o->cluster_port == port || o->monitor_port == port);
        }
        if (!taken)
            return port;
    }
    errno = EADDRINUSE;
    return -1;
}

/* Chooses the ports of e still open, and the route ports of the members e routes to
 * (their configuration, written when they start, uses the same). */
static int assign_ports(fleet *f, entry *e)
{
    if (e->port == 0 && (e->port = fresh_port(f)) < 0)
        goto fail;
    if (e->cluster[0] == '\0')
        return 0;
    if (e->cluster_port == 0 && (e->cluster_port = fresh_port(f)) < 0)
        goto fail;
    if (e->monitor_port == 0 && (e->monitor_port = fresh_port(f)) < 0)
        goto fail;
    for (size_t i = 0; e->routes != NULL && e->routes[i] != NULL; i++) {
        entry *peer = find(f, e->routes[i]);
        if (peer == NULL || !peer->broker) {
            errno = ENOENT;
            return -1;
        }
        if (peer->cluster_port == 0) {
            peer->cluster_port = fresh_port(f);
            if (peer->cluster_port < 0 || write_spec(f, peer) != 0) {
                peer->cluster_port = 0;
                return -1;
            }
        }
    }
    return 0;
fail:
    if (e->port < 0)
        e->port = 0;
    if (e->cluster_port < 0)
        e->cluster_port = 0;
    if (e->monitor_port < 0)
        e->monitor_port = 0;
    return -1;
}

/* Writes the cluster block of e: its route port, and a route to each other member.
 * Gossip completes the mesh, so a member whose port changed before its first start
 * still joins. */
static void write_cluster(FILE *fp, const fleet *f, const entry *e)
{
    fprintf(fp,
            "# HTTP monitoring: /jsz names the JetStream meta leader (saga-fleet status).\n"
            "http: \"%s:%d\"\n"
            "cluster {\n"
            "  name: \"%s\"\n"
            "  listen: \"%s:%d\"\n"
            "  routes: [\n",
            e->host, e->monitor_port, e->cluster, e->host, e->cluster_port);
    for (size_t i = 0; e->routes != NULL && e->routes[i] != NULL; i++) {
        const entry *peer = find(f, e->routes[i]);
        if (peer != NULL)
            fprintf(fp, "    \"nats-route://%s:%d\"\n", peer->host, peer->cluster_port);
    }
    /* Routes are not authenticated by user: they listen on the fleet's host (loopback
     * by default); with TLS each end shows the fleet's certificate and verifies the
     * other's. */
    fprintf(fp, "  ]\n");
    fleet__sec_write_cluster_tls(fp, f->home);
    fprintf(fp, "}\n");
}

/* One server, JetStream on file storage. The 2.9 file store flushes to disk about
 * every minute, not per message: a process crash loses nothing, a power loss can lose
 * recent acknowledged messages; a cluster of three with R3 streams answers that. */
static int write_conf(const fleet *f, const entry *e)
{
    char conf[PATH_CAP], store[PATH_CAP], server[NAME_CAP + 80];
    FILE *fp;
    int rc = -1;

    if (path_of(f, conf, sizeof conf, "%s.conf", e->name) != 0 ||
        path_of(f, store, sizeof store, "%s", e->name) != 0)
        return -1;
    /* The path goes into a quoted string of the configuration. */
    if (strpbrk(store, "\"\\\n") != NULL)
        return -1;
    /* It may hold the identities' passwords: readable by the owner only. */
    int fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fp == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (fchmod(fd, 0600) != 0) /* a file written before permissions mattered */
        goto close;
    fprintf(fp,
            "# Written by the fleet launcher (tools/fleet) at each start of %s; edit\n"
            "# tools/fleet/fleet.c, not this copy.\n"
            "server_name: \"%s\"\n"
            "listen: \"%s:%d\"\n"
            "# Events are small; this bounds a bad publisher, not the saga.\n"
            "max_payload: %lld\n"
            "# A slow consumer (a stalled sagactl watch) is cut off rather than allowed\n"
            "# to hold server memory.\n"
            "write_deadline: \"10s\"\n"
            "jetstream {\n"
            "  store_dir: \"%s\"\n"
            "  max_memory_store: 256MB\n"
            "  max_file_store: %lldMB\n"
            "}\n",
            e->name, fleet_server_name(f, e->name, server, sizeof server), e->host, e->port,
            e->max_payload > 0 ? e->max_payload : 1024LL * 1024, store,
            e->max_file_mb > 0 ? e->max_file_mb : (long long)DEFAULT_FILE_STORE_MB);
    if (e->cluster[0] != '\0')
        write_cluster(fp, f, e);
    if (fleet__sec_write_conf(fp, f->home) == 0 && !ferror(fp))
        rc = 0;
close:
    if (fclose(fp) != 0)
        rc = -1;
    return rc;
}

/* One probe: a fresh connection without reconnects, and a JetStream request, so that
 * "ready" means what clients need, not just an open port. */
static int jetstream_answers(const fleet *f, const char *url)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    jsOptions jo;
    int ok = 0;

    if (natsOptions_Create(&opts) != NATS_OK)
        goto out;
    if (natsOptions_SetURL(opts, url) != NATS_OK ||
        fleet_client_options(f, OPERATOR_IDENTITY, opts) != NATS_OK ||
        natsOptions_SetTimeout(opts, PROBE_TIMEOUT_MS) != NATS_OK ||
        natsOptions_SetAllowReconnect(opts, false) != NATS_OK)
        goto out;
    if (natsConnection_Connect(&nc, opts) != NATS_OK)
        goto out;
    if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK || jsOptions_Init(&jo) != NATS_OK)
        goto out;
    jo.Wait = PROBE_TIMEOUT_MS;
    if (js_GetAccountInfo(&ai, js, &jo, NULL) != NATS_OK)
        goto out;
    ok = 1;
out:
    if (ai != NULL)
        jsAccountInfo_Destroy(ai);
    if (js != NULL)
        jsCtx_Destroy(js);
    if (nc != NULL)
        natsConnection_Destroy(nc);
    if (opts != NULL)
        natsOptions_Destroy(opts);
    return ok;
}

/* ---- the handle ---------------------------------------------------------------- */

int fleet_create(fleet **out, const fleet_opts *o, char *err, size_t errlen)
{
    fleet *f = NULL;
    char path[PATH_CAP];

    if (out == NULL || o == NULL) {
        fleet__set_err(err, errlen, "fleet_create: no options");
        return -1;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL)
        goto fail;
    f->flags = o->flags;
    f->cancel = o->cancel;
    snprintf(f->nats_server, sizeof f->nats_server, "%s",
             o->nats_server != NULL ? o->nats_server : SAGA_NATS_SERVER);
    if (o->home != NULL) {
        f->home = strdup(o->home);
        if (f->home == NULL || saga_mkdir_p(f->home) != 0) {
            fleet__set_err(err, errlen, "cannot create %s: %s", o->home, strerror(errno));
            goto fail;
        }
    } else {
        f->home = fleet_mkdtemp(o->temp_prefix);
        f->temp = 1;
        if (f->home == NULL) {
            fleet__set_err(err, errlen, "cannot create a temporary directory: %s", strerror(errno));
            goto fail;
        }
    }
    if (path_of(f, path, sizeof path, "%s", "run") != 0 || saga_mkdir_p(path) != 0 ||
        path_of(f, path, sizeof path, "%s", "logs") != 0 || saga_mkdir_p(path) != 0) {
        fleet__set_err(err, errlen, "cannot create %s/run and logs: %s", f->home, strerror(errno));
        goto fail;
    }
    if (load(f) != 0) {
        fleet__set_err(err, errlen, "cannot read %s/run: %s", f->home, strerror(errno));
        goto fail;
    }
    *out = f;
    return 0;
fail:
    if (f != NULL && f->temp && f->home != NULL)
        fleet_rmrf(f->home);
    fleet_destroy(f, 1);
    return -1;
}

int fleet_reload(fleet *f)
{
    int n = f->n, rc;
    entry *old = f->e;

    /* The children of this handle stay its own: only it can reap them. */
    f->e = NULL;
    f->n = f->cap = 0;
    rc = load(f);
    for (int i = 0; i < n; i++) {
        entry *e = find(f, old[i].name);
        if (old[i].child && e != NULL && e->pid == old[i].pid) {
            e->child = 1;
            e->log_off = old[i].log_off;
        } else if (old[i].child) {
            pid_runs(&old[i], NULL); /* reaped if it has exited */
        }
        entry_cleanup(&old[i]);
    }
    free(old);
    return rc;
}

void fleet_destroy(fleet *f, int keep)
{
    if (f == NULL)
        return;
    if ((f->flags & FLEET_DETACHED) == 0)
        fleet_stop_all(f, 30000, 10000);
    for (int i = 0; i < f->n; i++)
        entry_cleanup(&f->e[i]);
    free(f->e);
    if (f->temp && !keep && f->home != NULL)
        fleet_rmrf(f->home);
    free(f->home);
    free(f);
}

const char *fleet_home(const fleet *f)
{
    return f->home;
}

int fleet_count(const fleet *f)
{
    return f->n;
}

const char *fleet_name(const fleet *f, int i)
{
    return i >= 0 && i < f->n ? f->e[i].name : NULL;
}

int fleet_is_broker(const fleet *f, const char *name)
{
    const entry *e = find(f, name);

    return e != NULL && e->broker;
}

/* The entry for name, made or reused for a new definition; NULL with err set. */
static entry *define(fleet *f, const char *name, char *err, size_t errlen)
{
    entry *e;

    if (!valid_name(name)) {
        fleet__set_err(err, errlen, "bad name '%s' (1 to 32 of a-z 0-9 _ -)",
                       name != NULL ? name : "");
        return NULL;
    }
    e = find(f, name);
    if (e != NULL) {
        if (alive(e)) {
            fleet__set_err(err, errlen, "%s runs (pid %d): stop it before redefining it", name,
                           (int)e->pid);
            return NULL;
        }
        entry_cleanup(e);
        e->broker = 0;
        return e;
    }
    e = new_entry(f, name);
    if (e == NULL)
        fleet__set_err(err, errlen, "out of memory");
    return e;
}

static int has_newline(const char *const *v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        if (strchr(v[i], '\n') != NULL)
            return 1;
    }
    return 0;
}

static int commit(fleet *f, entry *e, char *err, size_t errlen)
{
    if (write_spec(f, e) != 0 || write_order(f) != 0) {
        fleet__set_err(err, errlen, "cannot write %s/run: %s", f->home, strerror(errno));
        return -1;
    }
    return 0;
}

int fleet_add_broker(fleet *f, const char *name, const fleet_broker_opts *b, char *err,
                     size_t errlen)
{
    entry *e = define(f, name, err, errlen);

    if (e == NULL)
        return -1;
    e->broker = 1;
    e->exe = strdup(f->nats_server);
    e->args = calloc(1, sizeof *e->args);
    e->env = calloc(1, sizeof *e->env);
    if (e->exe == NULL || e->args == NULL || e->env == NULL) {
        fleet__set_err(err, errlen, "out of memory");
        return -1;
    }
    snprintf(e->host, sizeof e->host, "%s",
             b != NULL && b->host != NULL && b->host[0] != '\0' ? b->host : "127.0.0.1");
    e->port = b != NULL ? b->port : 0;
    e->auto_port = e->port == 0;
    e->attempts = 0;
    e->max_file_mb = b != NULL ? b->max_file_mb : 0;
    e->max_payload = b != NULL ? b->max_payload : 0;
    if (b != NULL && b->cluster_name != NULL) {
        size_t len = strlen(b->cluster_name);
        if (len == 0 || len >= sizeof e->cluster ||
            strspn(b->cluster_name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789_-") != len) {
            fleet__set_err(err, errlen, "%s: bad cluster name (1 to 63 of A-Z a-z 0-9 _ -)", name);
            return -1;
        }
        for (size_t i = 0; b->routes != NULL && b->routes[i] != NULL; i++) {
            if (!valid_name(b->routes[i]) || strcmp(b->routes[i], name) == 0) {
                fleet__set_err(err, errlen, "%s: bad route '%s'", name, b->routes[i]);
                return -1;
            }
        }
        snprintf(e->cluster, sizeof e->cluster, "%s", b->cluster_name);
        e->routes = strv_dup((const char *const *)b->routes);
        if (e->routes == NULL) {
            fleet__set_err(err, errlen, "out of memory");
            return -1;
        }
        e->cluster_port = b->cluster_port;
        e->auto_cluster_port = b->cluster_port == 0;
        e->monitor_port = b->monitor_port;
        e->auto_monitor_port = b->monitor_port == 0;
    } else {
        e->cluster_port = e->monitor_port = 0;
        e->auto_cluster_port = e->auto_monitor_port = 0;
    }
    return commit(f, e, err, errlen);
}

int fleet_add_proc(fleet *f, const char *name, const char *exe, const char *const *args,
                   const char *const *env, char *err, size_t errlen)
{
    entry *e;

    if (exe == NULL || exe[0] != '/' || strchr(exe, '\n') != NULL || has_newline(args) ||
        has_newline(env)) {
        fleet__set_err(err, errlen,
                       "%s: the executable must be an absolute path, and no argument or "
                       "setting may hold a newline",
                       name != NULL ? name : "");
        return -1;
    }
    e = define(f, name, err, errlen);
    if (e == NULL)
        return -1;
    e->exe = strdup(exe);
    e->args = strv_dup(args);
    e->env = strv_dup(env);
    if (e->exe == NULL || e->args == NULL || e->env == NULL) {
        fleet__set_err(err, errlen, "out of memory");
        return -1;
    }
    return commit(f, e, err, errlen);
}

int fleet_add_like(fleet *f, const char *name, const char *like, const char *const *env, char *err,
                   size_t errlen)
{
    const entry *t = find(f, like);
    entry *e;

    if (t == NULL || t->broker || strcmp(like, name != NULL ? name : "") == 0 || has_newline(env)) {
        fleet__set_err(err, errlen, "%s: no process '%s' to start like it",
                       name != NULL ? name : "", like != NULL ? like : "");
        return -1;
    }
    /* The template's strings are copied before define() may move the entries. */
    char *exe = strdup(t->exe), *ready = t->ready != NULL ? strdup(t->ready) : NULL;
    char **args = strv_dup((const char *const *)t->args);
    char **tenv = strv_dup((const char *const *)t->env);
    e = exe != NULL && args != NULL && tenv != NULL && (t->ready == NULL || ready != NULL)
            ? define(f, name, err, errlen)
            : NULL;
    if (e == NULL) {
        if (exe == NULL || args == NULL || tenv == NULL)
            fleet__set_err(err, errlen, "out of memory");
        free(exe);
        free(ready);
        strv_free(args);
        strv_free(tenv);
        return -1;
    }
    e->exe = exe;
    e->args = args;
    e->env = tenv;
    e->ready = ready;
    if (commit(f, e, err, errlen) != 0)
        return -1;
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (fleet_set_env(f, name, env[i], err, errlen) != 0)
            return -1;
    return 0;
}

int fleet_set_ready_text(fleet *f, const char *name, const char *text, char *err, size_t errlen)
{
    entry *e = find(f, name);
    char *copy;

    if (e == NULL || e->broker || text == NULL || text[0] == '\0' || strchr(text, '\n') != NULL) {
        fleet__set_err(err, errlen, "%s: cannot wait for '%s'", name != NULL ? name : "",
                       text != NULL ? text : "");
        return -1;
    }
    copy = strdup(text);
    if (copy == NULL) {
        fleet__set_err(err, errlen, "out of memory");
        return -1;
    }
    free(e->ready);
    e->ready = copy;
    return commit(f, e, err, errlen);
}

const char *fleet_arg(const fleet *f, const char *name, const char *prefix)
{
    const entry *e = find(f, name);
    size_t n = prefix != NULL ? strlen(prefix) : 0;

    for (size_t i = 0; e != NULL && e->args != NULL && e->args[i] != NULL; i++) {
        if (strncmp(e->args[i], prefix, n) == 0)
            return e->args[i] + n;
    }
    return NULL;
}

/* Removes KEY from e's environment (nothing to do when it has none). */
static int unset_env(fleet *f, entry *e, const char *key, char *err, size_t errlen)
{
    size_t klen = strlen(key), k = 0;

    for (size_t i = 0; e->env[i] != NULL; i++) {
        if (strncmp(e->env[i], key, klen) == 0 && e->env[i][klen] == '=')
            free(e->env[i]);
        else
            e->env[k++] = e->env[i];
    }
    e->env[k] = NULL;
    return commit(f, e, err, errlen);
}

int fleet_set_env(fleet *f, const char *name, const char *kv, char *err, size_t errlen)
{
    entry *e = find(f, name);
    const char *eq = kv != NULL ? strchr(kv, '=') : NULL;
    size_t klen;
    char *copy;

    if (e == NULL || kv == NULL || eq == kv || kv[0] == '\0' || strchr(kv, '\n') != NULL) {
        fleet__set_err(err, errlen, "%s: cannot set '%s'", name, kv != NULL ? kv : "");
        return -1;
    }
    if (eq == NULL)
        return unset_env(f, e, kv, err, errlen);
    klen = (size_t)(eq - kv) + 1;
    copy = strdup(kv);
    if (copy == NULL)
        return -1;
    for (size_t i = 0; e->env[i] != NULL; i++) {
        if (strncmp(e->env[i], kv, klen) == 0) {
            free(e->env[i]);
            e->env[i] = copy;
            return commit(f, e, err, errlen);
        }
    }
    if (strv_push(&e->env, copy) != 0) {
        free(copy);
        return -1;
    }
    return commit(f, e, err, errlen);
}

const char *fleet_get_env(const fleet *f, const char *name, const char *key)
{
    const entry *e = find(f, name);
    size_t klen = key != NULL ? strlen(key) : 0;

    for (size_t i = 0; e != NULL && klen > 0 && e->env != NULL && e->env[i] != NULL; i++) {
        if (strncmp(e->env[i], key, klen) == 0 && e->env[i][klen] == '=')
            return e->env[i] + klen + 1;
    }
    return NULL;
}

int fleet_remove(fleet *f, const char *name)
{
    entry *e = find(f, name);
    char path[PATH_CAP];

    if (e == NULL || alive(e))
        return -1;
    if (path_of(f, path, sizeof path, "run/%s.spec", name) == 0)
        unlink(path);
    remove_pid(f, name);
    entry_cleanup(e);
    memmove(e, e + 1, (size_t)(f->n - (e - f->e) - 1) * sizeof *e);
    f->n--;
    return write_order(f);
}

/* ---- start, readiness, stop ---------------------------------------------------- */

enum { SEC_ENV_MAX = 4 }; /* credentials, CA, certificate, key */

/* Whether env (NULL-terminated "K=V") sets the variable of kv. */
static int env_has(char *const *env, const char *kv)
{
    size_t klen = strcspn(kv, "=");
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (strncmp(env[i], kv, klen + 1) == 0)
            return 1;
    return 0;
}

/* A process's environment: its own, and what the fleet's security gives its identity
 * (created now if new) unless its own names it (a test running it as someone else).
 * *extra holds what to free. Returns the list, or NULL with err set. */
static char **proc_env(fleet *f, entry *e, char **extra, char *err, size_t errlen)
{
    char identity[NAME_CAP];
    size_t n = 0, k = 0;
    char **env;

    extra[0] = NULL;
    if (fleet_proc_identity(f, e->name, err, errlen) != 0)
        return NULL;
    fleet__sec_identity_of(e->name, identity, sizeof identity);
    fleet__sec_env(f->home, identity, extra, SEC_ENV_MAX + 1);
    while (e->env != NULL && e->env[n] != NULL)
        n++;
    env = calloc(n + SEC_ENV_MAX + 1, sizeof *env);
    if (env == NULL) {
        fleet__set_err(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        env[k++] = e->env[i];
    for (size_t i = 0; extra[i] != NULL; i++)
        if (!env_has(e->env, extra[i]))
            env[k++] = extra[i];
    return env;
}

static int spawn_entry(fleet *f, entry *e, char *err, size_t errlen)
{
    char log[PATH_CAP], conf[PATH_CAP], store[PATH_CAP];
    const char **argv = NULL;
    char **env = e->env, *extra[SEC_ENV_MAX + 1] = {NULL};
    size_t nargs = 0;
    int rc = -1;

    if (path_of(f, log, sizeof log, "logs/%s.log", e->name) != 0)
        goto out;
    if (e->broker) {
        if (assign_ports(f, e) != 0) {
            fleet__set_err(err, errlen, "%s: no free port or a route to an unknown broker: %s",
                           e->name, strerror(errno));
            goto out;
        }
        if (path_of(f, store, sizeof store, "%s", e->name) != 0 || saga_mkdir_p(store) != 0 ||
            write_conf(f, e) != 0 || write_spec(f, e) != 0) {
            fleet__set_err(err, errlen, "cannot write the configuration of %s in %s: %s", e->name,
                           f->home, strerror(errno));
            goto out;
        }
        path_of(f, conf, sizeof conf, "%s.conf", e->name);
    } else if ((env = proc_env(f, e, extra, err, errlen)) == NULL) {
        goto out;
    }
    while (e->args != NULL && e->args[nargs] != NULL)
        nargs++;
    argv = calloc(nargs + 4, sizeof *argv);
    if (argv == NULL)
        goto out;
    argv[0] = e->exe;
    if (e->broker) {
        argv[1] = "-c";
        argv[2] = conf;
    }
    for (size_t i = 0; i < nargs; i++)
        argv[(e->broker ? 3 : 1) + i] = e->args[i];
    e->log_off = file_size(log);
    e->pid = fleet_spawn(argv, (const char *const *)env, log, f->flags);
    if (e->pid < 0) {
        fleet__set_err(err, errlen, "cannot start %s (%s): %s", e->name, e->exe, strerror(errno));
        goto out;
    }
    e->child = 1;
    if (write_pid(f, e) != 0) {
        fleet__set_err(err, errlen, "cannot write %s/run/%s.pid: %s", f->home, e->name,
                       strerror(errno));
        fleet_pid_kill(e->pid);
        e->pid = -1;
        e->child = 0;
        goto out;
    }
    rc = 0;
out:
    free(argv);
    if (env != e->env)
        free(env);
    for (size_t i = 0; extra[i] != NULL; i++)
        free(extra[i]);
    return rc;
}

int fleet_start(fleet *f, const char *name, char *err, size_t errlen)
{
    entry *e = find(f, name);

    if (e == NULL) {
        fleet__set_err(err, errlen, "unknown process '%s'", name != NULL ? name : "");
        return -1;
    }
    if (alive(e))
        return 0;
    return spawn_entry(f, e, err, errlen);
}

/* Whether one of e's ports was chosen freely and may still change. */
static int auto_ports(const entry *e)
{
    return e->auto_port || e->auto_cluster_port || e->auto_monitor_port;
}

/* Forgets the freely chosen ports of e, so that its next start chooses new ones. */
static void forget_auto_ports(entry *e)
{
    if (e->auto_port)
        e->port = 0;
    if (e->auto_cluster_port)
        e->cluster_port = 0;
    if (e->auto_monitor_port)
        e->monitor_port = 0;
}

int fleet_wait_ready(fleet *f, const char *name, int timeout_ms, char *err, size_t errlen)
{
    entry *e = find(f, name);
    int64_t deadline = fleet_now_ms() + timeout_ms;
    char log[PATH_CAP], url[128];

    if (e == NULL) {
        fleet__set_err(err, errlen, "unknown process '%s'", name != NULL ? name : "");
        return -1;
    }
    path_of(f, log, sizeof log, "logs/%s.log", e->name);
    for (;;) {
        if (!alive(e)) {
            int taken = e->broker && file_contains(log, e->log_off, LOG_PORT_TAKEN);
            if (!taken) {
                fleet__set_err(err, errlen, "%s exited before it was ready (log: %s)", e->name,
                               log);
                return -1;
            }
            /* Someone took the port between choosing and binding it, or the last run
             * of this server has not let it go yet. */
            if (auto_ports(e) && ++e->attempts < PORT_ATTEMPTS)
                forget_auto_ports(e);
            else if (auto_ports(e) || fleet_now_ms() >= deadline) {
                fleet__set_err(err, errlen, "%s could not bind %s:%d (log: %s)", e->name, e->host,
                               e->port, log);
                return -1;
            } else
                sleep_ms(RESPAWN_PAUSE_MS);
            if (spawn_entry(f, e, err, errlen) != 0)
                return -1;
            continue;
        }
        if (e->broker) {
            fleet_url(f, e->name, url, sizeof url);
            if (file_contains(log, e->log_off, LOG_NATS_READY) && jetstream_answers(f, url)) {
                /* From now on the ports are the broker's: clients and peers know them. */
                if (auto_ports(e)) {
                    e->auto_port = 0;
                    e->auto_cluster_port = 0;
                    e->auto_monitor_port = 0;
                    write_spec(f, e);
                }
                return 0;
            }
        } else if (file_contains(log, e->log_off, e->ready != NULL ? e->ready : LOG_SVC_READY)) {
            return 0;
        }
        if (f->cancel != NULL && *f->cancel) {
            fleet__set_err(err, errlen, "interrupted while waiting for %s", e->name);
            return -1;
        }
        if (fleet_now_ms() >= deadline) {
            fleet__set_err(err, errlen, "%s was not ready within %d s (log: %s)", e->name,
                           timeout_ms / 1000, log);
            return -1;
        }
        sleep_ms(POLL_MS);
    }
}

int fleet_start_ready(fleet *f, const char *name, int timeout_ms, char *err, size_t errlen)
{
    if (fleet_start(f, name, err, errlen) != 0)
        return -1;
    return fleet_wait_ready(f, name, timeout_ms, err, errlen);
}

/* Whether a process that exited with status st stopped cleanly. nats-server shuts
 * JetStream down cleanly on SIGTERM and then exits with status 1. */
static int clean_exit(const entry *e, int st)
{
    if (!WIFEXITED(st))
        return 0;
    return WEXITSTATUS(st) == 0 || (e->broker && WEXITSTATUS(st) == 1);
}

/* SIGTERM to each entry of list that runs, then waits up to ms for all of them and
 * SIGKILLs the rest. Returns 0 when all exited by themselves and cleanly, 1 else. */
static int stop_list(fleet *f, entry **list, int n, int ms)
{
    int64_t deadline = fleet_now_ms() + ms;
    int rc = 0;
    int left;

    for (int i = 0; i < n; i++) {
        if (alive(list[i]) && kill(list[i]->pid, SIGTERM) != 0)
            rc = 1;
    }
    for (;;) {
        left = 0;
        for (int i = 0; i < n; i++) {
            int st = 0;
            int was_child = list[i]->child;
            if (list[i]->pid <= 0)
                continue;
            if (pid_runs(list[i], &st)) {
                left++;
                continue;
            }
            /* A child's exit status is known; another process's is not (detached). */
            if (was_child && !clean_exit(list[i], st))
                rc = 1;
            list[i]->pid = -1;
            remove_pid(f, list[i]->name);
        }
        if (left == 0 || fleet_now_ms() >= deadline)
            break;
        sleep_ms(POLL_MS);
    }
    for (int i = 0; i < n && left > 0; i++) {
        if (list[i]->pid > 0 && fleet_kill(f, list[i]->name) == 0)
            rc = 1;
    }
    return rc;
}

int fleet_stop(fleet *f, const char *name, int timeout_ms)
{
    entry *e = find(f, name);

    if (e == NULL)
        return -1;
    return stop_list(f, &e, 1, timeout_ms);
}

int fleet_stop_names(fleet *f, const char *const *names, int n, int timeout_ms)
{
    entry **list = calloc((size_t)n + 1, sizeof *list);
    int rc = 0;

    if (list == NULL)
        return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        list[i] = find(f, names[i]);
        rc = list[i] == NULL ? -1 : 0;
    }
    if (rc == 0)
        rc = stop_list(f, list, n, timeout_ms);
    free(list);
    return rc;
}

int fleet_stop_all(fleet *f, int svc_ms, int broker_ms)
{
    entry **list = calloc((size_t)f->n + 1, sizeof *list);
    int n = 0;
    int rc = 0;

    if (list == NULL)
        return 1;
    for (int i = 0; i < f->n; i++) {
        if (!f->e[i].broker)
            list[n++] = &f->e[i];
    }
    rc |= stop_list(f, list, n, svc_ms);
    n = 0;
    for (int i = 0; i < f->n; i++) {
        if (f->e[i].broker)
            list[n++] = &f->e[i];
    }
    rc |= stop_list(f, list, n, broker_ms);
    free(list);
    return rc;
}

int fleet_kill(fleet *f, const char *name)
{
    entry *e = find(f, name);
    int64_t deadline;

    if (e == NULL)
        return -1;
    if (!alive(e)) {
        remove_pid(f, name);
        return 0;
    }
    if (kill(e->pid, SIGKILL) != 0)
        return -1;
    /* Wait for the kernel to take it down, so that a following start cannot see it. */
    deadline = fleet_now_ms() + KILL_WAIT_MS;
    while (alive(e)) {
        if (fleet_now_ms() >= deadline)
            return -1;
        sleep_ms(POLL_MS / 2);
    }
    e->pid = -1;
    remove_pid(f, name);
    return 0;
}

int fleet_restart(fleet *f, const char *name, int stop_ms, int ready_ms, char *err, size_t errlen)
{
    entry *e = find(f, name);

    if (e == NULL) {
        fleet__set_err(err, errlen, "unknown process '%s'", name != NULL ? name : "");
        return -1;
    }
    if (alive(e) && fleet_stop(f, name, stop_ms) < 0) {
        fleet__set_err(err, errlen, "cannot stop %s", name);
        return -1;
    }
    return fleet_start_ready(f, name, ready_ms, err, errlen);
}

int fleet_get_status(fleet *f, const char *name, fleet_status *st)
{
    entry *e = find(f, name);

    if (e == NULL || st == NULL)
        return -1;
    st->alive = alive(e);
    st->pid = e->pid > 0 ? e->pid : read_pid(f, name);
    st->port = e->broker ? e->port : 0;
    st->cluster_port = e->broker ? e->cluster_port : 0;
    st->monitor_port = e->broker ? e->monitor_port : 0;
    return 0;
}

static const char *scheme(const fleet *f)
{
    return fleet_security(f) & FLEET_TLS ? "tls" : "nats";
}

const char *fleet_url(const fleet *f, const char *name, char *buf, size_t cap)
{
    const entry *e = NULL;

    for (int i = 0; i < f->n && e == NULL; i++) {
        if (f->e[i].broker && (name == NULL || strcmp(f->e[i].name, name) == 0))
            e = &f->e[i];
    }
    if (e == NULL)
        return NULL;
    snprintf(buf, cap, "%s://%s:%d", scheme(f), e->host, e->port);
    return buf;
}

const char *fleet_log_path(const fleet *f, const char *name, char *buf, size_t cap)
{
    if (path_of(f, buf, cap, "logs/%s.log", name) != 0 && cap > 0)
        buf[0] = '\0';
    return buf;
}

const char *fleet_store_dir(const fleet *f, const char *name, char *buf, size_t cap)
{
    if (path_of(f, buf, cap, "%s", name) != 0 && cap > 0)
        buf[0] = '\0';
    return buf;
}

const char *fleet_log_tail(const fleet *f, const char *name, char *buf, size_t cap)
{
    char log[PATH_CAP];
    off_t size, start;
    ssize_t n = -1;
    int fd;
    char *nl;

    if (cap == 0)
        return buf;
    buf[0] = '\0';
    if (path_of(f, log, sizeof log, "logs/%s.log", name) != 0)
        return buf;
    size = file_size(log);
    start = size > (off_t)(cap - 1) ? size - (off_t)(cap - 1) : 0;
    fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = pread(fd, buf, cap - 1, start);
        close(fd);
    }
    buf[n > 0 ? n : 0] = '\0';
    /* Start at a line boundary when the tail begins mid-line. */
    nl = start > 0 ? strchr(buf, '\n') : NULL;
    if (nl != NULL)
        memmove(buf, nl + 1, strlen(nl + 1) + 1);
    return buf;
}

/* ---- clusters: URLs, leaders ---------------------------------------------------- */

const char *fleet_urls(const fleet *f, char *buf, size_t cap)
{
    size_t used = 0;

    if (cap == 0)
        return NULL;
    buf[0] = '\0';
    for (int i = 0; i < f->n; i++) {
        const entry *e = &f->e[i];
        int n;
        if (!e->broker)
            continue;
        n = snprintf(buf + used, cap - used, "%s%s://%s:%d", used > 0 ? "," : "", scheme(f),
                     e->host, e->port);
        if (n < 0 || (size_t)n >= cap - used)
            return NULL;
        used += (size_t)n;
    }
    return used > 0 ? buf : NULL;
}

const char *fleet_home_urls(const char *home, char *buf, size_t cap)
{
    /* A handle of its own, without fleet_create: that one creates run/ and logs/, and a
     * client asking where a fleet is must not make one. */
    fleet f = {.flags = FLEET_DETACHED, .home = (char *)home};
    const char *urls = NULL;

    if (home != NULL && load(&f) == 0 && fleet_urls(&f, buf, cap) != NULL && buf[0] != '\0')
        urls = buf;
    for (int i = 0; i < f.n; i++)
        entry_cleanup(&f.e[i]);
    free(f.e);
    return urls;
}

natsStatus fleet_set_servers(natsOptions *opts, const char *urls)
{
    enum { MAX_SERVERS = 64 };
    const char *servers[MAX_SERVERS];
    size_t cap = urls != NULL ? strlen(urls) + 1 : 1;
    char *buf = malloc(cap);
    natsStatus s = NATS_NO_MEMORY;

    if (buf != NULL) {
        int n = saga_config_servers(urls, buf, cap, servers, MAX_SERVERS);
        /* cnats copies the strings. */
        s = n > 0 ? natsOptions_SetServers(opts, servers, n) : NATS_INVALID_ARG;
    }
    free(buf);
    return s;
}

const char *fleet_server_name(const fleet *f, const char *name, char *buf, size_t cap)
{
    const entry *e = find(f, name);

    if (cap == 0)
        return buf;
    buf[0] = '\0';
    if (e != NULL && e->broker && e->cluster[0] != '\0')
        snprintf(buf, cap, MEMBER_NAME_FMT, e->cluster, e->name);
    else if (e != NULL && e->broker)
        snprintf(buf, cap, SERVER_NAME_FMT, e->name, e->port);
    return buf;
}

const char *fleet_broker_of_server(const fleet *f, const char *server_name)
{
    char sn[NAME_CAP + 80];

    for (int i = 0; server_name != NULL && i < f->n; i++) {
        if (!f->e[i].broker)
            continue;
        fleet_server_name(f, f->e[i].name, sn, sizeof sn);
        if (strcmp(sn, server_name) == 0)
            return f->e[i].name;
    }
    return NULL;
}

/* GET path from the HTTP server at host:port (IPv4), at most HTTP_CAP bytes; returns
 * the body as parsed JSON (json_decref it) or NULL. Monitoring is plain HTTP/1.0:
 * the server closes the connection after the answer. */
static json_t *http_get_json(const char *host, int port, const char *path)
{
    struct sockaddr_in sa;
    char req[256];
    char *buf = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    int64_t deadline = fleet_now_ms() + PROBE_TIMEOUT_MS;
    int fd = -1;
    const char *body;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        goto out;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        goto out;
    buf = malloc(HTTP_CAP + 1);
    if (buf == NULL)
        goto out;
    while (len < HTTP_CAP) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - fleet_now_ms();
        ssize_t n;
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            goto out;
        n = read(fd, buf + len, HTTP_CAP - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strstr(buf, " 200 ") == NULL || body == NULL)
        goto out;
    body += 4;
    /* Reals: /jsz writes unlimited reservations as 2^64-1, beyond jansson's integers. */
    doc = json_loadb(body, len - (size_t)(body - buf), JSON_DECODE_INT_AS_REAL, NULL);
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return doc;
}

int fleet_meta_leader(fleet *f, char *buf, size_t cap)
{
    for (int i = 0; i < f->n; i++) {
        entry *e = &f->e[i];
        json_t *jsz;
        const char *leader, *name = NULL;
        if (!e->broker || e->cluster[0] == '\0' || e->monitor_port <= 0 || !alive(e))
            continue;
        jsz = http_get_json(e->host, e->monitor_port, "/jsz");
        leader = json_string_value(json_object_get(json_object_get(jsz, "meta_cluster"), "leader"));
        if (leader != NULL && leader[0] != '\0')
            name = fleet_broker_of_server(f, leader);
        /* The survivors name a killed leader until they notice it is gone. */
        if (name != NULL && !alive(find(f, name)))
            name = NULL;
        if (name != NULL)
            snprintf(buf, cap, "%s", name);
        json_decref(jsz);
        if (name != NULL)
            return 0;
    }
    return -1;
}

/* stream's entry in a /jsz?streams=true answer, or NULL. */
static json_t *jsz_stream(json_t *jsz, const char *stream)
{
    size_t i, k;
    json_t *acc, *st;

    json_array_foreach(json_object_get(jsz, "account_details"), i, acc)
    {
        json_array_foreach(json_object_get(acc, "stream_detail"), k, st)
        {
            const char *name = json_string_value(json_object_get(st, "name"));
            if (name != NULL && strcmp(name, stream) == 0)
                return st;
        }
    }
    return NULL;
}

int fleet_stream_copies(fleet *f, const char *stream, fleet_stream_copy *out, int cap)
{
    int n = 0, cluster = 0;

    for (int i = 0; i < f->n && n < cap; i++) {
        entry *e = &f->e[i];
        if (!e->broker || e->cluster[0] == '\0' || e->monitor_port <= 0)
            continue;
        cluster = 1;
        fleet_stream_copy *c = &out[n++];
        memset(c, 0, sizeof *c);
        snprintf(c->broker, sizeof c->broker, "%s", e->name);
        if (!alive(e))
            continue;
        json_t *jsz = http_get_json(e->host, e->monitor_port, "/jsz?streams=true");
        json_t *state = json_object_get(jsz_stream(jsz, stream), "state");
        if (json_is_object(state)) {
            c->known = 1;
            c->messages = (uint64_t)json_number_value(json_object_get(state, "messages"));
            c->first_seq = (uint64_t)json_number_value(json_object_get(state, "first_seq"));
            c->last_seq = (uint64_t)json_number_value(json_object_get(state, "last_seq"));
        }
        json_decref(jsz);
    }
    return cluster ? n : -1;
}

int fleet_jetstream(fleet *f, natsConnection **nc, jsCtx **js)
{
    char urls[8192];
    natsOptions *opts = NULL;
    int rc = -1;

    *nc = NULL;
    *js = NULL;
    if (fleet_urls(f, urls, sizeof urls) == NULL || natsOptions_Create(&opts) != NATS_OK)
        return -1;
    /* Every broker of the list is tried in turn: any member can answer. */
    if (fleet_set_servers(opts, urls) != NATS_OK ||
        fleet_client_options(f, OPERATOR_IDENTITY, opts) != NATS_OK ||
        natsOptions_SetNoRandomize(opts, true) != NATS_OK ||
        natsOptions_SetTimeout(opts, PROBE_TIMEOUT_MS) != NATS_OK ||
        natsOptions_SetAllowReconnect(opts, false) != NATS_OK)
        goto out;
    if (natsConnection_Connect(nc, opts) != NATS_OK)
        goto out;
    if (natsConnection_JetStream(js, *nc, NULL) != NATS_OK) {
        natsConnection_Destroy(*nc);
        *nc = NULL;
        goto out;
    }
    rc = 0;
out:
    natsOptions_Destroy(opts);
    return rc;
}

int fleet_consumers_unsettled(fleet *f, const char *stream)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsConsumerInfoList *list = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus s;
    int n = -1;

    if (fleet_jetstream(f, &nc, &js) != 0)
        return -1;
    jsOptions_Init(&jo);
    jo.Wait = PROBE_TIMEOUT_MS;
    s = js_Consumers(&list, js, stream, &jo, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        n = 0;
        goto out;
    }
    if (s != NATS_OK || list == NULL)
        goto out;
    n = 0;
    for (int i = 0; i < list->Count; i++) {
        const jsConsumerInfo *ci = list->List[i];
        n += ci->PushBound || ci->Cluster == NULL || ci->Cluster->Leader == NULL ||
             ci->Cluster->Leader[0] == '\0';
    }
out:
    if (list != NULL)
        jsConsumerInfoList_Destroy(list);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

int fleet_stream_leader(fleet *f, const char *stream, char *leader, size_t cap, int *replicas)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsOptions jo;
    const char *name = NULL;
    int rc = -1;

    if (fleet_jetstream(f, &nc, &js) != 0)
        return -1;
    jsOptions_Init(&jo);
    jo.Wait = PROBE_TIMEOUT_MS;
    if (js_GetStreamInfo(&si, js, stream, &jo, NULL) != NATS_OK || si == NULL)
        goto out;
    if (si->Cluster != NULL && si->Cluster->Leader != NULL)
        name = fleet_broker_of_server(f, si->Cluster->Leader);
    if (name == NULL || !alive(find(f, name)))
        goto out;
    snprintf(leader, cap, "%s", name);
    if (replicas != NULL)
        *replicas = si->Config != NULL && si->Config->Replicas > 0 ? (int)si->Config->Replicas : 1;
    rc = 0;
out:
    if (si != NULL)
        jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

/* ---- security ------------------------------------------------------------------ */

int fleet_security(const fleet *f)
{
    return fleet__sec_flags(f->home);
}

/* Rewrites the configuration of every running broker and has it reload (SIGHUP), so
 * that a new identity can connect. */
static int reload_brokers(fleet *f)
{
    int rc = 0;
    for (int i = 0; i < f->n; i++) {
        entry *e = &f->e[i];
        if (e->broker && alive(e) && (write_conf(f, e) != 0 || kill(e->pid, SIGHUP) != 0))
            rc = -1;
    }
    return rc;
}

int fleet_secure(fleet *f, int flags, const char *host, char *err, size_t errlen)
{
    const char *hosts[66];
    int n = 0;
    if (host != NULL)
        hosts[n++] = host;
    for (int i = 0; i < f->n && n < 65; i++)
        if (f->e[i].broker)
            hosts[n++] = f->e[i].host;
    hosts[n] = NULL;
    return fleet__sec_enable(f->home, flags, hosts, err, errlen);
}

int fleet_identity(fleet *f, const char *identity, char *err, size_t errlen)
{
    int created = 0;
    if (fleet__sec_identity(f->home, identity, &created, err, errlen) != 0)
        return -1;
    if (created && reload_brokers(f) != 0) {
        fleet__set_err(err, errlen, "cannot reload the brokers with the new identity %s", identity);
        return -1;
    }
    return 0;
}

int fleet_proc_identity(fleet *f, const char *name, char *err, size_t errlen)
{
    char identity[NAME_CAP];
    if (!(fleet_security(f) & FLEET_AUTH))
        return 0;
    fleet__sec_identity_of(name, identity, sizeof identity);
    return fleet_identity(f, identity, err, errlen);
}

const char *fleet_creds_path(const fleet *f, const char *identity, char *buf, size_t cap)
{
    if (path_of(f, buf, cap, "auth/%s.creds", identity) != 0 && cap > 0)
        buf[0] = '\0';
    return buf;
}

natsStatus fleet_client_options(const fleet *f, const char *identity, natsOptions *opts)
{
    return fleet__sec_client(f->home, identity, opts);
}
