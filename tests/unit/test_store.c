/* The store's dispatch (src/store/store.c): each gh_store_* call goes to the entry of its
 * handle's backend; an entry left NULL answers GH_EUNAVAIL; gh_store_ops_complete names the
 * first missing entry; gh_store_open picks the backend by the location's scheme. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/store.h"

static int account_get_calls;
static const char *account_get_id;

static gh_err_t stub_account_get(gh_db_t *db, const char *id, gh_account_t *out)
{
    (void)db;
    account_get_calls++;
    account_get_id = id;
    snprintf(out->email, sizeof(out->email), "stub@example.com");
    return GH_ECONFLICT; /* an answer no real backend gives here: proves the call went through */
}

static void null_entry_answers_unavailable(void **state)
{
    (void)state;
    gh_store_ops_t ops = gh_sqlite_ops;
    ops.account_get = NULL;
    ops.commit = NULL;
    ops.rollback = NULL;
    ops.in_transaction = NULL;
    ops.changes = NULL;
    struct gh_db db = {.ops = &ops};
    gh_account_t a = {0};
    /* Twice: the second call (logged no more) answers the same. */
    assert_int_equal(gh_store_account_get(&db, "acct_1", &a), GH_EUNAVAIL);
    assert_int_equal(gh_store_account_get(&db, "acct_1", &a), GH_EUNAVAIL);
    assert_int_equal(gh_store_commit(&db), GH_EUNAVAIL);
    gh_store_rollback(&db); /* a void operation that is missing does nothing */
    assert_false(gh_store_in_transaction(&db));
    assert_int_equal(gh_store_changes(&db), 0);
    assert_string_equal(a.email, "");
}

static void present_entry_is_called_with_the_arguments(void **state)
{
    (void)state;
    gh_store_ops_t ops = gh_sqlite_ops;
    ops.account_get = stub_account_get;
    struct gh_db db = {.ops = &ops};
    gh_account_t a = {0};
    account_get_calls = 0;
    assert_int_equal(gh_store_account_get(&db, "acct_7", &a), GH_ECONFLICT);
    assert_int_equal(account_get_calls, 1);
    assert_string_equal(account_get_id, "acct_7");
    assert_string_equal(a.email, "stub@example.com");
}

static void first_missing_entry_is_named(void **state)
{
    (void)state;
    gh_store_ops_t ops = gh_sqlite_ops;
    assert_null(gh_store_ops_first_missing(&ops));
    ops.orgs_search = NULL; /* the last entry of store.h: later than keys_list */
    assert_string_equal(gh_store_ops_first_missing(&ops), "orgs_search");
    ops.keys_list = NULL;
    assert_string_equal(gh_store_ops_first_missing(&ops), "keys_list");
    ops.close = NULL; /* the store's own operations come before the connection's */
    assert_string_equal(gh_store_ops_first_missing(&ops), "close");
    ops.open = NULL;
    assert_string_equal(gh_store_ops_first_missing(&ops), "open");

    gh_store_ops_t partial = gh_sqlite_ops;
    partial.identities = NULL; /* the very last entry */
    struct gh_store store = {.ops = &partial};
    const char *missing = "unset";
    assert_false(gh_store_ops_complete(&store, &missing));
    assert_string_equal(missing, "identities");
    assert_false(gh_store_ops_complete(&store, NULL));
}

static void sqlite_store_is_complete_and_chosen_by_scheme(void **state)
{
    (void)state;
    char dir[] = "/tmp/gh-unit-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char location[160], path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/schemed.db", dir);
    snprintf(location, sizeof(location), "sqlite:%s", path);

    gh_store_t *store = NULL;
    assert_int_equal(gh_store_open(&store, location, err, sizeof(err)), GH_OK);
    const char *missing = "unset";
    assert_true(gh_store_ops_complete(store, &missing));
    assert_null(missing);
    assert_string_equal(gh_store_backend(store), "sqlite");
    gh_db_t *db = gh_store_db(store);
    assert_non_null(db);
    assert_true(gh_store_schema_version(db) >= 8);
    gh_account_t a;
    assert_int_equal(gh_store_account_get(db, "acct_none", &a), GH_ENOTFOUND);
    gh_store_close(store);
    struct stat st;
    assert_int_equal(stat(path, &st), 0); /* the file is where the scheme's rest said */

    /* A postgresql:// URL goes to the PostgreSQL backend, never to a file: refused naming
     * the first missing operation while its port is incomplete, then (nothing listens on
     * port 1) unavailable with a message naming the server. */
    store = NULL;
    const char *pg_missing = gh_store_ops_first_missing(&gh_postgres_ops);
    gh_err_t rc = gh_store_open(&store, "postgresql://gh@127.0.0.1:1/gh", err, sizeof(err));
    assert_null(store);
    if (pg_missing) {
        assert_int_equal(rc, GH_EINVAL);
        assert_non_null(strstr(err, "not complete yet"));
        assert_non_null(strstr(err, pg_missing));
    } else {
        assert_int_equal(rc, GH_EUNAVAIL);
        assert_non_null(strstr(err, "cannot connect to PostgreSQL at 127.0.0.1:1/gh"));
    }
    assert_int_not_equal(stat("postgresql:", &st), 0);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_entry_answers_unavailable),
        cmocka_unit_test(present_entry_is_called_with_the_arguments),
        cmocka_unit_test(first_missing_entry_is_named),
        cmocka_unit_test(sqlite_store_is_complete_and_chosen_by_scheme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
