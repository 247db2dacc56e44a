/* Invoice PDFs: the renderer's answers, and the text a PDF reader gets back out of the page
 * (pdftotext from poppler-utils; the tests that need it are skipped when it is missing).
 * Set GH_INVOICE_PDF_SAMPLE=/path.pdf to keep the sample invoice for a look. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hpdf.h>

#include "core/invoice_pdf.h"
#include "lib/err.h"

/* The Makefile links this test with -Wl,--wrap=HPDF_New, so the renderer's HPDF_New lands
 * here and gets a document whose allocator fails once `allocs_left` reaches zero (-1: never).
 * The names are the linker's convention. */
HPDF_Doc __real_HPDF_New(HPDF_Error_Handler error_fn, void *user_data);
HPDF_Doc __wrap_HPDF_New(HPDF_Error_Handler error_fn, void *user_data);

static long allocs_left = -1;
static long allocs_made;

static void *HPDF_STDCALL counting_alloc(HPDF_UINT size)
{
    if (allocs_left == 0)
        return NULL;
    if (allocs_left > 0)
        allocs_left--;
    allocs_made++;
    return malloc(size);
}

static void HPDF_STDCALL counting_free(void *ptr)
{
    free(ptr);
}

HPDF_Doc __wrap_HPDF_New(HPDF_Error_Handler error_fn, void *user_data)
{
    /* No memory pool, so that every object is its own allocation and can fail alone. */
    return HPDF_NewEx(error_fn, counting_alloc, counting_free, 0, user_data);
}

#define USD(whole, cents) ((int64_t)(whole) * 1000000000 + (int64_t)(cents) * 10000000)

static const char LONG_BUYER[] =
    "Müller GmbH Forschung und Entwicklung für angewandte Sprachmodelle und verteilte "
    "Systeme im Rhein-Main-Gebiet";

static gh_invoice_doc_t sample(int test_mode)
{
    gh_invoice_doc_t d = {
        .number = "GH-2026-000042",
        .invoice_id = "inv_01JD8ZQ4M6T1W3X9Y7K2P5R8NB",
        .issued_at = 1795564800, /* 2026-11-25 00:00:00 UTC */
        .status = "Paid",
        .payment = "Visa ending in 4242",
        .currency = "USD",
        .seller =
            {
                .name = "Gatehouse Labs S.r.l.",
                .line1 = "Via Giuseppe Mazzini 12",
                .line2 = "",
                .city = "Milano",
                .postal_code = "20123",
                .state = "MI",
                .country = "IT",
                .vat_id = "IT12345678901",
                .email = "billing@gatehouse.example",
            },
        .buyer =
            {
                .name = LONG_BUYER,
                .line1 = "Straße des 17. Juni 135",
                .line2 = "Gebäude B, 3. Stock",
                .city = "Berlin",
                .postal_code = "10623",
                .state = "",
                .country = "DE",
                .vat_id = "DE123456789",
                .email = "finanzen@mueller.example",
            },
        .lines =
            {
                {"Gatehouse API credits", 1, USD(1200, 0), USD(1200, 0)},
                {"Priority support \xe2\x80\x94 November 2026", 3, USD(11, 50), USD(34, 50)},
            },
        .nlines = 2,
        .subtotal_nusd = USD(1234, 50),
        .tax_label = "VAT 0% (reverse charge)",
        .tax_nusd = 0,
        .total_nusd = USD(1234, 50),
        .note = "Reverse charge: VAT to be accounted for by the recipient under Article 196 of "
                "Council Directive 2006/112/EC. Credits are added to your balance the moment "
                "payment succeeds.",
        .test_mode = test_mode,
    };
    return d;
}

static void check_pdf(const unsigned char *pdf, size_t len)
{
    assert_non_null(pdf);
    assert_true(len > 200);
    assert_memory_equal(pdf, "%PDF-", 5);
    /* The trailer ends in "%%EOF" and at most a line break or two. */
    const unsigned char *tail = pdf + len - 16;
    assert_non_null(memmem(tail, 16, "%%EOF", 5));
}

