/* The admission engine (limits.h). Each shard is a mutex and two open-addressing tables of
 * pointers, one for organizations and one for workspaces (keyed by organization and id, in
 * the organization's shard), so that one mutex covers everything an admission reads and
 * writes. Records sit at fixed addresses: tables grow by copying pointers, and nothing is
 * freed before gh_limits_free. */
#include "core/limits.h"

#include <assert.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/bucket.h"
#include "lib/crypto.h"
#include "lib/money.h"
#include "lib/utc.h"
#include "store/store.h"

#define SHARD_BITS 6
static_assert(GH_LIMITS_SHARDS == 1 << SHARD_BITS, "shards are a power of two");
#define TABLE_CAP_MIN 16
#define LEASE_WANTS_MAX 32 /* per shard, between two drains by the lease thread */
#define US_PER_S INT64_C(1000000)

/* A bucket whose limit_per_min is 0 is no limit at all; gh_bucket_* never sees it. */
typedef gh_bucket_t buckets_t[GH_LIMITS_CLASSES_MAX][GH_LIMIT_KINDS];

/* This node's share of a cluster-wide bucket (rate shares, limits.h): the two newest grants,
 * slot 0 the older (it expires first and is spent first), each never holding more than it was
 * granted. Unused in single-node mode. */
typedef struct {
    int64_t avail[2], granted[2], exp_us[2];
    int64_t debt;         /* used beyond what was taken; the next grants pay it first */
    int64_t taken;        /* tokens taken since the lease thread last looked */
    int64_t starved;      /* tokens refused for want of a share since it last looked */
    int64_t starved_max;  /* the largest such take */
    int64_t dry_until_us; /* the cluster's bucket was found empty: short means refused */
    int64_t last_use_us;  /* the last take or refusal */
    /* The safe local share while draws fail (share_fallback): limit_per_min 0 is none. Made
     * for the outage that began at fb_since_us, empty then. */
    gh_bucket_t fb;
    int64_t fb_since_us;
} share_t;
typedef share_t shares_t[GH_LIMITS_CLASSES_MAX][GH_LIMIT_KINDS];

struct gh_limits_org {
    char id[GH_ID_MAX];
    uint64_t hash;
    uint32_t gen; /* bumped when forgotten: holds of an older generation are ignored */
    bool live;
    int64_t balance_nusd;
    int64_t reserved_nusd;
    int32_t month_key;
    int64_t month_spent_nusd;
    int64_t monthly_limit_nusd;
    int64_t tier_cap_nusd;
    int64_t in_flight;
    buckets_t buckets;
    /* Cluster money (gh_limits_lease_*): meaningful only when l->leases_on. */
    int64_t lease_deadline_us; /* admitted only while now < this */
    int64_t lease_low_nusd;    /* unreserved below this: ask for a refill */
    int64_t lease_limit_nusd;  /* the monthly limit that bounded the lease, if month_bound */
    int64_t lease_dry_at_us; /* when the last ask that got nothing was sent */
    int64_t lease_answered_at_us; /* when the last ask the database answered was sent */
    bool lease_month_bound;
    bool lease_want; /* in its shard's want list (or the list overflowed) */
    int64_t lease_worst_nusd;
    uint64_t lease_admitted;
    int64_t lease_spent_nusd;
    shares_t shares; /* last: cleared with the rest when the record is revived */
};

struct gh_limits_ws {
    char id[GH_ID_MAX];
    uint64_t hash;
    struct gh_limits_org *org;
    uint32_t gen;
    bool live;
    int64_t reserved_nusd;
    int32_t month_key;
    int64_t month_spent_nusd;
    int64_t monthly_limit_nusd;
    int64_t in_flight;
    /* Cluster money, a workspace with a monthly limit (gh_limits_ws_lease_*): this node's
     * lease of the workspace's monthly headroom, spent like the organization's balance. */
    int64_t lease_nusd;
    int64_t lease_deadline_us, lease_low_nusd, lease_dry_at_us, lease_answered_at_us;
    int64_t lease_worst_nusd, lease_spent_nusd;
    uint64_t lease_admitted;
    bool lease_want;
    buckets_t buckets;
    shares_t shares;
};

typedef struct gh_limits_org org_t;
typedef struct gh_limits_ws ws_t;

/* Shards are cache-line aligned so that two loop threads working on different shards do
 * not share a line. */
