/* Stripe webhooks in the provider, without a network: the provider keeps the endpoint's
 * signing secret (refusing one that is not shaped like it, without repeating it) and checks
 * deliveries with it; events are read into what Gatehouse acts on (payment outcomes with
 * their purchase, amount and decline reason; saved cards; everything else ignored), and
 * anything malformed is refused. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "core/pay_stripe.h"
#include "core/pay_test.h"
#include "lib/crypto.h"
#include "lib/stripe_sig.h"

#define KEY "sk_test_unitEventsKey0123456789"
#define WHSEC "whsec_unitEventsSecret0123"
#define NOW 1800000000

static int setup(void **state)
{
    (void)state;
    return gh_crypto_init() == GH_OK ? 0 : -1;
}

static gh_pay_t *provider(const char *whsec)
{
    gh_pay_stripe_opts_t o = {.secret_key = KEY, .webhook_secret = whsec};
    gh_pay_t *p = NULL;
    char err[256];
    assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_OK);
    return p;
}

static void webhook_secret_is_checked_and_never_repeated(void **state)
{
    (void)state;
    static const char *const bad[] = {"sk_test_putTheWrongSecretHere", "whsec_", "whsec_a b c d",
                                      "whsec_\x01zzzzzz"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gh_pay_stripe_opts_t o = {.secret_key = KEY, .webhook_secret = bad[i]};
        gh_pay_t *p = (gh_pay_t *)1;
        char err[256] = "";
        assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_EINVAL);
        assert_null(p);
        assert_non_null(strstr(err, "webhook"));
        assert_null(strstr(err, "putTheWrong"));
    }
    gh_pay_t *p = provider(NULL);
    assert_true(gh_pay_is_stripe(p));
    p->ops->destroy(p);
    gh_pay_t *t = gh_pay_test_new();
    assert_false(gh_pay_is_stripe(t));
    assert_false(gh_pay_is_stripe(NULL));
    t->ops->destroy(t);
}

static void deliveries_are_verified_with_the_endpoint_secret(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"evt_1\",\"object\":\"event\"}";
    size_t len = strlen(body);
    char sig[GH_STRIPE_SIG_SIGNED_MAX], other[GH_STRIPE_SIG_SIGNED_MAX],
        stale[GH_STRIPE_SIG_SIGNED_MAX];
    assert_int_equal(gh_stripe_sig_sign(sig, sizeof(sig), body, len, WHSEC, NOW), GH_OK);
    assert_int_equal(gh_stripe_sig_sign(other, sizeof(other), body, len, "whsec_another", NOW),
                     GH_OK);
    assert_int_equal(gh_stripe_sig_sign(stale, sizeof(stale), body, len, WHSEC,
                                        NOW - GH_STRIPE_SIG_TOLERANCE_S - 1),
                     GH_OK);
    gh_pay_t *p = provider(WHSEC);
    assert_int_equal(gh_pay_stripe_webhook_verify(p, sig, body, len, NOW), GH_OK);
    assert_int_equal(gh_pay_stripe_webhook_verify(p, sig, body, len, NOW + 60), GH_OK);
    assert_int_equal(gh_pay_stripe_webhook_verify(p, other, body, len, NOW), GH_EAUTH);
    assert_int_equal(gh_pay_stripe_webhook_verify(p, stale, body, len, NOW), GH_EAUTH);
    assert_int_equal(gh_pay_stripe_webhook_verify(p, sig, body, len - 1, NOW), GH_EAUTH);
    assert_int_equal(gh_pay_stripe_webhook_verify(p, NULL, body, len, NOW), GH_EINVAL);
    assert_int_equal(gh_pay_stripe_webhook_verify(p, "garbage", body, len, NOW), GH_EINVAL);
    assert_int_equal(gh_pay_stripe_webhook_verify(p, sig, NULL, 0, NOW), GH_EAUTH);
    p->ops->destroy(p);

    /* Without a webhook secret, or not the Stripe provider: nothing is accepted. */
    gh_pay_t *none = provider("");
    assert_int_equal(gh_pay_stripe_webhook_verify(none, sig, body, len, NOW), GH_EAUTH);
    none->ops->destroy(none);
    gh_pay_t *t = gh_pay_test_new();
    assert_int_equal(gh_pay_stripe_webhook_verify(t, sig, body, len, NOW), GH_EAUTH);
    t->ops->destroy(t);
}

static gh_err_t parse(const char *json, gh_stripe_event_t *e)
{
    return gh_pay_stripe_event_parse(json, strlen(json), e);
}

