/* Store functions for billing (PostgreSQL backend): billing accounts, cards, purchases, credit
 * lots, the ledger, invoices and webhook events. A port of src/store/sqlite/billing.c with
 * the same results, error codes and order; the schema is migrations/0001_schema.sql.
 *
 * Differences that come from the schema, not from behaviour: times are timestamptz (records
 * carry Unix seconds, converted in SQL), flags are boolean, "insertion order" is the table's
 * `seq` identity column where SQLite used rowid, and invoice numbers come from
 * gh_next_invoice_seq(), whose row lock keeps them gap-free under concurrent purchases. Text
 * sort keys use COLLATE "C", so organizations and contacts come in SQLite's bytewise order
 * whatever the database's locale. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "store/postgres/pg_array.h"
#include "store/postgres/pg_int.h"

/* The parameters of one statement, built in order: text as is ("" stays ""), text that is
 * NULL when empty, numbers (formatted into the struct, so it must outlive the statement),
 * booleans and NULL. */
#define PARAMS_MAX 40

typedef struct {
    const char *v[PARAMS_MAX];
    gh_pgs_num_t num[PARAMS_MAX];
    int n;
} params_t;

static void p_str(params_t *p, const char *v)
{
    assert(p->n < PARAMS_MAX);
    p->v[p->n++] = v;
}

static void p_text(params_t *p, const char *v)
{
    p_str(p, gh_pgs_text(v));
}

static void p_int(params_t *p, int64_t v)
{
    assert(p->n < PARAMS_MAX);
    p->v[p->n] = gh_pgs_i64(&p->num[p->n], v);
    p->n++;
}

static void p_bool(params_t *p, bool v)
{
    p_str(p, gh_pgs_bool(v));
}

static void p_null(params_t *p)
{
    p_str(p, NULL);
}

static gh_err_t q_exec(gh_db_t *db, const char *sql, const params_t *p)
{
    return gh_pgs_exec(db, sql, p->n, p->v);
}

static gh_err_t q_exec_one(gh_db_t *db, const char *sql, const params_t *p)
{
    return gh_pgs_exec_one(db, sql, p->n, p->v);
}

static gh_err_t q_one(gh_db_t *db, const char *sql, const params_t *p, gh_pgs_decode_fn decode,
                      void *out)
{
    return gh_pgs_one(db, sql, p->n, p->v, decode, out);
}

static gh_err_t q_select(gh_db_t *db, const char *sql, const params_t *p, PGresult **res)
{
    return gh_pgs_query(db, sql, p->n, p->v, res);
}

/* ---- billing accounts ---- */

/* A jsonb array of strings as compact text, `["US","DE"]`, as core wrote it and SQLite keeps
 * it: jsonb's own output puts a space after each comma, which would make a list of every
 * country outgrow the record's buffer. NULL stays NULL. */
#define COMPACT_ARRAY(col)                                                                     \
    "CASE WHEN " col " IS NULL THEN NULL ELSE coalesce((SELECT '[' || "                        \
    "string_agg(to_json(e.v)::text, ',' ORDER BY e.n) || ']' FROM "                            \
    "jsonb_array_elements_text(" col ") WITH ORDINALITY e (v, n)), '[]') END"

#define ACCOUNT_COLS                                                                           \
    "org_id, balance_nusd, customer_ref, auto_reload_enabled, "                               \
    "auto_reload_threshold_nusd IS NOT NULL, coalesce(auto_reload_threshold_nusd, 0), "       \
    "coalesce(auto_reload_amount_nusd, 0), auto_reload_armed, auto_reload_disabled_reason, "  \
    "intended_use, " COMPACT_ARRAY("countries") ", " COMPACT_ARRAY("regulated_industries")     \
    ", " GH_PGS_EPOCH("profile_answered_at") \
    ", " GH_PGS_EPOCH("updated_at")

static void account_row(const PGresult *res, int row, void *out)
{
    gh_billing_account_t *a = out;
    memset(a, 0, sizeof(*a));
    GH_PGS_COPY(res, row, 0, a->org_id);
    a->balance_nusd = gh_pgs_col_i64(res, row, 1);
    GH_PGS_COPY(res, row, 2, a->customer_ref);
    a->auto_reload_enabled = gh_pgs_col_bool(res, row, 3);
    a->auto_reload_configured = gh_pgs_col_bool(res, row, 4);
    a->auto_reload_threshold_nusd = gh_pgs_col_i64(res, row, 5);
    a->auto_reload_amount_nusd = gh_pgs_col_i64(res, row, 6);
    a->auto_reload_armed = gh_pgs_col_bool(res, row, 7);
    GH_PGS_COPY(res, row, 8, a->auto_reload_disabled_reason);
    GH_PGS_COPY(res, row, 9, a->intended_use);
    GH_PGS_COPY(res, row, 10, a->countries);
    GH_PGS_COPY(res, row, 11, a->regulated_industries);
    a->profile_answered_at = gh_pgs_col_i64(res, row, 12);
    a->updated_at = gh_pgs_col_i64(res, row, 13);
}

gh_err_t gh_pgs_billing_account_get(gh_db_t *db, const char *org_id, gh_billing_account_t *out)
{
    static const char sql[] = "SELECT " ACCOUNT_COLS " FROM billing_accounts WHERE org_id = $1";
    params_t p = {0};
    p_str(&p, org_id);
    return q_one(db, sql, &p, account_row, out);
}

gh_err_t gh_pgs_billing_account_ensure(gh_db_t *db, const char *org_id, int64_t now)
{
    static const char sql[] = "INSERT INTO billing_accounts (org_id, updated_at) "
                              "VALUES ($1, to_timestamp($2)) ON CONFLICT (org_id) DO NOTHING";
    params_t p = {0};
    p_str(&p, org_id);
    p_int(&p, now);
    return q_exec(db, sql, &p);
}

