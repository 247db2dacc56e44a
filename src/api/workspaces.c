/* /v1/organizations/workspaces and their members. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/workspaces.h"

static json_t *ws_json(const gh_workspace_t *w)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:b, s:i}", "type", "workspace", "id", w->id,
                     "name", w->name, "display_color", w->display_color, "created_at",
                     gh_api_time(w->created_at), "archived_at", gh_api_time(w->archived_at),
                     "is_default", w->is_default, "member_count", w->member_count);
}

static void add_ws(void *list, const gh_workspace_t *w)
{
    json_array_append_new(list, ws_json(w));
}

void gh_api_workspaces_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    bool archived = false;
    if (!gh_api_page(req, &page) || !gh_api_query_bool(req, "include_archived", &archived))
        return;
    /* Admins and billing members reach every workspace; others Default and their own. */
    const char *member = ctx->role == GH_ROLE_ADMIN || ctx->role == GH_ROLE_BILLING
                             ? NULL
                             : ctx->actor.id;
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc =
        gh_ws_list(ctx->app, ctx->actor.org_id, member, archived, &page, add_ws, data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the workspaces. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}

void gh_api_workspace_create(gh_req_t *req)
{
    static const char *const fields[] = {"name", "display_color", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *name, *color;
    if (!body)
        return;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "name", true, false, &name) &&
        gh_api_str(req, body, "display_color", false, true, &color)) {
        char msg[512] = "";
        gh_workspace_t w;
        gh_err_t rc = gh_ws_create(ctx->app, &ctx->actor, name, color, &w, msg, sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not create the workspace. Try again.");
        else
            gh_res_json(req, 201, ws_json(&w));
    }
    json_decref(body);
}

void gh_api_workspace_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "workspace_id");
    gh_workspace_t w;
    gh_ws_access_t acc;
    gh_err_t rc = gh_ws_load(ctx->app, &ctx->actor, id, &w, &acc);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "There is no workspace with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not load the workspace. Try again.");
    else
        gh_res_json(req, 200, ws_json(&w));
}

void gh_api_workspace_update(gh_req_t *req)
{
    static const char *const fields[] = {"name", "display_color", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *name, *color;
    if (!body)
        return;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "name", false, false, &name) &&
        gh_api_str(req, body, "display_color", false, false, &color)) {
        char msg[512] = "";
        gh_workspace_t w;
        gh_err_t rc = gh_ws_update(ctx->app, &ctx->actor, gh_req_param(req, "workspace_id"), name,
                                   color, &w, msg, sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not change the workspace. Try again.");
        else
            gh_res_json(req, 200, ws_json(&w));
    }
    json_decref(body);
}

void gh_api_workspace_archive(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    char msg[512] = "";
    gh_workspace_t w;
    gh_err_t rc = gh_ws_archive(ctx->app, &ctx->actor, gh_req_param(req, "workspace_id"), &w, msg,
                                sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not archive the workspace. Try again.");
    else
        gh_res_json(req, 200, ws_json(&w));
}

static json_t *wsm_json(const gh_ws_member_t *m)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "workspace_member", "user_id",
                     m->user_id, "workspace_id", m->workspace_id, "workspace_role", m->role,
                     "email", m->email, "name", m->name);
}

static void add_wsm(void *list, const gh_ws_member_t *m)
{
    json_array_append_new(list, wsm_json(m));
}

/* The workspace of the request's path, which the caller must reach; answers otherwise. */
static bool path_workspace(gh_req_t *req, gh_workspace_t *w)
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

void gh_api_ws_members_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    gh_workspace_t w;
    if (!gh_api_page(req, &page) || !path_workspace(req, &w))
        return;
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc = gh_ws_member_list(ctx->app, w.id, &page, add_wsm, data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the workspace members. Try again.");
        return;
    }
    gh_api_list(req, data, more, "user_id");
}

void gh_api_ws_member_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_workspace_t w;
    if (!path_workspace(req, &w))
        return;
    const char *user = gh_req_param(req, "user_id");
    gh_ws_member_t m;
    gh_err_t rc = gh_ws_member_get(ctx->app, w.id, user, &m);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "\"%.60s\" is not a member of the workspace \"%s\".", user, w.name);
    else if (rc)
        gh_res_error(req, rc, "Could not load the workspace member. Try again.");
    else
        gh_res_json(req, 200, wsm_json(&m));
}

/* POST …/members and POST …/members/{user_id}: add, or change a role. */
static void ws_member_write(gh_req_t *req, bool add)
{
    static const char *const add_fields[] = {"user_id", "workspace_role", NULL};
    static const char *const set_fields[] = {"workspace_role", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *user = gh_req_param(req, "user_id"), *role;
    if (!body)
        return;
    if (gh_api_known_fields(req, body, add ? add_fields : set_fields, NULL) &&
        (!add || gh_api_str(req, body, "user_id", true, false, &user)) &&
        gh_api_str(req, body, "workspace_role", true, false, &role)) {
        char msg[512] = "";
        gh_ws_member_t m;
        const char *ws = gh_req_param(req, "workspace_id");
        gh_err_t rc = add ? gh_ws_member_add(ctx->app, &ctx->actor, ws, user, role, &m, msg,
                                             sizeof(msg))
                          : gh_ws_member_set(ctx->app, &ctx->actor, ws, user, role, &m, msg,
                                             sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not change the workspace members. Try again.");
        else
            gh_res_json(req, add ? 201 : 200, wsm_json(&m));
    }
    json_decref(body);
}

void gh_api_ws_member_add(gh_req_t *req)
{
    ws_member_write(req, true);
}

void gh_api_ws_member_update(gh_req_t *req)
{
    ws_member_write(req, false);
}

void gh_api_ws_member_delete(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *ws = gh_req_param(req, "workspace_id"), *user = gh_req_param(req, "user_id");
    char msg[512] = "";
    gh_err_t rc = gh_ws_member_remove(ctx->app, &ctx->actor, ws, user, msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not remove the workspace member. Try again.");
    else
        gh_res_json(req, 200,
                    json_pack("{s:s, s:s, s:s}", "type", "workspace_member_deleted", "user_id",
                              user, "workspace_id", ws));
}
