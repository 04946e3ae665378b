/* testsvc.c - A small service on the runtime, driven by the integration tests.
 *
 * Reacts to:
 *   test.pinged   counts per order and in total, emits testsvc.ponged (payload:
 *                 the order's count). Payload "fail" fails transiently every
 *                 time, "reject" rejects, "timer:<ms>" also sets a timer
 *                 "deadline" that emits testsvc.fired when it comes due; "big:<n>"
 *                 also emits testsvc.ponged with n bytes of payload.
 *   test.second   parked until the order's test.first was handled, then counted
 *                 and answered with testsvc.ponged.
 *   test.first    marks the order and emits testsvc.ponged.
 * Command saga.cmd.testsvc.get (payload: order id) replies "<count>";
 * saga.cmd.testsvc.emit (payload: order id) emits testsvc.ponged, replies "ok".
 * Query saga.q.testsvc.order (payload: order id): its view of the order, the
 * pings counted, as JSON.
 * TESTSVC_PRECOMMIT_FAIL=<path>: the pre-commit hook fails while that file
 * exists, so no batch can commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "saga/saga.h"

/* The counter key of the order (NULL: the service's own); 0 when unset. */
static uint64_t counter(saga_ctx *ctx, const char *order_id, const char *key)
{
    const void *v;
    size_t len;
    uint64_t n = 0;
    if (saga_ctx_get(ctx, order_id, key, &v, &len) == SAGA_OK && len == sizeof(n))
        memcpy(&n, v, sizeof(n));
    return n;
}

static saga_status bump(saga_ctx *ctx, const char *order_id)
{
    uint64_t count = counter(ctx, order_id, "count") + 1, total = counter(ctx, NULL, "total") + 1;
    char out[32];
    saga_status st = saga_ctx_put(ctx, order_id, "count", &count, sizeof(count));
    if (st == SAGA_OK)
        st = saga_ctx_put(ctx, NULL, "total", &total, sizeof(total));
    int n = snprintf(out, sizeof(out), "%llu", (unsigned long long)count);
    if (st == SAGA_OK)
        st = saga_ctx_emit(ctx, "testsvc.ponged", order_id, 1, out, (size_t)n);
    return st;
}

static int payload_is(const saga_event *ev, const char *s)
{
    return ev->payload_len == strlen(s) && memcmp(ev->payload, s, ev->payload_len) == 0;
}

/* 1 if the payload is "<prefix><number>", the number then in *out. */
static int payload_number(const saga_event *ev, const char *prefix, long long *out)
{
    size_t p = strlen(prefix);
    char num[32];
    if (ev->payload_len <= p || memcmp(ev->payload, prefix, p) != 0)
        return 0;
    size_t n = ev->payload_len - p < sizeof(num) - 1 ? ev->payload_len - p : sizeof(num) - 1;
    memcpy(num, ev->payload + p, n);
    num[n] = '\0';
    *out = strtoll(num, NULL, 10);
    return 1;
}

static saga_status on_pinged(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    long long ms, size;
    (void)udata;
    if (payload_is(ev, "fail"))
        return SAGA_ERETRY;
    if (payload_is(ev, "reject"))
        return SAGA_EREJECT;
    if (payload_number(ev, "timer:", &ms)) {
        saga_status st =
            saga_ctx_timer_set(ctx, ev->order_id, "deadline", saga_ctx_now_ms(ctx) + ms, NULL, 0);
        if (st != SAGA_OK)
            return st;
    }
    if (payload_number(ev, "big:", &size) && size >= 0) {
        char *big = malloc(size ? size : 1);
        if (big == NULL)
            return SAGA_ENOMEM;
        memset(big, 'x', (size_t)size);
        saga_status st = bump(ctx, ev->order_id);
        if (st == SAGA_OK)
            st = saga_ctx_emit(ctx, "testsvc.ponged", ev->order_id, 1, big, (size_t)size);
        free(big);
        return st;
    }
    return bump(ctx, ev->order_id);
}

static saga_status on_first(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    (void)udata;
    uint8_t one = 1;
    saga_status st = saga_ctx_put(ctx, ev->order_id, "first", &one, 1);
    return st == SAGA_OK ? bump(ctx, ev->order_id) : st;
}

