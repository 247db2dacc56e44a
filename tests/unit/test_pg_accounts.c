/* The PostgreSQL store's core and its first port files (pgstore.c, accounts.c, orgs.c,
 * identity.c) against a real PostgreSQL 15 (tests/unit/pg_unit.h). Each behaviour test runs
 * the same assertions on a SQLite store and on a PostgreSQL store: the port must give the
 * same results, error codes and ordering. Then what only PostgreSQL has: a failed write
 * inside a transaction leaves it usable, savepoints, the write lock, and reconnection after
 * the server restarts. */
#include "pg_unit.h"

#include <pthread.h>
#include <time.h>

#include "store/identity.h"
#include "store/postgres/pg_int.h"
#include "store/sqlite/sqlite_int.h"

static int atoi_safe(const char *v)
{
    return (int)strtol(v, NULL, 10);
}

typedef void (*body_fn)(gh_db_t *db, const char *backend);

/* Runs `body` on a fresh SQLite store, then on a fresh PostgreSQL store. */
static void both(body_fn body)
{
    char path[64];
    gh_store_t *sq = pg_unit_sqlite_store(path);
    body(gh_store_db(sq), "sqlite");
    pg_unit_sqlite_close(sq, path);
    gh_store_t *pg = pg_unit_store();
    body(gh_store_db(pg), "postgresql");
    gh_store_close(pg);
}

static void make_account(gh_db_t *db, const char *id, const char *email, int64_t at)
{
    gh_account_t a = {0};
    snprintf(a.id, sizeof(a.id), "%s", id);
    snprintf(a.email, sizeof(a.email), "%s", email);
    a.created_at = at;
    assert_int_equal(gh_store_account_insert(db, &a), GH_OK);
}

/* ---- accounts.c ---- */

static void links_body(gh_db_t *db, const char *backend)
{
    char email[GH_EMAIL_MAX];
    assert_int_equal(gh_store_link_insert(db, "h1", "a@x.test", "127.0.0.1", 1000, 1900), GH_OK);
    assert_int_equal(gh_store_link_insert(db, "h1", "b@x.test", "127.0.0.1", 1000, 1900),
                     GH_ECONFLICT);
    assert_int_equal(gh_store_link_check(db, "h1", 1899), GH_OK);
    assert_int_equal(gh_store_link_check(db, "h1", 1900), GH_EEXPIRED);
    assert_int_equal(gh_store_link_check(db, "nope", 1000), GH_ENOTFOUND);
    assert_int_equal(gh_store_link_consume(db, "h1", 1500, email), GH_OK);
    assert_string_equal(email, "a@x.test");
    assert_int_equal(gh_store_link_consume(db, "h1", 1501, email), GH_ECONFLICT);
    assert_int_equal(gh_store_link_check(db, "h1", 1501), GH_ECONFLICT);
    assert_false(gh_store_in_transaction(db));
    printf("%s: links ok\n", backend);
}

static void test_links(void **state)
{
    (void)state;
    both(links_body);
}

static void accounts_body(gh_db_t *db, const char *backend)
{
    make_account(db, "acct_1", "one@x.test", 1700000000);
    gh_account_t a;
    assert_int_equal(gh_store_account_get(db, "acct_1", &a), GH_OK);
    assert_string_equal(a.email, "one@x.test");
    assert_string_equal(a.full_name, "");
    assert_int_equal(a.age_confirmed_at, 0);
    assert_int_equal(a.terms_accepted_at, 0);
    assert_int_equal(a.created_at, 1700000000);
    gh_account_t dup = {.id = "acct_2", .email = "one@x.test", .created_at = 1};
    assert_int_equal(gh_store_account_insert(db, &dup), GH_ECONFLICT);
    assert_int_equal(gh_store_account_by_email(db, "two@x.test", &a), GH_ENOTFOUND);
    assert_int_equal(gh_store_account_onboard(db, "acct_1", "Ada Lovelace", "2024-01", 1700000500),
                     GH_OK);
    assert_int_equal(gh_store_account_onboard(db, "acct_9", "Nobody", "2024-01", 1), GH_ENOTFOUND);
    assert_int_equal(gh_store_account_by_email(db, "one@x.test", &a), GH_OK);
    assert_string_equal(a.id, "acct_1");
    assert_string_equal(a.full_name, "Ada Lovelace");
    assert_string_equal(a.terms_version, "2024-01");
    assert_int_equal(a.age_confirmed_at, 1700000500);
    assert_int_equal(a.terms_accepted_at, 1700000500);
    assert_int_equal(gh_store_account_get(db, "acct_9", &a), GH_ENOTFOUND);
    printf("%s: accounts ok\n", backend);
}

