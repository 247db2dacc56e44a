/* Model API requests: the strict JSON scanner, request validation, the upstream body rewrite
 * and the wire errors. See request.h for why the body is scanned rather than tokenized. */
#include "gateway/request.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "lib/json_str.h"

static_assert(GH_REQUEST_DEPTH_MAX <= 255, "the scanner's depth fits its counters");

/* ---- Scanner ------------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *s;
    size_t len;
    size_t i;
    const char *what;
} scan_t;

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static void skip_ws_run(scan_t *sc)
{
    while (sc->i < sc->len && is_ws(sc->s[sc->i]))
        sc->i++;
}

/* Most places the scanner skips whitespace have none (a request sent compact: ~90 a request),
 * so the first byte is looked at where it is called. */
static inline __attribute__((always_inline)) void skip_ws(scan_t *sc)
{
    if (sc->i < sc->len && sc->s[sc->i] > ' ')
        return;
    skip_ws_run(sc);
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Where the run of plain string bytes (not a quote, a backslash or a control character)
 * starting at `i` may end, sixteen bytes at a time: at or before the first byte that is not
 * plain, never past `len`; the byte loop after it finds the exact place. A prompt is mostly
 * one long string, and the byte loop alone took a nanosecond a byte on the model path. */
static size_t plain_run(const unsigned char *s, size_t i, size_t len)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i top_control = _mm_set1_epi8(0x1f), zero = _mm_setzero_si128();
    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* v <= 0x1f, unsigned: saturating v - 0x1f is zero (a signed compare would take
         * every byte of 0x80 and above, UTF-8's, for a control character). */
        __m128i control = _mm_cmpeq_epi8(_mm_subs_epu8(v, top_control), zero);
        __m128i stop = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
        int mask = _mm_movemask_epi8(stop);
        if (mask != 0)
            return i + (size_t)__builtin_ctz((unsigned)mask);
        i += 16;
    }
#else
    (void)s, (void)len;
#endif
    return i;
}

/* Scans the string whose opening quote is at sc->i; leaves sc->i past the closing quote. */
static bool scan_string(scan_t *sc, bool *escaped)
{
    const unsigned char *s = sc->s;
    size_t i = sc->i + 1, len = sc->len;
    *escaped = false;
    for (;;) {
        /* The common case: plain bytes up to the next quote or backslash. */
        i = plain_run(s, i, len);
        while (i < len && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20)
            i++;
        if (i >= len) {
            sc->i = i;
            sc->what = "a string is not closed";
            return false;
        }
        if (s[i] == '"') {
            sc->i = i + 1;
            return true;
        }
        if (s[i] < 0x20) {
            sc->i = i;
            sc->what = "a control character must be escaped in a string";
            return false;
        }
        /* A backslash. */
        *escaped = true;
        if (i + 1 >= len) {
            sc->i = i;
            sc->what = "a string is not closed";
            return false;
        }
        switch (s[i + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            i += 2;
            break;
        case 'u':
            if (i + 6 > len || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4]) ||
                !is_hex(s[i + 5])) {
                sc->i = i;
                sc->what = "a \\u escape needs four hexadecimal digits";
                return false;
            }
            i += 6;
            break;
        default:
            sc->i = i;
            sc->what = "a string has an invalid escape";
            return false;
        }
    }
}

/* Scans a number at sc->i (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?). */
static bool scan_number(scan_t *sc)
{
    const unsigned char *s = sc->s;
    size_t i = sc->i, len = sc->len;
    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0') {
        i++;
    } else if (i < len && s[i] >= '1' && s[i] <= '9') {
        while (i < len && is_digit(s[i]))
            i++;
    } else {
        goto bad;
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            goto bad;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            goto bad;
        while (i < len && is_digit(s[i]))
            i++;
    }
    sc->i = i;
    return true;
bad:
    sc->i = i;
    sc->what = "a number is malformed";
    return false;
}

