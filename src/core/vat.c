/* Offline VAT ID checks. Each VAT country has one rule: its prefix, a phrase that tells a
 * person what the number looks like, and a function that judges the part after the prefix.
 * Formats follow the EU's VIES table (and HMRC, the Swiss UID register and the Norwegian
 * Brønnøysund register for GB, CH and NO). Check digits are verified only where the
 * algorithm is public and was confirmed against real, published numbers; a country whose
 * rule we could not confirm gets the format check alone, because refusing a real customer's
 * number is worse than letting a typo through to VIES. */
#include "core/vat.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/country.h"

typedef enum {
    VAT_OK,
    VAT_BAD_FORMAT, /* wrong length or characters: the message repeats the expected shape */
    VAT_BAD_CHECK,  /* right shape, but check digits or a coded part do not hold */
} vat_verdict_t;

/* Judges `body`, the `len` characters after the prefix. */
typedef vat_verdict_t vat_check_fn(const char *body, size_t len);

typedef struct vat_rule {
    char country[3];      /* ISO 3166-1 alpha-2 */
    char prefix[3];       /* what the VAT ID starts with */
    const char *expected; /* completes "expected ..." */
    vat_check_fn *check;
} vat_rule_t;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_letter(char c)
{
    return c >= 'A' && c <= 'Z';
}

static unsigned digit(char c)
{
    assert(is_digit(c));
    return (unsigned)(c - '0');
}

/* True when `s` (length `len`) matches `pattern` character for character, where '9' is a
 * digit, 'A' a letter, 'X' a letter or digit, 'F' a French key character (a digit or a
 * letter other than I and O), 'S' an Irish second character (a letter, '+' or '*') and
 * any other character stands for itself. */
static bool shape(const char *s, size_t len, const char *pattern)
{
    if (len != strlen(pattern))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok;
        switch (pattern[i]) {
        case '9': ok = is_digit(c); break;
        case 'A': ok = is_letter(c); break;
        case 'X': ok = is_digit(c) || is_letter(c); break;
        case 'F': ok = is_digit(c) || (is_letter(c) && c != 'I' && c != 'O'); break;
        case 'S': ok = is_letter(c) || c == '+' || c == '*'; break;
        default: ok = c == pattern[i]; break;
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]))
            return false;
    return len > 0;
}

/* The value of the `n` decimal digits at `s`; n <= 19 so it fits. */
static uint64_t number(const char *s, size_t n)
{
    assert(n <= 19);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + digit(s[i]);
    return v;
}

/* Sum of the first `n` digits of `s`, each multiplied by its weight. */
static unsigned weighted(const char *s, const unsigned *weights, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += weights[i] * digit(s[i]);
    return sum;
}

/* The digit sum of 2*d, as the Luhn family of checks adds it. */
static unsigned doubled(unsigned d)
{
    unsigned v = 2 * d;
    return v > 9 ? v - 9 : v;
}

/* Luhn: valid when, doubling every second digit from the right, the sum ends in 0. */
static bool luhn(const char *s, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = digit(s[n - 1 - i]);
        sum += i % 2 ? doubled(d) : d;
    }
    return sum % 10 == 0;
}

/* ISO 7064 MOD 11,10 over `n` digits, the last being the check digit. */
static bool iso7064_mod11_10(const char *s, size_t n)
{
    unsigned product = 10;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned sum = (digit(s[i]) + product) % 10;
        product = (sum ? sum : 10) * 2 % 11;
    }
    return (11 - product) % 10 == digit(s[n - 1]);
}

static vat_verdict_t verdict(bool check_holds)
{
    return check_holds ? VAT_OK : VAT_BAD_CHECK;
}

/* ---- The national rules, in order of prefix. ---- */

static vat_verdict_t check_at(const char *s, size_t len)
{
    if (!shape(s, len, "U99999999"))
        return VAT_BAD_FORMAT;
    const char *d = s + 1;
    unsigned sum = 0;
    for (size_t i = 0; i < 7; i++)
        sum += i % 2 ? doubled(digit(d[i])) : digit(d[i]);
    return verdict((10 - (sum + 4) % 10) % 10 == digit(d[7]));
}