static void test_accounts(void **state)
{
    (void)state;
    both(accounts_body);
}

static void sessions_body(gh_db_t *db, const char *backend)
{
    make_account(db, "acct_1", "one@x.test", 100);
    assert_int_equal(gh_store_org_create(db, "org_1", "Org One", "acct_1", "wrkspc_1", "#123456",
                                         100),
                     GH_OK);
    gh_session_t s = {.id_hash = "sh1", .account_id = "acct_1", .csrf_token = "csrf",
                      .created_at = 100, .expires_at = 200};
    assert_int_equal(gh_store_session_insert(db, &s, "10.0.0.1", "test-agent"), GH_OK);
    gh_session_t got;
    assert_int_equal(gh_store_session_get(db, "sh1", 150, &got), GH_OK);
    assert_string_equal(got.account_id, "acct_1");
    assert_string_equal(got.csrf_token, "csrf");
    assert_string_equal(got.current_org_id, "");
    assert_int_equal(got.created_at, 100);
    assert_int_equal(got.expires_at, 200);
    assert_int_equal(gh_store_session_get(db, "sh1", 200, &got), GH_ENOTFOUND);
    assert_int_equal(gh_store_session_set_org(db, "sh1", "org_1"), GH_OK);
    assert_int_equal(gh_store_session_get(db, "sh1", 150, &got), GH_OK);
    assert_string_equal(got.current_org_id, "org_1");
    assert_int_equal(gh_store_session_set_org(db, "sh1", ""), GH_OK);
    assert_int_equal(gh_store_session_get(db, "sh1", 150, &got), GH_OK);
    assert_string_equal(got.current_org_id, "");
    /* A session for an account that does not exist breaks a foreign key. */
    gh_session_t orphan = {.id_hash = "sh2", .account_id = "acct_none", .csrf_token = "c",
                           .created_at = 100, .expires_at = 200};
    assert_int_equal(gh_store_session_insert(db, &orphan, "", ""), GH_ECONFLICT);
    assert_int_equal(gh_store_session_revoke(db, "sh1", 160), GH_OK);
    assert_int_equal(gh_store_session_get(db, "sh1", 150, &got), GH_ENOTFOUND);
    printf("%s: sessions ok\n", backend);
}

static void test_sessions(void **state)
{
    (void)state;
    both(sessions_body);
}

/* ---- orgs.c ---- */

typedef struct {
    int n;
    gh_membership_t m[8];
} memberships_t;

static void on_membership(void *ctx, const gh_membership_t *m)
{
    memberships_t *all = ctx;
    if (all->n < 8)
        all->m[all->n++] = *m;
}

