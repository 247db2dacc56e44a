/* OpenID Connect protocol pieces without a network: ID tokens signed here with RSA keys made
 * here, checked by gh_oidc_verify_id_token against a JWKS built from those keys; PKCE;
 * base64url; the authorization URL; and the store's state and identity tables on a real
 * SQLite file. */
#include "unit.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/oidc.h"
#include "lib/crypto.h"
#include "store/identity.h"
#include "store/store.h"

#define ISSUER "https://accounts.example.com"
#define CLIENT "client-123.apps.example.com"
#define NONCE "n-0S6_WzA2Mj"
#define NOW ((int64_t)1800000000)

static EVP_PKEY *key_a, *key_b, *key_weak;
static char jwks[8192];      /* key_a as "k1" */
static char jwks_two[16384]; /* key_a as "k1" and key_b as "k2" */
static char jwks_weak[8192]; /* key_weak (1024 bits) as "k1" */

/* ---- helpers ---- */

static void b64url(const unsigned char *bin, size_t len, char *out, size_t size)
{
    assert_true(sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING) <= size);
    sodium_bin2base64(out, size, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void bn_param_b64(EVP_PKEY *key, const char *name, char *out, size_t size)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(key, name, &bn), 1);
    unsigned char bin[1024];
    int n = BN_bn2bin(bn, bin);
    assert_true(n > 0);
    b64url(bin, (size_t)n, out, size);
    BN_free(bn);
}

static void jwk(EVP_PKEY *key, const char *kid, char *out, size_t size)
{
    char n[1400], e[16];
    bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, n, sizeof(n));
    bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, e, sizeof(e));
    snprintf(out, size,
             "{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"%s\","
             "\"n\":\"%s\",\"e\":\"%s\"}",
             kid, n, e);
}

/* "header.payload.signature" with the header and payload given as JSON text. `key` signs
 * with RS256; NULL leaves the signature empty (alg none). Returns a malloc'd string. */
static char *make_jwt(const char *header, const char *payload, EVP_PKEY *key)
{
    size_t cap = 3 * (strlen(header) + strlen(payload)) + 2048;
    char *out = malloc(cap);
    assert_non_null(out);
    char *p = out;
    b64url((const unsigned char *)header, strlen(header), p, cap);
    p += strlen(p);
    *p++ = '.';
    b64url((const unsigned char *)payload, strlen(payload), p, cap - (size_t)(p - out));
    p += strlen(p);
    size_t signed_len = (size_t)(p - out);
    *p++ = '.';
    *p = '\0';
    if (key) {
        unsigned char sig[1024];
        size_t sig_len = sizeof(sig);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
        assert_int_equal(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)out, signed_len), 1);
        EVP_MD_CTX_free(md);
        b64url(sig, sig_len, p, cap - (size_t)(p - out));
    }
    return out;
}

/* A valid set of claims; tests change or delete members before signing. */
static json_t *claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:b}", "iss", ISSUER, "aud", CLIENT,
                     "sub", "1098765432101234567890", "exp", (json_int_t)(NOW + 3600), "iat",
                     (json_int_t)NOW, "nonce", NONCE, "email", "Ada.Lovelace@Example.com", "name",
                     "Ada Lovelace", "email_verified", 1);
}

/* Signs `c` (taking the reference) with `key` under `header` and verifies it against
 * `keys`. Returns the reason; `out` receives the claims. */
static gh_oidc_reason_t verify_with(const char *header, json_t *c, EVP_PKEY *key, const char *keys,
                                    gh_oidc_claims_t *out)
{
    char *payload = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    char *token = make_jwt(header, payload, key);
    gh_oidc_expect_t x = {ISSUER, NULL, CLIENT, NONCE, NOW};
    gh_oidc_reason_t reason = GH_OIDC_REASON_COUNT;
    gh_err_t rc = gh_oidc_verify_id_token(token, keys, strlen(keys), &x, out, &reason);
    assert_int_equal(rc, reason == GH_OIDC_OK ? GH_OK : GH_EAUTH);
    free(token);
    free(payload);
    return reason;
}

