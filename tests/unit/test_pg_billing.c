/* The PostgreSQL backend's billing and spend-notification operations (src/store/postgres/
 * billing.c and notify.c) against a real PostgreSQL 15 (pg_unit.h starts one for this
 * binary and stops it when the binary exits), side by side with the SQLite backend:
 * each test runs one script of store calls on a fresh SQLite file and on a fresh PostgreSQL
 * database, writes what every call answered (codes, records, times, list order, pages) into
 * a transcript per backend, checks the figures that matter, and then requires the two
 * transcripts to be identical - the port must answer exactly as SQLite does. Also: invoice
 * numbers stay gap-free when four threads take them at once. */
#include "pg_unit.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/notify.h"
#include "store/postgres/pg.h"
#include "store/postgres/pg_int.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store.h"

/* ---- the two stores ---- */

typedef struct {
    bool pg;
    char path[64];      /* SQLite: the file */
    char location[320]; /* PostgreSQL: the database's URL */
    gh_store_t *store;
    gh_db_t *db;
    char out[1 << 16]; /* the transcript */
    size_t len;
} backend_t;

static void say(backend_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->out + b->len, sizeof(b->out) - b->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(b->out) - b->len);
    b->len += (size_t)n;
}

/* Runs `sql` on a connection of the test's own (seeding what other files of the port own). */
static void raw(backend_t *b, const char *sqlite_sql, const char *pg_sql)
{
    if (b->pg) {
        gh_pg_options_t opt;
        gh_pg_options_defaults(&opt);
        opt.url = b->location;
        gh_pg_conn_t *c;
        char err[512];
        assert_int_equal(gh_pg_connect(&opt, &c, err, sizeof(err)), GH_OK);
        gh_err_t rc = gh_pg_exec(c, pg_sql);
        if (rc)
            fprintf(stderr, "%s: %s\n", pg_sql, c->message);
        assert_int_equal(rc, GH_OK);
        gh_pg_disconnect(c);
    } else {
        sqlite3 *conn;
        assert_int_equal(sqlite3_open(b->path, &conn), SQLITE_OK);
        sqlite3_busy_timeout(conn, 5000);
        char *msg = NULL;
        int rc = sqlite3_exec(conn, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
        rc = sqlite3_exec(conn, sqlite_sql, NULL, NULL, &msg);
        if (rc)
            fprintf(stderr, "%s: %s\n", sqlite_sql, msg ? msg : "?");
        sqlite3_free(msg);
        assert_int_equal(rc, SQLITE_OK);
        sqlite3_close(conn);
    }
}

static void open_backend(backend_t *b, bool pg)
{
    memset(b, 0, sizeof(*b));
    b->pg = pg;
    char err[512] = "";
    gh_err_t rc;
    if (pg) {
        pg_unit_fresh_db(b->location, sizeof(b->location));
        rc = gh_postgres_ops.open(&b->store, b->location, err, sizeof(err));
    } else {
        b->store = pg_unit_sqlite_store(b->path);
        rc = GH_OK;
    }
    if (rc)
        fprintf(stderr, "open %s: %s\n", pg ? "postgres" : "sqlite", err);
    assert_int_equal(rc, GH_OK);
    b->db = gh_store_db(b->store);
    assert_non_null(b->db);
    /* Two organizations; in org_a an admin, a billing member and a developer. */
    raw(b,
        "INSERT INTO accounts (id, email, created_at) VALUES "
        "('acct_1', 'ann@example.com', 1000), ('acct_2', 'bob@example.com', 1000), "
        "('acct_3', 'cy@example.com', 1000);"
        "INSERT INTO organizations (id, name, created_at) VALUES ('org_a', 'A', 1000), "
        "('org_b', 'B', 1000);"
        "INSERT INTO memberships (org_id, account_id, role, created_at) VALUES "
        "('org_a', 'acct_2', 'billing', 1001), ('org_a', 'acct_1', 'admin', 1002), "
        "('org_a', 'acct_3', 'developer', 1000), ('org_b', 'acct_3', 'admin', 1000);",
        "INSERT INTO accounts (id, email, created_at) VALUES "
        "('acct_1', 'ann@example.com', to_timestamp(1000)), "
        "('acct_2', 'bob@example.com', to_timestamp(1000)), "
        "('acct_3', 'cy@example.com', to_timestamp(1000));"
        "INSERT INTO organizations (id, name, created_at) VALUES "
        "('org_a', 'A', to_timestamp(1000)), ('org_b', 'B', to_timestamp(1000));"
        "INSERT INTO memberships (org_id, account_id, role, created_at) VALUES "
        "('org_a', 'acct_2', 'billing', to_timestamp(1001)), "
        "('org_a', 'acct_1', 'admin', to_timestamp(1002)), "
        "('org_a', 'acct_3', 'developer', to_timestamp(1000)), "
        "('org_b', 'acct_3', 'admin', to_timestamp(1000));");
}

static void close_backend(backend_t *b)
{
    if (b->pg)
        gh_store_close(b->store);
    else
        pg_unit_sqlite_close(b->store, b->path);
}

/* Runs `script` on both backends and requires identical transcripts. */
typedef void (*script_fn)(backend_t *b);

static void both(script_fn fn)
{
    backend_t *sq = malloc(sizeof(*sq)), *pg = malloc(sizeof(*pg));
    assert_non_null(sq);
    assert_non_null(pg);
    open_backend(sq, false);
    fn(sq);
    open_backend(pg, true);
    fn(pg);
    if (getenv("GH_TEST_TRANSCRIPT"))
        fprintf(stderr, "---- transcript (both backends) ----\n%s", pg->out);
    if (strcmp(sq->out, pg->out)) {
        fprintf(stderr, "---- sqlite ----\n%s---- postgres ----\n%s", sq->out, pg->out);
        fail_msg("the PostgreSQL backend answered differently from SQLite");
    }
    close_backend(sq);
    close_backend(pg);
    free(sq);
    free(pg);
}

/* ---- billing accounts ---- */

static void say_account(backend_t *b, gh_err_t rc, const gh_billing_account_t *a)
{
    say(b, "account rc=%d %s bal=%lld ref=%s en=%d conf=%d th=%lld amt=%lld armed=%d why=%s "
           "use=%s c=%s i=%s answered=%lld upd=%lld\n",
        (int)rc, a->org_id, (long long)a->balance_nusd, a->customer_ref,
        a->auto_reload_enabled, a->auto_reload_configured,
        (long long)a->auto_reload_threshold_nusd, (long long)a->auto_reload_amount_nusd,
        a->auto_reload_armed, a->auto_reload_disabled_reason, a->intended_use, a->countries,
        a->regulated_industries, (long long)a->profile_answered_at, (long long)a->updated_at);
}

static void say_id(void *ctx, const char *id)
{
    say(ctx, "  %s\n", id);
}

static void accounts_script(backend_t *b)
{
    gh_db_t *db = b->db;
    gh_billing_account_t a;
    memset(&a, 0, sizeof(a));
    gh_err_t rc = gh_store_billing_account_get(db, "org_a", &a);
    assert_int_equal(rc, GH_ENOTFOUND);
    say(b, "missing rc=%d\n", (int)rc);
    say(b, "disarm missing rc=%d\n", (int)gh_store_billing_disarm(db, "org_a", 2000));
    assert_int_equal(gh_store_billing_account_ensure(db, "org_a", 2000), GH_OK);
    assert_int_equal(gh_store_billing_account_ensure(db, "org_a", 2001), GH_OK); /* no-op */
    rc = gh_store_billing_account_get(db, "org_a", &a);
    assert_int_equal(rc, GH_OK);
    assert_int_equal(a.updated_at, 2000);
    assert_true(a.auto_reload_armed);
    assert_false(a.auto_reload_configured);
    say_account(b, rc, &a);

    /* The JSON arrays read back exactly as written (compact), as SQLite keeps them. */
    assert_int_equal(gh_store_billing_profile_put(db, "org_b", "Search", "[\"US\",\"DE\"]",
                                                  "[\"healthcare\",\"legal\"]", 2050),
                     GH_OK);
    rc = gh_store_billing_account_get(db, "org_b", &a);
    assert_string_equal(a.countries, "[\"US\",\"DE\"]");
    assert_string_equal(a.regulated_industries, "[\"healthcare\",\"legal\"]");
    say_account(b, rc, &a);
    assert_int_equal(gh_store_billing_profile_put(db, "org_a", "A support chatbot", "[\"US\"]",
                                                  "[]", 2100),
                     GH_OK);
    rc = gh_store_billing_account_get(db, "org_a", &a);
    assert_string_equal(a.countries, "[\"US\"]");
    assert_string_equal(a.regulated_industries, "[]");
    assert_int_equal(a.profile_answered_at, 2100);
    say_account(b, rc, &a);

    /* A threshold of -1 leaves it unset (NULL), as SQLite does. */
    assert_int_equal(gh_store_billing_auto_reload_put(db, "org_a", false, -1, -1, true, "", 2200),
                     GH_OK);
    rc = gh_store_billing_account_get(db, "org_a", &a);
    assert_false(a.auto_reload_configured);
    say_account(b, rc, &a);
    assert_int_equal(gh_store_billing_auto_reload_put(db, "org_a", true, 5000, 20000, true, "",
                                                      2300),
                     GH_OK);
    assert_int_equal(gh_store_billing_customer_ref_put(db, "org_a", "cus_123", 2350), GH_OK);
    assert_int_equal(gh_store_billing_customer_ref_put(db, "org_b", "", 2360), GH_OK);
    rc = gh_store_billing_account_get(db, "org_a", &a);
    assert_true(a.auto_reload_configured);
    assert_int_equal(a.auto_reload_threshold_nusd, 5000);
    assert_string_equal(a.customer_ref, "cus_123");
    say_account(b, rc, &a);
    rc = gh_store_billing_account_get(db, "org_b", &a);
    say_account(b, rc, &a);

    /* Balance 0 is below the threshold: due. Disarmed: not due. Rearm needs the balance back
     * at the threshold. */
    say(b, "due:\n");
    assert_int_equal(gh_store_billing_reload_due(db, say_id, b), GH_OK);
    assert_int_equal(gh_store_billing_disarm(db, "org_a", 2400), GH_OK);
    say(b, "due after disarm:\n");
    assert_int_equal(gh_store_billing_reload_due(db, say_id, b), GH_OK);
    assert_int_equal(gh_store_billing_rearm(db, "org_a"), GH_OK);
    rc = gh_store_billing_account_get(db, "org_a", &a);
    assert_false(a.auto_reload_armed);
    say_account(b, rc, &a);
    gh_ledger_entry_t e = {.kind = "grant", .amount_nusd = 6000, .created_at = 2500};
    snprintf(e.org_id, sizeof(e.org_id), "org_a");
    snprintf(e.reference, sizeof(e.reference), "grant_1");
    assert_int_equal(gh_store_ledger_append(db, &e), GH_OK);
    assert_int_equal(gh_store_billing_rearm(db, "org_a"), GH_OK);
    rc = gh_store_billing_account_get(db, "org_a", &a);
    assert_true(a.auto_reload_armed);
    assert_int_equal(a.balance_nusd, 6000);
    say_account(b, rc, &a);

    say(b, "contacts:\n");
    assert_int_equal(gh_store_billing_contacts(db, "org_a", say_id, b), GH_OK);
}

static void accounts_answer_as_on_sqlite(void **state)
{
    (void)state;
    both(accounts_script);
}

/* ---- cards and purchases ---- */

static void say_pm(void *ctx, const gh_payment_method_t *pm)
{
    say(ctx, "  card %s %s %s ref=%s %s %s %d/%d at=%lld replaced=%lld\n", pm->id, pm->org_id,
        pm->provider, pm->provider_ref, pm->brand, pm->last4, pm->exp_month, pm->exp_year,
        (long long)pm->created_at, (long long)pm->replaced_at);
}

static void say_purchase(void *ctx, const gh_purchase_t *p)
{
    say(ctx, "  purchase %s %s %s %s %lld+%lld=%lld %s key=%s pm=%s %s ref=%s decline=%s "
             "msg=%s n=%d by=%s/%s at=%lld upd=%lld res=%lld inv=%s\n",
        p->id, p->org_id, p->kind, p->status, (long long)p->amount_nusd,
        (long long)p->tax_nusd, (long long)p->total_nusd, p->tax_label, p->idempotency_key,
        p->payment_method_id, p->provider, p->provider_ref, p->decline_code, p->message,
        p->attempts, p->created_by_type, p->created_by_id, (long long)p->created_at,
        (long long)p->updated_at, (long long)p->resolved_at, p->invoice_id);
}

static void add_card(backend_t *b, const char *id, const char *ref, int64_t at)
{
    gh_payment_method_t pm = {.exp_month = 12, .exp_year = 2030, .created_at = at};
    snprintf(pm.id, sizeof(pm.id), "%s", id);
    snprintf(pm.org_id, sizeof(pm.org_id), "org_a");
    snprintf(pm.provider, sizeof(pm.provider), "test");
    snprintf(pm.provider_ref, sizeof(pm.provider_ref), "%s", ref);
    snprintf(pm.brand, sizeof(pm.brand), "visa");
    snprintf(pm.last4, sizeof(pm.last4), "4242");
    char replaced[GH_ID_MAX] = "x";
    assert_int_equal(gh_store_payment_method_add(b->db, &pm, replaced), GH_OK);
    say(b, "added %s replacing '%s'\n", id, replaced);
}

/* Pages through a list both ways with pages of 2, and tries a cursor from elsewhere. */

static void page_walk(backend_t *b, const char *what,
                      gh_err_t (*list)(backend_t *b, const gh_page_t *page, bool *has_more),
                      const char *after, const char *before)
{
    bool more = false;
    gh_page_t page = {.limit = 2};
    say(b, "%s first page:\n", what);
    assert_int_equal(list(b, &page, &more), GH_OK);
    say(b, " more=%d\n", more);
    page.after_id = after;
    say(b, "%s after %s:\n", what, after);
    assert_int_equal(list(b, &page, &more), GH_OK);
    say(b, " more=%d\n", more);
    page.after_id = NULL;
    page.before_id = before;
    say(b, "%s before %s:\n", what, before);
    assert_int_equal(list(b, &page, &more), GH_OK);
    say(b, " more=%d\n", more);
    page.before_id = "nope_1";
    gh_err_t rc = list(b, &page, &more);
    assert_int_equal(rc, GH_EINVAL);
    say(b, "%s unknown cursor rc=%d\n", what, (int)rc);
}

static gh_err_t list_cards(backend_t *b, const gh_page_t *page, bool *has_more)
{
    return gh_store_payment_methods_list(b->db, "org_a", page, say_pm, b, has_more);
}

static gh_err_t list_purchases(backend_t *b, const gh_page_t *page, bool *has_more)
{
    return gh_store_purchases_list(b->db, "org_a", page, say_purchase, b, has_more);
}

static void make_purchase(gh_purchase_t *p, const char *id, const char *key, int64_t at)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", id);
    snprintf(p->org_id, sizeof(p->org_id), "org_a");
    snprintf(p->kind, sizeof(p->kind), "manual");
    snprintf(p->status, sizeof(p->status), "pending");
    p->amount_nusd = 10000;
    p->tax_nusd = 2000;
    p->total_nusd = 12000;
    snprintf(p->tax_label, sizeof(p->tax_label), "VAT 20%%");
    snprintf(p->idempotency_key, sizeof(p->idempotency_key), "%s", key);
    snprintf(p->payment_method_id, sizeof(p->payment_method_id), "card_3");
    snprintf(p->provider, sizeof(p->provider), "test");
    snprintf(p->created_by_type, sizeof(p->created_by_type), "user");
    snprintf(p->created_by_id, sizeof(p->created_by_id), "acct_1");
    p->created_at = p->updated_at = at;
}

