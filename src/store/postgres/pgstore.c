/* The PostgreSQL backend of the store interface (src/store/store.h).
 *
 * One connection per thread, opened by gh_pgs_db on first use and kept for the thread's life
 * (the SQLite backend's model: the count is bounded by the thread count), registered so
 * gh_pgs_close frees them all. A connection found broken (PostgreSQL restarted, the network
 * cut) is reopened on the next use outside a transaction; until it can be, every statement
 * answers GH_EUNAVAIL, which the console turns into 503 "the database is unavailable".
 *
 * Transactions keep SQLite's semantics: the outermost gh_pgs_begin runs BEGIN and takes a
 * transaction-scoped advisory lock (GH_PGS_WRITE_LOCK), so writers are serialized exactly as
 * BEGIN IMMEDIATE serializes them on SQLite. Every read-check-write sequence the callers run
 * inside a transaction stays race-free at READ COMMITTED, and writers never meet
 * serialization failures or deadlocks. Inner begins are savepoints. Statements outside a
 * transaction autocommit.
 *
 * Statements are prepared once per connection, named after their slot in a small cache keyed
 * by the address of the static SQL string (as gh_sqlite_stmt does). gh_postgres_ops at the
 * end of this file is the table of operations, built from the per-file lists in pg_int.h. */
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/embed.h"
#include "lib/log.h"
#include "lib/mono.h"
#include "store/postgres/pg_int.h"
#include "store/postgres/pg_migrate.h"

/* The store: the generic head first, then what every thread's connection is opened with. */
typedef struct gh_pgs_store {
    struct gh_store base;
    gh_pg_options_t opt; /* url points at `url` */
    char *url;
    _Atomic int lock_timeout_ms; /* how long a writer waits for the write lock */
    _Atomic int statement_timeout_ms; /* the longest a statement may run */
    char node_id[65];            /* usage events' node; set before other threads start */
    pthread_key_t key;
    pthread_mutex_t lock; /* guards `all` */
    gh_pgs_db_t *all;
} gh_pgs_store_t;

static gh_pgs_store_t *ps(gh_store_t *store)
{
    assert(store->ops == &gh_postgres_ops);
    return (gh_pgs_store_t *)store;
}

/* ---- connections ---- */

/* Opens (or reopens) the thread's connection; the prepared statements of an old one are
 * forgotten. On failure d->c is NULL and `err` says why. */
static gh_err_t connect_db(gh_pgs_db_t *d, char *err, size_t err_size)
{
    if (d->c) {
        gh_pg_disconnect(d->c);
        d->c = NULL;
    }
    for (int i = 0; i < GH_PGS_STMT_CACHE; i++)
        d->cache[i].prepared = false;
    gh_pg_conn_t *c;
    gh_err_t rc = gh_pg_connect(&d->store->opt, &c, err, err_size);
    if (rc)
        return rc;
    char sql[96];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d; SET lock_timeout = %d",
             d->store->statement_timeout_ms, d->store->lock_timeout_ms);
    if ((rc = gh_pg_exec(c, sql))) {
        snprintf(err, err_size, "cannot configure the PostgreSQL session: %s", c->message);
        gh_pg_disconnect(c);
        return rc;
    }
    d->c = c;
    d->generation++;
    return GH_OK;
}

/* Whether the connection can take a statement, reopening a broken one outside a
 * transaction. While PostgreSQL is down a thread does not spin: after a failed attempt the
 * next one waits RECONNECT_MIN_MS, doubling up to RECONNECT_MAX_MS, and every statement
 * meanwhile answers GH_EUNAVAIL at once (no connect, no wait). The outage is logged once,
 * by whichever thread notices it first, and so is the end of it. */
