/* OpenID Connect sign-in: protocol pieces, the provider cache, and the flow. See oidc.h. */
#include "core/oidc.h"

#include <assert.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/curl_body.h"
#include "lib/log.h"
#include "lib/text.h"
#include "store/identity.h"
#include "store/store.h"

#define CODE_MAX 4096                /* longest authorization code accepted from a callback */
#define CLIENT_SECRET_MAX 1024       /* longest client secret sent */
#define FORM_MAX ((size_t)24 * 1024) /* the token request body */
#define RSA_BITS_MIN 2048
#define RSA_BITS_MAX 16384

static_assert(sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES,
                                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                  GH_OIDC_CHALLENGE_MAX,
              "a S256 challenge is 43 characters");
static_assert(GH_OIDC_VERIFIER_CHARS >= 43 && GH_OIDC_VERIFIER_CHARS <= 128,
              "RFC 7636 wants 43 to 128 characters");
static_assert(GH_OIDC_VERIFIER_CHARS < GH_OIDC_VERIFIER_MAX, "the store holds a verifier");
static_assert(FORM_MAX > 3 * (CODE_MAX + CLIENT_SECRET_MAX + 2 * GH_CONFIG_STR) + 512,
              "every token request fits");

static const char *const reason_text[] = {
#define GH_OIDC_REASON_TEXT(name, text) text,
    GH_OIDC_REASON_MAP(GH_OIDC_REASON_TEXT)
#undef GH_OIDC_REASON_TEXT
};

const char *gh_oidc_reason_str(gh_oidc_reason_t reason)
{
    return (unsigned)reason < GH_OIDC_REASON_COUNT ? reason_text[reason] : "unknown reason";
}

/* ---- a bounded string builder ---- */

