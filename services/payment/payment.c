/* payment.c - The payment service: charges or declines each placed order, and
 * refunds it (compensations/refund.c) when the order is cancelled.
 *
 * Rules (docs/saga.md): on order.placed, do nothing if a tombstone says the
 * cancellation came first; otherwise decline a total that is not the sum of
 * the order's lines (total_mismatch) or is above PAYMENT_LIMIT_CENTS, else
 * charge it. On order.cancelled, refund once if
 * charged, else leave the tombstone. The per-order record is laid out in
 * pay_state.h. Query saga.q.payment.order answers with this service's view
 * of one order as JSON. */
#include <stdio.h>
#include <string.h>

#include "saga/saga.h"
#include "compensations.h"
#include "events.pb-c.h"
#include "pay_state.h"
#include "svc.h"

#define LIMIT_DEFAULT_CENTS 100000
#define LIMIT_MAX_CENTS (1LL << 40)
#define QUERY_SUBJECT "saga.q.payment.order"
#define REASON_MAX 32 /* order.cancelled reasons are short identifiers */

static long long limit_cents;

static const saga_app_setting settings[] = {
    {"PAYMENT_LIMIT_CENTS", "decline orders whose total exceeds this many cents (0 declines all)",
     LIMIT_DEFAULT_CENTS, 0, LIMIT_MAX_CENTS, &limit_cents, NULL, NULL},
    {0}};

static int valid_currency(const char *s)
{
    return s != NULL && strlen(s) == PAY_CURRENCY_LEN && s[0] >= 'A' && s[0] <= 'Z' &&
           s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z';
}

/* Sums the order's lines (quantity x unit price) into *sum. Returns 0 when a
 * line is malformed (no lines, a quantity below 1, a negative price) or the
 * sum does not fit in 64 bits: no order the order service accepts does that. */
static int lines_total(const Saga__V1__OrderPlaced *msg, int64_t *sum)
{
    int64_t total = 0, line;
    if (msg->n_items == 0)
        return 0;
    for (size_t i = 0; i < msg->n_items; i++) {
        const Saga__V1__LineItem *li = msg->items[i];
        if (li == NULL || li->quantity < 1 || li->unit_cents < 0 ||
            __builtin_mul_overflow((int64_t)li->quantity, li->unit_cents, &line) ||
            __builtin_add_overflow(total, line, &total))
            return 0;
    }
    *sum = total;
    return 1;
}

