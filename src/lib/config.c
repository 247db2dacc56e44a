#include "lib/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <ini.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/money.h"

void gh_config_defaults(gh_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8080");
    snprintf(cfg->api_listen, sizeof(cfg->api_listen), "127.0.0.1:8081");
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "var");
    snprintf(cfg->product_name, sizeof(cfg->product_name), "Gatehouse");
    cfg->threads = 4;
    cfg->api_threads = 0;
    cfg->max_body_bytes = 1024 * 1024;
    cfg->shutdown_grace_ms = 10000;
    cfg->api_http2 = false;
    cfg->max_connections_per_ip = 128;
    cfg->request_timeout_ms = 30000;
    cfg->db_busy_timeout_ms = 10000;
    cfg->db_statement_timeout_ms = 30000;
    cfg->log_json = false;
    cfg->log_level = GH_LOG_INFO;
    cfg->access_log = true;
    cfg->metrics = true;
    snprintf(cfg->smtp_password_env, sizeof(cfg->smtp_password_env), "GATEHOUSE_SMTP_PASSWORD");
    snprintf(cfg->mail_from, sizeof(cfg->mail_from), "Gatehouse <no-reply@localhost>");
    cfg->smtp_timeout_ms = 10000;
    cfg->link_ttl_s = 15 * 60;
    cfg->session_ttl_s = 30 * 24 * 3600;
    cfg->link_limit_per_email = 5;
    cfg->link_limit_per_ip = 30;
    cfg->link_limit_window_s = 3600;
    snprintf(cfg->terms_version, sizeof(cfg->terms_version), "2026-01-01");
    cfg->max_orgs_per_account = 20;
    cfg->invite_ttl_days = 21;
    cfg->invite_limit_per_org = 200;
    cfg->invite_limit_per_recipient = 5;
    cfg->invite_limit_window_s = 3600;
    cfg->max_workspaces = 100;
    snprintf(cfg->oidc_client_secret_env, sizeof(cfg->oidc_client_secret_env),
             "GATEHOUSE_OIDC_CLIENT_SECRET");
    snprintf(cfg->oidc_label, sizeof(cfg->oidc_label), "Google");
    snprintf(cfg->oidc_scopes, sizeof(cfg->oidc_scopes), "openid email profile");
    cfg->oidc_timeout_ms = 10000;
    cfg->api_max_body_bytes = 32 * 1024 * 1024;
    snprintf(cfg->pay_provider, sizeof(cfg->pay_provider), "test");
    cfg->min_purchase_nusd = 5 * GH_NUSD_PER_USD;
    cfg->first_purchase_min_nusd = 5 * GH_NUSD_PER_USD;
    cfg->max_purchase_nusd = 10000 * GH_NUSD_PER_USD;
    cfg->credit_expiry_days = 365;
    snprintf(cfg->invoice_prefix, sizeof(cfg->invoice_prefix), "GH");
    snprintf(cfg->tax_label, sizeof(cfg->tax_label), "Tax");
    cfg->billing_scheduler_interval_s = 60;
    cfg->pending_retry_s = 60;
    snprintf(cfg->stripe_api_base, sizeof(cfg->stripe_api_base), "https://api.stripe.com");
    snprintf(cfg->stripe_secret_key_env, sizeof(cfg->stripe_secret_key_env), "STRIPE_SECRET_KEY");
    snprintf(cfg->stripe_webhook_secret_env, sizeof(cfg->stripe_webhook_secret_env),
             "STRIPE_WEBHOOK_SECRET");
    snprintf(cfg->stripe_js_url, sizeof(cfg->stripe_js_url), "https://js.stripe.com/v3/");
    cfg->stripe_timeout_ms = 10000;
    cfg->limits_enforce = true;
    cfg->limits_poll_ms = 200;
    cfg->cluster_lease_ttl_ms = 10000;
    cfg->cluster_poll_ms = 1000;
}

bool gh_config_node_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
            return false;
    return true;
}


static gh_err_t set_str(char *dst, size_t size, const char *value, const char *key, char *err,
                        size_t err_size)
{
    size_t n = strlen(value);
    if (n >= size) {
        snprintf(err, err_size, "%s is too long (at most %zu characters)", key, size - 1);
        return GH_EINVAL;
    }
    memcpy(dst, value, n + 1);
    return GH_OK;
}

static gh_err_t set_int(int *dst, const char *value, long min, long max, const char *key,
                        char *err, size_t err_size)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < min || v > max) {
        snprintf(err, err_size, "%s must be a whole number from %ld to %ld, not \"%s\"", key,
                 min, max, value);
        return GH_EINVAL;
    }
    *dst = (int)v;
    return GH_OK;
}

static gh_err_t set_bool(bool *dst, const char *value, const char *key, char *err,
                         size_t err_size)
{
    if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") ||
        !strcmp(value, "1")) {
        *dst = true;
        return GH_OK;
    }
    if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") ||
        !strcmp(value, "0")) {
        *dst = false;
        return GH_OK;
    }
    snprintf(err, err_size, "%s must be true or false, not \"%s\"", key, value);
    return GH_EINVAL;
}

static gh_err_t check_addr(const char *value, const char *key, char *err, size_t err_size)
{
    char host[128];
    int port;
    if (gh_config_split_addr(value, host, sizeof(host), &port)) {
        snprintf(err, err_size, "%s must be ADDRESS:PORT (like 127.0.0.1:8080), not \"%s\"",
                 key, value);
        return GH_EINVAL;
    }
    return GH_OK;
}

static void strip_trailing_slash(char *s);

static gh_err_t check_url(const char *value, const char *key, char *err, size_t err_size)
{
    if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8)) {
        snprintf(err, err_size, "%s must start with http:// or https://, not \"%s\"", key,
                 value);
        return GH_EINVAL;
    }
    return GH_OK;
}

static void model_defaults(gh_model_cfg_t *m, const char *name)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->style, sizeof(m->style), "anthropic");
    m->connect_timeout_ms = 5000;
    m->first_byte_timeout_ms = 600000;
    m->idle_timeout_ms = 120000;
    m->max_connections = 1024;
    m->mock_latency_ms = 0;
    m->mock_tokens_per_second = 0; /* 0: as fast as possible */
    m->retries = 2;
    m->eject_ms = 5000;
    m->eject_after = 3;
    m->health_interval_ms = 5000;
}

