/* Store functions for API keys, admin keys and the audit log (PostgreSQL backend): the port of
 * src/store/sqlite/keys.c, with the same results, error codes and list order. */
#include <stdio.h>
#include <string.h>

#include "store/postgres/pg_array.h"
#include "store/postgres/pg_int.h"

#define KEY_COLS                                                                             \
    "t.id, t.kind, t.org_id, coalesce(t.workspace_id, ''), t.name, t.hint, t.status, "       \
    "t.created_by_type, t.created_by_id, " GH_PGS_EPOCH("t.created_at") ", "                  \
    GH_PGS_EPOCH("t.last_used_at") ""

static void key_row(const PGresult *res, int row, void *out)
{
    gh_key_rec_t *k = out;
    memset(k, 0, sizeof(*k));
    GH_PGS_COPY(res, row, 0, k->id);
    GH_PGS_COPY(res, row, 1, k->kind);
    GH_PGS_COPY(res, row, 2, k->org_id);
    GH_PGS_COPY(res, row, 3, k->workspace_id);
    GH_PGS_COPY(res, row, 4, k->name);
    GH_PGS_COPY(res, row, 5, k->hint);
    GH_PGS_COPY(res, row, 6, k->status);
    GH_PGS_COPY(res, row, 7, k->created_by_type);
    GH_PGS_COPY(res, row, 8, k->created_by_id);
    k->created_at = gh_pgs_col_i64(res, row, 9);
    k->last_used_at = gh_pgs_col_i64(res, row, 10);
}

typedef struct {
    gh_store_key_fn fn;
    void *ctx;
} key_list_t;

static void key_list_row(void *p, const PGresult *res, int row)
{
    key_list_t *l = p;
    gh_key_rec_t k;
    key_row(res, row, &k);
    l->fn(l->ctx, &k);
}

gh_err_t gh_pgs_keys_list(gh_db_t *db, const char *org_id, const gh_key_filter_t *f,
                          const gh_page_t *page, gh_store_key_fn fn, void *ctx, bool *has_more)
{
    char where[1024];
    const char *args[8];
    int n = 0;
    size_t w = (size_t)snprintf(where, sizeof(where), "FROM keys t WHERE t.org_id = $1");
    args[n++] = org_id;
    const struct {
        const char *value, *column;
    } eq[] = {
        {f->kind, "t.kind"},
        {f->workspace_id, "t.workspace_id"},
        {f->status, "t.status"},
        {f->created_by_id, "t.created_by_id"},
    };
    for (size_t i = 0; i < sizeof(eq) / sizeof(eq[0]); i++) {
        if (!eq[i].value || w >= sizeof(where))
            continue;
        args[n++] = eq[i].value;
        w += (size_t)snprintf(where + w, sizeof(where) - w, " AND %s = $%d", eq[i].column, n);
    }
    if (f->access_account_id && w < sizeof(where)) {
        /* Only workspaces where this account may manage keys: for an organization developer
         * the Default workspace and every workspace it belongs to; otherwise those where it is
         * a workspace developer or workspace admin. */
        args[n++] = f->access_account_id;
        w += (size_t)snprintf(
            where + w, sizeof(where) - w,
            f->access_developer
                ? " AND (t.workspace_id IN (SELECT d.id FROM workspaces d WHERE d.org_id = "
                  "t.org_id AND d.is_default) OR t.workspace_id IN (SELECT m.workspace_id "
                  "FROM workspace_members m WHERE m.account_id = $%d))"
                : " AND t.workspace_id IN (SELECT m.workspace_id FROM workspace_members m WHERE "
                  "m.account_id = $%d AND m.role IN ('workspace_developer', 'workspace_admin'))",
            n);
    }
    if (w >= sizeof(where))
        return GH_EINTERNAL;
    key_list_t l = {fn, ctx};
    return gh_pgs_page(db, KEY_COLS, where, "t.id", args, n, page, false, key_list_row, &l,
                       has_more);
}

gh_err_t gh_pgs_key_get(gh_db_t *db, const char *org_id, const char *kind, const char *id,
                        gh_key_rec_t *out)
{
    static const char sql[] =
        "SELECT " KEY_COLS " FROM keys t WHERE t.org_id = $1 AND t.kind = $2 AND t.id = $3";
    const char *p[] = {org_id, kind, id};
    return gh_pgs_one(db, sql, 3, p, key_row, out);
}

gh_err_t gh_pgs_key_by_hash(gh_db_t *db, const char *key_hash, gh_key_rec_t *out)
{
    static const char sql[] = "SELECT " KEY_COLS " FROM keys t WHERE t.key_hash = $1";
    const char *p[] = {key_hash};
    return gh_pgs_one(db, sql, 1, p, key_row, out);
}