gh_err_t gh_pgs_billing_profile_put(gh_db_t *db, const char *org_id, const char *intended_use,
                                    const char *countries_json, const char *industries_json,
                                    int64_t now)
{
    static const char sql[] =
        "UPDATE billing_accounts SET intended_use = $1, countries = nullif($2, '')::jsonb, "
        "regulated_industries = nullif($3, '')::jsonb, profile_answered_at = to_timestamp($4), "
        "updated_at = to_timestamp($4) WHERE org_id = $5";
    gh_err_t rc = gh_pgs_billing_account_ensure(db, org_id, now);
    if (rc)
        return rc;
    params_t p = {0};
    p_str(&p, intended_use);
    p_str(&p, countries_json);
    p_str(&p, industries_json);
    p_int(&p, now);
    p_str(&p, org_id);
    return q_exec_one(db, sql, &p);
}

gh_err_t gh_pgs_billing_auto_reload_put(gh_db_t *db, const char *org_id, bool enabled,
                                        int64_t threshold_nusd, int64_t amount_nusd, bool armed,
                                        const char *reason, int64_t now)
{
    static const char sql[] =
        "UPDATE billing_accounts SET auto_reload_enabled = $1, auto_reload_threshold_nusd = $2, "
        "auto_reload_amount_nusd = $3, auto_reload_armed = $4, auto_reload_disabled_reason = $5, "
        "updated_at = to_timestamp($6) WHERE org_id = $7";
    gh_err_t rc = gh_pgs_billing_account_ensure(db, org_id, now);
    if (rc)
        return rc;
    params_t p = {0};
    p_bool(&p, enabled);
    if (threshold_nusd >= 0)
        p_int(&p, threshold_nusd);
    else
        p_null(&p);
    if (amount_nusd >= 0)
        p_int(&p, amount_nusd);
    else
        p_null(&p);
    p_bool(&p, armed);
    p_text(&p, reason);
    p_int(&p, now);
    p_str(&p, org_id);
    return q_exec_one(db, sql, &p);
}

gh_err_t gh_pgs_billing_disarm(gh_db_t *db, const char *org_id, int64_t now)
{
    static const char sql[] = "UPDATE billing_accounts SET auto_reload_armed = false, "
                              "updated_at = to_timestamp($1) WHERE org_id = $2";
    params_t p = {0};
    p_int(&p, now);
    p_str(&p, org_id);
    return q_exec_one(db, sql, &p);
}

gh_err_t gh_pgs_billing_rearm(gh_db_t *db, const char *org_id)
{
    static const char sql[] =
        "UPDATE billing_accounts SET auto_reload_armed = true WHERE org_id = $1 AND "
        "auto_reload_enabled AND NOT auto_reload_armed AND "
        "balance_nusd >= auto_reload_threshold_nusd";
    params_t p = {0};
    p_str(&p, org_id);
    return q_exec(db, sql, &p);
}

gh_err_t gh_pgs_billing_customer_ref_put(gh_db_t *db, const char *org_id, const char *ref,
                                         int64_t now)
{
    static const char sql[] = "UPDATE billing_accounts SET customer_ref = $1, "
                              "updated_at = to_timestamp($2) WHERE org_id = $3";
    gh_err_t rc = gh_pgs_billing_account_ensure(db, org_id, now);
    if (rc)
        return rc;
    params_t p = {0};
    p_text(&p, ref);
    p_int(&p, now);
    p_str(&p, org_id);
    return q_exec_one(db, sql, &p);
}

/* Runs `sql` and calls `fn` with column 0 of each row as text. */
static gh_err_t each_text(gh_db_t *db, const char *sql, const params_t *p,
                          gh_store_org_id_fn fn, void *ctx)
{
    PGresult *res;
    gh_err_t rc = q_select(db, sql, p, &res);
    if (rc)
        return rc;
    for (int r = 0, n = PQntuples(res); r < n; r++)
        fn(ctx, PQgetvalue(res, r, 0));
    PQclear(res);
    return GH_OK;
}

gh_err_t gh_pgs_billing_reload_due(gh_db_t *db, gh_store_org_id_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT org_id FROM billing_accounts WHERE auto_reload_enabled AND "
        "auto_reload_armed AND balance_nusd < auto_reload_threshold_nusd "
        "ORDER BY org_id COLLATE \"C\"";
    params_t p = {0};
    return each_text(db, sql, &p, fn, ctx);
}

gh_err_t gh_pgs_billing_contacts(gh_db_t *db, const char *org_id, gh_store_org_id_fn fn,
                                 void *ctx)
{
    static const char sql[] =
        "SELECT a.email FROM memberships m JOIN accounts a ON a.id = m.account_id "
        "WHERE m.org_id = $1 AND m.role IN ('admin', 'billing') "
        "ORDER BY m.created_at, a.id COLLATE \"C\"";
    params_t p = {0};
    p_str(&p, org_id);
    return each_text(db, sql, &p, fn, ctx);
}

/* ---- cards ---- */

#define PM_COLS                                                                                \
    "t.id, t.org_id, t.provider, t.provider_ref, t.brand, t.last4, t.exp_month, t.exp_year, " \
    GH_PGS_EPOCH("t.created_at") ", " GH_PGS_EPOCH("t.replaced_at")

