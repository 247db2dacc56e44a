/* Invoices and receipts (billing_invoices.h): the parties, issuing an invoice with the next
 * gap-free number, the receipt mail, the PDF, and the invoice reads. */
#include "core/billing_invoices.h"

#include <stdio.h>
#include <string.h>

#include "core/audit.h"
#include "core/billing_int.h"
#include "lib/card.h"
#include "store/store.h"

#define REVERSE_CHARGE_NOTE                                                                    \
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council "         \
    "Directive 2006/112/EC)."

/* ---- invoices and receipts ---- */

static void party_from_settings(gh_invoice_party_rec_t *p, const gh_org_settings_t *s)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", s->legal_name[0] ? s->legal_name : s->name);
    snprintf(p->line1, sizeof(p->line1), "%s", s->line1);
    snprintf(p->line2, sizeof(p->line2), "%s", s->line2);
    snprintf(p->city, sizeof(p->city), "%s", s->city);
    snprintf(p->postal_code, sizeof(p->postal_code), "%s", s->postal_code);
    snprintf(p->state, sizeof(p->state), "%s", s->state);
    snprintf(p->country, sizeof(p->country), "%s", s->country);
    snprintf(p->vat_id, sizeof(p->vat_id), "%s", s->vat_id);
    snprintf(p->email, sizeof(p->email), "%s", s->billing_email);
}

static void party_from_config(gh_invoice_party_rec_t *p, const gh_config_t *c)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", c->seller_name[0] ? c->seller_name : c->product_name);
    snprintf(p->line1, sizeof(p->line1), "%s", c->seller_line1);
    snprintf(p->line2, sizeof(p->line2), "%s", c->seller_line2);
    snprintf(p->city, sizeof(p->city), "%s", c->seller_city);
    snprintf(p->postal_code, sizeof(p->postal_code), "%s", c->seller_postal_code);
    snprintf(p->state, sizeof(p->state), "%s", c->seller_state);
    snprintf(p->country, sizeof(p->country), "%s", c->seller_country);
    snprintf(p->vat_id, sizeof(p->vat_id), "%s", c->seller_vat_id);
    snprintf(p->email, sizeof(p->email), "%.254s", c->seller_email);
}

/* Issues the invoice of a purchase being credited, taking the year's next number. Inside the
 * crediting transaction, so numbers have no gaps. */
gh_err_t gh_billing_issue_invoice(gh_app_t *app, gh_db_t *db, const gh_purchase_t *p,
                                  const gh_payment_method_t *pm, int64_t now,
                                  gh_invoice_rec_t *inv)
{
    gh_org_settings_t org;
    gh_err_t rc = gh_store_org_settings_get(db, p->org_id, &org);
    if (rc)
        return rc;
    memset(inv, 0, sizeof(*inv));
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    inv->year = tm.tm_year + 1900;
    if ((rc = gh_store_invoice_next_seq(db, inv->year, &inv->seq)))
        return rc;
    gh_id_new(inv->id, "inv");
    snprintf(inv->org_id, sizeof(inv->org_id), "%s", p->org_id);
    snprintf(inv->purchase_id, sizeof(inv->purchase_id), "%s", p->id);
    snprintf(inv->number, sizeof(inv->number), "%s-%04d-%06lld", app->cfg->invoice_prefix,
             inv->year, (long long)inv->seq);
    inv->issued_at = now;
    snprintf(inv->currency, sizeof(inv->currency), "USD");
    snprintf(inv->description, sizeof(inv->description), "%.60s API credits%s",
             app->cfg->product_name, !strcmp(p->kind, "auto_reload") ? " (auto-reload)" : "");
    inv->subtotal_nusd = p->amount_nusd;
    inv->tax_nusd = p->tax_nusd;
    inv->total_nusd = p->total_nusd;
    snprintf(inv->tax_label, sizeof(inv->tax_label), "%s", p->tax_label);
    snprintf(inv->note, sizeof(inv->note), "%s",
             !strcmp(p->tax_label, REVERSE_CHARGE_LABEL) ? REVERSE_CHARGE_NOTE : "");
    snprintf(inv->payment, sizeof(inv->payment), "%s ending in %s",
             gh_card_brand_label(pm->brand), pm->last4);
    /* The test provider, or Stripe with a test key: no money moved. */
    inv->test_mode = !strcmp(p->provider, "test") ||
                     (app->pay && !strcmp(app->pay->ops->name, p->provider) &&
                      app->pay->ops->test_mode);
    party_from_config(&inv->seller, app->cfg);
    party_from_settings(&inv->buyer, &org);
    return gh_store_invoice_insert(db, inv);
}

