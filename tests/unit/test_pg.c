/* The PostgreSQL store's foundation against a real PostgreSQL 15 (scripts/pg-test.sh starts
 * one for this binary in a temporary directory and stops it when the binary exits, however
 * it ends): the migrations runner (once, two at a time, an edited migration), the ledger's
 * append-only triggers, the invoice counter under four threads, the pool's bound and
 * timeouts, reconnection after a server restart, and retried serialization failures and
 * deadlocks. Each test works in a database of its own. */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/embed.h"
#include "store/postgres/pg.h"
#include "store/postgres/pg_int.h"
#include "store/postgres/pg_migrate.h"

static char server_dir[64];
static char server_url[256]; /* the maintenance database "postgres" */
static int db_counter;

static const char *script(void)
{
    const char *s = getenv("GH_PG_TEST_SCRIPT");
    return s && *s ? s : "scripts/pg-test.sh";
}

/* Starts (or restarts) the server in server_dir; its URL goes to server_url. */
static int server_start(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s start '%s' %d", script(), server_dir, (int)getpid());
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[256] = "";
    if (!fgets(line, sizeof(line), p))
        line[0] = '\0';
    int rc = pclose(p);
    line[strcspn(line, "\n")] = '\0';
    if (rc != 0 || strncmp(line, "postgresql://", 13)) {
        fprintf(stderr, "test_pg: %s failed (%d): %s\n", cmd, rc, line);
        return -1;
    }
    snprintf(server_url, sizeof(server_url), "%s", line);
    return 0;
}

static int server_stop(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s stop '%s'", script(), server_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    if (gh_crypto_init())
        return -1;
    snprintf(server_dir, sizeof(server_dir), "/tmp/gh-unit-pg-XXXXXX");
    if (!mkdtemp(server_dir))
        return -1;
    return server_start();
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = server_stop();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", server_dir);
    return system(cmd) == 0 && rc == 0 ? 0 : -1;
}

/* A new, empty database; its URL in `url`. */
static void fresh_db(char *url, size_t size)
{
    char name[32];
    snprintf(name, sizeof(name), "t%d_%d", (int)getpid(), ++db_counter);
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = server_url;
    gh_pg_conn_t *c;
    char err[512];
    assert_int_equal(gh_pg_connect(&opt, &c, err, sizeof(err)), GH_OK);
    char sql[64];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    assert_int_equal(gh_pg_exec(c, sql), GH_OK);
    gh_pg_disconnect(c);
    const char *slash = strrchr(server_url, '/');
    assert_non_null(slash);
    snprintf(url, size, "%.*s/%s", (int)(slash - server_url), server_url, name);
}

static gh_pg_conn_t *connect_to(const char *url)
{
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = url;
    gh_pg_conn_t *c = NULL;
    char err[512];
    gh_err_t rc = gh_pg_connect(&opt, &c, err, sizeof(err));
    if (rc)
        fprintf(stderr, "connect: %s\n", err);
    assert_int_equal(rc, GH_OK);
    return c;
}

/* The first column of the first row of `sql`, as a number. */
static long long scalar(gh_pg_conn_t *c, const char *sql)
{
    PGresult *res;
    gh_err_t rc = gh_pg_query(c, sql, 0, NULL, &res);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, c->message);
    assert_int_equal(rc, GH_OK);
    assert_int_equal(PQntuples(res), 1);
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static void migrate_ok(gh_pg_conn_t *c)
{
    char err[512] = "";
    gh_err_t rc = gh_pg_migrate(c, gh_embed_pg_migrations, NULL, NULL, err, sizeof(err));
    if (rc)
        fprintf(stderr, "migrate: %s\n", err);
    assert_int_equal(rc, GH_OK);
}

/* ---- migrations ---- */