/* The next comma-separated item of *s (spaces around it trimmed) into `dst`; false at the
 * end. An item longer than `size` - 1 is cut, which the caller's checks then refuse. */
static bool list_next(const char **s, char *dst, size_t size)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return false;
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    *s = end ? end + 1 : p + n;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

/* upstream_url = URL [weight=N], URL [weight=N], ...: fills m->deployments. */
static gh_err_t set_deployments(gh_model_cfg_t *m, const char *value, char *err,
                                size_t err_size)
{
    char item[GH_CONFIG_STR + 32];
    const char *s = value;
    m->ndeployments = 0;
    while (list_next(&s, item, sizeof(item))) {
        if (m->ndeployments >= GH_DEPLOYMENTS_MAX) {
            snprintf(err, err_size, "upstream_url lists at most %d deployments",
                     GH_DEPLOYMENTS_MAX);
            return GH_EINVAL;
        }
        gh_deploy_cfg_t *d = &m->deployments[m->ndeployments];
        d->weight = 1;
        char *sp = strpbrk(item, " \t");
        if (sp != NULL) {
            *sp++ = '\0';
            while (*sp == ' ' || *sp == '\t')
                sp++;
            if (strncmp(sp, "weight=", 7) ||
                set_int(&d->weight, sp + 7, 1, 1000, "weight", err, err_size)) {
                snprintf(err, err_size, "upstream_url: after \"%.200s\" only weight=N (1 to "
                                        "1000) may follow, not \"%.60s\"", item, sp);
                return GH_EINVAL;
            }
        }
        gh_err_t rc = check_url(item, "upstream_url", err, err_size);
        if (!rc)
            rc = set_str(d->url, sizeof(d->url), item, "upstream_url", err, err_size);
        if (rc)
            return rc;
        /* The URL is shown on the Staff page, logged and stored with usage events: no
         * credentials in it. */
        const char *host = strstr(d->url, "://") + 3;
        size_t host_len = strcspn(host, "/?#");
        if (memchr(host, '@', host_len) != NULL) {
            snprintf(err, err_size, "upstream_url: put the upstream's key in api_key_env, not "
                                    "in the URL");
            return GH_EINVAL;
        }
        strip_trailing_slash(d->url);
        m->ndeployments++;
    }
    if (m->ndeployments == 0) {
        snprintf(err, err_size, "upstream_url needs at least one URL");
        return GH_EINVAL;
    }
    return GH_OK;
}

/* api_key_env: one variable for every deployment, or one per deployment in upstream_url's
 * order. Called once both are known. */
static gh_err_t finish_deploy_keys(gh_model_cfg_t *m, char *err, size_t err_size)
{
    char names[GH_DEPLOYMENTS_MAX + 1][64];
    int n = 0;
    const char *s = m->api_key_env;
    char item[GH_CONFIG_STR];
    while (n <= GH_DEPLOYMENTS_MAX && list_next(&s, item, sizeof(item))) {
        if (strlen(item) >= sizeof(names[0])) {
            snprintf(err, err_size, "[model %s] api_key_env names are at most 63 characters",
                     m->name);
            return GH_EINVAL;
        }
        memcpy(names[n++], item, strlen(item) + 1);
    }
    if (n > 1 && n != m->ndeployments) {
        snprintf(err, err_size, "[model %s] api_key_env names %d variables for %d deployments: "
                                "give one for all, or one per URL of upstream_url", m->name, n,
                 m->ndeployments);
        return GH_EINVAL;
    }
    static_assert(sizeof(names[0]) == sizeof(m->deployments[0].api_key_env), "same size");
    for (int i = 0; i < m->ndeployments; i++)
        memcpy(m->deployments[i].api_key_env, n == 0 ? "" : names[n == 1 ? 0 : i],
               n == 0 ? 1 : sizeof(names[0]));
    return GH_OK;
}

/* Every fallback names another configured model. */
static gh_err_t finish_fallbacks(const gh_config_t *c, const gh_model_cfg_t *m, char *err,
                                 size_t err_size)
{
    for (int i = 0; i < m->nfallbacks; i++) {
        if (!strcmp(m->fallbacks[i], m->name)) {
            snprintf(err, err_size, "[model %s] fallbacks: a model cannot fall back to itself",
                     m->name);
            return GH_EINVAL;
        }
        const gh_model_cfg_t *f = gh_config_model(c, m->fallbacks[i], strlen(m->fallbacks[i]));
        if (f == NULL) {
            snprintf(err, err_size, "[model %s] fallbacks: there is no [model %s]", m->name,
                     m->fallbacks[i]);
            return GH_EINVAL;
        }
        /* The relay never translates between the two APIs. */
        if ((!strcmp(m->style, "anthropic") && !strcmp(f->style, "openai")) ||
            (!strcmp(m->style, "openai") && !strcmp(f->style, "anthropic"))) {
            snprintf(err, err_size, "[model %s] fallbacks: %s speaks the %s API, %s the %s one",
                     m->name, f->name, !strcmp(f->style, "openai") ? "OpenAI" : "Anthropic",
                     m->name, !strcmp(m->style, "openai") ? "OpenAI" : "Anthropic");
            return GH_EINVAL;
        }
    }
    return GH_OK;
}

/* The model of section "model NAME", created on first sight. */
static gh_model_cfg_t *model_section(gh_config_t *c, const char *section, char *err,
                                     size_t err_size)
{
    const char *name = section + 6;
    while (*name == ' ')
        name++;
    size_t len = strlen(name);
    if (len >= 2 && name[0] == '"' && name[len - 1] == '"') {
        name++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(c->models[0].name)) {
        snprintf(err, err_size, "[%s]: a model needs a name of 1 to 127 characters", section);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9') || strchr("-._:/@", name[i]))) {
            snprintf(err, err_size, "[%s]: model names use letters, digits and - . _ : / @",
                     section);
            return NULL;
        }
    for (int i = 0; i < c->nmodels; i++)
        if (strlen(c->models[i].name) == len && !strncmp(c->models[i].name, name, len))
            return &c->models[i];
    if (c->nmodels >= GH_MODELS_MAX) {
        snprintf(err, err_size, "at most %d models may be configured", GH_MODELS_MAX);
        return NULL;
    }
    gh_model_cfg_t *m = &c->models[c->nmodels++];
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)len, name);
    model_defaults(m, tmp);
    return m;
}

