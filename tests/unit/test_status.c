/* test_status.c - saga_strerror and saga_status_name: every status has its own text and name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "saga/status.h"

static void ok_is_zero(void **state)
{
    (void)state;
    assert_int_equal(SAGA_OK, 0);
    assert_string_equal(saga_status_name(SAGA_OK), "OK");
    assert_string_equal(saga_strerror(SAGA_OK), "success");
}

/* Logs and dead-letter reasons show these strings: two statuses with the
 * same text or name could not be told apart. */
static void every_status_has_distinct_text_and_name(void **state)
{
    int i, j;
    (void)state;
    for (i = 0; i < SAGA_STATUS_COUNT; i++) {
        const char *text = saga_strerror((saga_status)i);
        const char *name = saga_status_name((saga_status)i);
        assert_non_null(text);
        assert_non_null(name);
        assert_true(strlen(text) > 0);
        assert_true(strlen(name) > 0);
        assert_string_not_equal(text, "unknown status");
        assert_string_not_equal(name, "UNKNOWN");
        for (j = 0; j < i; j++) {
            assert_string_not_equal(text, saga_strerror((saga_status)j));
            assert_string_not_equal(name, saga_status_name((saga_status)j));
        }
    }
}

static void names_follow_the_map(void **state)
{
    (void)state;
    assert_string_equal(saga_status_name(SAGA_EINVAL), "EINVAL");
    assert_string_equal(saga_strerror(SAGA_EINVAL), "invalid argument");
    assert_string_equal(saga_status_name(SAGA_PARKED), "PARKED");
    assert_string_equal(saga_status_name(SAGA_EIO), "EIO");
    assert_string_equal(saga_strerror(SAGA_ETOOBIG), "value exceeds its size cap");
}

static void out_of_range_is_handled(void **state)
{
    const int bad[] = {SAGA_STATUS_COUNT, SAGA_STATUS_COUNT + 1, 1000, -1, -1000, INT32_MAX,
                       INT32_MIN};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_string_equal(saga_strerror((saga_status)bad[i]), "unknown status");
        assert_string_equal(saga_status_name((saga_status)bad[i]), "UNKNOWN");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ok_is_zero),
        cmocka_unit_test(every_status_has_distinct_text_and_name),
        cmocka_unit_test(names_follow_the_map),
        cmocka_unit_test(out_of_range_is_handled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
