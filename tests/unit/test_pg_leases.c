/* Cluster money leases on PostgreSQL (store.h, "Cluster money: leases"; migration 0012): a
 * lease grows only by what is free and within the monthly headroom, at most half of what is
 * free unless less than the minimum; settlement shrinks the node's lease by the cost; a return
 * needs the lease's epoch; sweeping gives leases back to free money; the usage writer's draws
 * settle the node's lease. The SQLite store answers GH_EUNAVAIL to all of it. */
#include "pg_unit.h"

#include "store/postgres/pg_int.h"

#define ORG "org_lease"
#define MONTH 202612
#define MONTH_START 1796083200 /* 2026-12-01T00:00:00Z */

static void setup_org(gh_db_t *db, int64_t balance)
{
    gh_account_t a = {.id = "user_1", .email = "one@e.com", .created_at = 100};
    assert_int_equal(gh_store_account_insert(db, &a), GH_OK);
    assert_int_equal(gh_store_org_create(db, ORG, "Leases", "user_1", "ws_1", "#6C5BB9", 1000),
                     GH_OK);
    gh_ledger_entry_t e = {.org_id = ORG, .kind = "grant", .amount_nusd = balance,
                           .reference = "grant_1", .created_at = 1000};
    assert_int_equal(gh_store_ledger_append(db, &e), GH_OK);
}

static gh_lease_grant_t take(gh_db_t *db, const char *node, int64_t want, int64_t min,
                             int64_t limit)
{
    gh_lease_ask_t ask = {.org_id = ORG, .node_id = node, .want_nusd = want, .min_nusd = min,
                          .limit_nusd = limit, .month_key = MONTH,
                          .month_start_s = MONTH_START, .ttl_ms = 60000};
    gh_lease_grant_t g;
    assert_int_equal(gh_store_lease_take(db, &ask, &g), GH_OK);
    return g;
}

static int64_t sql_int(gh_db_t *db, const char *sql)
{
    PGresult *res = NULL;
    assert_int_equal(gh_pgs_query_dyn(db, sql, 0, NULL, &res), GH_OK);
    int64_t v = gh_pgs_col_i64(res, 0, 0);
    PQclear(res);
    return v;
}

static int64_t leased(gh_db_t *db)
{
    int64_t total = sql_int(db, "SELECT leased_nusd FROM cluster_money WHERE org_id = 'org_lease'");
    assert_int_equal(total, sql_int(db, "SELECT coalesce(sum(amount_nusd), 0)::bigint FROM "
                                        "cluster_leases WHERE org_id = 'org_lease'"));
    return total;
}

typedef struct {
    int n;
    int64_t epoch, amount, free_nusd;
} renewed_t;

static void on_renewed(void *ctx, const char *org_id, int64_t epoch, int64_t amount,
                       int64_t free_nusd)
{
    renewed_t *r = ctx;
    assert_string_equal(org_id, ORG);
    r->n++;
    r->epoch = epoch;
    r->amount = amount;
    r->free_nusd = free_nusd;
}

