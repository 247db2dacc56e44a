#include "unit.h"

#include <pthread.h>
#include <stdio.h>

#include "lib/crypto.h"
#include "lib/throttle.h"

static void limits_within_a_window(void **state)
{
    (void)state;
    gh_throttle_t *t;
    assert_int_equal(gh_throttle_new(&t), GH_OK);
    int retry = -1;
    for (int i = 0; i < 3; i++)
        assert_true(gh_throttle_hit(t, "email:a@b.com", 3, 60, 1000, &retry));
    assert_false(gh_throttle_hit(t, "email:a@b.com", 3, 60, 1010, &retry));
    assert_int_equal(retry, 50);
    /* Other keys are independent. */
    assert_true(gh_throttle_hit(t, "email:c@d.com", 3, 60, 1010, &retry));
    /* A new window starts when the old one has run out. */
    assert_true(gh_throttle_hit(t, "email:a@b.com", 3, 60, 1060, &retry));
    gh_throttle_free(t);
}

static void full_table_recycles_stale_entries(void **state)
{
    (void)state;
    gh_throttle_t *t;
    assert_int_equal(gh_throttle_new(&t), GH_OK);
    char key[32];
    for (int i = 0; i < GH_THROTTLE_SLOTS * 2; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_true(gh_throttle_hit(t, key, 1, 10, 100 + i / 1000, NULL));
    }
    /* A key just limited is still limited: recent entries are not the ones recycled. */
    assert_true(gh_throttle_hit(t, "victim", 1, 10, 500, NULL));
    assert_false(gh_throttle_hit(t, "victim", 1, 10, 501, NULL));
    gh_throttle_free(t);
}

typedef struct {
    gh_throttle_t *t;
    int allowed;
} worker_t;

static void *worker(void *p)
{
    worker_t *w = p;
    for (int i = 0; i < 1000; i++)
        if (gh_throttle_hit(w->t, "shared", 100, 60, 5000, NULL))
            w->allowed++;
    return NULL;
}

static void exact_under_threads(void **state)
{
    (void)state;
    gh_throttle_t *t;
    assert_int_equal(gh_throttle_new(&t), GH_OK);
    pthread_t th[4];
    worker_t w[4] = {{t, 0}, {t, 0}, {t, 0}, {t, 0}};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, &w[i]);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += w[i].allowed;
    }
    assert_int_equal(total, 100);
    gh_throttle_free(t);
}

int main(void)
{
    if (gh_crypto_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limits_within_a_window),
        cmocka_unit_test(full_table_recycles_stale_entries),
        cmocka_unit_test(exact_under_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
