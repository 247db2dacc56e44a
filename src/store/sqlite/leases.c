/* Cluster money leases on the SQLite store (store.h, "Cluster money: leases"): none. A node
 * on SQLite is a single node that holds its organizations' whole balances in memory, so
 * there is nothing to lease; every operation answers GH_EUNAVAIL and changes nothing. */
#include "store/sqlite/sqlite_int.h"

gh_err_t gh_sqlite_lease_take(gh_db_t *db, const gh_lease_ask_t *ask, gh_lease_grant_t *out)
{
    (void)db, (void)ask;
    *out = (gh_lease_grant_t){0};
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_lease_settle(gh_db_t *db, const char *org_id, const char *node_id,
                                int64_t cost_nusd, int32_t month_key)
{
    (void)db, (void)org_id, (void)node_id, (void)cost_nusd, (void)month_key;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_lease_return(gh_db_t *db, const char *org_id, const char *node_id,
                                int64_t epoch, int64_t amount_nusd, int64_t *returned_nusd)
{
    (void)db, (void)org_id, (void)node_id, (void)epoch, (void)amount_nusd;
    *returned_nusd = 0;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_leases_renew(gh_db_t *db, const char *node_id, int64_t ttl_ms,
                                gh_store_lease_fn fn, void *ctx)
{
    (void)db, (void)node_id, (void)ttl_ms, (void)fn, (void)ctx;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_leases_sweep(gh_db_t *db, const char *node_id, int64_t margin_ms,
                                int64_t *swept, int64_t *swept_nusd)
{
    (void)db, (void)node_id, (void)margin_ms;
    *swept = *swept_nusd = 0;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_lease_amount(gh_db_t *db, const char *org_id, const char *node_id,
                                int64_t *amount_nusd)
{
    (void)db, (void)org_id, (void)node_id;
    *amount_nusd = 0;
    return GH_EUNAVAIL;
}

/* Workspace leases (migration 0015 on PostgreSQL): none either, so nothing to settle. */
gh_err_t gh_sqlite_usage_settle_workspaces(gh_db_t *db, const gh_usage_row_t *rows, size_t n)
{
    (void)db, (void)rows, (void)n;
    return GH_OK;
}

gh_err_t gh_sqlite_ws_lease_take(gh_db_t *db, const char *ws_id, const gh_lease_ask_t *ask,
                                 gh_lease_grant_t *out)
{
    (void)db, (void)ws_id, (void)ask;
    *out = (gh_lease_grant_t){0};
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_ws_lease_return(gh_db_t *db, const char *ws_id, const char *node_id,
                                   int64_t epoch, int64_t amount_nusd, int64_t *returned_nusd)
{
    (void)db, (void)ws_id, (void)node_id, (void)epoch, (void)amount_nusd;
    *returned_nusd = 0;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_ws_leases_renew(gh_db_t *db, const char *node_id, int64_t ttl_ms,
                                   gh_store_ws_lease_fn fn, void *ctx)
{
    (void)db, (void)node_id, (void)ttl_ms, (void)fn, (void)ctx;
    return GH_EUNAVAIL;
}
