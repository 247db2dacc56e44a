#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gateway/balancer.h"

#define T0 INT64_C(1000000) /* milliseconds on the balancer's clock */

static gh_model_cfg_t model_of(int n, const int *weights)
{
    gh_model_cfg_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.name, sizeof(m.name), "m");
    m.ndeployments = n;
    for (int i = 0; i < n; i++)
        m.deployments[i].weight = weights[i];
    m.eject_ms = 5000;
    m.eject_after = 3;
    m.retries = 2;
    return m;
}

/* One attempt on whatever is picked, ended at once with `verdict`. */
static int run(gh_balancer_t *b, gh_balancer_cursor_t *cur, gh_balancer_verdict_t verdict,
               int64_t now)
{
    bool trial;
    int d = gh_balancer_pick(b, cur, 0, false, now, &trial);
    if (d >= 0)
        gh_balancer_end(b, d, trial, verdict,
                        verdict == GH_BALANCER_FAILED ? GH_DEPLOY_ERR_CONNECT : GH_DEPLOY_ERR_COUNT,
                        10, now);
    return d;
}

static void idle_traffic_follows_weights_exactly(void **state)
{
    (void)state;
    int w[] = {2, 1, 1};
    gh_model_cfg_t m = model_of(3, w);
    gh_balancer_t *b = gh_balancer_new(&m, 40);
    gh_balancer_cursor_t cur = {.rng = 7};
    int count[3] = {0};
    for (int i = 0; i < 4000; i++)
        count[run(b, &cur, GH_BALANCER_OK, T0)]++;
    assert_int_equal(count[0], 2000);
    assert_int_equal(count[1], 1000);
    assert_int_equal(count[2], 1000);
    gh_balancer_free(b);
}

static void outstanding_requests_steer_traffic_away(void **state)
{
    (void)state;
    int w[] = {1, 1, 1};
    gh_model_cfg_t m = model_of(3, w);
    gh_balancer_t *b = gh_balancer_new(&m, 41);
    gh_balancer_cursor_t cur = {.rng = 11};
    bool trial;
    /* Deployment 0 is slow: it holds 5 requests that have not ended. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(gh_balancer_pick(b, &cur, 6, false, T0, &trial), 0);
    int count[3] = {0};
    for (int i = 0; i < 3000; i++)
        count[run(b, &cur, GH_BALANCER_OK, T0)]++;
    /* It loses every comparison with an idle deployment. */
    assert_int_equal(count[0], 0);
    assert_int_equal(count[1] + count[2], 3000);
    for (int i = 0; i < 5; i++)
        gh_balancer_end(b, 0, false, GH_BALANCER_OK, GH_DEPLOY_ERR_COUNT, 1, T0);
    gh_metrics_deploy_t mt;
    gh_metrics_deploy_get(41, 0, &mt);
    assert_int_equal(mt.in_flight, 0);
    assert_int_equal(mt.requests, 5);
    gh_balancer_free(b);
}

static void tried_deployments_are_skipped(void **state)
{
    (void)state;
    int w[] = {1, 5, 1};
    gh_model_cfg_t m = model_of(3, w);
    gh_balancer_t *b = gh_balancer_new(&m, 42);
    gh_balancer_cursor_t cur = {.rng = 3};
    bool trial;
    for (int i = 0; i < 100; i++) {
        int d = gh_balancer_pick(b, &cur, 1u << 1, true, T0, &trial);
        assert_true(d == 0 || d == 2);
        gh_balancer_end(b, d, trial, GH_BALANCER_OK, GH_DEPLOY_ERR_COUNT, 1, T0);
    }
    assert_int_equal(gh_balancer_pick(b, &cur, 7, true, T0, &trial), -1);
    gh_metrics_deploy_t mt;
    gh_metrics_deploy_get(42, 0, &mt);
    assert_int_equal(mt.retries, mt.requests);
    gh_balancer_free(b);
}

