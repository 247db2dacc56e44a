/* The PostgreSQL backend's limits functions (src/store/postgres/limits.c) against a real
 * PostgreSQL 15 (tests/unit/pg_unit.h): the
 * SQLite backend's behaviour, checked call by call. Limits replace every column and 0 means
 * none (NULL); a replaced workspace limit lists last (SQLite gives it a new rowid); the
 * ledger and usage reads admission makes; limit requests decided once, paged in insertion
 * order; staff; a data version that moves when another connection commits and only then;
 * organization search without wildcards. Each test works in a database of its own. */
#include "pg_unit.h"

#include <stdarg.h>


#include "store/store.h"


static void sql_ok(pg_unit_world_t *w, const char *sql)
{
    gh_err_t rc = gh_pg_exec(w->raw, sql);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, w->raw->message);
    assert_int_equal(rc, GH_OK);
}

/* Two organizations, an admin each (org_a has two, added in turn), three workspaces of
 * org_a (one archived) and one of org_b. */
static void seed(pg_unit_world_t *w)
{
    sql_ok(w, "INSERT INTO accounts (id, email, created_at) VALUES "
              "('user_1', 'one@e.com', to_timestamp(100)), ('user_2', 'two@e.com', "
              "to_timestamp(100)), ('user_3', 'three@e.com', to_timestamp(100));"
              "INSERT INTO organizations (id, name, created_at) VALUES "
              "('org_a', 'Acme 100% Tools_', to_timestamp(1000)), "
              "('org_b', 'Beta', to_timestamp(2000));"
              "INSERT INTO memberships (org_id, account_id, role, created_at) VALUES "
              "('org_a', 'user_2', 'admin', to_timestamp(10)), "
              "('org_a', 'user_1', 'admin', to_timestamp(20)), "
              "('org_a', 'user_3', 'user', to_timestamp(5)), "
              "('org_b', 'user_3', 'admin', to_timestamp(5));"
              "INSERT INTO workspaces (id, org_id, name, display_color, is_default, created_at, "
              "archived_at) VALUES ('ws_a0', 'org_a', 'Default', '#111111', true, now(), NULL), "
              "('ws_a1', 'org_a', 'One', '#111111', false, now(), NULL), "
              "('ws_a2', 'org_a', 'Two', '#111111', false, now(), now()), "
              "('ws_b0', 'org_b', 'Default', '#111111', true, now(), NULL);");
}

static void org_limits_round_trip(void **state)
{
    pg_unit_world_t *w = *state;
    seed(w);
    gh_org_limits_rec_t r;
    assert_int_equal(gh_store_org_limits_get(w->db, "org_a", &r), GH_ENOTFOUND);
    gh_org_limits_rec_t put = {.org_id = "org_a", .monthly_spend_limit_nusd = 5000000000,
                               .tier_override = "tier_3", .custom_rpm = 77,
                               .updated_at = 1772323200};
    assert_int_equal(gh_store_org_limits_put(w->db, &put), GH_OK);
    assert_int_equal(gh_store_org_limits_get(w->db, "org_a", &r), GH_OK);
    assert_string_equal(r.org_id, "org_a");
    assert_int_equal(r.monthly_spend_limit_nusd, 5000000000);
    assert_string_equal(r.tier_override, "tier_3");
    assert_int_equal(r.custom_rpm, 77);
    assert_int_equal(r.custom_itpm, 0);
    assert_int_equal(r.updated_at, 1772323200);
    /* Replaced as a whole: what is 0 or "" now is none. */
    gh_org_limits_rec_t again = {.org_id = "org_a", .custom_otpm = 9, .updated_at = 1772323300};
    assert_int_equal(gh_store_org_limits_put(w->db, &again), GH_OK);
    assert_int_equal(gh_store_org_limits_get(w->db, "org_a", &r), GH_OK);
    assert_int_equal(r.monthly_spend_limit_nusd, 0);
    assert_string_equal(r.tier_override, "");
    assert_int_equal(r.custom_rpm, 0);
    assert_int_equal(r.custom_otpm, 9);
    assert_int_equal(r.updated_at, 1772323300);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM org_limits WHERE tier_override IS NULL "
                               "AND monthly_spend_limit_nusd IS NULL"),
                     1);
    /* An organization that does not exist: refused by the foreign key. */
    gh_org_limits_rec_t ghost = {.org_id = "org_zz", .custom_rpm = 1, .updated_at = 1};
    assert_int_equal(gh_store_org_limits_put(w->db, &ghost), GH_ECONFLICT);
}

