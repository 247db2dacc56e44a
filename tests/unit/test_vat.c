/* Unit tests for core/country and core/vat. The valid VAT IDs are real, published numbers
 * (companies' own invoices and registries, collected in python-stdnum's test data, plus the
 * Dutch tax office's example btw-id); the invalid ones are the same numbers with one digit
 * changed, checked by hand to fail their national check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/country.h"
#include "core/vat.h"

typedef struct vat_case {
    const char *country;
    const char *vat; /* normalized */
} vat_case_t;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Countries ---- */

static void test_country_list(void **state)
{
    (void)state;
    assert_int_equal(gh_country_count(), 249);

    size_t vat_countries = 0;
    for (size_t i = 0; i < gh_country_count(); i++) {
        const gh_country_t *c = gh_country_at(i);
        assert_true(c->code[0] >= 'A' && c->code[0] <= 'Z');
        assert_true(c->code[1] >= 'A' && c->code[1] <= 'Z');
        assert_int_equal(c->code[2], '\0');
        assert_non_null(c->name);
        assert_true(strlen(c->name) > 0);
        /* Strictly ascending: sorted and free of duplicates. */
        if (i > 0)
            assert_true(strcmp(gh_country_at(i - 1)->code, c->code) < 0);
        assert_ptr_equal(gh_country_find(c->code), c);
        /* Every VAT country has a rule and no other country has one. */
        assert_int_equal(c->vat, gh_vat_prefix(c->code) != NULL);
        vat_countries += c->vat;
    }
    assert_int_equal(vat_countries, 30);
    assert_string_equal(gh_country_at(0)->code, "AD");
    assert_string_equal(gh_country_at(gh_country_count() - 1)->code, "ZW");
}

static void test_country_name(void **state)
{
    (void)state;
    assert_string_equal(gh_country_name("IT"), "Italy");
    assert_string_equal(gh_country_name("GR"), "Greece");
    assert_string_equal(gh_country_name("GB"), "United Kingdom");
    assert_string_equal(gh_country_name("CI"), "Côte d'Ivoire");
    assert_string_equal(gh_country_name("AD"), "Andorra");
    assert_string_equal(gh_country_name("ZW"), "Zimbabwe");
    assert_null(gh_country_name("XX"));
    assert_null(gh_country_name("it"));
    assert_null(gh_country_name("It"));
    assert_null(gh_country_name("ITA"));
    assert_null(gh_country_name("I"));
    assert_null(gh_country_name(""));
    assert_null(gh_country_name("EL")); /* Greece's VAT prefix, not an ISO code */
    assert_null(gh_country_name("UK")); /* reserved, not assigned */
    assert_null(gh_country_name("EU"));
    assert_null(gh_country_name("XK"));
}

static void test_country_vat_applicable(void **state)
{
    (void)state;
    static const char *const vat[] = {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE",
                                      "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
                                      "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK",
                                      "SI", "ES", "SE", "GB", "CH", "NO"};
    for (size_t i = 0; i < COUNT(vat); i++) {
        if (!gh_country_vat_applicable(vat[i]))
            fail_msg("%s should take a VAT ID", vat[i]);
    }
    assert_false(gh_country_vat_applicable("US"));
    assert_false(gh_country_vat_applicable("BR"));
    assert_false(gh_country_vat_applicable("IS"));
    assert_false(gh_country_vat_applicable("LI"));
    assert_false(gh_country_vat_applicable("MC"));
    assert_false(gh_country_vat_applicable("XX"));
    assert_false(gh_country_vat_applicable("it"));
    assert_false(gh_country_vat_applicable("EL"));
    assert_false(gh_country_vat_applicable(""));

    assert_string_equal(gh_vat_prefix("GR"), "EL");
    assert_string_equal(gh_vat_prefix("IT"), "IT");
    assert_null(gh_vat_prefix("BR"));
    assert_null(gh_vat_prefix("EL"));
}

/* ---- Normalization ---- */

static void expect_normal(const char *in, const char *want)
{
    char out[GH_VAT_SIZE];
    gh_err_t rc = gh_vat_normalize(in, out, sizeof(out));
    if (rc != GH_OK)
        fail_msg("normalize(\"%s\") failed with %s", in, gh_err_name(rc));
    assert_string_equal(out, want);
}

