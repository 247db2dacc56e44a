#include "lib/crypto.h"

#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <sys/random.h>

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

gh_err_t gh_crypto_init(void)
{
    return sodium_init() < 0 ? GH_EINTERNAL : GH_OK;
}

void gh_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { /* no getrandom(2) (a very old kernel): libsodium's own way */
            randombytes_buf(p, len);
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

void gh_random_base62(char *out, size_t n)
{
    /* One getrandom call per batch, not per character (libsodium's uniform draw is a system
     * call each time on Debian). Bytes of 248 and above are skipped: 248 = 4 × 62, so the
     * rest map onto the alphabet without bias. */
    unsigned char buf[64];
    size_t avail = 0, pos = 0;
    for (size_t i = 0; i < n;) {
        if (pos == avail) {
            randombytes_buf(buf, sizeof(buf));
            avail = sizeof(buf);
            pos = 0;
        }
        unsigned char b = buf[pos++];
        if (b < 248)
            out[i++] = base62[b % 62];
    }
    sodium_memzero(buf, sizeof(buf));
    out[n] = '\0';
}

static bool is_base62(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(base62, s[i]))
            return false;
    return true;
}

void gh_id_new(char out[GH_ID_MAX], const char *prefix)
{
    size_t plen = strlen(prefix);
    assert(plen <= 16);
    memcpy(out, prefix, plen);
    memcpy(out + plen, "_01", 3);
    gh_random_base62(out + plen + 3, 22);
}

bool gh_id_valid(const char *id, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (!id || strlen(id) != plen + 25 || strncmp(id, prefix, plen) != 0)
        return false;
    if (memcmp(id + plen, "_01", 3) != 0)
        return false;
    return is_base62(id + plen + 3, 22);
}

void gh_secret_new(char out[GH_SECRET_MAX])
{
    gh_random_base62(out, GH_SECRET_CHARS);
}

bool gh_secret_valid(const char *s)
{
    return s && strlen(s) == GH_SECRET_CHARS && is_base62(s, GH_SECRET_CHARS);
}

/* OpenSSL's SHA-256, fetched once (a fetch per call would cost more than the hash), and a
 * digest context per thread, kept for the thread's life: EVP_Digest would allocate and free
 * one on every call, which cost the model path as much as the hash itself. */
static EVP_MD *sha256_md;
static pthread_key_t sha256_ctx_key;
static bool sha256_ctx_key_made;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    sha256_ctx_key_made = pthread_key_create(&sha256_ctx_key, sha256_ctx_free) == 0;
}

/* This thread's context, NULL when there cannot be one. */
static EVP_MD_CTX *sha256_ctx(void)
{
    if (!sha256_ctx_key_made)
        return NULL;
    EVP_MD_CTX *ctx = pthread_getspecific(sha256_ctx_key);
    if (ctx == NULL && (ctx = EVP_MD_CTX_new()) != NULL &&
        pthread_setspecific(sha256_ctx_key, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

void gh_sha256(unsigned char out[GH_SHA256_BYTES], const void *data, size_t len)
{
    static_assert(GH_SHA256_BYTES == crypto_hash_sha256_BYTES, "SHA-256 is 32 bytes");
    pthread_once(&sha256_once, sha256_fetch);
    EVP_MD_CTX *ctx = sha256_md != NULL ? sha256_ctx() : NULL;
    unsigned int n = 0;
    if (ctx == NULL || !EVP_DigestInit_ex2(ctx, sha256_md, NULL) ||
        !EVP_DigestUpdate(ctx, data, len) || !EVP_DigestFinal_ex(ctx, out, &n) ||
        n != GH_SHA256_BYTES)
        crypto_hash_sha256(out, data, len);
}

void gh_sha256_hex(char out[GH_SHA256_HEX_MAX], const void *data, size_t len)
{
    unsigned char digest[GH_SHA256_BYTES];
    gh_sha256(digest, data, len);
    sodium_bin2hex(out, GH_SHA256_HEX_MAX, digest, sizeof(digest));
}

bool gh_ct_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return sodium_memcmp(a, b, la) == 0;
}
