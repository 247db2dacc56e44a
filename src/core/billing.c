/* Billing's shared part: small helpers, mail to an organization's contacts, the in-memory
 * claims on purchases being charged, the payment provider, the overview, the card on file,
 * the first-purchase questions and the scheduler. See billing.h for the model; the other
 * parts are core/billing_ledger.c, billing_purchases.c, billing_invoices.c and
 * billing_reload.c. */

#include "core/billing.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/audit.h"
#include "core/billing_int.h"
#include "core/billing_ledger.h"
#include "core/billing_purchases.h"
#include "core/billing_reload.h"
#include "core/cluster.h"
#include "core/country.h"
#include "core/outbox.h"
#include "core/pay_stripe.h"
#include "core/pay_test.h"
#include "lib/log.h"
#include "lib/mono.h"
#include "lib/text.h"
#include "store/store.h"

#define KICK_GAP_MS 50 /* the least time between two passes asked for by kicks */
#define RECIPIENTS_MAX 20
#define INTENDED_USE_CHARS_MAX 500

static_assert(GH_PAY_REF_MAX == GH_PAY_REF_SIZE, "the store keeps provider refs whole");
static_assert(GH_NUSD_PER_USD % 100 == 0, "a cent is a whole number of nano-USD");

const char *const gh_billing_industries[] = {
    "healthcare", "financial_services", "insurance", "legal", "government", "education",
    "critical_infrastructure", "other", NULL,
};

/* ---- small helpers ---- */

void gh_billing_date_utc(int64_t t, char out[16])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

int64_t gh_billing_expiry_s(const gh_config_t *cfg)
{
    return cfg->credit_expiry_s > 0 ? cfg->credit_expiry_s
                                    : (int64_t)cfg->credit_expiry_days * 86400;
}

void gh_billing_system_actor(gh_actor_t *a, const char *org_id, const char *label)
{
    memset(a, 0, sizeof(*a));
    a->kind = GH_ACTOR_SYSTEM;
    a->role = GH_ROLE_ADMIN;
    snprintf(a->id, sizeof(a->id), "system");
    snprintf(a->label, sizeof(a->label), "%s", label);
    snprintf(a->org_id, sizeof(a->org_id), "%s", org_id);
}

gh_err_t gh_billing_parse_amount(const char *text, const char *field, int64_t *nusd, char *msg,
                                 size_t msg_size)
{
    if (!text || !*text) {
        snprintf(msg, msg_size, "%s must be an amount in USD written as a string, like \"25.00\".",
                 field);
        return GH_EINVAL;
    }
    if (text[0] == '-') {
        snprintf(msg, msg_size, "%s cannot be negative.", field);
        return GH_EINVAL;
    }
    size_t whole = 0, decimals = 0;
    bool dot = false, ok = true;
    for (const char *p = text; *p && ok; p++) {
        if (*p >= '0' && *p <= '9')
            *(dot ? &decimals : &whole) += 1;
        else if (*p == '.' && !dot)
            dot = true;
        else
            ok = false;
    }
    if (!ok || whole == 0 || (dot && decimals == 0)) {
        snprintf(msg, msg_size, "%s must be an amount in USD with digits and at most one dot, "
                                "like \"25.00\".", field);
        return GH_EINVAL;
    }
    if (decimals > 2) {
        snprintf(msg, msg_size, "%s must be whole cents: use at most two decimals, like "
                                "\"25.50\".", field);
        return GH_EINVAL;
    }
    if (gh_money_parse_usd(text, nusd)) {
        snprintf(msg, msg_size, "%s is too large.", field);
        return GH_EINVAL;
    }
    assert(*nusd % CENT_NUSD == 0);
    return GH_OK;
}

int64_t gh_billing_tax(int64_t subtotal_nusd, int bps)
{
    assert(subtotal_nusd >= 0 && subtotal_nusd % CENT_NUSD == 0);
    assert(bps >= 0 && bps <= 10000);
    /* Cents times basis points stays far inside int64 for any amount the API accepts. */
    int64_t cents = subtotal_nusd / CENT_NUSD;
    return (cents * bps + 5000) / 10000 * CENT_NUSD;
}

