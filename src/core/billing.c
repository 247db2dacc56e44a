/* Billing: purchases, the ledger of credit lots, invoices, auto-reload and the scheduler.
 * See billing.h for the model; the order of operations that makes purchases crash-safe is in
 * gh_billing_purchase and charge_and_resolve below. */
#include "core/billing.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/admission.h"
#include "core/audit.h"
#include "core/notify.h"
#include "core/outbox.h"
#include "core/country.h"
#include "core/pay_stripe.h"
#include "core/pay_test.h"
#include "lib/card.h"
#include "lib/log.h"
#include "lib/mail.h"
#include "lib/money.h"
#include "lib/text.h"

#define CENT_NUSD (GH_NUSD_PER_USD / 100)
#define INFLIGHT_MAX 256     /* purchases being charged at once in this process */
#define LOTS_PER_TX 64       /* lots expired per transaction */
#define PENDING_PER_PASS 32  /* pending purchases retried per scheduler pass */
#define RELOADS_PER_PASS 64  /* auto-reloads started per scheduler pass */
#define KICK_GAP_MS 50       /* the least time between two passes asked for by kicks */
#define RECIPIENTS_MAX 20
#define REASON_CHARS_MAX 500
#define INTENDED_USE_CHARS_MAX 500
#define AMOUNT_LIMIT_NUSD (1000000 * GH_NUSD_PER_USD) /* thresholds and grants */
#define REVERSE_CHARGE_LABEL "VAT 0% (reverse charge)"
#define REVERSE_CHARGE_NOTE                                                                    \
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council "         \
    "Directive 2006/112/EC)."

static_assert(GH_PAY_REF_MAX == GH_PAY_REF_SIZE, "the store keeps provider refs whole");
static_assert(GH_NUSD_PER_USD % 100 == 0, "a cent is a whole number of nano-USD");

const char *const gh_billing_industries[] = {
    "healthcare", "financial_services", "insurance", "legal", "government", "education",
    "critical_infrastructure", "other", NULL,
};

struct gh_billing {
    gh_app_t *app;
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* the scheduler waits here between passes */
    pthread_cond_t settled; /* requests waiting for a purchase another thread is charging */
    bool kicked, stopping, started;
    pthread_t thread;
    int64_t started_at; /* purchases last attempted before this belong to a previous run */
    char inflight[INFLIGHT_MAX][GH_ID_MAX];
    size_t ninflight;
    gh_billing_stats_t stats;
};

/* ---- small helpers ---- */

/* "$12.50" into `buf`. */
static const char *usd(int64_t nusd, char buf[GH_MONEY_TEXT_MAX + 1])
{
    char text[GH_MONEY_TEXT_MAX];
    gh_money_format_usd(nusd, text);
    snprintf(buf, GH_MONEY_TEXT_MAX + 1, "$%s", text);
    return buf;
}

static void date_utc(int64_t t, char out[16])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

static int64_t expiry_s(const gh_config_t *cfg)
{
    return cfg->credit_expiry_s > 0 ? cfg->credit_expiry_s
                                    : (int64_t)cfg->credit_expiry_days * 86400;
}

static void system_actor(gh_actor_t *a, const char *org_id, const char *label)
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
static void tax_for(const gh_config_t *cfg, const gh_org_settings_t *org, int64_t amount,
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
static gh_err_t mail_org(gh_app_t *app, gh_db_t *db, const char *org_id, bool contacts,
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
static bool claim(gh_billing_t *b, const char *id)
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

static void release(gh_billing_t *b, const char *id)
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

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits (bounded) while another thread is charging `id`; true when it is no longer. */
static bool wait_settled(gh_billing_t *b, const char *id, int64_t timeout_ms)
{
    struct timespec until;
    deadline_in(&until, timeout_ms);
    pthread_mutex_lock(&b->lock);
    while (inflight_locked(b, id))
        if (pthread_cond_timedwait(&b->settled, &b->lock, &until) == ETIMEDOUT)
            break;
    bool done = !inflight_locked(b, id);
    pthread_mutex_unlock(&b->lock);
    return done;
}

/* ---- the ledger ---- */

static gh_err_t append(gh_db_t *db, const char *org_id, const char *lot_id, const char *kind,
                       int64_t amount, const char *reference, const char *reason, int64_t now)
{
    gh_ledger_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.org_id, sizeof(e.org_id), "%s", org_id);
    snprintf(e.lot_id, sizeof(e.lot_id), "%s", lot_id ? lot_id : "");
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    e.amount_nusd = amount;
    snprintf(e.reference, sizeof(e.reference), "%s", reference);
    snprintf(e.reason, sizeof(e.reason), "%s", reason ? reason : "");
    e.created_at = now;
    return gh_store_ledger_append(db, &e);
}

/* Takes up to `amount` from the organization's open lots, expiring first first, with one
 * entry of `kind` per lot; with `overdraw`, what no lot covers goes into one entry with no
 * lot. `*taken` (may be NULL) receives what was taken. Inside the caller's transaction. */
static gh_err_t draw(gh_db_t *db, const char *org_id, int64_t amount, int64_t now,
                     const char *kind, const char *reference, const char *reason, bool overdraw,
                     int64_t *taken)
{
    assert(amount > 0);
    int64_t left = amount;
    gh_err_t rc = GH_OK;
    while (left > 0) {
        gh_credit_lot_t lot;
        rc = gh_store_lot_first_open(db, org_id, now, &lot);
        if (rc == GH_ENOTFOUND) {
            rc = GH_OK;
            break;
        }
        if (rc)
            return rc;
        assert(lot.remaining_nusd > 0);
        int64_t take = left < lot.remaining_nusd ? left : lot.remaining_nusd;
        if ((rc = append(db, org_id, lot.id, kind, -take, reference, reason, now)) ||
            (rc = gh_store_lot_set_remaining(db, lot.id, lot.remaining_nusd - take)))
            return rc;
        left -= take;
    }
    if (left > 0 && overdraw) {
        if ((rc = append(db, org_id, NULL, kind, -left, reference, reason, now)))
            return rc;
        left = 0;
    }
    if (taken)
        *taken = amount - left;
    return GH_OK;
}

/* Opens a lot of `amount` (a purchase or a grant) with its entry; when usage has driven the
 * balance below zero, the new lot settles that first (two entries that cancel out in the
 * balance: the lot gives, the unallocated debt takes). Re-arms auto-reload when the balance
 * is back at its threshold. Inside the caller's transaction. */
static gh_err_t open_lot(gh_app_t *app, gh_db_t *db, const char *org_id, const char *source,
                         const char *source_ref, int64_t amount, const char *reason,
                         int64_t now, gh_credit_lot_t *out)
{
    gh_credit_lot_t lot;
    memset(&lot, 0, sizeof(lot));
    gh_id_new(lot.id, "lot");
    snprintf(lot.org_id, sizeof(lot.org_id), "%s", org_id);
    snprintf(lot.source, sizeof(lot.source), "%s", source);
    snprintf(lot.source_ref, sizeof(lot.source_ref), "%s", source_ref);
    lot.amount_nusd = amount;
    lot.remaining_nusd = amount;
    lot.created_at = now;
    lot.expires_at = now + expiry_s(app->cfg);
    int64_t unallocated = 0;
    gh_err_t rc;
    if ((rc = gh_store_lot_insert(db, &lot)) ||
        (rc = append(db, org_id, lot.id, source, amount, source_ref, reason, now)) ||
        (rc = gh_store_ledger_unallocated(db, org_id, &unallocated)))
        return rc;
    assert(unallocated <= 0);
    if (unallocated < 0) {
        int64_t settle = -unallocated < amount ? -unallocated : amount;
        const char *why = "Settles usage beyond the credits there were";
        if ((rc = append(db, org_id, lot.id, "settlement", -settle, lot.id, why, now)) ||
            (rc = append(db, org_id, NULL, "settlement", settle, lot.id, why, now)))
            return rc;
        lot.remaining_nusd -= settle;
        if ((rc = gh_store_lot_set_remaining(db, lot.id, lot.remaining_nusd)))
            return rc;
    }
    if ((rc = gh_store_billing_rearm(db, org_id)))
        return rc;
    if (out)
        *out = lot;
    return GH_OK;
}

gh_err_t gh_billing_charge_usage(gh_app_t *app, gh_db_t *db, const gh_usage_charge_t *charges,
                                 size_t n)
{
    int64_t now = app->now();
    for (size_t i = 0; i < n; i++) {
        const gh_usage_charge_t *c = &charges[i];
        if (c->cost_nusd <= 0)
            continue;
        char ref[128];
        snprintf(ref, sizeof(ref), "usage:%lld-%lld", (long long)c->first_seq,
                 (long long)c->last_seq);
        /* Each organization in a savepoint: one that cannot be charged (an organization that
         * no longer exists) must not keep the other events out of the database. The ledger
         * check reports the difference. */
        gh_err_t rc = gh_store_begin(db);
        if (rc)
            return rc;
        rc = draw(db, c->org_id, c->cost_nusd, now, "usage", ref, NULL, true, NULL);
        if (rc == GH_ECONFLICT) {
            gh_store_rollback(db);
            gh_log_error("billing: usage %s of %s could not be charged (no such organization)",
                         ref, c->org_id);
            continue;
        }
        if (rc) {
            gh_store_rollback(db);
            return rc;
        }
        /* Spend notifications, in the same transaction as the charge (core/notify.h). A rule
         * that cannot be checked must not keep the usage out: its own savepoint. */
        if (!(rc = gh_store_begin(db))) {
            if ((rc = gh_notify_check(app, db, c->org_id, c->cost_nusd)) || (rc = gh_store_commit(db))) {
                gh_store_rollback(db);
                gh_log_error("billing: spend notifications of %s could not be checked (%s)",
                             c->org_id, gh_err_name(rc));
            }
        }
        if ((rc = gh_store_commit(db)))
            return rc;
    }
    return GH_OK;
}

static gh_err_t usage_charge_cb(void *ctx, gh_db_t *db, const gh_usage_charge_t *charges,
                                size_t n)
{
    return gh_billing_charge_usage(ctx, db, charges, n);
}

static void usage_committed_cb(void *ctx)
{
    gh_app_t *app = ctx;
    gh_billing_kick(app->billing);
    gh_notify_committed(app);
}

void gh_billing_usage_hook(gh_app_t *app, gh_usage_hook_t *out)
{
    out->charge = usage_charge_cb;
    out->committed = usage_committed_cb;
    out->ctx = app;
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
static gh_err_t load_account(gh_db_t *db, const char *org_id, gh_billing_account_t *out)
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
    gh_err_t rc = load_account(db, org_id, &out->account);
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
        system_actor(&sys, org_id, "payment provider");
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
    gh_err_t rc = db ? load_account(db, org_id, &a) : GH_ESTORE;
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

/* ---- invoices and receipts ---- */

static void party_from_settings(gh_invoice_party_rec_t *p, const gh_org_settings_t *s)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", s->legal_name[0] ? s->legal_name : s->name);
    snprintf(p->line1, sizeof(p->line1), "%s", s->line1);
    snprintf(p->line2, sizeof(p->line2), "%s", s->line2);
    snprintf(p->city, sizeof(p->city), "%s", s->city);
    snprintf(p->postal_code, sizeof(p->postal_code), "%s", s->postal_code);
    snprintf(p->state, sizeof(p->state), "%s", s->state);
    snprintf(p->country, sizeof(p->country), "%s", s->country);
    snprintf(p->vat_id, sizeof(p->vat_id), "%s", s->vat_id);
    snprintf(p->email, sizeof(p->email), "%s", s->billing_email);
}

static void party_from_config(gh_invoice_party_rec_t *p, const gh_config_t *c)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", c->seller_name[0] ? c->seller_name : c->product_name);
    snprintf(p->line1, sizeof(p->line1), "%s", c->seller_line1);
    snprintf(p->line2, sizeof(p->line2), "%s", c->seller_line2);
    snprintf(p->city, sizeof(p->city), "%s", c->seller_city);
    snprintf(p->postal_code, sizeof(p->postal_code), "%s", c->seller_postal_code);
    snprintf(p->state, sizeof(p->state), "%s", c->seller_state);
    snprintf(p->country, sizeof(p->country), "%s", c->seller_country);
    snprintf(p->vat_id, sizeof(p->vat_id), "%s", c->seller_vat_id);
    snprintf(p->email, sizeof(p->email), "%.254s", c->seller_email);
}