static void cards_and_purchases_script(backend_t *b)
{
    gh_db_t *db = b->db;
    gh_payment_method_t pm;
    gh_err_t rc = gh_store_payment_method_current(db, "org_a", &pm);
    assert_int_equal(rc, GH_ENOTFOUND);
    add_card(b, "card_1", "pm_1", 3000);
    add_card(b, "card_2", "pm_same", 3001);
    add_card(b, "card_3", "pm_same", 3002);
    rc = gh_store_payment_method_current(db, "org_a", &pm);
    assert_int_equal(rc, GH_OK);
    assert_string_equal(pm.id, "card_3");
    say_pm(b, &pm);
    rc = gh_store_payment_method_get(db, "org_a", "card_1", &pm);
    assert_int_equal(pm.replaced_at, 3001);
    say_pm(b, &pm);
    say(b, "other org's card rc=%d\n",
        (int)gh_store_payment_method_get(db, "org_b", "card_1", &pm));
    rc = gh_store_payment_method_by_ref(db, "org_a", "pm_same", &pm);
    assert_string_equal(pm.id, "card_3");
    say_pm(b, &pm);
    page_walk(b, "cards", list_cards, "card_3", "card_1");

    gh_purchase_t p;
    make_purchase(&p, "pur_1", "key_1", 4000);
    assert_int_equal(gh_store_purchase_insert(db, &p), GH_OK);
    make_purchase(&p, "pur_x", "key_1", 4000);
    rc = gh_store_purchase_insert(db, &p);
    assert_int_equal(rc, GH_ECONFLICT);
    say(b, "same key rc=%d\n", (int)rc);
    for (int i = 2; i <= 5; i++) {
        char id[16], key[16];
        snprintf(id, sizeof(id), "pur_%d", i);
        snprintf(key, sizeof(key), "key_%d", i);
        make_purchase(&p, id, key, 4000 + i);
        assert_int_equal(gh_store_purchase_insert(db, &p), GH_OK);
    }
    rc = gh_store_purchase_get(db, NULL, "pur_2", &p);
    say_purchase(b, &p);
    say(b, "wrong org rc=%d\n", (int)gh_store_purchase_get(db, "org_b", "pur_2", &p));
    rc = gh_store_purchase_by_key(db, "org_a", "key_3", &p);
    assert_string_equal(p.id, "pur_3");
    /* Resolve pur_3 once; a second resolution is a conflict. */
    snprintf(p.status, sizeof(p.status), "succeeded");
    snprintf(p.provider_ref, sizeof(p.provider_ref), "pi_3");
    p.attempts = 1;
    p.updated_at = p.resolved_at = 4100;
    assert_int_equal(gh_store_purchase_update(db, &p), GH_OK);
    rc = gh_store_purchase_update(db, &p);
    assert_int_equal(rc, GH_ECONFLICT);
    say(b, "second resolution rc=%d\n", (int)rc);
    /* Declined "unconfirmed" may still be resolved. */
    rc = gh_store_purchase_get(db, "org_a", "pur_4", &p);
    snprintf(p.status, sizeof(p.status), "declined");
    snprintf(p.decline_code, sizeof(p.decline_code), "unconfirmed");
    snprintf(p.message, sizeof(p.message), "We could not confirm the charge.");
    p.updated_at = 4200;
    assert_int_equal(gh_store_purchase_update(db, &p), GH_OK);
    snprintf(p.status, sizeof(p.status), "succeeded");
    p.decline_code[0] = '\0';
    p.message[0] = '\0';
    p.updated_at = p.resolved_at = 4300;
    assert_int_equal(gh_store_purchase_update(db, &p), GH_OK);
    page_walk(b, "purchases", list_purchases, "pur_4", "pur_1");
    say(b, "pending up to 4004, 2 at most:\n");
    assert_int_equal(gh_store_purchases_pending(db, 4004, 2, say_purchase, b), GH_OK);
    gh_purchase_stats_t s;
    assert_int_equal(gh_store_purchase_stats(db, "org_a", &s), GH_OK);
    assert_int_equal(s.succeeded, 2);
    assert_int_equal(s.succeeded_nusd, 20000);
    assert_int_equal(s.pending, 3);
    say(b, "stats %lld %lld %lld\n", (long long)s.succeeded, (long long)s.succeeded_nusd,
        (long long)s.pending);
    assert_int_equal(gh_store_purchase_stats(db, "org_b", &s), GH_OK);
    say(b, "stats b %lld %lld %lld\n", (long long)s.succeeded, (long long)s.succeeded_nusd,
        (long long)s.pending);
}

