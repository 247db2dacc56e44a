/* CRC-32C (lib/crc32c.h): the standard check value, the empty input, and the CPU's instruction
 * agreeing with the table for every length from 0 to 300 bytes at every alignment up to 8. */
#include "unit.h"

#include <string.h>

#include "lib/crc32c.h"
#include "lib/crypto.h"

#include <sodium.h>

static void gives_the_standard_check_value(void **state)
{
    (void)state;
    assert_int_equal(gh_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(gh_crc32c_table("123456789", 9), 0xE3069283u);
    assert_int_equal(gh_crc32c("", 0), 0);
    /* 32 bytes of zeros, the iSCSI specification's (RFC 3720, B.4) first example. */
    unsigned char zeros[32] = {0};
    assert_int_equal(gh_crc32c(zeros, sizeof(zeros)), 0x8A9136AAu);
}

static void instruction_and_table_agree(void **state)
{
    (void)state;
    unsigned char data[308];
    randombytes_buf(data, sizeof(data));
    for (size_t at = 0; at < 8; at++)
        for (size_t len = 0; len <= 300; len++)
            assert_int_equal(gh_crc32c(data + at, len), gh_crc32c_table(data + at, len));
}

int main(void)
{
    if (gh_crypto_init() != GH_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gives_the_standard_check_value),
        cmocka_unit_test(instruction_and_table_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
