/* Store functions for limits (PostgreSQL backend): organization and workspace limits, the
 * ledger and usage reads that admission loads from, limit requests, staff. The SQLite
 * backend's limits.c is the reference; where SQLite lists in rowid order this lists in the
 * table's seq order, and text ordering is byte order (COLLATE "C"), as SQLite's BINARY. */
#include <stdio.h>
#include <string.h>

#include "store/postgres/pg_int.h"

/* A positive amount, or NULL (SQL NULL) for 0: none. */
static const char *opt_amount(gh_pgs_num_t *b, int64_t v)
{
    return v > 0 ? gh_pgs_i64(b, v) : NULL;
}

/* Runs a query whose rows are (text, integer) and calls `fn` with each. */
typedef struct {
    gh_store_org_amount_fn fn;
    void *ctx;
} amount_each_t;

static void amount_row(void *ctx, const PGresult *res, int row)
{
    amount_each_t *e = ctx;
    e->fn(e->ctx, PQgetvalue(res, row, 0), gh_pgs_col_i64(res, row, 1));
}

static gh_err_t each_amount(gh_db_t *db, const char *sql, int n, const char *const *p,
                            gh_store_org_amount_fn fn, void *ctx)
{
    amount_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, n, p, amount_row, &e);
}

/* The first column of the first row as a number; 0 when there is no row. */
static gh_err_t one_int(gh_db_t *db, const char *sql, int n, const char *const *p,
                        int64_t *out)
{
    PGresult *res = NULL;
    *out = 0;
    gh_err_t rc = gh_pgs_query(db, sql, n, p, &res);
    if (rc)
        return rc;
    if (PQntuples(res) > 0)
        *out = gh_pgs_col_i64(res, 0, 0);
    PQclear(res);
    return GH_OK;
}

/* ---- organization limits ---- */

static void org_limits_row(const PGresult *res, int row, void *out)
{
    gh_org_limits_rec_t *r = out;
    memset(r, 0, sizeof(*r));
    GH_PGS_COPY(res, row, 0, r->org_id);
    r->monthly_spend_limit_nusd = gh_pgs_col_i64(res, row, 1);
    GH_PGS_COPY(res, row, 2, r->tier_override);
    r->custom_monthly_cap_nusd = gh_pgs_col_i64(res, row, 3);
    r->custom_rpm = gh_pgs_col_i64(res, row, 4);
    r->custom_itpm = gh_pgs_col_i64(res, row, 5);
    r->custom_otpm = gh_pgs_col_i64(res, row, 6);
    r->updated_at = gh_pgs_col_i64(res, row, 7);
}

gh_err_t gh_pgs_org_limits_get(gh_db_t *db, const char *org_id, gh_org_limits_rec_t *out)
{
    static const char sql[] =
        "SELECT org_id, coalesce(monthly_spend_limit_nusd, 0), tier_override, "
        "coalesce(custom_monthly_cap_nusd, 0), coalesce(custom_rpm, 0), coalesce(custom_itpm, 0), "
        "coalesce(custom_otpm, 0), " GH_PGS_EPOCH("updated_at") " FROM org_limits "
        "WHERE org_id = $1";
    const char *p[] = {org_id};
    return gh_pgs_one(db, sql, 1, p, org_limits_row, out);
}

