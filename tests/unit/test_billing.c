/* Billing through the core layer on a real SQLite file and, every test again, on a real
 * PostgreSQL database (pg_unit.h starts a throwaway server for this binary), with the test
 * payment provider and an injected clock: amounts and tax, lots drawn in expiry order,
 * expiry, usage beyond the last lot, purchases (idempotency, declines, pending, exactly-once
 * resolution), gap-free invoice numbers under concurrent purchases, auto-reload once per
 * crossing, and the ledger check on a consistent and on a tampered database. */
#include "pg_unit.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/billing.h"
#include "core/billing_invoices.h"
#include "core/billing_ledger.h"
#include "core/billing_purchases.h"
#include "core/billing_reload.h"
#include "core/pay_test.h"
#include "lib/crypto.h"
#include "lib/money.h"
#include "store/store.h"

#define USD(x) ((int64_t)(x) * GH_NUSD_PER_USD)
#define CENTS(x) ((int64_t)(x) * (GH_NUSD_PER_USD / 100))

static int64_t fake_now = 1800000000;
static int64_t clock_fn(void) { return __atomic_load_n(&fake_now, __ATOMIC_RELAXED); }

typedef struct {
    char dir[64];
    bool pg;              /* the store is PostgreSQL, in the database at pg_url */
    char pg_url[300];
    gh_config_t cfg;
    gh_app_t app;
    gh_billing_t *billing;
} world_t;

static int setup_on(void **state, bool pg)
{
    world_t *w = calloc(1, sizeof(*w));
    char err[256];
    w->pg = pg;
    if (pg)
        pg_unit_fresh_db(w->pg_url, sizeof(w->pg_url));
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-billing-XXXXXX");
    if (!mkdtemp(w->dir) || gh_crypto_init())
        return -1;
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

/* A new organization with an admin; `actor` acts as that admin. */
static void new_org(world_t *w, gh_actor_t *actor)
{
    gh_db_t *db = gh_store_db(w->app.store);
    gh_account_t a;
    memset(&a, 0, sizeof(a));
    gh_id_new(a.id, "user");
    snprintf(a.email, sizeof(a.email), "%.22s@example.com", a.id + 8);
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
    snprintf(actor->ip, sizeof(actor->ip), "127.0.0.1");
}

/* Answers the first-purchase questions and adds the card `number`. */
static void ready(world_t *w, const gh_actor_t *actor, const char *number)
{
    const char *countries[] = {"US"};
    gh_billing_profile_in_t in = {.intended_use = "A support chatbot", .countries = countries,
                                  .ncountries = 1};
    gh_billing_account_t acc;
    char msg[512];
    assert_int_equal(gh_billing_profile_set(&w->app, actor, &in, &acc, msg, sizeof(msg)), GH_OK);
    gh_payment_method_t pm;
    assert_int_equal(gh_billing_card_add(&w->app, actor, number, 12, 2030, "123", &pm, msg,
                                         sizeof(msg)),
                     GH_OK);
}

static int64_t balance(world_t *w, const char *org_id)
{
    gh_billing_overview_t o;
    assert_int_equal(gh_billing_overview(&w->app, org_id, &o), GH_OK);
    return o.account.balance_nusd;
}

static void grant(world_t *w, const char *org_id, int64_t amount)
{
    gh_actor_t staff = {.kind = GH_ACTOR_STAFF, .role = GH_ROLE_ADMIN, .id = "staff",
                        .label = "unit test"};
    snprintf(staff.org_id, sizeof(staff.org_id), "%s", org_id);
    char msg[256];
    gh_credit_lot_t lot;
    assert_int_equal(gh_billing_grant(&w->app, &staff, org_id, amount, "goodwill", &lot, msg,
                                      sizeof(msg)),
                     GH_OK);
}

/* Records a usage event costing `cost` for `org_id` and charges it, as the usage writer
 * does, in one transaction. */
static void use(world_t *w, const char *org_id, int64_t cost)
{
    static int64_t seq = 1;
    gh_usage_row_t row = {.journal_seq = seq, .request_id = "req", .org_id = org_id,
                          .workspace_id = "", .key_id = "", .model = "m", .route = "messages",
                          .cost_nusd = cost, .input_cost_nusd = cost, .status = 200};
    gh_usage_charge_t c = {.cost_nusd = cost, .first_seq = seq, .last_seq = seq};
    seq++;
    snprintf(c.org_id, sizeof(c.org_id), "%s", org_id);
    gh_db_t *db = gh_store_db(w->app.store);
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_int_equal(gh_store_usage_insert(db, &row), GH_OK);
    assert_int_equal(gh_billing_charge_usage(&w->app, db, &c, 1), GH_OK);
    assert_int_equal(gh_store_commit(db), GH_OK);
}

typedef struct {
    gh_credit_lot_t lots[16];
    int n;
} lots_t;

static void collect_lot(void *ctx, const gh_credit_lot_t *l)
{
    lots_t *out = ctx;
    if (out->n < 16)
        out->lots[out->n++] = *l;
}

static lots_t lots_of(world_t *w, const char *org_id)
{
    lots_t l = {.n = 0};
    assert_int_equal(gh_billing_lots(&w->app, org_id, 16, collect_lot, &l), GH_OK);
    return l;
}

typedef struct {
    int orgs;
    char last[640]; /* the last difference found */
} check_t;

static void on_check(void *ctx, const char *org_id, bool ok, const char *detail)
{
    check_t *c = ctx;
    c->orgs++;
    if (!ok)
        snprintf(c->last, sizeof(c->last), "%s: %s", org_id, detail);
}

/* The number of differences the ledger check finds. */
static int check(world_t *w)
{
    check_t c = {0};
    int problems = -1;
    assert_int_equal(gh_billing_ledger_check(&w->app, NULL, on_check, &c, &problems), GH_OK);
    if (problems)
        print_message("ledger check: %s\n", c.last);
    return problems;
}

static void amounts_and_tax(void **state)
{
    (void)state;
    int64_t v;
    char msg[256];
    static const struct {
        const char *text;
        int64_t nusd;
    } ok[] = {{"5", USD(5)}, {"12.50", CENTS(1250)}, {"0.01", CENTS(1)}, {"0", 0},
              {"10000.00", USD(10000)}, {"007.5", CENTS(750)}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(gh_billing_parse_amount(ok[i].text, "amount_usd", &v, msg, sizeof(msg)),
                         GH_OK);
        assert_int_equal(v, ok[i].nusd);
    }
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"-5", "cannot be negative"},
        {"5.001", "whole cents"},
        {"0.000000001", "whole cents"},
        {"5.0000000001", "whole cents"},
        {"99999999999999999999", "too large"},
        {"abc", "like \"25.00\""},
        {"1e3", "like \"25.00\""},
        {"", "like \"25.00\""},
        {"5.", "like \"25.00\""},
        {".5", "like \"25.00\""},
        {" 5", "like \"25.00\""},
        {"5,00", "like \"25.00\""},
        {"+5", "like \"25.00\""},
        {"1.2.3", "like \"25.00\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = '\0';
        gh_err_t rc = gh_billing_parse_amount(bad[i].text, "amount_usd", &v, msg, sizeof(msg));
        if (rc != GH_EINVAL || !strstr(msg, bad[i].message) || !strstr(msg, "amount_usd"))
            fail_msg("\"%s\": %s \"%s\"", bad[i].text, gh_err_name(rc), msg);
    }
    /* Tax is rounded half up to the cent. */
    assert_int_equal(gh_billing_tax(USD(10), 2200), CENTS(220));
    assert_int_equal(gh_billing_tax(CENTS(1), 2200), 0);      /* 0.22 cents */
    assert_int_equal(gh_billing_tax(CENTS(3), 2000), CENTS(1)); /* 0.6 cents */
    assert_int_equal(gh_billing_tax(CENTS(5), 1000), CENTS(1)); /* 0.5 cents: half up */
    assert_int_equal(gh_billing_tax(CENTS(4), 1000), 0);      /* 0.4 cents */
    assert_int_equal(gh_billing_tax(CENTS(1999), 825), CENTS(165)); /* 164.9175 cents */
    assert_int_equal(gh_billing_tax(USD(10000), 10000), USD(10000));
    assert_int_equal(gh_billing_tax(USD(7), 0), 0);
}

