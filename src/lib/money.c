#include "lib/money.h"

#include <stdio.h>
#include <string.h>

gh_err_t gh_money_parse_usd(const char *text, int64_t *nusd)
{
    if (!text || !*text)
        return GH_EINVAL;
    int64_t whole = 0, frac = 0;
    int frac_digits = 0;
    const char *p = text;
    if (*p == '.')
        return GH_EINVAL; /* ".5": write 0.5 */
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (INT64_MAX / GH_NUSD_PER_USD) / 10)
            return GH_EINVAL;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return GH_EINVAL; /* "5.": write 5 or 5.0 */
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++frac_digits > 9)
                return GH_EINVAL;
            frac = frac * 10 + (*p - '0');
        }
    }
    if (*p)
        return GH_EINVAL;
    for (int i = frac_digits; i < 9; i++)
        frac *= 10;
    if (whole > (INT64_MAX - frac) / GH_NUSD_PER_USD)
        return GH_EINVAL;
    *nusd = whole * GH_NUSD_PER_USD + frac;
    return GH_OK;
}

const char *gh_money_format_usd(int64_t nusd, char out[GH_MONEY_TEXT_MAX])
{
    /* Work in unsigned so that INT64_MIN has a magnitude too. */
    uint64_t mag = nusd < 0 ? (uint64_t)0 - (uint64_t)nusd : (uint64_t)nusd;
    uint64_t whole = mag / (uint64_t)GH_NUSD_PER_USD, frac = mag % (uint64_t)GH_NUSD_PER_USD;
    char digits[10];
    snprintf(digits, sizeof(digits), "%09llu", (unsigned long long)frac);
    int keep = 9;
    while (keep > 2 && digits[keep - 1] == '0')
        keep--;
    digits[keep] = '\0';
    snprintf(out, GH_MONEY_TEXT_MAX, "%s%llu.%s", nusd < 0 ? "-" : "",
             (unsigned long long)whole, digits);
    return out;
}

int64_t gh_price_cost(int64_t tokens, int64_t nusd_per_mtok)
{
    if (tokens <= 0 || nusd_per_mtok <= 0)
        return 0;
    /* tokens * price fits in 128 bits; round half up on the division by a million. */
    __int128 product = (__int128)tokens * nusd_per_mtok + 500000;
    __int128 cost = product / 1000000;
    return cost > INT64_MAX ? INT64_MAX : (int64_t)cost;
}
