/* Authentication and header checks of a model request (see reqauth.h). */
#include "gateway/reqauth.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "lib/keyfmt.h"

#define REQAUTH_VERSION_LEN 10 /* YYYY-MM-DD */

h2o_iovec_t gh_reqauth_header(const h2o_req_t *req, const char *name, size_t name_len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, name_len, -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return req->headers.entries[i].value;
}

h2o_iovec_t gh_reqauth_trim(h2o_iovec_t v)
{
    while (v.len > 0 && (v.base[0] == ' ' || v.base[0] == '\t'))
        v.base++, v.len--;
    while (v.len > 0 && (v.base[v.len - 1] == ' ' || v.base[v.len - 1] == '\t'))
        v.len--;
    return v;
}

/* The key the client presented: x-api-key, else authorization: Bearer (what the current
 * Anthropic and OpenAI SDKs send). {NULL, 0} when there is none. */
static h2o_iovec_t presented_key(const h2o_req_t *req)
{
    h2o_iovec_t v = gh_reqauth_trim(gh_reqauth_header(req, H2O_STRLIT("x-api-key")));
    if (v.len != 0)
        return v;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    v = gh_reqauth_trim(req->headers.entries[i].value);
    if (v.len > 7 && h2o_lcstris(v.base, 7, H2O_STRLIT("bearer ")))
        return gh_reqauth_trim(h2o_iovec_init(v.base + 7, v.len - 7));
    return h2o_iovec_init(NULL, 0);
}

/* Finds the API key of the request in the in-memory state and checks that it may be used.
 * Once the key is known, its organization and workspace go into the response headers. On
 * failure returns GH_EAUTH with a message for the client in `msg`; the key itself is never
 * echoed or logged, and the copy made to hash it is wiped. */
gh_err_t gh_reqauth_key(gh_state_t *state, h2o_req_t *req, gh_key_entry_t *entry, char *msg,
                        size_t msg_size)
{
    static const char admin_prefix[] = GH_KEY_ADMIN_PREFIX;
    unsigned char hash[GH_KEY_HASH_BYTES];
    char key[GH_KEY_MAX];
    gh_err_t rc = GH_EAUTH;
    h2o_iovec_t k = presented_key(req);

    if (k.len == 0) {
        snprintf(msg, msg_size, "x-api-key header is required (or authorization: Bearer with an "
                                "API key).");
        return GH_EAUTH;
    }
    if (k.len >= sizeof(admin_prefix) - 1 &&
        memcmp(k.base, admin_prefix, sizeof(admin_prefix) - 1) == 0) {
        snprintf(msg, msg_size, "Admin keys (%s...) work only on the Organization API "
                                "(/v1/organizations/...). Use an API key (%s...) with the "
                                "model API.",
                 GH_KEY_ADMIN_PREFIX, GH_KEY_API_PREFIX);
        return GH_EAUTH;
    }
    if (k.len >= sizeof(key) || memchr(k.base, '\0', k.len) != NULL) {
        snprintf(msg, msg_size, "invalid x-api-key: the key is malformed (wrong length).");
        return GH_EAUTH;
    }
    memcpy(key, k.base, k.len);
    key[k.len] = '\0';
    gh_key_check_t check = gh_key_check(key, GH_KEY_API_PREFIX);
    if (check != GH_KEY_OK) {
        snprintf(msg, msg_size, "invalid x-api-key: the key is malformed (%s).",
                 gh_key_check_str(check));
        goto out_wipe;
    }
    gh_sha256(hash, key, k.len);
    if (state == NULL || gh_state_key_find(state, hash, entry) != GH_OK) {
        snprintf(msg, msg_size, "invalid x-api-key: no such key.");
        goto out_wipe;
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("anthropic-organization-id"),
                          0, NULL, h2o_strdup(&req->pool, entry->org_id, SIZE_MAX).base,
                          strlen(entry->org_id));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("anthropic-workspace-id"), 0,
                          NULL, h2o_strdup(&req->pool, entry->workspace_id, SIZE_MAX).base,
                          strlen(entry->workspace_id));
    if (strcmp(entry->status, "active") == 0) {
        rc = GH_OK;
    } else if (strcmp(entry->status, "inactive") == 0) {
        snprintf(msg, msg_size, "This API key is inactive. An admin of its organization can "
                                "activate it again in the console.");
    } else {
        snprintf(msg, msg_size, "This API key is archived, or its workspace is, and can no "
                                "longer be used.");
    }

out_wipe:
    sodium_memzero(key, sizeof(key));
    return rc;
}

/* anthropic-version: any well-formed date (YYYY-MM-DD), passed to the upstream as it is. */
bool gh_reqauth_version_ok(h2o_iovec_t v)
{
    if (v.len != REQAUTH_VERSION_LEN)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? v.base[i] != '-' : (v.base[i] < '0' || v.base[i] > '9'))
            return false;
    }
    return true;
}

/* anthropic-beta: a comma-separated list of feature names. */
bool gh_reqauth_beta_ok(h2o_iovec_t v)
{
    if (v.len > GH_REQAUTH_BETA_MAX)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ',' || c == ' '))
            return false;
    }
    return true;
}

