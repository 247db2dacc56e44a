#include "unit.h"

#include <string.h>

#include "http/router.h"

static void h_list(gh_req_t *r) { (void)r; }
static void h_get(gh_req_t *r) { (void)r; }
static void h_me(gh_req_t *r) { (void)r; }
static void h_member(gh_req_t *r) { (void)r; }

static const gh_route_t routes[] = {
    {"GET", "/v1/organizations/workspaces", h_list, 0},
    {"POST", "/v1/organizations/workspaces", h_list, 1},
    {"GET", "/v1/organizations/workspaces/{workspace_id}", h_get, 0},
    {"GET", "/v1/organizations/workspaces/me", h_me, 0},
    {"DELETE", "/v1/organizations/workspaces/{workspace_id}/members/{user_id}", h_member, 2},
};
#define N (sizeof(routes) / sizeof(routes[0]))

static gh_route_result_t run(const char *method, const char *path, gh_req_t *req,
                             const gh_route_t **found, char *allow)
{
    memset(req, 0, sizeof(*req));
    return gh_router_match(routes, N, method, path, req, found, allow, 64);
}

static void literal_paths_match(void **state)
{
    (void)state;
    gh_req_t req;
    const gh_route_t *r = NULL;
    char allow[64];
    assert_int_equal(run("POST", "/v1/organizations/workspaces", &req, &r, allow), GH_ROUTE_FOUND);
    assert_ptr_equal(r, &routes[1]);
    assert_int_equal(req.nparams, 0);
}

static void parameters_are_captured(void **state)
{
    (void)state;
    gh_req_t req;
    const gh_route_t *r = NULL;
    char allow[64];
    assert_int_equal(run("GET", "/v1/organizations/workspaces/wrkspc_01abc", &req, &r, allow),
                     GH_ROUTE_FOUND);
    assert_ptr_equal(r, &routes[2]);
    assert_string_equal(gh_req_param(&req, "workspace_id"), "wrkspc_01abc");
    assert_null(gh_req_param(&req, "user_id"));

    assert_int_equal(run("DELETE", "/v1/organizations/workspaces/w1/members/u2", &req, &r, allow),
                     GH_ROUTE_FOUND);
    assert_string_equal(gh_req_param(&req, "workspace_id"), "w1");
    assert_string_equal(gh_req_param(&req, "user_id"), "u2");
}

static void literals_beat_parameters(void **state)
{
    (void)state;
    gh_req_t req;
    const gh_route_t *r = NULL;
    char allow[64];
    assert_int_equal(run("GET", "/v1/organizations/workspaces/me", &req, &r, allow),
                     GH_ROUTE_FOUND);
    assert_ptr_equal(r, &routes[3]);
}

static void unknown_paths_and_methods(void **state)
{
    (void)state;
    gh_req_t req;
    const gh_route_t *r = NULL;
    char allow[64];
    assert_int_equal(run("GET", "/v1/organizations", &req, &r, allow), GH_ROUTE_NO_PATH);
    assert_int_equal(run("GET", "/v1/organizations/workspaces/", &req, &r, allow),
                     GH_ROUTE_NO_PATH);
    assert_int_equal(run("GET", "/v1/organizations/workspaces//members/x", &req, &r, allow),
                     GH_ROUTE_NO_PATH);
    assert_int_equal(run("PUT", "/v1/organizations/workspaces", &req, &r, allow),
                     GH_ROUTE_NO_METHOD);
    assert_string_equal(allow, "GET, POST");
}

static void head_is_served_by_get(void **state)
{
    (void)state;
    gh_req_t req;
    const gh_route_t *r = NULL;
    char allow[64];
    assert_int_equal(run("HEAD", "/v1/organizations/workspaces", &req, &r, allow),
                     GH_ROUTE_FOUND);
    assert_ptr_equal(r, &routes[0]);
}

static void overlong_parameters_do_not_match(void **state)
{
    (void)state;
    gh_req_t req;
    const gh_route_t *r = NULL;
    char allow[64], path[400];
    memset(path, 'a', sizeof(path));
    memcpy(path, "/v1/organizations/workspaces/", 29);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(run("GET", path, &req, &r, allow), GH_ROUTE_NO_PATH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_paths_match),
        cmocka_unit_test(parameters_are_captured),
        cmocka_unit_test(literals_beat_parameters),
        cmocka_unit_test(unknown_paths_and_methods),
        cmocka_unit_test(head_is_served_by_get),
        cmocka_unit_test(overlong_parameters_do_not_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