static vat_verdict_t check_be(const char *s, size_t len)
{
    if (!shape(s, len, "9999999999") || (s[0] != '0' && s[0] != '1'))
        return VAT_BAD_FORMAT;
    return verdict(97 - number(s, 8) % 97 == number(s + 8, 2));
}

static vat_verdict_t check_bg(const char *s, size_t len)
{
    return (len == 9 || len == 10) && all_digits(s, len) ? VAT_OK : VAT_BAD_FORMAT;
}

static vat_verdict_t check_ch(const char *s, size_t len)
{
    /* The UID is CHE-123.456.789; the VAT register adds MWST, TVA, IVA or TPV (German,
     * French, Italian, Romansh) and invoices print it either way, so both are accepted. */
    static const char *const suffixes[] = {"", "MWST", "TVA", "IVA", "TPV"};
    static const unsigned w[] = {5, 4, 3, 2, 7, 6, 5, 4};
    if (len < 10 || !shape(s, 10, "E999999999"))
        return VAT_BAD_FORMAT;
    bool suffix_ok = false;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (strlen(suffixes[i]) == len - 10 && memcmp(s + 10, suffixes[i], len - 10) == 0)
            suffix_ok = true;
    if (!suffix_ok)
        return VAT_BAD_FORMAT;
    unsigned check = (11 - weighted(s + 1, w, 8) % 11) % 11;
    return verdict(check != 10 && check == digit(s[9]));
}

static vat_verdict_t check_cy(const char *s, size_t len)
{
    /* Digits in even places (from 0) are mapped through this table before summing. */
    static const unsigned map[] = {1, 0, 5, 7, 9, 13, 15, 17, 19, 21};
    if (!shape(s, len, "99999999A"))
        return VAT_BAD_FORMAT;
    unsigned sum = 0;
    for (size_t i = 0; i < 8; i++)
        sum += i % 2 ? digit(s[i]) : map[digit(s[i])];
    return verdict(s[8] == (char)('A' + sum % 26));
}

static vat_verdict_t check_cz(const char *s, size_t len)
{
    return len >= 8 && len <= 10 && all_digits(s, len) ? VAT_OK : VAT_BAD_FORMAT;
}

static vat_verdict_t check_de(const char *s, size_t len)
{
    if (!shape(s, len, "999999999") || s[0] == '0')
        return VAT_BAD_FORMAT;
    return verdict(iso7064_mod11_10(s, 9));
}

static vat_verdict_t check_dk(const char *s, size_t len)
{
    static const unsigned w[] = {2, 7, 6, 5, 4, 3, 2, 1};
    if (!shape(s, len, "99999999"))
        return VAT_BAD_FORMAT;
    return verdict(weighted(s, w, 8) % 11 == 0);
}

static vat_verdict_t check_ee(const char *s, size_t len)
{
    static const unsigned w[] = {3, 7, 1, 3, 7, 1, 3, 7, 1};
    if (!shape(s, len, "999999999"))
        return VAT_BAD_FORMAT;
    return verdict(weighted(s, w, 9) % 10 == 0);
}

static vat_verdict_t check_el(const char *s, size_t len)
{
    static const unsigned w[] = {256, 128, 64, 32, 16, 8, 4, 2};
    if (!shape(s, len, "999999999"))
        return VAT_BAD_FORMAT;
    return verdict(weighted(s, w, 8) % 11 % 10 == digit(s[8]));
}

/* Spain's NIF is a DNI (8 digits and a letter), a NIE (X, Y or Z, 7 digits and a letter),
 * a K, L or M number (a letter, 7 digits and a letter) or a CIF for organisations (a
 * letter, 7 digits and a check that is a digit or the matching letter of JABCDEFGHI;
 * sources disagree on which organisation types use which, so either is accepted). Nine
 * digits are never a NIF, hence VIES's rule that both ends may not be digits. */
