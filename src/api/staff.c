/* /staff/api/...: what platform staff do from the /staff page. The caller signs in like
 * anyone (session cookie and CSRF header) and must be staff (`gatehouse staff add`); admin
 * keys never reach these routes. Staff act across organizations: the queue of limit requests
 * of every organization, approving (optionally with custom limits) or declining with a note,
 * and moving an organization between tiers by hand. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/quota.h"
#include "core/staff.h"
#include "lib/metrics.h"

#define ORGS_SHOWN 100

/* The staff actor for the caller, or false (answered 403) when the caller is not staff. */
static bool staff_actor(gh_req_t *req, gh_actor_t *out)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    if (!ctx->has_session || !gh_staff_is(ctx->app, ctx->account.id)) {
        gh_res_error(req, GH_EPERM, "This is for platform staff only.");
        return false;
    }
    memset(out, 0, sizeof(*out));
    out->kind = GH_ACTOR_STAFF;
    out->role = GH_ROLE_ADMIN;
    snprintf(out->id, sizeof(out->id), "%s", ctx->account.id);
    snprintf(out->label, sizeof(out->label), "%s", ctx->account.email);
    snprintf(out->ip, sizeof(out->ip), "%s", req->ip);
    return true;
}

static void add_request(void *list, const gh_limit_request_t *r)
{
    json_array_append_new(list, gh_api_limit_request_json(r));
}

void gh_api_staff_requests_list(gh_req_t *req)
{
    gh_actor_t staff;
    gh_page_t page;
    if (!staff_actor(req, &staff) || !gh_api_page(req, &page))
        return;
    const char *status = gh_req_query(req, "status");
    if (status && strcmp(status, "pending") && strcmp(status, "approved") &&
        strcmp(status, "declined")) {
        gh_res_error(req, GH_EINVAL, "status must be pending, approved or declined.");
        return;
    }
    json_t *data = json_array();
    bool more = false;
    gh_db_t *db = gh_store_db(gh_api_ctx(req)->app->store);
    gh_err_t rc = db ? gh_store_limit_requests_list(db, NULL, status, &page, add_request, data,
                                                    &more)
                     : GH_ESTORE;
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the limit requests. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}

/* approve and decline: {"tier"?, "custom"?, "note"?}. */
static void decide(gh_req_t *req, bool approve)
{
    static const char *const approve_fields[] = {"tier", "custom", "note", NULL};
    static const char *const decline_fields[] = {"note", NULL};
    gh_actor_t staff;
    if (!staff_actor(req, &staff))
        return;
    json_t *body = gh_api_body(req);
    const char *tier = NULL, *note = NULL;
    gh_custom_limits_t custom;
    bool has_custom = false;
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, approve ? approve_fields : decline_fields, NULL) ||
        !gh_api_str(req, body, "note", !approve, true, &note) ||
        (approve && !gh_api_str(req, body, "tier", false, true, &tier)))
        goto out;
    json_t *c = json_object_get(body, "custom");
    has_custom = approve && c && !json_is_null(c);
    if (has_custom && !gh_api_read_custom_limits(req, c, &custom))
        goto out;
    char msg[512] = "";
    gh_limit_request_t r;
    gh_err_t rc = gh_quota_decide(gh_api_ctx(req)->app, &staff, gh_req_param(req, "request_id"),
                                  approve, tier, has_custom ? &custom : NULL, note, &r, msg,
                                  sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not record the decision. Try again.");
    else
        gh_res_json(req, 200, gh_api_limit_request_json(&r));
out:
    json_decref(body);
}

void gh_api_staff_request_approve(gh_req_t *req)
{
    decide(req, true);
}

void gh_api_staff_request_decline(gh_req_t *req)
{
    decide(req, false);
}

static void add_org(void *list, const char *org_id, const char *name, int64_t created_at)
{
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o}", "type", "organization", "id",
                                          org_id, "name", name, "created_at",
                                          gh_api_time(created_at)));
}

void gh_api_staff_orgs_list(gh_req_t *req)
{
    gh_actor_t staff;
    if (!staff_actor(req, &staff))
        return;
    const char *query = gh_req_query(req, "query");
    if (query && strlen(query) > 200) {
        gh_res_error(req, GH_EINVAL, "query is too long: use at most 200 characters.");
        return;
    }
    json_t *data = json_array();
    gh_db_t *db = gh_store_db(gh_api_ctx(req)->app->store);
    gh_err_t rc = db ? gh_store_orgs_search(db, query && *query ? query : NULL, ORGS_SHOWN,
                                            add_org, data)
                     : GH_ESTORE;
    if (rc) {
        json_decref(data);
        gh_res_error(req, rc, "Could not list the organizations. Try again.");
        return;
    }
    /* Each with its tier, so the page can show where everyone stands. */
    gh_admission_t *adm = gh_api_ctx(req)->app->admission;
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item)
    {
        gh_org_quota_t q;
        const char *id = json_string_value(json_object_get(item, "id"));
        if (adm && !gh_admission_org_quota(adm, db, id, &q))
            json_object_update_new(item, json_pack("{s:s, s:s, s:s}", "tier", q.tier->id,
                                                   "tier_name", q.tier->name, "tier_set_by",
                                                   q.tier_by_staff ? "staff" : "purchases"));
    }
    gh_api_list(req, data, false, "id");
}

