/* tfleet.h - The whole fleet for tests: a nats-server and the five service
 * processes, with the commands and queries a user sends them. */
#ifndef SAGA_TEST_TFLEET_H
#define SAGA_TEST_TFLEET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "commands.pb-c.h"
#include "natsrv.h"
#include "tjs.h"

#define TFLEET_NSVC 5

typedef struct tfleet {
    const char *build_dir;  /* where services/saga-* and tools/sagactl are */
    const char *const *env; /* extra "K=V" for every service, NULL-terminated, may be NULL */
    int nodes;              /* set before tfleet_launch: a cluster of so many nodes (0: one
                               server, or SAGA_TEST_CLUSTER's cluster, see natsrv.h) */
    int security;           /* set before tfleet_launch: fleet_secure's flags (0: none); the
                               test's connection t is then the operator's */
    tsrv *srv;
    tjs t;
    const char *const *svc_env[TFLEET_NSVC]; /* extra "K=V" for one service, may be NULL */
    /* Instances of each service, set before tfleet_launch (0: SAGA_TEST_INSTANCES, or 1):
     * <name>-1..-N with SAGA_INSTANCE=I/N (docs/scaling.md); commands and queries go
     * to the owner of their partition, stock is shared out between inventory's. */
    int instances[TFLEET_NSVC];
    pid_t pid[TFLEET_NSVC]; /* of the first instance */
    char mail[512];
    char home_env[600];     /* "SAGA_HOME=<server dir>" */
    const char *ctl_env[2]; /* what sagactl runs with: tfleet_ctl_env */
} tfleet;

extern const char *const tfleet_names[TFLEET_NSVC];

/* Starts the server and the five services, each waited on until ready. */
int tfleet_start(tfleet *f, const char *build_dir, const char *const *env);
/* tfleet_start behind a broker with fleet_secure's security (FLEET_AUTH, FLEET_TLS). */
int tfleet_start_secure(tfleet *f, const char *build_dir, int security);
/* tfleet_start on a cluster of so many nodes (tsrv_start_cluster). */
int tfleet_start_cluster(tfleet *f, const char *build_dir, const char *const *env, int nodes);
/* The same in two steps, so per-service settings (f->svc_env) can be set between. */
void tfleet_init(tfleet *f, const char *build_dir, const char *const *env);
int tfleet_launch(tfleet *f);
/* Starts one more participant, services/saga-NAME (an extension such as
 * fraud), with the fleet's settings plus env; waits until it is ready. */
pid_t tfleet_start_extra(tfleet *f, const char *name, const char *const *env);
/* The same for any executable bin that runs as service name (a participant
 * built outside the tree); its log is <server dir>/<name>.log. */
pid_t tfleet_start_bin(tfleet *f, const char *name, const char *bin, const char *const *env);
/* SIGTERM to every service (0 when all exit cleanly), then the server goes. */
int tfleet_stop(tfleet *f);
/* cmocka's teardown, of a group or of one test, for a fleet test whose setup set
 * *state to its fleet: tfleet_stop, which also stops the participants started with
 * tfleet_start_extra or tfleet_start_bin. 0 when every process exited cleanly. */
int tfleet_teardown(void **state);

struct CMUnitTest;
/* A fleet test's main: runs the cmocka group tests with setup and teardown (either
 * may be NULL) and returns cmocka's result. SIGPIPE is ignored while it runs, and
 * cnats's library-wide state is released after it. */
#define tfleet_run(tests, setup, teardown)                                                         \
    tfleet_run_group(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)
int tfleet_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                     int (*setup)(void **state), int (*teardown)(void **state));
int tfleet_index(const char *name);
/* Start or SIGKILL every instance of service i. */
int tfleet_start_service(tfleet *f, int i);
int tfleet_kill_service(tfleet *f, int i);
/* The same for instance k (1..instances) of service i: its process name into
 * name (may be NULL). */
int tfleet_start_instance(tfleet *f, int i, int k);
int tfleet_kill_instance(tfleet *f, int i, int k);
const char *tfleet_instance_name(const tfleet *f, int i, int k, char *name, size_t cap);
/* Hand-over (docs/scaling.md): service i goes from its n instances to m (both at
 * least 2), with the fleet library's one procedure (fleet_rescale, as saga-fleet
 * scale): every instance stops gracefully, each partition's records move from its
 * old owner's store to its new one's, the instances beyond m are forgotten and 1..m
 * start with SAGA_INSTANCE=j/m. *pause_ms: from the first stop until the last is
 * ready. 0, or -1 with the reason on stderr. */