static void failures_eject_then_one_trial_decides(void **state)
{
    (void)state;
    int w[] = {1, 1};
    gh_model_cfg_t m = model_of(2, w);
    gh_balancer_t *b = gh_balancer_new(&m, 43);
    gh_balancer_cursor_t cur = {.rng = 5};
    bool trial;
    /* Two failures, a success, two failures: never three in a row, so never ejected. */
    for (int k = 0; k < 2; k++)
        gh_balancer_end(b, gh_balancer_pick(b, &cur, 2, false, T0, &trial), false,
                        GH_BALANCER_FAILED, GH_DEPLOY_ERR_CONNECT, 1, T0);
    gh_balancer_end(b, gh_balancer_pick(b, &cur, 2, false, T0, &trial), false, GH_BALANCER_OK,
                    GH_DEPLOY_ERR_COUNT, 1, T0);
    for (int k = 0; k < 2; k++)
        gh_balancer_end(b, gh_balancer_pick(b, &cur, 2, false, T0, &trial), false,
                        GH_BALANCER_FAILED, GH_DEPLOY_ERR_CONNECT, 1, T0);
    assert_int_equal(gh_balancer_health(b, 0, T0), GH_DEPLOY_UP);
    /* The third in a row ejects it for 5 s. */
    gh_balancer_end(b, gh_balancer_pick(b, &cur, 2, false, T0, &trial), false,
                    GH_BALANCER_FAILED, GH_DEPLOY_ERR_OVERLOADED, 1, T0);
    assert_int_equal(gh_balancer_health(b, 0, T0), GH_DEPLOY_EJECTED);
    for (int i = 0; i < 50; i++)
        assert_int_equal(run(b, &cur, GH_BALANCER_OK, T0 + 4999), 1);
    assert_int_equal(gh_balancer_pick(b, &cur, 2, false, T0 + 4999, &trial), -1);
    /* Every untried one ejected: the least recently failed is still offered. */
    assert_int_equal(gh_balancer_pick_any(b, 2, false), 0);
    gh_balancer_end(b, 0, false, GH_BALANCER_NEUTRAL, GH_DEPLOY_ERR_COUNT, 1, T0);

    /* After 5 s one trial goes out, and only one. */
    int d = gh_balancer_pick(b, &cur, 0, false, T0 + 5000, &trial);
    assert_int_equal(d, 0);
    assert_true(trial);
    assert_int_equal(gh_balancer_health(b, 0, T0 + 5000), GH_DEPLOY_TRIAL);
    bool t2;
    assert_int_equal(gh_balancer_pick(b, &cur, 2, false, T0 + 5000, &t2), -1);
    /* It fails: ejected again, for 10 s now. */
    gh_balancer_end(b, 0, true, GH_BALANCER_FAILED, GH_DEPLOY_ERR_OVERLOADED, 1, T0 + 5000);
    assert_int_equal(gh_balancer_pick(b, &cur, 2, false, T0 + 14999, &t2), -1);
    d = gh_balancer_pick(b, &cur, 2, false, T0 + 15000, &trial);
    assert_int_equal(d, 0);
    assert_true(trial);
    /* A trial without a verdict (the client left) lets the next request be the trial. */
    gh_balancer_end(b, 0, true, GH_BALANCER_NEUTRAL, GH_DEPLOY_ERR_COUNT, 1, T0 + 15000);
    d = gh_balancer_pick(b, &cur, 2, false, T0 + 15001, &trial);
    assert_int_equal(d, 0);
    assert_true(trial);
    /* It succeeds: back in rotation, backoff reset. */
    gh_balancer_end(b, 0, true, GH_BALANCER_OK, GH_DEPLOY_ERR_COUNT, 1, T0 + 15001);
    assert_int_equal(gh_balancer_health(b, 0, T0 + 15001), GH_DEPLOY_UP);
    int count[2] = {0};
    for (int i = 0; i < 100; i++)
        count[run(b, &cur, GH_BALANCER_OK, T0 + 15002)]++;
    assert_int_equal(count[0], 50);
    gh_metrics_deploy_t mt;
    gh_metrics_deploy_get(43, 0, &mt);
    assert_int_equal(mt.ejections, 2);
    assert_int_equal(mt.errors[GH_DEPLOY_ERR_OVERLOADED], 2);
    assert_int_equal(mt.errors[GH_DEPLOY_ERR_CONNECT], 4);
    assert_int_equal(mt.health, GH_DEPLOY_UP);
    gh_balancer_free(b);
}