static const char rs256_k1[] = "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}";

static gh_oidc_reason_t verify(json_t *c)
{
    gh_oidc_claims_t out;
    return verify_with(rs256_k1, c, key_a, jwks, &out);
}

static int setup(void **state)
{
    (void)state;
    if (gh_crypto_init())
        return -1;
    key_a = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    key_b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    key_weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    if (!key_a || !key_b || !key_weak)
        return -1;
    char a[2048], b[2048], w[2048];
    jwk(key_a, "k1", a, sizeof(a));
    jwk(key_b, "k2", b, sizeof(b));
    jwk(key_weak, "k1", w, sizeof(w));
    snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", a);
    snprintf(jwks_two, sizeof(jwks_two), "{\"keys\":[%s,%s]}", a, b);
    snprintf(jwks_weak, sizeof(jwks_weak), "{\"keys\":[%s]}", w);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    EVP_PKEY_free(key_weak);
    return 0;
}

/* ---- ID tokens ---- */

static void valid_token_passes(void **state)
{
    (void)state;
    gh_oidc_claims_t out;
    assert_int_equal(verify_with(rs256_k1, claims(), key_a, jwks, &out), GH_OIDC_OK);
    assert_string_equal(out.subject, "1098765432101234567890");
    assert_string_equal(out.email, "ada.lovelace@example.com");

    /* The right key among several; "true" as a string; aud as an array with azp. */
    json_t *c = claims();
    json_object_set_new(c, "email_verified", json_string("true"));
    json_object_set_new(c, "aud", json_pack("[s,s]", "other-client", CLIENT));
    json_object_set_new(c, "azp", json_string(CLIENT));
    assert_int_equal(verify_with("{\"alg\":\"RS256\",\"kid\":\"k2\"}", c, key_b, jwks_two, &out),
                     GH_OIDC_OK);

    /* No kid: fine when the JWKS holds one key, ambiguous when it holds two. */
    assert_int_equal(verify_with("{\"alg\":\"RS256\"}", claims(), key_a, jwks, &out), GH_OIDC_OK);
    assert_int_equal(verify_with("{\"alg\":\"RS256\"}", claims(), key_a, jwks_two, &out),
                     GH_OIDC_KEY_UNKNOWN);
    /* An expiry just past, within the leeway, and an iat a little ahead, are clock skew. */
    c = claims();
    json_object_set_new(c, "exp", json_integer(NOW - GH_OIDC_LEEWAY_S + 5));
    json_object_set_new(c, "iat", json_integer(NOW + 30));
    assert_int_equal(verify(c), GH_OIDC_OK);
}

static void tampered_token_fails(void **state)
{
    (void)state;
    json_t *c = claims();
    char *payload = json_dumps(c, JSON_COMPACT);
    char *good = make_jwt(rs256_k1, payload, key_a);
    json_object_set_new(c, "email", json_string("mallory@example.com"));
    char *evil_payload = json_dumps(c, JSON_COMPACT);
    char *evil = make_jwt(rs256_k1, evil_payload, key_a);
    /* The forged token: evil payload with the good signature. */
    char forged[8192];
    const char *good_sig = strrchr(good, '.');
    size_t evil_signed = (size_t)(strrchr(evil, '.') - evil);
    snprintf(forged, sizeof(forged), "%.*s%s", (int)evil_signed, evil, good_sig);

    gh_oidc_expect_t x = {ISSUER, NULL, CLIENT, NONCE, NOW};
    gh_oidc_claims_t out;
    gh_oidc_reason_t reason;
    assert_int_equal(gh_oidc_verify_id_token(forged, jwks, strlen(jwks), &x, &out, &reason),
                     GH_EAUTH);
    assert_int_equal(reason, GH_OIDC_SIGNATURE);
    assert_string_equal(out.email, "");

    /* One flipped bit in the signature. */
    char flipped[8192];
    snprintf(flipped, sizeof(flipped), "%s", good);
    char *last = flipped + strlen(flipped) - 3;
    *last = *last == 'A' ? 'B' : 'A';
    assert_int_equal(gh_oidc_verify_id_token(flipped, jwks, strlen(jwks), &x, &out, &reason),
                     GH_EAUTH);
    assert_int_equal(reason, GH_OIDC_SIGNATURE);

    /* The untouched token still passes. */
    assert_int_equal(gh_oidc_verify_id_token(good, jwks, strlen(jwks), &x, &out, &reason), GH_OK);
    json_decref(c);
    free(payload);
    free(good);
    free(evil_payload);
    free(evil);
}

