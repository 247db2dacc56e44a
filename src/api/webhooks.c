/* POST /webhooks/stripe: events Stripe posts about charges and card setups. Public (Stripe
 * has no session): the Stripe-Signature header, an HMAC of the raw body with the endpoint's
 * signing secret, is what authenticates it, and nothing of the body is read before it is
 * verified. Each event is acted on once (webhook_events); Stripe delivers at least once and
 * retries anything but a 2xx, so an answer other than 2xx means "send it again". */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/billing.h"
#include "core/billing_purchases.h"
#include "core/pay_stripe.h"
#include "lib/log.h"

#define WEBHOOK_BODY_MAX ((size_t)256 * 1024)

static const char *outcome_name(gh_billing_event_outcome_t o)
{
    switch (o) {
    case GH_BILLING_EVENT_APPLIED: return "applied";
    case GH_BILLING_EVENT_DUPLICATE: return "duplicate";
    case GH_BILLING_EVENT_IGNORED: break;
    }
    return "ignored";
}

static void answer(gh_req_t *req, const gh_stripe_event_t *e, gh_billing_event_outcome_t o)
{
    gh_res_json(req, 200, json_pack("{s:b, s:s, s:s}", "received", 1, "event", e->id, "outcome",
                                    outcome_name(o)));
}

/* setup_intent.succeeded: the card the setup saved, if the SetupIntent is this
 * organization's. The console's own finish usually got there first; the card is not added
 * twice. */
static gh_err_t setup_event(gh_app_t *app, const gh_stripe_event_t *e, gh_card_t *card,
                            bool *usable, char *why, size_t why_size)
{
    *usable = false;
    char customer[GH_PAY_REF_MAX] = "";
    gh_err_t rc = e->org_id[0] ? gh_billing_customer_ref(app, e->org_id, customer) : GH_OK;
    if (rc)
        return rc;
    if (!e->customer[0] || !customer[0] || strcmp(customer, e->customer)) {
        snprintf(why, why_size, "SetupIntent %s is not for a customer of an organization here",
                 e->object_id);
        return GH_OK;
    }
    char msg[256] = "";
    rc = app->pay->ops->setup_finish(app->pay, customer, e->object_id, card, msg, sizeof(msg));
    if (rc == GH_EINVAL) {
        snprintf(why, why_size, "SetupIntent %.100s: %.140s", e->object_id, msg);
        return GH_OK;
    }
    *usable = rc == GH_OK;
    return rc;
}

void gh_api_webhook_stripe(gh_req_t *req)
{
    gh_app_t *app = gh_api_ctx(req)->app;
    if (!app->pay || !gh_pay_is_stripe(app->pay)) {
        gh_res_error(req, GH_ENOTFOUND, "Stripe webhooks are off: [billing] provider is not "
                                        "stripe.");
        return;
    }
    if (req->body_len > WEBHOOK_BODY_MAX) {
        gh_res_error(req, GH_ETOOBIG, "A webhook event may be at most %zu bytes.",
                     WEBHOOK_BODY_MAX);
        return;
    }
    gh_err_t rc = gh_pay_stripe_webhook_verify(app->pay, gh_req_header(req, "stripe-signature"),
                                               req->body, req->body_len, app->now());
    if (rc) {
        gh_log_warn("webhook: refused a Stripe event from %s: the Stripe-Signature is %s",
                    req->ip, rc == GH_EINVAL ? "missing or malformed"
                                             : "wrong or outside the time tolerance");
        gh_res_error(req, GH_EINVAL, "The Stripe-Signature header is missing, malformed, too old "
                                     "or does not match this endpoint's signing secret.");
        return;
    }
    gh_stripe_event_t e;
    if (gh_pay_stripe_event_parse(req->body, req->body_len, &e)) {
        gh_log_warn("webhook: a signed Stripe delivery is not an event Gatehouse can read");
        gh_res_error(req, GH_EINVAL, "The body is not a Stripe event.");
        return;
    }
    if (e.livemode != !app->pay->ops->test_mode) {
        gh_log_warn("webhook: ignored %s event %s: this Gatehouse uses a %s key",
                    e.livemode ? "live" : "test", e.id, app->pay->ops->test_mode ? "test" : "live");
        answer(req, &e, GH_BILLING_EVENT_IGNORED);
        return;
    }
    bool seen = false;
    if ((rc = gh_billing_event_seen(app, e.id, &seen))) {
        gh_res_error(req, rc, "Could not record the event. Send it again.");
        return;
    }
    if (seen) {
        gh_log_info("webhook: %s %s: duplicate, already handled", e.type, e.id);
        answer(req, &e, GH_BILLING_EVENT_DUPLICATE);
        return;
    }
    gh_billing_event_t ev = {.provider = "stripe", .id = e.id, .type = e.type};
    char why[256] = "";
    gh_card_t card;
    if (e.kind == GH_STRIPE_EVENT_PAYMENT) {
        ev.purchase_id = e.purchase_id;
        ev.org_id = e.org_id;
        ev.amount_nusd = e.amount_nusd;
        ev.result = &e.result;
        if (strcmp(e.currency, "usd")) {
            snprintf(why, sizeof(why), "PaymentIntent %s is in \"%s\", not usd", e.object_id,
                     e.currency);
            ev.result = NULL;
        }
    } else if (e.kind == GH_STRIPE_EVENT_SETUP) {
        bool usable;
        if ((rc = setup_event(app, &e, &card, &usable, why, sizeof(why)))) {
            /* Stripe could not be asked: a later delivery of the event tries again. */
            gh_log_warn("webhook: %s %s: Stripe could not be asked about %s (%s); answered %d so "
                        "that it is sent again", e.type, e.id, e.object_id, gh_err_name(rc),
                        gh_http_status_of(GH_EUNAVAIL));
            gh_res_error(req, GH_EUNAVAIL, "Could not read the SetupIntent from Stripe. Send the "
                                           "event again.");
            return;
        }
        if (usable) {
            ev.card = &card;
            ev.org_id = e.org_id;
        }
    }
    gh_billing_event_outcome_t outcome;
    char done[256] = "";
    rc = gh_billing_event_apply(app, &ev, &outcome, done, sizeof(done));
    if (rc) {
        gh_log_error("webhook: %s %s could not be recorded (%s); Stripe sends it again",
                     e.type, e.id, gh_err_name(rc));
        gh_res_error(req, rc, "Could not record the event. Send it again.");
        return;
    }
    gh_log_info("webhook: %s %s: %s (%s)", e.type, e.id, outcome_name(outcome),
                why[0] ? why : done);
    answer(req, &e, outcome);
}
