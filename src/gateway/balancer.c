/* Deployment choice and passive health; see balancer.h for what it promises. */
#include "gateway/balancer.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static_assert(GH_DEPLOYMENTS_MAX <= 32, "tried deployments fit a uint32_t mask");

typedef struct {
    _Alignas(64) atomic_int_fast64_t in_flight;
    atomic_int_fast64_t ejected_until_ms; /* 0: in rotation */
    atomic_int_fast64_t last_failure_ms;
    atomic_uint consecutive; /* failures since the last success */
    atomic_bool trial;       /* a trial request is out */
    pthread_mutex_t mu;      /* failures, ejections and verdicts */
    int64_t backoff_ms;      /* the next ejection's length; under mu */
    int64_t weight;
} deploy_t;

struct gh_balancer {
    const gh_model_cfg_t *cfg;
    int model;
    size_t count;
    deploy_t d[];
};

gh_balancer_t *gh_balancer_new(const gh_model_cfg_t *m, int model_index)
{
    size_t n = m->ndeployments > 0 ? (size_t)m->ndeployments : 0;
    assert(n <= GH_DEPLOYMENTS_MAX);
    gh_balancer_t *b = aligned_alloc(64, (sizeof(*b) + n * sizeof(deploy_t) + 63) / 64 * 64);
    if (b == NULL)
        return NULL;
    memset(b, 0, sizeof(*b) + n * sizeof(deploy_t));
    b->cfg = m;
    b->model = model_index;
    b->count = n;
    for (size_t i = 0; i < n; i++) {
        deploy_t *d = &b->d[i];
        pthread_mutex_init(&d->mu, NULL);
        d->backoff_ms = m->eject_ms;
        d->weight = m->deployments[i].weight > 0 ? m->deployments[i].weight : 1;
        gh_metrics_deploy_health(model_index, (int)i, GH_DEPLOY_UP);
    }
    return b;
}

void gh_balancer_free(gh_balancer_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->count; i++)
        pthread_mutex_destroy(&b->d[i].mu);
    free(b);
}

size_t gh_balancer_count(const gh_balancer_t *b)
{
    return b->count;
}

/* xorshift64*: cheap, per loop, good enough to spread second choices. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t x = *s ? *s : UINT64_C(0x9E3779B97F4A7C15);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static int64_t load(atomic_int_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void start(gh_balancer_t *b, size_t i, bool retry)
{
    atomic_fetch_add_explicit(&b->d[i].in_flight, 1, memory_order_relaxed);
    gh_metrics_deploy_start(b->model, (int)i, retry);
}

int gh_balancer_pick(gh_balancer_t *b, gh_balancer_cursor_t *cur, uint32_t tried, bool retry,
                     int64_t now_ms, bool *trial)
{
    size_t cand[GH_DEPLOYMENTS_MAX], nc = 0;
    int64_t total = 0;
    *trial = false;
    for (size_t i = 0; i < b->count; i++) {
        if (tried & (UINT32_C(1) << i))
            continue;
        deploy_t *d = &b->d[i];
        int64_t until = load(&d->ejected_until_ms);
        if (until == 0) {
            cand[nc++] = i;
            total += d->weight;
            continue;
        }
        bool expected = false;
        if (until <= now_ms && !atomic_load_explicit(&d->trial, memory_order_relaxed) &&
            atomic_compare_exchange_strong(&d->trial, &expected, true)) {
            /* Its ejection ran out: this request decides whether it comes back. */
            gh_metrics_deploy_health(b->model, (int)i, GH_DEPLOY_TRIAL);
            *trial = true;
            start(b, i, retry);
            return (int)i;
        }
    }
    if (nc == 0)
        return -1;
    size_t pick = cand[0];
    if (nc > 1) {
        /* First choice: smooth weighted round robin over the candidates. */
        size_t first = cand[0];
        for (size_t k = 0; k < nc; k++) {
            size_t i = cand[k];
            cur->current[i] += b->d[i].weight;
            if (cur->current[i] > cur->current[first])
                first = i;
        }
        cur->current[first] -= total;
        /* Second choice: another candidate, at random in proportion to the weights. */
        uint64_t r = next_random(&cur->rng) % (uint64_t)(total - b->d[first].weight);
        size_t second = first;
        for (size_t k = 0; k < nc; k++) {
            size_t i = cand[k];
            if (i == first)
                continue;
            second = i;
            if (r < (uint64_t)b->d[i].weight)
                break;
            r -= (uint64_t)b->d[i].weight;
        }
        assert(second != first);
        /* Fewer requests in flight per unit of weight wins; the first on a tie, so that
         * without load (every count 0) the round robin alone decides. */
        int64_t f = load(&b->d[first].in_flight) * b->d[second].weight;
        int64_t s = load(&b->d[second].in_flight) * b->d[first].weight;
        pick = s < f ? second : first;
    }
    start(b, pick, retry);
    return (int)pick;
}

int gh_balancer_pick_any(gh_balancer_t *b, uint32_t tried, bool retry)
{
    int best = -1;
    int64_t best_failure = 0;
    for (size_t i = 0; i < b->count; i++) {
        if (tried & (UINT32_C(1) << i))
            continue;
        int64_t f = load(&b->d[i].last_failure_ms);
        if (best < 0 || f < best_failure) {
            best = (int)i;
            best_failure = f;
        }
    }
    if (best >= 0)
        start(b, (size_t)best, retry);
    return best;
}

