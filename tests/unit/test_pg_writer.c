/* The usage writer's two lanes on PostgreSQL (core/usage.c, run_lane; store.h, the writer's
 * lanes), against a real PostgreSQL 15 that scripts/pg-test.sh starts for this binary.
 *
 * Another connection holds the write lock while events are submitted, so the writer's
 * progress can be watched in pg_stat_activity without any timing: the first lane's batch
 * waits for the lock, and the second lane's batch is staged meanwhile (its events and minute
 * rollups written, its transaction open) and waits for its turn in the writer, not for the
 * lock. Nothing is committed until the lock is let go; then both batches commit, in order,
 * with their charges, and each lane's minute rows are its own. The same with an event the
 * database refuses in the first batch: that batch is sifted in its turn, the event set
 * aside, the second lane's batch commits after it. */
#include "pg_unit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "core/usage.h"
#include "usage_hook.h"

#define EVENTS 3000 /* more than one batch (GH_USAGE_BATCH_MAX): both lanes take one */
#define ORGS 2
#define WAIT_MS 60000 /* the longest the writer may take to reach the watched state */

static const char *const org_ids[ORGS] = {"org_a", "org_b"};

/* pg_unit.h's own openers go unused here (pg_unit_world_setup opens the store). */
static const struct {
    gh_store_t *(*pg)(void);
    gh_store_t *(*sqlite)(char[64]);
    void (*sqlite_close)(gh_store_t *, const char[64]);
} unused_openers __attribute__((unused)) = {pg_unit_store, pg_unit_sqlite_store,
                                            pg_unit_sqlite_close};

typedef struct {
    char dir[64];
    char journal[128];
    pg_unit_world_t *pg;
} world_t;

static world_t *world_new(void)
{
    world_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    void *state = NULL;
    assert_int_equal(pg_unit_world_setup(&state), 0);
    w->pg = state;
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-lanes-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(w->journal, sizeof(w->journal), "%s/usage.journal", w->dir);
    /* Waits for the write lock last as long as the test holds it. */
    gh_store_set_busy_timeout(w->pg->store, WAIT_MS);
    gh_db_t *db = w->pg->db;
    assert_int_equal(gh_store_account_insert(db, &(gh_account_t){.id = "acct_1",
                                                                  .email = "a@example.com",
                                                                  .created_at = 1}),
                     GH_OK);
    for (int o = 0; o < ORGS; o++) {
        char ws[32];
        snprintf(ws, sizeof(ws), "wrkspc_%d", o);
        assert_int_equal(gh_store_org_create(db, org_ids[o], org_ids[o], "acct_1", ws,
                                             "#4f46e5", 1),
                         GH_OK);
    }
    return w;
}

static void world_free(world_t *w)
{
    void *state = w->pg;
    assert_int_equal(pg_unit_world_teardown(&state), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    assert_int_equal(system(cmd), 0);
    free(w);
}


/* Event i (1-based): organization, key and model by i, one a millisecond. */
static void make_event(gh_usage_event_t *ev, int i)
{
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->request_id, sizeof(ev->request_id), "req_%d", i);
    ev->created_at_ms = 1796601600000LL + i; /* 2026-12-07T00:00:00Z on */
    snprintf(ev->org_id, sizeof(ev->org_id), "%s", org_ids[i % ORGS]);
    snprintf(ev->workspace_id, sizeof(ev->workspace_id), "wrkspc_%d", i % ORGS);
    snprintf(ev->key_id, sizeof(ev->key_id), "apikey_%d", i % 7);
    snprintf(ev->model, sizeof(ev->model), "model-%d", i % 3);
    snprintf(ev->route, sizeof(ev->route), "messages");
    ev->input_tokens = 3;
    ev->output_tokens = 5;
    ev->cost_nusd = ev->input_cost_nusd = 100 + i;
    ev->status = 200;
}

/* What the ledger charged for usage, all organizations (a positive amount). */
static int64_t charged(world_t *w)
{
    return -pg_unit_scalar(w->pg, "SELECT coalesce(sum(amount_nusd), 0) FROM ledger_entries "
                                  "WHERE kind = 'usage'");
}

/* The write lock, held by a connection of the test's (a session lock, as gh_store_begin's
 * transaction lock conflicts with it). */
static gh_pg_conn_t *hold_write_lock(world_t *w)
{
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = w->pg->url;
    gh_pg_conn_t *c = NULL;
    char err[512];
    assert_int_equal(gh_pg_connect(&opt, &c, err, sizeof(err)), GH_OK);
    assert_int_equal(gh_pg_exec(c, "SELECT pg_advisory_lock(29106784831108197)"), GH_OK);
    return c;
}

