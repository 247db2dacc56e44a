#include "core/keys.h"

#include <stdio.h>
#include <string.h>

#include "core/audit.h"
#include "core/workspaces.h"
#include "lib/log.h"
#include "lib/text.h"
#include "store/store.h"

static gh_err_t clean_key_name(const char *in, char out[401], char *msg, size_t msg_size)
{
    if (gh_text_trim(in, out, 401) || gh_utf8_chars(out) > 100) {
        snprintf(msg, msg_size, "The key name is too long: use at most 100 characters.");
        return GH_EINVAL;
    }
    if (gh_text_is_blank(out)) {
        snprintf(msg, msg_size, "Enter a name for the key.");
        return GH_EINVAL;
    }
    if (gh_text_has_unsafe(out)) {
        snprintf(msg, msg_size,
                 "The key name must not contain control characters or text-direction marks.");
        return GH_EINVAL;
    }
    return GH_OK;
}

/* Publishes a key's current row to the data plane's in-memory state. */
static void publish_key(gh_app_t *app, gh_db_t *db, const char *id)
{
    gh_err_t rc = gh_state_sync_key(app->state, db, id);
    if (rc)
        gh_log_error("keys: could not publish %s to the model API (%s); it is picked up at the "
                     "next start", id, gh_err_name(rc));
}

/* Creates a key row of `kind` and its secret, with the audit record, in one transaction. */
static gh_err_t create_key(gh_app_t *app, const gh_actor_t *actor, gh_key_rec_t *k,
                           const char *prefix, const char *action, char secret[GH_KEY_MAX])
{
    gh_key_new(secret, prefix);
    char hash[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hash, secret, strlen(secret));
    gh_key_hint(k->hint, secret, prefix);
    snprintf(k->org_id, sizeof(k->org_id), "%s", actor->org_id);
    snprintf(k->status, sizeof(k->status), "active");
    snprintf(k->created_by_type, sizeof(k->created_by_type), "%s", gh_actor_type(actor));
    snprintf(k->created_by_id, sizeof(k->created_by_id), "%s", actor->id);
    k->created_at = app->now();
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    json_t *details = json_pack("{s:s, s:s}", "name", k->name, "hint", k->hint);
    if (k->workspace_id[0])
        json_object_set_new(details, "workspace_id", json_string(k->workspace_id));
    if ((rc = gh_store_key_insert(db, k, hash)) ||
        (rc = gh_audit(app, db, actor, action, !strcmp(k->kind, "api") ? "api_key" : "admin_key",
                       k->id, details)) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        memset(secret, 0, GH_KEY_MAX);
        return rc;
    }
    /* The data plane serves the new key from its next request on. */
    if (!strcmp(k->kind, "api"))
        publish_key(app, db, k->id);
    return GH_OK;
}

/* Finds the Default workspace's id: the first in the organization's list. */
static void first_workspace(void *ctx, const gh_workspace_t *w)
{
    char *id = ctx;
    if (!id[0] && w->is_default)
        snprintf(id, GH_ID_MAX, "%s", w->id);
}

gh_err_t gh_apikey_create(gh_app_t *app, const gh_actor_t *actor, const char *name,
                          const char *workspace_id, gh_key_rec_t *out,
                          char secret[GH_KEY_MAX], char *msg, size_t msg_size)
{
    gh_key_rec_t k;
    memset(&k, 0, sizeof(k));
    gh_err_t rc = clean_key_name(name, k.name, msg, msg_size);
    if (rc)
        return rc;
    char ws_id[GH_ID_MAX] = "";
    if (workspace_id) {
        snprintf(ws_id, sizeof(ws_id), "%s", workspace_id);
    } else {
        gh_db_t *db = gh_store_db(app->store);
        gh_page_t first = {.limit = 1};
        bool more;
        if (!db || (rc = gh_store_workspaces_list(db, actor->org_id, NULL, false, &first,
                                                  first_workspace, ws_id, &more)))
            return rc ? rc : GH_ESTORE;
    }
    gh_workspace_t w;
    gh_ws_access_t acc;
    if ((rc = gh_ws_load(app, actor, ws_id, &w, &acc))) {
        snprintf(msg, msg_size, "There is no workspace with id \"%.60s\".", ws_id);
        return rc;
    }
    if (!acc.manage_keys) {
        snprintf(msg, msg_size, "You cannot create keys in the workspace \"%s\": that needs the "
                                "developer or admin role there.", w.name);
        return GH_EPERM;
    }
    if (w.archived_at) {
        snprintf(msg, msg_size, "The workspace \"%s\" is archived; keys cannot be created in it.",
                 w.name);
        return GH_EINVAL;
    }
    gh_id_new(k.id, "apikey");
    snprintf(k.kind, sizeof(k.kind), "api");
    snprintf(k.workspace_id, sizeof(k.workspace_id), "%s", w.id);
    if ((rc = create_key(app, actor, &k, GH_KEY_API_PREFIX, "api_key.created", secret)))
        return rc;
    *out = k;
    return GH_OK;
}

