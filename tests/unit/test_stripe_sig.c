/* Stripe-Signature verification against fixed vectors. The expected signatures were computed
 * once, independently, with `printf '%s' "<t>.<payload>" | openssl dgst -sha256 -hmac <secret>`
 * and are hard-coded here. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/stripe_sig.h"

#define SECRET "whsec_test_secret"
#define PAYLOAD "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}"
#define T 1700000000
#define SIG "22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31"
#define SIG_OTHER_SECRET "fd1bfea9611123bdabc198314fcbcdd375eb7fc1afebb5148d282d3803151dff"
/* HMAC-SHA256 of "1." keyed with 100 'k's: a key longer than SHA-256's 64-byte block. */
#define SIG_LONG_KEY "f380fa061ddac7555fce09c4f9d5ba3c4d7eb9115eaa097dd2c14988a18ae793"

static int setup(void **state)
{
    (void)state;
    return gh_crypto_init() == GH_OK ? 0 : -1;
}

static gh_err_t verify(const char *header, const char *payload, int64_t now)
{
    return gh_stripe_sig_verify(header, payload, strlen(payload), SECRET, now,
                                GH_STRIPE_SIG_TOLERANCE_S);
}

static void known_vector_verifies(void **state)
{
    (void)state;
    assert_int_equal(verify("t=1700000000,v1=" SIG, PAYLOAD, T), GH_OK);
    /* Element order does not matter, and other schemes are ignored. */
    assert_int_equal(verify("v0=abc,v1=" SIG ",t=1700000000", PAYLOAD, T + 10), GH_OK);
}

static void sign_matches_the_vector(void **state)
{
    (void)state;
    char h[GH_STRIPE_SIG_SIGNED_MAX];
    assert_int_equal(gh_stripe_sig_sign(h, sizeof(h), PAYLOAD, strlen(PAYLOAD), SECRET, T), GH_OK);
    assert_string_equal(h, "t=1700000000,v1=" SIG);
    assert_int_equal(gh_stripe_sig_sign(h, 20, PAYLOAD, strlen(PAYLOAD), SECRET, T), GH_ETOOBIG);
    assert_string_equal(h, "");
    assert_int_equal(gh_stripe_sig_sign(h, sizeof(h), PAYLOAD, strlen(PAYLOAD), SECRET, -1),
                     GH_EINVAL);
    assert_int_equal(gh_stripe_sig_sign(h, sizeof(h), PAYLOAD, strlen(PAYLOAD), SECRET,
                                        INT64_C(1000000000000)),
                     GH_EINVAL);
}

static void long_keys_and_empty_payloads(void **state)
{
    (void)state;
    char key[101];
    memset(key, 'k', 100);
    key[100] = '\0';
    assert_int_equal(gh_stripe_sig_verify("t=1,v1=" SIG_LONG_KEY, "", 0, key, 1, 0), GH_OK);
    char h[GH_STRIPE_SIG_SIGNED_MAX];
    assert_int_equal(gh_stripe_sig_sign(h, sizeof(h), NULL, 0, key, 1), GH_OK);
    assert_string_equal(h, "t=1,v1=" SIG_LONG_KEY);
}

static void any_of_several_v1_matches(void **state)
{
    (void)state;
    /* A secret being rolled: one v1 per secret, ours second or first. */
    assert_int_equal(verify("t=1700000000,v1=" SIG_OTHER_SECRET ",v1=" SIG, PAYLOAD, T), GH_OK);
    assert_int_equal(verify("t=1700000000,v1=" SIG ",v1=" SIG_OTHER_SECRET, PAYLOAD, T), GH_OK);
    assert_int_equal(verify("t=1700000000,v1=" SIG_OTHER_SECRET ",v1=deadbeef", PAYLOAD, T),
                     GH_EAUTH);
}

static void wrong_secret_is_refused(void **state)
{
    (void)state;
    assert_int_equal(gh_stripe_sig_verify("t=1700000000,v1=" SIG, PAYLOAD, strlen(PAYLOAD),
                                          "whsec_other", T, 300),
                     GH_EAUTH);
    assert_int_equal(gh_stripe_sig_verify("t=1700000000,v1=" SIG_OTHER_SECRET, PAYLOAD,
                                          strlen(PAYLOAD), "whsec_other", T, 300),
                     GH_OK);
    /* A v0 alone (no v1) is well formed but carries nothing we accept. */
    assert_int_equal(verify("t=1700000000,v0=" SIG, PAYLOAD, T), GH_EAUTH);
}

static void tampered_payload_or_timestamp_is_refused(void **state)
{
    (void)state;
    char tampered[] = PAYLOAD;
    tampered[10] ^= 1;
    assert_int_equal(verify("t=1700000000,v1=" SIG, tampered, T), GH_EAUTH);
    assert_int_equal(verify("t=1700000000,v1=" SIG, PAYLOAD " ", T), GH_EAUTH);
    /* The payload length counts, not the NUL: a prefix does not verify. */
    assert_int_equal(gh_stripe_sig_verify("t=1700000000,v1=" SIG, PAYLOAD, strlen(PAYLOAD) - 1,
                                          SECRET, T, 300),
                     GH_EAUTH);
    /* The timestamp is signed too. */
    assert_int_equal(verify("t=1700000001,v1=" SIG, PAYLOAD, T), GH_EAUTH);
    /* Upper-case hex or a flipped digit is not our signature. */
    char upper[] = "t=1700000000,v1=" SIG;
    upper[sizeof(upper) - 2] = 'E'; /* last digit '1' -> 'E' */
    assert_int_equal(verify(upper, PAYLOAD, T), GH_EAUTH);
}

