/* Sign-in by emailed link, sessions and onboarding. No passwords: a person proves they own an
 * address by opening a single-use link mailed to it. Only SHA-256 hashes of link tokens and
 * session ids are stored, so a copy of the database opens no account. */
#ifndef GH_CORE_AUTH_H
#define GH_CORE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/app.h"

/* Mails a sign-in link to `email` (checked and lower-cased here). Throttled per address and
 * per `ip`: GH_ERATE with `*retry_after_s` set when over. GH_EINVAL with a message for a bad
 * address. The answer does not depend on whether an account exists. */
gh_err_t gh_auth_request_link(gh_app_t *app, const char *email, const char *ip,
                              int *retry_after_s, char *msg, size_t msg_size);

typedef struct gh_login {
    char session_secret[GH_SECRET_MAX]; /* goes into the cookie, nowhere else */
    char account_id[GH_ID_MAX];
    char email[GH_EMAIL_MAX]; /* the address the link or invitation is for */
    bool new_account;
} gh_login_t;

/* "N seconds", "N minutes" or "N hours" for a retry-after of `seconds`, rounded up. */
void gh_auth_wait_text(char *out, size_t size, int seconds);

/* Checks a link without using it (what a GET of the emailed link does, so that mail scanners
 * and link previews that fetch it do not burn it): GH_OK, or the errors of
 * gh_auth_open_link. */
gh_err_t gh_auth_check_link(gh_app_t *app, const char *token);

/* Opens a link: consumes the token, creates the account on first sign-in and starts a
 * session. GH_ENOTFOUND for a malformed or unknown token, GH_ECONFLICT for a used one,
 * GH_EEXPIRED for an expired one; nothing changes then.
 * `keep_email`: the address of the account already signed in on this browser, or NULL. A
 * link for another address would silently replace that session (someone else's link, opened
 * by mistake or planted, and what the person types next lands in the other account): then
 * nothing changes, the link stays usable, and GH_EPERM is returned with `out->email` set to
 * the link's address, so the person can be asked first. */
gh_err_t gh_auth_open_link(gh_app_t *app, const char *token, const char *ip,
                           const char *user_agent, const char *keep_email, gh_login_t *out);

/* The account for `email` (lower-cased already), created when there is none; `*created`
 * tells which. Runs inside the caller's transaction on `db`. */
gh_err_t gh_auth_account_for_email(gh_app_t *app, gh_db_t *db, const char *email,
                                   gh_account_t *out, bool *created);

/* Starts a session for `account_id` on `db` (inside the caller's transaction) and writes its
 * secret into `out`. The session's organization is `org_id`, or when NULL the first one the
 * account belongs to. Used by every way of signing in: links, invites, OpenID Connect. */
gh_err_t gh_auth_start_session(gh_app_t *app, gh_db_t *db, const char *account_id,
                               const char *org_id, const char *ip, const char *user_agent,
                               gh_login_t *out);

/* Loads the live session whose cookie holds `secret`, and its account. GH_EAUTH when the
 * secret is malformed, unknown, revoked or expired. */
gh_err_t gh_auth_session(gh_app_t *app, const char *secret, gh_session_t *session,
                         gh_account_t *account);

/* Revokes a session. */
gh_err_t gh_auth_logout(gh_app_t *app, const gh_session_t *session);

/* True once the account has given its name and accepted the terms. */
bool gh_auth_onboarded(const gh_account_t *account);

/* Records onboarding: full name (1–100 characters after trimming), age confirmation and
 * terms acceptance (both must be true), with the time and the configured terms version.
 * GH_EINVAL with a message when something is missing. */
gh_err_t gh_auth_onboard(gh_app_t *app, gh_account_t *account, const char *full_name,
                         bool confirmed_age_18, bool accepted_terms, char *msg, size_t msg_size);

/* Reads for the console, on the calling thread's connection (GH_ESTORE when it cannot be
 * opened). The organizations `account_id` belongs to, oldest membership first; and its
 * membership in `org_id` (GH_ENOTFOUND when it has none). */
gh_err_t gh_auth_memberships(gh_app_t *app, const char *account_id, gh_store_membership_fn fn,
                             void *ctx);
gh_err_t gh_auth_membership(gh_app_t *app, const char *org_id, const char *account_id,
                            gh_membership_t *out);

#endif
