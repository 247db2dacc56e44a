/* PostgreSQL connections: the pool, statements and the transaction helper (pg.h). */
#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mono.h"
#include "store/postgres/pg.h"

#define POOL_MAX 64
#define RECONNECT_MIN_MS 200  /* after a failed connect, the pool waits this long... */
#define RECONNECT_MAX_MS 2000 /* ...doubling up to this, before it tries again */

struct gh_pg_pool {
    gh_pg_options_t opt; /* url and password point at the copies below */
    char *url;
    char *password;
    pthread_mutex_t lock; /* guards busy[] */
    pthread_cond_t freed;
    int size;
    bool busy[POOL_MAX];
    gh_pg_conn_t *slots[POOL_MAX]; /* NULL until first needed */
    /* While PostgreSQL cannot be reached (under `lock`): no connect before retry_at_ms
     * (monotonic), the pause doubling from RECONNECT_MIN_MS; the outage is logged once. */
    int64_t retry_at_ms;
    int retry_ms;
    bool down_logged;
};

void gh_pg_options_defaults(gh_pg_options_t *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->pool_size = 8;
    opt->connect_timeout_s = 5;
    opt->statement_timeout_ms = 30000;
    opt->acquire_timeout_ms = 10000;
    opt->tx_attempts = 8;
}

void gh_pg_describe(const char *url, char *out, size_t size)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    const char *host = "localhost", *port = "5432", *db = "(default)";
    if (opts) {
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (!o->val || !*o->val)
                continue;
            if (!strcmp(o->keyword, "host"))
                host = o->val;
            else if (!strcmp(o->keyword, "port"))
                port = o->val;
            else if (!strcmp(o->keyword, "dbname"))
                db = o->val;
        }
    }
    snprintf(out, size, "%s:%s/%s", host, port, db);
    PQconninfoFree(opts);
    PQfreemem(msg);
}

/* ---- statements ---- */

/* Server notices ("relation already exists, skipping", the shutdown warning) go to the
 * debug log, not to stderr. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    int n = (int)strcspn(message, "\n");
    gh_log_debug("store: PostgreSQL says: %.*s", n, message);
}

/* Makes libpq's multi-line message one line ("...; Is the server running..."), in place:
 * a newline becomes ';' and a tab a space, so the text never grows. */
static void one_line(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\n')
            s[i] = ';';
        else if (s[i] == '\t')
            s[i] = ' ';
}

static void note_ok(gh_pg_conn_t *c)
{
    c->sqlstate[0] = '\0';
    c->message[0] = '\0';
}

/* Records why `res` (possibly NULL) failed, and whether the connection is gone. */
static void note_failure(gh_pg_conn_t *c, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c->conn);
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "08006");
    snprintf(c->message, sizeof(c->message), "%s", msg && *msg ? msg : "connection lost");
    one_line(c->message);
    /* Class 08 is a connection exception; 57P01-57P03 are shutdowns and "cannot connect
     * now". libpq also marks the connection bad when the socket died. */
    if (PQstatus(c->conn) != CONNECTION_OK || !strncmp(c->sqlstate, "08", 2) ||
        !strncmp(c->sqlstate, "57P0", 4))
        c->broken = true;
}

gh_err_t gh_pg_exec(gh_pg_conn_t *c, const char *sql)
{
    PGresult *res = PQexec(c->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        note_ok(c);
        PQclear(res);
        return GH_OK;
    }
    note_failure(c, res);
    PQclear(res);
    return gh_pg_error(c);
}

gh_err_t gh_pg_query(gh_pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                     PGresult **out)
{
    assert(nparams >= 0);
    *out = NULL;
    PGresult *res = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        note_ok(c);
        *out = res;
        return GH_OK;
    }
    note_failure(c, res);
    PQclear(res);
    return gh_pg_error(c);
}

/* Keeps a successful result in `*out` (or frees it when `out` is NULL); records a failure. */
static gh_err_t finish(gh_pg_conn_t *c, PGresult *res, PGresult **out)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        note_ok(c);
        if (out)
            *out = res;
        else
            PQclear(res);
        return GH_OK;
    }
    note_failure(c, res);
    PQclear(res);
    return gh_pg_error(c);
}

