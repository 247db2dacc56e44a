/* The console's files. Files under web/ are embedded at build time and served at
 * /static/<path>; every other GET that is not an API path gets index.html, so the console's
 * history-API routes (/settings/organization, ...) load the app directly. With
 * `[server] web_dir` set (development), files are read from that folder instead, so a page
 * can be edited without rebuilding. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "lib/embed.h"

#define WEB_FILE_MAX (8 * 1024 * 1024)

static const char *const api_prefixes[] = {"/v1/", "/auth/", "/healthz", "/metrics",
                                           "/webhooks/", "/staff/api/", NULL};

static const char csp[] = "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                          "script-src 'self'; connect-src 'self'; object-src 'none'; "
                          "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

#define CSP_MAX 1024

/* "https://js.stripe.com" for "https://js.stripe.com/v3/": scheme, host and port. False when
 * `url` has no such origin or one with characters a policy could be confused by. */
static bool origin_of(const char *url, char *out, size_t size)
{
    const char *sep = strstr(url, "://");
    if (!sep || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)))
        return false;
    size_t host = strcspn(sep + 3, "/?#");
    if (host == 0 || strspn(sep + 3, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789.-:[]") < host)
        return false;
    size_t n = (size_t)(sep + 3 - url) + host;
    if (n >= size)
        return false;
    snprintf(out, size, "%.*s", (int)n, url);
    return true;
}

/* The console's policy: only its own origin, except that with [billing] provider = stripe
 * Stripe.js may load (script-src), show its card form and 3-D Secure pages (frame-src) and
 * talk to Stripe's API (connect-src). */
static const char *policy(const gh_config_t *cfg, char buf[CSP_MAX])
{
    char js[GH_CONFIG_STR], api[GH_CONFIG_STR];
    if (strcmp(cfg->pay_provider, "stripe") || !origin_of(cfg->stripe_js_url, js, sizeof(js)) ||
        !origin_of(cfg->stripe_api_base, api, sizeof(api)))
        return csp;
    bool stripe = !strcmp(js, "https://js.stripe.com");
    int n = snprintf(buf, CSP_MAX,
                     "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                     "script-src 'self' %s%s; connect-src 'self' %s; frame-src %s%s; "
                     "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
                     "form-action 'self'",
                     js, stripe ? " https://*.js.stripe.com" : "", api, js,
                     stripe ? " https://*.js.stripe.com https://hooks.stripe.com" : "");
    return n > 0 && n < CSP_MAX ? buf : csp;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},      {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},        {".svg", "image/svg+xml"},
        {".png", "image/png"},                      {".ico", "image/x-icon"},
        {".json", "application/json"},              {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (!strcmp(dot, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}

/* Reads `name` ("/app.js") from the development folder; NULL when missing or unsafe. */
static char *read_dev_file(const char *dir, const char *name, size_t *len)
{
    if (strstr(name, "..") || strstr(name, "//"))
        return NULL;
    char path[GH_CONFIG_PATH + 256];
    int n = snprintf(path, sizeof(path), "%s%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > WEB_FILE_MAX)
        goto out_close;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto out_close;
    size_t off = 0;
    while (off < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);
        if (r <= 0) {
            free(buf);
            buf = NULL;
            goto out_close;
        }
        off += (size_t)r;
    }
    *len = off;
out_close:
    close(fd);
    return buf;
}

/* Sends the file `name` from the embedded copy or the development folder. */
static bool send_file(gh_req_t *req, const char *name)
{
    const gh_config_t *cfg = gh_api_ctx(req)->app->cfg;
    const char *type = content_type(name);
    if (!strncmp(type, "text/html", 9)) {
        char buf[CSP_MAX];
        gh_res_header(req, "content-security-policy", policy(cfg, buf));
        gh_res_header(req, "x-frame-options", "DENY");
        gh_res_header(req, "referrer-policy", "no-referrer");
    }
    gh_res_header(req, "cache-control", "no-cache");
    if (cfg->web_dir[0]) {
        size_t len;
        char *data = read_dev_file(cfg->web_dir, name, &len);
        if (!data)
            return false;
        gh_res_body(req, 200, type, data, len);
        free(data);
        return true;
    }
    const gh_embed_t *e = gh_embed_find(gh_embed_assets, name);
    if (!e)
        return false;
    gh_res_body(req, 200, type, e->data, e->len);
    return true;
}

bool gh_api_web(gh_req_t *req)
{
    for (const char *const *p = api_prefixes; *p; p++) {
        size_t n = strlen(*p);
        if (!strncmp(req->path, *p, n) || !strcmp(req->path, "/healthz"))
            return false;
        if ((*p)[n - 1] == '/' && strlen(req->path) == n - 1 && !strncmp(req->path, *p, n - 1))
            return false;
    }
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))
        return false;
    if (!strncmp(req->path, "/static/", 8)) {
        if (!send_file(req, req->path + 7))
            gh_res_body(req, 404, "text/plain; charset=utf-8", "Not found\n", 10);
        return true;
    }
    if (!strcmp(req->path, "/favicon.ico")) {
        if (!send_file(req, "/favicon.svg"))
            gh_res_body(req, 404, "text/plain; charset=utf-8", "Not found\n", 10);
        return true;
    }
    if (!send_file(req, "/index.html"))
        gh_res_body(req, 500, "text/plain; charset=utf-8", "The console is missing.\n", 24);
    return true;
}
