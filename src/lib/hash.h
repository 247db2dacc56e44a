/* A fast 64-bit hash of NUL-terminated strings: the one non-cryptographic hash of the tree
 * (hash tables' slots, grouping keys). Eight bytes a step (a multiply and a shift), so an id
 * of 30 bytes costs a few nanoseconds; the usage writer hashes four ids per event, and FNV-1a,
 * a byte a step, had been a tenth of its time. Every bit of the result depends on every
 * input byte, the low bits too (tables index by them). Not for anything a client could aim
 * at without a secret seed (`h` may start from one) and never for secrets: crypto.h is for
 * those. */
#ifndef GH_LIB_HASH_H
#define GH_LIB_HASH_H

#include <stdint.h>

/* The starting value of a hash. */
#define GH_HASH_INIT UINT64_C(0xcbf29ce484222325)

/* `h` carried on over the string `s` and its length, so that strings hashed one after the
 * other differ from the same bytes split elsewhere ("ab","c" from "a","bc"). NULL hashes as
 * the empty string. */
uint64_t gh_hash_str(uint64_t h, const char *s);

/* Spreads the high bits of `h` into the low ones once more (a shift, a multiply and a shift,
 * the first half of MurmurHash3's 64-bit finalizer). */
uint64_t gh_hash_mix(uint64_t h);

#endif