static void pm_row(const PGresult *res, int row, void *out)
{
    gh_payment_method_t *pm = out;
    memset(pm, 0, sizeof(*pm));
    GH_PGS_COPY(res, row, 0, pm->id);
    GH_PGS_COPY(res, row, 1, pm->org_id);
    GH_PGS_COPY(res, row, 2, pm->provider);
    GH_PGS_COPY(res, row, 3, pm->provider_ref);
    GH_PGS_COPY(res, row, 4, pm->brand);
    GH_PGS_COPY(res, row, 5, pm->last4);
    pm->exp_month = (int)gh_pgs_col_i64(res, row, 6);
    pm->exp_year = (int)gh_pgs_col_i64(res, row, 7);
    pm->created_at = gh_pgs_col_i64(res, row, 8);
    pm->replaced_at = gh_pgs_col_i64(res, row, 9);
}

gh_err_t gh_pgs_payment_method_current(gh_db_t *db, const char *org_id,
                                       gh_payment_method_t *out)
{
    static const char sql[] = "SELECT " PM_COLS " FROM payment_methods t "
                              "WHERE t.org_id = $1 AND t.replaced_at IS NULL";
    params_t p = {0};
    p_str(&p, org_id);
    return q_one(db, sql, &p, pm_row, out);
}

gh_err_t gh_pgs_payment_method_get(gh_db_t *db, const char *org_id, const char *id,
                                   gh_payment_method_t *out)
{
    static const char sql[] =
        "SELECT " PM_COLS " FROM payment_methods t WHERE t.org_id = $1 AND t.id = $2";
    params_t p = {0};
    p_str(&p, org_id);
    p_str(&p, id);
    return q_one(db, sql, &p, pm_row, out);
}

gh_err_t gh_pgs_payment_method_by_ref(gh_db_t *db, const char *org_id, const char *provider_ref,
                                      gh_payment_method_t *out)
{
    static const char sql[] = "SELECT " PM_COLS " FROM payment_methods t WHERE t.org_id = $1 "
                              "AND t.provider_ref = $2 ORDER BY t.created_at DESC, t.seq DESC "
                              "LIMIT 1";
    params_t p = {0};
    p_str(&p, org_id);
    p_str(&p, provider_ref);
    return q_one(db, sql, &p, pm_row, out);
}

static void id_row(const PGresult *res, int row, void *out)
{
    gh_pgs_col_text(res, row, 0, out, GH_ID_MAX);
}

gh_err_t gh_pgs_payment_method_add(gh_db_t *db, const gh_payment_method_t *pm, char *replaced_id)
{
    static const char find[] =
        "SELECT id FROM payment_methods WHERE org_id = $1 AND replaced_at IS NULL";
    static const char replace[] = "UPDATE payment_methods SET replaced_at = to_timestamp($1) "
                                  "WHERE org_id = $2 AND replaced_at IS NULL";
    static const char ins[] =
        "INSERT INTO payment_methods (id, org_id, provider, provider_ref, brand, last4, "
        "exp_month, exp_year, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "to_timestamp($9))";
    char current[GH_ID_MAX] = "";
    if (replaced_id)
        replaced_id[0] = '\0';
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    params_t p = {0};
    p_str(&p, pm->org_id);
    rc = q_one(db, find, &p, id_row, current);
    if (rc && rc != GH_ENOTFOUND)
        goto out_rollback;
    if (rc == GH_OK && replaced_id)
        memcpy(replaced_id, current, GH_ID_MAX);
    p = (params_t){0};
    p_int(&p, pm->created_at);
    p_str(&p, pm->org_id);
    if ((rc = q_exec(db, replace, &p)))
        goto out_rollback;
    p = (params_t){0};
    p_str(&p, pm->id);
    p_str(&p, pm->org_id);
    p_str(&p, pm->provider);
    p_text(&p, pm->provider_ref);
    p_str(&p, pm->brand);
    p_str(&p, pm->last4);
    p_int(&p, pm->exp_month);
    p_int(&p, pm->exp_year);
    p_int(&p, pm->created_at);
    if ((rc = q_exec(db, ins, &p)))
        goto out_rollback;
    return gh_store_commit(db);
out_rollback:
    gh_store_rollback(db);
    return rc;
}

typedef struct {
    gh_store_payment_method_fn fn;
    void *ctx;
} pm_list_t;

static void pm_list_row(void *p, const PGresult *res, int row)
{
    pm_list_t *l = p;
    gh_payment_method_t pm;
    pm_row(res, row, &pm);
    l->fn(l->ctx, &pm);
}

gh_err_t gh_pgs_payment_methods_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                                     gh_store_payment_method_fn fn, void *ctx, bool *has_more)
{
    params_t p = {0};
    p_str(&p, org_id);
    pm_list_t l = {fn, ctx};
    return gh_pgs_page(db, PM_COLS, "FROM payment_methods t WHERE t.org_id = $1", "t.id",
                       p.v, p.n, page, true, pm_list_row, &l, has_more);
}

/* ---- purchases ---- */

#define PURCHASE_COLS                                                                          \
    "t.id, t.org_id, t.kind, t.status, t.amount_nusd, t.tax_nusd, t.total_nusd, t.tax_label, " \
    "t.idempotency_key, t.payment_method_id, t.provider, t.provider_ref, t.decline_code, "    \
    "t.message, t.attempts, t.created_by_type, t.created_by_id, "                              \
    GH_PGS_EPOCH("t.created_at") ", " GH_PGS_EPOCH("t.updated_at") ", "                        \
    GH_PGS_EPOCH("t.resolved_at") ", "                                                         \
    "(SELECT i.id FROM invoices i WHERE i.purchase_id = t.id)"

