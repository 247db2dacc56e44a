/* Quotas (quota.h): monthly spend limits, workspace limits, increase requests and staff
 * decisions, each written with its audit event in one transaction and published to the
 * admission engine after the commit. */
#include "core/quota.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/audit.h"
#include "core/outbox.h"
#include "lib/log.h"
#include "lib/mail.h"
#include "lib/money.h"
#include "lib/text.h"
#include "store/store.h"

#define CENT_NUSD (GH_NUSD_PER_USD / 100)
#define RECIPIENTS_MAX 32
/* The highest limit anyone may set: far above any tier, well inside the engine's range. */
#define QUOTA_USD_MAX (INT64_C(1000000000) * GH_NUSD_PER_USD)
#define QUOTA_RATE_MAX INT64_C(50000000000)

static gh_err_t admins_only(const gh_actor_t *actor, char *msg, size_t msg_size)
{
    if (actor->role == GH_ROLE_ADMIN)
        return GH_OK;
    snprintf(msg, msg_size, "Only admins can change limits or ask for higher ones.");
    return GH_EPERM;
}

/* A limit in USD: whole cents above zero, not absurdly large. */
static gh_err_t check_amount(int64_t v, const char *field, char *msg, size_t msg_size)
{
    if (v <= 0 || v % CENT_NUSD || v > QUOTA_USD_MAX) {
        snprintf(msg, msg_size, "%s: must be an amount in USD above 0 with whole cents, like "
                                "\"50.00\".", field);
        return GH_EINVAL;
    }
    return GH_OK;
}

static gh_err_t check_rate(int64_t v, const char *field, char *msg, size_t msg_size)
{
    if (v < 0 || v > QUOTA_RATE_MAX) {
        snprintf(msg, msg_size, "%s: must be a whole number from 1 to %lld, or null for no "
                                "limit.", field, (long long)QUOTA_RATE_MAX);
        return GH_EINVAL;
    }
    return GH_OK;
}

static gh_err_t check_custom(const gh_custom_limits_t *c, char *msg, size_t msg_size)
{
    gh_err_t rc = GH_OK;
    if (c->monthly_cap_nusd)
        rc = check_amount(c->monthly_cap_nusd, "monthly_cap_usd", msg, msg_size);
    if (!rc)
        rc = check_rate(c->rpm, "requests_per_minute", msg, msg_size);
    if (!rc)
        rc = check_rate(c->itpm, "input_tokens_per_minute", msg, msg_size);
    if (!rc)
        rc = check_rate(c->otpm, "output_tokens_per_minute", msg, msg_size);
    return rc;
}

static json_t *money_or_null(int64_t nusd)
{
    char b[GH_MONEY_TEXT_MAX];
    return nusd > 0 ? json_string(gh_money_format_usd(nusd, b)) : json_null();
}

static json_t *custom_json(const gh_custom_limits_t *c)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "monthly_cap_usd", money_or_null(c->monthly_cap_nusd),
                     "requests_per_minute", c->rpm ? json_integer(c->rpm) : json_null(),
                     "input_tokens_per_minute", c->itpm ? json_integer(c->itpm) : json_null(),
                     "output_tokens_per_minute", c->otpm ? json_integer(c->otpm) : json_null());
}

/* ---- mail ---- */

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

/* Queues mail to the organization's admins (and `also`, the person who asked, when it is an
 * address) on `db`, in the transaction of the decision it reports (core/outbox.h). */
static gh_err_t mail_admins(gh_app_t *app, gh_db_t *db, const char *org_id, const char *also,
                            const char *subject, const char *body)
{
    recipients_t r = {.n = 0};
    (void)gh_store_org_admin_emails(db, org_id, add_recipient, &r);
    if (also)
        add_recipient(&r, also);
    /* The HTML part's button: the Limits page every one of these mails points to. */
    char link[GH_CONFIG_STR + 32];
    snprintf(link, sizeof(link), "%s/settings/limits", app->cfg->public_url);
    for (size_t i = 0; i < r.n; i++) {
        gh_err_t rc = gh_outbox_add_action(app, db, r.addr[i], subject, body, "View limits", link);
        if (rc == GH_EINVAL) /* an address that cannot be mailed: logged, not a failure */
            gh_log_error("limits: cannot mail \"%s\" for %s to that address", subject, org_id);
        else if (rc)
            return rc;
    }
    return GH_OK;
}

