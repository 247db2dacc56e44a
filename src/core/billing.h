/* Billing: the card on file, buying credits, credit lots and the ledger, invoices and
 * receipts, auto-reload, staff grants, and the scheduler that expires lots, retries pending
 * purchases and reloads.
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

/* The hook the usage writer runs in each commit: draws the cost of the committed events from
 * the organizations' lots and asks for an auto-reload check afterwards. `app` must outlive
 * the usage writer. */
void gh_billing_usage_hook(gh_app_t *app, gh_usage_hook_t *out);

/* The hook's charge function: for each organization, ledger entries of kind usage drawing
 * `cost_nusd` from its open lots, expiring first first, the rest with no lot. Runs inside the
 * caller's transaction. */
gh_err_t gh_billing_charge_usage(gh_app_t *app, gh_db_t *db, const gh_usage_charge_t *charges,
                                 size_t n);

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

/* ---- staff ---- */

/* Grants `amount_nusd` of credits as a new lot, with a reason (1–500 characters). */
gh_err_t gh_billing_grant(gh_app_t *app, const gh_actor_t *actor, const char *org_id,
                          int64_t amount_nusd, const char *reason, gh_credit_lot_t *out,
                          char *msg, size_t msg_size);

/* Takes back `amount_nusd` from the organization's open lots (expiring first first), with a
 * reason. GH_EINVAL when it has less credit than that. */
gh_err_t gh_billing_clawback(gh_app_t *app, const gh_actor_t *actor, const char *org_id,
                             int64_t amount_nusd, const char *reason, char *msg,
                             size_t msg_size);

/* ---- expiry ---- */

/* Expires what is left of every lot past its expiry at app->now(): an entry of kind expiry
 * for each. `*expired` (may be NULL) receives how many lots. */
gh_err_t gh_billing_expire(gh_app_t *app, int *expired);

/* ---- invoices ---- */

/* Renders the organization's invoice as a PDF into a malloc'd buffer the caller frees;
 * `rec` receives the invoice. GH_ENOTFOUND for an unknown id. */
gh_err_t gh_billing_invoice_pdf(gh_app_t *app, const char *org_id, const char *invoice_id,
                                gh_invoice_rec_t *rec, unsigned char **pdf, size_t *pdf_len);

/* ---- the ledger check ---- */

/* Called once per organization checked, and once with org_id "invoices" for the numbering:
 * `ok` and a line a person can read ("balance $12.50, 3 lots" or what differs). */
typedef void (*gh_billing_check_fn)(void *ctx, const char *org_id, bool ok, const char *detail);

/* Recomputes every balance from the ledger entries and compares with the lots, the cached
 * balance, the usage events, the purchases and the invoice numbering. `org_id` NULL checks
 * every organization. `*problems` receives how many differences were found. */
gh_err_t gh_billing_ledger_check(gh_app_t *app, const char *org_id, gh_billing_check_fn fn,
                                 void *ctx, int *problems);

/* Reads for the billing pages, one page at a time: the organization's cards (oldest first),
 * purchases and invoices; and one invoice by id (GH_ENOTFOUND when the organization has no
 * such invoice). */
gh_err_t gh_billing_cards_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                               gh_store_payment_method_fn fn, void *ctx, bool *has_more);
gh_err_t gh_billing_purchases_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                                   gh_store_purchase_fn fn, void *ctx, bool *has_more);
gh_err_t gh_billing_invoices_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                                  gh_store_invoice_fn fn, void *ctx, bool *has_more);
gh_err_t gh_billing_invoice_get(gh_app_t *app, const char *org_id, const char *id,
                                gh_invoice_rec_t *out);

#endif