static void expect_not_normal(const char *in)
{
    char out[GH_VAT_SIZE];
    memset(out, 'Z', sizeof(out));
    gh_err_t rc = gh_vat_normalize(in, out, sizeof(out));
    if (rc != GH_EINVAL)
        fail_msg("normalize(\"%s\") gave %s, expected GH_EINVAL", in, gh_err_name(rc));
    assert_string_equal(out, "");
}

static void test_normalize(void **state)
{
    (void)state;
    expect_normal("IT00743110157", "IT00743110157");
    expect_normal("it 007-431.101 57", "IT00743110157");
    expect_normal("  IT 00743110157  ", "IT00743110157");
    expect_normal("che-107.787.577 mwst", "CHE107787577MWST");
    expect_normal("nl.0000.99998.b.57", "NL000099998B57");
    expect_normal("El-094 012 834", "EL094012834");
    expect_normal("x", "X");
    /* Old Irish numbers may hold + or *, no one else's may. */
    expect_normal("ie 8+79739i", "IE8+79739I");
    expect_normal("IE1*34567X", "IE1*34567X");
    expect_not_normal("IT+0743110157");
    expect_not_normal("*IE1234567X");
    expect_not_normal("+");

    /* Exactly 20 characters fit, 21 do not; separators do not count. */
    expect_normal("AB345678901234567890", "AB345678901234567890");
    expect_normal("AB 345 678 901 234 567 890 ...---   ", "AB345678901234567890");
    expect_not_normal("AB3456789012345678901");

    expect_not_normal("");
    expect_not_normal("   ");
    expect_not_normal(" .-. ");
    expect_not_normal("IT_00743110157");
    expect_not_normal("IT/00743110157");
    expect_not_normal("IT,00743110157");
    expect_not_normal("IT\t00743110157");
    expect_not_normal("IT00743110157\n");
    expect_not_normal("IT 0074311015€");
    expect_not_normal("ÍT00743110157");
}

/* ---- Validation ---- */

static void expect_valid(const vat_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char msg[GH_VAT_MSG_SIZE];
        memset(msg, 'x', sizeof(msg));
        gh_err_t rc = gh_vat_validate(cases[i].country, cases[i].vat, msg, sizeof(msg));
        if (rc != GH_OK)
            fail_msg("%s %s should be valid, got %s: %s", cases[i].country, cases[i].vat,
                     gh_err_name(rc), msg);
        assert_string_equal(msg, "");
    }
}

/* Asserts each case is refused and its message contains `needle`. */
static void expect_invalid(const vat_case_t *cases, size_t n, const char *needle)
{
    for (size_t i = 0; i < n; i++) {
        char msg[GH_VAT_MSG_SIZE];
        gh_err_t rc = gh_vat_validate(cases[i].country, cases[i].vat, msg, sizeof(msg));
        if (rc != GH_EINVAL)
            fail_msg("%s %s should be refused, got %s", cases[i].country, cases[i].vat,
                     gh_err_name(rc));
        if (strstr(msg, needle) == NULL)
            fail_msg("%s %s: message \"%s\" lacks \"%s\"", cases[i].country, cases[i].vat,
                     msg, needle);
        /* The message fits its documented buffer. */
        assert_true(strlen(msg) + 1 < sizeof(msg));
    }
}

static void expect_message(const char *country, const char *vat, const char *want)
{
    char msg[GH_VAT_MSG_SIZE];
    assert_int_equal(gh_vat_validate(country, vat, msg, sizeof(msg)), GH_EINVAL);
    assert_string_equal(msg, want);
}

