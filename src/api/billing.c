/* /v1/organizations/billing (balance, card, first-purchase questions, purchases,
 * auto-reload) and /v1/organizations/invoices. Admins and billing members only (the route
 * table says so). Money crosses the wire as decimal strings in USD ("12.50"), never as JSON
 * numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/billing.h"
#include "core/billing_invoices.h"
#include "core/billing_ledger.h"
#include "core/billing_purchases.h"
#include "core/billing_reload.h"
#include "lib/money.h"

#define LOTS_SHOWN 100
#define LIST_ITEMS_MAX 256 /* longest array accepted in a billing request */

static json_t *card_json(const gh_payment_method_t *pm)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:o, s:o}", "type", "payment_method", "id",
                     pm->id, "brand", pm->brand, "last4", pm->last4, "exp_month", pm->exp_month,
                     "exp_year", pm->exp_year, "added_at", gh_api_time(pm->created_at),
                     "replaced_at", gh_api_time(pm->replaced_at));
}

static json_t *auto_reload_json(const gh_billing_account_t *a)
{
    return json_pack(
        "{s:s, s:b, s:o, s:o, s:o}", "type", "auto_reload", "enabled", a->auto_reload_enabled,
        "threshold_usd",
        a->auto_reload_configured ? gh_api_money(a->auto_reload_threshold_nusd) : json_null(),
        "amount_usd",
        a->auto_reload_configured ? gh_api_money(a->auto_reload_amount_nusd) : json_null(),
        "disabled_reason", gh_api_opt_str(a->auto_reload_disabled_reason));
}

static json_t *profile_json(const gh_billing_account_t *a)
{
    if (!a->profile_answered_at)
        return json_null();
    json_t *countries = json_loads(a->countries, 0, NULL);
    json_t *industries = json_loads(a->regulated_industries, 0, NULL);
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "type", "billing_profile", "intended_use",
                     a->intended_use, "countries", countries ? countries : json_array(),
                     "regulated_industries", industries ? industries : json_array(),
                     "answered_at", gh_api_time(a->profile_answered_at));
}

static json_t *purchase_json(const gh_purchase_t *p)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:o, s:i, "
        "s:o, s:o, s:o, s:{s:s, s:s}}",
        "type", "purchase", "id", p->id, "kind", p->kind, "status", p->status, "amount_usd",
        gh_api_money(p->amount_nusd), "tax_usd", gh_api_money(p->tax_nusd), "total_usd",
        gh_api_money(p->total_nusd), "tax_label", p->tax_label, "payment_method_id",
        p->payment_method_id, "invoice_id", gh_api_opt_str(p->invoice_id), "decline_code",
        gh_api_opt_str(p->decline_code), "message", gh_api_opt_str(p->message), "attempts",
        p->attempts, "provider_ref", gh_api_opt_str(p->provider_ref), "created_at",
        gh_api_time(p->created_at), "resolved_at", gh_api_time(p->resolved_at), "created_by",
        "type", p->created_by_type, "id", p->created_by_id);
    return j;
}

static json_t *party_json(const gh_invoice_party_rec_t *p)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "name",
                     gh_api_opt_str(p->name), "line1", gh_api_opt_str(p->line1), "line2",
                     gh_api_opt_str(p->line2), "city", gh_api_opt_str(p->city), "postal_code",
                     gh_api_opt_str(p->postal_code), "state", gh_api_opt_str(p->state), "country",
                     gh_api_opt_str(p->country), "vat_id", gh_api_opt_str(p->vat_id), "email",
                     gh_api_opt_str(p->email));
}

