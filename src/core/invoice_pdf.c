/* Invoices as one A4 page, drawn with libharu's built-in Helvetica. The base-14 fonts need
 * no font files, but they only speak WinAnsi (Windows code page 1252), so every string is
 * converted from UTF-8 first and whatever CP1252 cannot say becomes '?'.
 *
 * The page reads top to bottom the way people scan an invoice: who sent it and that it is an
 * invoice; the facts that identify it (number, date, status) beside the amount; who it is
 * from and to; the lines; the totals; a note. Every string a customer controls is wrapped or
 * cut to a fixed number of lines at a fixed width, so the worst case is known and the page
 * never overflows into the footer (asserted at the end).
 *
 * Coordinates below are measured from the top of the page, in points, because that is how
 * the layout is reasoned about; the drawing helpers turn them into PDF's bottom-up system.
 * Floats are used for geometry only; money stays in integer nano-USD until it is text. */
#include "core/invoice_pdf.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hpdf.h>

#include "core/country.h"
#include "lib/money.h"

/* A4 portrait as libharu defines it. */
#define PAGE_W 595.276f
#define PAGE_H 841.89f
#define MARGIN 50.0f
#define LEFT MARGIN
#define RIGHT (PAGE_W - MARGIN)
/* Nothing above the footer may reach below this line. */
#define FOOTER_TOP (PAGE_H - 58.0f)

/* Bytes of CP1252 kept from any one field; far more than the widest wrapped block holds. */
#define TEXT_MAX 512
#define WRAP_LINES_MAX 3
/* "-$9,223,372,036.854775808" and the like. */
#define AMOUNT_TEXT_MAX 48
static_assert(AMOUNT_TEXT_MAX >= GH_MONEY_TEXT_MAX + 8, "room for '$' and thousands commas");

typedef struct rgb {
    float r, g, b;
} rgb_t;

/* A quiet palette: near-black ink, a cool grey for labels, hairlines and a faint fill. */
static const rgb_t INK = {0.10f, 0.12f, 0.17f};
static const rgb_t MUTED = {0.42f, 0.45f, 0.51f};
static const rgb_t HAIRLINE = {0.84f, 0.86f, 0.89f};
static const rgb_t SHADE = {0.955f, 0.96f, 0.97f};
static const rgb_t TEST_FILL = {1.0f, 0.92f, 0.78f};
static const rgb_t TEST_INK = {0.60f, 0.31f, 0.0f};

/* A font with its glyph widths (thousandths of the font size) for every CP1252 byte, read
 * once so that measuring text is plain arithmetic. */
typedef struct face {
    HPDF_Font font;
    unsigned short width[256];
} face_t;

typedef struct pdf {
    HPDF_Doc doc;
    HPDF_Page page;
    face_t regular;
    face_t bold;
    HPDF_STATUS error; /* the first error libharu reported through on_error, 0 if none */
} pdf_t;

typedef enum { ALIGN_LEFT, ALIGN_RIGHT } align_t;

/* Text cut into lines that each fit a width. */
typedef struct wrapped {
    int n;
    char line[WRAP_LINES_MAX][TEXT_MAX];
} wrapped_t;

/* libharu calls this for every error it raises, then returns failure from the call. We
 * keep the first code; every later call is skipped (see step) and the render fails. */
static void on_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *user_data)
{
    pdf_t *p = user_data;
    (void)detail_no;
    if (!p->error)
        p->error = error_no;
}

/* Some libharu paths record an error without calling the handler, so look at both. */
static bool failed(const pdf_t *p)
{
    return p->error != HPDF_OK || HPDF_GetError(p->doc) != HPDF_OK;
}

/* True when a libharu call that returned `status` went well, so that the next may run.
 * Chains of `step(p, call) && step(p, call)` stop at the first failure, and each drawing
 * helper starts by checking `failed`: after a failed allocation libharu can leave an object
 * half built (a font missing from a page's resources makes the next SetFontAndSize read a
 * null pointer), so nothing may touch the document again except HPDF_Free. */
static bool step(const pdf_t *p, HPDF_STATUS status)
{
    return status == HPDF_OK && !failed(p);
}

/* ---- UTF-8 to CP1252 ---------------------------------------------------------------- */

/* CP1252 bytes 0x80-0x9F hold typographic characters that Unicode keeps elsewhere; 0 marks
 * the five bytes the code page leaves unassigned. */
