/* Sign-in with an OpenID Connect provider ("Continue with Google"): the authorization code
 * flow with PKCE (RFC 7636) against the one provider configured in [oidc].
 *
 * gh_oidc_start makes a state, a nonce and a PKCE code verifier, records them (the state
 * hashed) and returns the provider's authorization URL; gh_oidc_finish takes the provider's
 * callback, consumes the state, trades the code for an ID token at the token endpoint,
 * verifies the token (RS256 signature against the provider's published keys, issuer,
 * audience, expiry, nonce, a verified email) and signs the person in: the account linked to
 * the provider's subject, else the account with that email (then linked), else a new one.
 *
 * The provider's discovery document and keys (JWKS) are fetched with libcurl, bounded in
 * size and time, and cached in memory for GH_OIDC_CACHE_TTL_S behind a mutex; a token signed
 * with a key the cache does not know makes one refetch of the keys.
 *
 * The protocol pieces (base64url, PKCE, the authorization URL, ID-token verification) are
 * pure functions, so the unit tests check them without a network. Nothing here logs a
 * token, a code, a state, a verifier or the client secret. */
#ifndef GH_CORE_OIDC_H
#define GH_CORE_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/app.h"
#include "core/auth.h"
#include "store/rows.h"

#define GH_OIDC_STATE_TTL_S 600             /* a started sign-in must come back within 10 minutes */
#define GH_OIDC_CACHE_TTL_S 3600            /* discovery document and keys are refetched hourly */
#define GH_OIDC_LEEWAY_S 60                 /* clock skew allowed on exp and nbf */
#define GH_OIDC_IAT_FUTURE_S 300            /* an iat further ahead than this is refused */
#define GH_OIDC_URL_MAX 2048                /* longest endpoint URL accepted from discovery */
#define GH_OIDC_AUTH_URL_MAX 4096           /* the authorization URL with its parameters */
#define GH_OIDC_CHALLENGE_MAX 44            /* a S256 code challenge: 43 characters and NUL */
#define GH_OIDC_VERIFIER_CHARS 64           /* length of the code verifiers made here */
#define GH_OIDC_TOKEN_MAX 16384             /* longest ID token accepted */
#define GH_OIDC_DOC_MAX ((size_t)64 * 1024) /* largest discovery, JWKS or token response */

/* Why a sign-in was refused, for the log and for choosing the message shown. */
#define GH_OIDC_REASON_MAP(X)                                                                      \
    X(GH_OIDC_OK, "no problem")                                                                    \
    X(GH_OIDC_NOT_CONFIGURED, "no [oidc] issuer is configured")                                    \
    X(GH_OIDC_UNAVAILABLE, "the provider's discovery document or keys could not be fetched")       \
    X(GH_OIDC_BAD_CALLBACK, "the callback carries no code or no well-formed state")                \
    X(GH_OIDC_STATE_COOKIE, "the state does not match this browser's gh_oidc cookie")              \
    X(GH_OIDC_STATE_UNKNOWN, "the state is unknown")                                               \
    X(GH_OIDC_STATE_USED, "the state was already used")                                            \
    X(GH_OIDC_STATE_EXPIRED, "the state has expired")                                              \
    X(GH_OIDC_TOKEN_REQUEST, "the token endpoint did not give an ID token for the code")           \
    X(GH_OIDC_MALFORMED, "the ID token is not a well-formed JWT")                                  \
    X(GH_OIDC_ALG, "the ID token is not signed with RS256")                                        \
    X(GH_OIDC_KEY_UNKNOWN, "no RSA key in the provider's JWKS matches the ID token's kid")         \
    X(GH_OIDC_KEY_INVALID, "the provider's key for the ID token is not a usable RSA key")          \
    X(GH_OIDC_SIGNATURE, "the ID token's signature does not verify")                               \
    X(GH_OIDC_ISSUER, "the ID token's iss is not the provider's issuer")                           \
    X(GH_OIDC_AUDIENCE, "the ID token's aud does not hold our client_id")                          \
    X(GH_OIDC_AZP, "the ID token's azp is not our client_id")                                      \
    X(GH_OIDC_EXPIRED, "the ID token has expired or has no exp")                                   \
    X(GH_OIDC_NOT_YET_VALID, "the ID token's iat or nbf is in the future, or iat is missing")      \
    X(GH_OIDC_NONCE, "the ID token's nonce is not the one sent")                                   \
    X(GH_OIDC_SUBJECT, "the ID token has no usable sub")                                           \
    X(GH_OIDC_EMAIL, "the ID token has no email, or it is not an address")                         \
    X(GH_OIDC_EMAIL_UNVERIFIED, "the provider has not verified the email")                         \
    X(GH_OIDC_STORE, "the database failed")                                                        \
    X(GH_OIDC_INTERNAL, "the authorization URL does not fit (endpoint or settings too long)")

typedef enum {
#define GH_OIDC_REASON_ENUM(name, text) name,
    GH_OIDC_REASON_MAP(GH_OIDC_REASON_ENUM)
#undef GH_OIDC_REASON_ENUM
        GH_OIDC_REASON_COUNT
} gh_oidc_reason_t;

/* A short English description of `reason`, fit for a log line. */
const char *gh_oidc_reason_str(gh_oidc_reason_t reason);

/* ---- protocol pieces ---- */