static void usage_draws_from_the_lot_that_expires_first(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    /* A long-lived lot first, then one that expires sooner: usage takes the second first. */
    w->cfg.credit_expiry_s = 1000;
    grant(w, a.org_id, USD(5));
    w->cfg.credit_expiry_s = 100;
    grant(w, a.org_id, USD(5));
    w->cfg.credit_expiry_s = 0;
    lots_t l = lots_of(w, a.org_id);
    assert_int_equal(l.n, 2);
    assert_true(l.lots[0].expires_at < l.lots[1].expires_at);
    char soon[GH_ID_MAX], late[GH_ID_MAX];
    snprintf(soon, sizeof(soon), "%s", l.lots[0].id);
    snprintf(late, sizeof(late), "%s", l.lots[1].id);

    use(w, a.org_id, USD(3));
    l = lots_of(w, a.org_id);
    assert_string_equal(l.lots[0].id, soon);
    assert_int_equal(l.lots[0].remaining_nusd, USD(2));
    assert_int_equal(l.lots[1].remaining_nusd, USD(5));
    /* One charge across both lots: the sooner one is emptied, the rest from the later one. */
    use(w, a.org_id, CENTS(350));
    l = lots_of(w, a.org_id);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.lots[0].id, late);
    assert_int_equal(l.lots[0].remaining_nusd, CENTS(350));
    assert_int_equal(balance(w, a.org_id), CENTS(350));
    assert_int_equal(check(w), 0);
}

