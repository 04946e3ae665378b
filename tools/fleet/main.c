/* main.c - saga-fleet: starts, stops and inspects a local saga fleet in SAGA_HOME with
 * the launcher library (fleet.h); deploy/fleet wraps it. */
#include "fleet.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <nats/nats.h>

#include "instances.h"
#include "rescale.h"
#include "saga/wire.h"

#ifndef SAGA_FLEET_HOME
#define SAGA_FLEET_HOME "var"
#endif
#ifndef SAGA_FLEET_BUILD_DIR
#define SAGA_FLEET_BUILD_DIR "build"
#endif

#define DEFAULT_URL "nats://127.0.0.1:4222"
#define BROKER "nats"
#define PROMETHEUS "prometheus" /* --with prometheus: a Prometheus server, not a participant */
#define PROMETHEUS_EXE "/usr/bin/prometheus"
#define METRICS_ANY_PORT "SAGA_METRICS_ADDR=127.0.0.1:0"
#define NODE_FMT "nats-%d" /* the brokers of a cluster: nats-1, nats-2, ... */
#define CLUSTER_NAME "saga"
#define MAX_NODES 5
#define NSVC 6
#define MAX_PROCS 64
#define MAX_GATES 32
#define PATH_CAP 4096

enum {
    NATS_READY_MS = 15000,
    READY_MS = 30000,     /* for every process of `up` to answer */
    STOP_MS = 20000,      /* services' grace on SIGTERM before SIGKILL */
    NATS_STOP_MS = 10000, /* nats-server's */
    STATS_MS = 1000,
    DISCOVER_QUIET_MS = 150, /* after the first discovery answer, how long to wait for more */
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
};

/* The HTTP front door and web console: a client of the fleet, not a participant (it
 * answers no saga.ctl.gateway.stats), started last, on SAGA_GATEWAY_ADDR or 8080. */
#define GATEWAY "gateway"
#define GATEWAY_ADDR "127.0.0.1:8080"

/* The five of the saga, and the order history read model that sagactl trace asks. */
static const char *const SERVICES[NSVC] = {"order",    "payment",      "inventory",
                                           "shipping", "notification", "history"};

extern char **environ;

static const char USAGE[] =
    "Usage: saga-fleet COMMAND [ARGS]   (deploy/fleet runs it)\n"
    "\n"
    "Runs a local saga fleet in the background: a nats-server with JetStream and the\n"
    "services order, payment, inventory, shipping and notification, history (the\n"
    "order history read model) and gateway (the HTTP order API and web console,\n"
    "saga-gateway).\n"
    "\n"
    "Commands (each takes --help):\n"
    "  up [--tls] [--cluster N] [--instances N|SVC=N,...] [--with NAME|PATH,...]\n"
    "     [--gate SVC=PARTICIPANT]...\n"
    "                   start nats-server (or a cluster of N: nats-1..nats-N) and the\n"
    "                   services (several instances of some: payment-1, payment-2, ...),\n"
    "                   wait until each is ready; every connection authenticates\n"
    "                   (SAGA_HOME/auth), --tls: and is TLS\n"
    "  down             stop the services (SIGTERM, SIGKILL after 20 s), then nats-server\n"
    "  status [--json]  each process: pid, up/down, partitions (\"waiting\" while\n"
    "                   their instance is down), events processed, pending, metrics\n"
    "                   address; the leaders of a cluster;\n"
    "                   Prometheus's web UI\n"
    "  logs NAME [-f]   show (or follow) the log of NAME (or nats, nats-2, ...)\n"
    "  kill NAME        SIGKILL one process (or nats, nats-2, ...): a crash, for tests\n"
    "  restart NAME [--env KEY=VALUE]...\n"
    "                   stop NAME if it runs, start it with the settings it was started\n"
    "                   with (changed by --env), wait until ready\n"
    "  scale SVC N      run SVC as N instances instead (a hand-over while orders flow:\n"
    "                   partitions move between the instances' data directories)\n"
    "  identity NAME    the credentials of participant NAME (created and loaded into\n"
    "                   the running broker if new), for one the fleet does not start\n"
    "\n"
    "Environment:\n"
    "  SAGA_HOME       the fleet's files (default: var/ in the repository): run/NAME.pid\n"
    "                  and run/NAME.spec (how NAME is started), logs/NAME.log, data/NAME/,\n"
    "                  mail/, nats/ (JetStream store), nats.conf\n"
    "  SAGA_NATS_URL   where the services connect (default " DEFAULT_URL ");\n"
    "                  the fleet's nats-server listens on its host and port (a cluster\n"
    "                  uses its host and free ports, and gives the services the list of\n"
    "                  its nodes' URLs)\n"
    "  SAGA_BUILD_DIR  build tree with services/saga-* (default: build/)\n"
    "  SAGA_GATEWAY_ADDR  where the gateway listens (default " GATEWAY_ADDR ", or a free\n"
    "                  port when 8080 is taken; :0 always a free one); status shows its URL\n"
    "  SAGA_FLEET_CRASH_AT  after_moves: a drill; saga-fleet kills itself in inventory's\n"
    "                  hand-over once the records moved, before the stock is re-split\n"
    "\n"
    "Exit status: 0 on success, 1 on failure, 2 on bad usage.\n";

static const char USAGE_UP[] =
    "Usage: saga-fleet up [--tls] [--cluster N] [--instances N|SVC=N[,...]]\n"
    "                     [--with NAME|PATH[,...]]...\n"
    "                     [--gate SVC=PARTICIPANT]...\n"
    "\n"
    "Starts nats-server, waits until it answers, starts the six services, the\n"
    "participants named by --with and the gateway (web console), and waits until each\n"
    "has logged event=ready (30 s).\n"
    "A fleet that is already up is left alone; missing processes are started.\n"
    "\n"
    "Every connection authenticates: the first up writes one identity per participant,\n"
    "operator (sagactl) and client (order-placing clients) to SAGA_HOME/auth/NAME.creds\n"
    "(mode 0600), and the broker lets each publish and subscribe only where\n"
    "docs/security.md says. Each process gets its own with SAGA_NATS_CREDS; sagactl\n"
    "finds SAGA_HOME/auth/operator.creds by itself.\n"
    "\n"
    "  --tls         TLS only (first up, or after down): a CA of the fleet's own and\n"
    "                server and client certificates in SAGA_HOME/tls/ (openssl); every\n"
    "                client verifies the server, the server every client (and, on a\n"
    "                cluster, the routes each other). Stays on until SAGA_HOME/tls goes.\n"
    "  --cluster N   a JetStream cluster of N nodes (3 to 5), nats-1..nats-N, each with\n"
    "                its store in SAGA_HOME/nats-I and free client, route and monitoring\n"
    "                ports; up waits until the cluster has elected a meta leader. The\n"
    "                services get SAGA_NATS_URL=the list of the nodes' URLs and\n"
    "                SAGA_REPLICAS=N (unless set), so that losing one node loses nothing.\n"
    "                A later up without --cluster keeps the cluster until down.\n"
    "  --instances N | SVC=N[,...]\n"
    "                run N instances of every service (or of the services named; the\n"
    "                others one), 1 to 16: SVC-1..SVC-N, instance I with SAGA_INSTANCE=I/N\n"
    "                (it owns the partitions P with P % N == I - 1) and its data in\n"
    "                SAGA_HOME/data/SVC-I/. A home keeps its instances until down; asking\n"
    "                for another count there is refused: deploy/fleet scale SVC N\n"
    "                moves partitions between instances (a hand-over, docs/scaling.md).\n"
    "  --with NAME   saga-NAME from the build tree's services/ (e.g. fraud); the order\n"
    "                service accepts vetoes from every --with participant and gate\n"
    "                (SAGA_VETOERS), from no one else\n"
    "  --with PATH   any executable (a NAME containing '/'), named after its file name\n"
    "                without a saga- prefix, run with the fleet's environment\n"
    "  --with prometheus\n"
    "                a Prometheus server (" PROMETHEUS_EXE ", Debian package prometheus)\n"
    "                that scrapes every process of the fleet each second: the services\n"
    "                get " METRICS_ANY_PORT " (unless the environment sets\n"
    "                SAGA_METRICS_ADDR), and the fleet writes their metrics addresses to\n"
    "                SAGA_HOME/prometheus/targets.json (file-based discovery) at up,\n"
    "                restart and status. Its configuration and storage are in\n"
    "                SAGA_HOME/prometheus/; its web UI address is in status.\n"
    "  --gate SVC=PARTICIPANT\n"
    "                SVC's gated step waits for PARTICIPANT's clearance: SVC runs with\n"
    "                SAGA_GATES=PARTICIPANT (added to a SAGA_GATES of the environment);\n"
    "                e.g. --with fraud --gate shipping=fraud\n"
    "\n"
    "Each process's settings (executable, environment) are kept in SAGA_HOME/run/NAME.spec\n"
    "for restart.\n";

static const char USAGE_DOWN[] = "Usage: saga-fleet down\n"
                                 "\n"
                                 "Stops the services (SIGTERM, SIGKILL after 20 s), then "
                                 "nats-server (10 s);\nnothing is left running.\n";

