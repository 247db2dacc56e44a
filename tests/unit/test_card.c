/* Card numbers (normalizing, Luhn, brands, expiry) and the test payment provider's checks of
 * card details. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "core/pay_test.h"
#include "lib/card.h"

static const int64_t NOW = 1800000000; /* 2027-01-15 */

static void luhn_accepts_valid_numbers_and_catches_typos(void **state)
{
    (void)state;
    static const char *const valid[] = {"4242424242424242", "4000000000000002",
                                        "4000000000009995", "4000000000000259",
                                        "5555555555554444", "378282246310005",
                                        "6011111111111117", "2223003122003222", "79927398713"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        if (!gh_card_luhn_ok(valid[i]))
            fail_msg("Luhn refused %s", valid[i]);
    /* Every single-digit change and every swap of neighbours of a valid number is caught
     * (except 09 <-> 90, which Luhn cannot see). */
    const char *base = "4242424242424242";
    char n[32];
    for (size_t i = 0; i < strlen(base); i++)
        for (char d = '0'; d <= '9'; d++) {
            if (d == base[i])
                continue;
            snprintf(n, sizeof(n), "%s", base);
            n[i] = d;
            if (gh_card_luhn_ok(n))
                fail_msg("Luhn accepted %s", n);
        }
    snprintf(n, sizeof(n), "4242424242424224");
    assert_false(gh_card_luhn_ok(n));
    assert_false(gh_card_luhn_ok(""));
    assert_false(gh_card_luhn_ok("42424242x4242424"));
}

static void brands_and_normalizing(void **state)
{
    (void)state;
    char d[GH_CARD_NUMBER_SIZE];
    assert_int_equal(gh_card_normalize("4242 4242-4242 4242", d), GH_OK);
    assert_string_equal(d, "4242424242424242");
    assert_string_equal(gh_card_brand(d), "visa");
    assert_int_equal(gh_card_normalize("4242.4242.4242.4242", d), GH_EINVAL);
    assert_string_equal(d, "");
    assert_int_equal(gh_card_normalize("42424242", d), GH_EINVAL);       /* too short */
    assert_int_equal(gh_card_normalize("42424242424242424242", d), GH_EINVAL); /* 20 digits */
    assert_int_equal(gh_card_normalize("", d), GH_EINVAL);
    static const struct {
        const char *number, *brand;
    } brands[] = {
        {"5555555555554444", "mastercard"}, {"2223003122003222", "mastercard"},
        {"378282246310005", "amex"},        {"371449635398431", "amex"},
        {"6011111111111117", "discover"},   {"3056930009020004", "diners"},
        {"3566002020360505", "jcb"},        {"6200000000000005", "unionpay"},
        {"4000056655665556", "visa"},
    };
    for (size_t i = 0; i < sizeof(brands) / sizeof(brands[0]); i++) {
        const char *b = gh_card_brand(brands[i].number);
        if (!b || strcmp(b, brands[i].brand))
            fail_msg("%s: brand %s, expected %s", brands[i].number, b ? b : "none",
                     brands[i].brand);
    }
    assert_null(gh_card_brand("9999999999999995"));
    assert_null(gh_card_brand("37828224631000")); /* amex has 15 digits */
    assert_int_equal(gh_card_cvc_digits("amex"), 4);
    assert_int_equal(gh_card_cvc_digits("visa"), 3);
    assert_string_equal(gh_card_brand_label("amex"), "American Express");
}

static void expiry_is_the_end_of_the_month(void **state)
{
    (void)state;
    /* NOW is in January 2027. */
    assert_false(gh_card_expired(1, 2027, NOW));
    assert_true(gh_card_expired(12, 2026, NOW));
    assert_false(gh_card_expired(2, 2027, NOW));
    assert_true(gh_card_expired(12, 2020, NOW));
    /* The last second of January is still fine; the first of February is not. */
    assert_false(gh_card_expired(1, 2027, 1801439999));
    assert_true(gh_card_expired(1, 2027, 1801440000));
}

static void test_provider_checks_card_details(void **state)
{
    (void)state;
    gh_pay_t *p = gh_pay_test_new();
    assert_non_null(p);
    gh_card_t c;
    char msg[256];
    assert_int_equal(p->ops->card_from_details(p, "4242 4242 4242 4242", 12, 2030, "123", NOW,
                                               &c, msg, sizeof(msg)),
                     GH_OK);
    assert_string_equal(c.brand, "visa");
    assert_string_equal(c.last4, "4242");
    assert_int_equal(c.exp_month, 12);
    assert_int_equal(c.exp_year, 2030);
    assert_string_equal(c.ref, "");
    assert_int_equal(p->ops->card_from_details(p, "378282246310005", 1, 2027, "1234", NOW, &c,
                                               msg, sizeof(msg)),
                     GH_OK);
    assert_string_equal(c.brand, "amex");
    static const struct {
        const char *number;
        int month, year;
        const char *cvc, *message;
    } bad[] = {
        {"4242 4242 4242 4241", 12, 2030, "123", "not valid"},
        {"4242", 12, 2030, "123", "12 to 19 digits"},
        {"4242424242424242x", 12, 2030, "123", "12 to 19 digits"},
        {"9999999999999995", 12, 2030, "123", "brands accepted"},
        {"4242424242424242", 13, 2030, "123", "1 to 12"},
        {"4242424242424242", 0, 2030, "123", "1 to 12"},
        {"4242424242424242", 12, 30, "123", "four-digit year"},
        {"4242424242424242", 12, 2026, "123", "expired at the end of 12/2026"},
        {"4242424242424242", 12, 2060, "123", "too far"},
        {"4242424242424242", 12, 2030, "12", "3 digits for Visa"},
        {"4242424242424242", 12, 2030, "1234", "3 digits"},
        {"4242424242424242", 12, 2030, "12a", "3 digits"},
        {"378282246310005", 12, 2030, "123", "4 digits for American Express"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = '\0';
        gh_err_t rc = p->ops->card_from_details(p, bad[i].number, bad[i].month, bad[i].year,
                                                bad[i].cvc, NOW, &c, msg, sizeof(msg));
        if (rc != GH_EINVAL || !strstr(msg, bad[i].message))
            fail_msg("%s %d/%d %s: %s \"%s\"", bad[i].number, bad[i].month, bad[i].year,
                     bad[i].cvc, gh_err_name(rc), msg);
    }
    /* The zero-amount check at setup refuses the cards Stripe refuses at setup, with the
     * network's message; those that only decline when charged are saved. */
    static const struct {
        const char *number, *message;
    } at_setup[] = {{"4000 0000 0000 0002", "Your card was declined."},
                    {"4000000000000069", "Your card has expired."},
                    {"4000-0000-0000-0127", "security code is incorrect"}};
    for (size_t i = 0; i < sizeof(at_setup) / sizeof(at_setup[0]); i++) {
        msg[0] = '\0';
        assert_int_equal(p->ops->card_from_details(p, at_setup[i].number, 12, 2030, "123", NOW,
                                                   &c, msg, sizeof(msg)),
                         GH_EBILLING);
        assert_non_null(strstr(msg, at_setup[i].message));
        assert_non_null(strstr(msg, "not saved"));
    }
    for (const char *const *n = (const char *const[]){"4000 0000 0000 0341", "4000000000009995",
                                                      "4000000000000259", NULL};
         *n; n++)
        assert_int_equal(p->ops->card_from_details(p, *n, 12, 2030, "123", NOW, &c, msg,
                                                   sizeof(msg)),
                         GH_OK);
    p->ops->destroy(p);
}

static void test_provider_outcomes_are_remembered_per_key(void **state)
{
    (void)state;
    gh_pay_t *p = gh_pay_test_new();
    gh_card_t ok = {.brand = "visa", .last4 = "4242", .exp_month = 12, .exp_year = 2030};
    gh_card_t no = {.brand = "visa", .last4 = "9995", .exp_month = 12, .exp_year = 2030};
    gh_card_t slow = {.brand = "visa", .last4 = "0259", .exp_month = 12, .exp_year = 2030};
    gh_pay_charge_t req = {.idempotency_key = "pur_a", .purchase_id = "pur_a", .org_id = "org",
                           .amount_nusd = 500000000, .card = &ok};
    gh_pay_result_t r1, r2;
    assert_int_equal(p->ops->charge(p, &req, &r1), GH_OK);
    assert_int_equal(r1.status, GH_PAY_SUCCEEDED);
    assert_int_equal(strncmp(r1.ref, "test_ch_", 8), 0);
    assert_int_equal(p->ops->charge(p, &req, &r2), GH_OK);
    assert_string_equal(r1.ref, r2.ref); /* the same charge, not a second one */

    req.idempotency_key = req.purchase_id = "pur_b";
    req.card = &no;
    assert_int_equal(p->ops->charge(p, &req, &r1), GH_OK);
    assert_int_equal(r1.status, GH_PAY_DECLINED);
    assert_string_equal(r1.decline_code, "insufficient_funds");
    assert_non_null(strstr(r1.message, "insufficient funds"));

    /* Pending first, settled when asked again; a fresh provider (a restart) answers the
     * same for the same key. */
    req.idempotency_key = req.purchase_id = "pur_c";
    req.card = &slow;
    assert_int_equal(p->ops->charge(p, &req, &r1), GH_OK);
    assert_int_equal(r1.status, GH_PAY_PENDING);
    assert_int_equal(p->ops->charge(p, &req, &r2), GH_OK);
    assert_int_equal(r2.status, GH_PAY_SUCCEEDED);
    gh_pay_t *q = gh_pay_test_new();
    gh_pay_result_t r3;
    req.card = &ok;
    req.idempotency_key = req.purchase_id = "pur_a";
    assert_int_equal(q->ops->charge(q, &req, &r3), GH_OK);
    assert_int_equal(r3.status, GH_PAY_SUCCEEDED);
    p->ops->charge(p, &req, &r1);
    assert_string_equal(r1.ref, r3.ref);
    q->ops->destroy(q);
    p->ops->destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(luhn_accepts_valid_numbers_and_catches_typos),
        cmocka_unit_test(brands_and_normalizing),
        cmocka_unit_test(expiry_is_the_end_of_the_month),
        cmocka_unit_test(test_provider_checks_card_details),
        cmocka_unit_test(test_provider_outcomes_are_remembered_per_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
