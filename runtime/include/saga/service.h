/* service.h - A saga participant: consume events, run handlers, emit events.
 *
 * A service is configured, given its handlers, then run:
 *
 *     saga_config cfg;
 *     saga_config_init(&cfg, "payment");         defaults, then SAGA_* env overrides
 *     saga_service *svc;
 *     saga_service_create(&svc, &cfg);
 *     saga_service_subscribe(svc, "order.placed", on_placed, NULL);
 *     saga_service_run(svc);                      until saga_service_stop()
 *     saga_service_destroy(svc);
 *
 * Delivery is effectively once: for each batch of messages the runtime opens
 * one LMDB write transaction; per message it checks the inbox, runs the
 * handler in a nested transaction (a failing handler undoes only its own
 * writes), records the event id in the inbox and the emitted events in the
 * outbox; it commits once, publishes the outbox to JetStream with the event id
 * as Nats-Msg-Id, waits for the publish acks, and only then acknowledges the
 * incoming messages. A crash anywhere in between changes nothing on restart.
 *
 * Threads: every handler runs on the thread that called saga_service_run(),
 * inside the batch's write transaction. Handlers must not block on I/O other
 * than through the ctx functions below. */
#ifndef SAGA_SERVICE_H
#define SAGA_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "saga/event.h"
#include "saga/log.h"
#include "saga/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saga_service saga_service; /* opaque */
typedef struct saga_ctx saga_ctx;         /* opaque, valid during one handler call */

/* Defaults, each overridable in saga_config (and most by environment). */
#define SAGA_DEFAULT_NATS_URL "nats://127.0.0.1:4222"
#define SAGA_DEFAULT_STREAM "SAGA_EVENTS"
#define SAGA_DEFAULT_DLQ_STREAM "SAGA_DLQ"
#define SAGA_DEFAULT_BATCH_MAX 1024
#define SAGA_DEFAULT_ACK_WAIT_MS 30000
#define SAGA_DEFAULT_MAX_ACK_PENDING 4096
#define SAGA_DEFAULT_MAX_DELIVER 5
#define SAGA_DEFAULT_RETRY_BASE_MS 200
#define SAGA_DEFAULT_RETRY_MAX_MS 10000
#define SAGA_DEFAULT_RETENTION_MS (24LL * 3600 * 1000)
#define SAGA_DEFAULT_EVENTS_MAX_AGE_MS (7LL * 24 * 3600 * 1000)
#define SAGA_DEFAULT_DUP_WINDOW_MS (2LL * 60 * 1000)
#define SAGA_DEFAULT_PARK_TIMEOUT_MS 60000
#define SAGA_DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define SAGA_DEFAULT_PUBLISH_WAIT_MS 5000

typedef struct saga_config {
    const char *name;       /* service name: producer of its events, consumer prefix */
    const char *nats_url;   /* SAGA_NATS_URL */
    const char *data_dir;   /* LMDB environment directory, created if missing: SAGA_DATA_DIR */
    const char *stream;     /* event stream, subjects evt.> */
    const char *dlq_stream; /* dead-letter stream, subjects dlq.> */
    int batch_max;          /* messages per group commit: SAGA_BATCH_MAX */
    int64_t ack_wait_ms;    /* redelivery of unacknowledged messages: SAGA_ACK_WAIT_MS */
    int max_ack_pending;    /* server-side flow control per consumer */
    int max_deliver; /* deliveries before a failing message is dead-lettered: SAGA_MAX_DELIVER */
    int64_t retry_base_ms; /* first retry delay; doubles per delivery */
    int64_t retry_max_ms;  /* cap on the retry delay */
    int64_t retention_ms;  /* inbox ids and finished sagas are kept this long: SAGA_RETENTION_MS */
    int64_t dup_window_ms; /* broker duplicate window set on the streams this service creates */
    int64_t events_max_age_ms; /* age limit of the event stream, if this service creates it */
    int64_t park_timeout_ms;   /* default bound on a parked event's wait */
    int64_t publish_wait_ms;   /* bound on waiting for publish acks before retrying */
    int sync;                  /* 1: every commit is fsync'd (default); 0: MDB_NOSYNC. SAGA_SYNC */
    int commit_per_message;    /* 1: one commit per message instead of per batch (benchmark) */
    size_t map_size;           /* initial LMDB map size; grows on MDB_MAP_FULL */
    const char *crash_at;      /* crash point "name[:n]" for tests: SAGA_CRASH_AT */
    const char *faults;        /* fault plan "key=value,...", see docs/failures.md: SAGA_FAULTS */
    const char *gates; /* participants whose clearance gates steps, "fraud,kyc": SAGA_GATES */
    saga_log_fn log;   /* NULL: no logging */
    void *log_udata;
    saga_log_level log_level; /* SAGA_LOG_LEVEL */
} saga_config;