static json_t *invoice_json(const gh_invoice_rec_t *v)
{
    char pdf[128];
    snprintf(pdf, sizeof(pdf), "/v1/organizations/invoices/%s/pdf", v->id);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s, s:o, "
                     "s:b, s:o, s:o, s:s}",
                     "type", "invoice", "id", v->id, "number", v->number, "purchase_id",
                     v->purchase_id, "issued_at", gh_api_time(v->issued_at), "status", "paid",
                     "currency", v->currency, "subtotal_usd", gh_api_money(v->subtotal_nusd),
                     "tax_usd", gh_api_money(v->tax_nusd), "total_usd", gh_api_money(v->total_nusd),
                     "tax_label", v->tax_label, "description", v->description, "payment",
                     v->payment, "note", gh_api_opt_str(v->note), "test_mode", v->test_mode,
                     "seller", party_json(&v->seller), "buyer", party_json(&v->buyer), "pdf_url",
                     pdf);
}

static void add_lot(void *list, const gh_credit_lot_t *l)
{
    json_array_append_new(
        list, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "type", "credit_lot", "id", l->id,
                        "source", l->source, "amount_usd", gh_api_money(l->amount_nusd),
                        "remaining_usd", gh_api_money(l->remaining_nusd), "expires_at",
                        gh_api_time(l->expires_at), "created_at", gh_api_time(l->created_at)));
}

void gh_api_billing_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_app_t *app = ctx->app;
    const gh_config_t *cfg = app->cfg;
    gh_billing_overview_t o;
    json_t *lots = json_array();
    gh_err_t rc = gh_billing_overview(app, ctx->actor.org_id, &o);
    if (!rc)
        rc = gh_billing_lots(app, ctx->actor.org_id, LOTS_SHOWN, add_lot, lots);
    if (rc) {
        json_decref(lots);
        gh_res_error(req, rc, "Could not load the billing details. Try again.");
        return;
    }
    json_t *choices = json_array();
    for (const char *const *i = gh_billing_industries; *i; i++)
        json_array_append_new(choices, json_string(*i));
    /* What the console needs to load Stripe.js (the setup_intent answer repeats it). */
    json_t *stripe = !strcmp(o.provider, "stripe")
                         ? json_pack("{s:s, s:s}", "publishable_key",
                                     cfg->stripe_publishable_key, "js_url", cfg->stripe_js_url)
                         : json_null();
    gh_res_json(
        req, 200,
        json_pack("{s:s, s:s, s:o, s:b, s:s, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:I, "
                  "s:i, s:s, s:o, s:o, s:o}",
                  "type", "billing", "organization_id", ctx->actor.org_id, "balance_usd",
                  gh_api_money(o.account.balance_nusd), "test_mode", o.test_mode, "provider",
                  o.provider, "payment_method", o.has_card ? card_json(&o.card) : json_null(),
                  "auto_reload", auto_reload_json(&o.account), "profile_complete",
                  o.account.profile_answered_at != 0, "profile", profile_json(&o.account),
                  "min_purchase_usd", gh_api_money(cfg->min_purchase_nusd),
                  "first_purchase_min_usd", gh_api_money(cfg->first_purchase_min_nusd),
                  "max_purchase_usd", gh_api_money(cfg->max_purchase_nusd), "next_purchase_min_usd",
                  gh_api_money(o.next_min_nusd), "purchases_total_usd",
                  gh_api_money(o.purchases.succeeded_nusd), "pending_purchases",
                  (json_int_t)o.purchases.pending, "tax_rate_bps", cfg->tax_rate_bps, "tax_label",
                  cfg->tax_label, "regulated_industry_choices", choices, "lots", lots, "stripe",
                  stripe));
}

/* Reads an integer member (required). */
static bool read_int(gh_req_t *req, json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        gh_res_error(req, GH_EINVAL, "%s is required.", key);
        return false;
    }
    if (!json_is_integer(v) || json_integer_value(v) < -100000 ||
        json_integer_value(v) > 100000) {
        gh_res_error(req, GH_EINVAL, "%s must be a whole number.", key);
        return false;
    }
    *out = (int)json_integer_value(v);
    return true;
}

/* Stripe: {"setup_intent": "seti_…"} after the browser confirmed the setup in Stripe's form.
 * Card details are refused without being looked at. */
