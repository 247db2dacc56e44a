/* Payment providers: one interface, chosen in gatehouse.ini ([billing] provider = test|stripe).
 * Billing (src/core/billing.c) decides what to charge and records it; a provider only talks to
 * the payment network. Amounts are nano-USD and always whole cents (billing rejects anything
 * else before a provider sees it).
 *
 * Threads: a provider is shared by every control-plane thread; its functions must be safe to
 * call concurrently. They may block on the network (Stripe: libcurl with the configured
 * timeout) and must never be called inside a store transaction. */
#ifndef GH_CORE_PAY_H
#define GH_CORE_PAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define GH_PAY_REF_MAX 128   /* provider object ids: pm_…, pi_…, cus_…, seti_… */
#define GH_PAY_SECRET_MAX 256 /* a SetupIntent client_secret */
#define GH_PAY_MSG_MAX 256

/* What Gatehouse keeps of a card: never the number or the CVC. */
typedef struct gh_card {
    char brand[16];           /* "visa", "mastercard", "amex", "discover", … */
    char last4[5];
    int exp_month;            /* 1..12 */
    int exp_year;             /* four digits */
    char ref[GH_PAY_REF_MAX]; /* the provider's payment method id ("" for the test provider) */
} gh_card_t;

typedef enum {
    GH_PAY_SUCCEEDED, /* money taken */
    GH_PAY_DECLINED,  /* the card said no; `message`/`decline_code` say why; nothing taken */
    GH_PAY_PENDING,   /* not known yet (timeout, processing): resolve later, never guess */
} gh_pay_status_t;

typedef struct gh_pay_charge {
    const char *idempotency_key; /* the purchase id: a retry with the same key never charges twice */
    const char *purchase_id;     /* sent as metadata so webhooks can find the purchase */
    const char *org_id;
    int64_t amount_nusd;         /* whole cents, > 0 */
    const char *description;     /* "Gatehouse credits" */
    const char *customer_ref;    /* the provider's customer id ("" for test) */
    const gh_card_t *card;       /* the card on file */
    bool off_session;            /* auto-reload: nobody is at the keyboard */
} gh_pay_charge_t;

typedef struct gh_pay_result {
    gh_pay_status_t status;
    char ref[GH_PAY_REF_MAX];           /* pi_… (Stripe), "test_ch_…" (test) */
    char decline_code[64];              /* "card_declined", "insufficient_funds", … */
    char message[GH_PAY_MSG_MAX];       /* for a person: "Your card was declined." */
} gh_pay_result_t;

typedef struct gh_pay gh_pay_t;

typedef struct gh_pay_ops {
    const char *name; /* "test" or "stripe" */
    bool test_mode;   /* the console marks the organization as in test mode */

    /* Test provider only (Stripe returns GH_EINVAL: card numbers never reach Gatehouse there).
     * Validates number (Luhn, length, known brand), expiry (not in the past at `now`) and CVC
     * format; GH_EINVAL with a message a person can act on. Then verifies the card the way a
     * zero-amount check (Stripe's SetupIntent) does: the test numbers that Stripe declines at
     * setup (card_declined, expired_card, incorrect_cvc) give GH_EBILLING with the network's
     * message, so they are never saved; insufficient funds and "attaches, then declines"
     * (4000 0000 0000 0341) pass here and decline at charge time, as with Stripe. */
    gh_err_t (*card_from_details)(gh_pay_t *p, const char *number, int exp_month, int exp_year,
                                  const char *cvc, int64_t now, gh_card_t *out, char *msg,
                                  size_t msg_size);

    /* Stripe only: makes sure the organization has a customer (creating one when
     * `customer_ref` is empty, writing the new id back) and creates a SetupIntent for it. */
    gh_err_t (*setup_start)(gh_pay_t *p, const char *org_id, const char *billing_email,
                            char customer_ref[GH_PAY_REF_MAX],
                            char client_secret[GH_PAY_SECRET_MAX], char *msg, size_t msg_size);

    /* Stripe only: the card a succeeded SetupIntent saved (brand, last4, expiry, pm_ id).
     * GH_EINVAL when the SetupIntent did not succeed or belongs to another customer. */
    gh_err_t (*setup_finish)(gh_pay_t *p, const char *customer_ref, const char *setup_ref,
                             gh_card_t *out, char *msg, size_t msg_size);

    /* Charges the card. Returns GH_OK with the outcome in `out` (succeeded, declined or
     * pending); an error only for a request that could not be made at all, in which case the
     * caller treats the purchase as pending too. */
    gh_err_t (*charge)(gh_pay_t *p, const gh_pay_charge_t *req, gh_pay_result_t *out);

    void (*destroy)(gh_pay_t *p);
} gh_pay_ops_t;

struct gh_pay {
    const gh_pay_ops_t *ops;
};

#endif