/* Issues the invoice of a purchase being credited, taking the year's next number. Inside the
 * crediting transaction, so numbers have no gaps. */
static gh_err_t issue_invoice(gh_app_t *app, gh_db_t *db, const gh_purchase_t *p,
                              const gh_payment_method_t *pm, int64_t now, gh_invoice_rec_t *inv)
{
    gh_org_settings_t org;
    gh_err_t rc = gh_store_org_settings_get(db, p->org_id, &org);
    if (rc)
        return rc;
    memset(inv, 0, sizeof(*inv));
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    inv->year = tm.tm_year + 1900;
    if ((rc = gh_store_invoice_next_seq(db, inv->year, &inv->seq)))
        return rc;
    gh_id_new(inv->id, "inv");
    snprintf(inv->org_id, sizeof(inv->org_id), "%s", p->org_id);
    snprintf(inv->purchase_id, sizeof(inv->purchase_id), "%s", p->id);
    snprintf(inv->number, sizeof(inv->number), "%s-%04d-%06lld", app->cfg->invoice_prefix,
             inv->year, (long long)inv->seq);
    inv->issued_at = now;
    snprintf(inv->currency, sizeof(inv->currency), "USD");
    snprintf(inv->description, sizeof(inv->description), "%.60s API credits%s",
             app->cfg->product_name, !strcmp(p->kind, "auto_reload") ? " (auto-reload)" : "");
    inv->subtotal_nusd = p->amount_nusd;
    inv->tax_nusd = p->tax_nusd;
    inv->total_nusd = p->total_nusd;
    snprintf(inv->tax_label, sizeof(inv->tax_label), "%s", p->tax_label);
    snprintf(inv->note, sizeof(inv->note), "%s",
             !strcmp(p->tax_label, REVERSE_CHARGE_LABEL) ? REVERSE_CHARGE_NOTE : "");
    snprintf(inv->payment, sizeof(inv->payment), "%s ending in %s",
             gh_card_brand_label(pm->brand), pm->last4);
    /* The test provider, or Stripe with a test key: no money moved. */
    inv->test_mode = !strcmp(p->provider, "test") ||
                     (app->pay && !strcmp(app->pay->ops->name, p->provider) &&
                      app->pay->ops->test_mode);
    party_from_config(&inv->seller, app->cfg);
    party_from_settings(&inv->buyer, &org);
    return gh_store_invoice_insert(db, inv);
}

static gh_err_t send_receipt(gh_app_t *app, gh_db_t *db, const gh_purchase_t *p,
                             const gh_invoice_rec_t *inv, int64_t balance)
{
    char amount[40], tax[40], total[40], bal[40], date[16], subject[200], body[2048];
    date_utc(inv->issued_at, date);
    snprintf(subject, sizeof(subject), "Receipt for your %.60s credits (%s)",
             app->cfg->product_name, inv->number);
    snprintf(body, sizeof(body),
             "Thank you: your purchase of %s credits went through.\n\n"
             "Credits added:   %s\n"
             "%-16s %s\n"
             "Total charged:   %s to %s\n"
             "Date:            %s (UTC)\n"
             "Invoice:         %s\n"
             "Balance now:     %s\n\n"
             "The invoice can be downloaded from the console's billing page: %s/settings/billing\n"
             "%s%s",
             app->cfg->product_name, usd(p->amount_nusd, amount), p->tax_label,
             usd(p->tax_nusd, tax), usd(p->total_nusd, total), inv->payment, date, inv->number,
             usd(balance, bal), app->cfg->public_url,
             !strcmp(p->kind, "auto_reload")
                 ? "\nThis purchase was made by auto-reload, because the balance fell below the "
                   "threshold you set.\n"
                 : "",
             inv->test_mode ? !strcmp(p->provider, "test")
                                  ? "\nTest mode: the test payment provider was used; no money "
                                    "was charged.\n"
                                  : "\nTest mode: the payment provider's test mode was used; no "
                                    "money was charged.\n"
                            : "");
    return mail_org(app, db, p->org_id, false, subject, body);
}