static void cards_and_purchases_answer_as_on_sqlite(void **state)
{
    (void)state;
    both(cards_and_purchases_script);
}

/* ---- lots, the ledger, invoices, webhook events ---- */

static void say_lot(void *ctx, const gh_credit_lot_t *l)
{
    say(ctx, "  lot %s %s %s %s %lld/%lld exp=%lld at=%lld\n", l->id, l->org_id, l->source,
        l->source_ref, (long long)l->remaining_nusd, (long long)l->amount_nusd,
        (long long)l->expires_at, (long long)l->created_at);
}

static void say_sums(void *ctx, const gh_ledger_sums_t *s)
{
    say(ctx, "  sums %s entries=%lld cached=%lld lots=%lld unalloc=%lld usage=%lld cost=%lld "
             "bad_lots=%lld bad_p=%lld\n",
        s->org_id, (long long)s->entries_nusd, (long long)s->cached_nusd,
        (long long)s->lots_remaining_nusd, (long long)s->unallocated_nusd,
        (long long)s->usage_entries_nusd, (long long)s->usage_cost_nusd, (long long)s->bad_lots,
        (long long)s->bad_purchases);
}

static void say_year(void *ctx, const gh_invoice_year_t *y)
{
    say(ctx, "  year %d count=%lld min=%lld max=%lld counter=%lld\n", y->year,
        (long long)y->count, (long long)y->min_seq, (long long)y->max_seq,
        (long long)y->counter);
}