static const char USAGE_STATUS[] =
    "Usage: saga-fleet status [--json]\n"
    "\n"
    "For nats (or each node of a cluster) and each service: pid, state (up, down, or\n"
    "silent: running but not answering saga.ctl.NAME.stats), events processed,\n"
    "pending and the metrics address it serves (SAGA_METRICS_ADDR; from its answer to\n"
    "saga.discover). Prometheus (up --with prometheus): its web UI; status also\n"
    "rewrites its targets file. For a cluster, which node leads the JetStream meta group and which "
    "leads\n"
    "each stream (and its replicas). Exits 1 unless every process is up and a cluster\n"
    "has a meta leader.\n";

static const char USAGE_LOGS[] = "Usage: saga-fleet logs NAME [-f]\n"
                                 "\n"
                                 "Shows the last 100 lines of NAME's log (nats for the "
                                 "server); -f follows it.\n";

static const char USAGE_KILL[] = "Usage: saga-fleet kill NAME\n"
                                 "\n"
                                 "SIGKILLs NAME (or nats, or a cluster node: nats-2), a "
                                 "crash, and waits until it is gone.\n";

static const char USAGE_SCALE[] =
    "Usage: saga-fleet scale SERVICE N\n"
    "\n"
    "A hand-over (docs/scaling.md): runs SERVICE as N instances (1 to 16) instead of the\n"
    "ones it runs now, while orders flow. Stops every instance of SERVICE with SIGTERM\n"
    "(each finishes its batch and publishes its outbox; SIGKILL after 20 s), moves the\n"
    "records of each partition whose owner changes to its new owner's data directory,\n"
    "and starts SERVICE-1..SERVICE-N with SAGA_INSTANCE=I/N (SERVICE alone for N = 1),\n"
    "each like the first instance, with its own data directory and identity; waits\n"
    "until each is ready (30 s). Meanwhile SERVICE's partitions wait: requests to it\n"
    "time out and are retried, events wait in the stream; nothing is lost.\n"
    "\n"
    "Prints each move (partitions, records, processed event ids, outbox messages) and\n"
    "the pause: the milliseconds SERVICE had no running instance. A scale that fails says\n"
    "why and leaves SERVICE stopped: run the same scale again when it failed before the\n"
    "new instances were started, else restart them. Refused, with SERVICE started again\n"
    "as it was, for a service with state of no order the fleet cannot re-split (fraud's\n"
    "customer history).\n"
    "\n"
    "inventory: its stock is re-split over the new instances (free and committed units\n"
    "by their partitions, held units with the reserved orders), from a plan written to\n"
    "SAGA_HOME/handover-inventory.json before any store changes and removed when every\n"
    "store has it; prints the sums, the same before and after. A plan found there is an\n"
    "unfinished hand-over: scale (or up) finishes it first and says so. Meanwhile\n"
    "sagactl stock set gets no answer.\n";

static const char USAGE_IDENTITY[] =
    "Usage: saga-fleet identity NAME\n"
    "\n"
    "Prints the path of participant NAME's credentials file (SAGA_HOME/auth/NAME.creds),\n"
    "creating it if new and loading it into the running brokers, so that a participant\n"
    "the fleet does not start (another language, another machine) connects as NAME with\n"
    "SAGA_NATS_CREDS=that path, with NAME's permissions (docs/security.md). operator and\n"
    "client are the fleet's own identities.\n";

static const char USAGE_RESTART[] =
    "Usage: saga-fleet restart NAME [--env KEY=VALUE]...\n"
    "\n"
    "Stops NAME (or nats) if it runs and starts it again with the settings it was started\n"
    "with (SAGA_HOME/run/NAME.spec); --env changes one of them for this and later starts.\n"
    "Waits until it is ready (30 s).\n";

