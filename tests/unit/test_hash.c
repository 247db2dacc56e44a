/* FNV-1a over strings: the published 64-bit test vectors, the terminating NUL hashed (strings
 * hashed in sequence do not collide with the same bytes split elsewhere), NULL as "". */
#include "unit.h"

#include "lib/hash.h"

/* FNV-1a 64 of "a" and "foobar" are 0xaf63dc4c8601ec8c and 0x85944171f73967e8; hashing the
 * NUL after them multiplies by the prime once more. */
static void matches_fnv1a(void **state)
{
    (void)state;
    const uint64_t prime = UINT64_C(0x100000001b3);
    assert_true(gh_hash_str(GH_HASH_INIT, "a") == UINT64_C(0xaf63dc4c8601ec8c) * prime);
    assert_true(gh_hash_str(GH_HASH_INIT, "foobar") == UINT64_C(0x85944171f73967e8) * prime);
    assert_true(gh_hash_str(GH_HASH_INIT, "") == GH_HASH_INIT * prime);
    assert_true(gh_hash_str(GH_HASH_INIT, NULL) == gh_hash_str(GH_HASH_INIT, ""));
}

static void separates_strings_in_sequence(void **state)
{
    (void)state;
    uint64_t ab_c = gh_hash_str(gh_hash_str(GH_HASH_INIT, "ab"), "c");
    uint64_t a_bc = gh_hash_str(gh_hash_str(GH_HASH_INIT, "a"), "bc");
    assert_true(ab_c != a_bc);
    assert_true(ab_c == gh_hash_str(gh_hash_str(GH_HASH_INIT, "ab"), "c"));
    /* The mix is a bijection's step: distinct inputs stay distinct, and it moves bits. */
    assert_true(gh_hash_mix(ab_c) != gh_hash_mix(a_bc));
    assert_true(gh_hash_mix(1) != 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_fnv1a),
        cmocka_unit_test(separates_strings_in_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
