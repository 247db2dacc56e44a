/* Sign-in links, sessions and onboarding through the core layer, on a real SQLite file in a
 * temporary folder, with an injected clock so expiry is tested without waiting. */
#include "unit.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/auth.h"
#include "core/actor.h"
#include "core/org.h"
#include "lib/crypto.h"
#include "store/store.h"

static int64_t fake_now = 1800000000;
static int64_t clock_fn(void) { return fake_now; }

typedef struct {
    char dir[64];
    gh_config_t cfg;
    gh_app_t app;
} world_t;

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    char err[256];
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-auth-XXXXXX");
    if (!mkdtemp(w->dir) || gh_crypto_init())
        return -1;
    gh_config_defaults(&w->cfg);
    snprintf(w->cfg.data_dir, sizeof(w->cfg.data_dir), "%s", w->dir);
    snprintf(w->cfg.public_url, sizeof(w->cfg.public_url), "https://console.example.com");
    w->cfg.link_limit_per_email = 3;
    if (gh_config_finish(&w->cfg, err, sizeof(err)))
        return -1;
    w->app.cfg = &w->cfg;
    w->app.now = clock_fn;
    if (gh_store_open(&w->app.store, w->cfg.db_path, err, sizeof(err)) ||
        gh_mailer_new(&w->app.mailer, &w->cfg, err, sizeof(err)) ||
        gh_throttle_new(&w->app.throttle))
        return -1;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;
    gh_store_close(w->app.store);
    gh_mailer_free(w->app.mailer);
    gh_throttle_free(w->app.throttle);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    if (system(cmd) != 0)
        return -1;
    free(w);
    return 0;
}

/* The token from the newest mail in the outbox. */
static void last_token(world_t *w, char token[GH_SECRET_MAX])
{
    DIR *d = opendir(w->cfg.outbox_dir);
    assert_non_null(d);
    char newest[256] = "";
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".eml") && strcmp(e->d_name, newest) > 0)
            snprintf(newest, sizeof(newest), "%s", e->d_name);
    closedir(d);
    static char buf[65536];
    char path[1400];
    snprintf(path, sizeof(path), "%s/%s", w->cfg.outbox_dir, newest);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    /* The text part is quoted-printable (it holds a non-ASCII dash): undo the soft line
     * breaks and the "=3D" that stands for '='. */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(buf + i, "=\r\n", 3)) {
            i += 2;
        } else if (!strncmp(buf + i, "=3D", 3)) {
            buf[o++] = '=';
            i += 2;
        } else {
            buf[o++] = buf[i];
        }
    }
    buf[o] = '\0';
    const char *p = strstr(buf, "https://console.example.com/auth/verify?token=");
    assert_non_null(p);
    p += strlen("https://console.example.com/auth/verify?token=");
    memcpy(token, p, GH_SECRET_CHARS);
    token[GH_SECRET_CHARS] = '\0';
}

static void link_signs_in_once(void **state)
{
    world_t *w = *state;
    char msg[256], token[GH_SECRET_MAX];
    int retry;
    assert_int_equal(gh_auth_request_link(&w->app, "Grace@Example.com", "10.0.0.1", &retry, msg,
                                          sizeof(msg)),
                     GH_OK);
    last_token(w, token);
    gh_login_t login;
    assert_int_equal(gh_auth_open_link(&w->app, token, "10.0.0.1", "ua", NULL, &login), GH_OK);
    assert_true(login.new_account);
    assert_true(gh_id_valid(login.account_id, "user"));

    gh_session_t s;
    gh_account_t a;
    assert_int_equal(gh_auth_session(&w->app, login.session_secret, &s, &a), GH_OK);
    assert_string_equal(a.email, "grace@example.com");
    assert_false(gh_auth_onboarded(&a));
    assert_true(gh_secret_valid(s.csrf_token));

    /* Used once: the second opening is refused and starts nothing. */
    gh_login_t again;
    assert_int_equal(gh_auth_open_link(&w->app, token, "10.0.0.1", "ua", NULL, &again), GH_ECONFLICT);
    assert_int_equal(gh_auth_open_link(&w->app, "garbage", "10.0.0.1", "ua", NULL, &again),
                     GH_ENOTFOUND);

    /* Signing in again reaches the same account. */
    assert_int_equal(gh_auth_request_link(&w->app, "grace@example.com", "10.0.0.1", &retry, msg,
                                          sizeof(msg)),
                     GH_OK);
    last_token(w, token);
    assert_int_equal(gh_auth_open_link(&w->app, token, "10.0.0.1", "ua", NULL, &again), GH_OK);
    assert_false(again.new_account);
    assert_string_equal(again.account_id, login.account_id);

    /* Sign-out revokes. */
    assert_int_equal(gh_auth_logout(&w->app, &s), GH_OK);
    assert_int_equal(gh_auth_session(&w->app, login.session_secret, &s, &a), GH_EAUTH);
}