static gh_err_t set_price(int64_t *dst, const char *value, const char *key, char *err,
                          size_t err_size)
{
    if (gh_money_parse_usd(value, dst)) {
        snprintf(err, err_size, "%s must be a price in USD per million tokens, like 3 or 0.25, "
                                "not \"%s\"", key, value);
        return GH_EINVAL;
    }
    return GH_OK;
}

/* A USD amount in whole cents, like 5 or 12.50, greater than zero. */
static gh_err_t set_usd(int64_t *dst, const char *value, const char *key, char *err,
                        size_t err_size)
{
    int64_t v;
    if (gh_money_parse_usd(value, &v) || v <= 0 || v % (GH_NUSD_PER_USD / 100) ||
        v > 1000000 * GH_NUSD_PER_USD) {
        snprintf(err, err_size, "%s must be an amount in USD with whole cents, more than 0 and "
                                "at most 1000000, like 5 or 12.50, not \"%s\"", key, value);
        return GH_EINVAL;
    }
    *dst = v;
    return GH_OK;
}

static gh_err_t set_billing(gh_config_t *c, const char *key, const char *value, char *err,
                            size_t err_size)
{
    gh_err_t rc;
    if (!strcmp(key, "provider")) {
        if (strcmp(value, "test") && strcmp(value, "stripe")) {
            snprintf(err, err_size, "provider must be test or stripe, not \"%s\"", value);
            return GH_EINVAL;
        }
        return set_str(c->pay_provider, sizeof(c->pay_provider), value, key, err, err_size);
    }
    if (!strcmp(key, "min_purchase_usd"))
        return set_usd(&c->min_purchase_nusd, value, key, err, err_size);
    if (!strcmp(key, "first_purchase_min_usd"))
        return set_usd(&c->first_purchase_min_nusd, value, key, err, err_size);
    if (!strcmp(key, "max_purchase_usd"))
        return set_usd(&c->max_purchase_nusd, value, key, err, err_size);
    if (!strcmp(key, "credit_expiry_days"))
        return set_int(&c->credit_expiry_days, value, 1, 3650, key, err, err_size);
    if (!strcmp(key, "credit_expiry_seconds"))
        return set_int(&c->credit_expiry_s, value, 0, 3650 * 86400, key, err, err_size);
    static const struct {
        const char *key;
        size_t offset, size;
    } strs[] = {
#define S(k, field) {k, offsetof(gh_config_t, field), sizeof(((gh_config_t *)0)->field)}
        S("seller_name", seller_name),
        S("seller_line1", seller_line1),
        S("seller_line2", seller_line2),
        S("seller_city", seller_city),
        S("seller_postal_code", seller_postal_code),
        S("seller_state", seller_state),
        S("seller_vat_id", seller_vat_id),
        S("seller_email", seller_email),
        S("tax_label", tax_label),
        S("stripe_secret_key_env", stripe_secret_key_env),
        S("stripe_webhook_secret_env", stripe_webhook_secret_env),
        S("stripe_publishable_key", stripe_publishable_key),
#undef S
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (!strcmp(key, strs[i].key))
            return set_str((char *)c + strs[i].offset, strs[i].size, value, key, err, err_size);
    if (!strcmp(key, "seller_country")) {
        if (*value && !(strlen(value) == 2 && value[0] >= 'A' && value[0] <= 'Z' &&
                        value[1] >= 'A' && value[1] <= 'Z')) {
            snprintf(err, err_size, "seller_country must be an ISO 3166 code in capitals, like "
                                    "IT or US, not \"%s\"", value);
            return GH_EINVAL;
        }
        return set_str(c->seller_country, sizeof(c->seller_country), value, key, err, err_size);
    }
    if (!strcmp(key, "invoice_prefix")) {
        bool ok = *value != '\0' && strlen(value) < sizeof(c->invoice_prefix);
        for (const char *p = value; ok && *p; p++)
            ok = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!ok) {
            snprintf(err, err_size, "invoice_prefix must be 1 to 16 capital letters or digits, "
                                    "not \"%s\"", value);
            return GH_EINVAL;
        }
        return set_str(c->invoice_prefix, sizeof(c->invoice_prefix), value, key, err, err_size);
    }
    if (!strcmp(key, "tax_rate_bps"))
        return set_int(&c->tax_rate_bps, value, 0, 10000, key, err, err_size);
    if (!strcmp(key, "scheduler_interval_s"))
        return set_int(&c->billing_scheduler_interval_s, value, 1, 86400, key, err, err_size);
    if (!strcmp(key, "pending_retry_s"))
        return set_int(&c->pending_retry_s, value, 1, 86400, key, err, err_size);
    if (!strcmp(key, "stripe_api_base")) {
        rc = check_url(value, key, err, err_size);
        return rc ? rc
                  : set_str(c->stripe_api_base, sizeof(c->stripe_api_base), value, key, err,
                            err_size);
    }
    if (!strcmp(key, "stripe_js_url")) {
        rc = check_url(value, key, err, err_size);
        return rc ? rc
                  : set_str(c->stripe_js_url, sizeof(c->stripe_js_url), value, key, err,
                            err_size);
    }
    if (!strcmp(key, "stripe_timeout_ms"))
        return set_int(&c->stripe_timeout_ms, value, 100, 600000, key, err, err_size);
    snprintf(err, err_size, "unknown option [billing] %s", key);
    return GH_EINVAL;
}


/* A whole number from `min` to `max` (64 bits). */
static gh_err_t set_int64(int64_t *dst, const char *value, int64_t min, int64_t max,
                          const char *key, char *err, size_t err_size)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < min || v > max) {
        snprintf(err, err_size, "%s must be a whole number from %lld to %lld, not \"%s\"", key,
                 (long long)min, (long long)max, value);
        return GH_EINVAL;
    }
    *dst = (int64_t)v;
    return GH_OK;
}

/* The largest rate a tier may set (the admission engine's bucket limit). */
#define TIER_RATE_MAX INT64_C(50000000000)
#define TIER_USD_MAX (INT64_C(1000000000) * GH_NUSD_PER_USD)

