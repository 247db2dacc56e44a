/* A string hash, eight bytes a step: see hash.h. */
#include "lib/hash.h"

#include <stddef.h>
#include <string.h>

#define MUL UINT64_C(0x9e3779b97f4a7c15) /* odd, its bits well spread (2^64 / golden ratio) */

/* One step: the word folded in, multiplied (every output bit above depends on it), and the
 * high half folded back down (so the low bits depend on it too). */
static uint64_t step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * MUL;
    return h ^ (h >> 32);
}

uint64_t gh_hash_str(uint64_t h, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t n = strlen((const char *)p);
    uint64_t len = n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = step(h, w);
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    return step(step(h, tail), len);
}

uint64_t gh_hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}
