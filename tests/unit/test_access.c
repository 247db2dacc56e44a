/* Workspace access rules for every organization role and workspace role, and keyset
 * pagination (forward, backward, newest first, bad cursors), on a real SQLite file. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/workspaces.h"
#include "lib/crypto.h"
#include "store/store.h"

static int64_t fake_now = 1800000000;
static int64_t clock_fn(void) { return fake_now++; }

typedef struct {
    char dir[64];
    gh_config_t cfg;
    gh_app_t app;
    gh_db_t *db;
    char org[GH_ID_MAX], default_ws[GH_ID_MAX], ws[GH_ID_MAX];
    char users[4][GH_ID_MAX]; /* user, developer, billing, admin */
} world_t;

static void make_account(world_t *w, const char *email, char id[GH_ID_MAX])
{
    gh_account_t a = {0};
    gh_id_new(a.id, "user");
    snprintf(a.email, sizeof(a.email), "%s", email);
    a.created_at = fake_now;
    assert_int_equal(gh_store_account_insert(w->db, &a), GH_OK);
    memcpy(id, a.id, GH_ID_MAX);
}

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    char err[256];
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-access-XXXXXX");
    if (!mkdtemp(w->dir) || gh_crypto_init())
        return -1;
    gh_config_defaults(&w->cfg);
    snprintf(w->cfg.data_dir, sizeof(w->cfg.data_dir), "%s", w->dir);
    if (gh_config_finish(&w->cfg, err, sizeof(err)))
        return -1;
    w->app.cfg = &w->cfg;
    w->app.now = clock_fn;
    if (gh_store_open(&w->app.store, w->cfg.db_path, err, sizeof(err)))
        return -1;
    w->db = gh_store_db(w->app.store);
    static const char *const roles[] = {"user", "developer", "billing", "admin"};
    char admin[GH_ID_MAX];
    make_account(w, "owner@example.com", admin);
    gh_id_new(w->org, "org");
    gh_id_new(w->default_ws, "wrkspc");
    if (gh_store_org_create(w->db, w->org, "Acme", admin, w->default_ws, gh_ws_palette[0], 1))
        return -1;
    for (int i = 0; i < 4; i++) {
        char email[64];
        snprintf(email, sizeof(email), "%s@example.com", roles[i]);
        make_account(w, email, w->users[i]);
        if (gh_store_membership_insert(w->db, w->org, w->users[i], roles[i], 2))
            return -1;
    }
    gh_workspace_t ws = {0};
    gh_id_new(ws.id, "wrkspc");
    snprintf(ws.org_id, sizeof(ws.org_id), "%s", w->org);
    snprintf(ws.name, sizeof(ws.name), "Research");
    snprintf(ws.display_color, sizeof(ws.display_color), "#D97757");
    if (gh_store_workspace_insert(w->db, &ws))
        return -1;
    memcpy(w->ws, ws.id, GH_ID_MAX);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;
    gh_store_close(w->app.store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    int rc = system(cmd);
    free(w);
    return rc == 0 ? 0 : -1;
}

static gh_actor_t actor(world_t *w, int who, gh_role_t role)
{
    gh_actor_t a = {.kind = GH_ACTOR_USER, .role = role};
    snprintf(a.id, sizeof(a.id), "%s", w->users[who]);
    snprintf(a.org_id, sizeof(a.org_id), "%s", w->org);
    return a;
}

