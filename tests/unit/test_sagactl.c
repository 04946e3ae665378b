/* test_sagactl.c - sagactl's pure helpers: the JSON helpers it keeps over
 * jansson, its use of uthash, number parsing, text buffers and money
 * formatting. No fleet: these run on their own (library sagactl_core). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl.h"

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(e) (ctl_hash_oom_ = 1)
#include <uthash.h>

/* ---- JSON: the helpers over jansson ------------------------------------------- */

static void test_json_flatten_for_people(void **state)
{
    static const char *const skip[] = {"service", NULL};
    static const char reply[] = "{\"service\":\"payment\",\"state\":\"charged\",\"note\":\"\","
                                "\"reason\":\"over limit\",\"amount\":1250,\"items\":[1,2],"
                                "\"rate\":0.3,\"zero\":0.0,\"quote\":\"a\\\"b\",\"nil\":null}";
    ctl_buf b;
    (void)state;
    ctl_buf_init(&b);
    json_t *j = ctl_json_reply(reply, strlen(reply));
    assert_true(json_is_object(j));
    ctl_json_flatten(&b, j, skip);
    /* Skipped keys and empty strings go; quotes go where none are needed;
     * numbers read as the participant wrote them. */
    assert_string_equal(ctl_buf_str(&b), "state=charged reason=\"over limit\" amount=1250 "
                                         "items=[1,2] rate=0.3 zero=0.0 quote=\"a\\\"b\" nil=null");
    json_decref(j);

    /* Text that is not one object is shown as the text it is. */
    static const char *const not_objects[] = {"not json", "{\"x\":1} trailing", "[1,2]", ""};
    for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
        ctl_buf_reset(&b);
        j = ctl_json_reply(not_objects[i], strlen(not_objects[i]));
        assert_true(json_is_string(j));
        ctl_json_flatten(&b, j, NULL);
        assert_string_equal(ctl_buf_str(&b), not_objects[i]);
        json_decref(j);
    }
    /* A reply is read up to its length only. */
    j = ctl_json_reply("{\"a\":1}garbage", 7);
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
    json_decref(j);
    ctl_buf_cleanup(&b);
}

static void test_json_text_escapes_and_survives_bad_utf8(void **state)
{
    ctl_buf b;
    (void)state;
    ctl_buf_init(&b);
    json_t *o = json_object();
    json_object_set_new(o, "a", ctl_json_text("q\"b\\n\nt\t\x01"));
    json_object_set_new(o, "n", ctl_json_text(NULL));
    /* Header values and event fields come from the network: bytes that are
     * not UTF-8 must not lose the whole output. */
    json_object_set_new(o, "bad", ctl_json_text("ok\xff\xfe!"));
    json_object_set_new(o, "utf8", ctl_json_text("caf\xc3\xa9"));
    ctl_buf_json(&b, o);
    assert_true(ctl_buf_ok(&b));
    assert_string_equal(ctl_buf_str(&b), "{\"a\":\"q\\\"b\\\\n\\nt\\t\\u0001\",\"n\":null,"
                                         "\"bad\":\"ok?"
                                         "?!\",\"utf8\":\"caf\xc3\xa9\"}");
    json_decref(o);

    /* What was written reads back the same. */
    json_t *back = ctl_json_reply(ctl_buf_str(&b), b.len);
    assert_string_equal(json_string_value(json_object_get(back, "a")), "q\"b\\n\nt\t\x01");
    json_decref(back);

    /* A pair: bare where nothing needs quoting, JSON otherwise. */
    ctl_buf_reset(&b);
    json_t *v = json_string("a b");
    ctl_json_add_pair(&b, "k", v);
    json_decref(v);
    v = json_string("\x1b[31m");
    ctl_buf_puts(&b, " ");
    ctl_json_add_pair(&b, "esc", v);
    json_decref(v);
    assert_string_equal(ctl_buf_str(&b), "k=\"a b\" esc=\"\\u001B[31m\"");

    /* Nothing to write is an error the caller sees. */
    ctl_buf_reset(&b);
    ctl_buf_json(&b, NULL);
    assert_false(ctl_buf_ok(&b));
    ctl_buf_cleanup(&b);
}

/* ---- the hash table (uthash with CTL_HASH_UPSERT) ------------------------------- */

typedef struct counter {
    UT_hash_handle hh;
    long long n;
    char key[];
} counter;

static void test_hash_upsert_finds_and_keeps_insertion_order(void **state)
{
    enum { N = 20000 };
    counter *head = NULL, *c = NULL, *tmp;
    int created = -1;
    char key[32];
    (void)state;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "order-%d", i);
        CTL_HASH_UPSERT(head, key, c, created);
        assert_non_null(c);
        assert_int_equal(created, 1);
        assert_int_equal(c->n, 0); /* new entries are zeroed */
        c->n = i;
    }
    CTL_HASH_UPSERT(head, "order-7", c, created);
    assert_int_equal(created, 0);
    assert_int_equal(c->n, 7);
    CTL_HASH_UPSERT(head, "", c, created); /* the empty key is a key */
    assert_int_equal(created, 1);
    assert_int_equal(HASH_COUNT(head), N + 1);
    /* Reports list keys in the order the stream first named them. */
    int i = 0;
    for (c = head; c != NULL && i < N; c = c->hh.next, i++) {
        snprintf(key, sizeof(key), "order-%d", i);
        assert_string_equal(c->key, key);
        assert_int_equal(c->n, i);
    }
    assert_string_equal(c->key, "");
    HASH_FIND_STR(head, "order-20000", c);
    assert_null(c);
    CTL_HASH_FREE(head, c, tmp);
    assert_null(head);
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

/* Stock split between inventory instances: no unit twice, none lost, in
 * proportion to the partitions each owns. */
static void test_stock_shares(void **state)
{
    uint32_t two[] = {0x5555, 0xaaaa}, three[] = {0x9249, 0x2492, 0x4924}, only[] = {0};
    char subject[64];
    (void)state;
    for (long long qty = 0; qty < 40; qty++) {
        long long sum2 = 0, sum3 = 0;
        for (size_t k = 0; k < 2; k++) {
            long long share = ctl_stock_share(qty, two, 2, k);
            assert_int_equal(share, qty / 2 + ((long long)k < qty % 2));
            sum2 += share;
        }
        for (size_t k = 0; k < 3; k++)
            sum3 += ctl_stock_share(qty, three, 3, k);
        assert_int_equal(sum2, qty);
        assert_int_equal(sum3, qty);
        assert_int_equal(ctl_stock_share(qty, only, 1, 0), qty);
    }
    /* 6, 5 and 5 partitions of 16: 10 units go 3.75, 3.125, 3.125 -> 4, 3, 3. */
    assert_int_equal(ctl_stock_share(10, three, 3, 0), 4);
    assert_int_equal(ctl_stock_share(10, three, 3, 2), 3);
    assert_string_equal(ctl_stock_subject("s.set", 0, subject, sizeof(subject)), "s.set");
    assert_string_equal(ctl_stock_subject("s.set", 0xffff, subject, sizeof(subject)), "s.set");
    assert_string_equal(ctl_stock_subject("s.set", 0x2492, subject, sizeof(subject)), "s.set.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_flatten_for_people),
        cmocka_unit_test(test_json_text_escapes_and_survives_bad_utf8),
        cmocka_unit_test(test_hash_upsert_finds_and_keeps_insertion_order),
        cmocka_unit_test(test_parse_ll),
        cmocka_unit_test(test_buf_grows_and_formats),
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_stock_shares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
