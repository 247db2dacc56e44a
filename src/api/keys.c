/* /v1/organizations/api_keys, /v1/organizations/admin_keys and /v1/organizations/audit_log. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/audit.h"
#include "core/keys.h"

static json_t *key_json(const gh_key_rec_t *k)
{
    bool api = !strcmp(k->kind, "api");
    json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s}, s:s, s:s, s:o}", "type",
                          api ? "api_key" : "admin_key", "id", k->id, "name", k->name,
                          "created_at", gh_api_time(k->created_at), "created_by", "id",
                          k->created_by_id, "type", k->created_by_type, "partial_key_hint",
                          k->hint, "status", k->status, "last_used_at",
                          gh_api_time(k->last_used_at));
    if (api)
        json_object_set_new(j, "workspace_id", json_string(k->workspace_id));
    return j;
}

static void add_key(void *list, const gh_key_rec_t *k)
{
    json_array_append_new(list, key_json(k));
}

static void list_keys(gh_req_t *req, gh_key_filter_t *filter)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    if (!gh_api_page(req, &page))
        return;
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc =
        gh_keys_list(ctx->app, ctx->actor.org_id, filter, &page, add_key, data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the keys. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}

void gh_api_api_keys_list(gh_req_t *req)
{
    gh_key_filter_t f = {0};
    gh_apikey_filter_for(&gh_api_ctx(req)->actor, &f);
    f.workspace_id = gh_req_query(req, "workspace_id");
    f.status = gh_req_query(req, "status");
    f.created_by_id = gh_req_query(req, "created_by_user_id");
    if (f.status && strcmp(f.status, "active") && strcmp(f.status, "inactive") &&
        strcmp(f.status, "archived")) {
        gh_res_error(req, GH_EINVAL, "status must be active, inactive or archived.");
        return;
    }
    list_keys(req, &f);
}

/* Answers 201 with a new key's object and its secret, then wipes the secret. */
static void reply_created(gh_req_t *req, const gh_key_rec_t *k, char secret[GH_KEY_MAX])
{
    json_t *j = key_json(k);
    json_object_set_new(j, "key", json_string(secret));
    gh_res_json(req, 201, j);
    memset(secret, 0, GH_KEY_MAX);
}

void gh_api_api_key_create(gh_req_t *req)
{
    static const char *const fields[] = {"name", "workspace_id", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *name, *ws;
    if (!body)
        return;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "name", true, false, &name) &&
        gh_api_str(req, body, "workspace_id", false, true, &ws)) {
        char msg[512] = "", secret[GH_KEY_MAX];
        gh_key_rec_t k;
        gh_err_t rc = gh_apikey_create(ctx->app, &ctx->actor, name, ws, &k, secret, msg,
                                       sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not create the key. Try again.");
        else
            reply_created(req, &k, secret);
    }
    json_decref(body);
}

void gh_api_api_key_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "api_key_id");
    gh_key_rec_t k;
    gh_err_t rc = gh_apikey_get(ctx->app, &ctx->actor, id, &k);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "There is no API key with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not load the key. Try again.");
    else
        gh_res_json(req, 200, key_json(&k));
}

void gh_api_api_key_update(gh_req_t *req)
{
    static const char *const fields[] = {"name", "status", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *name, *status;
    if (!body)
        return;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "name", false, false, &name) &&
        gh_api_str(req, body, "status", false, false, &status)) {
        char msg[512] = "";
        gh_key_rec_t k;
        gh_err_t rc = gh_apikey_update(ctx->app, &ctx->actor, gh_req_param(req, "api_key_id"),
                                       name, status, &k, msg, sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not change the key. Try again.");
        else
            gh_res_json(req, 200, key_json(&k));
    }
    json_decref(body);
}

void gh_api_admin_keys_list(gh_req_t *req)
{
    gh_key_filter_t f = {.kind = "admin"};
    list_keys(req, &f);
}

void gh_api_admin_key_create(gh_req_t *req)
{
    static const char *const fields[] = {"name", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *name;
    if (!body)
        return;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "name", true, false, &name)) {
        char msg[512] = "", secret[GH_KEY_MAX];
        gh_key_rec_t k;
        gh_err_t rc = gh_adminkey_create(ctx->app, &ctx->actor, name, &k, secret, msg,
                                         sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not create the admin key. Try again.");
        else
            reply_created(req, &k, secret);
    }
    json_decref(body);
}

void gh_api_admin_key_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "admin_key_id");
    gh_key_rec_t k;
    gh_err_t rc = !gh_id_valid(id, "adminkey")
                      ? GH_ENOTFOUND
                      : gh_adminkey_get(ctx->app, ctx->actor.org_id, id, &k);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "There is no admin key with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not load the admin key. Try again.");
    else
        gh_res_json(req, 200, key_json(&k));
}

void gh_api_admin_key_revoke(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    char msg[512] = "";
    gh_key_rec_t k;
    gh_err_t rc = gh_adminkey_revoke(ctx->app, &ctx->actor, gh_req_param(req, "admin_key_id"), &k,
                                     msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not revoke the admin key. Try again.");
    else
        gh_res_json(req, 200, key_json(&k));
}

static void add_event(void *list, const gh_audit_event_t *e)
{
    json_t *details = json_loads(e->details, 0, NULL);
    json_array_append_new(
        list, json_pack("{s:s, s:s, s:o, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s}, s:o, s:s}", "type",
                        "audit_event", "id", e->id, "created_at", gh_api_time(e->created_at),
                        "action", e->action, "actor", "type", e->actor_type, "id", e->actor_id,
                        "label", e->actor_label, "target", "type", e->target_type, "id",
                        e->target_id, "details", details ? details : json_object(), "ip",
                        e->ip));
}

void gh_api_audit_actions(gh_req_t *req)
{
    json_t *data = json_array();
    for (const char *const *a = gh_audit_actions(); *a; a++)
        json_array_append_new(data, json_string(*a));
    gh_res_json(req, 200, json_pack("{s:o}", "data", data));
}

void gh_api_audit_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    if (!gh_api_page(req, &page))
        return;
    const char *action = gh_req_query(req, "action");
    if (action && !gh_audit_action_known(action)) {
        gh_res_error(req, GH_EINVAL, "action \"%.48s\" is not an audit action; the list is at "
                                     "GET /v1/organizations/audit_log/actions.", action);
        return;
    }
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc = gh_audit_list(ctx->app, ctx->actor.org_id, gh_req_query(req, "actor_id"),
                                gh_req_query(req, "action"), &page, add_event, data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not read the audit log. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}
