/* Quotas: what an organization may spend and how fast, as people change it. Settings > Limits
 * shows the tier, its limits and the way to the next one; an admin sets, changes or removes
 * the organization's monthly spend limit and gives workspaces lower limits of their own; an
 * admin asks for a higher tier or custom limits, and platform staff approve (optionally with
 * custom limits) or decline, or move an organization between tiers by hand.
 *
 * Every change is one transaction with its audit event, published to the admission engine
 * right after the commit (core/admission.h), so it applies to the very next model request.
 * Decisions by staff are mailed to the organization's admins after the commit. Money is
 * nano-USD; limits are whole cents. */
#ifndef GH_CORE_QUOTA_H
#define GH_CORE_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/actor.h"
#include "core/admission.h"
#include "core/app.h"

/* The longest reason or staff note, in characters. */
#define GH_QUOTA_TEXT_CHARS 1000

/* Sets the organization's monthly spend limit to `*limit_nusd`, or removes it (NULL). Admins
 * only. GH_EINVAL with a message for an amount that is not whole cents above zero or that
 * exceeds the tier's monthly cap. */
gh_err_t gh_quota_set_monthly_limit(gh_app_t *app, const gh_actor_t *actor,
                                    const int64_t *limit_nusd, char *msg, size_t msg_size);

/* Replaces a workspace's own limits (zero fields: none of that kind; all zero removes them).
 * Admins only. Each must be no higher than the organization's limit of that kind. */
gh_err_t gh_quota_set_ws_limits(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                                const gh_ws_limits_rec_t *in, gh_ws_limits_rec_t *out,
                                char *msg, size_t msg_size);

/* Custom limits: a monthly cap and rates per model class; zero means none of that kind. */
typedef struct gh_custom_limits {
    int64_t monthly_cap_nusd;
    int64_t rpm, itpm, otpm;
} gh_custom_limits_t;

/* Asks for a higher tier (`tier` set) or for custom limits (`custom` set), with a reason.
 * Admins only; one pending request per organization (GH_ECONFLICT). */
gh_err_t gh_quota_request(gh_app_t *app, const gh_actor_t *actor, const char *tier,
                          const gh_custom_limits_t *custom, const char *reason,
                          gh_limit_request_t *out, char *msg, size_t msg_size);

/* Staff decide a pending request (`staff` is a GH_ACTOR_STAFF actor; its org_id is ignored).
 * Approving puts the organization in `tier` (NULL: the tier asked for, or the custom tier for
 * a custom request) with `custom` limits when that tier is a custom one (NULL: what was asked
 * for). GH_ECONFLICT when it was decided already. */
gh_err_t gh_quota_decide(gh_app_t *app, const gh_actor_t *staff, const char *request_id,
                         bool approve, const char *tier, const gh_custom_limits_t *custom,
                         const char *note, gh_limit_request_t *out, char *msg, size_t msg_size);

/* Staff move an organization to `tier` (NULL: back to the tier its purchases reach), with
 * `custom` limits for a custom tier, and a note for the organization (may be NULL). */
gh_err_t gh_quota_set_tier(gh_app_t *app, const gh_actor_t *staff, const char *org_id,
                           const char *tier, const gh_custom_limits_t *custom, const char *note,
                           char *msg, size_t msg_size);

/* Reads for the limits pages. What the organization's limits are now (gh_org_quota_t; GH_ESTORE
 * without an admission engine); the limits each workspace of `org_id` has of its own; one
 * workspace's (GH_ENOTFOUND when it has none); requests for higher limits, oldest first,
 * `org_id` and `status` (each may be NULL) filtering. */
gh_err_t gh_quota_org(gh_app_t *app, const char *org_id, gh_org_quota_t *out);
gh_err_t gh_quota_ws_limits_list(gh_app_t *app, const char *org_id, gh_store_ws_limits_fn fn,
                                 void *ctx);
gh_err_t gh_quota_ws_limits_get(gh_app_t *app, const char *workspace_id, gh_ws_limits_rec_t *out);
gh_err_t gh_quota_requests_list(gh_app_t *app, const char *org_id, const char *status,
                                const gh_page_t *page, gh_store_limit_request_fn fn, void *ctx,
                                bool *has_more);

#endif
