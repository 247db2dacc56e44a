/* PostgreSQL connections for the store: a bounded pool and a transaction helper.
 *
 * The pool holds at most `size` connections, opened lazily and kept for reuse. A caller that
 * finds every connection busy waits up to `acquire_timeout_ms`, then gets GH_EUNAVAIL: the
 * control plane answers 503 rather than queueing without bound. Each connection is opened
 * with a connect timeout and gets `statement_timeout` (and `lock_timeout`) for its session,
 * so no statement can hold a thread for ever.
 *
 * A connection that PostgreSQL dropped (a restart, a failover, a network cut) is noticed on
 * its next use and opened again; while that fails, the pool tries at most every 200 ms,
 * backing off to 2 s, and answers GH_EUNAVAIL at once in between (logged once an outage): gh_pg_tx re-runs a transaction whose connection died before
 * COMMIT was sent, and re-runs a transaction that failed with a serialization failure
 * (40001) or a deadlock (40P01), with a short randomised backoff. Those errors never reach
 * the caller unless every attempt failed.
 *
 * Passwords: the URL never carries one (the configuration refuses it); `password` comes from
 * the environment variable [store] password_env names, or libpq finds it itself (PGPASSWORD,
 * ~/.pgpass). Neither the URL nor the password is ever logged; messages name the host and
 * database only. */
#ifndef GH_STORE_POSTGRES_PG_H
#define GH_STORE_POSTGRES_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

typedef struct gh_pg_options {
    const char *url;      /* a libpq URI, postgresql://user@host:port/db?... */
    const char *password; /* NULL: libpq's own sources */
    int pool_size;        /* connections at most; 1 or more */
    int connect_timeout_s;
    int statement_timeout_ms; /* 0: none */
    int acquire_timeout_ms;   /* wait for a free connection at most this long */
    int tx_attempts;          /* how often gh_pg_tx tries a transaction; 1 or more */
} gh_pg_options_t;

/* Sensible values for everything but url and password. */
void gh_pg_options_defaults(gh_pg_options_t *opt);

/* One connection, with what its last statement said. Owned by the pool (or by whoever
 * called gh_pg_connect). */
typedef struct gh_pg_conn {
    PGconn *conn;
    char sqlstate[6]; /* of the last failed statement; "" after a success */
    char message[256]; /* its primary message, for logs and tests */
    bool broken;       /* the connection was lost: reopen before the next use */
} gh_pg_conn_t;

typedef struct gh_pg_pool gh_pg_pool_t;

/* Creates a pool. Opens one connection at once, so a wrong URL or an unreachable server is
 * reported here (GH_EUNAVAIL, or GH_EINVAL for a URL libpq cannot parse) with a message
 * naming host and database. `opt`'s strings are copied. */
gh_err_t gh_pg_pool_new(gh_pg_pool_t **out, const gh_pg_options_t *opt, char *err,
                        size_t err_size);

/* Closes every connection; no connection may be acquired. NULL is fine. */
void gh_pg_pool_free(gh_pg_pool_t *pool);

/* A working connection for the caller's exclusive use, or GH_EUNAVAIL when none came free
 * within acquire_timeout_ms or PostgreSQL cannot be reached. Give it back with
 * gh_pg_release. */
gh_err_t gh_pg_acquire(gh_pg_pool_t *pool, gh_pg_conn_t **out);

/* Returns a connection to the pool. One left inside a transaction is rolled back first. */
void gh_pg_release(gh_pg_pool_t *pool, gh_pg_conn_t *c);

/* Opens a connection outside any pool (the migrations runner, tests). Free it with
 * gh_pg_disconnect. */
gh_err_t gh_pg_connect(const gh_pg_options_t *opt, gh_pg_conn_t **out, char *err,
                       size_t err_size);
void gh_pg_disconnect(gh_pg_conn_t *c);

/* Runs `sql` (one or more statements, no parameters) and discards the rows. */
gh_err_t gh_pg_exec(gh_pg_conn_t *c, const char *sql);