typedef struct ctx {
    fleet *f;
    const char *home;
    const char *url;
    const char *build;
    char host[256];
    int port;
    int nodes;       /* brokers of the fleet's cluster, 0 for a single nats */
    char urls[1024]; /* a cluster's client URLs, comma-separated: url points here */
} ctx;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void vreport(const char *fmt, va_list ap, const char *tail)
{
    fputs("fleet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(tail, stderr);
}

static int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(fmt, ap, "\n");
    va_end(ap);
    return EXIT_FAIL;
}

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(fmt, ap, " (see saga-fleet --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* Host and port of the first server of the URL, without scheme or user. */
static int parse_url(ctx *c)
{
    char buf[256];
    char *hp = buf;
    char *p;
    long port = 4222;

    snprintf(buf, sizeof buf, "%s", c->url);
    buf[strcspn(buf, ",")] = '\0';
    p = strstr(hp, "://");
    if (p != NULL)
        hp = p + 3;
    p = strrchr(hp, '@');
    if (p != NULL)
        hp = p + 1;
    hp[strcspn(hp, "/")] = '\0';
    p = strrchr(hp, ':');
    if (p != NULL) {
        char *end = NULL;
        *p = '\0';
        errno = 0;
        port = strtol(p + 1, &end, 10);
        if (errno != 0 || end == p + 1 || *end != '\0' || port < 1 || port > 65535)
            return fail("SAGA_NATS_URL=%s: bad port '%s'", c->url, p + 1);
    }
    snprintf(c->host, sizeof c->host, "%s", hp[0] != '\0' ? hp : "127.0.0.1");
    c->port = (int)port;
    return 0;
}

static void print_tail(const ctx *c, const char *name)
{
    char tail[2048];

    fleet_log_tail(c->f, name, tail, sizeof tail);
    fputs(tail, stderr);
}

static int is_default(const char *name)
{
    if (strcmp(name, GATEWAY) == 0)
        return 1;
    for (int i = 0; i < NSVC; i++) {
        if (strcmp(SERVICES[i], name) == 0)
            return 1;
    }
    return 0;
}

static int alive(ctx *c, const char *name)
{
    fleet_status st;

    return fleet_get_status(c->f, name, &st) == 0 && st.alive;
}

static pid_t pid_of(ctx *c, const char *name)
{
    fleet_status st;

    return fleet_get_status(c->f, name, &st) == 0 ? st.pid : -1;
}

static const char *node_name(int i, char *buf, size_t cap)
{
    snprintf(buf, cap, NODE_FMT, i);
    return buf;
}

/* The fleet's cluster, if it has one (brokers nats-1..nats-N): its size, and its URL
 * list as the fleet's URL. */
static void find_cluster(ctx *c)
{
    char name[32];

    c->nodes = 0;
    while (c->nodes < MAX_NODES &&
           fleet_is_broker(c->f, node_name(c->nodes + 1, name, sizeof name)))
        c->nodes++;
    if (c->nodes > 0 && fleet_urls(c->f, c->urls, sizeof c->urls) != NULL)
        c->url = c->urls;
}

static int any_broker_alive(ctx *c)
{
    for (int i = 0; i < fleet_count(c->f); i++) {
        const char *name = fleet_name(c->f, i);
        if (fleet_is_broker(c->f, name) && alive(c, name))
            return 1;
    }
    return 0;
}

/* Whether a broker of a fleet with nodes cluster nodes (0: the single nats) is down. */
static int broker_missing(ctx *c, int nodes)
{
    char name[32];

    if (nodes == 0)
        return !alive(c, BROKER);
    for (int i = 1; i <= nodes; i++) {
        if (!alive(c, node_name(i, name, sizeof name)))
            return 1;
    }
    return 0;
}

/* ---- the gateway ------------------------------------------------------------------ */

typedef struct participant {
    char name[64];      /* the process: the service, or one of its instances (payment-2) */
    char svc[64];       /* the service it runs */
    char instance[24];  /* SAGA_INSTANCE, "" for the only instance */
    char exe[PATH_CAP]; /* "": keep the spec the fleet has */
    int named;          /* by --with in this up */
    char listen[64];    /* the gateway's --listen; "" for a participant */
    int prom;           /* the Prometheus server */
} participant;

/* The gateway's process: saga-gateway from the build tree on SAGA_GATEWAY_ADDR, else
 * on 8080 when that is free, else on a free port (it logs which). */
static int gateway_proc(const ctx *c, participant *p)
{
    const char *addr = getenv("SAGA_GATEWAY_ADDR");

    snprintf(p->name, sizeof p->name, "%s", GATEWAY);
    snprintf(p->exe, sizeof p->exe, "%s/tools/gateway/saga-gateway", c->build);
    p->named = 0;
    p->prom = 0;
    if (addr != NULL && *addr != '\0') {
        if (strchr(addr, ':') == NULL || strlen(addr) >= sizeof p->listen)
            return usage_error("SAGA_GATEWAY_ADDR wants ADDR:PORT, not '%s'", addr);
        snprintf(p->listen, sizeof p->listen, "%s", addr);
    } else {
        snprintf(p->listen, sizeof p->listen, "%s",
                 fleet_port_in_use("127.0.0.1", 8080) ? "127.0.0.1:0" : GATEWAY_ADDR);
    }
    return 0;
}

/* The URL the gateway logged when it got ready (its last event=ready line), or "-". */
static const char *gateway_url(ctx *c, char *buf, size_t cap)
{
    char tail[8192];
    const char *url = NULL, *line = fleet_log_tail(c->f, GATEWAY, tail, sizeof tail);

    for (const char *p = strstr(line, "event=ready"); p != NULL; p = strstr(p + 1, "event=ready"))
        url = strstr(p, " url=");
    if (url == NULL || !alive(c, GATEWAY)) {
        snprintf(buf, cap, "-");
        return buf;
    }
    url += 5;
    snprintf(buf, cap, "%.*s", (int)strcspn(url, " \n"), url);
    return buf;
}

/* ---- up ------------------------------------------------------------------------ */

typedef struct gate {
    char svc[64];
    char by[64];
} gate;

/* NAME: saga-NAME in the build tree; PATH: that executable, named after its file. */
static int resolve(const ctx *c, const char *arg, participant *p)
{
    if (strchr(arg, '/') != NULL) {
        const char *base = strrchr(arg, '/') + 1;
        char *real = realpath(arg, NULL);
        if (strncmp(base, "saga-", 5) == 0)
            base += 5;
        if (real == NULL || access(real, X_OK) != 0) {
            free(real);
            return fail("--with %s: not an executable", arg);
        }
        snprintf(p->exe, sizeof p->exe, "%s", real);
        free(real);
        snprintf(p->name, sizeof p->name, "%s", base);
        if (!valid_name(p->name))
            return usage_error("--with %s: '%s' is not a usable name (a-z 0-9 _ -)", arg, base);
        return 0;
    }
    if (!valid_name(arg))
        return usage_error("up: bad service name '%s'", arg);
    snprintf(p->name, sizeof p->name, "%s", arg);
    snprintf(p->exe, sizeof p->exe, "%s/services/saga-%s", c->build, arg);
    if (access(p->exe, X_OK) != 0)
        return fail("no executable saga-%s in %s/services", arg, c->build);
    return 0;
}

/* A string formatted into new memory (the caller frees it), or NULL. */
static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dupf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Appends name to the comma-separated list unless it is there. */
static void append_name(char *list, size_t cap, const char *name)
{
    size_t len = strlen(list), n = strlen(name);
    for (const char *p = list; *p != '\0'; p += strcspn(p, ","), p += *p == ',') {
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return;
    }
    snprintf(list + len, cap - len, "%s%s", len > 0 ? "," : "", name);
}

/* The service that acts on vetoes. */
#define VETOED "order"

/* "SAGA_VETOERS=" the fleet's participants that may veto, after those of the
 * environment. */
static char *vetoers_env(const char *vetoers)
{
    const char *inherited = getenv("SAGA_VETOERS");
    int both = inherited != NULL && inherited[0] != '\0' && vetoers[0] != '\0';
    return dupf("SAGA_VETOERS=%s%s%s", inherited != NULL ? inherited : "", both ? "," : "",
                vetoers);
}

/* The URLs the fleet's clients are given: c->url, tls:// for a TLS fleet, so that a
 * client never falls back to a plain connection. */
static const char *client_urls(const ctx *c)
{
    static char buf[sizeof c->urls + 64];
    size_t used = 0;
    const char *p = c->url;
    if (!(fleet_security(c->f) & FLEET_TLS))
        return c->url;
    while (*p != '\0' && used + 1 < sizeof buf) {
        if (strncmp(p, "nats://", 7) == 0) {
            used += (size_t)snprintf(buf + used, sizeof buf - used, "tls://");
            p += 7;
        } else {
            buf[used++] = *p++;
        }
    }
    buf[used < sizeof buf ? used : sizeof buf - 1] = '\0';
    return buf;
}

/* The environment a service starts with: this one (so that SAGA_* settings given to
 * up stay with the service across restarts) with the fleet's own settings on top. */
static int service_env(const ctx *c, const participant *p, const gate *gates, int ngates,
                       const char *vetoers, const char ***out)
{
    static const char *const OWN[] = {
        "SAGA_NATS_URL=", "SAGA_DATA_DIR=", "NOTIF_SPOOL_DIR=", "SAGA_GATES=",
        "SAGA_VETOERS=",  "SAGA_INSTANCE=", "SAGA_PARTITIONS=", NULL};
    const char *name = p->name;
    size_t n = 0, k = 0;
    const char **env;
    char gates_v[1024] = "";
    const char *inherited = getenv("SAGA_GATES");

    while (environ[n] != NULL)
        n++;
    env = calloc(n + 12, sizeof *env);
    if (env == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int own = 0;
        for (int j = 0; OWN[j] != NULL; j++)
            own |= strncmp(environ[i], OWN[j], strlen(OWN[j])) == 0;
        /* A value with a newline (an exported shell function) is no service setting. */
        if (!own && strchr(environ[i], '\n') == NULL)
            env[k++] = environ[i];
    }
    env[k++] = dupf("SAGA_NATS_URL=%s", client_urls(c));
    env[k++] = dupf("SAGA_DATA_DIR=%s/data/%s", c->home, name);
    env[k++] = dupf("NOTIF_SPOOL_DIR=%s/mail", c->home);
    if (inherited != NULL)
        snprintf(gates_v, sizeof gates_v, "%s", inherited);
    for (int i = 0; i < ngates; i++) {
        if (strcmp(gates[i].svc, p->svc) == 0) {
            size_t len = strlen(gates_v);
            snprintf(gates_v + len, sizeof gates_v - len, "%s%s", len > 0 ? "," : "", gates[i].by);
        }
    }
    if (inherited != NULL || gates_v[0] != '\0')
        env[k++] = dupf("SAGA_GATES=%s", gates_v);
    if (strcmp(p->svc, VETOED) == 0)
        env[k++] = vetoers_env(vetoers);
    /* Every node keeps a copy of the streams, unless the environment says otherwise. */
    if (c->nodes > 0 && getenv("SAGA_REPLICAS") == NULL)
        env[k++] = dupf("SAGA_REPLICAS=%d", c->nodes);
    if (p->instance[0] != '\0')
        env[k++] = dupf("SAGA_INSTANCE=%s", p->instance);
    /* The console changes fault plans and replays dead letters: the operator's rights. */
    if (strcmp(name, GATEWAY) == 0 && (fleet_security(c->f) & FLEET_AUTH))
        env[k++] = dupf("SAGA_NATS_CREDS=%s/auth/operator.creds", c->home);
    env[k] = NULL;
    *out = env;
    return 0;
}

static void free_env(const char **env)
{
    size_t i = 0;

    while (env[i] != NULL && strncmp(env[i], "SAGA_NATS_URL=", 14) != 0)
        i++;
    for (; env[i] != NULL; i++)
        free((char *)env[i]);
    free(env);
}

static int add_broker(ctx *c, char *err, size_t errlen)
{
    fleet_broker_opts b = {.host = c->host, .port = c->port};

    return fleet_add_broker(c->f, BROKER, &b, err, errlen);
}

/* Defines the nodes nats-1..nats-nodes not known yet, each routing to the others; the
 * ports are chosen free at the first start and kept. */
static int add_cluster(ctx *c, int nodes, char *err, size_t errlen)
{
    char names[MAX_NODES][32];
    const char *routes[MAX_NODES];

    for (int i = 0; i < nodes; i++)
        node_name(i + 1, names[i], sizeof names[i]);
    for (int i = 0; i < nodes; i++) {
        fleet_broker_opts b = {.host = c->host, .cluster_name = CLUSTER_NAME, .routes = routes};
        int n = 0;
        if (fleet_is_broker(c->f, names[i]))
            continue;
        for (int k = 0; k < nodes; k++) {
            if (k != i)
                routes[n++] = names[k];
        }
        routes[n] = NULL;
        if (fleet_add_broker(c->f, names[i], &b, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int has_meta_leader(void *arg)
{
    ctx *c = arg;
    char leader[64];

    return fleet_meta_leader(c->f, leader, sizeof leader) == 0;
}

static int consumers_settled(void *arg)
{
    ctx *c = arg;

    return fleet_consumers_unsettled(c->f, SAGA_STREAM_EVENTS) == 0;
}

static int any_service_alive(ctx *c)
{
    for (int i = 0; i < fleet_count(c->f); i++) {
        const char *name = fleet_name(c->f, i);
        if (!fleet_is_broker(c->f, name) && alive(c, name))
            return 1;
    }
    return 0;
}

/* Starts the cluster's nodes that do not run, all before waiting for any: a node
 * answers JetStream only once a majority has elected a meta leader. */
static int start_cluster(ctx *c, int nodes, int64_t deadline)
{
    char err[PATH_CAP + 256], name[32], url[128];

    if (add_cluster(c, nodes, err, sizeof err) != 0)
        return fail("%s", err);
    for (int i = 1; i <= nodes; i++) {
        if (!alive(c, node_name(i, name, sizeof name)) &&
            fleet_start(c->f, name, err, sizeof err) != 0)
            return fail("%s", err);
    }
    for (int i = 1; i <= nodes; i++) {
        int64_t left = deadline - fleet_now_ms();
        node_name(i, name, sizeof name);
        if (fleet_wait_ready(c->f, name, left > 0 ? (int)left : 0, err, sizeof err) != 0) {
            print_tail(c, name);
            return fail("%s did not answer: %s", name, err);
        }
    }
    {
        int64_t left = deadline - fleet_now_ms();
        if (fleet_wait_until(has_meta_leader, c, left > 0 ? (int)left : 0) != 0)
            return fail("the cluster elected no JetStream meta leader (logs: %s/logs/nats-*.log)",
                        c->home);
    }
    /* After the whole cluster restarted, the event stream's consumers still count the
     * last run's subscribers as bound for a few seconds, and a service binding to one
     * then fails; with no service running, wait until they have let go. */
    if (!any_service_alive(c)) {
        int64_t left = deadline - fleet_now_ms();
        fleet_wait_until(consumers_settled, c, left > 0 ? (int)left : 0);
    }
    find_cluster(c);
    for (int i = 1; i <= nodes; i++) {
        node_name(i, name, sizeof name);
        printf("%-12s pid %d  %s\n", name, (int)pid_of(c, name),
               fleet_url(c->f, name, url, sizeof url));
    }
    return 0;
}

/* The six services as processes: one each, or the instances inst asks for (NULL: as
 * many as this home already runs, else one). Another count than the home runs is
 * refused: its instances' records belong to their partitions. */
static int default_procs(const ctx *c, const fleet_instances *inst, participant *procs, int *n)
{
    fleet_status st;

    for (int i = 0; i < NSVC; i++) {
        int had = fleet_instances_count(c->f, SERVICES[i]);
        int single = fleet_get_status(c->f, SERVICES[i], &st) == 0;
        int want = inst != NULL ? fleet_instances_of(inst, SERVICES[i]) : had > 0 ? had : 1;
        if ((had > 0 && want != had) || (single && want > 1))
            return fail("%s runs as %d instance%s in %s: deploy/fleet scale changes the count "
                        "(a hand-over, docs/scaling.md)",
                        SERVICES[i], had > 0 ? had : 1, had > 1 ? "s" : "", c->home);
        for (int k = 1; k <= want && *n < MAX_PROCS; k++) {
            participant *p = &procs[(*n)++];
            fleet_instance_name(p->name, sizeof p->name, SERVICES[i], k, want);
            snprintf(p->svc, sizeof p->svc, "%s", SERVICES[i]);
            if (want > 1)
                snprintf(p->instance, sizeof p->instance, "%d/%d", k, want);
            else
                p->instance[0] = '\0';
            snprintf(p->exe, sizeof p->exe, "%s/services/saga-%s", c->build, SERVICES[i]);
            p->named = 0;
            p->listen[0] = '\0';
            p->prom = 0;
        }
    }
    return 0;
}

/* ---- Prometheus and discovery ------------------------------------------------- */

/* A connection to the fleet's brokers for a few questions (no reconnects), as the
 * operator; NULL when no broker answers. */
static natsConnection *connect_fleet(ctx *c)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;

    if (any_broker_alive(c) && natsOptions_Create(&opts) == NATS_OK &&
        fleet_set_servers(opts, client_urls(c)) == NATS_OK &&
        fleet_client_options(c->f, "operator", opts) == NATS_OK &&
        natsOptions_SetTimeout(opts, STATS_MS) == NATS_OK &&
        natsOptions_SetAllowReconnect(opts, false) == NATS_OK)
        natsConnection_Connect(&nc, opts);
    natsOptions_Destroy(opts); /* the connection keeps its own copy */
    return nc;
}

/* Every participant instance's answer to saga.discover, a JSON array (empty when
 * nobody answers or nc is NULL). */
static json_t *discover(natsConnection *nc)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    int64_t deadline = fleet_now_ms() + STATS_MS;
    json_t *all = json_array();

    if (nc == NULL || natsInbox_Create(&inbox) != NATS_OK ||
        natsConnection_SubscribeSync(&sub, nc, (const char *)inbox) != NATS_OK ||
        natsConnection_PublishRequestString(nc, SAGA_SUBJ_DISCOVER, (const char *)inbox, "") !=
            NATS_OK ||
        natsConnection_Flush(nc) != NATS_OK)
        goto out;
    for (;;) {
        natsMsg *m = NULL;
        int64_t left = deadline - fleet_now_ms();
        if (left <= 0 || natsSubscription_NextMsg(&m, sub, left) != NATS_OK)
            break;
        json_t *a = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
        if (json_is_string(json_object_get(a, "name")))
            json_array_append(all, a);
        json_decref(a);
        natsMsg_Destroy(m);
        /* Every participant answers at once: after the first, a short quiet time. */
        if (deadline - fleet_now_ms() > DISCOVER_QUIET_MS)
            deadline = fleet_now_ms() + DISCOVER_QUIET_MS;
    }
out:
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    return all;
}

/* The metrics address, HOST:PORT, a discovery answer names (its http endpoint) into
 * buf; NULL when the instance serves no metrics. */
static const char *metrics_addr(const json_t *answer, char *buf, size_t cap)
{
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(answer, "endpoints"), i, e)
    {
        const char *v = json_string_value(e);
        if (v != NULL && strncmp(v, "http://", 7) == 0) {
            snprintf(buf, cap, "%.*s", (int)strcspn(v + 7, "/"), v + 7);
            return buf;
        }
    }
    return NULL;
}

/* The discovery answer of the fleet's own process name (its pid: an instance answers
 * with its service's name), or NULL. */
static json_t *answer_of(ctx *c, const json_t *answers, const char *name)
{
    size_t i;
    json_t *a;

    json_array_foreach(answers, i, a)
    {
        pid_t pid = pid_of(c, name);
        if (pid > 0 && json_integer_value(json_object_get(a, "pid")) == (json_int_t)pid)
            return a;
    }
    return NULL;
}

/* Rewrites Prometheus's targets with every instance that serves metrics: the fleet's
 * processes and any participant that joined. answers: discovery's (NULL: asks). Does
 * nothing when the fleet has no Prometheus server. Returns 0, or reports and fails. */
static int update_targets(ctx *c, const json_t *answers)
{
    fleet_target t[MAX_PROCS];
    char addrs[MAX_PROCS][300], err[PATH_CAP + 256];
    natsConnection *nc = NULL;
    json_t *own = NULL, *a;
    fleet_status st;
    size_t i;
    int n = 0, rc;

    if (fleet_get_status(c->f, PROMETHEUS, &st) != 0)
        return 0;
    if (answers == NULL) {
        nc = connect_fleet(c);
        answers = own = discover(nc);
    }
    json_array_foreach(answers, i, a)
    {
        if (n < MAX_PROCS && metrics_addr(a, addrs[n], sizeof addrs[n]) != NULL) {
            t[n].name = json_string_value(json_object_get(a, "name"));
            t[n].addr = addrs[n];
            n++;
        }
    }
    rc = fleet_prometheus_targets(c->f, PROMETHEUS, t, n, err, sizeof err);
    json_decref(own);
    if (nc != NULL)
        natsConnection_Destroy(nc);
    return rc == 0 ? 0 : fail("%s", err);
}

/* Defines the Prometheus server; one that was defined before keeps its address (open
 * browser tabs still work). */
static int add_prometheus(ctx *c, char *err, size_t errlen)
{
    char web[300];
    const char *colon;
    int port = 0;

    if (fleet_prometheus_url(c->f, PROMETHEUS, web, sizeof web) != NULL &&
        (colon = strrchr(web, ':')) != NULL)
        port = (int)strtol(colon + 1, NULL, 10);
    return fleet_add_prometheus(c->f, PROMETHEUS, PROMETHEUS_EXE, "127.0.0.1", port, err, errlen);
}

/* What a hand-over did to inventory's stock: the sums, the same before and after. */
static void print_stock(const char *svc, const fleet_rescale_report *rep)
{
    const inv_handover_report *s = &rep->stock;

    if (!rep->has_stock)
        return;
    if (s->resumed)
        printf("%s: finished the unfinished hand-over %s (%d -> %d instances)\n", svc, s->id,
               s->from, s->to);
    printf("stock re-split over %d instances (hand-over %s): %zu SKUs, available %lld, held "
           "%lld, committed %lld\n",
           s->to, s->id, s->skus, s->available, s->held, s->committed);
}

/* What a hand-over of svc to m instances did: the moves, the stock, the consumers,
 * the new instances and the pause. */
static void print_rescale(ctx *c, const char *svc, int m, const fleet_rescale_report *rep)
{
    char parts[64];

    for (int i = 0; i < rep->nmoves; i++) {
        const fleet_move *mv = &rep->moves[i];
        saga_partition_set_format(mv->partitions, parts, sizeof parts);
        printf("moved partitions %s from %s to %s: %zu records, %zu processed ids, %zu outbox\n",
               parts, mv->from, mv->to, mv->rep.records, mv->rep.inbox_ids, mv->rep.outbox);
    }
    print_stock(svc, rep);
    if (rep->consumers > 0)
        printf("consumers: %d created after the acknowledgement floor of the ones they "
               "replace\n",
               rep->consumers);
    for (int j = 1; j <= m; j++) {
        char name[64];
        fleet_instance_name(name, sizeof name, svc, j, m);
        printf("%-12s pid %d  ready  partitions %s\n", name, (int)pid_of(c, name),
               fleet_instance_partitions(c->f, name, parts, sizeof parts));
    }
    printf("%s: %d -> %d instance%s, paused %lld ms%s\n", svc, rep->from, rep->to, m > 1 ? "s" : "",
           (long long)rep->pause_ms,
           rep->unclean ? " (an instance had to be killed: its outbox moved unpublished)" : "");
}

/* Finishes the hand-overs a failed scale left (their plans in the home) before up
 * starts anything: the stopped instances' stores are half changed. One between the
 * only instance and several changes the consumers too, which needs the broker: its
 * service goes into later[] (*nlater of them) for finish_later, once the broker runs,
 * and up starts none of its processes itself. */
static int finish_handovers(ctx *c, const char **later, int *nlater)
{
    static fleet_rescale_report rep;
    char err[PATH_CAP + 256];
    int to;

    *nlater = 0;
    for (int i = 0; i < NSVC; i++) {
        if (fleet_rescale_pending(c->f, SERVICES[i], &to) == 0)
            continue;
        int with_broker = to == 1 || fleet_instances_running(c->f, SERVICES[i]) == 1;
        printf("%s: an unfinished hand-over to %d instance%s: finishing it %s\n", SERVICES[i], to,
               to > 1 ? "s" : "", with_broker ? "once the broker runs" : "first");
        if (with_broker) {
            later[(*nlater)++] = SERVICES[i];
            continue;
        }
        if (fleet_rescale_finish(c->f, SERVICES[i], &rep, err, sizeof err) != 0)
            return fail("%s", err);
        print_stock(SERVICES[i], &rep);
    }
    return 0;
}

/* Finishes svc's hand-over between the only instance and several from its plan, the
 * broker running: the scale that failed, run again; it starts the new instances. */
static int finish_later(ctx *c, const char *svc, int64_t deadline)
{
    static fleet_rescale_report rep;
    char err[PATH_CAP + 256];
    int64_t left = deadline - fleet_now_ms();
    int m = 0;

    if (fleet_rescale_pending(c->f, svc, &m) != 1)
        return fail("%s: no readable hand-over plan to finish", svc);
    if (fleet_rescale(c->f, svc, m, STOP_MS, left > 0 ? (int)left : 0, &rep, err, sizeof err) != 0)
        return fail("finishing the hand-over of %s to %d instance%s: %s", svc, m, m > 1 ? "s" : "",
                    err);
    print_rescale(c, svc, m, &rep);
    return 0;
}

static int cmd_up(ctx *c, int argc, char **argv)
{
    participant procs[MAX_PROCS];
    gate gates[MAX_GATES];
    int nprocs = 0, ngates = 0;
    char err[PATH_CAP + 256];
    int missing = 0;
    int cluster = 0, nodes, status, prom = 0, tls = 0, restart_order = 0, base;
    char vetoers[MAX_PROCS * 34 + MAX_GATES * 34] = "";
    int64_t deadline;
    fleet_instances inst = {0};
    int has_inst = 0;
    const char *later[NSVC];
    int nlater = 0;

    /* First, as the six services' processes depend on it. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--instances") == 0 || strncmp(argv[i], "--instances=", 12) == 0) {
            const char *v = argv[i][11] == '=' ? argv[i] + 12 : i + 1 < argc ? argv[i + 1] : "";
            if (fleet_instances_parse(&inst, v, err, sizeof err) != 0)
                return usage_error("%s", err);
            has_inst = 1;
        }
    }
    status = finish_handovers(c, later, &nlater);
    if (status == 0)
        status = default_procs(c, has_inst ? &inst : NULL, procs, &nprocs);
    if (status != 0)
        return status;
    /* A service whose hand-over is finished later: that starts its new instances. */
    for (int k = 0; k < nprocs; k++) {
        int skip = 0;
        for (int l = 0; l < nlater; l++)
            skip |= strcmp(procs[k].svc, later[l]) == 0;
        if (skip) {
            memmove(&procs[k], &procs[k + 1], (size_t)(nprocs - k - 1) * sizeof procs[0]);
            nprocs--;
            k--;
        }
    }
    if (gateway_proc(c, &procs[nprocs]) != 0)
        return EXIT_USAGE;
    nprocs++;
    base = nprocs; /* the services' processes and the gateway; the extensions follow */
    for (int i = 0; i < argc; i++) {
        const char *val = NULL;
        int is_with = 0;
        if (strcmp(argv[i], "--instances") == 0 || strncmp(argv[i], "--instances=", 12) == 0) {
            i += argv[i][11] != '=';
            continue;
        }
        if (strcmp(argv[i], "--cluster") == 0 || strncmp(argv[i], "--cluster=", 10) == 0) {
            const char *v = argv[i][9] == '=' ? argv[i] + 10 : i + 1 < argc ? argv[++i] : "";
            char *end = NULL;
            long n = strtol(v, &end, 10);
            if (end == v || *end != '\0' || n < 3 || n > MAX_NODES)
                return usage_error("--cluster wants a node count from 3 to %d, not '%s'", MAX_NODES,
                                   v);
            cluster = (int)n;
            continue;
        }
        if (strcmp(argv[i], "--tls") == 0) {
            tls = 1;
            continue;
        }
        if (strcmp(argv[i], "--with") == 0 || strcmp(argv[i], "--gate") == 0) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", argv[i]);
            is_with = argv[i][2] == 'w';
            val = argv[++i];
        } else if (strncmp(argv[i], "--with=", 7) == 0) {
            is_with = 1;
            val = argv[i] + 7;
        } else if (strncmp(argv[i], "--gate=", 7) == 0) {
            val = argv[i] + 7;
        } else {
            return usage_error("up: unknown option '%s'", argv[i]);
        }
        if (is_with) {
            char list[PATH_CAP];
            char *save = NULL;
            snprintf(list, sizeof list, "%s", val);
            for (char *tok = strtok_r(list, ",", &save); tok != NULL;
                 tok = strtok_r(NULL, ",", &save)) {
                participant p = {.prom = strcmp(tok, PROMETHEUS) == 0};
                int rc = 0;
                int dup = 0;
                if (p.prom && access(PROMETHEUS_EXE, X_OK) != 0)
                    return fail("--with " PROMETHEUS ": no %s (deploy/setup installs the Debian "
                                "package prometheus)",
                                PROMETHEUS_EXE);
                if (p.prom)
                    snprintf(p.name, sizeof p.name, "%s", PROMETHEUS);
                else
                    rc = resolve(c, tok, &p);
                if (rc != 0)
                    return rc;
                for (int k = 0; k < nprocs; k++)
                    dup |= strcmp(procs[k].name, p.name) == 0;
                if (strcmp(p.name, BROKER) == 0)
                    return usage_error("up: '%s' is the broker's name", p.name);
                p.named = 1;
                snprintf(p.svc, sizeof p.svc, "%s", p.name);
                p.instance[0] = '\0';
                if (!dup && nprocs < MAX_PROCS)
                    procs[nprocs++] = p;
            }
        } else {
            const char *eq = strchr(val, '=');
            if (eq == NULL || ngates >= MAX_GATES)
                return usage_error("--gate wants SVC=PARTICIPANT, not '%s'", val);
            snprintf(gates[ngates].svc, sizeof gates[ngates].svc, "%.*s", (int)(eq - val), val);
            snprintf(gates[ngates].by, sizeof gates[ngates].by, "%s", eq + 1);
            if (!valid_name(gates[ngates].svc) || !valid_name(gates[ngates].by))
                return usage_error("--gate %s: bad name", val);
            ngates++;
        }
    }
    /* Extensions of an earlier up stay in the fleet until down. */
    for (int i = 0; i < fleet_count(c->f) && nprocs < MAX_PROCS; i++) {
        const char *name = fleet_name(c->f, i);
        int known = fleet_is_broker(c->f, name);
        for (int k = 0; k < nprocs; k++)
            known |= strcmp(procs[k].name, name) == 0;
        for (int l = 0; l < nlater; l++) /* its hand-over starts it */
            known |= fleet_instance_of(c->f, name, later[l]) || strcmp(name, later[l]) == 0;
        if (!known) {
            snprintf(procs[nprocs].name, sizeof procs[nprocs].name, "%s", name);
            snprintf(procs[nprocs].svc, sizeof procs[nprocs].svc, "%s", name);
            procs[nprocs].instance[0] = '\0';
            procs[nprocs].exe[0] = '\0'; /* keeps its spec */
            procs[nprocs].named = 0;
            procs[nprocs].listen[0] = '\0';
            procs[nprocs].prom = strcmp(name, PROMETHEUS) == 0;
            nprocs++;
        }
    }
    for (int g = 0; g < ngates; g++) {
        int svc = 0, by = 0;
        for (int k = 0; k < nprocs; k++) {
            svc |= strcmp(procs[k].svc, gates[g].svc) == 0;
            by |= strcmp(procs[k].svc, gates[g].by) == 0;
        }
        if (!svc || !by)
            return usage_error("--gate %s=%s: %s is not in the fleet (add --with %s)", gates[g].svc,
                               gates[g].by, svc ? gates[g].by : gates[g].svc,
                               svc ? gates[g].by : gates[g].svc);
    }
    /* A process this home already knows keeps the settings it was started with
     * (a plain `up` after a crash must not drop its gate), unless this up names it. */
    for (int k = 0; k < nprocs; k++) {
        int named = procs[k].named;
        for (int g = 0; g < ngates; g++)
            named |= strcmp(gates[g].svc, procs[k].svc) == 0;
        for (int i = 0; i < fleet_count(c->f) && !named; i++) {
            if (strcmp(fleet_name(c->f, i), procs[k].name) == 0)
                procs[k].exe[0] = '\0';
        }
    }
    for (int k = 0; k < nprocs; k++) {
        if (procs[k].exe[0] != '\0' && access(procs[k].exe, X_OK) != 0)
            return fail("no executable %s", procs[k].exe);
        prom |= procs[k].prom;
    }

    /* A cluster stays a cluster (of its size) until down; a single server likewise. */
    nodes = cluster > 0 ? cluster : c->nodes;
    if (cluster > 0 && c->nodes > 0 && cluster != c->nodes)
        return fail("the fleet in %s is a cluster of %d nodes: deploy/fleet down first", c->home,
                    c->nodes);
    if (nodes > 0 && fleet_is_broker(c->f, BROKER)) {
        if (alive(c, BROKER))
            return fail("a single nats-server runs in %s: deploy/fleet down before up --cluster",
                        c->home);
        fleet_remove(c->f, BROKER);
    }
    if (tls && !(fleet_security(c->f) & FLEET_TLS) && !broker_missing(c, nodes))
        return fail("the fleet in %s runs without TLS: deploy/fleet down first, then up --tls",
                    c->home);
    if (fleet_secure(c->f, FLEET_AUTH | (tls ? FLEET_TLS : 0), c->host, err, sizeof err) != 0)
        return fail("%s", err);
    for (int k = 0; k < nprocs; k++)
        if (!procs[k].prom && fleet_proc_identity(c->f, procs[k].name, err, sizeof err) != 0)
            return fail("%s", err);
    /* The participants beside the six may veto, and so may every gate. */
    for (int k = base; k < nprocs; k++)
        if (!procs[k].prom)
            append_name(vetoers, sizeof vetoers, procs[k].name);
    for (int g = 0; g < ngates; g++)
        append_name(vetoers, sizeof vetoers, gates[g].by);
    missing = broker_missing(c, nodes) || nlater > 0;
    for (int k = 0; k < nprocs; k++) {
        missing |= !alive(c, procs[k].name);
        /* A participant new to a running order service: it must learn of its vetoes. */
        restart_order |= k >= base && procs[k].named && !procs[k].prom && !alive(c, procs[k].name);
    }
    if (!missing) {
        printf("fleet is already up (SAGA_HOME=%s, %s); see deploy/fleet status\n", c->home,
               c->url);
        return 0;
    }
    deadline = fleet_now_ms() + READY_MS;
    if (nodes > 0) {
        if (start_cluster(c, nodes, deadline) != 0)
            return EXIT_FAIL;
    } else if (!alive(c, BROKER)) {
        if (fleet_port_in_use(c->host, c->port))
            return fail("%s:%d is already in use by another process; set SAGA_NATS_URL to a "
                        "free port",
                        c->host, c->port);
        if (add_broker(c, err, sizeof err) != 0 ||
            fleet_start_ready(c->f, BROKER, NATS_READY_MS, err, sizeof err) != 0) {
            print_tail(c, BROKER);
            return fail("nats-server did not answer at %s: %s", c->url, err);
        }
        printf("nats-server  pid %d  %s\n", (int)pid_of(c, BROKER), c->url);
    }
    for (int l = 0; l < nlater; l++)
        if (finish_later(c, later[l], deadline) != 0)
            return EXIT_FAIL;
    for (int k = 0; k < nprocs; k++) {
        const char **env = NULL;
        int rc = 0;
        if (alive(c, procs[k].name))
            continue;
        if (procs[k].prom) {
            rc = add_prometheus(c, err, sizeof err);
        } else if (procs[k].exe[0] != '\0') {
            if (service_env(c, &procs[k], gates, ngates, vetoers, &env) != 0)
                return fail("out of memory");
            const char *const args[] = {"--listen", procs[k].listen, NULL};
            rc = fleet_add_proc(c->f, procs[k].name, procs[k].exe,
                                procs[k].listen[0] != '\0' ? args : NULL, env, err, sizeof err);
            free_env(env);
        }
        /* Scraped: every service serves its metrics on a port of its own. */
        if (rc == 0 && prom && !procs[k].prom && getenv("SAGA_METRICS_ADDR") == NULL)
            rc = fleet_set_env(c->f, procs[k].name, METRICS_ANY_PORT, err, sizeof err);
        if (rc != 0)
            return fail("%s", err);
        if (fleet_start(c->f, procs[k].name, err, sizeof err) != 0)
            return fail("%s", err);
    }
    for (int k = 0; k < nprocs; k++) {
        int64_t left = deadline - fleet_now_ms();
        if (fleet_wait_ready(c->f, procs[k].name, left > 0 ? (int)left : 0, err, sizeof err) != 0) {
            print_tail(c, procs[k].name);
            return fail("%s", err);
        }
        printf("%-12s pid %d  ready\n", procs[k].name, (int)pid_of(c, procs[k].name));
    }
    if (restart_order && alive(c, VETOED) && procs[0].exe[0] == '\0') {
        char *kv = vetoers_env(vetoers);
        int64_t left = deadline - fleet_now_ms();
        int rc = kv != NULL ? fleet_set_env(c->f, VETOED, kv, err, sizeof err) : -1;
        free(kv);
        if (rc != 0 ||
            fleet_restart(c->f, VETOED, STOP_MS, left > 0 ? (int)left : 0, err, sizeof err) != 0)
            return fail("restarting %s with the new vetoers: %s", VETOED, err);
        printf("%-12s pid %d  restarted (vetoes of %s)\n", VETOED, (int)pid_of(c, VETOED), vetoers);
    }
    char console[128];
    if (prom) {
        char web[300];
        if (update_targets(c, NULL) != 0)
            return EXIT_FAIL;
        printf("  Prometheus %s (scrapes every process; targets %s/" PROMETHEUS "/targets.json)\n",
               fleet_prometheus_url(c->f, PROMETHEUS, web, sizeof web), c->home);
    }
    printf("fleet is up\n"
           "  console %s   (saga-gateway: the web console and the order API)\n"
           "  NATS    %s (JetStream store %s/%s%s%s)\n"
           "  auth    %s/auth/<identity>.creds   (sagactl: operator)\n"
           "  logs    %s/logs/<service>.log   (deploy/fleet logs SERVICE [-f])\n"
           "  data    %s/data/<service>/\n"
           "  mail    %s/mail\n"
           "  try     %s/tools/sagactl stock set A1 10\n"
           "          %s/tools/sagactl place --customer c1 --item A1:1:1000\n",
           gateway_url(c, console, sizeof console), client_urls(c), c->home, BROKER,
           nodes > 0 ? "-N" : "", fleet_security(c->f) & FLEET_TLS ? "; TLS, CA tls/ca.pem" : "",
           c->home, c->home, c->home, c->home, c->build, c->build);
    return 0;
}

/* ---- down, status -------------------------------------------------------------- */

static int cmd_down(ctx *c, int argc, char **argv)
{
    int running = 0;

    (void)argv;
    if (argc != 0)
        return usage_error("down takes no arguments");
    for (int i = 0; i < fleet_count(c->f); i++)
        running |= alive(c, fleet_name(c->f, i));
    if (running) {
        /* Services first, so that they flush their outboxes to a live server. */
        fleet_stop_all(c->f, STOP_MS, NATS_STOP_MS);
        for (int i = 0; i < fleet_count(c->f); i++) {
            const char *name = fleet_name(c->f, i);
            if (alive(c, name))
                return fail("%s (pid %d) is still running", name, (int)pid_of(c, name));
        }
    }
    /* A later up starts the six again, without this run's extensions. */
    while (fleet_count(c->f) > 0) {
        if (fleet_remove(c->f, fleet_name(c->f, 0)) != 0)
            return fail("cannot clear %s/run", c->home);
    }
    if (running)
        printf("fleet is down (SAGA_HOME=%s)\n", c->home);
    else
        printf("fleet is not running (SAGA_HOME=%s)\n", c->home);
    return 0;
}

/* A request's JSON answer, NULL when none came or it does not parse. */
static json_t *ask_json(natsConnection *nc, const char *subject)
{
    natsMsg *m = NULL;
    json_t *j = NULL;

    if (nc != NULL && natsConnection_RequestString(&m, nc, subject, "", STATS_MS) == NATS_OK)
        j = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    natsMsg_Destroy(m);
    return j;
}

/* The participant instances that answer saga.discover and that this fleet
 * did not start (a participant of another language, an instance on another
 * machine): they are part of the fleet too. Appends them to procs as
 * "joined"; an instance is the fleet's own when its name and pid are. */
static void add_joined(ctx *c, const json_t *answers, const char **names, int n, json_t *procs)
{
    size_t i;
    json_t *a;

    json_array_foreach(answers, i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        char addr[300];
        int known = name == NULL;
        for (int k = 0; k < n && !known; k++)
            known = answer_of(c, answers, names[k]) == a;
        if (!known)
            json_array_append_new(procs,
                                  json_pack("{s:s, s:O?, s:s, s:O?, s:n, s:O?, s:s?}", "name", name,
                                            "pid", json_object_get(a, "pid"), "state", "joined",
                                            "instance", json_object_get(a, "instance"), "processed",
                                            "subscriptions", json_object_get(a, "subscriptions"),
                                            "metrics", metrics_addr(a, addr, sizeof addr)));
    }
}

/* The fleet's names for status: nats (or the cluster's nodes), the six, then the
 * extensions. */
static int status_names(ctx *c, const char **names)
{
    int n = 0;

    for (int i = 0; i < fleet_count(c->f) && n < MAX_NODES; i++) {
        if (fleet_is_broker(c->f, fleet_name(c->f, i)))
            names[n++] = fleet_name(c->f, i);
    }
    if (n == 0)
        names[n++] = BROKER;
    for (int i = 0; i < NSVC; i++) {
        if (fleet_instances_count(c->f, SERVICES[i]) == 0)
            names[n++] = SERVICES[i];
        for (int k = 0; k < fleet_count(c->f) && n < MAX_PROCS; k++) {
            if (fleet_instance_of(c->f, fleet_name(c->f, k), SERVICES[i]) > 0)
                names[n++] = fleet_name(c->f, k);
        }
    }
    names[n++] = GATEWAY;
    for (int i = 0; i < fleet_count(c->f) && n < MAX_PROCS; i++) {
        const char *name = fleet_name(c->f, i);
        int listed = fleet_is_broker(c->f, name);
        for (int k = 0; k < n && !listed; k++)
            listed = strcmp(names[k], name) == 0;
        if (!listed)
            names[n++] = name;
    }
    return n;
}

/* Each node's own copy of stream, as JSON: a copy that lags, or lost messages,
 * shows as fewer messages or an older last sequence than the others. */
static json_t *copies(ctx *c, const char *stream)
{
    fleet_stream_copy cp[MAX_PROCS];
    int n = fleet_stream_copies(c->f, stream, cp, MAX_PROCS);
    json_t *a = json_array();

    for (int i = 0; i < n; i++) {
        json_array_append_new(a, cp[i].known ? json_pack("{s:s, s:I, s:I}", "node", cp[i].broker,
                                                         "messages", (json_int_t)cp[i].messages,
                                                         "last_seq", (json_int_t)cp[i].last_seq)
                                             : json_pack("{s:s}", "node", cp[i].broker));
    }
    return a;
}

/* Which node leads the meta group and each stream: a section of status (text) or its
 * "cluster" member (JSON). Returns -1 when the cluster has no meta leader. */
/* The cluster's leaders, as JSON: the meta leader and each stream's. */
static json_t *leaders(ctx *c)
{
    static const char *const STREAMS[] = {SAGA_STREAM_EVENTS, SAGA_STREAM_DLQ};
    char meta[64] = "", leader[64];
    int have_meta = fleet_meta_leader(c->f, meta, sizeof meta) == 0;
    json_t *streams = json_array();

    for (size_t i = 0; i < sizeof STREAMS / sizeof STREAMS[0]; i++) {
        int replicas = 0;
        int known = fleet_stream_leader(c->f, STREAMS[i], leader, sizeof leader, &replicas) == 0;
        json_array_append_new(streams,
                              json_pack("{s:s, s:s?, s:i, s:o}", "name", STREAMS[i], "leader",
                                        known ? leader : NULL, "replicas", known ? replicas : 0,
                                        "copies", copies(c, STREAMS[i])));
    }
    return json_pack("{s:s, s:i, s:s?, s:o}", "name", CLUSTER_NAME, "nodes", c->nodes,
                     "meta_leader", have_meta ? meta : NULL, "streams", streams);
}

static void print_leaders(const json_t *cl)
{
    size_t i;
    json_t *st;
    const char *meta = json_string_value(json_object_get(cl, "meta_leader"));

    printf("cluster %s of %d nodes: JetStream meta leader %s\n", CLUSTER_NAME,
           (int)json_integer_value(json_object_get(cl, "nodes")),
           meta != NULL ? meta : "none (no quorum, or an election is under way)");
    json_array_foreach(json_object_get(cl, "streams"), i, st)
    {
        const char *name = json_string_value(json_object_get(st, "name"));
        const char *leader = json_string_value(json_object_get(st, "leader"));
        if (leader != NULL) {
            size_t k;
            json_t *cp;
            printf("  stream %-12s leader %-8s replicas %d  copies", name, leader,
                   (int)json_integer_value(json_object_get(st, "replicas")));
            json_array_foreach(json_object_get(st, "copies"), k, cp)
            {
                const json_t *m = json_object_get(cp, "messages");
                printf(" %s ", json_string_value(json_object_get(cp, "node")));
                if (m != NULL)
                    printf("%lld@%lld", (long long)json_integer_value(m),
                           (long long)json_integer_value(json_object_get(cp, "last_seq")));
                else
                    printf("-");
            }
            printf("\n");
        } else
            printf("  stream %-12s no leader (not created yet, or an election is under way)\n",
                   name);
    }
}

/* "-" for JSON null, else the number. */
static const char *num_or_dash(const json_t *v, char *buf, size_t cap)
{
    if (!json_is_integer(v))
        return "-";
    snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    return buf;
}

static int cmd_status(ctx *c, int argc, char **argv)
{
    const char *names[MAX_PROCS + NSVC + MAX_NODES];
    natsConnection *nc = NULL;
    json_t *procs, *root, *answers;
    char web[300];
    int json = 0, rc = 0, n;

    if (argc > 1 || (argc == 1 && strcmp(argv[0], "--json") != 0))
        return usage_error("status: unknown option '%s'", argv[argc - 1]);
    json = argc == 1;
    procs = json_array();
    n = status_names(c, names);
    nc = connect_fleet(c);
    answers = discover(nc);
    for (int i = 0; i < n; i++) {
        const char *state = "down";
        json_t *stats = NULL;
        pid_t pid = pid_of(c, names[i]);
        char addr[300];
        /* Neither a broker, the gateway nor Prometheus answers saga.ctl. */
        int asks = !fleet_is_broker(c->f, names[i]) && strcmp(names[i], PROMETHEUS) != 0 &&
                   strcmp(names[i], GATEWAY) != 0;
        if (alive(c, names[i])) {
            state = "up";
            if (asks) {
                char subject[256];
                stats = ask_json(
                    nc, fleet_instance_stats_subject(c->f, names[i], subject, sizeof subject));
                if (stats == NULL) {
                    state = "silent"; /* the process lives but does not answer */
                    rc = EXIT_FAIL;
                }
            }
        } else {
            rc = EXIT_FAIL;
        }
        char parts[64];
        int broker = fleet_is_broker(c->f, names[i]) || strcmp(names[i], BROKER) == 0;
        json_array_append_new(
            procs,
            json_pack("{s:s, s:o, s:s, s:s?, s:O?, s:O?, s:s?}", "name", names[i], "pid",
                      pid > 0 ? json_integer(pid) : json_null(), "state", state, "partitions",
                      broker || !asks
                          ? NULL
                          : fleet_instance_partitions(c->f, names[i], parts, sizeof parts),
                      "processed", json_object_get(stats, "processed"), "pending",
                      json_object_get(stats, "pending"), "metrics",
                      metrics_addr(answer_of(c, answers, names[i]), addr, sizeof addr)));
        json_decref(stats);
        /* A down instance's partitions wait for it: nobody else consumes them. */
        if (!broker && asks && strcmp(state, "down") == 0)
            json_object_set_new(json_array_get(procs, json_array_size(procs) - 1), "waiting",
                                json_true());
        if (strcmp(names[i], GATEWAY) == 0) {
            char url[128];
            json_object_set_new(json_array_get(procs, json_array_size(procs) - 1), "url",
                                json_string(gateway_url(c, url, sizeof url)));
        }
    }
    add_joined(c, answers, names, n, procs);
    root = json_pack("{s:s, s:s, s:o}", "saga_home", c->home, "url", c->url, "processes", procs);
    if (fleet_prometheus_url(c->f, PROMETHEUS, web, sizeof web) != NULL) {
        /* The addresses change when a process restarts: keep Prometheus's list true. */
        update_targets(c, answers);
        json_object_set_new(root, "prometheus", json_pack("{s:s}", "web", web));
    }
    if (c->nodes > 0) {
        json_t *cl = leaders(c);
        if (json_is_null(json_object_get(cl, "meta_leader")))
            rc = EXIT_FAIL;
        json_object_set_new(root, "cluster", cl);
    }
    if (json) {
        char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", text != NULL ? text : "{}");
        free(text);
    } else {
        size_t i;
        json_t *p;
        char url[128];
        const char *m;
        printf("fleet at %s, %s\n%-14s %8s %-6s %-18s %10s %8s  %s\n", c->home, c->url, "process",
               "pid", "state", "partitions", "processed", "pending", "metrics");
        json_array_foreach(procs, i, p)
        {
            char a[24], b[24], d[24], w[96];
            const char *parts = json_string_value(json_object_get(p, "partitions"));
            m = json_string_value(json_object_get(p, "metrics"));
            if (parts != NULL && json_is_true(json_object_get(p, "waiting"))) {
                snprintf(w, sizeof w, "%s waiting", parts);
                parts = w;
            }
            printf("%-14s %8s %-6s %-18s %10s %8s  %s\n",
                   json_string_value(json_object_get(p, "name")),
                   num_or_dash(json_object_get(p, "pid"), a, sizeof a),
                   json_string_value(json_object_get(p, "state")), parts != NULL ? parts : "-",
                   num_or_dash(json_object_get(p, "processed"), b, sizeof b),
                   num_or_dash(json_object_get(p, "pending"), d, sizeof d), m != NULL ? m : "-");
        }
        if (json_object_get(root, "prometheus") != NULL)
            printf("prometheus web UI %s (query e.g. saga_events_handled_total)\n", web);
        if (c->nodes > 0)
            print_leaders(json_object_get(root, "cluster"));
        printf("console        %s\n", gateway_url(c, url, sizeof url));
    }
    json_decref(answers);
    json_decref(root);
    if (nc != NULL)
        natsConnection_Destroy(nc);
    return rc;
}

/* ---- logs, kill, restart ------------------------------------------------------- */

static int known(ctx *c, const char *name)
{
    for (int i = 0; i < fleet_count(c->f); i++) {
        if (strcmp(fleet_name(c->f, i), name) == 0)
            return 1;
    }
    return 0;
}

static int cmd_logs(ctx *c, int argc, char **argv)
{
    char log[PATH_CAP];
    int follow = 0;

    if (argc < 1)
        return usage_error("logs needs a SERVICE (or nats)");
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "-f") != 0 && strcmp(argv[1], "--follow") != 0))
        return usage_error("logs: unknown option '%s'", argv[argc - 1]);
    follow = argc == 2;
    if (!valid_name(argv[0]))
        return usage_error("bad service name '%s'", argv[0]);
    fleet_log_path(c->f, argv[0], log, sizeof log);
    /* Any process that ever ran here has a log, also an extension after down. */
    if (access(log, R_OK) != 0) {
        if (!known(c, argv[0]) && !is_default(argv[0]) && strcmp(argv[0], BROKER) != 0)
            return usage_error("unknown service '%s'", argv[0]);
        return fail("no log yet for %s (%s)", argv[0], log);
    }
    fflush(stdout);
    if (follow)
        execlp("tail", "tail", "-n", "50", "-F", log, (char *)NULL);
    else
        execlp("tail", "tail", "-n", "100", log, (char *)NULL);
    return fail("cannot run tail: %s", strerror(errno));
}

