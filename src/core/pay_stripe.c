/* The Stripe provider (see core/pay_stripe.h for what each operation promises). The file has
 * three parts: small text helpers (ids, form bodies, scrubbing provider messages), one
 * function that makes an HTTP request to Stripe, and the four operations, which only build
 * a request and interpret the answer. */
#include "core/pay_stripe.h"

#include <assert.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/curl_body.h"
#include "lib/log.h"
#include "lib/stripe_sig.h"

#define NUSD_PER_CENT INT64_C(10000000)
#define FORM_MAX 4096           /* a request body; ours are a few hundred bytes */
#define IDEMPOTENCY_KEY_MAX 255 /* Stripe's limit */
#define AUTH_PREFIX "Authorization: Bearer "
#define REDACTED "[redacted]"

typedef struct {
    gh_pay_t base; /* first, so that a gh_pay_t * from the caller is a stripe_t * */
    char api_base[GH_PAY_STRIPE_URL_MAX];
    char auth[sizeof(AUTH_PREFIX) + GH_PAY_STRIPE_KEY_MAX]; /* the only copy of the key */
    char webhook_secret[GH_PAY_STRIPE_WEBHOOK_SECRET_MAX + 1]; /* "" when none */
    long timeout_ms;
} stripe_t;

/* ---- text helpers ---- */

static void set_msg(char *msg, size_t size, const char *text)
{
    if (size)
        snprintf(msg, size, "%s", text);
}

/* A Stripe object id as we accept it: 1 to GH_PAY_REF_MAX - 1 letters, digits and '_'.
 * Checked before an id goes into a URL path or a form, and on ids Stripe sends back. */
static bool id_ok(const char *s)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n + 1 >= GH_PAY_REF_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* Printable ASCII without spaces, 1..max characters: what may go into a header value. */
static bool token_ok(const char *s, size_t max)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= max || s[n] <= 0x20 || s[n] >= 0x7f)
            return false;
    return true;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* The string value of `v`, or of `v`'s "id" when Stripe expanded the object; else NULL. */
static const char *ref_of(json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "id");
    return json_string_value(v);
}

static bool secret_word_at(const char *p)
{
    return !strncmp(p, "sk_", 3) || !strncmp(p, "rk_", 3) || !strncmp(p, "whsec_", 6);
}

/* Copies a message from Stripe into `dst` for a person or the log: control characters
 * become spaces, and every word that starts like a Stripe secret ("sk_…", "rk_…",
 * "whsec_…") becomes "[redacted]", whatever Stripe masked itself. Redaction happens
 * before truncation, so a key cut in half cannot slip through; truncation keeps whole UTF-8
 * characters (jansson has checked the encoding). */
static void scrub(char *dst, size_t size, const char *src)
{
    if (!size)
        return;
    size_t o = 0;
    const char *p = src ? src : "";
    while (*p) {
        if (secret_word_at(p)) {
            size_t n = sizeof(REDACTED) - 1;
            if (o + n >= size)
                break;
            memcpy(dst + o, REDACTED, n);
            o += n;
            p += strcspn(p, " \t\r\n\"',;()[]<>");
            continue;
        }
        unsigned char c = (unsigned char)*p;
        size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (strnlen(p, n) < n || o + n >= size)
            break;
        if (n == 1 && (c < 0x20 || c == 0x7f))
            dst[o] = ' ';
        else
            memcpy(dst + o, p, n);
        o += n;
        p += n;
    }
    dst[o] = '\0';
}

/* A form body with a fixed capacity. `overflow` and `nomem` stick once set. */
typedef struct {
    char buf[FORM_MAX];
    size_t len;
    bool overflow;
    bool nomem;
} form_t;

static void form_add(form_t *f, const char *name, const char *value)
{
    char *enc = curl_easy_escape(NULL, value, 0);
    if (!enc) {
        f->nomem = true;
        return;
    }
    int n = snprintf(f->buf + f->len, sizeof(f->buf) - f->len, "%s%s=%s", f->len ? "&" : "",
                     name, enc);
    curl_free(enc);
    if (n < 0 || (size_t)n >= sizeof(f->buf) - f->len) {
        f->overflow = true;
        f->buf[f->len] = '\0';
        return;
    }
    f->len += (size_t)n;
}

/* ---- HTTP ---- */