static vat_verdict_t check_es(const char *s, size_t len)
{
    static const char dni_letters[] = "TRWAGMYFPDXBNJZSQVHLCKE";
    if (!shape(s, len, "X9999999X") || (is_digit(s[0]) && is_digit(s[8])))
        return VAT_BAD_FORMAT;

    if (is_digit(s[0]))
        return verdict(s[8] == dni_letters[number(s, 8) % 23]);
    if (s[0] == 'X' || s[0] == 'Y' || s[0] == 'Z') {
        uint64_t n = (uint64_t)(s[0] - 'X') * 10000000 + number(s + 1, 7);
        return verdict(s[8] == dni_letters[n % 23]);
    }
    if (s[0] == 'K' || s[0] == 'L' || s[0] == 'M')
        return verdict(s[8] == dni_letters[number(s + 1, 7) % 23]);
    if (strchr("ABCDEFGHJNPQRSUVW", s[0]) == NULL)
        return VAT_BAD_CHECK;
    unsigned sum = 0;
    for (size_t i = 0; i < 7; i++)
        sum += i % 2 ? digit(s[1 + i]) : doubled(digit(s[1 + i]));
    unsigned check = (10 - sum % 10) % 10;
    return verdict(s[8] == (char)('0' + check) || s[8] == "JABCDEFGHI"[check]);
}

static vat_verdict_t check_fi(const char *s, size_t len)
{
    static const unsigned w[] = {7, 9, 10, 5, 8, 4, 2, 1};
    if (!shape(s, len, "99999999"))
        return VAT_BAD_FORMAT;
    return verdict(weighted(s, w, 8) % 11 == 0);
}

/* France: a two-character key, then the 9-digit SIREN. A numeric key is
 * (12 + 3 * (SIREN mod 97)) mod 97; alphabetic keys use an unpublished scheme. */
static vat_verdict_t check_fr(const char *s, size_t len)
{
    if (!shape(s, len, "FF999999999"))
        return VAT_BAD_FORMAT;
    if (!is_digit(s[0]) || !is_digit(s[1]))
        return VAT_OK;
    return verdict(number(s, 2) == (12 + 3 * (number(s + 2, 9) % 97)) % 97);
}

/* United Kingdom: 9 digits (12 for a branch trader: the first 9 are checked), or GD000
 * to GD499 for government departments and HA500 to HA999 for health authorities. The
 * weighted sum of the 9 digits is 0 mod 97 for the old series and 42 (that is, -55) for
 * numbers issued since 2010. */
static vat_verdict_t check_gb(const char *s, size_t len)
{
    static const unsigned w[] = {8, 7, 6, 5, 4, 3, 2, 10, 1};
    if (shape(s, len, "GD999"))
        return number(s + 2, 3) < 500 ? VAT_OK : VAT_BAD_FORMAT;
    if (shape(s, len, "HA999"))
        return number(s + 2, 3) >= 500 ? VAT_OK : VAT_BAD_FORMAT;
    if ((len != 9 && len != 12) || !all_digits(s, len))
        return VAT_BAD_FORMAT;
    unsigned rest = weighted(s, w, 9) % 97;
    return verdict(rest == 0 || rest == 42);
}

static vat_verdict_t check_hr(const char *s, size_t len)
{
    return shape(s, len, "99999999999") ? VAT_OK : VAT_BAD_FORMAT;
}

static vat_verdict_t check_hu(const char *s, size_t len)
{
    static const unsigned w[] = {9, 7, 3, 1, 9, 7, 3, 1};
    if (!shape(s, len, "99999999"))
        return VAT_BAD_FORMAT;
    return verdict(weighted(s, w, 8) % 10 == 0);
}

static vat_verdict_t check_ie(const char *s, size_t len)
{
    bool ok = shape(s, len, "9999999A") || shape(s, len, "9999999AA") ||
              shape(s, len, "9S99999A");
    return ok ? VAT_OK : VAT_BAD_FORMAT;
}

/* Italy's Partita IVA: 7 digits of company number, a 3-digit provincial office code and a
 * check digit computed Luhn-style from the left. */
