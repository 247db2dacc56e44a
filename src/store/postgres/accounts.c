/* Store functions for sign-in links, accounts and sessions (PostgreSQL backend): the same
 * results and error codes as src/store/sqlite/accounts.c. */
#include <stdio.h>
#include <string.h>

#include "store/postgres/pg_int.h"

/* ---- sign-in links ---- */

gh_err_t gh_pgs_link_insert(gh_db_t *db, const char *token_hash, const char *email,
                            const char *ip, int64_t now, int64_t expires_at)
{
    static const char sql[] = "INSERT INTO login_links (token_hash, email, created_at, "
                              "expires_at, request_ip) VALUES ($1, $2, " GH_PGS_TIME_IN("$3")
                              ", " GH_PGS_TIME_IN("$4") ", $5)";
    gh_pgs_num_t n1, n2;
    const char *p[] = {token_hash, email, gh_pgs_i64(&n1, now), gh_pgs_i64(&n2, expires_at), ip};
    return gh_pgs_exec(db, sql, 5, p);
}

typedef struct {
    char *email; /* GH_EMAIL_MAX */
    int64_t expires_at;
    bool used;
} link_row_t;

static void link_decode(const PGresult *res, int row, void *out)
{
    link_row_t *l = out;
    gh_pgs_col_text(res, row, 0, l->email, GH_EMAIL_MAX);
    l->expires_at = gh_pgs_col_i64(res, row, 1);
    l->used = !gh_pgs_col_null(res, row, 2);
}

/* Reads a link: its email, and whether it can still be used (GH_OK), or GH_ENOTFOUND,
 * GH_ECONFLICT (used) or GH_EEXPIRED. */
static gh_err_t link_lookup(gh_db_t *db, const char *token_hash, int64_t now,
                            char email_out[GH_EMAIL_MAX])
{
    static const char sel[] = "SELECT email, " GH_PGS_EPOCH("expires_at")
                              ", used_at FROM login_links WHERE token_hash = $1";
    link_row_t l = {.email = email_out};
    const char *p[] = {token_hash};
    gh_err_t rc = gh_pgs_one(db, sel, 1, p, link_decode, &l);
    if (rc)
        return rc;
    if (l.used)
        return GH_ECONFLICT;
    if (now >= l.expires_at)
        return GH_EEXPIRED;
    return GH_OK;
}

gh_err_t gh_pgs_link_check(gh_db_t *db, const char *token_hash, int64_t now)
{
    char email[GH_EMAIL_MAX];
    return link_lookup(db, token_hash, now, email);
}

gh_err_t gh_pgs_link_consume(gh_db_t *db, const char *token_hash, int64_t now,
                             char email_out[GH_EMAIL_MAX])
{
    static const char upd[] = "UPDATE login_links SET used_at = " GH_PGS_TIME_IN("$1")
                              " WHERE token_hash = $2 AND used_at IS NULL";
    gh_err_t rc = gh_pgs_begin(db);
    if (rc)
        return rc;
    if ((rc = link_lookup(db, token_hash, now, email_out)))
        goto out_rollback;
    gh_pgs_num_t n1;
    const char *p[] = {gh_pgs_i64(&n1, now), token_hash};
    if ((rc = gh_pgs_exec(db, upd, 2, p)))
        goto out_rollback;
    return gh_pgs_commit(db);
out_rollback:
    gh_pgs_rollback(db);
    return rc;
}

/* ---- accounts ---- */

#define ACCOUNT_COLS                                                                          \
    "id, email, full_name, " GH_PGS_EPOCH("age_confirmed_at") ", " GH_PGS_EPOCH(             \
        "terms_accepted_at") ", terms_version, " GH_PGS_EPOCH("created_at")

static void account_decode(const PGresult *res, int row, void *out)
{
    gh_account_t *a = out;
    memset(a, 0, sizeof(*a));
    GH_PGS_COPY(res, row, 0, a->id);
    GH_PGS_COPY(res, row, 1, a->email);
    GH_PGS_COPY(res, row, 2, a->full_name);
    a->age_confirmed_at = gh_pgs_col_i64(res, row, 3);
    a->terms_accepted_at = gh_pgs_col_i64(res, row, 4);
    GH_PGS_COPY(res, row, 5, a->terms_version);
    a->created_at = gh_pgs_col_i64(res, row, 6);
}