typedef struct {
    char *p;
    size_t len, size;
    bool overflow;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (b->overflow || n >= b->size - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* Appends `sep`, `name`, '=' and `value` percent-encoded. False when encoding fails. */
static bool sb_param(sbuf_t *b, const char *sep, const char *name, const char *value)
{
    char *enc = curl_easy_escape(NULL, value, 0);
    if (!enc)
        return false;
    sb_add(b, sep);
    sb_add(b, name);
    sb_add(b, "=");
    sb_add(b, enc);
    curl_free(enc);
    return true;
}

/* ---- protocol pieces ---- */

gh_err_t gh_oidc_b64url_decode(const char *in, size_t in_len, unsigned char *out, size_t out_size,
                               size_t *out_len)
{
    *out_len = 0;
    if (in_len == 0)
        return GH_OK;
    if (in_len % 4 == 1)
        return GH_EINVAL;
    for (size_t i = 0; i < in_len; i++) {
        char c = in[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return GH_EINVAL;
    }
    size_t need = in_len / 4 * 3 + (in_len % 4 ? in_len % 4 - 1 : 0);
    if (need > out_size)
        return GH_ETOOBIG;
    /* libsodium refuses non-zero unused bits, so every byte string has one encoding. */
    if (sodium_base642bin(out, out_size, in, in_len, NULL, out_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return GH_EINVAL;
    assert(*out_len == need);
    return GH_OK;
}

void gh_oidc_pkce_challenge(const char *verifier, char out[GH_OIDC_CHALLENGE_MAX])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)verifier, strlen(verifier));
    sodium_bin2base64(out, GH_OIDC_CHALLENGE_MAX, digest, sizeof(digest),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

gh_err_t gh_oidc_authorize_url(const gh_oidc_auth_request_t *r, char *out, size_t out_size)
{
    assert(out_size > 0);
    sbuf_t b = {out, 0, out_size, false};
    out[0] = '\0';
    sb_add(&b, r->endpoint);
    /* The endpoint may carry a query of its own (RFC 6749 §3.1 allows it): keep it. */
    const char *first = "?";
    size_t elen = strlen(r->endpoint);
    if (strchr(r->endpoint, '?'))
        first = r->endpoint[elen - 1] == '?' || r->endpoint[elen - 1] == '&' ? "" : "&";
    if (!sb_param(&b, first, "response_type", "code") ||
        !sb_param(&b, "&", "client_id", r->client_id) ||
        !sb_param(&b, "&", "redirect_uri", r->redirect_uri) ||
        !sb_param(&b, "&", "scope", r->scope) || !sb_param(&b, "&", "state", r->state) ||
        !sb_param(&b, "&", "nonce", r->nonce) ||
        !sb_param(&b, "&", "code_challenge", r->code_challenge) ||
        !sb_param(&b, "&", "code_challenge_method", "S256")) {
        out[0] = '\0';
        return GH_ENOMEM;
    }
    if (b.overflow) {
        out[0] = '\0';
        return GH_ETOOBIG;
    }
    return GH_OK;
}

/* Decodes one base64url JWT segment into `scratch` and parses it as a JSON object. NULL when
 * it is not one. The caller owns the result. */
static json_t *segment_json(const char *seg, size_t len, unsigned char *scratch, size_t size)
{
    size_t n;
    if (gh_oidc_b64url_decode(seg, len, scratch, size, &n))
        return NULL;
    json_t *j = json_loadb((const char *)scratch, n, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The RSA public key with modulus and exponent given as base64url. GH_EINVAL when they are
 * not a usable key (bad encoding, modulus outside RSA_BITS_MIN..RSA_BITS_MAX, even or tiny
 * exponent). */
static gh_err_t rsa_public_key(const char *n64, const char *e64, EVP_PKEY **out)
{
    unsigned char n[RSA_BITS_MAX / 8 + 1], e[16];
    size_t nlen, elen;
    gh_err_t rc = GH_EINVAL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    *out = NULL;
    if (gh_oidc_b64url_decode(n64, strlen(n64), n, sizeof(n), &nlen) ||
        gh_oidc_b64url_decode(e64, strlen(e64), e, sizeof(e), &elen) || !nlen || !elen)
        return GH_EINVAL;
    if (nlen > INT32_MAX || elen > INT32_MAX)
        return GH_EINVAL;
    bn_n = BN_bin2bn(n, (int)nlen, NULL);
    bn_e = BN_bin2bn(e, (int)elen, NULL);
    if (!bn_n || !bn_e)
        goto out_free;
    int bits = BN_num_bits(bn_n);
    if (bits < RSA_BITS_MIN || bits > RSA_BITS_MAX || !BN_is_odd(bn_e) || BN_num_bits(bn_e) < 2)
        goto out_free;
    if (!(bld = OSSL_PARAM_BLD_new()) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) ||
        !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(*out);
        *out = NULL;
        goto out_free;
    }
    rc = GH_OK;
out_free:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return rc;
}

static bool str_member_is(json_t *obj, const char *key, const char *want)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) && !strcmp(json_string_value(v), want);
}

/* Finds the signing key for `kid` (NULL: the header named none) in the JWKS document. Only
 * RSA keys meant for signatures with RS256 (or not saying) are candidates. */
static gh_oidc_reason_t jwks_key(const char *jwks, size_t jwks_len, const char *kid, EVP_PKEY **out)
{
    *out = NULL;
    json_t *doc = jwks ? json_loadb(jwks, jwks_len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *keys = json_object_get(doc, "keys");
    json_t *found = NULL;
    size_t candidates = 0, i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (!json_is_object(k) || !str_member_is(k, "kty", "RSA"))
            continue;
        if (json_object_get(k, "use") && !str_member_is(k, "use", "sig"))
            continue;
        if (json_object_get(k, "alg") && !str_member_is(k, "alg", "RS256"))
            continue;
        if (kid && !str_member_is(k, "kid", kid))
            continue;
        candidates++;
        if (!found)
            found = k;
    }
    gh_oidc_reason_t reason = GH_OIDC_KEY_UNKNOWN;
    /* Without a kid the key must be unambiguous. */
    if (found && (kid || candidates == 1)) {
        json_t *n = json_object_get(found, "n"), *e = json_object_get(found, "e");
        reason = json_is_string(n) && json_is_string(e) &&
                         !rsa_public_key(json_string_value(n), json_string_value(e), out)
                     ? GH_OIDC_OK
                     : GH_OIDC_KEY_INVALID;
    }
    json_decref(doc);
    return reason;
}

static bool signature_ok(EVP_PKEY *key, const char *data, size_t len, const unsigned char *sig,
                         size_t sig_len)
{
    if (sig_len != (size_t)EVP_PKEY_get_size(key))
        return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)data, len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error(); /* a failed verification leaves entries on this thread's queue */
    return ok;
}

/* The claim checks of gh_oidc_verify_id_token, after the signature. */
static gh_oidc_reason_t check_claims(json_t *c, const gh_oidc_expect_t *x, gh_oidc_claims_t *out)
{
    if (!str_member_is(c, "iss", x->issuer) &&
        !(x->issuer_alias && str_member_is(c, "iss", x->issuer_alias)))
        return GH_OIDC_ISSUER;

    json_t *aud = json_object_get(c, "aud");
    size_t audiences = 0;
    bool ours = false;
    if (json_is_string(aud)) {
        audiences = 1;
        ours = !strcmp(json_string_value(aud), x->client_id);
    } else if (json_is_array(aud)) {
        size_t i;
        json_t *a;
        json_array_foreach(aud, i, a)
        {
            if (!json_is_string(a))
                return GH_OIDC_AUDIENCE;
            ours = ours || !strcmp(json_string_value(a), x->client_id);
        }
        audiences = json_array_size(aud);
    }
    if (!ours)
        return GH_OIDC_AUDIENCE;
    /* Core §3.1.3.7: with several audiences azp must be there; when there, it must be us. */
    json_t *azp = json_object_get(c, "azp");
    if ((audiences > 1 && !azp) || (azp && !str_member_is(c, "azp", x->client_id)))
        return GH_OIDC_AZP;

    double now = (double)x->now;
    json_t *exp = json_object_get(c, "exp");
    if (!json_is_number(exp) || json_number_value(exp) + GH_OIDC_LEEWAY_S <= now)
        return GH_OIDC_EXPIRED;
    json_t *nbf = json_object_get(c, "nbf");
    if (nbf && (!json_is_number(nbf) || json_number_value(nbf) - GH_OIDC_LEEWAY_S > now))
        return GH_OIDC_NOT_YET_VALID;
    json_t *iat = json_object_get(c, "iat");
    if (!json_is_number(iat) || json_number_value(iat) > now + GH_OIDC_IAT_FUTURE_S)
        return GH_OIDC_NOT_YET_VALID;

    json_t *nonce = json_object_get(c, "nonce");
    if (!json_is_string(nonce) || !x->nonce || !gh_ct_streq(json_string_value(nonce), x->nonce))
        return GH_OIDC_NONCE;

    json_t *sub = json_object_get(c, "sub");
    if (!json_is_string(sub) || !json_string_length(sub) ||
        json_string_length(sub) >= sizeof(out->subject) ||
        strlen(json_string_value(sub)) != json_string_length(sub) ||
        gh_text_has_control(json_string_value(sub)))
        return GH_OIDC_SUBJECT;

    json_t *email = json_object_get(c, "email");
    if (!json_is_string(email) || strlen(json_string_value(email)) != json_string_length(email) ||
        gh_email_normalize(json_string_value(email), out->email, sizeof(out->email)))
        return GH_OIDC_EMAIL;
    /* Some providers send the string "true" (Core §5.1 says boolean). */
    json_t *verified = json_object_get(c, "email_verified");
    if (!json_is_true(verified) && !str_member_is(c, "email_verified", "true"))
        return GH_OIDC_EMAIL_UNVERIFIED;

    snprintf(out->subject, sizeof(out->subject), "%s", json_string_value(sub));
    return GH_OIDC_OK;
}

gh_err_t gh_oidc_verify_id_token(const char *token, const char *jwks, size_t jwks_len,
                                 const gh_oidc_expect_t *expect, gh_oidc_claims_t *out,
                                 gh_oidc_reason_t *reason)
{
    memset(out, 0, sizeof(*out));
    *reason = GH_OIDC_MALFORMED;
    json_t *header = NULL, *payload = NULL;
    EVP_PKEY *key = NULL;
    unsigned char *scratch = NULL;

    size_t len = token ? strnlen(token, GH_OIDC_TOKEN_MAX + 1) : 0;
    if (!len || len > GH_OIDC_TOKEN_MAX)
        goto out_free;
    const char *end = token + len;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)))
        goto out_free;
    if (!(scratch = malloc(len))) /* every decoded segment is shorter than the token */
        goto out_free;
    if (!(header = segment_json(token, (size_t)(dot1 - token), scratch, len)) ||
        !(payload = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1), scratch, len)))
        goto out_free;

    /* Only RS256: "none" and HS256 (which a forger would sign with the public key as the
     * HMAC secret) are the classic attacks on a verifier that trusts the header. */
    if (!str_member_is(header, "alg", "RS256")) {
        *reason = GH_OIDC_ALG;
        goto out_free;
    }
    /* An extension we would have to understand (RFC 7515 §4.1.11): we understand none. */
    if (json_object_get(header, "crit"))
        goto out_free;
    json_t *kid = json_object_get(header, "kid");
    if (kid && !json_is_string(kid))
        goto out_free;
    size_t sig_len;
    if (gh_oidc_b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), scratch, len, &sig_len) ||
        !sig_len)
        goto out_free;

    *reason = jwks_key(jwks, jwks_len, kid ? json_string_value(kid) : NULL, &key);
    if (*reason)
        goto out_free;
    if (!signature_ok(key, token, (size_t)(dot2 - token), scratch, sig_len)) {
        *reason = GH_OIDC_SIGNATURE;
        goto out_free;
    }
    *reason = check_claims(payload, expect, out);
