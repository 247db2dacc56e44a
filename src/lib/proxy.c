/* Trusted proxies and the client address they forward (see proxy.h). */
#include "lib/proxy.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* At most this many hops of a forwarding header are looked at, from the right. */
#define PROXY_HOPS_MAX 64
/* Longest entry of a forwarding header taken for an address ("[v6]:port" with quotes). */
#define PROXY_ENTRY_MAX 64

/* Parses an address in text form into family and bytes; IPv4-mapped IPv6 becomes IPv4. */
static bool parse_addr(const char *text, int *family, unsigned char addr[16])
{
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    struct in6_addr in6;
    if (inet_pton(AF_INET6, text, &in6) != 1)
        return false;
    if (IN6_IS_ADDR_V4MAPPED(&in6)) {
        *family = AF_INET;
        memcpy(addr, in6.s6_addr + 12, 4);
        return true;
    }
    *family = AF_INET6;
    memcpy(addr, in6.s6_addr, 16);
    return true;
}

static bool in_net(const gh_proxy_net_t *n, int family, const unsigned char addr[16])
{
    if (n->family != family)
        return false;
    int full = n->prefix_bits / 8, rest = n->prefix_bits % 8;
    if (memcmp(n->addr, addr, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xFF << (8 - rest));
    return (n->addr[full] & mask) == (addr[full] & mask);
}

static bool trusted(const gh_proxy_list_t *list, int family, const unsigned char addr[16])
{
    for (size_t i = 0; i < list->count; i++)
        if (in_net(&list->nets[i], family, addr))
            return true;
    return false;
}

gh_err_t gh_proxy_list_parse(const char *text, gh_proxy_list_t *out, char *err,
                             size_t err_size)
{
    memset(out, 0, sizeof(*out));
    const char *p = text ? text : "";
    for (;;) {
        p += strspn(p, ", \t");
        if (!*p)
            return GH_OK;
        size_t len = strcspn(p, ", \t");
        char entry[80];
        if (len >= sizeof(entry)) {
            snprintf(err, err_size, "trusted_proxies: \"%.40s...\" is not an address or a CIDR "
                                    "block", p);
            return GH_EINVAL;
        }
        memcpy(entry, p, len);
        entry[len] = '\0';
        p += len;
        if (out->count == GH_PROXY_MAX) {
            snprintf(err, err_size, "trusted_proxies: more than %d entries", GH_PROXY_MAX);
            return GH_EINVAL;
        }
        gh_proxy_net_t *n = &out->nets[out->count];
        char *slash = strchr(entry, '/');
        long bits = -1;
        if (slash) {
            char *end;
            *slash = '\0';
            bits = strtol(slash + 1, &end, 10);
            if (end == slash + 1 || *end)
                bits = -2;
        }
        if (!parse_addr(entry, &n->family, n->addr) || bits == -2 ||
            bits > (n->family == AF_INET ? 32 : 128) || (slash && bits < 0)) {
            if (slash)
                *slash = '/';
            snprintf(err, err_size,
                     "trusted_proxies: \"%s\" is not an address or a CIDR block (like "
                     "10.0.0.0/8 or fd00::/8)",
                     entry);
            return GH_EINVAL;
        }
        n->prefix_bits = bits >= 0 ? (int)bits : (n->family == AF_INET ? 32 : 128);
        /* Clear the host bits, so that 10.1.2.3/8 means 10.0.0.0/8. */
        int total = n->family == AF_INET ? 4 : 16;
        for (int i = 0; i < total; i++) {
            int keep = n->prefix_bits - 8 * i;
            if (keep <= 0)
                n->addr[i] = 0;
            else if (keep < 8)
                n->addr[i] &= (unsigned char)(0xFF << (8 - keep));
        }
        out->count++;
    }
}

bool gh_proxy_trusted(const gh_proxy_list_t *list, const struct sockaddr *sa)
{
    unsigned char addr[16] = {0};
    int family;
    if (list->count == 0 || sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            family = AF_INET;
            memcpy(addr, in6->s6_addr + 12, 4);
        } else {
            family = AF_INET6;
            memcpy(addr, in6->s6_addr, 16);
        }
    } else {
        return false;
    }
    return trusted(list, family, addr);
}

