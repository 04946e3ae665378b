/* service_internal.h - The saga_service handle and the pieces of its loop. */
#ifndef SAGA_SERVICE_INTERNAL_H
#define SAGA_SERVICE_INTERNAL_H

#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "config_internal.h"
#include "crash.h"
#include "faults.h"
#include "log_internal.h"
#include "metrics.h"
#include "outbox.h"
#include "saga/discovery.h"
#include "saga/service.h"
#include "saga/wire.h"
#include "store.h"

#define SAGA__MAX_SUBS 16
#define SAGA__MAX_CMDS 16
#define SAGA__NAME_MAX 128
#define SAGA__GATE_KEY "~gate:" /* order-scoped state: a participant's clearance */

typedef struct saga_service saga_service;

/* One subscribed event pattern: its handler, and the durable consumers
 * that feed it (partition.c: one for every partition, or one per owned
 * partition). */
typedef struct saga__sub {
    saga_service *svc;
    char pattern[SAGA_TYPE_MAX + 1];
    saga_event_fn fn;
    void *udata;
} saga__sub;

/* One durable push consumer of a subscribed pattern. */
typedef struct saga__consumer {
    saga__sub *sub;
    int partition;                   /* -1: every partition */
    char subject[SAGA__SUBJECT_MAX]; /* evt.*.<pattern>, or evt.<partition>.<pattern> */
    char name[SAGA__NAME_MAX];       /* <service>_<pattern>[_p<NN>], '*' spelled "any" */
    char deliver[SAGA__SUBJECT_MAX]; /* push subject of the consumer */
    natsSubscription *ns;
} saga__consumer;

/* The core NATS subscriptions of one request subject: the subject itself
 * and/or its routed forms "<subject>.<partition>" (partition.c). */
typedef struct saga__route {
    natsSubscription *ns[SAGA_PARTITIONS + 1];
    int n;
} saga__route;

/* One request/reply command subject. */
typedef struct saga__cmd {
    saga_service *svc;
    char subject[SAGA__SUBJECT_MAX];
    saga_command_fn fn;
    void *udata;
    saga__route route;
} saga__cmd;

/* A message received from NATS, waiting for the service thread. */
typedef struct saga__inmsg {
    natsMsg *msg;
    saga__sub *sub; /* set for events */
    saga__cmd *cmd; /* set for commands */
} saga__inmsg;

/* Messages handed from cnats callback threads to the service thread. */
typedef struct saga__queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    saga__inmsg *v;
    size_t n, cap;
} saga__queue;

int saga__queue_init(saga__queue *q);
void saga__queue_cleanup(saga__queue *q);
/* Appends; returns -1 only when memory runs out (the message is then dropped
 * unacknowledged, so JetStream redelivers it after AckWait). */
int saga__queue_push(saga__queue *q, saga__inmsg m);
/* Takes up to max messages, waiting up to wait_ms for the first one. */
size_t saga__queue_take(saga__queue *q, saga__inmsg *out, size_t max, int64_t wait_ms);
size_t saga__queue_len(saga__queue *q);

/* transport.c: the NATS connection, JetStream context, streams, consumers. */
#define SAGA__PUB_FAILS_MAX 64 /* refused publishes remembered per attempt */

typedef struct saga__transport {
    natsConnection *nc;
    jsCtx *js;
    atomic_long pub_ok, pub_err;
    atomic_llong pub_failing_since; /* ms the current publish first failed, 0 if it is not */
    pthread_mutex_t err_mu;
    char pub_errtext[256];
    /* Messages of the current attempt whose ack says the broker refuses them
     * for good (by message id), under err_mu. */
    char pub_refused[SAGA__PUB_FAILS_MAX][160];
    int npub_refused;
    /* The message ids the broker acknowledged in the current attempt, each
     * ended by '\0', under err_mu; acked_lost: one did not fit in memory. */
    char *acked;
    size_t acked_len, acked_cap;
    int acked_lost;
    int pub_no_stream;        /* an ack said no stream takes the subject, under err_mu */
    pthread_cond_t closed_cv; /* signalled by the closed callback, under err_mu */
    int closed;
} saga__transport;