static bool ready(gh_pgs_db_t *d)
{
    static atomic_bool down_logged;
    if (d->c && !d->c->broken)
        return true;
    if (d->depth > 0)
        return false; /* the transaction died with its connection: the caller rolls back */
    int64_t now = gh_mono_ms();
    if (d->retry_ms > 0 && now < d->retry_at_ms)
        return false;
    char err[512];
    if (connect_db(d, err, sizeof(err))) {
        int next = d->retry_ms == 0 ? GH_PGS_RECONNECT_MIN_MS : d->retry_ms * 2;
        d->retry_ms = next > GH_PGS_RECONNECT_MAX_MS ? GH_PGS_RECONNECT_MAX_MS : next;
        d->retry_at_ms = gh_mono_ms() + d->retry_ms;
        if (!atomic_exchange(&down_logged, true))
            gh_log_warn("store: %s; retrying (statements answer \"unavailable\" meanwhile)",
                        err);
        return false;
    }
    d->retry_ms = 0;
    if (atomic_exchange(&down_logged, false))
        gh_log_info("store: reconnected to PostgreSQL");
    return true;
}

gh_err_t gh_pgs_db_borrow(gh_pg_conn_t *c, gh_db_t **out)
{
    assert(c && PQtransactionStatus(c->conn) == PQTRANS_INTRANS);
    gh_pgs_db_t *d = calloc(1, sizeof(*d));
    if (!d)
        return GH_ENOMEM;
    d->base.ops = &gh_postgres_ops;
    d->c = c;
    d->depth = 1; /* the owner's transaction: begins are savepoints, nothing reconnects */
    *out = &d->base;
    return GH_OK;
}

void gh_pgs_db_return(gh_db_t *db)
{
    free(pgs(db)); /* not its connection: the owner's */
}

static void db_free(gh_pgs_db_t *d)
{
    gh_pg_disconnect(d->c);
    free(d);
}

gh_db_t *gh_pgs_db(gh_store_t *store)
{
    gh_pgs_store_t *s = ps(store);
    gh_pgs_db_t *d = pthread_getspecific(s->key);
    if (d) {
        if (d->depth == 0)
            (void)ready(d);
        return &d->base;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->base.ops = &gh_postgres_ops;
    d->store = s;
    /* A server that is down now still gives a handle: its statements answer GH_EUNAVAIL
     * and it connects as soon as PostgreSQL is back. */
    (void)ready(d);
    pthread_setspecific(s->key, d);
    pthread_mutex_lock(&s->lock);
    d->next = s->all;
    s->all = d;
    pthread_mutex_unlock(&s->lock);
    return &d->base;
}

gh_err_t gh_pgs_open(gh_store_t **out, const char *url, char *err, size_t err_size)
{
    gh_pgs_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return GH_ENOMEM;
    s->base.ops = &gh_postgres_ops;
    s->url = strdup(url);
    snprintf(s->node_id, sizeof(s->node_id), "local");
    if (!s->url || pthread_key_create(&s->key, NULL)) {
        free(s->url);
        free(s);
        return GH_ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    gh_pg_options_defaults(&s->opt);
    s->opt.url = s->url; /* the password: libpq's PGPASSWORD or passfile */
    s->lock_timeout_ms = 10000;
    s->statement_timeout_ms = s->opt.statement_timeout_ms;

    gh_err_t rc = GH_ENOMEM;
    gh_pgs_db_t *d = calloc(1, sizeof(*d));
    if (!d)
        goto out_close;
    d->base.ops = &gh_postgres_ops;
    d->store = s;
    pthread_setspecific(s->key, d);
    d->next = s->all;
    s->all = d;
    if ((rc = connect_db(d, err, err_size)))
        goto out_close;
    if ((rc = gh_pgs_migrate(&d->base, NULL, err, err_size)))
        goto out_close;
    *out = &s->base;
    return GH_OK;
out_close:
    gh_pgs_close(&s->base);
    return rc;
}

void gh_pgs_set_busy_timeout(gh_store_t *store, int timeout_ms)
{
    gh_pgs_store_t *s = ps(store);
    s->lock_timeout_ms = timeout_ms;
    gh_pgs_db_t *d = pthread_getspecific(s->key);
    if (d && d->c && !d->c->broken) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SET lock_timeout = %d", timeout_ms);
        (void)gh_pg_exec(d->c, sql);
    }
}

void gh_pgs_set_statement_timeout(gh_store_t *store, int timeout_ms)
{
    gh_pgs_store_t *s = ps(store);
    s->statement_timeout_ms = timeout_ms;
    gh_pgs_db_t *d = pthread_getspecific(s->key);
    if (d && d->c && !d->c->broken) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SET statement_timeout = %d", timeout_ms);
        (void)gh_pg_exec(d->c, sql);
    }
}

