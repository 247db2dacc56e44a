/* Buying credits and the provider's webhook events (billing_purchases.h). See billing.h for
 * the model; the order of operations that makes purchases crash-safe is in
 * gh_billing_purchase and gh_billing_charge_and_resolve below. */
#include "core/billing_purchases.h"

#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/admission.h"
#include "core/audit.h"
#include "core/billing_int.h"
#include "core/outbox.h"
#include "lib/log.h"
#include "store/store.h"

#define PENDING_PER_PASS 32 /* pending purchases retried per scheduler pass */

/* ---- purchases ---- */

/* What resolving a purchase did, for what follows its commit (mail, the log). */
typedef struct {
    bool changed;    /* the purchase was still open and is now resolved (or attempted) */
    bool credited;   /* succeeded: a lot, an entry and an invoice were added */
    bool reload_off; /* a declined reload turned auto-reload off */
    bool revived;    /* a purchase given up as unconfirmed turned out to be paid */
    gh_purchase_t p;
    gh_invoice_rec_t inv;
} resolved_t;

/* Records a provider's outcome for purchase `id`, as `actor` (NULL: the system), in a
 * transaction (a savepoint inside the caller's). With `revive`, a succeeded outcome also
 * settles a purchase given up as unconfirmed. Nothing is mailed here: see resolved_after. */