static saga_status on_second(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    const void *v;
    size_t len;
    (void)udata;
    if (saga_ctx_get(ctx, ev->order_id, "first", &v, &len) != SAGA_OK)
        return saga_ctx_park(ctx, 0);
    return bump(ctx, ev->order_id);
}

static saga_status on_timer(saga_ctx *ctx, const char *order_id, const char *name,
                            const uint8_t *data, size_t len, void *udata)
{
    (void)data;
    (void)len;
    (void)udata;
    return saga_ctx_emit(ctx, "testsvc.fired", order_id, 1, name, strlen(name));
}

static saga_status fail_while_file(saga_service *svc, void *udata)
{
    (void)svc;
    return access((const char *)udata, F_OK) == 0 ? SAGA_EIO : SAGA_OK;
}

static saga_status reply_count(saga_ctx *ctx, const char *order)
{
    char out[32];
    int n = snprintf(out, sizeof(out), "%llu", (unsigned long long)counter(ctx, order, "count"));
    return saga_ctx_reply(ctx, out, (size_t)n);
}

static saga_status emit_ponged(saga_ctx *ctx, const char *order)
{
    saga_status st = saga_ctx_emit(ctx, "testsvc.ponged", order, 1, "emitted", 7);
    saga_ctx_reply(ctx, st == SAGA_OK ? "ok" : "error", st == SAGA_OK ? 2 : 5);
    return st;
}

/* Its view of an order for `sagactl get`, as every participant's
 * (docs/protocol.md): {"service","order_id","found","pings"}. */
static saga_status reply_view(saga_ctx *ctx, const char *order)
{
    json_int_t pings = (json_int_t)counter(ctx, order, "count");
    json_t *view = json_pack("{s:s, s:s, s:b, s:I}", "service", "testsvc", "order_id", order,
                             "found", pings > 0, "pings", pings);
    char *text = view != NULL ? json_dumps(view, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(view);
    if (text == NULL)
        return SAGA_ENOMEM;
    saga_status st = saga_ctx_reply(ctx, text, strlen(text));
    free(text);
    return st;
}

/* Every command of testsvc carries an order id as its whole payload. */
typedef struct order_cmd {
    const char *subject;
    saga_status (*fn)(saga_ctx *ctx, const char *order);
} order_cmd;

static const order_cmd order_cmds[] = {
    {"saga.cmd.testsvc.get", reply_count},
    {"saga.cmd.testsvc.emit", emit_ponged},
    {"saga.q.testsvc.order", reply_view},
};

static saga_status on_order_cmd(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                                void *udata)
{
    const order_cmd *cmd = udata;
    char order[SAGA_ORDER_ID_MAX + 1];
    (void)subject;
    if (len == 0 || len > SAGA_ORDER_ID_MAX)
        return saga_ctx_reply(ctx, "error: bad order id", 19);
    memcpy(order, data, len);
    order[len] = '\0';
    return cmd->fn(ctx, order);
}

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    const char *precommit_fail = getenv("TESTSVC_PRECOMMIT_FAIL");
    saga_status st = saga_service_subscribe(svc, "test.pinged", on_pinged, NULL);
    (void)cfg;
    (void)udata;
    if (st == SAGA_OK)
        st = saga_service_subscribe(svc, "test.first", on_first, NULL);
    if (st == SAGA_OK)
        st = saga_service_subscribe(svc, "test.second", on_second, NULL);
    if (st == SAGA_OK)
        st = saga_service_on_timer(svc, on_timer, NULL);
    for (size_t i = 0; st == SAGA_OK && i < sizeof(order_cmds) / sizeof(order_cmds[0]); i++)
        st = saga_service_add_command(svc, order_cmds[i].subject, on_order_cmd,
                                      (void *)&order_cmds[i]);
    if (st == SAGA_OK && precommit_fail != NULL)
        st = saga_service_on_precommit(svc, fail_while_file, (void *)precommit_fail);
    return st;
}

int main(int argc, char **argv)
{
    return saga_app_main("testsvc", "A test service, driven by the integration tests.", NULL, argc,
                         argv, setup, NULL);
}