static void wrong_key_fails(void **state)
{
    (void)state;
    gh_oidc_claims_t out;
    /* Signed with key B but naming key A's kid. */
    assert_int_equal(verify_with(rs256_k1, claims(), key_b, jwks, &out), GH_OIDC_SIGNATURE);
    /* A kid the JWKS does not have: the caller refetches the keys once. */
    assert_int_equal(verify_with("{\"alg\":\"RS256\",\"kid\":\"k9\"}", claims(), key_a, jwks, &out),
                     GH_OIDC_KEY_UNKNOWN);
    /* A 1024-bit key is refused even when the signature is right. */
    assert_int_equal(verify_with(rs256_k1, claims(), key_weak, jwks_weak, &out),
                     GH_OIDC_KEY_INVALID);
    /* A JWKS that is not JSON, or has no keys. */
    assert_int_equal(verify_with(rs256_k1, claims(), key_a, "not json", &out), GH_OIDC_KEY_UNKNOWN);
    assert_int_equal(verify_with(rs256_k1, claims(), key_a, "{\"keys\":[]}", &out),
                     GH_OIDC_KEY_UNKNOWN);
    /* The right kid but another key type, or a key meant for encryption. */
    assert_int_equal(verify_with(rs256_k1, claims(), key_a,
                                 "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"k1\",\"crv\":\"P-256\"}]}",
                                 &out),
                     GH_OIDC_KEY_UNKNOWN);
    char enc[8192];
    snprintf(enc, sizeof(enc), "%s", jwks);
    char *use = strstr(enc, "\"use\":\"sig\"");
    assert_non_null(use);
    memcpy(use, "\"use\":\"enc\"", 11);
    assert_int_equal(verify_with(rs256_k1, claims(), key_a, enc, &out), GH_OIDC_KEY_UNKNOWN);
}

static void alg_none_and_hs256_fail(void **state)
{
    (void)state;
    gh_oidc_claims_t out;
    /* alg none with an empty signature. */
    assert_int_equal(verify_with("{\"alg\":\"none\",\"kid\":\"k1\"}", claims(), NULL, jwks, &out),
                     GH_OIDC_ALG);
    /* alg none signed anyway, and the lower-case spelling. */
    assert_int_equal(verify_with("{\"alg\":\"none\",\"kid\":\"k1\"}", claims(), key_a, jwks, &out),
                     GH_OIDC_ALG);
    assert_int_equal(verify_with("{\"alg\":\"rs256\",\"kid\":\"k1\"}", claims(), key_a, jwks, &out),
                     GH_OIDC_ALG);
    assert_int_equal(verify_with("{\"kid\":\"k1\"}", claims(), key_a, jwks, &out), GH_OIDC_ALG);
    gh_oidc_expect_t x0 = {ISSUER, NULL, CLIENT, NONCE, NOW};
    gh_oidc_reason_t r0;
    assert_int_equal(gh_oidc_verify_id_token("e30.e30.", jwks, strlen(jwks), &x0, &out, &r0),
                     GH_EAUTH); /* {}.{}. : no alg, no signature */
    assert_int_equal(r0, GH_OIDC_ALG);

    /* HS256 with the public key's JWK text as the HMAC secret (the key-confusion attack). */
    const char *header = "{\"alg\":\"HS256\",\"kid\":\"k1\"}";
    json_t *c = claims();
    char *payload = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    char *token = make_jwt(header, payload, NULL);
    unsigned char mac[32];
    unsigned int mac_len = sizeof(mac);
    size_t signed_len = strlen(token) - 1; /* without the trailing '.' */
    assert_non_null(HMAC(EVP_sha256(), jwks, (int)strlen(jwks), (unsigned char *)token, signed_len,
                         mac, &mac_len));
    char sig[64], full[8192];
    b64url(mac, mac_len, sig, sizeof(sig));
    snprintf(full, sizeof(full), "%s%s", token, sig);
    gh_oidc_expect_t x = {ISSUER, NULL, CLIENT, NONCE, NOW};
    gh_oidc_reason_t reason;
    assert_int_equal(gh_oidc_verify_id_token(full, jwks, strlen(jwks), &x, &out, &reason),
                     GH_EAUTH);
    assert_int_equal(reason, GH_OIDC_ALG);
    free(token);
    free(payload);
}

