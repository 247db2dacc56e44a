#include "unit.h"

#include <stdio.h>

#include <string.h>

#include "lib/json_str.h"
#include "lib/text.h"

static void emails_are_checked_and_lowered(void **state)
{
    (void)state;
    char out[255];
    assert_int_equal(gh_email_normalize("  Ada.Lovelace+gh@Example.COM ", out, sizeof(out)), GH_OK);
    assert_string_equal(out, "ada.lovelace+gh@example.com");
    assert_int_equal(gh_email_normalize("a@b.co", out, sizeof(out)), GH_OK);
    static const char *const bad[] = {
        "",          "nope",          "@example.com", "a@",          "a@b",
        "a@b.c",     "a b@example.com", "a@@b.com",   "a@b..com",    "a@-b.com",
        "a@b.com.",  ".a@b.com",      "a.@b.com",     "a..b@c.com",  "a@b.c0m",
        "a<b@c.com", "a@b_c.com",     "a\n@b.com",    "a@b.com\r\nBcc: x@y.com",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gh_email_normalize(bad[i], out, sizeof(out)) != GH_EINVAL)
            fail_msg("accepted bad address \"%s\"", bad[i]);
    }
    char longlocal[80];
    memset(longlocal, 'a', 65);
    memcpy(longlocal + 65, "@b.com", 7);
    assert_int_equal(gh_email_normalize(longlocal, out, sizeof(out)), GH_EINVAL);
}

static void trim_and_count(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(gh_text_trim("  hi there \t\n", out, sizeof(out)), GH_OK);
    assert_string_equal(out, "hi there");
    assert_int_equal(gh_text_trim("   ", out, sizeof(out)), GH_OK);
    assert_string_equal(out, "");
    assert_int_equal(gh_text_trim("0123456789abcdefg", out, sizeof(out)), GH_ETOOBIG);
    assert_int_equal(gh_utf8_chars("Zoë Ångström"), 12);
    assert_true(gh_text_has_control("a\tb"));
    assert_false(gh_text_has_control("plain é"));
}

static void names_refuse_direction_and_control_characters(void **state)
{
    (void)state;
    /* Ordinary names in any script, emoji with joiners included, pass. */
    assert_false(gh_text_has_unsafe("Zoë Ångström"));
    assert_false(gh_text_has_unsafe("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d")); /* Hebrew */
    assert_false(gh_text_has_unsafe("\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb")); /* ZWJ */
    assert_false(gh_text_has_unsafe("caf\xc3\xa9 \xe2\x80\x94 ok")); /* an em dash */
    /* C0, DEL, C1. */
    assert_true(gh_text_has_unsafe("a\tb"));
    assert_true(gh_text_has_unsafe("a\x7f"));
    assert_true(gh_text_has_unsafe("a\xc2\x85" "b")); /* U+0085 NEXT LINE */
    /* Every bidirectional control: "invoice\u202Efdp.exe" shows as "invoiceexe.pdf". */
    static const char *const bidi[] = {
        "\xd8\x9c",                                  /* U+061C */
        "\xe2\x80\x8e", "\xe2\x80\x8f",              /* U+200E, U+200F */
        "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae",
        "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9", /* U+2066..9 */
        "\xe2\x80\xa8", "\xe2\x80\xa9",              /* U+2028, U+2029 */
    };
    char name[32];
    for (size_t i = 0; i < sizeof(bidi) / sizeof(bidi[0]); i++) {
        snprintf(name, sizeof(name), "Acme%sCorp", bidi[i]);
        assert_true(gh_text_has_unsafe(name));
    }
}

static void names_sort_as_people_read_them(void **state)
{
    (void)state;
    assert_true(gh_text_cmp_folded("Côte d'Ivoire", "Croatia") < 0);
    assert_true(gh_text_cmp_folded("Czechia", "Côte d'Ivoire") > 0);
    assert_true(gh_text_cmp_folded("Åland Islands", "Albania") < 0);
    assert_true(gh_text_cmp_folded("Réunion", "Rwanda") < 0);
    assert_true(gh_text_cmp_folded("Türkiye", "Tuvalu") < 0);
    assert_true(gh_text_cmp_folded("italy", "Italy") != 0); /* ties broken, never equal */
    assert_int_equal(gh_text_cmp_folded("Italy", "Italy"), 0);
    assert_true(gh_text_cmp_folded("Chad", "Chile") < 0);
    assert_true(gh_text_cmp_folded("Niger", "Nigeria") < 0);
}

static void json_escaping(void **state)
{
    (void)state;
    char out[64];
    gh_json_escape(out, sizeof(out), "a\"b\\c\nd\x01");
    assert_string_equal(out, "a\\\"b\\\\c\\nd\\u0001");
    char tiny[4];
    gh_json_escape(tiny, sizeof(tiny), "\"\"\"");
    assert_string_equal(tiny, "\\\""); /* never half an escape */
}

static void numbers_in_decimal(void **state)
{
    (void)state;
    char out[GH_U64_TEXT_MAX];
    assert_int_equal(gh_u64_text(out, 0), 1);
    assert_string_equal(out, "0");
    assert_int_equal(gh_u64_text(out, 9), 1);
    assert_int_equal(gh_u64_text(out, 10), 2);
    assert_string_equal(out, "10");
    assert_int_equal(gh_u64_text(out, 1234567890123ULL), 13);
    assert_string_equal(out, "1234567890123");
    assert_int_equal(gh_u64_text(out, UINT64_MAX), 20);
    assert_string_equal(out, "18446744073709551615");
    /* Each side of every power of ten, and numbers of every length, as printf writes them. */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (uint64_t p = 1, i = 0; i < 20; i++, p *= 10) {
        uint64_t cases[] = {p - 1, p, p + 1, p + x % (i < 19 ? 8 * p : UINT64_MAX - p)};
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            char want[32];
            int n = snprintf(want, sizeof(want), "%llu", (unsigned long long)cases[k]);
            assert_int_equal(gh_u64_text(out, cases[k]), n);
            assert_string_equal(out, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emails_are_checked_and_lowered),
        cmocka_unit_test(trim_and_count),
        cmocka_unit_test(json_escaping),
        cmocka_unit_test(names_sort_as_people_read_them),
        cmocka_unit_test(names_refuse_direction_and_control_characters),
        cmocka_unit_test(numbers_in_decimal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
