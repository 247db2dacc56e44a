/* The data plane's access log: one line per model API request, written when h2o disposes of
 * the request, as text or JSON (lib/log.h). A line holds the request id, the method, the path
 * without its query string, the status, the time taken and the client's address; never a
 * header or the query string, since either can carry a key. Client-supplied text is cut to
 * GH_ACCESSLOG_METHOD_MAX and GH_ACCESSLOG_PATH_MAX bytes and made safe to show.
 *
 * The functions are pure apart from the log write: which lines to write (the loop's rate cap
 * on refused requests, logcap.h) and the count of requests in flight stay in gateway.c. */
#ifndef GH_GATEWAY_ACCESSLOG_H
#define GH_GATEWAY_ACCESSLOG_H

#include <stddef.h>
#include <time.h>

#include <h2o.h>

#include "lib/config.h"

/* At most this many bytes of a client's path and method are echoed (a 404) or logged. */
#define GH_ACCESSLOG_PATH_MAX 200
#define GH_ACCESSLOG_METHOD_MAX 32
/* The longest request id a line can hold. */
#define GH_ACCESSLOG_ID_MAX 64

/* The request's path as the client sent it, without the query string, which can carry
 * credentials and is never echoed or logged. */
h2o_iovec_t gh_accesslog_path(const h2o_req_t *req);

/* The client's address, as text into `dst` ("-" when unknown): the peer's, or for a peer in
 * cfg->trusted_proxies the one its X-Forwarded-For (else Forwarded) header names
 * (lib/proxy.h). */
void gh_accesslog_peer_ip(const gh_config_t *cfg, h2o_req_t *req, char *dst, size_t dst_size);

/* Writes the access line of `req`, whose id is `id` (at most GH_ACCESSLOG_ID_MAX bytes) and
 * which began at `started` (CLOCK_MONOTONIC), from client address `ip`. */
void gh_accesslog_write(h2o_req_t *req, const char *id, const struct timespec *started,
                        const char *ip);

#endif
