/* /auth/...: sign-in links, the session, onboarding, creating and switching organizations,
 * sign-out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/auth.h"
#include "core/org.h"
#include "core/staff.h"
#include "lib/log.h"
#include "lib/text.h"

void gh_api_auth_email(gh_req_t *req)
{
    static const char *const fields[] = {"email", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *email;
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, fields, NULL) ||
        !gh_api_str(req, body, "email", true, false, &email))
        goto out;
    char msg[256];
    int retry = 0;
    gh_err_t rc = gh_auth_request_link(ctx->app, email, req->ip, &retry, msg, sizeof(msg));
    if (rc == GH_ERATE) {
        char v[16];
        snprintf(v, sizeof(v), "%d", retry > 0 ? retry : 1);
        gh_res_header(req, "retry-after", v);
        gh_res_error(req, rc, "%s", msg);
    } else if (rc == GH_EINVAL) {
        gh_res_error(req, rc, "%s", msg);
    } else if (rc) {
        gh_res_error(req, rc, "We could not send the sign-in email. Try again in a minute.");
    } else {
        char norm[GH_EMAIL_MAX];
        gh_email_normalize(email, norm, sizeof(norm));
        gh_res_json(req, 202, json_pack("{s:s, s:s}", "type", "email_sent", "email", norm));
    }
out:
    json_decref(body);
}

/* Why a link cannot be used: the code the login page explains, and the sentence. */
static bool link_refusal(gh_err_t rc, const char **code, const char **msg)
{
    switch (rc) {
    case GH_EEXPIRED:
        *code = "expired_link";
        *msg = "This sign-in link has expired. Enter your email to get a new one.";
        return true;
    case GH_ECONFLICT:
        *code = "used_link";
        *msg = "This sign-in link was already used. Enter your email to get a new one.";
        return true;
    case GH_ENOTFOUND:
        *code = "invalid_link";
        *msg = "This sign-in link is not valid. Enter your email to get a new one.";
        return true;
    default:
        return false;
    }
}

/* GET /auth/verify?token=…: the emailed link. It only checks the link: mail scanners and link
 * previews fetch links, and a GET that signed in would burn the link before its owner clicked
 * it. A usable link goes on to the console's /sign-in page with the token in the fragment
 * (never sent to a server, never in a log), whose script posts it back; a link that cannot
 * be used goes to the login page, which says why. */
void gh_api_auth_verify(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const gh_config_t *cfg = ctx->app->cfg;
    const char *token = gh_req_query(req, "token");
    gh_err_t rc = gh_auth_check_link(ctx->app, token);
    char location[GH_CONFIG_STR + GH_SECRET_MAX + 64];
    if (rc == GH_OK) {
        snprintf(location, sizeof(location), "%s/sign-in#token=%s", cfg->public_url, token);
        gh_res_redirect(req, location);
        return;
    }
    const char *code, *msg;
    if (!link_refusal(rc, &code, &msg)) {
        gh_res_error(req, rc, "Could not check the sign-in link. Try it again.");
        return;
    }
    const char *accept = gh_req_header(req, "accept");
    if (accept && strstr(accept, "application/json")) {
        gh_res_error(req, GH_EINVAL, "%s", msg);
        return;
    }
    snprintf(location, sizeof(location), "%s/login?error=%s", cfg->public_url, code);
    gh_res_redirect(req, location);
}

/* POST /auth/verify {"token", "switch"}: uses the link (once) and starts the session. When
 * another account is signed in on this browser, the link is not used unless "switch" is
 * true (409 otherwise; see gh_api_refuse_switch); a switch signs that other session out. */