out_free:
    EVP_PKEY_free(key);
    free(scratch);
    json_decref(header);
    json_decref(payload);
    if (*reason) {
        memset(out, 0, sizeof(*out));
        return GH_EAUTH;
    }
    return GH_OK;
}

/* ---- HTTP ---- */


/* GETs `url`, or POSTs the form `form` to it, and returns the status and the body (at most
 * GH_OIDC_DOC_MAX bytes; the caller frees it with gh_curl_body_free). No redirects are
 * followed and only http and https are spoken. `what` names the request in the log. */
static gh_err_t http_call(const gh_config_t *cfg, const char *what, const char *url,
                          const char *form, long *status, gh_curl_body_t *out)
{
    memset(out, 0, sizeof(*out));
    out->max = GH_OIDC_DOC_MAX;
    *status = 0;
    CURL *c = curl_easy_init();
    if (!c)
        return GH_ENOMEM;
    gh_err_t rc = GH_OK;
    struct curl_slist *headers = curl_slist_append(NULL, "accept: application/json");
    if (!headers) {
        rc = GH_ENOMEM;
        goto out_cleanup;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->oidc_timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)GH_OIDC_DOC_MAX);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "gatehouse");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gh_curl_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (form) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        gh_log_warn("oidc: %s from %s failed: %s", what, url,
                    cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED
                        ? "the answer is too large"
                        : curl_easy_strerror(cc));
        rc = cc == CURLE_OPERATION_TIMEDOUT ? GH_ETIMEOUT : GH_EIO;
        gh_curl_body_free(out, true);
        goto out_cleanup;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
