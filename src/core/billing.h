/* Billing: the card on file, buying credits, credit lots and the ledger, invoices and
 * receipts, auto-reload, staff grants, and the scheduler that expires lots, retries pending
 * purchases and reloads. This header declares the shared model, the scheduler, amounts, the
 * overview, the card and the first-purchase questions (core/billing.c); each other part has
 * a .c/.h pair of its own, named at the end.
 *
 * Money. Amounts are nano-USD; purchases are whole cents between the configured minimum and
 * maximum. A purchase credits its amount; the card is charged the amount plus tax.
 *
 * The ledger. Every change of a balance is an append-only entry with a reference; a
 * purchase or a grant opens a credit lot that expires credit_expiry_days later; usage draws
 * from the lot that expires first, and past the last lot it drives the balance negative
 * (the next lot settles that first). gh_billing_ledger_check recomputes every balance.
 *
 * Purchases and crash safety. A purchase is recorded as pending (with the caller's
 * idempotency key, unique per organization) in one transaction; the provider is called
 * outside any transaction with the purchase id as its idempotency key; the outcome is
 * recorded in a second transaction that credits the lot, appends the entry, takes the next
 * invoice number and marks the purchase succeeded, only while it is still pending. A purchase
 * left pending (a timeout, a crash between charge and credit) is charged again with the same
 * key by the scheduler, so it is credited exactly once and never on a guess.
 *
 * Threads. Functions here may be called from any thread; each uses the calling thread's
 * store connection. Provider calls may block (the Stripe provider's timeout). Within one
 * process, a purchase is charged by one thread at a time (an in-memory claim). */
#ifndef GH_CORE_BILLING_H
#define GH_CORE_BILLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/actor.h"
#include "core/app.h"
#include "core/invoice_pdf.h"
#include "core/pay.h"
#include "core/usage.h"

/* The test provider remembers the idempotency keys it charged only in memory; this test-only
 * environment variable (honoured only with provider = test) makes the server exit right after
 * a charge succeeds and before it is credited, to prove the restart credits it once. */
#define GH_BILLING_CRASH_ENV "GATEHOUSE_TEST_CRASH_AFTER_CHARGE"

/* The regulated industries the first-purchase questions offer (NULL-terminated). */
extern const char *const gh_billing_industries[];

/* A pending purchase is charged again (with its own idempotency key) only this long after it
 * was created; after that it is given up as "unconfirmed" and never charged again. Stripe
 * keeps idempotency keys for 24 hours: a charge after that could be a second one. */
#define GH_BILLING_GIVE_UP_S (23 * 3600)
#define GH_BILLING_UNCONFIRMED "unconfirmed" /* the decline code of a purchase given up */

/* Creates the payment provider `cfg` names. For stripe, the secret key and the webhook
 * signing secret are read from the environment variables [billing] stripe_secret_key_env and
 * stripe_webhook_secret_env; both are required. GH_EINVAL with a message (which never
 * repeats a secret) when the provider cannot be used. */
gh_err_t gh_billing_provider_new(const gh_config_t *cfg, gh_pay_t **out, char *err,
                                 size_t err_size);

/* ---- the scheduler and in-flight purchases ---- */

typedef struct gh_billing gh_billing_t;

typedef struct gh_billing_stats {
    uint64_t passes;         /* scheduler passes completed */
    uint64_t lots_expired;
    uint64_t retries;        /* pending purchases charged again */
    uint64_t reloads;        /* auto-reloads started */
} gh_billing_stats_t;

/* Creates the billing runtime for `app` (which keeps a pointer to it in app->billing) without
 * starting the scheduler: purchases can be made at once. */
gh_err_t gh_billing_new(gh_billing_t **out, gh_app_t *app);

/* Starts the scheduler thread: a pass at once, then one every scheduler_interval_s and
 * whenever gh_billing_kick is called. A pass expires lots past their expiry, charges again
 * the pending purchases due for a retry and starts the auto-reloads that are due. */
gh_err_t gh_billing_start(gh_billing_t *b, char *err, size_t err_size);

/* Asks for a scheduler pass soon (after usage is settled). Never blocks; safe with NULL. */
void gh_billing_kick(gh_billing_t *b);

/* Runs one pass in the calling thread (tests; the scheduler runs the same). */
void gh_billing_pass(gh_billing_t *b);

void gh_billing_stats(gh_billing_t *b, gh_billing_stats_t *out);

/* Stops the scheduler (waiting for a pass in progress) and frees. Safe with NULL. */
void gh_billing_free(gh_billing_t *b);

/* ---- amounts ---- */

