/* The Stripe payment provider: gh_pay_ops_t (core/pay.h) over Stripe's REST API.
 *
 * Card numbers never reach Gatehouse: the browser enters them in Stripe's own form (Stripe.js
 * with a SetupIntent's client secret), and Gatehouse keeps only what Stripe reports of the
 * saved card (brand, last four digits, expiry, the pm_… id). Charges are off- or on-session
 * PaymentIntents confirmed at creation on the customer's saved card, sent with the
 * purchase id as Idempotency-Key so that a retry after a timeout never charges twice, and
 * with metadata[purchase_id] and metadata[org_id] so that webhook events lead back to the
 * purchase.
 *
 * Requests: form-encoded, "Authorization: Bearer <secret key>", one libcurl easy handle per
 * call (so every function may run on any thread at once), bounded by `timeout_ms` and a
 * response size limit, no redirects. The process must have called curl_global_init before
 * threads start (main.c does). Responses are parsed with jansson.
 *
 * Secrets: the secret key is kept in memory only (wiped on destroy) and is never written to
 * the log, to an error message or to a result: provider messages copied anywhere have every
 * "sk_…", "rk_…" and "whsec_…" word replaced first. */
#ifndef GH_CORE_PAY_STRIPE_H
#define GH_CORE_PAY_STRIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pay.h"
#include "lib/err.h"

#define GH_PAY_STRIPE_API_BASE "https://api.stripe.com"
#define GH_PAY_STRIPE_TIMEOUT_MS 30000           /* used when timeout_ms is 0 or less */
#define GH_PAY_STRIPE_URL_MAX 512                /* longest api_base accepted */
#define GH_PAY_STRIPE_KEY_MAX 255                /* longest secret key accepted */
#define GH_PAY_STRIPE_BODY_MAX ((size_t)256 * 1024) /* largest response read from Stripe */
#define GH_PAY_STRIPE_WEBHOOK_SECRET_MAX 255     /* longest webhook signing secret accepted */

typedef struct gh_pay_stripe_opts {
    const char *api_base;   /* NULL or "" for GH_PAY_STRIPE_API_BASE; https, or http only to
                             * 127.0.0.1, localhost or [::1] (a local fake in tests) */
    const char *secret_key; /* "sk_test_…", "sk_live_…" or a restricted "rk_…" key; copied */
    long timeout_ms;        /* whole-request limit for each call to Stripe */
    const char *webhook_secret; /* the webhook endpoint's signing secret "whsec_…"; copied.
                                 * NULL or "": every webhook is refused */
} gh_pay_stripe_opts_t;

/* Creates the provider; the caller owns it and frees it with p->ops->destroy(p). The
 * options are copied. ops->test_mode is true when the key starts with "sk_test_" or
 * "rk_test_". GH_EINVAL with a message in `err` (which never repeats a secret) when the key
 * is missing or not shaped like a Stripe secret key, the webhook secret is given but not
 * shaped like one ("whsec_" and printable characters), or api_base is not an acceptable URL;
 * GH_ENOMEM when out of memory. Both secrets are wiped on destroy. */
gh_err_t gh_pay_stripe_new(const gh_pay_stripe_opts_t *o, gh_pay_t **out, char *err,
                           size_t err_size);

