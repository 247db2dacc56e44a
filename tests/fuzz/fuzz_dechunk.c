/* Fuzzes the upstream client's chunked decoder (src/gateway/hclient.c): decoding the input
 * in one piece and in pieces of every size from the first byte gives the same verdict and the
 * same data, and never reads or writes past what it was given. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/hclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes `in` fed `step` bytes at a time, carrying the unconsumed rest like a socket
 * buffer. Returns the verdict; the data goes to `out`. */
static int decode(const uint8_t *in, size_t len, size_t step, char *out, size_t *out_len)
{
    gh_dechunk_t d;
    memset(&d, 0, sizeof(d));
    char *buf = malloc(len + 1);
    assert(buf != NULL);
    size_t have = 0, pos = 0, total = 0;
    int rc = 0;
    while (rc == 0 && pos < len) {
        size_t n = len - pos < step ? len - pos : step;
        memcpy(buf + have, in + pos, n);
        have += n;
        pos += n;
        size_t data_len, used;
        rc = gh_dechunk(&d, buf, have, &data_len, &used);
        if (rc < 0)
            break;
        assert(data_len <= used && used <= have);
        memcpy(out + total, buf, data_len);
        total += data_len;
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    free(buf);
    *out_len = total;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 13 + 1;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    char *a = malloc(len + 1), *b = malloc(len + 1);
    assert(a != NULL && b != NULL);
    size_t alen, blen;
    int ra = decode(in, len, len ? len : 1, a, &alen);
    int rb = decode(in, len, step, b, &blen);
    assert(ra == rb);
    if (ra >= 0) {
        assert(alen == blen);
        assert(memcmp(a, b, alen) == 0);
    }
    free(a);
    free(b);
    return 0;
}
