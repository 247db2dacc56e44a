/* Spend notifications (notify.h): the rules, and the check the usage writer runs in the
 * transaction that charges usage. */
#include "core/notify.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/admission.h"
#include "core/audit.h"
#include "core/outbox.h"
#include "lib/log.h"
#include "lib/money.h"
#include "lib/utc.h"

#define CENT_NUSD (GH_NUSD_PER_USD / 100)
#define NOTIFY_USD_MAX (INT64_C(1000000000) * GH_NUSD_PER_USD) /* as quota.c's limits */
#define RECIPIENTS_MAX 32

/* Set by a check that queued mail, cleared by gh_notify_committed: the mailer is woken only
 * then, not after every usage commit. */
static atomic_bool mail_queued;

static gh_err_t billing_or_admin(const gh_actor_t *actor, char *msg, size_t msg_size)
{
    if (actor->role == GH_ROLE_ADMIN || actor->role == GH_ROLE_BILLING)
        return GH_OK;
    snprintf(msg, msg_size, "Only admins and billing members can see or change spend "
                            "notifications.");
    return GH_EPERM;
}

typedef struct {
    gh_spend_notif_t *out;
    size_t n, max;
} list_t;

static void collect(void *ctx, const gh_spend_notif_t *n)
{
    list_t *l = ctx;
    if (l->n < l->max)
        l->out[l->n++] = *n;
}

gh_err_t gh_notify_list(gh_app_t *app, const gh_actor_t *actor, gh_spend_notif_t *out,
                        size_t *n, char *msg, size_t msg_size)
{
    *n = 0;
    gh_err_t rc = billing_or_admin(actor, msg, msg_size);
    if (rc)
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    list_t l = {out, 0, GH_NOTIFY_RULES_MAX};
    rc = gh_store_spend_notif_list(db, actor->org_id, gh_utc_month_key(app->now()), collect, &l);
    *n = l.n;
    return rc;
}

/* "$50.00" or "80% of the monthly spend limit": what a rule watches, for mail and audit. */
static void describe(const gh_spend_notif_t *r, char *out, size_t size)
{
    char a[GH_MONEY_TEXT_MAX];
    if (!strcmp(r->kind, "spend_percent"))
        snprintf(out, size, "%d%% of the monthly spend limit", r->percent);
    else if (!strcmp(r->kind, "spend_amount"))
        snprintf(out, size, "monthly spend of $%s", gh_money_format_usd(r->amount_nusd, a));
    else
        snprintf(out, size, "credit balance below $%s", gh_money_format_usd(r->amount_nusd, a));
}

static gh_err_t check_rule(const gh_spend_notif_t *in, char *msg, size_t msg_size)
{
    bool pct = !strcmp(in->kind, "spend_percent");
    if (!pct && strcmp(in->kind, "spend_amount") && strcmp(in->kind, "balance_below")) {
        snprintf(msg, msg_size, "Choose what to be notified about: a monthly spend amount "
                                "(spend_amount), a percentage of the monthly spend limit "
                                "(spend_percent) or a low credit balance (balance_below).");
        return GH_EINVAL;
    }
    if (pct && (in->percent < 1 || in->percent > 100)) {
        snprintf(msg, msg_size, "The percentage must be a whole number from 1 to 100.");
        return GH_EINVAL;
    }
    if (!pct && (in->amount_nusd <= 0 || in->amount_nusd % CENT_NUSD ||
                 in->amount_nusd > NOTIFY_USD_MAX)) {
        snprintf(msg, msg_size, "The amount must be in USD, above $0 with whole cents, like "
                                "\"50.00\".");
        return GH_EINVAL;
    }
    return GH_OK;
}

typedef struct {
    const gh_spend_notif_t *want;
    bool dup;
} dup_t;

static void find_dup(void *ctx, const gh_spend_notif_t *n)
{
    dup_t *d = ctx;
    d->dup |= !strcmp(n->kind, d->want->kind) && n->amount_nusd == d->want->amount_nusd &&
              n->percent == d->want->percent;
}

