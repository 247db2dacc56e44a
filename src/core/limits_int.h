/* Internal to the limits engine's files (core/limits*.c): the shards, the records and their
 * rate shares, the small helpers every part uses, and the functions one part calls in another.
 * Nothing outside them includes this; callers use limits.h. */
#ifndef GH_CORE_LIMITS_INT_H
#define GH_CORE_LIMITS_INT_H

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


typedef void (*org_fn)(org_t *o, shard_t *s, int64_t now_us, void *arg);

/* ---- Small helpers ----------------------------------------------------------------------- */

/* A word-at-a-time multiplicative hash of the id with a final avalanche, so that the top
 * bits (the shard) and the low bits (the slot) are both well mixed. Ids are made by us, not
 * by clients, so no keyed hash is needed against chosen collisions. */
static inline uint64_t hash_id(const char *id)
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

static inline shard_t *shard_of(gh_limits_t *l, uint64_t hash)
{
    return &l->shards[hash >> (64 - SHARD_BITS)];
}

static inline bool id_ok(const char *id)
{
    return id && id[0] && strnlen(id, GH_ID_MAX) < GH_ID_MAX;
}

static inline int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static inline int64_t sub_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* A month key as gh_utc_month_key makes them: YYYYMM with a month of 1 to 12. */
static inline bool month_key_ok(int32_t key)
{
    return key > 0 && key % 100 >= 1 && key % 100 <= 12;
}

static inline int64_t ceil_div(int64_t a, int64_t b)
{
    return a / b + (a % b > 0);
}

static inline int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* The lower of two limits where 0 means none. */
static inline int64_t lower_limit(int64_t a, int64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

static inline bool rates_ok(const gh_rate_limits_t *r)
{
    int64_t v[GH_LIMIT_KINDS] = {r->requests_per_min, r->input_tokens_per_min,
                                 r->output_tokens_per_min};
    for (int k = 0; k < GH_LIMIT_KINDS; k++)
        if (v[k] < 0 || v[k] > GH_BUCKET_LIMIT_MAX)
            return false;
    return true;
}

/* Applies new rates to a record's buckets, live. */
static inline void set_rates(buckets_t *b, const gh_rate_limits_t *rates, size_t nclasses,
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
static inline int32_t month_now(shard_t *s, int64_t now_us)
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
static inline void roll_month(int32_t *key, int64_t *spent_nusd, int32_t now_key)
{
    if (now_key > *key) {
        *key = now_key;
        *spent_nusd = 0;
    }
}

/* ---- Shared between the parts (defined in the file named by their section) ---- */

/* Tables (limits.c): the live record of `id`, or NULL. Caller holds the lock. */
org_t *gh_limits_org_find(shard_t *s, uint64_t hash, const char *id);
ws_t *gh_limits_ws_find(shard_t *s, const org_t *org, uint64_t hash, const char *id);

/* Control plane (limits.c): runs `fn` on live organization `org_id` under its shard's lock. */
gh_err_t gh_limits_with_org(gh_limits_t *l, const char *org_id, org_fn fn, void *arg);

/* Data plane (limits.c): takes from the class's buckets of one record. */
void gh_limits_rate_take(gh_bucket_t b[GH_LIMIT_KINDS], const int64_t want[GH_LIMIT_KINDS],
                         int64_t now_us, int64_t taken[2]);

/* Rate shares, admission's side (limits_shares.c). */
int64_t gh_limits_capacity_gap_us(const gh_limits_t *l, const gh_bucket_t *b);
int64_t gh_limits_share_wait(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
                             share_t sh[GH_LIMIT_KINDS], const int64_t want[GH_LIMIT_KINDS],
                             int64_t now_us, int *kind, int *pending);
void gh_limits_share_take(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
                          share_t sh[GH_LIMIT_KINDS], const int64_t want[GH_LIMIT_KINDS],
                          int64_t now_us);
void gh_limits_share_correct(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
                             share_t sh[GH_LIMIT_KINDS], const int64_t taken_b[2],
                             const int64_t used[2], int64_t now_us);

#endif