gh_err_t gh_pgs_key_insert(gh_db_t *db, const gh_key_rec_t *k, const char *key_hash)
{
    static const char sql[] =
        "INSERT INTO keys (id, kind, org_id, workspace_id, name, key_hash, hint, status, "
        "created_by_type, created_by_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "$9, $10, " GH_PGS_TIME_IN("$11") ")";
    gh_pgs_num_t b_at;
    const char *p[] = {k->id,
                       k->kind,
                       k->org_id,
                       k->workspace_id[0] ? k->workspace_id : NULL, /* "" is NULL */
                       k->name,
                       key_hash,
                       k->hint,
                       k->status,
                       k->created_by_type,
                       k->created_by_id,
                       gh_pgs_i64(&b_at, k->created_at)};
    return gh_pgs_exec(db, sql, 11, p);
}

gh_err_t gh_pgs_key_update(gh_db_t *db, const char *id, const char *name, const char *status)
{
    static const char sql[] = "UPDATE keys SET name = $1, status = $2 WHERE id = $3";
    const char *p[] = {name, status, id};
    return gh_pgs_exec(db, sql, 3, p);
}

gh_err_t gh_pgs_key_touch(gh_db_t *db, const char *id, int64_t now)
{
    static const char sql[] = "UPDATE keys SET last_used_at = " GH_PGS_TIME_IN("$1") " WHERE id = $2";
    gh_pgs_num_t b_now;
    const char *p[] = {gh_pgs_i64(&b_now, now), id};
    return gh_pgs_exec(db, sql, 2, p);
}

gh_err_t gh_pgs_keys_touch(gh_db_t *db, const char *const *ids, const int64_t *at_s, size_t n)
{
    /* One statement for the whole batch: the ids and times as two binary arrays. */
    static const char sql[] =
        "UPDATE keys k SET last_used_at = " GH_PGS_TIME_IN("v.t") " FROM unnest($1::text[], "
        "$2::bigint[]) AS v(id, t) WHERE k.id = v.id";
    if (n == 0)
        return GH_OK;
    gh_pg_array_t a[2];
    gh_pg_array_init_binary(&a[0], n * 1024 + 64, GH_PG_OID_TEXT);
    gh_pg_array_init_binary(&a[1], n * 12 + 64, GH_PG_OID_INT8);
    gh_err_t rc = GH_OK;
    for (size_t i = 0; i < n && !rc; i++)
        if (!(rc = gh_pg_array_text(&a[0], ids[i])))
            rc = gh_pg_array_int(&a[1], at_s[i]);
    const char *p[2];
    int lens[2];
    if (!rc && (!(p[0] = gh_pg_array_binary(&a[0], &lens[0])) ||
                !(p[1] = gh_pg_array_binary(&a[1], &lens[1]))))
        rc = GH_EINTERNAL;
    if (!rc)
        rc = gh_pgs_query_binary(db, sql, 2, p, lens, NULL);
    gh_pg_array_free(&a[0]);
    gh_pg_array_free(&a[1]);
    return rc;
}

gh_err_t gh_pgs_key_set_secret(gh_db_t *db, const char *id, const char *key_hash,
                               const char *hint)
{
    static const char sql[] = "UPDATE keys SET key_hash = $1, hint = $2 WHERE id = $3";
    const char *p[] = {key_hash, hint, id};
    gh_err_t rc = gh_pgs_exec(db, sql, 3, p);
    return !rc && gh_pgs_changes(db) == 0 ? GH_ENOTFOUND : rc;
}

static void key_id_row(const PGresult *res, int row, void *out)
{
    gh_pgs_col_text(res, row, 0, out, GH_ID_MAX);
}

gh_err_t gh_pgs_workbench_key_get(gh_db_t *db, const char *workspace_id, char key_id[GH_ID_MAX])
{
    static const char sql[] = "SELECT key_id FROM workbench_keys WHERE workspace_id = $1";
    const char *p[] = {workspace_id};
    return gh_pgs_one(db, sql, 1, p, key_id_row, key_id);
}

gh_err_t gh_pgs_workbench_key_set(gh_db_t *db, const char *workspace_id, const char *key_id)
{
    static const char sql[] = "INSERT INTO workbench_keys (workspace_id, key_id) VALUES ($1, $2) "
                              "ON CONFLICT (workspace_id) DO UPDATE SET key_id = excluded.key_id";
    const char *p[] = {workspace_id, key_id};
    return gh_pgs_exec(db, sql, 2, p);
}