static void release_write_lock(gh_pg_conn_t *c)
{
    assert_int_equal(gh_pg_exec(c, "SELECT pg_advisory_unlock(29106784831108197)"), GH_OK);
    gh_pg_disconnect(c);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits, up to WAIT_MS, until one of the writer's connections waits for the write lock and
 * another is idle inside a transaction whose last statement was its minute rollups (a staged
 * batch waiting for its turn). Polls pg_stat_activity; fails the test past the deadline. */
static void wait_for_staged_lane(world_t *w)
{
    static const char sql[] =
        "SELECT (count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'advisory') "
        "= 1 AND count(*) FILTER (WHERE state = 'idle in transaction' AND query LIKE "
        "'INSERT INTO usage_rollup_minute%') = 1)::int FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()";
    int64_t deadline = mono_ms() + WAIT_MS;
    while (!pg_unit_scalar(w->pg, sql)) {
        if (mono_ms() > deadline) {
            PGresult *res = NULL;
            if (!gh_pg_query(w->pg->raw,
                             "SELECT state, wait_event, left(query, 60) FROM pg_stat_activity "
                             "WHERE datname = current_database()",
                             0, NULL, &res)) {
                for (int r = 0; r < PQntuples(res); r++)
                    fprintf(stderr, "  %s | %s | %s\n", PQgetvalue(res, r, 0),
                            PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
                PQclear(res);
            }
            fail_msg("the writer's lanes did not reach the watched state in %d ms", WAIT_MS);
        }
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL); /* a poll, not a bet */
    }
}

static void submit_all(gh_usage_t *u, int bad)
{
    for (int i = 1; i <= EVENTS; i++) {
        gh_usage_event_t ev;
        make_event(&ev, i);
        if (i == bad)
            ev.output_tokens = -1; /* breaks a CHECK of usage_events */
        assert_int_equal(gh_usage_submit(u, &ev), GH_OK);
    }
}

static int64_t expected_cost(int bad)
{
    int64_t sum = 0;
    for (int i = 1; i <= EVENTS; i++)
        sum += i == bad ? 0 : 100 + i;
    return sum;
}

/* After the writer is done: every event but `bad` stored, rolled up and charged once, in the
 * minute rows of both lanes. */
static void check_committed(world_t *w, gh_usage_t *u, int bad)
{
    int kept = EVENTS - (bad ? 1 : 0);
    gh_usage_stats_t s;
    gh_usage_stats(u, &s);
    printf("%llu committed in %llu batches, %llu rejected, %llu failed commits\n",
           (unsigned long long)s.committed, (unsigned long long)s.batches,
           (unsigned long long)s.rejected, (unsigned long long)s.commit_failures);
    assert_int_equal(s.committed, (uint64_t)kept);
    assert_int_equal(s.rejected, bad ? 1 : 0);
    assert_int_equal(s.queue_depth, 0);
    assert_int_equal(pg_unit_scalar(w->pg, "SELECT count(*) FROM usage_events"), kept);
    assert_int_equal(pg_unit_scalar(w->pg, "SELECT sum(requests) FROM usage_rollup_minute"),
                     kept);
    assert_int_equal(pg_unit_scalar(w->pg, "SELECT sum(input_cost_nusd) FROM "
                                            "usage_rollup_minute"),
                     expected_cost(bad));
    assert_int_equal(charged(w), expected_cost(bad));
    /* Each lane wrote minute rows of its own, under the node's id. */
    assert_int_equal(pg_unit_scalar(w->pg, "SELECT count(DISTINCT lane) FROM "
                                            "usage_rollup_minute WHERE node_id = 'local'"),
                     2);
}

/* With the write lock held by the test: opens the writer, submits every event (`bad`, if
 * not 0, refused), waits until one lane waits for the lock and the other is staged, checks
 * that nothing is visible yet, lets the lock go and waits for the writer to be done. */
static gh_usage_t *run_held(world_t *w, int bad)
{
    gh_pg_conn_t *lock = hold_write_lock(w);
    gh_usage_t *u;
    char err[256];
    assert_int_equal(gh_usage_open(&u, w->pg->store, w->journal, &hook, err, sizeof(err)),
                     GH_OK);
    submit_all(u, bad);
    wait_for_staged_lane(w);
    /* Staged is not committed: nothing is visible, nothing charged. */
    assert_int_equal(pg_unit_scalar(w->pg, "SELECT count(*) FROM usage_events"), 0);
    assert_int_equal(charged(w), 0);
    release_write_lock(lock);
    gh_usage_flush(u);
    return u;
}

static void lanes_stage_then_commit_in_turn(void **state)
{
    (void)state;
    world_t *w = world_new();
    gh_usage_t *u = run_held(w, 0);
    check_committed(w, u, 0);
    gh_usage_stats_t s;
    gh_usage_stats(u, &s);
    assert_int_equal(s.commit_failures, 0);
    gh_usage_close(u);
    world_free(w);
}

static void refused_event_in_the_first_lane_is_set_aside_in_turn(void **state)
{
    (void)state;
    world_t *w = world_new();
    /* Event 1 is in the first batch, whatever its size: its staged insert fails on the
     * CHECK, and the batch waits for the lock to be sifted one transaction at a time. */
    gh_usage_t *u = run_held(w, 1);
    check_committed(w, u, 1);
    char path[160], buf[4096] = "";
    snprintf(path, sizeof(path), "%s.rejected", w->journal);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    printf("%s", buf);
    assert_non_null(strstr(buf, "\"request_id\":\"req_1\""));
    assert_non_null(strstr(buf, "\"output_tokens\":-1"));
    gh_usage_close(u);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lanes_stage_then_commit_in_turn),
        cmocka_unit_test(refused_event_in_the_first_lane_is_set_aside_in_turn),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
