/* Store functions for organization members and invitations (PostgreSQL backend): the port of
 * src/store/sqlite/members.c, with the same results, error codes and list order. Times are
 * epoch seconds in the records and timestamptz in the tables; lists page by `seq`. */
#include <string.h>

#include "store/postgres/pg_int.h"

/* ---- members ---- */

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

#define USER_COLS                                                                             \
    "a.id, a.email, coalesce(a.full_name, ''), t.role, " GH_PGS_EPOCH("t.created_at")

static void user_row(const PGresult *res, int row, void *out)
{
    gh_org_user_t *u = out;
    memset(u, 0, sizeof(*u));
    GH_PGS_COPY(res, row, 0, u->id);
    GH_PGS_COPY(res, row, 1, u->email);
    GH_PGS_COPY(res, row, 2, u->name);
    GH_PGS_COPY(res, row, 3, u->role);
    u->added_at = gh_pgs_col_i64(res, row, 4);
}

typedef struct {
    gh_store_user_fn fn;
    void *ctx;
} user_list_t;

static void user_list_row(void *p, const PGresult *res, int row)
{
    user_list_t *l = p;
    gh_org_user_t u;
    user_row(res, row, &u);
    l->fn(l->ctx, &u);
}

gh_err_t gh_pgs_users_list(gh_db_t *db, const char *org_id, const char *email,
                           const gh_page_t *page, gh_store_user_fn fn, void *ctx, bool *has_more)
{
    const char *args[2] = {org_id, email};
    user_list_t l = {fn, ctx};
    return gh_pgs_page(db, USER_COLS,
                       email ? "FROM memberships t JOIN accounts a ON a.id = t.account_id "
                               "WHERE t.org_id = $1 AND a.email = $2"
                             : "FROM memberships t JOIN accounts a ON a.id = t.account_id "
                               "WHERE t.org_id = $1",
                       "t.account_id", args, email ? 2 : 1, page, false, user_list_row, &l,
                       has_more);
}

gh_err_t gh_pgs_user_get(gh_db_t *db, const char *org_id, const char *account_id,
                         gh_org_user_t *out)
{
    static const char sql[] = "SELECT " USER_COLS " FROM memberships t "
                              "JOIN accounts a ON a.id = t.account_id "
                              "WHERE t.org_id = $1 AND t.account_id = $2";
    const char *p[] = {org_id, account_id};
    return gh_pgs_one(db, sql, 2, p, user_row, out);
}

gh_err_t gh_pgs_membership_insert(gh_db_t *db, const char *org_id, const char *account_id,
                                  const char *role, int64_t now)
{
    static const char sql[] = "INSERT INTO memberships (org_id, account_id, role, created_at) "
                              "VALUES ($1, $2, $3, " GH_PGS_TIME_IN("$4") ")";
    gh_pgs_num_t b_now;
    const char *p[] = {org_id, account_id, role, gh_pgs_i64(&b_now, now)};
    return gh_pgs_exec(db, sql, 4, p);
}

gh_err_t gh_pgs_membership_set_role(gh_db_t *db, const char *org_id, const char *account_id,
                                    const char *role)
{
    static const char sql[] =
        "UPDATE memberships SET role = $1 WHERE org_id = $2 AND account_id = $3";
    const char *p[] = {role, org_id, account_id};
    gh_err_t rc = gh_pgs_exec(db, sql, 3, p);
    return !rc && gh_pgs_changes(db) == 0 ? GH_ENOTFOUND : rc;
}

gh_err_t gh_pgs_membership_delete(gh_db_t *db, const char *org_id, const char *account_id)
{
    static const char del_ws[] =
        "DELETE FROM workspace_members WHERE org_id = $1 AND account_id = $2";
    static const char del_m[] = "DELETE FROM memberships WHERE org_id = $1 AND account_id = $2";
    static const char clear_sessions[] = "UPDATE sessions SET current_org_id = NULL "
                                         "WHERE current_org_id = $1 AND account_id = $2";
    const char *const sqls[] = {del_ws, clear_sessions, del_m};
    const char *p[] = {org_id, account_id};
    gh_err_t rc = gh_pgs_begin(db);
    if (rc)
        return rc;
    for (int i = 0; i < 3; i++) {
        if ((rc = gh_pgs_exec(db, sqls[i], 2, p)))
            break;
        if (sqls[i] == del_m && gh_pgs_changes(db) == 0)
            rc = GH_ENOTFOUND;
    }
    if (rc) {
        gh_pgs_rollback(db);
        return rc;
    }
    return gh_pgs_commit(db);
}

gh_err_t gh_pgs_admin_count(gh_db_t *db, const char *org_id, int *count)
{
    static const char sql[] =
        "SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'admin'";
    const char *p[] = {org_id};
    return count_of(db, sql, 1, p, count);
}

/* ---- invites ---- */

#define INVITE_COLS                                                                           \
    "t.id, t.org_id, t.email, t.role, " GH_PGS_EPOCH("t.invited_at") ", "                    \
    GH_PGS_EPOCH("t.expires_at") ", " GH_PGS_EPOCH("t.accepted_at") ", "         \
    GH_PGS_EPOCH("t.deleted_at") ""

static void invite_row(const PGresult *res, int row, void *out)
{
    gh_invite_t *inv = out;
    memset(inv, 0, sizeof(*inv));
    GH_PGS_COPY(res, row, 0, inv->id);
    GH_PGS_COPY(res, row, 1, inv->org_id);
    GH_PGS_COPY(res, row, 2, inv->email);
    GH_PGS_COPY(res, row, 3, inv->role);
    inv->invited_at = gh_pgs_col_i64(res, row, 4);
    inv->expires_at = gh_pgs_col_i64(res, row, 5);
    inv->accepted_at = gh_pgs_col_i64(res, row, 6);
    inv->deleted_at = gh_pgs_col_i64(res, row, 7);
}

