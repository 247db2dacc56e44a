/* A token bucket with continuous refill, in integers only. A bucket with a limit of L per
 * minute holds at most L tokens and refills at L per 60 seconds, continuously: nothing
 * happens in steps at minute boundaries.
 *
 * Exactness: the level is kept in units of 1/60,000,000 token (one token per microsecond of
 * a minute), so a bucket of limit L gains exactly L units per microsecond. Refill is a
 * multiplication, never a division, and no rounding accumulates however long a bucket runs:
 * after t microseconds a drained bucket holds exactly L * t / 60e6 tokens (floored only when
 * read). The level may go below zero (a debt, never deeper than one capacity) when more was
 * used than taken up front, see gh_bucket_charge.
 *
 * Time is any microsecond clock; a `now_us` earlier than the last one seen (a clock stepped
 * back) refills nothing and is otherwise harmless. Not thread-safe: the caller locks. */
#ifndef GH_LIB_BUCKET_H
#define GH_LIB_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* Units per token: microseconds per minute. */
#define GH_BUCKET_UNITS_PER_TOKEN INT64_C(60000000)
/* The largest limit per minute. Twice the capacity (the span from a full debt to full) must
 * fit in an int64_t of units: 2 * 5e10 * 6e7 = 6e18 < 9.2e18. */
#define GH_BUCKET_LIMIT_MAX INT64_C(50000000000)
/* A wait that never ends: more tokens than the bucket can ever hold. */
#define GH_BUCKET_NEVER INT64_MAX

typedef struct gh_bucket {
    int64_t limit_per_min; /* capacity in tokens, and the refill per minute; >= 1 */
    int64_t level;         /* tokens * GH_BUCKET_UNITS_PER_TOKEN; -capacity .. capacity */
    int64_t updated_us;    /* when the level was last brought up to date */
} gh_bucket_t;

/* Starts `b` full, with a limit of `limit_per_min` (1 .. GH_BUCKET_LIMIT_MAX). */
void gh_bucket_init(gh_bucket_t *b, int64_t limit_per_min, int64_t now_us);

/* Takes `n` tokens (n >= 0) if all of them are there and returns true; otherwise takes
 * nothing, returns false and sets `*retry_after_us` (may be NULL) to the wait until `n`
 * will be there if nothing else is taken meanwhile, or GH_BUCKET_NEVER when `n` exceeds the
 * capacity. */
bool gh_bucket_take(gh_bucket_t *b, int64_t n, int64_t now_us, int64_t *retry_after_us);

/* The wait until `n` tokens will be there: 0 when they are now, GH_BUCKET_NEVER when `n`
 * exceeds the capacity. Takes nothing. */
int64_t gh_bucket_wait_us(gh_bucket_t *b, int64_t n, int64_t now_us);

/* Returns `n` tokens (a correction: less was used than taken). The level never rises above
 * the capacity; what does not fit is dropped. n <= 0 does nothing. */
void gh_bucket_give(gh_bucket_t *b, int64_t n, int64_t now_us);

/* Takes `n` tokens whether or not they are there (a correction: more was used than taken).
 * The level may go negative, so later takes wait until the debt is refilled, but never below
 * minus one capacity: one oversized use costs its owner at most two minutes. */
void gh_bucket_charge(gh_bucket_t *b, int64_t n, int64_t now_us);

/* The whole tokens there now (0 while in debt) and when the bucket will be full again if
 * nothing is taken (`now_us` when it is full). Either pointer may be NULL. */
void gh_bucket_peek(gh_bucket_t *b, int64_t now_us, int64_t *remaining, int64_t *full_at_us);

/* Changes the limit, live. What was used in the current window stays used: the new level is
 * the new capacity minus what the old bucket was missing, so raising a limit makes the
 * difference available at once and lowering it counts what was already used against the new
 * limit. The result is never above the new capacity, never below zero unless the bucket was
 * already in debt, and never deeper in debt than before or than one new capacity. */
void gh_bucket_set_limit(gh_bucket_t *b, int64_t limit_per_min, int64_t now_us);

#endif
