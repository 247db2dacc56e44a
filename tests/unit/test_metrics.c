#include "unit.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(renders_counters_histograms_and_gauges)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
