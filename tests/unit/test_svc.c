/* test_svc.c - The services' shared helpers (services/common/svc.h): the JSON
 * text of a query reply parses back to the strings that went in, whatever
 * characters they hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "svc.h"

/* {"s":<s written by svc_json_str>} parsed back: the string jansson read. */
static char *round_trip(const char *s)
{
    svc_json b = {0};
    char *back = NULL;
    svc_json_printf(&b, "{\"s\":");
    svc_json_str(&b, s);
    svc_json_printf(&b, "}");
    assert_false(b.failed);
    json_t *doc = json_loads(b.p, 0, NULL);
    assert_non_null(doc);
    back = strdup(json_string_value(json_object_get(doc, "s")));
    json_decref(doc);
    svc_json_cleanup(&b);
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

/* Text that is not UTF-8 cannot be a JSON string: the reply fails as a
 * whole instead of carrying invalid JSON. */
static void invalid_utf8_fails_the_reply(void **state)
{
    svc_json b = {0};
    (void)state;
    svc_json_str(&b, "bad \xff byte");
    assert_true(b.failed);
    svc_json_cleanup(&b);
    svc_json_str(&b, NULL);
    assert_true(b.failed);
    svc_json_cleanup(&b);
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
        cmocka_unit_test(invalid_utf8_fails_the_reply),
        cmocka_unit_test(query_order_id_drops_the_newline_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
