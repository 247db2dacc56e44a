/* The libh2o loop machinery that the model API server (gateway.c) and the mock upstream
 * (mock_server.c) share: a group of SO_REUSEPORT listening sockets on one address, and per
 * loop thread an evloop, an h2o context, a listener, the connections it accepted (tracked so
 * that a drain can shut them down), a stop message, the steps of a drain and the teardown.
 *
 * A server embeds a gh_loop_t in its own per-loop struct and finds that struct again from a
 * request with H2O_STRUCT_FROM_MEMBER on `loop.ctx`. What a server does with its requests,
 * and what it waits for before closing connections, stays in the server. A loop's life:
 *
 *   main thread    gh_loop_prepare, gh_loops_listen (its listen_fd), start the thread
 *   loop thread    gh_loop_init, the server's own set-up, gh_loop_listen, gh_loop_run;
 *                  then gh_loop_drain_start, the server's waits, gh_loop_shutdown_conns,
 *                  gh_loop_wait_conns, gh_loop_dispose if every connection closed, and
 *                  gh_loops_release_thread_caches
 *   main thread    gh_loop_stop (any time after gh_loop_init), join the thread */
#ifndef GH_GATEWAY_LOOPS_H
#define GH_GATEWAY_LOOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <h2o.h>

#include "lib/err.h"

/* One event loop's h2o plumbing. `name`, `index` and `listen_fd` are set on the main thread
 * before the loop's thread starts; from gh_loop_init on, every field belongs to the loop's
 * thread, except that gh_loop_stop may be called from any thread. Servers read `evloop`,
 * `ctx`, `index` and `conns_open`, and close `listen_fd` when it is still >= 0 at the end;
 * the rest is this module's. */
typedef struct gh_loop {
    const char *name; /* starts this module's log lines about the loop: "api loop" */
    size_t index;
    int listen_fd; /* owned here until gh_loop_listen hands it to `listener`; else -1 */
    h2o_evloop_t *evloop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;            /* NULL once the drain has started */
    h2o_timeout_entry_t accept_resume; /* linked while accepting is paused */
    h2o_multithread_receiver_t stop_receiver;
    h2o_multithread_message_t stop_message;
    bool stop_requested;
    h2o_linklist_t conns; /* the accepted connections still open */
    size_t conns_open;
} gh_loop_t;

/* The address a group of loops listens on, one socket per loop, all on the same port. */
typedef struct gh_loops_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int port;           /* as asked; the port bound once the first socket is open */
    size_t sockets_open; /* by gh_loops_listen on this address */
} gh_loops_addr_t;

/* The step at which gh_loops_listen failed. */
typedef enum gh_loops_step {
    GH_LOOPS_SOCKET,  /* socket(2) */
    GH_LOOPS_OPTIONS, /* setsockopt(2): SO_REUSEADDR or SO_REUSEPORT */
    GH_LOOPS_BIND,
    GH_LOOPS_LISTEN,
    GH_LOOPS_PORT, /* getsockname(2): reading the port the first socket bound */
} gh_loops_step_t;

/* Resolves `host`, an IPv4 or IPv6 address (a name too unless `numeric_host`), into `addr`
 * with `port` (0: the kernel picks one when the first socket binds). Returns GH_OK, or
 * GH_EINVAL with `*gai` set to getaddrinfo's error code, or to 0 when `host` resolved to
 * something that is not an IPv4 or IPv6 address. */
gh_err_t gh_loops_resolve(gh_loops_addr_t *addr, const char *host, int port, bool numeric_host,
                          int *gai);

/* Opens one more non-blocking listening socket on `addr` into `*fd_out`. The first socket of
 * the address binds without SO_REUSEPORT and turns it on just before listen(2): that bind
 * fails if anything already holds the port, even a stale process of ours with SO_REUSEPORT,
 * which would otherwise silently share our traffic. It then records the port bound in
 * addr->port (the kernel's choice for port 0), which the later sockets join with
 * SO_REUSEPORT set. On failure returns GH_EIO with `*failed` set to the step and errno to
 * why; the socket is closed and `*fd_out` untouched. */
