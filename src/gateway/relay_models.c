/* The shared upstream table; see relay_models.h and relay.h. */
#include "gateway/relay_models.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include "lib/json_str.h"
#include "lib/log.h"

static bool header_value_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            return false;
    return true;
}

/* A TLS client context for one https:// upstream: TLS 1.2 or later, the peer's certificate
 * verified against the system's roots or the model's tls_ca_file, and its name checked by
 * OpenSSL against the model's tls_server_name when set, else the URL's host, a DNS name or an
 * IP address (h2o checks DNS names only). */
static gh_err_t tls_init(gh_relay_deploy_t *m, const gh_model_cfg_t *cfg, char *err,
                         size_t err_size)
{
    char host[256];
    const char *h = m->host.base;
    size_t hlen = m->host.len;
    if (cfg->tls_server_name[0]) {
        h = cfg->tls_server_name;
        hlen = strlen(h);
    }
    if (hlen >= 2 && h[0] == '[') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        snprintf(err, err_size, "[model %s] the upstream host name is too long", cfg->name);
        return GH_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    m->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (m->ssl_ctx == NULL) {
        snprintf(err, err_size, "[model %s] cannot create a TLS context", cfg->name);
        return GH_EINTERNAL;
    }
    SSL_CTX_set_min_proto_version(m->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(m->ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->tls_ca_file[0]) {
        if (SSL_CTX_load_verify_locations(m->ssl_ctx, cfg->tls_ca_file, NULL) != 1) {
            snprintf(err, err_size, "[model %s] tls_ca_file %s is not a readable PEM file",
                     cfg->name, cfg->tls_ca_file);
            return GH_EINVAL;
        }
    } else {
        SSL_CTX_set_default_verify_paths(m->ssl_ctx);
    }
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(m->ssl_ctx);
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                   : X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (ok != 1) {
        snprintf(err, err_size, "[model %s] cannot verify certificates for host %s", cfg->name,
                 host);
        return GH_EINVAL;
    }
    return GH_OK;
}

static gh_err_t deploy_init(gh_relay_deploy_t *m, const gh_model_cfg_t *cfg,
                            const gh_deploy_cfg_t *dc, bool anthropic, char *err,
                            size_t err_size)
{
    m->cfg = dc;
    h2o_url_t url;
    if (h2o_url_parse(dc->url, strlen(dc->url), &url) != 0) {
        snprintf(err, err_size, "[model %s] upstream_url \"%s\" is not an http:// or https:// URL",
                 cfg->name, dc->url);
        return GH_EINVAL;
    }
    m->ssl = url.scheme == &H2O_URL_SCHEME_HTTPS;
    m->host = url.host;
    m->port = h2o_url_get_port(&url);
    m->authority = url.authority;
    {
        const char *h = url.host.base;
        size_t hl = url.host.len;
        if (hl >= 2 && h[0] == '[') {
            h++;
            hl -= 2;
        }
        if (hl >= sizeof(m->host_str) || url.authority.len >= sizeof(m->authority_str)) {
            snprintf(err, err_size, "[model %s] the upstream host name is too long", cfg->name);
            return GH_EINVAL;
        }
        memcpy(m->host_str, h, hl);
        m->host_str[hl] = '\0';
        memcpy(m->authority_str, url.authority.base, url.authority.len);
        m->authority_str[url.authority.len] = '\0';
    }
    /* The base URL names the server (http://10.0.0.5:8000) or, as OpenAI clients write it,
     * its /v1 (http://10.0.0.5:8000/v1); the API paths are appended with their /v1. */
    size_t plen = url.path.len;
    while (plen > 0 && url.path.base[plen - 1] == '/')
        plen--;
    if (plen >= 3 && memcmp(url.path.base + plen - 3, "/v1", 3) == 0)
        plen -= 3;
    if (plen >= sizeof(m->path) || memchr(url.path.base, '?', plen) != NULL) {
        snprintf(err, err_size, "[model %s] upstream_url must be a base URL without a query",
                 cfg->name);
        return GH_EINVAL;
    }
    memcpy(m->path, url.path.base, plen);
    m->path[plen] = '\0';
    if (cfg->tls_server_name[0] && !m->ssl) {
        snprintf(err, err_size, "[model %s] tls_server_name is for https:// upstreams; %s is not one",
                 cfg->name, dc->url);
        return GH_EINVAL;
    }
    if (m->ssl && tls_init(m, cfg, err, err_size) != GH_OK)
        return GH_EINVAL;
    m->tls_name = cfg->tls_server_name[0] ? cfg->tls_server_name : NULL;

    if (dc->api_key_env[0]) {
        const char *key = getenv(dc->api_key_env);
        if (key == NULL || key[0] == '\0') {
            gh_log_warn("[model %s] environment variable %s is not set; its upstream gets no key",
                        cfg->name, dc->api_key_env);
        } else if (!header_value_ok(key) || strlen(key) > 400) {
            snprintf(err, err_size, "[model %s] the key in %s is not a valid header value",
                     cfg->name, dc->api_key_env);
            return GH_EINVAL;
        } else {
            int n = snprintf(m->auth_line, sizeof(m->auth_line), "%s%s\r\n",
                             anthropic ? "x-api-key: " : "authorization: Bearer ", key);
            assert(n > 0 && (size_t)n < sizeof(m->auth_line));
            m->auth_line_len = (size_t)n;
        }
    }
    return GH_OK;
}

static gh_err_t model_init(gh_relay_model_t *m, const gh_config_t *all, int index, char *err,
                           size_t err_size)
{
    const gh_model_cfg_t *cfg = &all->models[index];
    char quoted[sizeof(m->model_json)];
    memset(m, 0, sizeof(*m));
    m->cfg = cfg;
    m->index = index;
    gh_json_escape(quoted, sizeof(quoted) - 2, cfg->upstream_model);
    m->model_json_len = (size_t)snprintf(m->model_json, sizeof(m->model_json), "\"%s\"", quoted);
    m->http = strcmp(cfg->style, "mock") != 0;
    m->anthropic = strcmp(cfg->style, "anthropic") == 0;
    for (int i = 0; i < cfg->nfallbacks; i++) {
        const gh_model_cfg_t *f = gh_config_model(all, cfg->fallbacks[i], strlen(cfg->fallbacks[i]));
        if (f != NULL)
            m->fallbacks[m->nfallbacks++] = (int)(f - all->models);
    }
    if (!m->http)
        return GH_OK;
    for (int i = 0; i < cfg->ndeployments; i++) {
        gh_err_t rc = deploy_init(&m->deploys[i], cfg, &cfg->deployments[i], m->anthropic, err,
                                  err_size);
        m->ndeploys = (size_t)i + 1; /* freed by gh_relay_models_free even on failure */
        if (rc != GH_OK)
            return rc;
    }
    m->bal = gh_balancer_new(cfg, index);
    if (m->bal == NULL) {
        snprintf(err, err_size, "out of memory");
        return GH_ENOMEM;
    }
    return GH_OK;
}

gh_err_t gh_relay_models_new(gh_relay_models_t **out, const gh_config_t *cfg, char *err,
                             size_t err_size)
{
    gh_err_t rc;
    *out = NULL;
    gh_relay_models_t *rm = calloc(1, sizeof(*rm));
    if (rm == NULL)
        goto out_nomem;
    rm->cfg = cfg;
    rm->count = (size_t)cfg->nmodels;
    rm->models = calloc(rm->count ? rm->count : 1, sizeof(*rm->models));
    if (rm->models == NULL)
        goto out_nomem;
    for (size_t i = 0; i < rm->count; i++) {
        rc = model_init(&rm->models[i], cfg, (int)i, err, err_size);
        if (rc != GH_OK)
            goto out_free;
    }
    *out = rm;
    return GH_OK;

out_nomem:
    snprintf(err, err_size, "out of memory");
    rc = GH_ENOMEM;
out_free:
    gh_relay_models_free(rm);
    return rc;
}

void gh_relay_models_free(gh_relay_models_t *rm)
{
    if (rm == NULL)
        return;
    for (size_t i = 0; rm->models != NULL && i < rm->count; i++) {
        for (size_t d = 0; d < rm->models[i].ndeploys; d++)
            if (rm->models[i].deploys[d].ssl_ctx != NULL)
                SSL_CTX_free(rm->models[i].deploys[d].ssl_ctx);
        gh_balancer_free(rm->models[i].bal);
    }
    free(rm->models);
    free(rm);
}

bool gh_relay_models_deploy(const gh_relay_models_t *rm, size_t model, size_t dep,
                            gh_relay_deploy_info_t *out)
{
    if (model >= rm->count || dep >= rm->models[model].ndeploys)
        return false;
    const gh_relay_model_t *m = &rm->models[model];
    const gh_relay_deploy_t *d = &m->deploys[dep];
    *out = (gh_relay_deploy_info_t){d->host_str, d->port, d->authority_str, d->ssl_ctx,
                                    d->tls_name ? d->tls_name : d->host_str, m->bal};
    return true;
}