gh_err_t gh_billing_send_receipt(gh_app_t *app, gh_db_t *db, const gh_purchase_t *p,
                                 const gh_invoice_rec_t *inv, int64_t balance)
{
    char amount[40], tax[40], total[40], bal[40], date[16], subject[200], body[2048];
    gh_billing_date_utc(inv->issued_at, date);
    snprintf(subject, sizeof(subject), "Receipt for your %.60s credits (%s)",
             app->cfg->product_name, inv->number);
    snprintf(body, sizeof(body),
             "Thank you: your purchase of %s credits went through.\n\n"
             "Credits added:   %s\n"
             "%-16s %s\n"
             "Total charged:   %s to %s\n"
             "Date:            %s (UTC)\n"
             "Invoice:         %s\n"
             "Balance now:     %s\n\n"
             "The invoice can be downloaded from the console's billing page: %s/settings/billing\n"
             "%s%s",
             app->cfg->product_name, usd(p->amount_nusd, amount), p->tax_label,
             usd(p->tax_nusd, tax), usd(p->total_nusd, total), inv->payment, date, inv->number,
             usd(balance, bal), app->cfg->public_url,
             !strcmp(p->kind, "auto_reload")
                 ? "\nThis purchase was made by auto-reload, because the balance fell below the "
                   "threshold you set.\n"
                 : "",
             inv->test_mode ? !strcmp(p->provider, "test")
                                  ? "\nTest mode: the test payment provider was used; no money "
                                    "was charged.\n"
                                  : "\nTest mode: the payment provider's test mode was used; no "
                                    "money was charged.\n"
                            : "");
    return gh_billing_mail_org(app, db, p->org_id, false, subject, body);
}

gh_err_t gh_billing_mail_reload_off(gh_app_t *app, gh_db_t *db, const char *org_id,
                                    const char *reason)
{
    char body[1400];
    snprintf(body, sizeof(body),
             "Auto-reload of your %s credits has been turned off.\n\n"
             "Why: %s\n\n"
             "No credits were added. Your API requests keep working while credits last. To turn "
             "auto-reload back on, check the card on file in the console (%s/settings/billing) "
             "and enable auto-reload again.\n",
             app->cfg->product_name, reason, app->cfg->public_url);
    return gh_billing_mail_org(app, db, org_id, true,
                               "Auto-reload is off: the payment did not go through", body);
}

/* ---- invoices ---- */

static void doc_party(gh_invoice_party_t *d, const gh_invoice_party_rec_t *p)
{
    *d = (gh_invoice_party_t){
        .name = p->name,
        .line1 = p->line1,
        .line2 = p->line2,
        .city = p->city,
        .postal_code = p->postal_code,
        .state = p->state,
        .country = p->country,
        .vat_id = p->vat_id,
        .email = p->email,
    };
}

gh_err_t gh_billing_invoice_pdf(gh_app_t *app, const char *org_id, const char *invoice_id,
                                gh_invoice_rec_t *rec, unsigned char **pdf, size_t *pdf_len)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    if (!gh_id_valid(invoice_id, "inv"))
        return GH_ENOTFOUND;
    gh_err_t rc = gh_store_invoice_get(db, org_id, invoice_id, rec);
    if (rc)
        return rc;
    gh_invoice_doc_t doc = {
        .number = rec->number,
        .invoice_id = rec->id,
        .issued_at = rec->issued_at,
        .status = "Paid",
        .payment = rec->payment,
        .currency = rec->currency,
        .nlines = 1,
        .subtotal_nusd = rec->subtotal_nusd,
        .tax_label = rec->tax_label,
        .tax_nusd = rec->tax_nusd,
        .total_nusd = rec->total_nusd,
        .note = rec->note,
        .test_mode = rec->test_mode,
    };
    doc_party(&doc.seller, &rec->seller);
    doc_party(&doc.buyer, &rec->buyer);
    doc.lines[0] = (gh_invoice_line_t){
        .description = rec->description,
        .quantity = 1,
        .unit_nusd = rec->subtotal_nusd,
        .amount_nusd = rec->subtotal_nusd,
    };
    return gh_invoice_pdf(&doc, pdf, pdf_len);
}

gh_err_t gh_billing_invoices_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                                  gh_store_invoice_fn fn, void *ctx, bool *has_more)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_invoices_list(db, org_id, page, fn, ctx, has_more) : GH_ESTORE;
}

gh_err_t gh_billing_invoice_get(gh_app_t *app, const char *org_id, const char *id,
                                gh_invoice_rec_t *out)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_invoice_get(db, org_id, id, out) : GH_ESTORE;
}