gh_err_t gh_loops_listen(gh_loops_addr_t *addr, int *fd_out, gh_loops_step_t *failed);

/* Sets the loop's name (see gh_loop_t), its index among its server's loops and no listening
 * socket yet. Call it on the main thread, on a zeroed gh_loop_t, before gh_loops_listen. */
void gh_loop_prepare(gh_loop_t *l, const char *name, size_t index);

/* On the loop's thread: creates the evloop and an h2o context on `globalconf` (read-only
 * from now on, and outliving the loop), and registers the stop receiver, after which
 * gh_loop_stop may be called. It creates them here, not on the main thread, because h2o
 * keeps caches in thread-local storage (socket buffers, pool chunks) and an object created on
 * one thread would keep pointing at that thread's cache. Names the calling thread
 * "gh-loop-INDEX" (seen in /proc/PID/task/TID/comm). */
void gh_loop_init(gh_loop_t *l, h2o_globalconf_t *globalconf);

/* On the loop's thread, after gh_loop_init: turns `listen_fd` into the loop's listener and
 * starts accepting. Each accepted connection is tracked until h2o closes its socket. When
 * accept(2) runs out of descriptors or kernel memory, accepting pauses for 100 ms with a
 * warning in the log (retrying at once would spin the loop), as nginx does. */
void gh_loop_listen(gh_loop_t *l);

/* Runs the loop until gh_loop_stop has been called. */
void gh_loop_run(gh_loop_t *l);

/* From any thread, after gh_loop_init: makes gh_loop_run return. Call it once per loop. */
void gh_loop_stop(gh_loop_t *l);

/* Runs one turn of the loop, waiting for events no later than `deadline_ms` (the loop's
 * clock, h2o_now). Returns false, without running, once the deadline has passed; so
 * `while (busy && gh_loop_turn(l, deadline_ms)) {}` waits for `busy` to clear or time out. */
bool gh_loop_turn(gh_loop_t *l, uint64_t deadline_ms);

/* The first step of a drain: stops accepting and closes the listener, and asks h2o to wind
 * down (from here it answers with "connection: close" and sends HTTP/2 GOAWAY). Connections
 * already open stay open. */
void gh_loop_drain_start(gh_loop_t *l);

/* Shuts down the socket of every connection still open, without closing it: h2o owns the
 * descriptor. h2o then reads end-of-file or fails a write and closes the connection through
 * its own path, which frees it properly. h2o 2.2.5 does nothing for idle keep-alive
 * connections on shutdown and would otherwise keep them until their idle timeout. */
void gh_loop_shutdown_conns(gh_loop_t *l);

/* Runs the loop until every connection has closed or `wait_ms` has passed. Returns whether
 * every connection closed. */
bool gh_loop_wait_conns(gh_loop_t *l, uint64_t wait_ms);

/* On the loop's thread, once every connection has closed and whatever else the server kept
 * on the loop (its timers included) is gone: unregisters the stop receiver, disposes of the
 * h2o context and destroys the evloop. A loop whose connections would not close must be left
 * allocated instead: h2o would free a context still in use. */
void gh_loop_dispose(gh_loop_t *l);

/* The raw head (request line and header lines, up to and including the empty line) of an
 * HTTP/1 request being handled, as the client sent it (h2o lower-cases the header names in
 * place), for checks h2o does not make (see lib/framing.h). h2o keeps a request's bytes at
 * the start of the connection's input buffer until its response is sent. Returns an empty
 * iovec for a request that did not come over HTTP/1 or whose head cannot be found. */
h2o_iovec_t gh_loops_request_head(h2o_req_t *req);

/* h2o caches freed socket buffers per thread; gives this thread's back before the thread
 * ends, so they are not lost with it. (h2o's per-thread cache of memory-pool chunks is private
 * to libh2o and cannot be emptied from here.) */
void gh_loops_release_thread_caches(void);

#endif
