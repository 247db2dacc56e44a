/* Spend notifications and the HTML part of queued mail (store/notify.h), PostgreSQL backend:
 * a port of src/store/sqlite/notify.c with the same results and order; the tables are
 * migrations/0005_spend_notifications.sql. Times are timestamptz, read back as Unix seconds. */
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_array.h"
#include "store/postgres/pg_int.h"

#define NOTIF_COLS                                                                             \
    "n.id, n.org_id, n.kind, coalesce(n.amount_nusd, 0), coalesce(n.percent, 0), "            \
    GH_PGS_EPOCH("n.created_at") ", n.created_by, " GH_PGS_EPOCH("n.balance_notified_at")

static void notif_row(const PGresult *res, int row, void *out)
{
    gh_spend_notif_t *n = out;
    memset(n, 0, sizeof(*n));
    GH_PGS_COPY(res, row, 0, n->id);
    GH_PGS_COPY(res, row, 1, n->org_id);
    GH_PGS_COPY(res, row, 2, n->kind);
    n->amount_nusd = gh_pgs_col_i64(res, row, 3);
    n->percent = (int)gh_pgs_col_i64(res, row, 4);
    n->created_at = gh_pgs_col_i64(res, row, 5);
    GH_PGS_COPY(res, row, 6, n->created_by);
    n->notified_at = gh_pgs_col_i64(res, row, 7);
}

gh_err_t gh_pgs_spend_notif_list(gh_db_t *db, const char *org_id, int32_t month,
                                 gh_store_spend_notif_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT " NOTIF_COLS ", " GH_PGS_EPOCH("s.sent_at") " FROM spend_notifications n "
        "LEFT JOIN spend_notifications_sent s ON s.notification_id = n.id AND s.month = $2 "
        "WHERE n.org_id = $1 ORDER BY n.created_at, n.seq";
    gh_pgs_num_t m;
    const char *p[] = {org_id, gh_pgs_i64(&m, month)};
    PGresult *res;
    gh_err_t rc = gh_pgs_query(db, sql, 2, p, &res);
    if (rc)
        return rc;
    for (int r = 0, rows = PQntuples(res); r < rows; r++) {
        gh_spend_notif_t n;
        notif_row(res, r, &n);
        if (strcmp(n.kind, "balance_below"))
            n.notified_at = gh_pgs_col_i64(res, r, 8);
        fn(ctx, &n);
    }
    PQclear(res);
    return GH_OK;
}

static void count_row(const PGresult *res, int row, void *out)
{
    *(int64_t *)out = gh_pgs_col_i64(res, row, 0);
}

gh_err_t gh_pgs_spend_notif_count(gh_db_t *db, const char *org_id, int64_t *count)
{
    static const char sql[] = "SELECT count(*) FROM spend_notifications WHERE org_id = $1";
    const char *p[] = {org_id};
    *count = 0;
    return gh_pgs_one(db, sql, 1, p, count_row, count);
}

gh_err_t gh_pgs_spend_notif_any(gh_db_t *db, const char *const *org_ids, size_t n,
                                bool *has_rules)
{
    static const char sql[] =
        "SELECT DISTINCT org_id FROM spend_notifications WHERE org_id = ANY($1::text[])";
    for (size_t i = 0; i < n; i++)
        has_rules[i] = false;
    if (n == 0)
        return GH_OK;
    gh_pg_array_t ids;
    gh_pg_array_init(&ids, 96 * n + 64);
    bool bad = false;
    for (size_t i = 0; i < n; i++)
        bad |= gh_pg_array_text(&ids, org_ids[i]) != GH_OK;
    const char *p[1] = {bad ? NULL : gh_pg_array_literal(&ids)};
    gh_err_t rc = GH_EINTERNAL;
    PGresult *res = NULL;
    if (p[0] && !(rc = gh_pgs_query(db, sql, 1, p, &res))) {
        for (int r = 0; r < PQntuples(res); r++)
            for (size_t i = 0; i < n; i++)
                has_rules[i] |= !strcmp(org_ids[i], PQgetvalue(res, r, 0));
        PQclear(res);
    }
    gh_pg_array_free(&ids);
    return rc;
}

gh_err_t gh_pgs_spend_notif_insert(gh_db_t *db, const gh_spend_notif_t *n)
{
    static const char sql[] =
        "INSERT INTO spend_notifications (id, org_id, kind, amount_nusd, percent, created_at, "
        "created_by) VALUES ($1, $2, $3, $4, $5, " GH_PGS_TIME_IN("$6") ", $7)";
    gh_pgs_num_t amount, percent, created;
    const char *p[] = {
        n->id,
        n->org_id,
        n->kind,
        n->amount_nusd > 0 ? gh_pgs_i64(&amount, n->amount_nusd) : NULL,
        n->percent > 0 ? gh_pgs_i64(&percent, n->percent) : NULL,
        gh_pgs_i64(&created, n->created_at),
        n->created_by,
    };
    return gh_pgs_exec(db, sql, 7, p);
}

