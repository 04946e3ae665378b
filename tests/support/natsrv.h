/* natsrv.h - a real nats-server with JetStream on a free port in a temp directory, for tests. */
#ifndef SAGA_TEST_NATSRV_H
#define SAGA_TEST_NATSRV_H

#include <sys/types.h>

#include "fleet.h"

/* A test program ends with nats_CloseAndWait(TSRV_CLOSE_WAIT_MS): nats_Close alone
 * lets cnats' threads free their memory while the process exits, which the leak
 * checker of the sanitizer build may see half done. */
#define TSRV_CLOSE_WAIT_MS 5000

/* One nats-server process, its port, its configuration and its store directory. The
 * handle is owned by the test; every function below runs on the test's main thread
 * (the server dies with the thread that started it, see tproc_spawn). */
typedef struct tsrv tsrv;

/* Creates a temporary directory ($TMPDIR or /tmp, "saga-test-XXXXXX"), writes
 * DIR/nats.conf (listen 127.0.0.1:PORT on a free port, JetStream with its store in
 * DIR/nats), starts nats-server with its output appended to DIR/logs/nats.log, and waits up to
 * 20 s until a client can connect and JetStream answers. If the server cannot bind the
 * chosen port (another process took it) it retries on a new port a few times. On
 * success sets *out (free with tsrv_destroy) and returns 0. On failure prints the tail
 * of the server's log to stderr, removes everything it made, leaves *out untouched and
 * returns -1. */
int tsrv_start(tsrv **out);

/* tsrv_start with the fleet's security on (fleet_secure: FLEET_AUTH, FLEET_TLS): a
 * single server that lets in only the fleet's identities, each with its permissions,
 * and with FLEET_TLS speaks TLS only. The processes the test adds to tsrv_fleet run as
 * their identities; the test's own clients connect with fleet_client_options, and
 * sagactl with SAGA_HOME=tsrv_dir (operator). Tests ask for it; the others run
 * without authentication. */
int tsrv_start_secure(tsrv **out, int security);

/* A JetStream cluster of nodes (2 to 5; 3 is the usual) in one temporary directory:
 * brokers nats-1..nats-N (logs/nats-I.log, stores DIR/nats-I), each on free client,
 * route and monitoring ports and routing to the others. Waits up to 60 s until every
 * node answers JetStream (so a meta leader is elected). Sets SAGA_REPLICAS=nodes in
 * the test's environment unless it is set, so that every process the test starts
 * creates its streams with that many replicas. tsrv_url is then the comma-separated
 * list of the nodes' URLs. Returns as tsrv_start.
 *
 * On a cluster, the functions above and below that speak of "the server" act on every
 * node (stop, kill, restart: the whole cluster); tsrv_port and tsrv_pid are those of
 * the first node. */
int tsrv_start_cluster(tsrv **out, int nodes);

/* The node count SAGA_TEST_CLUSTER asks for (2 to 5), or 0: then tsrv_start starts
 * a single server. When it is set, tsrv_start starts a cluster instead
 * (tsrv_start_cluster), so that every test can run against one; a test that needs a
 * single server's behaviour skips itself when this is non-zero. */
int tsrv_cluster_mode(void);

/* 0 for a single server, else the cluster's node count. */
int tsrv_nodes(const tsrv *s);

/* SIGKILL to node i (0-based) of a cluster, as tsrv_kill; the others go on. 0 or -1. */
int tsrv_kill_node(tsrv *s, int i);

/* Starts node i again (stopping it first if it runs) with its ports and store, and
 * waits up to 60 s until it answers JetStream. 0, or -1 with its log tail printed. */
int tsrv_restart_node(tsrv *s, int i);

/* The index of the node that leads stream, or of the one that leads the JetStream meta
 * group; -1 when none is known now (an election is under way, no quorum, or for the
 * meta group, a single server). */
int tsrv_stream_leader(tsrv *s, const char *stream);
int tsrv_meta_leader(tsrv *s);

/* Whether every node's own copy of stream is there and at the same last sequence
 * (a node that came back has caught up). When copies agree on the last sequence but
 * hold different message counts, a copy lost messages: *diverged is set to 1. The
 * copies are described in why (one "nats-I messages@last_seq" each). */
int tsrv_copies_agree(tsrv *s, const char *stream, int *diverged, char *why, size_t cap);

/* Node i's pid (-1 when it does not run) and its own URL into buf (NULL if no such
 * node). */
pid_t tsrv_node_pid(const tsrv *s, int i);
const char *tsrv_node_url(const tsrv *s, int i, char *buf, size_t cap);

/* Stops the server with SIGTERM, waiting up to 10 s, then SIGKILL. Keeps the directory
 * and port so that tsrv_restart can bring the same server back. Returns 0 if it shut
 * down by itself (nats-server exits with status 1 after SIGTERM; that counts as clean)
 * or was not running, 1 if it had to be killed, -1 on error. */
int tsrv_stop(tsrv *s);

/* Kills the server with SIGKILL (a crash) and reaps it. Returns 0 (also if it was not
 * running), -1 on error. */
int tsrv_kill(tsrv *s);

/* Starts the server again with the same configuration, port and store directory, so
 * JetStream recovers its file-backed streams and clients with reconnect enabled find
 * it where it was. A running server is stopped first (tsrv_stop). Retries for up to
 * 20 s if the port is still taken. Returns 0 when the server is ready as in
 * tsrv_start, -1 on failure (log tail printed to stderr; the handle stays valid and
 * not running). */
int tsrv_restart(tsrv *s);

/* Restarts the server as tsrv_restart does, with the largest message it
 * accepts set to bytes (0: nats-server's 1 MB default). Returns as tsrv_restart. */
int tsrv_restart_max_payload(tsrv *s, long long bytes);

/* Stops the server if it runs (as tsrv_stop), removes the temporary directory with
 * everything in it and frees the handle. Accepts NULL. */
void tsrv_destroy(tsrv *s);

/* "nats://127.0.0.1:PORT" (a cluster: the nodes' URLs separated by commas); owned by
 * the handle, valid until tsrv_destroy. */
const char *tsrv_url(const tsrv *s);

int tsrv_port(const tsrv *s);

/* The temporary directory; tests may put their own files there, and they are removed
 * with it. Owned by the handle, valid until tsrv_destroy. */
const char *tsrv_dir(const tsrv *s);

/* The server's pid, or -1 when it is not running. */
pid_t tsrv_pid(const tsrv *s);

/* The fleet the server belongs to (tools/fleet/fleet.h): a test may add processes to
 * it, which then live in tsrv_dir and stop with the server. Owned by the handle. */
fleet *tsrv_fleet(tsrv *s);

#endif /* SAGA_TEST_NATSRV_H */
