#include "lib/stripe_sig.h"

#include <assert.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define HEX_LEN (crypto_auth_hmacsha256_BYTES * 2)

static_assert(GH_STRIPE_SIG_SIGNED_MAX >=
                  sizeof("t=,v1=") + GH_STRIPE_SIG_TIMESTAMP_DIGITS + HEX_LEN,
              "a signed header fits in GH_STRIPE_SIG_SIGNED_MAX");

/* Lowercase hex HMAC-SHA256 of "<ts>.<payload>" keyed with `secret`, into `hex` (HEX_LEN + 1
 * bytes). `ts` is the timestamp exactly as it appears in the header. */
static void signature_hex(char hex[HEX_LEN + 1], const char *ts, size_t ts_len,
                          const char *payload, size_t payload_len, const char *secret)
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, ts_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)payload, payload_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, HEX_LEN + 1, mac, sizeof(mac));
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(mac, sizeof(mac));
}

/* Parses 1..GH_STRIPE_SIG_TIMESTAMP_DIGITS decimal digits; false for anything else. */
static bool parse_timestamp(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > GH_STRIPE_SIG_TIMESTAMP_DIGITS)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

gh_err_t gh_stripe_sig_verify(const char *header, const char *payload, size_t payload_len,
                              const char *secret, int64_t now, int64_t tolerance_s)
{
    assert(payload || payload_len == 0);
    assert(secret);
    assert(tolerance_s >= 0);
    if (!header)
        return GH_EINVAL;
    size_t header_len = strnlen(header, GH_STRIPE_SIG_HEADER_MAX + 1);
    if (header_len == 0 || header_len > GH_STRIPE_SIG_HEADER_MAX)
        return GH_EINVAL;

    /* First pass: the header's shape and its one timestamp. Every element is "key=value";
     * an empty element (",," or a trailing comma) is malformed. */
    const char *ts = NULL;
    size_t ts_len = 0;
    for (const char *p = header; p <= header + header_len;) {
        const char *end = memchr(p, ',', (size_t)(header + header_len - p));
        if (!end)
            end = header + header_len;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq == p)
            return GH_EINVAL;
        if (eq - p == 1 && *p == 't') {
            if (ts)
                return GH_EINVAL;
            ts = eq + 1;
            ts_len = (size_t)(end - ts);
        }
        p = end + 1;
    }
    int64_t t;
    if (!ts || !parse_timestamp(ts, ts_len, &t))
        return GH_EINVAL;

    /* Second pass: every v1, each compared in full whatever the others did. */
    char expected[HEX_LEN + 1];
    signature_hex(expected, ts, ts_len, payload, payload_len, secret);
    bool matched = false;
    for (const char *p = header; p <= header + header_len;) {
        const char *end = memchr(p, ',', (size_t)(header + header_len - p));
        if (!end)
            end = header + header_len;
        if (end - p == 3 + HEX_LEN && memcmp(p, "v1=", 3) == 0)
            matched |= sodium_memcmp(p + 3, expected, HEX_LEN) == 0;
        p = end + 1;
    }
    sodium_memzero(expected, sizeof(expected));
    if (!matched)
        return GH_EAUTH;
    /* 0 <= t < 10^12, so now - t cannot overflow, and t - now fits in a uint64_t whatever
     * `now` is. */
    bool fresh = now >= t ? now - t <= tolerance_s
                          : (uint64_t)t - (uint64_t)now <= (uint64_t)tolerance_s;
    return fresh ? GH_OK : GH_EAUTH;
}

gh_err_t gh_stripe_sig_sign(char *out, size_t out_size, const char *payload, size_t payload_len,
                            const char *secret, int64_t timestamp)
{
    assert(out && out_size > 0);
    assert(payload || payload_len == 0);
    assert(secret);
    out[0] = '\0';
    char ts[24];
    int ts_len = snprintf(ts, sizeof(ts), "%lld", (long long)timestamp);
    if (timestamp < 0 || ts_len <= 0 || ts_len > GH_STRIPE_SIG_TIMESTAMP_DIGITS)
        return GH_EINVAL;
    char hex[HEX_LEN + 1];
    signature_hex(hex, ts, (size_t)ts_len, payload, payload_len, secret);
    int n = snprintf(out, out_size, "t=%s,v1=%s", ts, hex);
    if (n < 0 || (size_t)n >= out_size) {
        out[0] = '\0';
        return GH_ETOOBIG;
    }
    return GH_OK;
}