/* The tier of section "tier ID", created on first sight. */
static gh_tier_cfg_t *tier_section(gh_config_t *c, const char *section, char *err,
                                   size_t err_size)
{
    const char *id = section + 4;
    while (*id == ' ')
        id++;
    size_t len = strlen(id);
    bool ok = len > 0 && len < GH_TIER_ID_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '_' ||
             id[i] == '-';
    if (!ok) {
        snprintf(err, err_size, "[%s]: a tier id is 1 to %d lower-case letters, digits, _ or -",
                 section, GH_TIER_ID_MAX - 1);
        return NULL;
    }
    for (int i = 0; i < c->ntiers; i++)
        if (!strcmp(c->tiers[i].id, id))
            return &c->tiers[i];
    if (c->ntiers >= GH_TIERS_MAX) {
        snprintf(err, err_size, "at most %d tiers may be configured", GH_TIERS_MAX);
        return NULL;
    }
    gh_tier_cfg_t *t = &c->tiers[c->ntiers++];
    memset(t, 0, sizeof(*t));
    memcpy(t->id, id, len + 1);
    return t;
}

/* A USD amount with whole cents from 0 up; "none" (caps only) is 0, no cap. */
static gh_err_t set_tier_usd(int64_t *dst, const char *value, bool none_ok, const char *key,
                             char *err, size_t err_size)
{
    int64_t v;
    if (none_ok && !strcmp(value, "none")) {
        *dst = 0;
        return GH_OK;
    }
    if (gh_money_parse_usd(value, &v) || v % (GH_NUSD_PER_USD / 100) || v > TIER_USD_MAX ||
        (none_ok && v == 0)) {
        snprintf(err, err_size, "%s must be an amount in USD with whole cents%s, like 5 or 12.50, "
                                "not \"%s\"", key, none_ok ? " above 0, or none" : "", value);
        return GH_EINVAL;
    }
    *dst = v;
    return GH_OK;
}

static gh_err_t set_tier(gh_config_t *c, const char *section, const char *key,
                         const char *value, char *err, size_t err_size)
{
    gh_tier_cfg_t *t = tier_section(c, section, err, err_size);
    if (!t)
        return GH_EINVAL;
    if (!strcmp(key, "name"))
        return set_str(t->name, sizeof(t->name), value, key, err, err_size);
    if (!strcmp(key, "purchases_usd"))
        return set_tier_usd(&t->purchases_to_enter_nusd, value, false, key, err, err_size);
    if (!strcmp(key, "monthly_cap_usd"))
        return set_tier_usd(&t->monthly_cap_nusd, value, true, key, err, err_size);
    if (!strcmp(key, "requests_per_minute"))
        return set_int64(&t->requests_per_min, value, 0, TIER_RATE_MAX, key, err, err_size);
    if (!strcmp(key, "input_tokens_per_minute"))
        return set_int64(&t->input_tokens_per_min, value, 0, TIER_RATE_MAX, key, err, err_size);
    if (!strcmp(key, "output_tokens_per_minute"))
        return set_int64(&t->output_tokens_per_min, value, 0, TIER_RATE_MAX, key, err, err_size);
    if (!strcmp(key, "custom"))
        return set_bool(&t->custom, value, key, err, err_size);
    snprintf(err, err_size, "unknown option [%s] %s", section, key);
    return GH_EINVAL;
}

/* Tiers: those reached by purchases first, in ascending order of what they need, then the
 * custom ones; a custom tier named "custom" is added when the file has none, so staff can
 * always give an organization limits of its own. */
static gh_err_t finish_tiers(gh_config_t *c, char *err, size_t err_size)
{
    if (c->ntiers == 0)
        return GH_OK;
    bool seen_custom = false, has_custom = false;
    int64_t last = -1;
    for (int i = 0; i < c->ntiers; i++) {
        gh_tier_cfg_t *t = &c->tiers[i];
        if (!t->name[0]) {
            static_assert(sizeof(t->id) <= sizeof(t->name), "an id fits as a name");
            memcpy(t->name, t->id, strlen(t->id) + 1);
        }
        if (t->custom) {
            seen_custom = has_custom = true;
            continue;
        }
        if (seen_custom) {
            snprintf(err, err_size, "[tier %s] comes after a custom tier; list the custom tiers "
                                    "last", t->id);
            return GH_EINVAL;
        }
        if (t->purchases_to_enter_nusd <= last) {
            snprintf(err, err_size, "[tier %s] must need more purchases_usd than the tier before "
                                    "it (tiers are listed from the lowest)", t->id);
            return GH_EINVAL;
        }
        last = t->purchases_to_enter_nusd;
    }
    if (c->tiers[0].custom) {
        snprintf(err, err_size, "the first [tier ...] must be one reached by purchases, not a "
                                "custom one");
        return GH_EINVAL;
    }
    if (!has_custom) {
        if (c->ntiers >= GH_TIERS_MAX) {
            snprintf(err, err_size, "at most %d tiers may be configured with a custom one",
                     GH_TIERS_MAX - 1);
            return GH_EINVAL;
        }
        for (int i = 0; i < c->ntiers; i++)
            if (!strcmp(c->tiers[i].id, "custom")) {
                snprintf(err, err_size, "[tier custom] must have custom = true");
                return GH_EINVAL;
            }
        gh_tier_cfg_t *t = &c->tiers[c->ntiers++];
        memset(t, 0, sizeof(*t));
        snprintf(t->id, sizeof(t->id), "custom");
        snprintf(t->name, sizeof(t->name), "Custom");
        t->custom = true;
    }
    return GH_OK;
}

/* At most GH_MODEL_CLASSES_MAX distinct model classes. */
static gh_err_t finish_classes(const gh_config_t *c, char *err, size_t err_size)
{
    int distinct = 0;
    for (int i = 0; i < c->nmodels; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(c->models[i].model_class, c->models[j].model_class);
        if (!seen && ++distinct > GH_MODEL_CLASSES_MAX) {
            snprintf(err, err_size, "at most %d model classes: give models that share rate "
                                    "limits the same model_class ([model %s] is the class "
                                    "too many)", GH_MODEL_CLASSES_MAX, c->models[i].name);
            return GH_EINVAL;
        }
    }
    return GH_OK;
}

/* Printable ASCII without spaces: safe in a request line. */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7F)
            return false;
    return true;
}