out_cleanup:
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return rc;
}

/* ---- discovery and keys, cached ---- */

typedef struct {
    char issuer[GH_OIDC_ISSUER_MAX]; /* as the provider spells it; what iss must say */
    char authorization_endpoint[GH_OIDC_URL_MAX];
    char token_endpoint[GH_OIDC_URL_MAX];
    char jwks_uri[GH_OIDC_URL_MAX];
} provider_t;

static struct {
    pthread_mutex_t lock;
    char for_issuer[GH_CONFIG_STR]; /* the configured issuer the entries belong to */
    bool have_provider;
    provider_t provider;
    int64_t provider_at;
    char *jwks; /* malloc'd, NUL-terminated */
    size_t jwks_len;
    int64_t jwks_at;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool fresh(int64_t at, int64_t now)
{
    return now >= at && now - at < GH_OIDC_CACHE_TTL_S;
}

/* An endpoint from discovery: https, or http when the issuer itself is http (a provider on
 * a private network, or the tests' on loopback). */
static bool endpoint_ok(const char *issuer, json_t *v, char *out, size_t size)
{
    if (!json_is_string(v) || json_string_length(v) >= size)
        return false;
    const char *s = json_string_value(v);
    if (strncmp(s, "https://", 8) != 0 &&
        !(strncmp(issuer, "http://", 7) == 0 && strncmp(s, "http://", 7) == 0))
        return false;
    if (gh_text_has_control(s) || strchr(s, ' ') || strchr(s, '#'))
        return false;
    snprintf(out, size, "%s", s);
    return true;
}

static gh_err_t discover(const gh_config_t *cfg, provider_t *p)
{
    char url[GH_CONFIG_STR + 64];
    snprintf(url, sizeof(url), "%s/.well-known/openid-configuration", cfg->oidc_issuer);
    long status;
    gh_curl_body_t body;
    gh_err_t rc = http_call(cfg, "fetching the discovery document", url, NULL, &status, &body);
    if (rc)
        return rc;
    rc = GH_EIO;
    json_t *doc = NULL;
    if (status != 200) {
        gh_log_warn("oidc: the discovery document %s answered HTTP %ld", url, status);
        goto out_free;
    }
    doc = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, NULL);
    json_t *iss = json_object_get(doc, "issuer");
    /* The configuration drops a trailing slash; a provider may spell its issuer with one,
     * and then that exact spelling is what its tokens must carry. */
    size_t clen = strlen(cfg->oidc_issuer);
    const char *s = json_string_value(iss);
    if (!s || strlen(s) >= sizeof(p->issuer) ||
        !(strcmp(s, cfg->oidc_issuer) == 0 ||
          (strlen(s) == clen + 1 && !strncmp(s, cfg->oidc_issuer, clen) && s[clen] == '/'))) {
        gh_log_warn("oidc: the discovery document %s is not valid or names another issuer "
                    "(\"%.200s\"); issuer must be exactly the configured one",
                    url, s ? s : "");
        goto out_free;
    }
    snprintf(p->issuer, sizeof(p->issuer), "%s", s);
    if (!endpoint_ok(p->issuer, json_object_get(doc, "authorization_endpoint"),
                     p->authorization_endpoint, sizeof(p->authorization_endpoint)) ||
        !endpoint_ok(p->issuer, json_object_get(doc, "token_endpoint"), p->token_endpoint,
                     sizeof(p->token_endpoint)) ||
        !endpoint_ok(p->issuer, json_object_get(doc, "jwks_uri"), p->jwks_uri,
                     sizeof(p->jwks_uri))) {
        gh_log_warn("oidc: the discovery document %s lacks a usable authorization_endpoint, "
                    "token_endpoint or jwks_uri (https, or http for an http issuer)",
                    url);
        goto out_free;
    }
    rc = GH_OK;
out_free:
    json_decref(doc);
    gh_curl_body_free(&body, true);
    return rc;
}

