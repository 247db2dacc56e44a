/* /v1/organizations/limits, /v1/organizations/limit_requests and
 * /v1/organizations/workspaces/{id}/limits: the tier, its limits and the way to the next one,
 * the monthly spend limit, workspace limits and requests for more. Every member may read;
 * only admins change (the route table says so). Money crosses the wire as decimal strings in
 * USD, rates as whole numbers per minute (null: no limit). */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/admission.h"
#include "core/billing.h"
#include "core/quota.h"
#include "core/workspaces.h"
#include "lib/money.h"
#include "lib/utc.h"

/* ---- JSON ---- */

static json_t *money_or_null(int64_t nusd)
{
    return nusd > 0 ? gh_api_money(nusd) : json_null();
}

static json_t *rate(int64_t v)
{
    return v > 0 ? json_integer(v) : json_null();
}

static json_t *rates_json(const gh_rate_limits_t *r)
{
    return json_pack("{s:o, s:o, s:o}", "requests_per_minute", rate(r->requests_per_min),
                     "input_tokens_per_minute", rate(r->input_tokens_per_min),
                     "output_tokens_per_minute", rate(r->output_tokens_per_min));
}

/* The same rates for every model class, in configuration order. */
static json_t *rate_list(const gh_config_t *cfg, const gh_rate_limits_t *r)
{
    json_t *list = json_array();
    for (int i = 0; i < cfg->nmodels; i++) {
        const char *c = cfg->models[i].model_class;
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(cfg->models[j].model_class, c);
        if (seen)
            continue;
        json_t *item = rates_json(r);
        json_object_set_new(item, "model_class", json_string(c));
        json_array_append_new(list, item);
    }
    return list;
}

static json_t *tier_json(const gh_tier_t *t)
{
    json_t *j = json_pack("{s:s, s:s, s:b, s:o, s:o}", "id", t->id, "name", t->name, "custom",
                          t->custom, "purchases_required_usd",
                          t->custom ? json_null() : gh_api_money(t->purchases_to_enter_nusd),
                          "monthly_cap_usd", money_or_null(t->monthly_cap_nusd));
    json_object_update_new(j, json_pack("{s:o}", "rate_limits", rates_json(&t->rate)));
    return j;
}

json_t *gh_api_tiers_json(const gh_tier_table_t *table)
{
    json_t *tiers = json_array();
    for (size_t i = 0; i < table->count; i++)
        json_array_append_new(tiers, tier_json(&table->tiers[i]));
    return tiers;
}

static json_t *request_json(const gh_limit_request_t *r)
{
    gh_custom_limits_t c = {r->monthly_cap_nusd, r->rpm, r->itpm, r->otpm};
    json_t *custom = !strcmp(r->kind, "custom")
                         ? json_pack("{s:o, s:o, s:o, s:o}", "monthly_cap_usd",
                                     money_or_null(c.monthly_cap_nusd), "requests_per_minute",
                                     rate(c.rpm), "input_tokens_per_minute", rate(c.itpm),
                                     "output_tokens_per_minute", rate(c.otpm))
                         : json_null();
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, "
                     "s:{s:s, s:s}}",
                     "type", "limit_request", "id", r->id, "organization_id", r->org_id,
                     "organization_name", r->org_name, "kind", r->kind, "tier",
                     gh_api_opt_str(r->requested_tier), "custom", custom, "reason", r->reason,
                     "status", r->status, "staff_note", gh_api_opt_str(r->staff_note),
                     "granted_tier", gh_api_opt_str(r->granted_tier), "decided_by",
                     gh_api_opt_str(r->decided_by_label), "created_at", gh_api_time(r->created_at),
                     "decided_at", gh_api_time(r->decided_at), "requested_by", "id",
                     r->requested_by, "label", r->requested_by_label);
}

typedef struct {
    json_t *by_ws; /* workspace id -> its limits row as JSON */
} ws_limits_ctx_t;

static json_t *ws_limits_fields(const gh_ws_limits_rec_t *rec)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "monthly_spend_limit_usd",
                     money_or_null(rec->monthly_spend_limit_nusd), "requests_per_minute",
                     rate(rec->rpm), "input_tokens_per_minute", rate(rec->itpm),
                     "output_tokens_per_minute", rate(rec->otpm));
}

static void collect_ws_limits(void *ctx, const gh_ws_limits_rec_t *rec)
{
    ws_limits_ctx_t *c = ctx;
    json_object_set_new(c->by_ws, rec->workspace_id, ws_limits_fields(rec));
}

typedef struct {
    gh_limits_t *limits;
    json_t *by_ws;
    json_t *list;
} ws_list_ctx_t;

