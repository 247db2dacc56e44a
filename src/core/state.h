/* The in-memory state the data plane reads on every model request, so that no request waits
 * on SQL. Today: every API key, found by the SHA-256 of its secret, with its organization,
 * workspace and whether it may be used. The control plane writes the database first and then
 * publishes the change here (gh_state_sync_key, gh_state_sync_workspace); the data plane only
 * reads. Reads take a shared lock held for a hash probe and a copy, never across I/O. */
#ifndef GH_CORE_STATE_H
#define GH_CORE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/crypto.h"
#include "lib/err.h"

/* The store's handles (store/store.h), used here only by pointer. */
typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

#define GH_KEY_HASH_BYTES 32

typedef struct gh_state gh_state_t;

typedef struct gh_key_entry {
    char key_id[GH_ID_MAX];
    char org_id[GH_ID_MAX];
    char workspace_id[GH_ID_MAX];
    char status[16]; /* "active", "inactive" or "archived" (archived also when its workspace is) */
} gh_key_entry_t;

gh_err_t gh_state_new(gh_state_t **out);
void gh_state_free(gh_state_t *st);

/* Loads every API key from the database (at start). */
gh_err_t gh_state_load(gh_state_t *st, gh_db_t *db);

/* Finds the key whose secret hashes (SHA-256) to `hash`. GH_ENOTFOUND when none. */
gh_err_t gh_state_key_find(gh_state_t *st, const unsigned char hash[GH_KEY_HASH_BYTES],
                           gh_key_entry_t *out);

/* Re-reads one key (by id), or every key of a workspace, from the database and publishes it. */
gh_err_t gh_state_sync_key(gh_state_t *st, gh_db_t *db, const char *key_id);
gh_err_t gh_state_sync_workspace(gh_state_t *st, gh_db_t *db, const char *workspace_id);

/* How many keys are held. */
size_t gh_state_key_count(gh_state_t *st);

#endif
