/* tjs.h - JetStream helpers for the integration tests: publish events, read streams, ask services.
 */
#ifndef SAGA_TEST_TJS_H
#define SAGA_TEST_TJS_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "saga/event.h"

typedef struct tjs {
    natsConnection *nc;
    jsCtx *js;
} tjs;

/* Connects (retrying for up to 20 s). 0 on success. */
int tjs_connect(tjs *t, const char *url);
/* The same as identity of the secure fleet f (fleet_client_options). */
int tjs_connect_as(tjs *t, const char *url, const fleet *f, const char *identity);
/* The same as the operator of the fleet in home (its auth/ and tls/, as sagactl). */
int tjs_connect_home(tjs *t, const char *url, const char *home);
void tjs_close(tjs *t);
/* A cnats error handler (natsOptions_SetErrorHandler) counting the permissions
 * violations the broker reports on a connection in the int closure points to; cnats
 * calls it on its own thread, so read the count with __atomic_load_n. */
void tjs_count_violations(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure);

/* Creates the event and dead-letter streams as the runtime does, so tests can
 * publish before any service has started. */
int tjs_ensure_streams(tjs *t);

/* Publishes an enveloped event of type on evt.<type>.<order>, produced by
 * the type's first token (as consumers require), with payload
 * text, retrying for up to 30 s (broker restarts). Writes its id to id_out
 * (may be NULL). msg_id NULL uses the event id as Nats-Msg-Id. */
int tjs_publish_event(tjs *t, const char *type, const char *order, const char *payload,
                      char id_out[SAGA_ID_LEN + 1]);
/* The same with a binary payload and the envelope's producer (NULL: the
 * type's first part, "payment" for payment.charged), as a service would
 * publish it: tests forge events with it. */
int tjs_publish_payload(tjs *t, const char *type, const char *order, const char *producer,
                        const void *payload, size_t len, char id_out[SAGA_ID_LEN + 1]);
/* Encodes what tjs_publish_payload publishes, with the envelope's sequence seq:
 * *out (malloc'd, free it), its length, the subject it belongs on and its event id
 * (may be NULL). 0, or -1 when it does not encode. Any thread. */
int tjs_encode_event(const char *type, const char *order, const char *producer, const void *payload,
                     size_t len, uint64_t seq, uint8_t **out, size_t *out_len, char *subject,
                     size_t scap, char id_out[SAGA_ID_LEN + 1]);
/* Publishes an already encoded message under a given Nats-Msg-Id (NULL: none). */
int tjs_publish_raw(tjs *t, const char *subject, const void *data, size_t len, const char *msg_id);

/* One message read back from a stream. */
typedef struct tjs_msg {
    char subject[256];
    saga_event ev; /* decoded when decoded != 0 */
    int decoded;
    char payload[256];                    /* payload as text, truncated */
    char reason[256];                     /* Saga-Reason header, for dead letters */
    char cause[64];                       /* Saga-Cause header, for dead letters */
    char truncated[32];                   /* Saga-Truncated header: the original size, when cut */
    char traceparent[SAGA_TRACE_MAX + 1]; /* traceparent header, for events */
    size_t len;                           /* the body's size */
    uint64_t seq;                         /* its stream sequence */
} tjs_msg;

/* Reads every message of stream on subjects matching filter, in order.
 * *out is malloc'd (free it). 0 on success. */
int tjs_collect(tjs *t, const char *stream, const char *filter, tjs_msg **out, size_t *n);

/* Reads the events of SAGA_EVENTS of one type ("payment.charged"; NULL: any)
 * and one order (NULL: any), in stream order: the subject filter names the
 * order's partition, and what else that partition holds is left out by the
 * envelope's order id. *out is malloc'd (free it). 0 on success. */
int tjs_collect_events(tjs *t, const char *type, const char *order, tjs_msg **out, size_t *n);

/* The subject an event of type and order is published on (saga_event_subject),
 * in a static buffer that the next call overwrites. */
const char *tjs_subject(const char *type, const char *order);

/* Asks saga.ctl.<service>.stats and returns the named counter; -1 when the
 * service does not answer. */
long long tjs_stat(tjs *t, const char *service, const char *field);

/* 1 when every durable consumer of stream has delivered and had acknowledged
 * everything (no pending, no unacknowledged message), 0 otherwise. */
int tjs_consumers_idle(tjs *t, const char *stream);

#endif
