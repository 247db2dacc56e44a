/* The route table and the dispatcher. Every route states the access it requires; the
 * dispatcher enforces it before the handler runs, so a handler never sees a caller who may
 * not call it. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/auth.h"
#include "http/router.h"
#include "lib/crypto.h"

static const gh_route_t routes[] = {
    {"GET", "/healthz", gh_api_healthz, GH_ACCESS_PUBLIC},
    {"GET", "/v1/countries", gh_api_countries, GH_ACCESS_PUBLIC},
    {"GET", "/auth/config", gh_api_auth_config, GH_ACCESS_PUBLIC},
    {"POST", "/auth/email", gh_api_auth_email, GH_ACCESS_PUBLIC},
    {"GET", "/auth/verify", gh_api_auth_verify, GH_ACCESS_PUBLIC},
    {"GET", "/auth/oidc/start", gh_api_oidc_start, GH_ACCESS_PUBLIC},
    {"GET", "/auth/oidc/callback", gh_api_oidc_callback, GH_ACCESS_PUBLIC},
    {"GET", "/auth/session", gh_api_auth_session, GH_ACCESS_SESSION},
    {"POST", "/auth/onboarding", gh_api_auth_onboarding, GH_ACCESS_SESSION},
    {"POST", "/auth/logout", gh_api_auth_logout, GH_ACCESS_SESSION},
    {"POST", "/auth/organizations", gh_api_auth_create_org, GH_ACCESS_ONBOARDED},
    {"POST", "/auth/session/organization", gh_api_auth_switch_org, GH_ACCESS_ONBOARDED},
    {"GET", "/v1/organizations/me", gh_api_org_me, GH_ACCESS_MEMBER},
    {"GET", "/v1/organizations/me/settings", gh_api_org_settings_get, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/me/settings", gh_api_org_settings_post, GH_ACCESS_BILLING},
};

static bool is_safe_method(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS");
}

/* Establishes the caller for `access`; answers and returns false when they fall short. */
static bool authorize(gh_req_t *req, gh_api_ctx_t *ctx, gh_access_t access)
{
    if (access == GH_ACCESS_PUBLIC)
        return true;
    gh_err_t rc = gh_auth_session(ctx->app, gh_req_cookie(req, "gh_session"), &ctx->session,
                                  &ctx->account);
    if (rc == GH_EAUTH) {
        gh_res_error(req, GH_EAUTH,
                     "Sign in first: you have no session, or it has expired or was signed out.");
        return false;
    }
    if (rc) {
        gh_res_error(req, rc, "Could not load your session. Try again.");
        return false;
    }
    ctx->has_session = true;

    /* A cookie rides along on cross-site requests; the CSRF token in a header does not. */
    if (!is_safe_method(req->method)) {
        const char *token = gh_req_header(req, "x-csrf-token");
        if (!token || !gh_ct_streq(token, ctx->session.csrf_token)) {
            gh_res_error(req, GH_EPERM,
                         "Missing or wrong x-csrf-token header: send the csrf_token from GET "
                         "/auth/session with every request that changes something.");
            return false;
        }
    }
    if (access == GH_ACCESS_SESSION)
        return true;
    if (!gh_auth_onboarded(&ctx->account)) {
        gh_res_error(req, GH_EPERM,
                     "Complete onboarding first: POST /auth/onboarding with your full name, "
                     "confirmed_age_18 and accepted_terms.");
        return false;
    }
    if (access == GH_ACCESS_ONBOARDED)
        return true;

    gh_db_t *db = gh_store_db(ctx->app->store);
    if (!db) {
        gh_res_error(req, GH_ESTORE, "The database is unavailable. Try again.");
        return false;
    }
    rc = ctx->session.current_org_id[0]
             ? gh_store_membership_get(db, ctx->session.current_org_id, ctx->account.id,
                                       &ctx->membership)
             : GH_ENOTFOUND;
    if (rc == GH_ENOTFOUND) {
        gh_res_error(req, GH_ENOTFOUND,
                     "No organization is selected: create one with POST /auth/organizations "
                     "or switch with POST /auth/session/organization.");
        return false;
    }
    if (rc) {
        gh_res_error(req, rc, "Could not load your organization. Try again.");
        return false;
    }
    ctx->role = gh_role_parse(ctx->membership.role);
    if (access == GH_ACCESS_BILLING && ctx->role != GH_ROLE_BILLING &&
        ctx->role != GH_ROLE_ADMIN) {
        gh_res_error(req, GH_EPERM, "This needs the billing or admin role; yours is %s.",
                     ctx->membership.role);
        return false;
    }
    if (access == GH_ACCESS_ADMIN && ctx->role != GH_ROLE_ADMIN) {
        gh_res_error(req, GH_EPERM, "This needs the admin role; yours is %s.",
                     ctx->membership.role);
        return false;
    }
    return true;
}

void gh_api_handle(gh_req_t *req, void *app)
{
    gh_api_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.app = app;
    req->ctx = &ctx;

    if (gh_api_web(req))
        goto out;

    const gh_route_t *route;
    char allow[64];
    switch (gh_router_match(routes, sizeof(routes) / sizeof(routes[0]), req->method, req->path,
                            req, &route, allow, sizeof(allow))) {
    case GH_ROUTE_NO_PATH:
        gh_res_error(req, GH_ENOTFOUND, "No route for %s %.200s.", req->method, req->path);
        goto out;
    case GH_ROUTE_NO_METHOD:
        gh_res_header(req, "allow", allow);
        char msg[160];
        snprintf(msg, sizeof(msg), "%s is not allowed here; use %s.", req->method, allow);
        gh_res_error_status(req, 405, gh_http_error_type(405), msg);
        goto out;
    case GH_ROUTE_FOUND:
        break;
    }
    if (authorize(req, &ctx, (gh_access_t)route->access))
        route->fn(req);
out:
    req->ctx = NULL; /* ctx lives on this stack frame */
}

void gh_api_healthz(gh_req_t *req)
{
    gh_res_json(req, 200, json_pack("{s:s}", "status", "ok"));
}
