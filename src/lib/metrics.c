#include "lib/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODELS (GH_MODELS_MAX + 1) /* the last slot: no model */

static const int statuses[] = {200, 400, 401, 403, 404, 405, 413, 429, 499, 500, 502, 504, 529};
#define STATUSES (sizeof(statuses) / sizeof(statuses[0]) + 1) /* + "other" */

/* Histogram bounds in microseconds. */
static const int64_t bounds_us[] = {50,    100,    250,    500,     1000,    2500,
                                    5000,  10000,  25000,  50000,   100000,  250000,
                                    500000, 1000000, 2500000, 5000000, 10000000, 30000000};
#define BUCKETS (sizeof(bounds_us) / sizeof(bounds_us[0]) + 1) /* + +Inf */

typedef struct {
    atomic_uint_fast64_t bucket[BUCKETS];
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
} histogram_t;

typedef struct {
    atomic_uint_fast64_t requests, retries, ejections, errors[GH_DEPLOY_ERR_COUNT];
    atomic_int_fast64_t in_flight;
    histogram_t latency;
} deploy_t;

/* Every figure a thread adds to. A loop thread takes a shard of its own (gh_metrics_thread_
 * own): at tens of thousands of requests a second, two loops adding to the same counters
 * would pass their cache lines back and forth between cores a dozen times a request. Other
 * threads, and loops once the shards are all taken, share shard 0. The adds stay atomic, so
 * a shared shard is right too, and /metrics reads every shard while they run. A gauge is the
 * sum of its deltas over the shards. */
typedef struct {
    atomic_uint_fast64_t requests[GH_ROUTE_COUNT][MODELS][STATUSES];
    histogram_t total_hist[GH_ROUTE_COUNT], overhead_hist[GH_ROUTE_COUNT];
    atomic_uint_fast64_t upstream_errors[MODELS][GH_UPSTREAM_ERR_COUNT];
    atomic_int_fast64_t open_streams;
    atomic_int_fast64_t console_active;
    atomic_int_fast64_t upstream_conns[MODELS][3]; /* open, idle, waiting */
    deploy_t deploys[GH_MODELS_MAX][GH_DEPLOYMENTS_MAX];
} shard_t;

/* ~170 KiB each, in zero pages until a thread adds to them. */
#define SHARDS 33
static shard_t shards[SHARDS];
static atomic_int shards_taken = 1; /* shard 0: everyone's */
static _Thread_local shard_t *mine;

/* A deployment's health is a state, not a sum: one place. */
static atomic_int health[GH_MODELS_MAX][GH_DEPLOYMENTS_MAX];

static shard_t *my_shard(void)
{
    return mine ? mine : &shards[0];
}

void gh_metrics_thread_own(void)
{
    if (mine)
        return;
    int i = atomic_fetch_add_explicit(&shards_taken, 1, memory_order_acq_rel);
    mine = i < SHARDS ? &shards[i] : &shards[0];
}

/* The shards in use: [0, n). */
static int shards_used(void)
{
    int n = atomic_load_explicit(&shards_taken, memory_order_acquire);
    return n < SHARDS ? n : SHARDS;
}

static uint64_t sum_u(const atomic_uint_fast64_t *first_shard_field)
{
    /* The same field in every shard: shards are laid out one after the other. */
    const char *p = (const char *)first_shard_field;
    uint64_t v = 0;
    for (int i = 0, n = shards_used(); i < n; i++)
        v += atomic_load_explicit(
            (const atomic_uint_fast64_t *)(const void *)(p + (size_t)i * sizeof(shard_t)),
            memory_order_relaxed);
    return v;
}

static int64_t sum_i(const atomic_int_fast64_t *first_shard_field)
{
    const char *p = (const char *)first_shard_field;
    int64_t v = 0;
    for (int i = 0, n = shards_used(); i < n; i++)
        v += atomic_load_explicit(
            (const atomic_int_fast64_t *)(const void *)(p + (size_t)i * sizeof(shard_t)),
            memory_order_relaxed);
    return v;
}

static const char *const deploy_err_names[] = {"connect", "reset", "status", "overloaded",
                                               "timeout", "rate_limited"};
static const char *const health_names[] = {"up", "ejected", "trial"};

static const char *const route_names[] = {"messages", "count_tokens", "chat_completions",
                                          "models", "other"};
