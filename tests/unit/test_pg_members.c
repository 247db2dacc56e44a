/* The PostgreSQL store's organization members and invitations (src/store/postgres/members.c)
 * against a real PostgreSQL 15: the results, error codes, order and pagination the SQLite
 * backend gives. */
#include "pg_fixture.h"

static void user_collect(void *ctx, const gh_org_user_t *u)
{
    pgf_ids_add(ctx, u->id);
}

static void add_members(pgf_t *f)
{
    assert_int_equal(gh_store_membership_insert(f->db, "org_1", "acc_1", "admin", 1700000100),
                     GH_OK);
    assert_int_equal(gh_store_membership_insert(f->db, "org_1", "acc_2", "user", 1700000200),
                     GH_OK);
    assert_int_equal(
        gh_store_membership_insert(f->db, "org_1", "acc_3", "developer", 1700000300), GH_OK);
}

static void test_members_list_and_pages(void **state)
{
    pgf_t *f = *state;
    add_members(f);
    pgf_ids_t ids = {""};
    bool more = true;
    gh_page_t all = {.limit = 100};
    assert_int_equal(gh_store_users_list(f->db, "org_1", NULL, &all, user_collect, &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "acc_1,acc_2,acc_3"); /* the order they joined */
    assert_false(more);

    gh_page_t first = {.limit = 2};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(gh_store_users_list(f->db, "org_1", NULL, &first, user_collect, &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "acc_1,acc_2");
    assert_true(more);
    gh_page_t next = {.limit = 2, .after_id = "acc_2"};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(gh_store_users_list(f->db, "org_1", NULL, &next, user_collect, &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "acc_3");
    assert_false(more);
    gh_page_t back = {.limit = 1, .before_id = "acc_3"};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(gh_store_users_list(f->db, "org_1", NULL, &back, user_collect, &ids, &more),
                     GH_OK);
    assert_string_equal(ids.s, "acc_2");
    assert_true(more);
    gh_page_t stranger = {.limit = 2, .after_id = "acc_nobody"};
    assert_int_equal(
        gh_store_users_list(f->db, "org_1", NULL, &stranger, user_collect, &ids, &more),
        GH_EINVAL);

    memset(&ids, 0, sizeof(ids));
    assert_int_equal(
        gh_store_users_list(f->db, "org_1", "b@x.test", &all, user_collect, &ids, &more), GH_OK);
    assert_string_equal(ids.s, "acc_2");

    gh_org_user_t u;
    assert_int_equal(gh_store_user_get(f->db, "org_1", "acc_1", &u), GH_OK);
    assert_string_equal(u.email, "a@x.test");
    assert_string_equal(u.name, "Ann");
    assert_string_equal(u.role, "admin");
    assert_int_equal(u.added_at, 1700000100);
    assert_int_equal(gh_store_user_get(f->db, "org_1", "acc_2", &u), GH_OK);
    assert_string_equal(u.name, ""); /* NULL reads as "" */
    assert_int_equal(gh_store_user_get(f->db, "org_1", "acc_nobody", &u), GH_ENOTFOUND);
}

static void test_members_write(void **state)
{
    pgf_t *f = *state;
    add_members(f);
    /* A second membership, an unknown role: constraint violations are conflicts. */
    assert_int_equal(gh_store_membership_insert(f->db, "org_1", "acc_1", "user", 1), GH_ECONFLICT);
    assert_int_equal(gh_store_membership_insert(f->db, "org_1", "acc_2", "owner", 1),
                     GH_ECONFLICT);
    int admins = -1;
    assert_int_equal(gh_store_admin_count(f->db, "org_1", &admins), GH_OK);
    assert_int_equal(admins, 1);
    assert_int_equal(gh_store_membership_set_role(f->db, "org_1", "acc_2", "admin"), GH_OK);
    assert_int_equal(gh_store_admin_count(f->db, "org_1", &admins), GH_OK);
    assert_int_equal(admins, 2);
    assert_int_equal(gh_store_membership_set_role(f->db, "org_1", "acc_nobody", "admin"),
                     GH_ENOTFOUND);

    /* Deleting a membership takes the workspace memberships in the organization along and
     * leaves sessions pointing at it pointing nowhere, in one transaction. */
    pgf_sql(f, "INSERT INTO workspaces (id, org_id, name, display_color, created_at) VALUES "
               "('ws_1', 'org_1', 'One', '#112233', now())");
    pgf_sql(f, "INSERT INTO workspace_members (workspace_id, account_id, org_id, role, "
               "created_at) VALUES ('ws_1', 'acc_3', 'org_1', 'workspace_user', now())");
    pgf_sql(f, "INSERT INTO sessions (id_hash, account_id, csrf_token, current_org_id, "
               "created_at, expires_at, ip, user_agent) VALUES ('s1', 'acc_3', 'c', 'org_1', "
               "now(), to_timestamp(1800000000), '127.0.0.1', 'ua')");
    assert_int_equal(gh_store_membership_delete(f->db, "org_1", "acc_3"), GH_OK);
    assert_int_equal(pgf_num(f, "SELECT count(*) FROM workspace_members"), 0);
    assert_int_equal(pgf_num(f, "SELECT count(*) FROM memberships WHERE account_id = 'acc_3'"),
                     0);
    char v[64];
    pgf_value(f, "SELECT current_org_id FROM sessions", v, sizeof(v));
    assert_string_equal(v, "NULL");
    assert_int_equal(gh_store_membership_delete(f->db, "org_1", "acc_3"), GH_ENOTFOUND);
    assert_false(gh_store_in_transaction(f->db));
}

static void invite_collect(void *ctx, const gh_invite_t *inv)
{
    pgf_ids_add(ctx, inv->id);
}

static void add_invite(pgf_t *f, const char *id, const char *email, int64_t expires_at)
{
    gh_invite_t inv = {.invited_at = 1700000000, .expires_at = expires_at};
    snprintf(inv.id, sizeof(inv.id), "%s", id);
    snprintf(inv.org_id, sizeof(inv.org_id), "org_1");
    snprintf(inv.email, sizeof(inv.email), "%s", email);
    snprintf(inv.role, sizeof(inv.role), "developer");
    char hash[64];
    snprintf(hash, sizeof(hash), "hash_%s", id);
    assert_int_equal(gh_store_invite_insert(f->db, &inv, hash), GH_OK);
}

static const char *invites_with(pgf_t *f, const char *status, int64_t now, pgf_ids_t *ids)
{
    memset(ids, 0, sizeof(*ids));
    bool more = true;
    gh_page_t page = {.limit = 10};
    assert_int_equal(
        gh_store_invites_list(f->db, "org_1", status, now, &page, invite_collect, ids, &more),
        GH_OK);
    assert_false(more);
    return ids->s;
}

static void test_invites(void **state)
{
    pgf_t *f = *state;
    const int64_t now = 1700001000;
    add_invite(f, "inv_1", "p@x.test", now + 100); /* pending */
    add_invite(f, "inv_2", "q@x.test", now);       /* expired exactly now */
    add_invite(f, "inv_3", "r@x.test", now + 100); /* accepted below */
    add_invite(f, "inv_4", "s@x.test", now + 100); /* deleted below */
    /* A second open invite for an address is a conflict. */
    gh_invite_t dup = {.invited_at = 1, .expires_at = 2};
    snprintf(dup.id, sizeof(dup.id), "inv_5");
    snprintf(dup.org_id, sizeof(dup.org_id), "org_1");
    snprintf(dup.email, sizeof(dup.email), "p@x.test");
    snprintf(dup.role, sizeof(dup.role), "user");
    assert_int_equal(gh_store_invite_insert(f->db, &dup, "hash_5"), GH_ECONFLICT);

    assert_int_equal(gh_store_invite_mark(f->db, "inv_3", true, now + 1), GH_OK);
    assert_int_equal(gh_store_invite_mark(f->db, "inv_4", false, now + 2), GH_OK);
    /* Someone got there first. */
    assert_int_equal(gh_store_invite_mark(f->db, "inv_3", false, now + 3), GH_ECONFLICT);

    pgf_ids_t ids;
    assert_string_equal(invites_with(f, NULL, now, &ids), "inv_1,inv_2,inv_3,inv_4");
    assert_string_equal(invites_with(f, "pending", now, &ids), "inv_1");
    assert_string_equal(invites_with(f, "expired", now, &ids), "inv_2");
    assert_string_equal(invites_with(f, "accepted", now, &ids), "inv_3");
    assert_string_equal(invites_with(f, "deleted", now, &ids), "inv_4");

    gh_invite_t inv;
    assert_int_equal(gh_store_invite_get(f->db, "org_1", "inv_3", &inv), GH_OK);
    assert_string_equal(inv.email, "r@x.test");
    assert_string_equal(inv.role, "developer");
    assert_int_equal(inv.invited_at, 1700000000);
    assert_int_equal(inv.expires_at, now + 100);
    assert_int_equal(inv.accepted_at, now + 1);
    assert_int_equal(inv.deleted_at, 0);
    assert_int_equal(gh_store_invite_get(f->db, "org_2", "inv_3", &inv), GH_ENOTFOUND);
    assert_int_equal(gh_store_invite_by_token(f->db, "hash_inv_4", &inv), GH_OK);
    assert_string_equal(inv.id, "inv_4");
    assert_int_equal(inv.deleted_at, now + 2);
    assert_int_equal(gh_store_invite_open_for(f->db, "org_1", "p@x.test", &inv), GH_OK);
    assert_string_equal(inv.id, "inv_1");
    assert_int_equal(gh_store_invite_open_for(f->db, "org_1", "r@x.test", &inv), GH_ENOTFOUND);

    /* Renewing: a new token for an open invite; a closed one cannot be renewed. */
    assert_int_equal(gh_store_invite_renew(f->db, "inv_2", "hash_new", now + 500), GH_OK);
    assert_int_equal(gh_store_invite_by_token(f->db, "hash_new", &inv), GH_OK);
    assert_string_equal(inv.id, "inv_2");
    assert_int_equal(inv.expires_at, now + 500);
    assert_int_equal(gh_store_invite_by_token(f->db, "hash_inv_2", &inv), GH_ENOTFOUND);
    assert_int_equal(gh_store_invite_renew(f->db, "inv_3", "hash_x", now + 500), GH_ECONFLICT);

    /* Pages of the full list, newest never first. */
    bool more = false;
    gh_page_t page = {.limit = 3};
    memset(&ids, 0, sizeof(ids));
    assert_int_equal(
        gh_store_invites_list(f->db, "org_1", NULL, now, &page, invite_collect, &ids, &more),
        GH_OK);
    assert_string_equal(ids.s, "inv_1,inv_2,inv_3");
    assert_true(more);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_members_list_and_pages, pgf_setup, pgf_teardown),
        cmocka_unit_test_setup_teardown(test_members_write, pgf_setup, pgf_teardown),
        cmocka_unit_test_setup_teardown(test_invites, pgf_setup, pgf_teardown),
    };
    return pgf_run_both(tests);
}
