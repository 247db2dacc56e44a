#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/money.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/gh-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void defaults_are_usable(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.api_listen, "127.0.0.1:8081");
    assert_int_equal(c.link_ttl_s, 900);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
    assert_string_equal(c.db_path, "var/gatehouse.db");
    assert_string_equal(c.outbox_dir, "var/outbox");
    assert_false(c.cookie_secure);
}

static void file_overrides_defaults(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    char *path = write_tmp("; comment\n[server]\nlisten = 0.0.0.0:9000\n"
                           "public_url = https://console.example.com/\nthreads = 8\n"
                           "[auth]\nlink_ttl_seconds = 60\n[log]\nformat = json\n"
                           "[email]\nsmtp_url = smtp://mail.example.com:587\n");
    assert_int_equal(gh_config_load(&c, path, err, sizeof(err)), GH_OK);
    unlink(path);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_string_equal(c.public_url, "https://console.example.com");
    assert_true(c.cookie_secure);
    assert_true(c.public_url_set);
    assert_int_equal(c.threads, 8);
    assert_int_equal(c.link_ttl_s, 60);
    assert_true(c.log_json);
    assert_string_equal(c.smtp_url, "smtp://mail.example.com:587");
}

static void unknown_key_names_the_line(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    char *path = write_tmp("[server]\nlisten = 127.0.0.1:1\nlistne = x\n");
    assert_int_equal(gh_config_load(&c, path, err, sizeof(err)), GH_EINVAL);
    unlink(path);
    assert_non_null(strstr(err, ":3:"));
    assert_non_null(strstr(err, "unknown option [server] listne"));
}

static void bad_values_are_refused(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "server", "threads", "0", err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "from 1 to 256"));
    assert_int_equal(gh_config_set(&c, "server", "threads", "4x", err, sizeof(err)), GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "server", "listen", "localhost", err, sizeof(err)),
                     GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "server", "public_url", "ftp://x", err, sizeof(err)),
                     GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "log", "format", "xml", err, sizeof(err)), GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "log", "access_log", "maybe", err, sizeof(err)),
                     GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "email", "smtp_url", "http://x", err, sizeof(err)),
                     GH_EINVAL);
    assert_int_equal(c.threads, 4); /* unchanged by the failures */
    assert_int_equal(gh_config_set(&c, "log", "access_log", "off", err, sizeof(err)), GH_OK);
    assert_false(c.access_log);
}

static void missing_file_is_an_io_error(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    assert_int_equal(gh_config_load(&c, "/nonexistent/gatehouse.ini", err, sizeof(err)), GH_EIO);
    assert_non_null(strstr(err, "/nonexistent/gatehouse.ini"));
}

