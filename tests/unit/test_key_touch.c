/* The usage writer's memory of keys' last written use (core/key_touch.h): a key's first use
 * is due, a use within GH_KEY_TOUCH_EVERY_S of the last written one is not, one that far or
 * further is; a time never moves back; and when the table is emptied for room, every key
 * is due again (one more write, never a missed one). */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/key_touch.h"

static void first_use_is_due_then_once_a_minute(void **state)
{
    (void)state;
    gh_key_touch_t *t = malloc(sizeof(*t));
    assert_non_null(t);
    gh_key_touch_init(t);
    assert_true(gh_key_touch_due(t, "key_a", 1000));
    gh_key_touch_written(t, "key_a", 1000);
    assert_false(gh_key_touch_due(t, "key_a", 1000));
    assert_false(gh_key_touch_due(t, "key_a", 1000 + GH_KEY_TOUCH_EVERY_S - 1));
    assert_false(gh_key_touch_due(t, "key_a", 900)); /* an older event */
    assert_true(gh_key_touch_due(t, "key_a", 1000 + GH_KEY_TOUCH_EVERY_S));
    assert_true(gh_key_touch_due(t, "key_b", 1001)); /* another key's first use */
    gh_key_touch_written(t, "key_a", 1500);
    gh_key_touch_written(t, "key_a", 1200); /* never back */
    assert_false(gh_key_touch_due(t, "key_a", 1500 + GH_KEY_TOUCH_EVERY_S - 1));
    assert_true(gh_key_touch_due(t, "key_a", 1500 + GH_KEY_TOUCH_EVERY_S));
    assert_true(gh_key_touch_due(t, "", 1500)); /* no key: the caller skips it anyway */
    free(t);
}

static void emptied_when_full_so_every_key_is_due_again(void **state)
{
    (void)state;
    gh_key_touch_t *t = malloc(sizeof(*t));
    assert_non_null(t);
    gh_key_touch_init(t);
    char id[32];
    int limit = GH_KEY_TOUCH_SLOTS / 4 * 3;
    for (int k = 0; k < limit; k++) {
        snprintf(id, sizeof(id), "key_%05d", k);
        gh_key_touch_written(t, id, 1000);
    }
    for (int k = 0; k < limit; k++) {
        snprintf(id, sizeof(id), "key_%05d", k);
        assert_false(gh_key_touch_due(t, id, 1001));
    }
    gh_key_touch_written(t, "key_one_more", 1000); /* past three quarters: emptied first */
    assert_false(gh_key_touch_due(t, "key_one_more", 1001));
    assert_true(gh_key_touch_due(t, "key_00000", 1001));
    assert_true(t->used == 1);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_use_is_due_then_once_a_minute),
        cmocka_unit_test(emptied_when_full_so_every_key_is_due_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
