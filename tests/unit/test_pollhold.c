/* Holding an HTTP/1 client's socket in the poll set while its request is answered
 * (gateway/pollhold.h), on a real libh2o loop and HTTP/1 server: requests answered a turn
 * later, as a relayed one is, cost no epoll_ctl with the hold and two each without it (the
 * control, which shows that the count measures what it should); a pipelined request and a
 * client that half-closes its side mid-request end the hold early, are answered, and do not
 * make the loop spin. epoll_ctl is counted by defining it here, which the dynamic linker
 * prefers over libc's for libh2o's calls too; it then makes the system call itself. */
#include "unit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http1.h>

#include "gateway/loops.h"
#include "gateway/pollhold.h"

/* ---- epoll_ctl, counted for one descriptor --------------------------------------------- */

static int counted_fd = -1;
static unsigned ctl_add, ctl_mod, ctl_del;

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    if (fd == counted_fd) {
        if (op == EPOLL_CTL_ADD)
            ctl_add++;
        else if (op == EPOLL_CTL_MOD)
            ctl_mod++;
        else if (op == EPOLL_CTL_DEL)
            ctl_del++;
    }
    return (int)syscall(SYS_epoll_ctl, epfd, op, fd, event);
}

/* ---- A server: answers every request one loop turn later or more -------------------------- */

#define MAX_WAITING 4

typedef struct server {
    h2o_globalconf_t gc;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_timeout_t later; /* 1 ms: fires after at least one more epoll_wait */
    bool hold;
    bool by_hand;    /* answered when a test calls answer_waiting, not by the timer */
    size_t held;     /* requests gh_pollhold_start held */
    size_t disposed; /* requests the logger saw */
    struct waiting {
        h2o_timeout_entry_t entry;
        h2o_req_t *req;
    } waiting[MAX_WAITING];
} server_t;

static server_t *server_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(server_t, ctx, req->conn->ctx);
}

static void answer(struct waiting *w)
{
    h2o_req_t *req = w->req;
    w->req = NULL;
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = req->path.len;
    /* The body names the path, so that answers can be told apart. */
    h2o_send_inline(req, req->path.base, req->path.len);
}

static void on_later(h2o_timeout_entry_t *entry)
{
    answer(H2O_STRUCT_FROM_MEMBER(struct waiting, entry, entry));
}

/* Answers the request waiting in slot 0 (by_hand servers). */
static void answer_waiting(server_t *s)
{
    assert_non_null(s->waiting[0].req);
    answer(&s->waiting[0]);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    server_t *s = server_of(req);
    if (s->hold && gh_pollhold_start(req))
        s->held++;
    for (size_t i = 0; i < MAX_WAITING; i++) {
        struct waiting *w = &s->waiting[i];
        if (w->req == NULL) {
            w->req = req;
            w->entry = (h2o_timeout_entry_t){.cb = on_later};
            if (!s->by_hand)
                h2o_timeout_link(s->loop, &s->later, &w->entry);
            return 0;
        }
    }
    fail_msg("more than %d requests at once", MAX_WAITING);
    return -1;
}

static void on_log(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    server_of(req)->disposed++;
    gh_pollhold_end(req);
}

static void server_init(server_t *s, bool hold)
{
    memset(s, 0, sizeof(*s));
    s->hold = hold;
    h2o_config_init(&s->gc);
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = on_req;
    h2o_create_logger(pc, sizeof(h2o_logger_t))->log_access = on_log;
    s->loop = h2o_evloop_create();
    h2o_context_init(&s->ctx, s->loop, &s->gc);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->gc.hosts;
    h2o_timeout_init(s->loop, &s->later, 1);
}

/* Accepts one end of a socket pair as an HTTP/1 connection; returns the client's end. */
static int server_connect(server_t *s)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    counted_fd = sv[0];
    ctl_add = ctl_mod = ctl_del = 0;
    h2o_socket_t *sock = h2o_evloop_socket_create(s->loop, sv[0], 0);
    struct timeval now;
    gettimeofday(&now, NULL);
    h2o_http1_accept(&s->accept_ctx, sock, now);
    return sv[1];
}

