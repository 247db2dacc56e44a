/* Moving an installation: `gatehouse store copy` copies a SQLite store, table by table, into
 * an empty PostgreSQL database.
 *
 * This is the one module that knows both backends' SQL. It works on tables, not on store
 * operations: the table and column lists come from the two schemas themselves (SQLite's
 * sqlite_schema and table_info, PostgreSQL's information_schema), so a table added to one
 * backend and not the other cannot be forgotten silently: a SQLite table or column with no
 * PostgreSQL counterpart makes the copy refuse before anything is written.
 *
 * Mapping, column by column, driven by the PostgreSQL column's type: `timestamptz` from
 * SQLite's epoch integers (seconds; milliseconds where the SQLite name ends in `_ms`, which
 * PostgreSQL drops), `boolean` from 0/1, everything else (text, bigint, integer, jsonb) as
 * its text. A SQLite time that is NOT NULL with 0 for "never" becomes NULL where PostgreSQL's
 * column is nullable, or the column's '-infinity' default where it has one. PostgreSQL
 * columns SQLite lacks take their defaults: the `seq` identity columns are filled in SQLite
 * rowid order (rows are read in rowid order and COPY assigns them in that order), so keyset
 * pagination keeps the same order; usage events get node_id 'local'.
 *
 * The target is migrated first with the PostgreSQL migrations, must hold no rows (other than
 * what the migrations seed), and receives everything in ONE transaction, tables in foreign-key
 * order: either all of it is there or none. Identity sequences are moved past the copied
 * values; invoice_counters is copied as is, so numbering continues gap-free. Before COMMIT the
 * ledger check runs on the target, through the PostgreSQL backend on the copy's own
 * connection (gh_pgs_db_borrow), and a problem rolls the whole copy back. */
#ifndef GH_STORE_COPY_H
#define GH_STORE_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "store/postgres/pg.h"
#include "store/store.h"

/* `table` is called once per table copied, with its row count. `ledger_check` (required)
 * runs the ledger check on the copy before COMMIT: `db` is the PostgreSQL backend's handle on
 * the target inside the copy's transaction, so the check reads the target through the store
 * interface (gh_store_ledger_sums, gh_store_invoice_years), the very statements `gatehouse
 * ledger check` runs there; it returns the number of problems found in `*problems`. (The
 * caller supplies it: what counts as a problem is billing's, a layer above the store.) */
typedef struct gh_store_copy_report {
    void (*table)(void *ctx, const char *table, int64_t rows);
    gh_err_t (*ledger_check)(void *ctx, gh_db_t *db, int *problems);
    void *ctx;
} gh_store_copy_report_t;

/* Copies the SQLite database at `sqlite_path` (opened read-only; it must be at this binary's
 * schema version, and no server should be writing to it) into the PostgreSQL database `pg`
 * describes. Returns GH_OK when everything was copied and the ledger check passed on the
 * target. Otherwise nothing was written to the target beyond its migrations, and `err` says
 * why in words a person can act on: GH_EINVAL for an unreadable or outdated source or a
 * table without mapping, GH_ECONFLICT for a target that is not empty, GH_EBILLING for a
 * ledger check that found problems (`report->ledger_check` reported them), GH_EUNAVAIL or
 * GH_ESTORE for PostgreSQL failures. Never logs or prints the password. */
gh_err_t gh_store_copy(const char *sqlite_path, const gh_pg_options_t *pg,
                       const gh_store_copy_report_t *report, char *err, size_t err_size);

#endif
