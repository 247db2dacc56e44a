/* Store functions for organizations, memberships and settings (PostgreSQL backend): the
 * same results, error codes and ordering as src/store/sqlite/orgs.c. Text sort keys use
 * COLLATE "C" so ties order bytewise, as SQLite's BINARY collation orders them. */
#include <stdio.h>
#include <string.h>

#include "store/postgres/pg_int.h"

/* ---- organizations ---- */

gh_err_t gh_pgs_org_create(gh_db_t *db, const char *org_id, const char *name,
                           const char *account_id, const char *workspace_id,
                           const char *workspace_color, int64_t now)
{
    static const char ins_org[] = "INSERT INTO organizations (id, name, created_at) "
                                  "VALUES ($1, $2, " GH_PGS_TIME_IN("$3") ")";
    static const char ins_member[] = "INSERT INTO memberships (org_id, account_id, role, "
                                     "created_at) VALUES ($1, $2, 'admin', "
                                     GH_PGS_TIME_IN("$3") ")";
    static const char ins_ws[] = "INSERT INTO workspaces (id, org_id, name, display_color, "
                                 "is_default, created_at) VALUES ($1, $2, 'Default', $3, true, "
                                 GH_PGS_TIME_IN("$4") ")";
    gh_pgs_num_t n1;
    const char *when = gh_pgs_i64(&n1, now);
    gh_err_t rc = gh_pgs_begin(db);
    if (rc)
        return rc;
    const char *p_org[] = {org_id, name, when};
    if ((rc = gh_pgs_exec(db, ins_org, 3, p_org)))
        goto out_rollback;
    const char *p_member[] = {org_id, account_id, when};
    if ((rc = gh_pgs_exec(db, ins_member, 3, p_member)))
        goto out_rollback;
    const char *p_ws[] = {workspace_id, org_id, workspace_color, when};
    if ((rc = gh_pgs_exec(db, ins_ws, 4, p_ws)))
        goto out_rollback;
    return gh_pgs_commit(db);
out_rollback:
    gh_pgs_rollback(db);
    return rc;
}

static void membership_decode(const PGresult *res, int row, void *out)
{
    gh_membership_t *m = out;
    memset(m, 0, sizeof(*m));
    GH_PGS_COPY(res, row, 0, m->org_id);
    GH_PGS_COPY(res, row, 1, m->org_name);
    GH_PGS_COPY(res, row, 2, m->role);
}

typedef struct {
    gh_store_membership_fn fn;
    void *ctx;
} membership_each_t;

static void membership_row(void *ctx, const PGresult *res, int row)
{
    membership_each_t *e = ctx;
    gh_membership_t m;
    membership_decode(res, row, &m);
    e->fn(e->ctx, &m);
}

gh_err_t gh_pgs_memberships(gh_db_t *db, const char *account_id, gh_store_membership_fn fn,
                            void *ctx)
{
    static const char sql[] = "SELECT o.id, o.name, m.role FROM memberships m "
                              "JOIN organizations o ON o.id = m.org_id "
                              "WHERE m.account_id = $1 ORDER BY m.created_at, o.id COLLATE \"C\"";
    membership_each_t e = {fn, ctx};
    const char *p[] = {account_id};
    return gh_pgs_each(db, sql, 1, p, membership_row, &e);
}

gh_err_t gh_pgs_membership_get(gh_db_t *db, const char *org_id, const char *account_id,
                               gh_membership_t *out)
{
    static const char sql[] = "SELECT o.id, o.name, m.role FROM memberships m "
                              "JOIN organizations o ON o.id = m.org_id "
                              "WHERE m.org_id = $1 AND m.account_id = $2";
    const char *p[] = {org_id, account_id};
    return gh_pgs_one(db, sql, 2, p, membership_decode, out);
}

static void count_decode(const PGresult *res, int row, void *out)
{
    *(int *)out = (int)gh_pgs_col_i64(res, row, 0);
}

gh_err_t gh_pgs_membership_count(gh_db_t *db, const char *account_id, int *count)
{
    static const char sql[] = "SELECT count(*) FROM memberships WHERE account_id = $1";
    const char *p[] = {account_id};
    *count = 0;
    return gh_pgs_one(db, sql, 1, p, count_decode, count);
}

static void settings_decode(const PGresult *res, int row, void *out)
{
    gh_org_settings_t *s = out;
    memset(s, 0, sizeof(*s));
    GH_PGS_COPY(res, row, 0, s->id);
    GH_PGS_COPY(res, row, 1, s->name);
    GH_PGS_COPY(res, row, 2, s->legal_name);
    GH_PGS_COPY(res, row, 3, s->billing_email);
    GH_PGS_COPY(res, row, 4, s->line1);
    GH_PGS_COPY(res, row, 5, s->line2);
    GH_PGS_COPY(res, row, 6, s->city);
    GH_PGS_COPY(res, row, 7, s->postal_code);
    GH_PGS_COPY(res, row, 8, s->state);
    GH_PGS_COPY(res, row, 9, s->country);
    GH_PGS_COPY(res, row, 10, s->vat_id);
    s->created_at = gh_pgs_col_i64(res, row, 11);
    s->updated_at = gh_pgs_col_i64(res, row, 12);
}

gh_err_t gh_pgs_org_settings_get(gh_db_t *db, const char *org_id, gh_org_settings_t *out)
{
    static const char sql[] =
        "SELECT id, name, legal_name, billing_email, address_line1, address_line2, city, "
        "postal_code, state, country, vat_id, " GH_PGS_EPOCH("created_at") ", "
        GH_PGS_EPOCH("updated_at") " FROM organizations WHERE id = $1";
    const char *p[] = {org_id};
    return gh_pgs_one(db, sql, 1, p, settings_decode, out);
}

gh_err_t gh_pgs_org_settings_put(gh_db_t *db, const gh_org_settings_t *s)
{
    static const char sql[] =
        "UPDATE organizations SET name = $1, legal_name = $2, billing_email = $3, "
        "address_line1 = $4, address_line2 = $5, city = $6, postal_code = $7, state = $8, "
        "country = $9, vat_id = $10, updated_at = " GH_PGS_TIME_IN("$11") " WHERE id = $12";
    gh_pgs_num_t n1;
    const char *p[] = {s->name,
                       gh_pgs_text(s->legal_name),
                       gh_pgs_text(s->billing_email),
                       gh_pgs_text(s->line1),
                       gh_pgs_text(s->line2),
                       gh_pgs_text(s->city),
                       gh_pgs_text(s->postal_code),
                       gh_pgs_text(s->state),
                       gh_pgs_text(s->country),
                       gh_pgs_text(s->vat_id),
                       gh_pgs_i64(&n1, s->updated_at),
                       s->id};
    return gh_pgs_exec_one(db, sql, 12, p);
}