static void say_invoice(void *ctx, const gh_invoice_rec_t *v)
{
    say(ctx, "  invoice %s %s %s %s %d/%lld at=%lld %s %s %lld+%lld=%lld %s note=%s %s test=%d "
             "seller=%s,%s,%s,%s vat=%s buyer=%s,%s,%s\n",
        v->id, v->org_id, v->purchase_id, v->number, v->year, (long long)v->seq,
        (long long)v->issued_at, v->currency, v->description, (long long)v->subtotal_nusd,
        (long long)v->tax_nusd, (long long)v->total_nusd, v->tax_label, v->note, v->payment,
        v->test_mode, v->seller.name, v->seller.line1, v->seller.line2, v->seller.country,
        v->seller.vat_id, v->buyer.name, v->buyer.email, v->buyer.city);
}

static gh_err_t list_invoices(backend_t *b, const gh_page_t *page, bool *has_more)
{
    return gh_store_invoices_list(b->db, "org_a", page, say_invoice, b, has_more);
}

static void add_lot(backend_t *b, const char *id, const char *source, const char *ref,
                    int64_t amount, int64_t expires_at)
{
    gh_credit_lot_t l = {.amount_nusd = amount, .remaining_nusd = amount,
                         .expires_at = expires_at, .created_at = 5000};
    snprintf(l.id, sizeof(l.id), "%s", id);
    snprintf(l.org_id, sizeof(l.org_id), "org_a");
    snprintf(l.source, sizeof(l.source), "%s", source);
    snprintf(l.source_ref, sizeof(l.source_ref), "%s", ref);
    assert_int_equal(gh_store_lot_insert(b->db, &l), GH_OK);
    gh_ledger_entry_t e = {.amount_nusd = amount, .created_at = 5000};
    snprintf(e.org_id, sizeof(e.org_id), "org_a");
    snprintf(e.lot_id, sizeof(e.lot_id), "%s", id);
    snprintf(e.kind, sizeof(e.kind), "%s", source);
    snprintf(e.reference, sizeof(e.reference), "%s", ref);
    assert_int_equal(gh_store_ledger_append(b->db, &e), GH_OK);
}

