/* The libh2o loop machinery shared by the model API server and the mock upstream (see
 * loops.h): listening sockets, accepting and tracking connections, the stop message, the
 * steps of a drain and the teardown of a loop. */
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif

#include "gateway/loops.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

/* How many connections one wake-up of a listener accepts before the loop serves the
 * connections it already has. */
#define LOOPS_ACCEPT_BATCH 64

/* One accepted connection, tracked so that a drain can shut it down. Owned by its loop;
 * freed when h2o closes the socket. */
typedef struct loops_conn {
    h2o_linklist_t link; /* in gh_loop_t.conns */
    h2o_socket_t *sock;
    gh_loop_t *loop;
} loops_conn_t;

/* ---- Listening sockets ------------------------------------------------------------------- */

static void set_port(struct sockaddr_storage *addr, int port)
{
    if (addr->ss_family == AF_INET)
        ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
}

static int get_port(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
}

gh_err_t gh_loops_resolve(gh_loops_addr_t *addr, const char *host, int port, bool numeric_host,
                          int *gai)
{
    struct addrinfo hints, *ai;

    memset(addr, 0, sizeof(*addr));
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | (numeric_host ? AI_NUMERICHOST : 0);
    *gai = getaddrinfo(host, NULL, &hints, &ai);
    if (*gai != 0)
        return GH_EINVAL;
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof(addr->ss)) {
        freeaddrinfo(ai);
        return GH_EINVAL;
    }
    memcpy(&addr->ss, ai->ai_addr, ai->ai_addrlen);
    addr->len = ai->ai_addrlen;
    freeaddrinfo(ai);
    addr->port = port;
    set_port(&addr->ss, port);
    return GH_OK;
}

gh_err_t gh_loops_listen(gh_loops_addr_t *addr, int *fd_out, gh_loops_step_t *failed)
{
    const int one = 1;
    bool first = addr->sockets_open == 0;
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *failed = GH_LOOPS_SOCKET;
        return GH_EIO;
    }
    *failed = GH_LOOPS_OPTIONS;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto out_close_fd;
    if (!first && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto out_close_fd;
    *failed = GH_LOOPS_BIND;
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0)
        goto out_close_fd;
    *failed = GH_LOOPS_OPTIONS;
    if (first && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto out_close_fd;
    *failed = GH_LOOPS_LISTEN;
    if (listen(fd, SOMAXCONN) != 0)
        goto out_close_fd;
    if (first) {
        /* With port 0 the kernel chose one; the other sockets must bind that same port. */
        struct sockaddr_storage bound;
        socklen_t bound_len = sizeof(bound);
        memset(&bound, 0, sizeof(bound));
        *failed = GH_LOOPS_PORT;
        if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0)
            goto out_close_fd;
        addr->port = get_port(&bound);
        set_port(&addr->ss, addr->port);
    }
    addr->sockets_open++;
    *fd_out = fd;
    return GH_OK;

out_close_fd: {
    int saved = errno;
    close(fd);
    errno = saved;
}
    return GH_EIO;
}

/* ---- Connections ------------------------------------------------------------------------- */

static void on_conn_close(void *data)
{
    loops_conn_t *c = data;
    assert(c->loop->conns_open > 0);
    h2o_linklist_unlink(&c->link);
    c->loop->conns_open--;
    free(c);
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_accept_resume(h2o_timeout_entry_t *entry)
{
    gh_loop_t *l = H2O_STRUCT_FROM_MEMBER(gh_loop_t, accept_resume, entry);
    if (l->listener != NULL)
        h2o_socket_read_start(l->listener, on_accept);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    gh_loop_t *l = listener->data;
    assert(l->listener == listener);
    if (err != NULL)
        return;
    for (int i = 0; i < LOOPS_ACCEPT_BATCH; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            /* Out of descriptors or kernel memory, the connection stays queued and the
             * listener stays readable: retrying at once would spin the loop. Pause accepting
             * for a tenth of a second, as nginx does, and keep serving what is open. */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                gh_log_warn("%s %zu: cannot accept (%s); pausing 100 ms", l->name, l->index,
                            strerror(errno));
                h2o_socket_read_stop(listener);
                h2o_timeout_link(l->evloop, &l->ctx.hundred_ms_timeout, &l->accept_resume);
            }
            break; /* otherwise nothing is left to accept */
        }
        loops_conn_t *c = calloc(1, sizeof(*c)); /* h2o asserts a new link is unlinked (NULL) */
        if (c == NULL) {
            h2o_socket_close(sock);
            continue;
        }
        c->sock = sock;
        c->loop = l;
        h2o_linklist_insert(&l->conns, &c->link);
        l->conns_open++;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_accept(&l->accept_ctx, sock);
    }
}

/* ---- A request's raw head ---------------------------------------------------------------- */

#if H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR == 13
/* libh2o 2.2.x keeps an HTTP/1 connection in a private struct that starts with the public
 * h2o_conn_t and then the socket; this mirrors that start and nothing more. */
typedef struct loops_http1_conn {
    h2o_conn_t super;
    h2o_socket_t *sock;
} loops_http1_conn_t;
#endif