static bool scan_literal(scan_t *sc, const char *word, size_t n)
{
    if (sc->len - sc->i < n || memcmp(sc->s + sc->i, word, n) != 0) {
        sc->what = "unexpected character";
        return false;
    }
    sc->i += n;
    return true;
}

gh_err_t gh_request_scan(const char *json, size_t len, unsigned depth_max,
                         gh_json_member_cb on_member, void *ctx, size_t *err_at,
                         const char **what)
{
    /* The open containers, innermost last: '{' or '['. */
    unsigned char stack[GH_REQUEST_DEPTH_MAX];
    unsigned depth = 0;
    scan_t sc = {(const unsigned char *)json, len, 0, NULL};
    gh_json_member_t m;
    gh_err_t rc = GH_EINVAL;
    bool escaped;

    assert(depth_max >= 1 && depth_max <= GH_REQUEST_DEPTH_MAX);
    memset(&m, 0, sizeof(m));
    skip_ws(&sc);
    if (sc.i >= len || sc.s[sc.i] != '{') {
        sc.what = sc.i >= len ? "the body is empty" : "the body must be a JSON object";
        goto out_fail;
    }

    /* Each turn reads one value, then what may follow it. */
    for (;;) {
        skip_ws(&sc);
        if (sc.i >= len) {
            sc.what = "the body ends in the middle of a value";
            goto out_fail;
        }
        unsigned char c = sc.s[sc.i];
        if (depth == 1) {
            m.value_start = sc.i;
            m.items = 0;
        } else if (depth == 2) {
            m.items++;
        }
        if (c == '{' || c == '[') {
            if (depth == depth_max) {
                sc.what = "the body nests too deep";
                rc = GH_ETOOBIG;
                goto out_fail;
            }
            if (depth == 1)
                m.type = c == '{' ? GH_JSON_OBJECT : GH_JSON_ARRAY;
            stack[depth++] = c;
            sc.i++;
            skip_ws(&sc);
            if (sc.i < len && sc.s[sc.i] == (c == '{' ? '}' : ']')) {
                sc.i++;
                depth--;
                goto value_done;
            }
            if (c == '[')
                continue; /* the first element */
            goto read_key;
        }
        if (c == '"') {
            if (!scan_string(&sc, &escaped))
                goto out_fail;
            m.type = depth == 1 ? GH_JSON_STRING : m.type;
        } else if (c == 't') {
            if (!scan_literal(&sc, "true", 4))
                goto out_fail;
            m.type = depth == 1 ? GH_JSON_TRUE : m.type;
        } else if (c == 'f') {
            if (!scan_literal(&sc, "false", 5))
                goto out_fail;
            m.type = depth == 1 ? GH_JSON_FALSE : m.type;
        } else if (c == 'n') {
            if (!scan_literal(&sc, "null", 4))
                goto out_fail;
            m.type = depth == 1 ? GH_JSON_NULL : m.type;
        } else if (c == '-' || is_digit(c)) {
            if (!scan_number(&sc))
                goto out_fail;
            m.type = depth == 1 ? GH_JSON_NUMBER : m.type;
        } else {
            sc.what = "unexpected character";
            goto out_fail;
        }

    value_done:
        /* A value ended (a container just closed, or a scalar). */
        if (depth == 0) {
            skip_ws(&sc);
            if (sc.i != len) {
                sc.what = "unexpected data after the JSON object";
                goto out_fail;
            }
            return GH_OK;
        }
        if (depth == 1) {
            m.value_end = sc.i;
            if (on_member != NULL && on_member(ctx, &m) != 0)
                return GH_ECONFLICT;
        }
        skip_ws(&sc);
        if (sc.i >= len) {
            sc.what = "the body ends before the JSON is closed";
            goto out_fail;
        }
        c = sc.s[sc.i];
        if (c == ',') {
            sc.i++;
            if (stack[depth - 1] == '[')
                continue;
            goto read_key;
        }
        if ((c == '}' && stack[depth - 1] == '{') || (c == ']' && stack[depth - 1] == '[')) {
            sc.i++;
            depth--;
            goto value_done;
        }
        sc.what = stack[depth - 1] == '{' ? "expected ',' or '}' after a value"
                                          : "expected ',' or ']' after a value";
        goto out_fail;

    read_key:
        skip_ws(&sc);
        if (sc.i >= len || sc.s[sc.i] != '"') {
            sc.what = "expected a quoted key";
            goto out_fail;
        }
        {
            size_t key_start = sc.i + 1;
            if (!scan_string(&sc, &escaped))
                goto out_fail;
            if (depth == 1) {
                m.key = json + key_start;
                m.key_len = sc.i - 1 - key_start;
                m.key_escaped = escaped;
            }
        }
        skip_ws(&sc);
        if (sc.i >= len || sc.s[sc.i] != ':') {
            sc.what = "expected ':' after a key";
            goto out_fail;
        }
        sc.i++;
    }

out_fail:
    if (err_at != NULL)
        *err_at = sc.i;
    if (what != NULL)
        *what = sc.what;
    return rc;
}

