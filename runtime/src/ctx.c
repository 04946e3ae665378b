/* ctx.c - What a handler may do: read and write state, emit events, set timers, park. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service_internal.h"
#include "timers.h"

#define STATE_KEY_MAX 200

void saga__ctx_init(saga_ctx *ctx, saga_service *svc, MDB_txn *txn, const saga_event *ev,
                    const char *traceparent, int delivery, int64_t now_ms)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->svc = svc;
    ctx->txn = txn;
    ctx->ev = ev;
    ctx->delivery = delivery;
    ctx->now_ms = now_ms;
    /* An event handler continues the event's trace; a command handler the
     * caller's, when the request carried one; anything else starts one. */
    saga_traceparent_continue(&ctx->trace, ev != NULL ? ev->trace : traceparent, &svc->span_rng);
}

void saga__ctx_cleanup(saga_ctx *ctx)
{
    free(ctx->reply);
    ctx->reply = NULL;
}

/* Every store failure inside a handler is remembered: the loop then undoes
 * the handler even if it ignored the status, and grows the map on EMAPFULL. */
static saga_status track(saga_ctx *ctx, saga_status st)
{
    if (st != SAGA_OK && st != SAGA_ENOTFOUND && !ctx->store_failed) {
        ctx->store_failed = 1;
        ctx->store_st = st;
    }
    return st;
}

const char *saga_ctx_service(const saga_ctx *ctx)
{
    return ctx->svc->name;
}

int64_t saga_ctx_now_ms(const saga_ctx *ctx)
{
    return ctx->now_ms;
}

const saga_event *saga_ctx_event(const saga_ctx *ctx)
{
    return ctx->ev;
}

int saga_ctx_delivery(const saga_ctx *ctx)
{
    return ctx->delivery;
}

uint64_t saga_ctx_stream_seq(const saga_ctx *ctx)
{
    return ctx->stream_seq;
}

/* Builds the key and picks the database for (order_id, key). */
static saga_status state_key(saga_ctx *ctx, const char *order_id, const char *key, char *buf,
                             MDB_val *k, MDB_dbi *dbi)
{
    if (key == NULL || key[0] == '\0' || strlen(key) > STATE_KEY_MAX)
        return SAGA_EINVAL;
    if (order_id == NULL) {
        *dbi = ctx->svc->store.state;
        k->mv_size = strlen(key);
        k->mv_data = (void *)key;
        return SAGA_OK;
    }
    if (!saga_valid_order_id(order_id))
        return SAGA_EINVAL;
    *dbi = ctx->svc->store.saga;
    k->mv_size = saga__key2(buf, SAGA__KEY_MAX, order_id, key);
    k->mv_data = buf;
    return k->mv_size ? SAGA_OK : SAGA_ETOOBIG;
}

saga_status saga_ctx_get(saga_ctx *ctx, const char *order_id, const char *key, const void **val,
                         size_t *len)
{
    char buf[SAGA__KEY_MAX];
    MDB_val k, v;
    MDB_dbi dbi;
    saga_status rv = state_key(ctx, order_id, key, buf, &k, &dbi);
    if (rv != SAGA_OK)
        return rv;
    rv = track(ctx, saga__store_rc(&ctx->svc->store, mdb_get(ctx->txn, dbi, &k, &v), "state get"));
    if (rv == SAGA_OK) {
        *val = v.mv_data;
        *len = v.mv_size;
    }
    return rv;
}

saga_status saga_ctx_get_record(saga_ctx *ctx, const char *order_id, const char *key, void *out,
                                size_t size)
{
    const void *v;
    size_t len;
    memset(out, 0, size);
    saga_status rv = saga_ctx_get(ctx, order_id, key, &v, &len);
    if (rv != SAGA_OK)
        return rv;
    if (len != size)
        return SAGA_EVALIDATE;
    memcpy(out, v, size);
    return SAGA_OK;
}

saga_status saga_ctx_put(saga_ctx *ctx, const char *order_id, const char *key, const void *val,
                         size_t len)
{
    char buf[SAGA__KEY_MAX];
    MDB_val k, v = {len, (void *)val};
    MDB_dbi dbi;
    saga_status rv = state_key(ctx, order_id, key, buf, &k, &dbi);
    if (rv != SAGA_OK)
        return rv;
    return track(ctx,
                 saga__store_rc(&ctx->svc->store, mdb_put(ctx->txn, dbi, &k, &v, 0), "state put"));
}

