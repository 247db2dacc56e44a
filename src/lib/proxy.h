/* Trusted proxies: which peers may tell us the client's address.
 *
 * Behind a reverse proxy (which the console needs for TLS) every connection comes from the
 * proxy, so per-address throttles, the audit log and the access log would see one address
 * for everybody. `[server] trusted_proxies` lists the proxies' addresses as CIDR blocks; only
 * a request whose peer is in that list has its X-Forwarded-For (or, when it has none, its
 * Forwarded) header believed. Anyone can send those headers, so from any other peer they are
 * ignored.
 *
 * The header is read from the right, the end the nearest proxy wrote: addresses of trusted
 * proxies are skipped, and the first address that is not one is the client (what is to its
 * left was written by the client or by proxies we do not trust). Pure functions, no I/O. */
#ifndef GH_LIB_PROXY_H
#define GH_LIB_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/err.h"

#define GH_PROXY_MAX 32
/* Longest text form of an address (INET6_ADDRSTRLEN). */
#define GH_PROXY_ADDR_SIZE 46

typedef struct gh_proxy_net {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network address, host bits zero */
    int prefix_bits;
} gh_proxy_net_t;

typedef struct gh_proxy_list {
    gh_proxy_net_t nets[GH_PROXY_MAX];
    size_t count;
} gh_proxy_list_t;

/* Parses a comma- or space-separated list of addresses and CIDR blocks ("10.0.0.0/8, ::1")
 * into `out`. An empty text is an empty list. GH_EINVAL with a message naming the bad entry
 * (or saying there are more than GH_PROXY_MAX) otherwise. */
gh_err_t gh_proxy_list_parse(const char *text, gh_proxy_list_t *out, char *err,
                             size_t err_size);

/* Whether `sa` (IPv4, IPv6, or IPv4-mapped IPv6) is in the list. */
bool gh_proxy_trusted(const gh_proxy_list_t *list, const struct sockaddr *sa);

/* The same for an address in text form; false when `text` is not an address. */
bool gh_proxy_trusted_text(const gh_proxy_list_t *list, const char *text);

/* The client's address for a request whose peer is a trusted proxy, from the values of its
 * X-Forwarded-For header(s) joined with commas (`xff`, may be NULL) or else its Forwarded
 * header(s) (`forwarded`, may be NULL), written to `out` (GH_PROXY_ADDR_SIZE bytes) in
 * canonical text form. False, with `out` untouched, when neither header yields an address:
 * the caller keeps the peer's. */
bool gh_proxy_client(const gh_proxy_list_t *list, const char *xff, const char *forwarded,
                     char *out, size_t out_size);

#endif