gh_err_t gh_pgs_org_limits_put(gh_db_t *db, const gh_org_limits_rec_t *r)
{
    /* SQLite's INSERT OR REPLACE: every column replaced. */
    static const char sql[] =
        "INSERT INTO org_limits (org_id, monthly_spend_limit_nusd, tier_override, "
        "custom_monthly_cap_nusd, custom_rpm, custom_itpm, custom_otpm, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, " GH_PGS_TIME_IN("$8") ") "
        "ON CONFLICT (org_id) DO UPDATE SET "
        "monthly_spend_limit_nusd = excluded.monthly_spend_limit_nusd, "
        "tier_override = excluded.tier_override, "
        "custom_monthly_cap_nusd = excluded.custom_monthly_cap_nusd, "
        "custom_rpm = excluded.custom_rpm, custom_itpm = excluded.custom_itpm, "
        "custom_otpm = excluded.custom_otpm, updated_at = excluded.updated_at";
    gh_pgs_num_t b[6];
    const char *p[] = {r->org_id,
                       opt_amount(&b[0], r->monthly_spend_limit_nusd),
                       gh_pgs_text(r->tier_override),
                       opt_amount(&b[1], r->custom_monthly_cap_nusd),
                       opt_amount(&b[2], r->custom_rpm),
                       opt_amount(&b[3], r->custom_itpm),
                       opt_amount(&b[4], r->custom_otpm),
                       gh_pgs_i64(&b[5], r->updated_at)};
    return gh_pgs_exec(db, sql, 8, p);
}

/* ---- workspace limits ---- */

#define WS_LIMITS_COLS                                                                          \
    "workspace_id, org_id, coalesce(monthly_spend_limit_nusd, 0), coalesce(rpm, 0), "          \
    "coalesce(itpm, 0), coalesce(otpm, 0), " GH_PGS_EPOCH("updated_at")

static void ws_limits_row(const PGresult *res, int row, void *out)
{
    gh_ws_limits_rec_t *r = out;
    memset(r, 0, sizeof(*r));
    GH_PGS_COPY(res, row, 0, r->workspace_id);
    GH_PGS_COPY(res, row, 1, r->org_id);
    r->monthly_spend_limit_nusd = gh_pgs_col_i64(res, row, 2);
    r->rpm = gh_pgs_col_i64(res, row, 3);
    r->itpm = gh_pgs_col_i64(res, row, 4);
    r->otpm = gh_pgs_col_i64(res, row, 5);
    r->updated_at = gh_pgs_col_i64(res, row, 6);
}

gh_err_t gh_pgs_ws_limits_get(gh_db_t *db, const char *workspace_id, gh_ws_limits_rec_t *out)
{
    static const char sql[] =
        "SELECT " WS_LIMITS_COLS " FROM workspace_limits WHERE workspace_id = $1";
    const char *p[] = {workspace_id};
    return gh_pgs_one(db, sql, 1, p, ws_limits_row, out);
}

gh_err_t gh_pgs_ws_limits_put(gh_db_t *db, const gh_ws_limits_rec_t *r)
{
    static const char del[] = "DELETE FROM workspace_limits WHERE workspace_id = $1";
    /* SQLite's INSERT OR REPLACE gives the row a new rowid, so a replaced row lists last:
     * a new seq does the same here. */
    static const char put[] =
        "INSERT INTO workspace_limits (workspace_id, org_id, monthly_spend_limit_nusd, rpm, "
        "itpm, otpm, updated_at) VALUES ($1, $2, $3, $4, $5, $6, " GH_PGS_TIME_IN("$7") ") "
        "ON CONFLICT (workspace_id) DO UPDATE SET org_id = excluded.org_id, seq = DEFAULT, "
        "monthly_spend_limit_nusd = excluded.monthly_spend_limit_nusd, rpm = excluded.rpm, "
        "itpm = excluded.itpm, otpm = excluded.otpm, updated_at = excluded.updated_at";
    bool none = r->monthly_spend_limit_nusd <= 0 && r->rpm <= 0 && r->itpm <= 0 && r->otpm <= 0;
    if (none) {
        const char *p[] = {r->workspace_id};
        return gh_pgs_exec(db, del, 1, p);
    }
    gh_pgs_num_t b[5];
    const char *p[] = {r->workspace_id,
                       r->org_id,
                       opt_amount(&b[0], r->monthly_spend_limit_nusd),
                       opt_amount(&b[1], r->rpm),
                       opt_amount(&b[2], r->itpm),
                       opt_amount(&b[3], r->otpm),
                       gh_pgs_i64(&b[4], r->updated_at)};
    return gh_pgs_exec(db, put, 7, p);
}

