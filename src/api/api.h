/* The control-plane API: one dispatcher that routes a request, establishes who is calling
 * (session cookie, CSRF header, onboarding, organization role) as the route requires, and
 * calls the route's handler. Handlers live one file per resource in this folder. */
#ifndef GH_API_API_H
#define GH_API_API_H

#include <jansson.h>
#include <stdbool.h>

#include "core/actor.h"
#include "core/app.h"
#include "core/org.h"
#include "core/tiers.h"
#include "http/request.h"

/* What a route requires of its caller, from least to most. Each level includes the ones
 * before it. */
typedef enum {
    GH_ACCESS_PUBLIC,    /* anyone */
    GH_ACCESS_SESSION,   /* signed in (onboarding may be pending) */
    GH_ACCESS_ONBOARDED, /* signed in and onboarded */
    GH_ACCESS_MEMBER,    /* ... with a current organization, any role */
    GH_ACCESS_BILLING,   /* ... as a billing member or admin */
    GH_ACCESS_ADMIN,     /* ... as an admin */
} gh_access_t;

/* Per-request state the dispatcher fills before calling a handler (req->ctx). */
typedef struct gh_api_ctx {
    gh_app_t *app;
    bool has_session;
    gh_session_t session;
    gh_account_t account;
    gh_membership_t membership; /* the current organization, for MEMBER and above */
    gh_role_t role;
    gh_actor_t actor; /* who acts on the organization, for MEMBER and above */
} gh_api_ctx_t;

/* The server's handler (gh_http_handler_fn); `app` is the gh_app_t. */
void gh_api_handle(gh_req_t *req, void *app);

/* The API context of a request. */
static inline gh_api_ctx_t *gh_api_ctx(gh_req_t *req)
{
    return (gh_api_ctx_t *)req->ctx;
}

/* ---- request body helpers: on failure they answer 400 themselves and return NULL/false ---- */

/* The body parsed as a JSON object (content-type must be application/json). The caller
 * owns the reference. */
json_t *gh_api_body(gh_req_t *req);

/* Reads a `{"token": "…", "switch": bool}` body (the POSTs that use an emailed link;
 * "switch" is optional, false when absent). The body, which the caller releases, with
 * `*token` pointing into it; NULL when the request was answered with a 400. */
json_t *gh_api_token_body(gh_req_t *req, const char **token, bool *switch_account);

/* The email of the account whose live session this request's cookie holds, copied into
 * `out` (GH_EMAIL_MAX bytes); NULL when there is none. For the public sign-in POSTs, which
 * must not silently replace another account's session. */
const char *gh_api_signed_in_email(gh_req_t *req, char *out);

/* Adds `retry-after: <seconds>` (at least 1) to a 429. */
void gh_api_retry_after(gh_req_t *req, int seconds);

/* Signs out the session this request's cookie holds (after a switch to another account has
 * replaced it in the browser), so it does not linger usable. Errors are ignored: the new
 * session is what the browser keeps either way. */
void gh_api_end_previous_session(gh_req_t *req);

/* Answers 409 when a link for `link_email` would replace the session of `signed_in`: the
 * console asks "Continue as …?" and sends the link again with "switch": true. */
void gh_api_refuse_switch(gh_req_t *req, const char *signed_in, const char *link_email);

/* Sets the gh_session cookie (HttpOnly, SameSite=Lax, Secure on an https console) to
 * `secret` for `max_age_s` seconds; "" and 0 clear it. */
void gh_api_session_cookie(gh_req_t *req, const char *secret, int max_age_s);

/* False (and a 400 naming it) when `obj` has a key not in the NULL-terminated `allowed`. */
bool gh_api_known_fields(gh_req_t *req, json_t *obj, const char *const *allowed,
                         const char *where);

/* Reads a string member. Absent: `*out` NULL and true unless `required`. JSON null:
 * `*out` NULL when `nullable`. Anything else of the wrong type: 400 and false. */
bool gh_api_str(gh_req_t *req, json_t *obj, const char *key, bool required, bool nullable,
                const char **out);

/* Reads a boolean member; absent or wrong type: 400 and false. */
bool gh_api_bool(gh_req_t *req, json_t *obj, const char *key, bool *out);

/* RFC 3339 UTC text for a Unix time, or JSON null for 0. */
json_t *gh_api_time(int64_t t);

/* A string, or JSON null for NULL or "". */
json_t *gh_api_opt_str(const char *s);

/* Money as the API writes it: decimal USD text ("12.50"). */
json_t *gh_api_money(int64_t nusd);

/* Reads limit (1–1000, default 20), after_id and before_id from the query. */
bool gh_api_page(gh_req_t *req, gh_page_t *page);

/* Reads an optional boolean query parameter ("true"/"false"). */
bool gh_api_query_bool(gh_req_t *req, const char *name, bool *out);

/* Answers a list: {"data", "has_more", "first_id", "last_id"}, the ids taken from each
 * item's `id_field`. Takes the reference to `data`. */
void gh_api_list(gh_req_t *req, json_t *data, bool has_more, const char *id_field);

/* Answers a core error: `msg` when the core wrote one, else `fallback`. */
void gh_api_fail(gh_req_t *req, gh_err_t rc, const char *msg, const char *fallback);