static void leases_are_exact(void **state)
{
    (void)state;
    gh_store_t *s = pg_unit_store();
    gh_db_t *db = gh_store_db(s);
    setup_org(db, 100);

    /* Half of what is free at most: 50 of 100. */
    gh_lease_grant_t a = take(db, "node_a", 60, 1, 0);
    assert_int_equal(a.granted_nusd, 50);
    assert_int_equal(a.free_nusd, 50);
    assert_true(a.epoch > 0);
    /* Half of 50 is below the minimum of 30: the minimum. */
    gh_lease_grant_t b = take(db, "node_b", 100, 30, 0);
    assert_int_equal(b.granted_nusd, 30);
    assert_int_equal(b.free_nusd, 20);
    assert_true(b.epoch != a.epoch);
    /* 20 free, 30 needed: nothing, and the lease keeps its epoch. */
    gh_lease_grant_t none = take(db, "node_a", 30, 30, 0);
    assert_int_equal(none.granted_nusd, 0);
    assert_int_equal(none.epoch, a.epoch);
    assert_int_equal(leased(db), 80);

    /* Node A spends 10: its lease, the leased total and the balance all shrink by it. */
    assert_int_equal(gh_store_lease_settle(db, ORG, "node_a", 10, MONTH), GH_OK);
    int64_t held = 0;
    assert_int_equal(gh_store_lease_amount(db, ORG, "node_a", &held), GH_OK);
    assert_int_equal(held, 40);
    assert_int_equal(leased(db), 70);
    assert_int_equal(sql_int(db, "SELECT month_spent_nusd FROM cluster_money"), 10);

    /* A return needs the lease's epoch. */
    int64_t back = 0;
    assert_int_equal(gh_store_lease_return(db, ORG, "node_a", a.epoch + 1000, 15, &back), GH_OK);
    assert_int_equal(back, -1);
    assert_int_equal(gh_store_lease_return(db, ORG, "node_a", a.epoch, 15, &back), GH_OK);
    assert_int_equal(back, 15);
    assert_int_equal(leased(db), 55);

    /* A monthly limit of 70: 10 spent + 55 leased leave 5 of headroom. */
    gh_lease_grant_t m = take(db, "node_a", 20, 1, 70);
    assert_true(m.month_bound);
    assert_int_equal(m.limit_nusd, 70);
    assert_true(m.granted_nusd <= 5 && m.granted_nusd > 0);
    assert_true(leased(db) + 10 <= 70);
    /* The organization's own lower limit, read by the function, wins over the node's. */
    gh_org_limits_rec_t ol = {.org_id = ORG, .monthly_spend_limit_nusd = 40, .updated_at = 1};
    assert_int_equal(gh_store_org_limits_put(db, &ol), GH_OK);
    gh_lease_grant_t own = take(db, "node_b", 20, 1, 70);
    assert_int_equal(own.granted_nusd, 0);
    assert_true(own.month_bound);
    assert_int_equal(own.limit_nusd, 40);

    /* Renewal names every lease of the node, with the organization's free money. */
    renewed_t r = {0};
    assert_int_equal(gh_store_leases_renew(db, "node_a", 60000, on_renewed, &r), GH_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.epoch, a.epoch);
    assert_int_equal(r.free_nusd, 100 - leased(db)); /* the ledger draw is not part of this test */

    /* Nothing has expired; node B's leases all go back when it starts afresh. */
    int64_t n = -1, nusd = -1;
    assert_int_equal(gh_store_leases_sweep(db, NULL, 0, &n, &nusd), GH_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gh_store_leases_sweep(db, "node_b", 0, &n, &nusd), GH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(nusd, 30);
    /* Expired leases go back once the margin has passed. */
    assert_int_equal(gh_pgs_exec(db, "UPDATE cluster_leases SET expires_at = now() - interval '1 minute'",
                                 0, NULL),
                     GH_OK);
    assert_int_equal(gh_store_leases_sweep(db, NULL, 1000, &n, &nusd), GH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(leased(db), 0);
    /* The swept lease's node finds it gone. */
    assert_int_equal(gh_store_lease_return(db, ORG, "node_a", a.epoch, 1, &back), GH_OK);
    assert_int_equal(back, -1);
    gh_store_close(s);
}

/* Scans of usage_events this session has made and not yet reported to the statistics (the
 * current transaction's, and earlier ones' until they are flushed): compare two readings. */
static int64_t event_scans(gh_db_t *db)
{
    return sql_int(db, "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint FROM "
                       "pg_stat_xact_user_tables WHERE relname = 'usage_events'");
}

/* One usage event of `cost` at `at_s`, committed as the writer commits it: the event and its
 * rollups in one transaction. */
static void spend(gh_db_t *db, int64_t seq, const char *ws, int64_t at_s, int64_t cost)
{
    char id[32];
    snprintf(id, sizeof(id), "req_%lld", (long long)seq);
    gh_usage_row_t r = {.journal_seq = seq, .request_id = id, .org_id = ORG, .workspace_id = ws,
                        .key_id = "key_1", .model = "m", .route = "messages",
                        .created_at_ms = at_s * 1000, .input_cost_nusd = cost, .cost_nusd = cost,
                        .status = 200};
    bool stored = false;
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_int_equal(gh_store_usage_insert_batch(db, &r, 1, &stored), GH_OK);
    assert_true(stored);
    assert_int_equal(gh_store_rollups_add(db, &r, 1), GH_OK);
    assert_int_equal(gh_store_commit(db), GH_OK);
}

/* A money row is opened with the month's spend read from the rollups, never from the usage
 * events (migrations 0018 and 0019: every take once summed the month's events, ~100 ms at
 * 600,000 of them, then the first take of each organization still scanned the whole table,
 * which has no index by organization). The day rows of the month plus the minute rows not
 * rolled forward yet are the sum, before and after a roll forward; later takes read the row.
 * The same for a workspace's lease. */
static void takes_read_the_month_from_the_rollups(void **state)
{
    (void)state;
    gh_store_t *s = pg_unit_store();
    gh_db_t *db = gh_store_db(s);
    setup_org(db, 1000000);
    gh_ws_limits_rec_t wl = {.workspace_id = "ws_1", .org_id = ORG,
                             .monthly_spend_limit_nusd = 500000, .updated_at = 1};
    assert_int_equal(gh_store_ws_limits_put(db, &wl), GH_OK);
    /* Hour and day rows are rolled forward up to December 4th; later minutes are not. */
    const int64_t day = 86400, mark = MONTH_START + 3 * day;
    char sql[160];
    snprintf(sql, sizeof(sql),
             "UPDATE usage_rollup_watermark SET rolled_before = to_timestamp(%lld)",
             (long long)mark);
    assert_int_equal(gh_pgs_exec(db, sql, 0, NULL), GH_OK);
    spend(db, 1, "ws_1", MONTH_START - day / 2, 1000); /* November: not this month */
    spend(db, 2, "ws_1", MONTH_START + day, 100);      /* before the mark: in the day rows */
    spend(db, 3, "ws_1", mark + day, 10);              /* after it: minute rows only */
    spend(db, 4, "ws_2", mark + 2 * day, 1);           /* another workspace */
    const char *month_sum =
        "SELECT gh_month_spend('org_lease', NULL, to_timestamp(1796083200))::text || ' ' || "
        "gh_month_spend('org_lease', 'ws_1', to_timestamp(1796083200))::text";
    PGresult *res = NULL;
    assert_int_equal(gh_pgs_query_dyn(db, month_sum, 0, NULL, &res), GH_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "111 110");
    PQclear(res);

    gh_lease_ask_t ask = {.org_id = ORG, .node_id = "node_a", .want_nusd = 10, .min_nusd = 1,
                          .month_key = MONTH, .month_start_s = MONTH_START, .ttl_ms = 60000};
    gh_lease_grant_t g;
    assert_int_equal(gh_store_begin(db), GH_OK);
    int64_t scans = event_scans(db);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gh_store_lease_take(db, &ask, &g), GH_OK);
        assert_int_equal(g.granted_nusd, 10);
        assert_int_equal(gh_store_ws_lease_take(db, "ws_1", &ask, &g), GH_OK);
        assert_int_equal(g.granted_nusd, 10);
    }
    assert_int_equal(event_scans(db), scans);
    assert_int_equal(gh_store_commit(db), GH_OK);
    assert_int_equal(sql_int(db, "SELECT month_spent_nusd FROM cluster_money"), 111);
    assert_int_equal(sql_int(db, "SELECT month_spent_nusd FROM cluster_ws_money"), 110);
    assert_int_equal(leased(db), 30); /* the workspace's leases are counted apart */

    /* Rolled forward past every event: the same sums, now all from the day rows. */
    int64_t rolled = 0;
    assert_int_equal(gh_store_rollups_roll(db, mark + 3 * day, &rolled), GH_OK);
    assert_true(rolled > 0);
    assert_int_equal(gh_pgs_query_dyn(db, month_sum, 0, NULL, &res), GH_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "111 110");
    PQclear(res);
    gh_store_close(s);
}

