/* Auto-reload (core/billing_reload.c): when an organization's balance falls below its
 * threshold, a purchase of its reload amount is started once (armed again only when the
 * balance is back above), and turned off with a reason mailed to its contacts when the card
 * is declined. */
#ifndef GH_CORE_BILLING_RELOAD_H
#define GH_CORE_BILLING_RELOAD_H

#include "core/billing.h"

/* ---- auto-reload ---- */

/* Turns auto-reload on or off and sets its threshold and amount (NULL keeps the current
 * value). Turning it on needs a card, the first-purchase answers, a threshold and an amount
 * of at least the minimum purchase; it clears a previous reason for turning it off. */
gh_err_t gh_billing_auto_reload_set(gh_app_t *app, const gh_actor_t *actor, bool enabled,
                                    const int64_t *threshold_nusd, const int64_t *amount_nusd,
                                    gh_billing_account_t *out, char *msg, size_t msg_size);

/* Starts the reloads that are due: auto-reload on, armed, and the balance below the
 * threshold, with no reload pending. Each is charged once; `*started` (may be NULL) receives
 * how many. */
gh_err_t gh_billing_auto_reload_check(gh_app_t *app, int *started);

#endif
