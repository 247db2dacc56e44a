/* Billing's credit lots and ledger (core/billing_ledger.c): usage drawn from the lots in the
 * usage writer's commits, staff grants and clawbacks, the expiry of lots, and the ledger
 * check that recomputes every balance. Every change of a balance is an append-only ledger
 * entry written in the transaction of the change it records. */
#ifndef GH_CORE_BILLING_LEDGER_H
#define GH_CORE_BILLING_LEDGER_H

#include "core/billing.h"

/* The hook the usage writer runs in each commit: draws the cost of the committed events from
 * the organizations' lots and asks for an auto-reload check afterwards. `app` must outlive
 * the usage writer. */
void gh_billing_usage_hook(gh_app_t *app, gh_usage_hook_t *out);

/* The hook's charge function: for each organization, ledger entries of kind usage drawing
 * `cost_nusd` from its open lots, expiring first first, the rest with no lot. Runs inside the
 * caller's transaction. */
gh_err_t gh_billing_charge_usage(gh_app_t *app, gh_db_t *db, const gh_usage_charge_t *charges,
                                 size_t n);

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

/* ---- the ledger check ---- */

/* Called once per organization checked, and once with org_id "invoices" for the numbering:
 * `ok` and a line a person can read ("balance $12.50, 3 lots" or what differs). */
typedef void (*gh_billing_check_fn)(void *ctx, const char *org_id, bool ok, const char *detail);

/* Recomputes every balance from the ledger entries and compares with the lots, the cached
 * balance, the usage events, the purchases and the invoice numbering. `org_id` NULL checks
 * every organization. `*problems` receives how many differences were found. */
gh_err_t gh_billing_ledger_check(gh_app_t *app, const char *org_id, gh_billing_check_fn fn,
                                 void *ctx, int *problems);

/* The same check on the connection `db`, whatever transaction it is in: `gatehouse store
 * copy` runs it on the copy before COMMIT. */
gh_err_t gh_billing_ledger_check_db(gh_db_t *db, const char *org_id, gh_billing_check_fn fn,
                                    void *ctx, int *problems);

#endif
