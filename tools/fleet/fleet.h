/* fleet.h - the one launcher of saga fleets: nats-server brokers and service processes
 * under one home directory, for saga-fleet (deploy/fleet), saga-bench and the tests.
 *
 * A fleet is a list of brokers and a list of processes (name, executable, arguments,
 * environment). Each has, below the home directory:
 *
 *   run/NAME.spec   how it is started (executable, arguments, environment, port), so
 *                   that a later `restart` starts it the same way
 *   run/NAME.pid    its pid while it runs
 *   logs/NAME.log   its stdout and stderr, appended
 *   NAME.conf       a broker's nats-server configuration (written at each start)
 *   NAME/           a broker's JetStream store
 *   run/procs       the names in the order they were added
 *
 * A handle opened on a home that already holds a fleet (saga-fleet status, down, ...)
 * finds it there. Processes are tied to the process that started them (tests, the
 * benchmark: killed with it, never left behind) or detached (saga-fleet up: they keep
 * running after it exits). The library never prints; failures come back as a status
 * and a sentence in err. */
#ifndef SAGA_FLEET_H
#define SAGA_FLEET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nats/nats.h>

/* ---- processes ------------------------------------------------------------------ */

enum fleet_spawn_flags {
    /* The child is killed with SIGKILL when the thread that spawned it exits
     * (PR_SET_PDEATHSIG): spawn from a thread that outlives the child, normally main. */
    FLEET_TIED = 1,
    /* The child gets its own process group, so a terminal's Ctrl-C reaches only the
     * parent, which then stops its children in order. */
    FLEET_OWN_GROUP = 2,
    /* The child gets its own session (setsid) and outlives the parent. */
    FLEET_DETACHED = 4,
};

/* Starts argv[0] (a path, not searched in PATH) with arguments argv (NULL-terminated).
 * env is NULL or a NULL-terminated list of "KEY=VALUE" added to the inherited
 * environment; an entry replaces an inherited variable, or an earlier entry, of the
 * same name. stdout and
 * stderr are appended to log_path (created if needed), or inherited if NULL; stdin is
 * /dev/null when FLEET_DETACHED. Signal mask and the dispositions of SIGPIPE, SIGTERM
 * and SIGINT are reset in the child; descriptors other than 0-2 are closed. Returns the
 * child's pid, or -1 with errno set if the fork failed, the log could not be opened or
 * the program could not be executed (the child is reaped). The caller reaps the child
 * (fleet_pid_wait, fleet_pid_term, fleet_pid_kill) unless it exits first. */
pid_t fleet_spawn(const char *const argv[], const char *const env[], const char *log_path,
                  int flags);

/* Waits up to timeout_ms (negative: forever) for child pid to exit and reaps it; stores
 * the raw waitpid status in *status (if not NULL) and returns 0. Returns -1 on timeout
 * (errno ETIMEDOUT, the child keeps running) or error (errno from waitpid). */
int fleet_pid_wait(pid_t pid, int timeout_ms, int *status);

/* SIGTERM to child pid, then waits up to timeout_ms and SIGKILLs it if it has not
 * exited. Always reaps it. Returns 0 if it exited by itself with status 0, 1 if it had
 * to be killed, exited non-zero or died of a signal, -1 on error. */
int fleet_pid_term(pid_t pid, int timeout_ms);

/* SIGKILL to child pid, and reaps it. Returns 0, or -1 with errno set. */
int fleet_pid_kill(pid_t pid);

/* Calls cond(arg) every 20 ms until it returns non-zero (returns 0) or timeout_ms has
 * passed (returns -1). cond is called at least once, and once more at the deadline. */
int fleet_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms);

/* A fresh directory $TMPDIR/PREFIX-XXXXXX (/tmp when TMPDIR is unset or empty), mode
 * 0700. Returns its path, which the caller frees, or NULL with errno set. */
char *fleet_mkdtemp(const char *prefix);

/* Removes path and everything below it, never following symbolic links. A path that
 * does not exist counts as removed. Returns 0, or -1 with errno set. */
int fleet_rmrf(const char *path);

