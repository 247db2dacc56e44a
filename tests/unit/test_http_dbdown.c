/* The control plane's answer when a request met an unreachable database: whatever the
 * handler made of the store's GH_EUNAVAIL (a 500, a 404), the client gets 503 api_error
 * "The database is unavailable, try again shortly."; a request that did not meet it keeps
 * its own answer, and a success is never replaced. A real server on a loopback port, with
 * handlers that stand in for the store's note (lib/err.h). */
#include "unit.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "http/request.h"
#include "http/server.h"
#include "lib/config.h"
#include "lib/err.h"

static void handler(gh_req_t *req, void *ctx)
{
    (void)ctx;
    if (!strcmp(req->path, "/down-404")) {
        gh_err_note_db_unavailable();
        gh_res_header(req, "x-handler", "yes");
        gh_res_error(req, GH_ENOTFOUND, "No such organization.");
    } else if (!strcmp(req->path, "/down-500")) {
        gh_err_note_db_unavailable();
        gh_res_error(req, GH_ESTORE, "Could not load your organizations. Try again.");
    } else if (!strcmp(req->path, "/down-but-ok")) {
        gh_err_note_db_unavailable();
        gh_res_body(req, 200, "text/plain", "fine", 4);
    } else {
        /* The note from an earlier request on this worker must not leak into this one. */
        gh_res_error(req, GH_ENOTFOUND, "Nothing here.");
    }
}

typedef struct {
    char body[2048];
    size_t len;
} buf_t;

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    buf_t *b = ctx;
    size_t len = size * n;
    size_t room = sizeof(b->body) - 1 - b->len;
    size_t take = len < room ? len : room;
    memcpy(b->body + b->len, p, take);
    b->len += take;
    b->body[b->len] = '\0';
    return len;
}

static long get(int port, const char *path, buf_t *b)
{
    memset(b, 0, sizeof(*b));
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static void test_unreachable_database_is_503(void **state)
{
    (void)state;
    static gh_config_t cfg;
    gh_config_defaults(&cfg);
    snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:0");
    cfg.threads = 1; /* one worker: the requests below share its thread-local note */
    gh_http_server_t *srv;
    char err[256];
    assert_int_equal(gh_http_bind(&srv, &cfg, handler, NULL, err, sizeof(err)), GH_OK);
    assert_int_equal(gh_http_start(srv, err, sizeof(err)), GH_OK);
    int port = gh_http_port(srv);
    buf_t b;

    assert_int_equal(get(port, "/down-404", &b), 503);
    assert_non_null(strstr(b.body, "\"type\":\"api_error\""));
    assert_non_null(strstr(b.body, "The database is unavailable, try again shortly."));
    assert_null(strstr(b.body, "No such organization"));
    printf("404 over a lost database became: %s\n", b.body);
    assert_int_equal(get(port, "/down-500", &b), 503);
    assert_non_null(strstr(b.body, "The database is unavailable"));
    assert_int_equal(get(port, "/down-but-ok", &b), 200);
    assert_string_equal(b.body, "fine");
    assert_int_equal(get(port, "/other", &b), 404);
    assert_non_null(strstr(b.body, "Nothing here."));
    gh_http_stop(srv);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_database_is_503),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
