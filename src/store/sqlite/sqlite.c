/* The SQLite backend of the store interface (src/store/store.h).
 *
 * One connection per thread, opened lazily and registered so gh_sqlite_close can close them
 * all. gh_sqlite_ops at the end of this file is the backend's table of operations: every
 * gh_sqlite_<name> of the src/store/sqlite/ files, one per entry of store/ops.h.
 *
 * Each connection keeps its prepared statements in a small cache keyed by the address of the
 * static SQL string, so a hot statement is compiled once per thread. WAL mode lets the
 * control plane's readers run beside the writer; BEGIN IMMEDIATE takes the write lock up
 * front, and busy_timeout makes concurrent writers queue instead of failing. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/embed.h"
#include "lib/log.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store.h"

/* The store: the generic head first, then what every thread's connection is opened with. */
typedef struct gh_sqlite_store {
    struct gh_store base;
    char *path;
    _Atomic int busy_timeout_ms;
    pthread_key_t key;
    pthread_mutex_t lock; /* guards `all` */
    gh_sqlite_db_t *all;
} gh_sqlite_store_t;

static gh_sqlite_store_t *ss(gh_store_t *store)
{
    assert(store->ops == &gh_sqlite_ops);
    return (gh_sqlite_store_t *)store;
}

static void db_free(gh_sqlite_db_t *db)
{
    for (int i = 0; i < STMT_CACHE; i++)
        if (db->cache[i].stmt)
            sqlite3_finalize(db->cache[i].stmt);
    sqlite3_close(db->conn);
    free(db);
}

