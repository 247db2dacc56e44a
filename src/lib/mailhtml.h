/* The HTML alternative of a mail (issue 16, point 11). Every mail Gatehouse sends is written
 * as plain text first; this turns that text into a simple HTML page for mail clients that
 * show HTML: the product name on top, the text's paragraphs, the action link as a button and
 * a plain footer. The button's address is the very link the text carries (the paragraph that
 * is exactly that link becomes the button, with the link itself printed under it), so both
 * parts always lead to the same place. Every piece of text is HTML-escaped: organization
 * names, inviter names and the like are user input. Inline styles and a table layout only,
 * which is what mail clients render. */
#ifndef GH_LIB_MAILHTML_H
#define GH_LIB_MAILHTML_H

#include "lib/err.h"

/* Renders the HTML of the mail whose text is `text` into a malloc'd string the caller frees.
 * `button_label` and `button_url` may be NULL (no button); a `button_url` that is not an
 * http(s) address gets no button. The text's closing signature line ("— Product") is left
 * out: the footer names the product. GH_ETOOBIG past 256 KiB, GH_ENOMEM. */
gh_err_t gh_mailhtml_render(const char *product, const char *subject, const char *text,
                            const char *button_label, const char *button_url, char **out);

#endif