/* Fills cfg with the defaults above, then applies the SAGA_* environment
 * overrides named there. Strings point into the environment or static
 * storage. Returns SAGA_EINVAL (and leaves the default) for a malformed
 * override, naming it in errbuf. */
saga_status saga_config_init(saga_config *cfg, const char *name, char *errbuf, size_t errlen);

/* Handler for one event. Return SAGA_OK when done (its writes and emits are
 * kept), SAGA_ERETRY for a transient failure (retried with backoff, then
 * dead-lettered), SAGA_EREJECT to dead-letter it now, SAGA_EUNKNOWN to
 * acknowledge and count it, or the value of saga_ctx_park(). Any other status
 * is treated as SAGA_ERETRY. Runs on the service thread. */
typedef saga_status (*saga_event_fn)(saga_ctx *ctx, const saga_event *ev, void *udata);

/* Handler for a timer that came due (also after a restart). Same returns as
 * saga_event_fn, except parking; a failing timer is retried at the next tick. */
typedef saga_status (*saga_timer_fn)(saga_ctx *ctx, const char *order_id, const char *name,
                                     const uint8_t *data, size_t len, void *udata);

/* Handler for a request/reply command received on a core NATS subject. The
 * handler may read and write state and emit events like an event handler;
 * it answers with saga_ctx_reply(). The reply is sent after the batch's
 * commit and publish, so a client that got an answer can rely on it. When
 * it returns anything but SAGA_OK its writes are undone but its reply, if
 * any, is still sent. Commands are not deduplicated by the runtime: make
 * them idempotent with a client-supplied key. */
typedef saga_status (*saga_command_fn)(saga_ctx *ctx, const char *subject, const uint8_t *data,
                                       size_t len, void *udata);

/* Creates a service from cfg (copied). Opens the LMDB environment; does not
 * connect yet. *out is set only on SAGA_OK; errbuf says why otherwise. */
saga_status saga_service_create(saga_service **out, const saga_config *cfg, char *errbuf,
                                size_t errlen);

/* Subscribes to events whose type matches pattern: "order.placed", or
 * "*.vetoed" for every producer's vetoes. Each pattern becomes one durable
 * JetStream consumer named <service>_<pattern>. Call before run. */
saga_status saga_service_subscribe(saga_service *svc, const char *pattern, saga_event_fn fn,
                                   void *udata);

/* Sets the handler for due timers. Call before run. */
saga_status saga_service_on_timer(saga_service *svc, saga_timer_fn fn, void *udata);

/* Sets the handler for parked events whose wait expired. Without one,
 * expired parked events go to the dead-letter stream. */
saga_status saga_service_on_park_expired(saga_service *svc, saga_event_fn fn, void *udata);

/* Called once per batch, after every handler of the batch has run and just
 * before its transaction commits. A service whose handlers have side
 * effects outside LMDB (files, say) makes them durable here in one step for
 * the whole batch, instead of once per message: the commit, and therefore
 * the batch's emits and acknowledgements, happens only after it returns
 * SAGA_OK. Any other status abandons the batch; its messages are delivered
 * again. Runs on the service thread, also for batches with no messages. */
typedef saga_status (*saga_precommit_fn)(saga_service *svc, void *udata);

/* Sets the pre-commit hook. Call before run. */
saga_status saga_service_on_precommit(saga_service *svc, saga_precommit_fn fn, void *udata);

