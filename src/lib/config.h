/* The configuration: gatehouse.ini read with libinih, then command-line overrides, then
 * derived defaults. Every option is documented in gatehouse.ini.example. Unknown sections or
 * keys and malformed values are errors that name the line, so a typo never silently falls
 * back to a default. The struct is filled once at start and read-only afterwards. */
#ifndef GH_LIB_CONFIG_H
#define GH_LIB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/proxy.h"

#define GH_CONFIG_STR 256
#define GH_CONFIG_PATH 1024

#define GH_MODELS_MAX 64
/* Distinct model_class values: the admission engine keeps its buckets per class inline. */
#define GH_MODEL_CLASSES_MAX 8
#define GH_TIERS_MAX 16
#define GH_TIER_ID_MAX 32
/* Deployments of one model (URLs in upstream_url) and fallback models it may name. */
#define GH_DEPLOYMENTS_MAX 8
#define GH_FALLBACKS_MAX 4

/* One deployment of a model: one upstream server among several serving the same model. */
typedef struct gh_deploy_cfg {
    char url[GH_CONFIG_STR];  /* base URL without a trailing "/" */
    char api_key_env[64];     /* its own key's variable ("" : none) */
    int weight;               /* share of traffic relative to the others, 1 to 1000 */
} gh_deploy_cfg_t;

/* One model the model API serves: `[model NAME]` in gatehouse.ini. */
typedef struct gh_model_cfg {
    char name[128];                   /* the public name clients send in "model" */
    char display_name[128];
    char style[16];                   /* "anthropic", "openai" or "mock" */
    /* As written: one base URL (http://10.0.0.5:8000) or a comma-separated list of them, each
     * optionally followed by weight=N; parsed into `deployments` (not for mock). */
    char upstream_url[GH_CONFIG_PATH];
    char api_key_env[GH_CONFIG_STR];  /* variable holding the upstream's key; or one per URL */
    gh_deploy_cfg_t deployments[GH_DEPLOYMENTS_MAX];
    int ndeployments;                 /* 0 for mock */
    char fallbacks[GH_FALLBACKS_MAX][128]; /* models tried, in order, when this one cannot serve */
    int nfallbacks;
    int retries;               /* further deployments tried before the first byte (default 2) */
    int eject_ms;              /* first ejection of a failing deployment; doubles to 5 min */
    int eject_after;           /* consecutive failures that eject a deployment (default 3) */
    char health_path[128];     /* active health check path ("" : passive only) */
    int health_interval_ms;
    char upstream_model[128];         /* the model name the upstream expects; default: name */
    char model_class[32];             /* groups models for rate limits; default: name */
    int connect_timeout_ms;
    int first_byte_timeout_ms; /* until the upstream's response headers */
    int idle_timeout_ms;       /* longest silence while a response streams */
    int max_connections;       /* open upstream connections over all loops; 0: no limit */
    char tls_ca_file[GH_CONFIG_PATH]; /* https: CA certificates to trust; default: system's */
    char tls_server_name[254]; /* https: the name sent (SNI) and verified; default: URL host */
    int64_t price_input;       /* nano-USD per million tokens */
    int64_t price_output;
    int64_t price_cache_write;
    int64_t price_cache_read;
    bool cancel_on_disconnect; /* on_disconnect = cancel (default: finish and charge) */
    int mock_latency_ms;       /* mock only: time to the first token */
    int mock_tokens_per_second;
} gh_model_cfg_t;

/* One usage tier: `[tier ID]` in gatehouse.ini (see core/tiers.h for what tiers mean). */
typedef struct gh_tier_cfg {
    char id[GH_TIER_ID_MAX]; /* "tier_1": what the API and staff name it */
    char name[64];           /* "Tier 1": what people read; default: the id */
    int64_t purchases_to_enter_nusd; /* cumulative purchases that reach it */
    int64_t monthly_cap_nusd;        /* highest monthly spend; 0: no cap */
    int64_t requests_per_min;        /* per model class; 0: no limit */
    int64_t input_tokens_per_min;
    int64_t output_tokens_per_min;
    bool custom; /* set by staff only, never reached by purchases */
} gh_tier_cfg_t;

