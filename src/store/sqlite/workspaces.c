/* Store functions for workspaces and their members (SQLite backend). */
#include <stdio.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

#define WS_COLS                                                                               \
    "t.id, t.org_id, t.name, t.display_color, t.is_default, t.created_at, "                  \
    "coalesce(t.archived_at, 0), "                                                            \
    "CASE WHEN t.is_default THEN (SELECT count(*) FROM memberships o WHERE o.org_id = t.org_id) " \
    "ELSE (SELECT count(*) FROM workspace_members m WHERE m.workspace_id = t.id) END"

static void ws_row(sqlite3_stmt *st, void *out)
{
    gh_workspace_t *w = out;
    memset(w, 0, sizeof(*w));
    COPY(st, 0, w->id);
    COPY(st, 1, w->org_id);
    COPY(st, 2, w->name);
    COPY(st, 3, w->display_color);
    w->is_default = sqlite3_column_int(st, 4) != 0;
    w->created_at = sqlite3_column_int64(st, 5);
    w->archived_at = sqlite3_column_int64(st, 6);
    w->member_count = sqlite3_column_int(st, 7);
}

typedef struct {
    gh_store_workspace_fn fn;
    void *ctx;
} ws_list_t;

static void ws_list_row(void *p, sqlite3_stmt *st)
{
    ws_list_t *l = p;
    gh_workspace_t w;
    ws_row(st, &w);
    l->fn(l->ctx, &w);
}

gh_err_t gh_sqlite_workspaces_list(gh_db_t *db, const char *org_id, const char *member_id,
                                   bool include_archived, const gh_page_t *page,
                                   gh_store_workspace_fn fn, void *ctx, bool *has_more)
{
    char where[512];
    snprintf(where, sizeof(where), "FROM workspaces t WHERE t.org_id = ?%s%s",
             include_archived ? "" : " AND t.archived_at IS NULL",
             member_id ? " AND (t.is_default = 1 OR EXISTS (SELECT 1 FROM workspace_members m "
                         "WHERE m.workspace_id = t.id AND m.account_id = ?))"
                       : "");
    gh_sqlite_arg_t args[2] = {GH_ARG_TEXT(org_id), GH_ARG_TEXT(member_id)};
    ws_list_t l = {fn, ctx};
    return gh_sqlite_page(db, WS_COLS, where, "t.id", args, member_id ? 2 : 1, page, false,
                          ws_list_row, &l, has_more);
}

gh_err_t gh_sqlite_workspace_get(gh_db_t *db, const char *org_id, const char *id,
                                 gh_workspace_t *out)
{
    static const char sql[] = "SELECT " WS_COLS " FROM workspaces t WHERE t.org_id = ? AND t.id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    return gh_sqlite_one(db, st, ws_row, out);
}

gh_err_t gh_sqlite_workspace_count(gh_db_t *db, const char *org_id, int *count)
{
    static const char sql[] =
        "SELECT count(*) FROM workspaces WHERE org_id = ? AND archived_at IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_workspace_insert(gh_db_t *db, const gh_workspace_t *w)
{
    static const char sql[] = "INSERT INTO workspaces (id, org_id, name, display_color, "
                              "is_default, created_at) VALUES (?, ?, ?, ?, 0, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, w->display_color, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, w->created_at);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_workspace_update(gh_db_t *db, const gh_workspace_t *w)
{
    static const char sql[] = "UPDATE workspaces SET name = ?, display_color = ? WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, w->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->display_color, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->id, -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_workspace_archive(gh_db_t *db, const char *id, int64_t now)
{
    static const char ws[] =
        "UPDATE workspaces SET archived_at = ? WHERE id = ? AND archived_at IS NULL";
    static const char keys[] = "UPDATE keys SET status = 'archived' WHERE workspace_id = ? "
                               "AND status != 'archived'";
    gh_err_t rc = gh_sqlite_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *st = gh_sqlite_stmt(db, ws);
    if (!st)
        goto out_store;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    if ((rc = gh_sqlite_exec(db, st)))
        goto out_rollback;
    if (!(st = gh_sqlite_stmt(db, keys)))
        goto out_store;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if ((rc = gh_sqlite_exec(db, st)))
        goto out_rollback;
    return gh_sqlite_commit(db);
out_store:
    rc = GH_ESTORE;
out_rollback:
    gh_sqlite_rollback(db);
    return rc;
}

/* ---- workspace members ---- */

#define WSM_COLS "t.workspace_id, t.account_id, t.role, a.email, coalesce(a.full_name, '')"
#define WSM_FROM "FROM workspace_members t JOIN accounts a ON a.id = t.account_id "

static void wsm_row(sqlite3_stmt *st, void *out)
{
    gh_ws_member_t *m = out;
    memset(m, 0, sizeof(*m));
    COPY(st, 0, m->workspace_id);
    COPY(st, 1, m->user_id);
    COPY(st, 2, m->role);
    COPY(st, 3, m->email);
    COPY(st, 4, m->name);
}

typedef struct {
    gh_store_ws_member_fn fn;
    void *ctx;
} wsm_list_t;

static void wsm_list_row(void *p, sqlite3_stmt *st)
{
    wsm_list_t *l = p;
    gh_ws_member_t m;
    wsm_row(st, &m);
    l->fn(l->ctx, &m);
}

gh_err_t gh_sqlite_ws_members_list(gh_db_t *db, const char *workspace_id, const gh_page_t *page,
                                   gh_store_ws_member_fn fn, void *ctx, bool *has_more)
{
    gh_sqlite_arg_t args[1] = {GH_ARG_TEXT(workspace_id)};
    wsm_list_t l = {fn, ctx};
    return gh_sqlite_page(db, WSM_COLS, WSM_FROM "WHERE t.workspace_id = ?", "t.account_id", args,
                          1, page, false, wsm_list_row, &l, has_more);
}

gh_err_t gh_sqlite_ws_member_get(gh_db_t *db, const char *workspace_id, const char *user_id,
                                 gh_ws_member_t *out)
{
    static const char sql[] =
        "SELECT " WSM_COLS " " WSM_FROM "WHERE t.workspace_id = ? AND t.account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, workspace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    return gh_sqlite_one(db, st, wsm_row, out);
}

gh_err_t gh_sqlite_ws_member_insert(gh_db_t *db, const char *org_id, const char *workspace_id,
                                    const char *user_id, const char *role, int64_t now)
{
    static const char sql[] = "INSERT INTO workspace_members (workspace_id, account_id, org_id, "
                              "role, created_at) VALUES (?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, workspace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_ws_member_set_role(gh_db_t *db, const char *workspace_id, const char *user_id,
                                      const char *role)
{
    static const char sql[] =
        "UPDATE workspace_members SET role = ? WHERE workspace_id = ? AND account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, workspace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user_id, -1, SQLITE_STATIC);
    gh_err_t rc = gh_sqlite_exec(db, st);
    return !rc && sqlite3_changes(sq(db)->conn) == 0 ? GH_ENOTFOUND : rc;
}

gh_err_t gh_sqlite_ws_member_delete(gh_db_t *db, const char *workspace_id, const char *user_id)
{
    static const char sql[] =
        "DELETE FROM workspace_members WHERE workspace_id = ? AND account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, workspace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    gh_err_t rc = gh_sqlite_exec(db, st);
    return !rc && sqlite3_changes(sq(db)->conn) == 0 ? GH_ENOTFOUND : rc;
}
