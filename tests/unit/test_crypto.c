#include "unit.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"

static int setup(void **state)
{
    (void)state;
    return gh_crypto_init() == GH_OK ? 0 : -1;
}

static void ids_have_prefix_and_alphabet(void **state)
{
    (void)state;
    char id[GH_ID_MAX];
    gh_id_new(id, "wrkspc");
    assert_int_equal(strlen(id), strlen("wrkspc_01") + 22);
    assert_memory_equal(id, "wrkspc_01", 9);
    assert_true(gh_id_valid(id, "wrkspc"));
    assert_false(gh_id_valid(id, "org"));
    id[12] = '-';
    assert_false(gh_id_valid(id, "wrkspc"));
    assert_false(gh_id_valid("org_01short", "org"));
    assert_false(gh_id_valid("org_02AAAAAAAAAAAAAAAAAAAAAA", "org"));
    assert_true(gh_id_valid("org_01AAAAAAAAAAAAAAAAAAAAAA", "org"));
    assert_false(gh_id_valid(NULL, "org"));
}

static void ids_do_not_repeat(void **state)
{
    (void)state;
    enum { N = 2000 };
    static char ids[N][GH_ID_MAX];
    for (int i = 0; i < N; i++) {
        gh_id_new(ids[i], "user");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
}

static void secrets_are_long_and_valid(void **state)
{
    (void)state;
    char a[GH_SECRET_MAX], b[GH_SECRET_MAX];
    gh_secret_new(a);
    gh_secret_new(b);
    assert_int_equal(strlen(a), GH_SECRET_CHARS);
    assert_true(gh_secret_valid(a));
    assert_string_not_equal(a, b);
    assert_false(gh_secret_valid("short"));
    a[5] = '/';
    assert_false(gh_secret_valid(a));
    assert_false(gh_secret_valid(NULL));
}

static void sha256_matches_the_standard_vector(void **state)
{
    (void)state;
    char hex[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hex, "abc", 3);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* OpenSSL's SHA-256 (gh_sha256) gives libsodium's digest for every length from 0 to 300
 * bytes, across the 55/56 and 64-byte block edges, and the standard vector of the empty
 * input. */
static void sha256_agrees_with_libsodium(void **state)
{
    (void)state;
    unsigned char data[300], ours[GH_SHA256_BYTES], theirs[crypto_hash_sha256_BYTES];
    randombytes_buf(data, sizeof(data));
    for (size_t len = 0; len <= sizeof(data); len++) {
        gh_sha256(ours, data, len);
        crypto_hash_sha256(theirs, data, len);
        assert_memory_equal(ours, theirs, GH_SHA256_BYTES);
    }
    char hex[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hex, "", 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* gh_random_bytes fills the whole buffer, small or large (the last kilobyte of 256 KiB
 * too), and two draws differ. A byte value turns up about len/256 times: a buffer left zero,
 * or half filled, has far more zeros than that. */
static void random_bytes_fill_the_buffer(void **state)
{
    (void)state;
    size_t len = 256 * 1024;
    unsigned char *a = calloc(1, len), *b = calloc(1, len);
    assert_non_null(a);
    assert_non_null(b);
    gh_random_bytes(a, len);
    gh_random_bytes(b, len);
    assert_memory_not_equal(a, b, 4096);
    size_t zeros = 0, tail_zeros = 0;
    for (size_t i = 0; i < len; i++)
        zeros += a[i] == 0;
    for (size_t i = len - 1024; i < len; i++)
        tail_zeros += a[i] == 0;
    assert_true(zeros < 2 * len / 256);
    assert_true(tail_zeros < 64);
    free(a);
    free(b);
}

static void constant_time_compare(void **state)
{
    (void)state;
    assert_true(gh_ct_streq("token", "token"));
    assert_false(gh_ct_streq("token", "tokem"));
    assert_false(gh_ct_streq("token", "token2"));
    assert_true(gh_ct_streq("", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_have_prefix_and_alphabet),
        cmocka_unit_test(ids_do_not_repeat),
        cmocka_unit_test(secrets_are_long_and_valid),
        cmocka_unit_test(sha256_matches_the_standard_vector),
        cmocka_unit_test(sha256_agrees_with_libsodium),
        cmocka_unit_test(random_bytes_fill_the_buffer),
        cmocka_unit_test(constant_time_compare),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
