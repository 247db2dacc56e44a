/* Request framing checks (see framing.h). */
#include "lib/framing.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* At most this many bytes of a client's header name are shown in a message. */
#define FRAMING_SHOWN_MAX 40

/* The bytes a header name may hold (RFC 9110's tchar): the model path checks every name of
 * every request, so a byte costs one load. */
static const bool tchar[256] = {
    ['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true, ['\''] = true,
    ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true, ['^'] = true, ['_'] = true,
    ['`'] = true, ['|'] = true, ['~'] = true,
    ['0'] = true, ['1'] = true, ['2'] = true, ['3'] = true, ['4'] = true, ['5'] = true,
    ['6'] = true, ['7'] = true, ['8'] = true, ['9'] = true,
    ['A'] = true, ['B'] = true, ['C'] = true, ['D'] = true, ['E'] = true, ['F'] = true,
    ['G'] = true, ['H'] = true, ['I'] = true, ['J'] = true, ['K'] = true, ['L'] = true,
    ['M'] = true, ['N'] = true, ['O'] = true, ['P'] = true, ['Q'] = true, ['R'] = true,
    ['S'] = true, ['T'] = true, ['U'] = true, ['V'] = true, ['W'] = true, ['X'] = true,
    ['Y'] = true, ['Z'] = true,
    ['a'] = true, ['b'] = true, ['c'] = true, ['d'] = true, ['e'] = true, ['f'] = true,
    ['g'] = true, ['h'] = true, ['i'] = true, ['j'] = true, ['k'] = true, ['l'] = true,
    ['m'] = true, ['n'] = true, ['o'] = true, ['p'] = true, ['q'] = true, ['r'] = true,
    ['s'] = true, ['t'] = true, ['u'] = true, ['v'] = true, ['w'] = true, ['x'] = true,
    ['y'] = true, ['z'] = true,
};

/* Whether a value holds NUL, CR or LF. Those are all below 0x0e: most bytes are told apart by
 * one comparison. */
static bool has_nul_cr_lf(const char *v, size_t len)
{
    for (size_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)v[j];
        if (c <= '\r' && (c == '\0' || c == '\r' || c == '\n'))
            return true;
    }
    return false;
}

static bool name_is(const gh_framing_header_t *h, const char *name)
{
    size_t len = strlen(name);
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

/* Copies up to FRAMING_SHOWN_MAX printable ASCII bytes of `s`, others as '?'. */
static void shown(char *dst, size_t dst_size, const char *s, size_t len)
{
    assert(dst_size > FRAMING_SHOWN_MAX);
    size_t n = len < FRAMING_SHOWN_MAX ? len : FRAMING_SHOWN_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    dst[n] = '\0';
}

/* Trims optional whitespace on both sides, as RFC 9110 allows around a field value. */
static void trim_ows(const char **v, size_t *len)
{
    while (*len && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*len)--;
    }
    while (*len && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
        (*len)--;
}

static bool all_digits(const char *v, size_t len)
{
    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

int gh_framing_check(const gh_framing_header_t *h, size_t n, bool http11, char *msg,
                     size_t msg_size)
{
    char name[FRAMING_SHOWN_MAX + 1];
    const gh_framing_header_t *cl = NULL, *te = NULL;
    size_t hosts = 0;

    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == 0) {
            snprintf(msg, msg_size,
                     "A header line has no name (a folded continuation line?); send each "
                     "header on one line.");
            return 400;
        }
        for (size_t j = 0; j < h[i].name_len; j++) {
            if (!tchar[(unsigned char)h[i].name[j]]) {
                shown(name, sizeof(name), h[i].name, h[i].name_len);
                snprintf(msg, msg_size,
                         "The header name \"%s\" contains a character not allowed in a header "
                         "name (no spaces before the colon).",
                         name);
                return 400;
            }
        }
        if (has_nul_cr_lf(h[i].value, h[i].value_len)) {
            shown(name, sizeof(name), h[i].name, h[i].name_len);
            snprintf(msg, msg_size, "The value of the header %s contains a NUL, CR or LF.", name);
            return 400;
        }
        if (name_is(&h[i], "host")) {
            hosts++;
        } else if (name_is(&h[i], "content-length")) {
            const char *v = h[i].value;
            size_t len = h[i].value_len;
            trim_ows(&v, &len);
            if (!all_digits(v, len)) {
                snprintf(msg, msg_size, "Content-Length must be a decimal number of bytes.");
                return 400;
            }
            if (cl != NULL) {
                const char *w = cl->value;
                size_t wlen = cl->value_len;
                trim_ows(&w, &wlen);
                if (wlen != len || memcmp(v, w, len) != 0) {
                    snprintf(msg, msg_size,
                             "The request has two Content-Length headers with different values; "
                             "send one.");
                    return 400;
                }
            }
            cl = &h[i];
        } else if (name_is(&h[i], "transfer-encoding")) {
            if (te != NULL) {
                snprintf(msg, msg_size,
                         "The request has more than one Transfer-Encoding header; send one.");
                return 400;
            }
            te = &h[i];
        }
    }
    if (te != NULL && cl != NULL) {
        snprintf(msg, msg_size,
                 "The request has both Transfer-Encoding and Content-Length; send only one.");
        return 400;
    }
    if (te != NULL) {
        const char *v = te->value;
        size_t len = te->value_len;
        trim_ows(&v, &len);
        if (len != 7 || strncasecmp(v, "chunked", 7) != 0) {
            char coding[FRAMING_SHOWN_MAX + 1];
            shown(coding, sizeof(coding), v, len);
            snprintf(msg, msg_size,
                     "The transfer coding \"%s\" is not supported; send the body with "
                     "Content-Length or Transfer-Encoding: chunked.",
                     coding);
            return 501;
        }
    }
    if (http11 && hosts != 1) {
        snprintf(msg, msg_size,
                 hosts == 0 ? "An HTTP/1.1 request needs a Host header."
                            : "The request has more than one Host header; send one.");
        return 400;
    }
    return 0;
}