typedef struct {
    long status;  /* the HTTP status */
    json_t *json; /* the body when it is a JSON object, else NULL; owned */
} reply_t;

/* Sends one request to Stripe: a POST of the form `form` when it is not NULL, else a GET,
 * with `idempotency_key` as Idempotency-Key when not NULL. GH_OK when an HTTP answer
 * arrived, whatever its status (the caller frees `r->json`); GH_ETIMEOUT when none came in
 * time; GH_EUNAVAIL when Stripe could not be reached or its answer could not be read
 * (too large, cut short); GH_ENOMEM. `what` names the request in the log. */
static gh_err_t stripe_call(const stripe_t *s, const char *what, const char *path,
                            const char *form, const char *idempotency_key, reply_t *r)
{
    memset(r, 0, sizeof(*r));
    char url[GH_PAY_STRIPE_URL_MAX + 2 * GH_PAY_REF_MAX];
    int n = snprintf(url, sizeof(url), "%s%s", s->api_base, path);
    assert(n > 0 && (size_t)n < sizeof(url));
    (void)n;

    CURL *c = curl_easy_init();
    if (!c)
        return GH_ENOMEM;
    gh_err_t rc = GH_OK;
    gh_curl_body_t body = {.max = GH_PAY_STRIPE_BODY_MAX};
    char idem[sizeof("Idempotency-Key: ") + IDEMPOTENCY_KEY_MAX];
    struct curl_slist *headers = curl_slist_append(NULL, s->auth), *more = headers;
    if (more)
        more = curl_slist_append(headers, "Accept: application/json");
    if (more && idempotency_key) {
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", idempotency_key);
        more = curl_slist_append(headers, idem);
    }
    if (!more) {
        rc = GH_ENOMEM;
        goto out_cleanup;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)GH_PAY_STRIPE_BODY_MAX);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "gatehouse");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gh_curl_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    if (form) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        gh_log_warn("stripe: %s: %s", what,
                    cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED
                        ? "the answer is too large"
                        : curl_easy_strerror(cc));
        rc = cc == CURLE_OPERATION_TIMEDOUT ? GH_ETIMEOUT
             : cc == CURLE_OUT_OF_MEMORY    ? GH_ENOMEM
                                            : GH_EUNAVAIL;
        goto out_cleanup;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (body.data) {
        r->json = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, NULL);
        if (r->json && !json_is_object(r->json)) {
            json_decref(r->json);
            r->json = NULL;
        }
    }
out_cleanup:
    /* libcurl frees its copies of the headers without wiping them; the first holds the key. */
    if (headers)
        sodium_memzero(headers->data, strlen(headers->data));
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    gh_curl_body_free(&body, false);
    return rc;
}

/* Stripe's error object ({"error":{"type","code","decline_code","message","param"}}): the
 * members are borrowed from `json` and NULL when absent. */
typedef struct {
    const char *type, *code, *decline_code, *message, *param;
    json_t *payment_intent;
} stripe_error_t;

static stripe_error_t error_of(json_t *json)
{
    json_t *e = json_object_get(json, "error");
    return (stripe_error_t){
        .type = json_string_value(json_object_get(e, "type")),
        .code = json_string_value(json_object_get(e, "code")),
        .decline_code = json_string_value(json_object_get(e, "decline_code")),
        .message = json_string_value(json_object_get(e, "message")),
        .param = json_string_value(json_object_get(e, "param")),
        .payment_intent = json_object_get(e, "payment_intent"),
    };
}

/* Logs a non-2xx answer: status, Stripe's error type and code, and its message scrubbed. */
static void log_refusal(const char *what, const reply_t *r)
{
    stripe_error_t e = error_of(r->json);
    char type[64], code[64], text[GH_PAY_MSG_MAX];
    scrub(type, sizeof(type), e.type ? e.type : "no error type");
    scrub(code, sizeof(code), e.code ? e.code : "");
    scrub(text, sizeof(text), e.message ? e.message : "(no error message)");
    gh_log_warn("stripe: %s: HTTP %ld, %s%s%s: %s", what, r->status, type, code[0] ? " " : "",
                code, text);
}

