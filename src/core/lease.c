/* Cluster money: one node's leases (lease.h). One thread, one store connection. Each pass:
 * the organizations that asked for money (the engine's want list) or whose money changed
 * (kicks) are looked at; every ttl/3 all of this node's leases are renewed in one statement
 * and expired leases of any node are swept; then leases below their low-water mark are
 * refilled and idle or oversized ones returned, many organizations per transaction.
 *
 * The order of every step follows I2 of lease.h: credit the engine after the commit that
 * leased the money; withdraw from the engine before the transaction that gives it back. */
#include "core/lease.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mono.h"
#include "lib/utc.h"
#include "store/store.h"

#define RATE_HEADROOM 3   /* a lease holds its ttl of spend at this many times the recent rate */
#define TARGET_WORSTS 8   /* a busy lease aims at this many of the largest recent worst cases */
#define SCARCE_WORSTS 16  /* free money below this many worst cases is scarce */
#define KICKS_MAX 64      /* organizations kicked between two passes (more: all of them) */
#define BATCH_MAX 64      /* organizations per transaction */
#define US_PER_MS INT64_C(1000)
#define GH_LEASE_RETRY_MS 5 /* asks of an organization with requests in flight, at most this often */

/* What this node knows of its lease of one organization, or of the monthly headroom of one
 * of its workspaces (ws_id not empty: migration 0015); owned by the thread. Both kinds go
 * through the same steps; only the engine's and the store's calls differ (eng_*, the take,
 * return and renew calls). */
typedef struct {
    char org_id[GH_ID_MAX];
    char ws_id[GH_ID_MAX]; /* "": the organization's lease */
    int64_t epoch;       /* of the lease row; 0: none known */
    int64_t deadline_us; /* the fence given to the engine */
    int64_t debt_nusd;   /* reservations of a lapsed lease, taken off the next credit */
    int64_t free_nusd;   /* the organization's free money, as last seen */
    int64_t have_nusd;   /* unreserved in the engine, at the last look */
    int64_t worst_nusd;  /* the largest worst case asked for here */
    int64_t rate_nusd_s; /* recent spend per second (smoothed) */
    int64_t last_spent_nusd;
    uint64_t last_admitted;
    int64_t last_active_us, last_look_us;
    int64_t retry_at_us; /* a take got nothing: asks are not tried again before this */
    int64_t dry_at_us;   /* when the last take that got nothing was sent */
    int64_t answered_at_us; /* when the last take the database answered was sent */
    bool asked;   /* the engine asked for money (a refusal, or below the low-water mark) */
    bool kicked;  /* its money changed in the database */
    bool renewed; /* seen in the last renewal */
    int64_t renew_epoch;
} org_lease_t;

struct gh_lease {
    const gh_config_t *cfg;
    gh_limits_t *limits;
    gh_store_t *store;
    const char *node_id;
    int64_t ttl_us, skew_us, idle_us, tick_ms;

    pthread_mutex_t mu; /* guards what other threads touch: the kicks, the wake-up, stats */
    pthread_cond_t cond;
    bool woken, stopping, started;
    char kicks[KICKS_MAX][GH_ID_MAX];
    size_t nkicks;
    bool kick_all;
    gh_lease_stats_t stats;
    pthread_t thread;

    /* The thread's own. */
    org_lease_t *orgs;
    size_t n, cap;
    int64_t db_retry_at_us; /* the database could not be reached: no transaction before this */
    int64_t db_backoff_ms;
};

static int64_t now_us(void)
{
    return gh_limits_clock_real(NULL);
}

static void wake(void *ctx)
{
    gh_lease_t *ls = ctx;
    pthread_mutex_lock(&ls->mu);
    ls->woken = true;
    pthread_cond_signal(&ls->cond);
    pthread_mutex_unlock(&ls->mu);
}