gh_err_t gh_pg_prepare(gh_pg_conn_t *c, const char *name, const char *sql)
{
    return finish(c, PQprepare(c->conn, name, sql, 0, NULL), NULL);
}

gh_err_t gh_pg_query_prepared(gh_pg_conn_t *c, const char *name, int nparams,
                              const char *const *params, PGresult **out)
{
    assert(nparams >= 0);
    *out = NULL;
    return finish(c, PQexecPrepared(c->conn, name, nparams, params, NULL, NULL, 0), out);
}

gh_err_t gh_pg_query_guarded(gh_pg_conn_t *c, const char *name, const char *sql, int nparams,
                             const char *const *params, PGresult **out, bool *guarded)
{
    assert(nparams >= 0);
    *out = NULL;
    *guarded = false;
    PGconn *conn = c->conn;
    bool sent =
        PQenterPipelineMode(conn) &&
        PQsendQueryParams(conn, "SAVEPOINT gh_stmt", 0, NULL, NULL, NULL, NULL, 0) &&
        (name ? PQsendQueryPrepared(conn, name, nparams, params, NULL, NULL, 0)
              : PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)) &&
        PQsendQueryParams(conn, "RELEASE SAVEPOINT gh_stmt", 0, NULL, NULL, NULL, NULL, 0) &&
        PQpipelineSync(conn);
    /* Each of the three answers with its result (PGRES_PIPELINE_ABORTED for those after a
     * failure) and a NULL; then the sync's PGRES_PIPELINE_SYNC. */
    PGresult *r[3] = {NULL, NULL, NULL};
    bool whole = sent;
    for (int i = 0; i < 3 && whole; i++) {
        r[i] = PQgetResult(conn);
        PGresult *extra;
        while (r[i] && (extra = PQgetResult(conn)) != NULL)
            PQclear(extra);
        whole = r[i] != NULL;
    }
    PGresult *sync = whole ? PQgetResult(conn) : NULL;
    whole = whole && sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(conn))
        whole = false;
    gh_err_t rc;
    if (!whole) {
        /* The connection failed in the middle (or libpq refused a step). */
        PGresult *why = NULL;
        for (int i = 0; i < 3; i++)
            if (r[i] && PQresultStatus(r[i]) == PGRES_FATAL_ERROR && !why)
                why = r[i];
        note_failure(c, why);
        c->broken = true; /* not a state to go on from: the connection is dropped */
        rc = gh_pg_error(c);
    } else if (PQresultStatus(r[0]) != PGRES_COMMAND_OK) {
        note_failure(c, r[0]);
        rc = gh_pg_error(c);
    } else {
        *guarded = true;
        ExecStatusType st = PQresultStatus(r[1]);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            note_failure(c, r[1]);
            rc = gh_pg_error(c);
        } else if (PQresultStatus(r[2]) != PGRES_COMMAND_OK) {
            note_failure(c, r[2]);
            rc = gh_pg_error(c);
        } else {
            note_ok(c);
            *out = r[1];
            r[1] = NULL;
            rc = GH_OK;
        }
    }
    for (int i = 0; i < 3; i++)
        PQclear(r[i]);
    return rc;
}

gh_err_t gh_pg_query_prepared_binary(gh_pg_conn_t *c, const char *name, int nparams,
                                     const char *const *params, const int *lengths,
                                     PGresult **out)
{
    enum { MAX_PARAMS = 64 };
    assert(nparams >= 0 && nparams <= MAX_PARAMS);
    int formats[MAX_PARAMS];
    for (int i = 0; i < nparams; i++)
        formats[i] = 1;
    *out = NULL;
    return finish(c, PQexecPrepared(c->conn, name, nparams, params, lengths, formats, 0), out);
}