void gh_api_staff_org_limits(gh_req_t *req)
{
    gh_actor_t staff;
    if (!staff_actor(req, &staff))
        return;
    gh_app_t *app = gh_api_ctx(req)->app;
    const char *org_id = gh_req_param(req, "org_id");
    gh_db_t *db = gh_store_db(app->store);
    gh_org_settings_t org;
    gh_err_t rc = db ? gh_store_org_settings_get(db, org_id, &org) : GH_ESTORE;
    if (rc == GH_ENOTFOUND) {
        gh_res_error(req, rc, "There is no organization with id \"%.60s\".", org_id);
        return;
    }
    json_t *j = rc ? NULL : gh_api_limits_json(app, db, org_id, NULL, &rc);
    if (!j) {
        gh_res_error(req, rc, "Could not load the limits. Try again.");
        return;
    }
    json_object_set_new(j, "organization_name", json_string(org.name));
    gh_res_json(req, 200, j);
}

void gh_api_staff_org_tier(gh_req_t *req)
{
    static const char *const fields[] = {"tier", "custom", "note", NULL};
    gh_actor_t staff;
    if (!staff_actor(req, &staff))
        return;
    json_t *body = gh_api_body(req);
    const char *tier, *note;
    gh_custom_limits_t custom;
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, fields, NULL) ||
        !gh_api_str(req, body, "note", false, true, &note))
        goto out;
    if (!json_object_get(body, "tier")) {
        gh_res_error(req, GH_EINVAL, "tier is required: a tier id, or null to go back to the "
                                     "tier the organization's purchases reach.");
        goto out;
    }
    if (!gh_api_str(req, body, "tier", false, true, &tier))
        goto out;
    json_t *c = json_object_get(body, "custom");
    bool has_custom = c && !json_is_null(c);
    if (has_custom && !gh_api_read_custom_limits(req, c, &custom))
        goto out;
    gh_app_t *app = gh_api_ctx(req)->app;
    const char *org_id = gh_req_param(req, "org_id");
    char msg[512] = "";
    gh_err_t rc = gh_quota_set_tier(app, &staff, org_id, tier, has_custom ? &custom : NULL, note,
                                    msg, sizeof(msg));
    if (rc) {
        gh_api_fail(req, rc, msg, "Could not change the tier. Try again.");
        goto out;
    }
    gh_db_t *db = gh_store_db(app->store);
    json_t *j = db ? gh_api_limits_json(app, db, org_id, NULL, &rc) : NULL;
    if (!j)
        gh_res_error(req, rc ? rc : GH_ESTORE, "The tier was changed, but could not be read "
                                               "back.");
    else
        gh_res_json(req, 200, j);
out:
    json_decref(body);
}

/* GET /staff/api/tiers: the tier table, for staff who belong to no organization. */
void gh_api_staff_tiers(gh_req_t *req)
{
    gh_actor_t staff;
    if (!staff_actor(req, &staff))
        return;
    gh_app_t *app = gh_api_ctx(req)->app;
    const gh_tier_table_t *table = gh_admission_tiers(app->admission);
    gh_res_json(req, 200, json_pack("{s:o}", "tiers", gh_api_tiers_json(table)));
}

static const char *const health_names[] = {"up", "ejected", "trial"};

/* GET /staff/api/deployments: each model served by upstream servers, with its deployments'
 * weight, health, requests in flight and counts since the start (lib/metrics). */
void gh_api_staff_deployments(gh_req_t *req)
{
    gh_actor_t staff;
    if (!staff_actor(req, &staff))
        return;
    const gh_config_t *cfg = gh_api_ctx(req)->app->cfg;
    json_t *data = json_array();
    for (int m = 0; m < cfg->nmodels; m++) {
        const gh_model_cfg_t *mc = &cfg->models[m];
        if (mc->ndeployments == 0)
            continue;
        json_t *deps = json_array(), *fallbacks = json_array();
        for (int f = 0; f < mc->nfallbacks; f++)
            json_array_append_new(fallbacks, json_string(mc->fallbacks[f]));
        for (int d = 0; d < mc->ndeployments; d++) {
            gh_metrics_deploy_t v;
            gh_metrics_deploy_get(m, d, &v);
            json_int_t errors = 0;
            for (size_t k = 0; k < GH_DEPLOY_ERR_COUNT; k++)
                errors += (json_int_t)v.errors[k];
            json_array_append_new(
                deps, json_pack("{s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I}", "url",
                                mc->deployments[d].url, "weight", mc->deployments[d].weight,
                                "health", health_names[(unsigned)v.health % 3], "in_flight",
                                (json_int_t)v.in_flight, "requests", (json_int_t)v.requests,
                                "retries", (json_int_t)v.retries, "errors", errors,
                                "ejections", (json_int_t)v.ejections));
        }
        json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:o, s:o}", "model", mc->name,
                                              "display_name", mc->display_name, "retries",
                                              mc->retries, "fallbacks", fallbacks,
                                              "deployments", deps));
    }
    gh_res_json(req, 200, json_pack("{s:o}", "data", data));
}
