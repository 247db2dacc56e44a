/* Store functions for billing (SQLite backend): billing accounts, cards, purchases, credit
 * lots, the ledger, invoices and webhook events. See migrations/0005_billing.sql. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

/* ---- billing accounts ---- */

#define ACCOUNT_COLS                                                                           \
    "org_id, balance_nusd, customer_ref, auto_reload_enabled, "                               \
    "auto_reload_threshold_nusd IS NOT NULL, coalesce(auto_reload_threshold_nusd, 0), "       \
    "coalesce(auto_reload_amount_nusd, 0), auto_reload_armed, auto_reload_disabled_reason, "  \
    "intended_use, countries, regulated_industries, coalesce(profile_answered_at, 0), "       \
    "updated_at"

static void account_row(sqlite3_stmt *st, void *out)
{
    gh_billing_account_t *a = out;
    memset(a, 0, sizeof(*a));
    COPY(st, 0, a->org_id);
    a->balance_nusd = sqlite3_column_int64(st, 1);
    COPY(st, 2, a->customer_ref);
    a->auto_reload_enabled = sqlite3_column_int(st, 3);
    a->auto_reload_configured = sqlite3_column_int(st, 4);
    a->auto_reload_threshold_nusd = sqlite3_column_int64(st, 5);
    a->auto_reload_amount_nusd = sqlite3_column_int64(st, 6);
    a->auto_reload_armed = sqlite3_column_int(st, 7);
    COPY(st, 8, a->auto_reload_disabled_reason);
    COPY(st, 9, a->intended_use);
    COPY(st, 10, a->countries);
    COPY(st, 11, a->regulated_industries);
    a->profile_answered_at = sqlite3_column_int64(st, 12);
    a->updated_at = sqlite3_column_int64(st, 13);
}

gh_err_t gh_sqlite_billing_account_get(gh_db_t *db, const char *org_id, gh_billing_account_t *out)
{
    static const char sql[] = "SELECT " ACCOUNT_COLS " FROM billing_accounts WHERE org_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    return gh_sqlite_one(db, st, account_row, out);
}

gh_err_t gh_sqlite_billing_account_ensure(gh_db_t *db, const char *org_id, int64_t now)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO billing_accounts (org_id, updated_at) VALUES (?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    sqlite3_bind_int64(st, 2, now);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_billing_profile_put(gh_db_t *db, const char *org_id, const char *intended_use,
                                       const char *countries_json, const char *industries_json,
                                       int64_t now)
{
    static const char sql[] =
        "UPDATE billing_accounts SET intended_use = ?, countries = ?, regulated_industries = ?, "
        "profile_answered_at = ?, updated_at = ? WHERE org_id = ?";
    gh_err_t rc = gh_sqlite_billing_account_ensure(db, org_id, now);
    if (rc)
        return rc;
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, intended_use);
    gh_sqlite_bind_str(st, 2, countries_json);
    gh_sqlite_bind_str(st, 3, industries_json);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now);
    gh_sqlite_bind_str(st, 6, org_id);
    return gh_sqlite_exec_one(db, st);
}

gh_err_t gh_sqlite_billing_auto_reload_put(gh_db_t *db, const char *org_id, bool enabled,
                                           int64_t threshold_nusd, int64_t amount_nusd, bool armed,
                                           const char *reason, int64_t now)
{
    static const char sql[] =
        "UPDATE billing_accounts SET auto_reload_enabled = ?, auto_reload_threshold_nusd = ?, "
        "auto_reload_amount_nusd = ?, auto_reload_armed = ?, auto_reload_disabled_reason = ?, "
        "updated_at = ? WHERE org_id = ?";
    gh_err_t rc = gh_sqlite_billing_account_ensure(db, org_id, now);
    if (rc)
        return rc;
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int(st, 1, enabled);
    if (threshold_nusd >= 0)
        sqlite3_bind_int64(st, 2, threshold_nusd);
    else
        sqlite3_bind_null(st, 2);
    if (amount_nusd >= 0)
        sqlite3_bind_int64(st, 3, amount_nusd);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int(st, 4, armed);
    gh_sqlite_bind_text(st, 5, reason);
    sqlite3_bind_int64(st, 6, now);
    gh_sqlite_bind_str(st, 7, org_id);
    return gh_sqlite_exec_one(db, st);
}

gh_err_t gh_sqlite_billing_disarm(gh_db_t *db, const char *org_id, int64_t now)
{
    static const char sql[] =
        "UPDATE billing_accounts SET auto_reload_armed = 0, updated_at = ? WHERE org_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now);
    gh_sqlite_bind_str(st, 2, org_id);
    return gh_sqlite_exec_one(db, st);
}