/* Charges or declines a valid order.placed; the record is new. */
static saga_status decide(saga_ctx *ctx, const char *order_id, const Saga__V1__OrderPlaced *msg)
{
    pay_state ps;
    char reason[128];
    saga_status st;

    memset(&ps, 0, sizeof(ps));
    ps.version = PAY_STATE_VERSION;
    ps.amount_cents = msg->total_cents;
    ps.updated_ms = saga_ctx_now_ms(ctx);
    snprintf(ps.customer_id, sizeof(ps.customer_id), "%s", msg->customer_id);
    snprintf(ps.currency, sizeof(ps.currency), "%s", msg->currency);

    /* Payment charges what the lines add up to, never a total it is told:
     * an order.placed whose total disagrees with its lines (forged, or a
     * defect upstream) is declined as "total_mismatch". Declining, rather
     * than dead-lettering it, ends a real order's saga at once through the
     * usual path (the order service cancels, inventory releases), instead
     * of holding its stock until the deadline; and the decline is a fact in
     * the stream that the audit and an operator can see. */
    int64_t lines_sum = 0;
    int mismatch = !lines_total(msg, &lines_sum) || lines_sum != msg->total_cents;
    /* The fault plan's decline_rate declines a share of orders on purpose. */
    int injected =
        !mismatch && msg->total_cents <= limit_cents && saga_ctx_chance(ctx, "decline_rate");
    if (mismatch || msg->total_cents > limit_cents || injected) {
        Saga__V1__PaymentDeclined out = SAGA__V1__PAYMENT_DECLINED__INIT;
        if (mismatch)
            snprintf(reason, sizeof(reason),
                     "total_mismatch: the order's lines add up to %lld cents, its total says "
                     "%lld",
                     (long long)lines_sum, (long long)msg->total_cents);
        else if (injected)
            snprintf(reason, sizeof(reason), "declined (" SAGA_FAULT_INJECTED ": decline_rate)");
        else
            snprintf(reason, sizeof(reason),
                     "total of %lld cents exceeds the payment limit of %lld cents",
                     (long long)msg->total_cents, limit_cents);
        ps.kind = PAY_DECLINED;
        out.customer_id = ps.customer_id;
        out.amount_cents = ps.amount_cents;
        out.currency = ps.currency;
        out.reason = reason;
        st = pay_state_store(ctx, order_id, &ps);
        if (st == SAGA_OK)
            st = svc_emit(ctx, "payment.declined", order_id, &out.base);
        if (st == SAGA_OK)
            saga_ctx_log(ctx, SAGA_LOG_INFO, "event=declined amount_cents=%lld%s",
                         (long long)ps.amount_cents, mismatch ? " reason=total_mismatch" : "");
    } else {
        Saga__V1__PaymentCharged out = SAGA__V1__PAYMENT_CHARGED__INIT;
        ps.kind = PAY_CHARGED;
        ps.charged_cents = msg->total_cents;
        out.customer_id = ps.customer_id;
        out.amount_cents = ps.charged_cents;
        out.currency = ps.currency;
        st = pay_state_store(ctx, order_id, &ps);
        if (st == SAGA_OK)
            st = svc_emit(ctx, "payment.charged", order_id, &out.base);
        if (st == SAGA_OK)
            saga_ctx_log(ctx, SAGA_LOG_INFO, "event=charged amount_cents=%lld",
                         (long long)ps.charged_cents);
    }
    return st;
}

static saga_status on_placed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderPlaced *msg;
    pay_state ps;
    saga_status rv = SAGA_OK, st;
    (void)udata;

    msg = saga__v1__order_placed__unpack(NULL, ev->payload_len, ev->payload);
    if (msg == NULL) {
        saga_ctx_log(ctx, SAGA_LOG_WARN, "event=reject error=\"OrderPlaced does not unpack\"");
        return SAGA_EREJECT;
    }
    if (!svc_valid_ident(msg->customer_id, PAY_CUSTOMER_MAX) || msg->total_cents < 1 ||
        !valid_currency(msg->currency)) {
        saga_ctx_log(ctx, SAGA_LOG_WARN, "event=reject error=\"invalid OrderPlaced\"");
        rv = SAGA_EREJECT;
        goto out;
    }
    if (saga_ctx_has_tombstone(ctx, ev->order_id, PAY_TOMBSTONE)) {
        /* The cancellation came first: never charge. */
        saga_ctx_log(ctx, SAGA_LOG_INFO, "event=skip reason=tombstone");
        goto out;
    }
    st = pay_state_load(ctx, ev->order_id, &ps);
    if (st == SAGA_OK) {
        /* Already decided (the same order placed twice under another event
         * id): one charge per order, whatever the broker delivers. */
        saga_ctx_log(ctx, SAGA_LOG_INFO, "event=skip reason=already_%s", pay_kind_name(ps.kind));
        goto out;
    }
    if (st == SAGA_ENOTFOUND)
        st = decide(ctx, ev->order_id, msg);
    if (st != SAGA_OK)
        rv = SAGA_ERETRY;
out:
    saga__v1__order_placed__free_unpacked(msg, NULL);
    return rv;
}

/* The order service sends short identifiers (payment_declined, customer,
 * timeout...); anything else becomes "cancelled" in the refund rather than
 * holding up the refund itself. */
static const char *refund_reason(const char *r)
{
    return svc_valid_ident(r, REASON_MAX) ? r : "cancelled";
}

