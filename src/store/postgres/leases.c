/* Cluster money leases on PostgreSQL (store.h, "Cluster money: leases"). The arithmetic is in
 * the SQL functions of migration 0012 (gh_lease_take, gh_lease_settle, gh_lease_return,
 * gh_lease_sweep), each one statement here, so a lease changes in one round trip and the
 * invariants live in one place. Every function runs inside the caller's transaction. */
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_array.h"
#include "store/postgres/pg_int.h"

static void grant_row(const PGresult *res, int row, void *out)
{
    gh_lease_grant_t *g = out;
    g->granted_nusd = gh_pgs_col_i64(res, row, 0);
    g->epoch = gh_pgs_col_null(res, row, 1) ? 0 : gh_pgs_col_i64(res, row, 1);
    g->free_nusd = gh_pgs_col_i64(res, row, 2);
    g->month_bound = gh_pgs_col_bool(res, row, 3);
    g->limit_nusd = gh_pgs_col_i64(res, row, 4);
}

gh_err_t gh_pgs_lease_take(gh_db_t *db, const gh_lease_ask_t *ask, gh_lease_grant_t *out)
{
    static const char sql[] =
        "SELECT granted, lease_epoch, free_nusd, month_bound, limit_nusd FROM gh_lease_take($1, $2, "
        "$3::bigint, $4::bigint, $5::bigint, $6::integer, " GH_PGS_TIME_IN("$7") ", $8::bigint)";
    gh_pgs_num_t b[6];
    const char *p[] = {ask->org_id,
                       ask->node_id,
                       gh_pgs_i64(&b[0], ask->want_nusd),
                       gh_pgs_i64(&b[1], ask->min_nusd),
                       gh_pgs_i64(&b[2], ask->limit_nusd),
                       gh_pgs_i64(&b[3], ask->month_key),
                       gh_pgs_i64(&b[4], ask->month_start_s),
                       gh_pgs_i64(&b[5], ask->ttl_ms)};
    memset(out, 0, sizeof(*out));
    return gh_pgs_one(db, sql, 8, p, grant_row, out);
}

gh_err_t gh_pgs_lease_settle(gh_db_t *db, const char *org_id, const char *node_id,
                             int64_t cost_nusd, int32_t month_key)
{
    static const char sql[] = "SELECT gh_lease_settle($1, $2, $3::bigint, $4::integer)";
    gh_pgs_num_t b[2];
    const char *p[] = {org_id, node_id, gh_pgs_i64(&b[0], cost_nusd),
                       gh_pgs_i64(&b[1], month_key)};
    return gh_pgs_query(db, sql, 4, p, NULL);
}

static void i64_row(const PGresult *res, int row, void *out)
{
    *(int64_t *)out = gh_pgs_col_i64(res, row, 0);
}

gh_err_t gh_pgs_lease_return(gh_db_t *db, const char *org_id, const char *node_id,
                             int64_t epoch, int64_t amount_nusd, int64_t *returned_nusd)
{
    static const char sql[] = "SELECT gh_lease_return($1, $2, $3::bigint, $4::bigint)";
    gh_pgs_num_t b[2];
    const char *p[] = {org_id, node_id, gh_pgs_i64(&b[0], epoch),
                       gh_pgs_i64(&b[1], amount_nusd)};
    *returned_nusd = -1;
    return gh_pgs_one(db, sql, 4, p, i64_row, returned_nusd);
}

typedef struct {
    gh_store_lease_fn fn;
    void *ctx;
} renew_t;

static void renew_row(void *ctx, const PGresult *res, int row)
{
    renew_t *r = ctx;
    char org[GH_ID_MAX];
    GH_PGS_COPY(res, row, 0, org);
    r->fn(r->ctx, org, gh_pgs_col_i64(res, row, 1), gh_pgs_col_i64(res, row, 2),
          gh_pgs_col_i64(res, row, 3));
}