static const vat_case_t valid_numbers[] = {
    /* Italy: Partita IVA check digit and office code. */
    {"IT", "IT00743110157"},
    {"IT", "IT01404480202"},
    {"IT", "IT00595000217"},
    {"IT", "IT12920760159"},
    {"IT", "IT09159800011"},
    {"IT", "IT02087050155"},
    {"DE", "DE129390950"},
    {"DE", "DE812847601"},
    {"DE", "DE136695976"},
    {"FR", "FR40303265045"},
    {"FR", "FR96631620572"},
    {"FR", "FR83404833048"},
    {"FR", "FRK7399859412"}, /* alphabetic key: format only */
    {"ES", "ESA28015865"},   /* CIF, numeric check */
    {"ES", "ESB64717838"},
    {"ES", "ESQ2818015F"}, /* CIF, letter check */
    {"ES", "ES54362315K"}, /* DNI */
    {"ES", "ESX5253868R"}, /* NIE */
    {"ES", "ESZ5277343K"},
    {"NL", "NL004495445B01"}, /* RSIN, 11-proof */
    {"NL", "NL820605876B01"},
    {"NL", "NL000099998B57"}, /* the Belastingdienst's example btw-id, MOD 97 */
    {"NL", "NL002455799B11"},
    {"AT", "ATU13585627"},
    {"AT", "ATU46080404"},
    {"IE", "IE6433435F"},
    {"IE", "IE6433435OA"},
    {"IE", "IE8D79739I"},
    {"IE", "IE8+79739I"}, /* made up: IE is checked for format only */
    {"GR", "EL094012834"},
    {"GR", "EL800179925"},
    {"PL", "PL5261025421"},
    {"PL", "PL7010098470"},
    {"BE", "BE0428759497"},
    {"BE", "BE0202239951"},
    {"SE", "SE556043606401"},
    {"SE", "SE556058115801"},
    {"GB", "GB980780684"},    /* old series, sum 0 mod 97 */
    {"GB", "GB100190874"},    /* 2010 series, sum 42 mod 97 */
    {"GB", "GB242338087388"}, /* branch trader */
    {"GB", "GBGD100"},
    {"GB", "GBHA501"},
    {"CH", "CHE107787577"},
    {"CH", "CHE100155212MWST"},
    {"CH", "CHE110576236TVA"},
    {"CH", "CHE107787577IVA"},
    {"CH", "CHE116046681TPV"},
    {"NO", "NO923609016MVA"},
    {"NO", "NO984851006MVA"},
    {"NO", "NO982463718MVA"},
    /* The rest of the EU, at least one each. */
    {"BG", "BG175074752"},
    {"BG", "BG7523169263"},
    {"CY", "CY10259033P"},
    {"CZ", "CZ25123891"},
    {"CZ", "CZ640903926"},
    {"CZ", "CZ6306150004"},
    {"DK", "DK13585628"},
    {"DK", "DK10150817"},
    {"EE", "EE100931558"},
    {"FI", "FI20774740"},
    {"HR", "HR12345678901"}, /* made up: HR is checked for format only */
    {"HU", "HU12892312"},
    {"LT", "LT119511515"},
    {"LT", "LT100001354118"},
    {"LU", "LU10059929"},
    {"LV", "LV40003521600"},
    {"MT", "MT17025737"},
    {"PT", "PT501964843"},
    {"RO", "RO21996566"},
    {"RO", "RO573768"},
    {"SI", "SI26808498"},
    {"SK", "SK2022193459"},
};

static const vat_case_t bad_check_numbers[] = {
    {"IT", "IT00743110158"}, /* last digit changed */
    {"IT", "IT00743110147"},
    {"IT", "IT00687129980"}, /* check digit holds, office code 998 does not exist */
    {"DE", "DE125014855"},
    {"FR", "FR04409414264"},
    {"FR", "FR21326565603"},
    {"ES", "ESB64717839"},
    {"ES", "ES54362415K"},
    {"ES", "ESX2322300W"},
    {"ES", "EST1234567A"}, /* no such entity letter */
    {"NL", "NL123456789B90"},
    {"NL", "NL000099998B58"},
    {"AT", "ATU46080904"},
    {"GR", "EL094013834"},
    {"PL", "PL5261025422"},
    {"PL", "PL1234567890"},
    {"BE", "BE0406139583"},
    {"SE", "SE556043606501"},
    {"GB", "GB802311781"},
    {"GB", "GB001234567"},
    {"CH", "CHE107787578"},
    {"NO", "NO923609017MVA"},
    {"CY", "CY10259033Q"},
    {"DK", "DK13585629"},
    {"EE", "EE100931559"},
    {"FI", "FI20774741"},
    {"HU", "HU12892313"},
    {"LU", "LU10059928"},
    {"MT", "MT17025738"},
    {"PT", "PT501964844"},
    {"RO", "RO21996567"},
    {"SI", "SI26808499"},
    {"SK", "SK2022193458"},
};

