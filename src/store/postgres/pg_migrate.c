/* The PostgreSQL store's migrations runner (pg_migrate.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/log.h"
#include "store/postgres/pg_migrate.h"

#define APPLIED_MAX 1000

typedef struct {
    int version;
    char sha256[GH_SHA256_HEX_MAX];
} applied_t;

/* "/0001_init.sql" -> 1; -1 when the name does not start with digits and '_'. */
static int migration_version(const char *name)
{
    const char *p = name[0] == '/' ? name + 1 : name;
    int v = 0;
    const char *start = p;
    for (; *p >= '0' && *p <= '9' && p - start < 6; p++)
        v = v * 10 + (*p - '0');
    return p > start && *p == '_' ? v : -1;
}

static const char *display_name(const gh_embed_t *m)
{
    return m->name[0] == '/' ? m->name + 1 : m->name;
}

/* Reads schema_migrations into `rows`. */
static gh_err_t read_applied(gh_pg_conn_t *c, applied_t *rows, int *n, char *err,
                             size_t err_size)
{
    PGresult *res;
    gh_err_t rc = gh_pg_query(c, "SELECT version, sha256 FROM schema_migrations ORDER BY version",
                              0, NULL, &res);
    if (rc) {
        snprintf(err, err_size, "cannot read schema_migrations: %s", c->message);
        return rc;
    }
    int count = PQntuples(res);
    if (count > APPLIED_MAX) {
        PQclear(res);
        snprintf(err, err_size, "schema_migrations has %d rows, more than any Gatehouse writes",
                 count);
        return GH_EINTERNAL;
    }
    for (int i = 0; i < count; i++) {
        rows[i].version = (int)strtol(PQgetvalue(res, i, 0), NULL, 10);
        snprintf(rows[i].sha256, sizeof(rows[i].sha256), "%s", PQgetvalue(res, i, 1));
    }
    *n = count;
    PQclear(res);
    return GH_OK;
}

/* Applies one migration and records it, in one transaction. */
static gh_err_t apply_one(gh_pg_conn_t *c, const gh_embed_t *m, int version, const char *sum,
                          char *err, size_t err_size)
{
    gh_err_t rc = gh_pg_exec(c, "BEGIN");
    if (!rc)
        rc = gh_pg_exec(c, (const char *)m->data);
    if (rc) {
        snprintf(err, err_size, "migration %s failed: %s%s%s%s", display_name(m), c->message,
                 c->sqlstate[0] ? " (SQLSTATE " : "", c->sqlstate, c->sqlstate[0] ? ")" : "");
        goto out_rollback;
    }
    char vtext[16];
    snprintf(vtext, sizeof(vtext), "%d", version);
    const char *params[] = {vtext, display_name(m), sum};
    PGresult *res;
    rc = gh_pg_query(c,
                     "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                     3, params, &res);
    PQclear(res);
    if (!rc)
        rc = gh_pg_exec(c, "COMMIT");
    if (rc) {
        snprintf(err, err_size, "migration %s: cannot record it: %s", display_name(m),
                 c->message);
        goto out_rollback;
    }
    gh_log_info("store: applied PostgreSQL migration %s", display_name(m));
    return GH_OK;
out_rollback:
    if (!c->broken)
        gh_pg_exec(c, "ROLLBACK");
    return rc == GH_ECONFLICT ? GH_ESTORE : rc;
}

static gh_err_t migrate_locked(gh_pg_conn_t *c, const gh_embed_t *set, int *applied,
                               int *version, char *err, size_t err_size)
{
    gh_err_t rc = gh_pg_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                " version    integer PRIMARY KEY,"
                                " name       text NOT NULL,"
                                " sha256     text NOT NULL CHECK (length(sha256) = 64),"
                                " applied_at timestamptz NOT NULL DEFAULT now())");
    if (rc) {
        snprintf(err, err_size, "cannot create schema_migrations: %s", c->message);
        return rc;
    }
    applied_t *rows = calloc(APPLIED_MAX, sizeof(*rows));
    if (!rows)
        return GH_ENOMEM;
    int nrows = 0;
    rc = read_applied(c, rows, &nrows, err, err_size);
    if (rc)
        goto out_free;

    /* Every recorded migration must be one of ours, unchanged. */
    for (int i = 0; i < nrows; i++) {
        const gh_embed_t *m = set;
        for (; m->name; m++)
            if (migration_version(m->name) == rows[i].version)
                break;
        if (!m->name) {
            snprintf(err, err_size,
                     "the database has migration %04d, which this Gatehouse does not know: a "
                     "newer version migrated it; run that version (or newer)",
                     rows[i].version);
            rc = GH_EINTERNAL;
            goto out_free;
        }
        char sum[GH_SHA256_HEX_MAX];
        gh_sha256_hex(sum, m->data, m->len);
        if (strcmp(sum, rows[i].sha256)) {
            snprintf(err, err_size,
                     "migration %s was changed after it was applied (its SHA-256 differs from "
                     "the one recorded); migrations are never edited once landed: add a new one "
                     "instead",
                     display_name(m));
            rc = GH_EINTERNAL;
            goto out_free;
        }
    }

    int prev = 0, n = 0;
    for (const gh_embed_t *m = set; m->name; m++) {
        int v = migration_version(m->name);
        if (v <= prev) {
            snprintf(err, err_size, "migration %s: bad or out-of-order number", display_name(m));
            rc = GH_EINTERNAL;
            goto out_free;
        }
        prev = v;
        bool done = false;
        for (int i = 0; i < nrows && !done; i++)
            done = rows[i].version == v;
        if (done)
            continue;
        char sum[GH_SHA256_HEX_MAX];
        gh_sha256_hex(sum, m->data, m->len);
        rc = apply_one(c, m, v, sum, err, err_size);
        if (rc)
            goto out_free;
        n++;
    }
    if (applied)
        *applied = n;
    if (version)
        *version = prev;
out_free:
    free(rows);
    return rc;
}

gh_err_t gh_pg_migrate(gh_pg_conn_t *c, const gh_embed_t *set, int *applied, int *version,
                       char *err, size_t err_size)
{
    assert(set);
    /* No timeout while waiting for another migrator or running a long migration. */
    gh_err_t rc = gh_pg_exec(c, "SET statement_timeout = 0; SET lock_timeout = 0");
    if (rc) {
        snprintf(err, err_size, "cannot prepare the migration session: %s", c->message);
        return rc;
    }
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", (long long)GH_PG_MIGRATE_LOCK);
    rc = gh_pg_exec(c, sql);
    if (rc) {
        snprintf(err, err_size, "cannot take the migration lock: %s", c->message);
        return rc;
    }
    rc = migrate_locked(c, set, applied, version, err, err_size);
    if (!c->broken) {
        snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)",
                 (long long)GH_PG_MIGRATE_LOCK);
        gh_pg_exec(c, sql); /* a lost session releases it too */
    }
    return rc;
}
