/* The cluster's store functions (src/store/postgres/cluster.c and migration 0011) against a
 * real PostgreSQL 15: the triggers write a change for what the nodes hold in memory and not
 * for the rest (a key's last use), in commit order; a notification carries the change, or is
 * left out with gatehouse.cluster_notify = off; a kick; the leader lock held by one session;
 * a connection cut under the listener is reported, and listening and leading resume; old
 * changes are pruned. On SQLite: no feed, and the one node leads. */
#include "pg_fixture.h"

#define LEADER_LOCK "29106774330454372"

typedef struct {
    gh_change_t got[16];
    int n;
} changes_t;

static void collect(void *ctx, const gh_change_t *c)
{
    changes_t *cs = ctx;
    if (cs->n < 16)
        cs->got[cs->n++] = *c;
}

static void add_key(pgf_t *f)
{
    pgf_sql(f, "INSERT INTO workspaces (id, org_id, name, display_color, is_default, created_at) "
               "VALUES ('ws_1', 'org_1', 'Default', '#000000', true, now())");
    pgf_sql(f, "INSERT INTO keys (id, kind, org_id, workspace_id, name, key_hash, hint, status, "
               "created_by_type, created_by_id, created_at) VALUES ('key_1', 'api', 'org_1', "
               "'ws_1', 'k', 'hash_1', 'sk-...1', 'active', 'user', 'acc_1', now())");
}

static void test_feed(void **state)
{
    pgf_t *f = *state;
    bool leader = false;
    unsigned events = 9;
    if (pgf_on_sqlite) {
        assert_int_equal(gh_store_cluster_listen(f->db), GH_EUNAVAIL);
        assert_int_equal(gh_store_cluster_wait(f->db, -1, 10, &events, NULL, NULL), GH_EUNAVAIL);
        assert_int_equal(events, 0);
        assert_int_equal(gh_store_cluster_lead(f->db, &leader), GH_OK);
        assert_true(leader);
        return;
    }
    int64_t max = -1;
    assert_int_equal(gh_store_cluster_change_max(f->db, &max), GH_OK);
    int64_t start = max; /* the fixture's organization is a change already */
    assert_int_equal(start, 1);
    assert_int_equal(gh_store_cluster_listen(f->db), GH_OK);

    /* Another session writes a workspace and a key: two changes, announced with themselves. */
    add_key(f);
    changes_t cs = {.n = 0};
    for (int i = 0; i < 20 && cs.n < 2; i++)
        assert_int_equal(gh_store_cluster_wait(f->db, -1, 1000, &events, collect, &cs), GH_OK);
    assert_int_equal(cs.n, 2);
    assert_int_equal(cs.got[0].seq, start + 1);
    assert_string_equal(cs.got[0].kind, "workspace");
    assert_string_equal(cs.got[0].id, "ws_1");
    assert_string_equal(cs.got[0].org_id, "org_1");
    assert_int_equal(cs.got[1].seq, start + 2);
    assert_string_equal(cs.got[1].kind, "key");
    assert_string_equal(cs.got[1].id, "key_1");
    assert_true(cs.got[1].changed_at_us > 1700000000LL * 1000000);

    /* What the data plane does not hold writes nothing: the key's last use, its name. */
    pgf_sql(f, "UPDATE keys SET last_used_at = now(), name = 'renamed' WHERE id = 'key_1'");
    assert_int_equal(gh_store_cluster_change_max(f->db, &max), GH_OK);
    assert_int_equal(max, start + 2);

    /* Notifications off for a session: the change is in the table, nobody is told. */
    pgf_sql(f, "SET gatehouse.cluster_notify = off; "
               "UPDATE keys SET status = 'inactive' WHERE id = 'key_1'; "
               "RESET gatehouse.cluster_notify");
    cs.n = 0;
    assert_int_equal(gh_store_cluster_wait(f->db, -1, 200, &events, collect, &cs), GH_OK);
    assert_int_equal(events, 0);
    assert_int_equal(cs.n, 0);
    assert_int_equal(gh_store_cluster_changes(f->db, start + 2, 10, collect, &cs), GH_OK);
    assert_int_equal(cs.n, 1);
    assert_string_equal(cs.got[0].kind, "key");
    assert_int_equal(cs.got[0].seq, start + 3);

    /* Money other than usage, limits, memberships. */
    pgf_sql(f, "INSERT INTO ledger_entries (org_id, kind, amount_nusd, reference, created_at) "
               "VALUES ('org_1', 'grant', 5, 'g', now()), ('org_1', 'usage', -1, 'u', now())");
    pgf_sql(f, "INSERT INTO org_limits (org_id, monthly_spend_limit_nusd, updated_at) "
               "VALUES ('org_1', 100, now())");
    pgf_sql(f, "INSERT INTO memberships (org_id, account_id, role, created_at) "
               "VALUES ('org_1', 'acc_2', 'user', now())"); /* a new member: nothing */
    pgf_sql(f, "DELETE FROM memberships WHERE account_id = 'acc_2'");
    cs.n = 0;
    assert_int_equal(gh_store_cluster_changes(f->db, start + 3, 10, collect, &cs), GH_OK);
    assert_int_equal(cs.n, 3);
    assert_string_equal(cs.got[0].kind, "money");
    assert_string_equal(cs.got[1].kind, "org");
    assert_string_equal(cs.got[1].id, "org_1");
    assert_string_equal(cs.got[2].kind, "member");
    assert_string_equal(cs.got[2].id, "acc_2");
    for (int i = 1; i < cs.n; i++)
        assert_true(cs.got[i].seq > cs.got[i - 1].seq);

    /* A kick. */
    events = 0;
    for (int i = 0; i < 20 && !(events & GH_STORE_CLUSTER_KICK); i++) {
        if (i == 0)
            assert_int_equal(gh_store_cluster_kick(f->db), GH_OK);
        assert_int_equal(gh_store_cluster_wait(f->db, -1, 1000, &events, NULL, NULL), GH_OK);
    }
    assert_true(events & GH_STORE_CLUSTER_KICK);

    /* The leader lock: this session takes it, another cannot. */
    assert_int_equal(gh_store_cluster_lead(f->db, &leader), GH_OK);
    assert_true(leader);
    char v[16];
    pgf_value(f, "SELECT pg_try_advisory_lock(" LEADER_LOCK ")", v, sizeof(v));
    assert_string_equal(v, "f");

    /* The session is cut: waiting says so, then listening and leading resume on a new one,
     * and the lock was free for it. */
    pgf_sql(f, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    gh_err_t rc = GH_OK;
    for (int i = 0; i < 20 && rc == GH_OK; i++)
        rc = gh_store_cluster_wait(f->db, -1, 500, &events, NULL, NULL);
    assert_int_equal(rc, GH_EUNAVAIL);
    assert_int_equal(gh_store_cluster_listen(f->db), GH_OK);
    assert_int_equal(gh_store_cluster_wait(f->db, -1, 10, &events, NULL, NULL), GH_OK);
    assert_int_equal(gh_store_cluster_lead(f->db, &leader), GH_OK);
    assert_true(leader);

    /* Pruning: everything written before a time. */
    int64_t deleted = 0;
    assert_int_equal(gh_store_cluster_prune(f->db, 1700000000LL * 1000, &deleted), GH_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(gh_store_cluster_prune(f->db, 4102444800LL * 1000, &deleted), GH_OK);
    assert_int_equal(deleted, 7);
    assert_int_equal(gh_store_cluster_change_max(f->db, &max), GH_OK);
    assert_int_equal(max, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_feed, pgf_setup, pgf_teardown),
    };
    return pgf_run_both(tests);
}