static vat_verdict_t check_it(const char *s, size_t len)
{
    if (!shape(s, len, "99999999999"))
        return VAT_BAD_FORMAT;
    unsigned sum = 0;
    for (size_t i = 0; i < 10; i++)
        sum += i % 2 ? doubled(digit(s[i])) : digit(s[i]);
    if ((10 - sum % 10) % 10 != digit(s[10]))
        return VAT_BAD_CHECK;
    uint64_t office = number(s + 7, 3);
    bool office_ok = (office >= 1 && office <= 100) || office == 120 || office == 121 ||
                     office == 888 || office == 999;
    return verdict(office_ok);
}

static vat_verdict_t check_lt(const char *s, size_t len)
{
    return (len == 9 || len == 12) && all_digits(s, len) ? VAT_OK : VAT_BAD_FORMAT;
}

static vat_verdict_t check_lu(const char *s, size_t len)
{
    if (!shape(s, len, "99999999"))
        return VAT_BAD_FORMAT;
    return verdict(number(s, 6) % 89 == number(s + 6, 2));
}

static vat_verdict_t check_lv(const char *s, size_t len)
{
    return shape(s, len, "99999999999") ? VAT_OK : VAT_BAD_FORMAT;
}

static vat_verdict_t check_mt(const char *s, size_t len)
{
    static const unsigned w[] = {3, 4, 6, 7, 8, 9};
    if (!shape(s, len, "99999999"))
        return VAT_BAD_FORMAT;
    return verdict((weighted(s, w, 6) + number(s + 6, 2)) % 37 == 0);
}

/* Netherlands: 9 digits, B and a 2-digit branch number 01-99. Companies use their RSIN,
 * which passes the "11-proof"; sole traders have had a btw-id since 2020 that instead
 * passes ISO 7064 MOD 97-10 over the whole "NL...B.." string, letters counting 10-35. */
static vat_verdict_t check_nl(const char *s, size_t len)
{
    static const unsigned w[] = {9, 8, 7, 6, 5, 4, 3, 2};
    if (!shape(s, len, "999999999B99") || (s[10] == '0' && s[11] == '0'))
        return VAT_BAD_FORMAT;
    if ((weighted(s, w, 8) + 11 * 9 - digit(s[8])) % 11 == 0)
        return VAT_OK;
    unsigned rest = (23 * 100 + 21) % 97; /* "NL" as 23 21 */
    for (size_t i = 0; i < len; i++)
        rest = is_digit(s[i]) ? (rest * 10 + digit(s[i])) % 97
                              : (rest * 100 + (unsigned)(s[i] - 'A' + 10)) % 97;
    return verdict(rest == 1);
}

static vat_verdict_t check_no(const char *s, size_t len)
{
    static const unsigned w[] = {3, 2, 7, 6, 5, 4, 3, 2};
    if (!shape(s, len, "999999999MVA"))
        return VAT_BAD_FORMAT;
    unsigned check = (11 - weighted(s, w, 8) % 11) % 11;
    return verdict(check != 10 && check == digit(s[8]));
}

static vat_verdict_t check_pl(const char *s, size_t len)
{
    static const unsigned w[] = {6, 5, 7, 2, 3, 4, 5, 6, 7};
    if (!shape(s, len, "9999999999"))
        return VAT_BAD_FORMAT;
    unsigned check = weighted(s, w, 9) % 11;
    return verdict(check != 10 && check == digit(s[9]));
}

static vat_verdict_t check_pt(const char *s, size_t len)
{
    static const unsigned w[] = {9, 8, 7, 6, 5, 4, 3, 2};
    if (!shape(s, len, "999999999"))
        return VAT_BAD_FORMAT;
    unsigned check = 11 - weighted(s, w, 8) % 11;
    return verdict((check > 9 ? 0 : check) == digit(s[8]));
}

/* Romania: 2 to 10 digits; the weights 7,5,3,2,1,7,5,3,2 are aligned to the right of the
 * digits before the check digit. */
static vat_verdict_t check_ro(const char *s, size_t len)
{
    static const unsigned w[] = {7, 5, 3, 2, 1, 7, 5, 3, 2};
    if (len < 2 || len > 10 || !all_digits(s, len) || s[0] == '0')
        return VAT_BAD_FORMAT;
    unsigned sum = weighted(s, w + (10 - len), len - 1);
    return verdict(sum * 10 % 11 % 10 == digit(s[len - 1]));
}