typedef struct {
    gh_store_ws_limits_fn fn;
    void *ctx;
} ws_limits_each_t;

static void ws_limits_each(void *ctx, const PGresult *res, int row)
{
    ws_limits_each_t *e = ctx;
    gh_ws_limits_rec_t r;
    ws_limits_row(res, row, &r);
    e->fn(e->ctx, &r);
}

gh_err_t gh_pgs_ws_limits_list(gh_db_t *db, const char *org_id, gh_store_ws_limits_fn fn,
                               void *ctx)
{
    static const char sql[] = "SELECT " WS_LIMITS_COLS " FROM workspace_limits "
                              "WHERE $1::text IS NULL OR org_id = $1 ORDER BY seq";
    const char *p[] = {gh_pgs_text(org_id)};
    ws_limits_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, 1, p, ws_limits_each, &e);
}

typedef struct {
    gh_store_org_id_fn fn;
    void *ctx;
} text_each_t;

static void text_row(void *ctx, const PGresult *res, int row)
{
    text_each_t *e = ctx;
    e->fn(e->ctx, PQgetvalue(res, row, 0));
}

gh_err_t gh_pgs_org_ids(gh_db_t *db, gh_store_org_id_fn fn, void *ctx)
{
    static const char sql[] = "SELECT id FROM organizations ORDER BY seq";
    text_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, 0, NULL, text_row, &e);
}

typedef struct {
    gh_store_ws_id_fn fn;
    void *ctx;
} ws_id_each_t;

static void ws_id_row(void *ctx, const PGresult *res, int row)
{
    ws_id_each_t *e = ctx;
    e->fn(e->ctx, PQgetvalue(res, row, 0), PQgetvalue(res, row, 1));
}

gh_err_t gh_pgs_workspace_ids(gh_db_t *db, const char *org_id, gh_store_ws_id_fn fn, void *ctx)
{
    static const char sql[] = "SELECT org_id, id FROM workspaces WHERE archived_at IS NULL "
                              "AND ($1::text IS NULL OR org_id = $1) ORDER BY seq";
    const char *p[] = {gh_pgs_text(org_id)};
    ws_id_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, 1, p, ws_id_row, &e);
}

/* ---- the ledger and usage, as admission reads them ---- */

gh_err_t gh_pgs_ledger_max_id(gh_db_t *db, int64_t *id)
{
    static const char sql[] = "SELECT coalesce(max(id), 0) FROM ledger_entries";
    return one_int(db, sql, 0, NULL, id);
}

gh_err_t gh_pgs_ledger_balance_upto(gh_db_t *db, const char *org_id, int64_t upto_id,
                                    int64_t *sum_nusd)
{
    static const char sql[] = "SELECT coalesce(sum(amount_nusd), 0)::bigint FROM "
                              "ledger_entries WHERE org_id = $1 AND id <= $2";
    gh_pgs_num_t b;
    const char *p[] = {org_id, gh_pgs_i64(&b, upto_id)};
    return one_int(db, sql, 2, p, sum_nusd);
}

gh_err_t gh_pgs_ledger_balances_upto(gh_db_t *db, int64_t upto_id, gh_store_org_amount_fn fn,
                                     void *ctx)
{
    static const char sql[] = "SELECT org_id, sum(amount_nusd)::bigint FROM ledger_entries "
                              "WHERE id <= $1 GROUP BY org_id";
    gh_pgs_num_t b;
    const char *p[] = {gh_pgs_i64(&b, upto_id)};
    return each_amount(db, sql, 1, p, fn, ctx);
}

typedef struct {
    gh_store_ledger_delta_fn fn;
    void *ctx;
} delta_each_t;

static void delta_row(void *ctx, const PGresult *res, int row)
{
    delta_each_t *e = ctx;
    e->fn(e->ctx, PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
          gh_pgs_col_i64(res, row, 2));
}

