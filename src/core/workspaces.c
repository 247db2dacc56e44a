#include "core/workspaces.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/admission.h"
#include "core/audit.h"
#include "lib/log.h"
#include "lib/text.h"
#include "store/store.h"

const char *const gh_ws_palette[GH_WS_PALETTE_SIZE] = {
    "#6C5BB9", "#D97757", "#4E8FD4", "#3F9A6E", "#C2554D",
    "#C48A2C", "#8A6B4E", "#5E7386", "#B5548C", "#2F8F8F",
};

static const char *const ws_roles[] = {"workspace_user", "workspace_developer",
                                       "workspace_admin", "workspace_billing"};

bool gh_ws_role_valid(const char *role)
{
    for (size_t i = 0; role && i < sizeof(ws_roles) / sizeof(ws_roles[0]); i++)
        if (!strcmp(role, ws_roles[i]))
            return true;
    return false;
}

gh_err_t gh_ws_access(gh_db_t *db, const gh_actor_t *a, const gh_workspace_t *w,
                      gh_ws_access_t *out)
{
    memset(out, 0, sizeof(*out));
    if (a->kind == GH_ACTOR_USER && !w->is_default) {
        gh_ws_member_t m;
        gh_err_t rc = gh_store_ws_member_get(db, w->id, a->id, &m);
        if (rc && rc != GH_ENOTFOUND)
            return rc;
        if (!rc)
            snprintf(out->ws_role, sizeof(out->ws_role), "%s", m.role);
    }
    bool member = out->ws_role[0] != '\0';
    bool ws_admin = !strcmp(out->ws_role, "workspace_admin");
    bool ws_dev = ws_admin || !strcmp(out->ws_role, "workspace_developer");
    switch (a->role) {
    case GH_ROLE_ADMIN:
        out->reach = out->manage_members = out->manage_keys = true;
        break;
    case GH_ROLE_BILLING:
        out->reach = true;
        out->manage_members = ws_admin;
        out->manage_keys = ws_dev;
        break;
    case GH_ROLE_DEVELOPER:
        out->reach = w->is_default || member;
        out->manage_members = ws_admin;
        out->manage_keys = out->reach;
        break;
    case GH_ROLE_USER:
        out->reach = w->is_default || member;
        out->manage_members = ws_admin;
        out->manage_keys = ws_dev;
        break;
    case GH_ROLE_NONE:
        break;
    }
    return GH_OK;
}

gh_err_t gh_ws_load(gh_app_t *app, const gh_actor_t *actor, const char *id, gh_workspace_t *w,
                    gh_ws_access_t *access)
{
    if (!gh_id_valid(id, "wrkspc"))
        return GH_ENOTFOUND;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_err_t rc = gh_store_workspace_get(db, actor->org_id, id, w);
    if (rc)
        return rc;
    rc = gh_ws_access(db, actor, w, access);
    if (rc)
        return rc;
    return access->reach ? GH_OK : GH_ENOTFOUND;
}

/* Upper-cases a palette colour into `out`; false when it is not one. */
static bool palette_color(const char *in, char out[8])
{
    if (!in || strlen(in) != 7)
        return false;
    for (int i = 0; i < 7; i++)
        out[i] = (char)toupper((unsigned char)in[i]);
    out[7] = '\0';
    for (int i = 0; i < GH_WS_PALETTE_SIZE; i++)
        if (!strcmp(out, gh_ws_palette[i]))
            return true;
    return false;
}

static gh_err_t bad_color(const char *color, char *msg, size_t msg_size)
{
    snprintf(msg, msg_size,
             "display_color \"%.16s\" is not one of the palette colours: #6C5BB9, #D97757, "
             "#4E8FD4, #3F9A6E, #C2554D, #C48A2C, #8A6B4E, #5E7386, #B5548C or #2F8F8F.",
             color);
    return GH_EINVAL;
}

static gh_err_t clean_name(const char *in, char out[161], char *msg, size_t msg_size)
{
    if (gh_text_trim(in, out, 161) || gh_utf8_chars(out) > 40) {
        snprintf(msg, msg_size, "The workspace name is too long: use at most 40 characters.");
        return GH_EINVAL;
    }
    if (gh_text_is_blank(out)) {
        snprintf(msg, msg_size, "Enter a name for the workspace.");
        return GH_EINVAL;
    }
    if (gh_text_has_unsafe(out)) {
        snprintf(msg, msg_size, "The workspace name must not contain control characters or "
                                "text-direction marks.");
        return GH_EINVAL;
    }
    return GH_OK;
}

static gh_err_t admins_only(const gh_actor_t *actor, char *msg, size_t msg_size)
{
    if (actor->role == GH_ROLE_ADMIN)
        return GH_OK;
    snprintf(msg, msg_size, "Only admins can create, change or archive workspaces.");
    return GH_EPERM;
}