static void renders_a_pdf(void **state)
{
    (void)state;
    gh_invoice_doc_t d = sample(1);
    unsigned char *pdf = (unsigned char *)"untouched";
    size_t len = 1;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_OK);
    check_pdf(pdf, len);
    const char *keep = getenv("GH_INVOICE_PDF_SAMPLE");
    if (keep && *keep) {
        FILE *f = fopen(keep, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(pdf, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
    }
    free(pdf);
}

static void rejects_what_cannot_be_drawn(void **state)
{
    (void)state;
    unsigned char *pdf;
    size_t len;
    gh_invoice_doc_t d = sample(0);
    assert_int_equal(gh_invoice_pdf(NULL, &pdf, &len), GH_EINVAL);
    assert_int_equal(gh_invoice_pdf(&d, NULL, &len), GH_EINVAL);
    assert_int_equal(gh_invoice_pdf(&d, &pdf, NULL), GH_EINVAL);

    d.number = NULL;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_EINVAL);
    assert_null(pdf);
    assert_int_equal(len, 0);
    d.number = "";
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_EINVAL);

    d = sample(0);
    d.nlines = 0;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_EINVAL);
    d.nlines = -1;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_EINVAL);
    d.nlines = GH_INVOICE_LINES_MAX + 1;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_EINVAL);
    assert_null(pdf);

    /* An instant gmtime cannot place in years 1 to 9999. */
    d = sample(0);
    d.issued_at = INT64_MAX;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_EINVAL);
}

/* Renders `d`, runs pdftotext -layout on it and returns the text (malloc'd), or NULL when
 * pdftotext is not installed. */
static char *pdf_text(const gh_invoice_doc_t *d)
{
    unsigned char *pdf;
    size_t len;
    assert_int_equal(gh_invoice_pdf(d, &pdf, &len), GH_OK);
    check_pdf(pdf, len);

    char path[] = "/tmp/gh-invoice-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pdf, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    free(pdf);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "pdftotext -layout %s - 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t got;
    while ((got = fread(text + n, 1, cap - 1 - n, p)) > 0)
        n += got;
    text[n] = '\0';
    int status = pclose(p);
    unlink(path);
    if (status != 0) {
        free(text);
        return NULL;
    }
    return text;
}

#define assert_has(text, needle)                                                        \
    do {                                                                                \
        if (!strstr((text), (needle)))                                                  \
            fail_msg("\"%s\" not in the page:\n%s", (needle), (text));                  \
    } while (0)

static void reads_back_as_text(void **state)
{
    (void)state;
    gh_invoice_doc_t d = sample(1);
    char *text = pdf_text(&d);
    if (!text)
        skip();
    assert_has(text, "Invoice");
    assert_has(text, "GH-2026-000042");
    assert_has(text, "25 November 2026");
    assert_has(text, "Bill to");
    assert_has(text, "From");
    assert_has(text, "Müller GmbH Forschung");
    assert_has(text, "Straße des 17. Juni 135");
    assert_has(text, "Germany");
    assert_has(text, "Italy");
    assert_has(text, "VAT ID: DE123456789");
    assert_has(text, "VAT ID: IT12345678901");
    assert_has(text, "Visa ending in 4242");
    assert_has(text, "$1,200.00");
    assert_has(text, "$11.50");
    assert_has(text, "$34.50");
    assert_has(text, "$1,234.50");
    assert_has(text, "VAT 0% (reverse charge)");
    assert_has(text, "Priority support \xe2\x80\x94 November 2026"); /* the em dash survives */
    assert_has(text, "Article 196");
    assert_has(text, "TEST MODE");
    free(text);

    d = sample(0);
    text = pdf_text(&d);
    assert_non_null(text);
    assert_has(text, "GH-2026-000042");
    assert_null(strstr(text, "TEST MODE"));
    free(text);
}

/* Every field far too long, eight lines, and text CP1252 cannot show: the page still
 * renders (the layout asserts it stays above the footer) and nothing turns into garbage. */
