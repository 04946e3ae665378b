/* ceiling.h - saga-ceiling: one participant of the order saga's happy path
 * with no-op handlers and no LMDB, moving the same messages through the same
 * broker the same way the runtime does, so that its throughput is the
 * ceiling the runtime is measured against (docs/performance.md). */
#ifndef BENCH_CEILING_H
#define BENCH_CEILING_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>
#include <protobuf-c/protobuf-c.h>

#include "map.h"
#include "saga/event.h"

#define BENCH_CEIL_SUBS_MAX 6
#define BENCH_CEIL_CMDS_MAX 2
#define BENCH_CEIL_SUBJECT_MAX 256

typedef struct bench_ceil bench_ceil;

/* An event handler: reads ev (payload valid during the call), may emit.
 * Returns 0, or -1 when out of memory (the batch is then not acknowledged
 * and JetStream redelivers it, as the runtime would). */
typedef int (*bench_ceil_event_fn)(bench_ceil *c, const saga_event *ev);

/* A command handler: sets *reply (malloc'd, freed by the loop) to the answer. */
typedef int (*bench_ceil_cmd_fn)(bench_ceil *c, const uint8_t *data, size_t len, uint8_t **reply,
                                 size_t *reply_len);

typedef struct bench_ceil_role {
    const char *name; /* the service it stands in for: producer and consumer prefix */
    struct {
        const char *pattern; /* as saga_service_subscribe: "order.placed" */
        bench_ceil_event_fn fn;
    } subs[BENCH_CEIL_SUBS_MAX];
    struct {
        const char *subject;
        bench_ceil_cmd_fn fn;
    } cmds[BENCH_CEIL_CMDS_MAX];
} bench_ceil_role;

/* The five participants, with exactly the subscriptions of the real services
 * (idle ones included, so the broker filters for the same consumers). */
extern const bench_ceil_role bench_ceil_roles[];
extern const size_t bench_ceil_nroles;

/* One message to publish after the batch's handlers ran. */
typedef struct bench_ceil_out {
    char subject[BENCH_CEIL_SUBJECT_MAX];
    char msg_id[SAGA_ID_LEN + 1];
    char order_id[SAGA_ORDER_ID_MAX + 1]; /* the Saga-Order-Id header, as the runtime sets it */
    char trace[SAGA_TRACE_MAX + 1];       /* the traceparent header, likewise */
    uint8_t *data;                        /* malloc'd envelope */
    size_t len;
} bench_ceil_out;

/* What handlers may touch: emits and the in-memory per-order state. */
struct bench_ceil {
    const bench_ceil_role *role;
    bench_map orders;      /* role-specific in-memory state by order id */
    long long deadline_ms; /* ORDER_DEADLINE_MS, as the order service reads it */
    uint64_t sequence;     /* per-producer sequence, as the runtime's */
    uint64_t span_rng;     /* span ids, as the runtime's: seeded once per process */
    bench_ceil_out *out;
    size_t nout, capout;
    /* Set by the loop around each handler call. */
    const saga_event *cause;
};

/* Envelopes payload (packed from msg) as the runtime's saga_ctx_emit does:
 * new ULID, causation and trace context from c->cause (a new trace when
 * there is none; a new span either way), producer = role, next sequence, now; queues it for
 * publishing on evt.<type>.<order_id> with Nats-Msg-Id = event id. Returns 0 or -1. */
int bench_ceil_emit(bench_ceil *c, const char *type, const char *order_id,
                    const ProtobufCMessage *msg);

/* Frees the per-order state a role keeps (the value stored in c->orders). */
void bench_ceil_free_state(void *val);

#endif
