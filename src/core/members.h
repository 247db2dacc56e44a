/* Organization members and invitations. Only admins change roles, remove people and manage
 * invitations; the last admin can be neither demoted nor removed. An invitation mails a
 * single-use link (invite_ttl_days to live); opening it signs in or signs up as the invited
 * address and joins the organization with the invited role. */
#ifndef GH_CORE_MEMBERS_H
#define GH_CORE_MEMBERS_H

#include "core/actor.h"
#include "core/app.h"
#include "core/auth.h"

gh_err_t gh_member_set_role(gh_app_t *app, const gh_actor_t *actor, const char *user_id,
                            const char *role, gh_org_user_t *out, char *msg, size_t msg_size);
gh_err_t gh_member_remove(gh_app_t *app, const gh_actor_t *actor, const char *user_id,
                          char *msg, size_t msg_size);

/* "pending", "accepted", "expired" or "deleted" at `now`. */
const char *gh_invite_status(const gh_invite_t *inv, int64_t now);

/* Creating and resending invitations mail someone, so both are throttled: at most
 * [organizations] invite_limit_per_org mails per organization and invite_limit_per_recipient
 * per address in invite_limit_window_s. Over either, nothing changes and GH_ERATE is returned
 * with `*retry_after_s` set. */
gh_err_t gh_invite_create(gh_app_t *app, const gh_actor_t *actor, const char *email,
                          const char *role, gh_invite_t *out, int *retry_after_s, char *msg,
                          size_t msg_size);
gh_err_t gh_invite_resend(gh_app_t *app, const gh_actor_t *actor, const char *id,
                          gh_invite_t *out, int *retry_after_s, char *msg, size_t msg_size);
gh_err_t gh_invite_delete(gh_app_t *app, const gh_actor_t *actor, const char *id, char *msg,
                          size_t msg_size);

typedef enum {
    GH_INVITE_JOINED,
    GH_INVITE_INVALID,
    GH_INVITE_USED,
    GH_INVITE_REVOKED,
    GH_INVITE_EXPIRED,
} gh_invite_outcome_t;

/* Checks an invitation link without using it (what a GET of the mailed link does, so that
 * mail scanners do not accept invitations): GH_OK for a pending one; otherwise the errors and
 * `*outcome` of gh_invite_accept. */
gh_err_t gh_invite_check(gh_app_t *app, const char *token, gh_invite_outcome_t *outcome);

/* Opens an invitation link: joins the organization (unless already a member), marks the
 * invite accepted, signs in as the invited address and makes that organization current, all
 * in one transaction. `*outcome` says why when it does not; nothing changes then.
 * `keep_email`: as for gh_auth_open_link: when another account is signed in, GH_EPERM with
 * `login->email` set to the invited address, and nothing changes. */
gh_err_t gh_invite_accept(gh_app_t *app, const char *token, const char *ip,
                          const char *user_agent, const char *keep_email, gh_login_t *login,
                          gh_invite_outcome_t *outcome);

/* Reads for the console: members of the organization in the order they joined (`email` may
 * be NULL, or a normalized address that filters) and one by account id; invites, `status`
 * (may be NULL) judged at `now`, and one by id. GH_ENOTFOUND for an unknown id, GH_EINVAL for
 * a cursor not in the list. */
gh_err_t gh_member_list(gh_app_t *app, const char *org_id, const char *email,
                        const gh_page_t *page, gh_store_user_fn fn, void *ctx, bool *has_more);
gh_err_t gh_member_get(gh_app_t *app, const char *org_id, const char *account_id,
                       gh_org_user_t *out);
gh_err_t gh_invite_list(gh_app_t *app, const char *org_id, const char *status, int64_t now,
                        const gh_page_t *page, gh_store_invite_fn fn, void *ctx, bool *has_more);
gh_err_t gh_invite_get(gh_app_t *app, const char *org_id, const char *id, gh_invite_t *out);

#endif