gh_err_t gh_pg_copy_in(gh_pg_conn_t *c, const char *sql, const char *data, size_t len,
                       int64_t *rows)
{
    PGresult *res = PQexec(c->conn, sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        /* Not started: the statement was refused (or the connection is gone). */
        note_failure(c, res);
        PQclear(res);
        return gh_pg_error(c) ? gh_pg_error(c) : GH_ESTORE;
    }
    PQclear(res);
    /* Blocking connection: each call returns once libpq has queued or sent the bytes. A
     * failure to send is read back below, as the COPY's result. */
    enum { CHUNK = 1 << 20 };
    bool sent = true;
    for (size_t off = 0; off < len && sent; off += CHUNK) {
        size_t part = len - off < CHUNK ? len - off : CHUNK;
        sent = PQputCopyData(c->conn, data + off, (int)part) == 1;
    }
    if (PQputCopyEnd(c->conn, sent ? NULL : "the client could not send the data") != 1)
        sent = false;
    /* Every result up to the end of the COPY: one, then NULL. */
    gh_err_t rc = GH_OK;
    bool done = false;
    while ((res = PQgetResult(c->conn))) {
        if (!done && PQresultStatus(res) == PGRES_COMMAND_OK) {
            note_ok(c);
            const char *tuples = PQcmdTuples(res);
            if (rows)
                *rows = tuples && *tuples ? strtoll(tuples, NULL, 10) : 0;
        } else if (!rc) {
            note_failure(c, res);
            rc = gh_pg_error(c) ? gh_pg_error(c) : GH_ESTORE;
        }
        done = true;
        PQclear(res);
    }
    if (!done) {
        note_failure(c, NULL);
        rc = gh_pg_error(c) ? gh_pg_error(c) : GH_ESTORE;
    }
    return rc;
}

gh_err_t gh_pg_error(const gh_pg_conn_t *c)
{
    if (!c->sqlstate[0])
        return GH_OK;
    if (c->broken || !strcmp(c->sqlstate, "40001") || !strcmp(c->sqlstate, "40P01") ||
        !strcmp(c->sqlstate, "57014") /* statement timeout */ ||
        !strcmp(c->sqlstate, "55P03") /* lock timeout */)
        return GH_EUNAVAIL;
    if (!strncmp(c->sqlstate, "23", 2))
        return GH_ECONFLICT;
    return GH_ESTORE;
}

bool gh_pg_retryable(const gh_pg_conn_t *c)
{
    return c->broken || !strcmp(c->sqlstate, "40001") || !strcmp(c->sqlstate, "40P01");
}

/* ---- connections ---- */

/* Opens c->conn; GH_EUNAVAIL (server unreachable) or GH_EINVAL (a URL libpq refuses). */
static gh_err_t open_conn(gh_pg_conn_t *c, const gh_pg_options_t *opt, char *err,
                          size_t err_size)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", opt->connect_timeout_s);
    /* Later keywords win: the URL comes last, so what it says overrides these defaults. */
    const char *keys[] = {"connect_timeout", "application_name", "password", "dbname", NULL};
    const char *vals[] = {timeout, "gatehouse", opt->password, opt->url, NULL};
    if (!opt->password) {
        keys[2] = "dbname";
        vals[2] = opt->url;
        keys[3] = vals[3] = NULL;
    }
    if (c->conn)
        PQfinish(c->conn);
    c->broken = true;
    c->conn = PQconnectdbParams(keys, vals, 1);
    char where[300];
    gh_pg_describe(opt->url, where, sizeof(where));
    if (!c->conn) {
        snprintf(err, err_size, "cannot connect to PostgreSQL at %s: out of memory", where);
        return GH_ENOMEM;
    }
    if (PQstatus(c->conn) != CONNECTION_OK) {
        const char *m = PQerrorMessage(c->conn);
        snprintf(err, err_size, "cannot connect to PostgreSQL at %s: %s", where,
                 m && *m ? m : "unknown error");
        one_line(err);
        return strstr(m, "invalid") ? GH_EINVAL : GH_EUNAVAIL;
    }
    PQsetNoticeProcessor(c->conn, on_notice, NULL);
    char sql[128];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d; SET lock_timeout = %d",
             opt->statement_timeout_ms, opt->statement_timeout_ms);
    c->broken = false;
    if (gh_pg_exec(c, sql)) {
        snprintf(err, err_size, "cannot configure the PostgreSQL session at %s: %s", where,
                 c->message);
        c->broken = true;
        return GH_EUNAVAIL;
    }
    return GH_OK;
}