/* Milliseconds on the monotonic clock, for deadlines. */
int64_t fleet_now_ms(void);

/* A TCP port on 127.0.0.1 that nobody listens on now, or -1. */
int fleet_free_port(void);

/* Whether something accepts TCP connections at host:port (an IPv4 address). */
int fleet_port_in_use(const char *host, int port);

/* ---- fleets --------------------------------------------------------------------- */

typedef struct fleet fleet;

typedef struct fleet_opts {
    /* The home directory, created if missing. NULL: a fresh temporary directory
     * (fleet_mkdtemp(temp_prefix)) that fleet_destroy removes. */
    const char *home;
    const char *temp_prefix; /* default "saga-fleet" */
    int flags;               /* fleet_spawn_flags for every process of the fleet */
    const char *nats_server; /* path of nats-server; NULL: the one found at build time */
    /* When set and *cancel becomes non-zero (a signal handler's flag), waits for
     * readiness give up at once. May be NULL. */
    volatile const sig_atomic_t *cancel;
} fleet_opts;

/* Opens the fleet in o->home (reading the brokers and processes it already holds) or
 * in a new temporary directory. Sets *out (free with fleet_destroy) and returns 0, or
 * returns -1 with err set and *out untouched. */
int fleet_create(fleet **out, const fleet_opts *o, char *err, size_t errlen);

/* Reads the home's processes again, as another handle (saga-fleet scale) left them:
 * new ones are added, forgotten ones dropped, redefined ones take their new spec. The
 * processes this handle started stay tied to it. Returns 0, or -1 when run/ cannot be
 * read. */
int fleet_reload(fleet *f);

/* Frees the handle. A fleet of FLEET_TIED processes is stopped first (as
 * fleet_stop_all); a detached one is left running. A temporary home is removed unless
 * keep. Accepts NULL. */
void fleet_destroy(fleet *f, int keep);

const char *fleet_home(const fleet *f);

typedef struct fleet_broker_opts {
    const char *host;      /* listen address; NULL: 127.0.0.1 */
    int port;              /* client port; 0: a free one, chosen at the first start */
    long long max_file_mb; /* JetStream file store limit; 0: 16 GB */
    long long max_payload; /* largest message in bytes; 0: 1 MB (nats-server's default) */
    /* A JetStream cluster: every member gets the same cluster_name ([A-Za-z0-9_-]) and,
     * in routes, the names of the other brokers of this fleet (NULL-terminated). A
     * member also serves HTTP monitoring (/jsz, which names the meta leader) on
     * monitor_port. NULL cluster_name: a single server, no cluster, no monitoring. */
    const char *cluster_name;
    const char *const *routes;
    int cluster_port; /* route port; 0: a free one, chosen when first needed */
    int monitor_port; /* HTTP monitoring port; 0: a free one, chosen at the first start */
} fleet_broker_opts;

/* Adds (or, when not running, redefines) a nats-server with JetStream named name
 * ("nats", "nats-1", ...). A cluster member's routes may name brokers not added yet;
 * they must exist when it starts. Returns 0 or -1 with err set. */
int fleet_add_broker(fleet *f, const char *name, const fleet_broker_opts *b, char *err,
                     size_t errlen);

/* Adds (or, when not running, redefines) a process named name ([a-z0-9_-], at most 32:
 * "payment", "payment-2"): exe with the arguments args and the environment env (both
 * NULL-terminated, may be NULL), copied. Returns 0 or -1 with err set. */
int fleet_add_proc(fleet *f, const char *name, const char *exe, const char *const *args,
                   const char *const *env, char *err, size_t errlen);

/* What process name writes to its log when it is ready (a service: "event=ready", the
 * default), for a program that is no saga service; kept in its spec. Returns 0 or -1
 * with err set (unknown name, a broker, an empty text or one with a newline). */
int fleet_set_ready_text(fleet *f, const char *name, const char *text, char *err, size_t errlen);

/* The rest of name's first argument that starts with prefix ("--port=" of "--port=80":
 * "80"), NULL when none. Owned by the handle, valid until name is redefined. */