static gh_err_t mail_reload_off(gh_app_t *app, gh_db_t *db, const char *org_id,
                                const char *reason)
{
    char body[1400];
    snprintf(body, sizeof(body),
             "Auto-reload of your %s credits has been turned off.\n\n"
             "Why: %s\n\n"
             "No credits were added. Your API requests keep working while credits last. To turn "
             "auto-reload back on, check the card on file in the console (%s/settings/billing) "
             "and enable auto-reload again.\n",
             app->cfg->product_name, reason, app->cfg->public_url);
    return mail_org(app, db, org_id, true, "Auto-reload is off: the payment did not go through",
                    body);
}

/* ---- purchases ---- */

/* What resolving a purchase did, for what follows its commit (mail, the log). */
typedef struct {
    bool changed;    /* the purchase was still open and is now resolved (or attempted) */
    bool credited;   /* succeeded: a lot, an entry and an invoice were added */
    bool reload_off; /* a declined reload turned auto-reload off */
    bool revived;    /* a purchase given up as unconfirmed turned out to be paid */
    gh_purchase_t p;
    gh_invoice_rec_t inv;
} resolved_t;

/* Records a provider's outcome for purchase `id`, as `actor` (NULL: the system), in a
 * transaction (a savepoint inside the caller's). With `revive`, a succeeded outcome also
 * settles a purchase given up as unconfirmed. Nothing is mailed here: see resolved_after. */
static gh_err_t resolve_tx(gh_app_t *app, gh_db_t *db, const char *id,
                           const gh_pay_result_t *res, const gh_actor_t *actor, bool revive,
                           resolved_t *r)
{
    assert(res->status == GH_PAY_SUCCEEDED || res->status == GH_PAY_DECLINED ||
           res->status == GH_PAY_PENDING);
    memset(r, 0, sizeof(*r));
    int64_t now = app->now();
    gh_purchase_t *p = &r->p;
    gh_payment_method_t pm;
    gh_actor_t sys;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    if ((rc = gh_store_purchase_get(db, NULL, id, p)))
        goto out_rollback;
    r->revived = revive && res->status == GH_PAY_SUCCEEDED && !strcmp(p->status, "declined") &&
                 !strcmp(p->decline_code, GH_BILLING_UNCONFIRMED);
    if (strcmp(p->status, "pending") && !r->revived) {
        /* Resolved before (a replayed webhook, a retry that raced): nothing to do. */
        gh_store_rollback(db);
        return GH_OK;
    }
    if (!actor) {
        system_actor(&sys, p->org_id, "billing");
        actor = &sys;
    }
    p->attempts++;
    p->updated_at = now;
    if (res->ref[0])
        snprintf(p->provider_ref, sizeof(p->provider_ref), "%s", res->ref);
    char amount[GH_MONEY_TEXT_MAX];
    json_t *details =
        json_pack("{s:s, s:s, s:s}", "kind", p->kind, "amount_usd",
                  gh_money_format_usd(p->amount_nusd, amount), "provider_ref", p->provider_ref);
    bool unconfirmed = res->status == GH_PAY_DECLINED &&
                       !strcmp(res->decline_code, GH_BILLING_UNCONFIRMED);
    switch (res->status) {
    case GH_PAY_SUCCEEDED:
        snprintf(p->status, sizeof(p->status), "succeeded");
        p->resolved_at = now;
        p->decline_code[0] = p->message[0] = '\0';
        if ((rc = gh_store_purchase_update(db, p)) ||
            (rc = gh_store_payment_method_get(db, p->org_id, p->payment_method_id, &pm)) ||
            (rc = open_lot(app, db, p->org_id, "purchase", p->id, p->amount_nusd, NULL, now,
                           NULL)) ||
            (rc = issue_invoice(app, db, p, &pm, now, &r->inv))) {
            json_decref(details);
            goto out_rollback;
        }
        json_object_set_new(details, "invoice", json_string(r->inv.number));
        if (r->revived)
            json_object_set_new(details, "after", json_string(GH_BILLING_UNCONFIRMED));
        rc = gh_audit(app, db, actor, "purchase.succeeded", "purchase", p->id, details);
        r->credited = true;
        break;
    case GH_PAY_DECLINED:
        snprintf(p->status, sizeof(p->status), "declined");
        p->resolved_at = now;
        snprintf(p->decline_code, sizeof(p->decline_code), "%s",
                 res->decline_code[0] ? res->decline_code : "card_declined");
        if (unconfirmed)
            snprintf(p->message, sizeof(p->message), "%s", res->message);
        else
            snprintf(p->message, sizeof(p->message),
                     "%s Nothing was charged and no credits were added. (decline code: %s)",
                     res->message[0] ? res->message : "Your card was declined.",
                     p->decline_code);
        json_object_set_new(details, "decline_code", json_string(p->decline_code));
        if ((rc = gh_store_purchase_update(db, p))) {
            json_decref(details);
            goto out_rollback;
        }
        if ((rc = gh_audit(app, db, actor, unconfirmed ? "purchase.unconfirmed"
                                                       : "purchase.declined",
                           "purchase", p->id, details)))
            goto out_rollback;
        if (!strcmp(p->kind, "auto_reload")) {
            /* A declined reload turns auto-reload off, with the reason, until someone turns it
             * back on. */
            gh_billing_account_t a;
            if ((rc = load_account(db, p->org_id, &a)) ||
                (rc = gh_store_billing_auto_reload_put(
                     db, p->org_id, false, a.auto_reload_threshold_nusd,
                     a.auto_reload_amount_nusd, false, p->message, now)) ||
                (rc = gh_audit(app, db, actor, "auto_reload.disabled", "organization",
                               p->org_id, json_pack("{s:s, s:s}", "purchase_id", p->id,
                                                    "reason", p->message))))
                goto out_rollback;
            r->reload_off = true;
        }
        break;
    case GH_PAY_PENDING:
        json_decref(details);
        snprintf(p->message, sizeof(p->message), "%s",
                 res->message[0] ? res->message
                                 : "The payment provider has not confirmed the payment yet.");
        rc = gh_store_purchase_update(db, p);
        break;
    }
    /* The mail it reports, in the same transaction (core/outbox.h): the receipt, the notice
     * that auto-reload is off. */
    if (!rc && r->credited) {
        gh_billing_account_t a;
        if ((rc = load_account(db, p->org_id, &a)) == GH_OK)
            rc = send_receipt(app, db, p, &r->inv, a.balance_nusd);
    }
    if (!rc && r->reload_off)
        rc = mail_reload_off(app, db, p->org_id, p->message);
    if (rc || (rc = gh_store_commit(db)))
        goto out_rollback;
    r->changed = true;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    memset(r, 0, sizeof(*r));
    return rc;
}

/* What follows a resolution once it is committed: the receipt, the log, the mail saying
 * auto-reload is off. */