static void orgs_body(gh_db_t *db, const char *backend)
{
    make_account(db, "acct_1", "one@x.test", 100);
    make_account(db, "acct_2", "two@x.test", 100);
    assert_int_equal(gh_store_org_create(db, "org_b", "Beta", "acct_1", "wrkspc_b", "#111111", 300),
                     GH_OK);
    assert_int_equal(gh_store_org_create(db, "org_a", "Alpha", "acct_1", "wrkspc_a", "#222222",
                                         300),
                     GH_OK);
    assert_int_equal(gh_store_org_create(db, "org_0", "Zero", "acct_1", "wrkspc_0", "#333333", 200),
                     GH_OK);
    /* The same id again fails whole: no second membership, no second workspace. */
    assert_int_equal(gh_store_org_create(db, "org_a", "Again", "acct_2", "wrkspc_x", "#444444",
                                         400),
                     GH_ECONFLICT);
    assert_false(gh_store_in_transaction(db));
    int count = -1;
    assert_int_equal(gh_store_membership_count(db, "acct_2", &count), GH_OK);
    assert_int_equal(count, 0);
    assert_int_equal(gh_store_membership_count(db, "acct_1", &count), GH_OK);
    assert_int_equal(count, 3);
    /* Each organization got its Default workspace, and the failed one none. */
    static const char count_ws[] = "SELECT count(*) FROM workspaces WHERE is_default";
    if (!strcmp(backend, "sqlite")) {
        int workspaces = -1;
        assert_int_equal(gh_store_workspace_count(db, "org_a", &workspaces), GH_OK);
        assert_int_equal(workspaces, 1);
    } else {
        PGresult *res;
        assert_int_equal(gh_pgs_query(db, count_ws, 0, NULL, &res), GH_OK);
        assert_int_equal(gh_pgs_col_i64(res, 0, 0), 3);
        PQclear(res);
    }

    memberships_t all = {0};
    assert_int_equal(gh_store_memberships(db, "acct_1", on_membership, &all), GH_OK);
    assert_int_equal(all.n, 3);
    /* By creation time, then id. */
    assert_string_equal(all.m[0].org_id, "org_0");
    assert_string_equal(all.m[1].org_id, "org_a");
    assert_string_equal(all.m[2].org_id, "org_b");
    assert_string_equal(all.m[1].org_name, "Alpha");
    assert_string_equal(all.m[1].role, "admin");

    gh_membership_t m;
    assert_int_equal(gh_store_membership_get(db, "org_b", "acct_1", &m), GH_OK);
    assert_string_equal(m.org_name, "Beta");
    assert_int_equal(gh_store_membership_get(db, "org_b", "acct_2", &m), GH_ENOTFOUND);

    gh_org_settings_t s;
    assert_int_equal(gh_store_org_settings_get(db, "org_a", &s), GH_OK);
    assert_string_equal(s.name, "Alpha");
    assert_string_equal(s.legal_name, "");
    assert_int_equal(s.created_at, 300);
    assert_int_equal(s.updated_at, 0);
    snprintf(s.name, sizeof(s.name), "Alpha Ltd");
    snprintf(s.legal_name, sizeof(s.legal_name), "Alpha Limited");
    snprintf(s.country, sizeof(s.country), "GB");
    s.updated_at = 500;
    assert_int_equal(gh_store_org_settings_put(db, &s), GH_OK);
    gh_org_settings_t again;
    assert_int_equal(gh_store_org_settings_get(db, "org_a", &again), GH_OK);
    assert_string_equal(again.name, "Alpha Ltd");
    assert_string_equal(again.legal_name, "Alpha Limited");
    assert_string_equal(again.country, "GB");
    assert_string_equal(again.city, "");
    assert_int_equal(again.updated_at, 500);
    snprintf(s.id, sizeof(s.id), "org_none");
    assert_int_equal(gh_store_org_settings_put(db, &s), GH_ENOTFOUND);
    assert_int_equal(gh_store_org_settings_get(db, "org_none", &s), GH_ENOTFOUND);
    printf("%s: orgs ok\n", backend);
}

static void test_orgs(void **state)
{
    (void)state;
    both(orgs_body);
}

/* ---- identity.c ---- */

typedef struct {
    int n;
    gh_identity_t id[4];
} identities_t;

static void on_identity(void *ctx, const gh_identity_t *identity)
{
    identities_t *all = ctx;
    if (all->n < 4)
        all->id[all->n++] = *identity;
}

