/* API keys (for the model API, one per workspace) and admin keys (for the Organization API).
 * A key's secret is returned once, at creation; only its SHA-256 and a hint are stored. */
#ifndef GH_CORE_KEYS_H
#define GH_CORE_KEYS_H

#include "core/actor.h"
#include "core/app.h"
#include "lib/keyfmt.h"

/* Creates an API key in `workspace_id` (NULL: the Default workspace), which the actor must be
 * allowed to manage keys in. The secret goes to `secret`, only here. */
gh_err_t gh_apikey_create(gh_app_t *app, const gh_actor_t *actor, const char *name,
                          const char *workspace_id, gh_key_rec_t *out,
                          char secret[GH_KEY_MAX], char *msg, size_t msg_size);

/* Loads an API key the actor may manage; GH_ENOTFOUND otherwise. */
/* The Workbench key of workspace `w` (docs/architecture.md, "The Workbench") with a new
 * secret in `secret`: the workspace's key gets a new secret, or, when it has none (or it was
 * archived), a key named "Workbench" is created by `actor`. The caller checked that `actor`
 * may use keys in `w`, and keeps the secret to itself: it is never shown to anyone. */
gh_err_t gh_apikey_workbench(gh_app_t *app, const gh_actor_t *actor, const gh_workspace_t *w,
                             gh_key_rec_t *out, char secret[GH_KEY_MAX]);

gh_err_t gh_apikey_get(gh_app_t *app, const gh_actor_t *actor, const char *id,
                       gh_key_rec_t *out);

/* Renames and/or changes the status (active, inactive, archived; archived is final). NULL
 * leaves a field as it is. */
gh_err_t gh_apikey_update(gh_app_t *app, const gh_actor_t *actor, const char *id,
                          const char *name, const char *status, gh_key_rec_t *out, char *msg,
                          size_t msg_size);

/* The list filter that limits keys to what the actor may manage. */
void gh_apikey_filter_for(const gh_actor_t *actor, gh_key_filter_t *filter);

/* Admin keys: admins only. */
gh_err_t gh_adminkey_create(gh_app_t *app, const gh_actor_t *actor, const char *name,
                            gh_key_rec_t *out, char secret[GH_KEY_MAX], char *msg,
                            size_t msg_size);
gh_err_t gh_adminkey_revoke(gh_app_t *app, const gh_actor_t *actor, const char *id,
                            gh_key_rec_t *out, char *msg, size_t msg_size);

/* Authenticates an admin key: fills `actor` as an admin of the key's organization and
 * records its use. GH_EAUTH for a malformed, unknown or revoked key. */
gh_err_t gh_adminkey_authenticate(gh_app_t *app, const char *secret, const char *ip,
                                  gh_actor_t *actor);

/* Keys of the organization (API and admin keys alike), `filter` as gh_apikey_filter_for
 * leaves it, one page at a time; and one admin key by id (GH_ENOTFOUND when the organization
 * has no such admin key). */
gh_err_t gh_keys_list(gh_app_t *app, const char *org_id, const gh_key_filter_t *filter,
                      const gh_page_t *page, gh_store_key_fn fn, void *ctx, bool *has_more);
gh_err_t gh_adminkey_get(gh_app_t *app, const char *org_id, const char *id, gh_key_rec_t *out);

#endif
