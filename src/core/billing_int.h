/* Internal to billing's files (core/billing*.c): the scheduler's struct, the limits they
 * share and the helpers one part calls in another. Nothing outside them includes this. */
#ifndef GH_CORE_BILLING_INT_H
#define GH_CORE_BILLING_INT_H

#include <pthread.h>
#include <stdio.h>

#include "core/billing.h"
#include "lib/money.h"

#define CENT_NUSD (GH_NUSD_PER_USD / 100)
#define INFLIGHT_MAX 256 /* purchases being charged at once in this process */
#define AMOUNT_LIMIT_NUSD (1000000 * GH_NUSD_PER_USD) /* thresholds and grants */
#define REVERSE_CHARGE_LABEL "VAT 0% (reverse charge)"

/* "$12.50" into `buf`. */
static inline const char *usd(int64_t nusd, char buf[GH_MONEY_TEXT_MAX + 1])
{
    char text[GH_MONEY_TEXT_MAX];
    gh_money_format_usd(nusd, text);
    snprintf(buf, GH_MONEY_TEXT_MAX + 1, "$%s", text);
    return buf;
}

struct gh_billing {
    gh_app_t *app;
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* the scheduler waits here between passes */
    pthread_cond_t settled; /* requests waiting for a purchase another thread is charging */
    bool kicked, stopping, started;
    bool db_down_logged; /* a pass met an unavailable database, and said so once */
    pthread_t thread;
    int64_t started_at; /* purchases last attempted before this belong to a previous run */
    char inflight[INFLIGHT_MAX][GH_ID_MAX];
    size_t ninflight;
    gh_billing_stats_t stats;
};

/* ---- shared helpers (defined in the file named by their section) ---- */


void gh_billing_date_utc(int64_t t, char out[16]);

int64_t gh_billing_expiry_s(const gh_config_t *cfg);

void gh_billing_system_actor(gh_actor_t *a, const char *org_id, const char *label);

/* The tax on a purchase of `amount` by `org`: no tax with a buyer VAT ID in another EU
 * country than an EU seller (reverse charge), else the configured rate; a seller registered
 * for VAT says "reverse charge" even when it charges no tax at home. */
void gh_billing_tax_for(const gh_config_t *cfg, const gh_org_settings_t *org, int64_t amount,
                        int64_t *tax, char label[64]);

/* Queues mail to the organization's billing email; with `contacts`, or when it has none, also
 * its admins and billing members. On `db`, in the caller's transaction: the mail exists exactly
 * when the change it reports does (gh_outbox_kick after the commit sends it). */
gh_err_t gh_billing_mail_org(gh_app_t *app, gh_db_t *db, const char *org_id, bool contacts,
                             const char *subject, const char *body);

/* Marks `id` as being charged by the calling thread; false when another thread is, or when
 * too many are. */
bool gh_billing_claim(gh_billing_t *b, const char *id);

void gh_billing_release(gh_billing_t *b, const char *id);

/* Waits (bounded) while another thread is charging `id`; true when it is no longer. */
bool gh_billing_wait_settled(gh_billing_t *b, const char *id, int64_t timeout_ms);

/* Opens a lot of `amount` (a purchase or a grant) with its entry; when usage has driven the
 * balance below zero, the new lot settles that first (two entries that cancel out in the
 * balance: the lot gives, the unallocated debt takes). Re-arms auto-reload when the balance
 * is back at its threshold. Inside the caller's transaction. */
gh_err_t gh_billing_open_lot(gh_app_t *app, gh_db_t *db, const char *org_id, const char *source,
                             const char *source_ref, int64_t amount, const char *reason,
                             int64_t now, gh_credit_lot_t *out);

/* The organization's billing row, or the defaults when it has none. */
gh_err_t gh_billing_load_account(gh_db_t *db, const char *org_id, gh_billing_account_t *out);

/* Issues the invoice of a purchase being credited, taking the year's next number. Inside the
 * crediting transaction, so numbers have no gaps. */
gh_err_t gh_billing_issue_invoice(gh_app_t *app, gh_db_t *db, const gh_purchase_t *p,
                                  const gh_payment_method_t *pm, int64_t now,
                                  gh_invoice_rec_t *inv);

gh_err_t gh_billing_send_receipt(gh_app_t *app, gh_db_t *db, const gh_purchase_t *p,
                                 const gh_invoice_rec_t *inv, int64_t balance);

gh_err_t gh_billing_mail_reload_off(gh_app_t *app, gh_db_t *db, const char *org_id,
                                    const char *reason);

/* Charges `p`, which the calling thread has claimed, with its card and records the outcome;
 * releases the claim. Never inside a transaction: the provider may take its time. */
gh_err_t gh_billing_charge_and_resolve(gh_app_t *app, const gh_purchase_t *p,
                                       const gh_actor_t *actor, gh_purchase_t *out);

/* Fills a new pending purchase of `amount` for `org`. */
void gh_billing_new_purchase(gh_app_t *app, gh_purchase_t *p, const char *kind,
                             const gh_org_settings_t *org, const gh_payment_method_t *pm,
                             int64_t amount, const gh_actor_t *actor, int64_t now);

#endif