static void links_and_sessions_expire(void **state)
{
    world_t *w = *state;
    char msg[256], token[GH_SECRET_MAX];
    int retry;
    assert_int_equal(gh_auth_request_link(&w->app, "late@example.com", "10.0.0.2", &retry, msg,
                                          sizeof(msg)),
                     GH_OK);
    last_token(w, token);
    fake_now += w->cfg.link_ttl_s; /* exactly at expiry: no longer valid */
    gh_login_t login;
    assert_int_equal(gh_auth_open_link(&w->app, token, "10.0.0.2", "ua", NULL, &login), GH_EEXPIRED);

    assert_int_equal(gh_auth_request_link(&w->app, "late@example.com", "10.0.0.2", &retry, msg,
                                          sizeof(msg)),
                     GH_OK);
    last_token(w, token);
    fake_now += w->cfg.link_ttl_s - 1; /* one second before expiry: still valid */
    assert_int_equal(gh_auth_open_link(&w->app, token, "10.0.0.2", "ua", NULL, &login), GH_OK);

    gh_session_t s;
    gh_account_t a;
    assert_int_equal(gh_auth_session(&w->app, login.session_secret, &s, &a), GH_OK);
    fake_now += w->cfg.session_ttl_s;
    assert_int_equal(gh_auth_session(&w->app, login.session_secret, &s, &a), GH_EAUTH);
}

static void requests_are_throttled(void **state)
{
    world_t *w = *state;
    char msg[256];
    int retry = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(gh_auth_request_link(&w->app, "busy@example.com", "10.0.0.3", &retry,
                                              msg, sizeof(msg)),
                         GH_OK);
    assert_int_equal(gh_auth_request_link(&w->app, "BUSY@example.com", "10.0.0.3", &retry, msg,
                                          sizeof(msg)),
                     GH_ERATE);
    assert_true(retry > 0 && retry <= w->cfg.link_limit_window_s);
    assert_non_null(strstr(msg, "try again in"));
    assert_int_equal(gh_auth_request_link(&w->app, "not an email", "10.0.0.3", &retry, msg,
                                          sizeof(msg)),
                     GH_EINVAL);
}

/* An actor of `role` in `org`, for calls that need one. */
static const gh_actor_t *as(const char *org, gh_role_t role)
{
    static gh_actor_t a;
    memset(&a, 0, sizeof(a));
    a.kind = GH_ACTOR_USER;
    a.role = role;
    snprintf(a.id, sizeof(a.id), "user_01TESTTESTTESTTESTTESTTE");
    snprintf(a.label, sizeof(a.label), "tester@example.com");
    snprintf(a.org_id, sizeof(a.org_id), "%s", org);
    snprintf(a.ip, sizeof(a.ip), "127.0.0.1");
    return &a;
}

