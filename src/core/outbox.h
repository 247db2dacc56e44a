/* The mail outbox: every mail Gatehouse sends (sign-in links, invitations, receipts, notices)
 * is first a row of `mail_outbox`, written in the same transaction as the change it reports,
 * so a mail exists exactly when its change does; a crash between the commit and the send
 * only delays it. One mailer thread sends the rows through src/lib/mail.c outside any
 * transaction or lock, retries a failure with a backoff that doubles from 1 s up to 10
 * minutes, and marks each row sent once (emptying its body, which may carry a link).
 *
 * Callers: gh_outbox_add inside the transaction, gh_outbox_kick after the commit. With no SMTP
 * server configured (mail goes to .eml files in the outbox folder), the kick waits until the
 * mailer has written the file (a local write, bounded at 5 s), so the file is there when the
 * request is answered; with SMTP nobody waits for the mail server. Without a mailer thread
 * (command-line tools, unit tests) the kick sends what is due on the calling thread. */
#ifndef GH_CORE_OUTBOX_H
#define GH_CORE_OUTBOX_H

#include "core/app.h"
#include "lib/err.h"
#include "lib/mail.h"
#include "store/rows.h"

/* The store's handles (store/store.h), used here only by pointer. */
typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

typedef struct gh_outbox gh_outbox_t;

/* Starts the mailer thread; it sends at once what an earlier run left unsent. With
 * `release_claims` (one node: SQLite) the claims of mail an earlier run was sending are
 * released first, since that run is over. In a cluster another node may be sending them
 * right now: every node sends what it claims (a claim is exclusive), and a dead node's claims
 * lapse after their lease instead. */
gh_err_t gh_outbox_start(gh_outbox_t **out, gh_store_t *store, gh_mailer_t *mailer,
                         bool release_claims, char *err, size_t err_size);

/* Stops the mailer thread after the mail it is sending (with .eml files, after writing every
 * mail due). What is unsent stays in the table for the next start. Safe with NULL. */
void gh_outbox_stop(gh_outbox_t *o);

/* Queues a mail: a row written on `db`, inside the caller's transaction when there is one,
 * with its HTML alternative (lib/mailhtml.h) beside it, so it goes out as
 * multipart/alternative. GH_EINVAL when `to` or `subject` cannot be put in a header (a line
 * break). */
gh_err_t gh_outbox_add(gh_app_t *app, gh_db_t *db, const char *to, const char *subject,
                       const char *body);

/* The same with an action: the HTML part shows `button_url` (a link the text carries on a
 * line of its own) as a button labelled `button_label` ("Sign in to Gatehouse"). */
gh_err_t gh_outbox_add_action(gh_app_t *app, gh_db_t *db, const char *to, const char *subject,
                              const char *body, const char *button_label,
                              const char *button_url);

/* After the commit that queued mail: has it sent (see above). Never holds a lock while
 * mail is sent. */
void gh_outbox_kick(gh_app_t *app);

/* Wakes the mailer without waiting for it (for threads that must not wait, like the usage
 * writer). Without a mailer thread it does nothing: the next kick or start sends the mail. */
void gh_outbox_wake(gh_app_t *app);

#endif
