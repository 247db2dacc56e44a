/* Putting a model request off without blocking its loop thread: the one parking mechanism of
 * the data plane, used both while a rate share is being drawn (cluster rate limits,
 * core/rate_lease.h) and while an organization's money lease is being refilled (cluster money,
 * core/lease.h). A parked request sits on one of its loop's h2o timeout lists; when the list's
 * time is up, it is handled again from the start by the callback given. How often a request
 * may be parked, and on which list, is the caller's decision.
 *
 * Everything runs on the loop thread that owns the request. The parking entry lives in the
 * request's pool, and the pool's end unlinks its timer, so a client that goes away while its
 * request is parked leaves nothing behind. */
#ifndef GH_GATEWAY_PARK_H
#define GH_GATEWAY_PARK_H

#include <h2o.h>

#include "gateway/upstream.h"

/* Handles a parked request again, from the start. */
typedef void (*gh_park_cb)(h2o_req_t *req, gh_api_kind_t api);

/* Parks `req` (speaking `api`) on `timeout`, a list of its own loop's: when the list's time is
 * up, the response headers the first pass added are dropped (they would otherwise be there
 * twice) and `again` is called with the request. */
void gh_park_on(h2o_req_t *req, gh_api_kind_t api, h2o_timeout_t *timeout, gh_park_cb again);

#endif