void gh_pgs_set_node_id(gh_store_t *store, const char *node_id)
{
    gh_pgs_store_t *s = ps(store);
    assert(strlen(node_id) >= 1 && strlen(node_id) < sizeof(s->node_id));
    snprintf(s->node_id, sizeof(s->node_id), "%s", node_id);
}

const char *gh_pgs_node_id(gh_db_t *db)
{
    return pgs(db)->store->node_id;
}

void gh_pgs_close(gh_store_t *store)
{
    if (!store)
        return;
    gh_pgs_store_t *s = ps(store);
    gh_pgs_db_t *d = s->all;
    while (d) {
        gh_pgs_db_t *next = d->next;
        db_free(d);
        d = next;
    }
    pthread_setspecific(s->key, NULL);
    pthread_key_delete(s->key);
    pthread_mutex_destroy(&s->lock);
    free(s->url);
    free(s);
}

/* ---- statements ---- */

/* GH_EUNAVAIL, noted for this thread so the console answers 503 (lib/err.h). */
static gh_err_t unavailable(void)
{
    gh_err_note_db_unavailable();
    return GH_EUNAVAIL;
}

static gh_err_t failed(gh_pgs_db_t *d, const char *sql)
{
    /* Class 22 (data exception) and 23 (integrity constraint violation): the values. */
    if (!strncmp(d->c->sqlstate, "22", 2) || !strncmp(d->c->sqlstate, "23", 2))
        d->failed_on_data = true;
    gh_err_t rc = gh_pg_error(d->c);
    if (rc == GH_EUNAVAIL)
        gh_err_note_db_unavailable();
    if (rc == GH_ESTORE)
        gh_log_error("store: PostgreSQL: %s (SQLSTATE %s) in: %.120s", d->c->message,
                     d->c->sqlstate, sql);
    return rc ? rc : GH_ESTORE;
}

/* Runs the cached statement for `sql`, preparing it on first use on this connection; with
 * `lengths`, every parameter is in binary format; with `guarded`, under the savepoint
 * gh_stmt in one round trip (gh_pg_query_guarded, text parameters only). */
static gh_err_t run_cached(gh_pgs_db_t *d, const char *sql, int n, const char *const *params,
                           const int *lengths, PGresult **res, bool *guarded)
{
    assert(!(lengths && guarded));
    int slot = -1, free_slot = -1;
    for (int i = 0; i < GH_PGS_STMT_CACHE; i++) {
        if (d->cache[i].sql == sql) {
            slot = i;
            break;
        }
        if (!d->cache[i].sql && free_slot < 0)
            free_slot = i;
    }
    if (slot < 0) {
        assert(free_slot >= 0 && "raise GH_PGS_STMT_CACHE");
        if (free_slot < 0 && guarded)
            return gh_pg_query_guarded(d->c, NULL, sql, n, params, res, guarded);
        if (free_slot < 0 && !lengths)
            return gh_pg_query(d->c, sql, n, params, res);
        if (free_slot < 0)
            return GH_EINTERNAL;
        slot = free_slot;
        d->cache[slot].sql = sql;
        d->cache[slot].prepared = false;
    }
    char name[16];
    snprintf(name, sizeof(name), "s%d", slot);
    if (!d->cache[slot].prepared) {
        gh_err_t rc = gh_pg_prepare(d->c, name, sql);
        if (rc)
            return rc;
        d->cache[slot].prepared = true;
    }
    if (lengths)
        return gh_pg_query_prepared_binary(d->c, name, n, params, lengths, res);
    if (guarded)
        return gh_pg_query_guarded(d->c, name, NULL, n, params, res, guarded);
    return gh_pg_query_prepared(d->c, name, n, params, res);
}

/* Whether a failure of `sql` could be one a caller handles and goes on from (a constraint
 * violation of a write): those run under a savepoint inside transactions. */
static bool is_write(const char *sql)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '(')
        sql++;
    return !strncasecmp(sql, "INSERT", 6) || !strncasecmp(sql, "UPDATE", 6) ||
           !strncasecmp(sql, "DELETE", 6) || !strncasecmp(sql, "WITH", 4);
}