/* Sweden: the 10-digit organisation number (Luhn) followed by 01. */
static vat_verdict_t check_se(const char *s, size_t len)
{
    if (!shape(s, len, "9999999999" "01"))
        return VAT_BAD_FORMAT;
    return verdict(luhn(s, 10));
}

static vat_verdict_t check_si(const char *s, size_t len)
{
    static const unsigned w[] = {8, 7, 6, 5, 4, 3, 2};
    if (!shape(s, len, "99999999") || s[0] == '0')
        return VAT_BAD_FORMAT;
    unsigned check = 11 - weighted(s, w, 7) % 11;
    if (check == 11)
        return VAT_BAD_CHECK;
    return verdict(check % 10 == digit(s[7]));
}

/* Slovakia: 10 digits, the number divisible by 11; VIES also fixes the third digit. */
static vat_verdict_t check_sk(const char *s, size_t len)
{
    if (!shape(s, len, "9999999999") || s[0] == '0')
        return VAT_BAD_FORMAT;
    if (strchr("234789", s[2]) == NULL)
        return VAT_BAD_CHECK;
    return verdict(number(s, 10) % 11 == 0);
}

static const vat_rule_t rules[] = {
    {"AT", "AT", "ATU followed by 8 digits", check_at},
    {"BE", "BE", "BE followed by 10 digits, the first 0 or 1", check_be},
    {"BG", "BG", "BG followed by 9 or 10 digits", check_bg},
    {"CH", "CH", "CHE followed by 9 digits, optionally ending in MWST, TVA, IVA or TPV",
     check_ch},
    {"CY", "CY", "CY followed by 8 digits and a letter", check_cy},
    {"CZ", "CZ", "CZ followed by 8, 9 or 10 digits", check_cz},
    {"DE", "DE", "DE followed by 9 digits, the first not 0", check_de},
    {"DK", "DK", "DK followed by 8 digits", check_dk},
    {"EE", "EE", "EE followed by 9 digits", check_ee},
    {"ES", "ES",
     "ES followed by a letter or digit, 7 digits and a letter or digit, with a letter at "
     "one end at least",
     check_es},
    {"FI", "FI", "FI followed by 8 digits", check_fi},
    {"FR", "FR", "FR followed by 2 digits or letters (not I or O) and 9 digits", check_fr},
    {"GB", "GB", "GB followed by 9 or 12 digits, GD and 3 digits below 500, or HA and 3 "
                 "digits from 500",
     check_gb},
    {"GR", "EL", "EL followed by 9 digits", check_el},
    {"HR", "HR", "HR followed by 11 digits", check_hr},
    {"HU", "HU", "HU followed by 8 digits", check_hu},
    {"IE", "IE", "IE followed by 7 digits and 1 or 2 letters, or by a digit, a letter, + or "
                 "*, 5 digits and a letter",
     check_ie},
    {"IT", "IT", "IT followed by 11 digits", check_it},
    {"LT", "LT", "LT followed by 9 or 12 digits", check_lt},
    {"LU", "LU", "LU followed by 8 digits", check_lu},
    {"LV", "LV", "LV followed by 11 digits", check_lv},
    {"MT", "MT", "MT followed by 8 digits", check_mt},
    {"NL", "NL", "NL followed by 9 digits, B and 2 digits from 01 to 99", check_nl},
    {"NO", "NO", "NO followed by 9 digits and MVA", check_no},
    {"PL", "PL", "PL followed by 10 digits", check_pl},
    {"PT", "PT", "PT followed by 9 digits", check_pt},
    {"RO", "RO", "RO followed by 2 to 10 digits, the first not 0", check_ro},
    {"SE", "SE", "SE followed by 12 digits ending in 01", check_se},
    {"SI", "SI", "SI followed by 8 digits, the first not 0", check_si},
    {"SK", "SK", "SK followed by 10 digits, the first not 0", check_sk},
};