static void onboarding_and_organizations(void **state)
{
    world_t *w = *state;
    char msg[256], token[GH_SECRET_MAX];
    int retry;
    assert_int_equal(gh_auth_request_link(&w->app, "org@example.com", "10.0.0.4", &retry, msg,
                                          sizeof(msg)),
                     GH_OK);
    last_token(w, token);
    gh_login_t login;
    assert_int_equal(gh_auth_open_link(&w->app, token, "10.0.0.4", "ua", NULL, &login), GH_OK);
    gh_session_t s;
    gh_account_t a;
    assert_int_equal(gh_auth_session(&w->app, login.session_secret, &s, &a), GH_OK);

    assert_int_equal(gh_auth_onboard(&w->app, &a, "   ", true, true, msg, sizeof(msg)), GH_EINVAL);
    assert_int_equal(gh_auth_onboard(&w->app, &a, "Grace", false, true, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_non_null(strstr(msg, "18"));
    assert_int_equal(gh_auth_onboard(&w->app, &a, "Grace", true, false, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_int_equal(gh_auth_onboard(&w->app, &a, "  Grace Hopper ", true, true, msg, sizeof(msg)),
                     GH_OK);
    assert_int_equal(gh_auth_session(&w->app, login.session_secret, &s, &a), GH_OK);
    assert_true(gh_auth_onboarded(&a));
    assert_string_equal(a.full_name, "Grace Hopper");
    assert_string_equal(a.terms_version, w->cfg.terms_version);
    assert_int_equal(a.terms_accepted_at, fake_now);

    char org[GH_ID_MAX];
    assert_int_equal(gh_org_create(&w->app, &s, "", org, msg, sizeof(msg)), GH_EINVAL);
    assert_int_equal(gh_org_create(&w->app, &s, " Navy ", org, msg, sizeof(msg)), GH_OK);
    assert_string_equal(s.current_org_id, org);
    gh_membership_t m;
    assert_int_equal(gh_store_membership_get(gh_store_db(w->app.store), org, a.id, &m), GH_OK);
    assert_string_equal(m.role, "admin");
    assert_string_equal(m.org_name, "Navy");

    /* Settings: a billing member may not rename; a bad VAT ID changes nothing. */
    gh_org_patch_t p = {0};
    gh_org_settings_t out;
    p.set[GH_ORG_NAME] = true;
    p.value[GH_ORG_NAME] = "Renamed";
    p.set[GH_ORG_LEGAL_NAME] = true;
    p.value[GH_ORG_LEGAL_NAME] = "Navy Ltd";
    assert_int_equal(gh_org_settings_update(&w->app, as(org, GH_ROLE_BILLING), &p, &out, msg,
                                            sizeof(msg)),
                     GH_EPERM);
    assert_int_equal(gh_org_settings_update(&w->app, as(org, GH_ROLE_DEVELOPER), &p, &out, msg,
                                            sizeof(msg)),
                     GH_EPERM);
    gh_org_patch_t q = {0};
    q.set[GH_ORG_COUNTRY] = true;
    q.value[GH_ORG_COUNTRY] = "it";
    q.set[GH_ORG_VAT_ID] = true;
    q.value[GH_ORG_VAT_ID] = "IT00743110158";
    assert_int_equal(gh_org_settings_update(&w->app, as(org, GH_ROLE_BILLING), &q, &out, msg,
                                            sizeof(msg)),
                     GH_EINVAL);
    gh_org_settings_t now;
    assert_int_equal(gh_store_org_settings_get(gh_store_db(w->app.store), org, &now), GH_OK);
    assert_string_equal(now.country, "");
    q.value[GH_ORG_VAT_ID] = "it 007.431.101-57";
    assert_int_equal(gh_org_settings_update(&w->app, as(org, GH_ROLE_BILLING), &q, &out, msg,
                                            sizeof(msg)),
                     GH_OK);
    assert_string_equal(out.country, "IT");
    assert_string_equal(out.vat_id, "IT00743110157");
    /* Moving the address to Germany makes the Italian VAT ID invalid: refused. */
    gh_org_patch_t r = {0};
    r.set[GH_ORG_COUNTRY] = true;
    r.value[GH_ORG_COUNTRY] = "DE";
    assert_int_equal(gh_org_settings_update(&w->app, as(org, GH_ROLE_ADMIN), &r, &out, msg,
                                            sizeof(msg)),
                     GH_EINVAL);
    assert_int_equal(gh_org_settings_update(&w->app, as(org, GH_ROLE_ADMIN), &p, &out, msg,
                                            sizeof(msg)),
                     GH_OK);
    assert_string_equal(out.name, "Renamed");
    assert_string_equal(out.country, "IT");
}

static void nested_transactions_roll_back_together(void **state)
{
    world_t *w = *state;
    gh_db_t *db = gh_store_db(w->app.store);
    assert_int_equal(gh_store_begin(db), GH_OK);
    gh_account_t a = {0};
    snprintf(a.id, sizeof(a.id), "user_01AAAAAAAAAAAAAAAAAAAAAA");
    snprintf(a.email, sizeof(a.email), "nested@example.com");
    assert_int_equal(gh_store_account_insert(db, &a), GH_OK);
    /* An inner unit (org creation) fails on a duplicate workspace id: its rows go, the
     * outer transaction survives until it is rolled back itself. */
    assert_int_equal(gh_store_org_create(db, "org_01AAAAAAAAAAAAAAAAAAAAAA", "X", a.id,
                                         "wrkspc_01AAAAAAAAAAAAAAAAAAAAAA", "slate", 1),
                     GH_OK);
    assert_int_equal(gh_store_org_create(db, "org_01BBBBBBBBBBBBBBBBBBBBBB", "Y", a.id,
                                         "wrkspc_01AAAAAAAAAAAAAAAAAAAAAA", "slate", 1),
                     GH_ECONFLICT);
    gh_org_settings_t s;
    assert_int_equal(gh_store_org_settings_get(db, "org_01BBBBBBBBBBBBBBBBBBBBBB", &s),
                     GH_ENOTFOUND);
    assert_int_equal(gh_store_org_settings_get(db, "org_01AAAAAAAAAAAAAAAAAAAAAA", &s), GH_OK);
    gh_store_rollback(db);
    gh_account_t b;
    assert_int_equal(gh_store_account_by_email(db, "nested@example.com", &b), GH_ENOTFOUND);
    assert_int_equal(gh_store_org_settings_get(db, "org_01AAAAAAAAAAAAAAAAAAAAAA", &s),
                     GH_ENOTFOUND);
}

static void migrations_apply_once(void **state)
{
    world_t *w = *state;
    gh_db_t *db = gh_store_db(w->app.store);
    char err[256];
    int applied = -1;
    assert_int_equal(gh_store_migrate(db, &applied, err, sizeof(err)), GH_OK);
    assert_int_equal(applied, 0);
    assert_true(gh_store_schema_version(db) >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(link_signs_in_once),
        cmocka_unit_test(links_and_sessions_expire),
        cmocka_unit_test(requests_are_throttled),
        cmocka_unit_test(onboarding_and_organizations),
        cmocka_unit_test(nested_transactions_roll_back_together),
        cmocka_unit_test(migrations_apply_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
