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
 * TESTSVC_PRECOMMIT_FAIL=<path>: the pre-commit hook fails while that file
 * exists, so no batch can commit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saga/saga.h"

static saga_service *g_svc; /* for the signal handler only */

static void on_signal(int sig)
{
    (void)sig;
    if (g_svc != NULL)
        saga_service_stop(g_svc);
}

static saga_status bump(saga_ctx *ctx, const char *order_id)
{
    const void *v;
    size_t len;
    uint64_t count = 0, total = 0;
    char out[32];
    if (saga_ctx_get(ctx, order_id, "count", &v, &len) == SAGA_OK && len == sizeof(count))
        memcpy(&count, v, sizeof(count));
    if (saga_ctx_get(ctx, NULL, "total", &v, &len) == SAGA_OK && len == sizeof(total))
        memcpy(&total, v, sizeof(total));
    count++;
    total++;
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

static saga_status on_pinged(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    (void)udata;
    if (payload_is(ev, "fail"))
        return SAGA_ERETRY;
    if (payload_is(ev, "reject"))
        return SAGA_EREJECT;
    if (ev->payload_len > 6 && memcmp(ev->payload, "timer:", 6) == 0) {
        char num[32];
        size_t n = ev->payload_len - 6 < sizeof(num) - 1 ? ev->payload_len - 6 : sizeof(num) - 1;
        memcpy(num, ev->payload + 6, n);
        num[n] = '\0';
        long long ms = strtoll(num, NULL, 10);
        saga_status st =
            saga_ctx_timer_set(ctx, ev->order_id, "deadline", saga_ctx_now_ms(ctx) + ms, NULL, 0);
        if (st != SAGA_OK)
            return st;
    }
    if (ev->payload_len > 4 && memcmp(ev->payload, "big:", 4) == 0) {
        char num[32];
        size_t n = ev->payload_len - 4 < sizeof(num) - 1 ? ev->payload_len - 4 : sizeof(num) - 1;
        memcpy(num, ev->payload + 4, n);
        num[n] = '\0';
        size_t size = (size_t)strtoull(num, NULL, 10);
        char *big = malloc(size ? size : 1);
        if (big == NULL)
            return SAGA_ENOMEM;
        memset(big, 'x', size);
        saga_status st = bump(ctx, ev->order_id);
        if (st == SAGA_OK)
            st = saga_ctx_emit(ctx, "testsvc.ponged", ev->order_id, 1, big, size);
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

static saga_status on_get(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                          void *udata)
{
    char order[SAGA_ORDER_ID_MAX + 1], out[32];
    const void *v;
    size_t vlen;
    uint64_t count = 0;
    (void)subject;
    (void)udata;
    if (len == 0 || len > SAGA_ORDER_ID_MAX)
        return saga_ctx_reply(ctx, "error: bad order id", 19);
    memcpy(order, data, len);
    order[len] = '\0';
    if (saga_ctx_get(ctx, order, "count", &v, &vlen) == SAGA_OK && vlen == sizeof(count))
        memcpy(&count, v, sizeof(count));
    int n = snprintf(out, sizeof(out), "%llu", (unsigned long long)count);
    return saga_ctx_reply(ctx, out, (size_t)n);
}

static saga_status on_emit(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                           void *udata)
{
    char order[SAGA_ORDER_ID_MAX + 1];
    (void)subject;
    (void)udata;
    if (len == 0 || len > SAGA_ORDER_ID_MAX)
        return saga_ctx_reply(ctx, "error: bad order id", 19);
    memcpy(order, data, len);
    order[len] = '\0';
    saga_status st = saga_ctx_emit(ctx, "testsvc.ponged", order, 1, "emitted", 7);
    saga_ctx_reply(ctx, st == SAGA_OK ? "ok" : "error", st == SAGA_OK ? 2 : 5);
    return st;
}

int main(int argc, char **argv)
{
    saga_config cfg;
    char err[256];
    int rc = 1;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf(
            "usage: saga-testsvc\nA test service; configured by SAGA_* environment variables.\n");
        return 0;
    }
    if (saga_config_init(&cfg, "testsvc", err, sizeof(err)) != SAGA_OK) {
        fprintf(stderr, "saga-testsvc: %s\n", err);
        return 2;
    }
    cfg.log = saga_log_stderr;
    if (saga_service_create(&g_svc, &cfg, err, sizeof(err)) != SAGA_OK) {
        fprintf(stderr, "saga-testsvc: %s\n", err);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (saga_service_subscribe(g_svc, "test.pinged", on_pinged, NULL) != SAGA_OK ||
        saga_service_subscribe(g_svc, "test.first", on_first, NULL) != SAGA_OK ||
        saga_service_subscribe(g_svc, "test.second", on_second, NULL) != SAGA_OK ||
        saga_service_on_timer(g_svc, on_timer, NULL) != SAGA_OK ||
        saga_service_add_command(g_svc, "saga.cmd.testsvc.get", on_get, NULL) != SAGA_OK ||
        saga_service_add_command(g_svc, "saga.cmd.testsvc.emit", on_emit, NULL) != SAGA_OK ||
        (getenv("TESTSVC_PRECOMMIT_FAIL") != NULL &&
         saga_service_on_precommit(g_svc, fail_while_file, getenv("TESTSVC_PRECOMMIT_FAIL")) !=
             SAGA_OK)) {
        fprintf(stderr, "saga-testsvc: %s\n", saga_service_last_error(g_svc));
        goto out;
    }
    saga_status st = saga_service_run(g_svc);
    if (st != SAGA_OK)
        fprintf(stderr, "saga-testsvc: %s: %s\n", saga_strerror(st),
                saga_service_last_error(g_svc));
    else
        rc = 0;
out:
    saga_service_destroy(g_svc);
    g_svc = NULL;
    saga_library_cleanup();
    return rc;
}