static void expiry_takes_what_is_left(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    w->cfg.credit_expiry_s = 100;
    grant(w, a.org_id, USD(5));
    w->cfg.credit_expiry_s = 0;
    grant(w, a.org_id, USD(7));
    use(w, a.org_id, USD(2));
    assert_int_equal(balance(w, a.org_id), USD(10));
    int n = -1;
    assert_int_equal(gh_billing_expire(&w->app, &n), GH_OK);
    assert_int_equal(n, 0); /* nothing due yet */

    fake_now += 100; /* exactly at the expiry */
    /* An expired lot is no longer drawn from, even before the scheduler removes it. */
    use(w, a.org_id, USD(1));
    lots_t l = lots_of(w, a.org_id);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.lots[0].remaining_nusd, USD(6));
    assert_int_equal(gh_billing_expire(&w->app, &n), GH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(balance(w, a.org_id), USD(6));
    assert_int_equal(gh_billing_expire(&w->app, &n), GH_OK);
    assert_int_equal(n, 0);
    assert_int_equal(check(w), 0);
}

static void usage_beyond_the_credits_goes_negative_and_is_settled(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    grant(w, a.org_id, USD(1));
    use(w, a.org_id, CENTS(250));
    assert_int_equal(balance(w, a.org_id), -CENTS(150));
    assert_int_equal(lots_of(w, a.org_id).n, 0);
    assert_int_equal(check(w), 0);
    /* The next lot pays the debt first; what it has left is the balance. */
    grant(w, a.org_id, USD(5));
    assert_int_equal(balance(w, a.org_id), CENTS(350));
    lots_t l = lots_of(w, a.org_id);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.lots[0].remaining_nusd, CENTS(350));
    assert_int_equal(check(w), 0);
    /* So its expiry takes only that, never the debt again. */
    fake_now += w->cfg.credit_expiry_days * 86400;
    assert_int_equal(gh_billing_expire(&w->app, NULL), GH_OK);
    assert_int_equal(balance(w, a.org_id), 0);
    assert_int_equal(check(w), 0);
}

static void clawback_takes_credit_back_within_the_balance(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    grant(w, a.org_id, USD(5));
    gh_actor_t staff = {.kind = GH_ACTOR_STAFF, .role = GH_ROLE_ADMIN, .id = "staff"};
    snprintf(staff.org_id, sizeof(staff.org_id), "%s", a.org_id);
    char msg[256] = "";
    assert_int_equal(gh_billing_clawback(&w->app, &staff, a.org_id, USD(6), "mistake", msg,
                                         sizeof(msg)),
                     GH_EINVAL);
    assert_non_null(strstr(msg, "only $5.00"));
    assert_int_equal(balance(w, a.org_id), USD(5));
    assert_int_equal(gh_billing_clawback(&w->app, &staff, a.org_id, USD(2), "", msg,
                                         sizeof(msg)),
                     GH_EINVAL); /* a reason is required */
    assert_int_equal(gh_billing_clawback(&w->app, &staff, a.org_id, USD(2), "mistake", msg,
                                         sizeof(msg)),
                     GH_OK);
    assert_int_equal(balance(w, a.org_id), USD(3));
    assert_int_equal(gh_billing_grant(&w->app, &staff, "org_01nonesuchnonesuchnonesu", USD(1),
                                      "x", NULL, msg, sizeof(msg)),
                     GH_ENOTFOUND);
    assert_int_equal(check(w), 0);
}

static void purchases_need_answers_and_a_card(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    gh_purchase_t p;
    char msg[512] = "";
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10), "k1", &p, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_non_null(strstr(msg, "billing/profile"));
    const char *countries[] = {"it", "ZZ"};
    gh_billing_profile_in_t in = {.intended_use = "chat", .countries = countries,
                                  .ncountries = 2};
    gh_billing_account_t acc;
    assert_int_equal(gh_billing_profile_set(&w->app, &a, &in, &acc, msg, sizeof(msg)), GH_EINVAL);
    assert_non_null(strstr(msg, "\"ZZ\""));
    const char *industries[] = {"healthcare", "gambling"};
    in.ncountries = 1;
    in.industries = industries;
    in.nindustries = 2;
    assert_int_equal(gh_billing_profile_set(&w->app, &a, &in, &acc, msg, sizeof(msg)), GH_EINVAL);
    assert_non_null(strstr(msg, "gambling"));
    in.nindustries = 1;
    assert_int_equal(gh_billing_profile_set(&w->app, &a, &in, &acc, msg, sizeof(msg)), GH_OK);
    assert_string_equal(acc.countries, "[\"IT\"]");
    assert_string_equal(acc.regulated_industries, "[\"healthcare\"]");
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10), "k1", &p, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_non_null(strstr(msg, "no card"));
    assert_int_equal(balance(w, a.org_id), 0);
}