/* What setup_start and setup_finish return when a request did not get a usable answer. */
static gh_err_t unavailable(gh_err_t rc, char *msg, size_t msg_size)
{
    if (rc == GH_ENOMEM) {
        set_msg(msg, msg_size, "Out of memory.");
        return rc;
    }
    set_msg(msg, msg_size,
            rc == GH_ETIMEOUT ? "The payment provider did not answer in time. Please try again."
                              : "The payment provider cannot be reached right now. Please try "
                                "again in a few minutes.");
    return rc == GH_ETIMEOUT ? GH_ETIMEOUT : GH_EUNAVAIL;
}

/* Maps a non-2xx answer for setup_start and setup_finish: Stripe's own trouble is
 * GH_EUNAVAIL, a refusal of the request is GH_EBILLING. Logs it. */
static gh_err_t refused(const char *what, const reply_t *r, char *msg, size_t msg_size)
{
    log_refusal(what, r);
    if (r->status >= 500 || r->status == 429 || r->status == 409 || r->status < 400)
        return unavailable(GH_EUNAVAIL, msg, msg_size);
    set_msg(msg, msg_size,
            "The payment provider refused the request. Please contact the operator of this "
            "Gatehouse.");
    return GH_EBILLING;
}

/* ---- the operations ---- */

static gh_err_t stripe_card_from_details(gh_pay_t *p, const char *number, int exp_month,
                                         int exp_year, const char *cvc, int64_t now,
                                         gh_card_t *out, char *msg, size_t msg_size)
{
    (void)p, (void)number, (void)exp_month, (void)exp_year, (void)cvc, (void)now;
    memset(out, 0, sizeof(*out));
    set_msg(msg, msg_size, "card numbers are entered in Stripe's form");
    return GH_EINVAL;
}

/* Creates the customer for `org_id` and writes its id into `customer_ref`. */
static gh_err_t create_customer(stripe_t *s, const char *org_id, const char *email,
                                char customer_ref[GH_PAY_REF_MAX], char *msg, size_t msg_size)
{
    /* The same org and email within Stripe's idempotency window (24 hours) give the same
     * customer, so two clicks on "Add a card" do not make two customers. */
    char email_hash[GH_SHA256_HEX_MAX], key[IDEMPOTENCY_KEY_MAX + 1];
    gh_sha256_hex(email_hash, email, strlen(email));
    int n = snprintf(key, sizeof(key), "gh-customer-%s-%.16s", org_id, email_hash);
    if (n < 0 || (size_t)n >= sizeof(key)) {
        set_msg(msg, msg_size, "The organization id is too long.");
        return GH_EINVAL;
    }
    form_t f = {0};
    form_add(&f, "email", email);
    form_add(&f, "metadata[org_id]", org_id);
    if (f.nomem || f.overflow) {
        set_msg(msg, msg_size, f.nomem ? "Out of memory." : "The billing email is too long.");
        return f.nomem ? GH_ENOMEM : GH_EINVAL;
    }
    reply_t r;
    gh_err_t rc = stripe_call(s, "creating a customer", "/v1/customers", f.buf, key, &r);
    if (rc)
        return unavailable(rc, msg, msg_size);
    if (r.status < 200 || r.status > 299)
        rc = refused("creating a customer", &r, msg, msg_size);
    else if (!id_ok(ref_of(r.json)))
        rc = unavailable(GH_EUNAVAIL, msg, msg_size);
    else
        snprintf(customer_ref, GH_PAY_REF_MAX, "%s", ref_of(r.json));
    json_decref(r.json);
    return rc;
}

