/* Choosing a deployment for each attempt of a request, and keeping each deployment's health:
 * the part of the relay that makes several upstream servers of one model behave as one.
 *
 * Balancing. Weighted power of two choices on outstanding requests: two distinct deployments
 * are drawn among the healthy ones not yet tried by this request, the first by smooth
 * weighted round robin (nginx's: deterministic, exactly proportional to the weights over a
 * cycle), the second at random in proportion to the weights; the one with fewer requests
 * in flight per unit of weight wins, the first on a tie. Without load every count is 0 and
 * the first always wins, so traffic follows the weights exactly; under load a deployment that
 * answers slowly accumulates outstanding requests and loses the comparisons, so it gets less
 * traffic without any latency measurement or tuning. The counts of requests in flight are
 * shared by every loop (relaxed atomics); the round robin's state is per loop (a cursor).
 *
 * Health (passive). `eject_after` consecutive failures (connect failure, reset or garbage,
 * 5xx, 503/529, connect or first-byte timeout) eject a deployment for a backoff that starts
 * at `eject_ms` and doubles at each ejection that follows without a success in between, up
 * to 5 minutes. When the backoff has passed, exactly one request is let through as a trial:
 * success puts the deployment back in rotation (and resets the backoff), failure ejects it
 * again for the doubled backoff. A request that ends for reasons that say nothing about the
 * deployment (the client left, a 4xx, a 429) ends a trial without a verdict. Active checks
 * (gh_balancer_probe_result) feed the same state.
 *
 * Threads. One gh_balancer_t per model, shared by every loop: picking and ending take no
 * lock; a failure, an ejection or a trial's verdict takes the deployment's mutex. */
#ifndef GH_GATEWAY_BALANCER_H
#define GH_GATEWAY_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/metrics.h"

/* The longest ejection. */
#define GH_BALANCER_EJECT_MAX_MS 300000

typedef struct gh_balancer gh_balancer_t;

/* One loop's round-robin state for one model; zeroed, then seeded with a distinct `rng`. */
typedef struct gh_balancer_cursor {
    int64_t current[GH_DEPLOYMENTS_MAX];
    uint64_t rng;
} gh_balancer_cursor_t;

/* How an attempt ended, for health: a success, a failure of `kind`, or neither. */
typedef enum {
    GH_BALANCER_OK,
    GH_BALANCER_NEUTRAL, /* client gone, client's 4xx, cancelled: no verdict */
    GH_BALANCER_FAILED,
} gh_balancer_verdict_t;

/* A balancer for model `m`, whose index in cfg->models is `model_index` (for metrics). NULL
 * when out of memory. `m` must outlive it. */
gh_balancer_t *gh_balancer_new(const gh_model_cfg_t *m, int model_index);
void gh_balancer_free(gh_balancer_t *b);

size_t gh_balancer_count(const gh_balancer_t *b);

/* Picks a deployment for an attempt, among those whose bit is clear in `tried`, and counts it
 * in flight. A deployment whose ejection has run out is picked first, as its trial (one at a
 * time; `*trial` is then set, and must be handed back to gh_balancer_end). Returns its index, or -1 when every untried deployment is ejected (or none is left):
 * the caller may then fall back to another model, or call gh_balancer_pick_any. `retry` says
 * whether this is a request's later attempt (for metrics). */
int gh_balancer_pick(gh_balancer_t *b, gh_balancer_cursor_t *cur, uint32_t tried, bool retry,
                     int64_t now_ms, bool *trial);

/* When every untried deployment is ejected: the least recently failed of them, counted in
 * flight, rather than refusing outright. -1 when none is left untried. */
int gh_balancer_pick_any(gh_balancer_t *b, uint32_t tried, bool retry);

/* Whether some deployment would be picked now (is up, or due a trial). */
bool gh_balancer_available(gh_balancer_t *b, int64_t now_ms);

/* Ends an attempt that gh_balancer_pick(_any) counted: its verdict for health, its failure
 * kind for metrics (GH_DEPLOY_ERR_COUNT when it did not fail) and its duration. */
void gh_balancer_end(gh_balancer_t *b, int dep, bool trial, gh_balancer_verdict_t verdict,
                     gh_metric_deploy_err_t kind, int64_t us, int64_t now_ms);

/* An active health check's result for a deployment: a failure counts like a failed request,
 * a success re-admits an ejected deployment at once. */
void gh_balancer_probe_result(gh_balancer_t *b, int dep, bool ok, int64_t now_ms);

/* The deployment's state now (for tests; the staff page reads lib/metrics). */
gh_deploy_health_t gh_balancer_health(gh_balancer_t *b, int dep, int64_t now_ms);

#endif