/* "22%", "22.5%", "0.05%" for basis points. */
static void percent(int bps, char out[16])
{
    if (bps % 100 == 0)
        snprintf(out, 16, "%d%%", bps / 100);
    else if (bps % 10 == 0)
        snprintf(out, 16, "%d.%d%%", bps / 100, bps % 100 / 10);
    else
        snprintf(out, 16, "%d.%02d%%", bps / 100, bps % 100);
}

static bool in_eu(const char *country)
{
    return country[0] && gh_country_vat_applicable(country) && strcmp(country, "GB") &&
           strcmp(country, "CH") && strcmp(country, "NO");
}

/* The tax on a purchase of `amount` by `org`: no tax with a buyer VAT ID in another EU
 * country than an EU seller (reverse charge), else the configured rate. A seller registered
 * for VAT (a tax rate, or a VAT ID of its own) says "reverse charge" on such an invoice even
 * when it charges no tax at home: the buyer accounts for the VAT either way. */
void gh_billing_tax_for(const gh_config_t *cfg, const gh_org_settings_t *org, int64_t amount,
                        int64_t *tax, char label[64])
{
    if ((cfg->tax_rate_bps > 0 || cfg->seller_vat_id[0]) && in_eu(cfg->seller_country) &&
        in_eu(org->country) && strcmp(cfg->seller_country, org->country) && org->vat_id[0]) {
        *tax = 0;
        snprintf(label, 64, "%s", REVERSE_CHARGE_LABEL);
        return;
    }
    char pct[16];
    percent(cfg->tax_rate_bps, pct);
    *tax = gh_billing_tax(amount, cfg->tax_rate_bps);
    snprintf(label, 64, "%.40s %s", cfg->tax_label, pct);
}

/* ---- mail ---- */

typedef struct {
    char addr[RECIPIENTS_MAX][GH_EMAIL_MAX];
    size_t n;
} recipients_t;

static void add_recipient(void *ctx, const char *email)
{
    recipients_t *r = ctx;
    if (!email || !*email || r->n == RECIPIENTS_MAX)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->addr[i], email))
            return;
    snprintf(r->addr[r->n++], GH_EMAIL_MAX, "%s", email);
}

/* Queues mail to the organization's billing email; with `contacts`, or when it has none, also
 * its admins and billing members. On `db`, in the caller's transaction: the mail exists exactly
 * when the change it reports does (gh_outbox_kick after the commit sends it). */
gh_err_t gh_billing_mail_org(gh_app_t *app, gh_db_t *db, const char *org_id, bool contacts,
                             const char *subject, const char *body)
{
    recipients_t r = {.n = 0};
    gh_org_settings_t org;
    if (!gh_store_org_settings_get(db, org_id, &org))
        add_recipient(&r, org.billing_email);
    if (contacts || r.n == 0)
        (void)gh_store_billing_contacts(db, org_id, add_recipient, &r);
    /* The HTML part's button: the billing page every one of these mails points to. */
    char link[GH_CONFIG_STR + 32];
    snprintf(link, sizeof(link), "%s/settings/billing", app->cfg->public_url);
    for (size_t i = 0; i < r.n; i++) {
        gh_err_t rc = gh_outbox_add_action(app, db, r.addr[i], subject, body, "Open billing",
                                           link);
        if (rc == GH_EINVAL) /* an address that cannot be mailed: logged, not a failure */
            gh_log_error("billing: cannot mail \"%s\" for %s to that address", subject, org_id);
        else if (rc)
            return rc;
    }
    return GH_OK;
}

/* ---- in-flight purchases ---- */

/* Marks `id` as being charged by the calling thread; false when another thread is, or when
 * too many are. */
bool gh_billing_claim(gh_billing_t *b, const char *id)
{
    bool ok = true;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->ninflight && ok; i++)
        ok = strcmp(b->inflight[i], id) != 0;
    if (ok && b->ninflight == INFLIGHT_MAX)
        ok = false;
    if (ok)
        snprintf(b->inflight[b->ninflight++], GH_ID_MAX, "%s", id);
    pthread_mutex_unlock(&b->lock);
    return ok;
}

void gh_billing_release(gh_billing_t *b, const char *id)
{
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->ninflight; i++)
        if (!strcmp(b->inflight[i], id)) {
            memcpy(b->inflight[i], b->inflight[--b->ninflight], GH_ID_MAX);
            break;
        }
    pthread_cond_broadcast(&b->settled);
    pthread_mutex_unlock(&b->lock);
}

