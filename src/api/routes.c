/* The route table and the dispatcher. Every route states the access it requires; the
 * dispatcher enforces it before the handler runs, so a handler never sees a caller who may
 * not call it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/admission.h"
#include "core/rate_lease.h"
#include "core/lease.h"
#include "core/auth.h"
#include "core/billing.h"
#include "core/cluster.h"
#include "core/keys.h"
#include "core/limits.h"
#include "lib/keyfmt.h"
#include "lib/metrics.h"
#include "http/router.h"
#include "lib/crypto.h"

static const gh_route_t routes[] = {
    {"GET", "/healthz", gh_api_healthz, GH_ACCESS_PUBLIC},
    {"GET", "/metrics", gh_api_metrics, GH_ACCESS_PUBLIC},
    {"GET", "/v1/countries", gh_api_countries, GH_ACCESS_PUBLIC},
    {"GET", "/auth/config", gh_api_auth_config, GH_ACCESS_PUBLIC},
    {"GET", "/auth/terms", gh_api_auth_terms, GH_ACCESS_PUBLIC},
    {"POST", "/auth/email", gh_api_auth_email, GH_ACCESS_PUBLIC},
    {"GET", "/auth/verify", gh_api_auth_verify, GH_ACCESS_PUBLIC},
    {"POST", "/auth/verify", gh_api_auth_verify_post, GH_ACCESS_PUBLIC},
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
    {"GET", "/auth/invite", gh_api_invite_accept, GH_ACCESS_PUBLIC},
    {"POST", "/auth/invite", gh_api_invite_accept_post, GH_ACCESS_PUBLIC},
    {"GET", "/v1/organizations/users", gh_api_users_list, GH_ACCESS_MEMBER},
    {"GET", "/v1/organizations/users/{user_id}", gh_api_user_get, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/users/{user_id}", gh_api_user_update, GH_ACCESS_ADMIN},
    {"DELETE", "/v1/organizations/users/{user_id}", gh_api_user_delete, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/invites", gh_api_invites_list, GH_ACCESS_ADMIN},
    {"POST", "/v1/organizations/invites", gh_api_invite_create, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/invites/{invite_id}", gh_api_invite_get, GH_ACCESS_ADMIN},
    {"POST", "/v1/organizations/invites/{invite_id}/resend", gh_api_invite_resend, GH_ACCESS_ADMIN},
    {"DELETE", "/v1/organizations/invites/{invite_id}", gh_api_invite_delete, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/workspaces", gh_api_workspaces_list, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/workspaces", gh_api_workspace_create, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/workspaces/{workspace_id}", gh_api_workspace_get, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/workspaces/{workspace_id}", gh_api_workspace_update, GH_ACCESS_ADMIN},
    {"POST", "/v1/organizations/workspaces/{workspace_id}/archive", gh_api_workspace_archive, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/workspaces/{workspace_id}/members", gh_api_ws_members_list, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/workspaces/{workspace_id}/members", gh_api_ws_member_add, GH_ACCESS_MEMBER},
    {"GET", "/v1/organizations/workspaces/{workspace_id}/members/{user_id}", gh_api_ws_member_get, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/workspaces/{workspace_id}/members/{user_id}", gh_api_ws_member_update, GH_ACCESS_MEMBER},
    {"DELETE", "/v1/organizations/workspaces/{workspace_id}/members/{user_id}", gh_api_ws_member_delete, GH_ACCESS_MEMBER},
    {"GET", "/v1/organizations/api_keys", gh_api_api_keys_list, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/api_keys", gh_api_api_key_create, GH_ACCESS_MEMBER},
    {"GET", "/v1/organizations/api_keys/{api_key_id}", gh_api_api_key_get, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/api_keys/{api_key_id}", gh_api_api_key_update, GH_ACCESS_MEMBER},
    {"GET", "/v1/organizations/admin_keys", gh_api_admin_keys_list, GH_ACCESS_ADMIN},
    {"POST", "/v1/organizations/admin_keys", gh_api_admin_key_create, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/admin_keys/{admin_key_id}", gh_api_admin_key_get, GH_ACCESS_ADMIN},
    {"POST", "/v1/organizations/admin_keys/{admin_key_id}/revoke", gh_api_admin_key_revoke, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/audit_log", gh_api_audit_list, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/audit_log/actions", gh_api_audit_actions, GH_ACCESS_ADMIN},
    {"POST", "/v1/organizations/workbench/messages", gh_api_workbench_messages, GH_ACCESS_MEMBER},
    {"GET", "/v1/organizations/billing", gh_api_billing_get, GH_ACCESS_BILLING},
    {"POST", "/v1/organizations/billing/payment_method", gh_api_billing_card_add, GH_ACCESS_BILLING},
    {"POST", "/v1/organizations/billing/setup_intent", gh_api_billing_setup_intent, GH_ACCESS_BILLING},
    {"GET", "/v1/organizations/billing/payment_methods", gh_api_billing_cards_list, GH_ACCESS_BILLING},
    {"POST", "/v1/organizations/billing/profile", gh_api_billing_profile, GH_ACCESS_BILLING},
    {"GET", "/v1/organizations/billing/purchases", gh_api_billing_purchases_list, GH_ACCESS_BILLING},
    {"POST", "/v1/organizations/billing/purchases", gh_api_billing_purchase, GH_ACCESS_BILLING},
    {"GET", "/v1/organizations/billing/purchases/{purchase_id}", gh_api_billing_purchase_get, GH_ACCESS_BILLING},
    {"POST", "/v1/organizations/billing/auto_reload", gh_api_billing_auto_reload, GH_ACCESS_BILLING},
    {"GET", "/v1/organizations/invoices", gh_api_invoices_list, GH_ACCESS_BILLING},
    {"GET", "/v1/organizations/invoices/{invoice_id}", gh_api_invoice_get, GH_ACCESS_BILLING},
    {"GET", "/v1/organizations/invoices/{invoice_id}/pdf", gh_api_invoice_pdf, GH_ACCESS_BILLING},
    /* Authenticated by its Stripe-Signature, not by a session. */
    {"POST", "/webhooks/stripe", gh_api_webhook_stripe, GH_ACCESS_PUBLIC},
    {"GET", "/v1/organizations/usage_report/messages", gh_api_usage_report, GH_ACCESS_MEMBER},
    {"GET", "/v1/organizations/cost_report", gh_api_cost_report, GH_ACCESS_BILLING},
    /* Limits: every member reads, admins change; staff routes check staff themselves. */
    {"GET", "/v1/organizations/limits", gh_api_limits_get, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/limits", gh_api_limits_set, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/limits/notifications", gh_api_notifications_list, GH_ACCESS_BILLING},
    {"POST", "/v1/organizations/limits/notifications", gh_api_notification_create, GH_ACCESS_BILLING},
    {"DELETE", "/v1/organizations/limits/notifications/{notification_id}", gh_api_notification_delete, GH_ACCESS_BILLING},
    {"GET", "/v1/organizations/limit_requests", gh_api_limit_requests_list, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/limit_requests", gh_api_limit_request_create, GH_ACCESS_ADMIN},
    {"GET", "/v1/organizations/workspaces/{workspace_id}/limits", gh_api_ws_limits_get, GH_ACCESS_MEMBER},
    {"POST", "/v1/organizations/workspaces/{workspace_id}/limits", gh_api_ws_limits_set, GH_ACCESS_ADMIN},
    {"GET", "/staff/api/limit_requests", gh_api_staff_requests_list, GH_ACCESS_ONBOARDED},
    {"POST", "/staff/api/limit_requests/{request_id}/approve", gh_api_staff_request_approve, GH_ACCESS_ONBOARDED},
    {"POST", "/staff/api/limit_requests/{request_id}/decline", gh_api_staff_request_decline, GH_ACCESS_ONBOARDED},
    {"GET", "/staff/api/organizations", gh_api_staff_orgs_list, GH_ACCESS_ONBOARDED},
    {"GET", "/staff/api/organizations/{org_id}/limits", gh_api_staff_org_limits, GH_ACCESS_ONBOARDED},
    {"POST", "/staff/api/organizations/{org_id}/tier", gh_api_staff_org_tier, GH_ACCESS_ONBOARDED},
    {"GET", "/staff/api/tiers", gh_api_staff_tiers, GH_ACCESS_ONBOARDED},
    {"GET", "/staff/api/deployments", gh_api_staff_deployments, GH_ACCESS_ONBOARDED},
};

