/* Strict JSON request bodies: an object, only known fields, each of the right type. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "api/api.h"
#include "core/auth.h"
#include "lib/money.h"

json_t *gh_api_body(gh_req_t *req)
{
    const char *ct = gh_req_header(req, "content-type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        gh_res_error(req, GH_EINVAL,
                     "Send the request body as JSON with the header content-type: "
                     "application/json.");
        return NULL;
    }
    if (!req->body || req->body_len == 0) {
        gh_res_error(req, GH_EINVAL, "The request body is empty; send a JSON object.");
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        gh_res_error(req, GH_EINVAL, "The request body is not valid JSON: %s (line %d, column %d).",
                     jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        gh_res_error(req, GH_EINVAL, "The request body must be a JSON object.");
        return NULL;
    }
    return j;
}

bool gh_api_known_fields(gh_req_t *req, json_t *obj, const char *const *allowed,
                         const char *where)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(*a, key);
        if (!ok) {
            gh_res_error(req, GH_EINVAL, "Unknown field \"%.64s\"%s%s.", key, where ? " in " : "",
                         where ? where : "");
            return false;
        }
    }
    return true;
}

bool gh_api_str(gh_req_t *req, json_t *obj, const char *key, bool required, bool nullable,
                const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            gh_res_error(req, GH_EINVAL, "%s is required.", key);
        return !required;
    }
    if (json_is_null(v) && nullable)
        return true;
    if (!json_is_string(v)) {
        gh_res_error(req, GH_EINVAL, "%s must be a string%s.", key, nullable ? " or null" : "");
        return false;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        gh_res_error(req, GH_EINVAL, "%s must not contain NUL characters.", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool gh_api_bool(gh_req_t *req, json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        gh_res_error(req, GH_EINVAL, "%s is required.", key);
        return false;
    }
    if (!json_is_boolean(v)) {
        gh_res_error(req, GH_EINVAL, "%s must be true or false.", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

json_t *gh_api_opt_str(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

json_t *gh_api_money(int64_t nusd)
{
    char text[GH_MONEY_TEXT_MAX];
    return json_string(gh_money_format_usd(nusd, text));
}

json_t *gh_api_time(int64_t t)
{
    if (t <= 0)
        return json_null();
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

bool gh_api_page(gh_req_t *req, gh_page_t *page)
{
    page->limit = 20;
    page->after_id = gh_req_query(req, "after_id");
    page->before_id = gh_req_query(req, "before_id");
    const char *limit = gh_req_query(req, "limit");
    if (limit) {
        char *end;
        errno = 0;
        long v = strtol(limit, &end, 10);
        if (errno || end == limit || *end || v < 1 || v > 1000) {
            gh_res_error(req, GH_EINVAL, "limit must be a whole number from 1 to 1000.");
            return false;
        }
        page->limit = (int)v;
    }
    if (page->after_id && page->before_id) {
        gh_res_error(req, GH_EINVAL, "Send after_id or before_id, not both.");
        return false;
    }
    const char *cursor = page->after_id ? page->after_id : page->before_id;
    if (cursor && (!*cursor || strlen(cursor) >= GH_ID_MAX)) {
        gh_res_error(req, GH_EINVAL, "%s is not an id from this list.",
                     page->after_id ? "after_id" : "before_id");
        return false;
    }
    return true;
}

bool gh_api_query_bool(gh_req_t *req, const char *name, bool *out)
{
    const char *v = gh_req_query(req, name);
    if (!v)
        return true;
    if (!strcmp(v, "true") || !strcmp(v, "false")) {
        *out = !strcmp(v, "true");
        return true;
    }
    gh_res_error(req, GH_EINVAL, "%s must be true or false.", name);
    return false;
}

void gh_api_list(gh_req_t *req, json_t *data, bool has_more, const char *id_field)
{
    size_t n = json_array_size(data);
    json_t *first = n ? json_object_get(json_array_get(data, 0), id_field) : NULL;
    json_t *last = n ? json_object_get(json_array_get(data, n - 1), id_field) : NULL;
    gh_res_json(req, 200,
                json_pack("{s:o, s:b, s:O, s:O}", "data", data, "has_more", has_more, "first_id",
                          first ? first : json_null(), "last_id", last ? last : json_null()));
}

void gh_api_fail(gh_req_t *req, gh_err_t rc, const char *msg, const char *fallback)
{
    if (rc == GH_EINVAL && msg && !*msg) /* a cursor not in the list */
        gh_res_error(req, rc, "after_id or before_id is not an id from this list.");
    else
        gh_res_error(req, rc, "%s", msg && *msg ? msg : fallback);
}

json_t *gh_api_token_body(gh_req_t *req, const char **token, bool *switch_account)
{
    static const char *const fields[] = {"token", "switch", NULL};
    json_t *body = gh_api_body(req);
    *switch_account = false;
    if (body && (!gh_api_known_fields(req, body, fields, NULL) ||
                 !gh_api_str(req, body, "token", true, false, token) ||
                 (json_object_get(body, "switch") &&
                  !gh_api_bool(req, body, "switch", switch_account)))) {
        json_decref(body);
        return NULL;
    }
    return body;
}

const char *gh_api_signed_in_email(gh_req_t *req, char *out)
{
    gh_session_t session;
    gh_account_t account;
    const char *cookie = gh_req_cookie(req, "gh_session");
    if (!cookie || gh_auth_session(gh_api_ctx(req)->app, cookie, &session, &account))
        return NULL;
    snprintf(out, GH_EMAIL_MAX, "%s", account.email);
    return out;
}

void gh_api_retry_after(gh_req_t *req, int seconds)
{
    char v[16];
    snprintf(v, sizeof(v), "%d", seconds > 0 ? seconds : 1);
    gh_res_header(req, "retry-after", v);
}

void gh_api_end_previous_session(gh_req_t *req)
{
    gh_session_t session;
    gh_account_t account;
    gh_app_t *app = gh_api_ctx(req)->app;
    if (!gh_auth_session(app, gh_req_cookie(req, "gh_session"), &session, &account))
        (void)gh_auth_logout(app, &session);
}

void gh_api_refuse_switch(gh_req_t *req, const char *signed_in, const char *link_email)
{
    char msg[3 * GH_EMAIL_MAX];
    snprintf(msg, sizeof(msg),
             "You are signed in as %s. This link is for %s: to continue as %s, sign out first "
             "or send the link again with \"switch\": true.",
             signed_in, link_email, link_email);
    json_t *j = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}, s:s}", "type", "error", "error", "type",
                          "conflict_error", "message", msg, "signed_in_as", signed_in,
                          "link_email", link_email, "request_id", req->request_id);
    gh_res_json(req, 409, j);
}

void gh_api_session_cookie(gh_req_t *req, const char *secret, int max_age_s)
{
    char cookie[256];
    snprintf(cookie, sizeof(cookie), "gh_session=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s",
             secret, max_age_s, gh_api_ctx(req)->app->cfg->cookie_secure ? "; Secure" : "");
    gh_res_header(req, "set-cookie", cookie);
}