static const char *const upstream_err_names[] = {"connect", "timeout", "protocol", "status"};

static size_t model_slot(int model)
{
    return model < 0 || model >= GH_MODELS_MAX ? GH_MODELS_MAX : (size_t)model;
}

static void observe(histogram_t *h, int64_t us)
{
    if (us < 0)
        us = 0;
    size_t b = 0;
    while (b < BUCKETS - 1 && us > bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)us, memory_order_relaxed);
}

void gh_metrics_request(gh_metric_route_t route, int model, int status, int64_t total_us,
                        int64_t overhead_us)
{
    if ((unsigned)route >= GH_ROUTE_COUNT)
        route = GH_ROUTE_OTHER;
    size_t s = STATUSES - 1;
    for (size_t i = 0; i < STATUSES - 1; i++)
        if (statuses[i] == status)
            s = i;
    shard_t *sh = my_shard();
    atomic_fetch_add_explicit(&sh->requests[route][model_slot(model)][s], 1,
                              memory_order_relaxed);
    observe(&sh->total_hist[route], total_us);
    observe(&sh->overhead_hist[route], overhead_us);
}

void gh_metrics_upstream_error(int model, gh_metric_upstream_err_t kind)
{
    if ((unsigned)kind < GH_UPSTREAM_ERR_COUNT)
        atomic_fetch_add_explicit(&my_shard()->upstream_errors[model_slot(model)][kind], 1,
                                  memory_order_relaxed);
}

void gh_metrics_streams_add(int delta)
{
    atomic_fetch_add_explicit(&my_shard()->open_streams, delta, memory_order_relaxed);
}

void gh_metrics_console_active_add(int delta)
{
    atomic_fetch_add_explicit(&my_shard()->console_active, delta, memory_order_relaxed);
}

void gh_metrics_upstream_conns(int model, int open_delta, int idle_delta, int waiting_delta)
{
    atomic_int_fast64_t *g = my_shard()->upstream_conns[model_slot(model)];
    if (open_delta)
        atomic_fetch_add_explicit(&g[0], open_delta, memory_order_relaxed);
    if (idle_delta)
        atomic_fetch_add_explicit(&g[1], idle_delta, memory_order_relaxed);
    if (waiting_delta)
        atomic_fetch_add_explicit(&g[2], waiting_delta, memory_order_relaxed);
}

static bool deploy_known(int model, int dep)
{
    return model >= 0 && model < GH_MODELS_MAX && dep >= 0 && dep < GH_DEPLOYMENTS_MAX;
}

void gh_metrics_deploy_start(int model, int dep, bool retry)
{
    if (!deploy_known(model, dep))
        return;
    deploy_t *d = &my_shard()->deploys[model][dep];
    atomic_fetch_add_explicit(&d->requests, 1, memory_order_relaxed);
    if (retry)
        atomic_fetch_add_explicit(&d->retries, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->in_flight, 1, memory_order_relaxed);
}

void gh_metrics_deploy_end(int model, int dep, gh_metric_deploy_err_t err, int64_t us)
{
    if (!deploy_known(model, dep))
        return;
    deploy_t *d = &my_shard()->deploys[model][dep];
    if ((unsigned)err < GH_DEPLOY_ERR_COUNT)
        atomic_fetch_add_explicit(&d->errors[err], 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&d->in_flight, 1, memory_order_relaxed);
    observe(&d->latency, us);
}

void gh_metrics_deploy_health(int model, int dep, gh_deploy_health_t h)
{
    if (deploy_known(model, dep))
        atomic_store_explicit(&health[model][dep], (int)h, memory_order_relaxed);
}

void gh_metrics_deploy_ejection(int model, int dep)
{
    if (deploy_known(model, dep))
        atomic_fetch_add_explicit(&my_shard()->deploys[model][dep].ejections, 1,
                                  memory_order_relaxed);
}

void gh_metrics_deploy_get(int model, int dep, gh_metrics_deploy_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!deploy_known(model, dep))
        return;
    const deploy_t *d = &shards[0].deploys[model][dep];
    out->requests = sum_u(&d->requests);
    out->retries = sum_u(&d->retries);
    out->ejections = sum_u(&d->ejections);
    for (size_t k = 0; k < GH_DEPLOY_ERR_COUNT; k++)
        out->errors[k] = sum_u(&d->errors[k]);
    out->in_flight = sum_i(&d->in_flight);
    out->health =
        (gh_deploy_health_t)atomic_load_explicit(&health[model][dep], memory_order_relaxed);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_t *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->failed = 1;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
}

