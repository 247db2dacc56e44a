/* VAT identification numbers: normalizing what a person typed and checking it offline
 * against the national format (as published for VIES, plus GB, CH and NO) and, where the
 * algorithm is public and was checked against real numbers, the check digits. This says a
 * number is well formed, not that it is registered: that needs VIES or the national
 * registry. Allocation-free and thread-safe. */
#ifndef GH_CORE_VAT_H
#define GH_CORE_VAT_H

#include <stddef.h>

#include "lib/err.h"

/* The longest normalized VAT ID, and the buffer that holds one with its NUL. */
#define GH_VAT_LEN_MAX 20
#define GH_VAT_SIZE (GH_VAT_LEN_MAX + 1)

/* A buffer size that holds every message gh_vat_validate writes without truncation. */
#define GH_VAT_MSG_SIZE 256

/* Writes `in` to `out` with spaces, dots and dashes removed and ASCII letters upper-cased
 * ("it 007-431.101 57" gives "IT00743110157"). Returns GH_EINVAL, leaving `out` empty, when
 * nothing is left, when more than GH_VAT_LEN_MAX characters are left, or when a character
 * other than A-Z and 0-9 is left; '+' and '*' are allowed only in a number that starts
 * with IE (old Irish numbers use them). `out_size` must be at least GH_VAT_SIZE; `in` and
 * `out` must not be NULL or overlap. Only reads `in` up to the point where it fails. */
gh_err_t gh_vat_normalize(const char *in, char *out, size_t out_size);

/* Checks a normalized VAT ID (see gh_vat_normalize) for `country`, an upper-case ISO 3166-1
 * alpha-2 code. Returns GH_OK when the number has the country's prefix (its ISO code, EL
 * for Greece), the national format and, where checked, valid check digits. Otherwise
 * returns GH_EINVAL and writes a sentence a person can act on to `msg` (truncated to
 * `msg_size`, always NUL-terminated when `msg_size` > 0; `msg` may be NULL when
 * `msg_size` is 0), e.g. "VAT ID IT123 is not valid for Italy: expected IT followed by 11
 * digits." A number typed without its prefix is refused, and the message says which
 * prefix to add. A country that is unknown or has no VAT ID here is GH_EINVAL too. On
 * GH_OK, `msg` is set to "". Check digits are verified for AT, BE, CY, DE, DK, EE, EL, ES,
 * FI, FR (numeric keys), HU, IT, LU, MT, NL, PL, PT, RO, SE, SI, SK, GB, CH and NO; BG, CZ,
 * HR, IE, LT and LV are checked for format only. */
gh_err_t gh_vat_validate(const char *country, const char *vat_normalized, char *msg,
                         size_t msg_size);

/* The prefix a VAT ID of `country` starts with: the code itself, or "EL" for "GR". NULL
 * when `country` is unknown or has no VAT ID here (gh_country_vat_applicable is false). */
const char *gh_vat_prefix(const char *country);

#endif