gh_err_t gh_apikey_workbench(gh_app_t *app, const gh_actor_t *actor, const gh_workspace_t *w,
                             gh_key_rec_t *out, char secret[GH_KEY_MAX])
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    char id[GH_ID_MAX] = "";
    gh_key_rec_t k;
    memset(&k, 0, sizeof(k));
    gh_err_t rc = gh_store_workbench_key_get(db, w->id, id);
    if (rc == GH_OK && (rc = gh_store_key_get(db, w->org_id, "api", id, &k)) == GH_OK &&
        strcmp(k.status, "archived")) {
        /* A new secret for the key the workspace has: the old one died with the process that
         * made it. The key keeps its id, so its usage stays in one line of the reports. */
        gh_key_new(secret, GH_KEY_API_PREFIX);
        char hash[GH_SHA256_HEX_MAX];
        gh_sha256_hex(hash, secret, strlen(secret));
        gh_key_hint(k.hint, secret, GH_KEY_API_PREFIX);
        if ((rc = gh_store_key_set_secret(db, k.id, hash, k.hint))) {
            memset(secret, 0, GH_KEY_MAX);
            return rc;
        }
        publish_key(app, db, k.id);
        *out = k;
        return GH_OK;
    }
    if (rc && rc != GH_ENOTFOUND)
        return rc;
    /* None yet (or it was archived): a new key named "Workbench", made by whoever first opened
     * the Workbench in this workspace, and recorded as the workspace's Workbench key in the
     * same transaction. */
    memset(&k, 0, sizeof(k));
    gh_id_new(k.id, "apikey");
    snprintf(k.kind, sizeof(k.kind), "api");
    snprintf(k.name, sizeof(k.name), "Workbench");
    snprintf(k.workspace_id, sizeof(k.workspace_id), "%s", w->id);
    if ((rc = gh_store_begin(db)))
        return rc;
    if ((rc = create_key(app, actor, &k, GH_KEY_API_PREFIX, "api_key.created", secret)) ||
        (rc = gh_store_workbench_key_set(db, w->id, k.id)) || (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        memset(secret, 0, GH_KEY_MAX);
        return rc;
    }
    *out = k;
    return GH_OK;
}

gh_err_t gh_apikey_get(gh_app_t *app, const gh_actor_t *actor, const char *id,
                       gh_key_rec_t *out)
{
    if (!gh_id_valid(id, "apikey"))
        return GH_ENOTFOUND;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_err_t rc = gh_store_key_get(db, actor->org_id, "api", id, out);
    if (rc)
        return rc;
    gh_workspace_t w;
    gh_ws_access_t acc;
    if ((rc = gh_store_workspace_get(db, actor->org_id, out->workspace_id, &w)) ||
        (rc = gh_ws_access(db, actor, &w, &acc)))
        return rc;
    return acc.manage_keys ? GH_OK : GH_ENOTFOUND;
}