static const vat_case_t bad_format_numbers[] = {
    {"IT", "IT123"},
    {"IT", "IT007431101570"},
    {"IT", "IT0074311015A"},
    {"DE", "DE12939095"},
    {"DE", "DE012939095"}, /* cannot start with 0 */
    {"FR", "FRI7399859412"}, /* I and O are not used in the key */
    {"FR", "FR4030326504"},
    {"ES", "ES123456789"}, /* both ends digits */
    {"ES", "ESB6471783"},
    {"ES", "ESB6471783AA"},
    {"NL", "NL004495445B00"},
    {"NL", "NL004495445001"},
    {"NL", "NL4495445B01"},
    {"AT", "AT13585627"},
    {"AT", "ATU1358562"},
    {"IE", "IE1234567"},
    {"IE", "IE1234567ABC"},
    {"IE", "IE12+4567A"},
    {"GR", "EL09401283"},
    {"PL", "PL526102542"},
    {"BE", "BE428759497"},
    {"BE", "BE2428759497"},
    {"SE", "SE556043606402"},
    {"SE", "SE5560436064"},
    {"GB", "GB98078068"},
    {"GB", "GB9807806840"},
    {"GB", "GBGD600"},
    {"GB", "GBHA201"},
    {"CH", "CH107787577"},
    {"CH", "CHE107787577ZZZ"},
    {"CH", "CHE10778757"},
    {"NO", "NO923609016"},
    {"NO", "NO923609016MV"},
    {"BG", "BG12345678"},
    {"CY", "CY102590331"},
    {"CZ", "CZ1234567"},
    {"CZ", "CZ12345678901"},
    {"HR", "HR1234567890"},
    {"LT", "LT1234567890"},
    {"LV", "LV1234567890"},
    {"RO", "RO0573768"},
    {"RO", "RO1"},
    {"RO", "RO12345678901"},
    {"SI", "SI06808498"},
    {"SK", "SK0022193459"},
    {"IT", "IT"},
};

static void test_validate_valid(void **state)
{
    (void)state;
    expect_valid(valid_numbers, COUNT(valid_numbers));
}

static void test_validate_bad_check(void **state)
{
    (void)state;
    expect_invalid(bad_check_numbers, COUNT(bad_check_numbers), "check digit");
    expect_message("IT", "IT00743110158",
                   "VAT ID IT00743110158 is not valid for Italy: it fails the national check "
                   "digit test, so it probably contains a typing mistake.");
}

static void test_validate_bad_format(void **state)
{
    (void)state;
    expect_invalid(bad_format_numbers, COUNT(bad_format_numbers), ": expected ");
    expect_message("IT", "IT123",
                   "VAT ID IT123 is not valid for Italy: expected IT followed by 11 digits.");
    expect_message("IT", "IT007431101570",
                   "VAT ID IT007431101570 is not valid for Italy: expected IT followed by 11 "
                   "digits.");
    expect_message("NL", "NL4495445B01",
                   "VAT ID NL4495445B01 is not valid for the Netherlands: expected NL "
                   "followed by 9 digits, B and 2 digits from 01 to 99.");
    expect_message("NO", "NO923609016",
                   "VAT ID NO923609016 is not valid for Norway: expected NO followed by 9 "
                   "digits and MVA.");
}

static void test_validate_prefix(void **state)
{
    (void)state;
    /* Typed without the prefix: the message says what to enter. */
    expect_message("IT", "00743110157",
                   "A VAT ID must start with the country prefix IT for Italy: enter "
                   "IT00743110157.");
    expect_message("AT", "U13585627",
                   "A VAT ID must start with the country prefix AT for Austria: enter "
                   "ATU13585627.");
    expect_message("GB", "980780684",
                   "A VAT ID must start with the country prefix GB for the United Kingdom: "
                   "enter GB980780684.");
    /* Greece uses EL, not its ISO code. */
    expect_message("GR", "GR094012834",
                   "A VAT ID must start with the country prefix EL for Greece: enter "
                   "EL094012834.");
    expect_message("GR", "094012834",
                   "A VAT ID must start with the country prefix EL for Greece: enter "
                   "EL094012834.");
    /* Without a prefix and wrong anyway, or with another country's prefix. */
    expect_message("GR", "GR09401283",
                   "A VAT ID must start with the country prefix EL for Greece.");
    expect_message("IT", "00743110158",
                   "A VAT ID must start with the country prefix IT for Italy.");
    expect_message("IT", "DE136695976",
                   "A VAT ID must start with the country prefix IT for Italy.");
    expect_message("DE", "IT00743110157",
                   "A VAT ID must start with the country prefix DE for Germany.");
    expect_message("GB", "XI980780684",
                   "A VAT ID must start with the country prefix GB for the United Kingdom.");
    expect_message("FR", "F", "A VAT ID must start with the country prefix FR for France.");
    expect_message("FR", "", "A VAT ID must start with the country prefix FR for France.");
}

