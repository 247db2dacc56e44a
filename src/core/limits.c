/* The admission engine (limits.h). Each shard is a mutex and two open-addressing tables of
 * pointers, one for organizations and one for workspaces (keyed by organization and id, in
 * the organization's shard), so that one mutex covers everything an admission reads and
 * writes. Records sit at fixed addresses: tables grow by copying pointers, and nothing is
 * freed before gh_limits_free. The cluster parts live beside this file: rate shares in
 * limits_shares.c, money leases in limits_leases.c; limits_int.h is what they share. */
#include "core/limits_int.h"

#include "lib/text.h"

/* ---- Tables ------------------------------------------------------------------------------ */

/* The slot holding `id` or the empty slot where it would go. Caller holds the lock. */
static org_t **org_slot(org_t **slots, size_t cap, uint64_t hash, const char *id)
{
    for (size_t i = hash & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!slots[i] || (slots[i]->hash == hash && strcmp(slots[i]->id, id) == 0))
            return &slots[i];
}

/* Workspaces are keyed by their organization and their id. */
static ws_t **ws_slot(ws_t **slots, size_t cap, const org_t *org, uint64_t hash,
                      const char *id)
{
    for (size_t i = hash & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!slots[i] || (slots[i]->hash == hash && slots[i]->org == org &&
                          strcmp(slots[i]->id, id) == 0))
            return &slots[i];
}

org_t *gh_limits_org_find(shard_t *s, uint64_t hash, const char *id)
{
    org_t *o = *org_slot(s->orgs, s->orgs_cap, hash, id);
    return o && o->live ? o : NULL;
}

/* The live workspace `id` of `org`, or NULL. */
ws_t *gh_limits_ws_find(shard_t *s, const org_t *org, uint64_t hash, const char *id)
{
    ws_t *w = *ws_slot(s->wss, s->wss_cap, org, hash, id);
    return w && w->live ? w : NULL;
}

/* Makes room for one more record at 50% load. Caller holds the lock. */
static gh_err_t org_table_reserve(shard_t *s)
{
    if ((s->orgs_count + 1) * 2 <= s->orgs_cap)
        return GH_OK;
    size_t cap = s->orgs_cap * 2;
    org_t **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return GH_ENOMEM;
    for (size_t i = 0; i < s->orgs_cap; i++)
        if (s->orgs[i])
            *org_slot(slots, cap, s->orgs[i]->hash, s->orgs[i]->id) = s->orgs[i];
    free(s->orgs);
    s->orgs = slots;
    s->orgs_cap = cap;
    return GH_OK;
}

static gh_err_t ws_table_reserve(shard_t *s)
{
    if ((s->wss_count + 1) * 2 <= s->wss_cap)
        return GH_OK;
    size_t cap = s->wss_cap * 2;
    ws_t **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return GH_ENOMEM;
    for (size_t i = 0; i < s->wss_cap; i++)
        if (s->wss[i])
            *ws_slot(slots, cap, s->wss[i]->org, s->wss[i]->hash, s->wss[i]->id) = s->wss[i];
    free(s->wss);
    s->wss = slots;
    s->wss_cap = cap;
    return GH_OK;
}

/* ---- Life cycle -------------------------------------------------------------------------- */

int64_t gh_limits_clock_real(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / 1000;
}

gh_err_t gh_limits_new(gh_limits_t **out, const char *const *classes, size_t nclasses,
                       gh_limits_clock_fn now_fn, void *clock_ctx)
{
    if (nclasses == 0 || nclasses > GH_LIMITS_CLASSES_MAX || !now_fn)
        return GH_EINVAL;
    for (size_t i = 0; i < nclasses; i++) {
        if (!classes[i] || !classes[i][0] ||
            strnlen(classes[i], GH_LIMITS_CLASS_NAME_MAX) >= GH_LIMITS_CLASS_NAME_MAX)
            return GH_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(classes[i], classes[j]) == 0)
                return GH_EINVAL;
    }
    /* sizeof(gh_limits_t) is a multiple of its 64-byte alignment, as aligned_alloc wants. */
    gh_limits_t *l = aligned_alloc(alignof(gh_limits_t), sizeof(gh_limits_t));
    if (!l)
        return GH_ENOMEM;
    memset(l, 0, sizeof(*l));
    l->now_fn = now_fn;
    l->clock_ctx = clock_ctx;
    l->nclasses = nclasses;
    for (size_t i = 0; i < nclasses; i++)
        memcpy(l->classes[i], classes[i], strlen(classes[i]) + 1);

    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    /* Critical sections are a few hundred nanoseconds: spin briefly before sleeping. */
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    size_t ready = 0;
    gh_err_t rc = GH_OK;
    for (; ready < GH_LIMITS_SHARDS; ready++) {
        shard_t *s = &l->shards[ready];
        s->orgs_cap = s->wss_cap = TABLE_CAP_MIN;
        s->orgs = calloc(s->orgs_cap, sizeof(*s->orgs));
        s->wss = calloc(s->wss_cap, sizeof(*s->wss));
        if (!s->orgs || !s->wss) {
            free(s->orgs);
            free(s->wss);
            rc = GH_ENOMEM;
            break;
        }
        pthread_mutex_init(&s->lock, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    if (rc) {
        while (ready-- > 0) {
            pthread_mutex_destroy(&l->shards[ready].lock);
            free(l->shards[ready].orgs);
            free(l->shards[ready].wss);
        }
        free(l);
        return rc;
    }
    *out = l;
    return GH_OK;
}

void gh_limits_free(gh_limits_t *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < GH_LIMITS_SHARDS; i++) {
        shard_t *s = &l->shards[i];
        for (size_t j = 0; j < s->orgs_cap; j++)
            free(s->orgs[j]);
        for (size_t j = 0; j < s->wss_cap; j++)
            free(s->wss[j]);
        free(s->orgs);
        free(s->wss);
        pthread_mutex_destroy(&s->lock);
    }
    free(l);
}

