/* Spend notifications through the core layer on a real SQLite file, and again on a real
 * PostgreSQL database (pg_unit.h starts a throwaway server for this binary), with an
 * injected clock:
 * usage charged as the usage writer does crosses a spend amount once per UTC month (the kept
 * month's spend starts over on the 1st), and a balance rule fires once per fall, again after
 * the balance was back above its amount. Mail is counted in the outbox table. */
#include "pg_unit.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/billing.h"
#include "core/billing_ledger.h"
#include "core/notify.h"
#include "core/pay_test.h"
#include "lib/crypto.h"
#include "lib/money.h"
#include "lib/utc.h"

#define CENTS(x) ((int64_t)(x) * (GH_NUSD_PER_USD / 100))

static int64_t fake_now;
static int64_t clock_fn(void) { return __atomic_load_n(&fake_now, __ATOMIC_RELAXED); }

typedef struct {
    char dir[64];
    bool pg; /* the store is PostgreSQL, in the database at pg_url */
    char pg_url[300];
    gh_config_t cfg;
    gh_app_t app;
    gh_billing_t *billing;
    gh_actor_t admin;
} world_t;

static void new_org(world_t *w, gh_actor_t *actor)
{
    gh_db_t *db = gh_store_db(w->app.store);
    gh_account_t a;
    memset(&a, 0, sizeof(a));
    gh_id_new(a.id, "user");
    snprintf(a.email, sizeof(a.email), "admin-%.8s@example.com", a.id + 8);
    for (char *p = a.email; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    a.created_at = fake_now;
    assert_int_equal(gh_store_account_insert(db, &a), GH_OK);
    char ws[GH_ID_MAX];
    memset(actor, 0, sizeof(*actor));
    gh_id_new(actor->org_id, "org");
    gh_id_new(ws, "wrkspc");
    assert_int_equal(gh_store_org_create(db, actor->org_id, "Acme", a.id, ws, "#6C5BB9", fake_now),
                     GH_OK);
    actor->kind = GH_ACTOR_USER;
    actor->role = GH_ROLE_ADMIN;
    snprintf(actor->id, sizeof(actor->id), "%s", a.id);
    snprintf(actor->label, sizeof(actor->label), "%s", a.email);
}

static int setup_on(void **state, bool pg)
{
    world_t *w = calloc(1, sizeof(*w));
    char err[256];
    w->pg = pg;
    if (pg)
        pg_unit_fresh_db(w->pg_url, sizeof(w->pg_url));
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-notify-XXXXXX");
    if (!mkdtemp(w->dir) || gh_crypto_init())
        return -1;
    fake_now = gh_utc_days_from_civil(2027, 1, 31) * 86400 + 22 * 3600; /* Jan 31, 22:00 UTC */
    gh_config_defaults(&w->cfg);
    snprintf(w->cfg.data_dir, sizeof(w->cfg.data_dir), "%s", w->dir);
    snprintf(w->cfg.public_url, sizeof(w->cfg.public_url), "https://console.example.com");
    if (gh_config_finish(&w->cfg, err, sizeof(err)))
        return -1;
    w->app.cfg = &w->cfg;
    w->app.now = clock_fn;
    w->app.pay = gh_pay_test_new();
    if (!w->app.pay ||
        gh_store_open(&w->app.store, pg ? w->pg_url : w->cfg.db_path, err, sizeof(err)) ||
        gh_mailer_new(&w->app.mailer, &w->cfg, err, sizeof(err)) ||
        gh_billing_new(&w->billing, &w->app))
        return -1;
    new_org(w, &w->admin);
    *state = w;
    return 0;
}

static int setup(void **state)
{
    return setup_on(state, false);
}

static int setup_pg(void **state)
{
    return setup_on(state, true);
}

static int teardown(void **state)
{
    world_t *w = *state;
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

/* Charges `cost` of usage as the usage writer does, in one transaction. */
static void use(world_t *w, int64_t cost)
{
    static int64_t seq = 1;
    gh_usage_row_t row = {.journal_seq = seq, .request_id = "req", .org_id = w->admin.org_id,
                          .workspace_id = "", .key_id = "", .model = "m", .route = "messages",
                          .cost_nusd = cost, .input_cost_nusd = cost, .status = 200};
    gh_usage_charge_t c = {.cost_nusd = cost, .first_seq = seq, .last_seq = seq};
    seq++;
    snprintf(c.org_id, sizeof(c.org_id), "%s", w->admin.org_id);
    gh_db_t *db = gh_store_db(w->app.store);
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_int_equal(gh_store_usage_insert(db, &row), GH_OK);
    assert_int_equal(gh_billing_charge_usage(&w->app, db, &c, 1), GH_OK);
    assert_int_equal(gh_store_commit(db), GH_OK);
}

static void grant(world_t *w, int64_t amount)
{
    gh_actor_t staff = {.kind = GH_ACTOR_STAFF, .role = GH_ROLE_ADMIN, .id = "staff",
                        .label = "unit test"};
    snprintf(staff.org_id, sizeof(staff.org_id), "%s", w->admin.org_id);
    char msg[256];
    gh_credit_lot_t lot;
    assert_int_equal(gh_billing_grant(&w->app, &staff, w->admin.org_id, amount, "goodwill", &lot,
                                      msg, sizeof(msg)),
                     GH_OK);
}

/* The count `sqlite_sql` / `pg_sql` gives with `what` as its one parameter, read on a
 * connection of the test's own. */
static int count(world_t *w, const char *sqlite_sql, const char *pg_sql, const char *what)
{
    if (w->pg) {
        gh_pg_options_t opt;
        gh_pg_options_defaults(&opt);
        opt.url = w->pg_url;
        gh_pg_conn_t *c;
        char err[512];
        assert_int_equal(gh_pg_connect(&opt, &c, err, sizeof(err)), GH_OK);
        PGresult *res;
        const char *params[] = {what};
        assert_int_equal(gh_pg_query(c, pg_sql, 1, params, &res), GH_OK);
        int n = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        gh_pg_disconnect(c);
        return n;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(w->cfg.db_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sqlite_sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, what, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Mails in the outbox table whose subject contains `what`. */
static int mails(world_t *w, const char *what)
{
    return count(w, "SELECT count(*) FROM mail_outbox WHERE instr(subject, ?) > 0",
                 "SELECT count(*) FROM mail_outbox WHERE strpos(subject, $1) > 0", what);
}

/* Those of them that carry their HTML part (attached to the mail queued just before). */
static int html_mails(world_t *w, const char *what)
{
    return count(w,
                 "SELECT count(*) FROM mail_outbox m JOIN mail_outbox_html h "
                 "ON h.mail_id = m.id WHERE instr(m.subject, ?) > 0 AND "
                 "instr(h.html, '<html') > 0",
                 "SELECT count(*) FROM mail_outbox m JOIN mail_outbox_html h "
                 "ON h.mail_id = m.id WHERE strpos(m.subject, $1) > 0 AND "
                 "strpos(h.html, '<html') > 0",
                 what);
}

static void add_rule(world_t *w, const char *kind, int64_t amount)
{
    gh_spend_notif_t in, out;
    memset(&in, 0, sizeof(in));
    snprintf(in.kind, sizeof(in.kind), "%s", kind);
    in.amount_nusd = amount;
    char msg[256];
    assert_int_equal(gh_notify_add(&w->app, &w->admin, &in, &out, msg, sizeof(msg)), GH_OK);
}

static void spend_amount_once_per_month(void **state)
{
    world_t *w = *state;
    grant(w, CENTS(10000));
    use(w, CENTS(40)); /* before the rule: counted from the ledger when the rule is added */
    add_rule(w, "spend_amount", CENTS(100));
    use(w, CENTS(40));
    assert_int_equal(mails(w, "spent $1.00"), 0);
    use(w, CENTS(40)); /* $1.20 this month */
    assert_int_equal(mails(w, "spent $1.00"), 1);
    use(w, CENTS(40));
    assert_int_equal(mails(w, "spent $1.00"), 1);
    /* February: the month's spend starts over. */
    fake_now += 3 * 3600;
    use(w, CENTS(60));
    assert_int_equal(mails(w, "spent $1.00"), 1);
    use(w, CENTS(60));
    assert_int_equal(mails(w, "spent $1.00"), 2);
    use(w, CENTS(60));
    assert_int_equal(mails(w, "spent $1.00"), 2);
    assert_int_equal(html_mails(w, "spent $1.00"), 2);
}

static void balance_once_per_fall(void **state)
{
    world_t *w = *state;
    grant(w, CENTS(500));
    add_rule(w, "balance_below", CENTS(300));
    use(w, CENTS(150)); /* $3.50 left */
    assert_int_equal(mails(w, "is below $3.00"), 0);
    use(w, CENTS(100)); /* $2.50 */
    assert_int_equal(mails(w, "is below $3.00"), 1);
    use(w, CENTS(100)); /* $1.50 */
    assert_int_equal(mails(w, "is below $3.00"), 1);
    grant(w, CENTS(500)); /* $6.50: seen at the next charge */
    use(w, CENTS(50));    /* $6.00 */
    assert_int_equal(mails(w, "is below $3.00"), 1);
    use(w, CENTS(350)); /* $2.50 */
    assert_int_equal(mails(w, "is below $3.00"), 2);
}

int main(void)
{
    (void)pg_unit_store;
    (void)pg_unit_sqlite_store;
    (void)pg_unit_sqlite_close;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(spend_amount_once_per_month, setup, teardown),
        cmocka_unit_test_setup_teardown(balance_once_per_fall, setup, teardown),
        cmocka_unit_test_setup_teardown(spend_amount_once_per_month, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(balance_once_per_fall, setup_pg, teardown),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
