/* The string hash: the same string gives the same hash, strings hashed in sequence do not
 * collide with the same bytes split elsewhere, NULL is "", every byte counts (including a
 * string's length and its last byte in a partial word), and the low bits, which tables index
 * by, spread ids like the API keys' as well as random numbers would. */
#include "unit.h"

#include <string.h>

#include "lib/hash.h"

static uint64_t h1(const char *s)
{
    return gh_hash_str(GH_HASH_INIT, s);
}

static void is_a_function_of_every_byte(void **state)
{
    (void)state;
    assert_true(h1("apikey_01abc") == h1("apikey_01abc"));
    assert_true(h1(NULL) == h1(""));
    assert_true(h1("") != GH_HASH_INIT);
    assert_true(h1("a") != h1(""));
    assert_true(h1("a") != h1("b"));
    /* The last byte of a partial word, a byte of a whole word, and a trailing zero word. */
    assert_true(h1("0123456789abcdeX") != h1("0123456789abcdeY"));
    assert_true(h1("0123456X89abcdef") != h1("0123456Y89abcdef"));
    char a[40], b[40];
    for (size_t n = 1; n < sizeof(a); n++) {
        memset(a, 'x', n);
        a[n] = '\0';
        memcpy(b, a, n + 1);
        b[n - 1] = 'y';
        assert_true(h1(a) != h1(b)); /* the last byte, at every length */
        if (n > 1) {
            b[n - 1] = '\0';
            assert_true(h1(a) != h1(b)); /* one byte shorter */
        }
    }
}

static void separates_strings_in_sequence(void **state)
{
    (void)state;
    uint64_t ab_c = gh_hash_str(gh_hash_str(GH_HASH_INIT, "ab"), "c");
    uint64_t a_bc = gh_hash_str(gh_hash_str(GH_HASH_INIT, "a"), "bc");
    assert_true(ab_c != a_bc);
    uint64_t x_empty = gh_hash_str(gh_hash_str(GH_HASH_INIT, "x"), "");
    assert_true(x_empty != h1("x"));
    assert_true(gh_hash_mix(ab_c) != gh_hash_mix(a_bc));
}

/* 4,096 ids shaped like API key ids (a fixed prefix, then 22 base62 characters, of which only
 * four vary) into 4,096 slots by their low 12 bits: random slots would leave about 1,507
 * empty (4096 / e) and put at most about 8 in one; a hash whose low bits ignored most of the
 * id would do far worse. */
static void spreads_ids_over_low_bits(void **state)
{
    (void)state;
    enum { N = 4096 };
    static unsigned char used[N];
    memset(used, 0, sizeof(used));
    static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint64_t x = 88172645463325252u; /* xorshift64: the same ids every run */
    for (int i = 0; i < N; i++) {
        char id[32] = "apikey_01";
        /* Only bytes 12-15 differ: the top half of the id's second eight-byte word, which a
         * multiply alone would leave out of the low bits. */
        for (size_t c = 9; c < 9 + 22; c++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            id[c] = c >= 12 && c < 16 ? base62[x % 62] : 'A';
        }
        id[31] = '\0';
        used[h1(id) & (N - 1)]++;
    }
    int empty = 0, most = 0;
    for (int i = 0; i < N; i++) {
        empty += used[i] == 0;
        most = used[i] > most ? used[i] : most;
    }
    assert_in_range(empty, 1350, 1670);
    assert_true(most <= 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(is_a_function_of_every_byte),
        cmocka_unit_test(separates_strings_in_sequence),
        cmocka_unit_test(spreads_ids_over_low_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