static void card_from_setup(gh_req_t *req, json_t *body)
{
    static const char *const card_fields[] = {"number", "exp_month", "exp_year", "cvc", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    for (const char *const *f = card_fields; *f; f++)
        if (json_object_get(body, *f)) {
            gh_res_error(req, GH_EINVAL,
                         "Card numbers never reach this server: with [billing] provider = "
                         "stripe the card is entered in Stripe's own form. Start with POST "
                         "/v1/organizations/billing/setup_intent, confirm the setup with "
                         "Stripe.js, then send {\"setup_intent\": \"seti_…\"} here.");
            return;
        }
    static const char *const fields[] = {"setup_intent", NULL};
    const char *setup;
    if (!gh_api_known_fields(req, body, fields, NULL) ||
        !gh_api_str(req, body, "setup_intent", true, false, &setup))
        return;
    char msg[512] = "";
    gh_payment_method_t pm;
    gh_err_t rc = gh_billing_setup_finish(ctx->app, &ctx->actor, setup, &pm, msg, sizeof(msg));
    if (rc)
        gh_api_fail(req, rc, msg, "Could not save the card. Try again.");
    else
        gh_res_json(req, 200, card_json(&pm));
}

void gh_api_billing_setup_intent(gh_req_t *req)
{
    static const char *const fields[] = {NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const gh_config_t *cfg = ctx->app->cfg;
    /* The body is optional; when sent it must be an empty JSON object. */
    if (req->body_len) {
        json_t *body = gh_api_body(req);
        if (!body)
            return;
        bool ok = gh_api_known_fields(req, body, fields, NULL);
        json_decref(body);
        if (!ok)
            return;
    }
    char msg[512] = "", secret[GH_PAY_SECRET_MAX];
    gh_err_t rc = gh_billing_setup_start(ctx->app, &ctx->actor,
                                         ctx->has_session ? ctx->account.email : NULL, secret,
                                         msg, sizeof(msg));
    if (rc) {
        gh_api_fail(req, rc, msg, "Could not start the card setup. Try again.");
        return;
    }
    gh_res_json(req, 200,
                json_pack("{s:s, s:s, s:s, s:s}", "type", "setup_intent", "client_secret", secret,
                          "publishable_key", cfg->stripe_publishable_key, "stripe_js_url",
                          cfg->stripe_js_url));
}

void gh_api_billing_card_add(gh_req_t *req)
{
    static const char *const fields[] = {"number", "exp_month", "exp_year", "cvc", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    if (!strcmp(ctx->app->pay->ops->name, "stripe")) {
        card_from_setup(req, body);
        json_decref(body);
        return;
    }
    if (json_object_get(body, "setup_intent")) {
        gh_res_error(req, GH_EINVAL, "setup_intent is only for [billing] provider = stripe; the "
                                     "test provider takes number, exp_month, exp_year and cvc.");
        json_decref(body);
        return;
    }
    const char *number, *cvc;
    int month, year;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "number", true, false, &number) &&
        read_int(req, body, "exp_month", &month) && read_int(req, body, "exp_year", &year) &&
        gh_api_str(req, body, "cvc", true, false, &cvc)) {
        char msg[512] = "";
        gh_payment_method_t pm;
        gh_err_t rc = gh_billing_card_add(ctx->app, &ctx->actor, number, month, year, cvc, &pm,
                                          msg, sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not save the card. Try again.");
        else
            gh_res_json(req, 200, card_json(&pm));
    }
    json_decref(body);
}

static void add_card(void *list, const gh_payment_method_t *pm)
{
    json_array_append_new(list, card_json(pm));
}

void gh_api_billing_cards_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    if (!gh_api_page(req, &page))
        return;
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc =
        gh_billing_cards_list(ctx->app, ctx->actor.org_id, &page, add_card, data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the cards. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}

/* Reads a member that must be an array of at most LIST_ITEMS_MAX strings into `out`
 * (pointers into `obj`). */
static bool read_strings(gh_req_t *req, json_t *obj, const char *key, const char **out,
                         size_t *n)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        gh_res_error(req, GH_EINVAL, "%s is required (an array, which may be empty).", key);
        return false;
    }
    if (!json_is_array(v) || json_array_size(v) > LIST_ITEMS_MAX) {
        gh_res_error(req, GH_EINVAL, "%s must be an array of at most %d strings.", key,
                     LIST_ITEMS_MAX);
        return false;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || strlen(json_string_value(item)) != json_string_length(item)) {
            gh_res_error(req, GH_EINVAL, "%s must contain only strings.", key);
            return false;
        }
        out[i] = json_string_value(item);
    }
    *n = json_array_size(v);
    return true;
}