static void identity_body(gh_db_t *db, const char *backend)
{
    gh_oidc_state_t st;
    assert_int_equal(gh_store_oidc_state_insert(db, "st1", "nonce1", "verifier1", 100, 700), GH_OK);
    assert_int_equal(gh_store_oidc_state_insert(db, "st2", "nonce2", "verifier2", 100, 150), GH_OK);
    assert_int_equal(gh_store_oidc_state_consume(db, "st1", 200, &st), GH_OK);
    assert_string_equal(st.nonce, "nonce1");
    assert_string_equal(st.code_verifier, "verifier1");
    assert_int_equal(st.created_at, 100);
    assert_int_equal(st.expires_at, 700);
    assert_int_equal(gh_store_oidc_state_consume(db, "st1", 201, &st), GH_ECONFLICT);
    assert_int_equal(gh_store_oidc_state_consume(db, "st2", 150, &st), GH_EEXPIRED);
    assert_int_equal(gh_store_oidc_state_consume(db, "st9", 150, &st), GH_ENOTFOUND);
    int deleted = -1;
    assert_int_equal(gh_store_oidc_state_purge(db, 150, &deleted), GH_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(gh_store_oidc_state_purge(db, 150, &deleted), GH_OK);
    assert_int_equal(deleted, 0);

    make_account(db, "acct_1", "one@x.test", 100);
    gh_identity_t a = {.issuer = "https://b.example", .subject = "s1", .account_id = "acct_1",
                       .email = "one@x.test", .created_at = 300, .last_used_at = 300};
    gh_identity_t b = {.issuer = "https://a.example", .subject = "s2", .account_id = "acct_1",
                       .email = "one@x.test", .created_at = 300, .last_used_at = 300};
    gh_identity_t c = {.issuer = "https://z.example", .subject = "s3", .account_id = "acct_1",
                       .email = "one@x.test", .created_at = 200, .last_used_at = 200};
    assert_int_equal(gh_store_identity_insert(db, &a), GH_OK);
    assert_int_equal(gh_store_identity_insert(db, &b), GH_OK);
    assert_int_equal(gh_store_identity_insert(db, &c), GH_OK);
    assert_int_equal(gh_store_identity_insert(db, &a), GH_ECONFLICT);
    assert_int_equal(gh_store_identity_touch(db, "https://b.example", "s1", "new@x.test", 900),
                     GH_OK);
    assert_int_equal(gh_store_identity_touch(db, "https://b.example", "s9", "new@x.test", 900),
                     GH_ENOTFOUND);
    gh_identity_t got;
    assert_int_equal(gh_store_identity_get(db, "https://b.example", "s1", &got), GH_OK);
    assert_string_equal(got.email, "new@x.test");
    assert_int_equal(got.created_at, 300);
    assert_int_equal(got.last_used_at, 900);
    assert_int_equal(gh_store_identity_get(db, "https://b.example", "s2", &got), GH_ENOTFOUND);
    identities_t all = {0};
    assert_int_equal(gh_store_identities(db, "acct_1", on_identity, &all), GH_OK);
    assert_int_equal(all.n, 3);
    assert_string_equal(all.id[0].subject, "s3"); /* oldest first, then by issuer */
    assert_string_equal(all.id[1].subject, "s2");
    assert_string_equal(all.id[2].subject, "s1");
    printf("%s: identities ok\n", backend);
}

static void test_identity(void **state)
{
    (void)state;
    both(identity_body);
}

/* ---- pgstore.c: transactions ---- */

static void transactions_body(gh_db_t *db, const char *backend)
{
    make_account(db, "acct_1", "one@x.test", 100);
    gh_account_t a;
    /* A constraint violation inside a transaction is an answer, not the transaction's end. */
    assert_int_equal(gh_store_begin(db), GH_OK);
    assert_true(gh_store_in_transaction(db));
    gh_account_t dup = {.id = "acct_x", .email = "one@x.test", .created_at = 1};
    assert_int_equal(gh_store_account_insert(db, &dup), GH_ECONFLICT);
    make_account(db, "acct_2", "two@x.test", 100);
    /* Nested: an inner rollback undoes only the inner part. */
    assert_int_equal(gh_store_begin(db), GH_OK);
    make_account(db, "acct_3", "three@x.test", 100);
    gh_store_rollback(db);
    assert_int_equal(gh_store_begin(db), GH_OK);
    make_account(db, "acct_4", "four@x.test", 100);
    assert_int_equal(gh_store_commit(db), GH_OK);
    assert_int_equal(gh_store_commit(db), GH_OK);
    assert_false(gh_store_in_transaction(db));
    assert_int_equal(gh_store_account_get(db, "acct_2", &a), GH_OK);
    assert_int_equal(gh_store_account_get(db, "acct_3", &a), GH_ENOTFOUND);
    assert_int_equal(gh_store_account_get(db, "acct_4", &a), GH_OK);
    /* An outer rollback undoes everything. */
    assert_int_equal(gh_store_begin(db), GH_OK);
    make_account(db, "acct_5", "five@x.test", 100);
    gh_store_rollback(db);
    assert_int_equal(gh_store_account_get(db, "acct_5", &a), GH_ENOTFOUND);
    printf("%s: transactions ok\n", backend);
}

static void test_transactions(void **state)
{
    (void)state;
    both(transactions_body);
}

/* Two threads' write transactions never overlap: the second BEGIN waits for the first
 * COMMIT, as BEGIN IMMEDIATE waits on SQLite. The first writer holds an uncommitted row
 * until PostgreSQL shows the second one waiting for the write lock; the second must then see
 * that row, committed, once it gets in. */
typedef struct {
    gh_store_t *store;
    pthread_barrier_t *go;
    int saw_first; /* whether the second writer saw the first writer's row */
} writer_t;

static void *second_writer(void *arg)
{
    writer_t *w = arg;
    gh_db_t *db = gh_store_db(w->store);
    pthread_barrier_wait(w->go);
    assert_int_equal(gh_store_begin(db), GH_OK);
    gh_account_t a;
    w->saw_first = gh_store_account_get(db, "acct_first", &a) == GH_OK;
    make_account(db, "acct_second", "second@x.test", 1);
    assert_int_equal(gh_store_commit(db), GH_OK);
    return NULL;
}

static void test_writers_are_serialized(void **state)
{
    (void)state;
    char url[300], err[512] = "";
    pg_unit_fresh_db(url, sizeof(url));
    gh_store_t *s = NULL;
    assert_int_equal(gh_postgres_ops.open(&s, url, err, sizeof(err)), GH_OK);
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = url;
    gh_pg_conn_t *watch;
    assert_int_equal(gh_pg_connect(&opt, &watch, err, sizeof(err)), GH_OK);

    gh_db_t *db = gh_store_db(s);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    writer_t w = {.store = s, .go = &go, .saw_first = -1};
    assert_int_equal(gh_store_begin(db), GH_OK);
    make_account(db, "acct_first", "first@x.test", 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second_writer, &w), 0);
    pthread_barrier_wait(&go);
    /* Wait (bounded) until the second writer is queued on the advisory lock. */
    int waiting = 0;
    for (int i = 0; i < 3000 && !waiting; i++) {
        PGresult *res;
        assert_int_equal(gh_pg_query(watch,
                                     "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND NOT granted",
                                     0, NULL, &res),
                         GH_OK);
        waiting = atoi_safe(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (!waiting)
            usleep(10000);
    }
    assert_int_equal(waiting, 1);
    assert_int_equal(w.saw_first, -1); /* still waiting, has read nothing */
    assert_int_equal(gh_store_commit(db), GH_OK);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&go);
    assert_int_equal(w.saw_first, 1);
    gh_account_t a;
    assert_int_equal(gh_store_account_get(db, "acct_second", &a), GH_OK);
    gh_pg_disconnect(watch);
    gh_store_close(s);
}

