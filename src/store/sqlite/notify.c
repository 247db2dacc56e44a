/* Spend notifications and the HTML part of queued mail (store/notify.h; migration
 * 0012_spend_notifications.sql), SQLite backend. */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

#define NOTIF_COLS                                                                             \
    "n.id, n.org_id, n.kind, coalesce(n.amount_nusd, 0), coalesce(n.percent, 0), "            \
    "n.created_at, n.created_by, n.balance_notified_at"

static void notif_row(sqlite3_stmt *st, void *out)
{
    gh_spend_notif_t *n = out;
    memset(n, 0, sizeof(*n));
    COPY(st, 0, n->id);
    COPY(st, 1, n->org_id);
    COPY(st, 2, n->kind);
    n->amount_nusd = sqlite3_column_int64(st, 3);
    n->percent = sqlite3_column_int(st, 4);
    n->created_at = sqlite3_column_int64(st, 5);
    COPY(st, 6, n->created_by);
    n->notified_at = sqlite3_column_int64(st, 7);
}

gh_err_t gh_sqlite_spend_notif_list(gh_db_t *db, const char *org_id, int32_t month,
                                   gh_store_spend_notif_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT " NOTIF_COLS ", coalesce(s.sent_at, 0) FROM spend_notifications n "
        "LEFT JOIN spend_notifications_sent s ON s.notification_id = n.id AND s.month = ?2 "
        "WHERE n.org_id = ?1 ORDER BY n.created_at, n.rowid";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    sqlite3_bind_int(st, 2, month);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gh_spend_notif_t n;
        notif_row(st, &n);
        if (strcmp(n.kind, "balance_below"))
            n.notified_at = sqlite3_column_int64(st, 8);
        fn(ctx, &n);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_spend_notif_count(gh_db_t *db, const char *org_id, int64_t *count)
{
    static const char sql[] = "SELECT count(*) FROM spend_notifications WHERE org_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    int rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_spend_notif_any(gh_db_t *db, const char *const *org_ids, size_t n,
                                  bool *has_rules)
{
    for (size_t i = 0; i < n; i++) {
        int64_t count = 0;
        gh_err_t rc = gh_sqlite_spend_notif_count(db, org_ids[i], &count);
        if (rc)
            return rc;
        has_rules[i] = count > 0;
    }
    return GH_OK;
}

gh_err_t gh_sqlite_spend_notif_insert(gh_db_t *db, const gh_spend_notif_t *n)
{
    static const char sql[] =
        "INSERT INTO spend_notifications (id, org_id, kind, amount_nusd, percent, created_at, "
        "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, n->id);
    gh_sqlite_bind_str(st, 2, n->org_id);
    gh_sqlite_bind_str(st, 3, n->kind);
    if (n->amount_nusd > 0)
        sqlite3_bind_int64(st, 4, n->amount_nusd);
    if (n->percent > 0)
        sqlite3_bind_int(st, 5, n->percent);
    sqlite3_bind_int64(st, 6, n->created_at);
    gh_sqlite_bind_str(st, 7, n->created_by);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_spend_notif_get(gh_db_t *db, const char *org_id, const char *id,
                                  gh_spend_notif_t *out)
{
    static const char sql[] =
        "SELECT " NOTIF_COLS " FROM spend_notifications n WHERE n.org_id = ? AND n.id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    gh_sqlite_bind_str(st, 2, id);
    return gh_sqlite_one(db, st, notif_row, out);
}

gh_err_t gh_sqlite_spend_notif_delete(gh_db_t *db, const char *org_id, const char *id)
{
    static const char del_sent[] =
        "DELETE FROM spend_notifications_sent WHERE notification_id IN "
        "(SELECT id FROM spend_notifications WHERE org_id = ? AND id = ?)";
    static const char del[] = "DELETE FROM spend_notifications WHERE org_id = ? AND id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, del_sent);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    gh_sqlite_bind_str(st, 2, id);
    gh_err_t rc = gh_sqlite_exec(db, st);
    if (rc)
        return rc;
    if (!(st = gh_sqlite_stmt(db, del)))
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    gh_sqlite_bind_str(st, 2, id);
    return gh_sqlite_exec_one(db, st);
}

gh_err_t gh_sqlite_spend_notif_mark(gh_db_t *db, const char *id, int32_t month, int64_t now,
                                   int64_t spend_nusd, bool *first)
{
    static const char sql[] = "INSERT OR IGNORE INTO spend_notifications_sent (notification_id, "
                              "month, sent_at, spend_nusd) VALUES (?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, id);
    sqlite3_bind_int(st, 2, month);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, spend_nusd);
    gh_err_t rc = gh_sqlite_exec(db, st);
    *first = rc == GH_OK && sqlite3_changes(sq(db)->conn) > 0;
    return rc;
}

gh_err_t gh_sqlite_spend_notif_balance_set(gh_db_t *db, const char *id, int64_t notified_at)
{
    static const char sql[] =
        "UPDATE spend_notifications SET balance_notified_at = ? WHERE id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, notified_at);
    gh_sqlite_bind_str(st, 2, id);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_spend_state_get(gh_db_t *db, const char *org_id, int32_t *month,
                                  int64_t *spend_nusd)
{
    static const char sql[] =
        "SELECT month, spend_nusd FROM spend_notify_state WHERE org_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *month = sqlite3_column_int(st, 0);
        *spend_nusd = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return GH_OK;
    return rc == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_spend_state_put(gh_db_t *db, const char *org_id, int32_t month,
                                  int64_t spend_nusd)
{
    static const char sql[] = "INSERT OR REPLACE INTO spend_notify_state (org_id, month, "
                              "spend_nusd) VALUES (?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    gh_sqlite_bind_str(st, 1, org_id);
    sqlite3_bind_int(st, 2, month);
    sqlite3_bind_int64(st, 3, spend_nusd);
    return gh_sqlite_exec(db, st);
}

/* ---- the HTML part of queued mail ---- */

gh_err_t gh_sqlite_outbox_html_attach(gh_db_t *db, const char *html)
{
    static const char sql[] = "INSERT INTO mail_outbox_html (mail_id, html) VALUES (?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, sqlite3_last_insert_rowid(sq(db)->conn));
    gh_sqlite_bind_str(st, 2, html);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_outbox_html_get(gh_db_t *db, int64_t id, char **html)
{
    static const char sql[] = "SELECT html FROM mail_outbox_html WHERE mail_id = ?";
    *html = NULL;
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        *html = strdup(t ? (const char *)t : "");
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return *html ? GH_OK : GH_ENOMEM;
    return rc == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, rc);
}

gh_err_t gh_sqlite_outbox_html_delete(gh_db_t *db, int64_t id)
{
    static const char sql[] = "DELETE FROM mail_outbox_html WHERE mail_id = ?";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    return gh_sqlite_exec(db, st);
}