gh_err_t gh_lease_new(gh_lease_t **out, const gh_config_t *cfg, gh_limits_t *limits,
                      gh_store_t *store)
{
    gh_lease_t *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return GH_ENOMEM;
    ls->cfg = cfg;
    ls->limits = limits;
    ls->store = store;
    ls->node_id = cfg->cluster_node_id;
    int64_t ttl_ms = cfg->cluster_lease_ttl_ms > 0 ? cfg->cluster_lease_ttl_ms : 10000;
    ls->ttl_us = ttl_ms * US_PER_MS;
    /* The margin for clocks and for the time a renewal takes: a tenth of the ttl, at least
     * 50 ms. The node fences itself this much before the database's expiry, and the database
     * returns a lease this much after it. */
    ls->skew_us = (ttl_ms / 10 > 50 ? ttl_ms / 10 : 50) * US_PER_MS;
    ls->idle_us = ls->ttl_us;
    ls->tick_ms = ttl_ms / 10 < 10 ? 10 : ttl_ms / 10 > 100 ? 100 : ttl_ms / 10;
    pthread_mutex_init(&ls->mu, NULL);
    gh_mono_cond_init(&ls->cond);
    gh_limits_leases_on(limits, wake, ls);
    *out = ls;
    return GH_OK;
}

void gh_lease_kick(gh_lease_t *ls, const char *org_id)
{
    if (!ls)
        return;
    pthread_mutex_lock(&ls->mu);
    if (!org_id || ls->nkicks == KICKS_MAX)
        ls->kick_all = true;
    else
        snprintf(ls->kicks[ls->nkicks++], GH_ID_MAX, "%s", org_id);
    ls->woken = true;
    pthread_cond_signal(&ls->cond);
    pthread_mutex_unlock(&ls->mu);
}

void gh_lease_stats(gh_lease_t *ls, gh_lease_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!ls)
        return;
    pthread_mutex_lock(&ls->mu);
    *out = ls->stats;
    pthread_mutex_unlock(&ls->mu);
}

/* ---- the thread's table ---- */

static org_lease_t *find(gh_lease_t *ls, const char *org_id, const char *ws_id)
{
    for (size_t i = 0; i < ls->n; i++)
        if (!strcmp(ls->orgs[i].org_id, org_id) && !strcmp(ls->orgs[i].ws_id, ws_id))
            return &ls->orgs[i];
    return NULL;
}

static org_lease_t *find_or_add(gh_lease_t *ls, const char *org_id, const char *ws_id)
{
    org_lease_t *e = find(ls, org_id, ws_id);
    if (e)
        return e;
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 64;
        org_lease_t *orgs = realloc(ls->orgs, cap * sizeof(*orgs));
        if (!orgs)
            return NULL; /* asked again at its next refusal */
        ls->orgs = orgs;
        ls->cap = cap;
    }
    e = &ls->orgs[ls->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->org_id, sizeof(e->org_id), "%s", org_id);
    snprintf(e->ws_id, sizeof(e->ws_id), "%s", ws_id);
    e->last_active_us = e->last_look_us = now_us();
    return e;
}

static void on_ws_want(void *ctx, const char *org_id, const char *ws_id)
{
    org_lease_t *e = find_or_add(ctx, org_id, ws_id);
    gh_log_debug("leases: %s%s%s asks", org_id, ws_id[0] ? "/" : "", ws_id);
    if (e) {
        e->asked = true;
        e->last_active_us = now_us(); /* a refused request is demand too */
    }
}

static void on_want(void *ctx, const char *org_id)
{
    on_ws_want(ctx, org_id, "");
}

/* ---- the engine's side, for either kind of lease ---- */

static gh_err_t eng_get(gh_lease_t *ls, const org_lease_t *e, gh_limits_lease_state_t *st)
{
    if (e->ws_id[0])
        return gh_limits_ws_lease_get(ls->limits, e->org_id, e->ws_id, true, st);
    return gh_limits_lease_get(ls->limits, e->org_id, true, st);
}

static void eng_credit(gh_lease_t *ls, const org_lease_t *e, int64_t amount)
{
    if (e->ws_id[0])
        gh_limits_ws_lease_credit(ls->limits, e->org_id, e->ws_id, amount);
    else
        gh_limits_credit(ls->limits, e->org_id, amount);
}

static void eng_withdraw(gh_lease_t *ls, const org_lease_t *e, int64_t max, int64_t *taken,
                         int64_t *reserved)
{
    gh_err_t rc = e->ws_id[0] ? gh_limits_ws_lease_withdraw(ls->limits, e->org_id, e->ws_id,
                                                            max, taken, reserved)
                              : gh_limits_withdraw(ls->limits, e->org_id, max, taken, reserved);
    (void)rc; /* forgotten: nothing withdrawn, *taken is 0 */
}

static void count(gh_lease_t *ls, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&ls->mu);
    *field += n;
    pthread_mutex_unlock(&ls->mu);
}