static unsigned hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (unsigned)(c - 'a' + 10);
    return (unsigned)(c - 'A' + 10);
}

static unsigned hex4(const char *p)
{
    return hex_value(p[0]) << 12 | hex_value(p[1]) << 8 | hex_value(p[2]) << 4 | hex_value(p[3]);
}

bool gh_request_unescape(const char *raw, size_t len, char *out, size_t out_size,
                         size_t *out_len)
{
    if (out_size == 0)
        return false;
    /* The bytes before the first backslash (a model's name: all of them) in one copy. */
    const char *backslash = memchr(raw, '\\', len);
    size_t o = backslash != NULL ? (size_t)(backslash - raw) : len;
    if (o >= out_size)
        return false;
    memcpy(out, raw, o);
    for (size_t i = o; i < len;) {
        unsigned char utf8[4];
        size_t n = 0;
        if (raw[i] != '\\') {
            utf8[n++] = (unsigned char)raw[i++];
        } else {
            if (i + 1 >= len)
                return false;
            char e = raw[i + 1];
            i += 2;
            switch (e) {
            case '"': utf8[n++] = '"'; break;
            case '\\': utf8[n++] = '\\'; break;
            case '/': utf8[n++] = '/'; break;
            case 'b': utf8[n++] = '\b'; break;
            case 'f': utf8[n++] = '\f'; break;
            case 'n': utf8[n++] = '\n'; break;
            case 'r': utf8[n++] = '\r'; break;
            case 't': utf8[n++] = '\t'; break;
            case 'u': {
                if (i + 4 > len)
                    return false;
                unsigned cp = hex4(raw + i);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= len && raw[i] == '\\' &&
                    raw[i + 1] == 'u') {
                    unsigned lo = hex4(raw + i + 2);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD; /* a lone surrogate */
                if (cp < 0x80) {
                    utf8[n++] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    utf8[n++] = (unsigned char)(0xC0 | cp >> 6);
                    utf8[n++] = (unsigned char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    utf8[n++] = (unsigned char)(0xE0 | cp >> 12);
                    utf8[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    utf8[n++] = (unsigned char)(0x80 | (cp & 0x3F));
                } else {
                    utf8[n++] = (unsigned char)(0xF0 | cp >> 18);
                    utf8[n++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                    utf8[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    utf8[n++] = (unsigned char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            default:
                return false;
            }
        }
        if (o + n >= out_size)
            return false;
        memcpy(out + o, utf8, n);
        o += n;
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return true;
}

/* ---- Requests ------------------------------------------------------------------------------ */

enum { F_MODEL, F_MESSAGES, F_MAX_TOKENS, F_MAX_COMPLETION_TOKENS, F_STREAM, F_STREAM_OPTIONS,
       F_COUNT };

static const char *const field_names[F_COUNT] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options",
};

typedef struct {
    const char *body;
    gh_json_member_t fields[F_COUNT];
    bool seen[F_COUNT];
    int duplicate; /* a field seen twice, or -1 */
} parse_ctx_t;

/* Longest key we compare against (with its NUL); longer keys are none of ours. */
#define KEY_MAX 32

/* The field `m`'s key names, decoding escapes first, or -1. */
static int field_of(const gh_json_member_t *m, const char *const *names, int count)
{
    char key[KEY_MAX];
    const char *k = m->key;
    size_t klen = m->key_len;
    if (m->key_escaped) {
        if (!gh_request_unescape(m->key, m->key_len, key, sizeof(key), &klen))
            return -1;
        k = key;
    }
    for (int f = 0; f < count; f++)
        if (strlen(names[f]) == klen && memcmp(names[f], k, klen) == 0)
            return f;
    return -1;
}

static int on_request_member(void *arg, const gh_json_member_t *m)
{
    parse_ctx_t *p = arg;
    int f = field_of(m, field_names, F_COUNT);
    if (f < 0)
        return 0;
    if (p->seen[f]) {
        p->duplicate = f;
        return 1;
    }
    p->seen[f] = true;
    p->fields[f] = *m;
    return 0;
}

/* Parses a JSON integer (the scanner already checked the number's grammar) that must be
 * >= 1. Returns false for fractions, exponents, negatives, zero and overflow. */
static bool positive_int(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v < 1)
        return false;
    *out = v;
    return true;
}

/* Checks a max_tokens-like field; writes a message and returns false when it is bad. */
static bool check_max_tokens(const char *body, const gh_json_member_t *m, const char *name,
                             bool allow_null, int64_t *out, char *msg)
{
    const char *v = body + m->value_start;
    size_t vlen = m->value_end - m->value_start;
    if (allow_null && m->type == GH_JSON_NULL)
        return true;
    if (m->type != GH_JSON_NUMBER || memchr(v, '.', vlen) || memchr(v, 'e', vlen) ||
        memchr(v, 'E', vlen)) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "%s: Input should be a valid integer", name);
        return false;
    }
    if (v[0] == '-' || !positive_int(v, vlen, out)) {
        if (v[0] == '-' || (vlen == 1 && v[0] == '0'))
            snprintf(msg, GH_REQUEST_MSG_MAX, "%s: Input should be greater than or equal to 1",
                     name);
        else
            snprintf(msg, GH_REQUEST_MSG_MAX, "%s: Input is too large", name);
        return false;
    }
    return true;
}

typedef struct {
    gh_json_member_t include_usage;
    bool seen;
    bool duplicate;
} so_ctx_t;

static int on_stream_options_member(void *arg, const gh_json_member_t *m)
{
    static const char *const names[] = {"include_usage"};
    so_ctx_t *p = arg;
    if (field_of(m, names, 1) != 0)
        return 0;
    if (p->seen) {
        p->duplicate = true;
        return 1;
    }
    p->seen = true;
    p->include_usage = *m;
    return 0;
}

static gh_err_t parse_stream_options(gh_request_t *r, const char *body, const gh_json_member_t *m,
                                     char *msg)
{
    r->stream_options = true;
    r->stream_options_type = m->type;
    r->stream_options_start = m->value_start;
    r->stream_options_end = m->value_end;
    r->stream_options_members = m->items;
    if (m->type == GH_JSON_NULL)
        return GH_OK;
    if (m->type != GH_JSON_OBJECT) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "stream_options: Input should be a valid dictionary");
        return GH_EINVAL;
    }
    so_ctx_t so;
    memset(&so, 0, sizeof(so));
    /* Already checked as part of the body; this pass only finds include_usage. */
    gh_err_t rc = gh_request_scan(body + m->value_start, m->value_end - m->value_start,
                                  GH_REQUEST_DEPTH_MAX, on_stream_options_member, &so, NULL,
                                  NULL);
    if (rc == GH_ECONFLICT || so.duplicate) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "stream_options.include_usage: appears more than once");
        return GH_EINVAL;
    }
    if (rc != GH_OK) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "stream_options: Input should be a valid dictionary");
        return GH_EINVAL;
    }
    if (so.seen) {
        gh_json_type_t t = so.include_usage.type;
        if (t != GH_JSON_TRUE && t != GH_JSON_FALSE && t != GH_JSON_NULL) {
            snprintf(msg, GH_REQUEST_MSG_MAX,
                     "stream_options.include_usage: Input should be a valid boolean");
            return GH_EINVAL;
        }
        r->include_usage_present = true;
        r->include_usage_true = t == GH_JSON_TRUE;
        r->include_usage_start = m->value_start + so.include_usage.value_start;
        r->include_usage_end = m->value_start + so.include_usage.value_end;
    }
    return GH_OK;
}