static void purchase_row(const PGresult *res, int row, void *out)
{
    gh_purchase_t *p = out;
    memset(p, 0, sizeof(*p));
    int i = 0;
    GH_PGS_COPY(res, row, i++, p->id);
    GH_PGS_COPY(res, row, i++, p->org_id);
    GH_PGS_COPY(res, row, i++, p->kind);
    GH_PGS_COPY(res, row, i++, p->status);
    p->amount_nusd = gh_pgs_col_i64(res, row, i++);
    p->tax_nusd = gh_pgs_col_i64(res, row, i++);
    p->total_nusd = gh_pgs_col_i64(res, row, i++);
    GH_PGS_COPY(res, row, i++, p->tax_label);
    GH_PGS_COPY(res, row, i++, p->idempotency_key);
    GH_PGS_COPY(res, row, i++, p->payment_method_id);
    GH_PGS_COPY(res, row, i++, p->provider);
    GH_PGS_COPY(res, row, i++, p->provider_ref);
    GH_PGS_COPY(res, row, i++, p->decline_code);
    GH_PGS_COPY(res, row, i++, p->message);
    p->attempts = (int)gh_pgs_col_i64(res, row, i++);
    GH_PGS_COPY(res, row, i++, p->created_by_type);
    GH_PGS_COPY(res, row, i++, p->created_by_id);
    p->created_at = gh_pgs_col_i64(res, row, i++);
    p->updated_at = gh_pgs_col_i64(res, row, i++);
    p->resolved_at = gh_pgs_col_i64(res, row, i++);
    GH_PGS_COPY(res, row, i++, p->invoice_id);
}

/* `at` as a time, or NULL for 0. */
static void param_time_or_null(params_t *p, int64_t at)
{
    if (at)
        p_int(p, at);
    else
        p_null(p);
}

gh_err_t gh_pgs_purchase_insert(gh_db_t *db, const gh_purchase_t *pur)
{
    static const char sql[] =
        "INSERT INTO purchases (id, org_id, kind, status, amount_nusd, tax_nusd, total_nusd, "
        "tax_label, idempotency_key, payment_method_id, provider, provider_ref, decline_code, "
        "message, attempts, created_by_type, created_by_id, created_at, updated_at, resolved_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
        "to_timestamp($18), to_timestamp($19), to_timestamp($20))";
    params_t p = {0};
    p_str(&p, pur->id);
    p_str(&p, pur->org_id);
    p_str(&p, pur->kind);
    p_str(&p, pur->status);
    p_int(&p, pur->amount_nusd);
    p_int(&p, pur->tax_nusd);
    p_int(&p, pur->total_nusd);
    p_str(&p, pur->tax_label);
    p_str(&p, pur->idempotency_key);
    p_str(&p, pur->payment_method_id);
    p_str(&p, pur->provider);
    p_text(&p, pur->provider_ref);
    p_text(&p, pur->decline_code);
    p_text(&p, pur->message);
    p_int(&p, pur->attempts);
    p_str(&p, pur->created_by_type);
    p_str(&p, pur->created_by_id);
    p_int(&p, pur->created_at);
    p_int(&p, pur->updated_at);
    param_time_or_null(&p, pur->resolved_at);
    return q_exec(db, sql, &p);
}

gh_err_t gh_pgs_purchase_get(gh_db_t *db, const char *org_id, const char *id, gh_purchase_t *out)
{
    static const char in_org[] =
        "SELECT " PURCHASE_COLS " FROM purchases t WHERE t.id = $1 AND t.org_id = $2";
    static const char any[] = "SELECT " PURCHASE_COLS " FROM purchases t WHERE t.id = $1";
    params_t p = {0};
    p_str(&p, id);
    if (org_id)
        p_str(&p, org_id);
    return q_one(db, org_id ? in_org : any, &p, purchase_row, out);
}

gh_err_t gh_pgs_purchase_by_key(gh_db_t *db, const char *org_id, const char *key,
                                gh_purchase_t *out)
{
    static const char sql[] = "SELECT " PURCHASE_COLS " FROM purchases t "
                              "WHERE t.org_id = $1 AND t.idempotency_key = $2";
    params_t p = {0};
    p_str(&p, org_id);
    p_str(&p, key);
    return q_one(db, sql, &p, purchase_row, out);
}

gh_err_t gh_pgs_purchase_update(gh_db_t *db, const gh_purchase_t *pur)
{
    static const char sql[] =
        "UPDATE purchases SET status = $1, provider_ref = $2, decline_code = $3, message = $4, "
        "attempts = $5, updated_at = to_timestamp($6), resolved_at = to_timestamp($7) "
        "WHERE id = $8 AND (status = 'pending' OR "
        "(status = 'declined' AND decline_code = 'unconfirmed'))";
    params_t p = {0};
    p_str(&p, pur->status);
    p_text(&p, pur->provider_ref);
    p_text(&p, pur->decline_code);
    p_text(&p, pur->message);
    p_int(&p, pur->attempts);
    p_int(&p, pur->updated_at);
    param_time_or_null(&p, pur->resolved_at);
    p_str(&p, pur->id);
    gh_err_t rc = q_exec_one(db, sql, &p);
    return rc == GH_ENOTFOUND ? GH_ECONFLICT : rc;
}

typedef struct {
    gh_store_purchase_fn fn;
    void *ctx;
} purchase_list_t;

static void purchase_list_row(void *ctx, const PGresult *res, int row)
{
    purchase_list_t *l = ctx;
    gh_purchase_t pur;
    purchase_row(res, row, &pur);
    l->fn(l->ctx, &pur);
}

gh_err_t gh_pgs_purchases_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                               gh_store_purchase_fn fn, void *ctx, bool *has_more)
{
    params_t p = {0};
    p_str(&p, org_id);
    purchase_list_t l = {fn, ctx};
    return gh_pgs_page(db, PURCHASE_COLS, "FROM purchases t WHERE t.org_id = $1", "t.id",
                       p.v, p.n, page, true, purchase_list_row, &l, has_more);
}