static void addresses_split(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(gh_config_split_addr("127.0.0.1:8080", host, sizeof(host), &port), GH_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(gh_config_split_addr("[::1]:0", host, sizeof(host), &port), GH_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(gh_config_split_addr("127.0.0.1", host, sizeof(host), &port), GH_EINVAL);
    assert_int_equal(gh_config_split_addr(":80", host, sizeof(host), &port), GH_EINVAL);
    assert_int_equal(gh_config_split_addr("h:65536", host, sizeof(host), &port), GH_EINVAL);
    assert_int_equal(gh_config_split_addr("[::1]80", host, sizeof(host), &port), GH_EINVAL);
}

/* Every option the example config shows (commented out) is a real option with a valid
 * value: uncommented, the whole file loads. */
static void example_config_is_accurate(void **state)
{
    (void)state;
    FILE *in = fopen("gatehouse.ini.example", "r");
    assert_non_null(in);
    char path[] = "/tmp/gh-test-example-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *out = fdopen(fd, "w");
    char line[512];
    int options = 0;
    while (fgets(line, sizeof(line), in)) {
        /* ";key = value" is an option and ";[section]" a section; "; prose" (a space after ;)
         * is a comment. */
        if (line[0] == ';' && line[1] != ' ' && line[1] != '\n' &&
            (strchr(line, '=') || line[1] == '[')) {
            fputs(line + 1, out);
            options++;
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    fclose(out);
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    gh_err_t rc = gh_config_load(&c, path, err, sizeof(err));
    unlink(path);
    if (rc)
        fail_msg("%s", err);
    assert_true(options >= 25);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
    assert_int_equal(c.nmodels, 7); /* every example model is valid */
    assert_string_equal(c.pay_provider, "test");
    assert_int_equal(c.min_purchase_nusd, 5 * GH_NUSD_PER_USD);
    assert_int_equal(c.max_purchase_nusd, 10000 * GH_NUSD_PER_USD);
    assert_string_equal(c.seller_country, "IT");
    assert_string_equal(c.invoice_prefix, "GH");
    assert_int_equal(c.ntiers, 6); /* the example's tiers are the built-in table */
    assert_true(c.limits_enforce);
}

static void billing_options_are_checked(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    assert_int_equal(c.credit_expiry_days, 365);
    assert_int_equal(c.billing_scheduler_interval_s, 60);
    assert_string_equal(c.stripe_api_base, "https://api.stripe.com");
    assert_int_equal(gh_config_set(&c, "billing", "min_purchase_usd", "7.50", err, sizeof(err)),
                     GH_OK);
    assert_int_equal(c.min_purchase_nusd, 7500000000);
    static const char *const bad[][2] = {
        {"provider", "paypal"},          {"min_purchase_usd", "5.001"},
        {"min_purchase_usd", "-5"},      {"max_purchase_usd", "0"},
        {"max_purchase_usd", "2000000"}, {"first_purchase_min_usd", "five"},
        {"credit_expiry_days", "0"},     {"tax_rate_bps", "10001"},
        {"seller_country", "Italy"},     {"invoice_prefix", "gh-"},
        {"invoice_prefix", ""},          {"stripe_api_base", "api.stripe.com"},
        {"scheduler_interval_s", "0"},   {"currency", "EUR"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gh_config_set(&c, "billing", bad[i][0], bad[i][1], err, sizeof(err)) != GH_EINVAL)
            fail_msg("[billing] %s = %s was accepted", bad[i][0], bad[i][1]);
    /* The minimum may not be above the maximum. */
    assert_int_equal(gh_config_set(&c, "billing", "max_purchase_usd", "5", err, sizeof(err)),
                     GH_OK);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "max_purchase_usd"));
}

static void models_are_parsed(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    char *path = write_tmp("[model claude-x]\nstyle = anthropic\nupstream_url = http://u:1/\n"
                           "price_input = 3\nprice_output = 15\nprice_cache_read = 0.30\n"
                           "on_disconnect = cancel\n[model \"mock-1\"]\nstyle = mock\n"
                           "mock_tokens_per_second = 50\n");
    assert_int_equal(gh_config_load(&c, path, err, sizeof(err)), GH_OK);
    unlink(path);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
    assert_int_equal(c.nmodels, 2);
    const gh_model_cfg_t *m = gh_config_model(&c, "claude-x", 8);
    assert_non_null(m);
    assert_string_equal(m->upstream_url, "http://u:1");
    assert_string_equal(m->upstream_model, "claude-x");
    assert_int_equal(m->price_input, 3000000000);
    assert_int_equal(m->price_output, 15000000000);
    assert_int_equal(m->price_cache_read, 300000000);
    assert_true(m->cancel_on_disconnect);
    m = gh_config_model(&c, "mock-1", 6);
    assert_non_null(m);
    assert_string_equal(m->style, "mock");
    assert_int_equal(m->mock_tokens_per_second, 50);
    assert_null(gh_config_model(&c, "mock", 4));

    /* Mistakes name themselves. */
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "model a", "style", "grpc", err, sizeof(err)), GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "model a", "price_input", "-1", err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "USD per million tokens"));
    assert_int_equal(gh_config_set(&c, "model a", "colour", "red", err, sizeof(err)), GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "model bad name!", "style", "mock", err, sizeof(err)),
                     GH_EINVAL);
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "model up", "style", "openai", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "needs upstream_url"));
}

