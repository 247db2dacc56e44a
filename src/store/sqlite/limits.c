/* Store functions for limits (SQLite backend): organization and workspace limits, the ledger
 * and usage reads that admission loads from, limit requests, staff. See
 * migrations/0007_limits.sql. */
#include <stdio.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

/* Binds a positive amount, or NULL for 0 (none). */
static void bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Steps a query whose rows are (text, integer) and calls `fn` with each. */
static gh_err_t each_amount(gh_db_t *db, sqlite3_stmt *st, gh_store_org_amount_fn fn, void *ctx)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

static gh_err_t one_int(gh_db_t *db, sqlite3_stmt *st, int64_t *out)
{
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? GH_OK : gh_sqlite_step_err(db, rc);
}

/* ---- organization limits ---- */

static void org_limits_row(sqlite3_stmt *st, void *out)
{
    gh_org_limits_rec_t *r = out;
    memset(r, 0, sizeof(*r));
    COPY(st, 0, r->org_id);
    r->monthly_spend_limit_nusd = sqlite3_column_int64(st, 1);
    COPY(st, 2, r->tier_override);
    r->custom_monthly_cap_nusd = sqlite3_column_int64(st, 3);
    r->custom_rpm = sqlite3_column_int64(st, 4);
    r->custom_itpm = sqlite3_column_int64(st, 5);
    r->custom_otpm = sqlite3_column_int64(st, 6);
    r->updated_at = sqlite3_column_int64(st, 7);
}

gh_err_t gh_sqlite_org_limits_get(gh_db_t *db, const char *org_id, gh_org_limits_rec_t *out)
{
    static const char sql[] =
        "SELECT org_id, coalesce(monthly_spend_limit_nusd, 0), tier_override, "
        "coalesce(custom_monthly_cap_nusd, 0), coalesce(custom_rpm, 0), coalesce(custom_itpm, 0), "
        "coalesce(custom_otpm, 0), updated_at FROM org_limits WHERE org_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    return gh_sqlite_one(db, st, org_limits_row, out);
}

gh_err_t gh_sqlite_org_limits_put(gh_db_t *db, const gh_org_limits_rec_t *r)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO org_limits (org_id, monthly_spend_limit_nusd, tier_override, "
        "custom_monthly_cap_nusd, custom_rpm, custom_itpm, custom_otpm, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, r->org_id);
    bind_opt(st, 2, r->monthly_spend_limit_nusd);
    gh_sqlite_bind_text(st, 3, r->tier_override);
    bind_opt(st, 4, r->custom_monthly_cap_nusd);
    bind_opt(st, 5, r->custom_rpm);
    bind_opt(st, 6, r->custom_itpm);
    bind_opt(st, 7, r->custom_otpm);
    sqlite3_bind_int64(st, 8, r->updated_at);
    return gh_sqlite_exec(db, st);
}

/* ---- workspace limits ---- */

#define WS_LIMITS_COLS                                                                          \
    "workspace_id, org_id, coalesce(monthly_spend_limit_nusd, 0), coalesce(rpm, 0), "          \
    "coalesce(itpm, 0), coalesce(otpm, 0), updated_at"

static void ws_limits_row(sqlite3_stmt *st, void *out)
{
    gh_ws_limits_rec_t *r = out;
    memset(r, 0, sizeof(*r));
    COPY(st, 0, r->workspace_id);
    COPY(st, 1, r->org_id);
    r->monthly_spend_limit_nusd = sqlite3_column_int64(st, 2);
    r->rpm = sqlite3_column_int64(st, 3);
    r->itpm = sqlite3_column_int64(st, 4);
    r->otpm = sqlite3_column_int64(st, 5);
    r->updated_at = sqlite3_column_int64(st, 6);
}

gh_err_t gh_sqlite_ws_limits_get(gh_db_t *db, const char *workspace_id, gh_ws_limits_rec_t *out)
{
    static const char sql[] =
        "SELECT " WS_LIMITS_COLS " FROM workspace_limits WHERE workspace_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, workspace_id);
    return gh_sqlite_one(db, st, ws_limits_row, out);
}