static gh_err_t run(gh_db_t *db, const char *sql, int n, const char *const *params,
                    PGresult **out, bool cached, bool guard)
{
    gh_pgs_db_t *d = pgs(db);
    if (out)
        *out = NULL;
    if (!ready(d))
        return unavailable();
    /* A write inside a transaction runs under a savepoint, so that a failure the caller
     * handles (a constraint) leaves the transaction usable, as a failed statement does in
     * SQLite. The savepoint, the statement and its release go in one round trip. */
    bool savepoint = guard && d->depth > 0 && is_write(sql), guarded = false;
    PGresult *res = NULL;
    gh_err_t rc;
    if (savepoint)
        rc = cached ? run_cached(d, sql, n, params, NULL, &res, &guarded)
                    : gh_pg_query_guarded(d->c, NULL, sql, n, params, &res, &guarded);
    else
        rc = cached ? run_cached(d, sql, n, params, NULL, &res, NULL)
                    : gh_pg_query(d->c, sql, n, params, &res);
    if (rc) {
        rc = failed(d, sql);
        if (guarded && !d->c->broken &&
            gh_pg_exec(d->c, "ROLLBACK TO SAVEPOINT gh_stmt; RELEASE SAVEPOINT gh_stmt"))
            gh_log_error("store: cannot undo a failed statement: %s", d->c->message);
        return rc;
    }
    /* As sqlite3_changes: the rows the last INSERT, UPDATE or DELETE changed; a SELECT
     * leaves the count alone. */
    const char *status = PQcmdStatus(res);
    if (status && (!strncmp(status, "INSERT", 6) || !strncmp(status, "UPDATE", 6) ||
                   !strncmp(status, "DELETE", 6) || !strncmp(status, "MERGE", 5))) {
        const char *tuples = PQcmdTuples(res);
        d->changes = tuples && *tuples ? strtoll(tuples, NULL, 10) : 0;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return GH_OK;
}

gh_err_t gh_pgs_query(gh_db_t *db, const char *sql, int n, const char *const *params,
                      PGresult **res)
{
    return run(db, sql, n, params, res, true, true);
}

gh_err_t gh_pgs_query_fast(gh_db_t *db, const char *sql, int n, const char *const *params,
                           PGresult **res)
{
    return run(db, sql, n, params, res, true, false);
}

gh_err_t gh_pgs_query_binary(gh_db_t *db, const char *sql, int n, const char *const *params,
                             const int *lengths, PGresult **res)
{
    gh_pgs_db_t *d = pgs(db);
    if (res)
        *res = NULL;
    if (!ready(d))
        return unavailable();
    PGresult *out = NULL;
    if (run_cached(d, sql, n, params, lengths, &out, NULL))
        return failed(d, sql);
    const char *tuples = PQcmdTuples(out);
    d->changes = tuples && *tuples ? strtoll(tuples, NULL, 10) : 0;
    if (res)
        *res = out;
    else
        PQclear(out);
    return GH_OK;
}

gh_err_t gh_pgs_copy_in(gh_db_t *db, const char *sql, const char *data, size_t len)
{
    gh_pgs_db_t *d = pgs(db);
    if (!ready(d))
        return unavailable();
    int64_t rows = 0;
    if (gh_pg_copy_in(d->c, sql, data, len, &rows))
        return failed(d, sql);
    d->changes = rows;
    return GH_OK;
}

gh_err_t gh_pgs_query_dyn(gh_db_t *db, const char *sql, int n, const char *const *params,
                          PGresult **res)
{
    return run(db, sql, n, params, res, false, true);
}

gh_err_t gh_pgs_exec(gh_db_t *db, const char *sql, int n, const char *const *params)
{
    return run(db, sql, n, params, NULL, true, true);
}

gh_err_t gh_pgs_exec_one(gh_db_t *db, const char *sql, int n, const char *const *params)
{
    gh_err_t rc = gh_pgs_exec(db, sql, n, params);
    return !rc && pgs(db)->changes == 0 ? GH_ENOTFOUND : rc;
}

gh_err_t gh_pgs_one(gh_db_t *db, const char *sql, int n, const char *const *params,
                    gh_pgs_decode_fn decode, void *out)
{
    PGresult *res;
    gh_err_t rc = gh_pgs_query(db, sql, n, params, &res);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return GH_ENOTFOUND;
    }
    decode(res, 0, out);
    PQclear(res);
    return GH_OK;
}

