/* The PostgreSQL store's API keys, admin keys, Workbench keys and audit log
 * (src/store/postgres/keys.c) against a real PostgreSQL 15: the results, error codes, order,
 * filters and pagination the SQLite backend gives. */
#include "pg_fixture.h"

static void key_collect(void *ctx, const gh_key_rec_t *k)
{
    pgf_ids_add(ctx, k->id);
}

static gh_key_rec_t key(const char *id, const char *kind, const char *ws, const char *by)
{
    gh_key_rec_t k = {.created_at = 1700000700};
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.kind, sizeof(k.kind), "%s", kind);
    snprintf(k.org_id, sizeof(k.org_id), "org_1");
    snprintf(k.workspace_id, sizeof(k.workspace_id), "%s", ws);
    snprintf(k.name, sizeof(k.name), "name of %s", id);
    snprintf(k.hint, sizeof(k.hint), "sk-...%s", id);
    snprintf(k.status, sizeof(k.status), "active");
    snprintf(k.created_by_type, sizeof(k.created_by_type), "user");
    snprintf(k.created_by_id, sizeof(k.created_by_id), "%s", by);
    return k;
}

/* Default, ws_a (acc_2 a workspace developer, acc_3 a workspace user), ws_b; keys: k1 in
 * Default, k2 in ws_a, k3 in ws_b, an admin key adm. */