/* "Tier 3" or "Custom (cap $2,000.00; 500 requests, ... per minute)" for a mail. */
static void describe_tier(const gh_tier_t *t, const gh_custom_limits_t *c, char *out,
                          size_t size)
{
    if (!t->custom || !c) {
        snprintf(out, size, "%s", t->name);
        return;
    }
    char cap[GH_MONEY_TEXT_MAX];
    snprintf(out, size,
             "%s: monthly cap %s%s; per model class and minute: %lld requests, %lld input "
             "tokens, %lld output tokens (0 means no limit)",
             t->name, c->monthly_cap_nusd ? "$" : "none",
             c->monthly_cap_nusd ? gh_money_format_usd(c->monthly_cap_nusd, cap) : "",
             (long long)c->rpm, (long long)c->itpm, (long long)c->otpm);
}

/* ---- the organization's monthly spend limit ---- */

gh_err_t gh_quota_set_monthly_limit(gh_app_t *app, const gh_actor_t *actor,
                                    const int64_t *limit_nusd, char *msg, size_t msg_size)
{
    gh_err_t rc = admins_only(actor, msg, msg_size);
    if (rc)
        return rc;
    if (limit_nusd && (rc = check_amount(*limit_nusd, "monthly_spend_limit_usd", msg, msg_size)))
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db || !app->admission)
        return GH_ESTORE;
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_org_quota_t q;
    if ((rc = gh_admission_org_quota(app->admission, db, actor->org_id, &q)))
        goto out_rollback;
    char a[GH_MONEY_TEXT_MAX], b[GH_MONEY_TEXT_MAX];
    if (limit_nusd && q.tier_cap_nusd && *limit_nusd > q.tier_cap_nusd) {
        snprintf(msg, msg_size,
                 "monthly_spend_limit_usd: must not exceed your tier's monthly cap of $%s (%s). "
                 "To spend more, ask for a higher tier.",
                 gh_money_format_usd(q.tier_cap_nusd, a), q.tier->name);
        rc = GH_EINVAL;
        goto out_rollback;
    }
    int64_t before = q.rec.monthly_spend_limit_nusd, after = limit_nusd ? *limit_nusd : 0;
    if (before == after) { /* nothing changes, nothing is recorded */
        gh_store_rollback(db);
        return GH_OK;
    }
    q.rec.monthly_spend_limit_nusd = after;
    q.rec.updated_at = app->now();
    json_t *details = json_object();
    gh_audit_change(details, "monthly_spend_limit_usd",
                    before ? gh_money_format_usd(before, a) : "",
                    after ? gh_money_format_usd(after, b) : "");
    if ((rc = gh_store_org_limits_put(db, &q.rec)) ||
        (rc = gh_audit(app, db, actor, after ? "limits.spend_limit_set" : "limits.spend_limit_removed",
                       "organization", actor->org_id, details)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_admission_org_changed(app, actor->org_id);
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* ---- workspace limits ---- */

gh_err_t gh_quota_set_ws_limits(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                                const gh_ws_limits_rec_t *in, gh_ws_limits_rec_t *out,
                                char *msg, size_t msg_size)
{
    gh_err_t rc = admins_only(actor, msg, msg_size);
    if (rc)
        return rc;
    if ((in->monthly_spend_limit_nusd &&
         (rc = check_amount(in->monthly_spend_limit_nusd, "monthly_spend_limit_usd", msg,
                            msg_size))) ||
        (rc = check_rate(in->rpm, "requests_per_minute", msg, msg_size)) ||
        (rc = check_rate(in->itpm, "input_tokens_per_minute", msg, msg_size)) ||
        (rc = check_rate(in->otpm, "output_tokens_per_minute", msg, msg_size)))
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db || !app->admission)
        return GH_ESTORE;
    gh_workspace_t w;
    if (!gh_id_valid(ws_id, "wrkspc") ||
        (rc = gh_store_workspace_get(db, actor->org_id, ws_id, &w)) == GH_ENOTFOUND) {
        snprintf(msg, msg_size, "There is no workspace with id \"%.60s\".", ws_id);
        return GH_ENOTFOUND;
    }
    if (rc)
        return rc;
    if (w.archived_at) {
        snprintf(msg, msg_size, "The workspace \"%s\" is archived and cannot be changed.", w.name);
        return GH_EINVAL;
    }
    if ((rc = gh_store_begin(db)))
        return rc;
    gh_org_quota_t q;
    gh_ws_limits_rec_t before;
    if ((rc = gh_admission_org_quota(app->admission, db, actor->org_id, &q)))
        goto out_rollback;
    /* A workspace's limits sit under its organization's: only a lower one is allowed. */
    char a[GH_MONEY_TEXT_MAX], b[GH_MONEY_TEXT_MAX];
    if (in->monthly_spend_limit_nusd && q.monthly_limit_nusd &&
        in->monthly_spend_limit_nusd > q.monthly_limit_nusd) {
        snprintf(msg, msg_size,
                 "monthly_spend_limit_usd: must not exceed the organization's "
                 "monthly limit of $%s.",
                 gh_money_format_usd(q.monthly_limit_nusd, a));
        rc = GH_EINVAL;
        goto out_rollback;
    }
    const struct {
        const char *field;
        int64_t want, org;
    } rates[] = {{"requests_per_minute", in->rpm, q.rates.requests_per_min},
                 {"input_tokens_per_minute", in->itpm, q.rates.input_tokens_per_min},
                 {"output_tokens_per_minute", in->otpm, q.rates.output_tokens_per_min}};
    for (size_t i = 0; i < 3; i++)
        if (rates[i].want && rates[i].org && rates[i].want > rates[i].org) {
            snprintf(msg, msg_size, "%s: must not exceed the organization's limit of %lld.",
                     rates[i].field, (long long)rates[i].org);
            rc = GH_EINVAL;
            goto out_rollback;
        }
    rc = gh_store_ws_limits_get(db, ws_id, &before);
    if (rc == GH_ENOTFOUND) {
        memset(&before, 0, sizeof(before));
        rc = GH_OK;
    }
    if (rc)
        goto out_rollback;
    gh_ws_limits_rec_t rec = *in;
    snprintf(rec.workspace_id, sizeof(rec.workspace_id), "%s", ws_id);
    snprintf(rec.org_id, sizeof(rec.org_id), "%s", actor->org_id);
    rec.updated_at = app->now();
    json_t *details = json_object();
    if (before.monthly_spend_limit_nusd != rec.monthly_spend_limit_nusd)
        gh_audit_change(details, "monthly_spend_limit_usd",
                        before.monthly_spend_limit_nusd
                            ? gh_money_format_usd(before.monthly_spend_limit_nusd, a)
                            : "",
                        rec.monthly_spend_limit_nusd
                            ? gh_money_format_usd(rec.monthly_spend_limit_nusd, b)
                            : "");
    const struct {
        const char *field;
        int64_t from, to;
    } changes[] = {{"requests_per_minute", before.rpm, rec.rpm},
                   {"input_tokens_per_minute", before.itpm, rec.itpm},
                   {"output_tokens_per_minute", before.otpm, rec.otpm}};
    for (size_t i = 0; i < 3; i++)
        if (changes[i].from != changes[i].to) {
            char f[24], t[24];
            snprintf(f, sizeof(f), "%lld", (long long)changes[i].from);
            snprintf(t, sizeof(t), "%lld", (long long)changes[i].to);
            gh_audit_change(details, changes[i].field, changes[i].from ? f : "",
                            changes[i].to ? t : "");
        }
    if (json_object_size(details) == 0) {
        json_decref(details);
        gh_store_rollback(db);
        *out = before.workspace_id[0] ? before : rec;
        return GH_OK;
    }
    if ((rc = gh_store_ws_limits_put(db, &rec)) ||
        (rc = gh_audit(app, db, actor, "workspace.limits_updated", "workspace", ws_id, details)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_admission_workspace_changed(app, actor->org_id, ws_id);
    *out = rec;
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* ---- increase requests ---- */

gh_err_t gh_quota_request(gh_app_t *app, const gh_actor_t *actor, const char *tier_id,
                          const gh_custom_limits_t *custom, const char *reason,
                          gh_limit_request_t *out, char *msg, size_t msg_size)
{
    gh_err_t rc = admins_only(actor, msg, msg_size);
    if (rc)
        return rc;
    if (!app->admission)
        return GH_ESTORE;
    if (!tier_id == !custom) {
        snprintf(msg, msg_size, "Ask for either a tier or custom limits.");
        return GH_EINVAL;
    }
    gh_limit_request_t r;
    memset(&r, 0, sizeof(r));
    if ((rc = gh_text_clean_note(reason, "reason", GH_QUOTA_TEXT_CHARS, r.reason,
                                 sizeof(r.reason), msg, msg_size)))
        return rc;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_org_quota_t q;
    if ((rc = gh_admission_org_quota(app->admission, db, actor->org_id, &q)))
        return rc;
    const gh_tier_table_t *table = gh_admission_tiers(app->admission);
    if (tier_id) {
        const gh_tier_t *t = gh_tier_find(table, tier_id);
        if (!t || t->custom) {
            snprintf(msg, msg_size, "tier: \"%.40s\" is not a tier you can ask for; ask for "
                                    "custom limits instead.", tier_id);
            return GH_EINVAL;
        }
        if (!q.tier->custom && t->purchases_to_enter_nusd <= q.tier->purchases_to_enter_nusd) {
            snprintf(msg, msg_size, "tier: %s is not above your current tier (%s).", t->name,
                     q.tier->name);
            return GH_EINVAL;
        }
        snprintf(r.kind, sizeof(r.kind), "tier");
        snprintf(r.requested_tier, sizeof(r.requested_tier), "%s", t->id);
    } else {
        if ((rc = check_custom(custom, msg, msg_size)))
            return rc;
        if (!custom->monthly_cap_nusd && !custom->rpm && !custom->itpm && !custom->otpm) {
            snprintf(msg, msg_size, "custom: say which limits you need (a monthly cap, requests "
                                    "or tokens per minute).");
            return GH_EINVAL;
        }
        snprintf(r.kind, sizeof(r.kind), "custom");
        r.monthly_cap_nusd = custom->monthly_cap_nusd;
        r.rpm = custom->rpm;
        r.itpm = custom->itpm;
        r.otpm = custom->otpm;
    }
    gh_id_new(r.id, "limreq");
    snprintf(r.org_id, sizeof(r.org_id), "%s", actor->org_id);
    snprintf(r.requested_by, sizeof(r.requested_by), "%s", actor->id);
    snprintf(r.requested_by_label, sizeof(r.requested_by_label), "%s", actor->label);
    snprintf(r.status, sizeof(r.status), "pending");
    r.created_at = app->now();
    json_t *details = json_pack("{s:s, s:s, s:s}", "kind", r.kind, "reason", r.reason,
                                "current_tier", q.tier->id);
    if (tier_id)
        json_object_set_new(details, "requested_tier", json_string(r.requested_tier));
    else
        json_object_set_new(details, "requested", custom_json(custom));
    if ((rc = gh_store_begin(db))) {
        json_decref(details);
        return rc;
    }
    rc = gh_store_limit_request_insert(db, &r);
    if (rc == GH_ECONFLICT) {
        json_decref(details);
        snprintf(msg, msg_size, "Your organization already has a request waiting for review; "
                                "wait for its answer before asking again.");
        goto out_rollback;
    }
    if (rc) {
        json_decref(details);
        goto out_rollback;
    }
    if ((rc = gh_audit(app, db, actor, "limit_request.created", "limit_request", r.id,
                       details)) ||
        (rc = gh_store_limit_request_get(db, actor->org_id, r.id, out)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_log_info("limits: %s asked for %s (request %s)", actor->org_id,
                tier_id ? r.requested_tier : "custom limits", r.id);
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

/* ---- staff ---- */

/* The staff actor acting on `org_id`. */
static gh_actor_t staff_on(const gh_actor_t *staff, const char *org_id)
{
    gh_actor_t a = *staff;
    a.kind = GH_ACTOR_STAFF;
    a.role = GH_ROLE_ADMIN;
    snprintf(a.org_id, sizeof(a.org_id), "%s", org_id);
    return a;
}

/* Writes the organization's tier (inside the caller's transaction). `tier` NULL: back to
 * purchases. Its own spend limit is kept: the lower of it and the new cap applies. */
static gh_err_t put_tier(gh_app_t *app, gh_db_t *db, const char *org_id, const gh_tier_t *tier,
                         const gh_custom_limits_t *custom, gh_org_quota_t *before)
{
    gh_err_t rc = gh_admission_org_quota(app->admission, db, org_id, before);
    if (rc)
        return rc;
    gh_org_limits_rec_t rec = before->rec;
    snprintf(rec.tier_override, sizeof(rec.tier_override), "%s", tier ? tier->id : "");
    if (tier && tier->custom && custom) {
        rec.custom_monthly_cap_nusd = custom->monthly_cap_nusd;
        rec.custom_rpm = custom->rpm;
        rec.custom_itpm = custom->itpm;
        rec.custom_otpm = custom->otpm;
    }
    rec.updated_at = app->now();
    return gh_store_org_limits_put(db, &rec);
}

gh_err_t gh_quota_decide(gh_app_t *app, const gh_actor_t *staff, const char *request_id,
                         bool approve, const char *tier_id, const gh_custom_limits_t *custom,
                         const char *note_in, gh_limit_request_t *out, char *msg,
                         size_t msg_size)
{
    if (!app->admission)
        return GH_ESTORE;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_limit_request_t r;
    gh_err_t rc = gh_id_valid(request_id, "limreq")
                      ? gh_store_limit_request_get(db, NULL, request_id, &r)
                      : GH_ENOTFOUND;
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "There is no limit request with id \"%.60s\".", request_id);
    if (rc)
        return rc;
    char note[GH_LIMIT_REASON_SIZE] = "";
    if (note_in && *note_in &&
        (rc = gh_text_clean_note(note_in, "note", GH_QUOTA_TEXT_CHARS, note, sizeof(note), msg,
                                 msg_size)))
        return rc;
    if (!approve && !note[0]) {
        snprintf(msg, msg_size, "note: say why the request is declined; the organization "
                                "reads it.");
        return GH_EINVAL;
    }
    const gh_tier_table_t *table = gh_admission_tiers(app->admission);
    const gh_tier_t *tier = NULL;
    gh_custom_limits_t granted = {r.monthly_cap_nusd, r.rpm, r.itpm, r.otpm};
    if (approve) {
        if (tier_id) {
            tier = gh_tier_find(table, tier_id);
        } else if (!strcmp(r.kind, "tier")) {
            tier = gh_tier_find(table, r.requested_tier);
        } else {
            for (size_t i = 0; i < table->count && !tier; i++)
                if (table->tiers[i].custom)
                    tier = &table->tiers[i];
        }
        if (!tier) {
            snprintf(msg, msg_size, "tier: \"%.40s\" is not a configured tier.",
                     tier_id ? tier_id : r.requested_tier);
            return GH_EINVAL;
        }
        if (custom) {
            if ((rc = check_custom(custom, msg, msg_size)))
                return rc;
            granted = *custom;
        }
    }
    gh_actor_t actor = staff_on(staff, r.org_id);
    gh_org_quota_t before;
    if ((rc = gh_store_begin(db)))
        return rc;
    snprintf(r.status, sizeof(r.status), "%s", approve ? "approved" : "declined");
    snprintf(r.staff_note, sizeof(r.staff_note), "%s", note);
    snprintf(r.decided_by, sizeof(r.decided_by), "%s", staff->id);
    snprintf(r.decided_by_label, sizeof(r.decided_by_label), "%s", staff->label);
    snprintf(r.granted_tier, sizeof(r.granted_tier), "%s", tier ? tier->id : "");
    r.decided_at = app->now();
    rc = gh_store_limit_request_decide(db, &r);
    if (rc == GH_ECONFLICT)
        snprintf(msg, msg_size, "This request was decided already.");
    if (rc)
        goto out_rollback;
    json_t *details = json_pack("{s:s}", "note", note);
    if (approve) {
        if ((rc = put_tier(app, db, r.org_id, tier, &granted, &before))) {
            json_decref(details);
            goto out_rollback;
        }
        json_object_set_new(details, "tier", json_string(tier->id));
        json_object_set_new(details, "previous_tier", json_string(before.tier->id));
        if (tier->custom)
            json_object_set_new(details, "custom", custom_json(&granted));
    }
    if ((rc = gh_audit(app, db, &actor, approve ? "limit_request.approved" : "limit_request.declined",
                       "limit_request", r.id, details)) ||
        (rc = gh_store_limit_request_get(db, NULL, r.id, out)))
        goto out_rollback;

    char body[4096 + GH_LIMIT_REASON_SIZE], what[512];
    if (approve) {
        describe_tier(tier, tier->custom ? &granted : NULL, what, sizeof(what));
        snprintf(body, sizeof(body),
                 "Your request for higher limits for %s was approved.\n\nNew tier: %s\n%s%s%s\n"
                 "The new limits apply to your next API request. See them at "
                 "%s/settings/limits\n",
                 out->org_name, what, note[0] ? "\nNote from the reviewer:\n" : "", note,
                 note[0] ? "\n" : "", app->cfg->public_url);
    } else {
        snprintf(body, sizeof(body),
                 "Your request for higher limits for %s was declined.\n\nNote from the "
                 "reviewer:\n%s\n\nYour limits are unchanged: %s/settings/limits\n",
                 out->org_name, note, app->cfg->public_url);
    }
    if ((rc = mail_admins(app, db, r.org_id, r.requested_by_label,
                          approve ? "Your limit increase request was approved"
                                  : "Your limit increase request was declined",
                          body)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_admission_org_changed(app, r.org_id);
    gh_outbox_kick(app);
    gh_log_info("limits: request %s of %s %s by %s", r.id, r.org_id, r.status, staff->label);
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_quota_set_tier(gh_app_t *app, const gh_actor_t *staff, const char *org_id,
                           const char *tier_id, const gh_custom_limits_t *custom,
                           const char *note_in, char *msg, size_t msg_size)
{
    if (!app->admission)
        return GH_ESTORE;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_org_settings_t org;
    gh_err_t rc = gh_store_org_settings_get(db, org_id, &org);
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "There is no organization with id \"%.60s\".", org_id);
    if (rc)
        return rc;
    const gh_tier_t *tier = NULL;
    if (tier_id && !(tier = gh_tier_find(gh_admission_tiers(app->admission), tier_id))) {
        snprintf(msg, msg_size, "tier: \"%.40s\" is not a configured tier.", tier_id);
        return GH_EINVAL;
    }
    if (tier && tier->custom && !custom) {
        snprintf(msg, msg_size, "custom: give the limits of the custom tier.");
        return GH_EINVAL;
    }
    if (custom && (rc = check_custom(custom, msg, msg_size)))
        return rc;
    char note[GH_LIMIT_REASON_SIZE] = "";
    if (note_in && *note_in &&
        (rc = gh_text_clean_note(note_in, "note", GH_QUOTA_TEXT_CHARS, note, sizeof(note), msg,
                                 msg_size)))
        return rc;
    gh_actor_t actor = staff_on(staff, org_id);
    gh_org_quota_t before, after;
    if ((rc = gh_store_begin(db)))
        return rc;
    if ((rc = put_tier(app, db, org_id, tier, custom, &before)) ||
        (rc = gh_admission_org_quota(app->admission, db, org_id, &after)))
        goto out_rollback;
    json_t *details = json_object();
    gh_audit_change(details, "tier", before.tier->id, after.tier->id);
    json_object_set_new(details, "set_by", json_string(tier ? "staff" : "purchases"));
    if (after.tier->custom && custom)
        json_object_set_new(details, "custom", custom_json(custom));
    if (note[0])
        json_object_set_new(details, "note", json_string(note));
    if ((rc = gh_audit(app, db, &actor, "limits.tier_set", "organization", org_id, details)))
        goto out_rollback;
    char body[4096 + GH_LIMIT_REASON_SIZE], what[512];
    describe_tier(after.tier, after.tier->custom ? custom : NULL, what, sizeof(what));
    snprintf(body, sizeof(body),
             "The usage tier of %s was changed by the platform team.\n\nTier: %s (was %s)\n%s%s%s"
             "\nThe new limits apply to your next API request. See them at %s/settings/limits\n",
             org.name, what, before.tier->name, note[0] ? "\nNote:\n" : "", note,
             note[0] ? "\n" : "", app->cfg->public_url);
    if ((rc = mail_admins(app, db, org_id, NULL, "Your usage tier was changed", body)) ||
        (rc = gh_store_commit(db)))
        goto out_rollback;
    gh_admission_org_changed(app, org_id);
    gh_outbox_kick(app);
    gh_log_info("limits: %s moved from %s to %s by %s", org_id, before.tier->id, after.tier->id,
                staff->label);
    return GH_OK;
out_rollback:
    gh_store_rollback(db);
    return rc;
}

gh_err_t gh_quota_org(gh_app_t *app, const char *org_id, gh_org_quota_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db && app->admission ? gh_admission_org_quota(app->admission, db, org_id, out)
                                : GH_ESTORE;
}

gh_err_t gh_quota_ws_limits_list(gh_app_t *app, const char *org_id, gh_store_ws_limits_fn fn,
                                 void *ctx)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_ws_limits_list(db, org_id, fn, ctx) : GH_ESTORE;
}

gh_err_t gh_quota_ws_limits_get(gh_app_t *app, const char *workspace_id, gh_ws_limits_rec_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_ws_limits_get(db, workspace_id, out) : GH_ESTORE;
}

gh_err_t gh_quota_requests_list(gh_app_t *app, const char *org_id, const char *status,
                                const gh_page_t *page, gh_store_limit_request_fn fn, void *ctx,
                                bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_limit_requests_list(db, org_id, status, page, fn, ctx, has_more)
              : GH_ESTORE;
}
