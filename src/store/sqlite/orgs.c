/* Store functions for organizations, memberships and settings (SQLite backend). */
#include <stdio.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

/* ---- organizations ---- */

gh_err_t gh_sqlite_org_create(gh_db_t *db, const char *org_id, const char *name,
                              const char *account_id, const char *workspace_id,
                              const char *workspace_color, int64_t now)
{
    static const char ins_org[] =
        "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)";
    static const char ins_member[] = "INSERT INTO memberships (org_id, account_id, role, "
                                     "created_at) VALUES (?, ?, 'admin', ?)";
    static const char ins_ws[] = "INSERT INTO workspaces (id, org_id, name, display_color, "
                                 "is_default, created_at) VALUES (?, ?, 'Default', ?, 1, ?)";
    gh_err_t rc = gh_sqlite_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *st = gh_sqlite_stmt(db, ins_org);
    if (!st)
        goto out_store;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = gh_sqlite_exec(db, st)))
        goto out_rollback;

    if (!(st = gh_sqlite_stmt(db, ins_member)))
        goto out_store;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, account_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = gh_sqlite_exec(db, st)))
        goto out_rollback;

    if (!(st = gh_sqlite_stmt(db, ins_ws)))
        goto out_store;
    sqlite3_bind_text(st, 1, workspace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, workspace_color, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    if ((rc = gh_sqlite_exec(db, st)))
        goto out_rollback;
    return gh_sqlite_commit(db);
out_store:
    rc = GH_ESTORE;
out_rollback:
    gh_sqlite_rollback(db);
    return rc;
}

gh_err_t gh_sqlite_memberships(gh_db_t *db, const char *account_id, gh_store_membership_fn fn,
                               void *ctx)
{
    static const char sql[] = "SELECT o.id, o.name, m.role FROM memberships m "
                              "JOIN organizations o ON o.id = m.org_id "
                              "WHERE m.account_id = ? ORDER BY m.created_at, o.id";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_membership_t m;
        COPY(st, 0, m.org_id);
        COPY(st, 1, m.org_name);
        COPY(st, 2, m.role);
        fn(ctx, &m);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_membership_get(gh_db_t *db, const char *org_id, const char *account_id,
                                  gh_membership_t *out)
{
    static const char sql[] = "SELECT o.id, o.name, m.role FROM memberships m "
                              "JOIN organizations o ON o.id = m.org_id "
                              "WHERE m.org_id = ? AND m.account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, account_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, rc);
    }
    COPY(st, 0, out->org_id);
    COPY(st, 1, out->org_name);
    COPY(st, 2, out->role);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_sqlite_membership_count(gh_db_t *db, const char *account_id, int *count)
{
    static const char sql[] = "SELECT count(*) FROM memberships WHERE account_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_org_settings_get(gh_db_t *db, const char *org_id, gh_org_settings_t *out)
{
    static const char sql[] =
        "SELECT id, name, legal_name, billing_email, address_line1, address_line2, city, "
        "postal_code, state, country, vat_id, created_at, coalesce(updated_at, 0) "
        "FROM organizations WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, rc);
    }
    memset(out, 0, sizeof(*out));
    COPY(st, 0, out->id);
    COPY(st, 1, out->name);
    COPY(st, 2, out->legal_name);
    COPY(st, 3, out->billing_email);
    COPY(st, 4, out->line1);
    COPY(st, 5, out->line2);
    COPY(st, 6, out->city);
    COPY(st, 7, out->postal_code);
    COPY(st, 8, out->state);
    COPY(st, 9, out->country);
    COPY(st, 10, out->vat_id);
    out->created_at = sqlite3_column_int64(st, 11);
    out->updated_at = sqlite3_column_int64(st, 12);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_sqlite_org_settings_put(gh_db_t *db, const gh_org_settings_t *s)
{
    static const char sql[] =
        "UPDATE organizations SET name = ?, legal_name = ?, billing_email = ?, "
        "address_line1 = ?, address_line2 = ?, city = ?, postal_code = ?, state = ?, "
        "country = ?, vat_id = ?, updated_at = ? WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    gh_sqlite_bind_text(st, 2, s->legal_name);
    gh_sqlite_bind_text(st, 3, s->billing_email);
    gh_sqlite_bind_text(st, 4, s->line1);
    gh_sqlite_bind_text(st, 5, s->line2);
    gh_sqlite_bind_text(st, 6, s->city);
    gh_sqlite_bind_text(st, 7, s->postal_code);
    gh_sqlite_bind_text(st, 8, s->state);
    gh_sqlite_bind_text(st, 9, s->country);
    gh_sqlite_bind_text(st, 10, s->vat_id);
    sqlite3_bind_int64(st, 11, s->updated_at);
    sqlite3_bind_text(st, 12, s->id, -1, SQLITE_STATIC);
    gh_err_t rc = gh_sqlite_exec(db, st);
    if (!rc && sqlite3_changes(sq(db)->conn) == 0)
        rc = GH_ENOTFOUND;
    return rc;
}
