/* Billing's credit lots and ledger: entries, draws, lots opened by purchases and grants,
 * usage charged in the usage writer's commits, staff grants and clawbacks, expiry, and the
 * ledger check (billing_ledger.h). */
#include "core/billing_ledger.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admission.h"
#include "core/audit.h"
#include "core/billing_int.h"
#include "core/notify.h"
#include "lib/log.h"
#include "lib/text.h"
#include "lib/utc.h"
#include "store/store.h"

#define LOTS_PER_TX 64 /* lots expired per transaction */
#define REASON_CHARS_MAX 500

/* ---- the ledger ---- */

static gh_err_t append(gh_db_t *db, const char *org_id, const char *lot_id, const char *kind,
                       int64_t amount, const char *reference, const char *reason, int64_t now)
{
    gh_ledger_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.org_id, sizeof(e.org_id), "%s", org_id);
    snprintf(e.lot_id, sizeof(e.lot_id), "%s", lot_id ? lot_id : "");
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    e.amount_nusd = amount;
    snprintf(e.reference, sizeof(e.reference), "%s", reference);
    snprintf(e.reason, sizeof(e.reason), "%s", reason ? reason : "");
    e.created_at = now;
    return gh_store_ledger_append(db, &e);
}

/* A clawback: takes up to `amount` from the organization's open lots, expiring first first,
 * with one clawback entry per lot (never past them). `*taken` receives what was taken. Inside
 * the caller's transaction. (Usage draws are the store's, gh_store_usage_charge: one
 * statement per batch on PostgreSQL.) */
static gh_err_t claw(gh_db_t *db, const char *org_id, int64_t amount, int64_t now,
                     const char *reference, const char *reason, int64_t *taken)
{
    assert(amount > 0);
    int64_t left = amount;
    gh_err_t rc = GH_OK;
    while (left > 0) {
        gh_credit_lot_t lot;
        rc = gh_store_lot_first_open(db, org_id, now, &lot);
        if (rc == GH_ENOTFOUND)
            break;
        if (rc)
            return rc;
        assert(lot.remaining_nusd > 0);
        int64_t take = left < lot.remaining_nusd ? left : lot.remaining_nusd;
        if ((rc = append(db, org_id, lot.id, "clawback", -take, reference, reason, now)) ||
            (rc = gh_store_lot_set_remaining(db, lot.id, lot.remaining_nusd - take)))
            return rc;
        left -= take;
    }
    *taken = amount - left;
    return GH_OK;
}

/* Opens a lot of `amount` (a purchase or a grant) with its entry; when usage has driven the
 * balance below zero, the new lot settles that first (two entries that cancel out in the
 * balance: the lot gives, the unallocated debt takes). Re-arms auto-reload when the balance
 * is back at its threshold. Inside the caller's transaction. */
gh_err_t gh_billing_open_lot(gh_app_t *app, gh_db_t *db, const char *org_id, const char *source,
                             const char *source_ref, int64_t amount, const char *reason,
                             int64_t now, gh_credit_lot_t *out)
{
    gh_credit_lot_t lot;
    memset(&lot, 0, sizeof(lot));
    gh_id_new(lot.id, "lot");
    snprintf(lot.org_id, sizeof(lot.org_id), "%s", org_id);
    snprintf(lot.source, sizeof(lot.source), "%s", source);
    snprintf(lot.source_ref, sizeof(lot.source_ref), "%s", source_ref);
    lot.amount_nusd = amount;
    lot.remaining_nusd = amount;
    lot.created_at = now;
    lot.expires_at = now + gh_billing_expiry_s(app->cfg);
    int64_t unallocated = 0;
    gh_err_t rc;
    if ((rc = gh_store_lot_insert(db, &lot)) ||
        (rc = append(db, org_id, lot.id, source, amount, source_ref, reason, now)) ||
        (rc = gh_store_ledger_unallocated(db, org_id, &unallocated)))
        return rc;
    assert(unallocated <= 0);
    if (unallocated < 0) {
        int64_t settle = -unallocated < amount ? -unallocated : amount;
        const char *why = "Settles usage beyond the credits there were";
        if ((rc = append(db, org_id, lot.id, "settlement", -settle, lot.id, why, now)) ||
            (rc = append(db, org_id, NULL, "settlement", settle, lot.id, why, now)))
            return rc;
        lot.remaining_nusd -= settle;
        if ((rc = gh_store_lot_set_remaining(db, lot.id, lot.remaining_nusd)))
            return rc;
    }
    if ((rc = gh_store_billing_rearm(db, org_id)))
        return rc;
    if (out)
        *out = lot;
    return GH_OK;
}

