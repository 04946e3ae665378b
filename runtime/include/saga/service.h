/* service.h - A saga participant's life: create, subscribe, run, stop, destroy.
 * Its configuration is in config.h, what its handlers may do in ctx.h, its
 * counters in stats.h; app.h wraps all of this in a ready main().
 *
 * Example:
 *
 *     static saga_status on_placed(saga_ctx *ctx, const saga_event *ev, void *udata)
 *     {
 *         (void)udata;
 *         return saga_ctx_emit(ctx, "audit.seen", ev->order_id, 1, NULL, 0);
 *     }
 *
 *     static int run_audit(void)
 *     {
 *         char err[256];
 *         saga_config cfg;
 *         saga_service *svc = NULL;
 *         saga_status st = saga_config_init(&cfg, "audit", err, sizeof(err));
 *         if (st == SAGA_OK)
 *             st = saga_service_create(&svc, &cfg, err, sizeof(err));
 *         if (st == SAGA_OK)
 *             st = saga_service_subscribe(svc, "order.placed", on_placed, NULL);
 *         if (st == SAGA_OK)
 *             st = saga_service_run(svc); // until saga_service_stop(svc), e.g. on SIGTERM
 *         saga_service_destroy(svc);
 *         saga_library_cleanup();
 *         return st == SAGA_OK ? 0 : 1;
 *     }
 *
 * Delivery is effectively once: per batch of messages one LMDB write
 * transaction; per message the inbox is checked and the handler runs in a
 * nested transaction (a failing handler undoes only its own writes); one
 * commit; the outbox is published with the event id as Nats-Msg-Id and its
 * acks awaited; only then are the messages acknowledged. Every handler runs
 * on the thread that called saga_service_run(). */
#ifndef SAGA_SERVICE_H
#define SAGA_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "saga/config.h"
#include "saga/ctx.h"
#include "saga/event.h"
#include "saga/stats.h"
#include "saga/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saga_service saga_service; /* opaque */

/* Handler for one event. Return SAGA_OK when done (its writes and emits are
 * kept), SAGA_ERETRY for a transient failure (retried with backoff, then
 * dead-lettered), SAGA_EREJECT to dead-letter it now, SAGA_EUNKNOWN to
 * acknowledge and count it, or the value of saga_ctx_park(). Any other
 * status is treated as SAGA_ERETRY. */
typedef saga_status (*saga_event_fn)(saga_ctx *ctx, const saga_event *ev, void *udata);

/* Handler for a timer that came due (also after a restart). Same returns as
 * saga_event_fn, except parking; a failing timer is retried at the next tick. */
typedef saga_status (*saga_timer_fn)(saga_ctx *ctx, const char *order_id, const char *name,
                                     const uint8_t *data, size_t len, void *udata);

/* Handler for a request/reply command on a core NATS subject. It may read,
 * write and emit like an event handler and answers with saga_ctx_reply();
 * the reply is sent after the batch's commit and publish. On a status other
 * than SAGA_OK its writes are undone but its reply is still sent. Commands
 * are not deduplicated: make them idempotent with a client-supplied key. */
typedef saga_status (*saga_command_fn)(saga_ctx *ctx, const char *subject, const uint8_t *data,
                                       size_t len, void *udata);

/* Called once per batch, after its handlers and just before its commit, also
 * for batches with no messages: side effects outside LMDB (files) are made
 * durable here once per batch. Any status but SAGA_OK abandons the batch;
 * its messages are delivered again. */
typedef saga_status (*saga_precommit_fn)(saga_service *svc, void *udata);

/* Creates a service from cfg (copied). Opens the LMDB environment; does not
 * connect yet. *out is set only on SAGA_OK; errbuf says why otherwise. */
saga_status saga_service_create(saga_service **out, const saga_config *cfg, char *errbuf,
                                size_t errlen);

/* Subscribes to events whose type matches pattern: "order.placed", or
 * "*.vetoed" for every producer's vetoes. Each pattern becomes one durable
 * JetStream consumer named <service>_<pattern>. The set-up calls below are
 * all made before run. */
saga_status saga_service_subscribe(saga_service *svc, const char *pattern, saga_event_fn fn,
                                   void *udata);
saga_status saga_service_on_timer(saga_service *svc, saga_timer_fn fn, void *udata);
/* Without a park-expired handler, expired parked events are dead-lettered. */
saga_status saga_service_on_park_expired(saga_service *svc, saga_event_fn fn, void *udata);
saga_status saga_service_on_precommit(saga_service *svc, saga_precommit_fn fn, void *udata);
/* Serves request/reply commands on subject (e.g. "saga.cmd.order.place"). */
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

/* Releases the NATS library's process-wide resources, waiting (a few seconds at
 * most) until its threads have ended, so that the process exits with nothing of
 * it half freed. Call once at exit, after every service is destroyed. */
void saga_library_cleanup(void);

/* Detail of the last error returned by the service (cnats or LMDB text). */
const char *saga_service_last_error(const saga_service *svc);

#ifdef __cplusplus
}
#endif
#endif
