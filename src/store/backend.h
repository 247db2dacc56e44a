/* What a store backend implements, internal to src/store: the table of operations and the
 * two handles the rest of the program holds. A backend (src/store/sqlite/, later
 * src/store/postgres/) defines its own store and connection structs, each embedding
 * `struct gh_store` or `struct gh_db` as its FIRST member, and one const gh_store_ops_t that
 * points at its functions. src/store/store.c dispatches every public gh_store_* call through
 * `ops` of the handle it is given; nothing outside src/store includes this header. */
#ifndef GH_STORE_BACKEND_H
#define GH_STORE_BACKEND_H

#include <stddef.h>

#include "store/ops.h"

typedef struct gh_store_ops {
    /* The backend's name in logs and errors ("sqlite"), and the URL scheme that selects it
     * ("sqlite:" selects SQLite; a location with no scheme is a SQLite path too). */
    const char *backend_name;
    const char *scheme;
    /* Opens the store at `location` (what follows the scheme) and applies pending
     * migrations; on failure writes a message into `err`. The store's `ops` is this table. */
    gh_err_t (*open)(gh_store_t **out, const char *location, char *err, size_t err_size);
#define GH_STORE_OP_FIELD(ret, name, params, args) ret(*name) params;
    GH_STORE_OPS_STORE(GH_STORE_OP_FIELD)
    GH_STORE_OPS(GH_STORE_OP_FIELD)
#undef GH_STORE_OP_FIELD
} gh_store_ops_t;

/* The head of every backend's store and connection. */
struct gh_store {
    const gh_store_ops_t *ops;
};

struct gh_db {
    const gh_store_ops_t *ops;
};

/* The name of the first entry `ops` leaves NULL, in list order (open first, then the
 * GH_STORE_OPS_STORE and GH_STORE_OPS entries), or NULL when the table is complete. */
const char *gh_store_ops_first_missing(const gh_store_ops_t *ops);

/* The SQLite backend's table (src/store/sqlite/sqlite.c). */
extern const gh_store_ops_t gh_sqlite_ops;

/* The PostgreSQL backend's table (src/store/postgres/pgstore.c); operations not yet ported
 * are NULL (gh_store_ops_first_missing names the first). */
extern const gh_store_ops_t gh_postgres_ops;

#endif
