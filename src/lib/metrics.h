/* Process metrics for /metrics (Prometheus text format). The data plane's loop threads update
 * them with relaxed atomic adds (no locks, no allocation), each loop in a shard of its own;
 * the control plane renders their sums.
 * Labels are small fixed sets (route, model index, status), so every series is a slot in a
 * static array. */
#ifndef GH_LIB_METRICS_H
#define GH_LIB_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"

typedef enum {
    GH_ROUTE_MESSAGES,
    GH_ROUTE_COUNT_TOKENS,
    GH_ROUTE_CHAT,
    GH_ROUTE_MODELS,
    GH_ROUTE_OTHER,
    GH_ROUTE_COUNT
} gh_metric_route_t;

typedef enum {
    GH_UPSTREAM_ERR_CONNECT,
    GH_UPSTREAM_ERR_TIMEOUT,
    GH_UPSTREAM_ERR_PROTOCOL,
    GH_UPSTREAM_ERR_STATUS, /* the upstream answered 5xx */
    GH_UPSTREAM_ERR_COUNT
} gh_metric_upstream_err_t;

/* Gives the calling thread a shard of the figures of its own, for as long as the process
 * runs (a loop thread calls it first; up to 32 threads get one, the rest share one). */
void gh_metrics_thread_own(void);

/* Counts one finished model API request: its route, the model's index in cfg->models (-1:
 * none or unknown), the HTTP status sent, its total duration and the part of it spent in
 * Gatehouse (total minus the time waiting on the upstream). */
void gh_metrics_request(gh_metric_route_t route, int model, int status, int64_t total_us,
                        int64_t overhead_us);
void gh_metrics_upstream_error(int model, gh_metric_upstream_err_t kind);
void gh_metrics_streams_add(int delta); /* open streaming responses */
void gh_metrics_console_active_add(int delta); /* control-plane requests in progress */
/* Upstream connection gauges of a model, changed by deltas: open (idle or in use), idle, and
 * requests waiting for a connection (the model's max_connections reached). */
void gh_metrics_upstream_conns(int model, int open_delta, int idle_delta, int waiting_delta);

/* ---- Deployments (several upstream servers of one model, gateway/balancer.h) ---- */

typedef enum {
    GH_DEPLOY_ERR_CONNECT,     /* refused, unreachable */
    GH_DEPLOY_ERR_RESET,       /* reset, garbage, broken off */
    GH_DEPLOY_ERR_STATUS,      /* answered 5xx (not 503) */
    GH_DEPLOY_ERR_OVERLOADED,  /* answered 503 or 529 */
    GH_DEPLOY_ERR_TIMEOUT,     /* connect or first-byte timeout */
    GH_DEPLOY_ERR_RATE_LIMITED, /* answered 429 */
    GH_DEPLOY_ERR_COUNT
} gh_metric_deploy_err_t;

typedef enum { GH_DEPLOY_UP, GH_DEPLOY_EJECTED, GH_DEPLOY_TRIAL } gh_deploy_health_t;

/* One deployment's figures as /metrics and the staff page show them. */
typedef struct gh_metrics_deploy {
    uint64_t requests, retries, ejections, errors[GH_DEPLOY_ERR_COUNT];
    int64_t in_flight;
    gh_deploy_health_t health;
} gh_metrics_deploy_t;

/* An attempt started on deployment `dep` of `model` (`retry`: not the request's first). */
void gh_metrics_deploy_start(int model, int dep, bool retry);
/* An attempt ended after `us`; `err` is GH_DEPLOY_ERR_COUNT when it did not fail. */
void gh_metrics_deploy_end(int model, int dep, gh_metric_deploy_err_t err, int64_t us);
/* The deployment's health changed. */
void gh_metrics_deploy_health(int model, int dep, gh_deploy_health_t h);
/* The deployment was taken out of rotation. */
void gh_metrics_deploy_ejection(int model, int dep);
/* A snapshot of the deployment's figures (zeros for indexes out of range). */
void gh_metrics_deploy_get(int model, int dep, gh_metrics_deploy_t *out);

/* Writes every metric in Prometheus text format into a malloc'd buffer (`*len` its length);
 * the caller frees it. `extra` (may be NULL) is appended as is (the usage writer's gauges). */
char *gh_metrics_render(const gh_config_t *cfg, const char *extra, size_t *len);

#endif