/* The provider's discovery document, from the cache when fresh. */
static gh_err_t provider_get(gh_app_t *app, provider_t *out)
{
    const gh_config_t *cfg = app->cfg;
    int64_t now = app->now();
    pthread_mutex_lock(&cache.lock);
    bool hit = cache.have_provider && !strcmp(cache.for_issuer, cfg->oidc_issuer) &&
               fresh(cache.provider_at, now);
    if (hit)
        *out = cache.provider;
    pthread_mutex_unlock(&cache.lock);
    if (hit)
        return GH_OK;

    /* Fetched without the lock: a slow provider must not hold up the cache for others. */
    gh_err_t rc = discover(cfg, out);
    if (rc)
        return rc;
    pthread_mutex_lock(&cache.lock);
    if (strcmp(cache.for_issuer, cfg->oidc_issuer) != 0) {
        free(cache.jwks);
        cache.jwks = NULL;
        cache.jwks_len = 0;
        snprintf(cache.for_issuer, sizeof(cache.for_issuer), "%s", cfg->oidc_issuer);
    }
    cache.provider = *out;
    cache.provider_at = now;
    cache.have_provider = true;
    pthread_mutex_unlock(&cache.lock);
    return GH_OK;
}

/* The provider's JWKS document as a malloc'd copy the caller frees, from the cache unless
 * `refetch` or stale. */