gh_err_t gh_apikey_update(gh_app_t *app, const gh_actor_t *actor, const char *id,
                          const char *name, const char *status, gh_key_rec_t *out, char *msg,
                          size_t msg_size)
{
    gh_key_rec_t k;
    gh_err_t rc = gh_apikey_get(app, actor, id, &k);
    if (rc) {
        snprintf(msg, msg_size, "There is no API key with id \"%.60s\".", id);
        return rc;
    }
    gh_key_rec_t next = k;
    if (name && (rc = clean_key_name(name, next.name, msg, msg_size)))
        return rc;
    if (status) {
        if (strcmp(status, "active") && strcmp(status, "inactive") && strcmp(status, "archived")) {
            snprintf(msg, msg_size, "status must be active, inactive or archived.");
            return GH_EINVAL;
        }
        snprintf(next.status, sizeof(next.status), "%s", status);
    }
    if (!strcmp(k.status, "archived") && (strcmp(next.status, "archived") || strcmp(next.name, k.name))) {
        snprintf(msg, msg_size, "The key \"%s\" is archived; archived keys cannot be changed.",
                 k.name);
        return GH_EINVAL;
    }
    if (!strcmp(k.name, next.name) && !strcmp(k.status, next.status)) {
        *out = k; /* nothing to change, nothing to record */
        return GH_OK;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    json_t *details = json_object();
    if (strcmp(k.name, next.name))
        gh_audit_change(details, "name", k.name, next.name);
    if (strcmp(k.status, next.status))
        gh_audit_change(details, "status", k.status, next.status);
    if ((rc = gh_store_key_update(db, k.id, next.name, next.status)) ||
        (rc = gh_audit(app, db, actor, "api_key.updated", "api_key", k.id, details)) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        return rc;
    }
    publish_key(app, db, k.id);
    *out = next;
    return GH_OK;
}

void gh_apikey_filter_for(const gh_actor_t *actor, gh_key_filter_t *filter)
{
    filter->kind = "api";
    if (actor->role == GH_ROLE_ADMIN)
        return;
    filter->access_account_id = actor->id;
    filter->access_developer = actor->role == GH_ROLE_DEVELOPER;
}

gh_err_t gh_adminkey_create(gh_app_t *app, const gh_actor_t *actor, const char *name,
                            gh_key_rec_t *out, char secret[GH_KEY_MAX], char *msg,
                            size_t msg_size)
{
    if (actor->role != GH_ROLE_ADMIN) {
        snprintf(msg, msg_size, "Only admins can create admin keys.");
        return GH_EPERM;
    }
    gh_key_rec_t k;
    memset(&k, 0, sizeof(k));
    gh_err_t rc = clean_key_name(name, k.name, msg, msg_size);
    if (rc)
        return rc;
    gh_id_new(k.id, "adminkey");
    snprintf(k.kind, sizeof(k.kind), "admin");
    if ((rc = create_key(app, actor, &k, GH_KEY_ADMIN_PREFIX, "admin_key.created", secret)))
        return rc;
    *out = k;
    return GH_OK;
}

gh_err_t gh_adminkey_revoke(gh_app_t *app, const gh_actor_t *actor, const char *id,
                            gh_key_rec_t *out, char *msg, size_t msg_size)
{
    if (actor->role != GH_ROLE_ADMIN) {
        snprintf(msg, msg_size, "Only admins can revoke admin keys.");
        return GH_EPERM;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_key_rec_t k;
    gh_err_t rc = gh_id_valid(id, "adminkey") ? gh_store_key_get(db, actor->org_id, "admin", id, &k)
                                              : GH_ENOTFOUND;
    if (rc) {
        snprintf(msg, msg_size, "There is no admin key with id \"%.60s\".", id);
        return rc;
    }
    if (!strcmp(k.status, "revoked")) {
        snprintf(msg, msg_size, "The admin key \"%s\" is already revoked.", k.name);
        return GH_EINVAL;
    }
    if ((rc = gh_store_begin(db)))
        return rc;
    if ((rc = gh_store_key_update(db, k.id, k.name, "revoked")) ||
        (rc = gh_audit(app, db, actor, "admin_key.revoked", "admin_key", k.id,
                       json_pack("{s:s}", "name", k.name))) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        return rc;
    }
    snprintf(k.status, sizeof(k.status), "revoked");
    *out = k;
    return GH_OK;
}

gh_err_t gh_adminkey_authenticate(gh_app_t *app, const char *secret, const char *ip,
                                  gh_actor_t *actor)
{
    if (gh_key_check(secret, GH_KEY_ADMIN_PREFIX) != GH_KEY_OK)
        return GH_EAUTH;
    char hash[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hash, secret, strlen(secret));
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_key_rec_t k;
    gh_err_t rc = gh_store_key_by_hash(db, hash, &k);
    if (rc)
        return rc == GH_ENOTFOUND ? GH_EAUTH : rc;
    if (strcmp(k.kind, "admin") || strcmp(k.status, "active"))
        return GH_EAUTH;
    memset(actor, 0, sizeof(*actor));
    actor->kind = GH_ACTOR_ADMIN_KEY;
    actor->role = GH_ROLE_ADMIN;
    snprintf(actor->id, sizeof(actor->id), "%s", k.id);
    snprintf(actor->label, sizeof(actor->label), "%s", k.name);
    snprintf(actor->org_id, sizeof(actor->org_id), "%s", k.org_id);
    snprintf(actor->ip, sizeof(actor->ip), "%s", ip);
    /* Recording the use is worth a write on this low-rate path; a failure to record it is
     * not a reason to refuse the request. */
    (void)gh_store_key_touch(db, k.id, app->now());
    return GH_OK;
}

gh_err_t gh_keys_list(gh_app_t *app, const char *org_id, const gh_key_filter_t *filter,
                      const gh_page_t *page, gh_store_key_fn fn, void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_keys_list(db, org_id, filter, page, fn, ctx, has_more) : GH_ESTORE;
}

gh_err_t gh_adminkey_get(gh_app_t *app, const char *org_id, const char *id, gh_key_rec_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_key_get(db, org_id, "admin", id, out) : GH_ESTORE;
}
