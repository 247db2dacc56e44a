/* Internal to the SQLite backend: the connection struct and the helpers every
 * file of src/store/sqlite/ uses, and the declarations of its implementations of the store
 * operations (gh_sqlite_<name> for each gh_store_<name> of store/ops.h), which
 * src/store/sqlite/sqlite.c puts in gh_sqlite_ops. Nothing outside src/store/sqlite/
 * includes this. */
#ifndef GH_STORE_SQLITE_INT_H
#define GH_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>

#include "store/backend.h"
#include "store/identity.h"
#include "store/store.h"

#define STMT_CACHE 256

/* A connection: the generic head first, so a gh_db_t * of this backend is one of these. */
typedef struct gh_sqlite_db {
    struct gh_db base;
    sqlite3 *conn;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE];
    int depth;     /* transaction nesting: 0 none, 1 BEGIN, more are SAVEPOINTs */
    bool failed_on_data; /* a statement since the outermost BEGIN failed on its values */
    struct gh_sqlite_db *next; /* registry of every thread's connection */
} gh_sqlite_db_t;

/* The SQLite connection behind a handle of this backend. */
static inline gh_sqlite_db_t *sq(gh_db_t *db)
{
    return (gh_sqlite_db_t *)db;
}

/* The backend's implementation of each store operation, checked against store/ops.h. */
#define GH_SQLITE_DECLARE(ret, name, params, args) ret gh_sqlite_##name params;
GH_STORE_OPS_STORE(GH_SQLITE_DECLARE)
GH_STORE_OPS(GH_SQLITE_DECLARE)
#undef GH_SQLITE_DECLARE
gh_err_t gh_sqlite_open(gh_store_t **out, const char *path, char *err, size_t err_size);

/* The cached statement for `sql`, which must have static storage (the cache is keyed by its
 * address); reset and unbound. NULL (logged) when it does not compile. */
sqlite3_stmt *gh_sqlite_stmt(gh_db_t *db, const char *sql);
/* gh_sqlite_stmt for a caller that binds every parameter: the old values are left bound
 * until then (unbinding them all first is work the usage writer would do once an event). */
sqlite3_stmt *gh_sqlite_stmt_to_bind(gh_db_t *db, const char *sql);

/* Registers gh_usage_rows, the table the usage writer inserts a batch from (usage.c), on a
 * new connection. */
int gh_sqlite_usage_register(sqlite3 *conn);

/* Maps a failed sqlite3_step result: constraint violations are GH_ECONFLICT, a busy database
 * GH_EUNAVAIL, anything else GH_ESTORE (logged). */
gh_err_t gh_sqlite_step_err(gh_db_t *db, int rc);

/* Steps a statement that returns no rows and resets it. */
gh_err_t gh_sqlite_exec(gh_db_t *db, sqlite3_stmt *st);

/* Steps a statement that must change exactly one row: GH_ENOTFOUND when it changed none
 * (callers that mean "someone got there first" map that to GH_ECONFLICT). */
gh_err_t gh_sqlite_exec_one(gh_db_t *db, sqlite3_stmt *st);

/* Binds `v` as text, "" included (gh_sqlite_bind_text stores "" as NULL). `v` must outlive
 * the statement's step. */
void gh_sqlite_bind_str(sqlite3_stmt *st, int i, const char *v);

/* Decodes the current row of a statement into a record. */
typedef void (*gh_sqlite_decode_fn)(sqlite3_stmt *st, void *out);

/* Steps `st` once: decodes the row into `out` with `decode` (GH_OK), or GH_ENOTFOUND when
 * there is none; resets `st` either way. */
gh_err_t gh_sqlite_one(gh_db_t *db, sqlite3_stmt *st, gh_sqlite_decode_fn decode, void *out);

/* Binds `v`, or NULL for NULL or "" (empty strings are stored as NULL). */
void gh_sqlite_bind_text(sqlite3_stmt *st, int i, const char *v);

/* Copies column `i` into `out` (truncated to `size`); NULL becomes "". */
void gh_sqlite_col_text(sqlite3_stmt *st, int i, char *out, size_t size);

/* One bound parameter of a dynamically built query: text (NULL binds NULL) or a number. */
typedef struct gh_sqlite_arg {
    const char *text;
    int64_t num;
    bool is_num;
} gh_sqlite_arg_t;

#define GH_ARG_TEXT(t) ((gh_sqlite_arg_t){.text = (t)})
#define GH_ARG_NUM(n) ((gh_sqlite_arg_t){.num = (n), .is_num = true})
#define GH_SQLITE_ARGS_MAX 16

typedef void (*gh_sqlite_row_fn)(void *ctx, sqlite3_stmt *st);

/* Runs one page of a keyset-paginated list, in rowid (insertion) order, or newest first.
 * `from_where` is "FROM <table> t ... WHERE ..." (the listed table aliased t) with `nargs`
 * placeholders bound from `args`; `id_expr` names the column a cursor id is matched against
 * ("t.id"). Calls `fn` with each row of "SELECT <cols> ..." in page order and sets
 * `*has_more`. A cursor id not in the list is GH_EINVAL. Only fixed SQL fragments may be
 * passed as text here: every value goes through `args`. */
gh_err_t gh_sqlite_page(gh_db_t *db, const char *cols, const char *from_where,
                        const char *id_expr, const gh_sqlite_arg_t *args, int nargs,
                        const gh_page_t *page, bool newest_first, gh_sqlite_row_fn fn, void *ctx,
                        bool *has_more);

#define COPY(st, i, field) gh_sqlite_col_text((st), (i), (field), sizeof(field))

#endif
