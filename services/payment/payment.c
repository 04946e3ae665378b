/* payment.c - The payment service: charges or declines each placed order, and
 * refunds it (compensations/refund.c) when the order is cancelled.
 *
 * Rules (docs/saga.md): on order.placed, do nothing if a tombstone says the
 * cancellation came first; otherwise decline a total above
 * PAYMENT_LIMIT_CENTS, else charge it. On order.cancelled, refund once if
 * charged, else leave the tombstone. The per-order record is laid out in
 * pay_state.h. Query saga.q.payment.order answers with this service's view
 * of one order as JSON. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga/saga.h"
#include "compensations.h"
#include "events.pb-c.h"
#include "pay_state.h"

#define LIMIT_DEFAULT_CENTS 100000
#define LIMIT_MAX_CENTS (1LL << 40)
#define QUERY_SUBJECT "saga.q.payment.order"
#define REASON_MAX 32 /* order.cancelled reasons are short identifiers */
#define LOG_LINE_MAX 1024

static long long limit_cents;

static const saga_app_setting settings[] = {
    {"PAYMENT_LIMIT_CENTS", "decline orders whose total exceeds this many cents (0 declines all)",
     LIMIT_DEFAULT_CENTS, 0, LIMIT_MAX_CENTS, &limit_cents, NULL, NULL},
    {0}};

/* The executable's log sink, copied from the runtime's configuration in
 * setup() before the service runs and only read afterwards. */
static struct {
    saga_log_fn fn;
    void *udata;
    saga_log_level level;
} logger;