typedef struct {
    alignas(64) pthread_mutex_t lock;
    org_t **orgs;
    size_t orgs_cap, orgs_count;
    ws_t **wss;
    size_t wss_cap, wss_count;
    /* The month `month_key` spans [month_start_us, month_end_us): computed once a month. */
    int32_t month_key;
    int64_t month_start_us, month_end_us;
    uint64_t admitted, settled, refused[GH_ADMIT_DECISIONS], overruns;
    int64_t overrun_nusd;
    /* Organizations that want lease money (leases on): the lease thread drains them. */
    org_t *wants[LEASE_WANTS_MAX];
    size_t nwants;
    bool wants_overflow; /* more wanted than fit: the drain scans the shard */
    ws_t *ws_wants[LEASE_WANTS_MAX]; /* the same for workspace leases */
    size_t nws_wants;
    bool ws_wants_overflow;
} shard_t;

struct gh_limits {
    shard_t shards[GH_LIMITS_SHARDS];
    gh_limits_clock_fn now_fn;
    void *clock_ctx;
    bool leases_on; /* set once, before the data plane starts */
    gh_limits_want_fn want_fn;
    void *want_ctx;
    atomic_bool db_down;
    size_t nclasses;
    char classes[GH_LIMITS_CLASSES_MAX][GH_LIMITS_CLASS_NAME_MAX];
    /* Rate shares (cluster mode): set once before the data plane starts. */
    bool rate_shared;
    _Atomic bool rate_unavailable;
    _Atomic int64_t rate_down_since_us; /* when draws began failing (set before the flag) */
    _Atomic int64_t rate_nodes;         /* N, from the last successful draw (0: none yet) */
    _Atomic int64_t rate_nodes_seen_us; /* ... and when */
    int64_t share_ttl_us;
    void (*kick)(void *ctx);
    void *kick_ctx;
};

/* ---- Small helpers ----------------------------------------------------------------------- */

/* A word-at-a-time multiplicative hash of the id with a final avalanche, so that the top
 * bits (the shard) and the low bits (the slot) are both well mixed. Ids are made by us, not
 * by clients, so no keyed hash is needed against chosen collisions. */
static uint64_t hash_id(const char *id)
{
    size_t len = strlen(id);
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)len;
    for (; len >= 8; id += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, id, 8);
        h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 29;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, id, len);
        h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

static shard_t *shard_of(gh_limits_t *l, uint64_t hash)
{
    return &l->shards[hash >> (64 - SHARD_BITS)];
}

