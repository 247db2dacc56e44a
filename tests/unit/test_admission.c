/* Admission's control side on a real SQLite file: what is loaded at start (balances at one cut
 * of the ledger, this month's spend from the usage events), money changes applied as ledger
 * deltas without counting usage twice, organizations new to the engine read whole, tiers
 * advancing with purchases, and spend limits checked against the tier's cap. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/admission.h"
#include "core/billing.h"
#include "core/billing_ledger.h"
#include "core/billing_purchases.h"
#include "core/pay_test.h"
#include "core/quota.h"
#include "lib/crypto.h"
#include "lib/money.h"
#include "lib/utc.h"
#include "store/store.h"

#define USD(x) ((int64_t)(x) * GH_NUSD_PER_USD)
#define CENTS(x) ((int64_t)(x) * (GH_NUSD_PER_USD / 100))

static int64_t clock_fn(void)
{
    return time(NULL);
}

typedef struct {
    char dir[64];
    gh_config_t cfg;
    gh_app_t app;
    gh_billing_t *billing;
    gh_admission_t *adm;
} world_t;

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    char err[256];
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-admission-XXXXXX");
    if (!mkdtemp(w->dir) || gh_crypto_init())
        return -1;
    gh_config_defaults(&w->cfg);
    snprintf(w->cfg.data_dir, sizeof(w->cfg.data_dir), "%s", w->dir);
    if (gh_config_finish(&w->cfg, err, sizeof(err)))
        return -1;
    w->app.cfg = &w->cfg;
    w->app.now = clock_fn;
    w->app.pay = gh_pay_test_new();
    if (!w->app.pay || gh_store_open(&w->app.store, w->cfg.db_path, err, sizeof(err)) ||
        gh_mailer_new(&w->app.mailer, &w->cfg, err, sizeof(err)) ||
        gh_billing_new(&w->billing, &w->app) || gh_admission_new(&w->adm, &w->cfg, err, sizeof(err)))
        return -1;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;
    gh_admission_free(w->adm);
    gh_billing_free(w->billing);
    gh_store_close(w->app.store);
    gh_mailer_free(w->app.mailer);
    w->app.pay->ops->destroy(w->app.pay);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    if (system(cmd) != 0)
        return -1;
    free(w);
    return 0;
}

/* A new organization (and its Default workspace, `ws`) with an admin acting as `actor`. */
static void new_org(world_t *w, gh_actor_t *actor, char ws[GH_ID_MAX])
{
    gh_db_t *db = gh_store_db(w->app.store);
    gh_account_t a;
    memset(&a, 0, sizeof(a));
    gh_id_new(a.id, "user");
    snprintf(a.email, sizeof(a.email), "%.22s@example.com", a.id + 8);
    for (char *p = a.email; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    a.created_at = time(NULL);
    assert_int_equal(gh_store_account_insert(db, &a), GH_OK);
    memset(actor, 0, sizeof(*actor));
    gh_id_new(actor->org_id, "org");
    gh_id_new(ws, "wrkspc");
    assert_int_equal(gh_store_org_create(db, actor->org_id, "Acme", a.id, ws, "#6C5BB9",
                                         time(NULL) - 90 * 86400),
                     GH_OK);
    actor->kind = GH_ACTOR_USER;
    actor->role = GH_ROLE_ADMIN;
    snprintf(actor->id, sizeof(actor->id), "%s", a.id);
    snprintf(actor->label, sizeof(actor->label), "%s", a.email);
}

static void grant(world_t *w, const char *org_id, int64_t amount)
{
    gh_actor_t staff = {.kind = GH_ACTOR_STAFF, .role = GH_ROLE_ADMIN, .id = "staff"};
    snprintf(staff.org_id, sizeof(staff.org_id), "%s", org_id);
    char msg[256];
    assert_int_equal(gh_billing_grant(&w->app, &staff, org_id, amount, "test", NULL, msg,
                                      sizeof(msg)),
                     GH_OK);
}

static gh_limits_org_state_t engine_org(world_t *w, const char *org_id)
{
    gh_limits_org_state_t st;
    assert_int_equal(gh_limits_org_get(gh_admission_limits(w->adm), org_id, &st), GH_OK);
    return st;
}

/* One usage event of `cost` at `at_ms`, as the writer inserts it (without charging). */
static void usage_event(world_t *w, const char *org_id, const char *ws_id, int64_t at_ms,
                        int64_t cost)
{
    static int64_t seq = 1;
    gh_usage_row_t r = {.journal_seq = seq++, .request_id = "req_01x", .org_id = org_id,
                        .workspace_id = ws_id, .key_id = "key", .model = "m", .route = "messages",
                        .created_at_ms = at_ms, .cost_nusd = cost, .status = 200};
    assert_int_equal(gh_store_usage_insert(gh_store_db(w->app.store), &r), GH_OK);
}

static void load_reads_balances_and_this_months_spend(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    char ws[GH_ID_MAX];
    new_org(w, &a, ws);
    grant(w, a.org_id, USD(5));
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    int64_t month_start_ms = gh_utc_month_start_s(time(NULL)) * 1000;
    usage_event(w, a.org_id, ws, now_ms, CENTS(30));
    usage_event(w, a.org_id, ws, month_start_ms, CENTS(20));
    usage_event(w, a.org_id, ws, month_start_ms - 1, USD(3)); /* last month */
    assert_int_equal(gh_admission_load(w->adm, gh_store_db(w->app.store)), GH_OK);
    gh_limits_org_state_t st = engine_org(w, a.org_id);
    assert_int_equal(st.balance_nusd, USD(5));
    assert_int_equal(st.month_spent_nusd, CENTS(50));
    assert_int_equal(st.monthly_limit_nusd, USD(10)); /* Evaluation's cap */
    gh_limits_ws_state_t ws_st;
    assert_int_equal(gh_limits_ws_get(gh_admission_limits(w->adm), a.org_id, ws, &ws_st), GH_OK);
    assert_int_equal(ws_st.month_spent_nusd, CENTS(50));
}

/* Grants and clawbacks are applied as differences; usage entries are not (their cost was
 * settled in memory already). */
static void money_changes_are_deltas_and_usage_is_not_counted_twice(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    char ws[GH_ID_MAX];
    new_org(w, &a, ws);
    grant(w, a.org_id, USD(5));
    gh_db_t *db = gh_store_db(w->app.store);
    assert_int_equal(gh_admission_load(w->adm, db), GH_OK);
    w->app.admission = w->adm;

    /* A request settled in memory ($1.25) and then charged by the writer. */
    gh_limits_t *l = gh_admission_limits(w->adm);
    gh_admit_req_t rq = {a.org_id, ws, "small", 10, 10, USD(2)};
    gh_admit_t ad;
    assert_int_equal(gh_limits_admit(l, &rq, &ad), GH_OK);
    assert_int_equal(ad.decision, GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &ad.hold, 10, 10, CENTS(125)), GH_OK);
    gh_usage_charge_t charge = {.cost_nusd = CENTS(125), .first_seq = 1, .last_seq = 1};
    snprintf(charge.org_id, sizeof(charge.org_id), "%s", a.org_id);
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_int_equal(gh_billing_charge_usage(&w->app, db, &charge, 1), GH_OK);
    assert_int_equal(gh_store_commit(db), GH_OK);
    assert_int_equal(gh_admission_sync_money(w->adm, db), GH_OK);
    assert_int_equal(engine_org(w, a.org_id).balance_nusd, USD(5) - CENTS(125));

    /* A grant through billing is applied at once (the hook), exactly once. */
    grant(w, a.org_id, USD(2));
    assert_int_equal(engine_org(w, a.org_id).balance_nusd, USD(7) - CENTS(125));
    assert_int_equal(gh_admission_sync_money(w->adm, db), GH_OK);
    assert_int_equal(engine_org(w, a.org_id).balance_nusd, USD(7) - CENTS(125));
    gh_actor_t staff = {.kind = GH_ACTOR_STAFF, .role = GH_ROLE_ADMIN, .id = "staff"};
    snprintf(staff.org_id, sizeof(staff.org_id), "%s", a.org_id);
    char msg[256];
    assert_int_equal(gh_billing_clawback(&w->app, &staff, a.org_id, USD(1), "test", msg,
                                         sizeof(msg)),
                     GH_OK);
    assert_int_equal(engine_org(w, a.org_id).balance_nusd, USD(6) - CENTS(125));
    w->app.admission = NULL;
}

