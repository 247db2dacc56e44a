#include "core/outbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "store/store.h"
#include "lib/mailhtml.h"
#include "store/notify.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS (10 * 60 * 1000)
#define IDLE_WAKE_MS 60000      /* with nothing due, look again this often anyway */
#define LEASE_EXTRA_MS 60000    /* a claim lasts the SMTP timeout and this */
#define KICK_WAIT_MS 5000       /* how long a kick waits for an .eml file */

struct gh_outbox {
    gh_store_t *store;
    gh_mailer_t *mailer;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    uint64_t kicked, passed; /* kicks asked for, and the last one a finished pass covered */
    bool stopping;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void at_ms(struct timespec *ts, int64_t ms)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* Sends every mail due, one claim at a time; no transaction or lock is held while a mail is
 * sent. Returns GH_OK when none is due, or the error that stopped it from reading the outbox
 * (the caller logs it and tries again soon). */
static gh_err_t deliver_due(gh_db_t *db, gh_mailer_t *mailer, int lease_ms)
{
    for (;;) {
        gh_outbox_row_t row;
        gh_err_t rc = gh_store_outbox_claim(db, now_ms(), lease_ms, &row);
        if (rc == GH_ENOTFOUND)
            return GH_OK;
        if (rc)
            return rc;
        char *html = NULL;
        if (gh_store_outbox_html_get(db, row.id, &html)) /* then the text alone goes */
            gh_log_warn("mail: cannot read the HTML part of mail %lld", (long long)row.id);
        rc = gh_mail_send_alt(mailer, row.recipient, row.subject, row.body, html);
        free(html);
        int64_t now = now_ms();
        if (rc == GH_OK) {
            rc = gh_store_outbox_sent(db, row.id, now);
            if (!rc)
                rc = gh_store_outbox_html_delete(db, row.id);
            if (rc)
                gh_log_error("mail: mail %lld to %s was sent but cannot be marked sent (%s)",
                             (long long)row.id, row.recipient, gh_err_name(rc));
        } else {
            int64_t wait = RETRY_FIRST_MS;
            for (int i = 0; i < row.attempts && wait < RETRY_MAX_MS; i++)
                wait *= 2;
            if (wait > RETRY_MAX_MS)
                wait = RETRY_MAX_MS;
            gh_log_warn("mail: sending mail %lld to %s failed (attempt %d, %s); retrying in %lld s",
                        (long long)row.id, row.recipient, row.attempts + 1, gh_err_name(rc),
                        (long long)(wait / 1000));
            (void)gh_store_outbox_failed(db, row.id, now + wait, gh_err_str(rc));
        }
        gh_store_outbox_row_free(&row);
    }
}

/* A claim outlasts the longest SMTP timeout the configuration allows (600 s). */
static int lease_ms(const gh_mailer_t *m)
{
    (void)m;
    return 600000 + LEASE_EXTRA_MS;
}

static void *mailer_main(void *arg)
{
    gh_outbox_t *o = arg;
    gh_db_t *db = gh_store_db(o->store);
    if (!db) {
        gh_log_error("mail: the mailer cannot open the database; mail waits in the outbox");
        pthread_mutex_lock(&o->lock);
        o->passed = UINT64_MAX; /* nobody waits for it */
        pthread_cond_broadcast(&o->done);
        pthread_mutex_unlock(&o->lock);
        return NULL;
    }
    /* Claims of an earlier run of the server died with it. */
    if (gh_store_outbox_release_claims(db))
        gh_log_error("mail: cannot release the outbox's old claims");
    int64_t wake_at = 0; /* the first pass is at once: mail an earlier run left */
    bool db_failing = false; /* the last pass could not read the outbox (logged once) */
    for (;;) {
        pthread_mutex_lock(&o->lock);
        struct timespec until;
        at_ms(&until, wake_at);
        while (!o->stopping && o->kicked == o->passed && now_ms() < wake_at)
            if (pthread_cond_timedwait(&o->wake, &o->lock, &until) == ETIMEDOUT)
                break;
        bool stop = o->stopping;
        uint64_t covering = o->kicked;
        pthread_mutex_unlock(&o->lock);
        /* With .eml files the last pass writes whatever is due; an SMTP server may be slow,
         * and what is unsent goes at the next start. */
        gh_err_t rc = GH_OK;
        if (!stop || gh_mailer_is_outbox(o->mailer))
            rc = deliver_due(db, o->mailer, lease_ms(o->mailer));
        int64_t due = INT64_MAX;
        if (!rc && (rc = gh_store_outbox_next_due(db, &due)) == GH_ENOTFOUND)
            rc = GH_OK; /* every mail is sent: nothing is due */
        int64_t now = now_ms();
        wake_at = now + IDLE_WAKE_MS;
        if (rc == GH_OK && due < wake_at)
            wake_at = due > now ? due : now + RETRY_FIRST_MS;
        /* The database failed (a PostgreSQL outage, a locked SQLite file): look again soon,
         * so mail waiting in the outbox goes shortly after it is back; say it once. */
        if (rc) {
            wake_at = now + RETRY_FIRST_MS;
            if (!db_failing)
                gh_log_error("mail: cannot read the outbox (%s); the mailer tries again every "
                             "%d s, the mail is safe in the outbox",
                             gh_err_name(rc), RETRY_FIRST_MS / 1000);
            db_failing = true;
        } else if (db_failing) {
            gh_log_info("mail: the outbox can be read again");
            db_failing = false;
        }
        pthread_mutex_lock(&o->lock);
        o->passed = covering;
        pthread_cond_broadcast(&o->done);
        pthread_mutex_unlock(&o->lock);
        if (stop)
            break;
    }
    return NULL;
}

gh_err_t gh_outbox_start(gh_outbox_t **out, gh_store_t *store, gh_mailer_t *mailer,
                         char *err, size_t err_size)
{
    gh_outbox_t *o = calloc(1, sizeof(*o));
    if (!o)
        return GH_ENOMEM;
    o->store = store;
    o->mailer = mailer;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->wake, NULL);
    pthread_cond_init(&o->done, NULL);
    if (pthread_create(&o->thread, NULL, mailer_main, o)) {
        snprintf(err, err_size, "cannot start the mailer thread");
        pthread_mutex_destroy(&o->lock);
        pthread_cond_destroy(&o->wake);
        pthread_cond_destroy(&o->done);
        free(o);
        return GH_EINTERNAL;
    }
    *out = o;
    return GH_OK;
}

