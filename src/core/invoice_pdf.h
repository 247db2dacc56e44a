/* Invoices as PDF, drawn with libharu. Pure rendering: billing loads the invoice and the
 * parties and passes them in; nothing here touches the store or the network. */
#ifndef GH_CORE_INVOICE_PDF_H
#define GH_CORE_INVOICE_PDF_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define GH_INVOICE_LINES_MAX 8

/* A seller or buyer as printed: every field may be "" (then it is left out). */
typedef struct gh_invoice_party {
    const char *name;        /* legal name, or the organization's name */
    const char *line1;
    const char *line2;
    const char *city;
    const char *postal_code;
    const char *state;
    const char *country;     /* ISO 3166 alpha-2; printed as the country's name */
    const char *vat_id;
    const char *email;
} gh_invoice_party_t;

typedef struct gh_invoice_line {
    const char *description; /* "Gatehouse API credits" */
    int64_t quantity;        /* whole units */
    int64_t unit_nusd;       /* nano-USD, whole cents */
    int64_t amount_nusd;     /* quantity × unit */
} gh_invoice_line_t;

typedef struct gh_invoice_doc {
    const char *number;      /* gap-free, "GH-2026-000042" */
    const char *invoice_id;  /* inv_01… */
    int64_t issued_at;       /* Unix seconds, printed as a UTC date */
    const char *status;      /* "Paid" */
    const char *payment;     /* "Visa ending in 4242" */
    const char *currency;    /* "USD" */
    gh_invoice_party_t seller;
    gh_invoice_party_t buyer;
    gh_invoice_line_t lines[GH_INVOICE_LINES_MAX];
    int nlines;
    int64_t subtotal_nusd;
    const char *tax_label;   /* "VAT 0% (reverse charge)", "Tax" */
    int64_t tax_nusd;
    int64_t total_nusd;
    const char *note;        /* a footer line, may be "" */
    int test_mode;           /* non-zero: a visible "TEST MODE" mark */
} gh_invoice_doc_t;

/* Renders `doc` as a PDF into a malloc'd buffer the caller frees. GH_EINVAL for a document
 * that cannot be drawn (no number, no lines, more than GH_INVOICE_LINES_MAX lines),
 * GH_ENOMEM/GH_EINTERNAL when libharu fails. */
gh_err_t gh_invoice_pdf(const gh_invoice_doc_t *doc, unsigned char **out, size_t *out_len);

#endif