static void purchases_are_idempotent_and_declines_credit_nothing(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    ready(w, &a, "4242424242424242");
    gh_purchase_t p, again;
    char msg[512] = "";
    /* Bad amounts change nothing. */
    assert_int_equal(gh_billing_purchase(&w->app, &a, CENTS(499), "k0", &p, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_non_null(strstr(msg, "minimum first purchase is $5.00"));
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10001), "k0", &p, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(5) + 1, "k0", &p, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(5), "", &p, msg, sizeof(msg)),
                     GH_EINVAL);

    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(20), "k1", &p, msg, sizeof(msg)), GH_OK);
    assert_string_equal(p.status, "succeeded");
    assert_true(gh_id_valid(p.invoice_id, "inv"));
    assert_int_equal(balance(w, a.org_id), USD(20));
    /* The same key: the same purchase, credited once. Another amount: refused. */
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(20), "k1", &again, msg, sizeof(msg)),
                     GH_OK);
    assert_string_equal(again.id, p.id);
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(30), "k1", &again, msg, sizeof(msg)),
                     GH_ECONFLICT);
    assert_int_equal(balance(w, a.org_id), USD(20));

    /* A declined card: nothing credited, the reason given, and the same answer again. */
    ready(w, &a, "4000000000009995");
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10), "k2", &p, msg, sizeof(msg)),
                     GH_EBILLING);
    assert_non_null(strstr(msg, "insufficient funds"));
    assert_non_null(strstr(msg, "Nothing was charged"));
    assert_string_equal(p.status, "declined");
    assert_string_equal(p.decline_code, "insufficient_funds");
    assert_string_equal(p.invoice_id, "");
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10), "k2", &again, msg, sizeof(msg)),
                     GH_EBILLING);
    assert_string_equal(again.id, p.id);
    assert_int_equal(balance(w, a.org_id), USD(20));
    assert_int_equal(check(w), 0);
}

static void pending_purchases_resolve_exactly_once(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    ready(w, &a, "4000000000000259");
    gh_purchase_t p, q;
    char msg[512] = "";
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(15), "k1", &p, msg, sizeof(msg)), GH_OK);
    assert_string_equal(p.status, "pending");
    assert_int_equal(balance(w, a.org_id), 0);
    int retried = -1;
    /* Not due yet: retried only pending_retry_s after the last attempt. */
    fake_now += 1;
    assert_int_equal(gh_billing_retry_pending(&w->app, &retried), GH_OK);
    assert_int_equal(retried, 0);
    /* A webhook saying it succeeded, twice: credited once. */
    gh_pay_result_t ok = {.status = GH_PAY_SUCCEEDED, .ref = "test_ch_webhook"};
    assert_int_equal(gh_billing_purchase_resolve(&w->app, p.id, &ok, &q), GH_OK);
    assert_string_equal(q.status, "succeeded");
    assert_int_equal(gh_billing_purchase_resolve(&w->app, p.id, &ok, &q), GH_OK);
    gh_pay_result_t no = {.status = GH_PAY_DECLINED, .decline_code = "card_declined"};
    assert_int_equal(gh_billing_purchase_resolve(&w->app, p.id, &no, &q), GH_OK);
    assert_string_equal(q.status, "succeeded");
    assert_int_equal(balance(w, a.org_id), USD(15));

    /* Another pending purchase, resolved by the retry job with the same key. */
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(5), "k2", &p, msg, sizeof(msg)), GH_OK);
    assert_string_equal(p.status, "pending");
    fake_now += w->cfg.pending_retry_s;
    assert_int_equal(gh_billing_retry_pending(&w->app, &retried), GH_OK);
    assert_int_equal(retried, 1);
    assert_int_equal(gh_billing_purchase_get(&w->app, a.org_id, p.id, &q), GH_OK);
    assert_string_equal(q.status, "succeeded");
    assert_int_equal(q.attempts, 2);
    assert_int_equal(gh_billing_retry_pending(&w->app, &retried), GH_OK);
    assert_int_equal(retried, 0);
    assert_int_equal(balance(w, a.org_id), USD(20));
    assert_int_equal(check(w), 0);
}

/* A provider whose charges never settle (Stripe answering "processing", or not at all). */
typedef struct {
    gh_pay_t base;
    int charges;
} stuck_t;

static gh_err_t stuck_charge(gh_pay_t *p, const gh_pay_charge_t *req, gh_pay_result_t *out)
{
    (void)req;
    ((stuck_t *)p)->charges++;
    memset(out, 0, sizeof(*out));
    out->status = GH_PAY_PENDING;
    snprintf(out->ref, sizeof(out->ref), "pi_stuck");
    snprintf(out->message, sizeof(out->message), "The payment is being processed.");
    return GH_OK;
}

static const gh_pay_ops_t stuck_ops = {.name = "stuck", .test_mode = true,
                                       .charge = stuck_charge};

static gh_billing_event_outcome_t apply(world_t *w, const char *id, const char *purchase_id,
                                        const char *org_id, int64_t amount,
                                        const gh_pay_result_t *res)
{
    gh_billing_event_t ev = {.provider = "stuck", .id = id, .type = "payment_intent.x",
                             .purchase_id = purchase_id, .org_id = org_id,
                             .amount_nusd = amount, .result = res};
    gh_billing_event_outcome_t o;
    char why[256];
    assert_int_equal(gh_billing_event_apply(&w->app, &ev, &o, why, sizeof(why)), GH_OK);
    return o;
}