static gh_err_t resolve_tx(gh_app_t *app, gh_db_t *db, const char *id,
                           const gh_pay_result_t *res, const gh_actor_t *actor, bool revive,
                           resolved_t *r)
{
    assert(res->status == GH_PAY_SUCCEEDED || res->status == GH_PAY_DECLINED ||
           res->status == GH_PAY_PENDING);
    memset(r, 0, sizeof(*r));
    int64_t now = app->now();
    gh_purchase_t *p = &r->p;
    gh_payment_method_t pm;
    gh_actor_t sys;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    if ((rc = gh_store_purchase_get(db, NULL, id, p)))
        goto out_rollback;
    r->revived = revive && res->status == GH_PAY_SUCCEEDED && !strcmp(p->status, "declined") &&
                 !strcmp(p->decline_code, GH_BILLING_UNCONFIRMED);
    if (strcmp(p->status, "pending") && !r->revived) {
        /* Resolved before (a replayed webhook, a retry that raced): nothing to do. */
        gh_store_rollback(db);
        return GH_OK;
    }
    if (!actor) {
        gh_billing_system_actor(&sys, p->org_id, "billing");
        actor = &sys;
    }
    p->attempts++;
    p->updated_at = now;
    if (res->ref[0])
        snprintf(p->provider_ref, sizeof(p->provider_ref), "%s", res->ref);
    char amount[GH_MONEY_TEXT_MAX];
    json_t *details =
        json_pack("{s:s, s:s, s:s}", "kind", p->kind, "amount_usd",
                  gh_money_format_usd(p->amount_nusd, amount), "provider_ref", p->provider_ref);
    bool unconfirmed = res->status == GH_PAY_DECLINED &&
                       !strcmp(res->decline_code, GH_BILLING_UNCONFIRMED);
    switch (res->status) {
    case GH_PAY_SUCCEEDED:
        snprintf(p->status, sizeof(p->status), "succeeded");
        p->resolved_at = now;
        p->decline_code[0] = p->message[0] = '\0';
        if ((rc = gh_store_purchase_update(db, p)) ||
            (rc = gh_store_payment_method_get(db, p->org_id, p->payment_method_id, &pm)) ||
            (rc = gh_billing_open_lot(app, db, p->org_id, "purchase", p->id, p->amount_nusd, NULL,
                                      now, NULL)) ||
            (rc = gh_billing_issue_invoice(app, db, p, &pm, now, &r->inv))) {
            json_decref(details);
            goto out_rollback;
        }
        json_object_set_new(details, "invoice", json_string(r->inv.number));
        if (r->revived)
            json_object_set_new(details, "after", json_string(GH_BILLING_UNCONFIRMED));
        rc = gh_audit(app, db, actor, "purchase.succeeded", "purchase", p->id, details);
        r->credited = true;
        break;
    case GH_PAY_DECLINED:
        snprintf(p->status, sizeof(p->status), "declined");
        p->resolved_at = now;
        snprintf(p->decline_code, sizeof(p->decline_code), "%s",
                 res->decline_code[0] ? res->decline_code : "card_declined");
        if (unconfirmed)
            snprintf(p->message, sizeof(p->message), "%s", res->message);
        else
            snprintf(p->message, sizeof(p->message),
                     "%s Nothing was charged and no credits were added. (decline code: %s)",
                     res->message[0] ? res->message : "Your card was declined.",
                     p->decline_code);
        json_object_set_new(details, "decline_code", json_string(p->decline_code));
        if ((rc = gh_store_purchase_update(db, p))) {
            json_decref(details);
            goto out_rollback;
        }
        if ((rc = gh_audit(app, db, actor, unconfirmed ? "purchase.unconfirmed"
                                                       : "purchase.declined",
                           "purchase", p->id, details)))
            goto out_rollback;
        if (!strcmp(p->kind, "auto_reload")) {
            /* A declined reload turns auto-reload off, with the reason, until someone turns it
             * back on. */
            gh_billing_account_t a;
            if ((rc = gh_billing_load_account(db, p->org_id, &a)) ||
                (rc = gh_store_billing_auto_reload_put(
                     db, p->org_id, false, a.auto_reload_threshold_nusd,
                     a.auto_reload_amount_nusd, false, p->message, now)) ||
                (rc = gh_audit(app, db, actor, "auto_reload.disabled", "organization",
                               p->org_id, json_pack("{s:s, s:s}", "purchase_id", p->id,
                                                    "reason", p->message))))
                goto out_rollback;
            r->reload_off = true;
        }
        break;
    case GH_PAY_PENDING:
        json_decref(details);
        snprintf(p->message, sizeof(p->message), "%s",
                 res->message[0] ? res->message
                                 : "The payment provider has not confirmed the payment yet.");
        rc = gh_store_purchase_update(db, p);
        break;
    }
    /* The mail it reports, in the same transaction (core/outbox.h): the receipt, the notice
     * that auto-reload is off. */
    if (!rc && r->credited) {
        gh_billing_account_t a;
        if ((rc = gh_billing_load_account(db, p->org_id, &a)) == GH_OK)
            rc = gh_billing_send_receipt(app, db, p, &r->inv, a.balance_nusd);
    }
    if (!rc && r->reload_off)
        rc = gh_billing_mail_reload_off(app, db, p->org_id, p->message);
    if (rc || (rc = gh_store_commit(db)))
        goto out_rollback;
    r->changed = true;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    memset(r, 0, sizeof(*r));
    return rc;
}

/* What follows a resolution once it is committed: the receipt, the log, the mail saying
 * auto-reload is off. */
static void resolved_after(gh_app_t *app, const resolved_t *r)
{
    const gh_purchase_t *p = &r->p;
    if (r->credited) {
        gh_admission_money_changed(app); /* the credit (and perhaps a tier) admits at once */
        char amount[GH_MONEY_TEXT_MAX];
        if (r->revived)
            gh_log_warn("billing: purchase %s, given up as unconfirmed, was paid after all: "
                        "credited now", p->id);
        gh_log_info("billing: purchase %s credited $%s to %s (invoice %s)", p->id,
                    gh_money_format_usd(p->amount_nusd, amount), p->org_id, r->inv.number);
    }
    if (r->changed && !strcmp(p->status, "declined") &&
        !strcmp(p->decline_code, GH_BILLING_UNCONFIRMED))
        gh_log_warn("billing: purchase %s gave up: not confirmed by the payment provider within "
                    "%d hours", p->id, GH_BILLING_GIVE_UP_S / 3600);
    if (r->reload_off) {
        gh_log_warn("billing: auto-reload of %s turned off: %s", p->org_id, p->message);
    }
    gh_outbox_kick(app); /* the receipt or the notice queued with the resolution */
}