static bool is_safe_method(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS");
}

/* The admin key a request presents in x-api-key or "authorization: Bearer", or NULL. */
static const char *presented_key(gh_req_t *req)
{
    const char *k = gh_req_header(req, "x-api-key");
    if (k)
        return k;
    const char *auth = gh_req_header(req, "authorization");
    if (auth && !strncasecmp(auth, "Bearer ", 7))
        return auth + 7;
    return NULL;
}

/* The role check shared by both kinds of caller. */
static bool role_allows(gh_req_t *req, gh_access_t access, gh_role_t role, const char *name)
{
    if (access == GH_ACCESS_BILLING && role != GH_ROLE_BILLING && role != GH_ROLE_ADMIN) {
        gh_res_error(req, GH_EPERM, "This needs the billing or admin role; yours is %s.", name);
        return false;
    }
    if (access == GH_ACCESS_ADMIN && role != GH_ROLE_ADMIN) {
        gh_res_error(req, GH_EPERM, "This needs the admin role; yours is %s.", name);
        return false;
    }
    return true;
}

/* An admin key acts as an admin of its organization, on the Organization API only. */
static bool authorize_key(gh_req_t *req, gh_api_ctx_t *ctx, const char *key, gh_access_t access)
{
    if (access < GH_ACCESS_MEMBER) {
        gh_res_error(req, GH_EAUTH, "Admin keys work only with the Organization API "
                                    "(/v1/organizations/...); sign in for this.");
        return false;
    }
    if (!strncmp(key, GH_KEY_API_PREFIX, strlen(GH_KEY_API_PREFIX))) {
        gh_res_error(req, GH_EAUTH, "That is an API key, which works only with the model API. "
                                    "The Organization API needs an admin key (sk-gh-admin01-...).");
        return false;
    }
    gh_err_t rc = gh_adminkey_authenticate(ctx->app, key, req->ip, &ctx->actor);
    if (rc == GH_EAUTH) {
        gh_res_error(req, GH_EAUTH, "Invalid admin key: it is malformed, unknown or revoked.");
        return false;
    }
    if (rc) {
        gh_res_error(req, rc, "Could not check the admin key. Try again.");
        return false;
    }
    ctx->role = GH_ROLE_ADMIN;
    snprintf(ctx->membership.org_id, sizeof(ctx->membership.org_id), "%s", ctx->actor.org_id);
    snprintf(ctx->membership.role, sizeof(ctx->membership.role), "admin");
    gh_org_settings_t org;
    if (!gh_org_settings_get(ctx->app, ctx->actor.org_id, &org))
        snprintf(ctx->membership.org_name, sizeof(ctx->membership.org_name), "%s", org.name);
    return role_allows(req, access, GH_ROLE_ADMIN, "admin");
}