/* Serves request/reply commands on subject (core NATS, e.g. "saga.cmd.order.place"). */
saga_status saga_service_add_command(saga_service *svc, const char *subject, saga_command_fn fn,
                                     void *udata);

/* Connects, creates streams and consumers (idempotently), publishes any
 * outbox left by a previous run, then processes messages until
 * saga_service_stop(). On stop it finishes the batch in hand, flushes the
 * outbox and returns SAGA_OK. Returns an error status if it cannot start. */
saga_status saga_service_run(saga_service *svc);

/* Asks run() to return. Async-signal-safe: call it from a SIGTERM handler. */
void saga_service_stop(saga_service *svc);

/* Frees the service and closes its store. Accepts NULL. Not while run() runs. */
void saga_service_destroy(saga_service *svc);

/* Releases the NATS library's process-wide resources. Call once at exit,
 * after every service is destroyed. */
void saga_library_cleanup(void);

/* Detail of the last error returned by the service (cnats or LMDB text). */
const char *saga_service_last_error(const saga_service *svc);

/* The counters a service reports (saga_service_stats, and as JSON on
 * saga.ctl.<service>.stats), declared once. XX(name, kind, meaning):
 * SAGA_STAT_COUNT only grows and is summed per batch; SAGA_STAT_GAUGE is a
 * value of the moment, set where it is known. */
#define SAGA_STAT_COUNT 0
#define SAGA_STAT_GAUGE 1
#define SAGA_STATS_MAP(XX)                                                                         \
    XX(received, SAGA_STAT_COUNT, "messages taken from JetStream")                                 \
    XX(processed, SAGA_STAT_COUNT, "handler returned SAGA_OK")                                     \
    XX(duplicates, SAGA_STAT_COUNT, "already in the inbox: acknowledged, no effect")               \
    XX(retried, SAGA_STAT_COUNT, "transient failures, negatively acknowledged with delay")         \
    XX(dead_lettered, SAGA_STAT_COUNT, "sent to the dead-letter stream")                           \
    XX(unknown, SAGA_STAT_COUNT, "unknown event types, acknowledged")                              \
    XX(parked, SAGA_STAT_COUNT, "events put aside for a predecessor")                              \
    XX(unparked, SAGA_STAT_COUNT, "parked events later processed")                                 \
    XX(park_expired, SAGA_STAT_COUNT, "parked events whose wait ran out")                          \
    XX(timers_fired, SAGA_STAT_COUNT, "timer handlers that succeeded")                             \
    XX(commands, SAGA_STAT_COUNT, "request/reply commands handled")                                \
    XX(published, SAGA_STAT_COUNT, "messages confirmed by JetStream")                              \
    XX(commits, SAGA_STAT_COUNT, "LMDB write transactions committed")                              \
    XX(pruned, SAGA_STAT_COUNT, "inbox ids and finished sagas removed")                            \
    XX(faults, SAGA_STAT_COUNT, "faults injected by the fault plan")                               \
    XX(too_big, SAGA_STAT_COUNT, "emits refused: over the broker's max payload")                   \
    XX(unpublishable, SAGA_STAT_COUNT, "outgoing messages the broker refused for good")            \
    XX(publish_retries, SAGA_STAT_COUNT, "publish attempts that failed and were retried")          \
    XX(consumers_recreated, SAGA_STAT_COUNT, "durable consumers found missing and recreated")      \
    XX(streams_recreated, SAGA_STAT_COUNT, "streams found missing and recreated")                  \
    XX(publish_stalled_ms, SAGA_STAT_GAUGE, "how long the current publish has failed, 0 if not")   \
    XX(pending, SAGA_STAT_GAUGE, "messages received but not yet acknowledged")

typedef struct saga_stats {
#define SAGA__STATS_FIELD(name, kind, meaning) uint64_t name;
    SAGA_STATS_MAP(SAGA__STATS_FIELD)
#undef SAGA__STATS_FIELD
} saga_stats;

/* Copies the counters. Thread-safe. */
void saga_service_stats(const saga_service *svc, saga_stats *out);

/* ---- Inside a handler ------------------------------------------------- */

