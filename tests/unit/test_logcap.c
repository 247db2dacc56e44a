#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "gateway/logcap.h"

static gh_logcap_t cap; /* large: not on the stack */

static void caps_one_address_and_summarises_it(void **state)
{
    (void)state;
    gh_logcap_summary_t sums[2];
    gh_logcap_init(&cap, 42);
    int admitted = 0;
    for (int i = 0; i < 1000; i++)
        admitted += gh_logcap_admit(&cap, "192.0.2.1", 100, sums);
    assert_int_equal(admitted, GH_LOGCAP_PER_ADDRESS);
    /* Another address is not held back by the first. */
    assert_true(gh_logcap_admit(&cap, "192.0.2.2", 100, sums));
    assert_int_equal(sums[0].count, 0);
    /* The next second: the first address's line is admitted and its summary handed out once. */
    assert_true(gh_logcap_admit(&cap, "192.0.2.1", 101, sums));
    assert_int_equal(sums[0].count, 1000 - GH_LOGCAP_PER_ADDRESS);
    assert_string_equal(sums[0].address, "192.0.2.1");
    assert_true(gh_logcap_admit(&cap, "192.0.2.1", 101, sums));
    assert_int_equal(sums[0].count, 0);
}

static void caps_a_loop_over_many_addresses(void **state)
{
    (void)state;
    gh_logcap_summary_t sums[2];
    gh_logcap_init(&cap, 7);
    char address[32];
    int admitted = 0;
    uint64_t summarised = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(address, sizeof(address), "2001:db8::%x", i);
        admitted += gh_logcap_admit(&cap, address, 5, sums);
        summarised += sums[0].count + sums[1].count;
    }
    assert_int_equal(admitted, GH_LOGCAP_PER_LOOP);
    assert_true(gh_logcap_admit(&cap, "2001:db8::1", 6, sums) || true);
    summarised += sums[0].count + sums[1].count;
    /* Every request not logged in the first second is accounted for in the loop's summary. */
    assert_int_equal(sums[1].count, 5000 - GH_LOGCAP_PER_LOOP);
    assert_string_equal(sums[1].address, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caps_one_address_and_summarises_it),
        cmocka_unit_test(caps_a_loop_over_many_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