typedef struct gh_config {
    /* [server] */
    char listen[GH_CONFIG_STR];         /* control plane ADDR:PORT; port 0 picks a free one */
    char api_listen[GH_CONFIG_STR];     /* data plane ADDR:PORT */
    char public_url[GH_CONFIG_STR];     /* console base URL used in emails and redirects */
    char public_api_url[GH_CONFIG_STR]; /* model API base URL shown to users */
    char data_dir[GH_CONFIG_PATH];
    char product_name[64];
    char web_dir[GH_CONFIG_PATH]; /* development: serve the console from here, not the binary */
    int threads;     /* control plane worker threads */
    int api_threads; /* data plane event loops; 0 = one per core */
    size_t max_body_bytes;
    int shutdown_grace_ms;
    bool api_http2;             /* h2c on the model port (off: HTTP/1.1 only) */
    int max_connections_per_ip; /* console connections one address may hold; 0: no cap */
    int request_timeout_ms;     /* console: a request's head and body must arrive within this */
    gh_proxy_list_t trusted_proxies; /* peers whose X-Forwarded-For / Forwarded is believed */

    /* [store] url (or the older [store] path, which is url = sqlite:PATH) */
    char store_url[GH_CONFIG_PATH]; /* as given; after finish also the default sqlite:... */
    bool store_postgres;            /* derived: store_url is a postgresql:// URI */
    char store_password_env[64];    /* environment variable with the PostgreSQL password */
    char db_path[GH_CONFIG_PATH];   /* the SQLite file; default: <data_dir>/gatehouse.db */
    int db_busy_timeout_ms;         /* how long a statement waits for another writer's lock */
    int db_statement_timeout_ms;    /* PostgreSQL: the longest a statement may run */

    /* [log] */
    bool log_json;
    int log_level; /* gh_log_level_t */
    bool access_log;
    bool metrics; /* [log] metrics: serve /metrics on the console listener */

    /* [email] */
    char smtp_url[GH_CONFIG_STR]; /* empty: write .eml files to outbox_dir */
    char smtp_user[GH_CONFIG_STR];
    char smtp_password_env[64]; /* name of the environment variable holding the password */
    char mail_from[GH_CONFIG_STR];
    char outbox_dir[GH_CONFIG_PATH]; /* default: <data_dir>/outbox */
    int smtp_timeout_ms;

    /* [auth] */
    int link_ttl_s;
    int session_ttl_s;
    int link_limit_per_email;
    int link_limit_per_ip;
    int link_limit_window_s;
    char terms_version[32];
    char terms_url[GH_CONFIG_STR];   /* the Terms of Service link; "" = Gatehouse's /terms page */
    char terms_file[GH_CONFIG_PATH]; /* what /terms shows; "" = a placeholder saying so */
    int max_orgs_per_account;

    /* [organizations] */
    int invite_ttl_days;
    int invite_limit_per_org;       /* invitation mails per organization per window */
    int invite_limit_per_recipient; /* invitation mails per address per window */
    int invite_limit_window_s;
    int max_workspaces;

    /* [oidc] "Continue with Google" or any OpenID Connect provider; off when issuer is empty */
    char oidc_issuer[GH_CONFIG_STR];
    char oidc_client_id[GH_CONFIG_STR];
    char oidc_client_secret_env[64]; /* environment variable holding the client secret */
    char oidc_label[64];             /* the button says "Continue with <label>" */
    char oidc_scopes[GH_CONFIG_STR];
    int oidc_timeout_ms;

    /* [billing] */
    char pay_provider[16];           /* "test" (default) or "stripe" */
    int64_t min_purchase_nusd;       /* the smallest purchase (and auto-reload amount) */
    int64_t first_purchase_min_nusd; /* the smallest first purchase */
    int64_t max_purchase_nusd;       /* the largest single purchase */
    int credit_expiry_days;          /* a lot expires this long after it is credited */
    int credit_expiry_s;             /* testing only: overrides credit_expiry_days when > 0 */
    char seller_name[GH_CONFIG_STR]; /* the seller printed on invoices */
    char seller_line1[GH_CONFIG_STR];
    char seller_line2[GH_CONFIG_STR];
    char seller_city[GH_CONFIG_STR];
    char seller_postal_code[32];
    char seller_state[GH_CONFIG_STR];
    char seller_country[3];
    char seller_vat_id[32];
    char seller_email[GH_CONFIG_STR];
    char invoice_prefix[17];         /* invoice numbers are PREFIX-YYYY-NNNNNN */
    int tax_rate_bps;                /* tax added to purchases, in basis points (1/100 %) */
    char tax_label[64];
    int billing_scheduler_interval_s; /* expiry, pending purchases and auto-reload checks */
    int pending_retry_s;             /* a pending purchase is retried after this long */
    char stripe_api_base[GH_CONFIG_STR];
    char stripe_secret_key_env[64];
    char stripe_webhook_secret_env[64];
    char stripe_publishable_key[GH_CONFIG_STR];
    char stripe_js_url[GH_CONFIG_STR];
    int stripe_timeout_ms;

    /* [limits] */
    bool limits_enforce; /* admission (credit, spend limits, rate limits) on the model API */
    int limits_poll_ms;  /* how often changes made by other processes are looked for */

    /* [cluster] several nodes on one PostgreSQL store (docs/cluster.md) */
    char cluster_node_id[65];  /* as configured ("" : the data_dir's, see core/cluster.h);
                                * after gh_cluster_node_id_resolve, this node's id */
    int cluster_lease_ttl_ms;  /* how long a node's lease lasts without renewal */
    int cluster_poll_ms;       /* changes are looked for at least this often, NOTIFY or not */

    /* [tier ID] sections, in file order; with none, the built-in table (core/tiers.h) */
    gh_tier_cfg_t tiers[GH_TIERS_MAX];
    int ntiers;

    /* [model NAME] sections; with none, two built-in mock models */
    gh_model_cfg_t models[GH_MODELS_MAX];
    int nmodels;
    size_t api_max_body_bytes; /* [server] api_max_body_bytes: model API request bodies */

    /* Derived by gh_config_finish. */
    bool cookie_secure; /* public_url is https */
    bool public_url_set;
    bool public_api_url_set;
} gh_config_t;