static gh_err_t stripe_setup_start(gh_pay_t *p, const char *org_id, const char *billing_email,
                                   char customer_ref[GH_PAY_REF_MAX],
                                   char client_secret[GH_PAY_SECRET_MAX], char *msg,
                                   size_t msg_size)
{
    stripe_t *s = (stripe_t *)p;
    client_secret[0] = '\0';
    set_msg(msg, msg_size, "");
    if (!org_id || !*org_id || has_control(org_id) || !billing_email || !*billing_email ||
        has_control(billing_email) || (customer_ref[0] && !id_ok(customer_ref))) {
        set_msg(msg, msg_size, "The organization, billing email or customer id is not valid.");
        return GH_EINVAL;
    }
    gh_err_t rc;
    if (!customer_ref[0]) {
        rc = create_customer(s, org_id, billing_email, customer_ref, msg, msg_size);
        if (rc)
            return rc;
    }
    form_t f = {0};
    form_add(&f, "customer", customer_ref);
    form_add(&f, "usage", "off_session");
    form_add(&f, "payment_method_types[]", "card");
    form_add(&f, "metadata[org_id]", org_id);
    if (f.nomem || f.overflow) {
        set_msg(msg, msg_size, f.nomem ? "Out of memory." : "The organization id is too long.");
        return f.nomem ? GH_ENOMEM : GH_EINVAL;
    }
    reply_t r;
    rc = stripe_call(s, "creating a SetupIntent", "/v1/setup_intents", f.buf, NULL, &r);
    if (rc)
        return unavailable(rc, msg, msg_size);
    const char *cs = json_string_value(json_object_get(r.json, "client_secret"));
    stripe_error_t e = error_of(r.json);
    if ((r.status == 400 || r.status == 404) && e.code && !strcmp(e.code, "resource_missing") &&
        e.param && !strcmp(e.param, "customer")) {
        log_refusal("creating a SetupIntent", &r);
        set_msg(msg, msg_size, "The payment provider no longer knows this organization's "
                               "customer.");
        rc = GH_ENOTFOUND;
    } else if (r.status < 200 || r.status > 299) {
        rc = refused("creating a SetupIntent", &r, msg, msg_size);
    } else if (!token_ok(cs, GH_PAY_SECRET_MAX - 1)) {
        rc = unavailable(GH_EUNAVAIL, msg, msg_size);
    } else {
        snprintf(client_secret, GH_PAY_SECRET_MAX, "%s", cs);
    }
    json_decref(r.json);
    return rc;
}

/* Fills `out` from a PaymentMethod object; false when it is not a card we can describe. */
static bool card_of(json_t *pm, gh_card_t *out)
{
    json_t *card = json_object_get(pm, "card");
    const char *brand = json_string_value(json_object_get(card, "brand"));
    const char *last4 = json_string_value(json_object_get(card, "last4"));
    json_t *month = json_object_get(card, "exp_month"), *year = json_object_get(card, "exp_year");
    if (!last4 || strlen(last4) != 4 || strspn(last4, "0123456789") != 4 || !json_is_integer(month) ||
        !json_is_integer(year) || json_integer_value(month) < 1 || json_integer_value(month) > 12 ||
        json_integer_value(year) < 1000 || json_integer_value(year) > 9999)
        return false;
    /* A brand we cannot hold is shown as "unknown" rather than refusing a good card. */
    bool brand_ok = brand && *brand && strlen(brand) < sizeof(out->brand) &&
                    strspn(brand, "abcdefghijklmnopqrstuvwxyz_") == strlen(brand);
    snprintf(out->brand, sizeof(out->brand), "%s", brand_ok ? brand : "unknown");
    snprintf(out->last4, sizeof(out->last4), "%s", last4);
    out->exp_month = (int)json_integer_value(month);
    out->exp_year = (int)json_integer_value(year);
    return true;
}

