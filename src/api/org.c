/* /v1/organizations/me and its settings; /v1/countries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/country.h"
#include "lib/text.h"

void gh_api_org_me(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_res_json(req, 200,
                json_pack("{s:s, s:s, s:s}", "id", ctx->membership.org_id, "type", "organization",
                          "name", ctx->membership.org_name));
}

static void reply_settings(gh_req_t *req, const gh_org_settings_t *s)
{
    gh_role_t role = gh_api_ctx(req)->role;
    json_t *addr = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "line1", gh_api_opt_str(s->line1),
                             "line2", gh_api_opt_str(s->line2), "city", gh_api_opt_str(s->city),
                             "postal_code", gh_api_opt_str(s->postal_code), "state",
                             gh_api_opt_str(s->state), "country", gh_api_opt_str(s->country));
    json_t *can = json_pack("{s:b, s:b}", "name", gh_org_may_edit(role, GH_ORG_NAME), "billing",
                            gh_org_may_edit(role, GH_ORG_LEGAL_NAME));
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:o, s:o}", "id", s->id, "type",
                  "organization_settings", "name", s->name, "legal_name",
                  gh_api_opt_str(s->legal_name), "billing_email", gh_api_opt_str(s->billing_email),
                  "billing_address", addr, "vat_id", gh_api_opt_str(s->vat_id), "vat_applicable",
                  s->country[0] && gh_country_vat_applicable(s->country), "can_edit", can,
                  "updated_at", gh_api_time(s->updated_at));
    gh_res_json(req, 200, j);
}

void gh_api_org_settings_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_org_settings_t s;
    gh_err_t rc = gh_org_settings_get(ctx->app, ctx->membership.org_id, &s);
    if (rc) {
        gh_res_error(req, rc, "Could not load the organization settings. Try again.");
        return;
    }
    reply_settings(req, &s);
}

/* Reads the fields of `obj` that belong at `level` (top or inside billing_address) into
 * `patch`. */
static bool read_fields(gh_req_t *req, json_t *obj, bool in_address, gh_org_patch_t *patch)
{
    for (int f = 0; f < GH_ORG_FIELD_COUNT; f++) {
        const gh_org_field_info_t *fi = &gh_org_fields[f];
        if (fi->in_address != in_address || !json_object_get(obj, fi->json_name))
            continue;
        /* The name is the only field that cannot be cleared. */
        if (!gh_api_str(req, obj, fi->json_name, false, f != GH_ORG_NAME, &patch->value[f]))
            return false;
        patch->set[f] = true;
    }
    return true;
}

void gh_api_org_settings_post(gh_req_t *req)
{
    static const char *const top[] = {"name",     "legal_name", "billing_email",
                                      "billing_address", "vat_id", NULL};
    static const char *const address[] = {"line1",       "line2", "city",
                                          "postal_code", "state", "country", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    gh_org_patch_t patch;
    memset(&patch, 0, sizeof(patch));
    if (!gh_api_known_fields(req, body, top, NULL) || !read_fields(req, body, false, &patch))
        goto out;
    json_t *addr = json_object_get(body, "billing_address");
    if (addr && !json_is_null(addr)) {
        if (!json_is_object(addr)) {
            gh_res_error(req, GH_EINVAL, "billing_address must be an object.");
            goto out;
        }
        if (!gh_api_known_fields(req, addr, address, "billing_address") ||
            !read_fields(req, addr, true, &patch))
            goto out;
    } else if (addr) {
        /* billing_address: null clears the whole address. */
        for (int f = 0; f < GH_ORG_FIELD_COUNT; f++)
            if (gh_org_fields[f].in_address)
                patch.set[f] = true;
    }
    char msg[512];
    gh_org_settings_t s;
    gh_err_t rc = gh_org_settings_update(ctx->app, &ctx->actor, &patch, &s, msg, sizeof(msg));
    if (rc == GH_EINVAL || rc == GH_EPERM)
        gh_res_error(req, rc, "%s", msg);
    else if (rc)
        gh_res_error(req, rc, "Could not save the organization settings. Try again.");
    else
        reply_settings(req, &s);
out:
    json_decref(body);
}

static int by_name(const void *a, const void *b)
{
    const gh_country_t *const *x = a, *const *y = b;
    return gh_text_cmp_folded((*x)->name, (*y)->name);
}

void gh_api_countries(gh_req_t *req)
{
    size_t n = gh_country_count();
    const gh_country_t **sorted = calloc(n, sizeof(*sorted));
    if (!sorted) {
        gh_res_error(req, GH_ENOMEM, "Out of memory.");
        return;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = gh_country_at(i);
    qsort(sorted, n, sizeof(*sorted), by_name);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "code", sorted[i]->code, "name",
                                              sorted[i]->name, "vat", sorted[i]->vat));
    free(sorted);
    gh_res_header(req, "cache-control", "public, max-age=86400");
    gh_res_json(req, 200, json_pack("{s:o}", "data", list));
}