gh_err_t gh_notify_add(gh_app_t *app, const gh_actor_t *actor, const gh_spend_notif_t *in,
                       gh_spend_notif_t *out, char *msg, size_t msg_size)
{
    gh_err_t rc = billing_or_admin(actor, msg, msg_size);
    if (rc || (rc = check_rule(in, msg, msg_size)))
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    int64_t count = 0;
    dup_t d = {in, false};
    if ((rc = gh_store_spend_notif_count(db, actor->org_id, &count)) ||
        (rc = gh_store_spend_notif_list(db, actor->org_id, 0, find_dup, &d)))
        goto out_rollback;
    char what[128];
    describe(in, what, sizeof(what));
    if (d.dup) {
        snprintf(msg, msg_size, "There is already a notification for the %s.", what);
        rc = GH_ECONFLICT;
        goto out_rollback;
    }
    if (count >= GH_NOTIFY_RULES_MAX) {
        snprintf(msg, msg_size, "An organization can have at most %d spend notifications. "
                                "Remove one before adding another.", GH_NOTIFY_RULES_MAX);
        rc = GH_EINVAL;
        goto out_rollback;
    }
    gh_spend_notif_t r;
    memset(&r, 0, sizeof(r));
    gh_id_new(r.id, "spendntf");
    snprintf(r.org_id, sizeof(r.org_id), "%s", actor->org_id);
    snprintf(r.kind, sizeof(r.kind), "%s", in->kind);
    r.amount_nusd = strcmp(in->kind, "spend_percent") ? in->amount_nusd : 0;
    r.percent = strcmp(in->kind, "spend_percent") ? 0 : in->percent;
    r.created_at = app->now();
    snprintf(r.created_by, sizeof(r.created_by), "%s", actor->label);
    /* The month's spend from here on is kept by the check as usage is charged; it starts
     * from the ledger, read in this transaction (writers are serialized: no charge falls
     * between the sum and the row). */
    int64_t spend = 0;
    if ((rc = gh_store_ledger_usage_since(db, actor->org_id, gh_utc_month_start_s(r.created_at),
                                          &spend)) ||
        (rc = gh_store_spend_state_put(db, actor->org_id, gh_utc_month_key(r.created_at), spend)))
        goto out_rollback;
    json_t *details = json_pack("{s:s, s:s}", "kind", r.kind, "threshold", what);
    if ((rc = gh_store_spend_notif_insert(db, &r)) ||
        (rc = gh_audit(app, db, actor, "limits.notification_added", "spend_notification", r.id,
                       details)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    if (out)
        *out = r;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_notify_remove(gh_app_t *app, const gh_actor_t *actor, const char *id, char *msg,
                          size_t msg_size)
{
    gh_err_t rc = billing_or_admin(actor, msg, msg_size);
    if (rc)
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_spend_notif_t r;
    rc = gh_store_spend_notif_get(db, actor->org_id, id, &r);
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "This organization has no spend notification with that id; "
                                "it may have been removed already.");
    if (rc)
        goto out_rollback;
    char what[128];
    describe(&r, what, sizeof(what));
    json_t *details = json_pack("{s:s, s:s}", "kind", r.kind, "threshold", what);
    if ((rc = gh_store_spend_notif_delete(db, actor->org_id, id)) ||
        (rc = gh_audit(app, db, actor, "limits.notification_removed", "spend_notification", id,
                       details)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* ---- the check ---- */

typedef struct {
    gh_spend_notif_t r[GH_NOTIFY_RULES_MAX];
    size_t n;
} rules_t;

static void keep_rule(void *ctx, const gh_spend_notif_t *n)
{
    rules_t *l = ctx;
    if (l->n < GH_NOTIFY_RULES_MAX)
        l->r[l->n++] = *n;
}

typedef struct {
    char addr[RECIPIENTS_MAX][GH_EMAIL_MAX];
    size_t n;
} recipients_t;

static void add_recipient(void *ctx, const char *email)
{
    recipients_t *r = ctx;
    if (!email || !strchr(email, '@') || r->n == RECIPIENTS_MAX)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->addr[i], email))
            return;
    snprintf(r->addr[r->n++], GH_EMAIL_MAX, "%s", email);
}

/* Queues one notice to every admin and billing member of the organization. */
static gh_err_t mail_notice(gh_app_t *app, gh_db_t *db, const char *org_id, const char *subject,
                            const char *body)
{
    const gh_config_t *cfg = app->cfg;
    recipients_t r = {.n = 0};
    gh_err_t rc = gh_store_billing_contacts(db, org_id, add_recipient, &r);
    if (rc)
        return rc;
    char link[GH_CONFIG_STR + 32], subj[512];
    snprintf(link, sizeof(link), "%s/settings/limits", cfg->public_url);
    snprintf(subj, sizeof(subj), "%s", subject);
    for (char *p = subj; *p; p++) /* an organization name cannot break the header */
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    for (size_t i = 0; i < r.n; i++) {
        rc = gh_outbox_add_action(app, db, r.addr[i], subj, body, "Open Limits", link);
        if (rc == GH_EINVAL) /* an address that cannot be mailed: logged, not a failure */
            gh_log_error("notify: cannot mail \"%s\" for %s to that address", subject, org_id);
        else if (rc)
            return rc;
    }
    atomic_store(&mail_queued, true);
    return GH_OK;
}

/* gh_notify_check's work once the organization has rules. */
static gh_err_t check_rules(gh_app_t *app, gh_db_t *db, const char *org_id, int64_t cost_nusd,
                            const rules_t *rules, int64_t now, int32_t month)
{
    gh_err_t rc;
    const gh_config_t *cfg = app->cfg;
    gh_org_settings_t org;
    if ((rc = gh_store_org_settings_get(db, org_id, &org)))
        return rc == GH_ENOTFOUND ? GH_OK : rc;
    /* The month's spend, kept up to date here: this charge added, a new month started over. */
    int64_t spend = 0, limit = 0;
    int32_t kept_month = 0;
    rc = gh_store_spend_state_get(db, org_id, &kept_month, &spend);
    if (rc == GH_ENOTFOUND) /* rules from before the state existed: once from the ledger */
        rc = gh_store_ledger_usage_since(db, org_id, gh_utc_month_start_s(now), &spend);
    else if (!rc && kept_month != month)
        spend = cost_nusd;
    else if (!rc)
        spend += cost_nusd;
    if (rc || (rc = gh_store_spend_state_put(db, org_id, month, spend)))
        return rc;
    bool any_percent = false;
    for (size_t i = 0; i < rules->n; i++)
        any_percent |= !strcmp(rules->r[i].kind, "spend_percent");
    gh_org_quota_t q; /* the effective monthly limit, only when a rule needs it */
    if (any_percent && app->admission && !gh_admission_org_quota(app->admission, db, org_id, &q))
        limit = q.monthly_limit_nusd;
    gh_billing_account_t acct;
    bool have_acct = gh_store_billing_account_get(db, org_id, &acct) == GH_OK;
    int64_t balance = have_acct ? acct.balance_nusd : 0;
    bool reload_on = have_acct && acct.auto_reload_enabled;
    char s[GH_MONEY_TEXT_MAX], a[GH_MONEY_TEXT_MAX], l[GH_MONEY_TEXT_MAX];
    char subject[512], body[2048];
    gh_money_format_usd(spend, s);

    for (size_t i = 0; i < rules->n; i++) {
        const gh_spend_notif_t *r = &rules->r[i];
        if (!strcmp(r->kind, "balance_below")) {
            bool below = balance < r->amount_nusd;
            if (!below && r->notified_at) { /* back above: the next fall is notified again */
                if ((rc = gh_store_spend_notif_balance_set(db, r->id, 0)))
                    return rc;
                continue;
            }
            if (!below || r->notified_at || reload_on)
                continue;
            gh_money_format_usd(r->amount_nusd, a);
            gh_money_format_usd(balance, l);
            snprintf(subject, sizeof(subject), "%s: the credit balance of %s is below $%s",
                     cfg->product_name, org.name, a);
            snprintf(body, sizeof(body),
                     "Hello,\n\n"
                     "The credit balance of the organization \"%s\" on %s is $%s, below the "
                     "$%s you asked to be notified about. Auto-reload is off, so requests will "
                     "be refused when the credits run out.\n\n"
                     "Buy credits or turn on auto-reload on the Billing page, or change this "
                     "notification on the Limits page:\n\n"
                     "%s/settings/limits\n\n"
                     "You receive this as an admin or billing member of the organization.\n\n"
                     "— %s\n",
                     org.name, cfg->product_name, l, a, cfg->public_url, cfg->product_name);
            if ((rc = gh_store_spend_notif_balance_set(db, r->id, now)) ||
                (rc = mail_notice(app, db, org_id, subject, body)))
                return rc;
            gh_log_info("notify: %s: balance below %s notified", org_id, a);
            continue;
        }
        int64_t threshold = r->amount_nusd;
        if (!strcmp(r->kind, "spend_percent")) {
            if (limit <= 0)
                continue; /* no limit, nothing to take a percentage of */
            threshold = limit / 100 * r->percent + limit % 100 * r->percent / 100;
        }
        if (r->notified_at || spend < threshold)
            continue;
        bool first = false;
        if ((rc = gh_store_spend_notif_mark(db, r->id, month, now, spend, &first)))
            return rc;
        if (!first)
            continue;
        gh_money_format_usd(threshold, a);
        if (!strcmp(r->kind, "spend_percent")) {
            gh_money_format_usd(limit, l);
            snprintf(subject, sizeof(subject),
                     "%s: %s reached %d%% of its monthly spend limit", cfg->product_name,
                     org.name, r->percent);
            snprintf(body, sizeof(body),
                     "Hello,\n\n"
                     "The organization \"%s\" on %s has spent $%s this month (UTC), %d%% or "
                     "more of its monthly spend limit of $%s. When the limit is reached, "
                     "requests are refused until the next month.\n\n"
                     "See the limits, or change this notification, on the Limits page:\n\n"
                     "%s/settings/limits\n\n"
                     "You receive this as an admin or billing member of the organization.\n\n"
                     "— %s\n",
                     org.name, cfg->product_name, s, r->percent, l, cfg->public_url,
                     cfg->product_name);
        } else {
            snprintf(subject, sizeof(subject), "%s: %s spent $%s this month", cfg->product_name,
                     org.name, a);
            snprintf(body, sizeof(body),
                     "Hello,\n\n"
                     "The organization \"%s\" on %s has spent $%s this month (UTC), reaching "
                     "the $%s you asked to be notified about.\n\n"
                     "See the limits, or change this notification, on the Limits page:\n\n"
                     "%s/settings/limits\n\n"
                     "You receive this as an admin or billing member of the organization.\n\n"
                     "— %s\n",
                     org.name, cfg->product_name, s, a, cfg->public_url, cfg->product_name);
        }
        if ((rc = mail_notice(app, db, org_id, subject, body)))
            return rc;
        gh_log_info("notify: %s: spend threshold $%s notified for %d", org_id, a, (int)month);
    }
    return GH_OK;
}

gh_err_t gh_notify_check(gh_app_t *app, gh_db_t *db, const char *org_id, int64_t cost_nusd)
{
    rules_t rules = {.n = 0};
    int64_t now = app->now();
    int32_t month = gh_utc_month_key(now);
    gh_err_t rc = gh_store_spend_notif_list(db, org_id, month, keep_rule, &rules);
    if (rc || rules.n == 0)
        return rc;
    /* A rule that cannot be checked must not keep the usage out: its own savepoint (only
     * here, where there are rules: on PostgreSQL a savepoint is a round trip). */
    if ((rc = gh_store_begin(db)))
        return rc;
    if ((rc = check_rules(app, db, org_id, cost_nusd, &rules, now, month)) ||
        (rc = gh_store_commit(db))) {
        gh_store_rollback(db);
        gh_log_error("billing: spend notifications of %s could not be checked (%s)", org_id,
                     gh_err_name(rc));
    }
    return GH_OK;
}

void gh_notify_committed(gh_app_t *app)
{
    if (atomic_exchange(&mail_queued, false))
        gh_outbox_wake(app);
}