static void sqlite_has_no_leases(void **state)
{
    (void)state;
    char path[64];
    gh_store_t *s = pg_unit_sqlite_store(path);
    gh_db_t *db = gh_store_db(s);
    gh_lease_ask_t ask = {.org_id = ORG, .node_id = "n", .want_nusd = 1, .min_nusd = 1};
    gh_lease_grant_t g;
    assert_int_equal(gh_store_lease_take(db, &ask, &g), GH_EUNAVAIL);
    assert_int_equal(g.granted_nusd, 0);
    assert_int_equal(gh_store_lease_settle(db, ORG, "n", 1, MONTH), GH_EUNAVAIL);
    int64_t v = 1, w = 1;
    assert_int_equal(gh_store_lease_return(db, ORG, "n", 1, 1, &v), GH_EUNAVAIL);
    assert_int_equal(gh_store_lease_amount(db, ORG, "n", &v), GH_EUNAVAIL);
    assert_int_equal(gh_store_leases_sweep(db, NULL, 0, &v, &w), GH_EUNAVAIL);
    assert_int_equal(v, 0);
    pg_unit_sqlite_close(s, path);
}

/* The usage writer's draws (gh_store_usage_charge with the node, migration 0022) settle the
 * node's lease: it shrinks by what was spent, down to nothing, and the month's spend grows by
 * all of it. A batch naming an organization twice is refused and changes nothing. */
