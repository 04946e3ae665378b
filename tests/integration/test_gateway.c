/* test_gateway.c - saga-gateway's order API against a real fleet: the status
 * codes of place, read and cancel; Idempotency-Key (the same request twice is
 * one order, a used key with another body is 422); a body that is not JSON is
 * 400 with a message; an unknown order 404; a confirmed order cannot be
 * cancelled (409); and with the order service stopped, 503. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleet.h"
#include "proc.h"
#include "tfleet.h"
#include "thttp.h"

#define GATEWAY SAGA_BUILD_DIR "/tools/gateway/saga-gateway"
#define HTTP_MS 15000
#define DEADLINE_MS 60000

static tfleet F;
static int port;
static thttp_resp R;

/* The port the gateway logged with event=ready url=http://127.0.0.1:PORT/. */
static int logged_port(void)
{
    char tail[8192];
    const char *url = strstr(fleet_log_tail(tsrv_fleet(F.srv), "gateway", tail, sizeof(tail)),
                             "url=http://127.0.0.1:");
    return url != NULL ? (int)strtol(url + strlen("url=http://127.0.0.1:"), NULL, 10) : -1;
}

static int group_setup(void **state)
{
    static const char *const env[] = {"SAGA_GATEWAY_ADDR=127.0.0.1:0", NULL};
    *state = &F;
    if (tfleet_start(&F, SAGA_BUILD_DIR, NULL) != 0 || tfleet_set_stock(&F, "G1", 1000) != 0)
        return -1;
    if (tfleet_start_bin(&F, "gateway", GATEWAY, env) <= 0)
        return -1;
    port = logged_port();
    return port > 0 ? 0 : -1;
}

static int request(const char *method, const char *path, const char *headers, const char *body)
{
    return thttp_request(port, method, path, headers, body, HTTP_MS, &R);
}

/* The string member key of the last answer's JSON body into out. */
static const char *member(const char *key, char *out, size_t cap)
{
    char want[64];
    snprintf(want, sizeof(want), "\"%s\":\"", key);
    const char *p = strstr(R.body, want);
    out[0] = '\0';
    if (p != NULL)
        snprintf(out, cap, "%.*s", (int)strcspn(p + strlen(want), "\""), p + strlen(want));
    return out;
}

static const char ORDER[] = "{\"customer\":\"gina\",\"lines\":[{\"sku\":\"G1\",\"qty\":2,"
                            "\"price_cents\":1250}],\"ship_to\":\"DE\"}";

static int order_confirmed(void *arg)
{
    char path[128];
    snprintf(path, sizeof(path), "/orders/%s", (const char *)arg);
    /* Confirmed, and every view in: on a loaded machine one service may answer late
     * ("unavailable" in that answer), the next look has it. */
    return request("GET", path, NULL, NULL) == 200 &&
           strstr(R.body, "\"state\":\"CONFIRMED\"") != NULL &&
           strstr(R.body, "\"payment\":{") != NULL && strstr(R.body, "\"inventory\":{") != NULL;
}

static void test_place_read_cancel(void **state)
{
    char id[64], again[64], path[128], hdr[64];
    (void)state;

    /* The same key and body twice: one order, the same answer. */
    assert_int_equal(request("POST", "/orders", "Idempotency-Key: \"gw-key-1\"\r\n", ORDER), 201);
    member("order_id", id, sizeof(id));
    assert_true(id[0] != '\0');
    snprintf(path, sizeof(path), "/orders/%s", id);
    assert_string_equal(thttp_header(&R, "Location", hdr, sizeof(hdr)), path);
    assert_int_equal(request("POST", "/orders", "Idempotency-Key: \"gw-key-1\"\r\n", ORDER), 201);
    assert_string_equal(member("order_id", again, sizeof(again)), id);
    assert_string_equal(thttp_header(&R, "Idempotent-Replayed", hdr, sizeof(hdr)), "true");

    /* The key again with another body: refused, and no order placed for it. */
    assert_int_equal(request("POST", "/orders", "Idempotency-Key: gw-key-1\r\n",
                             "{\"customer\":\"gina\",\"lines\":[{\"sku\":\"G1\",\"qty\":3,"
                             "\"price_cents\":1250}]}"),
                     422);
    assert_non_null(strstr(R.body, "different request"));

    /* The order goes through; a confirmed order cannot be cancelled. */
    assert_int_equal(tproc_wait_until(order_confirmed, id, DEADLINE_MS), 0);
    assert_non_null(strstr(R.body, "\"payment\":{"));
    assert_non_null(strstr(R.body, "\"inventory\":{"));
    snprintf(path, sizeof(path), "/orders/%s/cancel", id);
    assert_int_equal(request("POST", path, NULL, "{\"reason\":\"changed my mind\"}"), 409);
    assert_non_null(strstr(R.body, "\"state\":\"CONFIRMED\""));

    /* Its timeline, as the history would give it (read from the stream here). */
    snprintf(path, sizeof(path), "/orders/%s/timeline", id);
    assert_int_equal(request("GET", path, NULL, NULL), 200);
    assert_non_null(strstr(R.body, "\"type\":\"order.confirmed\""));
}

