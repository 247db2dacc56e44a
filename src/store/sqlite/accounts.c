/* Store functions for sign-in links, accounts and sessions (SQLite backend). */
#include <stdio.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

/* ---- sign-in links ---- */

gh_err_t gh_sqlite_link_insert(gh_db_t *db, const char *token_hash, const char *email,
                               const char *ip, int64_t now, int64_t expires_at)
{
    static const char sql[] = "INSERT INTO login_links (token_hash, email, created_at, "
                              "expires_at, request_ip) VALUES (?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, expires_at);
    sqlite3_bind_text(st, 5, ip, -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}

/* Reads a link: its email, and whether it can still be used (GH_OK), or GH_ENOTFOUND,
 * GH_ECONFLICT (used) or GH_EEXPIRED. */
static gh_err_t link_lookup(gh_db_t *db, const char *token_hash, int64_t now,
                            char email_out[GH_EMAIL_MAX])
{
    static const char sel[] =
        "SELECT email, expires_at, used_at FROM login_links WHERE token_hash = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sel);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        sqlite3_reset(st);
        return step == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, step);
    }
    gh_sqlite_col_text(st, 0, email_out, GH_EMAIL_MAX);
    int64_t expires_at = sqlite3_column_int64(st, 1);
    bool used = sqlite3_column_type(st, 2) != SQLITE_NULL;
    sqlite3_reset(st);
    if (used)
        return GH_ECONFLICT;
    if (now >= expires_at)
        return GH_EEXPIRED;
    return GH_OK;
}

gh_err_t gh_sqlite_link_check(gh_db_t *db, const char *token_hash, int64_t now)
{
    char email[GH_EMAIL_MAX];
    return link_lookup(db, token_hash, now, email);
}

gh_err_t gh_sqlite_link_consume(gh_db_t *db, const char *token_hash, int64_t now,
                                char email_out[GH_EMAIL_MAX])
{
    static const char upd[] =
        "UPDATE login_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL";
    gh_err_t rc = gh_sqlite_begin(db);
    if (rc)
        return rc;
    if ((rc = link_lookup(db, token_hash, now, email_out)))
        goto out_rollback;
    sqlite3_stmt *st = gh_sqlite_stmt(db, upd);
    if (!st) {
        rc = GH_ESTORE;
        goto out_rollback;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, token_hash, -1, SQLITE_STATIC);
    rc = gh_sqlite_exec(db, st);
    if (rc)
        goto out_rollback;
    return gh_sqlite_commit(db);
out_rollback:
    gh_sqlite_rollback(db);
    return rc;
}

/* ---- accounts ---- */

#define ACCOUNT_COLS                                                                       \
    "id, email, full_name, coalesce(age_confirmed_at, 0), coalesce(terms_accepted_at, 0), " \
    "terms_version, created_at"

static gh_err_t account_row(gh_db_t *db, sqlite3_stmt *st, gh_account_t *a)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, rc);
    }
    memset(a, 0, sizeof(*a));
    COPY(st, 0, a->id);
    COPY(st, 1, a->email);
    COPY(st, 2, a->full_name);
    a->age_confirmed_at = sqlite3_column_int64(st, 3);
    a->terms_accepted_at = sqlite3_column_int64(st, 4);
    COPY(st, 5, a->terms_version);
    a->created_at = sqlite3_column_int64(st, 6);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_sqlite_account_get(gh_db_t *db, const char *id, gh_account_t *out)
{
    static const char sql[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return account_row(db, st, out);
}

gh_err_t gh_sqlite_account_by_email(gh_db_t *db, const char *email, gh_account_t *out)
{
    static const char sql[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE email = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
    return account_row(db, st, out);
}

gh_err_t gh_sqlite_account_insert(gh_db_t *db, const gh_account_t *a)
{
    static const char sql[] = "INSERT INTO accounts (id, email, created_at) VALUES (?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, a->created_at);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_account_onboard(gh_db_t *db, const char *id, const char *full_name,
                                   const char *terms_version, int64_t now)
{
    static const char sql[] = "UPDATE accounts SET full_name = ?, age_confirmed_at = ?, "
                              "terms_accepted_at = ?, terms_version = ? WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, full_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_text(st, 4, terms_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    gh_err_t rc = gh_sqlite_exec(db, st);
    if (!rc && sqlite3_changes(sq(db)->conn) == 0)
        rc = GH_ENOTFOUND;
    return rc;
}

/* ---- sessions ---- */

gh_err_t gh_sqlite_session_insert(gh_db_t *db, const gh_session_t *s, const char *ip,
                                  const char *user_agent)
{
    static const char sql[] =
        "INSERT INTO sessions (id_hash, account_id, csrf_token, current_org_id, created_at, "
        "expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, s->id_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->account_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->csrf_token, -1, SQLITE_STATIC);
    gh_sqlite_bind_text(st, 4, s->current_org_id);
    sqlite3_bind_int64(st, 5, s->created_at);
    sqlite3_bind_int64(st, 6, s->expires_at);
    sqlite3_bind_text(st, 7, ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, user_agent, -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_session_get(gh_db_t *db, const char *id_hash, int64_t now, gh_session_t *out)
{
    static const char sql[] =
        "SELECT id_hash, account_id, csrf_token, current_org_id, created_at, expires_at "
        "FROM sessions WHERE id_hash = ? AND revoked_at IS NULL AND expires_at > ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, id_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, rc);
    }
    memset(out, 0, sizeof(*out));
    COPY(st, 0, out->id_hash);
    COPY(st, 1, out->account_id);
    COPY(st, 2, out->csrf_token);
    COPY(st, 3, out->current_org_id);
    out->created_at = sqlite3_column_int64(st, 4);
    out->expires_at = sqlite3_column_int64(st, 5);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_sqlite_session_set_org(gh_db_t *db, const char *id_hash, const char *org_id)
{
    static const char sql[] = "UPDATE sessions SET current_org_id = ? WHERE id_hash = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_text(st, 1, org_id);
    sqlite3_bind_text(st, 2, id_hash, -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_session_revoke(gh_db_t *db, const char *id_hash, int64_t now)
{
    static const char sql[] =
        "UPDATE sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, id_hash, -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}