gh_err_t gh_sqlite_billing_rearm(gh_db_t *db, const char *org_id)
{
    static const char sql[] =
        "UPDATE billing_accounts SET auto_reload_armed = 1 WHERE org_id = ? AND "
        "auto_reload_enabled = 1 AND auto_reload_armed = 0 AND "
        "balance_nusd >= auto_reload_threshold_nusd";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_billing_customer_ref_put(gh_db_t *db, const char *org_id, const char *ref,
                                            int64_t now)
{
    static const char sql[] =
        "UPDATE billing_accounts SET customer_ref = ?, updated_at = ? WHERE org_id = ?";
    gh_err_t rc = gh_sqlite_billing_account_ensure(db, org_id, now);
    if (rc)
        return rc;
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_text(st, 1, ref);
    sqlite3_bind_int64(st, 2, now);
    gh_sqlite_bind_str(st, 3, org_id);
    return gh_sqlite_exec_one(db, st);
}

/* Calls `fn` with column 0 of each row as text. */
static gh_err_t each_text(gh_db_t *db, sqlite3_stmt *st, gh_store_org_id_fn fn, void *ctx)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_billing_reload_due(gh_db_t *db, gh_store_org_id_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT org_id FROM billing_accounts WHERE auto_reload_enabled = 1 AND "
        "auto_reload_armed = 1 AND balance_nusd < auto_reload_threshold_nusd ORDER BY org_id";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    return each_text(db, st, fn, ctx);
}

gh_err_t gh_sqlite_billing_contacts(gh_db_t *db, const char *org_id, gh_store_org_id_fn fn,
                                    void *ctx)
{
    static const char sql[] =
        "SELECT a.email FROM memberships m JOIN accounts a ON a.id = m.account_id "
        "WHERE m.org_id = ? AND m.role IN ('admin', 'billing') ORDER BY m.created_at, a.id";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    return each_text(db, st, fn, ctx);
}

/* ---- cards ---- */

#define PM_COLS                                                                                \
    "t.id, t.org_id, t.provider, t.provider_ref, t.brand, t.last4, t.exp_month, t.exp_year, " \
    "t.created_at, coalesce(t.replaced_at, 0)"

static void pm_row(sqlite3_stmt *st, void *out)
{
    gh_payment_method_t *pm = out;
    memset(pm, 0, sizeof(*pm));
    COPY(st, 0, pm->id);
    COPY(st, 1, pm->org_id);
    COPY(st, 2, pm->provider);
    COPY(st, 3, pm->provider_ref);
    COPY(st, 4, pm->brand);
    COPY(st, 5, pm->last4);
    pm->exp_month = sqlite3_column_int(st, 6);
    pm->exp_year = sqlite3_column_int(st, 7);
    pm->created_at = sqlite3_column_int64(st, 8);
    pm->replaced_at = sqlite3_column_int64(st, 9);
}

gh_err_t gh_sqlite_payment_method_current(gh_db_t *db, const char *org_id,
                                          gh_payment_method_t *out)
{
    static const char sql[] = "SELECT " PM_COLS " FROM payment_methods t "
                              "WHERE t.org_id = ? AND t.replaced_at IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    return gh_sqlite_one(db, st, pm_row, out);
}

gh_err_t gh_sqlite_payment_method_get(gh_db_t *db, const char *org_id, const char *id,
                                      gh_payment_method_t *out)
{
    static const char sql[] =
        "SELECT " PM_COLS " FROM payment_methods t WHERE t.org_id = ? AND t.id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    gh_sqlite_bind_str(st, 2, id);
    return gh_sqlite_one(db, st, pm_row, out);
}

gh_err_t gh_sqlite_payment_method_by_ref(gh_db_t *db, const char *org_id,
                                         const char *provider_ref, gh_payment_method_t *out)
{
    static const char sql[] = "SELECT " PM_COLS " FROM payment_methods t WHERE t.org_id = ? "
                              "AND t.provider_ref = ? ORDER BY t.created_at DESC, t.rowid DESC "
                              "LIMIT 1";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    gh_sqlite_bind_str(st, 2, provider_ref);
    return gh_sqlite_one(db, st, pm_row, out);
}

gh_err_t gh_sqlite_payment_method_add(gh_db_t *db, const gh_payment_method_t *pm,
                                      char *replaced_id)
{
    static const char find[] =
        "SELECT id FROM payment_methods WHERE org_id = ? AND replaced_at IS NULL";
    static const char replace[] =
        "UPDATE payment_methods SET replaced_at = ? WHERE org_id = ? AND replaced_at IS NULL";
    static const char ins[] =
        "INSERT INTO payment_methods (id, org_id, provider, provider_ref, brand, last4, "
        "exp_month, exp_year, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    if (replaced_id)
        replaced_id[0] = '\0';
    gh_err_t rc = gh_sqlite_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *st = gh_sqlite_stmt(db, find);
    if (!st)
        goto out_store;
    gh_sqlite_bind_str(st, 1, pm->org_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && replaced_id)
        gh_sqlite_col_text(st, 0, replaced_id, GH_ID_MAX);
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = gh_sqlite_step_err(db, step);
        goto out_rollback;
    }
    if (!(st = gh_sqlite_stmt(db, replace)))
        goto out_store;
    sqlite3_bind_int64(st, 1, pm->created_at);
    gh_sqlite_bind_str(st, 2, pm->org_id);
    if ((rc = gh_sqlite_exec(db, st)))
        goto out_rollback;
    if (!(st = gh_sqlite_stmt(db, ins)))
        goto out_store;
    int i = 1;
    gh_sqlite_bind_str(st, i++, pm->id);
    gh_sqlite_bind_str(st, i++, pm->org_id);
    gh_sqlite_bind_str(st, i++, pm->provider);
    gh_sqlite_bind_text(st, i++, pm->provider_ref);
    gh_sqlite_bind_str(st, i++, pm->brand);
    gh_sqlite_bind_str(st, i++, pm->last4);
    sqlite3_bind_int(st, i++, pm->exp_month);
    sqlite3_bind_int(st, i++, pm->exp_year);
    sqlite3_bind_int64(st, i++, pm->created_at);
    if ((rc = gh_sqlite_exec(db, st)))
        goto out_rollback;
    return gh_sqlite_commit(db);
out_store:
    rc = GH_ESTORE;
out_rollback:
    gh_sqlite_rollback(db);
    return rc;
}

