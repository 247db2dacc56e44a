/* The usage writer and an event the database refuses for its values (a permanent error),
 * on both backends: the batch is committed in halves down to the one event, every other
 * event lands (and is charged), the refused one is set aside in <journal>.rejected as a JSON
 * line and counted, and nothing is retried for ever. The same at the start's replay of a
 * journal that a run whose commits failed for a transient reason (the database locked by
 * another connection, retried, not set aside) left behind.
 *
 * The refusal is real: billing's part of the commit (a hook, as billing's) writes a usage
 * entry in the ledger, whose organization must exist (a foreign key on both backends); an
 * event of an organization that does not exist cannot be charged. On PostgreSQL a second
 * kind: negative tokens break a CHECK of usage_events. */
#include "pg_unit.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "core/usage.h"
#include "usage_hook.h"

#define EVENTS 40

typedef struct {
    char dir[64];
    char journal[128];
    char sqlite_path[64];
    char url[300]; /* PostgreSQL's database */
    gh_store_t *store;
    bool postgres;
} world_t;

static world_t *world_new(bool postgres)
{
    world_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-rej-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(w->journal, sizeof(w->journal), "%s/usage.journal", w->dir);
    w->postgres = postgres;
    if (postgres) {
        /* pg_unit_store's, keeping the URL for the lock holder. */
        char e[512] = "";
        pg_unit_fresh_db(w->url, sizeof(w->url));
        assert_int_equal(gh_postgres_ops.open(&w->store, w->url, e, sizeof(e)), GH_OK);
        (void)pg_unit_store;
    } else {
        w->store = pg_unit_sqlite_store(w->sqlite_path);
    }
    gh_db_t *db = gh_store_db(w->store);
    assert_non_null(db);
    assert_int_equal(gh_store_account_insert(db, &(gh_account_t){.id = "acct_1",
                                                                  .email = "a@example.com",
                                                                  .created_at = 1}),
                     GH_OK);
    assert_int_equal(gh_store_org_create(db, "org_real", "Real", "acct_1", "wrkspc_1", "#4f46e5", 1),
                     GH_OK);
    return w;
}

static void world_free(world_t *w)
{
    if (w->postgres)
        gh_store_close(w->store);
    else
        pg_unit_sqlite_close(w->store, w->sqlite_path);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    assert_int_equal(system(cmd), 0);
    free(w);
}


static void make_event(gh_usage_event_t *ev, int i, const char *org)
{
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->request_id, sizeof(ev->request_id), "req_%d", i);
    ev->created_at_ms = 1700000000000LL + i;
    snprintf(ev->org_id, sizeof(ev->org_id), "%s", org);
    snprintf(ev->workspace_id, sizeof(ev->workspace_id), "wrkspc_1");
    snprintf(ev->model, sizeof(ev->model), "m");
    snprintf(ev->route, sizeof(ev->route), "messages");
    ev->input_tokens = 3;
    ev->output_tokens = 5;
    ev->cost_nusd = ev->input_cost_nusd = 100 + i;
    ev->status = 200;
}

static void on_sums(void *ctx, const gh_ledger_sums_t *s)
{
    *(int64_t *)ctx += s->usage_entries_nusd;
}

/* What the ledger charged org_real for usage (a positive amount). */
static int64_t charged(world_t *w)
{
    int64_t sum = 0;
    assert_int_equal(gh_store_ledger_sums(gh_store_db(w->store), "org_real", on_sums, &sum),
                     GH_OK);
    return -sum;
}

/* The lines of the quarantine file. */
static int rejected_lines(world_t *w, char *buf, size_t size)
{
    char path[160];
    snprintf(path, sizeof(path), "%s.rejected", w->journal);
    buf[0] = '\0';
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    int lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    return lines;
}

static int64_t expected_cost(const int *bad, int nbad)
{
    int64_t sum = 0;
    for (int i = 1; i <= EVENTS; i++) {
        bool skip = false;
        for (int k = 0; k < nbad; k++)
            skip |= bad[k] == i;
        if (!skip)
            sum += 100 + i;
    }
    return sum;
}

