/* A throwaway PostgreSQL for the unit tests of the PostgreSQL store's port files
 * (tests/unit/test_pg_<file>.c): scripts/pg-test.sh starts one server per test binary in a
 * temporary directory (and stops it when the binary exits, however it ends); every test gets
 * a database of its own, opened as a store with the backend's table of operations (which
 * migrates it), plus a plain connection for setting up rows and looking at them directly.
 *
 * The same tests then run on SQLite (pgf_run_both): the port's promise is the SQLite
 * backend's results, error codes and order, and the one set of assertions passing on both is
 * what shows it. The few lines of setup SQL are written once: on SQLite the direct
 * connection gets to_timestamp(x) (x itself) and now() (a fixed time), so the PostgreSQL
 * spelling works on both. Everything here is static: each test binary includes it once. */
#ifndef GH_TESTS_PG_FIXTURE_H
#define GH_TESTS_PG_FIXTURE_H

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/crypto.h"
#include "store/backend.h"
#include "store/postgres/pg.h"
#include "store/store.h"

static char pgf_dir[64];
static char pgf_server_url[256]; /* the maintenance database "postgres" */
static int pgf_counter;
static bool pgf_on_sqlite; /* which backend the tests run on now */

/* One test's world: its store, a connection of that store, a direct connection (one of
 * `raw` or `sq`, by backend) and, on SQLite, the directory of its file. */
typedef struct pgf {
    gh_store_t *store;
    gh_db_t *db;
    gh_pg_conn_t *raw;
    sqlite3 *sq;
    char dir[64];
} pgf_t;

static const char *pgf_script(void)
{
    const char *s = getenv("GH_PG_TEST_SCRIPT");
    return s && *s ? s : "scripts/pg-test.sh";
}

static int pgf_group_setup(void **state)
{
    (void)state;
    if (gh_crypto_init())
        return -1;
    snprintf(pgf_dir, sizeof(pgf_dir), "/tmp/gh-unit-pgf-XXXXXX");
    if (!mkdtemp(pgf_dir))
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s start '%s' %d", pgf_script(), pgf_dir, (int)getpid());
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[256] = "";
    if (!fgets(line, sizeof(line), p))
        line[0] = '\0';
    int rc = pclose(p);
    line[strcspn(line, "\n")] = '\0';
    if (rc != 0 || strncmp(line, "postgresql://", 13)) {
        fprintf(stderr, "pg fixture: %s failed (%d): %s\n", cmd, rc, line);
        return -1;
    }
    snprintf(pgf_server_url, sizeof(pgf_server_url), "%s", line);
    return 0;
}

static int pgf_group_teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s stop '%s' && rm -rf '%s'", pgf_script(), pgf_dir, pgf_dir);
    return system(cmd) == 0 ? 0 : -1;
}

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
    snprintf(f->dir, sizeof(f->dir), "/tmp/gh-unit-sqf-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128], err[512] = "";
    snprintf(path, sizeof(path), "%s/gatehouse.db", f->dir);
    gh_err_t rc = gh_sqlite_ops.open(&f->store, path, err, sizeof(err));
    if (rc)
        fprintf(stderr, "sqlite fixture: open: %s\n", err);
    assert_int_equal(rc, GH_OK);
    assert_int_equal(sqlite3_open(path, &f->sq), SQLITE_OK);
    sqlite3_busy_timeout(f->sq, 10000);
    sqlite3_create_function(f->sq, "to_timestamp", 1, SQLITE_UTF8, NULL, pgf_sq_identity, NULL,
                            NULL);
    sqlite3_create_function(f->sq, "now", 0, SQLITE_UTF8, NULL, pgf_sq_now, NULL, NULL);
}

static void pgf_open_postgres(pgf_t *f)
{
    char name[32], sql[64], url[320];
    snprintf(name, sizeof(name), "f%d_%d", (int)getpid(), ++pgf_counter);
    gh_pg_conn_t *c = pgf_connect(pgf_server_url);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    assert_int_equal(gh_pg_exec(c, sql), GH_OK);
    gh_pg_disconnect(c);
    const char *slash = strrchr(pgf_server_url, '/');
    assert_non_null(slash);
    snprintf(url, sizeof(url), "%.*s/%s", (int)(slash - pgf_server_url), pgf_server_url, name);

    char err[512] = "";
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
    if (f->raw)
        gh_pg_disconnect(f->raw);
    if (f->sq)
        sqlite3_close(f->sq);
    gh_store_close(f->store);
    if (f->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
    }
    free(f);
    return 0;
}

/* Runs `tests` on PostgreSQL, then on SQLite; the number of failures. */
#define pgf_run_both(tests)                                                                   \
    (pgf_on_sqlite = false, cmocka_run_group_tests_name("postgresql", (tests),              \
                                                         pgf_group_setup, pgf_group_teardown) + \
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