static void deployments_are_parsed(void **state)
{
    (void)state;
    static gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    char *path = write_tmp("[model pair]\nupstream_url = http://10.0.0.5:8000/ weight=2, "
                           " https://10.0.0.6:8000/v1\napi_key_env = KEY_A, KEY_B\n"
                           "fallbacks = hosted, spare\nretries = 1\nhealth_path = /health\n"
                           "health_interval_ms = 2000\n"
                           "[model hosted]\nupstream_url = https://api.example.com\n"
                           "api_key_env = HOSTED\n[model spare]\nstyle = mock\n");
    assert_int_equal(gh_config_load(&c, path, err, sizeof(err)), GH_OK);
    unlink(path);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
    const gh_model_cfg_t *m = gh_config_model(&c, "pair", 4);
    assert_int_equal(m->ndeployments, 2);
    assert_string_equal(m->deployments[0].url, "http://10.0.0.5:8000");
    assert_int_equal(m->deployments[0].weight, 2);
    assert_string_equal(m->deployments[0].api_key_env, "KEY_A");
    assert_string_equal(m->deployments[1].url, "https://10.0.0.6:8000/v1");
    assert_int_equal(m->deployments[1].weight, 1);
    assert_string_equal(m->deployments[1].api_key_env, "KEY_B");
    assert_int_equal(m->nfallbacks, 2);
    assert_string_equal(m->fallbacks[1], "spare");
    assert_int_equal(m->retries, 1);
    assert_string_equal(m->health_path, "/health");
    assert_int_equal(m->health_interval_ms, 2000);
    /* One deployment, as before: one URL, the one key, the defaults. */
    m = gh_config_model(&c, "hosted", 6);
    assert_int_equal(m->ndeployments, 1);
    assert_string_equal(m->deployments[0].url, "https://api.example.com");
    assert_string_equal(m->deployments[0].api_key_env, "HOSTED");
    assert_int_equal(m->retries, 2);
    assert_int_equal(m->eject_ms, 5000);
    assert_int_equal(gh_config_model(&c, "spare", 5)->ndeployments, 0);

    /* Mistakes name themselves. */
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "model a", "upstream_url", "http://x:1 weight=0", err,
                                   sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "weight=N"));
    assert_int_equal(gh_config_set(&c, "model a", "upstream_url", "http://x:1 heavy", err,
                                   sizeof(err)), GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "model a", "upstream_url", "http://x:1, ftp://y", err,
                                   sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "http://"));
    assert_int_equal(gh_config_set(&c, "model a", "upstream_url", " , ", err, sizeof(err)),
                     GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "model a", "upstream_url", "http://u:secret@x:1", err,
                                   sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "api_key_env"));
    assert_int_equal(gh_config_set(&c, "model a", "health_path", "health", err, sizeof(err)),
                     GH_EINVAL);
    assert_int_equal(gh_config_set(&c, "model a", "upstream_url", "http://x:1, http://y:2", err,
                                   sizeof(err)), GH_OK);
    assert_int_equal(gh_config_set(&c, "model a", "api_key_env", "K1, K2, K3", err, sizeof(err)),
                     GH_OK);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "3 variables for 2 deployments"));
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "model a", "upstream_url", "http://x:1", err, sizeof(err)),
                     GH_OK);
    assert_int_equal(gh_config_set(&c, "model a", "fallbacks", "nowhere", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "there is no [model nowhere]"));
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "model a", "upstream_url", "http://x:1", err, sizeof(err)),
                     GH_OK);
    assert_int_equal(gh_config_set(&c, "model b", "upstream_url", "http://x:2", err, sizeof(err)),
                     GH_OK);
    assert_int_equal(gh_config_set(&c, "model b", "style", "openai", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_set(&c, "model a", "fallbacks", "b", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "OpenAI"));
}

static void default_models_are_priced_mocks(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
    assert_int_equal(c.nmodels, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(c.models[i].style, "mock");
        assert_true(c.models[i].price_input > 0 && c.models[i].price_output > 0);
    }
}

