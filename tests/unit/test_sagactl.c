/* test_sagactl.c - sagactl's pure helpers: the JSON reader and writer it uses
 * on service replies, its string-keyed map, number parsing, text buffers and
 * money formatting. No fleet: these run on their own (library sagactl_core). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ctl.h"

/* ---- JSON: reading service replies ------------------------------------------- */

static void test_json_get_reads_flat_members(void **state)
{
    const char *j = "{ \"service\" : \"payment\", \"found\":true, \"charged\":-1250,"
                    "\"refunded\":false,\"state\":\"charged\"}";
    char s[32];
    long long n = 0;
    int b = -1;
    (void)state;
    assert_int_equal(ctl_json_get_str(j, "service", s, sizeof(s)), 0);
    assert_string_equal(s, "payment");
    assert_int_equal(ctl_json_get_ll(j, "charged", &n), 0);
    assert_int_equal(n, -1250);
    assert_int_equal(ctl_json_get_bool(j, "found", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(ctl_json_get_bool(j, "refunded", &b), 0);
    assert_int_equal(b, 0);
    /* Absent keys and wrong types are refused, not guessed. */
    assert_int_equal(ctl_json_get_str(j, "missing", s, sizeof(s)), -1);
    assert_int_equal(ctl_json_get_str(j, "charged", s, sizeof(s)), -1);
    assert_int_equal(ctl_json_get_ll(j, "service", &n), -1);
    assert_int_equal(ctl_json_get_bool(j, "state", &b), -1);
    assert_int_equal(ctl_json_get_str(NULL, "service", s, sizeof(s)), -1);
}

static void test_json_key_inside_a_string_is_not_a_member(void **state)
{
    /* The text "reason": appears inside the value of detail; only the real
     * member may match. */
    const char *j = "{\"detail\":\"x \\\"reason\\\":\\\"fake\\\"\",\"reason\":\"real\"}";
    char s[32];
    (void)state;
    assert_int_equal(ctl_json_get_str(j, "reason", s, sizeof(s)), 0);
    assert_string_equal(s, "real");
    /* A key that only ever occurs as a value is not found at all. */
    assert_int_equal(ctl_json_get_str("{\"a\":\"b\"}", "b", s, sizeof(s)), -1);
}

static void test_json_get_str_unescapes_and_truncates(void **state)
{
    const char *j = "{\"t\":\"a\\\"b\\\\c\\nd\\u0041\\u00e9\"}";
    char s[32], small[4];
    (void)state;
    assert_int_equal(ctl_json_get_str(j, "t", s, sizeof(s)), 0);
    assert_string_equal(s, "a\"b\\c\ndA?");
    /* A value longer than the buffer is cut, always NUL-terminated. */
    assert_int_equal(ctl_json_get_str(j, "t", small, sizeof(small)), 0);
    assert_string_equal(small, "a\"b");
    /* An unterminated string is malformed. */
    assert_int_equal(ctl_json_get_str("{\"t\":\"abc", "t", s, sizeof(s)), -1);
}

static void test_json_get_ll_checks_range(void **state)
{
    long long n = 0;
    (void)state;
    assert_int_equal(ctl_json_get_ll("{\"n\":9223372036854775807}", "n", &n), 0);
    assert_true(n == INT64_MAX);
    assert_int_equal(ctl_json_get_ll("{\"n\":99999999999999999999}", "n", &n), -1);
    assert_int_equal(ctl_json_get_ll("{\"n\":\"12\"}", "n", &n), -1);
}

static void test_json_raw_value_and_members(void **state)
{
    const char *j = "{\"ok\":true,\"service\":\"inventory\",\"faults\":{\"seed\":1,"
                    "\"error_rate\":0.3,\"crash\":\"\",\"nested\":{\"a\":[1,{\"b\":2}]}}}";
    const char *v = NULL, *cursor = NULL;
    size_t len = 0;
    ctl_json_member m;
    (void)state;
    assert_int_equal(ctl_json_get_raw(j, "faults", &v, &len), 0);
    assert_true(v[0] == '{' && v[len - 1] == '}');

    /* The members of the nested object, in order, each with its raw value. */
    assert_int_equal(ctl_json_next(v, &cursor, &m), 1);
    assert_true(ctl_json_key_is(&m, "seed") && ctl_json_value_is(&m, "1"));
    assert_int_equal(ctl_json_next(v, &cursor, &m), 1);
    assert_true(ctl_json_key_is(&m, "error_rate") && ctl_json_value_is(&m, "0.3"));
    assert_false(ctl_json_key_is(&m, "error"));
    assert_int_equal(ctl_json_next(v, &cursor, &m), 1);
    assert_true(ctl_json_key_is(&m, "crash") && ctl_json_value_is(&m, "\"\""));
    assert_int_equal(ctl_json_next(v, &cursor, &m), 1);
    assert_true(ctl_json_key_is(&m, "nested"));
    assert_true(ctl_json_value_is(&m, "{\"a\":[1,{\"b\":2}]}"));
    assert_int_equal(ctl_json_next(v, &cursor, &m), 0);

    /* An empty object has no members; garbage is an error. */
    cursor = NULL;
    assert_int_equal(ctl_json_next(" { } ", &cursor, &m), 0);
    cursor = NULL;
    assert_int_equal(ctl_json_next("[1,2]", &cursor, &m), -1);
    cursor = NULL;
    assert_int_equal(ctl_json_next("{\"a\" 1}", &cursor, &m), -1);
    cursor = NULL;
    assert_int_equal(ctl_json_next("{\"a\":1", &cursor, &m), 1);
    assert_int_equal(ctl_json_next("{\"a\":1", &cursor, &m), -1);
    assert_int_equal(ctl_json_get_raw(j, "absent", &v, &len), -1);
}

static void test_json_flatten_for_people(void **state)
{
    static const char *const skip[] = {"service", NULL};
    ctl_buf b;
    (void)state;
    ctl_buf_init(&b);
    ctl_json_flatten(&b,
                     "{\"service\":\"payment\",\"state\":\"charged\",\"note\":\"\","
                     "\"reason\":\"over limit\",\"amount\":1250,\"items\":[1,2]}",
                     skip);
    /* Skipped keys and empty strings go; quotes go where none are needed. */
    assert_string_equal(ctl_buf_str(&b), "state=charged reason=\"over limit\" amount=1250 "
                                         "items=[1,2]");
    ctl_buf_reset(&b);
    ctl_json_flatten(&b, "not json", NULL);
    assert_string_equal(ctl_buf_str(&b), "not json");
    ctl_buf_cleanup(&b);
}

static void test_json_writer_escapes(void **state)
{
    ctl_buf b;
    (void)state;
    ctl_buf_init(&b);
    ctl_buf_puts(&b, "{");
    ctl_json_key(&b, 1, "a");
    ctl_json_str(&b, "q\"b\\n\nt\t\x01");
    ctl_json_key(&b, 0, "n");
    ctl_json_str(&b, NULL);
    ctl_buf_puts(&b, "}");
    assert_string_equal(ctl_buf_str(&b), "{\"a\":\"q\\\"b\\\\n\\nt\\t\\u0001\",\"n\":null}");

    /* What the writer escapes the reader gives back. */
    char s[32];
    assert_int_equal(ctl_json_get_str(ctl_buf_str(&b), "a", s, sizeof(s)), 0);
    assert_string_equal(s, "q\"b\\n\nt\t\x01");

    /* A whole object passes through; anything else becomes a string. */
    ctl_buf_reset(&b);
    ctl_json_raw_object(&b, " {\"x\":[1,2]} ");
    assert_string_equal(ctl_buf_str(&b), "{\"x\":[1,2]}");
    ctl_buf_reset(&b);
    ctl_json_raw_object(&b, "{\"x\":1} trailing");
    assert_string_equal(ctl_buf_str(&b), "\"{\\\"x\\\":1} trailing\"");
    ctl_buf_reset(&b);
    ctl_json_raw_object(&b, "unavailable");
    assert_string_equal(ctl_buf_str(&b), "\"unavailable\"");
    ctl_buf_cleanup(&b);
}

/* ---- the map ------------------------------------------------------------------ */

typedef struct counter {
    long long n;
    char tag[12];
} counter;

static void test_map_upsert_get_and_order(void **state)
{
    ctl_map *m = NULL;
    int created = -1;
    (void)state;
    assert_int_equal(ctl_map_create(&m, sizeof(counter)), 0);
    assert_null(ctl_map_get(m, "a"));
    counter *a = ctl_map_upsert(m, "a", &created);
    assert_non_null(a);
    assert_int_equal(created, 1);
    assert_int_equal(a->n, 0); /* a new value starts zeroed */
    a->n = 7;
    counter *again = ctl_map_upsert(m, "a", &created);
    assert_ptr_equal(again, a);
    assert_int_equal(created, 0);
    assert_non_null(ctl_map_upsert(m, "b", NULL));
    assert_non_null(ctl_map_upsert(m, "", NULL)); /* the empty key is a key */
    assert_int_equal(ctl_map_count(m), 3);
    assert_int_equal(((counter *)ctl_map_get(m, "a"))->n, 7);

    const char *key = NULL;
    assert_non_null(ctl_map_at(m, 0, &key));
    assert_string_equal(key, "a");
    assert_non_null(ctl_map_at(m, 1, &key));
    assert_string_equal(key, "b");
    assert_non_null(ctl_map_at(m, 2, &key));
    assert_string_equal(key, "");
    assert_null(ctl_map_at(m, 3, &key));
    ctl_map_destroy(m);
    ctl_map_destroy(NULL);
}

static void test_map_grows_and_keeps_everything(void **state)
{
    enum { N = 20000 }; /* well past the initial table and several rehashes */
    ctl_map *m = NULL;
    char key[32];
    (void)state;
    assert_int_equal(ctl_map_create(&m, sizeof(counter)), 0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "order-%d", i);
        counter *c = ctl_map_upsert(m, key, NULL);
        assert_non_null(c);
        c->n = i;
    }
    assert_int_equal(ctl_map_count(m), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "order-%d", i);
        counter *c = ctl_map_get(m, key);
        assert_non_null(c);
        assert_int_equal(c->n, i);
        const char *k = NULL;
        assert_ptr_equal(ctl_map_at(m, (size_t)i, &k), c);
        assert_string_equal(k, key);
    }
    assert_null(ctl_map_get(m, "order-20000"));
    ctl_map_destroy(m);
}