gh_err_t gh_pgs_spend_notif_get(gh_db_t *db, const char *org_id, const char *id,
                                gh_spend_notif_t *out)
{
    static const char sql[] =
        "SELECT " NOTIF_COLS " FROM spend_notifications n WHERE n.org_id = $1 AND n.id = $2";
    const char *p[] = {org_id, id};
    return gh_pgs_one(db, sql, 2, p, notif_row, out);
}

/* The notices go with the rule (ON DELETE CASCADE), as SQLite deletes them first. */
gh_err_t gh_pgs_spend_notif_delete(gh_db_t *db, const char *org_id, const char *id)
{
    static const char sql[] = "DELETE FROM spend_notifications WHERE org_id = $1 AND id = $2";
    const char *p[] = {org_id, id};
    return gh_pgs_exec_one(db, sql, 2, p);
}

gh_err_t gh_pgs_spend_notif_mark(gh_db_t *db, const char *id, int32_t month, int64_t now,
                                 int64_t spend_nusd, bool *first)
{
    static const char sql[] =
        "INSERT INTO spend_notifications_sent (notification_id, month, sent_at, spend_nusd) "
        "VALUES ($1, $2, " GH_PGS_TIME_IN("$3") ", $4) ON CONFLICT DO NOTHING";
    gh_pgs_num_t m, at, spend;
    const char *p[] = {id, gh_pgs_i64(&m, month), gh_pgs_i64(&at, now),
                       gh_pgs_i64(&spend, spend_nusd)};
    gh_err_t rc = gh_pgs_exec(db, sql, 4, p);
    *first = rc == GH_OK && gh_pgs_changes(db) > 0;
    return rc;
}

gh_err_t gh_pgs_spend_notif_balance_set(gh_db_t *db, const char *id, int64_t notified_at)
{
    static const char sql[] = "UPDATE spend_notifications SET balance_notified_at = "
                              "CASE WHEN $1::bigint = 0 THEN NULL ELSE " GH_PGS_TIME_IN("$1")
                              " END WHERE id = $2";
    gh_pgs_num_t at;
    const char *p[] = {gh_pgs_i64(&at, notified_at), id};
    return gh_pgs_exec(db, sql, 2, p);
}

typedef struct {
    int32_t *month;
    int64_t *spend_nusd;
} state_out_t;

static void state_row(const PGresult *res, int row, void *out)
{
    state_out_t *s = out;
    *s->month = (int32_t)gh_pgs_col_i64(res, row, 0);
    *s->spend_nusd = gh_pgs_col_i64(res, row, 1);
}

gh_err_t gh_pgs_spend_state_get(gh_db_t *db, const char *org_id, int32_t *month,
                                int64_t *spend_nusd)
{
    static const char sql[] = "SELECT month, spend_nusd FROM spend_notify_state WHERE org_id = $1";
    const char *p[] = {org_id};
    state_out_t s = {month, spend_nusd};
    return gh_pgs_one(db, sql, 1, p, state_row, &s);
}

gh_err_t gh_pgs_spend_state_put(gh_db_t *db, const char *org_id, int32_t month,
                                int64_t spend_nusd)
{
    static const char sql[] =
        "INSERT INTO spend_notify_state (org_id, month, spend_nusd) VALUES ($1, $2, $3) "
        "ON CONFLICT (org_id) DO UPDATE SET month = excluded.month, "
        "spend_nusd = excluded.spend_nusd";
    gh_pgs_num_t m, spend;
    const char *p[] = {org_id, gh_pgs_i64(&m, month), gh_pgs_i64(&spend, spend_nusd)};
    return gh_pgs_exec(db, sql, 3, p);
}

/* ---- the HTML part of queued mail ---- */

/* The mail this connection queued last is the latest value this session drew from
 * mail_outbox's identity sequence (currval is per session, like SQLite's last rowid per
 * connection); with none drawn yet, currval fails and so does the attach. */
gh_err_t gh_pgs_outbox_html_attach(gh_db_t *db, const char *html)
{
    static const char sql[] =
        "INSERT INTO mail_outbox_html (mail_id, html) "
        "VALUES (currval(pg_get_serial_sequence('mail_outbox', 'id')), $1)";
    const char *p[] = {html ? html : ""};
    return gh_pgs_exec(db, sql, 1, p);
}

static void html_row(const PGresult *res, int row, void *out)
{
    *(char **)out = strdup(PQgetvalue(res, row, 0));
}

gh_err_t gh_pgs_outbox_html_get(gh_db_t *db, int64_t id, char **html)
{
    static const char sql[] = "SELECT html FROM mail_outbox_html WHERE mail_id = $1";
    gh_pgs_num_t mail;
    const char *p[] = {gh_pgs_i64(&mail, id)};
    *html = NULL;
    gh_err_t rc = gh_pgs_one(db, sql, 1, p, html_row, html);
    if (rc == GH_ENOTFOUND)
        return GH_OK;
    if (rc)
        return rc;
    return *html ? GH_OK : GH_ENOMEM;
}

gh_err_t gh_pgs_outbox_html_delete(gh_db_t *db, int64_t id)
{
    static const char sql[] = "DELETE FROM mail_outbox_html WHERE mail_id = $1";
    gh_pgs_num_t mail;
    const char *p[] = {gh_pgs_i64(&mail, id)};
    return gh_pgs_exec(db, sql, 1, p);
}
