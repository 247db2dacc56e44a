#include "core/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/outbox.h"
#include "lib/log.h"
#include "lib/text.h"
#include "store/store.h"

int64_t gh_app_clock(void)
{
    return (int64_t)time(NULL);
}

/* "45 seconds", "12 minutes", "2 hours": a wait as a person reads it, rounded up. */
void gh_auth_wait_text(char *out, size_t size, int seconds)
{
    if (seconds < 90)
        snprintf(out, size, "%d second%s", seconds, seconds == 1 ? "" : "s");
    else if (seconds < 90 * 60)
        snprintf(out, size, "%d minutes", (seconds + 59) / 60);
    else
        snprintf(out, size, "%d hours", (seconds + 3599) / 3600);
}

gh_err_t gh_auth_request_link(gh_app_t *app, const char *email_in, const char *ip,
                              int *retry_after_s, char *msg, size_t msg_size)
{
    const gh_config_t *cfg = app->cfg;
    char email[GH_EMAIL_MAX];
    if (gh_email_normalize(email_in, email, sizeof(email))) {
        snprintf(msg, msg_size, "\"%.80s\" is not an email address. Enter an address like "
                                "name@example.com.", email_in);
        return GH_EINVAL;
    }
    int64_t now = app->now();
    char key[GH_EMAIL_MAX + 16];
    snprintf(key, sizeof(key), "ip:%s", ip);
    if (!gh_throttle_hit(app->throttle, key, cfg->link_limit_per_ip, cfg->link_limit_window_s,
                         now, retry_after_s)) {
        char wait[32];
        gh_auth_wait_text(wait, sizeof(wait), *retry_after_s);
        snprintf(msg, msg_size, "Too many sign-in emails were requested from your network. "
                                "Try again in %s.", wait);
        return GH_ERATE;
    }
    snprintf(key, sizeof(key), "email:%s", email);
    if (!gh_throttle_hit(app->throttle, key, cfg->link_limit_per_email,
                         cfg->link_limit_window_s, now, retry_after_s)) {
        char wait[32];
        gh_auth_wait_text(wait, sizeof(wait), *retry_after_s);
        snprintf(msg, msg_size, "Too many sign-in emails were sent to this address. Use the "
                                "newest one, or try again in %s.", wait);
        return GH_ERATE;
    }

    char token[GH_SECRET_MAX], hash[GH_SHA256_HEX_MAX];
    gh_secret_new(token);
    gh_sha256_hex(hash, token, strlen(token));
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;

    char link[GH_CONFIG_STR + 128];
    snprintf(link, sizeof(link), "%s/auth/verify?token=%s", cfg->public_url, token);
    int minutes = (cfg->link_ttl_s + 59) / 60;
    char subject[128], body[2048];
    snprintf(subject, sizeof(subject), "Sign in to %s", cfg->product_name);
    snprintf(body, sizeof(body),
             "Hello,\n\n"
             "Use the link below to sign in to %s. It works once and expires in %d minute%s.\n\n"
             "%s\n\n"
             "If you did not ask to sign in, ignore this email: nobody can sign in without "
             "the link.\n\n"
             "— %s\n",
             cfg->product_name, minutes, minutes == 1 ? "" : "s", link, cfg->product_name);
    /* The link and its mail in one transaction; the mailer sends it after the commit. */
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    if ((rc = gh_store_link_insert(db, hash, email, ip, now, now + cfg->link_ttl_s)) ||
        (rc = gh_outbox_add_action(app, db, email, subject, body, subject, link)) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        return rc;
    }
    gh_outbox_kick(app);
    /* Local trial mode only: with no SMTP server, print the link so a person can click it.
     * With SMTP configured the link never reaches the log. */
    if (gh_mailer_is_outbox(app->mailer))
        gh_log_info("auth: sign-in link for %s (outbox mode, no SMTP configured): %s", email,
                    link);
    return GH_OK;
}

static void keep_first(void *ctx, const gh_membership_t *m)
{
    gh_session_t *s = ctx;
    if (!s->current_org_id[0])
        snprintf(s->current_org_id, sizeof(s->current_org_id), "%s", m->org_id);
}

gh_err_t gh_auth_account_for_email(gh_app_t *app, gh_db_t *db, const char *email,
                                   gh_account_t *out, bool *created)
{
    *created = false;
    gh_err_t rc = gh_store_account_by_email(db, email, out);
    if (rc != GH_ENOTFOUND)
        return rc;
    memset(out, 0, sizeof(*out));
    gh_id_new(out->id, "user");
    snprintf(out->email, sizeof(out->email), "%s", email);
    out->created_at = app->now();
    rc = gh_store_account_insert(db, out);
    *created = rc == GH_OK;
    return rc;
}

