#include "core/members.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/audit.h"
#include "core/outbox.h"
#include "lib/log.h"
#include "lib/text.h"
#include "store/store.h"

static gh_err_t load_member(gh_db_t *db, const gh_actor_t *actor, const char *user_id,
                            gh_org_user_t *u, char *msg, size_t msg_size)
{
    gh_err_t rc = gh_id_valid(user_id, "user") ? gh_store_user_get(db, actor->org_id, user_id, u)
                                               : GH_ENOTFOUND;
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "There is no member of this organization with id \"%.60s\".",
                 user_id);
    return rc;
}

static gh_err_t need_admin(const gh_actor_t *actor, const char *what, char *msg, size_t msg_size)
{
    if (actor->role == GH_ROLE_ADMIN)
        return GH_OK;
    snprintf(msg, msg_size, "Only admins can %s.", what);
    return GH_EPERM;
}

/* GH_ECONFLICT when `u` is the organization's only admin. */
static gh_err_t not_last_admin(gh_db_t *db, const gh_org_user_t *u, const char *org_id,
                               const char *what, char *msg, size_t msg_size)
{
    if (strcmp(u->role, "admin"))
        return GH_OK;
    int admins = 0;
    gh_err_t rc = gh_store_admin_count(db, org_id, &admins);
    if (rc)
        return rc;
    if (admins > 1)
        return GH_OK;
    snprintf(msg, msg_size,
             "%s is the organization's only admin and cannot be %s. Make someone else an admin "
             "first.",
             u->email, what);
    return GH_ECONFLICT;
}