static void log_line(saga_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Checks the level first so a line that is off is never formatted. */
#define LOG(lvl, ...)                                                                              \
    do {                                                                                           \
        if (logger.fn != NULL && (lvl) <= logger.level)                                            \
            log_line((lvl), __VA_ARGS__);                                                          \
    } while (0)

static void log_line(saga_log_level lvl, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    int n = snprintf(line, sizeof(line), "svc=payment ");
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    logger.fn(logger.udata, lvl, line);
}

static int valid_ident(const char *s, size_t max)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= max || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

static int valid_currency(const char *s)
{
    return s != NULL && strlen(s) == PAY_CURRENCY_LEN && s[0] >= 'A' && s[0] <= 'Z' &&
           s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z';
}

/* Packs msg and emits it as type for order_id. */
static saga_status emit_msg(saga_ctx *ctx, const char *type, const char *order_id,
                            const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return SAGA_ENOMEM;
    protobuf_c_message_pack(msg, buf);
    saga_status st = saga_ctx_emit(ctx, type, order_id, 1, buf, len);
    free(buf);
    return st;
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

    /* The fault plan's decline_rate declines a share of orders on purpose. */
    int injected = msg->total_cents <= limit_cents && saga_ctx_chance(ctx, "decline_rate");
    if (msg->total_cents > limit_cents || injected) {
        Saga__V1__PaymentDeclined out = SAGA__V1__PAYMENT_DECLINED__INIT;
        if (injected)
            snprintf(reason, sizeof(reason), "declined by the fault plan (decline_rate)");
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
            st = emit_msg(ctx, "payment.declined", order_id, &out.base);
        if (st == SAGA_OK)
            LOG(SAGA_LOG_INFO, "event=declined order=%s amount_cents=%lld", order_id,
                (long long)ps.amount_cents);
    } else {
        Saga__V1__PaymentCharged out = SAGA__V1__PAYMENT_CHARGED__INIT;
        ps.kind = PAY_CHARGED;
        ps.charged_cents = msg->total_cents;
        out.customer_id = ps.customer_id;
        out.amount_cents = ps.charged_cents;
        out.currency = ps.currency;
        st = pay_state_store(ctx, order_id, &ps);
        if (st == SAGA_OK)
            st = emit_msg(ctx, "payment.charged", order_id, &out.base);
        if (st == SAGA_OK)
            LOG(SAGA_LOG_INFO, "event=charged order=%s amount_cents=%lld", order_id,
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
        LOG(SAGA_LOG_WARN,
            "event=reject order=%s event_id=%s error=\"OrderPlaced does not unpack\"", ev->order_id,
            ev->event_id);
        return SAGA_EREJECT;
    }
    if (!valid_ident(msg->customer_id, PAY_CUSTOMER_MAX) || msg->total_cents < 1 ||
        !valid_currency(msg->currency)) {
        LOG(SAGA_LOG_WARN, "event=reject order=%s event_id=%s error=\"invalid OrderPlaced\"",
            ev->order_id, ev->event_id);
        rv = SAGA_EREJECT;
        goto out;
    }
    if (saga_ctx_has_tombstone(ctx, ev->order_id, PAY_TOMBSTONE)) {
        /* The cancellation came first: never charge. */
        LOG(SAGA_LOG_INFO, "event=skip order=%s reason=tombstone", ev->order_id);
        goto out;
    }
    st = pay_state_load(ctx, ev->order_id, &ps);
    if (st == SAGA_OK) {
        /* Already decided (the same order placed twice under another event
         * id): one charge per order, whatever the broker delivers. */
        LOG(SAGA_LOG_INFO, "event=skip order=%s reason=already_%s", ev->order_id,
            pay_kind_name(ps.kind));
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
    return valid_ident(r, REASON_MAX) ? r : "cancelled";
}

static saga_status on_cancelled(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderCancelled *msg;
    pay_state before;
    saga_status rv = SAGA_OK;
    (void)udata;

    msg = saga__v1__order_cancelled__unpack(NULL, ev->payload_len, ev->payload);
    if (msg == NULL) {
        LOG(SAGA_LOG_WARN,
            "event=reject order=%s event_id=%s error=\"OrderCancelled does not unpack\"",
            ev->order_id, ev->event_id);
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
        LOG(SAGA_LOG_WARN, "event=retry order=%s error=\"%s\"", ev->order_id, saga_strerror(st));
        rv = SAGA_ERETRY;
    } else {
        LOG(SAGA_LOG_INFO, "event=compensated order=%s reason=%s found=%s action=%s", ev->order_id,
            refund_reason(msg->reason), pay_kind_name(before.kind),
            before.kind == PAY_CHARGED    ? "refunded"
            : before.kind == PAY_REFUNDED ? "none"
                                          : "tombstone");
    }
    saga__v1__order_cancelled__free_unpacked(msg, NULL);
    return rv;
}

/* Copies s into out as the body of a JSON string: quotes, backslashes and
 * control characters escaped. Returns 0 if it does not fit. */
static int json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        int m;
        if (c == '"' || c == '\\')
            m = snprintf(esc, sizeof(esc), "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            m = snprintf(esc, sizeof(esc), "\\u%04x", c);
        else
            m = snprintf(esc, sizeof(esc), "%c", c);
        if (n + (size_t)m >= cap)
            return 0;
        memcpy(out + n, esc, (size_t)m);
        n += (size_t)m;
    }
    out[n] = '\0';
    return 1;
}

/* saga.q.payment.order: payload is the order id; replies one JSON object. */
static saga_status on_query(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                            void *udata)
{
    char order[SAGA_ORDER_ID_MAX + 1], jorder[6 * SAGA_ORDER_ID_MAX + 1], out[512];
    pay_state ps;
    int n;
    (void)subject;
    (void)udata;

    /* Tolerate the newline a shell pipeline adds. */
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        len--;
    if (len > 0 && len <= SAGA_ORDER_ID_MAX)
        memcpy(order, data, len);
    order[len <= SAGA_ORDER_ID_MAX ? len : 0] = '\0';
    if (!saga_valid_order_id(order) || !json_escape(jorder, sizeof(jorder), order)) {
        n = snprintf(out, sizeof(out),
                     "{\"service\":\"payment\",\"found\":false,\"error\":\"the payload must be an "
                     "order id: 1 to 64 characters from A-Z, a-z, 0-9, _ and -\"}");
        return saga_ctx_reply(ctx, out, (size_t)n);
    }
    saga_status st = pay_state_load(ctx, order, &ps);
    int tomb = saga_ctx_has_tombstone(ctx, order, PAY_TOMBSTONE);
    if (st == SAGA_OK || st == SAGA_ENOTFOUND) {
        if (st == SAGA_ENOTFOUND)
            memset(&ps, 0, sizeof(ps));
        n = snprintf(out, sizeof(out),
                     "{\"service\":\"payment\",\"order_id\":\"%s\",\"found\":%s,\"state\":\"%s\","
                     "\"charged_cents\":%lld,\"refunded_cents\":%lld,\"tombstone\":%s}",
                     jorder, st == SAGA_OK || tomb ? "true" : "false", pay_kind_name(ps.kind),
                     (long long)ps.charged_cents, (long long)ps.refunded_cents,
                     tomb ? "true" : "false");
    } else {
        n = snprintf(out, sizeof(out),
                     "{\"service\":\"payment\",\"order_id\":\"%s\",\"error\":\"%s\"}", jorder,
                     saga_strerror(st));
    }
    return saga_ctx_reply(ctx, out, (size_t)n);
}

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    saga_status st;
    (void)udata;
    logger.fn = cfg->log;
    logger.udata = cfg->log_udata;
    logger.level = cfg->log_level;

    st = saga_service_subscribe(svc, "order.placed", on_placed, NULL);
    if (st == SAGA_OK)
        st = saga_service_subscribe(svc, "order.cancelled", on_cancelled, NULL);
    if (st == SAGA_OK)
        st = saga_service_add_command(svc, QUERY_SUBJECT, on_query, NULL);
    if (st == SAGA_OK)
        LOG(SAGA_LOG_INFO, "event=configured limit_cents=%lld", limit_cents);
    return st;
}

int main(int argc, char **argv)
{
    return saga_app_main("payment",
                         "Charges each placed order, declines those over the limit, "
                         "and refunds cancelled ones.",
                         settings, argc, argv, setup, NULL);
}
