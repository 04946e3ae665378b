/* test_svc.c - The services' shared helpers (services/common/svc.h): a query
 * reply parses back to the strings that went in, whatever characters they
 * hold, and a reply that cannot be built still answers the client.
 *
 * saga_ctx_reply is wrapped at link time (-Wl,--wrap, see tests/CMakeLists.txt):
 * the reply is kept here instead of going to a broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "svc.h"

static char last_reply[4096];

saga_status __wrap_saga_ctx_reply(saga_ctx *ctx, const void *data, size_t len);
saga_status __wrap_saga_ctx_reply(saga_ctx *ctx, const void *data, size_t len)
{
    (void)ctx;
    assert_true(len < sizeof(last_reply));
    memcpy(last_reply, data, len);
    last_reply[len] = '\0';
    return SAGA_OK;
}

/* {"s":s} sent with svc_json_send and parsed back: the string jansson read. */
static char *round_trip(const char *s)
{
    char *back = NULL;
    assert_int_equal(svc_json_send(NULL, json_pack("{s:s}", "s", s)), SAGA_OK);
    json_t *doc = json_loads(last_reply, 0, NULL);
    assert_non_null(doc);
    back = strdup(json_string_value(json_object_get(doc, "s")));
    json_decref(doc);
    return back;
}

/* Stored strings come from clients (details, reasons, addresses): quotes,
 * backslashes and control characters must not break the reply. */
static void strings_with_json_syntax_survive(void **state)
{
    static const char *const cases[] = {
        "plain",
        "",
        "say \"hi\"",
        "back\\slash",
        "line\nbreak\ttab\r",
        "\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x82\xac",
        "}\",\"found\":true,\"x\":\"",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *back = round_trip(cases[i]);
        assert_string_equal(back, cases[i]);
        free(back);
    }
}

/* Members keep the order they were packed in: clients and people read the
 * replies, and "service" comes first. */
static void members_keep_their_order(void **state)
{
    (void)state;
    assert_int_equal(
        svc_json_send(NULL, json_pack("{s:s, s:s, s:b, s:I}", "service", "x", "order_id", "o1",
                                      "found", 1, "n", (json_int_t)7)),
        SAGA_OK);
    assert_string_equal(last_reply,
                        "{\"service\":\"x\",\"order_id\":\"o1\",\"found\":true,\"n\":7}");
}

/* Text that is not UTF-8 cannot be a JSON string: json_pack fails, and the
 * client gets an error object instead of invalid JSON or no answer. */
static void unbuildable_reply_answers_with_an_error(void **state)
{
    (void)state;
    assert_int_equal(svc_json_send(NULL, json_pack("{s:s}", "s", "bad \xff byte")), SAGA_ENOMEM);
    json_t *doc = json_loads(last_reply, 0, NULL);
    assert_non_null(doc);
    assert_non_null(json_string_value(json_object_get(doc, "error")));
    json_decref(doc);
    last_reply[0] = '\0';
    assert_int_equal(svc_json_send(NULL, json_pack("{s:s}", "s", NULL)), SAGA_ENOMEM);
    assert_non_null(strstr(last_reply, "\"error\""));
}

/* A payload that is not an order id gets the documented shape. */
static void not_order_id_reply(void **state)
{
    (void)state;
    assert_int_equal(svc_reply_not_order_id(NULL, "payment"), SAGA_OK);
    json_t *doc = json_loads(last_reply, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "service")), "payment");
    assert_true(json_is_false(json_object_get(doc, "found")));
    assert_non_null(json_string_value(json_object_get(doc, "error")));
    json_decref(doc);
}

static void query_order_id_drops_the_newline_only(void **state)
{
    char id[SAGA_ORDER_ID_MAX + 1];
    (void)state;
    assert_int_equal(svc_query_order_id((const uint8_t *)"01ABC\n", 6, id), 1);
    assert_string_equal(id, "01ABC");
    assert_int_equal(svc_query_order_id((const uint8_t *)"a\"b", 3, id), 0);
    assert_string_equal(id, "");
    assert_int_equal(svc_query_order_id(NULL, 0, id), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings_with_json_syntax_survive),
        cmocka_unit_test(members_keep_their_order),
        cmocka_unit_test(unbuildable_reply_answers_with_an_error),
        cmocka_unit_test(not_order_id_reply),
        cmocka_unit_test(query_order_id_drops_the_newline_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
