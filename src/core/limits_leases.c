/* Cluster money of the admission engine (limits.h): an organization's lease of its balance
 * and a workspace's lease of its monthly headroom, spent by admission like the money of a
 * single node and refilled by the lease thread. */
#include "core/limits_int.h"

/* ---- Cluster money: leases ---------------------------------------------------------------- */

void gh_limits_leases_on(gh_limits_t *l, gh_limits_want_fn want_fn, void *ctx)
{
    assert(want_fn);
    l->want_fn = want_fn;
    l->want_ctx = ctx;
    l->leases_on = true;
}

void gh_limits_set_db_down(gh_limits_t *l, bool down)
{
    atomic_store(&l->db_down, down);
}

typedef struct {
    int64_t deadline_us, low_nusd, limit_nusd, dry_at_us, answered_at_us;
    bool month_bound;
} lease_set_t;

static void lease_set(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    (void)s, (void)now_us;
    const lease_set_t *a = arg;
    o->lease_deadline_us = a->deadline_us;
    o->lease_low_nusd = a->low_nusd;
    o->lease_month_bound = a->month_bound;
    o->lease_limit_nusd = a->limit_nusd;
    if (a->dry_at_us > o->lease_dry_at_us)
        o->lease_dry_at_us = a->dry_at_us;
    if (a->answered_at_us > o->lease_answered_at_us)
        o->lease_answered_at_us = a->answered_at_us;
}

gh_err_t gh_limits_lease_set(gh_limits_t *l, const char *org_id, int64_t deadline_us,
                             int64_t low_nusd, bool month_bound, int64_t limit_nusd,
                             int64_t dry_at_us, int64_t answered_at_us)
{
    lease_set_t a = {deadline_us, low_nusd < 0 ? 0 : low_nusd, limit_nusd, dry_at_us,
                     answered_at_us, month_bound};
    return gh_limits_with_org(l, org_id, lease_set, &a);
}

typedef struct {
    int64_t max, taken, reserved;
} withdraw_t;

static void withdraw(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    (void)s, (void)now_us;
    withdraw_t *a = arg;
    int64_t free_nusd = sub_sat(o->balance_nusd, o->reserved_nusd);
    int64_t take = free_nusd < a->max ? free_nusd : a->max;
    if (take < 0)
        take = 0;
    o->balance_nusd -= take;
    a->taken = take;
    a->reserved = o->reserved_nusd;
}

gh_err_t gh_limits_withdraw(gh_limits_t *l, const char *org_id, int64_t max_nusd,
                            int64_t *taken, int64_t *reserved)
{
    withdraw_t a = {max_nusd < 0 ? 0 : max_nusd, 0, 0};
    gh_err_t rc = gh_limits_with_org(l, org_id, withdraw, &a);
    *taken = a.taken;
    if (reserved)
        *reserved = a.reserved;
    return rc;
}

typedef struct {
    bool reset_worst;
    gh_limits_lease_state_t *out;
} lease_get_t;

static void lease_get(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    (void)s, (void)now_us;
    lease_get_t *a = arg;
    *a->out = (gh_limits_lease_state_t){
        .balance_nusd = o->balance_nusd,
        .reserved_nusd = o->reserved_nusd,
        .in_flight = o->in_flight,
        .admitted = o->lease_admitted,
        .spent_nusd = o->lease_spent_nusd,
        .worst_nusd = o->lease_worst_nusd,
        .deadline_us = o->lease_deadline_us,
    };
    if (a->reset_worst)
        o->lease_worst_nusd = 0;
}

gh_err_t gh_limits_lease_get(gh_limits_t *l, const char *org_id, bool reset_worst,
                             gh_limits_lease_state_t *out)
{
    memset(out, 0, sizeof(*out));
    lease_get_t a = {reset_worst, out};
    return gh_limits_with_org(l, org_id, lease_get, &a);
}

void gh_limits_lease_wants(gh_limits_t *l, gh_limits_org_fn fn, void *ctx)
{
    char ids[LEASE_WANTS_MAX][GH_ID_MAX];
    for (size_t i = 0; i < GH_LIMITS_SHARDS; i++) {
        shard_t *s = &l->shards[i];
        pthread_mutex_lock(&s->lock);
        if (s->wants_overflow) {
            /* Rare: more organizations asked than the list holds. Take them in turns of the
             * list's size; the rest keep their flag and are found by the next drain. */
            size_t n = 0;
            for (size_t k = 0; k < s->orgs_cap && n < LEASE_WANTS_MAX; k++) {
                org_t *o = s->orgs[k];
                if (o && o->lease_want) {
                    o->lease_want = false;
                    memcpy(ids[n++], o->id, GH_ID_MAX);
                }
            }
            s->wants_overflow = n == LEASE_WANTS_MAX;
            s->nwants = 0;
            pthread_mutex_unlock(&s->lock);
            for (size_t k = 0; k < n; k++)
                fn(ctx, ids[k]);
            continue;
        }
        size_t n = s->nwants;
        for (size_t k = 0; k < n; k++) {
            s->wants[k]->lease_want = false;
            memcpy(ids[k], s->wants[k]->id, GH_ID_MAX);
        }
        s->nwants = 0;
        pthread_mutex_unlock(&s->lock);
        for (size_t k = 0; k < n; k++)
            fn(ctx, ids[k]);
    }
}

/* ---- Cluster money: workspace leases ------------------------------------------------------- */

typedef void (*ws_fn)(ws_t *w, void *arg);