static void wrong_issuer_and_audience_fail(void **state)
{
    (void)state;
    json_t *c = claims();
    json_object_set_new(c, "iss", json_string("https://evil.example.com"));
    assert_int_equal(verify(c), GH_OIDC_ISSUER);
    c = claims();
    json_object_set_new(c, "iss", json_string(ISSUER "/")); /* exact, not "close enough" */
    assert_int_equal(verify(c), GH_OIDC_ISSUER);
    c = claims();
    json_object_del(c, "iss");
    assert_int_equal(verify(c), GH_OIDC_ISSUER);

    /* An alias is accepted only when the caller names one (Google's "accounts.google.com"). */
    gh_oidc_claims_t out;
    c = claims();
    json_object_set_new(c, "iss", json_string("accounts.example.com"));
    assert_int_equal(verify(c), GH_OIDC_ISSUER);
    c = claims();
    json_object_set_new(c, "iss", json_string("accounts.example.com"));
    char *payload = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    char *token = make_jwt(rs256_k1, payload, key_a);
    gh_oidc_expect_t x = {ISSUER, "accounts.example.com", CLIENT, NONCE, NOW};
    gh_oidc_reason_t reason;
    assert_int_equal(gh_oidc_verify_id_token(token, jwks, strlen(jwks), &x, &out, &reason), GH_OK);
    free(token);
    free(payload);

    c = claims();
    json_object_set_new(c, "aud", json_string("someone-else"));
    assert_int_equal(verify(c), GH_OIDC_AUDIENCE);
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "a", "b"));
    assert_int_equal(verify(c), GH_OIDC_AUDIENCE);
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s,i]", CLIENT, 5));
    assert_int_equal(verify(c), GH_OIDC_AUDIENCE);
    c = claims();
    json_object_del(c, "aud");
    assert_int_equal(verify(c), GH_OIDC_AUDIENCE);

    /* Several audiences: azp must be there and be us. */
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, "other"));
    assert_int_equal(verify(c), GH_OIDC_AZP);
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, "other"));
    json_object_set_new(c, "azp", json_string("other"));
    assert_int_equal(verify(c), GH_OIDC_AZP);
    /* One audience in an array is the same as the string. */
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s]", CLIENT));
    assert_int_equal(verify(c), GH_OIDC_OK);
}

