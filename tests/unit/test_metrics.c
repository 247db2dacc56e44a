#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/metrics.h"

static void renders_counters_histograms_and_gauges(void **state)
{
    (void)state;
    gh_config_t cfg;
    char err[128];
    gh_config_defaults(&cfg);
    assert_int_equal(gh_config_finish(&cfg, err, sizeof(err)), GH_OK);
    gh_metrics_request(GH_ROUTE_MESSAGES, 0, 200, 1200, 40);
    gh_metrics_request(GH_ROUTE_MESSAGES, 0, 200, 900000, 60);
    gh_metrics_request(GH_ROUTE_CHAT, 1, 429, 30, 30);
    gh_metrics_request(GH_ROUTE_OTHER, -1, 418, 10, 10);
    gh_metrics_upstream_error(1, GH_UPSTREAM_ERR_TIMEOUT);
    gh_metrics_streams_add(3);
    gh_metrics_streams_add(-1);
    size_t len;
    char *text = gh_metrics_render(&cfg, "custom_gauge 7\n", &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    const char *expect[] = {
        "gatehouse_api_requests_total{route=\"messages\",model=\"gatehouse-mock-small\","
        "status=\"200\"} 2\n",
        "gatehouse_api_requests_total{route=\"chat_completions\",model=\"gatehouse-mock-large\","
        "status=\"429\"} 1\n",
        "gatehouse_api_requests_total{route=\"other\",model=\"\",status=\"other\"} 1\n",
        /* 1.2 ms falls in the 2.5 ms bucket; 0.9 s in the 1 s bucket; cumulative. */
        "gatehouse_api_request_duration_seconds_bucket{route=\"messages\",le=\"0.001\"} 0\n",
        "gatehouse_api_request_duration_seconds_bucket{route=\"messages\",le=\"0.0025\"} 1\n",
        "gatehouse_api_request_duration_seconds_bucket{route=\"messages\",le=\"1\"} 2\n",
        "gatehouse_api_request_duration_seconds_count{route=\"messages\"} 2\n",
        "gatehouse_api_overhead_seconds_bucket{route=\"messages\",le=\"5e-05\"} 1\n",
        "gatehouse_upstream_errors_total{model=\"gatehouse-mock-large\",kind=\"timeout\"} 1\n",
        "gatehouse_api_open_streams 2\n",
        "custom_gauge 7\n",
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        if (!strstr(text, expect[i]))
            fail_msg("missing: %s\nin:\n%s", expect[i], text);
    free(text);
}

/* Threads that own shards and threads that share one (more than there are shards), all adding
 * at once: every add is in the sums, gauges come back to zero. */
enum { THREADS = 40, ADDS = 2000 };

static void *adder(void *arg)
{
    if (arg != NULL)
        gh_metrics_thread_own();
    for (int i = 0; i < ADDS; i++) {
        gh_metrics_request(GH_ROUTE_COUNT_TOKENS, 2, 200, 70, 7);
        gh_metrics_deploy_start(2, 1, i % 2 == 1);
        gh_metrics_streams_add(1);
        gh_metrics_deploy_end(2, 1, i % 4 == 0 ? GH_DEPLOY_ERR_RESET : GH_DEPLOY_ERR_COUNT, 90);
        gh_metrics_streams_add(-1);
    }
    return NULL;
}

static void shards_sum_to_every_add(void **state)
{
    (void)state;
    gh_config_t cfg;
    char err[128];
    gh_config_defaults(&cfg);
    assert_int_equal(gh_config_finish(&cfg, err, sizeof(err)), GH_OK);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) /* every fifth shares shard 0 without asking for one */
        assert_int_equal(pthread_create(&t[i], NULL, adder, i % 5 ? (void *)1 : NULL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    gh_metrics_deploy_t d;
    gh_metrics_deploy_get(2, 1, &d);
    assert_int_equal(d.requests, THREADS * ADDS);
    assert_int_equal(d.retries, THREADS * ADDS / 2);
    assert_int_equal(d.errors[GH_DEPLOY_ERR_RESET], THREADS * ADDS / 4);
    assert_int_equal(d.in_flight, 0);
    size_t len;
    char *text = gh_metrics_render(&cfg, NULL, &len);
    assert_non_null(text);
    char want[256];
    snprintf(want, sizeof(want),
             "gatehouse_api_requests_total{route=\"count_tokens\",model=\"\",status=\"200\"} %d\n",
             THREADS * ADDS);
    /* Model 2 is past the configured ones: its label is empty. */
    if (!strstr(text, want))
        fail_msg("missing: %s", want);
    snprintf(want, sizeof(want),
             "gatehouse_api_overhead_seconds_sum{route=\"count_tokens\"} %.6f\n",
             THREADS * ADDS * 7 / 1e6);
    if (!strstr(text, want))
        fail_msg("missing: %s", want);
    if (!strstr(text, "gatehouse_api_open_streams 2\n")) /* the first test's 3 - 1 */
        fail_msg("open streams are not back where they were:\n%s", text);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(renders_counters_histograms_and_gauges),
                                       cmocka_unit_test(shards_sum_to_every_add)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
