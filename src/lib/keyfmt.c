#include "lib/keyfmt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "lib/crypto.h"

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* CRC32 of `len` bytes as GH_KEY_CRC_CHARS base62 digits, most significant first. */
static void crc_digits(char out[GH_KEY_CRC_CHARS + 1], const char *data, size_t len)
{
    uint32_t v = (uint32_t)crc32(0L, (const unsigned char *)data, (uInt)len);
    for (int i = GH_KEY_CRC_CHARS - 1; i >= 0; i--) {
        out[i] = base62[v % 62];
        v /= 62;
    }
    out[GH_KEY_CRC_CHARS] = '\0';
}

void gh_key_new(char out[GH_KEY_MAX], const char *prefix)
{
    size_t plen = strlen(prefix);
    memcpy(out, prefix, plen);
    gh_random_base62(out + plen, GH_KEY_BODY_CHARS);
    crc_digits(out + plen + GH_KEY_BODY_CHARS, out, plen + GH_KEY_BODY_CHARS);
}

static bool is_base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

gh_key_check_t gh_key_check(const char *key, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (!key || strncmp(key, prefix, plen) != 0)
        return GH_KEY_BAD_PREFIX;
    if (strlen(key) != plen + GH_KEY_BODY_CHARS + GH_KEY_CRC_CHARS)
        return GH_KEY_BAD_LENGTH;
    for (const char *p = key + plen; *p; p++)
        if (!is_base62(*p))
            return GH_KEY_BAD_CHARACTER;
    char crc[GH_KEY_CRC_CHARS + 1];
    crc_digits(crc, key, plen + GH_KEY_BODY_CHARS);
    return memcmp(crc, key + plen + GH_KEY_BODY_CHARS, GH_KEY_CRC_CHARS) == 0
               ? GH_KEY_OK
               : GH_KEY_BAD_CHECKSUM;
}

const char *gh_key_check_str(gh_key_check_t c)
{
    switch (c) {
    case GH_KEY_OK: return "a well-formed key";
    case GH_KEY_BAD_PREFIX: return "it does not start with the key prefix";
    case GH_KEY_BAD_LENGTH: return "it has the wrong length";
    case GH_KEY_BAD_CHARACTER: return "it has characters a key never has";
    case GH_KEY_BAD_CHECKSUM: return "its checksum does not match (a typo or a truncated copy)";
    }
    return "unknown";
}

void gh_key_hint(char out[GH_KEY_HINT_MAX], const char *key, const char *prefix)
{
    size_t plen = strlen(prefix), len = strlen(key);
    if (len < plen + 7) {
        snprintf(out, GH_KEY_HINT_MAX, "%s...", prefix);
        return;
    }
    snprintf(out, GH_KEY_HINT_MAX, "%s%.3s...%s", prefix, key + plen, key + len - 4);
}
