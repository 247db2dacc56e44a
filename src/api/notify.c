/* /v1/organizations/limits/notifications: the spend notifications of the Limits page
 * (core/notify.h). Admins and billing members list, add and remove them (the route table
 * says so). Amounts cross the wire as decimal USD strings, percentages as whole numbers. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/billing.h"
#include "core/notify.h"

static json_t *notif_json(const gh_spend_notif_t *n)
{
    bool pct = !strcmp(n->kind, "spend_percent");
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o}", "type", "spend_notification",
                     "id", n->id, "kind", n->kind, "amount_usd",
                     pct ? json_null() : gh_api_money(n->amount_nusd), "percent",
                     pct ? json_integer(n->percent) : json_null(), "created_at",
                     gh_api_time(n->created_at), "created_by", n->created_by, "notified_at",
                     n->notified_at ? gh_api_time(n->notified_at) : json_null());
}

void gh_api_notifications_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_spend_notif_t list[GH_NOTIFY_RULES_MAX];
    size_t n = 0;
    char msg[256] = "";
    gh_err_t rc = gh_notify_list(ctx->app, &ctx->actor, list, &n, msg, sizeof(msg));
    if (rc) {
        gh_api_fail(req, rc, msg, "Could not load the spend notifications. Try again.");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, notif_json(&list[i]));
    gh_res_json(req, 200, json_pack("{s:o, s:i}", "data", data, "max_count",
                                    GH_NOTIFY_RULES_MAX));
}

void gh_api_notification_create(gh_req_t *req)
{
    static const char *const fields[] = {"kind", "amount_usd", "percent", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, fields, NULL))
        goto out;
    gh_spend_notif_t in;
    memset(&in, 0, sizeof(in));
    json_t *kind = json_object_get(body, "kind");
    if (!json_is_string(kind)) {
        gh_res_error(req, GH_EINVAL, "Choose what to be notified about: kind is \"spend_amount\", "
                                     "\"spend_percent\" or \"balance_below\".");
        goto out;
    }
    snprintf(in.kind, sizeof(in.kind), "%s", json_string_value(kind));
    bool pct = !strcmp(in.kind, "spend_percent");
    json_t *amount = json_object_get(body, "amount_usd"), *percent = json_object_get(body, "percent");
    char msg[512] = "";
    if (pct) {
        if (amount && !json_is_null(amount)) {
            gh_res_error(req, GH_EINVAL, "A percentage notification takes a percent, not an "
                                         "amount.");
            goto out;
        }
        if (!json_is_integer(percent) || json_integer_value(percent) < 1 ||
            json_integer_value(percent) > 100) {
            gh_res_error(req, GH_EINVAL, "The percentage must be a whole number from 1 to 100.");
            goto out;
        }
        in.percent = (int)json_integer_value(percent);
    } else {
        if (percent && !json_is_null(percent)) {
            gh_res_error(req, GH_EINVAL, "This notification takes an amount in USD, not a "
                                         "percent.");
            goto out;
        }
        if (!json_is_string(amount) ||
            gh_billing_parse_amount(json_string_value(amount), "amount_usd", &in.amount_nusd,
                                    msg, sizeof(msg)) ||
            in.amount_nusd <= 0) {
            gh_res_error(req, GH_EINVAL, "The amount must be in USD, above $0 with whole "
                                         "cents, like \"50.00\".");
            goto out;
        }
    }
    gh_spend_notif_t made;
    gh_err_t rc = gh_notify_add(ctx->app, &ctx->actor, &in, &made, msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not add the notification. Try again.");
    else
        gh_res_json(req, 201, notif_json(&made));
out:
    json_decref(body);
}

void gh_api_notification_delete(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "notification_id");
    char msg[512] = "";
    gh_err_t rc = gh_notify_remove(ctx->app, &ctx->actor, id, msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not remove the notification. Try again.");
    else
        gh_res_json(req, 200, json_pack("{s:s, s:s}", "type", "spend_notification_deleted",
                                        "id", id));
}
