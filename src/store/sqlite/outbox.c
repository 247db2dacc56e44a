/* Store functions for the mail outbox (SQLite backend; migration 0008_mail_outbox.sql). A
 * sender claims one row at a time with a lease, so two senders (the mailer thread and a
 * command-line tool) never send the same mail at once, and a sender that died lets its claim
 * lapse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

gh_err_t gh_sqlite_outbox_add(gh_db_t *db, const char *recipient, const char *subject,
                              const char *body, int64_t now_ms)
{
    static const char sql[] = "INSERT INTO mail_outbox (created_at_ms, recipient, subject, body, "
                              "next_attempt_ms) VALUES (?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now_ms);
    gh_sqlite_bind_str(st, 2, recipient);
    gh_sqlite_bind_str(st, 3, subject);
    gh_sqlite_bind_str(st, 4, body);
    sqlite3_bind_int64(st, 5, now_ms);
    return gh_sqlite_exec(db, st);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

/* Reads the due row into `out`; under the claim's transaction. */
static gh_err_t pick(gh_db_t *db, int64_t now_ms, gh_outbox_row_t *out)
{
    static const char sql[] = "SELECT id, recipient, subject, body, attempts FROM mail_outbox "
                              "WHERE sent_at_ms IS NULL AND next_attempt_ms <= ?1 AND "
                              "claimed_until_ms <= ?1 ORDER BY id LIMIT 1";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now_ms);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GH_ENOTFOUND : gh_sqlite_step_err(db, rc);
    }
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    COPY(st, 1, out->recipient);
    out->subject = col_dup(st, 2);
    out->body = col_dup(st, 3);
    out->attempts = sqlite3_column_int(st, 4);
    sqlite3_reset(st);
    if (!out->subject || !out->body) {
        gh_store_outbox_row_free(out);
        return GH_ENOMEM;
    }
    return GH_OK;
}

gh_err_t gh_sqlite_outbox_claim(gh_db_t *db, int64_t now_ms, int64_t lease_ms,
                                gh_outbox_row_t *out)
{
    static const char sql[] = "UPDATE mail_outbox SET claimed_until_ms = ? WHERE id = ?";
    gh_err_t rc = gh_sqlite_begin(db);
    if (rc)
        return rc;
    rc = pick(db, now_ms, out);
    if (rc)
        goto out_rollback;
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st) {
        rc = GH_ESTORE;
        goto out_free;
    }
    sqlite3_bind_int64(st, 1, now_ms + lease_ms);
    sqlite3_bind_int64(st, 2, out->id);
    if ((rc = gh_sqlite_exec_one(db, st)) || (rc = gh_sqlite_commit(db)))
        goto out_free;
    return GH_OK;
out_free:
    gh_store_outbox_row_free(out);
out_rollback:
    gh_sqlite_rollback(db);
    return rc;
}

gh_err_t gh_sqlite_outbox_sent(gh_db_t *db, int64_t id, int64_t now_ms)
{
    static const char sql[] = "UPDATE mail_outbox SET sent_at_ms = ?, body = '', "
                              "attempts = attempts + 1, claimed_until_ms = 0 "
                              "WHERE id = ? AND sent_at_ms IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, id);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_outbox_failed(gh_db_t *db, int64_t id, int64_t next_attempt_ms,
                                 const char *error)
{
    static const char sql[] = "UPDATE mail_outbox SET attempts = attempts + 1, "
                              "next_attempt_ms = ?, claimed_until_ms = 0, last_error = ? "
                              "WHERE id = ? AND sent_at_ms IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    sqlite3_bind_int64(st, 1, next_attempt_ms);
    gh_sqlite_bind_str(st, 2, error);
    sqlite3_bind_int64(st, 3, id);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_outbox_next_due(gh_db_t *db, int64_t *at_ms)
{
    static const char sql[] = "SELECT min(max(next_attempt_ms, claimed_until_ms)) FROM "
                              "mail_outbox WHERE sent_at_ms IS NULL";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int rc = sqlite3_step(st);
    gh_err_t err = GH_OK;
    if (rc != SQLITE_ROW)
        err = gh_sqlite_step_err(db, rc);
    else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        err = GH_ENOTFOUND;
    else
        *at_ms = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return err;
}

gh_err_t gh_sqlite_outbox_release_claims(gh_db_t *db)
{
    static const char sql[] = "UPDATE mail_outbox SET claimed_until_ms = 0 "
                              "WHERE sent_at_ms IS NULL AND claimed_until_ms > 0";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    return st ? gh_sqlite_exec(db, st) : GH_ESTORE;
}