static void server_dispose(server_t *s)
{
    h2o_timeout_dispose(s->loop, &s->later);
    h2o_multithread_queue_t *queue = s->ctx.queue;
    h2o_context_dispose(&s->ctx);
    h2o_evloop_destroy(s->loop);
#if H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR == 13
    free(queue); /* closed by h2o_context_dispose, never freed by libh2o 2.2 (see loops.c) */
#else
    (void)queue;
#endif
    h2o_config_dispose(&s->gc);
    gh_loops_release_thread_caches();
    counted_fd = -1;
}

/* ---- A client --------------------------------------------------------------------------- */

static void send_all(int fd, const char *text)
{
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
}

/* Runs the loop until `fd` has delivered `want` bytes (or, with want 0, until it reads end of
 * file); returns the loop turns it took, failing past `max_turns`. */
static size_t run_until_read(server_t *s, int fd, char *out, size_t want, size_t max_turns)
{
    size_t got = 0, turns = 0;
    for (;;) {
        ssize_t n = read(fd, out + got, want == 0 ? 1 : want - got);
        if (n > 0) {
            got += (size_t)n;
            if (want != 0 && got == want)
                return turns;
            continue;
        }
        if (n == 0) {
            assert_int_equal(want, 0);
            return turns;
        }
        assert_true(errno == EAGAIN);
        if (++turns > max_turns)
            fail_msg("%zu loop turns and %zu of %zu bytes: the loop spins", turns, got, want);
        assert_int_equal(h2o_evloop_run(s->loop, 100), 0);
    }
}

/* Reads one response to `path` (the Date header varies, so the head is read up to its end
 * and the body checked). */
static size_t read_response(server_t *s, int fd, const char *path, size_t max_turns)
{
    char head[1024];
    size_t len = 0, turns = 0;
    while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
        assert_true(len < sizeof(head));
        turns += run_until_read(s, fd, head + len, 1, max_turns);
        len++;
    }
    head[len] = '\0';
    assert_memory_equal(head, "HTTP/1.1 200 OK\r\n", 17);
    char cl[64];
    snprintf(cl, sizeof(cl), "content-length: %zu\r\n", strlen(path));
    assert_non_null(strcasestr(head, cl));
    char body[256];
    size_t body_len = strlen(path);
    turns += run_until_read(s, fd, body, body_len, max_turns);
    assert_memory_equal(body, path, body_len);
    return turns;
}

#define REQUESTS 20
#define MAX_TURNS 100

static void run_requests(server_t *s, int fd)
{
    for (int i = 0; i < REQUESTS; i++) {
        char path[32], req[128];
        snprintf(path, sizeof(path), "/r%d", i);
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nhost: x\r\n\r\n", path);
        send_all(fd, req);
        read_response(s, fd, path, MAX_TURNS);
    }
}