static void add_invoice(backend_t *b, const char *id, const char *purchase_id, int year,
                        int64_t amount)
{
    gh_invoice_rec_t v;
    memset(&v, 0, sizeof(v));
    assert_int_equal(gh_store_invoice_next_seq(b->db, year, &v.seq), GH_OK);
    snprintf(v.id, sizeof(v.id), "%s", id);
    snprintf(v.org_id, sizeof(v.org_id), "org_a");
    snprintf(v.purchase_id, sizeof(v.purchase_id), "%s", purchase_id);
    snprintf(v.number, sizeof(v.number), "GH-%d-%06lld", year, (long long)v.seq);
    v.year = year;
    v.issued_at = 5100;
    snprintf(v.currency, sizeof(v.currency), "USD");
    snprintf(v.description, sizeof(v.description), "API credits");
    v.subtotal_nusd = amount;
    v.tax_nusd = 0;
    v.total_nusd = amount;
    snprintf(v.tax_label, sizeof(v.tax_label), "No VAT");
    snprintf(v.payment, sizeof(v.payment), "Visa ending 4242");
    v.test_mode = true;
    snprintf(v.seller.name, sizeof(v.seller.name), "Gatehouse Ltd");
    snprintf(v.seller.line1, sizeof(v.seller.line1), "1 Main St");
    snprintf(v.seller.country, sizeof(v.seller.country), "GB");
    snprintf(v.seller.vat_id, sizeof(v.seller.vat_id), "GB123");
    snprintf(v.buyer.name, sizeof(v.buyer.name), "A");
    snprintf(v.buyer.email, sizeof(v.buyer.email), "ann@example.com");
    assert_int_equal(gh_store_invoice_insert(b->db, &v), GH_OK);
}

/* The usage writer's draws (gh_store_usage_charge): org_a's cost across two lots, expiring
 * first first, then past them; org_b's, which has no lot, all with no lot; an organization
 * that does not exist is not charged and the others are. */
static void say_charge(backend_t *b, const gh_usage_draw_t *d, const bool *charged, size_t n)
{
    for (size_t i = 0; i < n; i++)
        say(b, "  charge %s %lld %s -> %s\n", d[i].org_id, (long long)d[i].cost_nusd,
            d[i].reference, charged[i] ? "charged" : "not charged");
    say(b, "open lots at 6000:\n");
    assert_int_equal(gh_store_lots_open(b->db, "org_a", 6000, 5, say_lot, b), GH_OK);
    assert_int_equal(gh_store_ledger_sums(b->db, NULL, say_sums, b), GH_OK);
}

static void usage_charge_script(backend_t *b)
{
    gh_db_t *db = b->db;
    add_lot(b, "lot_late", "purchase", "pur_9", 10000, 9000);
    add_lot(b, "lot_soon", "grant", "grant_9", 500, 7000);
    gh_usage_draw_t d[] = {{"org_a", 800, "usage:1-5"},
                           {"org_nonesuch", 10, "usage:6-6"},
                           {"org_b", 50, "usage:7-9"}};
    bool charged[3] = {false, false, false};
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_int_equal(gh_store_usage_charge(db, d, 3, 6000, NULL, 202612, charged), GH_OK);
    assert_int_equal(gh_store_commit(db), GH_OK);
    assert_true(charged[0] && !charged[1] && charged[2]);
    say_charge(b, d, charged, 3);
    /* Past every lot: what lot_late holds (9,700), the rest (10,300) with no lot. */
    gh_usage_draw_t more = {"org_a", 20000, "usage:10-12"};
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_int_equal(gh_store_usage_charge(db, &more, 1, 6100, NULL, 202612, charged), GH_OK);
    assert_int_equal(gh_store_commit(db), GH_OK);
    say_charge(b, &more, charged, 1);
    gh_billing_account_t acct;
    assert_int_equal(gh_store_billing_account_get(db, "org_a", &acct), GH_OK);
    say(b, "balance org_a %lld\n", (long long)acct.balance_nusd);
    assert_int_equal(acct.balance_nusd, 10500 - 800 - 20000);
    int64_t unallocated = 0;
    assert_int_equal(gh_store_ledger_unallocated(db, "org_a", &unallocated), GH_OK);
    assert_int_equal(unallocated, -10300);
    assert_int_equal(gh_store_ledger_unallocated(db, "org_b", &unallocated), GH_OK);
    assert_int_equal(unallocated, -50);
}