const char *fleet_arg(const fleet *f, const char *name, const char *prefix);

/* Adds (or, when not running, redefines) process name as a copy of process like:
 * its executable, arguments, environment and ready text, then env (NULL-terminated,
 * may be NULL) applied as fleet_set_env does. Another instance of a service is started
 * like the first. Returns 0 or -1 with err set. */
int fleet_add_like(fleet *f, const char *name, const char *like, const char *const *env, char *err,
                   size_t errlen);

/* Sets KEY=VALUE in the stored environment of name (for its next start); "KEY" alone
 * removes KEY. */
int fleet_set_env(fleet *f, const char *name, const char *kv, char *err, size_t errlen);

/* The value of KEY in the stored environment of name (as it starts next), or NULL.
 * Owned by the handle: valid until the entry changes. */
const char *fleet_get_env(const fleet *f, const char *name, const char *key);

/* Forgets a process or broker that does not run (its spec and pid files; the log and
 * data stay). Returns 0 or -1. */
int fleet_remove(fleet *f, const char *name);

/* Names in the order they were added; i from 0 to fleet_count()-1. */
int fleet_count(const fleet *f);
const char *fleet_name(const fleet *f, int i);
int fleet_is_broker(const fleet *f, const char *name);

/* Starts name unless it runs; does not wait (see fleet_wait_ready). A broker's
 * configuration is written first. Returns 0 or -1 with err set. */
int fleet_start(fleet *f, const char *name, char *err, size_t errlen);

/* Waits up to timeout_ms until name is ready: a service has logged event=ready since
 * it was started, a broker has logged that it is ready and answers a JetStream
 * request. A broker that exits because its port is taken is started again: on a new
 * port when its port was chosen freely and it never ran, else on the same port until
 * the deadline. Returns 0, or -1 with err set (the process stays as it is; it may have
 * exited). */
int fleet_wait_ready(fleet *f, const char *name, int timeout_ms, char *err, size_t errlen);

/* fleet_start then fleet_wait_ready. */
int fleet_start_ready(fleet *f, const char *name, int timeout_ms, char *err, size_t errlen);

/* SIGTERM, SIGKILL after timeout_ms. Returns 0 if it was not running or exited by
 * itself (cleanly, when its status can be seen: 0 for a service, 0 or 1 for
 * nats-server), 1 if it had to be killed or exited with an error, -1 on error. */
int fleet_stop(fleet *f, const char *name, int timeout_ms);

/* fleet_stop for the n processes names, all at once: each gets SIGTERM, then the
 * slowest timeout_ms to finish. Returns as fleet_stop (-1 also for an unknown name,
 * with nothing stopped). */
int fleet_stop_names(fleet *f, const char *const *names, int n, int timeout_ms);

/* Stops every process at once (SIGTERM, SIGKILL after svc_ms), then the brokers
 * (broker_ms), so that the services flush to a live broker. Returns 0 when all
 * stopped cleanly, 1 otherwise. */
int fleet_stop_all(fleet *f, int svc_ms, int broker_ms);

/* SIGKILL (a crash); waits until it is gone. Returns 0 (also when not running), -1. */
int fleet_kill(fleet *f, const char *name);

/* fleet_stop (if running), fleet_start_ready. */
int fleet_restart(fleet *f, const char *name, int stop_ms, int ready_ms, char *err, size_t errlen);

typedef struct fleet_status {
    int alive;        /* the pid file names a live process running this executable */
    pid_t pid;        /* the last known pid, -1 when none */
    int port;         /* a broker's client port, 0 for a process */
    int cluster_port; /* a cluster member's route port, 0 otherwise or not chosen yet */
    int monitor_port; /* a cluster member's HTTP monitoring port, 0 likewise */
} fleet_status;

/* Returns 0 with *st filled, -1 when name is unknown. */
int fleet_get_status(fleet *f, const char *name, fleet_status *st);

/* "nats://HOST:PORT" (tls:// for FLEET_TLS) of broker name (NULL: the first broker) into buf.
 * Returns buf, or NULL when there is no such broker. */
const char *fleet_url(const fleet *f, const char *name, char *buf, size_t cap);

