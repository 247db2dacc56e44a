/* Internal to the SQLite backend: the connection struct and the helpers every
 * src/store/sqlite_*.c file uses. Nothing outside src/store includes this. */
#ifndef GH_STORE_SQLITE_INT_H
#define GH_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>

#include "store/store.h"

#define STMT_CACHE 160

struct gh_db {
    sqlite3 *conn;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE];
    int depth;     /* transaction nesting: 0 none, 1 BEGIN, more are SAVEPOINTs */
    gh_db_t *next; /* registry of every thread's connection */
};

/* The cached statement for `sql`, which must have static storage (the cache is keyed by its
 * address); reset and unbound. NULL (logged) when it does not compile. */
sqlite3_stmt *gh_sqlite_stmt(gh_db_t *db, const char *sql);

/* Maps a failed sqlite3_step result: constraint violations are GH_ECONFLICT, a busy database
 * GH_EUNAVAIL, anything else GH_ESTORE (logged). */
gh_err_t gh_sqlite_step_err(gh_db_t *db, int rc);

/* Steps a statement that returns no rows and resets it. */
gh_err_t gh_sqlite_exec(gh_db_t *db, sqlite3_stmt *st);

/* Binds `v`, or NULL for NULL or "" (empty strings are stored as NULL). */
void gh_sqlite_bind_text(sqlite3_stmt *st, int i, const char *v);

/* Copies column `i` into `out` (truncated to `size`); NULL becomes "". */
void gh_sqlite_col_text(sqlite3_stmt *st, int i, char *out, size_t size);

#define COPY(st, i, field) gh_sqlite_col_text((st), (i), (field), sizeof(field))

#endif