void gh_api_billing_profile(gh_req_t *req)
{
    static const char *const fields[] = {"intended_use", "countries", "regulated_industries",
                                         NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    const char *countries[LIST_ITEMS_MAX], *industries[LIST_ITEMS_MAX];
    gh_billing_profile_in_t in = {.countries = countries, .industries = industries};
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_str(req, body, "intended_use", true, false, &in.intended_use) &&
        read_strings(req, body, "countries", countries, &in.ncountries) &&
        read_strings(req, body, "regulated_industries", industries, &in.nindustries)) {
        char msg[512] = "";
        gh_billing_account_t a;
        gh_err_t rc = gh_billing_profile_set(ctx->app, &ctx->actor, &in, &a, msg, sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not save the answers. Try again.");
        else
            gh_res_json(req, 200, profile_json(&a));
    }
    json_decref(body);
}

/* Reads a USD amount member, which must be a string. `*present` tells whether it was sent
 * (with `required`, a missing one is a 400). */
static bool read_amount(gh_req_t *req, json_t *obj, const char *key, bool required,
                        int64_t *nusd, bool *present)
{
    json_t *v = json_object_get(obj, key);
    *present = v != NULL;
    if (!v) {
        if (required)
            gh_res_error(req, GH_EINVAL, "%s is required: an amount in USD as a string, like "
                                         "\"25.00\".", key);
        return !required;
    }
    if (!json_is_string(v)) {
        gh_res_error(req, GH_EINVAL, "%s must be a string of USD, like \"25.00\", not a JSON %s: "
                                     "money is never sent as a JSON number.", key,
                     json_is_number(v) ? "number" : "value of another type");
        return false;
    }
    char msg[256];
    if (strlen(json_string_value(v)) != json_string_length(v) ||
        gh_billing_parse_amount(json_string_value(v), key, nusd, msg, sizeof(msg))) {
        gh_res_error(req, GH_EINVAL, "%s", msg);
        return false;
    }
    return true;
}

/* Answers with a purchase as it now is: 200 succeeded, 202 pending, 402 declined. */
static void reply_purchase(gh_req_t *req, gh_err_t rc, const gh_purchase_t *p, const char *msg)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    if (rc) {
        gh_api_fail(req, rc, msg, "Could not make the purchase. Try again with the same "
                                  "idempotency-key.");
        return;
    }
    gh_billing_overview_t o;
    json_t *j = purchase_json(p);
    if (!gh_billing_overview(ctx->app, ctx->actor.org_id, &o))
        json_object_set_new(j, "balance_usd", gh_api_money(o.account.balance_nusd));
    gh_res_json(req, strcmp(p->status, "pending") ? 200 : 202, j);
}

void gh_api_billing_purchase(gh_req_t *req)
{
    static const char *const fields[] = {"amount_usd", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    int64_t amount = 0;
    bool present;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        read_amount(req, body, "amount_usd", true, &amount, &present)) {
        char msg[GH_BILLING_MSG_SIZE] = "";
        gh_purchase_t p;
        gh_err_t rc = gh_billing_purchase(ctx->app, &ctx->actor, amount,
                                          gh_req_header(req, "idempotency-key"), &p, msg,
                                          sizeof(msg));
        reply_purchase(req, rc, &p, msg);
    }
    json_decref(body);
}