/* Runs `sql` and calls `fn` with each row, decoded by `decode` into a record of `size`. */
static gh_err_t each_row(gh_db_t *db, const char *sql, const params_t *p,
                         gh_pgs_decode_fn decode, void *rec, void (*emit)(void *ctx, void *rec),
                         void *ctx)
{
    PGresult *res;
    gh_err_t rc = q_select(db, sql, p, &res);
    if (rc)
        return rc;
    for (int r = 0, n = PQntuples(res); r < n; r++) {
        decode(res, r, rec);
        emit(ctx, rec);
    }
    PQclear(res);
    return GH_OK;
}

static void emit_purchase(void *ctx, void *rec)
{
    purchase_list_t *l = ctx;
    l->fn(l->ctx, rec);
}

gh_err_t gh_pgs_purchases_pending(gh_db_t *db, int64_t updated_before, int limit,
                                  gh_store_purchase_fn fn, void *ctx)
{
    static const char sql[] = "SELECT " PURCHASE_COLS " FROM purchases t "
                              "WHERE t.status = 'pending' AND t.updated_at <= to_timestamp($1) "
                              "ORDER BY t.updated_at, t.seq LIMIT $2";
    params_t p = {0};
    p_int(&p, updated_before);
    p_int(&p, limit);
    purchase_list_t l = {fn, ctx};
    gh_purchase_t rec;
    return each_row(db, sql, &p, purchase_row, &rec, emit_purchase, &l);
}

static void stats_row(const PGresult *res, int row, void *out)
{
    gh_purchase_stats_t *s = out;
    s->succeeded = gh_pgs_col_i64(res, row, 0);
    s->succeeded_nusd = gh_pgs_col_i64(res, row, 1);
    s->pending = gh_pgs_col_i64(res, row, 2);
}

gh_err_t gh_pgs_purchase_stats(gh_db_t *db, const char *org_id, gh_purchase_stats_t *out)
{
    static const char sql[] =
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), "
        "coalesce(sum(amount_nusd) FILTER (WHERE status = 'succeeded'), 0)::bigint, "
        "count(*) FILTER (WHERE status = 'pending') FROM purchases WHERE org_id = $1";
    params_t p = {0};
    p_str(&p, org_id);
    memset(out, 0, sizeof(*out));
    return q_one(db, sql, &p, stats_row, out);
}

/* ---- credit lots ---- */

#define LOT_COLS                                                                               \
    "id, org_id, source, source_ref, amount_nusd, remaining_nusd, "                            \
    GH_PGS_EPOCH("expires_at") ", "                                                            \
    GH_PGS_EPOCH("created_at")

static void lot_row(const PGresult *res, int row, void *out)
{
    gh_credit_lot_t *l = out;
    memset(l, 0, sizeof(*l));
    GH_PGS_COPY(res, row, 0, l->id);
    GH_PGS_COPY(res, row, 1, l->org_id);
    GH_PGS_COPY(res, row, 2, l->source);
    GH_PGS_COPY(res, row, 3, l->source_ref);
    l->amount_nusd = gh_pgs_col_i64(res, row, 4);
    l->remaining_nusd = gh_pgs_col_i64(res, row, 5);
    l->expires_at = gh_pgs_col_i64(res, row, 6);
    l->created_at = gh_pgs_col_i64(res, row, 7);
}

gh_err_t gh_pgs_lot_insert(gh_db_t *db, const gh_credit_lot_t *lot)
{
    static const char sql[] =
        "INSERT INTO credit_lots (id, org_id, source, source_ref, amount_nusd, remaining_nusd, "
        "expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), "
        "to_timestamp($8))";
    params_t p = {0};
    p_str(&p, lot->id);
    p_str(&p, lot->org_id);
    p_str(&p, lot->source);
    p_str(&p, lot->source_ref);
    p_int(&p, lot->amount_nusd);
    p_int(&p, lot->remaining_nusd);
    p_int(&p, lot->expires_at);
    p_int(&p, lot->created_at);
    return q_exec(db, sql, &p);
}

gh_err_t gh_pgs_lot_set_remaining(gh_db_t *db, const char *lot_id, int64_t remaining_nusd)
{
    static const char sql[] = "UPDATE credit_lots SET remaining_nusd = $1 WHERE id = $2";
    params_t p = {0};
    p_int(&p, remaining_nusd);
    p_str(&p, lot_id);
    return q_exec_one(db, sql, &p);
}

gh_err_t gh_pgs_lot_first_open(gh_db_t *db, const char *org_id, int64_t now,
                               gh_credit_lot_t *out)
{
    static const char sql[] = "SELECT " LOT_COLS " FROM credit_lots WHERE org_id = $1 AND "
                              "remaining_nusd > 0 AND expires_at > to_timestamp($2) "
                              "ORDER BY expires_at, seq LIMIT 1";
    params_t p = {0};
    p_str(&p, org_id);
    p_int(&p, now);
    return q_one(db, sql, &p, lot_row, out);
}

typedef struct {
    gh_store_lot_fn fn;
    void *ctx;
} lot_list_t;

static void emit_lot(void *ctx, void *rec)
{
    lot_list_t *l = ctx;
    l->fn(l->ctx, rec);
}

gh_err_t gh_pgs_lots_open(gh_db_t *db, const char *org_id, int64_t now, int limit,
                          gh_store_lot_fn fn, void *ctx)
{
    static const char sql[] = "SELECT " LOT_COLS " FROM credit_lots WHERE org_id = $1 AND "
                              "remaining_nusd > 0 AND expires_at > to_timestamp($2) "
                              "ORDER BY expires_at, seq LIMIT $3";
    params_t p = {0};
    p_str(&p, org_id);
    p_int(&p, now);
    p_int(&p, limit);
    lot_list_t l = {fn, ctx};
    gh_credit_lot_t rec;
    return each_row(db, sql, &p, lot_row, &rec, emit_lot, &l);
}