static int64_t ws_spend(gh_limits_t *limits, const char *org_id, const char *ws_id)
{
    gh_limits_ws_state_t st;
    return gh_limits_ws_get(limits, org_id, ws_id, &st) == GH_OK ? st.month_spent_nusd : 0;
}

static void add_ws(void *ctx, const gh_workspace_t *w)
{
    ws_list_ctx_t *c = ctx;
    gh_ws_limits_rec_t none;
    memset(&none, 0, sizeof(none));
    json_t *fields = json_object_get(c->by_ws, w->id);
    json_t *j = fields ? json_deep_copy(fields) : ws_limits_fields(&none);
    json_object_update_new(j, json_pack("{s:s, s:s, s:s, s:b, s:o}", "type", "workspace_limits",
                                        "workspace_id", w->id, "name", w->name, "is_default",
                                        w->is_default, "month_to_date_usd",
                                        gh_api_money(ws_spend(c->limits, w->org_id, w->id))));
    json_array_append_new(c->list, j);
}

json_t *gh_api_limits_json(gh_app_t *app, const char *org_id, const char *member_id,
                           gh_err_t *rc_out)
{
    gh_admission_t *adm = app->admission;
    const gh_config_t *cfg = app->cfg;
    gh_org_quota_t q;
    gh_err_t rc = gh_quota_org(app, org_id, &q);
    *rc_out = rc;
    if (rc)
        return NULL;
    gh_limits_t *limits = gh_admission_limits(adm);
    gh_limits_org_state_t st;
    if (gh_limits_org_get(limits, org_id, &st) != GH_OK)
        memset(&st, 0, sizeof(st));

    /* Workspaces: every active one the caller reaches, with its own limits. */
    ws_limits_ctx_t wl = {json_object()};
    ws_list_ctx_t wc = {limits, wl.by_ws, json_array()};
    gh_page_t page = {1000, NULL, NULL};
    bool more = false;
    if ((rc = gh_quota_ws_limits_list(app, org_id, collect_ws_limits, &wl)) ||
        (rc = gh_ws_list(app, org_id, member_id, false, &page, add_ws, &wc, &more))) {
        json_decref(wl.by_ws);
        json_decref(wc.list);
        *rc_out = rc;
        return NULL;
    }
    json_decref(wl.by_ws);

    const gh_tier_table_t *table = gh_admission_tiers(adm);
    json_t *tiers = gh_api_tiers_json(table);
    const gh_tier_t *next = q.tier->custom ? NULL : gh_tier_next(table, q.tier);
    json_t *next_json = json_null();
    if (next) {
        int64_t from = q.tier->purchases_to_enter_nusd, to = next->purchases_to_enter_nusd;
        int64_t have = q.purchases_nusd < from ? from : q.purchases_nusd > to ? to : q.purchases_nusd;
        int64_t bp = to > from ? (int64_t)((__int128)(have - from) * 10000 / (to - from)) : 10000;
        next_json = tier_json(next);
        json_object_update_new(
            next_json, json_pack("{s:o, s:I}", "purchases_needed_usd",
                                 gh_api_money(to > q.purchases_nusd ? to - q.purchases_nusd : 0),
                                 "progress_bp", (json_int_t)bp));
    }
    int64_t now = app->now();
    int64_t balance = st.balance_nusd;
    if ((rc = gh_admission_balance_shown(app, org_id, st.balance_nusd, &balance))) {
        *rc_out = rc;
        json_decref(next_json);
        json_decref(tiers);
        json_decref(wc.list);
        return NULL;
    }
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
        "type", "limits", "organization_id", org_id, "tier", q.tier->id, "tier_name", q.tier->name,
        "tier_set_by", q.tier_by_staff ? "staff" : "purchases", "tier_custom", q.tier->custom,
        "monthly_spend_limit_usd", money_or_null(q.rec.monthly_spend_limit_nusd),
        "tier_monthly_cap_usd", money_or_null(q.tier_cap_nusd), "effective_monthly_limit_usd",
        money_or_null(q.monthly_limit_nusd), "month_to_date_usd", gh_api_money(st.month_spent_nusd),
        "month_resets_at", gh_api_time(gh_utc_next_month_s(now)), "purchases_total_usd",
        gh_api_money(q.purchases_nusd), "rate_limits", rate_list(cfg, &q.rates), "next_tier",
        next_json, "tiers", tiers, "workspaces", wc.list, "admission",
        json_pack("{s:b, s:o, s:o, s:I}", "enforced", gh_admission_enforced(adm), "balance_usd",
                  gh_api_money(balance), "reserved_usd", gh_api_money(st.reserved_nusd),
                  "in_flight", (json_int_t)st.in_flight));
    return j;
}

/* ---- request helpers ---- */