gh_err_t gh_auth_start_session(gh_app_t *app, gh_db_t *db, const char *account_id,
                               const char *org_id, const char *ip, const char *user_agent,
                               gh_login_t *out)
{
    int64_t now = app->now();
    gh_session_t s;
    memset(&s, 0, sizeof(s));
    gh_secret_new(out->session_secret);
    gh_sha256_hex(s.id_hash, out->session_secret, strlen(out->session_secret));
    snprintf(s.account_id, sizeof(s.account_id), "%s", account_id);
    snprintf(out->account_id, sizeof(out->account_id), "%s", account_id);
    gh_secret_new(s.csrf_token);
    s.created_at = now;
    s.expires_at = now + app->cfg->session_ttl_s;
    if (org_id && *org_id) {
        snprintf(s.current_org_id, sizeof(s.current_org_id), "%s", org_id);
    } else {
        /* Start in the first organization the account belongs to, if any. */
        gh_err_t rc = gh_store_memberships(db, account_id, keep_first, &s);
        if (rc)
            return rc;
    }
    char ua[256];
    snprintf(ua, sizeof(ua), "%s", user_agent ? user_agent : "");
    return gh_store_session_insert(db, &s, ip, ua);
}

gh_err_t gh_auth_check_link(gh_app_t *app, const char *token)
{
    if (!token || !gh_secret_valid(token))
        return GH_ENOTFOUND;
    char hash[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hash, token, strlen(token));
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_link_check(db, hash, app->now()) : GH_ESTORE;
}

gh_err_t gh_auth_open_link(gh_app_t *app, const char *token, const char *ip,
                           const char *user_agent, const char *keep_email, gh_login_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!token || !gh_secret_valid(token))
        return GH_ENOTFOUND;
    char hash[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hash, token, strlen(token));
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;

    /* Consuming the link, creating the account and starting the session are one unit:
     * a failure half-way leaves the link unused. */
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    char email[GH_EMAIL_MAX];
    gh_account_t acct;
    if ((rc = gh_store_link_consume(db, hash, app->now(), email))) {
        gh_store_rollback(db);
        return rc;
    }
    snprintf(out->email, sizeof(out->email), "%s", email);
    if (keep_email && strcasecmp(keep_email, email) != 0) {
        gh_store_rollback(db); /* the link stays unused */
        return GH_EPERM;
    }
    if ((rc = gh_auth_account_for_email(app, db, email, &acct, &out->new_account)) ||
        (rc = gh_auth_start_session(app, db, acct.id, NULL, ip, user_agent, out))) {
        gh_store_rollback(db);
        return rc;
    }
    return gh_store_commit(db);
}

gh_err_t gh_auth_session(gh_app_t *app, const char *secret, gh_session_t *session,
                         gh_account_t *account)
{
    if (!secret || !gh_secret_valid(secret))
        return GH_EAUTH;
    char hash[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hash, secret, strlen(secret));
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_err_t rc = gh_store_session_get(db, hash, app->now(), session);
    if (rc)
        return rc == GH_ENOTFOUND ? GH_EAUTH : rc;
    rc = gh_store_account_get(db, session->account_id, account);
    return rc == GH_ENOTFOUND ? GH_EAUTH : rc;
}

gh_err_t gh_auth_logout(gh_app_t *app, const gh_session_t *session)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    return gh_store_session_revoke(db, session->id_hash, app->now());
}

bool gh_auth_onboarded(const gh_account_t *account)
{
    return account->terms_accepted_at > 0 && account->age_confirmed_at > 0 &&
           account->full_name[0];
}

gh_err_t gh_auth_onboard(gh_app_t *app, gh_account_t *account, const char *full_name_in,
                         bool confirmed_age_18, bool accepted_terms, char *msg, size_t msg_size)
{
    char name[sizeof(account->full_name)];
    if (gh_text_trim(full_name_in, name, sizeof(name)) || gh_utf8_chars(name) > 100) {
        snprintf(msg, msg_size, "full_name is too long: use at most 100 characters.");
        return GH_EINVAL;
    }
    if (gh_text_is_blank(name)) {
        snprintf(msg, msg_size, "Enter your full name.");
        return GH_EINVAL;
    }
    if (gh_text_has_unsafe(name)) {
        snprintf(msg, msg_size,
                 "full_name must not contain control characters or text-direction marks.");
        return GH_EINVAL;
    }
    if (!confirmed_age_18) {
        snprintf(msg, msg_size, "You must confirm that you are at least 18 years old.");
        return GH_EINVAL;
    }
    if (!accepted_terms) {
        snprintf(msg, msg_size, "You must accept the terms of service to continue.");
        return GH_EINVAL;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    int64_t now = app->now();
    gh_err_t rc = gh_store_account_onboard(db, account->id, name, app->cfg->terms_version, now);
    if (rc)
        return rc;
    snprintf(account->full_name, sizeof(account->full_name), "%s", name);
    account->age_confirmed_at = now;
    account->terms_accepted_at = now;
    snprintf(account->terms_version, sizeof(account->terms_version), "%s",
             app->cfg->terms_version);
    return GH_OK;
}

gh_err_t gh_auth_memberships(gh_app_t *app, const char *account_id, gh_store_membership_fn fn,
                             void *ctx)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_memberships(db, account_id, fn, ctx) : GH_ESTORE;
}

gh_err_t gh_auth_membership(gh_app_t *app, const char *org_id, const char *account_id,
                            gh_membership_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_membership_get(db, org_id, account_id, out) : GH_ESTORE;
}
