/* Store functions for organization members and invitations (SQLite backend). */
#include <stdio.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

/* ---- members ---- */

#define USER_COLS "a.id, a.email, coalesce(a.full_name, ''), t.role, t.created_at"

static void user_row(sqlite3_stmt *st, void *out)
{
    gh_org_user_t *u = out;
    memset(u, 0, sizeof(*u));
    COPY(st, 0, u->id);
    COPY(st, 1, u->email);
    COPY(st, 2, u->name);
    COPY(st, 3, u->role);
    u->added_at = sqlite3_column_int64(st, 4);
}

typedef struct {
    gh_store_user_fn fn;
    void *ctx;
} user_list_t;

static void user_list_row(void *p, sqlite3_stmt *st)
{
    user_list_t *l = p;
    gh_org_user_t u;
    user_row(st, &u);
    l->fn(l->ctx, &u);
}

gh_err_t gh_sqlite_users_list(gh_db_t *db, const char *org_id, const char *email,
                              const gh_page_t *page, gh_store_user_fn fn, void *ctx,
                              bool *has_more)
{
    gh_sqlite_arg_t args[2] = {GH_ARG_TEXT(org_id), GH_ARG_TEXT(email)};
    user_list_t l = {fn, ctx};
    return gh_sqlite_page(db, USER_COLS,
                          email ? "FROM memberships t JOIN accounts a ON a.id = t.account_id "
                                  "WHERE t.org_id = ? AND a.email = ?"
                                : "FROM memberships t JOIN accounts a ON a.id = t.account_id "
                                  "WHERE t.org_id = ?",
                          "t.account_id", args, email ? 2 : 1, page, false, user_list_row, &l,
                          has_more);
}

gh_err_t gh_sqlite_user_get(gh_db_t *db, const char *org_id, const char *account_id,
                            gh_org_user_t *out)
{
    static const char sql[] = "SELECT " USER_COLS " FROM memberships t "
                              "JOIN accounts a ON a.id = t.account_id "
                              "WHERE t.org_id = ? AND t.account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, account_id, -1, SQLITE_STATIC);
    return gh_sqlite_one(db, st, user_row, out);
}

gh_err_t gh_sqlite_membership_insert(gh_db_t *db, const char *org_id, const char *account_id,
                                     const char *role, int64_t now)
{
    static const char sql[] = "INSERT INTO memberships (org_id, account_id, role, created_at) "
                              "VALUES (?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, account_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_membership_set_role(gh_db_t *db, const char *org_id, const char *account_id,
                                       const char *role)
{
    static const char sql[] = "UPDATE memberships SET role = ? WHERE org_id = ? AND account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, account_id, -1, SQLITE_STATIC);
    gh_err_t rc = gh_sqlite_exec(db, st);
    return !rc && sqlite3_changes(sq(db)->conn) == 0 ? GH_ENOTFOUND : rc;
}

gh_err_t gh_sqlite_membership_delete(gh_db_t *db, const char *org_id, const char *account_id)
{
    static const char del_ws[] = "DELETE FROM workspace_members WHERE org_id = ? AND account_id = ?";
    static const char del_m[] = "DELETE FROM memberships WHERE org_id = ? AND account_id = ?";
    static const char clear_sessions[] =
        "UPDATE sessions SET current_org_id = NULL WHERE current_org_id = ? AND account_id = ?";
    const char *const sqls[] = {del_ws, clear_sessions, del_m};
    gh_err_t rc = gh_sqlite_begin(db);
    if (rc)
        return rc;
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st = gh_sqlite_stmt(db, sqls[i]);
        if (!st) {
            rc = GH_ESTORE;
            break;
        }
        sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, account_id, -1, SQLITE_STATIC);
        if ((rc = gh_sqlite_exec(db, st)))
            break;
        if (sqls[i] == del_m && sqlite3_changes(sq(db)->conn) == 0)
            rc = GH_ENOTFOUND;
    }
    if (rc) {
        gh_sqlite_rollback(db);
        return rc;
    }
    return gh_sqlite_commit(db);
}

gh_err_t gh_sqlite_admin_count(gh_db_t *db, const char *org_id, int *count)
{
    static const char sql[] = "SELECT count(*) FROM memberships WHERE org_id = ? AND role = 'admin'";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? GH_OK : gh_sqlite_step_err(db, rc);
}

/* ---- invites ---- */

#define INVITE_COLS                                                                           \
    "t.id, t.org_id, t.email, t.role, t.invited_at, t.expires_at, coalesce(t.accepted_at, 0), " \
    "coalesce(t.deleted_at, 0)"

