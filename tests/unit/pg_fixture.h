/* A world per test for the unit tests of the PostgreSQL store's members, workspaces, keys and
 * outbox (tests/unit/test_pg_<file>.c), on top of pg_unit.h's throwaway server: a database
 * of its own opened as a store with the backend's table of operations (which migrates it),
 * an organization and three accounts in it, and a plain connection for setting up rows and
 * looking at them directly.
 *
 * The same tests then run on SQLite (pgf_run_both): the port's promise is the SQLite
 * backend's results, error codes and order, and the one set of assertions passing on both is
 * what shows it. The few lines of setup SQL are written once: on SQLite the direct
 * connection gets to_timestamp(x) (x itself) and now() (a fixed time), so the PostgreSQL
 * spelling works on both. Everything here is static: each test binary includes it once. */
#ifndef GH_TESTS_PG_FIXTURE_H
#define GH_TESTS_PG_FIXTURE_H

#include "pg_unit.h"

#include <sqlite3.h>

static bool pgf_on_sqlite; /* which backend the tests run on now */

/* pg_unit.h's own store opener goes unused here (its helpers are static, not inline). */
static gh_store_t *(*const pgf_unused_opener)(void) __attribute__((unused)) = pg_unit_store;

/* One test's world: its store, a connection of that store, a direct connection (one of
 * `raw` or `sq`, by backend) and, on SQLite, the path of its file. */
typedef struct pgf {
    gh_store_t *store;
    gh_db_t *db;
    gh_pg_conn_t *raw;
    sqlite3 *sq;
    char path[64];
} pgf_t;

static gh_pg_conn_t *pgf_connect(const char *url)
{
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = url;
    gh_pg_conn_t *c = NULL;
    char err[512] = "";
    gh_err_t rc = gh_pg_connect(&opt, &c, err, sizeof(err));
    if (rc)
        fprintf(stderr, "pg fixture: connect: %s\n", err);
    assert_int_equal(rc, GH_OK);
    return c;
}

/* Runs SQL on the direct connection; the test fails when it does. */
static inline void pgf_sql(pgf_t *f, const char *sql)
{
    if (f->sq) {
        char *msg = NULL;
        int sqrc = sqlite3_exec(f->sq, sql, NULL, NULL, &msg);
        if (sqrc != SQLITE_OK)
            fprintf(stderr, "sqlite fixture: %s: %s\n", sql, msg ? msg : "");
        sqlite3_free(msg);
        assert_int_equal(sqrc, SQLITE_OK);
        return;
    }
    gh_err_t rc = gh_pg_exec(f->raw, sql);
    if (rc)
        fprintf(stderr, "pg fixture: %s: %s\n", sql, f->raw->message);
    assert_int_equal(rc, GH_OK);
}

/* The first column of the first row of `sql`, as text into `out`. */
static inline void pgf_value(pgf_t *f, const char *sql, char *out, size_t size)
{
    if (f->sq) {
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(f->sq, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, size, "%s", t ? (const char *)t : "NULL");
        sqlite3_finalize(st);
        return;
    }
    PGresult *res;
    gh_err_t rc = gh_pg_query(f->raw, sql, 0, NULL, &res);
    if (rc)
        fprintf(stderr, "pg fixture: %s: %s\n", sql, f->raw->message);
    assert_int_equal(rc, GH_OK);
    assert_int_equal(PQntuples(res), 1);
    snprintf(out, size, "%s", PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0));
    PQclear(res);
}

static inline long long pgf_num(pgf_t *f, const char *sql)
{
    char v[64];
    pgf_value(f, sql, v, sizeof(v));
    return strtoll(v, NULL, 10);
}

/* A new database, migrated by opening it as a store, with an organization "org_1" and
 * accounts "acc_1".."acc_3" (a@x.test, b@x.test, c@x.test; only acc_1 has a name). */
/* PostgreSQL's spelling of times, on SQLite's direct connection. */
static void pgf_sq_identity(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sqlite3_result_int64(ctx, sqlite3_value_int64(argv[0]));
}

static void pgf_sq_now(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    sqlite3_result_int64(ctx, 1700000050);
}

static void pgf_open_sqlite(pgf_t *f)
{
    f->store = pg_unit_sqlite_store(f->path);
    assert_int_equal(sqlite3_open(f->path, &f->sq), SQLITE_OK);
    sqlite3_busy_timeout(f->sq, 10000);
    sqlite3_create_function(f->sq, "to_timestamp", 1, SQLITE_UTF8, NULL, pgf_sq_identity, NULL,
                            NULL);
    sqlite3_create_function(f->sq, "now", 0, SQLITE_UTF8, NULL, pgf_sq_now, NULL, NULL);
}

static void pgf_open_postgres(pgf_t *f)
{
    char url[300], err[512] = "";
    pg_unit_fresh_db(url, sizeof(url));
    gh_err_t rc = gh_postgres_ops.open(&f->store, url, err, sizeof(err));
    if (rc)
        fprintf(stderr, "pg fixture: open: %s\n", err);
    assert_int_equal(rc, GH_OK);
    f->raw = pgf_connect(url);
}

static int pgf_setup(void **state)
{
    pgf_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    if (pgf_on_sqlite)
        pgf_open_sqlite(f);
    else
        pgf_open_postgres(f);
    f->db = gh_store_db(f->store);
    assert_non_null(f->db);
    pgf_sql(f, "INSERT INTO organizations (id, name, created_at) VALUES "
               "('org_1', 'Acme', to_timestamp(1700000000))");
    pgf_sql(f, "INSERT INTO accounts (id, email, full_name, created_at) VALUES "
               "('acc_1', 'a@x.test', 'Ann', to_timestamp(1700000000)), "
               "('acc_2', 'b@x.test', NULL, to_timestamp(1700000000)), "
               "('acc_3', 'c@x.test', NULL, to_timestamp(1700000000))");
    *state = f;
    return 0;
}

static int pgf_teardown(void **state)
{
    pgf_t *f = *state;
    if (f->sq) {
        sqlite3_close(f->sq);
        pg_unit_sqlite_close(f->store, f->path);
    } else {
        gh_pg_disconnect(f->raw);
        gh_store_close(f->store);
    }
    free(f);
    return 0;
}

/* Runs `tests` on PostgreSQL, then on SQLite; the number of failures. */
#define pgf_run_both(tests)                                                                   \
    (pgf_on_sqlite = false, cmocka_run_group_tests_name("postgresql", (tests),              \
                                                         pg_unit_start, pg_unit_stop) + \
     (pgf_on_sqlite = true, cmocka_run_group_tests_name("sqlite", (tests), NULL, NULL)))

/* Collects the ids a list callback sees, in order, joined by ",". */
typedef struct pgf_ids {
    char s[1024];
} pgf_ids_t;

static inline void pgf_ids_add(pgf_ids_t *ids, const char *id)
{
    size_t n = strlen(ids->s);
    snprintf(ids->s + n, sizeof(ids->s) - n, "%s%s", n ? "," : "", id);
}

#endif