gh_err_t gh_pgs_lots_expired(gh_db_t *db, int64_t now, int limit, gh_store_lot_fn fn, void *ctx)
{
    static const char sql[] = "SELECT " LOT_COLS " FROM credit_lots WHERE remaining_nusd > 0 "
                              "AND expires_at <= to_timestamp($1) "
                              "ORDER BY expires_at, seq LIMIT $2";
    params_t p = {0};
    p_int(&p, now);
    p_int(&p, limit);
    lot_list_t l = {fn, ctx};
    gh_credit_lot_t rec;
    return each_row(db, sql, &p, lot_row, &rec, emit_lot, &l);
}

/* ---- the ledger ---- */

gh_err_t gh_pgs_ledger_append(gh_db_t *db, const gh_ledger_entry_t *e)
{
    /* The entry and the balance it changes in one statement (one round trip: the usage
     * writer appends at least one per organization in every batch). */
    static const char sql[] =
        "WITH e AS (INSERT INTO ledger_entries (org_id, lot_id, kind, amount_nusd, reference, "
        "reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7)) "
        "RETURNING org_id, amount_nusd, created_at) "
        "INSERT INTO billing_accounts AS b (org_id, balance_nusd, updated_at) "
        "SELECT org_id, amount_nusd, created_at FROM e ON CONFLICT (org_id) "
        "DO UPDATE SET balance_nusd = b.balance_nusd + excluded.balance_nusd";
    params_t p = {0};
    p_str(&p, e->org_id);
    p_text(&p, e->lot_id);
    p_str(&p, e->kind);
    p_int(&p, e->amount_nusd);
    p_str(&p, e->reference);
    p_text(&p, e->reason);
    p_int(&p, e->created_at);
    return q_exec(db, sql, &p);
}

gh_err_t gh_pgs_usage_charge(gh_db_t *db, const gh_usage_draw_t *draws, size_t n, int64_t now,
                             const char *settle_node, int32_t month, bool *charged)
{
    static const char sql[] =
        "SELECT gh_usage_charge($1::text[], $2::bigint[], $3::text[], $4::bigint, $5, "
        "$6::integer)";
    if (n == 0)
        return GH_OK;
    gh_pg_array_t col[3];
    gh_pg_array_init(&col[0], 64 * n + 64);
    gh_pg_array_init(&col[1], 24 * n + 64);
    gh_pg_array_init(&col[2], 160 * n + 64);
    bool bad = false;
    for (size_t i = 0; i < n; i++) {
        assert(draws[i].cost_nusd > 0);
        bad |= gh_pg_array_text(&col[0], draws[i].org_id) != GH_OK;
        bad |= gh_pg_array_int(&col[1], draws[i].cost_nusd) != GH_OK;
        bad |= gh_pg_array_text(&col[2], draws[i].reference) != GH_OK;
        charged[i] = true;
    }
    const char *p[6];
    char at[24], mk[16];
    for (int c = 0; c < 3 && !bad; c++)
        bad = !(p[c] = gh_pg_array_literal(&col[c]));
    gh_err_t rc = GH_EINTERNAL;
    if (!bad) {
        snprintf(at, sizeof(at), "%lld", (long long)now);
        snprintf(mk, sizeof(mk), "%d", (int)month);
        p[3] = at;
        p[4] = settle_node; /* NULL: no lease to settle */
        p[5] = mk;
        PGresult *res = NULL;
        rc = gh_pgs_query(db, sql, 6, p, &res);
        /* The rows are the organizations that do not exist: not charged. */
        for (int r = 0; !rc && r < PQntuples(res); r++)
            for (size_t i = 0; i < n; i++)
                if (!strcmp(draws[i].org_id, PQgetvalue(res, r, 0)))
                    charged[i] = false;
        PQclear(res);
    }
    for (int c = 0; c < 3; c++)
        gh_pg_array_free(&col[c]);
    return rc;
}

static void int64_row(const PGresult *res, int row, void *out)
{
    *(int64_t *)out = gh_pgs_col_i64(res, row, 0);
}

gh_err_t gh_pgs_ledger_unallocated(gh_db_t *db, const char *org_id, int64_t *sum_nusd)
{
    static const char sql[] = "SELECT coalesce(sum(amount_nusd), 0)::bigint FROM ledger_entries "
                              "WHERE org_id = $1 AND lot_id IS NULL";
    params_t p = {0};
    p_str(&p, org_id);
    *sum_nusd = 0;
    return q_one(db, sql, &p, int64_row, sum_nusd);
}

/* The check recomputes every figure with one aggregate pass per table, as SQLite's does.
 * usage_seq_start concerns node 'local' only (events copied from SQLite); other nodes'
 * events are all charged. sum() of bigint is numeric in PostgreSQL: the final figures are
 * cast back to bigint (an overflow there is an error, not a wrong figure). */
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
    "  WHERE node_id <> 'local' OR journal_seq > (SELECT seq FROM start) GROUP BY org_id), "   \
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
    "SELECT o.org_id, coalesce(ent.total, 0)::bigint, coalesce(b.balance_nusd, 0), "           \
    "  coalesce(lots.remaining, 0)::bigint, coalesce(ent.unalloc, 0)::bigint, "                \
    "  coalesce(ent.usage, 0)::bigint, coalesce(cost.cost, 0)::bigint, "                       \
    "  coalesce(bad_lots.n, 0), coalesce(bad_p.n, 0) "                                         \
    "FROM orgs o LEFT JOIN ent ON ent.org_id = o.org_id "                                      \
    "LEFT JOIN billing_accounts b ON b.org_id = o.org_id "                                     \
    "LEFT JOIN lots ON lots.org_id = o.org_id LEFT JOIN cost ON cost.org_id = o.org_id "       \
    "LEFT JOIN bad_lots ON bad_lots.org_id = o.org_id "                                        \
    "LEFT JOIN bad_p ON bad_p.org_id = o.org_id " org_filter " ORDER BY o.org_id COLLATE \"C\""