static void invite_row(sqlite3_stmt *st, void *out)
{
    gh_invite_t *inv = out;
    memset(inv, 0, sizeof(*inv));
    COPY(st, 0, inv->id);
    COPY(st, 1, inv->org_id);
    COPY(st, 2, inv->email);
    COPY(st, 3, inv->role);
    inv->invited_at = sqlite3_column_int64(st, 4);
    inv->expires_at = sqlite3_column_int64(st, 5);
    inv->accepted_at = sqlite3_column_int64(st, 6);
    inv->deleted_at = sqlite3_column_int64(st, 7);
}

typedef struct {
    gh_store_invite_fn fn;
    void *ctx;
} invite_list_t;

static void invite_list_row(void *p, sqlite3_stmt *st)
{
    invite_list_t *l = p;
    gh_invite_t inv;
    invite_row(st, &inv);
    l->fn(l->ctx, &inv);
}

gh_err_t gh_sqlite_invites_list(gh_db_t *db, const char *org_id, const char *status, int64_t now,
                                const gh_page_t *page, gh_store_invite_fn fn, void *ctx,
                                bool *has_more)
{
    static const struct {
        const char *status, *where;
        bool uses_now;
    } filters[] = {
        {"pending", "FROM invites t WHERE t.org_id = ? AND t.accepted_at IS NULL AND "
                    "t.deleted_at IS NULL AND t.expires_at > ?", true},
        {"expired", "FROM invites t WHERE t.org_id = ? AND t.accepted_at IS NULL AND "
                    "t.deleted_at IS NULL AND t.expires_at <= ?", true},
        {"accepted", "FROM invites t WHERE t.org_id = ? AND t.accepted_at IS NOT NULL", false},
        {"deleted", "FROM invites t WHERE t.org_id = ? AND t.deleted_at IS NOT NULL", false},
    };
    const char *where = "FROM invites t WHERE t.org_id = ?";
    bool uses_now = false;
    for (size_t i = 0; status && i < sizeof(filters) / sizeof(filters[0]); i++)
        if (!strcmp(status, filters[i].status)) {
            where = filters[i].where;
            uses_now = filters[i].uses_now;
        }
    gh_sqlite_arg_t args[2] = {GH_ARG_TEXT(org_id), GH_ARG_NUM(now)};
    invite_list_t l = {fn, ctx};
    return gh_sqlite_page(db, INVITE_COLS, where, "t.id", args, uses_now ? 2 : 1, page, false,
                          invite_list_row, &l, has_more);
}

gh_err_t gh_sqlite_invite_get(gh_db_t *db, const char *org_id, const char *id, gh_invite_t *out)
{
    static const char sql[] = "SELECT " INVITE_COLS " FROM invites t WHERE t.org_id = ? AND t.id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    return gh_sqlite_one(db, st, invite_row, out);
}

gh_err_t gh_sqlite_invite_by_token(gh_db_t *db, const char *token_hash, gh_invite_t *out)
{
    static const char sql[] = "SELECT " INVITE_COLS " FROM invites t WHERE t.token_hash = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    return gh_sqlite_one(db, st, invite_row, out);
}

gh_err_t gh_sqlite_invite_open_for(gh_db_t *db, const char *org_id, const char *email,
                                   gh_invite_t *out)
{
    static const char sql[] = "SELECT " INVITE_COLS " FROM invites t WHERE t.org_id = ? AND "
                              "t.email = ? AND t.accepted_at IS NULL AND t.deleted_at IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
    return gh_sqlite_one(db, st, invite_row, out);
}

gh_err_t gh_sqlite_invite_insert(gh_db_t *db, const gh_invite_t *inv, const char *token_hash)
{
    static const char sql[] = "INSERT INTO invites (id, org_id, email, role, token_hash, "
                              "invited_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, inv->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, inv->org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, inv->email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, inv->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, inv->invited_at);
    sqlite3_bind_int64(st, 7, inv->expires_at);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_invite_renew(gh_db_t *db, const char *id, const char *token_hash,
                                int64_t expires_at)
{
    static const char sql[] = "UPDATE invites SET token_hash = ?, expires_at = ? WHERE id = ? "
                              "AND accepted_at IS NULL AND deleted_at IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, expires_at);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    gh_err_t rc = gh_sqlite_exec(db, st);
    return !rc && sqlite3_changes(sq(db)->conn) == 0 ? GH_ECONFLICT : rc;
}

gh_err_t gh_sqlite_invite_mark(gh_db_t *db, const char *id, bool accepted, int64_t now)
{
    static const char acc[] = "UPDATE invites SET accepted_at = ? WHERE id = ? "
                              "AND accepted_at IS NULL AND deleted_at IS NULL";
    static const char del[] = "UPDATE invites SET deleted_at = ? WHERE id = ? "
                              "AND accepted_at IS NULL AND deleted_at IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, accepted ? acc : del);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    gh_err_t rc = gh_sqlite_exec(db, st);
    /* Nothing changed: another request accepted or deleted it first. */
    return !rc && sqlite3_changes(sq(db)->conn) == 0 ? GH_ECONFLICT : rc;
}