static void usage_charge_answers_as_on_sqlite(void **state)
{
    (void)state;
    both(usage_charge_script);
}

static void ledger_script(backend_t *b)
{
    gh_db_t *db = b->db;
    /* Two succeeded purchases (pur_1, pur_2) with their lots, entries and invoices, and a
     * grant; then a consistent check, then tampering. */
    add_card(b, "card_3", "pm_3", 3000);
    for (int i = 1; i <= 3; i++) {
        gh_purchase_t p;
        char id[16], key[16];
        snprintf(id, sizeof(id), "pur_%d", i);
        snprintf(key, sizeof(key), "key_%d", i);
        make_purchase(&p, id, key, 4000 + i);
        if (i < 3) {
            snprintf(p.status, sizeof(p.status), "succeeded");
            p.resolved_at = 4100;
        }
        assert_int_equal(gh_store_purchase_insert(db, &p), GH_OK);
    }
    add_lot(b, "lot_1", "purchase", "pur_1", 10000, 9000);
    add_lot(b, "lot_2", "grant", "grant_1", 500, 7000);
    add_lot(b, "lot_3", "purchase", "pur_2", 10000, 8000);
    add_invoice(b, "inv_1", "pur_1", 2026, 10000);
    add_invoice(b, "inv_2", "pur_2", 2027, 10000);
    gh_credit_lot_t l;
    assert_int_equal(gh_store_lot_first_open(db, "org_a", 5000, &l), GH_OK);
    assert_string_equal(l.id, "lot_2");
    say_lot(b, &l);
    say(b, "open at 7000, 5 at most:\n");
    assert_int_equal(gh_store_lots_open(db, "org_a", 7000, 5, say_lot, b), GH_OK);
    say(b, "expired at 8000:\n");
    assert_int_equal(gh_store_lots_expired(db, 8000, 5, say_lot, b), GH_OK);
    say(b, "first open in org_b rc=%d\n", (int)gh_store_lot_first_open(db, "org_b", 0, &l));

    /* Usage draws 300 from lot_2 and 1000 beyond the lots (unallocated). */
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_int_equal(gh_store_lot_set_remaining(db, "lot_2", 200), GH_OK);
    gh_ledger_entry_t e = {.kind = "usage", .amount_nusd = -300, .created_at = 6000};
    snprintf(e.org_id, sizeof(e.org_id), "org_a");
    snprintf(e.lot_id, sizeof(e.lot_id), "lot_2");
    snprintf(e.reference, sizeof(e.reference), "usage:1");
    assert_int_equal(gh_store_ledger_append(db, &e), GH_OK);
    e.lot_id[0] = '\0';
    e.amount_nusd = -1000;
    assert_int_equal(gh_store_ledger_append(db, &e), GH_OK);
    assert_int_equal(gh_store_commit(db), GH_OK);
    say(b, "set_remaining of no lot rc=%d\n", (int)gh_store_lot_set_remaining(db, "lot_x", 1));
    int64_t unalloc = 1;
    assert_int_equal(gh_store_ledger_unallocated(db, "org_a", &unalloc), GH_OK);
    assert_int_equal(unalloc, -1000);
    say(b, "unallocated %lld\n", (long long)unalloc);
    say(b, "sums (consistent; usage has no events):\n");
    assert_int_equal(gh_store_ledger_sums(db, NULL, say_sums, b), GH_OK);

    add_invoice(b, "inv_3", "pur_3", 2027, 10000); /* an invoice for a pending purchase */
    b->pg ? raw(b, NULL, "UPDATE credit_lots SET remaining_nusd = 1 WHERE id = 'lot_1'")
          : raw(b, "UPDATE credit_lots SET remaining_nusd = 1 WHERE id = 'lot_1'", NULL);
    say(b, "sums of org_a (tampered):\n");
    assert_int_equal(gh_store_ledger_sums(db, "org_a", say_sums, b), GH_OK);
    say(b, "years:\n");
    assert_int_equal(gh_store_invoice_years(db, say_year, b), GH_OK);
    gh_invoice_rec_t v;
    assert_int_equal(gh_store_invoice_get(db, "org_a", "inv_2", &v), GH_OK);
    assert_int_equal(v.year, 2027);
    assert_int_equal(v.seq, 1);
    say_invoice(b, &v);
    say(b, "other org's invoice rc=%d\n", (int)gh_store_invoice_get(db, "org_b", "inv_2", &v));
    gh_purchase_t p;
    assert_int_equal(gh_store_purchase_get(db, "org_a", "pur_3", &p), GH_OK);
    assert_string_equal(p.invoice_id, "inv_3");
    say_purchase(b, &p);
    /* Newest first: 2027's invoices before 2026's, whatever their numbers within the year. */
    page_walk(b, "invoices", list_invoices, "inv_3", "inv_1");

    gh_err_t rc = gh_store_webhook_event_insert(db, "evt_1", "stripe", "charge.succeeded", 5200);
    assert_int_equal(rc, GH_OK);
    rc = gh_store_webhook_event_insert(db, "evt_1", "stripe", "charge.succeeded", 5201);
    assert_int_equal(rc, GH_ECONFLICT);
    bool seen = false, unseen = true;
    assert_int_equal(gh_store_webhook_event_exists(db, "evt_1", &seen), GH_OK);
    assert_int_equal(gh_store_webhook_event_exists(db, "evt_2", &unseen), GH_OK);
    assert_true(seen);
    assert_false(unseen);
    say(b, "webhook dup rc=%d seen=%d unseen=%d\n", (int)rc, seen, unseen);
}