gh_err_t gh_pgs_leases_renew(gh_db_t *db, const char *node_id, int64_t ttl_ms,
                             gh_store_lease_fn fn, void *ctx)
{
    static const char sql[] =
        "UPDATE cluster_leases l SET expires_at = now() + $2::bigint * interval '1 millisecond' "
        "FROM cluster_money m LEFT JOIN billing_accounts b ON b.org_id = m.org_id "
        "WHERE l.node_id = $1 AND m.org_id = l.org_id "
        "RETURNING l.org_id, l.epoch, l.amount_nusd, "
        "coalesce(b.balance_nusd, 0) - m.leased_nusd";
    gh_pgs_num_t b;
    const char *p[] = {node_id, gh_pgs_i64(&b, ttl_ms)};
    renew_t r = {fn, ctx};
    return gh_pgs_each(db, sql, 2, p, renew_row, &r);
}

gh_err_t gh_pgs_lease_amount(gh_db_t *db, const char *org_id, const char *node_id,
                             int64_t *amount_nusd)
{
    static const char sql[] =
        "SELECT amount_nusd FROM cluster_leases WHERE org_id = $1 AND node_id = $2";
    const char *p[] = {org_id, node_id};
    *amount_nusd = 0;
    gh_err_t rc = gh_pgs_one(db, sql, 2, p, i64_row, amount_nusd);
    return rc == GH_ENOTFOUND ? GH_OK : rc;
}

typedef struct {
    int64_t n, nusd;
} swept_t;

static void swept_row(const PGresult *res, int row, void *out)
{
    swept_t *s = out;
    s->n = gh_pgs_col_i64(res, row, 0);
    s->nusd = gh_pgs_col_i64(res, row, 1);
}

gh_err_t gh_pgs_leases_sweep(gh_db_t *db, const char *node_id, int64_t margin_ms,
                             int64_t *swept, int64_t *swept_nusd)
{
    static const char sql[] = "SELECT swept, swept_nusd FROM gh_lease_sweep($1, $2::bigint)";
    gh_pgs_num_t b;
    const char *p[] = {node_id, gh_pgs_i64(&b, margin_ms)};
    swept_t s = {0, 0};
    gh_err_t rc = gh_pgs_one(db, sql, 2, p, swept_row, &s);
    *swept = s.n;
    *swept_nusd = s.nusd;
    return rc;
}

/* ---- Workspace leases (migration 0015) ---- */

static int cmp_workspace(const void *a, const void *b)
{
    const gh_usage_row_t *x = *(const gh_usage_row_t *const *)a;
    const gh_usage_row_t *y = *(const gh_usage_row_t *const *)b;
    return strcmp(x->workspace_id ? x->workspace_id : "", y->workspace_id ? y->workspace_id : "");
}

gh_err_t gh_pgs_usage_settle_workspaces(gh_db_t *db, const gh_usage_row_t *rows, size_t n)
{
    /* The events' cost summed per workspace in C, in workspace order (the function locks
     * their rows in that order), then one statement (migration 0023). */
    static const char sql[] = "SELECT gh_ws_lease_settle($1::text[], $2::bigint[], $3)";
    if (n == 0)
        return GH_OK;
    const gh_usage_row_t **order = malloc(n * sizeof(*order));
    if (!order)
        return GH_ENOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = &rows[i];
    qsort(order, n, sizeof(*order), cmp_workspace);
    gh_pg_array_t ws, cost;
    gh_pg_array_init(&ws, 64 * n + 64);
    gh_pg_array_init(&cost, 24 * n + 64);
    bool bad = false;
    for (size_t i = 0; i < n && !bad;) {
        int64_t sum = 0;
        size_t j = i;
        while (j < n && !cmp_workspace(&order[j], &order[i]))
            sum += order[j++]->cost_nusd;
        bad |= gh_pg_array_text(&ws, order[i]->workspace_id ? order[i]->workspace_id : "") !=
               GH_OK;
        bad |= gh_pg_array_int(&cost, sum) != GH_OK;
        i = j;
    }
    const char *p[3] = {NULL, NULL, gh_pgs_node_id(db)};
    gh_err_t rc = GH_EINTERNAL;
    if (!bad && (p[0] = gh_pg_array_literal(&ws)) && (p[1] = gh_pg_array_literal(&cost)))
        rc = gh_pgs_query_fast(db, sql, 3, p, NULL);
    gh_pg_array_free(&ws);
    gh_pg_array_free(&cost);
    free(order);
    return rc;
}