int gh_limits_class_index(const gh_limits_t *l, const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < l->nclasses; i++)
        if (strcmp(l->classes[i], name) == 0)
            return (int)i;
    return -1;
}

/* ---- Control plane ----------------------------------------------------------------------- */

void gh_limits_org_cfg_tier(gh_limits_org_cfg_t *cfg, const gh_tier_t *tier)
{
    cfg->tier_cap_nusd = tier->monthly_cap_nusd;
    for (size_t c = 0; c < GH_LIMITS_CLASSES_MAX; c++)
        cfg->rates[c] = tier->rate;
}

gh_err_t gh_limits_org_set(gh_limits_t *l, const char *org_id, const gh_limits_org_cfg_t *cfg)
{
    if (!id_ok(org_id) || cfg->monthly_limit_nusd < 0 || cfg->tier_cap_nusd < 0)
        return GH_EINVAL;
    for (size_t c = 0; c < l->nclasses; c++)
        if (!rates_ok(&cfg->rates[c]))
            return GH_EINVAL;
    int64_t now_us = l->now_fn(l->clock_ctx);
    uint64_t hash = hash_id(org_id);
    shard_t *s = shard_of(l, hash);
    /* Allocated before locking so that the loop threads never wait on malloc; freed below
     * when the organization turns out to exist. */
    org_t *fresh = calloc(1, sizeof(*fresh));
    if (!fresh)
        return GH_ENOMEM;
    gh_err_t rc = GH_OK;

    pthread_mutex_lock(&s->lock);
    org_t *o = *org_slot(s->orgs, s->orgs_cap, hash, org_id);
    if (!o) {
        rc = org_table_reserve(s);
        if (rc)
            goto out_unlock;
        o = fresh;
        fresh = NULL;
        memcpy(o->id, org_id, strlen(org_id) + 1);
        o->hash = hash;
        *org_slot(s->orgs, s->orgs_cap, hash, org_id) = o;
        s->orgs_count++;
    }
    if (!o->live) {
        /* New, or coming back after being forgotten: it starts from nothing. */
        memset(&o->balance_nusd, 0, sizeof(*o) - offsetof(org_t, balance_nusd));
        o->live = true;
        o->month_key = month_now(s, now_us);
    }
    o->monthly_limit_nusd = cfg->monthly_limit_nusd;
    o->tier_cap_nusd = cfg->tier_cap_nusd;
    set_rates(&o->buckets, cfg->rates, l->nclasses, now_us);
out_unlock:
    pthread_mutex_unlock(&s->lock);
    free(fresh);
    return rc;
}

/* Runs `fn` on live organization `org_id` under its shard's lock. */
gh_err_t gh_limits_with_org(gh_limits_t *l, const char *org_id, org_fn fn, void *arg)
{
    if (!id_ok(org_id))
        return GH_EINVAL;
    int64_t now_us = l->now_fn(l->clock_ctx);
    uint64_t hash = hash_id(org_id);
    shard_t *s = shard_of(l, hash);
    pthread_mutex_lock(&s->lock);
    org_t *o = gh_limits_org_find(s, hash, org_id);
    if (o)
        fn(o, s, now_us, arg);
    pthread_mutex_unlock(&s->lock);
    return o ? GH_OK : GH_ENOTFOUND;
}

typedef struct {
    int64_t balance_nusd, month_spent_nusd;
    int32_t month_key;
} money_t;

static void set_money(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    const money_t *m = arg;
    o->balance_nusd = m->balance_nusd;
    o->month_key = m->month_key;
    o->month_spent_nusd = m->month_spent_nusd;
    roll_month(&o->month_key, &o->month_spent_nusd, month_now(s, now_us));
}

gh_err_t gh_limits_org_set_money(gh_limits_t *l, const char *org_id, int64_t balance_nusd,
                                 int32_t month_key, int64_t month_spent_nusd)
{
    if (!month_key_ok(month_key) || month_spent_nusd < 0)
        return GH_EINVAL;
    money_t m = {balance_nusd, month_spent_nusd, month_key};
    return gh_limits_with_org(l, org_id, set_money, &m);
}

static void credit(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    (void)s, (void)now_us;
    o->balance_nusd = add_sat(o->balance_nusd, *(const int64_t *)arg);
}

gh_err_t gh_limits_credit(gh_limits_t *l, const char *org_id, int64_t delta_nusd)
{
    return gh_limits_with_org(l, org_id, credit, &delta_nusd);
}

static void forget(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    (void)now_us, (void)arg;
    o->live = false;
    o->gen++;
    for (size_t i = 0; i < s->wss_cap; i++) {
        ws_t *w = s->wss[i];
        if (w && w->org == o && w->live) {
            w->live = false;
            w->gen++;
        }
    }
}

gh_err_t gh_limits_org_forget(gh_limits_t *l, const char *org_id)
{
    return gh_limits_with_org(l, org_id, forget, NULL);
}

