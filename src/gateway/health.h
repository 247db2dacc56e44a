/* Active health checks of deployments: for every model with a health_path, one thread sends
 * GET health_path to each of its deployments every health_interval_ms, off the request path
 * (blocking sockets on its own thread, never on a loop), and hands each result to the
 * model's balancer (gh_balancer_probe_result): a 2xx answer within the model's
 * connect_timeout_ms re-admits an ejected deployment at once; anything else counts as one
 * failure, so eject_after failed probes eject it like failed requests would. */
#ifndef GH_GATEWAY_HEALTH_H
#define GH_GATEWAY_HEALTH_H

#include "gateway/relay.h"
#include "lib/config.h"
#include "lib/err.h"

typedef struct gh_health gh_health_t;

/* Starts the checker when some model has a health_path; otherwise sets *out to NULL and
 * starts nothing. `cfg` and `rm` must outlive it. */
gh_err_t gh_health_start(gh_health_t **out, const gh_config_t *cfg, const gh_relay_models_t *rm);

/* Stops the thread (waking it at once) and frees it. Safe with NULL. */
void gh_health_stop(gh_health_t *h);

/* One probe, for tests: GET `path` at `info`, true on a 2xx status within `timeout_ms`. */
bool gh_health_probe(const gh_relay_deploy_info_t *info, const char *path, int timeout_ms);

#endif