const char *saga_ctx_service(const saga_ctx *ctx);
int64_t saga_ctx_now_ms(const saga_ctx *ctx);
/* The event being handled, or NULL in a timer or command handler. */
const saga_event *saga_ctx_event(const saga_ctx *ctx);
/* The delivery count of the message being handled (1 the first time). */
int saga_ctx_delivery(const saga_ctx *ctx);
/* The stream sequence of the message being handled (its position in the
 * event stream), or 0 outside an event delivered from the stream (a timer,
 * a command, a parked event run again). */
uint64_t saga_ctx_stream_seq(const saga_ctx *ctx);

/* Service state. With order_id != NULL the key lives in that order's scope
 * and is pruned after saga_ctx_finish() + retention; with NULL it is global
 * (stock per SKU, a customer's history). Keys are at most 200 bytes.
 * saga_ctx_get sets *val to memory valid until the handler returns or the
 * next put/del; SAGA_ENOTFOUND if absent. */
saga_status saga_ctx_get(saga_ctx *ctx, const char *order_id, const char *key, const void **val,
                         size_t *len);
saga_status saga_ctx_put(saga_ctx *ctx, const char *order_id, const char *key, const void *val,
                         size_t len);
saga_status saga_ctx_del(saga_ctx *ctx, const char *order_id, const char *key);

/* Tombstones: a mark that a saga step must never run (or must be undone at
 * once) because its cancellation came first. Stored in the order's scope. */
saga_status saga_ctx_tombstone(saga_ctx *ctx, const char *order_id, const char *name);
int saga_ctx_has_tombstone(saga_ctx *ctx, const char *order_id, const char *name);

/* Emits an event: enveloped (new id, causation = the event being handled,
 * producer, sequence, time, trace), written to the outbox in this
 * transaction and published after commit on evt.<type>.<order_id>.
 * SAGA_ETOOBIG (and an error line in the log) when the payload is over
 * SAGA_PAYLOAD_MAX or the message would not fit the broker's max payload:
 * nothing the broker must refuse enters the outbox. */
saga_status saga_ctx_emit(saga_ctx *ctx, const char *type, const char *order_id,
                          uint32_t schema_version, const void *payload, size_t len);

/* Marks a saga finished for this service: its order-scoped state and the
 * inbox ids of its events may be pruned after the retention period, and
 * its timers are cancelled. */
saga_status saga_ctx_finish(saga_ctx *ctx, const char *order_id);

/* Durable timers, one per (order_id, name); setting again replaces it. */
saga_status saga_ctx_timer_set(saga_ctx *ctx, const char *order_id, const char *name,
                               int64_t due_ms, const void *data, size_t len);
saga_status saga_ctx_timer_cancel(saga_ctx *ctx, const char *order_id, const char *name);

/* The extension contract's gates: returns 1 when every participant named in
 * SAGA_GATES has cleared order_id (its "<participant>.cleared" event was
 * handled), 1 when no gate is configured, 0 otherwise. A step that must
 * wait returns saga_ctx_park(): the clearance, like any event of the order,
 * retries it. */
int saga_ctx_gates_open(saga_ctx *ctx, const char *order_id);

/* Returns SAGA_PARKED: return that from the handler to put this event aside
 * until another event of the same order has been handled, for at most
 * timeout_ms (0: the configured default). On expiry the park-expired
 * handler runs, or the event is dead-lettered. */
saga_status saga_ctx_park(saga_ctx *ctx, int64_t timeout_ms);

/* A business fault of the fault plan (e.g. "decline_rate"): returns 1 with
 * the plan's probability for that key, 0 when the plan has none. The choice
 * is repeatable: the same seed and event give the same answer, also on
 * redelivery. */
int saga_ctx_chance(saga_ctx *ctx, const char *key);

/* Logs one key=value line through the service's sink, prefixed with svc=
 * and, in an event handler, order= and event_id=. Formats nothing when the
 * level is off. */
void saga_ctx_log(saga_ctx *ctx, saga_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the reply of a command (copied). Last call wins. */
saga_status saga_ctx_reply(saga_ctx *ctx, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