gh_err_t gh_pgs_ledger_sums(gh_db_t *db, const char *org_id, gh_store_ledger_sums_fn fn,
                            void *ctx)
{
    static const char all[] = SUMS_SQL("");
    static const char one[] = SUMS_SQL("WHERE o.org_id = $1");
    params_t p = {0};
    if (org_id)
        p_str(&p, org_id);
    PGresult *res;
    gh_err_t rc = q_select(db, org_id ? one : all, &p, &res);
    if (rc)
        return rc;
    for (int r = 0, n = PQntuples(res); r < n; r++) {
        gh_ledger_sums_t s;
        memset(&s, 0, sizeof(s));
        GH_PGS_COPY(res, r, 0, s.org_id);
        s.entries_nusd = gh_pgs_col_i64(res, r, 1);
        s.cached_nusd = gh_pgs_col_i64(res, r, 2);
        s.lots_remaining_nusd = gh_pgs_col_i64(res, r, 3);
        s.unallocated_nusd = gh_pgs_col_i64(res, r, 4);
        s.usage_entries_nusd = gh_pgs_col_i64(res, r, 5);
        s.usage_cost_nusd = gh_pgs_col_i64(res, r, 6);
        s.bad_lots = gh_pgs_col_i64(res, r, 7);
        s.bad_purchases = gh_pgs_col_i64(res, r, 8);
        fn(ctx, &s);
    }
    PQclear(res);
    return GH_OK;
}

gh_err_t gh_pgs_invoice_years(gh_db_t *db, gh_store_invoice_year_fn fn, void *ctx)
{
    static const char sql[] =
        "WITH y AS (SELECT year FROM invoice_counters UNION SELECT year FROM invoices) "
        "SELECT y.year, (SELECT count(*) FROM invoices i WHERE i.year = y.year), "
        "(SELECT coalesce(min(seq), 0) FROM invoices i WHERE i.year = y.year), "
        "(SELECT coalesce(max(seq), 0) FROM invoices i WHERE i.year = y.year), "
        "coalesce((SELECT last_seq FROM invoice_counters c WHERE c.year = y.year), 0) "
        "FROM y ORDER BY y.year";
    params_t p = {0};
    PGresult *res;
    gh_err_t rc = q_select(db, sql, &p, &res);
    if (rc)
        return rc;
    for (int r = 0, n = PQntuples(res); r < n; r++) {
        gh_invoice_year_t y = {
            .year = (int)gh_pgs_col_i64(res, r, 0),
            .count = gh_pgs_col_i64(res, r, 1),
            .min_seq = gh_pgs_col_i64(res, r, 2),
            .max_seq = gh_pgs_col_i64(res, r, 3),
            .counter = gh_pgs_col_i64(res, r, 4),
        };
        fn(ctx, &y);
    }
    PQclear(res);
    return GH_OK;
}

/* ---- invoices ---- */

gh_err_t gh_pgs_invoice_next_seq(gh_db_t *db, int year, int64_t *seq)
{
    static const char sql[] = "SELECT gh_next_invoice_seq($1::integer)";
    params_t p = {0};
    p_int(&p, year);
    *seq = 0;
    return q_one(db, sql, &p, int64_row, seq);
}

#define PARTY_COLS(p)                                                                          \
    "t." p "_name, t." p "_line1, t." p "_line2, t." p "_city, t." p "_postal_code, t." p      \
    "_state, t." p "_country, t." p "_vat_id, t." p "_email"

/* `number_seq` names the column holding the invoice's number within its year. */
#define INVOICE_COLS_N(number_seq)                                                             \
    "t.id, t.org_id, t.purchase_id, t.number, t.year, " number_seq ", "                        \
    GH_PGS_EPOCH("t.issued_at") ", "                                                           \
    "t.currency, t.description, t.subtotal_nusd, t.tax_nusd, t.total_nusd, t.tax_label, "     \
    "t.note, t.payment, t.test_mode, " PARTY_COLS("seller") ", " PARTY_COLS("buyer")
#define INVOICE_COLS INVOICE_COLS_N("t.seq")

static int party_row(const PGresult *res, int row, int i, gh_invoice_party_rec_t *p)
{
    GH_PGS_COPY(res, row, i++, p->name);
    GH_PGS_COPY(res, row, i++, p->line1);
    GH_PGS_COPY(res, row, i++, p->line2);
    GH_PGS_COPY(res, row, i++, p->city);
    GH_PGS_COPY(res, row, i++, p->postal_code);
    GH_PGS_COPY(res, row, i++, p->state);
    GH_PGS_COPY(res, row, i++, p->country);
    GH_PGS_COPY(res, row, i++, p->vat_id);
    GH_PGS_COPY(res, row, i++, p->email);
    return i;
}