/* The client URLs of every broker, in the order they were added, separated by commas
 * ("nats://127.0.0.1:4222,nats://..."), as SAGA_NATS_URL and natsOptions_SetURL take
 * them. Returns buf, or NULL when there is no broker or buf is too small. */
const char *fleet_urls(const fleet *f, char *buf, size_t cap);

/* fleet_urls of the fleet in home as its launcher left it (run/), read without
 * changing anything there: what a client outside the launcher connects to when not
 * told where (sagactl, saga-gateway). NULL when home has no broker or buf is too
 * small. */
const char *fleet_home_urls(const char *home, char *buf, size_t cap);

/* Gives opts every server of urls, a comma-separated list as fleet_urls writes it:
 * cnats 3.4.1's natsOptions_SetURL takes a single URL (a list given to it fails every
 * connect), natsOptions_SetServers a list, tried in turn. Returns its status. */
natsStatus fleet_set_servers(natsOptions *opts, const char *urls);

/* The server_name broker name runs with (nats-server reports it as a leader's name). */
const char *fleet_server_name(const fleet *f, const char *name, char *buf, size_t cap);

/* The broker running as server_name, or NULL. Owned by the handle. */
const char *fleet_broker_of_server(const fleet *f, const char *server_name);

/* Which broker leads the JetStream meta group (stream and consumer placement), as the
 * first running cluster member that knows one says (its /jsz). Writes its name into
 * buf and returns 0; -1 when no member answers or none knows a leader (no quorum). */
int fleet_meta_leader(fleet *f, char *buf, size_t cap);

/* Which broker leads stream (its STREAM.INFO cluster.leader), asked through any
 * running broker; writes its name into leader and the stream's replica count into
 * *replicas (may be NULL). Returns 0; -1 when no broker answers, the stream does not
 * exist or it has no leader now (an election is under way). */
int fleet_stream_leader(fleet *f, const char *stream, char *leader, size_t cap, int *replicas);

/* One node's own copy of a replicated stream, as the node itself reports it (its /jsz):
 * a copy that lags, or that lost messages, differs from the others. */
typedef struct fleet_stream_copy {
    char broker[33];    /* the node's fleet name: 32 characters at most */
    int known;          /* 0: the node did not answer, or holds no copy */
    uint64_t messages;  /* messages in this copy */
    uint64_t first_seq; /* its first and last stream sequence */
    uint64_t last_seq;
} fleet_stream_copy;

/* Each running cluster member's copy of stream, at most cap of them, in the order the
 * brokers were added. Returns how many were written (members that did not answer have
 * known 0), or -1 when the fleet runs no cluster. */
int fleet_stream_copies(fleet *f, const char *stream, fleet_stream_copy *out, int cap);

/* A connection as the operator to any running broker of the fleet (tried in turn),
 * without reconnects, and its JetStream context: 0 (free both with jsCtx_Destroy and
 * natsConnection_Destroy), or -1 with nothing to free. */
int fleet_jetstream(fleet *f, natsConnection **nc, jsCtx **js);

/* How many durable consumers of stream are not ready for a new subscriber: without a
 * leader, or still push-bound. After a whole cluster restarts, a consumer reports the
 * subscriber of the last run as bound for a few seconds, and binding to it fails until
 * then. 0 also when the stream does not exist; -1 when no broker answers. */
int fleet_consumers_unsettled(fleet *f, const char *stream);

/* ---- security ------------------------------------------------------------------ */

/* What a fleet's brokers demand (docs/security.md): FLEET_AUTH, every client
 * authenticates as one of the fleet's identities and may publish and subscribe only
 * where its permissions say; FLEET_TLS, connections are TLS only, with a CA of the
 * fleet's own, and clients show a certificate of it. Both are properties of the home
 * (its auth/ and tls/ directories), so a later handle on the same home finds them. */
enum fleet_security { FLEET_AUTH = 1, FLEET_TLS = 2 };

