#include "lib/bucket.h"

#include <assert.h>

static_assert(2 * GH_BUCKET_LIMIT_MAX <= INT64_MAX / GH_BUCKET_UNITS_PER_TOKEN,
              "twice the largest capacity fits in units");

static int64_t capacity(const gh_bucket_t *b)
{
    return b->limit_per_min * GH_BUCKET_UNITS_PER_TOKEN;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    assert(a >= 0 && b > 0);
    return a / b + (a % b != 0);
}

static void check(const gh_bucket_t *b)
{
    assert(b->limit_per_min >= 1 && b->limit_per_min <= GH_BUCKET_LIMIT_MAX);
    assert(b->level <= capacity(b) && b->level >= -capacity(b));
}

/* Brings the level up to `now_us`. The bucket gains limit_per_min units per microsecond; a
 * gain that overflows (a bucket idle for centuries) or passes the capacity fills it. No
 * division: this runs several times per admission. */
static void refill(gh_bucket_t *b, int64_t now_us)
{
    check(b);
    if (now_us <= b->updated_us)
        return;
    int64_t elapsed_us = now_us - b->updated_us;
    int64_t room = capacity(b) - b->level; /* 0 .. 2 * capacity */
    int64_t gain;
    b->updated_us = now_us;
    if (__builtin_mul_overflow(elapsed_us, b->limit_per_min, &gain) || gain >= room)
        b->level = capacity(b);
    else
        b->level += gain;
}

void gh_bucket_init(gh_bucket_t *b, int64_t limit_per_min, int64_t now_us)
{
    assert(limit_per_min >= 1 && limit_per_min <= GH_BUCKET_LIMIT_MAX);
    b->limit_per_min = limit_per_min;
    b->level = capacity(b);
    b->updated_us = now_us;
}

int64_t gh_bucket_wait_us(gh_bucket_t *b, int64_t n, int64_t now_us)
{
    assert(n >= 0);
    refill(b, now_us);
    if (n > b->limit_per_min)
        return GH_BUCKET_NEVER;
    int64_t need = n * GH_BUCKET_UNITS_PER_TOKEN;
    if (b->level >= need)
        return 0;
    return ceil_div(need - b->level, b->limit_per_min);
}

bool gh_bucket_take(gh_bucket_t *b, int64_t n, int64_t now_us, int64_t *retry_after_us)
{
    int64_t wait_us = gh_bucket_wait_us(b, n, now_us);
    if (wait_us != 0) {
        if (retry_after_us)
            *retry_after_us = wait_us;
        return false;
    }
    b->level -= n * GH_BUCKET_UNITS_PER_TOKEN;
    check(b);
    return true;
}

void gh_bucket_give(gh_bucket_t *b, int64_t n, int64_t now_us)
{
    refill(b, now_us);
    if (n <= 0)
        return;
    /* Compare in tokens first so that a huge `n` cannot overflow the multiplication. */
    int64_t room = capacity(b) - b->level;
    if (n >= ceil_div(room, GH_BUCKET_UNITS_PER_TOKEN))
        b->level = capacity(b);
    else
        b->level += n * GH_BUCKET_UNITS_PER_TOKEN;
    check(b);
}

void gh_bucket_charge(gh_bucket_t *b, int64_t n, int64_t now_us)
{
    refill(b, now_us);
    if (n <= 0)
        return;
    int64_t depth = b->level + capacity(b); /* how far the level may still fall */
    if (n >= ceil_div(depth, GH_BUCKET_UNITS_PER_TOKEN))
        b->level = -capacity(b);
    else
        b->level -= n * GH_BUCKET_UNITS_PER_TOKEN;
    check(b);
}

void gh_bucket_peek(gh_bucket_t *b, int64_t now_us, int64_t *remaining, int64_t *full_at_us)
{
    refill(b, now_us);
    if (remaining)
        *remaining = b->level > 0 ? b->level / GH_BUCKET_UNITS_PER_TOKEN : 0;
    if (full_at_us) {
        /* updated_us, not now_us: with a clock stepped back the two differ, and the level is
         * true as of updated_us. */
        *full_at_us = b->updated_us + ceil_div(capacity(b) - b->level, b->limit_per_min);
    }
}

void gh_bucket_set_limit(gh_bucket_t *b, int64_t limit_per_min, int64_t now_us)
{
    assert(limit_per_min >= 1 && limit_per_min <= GH_BUCKET_LIMIT_MAX);
    refill(b, now_us);
    int64_t used = capacity(b) - b->level; /* 0 .. 2 * old capacity */
    int64_t old_level = b->level;
    b->limit_per_min = limit_per_min;
    int64_t cap = capacity(b);
    /* The floor: zero, or the debt the bucket already had, bounded by one new capacity. */
    int64_t floor = 0;
    if (old_level < 0)
        floor = old_level < -cap ? -cap : old_level;
    int64_t level = cap - used;
    b->level = level < floor ? floor : level;
    check(b);
}