static int cmd_kill(ctx *c, int argc, char **argv)
{
    pid_t pid;

    if (argc != 1)
        return usage_error("kill needs exactly one SERVICE (or nats)");
    if (!known(c, argv[0]))
        return usage_error("unknown service '%s'", argv[0]);
    if (!alive(c, argv[0]))
        return fail("%s is not running", argv[0]);
    pid = pid_of(c, argv[0]);
    if (fleet_kill(c->f, argv[0]) != 0)
        return fail("cannot kill %s (pid %d)", argv[0], (int)pid);
    printf("killed %s (pid %d) with SIGKILL\n", argv[0], (int)pid);
    return 0;
}

/* The count N of `scale SVC N`: 1 to SAGA_PARTITIONS, else -1. */
static int parse_instances(const char *s)
{
    char *end = NULL;
    long n = strtol(s, &end, 10);

    return end == s || *end != '\0' || n < 1 || n > SAGA_PARTITIONS ? -1 : (int)n;
}

static int cmd_scale(ctx *c, int argc, char **argv)
{
    static fleet_rescale_report rep;
    char err[PATH_CAP + 256];
    const char *svc;
    int m;

    if (argc != 2)
        return usage_error("scale needs a SERVICE and a count N");
    svc = argv[0];
    m = parse_instances(argv[1]);
    if (m < 0)
        return usage_error("scale: N is a count of instances from 1 to %d, not '%s'",
                           SAGA_PARTITIONS, argv[1]);
    if (!valid_name(svc) || fleet_is_broker(c->f, svc) || strcmp(svc, BROKER) == 0 ||
        strcmp(svc, GATEWAY) == 0 || strcmp(svc, PROMETHEUS) == 0)
        return usage_error("scale: '%s' is no saga participant", svc);
    if (fleet_instances_running(c->f, svc) == 0)
        return usage_error("scale: no service '%s' in the fleet in %s", svc, c->home);
    if (!any_broker_alive(c))
        return fail("nats-server is not running: deploy/fleet up");
    if (fleet_rescale(c->f, svc, m, STOP_MS, READY_MS, &rep, err, sizeof err) != 0)
        return fail("scale %s %d: %s", svc, m, err);
    print_rescale(c, svc, m, &rep);
    /* The new instances serve their metrics on new ports. */
    return update_targets(c, NULL);
}

