/* The test payment provider ([billing] provider = test, the default): no network, no money.
 * It accepts the well-known test card numbers and behaves as documented in docs/api.md:
 *
 *   4242 4242 4242 4242 (and any other valid number)  succeeds
 *   4000 0000 0000 0002   declined: card_declined
 *   4000 0000 0000 9995   declined: insufficient_funds
 *   4000 0000 0000 0069   declined: expired_card
 *   4000 0000 0000 0127   declined: incorrect_cvc
 *   4000 0000 0000 0259   pending on the first attempt (as if the network timed out), then
 *                         succeeds when the purchase is retried with the same key
 *
 * Card details are checked as a real provider would (Luhn, a known brand, expiry not past,
 * CVC of the brand's length), and only brand, last four and expiry are kept. Outcomes depend
 * only on the card and the idempotency key, so a retry after a crash gets the same answer;
 * answers are also remembered per idempotency key in memory (bounded), so a retried charge is
 * never a second charge. */
#ifndef GH_CORE_PAY_TEST_H
#define GH_CORE_PAY_TEST_H

#include "core/pay.h"

/* A new test provider, or NULL when out of memory. Freed with p->ops->destroy(p). */
gh_pay_t *gh_pay_test_new(void);

#endif
