/* fraud.c - Fraud screening: a participant that joined the fleet without a
 * change to any other service's code (see docs/extending.md).
 *
 * On order.placed it applies three rules a risk team would recognise, and
 * emits fraud.cleared or fraud.vetoed (ParticipantCleared / Vetoed):
 *   - blocked customers (FRAUD_BLOCKED, a comma-separated list);
 *   - an amount threshold (FRAUD_MAX_CENTS);
 *   - order velocity: more than FRAUD_VELOCITY_MAX orders by one customer
 *     within FRAUD_VELOCITY_WINDOW_MS, counted in LMDB.
 * The order service cancels on any "*.vetoed" event; a service started with
 * SAGA_GATES=fraud waits for "fraud.cleared" before its gated step.
 * Query saga.q.fraud.order answers with the decision for one order. */
#include <stdio.h>
#include <string.h>

#include "events.pb-c.h"
#include "saga/saga.h"
#include "svc.h"

#define PARTICIPANT "fraud"
#define QUERY_SUBJECT "saga.q.fraud.order"
#define VELOCITY_SLOTS 64 /* orders remembered per customer: bounds FRAUD_VELOCITY_MAX */
#define REASON_MAX 160

static long long max_cents, velocity_max, velocity_window_ms;
static const char *blocked;

static const saga_app_setting settings[] = {
    {"FRAUD_MAX_CENTS", "veto orders whose total exceeds this many cents", 500000, 1, 1LL << 40,
     &max_cents, NULL, NULL},
    {"FRAUD_VELOCITY_MAX", "veto a customer's orders beyond this many per window", 5, 1,
     VELOCITY_SLOTS, &velocity_max, NULL, NULL},
    {"FRAUD_VELOCITY_WINDOW_MS", "the velocity window", 60000, 1, 7LL * 24 * 3600 * 1000,
     &velocity_window_ms, NULL, NULL},
    {"FRAUD_BLOCKED", "customers whose orders are always vetoed, comma-separated", 0, 0, 0, NULL,
     &blocked, ""},
    {0}};

/* A customer's recent order times (Unix ms), oldest first; global state. */
typedef struct velocity {
    uint32_t n;
    int64_t at[VELOCITY_SLOTS];
} velocity;

/* The decision kept per order, for redeliveries and the query. */
typedef struct decision {
    uint8_t vetoed;
    char reason[REASON_MAX];
} decision;

static int is_blocked(const char *customer)
{
    size_t len = strlen(customer);
    for (const char *p = blocked; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ", ");
        if (n == len && n > 0 && strncmp(p, customer, n) == 0)
            return 1;
        p += n;
        p += strspn(p, ", ");
    }
    return 0;
}

/* Counts the customer's orders in the window ending at now and records this one. */
static saga_status count_velocity(saga_ctx *ctx, const char *customer, int64_t now, int *recent)
{
    char key[96];
    velocity v;
    snprintf(key, sizeof(key), "vel:%s", customer);
    /* No history, or one of another layout: start counting afresh (v is zeroed). */
    saga_status st = svc_state_get(ctx, NULL, key, &v, sizeof(v));
    if (st != SAGA_OK && st != SAGA_ENOTFOUND && st != SAGA_EVALIDATE)
        return st;
    /* Drop what fell out of the window, then the oldest if the ring is full. */
    uint32_t keep = 0;
    for (uint32_t i = 0; i < v.n; i++)
        if (v.at[i] > now - velocity_window_ms)
            v.at[keep++] = v.at[i];
    v.n = keep;
    if (v.n == VELOCITY_SLOTS) {
        memmove(v.at, v.at + 1, (VELOCITY_SLOTS - 1) * sizeof(v.at[0]));
        v.n--;
    }
    v.at[v.n++] = now;
    *recent = (int)v.n;
    return saga_ctx_put(ctx, NULL, key, &v, sizeof(v));
}

