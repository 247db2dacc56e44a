#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "gateway/catalog.h"
#include "gateway/reqauth.h"

static gh_config_t cfg; /* large: not on the stack */
static gh_catalog_t *cat;
static h2o_mem_pool_t pool;

static int setup(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    const char *names[] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++)
        snprintf(cfg.models[i].name, sizeof(cfg.models[i].name), "%s", names[i]);
    snprintf(cfg.models[1].display_name, sizeof(cfg.models[1].display_name), "Beta \"B\"");
    cfg.nmodels = 3;
    h2o_mem_init_pool(&pool);
    return gh_catalog_new(&cat, &cfg) == GH_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gh_catalog_free(cat);
    h2o_mem_clear_pool(&pool);
    return 0;
}

/* One page as a NUL-terminated string (or the refusal's message), for the assertions. */
static gh_err_t page(const char *query, char *out, size_t size)
{
    const char *body;
    size_t len;
    char msg[256];
    gh_err_t rc = gh_catalog_page(cat, h2o_iovec_init(query, strlen(query)), &pool, &body, &len,
                                  msg, sizeof(msg));
    if (rc != GH_OK) {
        snprintf(out, size, "%s", msg);
        return rc;
    }
    assert_true(len < size);
    memcpy(out, body, len);
    out[len] = '\0';
    return rc;
}

static void the_whole_list_in_configuration_order(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(page("", out, sizeof(out)), GH_OK);
    const char *a = strstr(out, "\"id\":\"alpha\""), *b = strstr(out, "\"id\":\"beta\""),
               *g = strstr(out, "\"id\":\"gamma\"");
    assert_non_null(a);
    assert_true(a < b && b < g);
    assert_non_null(strstr(out, "\"display_name\":\"Beta \\\"B\\\"\""));
    assert_non_null(strstr(out, "\"display_name\":\"alpha\"")); /* default: the name */
    assert_non_null(strstr(out, "\"has_more\":false,\"first_id\":\"alpha\",\"last_id\":\"gamma\""));
}

static void pages_forwards_and_backwards(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(page("limit=2", out, sizeof(out)), GH_OK);
    assert_null(strstr(out, "gamma\",\"display_name"));
    assert_non_null(strstr(out, "\"has_more\":true,\"first_id\":\"alpha\",\"last_id\":\"beta\""));
    assert_int_equal(page("after_id=alpha&limit=1", out, sizeof(out)), GH_OK);
    assert_non_null(strstr(out, "\"has_more\":true,\"first_id\":\"beta\",\"last_id\":\"beta\""));
    assert_int_equal(page("before_id=gamma&limit=1", out, sizeof(out)), GH_OK);
    assert_non_null(strstr(out, "\"has_more\":true,\"first_id\":\"beta\",\"last_id\":\"beta\""));
    assert_int_equal(page("after_id=gam%6Da", out, sizeof(out)), GH_OK); /* percent-decoded */
    assert_non_null(strstr(out, "{\"data\":[],\"has_more\":false,\"first_id\":null"));
}

static void refuses_wrong_parameters_with_a_message(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(page("limit=0", out, sizeof(out)), GH_EINVAL);
    assert_string_equal(out, "limit: must be a whole number from 1 to 1000");
    assert_int_equal(page("limit=1001", out, sizeof(out)), GH_EINVAL);
    assert_int_equal(page("after_id=delta", out, sizeof(out)), GH_EINVAL);
    assert_string_equal(out, "after_id: there is no model delta");
    assert_int_equal(page("after_id=alpha&before_id=gamma", out, sizeof(out)), GH_EINVAL);
    assert_string_equal(out, "give after_id or before_id, not both");
    assert_int_equal(page("after_id=%zz", out, sizeof(out)), GH_EINVAL);
    assert_string_equal(out, "the query string is not valid or a value is too long");
}

static void finds_one_model_by_its_exact_name(void **state)
{
    (void)state;
    const char *body;
    size_t len;
    assert_true(gh_catalog_one(cat, "beta", 4, &body, &len));
    assert_true(len > 0 && memcmp(body, "{\"type\":\"model\",\"id\":\"beta\"", 27) == 0);
    assert_false(gh_catalog_one(cat, "bet", 3, &body, &len));
    assert_false(gh_catalog_one(cat, "betaa", 5, &body, &len));
}

static void checks_the_shape_of_version_and_beta_headers(void **state)
{
    (void)state;
    assert_true(gh_reqauth_version_ok(h2o_iovec_init(H2O_STRLIT("2023-06-01"))));
    assert_false(gh_reqauth_version_ok(h2o_iovec_init(H2O_STRLIT("2023-6-01"))));
    assert_false(gh_reqauth_version_ok(h2o_iovec_init(H2O_STRLIT("2023/06/01"))));
    assert_true(gh_reqauth_beta_ok(h2o_iovec_init(H2O_STRLIT("tools-2024-04-04, x.y_z"))));
    assert_false(gh_reqauth_beta_ok(h2o_iovec_init(H2O_STRLIT("a;b"))));
    h2o_iovec_t t = gh_reqauth_trim(h2o_iovec_init(H2O_STRLIT(" \tkey \t")));
    assert_true(h2o_memis(t.base, t.len, H2O_STRLIT("key")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_whole_list_in_configuration_order),
        cmocka_unit_test(pages_forwards_and_backwards),
        cmocka_unit_test(refuses_wrong_parameters_with_a_message),
        cmocka_unit_test(finds_one_model_by_its_exact_name),
        cmocka_unit_test(checks_the_shape_of_version_and_beta_headers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