static void pending_purchases_are_given_up_after_23_hours(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    ready(w, &a, "4242424242424242");
    stuck_t stuck = {.base.ops = &stuck_ops};
    gh_pay_t *real = w->app.pay;
    w->app.pay = &stuck.base;
    gh_purchase_t p, q;
    char msg[512] = "";
    int retried = -1;
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10), "g1", &p, msg, sizeof(msg)), GH_OK);
    assert_string_equal(p.status, "pending");
    assert_int_equal(stuck.charges, 1);
    fake_now += w->cfg.pending_retry_s;
    assert_int_equal(gh_billing_retry_pending(&w->app, &retried), GH_OK);
    assert_int_equal(retried, 1);
    assert_int_equal(stuck.charges, 2);
    /* Just before the limit it is still charged again, with its key... */
    fake_now = p.created_at + GH_BILLING_GIVE_UP_S - 1;
    assert_int_equal(gh_billing_retry_pending(&w->app, &retried), GH_OK);
    assert_int_equal(retried, 1);
    assert_int_equal(stuck.charges, 3);
    /* ...from then on never: the provider may have forgotten the key. */
    fake_now = p.created_at + GH_BILLING_GIVE_UP_S;
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10), "g1", &q, msg, sizeof(msg)), GH_OK);
    assert_string_equal(q.status, "pending");
    assert_int_equal(stuck.charges, 3);
    fake_now += w->cfg.pending_retry_s;
    assert_int_equal(gh_billing_retry_pending(&w->app, &retried), GH_OK);
    assert_int_equal(retried, 0);
    assert_int_equal(stuck.charges, 3);
    assert_int_equal(gh_billing_purchase_get(&w->app, a.org_id, p.id, &q), GH_OK);
    assert_string_equal(q.status, "declined");
    assert_string_equal(q.decline_code, GH_BILLING_UNCONFIRMED);
    assert_non_null(strstr(q.message, "within 23 hours"));
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10), "g1", &q, msg, sizeof(msg)),
                     GH_EBILLING);
    assert_int_equal(stuck.charges, 3);
    fake_now += 3600;
    assert_int_equal(gh_billing_retry_pending(&w->app, &retried), GH_OK);
    assert_int_equal(retried, 0);
    assert_int_equal(balance(w, a.org_id), 0);

    /* The provider confirms late: credited, once, however often it says so. */
    gh_pay_result_t ok = {.status = GH_PAY_SUCCEEDED, .ref = "pi_stuck"};
    assert_int_equal(apply(w, "evt_late", p.id, a.org_id, USD(10), &ok), GH_BILLING_EVENT_APPLIED);
    assert_int_equal(apply(w, "evt_late", p.id, a.org_id, USD(10), &ok),
                     GH_BILLING_EVENT_DUPLICATE);
    assert_int_equal(apply(w, "evt_again", p.id, a.org_id, USD(10), &ok),
                     GH_BILLING_EVENT_IGNORED);
    assert_int_equal(gh_billing_purchase_get(&w->app, a.org_id, p.id, &q), GH_OK);
    assert_string_equal(q.status, "succeeded");
    assert_int_equal(balance(w, a.org_id), USD(10));
    w->app.pay = real;
    assert_int_equal(check(w), 0);
}

static void webhook_events_settle_only_their_own_purchase(void **state)
{
    world_t *w = *state;
    gh_actor_t a, b;
    new_org(w, &a);
    new_org(w, &b);
    ready(w, &a, "4242424242424242");
    stuck_t stuck = {.base.ops = &stuck_ops};
    gh_pay_t *real = w->app.pay;
    w->app.pay = &stuck.base;
    gh_purchase_t p, q;
    char msg[512] = "";
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(7), "w1", &p, msg, sizeof(msg)), GH_OK);
    gh_pay_result_t no = {.status = GH_PAY_DECLINED, .ref = "pi_stuck",
                          .decline_code = "insufficient_funds",
                          .message = "Your card has insufficient funds."};
    gh_pay_result_t other_ref = {.status = GH_PAY_SUCCEEDED, .ref = "pi_other"};
    /* Another amount, organization, provider reference or purchase: recorded, ignored. */
    assert_int_equal(apply(w, "evt_w1", p.id, a.org_id, USD(8), &no), GH_BILLING_EVENT_IGNORED);
    assert_int_equal(apply(w, "evt_w2", p.id, b.org_id, USD(7), &no), GH_BILLING_EVENT_IGNORED);
    assert_int_equal(apply(w, "evt_w3", p.id, a.org_id, USD(7), &other_ref),
                     GH_BILLING_EVENT_IGNORED);
    assert_int_equal(apply(w, "evt_w4", "pur_01aaaaaaaaaaaaaaaaaaaaaa", a.org_id, USD(7), &no),
                     GH_BILLING_EVENT_IGNORED);
    assert_int_equal(apply(w, "evt_w5", "nonsense", "", 0, &no), GH_BILLING_EVENT_IGNORED);
    assert_int_equal(gh_billing_purchase_get(&w->app, a.org_id, p.id, &q), GH_OK);
    assert_string_equal(q.status, "pending");
    /* The recorded events stay recorded: replays are duplicates. */
    assert_int_equal(apply(w, "evt_w1", p.id, a.org_id, USD(7), &no),
                     GH_BILLING_EVENT_DUPLICATE);
    bool seen = false;
    assert_int_equal(gh_billing_event_seen(&w->app, "evt_w5", &seen), GH_OK);
    assert_true(seen);
    assert_int_equal(gh_billing_event_seen(&w->app, "evt_never", &seen), GH_OK);
    assert_false(seen);
    /* The right one declines it; a later success does not undo a decline. */
    assert_int_equal(apply(w, "evt_w6", p.id, a.org_id, USD(7), &no), GH_BILLING_EVENT_APPLIED);
    gh_pay_result_t ok = {.status = GH_PAY_SUCCEEDED, .ref = "pi_stuck"};
    assert_int_equal(apply(w, "evt_w7", p.id, a.org_id, USD(7), &ok), GH_BILLING_EVENT_IGNORED);
    assert_int_equal(gh_billing_purchase_get(&w->app, a.org_id, p.id, &q), GH_OK);
    assert_string_equal(q.status, "declined");
    assert_string_equal(q.decline_code, "insufficient_funds");
    assert_int_equal(balance(w, a.org_id), 0);
    w->app.pay = real;
    assert_int_equal(check(w), 0);
}

