/* The cluster's rate buckets on PostgreSQL (migration 0013, src/store/postgres/rate.c): a
 * bucket never seen starts full; grants are all of `want`, or all there is when that reaches
 * `want_min`, or nothing; refill follows PostgreSQL's clock at the limit per minute up to the
 * capacity; tokens given back never lift a bucket above its capacity; a changed limit keeps what
 * was used; answers come back in the caller's order; eight connections drawing at once never
 * get more than the bucket holds. SQLite has no such buckets. */
#include "pg_unit.h"

#include <pthread.h>

#include "store/store.h"

#define U INT64_C(60000000)


static void sql_ok(pg_unit_world_t *w, const char *sql)
{
    gh_err_t rc = gh_pg_exec(w->raw, sql);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, w->raw->message);
    assert_int_equal(rc, GH_OK);
}

static gh_store_rate_draw_t row(const char *org, const char *ws, int kind, int64_t limit,
                                int64_t cap, int64_t want, int64_t want_min, int64_t back)
{
    return (gh_store_rate_draw_t){org, ws, "small", kind, limit, cap, want, want_min, back};
}

static int64_t draw1(pg_unit_world_t *w, gh_store_rate_draw_t r)
{
    int64_t g = -1, nodes = -1;
    assert_int_equal(gh_store_rate_draw(w->db, &r, 1, &g, &nodes), GH_OK);
    assert_true(nodes >= 1); /* the node drawing, at least */
    return g;
}

/* Stops the refill of org_a's requests bucket (its clock in the far future) at `tokens`. */
static void freeze(pg_unit_world_t *w, int64_t tokens)
{
    char sql[200];
    snprintf(sql, sizeof(sql),
             "UPDATE rate_buckets SET level = %lld, updated_us = 9000000000000000 "
             "WHERE org_id = 'org_a' AND kind = 0",
             (long long)(tokens * U));
    sql_ok(w, sql);
}

static int64_t level(pg_unit_world_t *w)
{
    return pg_unit_scalar(w, "SELECT level FROM rate_buckets WHERE org_id = 'org_a' AND kind = 0");
}

static void grants(void **state)
{
    pg_unit_world_t *w = *state;
    /* New: full (58), gives the 10 wanted. */
    assert_int_equal(draw1(w, row("org_a", "", 0, 60, 58, 10, 1, 0)), 10);
    freeze(w, 5);
    assert_int_equal(draw1(w, row("org_a", "", 0, 60, 58, 10, 0, 0)), 5); /* all there is */
    freeze(w, 5);
    assert_int_equal(draw1(w, row("org_a", "", 0, 60, 58, 10, 6, 0)), 0); /* below want_min */
    assert_int_equal(level(w), 5 * U);
    /* Given back: never above the capacity. */
    assert_int_equal(draw1(w, row("org_a", "", 0, 60, 58, 0, 0, 100)), 0);
    assert_int_equal(level(w), 58 * U);
    /* A limit raised to 120 (capacity 116) keeps what was used (nothing): 116 there. */
    assert_int_equal(draw1(w, row("org_a", "", 0, 120, 116, 100, 0, 0)), 100);
    assert_int_equal(pg_unit_scalar(w, "SELECT limit_per_min FROM rate_buckets WHERE org_id = 'org_a'"),
                     120);
    /* Lowered to 60 (capacity 58): 100 of 116 used, so nothing is left, not a debt. */
    assert_int_equal(draw1(w, row("org_a", "", 0, 60, 58, 1, 0, 0)), 0);
    /* Refill: one second of PostgreSQL's clock at 60 a minute is one token. */
    sql_ok(w, "UPDATE rate_buckets SET level = 0, updated_us = "
              "floor(extract(epoch FROM now()) * 1000000)::bigint - 1000000 - 50000 "
              "WHERE org_id = 'org_a' AND kind = 0");
    assert_int_equal(draw1(w, row("org_a", "", 0, 60, 58, 5, 0, 0)), 1);
}