gh_err_t gh_request_parse(gh_request_t *r, gh_api_kind_t api, const char *body, size_t len,
                          char msg[GH_REQUEST_MSG_MAX])
{
    parse_ctx_t p;
    size_t err_at = 0;
    const char *what = NULL;

    memset(r, 0, sizeof(*r));
    memset(&p, 0, sizeof(p));
    r->api = api;
    r->max_tokens = -1;
    p.body = body;
    p.duplicate = -1;
    msg[0] = '\0';

    gh_err_t rc = gh_request_scan(body, len, GH_REQUEST_DEPTH_MAX, on_request_member, &p,
                                  &err_at, &what);
    if (rc == GH_ECONFLICT) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "%s: appears more than once in the request body",
                 field_names[p.duplicate]);
        return GH_EINVAL;
    }
    if (rc == GH_ETOOBIG) {
        snprintf(msg, GH_REQUEST_MSG_MAX,
                 "The request body nests JSON deeper than %d levels.", GH_REQUEST_DEPTH_MAX);
        return GH_EINVAL;
    }
    if (rc != GH_OK) {
        if (len == 0)
            snprintf(msg, GH_REQUEST_MSG_MAX, "The request body is empty; it must be a JSON "
                                              "object.");
        else
            snprintf(msg, GH_REQUEST_MSG_MAX,
                     "The request body is not valid JSON: %s (at byte %zu).", what, err_at);
        return GH_EINVAL;
    }
    /* The scan ended at the closing brace, possibly followed by whitespace. */
    r->root_end = len;
    while (r->root_end > 0 && body[r->root_end - 1] != '}')
        r->root_end--;
    assert(r->root_end > 0);
    r->root_end--;

    /* model */
    const gh_json_member_t *m = &p.fields[F_MODEL];
    if (!p.seen[F_MODEL]) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "model: Field required");
        return GH_EINVAL;
    }
    if (m->type != GH_JSON_STRING) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "model: Input should be a valid string");
        return GH_EINVAL;
    }
    r->model_start = m->value_start;
    r->model_end = m->value_end;
    {
        const char *raw = body + m->value_start + 1;
        size_t raw_len = m->value_end - m->value_start - 2;
        if (raw_len == 0) {
            snprintf(msg, GH_REQUEST_MSG_MAX, "model: String should have at least 1 character");
            return GH_EINVAL;
        }
        if (!gh_request_unescape(raw, raw_len, r->model, sizeof(r->model), &r->model_len)) {
            /* Too long for any configured model: keep its start for the error message. */
            size_t n = raw_len < sizeof(r->model) - 1 ? raw_len : sizeof(r->model) - 1;
            memcpy(r->model, raw, n);
            r->model[n] = '\0';
            r->model_len = n;
            r->model_too_long = true;
        }
    }

    /* messages */
    m = &p.fields[F_MESSAGES];
    if (!p.seen[F_MESSAGES]) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "messages: Field required");
        return GH_EINVAL;
    }
    if (m->type != GH_JSON_ARRAY) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "messages: Input should be a valid list");
        return GH_EINVAL;
    }
    if (m->items == 0) {
        snprintf(msg, GH_REQUEST_MSG_MAX, "messages: List should have at least 1 item");
        return GH_EINVAL;
    }
    r->messages = m->items;

    /* max_tokens */
    if (api == GH_API_MESSAGES) {
        if (!p.seen[F_MAX_TOKENS]) {
            snprintf(msg, GH_REQUEST_MSG_MAX, "max_tokens: Field required");
            return GH_EINVAL;
        }
        if (!check_max_tokens(body, &p.fields[F_MAX_TOKENS], "max_tokens", false,
                              &r->max_tokens, msg))
            return GH_EINVAL;
    } else if (api == GH_API_CHAT) {
        if (p.seen[F_MAX_TOKENS] && !check_max_tokens(body, &p.fields[F_MAX_TOKENS],
                                                      "max_tokens", true, &r->max_tokens, msg))
            return GH_EINVAL;
        if (p.seen[F_MAX_COMPLETION_TOKENS] &&
            !check_max_tokens(body, &p.fields[F_MAX_COMPLETION_TOKENS], "max_completion_tokens",
                              true, &r->max_tokens, msg))
            return GH_EINVAL;
    }

    /* stream */
    if (p.seen[F_STREAM] && api != GH_API_COUNT_TOKENS) {
        gh_json_type_t t = p.fields[F_STREAM].type;
        if (t == GH_JSON_TRUE)
            r->stream = true;
        else if (t != GH_JSON_FALSE && !(api == GH_API_CHAT && t == GH_JSON_NULL)) {
            snprintf(msg, GH_REQUEST_MSG_MAX, "stream: Input should be a valid boolean");
            return GH_EINVAL;
        }
    }

    /* stream_options */
    if (api == GH_API_CHAT && p.seen[F_STREAM_OPTIONS]) {
        rc = parse_stream_options(r, body, &p.fields[F_STREAM_OPTIONS], msg);
        if (rc != GH_OK)
            return rc;
    }
    return GH_OK;
}

