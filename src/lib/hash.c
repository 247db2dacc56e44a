/* FNV-1a and a finalizer: see hash.h. */
#include "lib/hash.h"

#include <stddef.h>

#define FNV_PRIME UINT64_C(0x100000001b3)

uint64_t gh_hash_str(uint64_t h, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    for (; *p; p++)
        h = (h ^ *p) * FNV_PRIME;
    return h * FNV_PRIME; /* the NUL: h ^ 0 is h */
}

uint64_t gh_hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}