/* Many buckets in one statement; answers in the caller's order, whatever the keys' order. */
static void batch_order(void **state)
{
    pg_unit_world_t *w = *state;
    gh_store_rate_draw_t rows[4] = {
        row("org_b", "", 0, 60, 58, 3, 0, 0),
        row("org_a", "ws_1", 1, 1000, 966, 500, 0, 0),
        row("org_a", "", 2, 10, 10, 20, 0, 0),
        row("org_a", "ws_1", 0, 5, 5, 4, 0, 0),
    };
    int64_t g[4], nodes = 0;
    assert_int_equal(gh_store_rate_draw(w->db, rows, 4, g, &nodes), GH_OK);
    assert_int_equal(nodes, 1); /* no money leases: the node drawing */
    assert_int_equal(g[0], 3);
    assert_int_equal(g[1], 500);
    assert_int_equal(g[2], 10); /* all there is */
    assert_int_equal(g[3], 4);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM rate_buckets"), 4);
    assert_int_equal(gh_store_rate_draw(w->db, rows, 0, g, &nodes), GH_OK);
    assert_int_equal(nodes, 0);
}

typedef struct {
    gh_store_t *store;
    int64_t granted;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    gh_db_t *db = gh_store_db(r->store);
    for (int i = 0; i < 20; i++) {
        gh_store_rate_draw_t d = {"org_r", "", "small", 0, 1, 50, 1, 1, 0};
        int64_t g = 0, nodes = 0;
        if (gh_store_rate_draw(db, &d, 1, &g, &nodes) == GH_OK)
            r->granted += g;
    }
    return NULL;
}

/* Eight connections, 160 draws of one token from a bucket of 50 that refills one a minute:
 * 50 granted (51 if a minute passed), never more. */
static void concurrent_draws(void **state)
{
    (void)state;
    gh_store_t *store = pg_unit_store();
    pthread_t t[8];
    racer_t r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (racer_t){store, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int64_t sum = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        sum += r[i].granted;
    }
    gh_store_close(store);
    assert_true(sum >= 50 && sum <= 51);
}

/* With the draw comes N, the nodes that held a money lease in the last minute (migration
 * 0016): leases lapsed more than a minute ago do not count, the node drawing always does. */
static void nodes_counted(void **state)
{
    pg_unit_world_t *w = *state;
    /* Lease rows without their organizations: this connection skips the foreign keys. */
    sql_ok(w, "SET session_replication_role = replica");
    sql_ok(w, "INSERT INTO cluster_leases VALUES "
              "('org_x', 'n1', 5, 1, now() + interval '10 seconds'), "
              "('org_y', 'n1', 5, 2, now() + interval '10 seconds'), "
              "('org_x', 'n2', 5, 3, now() - interval '30 seconds'), "
              "('org_x', 'n3', 5, 4, now() - interval '2 minutes')");
    gh_store_rate_draw_t r = row("org_a", "", 0, 60, 58, 1, 1, 0);
    int64_t g = 0, nodes = 0;
    assert_int_equal(gh_store_rate_draw(w->db, &r, 1, &g, &nodes), GH_OK);
    assert_int_equal(g, 1);
    assert_int_equal(nodes, 2);
}

static void sqlite_has_none(void **state)
{
    (void)state;
    char path[64];
    gh_store_t *s = pg_unit_sqlite_store(path);
    gh_store_rate_draw_t d = {"org_a", "", "small", 0, 60, 58, 1, 1, 0};
    int64_t g = 7, nodes = 7;
    assert_int_equal(gh_store_rate_draw(gh_store_db(s), &d, 1, &g, &nodes), GH_EUNAVAIL);
    assert_int_equal(nodes, 0);
    assert_int_equal(g, 0);
    pg_unit_sqlite_close(s, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(grants, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(batch_order, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(nodes_counted, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test(concurrent_draws),
        cmocka_unit_test(sqlite_has_none),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