/* Records a provider's outcome for purchase `id`, as `actor` (NULL: the system). */
static gh_err_t resolve_as(gh_app_t *app, const char *id, const gh_pay_result_t *res,
                           const gh_actor_t *actor, gh_purchase_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    resolved_t *r = malloc(sizeof(*r));
    if (!r)
        return GH_ENOMEM;
    gh_err_t rc = resolve_tx(app, db, id, res, actor, false, r);
    if (!rc)
        resolved_after(app, r);
    free(r);
    if (!rc && out)
        rc = gh_store_purchase_get(db, NULL, id, out);
    return rc;
}

gh_err_t gh_billing_purchase_resolve(gh_app_t *app, const char *purchase_id,
                                     const gh_pay_result_t *result, gh_purchase_t *out)
{
    return resolve_as(app, purchase_id, result, NULL, out);
}

/* Test only: the server dies between a successful charge and its credit (see billing.h). */
static void maybe_crash(gh_app_t *app, const gh_purchase_t *p, const gh_pay_result_t *res)
{
    const char *v = getenv(GH_BILLING_CRASH_ENV);
    if (res->status != GH_PAY_SUCCEEDED || !v || strcmp(v, "1") ||
        strcmp(app->pay->ops->name, "test"))
        return;
    gh_log_warn("billing: %s is set: exiting between the charge of %s and its credit",
                GH_BILLING_CRASH_ENV, p->id);
    _exit(75);
}

/* Charges `p`, which the calling thread has claimed, with its card and records the outcome;
 * releases the claim. Never inside a transaction: the provider may take its time. */
gh_err_t gh_billing_charge_and_resolve(gh_app_t *app, const gh_purchase_t *p,
                                       const gh_actor_t *actor, gh_purchase_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    gh_payment_method_t pm;
    gh_billing_account_t account;
    gh_err_t rc = !db ? GH_ESTORE : gh_store_payment_method_get(db, p->org_id,
                                                                p->payment_method_id, &pm);
    if (!rc)
        rc = gh_billing_load_account(db, p->org_id, &account);
    if (rc) {
        gh_billing_release(app->billing, p->id);
        return rc;
    }
    gh_card_t card;
    memset(&card, 0, sizeof(card));
    snprintf(card.brand, sizeof(card.brand), "%s", pm.brand);
    snprintf(card.last4, sizeof(card.last4), "%s", pm.last4);
    card.exp_month = pm.exp_month;
    card.exp_year = pm.exp_year;
    snprintf(card.ref, sizeof(card.ref), "%s", pm.provider_ref);
    gh_pay_charge_t req = {
        .idempotency_key = p->id,
        .purchase_id = p->id,
        .org_id = p->org_id,
        .amount_nusd = p->total_nusd,
        .description = "Gatehouse credits",
        .customer_ref = account.customer_ref,
        .card = &card,
        .off_session = !strcmp(p->kind, "auto_reload"),
    };
    gh_pay_result_t res;
    memset(&res, 0, sizeof(res));
    gh_err_t prc = app->pay->ops->charge(app->pay, &req, &res);
    if (prc) {
        /* The request could not be made: the provider may or may not have the charge, so it
         * stays pending and is asked again with the same key. */
        memset(&res, 0, sizeof(res));
        res.status = GH_PAY_PENDING;
        snprintf(res.message, sizeof(res.message),
                 "The payment provider could not be reached (%s); the payment will be retried.",
                 gh_err_str(prc));
    }
    maybe_crash(app, p, &res);
    rc = resolve_as(app, p->id, &res, actor, out);
    gh_billing_release(app->billing, p->id);
    if (rc)
        gh_log_error("billing: the outcome of purchase %s could not be recorded (%s); it stays "
                     "pending and is retried", p->id, gh_err_name(rc));
    return rc;
}