gh_err_t gh_member_set_role(gh_app_t *app, const gh_actor_t *actor, const char *user_id,
                            const char *role, gh_org_user_t *out, char *msg, size_t msg_size)
{
    gh_err_t rc = need_admin(actor, "change roles", msg, msg_size);
    if (rc)
        return rc;
    if (gh_role_parse(role) == GH_ROLE_NONE) {
        snprintf(msg, msg_size, "role must be user, developer, billing or admin.");
        return GH_EINVAL;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_org_user_t u;
    if ((rc = load_member(db, actor, user_id, &u, msg, msg_size)))
        goto out_rollback;
    if (!strcmp(u.role, role)) { /* nothing to change, nothing to record */
        *out = u;
        gh_store_rollback(db);
        return GH_OK;
    }
    if (strcmp(role, "admin") &&
        (rc = not_last_admin(db, &u, actor->org_id, "demoted", msg, msg_size)))
        goto out_rollback;
    if ((rc = gh_store_membership_set_role(db, actor->org_id, u.id, role)) ||
        (rc = gh_audit(app, db, actor, "user.role_changed", "user", u.id,
                       json_pack("{s:s, s:o}", "email", u.email, "role",
                                 json_pack("{s:s, s:s}", "from", u.role, "to", role)))) ||
        (rc = gh_store_user_get(db, actor->org_id, u.id, out)) || (rc = gh_store_commit(db)))
        goto out_rollback;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_member_remove(gh_app_t *app, const gh_actor_t *actor, const char *user_id,
                          char *msg, size_t msg_size)
{
    gh_err_t rc = need_admin(actor, "remove members", msg, msg_size);
    if (rc)
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_org_user_t u;
    if ((rc = load_member(db, actor, user_id, &u, msg, msg_size)) ||
        (rc = not_last_admin(db, &u, actor->org_id, "removed", msg, msg_size)) ||
        (rc = gh_store_membership_delete(db, actor->org_id, u.id)) ||
        (rc = gh_audit(app, db, actor, "user.removed", "user", u.id,
                       json_pack("{s:s, s:s}", "email", u.email, "role", u.role))) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        return rc;
    }
    return GH_OK;
}

const char *gh_invite_status(const gh_invite_t *inv, int64_t now)
{
    if (inv->accepted_at)
        return "accepted";
    if (inv->deleted_at)
        return "deleted";
    return now >= inv->expires_at ? "expired" : "pending";
}

/* Queues the mail with the invitation link for `token`, in the caller's transaction on `db`
 * (the mailer sends it after the commit: no mail server is talked to while the write lock is
 * held). */
static gh_err_t mail_invite(gh_app_t *app, gh_db_t *db, const gh_actor_t *actor,
                            const gh_invite_t *inv, const char *token)
{
    const gh_config_t *cfg = app->cfg;
    gh_org_settings_t org;
    if (gh_store_org_settings_get(db, inv->org_id, &org))
        return GH_ESTORE;
    /* The inviter by name ("Ada Lovelace invited you"), else by email (or an admin key's
     * name). */
    const char *inviter = actor->label;
    gh_account_t who;
    if (actor->kind == GH_ACTOR_USER && !gh_store_account_get(db, actor->id, &who) &&
        who.full_name[strspn(who.full_name, " \t")])
        inviter = who.full_name;
    char link[GH_CONFIG_STR + 128], subject[512], body[4096];
    snprintf(link, sizeof(link), "%s/auth/invite?token=%s", cfg->public_url, token);
    snprintf(subject, sizeof(subject), "You are invited to join %s on %s", org.name,
             cfg->product_name);
    for (char *p = subject; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    snprintf(body, sizeof(body),
             "Hello,\n\n"
             "%s invited you to join the organization \"%s\" on %s as %s %s.\n\n"
             "Accept the invitation with this link. It works once and expires in %d days:\n\n"
             "%s\n\n"
             "If you did not expect this invitation, ignore this email.\n\n"
             "— %s\n",
             inviter, org.name, cfg->product_name,
             !strcmp(inv->role, "admin") ? "an" : "a", inv->role, cfg->invite_ttl_days, link,
             cfg->product_name);
    gh_err_t rc = gh_outbox_add_action(app, db, inv->email, subject, body, "Accept invitation",
                                       link);
    if (!rc && gh_mailer_is_outbox(app->mailer))
        gh_log_info("members: invitation link for %s (outbox mode, no SMTP configured): %s",
                    inv->email, link);
    return rc;
}

/* Counts one invitation mail to `email` from `org_id` against both limits (see members.h).
 * GH_ERATE with the wait in `*retry_after_s` and a message when over either. */
static gh_err_t invite_mail_allowed(gh_app_t *app, const char *org_id, const char *email,
                                    int *retry_after_s, char *msg, size_t msg_size)
{
    const gh_config_t *cfg = app->cfg;
    char key[GH_EMAIL_MAX + GH_ID_MAX + 16], wait[32];
    int64_t now = app->now();
    snprintf(key, sizeof(key), "invite-to:%s", email);
    if (!gh_throttle_hit(app->throttle, key, cfg->invite_limit_per_recipient,
                         cfg->invite_limit_window_s, now, retry_after_s)) {
        gh_auth_wait_text(wait, sizeof(wait), *retry_after_s);
        snprintf(msg, msg_size, "Too many invitation emails were sent to %s. The newest one is "
                                "still valid; try again in %s.", email, wait);
        return GH_ERATE;
    }
    snprintf(key, sizeof(key), "invite-org:%s", org_id);
    if (!gh_throttle_hit(app->throttle, key, cfg->invite_limit_per_org,
                         cfg->invite_limit_window_s, now, retry_after_s)) {
        gh_auth_wait_text(wait, sizeof(wait), *retry_after_s);
        snprintf(msg, msg_size, "This organization has sent too many invitation emails. Try "
                                "again in %s.", wait);
        return GH_ERATE;
    }
    return GH_OK;
}

gh_err_t gh_invite_create(gh_app_t *app, const gh_actor_t *actor, const char *email_in,
                          const char *role, gh_invite_t *out, int *retry_after_s, char *msg,
                          size_t msg_size)
{
    gh_err_t rc = need_admin(actor, "invite people", msg, msg_size);
    if (rc)
        return rc;
    gh_invite_t inv;
    memset(&inv, 0, sizeof(inv));
    if (gh_email_normalize(email_in, inv.email, sizeof(inv.email))) {
        snprintf(msg, msg_size, "\"%.80s\" is not an email address.", email_in);
        return GH_EINVAL;
    }
    if (gh_role_parse(role) == GH_ROLE_NONE) {
        snprintf(msg, msg_size, "role must be user, developer, billing or admin.");
        return GH_EINVAL;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    int64_t now = app->now();
    gh_account_t existing;
    gh_membership_t m;
    if (!gh_store_account_by_email(db, inv.email, &existing) &&
        !gh_store_membership_get(db, actor->org_id, existing.id, &m)) {
        snprintf(msg, msg_size, "%s is already a member of this organization.", inv.email);
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    gh_invite_t open;
    rc = gh_store_invite_open_for(db, actor->org_id, inv.email, &open);
    if (rc == GH_OK) {
        if (now < open.expires_at) {
            snprintf(msg, msg_size,
                     "%s already has a pending invitation. Resend it instead of inviting again.",
                     inv.email);
            rc = GH_ECONFLICT;
            goto out_rollback;
        }
        /* An expired invitation gives way to the new one, on the record. */
        if ((rc = gh_store_invite_mark(db, open.id, false, now)) ||
            (rc = gh_audit(app, db, actor, "invite.deleted", "invite", open.id,
                           json_pack("{s:s, s:s}", "email", open.email, "reason",
                                     "replaced by a new invitation"))))
            goto out_rollback;
    } else if (rc != GH_ENOTFOUND) {
        goto out_rollback;
    }
    if ((rc = invite_mail_allowed(app, actor->org_id, inv.email, retry_after_s, msg, msg_size)))
        goto out_rollback;
    gh_id_new(inv.id, "invite");
    snprintf(inv.org_id, sizeof(inv.org_id), "%s", actor->org_id);
    snprintf(inv.role, sizeof(inv.role), "%s", role);
    inv.invited_at = now;
    inv.expires_at = now + (int64_t)app->cfg->invite_ttl_days * 86400;
    char token[GH_SECRET_MAX], hash[GH_SHA256_HEX_MAX];
    gh_secret_new(token);
    gh_sha256_hex(hash, token, strlen(token));
    if ((rc = gh_store_invite_insert(db, &inv, hash)) ||
        (rc = gh_audit(app, db, actor, "invite.created", "invite", inv.id,
                       json_pack("{s:s, s:s}", "email", inv.email, "role", inv.role))))
        goto out_rollback;
    /* The mail is queued in the same transaction: the invitation and its mail exist together
     * or not at all, and the mailer retries until it goes out. */
    if ((rc = mail_invite(app, db, actor, &inv, token))) {
        snprintf(msg, msg_size, "The invitation email to %s could not be queued. Try again.",
                 inv.email);
        goto out_rollback;
    }
    if ((rc = gh_store_commit(db)))
        return rc;
    gh_outbox_kick(app);
    *out = inv;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

static gh_err_t load_invite(gh_db_t *db, const gh_actor_t *actor, const char *id,
                            gh_invite_t *inv, char *msg, size_t msg_size)
{
    gh_err_t rc = gh_id_valid(id, "invite") ? gh_store_invite_get(db, actor->org_id, id, inv)
                                            : GH_ENOTFOUND;
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "There is no invite with id \"%.60s\".", id);
    return rc;
}

gh_err_t gh_invite_resend(gh_app_t *app, const gh_actor_t *actor, const char *id,
                          gh_invite_t *out, int *retry_after_s, char *msg, size_t msg_size)
{
    gh_err_t rc = need_admin(actor, "resend invitations", msg, msg_size);
    if (rc)
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_invite_t inv;
    if ((rc = load_invite(db, actor, id, &inv, msg, msg_size)))
        goto out_rollback;
    int64_t now = app->now();
    const char *status = gh_invite_status(&inv, now);
    if (strcmp(status, "pending") && strcmp(status, "expired")) {
        snprintf(msg, msg_size, "This invitation was %s and cannot be sent again.", status);
        rc = GH_EINVAL;
        goto out_rollback;
    }
    if ((rc = invite_mail_allowed(app, actor->org_id, inv.email, retry_after_s, msg, msg_size)))
        goto out_rollback;
    char token[GH_SECRET_MAX], hash[GH_SHA256_HEX_MAX];
    gh_secret_new(token);
    gh_sha256_hex(hash, token, strlen(token));
    inv.expires_at = now + (int64_t)app->cfg->invite_ttl_days * 86400;
    if ((rc = gh_store_invite_renew(db, inv.id, hash, inv.expires_at)) ||
        (rc = gh_audit(app, db, actor, "invite.resent", "invite", inv.id,
                       json_pack("{s:s}", "email", inv.email))))
        goto out_rollback;
    if ((rc = mail_invite(app, db, actor, &inv, token))) {
        snprintf(msg, msg_size, "The invitation email to %s could not be queued. Try again.",
                 inv.email);
        goto out_rollback;
    }
    if ((rc = gh_store_commit(db)))
        return rc;
    gh_outbox_kick(app);
    *out = inv;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_invite_delete(gh_app_t *app, const gh_actor_t *actor, const char *id, char *msg,
                          size_t msg_size)
{
    gh_err_t rc = need_admin(actor, "revoke invitations", msg, msg_size);
    if (rc)
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_invite_t inv;
    if ((rc = load_invite(db, actor, id, &inv, msg, msg_size)))
        goto out_rollback;
    if (inv.accepted_at || inv.deleted_at) {
        snprintf(msg, msg_size, "This invitation was already %s.",
                 inv.accepted_at ? "accepted" : "revoked");
        rc = GH_EINVAL;
        goto out_rollback;
    }
    if ((rc = gh_store_invite_mark(db, inv.id, false, app->now())) ||
        (rc = gh_audit(app, db, actor, "invite.deleted", "invite", inv.id,
                       json_pack("{s:s}", "email", inv.email))) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* Finds the pending invite of `token`; GH_ENOTFOUND, or GH_ECONFLICT with `*outcome` saying
 * why it cannot be used. */
static gh_err_t pending_invite(gh_db_t *db, const char *token, int64_t now, gh_invite_t *inv,
                               gh_invite_outcome_t *outcome)
{
    *outcome = GH_INVITE_INVALID;
    if (!token || !gh_secret_valid(token))
        return GH_ENOTFOUND;
    char hash[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hash, token, strlen(token));
    gh_err_t rc = gh_store_invite_by_token(db, hash, inv);
    if (rc)
        return rc;
    const char *status = gh_invite_status(inv, now);
    if (strcmp(status, "pending")) {
        *outcome = !strcmp(status, "accepted")  ? GH_INVITE_USED
                   : !strcmp(status, "deleted") ? GH_INVITE_REVOKED
                                                : GH_INVITE_EXPIRED;
        return GH_ECONFLICT;
    }
    return GH_OK;
}

gh_err_t gh_invite_check(gh_app_t *app, const char *token, gh_invite_outcome_t *outcome)
{
    gh_db_t *db = gh_store_db(app->store);
    gh_invite_t inv;
    *outcome = GH_INVITE_INVALID;
    return db ? pending_invite(db, token, app->now(), &inv, outcome) : GH_ESTORE;
}

gh_err_t gh_invite_accept(gh_app_t *app, const char *token, const char *ip,
                          const char *user_agent, const char *keep_email, gh_login_t *login,
                          gh_invite_outcome_t *outcome)
{
    memset(login, 0, sizeof(*login));
    *outcome = GH_INVITE_INVALID;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    gh_invite_t inv;
    int64_t now = app->now();
    if ((rc = pending_invite(db, token, now, &inv, outcome)))
        goto out_rollback;
    snprintf(login->email, sizeof(login->email), "%s", inv.email);
    if (keep_email && strcasecmp(keep_email, inv.email) != 0) {
        rc = GH_EPERM; /* the invitation stays pending */
        goto out_rollback;
    }
    gh_account_t acct;
    gh_membership_t m;
    if ((rc = gh_auth_account_for_email(app, db, inv.email, &acct, &login->new_account)))
        goto out_rollback;
    rc = gh_store_membership_get(db, inv.org_id, acct.id, &m);
    if (rc == GH_ENOTFOUND)
        rc = gh_store_membership_insert(db, inv.org_id, acct.id, inv.role, now);
    if (rc)
        goto out_rollback;
    gh_actor_t self = {.kind = GH_ACTOR_USER, .role = gh_role_parse(inv.role)};
    snprintf(self.id, sizeof(self.id), "%s", acct.id);
    snprintf(self.label, sizeof(self.label), "%s", acct.email);
    snprintf(self.org_id, sizeof(self.org_id), "%s", inv.org_id);
    snprintf(self.ip, sizeof(self.ip), "%s", ip);
    if ((rc = gh_store_invite_mark(db, inv.id, true, now)) ||
        (rc = gh_audit(app, db, &self, "invite.accepted", "invite", inv.id,
                       json_pack("{s:s, s:s}", "email", inv.email, "role", inv.role))) ||
        (rc = gh_auth_start_session(app, db, acct.id, inv.org_id, ip, user_agent, login)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    *outcome = GH_INVITE_JOINED;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_member_list(gh_app_t *app, const char *org_id, const char *email,
                        const gh_page_t *page, gh_store_user_fn fn, void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_users_list(db, org_id, email, page, fn, ctx, has_more) : GH_ESTORE;
}

gh_err_t gh_member_get(gh_app_t *app, const char *org_id, const char *account_id,
                       gh_org_user_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_user_get(db, org_id, account_id, out) : GH_ESTORE;
}

gh_err_t gh_invite_list(gh_app_t *app, const char *org_id, const char *status, int64_t now,
                        const gh_page_t *page, gh_store_invite_fn fn, void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_invites_list(db, org_id, status, now, page, fn, ctx, has_more)
              : GH_ESTORE;
}

gh_err_t gh_invite_get(gh_app_t *app, const char *org_id, const char *id, gh_invite_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_invite_get(db, org_id, id, out) : GH_ESTORE;
}