static saga_status emit_decision(saga_ctx *ctx, const char *order_id, const decision *d)
{
    if (d->vetoed) {
        Saga__V1__ParticipantVetoed m = SAGA__V1__PARTICIPANT_VETOED__INIT;
        m.participant = PARTICIPANT;
        m.reason = (char *)d->reason; /* the packer only reads it */
        return svc_emit(ctx, PARTICIPANT ".vetoed", order_id, &m.base);
    }
    Saga__V1__ParticipantCleared m = SAGA__V1__PARTICIPANT_CLEARED__INIT;
    m.participant = PARTICIPANT;
    return svc_emit(ctx, PARTICIPANT ".cleared", order_id, &m.base);
}

static saga_status on_placed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderPlaced *op;
    decision d;
    const void *val;
    size_t len;
    int recent = 0;
    saga_status st;
    (void)udata;

    /* Decided before (a redelivery past the inbox): the inbox already made
     * this unlikely; the stored decision makes it impossible to decide twice. */
    if (saga_ctx_get(ctx, ev->order_id, "decision", &val, &len) == SAGA_OK)
        return SAGA_OK;
    op = saga__v1__order_placed__unpack(NULL, ev->payload_len, ev->payload);
    if (op == NULL || !saga_valid_order_id(op->customer_id) || op->total_cents < 0) {
        st = SAGA_EREJECT;
        goto out;
    }
    memset(&d, 0, sizeof(d));
    /* The event's own time, not the clock: a redelivery decides the same. */
    st = count_velocity(ctx, op->customer_id, ev->time_ms, &recent);
    if (st != SAGA_OK)
        goto out;
    if (is_blocked(op->customer_id)) {
        d.vetoed = 1;
        snprintf(d.reason, sizeof(d.reason), "customer %s is blocked", op->customer_id);
    } else if (op->total_cents > max_cents) {
        d.vetoed = 1;
        snprintf(d.reason, sizeof(d.reason), "total %lld cents exceeds the %lld cents threshold",
                 (long long)op->total_cents, max_cents);
    } else if (recent > velocity_max) {
        d.vetoed = 1;
        snprintf(d.reason, sizeof(d.reason), "%d orders by %s within %lld ms (at most %lld)",
                 recent, op->customer_id, velocity_window_ms, velocity_max);
    }
    st = saga_ctx_put(ctx, ev->order_id, "decision", &d, sizeof(d));
    if (st == SAGA_OK)
        st = emit_decision(ctx, ev->order_id, &d);
    if (st == SAGA_OK)
        st = saga_ctx_finish(ctx, ev->order_id);
    if (st == SAGA_OK)
        saga_ctx_log(ctx, SAGA_LOG_INFO, "event=screened decision=%s reason=\"%s\"",
                     d.vetoed ? "vetoed" : "cleared", d.reason);
out:
    if (op != NULL)
        saga__v1__order_placed__free_unpacked(op, NULL);
    return st;
}

static saga_status on_query(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                            void *udata)
{
    char order[SAGA_ORDER_ID_MAX + 1];
    decision d;
    (void)subject;
    (void)udata;
    if (!svc_query_order_id(data, len, order))
        return svc_reply_not_order_id(ctx, PARTICIPANT);
    if (svc_state_get(ctx, order, "decision", &d, sizeof(d)) != SAGA_OK)
        return svc_json_send(ctx, json_pack("{s:s, s:s, s:b, s:s}", "service", PARTICIPANT,
                                            "order_id", order, "found", 0, "decision", "none"));
    d.reason[sizeof(d.reason) - 1] = '\0';
    return svc_json_send(ctx, json_pack("{s:s, s:s, s:b, s:s, s:s}", "service", PARTICIPANT,
                                        "order_id", order, "found", 1, "decision",
                                        d.vetoed ? "vetoed" : "cleared", "reason", d.reason));
}

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    static const char *const emits[] = {"fraud.vetoed", "fraud.cleared", NULL};
    static const svc_sub subs[] = {{"order.placed", on_placed}, {NULL, NULL}};
    static const svc_cmd cmds[] = {{QUERY_SUBJECT, on_query}, {NULL, NULL}};
    (void)cfg;
    (void)udata;
    return svc_wire(svc, &(svc_wiring){.emits = emits, .subs = subs, .cmds = cmds});
}

int main(int argc, char **argv)
{
    return saga_app_main(PARTICIPANT,
                         "Screens placed orders (blocked customers, amount, velocity) and clears "
                         "or vetoes them.",
                         settings, argc, argv, setup, NULL);
}