saga_status saga__transport_connect(saga_service *svc);
void saga__transport_close(saga_service *svc);
saga_status saga__transport_ensure_streams(saga_service *svc);
saga_status saga__transport_subscribe(saga_service *svc);
void saga__transport_unsubscribe(saga_service *svc);
/* Publishes every message of list and waits for all publish acks, retrying
 * (the broker drops duplicates by message id) until every message is either
 * acknowledged or refused for good, or the service is asked to stop.
 * refused has list->n flags: a message the broker can never take (over its
 * max payload, or its stream refuses its size) gets 1 and is not retried;
 * the caller replaces it by a dead letter. Transient failures (timeouts, no
 * responders, a lost connection) are retried, only for the messages not yet
 * acknowledged; a missing stream is recreated. */
saga_status saga__transport_publish(saga_service *svc, const saga__outlist *list,
                                    unsigned char *refused);
/* Sends what the connection has buffered now (acknowledgements, replies),
 * instead of within the client library's 1 ms flusher delay; one round trip
 * to the broker. Failures are left to the next publish or ack to find. */
void saga__transport_send_now(saga_service *svc);
/* The largest message, subject and headers included, that the broker takes:
 * its max payload less a margin for the header encoding. */
size_t saga__transport_max_message(saga_service *svc);
/* Checks that the streams this service uses and its durable consumers exist,
 * and recreates what is missing, loudly. Cheap enough for every few seconds;
 * runs on the service thread. */
void saga__transport_check(saga_service *svc);

struct saga_service {
    saga_config cfg; /* strings point into the buffers below */
    char name[SAGA_PRODUCER_MAX + 1];
    char nats_url[SAGA__NATS_URL_MAX + 1];
    char nats_creds[SAGA__PATH_MAX + 1], nats_ca[SAGA__PATH_MAX + 1];
    char nats_cert[SAGA__PATH_MAX + 1], nats_key[SAGA__PATH_MAX + 1];
    char data_dir[SAGA__DATA_DIR_MAX + 1];
    char stream[SAGA__STREAM_MAX + 1];
    char dlq_stream[SAGA__STREAM_MAX + 1];
    char crash_spec[SAGA__CRASH_AT_MAX + 1];
    char metrics_addr[SAGA__METRICS_ADDR_MAX + 1];
    char metrics_host[SAGA__METRICS_ADDR_MAX + 1]; /* the address's host, once listening */
    int metrics_port;       /* the port listened on, 0 when not (discovery.c) */
    struct MHD_Daemon *mhd; /* the metrics server (metrics.c), NULL when none */

    saga__logger log;
    saga__store store;
    saga__transport tp;
    saga__faults faults; /* touched only on the service thread */
    char faults_spec[SAGA__FAULTS_MAX + 1];
    char gates[SAGA__MAX_GATES][SAGA_PRODUCER_MAX + 1];
    int ngates;
    char vetoers[SAGA__MAX_GATES][SAGA_PRODUCER_MAX + 1]; /* SAGA_VETOERS */
    int nvetoers;
    saga__queue q;

    saga__sub subs[SAGA__MAX_SUBS];
    int nsubs;
    saga__consumer *cons; /* the subscriptions' durable consumers, partition.c */
    int ncons;
    uint32_t partitions; /* the partitions this instance owns (bit p: partition p) */
    int instanced;       /* SAGA_INSTANCE or SAGA_PARTITIONS given: consumers per partition */
    char partition_spec[SAGA__PARTITION_SPEC_MAX + 1]; /* as configured; "" when not */
    saga__cmd cmds[SAGA__MAX_CMDS];
    int ncmds;
    saga__route ctl_route;                                   /* saga.ctl.<name>.stats[.<p>] */
    natsSubscription *disc_sub;                              /* saga.discover, discovery.c */
    char emits[SAGA_DISCOVERY_MAX_EMITS][SAGA_TYPE_MAX + 1]; /* declared, saga_service_emits */
    int nemits;
    int64_t started_ms;
    saga_timer_fn timer_fn;
    void *timer_udata;
    saga_precommit_fn precommit_fn;
    void *precommit_udata;
    saga_event_fn expired_fn;
    void *expired_udata;

    atomic_int stop;
    atomic_int inflight; /* messages taken from the queue, not yet acknowledged */

    pthread_mutex_t stats_mu;
    saga_stats stats;       /* counters carry on from the store (stats.c) */
    int64_t stats_since_ms; /* when the counters started: the data directory's first start */
    saga__metrics mx;       /* kept by the service thread only, no lock */
    saga__metrics mx_pub;   /* mx as of the last batch, under stats_mu: what /metrics reads */