static void invoice_row(const PGresult *res, int row, void *out)
{
    gh_invoice_rec_t *v = out;
    memset(v, 0, sizeof(*v));
    int i = 0;
    GH_PGS_COPY(res, row, i++, v->id);
    GH_PGS_COPY(res, row, i++, v->org_id);
    GH_PGS_COPY(res, row, i++, v->purchase_id);
    GH_PGS_COPY(res, row, i++, v->number);
    v->year = (int)gh_pgs_col_i64(res, row, i++);
    v->seq = gh_pgs_col_i64(res, row, i++);
    v->issued_at = gh_pgs_col_i64(res, row, i++);
    GH_PGS_COPY(res, row, i++, v->currency);
    GH_PGS_COPY(res, row, i++, v->description);
    v->subtotal_nusd = gh_pgs_col_i64(res, row, i++);
    v->tax_nusd = gh_pgs_col_i64(res, row, i++);
    v->total_nusd = gh_pgs_col_i64(res, row, i++);
    GH_PGS_COPY(res, row, i++, v->tax_label);
    GH_PGS_COPY(res, row, i++, v->note);
    GH_PGS_COPY(res, row, i++, v->payment);
    v->test_mode = gh_pgs_col_bool(res, row, i++);
    i = party_row(res, row, i, &v->seller);
    party_row(res, row, i, &v->buyer);
}

static void param_party(params_t *p, const gh_invoice_party_rec_t *party)
{
    const char *v[] = {party->name,  party->line1,   party->line2,  party->city, party->postal_code,
                       party->state, party->country, party->vat_id, party->email};
    for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
        p_text(p, v[k]);
}

gh_err_t gh_pgs_invoice_insert(gh_db_t *db, const gh_invoice_rec_t *v)
{
    static const char sql[] =
        "INSERT INTO invoices (id, org_id, purchase_id, number, year, seq, issued_at, currency, "
        "description, subtotal_nusd, tax_nusd, total_nusd, tax_label, note, payment, test_mode, "
        "seller_name, seller_line1, seller_line2, seller_city, seller_postal_code, seller_state, "
        "seller_country, seller_vat_id, seller_email, buyer_name, buyer_line1, buyer_line2, "
        "buyer_city, buyer_postal_code, buyer_state, buyer_country, buyer_vat_id, buyer_email) "
        "VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), $8, $9, $10, $11, $12, $13, $14, $15, "
        "$16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, "
        "$33, $34)";
    params_t p = {0};
    p_str(&p, v->id);
    p_str(&p, v->org_id);
    p_str(&p, v->purchase_id);
    p_str(&p, v->number);
    p_int(&p, v->year);
    p_int(&p, v->seq);
    p_int(&p, v->issued_at);
    p_str(&p, v->currency);
    p_str(&p, v->description);
    p_int(&p, v->subtotal_nusd);
    p_int(&p, v->tax_nusd);
    p_int(&p, v->total_nusd);
    p_str(&p, v->tax_label);
    p_text(&p, v->note);
    p_str(&p, v->payment);
    p_bool(&p, v->test_mode);
    param_party(&p, &v->seller);
    param_party(&p, &v->buyer);
    return q_exec(db, sql, &p);
}

gh_err_t gh_pgs_invoice_get(gh_db_t *db, const char *org_id, const char *id,
                            gh_invoice_rec_t *out)
{
    static const char sql[] =
        "SELECT " INVOICE_COLS " FROM invoices t WHERE t.id = $1 AND t.org_id = $2";
    params_t p = {0};
    p_str(&p, id);
    p_str(&p, org_id);
    return q_one(db, sql, &p, invoice_row, out);
}

typedef struct {
    gh_store_invoice_fn fn;
    void *ctx;
} invoice_list_t;

static void invoice_list_row(void *ctx, const PGresult *res, int row)
{
    invoice_list_t *l = ctx;
    gh_invoice_rec_t v;
    invoice_row(res, row, &v);
    l->fn(l->ctx, &v);
}

/* Invoices have no `seq` identity of their own: their `seq` is the number within the year.
 * They list in number order, which is issue order since numbers are taken under the writers'
 * lock: the subquery puts year and number folded into one bigint first and names it `seq`
 * for gh_pgs_page (the column list renames the leading columns by position: the computed key
 * to seq, the invoice's own seq to number_seq; invoices' columns start id, org_id,
 * purchase_id, number, year, seq). */
#define INVOICE_LIST_FROM                                                                      \
    "FROM (SELECT i.year::bigint * 10000000000 + i.seq, i.* FROM invoices i) "                 \
    "t (seq, id, org_id, purchase_id, number, year, number_seq) WHERE t.org_id = $1"

gh_err_t gh_pgs_invoices_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                              gh_store_invoice_fn fn, void *ctx, bool *has_more)
{
    params_t p = {0};
    p_str(&p, org_id);
    invoice_list_t l = {fn, ctx};
    return gh_pgs_page(db, INVOICE_COLS_N("t.number_seq"), INVOICE_LIST_FROM, "t.id", p.v, p.n,
                       page, true, invoice_list_row, &l, has_more);
}

/* ---- webhook events ---- */

gh_err_t gh_pgs_webhook_event_insert(gh_db_t *db, const char *event_id, const char *provider,
                                     const char *type, int64_t now)
{
    static const char sql[] = "INSERT INTO webhook_events (event_id, provider, type, "
                              "received_at) VALUES ($1, $2, $3, to_timestamp($4))";
    params_t p = {0};
    p_str(&p, event_id);
    p_str(&p, provider);
    p_str(&p, type);
    p_int(&p, now);
    return q_exec(db, sql, &p);
}

gh_err_t gh_pgs_webhook_event_exists(gh_db_t *db, const char *event_id, bool *exists)
{
    static const char sql[] = "SELECT 1 FROM webhook_events WHERE event_id = $1";
    params_t p = {0};
    p_str(&p, event_id);
    PGresult *res;
    *exists = false;
    gh_err_t rc = q_select(db, sql, &p, &res);
    if (rc)
        return rc;
    *exists = PQntuples(res) > 0;
    PQclear(res);
    return GH_OK;
}