static void payment_events_are_read(void **state)
{
    (void)state;
    gh_stripe_event_t e;
    assert_int_equal(
        parse("{\"id\":\"evt_A1\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\","
              "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_123\",\"object\":"
              "\"payment_intent\",\"amount\":1250,\"currency\":\"usd\",\"status\":\"succeeded\","
              "\"customer\":\"cus_9\",\"metadata\":{\"purchase_id\":\"pur_01abc\",\"org_id\":"
              "\"org_01xyz\"}}}}",
              &e),
        GH_OK);
    assert_int_equal(e.kind, GH_STRIPE_EVENT_PAYMENT);
    assert_string_equal(e.id, "evt_A1");
    assert_string_equal(e.type, "payment_intent.succeeded");
    assert_false(e.livemode);
    assert_string_equal(e.object_id, "pi_123");
    assert_string_equal(e.customer, "cus_9");
    assert_string_equal(e.purchase_id, "pur_01abc");
    assert_string_equal(e.org_id, "org_01xyz");
    assert_true(e.amount_nusd == INT64_C(12500000000));
    assert_string_equal(e.currency, "usd");
    assert_int_equal(e.result.status, GH_PAY_SUCCEEDED);
    assert_string_equal(e.result.ref, "pi_123");

    /* A failure: Stripe's decline code and message, with any secret in it redacted. */
    assert_int_equal(
        parse("{\"id\":\"evt_A2\",\"type\":\"payment_intent.payment_failed\",\"livemode\":true,"
              "\"data\":{\"object\":{\"id\":\"pi_124\",\"amount\":500,\"currency\":\"usd\","
              "\"customer\":{\"id\":\"cus_10\",\"object\":\"customer\"},\"metadata\":{},"
              "\"last_payment_error\":{\"code\":\"card_declined\",\"decline_code\":"
              "\"insufficient_funds\",\"message\":\"No funds for sk_test_leaked123.\"}}}}",
              &e),
        GH_OK);
    assert_int_equal(e.kind, GH_STRIPE_EVENT_PAYMENT);
    assert_true(e.livemode);
    assert_string_equal(e.customer, "cus_10");
    assert_string_equal(e.purchase_id, "");
    assert_int_equal(e.result.status, GH_PAY_DECLINED);
    assert_string_equal(e.result.decline_code, "insufficient_funds");
    assert_null(strstr(e.result.message, "leaked"));
    assert_non_null(strstr(e.result.message, "No funds for [redacted]"));

    /* Without a decline code: Stripe's code; without anything: a generic decline. */
    assert_int_equal(parse("{\"id\":\"evt_A3\",\"type\":\"payment_intent.payment_failed\","
                           "\"data\":{\"object\":{\"id\":\"pi_125\",\"last_payment_error\":"
                           "{\"code\":\"expired_card\"}}}}",
                           &e),
                     GH_OK);
    assert_string_equal(e.result.decline_code, "expired_card");
    assert_string_equal(e.result.message, "Your card was declined.");
    assert_true(e.amount_nusd == 0);
    assert_int_equal(parse("{\"id\":\"evt_A4\",\"type\":\"payment_intent.canceled\",\"data\":"
                           "{\"object\":{\"id\":\"pi_126\"}}}",
                           &e),
                     GH_OK);
    assert_int_equal(e.result.status, GH_PAY_DECLINED);
    assert_string_equal(e.result.decline_code, "canceled");

    /* Metadata that could not be ours is left out, not trusted. */
    assert_int_equal(parse("{\"id\":\"evt_A5\",\"type\":\"payment_intent.succeeded\",\"data\":"
                           "{\"object\":{\"id\":\"pi_127\",\"amount\":-5,\"metadata\":{"
                           "\"purchase_id\":\"pur_\\n1\",\"org_id\":42}}}}",
                           &e),
                     GH_OK);
    assert_string_equal(e.purchase_id, "");
    assert_string_equal(e.org_id, "");
    assert_true(e.amount_nusd == 0);
}

static void other_events_and_garbage(void **state)
{
    (void)state;
    gh_stripe_event_t e;
    assert_int_equal(parse("{\"id\":\"evt_S1\",\"type\":\"setup_intent.succeeded\",\"data\":{"
                           "\"object\":{\"id\":\"seti_1\",\"customer\":\"cus_1\","
                           "\"payment_method\":\"pm_1\",\"metadata\":{\"org_id\":\"org_01a\"}}}}",
                           &e),
                     GH_OK);
    assert_int_equal(e.kind, GH_STRIPE_EVENT_SETUP);
    assert_string_equal(e.object_id, "seti_1");
    assert_string_equal(e.customer, "cus_1");
    assert_string_equal(e.org_id, "org_01a");

    /* Types Gatehouse does not act on, whatever their object. */
    static const char *const ignored[] = {
        "{\"id\":\"evt_O1\",\"type\":\"payment_intent.processing\",\"data\":{\"object\":{}}}",
        "{\"id\":\"evt_O2\",\"type\":\"customer.created\"}",
        "{\"id\":\"evt_O3\",\"type\":\"charge.refunded\",\"data\":7}",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        assert_int_equal(parse(ignored[i], &e), GH_OK);
        assert_int_equal(e.kind, GH_STRIPE_EVENT_OTHER);
        assert_string_equal(e.object_id, "");
    }

    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"type\":\"payment_intent.succeeded\"}",
        "{\"id\":\"ch_1\",\"type\":\"payment_intent.succeeded\"}",
        "{\"id\":\"evt_1 2\",\"type\":\"x\"}",
        "{\"id\":\"evt_1\"}",
        "{\"id\":\"evt_1\",\"type\":\"\"}",
        "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}",
        "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
        "{\"id\":\"seti_1\"}}}",
        "{\"id\":\"evt_1\",\"type\":\"setup_intent.succeeded\",\"data\":{\"object\":"
        "{\"id\":\"pi_1\"}}}",
        "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
        "{\"id\":\"pi_1/../x\"}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0x55, sizeof(e));
        assert_int_equal(parse(bad[i], &e), GH_EINVAL);
        assert_string_equal(e.id, "");
    }
    assert_int_equal(gh_pay_stripe_event_parse(NULL, 0, &e), GH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(webhook_secret_is_checked_and_never_repeated),
        cmocka_unit_test(deliveries_are_verified_with_the_endpoint_secret),
        cmocka_unit_test(payment_events_are_read),
        cmocka_unit_test(other_events_and_garbage),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