bool gh_proxy_trusted_text(const gh_proxy_list_t *list, const char *text)
{
    unsigned char addr[16];
    int family;
    return list->count > 0 && parse_addr(text, &family, addr) && trusted(list, family, addr);
}

/* Reduces one hop ("192.0.2.1", "192.0.2.1:80", "[2001:db8::1]:443", "\"[::1]\"", "::1") to
 * the bare address in `out`; false when it holds no address ("unknown", "_hidden"). */
static bool hop_address(const char *s, size_t len, char out[PROXY_ENTRY_MAX])
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= PROXY_ENTRY_MAX)
        return false;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return false;
        len = (size_t)(close - s - 1);
        s++;
    } else {
        const char *colon = memchr(s, ':', len);
        /* One colon: an IPv4 address with a port. More: a bare IPv6 address. */
        if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
            len = (size_t)(colon - s);
    }
    memcpy(out, s, len);
    out[len] = '\0';
    int family;
    unsigned char addr[16];
    return parse_addr(out, &family, addr);
}

/* Splits `header` at commas into at most PROXY_HOPS_MAX hops (the rightmost ones) and, for a
 * Forwarded header, takes each element's for= parameter. Returns the number of hops; an entry
 * without an address is kept (as "") because it stops the walk. */
static size_t hops_of(const char *header, bool forwarded, char hops[][PROXY_ENTRY_MAX])
{
    const char *starts[PROXY_HOPS_MAX];
    size_t lens[PROXY_HOPS_MAX];
    size_t n = 0, total = 0;
    const char *p = header;
    for (;;) {
        size_t len = strcspn(p, ",");
        starts[total % PROXY_HOPS_MAX] = p;
        lens[total % PROXY_HOPS_MAX] = len;
        total++;
        if (!p[len])
            break;
        p += len + 1;
    }
    size_t first = total > PROXY_HOPS_MAX ? total - PROXY_HOPS_MAX : 0;
    for (size_t i = first; i < total; i++) {
        const char *s = starts[i % PROXY_HOPS_MAX];
        size_t len = lens[i % PROXY_HOPS_MAX];
        if (forwarded) {
            /* for=...; pairs are separated by ';' */
            const char *found = NULL;
            size_t flen = 0;
            const char *q = s, *end = s + len;
            while (q < end) {
                const char *semi = memchr(q, ';', (size_t)(end - q));
                const char *pair_end = semi ? semi : end;
                while (q < pair_end && (*q == ' ' || *q == '\t'))
                    q++;
                if (pair_end - q > 4 && !strncasecmp(q, "for=", 4)) {
                    found = q + 4;
                    flen = (size_t)(pair_end - found);
                }
                q = pair_end + 1;
            }
            s = found;
            len = flen;
        }
        if (!s || !hop_address(s, len, hops[n]))
            hops[n][0] = '\0';
        n++;
    }
    return n;
}

bool gh_proxy_client(const gh_proxy_list_t *list, const char *xff, const char *forwarded,
                     char *out, size_t out_size)
{
    char hops[PROXY_HOPS_MAX][PROXY_ENTRY_MAX];
    size_t n;
    if (xff && *xff)
        n = hops_of(xff, false, hops);
    else if (forwarded && *forwarded)
        n = hops_of(forwarded, true, hops);
    else
        return false;
    for (size_t i = n; i-- > 0;) {
        if (!hops[i][0])
            return false; /* a hop we cannot read: believe nothing to its left */
        if (i > 0 && gh_proxy_trusted_text(list, hops[i]))
            continue;
        /* Canonical form, so "::ffff:10.0.0.1" and "10.0.0.1" are one address to throttles. */
        int family;
        unsigned char addr[16];
        char text[GH_PROXY_ADDR_SIZE];
        if (!parse_addr(hops[i], &family, addr) ||
            !inet_ntop(family, addr, text, sizeof(text)) || strlen(text) >= out_size)
            return false;
        memcpy(out, text, strlen(text) + 1);
        return true;
    }
    return false;
}