typedef struct {
    gh_store_payment_method_fn fn;
    void *ctx;
} pm_list_t;

static void pm_list_row(void *p, sqlite3_stmt *st)
{
    pm_list_t *l = p;
    gh_payment_method_t pm;
    pm_row(st, &pm);
    l->fn(l->ctx, &pm);
}

gh_err_t gh_sqlite_payment_methods_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                                        gh_store_payment_method_fn fn, void *ctx, bool *has_more)
{
    gh_sqlite_arg_t args[1] = {GH_ARG_TEXT(org_id)};
    pm_list_t l = {fn, ctx};
    return gh_sqlite_page(db, PM_COLS, "FROM payment_methods t WHERE t.org_id = ?", "t.id", args,
                          1, page, true, pm_list_row, &l, has_more);
}

/* ---- purchases ---- */

#define PURCHASE_COLS                                                                          \
    "t.id, t.org_id, t.kind, t.status, t.amount_nusd, t.tax_nusd, t.total_nusd, t.tax_label, " \
    "t.idempotency_key, t.payment_method_id, t.provider, t.provider_ref, t.decline_code, "    \
    "t.message, t.attempts, t.created_by_type, t.created_by_id, t.created_at, t.updated_at, " \
    "coalesce(t.resolved_at, 0), (SELECT i.id FROM invoices i WHERE i.purchase_id = t.id)"

static void purchase_row(sqlite3_stmt *st, void *out)
{
    gh_purchase_t *p = out;
    memset(p, 0, sizeof(*p));
    int i = 0;
    COPY(st, i++, p->id);
    COPY(st, i++, p->org_id);
    COPY(st, i++, p->kind);
    COPY(st, i++, p->status);
    p->amount_nusd = sqlite3_column_int64(st, i++);
    p->tax_nusd = sqlite3_column_int64(st, i++);
    p->total_nusd = sqlite3_column_int64(st, i++);
    COPY(st, i++, p->tax_label);
    COPY(st, i++, p->idempotency_key);
    COPY(st, i++, p->payment_method_id);
    COPY(st, i++, p->provider);
    COPY(st, i++, p->provider_ref);
    COPY(st, i++, p->decline_code);
    COPY(st, i++, p->message);
    p->attempts = sqlite3_column_int(st, i++);
    COPY(st, i++, p->created_by_type);
    COPY(st, i++, p->created_by_id);
    p->created_at = sqlite3_column_int64(st, i++);
    p->updated_at = sqlite3_column_int64(st, i++);
    p->resolved_at = sqlite3_column_int64(st, i++);
    COPY(st, i++, p->invoice_id);
}