static gh_sqlite_db_t *db_open(const char *path, int busy_timeout_ms)
{
    gh_sqlite_db_t *db = calloc(1, sizeof(*db));
    if (!db)
        return NULL;
    db->base.ops = &gh_sqlite_ops;
    int rc = sqlite3_open_v2(path, &db->conn,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        gh_log_error("store: cannot open %s: %s", path,
                     db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
        goto out_free;
    }
    sqlite3_busy_timeout(db->conn, busy_timeout_ms);
    sqlite3_extended_result_codes(db->conn, 1);
    if ((rc = gh_sqlite_usage_register(db->conn)) != SQLITE_OK) {
        gh_log_error("store: cannot register gh_usage_rows on %s: %s", path, sqlite3_errstr(rc));
        goto out_free;
    }
    char *msg = NULL;
    rc = sqlite3_exec(db->conn,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                      "PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        gh_log_error("store: cannot configure %s: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        goto out_free;
    }
    return db;
out_free:
    db_free(db);
    return NULL;
}

gh_db_t *gh_sqlite_db(gh_store_t *store)
{
    gh_sqlite_store_t *s = ss(store);
    gh_sqlite_db_t *db = pthread_getspecific(s->key);
    if (db)
        return &db->base;
    db = db_open(s->path, s->busy_timeout_ms);
    if (!db)
        return NULL;
    pthread_setspecific(s->key, db);
    pthread_mutex_lock(&s->lock);
    db->next = s->all;
    s->all = db;
    pthread_mutex_unlock(&s->lock);
    return &db->base;
}

gh_err_t gh_sqlite_open(gh_store_t **out, const char *path, char *err, size_t err_size)
{
    gh_sqlite_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return GH_ENOMEM;
    s->base.ops = &gh_sqlite_ops;
    s->path = strdup(path);
    if (!s->path || pthread_key_create(&s->key, NULL)) {
        free(s->path);
        free(s);
        return GH_ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->busy_timeout_ms = 10000;
    gh_db_t *db = gh_sqlite_db(&s->base);
    if (!db) {
        snprintf(err, err_size, "cannot open the database %s (see the log above)", path);
        gh_sqlite_close(&s->base);
        return GH_ESTORE;
    }
    /* Files an older version created world-readable become the owner's only. */
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        char p[4096];
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        if (chmod(p, 0600) && errno != ENOENT)
            gh_log_warn("store: cannot make %s private (mode 0600): %s", p, strerror(errno));
    }
    gh_err_t rc = gh_sqlite_migrate(db, NULL, err, err_size);
    if (rc) {
        gh_sqlite_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return GH_OK;
}

void gh_sqlite_set_busy_timeout(gh_store_t *store, int timeout_ms)
{
    gh_sqlite_store_t *s = ss(store);
    s->busy_timeout_ms = timeout_ms;
    gh_sqlite_db_t *db = pthread_getspecific(s->key);
    if (db)
        sqlite3_busy_timeout(db->conn, timeout_ms);
}

/* SQLite statements wait only for locks, which the busy timeout bounds: nothing to set. */
void gh_sqlite_set_statement_timeout(gh_store_t *store, int timeout_ms)
{
    (void)store;
    (void)timeout_ms;
}

/* One node's events: nothing to key by the node. */
void gh_sqlite_set_node_id(gh_store_t *store, const char *node_id)
{
    (void)store;
    (void)node_id;
}

/* One writer at a time: the usage writer runs one lane (store.h). */
int gh_sqlite_writer_lanes(gh_store_t *store)
{
    (void)store;
    return 1;
}

void gh_sqlite_close(gh_store_t *store)
{
    if (!store)
        return;
    gh_sqlite_store_t *s = ss(store);
    gh_sqlite_db_t *db = s->all;
    while (db) {
        gh_sqlite_db_t *next = db->next;
        db_free(db);
        db = next;
    }
    pthread_key_delete(s->key);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
}

/* The cached statement for `sql` (a string with static storage), reset, and unbound when
 * `unbind`. */
static sqlite3_stmt *cached(gh_db_t *db, const char *sql, bool unbind)
{
    int free_slot = -1;
    for (int i = 0; i < STMT_CACHE; i++) {
        if (sq(db)->cache[i].sql == sql) {
            sqlite3_stmt *st = sq(db)->cache[i].stmt;
            sqlite3_reset(st);
            if (unbind)
                sqlite3_clear_bindings(st);
            return st;
        }
        if (!sq(db)->cache[i].sql && free_slot < 0)
            free_slot = i;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(sq(db)->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
        SQLITE_OK) {
        gh_log_error("store: prepare failed: %s", sqlite3_errmsg(sq(db)->conn));
        return NULL;
    }
    assert(free_slot >= 0 && "raise STMT_CACHE");
    if (free_slot < 0) {
        sqlite3_finalize(st);
        return NULL;
    }
    sq(db)->cache[free_slot].sql = sql;
    sq(db)->cache[free_slot].stmt = st;
    return st;
}

sqlite3_stmt *gh_sqlite_stmt(gh_db_t *db, const char *sql)
{
    return cached(db, sql, true);
}

sqlite3_stmt *gh_sqlite_stmt_to_bind(gh_db_t *db, const char *sql)
{
    return cached(db, sql, false);
}

gh_err_t gh_sqlite_step_err(gh_db_t *db, int rc)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG ||
        primary == SQLITE_RANGE)
        sq(db)->failed_on_data = true;
    if (primary == SQLITE_CONSTRAINT)
        return GH_ECONFLICT;
    if ((rc & 0xff) == SQLITE_BUSY)
        return GH_EUNAVAIL;
    gh_log_error("store: %s", sqlite3_errmsg(sq(db)->conn));
    return GH_ESTORE;
}

/* Runs a statement that returns no rows. */
gh_err_t gh_sqlite_exec(gh_db_t *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    gh_err_t err = rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
    sqlite3_reset(st);
    return err;
}

gh_err_t gh_sqlite_exec_one(gh_db_t *db, sqlite3_stmt *st)
{
    gh_err_t rc = gh_sqlite_exec(db, st);
    return !rc && sqlite3_changes(sq(db)->conn) == 0 ? GH_ENOTFOUND : rc;
}

void gh_sqlite_bind_str(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

gh_err_t gh_sqlite_one(gh_db_t *db, sqlite3_stmt *st, gh_sqlite_decode_fn decode, void *out)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        decode(st, out);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? GH_OK : rc == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, rc);
}

void gh_sqlite_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

void gh_sqlite_col_text(sqlite3_stmt *st, int i, char *out, size_t size)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    if (!v) {
        out[0] = '\0';
        return;
    }
    snprintf(out, size, "%s", (const char *)v);
}


/* Transactions nest: the outermost is BEGIN IMMEDIATE, inner ones are savepoints, so a store
 * function that wraps its own rows in a transaction can also run inside a caller's. */
static int tx_exec(gh_db_t *db, const char *verb, int level)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "%s gh_sp%d", verb, level);
    return sqlite3_exec(sq(db)->conn, sql, NULL, NULL, NULL);
}

gh_err_t gh_sqlite_begin(gh_db_t *db)
{
    if (sq(db)->depth == 0)
        sq(db)->failed_on_data = false;
    int rc = sq(db)->depth == 0 ? sqlite3_exec(sq(db)->conn, "BEGIN IMMEDIATE", NULL, NULL, NULL)
                                : tx_exec(db, "SAVEPOINT", sq(db)->depth);
    if (rc != SQLITE_OK)
        return gh_sqlite_step_err(db, rc);
    sq(db)->depth++;
    return GH_OK;
}

