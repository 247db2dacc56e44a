#include "unit.h"

#include <string.h>
#include <time.h>

#include "lib/utc.h"

/* Every day from 1800 to 2400 against the C library's calendar, both ways. */
static void agrees_with_libc(void **state)
{
    (void)state;
    int64_t first = gh_utc_days_from_civil(1800, 1, 1), last = gh_utc_days_from_civil(2400, 12, 31);
    for (int64_t days = first; days <= last; days++) {
        time_t t = (time_t)(days * GH_UTC_SECONDS_PER_DAY);
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        int64_t y;
        int m, d;
        gh_utc_civil_from_days(days, &y, &m, &d);
        assert_int_equal(y, tm.tm_year + 1900);
        assert_int_equal(m, tm.tm_mon + 1);
        assert_int_equal(d, tm.tm_mday);
        assert_int_equal(gh_utc_days_from_civil(y, m, d), days);
    }
}

static void month_keys_and_boundaries(void **state)
{
    (void)state;
    const int64_t dec31_last = 1798761599; /* 2026-12-31T23:59:59Z */
    assert_int_equal(gh_utc_month_key(dec31_last), 202612);
    assert_int_equal(gh_utc_month_key(dec31_last + 1), 202701);
    assert_int_equal(gh_utc_next_month_s(dec31_last), dec31_last + 1);
    assert_int_equal(gh_utc_month_start_s(dec31_last + 1), dec31_last + 1);
    assert_int_equal(gh_utc_month_start_s(dec31_last), gh_utc_days_from_civil(2026, 12, 1) * 86400);
    /* February of a leap year, and of a century that is not one. */
    assert_int_equal(gh_utc_next_month_s(951782400), gh_utc_days_from_civil(2000, 3, 1) * 86400);
    assert_int_equal(gh_utc_days_from_civil(2100, 3, 1) - gh_utc_days_from_civil(2100, 2, 1), 28);
    assert_int_equal(gh_utc_days_from_civil(2000, 3, 1) - gh_utc_days_from_civil(2000, 2, 1), 29);
    /* Before the epoch: one second before it is still 1969. */
    assert_int_equal(gh_utc_month_key(-1), 196912);
    assert_int_equal(gh_utc_month_key(0), 197001);
}

static void rfc3339(void **state)
{
    (void)state;
    char out[GH_UTC_RFC3339_MAX];
    assert_int_equal(gh_utc_rfc3339(1795608000, out), 20);
    assert_string_equal(out, "2026-11-25T12:00:00Z");
    gh_utc_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    gh_utc_rfc3339(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    gh_utc_rfc3339(951782400 + 86399, out);
    assert_string_equal(out, "2000-02-29T23:59:59Z");
    gh_utc_rfc3339(INT64_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59Z");
    gh_utc_rfc3339(INT64_MIN, out);
    assert_string_equal(out, "0000-01-01T00:00:00Z");
}

/* Times in the order a server meets them (seconds running over midnight) and jumping between
 * days at every call (the date part is kept from call to call): each as libc writes it. */
static void rfc3339_agrees_with_libc_across_days(void **state)
{
    (void)state;
    const int64_t midnights[] = {0, 951782400 + 86400, 1798761600, 4107542400};
    for (size_t i = 0; i < sizeof(midnights) / sizeof(midnights[0]); i++) {
        for (int64_t t = midnights[i] - 90000; t <= midnights[i] + 90000; t += 7) {
            int64_t ts[] = {t, t + 86400 * 400, t};
            for (int k = 0; k < 3; k++) {
                time_t tt = (time_t)ts[k];
                struct tm tm;
                char want[32], out[GH_UTC_RFC3339_MAX];
                assert_non_null(gmtime_r(&tt, &tm));
                strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
                assert_int_equal(gh_utc_rfc3339(ts[k], out), 20);
                if (strcmp(out, want) != 0)
                    fail_msg("%lld: %s, libc %s", (long long)ts[k], out, want);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agrees_with_libc),
        cmocka_unit_test(month_keys_and_boundaries),
        cmocka_unit_test(rfc3339),
        cmocka_unit_test(rfc3339_agrees_with_libc_across_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