static void test_validate_country(void **state)
{
    (void)state;
    expect_message("BR", "BR123", "Brazil does not use VAT IDs here; leave the field empty.");
    expect_message("US", "IT00743110157",
                   "United States does not use VAT IDs here; leave the field empty.");
    expect_message("XX", "IT00743110157", "\"XX\" is not a known country code.");
    expect_message("it", "IT00743110157", "\"it\" is not a known country code.");
    expect_message("EL", "EL094012834", "\"EL\" is not a known country code.");
}

static void test_validate_msg_buffer(void **state)
{
    (void)state;
    /* Truncated, but always terminated. */
    char small[12];
    assert_int_equal(gh_vat_validate("IT", "IT123", small, sizeof(small)), GH_EINVAL);
    assert_string_equal(small, "VAT ID IT12");

    /* No buffer at all. */
    assert_int_equal(gh_vat_validate("IT", "IT123", NULL, 0), GH_EINVAL);
    assert_int_equal(gh_vat_validate("IT", "IT00743110157", NULL, 0), GH_OK);

    /* A caller that skipped normalization gets a refusal with a bounded echo. */
    char msg[GH_VAT_MSG_SIZE];
    assert_int_equal(gh_vat_validate("IT", "IT0074311015700000000000000000000000000", msg,
                                     sizeof(msg)),
                     GH_EINVAL);
    assert_string_equal(msg, "VAT ID IT007431101570000000 is not valid for Italy: expected IT "
                             "followed by 11 digits.");

    /* The longest messages fit GH_VAT_MSG_SIZE. */
    for (size_t i = 0; i < gh_country_count(); i++) {
        const gh_country_t *c = gh_country_at(i);
        char buf[GH_VAT_MSG_SIZE];
        assert_int_equal(gh_vat_validate(c->code, "12345678901234567890", buf, sizeof(buf)),
                         GH_EINVAL);
        assert_true(strlen(buf) + 1 < sizeof(buf));
        if (!c->vat)
            continue;
        char vat[GH_VAT_SIZE];
        snprintf(vat, sizeof(vat), "%s%s", gh_vat_prefix(c->code), "123456789012345678");
        assert_int_equal(gh_vat_validate(c->code, vat, buf, sizeof(buf)), GH_EINVAL);
        assert_true(strlen(buf) + 1 < sizeof(buf));
    }
}

/* What the console does: normalize what was typed, then validate. */
static void test_normalize_then_validate(void **state)
{
    (void)state;
    static const vat_case_t typed[] = {
        {"IT", "it 007 431 101 57"},  {"NL", "nl 0000.99998.b57"}, {"GR", "el-094.012.834"},
        {"CH", "CHE-107.787.577 MWST"}, {"NO", "NO 923 609 016 MVA"}, {"GB", "GB 980 7806 84"},
        {"ES", "es x-5253868-r"},     {"FR", "Fr 40 303 265 045"},  {"BE", "BE 0428.759.497"},
        {"IE", "IE 8+79739 I"},
    };
    for (size_t i = 0; i < COUNT(typed); i++) {
        char vat[GH_VAT_SIZE];
        char msg[GH_VAT_MSG_SIZE];
        assert_int_equal(gh_vat_normalize(typed[i].vat, vat, sizeof(vat)), GH_OK);
        gh_err_t rc = gh_vat_validate(typed[i].country, vat, msg, sizeof(msg));
        if (rc != GH_OK)
            fail_msg("\"%s\" -> %s: %s", typed[i].vat, vat, msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_country_list),
        cmocka_unit_test(test_country_name),
        cmocka_unit_test(test_country_vat_applicable),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_validate_valid),
        cmocka_unit_test(test_validate_bad_check),
        cmocka_unit_test(test_validate_bad_format),
        cmocka_unit_test(test_validate_prefix),
        cmocka_unit_test(test_validate_country),
        cmocka_unit_test(test_validate_msg_buffer),
        cmocka_unit_test(test_normalize_then_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
