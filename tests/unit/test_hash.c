/* test_hash.c - saga_fnv1a is FNV-1a 64 to the letter: fault rolls and
 * idempotency scopes stored by one build must be found by the next. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "saga/hash.h"

/* The published test vectors of FNV-1a 64. */
static void matches_the_reference_vectors(void **state)
{
    (void)state;
    assert_true(saga_fnv1a(SAGA_FNV1A_INIT, NULL, 0) == 0xcbf29ce484222325ULL);
    assert_true(saga_fnv1a(SAGA_FNV1A_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(saga_fnv1a(SAGA_FNV1A_INIT, "foobar", 6) == 0x85944171f73967e8ULL);
}

/* Hashing fields one after the other is hashing their concatenation. */
static void continues_across_calls(void **state)
{
    (void)state;
    uint64_t h = saga_fnv1a(SAGA_FNV1A_INIT, "foo", 3);
    assert_true(saga_fnv1a(h, "bar", 3) == saga_fnv1a(SAGA_FNV1A_INIT, "foobar", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_the_reference_vectors),
        cmocka_unit_test(continues_across_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