gh_err_t gh_pgs_ledger_deltas(gh_db_t *db, int64_t after_id, int64_t upto_id,
                              gh_store_ledger_delta_fn fn, void *ctx)
{
    /* A range of the primary key: only the entries since the last look are read. */
    static const char sql[] = "SELECT org_id, kind, sum(amount_nusd)::bigint FROM "
                              "ledger_entries WHERE id > $1 AND id <= $2 AND kind <> 'usage' "
                              "GROUP BY org_id, kind";
    gh_pgs_num_t b[2];
    const char *p[] = {gh_pgs_i64(&b[0], after_id), gh_pgs_i64(&b[1], upto_id)};
    delta_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, 2, p, delta_row, &e);
}

gh_err_t gh_pgs_ledger_usage_since(gh_db_t *db, const char *org_id, int64_t since,
                                   int64_t *sum_nusd)
{
    static const char sql[] = "SELECT coalesce(-sum(amount_nusd), 0)::bigint FROM "
                              "ledger_entries WHERE org_id = $1 AND kind = 'usage' AND "
                              "created_at >= " GH_PGS_TIME_IN("$2");
    gh_pgs_num_t b;
    const char *p[] = {org_id, gh_pgs_i64(&b, since)};
    return one_int(db, sql, 2, p, sum_nusd);
}

gh_err_t gh_pgs_purchase_totals(gh_db_t *db, gh_store_org_amount_fn fn, void *ctx)
{
    static const char sql[] = "SELECT org_id, sum(amount_nusd)::bigint FROM purchases "
                              "WHERE status = 'succeeded' GROUP BY org_id";
    return each_amount(db, sql, 0, NULL, fn, ctx);
}

typedef struct {
    gh_store_usage_sum_fn fn;
    void *ctx;
} usage_sum_each_t;

static void usage_sum_row(void *ctx, const PGresult *res, int row)
{
    usage_sum_each_t *e = ctx;
    e->fn(e->ctx, PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
          gh_pgs_col_i64(res, row, 2));
}

gh_err_t gh_pgs_usage_cost_since(gh_db_t *db, int64_t since_ms, const char *org_id,
                                 const char *workspace_id, gh_store_usage_sum_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT org_id, workspace_id, sum(cost_nusd)::bigint FROM usage_events "
        "WHERE created_at >= (timestamptz 'epoch' + $1::bigint * interval '1 millisecond') "
        "AND ($2::text IS NULL OR org_id = $2) AND ($3::text IS NULL OR workspace_id = $3) "
        "GROUP BY org_id, workspace_id "
        "ORDER BY org_id COLLATE \"C\", workspace_id COLLATE \"C\"";
    gh_pgs_num_t b;
    const char *p[] = {gh_pgs_i64(&b, since_ms), gh_pgs_text(org_id), gh_pgs_text(workspace_id)};
    usage_sum_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, 3, p, usage_sum_row, &e);
}

/* ---- limit requests ---- */

#define REQUEST_COLS                                                                            \
    "t.id, t.org_id, o.name, t.requested_by, t.requested_by_label, t.kind, t.requested_tier, " \
    "coalesce(t.monthly_cap_nusd, 0), coalesce(t.rpm, 0), coalesce(t.itpm, 0), "               \
    "coalesce(t.otpm, 0), t.reason, t.status, t.staff_note, t.decided_by, t.decided_by_label, " \
    "t.granted_tier, " GH_PGS_EPOCH("t.created_at") ", " GH_PGS_EPOCH("t.decided_at")
#define REQUEST_FROM "FROM limit_requests t JOIN organizations o ON o.id = t.org_id "