gh_err_t gh_pgs_each(gh_db_t *db, const char *sql, int n, const char *const *params,
                     gh_pgs_row_fn fn, void *ctx)
{
    PGresult *res;
    gh_err_t rc = gh_pgs_query(db, sql, n, params, &res);
    if (rc)
        return rc;
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++)
        fn(ctx, res, i);
    PQclear(res);
    return GH_OK;
}

int gh_pgs_changes(gh_db_t *db)
{
    int64_t n = pgs(db)->changes;
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

const char *gh_pgs_i64(gh_pgs_num_t *buf, int64_t v)
{
    snprintf(buf->s, sizeof(buf->s), "%" PRId64, v);
    return buf->s;
}

void gh_pgs_col_text(const PGresult *res, int row, int col, char *out, size_t size)
{
    if (PQgetisnull(res, row, col)) {
        out[0] = '\0';
        return;
    }
    snprintf(out, size, "%s", PQgetvalue(res, row, col));
}

int64_t gh_pgs_col_i64(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool gh_pgs_col_bool(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

bool gh_pgs_col_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col);
}

/* ---- transactions ---- */

#define GH_PGS_STR_(x) #x
#define GH_PGS_STR(x) GH_PGS_STR_(x)
#define LOCK_WRITES_SQL "SELECT pg_advisory_xact_lock(" GH_PGS_STR(GH_PGS_WRITE_LOCK) ")"

/* BEGIN, with the write lock or without it (a staged transaction, store.h). */
static gh_err_t begin_outermost(gh_pgs_db_t *d, bool lock)
{
    d->failed_on_data = false;
    if (!ready(d))
        return unavailable();
    if (gh_pg_exec(d->c, lock ? "BEGIN; " LOCK_WRITES_SQL : "BEGIN")) {
        gh_err_t rc = failed(d, "BEGIN");
        if (!d->c->broken && PQtransactionStatus(d->c->conn) != PQTRANS_IDLE)
            (void)gh_pg_exec(d->c, "ROLLBACK");
        return rc;
    }
    d->depth = 1;
    return GH_OK;
}

/* Two transactions of the usage writer in flight (store.h): one lane stages its events while
 * the other holds the write lock for its ledger draws. More lanes would not help on the
 * machines this is measured on (bench/README.md): the first parts of two lanes already keep
 * two server processes busy. */
int gh_pgs_writer_lanes(gh_store_t *store)
{
    (void)store;
    return 2;
}

void gh_pgs_set_writer_lane(gh_db_t *db, int lane)
{
    assert(lane >= 0 && lane < GH_PGS_LANES_MAX);
    pgs(db)->lane = lane;
}

gh_err_t gh_pgs_begin_staged(gh_db_t *db)
{
    assert(pgs(db)->depth == 0);
    return begin_outermost(pgs(db), false);
}

gh_err_t gh_pgs_lock_writes(gh_db_t *db)
{
    gh_pgs_db_t *d = pgs(db);
    assert(d->depth == 1);
    if (!d->c || d->c->broken)
        return unavailable();
    if (gh_pg_exec(d->c, LOCK_WRITES_SQL))
        return failed(d, "the write lock");
    return GH_OK;
}

gh_err_t gh_pgs_begin(gh_db_t *db)
{
    gh_pgs_db_t *d = pgs(db);
    if (d->depth == 0)
        return begin_outermost(d, true);
    if (!d->c || d->c->broken)
        return unavailable();
    char sql[48];
    snprintf(sql, sizeof(sql), "SAVEPOINT gh_sp%d", d->depth);
    if (gh_pg_exec(d->c, sql))
        return failed(d, sql);
    d->depth++;
    return GH_OK;
}

gh_err_t gh_pgs_commit(gh_db_t *db)
{
    gh_pgs_db_t *d = pgs(db);
    assert(d->depth > 0);
    if (!d->c || d->c->broken) {
        gh_pgs_rollback(db);
        return unavailable();
    }
    if (PQtransactionStatus(d->c->conn) == PQTRANS_INERROR) {
        /* A statement failed unguarded: COMMIT would silently roll back. */
        gh_pgs_rollback(db);
        return GH_ESTORE;
    }
    gh_err_t rc;
    if (d->depth == 1) {
        rc = gh_pg_exec(d->c, "COMMIT");
    } else {
        char sql[48];
        snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT gh_sp%d", d->depth - 1);
        rc = gh_pg_exec(d->c, sql);
    }
    if (!rc) {
        d->depth--;
        return GH_OK;
    }
    rc = failed(d, "COMMIT");
    if (d->depth == 1 && d->c->broken)
        gh_log_warn("store: the connection to PostgreSQL was lost during COMMIT; the "
                    "transaction's outcome is unknown");
    gh_pgs_rollback(db);
    return rc;
}

void gh_pgs_rollback(gh_db_t *db)
{
    gh_pgs_db_t *d = pgs(db);
    if (d->depth == 0)
        return;
    if (d->c && !d->c->broken) {
        if (d->depth == 1) {
            if (PQtransactionStatus(d->c->conn) != PQTRANS_IDLE)
                (void)gh_pg_exec(d->c, "ROLLBACK");
        } else {
            char sql[96];
            snprintf(sql, sizeof(sql), "ROLLBACK TO SAVEPOINT gh_sp%d; RELEASE SAVEPOINT gh_sp%d",
                     d->depth - 1, d->depth - 1);
            (void)gh_pg_exec(d->c, sql);
        }
    }
    d->depth--;
}

bool gh_pgs_failed_on_data(const gh_db_t *db)
{
    return ((const gh_pgs_db_t *)db)->failed_on_data;
}

bool gh_pgs_in_transaction(const gh_db_t *db)
{
    return ((const gh_pgs_db_t *)db)->depth > 0;
}

/* ---- migrations ---- */

int gh_pgs_schema_version(gh_db_t *db)
{
    static const char sql[] = "SELECT coalesce(max(version), 0) FROM schema_migrations";
    PGresult *res;
    if (gh_pgs_query(db, sql, 0, NULL, &res))
        return 0;
    int v = PQntuples(res) ? (int)gh_pgs_col_i64(res, 0, 0) : 0;
    PQclear(res);
    return v;
}

gh_err_t gh_pgs_migrate(gh_db_t *db, int *applied, char *err, size_t err_size)
{
    gh_pgs_db_t *d = pgs(db);
    assert(d->depth == 0);
    if (!ready(d)) {
        snprintf(err, err_size, "PostgreSQL is unavailable");
        return GH_EUNAVAIL;
    }
    gh_err_t rc = gh_pg_migrate(d->c, gh_embed_pg_migrations, applied, NULL, err, err_size);
    /* The runner leaves the session without timeouts; give this one back its own. */
    char sql[128];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d; SET lock_timeout = %d",
             d->store->statement_timeout_ms, d->store->lock_timeout_ms);
    if (!d->c->broken)
        (void)gh_pg_exec(d->c, sql);
    /* A migration may have changed what a prepared statement reads. */
    if (!rc && !d->c->broken && gh_pg_exec(d->c, "DEALLOCATE ALL") == GH_OK)
        for (int i = 0; i < GH_PGS_STMT_CACHE; i++)
            d->cache[i].prepared = false;
    return rc;
}

