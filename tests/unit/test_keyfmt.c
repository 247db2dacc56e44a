#include "unit.h"

#include <stdbool.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/keyfmt.h"

static void new_keys_check_out(void **state)
{
    (void)state;
    char key[GH_KEY_MAX];
    gh_key_new(key, GH_KEY_API_PREFIX);
    assert_int_equal(strlen(key), strlen(GH_KEY_API_PREFIX) + 43 + 6);
    assert_int_equal(gh_key_check(key, GH_KEY_API_PREFIX), GH_KEY_OK);
    assert_int_equal(gh_key_check(key, GH_KEY_ADMIN_PREFIX), GH_KEY_BAD_PREFIX);
    gh_key_new(key, GH_KEY_ADMIN_PREFIX);
    assert_int_equal(gh_key_check(key, GH_KEY_ADMIN_PREFIX), GH_KEY_OK);
}

/* Every single-character change anywhere after the prefix is caught. */
static void checksum_detects_every_single_change(void **state)
{
    (void)state;
    static const char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (int round = 0; round < 20; round++) {
        char key[GH_KEY_MAX];
        gh_key_new(key, GH_KEY_API_PREFIX);
        size_t plen = strlen(GH_KEY_API_PREFIX), len = strlen(key);
        for (size_t i = plen; i < len; i++) {
            char orig = key[i];
            for (const char *c = alphabet; *c; c++) {
                if (*c == orig)
                    continue;
                key[i] = *c;
                if (gh_key_check(key, GH_KEY_API_PREFIX) != GH_KEY_BAD_CHECKSUM)
                    fail_msg("change at %zu to %c not detected", i, *c);
            }
            key[i] = orig;
        }
        assert_int_equal(gh_key_check(key, GH_KEY_API_PREFIX), GH_KEY_OK);
    }
}

static void swaps_truncation_and_junk_are_refused(void **state)
{
    (void)state;
    char key[GH_KEY_MAX];
    gh_key_new(key, GH_KEY_API_PREFIX);
    size_t plen = strlen(GH_KEY_API_PREFIX);
    char swapped[GH_KEY_MAX];
    memcpy(swapped, key, sizeof(swapped));
    /* Swap two neighbouring different characters. */
    for (size_t i = plen; swapped[i + 1]; i++)
        if (swapped[i] != swapped[i + 1]) {
            char t = swapped[i];
            swapped[i] = swapped[i + 1];
            swapped[i + 1] = t;
            break;
        }
    assert_int_equal(gh_key_check(swapped, GH_KEY_API_PREFIX), GH_KEY_BAD_CHECKSUM);
    char cut[GH_KEY_MAX];
    memcpy(cut, key, sizeof(cut));
    cut[strlen(cut) - 1] = '\0';
    assert_int_equal(gh_key_check(cut, GH_KEY_API_PREFIX), GH_KEY_BAD_LENGTH);
    char junk[GH_KEY_MAX];
    memcpy(junk, key, sizeof(junk));
    junk[plen + 5] = '-';
    assert_int_equal(gh_key_check(junk, GH_KEY_API_PREFIX), GH_KEY_BAD_CHARACTER);
    assert_int_equal(gh_key_check("sk-ant-api03-xyz", GH_KEY_API_PREFIX), GH_KEY_BAD_PREFIX);
    assert_int_equal(gh_key_check(NULL, GH_KEY_API_PREFIX), GH_KEY_BAD_PREFIX);
    assert_string_equal(gh_key_check_str(GH_KEY_BAD_CHECKSUM),
                        "its checksum does not match (a typo or a truncated copy)");
}

/* Every byte outside 0-9, A-Z and a-z is refused at every place after the prefix, the
 * checksum's places included. */
static void every_byte_outside_base62_is_refused(void **state)
{
    (void)state;
    char key[GH_KEY_MAX];
    gh_key_new(key, GH_KEY_API_PREFIX);
    size_t plen = strlen(GH_KEY_API_PREFIX), len = strlen(key);
    for (size_t i = plen; i < len; i++) {
        char orig = key[i];
        for (int b = 1; b < 256; b++) {
            bool base62 =
                (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z');
            if (base62)
                continue;
            key[i] = (char)b;
            if (gh_key_check(key, GH_KEY_API_PREFIX) != GH_KEY_BAD_CHARACTER)
                fail_msg("byte 0x%02x at %zu not refused as a character", b, i);
        }
        key[i] = orig;
    }
    assert_int_equal(gh_key_check(key, GH_KEY_API_PREFIX), GH_KEY_OK);
}

static void hints_show_prefix_and_last_four(void **state)
{
    (void)state;
    char hint[GH_KEY_HINT_MAX];
    const char *key = "sk-gh-api01-AbCdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIwXyz";
    gh_key_hint(hint, key, GH_KEY_API_PREFIX);
    assert_string_equal(hint, "sk-gh-api01-AbC...wXyz");
}

int main(void)
{
    if (gh_crypto_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_keys_check_out),
        cmocka_unit_test(checksum_detects_every_single_change),
        cmocka_unit_test(swaps_truncation_and_junk_are_refused),
        cmocka_unit_test(every_byte_outside_base62_is_refused),
        cmocka_unit_test(hints_show_prefix_and_last_four),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
