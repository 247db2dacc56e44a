/* Rate shares (cluster mode) of the admission engine (limits.h): admission's side, which
 * spends this node's share of a cluster-wide bucket, and the lease thread's side, which says
 * what the shares need and puts in what the cluster granted. */
#include "core/limits_int.h"

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
int64_t gh_limits_capacity_gap_us(const gh_limits_t *l, const gh_bucket_t *b)
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
 * gh_limits_rate_take would make. Returns `longest_us` or a longer wait, updating `*kind`. A
 * short share is starved (its demand noted for the lease thread); `*pending` gets bit 0 when
 * one may be served by a draw and bit 1 when one's cluster bucket is dry (a plain rate limit,
 * whose wait is until the bucket is expected to have refilled). */
int64_t gh_limits_share_wait(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
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
            continue; /* the safe local share serves it (gh_limits_share_take) */
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

/* Takes from the shares what gh_limits_rate_take took from the buckets (gh_limits_share_wait
 * said they suffice), the older grant first. */
void gh_limits_share_take(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
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
            /* gh_limits_share_wait found the safe local share enough: taken from it, and owed
             * to the cluster's bucket, whose next grants pay it first (see limits.h). The lease
             * thread may have cleared the outage since gh_limits_share_wait looked (the flag is
             * not under this lock): then the debt alone is recorded. */
            gh_bucket_t *fb = share_fallback(l, &b[k], &sh[k]);
            if (fb) /* gh_limits_share_wait checked it under this lock at this time */
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
void gh_limits_share_correct(const gh_limits_t *l, const gh_bucket_t b[GH_LIMIT_KINDS],
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
    org_t *o = gh_limits_org_find(s, hash, org_id);
    ws_t *w = o && has_ws ? gh_limits_ws_find(s, o, hash_id(ws_id), ws_id) : NULL;
    if (w)
        level = share_level(&w->shares[c][kind], now_us);
    else if (o && !has_ws)
        level = share_level(&o->shares[c][kind], now_us);
    pthread_mutex_unlock(&s->lock);
    return level;
}
