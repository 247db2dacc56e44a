#include "http/router.h"

#include <string.h>

/* Matches one pattern against a path; on success fills req's params (when req is not NULL)
 * and returns the number of literal segments (higher is more specific), or -1. */
static int match(const char *pattern, const char *path, gh_req_t *req)
{
    int literals = 0;
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p == '/' && *s == '/') {
        p++;
        s++;
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (plen > 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || slen >= sizeof(req->params[0].value) || np >= GH_REQ_PARAMS ||
                plen - 2 >= sizeof(req->params[0].name))
                return -1;
            if (req) {
                memcpy(req->params[np].name, p + 1, plen - 2);
                req->params[np].name[plen - 2] = '\0';
                memcpy(req->params[np].value, s, slen);
                req->params[np].value[slen] = '\0';
            }
            np++;
        } else {
            if (plen != slen || memcmp(p, s, plen) != 0)
                return -1;
            literals++;
        }
        p += plen;
        s += slen;
    }
    if (*p || *s)
        return -1;
    if (req)
        req->nparams = np;
    return literals;
}

gh_route_result_t gh_router_match(const gh_route_t *routes, size_t n, const char *method,
                                  const char *path, gh_req_t *req, const gh_route_t **found,
                                  char *allow, size_t allow_size)
{
    const gh_route_t *best = NULL;
    int best_score = -1;
    bool path_known = false;
    size_t allow_len = 0;
    if (allow_size)
        allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int score = match(routes[i].pattern, path, NULL);
        if (score < 0)
            continue;
        path_known = true;
        bool same_method = !strcmp(routes[i].method, method) ||
                           (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET"));
        if (same_method && score > best_score) {
            best = &routes[i];
            best_score = score;
        }
        size_t mlen = strlen(routes[i].method);
        if (!strstr(allow, routes[i].method) && allow_len + mlen + 3 < allow_size) {
            if (allow_len) {
                memcpy(allow + allow_len, ", ", 2);
                allow_len += 2;
            }
            memcpy(allow + allow_len, routes[i].method, mlen + 1);
            allow_len += mlen;
        }
    }
    if (best) {
        match(best->pattern, path, req);
        *found = best;
        return GH_ROUTE_FOUND;
    }
    return path_known ? GH_ROUTE_NO_METHOD : GH_ROUTE_NO_PATH;
}