static void test_migrations_apply_once(void **state)
{
    (void)state;
    char url[300];
    fresh_db(url, sizeof(url));
    gh_pg_conn_t *c = connect_to(url);
    int applied = -1, version = -1;
    char err[512];
    assert_int_equal(gh_pg_migrate(c, gh_embed_pg_migrations, &applied, &version, err,
                                   sizeof(err)),
                     GH_OK);
    int count = (int)gh_embed_pg_migrations_count;
    assert_true(count >= 1);
    assert_int_equal(applied, count);
    printf("migrations: %d applied, schema version %d\n", applied, version);
    assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), count);
    /* The recorded checksum is the file's SHA-256. */
    char sum[GH_SHA256_HEX_MAX];
    gh_sha256_hex(sum, gh_embed_pg_migrations[0].data, gh_embed_pg_migrations[0].len);
    PGresult *res;
    assert_int_equal(gh_pg_query(c, "SELECT sha256 FROM schema_migrations WHERE version = 1", 0,
                                 NULL, &res),
                     GH_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), sum);
    PQclear(res);
    /* The second run finds nothing to do. */
    assert_int_equal(gh_pg_migrate(c, gh_embed_pg_migrations, &applied, &version, err,
                                   sizeof(err)),
                     GH_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), count);
    /* And the advisory lock was given back. */
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), 0);
    gh_pg_disconnect(c);
}

typedef struct {
    const char *url;
    pthread_barrier_t *start;
    int applied;
    gh_err_t rc;
    char err[512];
} migrator_t;

static void *migrator(void *arg)
{
    migrator_t *m = arg;
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = m->url;
    gh_pg_conn_t *c;
    m->rc = gh_pg_connect(&opt, &c, m->err, sizeof(m->err));
    pthread_barrier_wait(m->start);
    if (m->rc)
        return NULL;
    m->rc = gh_pg_migrate(c, gh_embed_pg_migrations, &m->applied, NULL, m->err, sizeof(m->err));
    gh_pg_disconnect(c);
    return NULL;
}

static void test_migrations_two_at_once(void **state)
{
    (void)state;
    char url[300];
    fresh_db(url, sizeof(url));
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    migrator_t m[2] = {{.url = url, .start = &start}, {.url = url, .start = &start}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, migrator, &m[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++) {
        if (m[i].rc)
            fprintf(stderr, "migrator %d: %s\n", i, m[i].err);
        assert_int_equal(m[i].rc, GH_OK);
    }
    int count = (int)gh_embed_pg_migrations_count;
    printf("two migrators at once: %d and %d applied\n", m[0].applied, m[1].applied);
    /* One did everything, the other waited for it and found nothing left. */
    assert_int_equal(m[0].applied + m[1].applied, count);
    assert_true(m[0].applied == 0 || m[1].applied == 0);
    gh_pg_conn_t *c = connect_to(url);
    assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), count);
    gh_pg_disconnect(c);
}

static void test_migrations_edited_refused(void **state)
{
    (void)state;
    char url[300];
    fresh_db(url, sizeof(url));
    gh_pg_conn_t *c = connect_to(url);
    migrate_ok(c);
    size_t n = gh_embed_pg_migrations_count;
    gh_embed_t *set = calloc(n + 1, sizeof(*set));
    assert_non_null(set);
    memcpy(set, gh_embed_pg_migrations, n * sizeof(*set));
    /* The first migration, edited by one comment line. */
    size_t len = set[0].len + 32;
    unsigned char *edited = malloc(len + 1);
    assert_non_null(edited);
    int w = snprintf((char *)edited, len + 1, "%s-- an edit after landing\n",
                     (const char *)set[0].data);
    assert_true(w > 0);
    set[0].data = edited;
    set[0].len = (size_t)w;
    char err[512] = "";
    int applied = -1;
    assert_int_equal(gh_pg_migrate(c, set, &applied, NULL, err, sizeof(err)), GH_EINTERNAL);
    printf("edited migration: %s\n", err);
    assert_non_null(strstr(err, "0001_schema.sql was changed after it was applied"));
    /* A database a newer binary migrated: this one does not know its last migration. */
    memcpy(set, gh_embed_pg_migrations, n * sizeof(*set));
    memset(&set[n - 1], 0, sizeof(*set));
    assert_int_equal(gh_pg_migrate(c, set, &applied, NULL, err, sizeof(err)), GH_EINTERNAL);
    assert_non_null(strstr(err, "which this Gatehouse does not know"));
    /* Nothing changed: the real set still finds everything applied. */
    assert_int_equal(gh_pg_migrate(c, gh_embed_pg_migrations, &applied, NULL, err, sizeof(err)),
                     GH_OK);
    assert_int_equal(applied, 0);
    free(edited);
    free(set);
    gh_pg_disconnect(c);
}

