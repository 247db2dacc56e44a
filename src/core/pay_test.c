#include "core/pay_test.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/card.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/money.h"

#define REMEMBERED_MAX 4096 /* idempotency keys remembered; the oldest is forgotten first */
#define KEY_MAX 256

/* The cards that do something other than succeed, recognised by brand and last four (the
 * provider keeps no more of a card than that). `at_setup`: the zero-amount check made when the
 * card is added already fails, as Stripe's SetupIntent does for these numbers; the others are
 * saved and behave as shown when charged. */
static const struct {
    const char *number;
    gh_pay_status_t status;
    bool at_setup;
    const char *code, *message;
} special[] = {
    {"4000000000000002", GH_PAY_DECLINED, true, "card_declined", "Your card was declined."},
    {"4000000000000341", GH_PAY_DECLINED, false, "card_declined", "Your card was declined."},
    {"4000000000009995", GH_PAY_DECLINED, false, "insufficient_funds",
     "Your card has insufficient funds."},
    {"4000000000000069", GH_PAY_DECLINED, true, "expired_card", "Your card has expired."},
    {"4000000000000127", GH_PAY_DECLINED, true, "incorrect_cvc",
     "Your card's security code is incorrect."},
    {"4000000000000259", GH_PAY_PENDING, false, "processing",
     "The card network did not answer in time; the payment is still processing."},
};

typedef struct {
    char key[KEY_MAX];
    gh_pay_result_t result;
} remembered_t;

typedef struct {
    gh_pay_t base;
    pthread_mutex_t lock;
    remembered_t *seen; /* a ring of REMEMBERED_MAX */
    size_t next, count;
} pay_test_t;

static gh_err_t card_from_details(gh_pay_t *p, const char *number, int exp_month, int exp_year,
                                  const char *cvc, int64_t now, gh_card_t *out, char *msg,
                                  size_t msg_size)
{
    (void)p;
    char digits[GH_CARD_NUMBER_SIZE];
    if (!number || gh_card_normalize(number, digits)) {
        snprintf(msg, msg_size, "The card number must be %d to %d digits (spaces and dashes "
                                "between groups are fine).", GH_CARD_DIGITS_MIN,
                 GH_CARD_DIGITS_MAX);
        return GH_EINVAL;
    }
    if (!gh_card_luhn_ok(digits)) {
        snprintf(msg, msg_size, "The card number is not valid: check it for typos.");
        return GH_EINVAL;
    }
    const char *brand = gh_card_brand(digits);
    if (!brand) {
        snprintf(msg, msg_size, "The card number is not one of the brands accepted here (Visa, "
                                "Mastercard, American Express, Discover, Diners Club, JCB, "
                                "UnionPay).");
        return GH_EINVAL;
    }
    if (exp_month < 1 || exp_month > 12) {
        snprintf(msg, msg_size, "exp_month must be a month from 1 to 12.");
        return GH_EINVAL;
    }
    if (exp_year < 2000 || exp_year > 2099) {
        snprintf(msg, msg_size, "exp_year must be the four-digit year, like 2030.");
        return GH_EINVAL;
    }
    if (gh_card_expired(exp_month, exp_year, now)) {
        snprintf(msg, msg_size, "The card expired at the end of %02d/%d.", exp_month, exp_year);
        return GH_EINVAL;
    }
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    if (exp_year > tm.tm_year + 1900 + 20) {
        snprintf(msg, msg_size, "The expiry %02d/%d is too far in the future.", exp_month,
                 exp_year);
        return GH_EINVAL;
    }
    size_t want = (size_t)gh_card_cvc_digits(brand);
    bool cvc_ok = cvc && strlen(cvc) == want;
    for (const char *c = cvc; cvc_ok && *c; c++)
        cvc_ok = *c >= '0' && *c <= '9';
    if (!cvc_ok) {
        snprintf(msg, msg_size, "The security code (CVC) must be %zu digits for %s.", want,
                 gh_card_brand_label(brand));
        return GH_EINVAL;
    }
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        if (special[i].at_setup && !strcmp(digits, special[i].number)) {
            snprintf(msg, msg_size, "%s The card was not saved: use another card.",
                     special[i].message);
            gh_log_info("pay(test): card check for a card ending %s: %s", digits + 12,
                        special[i].code);
            return GH_EBILLING;
        }
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->brand, sizeof(out->brand), "%s", brand);
    snprintf(out->last4, sizeof(out->last4), "%s", digits + strlen(digits) - 4);
    out->exp_month = exp_month;
    out->exp_year = exp_year;
    return GH_OK;
}