static void ws_grant_row(const PGresult *res, int row, void *out)
{
    gh_lease_grant_t *g = out;
    g->granted_nusd = gh_pgs_col_i64(res, row, 0);
    g->epoch = gh_pgs_col_null(res, row, 1) ? 0 : gh_pgs_col_i64(res, row, 1);
    g->free_nusd = gh_pgs_col_i64(res, row, 2);
    g->limit_nusd = gh_pgs_col_i64(res, row, 3);
    g->month_bound = true;
}

gh_err_t gh_pgs_ws_lease_take(gh_db_t *db, const char *ws_id, const gh_lease_ask_t *ask,
                              gh_lease_grant_t *out)
{
    static const char sql[] =
        "SELECT granted, lease_epoch, headroom_nusd, limit_nusd FROM gh_ws_lease_take($1, $2, "
        "$3, $4::bigint, $5::bigint, $6::integer, " GH_PGS_TIME_IN("$7") ", $8::bigint)";
    gh_pgs_num_t b[5];
    const char *p[] = {ws_id,
                       ask->org_id,
                       ask->node_id,
                       gh_pgs_i64(&b[0], ask->want_nusd),
                       gh_pgs_i64(&b[1], ask->min_nusd),
                       gh_pgs_i64(&b[2], ask->month_key),
                       gh_pgs_i64(&b[3], ask->month_start_s),
                       gh_pgs_i64(&b[4], ask->ttl_ms)};
    memset(out, 0, sizeof(*out));
    return gh_pgs_one(db, sql, 8, p, ws_grant_row, out);
}

gh_err_t gh_pgs_ws_lease_return(gh_db_t *db, const char *ws_id, const char *node_id,
                                int64_t epoch, int64_t amount_nusd, int64_t *returned_nusd)
{
    static const char sql[] = "SELECT gh_ws_lease_return($1, $2, $3::bigint, $4::bigint)";
    gh_pgs_num_t b[2];
    const char *p[] = {ws_id, node_id, gh_pgs_i64(&b[0], epoch), gh_pgs_i64(&b[1], amount_nusd)};
    *returned_nusd = -1;
    return gh_pgs_one(db, sql, 4, p, i64_row, returned_nusd);
}

typedef struct {
    gh_store_ws_lease_fn fn;
    void *ctx;
} ws_renew_t;

static void ws_renew_row(void *ctx, const PGresult *res, int row)
{
    ws_renew_t *r = ctx;
    char org[GH_ID_MAX], ws[GH_ID_MAX];
    GH_PGS_COPY(res, row, 0, org);
    GH_PGS_COPY(res, row, 1, ws);
    r->fn(r->ctx, org, ws, gh_pgs_col_i64(res, row, 2), gh_pgs_col_i64(res, row, 3),
          gh_pgs_col_i64(res, row, 4));
}

gh_err_t gh_pgs_ws_leases_renew(gh_db_t *db, const char *node_id, int64_t ttl_ms,
                                gh_store_ws_lease_fn fn, void *ctx)
{
    static const char sql[] =
        "UPDATE cluster_ws_leases l SET expires_at = now() + $2::bigint * interval '1 millisecond' "
        "FROM cluster_ws_money m LEFT JOIN workspace_limits wl ON wl.workspace_id = m.workspace_id "
        "WHERE l.node_id = $1 AND m.workspace_id = l.workspace_id "
        "RETURNING m.org_id, l.workspace_id, l.epoch, l.amount_nusd, "
        "coalesce(wl.monthly_spend_limit_nusd, 0) - m.month_spent_nusd - m.leased_nusd";
    gh_pgs_num_t b;
    const char *p[] = {node_id, gh_pgs_i64(&b, ttl_ms)};
    ws_renew_t r = {fn, ctx};
    return gh_pgs_each(db, sql, 2, p, ws_renew_row, &r);
}