/* The database answered, or could not be reached: the engine refuses fenced organizations
 * with 529 while it cannot. */
static void db_result(gh_lease_t *ls, gh_err_t rc)
{
    bool down = rc == GH_EUNAVAIL;
    /* Unreachable: try again after 200 ms, doubling to 2 s, so the thread never spins (the
     * fences stop admissions in time without it). */
    if (down) {
        ls->db_backoff_ms = ls->db_backoff_ms ? ls->db_backoff_ms * 2 : 200;
        if (ls->db_backoff_ms > 2000)
            ls->db_backoff_ms = 2000;
        ls->db_retry_at_us = now_us() + ls->db_backoff_ms * US_PER_MS;
    } else {
        ls->db_backoff_ms = 0;
        ls->db_retry_at_us = 0;
    }
    gh_limits_set_db_down(ls->limits, down);
    pthread_mutex_lock(&ls->mu);
    if (rc)
        ls->stats.db_errors++;
    if (down && !ls->stats.db_down)
        gh_log_error("leases: the database cannot be reached; serving within the leases held "
                     "until they lapse");
    else if (!down && ls->stats.db_down)
        gh_log_info("leases: the database is reachable again");
    ls->stats.db_down = down;
    pthread_mutex_unlock(&ls->mu);
}

/* The fence and low-water mark the engine gets for `e`. */
static int64_t target_of(const gh_lease_t *ls, const org_lease_t *e)
{
    int64_t worst = e->worst_nusd > 0 ? e->worst_nusd : 1;
    int64_t target = worst * TARGET_WORSTS;
    /* A lease lasts its ttl at up to RATE_HEADROOM times the recent rate of spend: a node cut
     * off from the database serves until the lease lapses, not until a small lease runs dry
     * (free money scarce: see below). */
    int64_t ttl_s_x10 = ls->ttl_us / 100000 * RATE_HEADROOM;
    int64_t by_rate = e->rate_nusd_s > INT64_MAX / (ttl_s_x10 + 1) ? INT64_MAX / 2
                                                                    : e->rate_nusd_s * ttl_s_x10 / 10;
    if (by_rate > target)
        target = by_rate;
    /* What this node could hold: the free money and what it holds unreserved. Scarce (less
     * than SCARCE_WORSTS worst cases): hold two worst cases at most, so the other nodes can
     * have the rest. Otherwise at most half of it, so that one node never takes it all: a
     * target above it (a long ttl at a high rate) is cut there, not to the scarce two worst
     * cases, which would leave a node cut off from the database a few requests where its ttl
     * promised minutes. Counting what it holds keeps the sizing from swinging between a take
     * and a give at every look. */
    int64_t within = e->free_nusd + (e->have_nusd > 0 ? e->have_nusd : 0);
    int64_t scarce = worst > INT64_MAX / SCARCE_WORSTS ? INT64_MAX : worst * SCARCE_WORSTS;
    if (within < scarce)
        return 2 * worst;
    if (target > within / 2)
        target = within / 2;
    return target;
}

static void publish(gh_lease_t *ls, const org_lease_t *e, bool month_bound, int64_t limit)
{
    if (e->ws_id[0]) {
        gh_limits_ws_lease_set(ls->limits, e->org_id, e->ws_id, e->deadline_us,
                               target_of(ls, e) / 2, e->dry_at_us, e->answered_at_us);
        return;
    }
    gh_limits_lease_set(ls->limits, e->org_id, e->deadline_us, target_of(ls, e) / 2, month_bound,
                        limit, e->dry_at_us, e->answered_at_us);
}

/* The lease of `e` is gone from the database (swept after it expired): what the engine still
 * holds of it is no longer ours. Unreserved money is dropped at once; what in-flight requests
 * reserved is a debt taken off the next credit (their costs are charged when they settle). */
static void lapse(gh_lease_t *ls, org_lease_t *e)
{
    int64_t taken = 0, reserved = 0;
    eng_withdraw(ls, e, INT64_MAX, &taken, &reserved);
    e->debt_nusd += reserved;
    e->epoch = 0;
    e->deadline_us = 0;
    publish(ls, e, false, 0);
    count(ls, &ls->stats.lapses, 1);
    gh_log_warn("leases: the lease of %s%s%s lapsed (not renewed in time); %lld nano-USD "
                "dropped, %lld in flight", e->org_id, e->ws_id[0] ? "/" : "", e->ws_id,
                (long long)taken, (long long)reserved);
}

