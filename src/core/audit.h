/* The audit trail: every change to members, invites, workspaces, keys and settings is
 * recorded with who did it (a person or an admin key), what, to what, when and from which IP.
 * Recorded inside the caller's transaction, so a change and its record land together. */
#ifndef GH_CORE_AUDIT_H
#define GH_CORE_AUDIT_H

#include <jansson.h>
#include <stdbool.h>

#include "core/actor.h"
#include "core/app.h"

/* Records `action` on `target_type`/`target_id` by `actor`, with `details` (a JSON object
 * whose reference is taken; NULL for none). Never pass secrets in details. */
gh_err_t gh_audit(gh_app_t *app, gh_db_t *db, const gh_actor_t *actor, const char *action,
                  const char *target_type, const char *target_id, json_t *details);

/* Every action an audit event can have, NULL-terminated, in the order the console lists
 * them: the one list that gh_audit checks (assert), the audit log's `action` filter accepts
 * and GET /v1/organizations/audit_log/actions serves to the console. */
const char *const *gh_audit_actions(void);

/* Whether `action` is in gh_audit_actions(). */
bool gh_audit_action_known(const char *action);

/* Records in `details` that `field` changed from `from` to `to`. */
void gh_audit_change(json_t *details, const char *field, const char *from, const char *to);

/* The organization's audit trail, newest first; `actor_id` and `action` (each may be NULL)
 * filter. */
gh_err_t gh_audit_list(gh_app_t *app, const char *org_id, const char *actor_id,
                       const char *action, const gh_page_t *page, gh_store_audit_fn fn,
                       void *ctx, bool *has_more);

#endif
