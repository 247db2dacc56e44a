/* Store functions for OpenID Connect sign-in (PostgreSQL backend): pending authorization
 * requests and identities (store/identity.h), with the results, error codes and ordering of
 * src/store/sqlite/identity.c. */
#include <stdio.h>
#include <string.h>

#include "store/identity.h"
#include "store/postgres/pg_int.h"

/* ---- pending authorization requests ---- */

gh_err_t gh_pgs_oidc_state_insert(gh_db_t *db, const char *state_hash, const char *nonce,
                                  const char *code_verifier, int64_t now, int64_t expires_at)
{
    static const char sql[] = "INSERT INTO oidc_states (state_hash, nonce, code_verifier, "
                              "created_at, expires_at) VALUES ($1, $2, $3, "
                              GH_PGS_TIME_IN("$4") ", " GH_PGS_TIME_IN("$5") ")";
    gh_pgs_num_t n1, n2;
    const char *p[] = {state_hash, nonce, code_verifier, gh_pgs_i64(&n1, now),
                       gh_pgs_i64(&n2, expires_at)};
    return gh_pgs_exec(db, sql, 5, p);
}

typedef struct {
    gh_oidc_state_t *state;
    bool used;
} state_row_t;

static void state_decode(const PGresult *res, int row, void *out)
{
    state_row_t *r = out;
    memset(r->state, 0, sizeof(*r->state));
    GH_PGS_COPY(res, row, 0, r->state->nonce);
    GH_PGS_COPY(res, row, 1, r->state->code_verifier);
    r->state->created_at = gh_pgs_col_i64(res, row, 2);
    r->state->expires_at = gh_pgs_col_i64(res, row, 3);
    r->used = !gh_pgs_col_null(res, row, 4);
}

gh_err_t gh_pgs_oidc_state_consume(gh_db_t *db, const char *state_hash, int64_t now,
                                   gh_oidc_state_t *out)
{
    static const char sel[] = "SELECT nonce, code_verifier, " GH_PGS_EPOCH("created_at") ", "
                              GH_PGS_EPOCH("expires_at") ", used_at "
                              "FROM oidc_states WHERE state_hash = $1";
    static const char upd[] = "UPDATE oidc_states SET used_at = " GH_PGS_TIME_IN("$1")
                              " WHERE state_hash = $2 AND used_at IS NULL";
    gh_err_t rc = gh_pgs_begin(db);
    if (rc)
        return rc;
    state_row_t r = {.state = out};
    const char *p_sel[] = {state_hash};
    if ((rc = gh_pgs_one(db, sel, 1, p_sel, state_decode, &r)))
        goto out_rollback;
    if (r.used) {
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    if (now >= out->expires_at) {
        rc = GH_EEXPIRED;
        goto out_rollback;
    }
    gh_pgs_num_t n1;
    const char *p_upd[] = {gh_pgs_i64(&n1, now), state_hash};
    if ((rc = gh_pgs_exec(db, upd, 2, p_upd)))
        goto out_rollback;
    if (gh_pgs_changes(db) != 1) {
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    return gh_pgs_commit(db);
out_rollback:
    gh_pgs_rollback(db);
    return rc;
}

gh_err_t gh_pgs_oidc_state_purge(gh_db_t *db, int64_t before, int *deleted)
{
    static const char sql[] = "DELETE FROM oidc_states WHERE expires_at <= " GH_PGS_TIME_IN("$1");
    gh_pgs_num_t n1;
    const char *p[] = {gh_pgs_i64(&n1, before)};
    gh_err_t rc = gh_pgs_exec(db, sql, 1, p);
    if (!rc && deleted)
        *deleted = gh_pgs_changes(db);
    return rc;
}

/* ---- identities ---- */

#define IDENTITY_COLS                                                                    \
    "issuer, subject, account_id, email, " GH_PGS_EPOCH("created_at") ", "              \
        GH_PGS_EPOCH("last_used_at")

static void identity_decode(const PGresult *res, int row, void *out)
{
    gh_identity_t *identity = out;
    memset(identity, 0, sizeof(*identity));
    GH_PGS_COPY(res, row, 0, identity->issuer);
    GH_PGS_COPY(res, row, 1, identity->subject);
    GH_PGS_COPY(res, row, 2, identity->account_id);
    GH_PGS_COPY(res, row, 3, identity->email);
    identity->created_at = gh_pgs_col_i64(res, row, 4);
    identity->last_used_at = gh_pgs_col_i64(res, row, 5);
}

gh_err_t gh_pgs_identity_get(gh_db_t *db, const char *issuer, const char *subject,
                             gh_identity_t *out)
{
    static const char sql[] =
        "SELECT " IDENTITY_COLS " FROM identities WHERE issuer = $1 AND subject = $2";
    const char *p[] = {issuer, subject};
    return gh_pgs_one(db, sql, 2, p, identity_decode, out);
}

gh_err_t gh_pgs_identity_insert(gh_db_t *db, const gh_identity_t *identity)
{
    static const char sql[] = "INSERT INTO identities (issuer, subject, account_id, email, "
                              "created_at, last_used_at) VALUES ($1, $2, $3, $4, "
                              GH_PGS_TIME_IN("$5") ", " GH_PGS_TIME_IN("$6") ")";
    gh_pgs_num_t n1, n2;
    const char *p[] = {identity->issuer,     identity->subject,
                       identity->account_id, identity->email,
                       gh_pgs_i64(&n1, identity->created_at),
                       gh_pgs_i64(&n2, identity->last_used_at)};
    return gh_pgs_exec(db, sql, 6, p);
}

gh_err_t gh_pgs_identity_touch(gh_db_t *db, const char *issuer, const char *subject,
                               const char *email, int64_t now)
{
    static const char sql[] = "UPDATE identities SET email = $1, last_used_at = "
                              GH_PGS_TIME_IN("$2") " WHERE issuer = $3 AND subject = $4";
    gh_pgs_num_t n1;
    const char *p[] = {email, gh_pgs_i64(&n1, now), issuer, subject};
    return gh_pgs_exec_one(db, sql, 4, p);
}

typedef struct {
    gh_store_identity_fn fn;
    void *ctx;
} identity_each_t;

static void identity_row(void *ctx, const PGresult *res, int row)
{
    identity_each_t *e = ctx;
    gh_identity_t identity;
    identity_decode(res, row, &identity);
    e->fn(e->ctx, &identity);
}

gh_err_t gh_pgs_identities(gh_db_t *db, const char *account_id, gh_store_identity_fn fn,
                           void *ctx)
{
    static const char sql[] = "SELECT " IDENTITY_COLS " FROM identities WHERE account_id = $1 "
                              "ORDER BY created_at, issuer COLLATE \"C\", subject COLLATE \"C\"";
    identity_each_t e = {fn, ctx};
    const char *p[] = {account_id};
    return gh_pgs_each(db, sql, 1, p, identity_row, &e);
}
