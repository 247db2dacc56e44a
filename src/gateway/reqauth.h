/* Who is calling, and with which headers: the checks a model request passes before its body
 * is read. The key comes from x-api-key or authorization: Bearer, is checked for its format
 * and checksum, hashed once with SHA-256 and looked up in the in-memory state (core/state.h)
 * under its shared lock; nothing here touches the store or blocks. anthropic-version and
 * anthropic-beta are checked for their shape only, and passed upstream as they are.
 *
 * Every function runs on the loop thread that owns `req`; what it adds to the request is
 * allocated in the request's pool. A key is never echoed or logged. */
#ifndef GH_GATEWAY_REQAUTH_H
#define GH_GATEWAY_REQAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <h2o.h>

#include "core/state.h"
#include "lib/err.h"

/* The first value of request header `name` (lower case), as sent; {NULL, 0} when absent. */
h2o_iovec_t gh_reqauth_header(const h2o_req_t *req, const char *name, size_t name_len);

/* `v` without leading and trailing spaces and tabs. */
h2o_iovec_t gh_reqauth_trim(h2o_iovec_t v);

/* Finds the API key of the request in `state` (NULL: no key is known) and checks that it may
 * be used. Once the key is known, its organization and workspace go into the response headers
 * (anthropic-organization-id, anthropic-workspace-id), whether it may be used or not. Returns
 * GH_OK with the key in `entry`, or GH_EAUTH with a message for the client in `msg`; the key
 * itself is never echoed or logged, and the copy made to hash it is wiped. */
gh_err_t gh_reqauth_key(gh_state_t *state, h2o_req_t *req, gh_key_entry_t *entry, char *msg,
                        size_t msg_size);

/* anthropic-version: true for any well-formed date (YYYY-MM-DD). */
bool gh_reqauth_version_ok(h2o_iovec_t v);

/* anthropic-beta: true for a comma-separated list of feature names of at most
 * GH_REQAUTH_BETA_MAX bytes. */
#define GH_REQAUTH_BETA_MAX 1024
bool gh_reqauth_beta_ok(h2o_iovec_t v);

#endif