/* Runs `sql` with text parameters ($1..$n; NULL is SQL NULL). On GH_OK `*res` holds the
 * result (rows or none), which the caller frees with PQclear. On an error nothing is kept. */
gh_err_t gh_pg_query(gh_pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                     PGresult **res);

/* Prepares `sql` as the named statement `name` on `c` (parameter types inferred). */
gh_err_t gh_pg_prepare(gh_pg_conn_t *c, const char *name, const char *sql);

/* Runs the prepared statement `name` with text parameters, as gh_pg_query runs SQL. */
gh_err_t gh_pg_query_prepared(gh_pg_conn_t *c, const char *name, int nparams,
                              const char *const *params, PGresult **res);

/* Runs a statement under a savepoint, `SAVEPOINT gh_stmt`, the statement, `RELEASE SAVEPOINT
 * gh_stmt`, in one round trip (libpq's pipeline mode) instead of three: the prepared
 * statement `name` when not NULL, else `sql`, with text parameters. Inside a transaction only.
 * On GH_OK `*res` holds the statement's result. When the statement fails, `*guarded` says
 * whether the savepoint was taken: the transaction is then in error until the caller rolls
 * back to it (ROLLBACK TO SAVEPOINT gh_stmt), as after the three separate commands. */
gh_err_t gh_pg_query_guarded(gh_pg_conn_t *c, const char *name, const char *sql, int nparams,
                             const char *const *params, PGresult **res, bool *guarded);

/* As gh_pg_query_prepared with every parameter in binary format: `params[i]` points to
 * `lengths[i]` bytes in the type's binary send format (network byte order), NULL is SQL
 * NULL. At most 64 parameters. */
gh_err_t gh_pg_query_prepared_binary(gh_pg_conn_t *c, const char *name, int nparams,
                                     const char *const *params, const int *lengths,
                                     PGresult **res);

/* Runs `sql`, a `COPY ... FROM STDIN`, sending it the `len` bytes of `data` (in the format
 * the statement names); `*rows` (when not NULL) gets the rows copied. The COPY fails as a
 * whole or copies everything. */
gh_err_t gh_pg_copy_in(gh_pg_conn_t *c, const char *sql, const char *data, size_t len,
                       int64_t *rows);

/* The error a failed statement maps to: GH_ECONFLICT for a constraint violation (23xxx),
 * GH_EUNAVAIL for a lost connection, a shutdown, a timeout or a retryable conflict
 * (40001, 40P01), GH_ESTORE for anything else. */
gh_err_t gh_pg_error(const gh_pg_conn_t *c);

/* Whether the last failure is worth running the whole transaction again: a serialization
 * failure, a deadlock, or a connection lost before COMMIT. */
bool gh_pg_retryable(const gh_pg_conn_t *c);

typedef enum {
    GH_PG_READ_COMMITTED,
    GH_PG_REPEATABLE_READ,
    GH_PG_SERIALIZABLE,
} gh_pg_isolation_t;

/* The body of a transaction: runs statements on `c` and returns GH_OK to commit. It may run
 * more than once (after a retryable failure), so it must not have effects outside the
 * database, and must start from its inputs each time. */
typedef gh_err_t (*gh_pg_tx_fn)(gh_pg_conn_t *c, void *ctx);

/* Runs `fn` in one transaction on a pooled connection: BEGIN at `isolation`, fn, COMMIT.
 * Retries the whole transaction (up to tx_attempts) after a serialization failure, a
 * deadlock, or a connection that died before COMMIT was sent. A connection lost while COMMIT
 * was on its way gives GH_EUNAVAIL, since the outcome is unknown. `attempts`, when not NULL,
 * receives how many runs it took. */
gh_err_t gh_pg_tx(gh_pg_pool_t *pool, gh_pg_isolation_t isolation, gh_pg_tx_fn fn, void *ctx,
                  int *attempts);

/* "host:port/db" of a URL, for messages (never the user's password). */
void gh_pg_describe(const char *url, char *out, size_t size);

#endif