static void test_bad_requests(void **state)
{
    (void)state;
    assert_int_equal(request("POST", "/orders", NULL, "{\"customer\": "), 400);
    assert_non_null(strstr(R.body, "\"error\":\"the body is not JSON"));
    assert_int_equal(request("POST", "/orders", NULL, "[1,2]"), 400);
    assert_int_equal(request("POST", "/orders", NULL, "{\"customer\":\"gina\",\"lines\":[]}"), 400);
    assert_non_null(strstr(R.body, "lines"));
    /* Well formed, but the order service refuses it: 422 with its reason. */
    assert_int_equal(request("POST", "/orders", NULL,
                             "{\"customer\":\"no spaces please\",\"lines\":[{\"sku\":\"G1\","
                             "\"qty\":1,\"price_cents\":1}]}"),
                     422);
    assert_non_null(strstr(R.body, "customer id"));
    assert_int_equal(request("POST", "/orders", "Idempotency-Key: has space\r\n", ORDER), 400);
    assert_int_equal(request("GET", "/orders/01NOSUCHORDER0000000000000", NULL, NULL), 404);
    assert_int_equal(request("POST", "/orders/01NOSUCHORDER0000000000000/cancel", NULL, NULL), 404);
    assert_int_equal(request("GET", "/no/such/route", NULL, NULL), 404);
    assert_int_equal(request("DELETE", "/orders", NULL, NULL), 404);
}

/* The console's page and its files come from the gateway itself. */
static void test_console_files(void **state)
{
    (void)state;
    assert_int_equal(request("GET", "/", NULL, NULL), 200);
    assert_non_null(strstr(R.body, "<script src=\"/app.js\">"));
    assert_int_equal(request("GET", "/app.js", NULL, NULL), 200);
    assert_int_equal(request("GET", "/api/fleet", NULL, NULL), 200);
    assert_non_null(strstr(R.body, "\"name\":\"shipping\""));
    /* Stock set through the page's route reads back in the list, over every
     * inventory instance (SAGA_TEST_INSTANCES runs two). */
    assert_int_equal(request("POST", "/api/stock", NULL, "{\"sku\":\"GWSKU\",\"quantity\":7}"),
                     200);
    assert_non_null(strstr(R.body, "\"available\":7"));
    assert_int_equal(request("GET", "/api/stock", NULL, NULL), 200);
    assert_non_null(
        strstr(R.body, "{\"available\":7,\"held\":0,\"committed\":0,\"sku\":\"GWSKU\"}"));
}

static void test_order_service_stopped(void **state)
{
    (void)state;
    assert_int_equal(tfleet_kill_service(&F, tfleet_index("order")), 0);
    assert_int_equal(request("POST", "/orders", "Idempotency-Key: gw-key-2\r\n", ORDER), 503);
    assert_non_null(strstr(R.body, "\"error\":"));
    assert_int_equal(request("GET", "/orders/01NOSUCHORDER0000000000000", NULL, NULL), 503);
    /* Back, the same request goes through. */
    assert_int_equal(tfleet_start_service(&F, tfleet_index("order")), 0);
    assert_int_equal(request("POST", "/orders", "Idempotency-Key: gw-key-2\r\n", ORDER), 201);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place_read_cancel), cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_console_files), cmocka_unit_test(test_order_service_stopped)};
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