static void tiers_are_parsed_and_checked(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    assert_true(c.limits_enforce);
    assert_int_equal(c.limits_poll_ms, 200);
    assert_int_equal(c.cluster_lease_ttl_ms, 10000);
    assert_int_equal(c.cluster_poll_ms, 1000);
    assert_string_equal(c.cluster_node_id, "");
    assert_int_equal(c.ntiers, 0); /* the built-in table */
    char *path = write_tmp("[limits]\nenforce = false\npoll_ms = 50\n"
                           "[tier free]\nname = Free\npurchases_usd = 0\nmonthly_cap_usd = 5\n"
                           "requests_per_minute = 10\n"
                           "[tier pro]\npurchases_usd = 20.50\nmonthly_cap_usd = none\n"
                           "input_tokens_per_minute = 50000000000\n");
    assert_int_equal(gh_config_load(&c, path, err, sizeof(err)), GH_OK);
    unlink(path);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
    assert_false(c.limits_enforce);
    assert_int_equal(c.limits_poll_ms, 50);
    assert_int_equal(c.ntiers, 3); /* a custom tier is added */
    assert_string_equal(c.tiers[0].name, "Free");
    assert_int_equal(c.tiers[0].monthly_cap_nusd, 5 * GH_NUSD_PER_USD);
    assert_int_equal(c.tiers[0].requests_per_min, 10);
    assert_string_equal(c.tiers[1].name, "pro");
    assert_int_equal(c.tiers[1].purchases_to_enter_nusd, 20500000000);
    assert_int_equal(c.tiers[1].monthly_cap_nusd, 0);
    assert_int_equal(c.tiers[1].input_tokens_per_min, 50000000000);
    assert_string_equal(c.tiers[2].id, "custom");
    assert_true(c.tiers[2].custom);

    /* Mistakes name themselves. */
    static const char *const bad[][3] = {
        {"tier x", "purchases_usd", "-1"},       {"tier x", "purchases_usd", "1.001"},
        {"tier x", "monthly_cap_usd", "0"},      {"tier x", "requests_per_minute", "-1"},
        {"tier x", "requests_per_minute", "50000000001"},
        {"tier x", "colour", "red"},             {"tier Bad!", "name", "x"},
        {"tier", "name", "x"},                   {"limits", "enforce", "maybe"},
        {"limits", "poll_ms", "0"},
        {"cluster", "node_id", ""},
        {"cluster", "node_id", "a b"},
        {"cluster", "node_id", "node.1"},
        {"cluster", "node_id",
         "n12345678901234567890123456789012345678901234567890123456789012345"},
        {"cluster", "poll_ms", "5"},
        {"cluster", "lease_ttl_ms", "999"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gh_config_defaults(&c);
        if (gh_config_set(&c, bad[i][0], bad[i][1], bad[i][2], err, sizeof(err)) != GH_EINVAL)
            fail_msg("[%s] %s = %s was accepted", bad[i][0], bad[i][1], bad[i][2]);
    }
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "cluster", "node_id", "Node_b-2", err, sizeof(err)), GH_OK);
    assert_string_equal(c.cluster_node_id, "Node_b-2");
    assert_int_equal(gh_config_set(&c, "cluster", "poll_ms", "5001", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "lease_ttl_ms (10000) must be at least twice poll_ms (5001)"));
    /* Tiers go up; custom tiers come last; the first is reached by purchases. */
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "tier a", "purchases_usd", "10", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_set(&c, "tier b", "purchases_usd", "5", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "[tier b] must need more purchases_usd"));
    gh_config_defaults(&c);
    assert_int_equal(gh_config_set(&c, "tier vip", "custom", "true", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_set(&c, "tier a", "purchases_usd", "0", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "custom"));
}

static void model_classes_are_limited(void **state)
{
    (void)state;
    gh_config_t c;
    char err[256];
    gh_config_defaults(&c);
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
    assert_string_equal(c.models[0].model_class, "small"); /* the built-in mocks */
    assert_string_equal(c.models[1].model_class, "large");
    gh_config_defaults(&c);
    for (int i = 0; i < 9; i++) {
        char section[32];
        snprintf(section, sizeof(section), "model m%d", i);
        assert_int_equal(gh_config_set(&c, section, "style", "mock", err, sizeof(err)), GH_OK);
    }
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "at most 8 model classes"));
    gh_config_defaults(&c);
    for (int i = 0; i < 9; i++) {
        char section[32];
        snprintf(section, sizeof(section), "model m%d", i);
        assert_int_equal(gh_config_set(&c, section, "model_class", i % 2 ? "odd" : "even", err,
                                       sizeof(err)),
                         GH_OK);
        assert_int_equal(gh_config_set(&c, section, "style", "mock", err, sizeof(err)), GH_OK);
    }
    assert_int_equal(gh_config_finish(&c, err, sizeof(err)), GH_OK);
}

/* [store] url: sqlite:PATH (the default in data_dir) or a PostgreSQL URI without a password;
 * the older [store] path still works; the last one set wins (so --store beats the file). */