static gh_err_t setup_start(gh_pay_t *p, const char *org_id, const char *billing_email,
                            char customer_ref[GH_PAY_REF_MAX],
                            char client_secret[GH_PAY_SECRET_MAX], char *msg, size_t msg_size)
{
    (void)p, (void)org_id, (void)billing_email, (void)customer_ref, (void)client_secret;
    snprintf(msg, msg_size, "The test provider takes card details directly: POST "
                            "/v1/organizations/billing/payment_method.");
    return GH_EINVAL;
}

static gh_err_t setup_finish(gh_pay_t *p, const char *customer_ref, const char *setup_ref,
                             gh_card_t *out, char *msg, size_t msg_size)
{
    (void)p, (void)customer_ref, (void)setup_ref, (void)out;
    snprintf(msg, msg_size, "The test provider takes card details directly: POST "
                            "/v1/organizations/billing/payment_method.");
    return GH_EINVAL;
}

/* The outcome of a first attempt with `card`. */
static void first_outcome(const gh_card_t *card, gh_pay_result_t *out)
{
    out->status = GH_PAY_SUCCEEDED;
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        const char *n = special[i].number;
        if (!strcmp(card->brand, "visa") && !strcmp(card->last4, n + strlen(n) - 4)) {
            out->status = special[i].status;
            snprintf(out->decline_code, sizeof(out->decline_code), "%s", special[i].code);
            snprintf(out->message, sizeof(out->message), "%s", special[i].message);
        }
    }
}

static gh_err_t charge(gh_pay_t *p, const gh_pay_charge_t *req, gh_pay_result_t *out)
{
    pay_test_t *t = (pay_test_t *)p;
    assert(req->amount_nusd > 0 && req->amount_nusd % (GH_NUSD_PER_USD / 100) == 0);
    assert(req->idempotency_key && req->card);
    memset(out, 0, sizeof(*out));
    if (strlen(req->idempotency_key) >= KEY_MAX)
        return GH_EINVAL;

    /* The charge id follows from the key alone, so a retry after a crash names the same
     * charge. */
    char hash[GH_SHA256_HEX_MAX];
    gh_sha256_hex(hash, req->idempotency_key, strlen(req->idempotency_key));
    pthread_mutex_lock(&t->lock);
    remembered_t *r = NULL;
    for (size_t i = 0; i < t->count && !r; i++)
        if (!strcmp(t->seen[i].key, req->idempotency_key))
            r = &t->seen[i];
    if (r) {
        /* A charge that was processing has settled by the time anyone asks again. */
        if (r->result.status == GH_PAY_PENDING) {
            memset(&r->result, 0, sizeof(r->result));
            r->result.status = GH_PAY_SUCCEEDED;
            snprintf(r->result.ref, sizeof(r->result.ref), "test_ch_%.24s", hash);
        }
        *out = r->result;
        pthread_mutex_unlock(&t->lock);
        return GH_OK;
    }
    first_outcome(req->card, out);
    snprintf(out->ref, sizeof(out->ref), "test_ch_%.24s", hash);
    r = &t->seen[t->next];
    snprintf(r->key, sizeof(r->key), "%s", req->idempotency_key);
    r->result = *out;
    t->next = (t->next + 1) % REMEMBERED_MAX;
    if (t->count < REMEMBERED_MAX)
        t->count++;
    pthread_mutex_unlock(&t->lock);
    char amount[GH_MONEY_TEXT_MAX];
    gh_money_format_usd(req->amount_nusd, amount);
    gh_log_info("pay(test): charge %s of $%s for %s: %s", out->ref, amount, req->purchase_id,
                out->status == GH_PAY_SUCCEEDED  ? "succeeded"
                : out->status == GH_PAY_DECLINED ? out->decline_code
                                                 : "pending");
    return GH_OK;
}

static void destroy(gh_pay_t *p)
{
    pay_test_t *t = (pay_test_t *)p;
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->seen);
    free(t);
}

static const gh_pay_ops_t ops = {
    .name = "test",
    .test_mode = true,
    .card_from_details = card_from_details,
    .setup_start = setup_start,
    .setup_finish = setup_finish,
    .charge = charge,
    .destroy = destroy,
};

gh_pay_t *gh_pay_test_new(void)
{
    pay_test_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->seen = calloc(REMEMBERED_MAX, sizeof(*t->seen));
    if (!t->seen) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->base.ops = &ops;
    return &t->base;
}