static void ledger_and_invoices_answer_as_on_sqlite(void **state)
{
    (void)state;
    both(ledger_script);
}

/* ---- spend notifications and the HTML part of mail ---- */

static void say_notif(void *ctx, const gh_spend_notif_t *n)
{
    say(ctx, "  notif %s %s %s amt=%lld pct=%d at=%lld by=%s notified=%lld\n", n->id, n->org_id,
        n->kind, (long long)n->amount_nusd, n->percent, (long long)n->created_at, n->created_by,
        (long long)n->notified_at);
}

static void add_notif(backend_t *b, const char *id, const char *kind, int64_t amount,
                      int percent, int64_t at)
{
    gh_spend_notif_t n = {.amount_nusd = amount, .percent = percent, .created_at = at};
    snprintf(n.id, sizeof(n.id), "%s", id);
    snprintf(n.org_id, sizeof(n.org_id), "org_a");
    snprintf(n.kind, sizeof(n.kind), "%s", kind);
    snprintf(n.created_by, sizeof(n.created_by), "ann@example.com");
    assert_int_equal(gh_store_spend_notif_insert(b->db, &n), GH_OK);
}

/* Queues one mail on the store's own connection, as gh_store_outbox_add does, so that
 * outbox_html_attach finds it as "the mail this connection queued last". */
