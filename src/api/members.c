/* /v1/organizations/users and /v1/organizations/invites; the invitation link /auth/invite. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/members.h"
#include "lib/text.h"

static json_t *user_json(const gh_org_user_t *u)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "type", "user", "id", u->id, "email",
                     u->email, "name", u->name, "role", u->role, "added_at",
                     gh_api_time(u->added_at));
}

static void add_user(void *list, const gh_org_user_t *u)
{
    json_array_append_new(list, user_json(u));
}

void gh_api_users_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    if (!gh_api_page(req, &page))
        return;
    const char *email = gh_req_query(req, "email");
    char norm[GH_EMAIL_MAX];
    if (email && gh_email_normalize(email, norm, sizeof(norm))) {
        gh_res_error(req, GH_EINVAL, "email \"%.80s\" is not an email address.", email);
        return;
    }
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc = gh_member_list(ctx->app, ctx->actor.org_id, email ? norm : NULL, &page,
                                 add_user, data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the members. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}

void gh_api_user_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "user_id");
    gh_org_user_t u;
    gh_err_t rc = !gh_id_valid(id, "user") ? GH_ENOTFOUND
                                           : gh_member_get(ctx->app, ctx->actor.org_id, id, &u);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "There is no member of this organization with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not load the member. Try again.");
    else
        gh_res_json(req, 200, user_json(&u));
}

void gh_api_user_update(gh_req_t *req)
{
    static const char *const fields[] = {"role", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *role;
    if (!body)
        return;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "role", true, false, &role)) {
        char msg[512] = "";
        gh_org_user_t u;
        gh_err_t rc = gh_member_set_role(ctx->app, &ctx->actor, gh_req_param(req, "user_id"),
                                         role, &u, msg, sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not change the role. Try again.");
        else
            gh_res_json(req, 200, user_json(&u));
    }
    json_decref(body);
}

void gh_api_user_delete(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "user_id");
    char msg[512] = "";
    gh_err_t rc = gh_member_remove(ctx->app, &ctx->actor, id, msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not remove the member. Try again.");
    else
        gh_res_json(req, 200, json_pack("{s:s, s:s}", "type", "user_deleted", "id", id));
}

static json_t *invite_json(const gh_invite_t *inv, int64_t now)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "type", "invite", "id", inv->id,
                     "email", inv->email, "role", inv->role, "invited_at",
                     gh_api_time(inv->invited_at), "expires_at", gh_api_time(inv->expires_at),
                     "accepted_at", gh_api_time(inv->accepted_at), "status",
                     gh_invite_status(inv, now));
}

typedef struct {
    json_t *data;
    int64_t now;
} invites_ctx_t;

static void add_invite(void *p, const gh_invite_t *inv)
{
    invites_ctx_t *ic = p;
    json_array_append_new(ic->data, invite_json(inv, ic->now));
}

void gh_api_invites_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    if (!gh_api_page(req, &page))
        return;
    const char *status = gh_req_query(req, "status");
    if (status && strcmp(status, "pending") && strcmp(status, "accepted") &&
        strcmp(status, "expired") && strcmp(status, "deleted")) {
        gh_res_error(req, GH_EINVAL, "status must be pending, accepted, expired or deleted.");
        return;
    }
    invites_ctx_t ic = {json_array(), ctx->app->now()};
    bool more = false;
    gh_err_t rc = gh_invite_list(ctx->app, ctx->actor.org_id, status, ic.now, &page, add_invite,
                                 &ic, &more);
    if (rc) {
        json_decref(ic.data);
        gh_api_fail(req, rc, "", "Could not list the invites. Try again.");
        return;
    }
    gh_api_list(req, ic.data, more, "id");
}

void gh_api_invite_create(gh_req_t *req)
{
    static const char *const fields[] = {"email", "role", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *email, *role;
    if (!body)
        return;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "email", true, false, &email) &&
        gh_api_str(req, body, "role", true, false, &role)) {
        char msg[512] = "";
        gh_invite_t inv;
        int retry = 0;
        gh_err_t rc = gh_invite_create(ctx->app, &ctx->actor, email, role, &inv, &retry, msg,
                                       sizeof(msg));
        if (rc == GH_ERATE)
            gh_api_retry_after(req, retry);
        if (rc)
            gh_api_fail(req, rc, msg, "Could not create the invite. Try again.");
        else
            gh_res_json(req, 201, invite_json(&inv, ctx->app->now()));
    }
    json_decref(body);
}

void gh_api_invite_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "invite_id");
    gh_invite_t inv;
    gh_err_t rc = !gh_id_valid(id, "invite")
                      ? GH_ENOTFOUND
                      : gh_invite_get(ctx->app, ctx->actor.org_id, id, &inv);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "There is no invite with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not load the invite. Try again.");
    else
        gh_res_json(req, 200, invite_json(&inv, ctx->app->now()));
}

void gh_api_invite_resend(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    char msg[512] = "";
    gh_invite_t inv;
    int retry = 0;
    gh_err_t rc = gh_invite_resend(ctx->app, &ctx->actor, gh_req_param(req, "invite_id"), &inv,
                                   &retry, msg, sizeof(msg));
    if (rc == GH_ERATE)
        gh_api_retry_after(req, retry);
    if (rc)
        gh_api_fail(req, rc, msg, "Could not resend the invite. Try again.");
    else
        gh_res_json(req, 200, invite_json(&inv, ctx->app->now()));
}

void gh_api_invite_delete(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "invite_id");
    char msg[512] = "";
    gh_err_t rc = gh_invite_delete(ctx->app, &ctx->actor, id, msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not revoke the invite. Try again.");
    else
        gh_res_json(req, 200, json_pack("{s:s, s:s}", "type", "invite_deleted", "id", id));
}

/* Why an invitation link cannot be used: the code the login page explains, and the
 * sentence. */