void gh_api_auth_verify_post(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const gh_config_t *cfg = ctx->app->cfg;
    const char *token;
    bool switch_account;
    json_t *body = gh_api_token_body(req, &token, &switch_account);
    if (!body)
        return;
    char current[GH_EMAIL_MAX];
    const char *signed_in = gh_api_signed_in_email(req, current);
    gh_login_t login;
    gh_err_t rc = gh_auth_open_link(ctx->app, token, req->ip, gh_req_header(req, "user-agent"),
                                    switch_account ? NULL : signed_in, &login);
    const char *code, *msg;
    if (rc == GH_EPERM && signed_in) {
        gh_api_refuse_switch(req, signed_in, login.email);
    } else if (rc == GH_OK) {
        if (signed_in && strcasecmp(signed_in, login.email) != 0)
            gh_api_end_previous_session(req);
        gh_api_session_cookie(req, login.session_secret, cfg->session_ttl_s);
        gh_res_json(req, 200, json_pack("{s:s, s:b}", "type", "signed_in", "new_account",
                                        login.new_account));
    } else if (link_refusal(rc, &code, &msg)) {
        gh_res_error(req, GH_EINVAL, "%s", msg);
    } else {
        gh_res_error(req, rc, "Could not sign you in. Try the link again.");
    }
    json_decref(body);
}

static json_t *org_json(const char *id, const char *name, const char *role)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", id, "type", "organization", "name", name,
                     "role", role);
}

typedef struct {
    json_t *list;
    json_t *current;
    const char *current_id;
} orgs_ctx_t;

static void add_org(void *p, const gh_membership_t *m)
{
    orgs_ctx_t *oc = p;
    json_array_append_new(oc->list, org_json(m->org_id, m->org_name, m->role));
    if (!oc->current && !strcmp(m->org_id, oc->current_id))
        oc->current = org_json(m->org_id, m->org_name, m->role);
}

/* Answers with the session object of docs/api.md. */
static void reply_session(gh_req_t *req, int status)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const gh_account_t *a = &ctx->account;
    orgs_ctx_t oc = {json_array(), NULL, ctx->session.current_org_id};
    if (gh_auth_memberships(ctx->app, a->id, add_org, &oc)) {
        json_decref(oc.list);
        json_decref(oc.current);
        gh_res_error(req, GH_ESTORE, "Could not load your organizations. Try again.");
        return;
    }
    json_t *account = json_pack("{s:s, s:s, s:o, s:b, s:o, s:b}", "id", a->id, "email", a->email,
                                "full_name", a->full_name[0] ? json_string(a->full_name) : json_null(),
                                "onboarded", gh_auth_onboarded(a), "created_at",
                                gh_api_time(a->created_at), "is_staff",
                                gh_staff_is(ctx->app, a->id));
    json_t *j = json_pack("{s:s, s:o, s:o, s:o, s:s, s:s, s:s}", "type", "session", "account",
                          account, "organizations", oc.list, "current_organization",
                          oc.current ? oc.current : json_null(), "csrf_token",
                          ctx->session.csrf_token, "terms_version",
                          ctx->app->cfg->terms_version, "product_name",
                          ctx->app->cfg->product_name);
    gh_res_json(req, status, j);
}

void gh_api_auth_session(gh_req_t *req)
{
    reply_session(req, 200);
}

void gh_api_auth_onboarding(gh_req_t *req)
{
    static const char *const fields[] = {"full_name", "confirmed_age_18", "accepted_terms", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *name;
    bool age, terms;
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, fields, NULL) ||
        !gh_api_str(req, body, "full_name", true, false, &name) ||
        !gh_api_bool(req, body, "confirmed_age_18", &age) ||
        !gh_api_bool(req, body, "accepted_terms", &terms))
        goto out;
    char msg[256];
    gh_err_t rc = gh_auth_onboard(ctx->app, &ctx->account, name, age, terms, msg, sizeof(msg));
    if (rc == GH_EINVAL)
        gh_res_error(req, rc, "%s", msg);
    else if (rc)
        gh_res_error(req, rc, "Could not save your details. Try again.");
    else
        reply_session(req, 200);
out:
    json_decref(body);
}

void gh_api_auth_create_org(gh_req_t *req)
{
    static const char *const fields[] = {"name", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *name;
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, fields, NULL) ||
        !gh_api_str(req, body, "name", true, false, &name))
        goto out;
    char msg[256], org_id[GH_ID_MAX];
    gh_err_t rc = gh_org_create(ctx->app, &ctx->session, name, org_id, msg, sizeof(msg));
    if (rc == GH_EINVAL || rc == GH_ECONFLICT)
        gh_res_error(req, rc, "%s", msg);
    else if (rc)
        gh_res_error(req, rc, "Could not create the organization. Try again.");
    else
        reply_session(req, 201);
out:
    json_decref(body);
}