h2o_iovec_t gh_loops_request_head(h2o_req_t *req)
{
    h2o_iovec_t none = {NULL, 0};
#if H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR == 13
    /* Only HTTP/1 connections carry HTTP/1 requests (an h2c upgrade is answered as HTTP/2). */
    if (req->conn == NULL || req->version >= 0x200)
        return none;
    h2o_socket_t *sock = ((loops_http1_conn_t *)req->conn)->sock;
    if (sock == NULL || sock->input == NULL || sock->input->size == 0)
        return none;
    const char *buf = sock->input->bytes;
    size_t len = sock->input->size;
    /* The head ends at the first empty line: "\n\n" or "\n\r\n". */
    const char *end = buf + len;
    for (const char *p = memchr(buf, '\n', len); p != NULL && p + 1 < end;
         p = memchr(p + 1, '\n', (size_t)(end - p - 1))) {
        size_t i = (size_t)(p - buf);
        if (buf[i + 1] == '\n')
            return h2o_iovec_init(buf, i + 2);
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return h2o_iovec_init(buf, i + 3);
    }
#else
    (void)req;
#endif
    return none;
}

/* ---- A loop's life ----------------------------------------------------------------------- */

static void on_stop_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gh_loop_t *l = H2O_STRUCT_FROM_MEMBER(gh_loop_t, stop_receiver, receiver);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    l->stop_requested = true;
}

void gh_loop_prepare(gh_loop_t *l, const char *name, size_t index)
{
    assert(name != NULL && l->evloop == NULL);
    l->name = name;
    l->index = index;
    l->listen_fd = -1;
}

void gh_loop_init(gh_loop_t *l, h2o_globalconf_t *globalconf)
{
    assert(l->listen_fd >= 0 && l->evloop == NULL);
    /* A name per loop thread, so that ps, top and bench/run (CPU per thread from
     * /proc/PID/task/TID/stat) can tell the loops from the other threads. */
    char thread_name[16];
    snprintf(thread_name, sizeof(thread_name), "gh-loop-%zu", l->index);
    pthread_setname_np(pthread_self(), thread_name);
    l->evloop = h2o_evloop_create();
    h2o_context_init(&l->ctx, l->evloop, globalconf);
    l->accept_ctx.ctx = &l->ctx;
    l->accept_ctx.hosts = globalconf->hosts;
    l->accept_resume.cb = on_accept_resume;
    h2o_linklist_init_anchor(&l->conns);
    h2o_multithread_register_receiver(l->ctx.queue, &l->stop_receiver, on_stop_message);
}

void gh_loop_listen(gh_loop_t *l)
{
    assert(l->listen_fd >= 0 && l->evloop != NULL && l->listener == NULL);
    l->listener = h2o_evloop_socket_create(l->evloop, l->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    l->listen_fd = -1; /* the listener owns and closes it now */
    l->listener->data = l;
    h2o_socket_read_start(l->listener, on_accept);
}

void gh_loop_run(gh_loop_t *l)
{
    while (!l->stop_requested)
        h2o_evloop_run(l->evloop, INT32_MAX);
}

void gh_loop_stop(gh_loop_t *l)
{
    h2o_multithread_send_message(&l->stop_receiver, &l->stop_message);
}

bool gh_loop_turn(gh_loop_t *l, uint64_t deadline_ms)
{
    uint64_t now = h2o_now(l->evloop);
    if (now >= deadline_ms)
        return false;
    uint64_t wait_ms = deadline_ms - now;
    h2o_evloop_run(l->evloop, wait_ms > INT32_MAX ? INT32_MAX : (int32_t)wait_ms);
    return true;
}

void gh_loop_drain_start(gh_loop_t *l)
{
    assert(l->listener != NULL);
    if (h2o_timeout_is_linked(&l->accept_resume))
        h2o_timeout_unlink(&l->accept_resume);
    h2o_socket_read_stop(l->listener);
    h2o_socket_close(l->listener);
    l->listener = NULL;
    h2o_context_request_shutdown(&l->ctx);
}

void gh_loop_shutdown_conns(gh_loop_t *l)
{
    for (h2o_linklist_t *node = l->conns.next; node != &l->conns; node = node->next) {
        loops_conn_t *c = H2O_STRUCT_FROM_MEMBER(loops_conn_t, link, node);
        int fd = h2o_socket_get_fd(c->sock);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
}

bool gh_loop_wait_conns(gh_loop_t *l, uint64_t wait_ms)
{
    uint64_t deadline_ms = h2o_now(l->evloop) + wait_ms;
    while (l->conns_open != 0 && gh_loop_turn(l, deadline_ms)) {
    }
    return l->conns_open == 0;
}

void gh_loop_dispose(gh_loop_t *l)
{
    assert(l->conns_open == 0 && l->listener == NULL);
    /* h2o's HTTP/2 shutdown armed a one-second timer to send GOAWAY again. With every
     * connection closed it has nothing left to do, and h2o_context_dispose asserts that no
     * timer is pending, so disarm it. */
    if (h2o_timeout_is_linked(&l->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&l->ctx.http2._graceful_shutdown_timeout);
    h2o_multithread_queue_t *queue = l->ctx.queue;
    h2o_multithread_unregister_receiver(queue, &l->stop_receiver);
    h2o_context_dispose(&l->ctx);
    h2o_evloop_destroy(l->evloop);
    l->evloop = NULL;
#if H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR == 13
    /* libh2o 2.2.x (library 0.13) built without libuv closes the queue in
     * h2o_multithread_destroy_queue but never frees it; later versions free it there. */
    free(queue);
#endif
}

void gh_loops_release_thread_caches(void)
{
    h2o_mem_recycle_t *recycle = &h2o_socket_buffer_prototype.allocator;
    while (recycle->cnt != 0)
        free(h2o_mem_alloc_recycle(recycle, 0));
}
