#include "unit.h"

#include "lib/bucket.h"

#define MIN_US INT64_C(60000000)
#define T0 INT64_C(1795608000000000) /* 2026-11-25T12:00:00Z in microseconds */

static int64_t remaining(gh_bucket_t *b, int64_t now_us)
{
    int64_t r;
    gh_bucket_peek(b, now_us, &r, NULL);
    return r;
}

static void starts_full_and_bursts(void **state)
{
    (void)state;
    gh_bucket_t b;
    gh_bucket_init(&b, 50, T0);
    assert_int_equal(remaining(&b, T0), 50);
    for (int i = 0; i < 50; i++)
        assert_true(gh_bucket_take(&b, 1, T0, NULL));
    int64_t retry_us = 0;
    assert_false(gh_bucket_take(&b, 1, T0, &retry_us));
    assert_int_equal(retry_us, MIN_US / 50); /* 1.2 s */
    assert_int_equal(remaining(&b, T0), 0);
    /* Taking zero always works and changes nothing. */
    assert_true(gh_bucket_take(&b, 0, T0, NULL));
}

static void refills_continuously(void **state)
{
    (void)state;
    gh_bucket_t b;
    gh_bucket_init(&b, 60, T0); /* one token per second */
    assert_true(gh_bucket_take(&b, 60, T0, NULL));
    int64_t retry_us = 0;
    assert_false(gh_bucket_take(&b, 1, T0 + 500000, &retry_us));
    assert_int_equal(retry_us, 500000);
    assert_true(gh_bucket_take(&b, 1, T0 + 1000000, NULL));
    /* Half a minute later, 30 tokens; never more than the capacity however long it waits. */
    assert_int_equal(remaining(&b, T0 + 31000000), 30);
    assert_int_equal(remaining(&b, T0 + 10 * MIN_US), 60);
}

/* A limit that does not divide a minute evenly (7 per minute: one every 8.571428... s),
 * drained greedily at irregular moments for ten days: the total taken is exactly what the
 * rate allows, with no drift. Then the same for a large limit. */
static void exact_over_long_periods(void **state)
{
    (void)state;
    const int64_t limits[] = {7, 13, 2000000};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        int64_t limit = limits[i];
        gh_bucket_t b;
        gh_bucket_init(&b, limit, T0);
        assert_true(gh_bucket_take(&b, limit, T0, NULL));
        uint64_t seed = 88172645463325252u;
        int64_t now = T0, taken = 0, end = T0 + 10 * 86400 * INT64_C(1000000);
        while (now < end) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            /* Steps shorter than the time one token takes at the smallest limit, so the
             * bucket never fills up and nothing is lost to the cap. */
            now += (int64_t)(seed % 3000000) + 1;
            int64_t r = remaining(&b, now);
            assert_true(r < limit);
            if (r > 0) {
                assert_true(gh_bucket_take(&b, r, now, NULL));
                taken += r;
            }
        }
        /* tokens refilled in (now - T0) microseconds: floor(limit * elapsed / 60e6) */
        __int128 expect = (__int128)limit * (now - T0) / MIN_US;
        assert_int_equal(taken, (int64_t)expect);
    }
}

static void idle_for_a_century_does_not_overflow(void **state)
{
    (void)state;
    gh_bucket_t b;
    gh_bucket_init(&b, GH_BUCKET_LIMIT_MAX, T0);
    assert_true(gh_bucket_take(&b, GH_BUCKET_LIMIT_MAX, T0, NULL));
    gh_bucket_charge(&b, GH_BUCKET_LIMIT_MAX, T0); /* the deepest debt */
    int64_t later = T0 + INT64_C(100) * 365 * 86400 * 1000000;
    assert_int_equal(remaining(&b, later), GH_BUCKET_LIMIT_MAX);
    assert_int_equal(gh_bucket_wait_us(&b, GH_BUCKET_LIMIT_MAX + 1, later), GH_BUCKET_NEVER);
    gh_bucket_give(&b, INT64_MAX, later);
    gh_bucket_charge(&b, INT64_MAX, later);
    assert_int_equal(remaining(&b, later), 0);
}

static void retry_after_math(void **state)
{
    (void)state;
    gh_bucket_t b;
    gh_bucket_init(&b, 7, T0);
    assert_true(gh_bucket_take(&b, 7, T0, NULL));
    /* One token takes 60e6 / 7 = 8,571,428.57 µs: rounded up. */
    assert_int_equal(gh_bucket_wait_us(&b, 1, T0), 8571429);
    assert_int_equal(gh_bucket_wait_us(&b, 3, T0), (3 * MIN_US + 6) / 7);
    /* 100 µs later the bucket holds 700 units; the rest comes at 7 units a microsecond. */
    assert_int_equal(gh_bucket_wait_us(&b, 1, T0 + 100), (MIN_US - 700 + 6) / 7);
    /* At exactly that moment the token is there, and not a microsecond before. */
    gh_bucket_init(&b, 7, T0);
    assert_true(gh_bucket_take(&b, 7, T0, NULL));
    assert_false(gh_bucket_take(&b, 1, T0 + 8571428, NULL));
    assert_true(gh_bucket_take(&b, 1, T0 + 8571429, NULL));
    /* More than the capacity never fits, and the failed take takes nothing. */
    gh_bucket_init(&b, 7, T0);
    int64_t retry_us = 0;
    assert_false(gh_bucket_take(&b, 8, T0, &retry_us));
    assert_int_equal(retry_us, GH_BUCKET_NEVER);
    assert_int_equal(remaining(&b, T0), 7);
}