gh_err_t gh_sqlite_commit(gh_db_t *db)
{
    assert(sq(db)->depth > 0);
    int rc = sq(db)->depth == 1 ? sqlite3_exec(sq(db)->conn, "COMMIT", NULL, NULL, NULL)
                                : tx_exec(db, "RELEASE", sq(db)->depth - 1);
    if (rc == SQLITE_OK) {
        sq(db)->depth--;
        return GH_OK;
    }
    gh_err_t err = gh_sqlite_step_err(db, rc);
    gh_sqlite_rollback(db);
    return err;
}

bool gh_sqlite_failed_on_data(const gh_db_t *db)
{
    return ((const gh_sqlite_db_t *)db)->failed_on_data;
}

bool gh_sqlite_in_transaction(const gh_db_t *db)
{
    return ((const gh_sqlite_db_t *)db)->depth > 0;
}

void gh_sqlite_rollback(gh_db_t *db)
{
    if (sq(db)->depth == 0)
        return;
    if (sq(db)->depth == 1) {
        if (!sqlite3_get_autocommit(sq(db)->conn))
            sqlite3_exec(sq(db)->conn, "ROLLBACK", NULL, NULL, NULL);
    } else {
        tx_exec(db, "ROLLBACK TO", sq(db)->depth - 1);
        tx_exec(db, "RELEASE", sq(db)->depth - 1);
    }
    sq(db)->depth--;
}

/* One lane: minute rollups have no lane here, and every transaction takes the write lock
 * at BEGIN IMMEDIATE. */
void gh_sqlite_set_writer_lane(gh_db_t *db, int lane)
{
    (void)db;
    (void)lane;
}

gh_err_t gh_sqlite_begin_staged(gh_db_t *db)
{
    assert(sq(db)->depth == 0);
    return gh_sqlite_begin(db);
}

gh_err_t gh_sqlite_lock_writes(gh_db_t *db)
{
    assert(sq(db)->depth > 0);
    (void)db;
    return GH_OK;
}

/* ---- migrations ---- */