static void writer_sets_aside_what_the_database_refuses(bool postgres)
{
    world_t *w = world_new(postgres);
    gh_usage_t *u;
    char err[256];
    assert_int_equal(gh_usage_open(&u, w->store, w->journal, &hook, err, sizeof(err)), GH_OK);
    /* Events 7 and 31 belong to no organization; on PostgreSQL 20 also breaks a CHECK. */
    int bad[] = {7, 31, 20};
    int nbad = postgres ? 3 : 2;
    for (int i = 1; i <= EVENTS; i++) {
        gh_usage_event_t ev;
        make_event(&ev, i, i == 7 || i == 31 ? "org_gone" : "org_real");
        if (postgres && i == 20)
            ev.output_tokens = -1;
        assert_int_equal(gh_usage_submit(u, &ev), GH_OK);
    }
    gh_usage_flush(u);
    gh_usage_stats_t s;
    gh_usage_stats(u, &s);
    printf("%s: %llu committed, %llu rejected, backlog %llu\n", postgres ? "postgres" : "sqlite",
           (unsigned long long)s.committed, (unsigned long long)s.rejected,
           (unsigned long long)s.queue_depth);
    assert_int_equal(s.queue_depth, 0);
    assert_int_equal(s.rejected, (uint64_t)nbad);
    assert_int_equal(s.committed, (uint64_t)(EVENTS - nbad));
    assert_false(s.writer_failing);
    char healthy[160];
    assert_true(gh_usage_healthy(u, healthy, sizeof(healthy)));

    /* Every other event is stored and charged. */
    assert_int_equal(charged(w), expected_cost(bad, nbad));
    char buf[8192];
    assert_int_equal(rejected_lines(w, buf, sizeof(buf)), nbad);
    printf("%s", buf);
    assert_non_null(strstr(buf, "\"request_id\":\"req_7\""));
    assert_non_null(strstr(buf, "\"request_id\":\"req_31\""));
    assert_non_null(strstr(buf, "\"org_id\":\"org_gone\""));
    assert_non_null(strstr(buf, "\"cost_nusd\":131"));
    if (postgres)
        assert_non_null(strstr(buf, "\"output_tokens\":-1"));
    gh_usage_close(u);

    /* A restart replays nothing twice and sets nothing aside twice. */
    assert_int_equal(gh_usage_open(&u, w->store, w->journal, &hook, err, sizeof(err)), GH_OK);
    gh_usage_flush(u);
    gh_usage_stats(u, &s);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(rejected_lines(w, buf, sizeof(buf)), nbad);
    assert_int_equal(charged(w), expected_cost(bad, nbad));
    gh_usage_close(u);
    world_free(w);
}

static void writer_sqlite(void **state)
{
    (void)state;
    writer_sets_aside_what_the_database_refuses(false);
}

static void writer_postgres(void **state)
{
    (void)state;
    writer_sets_aside_what_the_database_refuses(true);
}

/* Holds the write lock from another connection, so the writer's commits fail (a transient
 * failure: they are retried), or lets it go. */
typedef struct {
    sqlite3 *sq;
    gh_pg_conn_t *pg;
} holder_t;

static void hold(world_t *w, holder_t *h)
{
    memset(h, 0, sizeof(*h));
    if (w->postgres) {
        gh_pg_options_t opt;
        gh_pg_options_defaults(&opt);
        opt.url = w->url;
        char err[512];
        assert_int_equal(gh_pg_connect(&opt, &h->pg, err, sizeof(err)), GH_OK);
        assert_int_equal(gh_pg_exec(h->pg, "SELECT pg_advisory_lock(29106784831108197)"), GH_OK);
    } else {
        assert_int_equal(sqlite3_open(w->sqlite_path, &h->sq), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h->sq, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    }
}

static void release(holder_t *h)
{
    if (h->pg) {
        assert_int_equal(gh_pg_exec(h->pg, "SELECT pg_advisory_unlock(29106784831108197)"),
                         GH_OK);
        gh_pg_disconnect(h->pg);
    }
    if (h->sq) {
        assert_int_equal(sqlite3_exec(h->sq, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(h->sq);
    }
}

/* A run whose writer could not commit (the database locked by another connection) stops with
 * its events in the journal, one of them refused for its values: the next start's replay
 * sets that one aside and stores the rest, rather than refusing the whole journal (and with
 * it the model API) for ever. */
static void replay_sets_aside_what_the_database_refuses(bool postgres)
{
    world_t *w = world_new(postgres);
    gh_store_set_busy_timeout(w->store, 20);
    holder_t h;
    hold(w, &h);
    gh_usage_t *u;
    char err[256];
    assert_int_equal(gh_usage_open(&u, w->store, w->journal, &hook, err, sizeof(err)), GH_OK);
    for (int i = 1; i <= EVENTS; i++) {
        gh_usage_event_t ev;
        make_event(&ev, i, i == 12 ? "org_gone" : "org_real");
        assert_int_equal(gh_usage_submit(u, &ev), GH_OK);
    }
    gh_usage_close(u); /* gives up after a few attempts: the events stay journaled */
    release(&h);
    assert_int_equal(charged(w), 0);

    assert_int_equal(gh_usage_open(&u, w->store, w->journal, &hook, err, sizeof(err)), GH_OK);
    gh_usage_flush(u);
    gh_usage_stats_t s;
    gh_usage_stats(u, &s);
    char buf[8192];
    int lines = rejected_lines(w, buf, sizeof(buf));
    printf("%s replay: %llu rejected, charged %lld:\n%s", postgres ? "postgres" : "sqlite",
           (unsigned long long)s.rejected, (long long)charged(w), buf);
    assert_int_equal(s.rejected, 1);
    assert_int_equal(lines, 1);
    assert_non_null(strstr(buf, "\"request_id\":\"req_12\""));
    int bad[] = {12};
    assert_int_equal(charged(w), expected_cost(bad, 1));
    /* The journal accepts new events, and they land. */
    gh_usage_event_t ev;
    make_event(&ev, EVENTS + 1, "org_real");
    assert_int_equal(gh_usage_submit(u, &ev), GH_OK);
    gh_usage_flush(u);
    assert_int_equal(charged(w), expected_cost(bad, 1) + 100 + EVENTS + 1);
    gh_usage_close(u);
    world_free(w);
}

static void replay_sqlite(void **state)
{
    (void)state;
    replay_sets_aside_what_the_database_refuses(false);
}

static void replay_postgres(void **state)
{
    (void)state;
    replay_sets_aside_what_the_database_refuses(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writer_sqlite),
        cmocka_unit_test(writer_postgres),
        cmocka_unit_test(replay_sqlite),
        cmocka_unit_test(replay_postgres),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