static gh_err_t set_model(gh_config_t *c, const char *section, const char *key,
                          const char *value, char *err, size_t err_size)
{
    gh_model_cfg_t *m = model_section(c, section, err, err_size);
    if (!m)
        return GH_EINVAL;
    if (!strcmp(key, "style")) {
        if (strcmp(value, "anthropic") && strcmp(value, "openai") && strcmp(value, "mock")) {
            snprintf(err, err_size, "style must be anthropic, openai or mock, not \"%s\"", value);
            return GH_EINVAL;
        }
        return set_str(m->style, sizeof(m->style), value, key, err, err_size);
    }
    if (!strcmp(key, "upstream_url")) {
        gh_err_t rc = set_str(m->upstream_url, sizeof(m->upstream_url), value, key, err, err_size);
        return rc ? rc : set_deployments(m, value, err, err_size);
    }
    if (!strcmp(key, "fallbacks")) {
        const char *s = value;
        char item[160];
        m->nfallbacks = 0;
        while (list_next(&s, item, sizeof(item))) {
            if (m->nfallbacks >= GH_FALLBACKS_MAX || strlen(item) >= sizeof(m->fallbacks[0])) {
                snprintf(err, err_size, "fallbacks: at most %d model names of up to 127 "
                                        "characters", GH_FALLBACKS_MAX);
                return GH_EINVAL;
            }
            memcpy(m->fallbacks[m->nfallbacks++], item, strlen(item) + 1); /* length checked */
        }
        return GH_OK;
    }
    if (!strcmp(key, "retries"))
        return set_int(&m->retries, value, 0, GH_DEPLOYMENTS_MAX, key, err, err_size);
    if (!strcmp(key, "eject_ms"))
        return set_int(&m->eject_ms, value, 1, 300000, key, err, err_size);
    if (!strcmp(key, "eject_after"))
        return set_int(&m->eject_after, value, 1, 1000, key, err, err_size);
    if (!strcmp(key, "health_path")) {
        if (value[0] != '/' || !header_safe(value)) {
            snprintf(err, err_size, "health_path must be a path starting with /, like /health, "
                                    "not \"%s\"", value);
            return GH_EINVAL;
        }
        return set_str(m->health_path, sizeof(m->health_path), value, key, err, err_size);
    }
    if (!strcmp(key, "health_interval_ms"))
        return set_int(&m->health_interval_ms, value, 100, 3600000, key, err, err_size);
    if (!strcmp(key, "display_name"))
        return set_str(m->display_name, sizeof(m->display_name), value, key, err, err_size);
    if (!strcmp(key, "api_key_env"))
        return set_str(m->api_key_env, sizeof(m->api_key_env), value, key, err, err_size);
    if (!strcmp(key, "upstream_model"))
        return set_str(m->upstream_model, sizeof(m->upstream_model), value, key, err, err_size);
    if (!strcmp(key, "model_class"))
        return set_str(m->model_class, sizeof(m->model_class), value, key, err, err_size);
    if (!strcmp(key, "connect_timeout_ms"))
        return set_int(&m->connect_timeout_ms, value, 1, 600000, key, err, err_size);
    if (!strcmp(key, "first_byte_timeout_ms"))
        return set_int(&m->first_byte_timeout_ms, value, 1, 3600000, key, err, err_size);
    if (!strcmp(key, "idle_timeout_ms"))
        return set_int(&m->idle_timeout_ms, value, 1, 3600000, key, err, err_size);
    if (!strcmp(key, "price_input"))
        return set_price(&m->price_input, value, key, err, err_size);
    if (!strcmp(key, "price_output"))
        return set_price(&m->price_output, value, key, err, err_size);
    if (!strcmp(key, "price_cache_write"))
        return set_price(&m->price_cache_write, value, key, err, err_size);
    if (!strcmp(key, "price_cache_read"))
        return set_price(&m->price_cache_read, value, key, err, err_size);
    if (!strcmp(key, "on_disconnect")) {
        if (strcmp(value, "finish") && strcmp(value, "cancel")) {
            snprintf(err, err_size, "on_disconnect must be finish or cancel, not \"%s\"", value);
            return GH_EINVAL;
        }
        m->cancel_on_disconnect = !strcmp(value, "cancel");
        return GH_OK;
    }
    if (!strcmp(key, "tls_ca_file"))
        return set_str(m->tls_ca_file, sizeof(m->tls_ca_file), value, key, err, err_size);
    if (!strcmp(key, "tls_server_name")) {
        /* A DNS name (letters, digits, '-' and '.'): what is sent as SNI and verified in the
         * certificate instead of the URL's host, as nginx's proxy_ssl_name. */
        size_t n = strlen(value);
        bool ok = n > 0 && n < sizeof(m->tls_server_name) && value[0] != '.' && value[0] != '-';
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)value[i]) || value[i] == '-' || value[i] == '.';
        if (!ok) {
            snprintf(err, err_size,
                     "tls_server_name must be a DNS name such as models.internal, not \"%s\"",
                     value);
            return GH_EINVAL;
        }
        memcpy(m->tls_server_name, value, n + 1);
        return GH_OK;
    }
    if (!strcmp(key, "max_connections"))
        return set_int(&m->max_connections, value, 0, 1000000, key, err, err_size);
    if (!strcmp(key, "mock_latency_ms"))
        return set_int(&m->mock_latency_ms, value, 0, 600000, key, err, err_size);
    if (!strcmp(key, "mock_tokens_per_second"))
        return set_int(&m->mock_tokens_per_second, value, 0, 1000000, key, err, err_size);
    snprintf(err, err_size, "unknown option [%s] %s", section, key);
    return GH_EINVAL;
}

const gh_model_cfg_t *gh_config_model(const gh_config_t *cfg, const char *name, size_t len)
{
    for (int i = 0; i < cfg->nmodels; i++)
        if (strlen(cfg->models[i].name) == len && !memcmp(cfg->models[i].name, name, len))
            return &cfg->models[i];
    return NULL;
}