/* Credits a granted lease to the engine, less any debt. */
static void credit(gh_lease_t *ls, org_lease_t *e, int64_t granted)
{
    int64_t apply = granted - e->debt_nusd;
    e->debt_nusd = apply < 0 ? -apply : 0;
    if (apply > 0)
        eng_credit(ls, e, apply);
}

/* ---- renewal and sweeping ---- */

typedef struct {
    gh_lease_t *ls;
    int64_t unknown; /* leases of organizations this node does not track */
} renew_ctx_t;

static void on_renewed(void *ctx, const char *org_id, int64_t epoch, int64_t amount_nusd,
                       int64_t free_nusd)
{
    (void)amount_nusd;
    renew_ctx_t *r = ctx;
    org_lease_t *e = find(r->ls, org_id, "");
    if (!e) {
        r->unknown++;
        return;
    }
    e->renewed = true;
    e->renew_epoch = epoch;
    e->free_nusd = free_nusd;
}

static void on_ws_renewed(void *ctx, const char *org_id, const char *ws_id, int64_t epoch,
                          int64_t amount_nusd, int64_t headroom_nusd)
{
    (void)amount_nusd;
    renew_ctx_t *r = ctx;
    org_lease_t *e = find(r->ls, org_id, ws_id);
    if (!e) {
        r->unknown++;
        return;
    }
    e->renewed = true;
    e->renew_epoch = epoch;
    e->free_nusd = headroom_nusd;
}

static void renew_all(gh_lease_t *ls, gh_db_t *db)
{
    for (size_t i = 0; i < ls->n; i++)
        ls->orgs[i].renewed = false;
    renew_ctx_t r = {ls, 0};
    int64_t sent = now_us();
    gh_err_t rc = gh_store_begin(db);
    if (!rc && !(rc = gh_store_leases_renew(db, ls->node_id, ls->ttl_us / US_PER_MS,
                                            on_renewed, &r)) &&
        !(rc = gh_store_ws_leases_renew(db, ls->node_id, ls->ttl_us / US_PER_MS, on_ws_renewed,
                                        &r)))
        rc = gh_store_commit(db);
    else if (gh_store_in_transaction(db))
        gh_store_rollback(db);
    db_result(ls, rc);
    if (rc) {
        if (rc != GH_EUNAVAIL) /* said once by db_result */
            gh_log_warn("leases: renewing failed (%s)", gh_err_name(rc));
        return; /* the fences stay where they were: the engine stops in time by itself */
    }
    for (size_t i = 0; i < ls->n; i++) {
        org_lease_t *e = &ls->orgs[i];
        if (!e->epoch)
            continue;
        if (!e->renewed || e->renew_epoch != e->epoch) {
            lapse(ls, e);
            continue;
        }
        e->deadline_us = sent + ls->ttl_us - ls->skew_us;
        publish(ls, e, false, 0);
    }
    /* Expired leases of any node (a node that died) go back to their organizations. */
    int64_t swept = 0, swept_nusd = 0;
    rc = gh_store_begin(db);
    if (!rc && !(rc = gh_store_leases_sweep(db, NULL, ls->skew_us / US_PER_MS, &swept,
                                            &swept_nusd)))
        rc = gh_store_commit(db);
    else if (gh_store_in_transaction(db))
        gh_store_rollback(db);
    db_result(ls, rc);
    if (!rc && swept) {
        count(ls, &ls->stats.swept, (uint64_t)swept);
        gh_log_info("leases: %lld expired lease%s returned %lld nano-USD to free money",
                    (long long)swept, swept == 1 ? "" : "s", (long long)swept_nusd);
    }
}

/* ---- refills and returns ---- */

typedef struct {
    org_lease_t *e;
    gh_lease_ask_t ask;
    gh_lease_grant_t grant;
    int64_t limit_nusd;
    int64_t in_flight; /* its requests in flight when asked: their leftovers come back */
} take_t;

typedef struct {
    org_lease_t *e;
    int64_t taken, returned;
} give_t;