static int cmd_identity(ctx *c, int argc, char **argv)
{
    char err[PATH_CAP + 256], path[PATH_CAP];

    if (argc != 1)
        return usage_error("identity needs exactly one NAME");
    if (!(fleet_security(c->f) & FLEET_AUTH))
        return fail("the fleet in %s does not authenticate (deploy/fleet up first)", c->home);
    if (fleet_identity(c->f, argv[0], err, sizeof err) != 0)
        return fail("%s", err);
    printf("%s\n", fleet_creds_path(c->f, argv[0], path, sizeof path));
    return 0;
}

static int cmd_restart(ctx *c, int argc, char **argv)
{
    char err[PATH_CAP + 256], url[128];
    const char *name;
    int broker;

    if (argc < 1)
        return usage_error("restart needs exactly one SERVICE (or nats)");
    name = argv[0];
    broker = strcmp(name, BROKER) == 0 || fleet_is_broker(c->f, name);
    if (strcmp(name, BROKER) == 0 && c->nodes == 0 && !known(c, name) &&
        add_broker(c, err, sizeof err) != 0)
        return fail("%s", err);
    if (!known(c, name))
        return usage_error("unknown service '%s'", name);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--env") != 0 || i + 1 >= argc)
            return usage_error("restart: unknown option '%s'", argv[i]);
        if (fleet_set_env(c->f, name, argv[++i], err, sizeof err) != 0)
            return usage_error("%s", err);
    }
    if (!broker && !any_broker_alive(c))
        return fail("nats-server is not running: deploy/fleet up");
    if (fleet_restart(c->f, name, broker ? NATS_STOP_MS : STOP_MS,
                      broker ? NATS_READY_MS : READY_MS, err, sizeof err) != 0) {
        print_tail(c, name);
        return fail("%s", err);
    }
    if (strcmp(name, BROKER) == 0)
        printf("nats-server  pid %d  %s\n", (int)pid_of(c, name), c->url);
    else if (broker)
        printf("%-12s pid %d  %s\n", name, (int)pid_of(c, name),
               fleet_url(c->f, name, url, sizeof url));
    else
        printf("%-12s pid %d  ready\n", name, (int)pid_of(c, name));
    /* A restarted service listens on a new metrics port. */
    return broker ? 0 : update_targets(c, NULL);
}

