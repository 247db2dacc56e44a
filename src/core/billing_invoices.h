/* Invoices and receipts (core/billing_invoices.c): an invoice is issued with the next number
 * of its year's gap-free sequence in the transaction that credits its purchase; the receipt
 * mail goes through the outbox in the same transaction; the PDF is rendered on demand from
 * the stored invoice. */
#ifndef GH_CORE_BILLING_INVOICES_H
#define GH_CORE_BILLING_INVOICES_H

#include "core/billing.h"

/* ---- invoices ---- */

/* Renders the organization's invoice as a PDF into a malloc'd buffer the caller frees;
 * `rec` receives the invoice. GH_ENOTFOUND for an unknown id. */
gh_err_t gh_billing_invoice_pdf(gh_app_t *app, const char *org_id, const char *invoice_id,
                                gh_invoice_rec_t *rec, unsigned char **pdf, size_t *pdf_len);

/* The organization's invoices, one page at a time, and one by id (GH_ENOTFOUND when the
 * organization has no such invoice). */
gh_err_t gh_billing_invoices_list(gh_app_t *app, const char *org_id, const gh_page_t *page,
                                  gh_store_invoice_fn fn, void *ctx, bool *has_more);
gh_err_t gh_billing_invoice_get(gh_app_t *app, const char *org_id, const char *id,
                                gh_invoice_rec_t *out);

#endif