gh_err_t gh_config_store_url(const char *url, bool *postgres, char *err, size_t err_size)
{
    if (!strncmp(url, "sqlite:", 7)) {
        if (!url[7]) {
            snprintf(err, err_size, "url sqlite: needs a file, like sqlite:var/gatehouse.db");
            return GH_EINVAL;
        }
        *postgres = false;
        return GH_OK;
    }
    if (strncmp(url, "postgresql://", 13) && strncmp(url, "postgres://", 11)) {
        snprintf(err, err_size,
                 "url must be sqlite:PATH or postgresql://USER@HOST:PORT/DATABASE, not \"%.80s\"",
                 url);
        return GH_EINVAL;
    }
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    if (!opts) {
        /* libpq's message names the part it could not read, never a password's value. */
        size_t n = msg ? strcspn(msg, "\n") : 0;
        snprintf(err, err_size, "url is not a valid PostgreSQL URI: %.*s", (int)n,
                 msg ? msg : "out of memory");
        PQfreemem(msg);
        return GH_EINVAL;
    }
    bool has_password = false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && *o->val)
            has_password = true;
    PQconninfoFree(opts);
    if (has_password) {
        snprintf(err, err_size,
                 "url must not contain a password (it would sit in the file and in process "
                 "lists): set [store] password_env to the name of an environment variable "
                 "holding it, or use PGPASSWORD or ~/.pgpass");
        return GH_EINVAL;
    }
    *postgres = true;
    return GH_OK;
}

static gh_err_t set_store_url(gh_config_t *c, const char *value, char *err, size_t err_size)
{
    bool postgres;
    gh_err_t rc = gh_config_store_url(value, &postgres, err, err_size);
    if (!rc)
        rc = set_str(c->store_url, sizeof(c->store_url), value, "url", err, err_size);
    if (!rc && !postgres)
        rc = set_str(c->db_path, sizeof(c->db_path), value + 7, "url", err, err_size);
    return rc;
}

/* An environment variable's name: letters, digits and '_', not starting with a digit. */
static gh_err_t set_env_name(char *dst, size_t size, const char *value, const char *key,
                             char *err, size_t err_size)
{
    bool ok = value[0] && !(value[0] >= '0' && value[0] <= '9');
    for (const char *p = value; *p && ok; p++)
        ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
             (*p >= '0' && *p <= '9') || *p == '_';
    if (!ok) {
        snprintf(err, err_size,
                 "%s must be the name of an environment variable (letters, digits and _), "
                 "not \"%.64s\"",
                 key, value);
        return GH_EINVAL;
    }
    return set_str(dst, size, value, key, err, err_size);
}

#define KEY(s, k) (!strcmp(section, s) && !strcmp(key, k))