/* ---- the ledger ---- */

static void test_ledger_append_only(void **state)
{
    (void)state;
    char url[300];
    fresh_db(url, sizeof(url));
    gh_pg_conn_t *c = connect_to(url);
    migrate_ok(c);
    assert_int_equal(gh_pg_exec(c, "INSERT INTO organizations (id, name, created_at) "
                                   "VALUES ('org_1', 'Acme', now());"
                                   "INSERT INTO ledger_entries (org_id, kind, amount_nusd, "
                                   "reference, created_at) "
                                   "VALUES ('org_1', 'grant', 5000000000, 'grant_1', now())"),
                     GH_OK);
    const char *refused[] = {"UPDATE ledger_entries SET amount_nusd = 1",
                             "DELETE FROM ledger_entries", "TRUNCATE ledger_entries"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        gh_err_t rc = gh_pg_exec(c, refused[i]);
        printf("%s: %s (SQLSTATE %s)\n", refused[i], c->message, c->sqlstate);
        assert_int_equal(rc, GH_ECONFLICT);
        assert_string_equal(c->sqlstate, "23001");
        assert_non_null(strstr(c->message, "ledger entries are append-only"));
    }
    assert_int_equal(scalar(c, "SELECT count(*) FROM ledger_entries"), 1);
    assert_int_equal(scalar(c, "SELECT amount_nusd FROM ledger_entries"), 5000000000LL);
    /* Money is checked on the way in too: a grant is positive. */
    assert_int_equal(gh_pg_exec(c, "INSERT INTO ledger_entries (org_id, kind, amount_nusd, "
                                   "reference, created_at) "
                                   "VALUES ('org_1', 'grant', -1, 'grant_2', now())"),
                     GH_ECONFLICT);
    gh_pg_disconnect(c);
}

/* ---- the invoice counter ---- */

#define BUYERS 4
#define BUYS_EACH 25

typedef struct {
    gh_pg_pool_t *pool;
    int buyer;
    int done;         /* invoices committed */
    int rolled_back;  /* purchases that took a number and rolled back */
    gh_err_t rc;
} buyer_t;

typedef struct {
    int buyer, n;
    bool fail; /* take a number, then fail (a declined card after the counter moved) */
} buy_t;