static_assert(sizeof(rules) / sizeof(rules[0]) == 30,
              "one rule for each of the 27 EU states, GB, CH and NO");

static const vat_rule_t *rule_find(const char *country)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (strcmp(rules[i].country, country) == 0)
            return &rules[i];
    return NULL;
}

/* "the " for the VAT countries whose English name takes the article in running text. */
static const char *article(const char *country)
{
    return strcmp(country, "NL") == 0 || strcmp(country, "GB") == 0 ? "the " : "";
}

const char *gh_vat_prefix(const char *country)
{
    assert(country != NULL);
    const vat_rule_t *rule = rule_find(country);
    return rule ? rule->prefix : NULL;
}

gh_err_t gh_vat_normalize(const char *in, char *out, size_t out_size)
{
    assert(in != NULL && out != NULL);
    assert(out_size >= GH_VAT_SIZE);

    size_t n = 0;
    bool irish_marks = false;
    for (const char *p = in; *p != '\0'; p++) {
        char c = *p;
        if (c == ' ' || c == '.' || c == '-')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == '+' || c == '*')
            irish_marks = true;
        else if (!is_letter(c) && !is_digit(c))
            goto out_invalid;
        if (n == GH_VAT_LEN_MAX)
            goto out_invalid;
        out[n++] = c;
    }
    if (n == 0 || (irish_marks && !(n >= 2 && out[0] == 'I' && out[1] == 'E')))
        goto out_invalid;
    out[n] = '\0';
    return GH_OK;

out_invalid:
    out[0] = '\0';
    return GH_EINVAL;
}

__attribute__((format(printf, 3, 4))) static gh_err_t refuse(char *msg, size_t msg_size,
                                                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_size, fmt, ap);
    va_end(ap);
    return GH_EINVAL;
}

gh_err_t gh_vat_validate(const char *country, const char *vat_normalized, char *msg,
                         size_t msg_size)
{
    assert(country != NULL && vat_normalized != NULL);
    assert(msg != NULL || msg_size == 0);

    const gh_country_t *c = gh_country_find(country);
    if (c == NULL)
        return refuse(msg, msg_size, "\"%.8s\" is not a known country code.", country);
    if (!c->vat)
        return refuse(msg, msg_size, "%s does not use VAT IDs here; leave the field empty.",
                      c->name);
    const vat_rule_t *rule = rule_find(c->code);
    assert(rule != NULL);
    const char *the = article(c->code);

    /* Echo at most a normalized number's worth, whatever the caller passed. */
    const char *vat = vat_normalized;
    int vat_len = (int)strnlen(vat, GH_VAT_LEN_MAX);
    if (strncmp(vat, rule->prefix, 2) != 0) {
        /* If the rest would be valid once prefixed (or, for Greece, re-prefixed from the
         * ISO code GR), say exactly what to enter. */
        const char *body = vat;
        if (strncmp(vat, c->code, 2) == 0)
            body = vat + 2;
        size_t body_len = strlen(body);
        if (body_len <= GH_VAT_LEN_MAX - 2 && rule->check(body, body_len) == VAT_OK)
            return refuse(msg, msg_size,
                          "A VAT ID must start with the country prefix %s for %s%s: enter %s%s.",
                          rule->prefix, the, c->name, rule->prefix, body);
        return refuse(msg, msg_size, "A VAT ID must start with the country prefix %s for %s%s.",
                      rule->prefix, the, c->name);
    }

    vat_verdict_t v = rule->check(vat + 2, strlen(vat + 2));
    if (v == VAT_BAD_FORMAT)
        return refuse(msg, msg_size, "VAT ID %.*s is not valid for %s%s: expected %s.", vat_len,
                      vat, the, c->name, rule->expected);
    if (v == VAT_BAD_CHECK)
        return refuse(msg, msg_size,
                      "VAT ID %.*s is not valid for %s%s: it fails the national check digit "
                      "test, so it probably contains a typing mistake.",
                      vat_len, vat, the, c->name);
    if (msg_size > 0)
        msg[0] = '\0';
    return GH_OK;
}
