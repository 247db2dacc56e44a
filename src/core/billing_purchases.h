/* Buying credits (core/billing_purchases.c): a purchase recorded pending, charged outside
 * any transaction with its id as the provider's idempotency key, and resolved exactly once
 * (credited, invoiced and receipted in one transaction); pending purchases retried by the
 * scheduler; and the payment provider's webhook events, which may resolve them. */
#ifndef GH_CORE_BILLING_PURCHASES_H
#define GH_CORE_BILLING_PURCHASES_H

#include "core/billing.h"

/* ---- purchases ---- */

/* Buys `amount_nusd` of credits for the actor's organization with the card on file.
 * `idempotency_key` (1–255 printable ASCII characters) identifies the request: the same key
 * again answers with the purchase it made (waiting while it is being charged), never a
 * second one; with another amount it is GH_ECONFLICT.
 * Returns GH_OK with `out` succeeded (credited) or pending (the provider has not answered
 * yet; resolved later, never credited on a guess); GH_EBILLING with the reason in `msg` when
 * the card was declined (`out` is filled: nothing was credited); GH_EINVAL with a message
 * for a bad amount, a missing card or unanswered first-purchase questions. */
gh_err_t gh_billing_purchase(gh_app_t *app, const gh_actor_t *actor, int64_t amount_nusd,
                             const char *idempotency_key, gh_purchase_t *out, char *msg,
                             size_t msg_size);

/* Records a provider's outcome for a pending purchase (from a charge, a webhook or a
 * retry): succeeded credits the lot, the ledger entry and the invoice and sends the receipt;
 * declined records why (and turns auto-reload off for a declined reload); pending only counts
 * the attempt. Idempotent: a purchase no longer pending is left as it is, so a replayed
 * webhook never credits twice. `out` (may be NULL) receives the purchase as it now is. */
gh_err_t gh_billing_purchase_resolve(gh_app_t *app, const char *purchase_id,
                                     const gh_pay_result_t *result, gh_purchase_t *out);

gh_err_t gh_billing_purchase_get(gh_app_t *app, const char *org_id, const char *id,
                                 gh_purchase_t *out);

/* Charges again the pending purchases due for a retry (pending_retry_s since the last
 * attempt, or left by a previous run of the process), each with its own idempotency key.
 * A due purchase created GH_BILLING_GIVE_UP_S ago or more is not charged again: it is
 * declined with the code GH_BILLING_UNCONFIRMED and a message saying so (a late webhook
 * that the charge succeeded still credits it). `*retried` (may be NULL) receives how many
 * were charged again. */
gh_err_t gh_billing_retry_pending(gh_app_t *app, int *retried);

/* ---- provider webhooks ---- */

typedef enum {
    GH_BILLING_EVENT_APPLIED,   /* it changed something */
    GH_BILLING_EVENT_DUPLICATE, /* seen before: nothing done */
    GH_BILLING_EVENT_IGNORED,   /* recorded, nothing to do (settled already, unknown, …) */
} gh_billing_event_outcome_t;

/* A provider's event, already authenticated (its signature checked). */
typedef struct gh_billing_event {
    const char *provider; /* "stripe" */
    const char *id;       /* the provider's event id: each is acted on at most once */
    const char *type;
    /* The outcome of a charge, when `result` is not NULL: */
    const char *purchase_id;       /* the purchase it was for (the charge's metadata) */
    const char *org_id;            /* the organization the provider says ("" not said) */
    int64_t amount_nusd;           /* what the provider charged (0 not said) */
    const gh_pay_result_t *result; /* succeeded or declined, with the provider's ref */
    /* A card saved at the provider, when `card` is not NULL (org_id names the
     * organization, whose customer the caller has checked): */
    const gh_card_t *card;
} gh_billing_event_t;

/* Whether the event `id` was acted on before (to skip work before gh_billing_event_apply). */
gh_err_t gh_billing_event_seen(gh_app_t *app, const char *id, bool *seen);

/* Records the event and acts on it, in one transaction: a charge's outcome resolves its
 * purchase (if still pending; a succeeded charge also settles a purchase given up as
 * unconfirmed) when the purchase, organization and amount match; a card becomes the
 * organization's current card unless it already had it. `*outcome` says what happened and
 * `why` (may be NULL) a line for the log. A replayed event changes nothing. */
gh_err_t gh_billing_event_apply(gh_app_t *app, const gh_billing_event_t *ev,
                                gh_billing_event_outcome_t *outcome, char *why,
                                size_t why_size);

/* The organization's purchases, newest first, one page at a time. */
gh_err_t gh_billing_purchases_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                                   gh_store_purchase_fn fn, void *ctx, bool *has_more);

#endif