static void add_keys(pgf_t *f)
{
    pgf_sql(f, "INSERT INTO workspaces (id, org_id, name, display_color, is_default, "
               "created_at) VALUES ('ws_default', 'org_1', 'Default', '#000000', true, now()), "
               "('ws_a', 'org_1', 'A', '#000000', false, now()), "
               "('ws_b', 'org_1', 'B', '#000000', false, now())");
    pgf_sql(f, "INSERT INTO workspace_members (workspace_id, account_id, org_id, role, "
               "created_at) VALUES ('ws_a', 'acc_2', 'org_1', 'workspace_developer', now()), "
               "('ws_a', 'acc_3', 'org_1', 'workspace_user', now())");
    const gh_key_rec_t keys[] = {
        key("k1", "api", "ws_default", "acc_1"),
        key("k2", "api", "ws_a", "acc_2"),
        key("adm", "admin", "", "acc_1"),
        key("k3", "api", "ws_b", "acc_1"),
    };
    const char *hashes[] = {"hash_k1", "hash_k2", "hash_adm", "hash_k3"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_int_equal(gh_store_key_insert(f->db, &keys[i], hashes[i]), GH_OK);
}

static const char *keys_with(pgf_t *f, const gh_key_filter_t *filter, pgf_ids_t *ids)
{
    memset(ids, 0, sizeof(*ids));
    bool more = true;
    gh_page_t page = {.limit = 10};
    assert_int_equal(gh_store_keys_list(f->db, "org_1", filter, &page, key_collect, ids, &more),
                     GH_OK);
    assert_false(more);
    return ids->s;
}

static void test_keys(void **state)
{
    pgf_t *f = *state;
    add_keys(f);
    /* The same hash twice; an API key without a workspace: conflicts. */
    gh_key_rec_t again = key("k4", "api", "ws_a", "acc_1");
    assert_int_equal(gh_store_key_insert(f->db, &again, "hash_k1"), GH_ECONFLICT);
    gh_key_rec_t loose = key("k5", "api", "", "acc_1");
    assert_int_equal(gh_store_key_insert(f->db, &loose, "hash_k5"), GH_ECONFLICT);

    pgf_ids_t ids;
    gh_key_filter_t all = {0};
    assert_string_equal(keys_with(f, &all, &ids), "k1,k2,adm,k3");
    gh_key_filter_t api = {.kind = "api"};
    assert_string_equal(keys_with(f, &api, &ids), "k1,k2,k3");
    gh_key_filter_t in_a = {.kind = "api", .workspace_id = "ws_a"};
    assert_string_equal(keys_with(f, &in_a, &ids), "k2");
    gh_key_filter_t by = {.created_by_id = "acc_1", .status = "active"};
    assert_string_equal(keys_with(f, &by, &ids), "k1,adm,k3");
    /* Access: an organization developer sees Default and its own workspaces; otherwise only
     * workspaces where the account is a workspace developer or admin. */
    gh_key_filter_t dev = {.kind = "api", .access_account_id = "acc_3", .access_developer = true};
    assert_string_equal(keys_with(f, &dev, &ids), "k1,k2");
    gh_key_filter_t plain = {.kind = "api", .access_account_id = "acc_3"};
    assert_string_equal(keys_with(f, &plain, &ids), "");
    gh_key_filter_t ws_dev = {.kind = "api", .access_account_id = "acc_2"};
    assert_string_equal(keys_with(f, &ws_dev, &ids), "k2");

    bool more = false;
    gh_page_t page = {.limit = 2, .after_id = "k1"};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(gh_store_keys_list(f->db, "org_1", &api, &page, key_collect, &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "k2,k3");
    assert_false(more);
    gh_page_t not_listed = {.limit = 2, .after_id = "adm"};
    assert_int_equal(
        gh_store_keys_list(f->db, "org_1", &api, &not_listed, key_collect, &ids, &more),
        GH_EINVAL);

    gh_key_rec_t k;
    assert_int_equal(gh_store_key_get(f->db, "org_1", "admin", "adm", &k), GH_OK);
    assert_string_equal(k.workspace_id, ""); /* NULL in the table */
    assert_string_equal(k.hint, "sk-...adm");
    assert_int_equal(k.created_at, 1700000700);
    assert_int_equal(k.last_used_at, 0);
    assert_int_equal(gh_store_key_get(f->db, "org_1", "api", "adm", &k), GH_ENOTFOUND);
    char v[32];
    pgf_value(f, "SELECT workspace_id FROM keys WHERE id = 'adm'", v, sizeof(v));
    assert_string_equal(v, "NULL");

    assert_int_equal(gh_store_key_touch(f->db, "k2", 1700000800), GH_OK);
    assert_int_equal(gh_store_key_update(f->db, "k2", "renamed", "inactive"), GH_OK);
    assert_int_equal(gh_store_key_by_hash(f->db, "hash_k2", &k), GH_OK);
    assert_string_equal(k.id, "k2");
    assert_string_equal(k.name, "renamed");
    assert_string_equal(k.status, "inactive");
    assert_string_equal(k.workspace_id, "ws_a");
    assert_int_equal(k.last_used_at, 1700000800);
    /* The usage writer's batch: several keys in one call, an unknown id skipped, the others
     * untouched. */
    const char *touched[] = {"k3", "no_such_key", "k2"};
    const int64_t at_s[] = {1700000900, 1700000901, 1700000902};
    assert_int_equal(gh_store_begin(f->db), GH_OK);
    assert_int_equal(gh_store_keys_touch(f->db, touched, at_s, 3), GH_OK);
    assert_int_equal(gh_store_keys_touch(f->db, touched, at_s, 0), GH_OK);
    assert_int_equal(gh_store_commit(f->db), GH_OK);
    assert_int_equal(gh_store_key_by_hash(f->db, "hash_k2", &k), GH_OK);
    assert_int_equal(k.last_used_at, 1700000902);
    assert_int_equal(gh_store_key_by_hash(f->db, "hash_k3", &k), GH_OK);
    assert_int_equal(k.last_used_at, 1700000900);
    assert_int_equal(gh_store_key_by_hash(f->db, "hash_k1", &k), GH_OK);
    assert_int_equal(k.last_used_at, 0);
    assert_int_equal(gh_store_key_update(f->db, "k2", "x", "lost"), GH_ECONFLICT);

    assert_int_equal(gh_store_key_set_secret(f->db, "k2", "hash_new", "sk-...new"), GH_OK);
    assert_int_equal(gh_store_key_by_hash(f->db, "hash_k2", &k), GH_ENOTFOUND);
    assert_int_equal(gh_store_key_by_hash(f->db, "hash_new", &k), GH_OK);
    assert_string_equal(k.hint, "sk-...new");
    assert_int_equal(gh_store_key_set_secret(f->db, "k_none", "h", "x"), GH_ENOTFOUND);
}

typedef struct {
    pgf_ids_t ids;
    char hashes[256];
    char statuses[256];
} hash_seen_t;

static void hash_collect(void *ctx, const gh_key_rec_t *k, const char *key_hash)
{
    hash_seen_t *s = ctx;
    pgf_ids_add(&s->ids, k->id);
    size_t n = strlen(s->hashes);
    snprintf(s->hashes + n, sizeof(s->hashes) - n, "%s%s", n ? "," : "", key_hash);
    n = strlen(s->statuses);
    snprintf(s->statuses + n, sizeof(s->statuses) - n, "%s%s", n ? "," : "", k->status);
}

static void test_keys_with_hash_and_workbench(void **state)
{
    pgf_t *f = *state;
    add_keys(f);
    pgf_sql(f, "UPDATE workspaces SET archived_at = now() WHERE id = 'ws_b'");
    hash_seen_t s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(gh_store_keys_with_hash(f->db, NULL, NULL, hash_collect, &s), GH_OK);
    assert_string_equal(s.ids.s, "k1,k2,k3"); /* API keys only */
    assert_string_equal(s.hashes, "hash_k1,hash_k2,hash_k3");
    /* A key of an archived workspace reads as archived. */
    assert_string_equal(s.statuses, "active,active,archived");
    memset(&s, 0, sizeof(s));
    assert_int_equal(gh_store_keys_with_hash(f->db, "ws_a", NULL, hash_collect, &s), GH_OK);
    assert_string_equal(s.ids.s, "k2");
    memset(&s, 0, sizeof(s));
    assert_int_equal(gh_store_keys_with_hash(f->db, NULL, "k3", hash_collect, &s), GH_OK);
    assert_string_equal(s.ids.s, "k3");

    char id[GH_ID_MAX] = "untouched";
    assert_int_equal(gh_store_workbench_key_get(f->db, "ws_a", id), GH_ENOTFOUND);
    assert_int_equal(gh_store_workbench_key_set(f->db, "ws_a", "k2"), GH_OK);
    assert_int_equal(gh_store_workbench_key_get(f->db, "ws_a", id), GH_OK);
    assert_string_equal(id, "k2");
    assert_int_equal(gh_store_workbench_key_set(f->db, "ws_a", "k1"), GH_OK); /* replaced */
    assert_int_equal(gh_store_workbench_key_get(f->db, "ws_a", id), GH_OK);
    assert_string_equal(id, "k1");
    assert_int_equal(gh_store_workbench_key_set(f->db, "ws_b", "k1"), GH_ECONFLICT); /* taken */
}

static void audit_collect(void *ctx, const gh_audit_event_t *e)
{
    pgf_ids_add(ctx, e->id);
}

static void add_audit(pgf_t *f, const char *id, const char *actor, const char *action)
{
    gh_audit_event_t e = {.created_at = 1700000900};
    snprintf(e.id, sizeof(e.id), "%s", id);
    snprintf(e.org_id, sizeof(e.org_id), "org_1");
    snprintf(e.actor_type, sizeof(e.actor_type), "user");
    snprintf(e.actor_id, sizeof(e.actor_id), "%s", actor);
    snprintf(e.actor_label, sizeof(e.actor_label), "label %s", actor);
    snprintf(e.action, sizeof(e.action), "%s", action);
    snprintf(e.target_type, sizeof(e.target_type), "key");
    snprintf(e.details, sizeof(e.details), "{\"n\":1}");
    /* target_id and ip left "": stored as "", not NULL, as SQLite does */
    assert_int_equal(gh_store_audit_insert(f->db, &e), GH_OK);
}

static void test_audit(void **state)
{
    pgf_t *f = *state;
    add_audit(f, "ev_1", "acc_1", "key.create");
    add_audit(f, "ev_2", "acc_2", "key.update");
    add_audit(f, "ev_3", "acc_1", "key.update");
    add_audit(f, "ev_4", "acc_1", "member.add");
    assert_int_equal(pgf_num(f, "SELECT count(*) FROM audit_log WHERE ip = '' AND "
                                "target_id = ''"),
                     4);

    pgf_ids_t ids = {""};
    bool more = true;
    gh_page_t page = {.limit = 10};
    assert_int_equal(
        gh_store_audit_list(f->db, "org_1", NULL, NULL, &page, audit_collect, &ids, &more),
        GH_OK);
    assert_string_equal(ids.s, "ev_4,ev_3,ev_2,ev_1"); /* newest first */
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(gh_store_audit_list(f->db, "org_1", "acc_1", "key.update", &page,
                                         audit_collect, &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "ev_3");
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(gh_store_audit_list(f->db, "org_1", NULL, "key.update", &page, audit_collect,
                                         &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "ev_3,ev_2");
    gh_page_t older = {.limit = 2, .after_id = "ev_4"};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(
        gh_store_audit_list(f->db, "org_1", NULL, NULL, &older, audit_collect, &ids, &more),
        GH_OK);
    assert_string_equal(ids.s, "ev_3,ev_2");
    assert_true(more);
    gh_page_t newer = {.limit = 2, .before_id = "ev_2"};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(
        gh_store_audit_list(f->db, "org_1", NULL, NULL, &newer, audit_collect, &ids, &more),
        GH_OK);
    assert_string_equal(ids.s, "ev_4,ev_3");
    assert_false(more);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keys, pgf_setup, pgf_teardown),
        cmocka_unit_test_setup_teardown(test_keys_with_hash_and_workbench, pgf_setup,
                                        pgf_teardown),
        cmocka_unit_test_setup_teardown(test_audit, pgf_setup, pgf_teardown),
    };
    return pgf_run_both(tests);
}