static void give_is_capped(void **state)
{
    (void)state;
    gh_bucket_t b;
    gh_bucket_init(&b, 100, T0);
    assert_true(gh_bucket_take(&b, 10, T0, NULL));
    gh_bucket_give(&b, 4, T0);
    assert_int_equal(remaining(&b, T0), 94);
    gh_bucket_give(&b, 50, T0);
    assert_int_equal(remaining(&b, T0), 100);
    gh_bucket_give(&b, -5, T0);
    assert_int_equal(remaining(&b, T0), 100);
}

static void charge_makes_bounded_debt(void **state)
{
    (void)state;
    gh_bucket_t b;
    gh_bucket_init(&b, 60, T0);
    gh_bucket_charge(&b, 90, T0); /* 30 in debt */
    int64_t rem, full_at;
    gh_bucket_peek(&b, T0, &rem, &full_at);
    assert_int_equal(rem, 0);
    assert_int_equal(full_at, T0 + 90 * INT64_C(1000000));
    assert_int_equal(gh_bucket_wait_us(&b, 1, T0), 31 * INT64_C(1000000));
    /* Never deeper than one capacity. */
    gh_bucket_charge(&b, 1000, T0);
    gh_bucket_peek(&b, T0, &rem, &full_at);
    assert_int_equal(full_at, T0 + 2 * MIN_US);
}

static void peek_full_at(void **state)
{
    (void)state;
    gh_bucket_t b;
    gh_bucket_init(&b, 60, T0);
    int64_t rem, full_at;
    gh_bucket_peek(&b, T0, &rem, &full_at);
    assert_int_equal(rem, 60);
    assert_int_equal(full_at, T0);
    assert_true(gh_bucket_take(&b, 60, T0, NULL));
    gh_bucket_peek(&b, T0 + 15000000, &rem, &full_at);
    assert_int_equal(rem, 15);
    assert_int_equal(full_at, T0 + MIN_US);
}

static void live_limit_change(void **state)
{
    (void)state;
    gh_bucket_t b;
    /* Raised: what was used stays used, the rest of the new limit is there at once. */
    gh_bucket_init(&b, 50, T0);
    assert_true(gh_bucket_take(&b, 50, T0, NULL));
    gh_bucket_set_limit(&b, 1000, T0);
    assert_int_equal(remaining(&b, T0), 950);
    /* Lowered below what was used: empty, not in debt; it then refills at the new rate. */
    gh_bucket_init(&b, 1000, T0);
    assert_true(gh_bucket_take(&b, 900, T0, NULL));
    gh_bucket_set_limit(&b, 50, T0);
    assert_int_equal(remaining(&b, T0), 0);
    assert_int_equal(remaining(&b, T0 + MIN_US), 50);
    /* Lowered a little: the same amount used. */
    gh_bucket_init(&b, 100, T0);
    assert_true(gh_bucket_take(&b, 30, T0, NULL));
    gh_bucket_set_limit(&b, 60, T0);
    assert_int_equal(remaining(&b, T0), 30);
    /* An existing debt is kept, bounded by the new capacity. */
    gh_bucket_init(&b, 100, T0);
    gh_bucket_charge(&b, 180, T0); /* -80 */
    gh_bucket_set_limit(&b, 50, T0);
    int64_t full_at;
    gh_bucket_peek(&b, T0, NULL, &full_at);
    assert_int_equal(full_at, T0 + 2 * MIN_US); /* -50 .. 50 at 50 per minute */
    /* A full bucket stays full. */
    gh_bucket_init(&b, 10, T0);
    gh_bucket_set_limit(&b, 20, T0);
    assert_int_equal(remaining(&b, T0), 20);
}

static void clock_stepping_back_is_harmless(void **state)
{
    (void)state;
    gh_bucket_t b;
    gh_bucket_init(&b, 60, T0);
    assert_true(gh_bucket_take(&b, 60, T0, NULL));
    assert_int_equal(remaining(&b, T0 - 5000000), 0);
    assert_false(gh_bucket_take(&b, 1, T0 - 5000000, NULL));
    /* Time resumes from the latest moment seen. */
    assert_int_equal(remaining(&b, T0 + 2000000), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(starts_full_and_bursts),
        cmocka_unit_test(refills_continuously),
        cmocka_unit_test(exact_over_long_periods),
        cmocka_unit_test(idle_for_a_century_does_not_overflow),
        cmocka_unit_test(retry_after_math),
        cmocka_unit_test(give_is_capped),
        cmocka_unit_test(charge_makes_bounded_debt),
        cmocka_unit_test(peek_full_at),
        cmocka_unit_test(live_limit_change),
        cmocka_unit_test(clock_stepping_back_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