static gh_err_t buy(gh_pg_conn_t *c, void *arg)
{
    buy_t *b = arg;
    char pid[64], iid[64];
    snprintf(pid, sizeof(pid), "pur_%d_%d", b->buyer, b->n);
    snprintf(iid, sizeof(iid), "inv_%d_%d", b->buyer, b->n);
    const char *p1[] = {pid};
    PGresult *res;
    gh_err_t rc = gh_pg_query(
        c,
        "INSERT INTO purchases (id, org_id, kind, status, amount_nusd, tax_nusd, total_nusd, "
        "tax_label, idempotency_key, payment_method_id, provider, created_by_type, "
        "created_by_id, created_at, updated_at, resolved_at) VALUES ($1, 'org_1', 'manual', "
        "'succeeded', 10000000000, 0, 10000000000, 'No tax', $1, 'card_1', 'test', 'user', "
        "'acct_1', now(), now(), now())",
        1, p1, &res);
    PQclear(res);
    if (rc)
        return rc;
    rc = gh_pg_query(c, "SELECT gh_next_invoice_seq(2026)", 0, NULL, &res);
    if (rc)
        return rc;
    char seq[24];
    snprintf(seq, sizeof(seq), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (b->fail)
        return GH_EBILLING;
    char number[64];
    snprintf(number, sizeof(number), "GH-2026-%06lld", strtoll(seq, NULL, 10));
    const char *p2[] = {iid, pid, number, seq};
    rc = gh_pg_query(c,
                     "INSERT INTO invoices (id, org_id, purchase_id, number, year, seq, "
                     "issued_at, currency, description, subtotal_nusd, tax_nusd, total_nusd, "
                     "tax_label, payment, test_mode) VALUES ($1, 'org_1', $2, $3, 2026, $4, "
                     "now(), 'USD', 'Credits', 10000000000, 0, 10000000000, 'No tax', "
                     "'Visa ending in 4242', true)",
                     4, p2, &res);
    PQclear(res);
    return rc;
}

static void *buyer(void *arg)
{
    buyer_t *b = arg;
    for (int i = 0; i < BUYS_EACH; i++) {
        buy_t one = {.buyer = b->buyer, .n = i, .fail = i % 5 == 4};
        gh_err_t rc = gh_pg_tx(b->pool, GH_PG_READ_COMMITTED, buy, &one, NULL);
        if (one.fail && rc == GH_EBILLING) {
            b->rolled_back++;
            continue;
        }
        if (rc) {
            b->rc = rc;
            return NULL;
        }
        b->done++;
    }
    return NULL;
}

static void test_invoice_counter_four_threads(void **state)
{
    (void)state;
    char url[300];
    fresh_db(url, sizeof(url));
    gh_pg_conn_t *c = connect_to(url);
    migrate_ok(c);
    assert_int_equal(gh_pg_exec(c, "INSERT INTO organizations (id, name, created_at) "
                                   "VALUES ('org_1', 'Acme', now());"
                                   "INSERT INTO payment_methods (id, org_id, provider, brand, "
                                   "last4, exp_month, exp_year, created_at) VALUES ('card_1', "
                                   "'org_1', 'test', 'visa', '4242', 12, 2030, now())"),
                     GH_OK);
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = url;
    opt.pool_size = BUYERS;
    gh_pg_pool_t *pool;
    char err[512];
    assert_int_equal(gh_pg_pool_new(&pool, &opt, err, sizeof(err)), GH_OK);
    buyer_t b[BUYERS];
    pthread_t t[BUYERS];
    for (int i = 0; i < BUYERS; i++) {
        b[i] = (buyer_t){.pool = pool, .buyer = i};
        assert_int_equal(pthread_create(&t[i], NULL, buyer, &b[i]), 0);
    }
    int done = 0, rolled_back = 0;
    for (int i = 0; i < BUYERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(b[i].rc, GH_OK);
        done += b[i].done;
        rolled_back += b[i].rolled_back;
    }
    gh_pg_pool_free(pool);
    assert_int_equal(done, BUYERS * BUYS_EACH * 4 / 5);
    assert_int_equal(rolled_back, BUYERS * BUYS_EACH / 5);
    /* Numbers 1..done, each exactly once: no gap where a purchase rolled back. */
    long long n = scalar(c, "SELECT count(*) FROM invoices");
    long long distinct = scalar(c, "SELECT count(DISTINCT seq) FROM invoices");
    long long lo = scalar(c, "SELECT min(seq) FROM invoices");
    long long hi = scalar(c, "SELECT max(seq) FROM invoices");
    long long counter = scalar(c, "SELECT last_seq FROM invoice_counters WHERE year = 2026");
    printf("invoice counter, %d threads: %lld invoices numbered %lld..%lld (%lld distinct), "
           "%d purchases rolled back after taking a number, counter at %lld\n",
           BUYERS, n, lo, hi, distinct, rolled_back, counter);
    assert_int_equal(n, done);
    assert_int_equal(distinct, done);
    assert_int_equal(lo, 1);
    assert_int_equal(hi, done);
    assert_int_equal(counter, done);
    gh_pg_disconnect(c);
}

/* ---- the pool ---- */

static gh_err_t select_one(gh_pg_conn_t *c, void *ctx)
{
    (void)ctx;
    PGresult *res;
    gh_err_t rc = gh_pg_query(c, "SELECT 1", 0, NULL, &res);
    PQclear(res);
    return rc;
}

static void test_pool_bound_and_timeouts(void **state)
{
    (void)state;
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = server_url;
    opt.pool_size = 1;
    opt.acquire_timeout_ms = 100;
    opt.statement_timeout_ms = 300;
    gh_pg_pool_t *pool;
    char err[512];
    assert_int_equal(gh_pg_pool_new(&pool, &opt, err, sizeof(err)), GH_OK);
    gh_pg_conn_t *a, *b;
    assert_int_equal(gh_pg_acquire(pool, &a), GH_OK);
    /* The only connection is taken: the next caller is refused, not queued for ever. */
    assert_int_equal(gh_pg_acquire(pool, &b), GH_EUNAVAIL);
    /* A statement past statement_timeout is cancelled by the server. */
    PGresult *res;
    assert_int_equal(gh_pg_query(a, "SELECT pg_sleep(30)", 0, NULL, &res), GH_EUNAVAIL);
    printf("statement timeout: %s (SQLSTATE %s)\n", a->message, a->sqlstate);
    assert_string_equal(a->sqlstate, "57014");
    assert_false(a->broken);
    gh_pg_release(pool, a);
    assert_int_equal(gh_pg_acquire(pool, &b), GH_OK);
    assert_ptr_equal(a, b);
    gh_pg_release(pool, b);
    gh_pg_pool_free(pool);

    /* A server that is not there: a clear message naming host and port, no password. */
    opt.url = "postgresql://gatehouse@127.0.0.1:1/nothing";
    opt.password = "s3cret-password";
    assert_int_equal(gh_pg_pool_new(&pool, &opt, err, sizeof(err)), GH_EUNAVAIL);
    printf("unreachable: %s\n", err);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL at 127.0.0.1:1/nothing"));
    assert_null(strstr(err, "s3cret"));
}

/* ---- a restart ---- */

static void test_reconnect_after_restart(void **state)
{
    (void)state;
    char url[300];
    fresh_db(url, sizeof(url));
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = url;
    opt.pool_size = 2;
    gh_pg_pool_t *pool;
    char err[512];
    assert_int_equal(gh_pg_pool_new(&pool, &opt, err, sizeof(err)), GH_OK);
    int attempts = 0;
    assert_int_equal(gh_pg_tx(pool, GH_PG_READ_COMMITTED, select_one, NULL, &attempts), GH_OK);
    assert_int_equal(attempts, 1);

    assert_int_equal(server_stop(), 0);
    /* Down: an honest "unavailable", promptly (the connection is refused). */
    assert_int_equal(gh_pg_tx(pool, GH_PG_READ_COMMITTED, select_one, NULL, &attempts),
                     GH_EUNAVAIL);
    assert_int_equal(server_start(), 0);
    /* Back: the same pool works again, without being recreated. */
    assert_int_equal(gh_pg_tx(pool, GH_PG_READ_COMMITTED, select_one, NULL, &attempts), GH_OK);
    printf("after a restart: the transaction succeeded in %d attempt(s)\n", attempts);

    /* A restart between two uses: the pooled connection is dead, the transaction is run
     * again on a new one, and the caller sees success. */
    assert_int_equal(server_stop(), 0);
    assert_int_equal(server_start(), 0);
    assert_int_equal(gh_pg_tx(pool, GH_PG_READ_COMMITTED, select_one, NULL, &attempts), GH_OK);
    printf("restart between uses: succeeded in %d attempts\n", attempts);
    assert_int_equal(attempts, 2);
    gh_pg_pool_free(pool);
}

/* ---- retried conflicts ---- */

typedef struct {
    gh_pg_conn_t *other; /* commits a conflicting change during the first attempt */
    int runs;
    long long seen;
} bump_t;

static gh_err_t bump(gh_pg_conn_t *c, void *arg)
{
    bump_t *b = arg;
    b->runs++;
    PGresult *res;
    gh_err_t rc = gh_pg_query(c, "SELECT v FROM counter WHERE id = 1", 0, NULL, &res);
    if (rc)
        return rc;
    b->seen = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    /* The first time, another session changes the row after this snapshot was taken. */
    if (b->runs == 1)
        assert_int_equal(gh_pg_exec(b->other, "UPDATE counter SET v = v + 100 WHERE id = 1"),
                         GH_OK);
    rc = gh_pg_query(c, "UPDATE counter SET v = v + 1 WHERE id = 1", 0, NULL, &res);
    PQclear(res);
    return rc;
}

static gh_err_t insert_duplicate(gh_pg_conn_t *c, void *arg)
{
    int *runs = arg;
    ++*runs;
    return gh_pg_exec(c, "INSERT INTO counter VALUES (1, 0)");
}

static void test_serialization_failure_retried(void **state)
{
    (void)state;
    char url[300];
    fresh_db(url, sizeof(url));
    gh_pg_conn_t *other = connect_to(url);
    assert_int_equal(gh_pg_exec(other, "CREATE TABLE counter (id int PRIMARY KEY, v bigint);"
                                       "INSERT INTO counter VALUES (1, 0)"),
                     GH_OK);
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = url;
    gh_pg_pool_t *pool;
    char err[512];
    assert_int_equal(gh_pg_pool_new(&pool, &opt, err, sizeof(err)), GH_OK);
    bump_t b = {.other = other};
    int attempts = 0;
    assert_int_equal(gh_pg_tx(pool, GH_PG_REPEATABLE_READ, bump, &b, &attempts), GH_OK);
    printf("serialization failure: retried, %d attempts, the second saw %lld\n", attempts,
           b.seen);
    assert_int_equal(attempts, 2);
    assert_int_equal(b.seen, 100);
    assert_int_equal(scalar(other, "SELECT v FROM counter WHERE id = 1"), 101);
    /* Other errors are not retried: a duplicate key is the caller's conflict, at once. */
    int runs = 0;
    assert_int_equal(gh_pg_tx(pool, GH_PG_SERIALIZABLE, insert_duplicate, &runs, &attempts),
                     GH_ECONFLICT);
    assert_int_equal(runs, 1);
    assert_int_equal(attempts, 1);
    gh_pg_pool_free(pool);
    gh_pg_disconnect(other);
}

/* Two transactions lock rows 1 and 2 in opposite orders: PostgreSQL kills one (40P01), the
 * helper runs it again, and both end committed. */
typedef struct {
    pthread_barrier_t *both_locked_first; /* first attempts only */
    int first, second;
    int runs;
} lock_pair_t;

static gh_err_t lock_pair(gh_pg_conn_t *c, void *arg)
{
    lock_pair_t *l = arg;
    l->runs++;
    char sql[96];
    PGresult *res;
    snprintf(sql, sizeof(sql), "UPDATE counter SET v = v + 1 WHERE id = %d", l->first);
    gh_err_t rc = gh_pg_query(c, sql, 0, NULL, &res);
    PQclear(res);
    if (rc)
        return rc;
    if (l->runs == 1)
        pthread_barrier_wait(l->both_locked_first);
    snprintf(sql, sizeof(sql), "UPDATE counter SET v = v + 1 WHERE id = %d", l->second);
    rc = gh_pg_query(c, sql, 0, NULL, &res);
    PQclear(res);
    return rc;
}

typedef struct {
    gh_pg_pool_t *pool;
    lock_pair_t *pair;
    int attempts;
    gh_err_t rc;
} locker_t;

static void *locker(void *arg)
{
    locker_t *l = arg;
    l->rc = gh_pg_tx(l->pool, GH_PG_READ_COMMITTED, lock_pair, l->pair, &l->attempts);
    return NULL;
}

static void test_deadlock_retried(void **state)
{
    (void)state;
    char url[300];
    fresh_db(url, sizeof(url));
    gh_pg_conn_t *c = connect_to(url);
    assert_int_equal(gh_pg_exec(c, "CREATE TABLE counter (id int PRIMARY KEY, v bigint);"
                                   "INSERT INTO counter VALUES (1, 0), (2, 0)"),
                     GH_OK);
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = url;
    opt.pool_size = 2;
    gh_pg_pool_t *pool;
    char err[512];
    assert_int_equal(gh_pg_pool_new(&pool, &opt, err, sizeof(err)), GH_OK);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    lock_pair_t pairs[2] = {{.both_locked_first = &barrier, .first = 1, .second = 2},
                            {.both_locked_first = &barrier, .first = 2, .second = 1}};
    locker_t l[2] = {{.pool = pool, .pair = &pairs[0]}, {.pool = pool, .pair = &pairs[1]}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, locker, &l[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    printf("deadlock: attempts %d and %d\n", l[0].attempts, l[1].attempts);
    assert_int_equal(l[0].rc, GH_OK);
    assert_int_equal(l[1].rc, GH_OK);
    /* At least one was run again (the deadlock's victim). Which one, and whether a loaded
     * machine made the other wait past its lock timeout and run again too, is timing: what
     * must hold is that both commit, each effect exactly once. */
    assert_true(l[0].attempts + l[1].attempts >= 3);
    /* Both transactions' effects, each once. */
    assert_int_equal(scalar(c, "SELECT sum(v) FROM counter"), 4);
    gh_pg_pool_free(pool);
    gh_pg_disconnect(c);
}

/* ---- times ---- */

/* Epoch milliseconds into timestamptz and back (GH_PGS_TIME_IN_MS, GH_PGS_EPOCH_MS) give the
 * same number, and the instant is the right one; the same for seconds. */
static void test_time_ms_round_trip(void **state)
{
    (void)state;
    gh_pg_conn_t *c = connect_to(server_url);
    static const char sql[] = "SELECT " GH_PGS_EPOCH_MS(GH_PGS_TIME_IN_MS("$1")) ", "
                              "to_char(" GH_PGS_TIME_IN_MS("$1") " AT TIME ZONE 'UTC', "
                              "'YYYY-MM-DD HH24:MI:SS.MS'), "
                              GH_PGS_EPOCH(GH_PGS_TIME_IN("$2"));
    static const struct {
        long long ms;
        const char *utc;
    } cases[] = {
        {0, "1970-01-01 00:00:00.000"},
        {1, "1970-01-01 00:00:00.001"},
        {999, "1970-01-01 00:00:00.999"},
        {1001, "1970-01-01 00:00:01.001"},
        {-1, "1969-12-31 23:59:59.999"},
        {1700000000123LL, "2023-11-14 22:13:20.123"},
        {1700000000999LL, "2023-11-14 22:13:20.999"},
        {1767225599999LL, "2025-12-31 23:59:59.999"},
        {4102444800001LL, "2100-01-01 00:00:00.001"},
        {253402300799999LL, "9999-12-31 23:59:59.999"},
    };
    assert_int_equal(gh_pg_exec(c, "SET TimeZone = 'America/New_York'"), GH_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char ms[24], secs[24];
        snprintf(ms, sizeof(ms), "%lld", cases[i].ms);
        /* Whole seconds, rounded down, for the seconds macros. */
        long long s = cases[i].ms >= 0 ? cases[i].ms / 1000 : -((-cases[i].ms + 999) / 1000);
        snprintf(secs, sizeof(secs), "%lld", s);
        const char *params[] = {ms, secs};
        PGresult *res;
        gh_err_t rc = gh_pg_query(c, sql, 2, params, &res);
        if (rc)
            fprintf(stderr, "%s: %s\n", ms, c->message);
        assert_int_equal(rc, GH_OK);
        printf("%s ms -> %s UTC -> %s ms\n", ms, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0));
        assert_int_equal(strtoll(PQgetvalue(res, 0, 0), NULL, 10), cases[i].ms);
        assert_string_equal(PQgetvalue(res, 0, 1), cases[i].utc);
        assert_int_equal(strtoll(PQgetvalue(res, 0, 2), NULL, 10), s);
        PQclear(res);
    }
    gh_pg_disconnect(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations_apply_once),
        cmocka_unit_test(test_migrations_two_at_once),
        cmocka_unit_test(test_migrations_edited_refused),
        cmocka_unit_test(test_ledger_append_only),
        cmocka_unit_test(test_invoice_counter_four_threads),
        cmocka_unit_test(test_pool_bound_and_timeouts),
        cmocka_unit_test(test_serialization_failure_retried),
        cmocka_unit_test(test_deadlock_retried),
        cmocka_unit_test(test_reconnect_after_restart),
        cmocka_unit_test(test_time_ms_round_trip),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