static void queue_mail(backend_t *b)
{
    if (b->pg) {
        static const char sql[] =
            "INSERT INTO mail_outbox (created_at, recipient, subject, body, next_attempt) "
            "VALUES (now(), 'ann@example.com', 'Spend', 'text', now())";
        assert_int_equal(gh_pgs_exec(b->db, sql, 0, NULL), GH_OK);
    } else {
        assert_int_equal(sqlite3_exec(sq(b->db)->conn,
                                      "INSERT INTO mail_outbox (created_at_ms, recipient, "
                                      "subject, body, next_attempt_ms) VALUES "
                                      "(1, 'ann@example.com', 'Spend', 'text', 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    }
}

static void notify_script(backend_t *b)
{
    gh_db_t *db = b->db;
    add_notif(b, "sn_1", "spend_amount", 50000, 0, 7000);
    add_notif(b, "sn_2", "spend_percent", 0, 80, 7000); /* same time: insertion order */
    add_notif(b, "sn_3", "balance_below", 1000, 0, 6999);
    gh_spend_notif_t n;
    memset(&n, 0, sizeof(n));
    snprintf(n.id, sizeof(n.id), "sn_bad");
    snprintf(n.org_id, sizeof(n.org_id), "org_a");
    snprintf(n.kind, sizeof(n.kind), "weekly");
    snprintf(n.created_by, sizeof(n.created_by), "x");
    gh_err_t rc = gh_store_spend_notif_insert(db, &n);
    assert_int_equal(rc, GH_ECONFLICT);
    say(b, "bad kind rc=%d\n", (int)rc);
    int64_t count = 0;
    assert_int_equal(gh_store_spend_notif_count(db, "org_a", &count), GH_OK);
    assert_int_equal(count, 3);
    say(b, "count %lld\n", (long long)count);
    const char *orgs[] = {"org_b", "org_a", "org_nonesuch", "org_a"};
    bool has[4] = {true, false, true, false};
    assert_int_equal(gh_store_spend_notif_any(db, orgs, 4, has), GH_OK);
    assert_true(!has[0] && has[1] && !has[2] && has[3]);
    say(b, "rules: org_b %d org_a %d org_nonesuch %d\n", has[0], has[1], has[2]);

    bool first = false;
    assert_int_equal(gh_store_spend_notif_mark(db, "sn_1", 202701, 7100, 60000, &first), GH_OK);
    assert_true(first);
    assert_int_equal(gh_store_spend_notif_mark(db, "sn_1", 202701, 7200, 61000, &first), GH_OK);
    assert_false(first);
    assert_int_equal(gh_store_spend_notif_balance_set(db, "sn_3", 7150), GH_OK);
    say(b, "list 202701:\n");
    assert_int_equal(gh_store_spend_notif_list(db, "org_a", 202701, say_notif, b), GH_OK);
    say(b, "list 202702:\n");
    assert_int_equal(gh_store_spend_notif_list(db, "org_a", 202702, say_notif, b), GH_OK);
    assert_int_equal(gh_store_spend_notif_balance_set(db, "sn_3", 0), GH_OK);
    rc = gh_store_spend_notif_get(db, "org_a", "sn_3", &n);
    assert_int_equal(rc, GH_OK);
    assert_int_equal(n.notified_at, 0);
    say_notif(b, &n);
    say(b, "other org's rule rc=%d\n", (int)gh_store_spend_notif_get(db, "org_b", "sn_1", &n));

    assert_int_equal(gh_store_spend_notif_delete(db, "org_a", "sn_1"), GH_OK);
    rc = gh_store_spend_notif_delete(db, "org_a", "sn_1");
    assert_int_equal(rc, GH_ENOTFOUND);
    say(b, "delete again rc=%d\n", (int)rc);
    say(b, "list after delete:\n");
    assert_int_equal(gh_store_spend_notif_list(db, "org_a", 202701, say_notif, b), GH_OK);

    int32_t month = 0;
    int64_t spend = 0;
    rc = gh_store_spend_state_get(db, "org_a", &month, &spend);
    assert_int_equal(rc, GH_ENOTFOUND);
    say(b, "state missing rc=%d\n", (int)rc);
    assert_int_equal(gh_store_spend_state_put(db, "org_a", 202701, 100), GH_OK);
    assert_int_equal(gh_store_spend_state_put(db, "org_a", 202702, 250), GH_OK);
    assert_int_equal(gh_store_spend_state_get(db, "org_a", &month, &spend), GH_OK);
    assert_int_equal(month, 202702);
    assert_int_equal(spend, 250);
    say(b, "state %d %lld\n", (int)month, (long long)spend);

    /* Mail ids differ between backends only if the sequences do; both start at 1. */
    queue_mail(b);
    assert_int_equal(gh_store_outbox_html_attach(db, "<p>Spend</p>"), GH_OK);
    char *html = NULL;
    assert_int_equal(gh_store_outbox_html_get(db, 1, &html), GH_OK);
    assert_non_null(html);
    assert_string_equal(html, "<p>Spend</p>");
    free(html);
    assert_int_equal(gh_store_outbox_html_delete(db, 1), GH_OK);
    html = (char *)"x";
    assert_int_equal(gh_store_outbox_html_get(db, 1, &html), GH_OK);
    assert_null(html);
    say(b, "html attached, read, deleted\n");
}

static void notifications_answer_as_on_sqlite(void **state)
{
    (void)state;
    both(notify_script);
}

/* ---- invoice numbers under concurrency ---- */

typedef struct {
    gh_store_t *store;
    int thread;
    gh_err_t rc;
} numberer_t;

static void *take_numbers(void *p)
{
    numberer_t *t = p;
    gh_db_t *db = gh_store_db(t->store);
    for (int i = 0; i < 25 && !t->rc; i++) {
        gh_invoice_rec_t v;
        memset(&v, 0, sizeof(v));
        if ((t->rc = gh_store_begin(db)))
            break;
        t->rc = gh_store_invoice_next_seq(db, 2027, &v.seq);
        if (!t->rc) {
            snprintf(v.id, sizeof(v.id), "inv_%d_%d", t->thread, i);
            snprintf(v.org_id, sizeof(v.org_id), "org_a");
            snprintf(v.purchase_id, sizeof(v.purchase_id), "pur_%d_%d", t->thread, i);
            snprintf(v.number, sizeof(v.number), "GH-2027-%06lld", (long long)v.seq);
            v.year = 2027;
            snprintf(v.currency, sizeof(v.currency), "USD");
            snprintf(v.description, sizeof(v.description), "API credits");
            v.subtotal_nusd = v.total_nusd = 10000;
            snprintf(v.tax_label, sizeof(v.tax_label), "No VAT");
            snprintf(v.payment, sizeof(v.payment), "Visa");
            t->rc = gh_store_invoice_insert(db, &v);
        }
        /* Every fifth transaction rolls back: its number must be given back with it. */
        if (!t->rc && i % 5 == 4)
            gh_store_rollback(db);
        else if (!t->rc)
            t->rc = gh_store_commit(db);
        else
            gh_store_rollback(db);
    }
    return NULL;
}

static void count_year(void *ctx, const gh_invoice_year_t *y)
{
    *(gh_invoice_year_t *)ctx = *y;
}

static void invoice_numbers_are_gap_free_under_four_threads(void **state)
{
    (void)state;
    backend_t *b = malloc(sizeof(*b));
    assert_non_null(b);
    open_backend(b, true);
    /* The invoices need purchases (a foreign key), one per number taken. */
    raw(b, NULL,
        "INSERT INTO payment_methods (id, org_id, provider, brand, last4, exp_month, exp_year, "
        "created_at) VALUES ('card_1', 'org_a', 'test', 'visa', '4242', 12, 2030, now());"
        "INSERT INTO purchases (id, org_id, kind, status, amount_nusd, tax_nusd, total_nusd, "
        "tax_label, idempotency_key, payment_method_id, provider, created_by_type, "
        "created_by_id, created_at, updated_at) SELECT 'pur_' || t || '_' || i, 'org_a', "
        "'manual', 'succeeded', 10000, 0, 10000, 'No VAT', 'k' || t || '_' || i, 'card_1', "
        "'test', 'user', 'acct_1', now(), now() FROM generate_series(0, 3) t, "
        "generate_series(0, 24) i");
    numberer_t t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (numberer_t){.store = b->store, .thread = i};
        assert_int_equal(pthread_create(&th[i], NULL, take_numbers, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].rc, GH_OK);
    }
    gh_invoice_year_t y = {0};
    assert_int_equal(gh_store_invoice_years(b->db, count_year, &y), GH_OK);
    fprintf(stderr, "invoice year %d: count=%lld min=%lld max=%lld counter=%lld\n", y.year,
            (long long)y.count, (long long)y.min_seq, (long long)y.max_seq,
            (long long)y.counter);
    assert_int_equal(y.year, 2027);
    assert_int_equal(y.count, 80); /* 4 threads x 25, one in five rolled back */
    assert_int_equal(y.min_seq, 1);
    assert_int_equal(y.max_seq, 80);
    assert_int_equal(y.counter, 80);
    close_backend(b);
    free(b);
}

int main(void)
{
    (void)pg_unit_store; /* each test here opens both backends itself */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accounts_answer_as_on_sqlite),
        cmocka_unit_test(cards_and_purchases_answer_as_on_sqlite),
        cmocka_unit_test(ledger_and_invoices_answer_as_on_sqlite),
        cmocka_unit_test(usage_charge_answers_as_on_sqlite),
        cmocka_unit_test(notifications_answer_as_on_sqlite),
        cmocka_unit_test(invoice_numbers_are_gap_free_under_four_threads),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
