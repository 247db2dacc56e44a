/* Store functions for workspaces and their members (PostgreSQL backend): the port of
 * src/store/sqlite/workspaces.c, with the same results, error codes and list order. */
#include <stdio.h>
#include <string.h>

#include "store/postgres/pg_int.h"

/* The count(*) a query returns, into `*count` (0 on failure). */
static void count_row(const PGresult *res, int row, void *out)
{
    *(int *)out = (int)gh_pgs_col_i64(res, row, 0);
}

static gh_err_t count_of(gh_db_t *db, const char *sql, int n, const char *const *p, int *count)
{
    *count = 0;
    return gh_pgs_one(db, sql, n, p, count_row, count);
}

#define WS_COLS                                                                               \
    "t.id, t.org_id, t.name, t.display_color, t.is_default::int, "                           \
    GH_PGS_EPOCH("t.created_at") ", " GH_PGS_EPOCH("t.archived_at") ", "        \
    "CASE WHEN t.is_default THEN (SELECT count(*) FROM memberships o WHERE o.org_id = t.org_id) " \
    "ELSE (SELECT count(*) FROM workspace_members m WHERE m.workspace_id = t.id) END"

static void ws_row(const PGresult *res, int row, void *out)
{
    gh_workspace_t *w = out;
    memset(w, 0, sizeof(*w));
    GH_PGS_COPY(res, row, 0, w->id);
    GH_PGS_COPY(res, row, 1, w->org_id);
    GH_PGS_COPY(res, row, 2, w->name);
    GH_PGS_COPY(res, row, 3, w->display_color);
    w->is_default = gh_pgs_col_i64(res, row, 4) != 0;
    w->created_at = gh_pgs_col_i64(res, row, 5);
    w->archived_at = gh_pgs_col_i64(res, row, 6);
    w->member_count = (int)gh_pgs_col_i64(res, row, 7);
}

typedef struct {
    gh_store_workspace_fn fn;
    void *ctx;
} ws_list_t;

static void ws_list_row(void *p, const PGresult *res, int row)
{
    ws_list_t *l = p;
    gh_workspace_t w;
    ws_row(res, row, &w);
    l->fn(l->ctx, &w);
}

gh_err_t gh_pgs_workspaces_list(gh_db_t *db, const char *org_id, const char *member_id,
                                bool include_archived, const gh_page_t *page,
                                gh_store_workspace_fn fn, void *ctx, bool *has_more)
{
    char where[512];
    int n = snprintf(where, sizeof(where), "FROM workspaces t WHERE t.org_id = $1%s%s",
                     include_archived ? "" : " AND t.archived_at IS NULL",
                     member_id ? " AND (t.is_default OR EXISTS (SELECT 1 FROM workspace_members "
                                 "m WHERE m.workspace_id = t.id AND m.account_id = $2))"
                               : "");
    if (n < 0 || (size_t)n >= sizeof(where))
        return GH_EINTERNAL;
    const char *args[2] = {org_id, member_id};
    ws_list_t l = {fn, ctx};
    return gh_pgs_page(db, WS_COLS, where, "t.id", args, member_id ? 2 : 1, page, false,
                       ws_list_row, &l, has_more);
}

gh_err_t gh_pgs_workspace_get(gh_db_t *db, const char *org_id, const char *id,
                              gh_workspace_t *out)
{
    static const char sql[] =
        "SELECT " WS_COLS " FROM workspaces t WHERE t.org_id = $1 AND t.id = $2";
    const char *p[] = {org_id, id};
    return gh_pgs_one(db, sql, 2, p, ws_row, out);
}

gh_err_t gh_pgs_workspace_count(gh_db_t *db, const char *org_id, int *count)
{
    static const char sql[] =
        "SELECT count(*) FROM workspaces WHERE org_id = $1 AND archived_at IS NULL";
    const char *p[] = {org_id};
    return count_of(db, sql, 1, p, count);
}

gh_err_t gh_pgs_workspace_insert(gh_db_t *db, const gh_workspace_t *w)
{
    static const char sql[] = "INSERT INTO workspaces (id, org_id, name, display_color, "
                              "is_default, created_at) VALUES ($1, $2, $3, $4, false, "
                              GH_PGS_TIME_IN("$5") ")";
    gh_pgs_num_t b_at;
    const char *p[] = {w->id, w->org_id, w->name, w->display_color,
                       gh_pgs_i64(&b_at, w->created_at)};
    return gh_pgs_exec(db, sql, 5, p);
}

gh_err_t gh_pgs_workspace_update(gh_db_t *db, const gh_workspace_t *w)
{
    static const char sql[] = "UPDATE workspaces SET name = $1, display_color = $2 WHERE id = $3";
    const char *p[] = {w->name, w->display_color, w->id};
    return gh_pgs_exec(db, sql, 3, p);
}

