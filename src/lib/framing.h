/* Request framing checks shared by both planes: the rules that decide where one HTTP/1.1
 * request ends and the next begins. A front proxy and Gatehouse must agree on that boundary,
 * or a body can be read by one as data and by the other as a second request (request
 * smuggling). So every request whose framing could be read two ways is refused, whichever way
 * our HTTP library happened to read it:
 *   - two Content-Length headers with different values, or one that is not a number;
 *   - Transfer-Encoding together with Content-Length, or Transfer-Encoding twice;
 *   - a transfer coding other than "chunked" (501: we implement no other);
 *   - a header name that is not an RFC 9110 token (e.g. "Content-Length " with a space before
 *     the colon), an obs-fold continuation line, a NUL, CR or LF inside a header;
 *   - an HTTP/1.1 request without exactly one Host header.
 * Pure functions over bytes: no HTTP library, no allocation. */
#ifndef GH_LIB_FRAMING_H
#define GH_LIB_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

/* The most header lines gh_framing_check_head looks at (h2o accepts no more either). */
#define GH_FRAMING_HEADERS_MAX 100
/* Room for a refusal message. */
#define GH_FRAMING_MSG_SIZE 160

typedef struct gh_framing_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} gh_framing_header_t;

/* Checks `n` parsed headers of a request (`http11`: the request line said HTTP/1.1).
 * Returns 0 when the framing is unambiguous, else the status to answer (400, or 501 for an
 * unknown transfer coding) with a message a person can act on in `msg`. */
int gh_framing_check(const gh_framing_header_t *h, size_t n, bool http11, char *msg,
                     size_t msg_size);

/* The same over a raw request head: `buf` holds the request line and the header lines up to
 * and including the empty line (`len` bytes; what follows is ignored). Also refuses obs-fold
 * lines, NULs and bare CRs anywhere in the head, and a head without its empty line. */
int gh_framing_check_head(const char *buf, size_t len, char *msg, size_t msg_size);

#endif
