/* Money as integers: nano-USD (1 USD = 1,000,000,000), never floating point. Prices are
 * nano-USD per million tokens, so "$3 per million tokens" is 3,000,000,000 and a price of
 * $0.0001 per million is still exact. Amounts cross the API as decimal strings in USD. */
#ifndef GH_LIB_MONEY_H
#define GH_LIB_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define GH_NUSD_PER_USD INT64_C(1000000000)
#define GH_MONEY_TEXT_MAX 32

/* Parses a non-negative decimal USD amount ("12.50", "0.000000001", "3") into nano-USD.
 * GH_EINVAL for anything else: signs, exponents, more than 9 decimals, spaces, overflow. */
gh_err_t gh_money_parse_usd(const char *text, int64_t *nusd);

/* Exact decimal USD with at least two decimals and no trailing zeros past them:
 * 12500000000 -> "12.50", 1 -> "0.000000001", -5000000000 -> "-5.00". Returns `out`. */
const char *gh_money_format_usd(int64_t nusd, char out[GH_MONEY_TEXT_MAX]);

/* The cost of `tokens` at `nusd_per_mtok` nano-USD per million tokens, rounded half up to
 * a whole nano-USD; saturates at INT64_MAX instead of overflowing. */
int64_t gh_price_cost(int64_t tokens, int64_t nusd_per_mtok);

#endif