typedef struct {
    gh_limits_t *l;
    const char *ws_id;
    uint64_t ws_hash;
    const gh_limits_ws_cfg_t *cfg; /* ws_set */
    ws_t *fresh;                   /* ws_set: a record to use if the workspace is new */
    int32_t month_key;             /* ws_set_spend */
    int64_t month_spent_nusd;
    gh_err_t rc;
} ws_op_t;

static void ws_set(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    ws_op_t *op = arg;
    ws_t *w = *ws_slot(s->wss, s->wss_cap, o, op->ws_hash, op->ws_id);
    if (!w) {
        op->rc = ws_table_reserve(s);
        if (op->rc)
            return;
        w = op->fresh;
        op->fresh = NULL;
        memcpy(w->id, op->ws_id, strlen(op->ws_id) + 1);
        w->hash = op->ws_hash;
        w->org = o;
        *ws_slot(s->wss, s->wss_cap, o, op->ws_hash, op->ws_id) = w;
        s->wss_count++;
    }
    if (!w->live) {
        memset(&w->reserved_nusd, 0, sizeof(*w) - offsetof(ws_t, reserved_nusd));
        w->live = true;
        w->month_key = month_now(s, now_us);
    }
    w->monthly_limit_nusd = op->cfg->monthly_limit_nusd;
    set_rates(&w->buckets, op->cfg->rates, op->l->nclasses, now_us);
}

gh_err_t gh_limits_ws_set(gh_limits_t *l, const char *org_id, const char *ws_id,
                          const gh_limits_ws_cfg_t *cfg)
{
    if (!id_ok(ws_id) || cfg->monthly_limit_nusd < 0)
        return GH_EINVAL;
    for (size_t c = 0; c < l->nclasses; c++)
        if (!rates_ok(&cfg->rates[c]))
            return GH_EINVAL;
    ws_op_t op = {.l = l, .ws_id = ws_id, .ws_hash = hash_id(ws_id), .cfg = cfg};
    op.fresh = calloc(1, sizeof(*op.fresh));
    if (!op.fresh)
        return GH_ENOMEM;
    gh_err_t rc = gh_limits_with_org(l, org_id, ws_set, &op);
    free(op.fresh);
    return rc ? rc : op.rc;
}

static void ws_set_spend(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    ws_op_t *op = arg;
    ws_t *w = gh_limits_ws_find(s, o, op->ws_hash, op->ws_id);
    if (!w) {
        op->rc = GH_ENOTFOUND;
        return;
    }
    w->month_key = op->month_key;
    w->month_spent_nusd = op->month_spent_nusd;
    roll_month(&w->month_key, &w->month_spent_nusd, month_now(s, now_us));
}

gh_err_t gh_limits_ws_set_spend(gh_limits_t *l, const char *org_id, const char *ws_id,
                                int32_t month_key, int64_t month_spent_nusd)
{
    if (!id_ok(ws_id) || !month_key_ok(month_key) || month_spent_nusd < 0)
        return GH_EINVAL;
    ws_op_t op = {.l = l, .ws_id = ws_id, .ws_hash = hash_id(ws_id), .month_key = month_key,
                  .month_spent_nusd = month_spent_nusd};
    gh_err_t rc = gh_limits_with_org(l, org_id, ws_set_spend, &op);
    return rc ? rc : op.rc;
}

static void ws_forget(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    (void)now_us;
    ws_op_t *op = arg;
    ws_t *w = gh_limits_ws_find(s, o, op->ws_hash, op->ws_id);
    if (!w) {
        op->rc = GH_ENOTFOUND;
        return;
    }
    w->live = false;
    w->gen++;
}

gh_err_t gh_limits_ws_forget(gh_limits_t *l, const char *org_id, const char *ws_id)
{
    if (!id_ok(ws_id))
        return GH_EINVAL;
    ws_op_t op = {.l = l, .ws_id = ws_id, .ws_hash = hash_id(ws_id)};
    gh_err_t rc = gh_limits_with_org(l, org_id, ws_forget, &op);
    return rc ? rc : op.rc;
}

/* ---- Data plane -------------------------------------------------------------------------- */

/* The whole tokens a bucket copy holds at `now_us` (refilling the copy). */
static int64_t remaining_of(gh_bucket_t *b, int64_t now_us)
{
    int64_t remaining;
    gh_bucket_peek(b, now_us, &remaining, NULL);
    return remaining;
}

/* One kind's window from the organization's and the workspace's bucket copies (either may
 * have no limit): the binding one, the one with less left (on a tie, the lower limit). Its
 * reset is computed alone, since that is the one division here. */
static gh_limits_window_t window_of(gh_bucket_t *org_b, gh_bucket_t *ws_b, int64_t now_us)
{
    gh_limits_window_t w = {0, 0, 0};
    gh_bucket_t *b = org_b->limit_per_min ? org_b : NULL;
    int64_t remaining = b ? remaining_of(b, now_us) : 0;
    if (ws_b && ws_b->limit_per_min) {
        int64_t ws_remaining = remaining_of(ws_b, now_us);
        if (!b || ws_remaining < remaining ||
            (ws_remaining == remaining && ws_b->limit_per_min < b->limit_per_min)) {
            b = ws_b;
            remaining = ws_remaining;
        }
    }
    if (!b)
        return w;
    int64_t full_at_us;
    gh_bucket_peek(b, now_us, NULL, &full_at_us);
    w.limit = b->limit_per_min;
    w.remaining = remaining;
    w.reset_unix_s = ceil_div(full_at_us, US_PER_S);
    return w;
}

