/* Store functions for OpenID Connect sign-in (SQLite backend): pending authorization
 * requests and identities (store/identity.h). */
#include <stdio.h>
#include <string.h>

#include "store/identity.h"
#include "store/sqlite/sqlite_int.h"

/* ---- pending authorization requests ---- */

gh_err_t gh_sqlite_oidc_state_insert(gh_db_t *db, const char *state_hash, const char *nonce,
                                     const char *code_verifier, int64_t now, int64_t expires_at)
{
    static const char sql[] = "INSERT INTO oidc_states (state_hash, nonce, code_verifier, "
                              "created_at, expires_at) VALUES (?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, state_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, nonce, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, code_verifier, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, expires_at);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_oidc_state_consume(gh_db_t *db, const char *state_hash, int64_t now,
                                      gh_oidc_state_t *out)
{
    static const char sel[] = "SELECT nonce, code_verifier, created_at, expires_at, used_at "
                              "FROM oidc_states WHERE state_hash = ?";
    static const char upd[] =
        "UPDATE oidc_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL";
    gh_err_t rc = gh_sqlite_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *st = gh_sqlite_stmt(db, sel);
    if (!st)
        goto out_store;
    sqlite3_bind_text(st, 1, state_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, step);
        sqlite3_reset(st);
        goto out_rollback;
    }
    memset(out, 0, sizeof(*out));
    COPY(st, 0, out->nonce);
    COPY(st, 1, out->code_verifier);
    out->created_at = sqlite3_column_int64(st, 2);
    out->expires_at = sqlite3_column_int64(st, 3);
    bool used = sqlite3_column_type(st, 4) != SQLITE_NULL;
    sqlite3_reset(st);
    if (used) {
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    if (now >= out->expires_at) {
        rc = GH_EEXPIRED;
        goto out_rollback;
    }
    if (!(st = gh_sqlite_stmt(db, upd)))
        goto out_store;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, state_hash, -1, SQLITE_STATIC);
    if ((rc = gh_sqlite_exec(db, st)))
        goto out_rollback;
    if (sqlite3_changes(sq(db)->conn) != 1) {
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    return gh_sqlite_commit(db);
out_store:
    rc = GH_ESTORE;
out_rollback:
    gh_sqlite_rollback(db);
    return rc;
}

gh_err_t gh_sqlite_oidc_state_purge(gh_db_t *db, int64_t before, int *deleted)
{
    static const char sql[] = "DELETE FROM oidc_states WHERE expires_at <= ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, before);
    gh_err_t rc = gh_sqlite_exec(db, st);
    if (!rc && deleted)
        *deleted = sqlite3_changes(sq(db)->conn);
    return rc;
}

/* ---- identities ---- */

#define IDENTITY_COLS "issuer, subject, account_id, email, created_at, last_used_at"

static void identity_cols(sqlite3_stmt *st, gh_identity_t *out)
{
    memset(out, 0, sizeof(*out));
    COPY(st, 0, out->issuer);
    COPY(st, 1, out->subject);
    COPY(st, 2, out->account_id);
    COPY(st, 3, out->email);
    out->created_at = sqlite3_column_int64(st, 4);
    out->last_used_at = sqlite3_column_int64(st, 5);
}

gh_err_t gh_sqlite_identity_get(gh_db_t *db, const char *issuer, const char *subject,
                                gh_identity_t *out)
{
    static const char sql[] =
        "SELECT " IDENTITY_COLS " FROM identities WHERE issuer = ? AND subject = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, issuer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, rc);
    }
    identity_cols(st, out);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_sqlite_identity_insert(gh_db_t *db, const gh_identity_t *identity)
{
    static const char sql[] =
        "INSERT INTO identities (" IDENTITY_COLS ") VALUES (?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, identity->issuer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, identity->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, identity->account_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, identity->email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, identity->created_at);
    sqlite3_bind_int64(st, 6, identity->last_used_at);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_identity_touch(gh_db_t *db, const char *issuer, const char *subject,
                                  const char *email, int64_t now)
{
    static const char sql[] = "UPDATE identities SET email = ?, last_used_at = ? "
                              "WHERE issuer = ? AND subject = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, issuer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, subject, -1, SQLITE_STATIC);
    gh_err_t rc = gh_sqlite_exec(db, st);
    if (!rc && sqlite3_changes(sq(db)->conn) == 0)
        rc = GH_ENOTFOUND;
    return rc;
}

gh_err_t gh_sqlite_identities(gh_db_t *db, const char *account_id, gh_store_identity_fn fn,
                              void *ctx)
{
    static const char sql[] = "SELECT " IDENTITY_COLS " FROM identities WHERE account_id = ? "
                              "ORDER BY created_at, issuer, subject";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_identity_t identity;
        identity_cols(st, &identity);
        fn(ctx, &identity);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}