gh_err_t gh_sqlite_purchase_insert(gh_db_t *db, const gh_purchase_t *p)
{
    static const char sql[] =
        "INSERT INTO purchases (id, org_id, kind, status, amount_nusd, tax_nusd, total_nusd, "
        "tax_label, idempotency_key, payment_method_id, provider, provider_ref, decline_code, "
        "message, attempts, created_by_type, created_by_id, created_at, updated_at, resolved_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int i = 1;
    gh_sqlite_bind_str(st, i++, p->id);
    gh_sqlite_bind_str(st, i++, p->org_id);
    gh_sqlite_bind_str(st, i++, p->kind);
    gh_sqlite_bind_str(st, i++, p->status);
    sqlite3_bind_int64(st, i++, p->amount_nusd);
    sqlite3_bind_int64(st, i++, p->tax_nusd);
    sqlite3_bind_int64(st, i++, p->total_nusd);
    gh_sqlite_bind_str(st, i++, p->tax_label);
    gh_sqlite_bind_str(st, i++, p->idempotency_key);
    gh_sqlite_bind_str(st, i++, p->payment_method_id);
    gh_sqlite_bind_str(st, i++, p->provider);
    gh_sqlite_bind_text(st, i++, p->provider_ref);
    gh_sqlite_bind_text(st, i++, p->decline_code);
    gh_sqlite_bind_text(st, i++, p->message);
    sqlite3_bind_int(st, i++, p->attempts);
    gh_sqlite_bind_str(st, i++, p->created_by_type);
    gh_sqlite_bind_str(st, i++, p->created_by_id);
    sqlite3_bind_int64(st, i++, p->created_at);
    sqlite3_bind_int64(st, i++, p->updated_at);
    if (p->resolved_at)
        sqlite3_bind_int64(st, i++, p->resolved_at);
    else
        sqlite3_bind_null(st, i++);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_purchase_get(gh_db_t *db, const char *org_id, const char *id,
                                gh_purchase_t *out)
{
    static const char in_org[] =
        "SELECT " PURCHASE_COLS " FROM purchases t WHERE t.id = ? AND t.org_id = ?";
    static const char any[] = "SELECT " PURCHASE_COLS " FROM purchases t WHERE t.id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, org_id ? in_org : any);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, id);
    if (org_id)
        gh_sqlite_bind_str(st, 2, org_id);
    return gh_sqlite_one(db, st, purchase_row, out);
}

gh_err_t gh_sqlite_purchase_by_key(gh_db_t *db, const char *org_id, const char *key,
                                   gh_purchase_t *out)
{
    static const char sql[] = "SELECT " PURCHASE_COLS " FROM purchases t "
                              "WHERE t.org_id = ? AND t.idempotency_key = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    gh_sqlite_bind_str(st, 2, key);
    return gh_sqlite_one(db, st, purchase_row, out);
}

gh_err_t gh_sqlite_purchase_update(gh_db_t *db, const gh_purchase_t *p)
{
    static const char sql[] =
        "UPDATE purchases SET status = ?, provider_ref = ?, decline_code = ?, message = ?, "
        "attempts = ?, updated_at = ?, resolved_at = ? WHERE id = ? AND (status = 'pending' OR "
        "(status = 'declined' AND decline_code = 'unconfirmed'))";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int i = 1;
    gh_sqlite_bind_str(st, i++, p->status);
    gh_sqlite_bind_text(st, i++, p->provider_ref);
    gh_sqlite_bind_text(st, i++, p->decline_code);
    gh_sqlite_bind_text(st, i++, p->message);
    sqlite3_bind_int(st, i++, p->attempts);
    sqlite3_bind_int64(st, i++, p->updated_at);
    if (p->resolved_at)
        sqlite3_bind_int64(st, i++, p->resolved_at);
    else
        sqlite3_bind_null(st, i++);
    gh_sqlite_bind_str(st, i++, p->id);
    gh_err_t rc = gh_sqlite_exec_one(db, st);
    return rc == GH_ENOTFOUND ? GH_ECONFLICT : rc;
}

typedef struct {
    gh_store_purchase_fn fn;
    void *ctx;
} purchase_list_t;

static void purchase_list_row(void *p, sqlite3_stmt *st)
{
    purchase_list_t *l = p;
    gh_purchase_t pur;
    purchase_row(st, &pur);
    l->fn(l->ctx, &pur);
}

gh_err_t gh_sqlite_purchases_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                                  gh_store_purchase_fn fn, void *ctx, bool *has_more)
{
    gh_sqlite_arg_t args[1] = {GH_ARG_TEXT(org_id)};
    purchase_list_t l = {fn, ctx};
    return gh_sqlite_page(db, PURCHASE_COLS, "FROM purchases t WHERE t.org_id = ?", "t.id", args,
                          1, page, true, purchase_list_row, &l, has_more);
}