static const struct {
    const char *code, *msg;
} invite_why[] = {
    [GH_INVITE_JOINED] = {"invalid_link", ""},
    [GH_INVITE_INVALID] = {"invalid_link", "This invitation link is not valid."},
    [GH_INVITE_USED] = {"invite_used", "This invitation was already accepted. Sign in instead."},
    [GH_INVITE_REVOKED] = {"invite_revoked", "This invitation was revoked. Ask an admin of the "
                                             "organization for a new one."},
    [GH_INVITE_EXPIRED] = {"invite_expired", "This invitation has expired. Ask an admin of "
                                             "the organization to send it again."},
};

/* GET /auth/invite?token=…: the mailed link. Like a sign-in link it only checks: a usable one
 * goes on to the console's /accept-invite page with the token in the fragment, whose script
 * posts it; one that cannot be used goes to the login page, which says why. */
void gh_api_invite_accept(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const gh_config_t *cfg = ctx->app->cfg;
    const char *token = gh_req_query(req, "token");
    gh_invite_outcome_t outcome;
    gh_err_t rc = gh_invite_check(ctx->app, token, &outcome);
    char location[GH_CONFIG_STR + GH_SECRET_MAX + 64];
    if (!rc) {
        snprintf(location, sizeof(location), "%s/accept-invite#token=%s", cfg->public_url, token);
        gh_res_redirect(req, location);
        return;
    }
    if (rc != GH_ENOTFOUND && rc != GH_ECONFLICT) {
        gh_res_error(req, rc, "Could not check the invitation. Try the link again.");
        return;
    }
    const char *accept = gh_req_header(req, "accept");
    if (accept && strstr(accept, "application/json")) {
        gh_res_error(req, GH_EINVAL, "%s", invite_why[outcome].msg);
        return;
    }
    snprintf(location, sizeof(location), "%s/login?error=%s", cfg->public_url,
             invite_why[outcome].code);
    gh_res_redirect(req, location);
}

/* POST /auth/invite {"token"}: accepts the invitation (once), signs in as the invited
 * address with that organization current. */
void gh_api_invite_accept_post(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *token;
    bool switch_account;
    json_t *body = gh_api_token_body(req, &token, &switch_account);
    if (!body)
        return;
    char current[GH_EMAIL_MAX];
    const char *signed_in = gh_api_signed_in_email(req, current);
    gh_login_t login;
    gh_invite_outcome_t outcome;
    gh_err_t rc = gh_invite_accept(ctx->app, token, req->ip, gh_req_header(req, "user-agent"),
                                   switch_account ? NULL : signed_in, &login, &outcome);
    if (rc == GH_EPERM && signed_in) {
        gh_api_refuse_switch(req, signed_in, login.email);
    } else if (!rc) {
        if (signed_in && strcasecmp(signed_in, login.email) != 0)
            gh_api_end_previous_session(req);
        gh_api_session_cookie(req, login.session_secret, ctx->app->cfg->session_ttl_s);
        gh_res_json(req, 200, json_pack("{s:s, s:b}", "type", "invite_accepted", "new_account",
                                        login.new_account));
    } else if (rc == GH_ENOTFOUND || rc == GH_ECONFLICT) {
        gh_res_error(req, GH_EINVAL, "%s", invite_why[outcome].msg);
    } else {
        gh_res_error(req, rc, "Could not accept the invitation. Try the link again.");
    }
    json_decref(body);
}
