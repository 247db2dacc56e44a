#include "lib/card.h"

#include <string.h>
#include <time.h>

gh_err_t gh_card_normalize(const char *in, char out[GH_CARD_NUMBER_SIZE])
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '-')
            continue;
        if (*p < '0' || *p > '9' || n == GH_CARD_DIGITS_MAX) {
            out[0] = '\0';
            return GH_EINVAL;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
    if (n < GH_CARD_DIGITS_MIN) {
        out[0] = '\0';
        return GH_EINVAL;
    }
    return GH_OK;
}

bool gh_card_luhn_ok(const char *digits)
{
    size_t n = strlen(digits);
    if (n == 0)
        return false;
    int sum = 0;
    /* From the right: every second digit is doubled, and a two-digit result counts as the sum
     * of its digits (d * 2 - 9). */
    for (size_t i = 0; i < n; i++) {
        char c = digits[n - 1 - i];
        if (c < '0' || c > '9')
            return false;
        int d = c - '0';
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

/* The number formed by the first `k` digits. */
static int prefix(const char *digits, size_t k)
{
    int v = 0;
    for (size_t i = 0; i < k && digits[i]; i++)
        v = v * 10 + (digits[i] - '0');
    return v;
}

const char *gh_card_brand(const char *digits)
{
    size_t n = strlen(digits);
    if (n < GH_CARD_DIGITS_MIN)
        return NULL;
    int p2 = prefix(digits, 2), p3 = prefix(digits, 3), p4 = prefix(digits, 4),
        p6 = prefix(digits, 6);
    if ((p2 == 34 || p2 == 37) && n == 15)
        return "amex";
    if (digits[0] == '4' && (n == 13 || n == 16 || n == 19))
        return "visa";
    if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n == 16)
        return "mastercard";
    if ((p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649) ||
         (p6 >= 622126 && p6 <= 622925)) &&
        n >= 16)
        return "discover";
    if ((p2 == 36 || p2 == 38 || p2 == 39 || (p3 >= 300 && p3 <= 305)) && n >= 14)
        return "diners";
    if (p4 >= 3528 && p4 <= 3589 && n >= 16)
        return "jcb";
    if (p2 == 62 && n >= 16)
        return "unionpay";
    return NULL;
}

int gh_card_cvc_digits(const char *brand)
{
    return brand && !strcmp(brand, "amex") ? 4 : 3;
}

const char *gh_card_brand_label(const char *brand)
{
    static const struct {
        const char *brand, *label;
    } labels[] = {
        {"visa", "Visa"},       {"mastercard", "Mastercard"}, {"amex", "American Express"},
        {"discover", "Discover"}, {"diners", "Diners Club"},  {"jcb", "JCB"},
        {"unionpay", "UnionPay"},
    };
    for (size_t i = 0; brand && i < sizeof(labels) / sizeof(labels[0]); i++)
        if (!strcmp(labels[i].brand, brand))
            return labels[i].label;
    return "Card";
}

bool gh_card_expired(int exp_month, int exp_year, int64_t now)
{
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    int year = tm.tm_year + 1900, month = tm.tm_mon + 1;
    return exp_year < year || (exp_year == year && exp_month < month);
}
