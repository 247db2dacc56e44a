/* The block cache: a block given back is handed out again for a request of its class and
 * only of its class, the cache keeps at most GH_BLOCKCACHE_MAX blocks (ASan's leak check, in
 * make test, fails the run if one given back when full is not freed), and clearing frees what
 * it kept. */
#include "unit.h"

#include <string.h>

#include "lib/blockcache.h"

static void rounds_sizes_up_to_their_class(void **state)
{
    (void)state;
    gh_blockcache_t bc = {0};
    size_t got;
    void *a = gh_blockcache_get(&bc, 1, &got);
    assert_non_null(a);
    assert_int_equal(got, GH_BLOCKCACHE_CLASS);
    memset(a, 1, got); /* the whole class is usable */
    gh_blockcache_put(&bc, a, got);
    void *b = gh_blockcache_get(&bc, 0, &got);
    assert_ptr_equal(b, a); /* 0 bytes: the smallest class */
    gh_blockcache_put(&bc, b, got);
    b = gh_blockcache_get(&bc, 5000, &got);
    assert_int_equal(got, 5120);
    memset(b, 2, got);
    gh_blockcache_put(&bc, b, got);
    assert_int_equal(bc.count, 2);
    gh_blockcache_clear(&bc);
    assert_int_equal(bc.count, 0);
}

static void reuses_a_block_only_for_its_class(void **state)
{
    (void)state;
    gh_blockcache_t bc = {0};
    size_t got_a, got_b, got;
    void *a = gh_blockcache_get(&bc, 4700, &got_a);
    void *b = gh_blockcache_get(&bc, 900, &got_b);
    gh_blockcache_put(&bc, a, got_a);
    gh_blockcache_put(&bc, b, got_b);
    /* Any size of a's class gets a back; b stays kept. */
    void *c = gh_blockcache_get(&bc, 4609, &got);
    assert_ptr_equal(c, a);
    assert_int_equal(got, got_a);
    assert_int_equal(bc.count, 1);
    /* A size of no kept class is a new block, and leaves the cache as it was. */
    void *d = gh_blockcache_get(&bc, 4608, &got);
    assert_non_null(d);
    assert_ptr_not_equal(d, b);
    assert_int_equal(got, 4608);
    assert_int_equal(bc.count, 1);
    gh_blockcache_put(&bc, c, got_a);
    gh_blockcache_put(&bc, d, got);
    gh_blockcache_clear(&bc);
}

static void keeps_at_most_its_capacity(void **state)
{
    (void)state;
    gh_blockcache_t bc = {0};
    void *blocks[GH_BLOCKCACHE_MAX + 5];
    size_t got = 0;
    for (size_t i = 0; i < GH_BLOCKCACHE_MAX + 5; i++)
        blocks[i] = gh_blockcache_get(&bc, 3000, &got);
    for (size_t i = 0; i < GH_BLOCKCACHE_MAX + 5; i++)
        gh_blockcache_put(&bc, blocks[i], got); /* the last 5 are freed */
    assert_int_equal(bc.count, GH_BLOCKCACHE_MAX);
    /* The most recently kept comes out first. */
    void *again = gh_blockcache_get(&bc, 3000, &got);
    assert_ptr_equal(again, blocks[GH_BLOCKCACHE_MAX - 1]);
    gh_blockcache_put(&bc, again, got);
    gh_blockcache_put(&bc, NULL, got); /* nothing */
    assert_int_equal(bc.count, GH_BLOCKCACHE_MAX);
    gh_blockcache_clear(&bc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rounds_sizes_up_to_their_class),
        cmocka_unit_test(reuses_a_block_only_for_its_class),
        cmocka_unit_test(keeps_at_most_its_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
