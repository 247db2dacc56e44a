/* Moving an installation from SQLite to PostgreSQL, table by table (copy.h). */
#include "store/copy.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/embed.h"
#include "store/postgres/pg_int.h"
#include "store/postgres/pg_migrate.h"

#define NAME_MAX_LEN 64
#define TABLES_MAX 96
#define COLUMNS_MAX 80
#define COPY_CHUNK 65536
/* GH_PG_MIGRATE_LOCK as SQL text: no migration runs on the target while the copy does. */
#define GH_PG_LOCK_TEXT "444016649576"
_Static_assert(GH_PG_MIGRATE_LOCK == 444016649576ll, "GH_PG_LOCK_TEXT follows GH_PG_MIGRATE_LOCK");

typedef enum { CONV_TEXT, CONV_BOOL, CONV_TIME_S, CONV_TIME_MS } conv_t;

typedef struct {
    char name[NAME_MAX_LEN];        /* PostgreSQL's name */
    char sqlite_name[NAME_MAX_LEN]; /* "" when SQLite has no such column */
    char type[NAME_MAX_LEN];
    bool nullable;
    bool identity;
    bool default_infinity;
    bool sqlite_notnull;
    conv_t conv;
} column_t;

typedef struct {
    char name[NAME_MAX_LEN];
    column_t cols[COLUMNS_MAX];
    int ncols;
    bool in_sqlite;
    bool done;
    int64_t rows;
} table_t;

typedef struct {
    table_t tables[TABLES_MAX];
    int ntables;
    sqlite3 *lite;
    gh_pg_conn_t *pg;
    char *err;
    size_t err_size;
} copy_t;

/* Tables the two stores keep for themselves. */
static bool own_table(const char *name)
{
    return !strcmp(name, "schema_migrations") || !strncmp(name, "sqlite_", 7);
}