static saga_status on_cancelled(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderCancelled *msg;
    pay_state before;
    saga_status rv = SAGA_OK;
    (void)udata;

    msg = saga__v1__order_cancelled__unpack(NULL, ev->payload_len, ev->payload);
    if (msg == NULL) {
        saga_ctx_log(ctx, SAGA_LOG_WARN, "event=reject error=\"OrderCancelled does not unpack\"");
        return SAGA_EREJECT;
    }
    /* Read first only to say in the log what the compensation found. */
    saga_status st = pay_state_load(ctx, ev->order_id, &before);
    if (st != SAGA_OK)
        before.kind = PAY_NONE;
    st = comp_refund(ctx, ev->order_id, refund_reason(msg->reason));
    /* Nothing is left for payment to do for this order: its record and
     * tombstone are kept for the retention period, then pruned. */
    if (st == SAGA_OK)
        st = saga_ctx_finish(ctx, ev->order_id);
    if (st != SAGA_OK) {
        saga_ctx_log(ctx, SAGA_LOG_WARN, "event=retry error=\"%s\"", saga_strerror(st));
        rv = SAGA_ERETRY;
    } else {
        saga_ctx_log(ctx, SAGA_LOG_INFO, "event=compensated reason=%s found=%s action=%s",
                     refund_reason(msg->reason), pay_kind_name(before.kind),
                     before.kind == PAY_CHARGED    ? "refunded"
                     : before.kind == PAY_REFUNDED ? "none"
                                                   : "tombstone");
    }
    saga__v1__order_cancelled__free_unpacked(msg, NULL);
    return rv;
}

/* order.confirmed: payment's part is done; its record is pruned after the
 * retention period, so confirmed orders do not grow the store forever. */
static saga_status on_confirmed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    (void)udata;
    return saga_ctx_finish(ctx, ev->order_id) == SAGA_OK ? SAGA_OK : SAGA_ERETRY;
}

/* saga.q.payment.order: payload is the order id; replies one JSON object. */
static saga_status on_query(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                            void *udata)
{
    char order[SAGA_ORDER_ID_MAX + 1];
    pay_state ps;
    json_t *reply;
    (void)subject;
    (void)udata;

    if (!svc_query_order_id(data, len, order))
        return svc_reply_not_order_id(ctx, "payment");
    saga_status st = pay_state_load(ctx, order, &ps);
    int tomb = saga_ctx_has_tombstone(ctx, order, PAY_TOMBSTONE);
    if (st == SAGA_OK || st == SAGA_ENOTFOUND) {
        if (st == SAGA_ENOTFOUND)
            memset(&ps, 0, sizeof(ps));
        reply = json_pack("{s:s, s:s, s:b, s:s, s:I, s:I, s:b}", "service", "payment", "order_id",
                          order, "found", st == SAGA_OK || tomb, "state", pay_kind_name(ps.kind),
                          "charged_cents", (json_int_t)ps.charged_cents, "refunded_cents",
                          (json_int_t)ps.refunded_cents, "tombstone", tomb);
    } else {
        reply = json_pack("{s:s, s:s, s:s}", "service", "payment", "order_id", order, "error",
                          saga_strerror(st));
    }
    return svc_json_send(ctx, reply);
}

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    static const char *const emits[] = {"payment.charged", "payment.declined", "payment.refunded",
                                        NULL};
    static const svc_sub subs[] = {{"order.placed", on_placed},
                                   {"order.cancelled", on_cancelled},
                                   {"order.confirmed", on_confirmed},
                                   {NULL, NULL}};
    static const svc_cmd cmds[] = {{QUERY_SUBJECT, on_query}, {NULL, NULL}};
    (void)udata;
    saga_status st = svc_wire(svc, &(svc_wiring){.emits = emits, .subs = subs, .cmds = cmds});
    if (st == SAGA_OK)
        svc_log(cfg, SAGA_LOG_INFO, "event=configured limit_cents=%lld", limit_cents);
    return st;
}

int main(int argc, char **argv)
{
    return saga_app_main("payment",
                         "Charges each placed order, declines those over the limit, "
                         "and refunds cancelled ones.",
                         settings, argc, argv, setup, NULL);
}