/* reach / manage_members / manage_keys for (org role, workspace role) in a plain workspace. */
static void workspace_access_table(void **state)
{
    world_t *w = *state;
    gh_workspace_t ws, def;
    assert_int_equal(gh_store_workspace_get(w->db, w->org, w->ws, &ws), GH_OK);
    assert_int_equal(gh_store_workspace_get(w->db, w->org, w->default_ws, &def), GH_OK);
    assert_true(def.is_default);

    static const struct {
        int who;
        gh_role_t role;
        const char *ws_role; /* NULL: not a member of the workspace */
        bool reach, members, keys, default_keys;
    } rows[] = {
        {0, GH_ROLE_USER, NULL, false, false, false, false},
        {0, GH_ROLE_USER, "workspace_user", true, false, false, false},
        {0, GH_ROLE_USER, "workspace_developer", true, false, true, false},
        {0, GH_ROLE_USER, "workspace_admin", true, true, true, false},
        {1, GH_ROLE_DEVELOPER, NULL, false, false, false, true},
        {1, GH_ROLE_DEVELOPER, "workspace_user", true, false, true, true},
        {1, GH_ROLE_DEVELOPER, "workspace_admin", true, true, true, true},
        {2, GH_ROLE_BILLING, NULL, true, false, false, false},
        {2, GH_ROLE_BILLING, "workspace_billing", true, false, false, false},
        {3, GH_ROLE_ADMIN, NULL, true, true, true, true},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        gh_actor_t a = actor(w, rows[i].who, rows[i].role);
        gh_store_ws_member_delete(w->db, w->ws, a.id);
        if (rows[i].ws_role)
            assert_int_equal(gh_store_ws_member_insert(w->db, w->org, w->ws, a.id,
                                                       rows[i].ws_role, 3),
                             GH_OK);
        gh_ws_access_t acc, dacc;
        assert_int_equal(gh_ws_access(w->db, &a, &ws, &acc), GH_OK);
        assert_int_equal(gh_ws_access(w->db, &a, &def, &dacc), GH_OK);
        if (acc.reach != rows[i].reach || acc.manage_members != rows[i].members ||
            acc.manage_keys != rows[i].keys || dacc.manage_keys != rows[i].default_keys ||
            !dacc.reach)
            fail_msg("row %zu (%s, %s): reach %d members %d keys %d default keys %d", i,
                     gh_role_name(rows[i].role), rows[i].ws_role ? rows[i].ws_role : "-",
                     acc.reach, acc.manage_members, acc.manage_keys, dacc.manage_keys);
        assert_string_equal(acc.ws_role, rows[i].ws_role ? rows[i].ws_role : "");
    }
    /* An admin key acts as an admin. */
    gh_actor_t key = {.kind = GH_ACTOR_ADMIN_KEY, .role = GH_ROLE_ADMIN};
    snprintf(key.id, sizeof(key.id), "adminkey_01AAAAAAAAAAAAAAAAAAAAAA");
    snprintf(key.org_id, sizeof(key.org_id), "%s", w->org);
    gh_ws_access_t acc;
    assert_int_equal(gh_ws_access(w->db, &key, &ws, &acc), GH_OK);
    assert_true(acc.reach && acc.manage_members && acc.manage_keys);
}

typedef struct {
    char ids[32][GH_ID_MAX];
    int n;
} collected_t;

static void collect(void *ctx, const gh_workspace_t *ws)
{
    collected_t *c = ctx;
    snprintf(c->ids[c->n++], GH_ID_MAX, "%s", ws->id);
}

static void collect_event(void *ctx, const gh_audit_event_t *e)
{
    collected_t *c = ctx;
    snprintf(c->ids[c->n++], GH_ID_MAX, "%s", e->id);
}

