/* Keeps an HTTP/1 client's socket in the loop's epoll set while its request is answered.
 *
 * Why: libh2o's HTTP/1 server stops reading a connection once a request is complete (the
 * parsed request points into the socket's input buffer, which a read could move), and its
 * level-triggered epoll backend turns that stop into EPOLL_CTL_DEL at the start of the loop's
 * next turn; when the response is done it reads again, an EPOLL_CTL_ADD. A request answered
 * from an upstream always spans turns, so every relayed request cost two epoll_ctl calls
 * (about 1.7 us of the loop's 24 on the 1-core bench; nginx registers a socket once).
 *
 * How: gh_pollhold_start, from a handler, puts the socket back in reading state with h2o's
 * "don't read" flag set and a callback of this module's. The socket's polled state never
 * changes, so no epoll_ctl is made, and nothing is read into the input buffer the request
 * points into. If the client does send something meanwhile (a pipelined request, or the end
 * of its side of the connection), epoll reports it once: the callback stops reading, as h2o
 * had (one EPOLL_CTL_DEL, as before), and the bytes wait in the kernel. gh_pollhold_end,
 * called when h2o disposes of the request (before it reads the next one), takes the flag and
 * the callback away again; h2o's own read_start then finds the socket still polled.
 *
 * Both run on the loop thread that owns `req`. Only HTTP/1 requests are held: an HTTP/2
 * connection's socket carries other streams. A request that was never held is left as is. */
#ifndef GH_GATEWAY_POLLHOLD_H
#define GH_GATEWAY_POLLHOLD_H

#include <stdbool.h>

#include <h2o.h>

/* Holds the client's socket of `req` in the poll set (see above). Returns whether it did: false
 * for HTTP/2, a request already held, or a socket h2o is reading. */
bool gh_pollhold_start(h2o_req_t *req);

/* Ends the hold of `req`'s socket, if gh_pollhold_start took one; h2o may read again. */
void gh_pollhold_end(h2o_req_t *req);

#endif