static void resolved_after(gh_app_t *app, const resolved_t *r)
{
    const gh_purchase_t *p = &r->p;
    if (r->credited) {
        gh_admission_money_changed(app); /* the credit (and perhaps a tier) admits at once */
        char amount[GH_MONEY_TEXT_MAX];
        if (r->revived)
            gh_log_warn("billing: purchase %s, given up as unconfirmed, was paid after all: "
                        "credited now", p->id);
        gh_log_info("billing: purchase %s credited $%s to %s (invoice %s)", p->id,
                    gh_money_format_usd(p->amount_nusd, amount), p->org_id, r->inv.number);
    }
    if (r->changed && !strcmp(p->status, "declined") &&
        !strcmp(p->decline_code, GH_BILLING_UNCONFIRMED))
        gh_log_warn("billing: purchase %s gave up: not confirmed by the payment provider within "
                    "%d hours", p->id, GH_BILLING_GIVE_UP_S / 3600);
    if (r->reload_off) {
        gh_log_warn("billing: auto-reload of %s turned off: %s", p->org_id, p->message);
    }
    gh_outbox_kick(app); /* the receipt or the notice queued with the resolution */
}

/* Records a provider's outcome for purchase `id`, as `actor` (NULL: the system). */
static gh_err_t resolve_as(gh_app_t *app, const char *id, const gh_pay_result_t *res,
                           const gh_actor_t *actor, gh_purchase_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    resolved_t *r = malloc(sizeof(*r));
    if (!r)
        return GH_ENOMEM;
    gh_err_t rc = resolve_tx(app, db, id, res, actor, false, r);
    if (!rc)
        resolved_after(app, r);
    free(r);
    if (!rc && out)
        rc = gh_store_purchase_get(db, NULL, id, out);
    return rc;
}

gh_err_t gh_billing_purchase_resolve(gh_app_t *app, const char *purchase_id,
                                     const gh_pay_result_t *result, gh_purchase_t *out)
{
    return resolve_as(app, purchase_id, result, NULL, out);
}

/* Test only: the server dies between a successful charge and its credit (see billing.h). */
static void maybe_crash(gh_app_t *app, const gh_purchase_t *p, const gh_pay_result_t *res)
{
    const char *v = getenv(GH_BILLING_CRASH_ENV);
    if (res->status != GH_PAY_SUCCEEDED || !v || strcmp(v, "1") ||
        strcmp(app->pay->ops->name, "test"))
        return;
    gh_log_warn("billing: %s is set: exiting between the charge of %s and its credit",
                GH_BILLING_CRASH_ENV, p->id);
    _exit(75);
}

/* Charges `p`, which the calling thread has claimed, with its card and records the outcome;
 * releases the claim. Never inside a transaction: the provider may take its time. */
static gh_err_t charge_and_resolve(gh_app_t *app, const gh_purchase_t *p,
                                   const gh_actor_t *actor, gh_purchase_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    gh_payment_method_t pm;
    gh_billing_account_t account;
    gh_err_t rc = !db ? GH_ESTORE : gh_store_payment_method_get(db, p->org_id,
                                                                p->payment_method_id, &pm);
    if (!rc)
        rc = load_account(db, p->org_id, &account);
    if (rc) {
        release(app->billing, p->id);
        return rc;
    }
    gh_card_t card;
    memset(&card, 0, sizeof(card));
    snprintf(card.brand, sizeof(card.brand), "%s", pm.brand);
    snprintf(card.last4, sizeof(card.last4), "%s", pm.last4);
    card.exp_month = pm.exp_month;
    card.exp_year = pm.exp_year;
    snprintf(card.ref, sizeof(card.ref), "%s", pm.provider_ref);
    gh_pay_charge_t req = {
        .idempotency_key = p->id,
        .purchase_id = p->id,
        .org_id = p->org_id,
        .amount_nusd = p->total_nusd,
        .description = "Gatehouse credits",
        .customer_ref = account.customer_ref,
        .card = &card,
        .off_session = !strcmp(p->kind, "auto_reload"),
    };
    gh_pay_result_t res;
    memset(&res, 0, sizeof(res));
    gh_err_t prc = app->pay->ops->charge(app->pay, &req, &res);
    if (prc) {
        /* The request could not be made: the provider may or may not have the charge, so it
         * stays pending and is asked again with the same key. */
        memset(&res, 0, sizeof(res));
        res.status = GH_PAY_PENDING;
        snprintf(res.message, sizeof(res.message),
                 "The payment provider could not be reached (%s); the payment will be retried.",
                 gh_err_str(prc));
    }
    maybe_crash(app, p, &res);
    rc = resolve_as(app, p->id, &res, actor, out);
    release(app->billing, p->id);
    if (rc)
        gh_log_error("billing: the outcome of purchase %s could not be recorded (%s); it stays "
                     "pending and is retried", p->id, gh_err_name(rc));
    return rc;
}

/* The answer for a purchase as it now is: declined is GH_EBILLING with its message. */
static gh_err_t outcome(const gh_purchase_t *p, char *msg, size_t msg_size)
{
    if (strcmp(p->status, "declined"))
        return GH_OK;
    snprintf(msg, msg_size, "%s", p->message);
    return GH_EBILLING;
}

/* Whether pending `p` may still be charged again with its idempotency key: only within
 * GH_BILLING_GIVE_UP_S of its creation (the provider forgets keys after a day). */
static bool may_charge_again(gh_app_t *app, const gh_purchase_t *p)
{
    return app->now() - p->created_at < GH_BILLING_GIVE_UP_S;
}

/* Gives up pending purchase `id` (created GH_BILLING_GIVE_UP_S ago or more): declined as
 * unconfirmed, never charged again. A succeeded webhook may still credit it. */
static gh_err_t give_up(gh_app_t *app, const char *id)
{
    gh_pay_result_t res;
    memset(&res, 0, sizeof(res));
    res.status = GH_PAY_DECLINED;
    snprintf(res.decline_code, sizeof(res.decline_code), GH_BILLING_UNCONFIRMED);
    snprintf(res.message, sizeof(res.message),
             "The payment provider did not confirm this payment within %d hours, so no credits "
             "were added and it will not be charged again. If the card was charged, the "
             "credits are added as soon as the provider confirms it. (decline code: %s)",
             GH_BILLING_GIVE_UP_S / 3600, GH_BILLING_UNCONFIRMED);
    return resolve_as(app, id, &res, NULL, NULL);
}