/* Finds the end of the line starting at `p` (the LF); NULL if there is none before `end`. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

int gh_framing_check_head(const char *buf, size_t len, char *msg, size_t msg_size)
{
    gh_framing_header_t h[GH_FRAMING_HEADERS_MAX];
    size_t n = 0;
    const char *p = buf, *end = buf + len;

    if (memchr(buf, '\0', len) != NULL) {
        snprintf(msg, msg_size, "The request head contains a NUL byte.");
        return 400;
    }
    /* The request line: METHOD SP target SP HTTP/1.x */
    const char *eol = line_end(p, end);
    if (eol == NULL) {
        snprintf(msg, msg_size, "The request head is incomplete.");
        return 400;
    }
    size_t line_len = (size_t)(eol - p);
    if (line_len && p[line_len - 1] == '\r')
        line_len--;
    bool http11 = line_len >= 9 && memcmp(p + line_len - 9, " HTTP/1.1", 9) == 0;
    p = eol + 1;

    for (;;) {
        eol = line_end(p, end);
        if (eol == NULL) {
            snprintf(msg, msg_size, "The request head is incomplete.");
            return 400;
        }
        line_len = (size_t)(eol - p);
        if (line_len && p[line_len - 1] == '\r')
            line_len--;
        if (memchr(p, '\r', line_len) != NULL) {
            snprintf(msg, msg_size, "A header line contains a bare CR.");
            return 400;
        }
        if (line_len == 0)
            break; /* the empty line ends the head */
        if (p[0] == ' ' || p[0] == '\t') {
            snprintf(msg, msg_size,
                     "Folded header lines (obs-fold) are not accepted; send each header on one "
                     "line.");
            return 400;
        }
        const char *colon = memchr(p, ':', line_len);
        if (colon == NULL) {
            snprintf(msg, msg_size, "A header line has no colon.");
            return 400;
        }
        if (n == GH_FRAMING_HEADERS_MAX) {
            snprintf(msg, msg_size, "The request has more than %d headers.",
                     GH_FRAMING_HEADERS_MAX);
            return 400;
        }
        h[n].name = p;
        h[n].name_len = (size_t)(colon - p);
        h[n].value = colon + 1;
        h[n].value_len = line_len - h[n].name_len - 1;
        trim_ows(&h[n].value, &h[n].value_len);
        n++;
        p = eol + 1;
    }
    return gh_framing_check(h, n, http11, msg, msg_size);
}