    uint64_t span_rng; /* span ids of emitted events (trace.c); service thread only */
    saga__outlist out; /* messages of the batch being processed */
    uint64_t *sent;    /* outbox keys published, deleted in the next transaction */
    size_t nsent, capsent;
    int64_t next_prune_ms;
    int64_t next_timer_ms; /* earliest timer, INT64_MAX when none */
    int64_t next_check_ms; /* next look for deleted streams and consumers */

    char err[512];
};

/* Adds n to one counter now, not with a batch (publishing, health checks). */
#define SAGA__STAT_ADD(svc, field, n)                                                              \
    do {                                                                                           \
        pthread_mutex_lock(&(svc)->stats_mu);                                                      \
        (svc)->stats.field += (n);                                                                 \
        pthread_mutex_unlock(&(svc)->stats_mu);                                                    \
    } while (0)

/* Records an error's detail for saga_service_last_error() and returns st. */
saga_status saga__fail(saga_service *svc, saga_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int64_t saga__now_ms(void);

/* partition.c: which partitions the service consumes and answers for.
 * Plans the durable consumers of every subscription (once, before they are
 * created): with no instance setting one per pattern on every partition, as
 * the only instance; with one, one per pattern and owned partition, named
 * <service>_<pattern>_p<NN> so that the position belongs to the partition. */
saga_status saga__consumers_plan(saga_service *svc);
/* Subscribes route to subject's owned forms: "<subject>.<p>" for every owned
 * partition p, or, owning all, "<subject>.*" and subject itself; plain 1
 * adds subject itself in any case. queue NULL: no queue group. */
saga_status saga__route_subscribe(saga_service *svc, saga__route *route, const char *subject,
                                  const char *queue, int plain, natsMsgHandler cb, void *closure);
void saga__route_unsubscribe(saga__route *route);
/* Destroys route's subscriptions: only after the connection is closed. */
void saga__route_destroy(saga__route *route);
/* Refuses to start on a data directory written for another partition set:
 * its records belong to the partitions it owned (moving them is a hand-over,
 * docs/scaling.md). The first start records the set. */
saga_status saga__partitions_check_store(saga_service *svc);
/* The partitions' JSON array, for discovery and stats. */
struct json_t;
struct json_t *saga__partitions_json(const saga_service *svc);

/* discovery.c: answers saga.discover; called with the other subscriptions. */
saga_status saga__discovery_subscribe(saga_service *svc);

/* 1 when producer may veto this service's orders: it is named in SAGA_GATES
 * or SAGA_VETOERS. */
int saga__service_accepts_veto(const saga_service *svc, const char *producer);

/* metrics.c: GET /metrics on libmicrohttpd's own thread, when
 * SAGA_METRICS_ADDR is set (logs event=metrics_listening); stop waits for
 * that thread. */
saga_status saga__metrics_start(saga_service *svc);
void saga__metrics_stop(saga_service *svc);

/* loop.c */
saga_status saga__loop_run(saga_service *svc);

/* ctx.c: the handle a handler works through. */
struct saga_ctx {
    saga_service *svc;
    MDB_txn *txn; /* nested transaction of this handler call */
    const saga_event *ev;
    int delivery;
    uint64_t stream_seq; /* 0 unless handling a message from the stream */
    int64_t now_ms;
    saga_traceparent trace; /* the trace this handler continues (trace.c) */
    int64_t park_timeout_ms;
    int store_failed;     /* a store call failed: the handler's result is not trusted */
    saga_status store_st; /* ... with this status (SAGA_EMAPFULL grows the map) */
    uint8_t *reply;
    size_t reply_len;
    int has_reply;
    int faults_hit; /* business faults this call injected */
};

/* traceparent: a command's trace context (its request's header), NULL for
 * events (their envelope's) and timers. */
void saga__ctx_init(saga_ctx *ctx, saga_service *svc, MDB_txn *txn, const saga_event *ev,
                    const char *traceparent, int delivery, int64_t now_ms);
void saga__ctx_cleanup(saga_ctx *ctx);

/* state.c: order-scoped state, finishing and pruning sagas. */
saga_status saga__state_finish(saga__store *st, MDB_txn *txn, const char *order_id, int64_t now_ms);
saga_status saga__state_prune(saga__store *st, MDB_txn *txn, int64_t cutoff_ms, size_t max,
                              size_t *removed);

#endif