void gh_api_auth_switch_org(gh_req_t *req)
{
    static const char *const fields[] = {"id", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    const char *id;
    if (!body)
        return;
    if (!gh_api_known_fields(req, body, fields, NULL) ||
        !gh_api_str(req, body, "id", true, false, &id))
        goto out;
    gh_err_t rc = gh_id_valid(id, "org") ? gh_org_switch(ctx->app, &ctx->session, id)
                                         : GH_ENOTFOUND;
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "You are not a member of an organization with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not switch organizations. Try again.");
    else
        reply_session(req, 200);
out:
    json_decref(body);
}

void gh_api_auth_logout(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_err_t rc = gh_auth_logout(ctx->app, &ctx->session);
    if (rc) {
        gh_res_error(req, rc, "Could not sign you out. Try again.");
        return;
    }
    gh_api_session_cookie(req, "", 0);
    gh_res_json(req, 200, json_pack("{s:s}", "type", "logged_out"));
}

void gh_api_auth_config(gh_req_t *req)
{
    const gh_config_t *cfg = gh_api_ctx(req)->app->cfg;
    json_t *oidc = json_pack("{s:b, s:s}", "enabled", cfg->oidc_issuer[0] != '\0', "label",
                             cfg->oidc_label);
    json_t *models = json_array();
    for (int i = 0; i < cfg->nmodels; i++)
        json_array_append_new(
            models,
            json_pack("{s:s, s:s, s:s, s:b, s:{s:o, s:o, s:o, s:o}}", "id", cfg->models[i].name,
                      "display_name", cfg->models[i].display_name, "style",
                      cfg->models[i].style, "mock", !strcmp(cfg->models[i].style, "mock"),
                      "price_per_mtok_usd", "input", gh_api_money(cfg->models[i].price_input),
                      "output", gh_api_money(cfg->models[i].price_output), "cache_write",
                      gh_api_money(cfg->models[i].price_cache_write), "cache_read",
                      gh_api_money(cfg->models[i].price_cache_read)));
    gh_res_json(req, 200,
                json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:s, s:o}", "type", "console_config",
                          "product_name", cfg->product_name, "terms_version", cfg->terms_version,
                          "terms_url", cfg->terms_url[0] ? cfg->terms_url : "/terms",
                          "link_ttl_minutes", (cfg->link_ttl_s + 59) / 60, "oidc", oidc,
                          "api_base_url", cfg->public_api_url, "models", models));
}

#define TERMS_MAX (1024 * 1024)

/* GET /auth/terms: what the console's /terms page shows, read from `[auth] terms_file` at each
 * request (so the operator can edit it without a restart), or a placeholder that says none
 * was provided. */
void gh_api_auth_terms(gh_req_t *req)
{
    const gh_config_t *cfg = gh_api_ctx(req)->app->cfg;
    if (!cfg->terms_file[0]) {
        char text[512];
        snprintf(text, sizeof(text),
                 "The operator of %s has not provided its Terms of Service yet.\n\n"
                 "Operators: put your terms in a UTF-8 text file and set [auth] terms_file to "
                 "its path, or set [auth] terms_url to a page of your own.",
                 cfg->product_name);
        gh_res_json(req, 200, json_pack("{s:s, s:s, s:s, s:b}", "type", "terms", "version",
                                        cfg->terms_version, "text", text, "provided", false));
        return;
    }
    FILE *f = fopen(cfg->terms_file, "rb");
    char *text = malloc(TERMS_MAX + 1);
    size_t n = f && text ? fread(text, 1, TERMS_MAX + 1, f) : 0;
    bool bad = !f || !text || ferror(f) || n > TERMS_MAX;
    if (f)
        fclose(f);
    json_t *s = bad ? NULL : json_stringn(text, n);
    free(text);
    if (!s) {
        gh_log_error("auth: [auth] terms_file %s cannot be shown: %s", cfg->terms_file,
                     bad ? "unreadable or over 1 MiB" : "not UTF-8 text");
        gh_res_error(req, GH_EUNAVAIL, "The Terms of Service cannot be shown right now. Try again "
                                       "later.");
        return;
    }
    gh_res_json(req, 200, json_pack("{s:s, s:s, s:o, s:b}", "type", "terms", "version",
                                    cfg->terms_version, "text", s, "provided", true));
}