static void take_batch(gh_lease_t *ls, gh_db_t *db, take_t *t, size_t n)
{
    if (n == 0)
        return;
    int64_t sent = now_us();
    gh_err_t rc = gh_store_begin(db);
    for (size_t i = 0; i < n && !rc; i++)
        rc = t[i].e->ws_id[0] ? gh_store_ws_lease_take(db, t[i].e->ws_id, &t[i].ask, &t[i].grant)
                              : gh_store_lease_take(db, &t[i].ask, &t[i].grant);
    if (!rc)
        rc = gh_store_commit(db);
    else if (gh_store_in_transaction(db))
        gh_store_rollback(db);
    db_result(ls, rc);
    if (rc) {
        /* Nothing is credited: if the commit did happen after all, the money stays leased to
         * this node unused until the lease is returned or lapses (never spent twice). */
        if (rc != GH_EUNAVAIL) /* said once by db_result */
            gh_log_warn("leases: taking leases failed (%s)", gh_err_name(rc));
        return;
    }
    uint64_t refills = 0;
    for (size_t i = 0; i < n; i++) {
        org_lease_t *e = t[i].e;
        const gh_lease_grant_t *g = &t[i].grant;
        if (e->epoch && g->epoch && g->epoch != e->epoch)
            lapse(ls, e); /* the old row was swept; this is a new one */
        e->free_nusd = g->free_nusd;
        e->answered_at_us = sent;
        gh_log_debug("leases: %s: asked %lld (at least %lld), granted %lld, free %lld",
                     e->org_id, (long long)t[i].ask.want_nusd, (long long)t[i].ask.min_nusd,
                     (long long)g->granted_nusd, (long long)g->free_nusd);
        /* Nothing to be had: asks wait a little before the next try, and requests waiting
         * since before this ask was sent are refused for credit (what requests in flight
         * reserved is not available, as on a single node). */
        e->retry_at_us = g->granted_nusd > 0 ? 0 : sent + GH_LEASE_RETRY_MS * US_PER_MS;
        if (g->granted_nusd == 0)
            e->dry_at_us = sent;
        if (g->granted_nusd > 0) {
            e->epoch = g->epoch;
            e->deadline_us = sent + ls->ttl_us - ls->skew_us;
            credit(ls, e, g->granted_nusd);
            refills++;
        }
        publish(ls, e, g->granted_nusd == 0 && g->month_bound, g->limit_nusd);
    }
    count(ls, &ls->stats.refills, refills);
}

static void give_batch(gh_lease_t *ls, gh_db_t *db, give_t *g, size_t n)
{
    size_t k = 0;
    /* Out of the engine first: from here on no admission can spend it. */
    for (size_t i = 0; i < n; i++) {
        eng_withdraw(ls, g[i].e, g[i].taken, &g[i].taken, NULL);
        if (g[i].taken > 0)
            g[k++] = g[i];
    }
    if (k == 0)
        return;
    n = k;
    gh_err_t rc = gh_store_begin(db);
    bool committing = false;
    for (size_t i = 0; i < n && !rc; i++)
        rc = g[i].e->ws_id[0]
                 ? gh_store_ws_lease_return(db, g[i].e->ws_id, ls->node_id, g[i].e->epoch,
                                            g[i].taken, &g[i].returned)
                 : gh_store_lease_return(db, g[i].e->org_id, ls->node_id, g[i].e->epoch,
                                         g[i].taken, &g[i].returned);
    if (!rc) {
        committing = true;
        rc = gh_store_commit(db);
    } else if (gh_store_in_transaction(db)) {
        gh_store_rollback(db);
    }
    db_result(ls, rc);
    if (rc) {
        if (!committing) /* certainly not returned: the engine may spend it again */
            for (size_t i = 0; i < n; i++)
                eng_credit(ls, g[i].e, g[i].taken);
        if (rc != GH_EUNAVAIL) /* said once by db_result */
            gh_log_warn("leases: returning leases failed (%s)", gh_err_name(rc));
        return;
    }
    uint64_t returns = 0;
    for (size_t i = 0; i < n; i++) {
        gh_log_debug("leases: %s: gave back %lld of %lld", g[i].e->org_id,
                     (long long)g[i].returned, (long long)g[i].taken);
        if (g[i].returned < 0) {
            lapse(ls, g[i].e);
            continue;
        }
        if (g[i].returned < g[i].taken)
            gh_log_error("leases: %s: the lease row held %lld nano-USD, less than the %lld "
                         "returned from memory", g[i].e->org_id, (long long)g[i].returned,
                         (long long)g[i].taken);
        returns++;
    }
    count(ls, &ls->stats.returns, returns);
}