/* Establishes the caller for `access`; answers and returns false when they fall short. */
static bool authorize(gh_req_t *req, gh_api_ctx_t *ctx, gh_access_t access)
{
    if (access == GH_ACCESS_PUBLIC)
        return true;
    const char *key = presented_key(req);
    if (key)
        return authorize_key(req, ctx, key, access);
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

    rc = ctx->session.current_org_id[0]
             ? gh_auth_membership(ctx->app, ctx->session.current_org_id, ctx->account.id,
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
    ctx->actor.kind = GH_ACTOR_USER;
    ctx->actor.role = ctx->role;
    snprintf(ctx->actor.id, sizeof(ctx->actor.id), "%s", ctx->account.id);
    snprintf(ctx->actor.label, sizeof(ctx->actor.label), "%s", ctx->account.email);
    snprintf(ctx->actor.org_id, sizeof(ctx->actor.org_id), "%s", ctx->membership.org_id);
    snprintf(ctx->actor.ip, sizeof(ctx->actor.ip), "%s", req->ip);
    return role_allows(req, access, ctx->role, ctx->membership.role);
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

/* 200 either way: the console serves while the model API cannot record usage; "degraded"
 * with the reason tells a person (and a monitor) what is wrong. */
void gh_api_healthz(gh_req_t *req)
{
    gh_app_t *app = gh_api_ctx(req)->app;
    char why[160];
    json_t *body;
    if (app->usage && !gh_usage_healthy(app->usage, why, sizeof(why)))
        body = json_pack("{s:s, s:s}", "status", "degraded", "reason", why);
    else
        body = json_pack("{s:s}", "status", "ok");
    /* The node: its id, whether it is one of a cluster, connected to the store, the leader. */
    if (body && app->cluster) {
        gh_cluster_stats_t st;
        gh_cluster_stats(app->cluster, &st);
        json_object_set_new(body, "node_id", json_string(st.node_id));
        json_object_set_new(body, "clustered", json_boolean(st.clustered));
        json_object_set_new(body, "store_connected", json_boolean(!st.clustered || st.connected));
        json_object_set_new(body, "leader", json_boolean(st.leader));
    }
    gh_res_json(req, 200, body);
}

void gh_api_metrics(gh_req_t *req)
{
    gh_app_t *app = gh_api_ctx(req)->app;
    if (!app->cfg->metrics) {
        gh_res_error(req, GH_ENOTFOUND, "Metrics are turned off ([log] metrics = false).");
        return;
    }
    char extra[16384] = "";
    if (app->usage) {
        gh_usage_stats_t u;
        gh_usage_stats(app->usage, &u);
        snprintf(extra, sizeof(extra),
                 "# HELP gatehouse_usage_events_total Usage events by stage.\n"
                 "# TYPE gatehouse_usage_events_total counter\n"
                 "gatehouse_usage_events_total{stage=\"submitted\"} %llu\n"
                 "gatehouse_usage_events_total{stage=\"committed\"} %llu\n"
                 "# HELP gatehouse_usage_backlog Events journaled and not yet committed.\n"
                 "# TYPE gatehouse_usage_backlog gauge\n"
                 "gatehouse_usage_backlog %llu\n"
                 "# HELP gatehouse_usage_oldest_uncommitted_seconds Age of the oldest event not "
                 "yet committed (0: none).\n"
                 "# TYPE gatehouse_usage_oldest_uncommitted_seconds gauge\n"
                 "gatehouse_usage_oldest_uncommitted_seconds %.3f\n"
                 "# HELP gatehouse_usage_commit_failures_total Failed usage commits (each is "
                 "retried; nothing is dropped).\n"
                 "# TYPE gatehouse_usage_commit_failures_total counter\n"
                 "gatehouse_usage_commit_failures_total %llu\n"
                 "# HELP gatehouse_usage_refused_total Model requests refused because their "
                 "usage could not be recorded.\n"
                 "# TYPE gatehouse_usage_refused_total counter\n"
                 "gatehouse_usage_refused_total{reason=\"disk_full\"} %llu\n"
                 "gatehouse_usage_refused_total{reason=\"backlog\"} %llu\n"
                 "# HELP gatehouse_usage_journal_disk_full 1 while the journal has no disk "
                 "space.\n"
                 "# TYPE gatehouse_usage_journal_disk_full gauge\n"
                 "gatehouse_usage_journal_disk_full %d\n"
                 "# HELP gatehouse_usage_journals_damaged_total Journal files found damaged at "
                 "start and kept aside.\n"
                 "# TYPE gatehouse_usage_journals_damaged_total counter\n"
                 "gatehouse_usage_journals_damaged_total %llu\n"
                 "gatehouse_usage_journal_records_damaged_total %llu\n"
                 "# HELP gatehouse_usage_rejected_total Events the database refused for their "
                 "values, set aside in the usage journal's .rejected file.\n"
                 "# TYPE gatehouse_usage_rejected_total counter\n"
                 "gatehouse_usage_rejected_total %llu\n"
                 "# HELP gatehouse_usage_writer_queue_depth Events waiting for the writer.\n"
                 "# TYPE gatehouse_usage_writer_queue_depth gauge\n"
                 "gatehouse_usage_writer_queue_depth %llu\n"
                 "# HELP gatehouse_usage_writer_batches_total Group commits by the writer.\n"
                 "# TYPE gatehouse_usage_writer_batches_total counter\n"
                 "gatehouse_usage_writer_batches_total %llu\n"
                 "# HELP gatehouse_usage_writer_last_batch_size Events in the last group commit.\n"
                 "# TYPE gatehouse_usage_writer_last_batch_size gauge\n"
                 "gatehouse_usage_writer_last_batch_size %llu\n",
                 (unsigned long long)u.submitted, (unsigned long long)u.committed,
                 (unsigned long long)u.queue_depth, (double)u.oldest_age_ms / 1000.0,
                 (unsigned long long)u.commit_failures, (unsigned long long)u.refused_no_space,
                 (unsigned long long)u.refused_backlog, u.no_space ? 1 : 0,
                 (unsigned long long)u.journals_damaged, (unsigned long long)u.records_damaged,
                 (unsigned long long)u.rejected,
                 (unsigned long long)u.queue_depth,
                 (unsigned long long)u.batches, (unsigned long long)u.last_batch_size);
    }
    if (app->billing) {
        gh_billing_stats_t b;
        gh_billing_stats(app->billing, &b);
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof(extra) - n,
                 "# HELP gatehouse_billing_scheduler_passes_total Billing scheduler passes "
                 "(expiry, pending purchases, auto-reload).\n"
                 "# TYPE gatehouse_billing_scheduler_passes_total counter\n"
                 "gatehouse_billing_scheduler_passes_total %llu\n"
                 "# HELP gatehouse_billing_events_total Billing scheduler work by kind.\n"
                 "# TYPE gatehouse_billing_events_total counter\n"
                 "gatehouse_billing_events_total{kind=\"lot_expired\"} %llu\n"
                 "gatehouse_billing_events_total{kind=\"purchase_retried\"} %llu\n"
                 "gatehouse_billing_events_total{kind=\"auto_reload\"} %llu\n",
                 (unsigned long long)b.passes, (unsigned long long)b.lots_expired,
                 (unsigned long long)b.retries, (unsigned long long)b.reloads);
    }
    if (app->admission) {
        /* The engine's overrun count: settlements that cost more than admission reserved.
         * It must stay 0; anything else means a bound in admission is wrong. */
        gh_limits_stats_t l;
        gh_limits_stats(gh_admission_limits(app->admission), &l);
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof(extra) - n,
                 "# HELP gatehouse_admission_overruns_total Settlements that cost more than "
                 "admission reserved (must stay 0).\n"
                 "# TYPE gatehouse_admission_overruns_total counter\n"
                 "gatehouse_admission_overruns_total %llu\n"
                 "# HELP gatehouse_admission_overrun_nusd_total Cost beyond the reservations of "
                 "those settlements, nano-USD.\n"
                 "# TYPE gatehouse_admission_overrun_nusd_total counter\n"
                 "gatehouse_admission_overrun_nusd_total %lld\n",
                 (unsigned long long)l.overruns, (long long)l.overrun_nusd);
    }
    if (app->rate_lease) {
        /* What the cluster's rate limits cost: draw statements (PostgreSQL transactions). */
        gh_rate_lease_stats_t r;
        gh_rate_lease_stats(app->rate_lease, &r);
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof(extra) - n,
                 "# HELP gatehouse_rate_lease_refills_total Draws from the cluster's rate "
                 "buckets (one PostgreSQL transaction each).\n"
                 "# TYPE gatehouse_rate_lease_refills_total counter\n"
                 "gatehouse_rate_lease_refills_total %llu\n"
                 "# HELP gatehouse_rate_lease_refill_failures_total Draws that failed.\n"
                 "# TYPE gatehouse_rate_lease_refill_failures_total counter\n"
                 "gatehouse_rate_lease_refill_failures_total %llu\n"
                 "# HELP gatehouse_rate_lease_buckets_drawn_total Buckets drawn from, over all "
                 "draws.\n"
                 "# TYPE gatehouse_rate_lease_buckets_drawn_total counter\n"
                 "gatehouse_rate_lease_buckets_drawn_total %llu\n"
                 "# HELP gatehouse_rate_lease_tokens_granted_total Requests and tokens granted "
                 "to this node.\n"
                 "# TYPE gatehouse_rate_lease_tokens_granted_total counter\n"
                 "gatehouse_rate_lease_tokens_granted_total %llu\n"
                 "# HELP gatehouse_rate_lease_short_grants_total Buckets that granted less than "
                 "wanted (the cluster-wide limit binding).\n"
                 "# TYPE gatehouse_rate_lease_short_grants_total counter\n"
                 "gatehouse_rate_lease_short_grants_total %llu\n"
                 "# HELP gatehouse_rate_lease_unavailable 1 while draws are failing.\n"
                 "# TYPE gatehouse_rate_lease_unavailable gauge\n"
                 "gatehouse_rate_lease_unavailable %d\n",
                 (unsigned long long)r.refills, (unsigned long long)r.refill_failures,
                 (unsigned long long)r.buckets_drawn, (unsigned long long)r.tokens_granted,
                 (unsigned long long)r.short_grants, r.unavailable);
    }
    gh_lease_stats_t ls;
    if (app->admission && gh_admission_lease_stats(app->admission, &ls)) {
        /* Cluster money (core/lease.h): what this node holds and how its leases moved. */
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof(extra) - n,
                 "# HELP gatehouse_cluster_leases_held Organizations this node holds a money "
                 "lease of.\n# TYPE gatehouse_cluster_leases_held gauge\n"
                 "gatehouse_cluster_leases_held %lld\n"
                 "# HELP gatehouse_cluster_leases_held_nusd Money this node's leases hold in "
                 "memory (nano-USD, reservations included).\n"
                 "# TYPE gatehouse_cluster_leases_held_nusd gauge\n"
                 "gatehouse_cluster_leases_held_nusd %lld\n"
                 "# HELP gatehouse_cluster_lease_refills_total Leases taken or grown.\n"
                 "# TYPE gatehouse_cluster_lease_refills_total counter\n"
                 "gatehouse_cluster_lease_refills_total %llu\n"
                 "# HELP gatehouse_cluster_lease_returns_total Leases given back in part or "
                 "whole.\n# TYPE gatehouse_cluster_lease_returns_total counter\n"
                 "gatehouse_cluster_lease_returns_total %llu\n"
                 "# HELP gatehouse_cluster_lease_lapses_total Leases of this node found lapsed "
                 "(not renewed in time).\n# TYPE gatehouse_cluster_lease_lapses_total counter\n"
                 "gatehouse_cluster_lease_lapses_total %llu\n"
                 "# HELP gatehouse_cluster_leases_swept_total Expired leases of any node this "
                 "node returned to their organizations.\n"
                 "# TYPE gatehouse_cluster_leases_swept_total counter\n"
                 "gatehouse_cluster_leases_swept_total %llu\n",
                 (long long)ls.held, (long long)ls.held_nusd, (unsigned long long)ls.refills,
                 (unsigned long long)ls.returns, (unsigned long long)ls.lapses,
                 (unsigned long long)ls.swept);
    }
    if (app->state) {
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof(extra) - n,
                 "# HELP gatehouse_api_keys_loaded API keys held in memory for the model API.\n"
                 "# TYPE gatehouse_api_keys_loaded gauge\ngatehouse_api_keys_loaded %zu\n",
                 gh_state_key_count(app->state));
    }
    if (app->cluster) {
        gh_cluster_stats_t st;
        gh_cluster_stats(app->cluster, &st);
        size_t n = strlen(extra);
        n += (size_t)snprintf(
            extra + n, sizeof(extra) - n,
            "# HELP gatehouse_cluster_connected Whether this node listens to the change feed "
            "(1 on a single node).\n"
            "# TYPE gatehouse_cluster_connected gauge\ngatehouse_cluster_connected %d\n"
            "# HELP gatehouse_cluster_leader Whether this node runs the cluster's billing jobs.\n"
            "# TYPE gatehouse_cluster_leader gauge\ngatehouse_cluster_leader %d\n"
            "# HELP gatehouse_cluster_changes_applied_total Changes made on any node applied "
            "here from the change feed.\n"
            "# TYPE gatehouse_cluster_changes_applied_total counter\n"
            "gatehouse_cluster_changes_applied_total %llu\n"
            "# HELP gatehouse_cluster_reloads_total Full reloads of the in-memory state after a "
            "reconnection.\n"
            "# TYPE gatehouse_cluster_reloads_total counter\ngatehouse_cluster_reloads_total %llu\n"
            "# HELP gatehouse_cluster_notifications_total Wake-ups of the change feed's listener "
            "by a notification.\n"
            "# TYPE gatehouse_cluster_notifications_total counter\n"
            "gatehouse_cluster_notifications_total %llu\n"
            "# HELP gatehouse_cluster_reconnects_total Connections of the change feed lost.\n"
            "# TYPE gatehouse_cluster_reconnects_total counter\n"
            "gatehouse_cluster_reconnects_total %llu\n"
            "# HELP gatehouse_cluster_notify_lag_max_seconds Largest time from a change's commit "
            "to its application here.\n"
            "# TYPE gatehouse_cluster_notify_lag_max_seconds gauge\n"
            "gatehouse_cluster_notify_lag_max_seconds %.6f\n"
            "# HELP gatehouse_cluster_notify_lag_seconds Time from a change's commit to its "
            "application here.\n"
            "# TYPE gatehouse_cluster_notify_lag_seconds histogram\n",
            !st.clustered || st.connected, st.leader, (unsigned long long)st.changes_applied,
            (unsigned long long)st.reloads, (unsigned long long)st.notifications,
            (unsigned long long)st.reconnects,
            (double)st.lag_max_us / 1e6);
        for (size_t i = 0; i < 8 && n < sizeof(extra); i++)
            n += (size_t)snprintf(extra + n, sizeof(extra) - n,
                                  "gatehouse_cluster_notify_lag_seconds_bucket{le=\"%g\"} %llu\n",
                                  gh_cluster_lag_le[i], (unsigned long long)st.lag_bucket[i]);
        if (n < sizeof(extra))
            snprintf(extra + n, sizeof(extra) - n,
                     "gatehouse_cluster_notify_lag_seconds_bucket{le=\"+Inf\"} %llu\n"
                     "gatehouse_cluster_notify_lag_seconds_sum %.6f\n"
                     "gatehouse_cluster_notify_lag_seconds_count %llu\n",
                     (unsigned long long)st.lag_count, (double)st.lag_sum_us / 1e6,
                     (unsigned long long)st.lag_count);
    }
    size_t len = 0;
    char *text = gh_metrics_render(app->cfg, extra, &len);
    if (!text) {
        gh_res_error(req, GH_ENOMEM, "Out of memory.");
        return;
    }
    gh_res_body(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}
