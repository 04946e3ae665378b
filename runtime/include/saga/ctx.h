/* ctx.h - What a handler may do: read and write state, emit events, set
 * timers, park, log, reply. Every write commits, or is undone, together with
 * the batch's inbox ids and outbox (service.h says how a batch runs).
 *
 * Example:
 *
 *     static saga_status on_charged(saga_ctx *ctx, const saga_event *ev, void *udata)
 *     {
 *         static const char mark = 1;
 *         (void)udata;
 *         if (saga_ctx_has_tombstone(ctx, ev->order_id, "cancelled"))
 *             return SAGA_OK; // cancelled first: this step must not run
 *         saga_status st = saga_ctx_put(ctx, ev->order_id, "charged", &mark, sizeof(mark));
 *         if (st == SAGA_OK)
 *             st = saga_ctx_emit(ctx, "billing.invoiced", ev->order_id, 1, NULL, 0);
 *         if (st == SAGA_OK)
 *             saga_ctx_log(ctx, SAGA_LOG_INFO, "event=invoiced");
 *         return st; // anything but SAGA_OK undoes the put and the emit
 *     }
 *
 * Threads: a ctx is valid during one handler call, on the service thread. */
#ifndef SAGA_CTX_H
#define SAGA_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "saga/event.h"
#include "saga/log.h"
#include "saga/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saga_ctx saga_ctx; /* opaque, valid during one handler call */

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

/* Reads a fixed-size record of size bytes into out (zeroed first; stored
 * values carry no alignment guarantee, so it is copied). SAGA_ENOTFOUND if
 * absent, SAGA_EVALIDATE if the stored value has another size (a record of
 * another layout), or saga_ctx_get()'s error. The caller checks the
 * record's own version and fields. */
saga_status saga_ctx_get_record(saga_ctx *ctx, const char *order_id, const char *key, void *out,
                                size_t size);

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

/* The extension contract's gates: 1 when every participant named in
 * SAGA_GATES has cleared order_id (its "<participant>.cleared" event was
 * handled) or no gate is configured, 0 otherwise. A step that must wait
 * returns saga_ctx_park(): any later event of the order retries it. */
int saga_ctx_gates_open(saga_ctx *ctx, const char *order_id);

/* Returns SAGA_PARKED: return that from the handler to put this event aside
 * until another event of the same order has been handled, for at most
 * timeout_ms (0: the configured default). On expiry the park-expired
 * handler runs, or the event is dead-lettered. */
saga_status saga_ctx_park(saga_ctx *ctx, int64_t timeout_ms);

/* A business fault of the fault plan (e.g. "decline_rate"): 1 with the
 * plan's probability for that key, 0 when the plan has none. Repeatable:
 * the same seed and event give the same answer, also on redelivery. */
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