static gh_err_t jwks_get(gh_app_t *app, const provider_t *p, bool refetch, char **out,
                         size_t *out_len)
{
    const gh_config_t *cfg = app->cfg;
    int64_t now = app->now();
    *out = NULL;
    *out_len = 0;
    if (!refetch) {
        pthread_mutex_lock(&cache.lock);
        if (cache.jwks && !strcmp(cache.for_issuer, cfg->oidc_issuer) &&
            fresh(cache.jwks_at, now)) {
            *out = malloc(cache.jwks_len + 1);
            if (*out) {
                memcpy(*out, cache.jwks, cache.jwks_len + 1);
                *out_len = cache.jwks_len;
            }
        }
        pthread_mutex_unlock(&cache.lock);
        if (*out)
            return GH_OK;
    }
    long status;
    gh_curl_body_t body;
    gh_err_t rc = http_call(cfg, "fetching the keys (JWKS)", p->jwks_uri, NULL, &status, &body);
    if (rc)
        return rc;
    if (status != 200 || !body.data) {
        gh_log_warn("oidc: the keys (JWKS) at %s answered HTTP %ld", p->jwks_uri, status);
        gh_curl_body_free(&body, true);
        return GH_EIO;
    }
    char *copy = malloc(body.len + 1);
    if (!copy) {
        gh_curl_body_free(&body, true);
        return GH_ENOMEM;
    }
    memcpy(copy, body.data, body.len + 1);
    pthread_mutex_lock(&cache.lock);
    if (!strcmp(cache.for_issuer, cfg->oidc_issuer)) {
        free(cache.jwks);
        cache.jwks = copy;
        cache.jwks_len = body.len;
        cache.jwks_at = now;
        copy = NULL;
    }
    pthread_mutex_unlock(&cache.lock);
    free(copy);
    *out = body.data; /* handed over, not freed */
    *out_len = body.len;
    return GH_OK;
}

/* ---- the flow ---- */

static void redirect_uri(const gh_config_t *cfg, char *out, size_t size)
{
    snprintf(out, size, "%s/auth/oidc/callback", cfg->public_url);
}

/* True when the space-separated `list` holds `word`. */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

gh_err_t gh_oidc_start(gh_app_t *app, char *url, size_t url_size, char state[GH_SECRET_MAX],
                       gh_oidc_reason_t *reason)
{
    const gh_config_t *cfg = app->cfg;
    *reason = GH_OIDC_OK;
    state[0] = '\0';
    url[0] = '\0';
    if (!cfg->oidc_issuer[0]) {
        *reason = GH_OIDC_NOT_CONFIGURED;
        return GH_ENOTFOUND;
    }
    provider_t p;
    gh_err_t rc = provider_get(app, &p);
    if (rc) {
        *reason = GH_OIDC_UNAVAILABLE;
        return rc;
    }
    char nonce[GH_SECRET_MAX], verifier[GH_OIDC_VERIFIER_CHARS + 1];
    char challenge[GH_OIDC_CHALLENGE_MAX], hash[GH_SHA256_HEX_MAX];
    gh_secret_new(state);
    gh_secret_new(nonce);
    gh_random_base62(verifier, GH_OIDC_VERIFIER_CHARS);
    gh_oidc_pkce_challenge(verifier, challenge);
    gh_sha256_hex(hash, state, strlen(state));

    gh_db_t *db = gh_store_db(app->store);
    int64_t now = app->now();
    *reason = GH_OIDC_STORE;
    if (!db) {
        rc = GH_ESTORE;
        goto out_wipe;
    }
    /* Every start adds a row, so expired ones go here rather than by a timer. */
    if ((rc = gh_store_oidc_state_purge(db, now, NULL)) ||
        (rc =
             gh_store_oidc_state_insert(db, hash, nonce, verifier, now, now + GH_OIDC_STATE_TTL_S)))
        goto out_wipe;

    char callback[GH_CONFIG_STR + 32], scope[GH_CONFIG_STR + 8];
    redirect_uri(cfg, callback, sizeof(callback));
    snprintf(scope, sizeof(scope), "%s%s", has_word(cfg->oidc_scopes, "openid") ? "" : "openid ",
             cfg->oidc_scopes);
    gh_oidc_auth_request_t ar = {
        p.authorization_endpoint, cfg->oidc_client_id, callback, scope, state, nonce, challenge};
    rc = gh_oidc_authorize_url(&ar, url, url_size);
    *reason = rc ? GH_OIDC_INTERNAL : GH_OIDC_OK;
out_wipe:
    sodium_memzero(verifier, sizeof(verifier));
    sodium_memzero(nonce, sizeof(nonce));
    if (rc)
        sodium_memzero(state, GH_SECRET_MAX);
    return rc;
}

/* Writes at most 64 characters of `in` that are safe in a log line (the provider's error
 * codes are short words) into `out`. */