/* Fills `cfg` with the built-in defaults (no file needed). */
void gh_config_defaults(gh_config_t *cfg);

/* Reads `path` over what `cfg` holds. On failure writes a message naming the file and line
 * into `err` and returns GH_EINVAL (bad content) or GH_EIO (cannot open). */
gh_err_t gh_config_load(gh_config_t *cfg, const char *path, char *err, size_t err_size);

/* Sets one option, as if read from `section`/`key` in a file. Used by the loader and by
 * tests. Returns GH_EINVAL with a message in `err` for an unknown key or a bad value. */
gh_err_t gh_config_set(gh_config_t *cfg, const char *section, const char *key,
                       const char *value, char *err, size_t err_size);

/* Computes derived fields and defaults that depend on other options (paths under data_dir,
 * cookie_secure). Call after loading and after command-line overrides. */
gh_err_t gh_config_finish(gh_config_t *cfg, char *err, size_t err_size);

/* Checks a store URL: "sqlite:PATH" or a libpq URI "postgresql://user@host:port/db?..."
 * (also "postgres://"). A PostgreSQL URI must not carry a password. On GH_OK `postgres`
 * says which backend it names; otherwise `err` says what is wrong, never echoing a
 * password. */
gh_err_t gh_config_store_url(const char *url, bool *postgres, char *err, size_t err_size);

/* Whether `id` is a valid node id: 1 to 64 characters of [A-Za-z0-9_-]. */
bool gh_config_node_id_valid(const char *id);

/* The model named `name`, or NULL. */
const gh_model_cfg_t *gh_config_model(const gh_config_t *cfg, const char *name, size_t len);

/* Splits "ADDR:PORT" (IPv4, or [IPv6]) into `host` and `port`. */
gh_err_t gh_config_split_addr(const char *addr, char *host, size_t host_size, int *port);

#endif