static void add_purchase(void *list, const gh_purchase_t *p)
{
    json_array_append_new(list, purchase_json(p));
}

void gh_api_billing_purchases_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    if (!gh_api_page(req, &page))
        return;
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc =
        gh_billing_purchases_list(ctx->app, ctx->actor.org_id, &page, add_purchase, data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the purchases. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}

void gh_api_billing_purchase_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "purchase_id");
    gh_purchase_t p;
    gh_err_t rc = gh_billing_purchase_get(ctx->app, ctx->actor.org_id, id, &p);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "There is no purchase with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not load the purchase. Try again.");
    else
        gh_res_json(req, 200, purchase_json(&p));
}

void gh_api_billing_auto_reload(gh_req_t *req)
{
    static const char *const fields[] = {"enabled", "threshold_usd", "amount_usd", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    bool enabled, has_threshold, has_amount;
    int64_t threshold = 0, amount = 0;
    if (gh_api_known_fields(req, body, fields, NULL) &&
        gh_api_bool(req, body, "enabled", &enabled) &&
        read_amount(req, body, "threshold_usd", false, &threshold, &has_threshold) &&
        read_amount(req, body, "amount_usd", false, &amount, &has_amount)) {
        char msg[512] = "";
        gh_billing_account_t a;
        gh_err_t rc = gh_billing_auto_reload_set(ctx->app, &ctx->actor, enabled,
                                                 has_threshold ? &threshold : NULL,
                                                 has_amount ? &amount : NULL, &a, msg,
                                                 sizeof(msg));
        if (rc)
            gh_api_fail(req, rc, msg, "Could not change auto-reload. Try again.");
        else
            gh_res_json(req, 200, auto_reload_json(&a));
    }
    json_decref(body);
}

static void add_invoice(void *list, const gh_invoice_rec_t *v)
{
    json_array_append_new(list, invoice_json(v));
}

void gh_api_invoices_list(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    gh_page_t page;
    if (!gh_api_page(req, &page))
        return;
    json_t *data = json_array();
    bool more = false;
    gh_err_t rc =
        gh_billing_invoices_list(ctx->app, ctx->actor.org_id, &page, add_invoice, data, &more);
    if (rc) {
        json_decref(data);
        gh_api_fail(req, rc, "", "Could not list the invoices. Try again.");
        return;
    }
    gh_api_list(req, data, more, "id");
}

void gh_api_invoice_get(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "invoice_id");
    gh_invoice_rec_t v;
    gh_err_t rc = !gh_id_valid(id, "inv")
                      ? GH_ENOTFOUND
                      : gh_billing_invoice_get(ctx->app, ctx->actor.org_id, id, &v);
    if (rc == GH_ENOTFOUND)
        gh_res_error(req, rc, "There is no invoice with id \"%.60s\".", id);
    else if (rc)
        gh_res_error(req, rc, "Could not load the invoice. Try again.");
    else
        gh_res_json(req, 200, invoice_json(&v));
}

void gh_api_invoice_pdf(gh_req_t *req)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    const char *id = gh_req_param(req, "invoice_id");
    gh_invoice_rec_t v;
    unsigned char *pdf = NULL;
    size_t len = 0;
    gh_err_t rc = gh_billing_invoice_pdf(ctx->app, ctx->actor.org_id, id, &v, &pdf, &len);
    if (rc == GH_ENOTFOUND) {
        gh_res_error(req, rc, "There is no invoice with id \"%.60s\".", id);
        return;
    }
    if (rc) {
        gh_res_error(req, rc, "Could not draw the invoice. Try again.");
        return;
    }
    char disposition[128];
    snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s.pdf\"", v.number);
    gh_res_header(req, "content-disposition", disposition);
    gh_res_body(req, 200, "application/pdf", pdf, len);
    free(pdf);
}
