/* event.h - The event envelope: identity, causality and payload of one fact.
 *
 * An event travels as the protobuf message saga.v1.Envelope (schemas/envelope.proto).
 * This header gives its decoded, validated form and the identifiers it uses.
 *
 * Example:
 *
 *     static saga_status roundtrip(const saga_event *ev, saga_event *back)
 *     {
 *         uint8_t *buf = NULL;
 *         size_t len = 0;
 *         void *owner = NULL;
 *         char err[128];
 *         saga_status st = saga_event_encode(ev, &buf, &len);
 *         if (st == SAGA_OK)
 *             st = saga_event_decode(buf, len, back, &owner, err, sizeof(err));
 *         free(buf);
 *         free(owner); // back->payload points into it: done with back here
 *         return st;
 *     }
 */
#ifndef SAGA_EVENT_H
#define SAGA_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "saga/status.h"
#include "saga/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Size caps applied when decoding anything that came from the network. */
#define SAGA_ID_LEN 26       /* ULID, Crockford base32, upper case */
#define SAGA_ORDER_ID_MAX 64 /* order (saga) ids: [A-Za-z0-9_-]{1,64} */
#define SAGA_TYPE_MAX 64     /* "payment.charged": [a-z0-9_]+\.[a-z0-9_]+ */
#define SAGA_PRODUCER_MAX 32 /* service and participant names: [a-z0-9_]{1,32} */
#define SAGA_TRACE_MAX 128   /* W3C traceparent or empty (saga_traceparent_parse) */
#define SAGA_PAYLOAD_MAX (256 * 1024)
#define SAGA_ENVELOPE_MAX (SAGA_PAYLOAD_MAX + 1024)

/* A decoded event. All strings are NUL-terminated copies inside the struct;
 * payload points into memory owned by whoever filled the struct (see
 * saga_event_decode). */
typedef struct saga_event {
    char event_id[SAGA_ID_LEN + 1];
    char type[SAGA_TYPE_MAX + 1];
    uint32_t schema_version;
    char order_id[SAGA_ORDER_ID_MAX + 1];
    char causation_id[SAGA_ID_LEN + 1]; /* empty for the first event of a saga */
    char producer[SAGA_PRODUCER_MAX + 1];
    uint64_t sequence; /* per-producer, starts at 1 */
    int64_t time_ms;   /* Unix time in milliseconds */
    char trace[SAGA_TRACE_MAX + 1];
    const uint8_t *payload;
    size_t payload_len;
} saga_event;

/* Generates a new ULID (26 characters + NUL) into out. Monotonic within the
 * process: two ids made in the same millisecond still sort in creation order.
 * Thread-safe. */
void saga_ulid_new(char out[SAGA_ID_LEN + 1]);

/* Returns the millisecond timestamp encoded in a ULID, or -1 if id is not one. */
int64_t saga_ulid_time_ms(const char *id);

/* Validators for identifiers taken from the network or the command line. */
int saga_valid_ulid(const char *s);
int saga_valid_order_id(const char *s);
int saga_valid_type(const char *s);
/* A service or participant name, [a-z0-9_]{1,32}: it is the part of an
 * event type before the dot, so it takes the type's characters (no '-', no
 * '.'). Configuration refuses any other name (service name, SAGA_GATES). */
int saga_valid_producer(const char *s);

/* Encodes ev into a newly malloc'd buffer *out of *out_len bytes. The caller
 * frees *out with free(); *out is set only on SAGA_OK. Validates ev first
 * (SAGA_EVALIDATE on a bad field, SAGA_ETOOBIG past the caps). */
saga_status saga_event_encode(const saga_event *ev, uint8_t **out, size_t *out_len);

/* Decodes and validates len bytes at data into *ev. On SAGA_OK, ev->payload
 * points into a buffer *payload_owner that the caller frees with free()
 * (NULL when the payload is empty). On failure nothing needs freeing and
 * errbuf (if not NULL) says which field failed. Never crashes on any input. */
saga_status saga_event_decode(const uint8_t *data, size_t len, saga_event *ev, void **payload_owner,
                              char *errbuf, size_t errlen);

/* W3C trace context (https://www.w3.org/TR/trace-context/). Every event's
 * trace field, and its header SAGA_HDR_TRACEPARENT, is a traceparent
 * "00-<trace id>-<span id>-<flags>": the trace id is the saga's (started by
 * the command that placed the order, or taken from the caller's request),
 * the span id is new for every event, and the span of the event it reacts
 * to (its causation) is its parent. */
#define SAGA_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */

typedef struct saga_traceparent {
    char trace_id[33]; /* 32 lower-case hex digits, not all zero */
    char span_id[17];  /* 16 lower-case hex digits, not all zero */
    char flags[3];     /* 2 lower-case hex digits; 01 = sampled */
} saga_traceparent;

/* Parses s as a traceparent: version 00 exactly, or a later version (not
 * ff) whose first four fields have the version-00 layout, as the W3C
 * recommendation asks. Returns 1 and fills *out, or 0 (s is not one, *out
 * is unspecified). s may be NULL. */
int saga_traceparent_parse(const char *s, saga_traceparent *out);

/* The trace context a handler continues: from (an event's trace, or a
 * command's traceparent header; NULL or empty allowed) when it is a valid
 * traceparent, otherwise a new sampled trace whose ids are drawn from *rng,
 * the state of a SplitMix64 generator (seed it with random bits, once per
 * process: ids need to be unique, not secret). */
void saga_traceparent_continue(saga_traceparent *ctx, const char *from, uint64_t *rng);

/* Writes the traceparent of an event emitted in ctx into out (cap at least
 * SAGA_TRACEPARENT_LEN + 1): ctx's trace id and flags, a new span id from
 * *rng. */
void saga_traceparent_child(const saga_traceparent *ctx, uint64_t *rng, char *out, size_t cap);

/* The partition of an order, 0 to SAGA_PARTITIONS - 1: FNV-1a (32-bit) of
 * the order id's bytes, modulo SAGA_PARTITIONS. Any participant, in any
 * language, computes the same (docs/protocol.md). */
unsigned saga_partition_of(const char *order_id);

/* The partition a routed request subject names (its last token,
 * SAGA_SUBJ_ROUTED_FMT), or -1 when it names none: "saga.cmd.order.place.7"
 * gives 7, "saga.cmd.order.place" -1. */
int saga_subject_partition(const char *subject);

/* Writes the request subject routed to the owner of key's partition,
 * "<subject>.<saga_partition_of(key)>", into out: key is an order id (cancel,
 * queries) or an idempotency key (place). SAGA_ETOOBIG if it does not fit. */
saga_status saga_routed_subject(const char *subject, const char *key, char *out, size_t cap);

/* The durable consumer of service's subscription to pattern: for partition -1,
 * the only instance's consumer of every partition, saga_durable_name's
 * "<service>_<pattern>" (payment_order_placed, shipping_any_vetoed); for an
 * instance's consumer of partition NN, that and "_p<NN>"
 * (payment_order_placed_p07). SAGA_ETOOBIG if it does not fit out. */
saga_status saga_consumer_name(const char *service, const char *pattern, int partition, char *out,
                               size_t cap);

/* Builds the subject an event is published on: evt.<partition>.<type>, e.g.
 * evt.7.payment.charged (see wire.h). Returns SAGA_EINVAL for an invalid
 * type or order id, SAGA_ETOOBIG if it does not fit. */
saga_status saga_event_subject(const char *type, const char *order_id, char *out, size_t outlen);
#ifdef __cplusplus
}
#endif
#endif