static void expired_and_future_tokens_fail(void **state)
{
    (void)state;
    json_t *c = claims();
    json_object_set_new(c, "exp", json_integer(NOW - GH_OIDC_LEEWAY_S));
    assert_int_equal(verify(c), GH_OIDC_EXPIRED);
    c = claims();
    json_object_set_new(c, "exp", json_integer(NOW - 86400));
    assert_int_equal(verify(c), GH_OIDC_EXPIRED);
    c = claims();
    json_object_del(c, "exp");
    assert_int_equal(verify(c), GH_OIDC_EXPIRED);
    c = claims();
    json_object_set_new(c, "exp", json_string("tomorrow"));
    assert_int_equal(verify(c), GH_OIDC_EXPIRED);

    c = claims();
    json_object_set_new(c, "iat", json_integer(NOW + 86400));
    assert_int_equal(verify(c), GH_OIDC_NOT_YET_VALID);
    c = claims();
    json_object_del(c, "iat");
    assert_int_equal(verify(c), GH_OIDC_NOT_YET_VALID);
    c = claims();
    json_object_set_new(c, "nbf", json_integer(NOW + 3600));
    assert_int_equal(verify(c), GH_OIDC_NOT_YET_VALID);
}

static void wrong_nonce_fails(void **state)
{
    (void)state;
    json_t *c = claims();
    json_object_set_new(c, "nonce", json_string("another-nonce"));
    assert_int_equal(verify(c), GH_OIDC_NONCE);
    c = claims();
    json_object_del(c, "nonce");
    assert_int_equal(verify(c), GH_OIDC_NONCE);
    c = claims();
    json_object_set_new(c, "nonce", json_string(NONCE "x"));
    assert_int_equal(verify(c), GH_OIDC_NONCE);
}

static void unverified_or_missing_email_fails(void **state)
{
    (void)state;
    json_t *c = claims();
    json_object_set_new(c, "email_verified", json_false());
    assert_int_equal(verify(c), GH_OIDC_EMAIL_UNVERIFIED);
    c = claims();
    json_object_del(c, "email_verified");
    assert_int_equal(verify(c), GH_OIDC_EMAIL_UNVERIFIED);
    c = claims();
    json_object_set_new(c, "email_verified", json_string("false"));
    assert_int_equal(verify(c), GH_OIDC_EMAIL_UNVERIFIED);
    c = claims();
    json_object_set_new(c, "email_verified", json_integer(1));
    assert_int_equal(verify(c), GH_OIDC_EMAIL_UNVERIFIED);

    c = claims();
    json_object_del(c, "email");
    assert_int_equal(verify(c), GH_OIDC_EMAIL);
    c = claims();
    json_object_set_new(c, "email", json_string("not an address"));
    assert_int_equal(verify(c), GH_OIDC_EMAIL);

    c = claims();
    json_object_del(c, "sub");
    assert_int_equal(verify(c), GH_OIDC_SUBJECT);
    c = claims();
    json_object_set_new(c, "sub", json_string(""));
    assert_int_equal(verify(c), GH_OIDC_SUBJECT);
    char long_sub[300];
    memset(long_sub, 'x', sizeof(long_sub) - 1);
    long_sub[sizeof(long_sub) - 1] = '\0';
    c = claims();
    json_object_set_new(c, "sub", json_string(long_sub));
    assert_int_equal(verify(c), GH_OIDC_SUBJECT);
}

