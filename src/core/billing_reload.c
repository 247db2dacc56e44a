/* Auto-reload (billing_reload.h): the settings, starting the reloads that are due, each
 * charged once. */
#include "core/billing_reload.h"

#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/audit.h"
#include "core/billing_int.h"
#include "core/outbox.h"
#include "lib/log.h"
#include "store/store.h"

#define RELOADS_PER_PASS 64 /* auto-reloads started per scheduler pass */

/* ---- auto-reload ---- */

gh_err_t gh_billing_auto_reload_set(gh_app_t *app, const gh_actor_t *actor, bool enabled,
                                    const int64_t *threshold_in, const int64_t *amount_in,
                                    gh_billing_account_t *out, char *msg, size_t msg_size)
{
    const gh_config_t *cfg = app->cfg;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    char a[40], b[40];
    gh_billing_account_t acc;
    gh_payment_method_t pm;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    if ((rc = gh_billing_load_account(db, actor->org_id, &acc)))
        goto out_rollback;
    int64_t threshold = threshold_in ? *threshold_in
                        : acc.auto_reload_configured ? acc.auto_reload_threshold_nusd
                                                     : -1;
    int64_t amount = amount_in ? *amount_in
                     : acc.auto_reload_configured ? acc.auto_reload_amount_nusd
                                                  : -1;
    rc = GH_EINVAL;
    if (enabled && (threshold < 0 || amount < 0)) {
        snprintf(msg, msg_size, "To turn auto-reload on, send threshold_usd (reload when the "
                                "balance falls below it) and amount_usd (how much to buy).");
        goto out_rollback;
    }
    if ((threshold >= 0) != (amount >= 0)) {
        snprintf(msg, msg_size, "Send threshold_usd and amount_usd together the first time.");
        goto out_rollback;
    }
    if (threshold > AMOUNT_LIMIT_NUSD) {
        snprintf(msg, msg_size, "threshold_usd may be at most %s.", usd(AMOUNT_LIMIT_NUSD, a));
        goto out_rollback;
    }
    if (amount >= 0 && (amount < cfg->min_purchase_nusd || amount > cfg->max_purchase_nusd)) {
        snprintf(msg, msg_size, "amount_usd must be from %s (the minimum purchase) to %s.",
                 usd(cfg->min_purchase_nusd, a), usd(cfg->max_purchase_nusd, b));
        goto out_rollback;
    }
    if (enabled && !acc.profile_answered_at) {
        snprintf(msg, msg_size, "Before auto-reload can buy credits, answer the first-purchase "
                                "questions: POST /v1/organizations/billing/profile.");
        goto out_rollback;
    }
    rc = enabled ? gh_store_payment_method_current(db, actor->org_id, &pm) : GH_OK;
    if (rc == GH_ENOTFOUND) {
        snprintf(msg, msg_size, "Add a card before turning auto-reload on: POST "
                                "/v1/organizations/billing/payment_method.");
        rc = GH_EINVAL;
    }
    if (rc)
        goto out_rollback;
    json_t *details = json_object();
    char was[GH_MONEY_TEXT_MAX], now_[GH_MONEY_TEXT_MAX];
    bool had = acc.auto_reload_configured;
    if (acc.auto_reload_enabled != enabled)
        gh_audit_change(details, "enabled", acc.auto_reload_enabled ? "true" : "false",
                        enabled ? "true" : "false");
    if (threshold >= 0 && (!had || threshold != acc.auto_reload_threshold_nusd))
        gh_audit_change(details, "threshold_usd",
                        had ? gh_money_format_usd(acc.auto_reload_threshold_nusd, was) : "",
                        gh_money_format_usd(threshold, now_));
    if (amount >= 0 && (!had || amount != acc.auto_reload_amount_nusd))
        gh_audit_change(details, "amount_usd",
                        had ? gh_money_format_usd(acc.auto_reload_amount_nusd, was) : "",
                        gh_money_format_usd(amount, now_));
    bool changed = json_object_size(details) > 0;
    /* Turning it on arms it (when the balance is already below the threshold, the next check
     * reloads once); changing the amounts of a reload in progress does not. Any change made by
     * a person clears the reason Gatehouse turned it off. */
    bool armed = !enabled || !acc.auto_reload_enabled || acc.auto_reload_armed;
    const char *reason = enabled || changed ? NULL : acc.auto_reload_disabled_reason;
    rc = gh_store_billing_auto_reload_put(db, actor->org_id, enabled, threshold, amount, armed,
                                          reason, app->now());
    if (!rc && changed)
        rc = gh_audit(app, db, actor, "auto_reload.updated", "organization", actor->org_id,
                      details);
    else
        json_decref(details);
    if (rc || (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_billing_kick(app->billing);
    return gh_store_billing_account_get(db, actor->org_id, out);
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* Starts the reload of `org_id` if it is still due, and charges it; `*started` tells
 * whether it did. */
static gh_err_t start_reload(gh_app_t *app, const char *org_id, bool *started)
{
    *started = false;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    int64_t now = app->now();
    gh_actor_t sys;
    gh_billing_system_actor(&sys, org_id, "auto-reload");
    gh_billing_account_t acc;
    gh_payment_method_t pm;
    gh_org_settings_t org;
    gh_purchase_t p;
    char a[40];
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    if ((rc = gh_billing_load_account(db, org_id, &acc)))
        goto out_rollback;
    if (!acc.auto_reload_enabled || !acc.auto_reload_armed ||
        acc.balance_nusd >= acc.auto_reload_threshold_nusd) {
        gh_store_rollback(db);
        return GH_OK;
    }
    rc = gh_store_payment_method_current(db, org_id, &pm);
    if (rc == GH_ENOTFOUND) {
        static const char why[] = "There is no card on file to charge.";
        if ((rc = gh_store_billing_auto_reload_put(db, org_id, false,
                                                   acc.auto_reload_threshold_nusd,
                                                   acc.auto_reload_amount_nusd, false, why,
                                                   now)) ||
            (rc = gh_audit(app, db, &sys, "auto_reload.disabled", "organization", org_id,
                           json_pack("{s:s}", "reason", why))) ||
            (rc = gh_billing_mail_reload_off(app, db, org_id, why)) || (rc = gh_store_commit(db)))
            goto out_rollback;
        gh_outbox_kick(app);
        return GH_OK;
    }
    if (rc || (rc = gh_store_org_settings_get(db, org_id, &org)))
        goto out_rollback;
    gh_billing_new_purchase(app, &p, "auto_reload", &org, &pm, acc.auto_reload_amount_nusd, &sys,
                            now);
    snprintf(p.idempotency_key, sizeof(p.idempotency_key), "auto_reload:%s", p.id);
    rc = gh_store_purchase_insert(db, &p);
    if (rc == GH_ECONFLICT) {
        /* A reload is already pending: never a second one. */
        gh_store_rollback(db);
        return GH_OK;
    }
    if (rc || (rc = gh_store_billing_disarm(db, org_id, now)) ||
        (rc = gh_audit(app, db, &sys, "purchase.created", "purchase", p.id,
                       json_pack("{s:s, s:s, s:s}", "kind", p.kind, "amount_usd",
                                 gh_money_format_usd(p.amount_nusd, a), "card", pm.last4))))
        goto out_rollback;
    if (!gh_billing_claim(app->billing, p.id)) {
        rc = GH_EUNAVAIL;
        goto out_rollback;
    }
    if ((rc = gh_store_commit(db))) {
        gh_billing_release(app->billing, p.id);
        goto out_rollback;
    }
    gh_log_info("billing: auto-reload of $%s for %s (balance below the threshold)",
                gh_money_format_usd(p.amount_nusd, a), org_id);
    *started = true;
    pthread_mutex_lock(&app->billing->lock);
    app->billing->stats.reloads++;
    pthread_mutex_unlock(&app->billing->lock);
    return gh_billing_charge_and_resolve(app, &p, &sys, NULL);
out_rollback:
    gh_store_rollback(db);
    return rc;
}

typedef struct {
    char ids[RELOADS_PER_PASS][GH_ID_MAX];
    size_t n;
} org_ids_t;

static void collect_org(void *ctx, const char *org_id)
{
    org_ids_t *l = ctx;
    if (l->n < RELOADS_PER_PASS)
        snprintf(l->ids[l->n++], GH_ID_MAX, "%s", org_id);
}

gh_err_t gh_billing_auto_reload_check(gh_app_t *app, int *started)
{
    assert(app->billing && app->pay);
    if (started)
        *started = 0;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    org_ids_t *l = calloc(1, sizeof(*l));
    if (!l)
        return GH_ENOMEM;
    gh_err_t rc = gh_store_billing_reload_due(db, collect_org, l);
    for (size_t i = 0; i < l->n && !rc; i++) {
        bool one = false;
        rc = start_reload(app, l->ids[i], &one);
        if (one && started)
            (*started)++;
    }
    free(l);
    return rc;
}