/* ---- pgstore.c: keyset pages ---- */

/* One page of accounts whose email ends in `domain`, through each backend's page helper, as
 * "id,id,...|more" (or "EINVAL"). */
typedef struct {
    char out[256];
} page_text_t;

static void add_id(char *out, size_t size, const char *id)
{
    size_t n = strlen(out);
    snprintf(out + n, size - n, "%s%s", n ? "," : "", id);
}

static void sq_row(void *ctx, sqlite3_stmt *st)
{
    page_text_t *t = ctx;
    add_id(t->out, sizeof(t->out), (const char *)sqlite3_column_text(st, 0));
}

static void pg_row(void *ctx, const PGresult *res, int row)
{
    page_text_t *t = ctx;
    add_id(t->out, sizeof(t->out), PQgetvalue(res, row, 0));
}

static void page_of(gh_db_t *db, bool pg, int limit, const char *after, const char *before,
                    bool newest_first, char *out, size_t size)
{
    page_text_t t = {{0}};
    gh_page_t page = {.limit = limit, .after_id = after, .before_id = before};
    bool more = false;
    gh_err_t rc;
    if (pg) {
        const char *args[] = {"%@page.test"};
        rc = gh_pgs_page(db, "t.id", "FROM accounts t WHERE t.email LIKE $1", "t.id", args, 1,
                         &page, newest_first, pg_row, &t, &more);
    } else {
        gh_sqlite_arg_t args[] = {GH_ARG_TEXT("%@page.test")};
        rc = gh_sqlite_page(db, "t.id", "FROM accounts t WHERE t.email LIKE ?", "t.id", args, 1,
                            &page, newest_first, sq_row, &t, &more);
    }
    if (rc == GH_EINVAL)
        snprintf(out, size, "EINVAL");
    else if (rc)
        snprintf(out, size, "error %d", rc);
    else
        snprintf(out, size, "%s|%s", t.out, more ? "more" : "end");
}

