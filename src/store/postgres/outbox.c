/* Store functions for the mail outbox (PostgreSQL backend; migration 0002_mail_outbox.sql):
 * the port of src/store/sqlite/outbox.c. A sender claims one row at a time with a lease, so
 * two senders (the mailer thread, a command-line tool, another node) never send the same mail
 * at once, and a sender that died lets its claim lapse. The records carry epoch milliseconds;
 * the table keeps timestamptz (exact to the microsecond, so milliseconds round-trip), and an
 * unclaimed row's claimed_until is '-infinity' where SQLite keeps 0. */
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_int.h"

/* Epoch milliseconds in and out of SQL, exactly (pg_int.h says why). */
#define MS_IN(param) GH_PGS_TIME_IN_MS(param)
#define MS_OUT(expr) "(extract(epoch FROM " expr ") * 1000)::bigint"

gh_err_t gh_pgs_outbox_add(gh_db_t *db, const char *recipient, const char *subject,
                           const char *body, int64_t now_ms)
{
    /* The id comes from the identity column, so the HTML part's attach (notify.c) finds it
     * as currval() of the column's sequence on this connection, as SQLite's finds
     * last_insert_rowid(). */
    static const char sql[] = "INSERT INTO mail_outbox (created_at, recipient, subject, body, "
                              "next_attempt) VALUES (" MS_IN("$1") ", $2, $3, $4, " MS_IN("$1")
                              ")";
    gh_pgs_num_t b_now;
    /* SQLite binds these as text, "" included; NULL would break NOT NULL, so it is "" too. */
    const char *p[] = {gh_pgs_i64(&b_now, now_ms), recipient ? recipient : "",
                       subject ? subject : "", body ? body : ""};
    return gh_pgs_exec(db, sql, 4, p);
}

/* Reads the due row into `out`; under the claim's transaction. SKIP LOCKED lets a sender
 * outside this installation's writer lock (none today) pass a row another one holds. */
static gh_err_t pick(gh_db_t *db, int64_t now_ms, gh_outbox_row_t *out)
{
    static const char sql[] = "SELECT id, recipient, subject, body, attempts FROM mail_outbox "
                              "WHERE sent_at IS NULL AND next_attempt <= " MS_IN("$1") " AND "
                              "claimed_until <= " MS_IN("$1") " ORDER BY id LIMIT 1 "
                              "FOR UPDATE SKIP LOCKED";
    gh_pgs_num_t b_now;
    const char *p[] = {gh_pgs_i64(&b_now, now_ms)};
    PGresult *res;
    gh_err_t rc = gh_pgs_query(db, sql, 1, p, &res);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return GH_ENOTFOUND;
    }
    memset(out, 0, sizeof(*out));
    out->id = gh_pgs_col_i64(res, 0, 0);
    GH_PGS_COPY(res, 0, 1, out->recipient);
    out->subject = strdup(PQgetvalue(res, 0, 2));
    out->body = strdup(PQgetvalue(res, 0, 3));
    out->attempts = (int)gh_pgs_col_i64(res, 0, 4);
    PQclear(res);
    if (!out->subject || !out->body) {
        gh_store_outbox_row_free(out);
        return GH_ENOMEM;
    }
    return GH_OK;
}

gh_err_t gh_pgs_outbox_claim(gh_db_t *db, int64_t now_ms, int64_t lease_ms,
                             gh_outbox_row_t *out)
{
    static const char sql[] = "UPDATE mail_outbox SET claimed_until = " MS_IN("$1")
                              " WHERE id = $2";
    gh_err_t rc = gh_pgs_begin(db);
    if (rc)
        return rc;
    rc = pick(db, now_ms, out);
    if (rc)
        goto out_rollback;
    gh_pgs_num_t b_until, b_id;
    const char *p[] = {gh_pgs_i64(&b_until, now_ms + lease_ms), gh_pgs_i64(&b_id, out->id)};
    if ((rc = gh_pgs_exec_one(db, sql, 2, p)))
        goto out_free;
    if ((rc = gh_pgs_commit(db)))
        goto out_free_committing;
    return GH_OK;
out_free:
    gh_store_outbox_row_free(out);
out_rollback:
    gh_pgs_rollback(db);
    return rc;
out_free_committing:
    /* A failed COMMIT already ended the transaction. */
    gh_store_outbox_row_free(out);
    return rc;
}

gh_err_t gh_pgs_outbox_sent(gh_db_t *db, int64_t id, int64_t now_ms)
{
    static const char sql[] = "UPDATE mail_outbox SET sent_at = " MS_IN("$1") ", body = '', "
                              "attempts = attempts + 1, claimed_until = '-infinity' "
                              "WHERE id = $2 AND sent_at IS NULL";
    gh_pgs_num_t b_now, b_id;
    const char *p[] = {gh_pgs_i64(&b_now, now_ms), gh_pgs_i64(&b_id, id)};
    return gh_pgs_exec(db, sql, 2, p);
}

gh_err_t gh_pgs_outbox_failed(gh_db_t *db, int64_t id, int64_t next_attempt_ms,
                              const char *error)
{
    static const char sql[] = "UPDATE mail_outbox SET attempts = attempts + 1, "
                              "next_attempt = " MS_IN("$1") ", claimed_until = '-infinity', "
                              "last_error = $2 WHERE id = $3 AND sent_at IS NULL";
    gh_pgs_num_t b_next, b_id;
    const char *p[] = {gh_pgs_i64(&b_next, next_attempt_ms), error ? error : "",
                       gh_pgs_i64(&b_id, id)};
    return gh_pgs_exec(db, sql, 3, p);
}

gh_err_t gh_pgs_outbox_next_due(gh_db_t *db, int64_t *at_ms)
{
    /* greatest() of a real time and '-infinity' (no claim) is the real time. */
    static const char sql[] = "SELECT " MS_OUT("min(greatest(next_attempt, claimed_until))")
                              " FROM mail_outbox WHERE sent_at IS NULL";
    PGresult *res;
    gh_err_t rc = gh_pgs_query(db, sql, 0, NULL, &res);
    if (rc)
        return rc;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
        rc = GH_ENOTFOUND;
    else
        *at_ms = gh_pgs_col_i64(res, 0, 0);
    PQclear(res);
    return rc;
}

gh_err_t gh_pgs_outbox_release_claims(gh_db_t *db)
{
    static const char sql[] = "UPDATE mail_outbox SET claimed_until = '-infinity' "
                              "WHERE sent_at IS NULL AND claimed_until > 'epoch'::timestamptz";
    return gh_pgs_exec(db, sql, 0, NULL);
}
