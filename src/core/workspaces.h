/* Workspaces and workspace membership, with who may see and change what:
 * - admins and billing members reach every workspace; users and developers reach Default
 *   (everyone may use it) and the workspaces they are members of;
 * - only admins create, rename, recolour and archive workspaces;
 * - admins and a workspace's workspace_admins manage its members;
 * - API keys of a workspace are managed by admins, by developers who reach it, and by its
 *   workspace_developers and workspace_admins. */
#ifndef GH_CORE_WORKSPACES_H
#define GH_CORE_WORKSPACES_H

#include <stdbool.h>

#include "core/actor.h"
#include "core/app.h"

#define GH_WS_PALETTE_SIZE 10
extern const char *const gh_ws_palette[GH_WS_PALETTE_SIZE];

/* What an actor may do in one workspace. */
typedef struct gh_ws_access {
    bool reach;          /* see it and use it */
    bool manage_members; /* add, change and remove its members */
    bool manage_keys;    /* see and manage its API keys */
    char ws_role[32];    /* the actor's workspace role, "" when none */
} gh_ws_access_t;

gh_err_t gh_ws_access(gh_db_t *db, const gh_actor_t *actor, const gh_workspace_t *w,
                      gh_ws_access_t *out);

/* Loads a workspace the actor reaches; GH_ENOTFOUND for one that does not exist, belongs to
 * another organization or is out of the actor's reach (so ids do not leak). */
gh_err_t gh_ws_load(gh_app_t *app, const gh_actor_t *actor, const char *id, gh_workspace_t *w,
                    gh_ws_access_t *access);

/* Admin only. `color` may be NULL (the next palette colour). */
gh_err_t gh_ws_create(gh_app_t *app, const gh_actor_t *actor, const char *name,
                      const char *color, gh_workspace_t *out, char *msg, size_t msg_size);
/* Admin only; NULL leaves a field as it is. */
gh_err_t gh_ws_update(gh_app_t *app, const gh_actor_t *actor, const char *id, const char *name,
                      const char *color, gh_workspace_t *out, char *msg, size_t msg_size);
gh_err_t gh_ws_archive(gh_app_t *app, const gh_actor_t *actor, const char *id,
                       gh_workspace_t *out, char *msg, size_t msg_size);

/* True for workspace_user, workspace_developer, workspace_admin, workspace_billing. */
bool gh_ws_role_valid(const char *role);

gh_err_t gh_ws_member_add(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                          const char *user_id, const char *role, gh_ws_member_t *out, char *msg,
                          size_t msg_size);
gh_err_t gh_ws_member_set(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                          const char *user_id, const char *role, gh_ws_member_t *out, char *msg,
                          size_t msg_size);
gh_err_t gh_ws_member_remove(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                             const char *user_id, char *msg, size_t msg_size);

/* Reads for the console: the organization's workspaces, Default first (`member_id` set: only
 * Default and the ones that account is a member of); a workspace's members, and one of them
 * (GH_ENOTFOUND when the account is not a member). */
gh_err_t gh_ws_list(gh_app_t *app, const char *org_id, const char *member_id,
                    bool include_archived, const gh_page_t *page, gh_store_workspace_fn fn,
                    void *ctx, bool *has_more);
gh_err_t gh_ws_member_list(gh_app_t *app, const char *workspace_id, const gh_page_t *page,
                           gh_store_ws_member_fn fn, void *ctx, bool *has_more);
gh_err_t gh_ws_member_get(gh_app_t *app, const char *workspace_id, const char *user_id,
                          gh_ws_member_t *out);

#endif