static void backoff_doubles_up_to_five_minutes(void **state)
{
    (void)state;
    int w[] = {1};
    gh_model_cfg_t m = model_of(1, w);
    m.eject_after = 1;
    gh_balancer_t *b = gh_balancer_new(&m, 44);
    gh_balancer_cursor_t cur = {.rng = 1};
    bool trial;
    int64_t now = T0;
    gh_balancer_end(b, gh_balancer_pick(b, &cur, 0, false, now, &trial), false,
                    GH_BALANCER_FAILED, GH_DEPLOY_ERR_TIMEOUT, 1, now);
    int64_t backoff = 5000;
    for (int i = 0; i < 12; i++) {
        assert_false(gh_balancer_available(b, now + backoff - 1));
        assert_true(gh_balancer_available(b, now + backoff));
        now += backoff;
        assert_int_equal(gh_balancer_pick(b, &cur, 0, false, now, &trial), 0);
        assert_true(trial);
        gh_balancer_end(b, 0, true, GH_BALANCER_FAILED, GH_DEPLOY_ERR_TIMEOUT, 1, now);
        backoff = backoff * 2 > GH_BALANCER_EJECT_MAX_MS ? GH_BALANCER_EJECT_MAX_MS : backoff * 2;
    }
    assert_int_equal(backoff, GH_BALANCER_EJECT_MAX_MS);
    /* An active check's success re-admits it at once. */
    gh_balancer_probe_result(b, 0, true, now);
    assert_int_equal(gh_balancer_health(b, 0, now), GH_DEPLOY_UP);
    gh_balancer_free(b);
}

typedef struct {
    gh_balancer_t *b;
    int seed;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    gh_balancer_cursor_t cur = {.rng = (uint64_t)r->seed};
    for (int i = 0; i < 20000; i++) {
        bool trial;
        int64_t now = T0 + i;
        int d = gh_balancer_pick(r->b, &cur, 0, false, now, &trial);
        if (d < 0)
            d = gh_balancer_pick_any(r->b, 0, false);
        /* Deployment 2 always fails: it is ejected, tried, ejected again, by every thread. */
        gh_balancer_end(r->b, d, trial, d == 2 ? GH_BALANCER_FAILED : GH_BALANCER_OK,
                        d == 2 ? GH_DEPLOY_ERR_RESET : GH_DEPLOY_ERR_COUNT, 1, now);
    }
    return NULL;
}

static void threads_keep_the_counts_exact(void **state)
{
    (void)state;
    int w[] = {3, 1, 1};
    gh_model_cfg_t m = model_of(3, w);
    m.eject_ms = 1;
    gh_balancer_t *b = gh_balancer_new(&m, 45);
    pthread_t t[4];
    racer_t r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer_t){b, i + 1};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    uint64_t total = 0;
    for (int d = 0; d < 3; d++) {
        gh_metrics_deploy_t mt;
        gh_metrics_deploy_get(45, d, &mt);
        assert_int_equal(mt.in_flight, 0);
        total += mt.requests;
    }
    assert_int_equal(total, 80000);
    gh_metrics_deploy_t bad;
    gh_metrics_deploy_get(45, 2, &bad);
    assert_true(bad.ejections >= 1);
    assert_int_equal(bad.errors[GH_DEPLOY_ERR_RESET], bad.requests);
    gh_balancer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_traffic_follows_weights_exactly),
        cmocka_unit_test(outstanding_requests_steer_traffic_away),
        cmocka_unit_test(tried_deployments_are_skipped),
        cmocka_unit_test(failures_eject_then_one_trial_decides),
        cmocka_unit_test(backoff_doubles_up_to_five_minutes),
        cmocka_unit_test(threads_keep_the_counts_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
