/* The data plane: the model API listener on libh2o, one event loop per thread.
 *
 * Each loop thread owns its own h2o context and its own listening socket bound to the same
 * address with SO_REUSEPORT, so the kernel spreads connections without a shared accept lock.
 * Nothing on these threads blocks: no SQL, no disk, no locks held across I/O. Until the model
 * API lands, it answers /healthz and an Anthropic-shaped 404 for everything else. */
#ifndef GH_GATEWAY_GATEWAY_H
#define GH_GATEWAY_GATEWAY_H

#include <stddef.h>

#include "lib/config.h"
#include "lib/err.h"

typedef struct gh_gateway gh_gateway_t;

/* Binds cfg->api_listen (port 0 picks a free port, shared by every loop) and starts
 * cfg->api_threads loops (0: one per online core). On failure writes a message into `err`
 * and returns an error; nothing is left running. The gateway keeps a pointer to `cfg`,
 * which must outlive it. */
gh_err_t gh_gateway_start(gh_gateway_t **out, const gh_config_t *cfg, char *err,
                          size_t err_size);

/* The TCP port actually bound (useful when the configured port was 0). */
int gh_gateway_port(const gh_gateway_t *gw);

/* Stops accepting, lets in-flight requests finish for up to cfg->shutdown_grace_ms, joins
 * the loop threads and frees everything. Safe to call with NULL. */
void gh_gateway_stop(gh_gateway_t *gw);

#endif