gh_err_t gh_pgs_account_get(gh_db_t *db, const char *id, gh_account_t *out)
{
    static const char sql[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = $1";
    const char *p[] = {id};
    return gh_pgs_one(db, sql, 1, p, account_decode, out);
}

gh_err_t gh_pgs_account_by_email(gh_db_t *db, const char *email, gh_account_t *out)
{
    static const char sql[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE email = $1";
    const char *p[] = {email};
    return gh_pgs_one(db, sql, 1, p, account_decode, out);
}

gh_err_t gh_pgs_account_insert(gh_db_t *db, const gh_account_t *a)
{
    static const char sql[] = "INSERT INTO accounts (id, email, created_at) VALUES ($1, $2, "
                              GH_PGS_TIME_IN("$3") ")";
    gh_pgs_num_t n1;
    const char *p[] = {a->id, a->email, gh_pgs_i64(&n1, a->created_at)};
    return gh_pgs_exec(db, sql, 3, p);
}

gh_err_t gh_pgs_account_onboard(gh_db_t *db, const char *id, const char *full_name,
                                const char *terms_version, int64_t now)
{
    static const char sql[] = "UPDATE accounts SET full_name = $1, age_confirmed_at = "
                              GH_PGS_TIME_IN("$2") ", terms_accepted_at = " GH_PGS_TIME_IN("$2")
                              ", terms_version = $3 WHERE id = $4";
    gh_pgs_num_t n1;
    const char *p[] = {full_name, gh_pgs_i64(&n1, now), terms_version, id};
    return gh_pgs_exec_one(db, sql, 4, p);
}

/* ---- sessions ---- */

gh_err_t gh_pgs_session_insert(gh_db_t *db, const gh_session_t *s, const char *ip,
                               const char *user_agent)
{
    static const char sql[] =
        "INSERT INTO sessions (id_hash, account_id, csrf_token, current_org_id, created_at, "
        "expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, " GH_PGS_TIME_IN("$5") ", "
        GH_PGS_TIME_IN("$6") ", $7, $8)";
    gh_pgs_num_t n1, n2;
    const char *p[] = {s->id_hash,
                       s->account_id,
                       s->csrf_token,
                       gh_pgs_text(s->current_org_id),
                       gh_pgs_i64(&n1, s->created_at),
                       gh_pgs_i64(&n2, s->expires_at),
                       ip,
                       user_agent};
    return gh_pgs_exec(db, sql, 8, p);
}

static void session_decode(const PGresult *res, int row, void *out)
{
    gh_session_t *s = out;
    memset(s, 0, sizeof(*s));
    GH_PGS_COPY(res, row, 0, s->id_hash);
    GH_PGS_COPY(res, row, 1, s->account_id);
    GH_PGS_COPY(res, row, 2, s->csrf_token);
    GH_PGS_COPY(res, row, 3, s->current_org_id);
    s->created_at = gh_pgs_col_i64(res, row, 4);
    s->expires_at = gh_pgs_col_i64(res, row, 5);
}

gh_err_t gh_pgs_session_get(gh_db_t *db, const char *id_hash, int64_t now, gh_session_t *out)
{
    static const char sql[] =
        "SELECT id_hash, account_id, csrf_token, current_org_id, " GH_PGS_EPOCH("created_at")
        ", " GH_PGS_EPOCH("expires_at") " FROM sessions WHERE id_hash = $1 AND revoked_at IS "
        "NULL AND expires_at > " GH_PGS_TIME_IN("$2");
    gh_pgs_num_t n1;
    const char *p[] = {id_hash, gh_pgs_i64(&n1, now)};
    return gh_pgs_one(db, sql, 2, p, session_decode, out);
}

gh_err_t gh_pgs_session_set_org(gh_db_t *db, const char *id_hash, const char *org_id)
{
    static const char sql[] = "UPDATE sessions SET current_org_id = $1 WHERE id_hash = $2";
    const char *p[] = {gh_pgs_text(org_id), id_hash};
    return gh_pgs_exec(db, sql, 2, p);
}

gh_err_t gh_pgs_session_revoke(gh_db_t *db, const char *id_hash, int64_t now)
{
    static const char sql[] = "UPDATE sessions SET revoked_at = " GH_PGS_TIME_IN("$1")
                              " WHERE id_hash = $2 AND revoked_at IS NULL";
    gh_pgs_num_t n1;
    const char *p[] = {gh_pgs_i64(&n1, now), id_hash};
    return gh_pgs_exec(db, sql, 2, p);
}
