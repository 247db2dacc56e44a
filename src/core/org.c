#include "core/org.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/admission.h"
#include "core/audit.h"
#include "core/country.h"
#include "core/workspaces.h"
#include "core/vat.h"
#include "lib/text.h"
#include "store/store.h"

static const char *const role_names[] = {"", "user", "developer", "billing", "admin"};

gh_role_t gh_role_parse(const char *s)
{
    for (int r = GH_ROLE_USER; r <= GH_ROLE_ADMIN; r++)
        if (s && !strcmp(s, role_names[r]))
            return (gh_role_t)r;
    return GH_ROLE_NONE;
}

const char *gh_role_name(gh_role_t role)
{
    return (unsigned)role <= GH_ROLE_ADMIN ? role_names[role] : "";
}

static gh_err_t set_field(gh_org_settings_t *s, gh_org_field_t f, const char *value, char *msg,
                          size_t msg_size);

gh_err_t gh_org_create(gh_app_t *app, gh_session_t *session, const char *name_in,
                       char org_id_out[GH_ID_MAX], char *msg, size_t msg_size)
{
    /* The name follows the same rules as renaming the organization later. */
    gh_org_settings_t fresh;
    gh_err_t rc = set_field(&fresh, GH_ORG_NAME, name_in, msg, msg_size);
    if (rc)
        return rc;
    const char *name = fresh.name;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    rc = gh_store_begin(db);
    if (rc)
        return rc;
    int count = 0;
    rc = gh_store_membership_count(db, session->account_id, &count);
    if (rc)
        goto out_rollback;
    if (count >= app->cfg->max_orgs_per_account) {
        snprintf(msg, msg_size,
                 "You already belong to %d organizations, the most one account may have.",
                 count);
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    char org_id[GH_ID_MAX], ws_id[GH_ID_MAX];
    gh_id_new(org_id, "org");
    gh_id_new(ws_id, "wrkspc");
    rc = gh_store_org_create(db, org_id, name, session->account_id, ws_id, gh_ws_palette[0],
                            app->now());
    if (rc)
        goto out_rollback;
    rc = gh_store_session_set_org(db, session->id_hash, org_id);
    if (rc)
        goto out_rollback;
    rc = gh_store_commit(db);
    if (rc)
        return rc;
    gh_admission_org_changed(app, org_id); /* its model requests are admitted at once */
    snprintf(session->current_org_id, sizeof(session->current_org_id), "%s", org_id);
    snprintf(org_id_out, GH_ID_MAX, "%s", org_id);
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_org_switch(gh_app_t *app, gh_session_t *session, const char *org_id)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_membership_t m;
    gh_err_t rc = gh_store_membership_get(db, org_id, session->account_id, &m);
    if (rc)
        return rc;
    rc = gh_store_session_set_org(db, session->id_hash, org_id);
    if (rc)
        return rc;
    snprintf(session->current_org_id, sizeof(session->current_org_id), "%s", org_id);
    return GH_OK;
}

const gh_org_field_info_t gh_org_fields[GH_ORG_FIELD_COUNT] = {
    [GH_ORG_NAME] = {"name", false, 80, true},
    [GH_ORG_LEGAL_NAME] = {"legal_name", false, 200, false},
    [GH_ORG_BILLING_EMAIL] = {"billing_email", false, 254, false},
    [GH_ORG_LINE1] = {"line1", true, 200, false},
    [GH_ORG_LINE2] = {"line2", true, 200, false},
    [GH_ORG_CITY] = {"city", true, 100, false},
    [GH_ORG_POSTAL_CODE] = {"postal_code", true, 20, false},
    [GH_ORG_STATE] = {"state", true, 100, false},
    [GH_ORG_COUNTRY] = {"country", true, 2, false},
    [GH_ORG_VAT_ID] = {"vat_id", false, 32, false},
};

bool gh_org_may_edit(gh_role_t role, gh_org_field_t field)
{
    if (role == GH_ROLE_ADMIN)
        return true;
    return role == GH_ROLE_BILLING && !gh_org_fields[field].admin_only;
}

/* Where each field lives in the settings record. */
static char *field_buf(gh_org_settings_t *s, gh_org_field_t f, size_t *size)
{
#define F(member)                                                                          \
    do {                                                                                   \
        *size = sizeof(s->member);                                                         \
        return s->member;                                                                  \
    } while (0)
    switch (f) {
    case GH_ORG_NAME: F(name);
    case GH_ORG_LEGAL_NAME: F(legal_name);
    case GH_ORG_BILLING_EMAIL: F(billing_email);
    case GH_ORG_LINE1: F(line1);
    case GH_ORG_LINE2: F(line2);
    case GH_ORG_CITY: F(city);
    case GH_ORG_POSTAL_CODE: F(postal_code);
    case GH_ORG_STATE: F(state);
    case GH_ORG_COUNTRY: F(country);
    case GH_ORG_VAT_ID: F(vat_id);
    case GH_ORG_FIELD_COUNT: break;
    }
#undef F
    *size = 0;
    return NULL;
}

/* Validates one new value into `dst` (normalised). */
static gh_err_t set_field(gh_org_settings_t *s, gh_org_field_t f, const char *value, char *msg,
                          size_t msg_size)
{
    const gh_org_field_info_t *fi = &gh_org_fields[f];
    size_t size;
    char *dst = field_buf(s, f, &size);
    char tmp[801];
    const char *label = fi->in_address ? "billing_address." : "";
    if (!value)
        value = "";
    if (gh_text_trim(value, tmp, sizeof(tmp)) || gh_utf8_chars(tmp) > fi->max_chars) {
        snprintf(msg, msg_size, "%s%s is too long: use at most %zu characters.", label,
                 fi->json_name, fi->max_chars);
        return GH_EINVAL;
    }
    if (gh_text_has_unsafe(tmp)) {
        snprintf(msg, msg_size,
                 "%s%s must not contain control characters or text-direction marks.", label,
                 fi->json_name);
        return GH_EINVAL;
    }
    if (f == GH_ORG_NAME && gh_text_is_blank(tmp)) {
        snprintf(msg, msg_size, "The organization name cannot be empty.");
        return GH_EINVAL;
    }
    if (f == GH_ORG_BILLING_EMAIL && tmp[0]) {
        char norm[GH_EMAIL_MAX];
        if (gh_email_normalize(tmp, norm, sizeof(norm))) {
            snprintf(msg, msg_size, "billing_email \"%.80s\" is not an email address.", tmp);
            return GH_EINVAL;
        }
        snprintf(tmp, sizeof(tmp), "%s", norm);
    }
    if (f == GH_ORG_COUNTRY && tmp[0]) {
        for (char *p = tmp; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (!gh_country_name(tmp)) {
            snprintf(msg, msg_size,
                     "billing_address.country \"%.8s\" is not an ISO 3166 country code; use "
                     "two letters such as US, GB or IT.",
                     tmp);
            return GH_EINVAL;
        }
    }
    if (f == GH_ORG_VAT_ID && tmp[0]) {
        char norm[32];
        if (gh_vat_normalize(tmp, norm, sizeof(norm))) {
            snprintf(msg, msg_size,
                     "VAT ID \"%.40s\" has characters a VAT ID cannot have; enter the country "
                     "prefix and the number, like IT12345678901.",
                     tmp);
            return GH_EINVAL;
        }
        snprintf(tmp, sizeof(tmp), "%s", norm);
    }
    if (strlen(tmp) >= size) {
        snprintf(msg, msg_size, "%s%s is too long.", label, fi->json_name);
        return GH_EINVAL;
    }
    memcpy(dst, tmp, strlen(tmp) + 1);
    return GH_OK;
}

gh_err_t gh_org_settings_update(gh_app_t *app, const gh_actor_t *actor,
                                const gh_org_patch_t *patch, gh_org_settings_t *out, char *msg,
                                size_t msg_size)
{
    const char *org_id = actor->org_id;
    gh_role_t role = actor->role;
    for (int f = 0; f < GH_ORG_FIELD_COUNT; f++) {
        if (patch->set[f] && !gh_org_may_edit(role, (gh_org_field_t)f)) {
            snprintf(msg, msg_size, "%s",
                     gh_org_fields[f].admin_only
                         ? "Only admins can change the organization name."
                         : "Only admins and billing members can change billing details.");
            return GH_EPERM;
        }
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    gh_org_settings_t s, before;
    rc = gh_store_org_settings_get(db, org_id, &s);
    if (rc)
        goto out_rollback;
    before = s;
    json_t *changes = json_object();
    for (int f = 0; f < GH_ORG_FIELD_COUNT; f++) {
        if (!patch->set[f])
            continue;
        rc = set_field(&s, (gh_org_field_t)f, patch->value[f], msg, msg_size);
        if (rc) {
            json_decref(changes);
            goto out_rollback;
        }
        size_t size;
        const char *was = field_buf(&before, (gh_org_field_t)f, &size);
        const char *now = field_buf(&s, (gh_org_field_t)f, &size);
        if (strcmp(was, now))
            gh_audit_change(changes, gh_org_fields[f].json_name, was, now);
    }
    /* The VAT ID is checked against the resulting country whenever either changes. */
    if (s.vat_id[0] && (patch->set[GH_ORG_VAT_ID] || patch->set[GH_ORG_COUNTRY])) {
        if (!s.country[0]) {
            snprintf(msg, msg_size, "Choose the billing address country before entering a "
                                    "VAT ID.");
            rc = GH_EINVAL;
        } else {
            rc = gh_vat_validate(s.country, s.vat_id, msg, msg_size);
        }
        if (rc) {
            json_decref(changes);
            goto out_rollback;
        }
    }
    s.updated_at = app->now();
    rc = gh_store_org_settings_put(db, &s);
    if (!rc)
        rc = gh_audit(app, db, actor, "organization.updated", "organization", org_id, changes);
    else
        json_decref(changes);
    if (rc)
        goto out_rollback;
    rc = gh_store_commit(db);
    if (rc)
        return rc;
    *out = s;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_org_settings_get(gh_app_t *app, const char *org_id, gh_org_settings_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_org_settings_get(db, org_id, out) : GH_ESTORE;
}