gh_err_t gh_ws_create(gh_app_t *app, const gh_actor_t *actor, const char *name,
                      const char *color, gh_workspace_t *out, char *msg, size_t msg_size)
{
    gh_err_t rc = admins_only(actor, msg, msg_size);
    if (rc)
        return rc;
    gh_workspace_t w;
    memset(&w, 0, sizeof(w));
    if ((rc = clean_name(name, w.name, msg, msg_size)))
        return rc;
    if (color && !palette_color(color, w.display_color))
        return bad_color(color, msg, msg_size);
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    int count = 0;
    if ((rc = gh_store_workspace_count(db, actor->org_id, &count)))
        goto out_rollback;
    if (count >= app->cfg->max_workspaces) {
        snprintf(msg, msg_size,
                 "This organization already has %d workspaces, the most it may have. Archive "
                 "one you no longer need first.",
                 count);
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    if (!color)
        snprintf(w.display_color, sizeof(w.display_color), "%s",
                 gh_ws_palette[count % GH_WS_PALETTE_SIZE]);
    gh_id_new(w.id, "wrkspc");
    snprintf(w.org_id, sizeof(w.org_id), "%s", actor->org_id);
    w.created_at = app->now();
    rc = gh_store_workspace_insert(db, &w);
    if (rc == GH_ECONFLICT)
        snprintf(msg, msg_size, "A workspace named \"%s\" already exists in this organization.",
                 w.name);
    if (rc)
        goto out_rollback;
    rc = gh_audit(app, db, actor, "workspace.created", "workspace", w.id,
                  json_pack("{s:s, s:s}", "name", w.name, "display_color", w.display_color));
    if (rc || (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_admission_workspace_changed(app, w.org_id, w.id);
    *out = w;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_ws_update(gh_app_t *app, const gh_actor_t *actor, const char *id, const char *name,
                      const char *color, gh_workspace_t *out, char *msg, size_t msg_size)
{
    gh_err_t rc = admins_only(actor, msg, msg_size);
    if (rc)
        return rc;
    gh_workspace_t w;
    gh_ws_access_t acc;
    if ((rc = gh_ws_load(app, actor, id, &w, &acc))) {
        snprintf(msg, msg_size, "There is no workspace with id \"%.60s\".", id);
        return rc;
    }
    if (w.archived_at) {
        snprintf(msg, msg_size, "The workspace \"%s\" is archived and cannot be changed.", w.name);
        return GH_EINVAL;
    }
    gh_workspace_t next = w;
    if (name) {
        if ((rc = clean_name(name, next.name, msg, msg_size)))
            return rc;
        if (w.is_default && strcmp(next.name, w.name)) {
            snprintf(msg, msg_size, "The Default workspace cannot be renamed.");
            return GH_EINVAL;
        }
    }
    if (color && !palette_color(color, next.display_color))
        return bad_color(color, msg, msg_size);
    if (!strcmp(w.name, next.name) && !strcmp(w.display_color, next.display_color)) {
        *out = w; /* nothing to change, nothing to record */
        return GH_OK;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    rc = gh_store_workspace_update(db, &next);
    if (rc == GH_ECONFLICT)
        snprintf(msg, msg_size, "A workspace named \"%s\" already exists in this organization.",
                 next.name);
    if (rc)
        goto out_rollback;
    json_t *details = json_object();
    if (strcmp(w.name, next.name))
        gh_audit_change(details, "name", w.name, next.name);
    if (strcmp(w.display_color, next.display_color))
        gh_audit_change(details, "display_color", w.display_color, next.display_color);
    rc = gh_audit(app, db, actor, "workspace.updated", "workspace", w.id, details);
    if (rc || (rc = gh_store_commit(db)))
        goto out_rollback;
    *out = next;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_ws_archive(gh_app_t *app, const gh_actor_t *actor, const char *id,
                       gh_workspace_t *out, char *msg, size_t msg_size)
{
    gh_err_t rc = admins_only(actor, msg, msg_size);
    if (rc)
        return rc;
    gh_workspace_t w;
    gh_ws_access_t acc;
    if ((rc = gh_ws_load(app, actor, id, &w, &acc))) {
        snprintf(msg, msg_size, "There is no workspace with id \"%.60s\".", id);
        return rc;
    }
    if (w.is_default) {
        snprintf(msg, msg_size, "The Default workspace cannot be archived.");
        return GH_EINVAL;
    }
    if (w.archived_at) {
        snprintf(msg, msg_size, "The workspace \"%s\" is already archived.", w.name);
        return GH_EINVAL;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    int64_t now = app->now();
    if ((rc = gh_store_workspace_archive(db, w.id, now)) ||
        (rc = gh_audit(app, db, actor, "workspace.archived", "workspace", w.id,
                       json_pack("{s:s}", "name", w.name))) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        return rc;
    }
    /* Its keys stop working on the model API from the next request on. */
    if ((rc = gh_state_sync_workspace(app->state, db, w.id)))
        gh_log_error("workspaces: could not publish the archiving of %s to the model API (%s)",
                     w.id, gh_err_name(rc));
    w.archived_at = now;
    *out = w;
    return GH_OK;
}

/* Loads the workspace for a member change and checks the actor may make it. */
static gh_err_t member_change_allowed(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                                      gh_workspace_t *w, char *msg, size_t msg_size)
{
    gh_ws_access_t acc;
    gh_err_t rc = gh_ws_load(app, actor, ws_id, w, &acc);
    if (rc) {
        snprintf(msg, msg_size, "There is no workspace with id \"%.60s\".", ws_id);
        return rc;
    }
    if (!acc.manage_members) {
        snprintf(msg, msg_size, "Only admins and this workspace's admins can change its members.");
        return GH_EPERM;
    }
    if (w->is_default) {
        snprintf(msg, msg_size, "Everyone in the organization can use the Default workspace; it "
                                "has no member list to change.");
        return GH_EINVAL;
    }
    if (w->archived_at) {
        snprintf(msg, msg_size, "The workspace \"%s\" is archived and cannot be changed.", w->name);
        return GH_EINVAL;
    }
    return GH_OK;
}

static gh_err_t check_role(const char *role, char *msg, size_t msg_size)
{
    if (gh_ws_role_valid(role))
        return GH_OK;
    snprintf(msg, msg_size, "workspace_role must be workspace_user, workspace_developer, "
                            "workspace_admin or workspace_billing.");
    return GH_EINVAL;
}

gh_err_t gh_ws_member_add(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                          const char *user_id, const char *role, gh_ws_member_t *out, char *msg,
                          size_t msg_size)
{
    gh_workspace_t w;
    gh_err_t rc = check_role(role, msg, msg_size);
    if (rc || (rc = member_change_allowed(app, actor, ws_id, &w, msg, msg_size)))
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_org_user_t u;
    rc = gh_id_valid(user_id, "user") ? gh_store_user_get(db, actor->org_id, user_id, &u)
                                      : GH_ENOTFOUND;
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "There is no member of this organization with id \"%.60s\".",
                 user_id);
    if (rc)
        goto out_rollback;
    rc = gh_store_ws_member_insert(db, actor->org_id, w.id, u.id, role, app->now());
    if (rc == GH_ECONFLICT)
        snprintf(msg, msg_size, "%s is already a member of the workspace \"%s\".", u.email,
                 w.name);
    if (rc)
        goto out_rollback;
    if ((rc = gh_audit(app, db, actor, "workspace_member.added", "workspace", w.id,
                       json_pack("{s:s, s:s, s:s}", "user_id", u.id, "email", u.email,
                                 "workspace_role", role))) ||
        (rc = gh_store_ws_member_get(db, w.id, u.id, out)) || (rc = gh_store_commit(db)))
        goto out_rollback;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_ws_member_set(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                          const char *user_id, const char *role, gh_ws_member_t *out, char *msg,
                          size_t msg_size)
{
    gh_workspace_t w;
    gh_err_t rc = check_role(role, msg, msg_size);
    if (rc || (rc = member_change_allowed(app, actor, ws_id, &w, msg, msg_size)))
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_ws_member_t before;
    if ((rc = gh_store_ws_member_get(db, w.id, user_id, &before))) {
        snprintf(msg, msg_size, "\"%.60s\" is not a member of the workspace \"%s\".", user_id,
                 w.name);
        goto out_rollback;
    }
    if ((rc = gh_store_ws_member_set_role(db, w.id, user_id, role)) ||
        (rc = gh_audit(app, db, actor, "workspace_member.updated", "workspace", w.id,
                       json_pack("{s:s, s:o}", "user_id", user_id, "workspace_role",
                                 json_pack("{s:s, s:s}", "from", before.role, "to", role)))) ||
        (rc = gh_store_ws_member_get(db, w.id, user_id, out)) || (rc = gh_store_commit(db)))
        goto out_rollback;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_ws_member_remove(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                             const char *user_id, char *msg, size_t msg_size)
{
    gh_workspace_t w;
    gh_err_t rc = member_change_allowed(app, actor, ws_id, &w, msg, msg_size);
    if (rc)
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_ws_member_t before;
    if ((rc = gh_store_ws_member_get(db, w.id, user_id, &before))) {
        snprintf(msg, msg_size, "\"%.60s\" is not a member of the workspace \"%s\".", user_id,
                 w.name);
        goto out_rollback;
    }
    if ((rc = gh_store_ws_member_delete(db, w.id, user_id)) ||
        (rc = gh_audit(app, db, actor, "workspace_member.removed", "workspace", w.id,
                       json_pack("{s:s, s:s}", "user_id", user_id, "email", before.email))) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_ws_list(gh_app_t *app, const char *org_id, const char *member_id,
                    bool include_archived, const gh_page_t *page, gh_store_workspace_fn fn,
                    void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_workspaces_list(db, org_id, member_id, include_archived, page, fn, ctx,
                                         has_more)
              : GH_ESTORE;
}

gh_err_t gh_ws_member_list(gh_app_t *app, const char *workspace_id, const gh_page_t *page,
                           gh_store_ws_member_fn fn, void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_ws_members_list(db, workspace_id, page, fn, ctx, has_more) : GH_ESTORE;
}

gh_err_t gh_ws_member_get(gh_app_t *app, const char *workspace_id, const char *user_id,
                          gh_ws_member_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_ws_member_get(db, workspace_id, user_id, out) : GH_ESTORE;
}