gh_err_t gh_pg_connect(const gh_pg_options_t *opt, gh_pg_conn_t **out, char *err,
                       size_t err_size)
{
    gh_pg_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return GH_ENOMEM;
    gh_err_t rc = open_conn(c, opt, err, err_size);
    if (rc) {
        gh_pg_disconnect(c);
        return rc;
    }
    *out = c;
    return GH_OK;
}

void gh_pg_disconnect(gh_pg_conn_t *c)
{
    if (!c)
        return;
    if (c->conn)
        PQfinish(c->conn);
    free(c);
}

/* ---- the pool ---- */

gh_err_t gh_pg_pool_new(gh_pg_pool_t **out, const gh_pg_options_t *opt, char *err,
                        size_t err_size)
{
    assert(opt->url);
    if (opt->pool_size < 1 || opt->pool_size > POOL_MAX || opt->tx_attempts < 1) {
        snprintf(err, err_size, "the PostgreSQL pool size must be 1 to %d", POOL_MAX);
        return GH_EINVAL;
    }
    gh_pg_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return GH_ENOMEM;
    p->opt = *opt;
    p->url = strdup(opt->url);
    p->password = opt->password ? strdup(opt->password) : NULL;
    if (!p->url || (opt->password && !p->password)) {
        free(p->url);
        free(p->password);
        free(p);
        return GH_ENOMEM;
    }
    p->opt.url = p->url;
    p->opt.password = p->password;
    p->size = opt->pool_size;
    pthread_mutex_init(&p->lock, NULL);
    gh_mono_cond_init(&p->freed);
    /* One connection now, so a wrong URL or a server that is down shows at start. */
    gh_err_t rc = gh_pg_connect(&p->opt, &p->slots[0], err, err_size);
    if (rc) {
        gh_pg_pool_free(p);
        return rc;
    }
    *out = p;
    return GH_OK;
}

void gh_pg_pool_free(gh_pg_pool_t *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->size; i++) {
        assert(!pool->busy[i]);
        gh_pg_disconnect(pool->slots[i]);
    }
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->lock);
    if (pool->password)
        sodium_memzero(pool->password, strlen(pool->password));
    free(pool->password);
    free(pool->url);
    free(pool);
}

gh_err_t gh_pg_acquire(gh_pg_pool_t *pool, gh_pg_conn_t **out)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += pool->opt.acquire_timeout_ms / 1000;
    until.tv_nsec += (long)(pool->opt.acquire_timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&pool->lock);
    int slot = -1;
    for (;;) {
        /* Prefer a slot with an open connection, so the pool grows only under load. */
        for (int i = 0; i < pool->size && slot < 0; i++)
            if (!pool->busy[i] && pool->slots[i])
                slot = i;
        for (int i = 0; i < pool->size && slot < 0; i++)
            if (!pool->busy[i])
                slot = i;
        if (slot >= 0)
            break;
        if (pthread_cond_timedwait(&pool->freed, &pool->lock, &until)) {
            pthread_mutex_unlock(&pool->lock);
            gh_log_warn("store: no PostgreSQL connection came free within %d ms",
                        pool->opt.acquire_timeout_ms);
            return GH_EUNAVAIL;
        }
    }
    gh_pg_conn_t *c = pool->slots[slot];
    bool must_connect = !c || c->broken || PQstatus(c->conn) != CONNECTION_OK;
    if (must_connect && pool->retry_ms > 0 && gh_mono_ms() < pool->retry_at_ms) {
        /* A connect failed a moment ago: answer at once rather than try again. */
        pthread_mutex_unlock(&pool->lock);
        return GH_EUNAVAIL;
    }
    pool->busy[slot] = true;
    pthread_mutex_unlock(&pool->lock);

    gh_err_t rc = GH_OK;
    char err[512];
    if (!c) {
        rc = gh_pg_connect(&pool->opt, &c, err, sizeof(err));
        if (!rc) {
            pthread_mutex_lock(&pool->lock); /* gh_pg_release scans slots[] under it */
            pool->slots[slot] = c;
            pthread_mutex_unlock(&pool->lock);
        }
    } else if (must_connect) {
        rc = open_conn(c, &pool->opt, err, sizeof(err));
    }
    if (rc) {
        pthread_mutex_lock(&pool->lock);
        pool->busy[slot] = false;
        int next = pool->retry_ms == 0 ? RECONNECT_MIN_MS : pool->retry_ms * 2;
        pool->retry_ms = next > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : next;
        pool->retry_at_ms = gh_mono_ms() + pool->retry_ms;
        bool logged = pool->down_logged;
        pool->down_logged = true;
        pthread_cond_signal(&pool->freed);
        pthread_mutex_unlock(&pool->lock);
        if (!logged)
            gh_log_warn("store: %s; retrying", err);
        return rc == GH_ENOMEM ? rc : GH_EUNAVAIL;
    }
    if (must_connect) {
        pthread_mutex_lock(&pool->lock);
        bool was_down = pool->down_logged;
        pool->retry_ms = 0;
        pool->down_logged = false;
        pthread_mutex_unlock(&pool->lock);
        if (was_down)
            gh_log_info("store: reconnected to PostgreSQL");
    }
    *out = c;
    return GH_OK;
}