static void malformed_tokens_fail(void **state)
{
    (void)state;
    gh_oidc_expect_t x = {ISSUER, NULL, CLIENT, NONCE, NOW};
    gh_oidc_claims_t out;
    gh_oidc_reason_t reason;
    const char *bad[] = {
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "eyJhbGciOiJSUzI1NiJ9.!!!!.AAAA", /* payload not base64url */
        "bm90IGpzb24.e30.AAAA",           /* header "not json" */
        "WzFd.e30.AAAA",                  /* header [1]: not an object */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gh_oidc_verify_id_token(bad[i], jwks, strlen(jwks), &x, &out, &reason),
                         GH_EAUTH);
        assert_int_equal(reason, GH_OIDC_MALFORMED);
    }
    assert_int_equal(gh_oidc_verify_id_token(NULL, jwks, strlen(jwks), &x, &out, &reason),
                     GH_EAUTH);
    assert_int_equal(reason, GH_OIDC_MALFORMED);

    /* Duplicate keys, crit and a non-string kid in the header. */
    assert_int_equal(
        verify_with("{\"alg\":\"RS256\",\"alg\":\"none\"}", claims(), key_a, jwks, &out),
        GH_OIDC_MALFORMED);
    assert_int_equal(verify_with("{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", claims(),
                                 key_a, jwks, &out),
                     GH_OIDC_MALFORMED);
    assert_int_equal(verify_with("{\"alg\":\"RS256\",\"kid\":1}", claims(), key_a, jwks, &out),
                     GH_OIDC_MALFORMED);

    /* Longer than GH_OIDC_TOKEN_MAX. */
    char *huge = malloc(GH_OIDC_TOKEN_MAX + 10);
    assert_non_null(huge);
    memset(huge, 'A', GH_OIDC_TOKEN_MAX + 9);
    huge[10] = '.';
    huge[20] = '.';
    huge[GH_OIDC_TOKEN_MAX + 9] = '\0';
    assert_int_equal(gh_oidc_verify_id_token(huge, jwks, strlen(jwks), &x, &out, &reason),
                     GH_EAUTH);
    assert_int_equal(reason, GH_OIDC_MALFORMED);
    free(huge);
}

/* ---- PKCE, base64url, the authorization URL ---- */

