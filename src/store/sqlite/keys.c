/* Store functions for API keys, admin keys and the audit log (SQLite backend). */
#include <stdio.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

#define KEY_COLS                                                                             \
    "t.id, t.kind, t.org_id, coalesce(t.workspace_id, ''), t.name, t.hint, t.status, "       \
    "t.created_by_type, t.created_by_id, t.created_at, coalesce(t.last_used_at, 0)"

static void key_row(sqlite3_stmt *st, void *out)
{
    gh_key_rec_t *k = out;
    memset(k, 0, sizeof(*k));
    COPY(st, 0, k->id);
    COPY(st, 1, k->kind);
    COPY(st, 2, k->org_id);
    COPY(st, 3, k->workspace_id);
    COPY(st, 4, k->name);
    COPY(st, 5, k->hint);
    COPY(st, 6, k->status);
    COPY(st, 7, k->created_by_type);
    COPY(st, 8, k->created_by_id);
    k->created_at = sqlite3_column_int64(st, 9);
    k->last_used_at = sqlite3_column_int64(st, 10);
}

typedef struct {
    gh_store_key_fn fn;
    void *ctx;
} key_list_t;

static void key_list_row(void *p, sqlite3_stmt *st)
{
    key_list_t *l = p;
    gh_key_rec_t k;
    key_row(st, &k);
    l->fn(l->ctx, &k);
}

gh_err_t gh_sqlite_keys_list(gh_db_t *db, const char *org_id, const gh_key_filter_t *f,
                             const gh_page_t *page, gh_store_key_fn fn, void *ctx,
                             bool *has_more)
{
    char where[1024];
    gh_sqlite_arg_t args[GH_SQLITE_ARGS_MAX];
    int n = 0;
    size_t w = (size_t)snprintf(where, sizeof(where), "FROM keys t WHERE t.org_id = ?");
    args[n++] = GH_ARG_TEXT(org_id);
    const struct {
        const char *value, *clause;
    } eq[] = {
        {f->kind, " AND t.kind = ?"},
        {f->workspace_id, " AND t.workspace_id = ?"},
        {f->status, " AND t.status = ?"},
        {f->created_by_id, " AND t.created_by_id = ?"},
    };
    for (size_t i = 0; i < sizeof(eq) / sizeof(eq[0]); i++) {
        if (!eq[i].value)
            continue;
        w += (size_t)snprintf(where + w, sizeof(where) - w, "%s", eq[i].clause);
        args[n++] = GH_ARG_TEXT(eq[i].value);
    }
    if (f->access_account_id) {
        /* Only workspaces where this account may manage keys: for an organization developer
         * the Default workspace and every workspace it belongs to; otherwise those where it is
         * a workspace developer or workspace admin. */
        w += (size_t)snprintf(
            where + w, sizeof(where) - w, "%s",
            f->access_developer
                ? " AND (t.workspace_id IN (SELECT d.id FROM workspaces d WHERE d.org_id = "
                  "t.org_id AND d.is_default = 1) OR t.workspace_id IN (SELECT m.workspace_id "
                  "FROM workspace_members m WHERE m.account_id = ?))"
                : " AND t.workspace_id IN (SELECT m.workspace_id FROM workspace_members m WHERE "
                  "m.account_id = ? AND m.role IN ('workspace_developer', 'workspace_admin'))");
        args[n++] = GH_ARG_TEXT(f->access_account_id);
    }
    if (w >= sizeof(where))
        return GH_EINTERNAL;
    key_list_t l = {fn, ctx};
    return gh_sqlite_page(db, KEY_COLS, where, "t.id", args, n, page, false, key_list_row, &l,
                          has_more);
}

gh_err_t gh_sqlite_key_get(gh_db_t *db, const char *org_id, const char *kind, const char *id,
                           gh_key_rec_t *out)
{
    static const char sql[] =
        "SELECT " KEY_COLS " FROM keys t WHERE t.org_id = ? AND t.kind = ? AND t.id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    return gh_sqlite_one(db, st, key_row, out);
}

gh_err_t gh_sqlite_key_by_hash(gh_db_t *db, const char *key_hash, gh_key_rec_t *out)
{
    static const char sql[] = "SELECT " KEY_COLS " FROM keys t WHERE t.key_hash = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, key_hash, -1, SQLITE_STATIC);
    return gh_sqlite_one(db, st, key_row, out);
}