/* Fills a report from copies of the buckets of one class, taken under the lock; this runs
 * after the lock is released. */
static void report_of(gh_bucket_t org_b[GH_LIMIT_KINDS], gh_bucket_t ws_b[GH_LIMIT_KINDS],
                      int64_t now_us, gh_limits_report_t *r)
{
    gh_limits_window_t w[GH_LIMIT_KINDS];
    for (int k = 0; k < GH_LIMIT_KINDS; k++)
        w[k] = window_of(&org_b[k], ws_b ? &ws_b[k] : NULL, now_us);
    r->requests = w[GH_LIMIT_REQUESTS];
    r->input_tokens = w[GH_LIMIT_INPUT_TOKENS];
    r->output_tokens = w[GH_LIMIT_OUTPUT_TOKENS];
    gh_limits_window_t in = r->input_tokens, out = r->output_tokens;
    if (in.limit == 0 || out.limit == 0) {
        r->tokens = in.limit ? in : out;
    } else {
        r->tokens.limit = in.limit + out.limit;
        r->tokens.remaining = in.remaining + out.remaining;
        r->tokens.reset_unix_s = in.reset_unix_s > out.reset_unix_s ? in.reset_unix_s
                                                                    : out.reset_unix_s;
    }
}

/* Checks the class's buckets of one record without taking: the longest wait, and which. */
static int64_t rate_wait(gh_bucket_t b[GH_LIMIT_KINDS], const int64_t want[GH_LIMIT_KINDS],
                         int64_t now_us, int *kind)
{
    int64_t longest_us = 0;
    for (int k = 0; k < GH_LIMIT_KINDS; k++) {
        if (b[k].limit_per_min == 0)
            continue;
        int64_t n = want[k] < b[k].limit_per_min ? want[k] : b[k].limit_per_min;
        int64_t wait_us = gh_bucket_wait_us(&b[k], n, now_us);
        if (wait_us > longest_us) {
            longest_us = wait_us;
            *kind = k;
        }
    }
    return longest_us;
}

/* Takes from the class's buckets of one record (rate_wait said they suffice) and notes the
 * input and output tokens taken, -1 where there is no limit. */
void gh_limits_rate_take(gh_bucket_t b[GH_LIMIT_KINDS], const int64_t want[GH_LIMIT_KINDS],
                         int64_t now_us, int64_t taken[2])
{
    for (int k = 0; k < GH_LIMIT_KINDS; k++) {
        int64_t n = -1;
        if (b[k].limit_per_min != 0) {
            n = want[k] < b[k].limit_per_min ? want[k] : b[k].limit_per_min;
            bool ok = gh_bucket_take(&b[k], n, now_us, NULL);
            assert(ok);
            (void)ok;
        }
        if (k != GH_LIMIT_REQUESTS)
            taken[k - GH_LIMIT_INPUT_TOKENS] = n;
    }
}



/* Queues `o` for the lease thread (the caller holds s->lock). Returns whether the thread
 * needs waking: not when the organization was queued already. */
static bool want_org(shard_t *s, org_t *o)
{
    if (o->lease_want)
        return false;
    o->lease_want = true;
    if (s->nwants < LEASE_WANTS_MAX)
        s->wants[s->nwants++] = o;
    else
        s->wants_overflow = true;
    return true;
}

/* Queues `w` for the lease thread, as want_org. */
static bool want_ws(shard_t *s, ws_t *w)
{
    if (w->lease_want)
        return false;
    w->lease_want = true;
    if (s->nws_wants < LEASE_WANTS_MAX)
        s->ws_wants[s->nws_wants++] = w;
    else
        s->ws_wants_overflow = true;
    return true;
}