/* Turns on what flags ask for, for the brokers' next start: FLEET_AUTH creates
 * HOME/auth/ with the identities operator (every right; sagactl) and client (places
 * and cancels orders, reads queries), mode 0600; FLEET_TLS creates HOME/tls/ with a
 * CA, the brokers' certificate (for 127.0.0.1, localhost and host, the address the
 * brokers listen on; NULL: none more) and a client certificate (the openssl command).
 * What is on stays on. Returns 0 or -1 with err set. */
int fleet_secure(fleet *f, int flags, const char *host, char *err, size_t errlen);

/* The FLEET_AUTH | FLEET_TLS the fleet runs with. */
int fleet_security(const fleet *f);

/* Makes sure identity (a participant's name, "operator" or "client") has credentials.
 * A process of a fleet with FLEET_AUTH runs as the identity its name gives ("payment",
 * "payment-2": payment), created when it first starts; a new identity is loaded into
 * the running brokers at once (their configuration rewritten, SIGHUP). 0 or -1. */
int fleet_identity(fleet *f, const char *identity, char *err, size_t errlen);

/* fleet_identity of the identity process name runs as, when the fleet has FLEET_AUTH
 * (0 without). Called for every process before the brokers start, it spares each a
 * refused first connection: an identity made later reaches running brokers by a
 * reload, which a process that starts at once can beat. */
int fleet_proc_identity(fleet *f, const char *name, char *err, size_t errlen);

/* The credentials file of identity, into buf; returns buf. */
const char *fleet_creds_path(const fleet *f, const char *identity, char *buf, size_t cap);

/* Gives opts what a client of this fleet needs to connect as identity (NULL: no
 * credentials, to see a refusal): its credentials and, for FLEET_TLS, the CA and the
 * client certificate. Returns its status. */
natsStatus fleet_client_options(const fleet *f, const char *identity, natsOptions *opts);

/* The same for a client outside the launcher (sagactl, saga-bench): each of
 * SAGA_NATS_CREDS, SAGA_NATS_CA, SAGA_NATS_CERT and SAGA_NATS_KEY from the environment
 * when set, else the file of the fleet in home (NULL: none) when it has one. Returns
 * its status, with the reason in err. */
natsStatus fleet_client_env(natsOptions *opts, const char *home, const char *identity, char *err,
                            size_t errlen);

/* Paths of name's log, and of a broker's store directory, into buf; returns buf. */
const char *fleet_log_path(const fleet *f, const char *name, char *buf, size_t cap);
const char *fleet_store_dir(const fleet *f, const char *name, char *buf, size_t cap);

/* The last lines (at most cap-1 bytes) of name's log into buf; "" when none. */
const char *fleet_log_tail(const fleet *f, const char *name, char *buf, size_t cap);

/* ---- Prometheus (prometheus.c) ------------------------------------------------ */

/* Adds (or, when not running, redefines) a Prometheus server as process name: exe
 * (NULL: /usr/bin/prometheus) with its configuration HOME/name/prometheus.yml (every
 * target scraped each second by the job "saga", targets from HOME/name/targets.json),
 * its storage HOME/name/data and its web UI and HTTP API on host:port (NULL host:
 * 127.0.0.1; port 0: a free one, kept from then on). Ready when it says so in its log.
 * Returns 0 or -1 with err set. */
int fleet_add_prometheus(fleet *f, const char *name, const char *exe, const char *host, int port,
                         char *err, size_t errlen);

/* One process Prometheus scrapes: the fleet's name for it (its label "process") and
 * its metrics address, HOST:PORT. */
typedef struct fleet_target {
    const char *name;
    const char *addr;
} fleet_target;

/* Replaces the targets file of Prometheus server name with these n targets; Prometheus
 * applies it within seconds, running or not. Returns 0 or -1 with err set. */
int fleet_prometheus_targets(fleet *f, const char *name, const fleet_target *t, int n, char *err,
                             size_t errlen);

/* "http://HOST:PORT", the web UI and HTTP API of Prometheus server name, into buf;
 * returns buf, or NULL when name is not one. */
const char *fleet_prometheus_url(const fleet *f, const char *name, char *buf, size_t cap);

#endif /* SAGA_FLEET_H */