/* ---- Rewrite ------------------------------------------------------------------------------- */

#define INSERT_STREAM_OPTIONS ",\"stream_options\":{\"include_usage\":true}"
#define STREAM_OPTIONS_OBJECT "{\"include_usage\":true}"
#define INCLUDE_USAGE_MEMBER "\"include_usage\":true"
#define LIT(s) s, sizeof(s) - 1

/* One replacement of body[at, at + del) by `ins`. */
typedef struct {
    size_t at, del;
    const char *ins;
    size_t ins_len;
} edit_t;

/* The edits for `r`, in body order; returns how many (at most 3). */
static size_t plan_edits(const gh_request_t *r, const char *model_json, size_t model_json_len,
                         bool force_usage, edit_t out[3])
{
    size_t n = 0;
    out[n++] = (edit_t){r->model_start, r->model_end - r->model_start, model_json,
                        model_json_len};
    if (force_usage && r->api == GH_API_CHAT && r->stream) {
        if (!r->stream_options) {
            out[n++] = (edit_t){r->root_end, 0, LIT(INSERT_STREAM_OPTIONS)};
        } else if (r->stream_options_type == GH_JSON_NULL) {
            out[n++] = (edit_t){r->stream_options_start,
                                r->stream_options_end - r->stream_options_start,
                                LIT(STREAM_OPTIONS_OBJECT)};
        } else if (r->include_usage_present) {
            if (!r->include_usage_true)
                out[n++] = (edit_t){r->include_usage_start,
                                    r->include_usage_end - r->include_usage_start, LIT("true")};
        } else if (r->stream_options_members == 0) {
            out[n++] = (edit_t){r->stream_options_start + 1, 0, LIT(INCLUDE_USAGE_MEMBER)};
        } else {
            out[n++] = (edit_t){r->stream_options_start + 1, 0, LIT(INCLUDE_USAGE_MEMBER ",")};
        }
    }
    if (n == 2 && out[1].at < out[0].at) {
        edit_t t = out[0];
        out[0] = out[1];
        out[1] = t;
    }
    return n;
}