typedef struct {
    world_t *w;
    gh_actor_t actor;
    int index, count, failures;
} buyer_t;

static void *buyer_main(void *arg)
{
    buyer_t *b = arg;
    for (int i = 0; i < b->count; i++) {
        char key[64], msg[512];
        gh_purchase_t p;
        snprintf(key, sizeof(key), "buyer-%d-%d", b->index, i);
        if (gh_billing_purchase(&b->w->app, &b->actor, USD(5) + CENTS(i), key, &p, msg,
                                sizeof(msg)) ||
            strcmp(p.status, "succeeded"))
            b->failures++;
    }
    return NULL;
}

typedef struct {
    int years;
    gh_invoice_year_t y;
} years_t;

static void on_year(void *ctx, const gh_invoice_year_t *y)
{
    years_t *out = ctx;
    out->years++;
    out->y = *y;
}

static void invoice_numbers_are_gap_free_under_concurrent_purchases(void **state)
{
    world_t *w = *state;
    enum { THREADS = 4, EACH = 8 };
    gh_actor_t orgs[2];
    for (int i = 0; i < 2; i++) {
        new_org(w, &orgs[i]);
        ready(w, &orgs[i], "4242424242424242");
    }
    buyer_t buyers[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        buyers[i] = (buyer_t){.w = w, .actor = orgs[i % 2], .index = i, .count = EACH};
        assert_int_equal(pthread_create(&threads[i], NULL, buyer_main, &buyers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(buyers[i].failures, 0);
    }
    years_t y = {0};
    assert_int_equal(gh_store_invoice_years(gh_store_db(w->app.store), on_year, &y), GH_OK);
    assert_int_equal(y.years, 1);
    assert_int_equal(y.y.count, THREADS * EACH);
    assert_int_equal(y.y.min_seq, 1);
    assert_int_equal(y.y.max_seq, THREADS * EACH);
    assert_int_equal(y.y.counter, THREADS * EACH);
    /* Each organization has exactly what its two buyers paid for. */
    int64_t each = 0;
    for (int i = 0; i < EACH; i++)
        each += USD(5) + CENTS(i);
    assert_int_equal(balance(w, orgs[0].org_id), 2 * each);
    assert_int_equal(balance(w, orgs[1].org_id), 2 * each);
    assert_int_equal(check(w), 0);
}

typedef struct {
    const char *status;
    int64_t n;
} reload_count_t;

static void count_reload(void *ctx, const gh_purchase_t *p)
{
    reload_count_t *c = ctx;
    if (!strcmp(p->kind, "auto_reload") && !strcmp(p->status, c->status))
        c->n++;
}

/* How many auto-reloads of `org_id` have `status`. */
static int64_t reloads(world_t *w, const char *org_id, const char *status)
{
    reload_count_t c = {status, 0};
    gh_page_t page = {.limit = 1000};
    bool more;
    assert_int_equal(gh_store_purchases_list(gh_store_db(w->app.store), org_id, &page,
                                             count_reload, &c, &more),
                     GH_OK);
    return c.n;
}

static void auto_reload_charges_once_per_crossing(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    ready(w, &a, "4242424242424242");
    char msg[512] = "";
    gh_billing_account_t acc;
    int64_t threshold = USD(10), amount = USD(5), small = USD(4);
    assert_int_equal(gh_billing_auto_reload_set(&w->app, &a, true, &threshold, &small, &acc, msg,
                                                sizeof(msg)),
                     GH_EINVAL);
    assert_non_null(strstr(msg, "minimum purchase"));
    assert_int_equal(gh_billing_auto_reload_set(&w->app, &a, true, &threshold, &amount, &acc, msg,
                                                sizeof(msg)),
                     GH_OK);
    assert_true(acc.auto_reload_enabled);
    grant(w, a.org_id, USD(20));
    int started = -1;
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 0); /* above the threshold */

    use(w, a.org_id, USD(16)); /* 4: below */
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 1);
    assert_int_equal(balance(w, a.org_id), USD(9)); /* still below after the reload */
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 0); /* the same crossing: never a second charge */
    use(w, a.org_id, USD(1));
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 0);
    assert_int_equal(reloads(w, a.org_id, "succeeded"), 1);

    /* Back above the threshold re-arms it; the next crossing reloads once more. */
    grant(w, a.org_id, USD(5)); /* 13 */
    use(w, a.org_id, USD(4));   /* 9 */
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 1);
    assert_int_equal(reloads(w, a.org_id, "succeeded"), 2);
    assert_int_equal(balance(w, a.org_id), USD(14));

    /* Never while one is pending. */
    ready(w, &a, "4000000000000259");
    use(w, a.org_id, USD(10)); /* 4 */
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 1);
    assert_int_equal(reloads(w, a.org_id, "pending"), 1);
    grant(w, a.org_id, USD(10)); /* 14: re-armed while the reload is pending */
    use(w, a.org_id, USD(10));   /* 4 */
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 0);
    assert_int_equal(reloads(w, a.org_id, "pending"), 1);
    fake_now += w->cfg.pending_retry_s;
    assert_int_equal(gh_billing_retry_pending(&w->app, NULL), GH_OK);
    assert_int_equal(reloads(w, a.org_id, "succeeded"), 3);
    assert_int_equal(balance(w, a.org_id), USD(9));
    assert_int_equal(check(w), 0);
}

