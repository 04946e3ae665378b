/* svc.h - Small helpers the services share: JSON query replies, identifier
 * checks, the order id of a query, emitting and replying with protobuf-c
 * messages, fixed-size state records, and logging from setup().
 *
 * Business rules stay in each service; what lives here is the plumbing they
 * all wrote the same way. Every function runs on the calling thread and keeps
 * no state between calls. */
#ifndef SVC_H
#define SVC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "saga/saga.h"

/* ---- JSON ------------------------------------------------------------- */

/* Query replies are jansson values: build one (json_pack("{s:s, s:b}", ...)
 * is the usual way) and hand it to svc_json_send(), which writes it once,
 * compact, with every string escaped. */

/* Sends obj, dumped compactly with its members in the order they were
 * added, as the command's reply (saga_ctx_reply copies it). Steals the
 * reference: obj is released, also on failure. A NULL obj is what
 * json_pack() returns when an allocation failed or a string was NULL or
 * not UTF-8; the client then gets {"error":"..."} and the call returns
 * SAGA_ENOMEM. */
saga_status svc_json_send(saga_ctx *ctx, json_t *obj);

/* Replies {"service":service,"found":false,"error":"..."} to a query whose
 * payload is not an order id (see svc_query_order_id). */
saga_status svc_reply_not_order_id(saga_ctx *ctx, const char *service);

/* ---- validation ------------------------------------------------------- */

/* Whether s is 1 to max characters from A-Z, a-z, 0-9, _ and - (customer
 * ids, SKUs, reason codes). NULL is not. */
int svc_valid_ident(const char *s, size_t max);

/* ---- queries ---------------------------------------------------------- */

/* Reads a query's payload as an order id into order_id: trailing whitespace
 * (the newline a shell pipeline adds) is dropped, and what is left must be
 * 1 to SAGA_ORDER_ID_MAX characters that saga_valid_order_id() accepts.
 * Returns 1 if so, else 0 with order_id "". data may be NULL when len is 0. */
int svc_query_order_id(const uint8_t *data, size_t len, char order_id[SAGA_ORDER_ID_MAX + 1]);

/* ---- protobuf-c messages ---------------------------------------------- */

/* Packs msg and emits it as type for order_id, schema version 1, through
 * saga_ctx_emit() (which copies it to the outbox). Borrows every argument;
 * the packed bytes are freed before it returns. SAGA_ENOMEM if they cannot
 * be allocated, else what saga_ctx_emit() returns. */
saga_status svc_emit(saga_ctx *ctx, const char *type, const char *order_id,
                     const ProtobufCMessage *msg);

/* Packs msg and sets it as the command's reply through saga_ctx_reply().
 * Borrows msg; same returns as svc_emit(). */
saga_status svc_reply(saga_ctx *ctx, const ProtobufCMessage *msg);

/* ---- state records ---------------------------------------------------- */

/* The same as saga_ctx_get_record() (saga/ctx.h), kept for the services' code. */
saga_status svc_state_get(saga_ctx *ctx, const char *order_id, const char *key, void *out,
                          size_t size);

/* ---- wiring ----------------------------------------------------------- */

/* What a service emits and handles, declared as tables that svc_wire()
 * registers, instead of a chain of saga_service_* calls in every setup. */
typedef struct svc_sub {
    const char *pattern; /* producer.event, either may be * */
    saga_event_fn fn;
} svc_sub;

typedef struct svc_cmd {
    const char *subject; /* a command or query subject */
    saga_command_fn fn;
} svc_cmd;

typedef struct svc_wiring {
    const char *const *emits;    /* NULL-terminated event types; NULL: emits none */
    const svc_sub *subs;         /* ends with {NULL, NULL} */
    const svc_cmd *cmds;         /* ends with {NULL, NULL}; may be NULL */
    saga_timer_fn on_timer;      /* may be NULL */
    saga_precommit_fn precommit; /* may be NULL */
} svc_wiring;

/* Registers everything w declares on svc, every handler with a NULL
 * udata: SAGA_OK, or the first failure's status. */
saga_status svc_wire(saga_service *svc, const svc_wiring *w);

/* ---- logging ---------------------------------------------------------- */

/* Logs one key=value line, prefixed with svc=<cfg->name>, through the sink
 * of cfg. For setup(), where there is no ctx; handlers use saga_ctx_log().
 * Formats nothing when cfg has no sink or the level is off. */
void svc_log(const saga_config *cfg, saga_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