gh_err_t gh_limits_admit(gh_limits_t *l, const gh_admit_req_t *req, gh_admit_t *out)
{
    memset(out, 0, sizeof(*out));
    out->decision = GH_ADMIT_NO_CREDIT; /* fail closed until the organization is found */
    int c = gh_limits_class_index(l, req->model_class);
    if (c < 0 || !req->org_id || req->input_tokens_bound < 0 || req->max_output_tokens < 0 ||
        req->worst_cost_nusd < 0)
        return GH_EINVAL;
    out->class_index = c;
    bool has_ws = req->workspace_id && req->workspace_id[0];
    int64_t now_us = l->now_fn(l->clock_ctx);
    uint64_t org_hash = hash_id(req->org_id);
    uint64_t ws_hash = has_ws ? hash_id(req->workspace_id) : 0;
    const int64_t want[GH_LIMIT_KINDS] = {1, req->input_tokens_bound, req->max_output_tokens};
    int64_t worst = req->worst_cost_nusd;
    shard_t *s = shard_of(l, org_hash);
    gh_bucket_t org_b[GH_LIMIT_KINDS], ws_b[GH_LIMIT_KINDS];
    bool kick = false;

    pthread_mutex_lock(&s->lock);
    org_t *o = gh_limits_org_find(s, org_hash, req->org_id);
    if (!o) {
        pthread_mutex_unlock(&s->lock);
        return GH_ENOTFOUND;
    }
    out->decision = GH_ADMIT_OK;
    ws_t *w = has_ws ? gh_limits_ws_find(s, o, ws_hash, req->workspace_id) : NULL;
    int32_t key = month_now(s, now_us);
    roll_month(&o->month_key, &o->month_spent_nusd, key);
    if (w)
        roll_month(&w->month_key, &w->month_spent_nusd, key);
    int64_t org_limit = lower_limit(o->monthly_limit_nusd, o->tier_cap_nusd);

    bool wake = false, ws_wake = false;
    /* Cluster: a workspace with a monthly limit is admitted only within its lease too. */
    bool ws_leased = l->leases_on && w && w->monthly_limit_nusd > 0;
    int64_t answered_at = o->lease_answered_at_us;
    if (ws_leased && worst > w->lease_worst_nusd)
        w->lease_worst_nusd = worst;
    int64_t wait_since = req->lease_wait_since_us ? req->lease_wait_since_us : now_us;
    out->lease_wait_since_us = wait_since;
    if (l->leases_on && worst > o->lease_worst_nusd)
        o->lease_worst_nusd = worst;
    if (l->leases_on && worst > 0 && now_us >= o->lease_deadline_us) {
        /* The fence: no lease, or one the database may already have taken back. */
        bool down = atomic_load(&l->db_down);
        out->decision = down ? GH_ADMIT_LEASE_LAPSED : GH_ADMIT_NO_CREDIT;
        out->lease_wait = !down && o->lease_dry_at_us < wait_since;
        if (!down && o->lease_month_bound) {
            out->decision = GH_ADMIT_ORG_MONTHLY_LIMIT;
            out->monthly_limit_nusd = o->lease_limit_nusd;
        }
        wake = true;
    } else if (worst > sub_sat(o->balance_nusd, o->reserved_nusd)) {
        out->decision = GH_ADMIT_NO_CREDIT;
        wake = l->leases_on;
        bool down = wake && atomic_load(&l->db_down);
        out->lease_wait = wake && o->lease_dry_at_us < wait_since && !down;
        if (down) /* more could be leased, were the database there */
            out->decision = GH_ADMIT_LEASE_LAPSED;
        else if (wake && o->lease_month_bound) {
            out->decision = GH_ADMIT_ORG_MONTHLY_LIMIT;
            out->monthly_limit_nusd = o->lease_limit_nusd;
        }
    } else if (org_limit &&
               add_sat(add_sat(o->month_spent_nusd, o->reserved_nusd), worst) > org_limit) {
        out->decision = GH_ADMIT_ORG_MONTHLY_LIMIT;
        out->monthly_limit_nusd = org_limit;
    } else if (w && w->monthly_limit_nusd &&
               add_sat(add_sat(w->month_spent_nusd, w->reserved_nusd), worst) >
                   w->monthly_limit_nusd) {
        out->decision = GH_ADMIT_WS_MONTHLY_LIMIT;
        out->monthly_limit_nusd = w->monthly_limit_nusd;
    } else if (ws_leased && worst > 0 &&
               (now_us >= w->lease_deadline_us ||
                worst > sub_sat(w->lease_nusd, w->reserved_nusd))) {
        /* No lease of the workspace's headroom, a fenced one, or too little of it: as for the
         * organization's money, wait for a refill unless an ask sent since came back dry. */
        bool down = atomic_load(&l->db_down);
        out->decision = down ? GH_ADMIT_LEASE_LAPSED : GH_ADMIT_WS_MONTHLY_LIMIT;
        out->monthly_limit_nusd = w->monthly_limit_nusd;
        out->lease_wait = !down && w->lease_dry_at_us < wait_since;
        answered_at = w->lease_answered_at_us;
        ws_wake = true;
    } else {
        int org_kind = 0, ws_kind = 0;
        int64_t org_wait_us = rate_wait(o->buckets[c], want, now_us, &org_kind);
        int64_t ws_wait_us = w ? rate_wait(w->buckets[c], want, now_us, &ws_kind) : 0;
        if (l->rate_shared && (org_wait_us > 0 || ws_wait_us > 0)) {
            /* The cluster's bucket holds a little less than this node's (limits.h): a
             * retry-after from the local bucket alone would be early by the time it takes to
             * refill the difference. */
            if (org_wait_us > 0)
                org_wait_us += gh_limits_capacity_gap_us(l, &o->buckets[c][org_kind]);
            if (ws_wait_us > 0)
                ws_wait_us += gh_limits_capacity_gap_us(l, &w->buckets[c][ws_kind]);
        } else if (l->rate_shared) {
            int pending = 0;
            org_wait_us = gh_limits_share_wait(l, o->buckets[c], o->shares[c], want, now_us,
                                               &org_kind, &pending);
            if (w)
                ws_wait_us = gh_limits_share_wait(l, w->buckets[c], w->shares[c], want, now_us,
                                                  &ws_kind, &pending);
            /* Pending only when every short share may still be served by a draw. */
            out->rate_pending = pending == 1;
            kick = pending != 0;
            if (out->rate_pending && atomic_load_explicit(&l->rate_unavailable,
                                                          memory_order_relaxed)) {
                out->rate_pending = false;
                out->rate_unavailable = true;
            }
        }
        if (org_wait_us > 0 || ws_wait_us > 0) {
            bool by_ws = ws_wait_us > org_wait_us;
            out->decision = GH_ADMIT_RATE_LIMITED;
            out->limited_by_workspace = by_ws;
            out->limited_kind = (gh_limit_kind_t)(by_ws ? ws_kind : org_kind);
            out->limited_per_min =
                (by_ws ? w->buckets : o->buckets)[c][out->limited_kind].limit_per_min;
            out->retry_after_s = ceil_div(by_ws ? ws_wait_us : org_wait_us, US_PER_S);
        } else {
            gh_limits_hold_t *h = &out->hold;
            gh_limits_rate_take(o->buckets[c], want, now_us, h->taken[0]);
            if (l->rate_shared)
                gh_limits_share_take(l, o->buckets[c], o->shares[c], want, now_us);
            h->taken[1][0] = h->taken[1][1] = -1;
            o->reserved_nusd += worst;
            o->in_flight++;
            if (w) {
                gh_limits_rate_take(w->buckets[c], want, now_us, h->taken[1]);
                if (l->rate_shared)
                    gh_limits_share_take(l, w->buckets[c], w->shares[c], want, now_us);
                w->reserved_nusd += worst;
                w->in_flight++;
                h->ws = w;
                h->ws_gen = w->gen;
            }
            h->org = o;
            h->org_gen = o->gen;
            h->class_index = c;
            h->cost_nusd = worst;
            h->held = true;
            if (l->leases_on) {
                o->lease_admitted++;
                wake = sub_sat(o->balance_nusd, o->reserved_nusd) < o->lease_low_nusd;
            }
            if (ws_leased) {
                w->lease_admitted++;
                ws_wake = sub_sat(w->lease_nusd, w->reserved_nusd) < w->lease_low_nusd;
            }
        }
    }
    if (wake)
        wake = want_org(s, o);
    if (ws_wake && want_ws(s, w))
        wake = true;
    if (out->lease_wait)
        out->lease_unanswered = answered_at < wait_since;
    if (out->decision == GH_ADMIT_OK)
        s->admitted++;
    else
        s->refused[out->decision]++;
    memcpy(org_b, o->buckets[c], sizeof(org_b));
    if (w)
        memcpy(ws_b, w->buckets[c], sizeof(ws_b));
    out->regain_unix_s = s->month_end_us / US_PER_S;
    pthread_mutex_unlock(&s->lock);

    if (kick && l->kick)
        l->kick(l->kick_ctx);
    report_of(org_b, w ? ws_b : NULL, now_us, &out->report);
    if (wake)
        l->want_fn(l->want_ctx);
    return GH_OK;
}