/* A request with an idempotency key that already made `p`. */
static gh_err_t replay(gh_app_t *app, const gh_actor_t *actor, const gh_purchase_t *p,
                       int64_t amount, gh_purchase_t *out, char *msg, size_t msg_size)
{
    if (p->amount_nusd != amount) {
        char was[40];
        snprintf(msg, msg_size, "This idempotency-key was already used for a purchase of %s. "
                                "Use a new key for a new purchase.", usd(p->amount_nusd, was));
        return GH_ECONFLICT;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if (!strcmp(p->status, "pending")) {
        /* Being charged by another request (a double click): wait for its outcome. Not being
         * charged (it timed out earlier, or the process restarted): this request is a retry. */
        int64_t wait_ms = app->cfg->stripe_timeout_ms + 5000;
        gh_purchase_t now;
        gh_err_t rc;
        if (!wait_settled(app->billing, p->id, wait_ms))
            gh_log_warn("billing: purchase %s still being charged after %lld ms", p->id,
                        (long long)wait_ms);
        else if ((rc = gh_store_purchase_get(db, p->org_id, p->id, &now)))
            return rc;
        else if (!strcmp(now.status, "pending") && may_charge_again(app, &now) &&
                 claim(app->billing, p->id))
            (void)charge_and_resolve(app, &now, actor, NULL);
    }
    gh_err_t rc = gh_store_purchase_get(db, p->org_id, p->id, out);
    return rc ? rc : outcome(out, msg, msg_size);
}

static bool key_ok(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return false;
    return true;
}

/* Fills a new pending purchase of `amount` for `org`. */
static void new_purchase(gh_app_t *app, gh_purchase_t *p, const char *kind,
                         const gh_org_settings_t *org, const gh_payment_method_t *pm,
                         int64_t amount, const gh_actor_t *actor, int64_t now)
{
    memset(p, 0, sizeof(*p));
    gh_id_new(p->id, "pur");
    snprintf(p->org_id, sizeof(p->org_id), "%s", org->id);
    snprintf(p->kind, sizeof(p->kind), "%s", kind);
    snprintf(p->status, sizeof(p->status), "pending");
    p->amount_nusd = amount;
    tax_for(app->cfg, org, amount, &p->tax_nusd, p->tax_label);
    p->total_nusd = p->amount_nusd + p->tax_nusd;
    snprintf(p->payment_method_id, sizeof(p->payment_method_id), "%s", pm->id);
    snprintf(p->provider, sizeof(p->provider), "%s", app->pay->ops->name);
    snprintf(p->created_by_type, sizeof(p->created_by_type), "%s", gh_actor_type(actor));
    snprintf(p->created_by_id, sizeof(p->created_by_id), "%s", actor->id);
    p->created_at = p->updated_at = now;
}

gh_err_t gh_billing_purchase(gh_app_t *app, const gh_actor_t *actor, int64_t amount,
                             const char *key, gh_purchase_t *out, char *msg, size_t msg_size)
{
    assert(app->pay && app->billing);
    const gh_config_t *cfg = app->cfg;
    char a[40], b[40];
    if (!key_ok(key)) {
        snprintf(msg, msg_size, "Send an idempotency-key header of 1 to 255 printable characters "
                                "(a UUID is a good choice), so that a retried request never "
                                "buys twice.");
        return GH_EINVAL;
    }
    if (amount <= 0 || amount % CENT_NUSD) {
        snprintf(msg, msg_size, "amount_usd must be a positive amount in whole cents; the "
                                "minimum purchase is %s.", usd(cfg->min_purchase_nusd, a));
        return GH_EINVAL;
    }
    if (amount > cfg->max_purchase_nusd) {
        snprintf(msg, msg_size, "One purchase may be at most %s; %s is more.",
                 usd(cfg->max_purchase_nusd, a), usd(amount, b));
        return GH_EINVAL;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    int64_t now = app->now();
    gh_purchase_t p;
    gh_billing_account_t account;
    gh_payment_method_t pm;
    gh_purchase_stats_t stats;
    gh_org_settings_t org;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    rc = gh_store_purchase_by_key(db, actor->org_id, key, &p);
    if (rc == GH_OK) {
        gh_store_rollback(db);
        return replay(app, actor, &p, amount, out, msg, msg_size);
    }
    if (rc != GH_ENOTFOUND || (rc = load_account(db, actor->org_id, &account)))
        goto out_rollback;
    if (!account.profile_answered_at) {
        snprintf(msg, msg_size, "Before the first purchase, answer a few questions: POST "
                                "/v1/organizations/billing/profile with intended_use, countries "
                                "and regulated_industries.");
        rc = GH_EINVAL;
        goto out_rollback;
    }
    rc = gh_store_payment_method_current(db, actor->org_id, &pm);
    if (rc == GH_ENOTFOUND) {
        snprintf(msg, msg_size, "There is no card on file: add one with POST "
                                "/v1/organizations/billing/payment_method first.");
        rc = GH_EINVAL;
    }
    if (rc || (rc = gh_store_purchase_stats(db, actor->org_id, &stats)) ||
        (rc = gh_store_org_settings_get(db, actor->org_id, &org)))
        goto out_rollback;
    int64_t min = stats.succeeded ? cfg->min_purchase_nusd : cfg->first_purchase_min_nusd;
    if (amount < min) {
        snprintf(msg, msg_size, "The minimum %spurchase is %s; %s is less.",
                 stats.succeeded ? "" : "first ", usd(min, a), usd(amount, b));
        rc = GH_EINVAL;
        goto out_rollback;
    }
    new_purchase(app, &p, "manual", &org, &pm, amount, actor, now);
    snprintf(p.idempotency_key, sizeof(p.idempotency_key), "%s", key);
    if ((rc = gh_store_purchase_insert(db, &p)) ||
        (rc = gh_audit(app, db, actor, "purchase.created", "purchase", p.id,
                       json_pack("{s:s, s:s, s:s}", "kind", p.kind, "amount_usd",
                                 gh_money_format_usd(p.amount_nusd, a), "card", pm.last4))))
        goto out_rollback;
    /* Claimed before the purchase is visible, so a double click that finds it waits for this
     * request's outcome instead of charging it itself. */
    if (!claim(app->billing, p.id)) {
        snprintf(msg, msg_size, "Too many purchases are in progress. Try again in a moment.");
        rc = GH_EUNAVAIL;
        goto out_rollback;
    }
    if ((rc = gh_store_commit(db))) {
        release(app->billing, p.id);
        goto out_rollback;
    }
    rc = charge_and_resolve(app, &p, actor, out);
    if (rc) {
        /* Charged or not, the purchase is recorded as pending and will be resolved. */
        rc = gh_store_purchase_get(db, p.org_id, p.id, out);
        if (rc)
            return rc;
    }
    return outcome(out, msg, msg_size);
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_billing_purchase_get(gh_app_t *app, const char *org_id, const char *id,
                                 gh_purchase_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if (!gh_id_valid(id, "pur"))
        return GH_ENOTFOUND;
    return gh_store_purchase_get(db, org_id, id, out);
}

typedef struct {
    gh_purchase_t *items;
    size_t n, cap;
} purchases_t;

static void collect_purchase(void *ctx, const gh_purchase_t *p)
{
    purchases_t *l = ctx;
    if (l->n < l->cap)
        l->items[l->n++] = *p;
}

gh_err_t gh_billing_retry_pending(gh_app_t *app, int *retried)
{
    gh_billing_t *b = app->billing;
    assert(b && app->pay);
    if (retried)
        *retried = 0;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    int64_t now = app->now();
    /* Due: last tried pending_retry_s ago, or by a previous run of the process. */
    int64_t due = now - app->cfg->pending_retry_s;
    if (b->started_at - 1 > due)
        due = b->started_at - 1;
    purchases_t l = {.items = calloc(PENDING_PER_PASS, sizeof(gh_purchase_t)),
                     .cap = PENDING_PER_PASS};
    if (!l.items)
        return GH_ENOMEM;
    gh_err_t rc = gh_store_purchases_pending(db, due, PENDING_PER_PASS, collect_purchase, &l);
    for (size_t i = 0; i < l.n && !rc; i++) {
        if (!claim(b, l.items[i].id))
            continue; /* a request is charging it right now */
        if (!may_charge_again(app, &l.items[i])) {
            gh_err_t grc = give_up(app, l.items[i].id);
            release(b, l.items[i].id);
            if (grc)
                gh_log_error("billing: could not give up purchase %s (%s); tried again later",
                             l.items[i].id, gh_err_name(grc));
            continue;
        }
        gh_log_info("billing: retrying pending purchase %s (attempt %d)", l.items[i].id,
                    l.items[i].attempts + 1);
        pthread_mutex_lock(&b->lock);
        b->stats.retries++;
        pthread_mutex_unlock(&b->lock);
        (void)charge_and_resolve(app, &l.items[i], NULL, NULL);
        if (retried)
            (*retried)++;
    }
    free(l.items);
    return rc;
}

/* ---- provider webhooks ---- */

gh_err_t gh_billing_event_seen(gh_app_t *app, const char *id, bool *seen)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_webhook_event_exists(db, id, seen) : GH_ESTORE;
}

#define WHY(...)                                                                               \
    do {                                                                                       \
        if (why && why_size)                                                                   \
            snprintf(why, why_size, __VA_ARGS__);                                              \
    } while (0)

/* The purchase part of gh_billing_event_apply, inside its transaction. */
static gh_err_t event_purchase(gh_app_t *app, gh_db_t *db, const gh_billing_event_t *ev,
                               resolved_t *r, gh_billing_event_outcome_t *outcome, char *why,
                               size_t why_size)
{
    gh_purchase_t p;
    gh_err_t rc = gh_id_valid(ev->purchase_id ? ev->purchase_id : "", "pur")
                      ? gh_store_purchase_get(db, NULL, ev->purchase_id, &p)
                      : GH_ENOTFOUND;
    if (rc == GH_ENOTFOUND) {
        WHY("no purchase \"%.64s\" here", ev->purchase_id ? ev->purchase_id : "");
        return GH_OK;
    }
    if (rc)
        return rc;
    char a[40], b[40];
    const gh_pay_result_t *res = ev->result;
    if (strcmp(p.provider, ev->provider)) {
        WHY("purchase %s was made with provider %s", p.id, p.provider);
    } else if (ev->org_id && ev->org_id[0] && strcmp(ev->org_id, p.org_id)) {
        WHY("purchase %s belongs to another organization than the event says", p.id);
    } else if (ev->amount_nusd && ev->amount_nusd != p.total_nusd) {
        WHY("the event's amount %s differs from purchase %s's total %s", usd(ev->amount_nusd, a),
            p.id, usd(p.total_nusd, b));
    } else if (p.provider_ref[0] && res->ref[0] && strcmp(p.provider_ref, res->ref)) {
        WHY("purchase %s was charged as %s, not %s", p.id, p.provider_ref, res->ref);
    } else {
        if ((rc = resolve_tx(app, db, p.id, res, NULL, true, r)))
            return rc;
        if (r->changed) {
            *outcome = GH_BILLING_EVENT_APPLIED;
            WHY("purchase %s is now %s", p.id, r->p.status);
        } else {
            WHY("purchase %s was already %s", p.id, p.status);
        }
    }
    return GH_OK;
}

gh_err_t gh_billing_event_apply(gh_app_t *app, const gh_billing_event_t *ev,
                                gh_billing_event_outcome_t *outcome, char *why,
                                size_t why_size)
{
    *outcome = GH_BILLING_EVENT_IGNORED;
    WHY("nothing to do");
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    resolved_t *r = calloc(1, sizeof(*r));
    if (!r)
        return GH_ENOMEM;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        goto out;
    rc = gh_store_webhook_event_insert(db, ev->id, ev->provider, ev->type, app->now());
    if (rc == GH_ECONFLICT) {
        gh_store_rollback(db);
        *outcome = GH_BILLING_EVENT_DUPLICATE;
        WHY("event %s was handled before", ev->id);
        rc = GH_OK;
        goto out;
    }
    if (rc)
        goto out_rollback;
    if (ev->result) {
        rc = event_purchase(app, db, ev, r, outcome, why, why_size);
    } else if (ev->card && ev->org_id && ev->org_id[0]) {
        /* A card the organization ever had is not added again: a late event for a card
         * since replaced must not bring it back. */
        gh_payment_method_t pm;
        rc = gh_store_payment_method_by_ref(db, ev->org_id, ev->card->ref, &pm);
        if (rc == GH_OK) {
            WHY("card %s is already known as %s", ev->card->ref, pm.id);
        } else if (rc == GH_ENOTFOUND &&
                   !(rc = gh_billing_card_set(app, NULL, ev->org_id, ev->card, &pm))) {
            *outcome = GH_BILLING_EVENT_APPLIED;
            WHY("card %s saved as %s", ev->card->ref, pm.id);
        }
    }
    if (rc || (rc = gh_store_commit(db)))
        goto out_rollback;
    resolved_after(app, r);
    goto out;
out_rollback:
    gh_store_rollback(db);
    *outcome = GH_BILLING_EVENT_IGNORED;
out:
    free(r);
    return rc;
}

#undef WHY

/* ---- auto-reload ---- */

gh_err_t gh_billing_auto_reload_set(gh_app_t *app, const gh_actor_t *actor, bool enabled,
                                    const int64_t *threshold_in, const int64_t *amount_in,
                                    gh_billing_account_t *out, char *msg, size_t msg_size)
{
    const gh_config_t *cfg = app->cfg;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    char a[40], b[40];
    gh_billing_account_t acc;
    gh_payment_method_t pm;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    if ((rc = load_account(db, actor->org_id, &acc)))
        goto out_rollback;
    int64_t threshold = threshold_in ? *threshold_in
                        : acc.auto_reload_configured ? acc.auto_reload_threshold_nusd
                                                     : -1;
    int64_t amount = amount_in ? *amount_in
                     : acc.auto_reload_configured ? acc.auto_reload_amount_nusd
                                                  : -1;
    rc = GH_EINVAL;
    if (enabled && (threshold < 0 || amount < 0)) {
        snprintf(msg, msg_size, "To turn auto-reload on, send threshold_usd (reload when the "
                                "balance falls below it) and amount_usd (how much to buy).");
        goto out_rollback;
    }
    if ((threshold >= 0) != (amount >= 0)) {
        snprintf(msg, msg_size, "Send threshold_usd and amount_usd together the first time.");
        goto out_rollback;
    }
    if (threshold > AMOUNT_LIMIT_NUSD) {
        snprintf(msg, msg_size, "threshold_usd may be at most %s.", usd(AMOUNT_LIMIT_NUSD, a));
        goto out_rollback;
    }
    if (amount >= 0 && (amount < cfg->min_purchase_nusd || amount > cfg->max_purchase_nusd)) {
        snprintf(msg, msg_size, "amount_usd must be from %s (the minimum purchase) to %s.",
                 usd(cfg->min_purchase_nusd, a), usd(cfg->max_purchase_nusd, b));
        goto out_rollback;
    }
    if (enabled && !acc.profile_answered_at) {
        snprintf(msg, msg_size, "Before auto-reload can buy credits, answer the first-purchase "
                                "questions: POST /v1/organizations/billing/profile.");
        goto out_rollback;
    }
    rc = enabled ? gh_store_payment_method_current(db, actor->org_id, &pm) : GH_OK;
    if (rc == GH_ENOTFOUND) {
        snprintf(msg, msg_size, "Add a card before turning auto-reload on: POST "
                                "/v1/organizations/billing/payment_method.");
        rc = GH_EINVAL;
    }
    if (rc)
        goto out_rollback;
    json_t *details = json_object();
    char was[GH_MONEY_TEXT_MAX], now_[GH_MONEY_TEXT_MAX];
    bool had = acc.auto_reload_configured;
    if (acc.auto_reload_enabled != enabled)
        gh_audit_change(details, "enabled", acc.auto_reload_enabled ? "true" : "false",
                        enabled ? "true" : "false");
    if (threshold >= 0 && (!had || threshold != acc.auto_reload_threshold_nusd))
        gh_audit_change(details, "threshold_usd",
                        had ? gh_money_format_usd(acc.auto_reload_threshold_nusd, was) : "",
                        gh_money_format_usd(threshold, now_));
    if (amount >= 0 && (!had || amount != acc.auto_reload_amount_nusd))
        gh_audit_change(details, "amount_usd",
                        had ? gh_money_format_usd(acc.auto_reload_amount_nusd, was) : "",
                        gh_money_format_usd(amount, now_));
    bool changed = json_object_size(details) > 0;
    /* Turning it on arms it (when the balance is already below the threshold, the next check
     * reloads once); changing the amounts of a reload in progress does not. Any change made by
     * a person clears the reason Gatehouse turned it off. */
    bool armed = !enabled || !acc.auto_reload_enabled || acc.auto_reload_armed;
    const char *reason = enabled || changed ? NULL : acc.auto_reload_disabled_reason;
    rc = gh_store_billing_auto_reload_put(db, actor->org_id, enabled, threshold, amount, armed,
                                          reason, app->now());
    if (!rc && changed)
        rc = gh_audit(app, db, actor, "auto_reload.updated", "organization", actor->org_id,
                      details);
    else
        json_decref(details);
    if (rc || (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_billing_kick(app->billing);
    return gh_store_billing_account_get(db, actor->org_id, out);
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* Starts the reload of `org_id` if it is still due, and charges it; `*started` tells
 * whether it did. */
static gh_err_t start_reload(gh_app_t *app, const char *org_id, bool *started)
{
    *started = false;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    int64_t now = app->now();
    gh_actor_t sys;
    system_actor(&sys, org_id, "auto-reload");
    gh_billing_account_t acc;
    gh_payment_method_t pm;
    gh_org_settings_t org;
    gh_purchase_t p;
    char a[40];
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    if ((rc = load_account(db, org_id, &acc)))
        goto out_rollback;
    if (!acc.auto_reload_enabled || !acc.auto_reload_armed ||
        acc.balance_nusd >= acc.auto_reload_threshold_nusd) {
        gh_store_rollback(db);
        return GH_OK;
    }
    rc = gh_store_payment_method_current(db, org_id, &pm);
    if (rc == GH_ENOTFOUND) {
        static const char why[] = "There is no card on file to charge.";
        if ((rc = gh_store_billing_auto_reload_put(db, org_id, false,
                                                   acc.auto_reload_threshold_nusd,
                                                   acc.auto_reload_amount_nusd, false, why,
                                                   now)) ||
            (rc = gh_audit(app, db, &sys, "auto_reload.disabled", "organization", org_id,
                           json_pack("{s:s}", "reason", why))) ||
            (rc = mail_reload_off(app, db, org_id, why)) || (rc = gh_store_commit(db)))
            goto out_rollback;
        gh_outbox_kick(app);
        return GH_OK;
    }
    if (rc || (rc = gh_store_org_settings_get(db, org_id, &org)))
        goto out_rollback;
    new_purchase(app, &p, "auto_reload", &org, &pm, acc.auto_reload_amount_nusd, &sys, now);
    snprintf(p.idempotency_key, sizeof(p.idempotency_key), "auto_reload:%s", p.id);
    rc = gh_store_purchase_insert(db, &p);
    if (rc == GH_ECONFLICT) {
        /* A reload is already pending: never a second one. */
        gh_store_rollback(db);
        return GH_OK;
    }
    if (rc || (rc = gh_store_billing_disarm(db, org_id, now)) ||
        (rc = gh_audit(app, db, &sys, "purchase.created", "purchase", p.id,
                       json_pack("{s:s, s:s, s:s}", "kind", p.kind, "amount_usd",
                                 gh_money_format_usd(p.amount_nusd, a), "card", pm.last4))))
        goto out_rollback;
    if (!claim(app->billing, p.id)) {
        rc = GH_EUNAVAIL;
        goto out_rollback;
    }
    if ((rc = gh_store_commit(db))) {
        release(app->billing, p.id);
        goto out_rollback;
    }
    gh_log_info("billing: auto-reload of $%s for %s (balance below the threshold)",
                gh_money_format_usd(p.amount_nusd, a), org_id);
    *started = true;
    pthread_mutex_lock(&app->billing->lock);
    app->billing->stats.reloads++;
    pthread_mutex_unlock(&app->billing->lock);
    return charge_and_resolve(app, &p, &sys, NULL);
out_rollback:
    gh_store_rollback(db);
    return rc;
}

typedef struct {
    char ids[RELOADS_PER_PASS][GH_ID_MAX];
    size_t n;
} org_ids_t;

static void collect_org(void *ctx, const char *org_id)
{
    org_ids_t *l = ctx;
    if (l->n < RELOADS_PER_PASS)
        snprintf(l->ids[l->n++], GH_ID_MAX, "%s", org_id);
}

gh_err_t gh_billing_auto_reload_check(gh_app_t *app, int *started)
{
    assert(app->billing && app->pay);
    if (started)
        *started = 0;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    org_ids_t *l = calloc(1, sizeof(*l));
    if (!l)
        return GH_ENOMEM;
    gh_err_t rc = gh_store_billing_reload_due(db, collect_org, l);
    for (size_t i = 0; i < l->n && !rc; i++) {
        bool one = false;
        rc = start_reload(app, l->ids[i], &one);
        if (one && started)
            (*started)++;
    }
    free(l);
    return rc;
}

/* ---- staff ---- */

static gh_err_t staff_checks(gh_app_t *app, gh_db_t *db, const char *org_id, int64_t amount,
                             const char *reason_in, char reason[REASON_CHARS_MAX * 4 + 1],
                             char *msg, size_t msg_size)
{
    char a[40];
    if (amount <= 0 || amount > AMOUNT_LIMIT_NUSD) {
        snprintf(msg, msg_size, "The amount must be more than $0 and at most %s.",
                 usd(AMOUNT_LIMIT_NUSD, a));
        return GH_EINVAL;
    }
    gh_err_t rc = gh_text_clean_note(reason_in, "The reason", REASON_CHARS_MAX, reason,
                             REASON_CHARS_MAX * 4 + 1, msg, msg_size);
    if (rc)
        return rc;
    gh_org_settings_t org;
    rc = gh_store_org_settings_get(db, org_id, &org);
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "There is no organization with id \"%.60s\".", org_id);
    (void)app;
    return rc;
}

gh_err_t gh_billing_grant(gh_app_t *app, const gh_actor_t *actor, const char *org_id,
                          int64_t amount, const char *reason_in, gh_credit_lot_t *out,
                          char *msg, size_t msg_size)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    char reason[REASON_CHARS_MAX * 4 + 1], ref[GH_ID_MAX], a[40];
    gh_err_t rc = staff_checks(app, db, org_id, amount, reason_in, reason, msg, msg_size);
    if (rc || (rc = gh_store_begin(db)))
        return rc;
    gh_id_new(ref, "grant");
    int64_t now = app->now();
    gh_credit_lot_t lot;
    if ((rc = open_lot(app, db, org_id, "grant", ref, amount, reason, now, &lot)) ||
        (rc = gh_audit(app, db, actor, "credits.granted", "organization", org_id,
                       json_pack("{s:s, s:s, s:s, s:s}", "amount_usd",
                                 gh_money_format_usd(amount, a), "reason", reason, "lot_id", lot.id,
                                 "grant", ref))) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        return rc;
    }
    gh_admission_money_changed(app);
    if (out)
        *out = lot;
    return GH_OK;
}

gh_err_t gh_billing_clawback(gh_app_t *app, const gh_actor_t *actor, const char *org_id,
                             int64_t amount, const char *reason_in, char *msg, size_t msg_size)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    char reason[REASON_CHARS_MAX * 4 + 1], ref[GH_ID_MAX], a[40], b[40];
    gh_err_t rc = staff_checks(app, db, org_id, amount, reason_in, reason, msg, msg_size);
    if (rc || (rc = gh_store_begin(db)))
        return rc;
    gh_id_new(ref, "clawback");
    int64_t taken = 0;
    if ((rc = draw(db, org_id, amount, app->now(), "clawback", ref, reason, false, &taken)))
        goto out_rollback;
    if (taken < amount) {
        snprintf(msg, msg_size, "The organization has only %s of credits left; claw back at most "
                                "that (asked for %s).", usd(taken, a), usd(amount, b));
        rc = GH_EINVAL;
        goto out_rollback;
    }
    if ((rc = gh_audit(app, db, actor, "credits.clawed_back", "organization", org_id,
                       json_pack("{s:s, s:s, s:s}", "amount_usd", gh_money_format_usd(amount, a),
                                 "reason", reason, "clawback", ref))) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_admission_money_changed(app);
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* ---- expiry ---- */

typedef struct {
    gh_credit_lot_t lots[LOTS_PER_TX];
    size_t n;
} lots_t;

static void collect_lot(void *ctx, const gh_credit_lot_t *lot)
{
    lots_t *l = ctx;
    if (l->n < LOTS_PER_TX)
        l->lots[l->n++] = *lot;
}

gh_err_t gh_billing_expire(gh_app_t *app, int *expired)
{
    if (expired)
        *expired = 0;
    gh_db_t *db = gh_store_db(app->store);
    lots_t *l = calloc(1, sizeof(*l));
    if (!db || !l) {
        free(l);
        return db ? GH_ENOMEM : GH_ESTORE;
    }
    gh_err_t rc;
    do {
        int64_t now = app->now();
        l->n = 0;
        if ((rc = gh_store_begin(db)))
            break;
        rc = gh_store_lots_expired(db, now, LOTS_PER_TX, collect_lot, l);
        for (size_t i = 0; i < l->n && !rc; i++) {
            const gh_credit_lot_t *lot = &l->lots[i];
            char date[16], why[64];
            date_utc(lot->expires_at, date);
            snprintf(why, sizeof(why), "Expired on %s", date);
            if (!(rc = append(db, lot->org_id, lot->id, "expiry", -lot->remaining_nusd, lot->id,
                              why, now)))
                rc = gh_store_lot_set_remaining(db, lot->id, 0);
        }
        if (rc || (rc = gh_store_commit(db))) {
            gh_store_rollback(db);
            break;
        }
        if (expired)
            *expired += (int)l->n;
        if (l->n)
            gh_admission_money_changed(app);
    } while (l->n == LOTS_PER_TX);
    free(l);
    return rc;
}

/* ---- invoices ---- */

static void doc_party(gh_invoice_party_t *d, const gh_invoice_party_rec_t *p)
{
    *d = (gh_invoice_party_t){
        .name = p->name,
        .line1 = p->line1,
        .line2 = p->line2,
        .city = p->city,
        .postal_code = p->postal_code,
        .state = p->state,
        .country = p->country,
        .vat_id = p->vat_id,
        .email = p->email,
    };
}

gh_err_t gh_billing_invoice_pdf(gh_app_t *app, const char *org_id, const char *invoice_id,
                                gh_invoice_rec_t *rec, unsigned char **pdf, size_t *pdf_len)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if (!gh_id_valid(invoice_id, "inv"))
        return GH_ENOTFOUND;
    gh_err_t rc = gh_store_invoice_get(db, org_id, invoice_id, rec);
    if (rc)
        return rc;
    gh_invoice_doc_t doc = {
        .number = rec->number,
        .invoice_id = rec->id,
        .issued_at = rec->issued_at,
        .status = "Paid",
        .payment = rec->payment,
        .currency = rec->currency,
        .nlines = 1,
        .subtotal_nusd = rec->subtotal_nusd,
        .tax_label = rec->tax_label,
        .tax_nusd = rec->tax_nusd,
        .total_nusd = rec->total_nusd,
        .note = rec->note,
        .test_mode = rec->test_mode,
    };
    doc_party(&doc.seller, &rec->seller);
    doc_party(&doc.buyer, &rec->buyer);
    doc.lines[0] = (gh_invoice_line_t){
        .description = rec->description,
        .quantity = 1,
        .unit_nusd = rec->subtotal_nusd,
        .amount_nusd = rec->subtotal_nusd,
    };
    return gh_invoice_pdf(&doc, pdf, pdf_len);
}

/* ---- the ledger check ---- */

typedef struct {
    gh_billing_check_fn fn;
    void *ctx;
    int problems;
} check_t;

static void check_org(void *ctx, const gh_ledger_sums_t *s)
{
    check_t *c = ctx;
    char line[640] = "", a[40], b[40], d[40];
    size_t n = 0;
#define PROBLEM(...)                                                                           \
    do {                                                                                       \
        if (n < sizeof(line))                                                                  \
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s", n ? "; " : "");           \
        if (n < sizeof(line))                                                                  \
            n += (size_t)snprintf(line + n, sizeof(line) - n, __VA_ARGS__);                    \
    } while (0)
    if (s->entries_nusd != s->cached_nusd)
        PROBLEM("the cached balance %s differs from the entries' sum %s", usd(s->cached_nusd, a),
                usd(s->entries_nusd, b));
    if (s->entries_nusd != s->lots_remaining_nusd + s->unallocated_nusd)
        PROBLEM("the entries' sum %s is not the lots' remaining %s plus unsettled usage %s",
                usd(s->entries_nusd, a), usd(s->lots_remaining_nusd, b),
                usd(s->unallocated_nusd, d));
    if (s->unallocated_nusd > 0)
        PROBLEM("entries with no lot add up to %s, more than zero", usd(s->unallocated_nusd, a));
    if (-s->usage_entries_nusd != s->usage_cost_nusd)
        PROBLEM("usage entries take %s but the usage events cost %s",
                usd(-s->usage_entries_nusd, a), usd(s->usage_cost_nusd, b));
    if (s->bad_lots)
        PROBLEM("%lld lots do not match their entries", (long long)s->bad_lots);
    if (s->bad_purchases)
        PROBLEM("%lld purchases do not match their lot, entry and invoice",
                (long long)s->bad_purchases);
#undef PROBLEM
    bool ok = n == 0;
    if (ok)
        snprintf(line, sizeof(line), "balance %s (lots %s, unsettled usage %s)",
                 usd(s->entries_nusd, a), usd(s->lots_remaining_nusd, b),
                 usd(s->unallocated_nusd, d));
    else
        c->problems++;
    c->fn(c->ctx, s->org_id, ok, line);
}

static void check_year(void *ctx, const gh_invoice_year_t *y)
{
    check_t *c = ctx;
    char line[200];
    bool ok = y->count == y->max_seq && y->max_seq == y->counter &&
              (y->count == 0 || y->min_seq == 1);
    if (ok)
        snprintf(line, sizeof(line), "%d: %lld invoices numbered 1 to %lld without gaps", y->year,
                 (long long)y->count, (long long)y->max_seq);
    else
        snprintf(line, sizeof(line), "%d: %lld invoices numbered %lld to %lld, counter at %lld: "
                                     "the numbering has gaps", y->year, (long long)y->count,
                 (long long)y->min_seq, (long long)y->max_seq, (long long)y->counter);
    if (!ok)
        c->problems++;
    c->fn(c->ctx, "invoices", ok, line);
}

gh_err_t gh_billing_ledger_check(gh_app_t *app, const char *org_id, gh_billing_check_fn fn,
                                 void *ctx, int *problems)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    check_t c = {fn, ctx, 0};
    /* Each check is one statement, so its figures are of one moment even while a server
     * writes (WAL readers see a snapshot), and it takes no write lock. */
    gh_err_t rc = gh_store_ledger_sums(db, org_id, check_org, &c);
    if (!rc && !org_id)
        rc = gh_store_invoice_years(db, check_year, &c);
    if (problems)
        *problems = c.problems;
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
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->wake, &attr);
    pthread_cond_init(&b->settled, &attr);
    pthread_condattr_destroy(&attr);
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

void gh_billing_pass(gh_billing_t *b)
{
    gh_app_t *app = b->app;
    int expired = 0;
    gh_err_t rc;
    if ((rc = gh_billing_expire(app, &expired)))
        gh_log_error("billing: expiring lots failed (%s)", gh_err_name(rc));
    if (expired)
        gh_log_info("billing: expired what was left of %d credit lots", expired);
    if ((rc = gh_billing_retry_pending(app, NULL)))
        gh_log_error("billing: retrying pending purchases failed (%s)", gh_err_name(rc));
    if ((rc = gh_billing_auto_reload_check(app, NULL)))
        gh_log_error("billing: the auto-reload check failed (%s)", gh_err_name(rc));
    pthread_mutex_lock(&b->lock);
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

static void *scheduler_main(void *arg)
{
    gh_billing_t *b = arg;
    for (;;) {
        struct timespec gap, tick;
        deadline_in(&tick, (int64_t)b->app->cfg->billing_scheduler_interval_s * 1000);
        gh_billing_pass(b);
        deadline_in(&gap, KICK_GAP_MS);
        pthread_mutex_lock(&b->lock);
        /* A short gap after every pass, so a stream of usage commits does not keep the
         * scheduler busy; then until the next tick or kick. */
        bool go = wait_locked(b, &gap, false) && wait_locked(b, &tick, true);
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
