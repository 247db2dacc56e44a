#include "unit.h"

#include <string.h>

#include "lib/money.h"

static void parses_decimal_usd_exactly(void **state)
{
    (void)state;
    int64_t v;
    static const struct {
        const char *text;
        int64_t nusd;
    } ok[] = {
        {"0", 0},
        {"3", 3000000000},
        {"12.50", 12500000000},
        {"0.000000001", 1},
        {"0.1", 100000000},
        {"1000000", INT64_C(1000000000000000)},
        {"9223372036.854775807", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(gh_money_parse_usd(ok[i].text, &v), GH_OK);
        assert_int_equal(v, ok[i].nusd);
    }
    static const char *const bad[] = {"",    "-1",   "+1",  "1e3",         "0.0000000001", " 1",
                                      "1 ",  "1,00", ".5",  "5.",          "abc",          "1..2",
                                      "0x10", "9223372036.854775808", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gh_money_parse_usd(bad[i], &v) != GH_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
}

static void formats_back_exactly(void **state)
{
    (void)state;
    char out[GH_MONEY_TEXT_MAX];
    gh_money_format_usd(12500000000, out);
    assert_string_equal(out, "12.50");
    gh_money_format_usd(1, out);
    assert_string_equal(out, "0.000000001");
    gh_money_format_usd(0, out);
    assert_string_equal(out, "0.00");
    gh_money_format_usd(-5000000000, out);
    assert_string_equal(out, "-5.00");
    gh_money_format_usd(INT64_MIN, out);
    assert_string_equal(out, "-9223372036.854775808");
    /* Round trip. */
    int64_t v;
    const char *samples[] = {"0.01", "3.75", "123.456789", "0.30"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(gh_money_parse_usd(samples[i], &v), GH_OK);
        gh_money_format_usd(v, out);
        assert_string_equal(out, samples[i]);
    }
}

static void costs_from_prices_per_million(void **state)
{
    (void)state;
    /* $3 per million tokens: 1,000 tokens cost $0.003 = 3,000,000 nano-USD. */
    assert_int_equal(gh_price_cost(1000, 3000000000), 3000000);
    assert_int_equal(gh_price_cost(1, 3000000000), 3000);
    /* $0.30 per million: 1 token is 300 nano-USD; 7 tokens at $0.0000005/M round to 0. */
    assert_int_equal(gh_price_cost(1, 300000000), 300);
    assert_int_equal(gh_price_cost(7, 500), 0);
    /* Half up: 1 token at 1,500,000 nano/M = 1.5 nano -> 2. */
    assert_int_equal(gh_price_cost(1, 1500000), 2);
    assert_int_equal(gh_price_cost(1, 1499999), 1);
    assert_int_equal(gh_price_cost(0, 3000000000), 0);
    assert_int_equal(gh_price_cost(-5, 3000000000), 0);
    /* No overflow: saturates. */
    assert_int_equal(gh_price_cost(INT64_MAX, INT64_MAX), INT64_MAX);
    assert_int_equal(gh_price_cost(INT64_C(1000000000000), 15000000000), INT64_C(15000000000000000)); /* $15M */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_decimal_usd_exactly),
        cmocka_unit_test(formats_back_exactly),
        cmocka_unit_test(costs_from_prices_per_million),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