gh_err_t gh_pgs_workspace_archive(gh_db_t *db, const char *id, int64_t now)
{
    static const char ws[] = "UPDATE workspaces SET archived_at = " GH_PGS_TIME_IN("$1")
                             " WHERE id = $2 AND archived_at IS NULL";
    static const char keys[] = "UPDATE keys SET status = 'archived' WHERE workspace_id = $1 "
                               "AND status <> 'archived'";
    gh_pgs_num_t b_now;
    const char *p_ws[] = {gh_pgs_i64(&b_now, now), id};
    const char *p_keys[] = {id};
    gh_err_t rc = gh_pgs_begin(db);
    if (rc)
        return rc;
    if ((rc = gh_pgs_exec(db, ws, 2, p_ws)) || (rc = gh_pgs_exec(db, keys, 1, p_keys)))
        goto out_rollback;
    return gh_pgs_commit(db);
out_rollback:
    gh_pgs_rollback(db);
    return rc;
}

/* ---- workspace members ---- */

#define WSM_COLS "t.workspace_id, t.account_id, t.role, a.email, coalesce(a.full_name, '')"
#define WSM_FROM "FROM workspace_members t JOIN accounts a ON a.id = t.account_id "

static void wsm_row(const PGresult *res, int row, void *out)
{
    gh_ws_member_t *m = out;
    memset(m, 0, sizeof(*m));
    GH_PGS_COPY(res, row, 0, m->workspace_id);
    GH_PGS_COPY(res, row, 1, m->user_id);
    GH_PGS_COPY(res, row, 2, m->role);
    GH_PGS_COPY(res, row, 3, m->email);
    GH_PGS_COPY(res, row, 4, m->name);
}

typedef struct {
    gh_store_ws_member_fn fn;
    void *ctx;
} wsm_list_t;

static void wsm_list_row(void *p, const PGresult *res, int row)
{
    wsm_list_t *l = p;
    gh_ws_member_t m;
    wsm_row(res, row, &m);
    l->fn(l->ctx, &m);
}

gh_err_t gh_pgs_ws_members_list(gh_db_t *db, const char *workspace_id, const gh_page_t *page,
                                gh_store_ws_member_fn fn, void *ctx, bool *has_more)
{
    const char *args[1] = {workspace_id};
    wsm_list_t l = {fn, ctx};
    return gh_pgs_page(db, WSM_COLS, WSM_FROM "WHERE t.workspace_id = $1", "t.account_id", args,
                       1, page, false, wsm_list_row, &l, has_more);
}

gh_err_t gh_pgs_ws_member_get(gh_db_t *db, const char *workspace_id, const char *user_id,
                              gh_ws_member_t *out)
{
    static const char sql[] =
        "SELECT " WSM_COLS " " WSM_FROM "WHERE t.workspace_id = $1 AND t.account_id = $2";
    const char *p[] = {workspace_id, user_id};
    return gh_pgs_one(db, sql, 2, p, wsm_row, out);
}

gh_err_t gh_pgs_ws_member_insert(gh_db_t *db, const char *org_id, const char *workspace_id,
                                 const char *user_id, const char *role, int64_t now)
{
    static const char sql[] = "INSERT INTO workspace_members (workspace_id, account_id, org_id, "
                              "role, created_at) VALUES ($1, $2, $3, $4, " GH_PGS_TIME_IN("$5") ")";
    gh_pgs_num_t b_now;
    const char *p[] = {workspace_id, user_id, org_id, role, gh_pgs_i64(&b_now, now)};
    return gh_pgs_exec(db, sql, 5, p);
}

gh_err_t gh_pgs_ws_member_set_role(gh_db_t *db, const char *workspace_id, const char *user_id,
                                   const char *role)
{
    static const char sql[] =
        "UPDATE workspace_members SET role = $1 WHERE workspace_id = $2 AND account_id = $3";
    const char *p[] = {role, workspace_id, user_id};
    gh_err_t rc = gh_pgs_exec(db, sql, 3, p);
    return !rc && gh_pgs_changes(db) == 0 ? GH_ENOTFOUND : rc;
}

gh_err_t gh_pgs_ws_member_delete(gh_db_t *db, const char *workspace_id, const char *user_id)
{
    static const char sql[] =
        "DELETE FROM workspace_members WHERE workspace_id = $1 AND account_id = $2";
    const char *p[] = {workspace_id, user_id};
    gh_err_t rc = gh_pgs_exec(db, sql, 2, p);
    return !rc && gh_pgs_changes(db) == 0 ? GH_ENOTFOUND : rc;
}