typedef struct {
    gh_store_invite_fn fn;
    void *ctx;
} invite_list_t;

static void invite_list_row(void *p, const PGresult *res, int row)
{
    invite_list_t *l = p;
    gh_invite_t inv;
    invite_row(res, row, &inv);
    l->fn(l->ctx, &inv);
}

gh_err_t gh_pgs_invites_list(gh_db_t *db, const char *org_id, const char *status, int64_t now,
                             const gh_page_t *page, gh_store_invite_fn fn, void *ctx,
                             bool *has_more)
{
    static const struct {
        const char *status, *where;
        bool uses_now;
    } filters[] = {
        {"pending", "FROM invites t WHERE t.org_id = $1 AND t.accepted_at IS NULL AND "
                    "t.deleted_at IS NULL AND t.expires_at > " GH_PGS_TIME_IN("$2"), true},
        {"expired", "FROM invites t WHERE t.org_id = $1 AND t.accepted_at IS NULL AND "
                    "t.deleted_at IS NULL AND t.expires_at <= " GH_PGS_TIME_IN("$2"), true},
        {"accepted", "FROM invites t WHERE t.org_id = $1 AND t.accepted_at IS NOT NULL", false},
        {"deleted", "FROM invites t WHERE t.org_id = $1 AND t.deleted_at IS NOT NULL", false},
    };
    const char *where = "FROM invites t WHERE t.org_id = $1";
    bool uses_now = false;
    for (size_t i = 0; status && i < sizeof(filters) / sizeof(filters[0]); i++)
        if (!strcmp(status, filters[i].status)) {
            where = filters[i].where;
            uses_now = filters[i].uses_now;
        }
    gh_pgs_num_t b_now;
    const char *args[2] = {org_id, gh_pgs_i64(&b_now, now)};
    invite_list_t l = {fn, ctx};
    return gh_pgs_page(db, INVITE_COLS, where, "t.id", args, uses_now ? 2 : 1, page, false,
                       invite_list_row, &l, has_more);
}

gh_err_t gh_pgs_invite_get(gh_db_t *db, const char *org_id, const char *id, gh_invite_t *out)
{
    static const char sql[] =
        "SELECT " INVITE_COLS " FROM invites t WHERE t.org_id = $1 AND t.id = $2";
    const char *p[] = {org_id, id};
    return gh_pgs_one(db, sql, 2, p, invite_row, out);
}

gh_err_t gh_pgs_invite_by_token(gh_db_t *db, const char *token_hash, gh_invite_t *out)
{
    static const char sql[] = "SELECT " INVITE_COLS " FROM invites t WHERE t.token_hash = $1";
    const char *p[] = {token_hash};
    return gh_pgs_one(db, sql, 1, p, invite_row, out);
}

gh_err_t gh_pgs_invite_open_for(gh_db_t *db, const char *org_id, const char *email,
                                gh_invite_t *out)
{
    static const char sql[] = "SELECT " INVITE_COLS " FROM invites t WHERE t.org_id = $1 AND "
                              "t.email = $2 AND t.accepted_at IS NULL AND t.deleted_at IS NULL";
    const char *p[] = {org_id, email};
    return gh_pgs_one(db, sql, 2, p, invite_row, out);
}

gh_err_t gh_pgs_invite_insert(gh_db_t *db, const gh_invite_t *inv, const char *token_hash)
{
    static const char sql[] = "INSERT INTO invites (id, org_id, email, role, token_hash, "
                              "invited_at, expires_at) VALUES ($1, $2, $3, $4, $5, "
                              GH_PGS_TIME_IN("$6") ", " GH_PGS_TIME_IN("$7") ")";
    gh_pgs_num_t b_inv, b_exp;
    const char *p[] = {inv->id,
                       inv->org_id,
                       inv->email,
                       inv->role,
                       token_hash,
                       gh_pgs_i64(&b_inv, inv->invited_at),
                       gh_pgs_i64(&b_exp, inv->expires_at)};
    return gh_pgs_exec(db, sql, 7, p);
}

gh_err_t gh_pgs_invite_renew(gh_db_t *db, const char *id, const char *token_hash,
                             int64_t expires_at)
{
    static const char sql[] = "UPDATE invites SET token_hash = $1, expires_at = "
                              GH_PGS_TIME_IN("$2") " WHERE id = $3 "
                              "AND accepted_at IS NULL AND deleted_at IS NULL";
    gh_pgs_num_t b_exp;
    const char *p[] = {token_hash, gh_pgs_i64(&b_exp, expires_at), id};
    gh_err_t rc = gh_pgs_exec(db, sql, 3, p);
    return !rc && gh_pgs_changes(db) == 0 ? GH_ECONFLICT : rc;
}

gh_err_t gh_pgs_invite_mark(gh_db_t *db, const char *id, bool accepted, int64_t now)
{
    static const char acc[] = "UPDATE invites SET accepted_at = " GH_PGS_TIME_IN("$1")
                              " WHERE id = $2 AND accepted_at IS NULL AND deleted_at IS NULL";
    static const char del[] = "UPDATE invites SET deleted_at = " GH_PGS_TIME_IN("$1")
                              " WHERE id = $2 AND accepted_at IS NULL AND deleted_at IS NULL";
    gh_pgs_num_t b_now;
    const char *p[] = {gh_pgs_i64(&b_now, now), id};
    gh_err_t rc = gh_pgs_exec(db, accepted ? acc : del, 2, p);
    /* Nothing changed: another request accepted or deleted it first. */
    return !rc && gh_pgs_changes(db) == 0 ? GH_ECONFLICT : rc;
}
