/* Organizations: creation, membership roles, switching, and the organization settings
 * (name, legal name, billing email, billing address, VAT ID) with who may change what. */
#ifndef GH_CORE_ORG_H
#define GH_CORE_ORG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/app.h"

typedef enum {
    GH_ROLE_NONE = 0,
    GH_ROLE_USER,
    GH_ROLE_DEVELOPER,
    GH_ROLE_BILLING,
    GH_ROLE_ADMIN,
} gh_role_t;

/* "user", "developer", "billing", "admin" to the enum (GH_ROLE_NONE when unknown), and back. */
gh_role_t gh_role_parse(const char *s);
const char *gh_role_name(gh_role_t role);

/* Creates an organization named `name` (1–80 characters after trimming) with `account` as
 * its admin and a "Default" workspace, and makes it the session's current organization.
 * GH_EINVAL with a message for a bad name, GH_ECONFLICT when the account already belongs to
 * the configured maximum of organizations. */
gh_err_t gh_org_create(gh_app_t *app, gh_session_t *session, const char *name,
                       char org_id_out[GH_ID_MAX], char *msg, size_t msg_size);

/* Makes `org_id` the session's current organization. GH_ENOTFOUND unless the session's
 * account is a member. */
gh_err_t gh_org_switch(gh_app_t *app, gh_session_t *session, const char *org_id);

/* The settings fields a patch can carry, in the order of gh_org_fields. */
typedef enum {
    GH_ORG_NAME,
    GH_ORG_LEGAL_NAME,
    GH_ORG_BILLING_EMAIL,
    GH_ORG_LINE1,
    GH_ORG_LINE2,
    GH_ORG_CITY,
    GH_ORG_POSTAL_CODE,
    GH_ORG_STATE,
    GH_ORG_COUNTRY,
    GH_ORG_VAT_ID,
    GH_ORG_FIELD_COUNT
} gh_org_field_t;

typedef struct gh_org_field_info {
    const char *json_name; /* name in the API ("line1" lives inside billing_address) */
    bool in_address;
    size_t max_chars;
    bool admin_only; /* otherwise admins and billing members may change it */
} gh_org_field_info_t;

extern const gh_org_field_info_t gh_org_fields[GH_ORG_FIELD_COUNT];

/* A partial update: for each field, whether it is set and its new value (NULL or "" clears
 * an optional field). */
typedef struct gh_org_patch {
    bool set[GH_ORG_FIELD_COUNT];
    const char *value[GH_ORG_FIELD_COUNT];
} gh_org_patch_t;

/* Whether `role` may change `field`. */
bool gh_org_may_edit(gh_role_t role, gh_org_field_t field);

struct gh_actor;

/* Validates and applies `patch` to the actor's organization, records it in the audit log and
 * writes the result into `out`. GH_EPERM when the actor's role may not change a field it sets,
 * GH_EINVAL with a message for a bad value; in both cases nothing changes. */
gh_err_t gh_org_settings_update(gh_app_t *app, const struct gh_actor *actor,
                                const gh_org_patch_t *patch, gh_org_settings_t *out, char *msg,
                                size_t msg_size);

/* The organization's settings as stored; GH_ENOTFOUND for an unknown organization. */
gh_err_t gh_org_settings_get(gh_app_t *app, const char *org_id, gh_org_settings_t *out);

#endif