static void pkce_matches_rfc7636(void **state)
{
    (void)state;
    char challenge[GH_OIDC_CHALLENGE_MAX];
    gh_oidc_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", challenge);
    assert_string_equal(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

static void base64url_edge_cases(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n = 99;
    assert_int_equal(gh_oidc_b64url_decode("", 0, out, sizeof(out), &n), GH_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gh_oidc_b64url_decode("QQ", 2, out, sizeof(out), &n), GH_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(out, "A", 1);
    assert_int_equal(gh_oidc_b64url_decode("QUI", 3, out, sizeof(out), &n), GH_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "AB", 2);
    assert_int_equal(gh_oidc_b64url_decode("QUJD", 4, out, sizeof(out), &n), GH_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "ABC", 3);
    /* The URL-safe alphabet: "-_" where standard base64 has "+/". */
    assert_int_equal(gh_oidc_b64url_decode("-_8", 3, out, sizeof(out), &n), GH_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(gh_oidc_b64url_decode("+/8", 3, out, sizeof(out), &n), GH_EINVAL);
    /* Padding, a dangling character, non-zero unused bits, spaces, NUL. */
    assert_int_equal(gh_oidc_b64url_decode("QQ==", 4, out, sizeof(out), &n), GH_EINVAL);
    assert_int_equal(gh_oidc_b64url_decode("QUJDR", 5, out, sizeof(out), &n), GH_EINVAL);
    assert_int_equal(gh_oidc_b64url_decode("QR", 2, out, sizeof(out), &n), GH_EINVAL);
    assert_int_equal(gh_oidc_b64url_decode("QUJ", 3, out, sizeof(out), &n), GH_EINVAL);
    assert_int_equal(gh_oidc_b64url_decode("QU JD", 5, out, sizeof(out), &n), GH_EINVAL);
    assert_int_equal(gh_oidc_b64url_decode("QU\0D", 4, out, sizeof(out), &n), GH_EINVAL);
    /* Too long for the buffer: refused, not truncated. */
    assert_int_equal(gh_oidc_b64url_decode("QUJDREVG", 8, out, 5, &n), GH_ETOOBIG);
    assert_int_equal(gh_oidc_b64url_decode("QUJDREVG", 8, out, 6, &n), GH_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "ABCDEF", 6);
}

static void authorize_url_is_encoded(void **state)
{
    (void)state;
    char url[1024];
    gh_oidc_auth_request_t r = {"https://accounts.example.com/o/oauth2/v2/auth",
                                CLIENT,
                                "https://console.example.com/auth/oidc/callback",
                                "openid email profile",
                                "STATE123",
                                "NONCE456",
                                "CHAL-_789"};
    assert_int_equal(gh_oidc_authorize_url(&r, url, sizeof(url)), GH_OK);
    assert_string_equal(url,
                        "https://accounts.example.com/o/oauth2/v2/auth?response_type=code"
                        "&client_id=client-123.apps.example.com"
                        "&redirect_uri=https%3A%2F%2Fconsole.example.com%2Fauth%2Foidc%2Fcallback"
                        "&scope=openid%20email%20profile&state=STATE123&nonce=NONCE456"
                        "&code_challenge=CHAL-_789&code_challenge_method=S256");
    /* An endpoint with a query of its own keeps it. */
    r.endpoint = "https://idp.example.com/authorize?tenant=a&b=c";
    r.client_id = "a&b=c d";
    assert_int_equal(gh_oidc_authorize_url(&r, url, sizeof(url)), GH_OK);
    assert_non_null(strstr(url, "?tenant=a&b=c&response_type=code&client_id=a%26b%3Dc%20d&"));
    /* Too small a buffer is an error, never a truncated URL. */
    assert_int_equal(gh_oidc_authorize_url(&r, url, 40), GH_ETOOBIG);
    assert_string_equal(url, "");
}

static void reasons_have_text(void **state)
{
    (void)state;
    for (int r = 0; r < GH_OIDC_REASON_COUNT; r++)
        assert_true(strlen(gh_oidc_reason_str((gh_oidc_reason_t)r)) > 5);
    assert_string_equal(gh_oidc_reason_str(GH_OIDC_REASON_COUNT), "unknown reason");
}

/* ---- the store ---- */

typedef struct {
    char dir[64];
    gh_store_t *store;
    gh_db_t *db;
} store_world_t;

static int store_setup(void **state)
{
    store_world_t *w = calloc(1, sizeof(*w));
    char path[128], err[256];
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-oidc-XXXXXX");
    if (!mkdtemp(w->dir))
        return -1;
    snprintf(path, sizeof(path), "%s/gatehouse.db", w->dir);
    if (gh_store_open(&w->store, path, err, sizeof(err)) || !(w->db = gh_store_db(w->store)))
        return -1;
    *state = w;
    return 0;
}

static int store_teardown(void **state)
{
    store_world_t *w = *state;
    gh_store_close(w->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    int rc = system(cmd);
    free(w);
    return rc == 0 ? 0 : -1;
}

static void states_are_single_use(void **state)
{
    store_world_t *w = *state;
    gh_oidc_state_t st;
    assert_int_equal(gh_store_oidc_state_insert(w->db, "h1", "nonce1", "verifier1", NOW, NOW + 600),
                     GH_OK);
    assert_int_equal(gh_store_oidc_state_insert(w->db, "h1", "x", "y", NOW, NOW + 600),
                     GH_ECONFLICT);
    assert_int_equal(gh_store_oidc_state_consume(w->db, "nope", NOW, &st), GH_ENOTFOUND);
    assert_int_equal(gh_store_oidc_state_consume(w->db, "h1", NOW + 10, &st), GH_OK);
    assert_string_equal(st.nonce, "nonce1");
    assert_string_equal(st.code_verifier, "verifier1");
    assert_int_equal(gh_store_oidc_state_consume(w->db, "h1", NOW + 11, &st), GH_ECONFLICT);

    /* Expired: refused and left unused; purged once past expiry. */
    assert_int_equal(gh_store_oidc_state_insert(w->db, "h2", "n", "v", NOW, NOW + 600), GH_OK);
    assert_int_equal(gh_store_oidc_state_consume(w->db, "h2", NOW + 600, &st), GH_EEXPIRED);
    assert_int_equal(gh_store_oidc_state_insert(w->db, "h3", "n", "v", NOW, NOW + 1200), GH_OK);
    int deleted = -1;
    assert_int_equal(gh_store_oidc_state_purge(w->db, NOW + 600, &deleted), GH_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(gh_store_oidc_state_consume(w->db, "h2", NOW + 601, &st), GH_ENOTFOUND);
    assert_int_equal(gh_store_oidc_state_consume(w->db, "h3", NOW + 601, &st), GH_OK);
}

static void count_identity(void *ctx, const gh_identity_t *identity)
{
    (void)identity;
    (*(int *)ctx)++;
}

static void identities_link_accounts(void **state)
{
    store_world_t *w = *state;
    gh_account_t a = {.created_at = NOW};
    snprintf(a.id, sizeof(a.id), "user_01AAAAAAAAAAAAAAAAAAAAAA");
    snprintf(a.email, sizeof(a.email), "ada@example.com");
    assert_int_equal(gh_store_account_insert(w->db, &a), GH_OK);

    gh_identity_t id = {.created_at = NOW, .last_used_at = NOW}, got;
    snprintf(id.issuer, sizeof(id.issuer), ISSUER);
    snprintf(id.subject, sizeof(id.subject), "sub-1");
    snprintf(id.account_id, sizeof(id.account_id), "%s", a.id);
    snprintf(id.email, sizeof(id.email), "ada@example.com");
    assert_int_equal(gh_store_identity_get(w->db, ISSUER, "sub-1", &got), GH_ENOTFOUND);
    assert_int_equal(gh_store_identity_insert(w->db, &id), GH_OK);
    assert_int_equal(gh_store_identity_insert(w->db, &id), GH_ECONFLICT);
    assert_int_equal(gh_store_identity_get(w->db, ISSUER, "sub-1", &got), GH_OK);
    assert_string_equal(got.account_id, a.id);
    /* The same subject at another issuer is another person. */
    assert_int_equal(gh_store_identity_get(w->db, "https://other.example.com", "sub-1", &got),
                     GH_ENOTFOUND);

    assert_int_equal(
        gh_store_identity_touch(w->db, ISSUER, "sub-1", "ada@new.example.com", NOW + 5), GH_OK);
    assert_int_equal(gh_store_identity_get(w->db, ISSUER, "sub-1", &got), GH_OK);
    assert_string_equal(got.email, "ada@new.example.com");
    assert_int_equal(got.last_used_at, NOW + 5);
    assert_int_equal(got.created_at, NOW);
    assert_int_equal(gh_store_identity_touch(w->db, ISSUER, "sub-2", "x@example.com", NOW),
                     GH_ENOTFOUND);

    /* An identity needs a real account. */
    snprintf(id.subject, sizeof(id.subject), "sub-3");
    snprintf(id.account_id, sizeof(id.account_id), "user_01BBBBBBBBBBBBBBBBBBBBBB");
    assert_int_equal(gh_store_identity_insert(w->db, &id), GH_ECONFLICT);

    int n = 0;
    assert_int_equal(gh_store_identities(w->db, a.id, count_identity, &n), GH_OK);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tokens[] = {
        cmocka_unit_test(valid_token_passes),
        cmocka_unit_test(tampered_token_fails),
        cmocka_unit_test(wrong_key_fails),
        cmocka_unit_test(alg_none_and_hs256_fail),
        cmocka_unit_test(wrong_issuer_and_audience_fail),
        cmocka_unit_test(expired_and_future_tokens_fail),
        cmocka_unit_test(wrong_nonce_fails),
        cmocka_unit_test(unverified_or_missing_email_fails),
        cmocka_unit_test(malformed_tokens_fail),
        cmocka_unit_test(pkce_matches_rfc7636),
        cmocka_unit_test(base64url_edge_cases),
        cmocka_unit_test(authorize_url_is_encoded),
        cmocka_unit_test(reasons_have_text),
    };
    const struct CMUnitTest store[] = {
        cmocka_unit_test_setup_teardown(states_are_single_use, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(identities_link_accounts, store_setup, store_teardown),
    };
    int failed = cmocka_run_group_tests_name("oidc", tokens, setup, teardown);
    failed += cmocka_run_group_tests_name("oidc store", store, NULL, NULL);
    return failed;
}