static gh_err_t stripe_setup_finish(gh_pay_t *p, const char *customer_ref, const char *setup_ref,
                                    gh_card_t *out, char *msg, size_t msg_size)
{
    stripe_t *s = (stripe_t *)p;
    memset(out, 0, sizeof(*out));
    set_msg(msg, msg_size, "");
    if (!id_ok(customer_ref) || !id_ok(setup_ref) || strncmp(setup_ref, "seti_", 5) != 0) {
        set_msg(msg, msg_size, "This card setup is unknown.");
        return GH_EINVAL;
    }
    char path[2 * GH_PAY_REF_MAX];
    snprintf(path, sizeof(path), "/v1/setup_intents/%s", setup_ref);
    reply_t r;
    gh_err_t rc = stripe_call(s, "reading a SetupIntent", path, NULL, NULL, &r);
    if (rc)
        return unavailable(rc, msg, msg_size);
    const char *status = json_string_value(json_object_get(r.json, "status"));
    const char *customer = ref_of(json_object_get(r.json, "customer"));
    const char *pm_id = ref_of(json_object_get(r.json, "payment_method"));
    if (r.status == 404) {
        log_refusal("reading a SetupIntent", &r);
        set_msg(msg, msg_size, "This card setup is unknown.");
        rc = GH_EINVAL;
    } else if (r.status < 200 || r.status > 299) {
        rc = refused("reading a SetupIntent", &r, msg, msg_size);
    } else if (!status) {
        rc = unavailable(GH_EUNAVAIL, msg, msg_size);
    } else if (!customer || strcmp(customer, customer_ref) != 0) {
        gh_log_warn("stripe: SetupIntent %s belongs to another customer than %s", setup_ref,
                    customer_ref);
        set_msg(msg, msg_size, "This card setup belongs to another account.");
        rc = GH_EINVAL;
    } else if (strcmp(status, "succeeded") != 0) {
        set_msg(msg, msg_size,
                !strcmp(status, "processing")
                    ? "The card is still being checked. Please try again in a moment."
                    : "The card was not saved. Please enter it again.");
        rc = GH_EINVAL;
    } else if (!id_ok(pm_id)) {
        rc = unavailable(GH_EUNAVAIL, msg, msg_size);
    } else {
        snprintf(out->ref, sizeof(out->ref), "%s", pm_id);
    }
    json_decref(r.json);
    if (rc)
        return rc;

    snprintf(path, sizeof(path), "/v1/payment_methods/%s", out->ref);
    rc = stripe_call(s, "reading a payment method", path, NULL, NULL, &r);
    if (rc) {
        memset(out, 0, sizeof(*out));
        return unavailable(rc, msg, msg_size);
    }
    const char *owner = ref_of(json_object_get(r.json, "customer"));
    if (r.status < 200 || r.status > 299) {
        rc = refused("reading a payment method", &r, msg, msg_size);
    } else if (owner && strcmp(owner, customer_ref) != 0) {
        gh_log_warn("stripe: payment method %s belongs to another customer than %s", out->ref,
                    customer_ref);
        set_msg(msg, msg_size, "This card belongs to another account.");
        rc = GH_EINVAL;
    } else if (!card_of(r.json, out)) {
        set_msg(msg, msg_size, "The saved payment method is not a card. Please enter a card.");
        rc = GH_EINVAL;
    }
    json_decref(r.json);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Why `req` cannot be sent, or NULL when it can. */
static const char *charge_problem(const gh_pay_charge_t *req)
{
    if (req->amount_nusd <= 0 || req->amount_nusd % NUSD_PER_CENT != 0)
        return "The amount must be a positive number of whole cents.";
    if (!token_ok(req->idempotency_key, IDEMPOTENCY_KEY_MAX))
        return "The idempotency key is missing or malformed.";
    if (!req->purchase_id || !*req->purchase_id || has_control(req->purchase_id) ||
        !req->org_id || !*req->org_id || has_control(req->org_id))
        return "The purchase or organization id is missing.";
    if (!id_ok(req->customer_ref))
        return "There is no payment provider customer for this organization.";
    if (!req->card || !id_ok(req->card->ref))
        return "There is no card on file.";
    if (req->description && has_control(req->description))
        return "The description holds control characters.";
    return NULL;
}

static void declined(gh_pay_result_t *out, const char *decline_code, const char *message)
{
    out->status = GH_PAY_DECLINED;
    scrub(out->decline_code, sizeof(out->decline_code),
          decline_code && *decline_code ? decline_code : "card_declined");
    scrub(out->message, sizeof(out->message),
          message && *message ? message : "Your card was declined.");
}

static void pending(gh_pay_result_t *out, const char *message)
{
    out->status = GH_PAY_PENDING;
    snprintf(out->message, sizeof(out->message), "%s", message);
}

#define PENDING_LATER                                                                      \
    "The payment is not confirmed yet; it will be settled shortly and never charged twice."

/* Interprets Stripe's answer to creating a PaymentIntent (see the table in the header). */
static void charge_outcome(const char *what, const reply_t *r, gh_pay_result_t *out)
{
    if (r->status >= 200 && r->status <= 299) {
        const char *id = ref_of(r->json);
        const char *status = json_string_value(json_object_get(r->json, "status"));
        if (id_ok(id))
            snprintf(out->ref, sizeof(out->ref), "%s", id);
        if (!out->ref[0] || !status) {
            gh_log_warn("stripe: %s: HTTP %ld without a readable PaymentIntent", what, r->status);
            pending(out, PENDING_LATER);
        } else if (!strcmp(status, "succeeded")) {
            out->status = GH_PAY_SUCCEEDED;
        } else if (!strcmp(status, "requires_payment_method")) {
            json_t *last = json_object_get(r->json, "last_payment_error");
            const char *code = json_string_value(json_object_get(last, "decline_code"));
            declined(out, code ? code : json_string_value(json_object_get(last, "code")),
                     json_string_value(json_object_get(last, "message")));
        } else if (!strcmp(status, "canceled")) {
            declined(out, "canceled", "The payment was canceled.");
        } else if (!strcmp(status, "requires_action")) {
            pending(out, "Your bank asks for additional authentication of this payment.");
        } else {
            pending(out, "The payment is being processed.");
        }
        return;
    }
    stripe_error_t e = error_of(r->json);
    if (id_ok(ref_of(e.payment_intent)))
        snprintf(out->ref, sizeof(out->ref), "%s", ref_of(e.payment_intent));
    if (r->status == 402) {
        declined(out, e.decline_code ? e.decline_code : e.code, e.message);
        gh_log_info("stripe: %s: declined (%s)", what, out->decline_code);
        return;
    }
    log_refusal(what, r);
    bool idempotency = e.type && !strcmp(e.type, "idempotency_error");
    if (!idempotency && (r->status == 400 || r->status == 404)) {
        /* This request was refused before anything happened (a deleted customer or card, a
         * bad request), and a retry of a request Stripe had acted on would have been answered
         * with the saved result instead. */
        declined(out, e.code ? e.code : e.type ? e.type : "provider_error", NULL);
        snprintf(out->message, sizeof(out->message),
                 "The payment provider refused the payment request; nothing was charged. "
                 "Please contact the operator of this Gatehouse.");
        return;
    }
    if (r->status == 401 || r->status == 403)
        gh_log_error("stripe: Stripe refuses the configured secret key (HTTP %ld): check "
                     "[billing] stripe_secret_key_env and the key's permissions",
                     r->status);
    /* 401 and 403 (checked before Stripe looks at the key, so they say nothing about an
     * earlier attempt), 5xx, 409 (the same key in flight), 429, an idempotency error: Stripe
     * may or may not have acted, so only a webhook or a retry with the same key can say. */
    pending(out, PENDING_LATER);
}

static gh_err_t stripe_charge(gh_pay_t *p, const gh_pay_charge_t *req, gh_pay_result_t *out)
{
    stripe_t *s = (stripe_t *)p;
    memset(out, 0, sizeof(*out));
    out->status = GH_PAY_PENDING;
    const char *problem = charge_problem(req);
    if (problem) {
        snprintf(out->message, sizeof(out->message), "%s", problem);
        return GH_EINVAL;
    }
    char cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)(req->amount_nusd / NUSD_PER_CENT));
    form_t f = {0};
    form_add(&f, "amount", cents);
    form_add(&f, "currency", "usd");
    form_add(&f, "customer", req->customer_ref);
    form_add(&f, "payment_method", req->card->ref);
    form_add(&f, "confirm", "true");
    form_add(&f, "off_session", req->off_session ? "true" : "false");
    if (req->description && *req->description)
        form_add(&f, "description", req->description);
    form_add(&f, "metadata[purchase_id]", req->purchase_id);
    form_add(&f, "metadata[org_id]", req->org_id);
    if (f.nomem || f.overflow) {
        snprintf(out->message, sizeof(out->message), "%s",
                 f.nomem ? "Out of memory." : "The description or an id is too long.");
        return f.nomem ? GH_ENOMEM : GH_EINVAL;
    }
    char what[160];
    snprintf(what, sizeof(what), "charging for purchase %.100s", req->purchase_id);
    reply_t r;
    gh_err_t rc = stripe_call(s, what, "/v1/payment_intents", f.buf, req->idempotency_key, &r);
    if (rc == GH_ENOMEM) {
        snprintf(out->message, sizeof(out->message), "Out of memory.");
        return rc;
    }
    if (rc) {
        pending(out, rc == GH_ETIMEOUT
                         ? "The payment provider did not answer in time. " PENDING_LATER
                         : "The payment provider could not be reached. " PENDING_LATER);
        return GH_OK;
    }
    charge_outcome(what, &r, out);
    json_decref(r.json);
    return GH_OK;
}