/* Decodes `in_len` characters of unpadded base64url (RFC 4648 §5, as JWTs and JWKs use it)
 * into `out`, writing the byte count to `*out_len`. Strict: GH_EINVAL for a character outside
 * the alphabet, padding, a length that is 1 more than a multiple of 4, or non-zero unused
 * bits; GH_ETOOBIG when the result does not fit in `out_size`. */
gh_err_t gh_oidc_b64url_decode(const char *in, size_t in_len, unsigned char *out, size_t out_size,
                               size_t *out_len);

/* The PKCE S256 code challenge of `verifier`: unpadded base64url of its SHA-256. */
void gh_oidc_pkce_challenge(const char *verifier, char out[GH_OIDC_CHALLENGE_MAX]);

/* What goes into an authorization request; all borrowed. */
typedef struct gh_oidc_auth_request {
    const char *endpoint; /* the provider's authorization_endpoint */
    const char *client_id;
    const char *redirect_uri;
    const char *scope;
    const char *state;
    const char *nonce;
    const char *code_challenge;
} gh_oidc_auth_request_t;

/* Writes the authorization URL for `r` into `out`: the endpoint with response_type=code,
 * client_id, redirect_uri, scope, state, nonce, code_challenge and
 * code_challenge_method=S256 added to its query (every value percent-encoded). GH_ETOOBIG
 * when it does not fit, GH_ENOMEM when encoding fails. */
gh_err_t gh_oidc_authorize_url(const gh_oidc_auth_request_t *r, char *out, size_t out_size);

/* What an ID token must say. All borrowed. */
typedef struct gh_oidc_expect {
    const char *issuer;       /* exactly the provider's issuer */
    const char *issuer_alias; /* another spelling iss may have, or NULL (see GH_OIDC_GOOGLE) */
    const char *client_id;    /* must be in aud (and be azp when aud has several) */
    const char *nonce;        /* the nonce sent with the authorization request */
    int64_t now;              /* Unix seconds */
} gh_oidc_expect_t;

/* Google's issuer, and the spelling without a scheme that Google documents its ID tokens may
 * also carry in iss; the flow accepts the second only for the first. */
#define GH_OIDC_GOOGLE "https://accounts.google.com"
#define GH_OIDC_GOOGLE_ALIAS "accounts.google.com"

/* What a verified ID token says about the person. */
typedef struct gh_oidc_claims {
    char subject[GH_OIDC_SUBJECT_MAX];
    char email[GH_EMAIL_MAX]; /* lower-cased (gh_email_normalize) */
} gh_oidc_claims_t;

/* Verifies the compact JWT `token` as an ID token: the header's alg is RS256 (nothing else,
 * not "none", not HS256); the key is the RSA key of the JWKS document `jwks` (`jwks_len`
 * bytes) whose kid is the header's (or the only RSA key when the header names none; at least
 * 2048 bits); the signature verifies; iss (exactly the issuer or its alias), aud, azp, exp,
 * nbf, iat and nonce are as `expect` says (GH_OIDC_LEEWAY_S of clock skew); sub is there; email is
 * there and is an address; and email_verified is true (or "true"). Checks run in that order and the
 * first failure is reported: GH_EAUTH with `*reason` saying which (GH_OIDC_KEY_UNKNOWN tells the
 * caller that fresher keys might help). GH_OK fills `out`; otherwise `out` is zeroed. */
gh_err_t gh_oidc_verify_id_token(const char *token, const char *jwks, size_t jwks_len,
                                 const gh_oidc_expect_t *expect, gh_oidc_claims_t *out,
                                 gh_oidc_reason_t *reason);

/* ---- the flow ---- */

/* Starts a sign-in: fetches (or reuses) the provider's discovery document, makes a state, a
 * nonce and a code verifier, records them for GH_OIDC_STATE_TTL_S, and writes the
 * authorization URL into `url` and the state (which the caller puts in the gh_oidc cookie)
 * into `state`. GH_ENOTFOUND when [oidc] is off; GH_EIO or GH_ETIMEOUT when the provider
 * cannot be reached; store errors as they come. `*reason` says which. */
gh_err_t gh_oidc_start(gh_app_t *app, char *url, size_t url_size, char state[GH_SECRET_MAX],
                       gh_oidc_reason_t *reason);

/* The provider's redirect back to us, as the browser delivered it. All borrowed; any may
 * be NULL. */
typedef struct gh_oidc_callback {
    const char *code;         /* ?code= */
    const char *state;        /* ?state= */
    const char *cookie_state; /* the gh_oidc cookie */
    const char *ip;
    const char *user_agent;
} gh_oidc_callback_t;

/* Finishes a sign-in. The state must match the cookie and a recorded, unused, unexpired
 * request, which is consumed (so a state works once, even when a later step fails). Then the
 * code is traded for an ID token (client_secret_post, with the PKCE verifier), the token is
 * verified (gh_oidc_verify_id_token), and in one transaction the account is found (by
 * identity, else by email and linked, else created and linked) and a session started into
 * `out`. On failure nothing but the state changes: GH_EAUTH for a refused sign-in, GH_EIO,
 * GH_ETIMEOUT or a store error otherwise, with `*reason` saying why. */
gh_err_t gh_oidc_finish(gh_app_t *app, const gh_oidc_callback_t *cb, gh_login_t *out,
                        gh_oidc_reason_t *reason);

#endif
