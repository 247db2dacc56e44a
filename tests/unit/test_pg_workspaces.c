/* The PostgreSQL store's workspaces and workspace members (src/store/postgres/workspaces.c)
 * against a real PostgreSQL 15: the results, error codes, order and pagination the SQLite
 * backend gives. */
#include "pg_fixture.h"

static void ws_collect(void *ctx, const gh_workspace_t *w)
{
    pgf_ids_add(ctx, w->id);
}

static void wsm_collect(void *ctx, const gh_ws_member_t *m)
{
    pgf_ids_add(ctx, m->user_id);
}

static gh_workspace_t ws(const char *id, const char *name)
{
    gh_workspace_t w = {.created_at = 1700000500};
    snprintf(w.id, sizeof(w.id), "%s", id);
    snprintf(w.org_id, sizeof(w.org_id), "org_1");
    snprintf(w.name, sizeof(w.name), "%s", name);
    snprintf(w.display_color, sizeof(w.display_color), "#336699");
    return w;
}

/* Default (made as the organization's first workspace is) and two more. */
static void add_workspaces(pgf_t *f)
{
    pgf_sql(f, "INSERT INTO workspaces (id, org_id, name, display_color, is_default, "
               "created_at) VALUES ('ws_default', 'org_1', 'Default', '#000000', true, "
               "to_timestamp(1700000000))");
    for (int i = 1; i <= 3; i++)
        assert_int_equal(
            gh_store_membership_insert(f->db, "org_1", i == 1 ? "acc_1" : i == 2 ? "acc_2" : "acc_3",
                                       "user", 1700000000),
            GH_OK);
    gh_workspace_t a = ws("ws_a", "Alpha"), b = ws("ws_b", "Beta");
    assert_int_equal(gh_store_workspace_insert(f->db, &a), GH_OK);
    assert_int_equal(gh_store_workspace_insert(f->db, &b), GH_OK);
}

static const char *list(pgf_t *f, const char *member, bool archived, pgf_ids_t *ids)
{
    memset(ids, 0, sizeof(*ids));
    bool more = true;
    gh_page_t page = {.limit = 10};
    assert_int_equal(
        gh_store_workspaces_list(f->db, "org_1", member, archived, &page, ws_collect, ids, &more),
        GH_OK);
    assert_false(more);
    return ids->s;
}

static void test_workspaces(void **state)
{
    pgf_t *f = *state;
    add_workspaces(f);
    /* Names are unique in an organization regardless of case. */
    gh_workspace_t clash = ws("ws_c", "ALPHA");
    assert_int_equal(gh_store_workspace_insert(f->db, &clash), GH_ECONFLICT);

    assert_int_equal(gh_store_ws_member_insert(f->db, "org_1", "ws_a", "acc_2",
                                               "workspace_developer", 1700000600),
                     GH_OK);
    assert_int_equal(gh_store_ws_member_insert(f->db, "org_1", "ws_a", "acc_2", "workspace_user",
                                               1700000600),
                     GH_ECONFLICT);

    pgf_ids_t ids;
    assert_string_equal(list(f, NULL, false, &ids), "ws_default,ws_a,ws_b");
    assert_string_equal(list(f, "acc_2", false, &ids), "ws_default,ws_a");
    assert_string_equal(list(f, "acc_3", false, &ids), "ws_default");

    gh_workspace_t w;
    assert_int_equal(gh_store_workspace_get(f->db, "org_1", "ws_default", &w), GH_OK);
    assert_true(w.is_default);
    assert_int_equal(w.member_count, 3); /* Default: everyone in the organization */
    assert_int_equal(w.created_at, 1700000000);
    assert_int_equal(gh_store_workspace_get(f->db, "org_1", "ws_a", &w), GH_OK);
    assert_false(w.is_default);
    assert_string_equal(w.name, "Alpha");
    assert_string_equal(w.display_color, "#336699");
    assert_int_equal(w.member_count, 1);
    assert_int_equal(w.archived_at, 0);
    assert_int_equal(gh_store_workspace_get(f->db, "org_2", "ws_a", &w), GH_ENOTFOUND);

    gh_workspace_t renamed = ws("ws_b", "Gamma");
    snprintf(renamed.display_color, sizeof(renamed.display_color), "#abcdef");
    assert_int_equal(gh_store_workspace_update(f->db, &renamed), GH_OK);
    assert_int_equal(gh_store_workspace_get(f->db, "org_1", "ws_b", &w), GH_OK);
    assert_string_equal(w.name, "Gamma");
    assert_string_equal(w.display_color, "#abcdef");
    gh_workspace_t taken = ws("ws_b", "alpha");
    assert_int_equal(gh_store_workspace_update(f->db, &taken), GH_ECONFLICT);

    /* Archiving hides the workspace and archives its keys, together. */
    pgf_sql(f, "INSERT INTO keys (id, kind, org_id, workspace_id, name, key_hash, hint, status, "
               "created_by_type, created_by_id, created_at) VALUES ('key_1', 'api', 'org_1', "
               "'ws_b', 'k', 'h1', 'sk-...', 'active', 'user', 'acc_1', now())");
    int count = -1;
    assert_int_equal(gh_store_workspace_count(f->db, "org_1", &count), GH_OK);
    assert_int_equal(count, 3);
    assert_int_equal(gh_store_workspace_archive(f->db, "ws_b", 1700000900), GH_OK);
    assert_false(gh_store_in_transaction(f->db));
    assert_int_equal(gh_store_workspace_count(f->db, "org_1", &count), GH_OK);
    assert_int_equal(count, 2);
    char v[32];
    pgf_value(f, "SELECT status FROM keys WHERE id = 'key_1'", v, sizeof(v));
    assert_string_equal(v, "archived");
    assert_string_equal(list(f, NULL, false, &ids), "ws_default,ws_a");
    assert_string_equal(list(f, NULL, true, &ids), "ws_default,ws_a,ws_b");
    assert_int_equal(gh_store_workspace_get(f->db, "org_1", "ws_b", &w), GH_OK);
    assert_int_equal(w.archived_at, 1700000900);

    /* Pages. */
    bool more = false;
    gh_page_t page = {.limit = 1, .after_id = "ws_default"};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(
        gh_store_workspaces_list(f->db, "org_1", NULL, true, &page, ws_collect, &ids, &more),
        GH_OK);
    assert_string_equal(ids.s, "ws_a");
    assert_true(more);
    gh_page_t bad = {.limit = 1, .after_id = "ws_b"}; /* archived: not in this list */
    assert_int_equal(
        gh_store_workspaces_list(f->db, "org_1", NULL, false, &bad, ws_collect, &ids, &more),
        GH_EINVAL);
}