static void request_row(const PGresult *res, int row, void *out)
{
    gh_limit_request_t *r = out;
    memset(r, 0, sizeof(*r));
    int i = 0;
    GH_PGS_COPY(res, row, i++, r->id);
    GH_PGS_COPY(res, row, i++, r->org_id);
    GH_PGS_COPY(res, row, i++, r->org_name);
    GH_PGS_COPY(res, row, i++, r->requested_by);
    GH_PGS_COPY(res, row, i++, r->requested_by_label);
    GH_PGS_COPY(res, row, i++, r->kind);
    GH_PGS_COPY(res, row, i++, r->requested_tier);
    r->monthly_cap_nusd = gh_pgs_col_i64(res, row, i++);
    r->rpm = gh_pgs_col_i64(res, row, i++);
    r->itpm = gh_pgs_col_i64(res, row, i++);
    r->otpm = gh_pgs_col_i64(res, row, i++);
    GH_PGS_COPY(res, row, i++, r->reason);
    GH_PGS_COPY(res, row, i++, r->status);
    GH_PGS_COPY(res, row, i++, r->staff_note);
    GH_PGS_COPY(res, row, i++, r->decided_by);
    GH_PGS_COPY(res, row, i++, r->decided_by_label);
    GH_PGS_COPY(res, row, i++, r->granted_tier);
    r->created_at = gh_pgs_col_i64(res, row, i++);
    r->decided_at = gh_pgs_col_i64(res, row, i++);
}

gh_err_t gh_pgs_limit_request_insert(gh_db_t *db, const gh_limit_request_t *r)
{
    static const char sql[] =
        "INSERT INTO limit_requests (id, org_id, requested_by, requested_by_label, kind, "
        "requested_tier, monthly_cap_nusd, rpm, itpm, otpm, reason, status, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', "
        GH_PGS_TIME_IN("$12") ")";
    gh_pgs_num_t b[5];
    const char *p[] = {r->id,
                       r->org_id,
                       r->requested_by,
                       r->requested_by_label,
                       r->kind,
                       gh_pgs_text(r->requested_tier),
                       opt_amount(&b[0], r->monthly_cap_nusd),
                       opt_amount(&b[1], r->rpm),
                       opt_amount(&b[2], r->itpm),
                       opt_amount(&b[3], r->otpm),
                       r->reason,
                       gh_pgs_i64(&b[4], r->created_at)};
    return gh_pgs_exec(db, sql, 12, p);
}

gh_err_t gh_pgs_limit_request_get(gh_db_t *db, const char *org_id, const char *id,
                                  gh_limit_request_t *out)
{
    static const char sql[] = "SELECT " REQUEST_COLS " " REQUEST_FROM
                              "WHERE t.id = $1 AND ($2::text IS NULL OR t.org_id = $2)";
    const char *p[] = {id, gh_pgs_text(org_id)};
    return gh_pgs_one(db, sql, 2, p, request_row, out);
}

gh_err_t gh_pgs_limit_request_decide(gh_db_t *db, const gh_limit_request_t *r)
{
    static const char sql[] =
        "UPDATE limit_requests SET status = $1, staff_note = $2, decided_by = $3, "
        "decided_by_label = $4, granted_tier = $5, decided_at = " GH_PGS_TIME_IN("$6") " "
        "WHERE id = $7 AND status = 'pending'";
    gh_pgs_num_t b;
    const char *p[] = {r->status,           gh_pgs_text(r->staff_note),
                       r->decided_by,       r->decided_by_label,
                       gh_pgs_text(r->granted_tier), gh_pgs_i64(&b, r->decided_at),
                       r->id};
    gh_err_t rc = gh_pgs_exec_one(db, sql, 7, p);
    return rc == GH_ENOTFOUND ? GH_ECONFLICT : rc;
}

typedef struct {
    gh_store_limit_request_fn fn;
    void *ctx;
} request_list_t;

static void request_list_row(void *ctx, const PGresult *res, int row)
{
    request_list_t *l = ctx;
    gh_limit_request_t r;
    request_row(res, row, &r);
    l->fn(l->ctx, &r);
}

