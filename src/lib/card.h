/* Payment card numbers as a person types them: normalizing, the Luhn check digit, the brand
 * from the leading digits, and whether an expiry month has passed. Used by the test payment
 * provider, which is the only place a card number ever reaches Gatehouse (with Stripe, card
 * details go from the browser to Stripe directly). Allocation-free and thread-safe. */
#ifndef GH_LIB_CARD_H
#define GH_LIB_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define GH_CARD_DIGITS_MIN 12
#define GH_CARD_DIGITS_MAX 19
#define GH_CARD_NUMBER_SIZE (GH_CARD_DIGITS_MAX + 1)

/* Copies the digits of `in` into `out` (GH_CARD_NUMBER_SIZE bytes), dropping the spaces and
 * dashes people type between groups. GH_EINVAL for any other character, or for fewer than
 * GH_CARD_DIGITS_MIN or more than GH_CARD_DIGITS_MAX digits (`out` is then ""). */
gh_err_t gh_card_normalize(const char *in, char out[GH_CARD_NUMBER_SIZE]);

/* True when the string of digits `digits` passes the Luhn (mod 10) check. */
bool gh_card_luhn_ok(const char *digits);

/* The brand of a normalized number from its leading digits and length: "visa",
 * "mastercard", "amex", "discover", "diners", "jcb" or "unionpay"; NULL when unknown. */
const char *gh_card_brand(const char *digits);

/* The number of CVC digits the brand uses (4 for amex, else 3). */
int gh_card_cvc_digits(const char *brand);

/* How a brand is written for people: "Visa", "Mastercard", "American Express", … */
const char *gh_card_brand_label(const char *brand);

/* True when a card valid through month `exp_month` of `exp_year` has expired at Unix time
 * `now` (a card works until the last moment of its expiry month, UTC). */
bool gh_card_expired(int exp_month, int exp_year, int64_t now);

#endif
