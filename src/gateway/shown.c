/* Client-controlled text made safe to echo in JSON or write in a log line (see shown.h). */
#include "gateway/shown.h"

#include <assert.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at `s` (at most `avail` bytes), or 0 when the
 * bytes there are not one (Unicode table 3-7: no overlongs, surrogates or values past
 * U+10FFFF). */
static size_t utf8_sequence_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* Copies up to `max` bytes of `src` into `dst` (GH_SHOWN_SIZE(max) bytes) as well-formed
 * UTF-8 without NUL bytes, ready for gh_json_escape: a byte that does not start a valid
 * sequence becomes '?', a character is never split, and a cut is marked with an ellipsis.
 * Clients may send raw bytes above 0x7F in a path, which would make our JSON invalid. */
void gh_shown_utf8(char *dst, const char *src, size_t len, size_t max)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t in = 0, out = 0;
    assert(max > 0);
    while (in < len) {
        size_t n = utf8_sequence_len(s + in, len - in);
        if (out + (n ? n : 1) > max)
            break;
        if (n == 0 || s[in] == '\0') {
            dst[out++] = '?';
            in++;
        } else {
            memcpy(dst + out, s + in, n);
            out += n;
            in += n;
        }
    }
    if (in < len) {
        memcpy(dst + out, GH_SHOWN_ELLIPSIS, sizeof(GH_SHOWN_ELLIPSIS) - 1);
        out += sizeof(GH_SHOWN_ELLIPSIS) - 1;
    }
    dst[out] = '\0';
}

/* Copies up to `max` bytes of `src` into `dst` (GH_SHOWN_TEXT_SIZE(max) bytes) for a text log
 * line: every byte outside printable ASCII, and the space, is percent-encoded, so a field
 * can neither split the line nor shift the fields after it. */
void gh_shown_text(char *dst, const char *src, size_t len, size_t max)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t shown = len < max ? len : max;
    size_t out = 0;
    assert(max > 0);
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c > 0x20 && c < 0x7F) {
            dst[out++] = (char)c;
        } else {
            dst[out++] = '%';
            dst[out++] = hex[c >> 4];
            dst[out++] = hex[c & 0xF];
        }
    }
    if (shown < len) {
        memcpy(dst + out, GH_SHOWN_ELLIPSIS, sizeof(GH_SHOWN_ELLIPSIS) - 1);
        out += sizeof(GH_SHOWN_ELLIPSIS) - 1;
    }
    dst[out] = '\0';
}