/* The answer for a purchase as it now is: declined is GH_EBILLING with its message. */
static gh_err_t outcome(const gh_purchase_t *p, char *msg, size_t msg_size)
{
    if (strcmp(p->status, "declined"))
        return GH_OK;
    snprintf(msg, msg_size, "%s", p->message);
    return GH_EBILLING;
}

/* Whether pending `p` may still be charged again with its idempotency key: only within
 * GH_BILLING_GIVE_UP_S of its creation (the provider forgets keys after a day). */
static bool may_charge_again(gh_app_t *app, const gh_purchase_t *p)
{
    return app->now() - p->created_at < GH_BILLING_GIVE_UP_S;
}

/* Gives up pending purchase `id` (created GH_BILLING_GIVE_UP_S ago or more): declined as
 * unconfirmed, never charged again. A succeeded webhook may still credit it. */
static gh_err_t give_up(gh_app_t *app, const char *id)
{
    gh_pay_result_t res;
    memset(&res, 0, sizeof(res));
    res.status = GH_PAY_DECLINED;
    snprintf(res.decline_code, sizeof(res.decline_code), GH_BILLING_UNCONFIRMED);
    snprintf(res.message, sizeof(res.message),
             "The payment provider did not confirm this payment within %d hours, so no credits "
             "were added and it will not be charged again. If the card was charged, the "
             "credits are added as soon as the provider confirms it. (decline code: %s)",
             GH_BILLING_GIVE_UP_S / 3600, GH_BILLING_UNCONFIRMED);
    return resolve_as(app, id, &res, NULL, NULL);
}

