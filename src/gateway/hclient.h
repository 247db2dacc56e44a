/* A small HTTP/1.1 client for upstream model servers, on h2o sockets, with a pool of idle
 * keep-alive connections per upstream and loop.
 *
 * Why not h2o's own client: libh2o 2.2.5's socket pool is shared between threads, so every
 * connection it hands out is imported into the loop and every one returned is exported from
 * it again: per request a MSG_PEEK read, two fcntl calls and an epoll DEL and ADD, about a
 * third of the system calls on the model path (bench/README.md). Here a pool belongs to one
 * loop, an idle connection stays registered with it (reading, so a server's close is noticed
 * at once and the connection dropped), and reuse costs nothing.
 *
 * A request sends one buffered request (head and body, written as given) and parses the
 * response: status line and headers (picohttpparser, from libh2o), then a body framed by
 * content-length, chunked transfer encoding, or the connection's end. A connection goes back
 * to the pool only after a complete response on an HTTP/1.1 connection the server did not
 * ask to close. A request sent on a reused connection that the server closed before sending
 * a single byte is retried once on a new connection (the server closed it idle, racing our
 * send); any other failure is reported.
 *
 * Threads: a pool and its requests belong to the loop thread that made them. */
#ifndef GH_GATEWAY_HCLIENT_H
#define GH_GATEWAY_HCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <h2o.h>
#include <openssl/ssl.h>

typedef struct gh_hclient_pool gh_hclient_pool_t;
typedef struct gh_hclient_req gh_hclient_req_t;

/* What a request tells its owner, on the loop thread. Exactly one of a failed on_connect,
 * a final on_body or on_error ends a request; the request is freed right after it and no
 * callback comes again. A callback may cancel its own request (the cancel takes effect when
 * it returns). */
typedef struct gh_hclient_cb {
    /* The connection is ready and the request is being sent (`err` NULL), or no connection
     * could be made (`err` says why; final). */
    void (*on_connect)(void *ctx, const char *err);
    /* The response head; content_type is "" when there is none. */
    void (*on_head)(void *ctx, int status, const char *content_type, size_t content_type_len);
    /* Body bytes in order, valid during the call; `final` on the last call (maybe empty). */
    void (*on_body)(void *ctx, const char *data, size_t len, bool final);
    /* The response failed after connecting, before its head (`in_head`) or in its body. */
    void (*on_error)(void *ctx, const char *err, bool in_head);
} gh_hclient_cb_t;

/* A pool for one upstream `host`:`port` (TLS with `ssl_ctx` when not NULL, sending and
 * verifying `tls_name` as the server's name, or `host` when `tls_name` is NULL). A numeric host is used as it is; a name is resolved through
 * h2o's resolver threads (`getaddr_receiver`) for each new connection. At most `open_max`
 * connections are open or being opened (0: no limit); a request beyond that waits, first in
 * first out, for one to come free. Idle connections are closed after `idle_timeout`'s
 * duration; at most `idle_max` are kept. `zero_timeout` (the context's) runs deferred work.
 * The pool's gauges go to /metrics under `metrics_model` (an index in cfg->models). NULL
 * when out of memory or `host` is too long. */
gh_hclient_pool_t *gh_hclient_pool_new(h2o_loop_t *loop,
                                       h2o_multithread_receiver_t *getaddr_receiver,
                                       h2o_iovec_t host, uint16_t port, SSL_CTX *ssl_ctx,
                                       const char *tls_name, h2o_timeout_t *idle_timeout, h2o_timeout_t *zero_timeout,
                                       size_t idle_max, size_t open_max, int metrics_model);

/* Closes the idle connections and frees the pool; no request may be running. */
void gh_hclient_pool_free(gh_hclient_pool_t *pool);

/* Connections open or being opened (idle and in use), idle, and requests waiting for one. */
size_t gh_hclient_pool_open(const gh_hclient_pool_t *pool);
size_t gh_hclient_pool_idle(const gh_hclient_pool_t *pool);
size_t gh_hclient_pool_waiting(const gh_hclient_pool_t *pool);

/* Starts a request. `*slot` is set before anything else happens, since on_connect may fail
 * before this returns; it is NULL when even that failed for lack of memory (no callback is
 * made then). `bufs` (the request head and body) must stay valid until the request ends. */
void gh_hclient_start(gh_hclient_req_t **slot, gh_hclient_pool_t *pool, const h2o_iovec_t *bufs,
                      size_t nbufs, const gh_hclient_cb_t *cb, void *ctx);

/* Stops a request that has not ended: its connection is closed, no callback follows. */
void gh_hclient_cancel(gh_hclient_req_t *req);

/* Whether the request is still waiting for a connection to come free (pool at open_max). */
bool gh_hclient_waiting(const gh_hclient_req_t *req);

/* Flow control: stop and restart reading the response (the server then feels TCP's). */
void gh_hclient_pause(gh_hclient_req_t *req);
void gh_hclient_resume(gh_hclient_req_t *req);

/* ---- chunked transfer coding, exposed for the unit tests ---- */

typedef struct gh_dechunk {
    uint64_t left; /* data bytes left in the current chunk */
    int state;
    int hex_digits;
} gh_dechunk_t;

/* Decodes `*len` bytes at `buf` in place: on return the first `*out_len` bytes are data and
 * `*used` input bytes were consumed (the rest, if any, follows the body). Returns 1 when the
 * last chunk and its trailer have been read, 0 when more input is needed, -1 on malformed
 * input (a size that is not hex, too large, missing CRLF). */
int gh_dechunk(gh_dechunk_t *d, char *buf, size_t len, size_t *out_len, size_t *used);

#endif