static void store_url_is_parsed_and_checked(void **state)
{
    (void)state;
    gh_config_t *c = malloc(sizeof(*c));
    assert_non_null(c);
    char err[512];

    gh_config_defaults(c);
    assert_int_equal(gh_config_set(c, "server", "data_dir", "/srv/gh", err, sizeof(err)), GH_OK);
    assert_int_equal(gh_config_finish(c, err, sizeof(err)), GH_OK);
    assert_string_equal(c->store_url, "sqlite:/srv/gh/gatehouse.db");
    assert_string_equal(c->db_path, "/srv/gh/gatehouse.db");
    assert_false(c->store_postgres);

    gh_config_defaults(c);
    assert_int_equal(gh_config_set(c, "store", "url", "sqlite:/data/x.db", err, sizeof(err)),
                     GH_OK);
    assert_int_equal(gh_config_finish(c, err, sizeof(err)), GH_OK);
    assert_string_equal(c->db_path, "/data/x.db");
    assert_false(c->store_postgres);

    gh_config_defaults(c);
    assert_int_equal(gh_config_set(c, "store", "path", "/old/spelling.db", err, sizeof(err)),
                     GH_OK);
    assert_int_equal(gh_config_set(c, "store", "url",
                                   "postgresql://gh@db.internal:5433/gatehouse?sslmode=require",
                                   err, sizeof(err)),
                     GH_OK);
    assert_int_equal(gh_config_set(c, "store", "password_env", "GH_TEST_PG_PASSWORD", err,
                                   sizeof(err)),
                     GH_OK);
    setenv("GH_TEST_PG_PASSWORD", "x", 1);
    assert_int_equal(gh_config_finish(c, err, sizeof(err)), GH_OK);
    assert_true(c->store_postgres);
    assert_string_equal(c->db_path, "");
    assert_string_equal(c->store_password_env, "GH_TEST_PG_PASSWORD");
    /* The variable named must exist. */
    unsetenv("GH_TEST_PG_PASSWORD");
    assert_int_equal(gh_config_finish(c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "GH_TEST_PG_PASSWORD, which is not set"));

    /* Refused, each with a message that says what to do, never echoing a password. */
    const struct {
        const char *key, *value, *says;
    } bad[] = {
        {"url", "postgresql://gh:hunter2@db/gatehouse", "must not contain a password"},
        {"url", "postgresql://gh@db/gatehouse?password=hunter2", "must not contain a password"},
        {"url", "mysql://db/gatehouse", "must be sqlite:PATH or postgresql://"},
        {"url", "/var/lib/gatehouse.db", "must be sqlite:PATH or postgresql://"},
        {"url", "sqlite:", "needs a file"},
        {"url", "postgresql://gh@db/gatehouse?nosuchoption=1", "not a valid PostgreSQL URI"},
        {"password_env", "PG PASSWORD", "name of an environment variable"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gh_config_defaults(c);
        err[0] = '\0';
        assert_int_equal(gh_config_set(c, "store", bad[i].key, bad[i].value, err, sizeof(err)),
                         GH_EINVAL);
        if (!strstr(err, bad[i].says))
            fail_msg("%s = %s: \"%s\" lacks \"%s\"", bad[i].key, bad[i].value, err,
                     bad[i].says);
        assert_null(strstr(err, "hunter2"));
    }

    /* From a file, with the line named on error. */
    const char *path = write_tmp("[store]\nurl = postgresql://gh:pw@db/x\n");
    gh_config_defaults(c);
    assert_int_equal(gh_config_load(c, path, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, ":2"));
    unlink(path);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_usable),        cmocka_unit_test(file_overrides_defaults),
        cmocka_unit_test(unknown_key_names_the_line), cmocka_unit_test(bad_values_are_refused),
        cmocka_unit_test(missing_file_is_an_io_error), cmocka_unit_test(addresses_split),
        cmocka_unit_test(example_config_is_accurate),
        cmocka_unit_test(models_are_parsed),
        cmocka_unit_test(deployments_are_parsed),
        cmocka_unit_test(default_models_are_priced_mocks),
        cmocka_unit_test(billing_options_are_checked),
        cmocka_unit_test(tiers_are_parsed_and_checked),
        cmocka_unit_test(model_classes_are_limited),
        cmocka_unit_test(store_url_is_parsed_and_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
