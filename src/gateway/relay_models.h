/* The shared upstream table of the relay: every configured model with its deployments
 * (parsed URLs, the header line carrying each deployment's own key, its TLS client context),
 * its upstream model name as a JSON literal, its balancer (gateway/balancer.h) and its
 * fallbacks as model indexes. Built once at start by gh_relay_models_new (relay.h), read-only
 * afterwards (the balancers' own state aside) and shared by every loop; it keeps pointers
 * into the configuration, which must outlive it. Only the relay and the health checks look
 * inside. */
#ifndef GH_GATEWAY_RELAY_MODELS_H
#define GH_GATEWAY_RELAY_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <openssl/ssl.h>

#include "gateway/balancer.h"
#include "gateway/relay.h"
#include "lib/config.h"

/* One deployment: one upstream server of a model. */
typedef struct gh_relay_deploy {
    const gh_deploy_cfg_t *cfg;
    bool ssl;
    char host_str[256];      /* the host without brackets, for the health checks */
    char authority_str[300];
    h2o_iovec_t host; /* into cfg->url */
    uint16_t port;
    h2o_iovec_t authority;
    char path[GH_CONFIG_STR]; /* the base URL's path without a trailing "/" or "/v1" */
    char auth_line[512];      /* "x-api-key: ...\r\n", "authorization: Bearer ...\r\n" or "" */
    size_t auth_line_len;
    SSL_CTX *ssl_ctx; /* https:// only: verifies the upstream's certificate for its host */
    const char *tls_name; /* https:// only: the name sent and verified; NULL: the host */
} gh_relay_deploy_t;

typedef struct gh_relay_model {
    const gh_model_cfg_t *cfg;
    int index; /* in cfg->models */
    bool http; /* anthropic or openai style; otherwise the mock */
    bool anthropic;
    char model_json[6 * sizeof(((gh_model_cfg_t *)0)->upstream_model) + 3];
    size_t model_json_len;
    gh_relay_deploy_t deploys[GH_DEPLOYMENTS_MAX];
    size_t ndeploys;
    gh_balancer_t *bal; /* http only */
    int fallbacks[GH_FALLBACKS_MAX]; /* indexes in cfg->models */
    size_t nfallbacks;
} gh_relay_model_t;

struct gh_relay_models {
    const gh_config_t *cfg;
    size_t count;
    gh_relay_model_t *models;
};

#endif