/* Looks at every organization: what to take, what to give back. */
static void balance_all(gh_lease_t *ls, gh_db_t *db)
{
    take_t takes[BATCH_MAX];
    give_t gives[BATCH_MAX];
    size_t nt = 0, ng = 0;
    int64_t now = now_us();
    int64_t held = 0, held_nusd = 0;
    int32_t month_key = gh_utc_month_key(now / 1000000);
    int64_t month_start = gh_utc_month_start_s(now / 1000000);
    for (size_t i = 0; i < ls->n; i++) {
        org_lease_t *e = &ls->orgs[i];
        gh_limits_lease_state_t st;
        gh_limits_org_state_t os = {0};
        if (eng_get(ls, e, &st) || (!e->ws_id[0] && gh_limits_org_get(ls->limits, e->org_id, &os)))
            continue; /* forgotten meanwhile: its lease lapses or goes at the next start */
        bool unlimited = e->ws_id[0] && st.monthly_limit_nusd == 0; /* its limit was removed */
        if (st.worst_nusd > e->worst_nusd)
            e->worst_nusd = st.worst_nusd;
        int64_t dt_us = now - e->last_look_us;
        if (dt_us >= 250000) {
            /* The spend rate over the last quarter second or more: up at once, down slowly,
             * so a lease sized on it outlasts a burst. */
            int64_t spent = st.spent_nusd - e->last_spent_nusd;
            int64_t rate = spent > INT64_MAX / 1000000 ? INT64_MAX / 1000000
                                                       : spent * 1000000 / dt_us;
            e->rate_nusd_s = rate > e->rate_nusd_s ? rate : (e->rate_nusd_s * 3 + rate) / 4;
            e->last_spent_nusd = st.spent_nusd;
            e->last_look_us = now;
        }
        if (st.admitted != e->last_admitted) {
            e->last_admitted = st.admitted;
            e->last_active_us = now;
        }
        if (e->epoch && !e->ws_id[0]) { /* money leases only: a workspace's is headroom */
            held++;
            held_nusd += st.balance_nusd;
        }
        int64_t worst = e->worst_nusd > 0 ? e->worst_nusd : 1;
        int64_t unreserved = st.balance_nusd - st.reserved_nusd;
        e->have_nusd = unreserved;
        int64_t target = target_of(ls, e);
        bool idle = (now - e->last_active_us >= ls->idle_us && st.in_flight == 0) || unlimited;
        bool fenced = now >= e->deadline_us;
        bool short_now = fenced || unreserved < target;
        /* Asked (a refusal, or below the mark the engine has), kicked, or busy and below half
         * of a target that grew since the engine's mark was set. */
        bool take = short_now && ((e->asked && now >= e->retry_at_us) || (e->kicked && !idle) ||
                                  (!idle && e->epoch && unreserved < target / 2 &&
                                   now >= e->retry_at_us));
        if (take && nt < BATCH_MAX) {
            int64_t have = fenced ? 0 : unreserved;
            int64_t want = target - have;
            int64_t need = worst - have; /* to admit one more worst case */
            takes[nt++] = (take_t){
                .e = e,
                .ask = {.org_id = e->org_id,
                        .node_id = ls->node_id,
                        .want_nusd = want > need ? want : need,
                        .min_nusd = need > 1 ? need : 1,
                        .limit_nusd = os.monthly_limit_nusd,
                        .month_key = month_key,
                        .month_start_s = month_start,
                        .ttl_ms = ls->ttl_us / US_PER_MS},
                .limit_nusd = os.monthly_limit_nusd,
                .in_flight = st.in_flight,
            };
            e->asked = e->kicked = false;
        } else if (!take && e->epoch && !fenced && unreserved > 0 && ng < BATCH_MAX &&
                   (idle || unreserved > 2 * target)) {
            /* Idle: everything unreserved goes back. Oversized (money became scarce, or
             * demand fell): back down to the target. */
            gives[ng++] = (give_t){.e = e, .taken = idle ? unreserved : unreserved - target};
            e->asked = e->kicked = false;
        } else if (!take) {
            e->asked = e->kicked = false;
        }
    }
    pthread_mutex_lock(&ls->mu);
    ls->stats.held = held;
    ls->stats.held_nusd = held_nusd;
    pthread_mutex_unlock(&ls->mu);
    take_batch(ls, db, takes, nt);
    give_batch(ls, db, gives, ng);
}

/* ---- the thread ---- */