/* Corrects one record's input and output buckets from what was taken to what was used. */
static void correct(gh_bucket_t b[GH_LIMIT_KINDS], const int64_t taken[2], const int64_t used[2],
                    int64_t now_us)
{
    for (int i = 0; i < 2; i++) {
        gh_bucket_t *bk = &b[GH_LIMIT_INPUT_TOKENS + i];
        /* Skip buckets that had no limit at admission or have none now. */
        if (taken[i] < 0 || bk->limit_per_min == 0)
            continue;
        if (used[i] < taken[i])
            gh_bucket_give(bk, taken[i] - used[i], now_us);
        else if (used[i] > taken[i])
            gh_bucket_charge(bk, used[i] - taken[i], now_us);
    }
}

gh_err_t gh_limits_settle(gh_limits_t *l, gh_limits_hold_t *hold, int64_t actual_input_tokens,
                          int64_t actual_output_tokens, int64_t actual_cost_nusd)
{
    if (!hold->held)
        return GH_EINVAL;
    hold->held = false;
    const int64_t used[2] = {actual_input_tokens > 0 ? actual_input_tokens : 0,
                             actual_output_tokens > 0 ? actual_output_tokens : 0};
    int64_t cost = actual_cost_nusd > 0 ? actual_cost_nusd : 0;
    int64_t now_us = l->now_fn(l->clock_ctx);
    /* hash never changes after the record is published, and the hold was made under the
     * lock that published it. */
    org_t *o = hold->org;
    shard_t *s = shard_of(l, o->hash);
    gh_err_t rc = GH_OK;
    int c = hold->class_index;

    pthread_mutex_lock(&s->lock);
    if (!o->live || o->gen != hold->org_gen) {
        rc = GH_ENOTFOUND;
        goto out_unlock;
    }
    int32_t key = month_now(s, now_us);
    roll_month(&o->month_key, &o->month_spent_nusd, key);
    o->reserved_nusd -= hold->cost_nusd;
    o->in_flight--;
    assert(o->reserved_nusd >= 0 && o->in_flight >= 0);
    o->balance_nusd = sub_sat(o->balance_nusd, cost);
    o->month_spent_nusd = add_sat(o->month_spent_nusd, cost);
    o->lease_spent_nusd = add_sat(o->lease_spent_nusd, cost);
    correct(o->buckets[c], hold->taken[0], used, now_us);
    if (l->rate_shared)
        gh_limits_share_correct(l, o->buckets[c], o->shares[c], hold->taken[0], used, now_us);
    ws_t *w = hold->ws;
    if (w && w->live && w->gen == hold->ws_gen) {
        roll_month(&w->month_key, &w->month_spent_nusd, key);
        w->reserved_nusd -= hold->cost_nusd;
        w->in_flight--;
        assert(w->reserved_nusd >= 0 && w->in_flight >= 0);
        w->month_spent_nusd = add_sat(w->month_spent_nusd, cost);
        if (l->leases_on) { /* the usage writer shrinks the lease row by the same cost */
            w->lease_nusd = sub_sat(w->lease_nusd, cost);
            w->lease_spent_nusd = add_sat(w->lease_spent_nusd, cost);
        }
        correct(w->buckets[c], hold->taken[1], used, now_us);
        if (l->rate_shared)
            gh_limits_share_correct(l, w->buckets[c], w->shares[c], hold->taken[1], used, now_us);
    }
    s->settled++;
    if (cost > hold->cost_nusd) {
        s->overruns++;
        s->overrun_nusd = add_sat(s->overrun_nusd, cost - hold->cost_nusd);
    }
out_unlock:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

typedef struct {
    const char *ws_id;
    uint64_t ws_hash;
    int64_t cost_nusd;
    bool leases_on;
} record_t;

static void record(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    const record_t *r = arg;
    int32_t key = month_now(s, now_us);
    roll_month(&o->month_key, &o->month_spent_nusd, key);
    o->balance_nusd = sub_sat(o->balance_nusd, r->cost_nusd);
    o->month_spent_nusd = add_sat(o->month_spent_nusd, r->cost_nusd);
    ws_t *w = r->ws_id ? gh_limits_ws_find(s, o, r->ws_hash, r->ws_id) : NULL;
    if (w) {
        roll_month(&w->month_key, &w->month_spent_nusd, key);
        w->month_spent_nusd = add_sat(w->month_spent_nusd, r->cost_nusd);
        if (r->leases_on)
            w->lease_nusd = sub_sat(w->lease_nusd, r->cost_nusd);
    }
}

gh_err_t gh_limits_record(gh_limits_t *l, const char *org_id, const char *ws_id,
                          int64_t cost_nusd)
{
    bool has_ws = ws_id && ws_id[0] && strnlen(ws_id, GH_ID_MAX) < GH_ID_MAX;
    record_t r = {has_ws ? ws_id : NULL, has_ws ? hash_id(ws_id) : 0,
                  cost_nusd > 0 ? cost_nusd : 0, l->leases_on};
    return gh_limits_with_org(l, org_id, record, &r);
}

gh_err_t gh_limits_peek(gh_limits_t *l, const char *org_id, const char *ws_id,
                        const char *model_class, gh_limits_report_t *out)
{
    int c = gh_limits_class_index(l, model_class);
    if (c < 0 || !id_ok(org_id))
        return GH_EINVAL;
    bool has_ws = ws_id && ws_id[0];
    int64_t now_us = l->now_fn(l->clock_ctx);
    uint64_t hash = hash_id(org_id), ws_hash = has_ws ? hash_id(ws_id) : 0;
    shard_t *s = shard_of(l, hash);
    gh_bucket_t org_b[GH_LIMIT_KINDS], ws_b[GH_LIMIT_KINDS];

    pthread_mutex_lock(&s->lock);
    org_t *o = gh_limits_org_find(s, hash, org_id);
    ws_t *w = o && has_ws ? gh_limits_ws_find(s, o, ws_hash, ws_id) : NULL;
    if (o)
        memcpy(org_b, o->buckets[c], sizeof(org_b));
    if (w)
        memcpy(ws_b, w->buckets[c], sizeof(ws_b));
    pthread_mutex_unlock(&s->lock);
    if (!o)
        return GH_ENOTFOUND;
    report_of(org_b, w ? ws_b : NULL, now_us, out);
    return GH_OK;
}

/* ---- Answers ----------------------------------------------------------------------------- */

static const char *kind_text(gh_limit_kind_t k)
{
    switch (k) {
    case GH_LIMIT_REQUESTS:
        return "requests";
    case GH_LIMIT_INPUT_TOKENS:
        return "input tokens";
    default:
        return "output tokens";
    }
}

gh_err_t gh_limits_refusal(const gh_limits_t *l, const gh_admit_t *a, char *msg,
                           size_t msg_size)
{
    char usd[GH_MONEY_TEXT_MAX], date[GH_UTC_RFC3339_MAX];
    switch (a->decision) {
    case GH_ADMIT_OK:
    case GH_ADMIT_DECISIONS:
        break;
    case GH_ADMIT_NO_CREDIT:
        snprintf(msg, msg_size, "Your credit balance is too low to access the API. Please go "
                                "to Plans & Billing to upgrade or purchase credits.");
        return GH_EINVAL;
    case GH_ADMIT_LEASE_LAPSED:
        snprintf(msg, msg_size,
                 "This Gatehouse node cannot reach its database, and the credit it had set "
                 "aside for your organization has run out or lapsed. Please retry shortly; "
                 "another node may be able to serve you.");
        return GH_EUNAVAIL;
    case GH_ADMIT_ORG_MONTHLY_LIMIT:
    case GH_ADMIT_WS_MONTHLY_LIMIT:
        gh_money_format_usd(a->monthly_limit_nusd, usd);
        gh_utc_rfc3339(a->regain_unix_s, date);
        date[10] = '\0'; /* the date alone */
        snprintf(msg, msg_size,
                 "You have reached %s monthly spend limit of $%s. You will regain access on "
                 "%s at 00:00 UTC, or sooner if an admin raises the limit.",
                 a->decision == GH_ADMIT_WS_MONTHLY_LIMIT ? "this workspace's"
                                                          : "your organization's",
                 usd, date);
        return GH_EINVAL;
    case GH_ADMIT_RATE_LIMITED:
        if (a->rate_unavailable) {
            snprintf(msg, msg_size,
                     "Gatehouse cannot reach its database to renew this node's share of your "
                     "rate limits, and the safe share it may use meanwhile is spent, so it "
                     "cannot admit more requests without risking your limits. "
                     "Please retry in a few seconds.");
            return GH_EUNAVAIL;
        }
        snprintf(msg, msg_size,
                 "This request would exceed %s rate limit of %lld %s per minute for %s models. "
                 "Please retry after %lld second%s; the anthropic-ratelimit-* response headers "
                 "show the current usage.",
                 a->limited_by_workspace ? "this workspace's" : "your organization's",
                 (long long)a->limited_per_min, kind_text(a->limited_kind),
                 l->classes[a->class_index], (long long)a->retry_after_s,
                 a->retry_after_s == 1 ? "" : "s");
        return GH_ERATE;
    }
    msg[0] = '\0';
    return GH_OK;
}

#define HDR(s) s, sizeof(s) - 1

static void add_header(gh_limits_headers_t *out, const char *name, size_t name_len, int64_t v,
                       bool time)
{
    assert(out->count < GH_LIMITS_HEADERS_MAX);
    static_assert(GH_UTC_RFC3339_MAX <= GH_LIMITS_VALUE_MAX, "a time fits a value");
    static_assert(GH_U64_TEXT_MAX <= GH_LIMITS_VALUE_MAX, "a number fits a value");
    char *value = out->values[out->count];
    gh_limits_header_t *h = &out->h[out->count++];
    h->name = name;
    h->name_len = name_len;
    h->value = value;
    h->value_len = time ? gh_utc_rfc3339(v, value) : gh_u64_text(value, v < 0 ? 0 : (uint64_t)v);
}

size_t gh_limits_format_headers(const gh_admit_t *a, gh_limits_headers_t *out)
{
    static const struct {
        const char *limit, *remaining, *reset;
        size_t limit_len, remaining_len, reset_len;
    } names[4] = {
#define NAMES(kind)                                                                              \
    {"anthropic-ratelimit-" kind "-limit", "anthropic-ratelimit-" kind "-remaining",             \
     "anthropic-ratelimit-" kind "-reset", sizeof("anthropic-ratelimit-" kind "-limit") - 1,     \
     sizeof("anthropic-ratelimit-" kind "-remaining") - 1,                                       \
     sizeof("anthropic-ratelimit-" kind "-reset") - 1}
        NAMES("requests"), NAMES("input-tokens"), NAMES("output-tokens"), NAMES("tokens"),
#undef NAMES
    };
    const gh_limits_window_t *w[4] = {&a->report.requests, &a->report.input_tokens,
                                      &a->report.output_tokens, &a->report.tokens};
    out->count = 0;
    for (int i = 0; i < 4; i++) {
        if (w[i]->limit == 0)
            continue;
        add_header(out, names[i].limit, names[i].limit_len, w[i]->limit, false);
        add_header(out, names[i].remaining, names[i].remaining_len, w[i]->remaining, false);
        add_header(out, names[i].reset, names[i].reset_len, w[i]->reset_unix_s, true);
    }
    if (a->decision == GH_ADMIT_RATE_LIMITED)
        add_header(out, HDR("retry-after"), a->retry_after_s, false);
    return out->count;
}

/* ---- Inspection -------------------------------------------------------------------------- */

static void org_get(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    gh_limits_org_state_t *st = arg;
    roll_month(&o->month_key, &o->month_spent_nusd, month_now(s, now_us));
    st->balance_nusd = o->balance_nusd;
    st->reserved_nusd = o->reserved_nusd;
    st->month_key = o->month_key;
    st->month_spent_nusd = o->month_spent_nusd;
    st->monthly_limit_nusd = lower_limit(o->monthly_limit_nusd, o->tier_cap_nusd);
    st->in_flight = o->in_flight;
}

gh_err_t gh_limits_org_get(gh_limits_t *l, const char *org_id, gh_limits_org_state_t *out)
{
    memset(out, 0, sizeof(*out));
    return gh_limits_with_org(l, org_id, org_get, out);
}

typedef struct {
    ws_op_t op;
    gh_limits_ws_state_t *st;
} ws_get_t;

static void ws_get(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    ws_get_t *g = arg;
    ws_t *w = gh_limits_ws_find(s, o, g->op.ws_hash, g->op.ws_id);
    if (!w) {
        g->op.rc = GH_ENOTFOUND;
        return;
    }
    roll_month(&w->month_key, &w->month_spent_nusd, month_now(s, now_us));
    g->st->reserved_nusd = w->reserved_nusd;
    g->st->month_key = w->month_key;
    g->st->month_spent_nusd = w->month_spent_nusd;
    g->st->monthly_limit_nusd = w->monthly_limit_nusd;
    g->st->in_flight = w->in_flight;
}

gh_err_t gh_limits_ws_get(gh_limits_t *l, const char *org_id, const char *ws_id,
                          gh_limits_ws_state_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!id_ok(ws_id))
        return GH_EINVAL;
    ws_get_t g = {{.l = l, .ws_id = ws_id, .ws_hash = hash_id(ws_id)}, out};
    gh_err_t rc = gh_limits_with_org(l, org_id, ws_get, &g);
    return rc ? rc : g.op.rc;
}

void gh_limits_stats(gh_limits_t *l, gh_limits_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < GH_LIMITS_SHARDS; i++) {
        shard_t *s = &l->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t j = 0; j < s->orgs_cap; j++)
            out->orgs += s->orgs[j] && s->orgs[j]->live;
        for (size_t j = 0; j < s->wss_cap; j++)
            out->workspaces += s->wss[j] && s->wss[j]->live;
        out->admitted += s->admitted;
        out->settled += s->settled;
        for (int d = 0; d < GH_ADMIT_DECISIONS; d++)
            out->refused[d] += s->refused[d];
        out->overruns += s->overruns;
        out->overrun_nusd = add_sat(out->overrun_nusd, s->overrun_nusd);
        pthread_mutex_unlock(&s->lock);
    }
}
