/* The one place where internal error codes become HTTP statuses and Anthropic error types. */
#include <stdarg.h>
#include <stdio.h>

#include "http/request.h"

int gh_http_status_of(gh_err_t err)
{
    switch (err) {
    case GH_OK: return 200;
    case GH_EINVAL: return 400;
    case GH_EAUTH: return 401;
    case GH_EBILLING: return 402;
    case GH_EPERM: return 403;
    case GH_ENOTFOUND: return 404;
    case GH_ECONFLICT: return 409;
    case GH_ETOOBIG: return 413;
    case GH_ERATE: return 429;
    case GH_EEXPIRED: return 400;
    case GH_ETIMEOUT: return 504;
    case GH_EUNAVAIL: return 529;
    case GH_ENOMEM:
    case GH_EIO:
    case GH_ESTORE:
    case GH_EINTERNAL:
    case GH_ERR_COUNT: break;
    }
    return 500;
}

const char *gh_http_error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 409: return "conflict_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return "api_error";
    }
}

void gh_res_error_status(gh_req_t *req, int status, const char *type, const char *message)
{
    json_t *j = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error", "type", type,
                          "message", message, "request_id", req->request_id);
    gh_res_json(req, status, j);
}

void gh_res_error(gh_req_t *req, gh_err_t err, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int status = gh_http_status_of(err);
    gh_res_error_status(req, status, gh_http_error_type(status), msg);
}
