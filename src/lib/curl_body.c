#include "lib/curl_body.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

size_t gh_curl_body_write(char *ptr, size_t size, size_t nmemb, void *body)
{
    gh_curl_body_t *b = body;
    size_t n = size * nmemb; /* libcurl passes size 1 */
    if (n > b->max - b->len)
        return 0;
    char *p = realloc(b->data, b->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, ptr, n);
    b->len += n;
    p[b->len] = '\0';
    b->data = p;
    return n;
}

void gh_curl_body_free(gh_curl_body_t *b, bool wipe)
{
    if (b->data != NULL && wipe)
        sodium_memzero(b->data, b->len);
    free(b->data);
    b->data = NULL;
    b->len = 0;
}