/* How each gh_pay_ops_t function behaves with Stripe:
 *
 * card_from_details: always GH_EINVAL ("card numbers are entered in Stripe's form").
 *
 * setup_start: with an empty `customer_ref`, creates a customer (email, metadata[org_id];
 * Idempotency-Key derived from the org and the email, so a double submit makes one
 * customer) and writes its cus_… id into `customer_ref` as soon as it exists, even if the
 * next step fails: the caller should keep it. Then creates a SetupIntent (usage off_session,
 * card) and writes its client secret. GH_ENOTFOUND when Stripe no longer knows a given
 * `customer_ref` (deleted in the dashboard): the caller forgets it and calls again with "".
 * GH_ETIMEOUT or GH_EUNAVAIL when Stripe is slow, unreachable or failing (5xx, 429);
 * GH_EBILLING when Stripe refuses the request (other 4xx: a bad key); `msg` says it for a
 * person.
 *
 * setup_finish: reads the SetupIntent and the payment method it saved (a brand that
 * gh_card_t cannot hold is stored as "unknown"). GH_EINVAL when the id is malformed or
 * unknown, the SetupIntent has not succeeded, it (or its payment method) belongs to another
 * customer, or the payment method is not a card; otherwise as setup_start.
 *
 * charge: returns GH_OK with the outcome for anything Stripe could have acted on:
 *   succeeded                                 -> GH_PAY_SUCCEEDED
 *   processing, requires_action, other states -> GH_PAY_PENDING
 *   requires_payment_method, canceled         -> GH_PAY_DECLINED
 *   HTTP 402 (card_error)                     -> GH_PAY_DECLINED, Stripe's decline_code (or
 *                                                its code) and its message for the person
 *   HTTP 400/404 other than an idempotency    -> GH_PAY_DECLINED, decline_code is Stripe's
 *   error (nothing was done)                     code or error type, a message of our own
 *   timeout, no connection, 5xx, 401, 403,    -> GH_PAY_PENDING with a message; the outcome
 *   409, 429, an idempotency error, an           comes later (webhook or a retry, same key).
 *   unreadable answer                            401/403 (a wrong or revoked key) also log
 *                                                an error: they say nothing about an
 *                                                earlier attempt under the same key
 * `ref` is the pi_… id whenever Stripe gave one. An error (GH_EINVAL: amount not whole cents
 * or not positive, a missing or malformed id or key; GH_ENOMEM) means no request was sent;
 * `out->status` is then GH_PAY_PENDING and `out->message` says what was wrong. */


/* True when `p` is this provider. */
bool gh_pay_is_stripe(const gh_pay_t *p);

/* Checks a webhook delivery: `header` is its Stripe-Signature, `payload` the raw body, `now`
 * the receiver's clock; the timestamp may differ from it by GH_STRIPE_SIG_TOLERANCE_S either
 * way. GH_OK when a v1 signature made with the provider's webhook secret matches. GH_EINVAL
 * for a malformed header, GH_EAUTH otherwise (no match, stale, `p` not the Stripe provider
 * or without a webhook secret). A caller refuses both alike and reads nothing of the body. */
gh_err_t gh_pay_stripe_webhook_verify(const gh_pay_t *p, const char *header,
                                      const char *payload, size_t payload_len, int64_t now);

/* What a webhook event says, as far as Gatehouse acts on it. */
typedef enum {
    GH_STRIPE_EVENT_OTHER,   /* a type Gatehouse does not act on (acknowledged, ignored) */
    GH_STRIPE_EVENT_PAYMENT, /* payment_intent.succeeded / payment_failed / canceled */
    GH_STRIPE_EVENT_SETUP,   /* setup_intent.succeeded */
} gh_stripe_event_kind_t;

typedef struct gh_stripe_event {
    char id[GH_PAY_REF_MAX];        /* evt_… */
    char type[64];                  /* "payment_intent.succeeded", … */
    gh_stripe_event_kind_t kind;
    bool livemode;
    char object_id[GH_PAY_REF_MAX]; /* the pi_… or seti_… (kinds PAYMENT and SETUP) */
    char customer[GH_PAY_REF_MAX];  /* cus_… or "" */
    char purchase_id[64];           /* metadata[purchase_id] or "" */
    char org_id[64];                /* metadata[org_id] or "" */
    int64_t amount_nusd;            /* a PaymentIntent's amount; 0 when not one */
    char currency[8];               /* a PaymentIntent's currency ("usd") */
    gh_pay_result_t result;         /* PAYMENT: succeeded, or declined with Stripe's
                                     * decline code and message (scrubbed of secrets) */
} gh_stripe_event_t;

/* Reads an event's JSON (only after gh_pay_stripe_webhook_verify accepted it). GH_EINVAL
 * when it is not an event object with an "evt_…" id and a type, or when an event of kind
 * PAYMENT or SETUP has no object with a well-formed id; ids and metadata that do not fit
 * (too long, control characters) are left empty. */
gh_err_t gh_pay_stripe_event_parse(const char *payload, size_t payload_len,
                                   gh_stripe_event_t *out);

#endif
