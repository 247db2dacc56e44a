/* The SQLite backend of the store interface (src/store/store.h).
 *
 * One connection per thread, opened lazily and registered so gh_store_close can close them
 * all. Each connection keeps its prepared statements in a small cache keyed by the address of
 * the static SQL string, so a hot statement is compiled once per thread. WAL mode lets the
 * control plane's readers run beside the writer; BEGIN IMMEDIATE takes the write lock up
 * front, and busy_timeout makes concurrent writers queue instead of failing. */
#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/embed.h"
#include "lib/log.h"
#include "store/store.h"

#define STMT_CACHE 64

struct gh_db {
    sqlite3 *conn;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE];
    int depth;     /* transaction nesting: 0 none, 1 BEGIN, more are SAVEPOINTs */
    gh_db_t *next; /* registry of every thread's connection */
};

struct gh_store {
    char *path;
    pthread_key_t key;
    pthread_mutex_t lock; /* guards `all` */
    gh_db_t *all;
};

static void db_free(gh_db_t *db)
{
    for (int i = 0; i < STMT_CACHE; i++)
        if (db->cache[i].stmt)
            sqlite3_finalize(db->cache[i].stmt);
    sqlite3_close(db->conn);
    free(db);
}

static gh_db_t *db_open(const char *path)
{
    gh_db_t *db = calloc(1, sizeof(*db));
    if (!db)
        return NULL;
    int rc = sqlite3_open_v2(path, &db->conn,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        gh_log_error("store: cannot open %s: %s", path,
                     db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
        goto out_free;
    }
    sqlite3_busy_timeout(db->conn, 10000);
    sqlite3_extended_result_codes(db->conn, 1);
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

gh_db_t *gh_store_db(gh_store_t *store)
{
    gh_db_t *db = pthread_getspecific(store->key);
    if (db)
        return db;
    db = db_open(store->path);
    if (!db)
        return NULL;
    pthread_setspecific(store->key, db);
    pthread_mutex_lock(&store->lock);
    db->next = store->all;
    store->all = db;
    pthread_mutex_unlock(&store->lock);
    return db;
}

gh_err_t gh_store_open(gh_store_t **out, const char *path, char *err, size_t err_size)
{
    gh_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return GH_ENOMEM;
    s->path = strdup(path);
    if (!s->path || pthread_key_create(&s->key, NULL)) {
        free(s->path);
        free(s);
        return GH_ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    gh_db_t *db = gh_store_db(s);
    if (!db) {
        snprintf(err, err_size, "cannot open the database %s (see the log above)", path);
        gh_store_close(s);
        return GH_ESTORE;
    }
    gh_err_t rc = gh_store_migrate(db, NULL, err, err_size);
    if (rc) {
        gh_store_close(s);
        return rc;
    }
    *out = s;
    return GH_OK;
}

void gh_store_close(gh_store_t *store)
{
    if (!store)
        return;
    gh_db_t *db = store->all;
    while (db) {
        gh_db_t *next = db->next;
        db_free(db);
        db = next;
    }
    pthread_key_delete(store->key);
    pthread_mutex_destroy(&store->lock);
    free(store->path);
    free(store);
}

/* The cached statement for `sql` (a string with static storage), reset and unbound. */
static sqlite3_stmt *stmt(gh_db_t *db, const char *sql)
{
    int free_slot = -1;
    for (int i = 0; i < STMT_CACHE; i++) {
        if (db->cache[i].sql == sql) {
            sqlite3_stmt *st = db->cache[i].stmt;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
        if (!db->cache[i].sql && free_slot < 0)
            free_slot = i;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
        SQLITE_OK) {
        gh_log_error("store: prepare failed: %s", sqlite3_errmsg(db->conn));
        return NULL;
    }
    assert(free_slot >= 0 && "raise STMT_CACHE");
    if (free_slot < 0) {
        sqlite3_finalize(st);
        return NULL;
    }
    db->cache[free_slot].sql = sql;
    db->cache[free_slot].stmt = st;
    return st;
}

static gh_err_t step_err(gh_db_t *db, int rc)
{
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return GH_ECONFLICT;
    if ((rc & 0xff) == SQLITE_BUSY)
        return GH_EUNAVAIL;
    gh_log_error("store: %s", sqlite3_errmsg(db->conn));
    return GH_ESTORE;
}

/* Runs a statement that returns no rows. */
static gh_err_t exec_stmt(gh_db_t *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    gh_err_t err = rc == SQLITE_DONE ? GH_OK : step_err(db, rc);
    sqlite3_reset(st);
    return err;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void col_text(sqlite3_stmt *st, int i, char *out, size_t size)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    if (!v) {
        out[0] = '\0';
        return;
    }
    snprintf(out, size, "%s", (const char *)v);
}

#define COPY(st, i, field) col_text((st), (i), (field), sizeof(field))

/* Transactions nest: the outermost is BEGIN IMMEDIATE, inner ones are savepoints, so a store
 * function that wraps its own rows in a transaction can also run inside a caller's. */
static int tx_exec(gh_db_t *db, const char *verb, int level)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "%s gh_sp%d", verb, level);
    return sqlite3_exec(db->conn, sql, NULL, NULL, NULL);
}

gh_err_t gh_store_begin(gh_db_t *db)
{
    int rc = db->depth == 0 ? sqlite3_exec(db->conn, "BEGIN IMMEDIATE", NULL, NULL, NULL)
                            : tx_exec(db, "SAVEPOINT", db->depth);
    if (rc != SQLITE_OK)
        return step_err(db, rc);
    db->depth++;
    return GH_OK;
}

gh_err_t gh_store_commit(gh_db_t *db)
{
    assert(db->depth > 0);
    int rc = db->depth == 1 ? sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL)
                            : tx_exec(db, "RELEASE", db->depth - 1);
    if (rc == SQLITE_OK) {
        db->depth--;
        return GH_OK;
    }
    gh_err_t err = step_err(db, rc);
    gh_store_rollback(db);
    return err;
}

void gh_store_rollback(gh_db_t *db)
{
    if (db->depth == 0)
        return;
    if (db->depth == 1) {
        if (!sqlite3_get_autocommit(db->conn))
            sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    } else {
        tx_exec(db, "ROLLBACK TO", db->depth - 1);
        tx_exec(db, "RELEASE", db->depth - 1);
    }
    db->depth--;
}

/* ---- migrations ---- */

int gh_store_schema_version(gh_db_t *db)
{
    static const char sql[] = "SELECT coalesce(max(version), 0) FROM schema_migrations";
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) == SQLITE_OK &&
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

gh_err_t gh_store_migrate(gh_db_t *db, int *applied, char *err, size_t err_size)
{
    int n = 0;
    char *msg = NULL;
    if (sqlite3_exec(db->conn,
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
        sqlite3_prepare_v2(db->conn, "SELECT sha256 FROM schema_migrations WHERE version = ?",
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

        gh_err_t e = gh_store_begin(db);
        if (e) {
            snprintf(err, err_size, "migration %s: cannot begin: %s", m->name + 1,
                     sqlite3_errmsg(db->conn));
            return e;
        }
        if (sqlite3_exec(db->conn, (const char *)m->data, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, err_size, "migration %s failed: %s", m->name + 1, msg ? msg : "?");
            sqlite3_free(msg);
            gh_store_rollback(db);
            return GH_ESTORE;
        }
        sqlite3_prepare_v2(db->conn,
                           "INSERT INTO schema_migrations (version, name, sha256, applied_at)"
                           " VALUES (?, ?, ?, unixepoch())",
                           -1, &st, NULL);
        sqlite3_bind_int(st, 1, version);
        sqlite3_bind_text(st, 2, m->name + 1, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, sum, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE || gh_store_commit(db)) {
            snprintf(err, err_size, "migration %s: cannot record: %s", m->name + 1,
                     sqlite3_errmsg(db->conn));
            gh_store_rollback(db);
            return GH_ESTORE;
        }
        gh_log_info("store: applied migration %s", m->name + 1);
        n++;
    }
    if (applied)
        *applied = n;
    return GH_OK;
}

/* ---- sign-in links ---- */

gh_err_t gh_store_link_insert(gh_db_t *db, const char *token_hash, const char *email,
                              const char *ip, int64_t now, int64_t expires_at)
{
    static const char sql[] = "INSERT INTO login_links (token_hash, email, created_at, "
                              "expires_at, request_ip) VALUES (?, ?, ?, ?, ?)";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, expires_at);
    sqlite3_bind_text(st, 5, ip, -1, SQLITE_STATIC);
    return exec_stmt(db, st);
}

gh_err_t gh_store_link_consume(gh_db_t *db, const char *token_hash, int64_t now,
                               char email_out[GH_EMAIL_MAX])
{
    static const char sel[] =
        "SELECT email, expires_at, used_at FROM login_links WHERE token_hash = ?";
    static const char upd[] =
        "UPDATE login_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL";
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *st = stmt(db, sel);
    if (!st) {
        rc = GH_ESTORE;
        goto out_rollback;
    }
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? GH_ENOTFOUND : step_err(db, step);
        sqlite3_reset(st);
        goto out_rollback;
    }
    col_text(st, 0, email_out, GH_EMAIL_MAX);
    int64_t expires_at = sqlite3_column_int64(st, 1);
    bool used = sqlite3_column_type(st, 2) != SQLITE_NULL;
    sqlite3_reset(st);
    if (used) {
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    if (now >= expires_at) {
        rc = GH_EEXPIRED;
        goto out_rollback;
    }
    st = stmt(db, upd);
    if (!st) {
        rc = GH_ESTORE;
        goto out_rollback;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, token_hash, -1, SQLITE_STATIC);
    rc = exec_stmt(db, st);
    if (rc)
        goto out_rollback;
    return gh_store_commit(db);
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* ---- accounts ---- */

#define ACCOUNT_COLS                                                                       \
    "id, email, full_name, coalesce(age_confirmed_at, 0), coalesce(terms_accepted_at, 0), " \
    "terms_version, created_at"

static gh_err_t account_row(gh_db_t *db, sqlite3_stmt *st, gh_account_t *a)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : step_err(db, rc);
    }
    memset(a, 0, sizeof(*a));
    COPY(st, 0, a->id);
    COPY(st, 1, a->email);
    COPY(st, 2, a->full_name);
    a->age_confirmed_at = sqlite3_column_int64(st, 3);
    a->terms_accepted_at = sqlite3_column_int64(st, 4);
    COPY(st, 5, a->terms_version);
    a->created_at = sqlite3_column_int64(st, 6);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_store_account_get(gh_db_t *db, const char *id, gh_account_t *out)
{
    static const char sql[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return account_row(db, st, out);
}

gh_err_t gh_store_account_by_email(gh_db_t *db, const char *email, gh_account_t *out)
{
    static const char sql[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE email = ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
    return account_row(db, st, out);
}

gh_err_t gh_store_account_insert(gh_db_t *db, const gh_account_t *a)
{
    static const char sql[] = "INSERT INTO accounts (id, email, created_at) VALUES (?, ?, ?)";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, a->created_at);
    return exec_stmt(db, st);
}

gh_err_t gh_store_account_onboard(gh_db_t *db, const char *id, const char *full_name,
                                  const char *terms_version, int64_t now)
{
    static const char sql[] = "UPDATE accounts SET full_name = ?, age_confirmed_at = ?, "
                              "terms_accepted_at = ?, terms_version = ? WHERE id = ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, full_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_text(st, 4, terms_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    gh_err_t rc = exec_stmt(db, st);
    if (!rc && sqlite3_changes(db->conn) == 0)
        rc = GH_ENOTFOUND;
    return rc;
}

/* ---- sessions ---- */

gh_err_t gh_store_session_insert(gh_db_t *db, const gh_session_t *s, const char *ip,
                                 const char *user_agent)
{
    static const char sql[] =
        "INSERT INTO sessions (id_hash, account_id, csrf_token, current_org_id, created_at, "
        "expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, s->id_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->account_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->csrf_token, -1, SQLITE_STATIC);
    bind_text(st, 4, s->current_org_id);
    sqlite3_bind_int64(st, 5, s->created_at);
    sqlite3_bind_int64(st, 6, s->expires_at);
    sqlite3_bind_text(st, 7, ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, user_agent, -1, SQLITE_STATIC);
    return exec_stmt(db, st);
}

gh_err_t gh_store_session_get(gh_db_t *db, const char *id_hash, int64_t now, gh_session_t *out)
{
    static const char sql[] =
        "SELECT id_hash, account_id, csrf_token, current_org_id, created_at, expires_at "
        "FROM sessions WHERE id_hash = ? AND revoked_at IS NULL AND expires_at > ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, id_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : step_err(db, rc);
    }
    memset(out, 0, sizeof(*out));
    COPY(st, 0, out->id_hash);
    COPY(st, 1, out->account_id);
    COPY(st, 2, out->csrf_token);
    COPY(st, 3, out->current_org_id);
    out->created_at = sqlite3_column_int64(st, 4);
    out->expires_at = sqlite3_column_int64(st, 5);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_store_session_set_org(gh_db_t *db, const char *id_hash, const char *org_id)
{
    static const char sql[] = "UPDATE sessions SET current_org_id = ? WHERE id_hash = ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    bind_text(st, 1, org_id);
    sqlite3_bind_text(st, 2, id_hash, -1, SQLITE_STATIC);
    return exec_stmt(db, st);
}

gh_err_t gh_store_session_revoke(gh_db_t *db, const char *id_hash, int64_t now)
{
    static const char sql[] =
        "UPDATE sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, id_hash, -1, SQLITE_STATIC);
    return exec_stmt(db, st);
}

/* ---- organizations ---- */

gh_err_t gh_store_org_create(gh_db_t *db, const char *org_id, const char *name,
                             const char *account_id, const char *workspace_id,
                             const char *workspace_color, int64_t now)
{
    static const char ins_org[] =
        "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)";
    static const char ins_member[] = "INSERT INTO memberships (org_id, account_id, role, "
                                     "created_at) VALUES (?, ?, 'admin', ?)";
    static const char ins_ws[] = "INSERT INTO workspaces (id, org_id, name, display_color, "
                                 "is_default, created_at) VALUES (?, ?, 'Default', ?, 1, ?)";
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *st = stmt(db, ins_org);
    if (!st)
        goto out_store;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = exec_stmt(db, st)))
        goto out_rollback;

    if (!(st = stmt(db, ins_member)))
        goto out_store;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, account_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = exec_stmt(db, st)))
        goto out_rollback;

    if (!(st = stmt(db, ins_ws)))
        goto out_store;
    sqlite3_bind_text(st, 1, workspace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, workspace_color, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    if ((rc = exec_stmt(db, st)))
        goto out_rollback;
    return gh_store_commit(db);
out_store:
    rc = GH_ESTORE;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_store_memberships(gh_db_t *db, const char *account_id, gh_store_membership_fn fn,
                              void *ctx)
{
    static const char sql[] = "SELECT o.id, o.name, m.role FROM memberships m "
                              "JOIN organizations o ON o.id = m.org_id "
                              "WHERE m.account_id = ? ORDER BY m.created_at, o.id";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_membership_t m;
        COPY(st, 0, m.org_id);
        COPY(st, 1, m.org_name);
        COPY(st, 2, m.role);
        fn(ctx, &m);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : step_err(db, rc);
}

gh_err_t gh_store_membership_get(gh_db_t *db, const char *org_id, const char *account_id,
                                 gh_membership_t *out)
{
    static const char sql[] = "SELECT o.id, o.name, m.role FROM memberships m "
                              "JOIN organizations o ON o.id = m.org_id "
                              "WHERE m.org_id = ? AND m.account_id = ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, account_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : step_err(db, rc);
    }
    COPY(st, 0, out->org_id);
    COPY(st, 1, out->org_name);
    COPY(st, 2, out->role);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_store_membership_count(gh_db_t *db, const char *account_id, int *count)
{
    static const char sql[] = "SELECT count(*) FROM memberships WHERE account_id = ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? GH_OK : step_err(db, rc);
}

gh_err_t gh_store_org_settings_get(gh_db_t *db, const char *org_id, gh_org_settings_t *out)
{
    static const char sql[] =
        "SELECT id, name, legal_name, billing_email, address_line1, address_line2, city, "
        "postal_code, state, country, vat_id, created_at, coalesce(updated_at, 0) "
        "FROM organizations WHERE id = ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : step_err(db, rc);
    }
    memset(out, 0, sizeof(*out));
    COPY(st, 0, out->id);
    COPY(st, 1, out->name);
    COPY(st, 2, out->legal_name);
    COPY(st, 3, out->billing_email);
    COPY(st, 4, out->line1);
    COPY(st, 5, out->line2);
    COPY(st, 6, out->city);
    COPY(st, 7, out->postal_code);
    COPY(st, 8, out->state);
    COPY(st, 9, out->country);
    COPY(st, 10, out->vat_id);
    out->created_at = sqlite3_column_int64(st, 11);
    out->updated_at = sqlite3_column_int64(st, 12);
    sqlite3_reset(st);
    return GH_OK;
}

gh_err_t gh_store_org_settings_put(gh_db_t *db, const gh_org_settings_t *s)
{
    static const char sql[] =
        "UPDATE organizations SET name = ?, legal_name = ?, billing_email = ?, "
        "address_line1 = ?, address_line2 = ?, city = ?, postal_code = ?, state = ?, "
        "country = ?, vat_id = ?, updated_at = ? WHERE id = ?";
    sqlite3_stmt *st = stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    bind_text(st, 2, s->legal_name);
    bind_text(st, 3, s->billing_email);
    bind_text(st, 4, s->line1);
    bind_text(st, 5, s->line2);
    bind_text(st, 6, s->city);
    bind_text(st, 7, s->postal_code);
    bind_text(st, 8, s->state);
    bind_text(st, 9, s->country);
    bind_text(st, 10, s->vat_id);
    sqlite3_bind_int64(st, 11, s->updated_at);
    sqlite3_bind_text(st, 12, s->id, -1, SQLITE_STATIC);
    gh_err_t rc = exec_stmt(db, st);
    if (!rc && sqlite3_changes(db->conn) == 0)
        rc = GH_ENOTFOUND;
    return rc;
}