/* ---- main ---------------------------------------------------------------------- */

typedef struct command {
    const char *name;
    int (*run)(ctx *c, int argc, char **argv);
    const char *usage;
} command;

static const command COMMANDS[] = {
    {"up", cmd_up, USAGE_UP},
    {"down", cmd_down, USAGE_DOWN},
    {"status", cmd_status, USAGE_STATUS},
    {"logs", cmd_logs, USAGE_LOGS},
    {"kill", cmd_kill, USAGE_KILL},
    {"restart", cmd_restart, USAGE_RESTART},
    {"scale", cmd_scale, USAGE_SCALE},
    {"identity", cmd_identity, USAGE_IDENTITY},
};

int main(int argc, char **argv)
{
    const command *cmd = NULL;
    fleet_opts o = {0};
    char err[PATH_CAP + 256], home[PATH_CAP], cwd[PATH_CAP];
    ctx c = {0};
    const char *env_home = getenv("SAGA_HOME");
    int rc;

    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        if (strcmp(argv[1], COMMANDS[i].name) == 0)
            cmd = &COMMANDS[i];
    }
    if (cmd == NULL)
        return usage_error("unknown command '%s'", argv[1]);
    if (wants_help(argc - 2, argv + 2)) {
        fputs(cmd->usage, stdout);
        return 0;
    }
    /* Absolute, so that the services and later commands find the same files from any
     * directory. */
    if (env_home == NULL || env_home[0] == '\0')
        env_home = SAGA_FLEET_HOME;
    if (env_home[0] != '/' && getcwd(cwd, sizeof cwd) != NULL)
        rc = snprintf(home, sizeof home, "%s/%s", cwd, env_home);
    else
        rc = snprintf(home, sizeof home, "%s", env_home);
    if (rc < 0 || (size_t)rc >= sizeof home)
        return fail("SAGA_HOME is too long");
    c.home = home;
    c.url = getenv("SAGA_NATS_URL");
    if (c.url == NULL || c.url[0] == '\0')
        c.url = DEFAULT_URL;
    c.build = getenv("SAGA_BUILD_DIR");
    if (c.build == NULL || c.build[0] == '\0')
        c.build = SAGA_FLEET_BUILD_DIR;
    if (parse_url(&c) != 0)
        return EXIT_FAIL;
    o.home = home;
    o.flags = FLEET_DETACHED;
    if (fleet_create(&c.f, &o, err, sizeof err) != 0)
        return fail("%s", err);
    find_cluster(&c);
    rc = cmd->run(&c, argc - 2, argv + 2);
    fleet_destroy(c.f, 1);
    return rc;
}