size_t gh_request_rewrite_size(const gh_request_t *r, size_t body_len, size_t model_json_len,
                               bool force_usage)
{
    edit_t e[3];
    size_t n = plan_edits(r, "", model_json_len, force_usage, e);
    size_t size = body_len;
    for (size_t i = 0; i < n; i++)
        size = size - e[i].del + e[i].ins_len;
    return size;
}

size_t gh_request_rewrite(const gh_request_t *r, const char *body, size_t body_len,
                          const char *model_json, size_t model_json_len, bool force_usage,
                          char *out)
{
    edit_t e[3];
    size_t n = plan_edits(r, model_json, model_json_len, force_usage, e);
    size_t from = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        assert(e[i].at >= from && e[i].at + e[i].del <= body_len);
        memcpy(out + o, body + from, e[i].at - from);
        o += e[i].at - from;
        memcpy(out + o, e[i].ins, e[i].ins_len);
        o += e[i].ins_len;
        from = e[i].at + e[i].del;
    }
    memcpy(out + o, body + from, body_len - from);
    return o + body_len - from;
}

/* ---- Errors -------------------------------------------------------------------------------- */

int gh_request_error_status(gh_err_t err, const char **type, const char **code)
{
    switch (err) {
    case GH_EINVAL:
        *type = "invalid_request_error", *code = "invalid_request";
        return 400;
    case GH_EAUTH:
        *type = "authentication_error", *code = "invalid_api_key";
        return 401;
    case GH_EBILLING:
        *type = "billing_error", *code = "billing_error";
        return 402;
    case GH_EPERM:
        *type = "permission_error", *code = "permission_denied";
        return 403;
    case GH_ENOTFOUND:
        *type = "not_found_error", *code = "model_not_found";
        return 404;
    case GH_ETOOBIG:
        *type = "request_too_large", *code = "request_too_large";
        return 413;
    case GH_ERATE:
        *type = "rate_limit_error", *code = "rate_limit_exceeded";
        return 429;
    case GH_EIO:
        *type = "api_error", *code = "upstream_error";
        return 502;
    case GH_ETIMEOUT:
        *type = "timeout_error", *code = "upstream_timeout";
        return 504;
    case GH_EUNAVAIL:
        *type = "overloaded_error", *code = "upstream_overloaded";
        return 529;
    default:
        *type = "api_error", *code = "internal_error";
        return 500;
    }
}