int gh_sqlite_schema_version(gh_db_t *db)
{
    static const char sql[] = "SELECT coalesce(max(version), 0) FROM schema_migrations";
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(sq(db)->conn, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migration_version(const char *name)
{
    /* "/0001_init.sql" */
    int v = 0;
    const char *p = name[0] == '/' ? name + 1 : name;
    for (; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return *p == '_' ? v : -1;
}

gh_err_t gh_sqlite_migrate(gh_db_t *db, int *applied, char *err, size_t err_size)
{
    int n = 0;
    char *msg = NULL;
    if (sqlite3_exec(sq(db)->conn,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " sha256 TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_size, "cannot create schema_migrations: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return GH_ESTORE;
    }
    int prev = 0;
    for (const gh_embed_t *m = gh_embed_migrations; m->name; m++) {
        int version = migration_version(m->name);
        if (version <= prev) {
            snprintf(err, err_size, "migration %s: bad or out-of-order number", m->name);
            return GH_EINTERNAL;
        }
        prev = version;
        char sum[GH_SHA256_HEX_MAX];
        gh_sha256_hex(sum, m->data, m->len);

        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(sq(db)->conn, "SELECT sha256 FROM schema_migrations WHERE version = ?",
                           -1, &st, NULL);
        sqlite3_bind_int(st, 1, version);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            bool same = !strcmp((const char *)sqlite3_column_text(st, 0), sum);
            sqlite3_finalize(st);
            if (!same) {
                snprintf(err, err_size,
                         "migration %s was changed after it was applied; migrations are never "
                         "edited once landed: add a new one instead",
                         m->name + 1);
                return GH_EINTERNAL;
            }
            continue;
        }
        sqlite3_finalize(st);

        gh_err_t e = gh_sqlite_begin(db);
        if (e) {
            snprintf(err, err_size, "migration %s: cannot begin: %s", m->name + 1,
                     sqlite3_errmsg(sq(db)->conn));
            return e;
        }
        if (sqlite3_exec(sq(db)->conn, (const char *)m->data, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, err_size, "migration %s failed: %s", m->name + 1, msg ? msg : "?");
            sqlite3_free(msg);
            gh_sqlite_rollback(db);
            return GH_ESTORE;
        }
        sqlite3_prepare_v2(sq(db)->conn,
                           "INSERT INTO schema_migrations (version, name, sha256, applied_at)"
                           " VALUES (?, ?, ?, unixepoch())",
                           -1, &st, NULL);
        sqlite3_bind_int(st, 1, version);
        sqlite3_bind_text(st, 2, m->name + 1, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, sum, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE || gh_sqlite_commit(db)) {
            snprintf(err, err_size, "migration %s: cannot record: %s", m->name + 1,
                     sqlite3_errmsg(sq(db)->conn));
            gh_sqlite_rollback(db);
            return GH_ESTORE;
        }
        gh_log_info("store: applied migration %s", m->name + 1);
        n++;
    }
    if (applied)
        *applied = n;
    return GH_OK;
}

/* ---- keyset pagination ---- */

static void bind_args(sqlite3_stmt *st, const gh_sqlite_arg_t *args, int nargs, int first)
{
    for (int i = 0; i < nargs; i++) {
        if (args[i].is_num)
            sqlite3_bind_int64(st, first + i, args[i].num);
        else
            gh_sqlite_bind_text(st, first + i, args[i].text);
    }
}

static gh_err_t prepare(gh_db_t *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(sq(db)->conn, sql, -1, st, NULL) != SQLITE_OK) {
        gh_log_error("store: prepare failed: %s", sqlite3_errmsg(sq(db)->conn));
        return GH_ESTORE;
    }
    return GH_OK;
}

gh_err_t gh_sqlite_page(gh_db_t *db, const char *cols, const char *from_where,
                        const char *id_expr, const gh_sqlite_arg_t *args, int nargs,
                        const gh_page_t *page, bool newest_first, gh_sqlite_row_fn fn, void *ctx,
                        bool *has_more)
{
    assert(page->limit >= 1 && page->limit <= 1000);
    assert(nargs <= GH_SQLITE_ARGS_MAX);
    *has_more = false;
    char sql[2048];
    sqlite3_stmt *st = NULL;
    gh_err_t rc;
    const char *cursor = page->after_id ? page->after_id : page->before_id;
    int64_t cursor_rowid = 0;

    if (cursor) {
        snprintf(sql, sizeof(sql), "SELECT t.rowid %s AND %s = ?", from_where, id_expr);
        if ((rc = prepare(db, sql, &st)))
            return rc;
        bind_args(st, args, nargs, 1);
        sqlite3_bind_text(st, nargs + 1, cursor, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            cursor_rowid = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (step != SQLITE_ROW)
            return step == SQLITE_DONE ? GH_EINVAL : gh_sqlite_step_err(db, step);
    }

    /* Scan from the cursor in the direction asked (before_id walks backwards through the
     * list), collecting rowids; then read the rows of that rowid range in list order. */
    bool list_asc = !newest_first;
    bool scan_asc = page->before_id ? !list_asc : list_asc;
    int n = snprintf(sql, sizeof(sql), "SELECT t.rowid %s%s ORDER BY t.rowid %s LIMIT %d",
                     from_where, !cursor ? "" : scan_asc ? " AND t.rowid > ?" : " AND t.rowid < ?",
                     scan_asc ? "ASC" : "DESC", page->limit + 1);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return GH_EINTERNAL;
    if ((rc = prepare(db, sql, &st)))
        return rc;
    bind_args(st, args, nargs, 1);
    if (cursor)
        sqlite3_bind_int64(st, nargs + 1, cursor_rowid);
    int count = 0, step;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count++ == page->limit) {
            *has_more = true;
            break;
        }
        int64_t r = sqlite3_column_int64(st, 0);
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return gh_sqlite_step_err(db, step);
    if (lo > hi) /* an empty page */
        return GH_OK;

    n = snprintf(sql, sizeof(sql), "SELECT %s %s AND t.rowid BETWEEN ? AND ? ORDER BY t.rowid %s",
                 cols, from_where, list_asc ? "ASC" : "DESC");
    if (n < 0 || (size_t)n >= sizeof(sql))
        return GH_EINTERNAL;
    if ((rc = prepare(db, sql, &st)))
        return rc;
    bind_args(st, args, nargs, 1);
    sqlite3_bind_int64(st, nargs + 1, lo);
    sqlite3_bind_int64(st, nargs + 2, hi);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, step);
}

/* ---- the table of operations ---- */

const gh_store_ops_t gh_sqlite_ops = {
    .backend_name = "sqlite",
    .scheme = "sqlite:",
    .open = gh_sqlite_open,
#define GH_SQLITE_OP(ret, name, params, args) .name = gh_sqlite_##name,
    GH_STORE_OPS_STORE(GH_SQLITE_OP)
    GH_STORE_OPS(GH_SQLITE_OP)
#undef GH_SQLITE_OP
};