static bool inflight_locked(gh_billing_t *b, const char *id)
{
    for (size_t i = 0; i < b->ninflight; i++)
        if (!strcmp(b->inflight[i], id))
            return true;
    return false;
}

/* Waits (bounded) while another thread is charging `id`; true when it is no longer. */
bool gh_billing_wait_settled(gh_billing_t *b, const char *id, int64_t timeout_ms)
{
    struct timespec until;
    gh_mono_deadline(&until, timeout_ms);
    pthread_mutex_lock(&b->lock);
    while (inflight_locked(b, id))
        if (pthread_cond_timedwait(&b->settled, &b->lock, &until) == ETIMEDOUT)
            break;
    bool done = !inflight_locked(b, id);
    pthread_mutex_unlock(&b->lock);
    return done;
}

/* ---- the provider ---- */

gh_err_t gh_billing_provider_new(const gh_config_t *cfg, gh_pay_t **out, char *err,
                                 size_t err_size)
{
    if (!strcmp(cfg->pay_provider, "test")) {
        *out = gh_pay_test_new();
        return *out ? GH_OK : GH_ENOMEM;
    }
    if (strcmp(cfg->pay_provider, "stripe")) {
        snprintf(err, err_size, "[billing] provider = %s is unknown; use test or stripe",
                 cfg->pay_provider);
        return GH_EINVAL;
    }
    /* The secrets come from the environment only and are never repeated in a message. */
    const char *key = getenv(cfg->stripe_secret_key_env);
    const char *whsec = getenv(cfg->stripe_webhook_secret_env);
    if (!key || !*key) {
        snprintf(err, err_size, "[billing] provider = stripe needs the Stripe secret key in the "
                                "environment variable %s ([billing] stripe_secret_key_env), "
                                "which is not set", cfg->stripe_secret_key_env);
        return GH_EINVAL;
    }
    if (!whsec || !*whsec) {
        snprintf(err, err_size, "[billing] provider = stripe needs the webhook signing secret "
                                "(whsec_…) in the environment variable %s ([billing] "
                                "stripe_webhook_secret_env), which is not set",
                 cfg->stripe_webhook_secret_env);
        return GH_EINVAL;
    }
    if (!cfg->stripe_publishable_key[0] ||
        strncmp(cfg->stripe_publishable_key, "pk_", 3) != 0) {
        snprintf(err, err_size, "[billing] provider = stripe needs stripe_publishable_key "
                                "(pk_live_… or pk_test_…), which the console gives Stripe.js");
        return GH_EINVAL;
    }
    gh_pay_stripe_opts_t o = {
        .api_base = cfg->stripe_api_base,
        .secret_key = key,
        .timeout_ms = cfg->stripe_timeout_ms,
        .webhook_secret = whsec,
    };
    char why[256] = "";
    gh_err_t rc = gh_pay_stripe_new(&o, out, why, sizeof(why));
    if (rc) {
        snprintf(err, err_size, "[billing] provider = stripe: %s (%s, %s)", why,
                 cfg->stripe_secret_key_env, cfg->stripe_webhook_secret_env);
        return rc;
    }
    bool key_test = (*out)->ops->test_mode;
    bool pk_test = !strncmp(cfg->stripe_publishable_key, "pk_test_", 8);
    if (key_test != pk_test) {
        (*out)->ops->destroy(*out);
        *out = NULL;
        snprintf(err, err_size, "[billing] stripe_publishable_key is a %s key but the secret key "
                                "in %s is a %s key: use both from the same mode",
                 pk_test ? "test" : "live", cfg->stripe_secret_key_env,
                 key_test ? "test" : "live");
        return GH_EINVAL;
    }
    gh_log_info("billing: payment provider stripe (%s mode, API %s)",
                key_test ? "test" : "live", cfg->stripe_api_base);
    return GH_OK;
}

/* ---- overview ---- */

static void account_defaults(gh_billing_account_t *a, const char *org_id)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->org_id, sizeof(a->org_id), "%s", org_id);
    a->auto_reload_armed = true;
}

/* The organization's billing row, or the defaults when it has none. */
gh_err_t gh_billing_load_account(gh_db_t *db, const char *org_id, gh_billing_account_t *out)
{
    gh_err_t rc = gh_store_billing_account_get(db, org_id, out);
    if (rc == GH_ENOTFOUND) {
        account_defaults(out, org_id);
        return GH_OK;
    }
    return rc;
}

