/* Routes: a method, a path pattern whose segments are literals or `{name}` parameters, and
 * what the API layer attaches (handler and the permission it requires). Matching is by whole
 * segments; literals win over parameters when two routes could match. */
#ifndef GH_HTTP_ROUTER_H
#define GH_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"

typedef struct gh_route {
    const char *method;
    const char *pattern; /* "/v1/organizations/workspaces/{workspace_id}" */
    void (*fn)(gh_req_t *req);
    int access; /* the API layer's permission requirement */
} gh_route_t;

typedef enum {
    GH_ROUTE_FOUND,
    GH_ROUTE_NO_PATH,   /* no pattern matches the path: 404 */
    GH_ROUTE_NO_METHOD, /* the path exists with other methods: 405 */
} gh_route_result_t;

/* Finds the route for `method` and `path` among `n` routes. On GH_ROUTE_FOUND sets `*found`
 * and fills req->params (parameter values longer than 127 bytes do not match). On
 * GH_ROUTE_NO_METHOD writes the allowed methods, comma-separated, into `allow`. */
gh_route_result_t gh_router_match(const gh_route_t *routes, size_t n, const char *method,
                                  const char *path, gh_req_t *req, const gh_route_t **found,
                                  char *allow, size_t allow_size);

#endif