gh_err_t gh_config_set(gh_config_t *c, const char *section, const char *key, const char *value,
                       char *err, size_t err_size)
{
    gh_err_t rc;
    if (!strncmp(section, "model ", 6) || !strcmp(section, "model"))
        return set_model(c, section, key, value, err, err_size);
    if (!strcmp(section, "billing"))
        return set_billing(c, key, value, err, err_size);
    if (!strncmp(section, "tier ", 5) || !strcmp(section, "tier"))
        return set_tier(c, section, key, value, err, err_size);
    if (KEY("limits", "enforce"))
        return set_bool(&c->limits_enforce, value, key, err, err_size);
    if (KEY("limits", "poll_ms"))
        return set_int(&c->limits_poll_ms, value, 10, 60000, key, err, err_size);
    if (KEY("cluster", "node_id")) {
        if (!gh_config_node_id_valid(value)) {
            snprintf(err, err_size, "node_id must be 1 to 64 letters, digits, - or _, not "
                                    "\"%.80s\"", value);
            return GH_EINVAL;
        }
        return set_str(c->cluster_node_id, sizeof(c->cluster_node_id), value, key, err,
                       err_size);
    }
    if (KEY("cluster", "lease_ttl_ms"))
        return set_int(&c->cluster_lease_ttl_ms, value, 1000, 3600000, key, err, err_size);
    if (KEY("cluster", "poll_ms"))
        return set_int(&c->cluster_poll_ms, value, 10, 60000, key, err, err_size);
    if (KEY("server", "api_max_body_bytes")) {
        int v;
        rc = set_int(&v, value, 1024, 1024 * 1024 * 1024, key, err, err_size);
        if (!rc)
            c->api_max_body_bytes = (size_t)v;
        return rc;
    }
    if (KEY("server", "listen")) {
        rc = check_addr(value, key, err, err_size);
        return rc ? rc : set_str(c->listen, sizeof(c->listen), value, key, err, err_size);
    }
    if (KEY("server", "api_listen")) {
        rc = check_addr(value, key, err, err_size);
        return rc ? rc : set_str(c->api_listen, sizeof(c->api_listen), value, key, err, err_size);
    }
    if (KEY("server", "public_url")) {
        rc = check_url(value, key, err, err_size);
        if (!rc)
            rc = set_str(c->public_url, sizeof(c->public_url), value, key, err, err_size);
        c->public_url_set = rc == GH_OK;
        return rc;
    }
    if (KEY("server", "public_api_url")) {
        rc = check_url(value, key, err, err_size);
        if (!rc)
            rc = set_str(c->public_api_url, sizeof(c->public_api_url), value, key, err, err_size);
        c->public_api_url_set = rc == GH_OK;
        return rc;
    }
    if (KEY("server", "data_dir"))
        return set_str(c->data_dir, sizeof(c->data_dir), value, key, err, err_size);
    if (KEY("server", "product_name"))
        return set_str(c->product_name, sizeof(c->product_name), value, key, err, err_size);
    if (KEY("server", "web_dir"))
        return set_str(c->web_dir, sizeof(c->web_dir), value, key, err, err_size);
    if (KEY("server", "threads"))
        return set_int(&c->threads, value, 1, 256, key, err, err_size);
    if (KEY("server", "api_threads"))
        return set_int(&c->api_threads, value, 0, 256, key, err, err_size);
    if (KEY("server", "max_body_bytes")) {
        int v;
        rc = set_int(&v, value, 1024, 64 * 1024 * 1024, key, err, err_size);
        if (!rc)
            c->max_body_bytes = (size_t)v;
        return rc;
    }
    if (KEY("server", "shutdown_grace_ms"))
        return set_int(&c->shutdown_grace_ms, value, 0, 600000, key, err, err_size);
    if (KEY("server", "api_http2"))
        return set_bool(&c->api_http2, value, key, err, err_size);
    if (KEY("server", "max_connections_per_ip"))
        return set_int(&c->max_connections_per_ip, value, 0, 1000000, key, err, err_size);
    if (KEY("server", "trusted_proxies"))
        return gh_proxy_list_parse(value, &c->trusted_proxies, err, err_size);
    if (KEY("server", "request_timeout_ms"))
        return set_int(&c->request_timeout_ms, value, 100, 3600000, key, err, err_size);
    if (KEY("store", "busy_timeout_ms"))
        return set_int(&c->db_busy_timeout_ms, value, 10, 600000, key, err, err_size);
    if (KEY("store", "statement_timeout_ms"))
        return set_int(&c->db_statement_timeout_ms, value, 10, 3600000, key, err, err_size);
    if (KEY("store", "path")) {
        /* The older spelling of url = sqlite:PATH; the last one set wins. */
        gh_err_t prc = set_str(c->db_path, sizeof(c->db_path), value, key, err, err_size);
        if (!prc)
            c->store_url[0] = '\0';
        return prc;
    }
    if (KEY("store", "url"))
        return set_store_url(c, value, err, err_size);
    if (KEY("store", "password_env"))
        return set_env_name(c->store_password_env, sizeof(c->store_password_env), value, key,
                            err, err_size);
    if (KEY("log", "format")) {
        if (!strcmp(value, "json") || !strcmp(value, "text")) {
            c->log_json = !strcmp(value, "json");
            return GH_OK;
        }
        snprintf(err, err_size, "format must be text or json, not \"%s\"", value);
        return GH_EINVAL;
    }
    if (KEY("log", "level")) {
        static const char *const levels[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++)
            if (!strcmp(value, levels[i])) {
                c->log_level = i;
                return GH_OK;
            }
        snprintf(err, err_size, "level must be debug, info, warn or error, not \"%s\"", value);
        return GH_EINVAL;
    }
    if (KEY("log", "access_log"))
        return set_bool(&c->access_log, value, key, err, err_size);
    if (KEY("log", "metrics"))
        return set_bool(&c->metrics, value, key, err, err_size);
    if (KEY("email", "smtp_url")) {
        if (*value && strncmp(value, "smtp://", 7) && strncmp(value, "smtps://", 8)) {
            snprintf(err, err_size, "smtp_url must start with smtp:// or smtps://");
            return GH_EINVAL;
        }
        return set_str(c->smtp_url, sizeof(c->smtp_url), value, key, err, err_size);
    }
    if (KEY("email", "smtp_user"))
        return set_str(c->smtp_user, sizeof(c->smtp_user), value, key, err, err_size);
    if (KEY("email", "smtp_password_env"))
        return set_str(c->smtp_password_env, sizeof(c->smtp_password_env), value, key, err,
                       err_size);
    if (KEY("email", "from"))
        return set_str(c->mail_from, sizeof(c->mail_from), value, key, err, err_size);
    if (KEY("email", "outbox_dir"))
        return set_str(c->outbox_dir, sizeof(c->outbox_dir), value, key, err, err_size);
    if (KEY("email", "smtp_timeout_ms"))
        return set_int(&c->smtp_timeout_ms, value, 100, 600000, key, err, err_size);
    if (KEY("auth", "link_ttl_seconds"))
        return set_int(&c->link_ttl_s, value, 1, 7 * 24 * 3600, key, err, err_size);
    if (KEY("auth", "session_ttl_seconds"))
        return set_int(&c->session_ttl_s, value, 60, 365 * 24 * 3600, key, err, err_size);
    if (KEY("auth", "link_limit_per_email"))
        return set_int(&c->link_limit_per_email, value, 1, 1000000, key, err, err_size);
    if (KEY("auth", "link_limit_per_ip"))
        return set_int(&c->link_limit_per_ip, value, 1, 1000000, key, err, err_size);
    if (KEY("auth", "link_limit_window_seconds"))
        return set_int(&c->link_limit_window_s, value, 1, 7 * 24 * 3600, key, err, err_size);
    if (KEY("auth", "terms_version"))
        return set_str(c->terms_version, sizeof(c->terms_version), value, key, err, err_size);
    if (KEY("auth", "terms_url")) {
        if (*value && check_url(value, key, err, err_size))
            return GH_EINVAL;
        return set_str(c->terms_url, sizeof(c->terms_url), value, key, err, err_size);
    }
    if (KEY("auth", "terms_file"))
        return set_str(c->terms_file, sizeof(c->terms_file), value, key, err, err_size);
    if (KEY("auth", "max_organizations_per_account"))
        return set_int(&c->max_orgs_per_account, value, 1, 1000, key, err, err_size);
    if (KEY("organizations", "invite_ttl_days"))
        return set_int(&c->invite_ttl_days, value, 1, 365, key, err, err_size);
    if (KEY("organizations", "invite_limit_per_org"))
        return set_int(&c->invite_limit_per_org, value, 1, 1000000, key, err, err_size);
    if (KEY("organizations", "invite_limit_per_recipient"))
        return set_int(&c->invite_limit_per_recipient, value, 1, 1000000, key, err, err_size);
    if (KEY("organizations", "invite_limit_window_s"))
        return set_int(&c->invite_limit_window_s, value, 1, 7 * 86400, key, err, err_size);
    if (KEY("organizations", "max_workspaces"))
        return set_int(&c->max_workspaces, value, 1, 100000, key, err, err_size);
    if (KEY("oidc", "issuer")) {
        rc = *value ? check_url(value, key, err, err_size) : GH_OK;
        return rc ? rc : set_str(c->oidc_issuer, sizeof(c->oidc_issuer), value, key, err, err_size);
    }
    if (KEY("oidc", "client_id"))
        return set_str(c->oidc_client_id, sizeof(c->oidc_client_id), value, key, err, err_size);
    if (KEY("oidc", "client_secret_env"))
        return set_str(c->oidc_client_secret_env, sizeof(c->oidc_client_secret_env), value, key,
                       err, err_size);
    if (KEY("oidc", "label"))
        return set_str(c->oidc_label, sizeof(c->oidc_label), value, key, err, err_size);
    if (KEY("oidc", "scopes"))
        return set_str(c->oidc_scopes, sizeof(c->oidc_scopes), value, key, err, err_size);
    if (KEY("oidc", "timeout_ms"))
        return set_int(&c->oidc_timeout_ms, value, 100, 600000, key, err, err_size);
    snprintf(err, err_size, "unknown option [%s] %s", section, key);
    return GH_EINVAL;
}

#undef KEY

typedef struct {
    gh_config_t *cfg;
    char *err;
    size_t err_size;
    gh_err_t rc;
} load_ctx_t;

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    load_ctx_t *ctx = user;
    if (!name) /* a section header with no keys yet */
        return 1;
    ctx->rc = gh_config_set(ctx->cfg, section, name, value, ctx->err, ctx->err_size);
    return ctx->rc == GH_OK;
}

