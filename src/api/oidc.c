/* OpenID Connect sign-in ("Continue with Google"): being written; until then both routes
 * answer that it is not configured. */
#include "api/api.h"

void gh_api_oidc_start(gh_req_t *req)
{
    gh_res_error(req, GH_ENOTFOUND, "Sign-in with an identity provider is not configured.");
}

void gh_api_oidc_callback(gh_req_t *req)
{
    gh_res_error(req, GH_ENOTFOUND, "Sign-in with an identity provider is not configured.");
}