static void timestamps_outside_tolerance_are_refused(void **state)
{
    (void)state;
    assert_int_equal(verify("t=1700000000,v1=" SIG, PAYLOAD, T + 300), GH_OK);
    assert_int_equal(verify("t=1700000000,v1=" SIG, PAYLOAD, T - 300), GH_OK);
    assert_int_equal(verify("t=1700000000,v1=" SIG, PAYLOAD, T + 301), GH_EAUTH); /* expired */
    assert_int_equal(verify("t=1700000000,v1=" SIG, PAYLOAD, T - 301), GH_EAUTH); /* future */
    assert_int_equal(gh_stripe_sig_verify("t=1700000000,v1=" SIG, PAYLOAD, strlen(PAYLOAD),
                                          SECRET, T + 86400, 86400),
                     GH_OK);
    assert_int_equal(gh_stripe_sig_verify("t=1700000000,v1=" SIG, PAYLOAD, strlen(PAYLOAD),
                                          SECRET, INT64_MIN, 300),
                     GH_EAUTH);
    assert_int_equal(gh_stripe_sig_verify("t=1700000000,v1=" SIG, PAYLOAD, strlen(PAYLOAD),
                                          SECRET, INT64_MAX, INT64_MAX),
                     GH_OK);
}

static void malformed_headers_are_invalid(void **state)
{
    (void)state;
    assert_int_equal(verify(NULL, PAYLOAD, T), GH_EINVAL);
    assert_int_equal(verify("", PAYLOAD, T), GH_EINVAL);
    assert_int_equal(verify("v1=" SIG, PAYLOAD, T), GH_EINVAL);                    /* no t */
    assert_int_equal(verify("t=,v1=" SIG, PAYLOAD, T), GH_EINVAL);                 /* empty t */
    assert_int_equal(verify("t=17000x0000,v1=" SIG, PAYLOAD, T), GH_EINVAL);       /* letters */
    assert_int_equal(verify("t=-1700000000,v1=" SIG, PAYLOAD, T), GH_EINVAL);      /* sign */
    assert_int_equal(verify("t= 1700000000,v1=" SIG, PAYLOAD, T), GH_EINVAL);      /* space */
    assert_int_equal(verify("t=1700000000000,v1=" SIG, PAYLOAD, T), GH_EINVAL);    /* 13 digits */
    assert_int_equal(verify("t=99999999999999999999999,v1=" SIG, PAYLOAD, T), GH_EINVAL);
    assert_int_equal(verify("t=1700000000,t=1700000000,v1=" SIG, PAYLOAD, T), GH_EINVAL);
    assert_int_equal(verify("t=1700000000,v1" SIG, PAYLOAD, T), GH_EINVAL);        /* no '=' */
    assert_int_equal(verify("t=1700000000,,v1=" SIG, PAYLOAD, T), GH_EINVAL);      /* empty */
    assert_int_equal(verify("t=1700000000,v1=" SIG ",", PAYLOAD, T), GH_EINVAL);   /* trailing */
    assert_int_equal(verify("t=1700000000,=x,v1=" SIG, PAYLOAD, T), GH_EINVAL);    /* no key */
    assert_int_equal(verify(",", PAYLOAD, T), GH_EINVAL);
    assert_int_equal(verify("garbage", PAYLOAD, T), GH_EINVAL);

    /* A huge header: many valid-looking elements past the limit. */
    static char huge[GH_STRIPE_SIG_HEADER_MAX * 2];
    size_t o = (size_t)snprintf(huge, sizeof(huge), "t=1700000000,v1=%s", SIG);
    while (o + 80 < sizeof(huge))
        o += (size_t)snprintf(huge + o, sizeof(huge) - o, ",v1=%s", SIG_OTHER_SECRET);
    assert_int_equal(verify(huge, PAYLOAD, T), GH_EINVAL);
    /* Just under the limit it is an ordinary header. */
    huge[GH_STRIPE_SIG_HEADER_MAX - 100] = '\0';
    char *cut = strrchr(huge, ',');
    *cut = '\0';
    assert_int_equal(verify(huge, PAYLOAD, T), GH_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_vector_verifies),
        cmocka_unit_test(sign_matches_the_vector),
        cmocka_unit_test(long_keys_and_empty_payloads),
        cmocka_unit_test(any_of_several_v1_matches),
        cmocka_unit_test(wrong_secret_is_refused),
        cmocka_unit_test(tampered_payload_or_timestamp_is_refused),
        cmocka_unit_test(timestamps_outside_tolerance_are_refused),
        cmocka_unit_test(malformed_headers_are_invalid),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