static void *lease_main(void *arg)
{
    gh_lease_t *ls = arg;
    int64_t next_renew_us = 0;
    char kicks[KICKS_MAX][GH_ID_MAX];
    for (;;) {
        struct timespec until;
        gh_mono_deadline(&until, ls->tick_ms);
        pthread_mutex_lock(&ls->mu);
        while (!ls->stopping && !ls->woken)
            if (pthread_cond_timedwait(&ls->cond, &ls->mu, &until) == ETIMEDOUT)
                break;
        ls->woken = false;
        bool stop = ls->stopping, all = ls->kick_all;
        size_t nk = ls->nkicks;
        memcpy(kicks, ls->kicks, nk * sizeof(kicks[0]));
        ls->nkicks = 0;
        ls->kick_all = false;
        pthread_mutex_unlock(&ls->mu);
        if (stop)
            break;
        gh_db_t *db = gh_store_db(ls->store);
        if (!db) {
            db_result(ls, GH_EUNAVAIL);
            continue;
        }
        gh_limits_lease_wants(ls->limits, on_want, ls);
        gh_limits_ws_lease_wants(ls->limits, on_ws_want, ls);
        for (size_t i = 0; i < nk; i++) {
            org_lease_t *e = find(ls, kicks[i], "");
            if (e) /* organizations not leased here take one at their first request */
                e->kicked = true;
        }
        for (size_t i = 0; all && i < ls->n; i++)
            ls->orgs[i].kicked = true;
        int64_t now = now_us();
        if (now < ls->db_retry_at_us)
            continue; /* the database is away: asks wait for the next try */
        if (now >= next_renew_us) {
            renew_all(ls, db);
            next_renew_us = ls->db_retry_at_us ? now : now + ls->ttl_us / 3;
            if (ls->db_retry_at_us)
                continue;
        }
        balance_all(ls, db);
    }
    return NULL;
}

gh_err_t gh_lease_start(gh_lease_t *ls, char *err, size_t err_size)
{
    gh_db_t *db = gh_store_db(ls->store);
    int64_t n = 0, nusd = 0;
    gh_err_t rc = db ? gh_store_begin(db) : GH_EUNAVAIL;
    if (!rc && !(rc = gh_store_leases_sweep(db, ls->node_id, 0, &n, &nusd)))
        rc = gh_store_commit(db);
    else if (db && gh_store_in_transaction(db))
        gh_store_rollback(db);
    if (rc) {
        snprintf(err, err_size, "cannot return the leases node %s held before (%s)",
                 ls->node_id, gh_err_name(rc));
        return rc;
    }
    if (n)
        gh_log_info("leases: %lld lease%s of this node from before returned (%lld nano-USD)",
                    (long long)n, n == 1 ? "" : "s", (long long)nusd);
    if (pthread_create(&ls->thread, NULL, lease_main, ls)) {
        snprintf(err, err_size, "cannot start the lease thread");
        return GH_EINTERNAL;
    }
    ls->started = true;
    gh_log_info("leases: node %s, leases last %lld ms (renewed every %lld ms)", ls->node_id,
                (long long)(ls->ttl_us / US_PER_MS), (long long)(ls->ttl_us / US_PER_MS / 3));
    return GH_OK;
}

void gh_lease_free(gh_lease_t *ls)
{
    if (!ls)
        return;
    if (ls->started) {
        pthread_mutex_lock(&ls->mu);
        ls->stopping = true;
        pthread_cond_signal(&ls->cond);
        pthread_mutex_unlock(&ls->mu);
        pthread_join(ls->thread, NULL);
        /* Every lease of this node goes back: nothing is in flight any more and the usage
         * writer committed every cost (the caller stopped both first). */
        gh_db_t *db = gh_store_db(ls->store);
        int64_t n = 0, nusd = 0;
        gh_err_t rc = db ? gh_store_begin(db) : GH_EUNAVAIL;
        if (!rc && !(rc = gh_store_leases_sweep(db, ls->node_id, 0, &n, &nusd)))
            rc = gh_store_commit(db);
        else if (db && gh_store_in_transaction(db))
            gh_store_rollback(db);
        if (rc)
            gh_log_warn("leases: could not return this node's leases (%s); they lapse after "
                        "%lld ms", gh_err_name(rc), (long long)(ls->ttl_us / US_PER_MS));
    }
    pthread_cond_destroy(&ls->cond);
    pthread_mutex_destroy(&ls->mu);
    free(ls->orgs);
    free(ls);
}