static void declined_reload_turns_auto_reload_off(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    ready(w, &a, "4000000000000341");
    char msg[512] = "";
    gh_billing_account_t acc;
    int64_t threshold = USD(10), amount = USD(5);
    assert_int_equal(gh_billing_auto_reload_set(&w->app, &a, true, &threshold, &amount, &acc, msg,
                                                sizeof(msg)),
                     GH_OK);
    int started = 0;
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK); /* 0 < 10 */
    assert_int_equal(started, 1);
    gh_billing_overview_t o;
    assert_int_equal(gh_billing_overview(&w->app, a.org_id, &o), GH_OK);
    assert_false(o.account.auto_reload_enabled);
    assert_non_null(strstr(o.account.auto_reload_disabled_reason, "declined"));
    assert_int_equal(reloads(w, a.org_id, "declined"), 1);
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 0);
    /* Turning it back on clears the reason. */
    ready(w, &a, "4242424242424242");
    assert_int_equal(gh_billing_auto_reload_set(&w->app, &a, true, NULL, NULL, &acc, msg,
                                                sizeof(msg)),
                     GH_OK);
    assert_string_equal(acc.auto_reload_disabled_reason, "");
    assert_int_equal(gh_billing_auto_reload_check(&w->app, &started), GH_OK);
    assert_int_equal(started, 1);
    assert_int_equal(balance(w, a.org_id), USD(5));
    assert_int_equal(check(w), 0);
}

static void usage_writer_commits_charge_the_lots(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    grant(w, a.org_id, USD(1));
    char journal[128];
    snprintf(journal, sizeof(journal), "%s/usage.journal", w->dir);
    gh_usage_hook_t hook;
    gh_billing_usage_hook(&w->app, &hook);
    gh_usage_t *u;
    char err[256];
    assert_int_equal(gh_usage_open(&u, w->app.store, journal, &hook, err, sizeof(err)), GH_OK);
    for (int i = 0; i < 5; i++) {
        gh_usage_event_t ev;
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.request_id, sizeof(ev.request_id), "req_%d", i);
        snprintf(ev.org_id, sizeof(ev.org_id), "%s", a.org_id);
        snprintf(ev.model, sizeof(ev.model), "m");
        snprintf(ev.route, sizeof(ev.route), "messages");
        ev.cost_nusd = ev.input_cost_nusd = CENTS(30); /* the sum of its parts */
        ev.status = 200;
        assert_int_equal(gh_usage_submit(u, &ev), GH_OK);
    }
    gh_usage_flush(u);
    gh_usage_close(u);
    assert_int_equal(balance(w, a.org_id), -CENTS(50));
    assert_int_equal(check(w), 0);
}

/* Runs `sql` on a connection of the test's own, beside the store's: GH_OK when the database
 * accepted it. */
static gh_err_t raw_exec(world_t *w, const char *sql)
{
    if (w->pg) {
        gh_pg_options_t opt;
        gh_pg_options_defaults(&opt);
        opt.url = w->pg_url;
        gh_pg_conn_t *c;
        char err[512];
        assert_int_equal(gh_pg_connect(&opt, &c, err, sizeof(err)), GH_OK);
        gh_err_t rc = gh_pg_exec(c, sql);
        gh_pg_disconnect(c);
        return rc;
    }
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(w->cfg.db_path, &raw), SQLITE_OK);
    sqlite3_busy_timeout(raw, 5000);
    int rc = sqlite3_exec(raw, sql, NULL, NULL, NULL);
    sqlite3_close(raw);
    return rc == SQLITE_OK ? GH_OK : GH_ESTORE;
}