typedef struct {
    char ids[8][GH_ID_MAX * 2 + 2];
    int64_t rpm[8];
    int n;
} ws_seen_t;

static void on_ws_limits(void *ctx, const gh_ws_limits_rec_t *r)
{
    ws_seen_t *s = ctx;
    assert_true(s->n < 8);
    snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", r->workspace_id);
    s->rpm[s->n++] = r->rpm;
}

static void on_ws_id(void *ctx, const char *org_id, const char *ws_id)
{
    ws_seen_t *s = ctx;
    assert_true(s->n < 8);
    snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s/%s", org_id, ws_id);
}

static void workspace_limits_list_and_ids(void **state)
{
    pg_unit_world_t *w = *state;
    seed(w);
    gh_ws_limits_rec_t a0 = {.workspace_id = "ws_a0", .org_id = "org_a", .rpm = 10,
                             .updated_at = 50};
    gh_ws_limits_rec_t a1 = {.workspace_id = "ws_a1", .org_id = "org_a", .itpm = 20,
                             .updated_at = 60};
    gh_ws_limits_rec_t b0 = {.workspace_id = "ws_b0", .org_id = "org_b", .otpm = 30,
                             .updated_at = 70};
    assert_int_equal(gh_store_ws_limits_put(w->db, &a0), GH_OK);
    assert_int_equal(gh_store_ws_limits_put(w->db, &a1), GH_OK);
    assert_int_equal(gh_store_ws_limits_put(w->db, &b0), GH_OK);
    /* Replacing a0 moves it last, as SQLite's INSERT OR REPLACE does. */
    a0.rpm = 11;
    assert_int_equal(gh_store_ws_limits_put(w->db, &a0), GH_OK);
    ws_seen_t all = {.n = 0};
    assert_int_equal(gh_store_ws_limits_list(w->db, NULL, on_ws_limits, &all), GH_OK);
    assert_int_equal(all.n, 3);
    assert_string_equal(all.ids[0], "ws_a1");
    assert_string_equal(all.ids[1], "ws_b0");
    assert_string_equal(all.ids[2], "ws_a0");
    assert_int_equal(all.rpm[2], 11);
    ws_seen_t of_a = {.n = 0};
    assert_int_equal(gh_store_ws_limits_list(w->db, "org_a", on_ws_limits, &of_a), GH_OK);
    assert_int_equal(of_a.n, 2);
    gh_ws_limits_rec_t got;
    assert_int_equal(gh_store_ws_limits_get(w->db, "ws_a1", &got), GH_OK);
    assert_string_equal(got.org_id, "org_a");
    assert_int_equal(got.itpm, 20);
    assert_int_equal(got.rpm, 0);
    assert_int_equal(got.updated_at, 60);
    /* No limit left: the row goes. */
    gh_ws_limits_rec_t none = {.workspace_id = "ws_a1", .org_id = "org_a", .updated_at = 80};
    assert_int_equal(gh_store_ws_limits_put(w->db, &none), GH_OK);
    assert_int_equal(gh_store_ws_limits_get(w->db, "ws_a1", &got), GH_ENOTFOUND);

    ws_seen_t ids = {.n = 0};
    assert_int_equal(gh_store_workspace_ids(w->db, NULL, on_ws_id, &ids), GH_OK);
    assert_int_equal(ids.n, 3); /* not the archived one */
    assert_string_equal(ids.ids[0], "org_a/ws_a0");
    assert_string_equal(ids.ids[1], "org_a/ws_a1");
    assert_string_equal(ids.ids[2], "org_b/ws_b0");
    ws_seen_t ids_b = {.n = 0};
    assert_int_equal(gh_store_workspace_ids(w->db, "org_b", on_ws_id, &ids_b), GH_OK);
    assert_int_equal(ids_b.n, 1);
}