gh_err_t gh_sqlite_ws_limits_put(gh_db_t *db, const gh_ws_limits_rec_t *r)
{
    static const char del[] = "DELETE FROM workspace_limits WHERE workspace_id = ?";
    static const char put[] =
        "INSERT OR REPLACE INTO workspace_limits (workspace_id, org_id, monthly_spend_limit_nusd, "
        "rpm, itpm, otpm, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
    bool none = r->monthly_spend_limit_nusd <= 0 && r->rpm <= 0 && r->itpm <= 0 && r->otpm <= 0;
    sqlite3_stmt *st = gh_sqlite_stmt(db, none ? del : put);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, r->workspace_id);
    if (!none) {
        gh_sqlite_bind_str(st, 2, r->org_id);
        bind_opt(st, 3, r->monthly_spend_limit_nusd);
        bind_opt(st, 4, r->rpm);
        bind_opt(st, 5, r->itpm);
        bind_opt(st, 6, r->otpm);
        sqlite3_bind_int64(st, 7, r->updated_at);
    }
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_ws_limits_list(gh_db_t *db, const char *org_id, gh_store_ws_limits_fn fn,
                                  void *ctx)
{
    static const char sql[] = "SELECT " WS_LIMITS_COLS " FROM workspace_limits "
                              "WHERE ?1 IS NULL OR org_id = ?1 ORDER BY rowid";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_text(st, 1, org_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_ws_limits_rec_t r;
        ws_limits_row(st, &r);
        fn(ctx, &r);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_org_ids(gh_db_t *db, gh_store_org_id_fn fn, void *ctx)
{
    static const char sql[] = "SELECT id FROM organizations ORDER BY rowid";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_workspace_ids(gh_db_t *db, const char *org_id, gh_store_ws_id_fn fn,
                                 void *ctx)
{
    static const char sql[] = "SELECT org_id, id FROM workspaces WHERE archived_at IS NULL "
                              "AND (?1 IS NULL OR org_id = ?1) ORDER BY rowid";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_text(st, 1, org_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

/* ---- the ledger and usage, as admission reads them ---- */

gh_err_t gh_sqlite_ledger_max_id(gh_db_t *db, int64_t *id)
{
    static const char sql[] = "SELECT coalesce(max(id), 0) FROM ledger_entries";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    return one_int(db, st, id);
}

gh_err_t gh_sqlite_ledger_balance_upto(gh_db_t *db, const char *org_id, int64_t upto_id,
                                       int64_t *sum_nusd)
{
    static const char sql[] = "SELECT coalesce(sum(amount_nusd), 0) FROM ledger_entries "
                              "WHERE org_id = ? AND id <= ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    sqlite3_bind_int64(st, 2, upto_id);
    return one_int(db, st, sum_nusd);
}

gh_err_t gh_sqlite_ledger_balances_upto(gh_db_t *db, int64_t upto_id, gh_store_org_amount_fn fn,
                                        void *ctx)
{
    static const char sql[] = "SELECT org_id, sum(amount_nusd) FROM ledger_entries "
                              "WHERE id <= ? GROUP BY org_id";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, upto_id);
    return each_amount(db, st, fn, ctx);
}

gh_err_t gh_sqlite_ledger_deltas(gh_db_t *db, int64_t after_id, int64_t upto_id,
                                 gh_store_ledger_delta_fn fn, void *ctx)
{
    /* A range of the primary key: only the entries since the last look are read. */
    static const char sql[] = "SELECT org_id, kind, sum(amount_nusd) FROM ledger_entries "
                              "WHERE id > ? AND id <= ? AND kind <> 'usage' "
                              "GROUP BY org_id, kind";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, upto_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_ledger_usage_since(gh_db_t *db, const char *org_id, int64_t since,
                                      int64_t *sum_nusd)
{
    static const char sql[] = "SELECT coalesce(-sum(amount_nusd), 0) FROM ledger_entries "
                              "WHERE org_id = ? AND kind = 'usage' AND created_at >= ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    sqlite3_bind_int64(st, 2, since);
    return one_int(db, st, sum_nusd);
}

gh_err_t gh_sqlite_purchase_totals(gh_db_t *db, gh_store_org_amount_fn fn, void *ctx)
{
    static const char sql[] = "SELECT org_id, sum(amount_nusd) FROM purchases "
                              "WHERE status = 'succeeded' GROUP BY org_id";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    return each_amount(db, st, fn, ctx);
}

gh_err_t gh_sqlite_usage_cost_since(gh_db_t *db, int64_t since_ms, const char *org_id,
                                    const char *workspace_id, gh_store_usage_sum_fn fn,
                                    void *ctx)
{
    static const char sql[] =
        "SELECT org_id, workspace_id, sum(cost_nusd) FROM usage_events "
        "WHERE created_at_ms >= ?1 AND (?2 IS NULL OR org_id = ?2) "
        "AND (?3 IS NULL OR workspace_id = ?3) GROUP BY org_id, workspace_id "
        "ORDER BY org_id, workspace_id";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, since_ms);
    gh_sqlite_bind_text(st, 2, org_id);
    gh_sqlite_bind_text(st, 3, workspace_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

/* ---- limit requests ---- */

#define REQUEST_COLS                                                                            \
    "t.id, t.org_id, o.name, t.requested_by, t.requested_by_label, t.kind, t.requested_tier, " \
    "coalesce(t.monthly_cap_nusd, 0), coalesce(t.rpm, 0), coalesce(t.itpm, 0), "               \
    "coalesce(t.otpm, 0), t.reason, t.status, t.staff_note, t.decided_by, t.decided_by_label, " \
    "t.granted_tier, t.created_at, coalesce(t.decided_at, 0)"
#define REQUEST_FROM "FROM limit_requests t JOIN organizations o ON o.id = t.org_id "

static void request_row(sqlite3_stmt *st, void *out)
{
    gh_limit_request_t *r = out;
    memset(r, 0, sizeof(*r));
    int i = 0;
    COPY(st, i++, r->id);
    COPY(st, i++, r->org_id);
    COPY(st, i++, r->org_name);
    COPY(st, i++, r->requested_by);
    COPY(st, i++, r->requested_by_label);
    COPY(st, i++, r->kind);
    COPY(st, i++, r->requested_tier);
    r->monthly_cap_nusd = sqlite3_column_int64(st, i++);
    r->rpm = sqlite3_column_int64(st, i++);
    r->itpm = sqlite3_column_int64(st, i++);
    r->otpm = sqlite3_column_int64(st, i++);
    COPY(st, i++, r->reason);
    COPY(st, i++, r->status);
    COPY(st, i++, r->staff_note);
    COPY(st, i++, r->decided_by);
    COPY(st, i++, r->decided_by_label);
    COPY(st, i++, r->granted_tier);
    r->created_at = sqlite3_column_int64(st, i++);
    r->decided_at = sqlite3_column_int64(st, i++);
}

gh_err_t gh_sqlite_limit_request_insert(gh_db_t *db, const gh_limit_request_t *r)
{
    static const char sql[] =
        "INSERT INTO limit_requests (id, org_id, requested_by, requested_by_label, kind, "
        "requested_tier, monthly_cap_nusd, rpm, itpm, otpm, reason, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int i = 1;
    gh_sqlite_bind_str(st, i++, r->id);
    gh_sqlite_bind_str(st, i++, r->org_id);
    gh_sqlite_bind_str(st, i++, r->requested_by);
    gh_sqlite_bind_str(st, i++, r->requested_by_label);
    gh_sqlite_bind_str(st, i++, r->kind);
    gh_sqlite_bind_text(st, i++, r->requested_tier);
    bind_opt(st, i++, r->monthly_cap_nusd);
    bind_opt(st, i++, r->rpm);
    bind_opt(st, i++, r->itpm);
    bind_opt(st, i++, r->otpm);
    gh_sqlite_bind_str(st, i++, r->reason);
    sqlite3_bind_int64(st, i++, r->created_at);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_limit_request_get(gh_db_t *db, const char *org_id, const char *id,
                                     gh_limit_request_t *out)
{
    static const char sql[] = "SELECT " REQUEST_COLS " " REQUEST_FROM
                              "WHERE t.id = ?1 AND (?2 IS NULL OR t.org_id = ?2)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, id);
    gh_sqlite_bind_text(st, 2, org_id);
    return gh_sqlite_one(db, st, request_row, out);
}

gh_err_t gh_sqlite_limit_request_decide(gh_db_t *db, const gh_limit_request_t *r)
{
    static const char sql[] =
        "UPDATE limit_requests SET status = ?, staff_note = ?, decided_by = ?, "
        "decided_by_label = ?, granted_tier = ?, decided_at = ? "
        "WHERE id = ? AND status = 'pending'";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int i = 1;
    gh_sqlite_bind_str(st, i++, r->status);
    gh_sqlite_bind_text(st, i++, r->staff_note);
    gh_sqlite_bind_str(st, i++, r->decided_by);
    gh_sqlite_bind_str(st, i++, r->decided_by_label);
    gh_sqlite_bind_text(st, i++, r->granted_tier);
    sqlite3_bind_int64(st, i++, r->decided_at);
    gh_sqlite_bind_str(st, i++, r->id);
    gh_err_t rc = gh_sqlite_exec_one(db, st);
    return rc == GH_ENOTFOUND ? GH_ECONFLICT : rc;
}

typedef struct {
    gh_store_limit_request_fn fn;
    void *ctx;
} request_list_t;

static void request_list_row(void *p, sqlite3_stmt *st)
{
    request_list_t *l = p;
    gh_limit_request_t r;
    request_row(st, &r);
    l->fn(l->ctx, &r);
}

gh_err_t gh_sqlite_limit_requests_list(gh_db_t *db, const char *org_id, const char *status,
                                       const gh_page_t *page, gh_store_limit_request_fn fn,
                                       void *ctx, bool *has_more)
{
    gh_sqlite_arg_t args[4] = {GH_ARG_TEXT(org_id), GH_ARG_TEXT(org_id), GH_ARG_TEXT(status),
                               GH_ARG_TEXT(status)};
    request_list_t l = {fn, ctx};
    return gh_sqlite_page(db, REQUEST_COLS,
                          REQUEST_FROM "WHERE (? IS NULL OR t.org_id = ?) "
                                       "AND (? IS NULL OR t.status = ?)",
                          "t.id", args, 4, page, false, request_list_row, &l, has_more);
}

/* ---- staff ---- */

gh_err_t gh_sqlite_staff_add(gh_db_t *db, const char *account_id, const char *added_by,
                             int64_t now)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO staff (account_id, added_at, added_by) VALUES (?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, account_id);
    sqlite3_bind_int64(st, 2, now);
    gh_sqlite_bind_str(st, 3, added_by);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_staff_remove(gh_db_t *db, const char *account_id)
{
    static const char sql[] = "DELETE FROM staff WHERE account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, account_id);
    return gh_sqlite_exec_one(db, st);
}

gh_err_t gh_sqlite_staff_is(gh_db_t *db, const char *account_id, bool *out)
{
    static const char sql[] = "SELECT count(*) FROM staff WHERE account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, account_id);
    int64_t n = 0;
    gh_err_t rc = one_int(db, st, &n);
    *out = n > 0;
    return rc;
}

gh_err_t gh_sqlite_data_version(gh_db_t *db, int64_t *version)
{
    static const char sql[] = "PRAGMA data_version";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    return one_int(db, st, version);
}

gh_err_t gh_sqlite_org_admin_emails(gh_db_t *db, const char *org_id, gh_store_org_id_fn fn,
                                    void *ctx)
{
    static const char sql[] =
        "SELECT a.email FROM memberships m JOIN accounts a ON a.id = m.account_id "
        "WHERE m.org_id = ? AND m.role = 'admin' ORDER BY m.created_at, a.id";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_orgs_search(gh_db_t *db, const char *query, int limit,
                               gh_store_org_brief_fn fn, void *ctx)
{
    /* instr() rather than LIKE: the query is matched as it is, with no wildcards. */
    static const char sql[] =
        "SELECT id, name, created_at FROM organizations "
        "WHERE ?1 IS NULL OR instr(lower(name), lower(?1)) > 0 OR id = ?1 "
        "ORDER BY rowid DESC LIMIT ?2";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_text(st, 1, query);
    sqlite3_bind_int(st, 2, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}