/* Reads an optional USD amount member: absent leaves `*present` false; null is 0 (none). */
static bool read_money(gh_req_t *req, json_t *obj, const char *key, bool *present, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    *present = v != NULL;
    *out = 0;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        gh_res_error(req, GH_EINVAL, "%s: must be an amount in USD as a string, like \"50.00\", "
                                     "or null.", key);
        return false;
    }
    char msg[256];
    if (gh_billing_parse_amount(json_string_value(v), key, out, msg, sizeof(msg))) {
        gh_res_error(req, GH_EINVAL, "%s", msg);
        return false;
    }
    if (*out <= 0) {
        gh_res_error(req, GH_EINVAL, "%s: must be more than 0, or null for no limit.", key);
        return false;
    }
    return true;
}

/* Reads an optional rate member: a whole number >= 1, or null (0: none). */
static bool read_rate(gh_req_t *req, json_t *obj, const char *key, bool *present, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    *present = v != NULL;
    *out = 0;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        gh_res_error(req, GH_EINVAL, "%s: must be a whole number of at least 1, or null for no "
                                     "limit.", key);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* Reads {"monthly_cap_usd", "requests_per_minute", "input_tokens_per_minute",
 * "output_tokens_per_minute"} (each optional). */
static bool read_custom(gh_req_t *req, json_t *v, gh_custom_limits_t *out)
{
    static const char *const fields[] = {"monthly_cap_usd", "requests_per_minute",
                                         "input_tokens_per_minute", "output_tokens_per_minute",
                                         NULL};
    bool p;
    memset(out, 0, sizeof(*out));
    if (!json_is_object(v)) {
        gh_res_error(req, GH_EINVAL, "custom: must be an object with monthly_cap_usd, "
                                     "requests_per_minute, input_tokens_per_minute and "
                                     "output_tokens_per_minute.");
        return false;
    }
    return gh_api_known_fields(req, v, fields, "custom") &&
           read_money(req, v, "monthly_cap_usd", &p, &out->monthly_cap_nusd) &&
           read_rate(req, v, "requests_per_minute", &p, &out->rpm) &&
           read_rate(req, v, "input_tokens_per_minute", &p, &out->itpm) &&
           read_rate(req, v, "output_tokens_per_minute", &p, &out->otpm);
}

bool gh_api_read_custom_limits(gh_req_t *req, json_t *v, gh_custom_limits_t *out)
{
    return read_custom(req, v, out);
}

json_t *gh_api_limit_request_json(const gh_limit_request_t *r)
{
    return request_json(r);
}

/* Members who are neither admins nor billing see the workspaces they reach. */
static const char *member_filter(const gh_api_ctx_t *ctx)
{
    return ctx->role == GH_ROLE_ADMIN || ctx->role == GH_ROLE_BILLING ? NULL : ctx->actor.id;
}

static void reply_limits(gh_req_t *req, int status)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_err_t rc = GH_ESTORE;
    json_t *j = gh_api_limits_json(ctx->app, ctx->actor.org_id, member_filter(ctx), &rc);
    if (!j)
        gh_res_error(req, rc, "Could not load the limits. Try again.");
    else
        gh_res_json(req, status, j);
}

/* ---- handlers ---- */

void gh_api_limits_get(gh_req_t *req)
{
    reply_limits(req, 200);
}

void gh_api_limits_set(gh_req_t *req)
{
    static const char *const fields[] = {"monthly_spend_limit_usd", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    bool present;
    int64_t limit;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        read_money(req, body, "monthly_spend_limit_usd", &present, &limit)) {
        char msg[512] = "";
        gh_err_t rc = present ? gh_quota_set_monthly_limit(ctx->app, &ctx->actor,
                                                           limit ? &limit : NULL, msg,
                                                           sizeof(msg))
                              : GH_EINVAL;
        if (!present)
            gh_res_error(req, GH_EINVAL, "monthly_spend_limit_usd is required (an amount such as "
                                         "\"50.00\", or null to remove the limit).");
        else if (rc)
            gh_api_fail(req, rc, msg, "Could not change the limit. Try again.");
        else
            reply_limits(req, 200);
    }
    json_decref(body);
}

static void add_request(void *list, const gh_limit_request_t *r)
{
    json_array_append_new(list, request_json(r));
}

void gh_api_limit_requests_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    if (!gh_api_page(req, &page))
        return;
    const char *status = gh_req_query(req, "status");
    if (status && strcmp(status, "pending") && strcmp(status, "approved") &&
        strcmp(status, "declined")) {
        gh_res_error(req, GH_EINVAL, "status must be pending, approved or declined.");
        return;
    }
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc = gh_quota_requests_list(ctx->app, ctx->actor.org_id, status, &page, add_request,
                                         data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the limit requests. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}

