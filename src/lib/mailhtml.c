#include "lib/mailhtml.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

#define HTML_MAX (256 * 1024)

/* Appends `n` bytes of `s` escaped for HTML text and attribute values; line breaks become
 * <br> when `br`. */
static void put_esc_n(gh_buf_t *b, const char *s, size_t n, bool br)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        case '\r': rep = ""; break;
        case '\n': rep = br ? "<br>\n" : " "; break;
        default: break;
        }
        if (!rep)
            continue;
        gh_buf_put_n(b, s + from, i - from);
        gh_buf_put(b, rep);
        from = i + 1;
    }
    gh_buf_put_n(b, s + from, n - from);
}

static void put_esc(gh_buf_t *b, const char *s)
{
    put_esc_n(b, s, strlen(s), false);
}

static bool is_http(const char *url)
{
    return url && (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7)) &&
           !strpbrk(url, " \t\r\n");
}

/* The paragraph [p, p + n) without surrounding blank space. */
static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\n' || **p == '\r' || **p == '\t'))
        (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\n' || (*p)[*n - 1] == '\r' ||
                  (*p)[*n - 1] == '\t'))
        (*n)--;
}

static const char SIGNATURE[] = "\xE2\x80\x94 "; /* "— " */

static void put_button(gh_buf_t *b, const char *label, const char *url)
{
    gh_buf_put(b, "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" "
           "style=\"margin:24px 0\"><tr><td style=\"border-radius:6px;background:#1f2937\">"
           "<a class=\"button\" href=\"");
    put_esc(b, url);
    gh_buf_put(b, "\" style=\"display:inline-block;padding:12px 22px;font-weight:600;font-size:15px;"
           "color:#ffffff;text-decoration:none;border-radius:6px\">");
    put_esc(b, label);
    gh_buf_put(b, "</a></td></tr></table>\n<p style=\"margin:0 0 16px;font-size:13px;color:#4b5563\">"
           "Or open this link: <a class=\"link\" href=\"");
    put_esc(b, url);
    gh_buf_put(b, "\" style=\"color:#1d4ed8;word-break:break-all\">");
    put_esc(b, url);
    gh_buf_put(b, "</a></p>\n");
}

gh_err_t gh_mailhtml_render(const char *product, const char *subject, const char *text,
                            const char *button_label, const char *button_url, char **out)
{
    *out = NULL;
    bool button = button_label && *button_label && is_http(button_url);
    bool button_done = false;
    gh_buf_t b;
    gh_buf_init(&b, HTML_MAX);
    gh_buf_put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>");
    put_esc(&b, subject);
    gh_buf_put(&b, "</title></head>\n<body style=\"margin:0;padding:0;background:#f3f4f6\">\n"
            "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" "
            "style=\"background:#f3f4f6\"><tr><td align=\"center\" style=\"padding:24px 12px\">\n"
            "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" "
            "style=\"max-width:560px;background:#ffffff;border:1px solid #e5e7eb;"
            "border-radius:8px\"><tr><td style=\"padding:28px 28px 8px;font-family:-apple-system,"
            "'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;"
            "color:#111827\">\n<p class=\"product\" style=\"margin:0 0 20px;font-size:18px;"
            "font-weight:700\">");
    put_esc(&b, product);
    gh_buf_put(&b, "</p>\n");
    for (const char *p = text; *p;) {
        const char *end = strstr(p, "\n\n");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *para = p;
        size_t plen = n;
        p += n;
        while (*p == '\n')
            p++;
        trim(&para, &plen);
        if (!plen)
            continue;
        if (!*p && plen >= sizeof(SIGNATURE) - 1 &&
            !memcmp(para, SIGNATURE, sizeof(SIGNATURE) - 1))
            continue; /* the signature: the footer names the product */
        if (button && !button_done && plen == strlen(button_url) &&
            !memcmp(para, button_url, plen)) {
            put_button(&b, button_label, button_url);
            button_done = true;
            continue;
        }
        gh_buf_put(&b, "<p style=\"margin:0 0 16px\">");
        put_esc_n(&b, para, plen, true);
        gh_buf_put(&b, "</p>\n");
    }
    if (button && !button_done) /* the text names no link on its own line: the button still */
        put_button(&b, button_label, button_url);
    gh_buf_put(&b, "</td></tr>\n<tr><td class=\"footer\" style=\"padding:16px 28px 24px;border-top:1px "
            "solid #e5e7eb;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,"
            "sans-serif;font-size:12px;line-height:1.5;color:#6b7280\">Sent by ");
    put_esc(&b, product);
    gh_buf_put(&b, ".</td></tr></table>\n"
            "</td></tr></table>\n</body></html>\n");
    gh_err_t rc = b.err;
    *out = gh_buf_take(&b);
    return *out ? GH_OK : rc;
}
