/* The PostgreSQL store's migrations runner.
 *
 * Migrations are numbered SQL files (src/store/postgres/migrations/NNNN_name.sql) compiled
 * into the binary (gh_embed_pg_migrations). Each is applied once, in its own transaction,
 * and recorded in schema_migrations with its SHA-256; one whose text differs from the
 * recorded checksum was edited after it landed and is refused, as is a database that has
 * migrations this binary does not know (a newer Gatehouse migrated it).
 *
 * The whole run holds a session-level advisory lock (GH_PG_MIGRATE_LOCK), so when several
 * processes start at once against one database, one migrates and the others wait for it,
 * then find nothing left to do. */
#ifndef GH_STORE_POSTGRES_PG_MIGRATE_H
#define GH_STORE_POSTGRES_PG_MIGRATE_H

#include <stddef.h>

#include "lib/embed.h"
#include "lib/err.h"
#include "store/postgres/pg.h"

/* The advisory lock's key: "gatehouse" in a bigint, so nothing else takes it by chance. */
#define GH_PG_MIGRATE_LOCK 0x6761746568ll

/* Applies the pending migrations of `set` (an all-zero-terminated table, normally
 * gh_embed_pg_migrations) on connection `c`, which it uses alone meanwhile and leaves with
 * no timeout on its session (migrations may be long; the caller closes it). `applied`
 * receives how many ran and `version` the schema version reached (either may be NULL). On
 * failure nothing of the failing migration remains and `err` says which one and why:
 * GH_EINTERNAL for an edited or unknown migration, GH_EUNAVAIL when the server went away,
 * GH_ESTORE when a migration's SQL failed. */
gh_err_t gh_pg_migrate(gh_pg_conn_t *c, const gh_embed_t *set, int *applied, int *version,
                       char *err, size_t err_size);

#endif
