#include "unit.h"

#include "core/tiers.h"
#include "lib/money.h"

#define USD(n) ((int64_t)(n) * GH_NUSD_PER_USD)
#define CENTS(n) ((int64_t)(n) * (GH_NUSD_PER_USD / 100))

static void default_table(void **state)
{
    (void)state;
    const gh_tier_table_t *t = &gh_tiers_default;
    assert_int_equal(t->count, 6);
    const gh_tier_t *e = gh_tier_find(t, "evaluation");
    assert_non_null(e);
    assert_string_equal(e->name, "Evaluation");
    assert_int_equal(e->purchases_to_enter_nusd, 0);
    assert_int_equal(e->monthly_cap_nusd, USD(10));
    assert_int_equal(e->rate.requests_per_min, 50);
    assert_int_equal(e->rate.input_tokens_per_min, 20000);
    assert_int_equal(e->rate.output_tokens_per_min, 4000);
    const gh_tier_t *t4 = gh_tier_find(t, "tier_4");
    assert_int_equal(t4->purchases_to_enter_nusd, USD(400));
    assert_int_equal(t4->monthly_cap_nusd, USD(5000));
    assert_int_equal(t4->rate.requests_per_min, 4000);
    assert_int_equal(t4->rate.input_tokens_per_min, 2000000);
    assert_int_equal(t4->rate.output_tokens_per_min, 400000);
    const gh_tier_t *c = gh_tier_find(t, "custom");
    assert_true(c->custom);
    assert_int_equal(c->monthly_cap_nusd, 0);
    assert_null(gh_tier_find(t, "tier_9"));
}

static void tier_for_purchases(void **state)
{
    (void)state;
    const gh_tier_table_t *t = &gh_tiers_default;
    static const struct {
        int64_t nusd;
        const char *id;
    } cases[] = {
        {-1, "evaluation"},          {0, "evaluation"},        {CENTS(499), "evaluation"},
        {USD(5), "tier_1"},          {USD(40) - 1, "tier_1"},  {USD(40), "tier_2"},
        {USD(200), "tier_3"},        {USD(399), "tier_3"},     {USD(400), "tier_4"},
        {INT64_MAX, "tier_4"}, /* never custom */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(gh_tier_for_purchases(t, cases[i].nusd)->id, cases[i].id);
}

static void next_and_progress(void **state)
{
    (void)state;
    const gh_tier_table_t *t = &gh_tiers_default;
    assert_string_equal(gh_tier_next(t, gh_tier_find(t, "evaluation"))->id, "tier_1");
    assert_null(gh_tier_next(t, gh_tier_find(t, "tier_4")));
    assert_null(gh_tier_next(t, gh_tier_find(t, "custom")));

    gh_tier_progress_t p;
    gh_tier_progress(t, USD(20), &p);
    assert_string_equal(p.current->id, "tier_1");
    assert_string_equal(p.next->id, "tier_2");
    assert_int_equal(p.needed_nusd, USD(20));
    assert_int_equal(p.progress_bp, 4285); /* (20 - 5) / (40 - 5) */
    gh_tier_progress(t, 0, &p);
    assert_string_equal(p.current->id, "evaluation");
    assert_int_equal(p.needed_nusd, USD(5));
    assert_int_equal(p.progress_bp, 0);
    gh_tier_progress(t, USD(1000), &p);
    assert_string_equal(p.current->id, "tier_4");
    assert_null(p.next);
    assert_int_equal(p.needed_nusd, 0);
    assert_int_equal(p.progress_bp, 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_table),
        cmocka_unit_test(tier_for_purchases),
        cmocka_unit_test(next_and_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