/* Handlers, grouped by file. */
void gh_api_auth_config(gh_req_t *req);
void gh_api_auth_email(gh_req_t *req);
void gh_api_auth_verify(gh_req_t *req);
void gh_api_auth_verify_post(gh_req_t *req);
void gh_api_auth_session(gh_req_t *req);
void gh_api_auth_onboarding(gh_req_t *req);
void gh_api_auth_create_org(gh_req_t *req);
void gh_api_auth_switch_org(gh_req_t *req);
void gh_api_auth_logout(gh_req_t *req);
void gh_api_oidc_start(gh_req_t *req);
void gh_api_oidc_callback(gh_req_t *req);
void gh_api_org_me(gh_req_t *req);
void gh_api_org_settings_get(gh_req_t *req);
void gh_api_org_settings_post(gh_req_t *req);
void gh_api_countries(gh_req_t *req);
void gh_api_users_list(gh_req_t *req);
void gh_api_user_get(gh_req_t *req);
void gh_api_user_update(gh_req_t *req);
void gh_api_user_delete(gh_req_t *req);
void gh_api_invites_list(gh_req_t *req);
void gh_api_invite_create(gh_req_t *req);
void gh_api_invite_get(gh_req_t *req);
void gh_api_invite_resend(gh_req_t *req);
void gh_api_invite_delete(gh_req_t *req);
void gh_api_invite_accept(gh_req_t *req);
void gh_api_invite_accept_post(gh_req_t *req);
void gh_api_workspaces_list(gh_req_t *req);
void gh_api_workspace_create(gh_req_t *req);
void gh_api_workspace_get(gh_req_t *req);
void gh_api_workspace_update(gh_req_t *req);
void gh_api_workspace_archive(gh_req_t *req);
void gh_api_ws_members_list(gh_req_t *req);
void gh_api_ws_member_add(gh_req_t *req);
void gh_api_ws_member_get(gh_req_t *req);
void gh_api_ws_member_update(gh_req_t *req);
void gh_api_ws_member_delete(gh_req_t *req);
void gh_api_api_keys_list(gh_req_t *req);
void gh_api_api_key_create(gh_req_t *req);
void gh_api_api_key_get(gh_req_t *req);
void gh_api_api_key_update(gh_req_t *req);
void gh_api_admin_keys_list(gh_req_t *req);
void gh_api_admin_key_create(gh_req_t *req);
void gh_api_admin_key_get(gh_req_t *req);
void gh_api_admin_key_revoke(gh_req_t *req);
void gh_api_audit_list(gh_req_t *req);
void gh_api_audit_actions(gh_req_t *req);
void gh_api_auth_terms(gh_req_t *req);
void gh_api_workbench_messages(gh_req_t *req);
void gh_api_billing_get(gh_req_t *req);
void gh_api_billing_card_add(gh_req_t *req);
void gh_api_billing_setup_intent(gh_req_t *req);
void gh_api_webhook_stripe(gh_req_t *req);
void gh_api_billing_cards_list(gh_req_t *req);
void gh_api_billing_profile(gh_req_t *req);
void gh_api_billing_purchase(gh_req_t *req);
void gh_api_billing_purchases_list(gh_req_t *req);
void gh_api_billing_purchase_get(gh_req_t *req);
void gh_api_billing_auto_reload(gh_req_t *req);
void gh_api_invoices_list(gh_req_t *req);
void gh_api_invoice_get(gh_req_t *req);
void gh_api_invoice_pdf(gh_req_t *req);
void gh_api_usage_report(gh_req_t *req);
void gh_api_cost_report(gh_req_t *req);
void gh_api_healthz(gh_req_t *req);
void gh_api_metrics(gh_req_t *req);

/* Limits (api/limits.c) and staff (api/staff.c). */
void gh_api_limits_get(gh_req_t *req);
void gh_api_limits_set(gh_req_t *req);
void gh_api_limit_requests_list(gh_req_t *req);
void gh_api_limit_request_create(gh_req_t *req);
void gh_api_ws_limits_get(gh_req_t *req);
void gh_api_ws_limits_set(gh_req_t *req);
/* Spend notifications (src/api/notify.c). */
void gh_api_notifications_list(gh_req_t *req);
void gh_api_notification_create(gh_req_t *req);
void gh_api_notification_delete(gh_req_t *req);
void gh_api_staff_requests_list(gh_req_t *req);
void gh_api_staff_deployments(gh_req_t *req);
void gh_api_staff_request_approve(gh_req_t *req);
void gh_api_staff_request_decline(gh_req_t *req);
void gh_api_staff_orgs_list(gh_req_t *req);
void gh_api_staff_org_limits(gh_req_t *req);
void gh_api_staff_org_tier(gh_req_t *req);
void gh_api_staff_tiers(gh_req_t *req);

/* The limits object of docs/api.md for `org_id`; `member_id` (may be NULL) shows only the
 * workspaces that member reaches. NULL with `*rc` set on failure. */
json_t *gh_api_limits_json(gh_app_t *app, const char *org_id, const char *member_id,
                           gh_err_t *rc);
/* A limit request as the API shows it. */
json_t *gh_api_limit_request_json(const gh_limit_request_t *r);
/* The configured tiers, as GET /v1/organizations/limits lists them. */
json_t *gh_api_tiers_json(const gh_tier_table_t *table);
/* Reads a "custom" limits object; answers 400 and returns false when it is not one. */
struct gh_custom_limits;
bool gh_api_read_custom_limits(gh_req_t *req, json_t *v, struct gh_custom_limits *out);

/* Serves the console: /static/... files and index.html for console routes. Returns false
 * when `req` is not a console path (so it is an API path). */
bool gh_api_web(gh_req_t *req);

#endif