static gh_err_t with_ws(gh_limits_t *l, const char *org_id, const char *ws_id, ws_fn fn,
                        void *arg)
{
    if (!id_ok(org_id) || !id_ok(ws_id))
        return GH_EINVAL;
    uint64_t hash = hash_id(org_id), ws_hash = hash_id(ws_id);
    shard_t *s = shard_of(l, hash);
    pthread_mutex_lock(&s->lock);
    org_t *o = gh_limits_org_find(s, hash, org_id);
    ws_t *w = o ? gh_limits_ws_find(s, o, ws_hash, ws_id) : NULL;
    if (w)
        fn(w, arg);
    pthread_mutex_unlock(&s->lock);
    return w ? GH_OK : GH_ENOTFOUND;
}

static void ws_lease_set(ws_t *w, void *arg)
{
    const lease_set_t *a = arg;
    w->lease_deadline_us = a->deadline_us;
    w->lease_low_nusd = a->low_nusd;
    if (a->dry_at_us > w->lease_dry_at_us)
        w->lease_dry_at_us = a->dry_at_us;
    if (a->answered_at_us > w->lease_answered_at_us)
        w->lease_answered_at_us = a->answered_at_us;
}

gh_err_t gh_limits_ws_lease_set(gh_limits_t *l, const char *org_id, const char *ws_id,
                                int64_t deadline_us, int64_t low_nusd, int64_t dry_at_us,
                                int64_t answered_at_us)
{
    lease_set_t a = {deadline_us, low_nusd < 0 ? 0 : low_nusd, 0, dry_at_us, answered_at_us,
                     true};
    return with_ws(l, org_id, ws_id, ws_lease_set, &a);
}

static void ws_lease_credit(ws_t *w, void *arg)
{
    w->lease_nusd = add_sat(w->lease_nusd, *(const int64_t *)arg);
}

gh_err_t gh_limits_ws_lease_credit(gh_limits_t *l, const char *org_id, const char *ws_id,
                                   int64_t delta_nusd)
{
    return with_ws(l, org_id, ws_id, ws_lease_credit, &delta_nusd);
}

static void ws_lease_withdraw(ws_t *w, void *arg)
{
    withdraw_t *a = arg;
    int64_t free_nusd = sub_sat(w->lease_nusd, w->reserved_nusd);
    int64_t take = free_nusd < a->max ? free_nusd : a->max;
    if (take < 0)
        take = 0;
    w->lease_nusd -= take;
    a->taken = take;
    a->reserved = w->reserved_nusd;
}

gh_err_t gh_limits_ws_lease_withdraw(gh_limits_t *l, const char *org_id, const char *ws_id,
                                     int64_t max_nusd, int64_t *taken, int64_t *reserved)
{
    withdraw_t a = {max_nusd < 0 ? 0 : max_nusd, 0, 0};
    gh_err_t rc = with_ws(l, org_id, ws_id, ws_lease_withdraw, &a);
    *taken = a.taken;
    if (reserved)
        *reserved = a.reserved;
    return rc;
}

static void ws_lease_get(ws_t *w, void *arg)
{
    lease_get_t *a = arg;
    *a->out = (gh_limits_lease_state_t){
        .balance_nusd = w->lease_nusd,
        .reserved_nusd = w->reserved_nusd,
        .in_flight = w->in_flight,
        .admitted = w->lease_admitted,
        .spent_nusd = w->lease_spent_nusd,
        .worst_nusd = w->lease_worst_nusd,
        .deadline_us = w->lease_deadline_us,
        .monthly_limit_nusd = w->live ? w->monthly_limit_nusd : 0,
    };
    if (a->reset_worst)
        w->lease_worst_nusd = 0;
}

gh_err_t gh_limits_ws_lease_get(gh_limits_t *l, const char *org_id, const char *ws_id,
                                bool reset_worst, gh_limits_lease_state_t *out)
{
    memset(out, 0, sizeof(*out));
    lease_get_t a = {reset_worst, out};
    return with_ws(l, org_id, ws_id, ws_lease_get, &a);
}

void gh_limits_ws_lease_wants(gh_limits_t *l, gh_limits_ws_want_fn fn, void *ctx)
{
    char orgs[LEASE_WANTS_MAX][GH_ID_MAX], wss[LEASE_WANTS_MAX][GH_ID_MAX];
    for (size_t i = 0; i < GH_LIMITS_SHARDS; i++) {
        shard_t *s = &l->shards[i];
        size_t n = 0;
        pthread_mutex_lock(&s->lock);
        if (s->ws_wants_overflow) {
            /* Rare: in turns of the list's size, as gh_limits_lease_wants. */
            for (size_t k = 0; k < s->wss_cap && n < LEASE_WANTS_MAX; k++) {
                ws_t *w = s->wss[k];
                if (w && w->lease_want) {
                    w->lease_want = false;
                    memcpy(orgs[n], w->org->id, GH_ID_MAX);
                    memcpy(wss[n++], w->id, GH_ID_MAX);
                }
            }
            s->ws_wants_overflow = n == LEASE_WANTS_MAX;
        } else {
            for (; n < s->nws_wants; n++) {
                ws_t *w = s->ws_wants[n];
                w->lease_want = false;
                memcpy(orgs[n], w->org->id, GH_ID_MAX);
                memcpy(wss[n], w->id, GH_ID_MAX);
            }
        }
        s->nws_wants = 0;
        pthread_mutex_unlock(&s->lock);
        for (size_t k = 0; k < n; k++)
            fn(ctx, orgs[k], wss[k]);
    }
}