gh_err_t gh_sqlite_key_insert(gh_db_t *db, const gh_key_rec_t *k, const char *key_hash)
{
    static const char sql[] =
        "INSERT INTO keys (id, kind, org_id, workspace_id, name, key_hash, hint, status, "
        "created_by_type, created_by_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, k->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->org_id, -1, SQLITE_STATIC);
    gh_sqlite_bind_text(st, 4, k->workspace_id);
    sqlite3_bind_text(st, 5, k->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, key_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, k->hint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, k->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, k->created_by_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, k->created_by_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, k->created_at);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_key_update(gh_db_t *db, const char *id, const char *name, const char *status)
{
    static const char sql[] = "UPDATE keys SET name = ?, status = ? WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_key_touch(gh_db_t *db, const char *id, int64_t now)
{
    static const char sql[] = "UPDATE keys SET last_used_at = ? WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_keys_touch(gh_db_t *db, const char *const *ids, const int64_t *at_s,
                              size_t n)
{
    /* SQLite runs in the writer's process: one prepared statement per key costs no more
     * than one for all. */
    gh_err_t rc = GH_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = gh_sqlite_key_touch(db, ids[i], at_s[i]);
    return rc;
}

gh_err_t gh_sqlite_key_set_secret(gh_db_t *db, const char *id, const char *key_hash,
                                  const char *hint)
{
    static const char sql[] = "UPDATE keys SET key_hash = ?, hint = ? WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, key_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    return gh_sqlite_exec_one(db, st);
}

gh_err_t gh_sqlite_workbench_key_get(gh_db_t *db, const char *workspace_id,
                                     char key_id[GH_ID_MAX])
{
    static const char sql[] = "SELECT key_id FROM workbench_keys WHERE workspace_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, workspace_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    gh_err_t out = GH_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        snprintf(key_id, GH_ID_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
        out = GH_OK;
    } else if (rc != SQLITE_DONE) {
        out = gh_sqlite_step_err(db, rc);
    }
    sqlite3_reset(st);
    return out;
}

gh_err_t gh_sqlite_workbench_key_set(gh_db_t *db, const char *workspace_id, const char *key_id)
{
    static const char sql[] = "INSERT INTO workbench_keys (workspace_id, key_id) VALUES (?, ?) "
                              "ON CONFLICT (workspace_id) DO UPDATE SET key_id = excluded.key_id";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_text(st, 1, workspace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key_id, -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_keys_with_hash(gh_db_t *db, const char *workspace_id, const char *key_id,
                                  gh_store_key_hash_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT " KEY_COLS ", t.key_hash, w.archived_at IS NOT NULL FROM keys t "
        "JOIN workspaces w ON w.id = t.workspace_id WHERE t.kind = 'api' "
        "AND (?1 IS NULL OR t.workspace_id = ?1) AND (?2 IS NULL OR t.id = ?2)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_text(st, 1, workspace_id);
    gh_sqlite_bind_text(st, 2, key_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_key_rec_t k;
        key_row(st, &k);
        char hash[GH_SHA256_HEX_MAX];
        COPY(st, 11, hash);
        if (sqlite3_column_int(st, 12))
            snprintf(k.status, sizeof(k.status), "archived");
        fn(ctx, &k, hash);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

/* ---- audit log ---- */

#define AUDIT_COLS                                                                        \
    "t.id, t.org_id, t.created_at, t.actor_type, t.actor_id, t.actor_label, t.action, "  \
    "t.target_type, t.target_id, t.details, t.ip"

gh_err_t gh_sqlite_audit_insert(gh_db_t *db, const gh_audit_event_t *e)
{
    static const char sql[] = "INSERT INTO audit_log (id, org_id, created_at, actor_type, "
                              "actor_id, actor_label, action, target_type, target_id, details, "
                              "ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    const char *texts[] = {e->id, e->org_id};
    for (int i = 0; i < 2; i++)
        sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, e->created_at);
    const char *rest[] = {e->actor_type,  e->actor_id,  e->actor_label, e->action,
                          e->target_type, e->target_id, e->details,     e->ip};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_text(st, i + 4, rest[i], -1, SQLITE_STATIC);
    return gh_sqlite_exec(db, st);
}

typedef struct {
    gh_store_audit_fn fn;
    void *ctx;
} audit_list_t;

static void audit_list_row(void *p, sqlite3_stmt *st)
{
    audit_list_t *l = p;
    gh_audit_event_t e;
    memset(&e, 0, sizeof(e));
    COPY(st, 0, e.id);
    COPY(st, 1, e.org_id);
    e.created_at = sqlite3_column_int64(st, 2);
    COPY(st, 3, e.actor_type);
    COPY(st, 4, e.actor_id);
    COPY(st, 5, e.actor_label);
    COPY(st, 6, e.action);
    COPY(st, 7, e.target_type);
    COPY(st, 8, e.target_id);
    COPY(st, 9, e.details);
    COPY(st, 10, e.ip);
    l->fn(l->ctx, &e);
}

gh_err_t gh_sqlite_audit_list(gh_db_t *db, const char *org_id, const char *actor_id,
                              const char *action, const gh_page_t *page, gh_store_audit_fn fn,
                              void *ctx, bool *has_more)
{
    char where[256];
    gh_sqlite_arg_t args[3];
    int n = 0;
    args[n++] = GH_ARG_TEXT(org_id);
    snprintf(where, sizeof(where), "FROM audit_log t WHERE t.org_id = ?%s%s",
             actor_id ? " AND t.actor_id = ?" : "", action ? " AND t.action = ?" : "");
    if (actor_id)
        args[n++] = GH_ARG_TEXT(actor_id);
    if (action)
        args[n++] = GH_ARG_TEXT(action);
    audit_list_t l = {fn, ctx};
    return gh_sqlite_page(db, AUDIT_COLS, where, "t.id", args, n, page, true, audit_list_row, &l,
                          has_more);
}