static void test_map_value_size_zero(void **state)
{
    ctl_map *m = NULL;
    (void)state;
    /* A set of keys: the value block still exists and is usable as a flag. */
    assert_int_equal(ctl_map_create(&m, 0), 0);
    assert_non_null(ctl_map_upsert(m, "x", NULL));
    assert_non_null(ctl_map_get(m, "x"));
    ctl_map_destroy(m);
}

/* ---- numbers, buffers, money --------------------------------------------------- */

static void test_parse_ll(void **state)
{
    long long v = 42;
    (void)state;
    assert_int_equal(ctl_parse_ll("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ctl_parse_ll("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(ctl_parse_ll("9223372036854775807", 0, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    v = 42;
    /* Everything else leaves the output alone. */
    const char *bad[] = {
        "", "abc", "12abc", "1.5", " 12", "12 ", "11", "-11", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ctl_parse_ll(bad[i], -10, 10, &v), -1);
        assert_int_equal(v, 42);
    }
    assert_int_equal(ctl_parse_ll(NULL, 0, 10, &v), -1);
}

static void test_buf_grows_and_formats(void **state)
{
    ctl_buf b;
    char big[1000];
    (void)state;
    ctl_buf_init(&b);
    assert_string_equal(ctl_buf_str(&b), ""); /* never NULL, even empty */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* Longer than the stack buffer of ctl_buf_printf: formatted twice. */
    ctl_buf_printf(&b, "%s|%d", big, 12345);
    assert_int_equal(b.len, sizeof(big) - 1 + 6);
    assert_string_equal(ctl_buf_str(&b) + sizeof(big) - 1, "|12345");
    for (int i = 0; i < 100; i++)
        ctl_buf_add(&b, big, sizeof(big) - 1);
    assert_int_equal(b.len, 101 * (sizeof(big) - 1) + 6);
    assert_true(ctl_buf_ok(&b));
    ctl_buf_reset(&b);
    assert_string_equal(ctl_buf_str(&b), "");
    ctl_buf_puts(&b, "ok");
    assert_string_equal(ctl_buf_str(&b), "ok");
    ctl_buf_cleanup(&b);
}

static void test_money(void **state)
{
    char s[32];
    (void)state;
    ctl_money(0, s, sizeof(s));
    assert_string_equal(s, "0.00");
    ctl_money(123456, s, sizeof(s));
    assert_string_equal(s, "1234.56");
    ctl_money(-5, s, sizeof(s));
    assert_string_equal(s, "-0.05");
    ctl_money(INT64_MIN, s, sizeof(s));
    assert_string_equal(s, "-92233720368547758.08");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_get_reads_flat_members),
        cmocka_unit_test(test_json_key_inside_a_string_is_not_a_member),
        cmocka_unit_test(test_json_get_str_unescapes_and_truncates),
        cmocka_unit_test(test_json_get_ll_checks_range),
        cmocka_unit_test(test_json_raw_value_and_members),
        cmocka_unit_test(test_json_flatten_for_people),
        cmocka_unit_test(test_json_writer_escapes),
        cmocka_unit_test(test_map_upsert_get_and_order),
        cmocka_unit_test(test_map_grows_and_keeps_everything),
        cmocka_unit_test(test_map_value_size_zero),
        cmocka_unit_test(test_parse_ll),
        cmocka_unit_test(test_buf_grows_and_formats),
        cmocka_unit_test(test_money),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