static void pages_body(gh_db_t *db, const char *backend)
{
    bool pg = !strcmp(backend, "postgresql");
    /* Ids out of alphabetical order, so insertion order is what is tested; one account
     * outside the list. */
    static const char *const ids[] = {"acct_e", "acct_c", "acct_a", "acct_d", "acct_b"};
    for (int i = 0; i < 5; i++) {
        char email[64];
        snprintf(email, sizeof(email), "u%d@page.test", i);
        make_account(db, ids[i], email, 100);
        if (i == 2)
            make_account(db, "acct_x", "x@elsewhere.test", 100);
    }
    char got[256];
    page_of(db, pg, 2, NULL, NULL, false, got, sizeof(got));
    assert_string_equal(got, "acct_e,acct_c|more");
    page_of(db, pg, 2, "acct_c", NULL, false, got, sizeof(got));
    assert_string_equal(got, "acct_a,acct_d|more");
    page_of(db, pg, 2, "acct_d", NULL, false, got, sizeof(got));
    assert_string_equal(got, "acct_b|end");
    page_of(db, pg, 2, "acct_b", NULL, false, got, sizeof(got));
    assert_string_equal(got, "|end");
    page_of(db, pg, 2, NULL, "acct_a", false, got, sizeof(got));
    assert_string_equal(got, "acct_e,acct_c|end");
    page_of(db, pg, 1, NULL, "acct_d", false, got, sizeof(got));
    assert_string_equal(got, "acct_a|more");
    page_of(db, pg, 2, NULL, NULL, true, got, sizeof(got));
    assert_string_equal(got, "acct_b,acct_d|more");
    page_of(db, pg, 2, "acct_d", NULL, true, got, sizeof(got));
    assert_string_equal(got, "acct_a,acct_c|more");
    /* Newest first the list is b,d,a,c,e: the two just before c, and b before them. */
    page_of(db, pg, 2, NULL, "acct_c", true, got, sizeof(got));
    assert_string_equal(got, "acct_d,acct_a|more");
    page_of(db, pg, 10, NULL, NULL, false, got, sizeof(got));
    assert_string_equal(got, "acct_e,acct_c,acct_a,acct_d,acct_b|end");
    /* A cursor that is not in the list. */
    page_of(db, pg, 2, "acct_x", NULL, false, got, sizeof(got));
    assert_string_equal(got, "EINVAL");
    page_of(db, pg, 2, NULL, "acct_none", false, got, sizeof(got));
    assert_string_equal(got, "EINVAL");
    printf("%s: pages ok\n", backend);
}

