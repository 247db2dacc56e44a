/* Store functions for OpenID Connect sign-in: pending authorization requests ("states") and
 * identities, which link a provider's subject to an account. Part of the store interface: each
 * backend implements them (src/store/sqlite/identity.c). Same conventions as store.h
 * (fixed-size, NUL-terminated strings; a function that writes several rows is atomic by itself;
 * callers that need a larger unit wrap calls in gh_store_begin/commit/rollback). No business
 * rules here: src/core/oidc.c decides what is linked to what. */
#ifndef GH_STORE_IDENTITY_H
#define GH_STORE_IDENTITY_H

#include <stdint.h>

#include "store/store.h" /* and its records, store/rows.h */

/* Records a pending request: the hash of its state, its nonce and PKCE code verifier, and
 * when it stops being accepted. GH_ECONFLICT if the hash is already there. */
gh_err_t gh_store_oidc_state_insert(gh_db_t *db, const char *state_hash, const char *nonce,
                                    const char *code_verifier, int64_t now, int64_t expires_at);

/* Marks the request whose state hashes to `state_hash` used and copies it into `out`.
 * GH_ENOTFOUND for an unknown hash, GH_ECONFLICT for a request already used, GH_EEXPIRED for
 * one past its expiry (left unused). Atomic: of two concurrent calls at most one succeeds. */
gh_err_t gh_store_oidc_state_consume(gh_db_t *db, const char *state_hash, int64_t now,
                                     gh_oidc_state_t *out);

/* Deletes the requests that expired at or before `before`; `*deleted` (may be NULL) gets
 * how many. */
gh_err_t gh_store_oidc_state_purge(gh_db_t *db, int64_t before, int *deleted);

/* The identity for (`issuer`, `subject`). GH_ENOTFOUND when there is none. */
gh_err_t gh_store_identity_get(gh_db_t *db, const char *issuer, const char *subject,
                               gh_identity_t *out);

/* Links a new identity to its account. GH_ECONFLICT when (issuer, subject) is already
 * linked, or the account does not exist. */
gh_err_t gh_store_identity_insert(gh_db_t *db, const gh_identity_t *identity);

/* Records a sign-in through an identity: last_used_at becomes `now` and email the address
 * the provider vouched for this time. GH_ENOTFOUND for an unknown identity. */
gh_err_t gh_store_identity_touch(gh_db_t *db, const char *issuer, const char *subject,
                                 const char *email, int64_t now);

/* Calls `fn` for each identity linked to `account_id`, oldest first. */
gh_err_t gh_store_identities(gh_db_t *db, const char *account_id, gh_store_identity_fn fn,
                             void *ctx);

#endif