/* Names come from the schemas; they are spliced into SQL, so they must be plain. */
static bool plain_name(const char *s)
{
    if (!*s || strlen(s) >= NAME_MAX_LEN)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static table_t *find_table(copy_t *cp, const char *name)
{
    for (int i = 0; i < cp->ntables; i++)
        if (!strcmp(cp->tables[i].name, name))
            return &cp->tables[i];
    return NULL;
}

static gh_err_t pg_fail(copy_t *cp, const char *what)
{
    snprintf(cp->err, cp->err_size, "%s failed on PostgreSQL: %s", what, cp->pg->message);
    return gh_pg_error(cp->pg);
}

/* ---- the two schemas ---- */

static gh_err_t load_pg_schema(copy_t *cp)
{
    static const char sql[] =
        "SELECT table_name, column_name, data_type, is_nullable = 'YES', "
        "  coalesce(column_default, '') LIKE '%infinity%', is_identity = 'YES' "
        "FROM information_schema.columns c WHERE table_schema = 'public' "
        "  AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'public') "
        "ORDER BY table_name, ordinal_position";
    PGresult *res;
    if (gh_pg_query(cp->pg, sql, 0, NULL, &res))
        return pg_fail(cp, "reading the schema");
    gh_err_t rc = GH_OK;
    for (int r = 0, n = PQntuples(res); r < n; r++) {
        const char *tname = PQgetvalue(res, r, 0), *cname = PQgetvalue(res, r, 1);
        if (own_table(tname))
            continue;
        if (!plain_name(tname) || !plain_name(cname)) {
            snprintf(cp->err, cp->err_size, "PostgreSQL column %s.%s: unexpected name", tname,
                     cname);
            rc = GH_EINTERNAL;
            break;
        }
        table_t *t = find_table(cp, tname);
        if (!t) {
            if (cp->ntables == TABLES_MAX) {
                snprintf(cp->err, cp->err_size, "more than %d tables", TABLES_MAX);
                rc = GH_EINTERNAL;
                break;
            }
            t = &cp->tables[cp->ntables++];
            memset(t, 0, sizeof(*t));
            snprintf(t->name, sizeof(t->name), "%s", tname);
        }
        if (t->ncols == COLUMNS_MAX) {
            snprintf(cp->err, cp->err_size, "table %s has more than %d columns", tname,
                     COLUMNS_MAX);
            rc = GH_EINTERNAL;
            break;
        }
        column_t *c = &t->cols[t->ncols++];
        memset(c, 0, sizeof(*c));
        snprintf(c->name, sizeof(c->name), "%s", cname);
        snprintf(c->type, sizeof(c->type), "%s", PQgetvalue(res, r, 2));
        c->nullable = PQgetvalue(res, r, 3)[0] == 't';
        c->default_infinity = PQgetvalue(res, r, 4)[0] == 't';
        c->identity = PQgetvalue(res, r, 5)[0] == 't';
    }
    PQclear(res);
    return rc;
}

/* Matches every SQLite table and column to its PostgreSQL counterpart; refuses the copy when
 * one has none. */
static gh_err_t map_sqlite_schema(copy_t *cp)
{
    static const char sql[] =
        "SELECT m.name, p.name, p.\"notnull\" FROM sqlite_schema m, pragma_table_info(m.name) p "
        "WHERE m.type = 'table' ORDER BY m.name, p.cid";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(cp->lite, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(cp->err, cp->err_size, "cannot read the SQLite schema: %s",
                 sqlite3_errmsg(cp->lite));
        return GH_EINVAL;
    }
    gh_err_t rc = GH_OK;
    int step;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *tname = (const char *)sqlite3_column_text(st, 0);
        const char *cname = (const char *)sqlite3_column_text(st, 1);
        if (!tname || !cname || own_table(tname))
            continue;
        table_t *t = find_table(cp, tname);
        if (!t) {
            snprintf(cp->err, cp->err_size,
                     "the SQLite table %s has no mapping to a PostgreSQL table: this Gatehouse "
                     "does not know how to copy it, so nothing was copied",
                     tname);
            rc = GH_EINVAL;
            break;
        }
        t->in_sqlite = true;
        /* PostgreSQL keeps times as timestamptz without SQLite's `_ms` suffix. */
        char base[NAME_MAX_LEN];
        snprintf(base, sizeof(base), "%s", cname);
        size_t len = strlen(base);
        bool ms = len > 3 && !strcmp(base + len - 3, "_ms");
        column_t *c = NULL;
        for (int i = 0; i < t->ncols && !c; i++)
            if (!strcmp(t->cols[i].name, cname))
                c = &t->cols[i];
        if (!c && ms) {
            base[len - 3] = '\0';
            for (int i = 0; i < t->ncols && !c; i++)
                if (!strcmp(t->cols[i].name, base))
                    c = &t->cols[i];
        }
        if (!c || !plain_name(cname)) {
            snprintf(cp->err, cp->err_size,
                     "the SQLite column %s.%s has no mapping to a PostgreSQL column: this "
                     "Gatehouse does not know how to copy it, so nothing was copied",
                     tname, cname);
            rc = GH_EINVAL;
            break;
        }
        snprintf(c->sqlite_name, sizeof(c->sqlite_name), "%s", cname);
        c->sqlite_notnull = sqlite3_column_int(st, 2) != 0;
        if (!strcmp(c->type, "timestamp with time zone"))
            c->conv = ms && strcmp(c->name, cname) ? CONV_TIME_MS : CONV_TIME_S;
        else if (!strcmp(c->type, "boolean"))
            c->conv = CONV_BOOL;
        else
            c->conv = CONV_TEXT;
    }
    if (!rc && step != SQLITE_DONE) {
        snprintf(cp->err, cp->err_size, "cannot read the SQLite schema: %s",
                 sqlite3_errmsg(cp->lite));
        rc = GH_EINVAL;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- checks before copying ---- */

static int last_migration(const gh_embed_t *set)
{
    int v = 0;
    for (const gh_embed_t *m = set; m->name; m++) {
        const char *p = m->name[0] == '/' ? m->name + 1 : m->name;
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++)
            n = n * 10 + (*p - '0');
        if (n > v)
            v = n;
    }
    return v;
}

static gh_err_t check_source_version(copy_t *cp, const char *path)
{
    sqlite3_stmt *st;
    int version = -1;
    if (sqlite3_prepare_v2(cp->lite, "SELECT coalesce(max(version), 0) FROM schema_migrations",
                           -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    int want = last_migration(gh_embed_migrations);
    if (version < 0) {
        snprintf(cp->err, cp->err_size, "%s is not a Gatehouse SQLite database (%s)", path,
                 sqlite3_errmsg(cp->lite));
        return GH_EINVAL;
    }
    if (version != want) {
        snprintf(cp->err, cp->err_size,
                 "%s is at schema version %d but this Gatehouse copies version %d: run "
                 "`gatehouse migrate --store sqlite:%s` with this Gatehouse first",
                 path, version, want, path);
        return GH_EINVAL;
    }
    return GH_OK;
}

/* The migrations seed billing_meta with usage_seq_start = 0 and usage_rollup_watermark with
 * its one row (set after the copy, mark_rollups); anything else is data. */
static gh_err_t check_target_empty(copy_t *cp, const char *where)
{
    char sql[256];
    for (int i = 0; i < cp->ntables; i++) {
        const table_t *t = &cp->tables[i];
        if (!strcmp(t->name, "usage_rollup_watermark"))
            continue;
        if (!strcmp(t->name, "billing_meta"))
            snprintf(sql, sizeof(sql),
                     "SELECT EXISTS (SELECT 1 FROM billing_meta "
                     "WHERE NOT (name = 'usage_seq_start' AND value = 0))");
        else
            snprintf(sql, sizeof(sql), "SELECT EXISTS (SELECT 1 FROM %s)", t->name);
        PGresult *res;
        if (gh_pg_query(cp->pg, sql, 0, NULL, &res))
            return pg_fail(cp, "checking that the target is empty");
        bool rows = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (rows) {
            snprintf(cp->err, cp->err_size,
                     "the PostgreSQL database %s is not empty (table %s has rows): copy into a "
                     "new, empty database (createdb NAME); nothing was copied",
                     where, t->name);
            return GH_ECONFLICT;
        }
    }
    return GH_OK;
}

/* ---- copying one table ---- */

typedef struct {
    copy_t *cp;
    char buf[COPY_CHUNK];
    size_t len;
    bool failed;
} out_t;

static void out_flush(out_t *o)
{
    if (o->len && !o->failed && PQputCopyData(o->cp->pg->conn, o->buf, (int)o->len) != 1)
        o->failed = true;
    o->len = 0;
}

static void out_char(out_t *o, char ch)
{
    if (o->len == sizeof(o->buf))
        out_flush(o);
    o->buf[o->len++] = ch;
}

static void out_str(out_t *o, const char *s)
{
    for (; *s; s++)
        out_char(o, *s);
}

/* A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
static void out_text(out_t *o, const unsigned char *s, int n)
{
    for (int i = 0; i < n; i++) {
        switch (s[i]) {
        case '\\': out_str(o, "\\\\"); break;
        case '\t': out_str(o, "\\t"); break;
        case '\n': out_str(o, "\\n"); break;
        case '\r': out_str(o, "\\r"); break;
        default: out_char(o, (char)s[i]);
        }
    }
}

/* An epoch time as an ISO 8601 UTC timestamp PostgreSQL reads exactly. */
static bool format_time(int64_t v, bool ms, char *out, size_t size)
{
    int64_t secs = ms ? (v >= 0 ? v / 1000 : -((-v + 999) / 1000)) : v;
    int64_t frac = ms ? v - secs * 1000 : 0;
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return false;
    snprintf(out, size, "%04d-%02d-%02d %02d:%02d:%02d.%03lld+00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
    return true;
}

static gh_err_t copy_table(copy_t *cp, table_t *t)
{
    char sel[4096], cols[4096];
    size_t sn = 0, cn = 0;
    int mapped[COLUMNS_MAX], nmapped = 0;
    for (int i = 0; i < t->ncols; i++) {
        if (!t->cols[i].sqlite_name[0])
            continue; /* PostgreSQL's default (the seq identity columns, node_id) */
        const char *sep = nmapped ? ", " : "";
        sn += (size_t)snprintf(sel + sn, sizeof(sel) - sn, "%s\"%s\"", sep,
                               t->cols[i].sqlite_name);
        cn += (size_t)snprintf(cols + cn, sizeof(cols) - cn, "%s%s", sep, t->cols[i].name);
        if (sn >= sizeof(sel) || cn >= sizeof(cols)) {
            snprintf(cp->err, cp->err_size, "table %s: too many columns", t->name);
            return GH_EINTERNAL;
        }
        mapped[nmapped++] = i;
    }
    if (!nmapped)
        return GH_OK;
    /* Rowid order where the table has one, so identity columns follow it; tables WITHOUT
     * ROWID are read in primary-key order. */
    char sql[4300];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql), "SELECT %s FROM \"%s\" ORDER BY rowid", sel, t->name);
    if (sqlite3_prepare_v2(cp->lite, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(sql, sizeof(sql), "SELECT %s FROM \"%s\"", sel, t->name);
        if (sqlite3_prepare_v2(cp->lite, sql, -1, &st, NULL) != SQLITE_OK) {
            snprintf(cp->err, cp->err_size, "cannot read the SQLite table %s: %s", t->name,
                     sqlite3_errmsg(cp->lite));
            return GH_EINVAL;
        }
    }
    char copy_sql[4200];
    snprintf(copy_sql, sizeof(copy_sql), "COPY %s (%s) FROM STDIN", t->name, cols);
    PGresult *res = PQexec(cp->pg->conn, copy_sql);
    bool in_copy = PQresultStatus(res) == PGRES_COPY_IN;
    if (!in_copy) {
        snprintf(cp->err, cp->err_size, "COPY into %s failed on PostgreSQL: %s", t->name,
                 PQresultErrorMessage(res));
        PQclear(res);
        sqlite3_finalize(st);
        return GH_ESTORE;
    }
    PQclear(res);

    out_t *o = calloc(1, sizeof(*o));
    if (!o) {
        sqlite3_finalize(st);
        PQputCopyEnd(cp->pg->conn, "out of memory");
        while ((res = PQgetResult(cp->pg->conn)))
            PQclear(res);
        return GH_ENOMEM;
    }
    o->cp = cp;
    gh_err_t rc = GH_OK;
    int step;
    int64_t rows = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && !o->failed) {
        for (int k = 0; k < nmapped && !rc; k++) {
            const column_t *c = &t->cols[mapped[k]];
            if (k)
                out_char(o, '\t');
            if (sqlite3_column_type(st, k) == SQLITE_NULL) {
                out_str(o, "\\N");
                continue;
            }
            if (c->conv == CONV_TEXT) {
                const unsigned char *v = sqlite3_column_text(st, k);
                out_text(o, v ? v : (const unsigned char *)"", sqlite3_column_bytes(st, k));
                continue;
            }
            int64_t v = sqlite3_column_int64(st, k);
            if (c->conv == CONV_BOOL) {
                out_char(o, v ? 't' : 'f');
                continue;
            }
            /* SQLite's "0: never" in a NOT NULL column. */
            if (v == 0 && c->sqlite_notnull && (c->nullable || c->default_infinity)) {
                out_str(o, c->nullable ? "\\N" : "-infinity");
                continue;
            }
            char ts[64];
            if (!format_time(v, c->conv == CONV_TIME_MS, ts, sizeof(ts))) {
                snprintf(cp->err, cp->err_size, "%s.%s: %lld is not a time PostgreSQL can hold",
                         t->name, c->sqlite_name, (long long)v);
                rc = GH_EINVAL;
                break;
            }
            out_str(o, ts);
        }
        if (rc)
            break;
        out_char(o, '\n');
        rows++;
    }
    if (!rc && step != SQLITE_DONE && !o->failed) {
        snprintf(cp->err, cp->err_size, "cannot read the SQLite table %s: %s", t->name,
                 sqlite3_errmsg(cp->lite));
        rc = GH_EINVAL;
    }
    sqlite3_finalize(st);
    out_flush(o);
    bool failed = o->failed;
    free(o);
    if (PQputCopyEnd(cp->pg->conn, rc ? "the copy was stopped" : NULL) != 1)
        failed = true;
    while ((res = PQgetResult(cp->pg->conn))) {
        if (!rc && PQresultStatus(res) != PGRES_COMMAND_OK) {
            snprintf(cp->err, cp->err_size, "COPY into %s failed on PostgreSQL: %s", t->name,
                     PQresultErrorMessage(res));
            rc = GH_ESTORE;
        }
        PQclear(res);
    }
    if (!rc && failed) {
        snprintf(cp->err, cp->err_size, "COPY into %s failed: %s", t->name,
                 PQerrorMessage(cp->pg->conn));
        rc = GH_EUNAVAIL;
    }
    t->rows = rows;
    return rc;
}

/* Copies every table after the tables its foreign keys point at. */
static gh_err_t copy_tables(copy_t *cp, const gh_store_copy_report_t *report)
{
    static const char sql[] =
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = 'public'::regnamespace";
    PGresult *fk;
    if (gh_pg_query(cp->pg, sql, 0, NULL, &fk))
        return pg_fail(cp, "reading the foreign keys");
    gh_err_t rc = GH_OK;
    for (int left = cp->ntables; left > 0 && !rc;) {
        int progressed = 0;
        for (int i = 0; i < cp->ntables && !rc; i++) {
            table_t *t = &cp->tables[i];
            if (t->done)
                continue;
            bool ready = true;
            for (int r = 0, n = PQntuples(fk); r < n && ready; r++) {
                const char *from = PQgetvalue(fk, r, 0), *to = PQgetvalue(fk, r, 1);
                if (strcmp(from, t->name) || !strcmp(to, t->name))
                    continue;
                const table_t *dep = find_table(cp, to);
                ready = !dep || dep->done;
            }
            if (!ready)
                continue;
            if (t->in_sqlite) {
                rc = copy_table(cp, t);
                if (!rc && report && report->table)
                    report->table(report->ctx, t->name, t->rows);
            }
            t->done = true;
            progressed++;
            left--;
        }
        if (!progressed && !rc) {
            snprintf(cp->err, cp->err_size, "the PostgreSQL tables' foreign keys form a cycle");
            rc = GH_EINTERNAL;
        }
    }
    PQclear(fk);
    return rc;
}

/* Moves every identity sequence past the largest value copied. */
static gh_err_t advance_sequences(copy_t *cp)
{
    for (int i = 0; i < cp->ntables; i++) {
        const table_t *t = &cp->tables[i];
        for (int k = 0; k < t->ncols; k++) {
            if (!t->cols[k].identity)
                continue;
            char sql[512];
            snprintf(sql, sizeof(sql),
                     "SELECT setval(pg_get_serial_sequence('%s', '%s'), max(%s)) FROM %s "
                     "HAVING max(%s) IS NOT NULL",
                     t->name, t->cols[k].name, t->cols[k].name, t->name, t->cols[k].name);
            PGresult *res;
            if (gh_pg_query(cp->pg, sql, 0, NULL, &res))
                return pg_fail(cp, "advancing an identity sequence");
            PQclear(res);
        }
    }
    return GH_OK;
}

/* SQLite's hour and day rollups are complete (its writer adds every event to all three
 * tables), and they are copied as they are: the roll forward's mark (PostgreSQL migration
 * 0017) must be past every copied minute row, or the next roll forward would add those
 * minutes to the hour and day rows a second time. The migration set it after the minutes the
 * target held then (none); the copied ones may be later (the target migrated a while ago, a
 * source with events ahead of this clock). One probe per organization (a skip scan). */
static gh_err_t mark_rollups(copy_t *cp)
{
    static const char sql[] =
        "UPDATE usage_rollup_watermark SET rolled_before = greatest(rolled_before, "
        "(WITH RECURSIVE o(id) AS (SELECT min(org_id) FROM usage_rollup_minute UNION ALL "
        "SELECT (SELECT min(m.org_id) FROM usage_rollup_minute m WHERE m.org_id > o.id) FROM o "
        "WHERE o.id IS NOT NULL) SELECT max(x.b) + interval '1 minute' FROM o, LATERAL "
        "(SELECT max(bucket_start) AS b FROM usage_rollup_minute m WHERE m.org_id = o.id) x "
        "WHERE o.id IS NOT NULL))";
    if (gh_pg_exec(cp->pg, sql))
        return pg_fail(cp, "moving the rollups' mark past the copied minutes");
    return GH_OK;
}

/* ---- the ledger check, on the target ---- */

/* The caller's ledger check (`gatehouse ledger check`'s), run on the copy before COMMIT
 * through the PostgreSQL backend's store operations on this connection. */
static gh_err_t ledger_check(copy_t *cp, const gh_store_copy_report_t *report, int *problems)
{
    gh_db_t *db;
    gh_err_t rc = gh_pgs_db_borrow(cp->pg, &db);
    if (rc) {
        snprintf(cp->err, cp->err_size, "out of memory");
        return rc;
    }
    rc = report->ledger_check(report->ctx, db, problems);
    gh_pgs_db_return(db);
    if (rc)
        snprintf(cp->err, cp->err_size, "the ledger check on the copy failed (%s): %s",
                 gh_err_str(rc), cp->pg->message[0] ? cp->pg->message : "no detail");
    return rc;
}

/* ---- the whole copy ---- */

gh_err_t gh_store_copy(const char *sqlite_path, const gh_pg_options_t *pg,
                       const gh_store_copy_report_t *report, char *err, size_t err_size)
{
    assert(sqlite_path && pg && err && err_size && report && report->ledger_check);
    copy_t *cp = calloc(1, sizeof(*cp));
    if (!cp) {
        snprintf(err, err_size, "out of memory");
        return GH_ENOMEM;
    }
    cp->err = err;
    cp->err_size = err_size;
    err[0] = '\0';
    char where[300];
    gh_pg_describe(pg->url, where, sizeof(where));
    gh_err_t rc;

    if (sqlite3_open_v2(sqlite_path, &cp->lite, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, err_size, "cannot open the SQLite database %s: %s", sqlite_path,
                 cp->lite ? sqlite3_errmsg(cp->lite) : "out of memory");
        rc = GH_EINVAL;
        goto out_close_lite;
    }
    rc = check_source_version(cp, sqlite_path);
    if (rc)
        goto out_close_lite;

    rc = gh_pg_connect(pg, &cp->pg, err, err_size);
    if (rc)
        goto out_close_lite;
    int applied = 0, version = 0;
    rc = gh_pg_migrate(cp->pg, gh_embed_pg_migrations, &applied, &version, err, err_size);
    if (rc)
        goto out_disconnect;
    rc = load_pg_schema(cp);
    if (!rc)
        rc = map_sqlite_schema(cp);
    if (rc)
        goto out_disconnect;

    /* One transaction for everything. Its read of the source is one snapshot too. */
    if (sqlite3_exec(cp->lite, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, err_size, "cannot read %s: %s", sqlite_path, sqlite3_errmsg(cp->lite));
        rc = GH_EINVAL;
        goto out_disconnect;
    }
    if (gh_pg_exec(cp->pg, "BEGIN; SELECT pg_advisory_xact_lock(" GH_PG_LOCK_TEXT ")")) {
        rc = pg_fail(cp, "BEGIN");
        goto out_end_read;
    }
    rc = check_target_empty(cp, where);
    if (!rc && gh_pg_exec(cp->pg, "DELETE FROM billing_meta"))
        rc = pg_fail(cp, "clearing billing_meta");
    if (!rc)
        rc = copy_tables(cp, report);
    if (!rc)
        rc = advance_sequences(cp);
    if (!rc)
        rc = mark_rollups(cp);
    int problems = 0;
    if (!rc)
        rc = ledger_check(cp, report, &problems);
    if (!rc && problems) {
        snprintf(err, err_size,
                 "the ledger check found %d problem%s on the copy, so it was rolled back and "
                 "nothing was copied (run `gatehouse ledger check` on the source)",
                 problems, problems == 1 ? "" : "s");
        rc = GH_EBILLING;
    }
    if (!rc && gh_pg_exec(cp->pg, "COMMIT"))
        rc = pg_fail(cp, "COMMIT");
    if (rc)
        gh_pg_exec(cp->pg, "ROLLBACK");
out_end_read:
    sqlite3_exec(cp->lite, "COMMIT", NULL, NULL, NULL);
out_disconnect:
    gh_pg_disconnect(cp->pg);
out_close_lite:
    sqlite3_close(cp->lite);
    free(cp);
    return rc;
}