static void pagination_cursors(void **state)
{
    world_t *w = *state;
    /* Default and Research exist; add 5 more: 7 in creation order. */
    char all[7][GH_ID_MAX];
    memcpy(all[0], w->default_ws, GH_ID_MAX);
    memcpy(all[1], w->ws, GH_ID_MAX);
    for (int i = 2; i < 7; i++) {
        gh_workspace_t ws = {0};
        gh_id_new(ws.id, "wrkspc");
        snprintf(ws.org_id, sizeof(ws.org_id), "%s", w->org);
        snprintf(ws.name, sizeof(ws.name), "ws%d", i);
        snprintf(ws.display_color, sizeof(ws.display_color), "#3F9A6E");
        assert_int_equal(gh_store_workspace_insert(w->db, &ws), GH_OK);
        memcpy(all[i], ws.id, GH_ID_MAX);
    }
    collected_t c = {0};
    bool more = false;
    gh_page_t p = {.limit = 3};
    assert_int_equal(gh_store_workspaces_list(w->db, w->org, NULL, false, &p, collect, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 3);
    assert_true(more);
    for (int i = 0; i < 3; i++)
        assert_string_equal(c.ids[i], all[i]);

    /* Forward from the third: 3, 4, 5 and more after. */
    memset(&c, 0, sizeof(c));
    p.after_id = all[2];
    assert_int_equal(gh_store_workspaces_list(w->db, w->org, NULL, false, &p, collect, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 3);
    assert_true(more);
    assert_string_equal(c.ids[0], all[3]);
    assert_string_equal(c.ids[2], all[5]);

    /* The last page. */
    memset(&c, 0, sizeof(c));
    p.after_id = all[5];
    assert_int_equal(gh_store_workspaces_list(w->db, w->org, NULL, false, &p, collect, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 1);
    assert_false(more);
    assert_string_equal(c.ids[0], all[6]);

    /* Backward from the sixth: 2, 3, 4 in list order, with more before. */
    memset(&c, 0, sizeof(c));
    p.after_id = NULL;
    p.before_id = all[5];
    assert_int_equal(gh_store_workspaces_list(w->db, w->org, NULL, false, &p, collect, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 3);
    assert_true(more);
    assert_string_equal(c.ids[0], all[2]);
    assert_string_equal(c.ids[2], all[4]);

    /* Backward from the second: only the first, nothing more before it. */
    memset(&c, 0, sizeof(c));
    p.before_id = all[1];
    assert_int_equal(gh_store_workspaces_list(w->db, w->org, NULL, false, &p, collect, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 1);
    assert_false(more);
    assert_string_equal(c.ids[0], all[0]);

    /* A cursor from another list, or made up, is refused. */
    p.before_id = "wrkspc_01ZZZZZZZZZZZZZZZZZZZZZZ";
    assert_int_equal(gh_store_workspaces_list(w->db, w->org, NULL, false, &p, collect, &c, &more),
                     GH_EINVAL);
    p.before_id = NULL;
    p.after_id = w->users[0];
    assert_int_equal(gh_store_workspaces_list(w->db, w->org, NULL, false, &p, collect, &c, &more),
                     GH_EINVAL);

    /* A member-limited list: Default plus the workspaces the account belongs to. */
    assert_int_equal(gh_store_ws_member_insert(w->db, w->org, all[4], w->users[0],
                                               "workspace_user", 5),
                     GH_OK);
    memset(&c, 0, sizeof(c));
    gh_page_t all_page = {.limit = 100};
    assert_int_equal(gh_store_workspaces_list(w->db, w->org, w->users[0], false, &all_page,
                                              collect, &c, &more),
                     GH_OK);
    bool saw_default = false, saw_four = false;
    for (int i = 0; i < c.n; i++) {
        saw_default |= !strcmp(c.ids[i], all[0]);
        saw_four |= !strcmp(c.ids[i], all[4]);
        assert_true(!strcmp(c.ids[i], all[0]) || !strcmp(c.ids[i], all[4]) ||
                    !strcmp(c.ids[i], w->ws)); /* w->ws only if the table test left it */
    }
    assert_true(saw_default && saw_four);
}

static void newest_first_lists(void **state)
{
    world_t *w = *state;
    char ids[5][GH_ID_MAX];
    for (int i = 0; i < 5; i++) {
        gh_audit_event_t e = {0};
        gh_id_new(e.id, "audit");
        memcpy(ids[i], e.id, GH_ID_MAX);
        snprintf(e.org_id, sizeof(e.org_id), "%s", w->org);
        e.created_at = fake_now++;
        snprintf(e.actor_type, sizeof(e.actor_type), "user");
        snprintf(e.actor_id, sizeof(e.actor_id), "%s", w->users[3]);
        snprintf(e.action, sizeof(e.action), i % 2 ? "workspace.created" : "invite.created");
        snprintf(e.target_type, sizeof(e.target_type), "workspace");
        snprintf(e.target_id, sizeof(e.target_id), "%s", w->ws);
        snprintf(e.details, sizeof(e.details), "{}");
        snprintf(e.ip, sizeof(e.ip), "127.0.0.1");
        assert_int_equal(gh_store_audit_insert(w->db, &e), GH_OK);
    }
    collected_t c = {0};
    bool more;
    gh_page_t p = {.limit = 2};
    assert_int_equal(gh_store_audit_list(w->db, w->org, NULL, NULL, &p, collect_event, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 2);
    assert_true(more);
    assert_string_equal(c.ids[0], ids[4]);
    assert_string_equal(c.ids[1], ids[3]);
    memset(&c, 0, sizeof(c));
    p.after_id = ids[3];
    assert_int_equal(gh_store_audit_list(w->db, w->org, NULL, NULL, &p, collect_event, &c, &more),
                     GH_OK);
    assert_string_equal(c.ids[0], ids[2]);
    assert_string_equal(c.ids[1], ids[1]);
    assert_true(more);
    memset(&c, 0, sizeof(c));
    p.after_id = NULL;
    /* The page just before ids[1] in the list [4 3 2 1 0] is [3 2], with 4 still before it. */
    p.before_id = ids[1];
    assert_int_equal(gh_store_audit_list(w->db, w->org, NULL, NULL, &p, collect_event, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 2);
    assert_true(more);
    assert_string_equal(c.ids[0], ids[3]);
    assert_string_equal(c.ids[1], ids[2]);
    memset(&c, 0, sizeof(c));
    p.before_id = ids[3];
    assert_int_equal(gh_store_audit_list(w->db, w->org, NULL, NULL, &p, collect_event, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 1);
    assert_false(more);
    assert_string_equal(c.ids[0], ids[4]);
    /* Filtered by action. */
    memset(&c, 0, sizeof(c));
    gh_page_t all = {.limit = 10};
    assert_int_equal(gh_store_audit_list(w->db, w->org, NULL, "workspace.created", &all,
                                         collect_event, &c, &more),
                     GH_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], ids[3]);
    assert_string_equal(c.ids[1], ids[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(workspace_access_table),
        cmocka_unit_test(pagination_cursors),
        cmocka_unit_test(newest_first_lists),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