static void stripe_destroy(gh_pay_t *p)
{
    if (!p)
        return;
    sodium_memzero(p, sizeof(stripe_t));
    free(p);
}

static const gh_pay_ops_t ops_live = {
    .name = "stripe",
    .test_mode = false,
    .card_from_details = stripe_card_from_details,
    .setup_start = stripe_setup_start,
    .setup_finish = stripe_setup_finish,
    .charge = stripe_charge,
    .destroy = stripe_destroy,
};

static const gh_pay_ops_t ops_test = {
    .name = "stripe",
    .test_mode = true,
    .card_from_details = stripe_card_from_details,
    .setup_start = stripe_setup_start,
    .setup_finish = stripe_setup_finish,
    .charge = stripe_charge,
    .destroy = stripe_destroy,
};

/* https to anywhere; plain http only to this machine, where a fake Stripe runs in tests. */
static bool api_base_ok(const char *base, size_t len)
{
    if (len == 0 || len >= GH_PAY_STRIPE_URL_MAX || has_control(base) ||
        strpbrk(base, " ?#@\\"))
        return false;
    if (!strncmp(base, "https://", 8))
        return len > 8;
    static const char *const local[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        size_t n = strlen(local[i]);
        if (!strncmp(base, local[i], n) && (base[n] == '\0' || base[n] == ':' || base[n] == '/'))
            return true;
    }
    return false;
}

