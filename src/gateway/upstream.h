/* What the relay needs from an upstream, whatever it is: a real model server reached over
 * HTTP (src/gateway/relay.c) or the built-in mock (src/gateway/mock.c). An upstream produces
 * a response head and then body bytes over time, on the loop thread that started it, and
 * tells the relay through these callbacks. Exactly one of on_error or a final on_body ends
 * every upstream; after it, no callback comes again. */
#ifndef GH_GATEWAY_UPSTREAM_H
#define GH_GATEWAY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "lib/metrics.h"

typedef struct gh_upstream_cb {
    /* The response status and content type (e.g. "text/event-stream"); once, first. */
    void (*on_head)(void *ctx, int status, const char *content_type, size_t content_type_len);
    /* Body bytes (may be empty with final set). The data is valid only during the call. */
    void (*on_body)(void *ctx, const char *data, size_t len, bool final);
    /* The upstream failed before or during the body: GH_EIO (refused, reset, garbage),
     * GH_ETIMEOUT (no answer in time) or GH_EUNAVAIL (overloaded). `msg` says what, for a
     * person; it never holds a key. */
    void (*on_error)(void *ctx, gh_err_t err, const char *msg);
} gh_upstream_cb_t;

/* Which API a request speaks; the relay never translates between them. */
typedef enum { GH_API_MESSAGES, GH_API_COUNT_TOKENS, GH_API_CHAT } gh_api_kind_t;

/* The route /metrics counts a request of `api` under. */
static inline gh_metric_route_t gh_api_metric_route(gh_api_kind_t api)
{
    static const gh_metric_route_t routes[] = {[GH_API_MESSAGES] = GH_ROUTE_MESSAGES,
                                               [GH_API_COUNT_TOKENS] = GH_ROUTE_COUNT_TOKENS,
                                               [GH_API_CHAT] = GH_ROUTE_CHAT};
    return routes[api];
}

#endif