int tfleet_rescale(tfleet *f, int i, int m, int64_t *pause_ms);
/* Reads the fleet's processes again after another program (saga-fleet scale) changed
 * them, and with them the instances of each service. 0 or -1. */
int tfleet_reload(tfleet *f);

typedef struct tfleet_item {
    const char *sku;
    int qty;
    long long unit_cents;
} tfleet_item;

/* Commands; replies are freed with their protobuf-c free_unpacked. NULL when
 * no reply came. */
Saga__V1__PlaceOrderReply *tfleet_place(tfleet *f, const char *key, const char *customer,
                                        const tfleet_item *items, int nitems, const char *ship_to,
                                        const char *currency, long long deadline_ms);
/* The same with the request header traceparent (NULL: none). */
Saga__V1__PlaceOrderReply *tfleet_place_traced(tfleet *f, const char *traceparent, const char *key,
                                               const char *customer, const tfleet_item *items,
                                               int nitems, const char *ship_to,
                                               const char *currency, long long deadline_ms);
Saga__V1__CommandReply *tfleet_cancel(tfleet *f, const char *order_id);
/* Places one order under key, retrying with the same key, as a careful client does,
 * until a reply comes or timeout_ms pass: a request in flight when its server or
 * order instance dies gets no answer. 0 with the order id in id and the time it took
 * in *took_ms; -1 when refused (the reason on stderr) or never answered. */
int tfleet_place_retrying(tfleet *f, const char *key, const char *customer,
                          const tfleet_item *items, int nitems, int64_t timeout_ms, char *id,
                          size_t cap, int64_t *took_ms);
/* The orders placed and the orders final (confirmed or cancelled) in the event stream,
 * each counted once (duplicate publishes repeat events). 0, or -1 if it cannot be read. */
int tfleet_count_orders(tfleet *f, size_t *placed, size_t *final);
/* Waits until at least want orders are final and every consumer has had everything
 * acknowledged, for up to timeout_ms; sets the counts last seen. 0 when reached. */
int tfleet_wait_final(tfleet *f, size_t want, int timeout_ms, size_t *placed, size_t *final);

/* With several inventory instances, each gets its share of qty (docs/scaling.md):
 * get sums them. The same code as sagactl stock (ctl_stock_request). */
int tfleet_set_stock(tfleet *f, const char *sku, long long qty);
int tfleet_get_stock(tfleet *f, const char *sku, long long *avail, long long *held,
                     long long *committed);

/* A service's JSON view of an order into buf ("" when it does not answer). */
const char *tfleet_view(tfleet *f, const char *svc, const char *order_id, char *buf, size_t cap);

/* 1 if svc's view of the order holds needle now; otherwise 0, and the view
 * goes to stderr so that a failing test shows what it saw. */
int tfleet_view_shows(tfleet *f, const char *svc, const char *order_id, const char *needle);
/* Waits up to deadline_ms until svc's view of the order holds needle, or
 * alt when alt is not NULL: 1 then, or 0 at the deadline, with the last
 * view on stderr. */
int tfleet_wait_view(tfleet *f, const char *svc, const char *order_id, const char *needle,
                     const char *alt, int deadline_ms);

/* Files in the mail spool for an order. */
int tfleet_spool_count(tfleet *f, const char *order_id);
int tfleet_spool_has(tfleet *f, const char *order_id, const char *kind);

/* The environment sagactl runs with against this fleet: SAGA_HOME=its directory, so
 * that it connects as the operator of a secure fleet. NULL-terminated, owned by f. */
const char *const *tfleet_ctl_env(tfleet *f);
/* Runs `sagactl audit` (output to <server dir>/audit.log); returns its exit
 * status, -1 if it did not run. When the audit fails, the log's first 30 and
 * last 10 lines go to stderr. On a cluster it is given the URL of one
 * running node: sagactl sets a single URL. */
int tfleet_audit(tfleet *f);

#endif
