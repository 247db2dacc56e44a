/* Persistence. This header is the whole interface the rest of the program sees; SQL lives
 * only in the backend (src/store/sqlite.c now; a PostgreSQL sibling later implements the same
 * functions). The store knows rows and transactions, not business rules: callers validate
 * and decide, the store records.
 *
 * Threads: each thread gets its own connection (gh_store_db), opened on first use and kept
 * for the thread's life. A function that writes several rows wraps them in one transaction
 * itself; callers that need a larger unit use gh_store_begin/commit/rollback around calls.
 *
 * Records carry fixed-size, NUL-terminated strings: an empty string is SQL NULL. Sizes
 * hold the longest value the API accepts (limits in characters, up to 4 bytes each). */
#ifndef GH_STORE_STORE_H
#define GH_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/crypto.h"
#include "lib/err.h"

typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

#define GH_EMAIL_MAX 255 /* 254 bytes and NUL */
#define GH_ROLE_MAX 16

typedef struct gh_account {
    char id[GH_ID_MAX];
    char email[GH_EMAIL_MAX];
    char full_name[401];
    int64_t age_confirmed_at; /* 0 when not yet */
    int64_t terms_accepted_at;
    char terms_version[32];
    int64_t created_at;
} gh_account_t;

typedef struct gh_session {
    char id_hash[GH_SHA256_HEX_MAX];
    char account_id[GH_ID_MAX];
    char csrf_token[GH_SECRET_MAX];
    char current_org_id[GH_ID_MAX]; /* empty when none */
    int64_t created_at;
    int64_t expires_at;
} gh_session_t;

typedef struct gh_membership {
    char org_id[GH_ID_MAX];
    char org_name[321];
    char role[GH_ROLE_MAX];
} gh_membership_t;

typedef struct gh_org_settings {
    char id[GH_ID_MAX];
    char name[321];
    char legal_name[801];
    char billing_email[GH_EMAIL_MAX];
    char line1[801];
    char line2[801];
    char city[401];
    char postal_code[81];
    char state[401];
    char country[3];
    char vat_id[32];
    int64_t created_at;
    int64_t updated_at; /* 0 when never updated */
} gh_org_settings_t;

/* Opens (creating if needed) the database at `path` in WAL mode with foreign keys on and
 * applies pending migrations. On failure writes a message into `err`. */
gh_err_t gh_store_open(gh_store_t **out, const char *path, char *err, size_t err_size);

/* Closes every thread's connection. No thread may use the store afterwards. */
void gh_store_close(gh_store_t *store);

/* The calling thread's connection, opened on first use; NULL if it cannot be opened (the
 * reason is logged). */
gh_db_t *gh_store_db(gh_store_t *store);

/* Applies migrations not yet recorded in schema_migrations, each in its own transaction;
 * `applied` (may be NULL) receives how many ran. Migrations are the embedded
 * src/store/migrations/NNNN_name.sql files, applied in order. */
gh_err_t gh_store_migrate(gh_db_t *db, int *applied, char *err, size_t err_size);

/* The highest migration version recorded, or 0. */
int gh_store_schema_version(gh_db_t *db);

/* Transactions. begin takes the write lock at once (BEGIN IMMEDIATE), so a transaction never
 * fails half-way for lock upgrades. */
gh_err_t gh_store_begin(gh_db_t *db);
gh_err_t gh_store_commit(gh_db_t *db);
void gh_store_rollback(gh_db_t *db);

/* Sign-in links. */
gh_err_t gh_store_link_insert(gh_db_t *db, const char *token_hash, const char *email,
                              const char *ip, int64_t now, int64_t expires_at);
/* Marks the link used and writes its email into `email_out`. GH_ENOTFOUND for an unknown
 * hash, GH_ECONFLICT for a link already used, GH_EEXPIRED for one past its expiry (an
 * expired link is left unused). */
gh_err_t gh_store_link_consume(gh_db_t *db, const char *token_hash, int64_t now,
                               char email_out[GH_EMAIL_MAX]);

/* Accounts. */
gh_err_t gh_store_account_get(gh_db_t *db, const char *id, gh_account_t *out);
gh_err_t gh_store_account_by_email(gh_db_t *db, const char *email, gh_account_t *out);
gh_err_t gh_store_account_insert(gh_db_t *db, const gh_account_t *a);
gh_err_t gh_store_account_onboard(gh_db_t *db, const char *id, const char *full_name,
                                  const char *terms_version, int64_t now);

/* Sessions, found by the hash of their secret. get returns GH_ENOTFOUND for unknown, revoked
 * and expired sessions alike. */
gh_err_t gh_store_session_insert(gh_db_t *db, const gh_session_t *s, const char *ip,
                                 const char *user_agent);
gh_err_t gh_store_session_get(gh_db_t *db, const char *id_hash, int64_t now, gh_session_t *out);
gh_err_t gh_store_session_set_org(gh_db_t *db, const char *id_hash, const char *org_id);
gh_err_t gh_store_session_revoke(gh_db_t *db, const char *id_hash, int64_t now);

/* Organizations. Creates the organization, the creator's admin membership and the Default
 * workspace in one transaction. */
gh_err_t gh_store_org_create(gh_db_t *db, const char *org_id, const char *name,
                             const char *account_id, const char *workspace_id,
                             const char *workspace_color, int64_t now);

/* Calls `fn` for each organization `account_id` belongs to, oldest membership first. */
typedef void (*gh_store_membership_fn)(void *ctx, const gh_membership_t *m);
gh_err_t gh_store_memberships(gh_db_t *db, const char *account_id, gh_store_membership_fn fn,
                              void *ctx);
gh_err_t gh_store_membership_get(gh_db_t *db, const char *org_id, const char *account_id,
                                 gh_membership_t *out);
gh_err_t gh_store_membership_count(gh_db_t *db, const char *account_id, int *count);

gh_err_t gh_store_org_settings_get(gh_db_t *db, const char *org_id, gh_org_settings_t *out);
gh_err_t gh_store_org_settings_put(gh_db_t *db, const gh_org_settings_t *s);

#endif