gh_err_t gh_billing_overview(gh_app_t *app, const char *org_id, gh_billing_overview_t *out)
{
    memset(out, 0, sizeof(*out));
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_err_t rc = gh_billing_load_account(db, org_id, &out->account);
    if (rc)
        return rc;
    rc = gh_store_payment_method_current(db, org_id, &out->card);
    if (rc && rc != GH_ENOTFOUND)
        return rc;
    out->has_card = rc == GH_OK;
    if ((rc = gh_store_purchase_stats(db, org_id, &out->purchases)))
        return rc;
    out->next_min_nusd = out->purchases.succeeded ? app->cfg->min_purchase_nusd
                                                  : app->cfg->first_purchase_min_nusd;
    out->test_mode = app->pay ? app->pay->ops->test_mode : !strcmp(app->cfg->pay_provider, "test");
    out->provider = app->pay ? app->pay->ops->name : app->cfg->pay_provider;
    return GH_OK;
}

gh_err_t gh_billing_lots(gh_app_t *app, const char *org_id, int limit, gh_store_lot_fn fn,
                         void *ctx)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_lots_open(db, org_id, app->now(), limit, fn, ctx) : GH_ESTORE;
}

/* ---- cards and customers ---- */

gh_err_t gh_billing_card_set(gh_app_t *app, const gh_actor_t *actor_in, const char *org_id,
                             const gh_card_t *card, gh_payment_method_t *out)
{
    gh_actor_t sys;
    const gh_actor_t *actor = actor_in;
    if (!actor) {
        gh_billing_system_actor(&sys, org_id, "payment provider");
        actor = &sys;
    }
    gh_payment_method_t pm;
    memset(&pm, 0, sizeof(pm));
    gh_id_new(pm.id, "card");
    snprintf(pm.org_id, sizeof(pm.org_id), "%s", org_id);
    snprintf(pm.provider, sizeof(pm.provider), "%s",
             app->pay ? app->pay->ops->name : app->cfg->pay_provider);
    snprintf(pm.provider_ref, sizeof(pm.provider_ref), "%s", card->ref);
    snprintf(pm.brand, sizeof(pm.brand), "%s", card->brand);
    snprintf(pm.last4, sizeof(pm.last4), "%s", card->last4);
    pm.exp_month = card->exp_month;
    pm.exp_year = card->exp_year;
    pm.created_at = app->now();
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    if (card->ref[0]) {
        /* The provider's card that is already the current one (a setup finished twice, or
         * by the console and the provider's webhook both): nothing to add. */
        gh_payment_method_t cur;
        rc = gh_store_payment_method_current(db, org_id, &cur);
        if (rc == GH_OK && !strcmp(cur.provider_ref, card->ref)) {
            gh_store_rollback(db);
            if (out)
                *out = cur;
            return GH_OK;
        }
        if (rc && rc != GH_ENOTFOUND)
            goto out_rollback;
    }
    char replaced[GH_ID_MAX] = "";
    if ((rc = gh_store_payment_method_add(db, &pm, replaced)))
        goto out_rollback;
    json_t *details = json_pack("{s:s, s:s, s:i, s:i}", "brand", pm.brand, "last4", pm.last4,
                                "exp_month", pm.exp_month, "exp_year", pm.exp_year);
    if (replaced[0])
        json_object_set_new(details, "replaced", json_string(replaced));
    if ((rc = gh_audit(app, db, actor, "payment_method.added", "payment_method", pm.id,
                       details)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    if (out)
        *out = pm;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_billing_card_add(gh_app_t *app, const gh_actor_t *actor, const char *number,
                             int exp_month, int exp_year, const char *cvc,
                             gh_payment_method_t *out, char *msg, size_t msg_size)
{
    assert(app->pay);
    gh_card_t card;
    memset(&card, 0, sizeof(card));
    gh_err_t rc = app->pay->ops->card_from_details(app->pay, number, exp_month, exp_year, cvc,
                                                   app->now(), &card, msg, msg_size);
    if (rc)
        return rc;
    return gh_billing_card_set(app, actor, actor->org_id, &card, out);
}

/* A provider's error from a card setup, for the API: its own refusals (a bad key) are the
 * operator's problem, not the caller's. */
static gh_err_t setup_error(gh_err_t rc)
{
    return rc == GH_EBILLING ? GH_EINTERNAL : rc;
}

gh_err_t gh_billing_setup_start(gh_app_t *app, const gh_actor_t *actor,
                                const char *fallback_email,
                                char client_secret[GH_PAY_SECRET_MAX], char *msg,
                                size_t msg_size)
{
    assert(app->pay);
    client_secret[0] = '\0';
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if (!gh_pay_is_stripe(app->pay)) {
        snprintf(msg, msg_size, "The test payment provider takes card details directly: POST "
                                "/v1/organizations/billing/payment_method with number, "
                                "exp_month, exp_year and cvc.");
        return GH_EINVAL;
    }
    gh_org_settings_t org;
    char was[GH_PAY_REF_MAX], ref[GH_PAY_REF_MAX];
    gh_err_t rc = gh_store_org_settings_get(db, actor->org_id, &org);
    if (!rc)
        rc = gh_billing_customer_ref(app, actor->org_id, was);
    if (rc)
        return rc;
    const char *email = org.billing_email[0] ? org.billing_email : fallback_email;
    if (!email || !*email) {
        snprintf(msg, msg_size, "Set the organization's billing email first (POST "
                                "/v1/organizations/me/settings): the payment provider needs "
                                "one for the customer.");
        return GH_EINVAL;
    }
    snprintf(ref, sizeof(ref), "%s", was);
    rc = app->pay->ops->setup_start(app->pay, actor->org_id, email, ref, client_secret, msg,
                                    msg_size);
    if (rc == GH_ENOTFOUND && was[0]) {
        /* The customer was deleted at the provider: make a new one. */
        gh_log_warn("billing: the payment provider no longer knows customer %s of %s; "
                    "creating a new one", was, actor->org_id);
        ref[0] = '\0';
        rc = app->pay->ops->setup_start(app->pay, actor->org_id, email, ref, client_secret,
                                        msg, msg_size);
    }
    /* A new customer is kept even when the setup itself failed. */
    if (ref[0] && strcmp(ref, was)) {
        gh_err_t src = gh_billing_customer_ref_set(app, actor->org_id, ref);
        if (src) {
            client_secret[0] = '\0';
            return src;
        }
        gh_log_info("billing: %s is customer %s at the payment provider", actor->org_id, ref);
    }
    if (rc)
        client_secret[0] = '\0';
    return setup_error(rc);
}

gh_err_t gh_billing_setup_finish(gh_app_t *app, const gh_actor_t *actor, const char *setup_ref,
                                 gh_payment_method_t *out, char *msg, size_t msg_size)
{
    assert(app->pay);
    if (!gh_pay_is_stripe(app->pay)) {
        snprintf(msg, msg_size, "setup_intent is only for [billing] provider = stripe; the test "
                                "provider takes number, exp_month, exp_year and cvc.");
        return GH_EINVAL;
    }
    char customer[GH_PAY_REF_MAX];
    gh_err_t rc = gh_billing_customer_ref(app, actor->org_id, customer);
    if (rc)
        return rc;
    if (!customer[0]) {
        snprintf(msg, msg_size, "This card setup is unknown: start one with POST "
                                "/v1/organizations/billing/setup_intent.");
        return GH_EINVAL;
    }
    gh_card_t card;
    rc = app->pay->ops->setup_finish(app->pay, customer, setup_ref, &card, msg, msg_size);
    if (rc)
        return setup_error(rc);
    return gh_billing_card_set(app, actor, actor->org_id, &card, out);
}

gh_err_t gh_billing_customer_ref(gh_app_t *app, const char *org_id, char out[GH_PAY_REF_MAX])
{
    gh_db_t *db = gh_store_db(app->store);
    gh_billing_account_t a;
    gh_err_t rc = db ? gh_billing_load_account(db, org_id, &a) : GH_ESTORE;
    if (!rc)
        snprintf(out, GH_PAY_REF_MAX, "%s", a.customer_ref);
    return rc;
}

gh_err_t gh_billing_customer_ref_set(gh_app_t *app, const char *org_id, const char *ref)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_billing_customer_ref_put(db, org_id, ref, app->now()) : GH_ESTORE;
}

/* ---- the first-purchase questions ---- */

gh_err_t gh_billing_profile_set(gh_app_t *app, const gh_actor_t *actor,
                                const gh_billing_profile_in_t *in, gh_billing_account_t *out,
                                char *msg, size_t msg_size)
{
    char use[INTENDED_USE_CHARS_MAX * 4 + 1];
    gh_err_t rc = gh_text_clean_note(in->intended_use, "intended_use", INTENDED_USE_CHARS_MAX, use,
                             sizeof(use), msg, msg_size);
    if (rc)
        return rc;
    if (in->ncountries == 0 || in->ncountries > GH_COUNTRY_COUNT) {
        snprintf(msg, msg_size, "countries must list the countries where the API will be used "
                                "(ISO codes such as \"US\" or \"IT\"), at least one.");
        return GH_EINVAL;
    }
    json_t *countries = json_array(), *industries = json_array();
    rc = GH_EINVAL;
    for (size_t i = 0; i < in->ncountries; i++) {
        char code[3] = "";
        const char *c = in->countries[i];
        if (c && strlen(c) == 2)
            for (int k = 0; k < 2; k++)
                code[k] = (char)(c[k] >= 'a' && c[k] <= 'z' ? c[k] - 'a' + 'A' : c[k]);
        if (!gh_country_name(code)) {
            snprintf(msg, msg_size, "countries: \"%.16s\" is not an ISO 3166 country code; use "
                                    "two letters such as US, GB or IT.", c ? c : "");
            goto out;
        }
        bool seen = false;
        for (size_t k = 0; k < json_array_size(countries) && !seen; k++)
            seen = !strcmp(json_string_value(json_array_get(countries, k)), code);
        if (!seen)
            json_array_append_new(countries, json_string(code));
    }
    for (size_t i = 0; i < in->nindustries; i++) {
        const char *name = in->industries[i];
        bool known = false;
        for (const char *const *k = gh_billing_industries; *k && !known; k++)
            known = name && !strcmp(*k, name);
        if (!known) {
            snprintf(msg, msg_size, "regulated_industries: \"%.40s\" is not one of healthcare, "
                                    "financial_services, insurance, legal, government, "
                                    "education, critical_infrastructure, other.",
                     name ? name : "");
            goto out;
        }
        bool seen = false;
        for (size_t k = 0; k < json_array_size(industries) && !seen; k++)
            seen = !strcmp(json_string_value(json_array_get(industries, k)), name);
        if (!seen)
            json_array_append_new(industries, json_string(name));
    }
    char *countries_text = json_dumps(countries, JSON_COMPACT);
    char *industries_text = json_dumps(industries, JSON_COMPACT);
    gh_db_t *db = gh_store_db(app->store);
    rc = !countries_text || !industries_text ? GH_ENOMEM : !db ? GH_ESTORE : gh_store_begin(db);
    if (!rc) {
        json_t *details = json_pack("{s:O, s:O, s:i}", "countries", countries,
                                    "regulated_industries", industries, "intended_use_chars",
                                    (int)gh_utf8_chars(use));
        if ((rc = gh_store_billing_profile_put(db, actor->org_id, use, countries_text,
                                               industries_text, app->now())) ||
            (rc = gh_audit(app, db, actor, "billing_profile.updated", "organization",
                           actor->org_id, details)) ||
            (rc = gh_store_commit(db)) || (rc = gh_store_billing_account_get(db, actor->org_id,
                                                                             out)))
            gh_store_rollback(db);
    }
    free(countries_text);
    free(industries_text);
out:
    json_decref(countries);
    json_decref(industries);
    return rc;
}

/* ---- the scheduler ---- */

gh_err_t gh_billing_new(gh_billing_t **out, gh_app_t *app)
{
    gh_billing_t *b = calloc(1, sizeof(*b));
    if (!b)
        return GH_ENOMEM;
    b->app = app;
    b->started_at = app->now();
    pthread_mutex_init(&b->lock, NULL);
    gh_mono_cond_init(&b->wake);
    gh_mono_cond_init(&b->settled);
    app->billing = b;
    *out = b;
    return GH_OK;
}

void gh_billing_kick(gh_billing_t *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->kicked = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
}

/* Logs a failed step of a pass. An unavailable database (a PostgreSQL outage) is said once
 * until a pass gets through again: every pass meanwhile fails the same way. Returns whether
 * the database was unavailable. */
static bool pass_failed(gh_billing_t *b, const char *what, gh_err_t rc)
{
    if (rc != GH_EUNAVAIL) {
        gh_log_error("billing: %s failed (%s)", what, gh_err_name(rc));
        return false;
    }
    pthread_mutex_lock(&b->lock);
    bool logged = b->db_down_logged;
    b->db_down_logged = true;
    pthread_mutex_unlock(&b->lock);
    if (!logged)
        gh_log_error("billing: %s failed: the database is unavailable; every pass tries again "
                     "(said once until one gets through)",
                     what);
    return true;
}

void gh_billing_pass(gh_billing_t *b)
{
    gh_app_t *app = b->app;
    int expired = 0;
    bool down = false;
    gh_err_t rc;
    if ((rc = gh_billing_expire(app, &expired)))
        down |= pass_failed(b, "expiring lots", rc);
    if (expired)
        gh_log_info("billing: expired what was left of %d credit lots", expired);
    if ((rc = gh_billing_retry_pending(app, NULL)))
        down |= pass_failed(b, "retrying pending purchases", rc);
    if ((rc = gh_billing_auto_reload_check(app, NULL)))
        down |= pass_failed(b, "the auto-reload check", rc);
    pthread_mutex_lock(&b->lock);
    if (!down && b->db_down_logged) {
        b->db_down_logged = false;
        gh_log_info("billing: the database is available again");
    }
    b->stats.passes++;
    b->stats.lots_expired += (uint64_t)expired;
    pthread_mutex_unlock(&b->lock);
}

/* Waits, with the lock held, until `until`, until stopping, or with `on_kick` until kicked.
 * Returns false when stopping. */
static bool wait_locked(gh_billing_t *b, const struct timespec *until, bool on_kick)
{
    while (!b->stopping && !(on_kick && b->kicked))
        if (pthread_cond_timedwait(&b->wake, &b->lock, until) == ETIMEDOUT)
            break;
    return !b->stopping;
}

/* In a cluster only the leader runs the passes (core/cluster.h): two nodes expiring the same
 * lot or charging the same card for an auto-reload would do it twice. A kick on another node
 * (its usage committed, a setting changed there) is passed on to the leader. */
static void *scheduler_main(void *arg)
{
    gh_billing_t *b = arg;
    bool kicked = true;
    for (;;) {
        struct timespec gap, tick;
        gh_mono_deadline(&tick, (int64_t)b->app->cfg->billing_scheduler_interval_s * 1000);
        if (gh_cluster_leader(b->app->cluster))
            gh_billing_pass(b);
        else if (kicked)
            gh_cluster_kick_leader(b->app->cluster);
        gh_mono_deadline(&gap, KICK_GAP_MS);
        pthread_mutex_lock(&b->lock);
        /* A short gap after every pass, so a stream of usage commits does not keep the
         * scheduler busy; then until the next tick or kick. */
        bool go = wait_locked(b, &gap, false) && wait_locked(b, &tick, true);
        kicked = b->kicked;
        b->kicked = false;
        pthread_mutex_unlock(&b->lock);
        if (!go)
            break;
    }
    return NULL;
}

gh_err_t gh_billing_start(gh_billing_t *b, char *err, size_t err_size)
{
    if (pthread_create(&b->thread, NULL, scheduler_main, b)) {
        snprintf(err, err_size, "cannot start the billing scheduler thread");
        return GH_EINTERNAL;
    }
    b->started = true;
    return GH_OK;
}

void gh_billing_stats(gh_billing_t *b, gh_billing_stats_t *out)
{
    pthread_mutex_lock(&b->lock);
    *out = b->stats;
    pthread_mutex_unlock(&b->lock);
}

void gh_billing_free(gh_billing_t *b)
{
    if (!b)
        return;
    if (b->started) {
        pthread_mutex_lock(&b->lock);
        b->stopping = true;
        pthread_cond_signal(&b->wake);
        pthread_mutex_unlock(&b->lock);
        pthread_join(b->thread, NULL);
    }
    if (b->app->billing == b)
        b->app->billing = NULL;
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
    pthread_cond_destroy(&b->settled);
    free(b);
}

gh_err_t gh_billing_cards_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                               gh_store_payment_method_fn fn, void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_payment_methods_list(db, org_id, page, fn, ctx, has_more) : GH_ESTORE;
}