static void log_word(const char *in, char out[65])
{
    size_t o = 0;
    for (const char *p = in ? in : ""; *p && o < 64; p++)
        out[o++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                           (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'
                       ? *p
                       : '?';
    out[o] = '\0';
}

/* Trades `code` for an ID token at the token endpoint; the token (malloc'd) goes to
 * `*id_token`. GH_EAUTH when the endpoint refuses or answers without one. */
static gh_err_t token_request(const gh_config_t *cfg, const provider_t *p, const char *code,
                              const char *verifier, char **id_token)
{
    *id_token = NULL;
    const char *secret = getenv(cfg->oidc_client_secret_env);
    if (secret && strlen(secret) > CLIENT_SECRET_MAX) {
        gh_log_warn("oidc: the client secret in $%s is longer than %d characters; not sent",
                    cfg->oidc_client_secret_env, CLIENT_SECRET_MAX);
        return GH_EINVAL;
    }
    char callback[GH_CONFIG_STR + 32];
    redirect_uri(cfg, callback, sizeof(callback));
    char *form = malloc(FORM_MAX);
    if (!form)
        return GH_ENOMEM;
    sbuf_t b = {form, 0, FORM_MAX, false};
    form[0] = '\0';
    gh_err_t rc = GH_ENOMEM;
    gh_curl_body_t body = {0};
    json_t *doc = NULL;
    /* client_secret_post (Core §9): the secret in the body, never in a URL or the log. */
    if (!sb_param(&b, "", "grant_type", "authorization_code") || !sb_param(&b, "&", "code", code) ||
        !sb_param(&b, "&", "redirect_uri", callback) ||
        !sb_param(&b, "&", "client_id", cfg->oidc_client_id) ||
        !sb_param(&b, "&", "code_verifier", verifier) ||
        (secret && *secret && !sb_param(&b, "&", "client_secret", secret)))
        goto out_free;
    assert(!b.overflow); /* FORM_MAX holds the longest code and secret accepted */
    long status;
    if ((rc = http_call(cfg, "redeeming the code", p->token_endpoint, form, &status, &body)))
        goto out_free;
    rc = GH_EAUTH;
    doc = body.data ? json_loadb(body.data, body.len, 0, NULL) : NULL;
    if (status != 200) {
        char word[65];
        log_word(json_string_value(json_object_get(doc, "error")), word);
        gh_log_warn("oidc: the token endpoint %s answered HTTP %ld (error \"%s\")",
                    p->token_endpoint, status, word);
        goto out_free;
    }
    json_t *t = json_object_get(doc, "id_token");
    if (!json_is_string(t) || json_string_length(t) > GH_OIDC_TOKEN_MAX) {
        gh_log_warn("oidc: the token endpoint %s answered without a usable id_token",
                    p->token_endpoint);
        goto out_free;
    }
    if (!(*id_token = strdup(json_string_value(t)))) {
        rc = GH_ENOMEM;
        goto out_free;
    }
    rc = GH_OK;
out_free:
    json_decref(doc);
    gh_curl_body_free(&body, true);
    sodium_memzero(form, FORM_MAX);
    free(form);
    return rc;
}

/* In one transaction: the account for the verified claims (by identity; else by email,
 * linked; else created and linked) and a new session for it. */
static gh_err_t sign_in(gh_app_t *app, gh_db_t *db, const char *issuer,
                        const gh_oidc_claims_t *claims, const gh_oidc_callback_t *cb,
                        gh_login_t *out)
{
    int64_t now = app->now();
    const char *how = "signed in";
    gh_identity_t id;
    gh_err_t rc = gh_store_begin(db);
    if (rc)
        return rc;
    rc = gh_store_identity_get(db, issuer, claims->subject, &id);
    if (rc == GH_OK) {
        rc = gh_store_identity_touch(db, issuer, claims->subject, claims->email, now);
    } else if (rc == GH_ENOTFOUND) {
        gh_account_t acct;
        bool created = false;
        rc = gh_auth_account_for_email(app, db, claims->email, &acct, &created);
        if (!rc) {
            memset(&id, 0, sizeof(id));
            snprintf(id.issuer, sizeof(id.issuer), "%s", issuer);
            snprintf(id.subject, sizeof(id.subject), "%s", claims->subject);
            snprintf(id.account_id, sizeof(id.account_id), "%s", acct.id);
            snprintf(id.email, sizeof(id.email), "%s", claims->email);
            id.created_at = now;
            id.last_used_at = now;
            rc = gh_store_identity_insert(db, &id);
            how = created ? "new account" : "linked to the existing account";
            out->new_account = created;
        }
    }
    if (!rc)
        rc = gh_auth_start_session(app, db, id.account_id, NULL, cb->ip ? cb->ip : "-",
                                   cb->user_agent, out);
    if (!rc)
        rc = gh_store_commit(db);
    if (rc) {
        gh_store_rollback(db);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    gh_log_info("oidc: %s (%s) signed in as %s (%s)", claims->email, issuer, id.account_id, how);
    return GH_OK;
}

gh_err_t gh_oidc_finish(gh_app_t *app, const gh_oidc_callback_t *cb, gh_login_t *out,
                        gh_oidc_reason_t *reason)
{
    const gh_config_t *cfg = app->cfg;
    memset(out, 0, sizeof(*out));
    *reason = GH_OIDC_OK;
    if (!cfg->oidc_issuer[0]) {
        *reason = GH_OIDC_NOT_CONFIGURED;
        return GH_ENOTFOUND;
    }
    if (!cb->code || !cb->code[0] || strnlen(cb->code, CODE_MAX + 1) > CODE_MAX ||
        !gh_secret_valid(cb->state)) {
        *reason = GH_OIDC_BAD_CALLBACK;
        return GH_EAUTH;
    }
    /* The cookie binds the flow to the browser that started it: a callback URL carried to
     * another browser (login CSRF, a leaked link) does not sign that browser in. */
    if (!cb->cookie_state || !gh_ct_streq(cb->state, cb->cookie_state)) {
        *reason = GH_OIDC_STATE_COOKIE;
        return GH_EAUTH;
    }
    provider_t p;
    gh_err_t rc = provider_get(app, &p);
    if (rc) {
        *reason = GH_OIDC_UNAVAILABLE;
        return rc;
    }
    gh_db_t *db = gh_store_db(app->store);
    if (!db) {
        *reason = GH_OIDC_STORE;
        return GH_ESTORE;
    }
    char hash[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hash, cb->state, strlen(cb->state));
    gh_oidc_state_t st;
    rc = gh_store_oidc_state_consume(db, hash, app->now(), &st);
    switch (rc) {
    case GH_OK: break;
    case GH_ENOTFOUND: *reason = GH_OIDC_STATE_UNKNOWN; return GH_EAUTH;
    case GH_ECONFLICT: *reason = GH_OIDC_STATE_USED; return GH_EAUTH;
    case GH_EEXPIRED: *reason = GH_OIDC_STATE_EXPIRED; return GH_EAUTH;
    default: *reason = GH_OIDC_STORE; return rc;
    }

    char *id_token = NULL, *jwks = NULL;
    size_t jwks_len;
    if ((rc = token_request(cfg, &p, cb->code, st.code_verifier, &id_token))) {
        *reason = GH_OIDC_TOKEN_REQUEST;
        goto out_free;
    }
    if ((rc = jwks_get(app, &p, false, &jwks, &jwks_len))) {
        *reason = GH_OIDC_UNAVAILABLE;
        goto out_free;
    }
    gh_oidc_expect_t expect = {p.issuer,
                               !strcmp(p.issuer, GH_OIDC_GOOGLE) ? GH_OIDC_GOOGLE_ALIAS : NULL,
                               cfg->oidc_client_id, st.nonce, app->now()};
    gh_oidc_claims_t claims;
    rc = gh_oidc_verify_id_token(id_token, jwks, jwks_len, &expect, &claims, reason);
    if (rc && *reason == GH_OIDC_KEY_UNKNOWN) {
        /* The provider may have rotated its keys since they were cached: look once more. */
        free(jwks);
        jwks = NULL;
        if ((rc = jwks_get(app, &p, true, &jwks, &jwks_len))) {
            *reason = GH_OIDC_UNAVAILABLE;
            goto out_free;
        }
        rc = gh_oidc_verify_id_token(id_token, jwks, jwks_len, &expect, &claims, reason);
    }
    if (rc)
        goto out_free;
    if ((rc = sign_in(app, db, p.issuer, &claims, cb, out)))
        *reason = GH_OIDC_STORE;
out_free:
    if (id_token) {
        sodium_memzero(id_token, strlen(id_token));
        free(id_token);
    }
    free(jwks);
    sodium_memzero(&st, sizeof(st));
    return rc;
}
