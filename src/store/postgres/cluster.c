/* Store functions for the cluster (PostgreSQL backend): the change feed that migration 0011
 * fills (its triggers write every change the nodes hold in memory into cluster_changes and
 * NOTIFY gatehouse_changes), and the leader lock.
 *
 * LISTEN and the leader lock are session state: they live on the calling thread's connection
 * and die with it. The connection records which session (`generation`) it LISTENed and took
 * the lock on, so a connection reopened in between (PostgreSQL restarted, the network cut) is
 * reported to the caller rather than silently waiting on a session that no longer listens. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_int.h"

#define CHANNEL "gatehouse_changes"
/* The leader lock's key (a session-level advisory lock), distinct from the write lock and
 * the migrations lock. */
#define LEADER_LOCK "29106774330454372"

static bool session_alive(const gh_pgs_db_t *d)
{
    return d->c && !d->c->broken && PQstatus(d->c->conn) == CONNECTION_OK;
}

gh_err_t gh_pgs_cluster_listen(gh_db_t *db)
{
    gh_pgs_db_t *d = pgs(db);
    static const char sql[] = "LISTEN " CHANNEL;
    PGresult *res = NULL;
    gh_err_t rc = gh_pgs_query_dyn(db, sql, 0, NULL, &res); /* a utility statement: unprepared */
    PQclear(res);
    if (rc)
        return rc;
    d->listening = true;
    d->listen_generation = d->generation;
    return GH_OK;
}

/* Parses a change's notification, "seq at_us kind id org" (org may be empty); false when it
 * is not one (an older server's bare seq: the table is read then). */
static bool parse_change(const char *s, gh_change_t *c)
{
    memset(c, 0, sizeof(*c));
    char *end;
    errno = 0;
    c->seq = strtoll(s, &end, 10);
    if (errno || end == s || *end != ' ')
        return false;
    s = end + 1;
    c->changed_at_us = strtoll(s, &end, 10);
    if (errno || end == s || *end != ' ')
        return false;
    s = end + 1;
    struct {
        char *dst;
        size_t size;
    } parts[] = {{c->kind, sizeof(c->kind)}, {c->id, sizeof(c->id)}, {c->org_id, sizeof(c->org_id)}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strcspn(s, " ");
        if (n >= parts[i].size || (i < 2 && n == 0) || (i < 2 && s[n] != ' '))
            return false;
        memcpy(parts[i].dst, s, n);
        parts[i].dst[n] = '\0';
        s += n + (s[n] == ' ');
    }
    return *s == '\0';
}

/* Consumes every notification libpq holds: a kick is the word "kick"; a change's carries the
 * change, handed to `fn`. */
static unsigned drain(PGconn *conn, gh_store_change_fn fn, void *ctx)
{
    unsigned events = 0;
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        if (!strcmp(n->extra, "kick")) {
            events |= GH_STORE_CLUSTER_KICK;
        } else {
            events |= GH_STORE_CLUSTER_CHANGED;
            gh_change_t c;
            if (fn && parse_change(n->extra, &c))
                fn(ctx, &c);
        }
        PQfreemem(n);
    }
    return events;
}

gh_err_t gh_pgs_cluster_kick(gh_db_t *db)
{
    static const char sql[] = "SELECT pg_notify('" CHANNEL "', 'kick')";
    PGresult *res = NULL;
    gh_err_t rc = gh_pgs_query(db, sql, 0, NULL, &res);
    PQclear(res);
    return rc;
}