void gh_api_limit_request_create(gh_req_t *req)
{
    static const char *const fields[] = {"tier", "custom", "reason", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *tier, *reason;
    gh_custom_limits_t custom;
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, fields, NULL) ||
        !gh_api_str(req, body, "tier", false, true, &tier) ||
        !gh_api_str(req, body, "reason", true, false, &reason))
        goto out;
    json_t *c = json_object_get(body, "custom");
    bool has_custom = c && !json_is_null(c);
    if (has_custom && !read_custom(req, c, &custom))
        goto out;
    if (!tier && !has_custom) {
        gh_res_error(req, GH_EINVAL, "Say what you need: a tier (such as \"tier_3\") or custom "
                                     "limits.");
        goto out;
    }
    char msg[512] = "";
    gh_limit_request_t r;
    gh_err_t rc = gh_quota_request(ctx->app, &ctx->actor, tier, has_custom ? &custom : NULL,
                                   reason, &r, msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not send the request. Try again.");
    else
        gh_res_json(req, 201, request_json(&r));
out:
    json_decref(body);
}

/* A workspace's limits, as the workspace page shows them. */
static void reply_ws_limits(gh_req_t *req, const gh_workspace_t *w)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_ws_limits_rec_t rec;
    gh_org_quota_t q;
    gh_err_t rc = gh_quota_ws_limits_get(ctx->app, w->id, &rec);
    if (rc == GH_ENOTFOUND) {
        memset(&rec, 0, sizeof(rec));
        rc = GH_OK;
    }
    if (!rc)
        rc = gh_quota_org(ctx->app, w->org_id, &q);
    if (rc) {
        gh_res_error(req, rc, "Could not load the workspace's limits. Try again.");
        return;
    }
    json_t *j = ws_limits_fields(&rec);
    json_object_update_new(
        j, json_pack(
               "{s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "type", "workspace_limits", "workspace_id",
               w->id, "name", w->name, "is_default", w->is_default, "month_to_date_usd",
               gh_api_money(ws_spend(gh_admission_limits(ctx->app->admission), w->org_id, w->id)),
               "organization_monthly_limit_usd", money_or_null(q.monthly_limit_nusd),
               "organization_rate_limits", rates_json(&q.rates)));
    gh_res_json(req, 200, j);
}

/* The workspace of the path, when the caller reaches it; answers 404 otherwise. */
static bool load_ws(gh_req_t *req, gh_workspace_t *w)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "workspace_id");
    gh_ws_access_t acc;
    gh_err_t rc = gh_ws_load(ctx->app, &ctx->actor, id, w, &acc);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "There is no workspace with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not load the workspace. Try again.");
    return rc == GH_OK;
}

void gh_api_ws_limits_get(gh_req_t *req)
{
    gh_workspace_t w;
    if (load_ws(req, &w))
        reply_ws_limits(req, &w);
}

void gh_api_ws_limits_set(gh_req_t *req)
{
    static const char *const fields[] = {"monthly_spend_limit_usd", "requests_per_minute",
                                         "input_tokens_per_minute", "output_tokens_per_minute",
                                         NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_workspace_t w;
    if (!load_ws(req, &w))
        return;
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, fields, NULL))
        goto out;
    /* Fields left out keep their value; null removes a limit. */
    gh_ws_limits_rec_t cur, in;
    gh_err_t rc = gh_quota_ws_limits_get(ctx->app, w.id, &cur);
    if (rc == GH_ENOTFOUND) {
        memset(&cur, 0, sizeof(cur));
        rc = GH_OK;
    }
    if (rc) {
        gh_res_error(req, rc, "Could not load the workspace's limits. Try again.");
        goto out;
    }
    bool p[4];
    int64_t v[4];
    if (!read_money(req, body, "monthly_spend_limit_usd", &p[0], &v[0]) ||
        !read_rate(req, body, "requests_per_minute", &p[1], &v[1]) ||
        !read_rate(req, body, "input_tokens_per_minute", &p[2], &v[2]) ||
        !read_rate(req, body, "output_tokens_per_minute", &p[3], &v[3]))
        goto out;
    in = cur;
    if (p[0])
        in.monthly_spend_limit_nusd = v[0];
    if (p[1])
        in.rpm = v[1];
    if (p[2])
        in.itpm = v[2];
    if (p[3])
        in.otpm = v[3];
    char msg[512] = "";
    gh_ws_limits_rec_t out_rec;
    rc = gh_quota_set_ws_limits(ctx->app, &ctx->actor, w.id, &in, &out_rec, msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not change the workspace's limits. Try again.");
    else
        reply_ws_limits(req, &w);
out:
    json_decref(body);
}