static void usage_draws_settle_the_lease(void **state)
{
    (void)state;
    gh_store_t *s = pg_unit_store();
    gh_db_t *db = gh_store_db(s);
    setup_org(db, 100);
    assert_int_equal(take(db, "node_a", 60, 1, 0).granted_nusd, 50);
    gh_usage_draw_t d = {ORG, 30, "usage:1-2"};
    bool charged = false;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(gh_store_begin(db), GH_OK);
        assert_int_equal(gh_store_usage_charge(db, &d, 1, 2000, "node_a", MONTH, &charged),
                         GH_OK);
        assert_int_equal(gh_store_commit(db), GH_OK);
        assert_true(charged);
    }
    int64_t held = -1;
    assert_int_equal(gh_store_lease_amount(db, ORG, "node_a", &held), GH_OK);
    assert_int_equal(held, 0); /* 50 - 30, then the 20 left */
    assert_int_equal(leased(db), 0);
    assert_int_equal(sql_int(db, "SELECT month_spent_nusd FROM cluster_money"), 60);
    gh_billing_account_t acct;
    assert_int_equal(gh_store_billing_account_get(db, ORG, &acct), GH_OK);
    assert_int_equal(acct.balance_nusd, 40);

    gh_usage_draw_t twice[] = {{ORG, 5, "usage:3-3"}, {ORG, 5, "usage:4-4"}};
    bool both[2];
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_int_not_equal(gh_store_usage_charge(db, twice, 2, 2100, "node_a", MONTH, both),
                         GH_OK);
    gh_store_rollback(db);
    assert_int_equal(gh_store_billing_account_get(db, ORG, &acct), GH_OK);
    assert_int_equal(acct.balance_nusd, 40);
    assert_int_equal(sql_int(db, "SELECT month_spent_nusd FROM cluster_money"), 60);
    gh_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leases_are_exact),
        cmocka_unit_test(usage_draws_settle_the_lease),
        cmocka_unit_test(takes_read_the_month_from_the_rollups),
        cmocka_unit_test(sqlite_has_no_leases),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