/* Room for an escaped message: messages are ours and short; a very long one is cut. */
#define MESSAGE_JSON_MAX 1200
static_assert(MESSAGE_JSON_MAX + 256 < GH_REQUEST_ERROR_MAX, "an error body fits its buffer");

static size_t render(gh_api_kind_t api, gh_err_t err, const char *message, const char *request_id,
                     bool event, char *out, size_t out_size)
{
    char msg[MESSAGE_JSON_MAX];
    const char *type, *code;
    int n;
    gh_request_error_status(err, &type, &code);
    gh_json_escape(msg, sizeof(msg), message);
    if (api == GH_API_CHAT)
        n = snprintf(out, out_size,
                     "%s{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                     "\"code\":\"%s\"}}%s",
                     event ? "data: " : "", msg, type, code, event ? "\n\n" : "");
    else
        n = snprintf(out, out_size,
                     "%s{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"},"
                     "\"request_id\":\"%s\"}%s",
                     event ? "event: error\ndata: " : "", type, msg, request_id,
                     event ? "\n\n" : "");
    assert(n > 0 && (size_t)n < out_size);
    return (size_t)n;
}

size_t gh_request_error_body(gh_api_kind_t api, gh_err_t err, const char *message,
                             const char *request_id, char *out, size_t out_size)
{
    return render(api, err, message, request_id, false, out, out_size);
}

size_t gh_request_error_event(gh_api_kind_t api, gh_err_t err, const char *message,
                              const char *request_id, char *out, size_t out_size)
{
    return render(api, err, message, request_id, true, out, out_size);
}
