/* A throwaway PostgreSQL for the PostgreSQL store's unit tests (tests/unit/test_pg_*.c):
 * scripts/pg-test.sh starts Debian's PostgreSQL 15 in a temporary directory, owned by this
 * test binary's process (a watcher stops it when the binary exits, however it ends), and
 * every test gets a database of its own. Header-only: each test binary includes it once.
 *
 *   group setup:    pg_unit_start()      group teardown: pg_unit_stop()
 *   in a test:      gh_store_t *s = pg_unit_store();   ... gh_store_close(s);
 *
 * pg_unit_sqlite_store() opens a SQLite store in a temporary file, so a test can run the
 * same assertions on both backends (the port must give the same results). */
#ifndef GH_TESTS_PG_UNIT_H
#define GH_TESTS_PG_UNIT_H

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "store/backend.h"
#include "store/postgres/pg.h"
#include "store/store.h"

static char pg_unit_dir[64];
static char pg_unit_url[256]; /* the maintenance database "postgres" */
static int pg_unit_counter;

/* Starts (or, with the same directory, restarts on the same port) the server. */
static int pg_unit_server_start(void)
{
    const char *script = getenv("GH_PG_TEST_SCRIPT");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s start '%s' %d",
             script && *script ? script : "scripts/pg-test.sh", pg_unit_dir, (int)getpid());
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[256] = "";
    if (!fgets(line, sizeof(line), p))
        line[0] = '\0';
    int rc = pclose(p);
    line[strcspn(line, "\n")] = '\0';
    if (rc != 0 || strncmp(line, "postgresql://", 13)) {
        fprintf(stderr, "pg_unit: %s failed (%d): %s\n", cmd, rc, line);
        return -1;
    }
    snprintf(pg_unit_url, sizeof(pg_unit_url), "%s", line);
    return 0;
}

static int pg_unit_server_stop(void)
{
    const char *script = getenv("GH_PG_TEST_SCRIPT");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s stop '%s'", script && *script ? script : "scripts/pg-test.sh",
             pg_unit_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int pg_unit_start(void **state)
{
    (void)state;
    if (gh_crypto_init())
        return -1;
    snprintf(pg_unit_dir, sizeof(pg_unit_dir), "/tmp/gh-unit-pg-XXXXXX");
    if (!mkdtemp(pg_unit_dir))
        return -1;
    return pg_unit_server_start();
}

static int pg_unit_stop(void **state)
{
    (void)state;
    int rc = pg_unit_server_stop();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg_unit_dir);
    return system(cmd) == 0 && rc == 0 ? 0 : -1;
}

/* A new, empty database; its URL in `url`. */
static void pg_unit_fresh_db(char *url, size_t size)
{
    char name[32];
    snprintf(name, sizeof(name), "t%d_%d", (int)getpid(), ++pg_unit_counter);
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = pg_unit_url;
    gh_pg_conn_t *c;
    char err[512];
    assert_int_equal(gh_pg_connect(&opt, &c, err, sizeof(err)), GH_OK);
    char sql[64];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    assert_int_equal(gh_pg_exec(c, sql), GH_OK);
    gh_pg_disconnect(c);
    const char *slash = strrchr(pg_unit_url, '/');
    assert_non_null(slash);
    snprintf(url, size, "%.*s/%s", (int)(slash - pg_unit_url), pg_unit_url, name);
}

/* A migrated PostgreSQL store in a fresh database, opened through the backend's table (so it
 * works while other operations are still unported). */
static gh_store_t *pg_unit_store(void)
{
    char url[300], err[512] = "";
    pg_unit_fresh_db(url, sizeof(url));
    gh_store_t *s = NULL;
    gh_err_t rc = gh_postgres_ops.open(&s, url, err, sizeof(err));
    if (rc)
        fprintf(stderr, "pg_unit: open: %s\n", err);
    assert_int_equal(rc, GH_OK);
    return s;
}

/* A migrated SQLite store in a new temporary file (removed at close by the caller's
 * pg_unit_sqlite_close). */
static gh_store_t *pg_unit_sqlite_store(char path[64])
{
    snprintf(path, 64, "/tmp/gh-unit-sq-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    gh_store_t *s = NULL;
    char err[512] = "";
    gh_err_t rc = gh_store_open(&s, path, err, sizeof(err));
    if (rc)
        fprintf(stderr, "pg_unit: sqlite open: %s\n", err);
    assert_int_equal(rc, GH_OK);
    return s;
}

static void pg_unit_sqlite_close(gh_store_t *s, const char path[64])
{
    gh_store_close(s);
    char p[80];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* A test's world on PostgreSQL: a fresh migrated database opened as a store, and a raw
 * connection to the same database for what a test reads or arranges in SQL. As cmocka's
 * setup and teardown of a test: pg_unit_world_setup, pg_unit_world_teardown. */
typedef struct {
    char url[300];
    gh_pg_conn_t *raw;
    gh_store_t *store;
    gh_db_t *db;
} pg_unit_world_t;

static inline int pg_unit_world_setup(void **state)
{
    pg_unit_world_t *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    char err[512] = "";
    pg_unit_fresh_db(w->url, sizeof(w->url));
    if (gh_postgres_ops.open(&w->store, w->url, err, sizeof(err))) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    w->db = gh_store_db(w->store);
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = w->url;
    if (!w->db || gh_pg_connect(&opt, &w->raw, err, sizeof(err)))
        return -1;
    *state = w;
    return 0;
}

static inline int pg_unit_world_teardown(void **state)
{
    pg_unit_world_t *w = *state;
    gh_pg_disconnect(w->raw);
    gh_store_close(w->store);
    free(w);
    return 0;
}

/* The first column of the one row `sql` returns, as an integer (on the raw connection). */
static inline int64_t pg_unit_scalar(pg_unit_world_t *w, const char *sql)
{
    PGresult *res;
    gh_err_t rc = gh_pg_query(w->raw, sql, 0, NULL, &res);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, w->raw->message);
    assert_int_equal(rc, GH_OK);
    assert_int_equal(PQntuples(res), 1);
    int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

#endif