/* A request with an idempotency key that already made `p`. */
static gh_err_t replay(gh_app_t *app, const gh_actor_t *actor, const gh_purchase_t *p,
                       int64_t amount, gh_purchase_t *out, char *msg, size_t msg_size)
{
    if (p->amount_nusd != amount) {
        char was[40];
        snprintf(msg, msg_size, "This idempotency-key was already used for a purchase of %s. "
                                "Use a new key for a new purchase.", usd(p->amount_nusd, was));
        return GH_ECONFLICT;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if (!strcmp(p->status, "pending")) {
        /* Being charged by another request (a double click): wait for its outcome. Not being
         * charged (it timed out earlier, or the process restarted): this request is a retry. */
        int64_t wait_ms = app->cfg->stripe_timeout_ms + 5000;
        gh_purchase_t now;
        gh_err_t rc;
        if (!gh_billing_wait_settled(app->billing, p->id, wait_ms))
            gh_log_warn("billing: purchase %s still being charged after %lld ms", p->id,
                        (long long)wait_ms);
        else if ((rc = gh_store_purchase_get(db, p->org_id, p->id, &now)))
            return rc;
        else if (!strcmp(now.status, "pending") && may_charge_again(app, &now) &&
                 gh_billing_claim(app->billing, p->id))
            (void)gh_billing_charge_and_resolve(app, &now, actor, NULL);
    }
    gh_err_t rc = gh_store_purchase_get(db, p->org_id, p->id, out);
    return rc ? rc : outcome(out, msg, msg_size);
}

static bool key_ok(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return false;
    return true;
}

/* Fills a new pending purchase of `amount` for `org`. */
void gh_billing_new_purchase(gh_app_t *app, gh_purchase_t *p, const char *kind,
                             const gh_org_settings_t *org, const gh_payment_method_t *pm,
                             int64_t amount, const gh_actor_t *actor, int64_t now)
{
    memset(p, 0, sizeof(*p));
    gh_id_new(p->id, "pur");
    snprintf(p->org_id, sizeof(p->org_id), "%s", org->id);
    snprintf(p->kind, sizeof(p->kind), "%s", kind);
    snprintf(p->status, sizeof(p->status), "pending");
    p->amount_nusd = amount;
    gh_billing_tax_for(app->cfg, org, amount, &p->tax_nusd, p->tax_label);
    p->total_nusd = p->amount_nusd + p->tax_nusd;
    snprintf(p->payment_method_id, sizeof(p->payment_method_id), "%s", pm->id);
    snprintf(p->provider, sizeof(p->provider), "%s", app->pay->ops->name);
    snprintf(p->created_by_type, sizeof(p->created_by_type), "%s", gh_actor_type(actor));
    snprintf(p->created_by_id, sizeof(p->created_by_id), "%s", actor->id);
    p->created_at = p->updated_at = now;
}

gh_err_t gh_billing_purchase(gh_app_t *app, const gh_actor_t *actor, int64_t amount,
                             const char *key, gh_purchase_t *out, char *msg, size_t msg_size)
{
    assert(app->pay && app->billing);
    const gh_config_t *cfg = app->cfg;
    char a[40], b[40];
    if (!key_ok(key)) {
        snprintf(msg, msg_size, "Send an idempotency-key header of 1 to 255 printable characters "
                                "(a UUID is a good choice), so that a retried request never "
                                "buys twice.");
        return GH_EINVAL;
    }
    if (amount <= 0 || amount % CENT_NUSD) {
        snprintf(msg, msg_size, "amount_usd must be a positive amount in whole cents; the "
                                "minimum purchase is %s.", usd(cfg->min_purchase_nusd, a));
        return GH_EINVAL;
    }
    if (amount > cfg->max_purchase_nusd) {
        snprintf(msg, msg_size, "One purchase may be at most %s; %s is more.",
                 usd(cfg->max_purchase_nusd, a), usd(amount, b));
        return GH_EINVAL;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    int64_t now = app->now();
    gh_purchase_t p;
    gh_billing_account_t account;
    gh_payment_method_t pm;
    gh_purchase_stats_t stats;
    gh_org_settings_t org;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    rc = gh_store_purchase_by_key(db, actor->org_id, key, &p);
    if (rc == GH_OK) {
        gh_store_rollback(db);
        return replay(app, actor, &p, amount, out, msg, msg_size);
    }
    if (rc != GH_ENOTFOUND || (rc = gh_billing_load_account(db, actor->org_id, &account)))
        goto out_rollback;
    if (!account.profile_answered_at) {
        snprintf(msg, msg_size, "Before the first purchase, answer a few questions: POST "
                                "/v1/organizations/billing/profile with intended_use, countries "
                                "and regulated_industries.");
        rc = GH_EINVAL;
        goto out_rollback;
    }
    rc = gh_store_payment_method_current(db, actor->org_id, &pm);
    if (rc == GH_ENOTFOUND) {
        snprintf(msg, msg_size, "There is no card on file: add one with POST "
                                "/v1/organizations/billing/payment_method first.");
        rc = GH_EINVAL;
    }
    if (rc || (rc = gh_store_purchase_stats(db, actor->org_id, &stats)) ||
        (rc = gh_store_org_settings_get(db, actor->org_id, &org)))
        goto out_rollback;
    int64_t min = stats.succeeded ? cfg->min_purchase_nusd : cfg->first_purchase_min_nusd;
    if (amount < min) {
        snprintf(msg, msg_size, "The minimum %spurchase is %s; %s is less.",
                 stats.succeeded ? "" : "first ", usd(min, a), usd(amount, b));
        rc = GH_EINVAL;
        goto out_rollback;
    }
    gh_billing_new_purchase(app, &p, "manual", &org, &pm, amount, actor, now);
    snprintf(p.idempotency_key, sizeof(p.idempotency_key), "%s", key);
    if ((rc = gh_store_purchase_insert(db, &p)) ||
        (rc = gh_audit(app, db, actor, "purchase.created", "purchase", p.id,
                       json_pack("{s:s, s:s, s:s}", "kind", p.kind, "amount_usd",
                                 gh_money_format_usd(p.amount_nusd, a), "card", pm.last4))))
        goto out_rollback;
    /* Claimed before the purchase is visible, so a double click that finds it waits for this
     * request's outcome instead of charging it itself. */
    if (!gh_billing_claim(app->billing, p.id)) {
        snprintf(msg, msg_size, "Too many purchases are in progress. Try again in a moment.");
        rc = GH_EUNAVAIL;
        goto out_rollback;
    }
    if ((rc = gh_store_commit(db))) {
        gh_billing_release(app->billing, p.id);
        goto out_rollback;
    }
    rc = gh_billing_charge_and_resolve(app, &p, actor, out);
    if (rc) {
        /* Charged or not, the purchase is recorded as pending and will be resolved. */
        rc = gh_store_purchase_get(db, p.org_id, p.id, out);
        if (rc)
            return rc;
    }
    return outcome(out, msg, msg_size);
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_billing_purchase_get(gh_app_t *app, const char *org_id, const char *id,
                                 gh_purchase_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if (!gh_id_valid(id, "pur"))
        return GH_ENOTFOUND;
    return gh_store_purchase_get(db, org_id, id, out);
}

typedef struct {
    gh_purchase_t *items;
    size_t n, cap;
} purchases_t;

static void collect_purchase(void *ctx, const gh_purchase_t *p)
{
    purchases_t *l = ctx;
    if (l->n < l->cap)
        l->items[l->n++] = *p;
}

gh_err_t gh_billing_retry_pending(gh_app_t *app, int *retried)
{
    gh_billing_t *b = app->billing;
    assert(b && app->pay);
    if (retried)
        *retried = 0;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    int64_t now = app->now();
    /* Due: last tried pending_retry_s ago, or by a previous run of the process. */
    int64_t due = now - app->cfg->pending_retry_s;
    if (b->started_at - 1 > due)
        due = b->started_at - 1;
    purchases_t l = {.items = calloc(PENDING_PER_PASS, sizeof(gh_purchase_t)),
                     .cap = PENDING_PER_PASS};
    if (!l.items)
        return GH_ENOMEM;
    gh_err_t rc = gh_store_purchases_pending(db, due, PENDING_PER_PASS, collect_purchase, &l);
    for (size_t i = 0; i < l.n && !rc; i++) {
        if (!gh_billing_claim(b, l.items[i].id))
            continue; /* a request is charging it right now */
        if (!may_charge_again(app, &l.items[i])) {
            gh_err_t grc = give_up(app, l.items[i].id);
            gh_billing_release(b, l.items[i].id);
            if (grc)
                gh_log_error("billing: could not give up purchase %s (%s); tried again later",
                             l.items[i].id, gh_err_name(grc));
            continue;
        }
        gh_log_info("billing: retrying pending purchase %s (attempt %d)", l.items[i].id,
                    l.items[i].attempts + 1);
        pthread_mutex_lock(&b->lock);
        b->stats.retries++;
        pthread_mutex_unlock(&b->lock);
        (void)gh_billing_charge_and_resolve(app, &l.items[i], NULL, NULL);
        if (retried)
            (*retried)++;
    }
    free(l.items);
    return rc;
}

/* ---- provider webhooks ---- */

gh_err_t gh_billing_event_seen(gh_app_t *app, const char *id, bool *seen)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_webhook_event_exists(db, id, seen) : GH_ESTORE;
}

#define WHY(...)                                                                               \
    do {                                                                                       \
        if (why && why_size)                                                                   \
            snprintf(why, why_size, __VA_ARGS__);                                              \
    } while (0)

/* The purchase part of gh_billing_event_apply, inside its transaction. */
static gh_err_t event_purchase(gh_app_t *app, gh_db_t *db, const gh_billing_event_t *ev,
                               resolved_t *r, gh_billing_event_outcome_t *outcome, char *why,
                               size_t why_size)
{
    gh_purchase_t p;
    gh_err_t rc = gh_id_valid(ev->purchase_id ? ev->purchase_id : "", "pur")
                      ? gh_store_purchase_get(db, NULL, ev->purchase_id, &p)
                      : GH_ENOTFOUND;
    if (rc == GH_ENOTFOUND) {
        WHY("no purchase \"%.64s\" here", ev->purchase_id ? ev->purchase_id : "");
        return GH_OK;
    }
    if (rc)
        return rc;
    char a[40], b[40];
    const gh_pay_result_t *res = ev->result;
    if (strcmp(p.provider, ev->provider)) {
        WHY("purchase %s was made with provider %s", p.id, p.provider);
    } else if (ev->org_id && ev->org_id[0] && strcmp(ev->org_id, p.org_id)) {
        WHY("purchase %s belongs to another organization than the event says", p.id);
    } else if (ev->amount_nusd && ev->amount_nusd != p.total_nusd) {
        WHY("the event's amount %s differs from purchase %s's total %s", usd(ev->amount_nusd, a),
            p.id, usd(p.total_nusd, b));
    } else if (p.provider_ref[0] && res->ref[0] && strcmp(p.provider_ref, res->ref)) {
        WHY("purchase %s was charged as %s, not %s", p.id, p.provider_ref, res->ref);
    } else {
        if ((rc = resolve_tx(app, db, p.id, res, NULL, true, r)))
            return rc;
        if (r->changed) {
            *outcome = GH_BILLING_EVENT_APPLIED;
            WHY("purchase %s is now %s", p.id, r->p.status);
        } else {
            WHY("purchase %s was already %s", p.id, p.status);
        }
    }
    return GH_OK;
}

gh_err_t gh_billing_event_apply(gh_app_t *app, const gh_billing_event_t *ev,
                                gh_billing_event_outcome_t *outcome, char *why,
                                size_t why_size)
{
    *outcome = GH_BILLING_EVENT_IGNORED;
    WHY("nothing to do");
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    resolved_t *r = calloc(1, sizeof(*r));
    if (!r)
        return GH_ENOMEM;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        goto out;
    rc = gh_store_webhook_event_insert(db, ev->id, ev->provider, ev->type, app->now());
    if (rc == GH_ECONFLICT) {
        gh_store_rollback(db);
        *outcome = GH_BILLING_EVENT_DUPLICATE;
        WHY("event %s was handled before", ev->id);
        rc = GH_OK;
        goto out;
    }
    if (rc)
        goto out_rollback;
    if (ev->result) {
        rc = event_purchase(app, db, ev, r, outcome, why, why_size);
    } else if (ev->card && ev->org_id && ev->org_id[0]) {
        /* A card the organization ever had is not added again: a late event for a card
         * since replaced must not bring it back. */
        gh_payment_method_t pm;
        rc = gh_store_payment_method_by_ref(db, ev->org_id, ev->card->ref, &pm);
        if (rc == GH_OK) {
            WHY("card %s is already known as %s", ev->card->ref, pm.id);
        } else if (rc == GH_ENOTFOUND &&
                   !(rc = gh_billing_card_set(app, NULL, ev->org_id, ev->card, &pm))) {
            *outcome = GH_BILLING_EVENT_APPLIED;
            WHY("card %s saved as %s", ev->card->ref, pm.id);
        }
    }
    if (rc || (rc = gh_store_commit(db)))
        goto out_rollback;
    resolved_after(app, r);
    goto out;
out_rollback:
    gh_store_rollback(db);
    *outcome = GH_BILLING_EVENT_IGNORED;
out:
    free(r);
    return rc;
}

#undef WHY

gh_err_t gh_billing_purchases_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                                   gh_store_purchase_fn fn, void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_purchases_list(db, org_id, page, fn, ctx, has_more) : GH_ESTORE;
}
