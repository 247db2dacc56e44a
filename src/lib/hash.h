/* FNV-1a, 64 bits, over NUL-terminated strings: the one non-cryptographic hash of the tree
 * (hash tables' slots, grouping keys). Not for anything a client could aim at without a
 * secret seed (gh_hash_str's `h` may start from one) and never for secrets: crypto.h is for
 * those. */
#ifndef GH_LIB_HASH_H
#define GH_LIB_HASH_H

#include <stdint.h>

/* The starting value of a hash (FNV-1a's offset basis). */
#define GH_HASH_INIT UINT64_C(0xcbf29ce484222325)

/* `h` carried on over the bytes of `s` and then its terminating NUL, so that a sequence of
 * strings hashed one after the other differs from the same bytes split elsewhere ("ab","c"
 * from "a","bc"). NULL hashes as the empty string. */
uint64_t gh_hash_str(uint64_t h, const char *s);

/* Spreads the high bits of `h` into the low ones (a shift, a multiply and a shift, the first
 * half of MurmurHash3's 64-bit finalizer): for a table indexed by the hash's low bits. */
uint64_t gh_hash_mix(uint64_t h);

#endif
