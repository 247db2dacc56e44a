#include "lib/text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

gh_err_t gh_text_trim(const char *in, char *out, size_t out_size)
{
    while (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r')
        in++;
    size_t n = strlen(in);
    while (n && (in[n - 1] == ' ' || in[n - 1] == '\t' || in[n - 1] == '\n' || in[n - 1] == '\r'))
        n--;
    if (n >= out_size)
        return GH_ETOOBIG;
    memcpy(out, in, n);
    out[n] = '\0';
    return GH_OK;
}

gh_err_t gh_text_clean_note(const char *in, const char *field, size_t max_chars, char *out,
                            size_t out_size, char *msg, size_t msg_size)
{
    if (!in || gh_text_trim(in, out, out_size) || gh_utf8_chars(out) > max_chars) {
        snprintf(msg, msg_size, "%s is too long: use at most %zu characters.", field, max_chars);
        return GH_EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)out; *p; p++)
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f) {
            snprintf(msg, msg_size, "%s must not contain control characters.", field);
            return GH_EINVAL;
        }
    if (gh_text_is_blank(out)) {
        snprintf(msg, msg_size, "%s is required.", field);
        return GH_EINVAL;
    }
    return GH_OK;
}

int gh_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t gh_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

bool gh_text_is_blank(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            p++;
            continue;
        }
        if (p[0] == 0xC2 && p[1] == 0xA0) { /* U+00A0 */
            p += 2;
            continue;
        }
        if (p[0] == 0xE2 && p[1] == 0x80 && p[2] >= 0x80 && p[2] <= 0xAF) {
            p += 3; /* U+2000..U+202F: spaces, zero-width characters, marks */
            continue;
        }
        if (p[0] == 0xE2 && p[1] == 0x81 && p[2] >= 0x9F && p[2] <= 0xAF) {
            p += 3; /* U+205F..U+206F */
            continue;
        }
        if ((p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) || /* U+FEFF */
            (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)) { /* U+3000 */
            p += 3;
            continue;
        }
        return false;
    }
    return true;
}

bool gh_text_has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

bool gh_text_has_unsafe(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++) {
        if (p[0] < 0x20 || p[0] == 0x7f)
            return true;
        if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) /* C1: U+0080..U+009F */
            return true;
        if (p[0] == 0xD8 && p[1] == 0x9C) /* U+061C ARABIC LETTER MARK */
            return true;
        if (p[0] == 0xE2 && p[1] == 0x80 &&
            (p[2] == 0x8E || p[2] == 0x8F || (p[2] >= 0xA8 && p[2] <= 0xAE)))
            return true; /* U+200E, U+200F, U+2028..U+202E */
        if (p[0] == 0xE2 && p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9)
            return true; /* U+2066..U+2069 */
    }
    return false;
}

static bool label_ok(const char *l, size_t n)
{
    if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)l[i]) && l[i] != '-')
            return false;
    return true;
}

gh_err_t gh_email_normalize(const char *in, char *out, size_t out_size)
{
    char buf[256];
    if (gh_text_trim(in, buf, sizeof(buf)))
        return GH_EINVAL;
    size_t len = strlen(buf);
    if (len < 3 || len > 254 || len >= out_size)
        return GH_EINVAL;
    const char *at = strchr(buf, '@');
    if (!at || strchr(at + 1, '@'))
        return GH_EINVAL;
    size_t local = (size_t)(at - buf);
    if (local == 0 || local > 64 || buf[0] == '.' || buf[local - 1] == '.')
        return GH_EINVAL;
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),:;<>[\\]", c))
            return GH_EINVAL;
        if (c == '.' && buf[i + 1] == '.')
            return GH_EINVAL;
    }
    const char *d = at + 1;
    int labels = 0;
    const char *last = d;
    size_t last_len = 0;
    while (*d) {
        size_t n = strcspn(d, ".");
        if (!label_ok(d, n))
            return GH_EINVAL;
        last = d;
        last_len = n;
        labels++;
        d += n;
        if (*d == '.') {
            d++;
            if (!*d)
                return GH_EINVAL;
        }
    }
    if (labels < 2 || last_len < 2)
        return GH_EINVAL;
    for (size_t i = 0; i < last_len; i++)
        if (!isalpha((unsigned char)last[i]))
            return GH_EINVAL;
    for (size_t i = 0; i <= len; i++)
        out[i] = (char)tolower((unsigned char)buf[i]);
    return GH_OK;
}

/* Base letters for U+00C0..U+00FF ('.' where there is none: the multiplication and
 * division signs), lower-cased. */
static const char latin1_fold[] = "aaaaaaaceeeeiiiidnooooo.ouuuuyts"
                                  "aaaaaaaceeeeiiiidnooooo.ouuuuyty";

/* The next character of `*s` folded to one comparable byte; advances `*s`. Characters
 * outside ASCII and Latin-1 compare as themselves after every ASCII letter. */
static int fold_next(const unsigned char **s)
{
    const unsigned char *p = *s;
    if (p[0] < 0x80) {
        *s = p + 1;
        return tolower(p[0]);
    }
    if ((p[0] == 0xC3) && (p[1] & 0xC0) == 0x80) {
        *s = p + 2;
        char c = latin1_fold[p[1] & 0x3F]; /* U+00C0 + (p[1] & 0x3F) */
        return c == '.' ? 0x100 + p[1] : c;
    }
    int cp = p[0];
    *s = p + 1;
    while ((**s & 0xC0) == 0x80)
        (*s)++;
    return 0x200 + cp;
}

int gh_text_cmp_folded(const char *a, const char *b)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    while (*x && *y) {
        int cx = fold_next(&x), cy = fold_next(&y);
        if (cx != cy)
            return cx - cy;
    }
    if (*x || *y)
        return *x ? 1 : -1;
    return strcmp(a, b);
}

/* "00" to "99": a number is written two digits a division. */
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

size_t gh_u64_text(char out[GH_U64_TEXT_MAX], uint64_t v)
{
    /* The number of digits from the highest bit set (log10(2) ~ 1233/4096), one short of the
     * truth at most, which one comparison settles. */
    static const uint64_t pow10[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL,
                                       1000000ULL, 10000000ULL, 100000000ULL, 1000000000ULL,
                                       10000000000ULL, 100000000000ULL, 1000000000000ULL,
                                       10000000000000ULL, 100000000000000ULL,
                                       1000000000000000ULL, 10000000000000000ULL,
                                       100000000000000000ULL, 1000000000000000000ULL,
                                       10000000000000000000ULL};
    unsigned bits = v == 0 ? 1 : 64 - (unsigned)__builtin_clzll(v);
    size_t n = (bits * 1233) >> 12;
    if (n < 20 && v >= pow10[n])
        n++;
    if (n == 0)
        n = 1;
    char *p = out + n;
    *p = '\0';
    while (v >= 100) {
        unsigned pair = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = digit_pairs[pair + 1];
        *--p = digit_pairs[pair];
    }
    if (v >= 10) {
        *--p = digit_pairs[v * 2 + 1];
        *--p = digit_pairs[v * 2];
    } else {
        *--p = (char)('0' + v);
    }
    return n;
}