static const char *model_name(const gh_config_t *cfg, size_t slot)
{
    return slot < (size_t)cfg->nmodels ? cfg->models[slot].name : "";
}

/* One histogram, summed over the shards (`h` in shard 0); `labels` is the label list without
 * braces, like route="messages". */
static void put_hist(out_t *o, const char *name, const char *labels, const histogram_t *h)
{
    uint64_t cum = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
        cum += sum_u(&h->bucket[b]);
        if (b < BUCKETS - 1)
            put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
                (double)bounds_us[b] / 1e6, (unsigned long long)cum);
        else
            put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    }
    put(o, "%s_sum{%s} %.6f\n", name, labels, (double)sum_u(&h->sum_us) / 1e6);
    put(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)sum_u(&h->count));
}

static void put_route_hist(out_t *o, const char *name, size_t r, const histogram_t *h)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "route=\"%s\"", route_names[r]);
    put_hist(o, name, labels, h);
}

char *gh_metrics_render(const gh_config_t *cfg, const char *extra, size_t *len)
{
    const shard_t *s0 = &shards[0]; /* each figure's place in shard 0 names it in every shard */
    out_t o = {malloc(16384), 0, 16384, 0};
    if (!o.buf)
        return NULL;
    o.buf[0] = '\0';
    put(&o, "# HELP gatehouse_api_requests_total Model API requests by route, model and status.\n"
            "# TYPE gatehouse_api_requests_total counter\n");
    for (size_t r = 0; r < GH_ROUTE_COUNT; r++)
        for (size_t m = 0; m < MODELS; m++)
            for (size_t s = 0; s < STATUSES; s++) {
                uint64_t v = sum_u(&s0->requests[r][m][s]);
                if (!v)
                    continue;
                char status[8];
                if (s < STATUSES - 1)
                    snprintf(status, sizeof(status), "%d", statuses[s]);
                else
                    snprintf(status, sizeof(status), "other");
                put(&o, "gatehouse_api_requests_total{route=\"%s\",model=\"%s\",status=\"%s\"} %llu\n",
                    route_names[r], model_name(cfg, m), status, (unsigned long long)v);
            }
    put(&o, "# HELP gatehouse_api_request_duration_seconds Time from a request's arrival to its "
            "last byte.\n# TYPE gatehouse_api_request_duration_seconds histogram\n");
    for (size_t r = 0; r < GH_ROUTE_COUNT; r++)
        put_route_hist(&o, "gatehouse_api_request_duration_seconds", r, &s0->total_hist[r]);
    put(&o, "# HELP gatehouse_api_overhead_seconds Time a request spent in Gatehouse itself "
            "(duration minus waiting on the upstream).\n"
            "# TYPE gatehouse_api_overhead_seconds histogram\n");
    for (size_t r = 0; r < GH_ROUTE_COUNT; r++)
        put_route_hist(&o, "gatehouse_api_overhead_seconds", r, &s0->overhead_hist[r]);
    put(&o, "# HELP gatehouse_upstream_errors_total Upstream failures by model and kind.\n"
            "# TYPE gatehouse_upstream_errors_total counter\n");
    for (size_t m = 0; m < MODELS; m++)
        for (size_t k = 0; k < GH_UPSTREAM_ERR_COUNT; k++) {
            uint64_t v = sum_u(&s0->upstream_errors[m][k]);
            if (v)
                put(&o, "gatehouse_upstream_errors_total{model=\"%s\",kind=\"%s\"} %llu\n",
                    model_name(cfg, m), upstream_err_names[k], (unsigned long long)v);
        }
    put(&o, "# HELP gatehouse_upstream_connections Connections to a model's upstream: in use, "
            "or idle in the keep-alive pool.\n"
            "# TYPE gatehouse_upstream_connections gauge\n"
            "# HELP gatehouse_upstream_waiting Requests waiting for a free upstream connection "
            "(max_connections reached).\n# TYPE gatehouse_upstream_waiting gauge\n");
    for (size_t m = 0; m < MODELS; m++) {
        long long open = (long long)sum_i(&s0->upstream_conns[m][0]);
        long long idle = (long long)sum_i(&s0->upstream_conns[m][1]);
        long long wait = (long long)sum_i(&s0->upstream_conns[m][2]);
        if (open == 0 && wait == 0)
            continue;
        put(&o,
            "gatehouse_upstream_connections{model=\"%s\",state=\"active\"} %lld\n"
            "gatehouse_upstream_connections{model=\"%s\",state=\"idle\"} %lld\n"
            "gatehouse_upstream_waiting{model=\"%s\"} %lld\n",
            model_name(cfg, m), open - idle, model_name(cfg, m), idle, model_name(cfg, m), wait);
    }
    put(&o, "# HELP gatehouse_console_requests_in_progress Control-plane requests between their "
            "first byte and their answer.\n"
            "# TYPE gatehouse_console_requests_in_progress gauge\n"
            "gatehouse_console_requests_in_progress %lld\n",
        (long long)sum_i(&s0->console_active));
    put(&o, "# HELP gatehouse_deployment_requests_total Attempts sent to each deployment of a "
            "model (retries included).\n# TYPE gatehouse_deployment_requests_total counter\n"
            "# HELP gatehouse_deployment_retries_total Attempts that retried a request another "
            "deployment failed before its first byte.\n"
            "# TYPE gatehouse_deployment_retries_total counter\n"
            "# HELP gatehouse_deployment_errors_total Failed attempts by kind.\n"
            "# TYPE gatehouse_deployment_errors_total counter\n"
            "# HELP gatehouse_deployment_ejections_total Times the deployment was taken out of "
            "rotation.\n# TYPE gatehouse_deployment_ejections_total counter\n"
            "# HELP gatehouse_deployment_in_flight Attempts running now.\n"
            "# TYPE gatehouse_deployment_in_flight gauge\n"
            "# HELP gatehouse_deployment_health 1 for the deployment's current state.\n"
            "# TYPE gatehouse_deployment_health gauge\n"
            "# HELP gatehouse_deployment_duration_seconds Attempt durations.\n"
            "# TYPE gatehouse_deployment_duration_seconds histogram\n");
    for (int m = 0; m < cfg->nmodels && m < GH_MODELS_MAX; m++)
        for (int d = 0; d < cfg->models[m].ndeployments && d < GH_DEPLOYMENTS_MAX; d++) {
            gh_metrics_deploy_t v;
            gh_metrics_deploy_get(m, d, &v);
            const char *mn = cfg->models[m].name;
            put(&o, "gatehouse_deployment_requests_total{model=\"%s\",deployment=\"%d\"} %llu\n"
                    "gatehouse_deployment_retries_total{model=\"%s\",deployment=\"%d\"} %llu\n"
                    "gatehouse_deployment_ejections_total{model=\"%s\",deployment=\"%d\"} %llu\n"
                    "gatehouse_deployment_in_flight{model=\"%s\",deployment=\"%d\"} %lld\n",
                mn, d, (unsigned long long)v.requests, mn, d, (unsigned long long)v.retries, mn,
                d, (unsigned long long)v.ejections, mn, d, (long long)v.in_flight);
            for (size_t k = 0; k < GH_DEPLOY_ERR_COUNT; k++)
                put(&o,
                    "gatehouse_deployment_errors_total{model=\"%s\",deployment=\"%d\","
                    "kind=\"%s\"} %llu\n",
                    mn, d, deploy_err_names[k], (unsigned long long)v.errors[k]);
            for (size_t h = 0; h < 3; h++)
                put(&o,
                    "gatehouse_deployment_health{model=\"%s\",deployment=\"%d\",state=\"%s\"} "
                    "%d\n",
                    mn, d, health_names[h], (size_t)v.health == h);
            char label[256];
            snprintf(label, sizeof(label), "model=\"%s\",deployment=\"%d\"", mn, d);
            put_hist(&o, "gatehouse_deployment_duration_seconds", label,
                     &s0->deploys[m][d].latency);
        }
    put(&o, "# HELP gatehouse_api_open_streams Streaming responses in progress.\n"
            "# TYPE gatehouse_api_open_streams gauge\ngatehouse_api_open_streams %lld\n",
        (long long)sum_i(&s0->open_streams));
    if (extra)
        put(&o, "%s", extra);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
