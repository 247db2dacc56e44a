/* The data plane: the model API listener on libh2o, one event loop per thread.
 *
 * Each loop thread owns its own h2o context and its own listening socket bound to the same
 * address with SO_REUSEPORT, so the kernel spreads connections without a shared accept lock.
 * Nothing on these threads blocks: no SQL, no locks held across I/O; the only system call
 * beyond the sockets is the usage journal's append. It serves the model API (/v1/messages,
 * /v1/messages/count_tokens, /v1/models, /v1/chat/completions) and /healthz. */
#ifndef GH_GATEWAY_GATEWAY_H
#define GH_GATEWAY_GATEWAY_H

#include <stddef.h>

#include "core/limits.h"
#include "core/state.h"
#include "core/usage.h"
#include "lib/config.h"
#include "lib/err.h"

typedef struct gh_gateway gh_gateway_t;

/* What the data plane reads and feeds, owned by main and outliving the gateway. */
typedef struct gh_gateway_env {
    gh_state_t *state; /* API keys, read on every request */
    gh_usage_t *usage; /* where each request's usage event goes */
    gh_limits_t *limits; /* admission; NULL: none. Every model request is admitted through
                          * it when limits_enforce, and only counted in it otherwise */
    bool limits_enforce;
    const struct gh_cluster *cluster; /* the node's id and connection, for /healthz; may
                                       * be NULL */
} gh_gateway_env_t;

/* Binds cfg->api_listen (port 0 picks a free port, shared by every loop) and starts
 * cfg->api_threads loops (0: one per online core). On failure writes a message into `err`
 * and returns an error; nothing is left running. The gateway keeps a pointer to `cfg`,
 * which must outlive it. */
gh_err_t gh_gateway_start(gh_gateway_t **out, const gh_config_t *cfg,
                          const gh_gateway_env_t *env, char *err, size_t err_size);

/* The TCP port actually bound (useful when the configured port was 0). */
int gh_gateway_port(const gh_gateway_t *gw);

/* Tells every loop to stop accepting and to drain its requests within
 * cfg->shutdown_grace_ms, and returns at once (the loops drain in their own threads), so both
 * planes drain at the same time. Safe with NULL and more than once. */
void gh_gateway_quiesce(gh_gateway_t *gw);

/* Stops accepting (when gh_gateway_quiesce did not), lets in-flight requests finish for up to
 * cfg->shutdown_grace_ms, joins the loop threads and frees everything. Safe to call with
 * NULL. */
void gh_gateway_stop(gh_gateway_t *gw);

#endif