static void test_pages(void **state)
{
    (void)state;
    both(pages_body);
}

/* ---- pgstore.c: a restart ---- */

static void test_reconnects_after_restart(void **state)
{
    (void)state;
    gh_store_t *s = pg_unit_store();
    gh_db_t *db = gh_store_db(s);
    make_account(db, "acct_1", "one@x.test", 100);
    gh_account_t a;
    assert_int_equal(gh_store_account_get(db, "acct_1", &a), GH_OK);
    /* The test server runs without synchronous commit and stops with an immediate shutdown:
     * a checkpoint first, so the row outlives the restart. */
    static const char checkpoint[] = "CHECKPOINT";
    assert_int_equal(gh_pgs_exec(db, checkpoint, 0, NULL), GH_OK);
    assert_int_equal(pg_unit_server_stop(), 0);
    /* Down: unavailable, never a crash or a wrong answer, and noted for the console's 503. */
    gh_err_clear_db_unavailable();
    assert_int_equal(gh_store_account_get(db, "acct_1", &a), GH_EUNAVAIL);
    assert_true(gh_err_db_unavailable());
    assert_int_equal(gh_store_begin(db), GH_EUNAVAIL);
    assert_false(gh_store_in_transaction(db));
    /* Down, the thread does not try to reconnect at every statement: after a failed attempt
     * the next waits GH_PGS_RECONNECT_MIN_MS, doubling up to GH_PGS_RECONNECT_MAX_MS. */
    assert_true(pgs(db)->retry_ms >= GH_PGS_RECONNECT_MIN_MS);
    assert_true(pgs(db)->retry_ms <= GH_PGS_RECONNECT_MAX_MS);
    assert_int_equal(pg_unit_server_start(), 0);
    /* Back: the same handle works again, its statements prepared anew, once its back-off
     * has passed (a bounded poll: the back-off is at most GH_PGS_RECONNECT_MAX_MS; the
     * deadline is 60 s of wall time, for a loaded machine and the sanitizer build). */
    gh_err_t rc = GH_EUNAVAIL;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (t = t0; rc == GH_EUNAVAIL && t.tv_sec - t0.tv_sec < 60;
         clock_gettime(CLOCK_MONOTONIC, &t)) {
        gh_err_clear_db_unavailable();
        db = gh_store_db(s);
        rc = gh_store_account_get(db, "acct_1", &a);
        if (rc == GH_EUNAVAIL)
            nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
    }
    assert_int_equal(rc, GH_OK);
    assert_int_equal(pgs(db)->retry_ms, 0);
    assert_false(gh_err_db_unavailable());
    assert_string_equal(a.email, "one@x.test");
    make_account(db, "acct_2", "two@x.test", 100);
    gh_store_close(s);
}

/* ---- wiring ---- */

static void test_open_by_url_names_what_is_missing(void **state)
{
    (void)state;
    char url[300], err[512] = "";
    pg_unit_fresh_db(url, sizeof(url));
    gh_store_t *s = NULL;
    const char *missing = gh_store_ops_first_missing(&gh_postgres_ops);
    gh_err_t rc = gh_store_open(&s, url, err, sizeof(err));
    if (missing) {
        assert_int_equal(rc, GH_EINVAL);
        assert_non_null(strstr(err, missing));
        printf("refused while incomplete: %s\n", err);
    } else {
        assert_int_equal(rc, GH_OK);
        assert_true(gh_store_schema_version(gh_store_db(s)) >= 1);
        gh_store_close(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_accounts),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_orgs),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_writers_are_serialized),
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_reconnects_after_restart),
        cmocka_unit_test(test_open_by_url_names_what_is_missing),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