/* Parses a USD amount sent as text, like "12.50", into whole cents of nano-USD. GH_EINVAL
 * with a message naming `field` for anything else: not a string of digits, negative, more
 * than two decimals (fractions of a cent), too large. Zero is accepted (callers check their
 * minimum). */
gh_err_t gh_billing_parse_amount(const char *text, const char *field, int64_t *nusd, char *msg,
                                 size_t msg_size);

/* Tax on `subtotal_nusd` (whole cents) at `bps` basis points, rounded half up to the cent. */
int64_t gh_billing_tax(int64_t subtotal_nusd, int bps);

/* ---- what the billing page shows ---- */

typedef struct gh_billing_overview {
    gh_billing_account_t account; /* defaults when the organization has no billing row */
    bool has_card;
    gh_payment_method_t card;
    gh_purchase_stats_t purchases;
    int64_t next_min_nusd; /* the smallest purchase allowed now (first or later) */
    bool test_mode;
    const char *provider;
} gh_billing_overview_t;

gh_err_t gh_billing_overview(gh_app_t *app, const char *org_id, gh_billing_overview_t *out);

/* The organization's lots with credit left and not expired, expiring first first. */
gh_err_t gh_billing_lots(gh_app_t *app, const char *org_id, int limit, gh_store_lot_fn fn,
                         void *ctx);

/* ---- the card on file ---- */

/* Test provider: validates the card details and makes the card the current one (the old one
 * is kept in the history). GH_EINVAL with a message for bad details. The number and CVC are
 * never stored or logged. */
gh_err_t gh_billing_card_add(gh_app_t *app, const gh_actor_t *actor, const char *number,
                             int exp_month, int exp_year, const char *cvc,
                             gh_payment_method_t *out, char *msg, size_t msg_size);

/* Makes `card` (as a provider described it) the organization's current card, recording it in
 * the audit log as done by `actor` (NULL: the system). For providers that collect cards
 * themselves (Stripe's setup flow, webhooks). */
gh_err_t gh_billing_card_set(gh_app_t *app, const gh_actor_t *actor, const char *org_id,
                             const gh_card_t *card, gh_payment_method_t *out);

/* Providers whose card form is their own (Stripe): makes sure the actor's organization has a
 * customer at the provider (created on first use and kept) and starts a card setup, whose
 * client secret the browser hands to the provider's form. The customer's email is the
 * organization's billing email, or `fallback_email` without one. GH_EINVAL with a message
 * for the test provider or without any email; GH_ETIMEOUT, GH_EUNAVAIL or GH_EINTERNAL
 * with a message when the provider fails. */
gh_err_t gh_billing_setup_start(gh_app_t *app, const gh_actor_t *actor,
                                const char *fallback_email,
                                char client_secret[GH_PAY_SECRET_MAX], char *msg,
                                size_t msg_size);

/* Finishes a card setup: asks the provider which card the setup `setup_ref` saved (it must
 * have succeeded for this organization's customer) and makes it the current card. Doing it
 * twice (or after the provider's webhook did) keeps the one card. Errors as above. */
gh_err_t gh_billing_setup_finish(gh_app_t *app, const gh_actor_t *actor, const char *setup_ref,
                                 gh_payment_method_t *out, char *msg, size_t msg_size);

/* The provider's customer id for the organization ("" when none yet), and setting it. */
gh_err_t gh_billing_customer_ref(gh_app_t *app, const char *org_id, char out[GH_PAY_REF_MAX]);
gh_err_t gh_billing_customer_ref_set(gh_app_t *app, const char *org_id, const char *ref);

/* ---- the first-purchase questions ---- */

typedef struct gh_billing_profile_in {
    const char *intended_use;
    const char *const *countries; /* ISO 3166-1 alpha-2, any case */
    size_t ncountries;
    const char *const *industries; /* names from gh_billing_industries */
    size_t nindustries;
} gh_billing_profile_in_t;

/* Validates and records the answers (they may be changed later). GH_EINVAL with a message. */
gh_err_t gh_billing_profile_set(gh_app_t *app, const gh_actor_t *actor,
                                const gh_billing_profile_in_t *in, gh_billing_account_t *out,
                                char *msg, size_t msg_size);

/* The organization's cards, oldest first, one page at a time. */
gh_err_t gh_billing_cards_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                               gh_store_payment_method_fn fn, void *ctx, bool *has_more);

/* The rest of billing, each with its contract: core/billing_ledger.h (lots, the ledger,
 * usage draws, staff grants, expiry, the ledger check), core/billing_purchases.h (purchases
 * and provider webhooks), core/billing_invoices.h (invoices and receipts) and
 * core/billing_reload.h (auto-reload). */

#endif