gh_err_t gh_pay_stripe_new(const gh_pay_stripe_opts_t *o, gh_pay_t **out, char *err,
                           size_t err_size)
{
    *out = NULL;
    const char *key = o->secret_key ? o->secret_key : "";
    size_t key_len = strnlen(key, GH_PAY_STRIPE_KEY_MAX + 1);
    if (!key_len) {
        set_msg(err, err_size, "the Stripe secret key is missing");
        return GH_EINVAL;
    }
    if (key_len > GH_PAY_STRIPE_KEY_MAX || key_len < 8 ||
        (strncmp(key, "sk_", 3) != 0 && strncmp(key, "rk_", 3) != 0) ||
        strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != key_len) {
        /* Never quote the key: this message goes to the log. */
        set_msg(err, err_size,
                "the Stripe secret key is not a Stripe secret key (sk_live_…, sk_test_… or rk_…)");
        return GH_EINVAL;
    }
    const char *whsec = o->webhook_secret ? o->webhook_secret : "";
    size_t whsec_len = strnlen(whsec, GH_PAY_STRIPE_WEBHOOK_SECRET_MAX + 1);
    if (whsec_len && (whsec_len > GH_PAY_STRIPE_WEBHOOK_SECRET_MAX || whsec_len < 8 ||
                      strncmp(whsec, "whsec_", 6) != 0 || !token_ok(whsec, whsec_len))) {
        set_msg(err, err_size, "the Stripe webhook secret is not a webhook signing secret "
                               "(whsec_…, from the webhook endpoint in Stripe's dashboard)");
        return GH_EINVAL;
    }
    const char *base = o->api_base && *o->api_base ? o->api_base : GH_PAY_STRIPE_API_BASE;
    size_t base_len = strnlen(base, GH_PAY_STRIPE_URL_MAX);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    char trimmed[GH_PAY_STRIPE_URL_MAX];
    snprintf(trimmed, sizeof(trimmed), "%.*s", (int)base_len, base);
    if (!api_base_ok(trimmed, base_len)) {
        set_msg(err, err_size,
                "the Stripe API base must be an https:// URL (or http:// to 127.0.0.1, "
                "localhost or [::1] for a local test server)");
        return GH_EINVAL;
    }
    stripe_t *s = calloc(1, sizeof(*s));
    if (!s) {
        set_msg(err, err_size, "out of memory");
        return GH_ENOMEM;
    }
    bool test = !strncmp(key, "sk_test_", 8) || !strncmp(key, "rk_test_", 8);
    s->base.ops = test ? &ops_test : &ops_live;
    snprintf(s->api_base, sizeof(s->api_base), "%s", trimmed);
    snprintf(s->auth, sizeof(s->auth), AUTH_PREFIX "%s", key);
    snprintf(s->webhook_secret, sizeof(s->webhook_secret), "%s", whsec);
    s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : GH_PAY_STRIPE_TIMEOUT_MS;
    *out = &s->base;
    return GH_OK;
}

