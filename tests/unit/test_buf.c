/* The bounded text buffer (lib/buf): growth, the maximum, failure that sticks, hand-over. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

static void grows_and_hands_over_the_text(void **state)
{
    (void)state;
    gh_buf_t b;
    gh_buf_init(&b, 1 << 20);
    for (int i = 0; i < 3000; i++) /* past the first allocation several times */
        gh_buf_put(&b, "abc");
    gh_buf_put_n(&b, "xyz", 1);
    assert_int_equal(b.len, 9001);
    assert_int_equal(b.err, GH_OK);
    char *text = gh_buf_take(&b);
    assert_non_null(text);
    assert_int_equal(strlen(text), 9001);
    assert_memory_equal(text, "abcabc", 6);
    assert_int_equal(text[9000], 'x');
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    free(text);
}

static void an_empty_buffer_hands_over_an_empty_string(void **state)
{
    (void)state;
    gh_buf_t b;
    gh_buf_init(&b, 16);
    char *text = gh_buf_take(&b);
    assert_non_null(text);
    assert_string_equal(text, "");
    free(text);
}

static void the_maximum_holds_and_failure_sticks(void **state)
{
    (void)state;
    gh_buf_t b;
    gh_buf_init(&b, 10);
    gh_buf_put(&b, "0123456789"); /* exactly the maximum */
    assert_int_equal(b.err, GH_OK);
    assert_true(b.cap <= 11);
    gh_buf_put(&b, "!");
    assert_int_equal(b.err, GH_ETOOBIG);
    assert_string_equal(b.p, "0123456789"); /* what it had stays */
    gh_buf_free(&b);
    assert_null(b.p);

    gh_buf_init(&b, 10);
    gh_buf_put(&b, "0123456789A"); /* one too many: nothing of it is kept */
    assert_int_equal(b.err, GH_ETOOBIG);
    gh_buf_put(&b, "ok"); /* later appends do nothing */
    assert_int_equal(b.len, 0);
    assert_null(gh_buf_take(&b)); /* a failed buffer hands over nothing and frees itself */
    assert_null(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_hands_over_the_text),
        cmocka_unit_test(an_empty_buffer_hands_over_an_empty_string),
        cmocka_unit_test(the_maximum_holds_and_failure_sticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