gh_err_t gh_sqlite_purchases_pending(gh_db_t *db, int64_t updated_before, int limit,
                                     gh_store_purchase_fn fn, void *ctx)
{
    static const char sql[] = "SELECT " PURCHASE_COLS " FROM purchases t "
                              "WHERE t.status = 'pending' AND t.updated_at <= ? "
                              "ORDER BY t.updated_at, t.rowid LIMIT ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, updated_before);
    sqlite3_bind_int(st, 2, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_purchase_t p;
        purchase_row(st, &p);
        fn(ctx, &p);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

static void stats_row(sqlite3_stmt *st, void *out)
{
    gh_purchase_stats_t *s = out;
    s->succeeded = sqlite3_column_int64(st, 0);
    s->succeeded_nusd = sqlite3_column_int64(st, 1);
    s->pending = sqlite3_column_int64(st, 2);
}

gh_err_t gh_sqlite_purchase_stats(gh_db_t *db, const char *org_id, gh_purchase_stats_t *out)
{
    static const char sql[] =
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), "
        "coalesce(sum(amount_nusd) FILTER (WHERE status = 'succeeded'), 0), "
        "count(*) FILTER (WHERE status = 'pending') FROM purchases WHERE org_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    memset(out, 0, sizeof(*out));
    return gh_sqlite_one(db, st, stats_row, out);
}

/* ---- credit lots ---- */

#define LOT_COLS                                                                               \
    "id, org_id, source, source_ref, amount_nusd, remaining_nusd, expires_at, created_at"

static void lot_row(sqlite3_stmt *st, void *out)
{
    gh_credit_lot_t *l = out;
    memset(l, 0, sizeof(*l));
    COPY(st, 0, l->id);
    COPY(st, 1, l->org_id);
    COPY(st, 2, l->source);
    COPY(st, 3, l->source_ref);
    l->amount_nusd = sqlite3_column_int64(st, 4);
    l->remaining_nusd = sqlite3_column_int64(st, 5);
    l->expires_at = sqlite3_column_int64(st, 6);
    l->created_at = sqlite3_column_int64(st, 7);
}

gh_err_t gh_sqlite_lot_insert(gh_db_t *db, const gh_credit_lot_t *l)
{
    static const char sql[] = "INSERT INTO credit_lots (" LOT_COLS ") "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, l->id);
    gh_sqlite_bind_str(st, 2, l->org_id);
    gh_sqlite_bind_str(st, 3, l->source);
    gh_sqlite_bind_str(st, 4, l->source_ref);
    sqlite3_bind_int64(st, 5, l->amount_nusd);
    sqlite3_bind_int64(st, 6, l->remaining_nusd);
    sqlite3_bind_int64(st, 7, l->expires_at);
    sqlite3_bind_int64(st, 8, l->created_at);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_lot_set_remaining(gh_db_t *db, const char *lot_id, int64_t remaining_nusd)
{
    static const char sql[] = "UPDATE credit_lots SET remaining_nusd = ? WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, remaining_nusd);
    gh_sqlite_bind_str(st, 2, lot_id);
    return gh_sqlite_exec_one(db, st);
}

gh_err_t gh_sqlite_lot_first_open(gh_db_t *db, const char *org_id, int64_t now,
                                  gh_credit_lot_t *out)
{
    static const char sql[] = "SELECT " LOT_COLS " FROM credit_lots "
                              "WHERE org_id = ? AND remaining_nusd > 0 AND expires_at > ? "
                              "ORDER BY expires_at, rowid LIMIT 1";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    sqlite3_bind_int64(st, 2, now);
    return gh_sqlite_one(db, st, lot_row, out);
}

static gh_err_t each_lot(gh_db_t *db, sqlite3_stmt *st, gh_store_lot_fn fn, void *ctx)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_credit_lot_t l;
        lot_row(st, &l);
        fn(ctx, &l);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_lots_open(gh_db_t *db, const char *org_id, int64_t now, int limit,
                             gh_store_lot_fn fn, void *ctx)
{
    static const char sql[] = "SELECT " LOT_COLS " FROM credit_lots "
                              "WHERE org_id = ? AND remaining_nusd > 0 AND expires_at > ? "
                              "ORDER BY expires_at, rowid LIMIT ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int(st, 3, limit);
    return each_lot(db, st, fn, ctx);
}

gh_err_t gh_sqlite_lots_expired(gh_db_t *db, int64_t now, int limit, gh_store_lot_fn fn,
                                void *ctx)
{
    static const char sql[] = "SELECT " LOT_COLS " FROM credit_lots "
                              "WHERE remaining_nusd > 0 AND expires_at <= ? "
                              "ORDER BY expires_at, rowid LIMIT ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int(st, 2, limit);
    return each_lot(db, st, fn, ctx);
}

/* ---- the ledger ---- */

gh_err_t gh_sqlite_ledger_append(gh_db_t *db, const gh_ledger_entry_t *e)
{
    static const char ins[] =
        "INSERT INTO ledger_entries (org_id, lot_id, kind, amount_nusd, reference, reason, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
    static const char balance[] =
        "INSERT INTO billing_accounts (org_id, balance_nusd, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (org_id) DO UPDATE SET balance_nusd = balance_nusd + excluded.balance_nusd";
    sqlite3_stmt *st = gh_sqlite_stmt(db, ins);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, e->org_id);
    gh_sqlite_bind_text(st, 2, e->lot_id);
    gh_sqlite_bind_str(st, 3, e->kind);
    sqlite3_bind_int64(st, 4, e->amount_nusd);
    gh_sqlite_bind_str(st, 5, e->reference);
    gh_sqlite_bind_text(st, 6, e->reason);
    sqlite3_bind_int64(st, 7, e->created_at);
    gh_err_t rc = gh_sqlite_exec(db, st);
    if (rc)
        return rc;
    if (!(st = gh_sqlite_stmt(db, balance)))
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, e->org_id);
    sqlite3_bind_int64(st, 2, e->amount_nusd);
    sqlite3_bind_int64(st, 3, e->created_at);
    return gh_sqlite_exec(db, st);
}

/* One organization's draw (gh_store_usage_charge): from its open lots, expiring first first,
 * then what no lot covers in one entry with no lot. */
static gh_err_t draw_usage(gh_db_t *db, const gh_usage_draw_t *d, int64_t now)
{
    gh_ledger_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.org_id, sizeof(e.org_id), "%s", d->org_id);
    snprintf(e.kind, sizeof(e.kind), "usage");
    snprintf(e.reference, sizeof(e.reference), "%s", d->reference);
    e.created_at = now;
    int64_t left = d->cost_nusd;
    while (left > 0) {
        gh_credit_lot_t lot;
        gh_err_t rc = gh_sqlite_lot_first_open(db, d->org_id, now, &lot);
        if (rc == GH_ENOTFOUND)
            break;
        int64_t take = left < lot.remaining_nusd ? left : lot.remaining_nusd;
        snprintf(e.lot_id, sizeof(e.lot_id), "%s", lot.id);
        e.amount_nusd = -take;
        if (rc || (rc = gh_sqlite_ledger_append(db, &e)) ||
            (rc = gh_sqlite_lot_set_remaining(db, lot.id, lot.remaining_nusd - take)))
            return rc;
        left -= take;
    }
    if (left == 0)
        return GH_OK;
    e.lot_id[0] = '\0';
    e.amount_nusd = -left;
    return gh_sqlite_ledger_append(db, &e);
}

