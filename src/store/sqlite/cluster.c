/* The cluster's store functions on SQLite: a SQLite store is one node (core/cluster.h), so
 * there is no change feed (GH_EUNAVAIL) and the one node is always the leader. */
#include "store/sqlite/sqlite_int.h"

gh_err_t gh_sqlite_cluster_listen(gh_db_t *db)
{
    (void)db;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_cluster_wait(gh_db_t *db, int wake_fd, int timeout_ms, unsigned *events,
                                gh_store_change_fn fn, void *ctx)
{
    (void)db;
    (void)fn;
    (void)ctx;
    (void)wake_fd;
    (void)timeout_ms;
    *events = 0;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_cluster_kick(gh_db_t *db)
{
    (void)db;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_cluster_changes(gh_db_t *db, int64_t after, int limit, gh_store_change_fn fn,
                                   void *ctx)
{
    (void)db;
    (void)after;
    (void)limit;
    (void)fn;
    (void)ctx;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_cluster_change_max(gh_db_t *db, int64_t *seq)
{
    (void)db;
    *seq = 0;
    return GH_EUNAVAIL;
}

gh_err_t gh_sqlite_cluster_lead(gh_db_t *db, bool *leader)
{
    (void)db;
    *leader = true;
    return GH_OK;
}

gh_err_t gh_sqlite_cluster_prune(gh_db_t *db, int64_t before_ms, int64_t *deleted)
{
    (void)db;
    (void)before_ms;
    *deleted = 0;
    return GH_EUNAVAIL;
}