static bool id_ok(const char *id)
{
    return id && id[0] && strnlen(id, GH_ID_MAX) < GH_ID_MAX;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sub_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* A month key as gh_utc_month_key makes them: YYYYMM with a month of 1 to 12. */
static bool month_key_ok(int32_t key)
{
    return key > 0 && key % 100 >= 1 && key % 100 <= 12;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a / b + (a % b > 0);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* The lower of two limits where 0 means none. */
static int64_t lower_limit(int64_t a, int64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

static bool rates_ok(const gh_rate_limits_t *r)
{
    int64_t v[GH_LIMIT_KINDS] = {r->requests_per_min, r->input_tokens_per_min,
                                 r->output_tokens_per_min};
    for (int k = 0; k < GH_LIMIT_KINDS; k++)
        if (v[k] < 0 || v[k] > GH_BUCKET_LIMIT_MAX)
            return false;
    return true;
}

/* Applies new rates to a record's buckets, live. */
static void set_rates(buckets_t *b, const gh_rate_limits_t *rates, size_t nclasses,
                      int64_t now_us)
{
    for (size_t c = 0; c < nclasses; c++) {
        int64_t v[GH_LIMIT_KINDS] = {rates[c].requests_per_min, rates[c].input_tokens_per_min,
                                     rates[c].output_tokens_per_min};
        for (int k = 0; k < GH_LIMIT_KINDS; k++) {
            gh_bucket_t *bk = &(*b)[c][k];
            if (v[k] == 0)
                bk->limit_per_min = 0;
            else if (bk->limit_per_min == 0)
                gh_bucket_init(bk, v[k], now_us);
            else
                gh_bucket_set_limit(bk, v[k], now_us);
        }
    }
}

/* The current month, from the shard's cache unless `now_us` has left the cached month. */
static int32_t month_now(shard_t *s, int64_t now_us)
{
    if (now_us < s->month_start_us || now_us >= s->month_end_us) {
        int64_t now_s = floor_div(now_us, US_PER_S);
        s->month_key = gh_utc_month_key(now_s);
        s->month_start_us = gh_utc_month_start_s(now_s) * US_PER_S;
        s->month_end_us = gh_utc_next_month_s(now_s) * US_PER_S;
    }
    return s->month_key;
}

/* A new month starts its spend at zero. Only forward: if the clock steps back into the
 * previous month, the spend already counted stays (the safe side of a limit). */
static void roll_month(int32_t *key, int64_t *spent_nusd, int32_t now_key)
{
    if (now_key > *key) {
        *key = now_key;
        *spent_nusd = 0;
    }
}

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

static org_t *org_find(shard_t *s, uint64_t hash, const char *id)
{
    org_t *o = *org_slot(s->orgs, s->orgs_cap, hash, id);
    return o && o->live ? o : NULL;
}

/* The live workspace `id` of `org`, or NULL. */
static ws_t *ws_find(shard_t *s, const org_t *org, uint64_t hash, const char *id)
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
typedef void (*org_fn)(org_t *o, shard_t *s, int64_t now_us, void *arg);

static gh_err_t with_org(gh_limits_t *l, const char *org_id, org_fn fn, void *arg)
{
    if (!id_ok(org_id))
        return GH_EINVAL;
    int64_t now_us = l->now_fn(l->clock_ctx);
    uint64_t hash = hash_id(org_id);
    shard_t *s = shard_of(l, hash);
    pthread_mutex_lock(&s->lock);
    org_t *o = org_find(s, hash, org_id);
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
    return with_org(l, org_id, set_money, &m);
}

static void credit(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    (void)s, (void)now_us;
    o->balance_nusd = add_sat(o->balance_nusd, *(const int64_t *)arg);
}

gh_err_t gh_limits_credit(gh_limits_t *l, const char *org_id, int64_t delta_nusd)
{
    return with_org(l, org_id, credit, &delta_nusd);
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
    return with_org(l, org_id, forget, NULL);
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
    gh_err_t rc = with_org(l, org_id, ws_set, &op);
    free(op.fresh);
    return rc ? rc : op.rc;
}

static void ws_set_spend(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    ws_op_t *op = arg;
    ws_t *w = ws_find(s, o, op->ws_hash, op->ws_id);
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
    gh_err_t rc = with_org(l, org_id, ws_set_spend, &op);
    return rc ? rc : op.rc;
}

static void ws_forget(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    (void)now_us;
    ws_op_t *op = arg;
    ws_t *w = ws_find(s, o, op->ws_hash, op->ws_id);
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
    gh_err_t rc = with_org(l, org_id, ws_forget, &op);
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
static void rate_take(gh_bucket_t b[GH_LIMIT_KINDS], const int64_t want[GH_LIMIT_KINDS],
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

/* ---- Rate shares (cluster mode) ------------------------------------------------------------ */

/* Empties the grants whose time is up: what they still held lapses. */
static void share_expire(share_t *sh, int64_t now_us)
{
    for (int i = 0; i < 2; i++)
        if (sh->granted[i] != 0 && now_us >= sh->exp_us[i])
            sh->avail[i] = sh->granted[i] = 0;
    if (sh->granted[0] == 0 && sh->granted[1] != 0) {
        /* Keep the older grant in slot 0. */
        sh->avail[0] = sh->avail[1], sh->granted[0] = sh->granted[1];
        sh->exp_us[0] = sh->exp_us[1];
        sh->avail[1] = sh->granted[1] = 0;
    }
}

/* What the share may spend now: its live grants less its debt (may be negative). */
static int64_t share_level(share_t *sh, int64_t now_us)
{
    share_expire(sh, now_us);
    return sh->avail[0] + sh->avail[1] - sh->debt;
}

/* What a take of `want` takes from a share: as from the bucket, cut to what the cluster's
 * bucket can hold (its capacity is a little below the limit, see limits.h), so that a take
 * above it waits for a full share instead of never passing. */
static int64_t share_take_of(const gh_limits_t *l, const gh_bucket_t *b, int64_t want)
{
    int64_t cap = gh_limits_rate_central_capacity(b->limit_per_min, l->share_ttl_us);
    return want < cap ? want : cap;
}

/* The time a bucket of the cluster takes to refill what its capacity lacks of the limit. */
static int64_t capacity_gap_us(const gh_limits_t *l, const gh_bucket_t *b)
{
    int64_t gap = b->limit_per_min - gh_limits_rate_central_capacity(b->limit_per_min,
                                                                      l->share_ttl_us);
    return gap > 0 ? ceil_div(gap * 60 * US_PER_S, b->limit_per_min) : 0;
}

/* A share's safe local share while draws fail (limits.h): made empty at the start of the outage
 * and refilled at the cluster's capacity / N a minute, N the nodes that held money leases in the
 * minute before the node's last successful draw, which must have been less than a minute
 * before the outage began. NULL when draws are not failing, or when there is no such N, or
 * when the capacity / N is below one token a minute. The caller holds the shard's lock. */
static gh_bucket_t *share_fallback(const gh_limits_t *l, const gh_bucket_t *b, share_t *sh)
{
    if (!atomic_load_explicit(&l->rate_unavailable, memory_order_acquire))
        return NULL;
    int64_t down_us = atomic_load_explicit(&l->rate_down_since_us, memory_order_relaxed);
    if (sh->fb_since_us != down_us) {
        int64_t nodes = atomic_load_explicit(&l->rate_nodes, memory_order_relaxed);
        int64_t seen_us = atomic_load_explicit(&l->rate_nodes_seen_us, memory_order_relaxed);
        int64_t cap = gh_limits_rate_central_capacity(b->limit_per_min, l->share_ttl_us);
        int64_t limit = nodes > 0 && down_us - seen_us <= GH_LIMITS_RATE_NODES_FRESH_US
                            ? cap / nodes
                            : 0;
        sh->fb_since_us = down_us;
        sh->fb = (gh_bucket_t){0, 0, down_us};
        if (limit > 0) {
            gh_bucket_init(&sh->fb, limit, down_us);
            sh->fb.level = 0; /* empty at the outage's start: see the bound in limits.h */
        }
    }
    return sh->fb.limit_per_min > 0 ? &sh->fb : NULL;
}

/* What a take of `n` takes from a safe local share: cut to its capacity, as share_take_of cuts
 * to the cluster's, so that a large take waits for a full bucket instead of never passing. */
static int64_t fallback_take_of(const gh_bucket_t *fb, int64_t n)
{
    return n < fb->limit_per_min ? n : fb->limit_per_min;
}

/* Checks this node's shares of the class's buckets that have a limit, for the takes that
 * rate_take would make. Returns `longest_us` or a longer wait, updating `*kind`. A short
 * share is starved (its demand noted for the lease thread); `*pending` gets bit 0 when one may
 * be served by a draw and bit 1 when one's cluster bucket is dry (a plain rate limit, whose
 * wait is until the bucket is expected to have refilled). */
static int64_t share_wait(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
                          share_t sh[GH_LIMIT_KINDS], const int64_t want[GH_LIMIT_KINDS],
                          int64_t now_us, int *kind, int *pending)
{
    int64_t longest_us = 0;
    for (int k = 0; k < GH_LIMIT_KINDS; k++) {
        if (b[k].limit_per_min == 0)
            continue;
        int64_t n = share_take_of(l, &b[k], want[k]);
        if (n == 0 || share_level(&sh[k], now_us) >= n)
            continue;
        gh_bucket_t *fb = share_fallback(l, &b[k], &sh[k]);
        if (fb && gh_bucket_wait_us(fb, fallback_take_of(fb, n), now_us) == 0)
            continue; /* the safe local share serves it (share_take) */
        sh[k].last_use_us = now_us;
        sh[k].starved = add_sat(sh[k].starved, n);
        if (n > sh[k].starved_max)
            sh[k].starved_max = n;
        /* A share a draw may serve waits "a moment" (a refusal after the gateway gave up
         * parking says one second); a dry one waits longer and is the one reported. */
        int64_t wait_us = 1;
        if (now_us < sh[k].dry_until_us) {
            wait_us = sh[k].dry_until_us - now_us;
            *pending |= 2;
        } else {
            *pending |= 1;
        }
        if (wait_us > longest_us) {
            longest_us = wait_us;
            *kind = k;
        }
    }
    return longest_us;
}

/* Takes from the shares what rate_take took from the buckets (share_wait said they suffice),
 * the older grant first. */
static void share_take(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
                       share_t sh[GH_LIMIT_KINDS], const int64_t want[GH_LIMIT_KINDS],
                       int64_t now_us)
{
    for (int k = 0; k < GH_LIMIT_KINDS; k++) {
        if (b[k].limit_per_min == 0)
            continue;
        int64_t n = share_take_of(l, &b[k], want[k]);
        sh[k].taken = add_sat(sh[k].taken, n);
        sh[k].last_use_us = now_us;
        if (share_level(&sh[k], now_us) < n) {
            /* share_wait found the safe local share enough: taken from it, and owed to the
             * cluster's bucket, whose next grants pay it first (see limits.h). The lease
             * thread may have cleared the outage since share_wait looked (the flag is not
             * under this lock): then the debt alone is recorded. */
            gh_bucket_t *fb = share_fallback(l, &b[k], &sh[k]);
            if (fb) /* share_wait checked it under this lock at this time */
                (void)gh_bucket_take(fb, fallback_take_of(fb, n), now_us, NULL);
            sh[k].debt = add_sat(sh[k].debt, n);
            int64_t cap = gh_limits_rate_central_capacity(b[k].limit_per_min, l->share_ttl_us);
            if (sh[k].debt > cap)
                sh[k].debt = cap;
            continue;
        }
        for (int i = 0; i < 2 && n > 0; i++) {
            int64_t t = n < sh[k].avail[i] ? n : sh[k].avail[i];
            sh[k].avail[i] -= t;
            n -= t;
        }
        assert(n == 0);
    }
}

/* Settlement's correction on a share, as `correct` makes it on the bucket: unused tokens go
 * back to the live grants (the older first, none above what it was granted; the rest is
 * dropped), tokens used beyond the take come out of the grants and then become debt, never
 * deeper than one capacity. */
static void share_correct(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
                          share_t sh[GH_LIMIT_KINDS], const int64_t taken_b[2],
                          const int64_t used[2], int64_t now_us)
{
    for (int i = 0; i < 2; i++) {
        int k = GH_LIMIT_INPUT_TOKENS + i;
        share_t *s = &sh[k];
        if (taken_b[i] < 0 || b[k].limit_per_min == 0)
            continue;
        /* The bucket's take, cut as the share's was. */
        int64_t taken = share_take_of(l, &b[k], taken_b[i]);
        share_expire(s, now_us);
        if (used[i] < taken) {
            int64_t back = taken - used[i];
            for (int j = 0; j < 2 && back > 0; j++) {
                int64_t room = s->granted[j] - s->avail[j];
                int64_t t = back < room ? back : room;
                s->avail[j] += t;
                back -= t;
            }
            /* While the safe local share serves, what it lent and was not used is owed no
             * more, and it may lend it again. */
            gh_bucket_t *fb = back > 0 && s->debt > 0 ? share_fallback(l, &b[k], s) : NULL;
            if (fb) {
                int64_t t = back < s->debt ? back : s->debt;
                s->debt -= t;
                gh_bucket_give(fb, t, now_us);
            }
        } else if (used[i] > taken) {
            int64_t over = used[i] - taken;
            for (int j = 0; j < 2 && over > 0; j++) {
                int64_t t = over < s->avail[j] ? over : s->avail[j];
                s->avail[j] -= t;
                over -= t;
            }
            s->debt = add_sat(s->debt, over);
            if (s->debt > b[k].limit_per_min)
                s->debt = b[k].limit_per_min;
        }
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
    org_t *o = org_find(s, org_hash, req->org_id);
    if (!o) {
        pthread_mutex_unlock(&s->lock);
        return GH_ENOTFOUND;
    }
    out->decision = GH_ADMIT_OK;
    ws_t *w = has_ws ? ws_find(s, o, ws_hash, req->workspace_id) : NULL;
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
                org_wait_us += capacity_gap_us(l, &o->buckets[c][org_kind]);
            if (ws_wait_us > 0)
                ws_wait_us += capacity_gap_us(l, &w->buckets[c][ws_kind]);
        } else if (l->rate_shared) {
            int pending = 0;
            org_wait_us = share_wait(l, o->buckets[c], o->shares[c], want, now_us, &org_kind,
                                     &pending);
            if (w)
                ws_wait_us = share_wait(l, w->buckets[c], w->shares[c], want, now_us,
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
            rate_take(o->buckets[c], want, now_us, h->taken[0]);
            if (l->rate_shared)
                share_take(l, o->buckets[c], o->shares[c], want, now_us);
            h->taken[1][0] = h->taken[1][1] = -1;
            o->reserved_nusd += worst;
            o->in_flight++;
            if (w) {
                rate_take(w->buckets[c], want, now_us, h->taken[1]);
                if (l->rate_shared)
                    share_take(l, w->buckets[c], w->shares[c], want, now_us);
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
        share_correct(l, o->buckets[c], o->shares[c], hold->taken[0], used, now_us);
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
            share_correct(l, w->buckets[c], w->shares[c], hold->taken[1], used, now_us);
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
    ws_t *w = r->ws_id ? ws_find(s, o, r->ws_hash, r->ws_id) : NULL;
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
    return with_org(l, org_id, record, &r);
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
    org_t *o = org_find(s, hash, org_id);
    ws_t *w = o && has_ws ? ws_find(s, o, ws_hash, ws_id) : NULL;
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

/* Decimal digits of a non-negative value; returns the length. */
static size_t put_int(char *out, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

#define HDR(s) s, sizeof(s) - 1

static void add_header(gh_limits_headers_t *out, const char *name, size_t name_len, int64_t v,
                       bool time)
{
    assert(out->count < GH_LIMITS_HEADERS_MAX);
    static_assert(GH_UTC_RFC3339_MAX <= GH_LIMITS_VALUE_MAX, "a time fits a value");
    char *value = out->values[out->count];
    gh_limits_header_t *h = &out->h[out->count++];
    h->name = name;
    h->name_len = name_len;
    h->value = value;
    h->value_len = time ? gh_utc_rfc3339(v, value) : put_int(value, v);
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
    return with_org(l, org_id, org_get, out);
}

typedef struct {
    ws_op_t op;
    gh_limits_ws_state_t *st;
} ws_get_t;

static void ws_get(org_t *o, shard_t *s, int64_t now_us, void *arg)
{
    ws_get_t *g = arg;
    ws_t *w = ws_find(s, o, g->op.ws_hash, g->op.ws_id);
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
    gh_err_t rc = with_org(l, org_id, ws_get, &g);
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

/* ---- Rate shares (cluster mode): the lease thread's side -------------------------------- */

static_assert(GH_LIMITS_ID_MAX == GH_ID_MAX, "needs carry whole ids");

void gh_limits_rate_shared(gh_limits_t *l, int64_t ttl_us, void (*kick)(void *ctx),
                           void *kick_ctx)
{
    assert(ttl_us > 0);
    l->share_ttl_us = ttl_us;
    l->kick = kick;
    l->kick_ctx = kick_ctx;
    l->rate_shared = true;
}

int64_t gh_limits_rate_central_capacity(int64_t limit_per_min, int64_t ttl_us)
{
    assert(limit_per_min >= 1 && limit_per_min <= GH_BUCKET_LIMIT_MAX && ttl_us >= 0);
    /* L * ttl / 60 s without overflow: L <= 5e10, so divide the time first when it is long. */
    int64_t slack;
    if (ttl_us <= INT64_C(100000000))
        slack = limit_per_min * (ttl_us / 1000) / 60000;
    else
        slack = limit_per_min / 60000 * (ttl_us / 1000);
    int64_t cap = limit_per_min - slack;
    return cap < 1 ? 1 : cap;
}

/* Tokens of a grant that would lapse before the lease thread looks again go back to the
 * cluster's bucket with the next draw instead: so do those of a share unused for this long. */
#define SHARE_RETURN_BEFORE_US (100 * INT64_C(1000))
#define SHARE_IDLE_US (300 * INT64_C(1000))

/* Takes out of the share, to be returned with the next draw, the grants that are about to
 * lapse, or all of them when the share has been idle; never while it owes a debt. */
static int64_t share_give_back(share_t *s, int64_t now_us)
{
    int64_t back = 0;
    if (s->debt > 0)
        return 0;
    bool idle = now_us - s->last_use_us >= SHARE_IDLE_US;
    for (int i = 0; i < 2; i++) {
        if (s->granted[i] == 0 || (!idle && s->exp_us[i] - now_us > SHARE_RETURN_BEFORE_US))
            continue;
        back += s->avail[i];
        s->avail[i] = s->granted[i] = 0;
    }
    share_expire(s, now_us); /* keeps the older grant in slot 0 */
    return back;
}

/* Adds the needs of one record's shares to `out`; returns false when `out` is full. */
static bool needs_of(gh_limits_t *l, buckets_t *b, shares_t *sh, org_t *o, ws_t *w,
                     int64_t now_us, gh_limits_rate_need_t *out, size_t max, size_t *n)
{
    for (size_t c = 0; c < l->nclasses; c++) {
        for (int k = 0; k < GH_LIMIT_KINDS; k++) {
            int64_t limit = (*b)[c][k].limit_per_min;
            share_t *s = &(*sh)[c][k];
            if (limit == 0)
                continue;
            share_expire(s, now_us);
            int64_t demand = s->taken > s->starved ? s->taken : s->starved;
            bool holds = s->granted[0] != 0;
            /* A debt (tokens admitted on the safe local share during an outage, or used beyond
             * a take) is drawn for even by an idle share: until it is paid, the cluster's
             * bucket would grant those tokens again. */
            if (demand == 0 && !holds && s->debt <= 0)
                continue;
            if (*n == max)
                return false;
            int64_t back = share_give_back(s, now_us);
            int64_t level = share_level(s, now_us);
            int64_t cap = gh_limits_rate_central_capacity(limit, l->share_ttl_us);
            int64_t want = 0, want_min = 0;
            /* While the cluster's bucket is known to be short, asking again only costs a
             * transaction; and a share that still covers the demand since the last draw
             * waits: demand keeps adding up, and the next draw covers twice all of it. */
            if (demand > 0 && now_us >= s->dry_until_us && level < demand) {
                int64_t target = add_sat(demand, demand);
                if (target > cap)
                    target = cap;
                want = sub_sat(target, level);
                want_min = sub_sat(s->starved_max, level);
                s->taken = s->starved = s->starved_max = 0;
            } else if (demand == 0 && level < 0 && now_us >= s->dry_until_us) {
                want = -level; /* the debt alone, paid with whatever the bucket has */
                want_min = 1;
            }
            if (want <= 0 && back == 0)
                continue;
            gh_limits_rate_need_t *need = &out[(*n)++];
            need->org = o;
            need->ws = w;
            need->gen = w ? w->gen : o->gen;
            need->class_index = (int)c;
            need->kind = (gh_limit_kind_t)k;
            memcpy(need->org_id, o->id, strlen(o->id) + 1);
            if (w)
                memcpy(need->ws_id, w->id, strlen(w->id) + 1);
            else
                need->ws_id[0] = '\0';
            need->class_name = l->classes[c];
            need->limit_per_min = limit;
            need->capacity = cap;
            need->want = want > 0 ? want : 0;
            need->want_min = want_min < 0 ? 0 : want_min > need->want ? need->want : want_min;
            need->give_back = back;
        }
    }
    return true;
}

void gh_limits_rate_unavailable(gh_limits_t *l, bool unavailable)
{
    /* One writer (the lease thread): the outage's start is stored before the flag, so an
     * admission that sees the flag sees the start too. */
    if (unavailable && !atomic_load_explicit(&l->rate_unavailable, memory_order_relaxed))
        atomic_store_explicit(&l->rate_down_since_us, l->now_fn(l->clock_ctx),
                              memory_order_relaxed);
    atomic_store_explicit(&l->rate_unavailable, unavailable, memory_order_release);
}

void gh_limits_rate_nodes(gh_limits_t *l, int64_t nodes)
{
    if (nodes <= 0)
        return;
    atomic_store_explicit(&l->rate_nodes, nodes, memory_order_relaxed);
    atomic_store_explicit(&l->rate_nodes_seen_us, l->now_fn(l->clock_ctx), memory_order_relaxed);
}

size_t gh_limits_rate_needs(gh_limits_t *l, gh_limits_rate_need_t *out, size_t max,
                            int64_t *now_out)
{
    size_t n = 0;
    int64_t now_us = l->now_fn(l->clock_ctx);
    *now_out = now_us;
    if (!l->rate_shared)
        return 0;
    for (size_t i = 0; i < GH_LIMITS_SHARDS; i++) {
        shard_t *s = &l->shards[i];
        bool room = true;
        pthread_mutex_lock(&s->lock);
        for (size_t j = 0; room && j < s->orgs_cap; j++) {
            org_t *o = s->orgs[j];
            if (o && o->live)
                room = needs_of(l, &o->buckets, &o->shares, o, NULL, now_us, out, max, &n);
        }
        for (size_t j = 0; room && j < s->wss_cap; j++) {
            ws_t *w = s->wss[j];
            if (w && w->live && w->org->live)
                room = needs_of(l, &w->buckets, &w->shares, w->org, w, now_us, out, max, &n);
        }
        pthread_mutex_unlock(&s->lock);
        if (!room)
            break;
    }
    return n;
}

void gh_limits_rate_grant(gh_limits_t *l, const gh_limits_rate_need_t *need, int64_t granted,
                          int64_t t0_us)
{
    int64_t now_us = l->now_fn(l->clock_ctx);
    org_t *o = need->org;
    shard_t *s = shard_of(l, o->hash);
    pthread_mutex_lock(&s->lock);
    ws_t *w = need->ws;
    bool live = w ? w->live && w->gen == need->gen : o->live && o->gen == need->gen;
    if (!live)
        goto out_unlock;
    share_t *sh = w ? &w->shares[need->class_index][need->kind]
                    : &o->shares[need->class_index][need->kind];
    if (need->want > 0 && granted < need->want) {
        /* The cluster's bucket is short: until it has refilled the difference (at most a
         * second), a short share is a plain rate limit, refused at once. */
        int64_t missing = need->want - (granted > 0 ? granted : 0);
        int64_t wait_us = US_PER_S;
        if (missing < ceil_div(need->limit_per_min, 60)) /* less than a second's refill */
            wait_us = ceil_div(missing * 60 * US_PER_S, need->limit_per_min);
        sh->dry_until_us = now_us + wait_us;
    } else if (need->want > 0) {
        sh->dry_until_us = 0;
    }
    if (granted <= 0)
        goto out_unlock;
    int64_t pay = granted < sh->debt ? granted : sh->debt;
    sh->debt -= pay;
    granted -= pay;
    share_expire(sh, now_us);
    int64_t exp_us = add_sat(t0_us, l->share_ttl_us);
    if (granted == 0 || exp_us <= now_us)
        goto out_unlock; /* nothing left, or it arrived too late to be spent */
    if (sh->granted[1] != 0) {
        /* Both slots live: fold them into slot 0 with the earlier expiry (the newer grant's
         * tokens lose time, never gain it), making room for this one. */
        sh->avail[0] += sh->avail[1];
        sh->granted[0] += sh->granted[1];
        sh->avail[1] = sh->granted[1] = 0;
    }
    int slot = sh->granted[0] != 0 ? 1 : 0;
    sh->avail[slot] = granted;
    sh->granted[slot] = granted;
    sh->exp_us[slot] = exp_us;
out_unlock:
    pthread_mutex_unlock(&s->lock);
}

int64_t gh_limits_rate_share(gh_limits_t *l, const char *org_id, const char *ws_id,
                             const char *model_class, gh_limit_kind_t kind)
{
    int c = gh_limits_class_index(l, model_class);
    if (c < 0 || !id_ok(org_id) || kind < 0 || kind >= GH_LIMIT_KINDS)
        return 0;
    bool has_ws = ws_id && ws_id[0];
    int64_t now_us = l->now_fn(l->clock_ctx);
    uint64_t hash = hash_id(org_id);
    shard_t *s = shard_of(l, hash);
    int64_t level = 0;
    pthread_mutex_lock(&s->lock);
    org_t *o = org_find(s, hash, org_id);
    ws_t *w = o && has_ws ? ws_find(s, o, hash_id(ws_id), ws_id) : NULL;
    if (w)
        level = share_level(&w->shares[c][kind], now_us);
    else if (o && !has_ws)
        level = share_level(&o->shares[c][kind], now_us);
    pthread_mutex_unlock(&s->lock);
    return level;
}

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
    return with_org(l, org_id, lease_set, &a);
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
    gh_err_t rc = with_org(l, org_id, withdraw, &a);
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
    return with_org(l, org_id, lease_get, &a);
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
    org_t *o = org_find(s, hash, org_id);
    ws_t *w = o ? ws_find(s, o, ws_hash, ws_id) : NULL;
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