/* An organization the engine never saw is read whole at the watermark. */
static void a_new_organization_is_read_whole(void **state)
{
    world_t *w = *state;
    gh_db_t *db = gh_store_db(w->app.store);
    assert_int_equal(gh_admission_load(w->adm, db), GH_OK);
    gh_actor_t a;
    char ws[GH_ID_MAX];
    new_org(w, &a, ws); /* made behind the engine's back, as another process would */
    gh_limits_org_state_t st;
    assert_int_equal(gh_limits_org_get(gh_admission_limits(w->adm), a.org_id, &st),
                     GH_ENOTFOUND);
    grant(w, a.org_id, USD(3));
    grant(w, a.org_id, USD(1));
    assert_int_equal(gh_admission_sync_money(w->adm, db), GH_OK);
    assert_int_equal(engine_org(w, a.org_id).balance_nusd, USD(4));
    gh_limits_ws_state_t ws_st;
    assert_int_equal(gh_limits_ws_get(gh_admission_limits(w->adm), a.org_id, ws, &ws_st), GH_OK);
    grant(w, a.org_id, USD(1));
    assert_int_equal(gh_admission_sync_money(w->adm, db), GH_OK);
    assert_int_equal(engine_org(w, a.org_id).balance_nusd, USD(5));
}

static void purchases_advance_the_tier(void **state)
{
    world_t *w = *state;
    gh_db_t *db = gh_store_db(w->app.store);
    gh_actor_t a;
    char ws[GH_ID_MAX], msg[512];
    new_org(w, &a, ws);
    assert_int_equal(gh_admission_load(w->adm, db), GH_OK);
    w->app.admission = w->adm;
    gh_limits_report_t rep;
    assert_int_equal(gh_limits_peek(gh_admission_limits(w->adm), a.org_id, NULL, "small", &rep),
                     GH_OK);
    assert_int_equal(rep.input_tokens.limit, 20000); /* Evaluation */
    const char *countries[] = {"US"};
    gh_billing_profile_in_t in = {.intended_use = "Tests", .countries = countries, .ncountries = 1};
    gh_billing_account_t acc;
    assert_int_equal(gh_billing_profile_set(&w->app, &a, &in, &acc, msg, sizeof(msg)), GH_OK);
    gh_payment_method_t pm;
    assert_int_equal(gh_billing_card_add(&w->app, &a, "4242424242424242", 12, 2030, "123", &pm,
                                         msg, sizeof(msg)),
                     GH_OK);
    gh_purchase_t p;
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(5), "k1", &p, msg, sizeof(msg)), GH_OK);
    assert_string_equal(p.status, "succeeded");
    /* The very next admission runs on Tier 1. */
    assert_int_equal(gh_limits_peek(gh_admission_limits(w->adm), a.org_id, NULL, "small", &rep),
                     GH_OK);
    assert_int_equal(rep.input_tokens.limit, 30000);
    assert_int_equal(engine_org(w, a.org_id).balance_nusd, USD(5));
    gh_org_quota_t q;
    assert_int_equal(gh_admission_org_quota(w->adm, db, a.org_id, &q), GH_OK);
    assert_string_equal(q.tier->id, "tier_1");
    assert_false(q.tier_by_staff);
    assert_int_equal(q.tier_cap_nusd, USD(100));

    /* A monthly limit above the cap is refused; one below it applies at once. */
    int64_t limit = USD(150);
    assert_int_equal(gh_quota_set_monthly_limit(&w->app, &a, &limit, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_non_null(strstr(msg, "monthly cap of $100.00"));
    limit = CENTS(4250);
    assert_int_equal(gh_quota_set_monthly_limit(&w->app, &a, &limit, msg, sizeof(msg)), GH_OK);
    assert_int_equal(engine_org(w, a.org_id).monthly_limit_nusd, CENTS(4250));
    limit = CENTS(4250) + 1; /* not whole cents */
    assert_int_equal(gh_quota_set_monthly_limit(&w->app, &a, &limit, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_int_equal(gh_quota_set_monthly_limit(&w->app, &a, NULL, msg, sizeof(msg)), GH_OK);
    assert_int_equal(engine_org(w, a.org_id).monthly_limit_nusd, USD(100));
    /* Only admins. */
    a.role = GH_ROLE_BILLING;
    assert_int_equal(gh_quota_set_monthly_limit(&w->app, &a, NULL, msg, sizeof(msg)), GH_EPERM);
    w->app.admission = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(load_reads_balances_and_this_months_spend, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(money_changes_are_deltas_and_usage_is_not_counted_twice,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_organization_is_read_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(purchases_advance_the_tier, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
