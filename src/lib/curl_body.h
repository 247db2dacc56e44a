/* A response body read into memory by libcurl, with a limit: the write callback the control
 * plane's outbound calls (OIDC, Stripe) share. */
#ifndef GH_LIB_CURL_BODY_H
#define GH_LIB_CURL_BODY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gh_curl_body {
    char *data; /* NUL-terminated; NULL until the first byte */
    size_t len;
    size_t max; /* more than this stops the transfer */
} gh_curl_body_t;

/* CURLOPT_WRITEFUNCTION, with a gh_curl_body_t as CURLOPT_WRITEDATA: appends the bytes.
 * Past `max` bytes, or out of memory, it makes libcurl stop with CURLE_WRITE_ERROR. */
size_t gh_curl_body_write(char *ptr, size_t size, size_t nmemb, void *body);

/* Frees the data, wiping it first when `wipe` (bodies that carry tokens), and empties `b`. */
void gh_curl_body_free(gh_curl_body_t *b, bool wipe);

#endif