gh_err_t gh_sqlite_usage_charge(gh_db_t *db, const gh_usage_draw_t *draws, size_t n,
                                int64_t now, const char *settle_node, int32_t month,
                                bool *charged)
{
    (void)settle_node, (void)month; /* no leases on SQLite: a single node */
    for (size_t i = 0; i < n; i++) {
        assert(draws[i].cost_nusd > 0);
        /* Each organization in a savepoint: one that does not exist must not keep the others'
         * usage out. */
        gh_err_t rc = gh_sqlite_begin(db);
        if (!rc)
            rc = draw_usage(db, &draws[i], now);
        if (!rc)
            rc = gh_sqlite_commit(db);
        charged[i] = rc == GH_OK;
        if (rc) {
            gh_sqlite_rollback(db);
            if (rc != GH_ECONFLICT)
                return rc;
        }
    }
    return GH_OK;
}

static void int64_row(sqlite3_stmt *st, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(st, 0);
}

gh_err_t gh_sqlite_ledger_unallocated(gh_db_t *db, const char *org_id, int64_t *sum_nusd)
{
    static const char sql[] = "SELECT coalesce(sum(amount_nusd), 0) FROM ledger_entries "
                              "WHERE org_id = ? AND lot_id IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    *sum_nusd = 0;
    return gh_sqlite_one(db, st, int64_row, sum_nusd);
}

/* The check recomputes every figure with one aggregate pass per table (no per-organization
 * scans of usage_events, which has no organization index). */
#define SUMS_SQL(org_filter)                                                                   \
    "WITH start AS (SELECT coalesce((SELECT value FROM billing_meta "                          \
    "                 WHERE name = 'usage_seq_start'), 0) AS seq), "                           \
    "ent AS MATERIALIZED (SELECT org_id, sum(amount_nusd) AS total, "                          \
    "  sum(CASE WHEN lot_id IS NULL THEN amount_nusd ELSE 0 END) AS unalloc, "                 \
    "  sum(CASE WHEN kind = 'usage' THEN amount_nusd ELSE 0 END) AS usage "                    \
    "  FROM ledger_entries GROUP BY org_id), "                                                 \
    "lots AS MATERIALIZED (SELECT org_id, sum(remaining_nusd) AS remaining "                   \
    "  FROM credit_lots GROUP BY org_id), "                                                    \
    "cost AS MATERIALIZED (SELECT org_id, sum(cost_nusd) AS cost FROM usage_events "           \
    "  WHERE journal_seq > (SELECT seq FROM start) GROUP BY org_id), "                         \
    "lot_ent AS MATERIALIZED (SELECT lot_id, sum(amount_nusd) AS total, "                      \
    "  count(*) FILTER (WHERE kind IN ('purchase', 'grant')) AS opened, "                      \
    "  coalesce(sum(amount_nusd) FILTER (WHERE kind IN ('purchase', 'grant')), 0) AS opening " \
    "  FROM ledger_entries WHERE lot_id IS NOT NULL GROUP BY lot_id), "                        \
    "bad_lots AS MATERIALIZED (SELECT l.org_id, count(*) AS n FROM credit_lots l "             \
    "  LEFT JOIN lot_ent e ON e.lot_id = l.id "                                                \
    "  WHERE coalesce(e.total, 0) <> l.remaining_nusd OR coalesce(e.opened, 0) <> 1 "          \
    "     OR e.opening <> l.amount_nusd GROUP BY l.org_id), "                                  \
    "p_lot AS MATERIALIZED (SELECT source_ref AS pid, count(*) AS n, sum(amount_nusd) AS amt " \
    "  FROM credit_lots WHERE source = 'purchase' GROUP BY source_ref), "                      \
    "p_ent AS MATERIALIZED (SELECT reference AS pid, count(*) AS n, sum(amount_nusd) AS amt "  \
    "  FROM ledger_entries WHERE kind = 'purchase' GROUP BY reference), "                      \
    "p_inv AS MATERIALIZED (SELECT purchase_id AS pid, count(*) AS n, sum(subtotal_nusd) AS amt " \
    "  FROM invoices GROUP BY purchase_id), "                                                  \
    "bad_p AS MATERIALIZED (SELECT p.org_id, count(*) AS n FROM purchases p "                  \
    "  LEFT JOIN p_lot ON p_lot.pid = p.id LEFT JOIN p_ent ON p_ent.pid = p.id "               \
    "  LEFT JOIN p_inv ON p_inv.pid = p.id "                                                   \
    "  WHERE CASE WHEN p.status = 'succeeded' THEN NOT ("                                      \
    "     coalesce(p_lot.n, 0) = 1 AND p_lot.amt = p.amount_nusd AND "                         \
    "     coalesce(p_ent.n, 0) = 1 AND p_ent.amt = p.amount_nusd AND "                         \
    "     coalesce(p_inv.n, 0) = 1 AND p_inv.amt = p.amount_nusd) "                            \
    "  ELSE coalesce(p_lot.n, 0) + coalesce(p_ent.n, 0) + coalesce(p_inv.n, 0) > 0 END "       \
    "  GROUP BY p.org_id), "                                                                   \
    "orgs AS (SELECT org_id FROM billing_accounts UNION SELECT org_id FROM ent "               \
    "  UNION SELECT org_id FROM lots UNION SELECT org_id FROM cost WHERE cost <> 0 "           \
    "  UNION SELECT org_id FROM bad_p) "                                                       \
    "SELECT o.org_id, coalesce(ent.total, 0), coalesce(b.balance_nusd, 0), "                   \
    "  coalesce(lots.remaining, 0), coalesce(ent.unalloc, 0), coalesce(ent.usage, 0), "        \
    "  coalesce(cost.cost, 0), coalesce(bad_lots.n, 0), coalesce(bad_p.n, 0) "                 \
    "FROM orgs o LEFT JOIN ent ON ent.org_id = o.org_id "                                      \
    "LEFT JOIN billing_accounts b ON b.org_id = o.org_id "                                     \
    "LEFT JOIN lots ON lots.org_id = o.org_id LEFT JOIN cost ON cost.org_id = o.org_id "       \
    "LEFT JOIN bad_lots ON bad_lots.org_id = o.org_id "                                        \
    "LEFT JOIN bad_p ON bad_p.org_id = o.org_id " org_filter " ORDER BY o.org_id"