typedef struct {
    char text[8][64];
    int64_t amount[8];
    int n;
} amounts_t;

static void on_amount(void *ctx, const char *org_id, int64_t amount)
{
    amounts_t *a = ctx;
    assert_true(a->n < 8);
    snprintf(a->text[a->n], sizeof(a->text[0]), "%s", org_id);
    a->amount[a->n++] = amount;
}

static void on_delta(void *ctx, const char *org_id, const char *kind, int64_t amount)
{
    amounts_t *a = ctx;
    assert_true(a->n < 8);
    snprintf(a->text[a->n], sizeof(a->text[0]), "%s:%s", org_id, kind);
    a->amount[a->n++] = amount;
}

static void on_usage_sum(void *ctx, const char *org_id, const char *ws_id, int64_t cost)
{
    amounts_t *a = ctx;
    assert_true(a->n < 8);
    snprintf(a->text[a->n], sizeof(a->text[0]), "%s/%s", org_id, ws_id);
    a->amount[a->n++] = cost;
}

static void on_org_id(void *ctx, const char *id)
{
    amounts_t *a = ctx;
    assert_true(a->n < 8);
    snprintf(a->text[a->n++], sizeof(a->text[0]), "%s", id);
}

static void ledger_and_usage_reads(void **state)
{
    pg_unit_world_t *w = *state;
    seed(w);
    int64_t id = -1;
    assert_int_equal(gh_store_ledger_max_id(w->db, &id), GH_OK);
    assert_int_equal(id, 0);
    sql_ok(w, "INSERT INTO ledger_entries (org_id, kind, amount_nusd, reference, created_at) "
              "VALUES ('org_a', 'grant', 100000, 'g1', to_timestamp(1000)), "
              "('org_a', 'usage', -300, 'u1', to_timestamp(2000)), "
              "('org_b', 'grant', 5000, 'g2', to_timestamp(2500)), "
              "('org_a', 'usage', -200, 'u2', to_timestamp(3000)), "
              "('org_a', 'grant', 7, 'g3', to_timestamp(3500))");
    assert_int_equal(gh_store_ledger_max_id(w->db, &id), GH_OK);
    assert_int_equal(id, 5);
    int64_t sum = 0;
    assert_int_equal(gh_store_ledger_balance_upto(w->db, "org_a", 4, &sum), GH_OK);
    assert_int_equal(sum, 100000 - 500);
    assert_int_equal(gh_store_ledger_balance_upto(w->db, "org_zz", 4, &sum), GH_OK);
    assert_int_equal(sum, 0);
    amounts_t bal = {.n = 0};
    assert_int_equal(gh_store_ledger_balances_upto(w->db, 3, on_amount, &bal), GH_OK);
    assert_int_equal(bal.n, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(bal.amount[i], !strcmp(bal.text[i], "org_a") ? 99700 : 5000);
    amounts_t deltas = {.n = 0};
    assert_int_equal(gh_store_ledger_deltas(w->db, 1, 5, on_delta, &deltas), GH_OK);
    assert_int_equal(deltas.n, 2); /* usage is left out */
    for (int i = 0; i < 2; i++)
        assert_int_equal(deltas.amount[i], !strcmp(deltas.text[i], "org_a:grant") ? 7 : 5000);
    assert_int_equal(gh_store_ledger_usage_since(w->db, "org_a", 2000, &sum), GH_OK);
    assert_int_equal(sum, 500);
    assert_int_equal(gh_store_ledger_usage_since(w->db, "org_a", 2001, &sum), GH_OK);
    assert_int_equal(sum, 200);

    amounts_t none = {.n = 0};
    assert_int_equal(gh_store_purchase_totals(w->db, on_amount, &none), GH_OK);
    assert_int_equal(none.n, 0);

    /* Usage by organization and workspace since a millisecond, in byte order. */
    sql_ok(w, "INSERT INTO usage_events (journal_seq, request_id, created_at, org_id, "
              "workspace_id, key_id, model, route, input_tokens, output_tokens, "
              "cache_creation_tokens, cache_read_tokens, cost_nusd, input_cost_nusd, status, "
              "stream, client_disconnected, latency_us, upstream_us) VALUES "
              "(1, 'r1', to_timestamp(1000.499), 'org_a', 'ws_a1', 'k', 'm', 'messages', 1, 0, "
              "0, 0, 11, 11, 200, false, false, 0, 0), "
              "(2, 'r2', to_timestamp(1000.500), 'org_a', 'ws_a1', 'k', 'm', 'messages', 1, 0, "
              "0, 0, 13, 13, 200, false, false, 0, 0), "
              "(3, 'r3', to_timestamp(1001), 'org_a', 'Ws_Z', 'k', 'm', 'messages', 1, 0, "
              "0, 0, 17, 17, 200, false, false, 0, 0), "
              "(4, 'r4', to_timestamp(1002), 'org_b', 'ws_b0', 'k', 'm', 'messages', 1, 0, "
              "0, 0, 19, 19, 200, false, false, 0, 0)");
    amounts_t u = {.n = 0};
    assert_int_equal(gh_store_usage_cost_since(w->db, 1000500, NULL, NULL, on_usage_sum, &u),
                     GH_OK);
    assert_int_equal(u.n, 3);
    assert_string_equal(u.text[0], "org_a/Ws_Z"); /* "W" sorts before "w" in byte order */
    assert_int_equal(u.amount[0], 17);
    assert_string_equal(u.text[1], "org_a/ws_a1");
    assert_int_equal(u.amount[1], 13);
    assert_string_equal(u.text[2], "org_b/ws_b0");
    amounts_t u1 = {.n = 0};
    assert_int_equal(gh_store_usage_cost_since(w->db, 0, "org_a", "ws_a1", on_usage_sum, &u1),
                     GH_OK);
    assert_int_equal(u1.n, 1);
    assert_int_equal(u1.amount[0], 24);

    amounts_t orgs = {.n = 0};
    assert_int_equal(gh_store_org_ids(w->db, on_org_id, &orgs), GH_OK);
    assert_int_equal(orgs.n, 2);
    assert_string_equal(orgs.text[0], "org_a");
    amounts_t admins = {.n = 0};
    assert_int_equal(gh_store_org_admin_emails(w->db, "org_a", on_org_id, &admins), GH_OK);
    assert_int_equal(admins.n, 2);
    assert_string_equal(admins.text[0], "two@e.com"); /* the oldest admin first */
    assert_string_equal(admins.text[1], "one@e.com");
}

typedef struct {
    char ids[8][GH_ID_MAX * 2 + 2];
    int n;
} req_seen_t;

static void on_request(void *ctx, const gh_limit_request_t *r)
{
    req_seen_t *s = ctx;
    assert_true(s->n < 8);
    snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s", r->id);
}

static void limit_requests_and_staff(void **state)
{
    pg_unit_world_t *w = *state;
    seed(w);
    gh_limit_request_t r = {.id = "lreq_1", .org_id = "org_a", .requested_by = "user_1",
                            .requested_by_label = "One", .kind = "custom", .rpm = 500,
                            .reason = "launch", .created_at = 1772323200};
    assert_int_equal(gh_store_limit_request_insert(w->db, &r), GH_OK);
    /* One pending request per organization. */
    gh_limit_request_t dup = r;
    snprintf(dup.id, sizeof(dup.id), "lreq_2");
    assert_int_equal(gh_store_limit_request_insert(w->db, &dup), GH_ECONFLICT);
    gh_limit_request_t got;
    assert_int_equal(gh_store_limit_request_get(w->db, "org_a", "lreq_1", &got), GH_OK);
    assert_string_equal(got.org_name, "Acme 100% Tools_");
    assert_string_equal(got.status, "pending");
    assert_string_equal(got.requested_tier, "");
    assert_int_equal(got.rpm, 500);
    assert_int_equal(got.monthly_cap_nusd, 0);
    assert_int_equal(got.created_at, 1772323200);
    assert_int_equal(got.decided_at, 0);
    assert_int_equal(gh_store_limit_request_get(w->db, "org_b", "lreq_1", &got), GH_ENOTFOUND);
    assert_int_equal(gh_store_limit_request_get(w->db, NULL, "lreq_1", &got), GH_OK);

    gh_limit_request_t decide = got;
    snprintf(decide.status, sizeof(decide.status), "approved");
    snprintf(decide.decided_by, sizeof(decide.decided_by), "user_3");
    snprintf(decide.decided_by_label, sizeof(decide.decided_by_label), "Three");
    decide.decided_at = 1772323300;
    assert_int_equal(gh_store_limit_request_decide(w->db, &decide), GH_OK);
    assert_int_equal(gh_store_limit_request_decide(w->db, &decide), GH_ECONFLICT);
    assert_int_equal(gh_store_limit_request_get(w->db, NULL, "lreq_1", &got), GH_OK);
    assert_string_equal(got.status, "approved");
    assert_int_equal(got.decided_at, 1772323300);
    assert_string_equal(got.staff_note, "");

    assert_int_equal(gh_store_limit_request_insert(w->db, &dup), GH_OK);
    gh_limit_request_t rb = r;
    snprintf(rb.id, sizeof(rb.id), "lreq_3");
    snprintf(rb.org_id, sizeof(rb.org_id), "org_b");
    assert_int_equal(gh_store_limit_request_insert(w->db, &rb), GH_OK);
    req_seen_t all = {.n = 0};
    bool more = true;
    gh_page_t page = {.limit = 2};
    assert_int_equal(gh_store_limit_requests_list(w->db, NULL, NULL, &page, on_request, &all,
                                                  &more),
                     GH_OK);
    assert_int_equal(all.n, 2);
    assert_true(more);
    assert_string_equal(all.ids[0], "lreq_1");
    assert_string_equal(all.ids[1], "lreq_2");
    page.after_id = "lreq_2";
    req_seen_t next = {.n = 0};
    assert_int_equal(gh_store_limit_requests_list(w->db, NULL, NULL, &page, on_request, &next,
                                                  &more),
                     GH_OK);
    assert_int_equal(next.n, 1);
    assert_false(more);
    assert_string_equal(next.ids[0], "lreq_3");
    gh_page_t first = {.limit = 10};
    req_seen_t pending_a = {.n = 0};
    assert_int_equal(gh_store_limit_requests_list(w->db, "org_a", "pending", &first, on_request,
                                                  &pending_a, &more),
                     GH_OK);
    assert_int_equal(pending_a.n, 1);
    assert_string_equal(pending_a.ids[0], "lreq_2");
    gh_page_t bad = {.limit = 10, .after_id = "lreq_nope"};
    assert_int_equal(gh_store_limit_requests_list(w->db, NULL, NULL, &bad, on_request,
                                                  &pending_a, &more),
                     GH_EINVAL);

    bool is = true;
    assert_int_equal(gh_store_staff_is(w->db, "user_1", &is), GH_OK);
    assert_false(is);
    assert_int_equal(gh_store_staff_add(w->db, "user_1", "cli", 1772323200), GH_OK);
    assert_int_equal(gh_store_staff_add(w->db, "user_1", "cli", 1772323201), GH_OK);
    assert_int_equal(gh_store_staff_is(w->db, "user_1", &is), GH_OK);
    assert_true(is);
    assert_int_equal(gh_store_staff_remove(w->db, "user_1"), GH_OK);
    assert_int_equal(gh_store_staff_remove(w->db, "user_1"), GH_ENOTFOUND);
    assert_int_equal(gh_store_staff_is(w->db, "user_1", &is), GH_OK);
    assert_false(is);
}

typedef struct {
    char ids[8][GH_ID_MAX * 2 + 2];
    int n;
} brief_t;

static void on_brief(void *ctx, const char *id, const char *name, int64_t created_at)
{
    brief_t *b = ctx;
    (void)name;
    assert_true(created_at == 1000 || created_at == 2000);
    assert_true(b->n < 8);
    snprintf(b->ids[b->n++], sizeof(b->ids[0]), "%s", id);
}

static void data_version_and_search(void **state)
{
    pg_unit_world_t *w = *state;
    seed(w);
    int64_t v1 = 0, v2 = 0, v3 = 0;
    assert_int_equal(gh_store_data_version(w->db, &v1), GH_OK);
    assert_int_equal(gh_store_data_version(w->db, &v2), GH_OK);
    assert_true(v1 == v2); /* nothing happened */
    sql_ok(w, "INSERT INTO staff (account_id, added_at, added_by) VALUES ('user_2', now(), 'x')");
    assert_int_equal(gh_store_data_version(w->db, &v3), GH_OK);
    assert_true(v3 != v2); /* another connection committed */

    brief_t all = {.n = 0};
    assert_int_equal(gh_store_orgs_search(w->db, NULL, 10, on_brief, &all), GH_OK);
    assert_int_equal(all.n, 2);
    assert_string_equal(all.ids[0], "org_b"); /* newest first */
    brief_t limited = {.n = 0};
    assert_int_equal(gh_store_orgs_search(w->db, "", 1, on_brief, &limited), GH_OK);
    assert_int_equal(limited.n, 1);
    brief_t pct = {.n = 0};
    assert_int_equal(gh_store_orgs_search(w->db, "100%", 10, on_brief, &pct), GH_OK);
    assert_int_equal(pct.n, 1);
    brief_t wild = {.n = 0}; /* "%" and "_" are not wildcards */
    assert_int_equal(gh_store_orgs_search(w->db, "a%s", 10, on_brief, &wild), GH_OK);
    assert_int_equal(wild.n, 0);
    brief_t under = {.n = 0};
    assert_int_equal(gh_store_orgs_search(w->db, "b_ta", 10, on_brief, &under), GH_OK);
    assert_int_equal(under.n, 0);
    brief_t upper = {.n = 0};
    assert_int_equal(gh_store_orgs_search(w->db, "BETA", 10, on_brief, &upper), GH_OK);
    assert_int_equal(upper.n, 1);
    brief_t by_id = {.n = 0};
    assert_int_equal(gh_store_orgs_search(w->db, "org_a", 10, on_brief, &by_id), GH_OK);
    assert_int_equal(by_id.n, 1);
    assert_string_equal(by_id.ids[0], "org_a");
}

/* ---- the same calls on both backends give the same answers ---- */

typedef struct {
    char buf[16384];
    size_t len;
} transcript_t;

static void say(transcript_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(transcript_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(t->buf) - t->len);
    t->len += (size_t)n;
}

static void t_ws_limits(void *ctx, const gh_ws_limits_rec_t *r)
{
    say(ctx, " %s/%s:%lld,%lld,%lld,%lld@%lld", r->org_id, r->workspace_id,
        (long long)r->monthly_spend_limit_nusd, (long long)r->rpm, (long long)r->itpm,
        (long long)r->otpm, (long long)r->updated_at);
}

static void t_ws_id(void *ctx, const char *org_id, const char *ws_id)
{
    say(ctx, " %s/%s", org_id, ws_id);
}

static void t_text(void *ctx, const char *v)
{
    say(ctx, " %s", v);
}

static void t_amount(void *ctx, const char *org_id, int64_t v)
{
    say(ctx, " %s=%lld", org_id, (long long)v);
}

static void t_request(void *ctx, const gh_limit_request_t *r)
{
    say(ctx, " [%s %s %s %s %s %s|%s|%lld,%lld,%lld,%lld|%s|%s|%s|%s|%s|%s|%lld|%lld]", r->id,
        r->org_id, r->org_name, r->requested_by, r->requested_by_label, r->kind,
        r->requested_tier, (long long)r->monthly_cap_nusd, (long long)r->rpm,
        (long long)r->itpm, (long long)r->otpm, r->reason, r->status, r->staff_note,
        r->decided_by, r->decided_by_label, r->granted_tier, (long long)r->created_at,
        (long long)r->decided_at);
}

static void t_brief(void *ctx, const char *id, const char *name, int64_t created_at)
{
    say(ctx, " %s:%s@%lld", id, name, (long long)created_at);
}

/* A script of limits calls on one backend, written down call by call. */
static void limits_script(gh_db_t *db, transcript_t *t)
{
    gh_account_t a1 = {.id = "user_1", .email = "one@e.com", .created_at = 100};
    gh_account_t a2 = {.id = "user_2", .email = "two@e.com", .created_at = 100};
    assert_int_equal(gh_store_account_insert(db, &a1), GH_OK);
    assert_int_equal(gh_store_account_insert(db, &a2), GH_OK);
    assert_int_equal(gh_store_org_create(db, "org_a", "Acme 100% Tools_", "user_1", "ws_a0",
                                         "#6C5BB9", 1000),
                     GH_OK);
    assert_int_equal(
        gh_store_org_create(db, "org_b", "Beta", "user_2", "ws_b0", "#6C5BB9", 2000), GH_OK);

    gh_org_limits_rec_t ol;
    say(t, "org_limits_get:%d", gh_store_org_limits_get(db, "org_a", &ol));
    gh_org_limits_rec_t put = {.org_id = "org_a", .monthly_spend_limit_nusd = 5000000000,
                               .tier_override = "tier_3", .custom_rpm = 77,
                               .updated_at = 1772323200};
    say(t, "\nput:%d", gh_store_org_limits_put(db, &put));
    gh_org_limits_rec_t again = {.org_id = "org_a", .custom_otpm = 9, .updated_at = 1772323300};
    say(t, " put:%d", gh_store_org_limits_put(db, &again));
    memset(&ol, 0, sizeof(ol));
    gh_err_t rc = gh_store_org_limits_get(db, "org_a", &ol);
    say(t, " get:%d %s %lld [%s] %lld %lld %lld %lld %lld", rc, ol.org_id, (long long)ol.monthly_spend_limit_nusd, ol.tier_override,
        (long long)ol.custom_monthly_cap_nusd, (long long)ol.custom_rpm,
        (long long)ol.custom_itpm, (long long)ol.custom_otpm, (long long)ol.updated_at);

    gh_ws_limits_rec_t w0 = {.workspace_id = "ws_a0", .org_id = "org_a", .rpm = 10,
                             .updated_at = 50};
    gh_ws_limits_rec_t wb = {.workspace_id = "ws_b0", .org_id = "org_b", .otpm = 30,
                             .monthly_spend_limit_nusd = 4, .updated_at = 70};
    say(t, "\nws_put:%d", gh_store_ws_limits_put(db, &w0));
    say(t, " ws_put:%d", gh_store_ws_limits_put(db, &wb));
    w0.itpm = 5;
    say(t, " ws_put:%d", gh_store_ws_limits_put(db, &w0));
    say(t, "\nws_list:");
    say(t, "%d", gh_store_ws_limits_list(db, NULL, t_ws_limits, t));
    say(t, "\nws_list_a:");
    say(t, "%d", gh_store_ws_limits_list(db, "org_a", t_ws_limits, t));
    gh_ws_limits_rec_t none = {.workspace_id = "ws_b0", .org_id = "org_b", .updated_at = 80};
    say(t, "\nws_put_none:%d", gh_store_ws_limits_put(db, &none));
    say(t, " ws_get:%d", gh_store_ws_limits_get(db, "ws_b0", &w0));
    say(t, "\nworkspace_ids:");
    say(t, "%d", gh_store_workspace_ids(db, NULL, t_ws_id, t));
    say(t, "\norg_ids:");
    say(t, "%d", gh_store_org_ids(db, t_text, t));
    say(t, "\nadmins:");
    say(t, "%d", gh_store_org_admin_emails(db, "org_a", t_text, t));
    int64_t v = -1;
    say(t, "\nledger_max:%d", gh_store_ledger_max_id(db, &v));
    say(t, "=%lld", (long long)v);
    say(t, " balance:%d", gh_store_ledger_balance_upto(db, "org_a", 10, &v));
    say(t, "=%lld", (long long)v);
    say(t, " usage_since:%d", gh_store_ledger_usage_since(db, "org_a", 0, &v));
    say(t, "=%lld totals:", (long long)v);
    say(t, "%d", gh_store_purchase_totals(db, t_amount, t));

    gh_limit_request_t r = {.id = "lreq_1", .org_id = "org_a", .requested_by = "user_1",
                            .requested_by_label = "One", .kind = "custom", .rpm = 500,
                            .reason = "launch", .created_at = 1772323200};
    say(t, "\nreq_insert:%d", gh_store_limit_request_insert(db, &r));
    gh_limit_request_t dup = r;
    snprintf(dup.id, sizeof(dup.id), "lreq_2");
    say(t, " dup:%d", gh_store_limit_request_insert(db, &dup));
    gh_limit_request_t got;
    say(t, " get_other_org:%d", gh_store_limit_request_get(db, "org_b", "lreq_1", &got));
    say(t, " get:%d", gh_store_limit_request_get(db, NULL, "lreq_1", &got));
    t_request(t, &got);
    snprintf(got.status, sizeof(got.status), "approved");
    snprintf(got.decided_by, sizeof(got.decided_by), "user_2");
    snprintf(got.decided_by_label, sizeof(got.decided_by_label), "Two");
    snprintf(got.granted_tier, sizeof(got.granted_tier), "tier_4");
    got.decided_at = 1772323300;
    say(t, "\ndecide:%d", gh_store_limit_request_decide(db, &got));
    say(t, " decide_again:%d", gh_store_limit_request_decide(db, &got));
    say(t, " insert2:%d", gh_store_limit_request_insert(db, &dup));
    gh_limit_request_t rb = r;
    snprintf(rb.id, sizeof(rb.id), "lreq_3");
    snprintf(rb.org_id, sizeof(rb.org_id), "org_b");
    snprintf(rb.kind, sizeof(rb.kind), "tier");
    snprintf(rb.requested_tier, sizeof(rb.requested_tier), "tier_2");
    say(t, " insert3:%d", gh_store_limit_request_insert(db, &rb));
    const gh_page_t pages[] = {{.limit = 2},
                               {.limit = 2, .after_id = "lreq_2"},
                               {.limit = 1, .before_id = "lreq_3"},
                               {.limit = 5, .after_id = "lreq_nope"}};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        bool more = false;
        say(t, "\npage%zu:", i);
        say(t, "%d", gh_store_limit_requests_list(db, NULL, NULL, &pages[i], t_request, t,
                                                  &more));
        say(t, " more=%d", more);
    }
    bool more = false;
    say(t, "\npending_a:");
    say(t, "%d", gh_store_limit_requests_list(db, "org_a", "pending", &pages[0], t_request, t,
                                              &more));

    bool is = true;
    say(t, "\nstaff_is:%d", gh_store_staff_is(db, "user_1", &is));
    say(t, "=%d add:%d", is, gh_store_staff_add(db, "user_1", "cli", 5));
    say(t, " add:%d", gh_store_staff_add(db, "user_1", "cli", 6));
    say(t, " is:%d", gh_store_staff_is(db, "user_1", &is));
    say(t, "=%d rm:%d", is, gh_store_staff_remove(db, "user_1"));
    say(t, " rm:%d", gh_store_staff_remove(db, "user_1"));

    const char *queries[] = {NULL, "", "100%", "a%s", "b_ta", "BETA", "org_a", "cme"};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        say(t, "\nsearch[%s]:", queries[i] ? queries[i] : "NULL");
        say(t, "%d", gh_store_orgs_search(db, queries[i], 10, t_brief, t));
    }
    say(t, "\nsearch_limit:");
    say(t, "%d", gh_store_orgs_search(db, NULL, 1, t_brief, t));
}

static void same_answers_as_sqlite(void **state)
{
    (void)state;
    static transcript_t on_sqlite, on_pg;
    char path[64];
    gh_store_t *sq = pg_unit_sqlite_store(path);
    limits_script(gh_store_db(sq), &on_sqlite);
    pg_unit_sqlite_close(sq, path);
    gh_store_t *pg = pg_unit_store();
    limits_script(gh_store_db(pg), &on_pg);
    gh_store_close(pg);
    if (strcmp(on_sqlite.buf, on_pg.buf))
        fail_msg("SQLite:\n%s\n\nPostgreSQL:\n%s", on_sqlite.buf, on_pg.buf);
    assert_true(on_pg.len > 1000);
    if (getenv("SHOW_TRANSCRIPT"))
        fprintf(stderr, "%s\n", on_pg.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(org_limits_round_trip, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(workspace_limits_list_and_ids, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(ledger_and_usage_reads, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(limit_requests_and_staff, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(data_version_and_search, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test(same_answers_as_sqlite),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