gh_err_t gh_billing_charge_usage(gh_app_t *app, gh_db_t *db, const gh_usage_charge_t *charges,
                                 size_t n)
{
    int64_t now = app->now();
    gh_usage_draw_t *draws = calloc(n ? n : 1, sizeof(*draws));
    char(*refs)[128] = calloc(n ? n : 1, sizeof(*refs));
    bool *charged = calloc(n ? n : 1, sizeof(*charged));
    bool *rules = calloc(n ? n : 1, sizeof(*rules));
    const char **ids = calloc(n ? n : 1, sizeof(*ids));
    size_t k = 0;
    gh_err_t rc = draws && refs && charged && rules && ids ? GH_OK : GH_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        if (charges[i].cost_nusd <= 0)
            continue;
        snprintf(refs[k], sizeof(refs[k]), "usage:%lld-%lld", (long long)charges[i].first_seq,
                 (long long)charges[i].last_seq);
        draws[k] = (gh_usage_draw_t){charges[i].org_id, charges[i].cost_nusd, refs[k]};
        ids[k++] = charges[i].org_id;
    }
    /* All the organizations' draws at once (one statement on PostgreSQL); in a cluster each
     * also shrinks this node's lease by what it spent (core/lease.h, I2). An organization that
     * cannot be charged (it no longer exists) does not keep the other events out: the ledger
     * check reports the difference. */
    if (!rc)
        rc = gh_store_usage_charge(db, draws, k, now,
                                   app->cfg->store_postgres ? app->cfg->cluster_node_id : NULL,
                                   gh_utc_month_key(now), charged);
    /* Spend notifications, in the same transaction as the charge (core/notify.h; a rule
     * that cannot be checked does not keep the usage out), for the organizations that have
     * rules: which those are is one read for the whole batch. */
    if (!rc)
        rc = gh_store_spend_notif_any(db, ids, k, rules);
    for (size_t i = 0; i < k && !rc; i++) {
        if (!charged[i])
            gh_log_error("billing: usage %s of %s could not be charged (no such organization)",
                         refs[i], draws[i].org_id);
        else if (rules[i])
            rc = gh_notify_check(app, db, draws[i].org_id, draws[i].cost_nusd);
    }
    free(draws);
    free(refs);
    free(charged);
    free(ids);
    free(rules);
    return rc;
}

static gh_err_t usage_charge_cb(void *ctx, gh_db_t *db, const gh_usage_charge_t *charges,
                                size_t n)
{
    return gh_billing_charge_usage(ctx, db, charges, n);
}

static void usage_committed_cb(void *ctx)
{
    gh_app_t *app = ctx;
    gh_billing_kick(app->billing);
    gh_notify_committed(app);
}

void gh_billing_usage_hook(gh_app_t *app, gh_usage_hook_t *out)
{
    out->charge = usage_charge_cb;
    out->committed = usage_committed_cb;
    out->ctx = app;
}

/* ---- staff ---- */

static gh_err_t staff_checks(gh_app_t *app, gh_db_t *db, const char *org_id, int64_t amount,
                             const char *reason_in, char reason[REASON_CHARS_MAX * 4 + 1],
                             char *msg, size_t msg_size)
{
    char a[40];
    if (amount <= 0 || amount > AMOUNT_LIMIT_NUSD) {
        snprintf(msg, msg_size, "The amount must be more than $0 and at most %s.",
                 usd(AMOUNT_LIMIT_NUSD, a));
        return GH_EINVAL;
    }
    gh_err_t rc = gh_text_clean_note(reason_in, "The reason", REASON_CHARS_MAX, reason,
                             REASON_CHARS_MAX * 4 + 1, msg, msg_size);
    if (rc)
        return rc;
    gh_org_settings_t org;
    rc = gh_store_org_settings_get(db, org_id, &org);
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "There is no organization with id \"%.60s\".", org_id);
    (void)app;
    return rc;
}

