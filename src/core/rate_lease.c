/* The rate lease thread (rate_lease.h): collects the shares with demand from the engine,
 * draws for them in one statement, hands the grants back. */
#include "core/rate_lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mono.h"
#include "store/store.h"

struct gh_rate_lease {
    gh_limits_t *limits;
    gh_store_t *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;      /* under lock */
    atomic_bool kicked; /* a kick since the thread last looked */
    gh_limits_rate_need_t needs[GH_RATE_LEASE_BATCH];
    gh_store_rate_draw_t rows[GH_RATE_LEASE_BATCH];
    int64_t granted[GH_RATE_LEASE_BATCH];
    _Atomic uint64_t refills, refill_failures, buckets_drawn, tokens_granted, short_grants,
        kicks;
    atomic_int unavailable;
};

/* Called by the engine on an admitting thread when a share was short. Signals only the first
 * kick since the thread last looked, so a burst of short admissions costs one wake-up. */
static void kick(void *ctx)
{
    gh_rate_lease_t *rl = ctx;
    if (atomic_exchange_explicit(&rl->kicked, true, memory_order_acq_rel))
        return;
    atomic_fetch_add_explicit(&rl->kicks, 1, memory_order_relaxed);
    pthread_mutex_lock(&rl->lock);
    pthread_cond_signal(&rl->wake);
    pthread_mutex_unlock(&rl->lock);
}

/* One draw for up to a batch of shares; returns how many needs it served (0: nothing to do
 * or a failure). */
static size_t draw_once(gh_rate_lease_t *rl)
{
    int64_t t0_us = 0;
    size_t n = gh_limits_rate_needs(rl->limits, rl->needs, GH_RATE_LEASE_BATCH, &t0_us);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const gh_limits_rate_need_t *need = &rl->needs[i];
        rl->rows[i] = (gh_store_rate_draw_t){need->org_id,        need->ws_id,
                                             need->class_name,    (int)need->kind,
                                             need->limit_per_min, need->capacity,
                                             need->want,          need->want_min,
                                             need->give_back};
    }
    gh_db_t *db = gh_store_db(rl->store);
    int64_t nodes = 0;
    gh_err_t rc = db ? gh_store_rate_draw(db, rl->rows, n, rl->granted, &nodes) : GH_EUNAVAIL;
    if (rc) {
        atomic_fetch_add_explicit(&rl->refill_failures, 1, memory_order_relaxed);
        if (!atomic_exchange_explicit(&rl->unavailable, 1, memory_order_relaxed))
            gh_log_error("rate leases: drawing from the cluster's rate buckets failed (%s); "
                         "admitting within a safe local share of each limit until a draw "
                         "succeeds",
                         gh_err_name(rc));
        gh_limits_rate_unavailable(rl->limits, true);
        return 0;
    }
    gh_limits_rate_nodes(rl->limits, nodes);
    if (atomic_exchange_explicit(&rl->unavailable, 0, memory_order_relaxed)) {
        gh_log_info("rate leases: drawing again");
        gh_limits_rate_unavailable(rl->limits, false);
    }
    uint64_t tokens = 0, shorts = 0;
    for (size_t i = 0; i < n; i++) {
        gh_limits_rate_grant(rl->limits, &rl->needs[i], rl->granted[i], t0_us);
        tokens += (uint64_t)(rl->granted[i] > 0 ? rl->granted[i] : 0);
        shorts += rl->granted[i] < rl->needs[i].want;
    }
    atomic_fetch_add_explicit(&rl->refills, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rl->buckets_drawn, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&rl->tokens_granted, tokens, memory_order_relaxed);
    atomic_fetch_add_explicit(&rl->short_grants, shorts, memory_order_relaxed);
    return n;
}

static void *lease_main(void *arg)
{
    gh_rate_lease_t *rl = arg;
    for (;;) {
        atomic_store_explicit(&rl->kicked, false, memory_order_release);
        /* A full batch means more shares may be waiting: draw again at once. */
        while (draw_once(rl) == GH_RATE_LEASE_BATCH)
            ;
        struct timespec until;
        gh_mono_deadline(&until, GH_RATE_LEASE_TICK_MS);
        pthread_mutex_lock(&rl->lock);
        while (!rl->stopping && !atomic_load_explicit(&rl->kicked, memory_order_acquire))
            if (pthread_cond_timedwait(&rl->wake, &rl->lock, &until) == ETIMEDOUT)
                break;
        bool stop = rl->stopping;
        pthread_mutex_unlock(&rl->lock);
        if (stop)
            break;
    }
    return NULL;
}

gh_err_t gh_rate_lease_start(gh_rate_lease_t **out, gh_limits_t *limits, gh_store_t *store,
                             char *err, size_t err_size)
{
    gh_rate_lease_t *rl = calloc(1, sizeof(*rl));
    if (!rl) {
        snprintf(err, err_size, "out of memory");
        return GH_ENOMEM;
    }
    rl->limits = limits;
    rl->store = store;
    pthread_mutex_init(&rl->lock, NULL);
    gh_mono_cond_init(&rl->wake);
    gh_limits_rate_shared(limits, (int64_t)GH_RATE_LEASE_TTL_MS * 1000, kick, rl);
    if (pthread_create(&rl->thread, NULL, lease_main, rl)) {
        snprintf(err, err_size, "cannot start the rate lease thread");
        pthread_cond_destroy(&rl->wake);
        pthread_mutex_destroy(&rl->lock);
        free(rl);
        return GH_EINTERNAL;
    }
    *out = rl;
    return GH_OK;
}

void gh_rate_lease_stop(gh_rate_lease_t *rl)
{
    if (!rl)
        return;
    pthread_mutex_lock(&rl->lock);
    rl->stopping = true;
    pthread_cond_signal(&rl->wake);
    pthread_mutex_unlock(&rl->lock);
    pthread_join(rl->thread, NULL);
    pthread_cond_destroy(&rl->wake);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

void gh_rate_lease_stats(gh_rate_lease_t *rl, gh_rate_lease_stats_t *out)
{
    *out = (gh_rate_lease_stats_t){
        atomic_load_explicit(&rl->refills, memory_order_relaxed),
        atomic_load_explicit(&rl->refill_failures, memory_order_relaxed),
        atomic_load_explicit(&rl->buckets_drawn, memory_order_relaxed),
        atomic_load_explicit(&rl->tokens_granted, memory_order_relaxed),
        atomic_load_explicit(&rl->short_grants, memory_order_relaxed),
        atomic_load_explicit(&rl->kicks, memory_order_relaxed),
        atomic_load_explicit(&rl->unavailable, memory_order_relaxed),
    };
}