gh_err_t gh_pgs_cluster_wait(gh_db_t *db, int wake_fd, int timeout_ms, unsigned *events,
                             gh_store_change_fn fn, void *ctx)
{
    gh_pgs_db_t *d = pgs(db);
    *events = 0;
    if (!session_alive(d) || !d->listening || d->listen_generation != d->generation)
        return GH_EUNAVAIL;
    PGconn *conn = d->c->conn;
    /* Notifications that arrived with the results of other statements are held already. */
    if ((*events = drain(conn, fn, ctx)) != 0)
        return GH_OK;
    struct pollfd fds[2] = {{.fd = PQsocket(conn), .events = POLLIN},
                            {.fd = wake_fd, .events = POLLIN}};
    int n = poll(fds, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? GH_OK : GH_EIO;
    if (n > 0 && fds[0].revents) {
        /* Readable (or closed): a closed connection fails here and is reopened on next use. */
        if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) {
            d->c->broken = true;
            return GH_EUNAVAIL;
        }
        *events = drain(conn, fn, ctx);
    }
    return GH_OK;
}

typedef struct {
    gh_store_change_fn fn;
    void *ctx;
} change_each_t;

static void change_row(void *ctx, const PGresult *res, int row)
{
    change_each_t *e = ctx;
    gh_change_t c;
    c.seq = gh_pgs_col_i64(res, row, 0);
    GH_PGS_COPY(res, row, 1, c.kind);
    GH_PGS_COPY(res, row, 2, c.id);
    GH_PGS_COPY(res, row, 3, c.org_id);
    c.changed_at_us = gh_pgs_col_i64(res, row, 4);
    e->fn(e->ctx, &c);
}

gh_err_t gh_pgs_cluster_changes(gh_db_t *db, int64_t after, int limit, gh_store_change_fn fn,
                                void *ctx)
{
    static const char sql[] =
        "SELECT seq, kind, id, org_id, floor(extract(epoch FROM changed_at) * 1000000)::bigint "
        "FROM cluster_changes WHERE seq > $1 ORDER BY seq LIMIT $2";
    gh_pgs_num_t a, l;
    const char *p[] = {gh_pgs_i64(&a, after), gh_pgs_i64(&l, limit)};
    change_each_t e = {fn, ctx};
    return gh_pgs_each(db, sql, 2, p, change_row, &e);
}

gh_err_t gh_pgs_cluster_change_max(gh_db_t *db, int64_t *seq)
{
    static const char sql[] = "SELECT coalesce(max(seq), 0) FROM cluster_changes";
    PGresult *res = NULL;
    *seq = 0;
    gh_err_t rc = gh_pgs_query(db, sql, 0, NULL, &res);
    if (rc)
        return rc;
    if (PQntuples(res) > 0)
        *seq = gh_pgs_col_i64(res, 0, 0);
    PQclear(res);
    return GH_OK;
}

gh_err_t gh_pgs_cluster_lead(gh_db_t *db, bool *leader)
{
    gh_pgs_db_t *d = pgs(db);
    *leader = false;
    if (d->leading && d->lead_generation == d->generation && session_alive(d)) {
        *leader = true;
        return GH_OK;
    }
    d->leading = false;
    static const char sql[] = "SELECT pg_try_advisory_lock(" LEADER_LOCK ")";
    PGresult *res = NULL;
    gh_err_t rc = gh_pgs_query(db, sql, 0, NULL, &res);
    if (rc)
        return rc;
    bool got = PQntuples(res) > 0 && gh_pgs_col_bool(res, 0, 0);
    PQclear(res);
    if (got) {
        d->leading = true;
        d->lead_generation = d->generation;
    }
    *leader = got;
    return GH_OK;
}

gh_err_t gh_pgs_cluster_prune(gh_db_t *db, int64_t before_ms, int64_t *deleted)
{
    static const char sql[] =
        "DELETE FROM cluster_changes "
        "WHERE changed_at < timestamptz 'epoch' + $1::bigint * interval '1 millisecond'";
    gh_pgs_num_t b;
    const char *p[] = {gh_pgs_i64(&b, before_ms)};
    *deleted = 0;
    gh_err_t rc = gh_pgs_exec(db, sql, 1, p);
    if (!rc)
        *deleted = pgs(db)->changes;
    return rc;
}