/* Ends the connection from the client's side and runs the loop until the server closed it. */
static void closes(server_t *s, int fd)
{
    char c;
    shutdown(fd, SHUT_WR);
    run_until_read(s, fd, &c, 0, MAX_TURNS);
    close(fd);
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void held_requests_make_no_epoll_ctl(void **state)
{
    (void)state;
    server_t s;
    server_init(&s, true);
    int fd = server_connect(&s);
    run_requests(&s, fd);
    assert_int_equal(s.held, REQUESTS);
    assert_int_equal(s.disposed, REQUESTS);
    /* The socket was added once, when the connection was accepted, and never changed. */
    assert_int_equal(ctl_add, 1);
    assert_int_equal(ctl_mod, 0);
    assert_int_equal(ctl_del, 0);
    closes(&s, fd);
    server_dispose(&s);
}

static void without_the_hold_each_request_deletes_and_adds(void **state)
{
    (void)state;
    server_t s;
    server_init(&s, false);
    int fd = server_connect(&s);
    run_requests(&s, fd);
    assert_int_equal(s.held, 0);
    /* Added when accepted; then each request deleted it and its answer added it back (the
     * last ADD comes at the start of the loop's next turn, which this test does not run). */
    assert_int_equal(ctl_del, REQUESTS);
    assert_int_equal(ctl_add, REQUESTS);
    closes(&s, fd);
    server_dispose(&s);
}

static void pipelined_requests_read_together_are_answered_in_turn(void **state)
{
    (void)state;
    server_t s;
    server_init(&s, true);
    int fd = server_connect(&s);
    send_all(fd, "GET /first HTTP/1.1\r\nhost: x\r\n\r\nGET /second HTTP/1.1\r\nhost: x\r\n\r\n");
    read_response(&s, fd, "/first", MAX_TURNS);
    read_response(&s, fd, "/second", MAX_TURNS);
    assert_int_equal(s.disposed, 2);
    /* h2o read both requests at once: the second was parsed from its buffer after the first
     * was answered, so no byte waited in the kernel and the hold was never ended early. */
    assert_int_equal(ctl_del, 0);

    closes(&s, fd);
    server_dispose(&s);
}

/* Runs the loop until `n` requests have been held in all. */
static void run_until_held(server_t *s, size_t n)
{
    for (size_t turns = 0; s->held < n; turns++) {
        if (turns > MAX_TURNS)
            fail_msg("%zu loop turns and %zu of %zu requests held", turns, s->held, n);
        assert_int_equal(h2o_evloop_run(s->loop, 100), 0);
    }
}

/* Runs the loop until the hold of the request in flight has ended early: epoll reported the
 * client's bytes once, the hold stopped reading, and the next turn deleted the socket from the
 * set. A loop that kept reporting them would spin past MAX_TURNS. */
static void run_until_the_hold_ends(server_t *s)
{
    for (size_t turns = 0; ctl_del == 0; turns++) {
        if (turns > MAX_TURNS)
            fail_msg("%zu loop turns and the hold has not ended: the loop spins", turns);
        assert_int_equal(h2o_evloop_run(s->loop, 100), 0);
    }
    assert_int_equal(ctl_del, 1);
}

static void bytes_arriving_while_held_end_the_hold(void **state)
{
    (void)state;
    server_t s;
    server_init(&s, true);
    s.by_hand = true;
    int fd = server_connect(&s);
    send_all(fd, "GET /first HTTP/1.1\r\nhost: x\r\n\r\n");
    run_until_held(&s, 1);
    send_all(fd, "GET /second HTTP/1.1\r\nhost: x\r\n\r\n");
    run_until_the_hold_ends(&s);
    assert_int_equal(s.disposed, 0);
    answer_waiting(&s);
    read_response(&s, fd, "/first", MAX_TURNS);
    /* h2o reads again and finds the second request, which waits in turn. */
    run_until_held(&s, 2);
    answer_waiting(&s);
    read_response(&s, fd, "/second", MAX_TURNS);
    closes(&s, fd);
    assert_int_equal(s.disposed, 2);
    server_dispose(&s);
}

static void a_client_half_closing_mid_request_is_answered_without_spinning(void **state)
{
    (void)state;
    server_t s;
    server_init(&s, true);
    s.by_hand = true;
    int fd = server_connect(&s);
    send_all(fd, "GET /last HTTP/1.1\r\nhost: x\r\n\r\n");
    run_until_held(&s, 1);
    shutdown(fd, SHUT_WR); /* end of file, readable on the server's side for good */
    run_until_the_hold_ends(&s);
    answer_waiting(&s);
    read_response(&s, fd, "/last", MAX_TURNS);
    /* h2o then reads the end of file and closes the connection. */
    char c;
    run_until_read(&s, fd, &c, 0, MAX_TURNS);
    assert_int_equal(s.disposed, 1);
    close(fd);
    server_dispose(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(held_requests_make_no_epoll_ctl),
        cmocka_unit_test(without_the_hold_each_request_deletes_and_adds),
        cmocka_unit_test(pipelined_requests_read_together_are_answered_in_turn),
        cmocka_unit_test(bytes_arriving_while_held_end_the_hold),
        cmocka_unit_test(a_client_half_closing_mid_request_is_answered_without_spinning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