/* ---- keyset pagination ---- */

gh_err_t gh_pgs_page(gh_db_t *db, const char *cols, const char *from_where,
                     const char *id_expr, const char *const *args, int nargs,
                     const gh_page_t *page, bool newest_first, gh_pgs_row_fn fn, void *ctx,
                     bool *has_more)
{
    assert(page->limit >= 1 && page->limit <= 1000);
    assert(nargs >= 0 && nargs <= GH_PGS_ARGS_MAX);
    *has_more = false;
    char sql[2048];
    const char *params[GH_PGS_ARGS_MAX + 2];
    for (int i = 0; i < nargs; i++)
        params[i] = args[i];
    PGresult *res;
    gh_err_t rc;
    const char *cursor = page->after_id ? page->after_id : page->before_id;
    gh_pgs_num_t cursor_seq = {{0}}, lo_text, hi_text;

    if (cursor) {
        int n = snprintf(sql, sizeof(sql), "SELECT t.seq %s AND %s = $%d", from_where, id_expr,
                         nargs + 1);
        if (n < 0 || (size_t)n >= sizeof(sql))
            return GH_EINTERNAL;
        params[nargs] = cursor;
        if ((rc = gh_pgs_query_dyn(db, sql, nargs + 1, params, &res)))
            return rc;
        bool found = PQntuples(res) > 0;
        if (found)
            snprintf(cursor_seq.s, sizeof(cursor_seq.s), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (!found)
            return GH_EINVAL;
    }

    /* Scan from the cursor in the direction asked (before_id walks backwards through the
     * list), collecting seqs; then read the rows of that seq range in list order. */
    bool list_asc = !newest_first;
    bool scan_asc = page->before_id ? !list_asc : list_asc;
    char cond[32] = "";
    if (cursor)
        snprintf(cond, sizeof(cond), " AND t.seq %s $%d", scan_asc ? ">" : "<", nargs + 1);
    int n = snprintf(sql, sizeof(sql), "SELECT t.seq %s%s ORDER BY t.seq %s LIMIT %d",
                     from_where, cond, scan_asc ? "ASC" : "DESC", page->limit + 1);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return GH_EINTERNAL;
    params[nargs] = cursor_seq.s;
    if ((rc = gh_pgs_query_dyn(db, sql, nargs + (cursor ? 1 : 0), params, &res)))
        return rc;
    int rows = PQntuples(res);
    if (rows > page->limit) {
        *has_more = true;
        rows = page->limit;
    }
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int i = 0; i < rows; i++) {
        int64_t r = gh_pgs_col_i64(res, i, 0);
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    PQclear(res);
    if (lo > hi) /* an empty page */
        return GH_OK;

    n = snprintf(sql, sizeof(sql), "SELECT %s %s AND t.seq BETWEEN $%d AND $%d ORDER BY t.seq %s",
                 cols, from_where, nargs + 1, nargs + 2, list_asc ? "ASC" : "DESC");
    if (n < 0 || (size_t)n >= sizeof(sql))
        return GH_EINTERNAL;
    params[nargs] = gh_pgs_i64(&lo_text, lo);
    params[nargs + 1] = gh_pgs_i64(&hi_text, hi);
    if ((rc = gh_pgs_query_dyn(db, sql, nargs + 2, params, &res)))
        return rc;
    rows = PQntuples(res);
    for (int i = 0; i < rows; i++)
        fn(ctx, res, i);
    PQclear(res);
    return GH_OK;
}

/* ---- the table of operations ---- */

#define GH_PGS_OP(name) .name = gh_pgs_##name,
const gh_store_ops_t gh_postgres_ops = {
    .backend_name = "postgresql",
    .scheme = "postgresql://",
    .open = gh_pgs_open,
    GH_PGS_OPS_PGSTORE(GH_PGS_OP)
    GH_PGS_OPS_ACCOUNTS(GH_PGS_OP)
    GH_PGS_OPS_ORGS(GH_PGS_OP)
    GH_PGS_OPS_IDENTITY(GH_PGS_OP)
    GH_PGS_OPS_MEMBERS(GH_PGS_OP)
    GH_PGS_OPS_WORKSPACES(GH_PGS_OP)
    GH_PGS_OPS_KEYS(GH_PGS_OP)
    GH_PGS_OPS_OUTBOX(GH_PGS_OP)
    GH_PGS_OPS_BILLING(GH_PGS_OP)
    GH_PGS_OPS_NOTIFY(GH_PGS_OP)
    GH_PGS_OPS_LIMITS(GH_PGS_OP)
    GH_PGS_OPS_ROLLUPS(GH_PGS_OP)
    GH_PGS_OPS_USAGE(GH_PGS_OP)
    GH_PGS_OPS_LEASES(GH_PGS_OP)
    GH_PGS_OPS_CLUSTER(GH_PGS_OP)
    GH_PGS_OPS_RATE(GH_PGS_OP)
};
#undef GH_PGS_OP
