/* The format of Gatehouse keys: a recognisable prefix ("sk-gh-api01-" for API keys,
 * "sk-gh-admin01-" for admin keys), 43 random base62 characters (about 256 bits), then 6
 * base62 characters holding a CRC32 of everything before them. The checksum lets secret
 * scanners (and the gateway, before any lookup) tell a real key from a corrupted or made-up
 * one offline. Only a hash of a key is ever stored. */
#ifndef GH_LIB_KEYFMT_H
#define GH_LIB_KEYFMT_H

#include <stddef.h>

#define GH_KEY_API_PREFIX "sk-gh-api01-"
#define GH_KEY_ADMIN_PREFIX "sk-gh-admin01-"
#define GH_KEY_BODY_CHARS 43
#define GH_KEY_CRC_CHARS 6
#define GH_KEY_MAX 80  /* longest key with its NUL */
#define GH_KEY_HINT_MAX 48

typedef enum {
    GH_KEY_OK,
    GH_KEY_BAD_PREFIX,
    GH_KEY_BAD_LENGTH,
    GH_KEY_BAD_CHARACTER,
    GH_KEY_BAD_CHECKSUM,
} gh_key_check_t;

/* Writes a new key with `prefix` into `out`. */
void gh_key_new(char out[GH_KEY_MAX], const char *prefix);

/* Checks that `key` has the form gh_key_new makes for `prefix`, checksum included. */
gh_key_check_t gh_key_check(const char *key, const char *prefix);

/* A short description of a check result ("the checksum does not match"). */
const char *gh_key_check_str(gh_key_check_t c);

/* The hint kept for lists: the prefix, the first three characters after it, "...", and the
 * last four ("sk-gh-api01-AbC...wXyz"). */
void gh_key_hint(char out[GH_KEY_HINT_MAX], const char *key, const char *prefix);

#endif