static void survives_hostile_text(void **state)
{
    (void)state;
    static char huge[4096];
    for (size_t i = 0; i + 1 < sizeof(huge); i++)
        huge[i] = (i % 11 == 10) ? ' ' : (char)('a' + i % 26);
    static char word[700];
    memset(word, 'W', sizeof(word) - 1);

    gh_invoice_doc_t d = sample(1);
    gh_invoice_party_t *parties[] = {&d.seller, &d.buyer};
    for (int i = 0; i < 2; i++) {
        gh_invoice_party_t *x = parties[i];
        x->name = x->line1 = x->line2 = x->city = x->state = x->postal_code = huge;
        x->vat_id = x->email = word;
        x->country = "ZZ"; /* not a country: printed as given */
    }
    d.payment = huge;
    d.status = word;
    d.tax_label = huge;
    d.note = huge;
    d.nlines = GH_INVOICE_LINES_MAX;
    for (int i = 0; i < GH_INVOICE_LINES_MAX; i++)
        d.lines[i] = (gh_invoice_line_t){huge, INT64_MAX, INT64_MAX, INT64_MIN};
    d.total_nusd = INT64_MIN;
    unsigned char *pdf;
    size_t len;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_OK);
    check_pdf(pdf, len);
    free(pdf);

    /* Invalid UTF-8, emoji, CJK, controls, CP1252's typographic characters and optional
     * fields left NULL or empty. */
    d = sample(0);
    d.buyer.name = "Caf\xc3\xa9 \xe2\x80\x9cZ\xc3\xbcrich\xe2\x80\x9d \xe2\x82\xac "
                   "\xf0\x9f\x98\x80 \xe6\x9d\xb1\xe4\xba\xac \xff\xfe \xc3 \xed\xa0\x80 "
                   "\x01tab\there";
    d.buyer.line1 = "";
    d.buyer.line2 = NULL;
    d.buyer.vat_id = "";
    d.buyer.country = "";
    d.status = "";
    d.payment = NULL;
    d.invoice_id = NULL;
    d.note = "";
    d.tax_label = NULL;
    d.currency = NULL;
    char *text = pdf_text(&d);
    if (!text)
        skip();
    assert_has(text, "Café “Zürich” € ? ?? ?? ? ? ?tab here");
    assert_null(strstr(text, "VAT ID: DE"));
    assert_has(text, "Tax");
    assert_has(text, "All amounts in USD");
    free(text);
}

/* Every allocation libharu makes for a render, failed in turn: each attempt reports
 * GH_ENOMEM (or GH_EINTERNAL where libharu loses track of the cause) and hands back
 * nothing, the sanitizer build checks that nothing leaks, and the next render with memory
 * to spare succeeds. */
static void fails_cleanly_without_memory(void **state)
{
    (void)state;
    gh_invoice_doc_t d = sample(1);
    unsigned char *pdf;
    size_t len;
    allocs_left = -1;
    allocs_made = 0;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_OK);
    free(pdf);
    long needed = allocs_made;
    assert_true(needed > 10);
    long nomem = 0;
    for (long n = 0; n < needed; n++) {
        allocs_left = n;
        gh_err_t rc = gh_invoice_pdf(&d, &pdf, &len);
        if (rc != GH_ENOMEM && rc != GH_EINTERNAL)
            fail_msg("allocation %ld of %ld failed: got %s", n + 1, needed, gh_err_name(rc));
        nomem += rc == GH_ENOMEM;
        assert_null(pdf);
        assert_int_equal(len, 0);
    }
    assert_true(nomem * 2 > needed);
    allocs_left = -1;
    assert_int_equal(gh_invoice_pdf(&d, &pdf, &len), GH_OK);
    check_pdf(pdf, len);
    free(pdf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renders_a_pdf),
        cmocka_unit_test(rejects_what_cannot_be_drawn),
        cmocka_unit_test(reads_back_as_text),
        cmocka_unit_test(survives_hostile_text),
        cmocka_unit_test(fails_cleanly_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