gh_err_t gh_sqlite_ledger_sums(gh_db_t *db, const char *org_id, gh_store_ledger_sums_fn fn,
                               void *ctx)
{
    static const char all[] = SUMS_SQL("");
    static const char one[] = SUMS_SQL("WHERE o.org_id = ?");
    sqlite3_stmt *st = gh_sqlite_stmt(db, org_id ? one : all);
    if (!st)
        return GH_ESTORE;
    if (org_id)
        gh_sqlite_bind_str(st, 1, org_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_ledger_sums_t s;
        memset(&s, 0, sizeof(s));
        COPY(st, 0, s.org_id);
        s.entries_nusd = sqlite3_column_int64(st, 1);
        s.cached_nusd = sqlite3_column_int64(st, 2);
        s.lots_remaining_nusd = sqlite3_column_int64(st, 3);
        s.unallocated_nusd = sqlite3_column_int64(st, 4);
        s.usage_entries_nusd = sqlite3_column_int64(st, 5);
        s.usage_cost_nusd = sqlite3_column_int64(st, 6);
        s.bad_lots = sqlite3_column_int64(st, 7);
        s.bad_purchases = sqlite3_column_int64(st, 8);
        fn(ctx, &s);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_invoice_years(gh_db_t *db, gh_store_invoice_year_fn fn, void *ctx)
{
    static const char sql[] =
        "WITH y AS (SELECT year FROM invoice_counters UNION SELECT year FROM invoices) "
        "SELECT y.year, (SELECT count(*) FROM invoices i WHERE i.year = y.year), "
        "(SELECT coalesce(min(seq), 0) FROM invoices i WHERE i.year = y.year), "
        "(SELECT coalesce(max(seq), 0) FROM invoices i WHERE i.year = y.year), "
        "coalesce((SELECT last_seq FROM invoice_counters c WHERE c.year = y.year), 0) "
        "FROM y ORDER BY y.year";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_invoice_year_t y = {
            .year = sqlite3_column_int(st, 0),
            .count = sqlite3_column_int64(st, 1),
            .min_seq = sqlite3_column_int64(st, 2),
            .max_seq = sqlite3_column_int64(st, 3),
            .counter = sqlite3_column_int64(st, 4),
        };
        fn(ctx, &y);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

/* ---- invoices ---- */

gh_err_t gh_sqlite_invoice_next_seq(gh_db_t *db, int year, int64_t *seq)
{
    static const char sql[] =
        "INSERT INTO invoice_counters (year, last_seq) VALUES (?, 1) "
        "ON CONFLICT (year) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int(st, 1, year);
    *seq = 0;
    return gh_sqlite_one(db, st, int64_row, seq);
}

#define PARTY_COLS(p)                                                                          \
    "t." p "_name, t." p "_line1, t." p "_line2, t." p "_city, t." p "_postal_code, t." p      \
    "_state, t." p "_country, t." p "_vat_id, t." p "_email"

#define INVOICE_COLS                                                                           \
    "t.id, t.org_id, t.purchase_id, t.number, t.year, t.seq, t.issued_at, t.currency, "       \
    "t.description, t.subtotal_nusd, t.tax_nusd, t.total_nusd, t.tax_label, t.note, "         \
    "t.payment, t.test_mode, " PARTY_COLS("seller") ", " PARTY_COLS("buyer")

static int party_row(sqlite3_stmt *st, int i, gh_invoice_party_rec_t *p)
{
    COPY(st, i++, p->name);
    COPY(st, i++, p->line1);
    COPY(st, i++, p->line2);
    COPY(st, i++, p->city);
    COPY(st, i++, p->postal_code);
    COPY(st, i++, p->state);
    COPY(st, i++, p->country);
    COPY(st, i++, p->vat_id);
    COPY(st, i++, p->email);
    return i;
}

static void invoice_row(sqlite3_stmt *st, void *out)
{
    gh_invoice_rec_t *v = out;
    memset(v, 0, sizeof(*v));
    int i = 0;
    COPY(st, i++, v->id);
    COPY(st, i++, v->org_id);
    COPY(st, i++, v->purchase_id);
    COPY(st, i++, v->number);
    v->year = sqlite3_column_int(st, i++);
    v->seq = sqlite3_column_int64(st, i++);
    v->issued_at = sqlite3_column_int64(st, i++);
    COPY(st, i++, v->currency);
    COPY(st, i++, v->description);
    v->subtotal_nusd = sqlite3_column_int64(st, i++);
    v->tax_nusd = sqlite3_column_int64(st, i++);
    v->total_nusd = sqlite3_column_int64(st, i++);
    COPY(st, i++, v->tax_label);
    COPY(st, i++, v->note);
    COPY(st, i++, v->payment);
    v->test_mode = sqlite3_column_int(st, i++);
    i = party_row(st, i, &v->seller);
    party_row(st, i, &v->buyer);
}

static int bind_party(sqlite3_stmt *st, int i, const gh_invoice_party_rec_t *p)
{
    const char *v[] = {p->name,  p->line1,   p->line2,  p->city, p->postal_code,
                       p->state, p->country, p->vat_id, p->email};
    for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
        gh_sqlite_bind_text(st, i++, v[k]);
    return i;
}

gh_err_t gh_sqlite_invoice_insert(gh_db_t *db, const gh_invoice_rec_t *v)
{
    static const char sql[] =
        "INSERT INTO invoices (id, org_id, purchase_id, number, year, seq, issued_at, currency, "
        "description, subtotal_nusd, tax_nusd, total_nusd, tax_label, note, payment, test_mode, "
        "seller_name, seller_line1, seller_line2, seller_city, seller_postal_code, seller_state, "
        "seller_country, seller_vat_id, seller_email, buyer_name, buyer_line1, buyer_line2, "
        "buyer_city, buyer_postal_code, buyer_state, buyer_country, buyer_vat_id, buyer_email) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int i = 1;
    gh_sqlite_bind_str(st, i++, v->id);
    gh_sqlite_bind_str(st, i++, v->org_id);
    gh_sqlite_bind_str(st, i++, v->purchase_id);
    gh_sqlite_bind_str(st, i++, v->number);
    sqlite3_bind_int(st, i++, v->year);
    sqlite3_bind_int64(st, i++, v->seq);
    sqlite3_bind_int64(st, i++, v->issued_at);
    gh_sqlite_bind_str(st, i++, v->currency);
    gh_sqlite_bind_str(st, i++, v->description);
    sqlite3_bind_int64(st, i++, v->subtotal_nusd);
    sqlite3_bind_int64(st, i++, v->tax_nusd);
    sqlite3_bind_int64(st, i++, v->total_nusd);
    gh_sqlite_bind_str(st, i++, v->tax_label);
    gh_sqlite_bind_text(st, i++, v->note);
    gh_sqlite_bind_str(st, i++, v->payment);
    sqlite3_bind_int(st, i++, v->test_mode);
    i = bind_party(st, i, &v->seller);
    bind_party(st, i, &v->buyer);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_invoice_get(gh_db_t *db, const char *org_id, const char *id,
                               gh_invoice_rec_t *out)
{
    static const char sql[] =
        "SELECT " INVOICE_COLS " FROM invoices t WHERE t.id = ? AND t.org_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, id);
    gh_sqlite_bind_str(st, 2, org_id);
    return gh_sqlite_one(db, st, invoice_row, out);
}

typedef struct {
    gh_store_invoice_fn fn;
    void *ctx;
} invoice_list_t;

static void invoice_list_row(void *p, sqlite3_stmt *st)
{
    invoice_list_t *l = p;
    gh_invoice_rec_t v;
    invoice_row(st, &v);
    l->fn(l->ctx, &v);
}

gh_err_t gh_sqlite_invoices_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                                 gh_store_invoice_fn fn, void *ctx, bool *has_more)
{
    gh_sqlite_arg_t args[1] = {GH_ARG_TEXT(org_id)};
    invoice_list_t l = {fn, ctx};
    return gh_sqlite_page(db, INVOICE_COLS, "FROM invoices t WHERE t.org_id = ?", "t.id", args,
                          1, page, true, invoice_list_row, &l, has_more);
}

/* ---- webhook events ---- */

gh_err_t gh_sqlite_webhook_event_insert(gh_db_t *db, const char *event_id, const char *provider,
                                        const char *type, int64_t now)
{
    static const char sql[] = "INSERT INTO webhook_events (event_id, provider, type, "
                              "received_at) VALUES (?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, event_id);
    gh_sqlite_bind_str(st, 2, provider);
    gh_sqlite_bind_str(st, 3, type);
    sqlite3_bind_int64(st, 4, now);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_webhook_event_exists(gh_db_t *db, const char *event_id, bool *exists)
{
    static const char sql[] = "SELECT 1 FROM webhook_events WHERE event_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, event_id);
    int rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? GH_OK : GH_ESTORE;
}
