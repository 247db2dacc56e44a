/* Fuzzes the Stripe-Signature check (src/lib/stripe_sig.c): any header is either malformed,
 * wrong or right without crashing, and a header made by gh_stripe_sig_sign for the fuzzed
 * payload always verifies, while the same header for a changed payload never does. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "lib/stripe_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char secret[] = "whsec_fuzz_secret_0123456789";
    const int64_t now = 1764000000;
    /* The input split in two at its first NUL: a header, then a payload. */
    const char *s = (const char *)data;
    const char *nul = memchr(s, '\0', size);
    size_t hlen = nul ? (size_t)(nul - s) : size;
    char header[4096 + 1];
    if (hlen > 4096)
        hlen = 4096;
    memcpy(header, s, hlen);
    header[hlen] = '\0';
    const char *payload = nul ? nul + 1 : "";
    size_t plen = nul ? size - hlen - 1 : 0;
    gh_err_t rc = gh_stripe_sig_verify(header, payload, plen, secret, now, 300);
    assert(rc == GH_OK || rc == GH_EAUTH || rc == GH_EINVAL);

    char made[256];
    assert(gh_stripe_sig_sign(made, sizeof(made), payload, plen, secret, now) == GH_OK);
    assert(gh_stripe_sig_verify(made, payload, plen, secret, now, 300) == GH_OK);
    if (plen > 0) {
        char changed[512];
        size_t n = plen < sizeof(changed) ? plen : sizeof(changed);
        memcpy(changed, payload, n);
        changed[n - 1] ^= 1;
        assert(gh_stripe_sig_verify(made, changed, n, secret, now, 300) != GH_OK);
    }
    return 0;
}
