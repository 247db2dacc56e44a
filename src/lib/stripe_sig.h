/* Stripe webhook signatures ("Stripe-Signature: t=1700000000,v1=5257a8…,v1=…").
 *
 * Stripe signs each event it posts to an endpoint with that endpoint's signing secret
 * ("whsec_…"): v1 is the lowercase hex HMAC-SHA256, keyed with the whole secret string, of
 * the timestamp in decimal, a '.', and the raw request body exactly as received. While a
 * secret is being rolled a header carries one v1 per live secret; any of them may match.
 * Other schemes (v0, from test deliveries) are ignored. The timestamp bounds replays: an
 * event is accepted only within `tolerance_s` of the receiver's clock, either way.
 *
 * Pure functions on libsodium: no allocation, no global state, safe from any thread. */
#ifndef GH_LIB_STRIPE_SIG_H
#define GH_LIB_STRIPE_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define GH_STRIPE_SIG_TOLERANCE_S 300   /* Stripe's recommended default */
#define GH_STRIPE_SIG_HEADER_MAX 4096   /* longer headers are refused as malformed */
#define GH_STRIPE_SIG_TIMESTAMP_DIGITS 12 /* up to year 33658; more digits is malformed */
#define GH_STRIPE_SIG_SIGNED_MAX 96     /* what gh_stripe_sig_sign writes, with its NUL */

/* Checks `header` (the Stripe-Signature value) against the raw body `payload` of
 * `payload_len` bytes and the endpoint secret `secret` (a NUL-terminated string of any
 * length), at unix time `now`, allowing `tolerance_s` (>= 0) seconds of difference between
 * the signed timestamp and `now` in either direction.
 *
 * GH_OK when some v1 signature matches (compared in constant time) and the timestamp is
 * within tolerance. GH_EINVAL when the header is malformed: NULL, empty, longer than
 * GH_STRIPE_SIG_HEADER_MAX, an element without '=', no "t", a "t" that is not 1 to
 * GH_STRIPE_SIG_TIMESTAMP_DIGITS decimal digits, or two "t". GH_EAUTH otherwise: no v1
 * element, no v1 matches (wrong secret, altered body), or the timestamp is out of tolerance.
 * A caller answers GH_EINVAL and GH_EAUTH alike (400) and processes nothing. */
gh_err_t gh_stripe_sig_verify(const char *header, const char *payload, size_t payload_len,
                              const char *secret, int64_t now, int64_t tolerance_s);

/* Writes the header Stripe would send for `payload` signed with `secret` at unix time
 * `timestamp` ("t=<timestamp>,v1=<64 hex>") into `out` (GH_STRIPE_SIG_SIGNED_MAX bytes are
 * always enough). GH_EINVAL for a negative timestamp or one longer than
 * GH_STRIPE_SIG_TIMESTAMP_DIGITS digits, GH_ETOOBIG when `out_size` is too small (`out` is
 * then an empty string). Used by tests and test tooling; Gatehouse itself only verifies. */
gh_err_t gh_stripe_sig_sign(char *out, size_t out_size, const char *payload, size_t payload_len,
                            const char *secret, int64_t timestamp);

#endif