static void ledger_check_finds_tampering(void **state)
{
    world_t *w = *state;
    gh_actor_t a;
    new_org(w, &a);
    ready(w, &a, "4242424242424242");
    gh_purchase_t p;
    char msg[512];
    assert_int_equal(gh_billing_purchase(&w->app, &a, USD(10), "k", &p, msg, sizeof(msg)), GH_OK);
    use(w, a.org_id, USD(3));
    assert_int_equal(check(w), 0);

    /* Entries cannot be changed or removed at all. */
    assert_int_not_equal(raw_exec(w, "UPDATE ledger_entries SET amount_nusd = 0"), GH_OK);
    assert_int_not_equal(raw_exec(w, "DELETE FROM ledger_entries"), GH_OK);
    /* A lot that says it has more than its entries give it. */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE credit_lots SET remaining_nusd = remaining_nusd + 1 WHERE org_id = '%s'",
             a.org_id);
    assert_int_equal(raw_exec(w, sql), GH_OK);
    assert_true(check(w) > 0);
    snprintf(sql, sizeof(sql),
             "UPDATE credit_lots SET remaining_nusd = remaining_nusd - 1 WHERE org_id = '%s'",
             a.org_id);
    assert_int_equal(raw_exec(w, sql), GH_OK);
    assert_int_equal(check(w), 0);
    /* A cached balance that drifted. */
    snprintf(sql, sizeof(sql),
             "UPDATE billing_accounts SET balance_nusd = balance_nusd + 5 WHERE org_id = '%s'",
             a.org_id);
    assert_int_equal(raw_exec(w, sql), GH_OK);
    assert_int_equal(check(w), 1);
    snprintf(sql, sizeof(sql),
             "UPDATE billing_accounts SET balance_nusd = balance_nusd - 5 WHERE org_id = '%s'",
             a.org_id);
    assert_int_equal(raw_exec(w, sql), GH_OK);
    /* A purchase credited twice. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO ledger_entries (org_id, kind, amount_nusd, reference, created_at) "
             "VALUES ('%s', 'purchase', 10000000000, '%s', %s)",
             a.org_id, p.id, w->pg ? "to_timestamp(0)" : "0");
    assert_int_equal(raw_exec(w, sql), GH_OK);
    assert_true(check(w) > 0);
}

#define ON_SQLITE(test) cmocka_unit_test_setup_teardown(test, setup, teardown)
#define ON_PG(test) cmocka_unit_test_setup_teardown(test, setup_pg, teardown)

int main(void)
{
    (void)pg_unit_store;
    (void)pg_unit_sqlite_store;
    (void)pg_unit_sqlite_close;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(amounts_and_tax),
        ON_SQLITE(usage_draws_from_the_lot_that_expires_first),
        ON_SQLITE(expiry_takes_what_is_left),
        ON_SQLITE(usage_beyond_the_credits_goes_negative_and_is_settled),
        ON_SQLITE(clawback_takes_credit_back_within_the_balance),
        ON_SQLITE(purchases_need_answers_and_a_card),
        ON_SQLITE(purchases_are_idempotent_and_declines_credit_nothing),
        ON_SQLITE(pending_purchases_resolve_exactly_once),
        ON_SQLITE(pending_purchases_are_given_up_after_23_hours),
        ON_SQLITE(webhook_events_settle_only_their_own_purchase),
        ON_SQLITE(invoice_numbers_are_gap_free_under_concurrent_purchases),
        ON_SQLITE(auto_reload_charges_once_per_crossing),
        ON_SQLITE(declined_reload_turns_auto_reload_off),
        ON_SQLITE(usage_writer_commits_charge_the_lots),
        ON_SQLITE(ledger_check_finds_tampering),
        /* The same again with the store on PostgreSQL. */
        ON_PG(usage_draws_from_the_lot_that_expires_first),
        ON_PG(expiry_takes_what_is_left),
        ON_PG(usage_beyond_the_credits_goes_negative_and_is_settled),
        ON_PG(clawback_takes_credit_back_within_the_balance),
        ON_PG(purchases_need_answers_and_a_card),
        ON_PG(purchases_are_idempotent_and_declines_credit_nothing),
        ON_PG(pending_purchases_resolve_exactly_once),
        ON_PG(pending_purchases_are_given_up_after_23_hours),
        ON_PG(webhook_events_settle_only_their_own_purchase),
        ON_PG(invoice_numbers_are_gap_free_under_concurrent_purchases),
        ON_PG(auto_reload_charges_once_per_crossing),
        ON_PG(declined_reload_turns_auto_reload_off),
        ON_PG(usage_writer_commits_charge_the_lots),
        ON_PG(ledger_check_finds_tampering),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
