/* Outgoing email. With `[email] smtp_url` set, messages go out through SMTP (libcurl, with
 * STARTTLS when the server offers it, or smtps://); otherwise each message is written as an
 * .eml file to the outbox folder, which is what a person trying Gatehouse locally (and the
 * tests) read. Sending is synchronous and bounded by smtp_timeout_ms; callers queue mail in the
 * outbox table (core/outbox.h) and the mailer thread calls gh_mail_send. */
#ifndef GH_LIB_MAIL_H
#define GH_LIB_MAIL_H

#include <stdbool.h>

#include "lib/config.h"
#include "lib/err.h"

typedef struct gh_mailer gh_mailer_t;

/* Creates the mailer (and the outbox folder when there is no SMTP). Keeps a pointer to
 * `cfg`. */
gh_err_t gh_mailer_new(gh_mailer_t **out, const gh_config_t *cfg, char *err, size_t err_size);
void gh_mailer_free(gh_mailer_t *m);

/* Makes an SMTP transfer in progress, and every later one, stop at once with GH_EIO (at
 * shutdown: an unsent mail stays queued for the next start). Thread-safe. */
void gh_mailer_cancel(gh_mailer_t *m);

/* True when mail goes to the outbox folder rather than an SMTP server. */
bool gh_mailer_is_outbox(const gh_mailer_t *m);

/* GH_EINVAL when `to` is not one bare address or `subject` holds a line break: what
 * gh_mail_send refuses, checked before a mail is queued. */
gh_err_t gh_mail_check(const char *to, const char *subject);

/* Sends a UTF-8 message as multipart/alternative: `body` as the text/plain part and `html` as
 * the text/html part (NULL: made from the text by lib/mailhtml.h, with no button). Each part
 * is 7bit when it is short-lined ASCII, else quoted-printable; a subject that is not plain
 * ASCII is encoded per RFC 2047. `to` is one address; `subject` and `to` must not contain
 * line breaks (GH_EINVAL). GH_EIO when the outbox cannot be written or the SMTP server
 * refuses or times out (logged without the body, which may carry a secret link). */
gh_err_t gh_mail_send_alt(gh_mailer_t *m, const char *to, const char *subject, const char *body,
                          const char *html);

/* gh_mail_send_alt with the HTML part made from the text. */
gh_err_t gh_mail_send(gh_mailer_t *m, const char *to, const char *subject, const char *body);

#endif