gh_err_t gh_config_load(gh_config_t *cfg, const char *path, char *err, size_t err_size)
{
    char msg[512] = "";
    load_ctx_t ctx = {cfg, msg, sizeof(msg), GH_OK};
    int line = ini_parse(path, on_ini, &ctx);
    if (line == -1) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return GH_EIO;
    }
    if (line != 0) {
        snprintf(err, err_size, "%s:%d: %s", path, line, *msg ? msg : "syntax error");
        return GH_EINVAL;
    }
    return GH_OK;
}

static void strip_trailing_slash(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
}

gh_err_t gh_config_finish(gh_config_t *cfg, char *err, size_t err_size)
{
    int n;
    cfg->store_postgres = false;
    if (cfg->store_url[0]) {
        gh_err_t urc = gh_config_store_url(cfg->store_url, &cfg->store_postgres, err, err_size);
        if (urc)
            return urc;
    }
    if (!cfg->store_postgres) {
        if (!cfg->db_path[0]) {
            n = snprintf(cfg->db_path, sizeof(cfg->db_path), "%s/gatehouse.db", cfg->data_dir);
            if (n < 0 || (size_t)n >= sizeof(cfg->db_path))
                goto too_long;
        }
        n = snprintf(cfg->store_url, sizeof(cfg->store_url), "sqlite:%s", cfg->db_path);
        if (n < 0 || (size_t)n >= sizeof(cfg->store_url))
            goto too_long;
    } else {
        cfg->db_path[0] = '\0';
        if (cfg->store_password_env[0] && !getenv(cfg->store_password_env)) {
            snprintf(err, err_size,
                     "[store] password_env names the environment variable %s, which is not set",
                     cfg->store_password_env);
            return GH_EINVAL;
        }
    }
    if (!cfg->outbox_dir[0]) {
        n = snprintf(cfg->outbox_dir, sizeof(cfg->outbox_dir), "%s/outbox", cfg->data_dir);
        if (n < 0 || (size_t)n >= sizeof(cfg->outbox_dir))
            goto too_long;
    }
    /* With no model configured, two built-in mock models with realistic prices, so that
     * billing and limits can be tried straight away. */
    if (cfg->nmodels == 0) {
        static const struct {
            const char *name, *display, *model_class;
            int64_t in, out, cw, cr;
        } mocks[] = {
            {"gatehouse-mock-small", "Mock Small (built-in mock)", "small", 1000000000,
             5000000000, 1250000000, 100000000},
            {"gatehouse-mock-large", "Mock Large (built-in mock)", "large", 3000000000,
             15000000000, 3750000000, 300000000},
        };
        for (size_t i = 0; i < sizeof(mocks) / sizeof(mocks[0]); i++) {
            gh_model_cfg_t *m = &cfg->models[cfg->nmodels++];
            model_defaults(m, mocks[i].name);
            snprintf(m->display_name, sizeof(m->display_name), "%s", mocks[i].display);
            snprintf(m->style, sizeof(m->style), "mock");
            snprintf(m->model_class, sizeof(m->model_class), "%s", mocks[i].model_class);
            m->price_input = mocks[i].in;
            m->price_output = mocks[i].out;
            m->price_cache_write = mocks[i].cw;
            m->price_cache_read = mocks[i].cr;
            m->mock_tokens_per_second = 200;
        }
    }
    for (int i = 0; i < cfg->nmodels; i++) {
        gh_model_cfg_t *m = &cfg->models[i];
        if (strcmp(m->style, "mock") && !m->upstream_url[0]) {
            snprintf(err, err_size, "[model %s] needs upstream_url (or style = mock)", m->name);
            return GH_EINVAL;
        }
        strip_trailing_slash(m->upstream_url);
        if (strcmp(m->style, "mock")) {
            gh_err_t krc = finish_deploy_keys(m, err, err_size);
            if (krc)
                return krc;
        } else {
            m->ndeployments = 0;
        }
        gh_err_t frc = finish_fallbacks(cfg, m, err, err_size);
        if (frc)
            return frc;
        if (!m->upstream_model[0])
            snprintf(m->upstream_model, sizeof(m->upstream_model), "%s", m->name);
        if (!m->model_class[0])
            snprintf(m->model_class, sizeof(m->model_class), "%.31s", m->name);
        if (!m->display_name[0])
            snprintf(m->display_name, sizeof(m->display_name), "%s", m->name);
    }
    gh_err_t rc = finish_classes(cfg, err, err_size);
    if (!rc)
        rc = finish_tiers(cfg, err, err_size);
    if (rc)
        return rc;
    if (cfg->min_purchase_nusd > cfg->max_purchase_nusd ||
        cfg->first_purchase_min_nusd > cfg->max_purchase_nusd) {
        snprintf(err, err_size, "[billing] min_purchase_usd and first_purchase_min_usd must not "
                                "be more than max_purchase_usd");
        return GH_EINVAL;
    }
    if (cfg->cluster_lease_ttl_ms < 2 * cfg->cluster_poll_ms) {
        snprintf(err, err_size, "[cluster] lease_ttl_ms (%d) must be at least twice poll_ms "
                                "(%d): a lease must outlive a missed change",
                 cfg->cluster_lease_ttl_ms, cfg->cluster_poll_ms);
        return GH_EINVAL;
    }
    strip_trailing_slash(cfg->stripe_api_base);
    strip_trailing_slash(cfg->oidc_issuer);
    if (cfg->oidc_issuer[0] && !cfg->oidc_client_id[0]) {
        snprintf(err, err_size, "[oidc] issuer is set but client_id is not");
        return GH_EINVAL;
    }
    strip_trailing_slash(cfg->public_url);
    strip_trailing_slash(cfg->public_api_url);
    cfg->cookie_secure = !strncmp(cfg->public_url, "https://", 8);
    return GH_OK;
too_long:
    snprintf(err, err_size, "data_dir is too long");
    return GH_EINVAL;
}

gh_err_t gh_config_split_addr(const char *addr, char *host, size_t host_size, int *port)
{
    const char *colon;
    const char *h = addr;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return GH_EINVAL;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return GH_EINVAL;
        hlen = (size_t)(colon - addr);
    }
    if (hlen == 0 || hlen >= host_size)
        return GH_EINVAL;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return GH_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return GH_OK;
}