gh_err_t gh_billing_grant(gh_app_t *app, const gh_actor_t *actor, const char *org_id,
                          int64_t amount, const char *reason_in, gh_credit_lot_t *out,
                          char *msg, size_t msg_size)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    char reason[REASON_CHARS_MAX * 4 + 1], ref[GH_ID_MAX], a[40];
    gh_err_t rc = staff_checks(app, db, org_id, amount, reason_in, reason, msg, msg_size);
    if (rc || (rc = gh_store_begin(db)))
        return rc;
    gh_id_new(ref, "grant");
    int64_t now = app->now();
    gh_credit_lot_t lot;
    if ((rc = gh_billing_open_lot(app, db, org_id, "grant", ref, amount, reason, now, &lot)) ||
        (rc = gh_audit(app, db, actor, "credits.granted", "organization", org_id,
                       json_pack("{s:s, s:s, s:s, s:s}", "amount_usd",
                                 gh_money_format_usd(amount, a), "reason", reason, "lot_id", lot.id,
                                 "grant", ref))) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        return rc;
    }
    gh_admission_money_changed(app);
    if (out)
        *out = lot;
    return GH_OK;
}

gh_err_t gh_billing_clawback(gh_app_t *app, const gh_actor_t *actor, const char *org_id,
                             int64_t amount, const char *reason_in, char *msg, size_t msg_size)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    char reason[REASON_CHARS_MAX * 4 + 1], ref[GH_ID_MAX], a[40], b[40];
    gh_err_t rc = staff_checks(app, db, org_id, amount, reason_in, reason, msg, msg_size);
    if (rc || (rc = gh_store_begin(db)))
        return rc;
    gh_id_new(ref, "clawback");
    int64_t taken = 0;
    if ((rc = claw(db, org_id, amount, app->now(), ref, reason, &taken)))
        goto out_rollback;
    if (taken < amount) {
        snprintf(msg, msg_size, "The organization has only %s of credits left; claw back at most "
                                "that (asked for %s).", usd(taken, a), usd(amount, b));
        rc = GH_EINVAL;
        goto out_rollback;
    }
    if ((rc = gh_audit(app, db, actor, "credits.clawed_back", "organization", org_id,
                       json_pack("{s:s, s:s, s:s}", "amount_usd", gh_money_format_usd(amount, a),
                                 "reason", reason, "clawback", ref))) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_admission_money_changed(app);
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* ---- expiry ---- */

typedef struct {
    gh_credit_lot_t lots[LOTS_PER_TX];
    size_t n;
} lots_t;

static void collect_lot(void *ctx, const gh_credit_lot_t *lot)
{
    lots_t *l = ctx;
    if (l->n < LOTS_PER_TX)
        l->lots[l->n++] = *lot;
}

gh_err_t gh_billing_expire(gh_app_t *app, int *expired)
{
    if (expired)
        *expired = 0;
    gh_db_t *db = gh_store_db(app->store);
    lots_t *l = calloc(1, sizeof(*l));
    if (!db || !l) {
        free(l);
        return db ? GH_ENOMEM : GH_ESTORE;
    }
    gh_err_t rc;
    do {
        int64_t now = app->now();
        l->n = 0;
        if ((rc = gh_store_begin(db)))
            break;
        rc = gh_store_lots_expired(db, now, LOTS_PER_TX, collect_lot, l);
        for (size_t i = 0; i < l->n && !rc; i++) {
            const gh_credit_lot_t *lot = &l->lots[i];
            char date[16], why[64];
            gh_billing_date_utc(lot->expires_at, date);
            snprintf(why, sizeof(why), "Expired on %s", date);
            if (!(rc = append(db, lot->org_id, lot->id, "expiry", -lot->remaining_nusd, lot->id,
                              why, now)))
                rc = gh_store_lot_set_remaining(db, lot->id, 0);
        }
        if (rc || (rc = gh_store_commit(db))) {
            gh_store_rollback(db);
            break;
        }
        if (expired)
            *expired += (int)l->n;
        if (l->n)
            gh_admission_money_changed(app);
    } while (l->n == LOTS_PER_TX);
    free(l);
    return rc;
}

/* ---- the ledger check ---- */

typedef struct {
    gh_billing_check_fn fn;
    void *ctx;
    int problems;
} check_t;

static void check_org(void *ctx, const gh_ledger_sums_t *s)
{
    check_t *c = ctx;
    char line[640] = "", a[40], b[40], d[40];
    size_t n = 0;
#define PROBLEM(...)                                                                           \
    do {                                                                                       \
        if (n < sizeof(line))                                                                  \
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s", n ? "; " : "");           \
        if (n < sizeof(line))                                                                  \
            n += (size_t)snprintf(line + n, sizeof(line) - n, __VA_ARGS__);                    \
    } while (0)
    if (s->entries_nusd != s->cached_nusd)
        PROBLEM("the cached balance %s differs from the entries' sum %s", usd(s->cached_nusd, a),
                usd(s->entries_nusd, b));
    if (s->entries_nusd != s->lots_remaining_nusd + s->unallocated_nusd)
        PROBLEM("the entries' sum %s is not the lots' remaining %s plus unsettled usage %s",
                usd(s->entries_nusd, a), usd(s->lots_remaining_nusd, b),
                usd(s->unallocated_nusd, d));
    if (s->unallocated_nusd > 0)
        PROBLEM("entries with no lot add up to %s, more than zero", usd(s->unallocated_nusd, a));
    if (-s->usage_entries_nusd != s->usage_cost_nusd)
        PROBLEM("usage entries take %s but the usage events cost %s",
                usd(-s->usage_entries_nusd, a), usd(s->usage_cost_nusd, b));
    if (s->bad_lots)
        PROBLEM("%lld lots do not match their entries", (long long)s->bad_lots);
    if (s->bad_purchases)
        PROBLEM("%lld purchases do not match their lot, entry and invoice",
                (long long)s->bad_purchases);
#undef PROBLEM
    bool ok = n == 0;
    if (ok)
        snprintf(line, sizeof(line), "balance %s (lots %s, unsettled usage %s)",
                 usd(s->entries_nusd, a), usd(s->lots_remaining_nusd, b),
                 usd(s->unallocated_nusd, d));
    else
        c->problems++;
    c->fn(c->ctx, s->org_id, ok, line);
}

static void check_year(void *ctx, const gh_invoice_year_t *y)
{
    check_t *c = ctx;
    char line[200];
    bool ok = y->count == y->max_seq && y->max_seq == y->counter &&
              (y->count == 0 || y->min_seq == 1);
    if (ok)
        snprintf(line, sizeof(line), "%d: %lld invoices numbered 1 to %lld without gaps", y->year,
                 (long long)y->count, (long long)y->max_seq);
    else
        snprintf(line, sizeof(line), "%d: %lld invoices numbered %lld to %lld, counter at %lld: "
                                     "the numbering has gaps", y->year, (long long)y->count,
                 (long long)y->min_seq, (long long)y->max_seq, (long long)y->counter);
    if (!ok)
        c->problems++;
    c->fn(c->ctx, "invoices", ok, line);
}

gh_err_t gh_billing_ledger_check(gh_app_t *app, const char *org_id, gh_billing_check_fn fn,
                                 void *ctx, int *problems)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    return gh_billing_ledger_check_db(db, org_id, fn, ctx, problems);
}

gh_err_t gh_billing_ledger_check_db(gh_db_t *db, const char *org_id, gh_billing_check_fn fn,
                                    void *ctx, int *problems)
{
    check_t c = {fn, ctx, 0};
    /* Each check is one statement, so its figures are of one moment even while a server
     * writes (WAL readers see a snapshot), and it takes no write lock. */
    gh_err_t rc = gh_store_ledger_sums(db, org_id, check_org, &c);
    if (!rc && !org_id)
        rc = gh_store_invoice_years(db, check_year, &c);
    if (problems)
        *problems = c.problems;
    return rc;
}