gh_err_t gh_pgs_keys_with_hash(gh_db_t *db, const char *workspace_id, const char *key_id,
                               gh_store_key_hash_fn fn, void *ctx)
{
    /* In insertion order, as SQLite's scan of keys gives them. */
    static const char sql[] =
        "SELECT " KEY_COLS ", t.key_hash, (w.archived_at IS NOT NULL)::int FROM keys t "
        "JOIN workspaces w ON w.id = t.workspace_id WHERE t.kind = 'api' "
        "AND ($1::text IS NULL OR t.workspace_id = $1) AND ($2::text IS NULL OR t.id = $2) "
        "ORDER BY t.seq";
    const char *p[] = {workspace_id, key_id};
    PGresult *res;
    gh_err_t rc = gh_pgs_query(db, sql, 2, p, &res);
    if (rc)
        return rc;
    for (int i = 0, rows = PQntuples(res); i < rows; i++) {
        gh_key_rec_t k;
        key_row(res, i, &k);
        char hash[GH_SHA256_HEX_MAX];
        GH_PGS_COPY(res, i, 11, hash);
        if (gh_pgs_col_i64(res, i, 12))
            snprintf(k.status, sizeof(k.status), "archived");
        fn(ctx, &k, hash);
    }
    PQclear(res);
    return GH_OK;
}

/* ---- audit log ---- */

#define AUDIT_COLS                                                                        \
    "t.id, t.org_id, " GH_PGS_EPOCH("t.created_at") ", t.actor_type, t.actor_id, "        \
    "t.actor_label, t.action, t.target_type, t.target_id, t.details, t.ip"

gh_err_t gh_pgs_audit_insert(gh_db_t *db, const gh_audit_event_t *e)
{
    static const char sql[] = "INSERT INTO audit_log (id, org_id, created_at, actor_type, "
                              "actor_id, actor_label, action, target_type, target_id, details, "
                              "ip) VALUES ($1, $2, " GH_PGS_TIME_IN("$3") ", $4, $5, $6, $7, $8, "
                              "$9, $10, $11)";
    gh_pgs_num_t b_at;
    /* The record's arrays are never NULL; "" stays "" as in SQLite. */
    const char *p[] = {e->id,         e->org_id,    gh_pgs_i64(&b_at, e->created_at),
                       e->actor_type, e->actor_id,  e->actor_label,
                       e->action,     e->target_type, e->target_id,
                       e->details,    e->ip};
    return gh_pgs_exec(db, sql, 11, p);
}

typedef struct {
    gh_store_audit_fn fn;
    void *ctx;
} audit_list_t;

static void audit_list_row(void *p, const PGresult *res, int row)
{
    audit_list_t *l = p;
    gh_audit_event_t e;
    memset(&e, 0, sizeof(e));
    GH_PGS_COPY(res, row, 0, e.id);
    GH_PGS_COPY(res, row, 1, e.org_id);
    e.created_at = gh_pgs_col_i64(res, row, 2);
    GH_PGS_COPY(res, row, 3, e.actor_type);
    GH_PGS_COPY(res, row, 4, e.actor_id);
    GH_PGS_COPY(res, row, 5, e.actor_label);
    GH_PGS_COPY(res, row, 6, e.action);
    GH_PGS_COPY(res, row, 7, e.target_type);
    GH_PGS_COPY(res, row, 8, e.target_id);
    GH_PGS_COPY(res, row, 9, e.details);
    GH_PGS_COPY(res, row, 10, e.ip);
    l->fn(l->ctx, &e);
}

gh_err_t gh_pgs_audit_list(gh_db_t *db, const char *org_id, const char *actor_id,
                           const char *action, const gh_page_t *page, gh_store_audit_fn fn,
                           void *ctx, bool *has_more)
{
    char where[256];
    const char *args[3];
    int n = 0;
    args[n++] = org_id;
    size_t w = (size_t)snprintf(where, sizeof(where), "FROM audit_log t WHERE t.org_id = $1");
    if (actor_id) {
        args[n++] = actor_id;
        w += (size_t)snprintf(where + w, sizeof(where) - w, " AND t.actor_id = $%d", n);
    }
    if (action && w < sizeof(where)) {
        args[n++] = action;
        w += (size_t)snprintf(where + w, sizeof(where) - w, " AND t.action = $%d", n);
    }
    if (w >= sizeof(where))
        return GH_EINTERNAL;
    audit_list_t l = {fn, ctx};
    return gh_pgs_page(db, AUDIT_COLS, where, "t.id", args, n, page, true, audit_list_row, &l,
                       has_more);
}