bool gh_pay_is_stripe(const gh_pay_t *p)
{
    return p && (p->ops == &ops_live || p->ops == &ops_test);
}

/* ---- webhooks ---- */

gh_err_t gh_pay_stripe_webhook_verify(const gh_pay_t *p, const char *header,
                                      const char *payload, size_t payload_len, int64_t now)
{
    if (!gh_pay_is_stripe(p))
        return GH_EAUTH;
    const stripe_t *s = (const stripe_t *)p;
    if (!s->webhook_secret[0])
        return GH_EAUTH;
    return gh_stripe_sig_verify(header, payload ? payload : "", payload ? payload_len : 0,
                                s->webhook_secret, now, GH_STRIPE_SIG_TOLERANCE_S);
}

/* Copies the string `v` into `dst` when it fits whole and holds no control characters;
 * else leaves `dst` empty. */
static void copy_plain(char *dst, size_t size, json_t *v)
{
    const char *text = json_string_value(v);
    dst[0] = '\0';
    if (text && strlen(text) < size && !has_control(text))
        snprintf(dst, size, "%s", text);
}

gh_err_t gh_pay_stripe_event_parse(const char *payload, size_t payload_len,
                                   gh_stripe_event_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *evt = payload ? json_loadb(payload, payload_len, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(evt, "id"));
    const char *type = json_string_value(json_object_get(evt, "type"));
    json_t *obj = json_object_get(json_object_get(evt, "data"), "object");
    gh_err_t rc = GH_EINVAL;
    if (!json_is_object(evt) || !id_ok(id) || strncmp(id, "evt_", 4) != 0 || !type ||
        !*type || strlen(type) >= sizeof(out->type) || has_control(type))
        goto out;
    snprintf(out->id, sizeof(out->id), "%s", id);
    snprintf(out->type, sizeof(out->type), "%s", type);
    out->livemode = json_is_true(json_object_get(evt, "livemode"));
    bool payment = !strcmp(type, "payment_intent.succeeded") ||
                   !strcmp(type, "payment_intent.payment_failed") ||
                   !strcmp(type, "payment_intent.canceled");
    bool setup = !strcmp(type, "setup_intent.succeeded");
    if (!payment && !setup) {
        rc = GH_OK;
        goto out;
    }
    const char *oid = json_string_value(json_object_get(obj, "id"));
    if (!json_is_object(obj) || !id_ok(oid) || strncmp(oid, payment ? "pi_" : "seti_",
                                                      payment ? 3 : 5) != 0)
        goto out;
    out->kind = payment ? GH_STRIPE_EVENT_PAYMENT : GH_STRIPE_EVENT_SETUP;
    snprintf(out->object_id, sizeof(out->object_id), "%s", oid);
    const char *customer = ref_of(json_object_get(obj, "customer"));
    if (id_ok(customer))
        snprintf(out->customer, sizeof(out->customer), "%s", customer);
    json_t *meta = json_object_get(obj, "metadata");
    copy_plain(out->purchase_id, sizeof(out->purchase_id), json_object_get(meta, "purchase_id"));
    copy_plain(out->org_id, sizeof(out->org_id), json_object_get(meta, "org_id"));
    rc = GH_OK;
    if (setup)
        goto out;
    json_t *amount = json_object_get(obj, "amount");
    if (json_is_integer(amount) && json_integer_value(amount) > 0 &&
        json_integer_value(amount) <= INT64_MAX / NUSD_PER_CENT)
        out->amount_nusd = (int64_t)json_integer_value(amount) * NUSD_PER_CENT;
    copy_plain(out->currency, sizeof(out->currency), json_object_get(obj, "currency"));
    snprintf(out->result.ref, sizeof(out->result.ref), "%s", oid);
    if (!strcmp(type, "payment_intent.succeeded")) {
        out->result.status = GH_PAY_SUCCEEDED;
    } else if (!strcmp(type, "payment_intent.canceled")) {
        declined(&out->result, "canceled", "The payment was canceled.");
    } else {
        json_t *last = json_object_get(obj, "last_payment_error");
        const char *code = json_string_value(json_object_get(last, "decline_code"));
        declined(&out->result, code ? code : json_string_value(json_object_get(last, "code")),
                 json_string_value(json_object_get(last, "message")));
    }
out:
    json_decref(evt);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}
