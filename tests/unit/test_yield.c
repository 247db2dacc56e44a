#include "unit.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "lib/yield.h"

/* sched_yield is wrapped (Makefile: -Wl,--wrap=sched_yield): each call is
 * counted, per thread, and then made. */
static _Thread_local int yields;
int __real_sched_yield(void);
int __wrap_sched_yield(void);
int __wrap_sched_yield(void)
{
    yields++;
    return __real_sched_yield();
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Runs on the CPU (no sleep) until `us` microseconds have passed since `from`.
 */
static void spin_until(int64_t from, int64_t us)
{
    while (now_us() - from < us)
        ;
}

static void off_unless_enabled(void **state)
{
    (void)state;
    yields = 0;
    spin_until(now_us(), 3 * GH_YIELD_EVERY_US);
    gh_yield_point();
    assert_int_equal(yields, 0);
    gh_yield_enable(true);
    gh_yield_enable(false);
    spin_until(now_us(), 3 * GH_YIELD_EVERY_US);
    gh_yield_point();
    assert_int_equal(yields, 0);
}

static void yields_once_a_burst_ran_its_time(void **state)
{
    (void)state;
    yields = 0;
    gh_yield_enable(true);
    int64_t t = now_us(); /* the burst began at or before t */
    spin_until(t, GH_YIELD_EVERY_US + 10);
    gh_yield_point();
    assert_int_equal(yields, 1);
    gh_yield_enable(false);
}

/* However often the point is passed, the core is given up at most once per
 * GH_YIELD_EVERY_US of the time that passed, plus once (the first yield may be
 * due at once when the thread lost the core between enabling and reading the
 * clock), and over 5 ms at least once. */
static void never_more_often_than_its_period(void **state)
{
    (void)state;
    yields = 0;
    gh_yield_enable(true);
    int64_t t = now_us();
    long passes = 0;
    while (now_us() - t < 5000) {
        gh_yield_point();
        passes++;
    }
    gh_yield_point(); /* 5 ms after the burst began at the latest: due if none
                         came before */
    passes++;
    int64_t elapsed = now_us() - t;
    gh_yield_enable(false);
    assert_true(yields >= 1);
    assert_true(yields <= elapsed / GH_YIELD_EVERY_US + 1);
    assert_true(passes > yields);
}

static void *enable_and_return(void *arg)
{
    (void)arg;
    gh_yield_enable(true);
    return NULL;
}

static void enabling_is_per_thread(void **state)
{
    (void)state;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, enable_and_return, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    yields = 0;
    spin_until(now_us(), 3 * GH_YIELD_EVERY_US);
    gh_yield_point();
    assert_int_equal(yields, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(off_unless_enabled),
        cmocka_unit_test(yields_once_a_burst_ran_its_time),
        cmocka_unit_test(never_more_often_than_its_period),
        cmocka_unit_test(enabling_is_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
