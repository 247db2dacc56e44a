#include "core/audit.h"
#include "store/store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const actions[] = {
    "organization.updated",     "invite.created",
    "invite.resent",            "invite.deleted",
    "invite.accepted",          "user.role_changed",
    "user.removed",             "workspace.created",
    "workspace.updated",        "workspace.archived",
    "workspace_member.added",   "workspace_member.updated",
    "workspace_member.removed", "api_key.created",
    "api_key.updated",          "admin_key.created",
    "admin_key.revoked",        "payment_method.added",
    "billing_profile.updated",  "purchase.created",
    "purchase.succeeded",       "purchase.declined",
    "purchase.unconfirmed",     "auto_reload.updated",
    "auto_reload.disabled",     "credits.granted",
    "credits.clawed_back",      "limits.spend_limit_set",
    "limits.spend_limit_removed", "limits.tier_set",
    "workspace.limits_updated", "limit_request.created",
    "limit_request.approved",   "limit_request.declined",
    "limits.notification_added", "limits.notification_removed",
    NULL,
};

const char *const *gh_audit_actions(void)
{
    return actions;
}

bool gh_audit_action_known(const char *action)
{
    for (const char *const *a = actions; action && *a; a++)
        if (!strcmp(*a, action))
            return true;
    return false;
}

gh_err_t gh_audit(gh_app_t *app, gh_db_t *db, const gh_actor_t *actor, const char *action,
                  const char *target_type, const char *target_id, json_t *details)
{
    /* An action missing from the list could not be filtered for: add it there. */
    assert(gh_audit_action_known(action));
    gh_audit_event_t e;
    memset(&e, 0, sizeof(e));
    gh_id_new(e.id, "audit");
    snprintf(e.org_id, sizeof(e.org_id), "%s", actor->org_id);
    e.created_at = app->now();
    snprintf(e.actor_type, sizeof(e.actor_type), "%s", gh_actor_type(actor));
    snprintf(e.actor_id, sizeof(e.actor_id), "%s", actor->id);
    snprintf(e.actor_label, sizeof(e.actor_label), "%s", actor->label);
    snprintf(e.action, sizeof(e.action), "%s", action);
    snprintf(e.target_type, sizeof(e.target_type), "%s", target_type);
    snprintf(e.target_id, sizeof(e.target_id), "%s", target_id);
    snprintf(e.ip, sizeof(e.ip), "%s", actor->ip);
    char *text = details ? json_dumps(details, JSON_COMPACT) : NULL;
    json_decref(details);
    if (text && strlen(text) < sizeof(e.details))
        memcpy(e.details, text, strlen(text) + 1);
    else
        snprintf(e.details, sizeof(e.details), "{}");
    free(text);
    return gh_store_audit_insert(db, &e);
}

void gh_audit_change(json_t *details, const char *field, const char *from, const char *to)
{
    /* An unset value is null, as the API shows it. */
    json_object_set_new(details, field,
                        json_pack("{s:o, s:o}", "from", *from ? json_string(from) : json_null(),
                                  "to", *to ? json_string(to) : json_null()));
}

gh_err_t gh_audit_list(gh_app_t *app, const char *org_id, const char *actor_id,
                       const char *action, const gh_page_t *page, gh_store_audit_fn fn,
                       void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_audit_list(db, org_id, actor_id, action, page, fn, ctx, has_more)
              : GH_ESTORE;
}