bool gh_balancer_available(gh_balancer_t *b, int64_t now_ms)
{
    for (size_t i = 0; i < b->count; i++) {
        int64_t until = load(&b->d[i].ejected_until_ms);
        if (until == 0 ||
            (until <= now_ms && !atomic_load_explicit(&b->d[i].trial, memory_order_relaxed)))
            return true;
    }
    return false;
}

/* Back in rotation; under d->mu. */
static void readmit(gh_balancer_t *b, size_t i)
{
    deploy_t *d = &b->d[i];
    atomic_store_explicit(&d->ejected_until_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&d->consecutive, 0, memory_order_relaxed);
    atomic_store_explicit(&d->trial, false, memory_order_relaxed);
    d->backoff_ms = b->cfg->eject_ms;
    gh_metrics_deploy_health(b->model, (int)i, GH_DEPLOY_UP);
}

/* Out of rotation for the current backoff; under d->mu. */
static void eject(gh_balancer_t *b, size_t i, int64_t now_ms)
{
    deploy_t *d = &b->d[i];
    int64_t until = now_ms + d->backoff_ms;
    atomic_store_explicit(&d->ejected_until_ms, until > 0 ? until : 1, memory_order_relaxed);
    atomic_store_explicit(&d->consecutive, 0, memory_order_relaxed);
    atomic_store_explicit(&d->trial, false, memory_order_relaxed);
    gh_metrics_deploy_health(b->model, (int)i, GH_DEPLOY_EJECTED);
    gh_metrics_deploy_ejection(b->model, (int)i);
}

/* A failure of deployment i (a request's, a trial's or a probe's). */
static void failed(gh_balancer_t *b, size_t i, bool trial, int64_t now_ms)
{
    deploy_t *d = &b->d[i];
    pthread_mutex_lock(&d->mu);
    atomic_store_explicit(&d->last_failure_ms, now_ms, memory_order_relaxed);
    if (trial) {
        d->backoff_ms = d->backoff_ms * 2 > GH_BALANCER_EJECT_MAX_MS ? GH_BALANCER_EJECT_MAX_MS
                                                                      : d->backoff_ms * 2;
        eject(b, i, now_ms);
    } else if (load(&d->ejected_until_ms) == 0) {
        unsigned n = atomic_fetch_add_explicit(&d->consecutive, 1, memory_order_relaxed) + 1;
        if (n >= (unsigned)b->cfg->eject_after)
            eject(b, i, now_ms);
    }
    pthread_mutex_unlock(&d->mu);
}

void gh_balancer_end(gh_balancer_t *b, int dep, bool trial, gh_balancer_verdict_t verdict,
                     gh_metric_deploy_err_t kind, int64_t us, int64_t now_ms)
{
    assert(dep >= 0 && (size_t)dep < b->count);
    size_t i = (size_t)dep;
    deploy_t *d = &b->d[i];
    atomic_fetch_sub_explicit(&d->in_flight, 1, memory_order_relaxed);
    gh_metrics_deploy_end(b->model, dep, kind, us);
    switch (verdict) {
    case GH_BALANCER_OK:
        if (trial) {
            pthread_mutex_lock(&d->mu);
            readmit(b, i);
            pthread_mutex_unlock(&d->mu);
        } else if (atomic_load_explicit(&d->consecutive, memory_order_relaxed) != 0) {
            atomic_store_explicit(&d->consecutive, 0, memory_order_relaxed);
        }
        break;
    case GH_BALANCER_FAILED:
        failed(b, i, trial, now_ms);
        break;
    case GH_BALANCER_NEUTRAL:
        if (trial) {
            /* No verdict: the next request becomes the trial. */
            gh_metrics_deploy_health(b->model, dep, GH_DEPLOY_EJECTED);
            atomic_store_explicit(&d->trial, false, memory_order_relaxed);
        }
        break;
    }
}

void gh_balancer_probe_result(gh_balancer_t *b, int dep, bool ok, int64_t now_ms)
{
    assert(dep >= 0 && (size_t)dep < b->count);
    deploy_t *d = &b->d[dep];
    if (!ok) {
        failed(b, (size_t)dep, false, now_ms);
        return;
    }
    if (load(&d->ejected_until_ms) == 0)
        return;
    pthread_mutex_lock(&d->mu);
    if (load(&d->ejected_until_ms) != 0 && !atomic_load_explicit(&d->trial, memory_order_relaxed))
        readmit(b, (size_t)dep);
    pthread_mutex_unlock(&d->mu);
}

gh_deploy_health_t gh_balancer_health(gh_balancer_t *b, int dep, int64_t now_ms)
{
    (void)now_ms;
    deploy_t *d = &b->d[dep];
    if (load(&d->ejected_until_ms) == 0)
        return GH_DEPLOY_UP;
    return atomic_load_explicit(&d->trial, memory_order_relaxed) ? GH_DEPLOY_TRIAL
                                                                 : GH_DEPLOY_EJECTED;
}