static void test_ws_members(void **state)
{
    pgf_t *f = *state;
    add_workspaces(f);
    assert_int_equal(
        gh_store_ws_member_insert(f->db, "org_1", "ws_a", "acc_3", "workspace_user", 1), GH_OK);
    assert_int_equal(
        gh_store_ws_member_insert(f->db, "org_1", "ws_a", "acc_1", "workspace_admin", 2), GH_OK);
    assert_int_equal(
        gh_store_ws_member_insert(f->db, "org_1", "ws_a", "acc_2", "workspace_boss", 3),
        GH_ECONFLICT); /* not a role */

    pgf_ids_t ids = {""};
    bool more = true;
    gh_page_t page = {.limit = 10};
    assert_int_equal(gh_store_ws_members_list(f->db, "ws_a", &page, wsm_collect, &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "acc_3,acc_1"); /* the order they were added */
    assert_false(more);
    gh_page_t back = {.limit = 5, .before_id = "acc_1"};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(gh_store_ws_members_list(f->db, "ws_a", &back, wsm_collect, &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "acc_3");
    assert_false(more);

    gh_ws_member_t m;
    assert_int_equal(gh_store_ws_member_get(f->db, "ws_a", "acc_1", &m), GH_OK);
    assert_string_equal(m.role, "workspace_admin");
    assert_string_equal(m.email, "a@x.test");
    assert_string_equal(m.name, "Ann");
    assert_string_equal(m.workspace_id, "ws_a");
    assert_int_equal(gh_store_ws_member_get(f->db, "ws_a", "acc_2", &m), GH_ENOTFOUND);

    assert_int_equal(gh_store_ws_member_set_role(f->db, "ws_a", "acc_3", "workspace_developer"),
                     GH_OK);
    assert_int_equal(gh_store_ws_member_get(f->db, "ws_a", "acc_3", &m), GH_OK);
    assert_string_equal(m.role, "workspace_developer");
    assert_int_equal(gh_store_ws_member_set_role(f->db, "ws_a", "acc_2", "workspace_user"),
                     GH_ENOTFOUND);
    assert_int_equal(gh_store_ws_member_delete(f->db, "ws_a", "acc_3"), GH_OK);
    assert_int_equal(gh_store_ws_member_delete(f->db, "ws_a", "acc_3"), GH_ENOTFOUND);
    assert_int_equal(pgf_num(f, "SELECT count(*) FROM workspace_members"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_workspaces, pgf_setup, pgf_teardown),
        cmocka_unit_test_setup_teardown(test_ws_members, pgf_setup, pgf_teardown),
    };
    return pgf_run_both(tests);
}
