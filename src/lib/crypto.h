/* Randomness, identifiers, secrets and hashing, on libsodium (SHA-256 on OpenSSL).
 *
 * Ids look like Anthropic's: a type prefix, "_01", then 22 base62 characters from the
 * CSPRNG ("org_01…", "user_01…", "wrkspc_01…"). Secrets (magic-link tokens, session ids)
 * are 43 base62 characters, about 256 bits; only their SHA-256 is ever stored. */
#ifndef GH_LIB_CRYPTO_H
#define GH_LIB_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

#define GH_ID_MAX 48          /* longest id with its NUL */
#define GH_SECRET_CHARS 43    /* base62 characters in a secret token */
#define GH_SECRET_MAX 64      /* a secret with optional prefix and NUL */
#define GH_SHA256_HEX_MAX 65  /* 64 hex digits and NUL */

/* Initialises libsodium. Call once at start; returns GH_EINTERNAL if it cannot. */
gh_err_t gh_crypto_init(void);

/* Fills `buf` with `len` random bytes from the kernel's CSPRNG in as few system calls as it
 * allows: one getrandom(2) for up to 32 MiB (libsodium's randombytes_buf asks for 256 bytes a
 * call, 16 calls for the 4 KiB a loop draws for request ids). Any thread. */
void gh_random_bytes(void *buf, size_t len);

/* Fills `out` with `n` uniformly random base62 characters and a NUL (`out` holds n + 1). */
void gh_random_base62(char *out, size_t n);

/* Writes a new id `prefix` + "_01" + 22 base62 characters into `out` (GH_ID_MAX bytes).
 * `prefix` is at most 16 characters. */
void gh_id_new(char out[GH_ID_MAX], const char *prefix);

/* True when `id` has the form gh_id_new makes for `prefix`. Used to reject bad ids early
 * with a clear message rather than a bare "not found". */
bool gh_id_valid(const char *id, const char *prefix);

/* Writes a new secret of GH_SECRET_CHARS base62 characters into `out` (GH_SECRET_MAX). */
void gh_secret_new(char out[GH_SECRET_MAX]);

/* True when `s` looks like a secret made by gh_secret_new (length and alphabet). */
bool gh_secret_valid(const char *s);

/* SHA-256 of `len` bytes at `data` into `out`. OpenSSL's (with the CPU's SHA instructions
 * where it has them: 120-150 ns for an API key against libsodium's 460), which the model path
 * pays on every request; libsodium's if OpenSSL cannot provide it. Any thread. */
#define GH_SHA256_BYTES 32
void gh_sha256(unsigned char out[GH_SHA256_BYTES], const void *data, size_t len);

/* SHA-256 of `len` bytes at `data`, as 64 lowercase hex digits and a NUL. */
void gh_sha256_hex(char out[GH_SHA256_HEX_MAX], const void *data, size_t len);

/* Compares two strings in time that depends only on their lengths. */
bool gh_ct_streq(const char *a, const char *b);

#endif