saga_status saga_ctx_del(saga_ctx *ctx, const char *order_id, const char *key)
{
    char buf[SAGA__KEY_MAX];
    MDB_val k;
    MDB_dbi dbi;
    saga_status rv = state_key(ctx, order_id, key, buf, &k, &dbi);
    if (rv != SAGA_OK)
        return rv;
    int rc = mdb_del(ctx->txn, dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return SAGA_OK;
    return track(ctx, saga__store_rc(&ctx->svc->store, rc, "state del"));
}

saga_status saga_ctx_tombstone(saga_ctx *ctx, const char *order_id, const char *name)
{
    char key[STATE_KEY_MAX + 1];
    int64_t now = ctx->now_ms;
    if (order_id == NULL)
        return SAGA_EINVAL;
    snprintf(key, sizeof(key), "~tomb:%s", name);
    return saga_ctx_put(ctx, order_id, key, &now, sizeof(now));
}

int saga_ctx_has_tombstone(saga_ctx *ctx, const char *order_id, const char *name)
{
    char key[STATE_KEY_MAX + 1];
    const void *v;
    size_t len;
    if (order_id == NULL)
        return 0;
    snprintf(key, sizeof(key), "~tomb:%s", name);
    return saga_ctx_get(ctx, order_id, key, &v, &len) == SAGA_OK;
}

saga_status saga_ctx_emit(saga_ctx *ctx, const char *type, const char *order_id,
                          uint32_t schema_version, const void *payload, size_t len)
{
    saga_service *svc = ctx->svc;
    saga_event ev;
    saga__outmsg *m;
    saga_status rv;

    if (!saga_valid_type(type) || !saga_valid_order_id(order_id) || schema_version == 0)
        return SAGA_EINVAL;
    if (len > SAGA_PAYLOAD_MAX)
        return SAGA_ETOOBIG;
    memset(&ev, 0, sizeof(ev));
    saga_ulid_new(ev.event_id);
    snprintf(ev.type, sizeof(ev.type), "%s", type);
    ev.schema_version = schema_version;
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
    if (ctx->ev != NULL)
        memcpy(ev.causation_id, ctx->ev->event_id, sizeof(ev.causation_id));
    snprintf(ev.producer, sizeof(ev.producer), "%s", svc->name);
    rv = track(ctx, saga__meta_next(&svc->store, ctx->txn, "sequence", &ev.sequence));
    if (rv != SAGA_OK)
        return rv;
    ev.time_ms = saga__now_ms();
    /* A new span per event: its parent is the span of the event handled. */
    saga_traceparent_child(&ctx->trace, &svc->span_rng, ev.trace, sizeof(ev.trace));
    ev.payload = payload;
    ev.payload_len = len;

    m = saga__outlist_push(&svc->out);
    if (m == NULL)
        return track(ctx, SAGA_ENOMEM);
    rv = saga_event_encode(&ev, &m->data, &m->len);
    if (rv == SAGA_OK)
        rv = saga_event_subject(type, order_id, m->subject, sizeof(m->subject));
    if (rv != SAGA_OK) {
        saga__outlist_truncate(&svc->out, svc->out.n - 1);
        return rv;
    }
    memcpy(m->msg_id, ev.event_id, sizeof(ev.event_id));
    /* Readers that want one order's events (a partition holds many orders)
     * pick them by this header without decoding the envelope. */
    saga__outmsg_header(m, SAGA_HDR_ORDER_ID, order_id);
    /* For tracing tools that read only headers (OpenTelemetry's propagators);
     * consumers read the envelope's copy, not this. */
    saga__outmsg_header(m, SAGA_HDR_TRACEPARENT, ev.trace);
    /* What the broker cannot take never enters the outbox: published after
     * the commit, it could only fail there, for good. */
    size_t size = saga__outmsg_wire_size(m), limit = saga__transport_max_message(svc);
    if (size > limit) {
        saga__outlist_truncate(&svc->out, svc->out.n - 1);
        SAGA__LOG(&svc->log, SAGA_LOG_ERROR,
                  "event=emit_refused type=%s order=%s bytes=%zu max=%zu error=\"%s\"", type,
                  order_id, size, limit, saga_strerror(SAGA_ETOOBIG));
        pthread_mutex_lock(&svc->stats_mu);
        svc->stats.too_big++;
        pthread_mutex_unlock(&svc->stats_mu);
        return SAGA_ETOOBIG;
    }
    rv = saga__outbox_put(&svc->store, ctx->txn, m);
    if (rv != SAGA_OK) {
        saga__outlist_truncate(&svc->out, svc->out.n - 1);
        return track(ctx, rv);
    }
    SAGA__LOG(&svc->log, SAGA_LOG_DEBUG, "event=emit type=%s order=%s event_id=%s cause=%s", type,
              order_id, ev.event_id, ev.causation_id);
    return SAGA_OK;
}

saga_status saga_ctx_finish(saga_ctx *ctx, const char *order_id)
{
    if (!saga_valid_order_id(order_id))
        return SAGA_EINVAL;
    return track(ctx, saga__state_finish(&ctx->svc->store, ctx->txn, order_id, ctx->now_ms));
}

static int valid_timer_name(const char *name)
{
    return name != NULL && name[0] != '\0' && name[0] != SAGA__TIMER_INTERNAL &&
           strlen(name) <= SAGA__TIMER_NAME_MAX;
}

saga_status saga_ctx_timer_set(saga_ctx *ctx, const char *order_id, const char *name,
                               int64_t due_ms, const void *data, size_t len)
{
    if (!saga_valid_order_id(order_id) || !valid_timer_name(name) || len > 4096)
        return SAGA_EINVAL;
    saga_status rv =
        track(ctx, saga__timer_set(&ctx->svc->store, ctx->txn, order_id, name, due_ms, data, len));
    if (rv == SAGA_OK && due_ms < ctx->svc->next_timer_ms)
        ctx->svc->next_timer_ms = due_ms;
    return rv;
}

saga_status saga_ctx_timer_cancel(saga_ctx *ctx, const char *order_id, const char *name)
{
    if (!saga_valid_order_id(order_id) || !valid_timer_name(name))
        return SAGA_EINVAL;
    return track(ctx, saga__timer_cancel(&ctx->svc->store, ctx->txn, order_id, name));
}

saga_status saga_ctx_park(saga_ctx *ctx, int64_t timeout_ms)
{
    ctx->park_timeout_ms = timeout_ms > 0 ? timeout_ms : ctx->svc->cfg.park_timeout_ms;
    return SAGA_PARKED;
}

void saga_ctx_log(saga_ctx *ctx, saga_log_level level, const char *fmt, ...)
{
    const saga__logger *lg = &ctx->svc->log;
    char line[1024];
    va_list ap;
    if (!SAGA__LOG_ENABLED(lg, level))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (ctx->ev != NULL)
        saga__log(lg, level, "order=%s event_id=%s %s", ctx->ev->order_id, ctx->ev->event_id, line);
    else
        saga__log(lg, level, "%s", line);
}

int saga_ctx_gates_open(saga_ctx *ctx, const char *order_id)
{
    for (int i = 0; i < ctx->svc->ngates; i++) {
        char key[64];
        const void *v;
        size_t len;
        snprintf(key, sizeof(key), SAGA__GATE_KEY "%s", ctx->svc->gates[i]);
        if (saga_ctx_get(ctx, order_id, key, &v, &len) != SAGA_OK)
            return 0;
    }
    return 1;
}

int saga_ctx_chance(saga_ctx *ctx, const char *key)
{
    const saga__faults *f = &ctx->svc->faults;
    double rate = saga__faults_business(f, key);
    const char *id = ctx->ev != NULL ? ctx->ev->event_id : ctx->trace.trace_id;
    if (rate <= 0.0 || !saga__faults_roll(f, key, id, 0, rate))
        return 0;
    ctx->faults_hit++;
    SAGA__LOG(&ctx->svc->log, SAGA_LOG_INFO, "event=fault_injected fault=%s order=%s event_id=%s",
              key, ctx->ev ? ctx->ev->order_id : "", ctx->ev ? ctx->ev->event_id : "");
    return 1;
}

saga_status saga_ctx_reply(saga_ctx *ctx, const void *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return SAGA_ENOMEM;
    if (len > 0)
        memcpy(copy, data, len);
    free(ctx->reply);
    ctx->reply = copy;
    ctx->reply_len = len;
    ctx->has_reply = 1;
    return SAGA_OK;
}