void gh_outbox_stop(gh_outbox_t *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = true;
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->lock);
    /* A slow mail server does not hold the stop up: the mail stays queued. */
    if (!gh_mailer_is_outbox(o->mailer))
        gh_mailer_cancel(o->mailer);
    pthread_join(o->thread, NULL);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->wake);
    pthread_cond_destroy(&o->done);
    free(o);
}

gh_err_t gh_outbox_add_action(gh_app_t *app, gh_db_t *db, const char *to, const char *subject,
                              const char *body, const char *button_label,
                              const char *button_url)
{
    gh_err_t rc = gh_mail_check(to, subject);
    if (rc)
        return rc;
    char *html = NULL;
    if ((rc = gh_mailhtml_render(app->cfg->product_name, subject, body, button_label,
                                 button_url, &html)))
        return rc;
    /* Both rows in the caller's transaction, or in one of their own. */
    if (!(rc = gh_store_begin(db))) {
        if ((rc = gh_store_outbox_add(db, to, subject, body, now_ms())) ||
            (rc = gh_store_outbox_html_attach(db, html)) || (rc = gh_store_commit(db)))
            gh_store_rollback(db);
    }
    free(html);
    return rc;
}

gh_err_t gh_outbox_add(gh_app_t *app, gh_db_t *db, const char *to, const char *subject,
                       const char *body)
{
    return gh_outbox_add_action(app, db, to, subject, body, NULL, NULL);
}

void gh_outbox_wake(gh_app_t *app)
{
    gh_outbox_t *o = app->outbox;
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    o->kicked++;
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->lock);
}

void gh_outbox_kick(gh_app_t *app)
{
    gh_outbox_t *o = app->outbox;
    gh_db_t *db = gh_store_db(app->store);
    /* Inside a transaction the mail is not committed yet, and the mailer would wait for this
     * writer: a caller kicks after its outermost commit. */
    bool in_tx = db != NULL && gh_store_in_transaction(db);
    if (!o) {
        if (db && app->mailer && !in_tx)
            deliver_due(db, app->mailer, lease_ms(app->mailer));
        return;
    }
    pthread_mutex_lock(&o->lock);
    uint64_t mine = ++o->kicked;
    pthread_cond_signal(&o->wake);
    if (gh_mailer_is_outbox(o->mailer) && !in_tx) {
        struct timespec until;
        at_ms(&until, now_ms() + KICK_WAIT_MS);
        while (o->passed < mine && o->passed != UINT64_MAX && !o->stopping)
            if (pthread_cond_timedwait(&o->done, &o->lock, &until) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&o->lock);
}
