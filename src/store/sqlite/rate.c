/* The cluster's rate buckets do not exist on SQLite: a node on a SQLite store is a single node,
 * whose in-memory buckets are the whole truth (core/limits.h), and it never draws. */
#include "store/sqlite/sqlite_int.h"

gh_err_t gh_sqlite_rate_draw(gh_db_t *db, const gh_store_rate_draw_t *rows, size_t n,
                             int64_t *granted, int64_t *nodes)
{
    (void)db, (void)rows;
    *nodes = 0;
    for (size_t i = 0; i < n; i++)
        granted[i] = 0;
    return GH_EUNAVAIL;
}
