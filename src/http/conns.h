/* The console's defence against slow clients (slowloris): a cap on the connections one
 * client address may hold open, and a deadline for each request's head and body.
 *
 * libmicrohttpd's own idle timeout restarts with every byte, so a client sending one header
 * byte every few seconds keeps a connection forever, and a few thousand such connections
 * exhausted the connection limit for everyone. Here:
 *   - an address (an IPv4 address, or an IPv6 /64: one host usually owns a whole /64) may hold
 *     at most `per_address_max` connections; more are closed as they are accepted;
 *   - from the moment a connection starts waiting for a request (it opened, or its previous
 *     response was sent) the whole request, head and body, must arrive within
 *     `request_timeout_ms`, however slowly it trickles in; otherwise a reaper thread shuts the
 *     socket down and libmicrohttpd closes the connection. A request being handled, or its
 *     response being sent, is never cut.
 * Addresses for which `exempt` returns true (trusted proxies, which carry many clients) have
 * no cap; the deadline applies to everyone.
 *
 * Thread-safe: the calls come from libmicrohttpd's worker threads. The table of addresses
 * holds only addresses with a connection open, so it is bounded by the connection limit. */
#ifndef GH_HTTP_CONNS_H
#define GH_HTTP_CONNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/err.h"

typedef struct gh_conns gh_conns_t;
typedef struct gh_conn gh_conn_t;

typedef bool (*gh_conns_exempt_fn)(void *ctx, const struct sockaddr *sa);

/* Creates the guard and starts its reaper thread. `per_address_max` 0: no cap. */
gh_err_t gh_conns_new(gh_conns_t **out, int per_address_max, int request_timeout_ms,
                      gh_conns_exempt_fn exempt, void *exempt_ctx);

/* Stops the reaper and frees the guard with any connection record left. Stop libmicrohttpd
 * first: no call may come in during or after this. Safe with NULL. */
void gh_conns_free(gh_conns_t *g);

/* Whether a connection just accepted from `sa` may be served (libmicrohttpd's accept policy).
 * When an address reaches its cap, one warning is logged until its count falls again. */
bool gh_conns_admit(gh_conns_t *g, const struct sockaddr *sa);

/* Tracks a connection that libmicrohttpd started: counts it for its address and starts its
 * first request's deadline. `fd` stays valid until gh_conns_close. NULL when out of memory
 * (the connection is then served without a deadline). */
gh_conn_t *gh_conns_open(gh_conns_t *g, const struct sockaddr *sa, int fd);

/* Stops tracking `c` (NULL is ignored), before libmicrohttpd closes its socket. */
void gh_conns_close(gh_conns_t *g, gh_conn_t *c);

/* The request on `c` has been read in full and is being handled (busy), or its response has
 * been sent and the next request's deadline starts (not busy). NULL is ignored. */
void gh_conns_set_busy(gh_conns_t *g, gh_conn_t *c, bool busy);

/* Connections refused by the cap and connections cut by the deadline, since the start. */
uint64_t gh_conns_refused(gh_conns_t *g);
uint64_t gh_conns_timed_out(gh_conns_t *g);

#endif