void gh_pg_release(gh_pg_pool_t *pool, gh_pg_conn_t *c)
{
    PGTransactionStatusType ts = PQtransactionStatus(c->conn);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        if (gh_pg_exec(c, "ROLLBACK"))
            c->broken = true;
    } else if (ts != PQTRANS_IDLE) {
        c->broken = true; /* a statement still running, or a dead connection */
    }
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->size; i++) {
        if (pool->slots[i] == c) {
            assert(pool->busy[i]);
            pool->busy[i] = false;
            break;
        }
    }
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}

/* ---- transactions ---- */

static void backoff(int attempt)
{
    /* A few milliseconds, growing and randomised, so two transactions that just collided do
     * not collide again in lockstep. */
    uint32_t cap_ms = 2u << (attempt < 6 ? attempt : 6);
    uint32_t ms = 1 + randombytes_uniform(cap_ms);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

gh_err_t gh_pg_tx(gh_pg_pool_t *pool, gh_pg_isolation_t isolation, gh_pg_tx_fn fn, void *ctx,
                  int *attempts)
{
    static const char *const begin[] = {
        [GH_PG_READ_COMMITTED] = "BEGIN ISOLATION LEVEL READ COMMITTED",
        [GH_PG_REPEATABLE_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ",
        [GH_PG_SERIALIZABLE] = "BEGIN ISOLATION LEVEL SERIALIZABLE",
    };
    gh_err_t rc = GH_EUNAVAIL;
    int attempt = 0;
    while (attempt < pool->opt.tx_attempts) {
        attempt++;
        gh_pg_conn_t *c;
        rc = gh_pg_acquire(pool, &c);
        if (rc)
            break; /* unreachable: waiting here would only hold the caller */
        rc = gh_pg_exec(c, begin[isolation]);
        if (!rc)
            rc = fn(c, ctx);
        if (rc) {
            bool again = gh_pg_retryable(c);
            if (again)
                gh_log_debug("store: transaction attempt %d failed (%s: %s); retrying",
                             attempt, c->sqlstate, c->message);
            gh_pg_release(pool, c); /* rolls back */
            if (!again)
                break;
            backoff(attempt);
            continue;
        }
        if (PQtransactionStatus(c->conn) == PQTRANS_INERROR) {
            /* fn ignored a failed statement: COMMIT would only roll back, silently. */
            rc = c->sqlstate[0] ? gh_pg_error(c) : GH_ESTORE;
            bool again = gh_pg_retryable(c);
            gh_pg_release(pool, c);
            if (!again)
                break;
            backoff(attempt);
            continue;
        }
        rc = gh_pg_exec(c, "COMMIT");
        if (!rc) {
            gh_pg_release(pool, c);
            break;
        }
        /* A serializable transaction may fail at COMMIT: nothing was committed, run it again.
         * A connection lost during COMMIT leaves the outcome unknown: say so. */
        bool again = !c->broken && gh_pg_retryable(c);
        if (c->broken)
            gh_log_warn("store: the connection to PostgreSQL was lost during COMMIT; the "
                        "transaction's outcome is unknown");
        gh_pg_release(pool, c);
        if (!again) {
            rc = GH_EUNAVAIL;
            break;
        }
        backoff(attempt);
    }
    if (attempts)
        *attempts = attempt;
    return rc;
}