gh_err_t gh_pgs_limit_requests_list(gh_db_t *db, const char *org_id, const char *status,
                                    const gh_page_t *page, gh_store_limit_request_fn fn,
                                    void *ctx, bool *has_more)
{
    const char *args[] = {gh_pgs_text(org_id), gh_pgs_text(status)};
    request_list_t l = {fn, ctx};
    return gh_pgs_page(db, REQUEST_COLS,
                       REQUEST_FROM "WHERE ($1::text IS NULL OR t.org_id = $1) "
                                    "AND ($2::text IS NULL OR t.status = $2)",
                       "t.id", args, 2, page, false, request_list_row, &l, has_more);
}

/* ---- staff ---- */

gh_err_t gh_pgs_staff_add(gh_db_t *db, const char *account_id, const char *added_by,
                          int64_t now)
{
    static const char sql[] =
        "INSERT INTO staff (account_id, added_at, added_by) VALUES ($1, " GH_PGS_TIME_IN("$2")
        ", $3) ON CONFLICT DO NOTHING";
    gh_pgs_num_t b;
    const char *p[] = {account_id, gh_pgs_i64(&b, now), added_by};
    return gh_pgs_exec(db, sql, 3, p);
}

gh_err_t gh_pgs_staff_remove(gh_db_t *db, const char *account_id)
{
    static const char sql[] = "DELETE FROM staff WHERE account_id = $1";
    const char *p[] = {account_id};
    return gh_pgs_exec_one(db, sql, 1, p);
}

gh_err_t gh_pgs_staff_is(gh_db_t *db, const char *account_id, bool *out)
{
    static const char sql[] = "SELECT count(*) FROM staff WHERE account_id = $1";
    const char *p[] = {account_id};
    int64_t n = 0;
    gh_err_t rc = one_int(db, sql, 1, p, &n);
    *out = n > 0;
    return rc;
}

gh_err_t gh_pgs_data_version(gh_db_t *db, int64_t *version)
{
    /* SQLite's PRAGMA data_version changes when another connection commits. The server's
     * current snapshot (xmin, xmax and the transactions in progress) changes whenever a
     * transaction that wrote anything ends, here or in another process, and reading it
     * touches no table. Its 64-bit hash is the version. (It changes for writes to other
     * databases of the server too: a spare reload, never a missed one.) */
    static const char sql[] = "SELECT hashtextextended(pg_current_snapshot()::text, 0)";
    return one_int(db, sql, 0, NULL, version);
}

gh_err_t gh_pgs_org_admin_emails(gh_db_t *db, const char *org_id, gh_store_org_id_fn fn,
                                 void *ctx)
{
    static const char sql[] =
        "SELECT a.email FROM memberships m JOIN accounts a ON a.id = m.account_id "
        "WHERE m.org_id = $1 AND m.role = 'admin' ORDER BY m.created_at, a.id COLLATE \"C\"";
    const char *p[] = {org_id};
    text_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, 1, p, text_row, &e);
}

typedef struct {
    gh_store_org_brief_fn fn;
    void *ctx;
} brief_each_t;

static void brief_row(void *ctx, const PGresult *res, int row)
{
    brief_each_t *e = ctx;
    e->fn(e->ctx, PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
          gh_pgs_col_i64(res, row, 2));
}

gh_err_t gh_pgs_orgs_search(gh_db_t *db, const char *query, int limit, gh_store_org_brief_fn fn,
                            void *ctx)
{
    /* strpos() rather than LIKE: the query is matched as it is, with no wildcards. */
    static const char sql[] =
        "SELECT id, name, " GH_PGS_EPOCH("created_at") " FROM organizations "
        "WHERE $1::text IS NULL OR strpos(lower(name), lower($1)) > 0 OR id = $1 "
        "ORDER BY seq DESC LIMIT $2";
    gh_pgs_num_t b;
    const char *p[] = {gh_pgs_text(query), gh_pgs_i64(&b, limit)};
    brief_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, 2, p, brief_row, &e);
}