static const unsigned short cp1252_high[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

/* Decodes the UTF-8 sequence at `s` into `*cp` and returns its length. An invalid or cut
 * sequence (overlong, surrogate, beyond U+10FFFF, stray continuation) gives U+FFFD and
 * consumes at least one byte, so a scan always advances and never passes the NUL. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07u, min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return i;
        }
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    *cp = (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) ? 0xFFFD : v;
    return n;
}

/* The CP1252 byte for code point `cp`, ' ' for white space of any kind (fields are printed
 * on lines of their own), -1 for invisible characters that are best dropped, '?' for
 * anything the code page cannot show. */
static int cp1252_byte(uint32_t cp)
{
    if (cp >= 0x20 && cp < 0x7F)
        return (int)cp;
    if (cp == '\t' || cp == '\n' || cp == '\r' || cp == 0xA0 || (cp >= 0x2000 && cp <= 0x200A) ||
        cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return ' ';
    if (cp == 0xAD || (cp >= 0x200B && cp <= 0x200F) || cp == 0x2060 || cp == 0xFEFF)
        return -1;
    if (cp > 0xA0 && cp <= 0xFF)
        return (int)cp;
    if (cp == 0x2010 || cp == 0x2011 || cp == 0x2212)
        return '-';
    for (int i = 0; i < 32; i++)
        if (cp1252_high[i] && cp1252_high[i] == cp)
            return 0x80 + i;
    return '?';
}

/* Writes UTF-8 `in` (NULL reads as "") into `out` as CP1252 with runs of white space
 * collapsed and trimmed, NUL-terminated. Returns false when `out` was too small and the
 * text was cut. */
static bool to_cp1252(const char *in, char *out, size_t out_size)
{
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    size_t n = 0;
    bool complete = true;
    assert(out_size > 1);
    while (*s) {
        uint32_t cp;
        s += utf8_next(s, &cp);
        int b = cp1252_byte(cp);
        if (b < 0 || (b == ' ' && (n == 0 || out[n - 1] == ' ')))
            continue;
        if (n + 1 >= out_size) {
            complete = false;
            break;
        }
        out[n++] = (char)b;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return complete;
}

/* ---- Measuring and wrapping ------------------------------------------------------------ */

static gh_err_t face_load(pdf_t *p, face_t *f, const char *name)
{
    f->font = HPDF_GetFont(p->doc, name, "WinAnsiEncoding");
    if (!f->font || failed(p))
        return GH_EINTERNAL;
    for (int b = 0; b < 256; b++) {
        HPDF_BYTE byte = (HPDF_BYTE)b;
        HPDF_TextWidth tw = HPDF_Font_TextWidth(f->font, &byte, 1);
        f->width[b] = (unsigned short)(tw.width < 0xFFFF ? tw.width : 0xFFFF);
    }
    return GH_OK;
}

static float text_width(const face_t *f, float size, const char *s, size_t len)
{
    unsigned long units = 0;
    for (size_t i = 0; i < len; i++)
        units += f->width[(unsigned char)s[i]];
    return (float)units * size / 1000.0f;
}

/* How many bytes of `s` fit in `width`; at least one, so that wrapping always advances. */
static size_t fit_bytes(const face_t *f, float size, float width, const char *s, size_t len)
{
    float w = 0;
    size_t n = 0;
    while (n < len) {
        w += (float)f->width[(unsigned char)s[n]] * size / 1000.0f;
        if (w > width)
            break;
        n++;
    }
    return n ? n : 1;
}

/* Shortens `line` until it fits `width` with an ellipsis (CP1252 0x85) after it. */
static void add_ellipsis(const face_t *f, float size, float width, char *line)
{
    static const char ellipsis = (char)0x85;
    float ew = text_width(f, size, &ellipsis, 1);
    size_t len = strlen(line);
    if (len > TEXT_MAX - 2)
        len = TEXT_MAX - 2;
    while (len > 0 && text_width(f, size, line, len) + ew > width)
        len--;
    while (len > 0 && line[len - 1] == ' ')
        len--;
    line[len] = ellipsis;
    line[len + 1] = '\0';
}

/* Breaks UTF-8 `text` into at most `lines_max` lines no wider than `width`, at spaces where
 * possible and inside a word only when the word alone is too wide. When the text does not
 * fit, the last line ends in an ellipsis. An empty text gives no lines. */
static void wrap(const face_t *f, float size, float width, int lines_max, const char *text,
                 wrapped_t *w)
{
    char s[TEXT_MAX];
    bool complete = to_cp1252(text, s, sizeof(s));
    size_t len = strlen(s), pos = 0;
    assert(lines_max >= 1 && lines_max <= WRAP_LINES_MAX);
    w->n = 0;
    while (w->n < lines_max) {
        while (pos < len && s[pos] == ' ')
            pos++;
        if (pos == len)
            break;
        size_t take = fit_bytes(f, size, width, s + pos, len - pos);
        if (pos + take < len) {
            /* Break at the last space that keeps the line within the width (a space right
             * after the fitting part counts), unless there is none. On the last line, which
             * gets an ellipsis anyway, only when that keeps most of the line: "VAT ID:
             * XX1234…" says more than "VAT ID:…". */
            size_t k = take;
            while (k > 0 && s[pos + k] != ' ')
                k--;
            bool last = w->n == lines_max - 1;
            if (k > 0 && (!last || 3 * k >= 2 * take))
                take = k;
        }
        size_t keep = take;
        while (keep > 0 && s[pos + keep - 1] == ' ')
            keep--;
        memcpy(w->line[w->n], s + pos, keep);
        w->line[w->n][keep] = '\0';
        w->n++;
        pos += take;
    }
    while (pos < len && s[pos] == ' ')
        pos++;
    if (w->n > 0 && (pos < len || !complete))
        add_ellipsis(f, size, width, w->line[w->n - 1]);
}

/* ---- Drawing primitives (y measured from the top of the page) ------------------------- */

/* Draws CP1252 `s` with its baseline at `y`, starting at `x` or ending at `x`. */
static void put(pdf_t *p, const face_t *f, float size, rgb_t c, float x, float y, align_t a,
                const char *s)
{
    if (!s[0])
        return;
    if (a == ALIGN_RIGHT)
        x -= text_width(f, size, s, strlen(s));
    if (failed(p))
        return;
    (void)(step(p, HPDF_Page_BeginText(p->page)) &&
           step(p, HPDF_Page_SetFontAndSize(p->page, f->font, size)) &&
           step(p, HPDF_Page_SetRGBFill(p->page, c.r, c.g, c.b)) &&
           step(p, HPDF_Page_TextOut(p->page, x, PAGE_H - y, s)) &&
           step(p, HPDF_Page_EndText(p->page)));
}

/* Draws UTF-8 `text` in at most `lines_max` lines of `width`, the first baseline at `y`,
 * and returns the baseline after the last line drawn (`y` itself when there was nothing). */
static float para(pdf_t *p, const face_t *f, float size, rgb_t c, float x, float y, float width,
                  float leading, int lines_max, align_t a, const char *text)
{
    wrapped_t w;
    wrap(f, size, width, lines_max, text, &w);
    for (int i = 0; i < w.n; i++, y += leading)
        put(p, f, size, c, x, y, a, w.line[i]);
    return y;
}

/* Right-aligns CP1252 figure `s` at `x`, set smaller than `size` when it is wider than
 * `width`, so that an absurd amount shrinks instead of running into its neighbour. */
static void put_figure(pdf_t *p, const face_t *f, float size, float x, float y, float width,
                       const char *s)
{
    float w = text_width(f, size, s, strlen(s));
    if (w > width)
        size = size * width / w;
    put(p, f, size, INK, x, y, ALIGN_RIGHT, s);
}

static void hline(pdf_t *p, float x0, float x1, float y, float thickness, rgb_t c)
{
    if (failed(p))
        return;
    (void)(step(p, HPDF_Page_SetLineWidth(p->page, thickness)) &&
           step(p, HPDF_Page_SetRGBStroke(p->page, c.r, c.g, c.b)) &&
           step(p, HPDF_Page_MoveTo(p->page, x0, PAGE_H - y)) &&
           step(p, HPDF_Page_LineTo(p->page, x1, PAGE_H - y)) &&
           step(p, HPDF_Page_Stroke(p->page)));
}

static void box(pdf_t *p, float x, float y_top, float width, float height, rgb_t c)
{
    if (failed(p))
        return;
    (void)(step(p, HPDF_Page_SetRGBFill(p->page, c.r, c.g, c.b)) &&
           step(p, HPDF_Page_Rectangle(p->page, x, PAGE_H - y_top - height, width, height)) &&
           step(p, HPDF_Page_Fill(p->page)));
}

/* ---- Values as text -------------------------------------------------------------------- */

static bool empty(const char *s)
{
    return !s || !s[0];
}

/* Copies the optional sign and the digits of `plain` with a comma every three digits from
 * the decimal point (or the end) leftwards, then the rest unchanged. */
static void group_digits(const char *plain, const char *prefix, char *out, size_t out_size)
{
    size_t n = 0;
    const char *d = plain;
    if (*d == '-' && n + 1 < out_size)
        out[n++] = *d++;
    for (const char *q = prefix; *q && n + 1 < out_size; q++)
        out[n++] = *q;
    size_t int_len = strspn(d, "0123456789");
    for (size_t i = 0; i < int_len && n + 2 < out_size; i++) {
        if (i > 0 && (int_len - i) % 3 == 0)
            out[n++] = ',';
        out[n++] = d[i];
    }
    for (const char *q = d + int_len; *q && n + 1 < out_size; q++)
        out[n++] = *q;
    out[n] = '\0';
}

/* "$1,234.50", "-$5.00": exact, from gh_money_format_usd, with thousands commas. */
static void amount_text(int64_t nusd, char out[AMOUNT_TEXT_MAX])
{
    char plain[GH_MONEY_TEXT_MAX];
    gh_money_format_usd(nusd, plain);
    group_digits(plain, "$", out, AMOUNT_TEXT_MAX);
}

static void quantity_text(int64_t quantity, char out[AMOUNT_TEXT_MAX])
{
    char plain[24];
    snprintf(plain, sizeof(plain), "%" PRId64, quantity);
    group_digits(plain, "", out, AMOUNT_TEXT_MAX);
}

static const char *const MONTHS[12] = {"January", "February", "March",     "April",
                                       "May",     "June",     "July",      "August",
                                       "September", "October", "November", "December"};

/* "25 November 2026" in UTC, and the same instant for the document's creation date.
 * GH_EINVAL for an instant outside years 1 to 9999. */
static gh_err_t issue_date(int64_t unix_s, char *out, size_t out_size, HPDF_Date *date)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if ((int64_t)t != unix_s || !gmtime_r(&t, &tm) || tm.tm_year < 1 - 1900 ||
        tm.tm_year > 9999 - 1900)
        return GH_EINVAL;
    snprintf(out, out_size, "%d %s %d", tm.tm_mday, MONTHS[tm.tm_mon], tm.tm_year + 1900);
    *date = (HPDF_Date){.year = tm.tm_year + 1900,
                        .month = tm.tm_mon + 1,
                        .day = tm.tm_mday,
                        .hour = tm.tm_hour,
                        .minutes = tm.tm_min,
                        .seconds = tm.tm_sec < 60 ? tm.tm_sec : 59,
                        .ind = 'Z'};
    return GH_OK;
}

/* "a<sep>b", or whichever of the two is not empty, cut to fit `out`. */
static void join(char *out, size_t out_size, const char *a, const char *sep, const char *b)
{
    const char *parts[3] = {a ? a : "", "", b ? b : ""};
    size_t n = 0;
    if (parts[0][0] && parts[2][0])
        parts[1] = sep;
    for (int i = 0; i < 3; i++)
        for (const char *c = parts[i]; *c && n + 1 < out_size; c++)
            out[n++] = *c;
    out[n] = '\0';
}

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* ---- The page, block by block ---------------------------------------------------------- */

/* Sizes shared by the blocks. */
#define BODY 9.0f
#define LEADING 12.5f
#define LABEL 8.0f

/* The word "Invoice" large on the left with the test-mode tag beside it, and the seller's
 * name on the right like a letterhead. Returns the y below the header rule. */
static float draw_header(pdf_t *p, const gh_invoice_doc_t *doc)
{
    const float title_size = 24.0f, base = 74.0f;
    char title[] = "Invoice";
    put(p, &p->bold, title_size, INK, LEFT, base, ALIGN_LEFT, title);
    if (doc->test_mode) {
        /* A small filled tag on the title's centre line: visible in any viewer or print, but
         * not a watermark across the figures. */
        char tag[] = "TEST MODE";
        const float size = 7.5f, pad = 6.0f, h = 15.0f;
        float x = LEFT + text_width(&p->bold, title_size, title, strlen(title)) + 14.0f;
        float mid = base - 0.36f * title_size; /* half of Helvetica's cap height */
        float w = text_width(&p->bold, size, tag, strlen(tag)) + 2 * pad;
        box(p, x, mid - h / 2, w, h, TEST_FILL);
        put(p, &p->bold, size, TEST_INK, x + pad, mid + 0.36f * size, ALIGN_LEFT, tag);
    }
    /* The seller's name sits on the title's baseline; a second line, if needed, goes above
     * so that the rule below stays put. */
    wrapped_t w;
    wrap(&p->bold, 12.0f, 250.0f, 2, doc->seller.name, &w);
    for (int i = 0; i < w.n; i++)
        put(p, &p->bold, 12.0f, INK, RIGHT, base - (float)(w.n - 1 - i) * 14.0f, ALIGN_RIGHT,
            w.line[i]);
    hline(p, LEFT, RIGHT, base + 18.0f, 0.75f, HAIRLINE);
    return base + 18.0f;
}

/* The identifying facts as label/value rows on the left. Returns the y after the last. */
static float draw_facts(pdf_t *p, const gh_invoice_doc_t *doc, const char *date, float y)
{
    const float value_x = LEFT + 96.0f, value_w = 205.0f;
    const struct {
        const char *label, *value;
    } rows[] = {
        {"Invoice number", doc->number}, {"Date of issue", date},
        {"Status", doc->status},         {"Payment method", doc->payment},
        {"Invoice ID", doc->invoice_id},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (empty(rows[i].value))
            continue;
        char label[32];
        to_cp1252(rows[i].label, label, sizeof(label));
        put(p, &p->regular, BODY, MUTED, LEFT, y, ALIGN_LEFT, label);
        y = para(p, i == 0 ? &p->bold : &p->regular, BODY, INK, value_x, y, value_w, 14.5f, 1,
                 ALIGN_LEFT, rows[i].value);
    }
    return y;
}

/* The amount in a lightly shaded panel on the right, level with the facts: the one figure
 * a reader looks for first. Returns the y below the panel. */
static float draw_amount_panel(pdf_t *p, const gh_invoice_doc_t *doc, const char *date,
                               float y_top)
{
    const float w = 200.0f, h = 70.0f, x = RIGHT - w, pad = 14.0f;
    bool paid = !empty(doc->status) && ascii_ieq(doc->status, "paid");
    box(p, x, y_top, w, h, SHADE);

    char label[16];
    to_cp1252(paid ? "Amount paid" : "Amount due", label, sizeof(label));
    put(p, &p->regular, LABEL, MUTED, x + pad, y_top + 18.0f, ALIGN_LEFT, label);

    /* The figure shrinks rather than overflow for a very large total. */
    char amount[AMOUNT_TEXT_MAX];
    amount_text(doc->total_nusd, amount);
    float size = 20.0f, aw = text_width(&p->bold, size, amount, strlen(amount));
    if (aw > w - 2 * pad)
        size = size * (w - 2 * pad) / aw;
    put(p, &p->bold, size, INK, x + pad, y_top + 42.0f, ALIGN_LEFT, amount);

    char line[TEXT_MAX];
    const char *currency = empty(doc->currency) ? "USD" : doc->currency;
    if (paid)
        snprintf(line, sizeof(line), "%.8s \xc2\xb7 paid %s", currency, date);
    else
        snprintf(line, sizeof(line), "%.8s \xc2\xb7 issued %s", currency, date);
    para(p, &p->regular, LABEL, MUTED, x + pad, y_top + 58.0f, w - 2 * pad, 10.0f, 1, ALIGN_LEFT,
         line);
    return y_top + h;
}

/* One party: a bold label, the name, then each non-empty address line, the country's
 * name, the VAT ID and the e-mail address. Returns the y after the last line. */
static float draw_party(pdf_t *p, const char *heading, const gh_invoice_party_t *party,
                        float x, float y, float width)
{
    char line[TEXT_MAX * 2], tmp[TEXT_MAX * 2];
    to_cp1252(heading, line, sizeof(line));
    put(p, &p->bold, BODY, INK, x, y, ALIGN_LEFT, line);
    y += 16.0f;

    y = para(p, &p->bold, BODY, INK, x, y, width, LEADING, 2, ALIGN_LEFT, party->name);
    y = para(p, &p->regular, BODY, INK, x, y, width, LEADING, 2, ALIGN_LEFT, party->line1);
    y = para(p, &p->regular, BODY, INK, x, y, width, LEADING, 1, ALIGN_LEFT, party->line2);
    /* "San Francisco, CA 94105" where there is a state, "10115 Berlin" where there is not. */
    if (!empty(party->state)) {
        join(tmp, sizeof(tmp), party->city, ", ", party->state);
        join(line, sizeof(line), tmp, " ", party->postal_code);
    } else {
        join(line, sizeof(line), party->postal_code, " ", party->city);
    }
    y = para(p, &p->regular, BODY, INK, x, y, width, LEADING, 1, ALIGN_LEFT, line);
    if (!empty(party->country)) {
        const char *name = strlen(party->country) == 2 ? gh_country_name(party->country) : NULL;
        y = para(p, &p->regular, BODY, INK, x, y, width, LEADING, 1, ALIGN_LEFT,
                 name ? name : party->country);
    }
    if (!empty(party->vat_id)) {
        join(line, sizeof(line), "VAT ID:", " ", party->vat_id);
        y = para(p, &p->regular, BODY, INK, x, y, width, LEADING, 1, ALIGN_LEFT, line);
    }
    y = para(p, &p->regular, BODY, MUTED, x, y, width, LEADING, 1, ALIGN_LEFT, party->email);
    return y;
}

/* Table columns: the description takes what the three right-aligned figures leave; each
 * figure has its column's width less a gutter. The money columns hold "$99,999,999.99" at
 * full size. */
#define COL_DESC_X (LEFT + 10.0f)
#define COL_DESC_W 240.0f
#define COL_QTY_R (LEFT + 305.0f)
#define COL_UNIT_R (LEFT + 395.0f)
#define COL_AMOUNT_R (RIGHT - 10.0f)
#define GUTTER 12.0f
#define ROW_TOP_PAD 16.0f  /* rule (or header band) to the first baseline */
#define ROW_BOTTOM_PAD 9.0f /* last baseline to the rule under the row */
#define TOTALS_X (RIGHT - 200.0f) /* lines up with "Bill to" and the amount panel */
#define TOTALS_H 80.0f /* subtotal, tax, rule, total and the currency line */
#define NOTE_LINES_MAX 3
#define NOTE_LEADING 11.5f

static float row_height(int desc_lines)
{
    return ROW_TOP_PAD + (float)(desc_lines - 1) * LEADING + ROW_BOTTOM_PAD;
}

/* How many lines each description may take: two while the table, the totals and the note
 * all fit above the footer, otherwise one, so that eight long lines still fit the page. */
static int desc_lines_max(pdf_t *p, const gh_invoice_doc_t *doc, float y)
{
    float h = 20.0f + TOTALS_H + 30.0f + NOTE_LINES_MAX * NOTE_LEADING;
    for (int i = 0; i < doc->nlines; i++) {
        wrapped_t w;
        wrap(&p->regular, BODY, COL_DESC_W, 2, doc->lines[i].description, &w);
        h += row_height(w.n > 0 ? w.n : 1);
    }
    return y + h <= FOOTER_TOP ? 2 : 1;
}

/* The lines under a shaded header band, each closed by a hairline. Returns the y of the
 * last hairline. */
static float draw_lines(pdf_t *p, const gh_invoice_doc_t *doc, float y)
{
    const float band = 20.0f;
    int lines_max = desc_lines_max(p, doc, y);
    box(p, LEFT, y, RIGHT - LEFT, band, SHADE);
    const struct {
        const char *text;
        float x;
        align_t align;
    } heads[] = {
        {"Description", COL_DESC_X, ALIGN_LEFT},
        {"Qty", COL_QTY_R, ALIGN_RIGHT},
        {"Unit price", COL_UNIT_R, ALIGN_RIGHT},
        {"Amount", COL_AMOUNT_R, ALIGN_RIGHT},
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        char head[16];
        to_cp1252(heads[i].text, head, sizeof(head));
        put(p, &p->bold, LABEL, MUTED, heads[i].x, y + 13.5f, heads[i].align, head);
    }
    y += band;

    for (int i = 0; i < doc->nlines; i++) {
        const gh_invoice_line_t *l = &doc->lines[i];
        char qty[AMOUNT_TEXT_MAX], unit[AMOUNT_TEXT_MAX], amount[AMOUNT_TEXT_MAX];
        quantity_text(l->quantity, qty);
        amount_text(l->unit_nusd, unit);
        amount_text(l->amount_nusd, amount);
        /* Figures sit on the description's first baseline. */
        float base = y + ROW_TOP_PAD;
        wrapped_t w;
        wrap(&p->regular, BODY, COL_DESC_W, lines_max, l->description, &w);
        for (int j = 0; j < w.n; j++)
            put(p, &p->regular, BODY, INK, COL_DESC_X, base + (float)j * LEADING, ALIGN_LEFT,
                w.line[j]);
        put_figure(p, &p->regular, BODY, COL_QTY_R, base,
                   COL_QTY_R - (COL_DESC_X + COL_DESC_W) - GUTTER, qty);
        put_figure(p, &p->regular, BODY, COL_UNIT_R, base, COL_UNIT_R - COL_QTY_R - GUTTER, unit);
        put_figure(p, &p->regular, BODY, COL_AMOUNT_R, base, COL_AMOUNT_R - COL_UNIT_R - GUTTER,
                   amount);
        y += row_height(w.n > 0 ? w.n : 1);
        hline(p, LEFT, RIGHT, y, 0.5f, HAIRLINE);
    }
    return y;
}

/* Subtotal, tax and the total in bold under a rule, right-aligned with the amount column.
 * Returns the y after the currency line. */
static float draw_totals(pdf_t *p, const gh_invoice_doc_t *doc, float y)
{
    char label[TEXT_MAX], amount[AMOUNT_TEXT_MAX];
    /* Figures keep clear of the labels "Subtotal" and "Total". */
    const float figure_w = COL_AMOUNT_R - TOTALS_X - 60.0f;

    y += 20.0f;
    to_cp1252("Subtotal", label, sizeof(label));
    put(p, &p->regular, BODY, INK, TOTALS_X, y, ALIGN_LEFT, label);
    amount_text(doc->subtotal_nusd, amount);
    put_figure(p, &p->regular, BODY, COL_AMOUNT_R, y, figure_w, amount);

    /* The tax label may use whatever the amount beside it leaves free. */
    y += 17.0f;
    amount_text(doc->tax_nusd, amount);
    put_figure(p, &p->regular, BODY, COL_AMOUNT_R, y, figure_w, amount);
    float aw = text_width(&p->regular, BODY, amount, strlen(amount));
    float label_w = COL_AMOUNT_R - TOTALS_X - (aw < figure_w ? aw : figure_w) - GUTTER;
    para(p, &p->regular, BODY, INK, TOTALS_X, y, label_w, LEADING, 1, ALIGN_LEFT,
         empty(doc->tax_label) ? "Tax" : doc->tax_label);

    y += 11.0f;
    hline(p, TOTALS_X, RIGHT, y, 0.75f, INK);

    y += 18.0f;
    to_cp1252("Total", label, sizeof(label));
    put(p, &p->bold, 10.5f, INK, TOTALS_X, y, ALIGN_LEFT, label);
    amount_text(doc->total_nusd, amount);
    put_figure(p, &p->bold, 10.5f, COL_AMOUNT_R, y, figure_w, amount);

    y += 14.0f;
    char line[64];
    snprintf(line, sizeof(line), "All amounts in %.8s",
             empty(doc->currency) ? "USD" : doc->currency);
    para(p, &p->regular, 7.5f, MUTED, COL_AMOUNT_R, y, RIGHT - TOTALS_X, LEADING, 1,
         ALIGN_RIGHT, line);
    return y;
}

/* A hairline and one small line at the bottom: who, which invoice, which page. */
static void draw_footer(pdf_t *p, const gh_invoice_doc_t *doc)
{
    const float y = PAGE_H - 34.0f;
    char left[TEXT_MAX * 2];
    hline(p, LEFT, RIGHT, FOOTER_TOP + 10.0f, 0.5f, HAIRLINE);
    join(left, sizeof(left), doc->number, " \xc2\xb7 ", doc->seller.name);
    para(p, &p->regular, 7.5f, MUTED, LEFT, y, 380.0f, 10.0f, 1, ALIGN_LEFT, left);
    char page[] = "Page 1 of 1";
    put(p, &p->regular, 7.5f, MUTED, RIGHT, y, ALIGN_RIGHT, page);
}

/* Title, author and creator in the document information dictionary. libharu writes these
 * strings byte for byte and readers take them as PDFDocEncoding, which agrees with CP1252
 * only outside 0x80-0x9F, so those bytes become '?'. */
static void set_info(pdf_t *p, const gh_invoice_doc_t *doc, HPDF_Date created)
{
    char utf8[TEXT_MAX], text[TEXT_MAX];
    snprintf(utf8, sizeof(utf8), "Invoice %s", doc->number);
    const struct {
        HPDF_InfoType type;
        const char *value;
    } attrs[] = {
        {HPDF_INFO_TITLE, utf8},
        {HPDF_INFO_AUTHOR, doc->seller.name},
        {HPDF_INFO_CREATOR, "Gatehouse"},
    };
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        if (empty(attrs[i].value))
            continue;
        to_cp1252(attrs[i].value, text, sizeof(text));
        for (char *c = text; *c; c++)
            if ((unsigned char)*c >= 0x80 && (unsigned char)*c <= 0x9F)
                *c = '?';
        if (!step(p, HPDF_SetInfoAttr(p->doc, attrs[i].type, text)))
            return;
    }
    step(p, HPDF_SetInfoDateAttr(p->doc, HPDF_INFO_CREATION_DATE, created));
}

/* Draws the whole page; errors are collected in `p` and checked by the caller. */
static void draw(pdf_t *p, const gh_invoice_doc_t *doc, const char *date)
{
    float y = draw_header(p, doc);

    float facts_end = draw_facts(p, doc, date, y + 26.0f);
    float panel_end = draw_amount_panel(p, doc, date, y + 14.0f);
    y = (facts_end > panel_end ? facts_end : panel_end) + 22.0f;

    /* "Bill to" lines up with the amount panel above it. */
    float from_end = draw_party(p, "From", &doc->seller, LEFT, y, 230.0f);
    float to_end = draw_party(p, "Bill to", &doc->buyer, RIGHT - 200.0f, y, 200.0f);
    y = (from_end > to_end ? from_end : to_end) + 18.0f;

    y = draw_lines(p, doc, y);
    y = draw_totals(p, doc, y);
    if (!empty(doc->note))
        y = para(p, &p->regular, 8.0f, MUTED, LEFT, y + 30.0f, RIGHT - LEFT, NOTE_LEADING,
                 NOTE_LINES_MAX, ALIGN_LEFT, doc->note);
    /* Every field is cut to a fixed number of lines, so the last baseline stays above the
     * footer for any input (para returns the baseline after the last line). */
    assert(y - NOTE_LEADING <= FOOTER_TOP);
    draw_footer(p, doc);
}

gh_err_t gh_invoice_pdf(const gh_invoice_doc_t *doc, unsigned char **out, size_t *out_len)
{
    if (!doc || !out || !out_len)
        return GH_EINVAL;
    *out = NULL;
    *out_len = 0;
    if (empty(doc->number) || doc->nlines < 1 || doc->nlines > GH_INVOICE_LINES_MAX)
        return GH_EINVAL;
    char date[48];
    HPDF_Date created;
    gh_err_t rc = issue_date(doc->issued_at, date, sizeof(date), &created);
    if (rc)
        return rc;

    pdf_t p = {0};
    p.doc = HPDF_New(on_error, &p);
    if (!p.doc)
        return GH_ENOMEM;
    rc = GH_EINTERNAL;
    if (!step(&p, HPDF_SetCompressionMode(p.doc, HPDF_COMP_ALL)))
        goto out_free_doc;
    set_info(&p, doc, created);
    if (failed(&p))
        goto out_free_doc;
    p.page = HPDF_AddPage(p.doc);
    if (!p.page || failed(&p) ||
        !step(&p, HPDF_Page_SetSize(p.page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT)))
        goto out_free_doc;
    if (face_load(&p, &p.regular, "Helvetica") || face_load(&p, &p.bold, "Helvetica-Bold"))
        goto out_free_doc;

    draw(&p, doc, date);
    if (failed(&p) || HPDF_SaveToStream(p.doc) != HPDF_OK || failed(&p))
        goto out_free_doc;

    HPDF_UINT32 size = HPDF_GetStreamSize(p.doc);
    if (failed(&p) || size == 0)
        goto out_free_doc;
    unsigned char *buf = malloc(size);
    if (!buf) {
        rc = GH_ENOMEM;
        goto out_free_doc;
    }
    HPDF_UINT32 got = size;
    if (HPDF_ReadFromStream(p.doc, buf, &got) != HPDF_OK || got != size) {
        free(buf);
        goto out_free_doc;
    }
    *out = buf;
    *out_len = size;
    rc = GH_OK;

out_free_doc:
    /* Best effort: some libharu paths record a failed allocation without calling on_error,
     * and the next call then overwrites it with "invalid document". */
    if (rc == GH_EINTERNAL && (p.error == HPDF_FAILD_TO_ALLOC_MEM ||
                               HPDF_GetError(p.doc) == HPDF_FAILD_TO_ALLOC_MEM))
        rc = GH_ENOMEM;
    HPDF_Free(p.doc);
    return rc;
}
